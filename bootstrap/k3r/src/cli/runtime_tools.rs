//! `k3r crictl` and `k3r ctr` (also run as `crictl` and `ctr` through
//! links to k3r): the bundled tools, pointed at the node's containerd
//! without flags, as k3s's are.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct ToolArgs {
    /// Arguments for the tool
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// The node's containerd socket, from the scope its start recorded.
fn socket(data_dir: &std::path::Path) -> PathBuf {
    k3r_node::scope::read(&data_dir.join("agent"))
        .map(|(paths, _)| paths.containerd_socket())
        .unwrap_or_else(|| PathBuf::from("/run/k3r/containerd/containerd.sock"))
}

/// Replaces this process with the bundled `crictl`, configured by the
/// node's crictl.yaml (written at node start) unless the caller chose.
pub fn crictl(args: ToolArgs) -> anyhow::Result<()> {
    let data_dir = super::host::tool_data_dir()?;
    let program = super::host::tool_programs()?.path("crictl");
    let mut command = std::process::Command::new(&program);
    command.args(&args.args);
    let config = k3r_node::crictl_config(&data_dir.join("agent"));
    if std::env::var_os("CRI_CONFIG_FILE").is_some()
        || std::env::var_os("CONTAINER_RUNTIME_ENDPOINT").is_some()
    {
        // The caller chose.
    } else if config.is_file() {
        command.env("CRI_CONFIG_FILE", config);
    } else {
        // The node has not started yet: its default socket.
        let endpoint = format!("unix://{}", socket(&data_dir).display());
        command
            .env("CONTAINER_RUNTIME_ENDPOINT", &endpoint)
            .env("IMAGE_SERVICE_ENDPOINT", &endpoint);
    }
    let err = command.exec();
    anyhow::bail!("running {}: {err}", program.display())
}

/// Replaces this process with the bundled `ctr`, talking to the node's
/// containerd in Kubernetes' namespace unless the caller chose.
pub fn ctr(args: ToolArgs) -> anyhow::Result<()> {
    let data_dir = super::host::tool_data_dir()?;
    let program = super::host::tool_programs()?.path("ctr");
    let mut command = std::process::Command::new(&program);
    command.args(&args.args);
    if std::env::var_os("CONTAINERD_ADDRESS").is_none() {
        command.env("CONTAINERD_ADDRESS", socket(&data_dir));
    }
    if std::env::var_os("CONTAINERD_NAMESPACE").is_none() {
        command.env("CONTAINERD_NAMESPACE", "k8s.io");
    }
    let err = command.exec();
    anyhow::bail!("running {}: {err}", program.display())
}
