//! The commands upgrade Jobs run (`upgrade-node`, `prepare`,
//! `upgrade-gate`) talk to the API with the pod's credentials (or a
//! kubeconfig), from a synchronous CLI.

use std::future::Future;

use anyhow::Context;

/// Runs `work` on a fresh async runtime with a client to the cluster.
pub fn with_client<T, Work>(work: impl FnOnce(kube::Client) -> Work) -> anyhow::Result<T>
where
    Work: Future<Output = anyhow::Result<T>>,
{
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async {
        let client = k3r_kube_client::infer()
            .await
            .context("connecting to the Kubernetes API")?;
        work(client).await
    })
}
