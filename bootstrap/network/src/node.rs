//! The node's network controller — flannel's kube subnet manager and
//! backend in one: once the node has its pod CIDR it sets up the backend
//! (vxlan device or host-gw routes) and the masquerade rules, publishes
//! the flannel annotations on its Node, and keeps the dataplane's peers
//! equal to the other Nodes' as they come, change and go.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;
use ipnet::{IpNet, Ipv4Net};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};
use tokio::task::JoinHandle;

use crate::annotations::{for_host_gw, for_node, gateway_peer, peer};
use crate::host_gw::{GatewayPeer, HostGw};
use crate::vxlan::{self, Peer, Vxlan, VxlanConfig};
use crate::{Error, masquerade, uplink};

/// The annotation k3s nodes carry their external IP in.
pub const EXTERNAL_IP: &str = "k3s.io/external-ip";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Vxlan,
    HostGw,
    /// No pod networking between nodes (the user brings a CNI).
    None,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Vxlan => "vxlan",
            Backend::HostGw => "host-gw",
            Backend::None => "none",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "vxlan" => Ok(Backend::Vxlan),
            "host-gw" => Ok(Backend::HostGw),
            "none" => Ok(Backend::None),
            other => Err(Error::Config(format!(
                "--flannel-backend: {other:?} is not one of vxlan, host-gw, none"
            ))),
        }
    }
}

#[derive(Clone, Debug)]
pub struct NodeNetworkConfig {
    pub node_name: String,
    pub node_ip: IpAddr,
    /// `--flannel-iface`
    pub iface: Option<String>,
    pub backend: Backend,
    pub cluster_cidr: IpNet,
    pub external_ip: Option<IpAddr>,
}

enum Dataplane {
    Vxlan(Vxlan),
    HostGw(HostGw),
    None,
}

/// The running controller; stops when dropped.
pub struct NodeNetwork {
    /// MTU pods get: the uplink's, less the tunnel's overhead.
    pub mtu: u32,
    task: JoinHandle<()>,
}

impl Drop for NodeNetwork {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sets the node's networking up for `pod_cidr` and starts keeping it in
/// sync with the other nodes. `search_path` is where `iptables` is looked
/// up (the node processes' PATH; empty: k3r's own).
pub async fn start(
    client: kube::Client,
    config: NodeNetworkConfig,
    pod_cidr: &str,
    search_path: &str,
) -> Result<NodeNetwork, Error> {
    let (IpAddr::V4(node_ip), IpNet::V4(cluster_cidr)) = (config.node_ip, config.cluster_cidr)
    else {
        return Err(Error::Config(
            "node networking needs an IPv4 node IP and cluster CIDR".into(),
        ));
    };
    let pod_cidr: Ipv4Net = pod_cidr
        .parse()
        .map_err(|_| Error::Config(format!("node pod CIDR {pod_cidr:?} is not an IPv4 CIDR")))?;
    let handle = vxlan::connect()?;
    let uplink = uplink::find(&handle, config.iface.as_deref(), node_ip).await?;
    if config.backend != Backend::None {
        masquerade::ensure(cluster_cidr, pod_cidr, search_path).await?;
    }
    let (mut desired, dataplane, mtu) = match config.backend {
        Backend::Vxlan => {
            let device = Vxlan::ensure(
                handle,
                &VxlanConfig {
                    name: vxlan::DEVICE.into(),
                    vni: vxlan::VNI,
                    port: vxlan::PORT,
                    local: uplink.ip,
                    uplink: Some((uplink.index, uplink.mtu)),
                    subnet: pod_cidr,
                },
            )
            .await?;
            let annotations = for_node(vxlan::VNI, &device.mac, uplink.ip);
            (
                annotations,
                Dataplane::Vxlan(device),
                uplink.mtu.saturating_sub(vxlan::OVERHEAD),
            )
        }
        Backend::HostGw => (
            for_host_gw(uplink.ip),
            Dataplane::HostGw(HostGw::new(handle)),
            uplink.mtu,
        ),
        Backend::None => (BTreeMap::new(), Dataplane::None, uplink.mtu),
    };
    if let Some(ip) = config.external_ip {
        desired.insert(EXTERNAL_IP.into(), ip.to_string());
    }
    let nodes: Api<Node> = Api::all(client);
    // Until the cluster's RBAC is applied (by the in-cluster deploy
    // operator, after this node runs pods) this may be refused: the sync
    // loop keeps trying, and pods on this node need not wait for it.
    if let Err(err) = publish(&nodes, &config.node_name, &desired).await {
        tracing::warn!(error = %err, "node network annotations not published yet; retrying");
    }
    tracing::info!(
        node = %config.node_name,
        backend = ?config.backend,
        uplink = %uplink.name,
        public_ip = %uplink.ip,
        mtu,
        "node networking ready"
    );
    let task = tokio::spawn(keep_in_sync(nodes, config.node_name, desired, dataplane));
    Ok(NodeNetwork { mtu, task })
}

async fn publish(
    nodes: &Api<Node>,
    name: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<(), Error> {
    if annotations.is_empty() {
        return Ok(());
    }
    let patch = serde_json::json!({ "metadata": { "annotations": annotations } });
    nodes
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::Api(format!("annotating node {name}: {}", api_message(&e))))?;
    Ok(())
}

/// The API's own message for API errors, not the whole Status.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Peers of either backend, from the other nodes.
#[derive(Default, PartialEq, Eq)]
struct Peers {
    vxlan: BTreeSet<Peer>,
    host_gw: BTreeSet<GatewayPeer>,
}

fn peers_of(nodes: &[std::sync::Arc<Node>], own: &str) -> Peers {
    let mut peers = Peers::default();
    for node in nodes {
        if node.metadata.name.as_deref() == Some(own) {
            continue;
        }
        let Some(cidr) = node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) else {
            continue;
        };
        let annotations = node.metadata.annotations.clone().unwrap_or_default();
        if let Some(p) = peer(cidr, &annotations) {
            peers.vxlan.insert(p);
        }
        if let Some(p) = gateway_peer(cidr, &annotations) {
            peers.host_gw.insert(p);
        }
    }
    peers
}

async fn apply(dataplane: &Dataplane, peers: &Peers) -> Result<(), Error> {
    match dataplane {
        Dataplane::Vxlan(device) => {
            device
                .sync(&peers.vxlan.iter().cloned().collect::<Vec<_>>())
                .await
        }
        Dataplane::HostGw(routes) => {
            routes
                .sync(&peers.host_gw.iter().cloned().collect::<Vec<_>>())
                .await
        }
        Dataplane::None => Ok(()),
    }
}

/// How often the dataplane is re-applied even when no Node changed (a
/// route someone deleted comes back).
const RESYNC: Duration = Duration::from_secs(30);

async fn keep_in_sync(
    nodes: Api<Node>,
    own: String,
    desired: BTreeMap<String, String>,
    dataplane: Dataplane,
) {
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher::watcher(nodes.clone(), watcher::Config::default()).default_backoff(),
    );
    let mut stream = std::pin::pin!(stream);
    let mut resync = tokio::time::interval(RESYNC);
    let mut synced: Option<Peers> = None;
    let mut listed = false;
    loop {
        let mut forced = false;
        tokio::select! {
            event = stream.next() => match event {
                Some(Ok(Event::InitDone)) => listed = true,
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "watching nodes (retrying)");
                    continue;
                }
                None => return,
            },
            _ = resync.tick() => forced = true,
        }
        if !listed {
            continue;
        }
        let state = reader.state();
        if let Some(me) = state
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(&own))
        {
            let current = me.metadata.annotations.clone().unwrap_or_default();
            if desired.iter().any(|(k, v)| current.get(k) != Some(v))
                && let Err(err) = publish(&nodes, &own, &desired).await
            {
                tracing::warn!(error = %err, "re-publishing the node's network annotations");
            }
        }
        let peers = peers_of(&state, &own);
        if !forced && synced.as_ref() == Some(&peers) {
            continue;
        }
        match apply(&dataplane, &peers).await {
            Ok(()) => {
                if synced.as_ref() != Some(&peers) {
                    tracing::info!(
                        vxlan_peers = peers.vxlan.len(),
                        host_gw_peers = peers.host_gw.len(),
                        "node network peers in sync"
                    );
                }
                synced = Some(peers);
            }
            Err(err) => tracing::warn!(error = %err, "syncing node network peers (will retry)"),
        }
    }
}
