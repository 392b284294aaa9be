//! flannel's host-gw backend: no tunnel, a plain route to each other
//! node's pod subnet via that node's IP (all nodes on one L2 segment).
//! The routes carry k3r's own protocol number, so `sync` finds and
//! removes those of nodes that are gone without touching anyone else's.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rtnetlink::packet_route::route::RouteProtocol;
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::Error;

/// The protocol number k3r's host-gw routes carry ("proto 75").
pub const PROTOCOL: u8 = 75;

/// Another node for host-gw: its pod subnet and the IP to route it via.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GatewayPeer {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
}

pub struct HostGw {
    handle: Handle,
}

fn netlink(what: &str) -> impl FnOnce(rtnetlink::Error) -> Error + '_ {
    move |e| Error::Netlink(format!("{what}: {e}"))
}

fn route(peer: &GatewayPeer) -> rtnetlink::packet_route::route::RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(peer.subnet.network(), peer.subnet.prefix_len())
        .gateway(peer.gateway)
        .protocol(RouteProtocol::Other(PROTOCOL))
        .build()
}

impl HostGw {
    pub fn new(handle: Handle) -> Self {
        Self { handle }
    }

    /// Makes k3r's host-gw routes exactly `peers`'.
    pub async fn sync(&self, peers: &[GatewayPeer]) -> Result<(), Error> {
        for peer in peers {
            self.handle
                .route()
                .add(route(peer))
                .replace()
                .execute()
                .await
                .map_err(netlink("adding a host-gw route"))?;
        }
        let wanted: BTreeSet<(Ipv4Addr, u8)> = peers
            .iter()
            .map(|p| (p.subnet.network(), p.subnet.prefix_len()))
            .collect();
        for existing in crate::routes::ipv4(&self.handle).await? {
            if existing.header.protocol != RouteProtocol::Other(PROTOCOL) {
                continue;
            }
            let Some((destination, prefix)) = crate::routes::destination(&existing) else {
                continue;
            };
            if !wanted.contains(&(destination, prefix)) {
                tracing::info!(subnet = %format!("{destination}/{prefix}"), "removing the host-gw route of a node that is gone");
                self.handle
                    .route()
                    .del(existing)
                    .execute()
                    .await
                    .map_err(netlink("removing a host-gw route"))?;
            }
        }
        Ok(())
    }
}
