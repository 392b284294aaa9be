//! One HelmChart's release operations in Helm's order — render everything
//! first (a template error changes nothing), check ownership of existing
//! objects, record the revision as pending, pre hooks, apply, prune, post
//! hooks, then mark it deployed — taken one step further per reconcile:
//! while a hook Job runs the reconcile returns [`Outcome::Waiting`] and
//! the controller looks again later; nothing waits inline. Where an
//! operation stands is kept on the pending revision ([`store::Step`]), so
//! a restarted controller carries on where it was.
//!
//! What to do when is klipper-helm's: nothing when the deployed revision
//! has this configuration; install, upgrade, or for a failed revision the
//! failurePolicy; an interrupted upgrade is retried as an upgrade, an
//! interrupted install counts as failed.

use std::time::{Duration, SystemTime};

use k3r_crds::helmchart::{HelmChart, HelmChartConfig};
use k3r_helm_render::chart::load_archive;
use k3r_helm_render::engine::ReleaseInfo;
use k3r_helm_render::manifest::{Hook, template};
use k3r_helm_render::release::{Release, Status};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use crate::hooks::{self, Position, Progress};

/// How far a run of an operation's stages got.
pub enum Run {
    Done,
    Wait(Duration),
}
use crate::policy::{Action, Latest, decide};
use crate::store::{self, Stage, Step, Stored};
use crate::values::config_hash;
use crate::{Context, Error, access, apply, capabilities, duration, layers, source};

/// Revisions kept per release, as Helm's default `--history-max`.
const HISTORY: usize = 10;

pub enum Outcome {
    Unchanged,
    /// An operation is under way: look again after this long.
    Waiting(Duration),
    Deployed {
        revision: i64,
        source: String,
    },
}

/// Why an operation failed: `reason` is the condition/Event reason.
#[derive(Debug)]
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

/// The settings of one chart that the chart and its config decide.
pub struct Settings {
    pub timeout: Duration,
    take_ownership: bool,
    force_conflicts: bool,
    failure_policy: Option<String>,
}

impl Settings {
    pub fn of(chart: &HelmChart, config: Option<&HelmChartConfig>) -> Result<Self, Failure> {
        let spec = &chart.spec;
        Ok(Self {
            timeout: duration::timeout(spec.timeout.as_deref()).map_err(|e| Failure {
                reason: "InvalidSpec",
                message: format!("spec.timeout: {e}"),
            })?,
            take_ownership: spec.take_ownership.unwrap_or(false),
            force_conflicts: config
                .and_then(|c| c.spec.force_conflicts)
                .or(spec.force_conflicts)
                .unwrap_or(true),
            failure_policy: config
                .and_then(|c| c.spec.failure_policy.clone())
                .or_else(|| spec.failure_policy.clone())
                .filter(|p| !p.is_empty()),
        })
    }
}

/// The namespace the release lives in.
pub fn target_namespace(chart: &HelmChart) -> String {
    chart
        .spec
        .target_namespace
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| chart.namespace().unwrap_or_else(|| "default".into()))
}

/// Takes the chart's release one step towards its configuration.
pub async fn sync(
    ctx: &Context,
    chart: &HelmChart,
    config: Option<&HelmChartConfig>,
) -> Result<Outcome, Failure> {
    let name = chart.name_any();
    let namespace = chart.namespace().unwrap_or_else(|| "default".into());
    let target = target_namespace(chart);
    let settings = Settings::of(chart, config)?;
    let user = layers::values(&ctx.client, chart, config, &namespace)
        .await
        .map_err(fail("InvalidValues"))?;
    let spec = &chart.spec;
    let hash = config_hash(
        &[
            spec.repo.as_deref().unwrap_or_default(),
            spec.chart.as_deref().unwrap_or_default(),
            spec.version.as_deref().unwrap_or_default(),
            spec.chart_content.as_deref().unwrap_or_default(),
            &target,
        ],
        &user,
    );
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &target);
    let history = |secrets: Api<Secret>, name: String| async move {
        store::history(&secrets, &name)
            .await
            .map_err(fail("ReleaseStoreFailed"))
    };
    let mut revisions = history(secrets.clone(), name.clone()).await?;
    let mut interrupted_upgrade = false;
    if let Some(latest) = revisions.last() {
        match latest.status.as_str() {
            "pending-install" | "pending-upgrade" if latest.hash == hash => {
                return advance(ctx, &secrets, &revisions, &settings).await;
            }
            "pending-install" | "pending-upgrade" => {
                interrupted_upgrade = latest.status == "pending-upgrade";
                tracing::info!(chart = %name, status = %latest.status, "the HelmChart changed while its release was being applied: starting over");
                store::set_status(
                    &secrets,
                    latest,
                    "failed",
                    Some("Release interrupted: the HelmChart changed while it was applied"),
                    None,
                )
                .await
                .map_err(fail("ReleaseStoreFailed"))?;
                revisions = history(secrets.clone(), name.clone()).await?;
            }
            "uninstalling" => {
                match uninstall_step(ctx, &secrets, &revisions, settings.timeout).await? {
                    Run::Done => revisions.clear(),
                    Run::Wait(delay) => return Ok(Outcome::Waiting(delay)),
                }
            }
            _ => {}
        }
    }
    let action = if interrupted_upgrade {
        Action::Upgrade
    } else {
        decide(
            revisions.last().map(|l| Latest {
                status: &l.status,
                hash: &l.hash,
            }),
            &hash,
            settings.failure_policy.as_deref(),
        )
    };
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
            if let Some(latest) = revisions.last() {
                begin_uninstall(&secrets, latest).await?;
            }
            revisions = history(secrets.clone(), name.clone()).await?;
            match uninstall_step(ctx, &secrets, &revisions, settings.timeout).await? {
                Run::Done => revisions.clear(),
                Run::Wait(delay) => return Ok(Outcome::Waiting(delay)),
            }
        }
        Action::Install | Action::Upgrade => {}
    }
    begin(
        ctx,
        chart,
        &secrets,
        revisions.last(),
        user,
        &hash,
        &settings,
    )
    .await?;
    let revisions = history(secrets.clone(), name).await?;
    advance(ctx, &secrets, &revisions, &settings).await
}

/// Renders the chart and records the new revision as pending (nothing
/// is recorded when it cannot render or would take over others' objects).
async fn begin(
    ctx: &Context,
    chart: &HelmChart,
    secrets: &Api<Secret>,
    latest: Option<&Stored>,
    user: k3r_gotemplate::Value,
    hash: &str,
    settings: &Settings,
) -> Result<(), Failure> {
    let name = chart.name_any();
    let namespace = chart.namespace().unwrap_or_else(|| "default".into());
    let target = target_namespace(chart);
    let spec = &chart.spec;
    let access = access::read(&ctx.client, &namespace, spec)
        .await
        .map_err(fail("FetchFailed"))?;
    let (bytes, source) = source::fetch(spec, &access)
        .await
        .map_err(fail("FetchFailed"))?;
    let loaded = load_archive(&bytes).map_err(|e| Failure {
        reason: "InvalidChart",
        message: format!("{source}: {e}"),
    })?;
    let capabilities = capabilities::capabilities(&ctx.client)
        .await
        .map_err(fail("DiscoveryFailed"))?;
    let revision = latest.map_or(1, |l| l.version + 1);
    let release_info = ReleaseInfo {
        name: name.clone(),
        namespace: target.clone(),
        revision,
        is_install: latest.is_none(),
        is_upgrade: latest.is_some(),
    };
    // On a blocking thread: `lookup` blocks on API requests.
    let rendered = {
        let (loaded, user) = (loaded.clone(), user.clone());
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
        apply::namespace(&ctx.applier, &target)
            .await
            .map_err(fail("ApplyFailed"))?;
    }
    apply::check_ownership(
        &ctx.applier,
        &rendered.documents,
        latest.map_or("", |l| l.manifest.as_str()),
        (&name, &target),
        settings.take_ownership,
    )
    .await
    .map_err(fail("OwnershipConflict"))?;
    let now = SystemTime::now();
    let (status, description) = if latest.is_none() {
        (Status::PendingInstall, "Initial install underway")
    } else {
        (Status::PendingUpgrade, "Preparing upgrade")
    };
    let release = Release {
        name,
        namespace: target,
        version: revision,
        status,
        first_deployed: now,
        last_deployed: now,
        description: description.into(),
        notes: rendered.notes.clone(),
        chart: loaded,
        config: user,
        manifest: rendered.manifest(),
        hooks: rendered.hooks.clone(),
    };
    let step = Step {
        source,
        ..Step::default()
    };
    store::create(secrets, &release, hash, Some(&step))
        .await
        .map_err(fail("ReleaseStoreFailed"))
}

/// What the Resources stage of an operation does.
enum Resources<'a> {
    /// Apply the pending revision's objects, prune what `previous` had.
    Apply {
        manifest: &'a str,
        previous: Option<&'a str>,
        force: bool,
    },
    /// Delete everything the revision applied (uninstall).
    Delete { manifest: &'a str },
}

/// Runs an operation's stages from where `stored` says it stands: the
/// `pre` hooks, the resources, the `post` hooks. The step is recorded
/// whenever a hook starts or finishes.
async fn run_stages(
    ctx: &Context,
    secrets: &Api<Secret>,
    stored: &Stored,
    (pre, post): (&str, &str),
    resources: Resources<'_>,
    timeout: Duration,
) -> Result<Run, (&'static str, Error, Step)> {
    let hooks_of_release: Vec<Hook> = hooks::stored(&stored.json);
    let name = stored.json["name"].as_str().unwrap_or_default().to_string();
    let target = stored.json["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut step = stored.step.clone().unwrap_or_default();
    let recorded = stored.step.clone();
    let save = |step: Step| async move { store::set_step(secrets, stored, &step).await };
    loop {
        match step.stage {
            Stage::PreHooks | Stage::PostHooks => {
                let event = if step.stage == Stage::PreHooks {
                    pre
                } else {
                    post
                };
                let objects = hooks::objects_for(&ctx.applier, &hooks_of_release, event, &target)
                    .await
                    .map_err(|e| ("HookFailed", e, step.clone()))?;
                let mut position = Position {
                    index: step.hook,
                    started: step
                        .started
                        .as_deref()
                        .and_then(|s| humantime::parse_rfc3339(s).ok()),
                };
                let progress =
                    hooks::advance(&ctx.applier, &objects, event, &mut position, timeout).await;
                step.hook = position.index;
                step.started = position
                    .started
                    .map(|t| humantime::format_rfc3339_seconds(t).to_string());
                match progress {
                    Err(e) => return Err(("HookFailed", e, step)),
                    Ok(Progress::Advanced) => {
                        save(step.clone())
                            .await
                            .map_err(|e| ("ReleaseStoreFailed", e, step.clone()))?;
                    }
                    Ok(Progress::Wait(delay)) => {
                        if recorded.as_ref() != Some(&step) {
                            save(step.clone())
                                .await
                                .map_err(|e| ("ReleaseStoreFailed", e, step.clone()))?;
                        }
                        return Ok(Run::Wait(delay));
                    }
                    Ok(Progress::Done) => {
                        step.stage = if step.stage == Stage::PreHooks {
                            Stage::Resources
                        } else {
                            Stage::Finish
                        };
                        step.hook = 0;
                        step.started = None;
                    }
                }
            }
            Stage::Resources => {
                match &resources {
                    Resources::Apply {
                        manifest,
                        previous,
                        force,
                    } => {
                        let documents = apply::documents_of(manifest);
                        apply::release(&ctx.applier, &documents, (&name, &target), *force)
                            .await
                            .map_err(|e| ("ApplyFailed", e, step.clone()))?;
                        if let Some(previous) = previous {
                            apply::prune(&ctx.applier, previous, &documents, &target)
                                .await
                                .map_err(|e| ("PruneFailed", e, step.clone()))?;
                        }
                    }
                    Resources::Delete { manifest } => {
                        apply::prune(&ctx.applier, manifest, &[], &target)
                            .await
                            .map_err(|e| ("UninstallFailed", e, step.clone()))?;
                    }
                }
                step.stage = Stage::PostHooks;
            }
            Stage::Finish => return Ok(Run::Done),
        }
    }
}

/// Continues the pending revision (the newest) of `revisions`.
async fn advance(
    ctx: &Context,
    secrets: &Api<Secret>,
    revisions: &[Stored],
    settings: &Settings,
) -> Result<Outcome, Failure> {
    let Some((pending, older)) = revisions.split_last() else {
        return Ok(Outcome::Unchanged);
    };
    let install = pending.status == "pending-install";
    let events = if install {
        ("pre-install", "post-install")
    } else {
        ("pre-upgrade", "post-upgrade")
    };
    let resources = Resources::Apply {
        manifest: &pending.manifest,
        previous: older.last().map(|p| p.manifest.as_str()),
        force: settings.force_conflicts,
    };
    match run_stages(ctx, secrets, pending, events, resources, settings.timeout).await {
        Ok(Run::Wait(delay)) => Ok(Outcome::Waiting(delay)),
        Ok(Run::Done) => {
            for old in older.iter().filter(|h| h.status == "deployed") {
                store::set_status(secrets, old, "superseded", None, None)
                    .await
                    .map_err(fail("ReleaseStoreFailed"))?;
            }
            let description = if install {
                "Install complete"
            } else {
                "Upgrade complete"
            };
            store::set_status(secrets, pending, "deployed", Some(description), None)
                .await
                .map_err(fail("ReleaseStoreFailed"))?;
            let name = pending.json["name"].as_str().unwrap_or_default();
            let revisions = store::history(secrets, name)
                .await
                .map_err(fail("ReleaseStoreFailed"))?;
            store::trim(secrets, &revisions, HISTORY)
                .await
                .map_err(fail("ReleaseStoreFailed"))?;
            Ok(Outcome::Deployed {
                revision: pending.version,
                source: pending
                    .step
                    .as_ref()
                    .map(|s| s.source.clone())
                    .unwrap_or_default(),
            })
        }
        Err((reason, error, _)) => {
            // As Helm: a failure after the revision was recorded fails it.
            let message = error.to_string();
            if let Err(e) = store::set_status(
                secrets,
                pending,
                "failed",
                Some(&format!("Release failed: {message}")),
                None,
            )
            .await
            {
                tracing::warn!(release = %pending.name(), error = %e, "recording the failed revision failed");
            }
            Err(Failure { reason, message })
        }
    }
}

/// Marks the newest revision as being uninstalled.
async fn begin_uninstall(secrets: &Api<Secret>, latest: &Stored) -> Result<(), Failure> {
    store::set_status(
        secrets,
        latest,
        "uninstalling",
        Some("Deletion in progress (or silently failed)"),
        Some(&Step::default()),
    )
    .await
    .map_err(fail("ReleaseStoreFailed"))
}

/// Continues the uninstall of the newest revision (its pre-delete hooks,
/// its objects, its post-delete hooks), then drops every revision.
async fn uninstall_step(
    ctx: &Context,
    secrets: &Api<Secret>,
    revisions: &[Stored],
    timeout: Duration,
) -> Result<Run, Failure> {
    let Some(latest) = revisions.last() else {
        return Ok(Run::Done);
    };
    let resources = Resources::Delete {
        manifest: &latest.manifest,
    };
    match run_stages(
        ctx,
        secrets,
        latest,
        ("pre-delete", "post-delete"),
        resources,
        timeout,
    )
    .await
    {
        Ok(Run::Wait(delay)) => Ok(Run::Wait(delay)),
        Ok(Run::Done) => {
            for stored in revisions {
                store::delete(secrets, stored)
                    .await
                    .map_err(fail("UninstallFailed"))?;
            }
            Ok(Run::Done)
        }
        Err((reason, error, step)) => {
            // The release stays "uninstalling"; a retry resumes at the
            // failed hook, created afresh.
            let _ = store::set_step(secrets, latest, &step).await;
            Err(Failure {
                reason: if reason == "HookFailed" {
                    "HookFailed"
                } else {
                    "UninstallFailed"
                },
                message: error.to_string(),
            })
        }
    }
}

/// The finalizer's part: uninstall the release (one step per call).
pub async fn uninstall(ctx: &Context, chart: &HelmChart) -> Result<Run, Failure> {
    // An unparsable timeout must not keep the chart from being deleted.
    let timeout =
        duration::timeout(chart.spec.timeout.as_deref()).unwrap_or(duration::DEFAULT_TIMEOUT);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &target_namespace(chart));
    let name = chart.name_any();
    let mut revisions = store::history(&secrets, &name)
        .await
        .map_err(fail("ReleaseStoreFailed"))?;
    if let Some(latest) = revisions.last()
        && latest.status != "uninstalling"
    {
        begin_uninstall(&secrets, latest).await?;
        revisions = store::history(&secrets, &name)
            .await
            .map_err(fail("ReleaseStoreFailed"))?;
    }
    uninstall_step(ctx, &secrets, &revisions, timeout).await
}
