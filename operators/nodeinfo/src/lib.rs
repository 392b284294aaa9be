//! The nodeinfo controller, run on every node (the per-node mode): the
//! label `k3r.io/version` of its own Node names the k3r the node runs (the
//! node's k3r sets it at boot; this controller sets it where it is
//! missing). The per-node pods run the node's own operators image
//! (`k3r-operators:node`, which each node's k3r tags from itself), so when
//! the label names another version the node has switched to another k3r:
//! the controller stops, the pod's container exits, and the kubelet starts
//! it again from the image the tag now names — same pod, the node's new
//! code. It watches only its own Node.

use std::sync::Arc;

use k3r_reconciler::{Builder, Next, Runtime};
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio::sync::Notify;

pub const NAME: &str = "nodeinfo";
pub const VERSION_LABEL: &str = "k3r.io/version";

#[derive(Debug, thiserror::Error)]
#[error("labelling node {0}: {1}")]
pub struct Error(String, #[source] kube::Error);

pub struct Context {
    nodes: Api<Node>,
    /// The label value: `v<version>`.
    version: String,
    /// Told once the node runs another k3r than this pod.
    switched: Notify,
}

impl Context {
    pub fn new(runtime: &Runtime, version: &str) -> Self {
        Self {
            nodes: Api::all(runtime.client.clone()),
            version: format!("v{}", version.trim_start_matches('v')),
            switched: Notify::new(),
        }
    }
}

/// Runs until the node runs another k3r than this pod (the pod must then
/// restart onto the node's image).
pub async fn run(runtime: Runtime, node_name: String, version: &str) {
    let context = Arc::new(Context::new(&runtime, version));
    let controller = Builder::new(
        NAME,
        &runtime,
        context.nodes.clone(),
        watcher::Config::default().fields(&format!("metadata.name={node_name}")),
    )
    .run(reconcile, Arc::clone(&context));
    tokio::select! {
        () = controller => {}
        () = context.switched.notified() => {}
    }
}

pub async fn reconcile(node: Arc<Node>, context: Arc<Context>) -> Result<Next, Error> {
    let name = node.name_any();
    match node.labels().get(VERSION_LABEL) {
        Some(current) if same(current, &context.version) => return Ok(Next::Done),
        Some(current) if k3r_version::Release::parse(current).is_ok() => {
            tracing::info!(
                node = %name,
                node_version = %current,
                pod_version = %context.version,
                "the node switched to another k3r: restarting onto its image"
            );
            context.switched.notify_one();
            return Ok(Next::Done);
        }
        _ => {}
    }
    let patch = json!({"metadata": {"labels": {VERSION_LABEL: context.version}}});
    context
        .nodes
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error(name.clone(), e))?;
    tracing::info!(node = %name, version = %context.version, "node labelled");
    Ok(Next::Done)
}

fn same(a: &str, b: &str) -> bool {
    a.trim_start_matches('v') == b.trim_start_matches('v')
}

#[cfg(test)]
mod tests {
    use super::*;
    use k3r_reconciler::mock;

    #[tokio::test]
    async fn labels_its_node_and_stops_once_the_node_switched() {
        let (client, server) = mock::client(|r| (200, r.body.clone()));
        let context = Arc::new(Context::new(&Runtime::new(client), "0.1.0"));
        let mut node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1", "labels": {"a": "b"}},
        }))
        .expect("node");
        reconcile(Arc::new(node.clone()), Arc::clone(&context))
            .await
            .expect("reconcile");
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].line(), "PATCH /api/v1/nodes/worker-1");
        assert_eq!(
            requests[0].body,
            json!({"metadata": {"labels": {"k3r.io/version": "v0.1.0"}}})
        );
        node.labels_mut()
            .insert(VERSION_LABEL.into(), "v0.1.0".into());
        reconcile(Arc::new(node.clone()), Arc::clone(&context))
            .await
            .expect("reconcile");
        assert_eq!(server.requests().len(), 1, "already labelled");
        node.labels_mut()
            .insert(VERSION_LABEL.into(), "not a version".into());
        reconcile(Arc::new(node.clone()), Arc::clone(&context))
            .await
            .expect("reconcile");
        assert_eq!(server.requests().len(), 2, "a broken label is fixed");
        let switched = context.switched.notified();
        // Upgraded (or rolled back) under this pod: never relabelled, the
        // pod restarts instead.
        for other in ["v0.2.0", "v0.0.9"] {
            node.labels_mut().insert(VERSION_LABEL.into(), other.into());
            reconcile(Arc::new(node.clone()), Arc::clone(&context))
                .await
                .expect("reconcile");
        }
        assert_eq!(server.requests().len(), 2, "the node's label stays");
        tokio::time::timeout(std::time::Duration::from_secs(1), switched)
            .await
            .expect("told to restart");
    }
}
