//! Applying a release's documents with Helm's ownership marks, and
//! pruning what an earlier revision had and this one has not — through
//! k3r-apply's one apply-and-prune path.

use std::collections::BTreeSet;

use k3r_apply::{Applier, ObjectRef, Options, parse_manifest};
use k3r_helm_render::manifest::{Document, split_documents};
use serde_json::{Value, json};

use crate::Error;

/// Field manager for release objects (Helm 4's server-side apply uses it
/// too, so a real `helm upgrade` takes them over without conflicts).
pub const MANAGER: &str = "helm";

pub async fn namespace(applier: &Applier, name: &str) -> Result<(), Error> {
    let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    applier
        .apply(
            &object,
            &Options {
                manager: MANAGER,
                force: false,
            },
        )
        .await?;
    Ok(())
}

/// The objects a manifest declares, with the release namespace filled in
/// for namespaced kinds. Kinds the cluster does not serve are an error, or,
/// with `skip_unserved` (pruning: such objects cannot exist), left out.
async fn objects(
    applier: &Applier,
    contents: impl Iterator<Item = (String, String)>,
    target: &str,
    skip_unserved: bool,
) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for (source, content) in contents {
        let parsed =
            parse_manifest(&content).map_err(|e| Error::Other(format!("{source}: {e}")))?;
        for object in parsed {
            match applier.normalize(object, target).await {
                Ok(object) => out.push(object),
                Err(k3r_apply::Error::Unserved { .. }) if skip_unserved => {}
                Err(e) => return Err(e.into()),
            }
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

/// The rendered documents of a stored release manifest (for applying a
/// pending release's objects in a later reconcile).
pub fn documents_of(manifest: &str) -> Vec<Document> {
    split_documents(manifest)
        .into_iter()
        .map(|content| {
            let source = content
                .lines()
                .find_map(|l| l.strip_prefix("# Source: "))
                .unwrap_or("release manifest")
                .to_string();
            Document {
                source,
                kind: String::new(),
                name: String::new(),
                content,
            }
        })
        .collect()
}

/// The references of the objects that can exist (served kinds).
async fn references(
    applier: &Applier,
    contents: impl Iterator<Item = (String, String)>,
    target: &str,
) -> Result<BTreeSet<ObjectRef>, Error> {
    Ok(objects(applier, contents, target, true)
        .await?
        .iter()
        .filter_map(ObjectRef::of)
        .collect())
}

/// The objects of rendered documents, namespaced into `target`.
pub async fn objects_of(
    applier: &Applier,
    documents: &[Document],
    target: &str,
) -> Result<Vec<Value>, Error> {
    objects(applier, from_documents(documents), target, false).await
}

/// Helm's check before creating objects: one that already exists must
/// carry this release's marks, unless `take_ownership` adopts it. Objects
/// the previous revision declared are the release's own already.
pub async fn check_ownership(
    applier: &Applier,
    documents: &[Document],
    previous_manifest: &str,
    (release, target): (&str, &str),
    take_ownership: bool,
) -> Result<(), Error> {
    if take_ownership {
        return Ok(());
    }
    let previous = references(applier, from_manifest(previous_manifest), target).await?;
    let verb = if previous_manifest.is_empty() {
        "install"
    } else {
        "upgrade"
    };
    // Kinds the cluster does not serve cannot exist yet; applying them
    // fails later, recorded as a failed revision.
    for object in objects(applier, from_documents(documents), target, true).await? {
        let Some(reference) = ObjectRef::of(&object) else {
            continue;
        };
        if previous.contains(&reference) {
            continue;
        }
        let Some(existing) = applier.get(&reference).await? else {
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
    applier: &Applier,
    documents: &[Document],
    (release, target): (&str, &str),
    force: bool,
) -> Result<(), Error> {
    let options = Options {
        manager: MANAGER,
        force,
    };
    for mut object in objects_of(applier, documents, target).await? {
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
        applier.apply(&object, &options).await?;
    }
    Ok(())
}

/// Deletes the objects of `previous_manifest` that `current` no longer
/// declares (all of them for an uninstall), except those annotated
/// `helm.sh/resource-policy: keep`; the newest kinds first.
pub async fn prune(
    applier: &Applier,
    previous_manifest: &str,
    current: &[Document],
    target: &str,
) -> Result<(), Error> {
    let previous = objects(applier, from_manifest(previous_manifest), target, true).await?;
    let kept: BTreeSet<ObjectRef> = previous
        .iter()
        .filter(|o| o["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep")
        .filter_map(ObjectRef::of)
        .collect();
    let previous: Vec<ObjectRef> = previous.iter().filter_map(ObjectRef::of).collect();
    let current: Vec<ObjectRef> = references(applier, from_documents(current), target)
        .await?
        .into_iter()
        .collect();
    applier
        .prune(&previous, &current, target, |r| kept.contains(r))
        .await?;
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
