//! The service load balancer, as k3s's ServiceLB does it, so that k3s
//! users' Services and node labels work unchanged:
//!
//! - [`controller`]: for every LoadBalancer Service without a
//!   `loadBalancerClass`, a `svclb-<name>-<uid8>` DaemonSet whose pods
//!   bind each Service port as a hostPort and forward it to the Service
//!   (`k3r svclb`); the Service's `status.loadBalancer.ingress` lists the
//!   nodes whose svclb pod is Ready. Allow-list mode (`enablelb` on any
//!   node), pools (`lbpool`), the priority-class annotation and k3s's
//!   Events are honoured.
//! - [`gc`]: deletes a svclb DaemonSet once its Service is gone, is no
//!   longer a LoadBalancer, or was replaced (new UID) — no finalizer on
//!   users' Services, so nothing hangs if the operators are down.
//! - [`remove_all`]: with `--disable servicelb`, everything the
//!   controller made is removed.

pub mod controller;
pub mod daemonset;
pub mod gc;
pub mod status;

use std::time::Duration;

use k3r_reconciler::Runtime;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams};

pub use controller::NAME;
pub use gc::NAME as GC_NAME;

#[derive(Debug, thiserror::Error)]
#[error("{action}: {source}")]
pub struct Error {
    action: String,
    #[source]
    source: kube::Error,
}

impl Error {
    fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error { action, source }
    }
}

/// Where svclb DaemonSets live and what they run.
#[derive(Clone, Debug)]
pub struct Config {
    /// `--servicelb-namespace` (kube-system by default).
    pub namespace: String,
    /// k3r's own image, whose binary runs `k3r svclb`.
    pub image: String,
}

/// Whether this controller serves `service`: a LoadBalancer with no
/// `loadBalancerClass` (a class names another implementation).
pub fn is_ours(service: &Service) -> bool {
    service.spec.as_ref().is_some_and(|s| {
        s.type_.as_deref() == Some("LoadBalancer") && s.load_balancer_class.is_none()
    })
}

/// `--disable servicelb`: removes every svclb DaemonSet (their pods go
/// with them) and the svclb ServiceAccount, retrying until done, then
/// idles.
pub async fn remove_all(runtime: Runtime, namespace: String) {
    let daemonsets: Api<DaemonSet> = Api::namespaced(runtime.client.clone(), &namespace);
    let accounts: Api<ServiceAccount> = Api::namespaced(runtime.client.clone(), &namespace);
    let mut delay = Duration::from_secs(1);
    loop {
        let removed = async {
            let list = ListParams::default().labels(daemonset::NODE_SELECTOR_LABEL);
            let gone = daemonsets.list_metadata(&list).await?.items.len();
            if gone > 0 {
                daemonsets
                    .delete_collection(&DeleteParams::background(), &list)
                    .await?;
            }
            match accounts
                .delete(daemonset::SERVICE_ACCOUNT, &DeleteParams::default())
                .await
            {
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                other => {
                    other?;
                }
            }
            Ok::<usize, kube::Error>(gone)
        }
        .await;
        match removed {
            Ok(gone) => {
                tracing::info!(daemonsets = gone, %namespace, "servicelb disabled: its DaemonSets removed");
                break;
            }
            Err(err) => {
                tracing::warn!(%err, retry_in = ?delay, "servicelb disabled: cannot remove its DaemonSets yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(60));
            }
        }
    }
    std::future::pending::<()>().await;
}
