//! Running a release's hooks for one event as Helm does — by weight, each
//! created (after deleting a leftover under `before-hook-creation`, the
//! default), Jobs and Pods waited for until they finish or the chart's
//! timeout passes, and deleted afterwards as `hook-succeeded` /
//! `hook-failed` ask — one step per call: waiting is the caller's requeue,
//! never a sleep here. Hook objects carry no release marks and are not
//! pruned, as in Helm.

use std::time::{Duration, SystemTime};

use k3r_apply::{Applier, ObjectRef, Options};
use k3r_helm_render::manifest::{Document, Hook};
use serde_json::Value;

use crate::Error;
use crate::apply::{self, MANAGER};

/// How often a running hook is looked at.
pub const POLL: Duration = Duration::from_secs(2);

/// One object of one hook, in the order Helm runs them.
pub struct HookObject {
    pub object: Value,
    pub reference: ObjectRef,
    /// The template it came from.
    pub source: String,
    pub policies: Vec<String>,
}

/// The objects of `event`'s hooks, in Helm's order (hooks are stored
/// sorted by weight and kind).
pub async fn objects_for(
    applier: &Applier,
    hooks: &[Hook],
    event: &str,
    target: &str,
) -> Result<Vec<HookObject>, Error> {
    let mut out = Vec::new();
    for hook in hooks.iter().filter(|h| h.events.iter().any(|e| e == event)) {
        let policies: Vec<String> = if hook.delete_policies.is_empty() {
            vec!["before-hook-creation".into()]
        } else {
            hook.delete_policies.clone()
        };
        for object in
            apply::objects_of(applier, std::slice::from_ref(&hook.document), target).await?
        {
            let Some(reference) = ObjectRef::of(&object) else {
                continue;
            };
            out.push(HookObject {
                object,
                reference,
                source: hook.document.source.clone(),
                policies: policies.clone(),
            });
        }
    }
    Ok(out)
}

/// Where a stage's hooks stand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// The next hook object to run.
    pub index: usize,
    /// When it was created, once it has been.
    pub started: Option<SystemTime>,
}

pub enum Progress {
    /// Every hook of the event ran.
    Done,
    /// A hook finished: the position moved on (worth recording, as the
    /// finished hook may be gone now).
    Advanced,
    /// A hook is running, or its leftover is being deleted.
    Wait(Duration),
}

/// Takes the event's hooks one transition further.
pub async fn advance(
    applier: &Applier,
    hooks: &[HookObject],
    event: &str,
    position: &mut Position,
    timeout: Duration,
) -> Result<Progress, Error> {
    let Some(hook) = hooks.get(position.index) else {
        return Ok(Progress::Done);
    };
    let has = |policy: &str| hook.policies.iter().any(|p| p == policy);
    let fail = |message: String| {
        Error::Other(format!(
            "{event} hook {} ({}): {message}",
            hook.source, hook.reference
        ))
    };
    let Some(started) = position.started else {
        if has("before-hook-creation") && applier.get(&hook.reference).await?.is_some() {
            applier.delete(&hook.reference).await?;
            if applier.get(&hook.reference).await?.is_some() {
                // Still terminating: create it once it is gone.
                return Ok(Progress::Wait(Duration::from_secs(1)));
            }
        }
        tracing::info!(%event, hook = %hook.reference, "running hook");
        applier
            .apply(
                &hook.object,
                &Options {
                    manager: MANAGER,
                    force: true,
                },
            )
            .await?;
        position.started = Some(SystemTime::now());
        if matches!(hook.reference.kind.as_str(), "Job" | "Pod") {
            return Ok(Progress::Wait(POLL));
        }
        // Other kinds are done once created.
        finish(applier, hook, "hook-succeeded").await?;
        *position = Position {
            index: position.index + 1,
            started: None,
        };
        return Ok(Progress::Advanced);
    };
    let outcome = match applier.get(&hook.reference).await? {
        None => Some(Err("deleted while running".to_string())),
        Some(object) => {
            let status = object.data.get("status").cloned().unwrap_or(Value::Null);
            finished(&hook.reference.kind, &status).or_else(|| {
                let running = started.elapsed().unwrap_or_default();
                (running > timeout)
                    .then(|| Err(format!("not finished within the timeout ({timeout:?})")))
            })
        }
    };
    match outcome {
        None => Ok(Progress::Wait(POLL)),
        Some(Ok(())) => {
            finish(applier, hook, "hook-succeeded").await?;
            *position = Position {
                index: position.index + 1,
                started: None,
            };
            Ok(Progress::Advanced)
        }
        Some(Err(message)) => {
            finish(applier, hook, "hook-failed").await?;
            // A retry creates the hook afresh.
            position.started = None;
            Err(fail(message))
        }
    }
}

/// Deletes a finished hook object when its delete policy asks.
async fn finish(applier: &Applier, hook: &HookObject, policy: &str) -> Result<(), Error> {
    if hook.policies.iter().any(|p| p == policy) {
        applier.delete(&hook.reference).await?;
    }
    Ok(())
}

/// Whether a Job or Pod has finished, and how.
fn finished(kind: &str, status: &Value) -> Option<Result<(), String>> {
    if kind == "Pod" {
        return match status["phase"].as_str() {
            Some("Succeeded") => Some(Ok(())),
            Some("Failed") => Some(Err(format!(
                "pod failed: {}",
                status["message"]
                    .as_str()
                    .unwrap_or("a container exited non-zero")
            ))),
            _ => None,
        };
    }
    let conditions = status["conditions"].as_array()?;
    let holds = |type_: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == type_ && c["status"] == "True")
    };
    if holds("Complete").is_some() {
        return Some(Ok(()));
    }
    holds("Failed").map(|c| {
        Err(format!(
            "job failed: {}: {}",
            c["reason"].as_str().unwrap_or_default(),
            c["message"].as_str().unwrap_or_default()
        ))
    })
}

/// The hooks a stored release recorded (to run its delete hooks).
pub fn stored(release: &Value) -> Vec<Hook> {
    let Some(hooks) = release["hooks"].as_array() else {
        return Vec::new();
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    hooks
        .iter()
        .map(|h| Hook {
            document: Document {
                source: h["path"].as_str().unwrap_or_default().to_string(),
                kind: h["kind"].as_str().unwrap_or_default().to_string(),
                name: h["name"].as_str().unwrap_or_default().to_string(),
                content: h["manifest"].as_str().unwrap_or_default().to_string(),
            },
            events: strings(&h["events"]),
            weight: h["weight"].as_i64().unwrap_or(0),
            delete_policies: strings(&h["delete_policies"]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn job_and_pod_outcomes() {
        assert!(finished("Job", &json!({})).is_none());
        assert!(
            finished(
                "Job",
                &json!({"conditions": [{"type": "Complete", "status": "True"}]})
            )
            .is_some_and(|r| r.is_ok())
        );
        let failed = finished(
            "Job",
            &json!({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}),
        );
        assert!(matches!(failed, Some(Err(e)) if e.contains("BackoffLimitExceeded")));
        assert!(finished("Pod", &json!({"phase": "Running"})).is_none());
        assert!(finished("Pod", &json!({"phase": "Succeeded"})).is_some_and(|r| r.is_ok()));
        assert!(matches!(
            finished("Pod", &json!({"phase": "Failed"})),
            Some(Err(_))
        ));
    }

    #[test]
    fn stored_hooks_read_back() {
        let release = json!({"hooks": [{"name": "migrate", "kind": "Job", "path": "c/templates/job.yaml",
            "manifest": "kind: Job", "events": ["pre-delete", "post-install"], "weight": -5,
            "delete_policies": ["hook-succeeded"]}]});
        let hooks = stored(&release);
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].document.name, "migrate");
        assert_eq!(hooks[0].events, vec!["pre-delete", "post-install"]);
        assert_eq!(hooks[0].weight, -5);
        assert_eq!(hooks[0].delete_policies, vec!["hook-succeeded"]);
        assert!(stored(&json!({})).is_empty());
    }
}
