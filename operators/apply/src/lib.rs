//! The one apply-and-prune path of k3r's controllers (the deploy
//! controller's Addons and the helm controller's releases both use it):
//!
//! - [`parse_manifest`]: YAML/JSON manifests to objects, errors with lines;
//! - [`Applier`]: server-side apply of objects of any kind (found through
//!   discovery, cached per kind) under a field manager;
//! - inventories: the [`ObjectRef`]s an owner applied, kept by the owner
//!   (an Addon's status, a Helm release's manifest); [`Applier::prune`]
//!   deletes what the previous inventory has and the new one does not.

mod kinds;
mod manifest;
mod object;

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::Value;

pub use kinds::Kinds;
pub use manifest::{ManifestError, parse_manifest, prune_set, refs};
pub use object::ObjectRef;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the cluster does not serve {api_version} {kind}")]
    Unserved { api_version: String, kind: String },
    #[error("discovering {api_version} {kind}: {source}")]
    Discovery {
        api_version: String,
        kind: String,
        #[source]
        source: kube::Error,
    },
    #[error("{object}: {source}")]
    Api {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// How objects are applied.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// The server-side apply field manager.
    pub manager: &'a str,
    /// Take over fields other managers own.
    pub force: bool,
}

/// Applies, reads and deletes objects of any kind the cluster serves.
#[derive(Clone)]
pub struct Applier {
    client: Client,
    kinds: Arc<Kinds>,
}

impl Applier {
    pub fn new(client: Client) -> Self {
        Self {
            kinds: Arc::new(Kinds::new(client.clone())),
            client,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The API of a kind, in `namespace` when it is namespaced ("default"
    /// when none is given).
    pub async fn api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Api<DynamicObject>, Error> {
        let (resource, namespaced) = self.kinds.resolve(api_version, kind).await?;
        Ok(if namespaced {
            Api::namespaced_with(
                self.client.clone(),
                namespace.unwrap_or("default"),
                &resource,
            )
        } else {
            Api::all_with(self.client.clone(), &resource)
        })
    }

    async fn api_of(&self, reference: &ObjectRef) -> Result<Api<DynamicObject>, Error> {
        self.api(
            &reference.api_version,
            &reference.kind,
            reference.namespace.as_deref(),
        )
        .await
    }

    pub async fn is_namespaced(&self, api_version: &str, kind: &str) -> Result<bool, Error> {
        Ok(self.kinds.resolve(api_version, kind).await?.1)
    }

    /// `object` with `default_namespace` filled in when its kind is
    /// namespaced and it names none (and without a namespace when its kind
    /// is cluster-scoped), so that inventories hold exact identities.
    pub async fn normalize(
        &self,
        mut object: Value,
        default_namespace: &str,
    ) -> Result<Value, Error> {
        let reference = ObjectRef::of(&object).ok_or_else(|| {
            Error::Invalid("an object needs apiVersion, kind and metadata.name".into())
        })?;
        let namespaced = self
            .is_namespaced(&reference.api_version, &reference.kind)
            .await?;
        let metadata = &mut object["metadata"];
        if namespaced {
            if metadata["namespace"].as_str().is_none_or(str::is_empty) {
                metadata["namespace"] = Value::String(default_namespace.to_string());
            }
        } else if let Some(map) = metadata.as_object_mut() {
            map.remove("namespace");
        }
        Ok(object)
    }

    /// The exact identity of `reference` (see [`Applier::normalize`]);
    /// None when its kind is not served (so it cannot exist).
    pub async fn normalize_ref(
        &self,
        reference: &ObjectRef,
        default_namespace: &str,
    ) -> Result<Option<ObjectRef>, Error> {
        match self
            .is_namespaced(&reference.api_version, &reference.kind)
            .await
        {
            Ok(namespaced) => Ok(Some(ObjectRef {
                namespace: if namespaced {
                    Some(
                        reference
                            .namespace
                            .clone()
                            .filter(|n| !n.is_empty())
                            .unwrap_or_else(|| default_namespace.to_string()),
                    )
                } else {
                    None
                },
                ..reference.clone()
            })),
            Err(Error::Unserved { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Server-side apply of one object.
    pub async fn apply(&self, object: &Value, options: &Options<'_>) -> Result<(), Error> {
        let reference = ObjectRef::of(object).ok_or_else(|| {
            Error::Invalid("an object needs apiVersion, kind and metadata.name".into())
        })?;
        let api = self.api_of(&reference).await?;
        let mut params = PatchParams::apply(options.manager);
        params.force = options.force;
        api.patch(&reference.name, &params, &Patch::Apply(object))
            .await
            .map_err(|source| Error::Api {
                object: reference.to_string(),
                source,
            })?;
        Ok(())
    }

    /// One object, if it exists.
    pub async fn get(&self, reference: &ObjectRef) -> Result<Option<DynamicObject>, Error> {
        let api = self.api_of(reference).await?;
        api.get_opt(&reference.name)
            .await
            .map_err(|source| Error::Api {
                object: reference.to_string(),
                source,
            })
    }

    /// Deletes one object; one that is already gone, or whose kind is no
    /// longer served, is fine. Dependents go too, in the background (a
    /// Job's pods would otherwise be orphaned).
    pub async fn delete(&self, reference: &ObjectRef) -> Result<(), Error> {
        let api = match self.api_of(reference).await {
            Ok(api) => api,
            Err(Error::Unserved { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        match api
            .delete(&reference.name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(source) => Err(Error::Api {
                object: reference.to_string(),
                source,
            }),
        }
    }

    /// Applies `objects` in order (each normalized into
    /// `default_namespace`), then prunes what `previous` had and they do
    /// not declare. Returns the new inventory. The first failure stops the
    /// applies (nothing is pruned then).
    pub async fn apply_and_prune(
        &self,
        objects: &[Value],
        previous: &[ObjectRef],
        default_namespace: &str,
        options: &Options<'_>,
    ) -> Result<Vec<ObjectRef>, Error> {
        let mut inventory = Vec::with_capacity(objects.len());
        for object in objects {
            let object = self.normalize(object.clone(), default_namespace).await?;
            self.apply(&object, options).await?;
            if let Some(reference) = ObjectRef::of(&object) {
                inventory.push(reference);
            }
        }
        self.prune(previous, &inventory, default_namespace, |_| false)
            .await?;
        Ok(inventory)
    }

    /// Deletes what `previous` has and `current` has not (newest first:
    /// the reverse of the order they were applied in), except what `keep`
    /// holds back. References without a namespace count as in
    /// `default_namespace` (older inventories recorded them so). Every
    /// deletion is tried; the first failure is returned.
    pub async fn prune(
        &self,
        previous: &[ObjectRef],
        current: &[ObjectRef],
        default_namespace: &str,
        keep: impl Fn(&ObjectRef) -> bool,
    ) -> Result<Vec<ObjectRef>, Error> {
        let mut wanted = BTreeSet::new();
        for reference in current {
            if let Some(exact) = self.normalize_ref(reference, default_namespace).await? {
                wanted.insert(exact);
            }
        }
        let mut pruned = Vec::new();
        let mut first_error = None;
        for reference in previous.iter().rev() {
            let Some(exact) = self.normalize_ref(reference, default_namespace).await? else {
                continue;
            };
            if wanted.contains(&exact) || keep(reference) {
                continue;
            }
            match self.delete(&exact).await {
                Ok(()) => pruned.push(exact),
                Err(e) => {
                    tracing::warn!(object = %exact, error = %e, "pruning failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(pruned),
        }
    }
}

#[cfg(test)]
mod tests;
