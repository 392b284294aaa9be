//! NetworkPolicies, pods and namespaces → the node's nftables ruleset.
//! Pure: the controller hands in its caches, this says what the kernel
//! should hold.
//!
//! Shape of the table (`inet k3r`):
//! - base chains `forward` and `input` jump to `policy`: pod-to-pod and
//!   pod-to-outside traffic is forwarded; a pod's traffic to its own node
//!   arrives at input. Traffic the node itself sends to its pods leaves by
//!   output and is never filtered (kubelet probes, host-network pods), as
//!   upstream requires;
//! - `policy` accepts established and related flows, then sends traffic
//!   from a pod isolated for egress to its `egress/<ns>/<pod>` chain and
//!   traffic to a pod isolated for ingress to its `ingress/<ns>/<pod>`
//!   chain;
//! - a pod's chain returns for every connection some rule allows and drops
//!   (counted) the rest;
//! - pods selected by a peer's selectors are a named set per selector
//!   (`peers-<hash>-v4`/`-v6`), so a pod relabelled or started changes
//!   set elements, not rules.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use k3r_nftables::{Chain, Family, Hook, Match, Protocol, Rule, Ruleset, Set, Verdict, ct};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use k3r_reconciler::selector;

use crate::cidr;

pub const TABLE: &str = k3r_nftables::K3R_TABLE;
/// Before the filter chains of iptables (kube-proxy, the CNI plugins), so
/// a denied packet costs nothing further.
const PRIORITY: i32 = -10;
const POLICY_CHAIN: &str = "policy";
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Something wrong with a policy that the API server let through, reported
/// as a Warning Event on it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub namespace: String,
    pub policy: String,
    pub reason: &'static str,
    pub message: String,
}

pub struct Compiled {
    pub ruleset: Ruleset,
    pub findings: BTreeSet<Finding>,
    /// Pods of this node isolated for ingress and for egress.
    pub isolated: (usize, usize),
}

/// A pod as a peer or a target: only pods with addresses of their own.
struct PodView<'a> {
    pod: &'a Pod,
    namespace: String,
    ips: Vec<IpAddr>,
}

pub fn compile(
    node: &str,
    pods: &[Arc<Pod>],
    namespaces: &[Arc<Namespace>],
    policies: &[Arc<NetworkPolicy>],
) -> Compiled {
    let pods: Vec<PodView<'_>> = pods.iter().filter_map(|p| view(p)).collect();
    let namespace_labels: BTreeMap<String, BTreeMap<String, String>> = namespaces
        .iter()
        .map(|ns| {
            let mut labels = ns.labels().clone();
            labels.insert(NAME_LABEL.into(), ns.name_any());
            (ns.name_any(), labels)
        })
        .collect();
    let mut policies: Vec<&NetworkPolicy> = policies.iter().map(|p| p.as_ref()).collect();
    policies.sort_by_key(|p| (p.namespace(), p.name_any()));
    let mut local: Vec<&PodView<'_>> = pods
        .iter()
        .filter(|p| p.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .collect();
    local.sort_by_key(|p| (p.namespace.clone(), p.pod.name_any()));

    let mut builder = TableBuilder {
        pods: &pods,
        namespace_labels: &namespace_labels,
        sets: BTreeMap::new(),
        selector_sets: BTreeMap::new(),
        chains: Vec::new(),
        rules: Vec::new(),
        dispatch: Vec::new(),
        findings: BTreeSet::new(),
    };
    let mut isolated = (0, 0);
    for pod in local {
        let selecting: Vec<&NetworkPolicy> = policies
            .iter()
            .copied()
            .filter(|p| p.namespace().as_deref() == Some(&pod.namespace))
            .filter(|p| {
                // An absent podSelector, like an empty one, selects all.
                p.spec.as_ref().is_some_and(|spec| {
                    spec.pod_selector
                        .as_ref()
                        .is_none_or(|s| selector::matches(s, pod.pod.metadata.labels.as_ref()))
                })
            })
            .collect();
        for direction in [Direction::Ingress, Direction::Egress] {
            let applying: Vec<&NetworkPolicy> = selecting
                .iter()
                .copied()
                .filter(|p| has_type(p, direction))
                .collect();
            if applying.is_empty() {
                continue;
            }
            match direction {
                Direction::Ingress => isolated.0 += 1,
                Direction::Egress => isolated.1 += 1,
            }
            builder.isolate(pod, direction, &applying);
        }
    }
    let TableBuilder {
        sets,
        mut chains,
        rules,
        dispatch,
        findings,
        ..
    } = builder;
    let mut all_rules = vec![
        Rule::new("forward", vec![], Verdict::Jump(POLICY_CHAIN.into())),
        Rule::new("input", vec![], Verdict::Jump(POLICY_CHAIN.into())),
        Rule::new(
            POLICY_CHAIN,
            vec![Match::CtState(ct::ESTABLISHED | ct::RELATED)],
            Verdict::Accept,
        ),
    ];
    // Egress dispatch first: a connection between two pods of this node
    // passes the sender's egress and then the receiver's ingress.
    let (egress, ingress): (Vec<Rule>, Vec<Rule>) = dispatch
        .into_iter()
        .partition(|r| r.matches.iter().any(|m| matches!(m, Match::Source(_))));
    all_rules.extend(egress);
    all_rules.extend(ingress);
    all_rules.extend(rules);
    let mut base = vec![
        Chain {
            name: "forward".into(),
            base: Some((Hook::Forward, PRIORITY)),
        },
        Chain {
            name: "input".into(),
            base: Some((Hook::Input, PRIORITY)),
        },
        Chain {
            name: POLICY_CHAIN.into(),
            base: None,
        },
    ];
    base.append(&mut chains);
    Compiled {
        ruleset: Ruleset {
            table: TABLE.into(),
            chains: base,
            sets: sets.into_values().collect(),
            rules: all_rules,
        },
        findings,
        isolated,
    }
}

fn view(pod: &Pod) -> Option<PodView<'_>> {
    let spec = pod.spec.as_ref()?;
    let status = pod.status.as_ref()?;
    if spec.host_network == Some(true) {
        return None;
    }
    // A finished pod's address may already be another pod's.
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let mut ips: Vec<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.ip.parse().ok())
        .collect();
    if ips.is_empty() {
        ips.extend(
            status
                .pod_ip
                .as_deref()
                .and_then(|ip| ip.parse::<IpAddr>().ok()),
        );
    }
    if ips.is_empty() {
        return None;
    }
    Some(PodView {
        pod,
        namespace: pod.namespace()?,
        ips,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    /// Matches on the peer's address (the source for ingress).
    fn peer_net(self, net: IpNet) -> Match {
        match self {
            Direction::Ingress => Match::Source(net),
            Direction::Egress => Match::Destination(net),
        }
    }

    fn peer_set(self, set: String, family: Family) -> Match {
        match self {
            Direction::Ingress => Match::SourceIn(set, family),
            Direction::Egress => Match::DestinationIn(set, family),
        }
    }
}

/// Policy types as the API server defaults them: Ingress always, Egress
/// when the policy has egress rules.
fn has_type(policy: &NetworkPolicy, direction: Direction) -> bool {
    let Some(spec) = policy.spec.as_ref() else {
        return false;
    };
    match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(direction.name())),
        _ => match direction {
            Direction::Ingress => true,
            Direction::Egress => spec.egress.as_ref().is_some_and(|e| !e.is_empty()),
        },
    }
}

/// One rule of a policy, direction-neutral.
struct PolicyRule<'a> {
    peers: Option<&'a Vec<NetworkPolicyPeer>>,
    ports: Option<&'a Vec<NetworkPolicyPort>>,
}

fn rules_of(policy: &NetworkPolicy, direction: Direction) -> Vec<PolicyRule<'_>> {
    let Some(spec) = policy.spec.as_ref() else {
        return Vec::new();
    };
    match direction {
        Direction::Ingress => spec
            .ingress
            .iter()
            .flatten()
            .map(|r| PolicyRule {
                peers: r.from.as_ref(),
                ports: r.ports.as_ref(),
            })
            .collect(),
        Direction::Egress => spec
            .egress
            .iter()
            .flatten()
            .map(|r| PolicyRule {
                peers: r.to.as_ref(),
                ports: r.ports.as_ref(),
            })
            .collect(),
    }
}

fn protocol(port: &NetworkPolicyPort) -> Option<Protocol> {
    match port.protocol.as_deref().unwrap_or("TCP") {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => None,
    }
}

/// The numbers a named port has on `pod` for `protocol`.
fn named_port(pod: &Pod, name: &str, protocol: Protocol) -> Vec<u16> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let mut numbers: Vec<u16> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.name.as_deref() == Some(name))
        .filter(|p| {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            proto == protocol_name(protocol)
        })
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}

fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

struct TableBuilder<'a> {
    pods: &'a [PodView<'a>],
    namespace_labels: &'a BTreeMap<String, BTreeMap<String, String>>,
    sets: BTreeMap<String, Set>,
    /// The sets of each peer selector already looked up (by set key).
    selector_sets: BTreeMap<String, Vec<(String, Family)>>,
    chains: Vec<Chain>,
    rules: Vec<Rule>,
    dispatch: Vec<Rule>,
    findings: BTreeSet<Finding>,
}

impl TableBuilder<'_> {
    fn isolate(&mut self, pod: &PodView<'_>, direction: Direction, policies: &[&NetworkPolicy]) {
        let chain = chain_name(direction, &pod.namespace, &pod.pod.name_any());
        let label = format!("{}/{}", pod.namespace, pod.pod.name_any());
        for ip in &pod.ips {
            let own = host_net(*ip);
            let m = match direction {
                Direction::Ingress => Match::Destination(own),
                Direction::Egress => Match::Source(own),
            };
            self.dispatch.push(
                Rule::new(POLICY_CHAIN, vec![m], Verdict::Jump(chain.clone()))
                    .comment(format!("{} of {label}", direction.name())),
            );
        }
        self.chains.push(Chain {
            name: chain.clone(),
            base: None,
        });
        for policy in policies {
            let namespace = policy.namespace().unwrap_or_default();
            let name = policy.name_any();
            for (index, rule) in rules_of(policy, direction).into_iter().enumerate() {
                let comment = format!("{namespace}/{name} {}[{index}]", direction.name());
                for matches in self.rule_matches(pod, direction, policy, &rule) {
                    self.rules
                        .push(Rule::new(&chain, matches, Verdict::Return).comment(comment.clone()));
                }
            }
        }
        self.rules.push(
            Rule::new(&chain, vec![], Verdict::Drop)
                .counted()
                .comment(format!("{} of {label} not allowed", direction.name())),
        );
    }

    /// Every combination of peer and port one policy rule allows, each as
    /// the matches of one nftables rule.
    fn rule_matches(
        &mut self,
        target: &PodView<'_>,
        direction: Direction,
        policy: &NetworkPolicy,
        rule: &PolicyRule<'_>,
    ) -> Vec<Vec<Match>> {
        let namespace = policy.namespace().unwrap_or_default();
        let peers: Vec<Vec<Match>> = match rule.peers.filter(|p| !p.is_empty()) {
            None => vec![vec![]],
            Some(peers) => peers
                .iter()
                .flat_map(|peer| self.peer_matches(&namespace, policy, direction, peer))
                .collect(),
        };
        let Some(ports) = rule.ports.filter(|p| !p.is_empty()) else {
            return peers;
        };
        let mut combined = Vec::new();
        for port in ports {
            let Some(protocol) = protocol(port) else {
                continue;
            };
            let numbers: Vec<(u16, u16)> = match &port.port {
                None => {
                    for peer in &peers {
                        let mut m = peer.clone();
                        m.push(Match::Protocol(protocol));
                        combined.push(m);
                    }
                    continue;
                }
                Some(IntOrString::Int(first)) => {
                    let Ok(first) = u16::try_from(*first) else {
                        continue;
                    };
                    let last = port
                        .end_port
                        .and_then(|e| u16::try_from(e).ok())
                        .unwrap_or(first);
                    vec![(first, last.max(first))]
                }
                Some(IntOrString::String(name)) => match direction {
                    // The target's own port of that name.
                    Direction::Ingress => named_port(target.pod, name, protocol)
                        .into_iter()
                        .map(|n| (n, n))
                        .collect(),
                    // Each destination pod's port of that name.
                    Direction::Egress => {
                        combined.extend(self.named_egress(&namespace, rule, name, protocol));
                        continue;
                    }
                },
            };
            for (first, last) in numbers {
                for peer in &peers {
                    let mut m = peer.clone();
                    m.push(Match::DestinationPort(protocol, first, last));
                    combined.push(m);
                }
            }
        }
        combined
    }

    fn peer_matches(
        &mut self,
        namespace: &str,
        policy: &NetworkPolicy,
        direction: Direction,
        peer: &NetworkPolicyPeer,
    ) -> Vec<Vec<Match>> {
        if let Some(block) = &peer.ip_block {
            return block_nets(block)
                .into_iter()
                .map(|net| vec![direction.peer_net(net)])
                .collect();
        }
        if peer.pod_selector.is_none() && peer.namespace_selector.is_none() {
            return Vec::new();
        }
        if let Some(ns_selector) = &peer.namespace_selector
            && !self
                .namespace_labels
                .values()
                .any(|labels| selector::matches(ns_selector, Some(labels)))
        {
            self.findings.insert(Finding {
                namespace: namespace.to_string(),
                policy: policy.name_any(),
                reason: "NoMatchingNamespace",
                message: format!(
                    "an {} peer's namespaceSelector {} selects no namespace; it allows nothing",
                    direction.name(),
                    describe(ns_selector)
                ),
            });
        }
        let key = format!(
            "{}|{}|{}",
            if peer.namespace_selector.is_some() {
                ""
            } else {
                namespace
            },
            peer.pod_selector.as_ref().map(describe).unwrap_or_default(),
            peer.namespace_selector
                .as_ref()
                .map(describe)
                .unwrap_or_default(),
        );
        // Every pod a policy selects on this node meets the same peers:
        // each selector's pods are looked up once.
        if let Some(sets) = self.selector_sets.get(&key) {
            return sets
                .iter()
                .map(|(name, family)| vec![direction.peer_set(name.clone(), *family)])
                .collect();
        }
        let mut by_family: BTreeMap<Family, BTreeSet<IpAddr>> = BTreeMap::new();
        for pod in self.peer_pods(namespace, peer) {
            for ip in &pod.ips {
                by_family.entry(Family::of(ip)).or_default().insert(*ip);
            }
        }
        let hash = hex12(&key);
        let mut sets = Vec::new();
        for (family, ips) in by_family {
            let name = format!("peers-{hash}-{}", family_suffix(family));
            self.sets.entry(name.clone()).or_insert_with(|| Set {
                name: name.clone(),
                family,
                elements: ips.into_iter().collect(),
            });
            sets.push((name, family));
        }
        let matches = sets
            .iter()
            .map(|(name, family)| vec![direction.peer_set(name.clone(), *family)])
            .collect();
        self.selector_sets.insert(key, sets);
        matches
    }

    /// The pods a selector peer selects (policy namespace `namespace`).
    fn peer_pods(&self, namespace: &str, peer: &NetworkPolicyPeer) -> Vec<&PodView<'_>> {
        self.pods
            .iter()
            .filter(|pod| match &peer.namespace_selector {
                None => pod.namespace == namespace,
                Some(ns_selector) => {
                    let labels = self.namespace_labels.get(&pod.namespace);
                    match labels {
                        Some(labels) => selector::matches(ns_selector, Some(labels)),
                        // Not yet cached: only "every namespace" selects it.
                        None => selector::matches(ns_selector, None),
                    }
                }
            })
            .filter(|pod| {
                peer.pod_selector
                    .as_ref()
                    .is_none_or(|s| selector::matches(s, pod.pod.metadata.labels.as_ref()))
            })
            .collect()
    }

    /// Egress to a named port: per destination pod that has the name.
    fn named_egress(
        &mut self,
        namespace: &str,
        rule: &PolicyRule<'_>,
        name: &str,
        protocol: Protocol,
    ) -> Vec<Vec<Match>> {
        let destinations: Vec<&PodView<'_>> = match rule.peers.filter(|p| !p.is_empty()) {
            None => self.pods.iter().collect(),
            Some(peers) => {
                let mut chosen: Vec<&PodView<'_>> = Vec::new();
                for peer in peers {
                    let pods: Vec<&PodView<'_>> = match &peer.ip_block {
                        Some(block) => {
                            let nets = block_nets(block);
                            self.pods
                                .iter()
                                .filter(|p| {
                                    p.ips.iter().any(|ip| nets.iter().any(|n| n.contains(ip)))
                                })
                                .collect()
                        }
                        None => self.peer_pods(namespace, peer),
                    };
                    for pod in pods {
                        if !chosen.iter().any(|c| std::ptr::eq(*c, pod)) {
                            chosen.push(pod);
                        }
                    }
                }
                chosen
            }
        };
        // Destinations grouped by the number the name has on them: one set
        // (named after its contents) and one rule per number and family.
        let mut groups: BTreeMap<(u16, Family), BTreeSet<IpAddr>> = BTreeMap::new();
        for pod in destinations {
            for number in named_port(pod.pod, name, protocol) {
                for ip in &pod.ips {
                    groups
                        .entry((number, Family::of(ip)))
                        .or_default()
                        .insert(*ip);
                }
            }
        }
        let mut out = Vec::new();
        for ((number, family), ips) in groups {
            let set = self.content_set(family, ips);
            out.push(vec![
                Match::DestinationIn(set, family),
                Match::DestinationPort(protocol, number, number),
            ]);
        }
        out
    }

    /// A set of exactly these addresses, named after them (so equal
    /// contents are one set).
    fn content_set(&mut self, family: Family, ips: BTreeSet<IpAddr>) -> String {
        let text: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
        let name = format!(
            "addresses-{}-{}",
            hex12(&text.join(",")),
            family_suffix(family)
        );
        self.sets.entry(name.clone()).or_insert_with(|| Set {
            name: name.clone(),
            family,
            elements: ips.into_iter().collect(),
        });
        name
    }
}

fn family_suffix(family: Family) -> &'static str {
    match family {
        Family::V4 => "v4",
        Family::V6 => "v6",
    }
}

fn block_nets(block: &IPBlock) -> Vec<IpNet> {
    let Ok(cidr) = block.cidr.parse::<IpNet>() else {
        return Vec::new();
    };
    let excepts: Vec<IpNet> = block
        .except
        .iter()
        .flatten()
        .filter_map(|e| e.parse().ok())
        .collect();
    cidr::subtract(cidr, &excepts)
}

fn chain_name(direction: Direction, namespace: &str, pod: &str) -> String {
    let name = format!("{}/{namespace}/{pod}", direction.name());
    // nf_tables names are at most 255 bytes.
    if name.len() <= 250 {
        name
    } else {
        format!("{}/{}", direction.name(), hex12(&name))
    }
}

fn hex12(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// A selector in a short, stable text form (for set keys and messages).
fn describe(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default().join(",");
        parts.push(format!("{} {} ({values})", e.key, e.operator));
    }
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests;
