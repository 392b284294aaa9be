//! `status.loadBalancer.ingress` as k3s computes it: the addresses of the
//! nodes with a Ready svclb pod (with `externalTrafficPolicy: Local`, only
//! nodes that also have a ready endpoint), ExternalIPs when any of those
//! nodes has one, else InternalIPs, filtered and ordered by the Service's
//! IP families.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;

/// Nodes with a ready endpoint of `service` (a Pod's, not an IP's).
pub fn nodes_with_ready_endpoints<'a>(
    service: &Service,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> BTreeSet<String> {
    let name = service.name_any();
    let namespace = service.namespace().unwrap_or_default();
    slices
        .into_iter()
        .filter(|s| {
            s.namespace().as_deref() == Some(namespace.as_str())
                && s.labels().get("kubernetes.io/service-name") == Some(&name)
        })
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| {
            e.target_ref.as_ref().and_then(|t| t.kind.as_deref()) == Some("Pod")
                && e.conditions.as_ref().and_then(|c| c.ready) == Some(true)
        })
        .filter_map(|e| e.node_name.clone())
        .collect()
}

pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The ingress IPs for `service` from its svclb pods and the nodes.
pub fn ingress_ips<'a>(
    service: &Service,
    pods: impl IntoIterator<Item = &'a Pod>,
    nodes: &BTreeMap<String, &Node>,
    ready_endpoint_nodes: Option<&BTreeSet<String>>,
) -> Vec<String> {
    let mut external = BTreeSet::new();
    let mut internal = BTreeSet::new();
    for pod in pods {
        let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.as_ref()) else {
            continue;
        };
        let has_ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_ref())
            .is_some_and(|ip| !ip.is_empty());
        if !has_ip || !pod_ready(pod) {
            continue;
        }
        if ready_endpoint_nodes.is_some_and(|ready| !ready.contains(node_name)) {
            continue;
        }
        let Some(node) = nodes.get(node_name) else {
            continue;
        };
        for address in node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
        {
            let Ok(ip) = address.address.parse::<IpAddr>() else {
                continue;
            };
            match address.type_.as_str() {
                "ExternalIP" => external.insert(ip),
                "InternalIP" => internal.insert(ip),
                _ => false,
            };
        }
    }
    let chosen = if external.is_empty() {
        internal
    } else {
        external
    };
    let families = service
        .spec
        .as_ref()
        .and_then(|s| s.ip_families.clone())
        .unwrap_or_else(|| vec!["IPv4".into()]);
    // Sorted as text within a family, as k3s does.
    let text: BTreeSet<(bool, String)> = chosen
        .iter()
        .map(|ip| (ip.is_ipv6(), ip.to_string()))
        .collect();
    let mut ips = Vec::new();
    for family in families {
        let want_v6 = family == "IPv6";
        ips.extend(
            text.iter()
                .filter(|(v6, _)| *v6 == want_v6)
                .map(|(_, ip)| ip.clone()),
        );
    }
    ips
}

/// Why the Service's svclb pods cannot run anywhere, from their
/// scheduling conditions ("0/3 nodes are available: 3 node(s) didn't have
/// free ports for the requested pod ports."), if they say.
pub fn unschedulable_reason<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Option<String> {
    pods.into_iter().find_map(|pod| {
        pod.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .find(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
            .and_then(|c| c.message.clone())
    })
}

#[cfg(test)]
mod tests;
