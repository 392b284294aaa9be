use serde_json::{Value, json};

use super::*;

fn pod(ns: &str, name: &str, node: &str, ip: &str, labels: Value) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080},
                {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
            ]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
        }))
        .expect("pod"),
    )
}

fn namespace(name: &str, labels: Value) -> Arc<Namespace> {
    Arc::new(
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
            .expect("namespace"),
    )
}

fn policy(ns: &str, name: &str, spec: Value) -> Arc<NetworkPolicy> {
    Arc::new(
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns}, "spec": spec}))
            .expect("policy"),
    )
}

fn cluster() -> (Vec<Arc<Pod>>, Vec<Arc<Namespace>>) {
    let pods = vec![
        pod("a", "web", "n1", "10.42.0.10", json!({"app": "web"})),
        pod("a", "client", "n2", "10.42.1.11", json!({"app": "client"})),
        pod("b", "other", "n2", "10.42.1.12", json!({"app": "client"})),
        pod("b", "db", "n1", "10.42.0.13", json!({"app": "db"})),
    ];
    let namespaces = vec![
        namespace("a", json!({"team": "x"})),
        namespace("b", json!({"team": "y"})),
    ];
    (pods, namespaces)
}

/// The rules of one chain as "matches -> verdict" lines.
fn chain(compiled: &Compiled, name: &str) -> Vec<String> {
    compiled
        .ruleset
        .rules
        .iter()
        .filter(|r| r.chain == name)
        .map(|r| format!("{:?} -> {:?}", r.matches, r.verdict))
        .collect()
}

fn set(compiled: &Compiled, prefix: &str) -> Vec<String> {
    let sets: Vec<&Set> = compiled
        .ruleset
        .sets
        .iter()
        .filter(|s| s.name.starts_with(prefix))
        .collect();
    assert_eq!(sets.len(), 1, "{:?}", compiled.ruleset.sets);
    sets[0].elements.iter().map(|e| e.to_string()).collect()
}

#[test]
fn without_policies_the_table_only_passes_traffic() {
    let (pods, namespaces) = cluster();
    let compiled = compile("n1", &pods, &namespaces, &[]);
    assert_eq!(compiled.ruleset.chains.len(), 3);
    assert_eq!(
        chain(&compiled, "policy"),
        vec!["[CtState(6)] -> Accept".to_string()]
    );
    assert_eq!(compiled.isolated, (0, 0));
}

#[test]
fn default_deny_isolates_only_this_nodes_selected_pods() {
    let (pods, namespaces) = cluster();
    let deny = policy(
        "a",
        "deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    let compiled = compile("n1", &pods, &namespaces, &[deny]);
    // a/web is on n1; a/client is on n2; b/db is not in namespace a.
    assert_eq!(compiled.isolated, (1, 0));
    assert_eq!(
        chain(&compiled, "policy")[1],
        r#"[Destination(10.42.0.10/32)] -> Jump("ingress/a/web")"#
    );
    assert_eq!(chain(&compiled, "ingress/a/web"), vec!["[] -> Drop"]);
}

#[test]
fn pod_and_namespace_selectors_become_sets_of_the_pods_they_select() {
    let (pods, namespaces) = cluster();
    let allow = policy(
        "a",
        "allow",
        json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]},
            {"from": [{"namespaceSelector": {"matchLabels": {"team": "y"}}}]},
            {"from": [{"namespaceSelector": {"matchLabels": {"team": "y"}},
                       "podSelector": {"matchLabels": {"app": "db"}}}],
             "ports": [{"port": 5432}]},
        ]}),
    );
    let compiled = compile("n1", &pods, &namespaces, &[allow]);
    let rules = chain(&compiled, "ingress/a/web");
    assert_eq!(rules.len(), 4, "{rules:?}");
    let names: Vec<&str> = compiled
        .ruleset
        .sets
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    // Same-namespace clients only (b/other is a client in namespace b).
    let same_ns = compiled
        .ruleset
        .sets
        .iter()
        .find(|s| s.elements == vec!["10.42.1.11".parse::<IpAddr>().expect("ip")]);
    assert!(same_ns.is_some(), "{names:?}");
    // Namespace b: both of its pods; both selectors: only b/db.
    let whole_b: Vec<IpAddr> = vec![
        "10.42.0.13".parse().expect("ip"),
        "10.42.1.12".parse().expect("ip"),
    ];
    assert!(compiled.ruleset.sets.iter().any(|s| s.elements == whole_b));
    let db: Vec<IpAddr> = vec!["10.42.0.13".parse().expect("ip")];
    assert!(compiled.ruleset.sets.iter().any(|s| s.elements == db));
    assert!(
        rules[2].ends_with("DestinationPort(Tcp, 5432, 5432)] -> Return"),
        "{}",
        rules[2]
    );
    assert_eq!(rules[3], "[] -> Drop");
    assert!(compiled.findings.is_empty());
}

#[test]
fn ip_blocks_exclude_their_exceptions_and_ports_carry_protocol_and_range() {
    let (pods, namespaces) = cluster();
    let allow = policy(
        "a",
        "blocks",
        json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [
            {"to": [{"ipBlock": {"cidr": "192.168.0.0/24", "except": ["192.168.0.128/25"]}}],
             "ports": [{"protocol": "UDP", "port": 1000, "endPort": 2000}, {"protocol": "SCTP"}]},
        ]}),
    );
    let compiled = compile("n1", &pods, &namespaces, &[allow]);
    assert_eq!(compiled.isolated, (0, 1));
    assert_eq!(
        chain(&compiled, "policy")[1],
        r#"[Source(10.42.0.10/32)] -> Jump("egress/a/web")"#
    );
    assert_eq!(
        chain(&compiled, "egress/a/web"),
        vec![
            "[Destination(192.168.0.0/25), DestinationPort(Udp, 1000, 2000)] -> Return",
            "[Destination(192.168.0.0/25), Protocol(Sctp)] -> Return",
            "[] -> Drop",
        ]
    );
}

#[test]
fn named_ports_resolve_on_the_target_for_ingress_and_per_destination_for_egress() {
    let (mut pods, namespaces) = cluster();
    // A destination naming "http" differently.
    pods.push(Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "alt", "namespace": "b", "labels": {"app": "db"}},
            "spec": {"nodeName": "n2", "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 9090}]}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.42.1.20"}]},
        }))
        .expect("pod"),
    ));
    let ingress = policy(
        "a",
        "named-in",
        json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [
            {"ports": [{"port": "http"}, {"port": "dns", "protocol": "UDP"}, {"port": "missing"}]}]}),
    );
    let egress = policy(
        "a",
        "named-out",
        json!({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"], "egress": [
            {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "db"}}}],
             "ports": [{"port": "http"}]}]}),
    );
    let compiled = compile("n1", &pods, &namespaces, &[ingress, egress]);
    assert_eq!(
        chain(&compiled, "ingress/a/web"),
        vec![
            "[DestinationPort(Tcp, 8080, 8080)] -> Return",
            "[DestinationPort(Udp, 5353, 5353)] -> Return",
            "[] -> Drop",
        ]
    );
    // Destinations grouped by the number the name has on each: a set per
    // number.
    let egress: Vec<&Rule> = compiled
        .ruleset
        .rules
        .iter()
        .filter(|r| r.chain == "egress/a/web")
        .collect();
    assert_eq!(egress.len(), 3);
    for (rule, (ip, port)) in egress
        .iter()
        .zip([("10.42.0.13", 8080), ("10.42.1.20", 9090)])
    {
        let Match::DestinationIn(set, Family::V4) = &rule.matches[0] else {
            panic!("{rule:?}");
        };
        let set = compiled
            .ruleset
            .sets
            .iter()
            .find(|s| &s.name == set)
            .expect("set");
        assert_eq!(set.elements, vec![ip.parse::<IpAddr>().expect("ip")]);
        assert_eq!(
            rule.matches[1],
            Match::DestinationPort(Protocol::Tcp, port, port)
        );
    }
}

#[test]
fn a_namespace_selector_matching_nothing_is_a_finding_and_allows_nothing() {
    let (pods, namespaces) = cluster();
    let missing = policy(
        "a",
        "to-missing",
        json!({"podSelector": {}, "ingress": [{"from": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nope"}}}]}]}),
    );
    let compiled = compile("n1", &pods, &namespaces, &[missing]);
    assert_eq!(chain(&compiled, "ingress/a/web"), vec!["[] -> Drop"]);
    let finding = compiled.findings.iter().next().expect("a finding");
    assert_eq!(finding.reason, "NoMatchingNamespace");
    assert_eq!(
        finding.message,
        "an ingress peer's namespaceSelector {kubernetes.io/metadata.name=nope} selects no namespace; it allows nothing"
    );
}

#[test]
fn host_network_and_finished_pods_are_neither_peers_nor_targets() {
    let (mut pods, namespaces) = cluster();
    let mut host = (*pod("a", "host", "n1", "10.0.0.1", json!({"app": "client"}))).clone();
    if let Some(spec) = host.spec.as_mut() {
        spec.host_network = Some(true);
    }
    let mut done = (*pod("a", "done", "n2", "10.42.1.99", json!({"app": "client"}))).clone();
    if let Some(status) = done.status.as_mut() {
        status.phase = Some("Succeeded".into());
    }
    pods.push(Arc::new(host));
    pods.push(Arc::new(done));
    let allow = policy(
        "a",
        "allow",
        json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}),
    );
    let compiled = compile("n1", &pods, &namespaces, &[allow]);
    assert_eq!(
        compiled.isolated,
        (1, 0),
        "only a/web; not the host-network pod"
    );
    assert_eq!(set(&compiled, "peers-"), vec!["10.42.1.11"]);
}

#[test]
fn the_ruleset_is_the_same_whatever_order_the_caches_hold() {
    let (pods, namespaces) = cluster();
    let policies = vec![
        policy(
            "a",
            "p1",
            json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}),
        ),
        policy(
            "b",
            "p2",
            json!({"podSelector": {}, "policyTypes": ["Egress"]}),
        ),
    ];
    let first = compile("n1", &pods, &namespaces, &policies).ruleset;
    let mut reversed_pods = pods.clone();
    reversed_pods.reverse();
    let mut reversed_policies = policies.clone();
    reversed_policies.reverse();
    let second = compile("n1", &reversed_pods, &namespaces, &reversed_policies).ruleset;
    assert_eq!(first, second);
}
