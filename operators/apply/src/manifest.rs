//! Manifests to objects: multi-document YAML or JSON, `List` kinds
//! expanded, errors naming the line.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::ObjectRef;

/// A manifest that cannot be applied, with the line it went wrong on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ManifestError {
    pub line: u64,
    pub message: String,
}

/// Splits a YAML stream at `---` lines, keeping each document's first line.
fn documents(text: &str) -> Vec<(u64, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let number = i as u64 + 1;
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t") {
            docs.push((start, std::mem::take(&mut current)));
            start = number + 1;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs
}

fn error_message(err: &serde_saphyr::Error) -> String {
    let text = err.to_string();
    // The error renders a source snippet; its last line carries the reason.
    text.lines()
        .rev()
        .find_map(|l| {
            l.split_once("^ ")
                .map(|(_, reason)| reason.trim().to_string())
        })
        .unwrap_or_else(|| text.lines().next().unwrap_or_default().to_string())
}

/// Parses a manifest file (multi-document YAML or JSON; `List` kinds are
/// expanded) into the objects it declares. Every object needs apiVersion,
/// kind and metadata.name.
pub fn parse_manifest(text: &str) -> Result<Vec<Value>, ManifestError> {
    let mut objects = Vec::new();
    for (start, doc) in documents(text) {
        if doc
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        let value: Value = serde_saphyr::from_str(&doc).map_err(|e| ManifestError {
            line: start + e.location().map_or(1, |l| l.line()) - 1,
            message: error_message(&e),
        })?;
        if value.is_null() {
            continue;
        }
        let items = match &value {
            Value::Object(map)
                if map
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List")) =>
            {
                map.get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            }
            Value::Object(_) => vec![value],
            _ => {
                return Err(ManifestError {
                    line: start,
                    message: "a document must be a mapping (an object)".into(),
                });
            }
        };
        for item in items {
            if ObjectRef::of(&item).is_none() {
                return Err(ManifestError {
                    line: start,
                    message: "an object needs apiVersion, kind and metadata.name".into(),
                });
            }
            objects.push(item);
        }
    }
    Ok(objects)
}

/// Objects applied before that the file no longer declares.
pub fn prune_set(previous: &[ObjectRef], current: &[Value]) -> Vec<ObjectRef> {
    let now: BTreeSet<ObjectRef> = current.iter().filter_map(ObjectRef::of).collect();
    previous
        .iter()
        .filter(|o| !now.contains(o))
        .cloned()
        .collect()
}

/// The identities of `objects`, for the Addon status.
pub fn refs(objects: &[Value]) -> Vec<ObjectRef> {
    objects.iter().filter_map(ObjectRef::of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_lists_and_json() {
        let text = "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n- {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, metadata: {name: r}}\n";
        let objects = parse_manifest(text).expect("parse");
        let names: Vec<String> = refs(&objects).iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "v1/ConfigMap x/a",
                "v1/Secret s",
                "rbac.authorization.k8s.io/v1/ClusterRole r"
            ]
        );
        let json = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}"#;
        assert_eq!(parse_manifest(json).expect("json").len(), 1);
        let parsed =
            ObjectRef::parse("rbac.authorization.k8s.io/v1/ClusterRole r").expect("parse ref");
        assert_eq!(
            (parsed.kind.as_str(), parsed.namespace.as_ref()),
            ("ClusterRole", None)
        );
        assert_eq!(
            ObjectRef::parse("v1/ConfigMap x/a").and_then(|r| r.namespace),
            Some("x".to_string())
        );
    }

    #[test]
    fn errors_name_the_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: ConfigMap\ndata: [unclosed\n";
        let err = parse_manifest(text).expect_err("bad yaml");
        assert_eq!(err.line, 7, "{err}");
        assert!(err.message.contains("unclosed"), "{err}");
        let missing = "apiVersion: v1\nkind: ConfigMap\n---\nkind: Pod\nmetadata: {name: p}\n";
        let err = parse_manifest(missing).expect_err("no name");
        assert_eq!(err.line, 1);
        let err =
            parse_manifest("apiVersion: v1\n---\n- just\n- a list\n").expect_err("not a mapping");
        assert!(
            err.to_string().starts_with("line 1:") || err.to_string().starts_with("line 3:"),
            "{err}"
        );
    }

    #[test]
    fn removed_objects_are_pruned() {
        let before = parse_manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n").expect("before");
        let after = parse_manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
            .expect("after");
        let pruned = prune_set(&refs(&before), &after);
        assert_eq!(
            pruned.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["v1/ConfigMap b"]
        );
    }
}
