//! The add-ons k3r packages: manifests written as minijinja templates,
//! embedded in the binary, filled with the cluster's values and written to
//! the auto-deploy directory at every server start (as k3s does, so user
//! edits to them are lost; `--disable NAME` removes one instead).

pub mod charts;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use minijinja::Environment;
use serde::Serialize;

/// The CoreDNS release the manifest refers to by default.
pub const COREDNS_VERSION: &str = "1.15.0";

/// Packaged add-ons: (name, template). The name is the manifest's file
/// stem, so it is the Addon name and what `--disable` matches.
const TEMPLATES: &[(&str, &str)] = &[
    ("coredns", include_str!("../templates/coredns.yaml.j2")),
    (
        "rolebindings",
        include_str!("../templates/rolebindings.yaml.j2"),
    ),
    ("traefik", include_str!("../templates/traefik.yaml.j2")),
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rendering add-on {name}: {source}")]
    Render {
        name: String,
        source: minijinja::Error,
    },
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The cluster values the templates are filled with.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterValues {
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
    /// Registry for the add-ons' images (`--system-default-registry`).
    pub registry: String,
    /// `K3R_TRIM_START_PAGES_AFTER` of the add-ons k3r builds (CoreDNS).
    pub trim_start_pages_after: String,
}

impl ClusterValues {
    pub fn coredns_image(&self) -> String {
        format!("{}/coredns/coredns:{COREDNS_VERSION}", self.registry)
    }
}

/// Every packaged add-on's name.
pub fn names() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|(name, _)| *name)
}

/// Renders every packaged add-on: (file name, contents).
pub fn render(values: &ClusterValues) -> Result<Vec<(String, String)>, Error> {
    let mut env = Environment::new();
    // A misspelt value must fail the render, not become an empty string.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let traefik = charts::archive(charts::TRAEFIK).map_err(|e| Error::Render {
        name: "traefik".into(),
        source: minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()),
    })?;
    let context = minijinja::context! {
        cluster_dns => values.cluster_dns.to_string(),
        cluster_domain => values.cluster_domain,
        coredns_image => values.coredns_image(),
        registry => values.registry,
        trim_start_pages_after => values.trim_start_pages_after,
        traefik_chart => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(traefik)
        },
    };
    TEMPLATES
        .iter()
        .map(|(name, template)| {
            let rendered = env
                .render_str(template, &context)
                .map_err(|source| Error::Render {
                    name: (*name).to_string(),
                    source,
                })?;
            Ok((format!("{name}.yaml"), rendered))
        })
        .collect()
}

/// What the k3r-operators Deployment is filled with.
#[derive(Clone, Debug, Serialize)]
pub struct OperatorsValues {
    /// The servers' version of the operators image (the Deployment).
    pub image: String,
    /// The image each node tags from its own k3r (the per-node DaemonSets:
    /// node operators and servicelb).
    pub node_image: String,
    pub manifests_dir: String,
    pub node_name: String,
    /// `--disable`, comma-separated.
    pub disable: String,
    /// `--servicelb-namespace`.
    pub servicelb_namespace: String,
    /// `--disable-network-policy`.
    pub disable_network_policy: bool,
    /// Port of the probes and metrics (the Deployment's pods).
    pub port: u16,
    /// Port of the probes and metrics (the DaemonSet's pods).
    pub node_port: u16,
    /// `K3R_TRIM_START_PAGES_AFTER` of the operators' processes.
    pub trim_start_pages_after: String,
}

/// The k3r-operators Deployment, the k3r-node-operators DaemonSet and
/// their ServiceAccounts and RBAC, which the server applies itself at
/// start.
pub fn render_operators(values: &OperatorsValues) -> Result<String, Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.render_str(
        include_str!("../templates/k3r-operators.yaml.j2"),
        minijinja::context! {
            image => values.image,
            node_image => values.node_image,
            manifests_dir => values.manifests_dir,
            node_name => values.node_name,
            disable => values.disable,
            servicelb_namespace => values.servicelb_namespace,
            disable_network_policy => values.disable_network_policy,
            port => values.port,
            node_port => values.node_port,
            trim_start_pages_after => values.trim_start_pages_after,
        },
    )
    .map_err(|source| Error::Render {
        name: "k3r-operators".into(),
        source,
    })
}

/// Writes the packaged add-ons that are not disabled into `dir`, each
/// atomically (the deploy operator may read the directory at any time), and
/// leaves unchanged files untouched. Returns the names written or kept.
pub fn write(
    dir: &Path,
    values: &ClusterValues,
    disabled: &[String],
) -> Result<Vec<String>, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for (file, contents) in render(values)? {
        let name = file.trim_end_matches(".yaml");
        if disabled.iter().any(|d| d == name) {
            continue;
        }
        let path = dir.join(&file);
        if std::fs::read(&path).ok().as_deref() != Some(contents.as_bytes()) {
            let temp = dir.join(format!(".{file}.tmp"));
            std::fs::write(&temp, &contents).map_err(io(&temp))?;
            std::fs::rename(&temp, &path).map_err(io(&path))?;
        }
        written.push(name.to_string());
    }
    Ok(written)
}
