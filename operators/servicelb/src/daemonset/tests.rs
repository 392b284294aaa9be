use super::*;
use serde_json::json;

pub(crate) fn service(spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {
            "name": "web", "namespace": "shop",
            "uid": "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
        },
        "spec": spec,
    }))
    .expect("service")
}

fn settings() -> Settings {
    Settings {
        namespace: "kube-system".into(),
        image: "docker.io/k3r/k3r-operators:v0.1.0".into(),
    }
}

fn env(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            let value = match &e["value"] {
                Value::String(s) => s.clone(),
                _ => format!(
                    "fieldRef:{}",
                    e["valueFrom"]["fieldRef"]["fieldPath"]
                        .as_str()
                        .unwrap_or("")
                ),
            };
            (e["name"].as_str().expect("name").to_string(), value)
        })
        .collect()
}

#[test]
fn names_as_k3s_does() {
    assert_eq!(name(&service(json!({}))), "svclb-web-0a1b2c3d");
    let mut long = service(json!({}));
    // 47 characters then '-', then more: cut at 48 and the trailing '-' dropped.
    long.metadata.name = Some(format!("{}-{}", "a".repeat(47), "b".repeat(10)));
    assert_eq!(name(&long), format!("svclb-{}-0a1b2c3d", "a".repeat(47)));
}

#[test]
fn one_container_per_port_forwarding_to_the_cluster_ips() {
    let svc = service(json!({
        "type": "LoadBalancer",
        "clusterIP": "10.43.7.7", "clusterIPs": ["10.43.7.7"],
        "ipFamilies": ["IPv4"],
        "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080},
            {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053},
        ],
    }));
    let (ds, skipped) = desired(&svc, &settings(), &NodeMode::default());
    let ds = ds.expect("a DaemonSet");
    assert!(skipped.is_empty());
    assert_eq!(ds["metadata"]["name"], "svclb-web-0a1b2c3d");
    assert_eq!(ds["metadata"]["namespace"], "kube-system");
    assert_eq!(ds["metadata"]["labels"][NODE_SELECTOR_LABEL], "false");
    assert_eq!(ds["metadata"]["labels"][SVC_NAME_LABEL], "web");
    assert_eq!(ds["metadata"]["labels"][SVC_NAMESPACE_LABEL], "shop");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], DEFAULT_PRIORITY_CLASS);
    assert_eq!(pod["serviceAccountName"], "svclb");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert!(pod.get("nodeSelector").is_none());
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0]["name"], "lb-tcp-80");
    assert_eq!(containers[0]["ports"][0]["hostPort"], 80);
    assert_eq!(containers[0]["ports"][0]["containerPort"], 80);
    assert_eq!(containers[0]["args"], json!(["svclb"]));
    assert_eq!(
        env(&containers[0]),
        [
            ("SRC_PORT".to_string(), "80".to_string()),
            ("SRC_RANGES".into(), "0.0.0.0/0".into()),
            ("DEST_PROTO".into(), "TCP".into()),
            ("DEST_PORT".into(), "80".into()),
            ("DEST_IPS".into(), "10.43.7.7".into()),
        ]
    );
    assert_eq!(containers[1]["name"], "lb-udp-53");
    assert_eq!(containers[1]["ports"][0]["protocol"], "UDP");
    assert_eq!(
        containers[1]["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
}

#[test]
fn local_traffic_goes_to_the_node_port_on_the_node_itself() {
    let svc = service(json!({
        "type": "LoadBalancer", "externalTrafficPolicy": "Local",
        "clusterIPs": ["10.43.7.7", "fd00::7"], "ipFamilies": ["IPv4", "IPv6"],
        "loadBalancerSourceRanges": ["10.213.0.11/32", " 192.168.0.0/16 "],
        "ports": [{"port": 443, "protocol": "TCP", "nodePort": 30443}],
    }));
    let (ds, _) = desired(&svc, &settings(), &NodeMode::default());
    let ds = ds.expect("a DaemonSet");
    let container = &ds["spec"]["template"]["spec"]["containers"][0];
    let env = env(container);
    assert!(env.contains(&("DEST_PORT".into(), "30443".into())));
    assert!(env.contains(&("DEST_IPS".into(), "fieldRef:status.hostIPs".into())));
    assert!(env.contains(&("SRC_RANGES".into(), "10.213.0.11/32,192.168.0.0/16".into())));
}

#[test]
fn default_range_covers_ipv6_for_an_ipv6_service() {
    let svc = service(json!({
        "type": "LoadBalancer", "clusterIPs": ["fd00::7"], "ipFamilies": ["IPv6"],
        "ports": [{"port": 80}],
    }));
    let (ds, _) = desired(&svc, &settings(), &NodeMode::default());
    let env = env(&ds.expect("ds")["spec"]["template"]["spec"]["containers"][0]);
    assert!(env.contains(&("SRC_RANGES".into(), "0.0.0.0/0,::/0".into())));
    assert!(
        env.contains(&("DEST_PROTO".into(), "TCP".into())),
        "TCP is the default protocol"
    );
}

#[test]
fn unforwardable_ports_are_skipped_with_a_reason() {
    let svc = service(json!({
        "type": "LoadBalancer", "clusterIPs": ["10.43.7.7"],
        "ports": [
            {"port": 9000, "protocol": "SCTP", "nodePort": 30900},
            {"port": 80, "protocol": "TCP", "nodePort": 30080},
        ],
    }));
    let (ds, skipped) = desired(&svc, &settings(), &NodeMode::default());
    assert_eq!(
        skipped,
        [Skipped(
            "port 9000 is SCTP: svclb forwards TCP and UDP only".into()
        )]
    );
    let containers =
        ds.expect("the TCP port still served")["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(containers.as_array().map(Vec::len), Some(1));
    let only_sctp = service(json!({
        "type": "LoadBalancer", "clusterIPs": ["10.43.7.7"],
        "ports": [{"port": 9000, "protocol": "SCTP"}],
    }));
    let (ds, skipped) = desired(&only_sctp, &settings(), &NodeMode::default());
    assert!(ds.is_none());
    assert_eq!(skipped.len(), 1);
    let local_without_node_port = service(json!({
        "type": "LoadBalancer", "externalTrafficPolicy": "Local", "clusterIPs": ["10.43.7.7"],
        "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}],
    }));
    let (ds, skipped) = desired(&local_without_node_port, &settings(), &NodeMode::default());
    assert!(ds.is_none());
    assert_eq!(
        skipped[0].0,
        "port 80 has no NodePort, which externalTrafficPolicy Local forwards to"
    );
}

#[test]
fn allow_list_mode_pools_and_priority_class() {
    let mut svc = service(json!({
        "type": "LoadBalancer", "clusterIPs": ["10.43.7.7"], "ports": [{"port": 80}],
    }));
    svc.metadata.labels = Some([(POOL_LABEL.to_string(), "blue".to_string())].into());
    svc.metadata.annotations = Some([(PRIORITY_ANNOTATION.to_string(), "high".to_string())].into());
    // Pools apply in allow-list mode only, as in k3s.
    let (open, _) = desired(&svc, &settings(), &NodeMode::default());
    let open = open.expect("ds");
    assert!(open["spec"]["template"]["spec"].get("affinity").is_none());
    assert_eq!(
        open["spec"]["template"]["spec"]["priorityClassName"],
        "high"
    );
    let (listed, _) = desired(&svc, &settings(), &NodeMode { allow_list: true });
    let listed = listed.expect("ds");
    let pod = &listed["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"], json!({ENABLE_LB_LABEL: "true"}));
    assert_eq!(listed["metadata"]["labels"][NODE_SELECTOR_LABEL], "true");
    let terms = &pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    assert_eq!(
        terms,
        &json!([
            {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": ["blue"]}]},
            {"matchExpressions": [{"key": "svccontroller.k3s.cattle.io/lbpool.blue", "operator": "Exists"}]},
        ])
    );
    assert_ne!(
        open["metadata"]["annotations"][SPEC_HASH_ANNOTATION],
        listed["metadata"]["annotations"][SPEC_HASH_ANNOTATION],
        "a changed DaemonSet has a changed hash"
    );
    let (again, _) = desired(&svc, &settings(), &NodeMode { allow_list: true });
    assert_eq!(
        again.expect("ds"),
        listed,
        "the same inputs give the same object"
    );
}
