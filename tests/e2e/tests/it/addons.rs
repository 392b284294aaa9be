//! Areas of the self-hosted add-ons on the shared cluster: CoreDNS from the
//! packaged manifest and DNS from pods; the deploy controller and the
//! manifests dir, traefik's chart, the operators' lease, probes and
//! metrics; and `--disable` removing an add-on (run by the restart area).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, k3r_binary};
use crate::shared::Shared;
use crate::single_node::ensure_web;

/// CoreDNS comes up from the packaged manifest and pods resolve through it.
pub fn coredns(shared: &mut Shared) {
    let cluster = &shared.cluster;
    coredns_ready(cluster);
    let pods = ensure_web(cluster);
    let cluster_ip = cluster.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    dns_resolution(cluster, &pods[2], &cluster_ip);
}

/// The deploy controller and the manifests dir, traefik's packaged chart,
/// and the operators' leadership, probes and metrics.
pub fn addons(shared: &mut Shared) {
    let manifests = shared.data_dir.join("server/manifests");
    deploy_operator(&shared.cluster, &shared.data_dir);
    let nodes = shared
        .cluster
        .ok(&["get", "nodes", "-o", "name"])
        .lines()
        .count();
    crate::operators::per_node_controllers(&shared.cluster, nodes);
    traefik_installed(&shared.cluster);
    operators_leadership(&shared.cluster, &manifests);
}

/// Waits for a CoreDNS container started by this boot to be ready (a
/// Deployment status left from before a restart does not count); returns
/// seconds since `k3r server` started.
pub fn coredns_ready(cluster: &Cluster) -> f64 {
    let booted = cluster.started_rfc3339();
    cluster.eventually("CoreDNS ready", Duration::from_secs(240), || {
        let out = cluster.kubectl(&[
            "-n",
            "kube-system",
            "get",
            "pods",
            "-l",
            "k8s-app=kube-dns",
            "-o",
            "jsonpath={range .items[*]}{.status.containerStatuses[0].ready} {.status.containerStatuses[0].state.running.startedAt}{\"\\n\"}{end}",
        ]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| {
                l.split_once(' ')
                    .is_some_and(|(ready, since)| ready == "true" && since >= booted.as_str())
            })
            .then_some(())
    });
    cluster.started().elapsed().as_secs_f64()
}

/// nslookup from a pod; returns the addresses of the answer.
fn lookup(cluster: &Cluster, pod: &str, name: &str) -> Vec<String> {
    let out = cluster.kubectl(&["exec", pod, "--", "nslookup", name]);
    let text = String::from_utf8_lossy(&out.stdout);
    // busybox prints the server first, then "Name:" and "Address: ..." lines.
    text.split_once("Name:")
        .map(|(_, answer)| {
            answer
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Address:"))
                .map(|a| a.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A pod resolves the API Service, another Service and (through NodeHosts)
/// the node's name, all through CoreDNS at the cluster DNS IP.
pub fn dns_resolution(cluster: &Cluster, pod: &str, service_ip: &str) {
    let resolv = cluster.ok(&["exec", pod, "--", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 10.43.0.10"), "{resolv}");
    let api = cluster.eventually(
        "kubernetes.default.svc.cluster.local to resolve",
        Duration::from_secs(60),
        || {
            let found = lookup(cluster, pod, "kubernetes.default.svc.cluster.local");
            (!found.is_empty()).then_some(found)
        },
    );
    assert_eq!(api, ["10.43.0.1"]);
    let web = lookup(cluster, pod, "web.default.svc.cluster.local");
    assert_eq!(web, [service_ip]);
    assert!(
        lookup(cluster, pod, "no-such-service.default.svc.cluster.local").is_empty(),
        "a missing Service must not resolve"
    );
    // NodeHosts: the nodehosts operator fills the key; CoreDNS reloads it
    // once the kubelet refreshed the mounted ConfigMap (up to a minute).
    let node = cluster.ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let node_ip = cluster.node_ip();
    let hosts = cluster.ok(&[
        "-n",
        "kube-system",
        "get",
        "cm",
        "coredns",
        "-o",
        "jsonpath={.data.NodeHosts}",
    ]);
    assert_eq!(hosts, format!("{node_ip} {node}\n"));
    let started = Instant::now();
    cluster.eventually(
        "the node name to resolve through NodeHosts",
        Duration::from_secs(180),
        // The trailing dot: a bare name is tried only with the search domains.
        || (lookup(cluster, pod, &format!("{node}.")) == [node_ip.as_str()]).then_some(()),
    );
    eprintln!(
        "E2E: node name resolvable {:.0} s after the check began",
        started.elapsed().as_secs_f64()
    );
}

fn free_local_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "3", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn lease_holder(cluster: &Cluster) -> String {
    cluster.ok(&[
        "-n",
        "kube-system",
        "get",
        "lease",
        "k3r-operators",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
}

fn operators_pod(cluster: &Cluster) -> String {
    cluster.ok(&[
        "-n",
        "kube-system",
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=k3r-operators",
        "--field-selector=status.phase=Running",
        "-o",
        // Empty (not an error) while no pod runs; two names during a
        // rollout never equal the holder.
        "jsonpath={.items[*].metadata.name}",
    ])
}

fn scale_operators(cluster: &Cluster, replicas: u32) {
    cluster.ok(&[
        "-n",
        "kube-system",
        "scale",
        "deploy",
        "k3r-operators",
        &format!("--replicas={replicas}"),
    ]);
}

struct Standby(Child);

impl Drop for Standby {
    /// SIGTERM, so the lease is released as in a pod's graceful stop.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The operators pod holds the lease and serves metrics; a second replica
/// (run on the host) stands by, ready but not leading, and takes over at
/// once when the pod stops and releases the lease.
pub fn operators_leadership(cluster: &Cluster, manifests: &Path) {
    let pod = operators_pod(cluster);
    assert_eq!(lease_holder(cluster), pod);
    let metrics = cluster.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/kube-system/pods/{pod}:10270/proxy/metrics"),
    ]);
    assert!(metrics.contains("k3r_operators_leader 1"), "{metrics}");
    for controller in ["deploy", "nodehosts", "helm"] {
        for metric in [
            format!(
                "k3r_controller_reconciles_total{{controller=\"{controller}\",result=\"success\"}}"
            ),
            format!(
                "k3r_controller_reconcile_duration_seconds_count{{controller=\"{controller}\"}}"
            ),
            format!("k3r_controller_queue_depth{{controller=\"{controller}\"}}"),
        ] {
            assert!(metrics.contains(&metric), "{metric} in {metrics}");
        }
    }

    let port = free_local_port();
    let standby = Standby(
        Command::new(k3r_binary())
            .args(["operators", "--identity", "e2e-standby", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--manifests-dir")
            .arg(manifests)
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env("K3R_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("k3r operators"),
    );
    cluster.eventually("the standby to be ready", Duration::from_secs(30), || {
        (http_get(port, "/readyz").0 == 200).then_some(())
    });
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        http_get(port, "/metrics")
            .1
            .contains("k3r_operators_leader 0")
    );
    assert_eq!(lease_holder(cluster), pod, "the standby must not take over");

    // The pod stops gracefully and releases the lease: the standby leads
    // without waiting out the 15 s lease.
    let stopped = Instant::now();
    scale_operators(cluster, 0);
    cluster.eventually("the standby to lead", Duration::from_secs(60), || {
        (lease_holder(cluster) == "e2e-standby").then_some(())
    });
    eprintln!(
        "E2E: standby took the lease {:.1} s after the pod was told to stop",
        stopped.elapsed().as_secs_f64()
    );
    cluster.eventually(
        "standby metrics to show leadership",
        Duration::from_secs(10),
        || {
            http_get(port, "/metrics")
                .1
                .contains("k3r_operators_leader 1")
                .then_some(())
        },
    );
    drop(standby);
    scale_operators(cluster, 1);
    cluster.eventually("a new pod to lead", Duration::from_secs(120), || {
        let pod = operators_pod(cluster);
        (!pod.is_empty() && lease_holder(cluster) == pod).then_some(())
    });
}

/// The packaged traefik add-on: a HelmChart carrying its chart, installed
/// by the helm operator (the `traefik` area checks it serves).
pub fn traefik_installed(cluster: &Cluster) {
    cluster.eventually("traefik installed", Duration::from_secs(120), || {
        let out = cluster.kubectl(&[
            "-n",
            "kube-system",
            "get",
            "helmchart",
            "traefik",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Failed\")].status}|{.status.conditions[?(@.type==\"Failed\")].reason}",
        ]);
        (String::from_utf8_lossy(&out.stdout) == "False|Installed").then_some(())
    });
    cluster.ok(&[
        "-n",
        "kube-system",
        "get",
        "deploy/traefik",
        "svc/traefik",
        "ingressclass/traefik",
    ]);
}

/// After a restart with `--disable coredns,traefik`: the manifest files are
/// removed, their objects and Addons are deleted (traefik's through the
/// helm operator's uninstall), other add-ons stay.
pub fn disabled_addons_removed(cluster: &Cluster, manifests: &Path) {
    for file in ["coredns.yaml", "traefik.yaml"] {
        assert!(
            !manifests.join(file).exists(),
            "the disabled manifest {file} must be removed at start"
        );
    }
    cluster.eventually(
        "the disabled add-on to be deleted",
        Duration::from_secs(120),
        || {
            let left = cluster.ok(&[
                "-n",
                "kube-system",
                "get",
                "addon/coredns",
                "deploy/coredns",
                "svc/kube-dns",
                "cm/coredns",
                "addon/traefik",
                "helmchart/traefik",
                "deploy/traefik",
                "--ignore-not-found",
                "-o",
                "name",
            ]);
            left.trim().is_empty().then_some(())
        },
    );
    cluster.ok(&["-n", "kube-system", "get", "addon", "rolebindings"]);
    cluster.ok(&["get", "clusterrolebinding", "system:k3r-controller"]);
}

/// The deploy operator, running in the k3r-operators pod: a file in the
/// manifests dir becomes objects and an Addon; edits update, removed objects
/// are pruned, `.skip` is honoured, invalid YAML gives a condition and an
/// Event naming file and line.
fn deploy_operator(cluster: &Cluster, data_dir: &std::path::Path) {
    let manifests = data_dir.join("server/manifests");
    operators_ready(cluster);
    let image = operators_pods(cluster, "{.items[0].spec.containers[0].image}");
    assert_eq!(image, "docker.io/k3r/k3r-operators:v0.1.0");
    let started = Instant::now();
    std::fs::write(
        manifests.join("demo.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo-one, namespace: default}\ndata: {a: \"1\"}\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: demo-two, namespace: default}}\n",
    )
    .expect("write manifest");
    cluster.eventually(
        "objects from a new manifest",
        Duration::from_secs(60),
        || {
            let out = cluster.kubectl(&["get", "cm", "demo-one", "demo-two", "-o", "name"]);
            (out.status.success() && String::from_utf8_lossy(&out.stdout).lines().count() == 2)
                .then_some(())
        },
    );
    eprintln!(
        "E2E: manifest applied {:.1} s after the file was written",
        started.elapsed().as_secs_f64()
    );
    let condition = cluster.ok(&[
        "-n",
        "kube-system",
        "get",
        "addon",
        "demo",
        "-o",
        "jsonpath={.status.conditions[0].status}/{.spec.checksum}",
    ]);
    assert!(
        condition.starts_with("True/") && condition.len() == 5 + 64,
        "{condition}"
    );
    std::fs::write(
        manifests.join("skipped.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: skipped-cm, namespace: default}\n",
    )
    .expect("write");
    std::fs::write(manifests.join("skipped.yaml.skip"), "").expect("write");
    std::fs::write(
        manifests.join("broken.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndata: [oops\n",
    )
    .expect("write");
    std::fs::write(
        manifests.join("demo.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo-one, namespace: default}\ndata: {a: \"2\"}\n",
    )
    .expect("edit manifest");
    cluster.eventually(
        "edit applied and removed object pruned",
        Duration::from_secs(60),
        || {
            let value = cluster.ok(&["get", "cm", "demo-one", "-o", "jsonpath={.data.a}"]);
            let gone = !cluster.kubectl(&["get", "cm", "demo-two"]).status.success();
            (value == "2" && gone).then_some(())
        },
    );
    let message = cluster.eventually("Failed condition on the broken manifest", Duration::from_secs(60), || {
        let out = cluster.kubectl(&["-n", "kube-system", "get", "addon", "broken", "-o", "jsonpath={.status.conditions[0].status}|{.status.conditions[0].reason}|{.status.conditions[0].message}"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.starts_with("False|ParseManifestFailed|").then_some(text)
    });
    assert!(message.contains("broken.yaml: line 4:"), "{message}");
    let events = cluster.ok(&[
        "-n",
        "kube-system",
        "get",
        "events",
        "--field-selector",
        "reason=ParseManifestFailed",
        "-o",
        "name",
    ]);
    assert!(!events.trim().is_empty(), "a ParseManifestFailed event");
    assert!(
        !cluster
            .kubectl(&["get", "cm", "skipped-cm"])
            .status
            .success(),
        ".skip must be honoured"
    );
    // The other add-ons kept working and the operator did not crash-loop.
    let restarts = operators_pods(
        cluster,
        "{.items[0].status.containerStatuses[0].restartCount}",
    );
    assert_eq!(restarts, "0", "the operator restarted");
    std::fs::remove_file(manifests.join("broken.yaml")).expect("remove");
}

/// Waits until the k3r-operators Deployment has its replica ready.
pub fn operators_ready(cluster: &Cluster) {
    cluster.eventually("k3r-operators ready", Duration::from_secs(120), || {
        let ready = cluster.ok(&[
            "-n",
            "kube-system",
            "get",
            "deploy",
            "k3r-operators",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ]);
        (ready == "1").then_some(())
    });
}

/// A jsonpath over the k3r-operators Deployment's pods.
pub fn operators_pods(cluster: &Cluster, jsonpath: &str) -> String {
    cluster.ok(&[
        "-n",
        "kube-system",
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=k3r-operators",
        "-o",
        &format!("jsonpath={jsonpath}"),
    ])
}
