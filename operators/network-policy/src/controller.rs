//! The per-node controller: reconciles this node's Node object, which every
//! change of a Pod, Namespace or NetworkPolicy anywhere triggers (a burst
//! of changes is one reconcile). Each reconcile compiles the whole node's
//! ruleset from the caches and replaces the table only when the result
//! differs from what it last applied, or the table has gone (e.g. flushed
//! by hand) — checked again every minute.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k3r_nftables::Ruleset;
use k3r_reconciler::events::{Type, publish};
use k3r_reconciler::{Builder, Next, ObjectRef, Runtime, Store};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::Api;
use kube::runtime::events::Recorder;
use kube::runtime::watcher;

use crate::compile::{Finding, compile};
use crate::{Error, Firewall};

pub const NAME: &str = "network-policy";
/// How often the table's presence is checked when nothing changes.
const RECHECK: Duration = Duration::from_secs(60);

pub struct Context {
    node: String,
    pods: Store<Pod>,
    namespaces: Store<Namespace>,
    policies: Store<NetworkPolicy>,
    firewall: Arc<dyn Firewall>,
    recorder: Recorder,
    applied: Mutex<Option<Ruleset>>,
    /// Findings already reported (each once per policy and message).
    reported: Mutex<BTreeSet<Finding>>,
}

pub async fn run(runtime: Runtime, node: String, firewall: impl Firewall) {
    let client = runtime.client.clone();
    let this_node = node.clone();
    let builder = Builder::new(
        NAME,
        &runtime,
        Api::<Node>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={node}")),
    );
    let to_node = move || Some(ObjectRef::<Node>::new(&this_node));
    let (builder, pods) = {
        let to_node = to_node.clone();
        builder.watches_cached(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default(),
            move |_: Pod| to_node(),
        )
    };
    let (builder, namespaces) = {
        let to_node = to_node.clone();
        builder.watches_cached(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
            move |_: Namespace| to_node(),
        )
    };
    let (builder, policies) = builder.watches_cached(
        Api::<NetworkPolicy>::all(client),
        watcher::Config::default(),
        move |_: NetworkPolicy| to_node(),
    );
    let context = Context {
        node,
        pods,
        namespaces,
        policies,
        firewall: Arc::new(firewall),
        recorder: runtime.recorder(NAME),
        applied: Mutex::default(),
        reported: Mutex::default(),
    };
    builder.run(reconcile, Arc::new(context)).await;
}

impl Context {
    pub fn new(
        runtime: &Runtime,
        node: String,
        stores: (Store<Pod>, Store<Namespace>, Store<NetworkPolicy>),
        firewall: impl Firewall,
    ) -> Self {
        Context {
            node,
            pods: stores.0,
            namespaces: stores.1,
            policies: stores.2,
            firewall: Arc::new(firewall),
            recorder: runtime.recorder(NAME),
            applied: Mutex::default(),
            reported: Mutex::default(),
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Worker(e.to_string()))?
}

pub async fn reconcile(_node: Arc<Node>, context: Arc<Context>) -> Result<Next, Error> {
    let started = Instant::now();
    let policies = context.policies.state();
    let compiled = compile(
        &context.node,
        &context.pods.state(),
        &context.namespaces.state(),
        &policies,
    );
    let unchanged = context
        .applied
        .lock()
        .map(|a| a.as_ref() == Some(&compiled.ruleset))
        .unwrap_or(false);
    let firewall = Arc::clone(&context.firewall);
    let present = unchanged && blocking(move || firewall.exists()).await?;
    if !present {
        let ruleset = compiled.ruleset.clone();
        let firewall = Arc::clone(&context.firewall);
        blocking(move || firewall.replace(&ruleset)).await?;
        let sets = &compiled.ruleset.sets;
        tracing::info!(
            isolated_ingress = compiled.isolated.0,
            isolated_egress = compiled.isolated.1,
            policies = policies.len(),
            rules = compiled.ruleset.rules.len(),
            sets = sets.len(),
            set_elements = sets.iter().map(|s| s.elements.len()).sum::<usize>(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "network policy table programmed"
        );
        if let Ok(mut applied) = context.applied.lock() {
            *applied = Some(compiled.ruleset);
        }
    }
    report(&context, &policies, compiled.findings).await;
    Ok(Next::After(RECHECK))
}

/// Publishes findings not reported before (as Warning Events on their
/// policies); findings that went away may be reported again later.
async fn report(context: &Context, policies: &[Arc<NetworkPolicy>], findings: BTreeSet<Finding>) {
    let new: Vec<Finding> = match context.reported.lock() {
        Ok(mut reported) => {
            let new = findings.difference(&reported).cloned().collect();
            *reported = findings;
            new
        }
        Err(_) => return,
    };
    for finding in new {
        let policy = policies.iter().find(|p| {
            p.metadata.namespace.as_deref() == Some(&finding.namespace)
                && p.metadata.name.as_deref() == Some(&finding.policy)
        });
        if let Some(policy) = policy {
            tracing::warn!(
                policy = %format!("{}/{}", finding.namespace, finding.policy),
                "{}", finding.message
            );
            publish(
                &context.recorder,
                policy.as_ref(),
                Type::Warning,
                finding.reason,
                &finding.message,
            )
            .await;
        }
    }
}

#[cfg(test)]
mod tests;
