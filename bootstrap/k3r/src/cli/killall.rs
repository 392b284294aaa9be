use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct KillallArgs {
    /// Data dir of the k3r to clean up after
    #[arg(
        long,
        short = 'd',
        env = "K3R_DATA_DIR",
        default_value = "/var/lib/k3r"
    )]
    data_dir: PathBuf,
}

/// Like k3s-killall.sh: stops k3r and everything it started, unmounts,
/// and removes its network devices and iptables chains. Data is kept.
pub fn run(args: KillallArgs) -> anyhow::Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        anyhow::bail!("k3r killall must run as root");
    }
    k3r_server::cleanup::killall(&args.data_dir);
    Ok(())
}
