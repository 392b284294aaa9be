use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use k3r_operators::{Mode, RunConfig};

#[derive(Args, Debug)]
pub struct OperatorsArgs {
    /// Run the per-node controllers for this node (the DaemonSet mode)
    /// instead of the leader-elected cluster controllers
    #[arg(long, env = "NODE_NAME", conflicts_with_all = ["manifests_dir", "disable"])]
    node: Option<String>,
    /// The auto-deploy manifests directory (mounted from the server)
    #[arg(long, required_unless_present = "node")]
    manifests_dir: Option<PathBuf>,
    /// Packaged components to remove (as `k3r server --disable`)
    #[arg(long, value_delimiter = ',')]
    disable: Vec<String>,
    /// Address of /healthz, /readyz and /metrics
    #[arg(long, default_value = "0.0.0.0:10270")]
    listen: SocketAddr,
    /// This replica's identity in the leader lease (default: the hostname)
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Namespace of the leader lease
    #[arg(long, env = "POD_NAMESPACE", default_value = "kube-system")]
    namespace: String,
    /// Namespace of the service load balancer's DaemonSets
    #[arg(long, default_value = "kube-system")]
    servicelb_namespace: String,
    /// Do not enforce NetworkPolicies on this node, and remove the rules
    /// that enforced them (node mode; `k3r server --disable-network-policy`)
    #[arg(long, requires = "node")]
    disable_network_policy: bool,
    /// Image the svclb pods run `k3r svclb` from (each node's own k3r)
    #[arg(long, default_value = k3r_images::NODE_OPERATORS_IMAGE)]
    svclb_image: String,
}

/// Runs the in-cluster controllers (inside the k3r-operators pods).
pub fn run(args: OperatorsArgs) -> anyhow::Result<()> {
    let identity = match args.identity {
        Some(identity) => identity,
        None => super::host::hostname()?,
    };
    let mode = match (args.node, args.manifests_dir) {
        (Some(node_name), _) => Mode::Node {
            node_name,
            network_policy: !args.disable_network_policy,
        },
        (None, Some(manifests_dir)) => Mode::Cluster {
            manifests_dir,
            disabled: args.disable,
            identity: identity.clone(),
            namespace: args.namespace,
            servicelb: k3r_servicelb::Config {
                namespace: args.servicelb_namespace,
                image: args.svclb_image,
            },
        },
        (None, None) => anyhow::bail!("--manifests-dir or --node is required"),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async move {
        let client = k3r_kube_client::infer()
            .await
            .context("connecting to the Kubernetes API")?;
        match &mode {
            Mode::Cluster { manifests_dir, .. } => {
                tracing::info!(manifests = %manifests_dir.display(), %identity, "operators starting")
            }
            Mode::Node { node_name, .. } => {
                tracing::info!(node = %node_name, %identity, "node operators starting")
            }
        }
        let config = RunConfig {
            mode,
            listen: args.listen,
            instance: Some(identity),
        };
        k3r_operators::run(client, config, super::wait_for_signal())
            .await
            .context("operators")?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}
