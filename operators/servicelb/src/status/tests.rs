use super::*;
use serde_json::json;

fn node(name: &str, addresses: &[(&str, &str)]) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "status": {"addresses": addresses.iter().map(|(t, a)| json!({"type": t, "address": a})).collect::<Vec<_>>()},
    }))
    .expect("node")
}

fn pod(node: &str, ready: bool, ip: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("svclb-{node}")},
        "spec": {"nodeName": node, "containers": []},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
    }))
    .expect("pod")
}

fn service(families: &[&str]) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"type": "LoadBalancer", "ipFamilies": families},
    }))
    .expect("service")
}

#[test]
fn ready_pods_nodes_internal_ips_sorted_as_text() {
    let nodes = [
        node("a", &[("InternalIP", "10.213.0.9"), ("Hostname", "a")]),
        node("b", &[("InternalIP", "10.213.0.11")]),
        node("c", &[("InternalIP", "10.213.0.12")]),
    ];
    let map: BTreeMap<String, &Node> = nodes.iter().map(|n| (n.name_any(), n)).collect();
    let pods = [
        pod("a", true, "10.42.0.5"),
        pod("b", true, "10.42.1.5"),
        pod("c", false, "10.42.2.5"),
    ];
    assert_eq!(
        ingress_ips(&service(&["IPv4"]), &pods, &map, None),
        ["10.213.0.11", "10.213.0.9"]
    );
}

#[test]
fn external_ips_win_and_families_filter() {
    let nodes = [
        node(
            "a",
            &[("InternalIP", "10.213.0.9"), ("InternalIP", "fd00::9")],
        ),
        node(
            "b",
            &[
                ("InternalIP", "10.213.0.11"),
                ("ExternalIP", "203.0.113.11"),
                ("ExternalIP", "2001:db8::11"),
            ],
        ),
    ];
    let map: BTreeMap<String, &Node> = nodes.iter().map(|n| (n.name_any(), n)).collect();
    let pods = [pod("a", true, "10.42.0.5"), pod("b", true, "10.42.1.5")];
    assert_eq!(
        ingress_ips(&service(&["IPv4"]), &pods, &map, None),
        ["203.0.113.11"]
    );
    assert_eq!(
        ingress_ips(&service(&["IPv6", "IPv4"]), &pods, &map, None),
        ["2001:db8::11", "203.0.113.11"]
    );
}

#[test]
fn local_policy_keeps_nodes_with_ready_pod_endpoints() {
    let nodes = [
        node("a", &[("InternalIP", "10.213.0.9")]),
        node("b", &[("InternalIP", "10.213.0.11")]),
    ];
    let map: BTreeMap<String, &Node> = nodes.iter().map(|n| (n.name_any(), n)).collect();
    let pods = [pod("a", true, "10.42.0.5"), pod("b", true, "10.42.1.5")];
    let slices: Vec<EndpointSlice> = vec![serde_json::from_value(json!({
        "metadata": {"name": "web-x", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.42.1.9"], "nodeName": "b", "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "w1"}},
            {"addresses": ["10.42.0.9"], "nodeName": "a", "conditions": {"ready": false}, "targetRef": {"kind": "Pod", "name": "w2"}},
        ],
    }))
    .expect("slice")];
    let svc = service(&["IPv4"]);
    let ready = nodes_with_ready_endpoints(&svc, &slices);
    assert_eq!(ready.into_iter().collect::<Vec<_>>(), ["b"]);
    let ready = nodes_with_ready_endpoints(&svc, &slices);
    assert_eq!(
        ingress_ips(&svc, &pods, &map, Some(&ready)),
        ["10.213.0.11"]
    );
}

#[test]
fn scheduling_failure_is_the_reason() {
    let pending: Pod = serde_json::from_value(json!({
        "metadata": {"name": "svclb-x"},
        "status": {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports.",
        }]},
    }))
    .expect("pod");
    assert_eq!(
        unschedulable_reason([&pending]).as_deref(),
        Some(
            "0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports."
        )
    );
    assert_eq!(unschedulable_reason([&pod("a", true, "10.42.0.5")]), None);
}
