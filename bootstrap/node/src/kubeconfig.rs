//! The one place a kube client is made from a kubeconfig file (the
//! server's and agents' component identities, `k3r token`).

use std::path::Path;

use crate::Error;

pub async fn client(kubeconfig: &Path) -> Result<kube::Client, Error> {
    let problem =
        |e: &dyn std::fmt::Display| Error::Kubeconfig(format!("{}: {e}", kubeconfig.display()));
    let config = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| problem(&e))?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .map_err(|e| problem(&e))?;
    kube::Client::try_from(config).map_err(|e| problem(&e))
}
