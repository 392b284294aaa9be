//! Not a test: what 100 NetworkPolicies cost traffic across nodes, by
//! `scripts/bench-netpol --cluster` (an ignored trial, `bench::netpol`). A
//! backend pod on agent 2; the load generator (forward-bench) in agent 1's
//! network namespace, so every connection crosses the vxlan and agent 2's
//! forward hook, where the node's `inet k3r` table is. Measured with no
//! policy, then with 100 policies in 10 namespaces — the backend's own
//! namespace denying by default, ten of them selecting the backend —
//! alternately, twice.

use std::time::Duration;

use crate::cluster::BENCH_BACKEND_CONTAINER;
use crate::shared::Shared;

const NAMESPACES: usize = 10;

fn backend() -> String {
    let mut yaml = String::new();
    for i in 0..NAMESPACES {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: nb-{i}, labels: {{team: t{}}}}}\n",
            i % 3
        ));
    }
    yaml.push_str(
        r#"---
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, namespace: nb-0}
spec:
  replicas: 1
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend, tier: back}}
    spec:
      nodeSelector: {kubernetes.io/hostname: e2e-agent-2}
      containers:
      - "#,
    );
    yaml.push_str(BENCH_BACKEND_CONTAINER);
    yaml.push('\n');
    yaml
}

/// 99 policies of six kinds in rotation over the namespaces, then the one
/// that admits the load generator (agent 1's vxlan address is in the
/// cluster CIDR).
fn policies() -> String {
    let mut yaml = String::new();
    for i in 0..99 {
        let spec = match i % 6 {
            0 => "{podSelector: {}, policyTypes: [Ingress]}".to_string(),
            1 => format!(
                "{{podSelector: {{matchLabels: {{tier: back}}}}, ingress: [{{from: [{{podSelector: {{matchLabels: {{app: app-{i}}}}}}}], ports: [{{port: 8080}}]}}]}}"
            ),
            2 => format!(
                "{{podSelector: {{}}, ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{team: t{}}}}}}}], ports: [{{port: bench}}]}}]}}",
                i % 3
            ),
            3 => "{podSelector: {matchLabels: {app: backend}}, ingress: [{from: [{ipBlock: {cidr: 192.168.0.0/16, except: [192.168.7.0/24]}}], ports: [{port: 30000, endPort: 30100}]}]}".to_string(),
            4 => "{podSelector: {matchLabels: {tier: front}}, policyTypes: [Egress], egress: [{to: [{podSelector: {matchLabels: {tier: back}}}], ports: [{port: bench}]}]}".to_string(),
            _ => format!(
                "{{podSelector: {{}}, ingress: [{{from: [{{namespaceSelector: {{}}, podSelector: {{matchExpressions: [{{key: app, operator: In, values: [app-{i}, app-x]}}]}}}}]}}]}}"
            ),
        };
        yaml.push_str(&format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p{i}, namespace: nb-{}}}\nspec: {spec}\n",
            i % NAMESPACES
        ));
    }
    yaml.push_str(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: load, namespace: nb-0}\nspec: {podSelector: {matchLabels: {app: backend}}, ingress: [{from: [{ipBlock: {cidr: 10.42.0.0/16}}], ports: [{port: 9000}]}]}\n",
    );
    yaml
}

pub fn netpol(shared: &mut Shared) {
    let bench = std::env::var("K3R_FORWARD_BENCH")
        .expect("K3R_FORWARD_BENCH: the forward-bench binary (scripts/bench-netpol --cluster)");
    crate::agents::ensure_joined(shared);
    let cluster = &shared.cluster;
    cluster.apply(&backend());
    // Not while agents still build and import their operators image (CPU
    // the two cores would not have for the load).
    cluster.wait_node_operators();
    cluster.ok(&[
        "-n",
        "nb-0",
        "rollout",
        "status",
        "deploy/backend",
        "--timeout=120s",
    ]);
    let ip = cluster.ok(&[
        "-n",
        "nb-0",
        "get",
        "pods",
        "-l",
        "app=backend",
        "-o",
        "jsonpath={.items[0].status.podIP}",
    ]);
    let multi = shared.multi.as_ref().expect("agents joined");
    let attempt = |label: &str| {
        let target = format!("{label}={ip}:9000");
        let out = multi.in_agent(
            1,
            &[
                &bench,
                "--bytes",
                "1073741824",
                "--round-trips",
                "10000",
                "--connections",
                "500",
                "--target",
                &target,
            ],
        );
        let table = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status
            .success()
            .then(|| table.lines().last().unwrap_or_default().to_string())
            .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // (busybox's backend now and then resets a connection: one retry.)
    let run = |label: &str| {
        attempt(label)
            .or_else(|_| attempt(label))
            .unwrap_or_else(|e| panic!("forward-bench: {e}"))
    };
    // The first run after the cluster's start is slow (the node still
    // settling): a warm-up, not reported.
    let _ = attempt("warm-up");
    let mut rows = Vec::new();
    for round in ["", ", again"] {
        rows.push(run(&format!("no policy{round}")));
        cluster.apply(&policies());
        // Enforced well within this (the e2e measures about 0.25 s).
        std::thread::sleep(Duration::from_secs(3));
        rows.push(run(&format!("100 policies{round}")));
        for i in 0..NAMESPACES {
            cluster.ok(&[
                "-n",
                &format!("nb-{i}"),
                "delete",
                "networkpolicies",
                "--all",
            ]);
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    println!(
        "| agent 1 → pod on agent 2 | stream 1 conn (Gbit/s) | stream 8 conns (Gbit/s) | 64 B round trip p50 / p99 (µs) | new connections per s |"
    );
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    for i in 0..NAMESPACES {
        cluster.ok(&["delete", "namespace", &format!("nb-{i}"), "--wait=false"]);
    }
}
