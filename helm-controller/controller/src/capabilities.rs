//! `.Capabilities` and `lookup` for templates, from the live cluster.

use k3r_gotemplate::Value;
use k3r_helm_render::engine::{Capabilities, Lookup};
use kube::Client;
use kube::api::{Api, ListParams};
use kube::discovery::Discovery;
use serde_json::json;

use crate::Error;

/// `.Capabilities` from the live cluster.
pub async fn capabilities(client: &Client) -> Result<Capabilities, Error> {
    let version = client.apiserver_version().await?;
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut api_versions = Vec::new();
    for group in discovery.groups() {
        for version in group.versions() {
            let group_version = if group.name().is_empty() {
                version.to_string()
            } else {
                format!("{}/{version}", group.name())
            };
            for (resource, _) in group.versioned_resources(version) {
                api_versions.push(format!("{group_version}/{}", resource.kind));
            }
            api_versions.push(group_version);
        }
    }
    Ok(Capabilities {
        kube_version: version.git_version,
        api_versions,
        helm_version: "v4.2".into(),
        lookup: Some(lookup(client.clone())),
    })
}

/// `lookup` against the live API. Templates run on a blocking thread
/// (see `install`), so each lookup blocks on the request.
fn lookup(client: Client) -> Lookup {
    let handle = tokio::runtime::Handle::current();
    Lookup(std::sync::Arc::new(
        move |api_version, kind, namespace, name| {
            handle.block_on(lookup_object(&client, api_version, kind, namespace, name))
        },
    ))
}

async fn lookup_object(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Value, String> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("lookup {api_version} {kind}: {e}"))?;
    let api: Api<kube::api::DynamicObject> =
        if matches!(caps.scope, kube::discovery::Scope::Namespaced) && !namespace.is_empty() {
            Api::namespaced_with(client.clone(), namespace, &resource)
        } else {
            Api::all_with(client.clone(), &resource)
        };
    let json = if name.is_empty() {
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("lookup {api_version} {kind}: {e}"))?;
        json!({"items": list.items})
    } else {
        match api.get_opt(name).await {
            Ok(Some(object)) => serde_json::to_value(object).map_err(|e| e.to_string())?,
            Ok(None) => json!({}),
            Err(e) => return Err(format!("lookup {api_version} {kind} {name}: {e}")),
        }
    };
    Ok(k3r_helm_render::schema::from_serde(&json))
}
