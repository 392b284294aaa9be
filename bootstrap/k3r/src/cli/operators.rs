use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use k3r_operators::RunConfig;

#[derive(Args, Debug)]
pub struct OperatorsArgs {
    /// The auto-deploy manifests directory (mounted from the server)
    #[arg(long)]
    manifests_dir: PathBuf,
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
}

/// Runs the in-cluster operators (inside the k3r-operators pod).
pub fn run(args: OperatorsArgs) -> anyhow::Result<()> {
    let identity = match args.identity {
        Some(identity) => identity,
        None => super::host::hostname()?,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async move {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the Kubernetes API")?;
        tracing::info!(manifests = %args.manifests_dir.display(), %identity, "operators starting");
        let config = RunConfig {
            manifests_dir: args.manifests_dir,
            disabled: args.disable,
            identity,
            namespace: args.namespace,
            listen: args.listen,
        };
        k3r_operators::run(client, config, super::wait_for_signal())
            .await
            .context("operators")?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}
