//! From rendered files to a release: NOTES taken out, documents split on
//! `---`, hooks separated (helm.sh/hook), the rest sorted in Helm's install
//! order, and the manifest text Helm stores (`---\n# Source: ...`).

use std::collections::BTreeMap;

use k3r_gotemplate::Value;

use crate::chart::Chart;
use crate::deps;
use crate::engine::{Capabilities, ReleaseInfo, RenderError, render};
use crate::values::parse_yaml;

/// Helm v4's InstallOrder; unknown kinds go last, alphabetically.
pub const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

const HOOK_EVENTS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
];

#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The template it came from ("chart/templates/x.yaml").
    pub source: String,
    pub kind: String,
    pub name: String,
    pub content: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hook {
    pub document: Document,
    pub events: Vec<String>,
    pub weight: i64,
    pub delete_policies: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Rendered {
    /// Sorted in install order.
    pub documents: Vec<Document>,
    pub hooks: Vec<Hook>,
    /// The root chart's NOTES.txt, rendered.
    pub notes: String,
    /// The values the templates saw.
    pub values: Value,
}

impl Rendered {
    /// The release manifest, as Helm writes it.
    pub fn manifest(&self) -> String {
        self.documents
            .iter()
            .map(|d| format!("---\n# Source: {}\n{}\n", d.source, d.content))
            .collect()
    }
}

/// Renders a chart for a release the way `helm install` does (without
/// touching a cluster): dependencies processed, values coalesced, templates
/// rendered, manifests sorted.
pub fn template(
    chart: &Chart,
    user_values: &Value,
    release: &ReleaseInfo,
    capabilities: &Capabilities,
) -> Result<Rendered, RenderError> {
    check_kube_version(chart, capabilities)?;
    let chart = deps::process(chart, user_values);
    let values = deps::coalesce_tree(&chart, user_values);
    crate::schema::validate(&chart, &values).map_err(RenderError)?;
    let mut files = render(&chart, &values, release, capabilities)?;
    let notes_path = format!("{}/templates/NOTES.txt", chart.name());
    let notes = files.get(&notes_path).cloned().unwrap_or_default();
    files.retain(|path, _| !path.ends_with("NOTES.txt"));
    let (documents, hooks) = sort(&files)?;
    Ok(Rendered {
        documents,
        hooks,
        notes,
        values,
    })
}

/// Chart.yaml `kubeVersion` must accept the cluster's version.
fn check_kube_version(chart: &Chart, capabilities: &Capabilities) -> Result<(), RenderError> {
    let wanted = chart.field("kubeVersion");
    if wanted.is_empty() {
        return Ok(());
    }
    let accepted = crate::semver::semver_compare(&wanted, &capabilities.kube_version)
        .map_err(|e| RenderError(format!("chart {}: kubeVersion: {e}", chart.name())))?;
    if accepted {
        Ok(())
    } else {
        Err(RenderError(format!(
            "chart requires kubeVersion: {wanted} which is incompatible with Kubernetes {}",
            capabilities.kube_version
        )))
    }
}

/// Helm v4's SplitManifests: the text left-trimmed, split on
/// `(?:^|\s*\n)---\s*`, empty pieces dropped, each piece left-trimmed (its
/// trailing whitespace is kept).
pub fn split_documents(text: &str) -> Vec<String> {
    static SEPARATOR: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let separator = SEPARATOR.get_or_init(|| {
        regex::Regex::new(r"(?:^|\s*\n)---\s*").unwrap_or_else(|_| unreachable!("valid regex"))
    });
    separator
        .split(text.trim_start())
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_start().to_string())
        .collect()
}

fn head(
    content: &str,
    source: &str,
) -> Result<(String, String, BTreeMap<String, String>), RenderError> {
    let value = parse_yaml(content)
        .map_err(|e| RenderError(format!("YAML parse error on {source}: {e}")))?;
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => s.to_string(),
        _ => String::new(),
    };
    let Value::Map(map) = value else {
        return Ok((String::new(), String::new(), BTreeMap::new()));
    };
    let metadata = match map.get("metadata") {
        Some(Value::Map(m)) => Some(m),
        _ => None,
    };
    let annotations = match metadata.as_ref().and_then(|m| m.get("annotations")) {
        Some(Value::Map(a)) => a
            .entries()
            .into_iter()
            .map(|(k, v)| (k, text(Some(v))))
            .collect(),
        _ => BTreeMap::new(),
    };
    Ok((
        text(map.get("kind")),
        text(metadata.and_then(|m| m.get("name"))),
        annotations,
    ))
}

/// Sorts rendered files into documents (install order) and hooks.
pub fn sort(files: &BTreeMap<String, String>) -> Result<(Vec<Document>, Vec<Hook>), RenderError> {
    let mut documents = Vec::new();
    let mut hooks = Vec::new();
    for (path, content) in files {
        let base = path.rsplit('/').next().unwrap_or_default();
        if base.starts_with('_') || content.trim().is_empty() {
            continue;
        }
        for doc in split_documents(content) {
            let (kind, name, annotations) = head(&doc, path)?;
            let document = Document {
                source: path.clone(),
                kind,
                name,
                content: doc,
            };
            let Some(events) = annotations.get("helm.sh/hook") else {
                documents.push(document);
                continue;
            };
            let events: Vec<String> = events
                .split(',')
                .map(|e| e.trim().to_ascii_lowercase())
                .map(|e| {
                    if e == "test-success" {
                        "test".into()
                    } else {
                        e
                    }
                })
                .collect();
            // A document with an unknown hook event is skipped entirely.
            if events.iter().any(|e| !HOOK_EVENTS.contains(&e.as_str())) {
                continue;
            }
            let weight = annotations
                .get("helm.sh/hook-weight")
                .and_then(|w| w.trim().parse().ok())
                .unwrap_or(0);
            let delete_policies = annotations
                .get("helm.sh/hook-delete-policy")
                .map(|p| {
                    p.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            hooks.push(Hook {
                document,
                events,
                weight,
                delete_policies,
            });
        }
    }
    documents.sort_by(|a, b| kind_order(&a.kind, &b.kind));
    hooks.sort_by(|a, b| kind_order(&a.document.kind, &b.document.kind));
    hooks.sort_by(|a, b| {
        a.weight
            .cmp(&b.weight)
            .then_with(|| a.document.name.cmp(&b.document.name))
    });
    Ok((documents, hooks))
}

/// Install order; `sort_by` is stable, so equal kinds keep file order.
fn kind_order(a: &str, b: &str) -> std::cmp::Ordering {
    let index = |k: &str| INSTALL_ORDER.iter().position(|x| *x == k);
    match (index(a), index(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_like_helm() {
        assert_eq!(
            split_documents("---\na: 1\n---\nb: 2\n--- \nc: 3\n"),
            ["a: 1", "b: 2", "c: 3\n"]
        );
        // The separator's trailing \s* eats blank lines, so a "---" right
        // after them stays in the document, as with Go's regexp.
        assert_eq!(
            split_documents("a: 1\n---\n\n---\nb: 2"),
            ["a: 1", "---\nb: 2"]
        );
        assert_eq!(split_documents("a: 1\n---x: no\n"), ["a: 1", "x: no\n"]);
    }

    #[test]
    fn kinds_sort_in_install_order_unknown_last() {
        let mut kinds = [
            "Deployment",
            "Zebra",
            "Service",
            "Namespace",
            "Apple",
            "ConfigMap",
        ];
        kinds.sort_by(|a, b| kind_order(a, b));
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ConfigMap",
                "Service",
                "Deployment",
                "Apple",
                "Zebra"
            ]
        );
    }
}
