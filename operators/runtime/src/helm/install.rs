//! Install, upgrade and uninstall of one HelmChart's release, in Helm's
//! order: render everything first (a template error changes nothing),
//! check ownership of existing objects, pre hooks, apply, prune, post
//! hooks, then record the revision.

use std::time::{Duration, SystemTime};

use k3r_crds::helmchart::{HelmChart, HelmChartConfig};
use k3r_helm_controller::duration;
use k3r_helm_controller::policy::{Action, Latest, decide};
use k3r_helm_controller::values::config_hash;
use k3r_helm_render::chart::load_archive;
use k3r_helm_render::engine::ReleaseInfo;
use k3r_helm_render::manifest::{Rendered, template};
use k3r_helm_render::release::{Release, Status};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use super::hooks::{self, HookRun};
use super::store::{self, Stored};
use super::{Context, HISTORY, access, apply, capabilities, source, values};
use crate::Error;

pub enum Outcome {
    Unchanged,
    Deployed { revision: i64, source: String },
}

pub struct Failure {
    pub reason: &'static str,
    pub message: String,
}

fn fail(reason: &'static str) -> impl FnOnce(Error) -> Failure {
    move |e| Failure {
        reason,
        message: e.to_string(),
    }
}

/// The settings of one install that the chart and its config decide.
struct Settings {
    timeout: Duration,
    take_ownership: bool,
    force_conflicts: bool,
}

pub async fn install(
    ctx: &mut Context,
    chart: &HelmChart,
    // The HelmChartConfig of the same name adds values and may override
    // failurePolicy and forceConflicts.
    config: Option<HelmChartConfig>,
    namespace: &str,
    target: &str,
) -> Result<Outcome, Failure> {
    let name = chart.name_any();
    let spec = &chart.spec;
    let settings = Settings {
        timeout: duration::timeout(spec.timeout.as_deref()).map_err(|e| Failure {
            reason: "InvalidSpec",
            message: format!("spec.timeout: {e}"),
        })?,
        take_ownership: spec.take_ownership.unwrap_or(false),
        force_conflicts: config
            .as_ref()
            .and_then(|c| c.spec.force_conflicts)
            .or(spec.force_conflicts)
            .unwrap_or(true),
    };
    let user = values::values(ctx, chart, config.as_ref(), namespace)
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
            uninstall_release(ctx, &name, target, settings.timeout)
                .await
                .map_err(fail("UninstallFailed"))?;
            history.clear();
        }
        Action::Install | Action::Upgrade => {}
    }
    let latest = history.last();
    let access = access::read(&ctx.client, namespace, spec)
        .await
        .map_err(fail("FetchFailed"))?;
    let (bytes, source) = source::fetch(spec, &access)
        .await
        .map_err(fail("FetchFailed"))?;
    let loaded = load_archive(&bytes).map_err(|e| Failure {
        reason: "InvalidChart",
        message: format!("{source}: {e}"),
    })?;
    let capabilities = capabilities::capabilities(ctx)
        .await
        .map_err(fail("DiscoveryFailed"))?;
    let revision = latest.map_or(1, |l| l.version + 1);
    let release_info = ReleaseInfo {
        name: name.clone(),
        namespace: target.to_string(),
        revision,
        is_install: latest.is_none(),
        is_upgrade: latest.is_some(),
    };
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
    let now = SystemTime::now();
    let release = Release {
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
    deploy(ctx, chart, &rendered, release, latest, &settings, &hash).await?;
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

/// Everything that touches the cluster for one revision. A failure after
/// the ownership check is recorded as a failed revision, as Helm does.
async fn deploy(
    ctx: &mut Context,
    chart: &HelmChart,
    rendered: &Rendered,
    mut release: Release,
    latest: Option<&Stored>,
    settings: &Settings,
    hash: &str,
) -> Result<(), Failure> {
    let target = release.namespace.clone();
    let name = release.name.clone();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &target);
    if chart.spec.create_namespace.unwrap_or(false) {
        apply::namespace(&ctx.client, &target)
            .await
            .map_err(fail("ApplyFailed"))?;
    }
    apply::check_ownership(
        &ctx.client,
        &mut ctx.discovery,
        &rendered.documents,
        latest.map_or("", |l| l.manifest.as_str()),
        (&name, &target),
        settings.take_ownership,
    )
    .await
    .map_err(fail("OwnershipConflict"))?;
    let (pre, post) = if latest.is_none() {
        ("pre-install", "post-install")
    } else {
        ("pre-upgrade", "post-upgrade")
    };
    let result = async {
        let mut run = HookRun {
            client: &ctx.client,
            discovery: &mut ctx.discovery,
            target: &target,
            timeout: settings.timeout,
        };
        run.run(&rendered.hooks, pre)
            .await
            .map_err(fail("HookFailed"))?;
        apply::release(
            run.client,
            run.discovery,
            &rendered.documents,
            (&name, &target),
            settings.force_conflicts,
        )
        .await
        .map_err(fail("ApplyFailed"))?;
        if let Some(previous) = latest {
            apply::prune(
                run.client,
                run.discovery,
                &previous.manifest,
                &rendered.documents,
                &target,
            )
            .await
            .map_err(fail("PruneFailed"))?;
        }
        run.run(&rendered.hooks, post)
            .await
            .map_err(fail("HookFailed"))
    }
    .await;
    if let Err(failure) = result {
        release.status = Status::Failed;
        release.description = format!("Release failed: {}", failure.message);
        if let Err(e) = store::create(&secrets, &release, hash).await {
            tracing::warn!(release = %name, error = %e, "recording the failed revision failed");
        }
        return Err(failure);
    }
    store::create(&secrets, &release, hash)
        .await
        .map_err(fail("ReleaseStoreFailed"))
}

/// Runs the newest revision's pre-delete hooks, deletes what it applied,
/// runs its post-delete hooks, then drops every stored revision.
pub async fn uninstall_release(
    ctx: &mut Context,
    name: &str,
    target: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), target);
    let history = store::history(&secrets, name).await?;
    if let Some(latest) = history.last() {
        let hooks = hooks::stored(&latest.json);
        let mut run = HookRun {
            client: &ctx.client,
            discovery: &mut ctx.discovery,
            target,
            timeout,
        };
        run.run(&hooks, "pre-delete").await?;
        apply::prune(run.client, run.discovery, &latest.manifest, &[], target).await?;
        run.run(&hooks, "post-delete").await?;
    }
    for stored in &history {
        store::delete(&secrets, stored).await?;
    }
    Ok(())
}
