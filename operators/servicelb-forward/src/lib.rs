//! The forwarder each svclb pod runs (`k3r svclb`): it takes a
//! LoadBalancer Service's port on the node (the pod's hostPort) and
//! forwards every connection or datagram to the Service — its ClusterIPs
//! and port, or with `externalTrafficPolicy: Local` the node's own IPs and
//! the NodePort. It is configured like klipper-lb (`SRC_PORT`,
//! `SRC_RANGES`, `DEST_PROTO`, `DEST_PORT`, `DEST_IPS`), so a k3s user's
//! `kubectl describe` reads the same, but forwards in user space: the pod
//! needs no NET_ADMIN and leaves no netfilter rules behind, and
//! `loadBalancerSourceRanges` are checked against the client's own address
//! (the hostPort mapping keeps it).

mod tcp;
mod udp;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{name} is not set")]
    Missing { name: &'static str },
    #[error("{name}={value:?}: {why}")]
    Invalid {
        name: &'static str,
        value: String,
        why: String,
    },
    #[error("protocol {0} cannot be forwarded (TCP and UDP can)")]
    Unsupported(String),
    #[error("cannot listen on port {port}: {source}")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("forwarding stopped: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// What one svclb container forwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The port clients connect to (the Service port, = the hostPort).
    pub src_port: u16,
    /// Clients allowed; empty allows every client.
    pub src_ranges: Vec<IpNet>,
    pub protocol: Protocol,
    /// Where connections go, tried in order (a dual-stack Service has two).
    pub dest_ips: Vec<IpAddr>,
    pub dest_port: u16,
    /// How long a UDP client with no traffic keeps its upstream socket.
    pub udp_idle: Duration,
}

impl Config {
    /// Reads klipper-lb's environment through `get`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let required = |name: &'static str| -> Result<String, Error> {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or(Error::Missing { name })
        };
        let invalid = |name: &'static str, value: &str, why: &str| Error::Invalid {
            name,
            value: value.to_string(),
            why: why.to_string(),
        };
        let port = |name: &'static str| -> Result<u16, Error> {
            let value = required(name)?;
            value
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| invalid(name, &value, "not a port (1-65535)"))
        };
        let src_port = port("SRC_PORT")?;
        let dest_port = port("DEST_PORT")?;
        let proto = required("DEST_PROTO")?;
        let protocol = match proto.to_ascii_uppercase().as_str() {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            "SCTP" => return Err(Error::Unsupported(proto)),
            _ => return Err(invalid("DEST_PROTO", &proto, "not TCP, UDP or SCTP")),
        };
        let ips = required("DEST_IPS")?;
        let dest_ips = list(&ips)
            .map(|ip| {
                ip.parse::<IpAddr>()
                    .map_err(|_| invalid("DEST_IPS", &ips, &format!("{ip:?} is not an IP address")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ranges = get("SRC_RANGES").unwrap_or_default();
        let src_ranges = list(&ranges)
            .map(|range| {
                range
                    .parse::<IpNet>()
                    .or_else(|_| range.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        invalid("SRC_RANGES", &ranges, &format!("{range:?} is not a CIDR"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            src_port,
            src_ranges,
            protocol,
            dest_ips,
            dest_port,
            udp_idle: Duration::from_secs(60),
        })
    }

    /// Whether `client` may use the Service.
    pub fn allows(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        self.src_ranges.is_empty() || self.src_ranges.iter().any(|r| r.contains(&client))
    }

    fn destinations(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.dest_ips
            .iter()
            .map(|ip| SocketAddr::new(*ip, self.dest_port))
    }
}

fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Where the forwarder listens: every address of the pod, both families
/// when the pod has IPv6 (`[::]` is dual-stack on Linux), else IPv4 only.
pub fn listen_addresses(port: u16) -> [SocketAddr; 2] {
    [
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
    ]
}

/// Binds with `bind` on the first of `listen` that works (the error of
/// the last one tried if none does).
async fn bind_first<T, F, Fut>(listen: &[SocketAddr], port: u16, bind: F) -> Result<T, Error>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = std::io::Result<T>>,
{
    let mut last = None;
    for address in listen {
        match bind(*address).await {
            Ok(bound) => return Ok(bound),
            Err(err) => last = Some(err),
        }
    }
    Err(Error::Listen {
        port,
        source: last.unwrap_or_else(|| std::io::Error::other("no address to listen on")),
    })
}

/// Forwards until `shutdown` completes. Binding is tried on each of
/// `listen` in turn (the first that works is used).
pub async fn run(
    config: Config,
    listen: &[SocketAddr],
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let serving = async {
        match config.protocol {
            Protocol::Tcp => {
                let listener =
                    bind_first(listen, config.src_port, tokio::net::TcpListener::bind).await?;
                announce("TCP", listener.local_addr()?, &config);
                tcp::serve(listener, config).await
            }
            Protocol::Udp => {
                let socket =
                    bind_first(listen, config.src_port, tokio::net::UdpSocket::bind).await?;
                announce("UDP", socket.local_addr()?, &config);
                udp::serve(socket, config).await
            }
        }
    };
    tokio::select! {
        result = serving => result,
        _ = shutdown => Ok(()),
    }
}

fn announce(protocol: &str, listen: SocketAddr, config: &Config) {
    tracing::info!(
        %listen, to = ?config.dest_ips, port = config.dest_port,
        ranges = ?config.src_ranges, "forwarding {protocol}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const GOOD: [(&str, &str); 5] = [
        ("SRC_PORT", "80"),
        ("SRC_RANGES", "0.0.0.0/0,::/0"),
        ("DEST_PROTO", "TCP"),
        ("DEST_PORT", "8080"),
        ("DEST_IPS", "10.43.0.10, fd00::10"),
    ];

    #[test]
    fn reads_klipper_lb_environment() {
        let config = Config::from_env(env(&GOOD)).expect("config");
        assert_eq!(config.src_port, 80);
        assert_eq!(config.dest_port, 8080);
        assert_eq!(config.protocol, Protocol::Tcp);
        assert_eq!(
            config.destinations().collect::<Vec<_>>(),
            [
                "10.43.0.10:8080".parse::<SocketAddr>().expect("v4"),
                "[fd00::10]:8080".parse().expect("v6"),
            ]
        );
        assert!(config.allows("203.0.113.7".parse().expect("ip")));
    }

    #[test]
    fn source_ranges_match_the_client_as_seen_on_a_dual_stack_socket() {
        let mut pairs = GOOD.to_vec();
        pairs[1] = ("SRC_RANGES", "10.213.0.11/32, 192.168.0.0/16");
        let config = Config::from_env(env(&pairs)).expect("config");
        assert!(config.allows("10.213.0.11".parse().expect("ip")));
        assert!(config.allows("::ffff:192.168.4.2".parse().expect("mapped")));
        assert!(!config.allows("10.213.0.1".parse().expect("ip")));
        pairs[1] = ("SRC_RANGES", "");
        let open = Config::from_env(env(&pairs)).expect("config");
        assert!(open.allows("10.213.0.1".parse().expect("ip")));
    }

    #[test]
    fn bad_environment_names_the_variable() {
        let cases: [(&str, &str, &str); 6] = [
            ("SRC_PORT", "0", "SRC_PORT=\"0\": not a port (1-65535)"),
            (
                "DEST_PORT",
                "http",
                "DEST_PORT=\"http\": not a port (1-65535)",
            ),
            (
                "DEST_PROTO",
                "ICMP",
                "DEST_PROTO=\"ICMP\": not TCP, UDP or SCTP",
            ),
            (
                "DEST_PROTO",
                "SCTP",
                "protocol SCTP cannot be forwarded (TCP and UDP can)",
            ),
            (
                "DEST_IPS",
                "10.43.0.10,nope",
                "DEST_IPS=\"10.43.0.10,nope\": \"nope\" is not an IP address",
            ),
            (
                "SRC_RANGES",
                "10.0.0.0/33",
                "SRC_RANGES=\"10.0.0.0/33\": \"10.0.0.0/33\" is not a CIDR",
            ),
        ];
        for (name, value, message) in cases {
            let pairs: Vec<(&str, &str)> = GOOD
                .iter()
                .map(|(k, v)| if *k == name { (*k, value) } else { (*k, *v) })
                .collect();
            let err = Config::from_env(env(&pairs)).expect_err(name);
            assert_eq!(err.to_string(), message);
        }
        let pairs: Vec<(&str, &str)> = GOOD
            .iter()
            .copied()
            .filter(|(k, _)| *k != "DEST_IPS")
            .collect();
        assert_eq!(
            Config::from_env(env(&pairs))
                .expect_err("missing")
                .to_string(),
            "DEST_IPS is not set"
        );
    }
}
