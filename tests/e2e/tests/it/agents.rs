//! Multi-node: two `k3r agent`s, each in its own network namespace (on a
//! bridge the test makes) with its own data dir, join the e2e server.
//! Pods land on every node and reach each other, Services and NodePorts
//! across nodes; logs and exec reach agent pods; the server restarts and
//! the agents carry on; a wrong token is refused before any credential.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, mounts_under, processes_mentioning};
use crate::process::Process;

/// The network namespace standing for the LAN's switch, and its bridge.
pub const SWITCH: &str = "k3re2e-sw";
const SWITCH_BRIDGE: &str = "br0";
/// The host's (the server node's) link to the switch.
const UPLINK: &str = "k3re2e0";
const SUBNET: &str = "10.213.0";

pub fn ip(args: &[&str]) {
    crate::process::succeed(Command::new("ip").args(args));
}

/// Brings `ns`'s `eth0` up with `address`/24 (and `lo`), its default
/// route via `gateway`.
pub fn configure_eth0(ns: &str, address: &str, gateway: &str) {
    let address = format!("{address}/24");
    for args in [
        vec!["addr", "add", &address, "dev", "eth0"],
        vec!["link", "set", "eth0", "up"],
        vec!["link", "set", "lo", "up"],
        vec!["route", "add", "default", "via", gateway],
    ] {
        ip(&[&["-n", ns], &args[..]].concat());
    }
}

/// Plugs a new network namespace `ns` into the switch as `eth0` with
/// `address`/24 and the host as its default gateway.
pub fn plug_into_switch(ns: &str, port: &str, address: &str) {
    let _ = Command::new("ip").args(["netns", "delete", ns]).output();
    ip(&["netns", "add", ns]);
    ip(&[
        "link", "add", port, "netns", SWITCH, "type", "veth", "peer", "name", "eth0", "netns", ns,
    ]);
    ip(&[
        "-n",
        SWITCH,
        "link",
        "set",
        port,
        "master",
        SWITCH_BRIDGE,
        "up",
    ]);
    configure_eth0(ns, address, &format!("{SUBNET}.1"));
}

/// A LAN: a bridge in a namespace of its own (a switch: frames between
/// nodes never cross the server node's netfilter, as on real networks),
/// the host linked to it, and one network namespace per agent plugged
/// into it; removed on drop.
struct TestNet {
    namespaces: Vec<String>,
}

impl TestNet {
    fn create(agents: usize) -> Self {
        let _ = Command::new("ip")
            .args(["netns", "delete", SWITCH])
            .output();
        let _ = Command::new("ip").args(["link", "delete", UPLINK]).output();
        ip(&["netns", "add", SWITCH]);
        let mut net = TestNet {
            namespaces: vec![SWITCH.to_string()],
        };
        ip(&["-n", SWITCH, "link", "add", SWITCH_BRIDGE, "type", "bridge"]);
        ip(&["-n", SWITCH, "link", "set", SWITCH_BRIDGE, "up"]);
        ip(&[
            "link", "add", UPLINK, "type", "veth", "peer", "name", "uplink", "netns", SWITCH,
        ]);
        ip(&[
            "-n",
            SWITCH,
            "link",
            "set",
            "uplink",
            "master",
            SWITCH_BRIDGE,
            "up",
        ]);
        ip(&["addr", "add", &format!("{SUBNET}.1/24"), "dev", UPLINK]);
        ip(&["link", "set", UPLINK, "up"]);
        for i in 1..=agents {
            let ns = format!("k3re2e-a{i}");
            plug_into_switch(&ns, &format!("port{i}"), &Self::address(i));
            net.namespaces.push(ns.clone());
            // The server cannot dial this node's kubelet: logs and exec
            // must come through the agent's tunnel.
            ip(&[
                "netns", "exec", &ns, "iptables", "-A", "INPUT", "-i", "eth0", "-p", "tcp",
                "--dport", "10250", "-j", "DROP",
            ]);
        }
        net
    }

    fn address(i: usize) -> String {
        format!("{SUBNET}.{}", 10 + i)
    }

    /// Agent `i`'s namespace (1-based).
    fn agent(&self, i: usize) -> &str {
        &self.namespaces[i]
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // Agents first, the switch last; the uplink goes with its peer.
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "delete", ns]).output();
        }
        let _ = Command::new("ip").args(["link", "delete", UPLINK]).output();
    }
}

/// A `k3r agent` process in a network namespace.
struct Agent {
    name: String,
    data_dir: PathBuf,
    process: Process,
}

fn agent_command(netns: &str, data_dir: &Path, args: &[String]) -> Command {
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--net=/run/netns/{netns}"))
        .arg(crate::cluster::node_binary(data_dir))
        .arg("agent")
        .arg("--config=/nonexistent/k3r-e2e.yaml")
        .args(args)
        .env("K3R_LOG", "info");
    command
}

impl Agent {
    fn start(
        netns: &str,
        name: &str,
        address: &str,
        data_dir: &Path,
        server: &str,
        token: &str,
    ) -> Agent {
        let mut args: Vec<String> = vec![
            format!("--server={server}"),
            format!("--token={token}"),
            format!("--data-dir={}", data_dir.display()),
            format!("--node-name={name}"),
            format!("--node-ip={address}"),
            "--shared-host".into(),
        ];
        args.extend(
            crate::cluster::NODE_KUBELET_ARGS
                .iter()
                .map(|a| a.to_string()),
        );
        Agent {
            name: name.into(),
            data_dir: data_dir.to_path_buf(),
            process: Process::spawn(
                &format!("agent {name}"),
                name,
                agent_command(netns, data_dir, &args),
            ),
        }
    }

    fn wait_ready(&mut self, timeout: Duration) -> f64 {
        self.process.wait_for_line("node Ready", timeout)
    }

    /// SIGTERM and wait; returns seconds the stop took.
    fn stop(&mut self) -> f64 {
        match self.process.terminate() {
            Some((status, seconds)) => {
                assert!(status.success(), "agent {} exited with {status}", self.name);
                seconds
            }
            None => 0.0,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.process.terminate();
    }
}

const SPREAD: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 3
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: spread}}
            topologyKey: kubernetes.io/hostname
      containers:
      - name: web
        image: docker.io/library/busybox:k3r-e2e
        imagePullPolicy: Never
        command: ["/bin/sh", "-c", "mkdir -p /www && hostname > /www/index.html && echo started on $NODE && exec httpd -f -p 8080 -h /www"]
        env: [{name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]
---
apiVersion: v1
kind: Service
metadata: {name: spread}
spec:
  type: NodePort
  selector: {app: spread}
  ports: [{port: 80, targetPort: 8080}]
"#;

/// name, node, pod IP and container ID of each running spread pod.
fn spread_pods(cluster: &Cluster) -> Vec<(String, String, String, String)> {
    cluster
        .ok(&[
            "get", "pods", "-l", "app=spread", "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP} {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].ready}{\"\\n\"}{end}",
        ])
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 5 && f[4] == "true")
                .then(|| (f[0].into(), f[1].into(), f[2].into(), f[3].into()))
        })
        .collect()
}

/// The body of GET / on `target` (ip:port) from inside `pod`.
fn get_from_pod(cluster: &Cluster, pod: &str, target: &str) -> Option<String> {
    let (host, port) = target.rsplit_once(':')?;
    let request = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}");
    let out = cluster.kubectl(&["exec", pod, "--", "sh", "-c", &request]);
    let body = String::from_utf8_lossy(&out.stdout);
    body.split("\r\n\r\n").nth(1).map(|b| b.trim().to_string())
}

fn nodes_ready(cluster: &Cluster) -> usize {
    cluster
        .ok(&[
            "get", "nodes", "-o",
            "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ])
        .lines()
        .filter(|l| *l == "True")
        .count()
}

fn agent_token(cluster: &Cluster) -> String {
    let token =
        std::fs::read_to_string(cluster.data_dir.join("server/node-token")).expect("node-token");
    let (head, password) = token
        .trim()
        .rsplit_once(':')
        .expect("K10…::server:password");
    let hash = head
        .strip_prefix("K10")
        .and_then(|t| t.split("::").next())
        .expect("hash");
    format!("K10{hash}::node:{password}")
}

/// Every pod reaches every other pod across nodes. Pod IPs are read
/// afresh on each try: after a server restart the server's pods get new
/// ones, and their status says so only once its kubelet has synced.
fn pods_reach_each_other(cluster: &Cluster, pods: &[(String, String, String, String)]) {
    for (from, from_node, _, _) in pods {
        for (to, to_node, _, _) in pods {
            if from == to {
                continue;
            }
            let body = cluster.eventually(
                &format!("pod on {from_node} reaching the pod on {to_node}"),
                Duration::from_secs(60),
                || {
                    let ip = spread_pods(cluster).into_iter().find(|p| &p.0 == to)?.2;
                    get_from_pod(cluster, from, &format!("{ip}:8080")).filter(|b| b == to)
                },
            );
            assert_eq!(&body, to);
        }
    }
}

/// Every TCP connection of the server, kube-apiserver's process (which
/// serves :6443), the agents and the operators' processes (both modes) has
/// TCP_NODELAY.
fn sockets_have_nodelay(cluster: &Cluster, agents: &[Agent]) {
    let pid_of = |needle: &str| -> u32 {
        crate::cluster::processes_mentioning(needle)
            .first()
            .and_then(|line| line.split(':').next())
            .and_then(|pid| pid.trim().parse().ok())
            .unwrap_or_else(|| panic!("no process mentions {needle:?}"))
    };
    let mut processes = vec![("k3r server", cluster.pid().expect("server pid"))];
    // kube-apiserver's process serves the :6443 listener.
    let control_plane =
        crate::cluster::processes_mentioning(&cluster.data_dir.display().to_string())
            .into_iter()
            .find(|line| line.contains("together kube-apiserver"))
            .and_then(|line| line.split(':').next()?.trim().parse().ok())
            .expect("kube-apiserver's process");
    processes.push(("kube-apiserver with the :6443 listener", control_plane));
    for agent in agents {
        processes.push(("k3r agent", agent.process.pid().expect("agent pid")));
    }
    processes.push((
        "k3r operators (cluster)",
        pid_of("k3r operators --manifests-dir"),
    ));
    processes.push((
        "k3r operators (node)",
        pid_of("k3r operators --listen 0.0.0.0:10271"),
    ));
    crate::sockets::assert_nodelay(&processes);
}

/// The server's two agents, kept joined for the areas after `agents`
/// (servicelb) until `leave` stops them. Dropped in field order: agents
/// first, then their network.
pub struct MultiNode {
    agents: Vec<Agent>,
    net: TestNet,
    scratch: tempfile::TempDir,
}

impl MultiNode {
    /// The agents' node names and IPs, in order.
    pub fn agents(&self) -> Vec<(String, String)> {
        (1..=self.agents.len())
            .map(|i| (format!("e2e-agent-{i}"), TestNet::address(i)))
            .collect()
    }

    /// The agents' node names and data dirs, in order.
    pub fn agent_dirs(&self) -> Vec<(String, PathBuf)> {
        self.agents
            .iter()
            .map(|a| (a.name.clone(), a.data_dir.clone()))
            .collect()
    }

    /// Agent `name` now runs as `pid` (started again by its switch
    /// watchdog after a rollback).
    pub fn adopt(&mut self, name: &str, pid: u32) {
        if let Some(agent) = self.agents.iter_mut().find(|a| a.name == name) {
            agent.process.adopt(pid);
        }
    }

    /// The agents' node names and PIDs, in order.
    pub fn agent_pids(&self) -> Vec<(String, u32)> {
        self.agents
            .iter()
            .map(|a| (a.name.clone(), a.process.pid().expect("agent running")))
            .collect()
    }

    /// Runs `command` inside agent `i`'s (1-based) network namespace.
    pub fn in_agent(&self, i: usize, command: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", self.net.agent(i)])
            .args(command)
            .output()
            .expect("ip netns exec")
    }
}

/// The body curl gets for `url` from inside agent `i`'s namespace ("" on failure).
pub fn in_agent_curl(shared: &crate::shared::Shared, i: usize, url: &str) -> String {
    let Some(multi) = shared.multi.as_ref() else {
        return String::new();
    };
    let out = multi.in_agent(i, &["curl", "-s", "-i", "-m", "3", url]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Makes sure two agents have joined (an area run on its own joins them
/// here).
pub fn ensure_joined(shared: &mut crate::shared::Shared) -> &MultiNode {
    if shared.multi.is_none() {
        let net = TestNet::create(2);
        let scratch = tempfile::tempdir().expect("tempdir");
        let agents = start_agents(
            &shared.cluster,
            &shared.data_dir,
            shared.port,
            &net,
            &scratch,
        );
        shared.multi = Some(MultiNode {
            agents,
            net,
            scratch,
        });
    }
    shared.multi.as_ref().expect("joined")
}

fn start_agents(
    cluster: &Cluster,
    data_dir: &Path,
    port: u16,
    net: &TestNet,
    scratch: &tempfile::TempDir,
) -> Vec<Agent> {
    let server = format!("https://{}:{port}", cluster.node_ip());
    let token = agent_token(cluster);
    let mut agents: Vec<Agent> = (1..=2)
        .map(|i| {
            let dir = scratch.path().join(format!("agent{i}"));
            let images = dir.join("agent/images");
            std::fs::create_dir_all(&images).expect("images dir");
            for image in ["busybox.tar", "coredns.tar"] {
                std::fs::copy(
                    data_dir.join("agent/images").join(image),
                    images.join(image),
                )
                .expect("an image for the agent");
            }
            Agent::start(
                net.agent(i),
                &format!("e2e-agent-{i}"),
                &TestNet::address(i),
                &dir,
                &server,
                &token,
            )
        })
        .collect();
    for agent in &mut agents {
        let seconds = agent.wait_ready(Duration::from_secs(240));
        eprintln!(
            "E2E: agent {} joined, node Ready after {seconds:.1} s",
            agent.name
        );
    }
    cluster.eventually("3 nodes Ready", Duration::from_secs(60), || {
        (nodes_ready(cluster) == 3).then_some(())
    });
    agents
}

/// Two agents in network namespaces: refused joins, joining, pods and
/// Services across nodes, per-node controllers on every node, tunnels,
/// server and agent restarts. The agents stay for the next areas.
pub fn agents(shared: &mut crate::shared::Shared) {
    let multi = multi_node(&mut shared.cluster, &shared.data_dir, shared.port);
    shared.multi = Some(multi);
}

fn multi_node(cluster: &mut Cluster, data_dir: &Path, port: u16) -> MultiNode {
    let net = TestNet::create(2);
    let server = format!("https://{}:{port}", cluster.node_ip());
    let token = agent_token(cluster);
    let scratch = tempfile::tempdir().expect("tempdir");

    // Refused joins: a wrong CA hash (before any credential is sent), a
    // wrong password, the server's own node name. Nothing is registered.
    let password = token.rsplit_once(':').expect("password").1.to_string();
    let hash = token
        .strip_prefix("K10")
        .and_then(|t| t.split("::").next())
        .expect("hash")
        .to_string();
    let server_node = cluster.ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    for (case, bad_token, node, expected) in [
        (
            "wrong-hash",
            format!("K10{}::node:{password}", "0".repeat(64)),
            "e2e-wrong",
            "CA hash does not match",
        ),
        (
            "wrong-password",
            format!("K10{hash}::node:not-the-password"),
            "e2e-wrong",
            "refused the token",
        ),
        (
            "duplicate",
            token.clone(),
            server_node.as_str(),
            "Node password rejected",
        ),
    ] {
        let dir = scratch.path().join(case);
        let refused = agent_command(
            net.agent(1),
            &dir,
            &[
                format!("--server={server}"),
                format!("--token={bad_token}"),
                format!("--data-dir={}", dir.display()),
                format!("--node-name={node}"),
                format!("--node-ip={}", TestNet::address(1)),
                "--shared-host".into(),
            ],
        )
        .output()
        .expect("k3r agent");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && stderr.contains(expected),
            "{case}: {stderr}"
        );
        for file in ["client-kubelet.crt", "kubelet.kubeconfig"] {
            assert!(
                !dir.join("agent").join(file).exists(),
                "{case}: {file} written for a refused agent"
            );
        }
        if case == "wrong-hash" {
            assert!(
                !dir.join("agent/node-password").exists(),
                "nothing made before the CA check"
            );
        }
    }
    assert!(
        !cluster
            .kubectl(&["get", "node", "e2e-wrong"])
            .status
            .success(),
        "nothing registered for a refused agent"
    );

    // Two agents join at once.
    let mut agents = start_agents(cluster, data_dir, port, &net, &scratch);
    let annotations = cluster.ok(&[
        "get", "node", "e2e-agent-1", "-o",
        "jsonpath={.metadata.annotations.flannel\\.alpha\\.coreos\\.com/backend-type} {.metadata.annotations.flannel\\.alpha\\.coreos\\.com/public-ip}",
    ]);
    assert_eq!(annotations, format!("vxlan {}", TestNet::address(1)));
    crate::operators::per_node_controllers(cluster, 3);
    sockets_have_nodelay(cluster, &agents);

    // A pod on every node; pod to pod, to the Service and NodePorts across nodes.
    let applied = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(SPREAD));
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let pods = cluster.eventually(
        "a spread pod Running on every node",
        Duration::from_secs(120),
        || {
            let pods = spread_pods(cluster);
            let nodes: std::collections::BTreeSet<&String> = pods.iter().map(|p| &p.1).collect();
            (pods.len() == 3 && nodes.len() == 3).then_some(pods)
        },
    );
    pods_reach_each_other(cluster, &pods);
    let names: Vec<&String> = pods.iter().map(|p| &p.0).collect();
    let on_agent = pods
        .iter()
        .find(|p| p.1 == "e2e-agent-1")
        .expect("a pod on agent 1");
    let cluster_ip = cluster.ok(&["get", "svc", "spread", "-o", "jsonpath={.spec.clusterIP}"]);
    let mut answered = std::collections::BTreeSet::new();
    cluster.eventually(
        "the Service from an agent's pod reaching every node's pod",
        Duration::from_secs(60),
        || {
            if let Some(body) = get_from_pod(cluster, &on_agent.0, &format!("{cluster_ip}:80"))
                && names.contains(&&body)
            {
                answered.insert(body);
            }
            (answered.len() == 3).then_some(())
        },
    );
    let node_port = cluster.ok(&[
        "get",
        "svc",
        "spread",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    for node_ip in [cluster.node_ip(), TestNet::address(1), TestNet::address(2)] {
        let body = cluster.eventually(
            &format!("NodePort on {node_ip}"),
            Duration::from_secs(60),
            || crate::single_node::http_get(&format!("{node_ip}:{node_port}")),
        );
        assert!(
            names.contains(&&body),
            "NodePort on {node_ip} answered {body:?}"
        );
    }

    // kubectl logs and exec for a pod on an agent (whose kubelet port the
    // server cannot reach: they go through the tunnel).
    let direct = Command::new("curl")
        .args([
            "-sk",
            "-m",
            "3",
            &format!("https://{}:10250/healthz", TestNet::address(1)),
        ])
        .output()
        .expect("curl");
    assert!(
        !direct.status.success(),
        "the agent's kubelet must not be reachable directly"
    );
    let logs = cluster.ok(&["logs", &on_agent.0]);
    assert_eq!(logs.trim(), "started on e2e-agent-1");
    let exec = cluster.ok(&["exec", &on_agent.0, "--", "cat", "/www/index.html"]);
    assert_eq!(exec.trim(), on_agent.0);
    eprintln!(
        "E2E: 3 nodes: pod-to-pod, Service, NodePort on every node, logs and exec on an agent"
    );

    // The server restarts; the agents reconnect and their pods keep running.
    let ready = cluster.restart(&[]);
    eprintln!("E2E: server restarted with agents joined: node Ready after {ready:.1} s");
    let restarted_at = Instant::now();
    cluster.eventually(
        "agents Ready after the server restart",
        Duration::from_secs(120),
        || (nodes_ready(cluster) == 3).then_some(()),
    );
    eprintln!(
        "E2E: agents Ready {:.1} s after the restarted server",
        restarted_at.elapsed().as_secs_f64()
    );
    let after = cluster.eventually(
        "spread pods Running after the restart",
        Duration::from_secs(120),
        || {
            let pods = spread_pods(cluster);
            (pods.len() == 3).then_some(pods)
        },
    );
    for (name, node, _, container) in &pods {
        if node.starts_with("e2e-agent") {
            assert!(
                after.iter().any(|p| &p.0 == name && &p.3 == container),
                "the pod on {node} kept running through the server restart"
            );
        }
    }
    pods_reach_each_other(cluster, &after);
    // The agent's tunnel reconnects (with backoff) to the new server.
    cluster.eventually(
        "logs of an agent's pod after the restart",
        Duration::from_secs(60),
        || {
            let out = cluster.kubectl(&["logs", &on_agent.0]);
            String::from_utf8_lossy(&out.stdout)
                .contains("started on e2e-agent-1")
                .then_some(())
        },
    );

    // An agent restarts on its data dir: it rejoins under its name (same
    // node password) and its pod runs again.
    agents[1].stop();
    let (netns, name, dir) = (
        net.agent(2).to_string(),
        agents[1].name.clone(),
        agents[1].data_dir.clone(),
    );
    agents[1] = Agent::start(&netns, &name, &TestNet::address(2), &dir, &server, &token);
    let again = agents[1].wait_ready(Duration::from_secs(120));
    eprintln!("E2E: agent {name} restarted: node Ready after {again:.1} s");
    cluster.eventually(
        "the restarted agent's pod Running again",
        Duration::from_secs(120),
        || {
            spread_pods(cluster)
                .iter()
                .any(|p| p.1 == name)
                .then_some(())
        },
    );
    let again = cluster.eventually(
        "pods after the agent restart",
        Duration::from_secs(60),
        || {
            let pods = spread_pods(cluster);
            (pods.len() == 3).then_some(pods)
        },
    );
    pods_reach_each_other(cluster, &again);
    MultiNode {
        agents,
        net,
        scratch,
    }
}

/// The agents stop cleanly: nothing of theirs left running or mounted.
pub fn leave(shared: &mut crate::shared::Shared) {
    let Some(MultiNode {
        mut agents,
        net,
        scratch,
    }) = shared.multi.take()
    else {
        return;
    };
    let cluster = &shared.cluster;
    cluster.ok(&["delete", "deploy", "spread", "--ignore-not-found"]);
    cluster.ok(&["delete", "svc", "spread", "--ignore-not-found"]);
    let k3r_table = |index: usize| {
        Command::new("ip")
            .args(["netns", "exec", net.agent(index + 1)])
            .args(["nft", "list", "table", "inet", "k3r"])
            .output()
            .expect("nft")
            .status
            .success()
    };
    for (index, agent) in agents.iter_mut().enumerate() {
        // The network policy's table, there while the node runs, goes
        // with a SIGTERM stop (its pods are stopped too).
        cluster.eventually(
            &format!("{}'s inet k3r table", agent.name),
            Duration::from_secs(60),
            || k3r_table(index).then_some(()),
        );
        let seconds = agent.stop();
        eprintln!("E2E: agent {} stopped in {seconds:.1} s", agent.name);
        assert!(!k3r_table(index), "{}'s inet k3r table left", agent.name);
        // Nor any rule of kube-proxy's, the CNI plugins' (hostPort DNATs of
        // svclb pods among them) or k3r's in its network namespace.
        let saved = Command::new("ip")
            .args(["netns", "exec", net.agent(index + 1), "iptables-save"])
            .output()
            .expect("iptables-save");
        let rules: Vec<String> = String::from_utf8_lossy(&saved.stdout)
            .lines()
            .filter(|l| {
                ["KUBE-", "CNI-", "K3R-", "FLANNEL"]
                    .iter()
                    .any(|c| l.contains(c))
            })
            .map(String::from)
            .collect();
        assert!(
            rules.is_empty(),
            "agent {} left rules: {rules:#?}",
            agent.name
        );
        let dir = agent.data_dir.display().to_string();
        let run_dir = format!("/run/k3r-{}", agent.name);
        let left: Vec<String> = processes_mentioning(&dir)
            .into_iter()
            .chain(processes_mentioning(&run_dir))
            .collect();
        assert!(left.is_empty(), "agent processes left: {left:#?}");
        assert!(!Path::new(&run_dir).exists(), "{run_dir} left behind");
        // (mounts_under also counts the server's /run/k3r: not this node's.)
        let mounts: Vec<String> = mounts_under(&agent.data_dir)
            .into_iter()
            .filter(|m| Path::new(m).starts_with(&agent.data_dir) || m.starts_with(&run_dir))
            .collect();
        assert!(mounts.is_empty(), "agent mounts left: {mounts:#?}");
        assert!(
            !Path::new("/sys/fs/cgroup/pids")
                .join(format!("k3r-{}", agent.name))
                .exists(),
            "agent cgroup root left"
        );
        cluster.ok(&["delete", "node", &agent.name]);
        cluster.ok(&[
            "-n",
            "kube-system",
            "delete",
            "secret",
            &format!("{}.node-password.k3r", agent.name),
        ]);
    }
    drop(agents);
    drop(net);
    drop(scratch);
}
