//! Starting a node: the one path the server's own node and every agent
//! take (as k3s's server runs its node through `agent.Run`). Host setup,
//! containerd with k3r's images, kubelet and kube-proxy (one process:
//! `shared_process`); then, once the
//! controller-manager gave the node its pod CIDR, node networking and the
//! CNI config; done when the node is Ready by this boot's kubelet.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use k3r_network::{NodeNetwork, NodeNetworkConfig};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::Api;

use crate::kubelet::Kubelet;
use crate::process::{Executor, Supervised};
use crate::shared_process::{self, Component};
use crate::{Error, NodePaths};

/// How long each wait of a node start may take.
const TIMEOUT: Duration = Duration::from_secs(180);
/// How long pods wait for kube-proxy's first sync (a user's kube-proxy
/// flags may move its metrics elsewhere: then they start after this).
const KUBE_PROXY_SYNC: Duration = Duration::from_secs(20);
/// How long the version label waits for the operators image.
const OPERATORS_IMAGE_WAIT: Duration = Duration::from_secs(60);

/// Everything a node start needs.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The node's data dir (its `agent/` is `paths.agent_dir`).
    pub data_dir: PathBuf,
    pub paths: NodePaths,
    /// The cgroup its pods live under ("/" unless nodes share a machine).
    pub cgroup_root: String,
    /// containerd, runc, the CNI plugins and the upstream multicall
    /// (kubelet, kube-proxy); `paths.bin` names the same dir.
    pub programs: crate::programs::Programs,
    /// registries.yaml, as containerd's registry hosts and credentials.
    pub registries: crate::registries::RegistrySettings,
    /// Where component logs go (`<component>.log`).
    pub logs: PathBuf,
    pub kubelet: Kubelet,
    pub kube_proxy_kubeconfig: PathBuf,
    pub kube_proxy_args: Vec<String>,
    /// The node networking controller's identity (k3r-controller).
    pub controller_kubeconfig: PathBuf,
    pub network: NodeNetworkConfig,
}

/// How a running node stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Everything goes, the node's pods and their rules included
    /// (SIGTERM, SIGINT).
    Stop,
    /// k3r's own processes go; the pods, their network and rules stay,
    /// because k3r runs again in place at once (SIGUSR2: an upgrade's
    /// switch to new binaries). containerd's shims keep the containers,
    /// and the next containerd and kubelet take them back.
    Switch,
}

/// A started (or partly started) node; [`Node::stop`] takes it down.
#[derive(Default)]
pub struct Node {
    children: Vec<Supervised>,
    network: Option<NodeNetwork>,
    background: Vec<tokio::task::JoinHandle<()>>,
    scope: Option<(NodePaths, PathBuf, String)>,
}

impl Node {
    /// Starts the node, recording what runs as it goes (so that a failed
    /// start is stopped whole). Returns the node's pod CIDR.
    pub async fn start(
        &mut self,
        spec: &NodeSpec,
        executor: &impl Executor,
        started: Instant,
    ) -> Result<String, Error> {
        let paths = &spec.paths;
        for dir in [paths.etc(), spec.logs.clone()] {
            std::fs::create_dir_all(&dir).map_err(|e| Error::Io(dir.clone(), e))?;
        }
        crate::scope::write(paths, &spec.cgroup_root)?;
        crate::cgroups::ensure_root(&spec.cgroup_root)?;
        self.scope = Some((
            paths.clone(),
            spec.data_dir.clone(),
            spec.cgroup_root.clone(),
        ));
        crate::host::prepare_host()?;

        self.children.push(crate::containerd::launch(
            executor,
            paths,
            &spec.registries,
            spec.programs.containerd(),
            spec.logs.join("containerd.log"),
        )?);
        crate::containerd::ready(paths).await?;
        tracing::info!(
            seconds = started.elapsed().as_secs_f32(),
            "containerd ready, images imported"
        );
        // Not needed for the node to become Ready: in the background.
        let operators_paths = paths.clone();
        let (imported, operators_image) = tokio::sync::oneshot::channel::<()>();
        self.background.push(tokio::spawn(async move {
            if let Err(err) = crate::images::import_operators_image(&operators_paths).await {
                tracing::error!(error = %err, "operators image");
            }
            let _ = imported.send(());
        }));

        let kubelet = &spec.kubelet;
        crate::kubelet::write_config(kubelet, paths)?;
        let (node_process, alone) = shared_process::group(
            Component {
                args: crate::kubelet::args(kubelet, paths),
                user_args: kubelet.extra_args.clone(),
            },
            vec![Component {
                args: crate::kubelet::kube_proxy_args(
                    &kubelet.node_name,
                    &spec.network.cluster_cidr.to_string(),
                    &spec.kube_proxy_kubeconfig,
                    &spec.kube_proxy_args,
                ),
                user_args: spec.kube_proxy_args.clone(),
            }],
        );
        for process in std::iter::once(node_process).chain(alone) {
            // kube-proxy finds iptables on it.
            let mut process = process.spec(
                &spec.programs.kube(),
                spec.paths.agent_dir.clone(),
                &spec.logs,
            );
            process.env = crate::process::with_search_path(process.env, &spec.paths.search_path);
            self.children.push(executor.start(process));
        }

        // As the kubelet itself: a node may read its own Node and Lease,
        // while the k3r-controller identity's RBAC may not exist yet (on a
        // first boot, the operators that apply it wait for this node).
        let own = k3r_kube_client::from_kubeconfig(&kubelet.kubeconfig).await?;
        let pod_cidr = wait_for_pod_cidr(&own, &kubelet.node_name).await?;
        let controller = k3r_kube_client::from_kubeconfig(&spec.controller_kubeconfig).await?;
        let network = k3r_network::node::start(
            controller.clone(),
            spec.network.clone(),
            &pod_cidr,
            &spec.paths.search_path,
        )
        .await?;
        // Pods start once the CNI config exists: not before Services work.
        if crate::kube_proxy::wait_synced(KUBE_PROXY_SYNC).await {
            tracing::info!(
                seconds = started.elapsed().as_secs_f32(),
                "kube-proxy synced"
            );
        } else {
            tracing::warn!(
                waited = ?KUBE_PROXY_SYNC,
                "kube-proxy has not synced its rules; starting pods anyway"
            );
        }
        crate::cni::write(
            paths,
            &pod_cidr,
            &spec.network.cluster_cidr.to_string(),
            network.mtu,
        )?;
        self.network = Some(network);
        let booted = SystemTime::now() - started.elapsed();
        wait_for_ready(&own, &kubelet.node_name, booted).await?;
        // The per-node pods restart onto the node's image when the label
        // changes: the image first (nodeinfo).
        let _ = tokio::time::timeout(OPERATORS_IMAGE_WAIT, operators_image).await;
        label_version(&controller, &kubelet.node_name).await;
        Ok(pod_cidr)
    }

    /// Stops the networking controller, kube-proxy, kubelet and containerd
    /// (newest first), then the pods' processes and mounts, then the
    /// iptables rules of kube-proxy, the CNI plugins (hostPort DNATs) and
    /// k3r and the network policy's nftables table in its network
    /// namespace — with the pods gone they describe nothing that runs, and
    /// the next start writes them afresh (pods wait for kube-proxy's rules
    /// then); a node of its own on a shared machine also removes its cgroup
    /// root and run dir.
    ///
    /// With [`Shutdown::Switch`], only the processes and the controller
    /// stop.
    pub async fn stop(&mut self, how: Shutdown) {
        for task in self.background.drain(..) {
            task.abort();
        }
        drop(self.network.take());
        while let Some(child) = self.children.pop() {
            tracing::info!(component = %child.name, "stopping");
            child.stop().await;
        }
        let Some((paths, data_dir, root)) = self.scope.take() else {
            return;
        };
        if how == Shutdown::Switch {
            tracing::info!("pods, their network and rules left running for the switch");
            return;
        }
        let _ = tokio::task::spawn_blocking(move || {
            crate::cleanup::stop_workloads(&paths, &data_dir, &root);
            crate::cleanup::remove_iptables_chains(&paths.search_path);
            crate::cleanup::remove_nftables_table();
            if root != "/" {
                crate::cgroups::remove_root(&root);
                // Its run dir is only its own (the default /run/k3r may
                // be a server's).
                let _ = std::fs::remove_dir_all(&paths.run_dir);
            }
        })
        .await;
    }
}

/// The node's `k3r.io/version` label: the version this boot runs (an
/// upgrade's switch or a rollback changes it; the Plan controller and
/// agents' upgrades read the servers' from here).
async fn label_version(client: &kube::Client, name: &str) {
    let nodes: Api<NodeObject> = Api::all(client.clone());
    let version = k3r_version::tag();
    let patch = serde_json::json!({"metadata": {"labels": {"k3r.io/version": version}}});
    match nodes
        .patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => tracing::info!(node = name, %version, "node labelled with its k3r version"),
        Err(err) => {
            tracing::warn!(error = %err, node = name, "cannot label the node with its k3r version")
        }
    }
}

async fn wait_for_pod_cidr(client: &kube::Client, name: &str) -> Result<String, Error> {
    let nodes: Api<NodeObject> = Api::all(client.clone());
    crate::wait::until("the node's pod CIDR", TIMEOUT, || async {
        nodes.get_opt(name).await.ok().flatten()?.spec?.pod_cidr
    })
    .await
}

/// Ready by this boot's kubelet (a Ready condition from before a restart
/// does not count: [`crate::ready`]), which reports this k3r's version.
async fn wait_for_ready(
    client: &kube::Client,
    name: &str,
    booted: SystemTime,
) -> Result<(), Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let nodes: Api<NodeObject> = Api::all(client.clone());
    let metadata = k3r_version::kube_build_metadata();
    crate::wait::until("the node to be Ready", TIMEOUT, || async {
        let node = serde_json::to_value(nodes.get_opt(name).await.ok().flatten()?).ok()?;
        let lease = leases
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .and_then(|l| serde_json::to_value(l).ok());
        (crate::ready::ready_since(&node, lease.as_ref(), booted)
            && crate::ready::runs_k3r(&node, &metadata))
        .then_some(())
    })
    .await
}
