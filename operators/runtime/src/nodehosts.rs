//! The nodehosts operator: keeps the `NodeHosts` key of the kube-system
//! coredns ConfigMap listing every node ("IP hostname" per line), so that
//! pods resolve node names through CoreDNS's hosts plugin. It owns only that
//! key (server-side apply with its own field manager), so re-applying the
//! packaged coredns manifest never drops it; it never creates the ConfigMap
//! (CoreDNS may be disabled).

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::Error;
use crate::status::OperatorHandle;

const MANAGER: &str = "k3r-nodehosts";
const NAMESPACE: &str = "kube-system";
const CONFIGMAP: &str = "coredns";
/// Even without events, look again this often (and prove liveness).
const RESYNC: Duration = Duration::from_secs(30);

/// The NodeHosts text for these nodes: InternalIP addresses (ExternalIP
/// when a node has none), sorted by node name, one line per address.
pub fn node_hosts(nodes: &[Node]) -> String {
    let mut lines: Vec<(String, String)> = Vec::new();
    for node in nodes {
        let addresses = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let pick = |kind: &str| -> Vec<String> {
            addresses
                .iter()
                .filter(|a| a.type_ == kind)
                .map(|a| a.address.clone())
                .collect()
        };
        let mut ips = pick("InternalIP");
        if ips.is_empty() {
            ips = pick("ExternalIP");
        }
        for ip in ips {
            lines.push((node.name_any(), ip));
        }
    }
    lines.sort();
    lines
        .into_iter()
        .map(|(name, ip)| format!("{ip} {name}\n"))
        .collect()
}

pub async fn run(client: Client, handle: OperatorHandle) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let configmaps: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    // Any change of a node or of the ConfigMap triggers a pass.
    let node_events = watcher(nodes.clone(), watcher::Config::default())
        .default_backoff()
        .map(|_| ());
    let configmap_events = watcher(
        configmaps.clone(),
        watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP}")),
    )
    .default_backoff()
    .map(|_| ());
    let mut events = std::pin::pin!(futures::stream::select(node_events, configmap_events));
    loop {
        let started = Instant::now();
        let result = reconcile(&nodes, &configmaps).await;
        if let Err(err) = &result {
            tracing::warn!(error = %err, "updating NodeHosts failed; retrying");
        }
        handle.reconciled(result.is_ok(), started.elapsed());
        crate::events::wait_for_change(events.as_mut(), RESYNC).await;
    }
}

async fn reconcile(nodes: &Api<Node>, configmaps: &Api<ConfigMap>) -> Result<(), Error> {
    let Some(current) = configmaps.get_opt(CONFIGMAP).await? else {
        return Ok(());
    };
    let wanted = node_hosts(&nodes.list(&ListParams::default()).await?.items);
    let present = current.data.as_ref().and_then(|d| d.get("NodeHosts"));
    if present == Some(&wanted) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE},
        "data": {"NodeHosts": wanted},
    });
    configmaps
        .patch(
            CONFIGMAP,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    tracing::info!(nodes = wanted.lines().count(), "NodeHosts updated");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};
    use kube::api::ObjectMeta;

    fn node(name: &str, addresses: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                addresses: Some(
                    addresses
                        .iter()
                        .map(|(t, a)| NodeAddress {
                            type_: (*t).into(),
                            address: (*a).into(),
                        })
                        .collect(),
                ),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    #[test]
    fn one_line_per_internal_address_sorted_by_name() {
        let nodes = [
            node(
                "worker-b",
                &[("InternalIP", "10.0.0.3"), ("Hostname", "worker-b")],
            ),
            node(
                "server",
                &[("InternalIP", "10.0.0.1"), ("ExternalIP", "203.0.113.1")],
            ),
            node("edge", &[("ExternalIP", "203.0.113.9")]),
            node("bare", &[]),
        ];
        assert_eq!(
            node_hosts(&nodes),
            "203.0.113.9 edge\n10.0.0.1 server\n10.0.0.3 worker-b\n"
        );
    }
}
