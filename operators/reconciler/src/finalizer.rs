//! A finalizer whose cleanup may take several reconciles (delete hooks,
//! drains): the finalizer comes off only when cleanup says
//! [`Next::Done`]. Unlike kube-runtime's helper, which removes it after
//! the first successful cleanup call.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::Next;

pub enum Event<K> {
    /// The object is live (and carries the finalizer).
    Apply(Arc<K>),
    /// The object is being deleted: undo what Apply did.
    Cleanup(Arc<K>),
}

#[derive(Debug, thiserror::Error)]
pub enum Error<E: std::error::Error + 'static> {
    #[error(transparent)]
    Reconcile(E),
    #[error("adding finalizer {0}: {1}")]
    Add(String, #[source] kube::Error),
    #[error("removing finalizer {0}: {1}")]
    Remove(String, #[source] kube::Error),
}

pub async fn finalizer<K, F, Fut, E>(
    api: &Api<K>,
    name: &str,
    object: Arc<K>,
    reconcile: F,
) -> Result<Next, Error<E>>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    F: FnOnce(Event<K>) -> Fut,
    Fut: Future<Output = Result<Next, E>>,
    E: std::error::Error + 'static,
{
    let position = object.finalizers().iter().position(|f| f == name);
    let deleting = object.meta().deletion_timestamp.is_some();
    let object_name = object.name_any();
    match (position, deleting) {
        (Some(index), true) => {
            let next = reconcile(Event::Cleanup(object))
                .await
                .map_err(Error::Reconcile)?;
            if next == Next::Done {
                // The test keeps us from removing someone else's entry when
                // the list changed meanwhile (the patch then fails, and the
                // next reconcile sees the new list).
                let path = format!("/metadata/finalizers/{index}");
                let patch: json_patch::Patch = serde_json::from_value(json!([
                    {"op": "test", "path": path, "value": name},
                    {"op": "remove", "path": path},
                ]))
                .map_err(|e| Error::Remove(name.into(), kube::Error::SerdeError(e)))?;
                match api
                    .patch(
                        &object_name,
                        &PatchParams::default(),
                        &Patch::<()>::Json(patch),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(Error::Remove(name.into(), e)),
                }
            }
            Ok(next)
        }
        // Not ours to clean up.
        (None, true) => Ok(Next::Done),
        (Some(_), false) => reconcile(Event::Apply(object))
            .await
            .map_err(Error::Reconcile),
        (None, false) => {
            let patch = if object.finalizers().is_empty() {
                json!([
                    {"op": "test", "path": "/metadata/finalizers", "value": null},
                    {"op": "add", "path": "/metadata/finalizers", "value": [name]},
                ])
            } else {
                json!([{"op": "add", "path": "/metadata/finalizers/-", "value": name}])
            };
            let patch: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| Error::Add(name.into(), kube::Error::SerdeError(e)))?;
            let updated = api
                .patch(
                    &object_name,
                    &PatchParams::default(),
                    &Patch::<()>::Json(patch),
                )
                .await
                .map_err(|e| Error::Add(name.into(), e))?;
            reconcile(Event::Apply(Arc::new(updated)))
                .await
                .map_err(Error::Reconcile)
        }
    }
}
