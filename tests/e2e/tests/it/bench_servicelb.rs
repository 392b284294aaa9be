//! Not a test: the service load balancer's paths measured on the
//! three-node cluster from a client outside it, by
//! `scripts/bench-servicelb --cluster` (an ignored trial, `bench::servicelb`,
//! so the test run skips it). One backend pod on agent 1; the client sends
//! to agent 2, so every path crosses nodes:
//! - the Service's NodePort (kube-proxy);
//! - its LoadBalancer port (the status lists every node: kube-proxy's rule
//!   for the node's address, no forwarder);
//! - an externalTrafficPolicy Local Service's port on a node without an
//!   endpoint (not in the status: the hostPort of the svclb pod, `k3r
//!   svclb`, then the node's NodePort).
//!
//! The backend is busybox (`nc -ll -e sh`: a process per connection), so
//! the connection rate measures it more than the paths.

use std::process::Command;
use std::time::Duration;

use crate::cluster::BENCH_BACKEND_CONTAINER;
use crate::servicelb::Outsider;
use crate::shared::Shared;

const BACKEND: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: lb-bench}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, namespace: lb-bench}
spec:
  replicas: 1
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      nodeSelector: {kubernetes.io/hostname: e2e-agent-1}
      containers:
      - "#;

const SERVICES: &str = r#"
---
apiVersion: v1
kind: Service
metadata: {name: bench, namespace: lb-bench}
spec:
  type: LoadBalancer
  selector: {app: backend}
  ports: [{port: 9000, targetPort: 9000}]
---
apiVersion: v1
kind: Service
metadata: {name: bench-local, namespace: lb-bench}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: backend}
  ports: [{port: 9001, targetPort: 9000}]
"#;

fn field(shared: &Shared, service: &str, path: &str) -> String {
    shared.cluster.ok(&[
        "-n",
        "lb-bench",
        "get",
        "svc",
        service,
        "-o",
        &format!("jsonpath={path}"),
    ])
}

pub fn servicelb(shared: &mut Shared) {
    let bench = std::env::var("K3R_FORWARD_BENCH")
        .expect("K3R_FORWARD_BENCH: the forward-bench binary (scripts/bench-servicelb --cluster)");
    let agents = crate::agents::ensure_joined(shared).agents();
    let (ip1, ip2) = (agents[0].1.clone(), agents[1].1.clone());
    shared
        .cluster
        .apply(&format!("{BACKEND}{BENCH_BACKEND_CONTAINER}\n{SERVICES}"));
    shared.cluster.ok(&[
        "-n",
        "lb-bench",
        "rollout",
        "status",
        "deploy/backend",
        "--timeout=120s",
    ]);
    let ingress = "{.status.loadBalancer.ingress[*].ip}";
    shared.cluster.eventually(
        "bench-local served by agent 1 only, bench by agent 2",
        Duration::from_secs(90),
        || {
            (field(shared, "bench-local", ingress) == ip1
                && field(shared, "bench", ingress).contains(&ip2))
            .then_some(())
        },
    );
    let node_port = field(shared, "bench", "{.spec.ports[0].nodePort}");
    let outsider = Outsider::create();
    // Past the svclb pods' start and kube-proxy's rules.
    std::thread::sleep(Duration::from_secs(5));
    let out = Command::new("ip")
        .args(["netns", "exec", outsider.netns(), &bench])
        .args([
            "--bytes",
            "1073741824",
            "--round-trips",
            "10000",
            "--connections",
            "500",
        ])
        .arg("--target")
        .arg(format!("NodePort (kube-proxy)={ip2}:{node_port}"))
        .arg("--target")
        .arg(format!(
            "LoadBalancer port, node in the status (kube-proxy)={ip2}:9000"
        ))
        .arg("--target")
        .arg(format!(
            "LoadBalancer port, eTP Local, node not in the status (k3r svclb)={ip2}:9001"
        ))
        .output()
        .expect("forward-bench");
    assert!(
        out.status.success(),
        "forward-bench: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
    drop(outsider);
    shared
        .cluster
        .ok(&["delete", "namespace", "lb-bench", "--wait=false"]);
}
