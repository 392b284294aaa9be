//! OCI image tarballs built by k3r itself, readable by
//! `ctr images import`. Builds are deterministic: the same files give the
//! same digests, so re-importing at every start is a no-op.

mod oci;
mod own;

pub use oci::{ImageSpec, Layer, write_image};
pub use own::{BINARY_PATH, own_image, shared_libraries};

/// The static pause binary, compiled from pause/pause.c.
pub const PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// Reference of the operators image built from the running k3r.
pub fn operators_image() -> String {
    format!("docker.io/k3r/k3r-operators:{}", k3r_version::tag())
}

/// The operators image each node tags from its own k3r: what the per-node
/// DaemonSets (node operators, servicelb) run, so that a node runs its own
/// version's code however far the servers' version is ahead during a
/// rolling upgrade (the servers' version may not be on the node yet).
pub const NODE_OPERATORS_IMAGE: &str = "docker.io/k3r/k3r-operators:node";

/// Reference of k3r's pause image; containerd's sandbox_image points here.
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("image: {0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The pause image: just /pause, run as 65535.
pub fn pause_image() -> ImageSpec {
    ImageSpec {
        reference: PAUSE_IMAGE.to_string(),
        layers: vec![Layer {
            files: vec![oci::File::new("pause", PAUSE_BINARY.to_vec(), 0o755)],
        }],
        entrypoint: vec!["/pause".into()],
        cmd: Vec::new(),
        env: Vec::new(),
        user: "65535:65535".into(),
        working_dir: String::new(),
    }
}

pub use oci::File;
