//! The Secrets and ConfigMap a HelmChart names for fetching its chart:
//! `authSecret` (username/password), `dockerRegistrySecret`
//! (`.dockerconfigjson`) and `repoCAConfigMap` (CA certificates).

use k3r_crds::helmchart::HelmChartSpec;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::Api;

use crate::Error;

/// Basic-auth credentials from `authSecret`.
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// What the chart's Secrets and ConfigMaps contribute to fetching it.
#[derive(Default)]
pub struct Access {
    /// `authSecret`
    pub basic: Option<Credentials>,
    /// `dockerRegistrySecret`'s `.dockerconfigjson`
    pub registry_config: Option<Vec<u8>>,
    /// `repoCAConfigMap`'s certificates
    pub extra_ca: Vec<String>,
}

pub async fn read(client: &Client, namespace: &str, spec: &HelmChartSpec) -> Result<Access, Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut access = Access::default();
    if let Some(reference) = &spec.auth_secret {
        let secret = get_secret(&secrets, "spec.authSecret", &reference.name).await?;
        access.basic = Some(Credentials {
            username: field(&secret, "username").unwrap_or_default(),
            password: field(&secret, "password").unwrap_or_default(),
        });
    }
    if let Some(reference) = &spec.docker_registry_secret {
        let secret = get_secret(&secrets, "spec.dockerRegistrySecret", &reference.name).await?;
        let config = secret
            .data
            .as_ref()
            .and_then(|d| d.get(".dockerconfigjson"))
            .ok_or_else(|| {
                Error::Other(format!(
                    "spec.dockerRegistrySecret {}: no .dockerconfigjson key",
                    reference.name
                ))
            })?;
        access.registry_config = Some(config.0.clone());
    }
    if let Some(reference) = &spec.repo_ca_config_map {
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let map = maps
            .get(&reference.name)
            .await
            .map_err(|e| Error::Other(format!("spec.repoCAConfigMap {}: {e}", reference.name)))?;
        access.extra_ca = map.data.unwrap_or_default().into_values().collect();
    }
    Ok(access)
}

async fn get_secret(secrets: &Api<Secret>, field_name: &str, name: &str) -> Result<Secret, Error> {
    secrets
        .get(name)
        .await
        .map_err(|e| Error::Other(format!("{field_name} {name}: {e}")))
}

fn field(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}
