//! The svclb DaemonSet a LoadBalancer Service gets: k3s's shape (name,
//! labels, one container per port with hostPort = the Service port,
//! klipper-lb's environment, tolerations, priority class, node selection)
//! running `k3r svclb` from k3r's own image.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const SVC_NAME_LABEL: &str = "svccontroller.k3s.cattle.io/svcname";
pub const SVC_NAMESPACE_LABEL: &str = "svccontroller.k3s.cattle.io/svcnamespace";
/// On every svclb DaemonSet: whether it carries the allow-list selector.
pub const NODE_SELECTOR_LABEL: &str = "svccontroller.k3s.cattle.io/nodeselector";
/// On Nodes: any node carrying it turns on allow-list mode.
pub const ENABLE_LB_LABEL: &str = "svccontroller.k3s.cattle.io/enablelb";
/// On a Service and Nodes: the pool a Service's pods are confined to.
pub const POOL_LABEL: &str = "svccontroller.k3s.cattle.io/lbpool";
pub const PRIORITY_ANNOTATION: &str = "svccontroller.k3s.cattle.io/priorityclassname";
/// The hash of what k3r applied, so unchanged DaemonSets are not re-sent.
pub const SPEC_HASH_ANNOTATION: &str = "servicelb.k3r.io/spec-hash";
pub const SERVICE_ACCOUNT: &str = "svclb";
pub const DEFAULT_PRIORITY_CLASS: &str = "system-node-critical";

/// k3s's name: `svclb-<service name, at most 48 characters, not ending
/// in '-'>-<first 8 characters of the UID>`.
pub fn name(service: &Service) -> String {
    let mut name = service.name_any();
    if name.len() > 48 {
        name.truncate(48);
        while name.ends_with('-') {
            name.pop();
        }
    }
    let uid = service.uid().unwrap_or_default();
    format!("svclb-{name}-{}", uid.get(..8).unwrap_or(&uid))
}

/// What the cluster's nodes say about where svclb pods may run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeMode {
    /// Some node carries `enablelb`: only nodes with `enablelb=true` serve.
    pub allow_list: bool,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub namespace: String,
    pub image: String,
}

/// A Service port the forwarder cannot serve, said in one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped(pub String);

/// The DaemonSet for `service` (None when no port can be forwarded) and
/// the ports left out.
pub fn desired(
    service: &Service,
    settings: &Settings,
    mode: &NodeMode,
) -> (Option<Value>, Vec<Skipped>) {
    let name = name(service);
    let spec = service.spec.clone().unwrap_or_default();
    let local = spec.external_traffic_policy.as_deref() == Some("Local");
    let families = spec.ip_families.clone().unwrap_or_default();
    let mut ranges: Vec<String> = spec
        .load_balancer_source_ranges
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    if ranges.is_empty() {
        // Upstream's default range is IPv4 only; k3s widens it for IPv6.
        ranges.push("0.0.0.0/0".into());
        if families.iter().any(|f| f == "IPv6") {
            ranges.push("::/0".into());
        }
    }
    let cluster_ips = spec
        .cluster_ips
        .clone()
        .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]))
        .unwrap_or_default()
        .into_iter()
        .filter(|ip| !ip.is_empty() && ip != "None")
        .collect::<Vec<_>>()
        .join(",");
    let mut skipped = Vec::new();
    let mut containers = Vec::new();
    for port in spec.ports.clone().unwrap_or_default() {
        let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".into());
        if protocol != "TCP" && protocol != "UDP" {
            skipped.push(Skipped(format!(
                "port {} is {protocol}: svclb forwards TCP and UDP only",
                port.port
            )));
            continue;
        }
        let (dest_port, dest_ips) = if local {
            match port.node_port {
                Some(node_port) if node_port > 0 => (
                    node_port,
                    json!({"name": "DEST_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}}),
                ),
                _ => {
                    skipped.push(Skipped(format!(
                        "port {} has no NodePort, which externalTrafficPolicy Local forwards to",
                        port.port
                    )));
                    continue;
                }
            }
        } else {
            if cluster_ips.is_empty() {
                skipped.push(Skipped(format!(
                    "port {}: the Service has no ClusterIP to forward to",
                    port.port
                )));
                continue;
            }
            (port.port, json!({"name": "DEST_IPS", "value": cluster_ips}))
        };
        let container_name = format!("lb-{}-{}", protocol.to_ascii_lowercase(), port.port);
        containers.push(json!({
            "name": container_name,
            "image": settings.image,
            "imagePullPolicy": "IfNotPresent",
            "args": ["svclb"],
            "ports": [{
                "name": container_name,
                "containerPort": port.port,
                "hostPort": port.port,
                "protocol": protocol,
            }],
            "env": [
                {"name": "SRC_PORT", "value": port.port.to_string()},
                {"name": "SRC_RANGES", "value": ranges.join(",")},
                {"name": "DEST_PROTO", "value": protocol},
                {"name": "DEST_PORT", "value": dest_port.to_string()},
                dest_ips,
            ],
            // User-space forwarding: no capability at all.
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]},
            },
            "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}},
        }));
    }
    if containers.is_empty() {
        return (None, skipped);
    }
    let labels = json!({
        "app": name,
        SVC_NAME_LABEL: service.name_any(),
        SVC_NAMESPACE_LABEL: service.namespace().unwrap_or_default(),
    });
    let priority = service
        .annotations()
        .get(PRIORITY_ANNOTATION)
        .cloned()
        .unwrap_or_else(|| DEFAULT_PRIORITY_CLASS.into());
    let mut pod_spec = json!({
        "priorityClassName": priority,
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "terminationGracePeriodSeconds": 5,
        // Ports below 1024 without CAP_NET_BIND_SERVICE, in the pod's own
        // network namespace only.
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
        },
        "tolerations": [
            {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
        ],
        "containers": containers,
    });
    if mode.allow_list {
        pod_spec["nodeSelector"] = json!({ENABLE_LB_LABEL: "true"});
        if let Some(pool) = service.labels().get(POOL_LABEL).filter(|p| !p.is_empty()) {
            pod_spec["affinity"] = pool_affinity(pool);
        }
    }
    let mut daemonset = json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": {
                NODE_SELECTOR_LABEL: mode.allow_list.to_string(),
                SVC_NAME_LABEL: service.name_any(),
                SVC_NAMESPACE_LABEL: service.namespace().unwrap_or_default(),
                "app.kubernetes.io/managed-by": "k3r-servicelb",
            },
        },
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    });
    let hash = spec_hash(&daemonset);
    daemonset["metadata"]["annotations"] = json!({ SPEC_HASH_ANNOTATION: hash });
    (Some(daemonset), skipped)
}

/// A node serves pool P when its `lbpool` label is P (k3s) or when it
/// carries `lbpool.P` (k3r: a node in several pools, one label each).
fn pool_affinity(pool: &str) -> Value {
    let mut terms = vec![
        json!({"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": [pool]}]}),
    ];
    // A label name has at most 63 characters: a longer pool has only k3s's form.
    if "lbpool.".len() + pool.len() <= 63 {
        terms.push(json!({"matchExpressions": [{"key": format!("{POOL_LABEL}.{pool}"), "operator": "Exists"}]}));
    }
    json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}})
}

fn spec_hash(daemonset: &Value) -> String {
    // serde_json's maps are ordered, so equal objects serialise equally.
    let digest = Sha256::digest(daemonset.to_string().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The hash recorded on a DaemonSet k3r applied.
pub fn applied_hash(annotations: &BTreeMap<String, String>) -> Option<&str> {
    annotations.get(SPEC_HASH_ANNOTATION).map(String::as_str)
}

#[cfg(test)]
mod tests;
