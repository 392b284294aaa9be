//! The nodeinfo controller, run on every node (the per-node mode): keeps
//! the label `k3r.io/version` of its own Node equal to the k3r version of
//! the operators image running there. It watches only its own Node.

use std::sync::Arc;

use k3r_reconciler::{Builder, Next, Runtime};
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;

pub const NAME: &str = "nodeinfo";
pub const VERSION_LABEL: &str = "k3r.io/version";

#[derive(Debug, thiserror::Error)]
#[error("labelling node {0}: {1}")]
pub struct Error(String, #[source] kube::Error);

pub struct Context {
    nodes: Api<Node>,
    /// The label value: `v<version>`.
    version: String,
}

impl Context {
    pub fn new(runtime: &Runtime, version: &str) -> Self {
        Self {
            nodes: Api::all(runtime.client.clone()),
            version: format!("v{}", version.trim_start_matches('v')),
        }
    }
}

pub async fn run(runtime: Runtime, node_name: String, version: &str) {
    let context = Arc::new(Context::new(&runtime, version));
    Builder::new(
        NAME,
        &runtime,
        context.nodes.clone(),
        watcher::Config::default().fields(&format!("metadata.name={node_name}")),
    )
    .run(reconcile, context)
    .await;
}

pub async fn reconcile(node: Arc<Node>, context: Arc<Context>) -> Result<Next, Error> {
    if let Some(current) = node.labels().get(VERSION_LABEL)
        && !older(current, &context.version)
    {
        // Equal, or newer: the node's k3r labels its node itself at boot,
        // and this pod may still run the previous release while the node
        // already runs the next (the DaemonSet rolls after the nodes).
        return Ok(Next::Done);
    }
    let name = node.name_any();
    let patch = json!({"metadata": {"labels": {VERSION_LABEL: context.version}}});
    context
        .nodes
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error(name.clone(), e))?;
    tracing::info!(node = %name, version = %context.version, "node labelled");
    Ok(Next::Done)
}

/// Whether `current` is older than `ours` (or not a release at all).
fn older(current: &str, ours: &str) -> bool {
    match (
        k3r_version::Release::parse(current),
        k3r_version::Release::parse(ours),
    ) {
        (Ok(current), Ok(ours)) => current < ours,
        (Err(_), _) => true,
        (Ok(_), Err(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k3r_reconciler::mock;

    #[tokio::test]
    async fn labels_its_node_once() {
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
        // Upgraded ahead of this pod: never labelled back down.
        node.labels_mut()
            .insert(VERSION_LABEL.into(), "v0.2.0".into());
        reconcile(Arc::new(node.clone()), Arc::clone(&context))
            .await
            .expect("reconcile");
        assert_eq!(server.requests().len(), 1, "a newer label stays");
        node.labels_mut()
            .insert(VERSION_LABEL.into(), "v0.0.9".into());
        reconcile(Arc::new(node), context).await.expect("reconcile");
        assert_eq!(server.requests().len(), 2, "an older label is raised");
    }
}
