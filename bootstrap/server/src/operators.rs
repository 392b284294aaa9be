//! The k3r-operators Deployment, the k3r-node-operators DaemonSet and
//! their RBAC (rendered from the addons crate), applied by the bootstrap
//! with server-side apply. The deploy controller reads the server's manifests directory through a read-only
//! hostPath, so it runs on this node.

use crate::api::ApiClient;
use crate::layout::Layout;
use crate::{Error, ServerConfig};

/// Port of the operators' probes and metrics (inside the pod).
pub const PORT: u16 = 10270;
/// Same, for the per-node operators, on the node's own addresses (they run
/// in the host's network namespace to program its firewall).
pub const NODE_PORT: u16 = 10271;

/// Objects earlier versions applied that no longer exist: the single
/// cluster-admin binding was split into per-operator roles.
const RETIRED: &[&str] =
    &["/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/k3r-operators-deploy"];

pub async fn apply(api: &ApiClient, config: &ServerConfig, layout: &Layout) -> Result<(), Error> {
    let text = k3r_addons::render_operators(&k3r_addons::OperatorsValues {
        image: k3r_images::operators_image(),
        node_image: k3r_images::NODE_OPERATORS_IMAGE.into(),
        manifests_dir: layout.manifests().display().to_string(),
        node_name: config.node_name.clone(),
        disable: config.disable.join(","),
        servicelb_namespace: config.servicelb_namespace.clone(),
        disable_network_policy: config.disable_network_policy,
        port: PORT,
        node_port: NODE_PORT,
        trim_start_pages_after: k3r_starttrim::configured(),
    })
    .map_err(|e| Error::Config(e.to_string()))?;
    let objects: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
        .map_err(|e| Error::Api(format!("k3r-operators manifest: {e}")))?;
    for object in objects.iter().filter(|o| !o.is_null()) {
        api.apply(object).await?;
    }
    for path in RETIRED {
        api.delete(path).await?;
    }
    apply_controller_rbac(api, config).await
}

/// The k3r-controller identity's RBAC (every node's network controller
/// uses it), applied before the server's node starts too: on a first boot
/// the deploy controller, which applies rolebindings.yaml like any other
/// manifest, runs in a pod that waits for that node.
async fn apply_controller_rbac(api: &ApiClient, config: &ServerConfig) -> Result<(), Error> {
    if config.disable.iter().any(|d| d == "rolebindings") {
        return Ok(());
    }
    let rendered = k3r_addons::render(&crate::addons::cluster_values(config))
        .map_err(|e| Error::Config(e.to_string()))?;
    let Some((_, text)) = rendered
        .iter()
        .find(|(file, _)| file == "rolebindings.yaml")
    else {
        return Ok(());
    };
    let objects: Vec<serde_json::Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| Error::Api(format!("rolebindings manifest: {e}")))?;
    for object in objects.iter().filter(|o| !o.is_null()) {
        api.apply(object).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server applies these itself, by REST path: every kind in them
    /// must have one (a new kind otherwise stops every server start).
    #[test]
    fn every_object_of_the_operators_manifest_has_a_rest_path() {
        let text = k3r_addons::render_operators(&k3r_addons::OperatorsValues {
            image: "docker.io/k3r/k3r-operators:v0".into(),
            node_image: k3r_images::NODE_OPERATORS_IMAGE.into(),
            manifests_dir: "/var/lib/k3r/server/manifests".into(),
            node_name: "n1".into(),
            disable: String::new(),
            servicelb_namespace: "kube-system".into(),
            disable_network_policy: false,
            port: PORT,
            node_port: NODE_PORT,
            trim_start_pages_after: "60s".into(),
        })
        .expect("rendered");
        let objects: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("yaml");
        let kinds: Vec<&str> = objects
            .iter()
            .filter(|o| !o.is_null())
            .map(|o| {
                crate::api::rest_path(o).expect("a REST path");
                o["kind"].as_str().unwrap_or_default()
            })
            .collect();
        assert!(
            kinds.contains(&"Namespace") && kinds.contains(&"Deployment"),
            "{kinds:?}"
        );
    }
}
