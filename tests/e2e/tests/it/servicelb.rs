//! The service load balancer on the three-node cluster (the server and
//! the agents area's two agents): LoadBalancer Services answer on every
//! node's IP at their port and list those IPs in their status;
//! externalTrafficPolicy Local keeps the client's address and only nodes
//! with endpoints; a UDP port; source ranges; enablelb and lbpool; a port taken on
//! every node; removal with the Service, on a type change and with
//! `--disable servicelb`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::shared::Shared;

const NS: &str = "lb-e2e";
const ENABLE: &str = "svccontroller.k3s.cattle.io/enablelb";
const POOL: &str = "svccontroller.k3s.cattle.io/lbpool";

const CLASH: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: clash, namespace: lb-e2e}
spec:
  type: LoadBalancer
  selector: {app: echo}
  ports: [{name: http, port: 8081, targetPort: 8080}]
"#;

const WORKLOADS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: lb-e2e}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cgi, namespace: lb-e2e}
data:
  ip: |
    #!/bin/sh
    echo "Content-Type: text/plain"
    echo
    echo "$(hostname) $REMOTE_ADDR"
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: lb-e2e}
spec:
  replicas: 3
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: echo}}
            topologyKey: kubernetes.io/hostname
      containers:
      - name: web
        image: docker.io/library/busybox:k3r-e2e
        imagePullPolicy: Never
        command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
        volumeMounts: [{name: cgi, mountPath: /www/cgi-bin}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 2}
      volumes: [{name: cgi, configMap: {name: cgi, defaultMode: 0755}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: solo, namespace: lb-e2e}
spec:
  replicas: 1
  selector: {matchLabels: {app: solo}}
  template:
    metadata: {labels: {app: solo}}
    spec:
      nodeSelector: {kubernetes.io/hostname: e2e-agent-1}
      containers:
      - name: web
        image: docker.io/library/busybox:k3r-e2e
        imagePullPolicy: Never
        command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
        volumeMounts: [{name: cgi, mountPath: /www/cgi-bin}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 2}
      volumes: [{name: cgi, configMap: {name: cgi, defaultMode: 0755}}]
---
apiVersion: v1
kind: Service
metadata: {name: udp, namespace: lb-e2e}
spec:
  type: LoadBalancer
  selector: {app: dns}
  ports: [{name: dns, port: 5301, targetPort: 5353, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: lb-e2e}
spec:
  type: LoadBalancer
  selector: {app: echo}
  ports: [{name: http, port: 8081, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: local, namespace: lb-e2e}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: solo}
  ports: [{name: http, port: 8082, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: ranged, namespace: lb-e2e}
spec:
  type: LoadBalancer
  selector: {app: echo}
  loadBalancerSourceRanges: [10.213.0.50/32]
  ports: [{name: http, port: 8083, targetPort: 8080}]
"#;

/// "<pod name> <client address the pod saw>" from an HTTP response of
/// the echo pods' CGI script (whose headers end in a bare blank line).
fn parse_whoami(response: &str) -> Option<String> {
    let response = response.replace("\r\n", "\n");
    let body = response.split_once("\n\n")?.1.trim();
    let (pod, client) = body.split_once(' ')?;
    // busybox httpd listens on [::]: IPv4 clients read [::ffff:a.b.c.d].
    let client = client.trim_matches(['[', ']']);
    let client = client.strip_prefix("::ffff:").unwrap_or(client);
    Some(format!("{pod} {client}"))
}

/// GET /cgi-bin/ip on `address` from this host (the server's node).
fn whoami(address: &str) -> Option<String> {
    let mut stream =
        TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(3)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    stream.write_all(b"GET /cgi-bin/ip HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    parse_whoami(&response)
}

/// A client that is not a node: its own network namespace plugged into
/// the test LAN's switch, so no node but the target sees its traffic.
pub(crate) struct Outsider {
    netns: &'static str,
}

const OUTSIDER_IP: &str = "10.213.0.50";

impl Outsider {
    pub(crate) fn create() -> Self {
        let netns = "k3re2e-client";
        crate::agents::plug_into_switch(netns, "port-client", OUTSIDER_IP);
        Outsider { netns }
    }

    pub(crate) fn netns(&self) -> &'static str {
        self.netns
    }

    /// Whether a DNS query for probe.test to `ip:port` (UDP) is answered.
    fn resolves(&self, ip: &str, port: u16) -> bool {
        let out = Command::new("ip")
            .args(["netns", "exec", self.netns, "busybox", "nslookup"])
            .arg(format!("-port={port}"))
            .args(["-timeout=2", "-retry=1", "probe.test", ip])
            .output()
            .expect("nslookup");
        String::from_utf8_lossy(&out.stdout).contains("10.1.2.3")
    }

    fn whoami(&self, address: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", self.netns, "curl", "-s", "-i", "-m", "3"])
            .arg(format!("http://{address}/cgi-bin/ip"))
            .output()
            .expect("curl");
        parse_whoami(&String::from_utf8_lossy(&out.stdout))
    }
}

impl Drop for Outsider {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", self.netns])
            .output();
    }
}

fn ingress(cluster: &Cluster, service: &str) -> Vec<String> {
    let mut ips: Vec<String> = cluster
        .ok(&[
            "-n",
            NS,
            "get",
            "svc",
            service,
            "-o",
            "jsonpath={.status.loadBalancer.ingress[*].ip}",
        ])
        .split_whitespace()
        .map(String::from)
        .collect();
    ips.sort();
    ips
}

fn sorted(ips: &[&str]) -> Vec<String> {
    let mut ips: Vec<String> = ips.iter().map(|s| s.to_string()).collect();
    ips.sort();
    ips
}

fn wait_ingress(cluster: &Cluster, service: &str, want: &[String]) {
    cluster.eventually(
        &format!("{service}'s ingress = {want:?}"),
        Duration::from_secs(90),
        || (ingress(cluster, service) == want).then_some(()),
    );
}

fn daemonsets_of(cluster: &Cluster, service: &str) -> Vec<String> {
    cluster
        .ok(&[
            "-n", "kube-system", "get", "ds", "-l",
            &format!("svccontroller.k3s.cattle.io/svcname={service},svccontroller.k3s.cattle.io/svcnamespace={NS}"),
            "-o", "jsonpath={.items[*].metadata.name}",
        ])
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn all_svclb_daemonsets(cluster: &Cluster) -> Vec<String> {
    cluster
        .ok(&[
            "-n",
            "kube-system",
            "get",
            "ds",
            "-l",
            "svccontroller.k3s.cattle.io/nodeselector",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn event_notes(cluster: &Cluster, service: &str, reason: &str) -> Vec<String> {
    cluster
        .ok(&[
            "-n",
            NS,
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={service},reason={reason}"),
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ])
        .lines()
        .map(String::from)
        .collect()
}

fn label_node(cluster: &Cluster, node: &str, labels: &[&str]) {
    let mut args = vec!["label", "node", node, "--overwrite"];
    args.extend(labels);
    cluster.ok(&args);
}

pub fn servicelb(shared: &mut Shared) {
    let agents = crate::agents::ensure_joined(shared).agents();
    let cluster = &shared.cluster;
    let server_ip = cluster
        .ok(&[
            "get", "nodes", "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.addresses[?(@.type==\"InternalIP\")].address}{\"\\n\"}{end}",
        ])
        .lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(name, _)| !name.starts_with("e2e-agent"))
        .map(|(_, ip)| ip.to_string())
        .expect("the server node's IP");
    let (agent1, ip1) = (agents[0].0.as_str(), agents[0].1.as_str());
    let (agent2, ip2) = (agents[1].0.as_str(), agents[1].1.as_str());
    cluster.apply(WORKLOADS);
    cluster.apply(&crate::cluster::probe_dns_deployment(NS));
    let every_node = sorted(&[&server_ip, ip1, ip2]);

    // A LoadBalancer Service: a svclb DaemonSet of k3s's shape, every
    // node's IP in its status, and the port answering on each of them.
    wait_ingress(cluster, "web", &every_node);
    let uid = cluster.ok(&[
        "-n",
        NS,
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let name = format!("svclb-web-{}", &uid[..8]);
    assert_eq!(daemonsets_of(cluster, "web"), [name.as_str()]);
    let container = cluster.ok(&[
        "-n", "kube-system", "get", "ds", &name, "-o",
        "jsonpath={.spec.template.spec.containers[0].name} {.spec.template.spec.containers[0].ports[0].hostPort} {.spec.template.spec.containers[0].args[0]} {.spec.template.spec.containers[0].securityContext.capabilities.drop[0]}",
    ]);
    assert_eq!(container, "lb-tcp-8081 8081 svclb ALL");
    for ip in &every_node {
        let body = cluster.eventually(
            &format!("web answering on {ip}:8081"),
            Duration::from_secs(60),
            || whoami(&format!("{ip}:8081")),
        );
        assert!(body.starts_with("echo-"), "{ip}:8081 answered {body:?}");
    }
    assert!(!event_notes(cluster, "web", "AppliedDaemonSet").is_empty());
    let updated = event_notes(cluster, "web", "UpdatedLoadBalancer");
    assert!(
        updated
            .iter()
            .any(|n| n.starts_with("Updated LoadBalancer with new IPs:")),
        "{updated:?}"
    );
    eprintln!("E2E: servicelb: web answers on {every_node:?}");

    // externalTrafficPolicy Local: only the node with the endpoint is
    // listed, and the pod sees an outside client's own address. Another
    // node's svclb pod still forwards (to its own NodePort, as klipper-lb
    // does), through `k3r svclb`, since kube-proxy has no rule for an
    // address the status does not list.
    let outsider = Outsider::create();
    // UDP: a DNS server behind a LoadBalancer port answers an outside
    // client on every node.
    wait_ingress(cluster, "udp", &every_node);
    for ip in &every_node {
        cluster.eventually(
            &format!("udp answering on {ip}:5301"),
            Duration::from_secs(60),
            || outsider.resolves(ip, 5301).then_some(()),
        );
    }
    eprintln!("E2E: servicelb: a UDP port answers on every node");
    wait_ingress(cluster, "local", &[ip1.to_string()]);
    // (Until kube-proxy has programmed the new address, the node's svclb
    // pod answers, from its own address.)
    let body = cluster.eventually(
        &format!("local answering on {ip1}:8082 with the client's address"),
        Duration::from_secs(60),
        || {
            outsider
                .whoami(&format!("{ip1}:8082"))
                .filter(|b| b.ends_with(&format!(" {OUTSIDER_IP}")))
        },
    );
    assert!(body.starts_with("solo-"), "{body}");
    let forwarded = cluster.eventually(
        &format!("local forwarded by the svclb pod on {ip2}"),
        Duration::from_secs(60),
        || outsider.whoami(&format!("{ip2}:8082")),
    );
    assert!(forwarded.starts_with("solo-"), "{forwarded}");

    // loadBalancerSourceRanges: the outside client may; the nodes may not.
    wait_ingress(cluster, "ranged", &every_node);
    for ip in &every_node {
        let body = cluster.eventually(
            &format!("ranged answering the outside client on {ip}"),
            Duration::from_secs(60),
            || outsider.whoami(&format!("{ip}:8083")),
        );
        assert!(body.starts_with("echo-"), "{body}");
    }
    for ip in [ip1, ip2] {
        assert_eq!(
            whoami(&format!("{ip}:8083")),
            None,
            "the server's node, outside the source ranges, got an answer from {ip}"
        );
        assert_eq!(
            parse_whoami(&crate::agents::in_agent_curl(
                shared,
                2,
                &format!("http://{ip}:8083/cgi-bin/ip")
            )),
            None,
            "agent 2, outside the source ranges, got an answer from {ip}"
        );
    }
    eprintln!("E2E: servicelb: eTP Local keeps the client address; source ranges hold");

    // A port already taken on every node: Pending, with an Event saying why;
    // web unharmed.
    cluster.apply(CLASH);
    let warning = cluster.eventually(
        "clash's UnAvailableLoadBalancer Event",
        Duration::from_secs(60),
        || {
            event_notes(cluster, "clash", "UnAvailableLoadBalancer")
                .into_iter()
                .next()
        },
    );
    assert!(warning.contains("free ports"), "{warning}");
    assert!(ingress(cluster, "clash").is_empty());
    assert!(whoami(&format!("{ip2}:8081")).is_some_and(|b| b.starts_with("echo-")));
    // (Gone while nodes are relabelled: whichever svclb pod restarts first
    // on a node takes a contested port.)
    cluster.ok(&["-n", NS, "delete", "svc", "clash"]);

    // Allow-list mode: once a node carries enablelb, only nodes with
    // enablelb=true serve; a pooled Service only its pool's nodes (k3s's
    // lbpool=<pool>, or k3r's lbpool.<pool> for a node in several pools).
    label_node(
        cluster,
        agent2,
        &[&format!("{ENABLE}=true"), &format!("{POOL}=red")],
    );
    wait_ingress(cluster, "web", &[ip2.to_string()]);
    label_node(
        cluster,
        agent1,
        &[&format!("{ENABLE}=true"), &format!("{POOL}.blue=true")],
    );
    cluster.apply(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: pooled
  namespace: lb-e2e
  labels: {svccontroller.k3s.cattle.io/lbpool: blue}
spec:
  type: LoadBalancer
  selector: {app: echo}
  ports: [{name: http, port: 8084, targetPort: 8080}]
"#,
    );
    wait_ingress(cluster, "pooled", &[ip1.to_string()]);
    wait_ingress(cluster, "web", &sorted(&[ip1, ip2]));
    label_node(
        cluster,
        agent1,
        &[&format!("{ENABLE}-"), &format!("{POOL}.blue-")],
    );
    label_node(
        cluster,
        agent2,
        &[&format!("{ENABLE}-"), &format!("{POOL}-")],
    );
    wait_ingress(cluster, "web", &every_node);
    wait_ingress(cluster, "pooled", &every_node);
    eprintln!("E2E: servicelb: enablelb and lbpool select the serving nodes");

    // Deleting web removes its DaemonSet, which frees 8081 for clash.
    cluster.apply(CLASH);
    cluster.eventually("clash Pending behind web", Duration::from_secs(60), || {
        event_notes(cluster, "clash", "UnAvailableLoadBalancer")
            .iter()
            .any(|n| n.contains("free ports"))
            .then_some(())
    });
    cluster.ok(&["-n", NS, "delete", "svc", "web"]);
    cluster.eventually("web's DaemonSet removed", Duration::from_secs(60), || {
        daemonsets_of(cluster, "web").is_empty().then_some(())
    });
    wait_ingress(cluster, "clash", &every_node);
    cluster.eventually("clash answering on 8081", Duration::from_secs(60), || {
        whoami(&format!("{ip1}:8081")).filter(|b| b.starts_with("echo-"))
    });

    // No longer a LoadBalancer: DaemonSet and addresses go.
    cluster.ok(&[
        "-n",
        NS,
        "patch",
        "svc",
        "ranged",
        "-p",
        r#"{"spec":{"type":"ClusterIP","loadBalancerSourceRanges":null}}"#,
    ]);
    cluster.eventually(
        "ranged's DaemonSet removed",
        Duration::from_secs(60),
        || daemonsets_of(cluster, "ranged").is_empty().then_some(()),
    );
    wait_ingress(cluster, "ranged", &[]);
    eprintln!("E2E: servicelb: DaemonSets follow Service deletion and type changes");

    // --disable servicelb removes every svclb DaemonSet; enabled again, they return.
    let before = all_svclb_daemonsets(cluster);
    assert_eq!(
        before.len(),
        5,
        "traefik, udp, local, pooled and clash: {before:?}"
    );
    let shared_cluster = &mut shared.cluster;
    shared_cluster.restart(&["--disable=servicelb"]);
    shared_cluster.eventually(
        "no svclb DaemonSet with servicelb disabled",
        Duration::from_secs(120),
        || {
            all_svclb_daemonsets(shared_cluster)
                .is_empty()
                .then_some(())
        },
    );
    shared_cluster.restart(&[]);
    shared_cluster.eventually("svclb DaemonSets back", Duration::from_secs(120), || {
        (all_svclb_daemonsets(shared_cluster) == before).then_some(())
    });
    shared_cluster.ok(&["delete", "namespace", NS, "--wait=true", "--timeout=120s"]);
    shared_cluster.eventually(
        "svclb DaemonSets of the namespace removed",
        Duration::from_secs(60),
        || {
            all_svclb_daemonsets(shared_cluster)
                .iter()
                .all(|name| name.starts_with("svclb-traefik-"))
                .then_some(())
        },
    );
    eprintln!("E2E: servicelb: --disable servicelb removes its DaemonSets");
    drop(outsider);
}
