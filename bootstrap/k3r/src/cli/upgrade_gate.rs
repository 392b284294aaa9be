//! `k3r upgrade-gate --node N --job J`: the init container after a Plan's
//! prepare step (`k3r_upgrade_controller::gate`). It waits until the Plan
//! controller marks the node cordoned and drained for this Job, so the
//! upgrade container starts only then — SUC's order, without kubectl.

use std::time::Duration;

use clap::Args;
use k3r_upgrade_controller::gate;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;

#[derive(Args, Debug)]
pub struct UpgradeGateArgs {
    /// The node the Job runs on
    #[arg(long)]
    node: String,
    /// The Job's name, which the controller writes on the node once it is drained
    #[arg(long)]
    job: String,
}

pub fn run(args: UpgradeGateArgs) -> anyhow::Result<()> {
    super::in_cluster::with_client(|client| async move {
        let nodes: Api<Node> = Api::all(client);
        loop {
            match nodes.get_opt(&args.node).await {
                Ok(Some(node)) if gate::open(&node, &args.job) => {
                    println!("node {} is drained for {}", args.node, args.job);
                    return Ok(());
                }
                Ok(Some(_)) => {
                    tracing::info!(node = %args.node, "waiting for the cordon and drain")
                }
                Ok(None) => anyhow::bail!("node {} does not exist", args.node),
                Err(kube::Error::Api(e)) if e.code == 403 => {
                    anyhow::bail!(
                        "the Job's service account may not read node {}: {}",
                        args.node,
                        e.message
                    )
                }
                // The API may be away while a server switches.
                Err(err) => tracing::info!(error = %err, "waiting for the API"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_gate_image_is_the_node_operators_image() {
        assert_eq!(
            k3r_upgrade_controller::gate::IMAGE,
            k3r_images::NODE_OPERATORS_IMAGE
        );
    }
}
