//! The operators image, built from the running k3r binary (only when the
//! binary changed) and imported on every node, so the in-cluster
//! controllers run the code of the node that imported them: by version
//! (`k3r-operators:v0.2.0`, the servers' Deployment) and as the node's own
//! (`k3r-operators:node`, the per-node DaemonSets).

use std::path::Path;
use std::time::Instant;

use crate::{Error, NodePaths};

pub async fn import_operators_image(paths: &NodePaths) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(|e| Error::Host(format!("locating k3r: {e}")))?;
    let own = paths.own_images();
    let tarball = own.join("k3r-operators.tar");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = matches!((modified(&tarball), modified(&exe)), (Some(t), Some(e)) if t > e);
    if !fresh {
        let started = Instant::now();
        let (work, out) = (own.join("build"), tarball.clone());
        tokio::task::spawn_blocking(move || -> Result<(), Error> {
            let spec = k3r_images::own_image(&exe, &k3r_images::operators_image(), &work)
                .map_err(|e| Error::Host(e.to_string()))?;
            k3r_images::write_image(&spec, &out).map_err(|e| Error::Host(e.to_string()))?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Host(e.to_string()))??;
        tracing::info!(
            seconds = started.elapsed().as_secs_f32(),
            "operators image built"
        );
    }
    let started = Instant::now();
    let refs = crate::containerd::import_image(paths, &tarball).await?;
    // The per-node pods run the node's own k3r, whatever the servers run.
    crate::containerd::tag_image(
        paths,
        &k3r_images::operators_image(),
        k3r_images::NODE_OPERATORS_IMAGE,
    )
    .await?;
    tracing::info!(images = ?refs, seconds = started.elapsed().as_secs_f32(), "operators image imported");
    Ok(())
}
