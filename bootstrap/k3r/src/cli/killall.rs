use clap::Args;

#[derive(Args, Debug)]
pub struct KillallArgs {
    #[command(flatten)]
    data_dir: super::node_flags::DataDir,
}

/// Like k3s-killall.sh: stops k3r and everything it started, unmounts,
/// and removes its network devices and iptables chains. Data is kept.
pub fn run(args: KillallArgs) -> anyhow::Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        anyhow::bail!("k3r killall must run as root");
    }
    k3r_server::cleanup::killall(&args.data_dir.data_dir);
    Ok(())
}
