//! The release history of a HelmChart, in Helm's own Secrets
//! (sh.helm.release.v1.NAME.vN), so real `helm` sees the same releases.

use std::collections::BTreeMap;

use k3r_helm_render::release::{Release, decode, encode_json};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

use crate::Error;

/// Annotation on our release Secrets: the configuration they were made from.
pub const HASH_ANNOTATION: &str = "helmcharts.helm.cattle.io/configHash";

pub struct Stored {
    pub secret: Secret,
    pub version: i64,
    pub status: String,
    pub hash: String,
    pub manifest: String,
    pub json: serde_json::Value,
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
            hash: secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(HASH_ANNOTATION))
                .cloned()
                .unwrap_or_default(),
            manifest: json["manifest"].as_str().unwrap_or_default().to_string(),
            json,
            secret,
        });
    }
    out.sort_by_key(|s| s.version);
    Ok(out)
}

/// Stores a new revision.
pub async fn create(secrets: &Api<Secret>, release: &Release, hash: &str) -> Result<(), Error> {
    let mut object = release.secret();
    object["metadata"]["annotations"] = serde_json::json!({ HASH_ANNOTATION: hash });
    let secret: Secret =
        serde_json::from_value(object).map_err(|e| Error::Other(format!("release secret: {e}")))?;
    secrets.create(&PostParams::default(), &secret).await?;
    Ok(())
}

/// Rewrites a stored revision's status (label and JSON), as Helm marks
/// the previous revision superseded.
pub async fn set_status(secrets: &Api<Secret>, stored: &Stored, status: &str) -> Result<(), Error> {
    let mut json = stored.json.clone();
    json["info"]["status"] = serde_json::Value::String(status.to_string());
    let mut data = BTreeMap::new();
    data.insert(
        "release".to_string(),
        ByteString(encode_json(&json).into_bytes()),
    );
    let name = stored.secret.metadata.name.clone().unwrap_or_default();
    let patch = serde_json::json!({
        "metadata": {"labels": {"status": status}},
        "data": data,
    });
    secrets
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
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
    let name = stored.secret.metadata.name.clone().unwrap_or_default();
    match secrets.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
