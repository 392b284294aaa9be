//! The deploy operator: every file of the manifests directory becomes an
//! Addon in kube-system; its objects are applied with server-side apply and
//! objects dropped from the file are pruned. Parse errors become a Failed
//! condition and an Event naming file and line; other Addons keep working.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k3r_crds::addon::{Addon, AddonSpec, AddonStatus};
use k3r_crds::condition::Condition;
use k3r_deploy::{ObjectRef, checksum, is_disabled, parse_manifest, prune_set, refs, scan};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::discovery::Discovery;
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::Error;
use crate::dynamic;
use crate::events::publish;
use crate::status::OperatorHandle;

const MANAGER: &str = "k3r-deploy";
const NAMESPACE: &str = "kube-system";
// k3s scans every 15 s; scanning only reads and hashes files, so scan more often.
const SCAN_INTERVAL: Duration = Duration::from_secs(5);

pub struct DeployConfig {
    pub manifests_dir: PathBuf,
    pub disabled: Vec<String>,
}

pub async fn run(
    client: Client,
    handle: OperatorHandle,
    config: DeployConfig,
) -> Result<(), Error> {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: MANAGER.into(),
            instance: None,
        },
    );
    let addons: Api<Addon> = Api::namespaced(client.clone(), NAMESPACE);
    let mut discovery = Discovery::new(client.clone()).run().await?;
    let mut applied_once: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let started = Instant::now();
        let mut ok = true;
        let (files, problems) = match scan(&config.manifests_dir, &config.disabled) {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(error = %err, "cannot scan the manifests directory");
                handle.reconciled(false, started.elapsed());
                tokio::time::sleep(SCAN_INTERVAL).await;
                continue;
            }
        };
        for problem in problems {
            tracing::warn!(%problem, "manifest ignored");
        }
        if let Err(err) =
            remove_disabled(&client, &mut discovery, &recorder, &addons, &config).await
        {
            ok = false;
            tracing::warn!(error = %err, "removing disabled add-ons failed; retrying next scan");
        }
        for file in files {
            // Disabled files are removed by the server at start; one that
            // appears later is still never applied.
            if file.skipped || file.disabled {
                continue;
            }
            // One file's failure never stops the others (or the operator).
            if let Err(err) = reconcile_file(
                &client,
                &mut discovery,
                &recorder,
                &addons,
                &mut applied_once,
                &file,
            )
            .await
            {
                ok = false;
                tracing::warn!(file = %file.path.display(), error = %err, "reconciling manifest failed; retrying next scan");
            }
        }
        handle.reconciled(ok, started.elapsed());
        tokio::time::sleep(SCAN_INTERVAL).await;
    }
}

/// `--disable`: every Addon named by it (by name, or by a directory of its
/// source below the manifests dir) has its objects deleted, then itself.
async fn remove_disabled(
    client: &Client,
    discovery: &mut Discovery,
    recorder: &Recorder,
    addons: &Api<Addon>,
    config: &DeployConfig,
) -> Result<(), Error> {
    if config.disabled.is_empty() {
        return Ok(());
    }
    for addon in addons.list(&ListParams::default()).await? {
        let name = addon.name_any();
        let source = PathBuf::from(&addon.spec.source);
        if !is_disabled(&config.manifests_dir, &source, &name, &config.disabled) {
            continue;
        }
        let reference = addon.object_ref(&());
        publish(
            recorder,
            &reference,
            EventType::Normal,
            "DeletingManifest",
            &format!("Deleting disabled add-on {name} ({})", addon.spec.source),
        )
        .await;
        let applied = addon
            .status
            .as_ref()
            .map(|s| s.applied_objects.clone())
            .unwrap_or_default();
        for object in applied.iter().filter_map(|o| ObjectRef::parse(o)) {
            dynamic::delete(client, discovery, &object).await?;
        }
        match addons.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(addon = %name, objects = applied.len(), "disabled add-on deleted");
    }
    Ok(())
}

async fn reconcile_file(
    client: &Client,
    discovery: &mut Discovery,
    recorder: &Recorder,
    addons: &Api<Addon>,
    applied_once: &mut BTreeMap<String, String>,
    file: &k3r_deploy::ManifestFile,
) -> Result<(), Error> {
    let client = client.clone();
    let text = match std::fs::read_to_string(&file.path) {
        Ok(t) => t,
        Err(err) => {
            tracing::warn!(file = %file.path.display(), error = %err, "ReadManifestFailed");
            return Ok(());
        }
    };
    let sum = checksum(text.as_bytes());
    // A file is looked at again only when its content changed since
    // this process last applied it.
    if applied_once.get(&file.addon) == Some(&sum) {
        return Ok(());
    }
    let existing = addons.get_opt(&file.addon).await?;
    if let Some(addon) = &existing
        && addon.spec.checksum == sum
        && !applied_once.contains_key(&file.addon)
        && addon
            .status
            .as_ref()
            .is_some_and(|s| !s.conditions.iter().any(|c| c.status == "False"))
    {
        applied_once.insert(file.addon.clone(), sum);
        return Ok(());
    }
    let source = file.path.display().to_string();
    let addon = ensure_addon(addons, &file.addon, &source, existing.as_ref()).await?;
    let reference = addon.object_ref(&());
    let previous: Vec<ObjectRef> = addon
        .status
        .as_ref()
        .map(|s| {
            s.applied_objects
                .iter()
                .filter_map(|o| ObjectRef::parse(o))
                .collect()
        })
        .unwrap_or_default();
    let objects = match parse_manifest(&text) {
        Ok(objects) => objects,
        Err(err) => {
            let message = format!("{source}: {err}");
            tracing::warn!(%message, "ParseManifestFailed");
            report_failure(
                recorder,
                &reference,
                addons,
                &file.addon,
                &previous,
                "ParseManifestFailed",
                &message,
            )
            .await?;
            applied_once.insert(file.addon.clone(), sum);
            return Ok(());
        }
    };
    publish(
        recorder,
        &reference,
        EventType::Normal,
        "ApplyingManifest",
        &format!("Applying manifest at {source}"),
    )
    .await;
    let mut failure = None;
    for object in &objects {
        if let Err(err) = dynamic::apply(&client, discovery, object, MANAGER, true).await {
            failure = Some(err.to_string());
            break;
        }
    }
    if failure.is_none() {
        for stale in prune_set(&previous, &objects) {
            if let Err(err) = dynamic::delete(&client, discovery, &stale).await {
                failure = Some(format!("pruning {stale}: {err}"));
            }
        }
    }
    let applied: Vec<ObjectRef> = refs(&objects);
    match failure {
        Some(message) => {
            let message = format!("{source}: {message}");
            report_failure(
                recorder,
                &reference,
                addons,
                &file.addon,
                &previous,
                "ApplyManifestFailed",
                &message,
            )
            .await?;
        }
        None => {
            let patch = json!({"apiVersion": "k3s.cattle.io/v1", "kind": "Addon", "metadata": {"name": file.addon, "namespace": NAMESPACE}, "spec": AddonSpec { source: source.clone(), checksum: sum.clone() }});
            addons
                .patch(
                    &file.addon,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await?;
            let message = format!("Applied manifest at {source}");
            set_status(
                addons,
                &file.addon,
                &applied,
                "True",
                "AppliedManifest",
                &message,
            )
            .await?;
            publish(
                recorder,
                &reference,
                EventType::Normal,
                "AppliedManifest",
                &message,
            )
            .await;
            applied_once.insert(file.addon.clone(), sum);
        }
    }
    Ok(())
}

/// A Warning Event and an `Applied=False` condition for the same reason.
async fn report_failure(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    addons: &Api<Addon>,
    name: &str,
    previous: &[ObjectRef],
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    publish(recorder, reference, EventType::Warning, reason, message).await;
    set_status(addons, name, previous, "False", reason, message).await
}

async fn ensure_addon(
    addons: &Api<Addon>,
    name: &str,
    source: &str,
    existing: Option<&Addon>,
) -> Result<Addon, Error> {
    if let Some(addon) = existing {
        return Ok(addon.clone());
    }
    let patch = json!({"apiVersion": "k3s.cattle.io/v1", "kind": "Addon", "metadata": {"name": name, "namespace": NAMESPACE}, "spec": {"source": source, "checksum": ""}});
    Ok(addons
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?)
}

async fn set_status(
    addons: &Api<Addon>,
    name: &str,
    applied: &[ObjectRef],
    status: &str,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    let status = AddonStatus {
        conditions: vec![Condition {
            type_: "Applied".into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            ..Condition::default()
        }],
        applied_objects: applied.iter().map(ToString::to_string).collect(),
        gvks: Vec::new(),
    };
    let patch = json!({"apiVersion": "k3s.cattle.io/v1", "kind": "Addon", "metadata": {"name": name, "namespace": NAMESPACE}, "status": status});
    addons
        .patch_status(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(())
}
