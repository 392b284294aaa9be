//! The bridge CNI config a node's pods get once it has its pod CIDR.

use std::path::Path;

use crate::{Error, NodePaths};

/// The bridge CNI config for this node's pod CIDR.
/// `ipMasq` is off: the node network controller masquerades only what
/// leaves the cluster CIDR, so pods see each other's real addresses.
pub fn config(pod_cidr: &str, cluster_cidr: &str, state_dir: &Path, mtu: u32) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "cbr0",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "isDefaultGateway": true,
                "hairpinMode": true,
                "forceAddress": true,
                "ipMasq": false,
                "mtu": mtu,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": pod_cidr }]],
                    "dataDir": state_dir.display().to_string()
                }
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
            { "type": "bandwidth", "capabilities": { "bandwidth": true } }
        ],
        "k3r-cluster-cidr": cluster_cidr
    })
    .to_string()
}

pub fn write(paths: &NodePaths, pod_cidr: &str, cluster_cidr: &str, mtu: u32) -> Result<(), Error> {
    let dir = paths.cni_conf_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io(dir.clone(), e))?;
    let path = dir.join("10-k3r.conflist");
    let contents = config(pod_cidr, cluster_cidr, &paths.cni_state_dir, mtu);
    if std::fs::read_to_string(&path).ok().as_deref() != Some(contents.as_str()) {
        std::fs::write(&path, contents).map_err(|e| Error::Io(path.clone(), e))?;
    }
    Ok(())
}
