//! The nodehosts controller: keeps the `NodeHosts` key of the kube-system
//! coredns ConfigMap listing every node ("IP hostname" per line), so that
//! pods resolve node names through CoreDNS's hosts plugin. It owns only that
//! key (server-side apply with its own field manager), so re-applying the
//! packaged coredns manifest never drops it; it never creates the ConfigMap
//! (CoreDNS may be disabled).

use std::sync::Arc;

use k3r_reconciler::{Builder, Next, ObjectRef, Runtime, Store};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;

const MANAGER: &str = "k3r-nodehosts";
const NAMESPACE: &str = "kube-system";
const CONFIGMAP: &str = "coredns";

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

pub const NAME: &str = "nodehosts";

#[derive(Debug, thiserror::Error)]
#[error("patching the {CONFIGMAP} ConfigMap: {0}")]
pub struct Error(#[source] kube::Error);

pub struct Context {
    configmaps: Api<ConfigMap>,
    nodes: Store<Node>,
}

/// Runs the controller: the coredns ConfigMap is reconciled whenever it
/// or any Node changes; Nodes are read from the cache, never listed.
pub async fn run(runtime: Runtime) {
    let configmaps: Api<ConfigMap> = Api::namespaced(runtime.client.clone(), NAMESPACE);
    let (builder, nodes) = Builder::new(
        NAME,
        &runtime,
        configmaps.clone(),
        watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP}")),
    )
    .watches_cached(
        Api::<Node>::all(runtime.client.clone()),
        watcher::Config::default(),
        |_| Some(ObjectRef::new(CONFIGMAP).within(NAMESPACE)),
    );
    builder
        .run(reconcile, Arc::new(Context { configmaps, nodes }))
        .await;
}

pub async fn reconcile(current: Arc<ConfigMap>, context: Arc<Context>) -> Result<Next, Error> {
    let nodes: Vec<Node> = context
        .nodes
        .state()
        .iter()
        .map(|n| n.as_ref().clone())
        .collect();
    let wanted = node_hosts(&nodes);
    let present = current.data.as_ref().and_then(|d| d.get("NodeHosts"));
    if present == Some(&wanted) {
        return Ok(Next::Done);
    }
    let patch = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE},
        "data": {"NodeHosts": wanted},
    });
    context
        .configmaps
        .patch(
            CONFIGMAP,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(Error)?;
    tracing::info!(nodes = wanted.lines().count(), "NodeHosts updated");
    Ok(Next::Done)
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

    #[tokio::test]
    async fn patches_only_a_stale_nodehosts_key_from_the_node_cache() {
        use k3r_reconciler::mock;
        use kube::runtime::reflector;
        let (reader, mut writer) = reflector::store::<Node>();
        for n in [
            node("b", &[("InternalIP", "10.0.0.2")]),
            node("a", &[("InternalIP", "10.0.0.1")]),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(n));
        }
        let (client, server) = mock::client(|r| (200, r.body.clone()));
        let context = Arc::new(Context {
            configmaps: Api::namespaced(client, NAMESPACE),
            nodes: reader,
        });
        let mut configmap = ConfigMap {
            metadata: ObjectMeta {
                name: Some(CONFIGMAP.into()),
                namespace: Some(NAMESPACE.into()),
                ..ObjectMeta::default()
            },
            data: Some([("NodeHosts".to_string(), "10.0.0.1 a\n".to_string())].into()),
            ..ConfigMap::default()
        };
        let next = reconcile(Arc::new(configmap.clone()), Arc::clone(&context))
            .await
            .expect("reconcile");
        assert_eq!(next, Next::Done);
        let requests = server.requests();
        assert_eq!(
            requests.iter().map(|r| r.line()).collect::<Vec<_>>(),
            ["PATCH /api/v1/namespaces/kube-system/configmaps/coredns"]
        );
        assert!(requests[0].path.contains("fieldManager=k3r-nodehosts"));
        assert_eq!(
            requests[0].body["data"]["NodeHosts"],
            "10.0.0.1 a\n10.0.0.2 b\n"
        );
        configmap.data = Some(
            [(
                "NodeHosts".to_string(),
                "10.0.0.1 a\n10.0.0.2 b\n".to_string(),
            )]
            .into(),
        );
        reconcile(Arc::new(configmap), context)
            .await
            .expect("reconcile");
        assert_eq!(
            server.requests().len(),
            1,
            "nothing to change, nothing sent"
        );
    }
}
