//! `k3r check-config`: the kernel and cgroup check k3s users know
//! (`k3s check-config`), from [`k3r_check_config`].

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct CheckConfigArgs {
    /// Kernel config to read (default: /proc/config.gz, else /boot/config-<release>)
    #[arg(long)]
    kernel_config: Option<PathBuf>,
}

pub fn run(args: CheckConfigArgs) -> anyhow::Result<()> {
    let candidates = k3r_check_config::kernel_config_candidates(args.kernel_config);
    let (path, kernel) = k3r_check_config::find_kernel_config(&candidates)?;
    println!("info: reading kernel config from {} ...\n", path.display());
    let report = k3r_check_config::check(&kernel, &k3r_check_config::Host::read());
    print!("{}", report.text);
    if !report.missing.is_empty() {
        anyhow::bail!(k3r_check_config::lacking(&report.missing));
    }
    Ok(())
}
