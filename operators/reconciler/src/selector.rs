//! Label selectors as the API server defines them, for controllers that
//! select from their caches: matchLabels and matchExpressions ANDed; an
//! empty selector selects everything.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub fn matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    by_labels
        && selector.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                // The API server rejects other operators; a selector it
                // somehow let through selects nothing.
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn labels_and_expressions_are_anded_and_empty_selects_all() {
        let pod = labels(&[("app", "web"), ("tier", "front")]);
        assert!(matches(&LabelSelector::default(), Some(&pod)));
        assert!(matches(&LabelSelector::default(), None));
        let selector = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![expression("tier", "In", &["front", "edge"])]),
        };
        assert!(matches(&selector, Some(&pod)));
        assert!(!matches(&selector, Some(&labels(&[("app", "web")]))));
        let not_in = LabelSelector {
            match_expressions: Some(vec![expression("tier", "NotIn", &["front"])]),
            ..Default::default()
        };
        assert!(!matches(&not_in, Some(&pod)));
        assert!(matches(&not_in, Some(&labels(&[("app", "x")]))));
        let exists = LabelSelector {
            match_expressions: Some(vec![
                expression("app", "Exists", &[]),
                expression("debug", "DoesNotExist", &[]),
            ]),
            ..Default::default()
        };
        assert!(matches(&exists, Some(&pod)));
        assert!(!matches(
            &exists,
            Some(&labels(&[("app", "a"), ("debug", "1")]))
        ));
    }
}
