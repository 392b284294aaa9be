//! When a node counts as Ready for this boot. A Ready condition left over
//! from before a restart does not count on its own: this boot's kubelet
//! must have reported it, or — after a quick restart, when the kubelet
//! sees nothing changed and does not report — at least renewed the node's
//! Lease.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// `node` (a Node as JSON) is Ready and its kubelet has reported since
/// `boot`, by heartbeat or by renewing `lease` (its Lease as JSON).
pub fn ready_since(node: &Value, lease: Option<&Value>, boot: SystemTime) -> bool {
    let ready = node["status"]["conditions"].as_array().and_then(|c| {
        c.iter()
            .find(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    let Some(ready) = ready else {
        return false;
    };
    since(&ready["lastHeartbeatTime"], boot)
        || lease.is_some_and(|lease| since(&lease["spec"]["renewTime"], boot))
}

/// `node`'s kubelet reports the k3r whose build metadata is `metadata`
/// (`k3r-v0.2.0`, [`k3r_version::kube_build_metadata`]): a node switched
/// to a new k3r is not Ready on it until its new kubelet says so. A
/// kubelet that names no k3r (an upstream build of the multicall) passes.
pub fn runs_k3r(node: &Value, metadata: &str) -> bool {
    let version = node["status"]["nodeInfo"]["kubeletVersion"]
        .as_str()
        .unwrap_or_default();
    !version.contains("+k3r-") || version.ends_with(&format!("+{metadata}"))
}

/// Whether an API timestamp (RFC 3339) is not before `instant` (to the
/// second: API times may carry no fraction).
pub fn since(timestamp: &Value, instant: SystemTime) -> bool {
    let floor = instant
        .duration_since(UNIX_EPOCH)
        .map(|d| UNIX_EPOCH + Duration::from_secs(d.as_secs()))
        .unwrap_or(instant);
    timestamp
        .as_str()
        .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
        .is_some_and(|t| t >= floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_times_compare_to_the_second() {
        let boot = humantime::parse_rfc3339("2026-11-24T09:10:51.700Z").expect("time");
        assert!(since(&serde_json::json!("2026-11-24T09:10:51Z"), boot));
        assert!(since(
            &serde_json::json!("2026-11-24T09:10:52.123456Z"),
            boot
        ));
        assert!(!since(
            &serde_json::json!("2026-11-24T09:10:50.999999Z"),
            boot
        ));
        assert!(!since(&serde_json::json!(null), boot));
        assert!(!since(&serde_json::json!("yesterday"), boot));
    }

    #[test]
    fn the_kubelet_must_name_this_k3r_if_it_names_one() {
        let node = |version: &str| serde_json::json!({"status": {"nodeInfo": {"kubeletVersion": version}}});
        assert!(runs_k3r(&node("v1.35.8+k3r-v0.2.0"), "k3r-v0.2.0"));
        assert!(!runs_k3r(&node("v1.35.8+k3r-v0.1.0"), "k3r-v0.2.0"));
        assert!(!runs_k3r(&node("v1.35.8+k3r-v0.2.0"), "k3r-v0.2.0-rc.1"));
        assert!(runs_k3r(&node("v1.35.8"), "k3r-v0.2.0"));
        assert!(runs_k3r(&serde_json::json!({}), "k3r-v0.2.0"));
    }

    #[test]
    fn a_stale_ready_condition_needs_a_fresh_lease() {
        let boot = humantime::parse_rfc3339("2026-11-24T10:00:00Z").expect("time");
        let node = |heartbeat: &str, status: &str| {
            serde_json::json!({"status": {"conditions": [
                {"type": "Ready", "status": status, "lastHeartbeatTime": heartbeat}
            ]}})
        };
        let lease = |renewed: &str| serde_json::json!({"spec": {"renewTime": renewed}});
        assert!(ready_since(
            &node("2026-11-24T10:00:05Z", "True"),
            None,
            boot
        ));
        assert!(!ready_since(
            &node("2026-11-24T09:59:00Z", "True"),
            None,
            boot
        ));
        assert!(!ready_since(
            &node("2026-11-24T09:59:00Z", "True"),
            Some(&lease("2026-11-24T09:59:30.000000Z")),
            boot
        ));
        assert!(ready_since(
            &node("2026-11-24T09:59:00Z", "True"),
            Some(&lease("2026-11-24T10:00:01.000000Z")),
            boot
        ));
        assert!(!ready_since(
            &node("2026-11-24T10:00:05Z", "False"),
            Some(&lease("2026-11-24T10:00:05.000000Z")),
            boot
        ));
    }
}
