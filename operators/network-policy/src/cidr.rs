//! An ipBlock (a CIDR less its exceptions) as the list of prefixes that
//! cover exactly the addresses it allows, so a rule can match them without
//! a second pass for the exceptions.

use ipnet::IpNet;

/// `block` without every `except` inside it, as disjoint prefixes.
pub fn subtract(block: IpNet, excepts: &[IpNet]) -> Vec<IpNet> {
    let block = block.trunc();
    let mut remaining = vec![block];
    for except in excepts {
        let except = except.trunc();
        remaining = remaining
            .into_iter()
            .flat_map(|net| remove(net, except))
            .collect();
    }
    remaining
}

fn remove(net: IpNet, except: IpNet) -> Vec<IpNet> {
    if except.contains(&net) {
        return Vec::new();
    }
    if !net.contains(&except) {
        return vec![net];
    }
    // Split `net` in halves until the exception is one of them.
    let Ok(halves) = net.subnets(net.prefix_len() + 1) else {
        return vec![net];
    };
    halves.flat_map(|half| remove(half, except)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().expect("net")).collect()
    }

    #[test]
    fn exceptions_are_carved_out_exactly() {
        let block: IpNet = "10.0.0.0/24".parse().expect("net");
        assert_eq!(subtract(block, &[]), nets(&["10.0.0.0/24"]));
        assert_eq!(
            subtract(block, &nets(&["10.0.0.128/25"])),
            nets(&["10.0.0.0/25"])
        );
        assert_eq!(
            subtract(block, &nets(&["10.0.0.0/26", "10.0.0.200/32"])),
            nets(&[
                "10.0.0.64/26",
                "10.0.0.128/26",
                "10.0.0.192/29",
                "10.0.0.201/32",
                "10.0.0.202/31",
                "10.0.0.204/30",
                "10.0.0.208/28",
                "10.0.0.224/27",
            ])
        );
        assert!(subtract(block, &nets(&["10.0.0.0/16"])).is_empty());
        assert_eq!(
            subtract(block, &nets(&["192.168.0.0/16"])),
            nets(&["10.0.0.0/24"])
        );
        // Every address in the block is covered unless excepted.
        let parts = subtract("0.0.0.0/0".parse().expect("net"), &nets(&["10.42.0.0/16"]));
        assert_eq!(parts.len(), 16);
        for probe in ["10.41.255.255", "10.43.0.0", "8.8.8.8", "255.255.255.255"] {
            let ip: std::net::IpAddr = probe.parse().expect("ip");
            assert!(parts.iter().any(|p| p.contains(&ip)), "{probe}");
        }
        let excepted: std::net::IpAddr = "10.42.7.9".parse().expect("ip");
        assert!(!parts.iter().any(|p| p.contains(&excepted)));
    }
}
