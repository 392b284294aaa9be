//! Applying a release's documents with Helm's ownership marks, and
//! pruning what an earlier revision had and this one has not.

use std::collections::BTreeSet;

use k3r_deploy::{ObjectRef, parse_manifest};
use k3r_helm_render::manifest::{Document, split_documents};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::discovery::Discovery;
use serde_json::{Value, json};

use crate::Error;
use crate::dynamic;

/// Field manager for release objects (Helm 4's server-side apply uses it
/// too, so a real `helm upgrade` takes them over without conflicts).
pub const MANAGER: &str = "helm";

pub async fn namespace(client: &Client, name: &str) -> Result<(), Error> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    namespaces
        .patch(name, &PatchParams::apply(MANAGER), &Patch::Apply(&object))
        .await?;
    Ok(())
}

/// The objects a manifest declares, with the release namespace filled in
/// for namespaced kinds. Kinds the cluster does not serve are an error, or,
/// with `skip_unserved` (pruning: such objects cannot exist), left out.
async fn objects(
    client: &Client,
    discovery: &mut Discovery,
    contents: impl Iterator<Item = (String, String)>,
    target: &str,
    skip_unserved: bool,
) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for (source, content) in contents {
        let parsed =
            parse_manifest(&content).map_err(|e| Error::Other(format!("{source}: {e}")))?;
        for mut object in parsed {
            let api_version = object["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let kind = object["kind"].as_str().unwrap_or_default().to_string();
            let namespaced =
                match dynamic::is_namespaced(client, discovery, &api_version, &kind).await {
                    Ok(namespaced) => namespaced,
                    Err(_) if skip_unserved => continue,
                    Err(e) => return Err(e),
                };
            if namespaced
                && object["metadata"]["namespace"]
                    .as_str()
                    .is_none_or(str::is_empty)
            {
                object["metadata"]["namespace"] = Value::String(target.to_string());
            }
            out.push(object);
        }
    }
    Ok(out)
}

/// Applies every document in install order, marked as Helm marks them.
pub async fn release(
    client: &Client,
    discovery: &mut Discovery,
    documents: &[Document],
    release: &str,
    target: &str,
) -> Result<(), Error> {
    let contents = documents
        .iter()
        .map(|d| (d.source.clone(), d.content.clone()));
    for mut object in objects(client, discovery, contents, target, false).await? {
        let metadata = &mut object["metadata"];
        if !metadata["labels"].is_object() {
            metadata["labels"] = json!({});
        }
        metadata["labels"]["app.kubernetes.io/managed-by"] = json!("Helm");
        if !metadata["annotations"].is_object() {
            metadata["annotations"] = json!({});
        }
        metadata["annotations"]["meta.helm.sh/release-name"] = json!(release);
        metadata["annotations"]["meta.helm.sh/release-namespace"] = json!(target);
        dynamic::apply(client, discovery, &object, MANAGER).await?;
    }
    Ok(())
}

/// Deletes the objects of `previous_manifest` that `current` no longer
/// declares (all of them for an uninstall), except those annotated
/// `helm.sh/resource-policy: keep`; the newest kinds first.
pub async fn prune(
    client: &Client,
    discovery: &mut Discovery,
    previous_manifest: &str,
    current: &[Document],
    target: &str,
) -> Result<(), Error> {
    let previous = objects(
        client,
        discovery,
        split_documents(previous_manifest)
            .into_iter()
            .map(|d| ("previous release".to_string(), d)),
        target,
        true,
    )
    .await?;
    let keep: BTreeSet<String> = objects(
        client,
        discovery,
        current
            .iter()
            .map(|d| (d.source.clone(), d.content.clone())),
        target,
        true,
    )
    .await?
    .iter()
    .filter_map(ObjectRef::of)
    .map(|r| r.to_string())
    .collect();
    for object in previous.iter().rev() {
        // parse_manifest only yields objects that have a reference.
        let Some(reference) = ObjectRef::of(object) else {
            continue;
        };
        if keep.contains(&reference.to_string())
            || object["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        {
            continue;
        }
        dynamic::delete(client, discovery, &reference).await?;
    }
    Ok(())
}
