//! flannel's vxlan backend, done with rtnetlink: a `flannel.1` device
//! (VNI 1, UDP port 8472, no learning, MTU 50 below the uplink's) holding
//! the network address of this node's pod subnet as a /32, and for every
//! other node — its pod subnet, public IP and VTEP MAC, as flannel
//! publishes them in node annotations — a route `subnet via subnet.0
//! dev flannel.1 onlink`, a permanent neighbour `subnet.0 → VTEP MAC`
//! and a permanent FDB entry `VTEP MAC → public IP`. `sync` makes the
//! device's routes and neighbours exactly the given peers'.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourState,
};
use rtnetlink::packet_route::route::RouteAttribute;
use rtnetlink::{Handle, LinkUnspec, LinkVxlan, RouteMessageBuilder};

use crate::Error;

/// flannel's defaults.
pub const DEVICE: &str = "flannel.1";
pub const VNI: u32 = 1;
pub const PORT: u16 = 8472;
/// VXLAN over IPv4 costs 50 bytes of each packet.
pub const OVERHEAD: u32 = 50;

#[derive(Clone, Debug)]
pub struct VxlanConfig {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    /// The node's IP the tunnel uses (its public IP in flannel's terms).
    pub local: Ipv4Addr,
    /// Index of the uplink carrying the tunnel, and its MTU.
    pub uplink: Option<(u32, u32)>,
    /// This node's pod subnet.
    pub subnet: Ipv4Net,
}

/// Another node, as its flannel annotations describe it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub subnet: Ipv4Net,
    pub public_ip: Ipv4Addr,
    pub vtep_mac: [u8; 6],
}

pub struct Vxlan {
    handle: Handle,
    pub index: u32,
    pub mac: [u8; 6],
    name: String,
}

/// A netlink connection in the calling thread's network namespace.
pub fn connect() -> Result<Handle, Error> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| Error::Netlink(format!("netlink socket: {e}")))?;
    tokio::spawn(connection);
    Ok(handle)
}

fn netlink(what: &str) -> impl FnOnce(rtnetlink::Error) -> Error + '_ {
    move |e| Error::Netlink(format!("{what}: {e}"))
}

/// `aa:bb:cc:dd:ee:ff`
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).ok())
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}

async fn find(handle: &Handle, name: &str) -> Result<Option<(u32, [u8; 6], bool)>, Error> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => {
            let mut mac = [0u8; 6];
            let mut is_vxlan = false;
            for attribute in &link.attributes {
                match attribute {
                    LinkAttribute::Address(a) if a.len() == 6 => mac.copy_from_slice(a),
                    LinkAttribute::LinkInfo(infos) => {
                        is_vxlan |= infos
                            .iter()
                            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Vxlan)));
                    }
                    _ => {}
                }
            }
            Ok(Some((link.header.index, mac, is_vxlan)))
        }
        Ok(None) => Ok(None),
        // No such device.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -19 => Ok(None),
        Err(e) => Err(Error::Netlink(format!("looking up {name}: {e}"))),
    }
}

impl Vxlan {
    /// Creates the device if it is missing, brings it up and gives it the
    /// subnet's network address.
    pub async fn ensure(handle: Handle, config: &VxlanConfig) -> Result<Vxlan, Error> {
        let existing = find(&handle, &config.name).await?;
        if let Some((_, _, false)) = existing {
            return Err(Error::Netlink(format!(
                "{} exists and is not a vxlan device",
                config.name
            )));
        }
        if existing.is_none() {
            let mut builder = LinkVxlan::new(&config.name, config.vni)
                .port(config.port)
                .local(config.local)
                .learning(false);
            if let Some((uplink, mtu)) = config.uplink {
                builder = builder.dev(uplink).mtu(mtu.saturating_sub(OVERHEAD));
            }
            handle
                .link()
                .add(builder.build())
                .execute()
                .await
                .map_err(netlink("creating the vxlan device"))?;
            tracing::info!(device = %config.name, vni = config.vni, local = %config.local, "vxlan device created");
        }
        let (index, mac, _) = find(&handle, &config.name)
            .await?
            .ok_or_else(|| Error::Netlink(format!("{} vanished", config.name)))?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(netlink("bringing the vxlan device up"))?;
        handle
            .address()
            .add(index, IpAddr::V4(config.subnet.network()), 32)
            .replace()
            .execute()
            .await
            .map_err(netlink("addressing the vxlan device"))?;
        Ok(Vxlan {
            handle,
            index,
            mac,
            name: config.name.clone(),
        })
    }

    /// Adds or refreshes one peer's route, neighbour and FDB entry.
    pub async fn add_peer(&self, peer: &Peer) -> Result<(), Error> {
        let gateway = peer.subnet.network();
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(gateway, peer.subnet.prefix_len())
            .gateway(gateway)
            .output_interface(self.index)
            .onlink()
            .build();
        self.handle
            .neighbours()
            .add(self.index, IpAddr::V4(gateway))
            .link_layer_address(&peer.vtep_mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(netlink("adding the peer's neighbour entry"))?;
        self.handle
            .neighbours()
            .add_bridge(self.index, &peer.vtep_mac)
            .destination(IpAddr::V4(peer.public_ip))
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(netlink("adding the peer's FDB entry"))?;
        self.handle
            .route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(netlink("adding the peer's route"))?;
        Ok(())
    }

    /// Makes the device's peers exactly `peers`: adds what is missing,
    /// deletes routes, neighbours and FDB entries of nodes that are gone.
    pub async fn sync(&self, peers: &[Peer]) -> Result<(), Error> {
        for peer in peers {
            self.add_peer(peer).await?;
        }
        let subnets: BTreeSet<(Ipv4Addr, u8)> = peers
            .iter()
            .map(|p| (p.subnet.network(), p.subnet.prefix_len()))
            .collect();
        let macs: BTreeSet<[u8; 6]> = peers.iter().map(|p| p.vtep_mac).collect();
        let gateways: BTreeSet<Ipv4Addr> = peers.iter().map(|p| p.subnet.network()).collect();

        for route in crate::routes::ipv4(&self.handle).await? {
            let through_us = route
                .attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Oif(i) if *i == self.index));
            let Some(key) = crate::routes::destination(&route) else {
                continue;
            };
            // The device's own /32 route is the kernel's, not a peer's.
            if through_us && key.1 < 32 && !subnets.contains(&key) {
                tracing::info!(device = %self.name, subnet = %format!("{}/{}", key.0, key.1), "removing the route of a node that is gone");
                self.handle
                    .route()
                    .del(route)
                    .execute()
                    .await
                    .map_err(netlink("deleting a stale route"))?;
            }
        }
        // ARP entries (inet) and FDB entries (bridge) are dumped apart.
        let mut neighbours = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Bridge] {
            let mut request = self.handle.neighbours().get();
            request.message_mut().header.family = family;
            let mut dumped: Vec<_> = request
                .execute()
                .try_collect()
                .await
                .map_err(netlink("listing neighbours"))?;
            neighbours.append(&mut dumped);
        }
        for neighbour in neighbours {
            if neighbour.header.ifindex != self.index {
                continue;
            }
            let ip = neighbour.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
                _ => None,
            });
            let mac = neighbour.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(m) if m.len() == 6 => {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(m);
                    Some(mac)
                }
                _ => None,
            });
            // FDB entries (bridge family) are keyed by MAC, ARP entries by
            // the peer subnet's network address.
            let stale = if neighbour.header.family == AddressFamily::Bridge {
                mac.is_some_and(|m| !macs.contains(&m))
            } else {
                ip.is_some_and(|ip| !gateways.contains(&ip))
            };
            if stale {
                self.handle
                    .neighbours()
                    .del(neighbour)
                    .execute()
                    .await
                    .map_err(netlink("deleting a stale neighbour"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        let mac = [0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f];
        assert_eq!(format_mac(&mac), "0a:1b:2c:3d:4e:5f");
        assert_eq!(parse_mac("0a:1b:2c:3d:4e:5f"), Some(mac));
        assert_eq!(parse_mac("0a:1b"), None);
        assert_eq!(parse_mac("zz:1b:2c:3d:4e:5f"), None);
    }
}
