//! Which pods a drain evicts, by `kubectl drain`'s rules as SUC's plans
//! configure it (the controller then evicts them through the Eviction
//! API, so no kubectl image is needed):
//! - mirror (static) pods are never evicted;
//! - pods of the upgrade Jobs (label `upgrade.cattle.io/controller`) are
//!   never evicted, and `podSelector` narrows the rest;
//! - pods already deleted longer than `skipWaitForDeleteTimeout` ago are
//!   skipped;
//! - DaemonSet pods are skipped when `ignoreDaemonSets` (the default),
//!   else refused;
//! - pods with emptyDir volumes are refused unless their data may go
//!   (`deleteEmptydirData`/`deleteLocalData`, which SUC turns on unless
//!   one of them is set to false);
//! - pods no controller manages are refused unless `force`;
//! - finished pods are always removed;
//! - pods that tolerate the cordon itself (the
//!   `node.kubernetes.io/unschedulable` taint, e.g. k3r's own operators,
//!   pinned to the server) are left: they would be rescheduled onto the
//!   same node at once, and the drain would chase them forever.

use k3r_crds::plan::DrainSpec;
use k3r_reconciler::selector;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::suc::LABEL_CONTROLLER;

const MIRROR: &str = "kubernetes.io/config.mirror";
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Pods the drain may not remove, each with kubectl's reason.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub Vec<(String, &'static str)>);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list: Vec<String> = self
            .0
            .iter()
            .map(|(pod, why)| format!("{pod} ({why})"))
            .collect();
        write!(f, "cannot drain: {}", list.join(", "))
    }
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn controller_kind(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.kind.as_str())
}

fn tolerates_cordon(pod: &Pod) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.tolerations.iter().flatten())
        .any(|t| {
            let effect_ok = matches!(t.effect.as_deref(), None | Some("") | Some("NoSchedule"));
            let exists = t.operator.as_deref() == Some("Exists");
            let key_ok = match t.key.as_deref() {
                None | Some("") => exists,
                Some(key) => {
                    key == UNSCHEDULABLE_TAINT
                        && (exists || t.value.as_deref().unwrap_or("").is_empty())
                }
            };
            effect_ok && key_ok
        })
}

fn has_empty_dir(pod: &Pod) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .any(|v| v.empty_dir.is_some())
}

/// The pods of the node (`pods`) the drain evicts, or the ones it may not.
pub fn evictions<'a>(
    pods: &'a [Pod],
    spec: &DrainSpec,
    now: &Time,
) -> Result<Vec<&'a Pod>, Refused> {
    let ignore_daemonsets = spec.ignore_daemon_sets.unwrap_or(true);
    let delete_local =
        spec.delete_local_data != Some(false) && spec.delete_emptydir_data != Some(false);
    let force = spec.force.unwrap_or(false);
    let mut evict = Vec::new();
    let mut refused = Vec::new();
    for pod in pods {
        if pod.annotations().contains_key(MIRROR) || pod.labels().contains_key(LABEL_CONTROLLER) {
            continue;
        }
        if let Some(selector) = &spec.pod_selector
            && !selector::matches(selector, pod.metadata.labels.as_ref())
        {
            continue;
        }
        if let (Some(deleted), Some(wait)) = (
            &pod.metadata.deletion_timestamp,
            spec.skip_wait_for_delete_timeout,
        ) && wait > 0
            && now.0.as_second() - deleted.0.as_second() > i64::from(wait)
        {
            continue;
        }
        let name = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
        if finished(pod) {
            evict.push(pod);
            continue;
        }
        match controller_kind(pod) {
            Some("DaemonSet") if ignore_daemonsets => continue,
            Some("DaemonSet") => {
                refused.push((name, "DaemonSet-managed; ignoreDaemonSets is false"));
                continue;
            }
            None if !force => {
                refused.push((name, "not managed by a controller; force is not set"));
                continue;
            }
            Some(_) if tolerates_cordon(pod) => continue,
            _ => {}
        }
        if has_empty_dir(pod) && !delete_local {
            refused.push((name, "uses emptyDir; deleteEmptydirData is false"));
            continue;
        }
        evict.push(pod);
    }
    if refused.is_empty() {
        Ok(evict)
    } else {
        Err(Refused(refused))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, extra: serde_json::Value) -> Pod {
        let mut value =
            json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"containers": []}});
        if let (Some(object), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
            for (k, v) in extra {
                if let (Some(serde_json::Value::Object(into)), serde_json::Value::Object(v)) =
                    (object.get_mut(&k), v.clone())
                {
                    into.extend(v);
                } else {
                    object.insert(k, v);
                }
            }
        }
        serde_json::from_value(value).expect("pod")
    }

    fn owned(kind: &str) -> serde_json::Value {
        json!({"metadata": {"ownerReferences": [
            {"apiVersion": "apps/v1", "kind": kind, "name": "o", "uid": "u", "controller": true}]}})
    }

    fn names(pods: Vec<&Pod>) -> Vec<String> {
        pods.iter().map(|p| p.name_any()).collect()
    }

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_000_000).expect("time"))
    }

    #[test]
    fn kubectls_rules_with_sucs_defaults() {
        let pods = vec![
            pod("web", owned("ReplicaSet")),
            pod("agent", owned("DaemonSet")),
            pod(
                "static",
                json!({"metadata": {"annotations": {MIRROR: "x"}}}),
            ),
            pod(
                "upgrade-job",
                json!({"metadata": {"labels": {LABEL_CONTROLLER: "suc"}}}),
            ),
            pod(
                "cache",
                json!({"metadata": owned("ReplicaSet")["metadata"].clone(),
                                "spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}),
            ),
            pod("done", json!({"status": {"phase": "Succeeded"}})),
        ];
        let spec = DrainSpec::default();
        assert_eq!(
            names(evictions(&pods, &spec, &now()).expect("drain")),
            ["web", "cache", "done"]
        );

        let bare = vec![pod("bare", json!({}))];
        let refused = evictions(&bare, &spec, &now()).expect_err("unmanaged");
        assert_eq!(
            refused.to_string(),
            "cannot drain: ns/bare (not managed by a controller; force is not set)"
        );
        let force = DrainSpec {
            force: Some(true),
            ..Default::default()
        };
        assert_eq!(
            names(evictions(&bare, &force, &now()).expect("forced")),
            ["bare"]
        );

        let strict = DrainSpec {
            ignore_daemon_sets: Some(false),
            delete_emptydir_data: Some(false),
            ..Default::default()
        };
        let refused = evictions(&pods, &strict, &now()).expect_err("strict");
        assert_eq!(
            refused
                .0
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>(),
            ["ns/agent", "ns/cache"]
        );
    }

    #[test]
    fn pods_that_tolerate_the_cordon_stay() {
        let tolerating = |name: &str, toleration: serde_json::Value| {
            let mut value = owned("ReplicaSet");
            value["spec"] = json!({"containers": [], "tolerations": [toleration]});
            pod(name, value)
        };
        let pods = vec![
            tolerating("operators", json!({"operator": "Exists"})),
            tolerating(
                "cordon",
                json!({"key": UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"}),
            ),
            tolerating(
                "other-taint",
                json!({"key": "CriticalAddonsOnly", "operator": "Exists"}),
            ),
            tolerating(
                "noexecute-only",
                json!({"operator": "Exists", "effect": "NoExecute"}),
            ),
        ];
        assert_eq!(
            names(evictions(&pods, &DrainSpec::default(), &now()).expect("drain")),
            ["other-taint", "noexecute-only"]
        );
    }

    #[test]
    fn pod_selector_and_long_deleted_pods_narrow_the_drain() {
        let mut gone = pod("gone", owned("ReplicaSet"));
        gone.metadata.deletion_timestamp = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(1_000_000 - 120).expect("time"),
        ));
        let pods = vec![
            pod(
                "db",
                json!({"metadata": {"labels": {"tier": "db"},
                "ownerReferences": owned("StatefulSet")["metadata"]["ownerReferences"].clone()}}),
            ),
            pod("web", owned("ReplicaSet")),
            gone,
        ];
        let spec = DrainSpec {
            skip_wait_for_delete_timeout: Some(60),
            ..Default::default()
        };
        assert_eq!(
            names(evictions(&pods, &spec, &now()).expect("drain")),
            ["db", "web"]
        );
        let only_db = DrainSpec {
            pod_selector: Some(
                serde_json::from_value(json!({"matchLabels": {"tier": "db"}})).expect("selector"),
            ),
            ..Default::default()
        };
        assert_eq!(
            names(evictions(&pods, &only_db, &now()).expect("drain")),
            ["db"]
        );
    }
}
