//! Upgrading k3r itself with Plans, on the three-node cluster (each node
//! runs its own hard-linked k3r from `<data dir>/bin`, its runtime from
//! the payload it carries):
//!
//! - an upgrade image whose payload is this k3r stamped with the next
//!   minor version (`k3r image upgrade --stamp-version`), imported into
//!   every node's containerd; a server Plan and an agent Plan (SUC's k3s
//!   example shapes, the agent's with its `prepare` step) upgrade all
//!   three nodes in place — each node's record, `k3r --version`, node
//!   label, kubelet version and node operators pod say the new version,
//!   its previous binaries are kept, every pod keeps its UID and restart
//!   count, and a Service answers throughout (failures counted);
//! - an image whose payload cannot start (exits at once) rolls the first
//!   agent back within the health deadline: the agent runs the old
//!   version again (a new process, started by the watchdog), Ready and
//!   uncordoned, the Plan reports the failure with the rollback's reason
//!   and touches no other node.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Cluster, k3r_binary};
use crate::shared::Shared;
use crate::switch::{ClientLoop, answers, pods, pods_yaml, record};

const NS: &str = "system-upgrade";

/// `version` with its minor (0.1.0 → v0.2.0) or patch (0.2.0 → v0.2.1)
/// raised.
fn bump(version: &str, minor: bool) -> String {
    let parts: Vec<u64> = version
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .take(3)
        .map(|p| p.parse().expect("a release"))
        .collect();
    if minor {
        format!("v{}.{}.0", parts[0], parts[1] + 1)
    } else {
        format!("v{}.{}.{}", parts[0], parts[1], parts[2] + 1)
    }
}

fn k3r_version(binary: &Path) -> String {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .expect("k3r --version");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string()
}

fn build_image(args: &[&str], output: &Path) {
    let started = Instant::now();
    let out = Command::new(k3r_binary())
        .args(["image", "upgrade", "-o"])
        .arg(output)
        .args(args)
        .output()
        .expect("k3r image upgrade");
    assert!(
        out.status.success(),
        "k3r image upgrade: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "upgrade: {} built in {:.1} s",
        String::from_utf8_lossy(&out.stdout).trim(),
        started.elapsed().as_secs_f64()
    );
}

/// Imports `image` into every node's containerd.
fn import(image: &Path, sockets: &[PathBuf]) {
    for socket in sockets {
        // The ctr k3r bundles (containerd 2's, as the nodes run).
        let out = Command::new(crate::cluster::target_dir().join("runtime").join("ctr"))
            .arg("--address")
            .arg(socket)
            .args(["-n", "k8s.io", "images", "import"])
            .arg(image)
            .output()
            .expect("ctr");
        assert!(
            out.status.success(),
            "import into {}: {}",
            socket.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn plan(name: &str, role_operator: &str, image: &str, version: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: upgrade.cattle.io/v1
kind: Plan
metadata: {{name: {name}, namespace: {NS}}}
spec:
  concurrency: 1
  cordon: true
  nodeSelector:
    matchExpressions: [{{key: node-role.kubernetes.io/control-plane, operator: {role_operator}}}]
  serviceAccountName: system-upgrade
  upgrade:
    image: {image}
    envs: [{{name: K3R_UPGRADE_HEALTH_DEADLINE, value: 90s}}]
  version: {version}
{extra}"#
    )
}

/// The Plan's status; Null while the API is away (a server switching).
fn plan_status(cluster: &Cluster, name: &str) -> Value {
    let out = cluster.kubectl(&["-n", NS, "get", "plan", name, "-o", "json"]);
    serde_json::from_slice::<Value>(&out.stdout)
        .map(|plan| plan["status"].clone())
        .unwrap_or(Value::Null)
}

fn complete(status: &Value) -> (String, String, String) {
    let c = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Complete"))
        .cloned()
        .unwrap_or(Value::Null);
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"), text("message"))
}

/// The k3r version the node's k3r-node-operators pod runs (its container
/// restarts onto the node's own image after the node's switch).
fn node_operators_version(cluster: &Cluster, node: &str) -> Option<String> {
    let pod = crate::operators::node_operators_pods(
        cluster,
        &["--field-selector", &format!("spec.nodeName={node}")],
        "jsonpath={.items[0].metadata.name}",
    );
    let out = cluster.kubectl(&[
        "-n",
        "kube-system",
        "exec",
        pod.trim(),
        "--",
        "/usr/local/bin/k3r",
        "--version",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success().then(|| {
        text.split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string()
    })
}

fn node_label(cluster: &Cluster, node: &str) -> String {
    cluster
        .ok(&[
            "get",
            "node",
            node,
            "-o",
            "jsonpath={.metadata.labels.k3r\\.io/version}",
        ])
        .trim()
        .to_string()
}

fn unschedulable(cluster: &Cluster) -> String {
    cluster
        .ok(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[?(@.spec.unschedulable==true)]}{.metadata.name} {end}",
        ])
        .trim()
        .to_string()
}

pub fn upgrade(shared: &mut Shared) {
    crate::agents::ensure_joined(shared);
    let multi = shared.multi.as_ref().expect("agents");
    let cluster = &shared.cluster;
    let server = cluster.server_node();
    let mut nodes = vec![(server.clone(), shared.data_dir.clone())];
    nodes.extend(multi.agent_dirs());
    let sockets: Vec<PathBuf> = nodes
        .iter()
        .map(|(name, _)| {
            let run = if *name == server {
                "/run/k3r".to_string()
            } else {
                format!("/run/k3r-{name}")
            };
            Path::new(&run).join("containerd/containerd.sock")
        })
        .collect();
    let old = k3r_version(&k3r_binary());
    let new = bump(&old, true);
    let scratch = tempfile::tempdir().expect("scratch");
    let image = scratch.path().join("upgrade.tar");
    build_image(&["--stamp-version", &new], &image);
    import(&image, &sockets);

    let names: Vec<String> = nodes.iter().map(|(n, _)| n.clone()).collect();
    cluster.apply(&pods_yaml("upgraded", &names));
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=upgraded",
        "--timeout=120s",
    ]);
    let ip = cluster.ok(&[
        "get",
        "service",
        "upgraded",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let address: SocketAddr = format!("{}:80", ip.trim()).parse().expect("address");
    cluster.eventually("the Service to answer", Duration::from_secs(30), || {
        answers(address).then_some(())
    });
    let before = pods(cluster, "upgraded");
    let client = ClientLoop::start(address);
    let started = Instant::now();
    let image_name = "docker.io/k3r/k3r-upgrade";
    cluster.apply(&plan("k3r-server", "Exists", image_name, &new, ""));
    // SUC's k3s agent Plan waits for the server Plan in a prepare step.
    let prepare = format!("  prepare:\n    image: {image_name}\n    args: [prepare, k3r-server]\n");
    cluster.apply(&plan(
        "k3r-agent",
        "DoesNotExist",
        image_name,
        &new,
        &prepare,
    ));
    for name in ["k3r-server", "k3r-agent"] {
        cluster.eventually(
            &format!("Plan {name} complete"),
            Duration::from_secs(600),
            || (complete(&plan_status(cluster, name)).0 == "True").then_some(()),
        );
    }
    let took = started.elapsed().as_secs_f64();
    let (ok, failed) = client.finish();
    eprintln!(
        "upgrade: three nodes {old} -> {new} in {took:.1} s; Service: {ok} answered, {failed} failed"
    );
    for (node, data_dir) in &nodes {
        let now = record(node).unwrap_or_else(|| panic!("{node}'s record"));
        assert_eq!(now["version"], new.as_str(), "{node}: {now}");
        assert_eq!(now["ready"], true);
        let bin = data_dir.join("bin/k3r");
        assert_eq!(
            k3r_version(&bin),
            new.trim_start_matches('v'),
            "{node}: k3r --version"
        );
        assert_eq!(
            k3r_version(&data_dir.join("bin/k3r.prev")),
            old,
            "{node}: previous kept"
        );
        assert_eq!(
            node_label(cluster, node),
            new,
            "{node}'s k3r.io/version label"
        );
        // What `kubectl get nodes -o wide` shows in its VERSION column.
        let kubelet = cluster.ok(&[
            "get",
            "node",
            node,
            "-o",
            "jsonpath={.status.nodeInfo.kubeletVersion}",
        ]);
        assert!(
            kubelet.ends_with(&format!("+k3r-{new}")),
            "{node}'s kubeletVersion {kubelet}"
        );
    }
    for (node, _) in &nodes {
        cluster.eventually(
            &format!("{node}'s node operators on {new}"),
            Duration::from_secs(120),
            || {
                (node_operators_version(cluster, node).as_deref()
                    == Some(new.trim_start_matches('v')))
                .then_some(())
            },
        );
    }
    // Job start to the node's new boot, per node.
    for (node, _) in &nodes {
        let jobs = cluster.ok(&[
            "-n",
            NS,
            "get",
            "jobs",
            "-l",
            &format!("upgrade.cattle.io/node={node}"),
            "-o",
            "jsonpath={.items[0].status.startTime} {.items[0].status.completionTime}",
        ]);
        eprintln!("upgrade: {node}: Job start and completion {}", jobs.trim());
    }
    assert_eq!(unschedulable(cluster), "", "no node left cordoned");
    let after = pods(cluster, "upgraded");
    assert_eq!(after, before, "every pod kept its UID and restart count");
    assert!(
        ok > 0 && failed * 20 <= ok + failed,
        "{failed} of {} failed",
        ok + failed
    );
    for name in ["k3r-server", "k3r-agent"] {
        cluster.ok(&["-n", NS, "delete", "plan", name, "--timeout=60s"]);
    }
    cluster.ok(&[
        "delete",
        "pods,service",
        "-l",
        "app=upgraded",
        "--wait=false",
    ]);
    cluster.ok(&["delete", "service", "upgraded", "--ignore-not-found"]);

    rollback(shared, &new, &sockets, scratch.path());
}

/// A payload that exits at once: the first agent is rolled back, the
/// other never touched.
fn rollback(shared: &mut Shared, running: &str, sockets: &[PathBuf], scratch: &Path) {
    let broken = scratch.join("broken-k3r");
    // A build that cannot start, carrying the runtime as any k3r does.
    let bundled = std::fs::read(k3r_binary()).expect("k3r under test");
    let (_, runtime) = k3r_payload::split(&bundled);
    let mut script =
        b"#!/bin/sh\necho 'k3r: error: this build cannot start' >&2\nexit 1\n".to_vec();
    script.extend_from_slice(runtime.expect("the k3r under test carries a runtime"));
    std::fs::write(&broken, script).expect("broken payload");
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    // A patch release: an agent may not pass its servers' minor version.
    let target = bump(running, false);
    let image = scratch.join("broken.tar");
    let name = format!(
        "docker.io/k3r/k3r-upgrade:broken-{}",
        target.trim_start_matches('v')
    );
    build_image(
        &[
            "--payload-k3r",
            broken.to_str().expect("path"),
            "--version",
            &target,
            "--name",
            &name,
        ],
        &image,
    );
    import(&image, &sockets[1..]);
    let cluster = &shared.cluster;
    let agents = shared.multi.as_ref().expect("agents").agent_pids();
    let started = Instant::now();
    cluster.apply(&plan("k3r-broken", "DoesNotExist", &name, &target, ""));
    let status = cluster.eventually(
        "the broken Plan's failure reported",
        Duration::from_secs(600),
        || {
            let status = plan_status(cluster, "k3r-broken");
            (complete(&status).1 == "JobFailed").then_some(status)
        },
    );
    let took = started.elapsed().as_secs_f64();
    let (_, _, message) = complete(&status);
    assert!(message.contains("was rolled back"), "{message}");
    assert!(message.contains("exited before it was ready"), "{message}");
    let node = status["applying"][0]
        .as_str()
        .expect("the failed node")
        .to_string();
    let (_, old_pid) = agents
        .iter()
        .find(|(n, _)| *n == node)
        .cloned()
        .expect("an agent");
    let now = cluster.eventually(
        "the agent back on the previous version",
        Duration::from_secs(120),
        || record(&node).filter(|r| r["ready"] == true && r["version"] == running),
    );
    let new_pid = u32::try_from(now["pid"].as_u64().expect("pid")).expect("pid");
    assert_ne!(new_pid, old_pid, "started again by the watchdog");
    shared.multi.as_mut().expect("agents").adopt(&node, new_pid);
    let cluster = &shared.cluster;
    eprintln!(
        "upgrade: broken payload on {node} rolled back; failure reported {took:.1} s after the Plan"
    );
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "node",
        &node,
        "--timeout=60s",
    ]);
    assert_eq!(node_label(cluster, &node), running);
    assert_eq!(
        unschedulable(cluster),
        "",
        "the rolled-back node is not left cordoned"
    );
    let jobs = cluster.ok(&[
        "-n",
        NS,
        "get",
        "jobs",
        "-l",
        "upgrade.cattle.io/plan=k3r-broken",
        "-o",
        "jsonpath={.items[*].metadata.labels.upgrade\\.cattle\\.io/node}",
    ]);
    assert_eq!(jobs.trim(), node, "no other node touched");
    cluster.ok(&["-n", NS, "delete", "plan", "k3r-broken", "--timeout=60s"]);
}
