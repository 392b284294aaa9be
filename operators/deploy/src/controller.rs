//! The Addon controller and the manifests-directory scanner that feeds it.
//!
//! The scanner reads the directory every few seconds (files only, no API
//! requests): a new file gets its Addon created, a changed one triggers
//! a reconcile of its Addon. The reconcile applies the file when its
//! checksum differs from the one the Addon records as applied: objects
//! with server-side apply (field manager `k3r-deploy`), then pruning of
//! what the previous version declared and this one does not. Parse errors
//! leave `Applied=False` and an Event naming file and line, and wait for
//! the file to change; apply errors are retried with backoff. An Addon
//! named by `--disable` has its objects deleted, then itself.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k3r_apply::{Applier, ObjectRef, Options, parse_manifest};
use k3r_crds::addon::{Addon, AddonStatus};
use k3r_reconciler::events::{Type, publish};
use k3r_reconciler::{Builder, Next, Runtime, Store, conditions};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::Recorder;
use kube::runtime::{predicates, watcher};
use serde_json::json;

use crate::{checksum, is_disabled, scan};

pub const NAME: &str = "deploy";
const MANAGER: &str = "k3r-deploy";
pub const NAMESPACE: &str = "kube-system";
/// Objects without a namespace in a manifest land here, as with kubectl.
const DEFAULT_NAMESPACE: &str = "default";
// k3s scans every 15 s; scanning only reads and hashes files, so scan more often.
const SCAN_INTERVAL: Duration = Duration::from_secs(5);

pub struct Config {
    pub manifests_dir: PathBuf,
    pub disabled: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Read(PathBuf, std::io::Error),
    #[error("{0}")]
    Apply(#[from] k3r_apply::Error),
    #[error("Addon {0}: {1}")]
    Addon(String, #[source] kube::Error),
}

pub struct Context {
    config: Config,
    addons: Api<Addon>,
    applier: Applier,
    recorder: Recorder,
    /// Where the scanner last found each Addon's file.
    files: Mutex<HashMap<String, PathBuf>>,
}

impl Context {
    pub fn new(runtime: &Runtime, config: Config) -> Self {
        Self {
            config,
            addons: Api::namespaced(runtime.client.clone(), NAMESPACE),
            applier: Applier::new(runtime.client.clone()),
            recorder: runtime.recorder(MANAGER),
            files: Mutex::default(),
        }
    }

    fn file_of(&self, addon: &str) -> Option<PathBuf> {
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(addon)
            .cloned()
    }
}

/// Runs the scanner and the Addon controller.
pub async fn run(runtime: Runtime, config: Config) {
    let context = Arc::new(Context::new(&runtime, config));
    let (trigger, triggered) = futures::channel::mpsc::unbounded();
    let builder = Builder::new(
        NAME,
        &runtime,
        context.addons.clone(),
        watcher::Config::default(),
    )
    .predicate(predicates::generation)
    .trigger(triggered);
    let store = builder.store();
    futures::join!(
        builder.run(reconcile, Arc::clone(&context)),
        scan_forever(context, store, trigger)
    );
}

async fn scan_forever(
    context: Arc<Context>,
    store: Store<Addon>,
    trigger: futures::channel::mpsc::UnboundedSender<k3r_reconciler::ObjectRef<Addon>>,
) {
    // Existing Addons must be known before deciding which to create.
    let _ = store.wait_until_ready().await;
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    loop {
        scan_once(&context, &store, &trigger, &mut seen, &mut reported).await;
        tokio::time::sleep(SCAN_INTERVAL).await;
    }
}

/// One pass over the directory: Addons created for new files, reconciles
/// triggered for changed ones. Problems are logged once each.
async fn scan_once(
    context: &Context,
    store: &Store<Addon>,
    trigger: &futures::channel::mpsc::UnboundedSender<k3r_reconciler::ObjectRef<Addon>>,
    seen: &mut HashMap<String, String>,
    reported: &mut BTreeSet<String>,
) {
    let config = &context.config;
    let (files, problems) = match scan(&config.manifests_dir, &config.disabled) {
        Ok(found) => found,
        Err(err) => {
            if reported.insert(err.to_string()) {
                tracing::warn!(error = %err, "cannot scan the manifests directory");
            }
            return;
        }
    };
    for problem in problems {
        if reported.insert(problem.to_string()) {
            tracing::warn!(%problem, "manifest ignored");
        }
    }
    // Disabled files are removed by the server at start; one that appears
    // later is still never applied.
    for file in files.iter().filter(|f| !f.skipped && !f.disabled) {
        let Ok(contents) = std::fs::read(&file.path) else {
            continue;
        };
        let sum = checksum(&contents);
        if seen.get(&file.addon) == Some(&sum) {
            continue;
        }
        context
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(file.addon.clone(), file.path.clone());
        let reference = k3r_reconciler::ObjectRef::new(&file.addon).within(NAMESPACE);
        if store.get(&reference).is_none() {
            // Its creation triggers the reconcile.
            if let Err(err) = create_addon(&context.addons, &file.addon, &file.path).await {
                tracing::warn!(addon = %file.addon, error = %err, "cannot create the Addon; retrying next scan");
                continue;
            }
        } else if trigger.unbounded_send(reference).is_err() {
            return;
        }
        seen.insert(file.addon.clone(), sum);
    }
}

async fn create_addon(addons: &Api<Addon>, name: &str, path: &Path) -> Result<(), kube::Error> {
    let addon: Addon = serde_json::from_value(json!({
        "apiVersion": "k3s.cattle.io/v1", "kind": "Addon",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"source": path.display().to_string(), "checksum": ""},
    }))
    .map_err(kube::Error::SerdeError)?;
    match addons.create(&PostParams::default(), &addon).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn reconcile(addon: Arc<Addon>, context: Arc<Context>) -> Result<Next, Error> {
    let name = addon.name_any();
    let config = &context.config;
    if is_disabled(
        &config.manifests_dir,
        Path::new(&addon.spec.source),
        &name,
        &config.disabled,
    ) {
        remove(&context, &addon).await?;
        return Ok(Next::Done);
    }
    let path = context
        .file_of(&name)
        .unwrap_or_else(|| PathBuf::from(&addon.spec.source));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        // As in k3s, removing a file leaves what it applied.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Next::Done),
        Err(e) => return Err(Error::Read(path, e)),
    };
    let source = path.display().to_string();
    let sum = checksum(text.as_bytes());
    let status = addon.status.clone().unwrap_or_default();
    let applied =
        conditions::get(&status.conditions, "Applied").is_some_and(|c| c.status == "True");
    if applied && addon.spec.checksum == sum && addon.spec.source == source {
        return Ok(Next::Done);
    }
    let previous: Vec<ObjectRef> = status
        .applied_objects
        .iter()
        .filter_map(|o| ObjectRef::parse(o))
        .collect();
    let objects = match parse_manifest(&text) {
        Ok(objects) => objects,
        Err(err) => {
            // Nothing to retry until the file changes (the scanner sees it).
            let message = format!("{source}: {err}");
            tracing::warn!(%message, "ParseManifestFailed");
            publish(
                &context.recorder,
                addon.as_ref(),
                Type::Warning,
                "ParseManifestFailed",
                &message,
            )
            .await;
            set_status(
                &context,
                &name,
                &status,
                &previous,
                "False",
                "ParseManifestFailed",
                &message,
            )
            .await?;
            return Ok(Next::Done);
        }
    };
    publish(
        &context.recorder,
        addon.as_ref(),
        Type::Normal,
        "ApplyingManifest",
        &format!("Applying manifest at {source}"),
    )
    .await;
    let options = Options {
        manager: MANAGER,
        force: true,
    };
    match context
        .applier
        .apply_and_prune(&objects, &previous, DEFAULT_NAMESPACE, &options)
        .await
    {
        Ok(inventory) => {
            let spec = json!({"spec": {"source": source, "checksum": sum}});
            context
                .addons
                .patch(&name, &PatchParams::default(), &Patch::Merge(&spec))
                .await
                .map_err(|e| Error::Addon(name.clone(), e))?;
            let message = format!("Applied manifest at {source}");
            set_status(
                &context,
                &name,
                &status,
                &inventory,
                "True",
                "AppliedManifest",
                &message,
            )
            .await?;
            publish(
                &context.recorder,
                addon.as_ref(),
                Type::Normal,
                "AppliedManifest",
                &message,
            )
            .await;
            tracing::info!(addon = %name, objects = inventory.len(), "manifest applied");
            Ok(Next::Done)
        }
        Err(err) => {
            let message = format!("{source}: {err}");
            publish(
                &context.recorder,
                addon.as_ref(),
                Type::Warning,
                "ApplyManifestFailed",
                &message,
            )
            .await;
            // What may have been applied before the failure stays in the
            // inventory, so a later version of the file prunes it.
            let mut inventory = previous.clone();
            for reference in objects.iter().filter_map(ObjectRef::of) {
                if !inventory.contains(&reference) {
                    inventory.push(reference);
                }
            }
            set_status(
                &context,
                &name,
                &status,
                &inventory,
                "False",
                "ApplyManifestFailed",
                &message,
            )
            .await?;
            Err(err.into())
        }
    }
}

/// `--disable`: the Addon's objects are deleted, then the Addon.
async fn remove(context: &Context, addon: &Addon) -> Result<(), Error> {
    let name = addon.name_any();
    publish(
        &context.recorder,
        addon,
        Type::Normal,
        "DeletingManifest",
        &format!("Deleting disabled add-on {name} ({})", addon.spec.source),
    )
    .await;
    let applied: Vec<ObjectRef> = addon
        .status
        .as_ref()
        .map(|s| {
            s.applied_objects
                .iter()
                .filter_map(|o| ObjectRef::parse(o))
                .collect()
        })
        .unwrap_or_default();
    context
        .applier
        .prune(&applied, &[], DEFAULT_NAMESPACE, |_| false)
        .await?;
    match context.addons.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(Error::Addon(name, e)),
    }
    tracing::info!(addon = %name, objects = applied.len(), "disabled add-on deleted");
    Ok(())
}

async fn set_status(
    context: &Context,
    name: &str,
    current: &AddonStatus,
    applied: &[ObjectRef],
    status: &str,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    let mut next = current.clone();
    conditions::set(&mut next.conditions, "Applied", status, reason, message);
    next.applied_objects = applied.iter().map(ToString::to_string).collect();
    if &next == current {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": "k3s.cattle.io/v1", "kind": "Addon",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "status": next,
    });
    context
        .addons
        .patch_status(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(|e| Error::Addon(name.to_string(), e))?;
    Ok(())
}

#[cfg(test)]
mod tests;
