use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use k3r_operators::deploy::{self, DeployConfig};

#[derive(Args, Debug)]
pub struct OperatorsArgs {
    /// The auto-deploy manifests directory (mounted from the server)
    #[arg(long)]
    manifests_dir: PathBuf,
    /// Packaged components to remove (as `k3r server --disable`)
    #[arg(long, value_delimiter = ',')]
    disable: Vec<String>,
}

/// Runs the in-cluster operators (inside the k3r-operators pod).
pub fn run(args: OperatorsArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async move {
        let client = kube::Client::try_default().await.context("connecting to the Kubernetes API")?;
        tracing::info!(manifests = %args.manifests_dir.display(), "deploy operator starting");
        tokio::select! {
            result = deploy::run(client, DeployConfig { manifests_dir: args.manifests_dir, disabled: args.disable }) => {
                result.context("deploy operator")?;
            }
            _ = super::wait_for_signal() => tracing::info!("shutting down"),
        }
        anyhow::Ok(())
    })
}
