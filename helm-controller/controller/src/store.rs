//! The release history of a HelmChart, in Helm's own Secrets
//! (sh.helm.release.v1.NAME.vN), so real `helm` sees the same releases.
//! A release in progress (pending-install, pending-upgrade, uninstalling)
//! carries where its operation stands ([`Step`]) in an annotation, so that
//! each reconcile takes it one step further.

use std::collections::BTreeMap;

use k3r_helm_render::release::{Release, decode, encode_json};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Annotation on our release Secrets: the configuration they were made from.
pub const HASH_ANNOTATION: &str = "helmcharts.helm.cattle.io/configHash";
/// Annotation on a release in progress: its [`Step`].
pub const STEP_ANNOTATION: &str = "k3r.io/helm-step";

/// Where an operation stands: which stage, which hook object of that
/// stage's event, and when that hook object was created.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub stage: Stage,
    /// Index into the stage's hook objects, in Helm's order.
    #[serde(default)]
    pub hook: usize,
    /// When the current hook object was created (RFC 3339); None before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// Where the chart came from, for the final message.
    #[serde(default)]
    pub source: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    #[default]
    PreHooks,
    Resources,
    PostHooks,
    Finish,
}

pub struct Stored {
    pub secret: Secret,
    pub version: i64,
    pub status: String,
    pub hash: String,
    pub manifest: String,
    pub json: serde_json::Value,
    pub step: Option<Step>,
}

impl Stored {
    pub fn name(&self) -> String {
        self.secret.metadata.name.clone().unwrap_or_default()
    }
}

fn annotation(secret: &Secret, key: &str) -> Option<String> {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
}

/// Every stored revision of release `name`, oldest first.
pub async fn history(secrets: &Api<Secret>, name: &str) -> Result<Vec<Stored>, Error> {
    let list = secrets
        .list(&ListParams::default().labels(&format!("owner=helm,name={name}")))
        .await?;
    let mut out = Vec::new();
    for secret in list.items {
        let Some(data) = secret.data.as_ref().and_then(|d| d.get("release")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&data.0).into_owned();
        let Ok(json) = decode(&text) else {
            tracing::warn!(secret = ?secret.metadata.name, "undecodable Helm release; ignored");
            continue;
        };
        out.push(Stored {
            version: json["version"].as_i64().unwrap_or(0),
            status: json["info"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            hash: annotation(&secret, HASH_ANNOTATION).unwrap_or_default(),
            step: annotation(&secret, STEP_ANNOTATION).and_then(|s| serde_json::from_str(&s).ok()),
            manifest: json["manifest"].as_str().unwrap_or_default().to_string(),
            json,
            secret,
        });
    }
    out.sort_by_key(|s| s.version);
    Ok(out)
}

/// The annotation's value: the step as JSON, or null (removing it).
fn step_annotation(step: Option<&Step>) -> Result<serde_json::Value, Error> {
    Ok(match step {
        Some(step) => serde_json::Value::String(
            serde_json::to_string(step).map_err(|e| Error::Other(e.to_string()))?,
        ),
        None => serde_json::Value::Null,
    })
}

/// Stores a new revision, with the step its operation starts at.
pub async fn create(
    secrets: &Api<Secret>,
    release: &Release,
    hash: &str,
    step: Option<&Step>,
) -> Result<(), Error> {
    let mut object = release.secret();
    let mut annotations = serde_json::json!({ HASH_ANNOTATION: hash });
    if step.is_some() {
        annotations[STEP_ANNOTATION] = step_annotation(step)?;
    }
    object["metadata"]["annotations"] = annotations;
    let secret: Secret =
        serde_json::from_value(object).map_err(|e| Error::Other(format!("release secret: {e}")))?;
    secrets.create(&PostParams::default(), &secret).await?;
    Ok(())
}

/// Rewrites a stored revision's status (label and JSON) and, if given,
/// its description, as Helm does; `step` is recorded, or removed when
/// None (the operation is over).
pub async fn set_status(
    secrets: &Api<Secret>,
    stored: &Stored,
    status: &str,
    description: Option<&str>,
    step: Option<&Step>,
) -> Result<(), Error> {
    let mut json = stored.json.clone();
    json["info"]["status"] = serde_json::Value::String(status.to_string());
    if let Some(description) = description {
        json["info"]["description"] = serde_json::Value::String(description.to_string());
    }
    if status == "deployed" {
        json["info"]["last_deployed"] = serde_json::Value::String(
            humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        );
    }
    let mut data = BTreeMap::new();
    data.insert(
        "release".to_string(),
        ByteString(encode_json(&json).into_bytes()),
    );
    let patch = serde_json::json!({
        "metadata": {"labels": {"status": status}, "annotations": {STEP_ANNOTATION: step_annotation(step)?}},
        "data": data,
    });
    secrets
        .patch(
            &stored.name(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// Records how far the revision's operation got.
pub async fn set_step(secrets: &Api<Secret>, stored: &Stored, step: &Step) -> Result<(), Error> {
    let patch = serde_json::json!({"metadata": {"annotations": {STEP_ANNOTATION: step_annotation(Some(step))?}}});
    secrets
        .patch(
            &stored.name(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// Keeps the newest `keep` revisions.
pub async fn trim(secrets: &Api<Secret>, history: &[Stored], keep: usize) -> Result<(), Error> {
    if history.len() <= keep {
        return Ok(());
    }
    for old in &history[..history.len() - keep] {
        delete(secrets, old).await?;
    }
    Ok(())
}

pub async fn delete(secrets: &Api<Secret>, stored: &Stored) -> Result<(), Error> {
    match secrets
        .delete(&stored.name(), &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
