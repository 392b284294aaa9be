//! Reading the Plan's Jobs back, as SUC's Job handler does: where each
//! stands, how long a finished one is kept (its TTL), and the node labels
//! a completed one earns (`postCompleteLabels` with `$(LATEST_VERSION)`
//! and `$(LATEST_HASH)` expanded as Kubernetes expands `$(VAR)`).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::suc::{LABEL_NODE, LABEL_PLAN, LABEL_VERSION, plan_label};

const ANNOTATION_TTL: &str = "upgrade.cattle.io/ttl-seconds-after-finished";

#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    /// Created with parallelism 0: waiting for its turn (and for the
    /// node's cordon and drain).
    Paused,
    Running,
    Complete {
        at: Timestamp,
    },
    Failed {
        at: Timestamp,
        message: String,
    },
}

/// The Job's plan, node, version and hash labels, if it carries them all.
pub struct JobLabels<'a> {
    pub plan: &'a str,
    pub node: &'a str,
    pub version: &'a str,
    pub hash: Option<&'a str>,
}

pub fn labels(job: &Job) -> Option<JobLabels<'_>> {
    let labels = job.metadata.labels.as_ref()?;
    let plan = labels.get(LABEL_PLAN)?;
    Some(JobLabels {
        plan,
        node: labels.get(LABEL_NODE)?,
        version: labels.get(LABEL_VERSION)?,
        hash: labels.get(&plan_label(plan)).map(String::as_str),
    })
}

fn condition_time(job: &Job, type_: &str) -> Option<(Timestamp, String)> {
    let condition = job
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")?;
    let at = condition
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(Timestamp::now);
    let why = [condition.reason.as_deref(), condition.message.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    Some((at, why))
}

pub fn state(job: &Job) -> JobState {
    if let Some((at, _)) = condition_time(job, "Complete") {
        return JobState::Complete { at };
    }
    if let Some((at, why)) = condition_time(job, "Failed") {
        return JobState::Failed {
            at,
            message: format!(
                "Job {}/{} failed on Node {}: {why}",
                job.namespace().unwrap_or_default(),
                job.name_any(),
                labels(job).map(|l| l.node).unwrap_or_default(),
            ),
        };
    }
    let parallelism = job.spec.as_ref().and_then(|s| s.parallelism).unwrap_or(1);
    if parallelism == 0 {
        JobState::Paused
    } else {
        JobState::Running
    }
}

/// How long a finished Job is kept: its TTL, else SUC's annotation.
pub fn ttl(job: &Job) -> Duration {
    let seconds = job
        .spec
        .as_ref()
        .and_then(|s| s.ttl_seconds_after_finished)
        .map(i64::from)
        .or_else(|| job.annotations().get(ANNOTATION_TTL)?.parse().ok())
        .unwrap_or(0);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

/// How long from `since` until `now` reaches `since + wait`; None once it
/// has.
pub fn remaining(since: Timestamp, wait: Duration, now: Timestamp) -> Option<Duration> {
    let elapsed = Duration::try_from(since.duration_until(now)).unwrap_or_default();
    wait.checked_sub(elapsed).filter(|d| !d.is_zero())
}

/// `$(NAME)` replaced from `vars`, `$$` an escaped `$`, anything else kept
/// (Kubernetes' expansion rules for env and args).
pub fn expand(text: &str, vars: &BTreeMap<&str, &str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(close) = inner.find(')')
        {
            let name = &inner[..close];
            match vars.get(name) {
                Some(value) => out.push_str(value),
                None => out.push_str(&rest[at..at + close + 3]),
            }
            rest = &inner[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
