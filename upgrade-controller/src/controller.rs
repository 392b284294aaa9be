//! The Plan controller: one kube-runtime Controller over Plans in every
//! namespace, with Nodes, its Jobs and their pods cached and Secrets watched (a
//! change re-hashes the Plans that mount them). Each reconcile is one
//! pass of [`crate::rollout`]; deleting a Plan releases every node it
//! cordoned and removes its Jobs before the finalizer comes off (SUC#71).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k3r_crds::Plan;
use k3r_reconciler::finalizer::{self, Event, finalizer};
use k3r_reconciler::{Builder, Next, ObjectRef, Runtime, Store};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PropagationPolicy};
use kube::runtime::events::Recorder;
use kube::runtime::watcher;

use crate::node_ops;
use crate::suc::{LABEL_CONTROLLER, LABEL_PLAN};

/// The controller's name in metrics and on Events.
pub const NAME: &str = "upgrade";
/// SUC's controller name, on every Job's `upgrade.cattle.io/controller`
/// label, so SUC users' selectors and dashboards find k3r's Jobs.
pub const CONTROLLER: &str = "system-upgrade-controller";
/// Holds a deleted Plan until the nodes it cordoned are released.
pub const FINALIZER: &str = "upgrade.k3r.io/release-nodes";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

pub struct Context {
    pub(crate) client: kube::Client,
    pub(crate) nodes: Store<Node>,
    pub(crate) jobs: Store<Job>,
    /// The Jobs' pods: whether a gated Job's prepare step is done.
    pub(crate) pods: Store<Pod>,
    pub(crate) recorder: Recorder,
    /// When each node's drain began, by `namespace/plan/node`: the drain
    /// timeout counts from there (an operators restart starts it again).
    pub(crate) drains: Mutex<HashMap<String, Instant>>,
    /// Sent to channel servers as X-SUC-Cluster-ID (kube-system's UID).
    pub(crate) cluster_id: String,
}

impl Context {
    pub fn new(
        runtime: &Runtime,
        nodes: Store<Node>,
        jobs: Store<Job>,
        pods: Store<Pod>,
        cluster_id: String,
    ) -> Self {
        Self {
            client: runtime.client.clone(),
            nodes,
            jobs,
            pods,
            recorder: runtime.recorder(CONTROLLER),
            drains: Mutex::default(),
            cluster_id,
        }
    }

    /// The Jobs this controller made for `plan`.
    pub(crate) fn jobs_of(&self, plan: &Plan) -> Vec<Arc<Job>> {
        let namespace = plan.namespace();
        let name = plan.name_any();
        self.jobs
            .state()
            .into_iter()
            .filter(|j| j.namespace() == namespace)
            .filter(|j| j.labels().get(LABEL_PLAN) == Some(&name))
            .collect()
    }
}

fn plan_of_job(job: Job) -> Option<ObjectRef<Plan>> {
    let plan = job.labels().get(LABEL_PLAN)?.clone();
    Some(ObjectRef::new(&plan).within(&job.namespace()?))
}

fn plan_of_pod(pod: Pod) -> Option<ObjectRef<Plan>> {
    let plan = pod.labels().get(LABEL_PLAN)?.clone();
    Some(ObjectRef::new(&plan).within(&pod.namespace()?))
}

pub async fn run(runtime: Runtime) {
    let client = runtime.client.clone();
    let builder = Builder::new(
        NAME,
        &runtime,
        Api::<Plan>::all(client.clone()),
        watcher::Config::default(),
    );
    let plans = builder.store();
    let every_plan = {
        let plans = plans.clone();
        move || {
            plans
                .state()
                .iter()
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    // Node labels and readiness decide what each Plan selects.
    let (builder, nodes) = builder.watches_cached(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        move |_: Node| every_plan(),
    );
    let (builder, jobs) = builder.watches_cached(
        Api::<Job>::all(client.clone()),
        watcher::Config::default().labels(&format!("{LABEL_CONTROLLER}={CONTROLLER}")),
        plan_of_job,
    );
    let (builder, pods) = builder.watches_cached(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().labels(&format!("{LABEL_CONTROLLER}={CONTROLLER}")),
        plan_of_pod,
    );
    // Helm's release Secrets are many and never a Plan's.
    let builder = builder.watches(
        Api::<Secret>::all(client.clone()),
        watcher::Config::default().fields("type!=helm.sh/release.v1"),
        move |secret: Secret| {
            let name = secret.name_any();
            let namespace = secret.namespace();
            plans
                .state()
                .iter()
                .filter(|p| p.namespace() == namespace)
                .filter(|p| {
                    p.spec
                        .secrets
                        .iter()
                        .any(|s| s.name.as_deref() == Some(&name))
                })
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        },
    );
    let cluster_id = match Api::<k8s_openapi::api::core::v1::Namespace>::all(client)
        .get("kube-system")
        .await
    {
        Ok(ns) => ns.uid().unwrap_or_default(),
        Err(err) => {
            tracing::warn!(error = %err, "no cluster ID for channel requests");
            String::new()
        }
    };
    let context = Arc::new(Context::new(&runtime, nodes, jobs, pods, cluster_id));
    builder.run(reconcile, context).await;
}

pub async fn reconcile(plan: Arc<Plan>, ctx: Arc<Context>) -> Result<Next, Error> {
    let namespace = plan.namespace().unwrap_or_default();
    let plans: Api<Plan> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&plans, FINALIZER, plan, |event| async {
        match event {
            Event::Apply(plan) => crate::rollout::apply(&ctx, &plan).await,
            Event::Cleanup(plan) => cleanup(&ctx, &plan).await,
        }
    })
    .await
    .map_err(|e| match e {
        finalizer::Error::Reconcile(e) => e,
        other => Error::Other(other.to_string()),
    })
}

/// `namespace/plan`, as the cordon annotation records it.
pub(crate) fn owner(plan: &Plan) -> String {
    format!(
        "{}/{}",
        plan.namespace().unwrap_or_default(),
        plan.name_any()
    )
}

/// A deleted Plan: its Jobs go (a running upgrade is stopped) and every
/// node it cordoned is schedulable again.
async fn cleanup(ctx: &Context, plan: &Plan) -> Result<Next, Error> {
    let namespace = plan.namespace().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let background = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    for job in ctx.jobs_of(plan) {
        match jobs.delete(&job.name_any(), &background).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let owner = owner(plan);
    for node in ctx.nodes.state() {
        if node_ops::release(&ctx.client, &node, &owner).await? {
            tracing::info!(node = %node.name_any(), plan = %owner, "uncordoned: its Plan was deleted");
        }
    }
    ctx.drains
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|key, _| !key.starts_with(&format!("{owner}/")));
    Ok(Next::Done)
}

#[cfg(test)]
mod tests;
