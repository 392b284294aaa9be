//! What the controller does to a node through the API: cordon it (and
//! remember that this Plan did), release it (uncordon only what this Plan
//! cordoned — SUC#341), label it when its Job completed, and drain it with
//! the Eviction API, one pass at a time (the caller requeues while pods
//! are still terminating).

use std::collections::BTreeMap;

use k3r_crds::plan::DrainSpec;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::drain;

/// On a node this Plan cordoned: `<namespace>/<plan>`.
pub const CORDONED_BY: &str = "upgrade.k3r.io/cordoned-by";
const MANAGER: &str = "k3r-upgrade";

pub fn cordoned_by(node: &Node) -> Option<&str> {
    node.annotations().get(CORDONED_BY).map(String::as_str)
}

fn unschedulable(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    }
}

async fn patch(client: &Client, node: &str, body: serde_json::Value) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    match nodes.patch(node, &params(), &Patch::Merge(body)).await {
        Ok(_) => Ok(()),
        // The node is gone: nothing left to undo.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Cordons `node` for `owner` unless it is already unschedulable (then it
/// is someone else's, or already ours).
pub async fn cordon(client: &Client, node: &Node, owner: &str) -> Result<(), kube::Error> {
    if unschedulable(node) {
        return Ok(());
    }
    let body = json!({
        "metadata": {"annotations": {CORDONED_BY: owner}},
        "spec": {"unschedulable": true},
    });
    patch(client, &node.name_any(), body).await
}

/// Uncordons `node` if `owner` cordoned it.
pub async fn release(client: &Client, node: &Node, owner: &str) -> Result<bool, kube::Error> {
    if cordoned_by(node) != Some(owner) {
        return Ok(false);
    }
    let body = json!({
        "metadata": {"annotations": {CORDONED_BY: null, crate::gate::DRAINED: null}},
        "spec": {"unschedulable": null},
    });
    patch(client, &node.name_any(), body).await?;
    Ok(true)
}

/// Sets `labels` on `node` where they differ.
pub async fn label(
    client: &Client,
    node: &Node,
    labels: &BTreeMap<String, String>,
) -> Result<bool, kube::Error> {
    let current = node.labels();
    let changed: BTreeMap<&String, &String> = labels
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .collect();
    if changed.is_empty() {
        return Ok(false);
    }
    patch(
        client,
        &node.name_any(),
        json!({"metadata": {"labels": changed}}),
    )
    .await?;
    Ok(true)
}

/// Where a drain stands after one pass.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Nothing left to evict.
    Done,
    /// Evictions asked for (or refused for now by a disruption budget);
    /// this many pods are still there.
    Waiting(usize),
    /// kubectl drain would refuse: the pods and why.
    Refused(String),
}

/// One drain pass over `node`: evicts (or deletes, with
/// `disableEviction`) every pod the drain covers that is not already going.
pub async fn drain_pass(
    client: &Client,
    node: &str,
    spec: &DrainSpec,
) -> Result<Drained, kube::Error> {
    let all: Api<Pod> = Api::all(client.clone());
    let pods = all
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await?
        .items;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let evict = match drain::evictions(&pods, spec, &now) {
        Ok(evict) => evict,
        Err(refused) => return Ok(Drained::Refused(refused.to_string())),
    };
    if evict.is_empty() {
        return Ok(Drained::Done);
    }
    let delete = DeleteParams {
        grace_period_seconds: spec.grace_period.and_then(|g| u32::try_from(g).ok()),
        ..Default::default()
    };
    for pod in evict
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
        let result = if spec.disable_eviction == Some(true) {
            api.delete(&pod.name_any(), &delete).await.map(|_| ())
        } else {
            let params = EvictParams {
                delete_options: Some(delete.clone()),
                ..Default::default()
            };
            api.evict(&pod.name_any(), &params).await.map(|_| ())
        };
        match result {
            Ok(()) => tracing::info!(pod = %pod.name_any(), node, "evicted"),
            // Gone already, or a PodDisruptionBudget says not yet: the
            // next pass asks again, as kubectl drain does.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 429 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Drained::Waiting(evict.len()))
}
