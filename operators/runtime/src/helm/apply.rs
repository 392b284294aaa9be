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

/// (source, text) of each rendered document.
fn from_documents(documents: &[Document]) -> impl Iterator<Item = (String, String)> + '_ {
    documents
        .iter()
        .map(|d| (d.source.clone(), d.content.clone()))
}

/// (source, text) of each document of a stored release manifest.
fn from_manifest(manifest: &str) -> impl Iterator<Item = (String, String)> {
    split_documents(manifest)
        .into_iter()
        .map(|d| ("previous release".to_string(), d))
}

/// The references of the objects that can exist (served kinds).
async fn references(
    client: &Client,
    discovery: &mut Discovery,
    contents: impl Iterator<Item = (String, String)>,
    target: &str,
) -> Result<BTreeSet<String>, Error> {
    Ok(objects(client, discovery, contents, target, true)
        .await?
        .iter()
        .filter_map(ObjectRef::of)
        .map(|r| r.to_string())
        .collect())
}

/// The objects of rendered documents, namespaced into `target`.
pub async fn objects_of(
    client: &Client,
    discovery: &mut Discovery,
    documents: &[Document],
    target: &str,
) -> Result<Vec<Value>, Error> {
    objects(client, discovery, from_documents(documents), target, false).await
}

/// Helm's check before creating objects: one that already exists must
/// carry this release's marks, unless `take_ownership` adopts it. Objects
/// the previous revision declared are the release's own already.
pub async fn check_ownership(
    client: &Client,
    discovery: &mut Discovery,
    documents: &[Document],
    previous_manifest: &str,
    (release, target): (&str, &str),
    take_ownership: bool,
) -> Result<(), Error> {
    if take_ownership {
        return Ok(());
    }
    let previous = references(client, discovery, from_manifest(previous_manifest), target).await?;
    let verb = if previous_manifest.is_empty() {
        "install"
    } else {
        "upgrade"
    };
    // Kinds the cluster does not serve cannot exist yet; applying them
    // fails later, recorded as a failed revision.
    for object in objects(client, discovery, from_documents(documents), target, true).await? {
        let Some(reference) = ObjectRef::of(&object) else {
            continue;
        };
        if previous.contains(&reference.to_string()) {
            continue;
        }
        let Some(existing) = dynamic::get(client, discovery, &reference).await? else {
            continue;
        };
        let problems = ownership_problems(
            existing.metadata.labels.as_ref(),
            existing.metadata.annotations.as_ref(),
            release,
            target,
        );
        if !problems.is_empty() {
            let place = reference
                .namespace
                .as_ref()
                .map(|ns| format!(" in namespace \"{ns}\""))
                .unwrap_or_default();
            return Err(Error::Other(format!(
                "rendered manifests contain a resource that already exists. Unable to continue with {verb}: \
                 {} \"{}\"{place} exists and cannot be imported into the current release: \
                 invalid ownership metadata; {} (set spec.takeOwnership to adopt it)",
                reference.kind,
                reference.name,
                problems.join("; ")
            )));
        }
    }
    Ok(())
}

/// Helm's ownership validation errors, in its wording.
fn ownership_problems(
    labels: Option<&std::collections::BTreeMap<String, String>>,
    annotations: Option<&std::collections::BTreeMap<String, String>>,
    release: &str,
    target: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let checks = [
        ("label", labels, "app.kubernetes.io/managed-by", "Helm"),
        (
            "annotation",
            annotations,
            "meta.helm.sh/release-name",
            release,
        ),
        (
            "annotation",
            annotations,
            "meta.helm.sh/release-namespace",
            target,
        ),
    ];
    for (what, map, key, want) in checks {
        match map.and_then(|m| m.get(key)) {
            None => problems.push(format!(
                "{what} validation error: missing key \"{key}\": must be set to \"{want}\""
            )),
            Some(have) if have != want => problems.push(format!(
                "{what} validation error: key \"{key}\" must equal \"{want}\": current value is \"{have}\""
            )),
            Some(_) => {}
        }
    }
    problems
}

/// Applies every document in install order, marked as Helm marks them.
pub async fn release(
    client: &Client,
    discovery: &mut Discovery,
    documents: &[Document],
    (release, target): (&str, &str),
    force: bool,
) -> Result<(), Error> {
    for mut object in objects_of(client, discovery, documents, target).await? {
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
        dynamic::apply(client, discovery, &object, MANAGER, force).await?;
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
        from_manifest(previous_manifest),
        target,
        true,
    )
    .await?;
    let keep = references(client, discovery, from_documents(current), target).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ownership_problems_in_helms_words() {
        let labels = map(&[("app.kubernetes.io/managed-by", "Helm")]);
        let annotations = map(&[
            ("meta.helm.sh/release-name", "web"),
            ("meta.helm.sh/release-namespace", "apps"),
        ]);
        assert!(ownership_problems(Some(&labels), Some(&annotations), "web", "apps").is_empty());
        assert_eq!(
            ownership_problems(None, Some(&annotations), "db", "apps"),
            vec![
                "label validation error: missing key \"app.kubernetes.io/managed-by\": must be set to \"Helm\"".to_string(),
                "annotation validation error: key \"meta.helm.sh/release-name\" must equal \"db\": current value is \"web\"".to_string(),
            ]
        );
    }
}
