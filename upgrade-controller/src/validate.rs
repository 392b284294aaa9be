//! Whether a Plan may run at all — SUC's `plan.Validate`, whose error
//! becomes the Plan's `Validated=False` condition (same messages, so SUC
//! users' alerts match). One addition: a window that never opens (no
//! days, or an end not after its start) is refused, where SUC would wait
//! forever.

use k3r_crds::plan::Plan;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use k3r_reconciler::duration::parse_go_duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Invalid {
    #[error("spec.drain cannot specify both deleteEmptydirData and deleteLocalData")]
    DrainDeleteConflict,
    #[error("spec.drain.podSelector: {0}")]
    DrainPodSelector(String),
    #[error("spec.window is invalid: {0}")]
    Window(#[from] crate::window::WindowError),
    #[error("spec.postCompleteDelay is negative")]
    NegativeDelay,
    #[error("spec.postCompleteDelay: {0}")]
    Delay(String),
    #[error("secrets \"{0}\" not found")]
    MissingSecret(String),
    #[error("spec.upgrade.image is required")]
    NoImage,
    #[error("spec.version {0:?} is not usable as an image tag")]
    Version(String),
    #[error("{0}")]
    NodeDownTimeout(String),
}

/// Whether `version` (munged) can be an image tag: docker's
/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn tag_problem(version: &str) -> Option<Invalid> {
    let bytes = version.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && word(&bytes[0])
        && bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-');
    (!ok).then(|| Invalid::Version(version.into()))
}

/// The first reason `plan` cannot run, checked in SUC's order; a secret
/// that is not there fails unless the Plan ignores its updates.
pub fn validate(plan: &Plan, secret_exists: impl Fn(&str) -> bool) -> Result<(), Invalid> {
    if plan.spec.upgrade.image.trim().is_empty() {
        return Err(Invalid::NoImage);
    }
    crate::down::timeout(plan).map_err(Invalid::NodeDownTimeout)?;
    if let Some(version) = plan.spec.version.as_deref().filter(|v| !v.is_empty())
        && let Some(problem) = tag_problem(&crate::suc::munge_version(version))
    {
        return Err(problem);
    }
    if let Some(drain) = &plan.spec.drain {
        if drain.delete_emptydir_data.is_some() && drain.delete_local_data.is_some() {
            return Err(Invalid::DrainDeleteConflict);
        }
        if let Some(selector) = &drain.pod_selector {
            selector_problem(selector).map_or(Ok(()), |p| Err(Invalid::DrainPodSelector(p)))?;
        }
    }
    if let Some(window) = &plan.spec.window {
        crate::window::Window::parse(window)?;
    }
    if let Some(delay) = plan.spec.post_complete_delay.as_deref() {
        let delay = delay.trim();
        let (negative, magnitude) = match delay.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, delay.strip_prefix('+').unwrap_or(delay)),
        };
        let parsed = parse_go_duration(magnitude).map_err(|e| Invalid::Delay(e.to_string()))?;
        if negative && !parsed.is_zero() {
            return Err(Invalid::NegativeDelay);
        }
    }
    for secret in &plan.spec.secrets {
        let name = secret.name.as_deref().unwrap_or_default();
        if secret.ignore_updates != Some(true) && !secret_exists(name) {
            return Err(Invalid::MissingSecret(name.to_string()));
        }
    }
    Ok(())
}

/// What apimachinery's LabelSelectorAsSelector refuses in a selector.
fn selector_problem(selector: &LabelSelector) -> Option<String> {
    for (key, value) in selector.match_labels.iter().flatten() {
        if let Some(p) = key_problem(key).or_else(|| value_problem(value)) {
            return Some(p);
        }
    }
    for requirement in selector.match_expressions.iter().flatten() {
        if let Some(p) = key_problem(&requirement.key) {
            return Some(p);
        }
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Some(format!(
                    "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty (key {:?})",
                    requirement.key
                ));
            }
            "In" | "NotIn" => {}
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Some(format!(
                    "values: Invalid value: {values:?}: values set must be empty for exists and does not exist (key {:?})",
                    requirement.key
                ));
            }
            "Exists" | "DoesNotExist" => {}
            other => return Some(format!("{other:?} is not a valid label selector operator")),
        }
        if let Some(p) = values.iter().find_map(|v| value_problem(v)) {
            return Some(p);
        }
    }
    None
}

/// A label key: an optional DNS-subdomain prefix and "/", then a name.
fn key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && label.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    });
    (!prefix_ok || name.is_empty() || !is_label_name(name))
        .then(|| format!("key: Invalid value: {key:?}: not a qualified name"))
}

fn value_problem(value: &str) -> Option<String> {
    (!value.is_empty() && !is_label_name(value))
        .then(|| format!("values: Invalid value: {value:?}: not a valid label value"))
}

/// At most 63 alphanumerics, '-', '_' or '.', starting and ending with an
/// alphanumeric.
fn is_label_name(text: &str) -> bool {
    text.len() <= 63
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(spec: serde_json::Value) -> Plan {
        let mut full =
            serde_json::json!({"upgrade": {"image": "rancher/k3s-upgrade"}, "concurrency": 1});
        if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
            full.extend(extra.clone());
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "upgrade.cattle.io/v1", "kind": "Plan",
            "metadata": {"name": "p", "namespace": "system-upgrade"},
            "spec": full,
        }))
        .expect("plan")
    }

    #[test]
    fn a_plan_as_in_suc_examples_is_valid() {
        let p = plan(serde_json::json!({
            "version": "v1.35.8", "cordon": true, "postCompleteDelay": "30s",
            "drain": {"force": true, "deleteEmptydirData": true,
                      "podSelector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["db"]}]}},
            "secrets": [{"name": "creds", "path": "/host/creds"}],
        }));
        assert_eq!(validate(&p, |name| name == "creds"), Ok(()));
    }

    #[test]
    fn each_of_sucs_refusals_with_its_message() {
        let cases = [
            (
                serde_json::json!({"drain": {"deleteEmptydirData": true, "deleteLocalData": true}}),
                "spec.drain cannot specify both deleteEmptydirData and deleteLocalData",
            ),
            (
                serde_json::json!({"drain": {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}}),
                "spec.drain.podSelector: values: Invalid value: []",
            ),
            (
                serde_json::json!({"drain": {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}}}),
                "values set must be empty",
            ),
            (
                serde_json::json!({"drain": {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}}}),
                "\"Gt\" is not a valid label selector operator",
            ),
            (
                serde_json::json!({"drain": {"podSelector": {"matchLabels": {"-bad": "x"}}}}),
                "not a qualified name",
            ),
            (
                serde_json::json!({"drain": {"podSelector": {"matchLabels": {"a": "no spaces"}}}}),
                "not a valid label value",
            ),
            (
                serde_json::json!({"window": {"days": ["monday"], "startTime": "02:00", "endTime": "1am"}}),
                "spec.window is invalid: Invalid time format: 1am",
            ),
            (
                serde_json::json!({"window": {"days": ["monday"], "startTime": "04:00", "endTime": "02:00"}}),
                "spec.window is invalid: the window never opens",
            ),
            (
                serde_json::json!({"postCompleteDelay": "-1m"}),
                "spec.postCompleteDelay is negative",
            ),
            (
                serde_json::json!({"postCompleteDelay": "soon"}),
                "spec.postCompleteDelay: invalid duration",
            ),
            (
                serde_json::json!({"upgrade": {"image": ""}}),
                "spec.upgrade.image is required",
            ),
            (
                serde_json::json!({"version": "v1.2 final"}),
                "spec.version \"v1.2 final\" is not usable as an image tag",
            ),
            (
                serde_json::json!({"secrets": [{"name": "gone"}]}),
                "secrets \"gone\" not found",
            ),
        ];
        for (spec, message) in cases {
            let err = validate(&plan(spec.clone()), |_| false).expect_err(&spec.to_string());
            assert!(err.to_string().contains(message), "{spec}: {err}");
        }
    }

    #[test]
    fn ignored_secrets_and_zero_delays_pass() {
        let p = plan(serde_json::json!({
            "secrets": [{"name": "gone", "ignoreUpdates": true}],
            "postCompleteDelay": "-0s",
            "drain": {"podSelector": {"matchLabels": {"example.com/tier": ""}}},
        }));
        assert_eq!(validate(&p, |_| false), Ok(()));
    }
}
