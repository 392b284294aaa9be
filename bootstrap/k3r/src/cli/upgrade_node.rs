//! `k3r upgrade-node`: what the upgrade image runs in a Plan's Job.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use k3r_node_upgrade::job::{self, JobConfig};
use k3r_node_upgrade::policy;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

const CONTROL_PLANE: &str = "node-role.kubernetes.io/control-plane=true";
const VERSION_LABEL: &str = "k3r.io/version";

#[derive(Args, Debug)]
pub struct UpgradeNodeArgs {
    /// The node to upgrade (the Job's node)
    #[arg(long, env = "SYSTEM_UPGRADE_NODE_NAME")]
    node: String,
    /// Where the host's root is mounted
    #[arg(long, default_value = "/host")]
    host_root: PathBuf,
    /// The binaries to install: k3r, k3r-kube and their version
    #[arg(long, default_value = "/payload")]
    payload: PathBuf,
    /// How long the new k3r has to be ready before it is rolled back
    #[arg(long, env = "K3R_UPGRADE_HEALTH_DEADLINE", default_value = "3m", value_parser = humantime::parse_duration)]
    deadline: Duration,
    /// How long an agent waits for its servers to run the new version
    /// (as k3s-upgrade's prepare step waits for the server plan)
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    wait_for_servers: Duration,
}

/// Where the kubelet reads a container's termination message: the Plan
/// shows it as the reason its Job failed.
const TERMINATION_LOG: &str = "/dev/termination-log";

pub fn run(args: UpgradeNodeArgs) -> anyhow::Result<()> {
    let result = upgrade(args);
    if let Err(err) = &result
        && std::path::Path::new(TERMINATION_LOG).exists()
    {
        let _ = std::fs::write(TERMINATION_LOG, format!("{err:#}"));
    }
    result
}

fn upgrade(args: UpgradeNodeArgs) -> anyhow::Result<()> {
    let mut config = JobConfig {
        node: args.node,
        host_root: args.host_root,
        payload: args.payload,
        deadline: args.deadline,
        servers: Vec::new(),
    };
    if job::role(&config)? == "agent" {
        let target = config.target_version()?;
        config.servers = servers_at(&target, args.wait_for_servers)?;
    }
    let summary = job::run(&config)?;
    println!("{summary}");
    Ok(())
}

/// The servers' k3r versions, once none is older than `target` or when
/// `wait` is over (the policy then refuses).
fn servers_at(target: &str, wait: Duration) -> anyhow::Result<Vec<String>> {
    super::in_cluster::with_client(|client| async move {
        let nodes: Api<Node> = Api::all(client);
        let started = Instant::now();
        loop {
            let servers: Vec<String> = nodes
                .list(&ListParams::default().labels(CONTROL_PLANE))
                .await
                .context("listing the servers")?
                .items
                .iter()
                .filter_map(|n| n.metadata.labels.as_ref()?.get(VERSION_LABEL).cloned())
                .collect();
            let ahead = policy::decide(target, target, true, &servers).is_err();
            if !ahead || started.elapsed() >= wait {
                return Ok(servers);
            }
            tracing::info!(?servers, %target, "waiting for the servers to run the new version");
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    })
}
