//! Which resource serves a kind, and whether it is namespaced: each
//! group/version's resource list is asked of the API once (one request,
//! not a full discovery) and cached. A kind the cluster does not serve is
//! asked again next time, as a CRD may have appeared since.

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::Client;
use kube::discovery::ApiResource;
use tokio::sync::RwLock;

use crate::Error;

/// kind -> (resource, namespaced) of one group/version.
type Resources = HashMap<String, (ApiResource, bool)>;

pub struct Kinds {
    client: Client,
    cache: RwLock<HashMap<String, Resources>>,
}

impl Kinds {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: RwLock::default(),
        }
    }

    /// The resource of a kind and whether it is namespaced.
    pub async fn resolve(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, bool), Error> {
        let unserved = || Error::Unserved {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        };
        if let Some(found) = self
            .cache
            .read()
            .await
            .get(api_version)
            .and_then(|kinds| kinds.get(kind))
        {
            return Ok(found.clone());
        }
        let list = match self.list(api_version).await {
            Ok(list) => list,
            Err(kube::Error::Api(e)) if e.code == 404 => return Err(unserved()),
            Err(source) => {
                return Err(Error::Discovery {
                    api_version: api_version.to_string(),
                    kind: kind.to_string(),
                    source,
                });
            }
        };
        let resources = resources(api_version, &list);
        let found = resources.get(kind).cloned();
        self.cache
            .write()
            .await
            .insert(api_version.to_string(), resources);
        found.ok_or_else(unserved)
    }

    async fn list(&self, api_version: &str) -> Result<APIResourceList, kube::Error> {
        match api_version.split_once('/') {
            Some(_) => self.client.list_api_group_resources(api_version).await,
            None => self.client.list_core_api_resources(api_version).await,
        }
    }
}

fn resources(api_version: &str, list: &APIResourceList) -> Resources {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    list.resources
        .iter()
        // Subresources (pods/log) are not kinds of their own.
        .filter(|r| !r.name.contains('/'))
        .map(|r| {
            let resource = ApiResource {
                group: group.to_string(),
                version: version.to_string(),
                api_version: api_version.to_string(),
                kind: r.kind.clone(),
                plural: r.name.clone(),
            };
            (r.kind.clone(), (resource, r.namespaced))
        })
        .collect()
}
