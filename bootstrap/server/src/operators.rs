//! The k3r-operators Deployment, the k3r-node-operators DaemonSet and
//! their RBAC (rendered from the addons crate), applied by the bootstrap
//! with server-side apply. The deploy controller reads the server's manifests directory through a read-only
//! hostPath, so it runs on this node.

use crate::api::ApiClient;
use crate::layout::Layout;
use crate::{Error, ServerConfig};

/// Port of the operators' probes and metrics (inside the pod).
pub const PORT: u16 = 10270;
/// Same, for the per-node operators (apart, should they need the host's
/// network one day).
pub const NODE_PORT: u16 = 10271;

/// Objects earlier versions applied that no longer exist: the single
/// cluster-admin binding was split into per-operator roles.
const RETIRED: &[&str] =
    &["/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/k3r-operators-deploy"];

pub async fn apply(api: &ApiClient, config: &ServerConfig, layout: &Layout) -> Result<(), Error> {
    let text = k3r_addons::render_operators(&k3r_addons::OperatorsValues {
        image: k3r_images::operators_image(),
        manifests_dir: layout.manifests().display().to_string(),
        node_name: config.node_name.clone(),
        disable: config.disable.join(","),
        port: PORT,
        node_port: NODE_PORT,
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
    Ok(())
}
