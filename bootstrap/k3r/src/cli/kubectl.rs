use std::os::unix::process::CommandExt;

use clap::Args;

#[derive(Args, Debug)]
pub struct KubectlArgs {
    /// Arguments for kubectl
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Replaces this process with `k3r-kube kubectl`, using the admin
/// kubeconfig when KUBECONFIG is unset.
pub fn run(args: KubectlArgs) -> anyhow::Result<()> {
    let kube = super::host::tool_programs()?.kube();
    let mut command = std::process::Command::new(&kube);
    command.arg("kubectl").args(&args.args).env(
        k3r_version::KUBE_BUILD_METADATA_ENV,
        k3r_version::kube_build_metadata(),
    );
    if std::env::var_os("KUBECONFIG").is_none() {
        command.env("KUBECONFIG", "/etc/k3r/k3r.yaml");
    }
    let err = command.exec();
    anyhow::bail!("running {}: {err}", kube.display())
}
