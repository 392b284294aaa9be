use super::*;
use k3r_reconciler::mock;
use kube::runtime::reflector;
use serde_json::Value;

struct Caches {
    daemonsets: reflector::store::Writer<DaemonSet>,
    pods: reflector::store::Writer<Pod>,
    nodes: reflector::store::Writer<Node>,
}

fn context(client: kube::Client) -> (Arc<Context>, Caches) {
    let (daemonsets, ds_writer) = reflector::store::<DaemonSet>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (nodes, node_writer) = reflector::store::<Node>();
    let (slices, _) = reflector::store::<EndpointSlice>();
    let context = Context {
        recorder: Runtime::new(client.clone()).recorder(NAME),
        client,
        settings: Settings {
            namespace: "kube-system".into(),
            image: "docker.io/k3r/k3r-operators:v0.1.0".into(),
        },
        daemonsets,
        pods,
        nodes,
        slices,
        warned: Mutex::default(),
    };
    (
        Arc::new(context),
        Caches {
            daemonsets: ds_writer,
            pods: pod_writer,
            nodes: node_writer,
        },
    )
}

fn api(request: &mock::Recorded) -> (u16, Value) {
    match (request.method.as_str(), request.route()) {
        ("GET", "/api/v1/namespaces/kube-system") => (
            200,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}),
        ),
        _ => (200, request.body.clone()),
    }
}

fn service(extra: Value) -> Service {
    let mut object = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "uid": "0a1b2c3d-4e5f-6789-abcd-ef0123456789"},
        "spec": {"type": "LoadBalancer", "clusterIPs": ["10.43.7.7"], "ipFamilies": ["IPv4"],
                 "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]},
    });
    if let (Value::Object(object), Value::Object(extra)) = (&mut object, extra) {
        object.extend(extra);
    }
    serde_json::from_value(object).expect("service")
}

fn add<K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned>(
    writer: &mut reflector::store::Writer<K>,
    value: Value,
) {
    let object: K = serde_json::from_value(value).expect("object");
    writer.apply_watcher_event(&watcher::Event::Apply(object));
}

fn non_event_lines(api: &mock::MockApi) -> Vec<String> {
    api.lines()
        .into_iter()
        .filter(|l| !l.contains("/events"))
        .collect()
}

#[tokio::test]
async fn a_new_load_balancer_gets_its_daemonset_and_an_event() {
    let (client, server) = mock::client(api);
    let (context, _caches) = context(client);
    let next = reconcile(Arc::new(service(json!({}))), context)
        .await
        .expect("reconcile");
    assert_eq!(next, Next::Done);
    assert_eq!(
        non_event_lines(&server),
        [
            "GET /api/v1/namespaces/kube-system",
            "PATCH /api/v1/namespaces/kube-system/serviceaccounts/svclb",
            "PATCH /apis/apps/v1/namespaces/kube-system/daemonsets/svclb-web-0a1b2c3d",
        ]
    );
    let requests = server.requests();
    let ds = requests
        .iter()
        .find(|r| r.route().ends_with("svclb-web-0a1b2c3d"))
        .expect("daemonset apply");
    assert!(ds.path.contains("fieldManager=k3r-servicelb") && ds.path.contains("force=true"));
    assert_eq!(
        ds.body["spec"]["template"]["spec"]["containers"][0]["name"],
        "lb-tcp-80"
    );
    let reasons: Vec<&Value> = requests
        .iter()
        .filter(|r| r.route().contains("/events"))
        .map(|r| &r.body["reason"])
        .collect();
    assert_eq!(reasons, [&json!("AppliedDaemonSet")]);
}

#[tokio::test]
async fn an_applied_daemonset_is_not_resent_and_ready_pods_become_the_status() {
    let (client, server) = mock::client(api);
    let (context, mut caches) = context(client);
    let svc = service(json!({}));
    let (wanted, _) = daemonset::desired(&svc, &context.settings, &NodeMode::default());
    add(&mut caches.daemonsets, wanted.expect("ds"));
    for (node, ip, ready) in [
        ("a", "10.0.0.1", true),
        ("b", "10.0.0.2", true),
        ("c", "10.0.0.3", false),
    ] {
        add(
            &mut caches.nodes,
            json!({"metadata": {"name": node}, "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}),
        );
        add(
            &mut caches.pods,
            json!({
                "metadata": {"name": format!("svclb-web-{node}"), "namespace": "kube-system",
                             "labels": {SVC_NAME_LABEL: "web", SVC_NAMESPACE_LABEL: "shop"}},
                "spec": {"nodeName": node, "containers": []},
                "status": {"podIP": "10.42.0.9", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
            }),
        );
    }
    reconcile(Arc::new(svc), Arc::clone(&context))
        .await
        .expect("reconcile");
    assert_eq!(
        non_event_lines(&server),
        ["PATCH /api/v1/namespaces/shop/services/web/status"]
    );
    let status = &server.requests()[0].body;
    assert_eq!(
        status["status"]["loadBalancer"]["ingress"],
        json!([{"ip": "10.0.0.1", "ipMode": "VIP"}, {"ip": "10.0.0.2", "ipMode": "VIP"}])
    );
    // Settled: the same Service with that status sends nothing.
    let settled = service(
        json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}}}),
    );
    let before = server.requests().len();
    reconcile(Arc::new(settled), context)
        .await
        .expect("reconcile");
    assert_eq!(server.requests().len(), before);
}

#[tokio::test]
async fn a_node_with_enablelb_changes_the_daemonset() {
    let (client, server) = mock::client(api);
    let (context, mut caches) = context(client);
    let svc = service(json!({}));
    let (open, _) = daemonset::desired(&svc, &context.settings, &NodeMode::default());
    add(&mut caches.daemonsets, open.expect("ds"));
    add(
        &mut caches.nodes,
        json!({"metadata": {"name": "a", "labels": {ENABLE_LB_LABEL: "true"}}}),
    );
    reconcile(Arc::new(svc), context).await.expect("reconcile");
    let applied = server
        .requests()
        .into_iter()
        .find(|r| r.route().contains("/daemonsets/"))
        .expect("daemonset re-applied");
    assert_eq!(
        applied.body["spec"]["template"]["spec"]["nodeSelector"],
        json!({ENABLE_LB_LABEL: "true"})
    );
}

#[tokio::test]
async fn other_classes_are_left_alone_and_former_load_balancers_lose_their_addresses() {
    let (client, server) = mock::client(api);
    let (context, _caches) = context(client);
    let classed = service(
        json!({"spec": {"type": "LoadBalancer", "loadBalancerClass": "metallb.io/metallb",
        "ports": [{"port": 80}]}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]}}}),
    );
    reconcile(Arc::new(classed), Arc::clone(&context))
        .await
        .expect("reconcile");
    assert!(server.lines().is_empty(), "{:?}", server.lines());
    let former = service(
        json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}}),
    );
    reconcile(Arc::new(former), context)
        .await
        .expect("reconcile");
    let requests = server.requests();
    assert_eq!(
        non_event_lines(&server),
        ["PATCH /api/v1/namespaces/shop/services/web/status"]
    );
    assert_eq!(
        requests[0].body,
        json!({"status": {"loadBalancer": {"ingress": null}}})
    );
}

#[tokio::test]
async fn only_sctp_ports_mean_no_daemonset_and_a_warning() {
    let (client, server) = mock::client(api);
    let (context, _caches) = context(client);
    let sctp = service(
        json!({"spec": {"type": "LoadBalancer", "clusterIPs": ["10.43.7.7"],
        "ports": [{"port": 9000, "protocol": "SCTP"}]}}),
    );
    reconcile(Arc::new(sctp), context).await.expect("reconcile");
    assert!(non_event_lines(&server).is_empty());
    let events: Vec<(Value, Value)> = server
        .requests()
        .iter()
        .filter(|r| r.route().contains("/events"))
        .map(|r| (r.body["reason"].clone(), r.body["note"].clone()))
        .collect();
    assert_eq!(
        events,
        [(
            json!("UnAvailableLoadBalancer"),
            json!(
                "There are no available nodes for LoadBalancer: port 9000 is SCTP: svclb forwards TCP and UDP only"
            )
        )]
    );
}
