//! Reading the IPv4 routing table, for the backends' syncs.

use std::net::Ipv4Addr;

use futures::TryStreamExt;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::Error;

/// Every IPv4 route of the main table.
pub async fn ipv4(handle: &Handle) -> Result<Vec<RouteMessage>, Error> {
    handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::Netlink(format!("listing routes: {e}")))
}

/// A route's destination prefix (None for the default route).
pub fn destination(route: &RouteMessage) -> Option<(Ipv4Addr, u8)> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
            Some((*ip, route.header.destination_prefix_length))
        }
        _ => None,
    })
}
