//! The interface node traffic leaves by: named (`--flannel-iface`) or the
//! one holding the node's IP.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::LinkAttribute;

use crate::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uplink {
    pub name: String,
    pub index: u32,
    pub mtu: u32,
    /// Its first IPv4 address.
    pub ip: Ipv4Addr,
}

async fn ipv4_addresses(handle: &Handle) -> Result<Vec<(u32, Ipv4Addr)>, Error> {
    let addresses: Vec<_> = handle
        .address()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::Netlink(format!("listing addresses: {e}")))?;
    Ok(addresses
        .iter()
        .flat_map(|a| {
            a.attributes.iter().filter_map(move |attr| match attr {
                AddressAttribute::Address(IpAddr::V4(ip)) => Some((a.header.index, *ip)),
                _ => None,
            })
        })
        .collect())
}

/// Finds the uplink by name, else by the address `node_ip`.
pub async fn find(handle: &Handle, name: Option<&str>, node_ip: Ipv4Addr) -> Result<Uplink, Error> {
    let links: Vec<_> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::Netlink(format!("listing links: {e}")))?;
    let addresses = ipv4_addresses(handle).await?;
    let index = match name {
        Some(name) => links
            .iter()
            .find(|l| {
                l.attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::IfName(n) if n == name))
            })
            .map(|l| l.header.index)
            .ok_or_else(|| {
                Error::Config(format!("--flannel-iface: no interface named {name:?}"))
            })?,
        None => addresses
            .iter()
            .find(|(_, ip)| *ip == node_ip)
            .map(|(index, _)| *index)
            .ok_or_else(|| {
                Error::Config(format!(
                    "node IP {node_ip} is on no interface here; pass --node-ip or --flannel-iface"
                ))
            })?,
    };
    let link = links
        .iter()
        .find(|l| l.header.index == index)
        .ok_or_else(|| Error::Netlink(format!("interface {index} vanished")))?;
    let ip = if name.is_none() {
        node_ip
    } else {
        addresses
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, ip)| *ip)
            .ok_or_else(|| {
                Error::Config(format!("--flannel-iface: {name:?} has no IPv4 address"))
            })?
    };
    Ok(Uplink {
        name: link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
            .unwrap_or_default(),
        index,
        mtu: link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Mtu(m) => Some(*m),
                _ => None,
            })
            .unwrap_or(1500),
        ip,
    })
}
