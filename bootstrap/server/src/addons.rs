//! The packaged add-ons in the auto-deploy directory: written (rewritten)
//! at every start, and every manifest named by `--disable` removed, as k3s
//! does. Deleting what a disabled manifest applied is the deploy operator's
//! job: it deletes the objects of Addons whose name is disabled.

use crate::layout::Layout;
use crate::{Error, ServerConfig};

pub fn write(config: &ServerConfig, layout: &Layout) -> Result<(), Error> {
    let dir = layout.manifests();
    let (files, _) =
        k3r_deploy::scan(&dir, &config.disable).map_err(|e| Error::Host(e.to_string()))?;
    for file in files.iter().filter(|f| f.disabled) {
        tracing::info!(file = %file.path.display(), "removing disabled manifest");
        std::fs::remove_file(&file.path).map_err(|e| Error::Io(file.path.clone(), e))?;
    }
    let written =
        k3r_addons::write(&dir, &cluster_values(config), &config.disable).map_err(|e| match e {
            k3r_addons::Error::Io { path, source } => Error::Io(path, source),
            other => Error::Config(other.to_string()),
        })?;
    tracing::info!(addons = ?written, "packaged add-ons written");
    Ok(())
}

/// What the packaged templates are filled with.
pub(crate) fn cluster_values(config: &ServerConfig) -> k3r_addons::ClusterValues {
    k3r_addons::ClusterValues {
        cluster_dns: config.cluster_dns,
        cluster_domain: config.cluster_domain.clone(),
        registry: config.system_default_registry.clone(),
        trim_start_pages_after: k3r_starttrim::configured(),
    }
}
