//! What k3r needs from the kernel, and why: the container runtime
//! (namespaces, cgroups, overlayfs, seccomp), kube-proxy's iptables rules,
//! the pod network (veth, bridge, vxlan), network policy (nftables).

/// Whether k3r works without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Required,
    Optional,
}

pub struct Feature {
    /// Kernel config options (without `CONFIG_`); any one of them will do.
    pub options: &'static [&'static str],
    pub need: Need,
    /// Only with cgroup v2 (`Some(true)`) or only without (`Some(false)`).
    pub only_on: Option<bool>,
    /// What needs it (shown when it is missing).
    pub why: &'static str,
}

impl Feature {
    pub fn name(&self) -> String {
        self.options
            .iter()
            .map(|o| format!("CONFIG_{o}"))
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

const fn required(options: &'static [&'static str], why: &'static str) -> Feature {
    Feature {
        options,
        need: Need::Required,
        only_on: None,
        why,
    }
}

/// Required only with cgroup v2 (`unified`) or only without.
const fn required_on(
    unified: bool,
    options: &'static [&'static str],
    why: &'static str,
) -> Feature {
    Feature {
        options,
        need: Need::Required,
        only_on: Some(unified),
        why,
    }
}

const fn optional(options: &'static [&'static str], why: &'static str) -> Feature {
    Feature {
        options,
        need: Need::Optional,
        only_on: None,
        why,
    }
}

pub const FEATURES: &[Feature] = &[
    required(&["NAMESPACES"], "containers"),
    required(&["NET_NS"], "pod networks"),
    required(&["PID_NS"], "containers"),
    required(&["IPC_NS"], "containers"),
    required(&["UTS_NS"], "containers"),
    required(&["CGROUPS"], "containers"),
    required(&["CGROUP_CPUACCT"], "kubelet's CPU accounting"),
    required_on(
        false,
        &["CGROUP_DEVICE"],
        "runc's device rules on cgroup v1",
    ),
    required_on(true, &["CGROUP_BPF"], "runc's device rules on cgroup v2"),
    required(&["CGROUP_FREEZER"], "runc pausing and killing containers"),
    required(&["CGROUP_SCHED"], "CPU requests and limits"),
    required(&["CPUSETS"], "kubelet's cpuset cgroups"),
    required(&["MEMCG"], "memory requests and limits"),
    required(&["CGROUP_PIDS"], "kubelet's pod PID limits"),
    required(&["KEYS"], "runc's session keyrings"),
    required(&["VETH"], "pod network interfaces (CNI bridge)"),
    required(&["BRIDGE"], "the pod bridge (CNI bridge)"),
    required(
        &["BRIDGE_NETFILTER"],
        "kube-proxy rules for bridged traffic",
    ),
    required(&["VXLAN"], "the node network (vxlan backend)"),
    required(&["NF_CONNTRACK"], "Services (kube-proxy)"),
    required(&["NF_NAT"], "Services and pod egress (NAT)"),
    required(&["IP_NF_FILTER"], "kube-proxy's iptables filter rules"),
    required(&["IP_NF_NAT"], "kube-proxy's iptables NAT rules"),
    required(
        &["IP_NF_TARGET_MASQUERADE", "NETFILTER_XT_TARGET_MASQUERADE"],
        "pod egress masquerading",
    ),
    required(
        &["NETFILTER_XT_MATCH_ADDRTYPE"],
        "kube-proxy NodePort rules",
    ),
    required(
        &["NETFILTER_XT_MATCH_CONNTRACK"],
        "kube-proxy and masquerade rules",
    ),
    required(
        &["NETFILTER_XT_MATCH_COMMENT"],
        "kube-proxy's rule comments",
    ),
    required(
        &["NETFILTER_XT_MATCH_MULTIPORT"],
        "kube-proxy and hostPort rules",
    ),
    required(
        &["NETFILTER_XT_MATCH_STATISTIC"],
        "kube-proxy's load balancing across endpoints",
    ),
    required(&["NETFILTER_XT_MARK"], "kube-proxy's packet marks"),
    required(
        &["NF_TABLES"],
        "network policy (--disable-network-policy does without)",
    ),
    required(&["OVERLAY_FS"], "containerd's overlayfs snapshotter"),
    required(&["POSIX_MQUEUE"], "containers' IPC"),
    optional(&["SECCOMP"], "seccomp profiles (RuntimeDefault)"),
    optional(&["CFS_BANDWIDTH"], "CPU limits (CFS quota)"),
    optional(&["CGROUP_HUGETLB"], "huge page limits"),
    optional(&["BLK_CGROUP"], "block I/O accounting"),
    optional(&["IP_SET"], "ipset-based rules"),
    optional(&["IP_VS"], "kube-proxy's ipvs mode"),
    optional(&["NETFILTER_XT_MATCH_IPVS"], "kube-proxy's ipvs mode"),
];
