//! The HelmChart controller: a kube-runtime Controller over HelmCharts
//! (and the HelmChartConfigs of the same name, from a cache). Each chart
//! is reconciled on its own, so one whose hook Job runs for minutes holds
//! up nothing else: its reconcile returns "look again in 2 s". Failures
//! leave a `Failed` condition and an Event and are retried with
//! per-chart backoff; a change of the chart or its config is tried at once.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use k3r_crds::helmchart::{HelmChart, HelmChartConfig};
use k3r_reconciler::events::{Type, publish};
use k3r_reconciler::finalizer::{self, Event, finalizer};
use k3r_reconciler::{Builder, Next, ObjectRef, Runtime, conditions};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;

use crate::operation::{self, Failure, Outcome, Run};
use crate::{Context, Error};

/// The controller's name in metrics and health.
pub const NAME: &str = "helm";
/// k3s's reporter and status field manager.
const CONTROLLER: &str = "helm-controller";
/// k3s's finalizer, so charts move between k3s and k3r unchanged.
pub const FINALIZER: &str = "wrangler.cattle.io/on-helm-chart-remove";
pub const UNMANAGED: &str = "helmcharts.helm.cattle.io/unmanaged";

/// What of a HelmChart triggers a reconcile: its spec (generation), its
/// finalizers, its deletion and the unmanaged annotation — not the status
/// this controller writes.
fn changes(chart: &HelmChart) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    chart.metadata.generation.hash(&mut hasher);
    chart.finalizers().hash(&mut hasher);
    chart
        .metadata
        .deletion_timestamp
        .is_some()
        .hash(&mut hasher);
    chart.annotations().get(UNMANAGED).hash(&mut hasher);
    Some(hasher.finish())
}

pub async fn run(runtime: Runtime) {
    let client = runtime.client.clone();
    let (builder, configs) = Builder::new(
        NAME,
        &runtime,
        Api::<HelmChart>::all(client.clone()),
        watcher::Config::default(),
    )
    .predicate(changes)
    .watches_cached(
        Api::<HelmChartConfig>::all(client.clone()),
        watcher::Config::default(),
        |config: HelmChartConfig| {
            let namespace = config.namespace()?;
            Some(ObjectRef::new(&config.name_any()).within(&namespace))
        },
    );
    let context = Arc::new(Context::new(
        &runtime,
        runtime.recorder(CONTROLLER),
        configs,
    ));
    builder.run(reconcile, context).await;
}

pub async fn reconcile(chart: Arc<HelmChart>, ctx: Arc<Context>) -> Result<Next, Error> {
    let namespace = chart.namespace().unwrap_or_default();
    let charts: Api<HelmChart> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&charts, FINALIZER, chart, |event| async {
        match event {
            Event::Apply(chart) => apply(&ctx, &chart).await,
            Event::Cleanup(chart) => cleanup(&ctx, &chart).await,
        }
    })
    .await
    .map_err(|e| match e {
        finalizer::Error::Reconcile(e) => e,
        other => Error::Other(other.to_string()),
    })
}

fn unmanaged(chart: &HelmChart) -> bool {
    chart.annotations().contains_key(UNMANAGED)
}

/// Install or upgrade the release (a step at a time).
async fn apply(ctx: &Context, chart: &HelmChart) -> Result<Next, Error> {
    if unmanaged(chart) {
        return Ok(Next::Done);
    }
    let name = chart.name_any();
    let config = ctx
        .configs
        .get(&ObjectRef::new(&name).within(&chart.namespace().unwrap_or_default()));
    match operation::sync(ctx, chart, config.as_deref()).await {
        Ok(Outcome::Unchanged) => Ok(Next::Done),
        Ok(Outcome::Waiting(delay)) => Ok(Next::After(delay)),
        Ok(Outcome::Deployed { revision, source }) => {
            let (reason, verb) = if revision == 1 {
                ("Installed", "installed")
            } else {
                ("Upgraded", "upgraded")
            };
            let message = format!("release {name} revision {revision} {verb} ({source})");
            tracing::info!(chart = %name, revision, "{verb}");
            set_condition(ctx, chart, "False", reason, &message).await?;
            publish(&ctx.recorder, chart, Type::Normal, reason, &message).await;
            Ok(Next::Done)
        }
        Err(failure) => {
            report(ctx, chart, &failure).await?;
            Err(Error::Failed(failure))
        }
    }
}

/// The HelmChart is being deleted: uninstall its release, unless it is
/// unmanaged (its release then belongs to whoever manages it).
async fn cleanup(ctx: &Context, chart: &HelmChart) -> Result<Next, Error> {
    if unmanaged(chart) {
        return Ok(Next::Done);
    }
    let name = chart.name_any();
    match operation::uninstall(ctx, chart).await {
        Ok(Run::Wait(delay)) => Ok(Next::After(delay)),
        Ok(Run::Done) => {
            publish(
                &ctx.recorder,
                chart,
                Type::Normal,
                "Uninstalled",
                &format!("release {name} uninstalled"),
            )
            .await;
            tracing::info!(chart = %name, "uninstalled");
            Ok(Next::Done)
        }
        Err(failure) => {
            publish(
                &ctx.recorder,
                chart,
                Type::Warning,
                failure.reason,
                &failure.message,
            )
            .await;
            Err(Error::Failed(failure))
        }
    }
}

async fn report(ctx: &Context, chart: &HelmChart, failure: &Failure) -> Result<(), Error> {
    set_condition(ctx, chart, "True", failure.reason, &failure.message).await?;
    publish(
        &ctx.recorder,
        chart,
        Type::Warning,
        failure.reason,
        &failure.message,
    )
    .await;
    Ok(())
}

async fn set_condition(
    ctx: &Context,
    chart: &HelmChart,
    status: &str,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    let mut list = chart
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    if !conditions::set(&mut list, "Failed", status, reason, message) {
        return Ok(());
    }
    let charts: Api<HelmChart> =
        Api::namespaced(ctx.client.clone(), &chart.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": chart.name_any(), "namespace": chart.namespace()},
        "status": {"conditions": list},
    });
    charts
        .patch_status(
            &chart.name_any(),
            &PatchParams::apply(CONTROLLER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(())
}
