//! The helm operator: HelmChart and HelmChartConfig resources installed,
//! upgraded and uninstalled in-process (no helm binary, no Jobs). Charts
//! are rendered by k3r-helm-render, applied with server-side apply (field
//! manager "helm", Helm's ownership labels and annotations), objects
//! dropped between revisions are pruned, and every revision is stored as
//! Helm stores it. Failures leave a `Failed` condition and an Event, apply
//! nothing when the chart cannot render, and are retried with backoff.

mod apply;
mod source;
mod store;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use k3r_crds::condition::Condition;
use k3r_crds::helmchart::{HelmChart, HelmChartConfig, SecretSpec};
use k3r_gotemplate::Value;
use k3r_helm_controller::policy::{Action, Latest, decide};
use k3r_helm_controller::set::set_value;
use k3r_helm_controller::values::{Layer, LayerSource, config_hash, user_values};
use k3r_helm_render::chart::load_archive;
use k3r_helm_render::engine::{Capabilities, Lookup, ReleaseInfo};
use k3r_helm_render::manifest::template;
use k3r_helm_render::release::{Release, Status};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
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

struct Context {
    client: Client,
    recorder: Recorder,
    discovery: Discovery,
    /// Per chart: when to try again after a failure, and the next delay.
    backoff: BTreeMap<String, (Instant, Duration)>,
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
        crate::events::wait_for_change(events.as_mut(), RESYNC).await;
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
    if let Some((retry_at, _)) = ctx.backoff.get(&key(chart))
        && Instant::now() < *retry_at
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
    match install(ctx, chart, &namespace, &target).await {
        Ok(Outcome::Unchanged) => {
            ctx.backoff.remove(&key(chart));
            Ok(())
        }
        Ok(Outcome::Deployed { revision, source }) => {
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
        Err(Failure { reason, message }) => {
            let delay = ctx
                .backoff
                .get(&key(chart))
                .map_or(Duration::from_secs(5), |(_, d)| {
                    (*d * 2).min(Duration::from_secs(300))
                });
            ctx.backoff
                .insert(key(chart), (Instant::now() + delay, delay));
            tracing::warn!(chart = %name, %reason, %message, retry_in = ?delay, "HelmChart failed");
            set_condition(ctx, chart, "True", reason, &message).await?;
            event(ctx, chart, EventType::Warning, reason, &message).await;
            Ok(())
        }
    }
}

enum Outcome {
    Unchanged,
    Deployed { revision: i64, source: String },
}

struct Failure {
    reason: &'static str,
    message: String,
}

fn fail(reason: &'static str) -> impl FnOnce(Error) -> Failure {
    move |e| Failure {
        reason,
        message: e.to_string(),
    }
}

/// The values layers of a chart and its HelmChartConfig, in k3s order.
async fn values(
    ctx: &Context,
    chart: &HelmChart,
    config: Option<&HelmChartConfig>,
    namespace: &str,
) -> Result<Value, Error> {
    let mut layers = Vec::new();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let sources = [
        (
            "HelmChart",
            chart.spec.values_content.clone(),
            chart.spec.values.clone(),
            chart.spec.values_secrets.clone(),
        ),
        (
            "HelmChartConfig",
            config.and_then(|c| c.spec.values_content.clone()),
            config.and_then(|c| c.spec.values.clone()),
            config
                .map(|c| c.spec.values_secrets.clone())
                .unwrap_or_default(),
        ),
    ];
    for (kind, content, structured, value_secrets) in sources {
        if let Some(text) = content.filter(|t| !t.trim().is_empty()) {
            layers.push(Layer {
                origin: format!("{kind} spec.valuesContent"),
                source: LayerSource::Yaml(text),
            });
        }
        if let Some(structured) = structured.filter(|v| !v.is_null()) {
            layers.push(Layer {
                origin: format!("{kind} spec.values"),
                source: LayerSource::Yaml(structured.to_string()),
            });
        }
        for SecretSpec { name, keys, .. } in value_secrets {
            let name = name.unwrap_or_default();
            let secret = secrets
                .get(&name)
                .await
                .map_err(|e| Error::Other(format!("{kind} valuesSecrets {name}: {e}")))?;
            let keys = if keys.is_empty() {
                vec!["values.yaml".to_string()]
            } else {
                keys
            };
            for key in keys {
                let data = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&key))
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .ok_or_else(|| {
                        Error::Other(format!("{kind} valuesSecrets {name}: no key {key:?}"))
                    })?;
                layers.push(Layer {
                    origin: format!("{kind} valuesSecrets {name}/{key}"),
                    source: LayerSource::Yaml(data),
                });
            }
        }
    }
    let sets: Vec<(String, Value)> = chart
        .spec
        .set
        .iter()
        .map(|(k, v)| {
            let value = match v {
                IntOrString::Int(i) => set_value(Some(i64::from(*i)), &i.to_string()),
                IntOrString::String(s) => set_value(None, s),
            };
            (k.clone(), value)
        })
        .collect();
    user_values(&layers, &sets).map_err(|e| Error::Other(e.to_string()))
}

async fn install(
    ctx: &mut Context,
    chart: &HelmChart,
    namespace: &str,
    target: &str,
) -> Result<Outcome, Failure> {
    let name = chart.name_any();
    let spec = &chart.spec;
    // The HelmChartConfig of the same name adds values and may override
    // failurePolicy.
    let config = Api::<HelmChartConfig>::namespaced(ctx.client.clone(), namespace)
        .get_opt(&name)
        .await
        .map_err(|e| Failure {
            reason: "InvalidValues",
            message: format!("HelmChartConfig {name}: {e}"),
        })?;
    let user = values(ctx, chart, config.as_ref(), namespace)
        .await
        .map_err(fail("InvalidValues"))?;
    let hash = config_hash(
        &[
            spec.repo.as_deref().unwrap_or_default(),
            spec.chart.as_deref().unwrap_or_default(),
            spec.version.as_deref().unwrap_or_default(),
            spec.chart_content.as_deref().unwrap_or_default(),
            target,
        ],
        &user,
    );
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), target);
    let mut history = store::history(&secrets, &name)
        .await
        .map_err(fail("ReleaseStoreFailed"))?;
    let policy = config
        .and_then(|c| c.spec.failure_policy)
        .or_else(|| chart.spec.failure_policy.clone())
        .filter(|p| !p.is_empty());
    let action = decide(
        history.last().map(|l| Latest {
            status: &l.status,
            hash: &l.hash,
        }),
        &hash,
        policy.as_deref(),
    );
    match action {
        Action::Nothing => return Ok(Outcome::Unchanged),
        Action::Abort => {
            return Err(Failure {
                reason: "Aborted",
                message: "the last install or upgrade failed and failurePolicy is abort: \
                          waiting for the HelmChart or its values to change"
                    .into(),
            });
        }
        Action::Reinstall => {
            tracing::info!(chart = %name, "failed release: uninstalling before installing again");
            uninstall_release(ctx, &name, target)
                .await
                .map_err(fail("UninstallFailed"))?;
            history.clear();
        }
        Action::Install | Action::Upgrade => {}
    }
    let latest = history.last();
    let credentials = match &spec.auth_secret {
        Some(reference) => Some(
            credentials(ctx, namespace, reference.name.as_str())
                .await
                .map_err(fail("FetchFailed"))?,
        ),
        None => None,
    };
    let (bytes, source) = source::fetch(spec, credentials.as_ref())
        .await
        .map_err(fail("FetchFailed"))?;
    let loaded = load_archive(&bytes).map_err(|e| Failure {
        reason: "InvalidChart",
        message: format!("{source}: {e}"),
    })?;
    let capabilities = capabilities(ctx).await.map_err(fail("DiscoveryFailed"))?;
    let revision = latest.map_or(1, |l| l.version + 1);
    let release_info = ReleaseInfo {
        name: name.clone(),
        namespace: target.to_string(),
        revision,
        is_install: latest.is_none(),
        is_upgrade: latest.is_some(),
    };
    // Rendering completes before anything is applied: a template error
    // changes nothing in the cluster.
    // On a blocking thread: `lookup` blocks on API requests.
    let rendered = {
        let (loaded, user) = (loaded.clone(), user.clone());
        let release_info = release_info.clone();
        tokio::task::spawn_blocking(move || template(&loaded, &user, &release_info, &capabilities))
            .await
            .map_err(|e| Failure {
                reason: "RenderFailed",
                message: format!("rendering stopped: {e}"),
            })?
    }
    .map_err(|e| Failure {
        reason: "RenderFailed",
        message: e.to_string(),
    })?;
    if spec.create_namespace.unwrap_or(false) {
        apply::namespace(&ctx.client, target)
            .await
            .map_err(fail("ApplyFailed"))?;
    }
    let now = SystemTime::now();
    let mut release = Release {
        name: name.clone(),
        namespace: target.to_string(),
        version: revision,
        status: Status::Deployed,
        first_deployed: now,
        last_deployed: now,
        description: if revision == 1 {
            "Install complete".into()
        } else {
            "Upgrade complete".into()
        },
        notes: rendered.notes.clone(),
        chart: loaded,
        config: user,
        manifest: rendered.manifest(),
        hooks: rendered.hooks.clone(),
    };
    let applied = apply::release(
        &ctx.client,
        &mut ctx.discovery,
        &rendered.documents,
        &name,
        target,
    )
    .await;
    if let Err(err) = applied {
        release.status = Status::Failed;
        release.description = format!("Release failed: {err}");
        let _ = store::create(&secrets, &release, &hash).await;
        return Err(Failure {
            reason: "ApplyFailed",
            message: err.to_string(),
        });
    }
    if let Some(previous) = latest {
        apply::prune(
            &ctx.client,
            &mut ctx.discovery,
            &previous.manifest,
            &rendered.documents,
            target,
        )
        .await
        .map_err(fail("PruneFailed"))?;
    }
    store::create(&secrets, &release, &hash)
        .await
        .map_err(fail("ReleaseStoreFailed"))?;
    for old in history.iter().filter(|h| h.status == "deployed") {
        store::set_status(&secrets, old, "superseded")
            .await
            .map_err(fail("ReleaseStoreFailed"))?;
    }
    let history = store::history(&secrets, &name)
        .await
        .map_err(fail("ReleaseStoreFailed"))?;
    store::trim(&secrets, &history, HISTORY)
        .await
        .map_err(fail("ReleaseStoreFailed"))?;
    Ok(Outcome::Deployed { revision, source })
}

/// Deletes what the newest revision applied, then every stored revision.
async fn uninstall_release(ctx: &mut Context, name: &str, target: &str) -> Result<(), Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), target);
    let history = store::history(&secrets, name).await?;
    if let Some(latest) = history.last() {
        apply::prune(
            &ctx.client,
            &mut ctx.discovery,
            &latest.manifest,
            &[],
            target,
        )
        .await?;
    }
    for stored in &history {
        store::delete(&secrets, stored).await?;
    }
    Ok(())
}

/// The HelmChart is being deleted: uninstall its release.
async fn uninstall(ctx: &mut Context, chart: &HelmChart, target: &str) -> Result<(), Error> {
    let name = chart.name_any();
    uninstall_release(ctx, &name, target).await?;
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

async fn credentials(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<source::Credentials, Error> {
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| Error::Other(format!("spec.authSecret {name}: {e}")))?;
    let field = |k: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .unwrap_or_default()
    };
    Ok(source::Credentials {
        username: field("username"),
        password: field("password"),
    })
}

/// `.Capabilities` from the live cluster.
async fn capabilities(ctx: &mut Context) -> Result<Capabilities, Error> {
    let version = ctx.client.apiserver_version().await?;
    ctx.discovery = Discovery::new(ctx.client.clone()).run().await?;
    let mut api_versions = Vec::new();
    for group in ctx.discovery.groups() {
        for version in group.versions() {
            let group_version = if group.name().is_empty() {
                version.to_string()
            } else {
                format!("{}/{version}", group.name())
            };
            for (resource, _) in group.versioned_resources(version) {
                api_versions.push(format!("{group_version}/{}", resource.kind));
            }
            api_versions.push(group_version);
        }
    }
    Ok(Capabilities {
        kube_version: version.git_version,
        api_versions,
        helm_version: "v4.2".into(),
        lookup: Some(lookup(ctx.client.clone())),
    })
}

/// `lookup` against the live API. Templates run on a blocking thread
/// (see `install`), so each lookup blocks on the request.
fn lookup(client: Client) -> Lookup {
    let handle = tokio::runtime::Handle::current();
    Lookup(std::sync::Arc::new(
        move |api_version, kind, namespace, name| {
            handle.block_on(lookup_object(&client, api_version, kind, namespace, name))
        },
    ))
}

async fn lookup_object(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Value, String> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("lookup {api_version} {kind}: {e}"))?;
    let api: Api<kube::api::DynamicObject> =
        if matches!(caps.scope, kube::discovery::Scope::Namespaced) && !namespace.is_empty() {
            Api::namespaced_with(client.clone(), namespace, &resource)
        } else {
            Api::all_with(client.clone(), &resource)
        };
    let json = if name.is_empty() {
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("lookup {api_version} {kind}: {e}"))?;
        json!({"items": list.items})
    } else {
        match api.get_opt(name).await {
            Ok(Some(object)) => serde_json::to_value(object).map_err(|e| e.to_string())?,
            Ok(None) => json!({}),
            Err(e) => return Err(format!("lookup {api_version} {kind} {name}: {e}")),
        }
    };
    Ok(k3r_helm_render::schema::from_serde(&json))
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
