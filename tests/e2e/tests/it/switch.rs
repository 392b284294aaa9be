//! The in-place switch (what an upgrade does once new binaries are in
//! place): SIGUSR2 makes a server or an agent stop its own processes and
//! run its binary again in the same process, leaving the pods running. On
//! the three-node cluster, each node in turn: the PID stays, the node
//! boots again (its node record says so), every pod keeps its UID and
//! restart count, and a Service answers throughout (failed requests are
//! counted and reported).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::Cluster;
use crate::shared::Shared;

const RECORDS: &str = "/run/k3r-nodes";

/// A Service `app` over one busybox web pod per node.
pub fn pods_yaml(app: &str, nodes: &[String]) -> String {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {app}, namespace: default}}\nspec:\n  selector: {{app: {app}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n",
    );
    for (i, node) in nodes.iter().enumerate() {
        yaml.push_str(&format!(
            r#"---
apiVersion: v1
kind: Pod
metadata: {{name: {app}-{i}, namespace: default, labels: {{app: {app}}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: docker.io/library/busybox:k3r-e2e
    imagePullPolicy: Never
    command: [sh, -c, "mkdir -p /w && echo ok > /w/index.html && exec httpd -f -p 8080 -h /w"]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 2}}
"#
        ));
    }
    yaml
}

/// (name, uid, restartCount, phase) of the `app` pods.
pub fn pods(cluster: &Cluster, app: &str) -> Vec<(String, String, i64, String)> {
    let selector = format!("app={app}");
    let list: Value =
        serde_json::from_str(&cluster.ok(&["get", "pods", "-l", &selector, "-o", "json"]))
            .expect("pods");
    let mut pods: Vec<_> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["status"]["containerStatuses"][0]["restartCount"]
                    .as_i64()
                    .unwrap_or(-1),
                p["status"]["phase"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    pods.sort();
    pods
}

pub fn record(node: &str) -> Option<Value> {
    let text = std::fs::read(format!("{RECORDS}/{node}.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// One HTTP GET of the Service, 1 s to connect and 2 s to answer.
pub fn answers(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.") && reply.contains(" 200 ") && reply.ends_with("ok\n")
}

/// Switches `node` (PID `pid`): same PID after, a new boot, ready again.
fn switch(cluster: &Cluster, node: &str, pid: u32) -> f64 {
    let before = record(node).unwrap_or_else(|| panic!("{node} has a node record"));
    assert_eq!(before["pid"], pid, "{node}'s record names its process");
    assert_eq!(before["ready"], true);
    let started = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-USR2", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    cluster.eventually(
        &format!("{node} booted again in place"),
        Duration::from_secs(240),
        || {
            let now = record(node)?;
            (now["bootedAt"] != before["bootedAt"] && now["ready"] == true).then_some(now)
        },
    );
    let took = started.elapsed().as_secs_f64();
    let after = record(node).expect("record");
    assert_eq!(after["pid"], pid, "{node} switched in the same process");
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "{node}'s k3r still runs"
    );
    eprintln!("switch: {node} ready again in {took:.1} s");
    took
}

/// Counts a Service's answers and failures until stopped.
pub struct ClientLoop {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl ClientLoop {
    /// A GET of `address` every 100 ms.
    pub fn start(address: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let thread = {
            let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let counter = if answers(address) { &ok } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Self {
            stop,
            ok,
            failed,
            thread,
        }
    }

    /// Stops; (answered, failed).
    pub fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("client loop");
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

pub fn switch_in_place(shared: &mut Shared) {
    crate::agents::ensure_joined(shared);
    let multi = shared.multi.as_ref().expect("agents");
    let cluster = &shared.cluster;
    let server = cluster.server_node();
    let mut nodes = vec![(server.clone(), cluster.pid().expect("server pid"))];
    nodes.extend(multi.agent_pids());
    let names: Vec<String> = nodes.iter().map(|(n, _)| n.clone()).collect();
    cluster.apply(&pods_yaml("steady", &names));
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=steady",
        "--timeout=120s",
    ]);
    let ip = cluster.ok(&[
        "get",
        "service",
        "steady",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let address: SocketAddr = format!("{}:80", ip.trim())
        .parse()
        .expect("service address");
    cluster.eventually("the Service to answer", Duration::from_secs(30), || {
        let ok = answers(address);
        if !ok {
            let out = std::process::Command::new("curl")
                .args(["-s", "-i", "-m", "2", &format!("http://{address}/")])
                .output()
                .expect("curl");
            eprintln!(
                "switch: {address} not answering yet: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        ok.then_some(())
    });
    let before = pods(cluster, "steady");
    assert_eq!(before.len(), 3, "{before:?}");

    let client = ClientLoop::start(address);
    let mut times = Vec::new();
    for (node, pid) in &nodes {
        times.push((node.clone(), switch(cluster, node, *pid)));
    }
    let (ok, failed) = client.finish();
    eprintln!(
        "switch: Service requests during the three switches: {ok} answered, {failed} failed; {times:?}"
    );

    let after = pods(cluster, "steady");
    assert_eq!(
        after, before,
        "every pod kept its UID and restart count, and runs"
    );
    assert!(after.iter().all(|p| p.3 == "Running"), "{after:?}");
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "node",
        "--all",
        "--timeout=60s",
    ]);
    assert!(ok > 0, "the Service answered");
    // Traffic to pods never depends on k3r's processes; only a moment of
    // rule or route churn may drop a request.
    assert!(
        failed * 20 <= ok + failed,
        "{failed} of {} requests failed",
        ok + failed
    );
    cluster.ok(&["delete", "pods,service", "-l", "app=steady", "--wait=false"]);
    cluster.ok(&["delete", "service", "steady", "--ignore-not-found"]);
}
