//! Running a release's hooks for one event as Helm does: by weight, each
//! created (after deleting a leftover under `before-hook-creation`, the
//! default), Jobs and Pods waited for until they finish or the chart's
//! timeout passes, and deleted afterwards as `hook-succeeded` /
//! `hook-failed` ask. Hook objects carry no release marks and are not
//! pruned, as in Helm.

use std::time::{Duration, Instant};

use k3r_deploy::ObjectRef;
use k3r_helm_render::manifest::{Document, Hook};
use kube::Client;
use kube::discovery::Discovery;
use serde_json::Value;

use super::apply::{self, MANAGER};
use crate::Error;
use crate::dynamic;

const POLL: Duration = Duration::from_millis(500);

pub struct HookRun<'a> {
    pub client: &'a Client,
    pub discovery: &'a mut Discovery,
    pub target: &'a str,
    pub timeout: Duration,
}

impl HookRun<'_> {
    /// Runs every hook of `event`; the first failure stops the rest.
    pub async fn run(&mut self, hooks: &[Hook], event: &str) -> Result<(), Error> {
        for hook in hooks.iter().filter(|h| h.events.iter().any(|e| e == event)) {
            self.run_one(hook, event).await?;
        }
        Ok(())
    }

    async fn run_one(&mut self, hook: &Hook, event: &str) -> Result<(), Error> {
        let policies: Vec<&str> = if hook.delete_policies.is_empty() {
            vec!["before-hook-creation"]
        } else {
            hook.delete_policies.iter().map(String::as_str).collect()
        };
        let objects = apply::objects_of(
            self.client,
            self.discovery,
            std::slice::from_ref(&hook.document),
            self.target,
        )
        .await?;
        let deadline = Instant::now() + self.timeout;
        for object in &objects {
            let Some(reference) = ObjectRef::of(object) else {
                continue;
            };
            if policies.contains(&"before-hook-creation") {
                self.delete_and_wait(&reference, deadline).await?;
            }
            tracing::info!(%event, hook = %reference, "running hook");
            dynamic::apply(self.client, self.discovery, object, MANAGER, true).await?;
            let outcome = self.wait(&reference, deadline).await;
            let policy = if outcome.is_ok() {
                "hook-succeeded"
            } else {
                "hook-failed"
            };
            if policies.contains(&policy) {
                dynamic::delete(self.client, self.discovery, &reference).await?;
            }
            outcome.map_err(|e| {
                Error::Other(format!(
                    "{event} hook {} ({}): {e}",
                    hook.document.source, reference
                ))
            })?;
        }
        Ok(())
    }

    async fn delete_and_wait(
        &mut self,
        reference: &ObjectRef,
        deadline: Instant,
    ) -> Result<(), Error> {
        dynamic::delete(self.client, self.discovery, reference).await?;
        while dynamic::get(self.client, self.discovery, reference)
            .await?
            .is_some()
        {
            if Instant::now() > deadline {
                return Err(Error::Other(format!(
                    "the previous {reference} is still being deleted"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Jobs until complete or failed, Pods until they succeed or fail;
    /// other kinds are done once created.
    async fn wait(&mut self, reference: &ObjectRef, deadline: Instant) -> Result<(), Error> {
        if !matches!(reference.kind.as_str(), "Job" | "Pod") {
            return Ok(());
        }
        loop {
            let object = dynamic::get(self.client, self.discovery, reference)
                .await?
                .ok_or_else(|| Error::Other("deleted while running".into()))?;
            let status = object.data.get("status").cloned().unwrap_or(Value::Null);
            if let Some(done) = finished(&reference.kind, &status) {
                return done;
            }
            if Instant::now() > deadline {
                return Err(Error::Other(format!(
                    "not finished within the timeout ({:?})",
                    self.timeout
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Whether a Job or Pod has finished, and how.
fn finished(kind: &str, status: &Value) -> Option<Result<(), Error>> {
    if kind == "Pod" {
        return match status["phase"].as_str() {
            Some("Succeeded") => Some(Ok(())),
            Some("Failed") => Some(Err(Error::Other(format!(
                "pod failed: {}",
                status["message"]
                    .as_str()
                    .unwrap_or("a container exited non-zero")
            )))),
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
        Err(Error::Other(format!(
            "job failed: {}: {}",
            c["reason"].as_str().unwrap_or_default(),
            c["message"].as_str().unwrap_or_default()
        )))
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
        assert!(matches!(failed, Some(Err(e)) if e.to_string().contains("BackoffLimitExceeded")));
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
