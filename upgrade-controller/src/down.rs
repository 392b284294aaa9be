//! Nodes that are down do not hold a Plan forever (SUC would wait for
//! them): a node whose Ready condition has not been True for longer than
//! the Plan's node-down timeout — the annotation
//! `upgrade.k3r.io/node-down-timeout` (a Go duration, default 10m; `0`
//! never skips) — is left out of the selection and reported; once it is
//! Ready again it is selected like any other.

use std::time::Duration;

use k3r_crds::Plan;
use k3r_reconciler::duration::parse_go_duration;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

pub const ANNOTATION: &str = "upgrade.k3r.io/node-down-timeout";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The Plan's timeout; None when skipping is off. A malformed value is
/// the validation's to refuse.
pub fn timeout(plan: &Plan) -> Result<Option<Duration>, String> {
    match plan.annotations().get(ANNOTATION) {
        None => Ok(Some(DEFAULT_TIMEOUT)),
        Some(text) => {
            let parsed = parse_go_duration(text.trim())
                .map_err(|e| format!("annotation {ANNOTATION}: {e}"))?;
            Ok((!parsed.is_zero()).then_some(parsed))
        }
    }
}

/// Since when `node` has not been Ready (None: it is Ready, or has no
/// Ready condition yet, as a node that just registered).
pub fn down_since(node: &Node) -> Option<Timestamp> {
    let ready = node
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    if ready.status == "True" {
        return None;
    }
    ready.last_transition_time.as_ref().map(|t| t.0)
}

/// `nodes` without those down for longer than `timeout`, and the names of
/// those left out.
pub fn without_down(
    nodes: Vec<Node>,
    timeout: Option<Duration>,
    now: Timestamp,
) -> (Vec<Node>, Vec<String>) {
    let Some(timeout) = timeout else {
        return (nodes, Vec::new());
    };
    let mut skipped = Vec::new();
    let up = nodes
        .into_iter()
        .filter(|node| {
            let long_down = down_since(node)
                .is_some_and(|since| crate::jobs::remaining(since, timeout, now).is_none());
            if long_down {
                skipped.push(node.name_any());
            }
            !long_down
        })
        .collect();
    (up, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ready: &str, since: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": since}]},
        }))
        .expect("node")
    }

    fn plan(annotations: serde_json::Value) -> Plan {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "upgrade.cattle.io/v1", "kind": "Plan",
            "metadata": {"name": "p", "namespace": "system-upgrade", "annotations": annotations},
            "spec": {"upgrade": {"image": "i"}},
        }))
        .expect("plan")
    }

    #[test]
    fn nodes_down_past_the_timeout_are_left_out() {
        let now: Timestamp = "2026-11-30T12:00:00Z".parse().expect("now");
        let nodes = vec![
            node("up", "True", "2026-11-30T08:00:00Z"),
            node("just-down", "Unknown", "2026-11-30T11:55:00Z"),
            node("long-down", "Unknown", "2026-11-30T11:40:00Z"),
            node("not-ready", "False", "2026-11-30T10:00:00Z"),
        ];
        let (up, skipped) = without_down(nodes.clone(), Some(DEFAULT_TIMEOUT), now);
        let names: Vec<String> = up.iter().map(|n| n.name_any()).collect();
        assert_eq!(names, ["up", "just-down"]);
        assert_eq!(skipped, ["long-down", "not-ready"]);
        let (all, none) = without_down(nodes, None, now);
        assert_eq!((all.len(), none.len()), (4, 0));
    }

    #[test]
    fn the_timeout_comes_from_the_annotation() {
        assert_eq!(
            timeout(&plan(serde_json::json!({}))),
            Ok(Some(DEFAULT_TIMEOUT))
        );
        assert_eq!(
            timeout(&plan(serde_json::json!({ANNOTATION: "90s"}))),
            Ok(Some(Duration::from_secs(90)))
        );
        assert_eq!(
            timeout(&plan(serde_json::json!({ANNOTATION: "0"}))),
            Ok(None)
        );
        assert!(
            timeout(&plan(serde_json::json!({ANNOTATION: "soon"})))
                .expect_err("malformed")
                .contains(ANNOTATION)
        );
    }
}
