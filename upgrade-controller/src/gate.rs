//! SUC's order for a Plan with a `prepare` step and a cordon or drain:
//! prepare first, then cordon and drain, then upgrade. SUC runs kubectl
//! in an init container after `prepare`; k3r cordons and drains from the
//! controller, so that init container (named `cordon` or `drain`, as
//! SUC's) is a gate instead: `k3r upgrade-gate`, from the operators image
//! every node tags from its own k3r, waits until the controller marks the
//! node drained for this Job. The controller starts the cordon once the
//! Job's pod shows `prepare` finished, and marks the node when the drain
//! is done. An agent Plan whose prepare step waits for the server Plan
//! thus leaves the agent schedulable for that wait.

use k3r_crds::Plan;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, Node, Pod, SecurityContext};
use kube::{Client, ResourceExt};
use serde_json::json;

/// The node-local operators image (k3r's `k3r-operators:node`).
pub const IMAGE: &str = "docker.io/k3r/k3r-operators:node";
/// On a node cordoned and drained for a gated Job: the Job's name.
pub const DRAINED: &str = "upgrade.k3r.io/drained-for";
const PREPARE: &str = "prepare";

/// Whether `plan`'s Jobs are gated: a prepare step and a cordon or drain.
pub fn wanted(plan: &Plan) -> bool {
    plan.spec.prepare.is_some() && (plan.spec.cordon == Some(true) || plan.spec.drain.is_some())
}

/// The gate init container of the Job named `job` (after `prepare`).
pub fn container(plan: &Plan, job: &str) -> Container {
    let name = if plan.spec.drain.is_some() {
        "drain"
    } else {
        "cordon"
    };
    Container {
        name: name.into(),
        image: Some(IMAGE.into()),
        image_pull_policy: Some("Never".into()),
        // Its one-line error becomes the Job failure the Plan reports.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        args: Some(vec![
            "upgrade-gate".into(),
            "--node".into(),
            "$(SYSTEM_UPGRADE_NODE_NAME)".into(),
            "--job".into(),
            job.into(),
        ]),
        env: Some(vec![crate::job::field_env(
            "SYSTEM_UPGRADE_NODE_NAME",
            "spec.nodeName",
        )]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Whether `job` waits at a gate.
pub fn gated(job: &Job) -> bool {
    job.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.image.as_deref() == Some(IMAGE)))
}

/// Whether the node is marked drained for the Job named `job` (the
/// controller asks, and so does the gate itself).
pub fn open(node: &Node, job: &str) -> bool {
    node.annotations().get(DRAINED).is_some_and(|j| j == job)
}

/// Whether a live pod of `job` (among `pods`) finished its prepare step.
pub fn prepared(pods: &[std::sync::Arc<Pod>], job: &Job) -> bool {
    let Some(uid) = job.uid() else {
        return false;
    };
    pods.iter()
        .filter(|p| p.owner_references().iter().any(|o| o.uid == uid))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.status.as_ref()?.init_container_statuses.as_ref())
        .flatten()
        .filter(|c| c.name == PREPARE)
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref())
        .any(|t| t.exit_code == 0)
}

/// Marks `node` drained for `job`: its gate opens.
pub async fn mark(client: &Client, node: &Node, job: &Job) -> Result<(), kube::Error> {
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    let body = json!({"metadata": {"annotations": {DRAINED: job.name_any()}}});
    nodes
        .patch(
            &node.name_any(),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(body),
        )
        .await?;
    tracing::info!(node = %node.name_any(), job = %job.name_any(), "node drained: the upgrade may run");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_opens_for_its_own_job_only() {
        let node = |annotations: serde_json::Value| -> Node {
            serde_json::from_value(json!({"metadata": {"name": "n1", "annotations": annotations}}))
                .expect("node")
        };
        assert!(open(&node(json!({DRAINED: "apply-a"})), "apply-a"));
        assert!(!open(&node(json!({DRAINED: "apply-b"})), "apply-a"));
        assert!(!open(&node(json!({})), "apply-a"));
    }
}
