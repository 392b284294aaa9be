//! flannel-style vxlan and host-gw between two network namespaces on this
//! machine, each playing a node: pods (bridges holding the pod subnet) in
//! different subnets reach each other only through the devices, routes,
//! neighbours and FDB entries the crate writes, and lose each other when a
//! peer is removed. The masquerade rules, in a namespace of their own.

use std::fs::File;
use std::net::Ipv4Addr;
use std::process::{Command, Output};

use k3r_network::host_gw::{GatewayPeer, HostGw};
use k3r_network::masquerade;
use k3r_network::vxlan::{self, Peer, Vxlan, VxlanConfig};

/// A named network namespace, deleted (with its devices) on drop.
struct Netns {
    name: String,
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn must(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Netns {
    fn create(name: String) -> Netns {
        let _ = run(&["ip", "netns", "del", &name]);
        must(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        must(&all)
    }

    fn try_exec(&self, args: &[&str]) -> bool {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        run(&all).status.success()
    }

    /// Runs the future `f` makes on a thread inside the namespace, with its
    /// own runtime (netlink sockets belong to the namespace they are
    /// opened in).
    fn block_on<T: Send, Fut: std::future::Future<Output = T>>(
        &self,
        f: impl FnOnce() -> Fut + Send,
    ) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = File::open(&path).expect("netns file");
                    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    runtime.block_on(f())
                })
                .join()
                .expect("thread")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

struct Node {
    ns: Netns,
    ip: Ipv4Addr,
    subnet: ipnet::Ipv4Net,
    uplink: String,
}

impl Node {
    fn config(&self) -> VxlanConfig {
        let index: u32 = self
            .ns
            .exec(&["cat", &format!("/sys/class/net/{}/ifindex", self.uplink)])
            .trim()
            .parse()
            .expect("ifindex");
        VxlanConfig {
            name: vxlan::DEVICE.into(),
            vni: vxlan::VNI,
            port: vxlan::PORT,
            local: self.ip,
            uplink: Some((index, 1500)),
            subnet: self.subnet,
        }
    }

    fn ensure(&self) -> (u32, [u8; 6]) {
        let config = self.config();
        self.ns.block_on(|| async {
            let handle = vxlan::connect().expect("netlink");
            let device = Vxlan::ensure(handle, &config).await.expect("vxlan device");
            (device.index, device.mac)
        })
    }

    fn sync(&self, peers: Vec<Peer>) {
        let config = self.config();
        self.ns.block_on(|| async {
            let handle = vxlan::connect().expect("netlink");
            let device = Vxlan::ensure(handle, &config).await.expect("vxlan device");
            device.sync(&peers).await.expect("sync");
        })
    }
}

/// Two nodes (`tag` keeps names apart between tests) joined by a veth
/// pair, each with a bridge holding its pod subnet.
fn two_nodes(tag: &str) -> (Node, Node) {
    let id = std::process::id() % 100_000;
    let (veth_a, veth_b) = (format!("{tag}a{id}"), format!("{tag}b{id}"));
    let a = Node {
        ns: Netns::create(format!("k3r-{tag}-a-{id}")),
        ip: Ipv4Addr::new(10, 77, 0, 1),
        subnet: "10.244.1.0/24".parse().expect("cidr"),
        uplink: veth_a.clone(),
    };
    let b = Node {
        ns: Netns::create(format!("k3r-{tag}-b-{id}")),
        ip: Ipv4Addr::new(10, 77, 0, 2),
        subnet: "10.244.2.0/24".parse().expect("cidr"),
        uplink: veth_b.clone(),
    };
    must(&[
        "ip", "link", "add", &veth_a, "type", "veth", "peer", "name", &veth_b,
    ]);
    must(&["ip", "link", "set", &veth_a, "netns", &a.ns.name]);
    must(&["ip", "link", "set", &veth_b, "netns", &b.ns.name]);
    for (node, pod) in [(&a, "10.244.1.1/24"), (&b, "10.244.2.1/24")] {
        node.ns.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", node.ip),
            "dev",
            &node.uplink,
        ]);
        node.ns.exec(&["ip", "link", "set", &node.uplink, "up"]);
        node.ns
            .exec(&["ip", "link", "add", "pod0", "type", "bridge"]);
        node.ns.exec(&["ip", "addr", "add", pod, "dev", "pod0"]);
        node.ns.exec(&["ip", "link", "set", "pod0", "up"]);
    }
    (a, b)
}

#[test]
fn pods_reach_each_other_over_vxlan() {
    let (a, b) = two_nodes("vx");
    assert!(
        !a.ns
            .try_exec(&["busybox", "ping", "-c1", "-W1", "10.244.2.1"]),
        "reachable before any vxlan exists"
    );

    let (index_a, mac_a) = a.ensure();
    let (_, mac_b) = b.ensure();
    assert_eq!(a.ensure(), (index_a, mac_a), "ensure is idempotent");
    let details = a.ns.exec(&["ip", "-d", "link", "show", "flannel.1"]);
    assert!(
        details.contains("vxlan id 1")
            && details.contains("dstport 8472")
            && details.contains("nolearning")
            && details.contains("mtu 1450"),
        "{details}"
    );
    assert!(
        a.ns.exec(&["ip", "-4", "addr", "show", "flannel.1"])
            .contains("10.244.1.0/32")
    );

    let peer_a = Peer {
        subnet: a.subnet,
        public_ip: a.ip,
        vtep_mac: mac_a,
    };
    let peer_b = Peer {
        subnet: b.subnet,
        public_ip: b.ip,
        vtep_mac: mac_b,
    };
    a.sync(vec![peer_b.clone()]);
    b.sync(vec![peer_a.clone()]);
    a.ns.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "-I",
        "10.244.1.1",
        "10.244.2.1",
    ]);
    b.ns.exec(&["busybox", "ping", "-c1", "-W2", "10.244.1.1"]);
    let fdb = a.ns.exec(&["bridge", "fdb", "show", "dev", "flannel.1"]);
    assert!(
        fdb.contains(&format!("{} dst 10.77.0.2", vxlan::format_mac(&mac_b))),
        "{fdb}"
    );
    // Syncing the same peers again changes nothing.
    a.sync(vec![peer_b.clone()]);
    a.ns.exec(&["busybox", "ping", "-c1", "-W2", "10.244.2.1"]);

    // The peer leaves: its route, neighbour and FDB entry go.
    a.sync(Vec::new());
    assert!(
        !a.ns
            .try_exec(&["busybox", "ping", "-c1", "-W1", "10.244.2.1"])
    );
    let routes = a.ns.exec(&["ip", "route"]);
    assert!(!routes.contains("10.244.2.0/24"), "{routes}");
    let neighbours = a.ns.exec(&["ip", "neigh", "show", "dev", "flannel.1"]);
    assert!(!neighbours.contains("10.244.2.0"), "{neighbours}");
    let fdb = a.ns.exec(&["bridge", "fdb", "show", "dev", "flannel.1"]);
    assert!(!fdb.contains(&vxlan::format_mac(&mac_b)), "{fdb}");
}

impl Node {
    fn host_gw_sync(&self, peers: Vec<GatewayPeer>) {
        self.ns.block_on(|| async {
            let handle = vxlan::connect().expect("netlink");
            HostGw::new(handle)
                .sync(&peers)
                .await
                .expect("host-gw sync");
        })
    }
}

#[test]
fn pods_reach_each_other_over_host_gw_and_leave_others_routes_alone() {
    let (a, b) = two_nodes("gw");
    assert!(
        !a.ns
            .try_exec(&["busybox", "ping", "-c1", "-W1", "10.244.2.1"])
    );
    a.host_gw_sync(vec![GatewayPeer {
        subnet: b.subnet,
        gateway: b.ip,
    }]);
    b.host_gw_sync(vec![GatewayPeer {
        subnet: a.subnet,
        gateway: a.ip,
    }]);
    let routes = a.ns.exec(&["ip", "route"]);
    assert!(routes.contains("10.244.2.0/24 via 10.77.0.2"), "{routes}");
    assert!(routes.contains("proto 75"), "{routes}");
    a.ns.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "-I",
        "10.244.1.1",
        "10.244.2.1",
    ]);

    // A route someone else made survives the sync; ours of a gone node does not.
    a.ns.exec(&["ip", "route", "add", "10.99.0.0/24", "via", "10.77.0.2"]);
    a.host_gw_sync(Vec::new());
    let routes = a.ns.exec(&["ip", "route"]);
    assert!(!routes.contains("10.244.2.0/24"), "{routes}");
    assert!(routes.contains("10.99.0.0/24 via 10.77.0.2"), "{routes}");
    assert!(
        !a.ns
            .try_exec(&["busybox", "ping", "-c1", "-W1", "10.244.2.1"])
    );
}

#[test]
fn masquerade_rules_are_written_once() {
    let id = std::process::id() % 100_000;
    let ns = Netns::create(format!("k3r-masq-{id}"));
    for _ in 0..2 {
        ns.block_on(|| async {
            masquerade::ensure(
                "10.42.0.0/16".parse().expect("cidr"),
                "10.42.1.0/24".parse().expect("cidr"),
                "",
            )
            .await
            .expect("masquerade rules")
        });
    }
    let nat = ns.exec(&["iptables-save", "-t", "nat"]);
    assert_eq!(
        nat.matches("-A POSTROUTING -j K3R-POSTRTG").count(),
        1,
        "{nat}"
    );
    assert_eq!(nat.matches("-j MASQUERADE").count(), 2, "{nat}");
    assert!(
        nat.contains("-A K3R-POSTRTG -s 10.42.0.0/16 -d 10.42.0.0/16"),
        "{nat}"
    );
    let filter = ns.exec(&["iptables-save", "-t", "filter"]);
    assert_eq!(
        filter.matches("-A FORWARD -j K3R-FWD").count(),
        1,
        "{filter}"
    );
}
