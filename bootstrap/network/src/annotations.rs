//! The node annotations flannel's kube subnet manager writes and reads,
//! so k3r nodes and flannel nodes see each other: backend type and data
//! (VNI, VTEP MAC) and the public IP.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::host_gw::GatewayPeer;
use crate::vxlan::{Peer, format_mac, parse_mac};

pub const BACKEND_TYPE: &str = "flannel.alpha.coreos.com/backend-type";
pub const BACKEND_DATA: &str = "flannel.alpha.coreos.com/backend-data";
pub const PUBLIC_IP: &str = "flannel.alpha.coreos.com/public-ip";
pub const SUBNET_MANAGER: &str = "flannel.alpha.coreos.com/kube-subnet-manager";

/// What this node publishes.
pub fn for_node(vni: u32, vtep_mac: &[u8; 6], public_ip: Ipv4Addr) -> BTreeMap<String, String> {
    BTreeMap::from([
        (BACKEND_TYPE.to_string(), "vxlan".to_string()),
        (
            BACKEND_DATA.to_string(),
            format!(r#"{{"VNI":{vni},"VtepMAC":"{}"}}"#, format_mac(vtep_mac)),
        ),
        (PUBLIC_IP.to_string(), public_ip.to_string()),
        (SUBNET_MANAGER.to_string(), "true".to_string()),
    ])
}

/// What a host-gw node publishes.
pub fn for_host_gw(public_ip: Ipv4Addr) -> BTreeMap<String, String> {
    BTreeMap::from([
        (BACKEND_TYPE.to_string(), "host-gw".to_string()),
        (BACKEND_DATA.to_string(), "null".to_string()),
        (PUBLIC_IP.to_string(), public_ip.to_string()),
        (SUBNET_MANAGER.to_string(), "true".to_string()),
    ])
}

/// Another node as a host-gw peer: its pod CIDR via its public IP.
pub fn gateway_peer(pod_cidr: &str, annotations: &BTreeMap<String, String>) -> Option<GatewayPeer> {
    if annotations.get(BACKEND_TYPE).map(String::as_str) != Some("host-gw") {
        return None;
    }
    Some(GatewayPeer {
        subnet: pod_cidr.parse().ok()?,
        gateway: annotations.get(PUBLIC_IP)?.parse().ok()?,
    })
}

/// Another node as a vxlan peer: its pod CIDR and flannel annotations;
/// None until it has published them (or for another backend).
pub fn peer(pod_cidr: &str, annotations: &BTreeMap<String, String>) -> Option<Peer> {
    if annotations.get(BACKEND_TYPE).map(String::as_str) != Some("vxlan") {
        return None;
    }
    let data = annotations.get(BACKEND_DATA)?;
    let mac_start = data.find("\"VtepMAC\"")?;
    let rest = &data[mac_start + "\"VtepMAC\"".len()..];
    let value = rest.split('"').nth(1)?;
    Some(Peer {
        subnet: pod_cidr.parse().ok()?,
        public_ip: annotations.get(PUBLIC_IP)?.parse().ok()?,
        vtep_mac: parse_mac(value)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_annotations_read_back_as_a_peer() {
        let mac = [0xd6, 0x8b, 0x0b, 0x08, 0x47, 0x77];
        let published = for_node(1, &mac, Ipv4Addr::new(10, 77, 0, 2));
        assert_eq!(
            published[BACKEND_DATA],
            r#"{"VNI":1,"VtepMAC":"d6:8b:0b:08:47:77"}"#
        );
        let peer = peer("10.42.1.0/24", &published).expect("a peer");
        assert_eq!(peer.vtep_mac, mac);
        assert_eq!(peer.public_ip, Ipv4Addr::new(10, 77, 0, 2));
        assert_eq!(peer.subnet.to_string(), "10.42.1.0/24");
        let mut host_gw = published.clone();
        host_gw.insert(BACKEND_TYPE.into(), "host-gw".into());
        assert!(super::peer("10.42.1.0/24", &host_gw).is_none());
        assert!(super::peer("not a cidr", &published).is_none());
        assert!(gateway_peer("10.42.1.0/24", &published).is_none());
        let gw = gateway_peer("10.42.2.0/24", &for_host_gw(Ipv4Addr::new(10, 77, 0, 3)))
            .expect("a host-gw peer");
        assert_eq!(gw.gateway, Ipv4Addr::new(10, 77, 0, 3));
    }
}
