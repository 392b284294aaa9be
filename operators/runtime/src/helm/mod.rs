//! The helm operator: HelmChart and HelmChartConfig resources installed,
//! upgraded and uninstalled in-process (no helm binary, no Jobs). Charts
//! are rendered by k3r-helm-render, applied with server-side apply (field
//! manager "helm", Helm's ownership labels and annotations), objects
//! dropped between revisions are pruned, and every revision is stored as
//! Helm stores it. Hooks run as Helm runs them (Jobs awaited within
//! `spec.timeout`). Failures leave a `Failed` condition and an Event, apply
//! nothing when the chart cannot render, and are retried with backoff.

mod access;
mod apply;
mod capabilities;
mod hooks;
mod install;
mod oci;
mod source;
mod store;
mod values;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k3r_crds::condition::Condition;
use k3r_crds::helmchart::{HelmChart, HelmChartConfig};
use k3r_helm_controller::duration;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::discovery::Discovery;
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::Error;
use crate::events::publish;
use crate::status::OperatorHandle;

const CONTROLLER: &str = "helm-controller";
/// k3s's finalizer, so charts move between k3s and k3r unchanged.
const FINALIZER: &str = "wrangler.cattle.io/on-helm-chart-remove";
const UNMANAGED: &str = "helmcharts.helm.cattle.io/unmanaged";
const RESYNC: Duration = Duration::from_secs(30);
const HISTORY: usize = 10;
const FIRST_RETRY: Duration = Duration::from_secs(5);
const LAST_RETRY: Duration = Duration::from_secs(300);

struct Backoff {
    retry_at: Instant,
    delay: Duration,
    fingerprint: String,
}

struct Context {
    client: Client,
    recorder: Recorder,
    discovery: Discovery,
    /// Per chart after a failure: when to try again, the delay, and the
    /// configuration that failed (a changed one is tried at once).
    backoff: BTreeMap<String, Backoff>,
}

pub async fn run(client: Client, handle: OperatorHandle) -> Result<(), Error> {
    let charts: Api<HelmChart> = Api::all(client.clone());
    let configs: Api<HelmChartConfig> = Api::all(client.clone());
    let mut ctx = Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: CONTROLLER.into(),
                instance: None,
            },
        ),
        discovery: Discovery::new(client.clone()).run().await?,
        client,
        backoff: BTreeMap::new(),
    };
    let chart_events = watcher(charts.clone(), watcher::Config::default())
        .default_backoff()
        .map(|_| ());
    let config_events = watcher(configs, watcher::Config::default())
        .default_backoff()
        .map(|_| ());
    let mut events = std::pin::pin!(futures::stream::select(chart_events, config_events));
    loop {
        let started = Instant::now();
        let ok = match charts.list(&ListParams::default()).await {
            Ok(list) => {
                let mut ok = true;
                for chart in list.items {
                    if let Err(err) = reconcile(&mut ctx, &chart).await {
                        ok = false;
                        tracing::warn!(chart = %chart.name_any(), error = %err, "reconciling HelmChart failed");
                    }
                }
                ok
            }
            Err(err) => {
                tracing::warn!(error = %err, "listing HelmCharts failed");
                false
            }
        };
        handle.reconciled(ok, started.elapsed());
        // Wake for the earliest retry too, not only for changes and resync.
        let now = Instant::now();
        let wait = ctx
            .backoff
            .values()
            .map(|b| b.retry_at.saturating_duration_since(now))
            .fold(RESYNC, Duration::min);
        crate::events::wait_for_change(events.as_mut(), wait).await;
    }
}

fn key(chart: &HelmChart) -> String {
    format!(
        "{}/{}",
        chart.namespace().unwrap_or_default(),
        chart.name_any()
    )
}

/// One HelmChart: install/upgrade when its configuration changed,
/// uninstall when it is being deleted.
async fn reconcile(ctx: &mut Context, chart: &HelmChart) -> Result<(), Error> {
    let namespace = chart.namespace().unwrap_or_else(|| "default".into());
    let name = chart.name_any();
    let unmanaged = chart.annotations().contains_key(UNMANAGED);
    let target = chart
        .spec
        .target_namespace
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| namespace.clone());
    let charts: Api<HelmChart> = Api::namespaced(ctx.client.clone(), &namespace);
    if chart.meta().deletion_timestamp.is_some() {
        if chart.finalizers().iter().any(|f| f == FINALIZER) {
            // An unmanaged chart's release belongs to whoever manages it now.
            if !unmanaged {
                uninstall(ctx, chart, &target).await?;
            }
            let remaining: Vec<&String> = chart
                .finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .collect();
            charts
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"metadata": {"finalizers": remaining}})),
                )
                .await?;
        }
        return Ok(());
    }
    if unmanaged {
        return Ok(());
    }
    let config = Api::<HelmChartConfig>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&name)
        .await?;
    let fingerprint = format!(
        "{:?}/{:?}",
        chart.metadata.generation,
        config
            .as_ref()
            .and_then(|c| c.metadata.resource_version.clone())
    );
    if let Some(backoff) = ctx.backoff.get(&key(chart))
        && backoff.fingerprint == fingerprint
        && Instant::now() < backoff.retry_at
    {
        return Ok(());
    }
    if !chart.finalizers().iter().any(|f| f == FINALIZER) {
        let mut finalizers = chart.finalizers().to_vec();
        finalizers.push(FINALIZER.into());
        charts
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"finalizers": finalizers}})),
            )
            .await?;
    }
    match install::install(ctx, chart, config, &namespace, &target).await {
        Ok(install::Outcome::Unchanged) => {
            ctx.backoff.remove(&key(chart));
            Ok(())
        }
        Ok(install::Outcome::Deployed { revision, source }) => {
            ctx.backoff.remove(&key(chart));
            let (reason, verb) = if revision == 1 {
                ("Installed", "installed")
            } else {
                ("Upgraded", "upgraded")
            };
            let message = format!("release {name} revision {revision} {verb} ({source})");
            set_condition(ctx, chart, "False", reason, &message).await?;
            event(ctx, chart, EventType::Normal, reason, &message).await;
            Ok(())
        }
        Err(install::Failure { reason, message }) => {
            let delay = ctx
                .backoff
                .get(&key(chart))
                .filter(|b| b.fingerprint == fingerprint)
                .map_or(FIRST_RETRY, |b| (b.delay * 2).min(LAST_RETRY));
            ctx.backoff.insert(
                key(chart),
                Backoff {
                    retry_at: Instant::now() + delay,
                    delay,
                    fingerprint,
                },
            );
            tracing::warn!(chart = %name, %reason, error = %message, retry_in = ?delay, "HelmChart failed");
            set_condition(ctx, chart, "True", reason, &message).await?;
            event(ctx, chart, EventType::Warning, reason, &message).await;
            Ok(())
        }
    }
}

/// The HelmChart is being deleted: uninstall its release.
async fn uninstall(ctx: &mut Context, chart: &HelmChart, target: &str) -> Result<(), Error> {
    let name = chart.name_any();
    // An unparsable timeout must not keep the chart from being deleted.
    let timeout =
        duration::timeout(chart.spec.timeout.as_deref()).unwrap_or(duration::DEFAULT_TIMEOUT);
    install::uninstall_release(ctx, &name, target, timeout).await?;
    ctx.backoff.remove(&key(chart));
    event(
        ctx,
        chart,
        EventType::Normal,
        "Uninstalled",
        &format!("release {name} uninstalled"),
    )
    .await;
    tracing::info!(chart = %name, "uninstalled");
    Ok(())
}

async fn set_condition(
    ctx: &Context,
    chart: &HelmChart,
    status: &str,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    let charts: Api<HelmChart> =
        Api::namespaced(ctx.client.clone(), &chart.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": chart.name_any(), "namespace": chart.namespace()},
        "status": {"conditions": [Condition {
            type_: "Failed".into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            ..Condition::default()
        }]},
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

async fn event(ctx: &Context, chart: &HelmChart, type_: EventType, reason: &str, note: &str) {
    publish(&ctx.recorder, &chart.object_ref(&()), type_, reason, note).await;
}
