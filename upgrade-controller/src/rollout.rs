//! One pass over a live Plan, in SUC's order: validate it, resolve its
//! latest version (spec.version, or the channel polled every 15 minutes),
//! hash it, read its Jobs back (label the nodes whose Job completed,
//! record failures, delete stale Jobs), select the nodes to apply on
//! (concurrency, window), create their Jobs paused and let each run once
//! its node is in `status.applying`, cordoned and drained (a Job with a
//! prepare step runs it first and waits at its gate for the drain:
//! [`crate::gate`]). The status
//! (SUC's conditions and fields, plus k3r's node counts and last error)
//! is written only when it changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k3r_crds::Plan;
use k3r_crds::plan::PlanStatus;
use k3r_reconciler::events::{Type, publish};
use k3r_reconciler::{Next, conditions, selector};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use serde_json::json;

use crate::controller::{CONTROLLER, Context, Error, owner};
use crate::jobs::{self, JobState};
use crate::node_ops::{self, Drained};
use crate::{channel, down, gate, job, suc, validate, window};

const VALIDATED: &str = "Validated";
const RESOLVED: &str = "LatestResolved";
const COMPLETE: &str = "Complete";
const NOT_READY: &str = "plan is not valid and resolved";
const UNRESOLVABLE: &str = "cannot resolve plan: missing channel and version";
const OUTSIDE_WINDOW: &str = "current time is not within configured window";
/// SUC's default channel polling interval.
const CHANNEL_POLL: Duration = Duration::from_secs(15 * 60);
const CHANNEL_RETRY: Duration = Duration::from_secs(30);
const DRAIN_POLL: Duration = Duration::from_secs(2);
const DRAIN_RETRY: Duration = Duration::from_secs(60);

/// What one pass changes: the status, the Events to record, and when to
/// look again.
struct Pass<'a> {
    plan: &'a Plan,
    status: PlanStatus,
    events: Vec<(Type, &'static str, String)>,
    next: Option<Duration>,
}

impl<'a> Pass<'a> {
    fn new(plan: &'a Plan) -> Self {
        Self {
            plan,
            status: plan.status.clone().unwrap_or_default(),
            events: Vec::new(),
            next: None,
        }
    }

    fn is(&self, type_: &str, status: &str) -> bool {
        conditions::get(&self.status.conditions, type_).is_some_and(|c| c.status == status)
    }

    fn message(&self, type_: &str) -> Option<&str> {
        conditions::get(&self.status.conditions, type_).and_then(|c| c.message.as_deref())
    }

    fn set(&mut self, type_: &str, status: &str, reason: &str, message: &str) {
        conditions::set(&mut self.status.conditions, type_, status, reason, message);
    }

    fn event(&mut self, type_: Type, reason: &'static str, note: String) {
        self.events.push((type_, reason, note));
    }

    fn after(&mut self, wait: Duration) {
        self.next = Some(self.next.map_or(wait, |n| n.min(wait)));
    }

    /// `type_=False/Error` with `message`, and a Warning Event
    /// `reason` ("{doing}: {message}") when that is news.
    fn fail(&mut self, type_: &str, reason: &'static str, doing: &str, message: &str) {
        if !self.is(type_, "False") || self.message(type_) != Some(message) {
            self.event(Type::Warning, reason, format!("{doing}: {message}"));
        }
        self.set(type_, "False", "Error", message);
    }

    fn not_ready(&mut self) {
        self.set(COMPLETE, "False", "NotReady", NOT_READY);
    }

    /// Writes the status if it changed, records the Events.
    async fn finish(self, ctx: &Context) -> Result<Next, Error> {
        let before = self.plan.status.clone().unwrap_or_default();
        if before != self.status {
            let mut status = serde_json::to_value(&self.status).map_err(kube::Error::SerdeError)?;
            // A merge patch must say null to clear what is now empty.
            if let Some(map) = status.as_object_mut() {
                map.entry("applying").or_insert(serde_json::Value::Null);
                map.entry("lastError").or_insert(serde_json::Value::Null);
            }
            let plans: Api<Plan> = Api::namespaced(
                ctx.client.clone(),
                &self.plan.namespace().unwrap_or_default(),
            );
            plans
                .patch_status(
                    &self.plan.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await?;
        }
        for (type_, reason, note) in &self.events {
            publish(&ctx.recorder, self.plan, *type_, reason, note).await;
        }
        Ok(self.next.map_or(Next::Done, Next::After))
    }
}

async fn secrets_of(ctx: &Context, plan: &Plan) -> Result<HashMap<String, Secret>, Error> {
    let api: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &plan.namespace().unwrap_or_default());
    let mut found = HashMap::new();
    for name in plan.spec.secrets.iter().filter_map(|s| s.name.as_deref()) {
        if let Some(secret) = api.get_opt(name).await? {
            found.insert(name.to_string(), secret);
        }
    }
    Ok(found)
}

fn latest_hash(plan: &Plan, latest: &str, secrets: &HashMap<String, Secret>) -> String {
    let hashes: Vec<String> = plan
        .spec
        .secrets
        .iter()
        .filter(|s| s.ignore_updates != Some(true))
        .filter_map(|s| secrets.get(s.name.as_deref()?))
        .map(suc::secret_hash)
        .collect();
    suc::latest_hash(plan, latest, &hashes)
}

/// What resolving the latest version came to.
enum Resolved {
    Latest(String),
    /// Not now (the LatestResolved condition says why).
    Unresolved,
    /// The channel does not answer as a channel: the Plan is not valid.
    Refused(String),
}

/// The latest version, or why it cannot be had (the LatestResolved
/// condition says so too).
async fn resolve(ctx: &Context, pass: &mut Pass<'_>) -> Resolved {
    let plan = pass.plan;
    let previous = pass.status.latest_version.clone().unwrap_or_default();
    let (latest, reason) =
        if let Some(version) = plan.spec.version.as_deref().filter(|v| !v.is_empty()) {
            (suc::munge_version(version), "Version")
        } else if let Some(url) = plan.spec.channel.as_deref().filter(|c| !c.is_empty()) {
            let polled = conditions::get(&pass.status.conditions, RESOLVED)
                .filter(|c| c.status == "True")
                .and_then(|c| c.last_update_time.as_deref()?.parse::<Timestamp>().ok());
            if let Some(polled) = polled
                && !previous.is_empty()
                && let Some(wait) = jobs::remaining(polled, CHANNEL_POLL, Timestamp::now())
            {
                pass.after(wait);
                return Resolved::Latest(previous);
            }
            match channel::resolve(url, &previous, &ctx.cluster_id).await {
                Ok(version) => {
                    let latest = suc::munge_version(&version);
                    if let Some(problem) = validate::tag_problem(&latest) {
                        return unresolved(pass, format!("channel {url}: {problem}"));
                    }
                    pass.after(CHANNEL_POLL);
                    // Polling time, for the interval, even when nothing changed.
                    if let Some(c) = pass
                        .status
                        .conditions
                        .iter_mut()
                        .find(|c| c.type_ == RESOLVED && c.status == "True")
                    {
                        c.last_update_time = Some(conditions::now());
                    }
                    (latest, "Channel")
                }
                Err(err) if err.refused() => {
                    let message = err.to_string();
                    unresolved(pass, message.clone());
                    return Resolved::Refused(message);
                }
                Err(err) => return unresolved(pass, err.to_string()),
            }
        } else {
            return unresolved(pass, UNRESOLVABLE.into());
        };
    if !pass.is(RESOLVED, "True") || previous != latest {
        let from = if reason == "Version" {
            "Spec.Version"
        } else {
            "Spec.Channel"
        };
        pass.event(
            Type::Normal,
            "Resolved",
            format!("Resolved latest version from {from}: {latest}"),
        );
        pass.set(COMPLETE, "False", "Resolved", "");
    }
    pass.status.latest_version = Some(latest.clone());
    pass.set(RESOLVED, "True", reason, "");
    Resolved::Latest(latest)
}

/// `Validated=False` with `message`, an Event when it is news, no Job.
async fn refuse(ctx: &Context, mut pass: Pass<'_>, message: String) -> Result<Next, Error> {
    pass.fail(
        VALIDATED,
        "ValidateFailed",
        "Failed to validate plan",
        &message,
    );
    pass.status.last_error = Some(message);
    pass.not_ready();
    pass.finish(ctx).await
}

fn unresolved(pass: &mut Pass<'_>, message: String) -> Resolved {
    pass.fail(
        RESOLVED,
        "ResolveFailed",
        "Failed to resolve latest version",
        &message,
    );
    pass.after(CHANNEL_RETRY);
    Resolved::Unresolved
}

pub async fn apply(ctx: &Context, plan: &Plan) -> Result<Next, Error> {
    let mut pass = Pass::new(plan);
    let secrets = secrets_of(ctx, plan).await?;
    if let Err(invalid) = validate::validate(plan, |name| secrets.contains_key(name)) {
        return refuse(ctx, pass, invalid.to_string()).await;
    }
    // Valid once its channel, if any, answers as one.
    let resolved = resolve(ctx, &mut pass).await;
    if let Resolved::Refused(message) = resolved {
        return refuse(ctx, pass, message).await;
    }
    if !pass.is(VALIDATED, "True") {
        // Before the resolution's own, as SUC tells them.
        pass.events
            .insert(0, (Type::Normal, "Validated", "Plan is valid".into()));
    }
    pass.set(VALIDATED, "True", "PlanIsValid", "");
    let Resolved::Latest(latest) = resolved else {
        pass.status.last_error = pass.message(RESOLVED).map(String::from);
        pass.not_ready();
        return pass.finish(ctx).await;
    };
    let hash = latest_hash(plan, &latest, &secrets);
    pass.status.latest_hash = Some(hash.clone());
    roll(ctx, &mut pass, &latest, &hash).await?;
    pass.finish(ctx).await
}

async fn delete_job(ctx: &Context, job: &Job) -> Result<(), Error> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match api.delete(&job.name_any(), &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Keeps a finished Job for its TTL, then deletes it.
async fn keep_or_delete(
    ctx: &Context,
    pass: &mut Pass<'_>,
    job: &Job,
    finished: Timestamp,
) -> Result<bool, Error> {
    match jobs::remaining(finished, jobs::ttl(job), Timestamp::now()) {
        Some(wait) => {
            pass.after(wait);
            Ok(true)
        }
        None => delete_job(ctx, job).await.map(|()| false),
    }
}

/// Reads the Plan's Jobs back; returns the ones kept, by name, and the
/// failures at the latest version.
async fn read_jobs(
    ctx: &Context,
    pass: &mut Pass<'_>,
    nodes: &[Node],
    latest: &str,
    hash: &str,
) -> Result<(HashMap<String, Arc<Job>>, Vec<String>), Error> {
    let plan = pass.plan;
    let owner = owner(plan);
    let mut kept = HashMap::new();
    let mut failures = Vec::new();
    for job in ctx.jobs_of(plan) {
        let Some(labels) = jobs::labels(&job) else {
            delete_job(ctx, &job).await?;
            continue;
        };
        let node = nodes.iter().find(|n| n.name_any() == labels.node);
        let (Some(node), true) = (node, labels.version == latest) else {
            delete_job(ctx, &job).await?;
            continue;
        };
        match jobs::state(&job) {
            JobState::Failed { at, message } => {
                let message = with_pod_message(ctx, pass, &job, message).await;
                // A failed upgrade never leaves the node cordoned (SUC#71).
                node_ops::release(&ctx.client, node, &owner).await?;
                if pass.status.last_error.as_deref() != Some(message.as_str()) {
                    pass.event(Type::Warning, "JobFailed", message.clone());
                }
                failures.push(message);
                if keep_or_delete(ctx, pass, &job, at).await? {
                    kept.insert(job.name_any(), job);
                }
            }
            JobState::Complete { at } => {
                node_ops::release(&ctx.client, node, &owner).await?;
                complete_on(ctx, pass, node, &labels, at).await?;
                if keep_or_delete(ctx, pass, &job, at).await? {
                    kept.insert(job.name_any(), job);
                }
            }
            JobState::Paused | JobState::Running if labels.hash != Some(hash) => {
                // The Plan changed under it: its successor takes over.
                delete_job(ctx, &job).await?;
            }
            JobState::Paused | JobState::Running => {
                kept.insert(job.name_any(), job);
            }
        }
    }
    Ok((kept, failures))
}

/// The failure with its container's termination message (what the
/// upgrade step said), read once per failure.
async fn with_pod_message(ctx: &Context, pass: &Pass<'_>, job: &Job, message: String) -> String {
    if let Some(known) = pass.status.last_error.as_deref()
        && known.starts_with(&message)
    {
        return known.to_string();
    }
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let selector = format!("batch.kubernetes.io/job-name={}", job.name_any());
    let Ok(list) = pods
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
    else {
        return message;
    };
    let said = list
        .items
        .iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone())
        .map(|m| m.trim().to_string())
        .find(|m| !m.is_empty());
    match said {
        Some(said) => format!("{message}: {said}"),
        None => message,
    }
}

/// The Plan's `postCompleteDelay` (validated before any Job exists).
fn post_complete_delay(plan: &Plan) -> Option<Duration> {
    let text = plan.spec.post_complete_delay.as_deref()?;
    k3r_reconciler::duration::parse_go_duration(text.trim()).ok()
}

/// A completed Job earns its node the Plan's hash label and the Plan's
/// postCompleteLabels, once postCompleteDelay has passed.
async fn complete_on(
    ctx: &Context,
    pass: &mut Pass<'_>,
    node: &Node,
    labels: &jobs::JobLabels<'_>,
    at: Timestamp,
) -> Result<(), Error> {
    let plan = pass.plan;
    let delay = post_complete_delay(plan).unwrap_or_default();
    if let Some(wait) = jobs::remaining(at, delay, Timestamp::now()) {
        pass.after(wait);
        return Ok(());
    }
    let Some(hash) = labels.hash else {
        return Ok(());
    };
    let latest_version = pass.status.latest_version.clone().unwrap_or_default();
    let vars = BTreeMap::from([
        ("LATEST_VERSION", latest_version.as_str()),
        ("LATEST_HASH", hash),
    ]);
    let mut wanted: BTreeMap<String, String> = plan
        .spec
        .post_complete_labels
        .iter()
        .map(|(k, v)| (k.clone(), jobs::expand(v, &vars)))
        .collect();
    wanted.insert(suc::plan_label(&plan.name_any()), hash.to_string());
    if node_ops::label(&ctx.client, node, &wanted).await? {
        pass.event(
            Type::Normal,
            "JobComplete",
            format!("Job completed on Node {}", node.name_any()),
        );
    }
    Ok(())
}

/// Cordons and drains `node` as the Plan asks; true once its Job may run.
async fn cordon_and_drain(ctx: &Context, pass: &mut Pass<'_>, node: &Node) -> Result<bool, Error> {
    let plan = pass.plan;
    let owner = owner(plan);
    if plan.spec.cordon == Some(true) || plan.spec.drain.is_some() {
        node_ops::cordon(&ctx.client, node, &owner).await?;
    }
    let Some(drain) = &plan.spec.drain else {
        return Ok(true);
    };
    let key = format!("{owner}/{}", node.name_any());
    let started = *ctx
        .drains
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key.clone())
        .or_insert_with(Instant::now);
    let timeout = drain.timeout.as_ref().and_then(|t| match t {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => {
            Some(Duration::from_nanos(u64::try_from(*n).ok()?))
        }
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => {
            k3r_reconciler::duration::parse_go_duration(s.trim()).ok()
        }
    });
    let failure = match node_ops::drain_pass(&ctx.client, &node.name_any(), drain).await? {
        Drained::Done => {
            ctx.drains
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            return Ok(true);
        }
        Drained::Waiting(left) => match timeout {
            Some(limit) if !limit.is_zero() && started.elapsed() > limit => {
                format!("drain timed out after {limit:?} with {left} pod(s) left")
            }
            _ => {
                pass.after(DRAIN_POLL);
                return Ok(false);
            }
        },
        Drained::Refused(why) => why,
    };
    // The drain cannot finish: the node is schedulable again, the Job
    // stays paused, and the drain is tried afresh later.
    ctx.drains
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&key);
    node_ops::release(&ctx.client, node, &owner).await?;
    let message = format!("Failed to drain Node {}: {failure}", node.name_any());
    if pass.status.last_error.as_deref() != Some(message.as_str()) {
        pass.event(Type::Warning, "DrainFailed", message.clone());
    }
    pass.set(COMPLETE, "False", "DrainFailed", &message);
    pass.status.last_error = Some(message);
    pass.after(DRAIN_RETRY);
    Ok(false)
}

/// Jobs for the nodes whose turn it is; status.applying and Complete.
async fn roll(ctx: &Context, pass: &mut Pass<'_>, latest: &str, hash: &str) -> Result<(), Error> {
    let plan = pass.plan;
    let nodes: Vec<Node> = ctx.nodes.state().iter().map(|n| (**n).clone()).collect();
    let (kept, failures) = read_jobs(ctx, pass, &nodes, latest, hash).await?;
    let timeout = down::timeout(plan).ok().flatten();
    let (up, down) = down::without_down(nodes.clone(), timeout, Timestamp::now());
    let label = suc::plan_label(&plan.name_any());
    // Only the down nodes the Plan still has to apply on are its concern.
    let skipped: Vec<String> = down
        .into_iter()
        .filter(|name| {
            nodes.iter().any(|n| {
                n.name_any() == *name
                    && plan
                        .spec
                        .node_selector
                        .as_ref()
                        .is_some_and(|s| selector::matches(s, n.metadata.labels.as_ref()))
                    && n.labels()
                        .get(&label)
                        .is_none_or(|v| v != hash && v != "disabled")
            })
        })
        .collect();
    if !skipped.is_empty() && skipped != pass.status.skipped {
        pass.event(
            Type::Warning,
            "NodeSkipped",
            format!(
                "Nodes {} are down (not Ready for over {:?}): left out until they are back",
                skipped.join(","),
                timeout.unwrap_or_default()
            ),
        );
    }
    pass.status.skipped = skipped.clone();
    let selected = suc::select_nodes(plan, hash, &up);
    let names: Vec<String> = selected.iter().map(|n| job::hostname(n)).collect();
    let before = plan
        .status
        .as_ref()
        .map(|s| s.applying.clone())
        .unwrap_or_default();
    let waiting = match plan.spec.window.as_ref().map(window::Window::parse) {
        Some(Ok(window)) if !selected.is_empty() && before.is_empty() => {
            let wait = window.until_open(Timestamp::now());
            (!wait.is_zero()).then_some((window, wait))
        }
        _ => None,
    };
    if let Some((window, wait)) = &waiting {
        let wait = *wait;
        if conditions::get(&pass.status.conditions, COMPLETE).and_then(|c| c.reason.as_deref())
            != Some("Waiting")
        {
            pass.event(
                Type::Normal,
                "Waiting",
                format!(
                    "Waiting for start of Spec.Window ({window}) to sync Jobs for version {latest}. Hash: {hash}"
                ),
            );
        }
        pass.set(COMPLETE, "False", "Waiting", OUTSIDE_WINDOW);
        pass.after(wait);
    } else {
        for node in &selected {
            let name = suc::job_name(&plan.name_any(), &node.name_any(), hash);
            let in_turn = before.contains(&job::hostname(node));
            let Some(existing) = kept.get(&name) else {
                create_job(ctx, plan, node, latest, hash).await?;
                continue;
            };
            if !in_turn {
                continue;
            }
            let state = jobs::state(existing);
            let gated = gate::gated(existing);
            if state == JobState::Paused && gated {
                // A gated Job runs its prepare step before the cordon.
                unpause(ctx, existing).await?;
            } else if state == JobState::Paused {
                if cordon_and_drain(ctx, pass, node).await? {
                    unpause(ctx, existing).await?;
                }
            } else if state == JobState::Running
                && gated
                && !gate::open(node, &existing.name_any())
                && gate::prepared(&ctx.pods.state(), existing)
                && cordon_and_drain(ctx, pass, node).await?
            {
                gate::mark(&ctx.client, node, existing).await?;
            }
        }
        // Jobs running out of turn go, as in SUC.
        for (name, existing) in &kept {
            let running = matches!(jobs::state(existing), JobState::Paused | JobState::Running);
            let node = jobs::labels(existing).map(|l| l.node.to_string());
            let in_selection = selected.iter().any(|n| Some(n.name_any()) == node);
            if running && !in_selection {
                tracing::info!(job = %name, "deleting a Job out of turn");
                delete_job(ctx, existing).await?;
            }
        }
        if selected.is_empty() && !skipped.is_empty() {
            let message = format!("nodes down, left out: {}", skipped.join(","));
            pass.set(COMPLETE, "False", "NodesDown", &message);
            pass.status.last_error = Some(message);
        } else if selected.is_empty() {
            if !pass.is(COMPLETE, "True") {
                pass.event(
                    Type::Normal,
                    "Complete",
                    format!("Jobs complete for version {latest}. Hash: {hash}"),
                );
            }
            pass.set(COMPLETE, "True", "Complete", "");
            pass.status.last_error = None;
        } else if names != before {
            pass.event(
                Type::Normal,
                "SyncJob",
                format!(
                    "Jobs synced for version {latest} on Nodes {}. Hash: {hash}",
                    names.join(",")
                ),
            );
            pass.set(COMPLETE, "False", "SyncJob", "");
        }
        if let Some(failure) = failures.last()
            && !selected.is_empty()
        {
            pass.set(COMPLETE, "False", "JobFailed", failure);
            pass.status.last_error = Some(failure.clone());
        }
    }
    pass.status.applying = if waiting.is_some() { Vec::new() } else { names };
    pass.status.nodes_applying = i64::try_from(pass.status.applying.len()).unwrap_or(0);
    pass.status.nodes_failed = i64::try_from(failures.len()).unwrap_or(0);
    pass.status.nodes_done = plan
        .spec
        .node_selector
        .as_ref()
        .map(|selector| {
            nodes
                .iter()
                .filter(|n| selector::matches(selector, n.metadata.labels.as_ref()))
                .filter(|n| n.labels().get(&label).map(String::as_str) == Some(hash))
                .count()
        })
        .and_then(|n| i64::try_from(n).ok())
        .unwrap_or(0);
    Ok(())
}

async fn create_job(
    ctx: &Context,
    plan: &Plan,
    node: &Node,
    latest: &str,
    hash: &str,
) -> Result<(), Error> {
    let delay = post_complete_delay(plan).map(|d| d.as_secs());
    let input = job::JobInput {
        controller: CONTROLLER,
        latest_version: latest,
        latest_hash: hash,
        // Always paused at first: it runs once the node is in its turn
        // (and cordoned and drained, unless gated).
        applying: false,
        post_complete_delay: delay,
    };
    let new = job::new_job(plan, node, &input);
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &plan.namespace().unwrap_or_default());
    match api.create(&PostParams::default(), &new).await {
        Ok(_) => {
            tracing::info!(job = %new.name_any(), node = %node.name_any(), "upgrade Job created");
            Ok(())
        }
        // Already there (the cache had not seen it yet).
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn unpause(ctx: &Context, existing: &Job) -> Result<(), Error> {
    let api: Api<Job> = Api::namespaced(
        ctx.client.clone(),
        &existing.namespace().unwrap_or_default(),
    );
    api.patch(
        &existing.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"parallelism": 1}})),
    )
    .await?;
    tracing::info!(job = %existing.name_any(), "upgrade Job running");
    Ok(())
}
