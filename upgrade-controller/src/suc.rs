//! system-upgrade-controller's rules, as its users rely on them:
//! - a Plan's **latest hash**: SHA-224 (hex) of its latest version, its
//!   service account name, the spec paths its `upgrade.cattle.io/digest`
//!   annotation lists, and the hash of each Secret it mounts without
//!   `ignoreUpdates` (kubectl's Secret hash);
//! - **node selection**: nodes matching `nodeSelector` (absent: none), with
//!   a `kubernetes.io/hostname` label, whose `plan.upgrade.cattle.io/<plan>`
//!   label is neither `disabled` nor the latest hash; the nodes already
//!   applying first, then candidates in the order of
//!   sha256(node UID + plan UID + hash), up to `concurrency`;
//! - **Job names and labels**: `apply-<plan>-on-<node>-with-<hash>`, cut to
//!   63 characters as wrangler's SafeConcatName cuts it.

use std::collections::BTreeMap;

use base64::Engine;
use k3r_crds::plan::Plan;
use k3r_reconciler::selector;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::ResourceExt;
use sha2::{Digest, Sha224, Sha256};

pub const LABEL_CONTROLLER: &str = "upgrade.cattle.io/controller";
pub const LABEL_EXCLUSIVE: &str = "upgrade.cattle.io/exclusive";
pub const LABEL_NODE: &str = "upgrade.cattle.io/node";
pub const LABEL_PLAN: &str = "upgrade.cattle.io/plan";
pub const LABEL_VERSION: &str = "upgrade.cattle.io/version";
/// The annotation listing spec paths (`spec.concurrency,spec.upgrade.envs`)
/// whose values join the latest hash.
pub const ANNOTATION_DIGEST: &str = "upgrade.cattle.io/digest";
const HOSTNAME: &str = "kubernetes.io/hostname";

/// The node label recording which hash of `plan` a node has applied.
pub fn plan_label(plan: &str) -> String {
    format!("plan.upgrade.cattle.io/{plan}")
}

/// A version as an image tag: `+` is not allowed in tags.
pub fn munge_version(version: &str) -> String {
    version.replace('+', "-")
}

/// kubectl's Secret hash (`k8s.io/kubectl/pkg/util/hash`): the first 10
/// hex digits of sha256 over `{"data":…,"kind":"Secret","name":…,"type":…}`
/// (keys sorted, data base64), with 0 1 3 a e mapped to g h k m t.
pub fn secret_hash(secret: &Secret) -> String {
    let mut object = serde_json::Map::new();
    let data = match &secret.data {
        Some(data) => serde_json::Value::Object(
            data.iter()
                .map(|(k, v)| {
                    let encoded = base64::engine::general_purpose::STANDARD.encode(&v.0);
                    (k.clone(), serde_json::Value::String(encoded))
                })
                .collect(),
        ),
        None => serde_json::Value::Null,
    };
    object.insert("data".into(), data);
    if let Some(immutable) = secret.immutable {
        object.insert("immutable".into(), serde_json::Value::Bool(immutable));
    }
    object.insert("kind".into(), "Secret".into());
    object.insert("name".into(), secret.name_any().into());
    object.insert(
        "type".into(),
        secret.type_.clone().unwrap_or_default().into(),
    );
    // serde_json's Map keeps keys sorted, as Go's json.Marshal of a map.
    let encoded = serde_json::Value::Object(object).to_string();
    let digest = Sha256::digest(encoded.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex.chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect()
}

/// The value at a dotted path of the Plan as the digest annotation names it
/// (scalars as text; absent: empty).
fn path_value(plan: &Plan, path: &str) -> String {
    let Ok(mut value) = serde_json::to_value(plan) else {
        return String::new();
    };
    for part in path.split('.') {
        value = match value.get(part) {
            Some(v) => v.clone(),
            None => return String::new(),
        };
    }
    match value {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The Plan's latest hash for `latest_version`, given the hashes of the
/// Secrets it mounts without `ignoreUpdates` (in spec order).
pub fn latest_hash(plan: &Plan, latest_version: &str, secret_hashes: &[String]) -> String {
    let mut hasher = Sha224::new();
    hasher.update(latest_version.as_bytes());
    hasher.update(
        plan.spec
            .service_account_name
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    );
    if let Some(paths) = plan.annotations().get(ANNOTATION_DIGEST)
        && !paths.is_empty()
    {
        for path in paths.split(',') {
            hasher.update(path_value(plan, path).as_bytes());
        }
    }
    for hash in secret_hashes {
        hasher.update(hash.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// wrangler's SafeConcatName: the parts joined by `-`; from 64 characters
/// on, cut to 57 (56 if the 57th is not alphanumeric) plus `-` and the
/// start of the whole name's sha256.
pub fn safe_concat_name(parts: &[&str]) -> String {
    let full = parts.join("-");
    if full.len() < 64 {
        return full;
    }
    let digest: String = Sha256::digest(full.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let bytes = full.as_bytes();
    if bytes[56].is_ascii_lowercase() || bytes[56].is_ascii_digit() {
        format!("{}-{}", &full[..57], &digest[..5])
    } else {
        format!("{}-{}", &full[..56], &digest[..6])
    }
}

/// The Job that applies `plan` (at `hash`) on `node`.
pub fn job_name(plan: &str, node: &str, hash: &str) -> String {
    let short_node = node.split('.').next().unwrap_or(node);
    safe_concat_name(&["apply", plan, "on", short_node, "with", hash])
}

/// The Job's labels (also its pod's): the controller, exclusivity, node,
/// plan, version and the plan's hash label; plus the Plan's own labels
/// outside `cattle.io/`.
pub fn job_labels(
    plan: &Plan,
    node: &str,
    controller: &str,
    latest_version: &str,
    hash: &str,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = plan
        .labels()
        .iter()
        .filter(|(k, _)| !k.contains("cattle.io/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let exclusive = plan.spec.exclusive.unwrap_or(false).to_string();
    for (key, value) in [
        (LABEL_CONTROLLER.to_string(), controller),
        (LABEL_EXCLUSIVE.to_string(), exclusive.as_str()),
        (LABEL_NODE.to_string(), node),
        (LABEL_PLAN.to_string(), plan.name_any().as_str()),
        (LABEL_VERSION.to_string(), latest_version),
        (plan_label(&plan.name_any()), hash),
    ] {
        labels.insert(key, value.to_string());
    }
    labels
}

/// The nodes the Plan should be applying on now (SUC's
/// SelectConcurrentNodes), sorted by name.
pub fn select_nodes<'a>(plan: &Plan, hash: &str, nodes: &'a [Node]) -> Vec<&'a Node> {
    let Some(node_selector) = plan.spec.node_selector.as_ref() else {
        // An absent selector selects nothing (LabelSelectorAsSelector(nil)).
        return Vec::new();
    };
    let label = plan_label(&plan.name_any());
    let applying = plan
        .status
        .as_ref()
        .map(|s| s.applying.clone())
        .unwrap_or_default();
    let hostname = |node: &Node| node.labels().get(HOSTNAME).cloned();
    let eligible: Vec<&Node> = nodes
        .iter()
        .filter(|n| selector::matches(node_selector, n.metadata.labels.as_ref()))
        .filter(|n| hostname(n).is_some())
        .filter(|n| {
            n.labels()
                .get(&label)
                .is_none_or(|v| v != "disabled" && v != hash)
        })
        .collect();
    let is_applying = |n: &Node| hostname(n).is_some_and(|h| applying.iter().any(|a| a == &h));
    let mut selected: Vec<&Node> = eligible
        .iter()
        .copied()
        .filter(|n| is_applying(n))
        .collect();
    let concurrency = usize::try_from(plan.spec.concurrency).unwrap_or(0);
    if selected.len() < concurrency {
        let plan_uid = plan.uid().unwrap_or_default();
        let order = |n: &Node| {
            let text = format!("{}{plan_uid}{hash}", n.uid().unwrap_or_default());
            Sha256::digest(text.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let mut candidates: Vec<(String, &Node)> = eligible
            .iter()
            .copied()
            .filter(|n| !is_applying(n))
            .map(|n| (order(n), n))
            .collect();
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, node) in candidates {
            if selected.len() >= concurrency {
                break;
            }
            selected.push(node);
        }
    }
    selected.sort_by_key(|n| n.name_any());
    selected
}

#[cfg(test)]
mod tests;
