//! Objects of any kind, found through discovery: server-side apply and
//! delete, shared by the operators that apply manifests.

use k3r_deploy::ObjectRef;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};

use crate::Error;

fn gvk_of(api_version: &str, kind: &str) -> GroupVersionKind {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}

/// The resource and scope of a kind, refreshing discovery once when the
/// kind is unknown (new CRDs may have appeared since the last discovery).
async fn find(
    client: &Client,
    discovery: &mut Discovery,
    api_version: &str,
    kind: &str,
) -> Result<(ApiResource, ApiCapabilities), Error> {
    let gvk = gvk_of(api_version, kind);
    if discovery.resolve_gvk(&gvk).is_none() {
        *discovery = Discovery::new(client.clone()).run().await?;
    }
    discovery
        .resolve_gvk(&gvk)
        .ok_or_else(|| Error::Other(format!("the cluster does not serve {api_version} {kind}")))
}

pub async fn resolve(
    client: &Client,
    discovery: &mut Discovery,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Result<Api<DynamicObject>, Error> {
    let (resource, capabilities) = find(client, discovery, api_version, kind).await?;
    Ok(match capabilities.scope {
        Scope::Namespaced => {
            Api::namespaced_with(client.clone(), namespace.unwrap_or("default"), &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    })
}

/// Whether objects of this kind live in a namespace.
pub async fn is_namespaced(
    client: &Client,
    discovery: &mut Discovery,
    api_version: &str,
    kind: &str,
) -> Result<bool, Error> {
    let (_, capabilities) = find(client, discovery, api_version, kind).await?;
    Ok(matches!(capabilities.scope, Scope::Namespaced))
}

/// Server-side apply of one object as `manager`, taking over fields other
/// managers own when `force` is set.
pub async fn apply(
    client: &Client,
    discovery: &mut Discovery,
    object: &serde_json::Value,
    manager: &str,
    force: bool,
) -> Result<(), Error> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api = resolve(
        client,
        discovery,
        api_version,
        kind,
        object["metadata"]["namespace"].as_str(),
    )
    .await?;
    let mut params = PatchParams::apply(manager);
    params.force = force;
    api.patch(name, &params, &Patch::Apply(object))
        .await
        .map_err(|e| Error::Other(format!("{api_version} {kind} {name}: {e}")))?;
    Ok(())
}

async fn api_of(
    client: &Client,
    discovery: &mut Discovery,
    object: &ObjectRef,
) -> Result<Api<DynamicObject>, Error> {
    resolve(
        client,
        discovery,
        &object.api_version,
        &object.kind,
        object.namespace.as_deref(),
    )
    .await
}

/// One object, if it exists.
pub async fn get(
    client: &Client,
    discovery: &mut Discovery,
    object: &ObjectRef,
) -> Result<Option<DynamicObject>, Error> {
    let api = api_of(client, discovery, object).await?;
    Ok(api.get_opt(&object.name).await?)
}

/// Deletes one object; one that is already gone is fine. Dependents go
/// too, in the background (a Job's pods would otherwise be orphaned).
pub async fn delete(
    client: &Client,
    discovery: &mut Discovery,
    object: &ObjectRef,
) -> Result<(), Error> {
    let api = api_of(client, discovery, object).await?;
    match api.delete(&object.name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
