//! Areas of the shared single-node cluster: the API and workloads
//! (networking, Services, logs and exec), the datastore under
//! kube-apiserver in bulk, and — last — restart on the same data dir and a
//! clean host after stop and killall.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::addons;
use crate::cluster::{Cluster, k3r_binary, mounts_under, processes_mentioning};
use crate::shared::Shared;

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: docker.io/library/busybox:k3r-e2e
        imagePullPolicy: Never
        command: ["/bin/sh", "-c", "mkdir -p /www && hostname > /www/index.html && echo started && exec httpd -f -p 8080 -h /www"]
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"#;

pub(crate) fn http_get(addr: &str) -> Option<String> {
    let mut stream =
        TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .split("\r\n\r\n")
        .nth(1)
        .map(|b| b.trim().to_string())
}

fn running_web_pods(cluster: &Cluster) -> Vec<String> {
    let out = cluster.kubectl(&[
        "get", "pods", "-l", "app=web", "--field-selector=status.phase=Running",
        "-o", "jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[0].ready}{\"\\n\"}{end}",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(" true"))
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

/// Deploys the web Deployment and its Services unless present; returns
/// the names of its three Running pods.
pub fn ensure_web(cluster: &Cluster) -> Vec<String> {
    let applied = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(WEB));
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    cluster.eventually("3 Running web pods", Duration::from_secs(120), || {
        let pods = running_web_pods(cluster);
        (pods.len() == 3).then_some(pods)
    })
}

/// The API through the supervisor listener, k3s's CRDs, the operators
/// image, and a Deployment reached by ClusterIP (from the node and from a
/// pod) and NodePort, with logs and exec.
pub fn api_and_workloads(shared: &mut Shared) {
    let cluster = &shared.cluster;
    let port = shared.port;
    assert_eq!(cluster.ok(&["get", "--raw", "/readyz"]).trim(), "ok");
    let version = cluster.ok(&["version"]);
    assert!(version.contains("Server Version: v1.37."), "{version}");
    assert!(version.contains("+k3r-v"), "{version}");
    let ping = Command::new("curl")
        .args(["-sk", &format!("https://127.0.0.1:{port}/ping")])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&ping.stdout), "pong");
    let nodes = cluster.ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[*].status.nodeInfo.kubeletVersion}",
    ]);
    // The kubelet names the k3r that runs it, as k3s's `+k3s1`.
    assert!(
        nodes.starts_with("v1.37.") && nodes.contains("+k3r-v"),
        "{nodes}"
    );
    // The server's node has k3s's roles (SUC's server Plans select them).
    let roles = cluster.eventually("the server node's roles", Duration::from_secs(30), || {
        let roles = cluster.ok(&[
            "get",
            "nodes",
            "-l",
            "node-role.kubernetes.io/control-plane=true,node-role.kubernetes.io/master=true",
            "-o",
            "name",
        ]);
        (!roles.trim().is_empty()).then_some(roles)
    });
    assert_eq!(roles.lines().count(), 1, "{roles}");
    // The upstream components share two processes; the first serves the
    // supervisor listener too (k3r-front).
    assert_eq!(
        component_processes(cluster),
        [
            vec![
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "k3r-front"
            ],
            vec!["kubelet", "kube-proxy"],
        ]
    );
    // With k3r's GC targets, the control plane's its own (or the one k3r
    // itself was given), its calm GOMAXPROCS and timer slack.
    for line in children_of(cluster.pid().expect("pid")) {
        let control_plane = line
            .split_whitespace()
            .skip_while(|word| !word.ends_with("k3r-kube"))
            .find(|word| !word.ends_with("k3r-kube") && *word != "together")
            == Some("kube-apiserver");
        let default = if control_plane {
            k3r_node::process::CONTROL_PLANE_GOGC
        } else {
            k3r_node::process::GOGC
        };
        let gogc = format!(
            "GOGC={}",
            std::env::var("GOGC").unwrap_or_else(|_| default.to_string())
        );
        let pid = line.split(':').next().unwrap_or_default();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let has = |pair: &str| environ.split(|b| *b == 0).any(|v| v == pair.as_bytes());
        assert!(has(&gogc), "{gogc} not in the environment of {line}");
        // And one P while calm, unless k3r was given a GOMAXPROCS.
        let idle_procs = format!(
            "{}={}",
            k3r_node::process::GOMAXPROCS_IDLE_ENV,
            k3r_node::process::IDLE_GOMAXPROCS
        );
        assert_eq!(
            has(&idle_procs),
            std::env::var_os("GOMAXPROCS").is_none()
                && std::env::var_os(k3r_node::process::GOMAXPROCS_IDLE_ENV).is_none(),
            "{idle_procs} in the environment of {line}"
        );
        // And the calm timer slack, unless k3r was given its own.
        let idle_slack = format!(
            "{}={}",
            k3r_node::process::TIMER_SLACK_IDLE_ENV,
            k3r_node::process::IDLE_TIMER_SLACK
        );
        assert_eq!(
            has(&idle_slack),
            std::env::var_os(k3r_node::process::TIMER_SLACK_IDLE_ENV).is_none(),
            "{idle_slack} in the environment of {line}"
        );
    }
    // Front-proxy headers from a client are never trusted: an anonymous
    // request claiming to be system:admin is still anonymous (401).
    let forged = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
        .args([
            "-H",
            "X-Remote-User: system:admin",
            "-H",
            "X-Remote-Group: system:masters",
        ])
        .arg(format!("https://127.0.0.1:{port}/api/v1/namespaces"))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&forged.stdout),
        "401",
        "forged front-proxy headers must not authenticate"
    );
    // Nor is the header in which the front hands k3r's routes the client
    // certificate it verified: a kubelet's certificate claimed in it,
    // without the TLS client certificate, does not open a tunnel (401),
    // while the certificate itself gets past that check (400: not a
    // websocket upgrade).
    let tls = cluster.data_dir.join("server/tls");
    let der = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -outform DER -in {} | base64 -w0",
            tls.join("client-kubelet.crt").display()
        ))
        .output()
        .expect("openssl");
    let forged_cert = String::from_utf8_lossy(&der.stdout).to_string();
    assert!(
        !forged_cert.is_empty(),
        "no DER of the kubelet's certificate"
    );
    let tunnel_status = |extra: &[&str]| {
        let out = Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(extra)
            .arg(format!("https://127.0.0.1:{port}/v1-k3r/connect"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let header = format!("X-K3r-Client-Certificate: {forged_cert}");
    assert_eq!(
        tunnel_status(&["-H", &header]),
        "401",
        "a client certificate claimed in a header must not authenticate"
    );
    let cert = tls.join("client-kubelet.crt").display().to_string();
    let key = tls.join("client-kubelet.key").display().to_string();
    assert_eq!(
        tunnel_status(&["--cert", &cert, "--key", &key]),
        "400",
        "the kubelet's certificate over TLS reaches the tunnel"
    );

    // k3s-compatible CRDs are installed and take k3s users' YAML.
    for crd in [
        "addons.k3s.cattle.io",
        "helmcharts.helm.cattle.io",
        "helmchartconfigs.helm.cattle.io",
        "plans.upgrade.cattle.io",
    ] {
        cluster.ok(&["get", "crd", crd]);
    }
    let chart = "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: demo, namespace: default, annotations: {helmcharts.helm.cattle.io/unmanaged: \"true\"}}\nspec:\n  repo: https://charts.example.com\n  chart: demo\n  set: {replicas: 2}\n  valuesContent: 'a: 1'\n";
    let applied = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(chart));
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert_eq!(
        cluster.ok(&["get", "hc", "demo", "-o", "jsonpath={.spec.set.replicas}"]),
        "2"
    );
    cluster.ok(&["delete", "hc", "demo"]);

    // The operators image, built from k3r itself, runs as a pod.
    let operators = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"k3r-version"},"spec":{"restartPolicy":"Never","containers":[{"name":"k3r","image":"docker.io/k3r/k3r-operators:v0.1.0","imagePullPolicy":"Never","args":["--version"]}]}}"#;
    let created = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(operators));
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let phase = cluster.eventually(
        "operators image pod to finish",
        Duration::from_secs(120),
        || {
            let phase = cluster.ok(&[
                "get",
                "pod",
                "k3r-version",
                "-o",
                "jsonpath={.status.phase}",
            ]);
            (phase == "Succeeded" || phase == "Failed").then_some(phase)
        },
    );
    let version = cluster.ok(&["logs", "k3r-version"]);
    assert_eq!(phase, "Succeeded", "k3r in its own image: {version}");
    assert!(version.starts_with("k3r "), "{version}");
    cluster.ok(&["delete", "pod", "k3r-version"]);

    // A Deployment of the locally built busybox image.
    let pods = ensure_web(cluster);
    let logs = cluster.ok(&["logs", &pods[0]]);
    assert!(logs.contains("started"), "logs: {logs}");
    let exec = cluster.ok(&["exec", &pods[0], "--", "cat", "/www/index.html"]);
    assert_eq!(exec.trim(), pods[0]);

    // ClusterIP from a pod reaches every replica; NodePort answers on the node IP.
    let cluster_ip = cluster.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let mut answered = std::collections::BTreeSet::new();
    cluster.eventually(
        "ClusterIP reaching all replicas",
        Duration::from_secs(60),
        || {
            if let Some(body) = http_get(&format!("{cluster_ip}:80"))
                && pods.contains(&body)
            {
                answered.insert(body);
            }
            (answered.len() == 3).then_some(())
        },
    );
    // And from inside a pod (busybox-static's wget crashes in static
    // glibc, so speak HTTP with nc).
    let mut from_pod = std::collections::BTreeSet::new();
    let request = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {cluster_ip} 80");
    cluster.eventually(
        "ClusterIP from a pod reaching all replicas",
        Duration::from_secs(60),
        || {
            let out = cluster.kubectl(&["exec", &pods[1], "--", "sh", "-c", &request]);
            let body = String::from_utf8_lossy(&out.stdout);
            if let Some(name) = body.split("\r\n\r\n").nth(1).map(str::trim)
                && pods.iter().any(|p| p == name)
            {
                from_pod.insert(name.to_string());
            }
            (from_pod.len() == 3).then_some(())
        },
    );
    let node_ip = cluster.node_ip();
    let node_port = cluster.ok(&[
        "get",
        "svc",
        "web-np",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    let body = cluster.eventually("NodePort answer", Duration::from_secs(60), || {
        http_get(&format!("{node_ip}:{node_port}"))
    });
    assert!(pods.contains(&body), "NodePort answered {body:?}");
}

/// What a restart must leave as it was: objects the deploy controller
/// applied (a user manifest, the packaged CoreDNS one plus NodeHosts) and
/// traefik's release revisions (the helm controller); empty where absent.
fn versions(cluster: &Cluster) -> Vec<String> {
    let read = |args: &[&str]| String::from_utf8_lossy(&cluster.kubectl(args).stdout).into_owned();
    vec![
        read(&[
            "get",
            "cm",
            "demo-one",
            "--ignore-not-found",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ]),
        read(&[
            "-n",
            "kube-system",
            "get",
            "cm",
            "coredns",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ]),
        read(&[
            "-n",
            "kube-system",
            "get",
            "secrets",
            "-l",
            "owner=helm,name=traefik",
            "-o",
            "name",
        ]),
        read(&[
            "get",
            "configmaps",
            "-n",
            "bulk",
            "--ignore-not-found",
            "-o",
            "name",
        ]),
    ]
}

/// Stop leaves no process, mount, netns or pod IP; a restart on the same
/// data dir brings workloads back and re-applies nothing; --disable removes
/// add-ons; another token is refused; killall leaves the host clean. The
/// cluster is gone afterwards: this area runs last.
pub fn restart(shared: &mut Shared) {
    shared.consumed = true;
    let data_dir = shared.data_dir.clone();
    let port = shared.port;
    let cluster = &mut shared.cluster;
    ensure_web(cluster);
    let before_restart = versions(cluster);

    // Stop: nothing of ours may be left running or mounted.
    let pid = cluster.pid().expect("pid");
    let stop_seconds = cluster.stop();
    eprintln!("E2E: SIGTERM stop took {stop_seconds:.1} s");
    let data_dir_str = data_dir.display().to_string();
    let leftovers: Vec<String> = processes_mentioning(&data_dir_str)
        .into_iter()
        .chain(processes_mentioning("/run/k3r/containerd"))
        .chain(children_of(pid))
        .collect();
    assert!(
        leftovers.is_empty(),
        "processes left after SIGTERM: {leftovers:#?}"
    );
    let mounts = mounts_under(&data_dir);
    assert!(mounts.is_empty(), "mounts left after SIGTERM: {mounts:#?}");
    let netns = crate::cluster::orphaned_pod_netns();
    assert!(
        netns.is_empty(),
        "pod network namespaces left after SIGTERM: {netns:#?}"
    );
    let addresses =
        k3r_node::cleanup::allocated_pod_addresses(std::path::Path::new("/var/lib/cni/k3r"));
    assert!(
        addresses.is_empty(),
        "pod IPs still allocated after SIGTERM: {addresses:#?}"
    );

    // Start again on the same data dir: same state, workloads back.
    let again_ready = cluster.start_again(&[]);
    eprintln!("E2E: existing data dir: node Ready after {again_ready:.1} s");
    let names = cluster.ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.name}"]);
    assert_eq!(names, "web");
    cluster.eventually("web Running again", Duration::from_secs(120), || {
        (running_web_pods(cluster).len() == 3).then_some(())
    });
    // The deploy controller comes back and re-applies nothing.
    addons::operators_ready(cluster);
    let dns_again = addons::coredns_ready(cluster);
    eprintln!("E2E: existing data dir: CoreDNS Ready after {dns_again:.1} s");
    std::thread::sleep(Duration::from_secs(20));
    assert_eq!(
        before_restart,
        versions(cluster),
        "a restart must not re-apply manifests or charts"
    );
    rss_report(cluster);
    cluster.stop();
    // Once more with CoreDNS and traefik disabled: removed, the rest stays.
    // A verbosity of its own keeps kube-scheduler in its own process.
    cluster.start_again(&["--disable=coredns,traefik", "--kube-scheduler-arg=v=2"]);
    addons::disabled_addons_removed(cluster, &data_dir.join("server/manifests"));
    assert_eq!(
        component_processes(cluster),
        [
            vec!["kube-apiserver", "kube-controller-manager", "k3r-front"],
            vec!["kube-scheduler"],
            vec!["kubelet", "kube-proxy"],
        ]
    );
    cluster.stop();
    // A kube-proxy flag upstream does not know leaves kube-proxy out,
    // named in the log, and the kubelet sharing its process runs (the node
    // gets Ready). (Without kube-proxy no pod reaches a Service: the stop
    // removed the last run's rules.)
    cluster.start_again(&["--kube-proxy-arg=no-such-flag=1"]);
    let kubelet_log =
        std::fs::read_to_string(data_dir.join("logs/kubelet.log")).expect("kubelet.log");
    assert!(
        kubelet_log.contains("kube-proxy not started: unknown flag: --no-such-flag"),
        "the bad kube-proxy flag is not named in kubelet.log"
    );
    cluster.stop();
    // Another token on an existing data dir is refused, naming the problem.
    let wrong = Command::new(k3r_binary())
        .args([
            "server",
            "--config=/nonexistent/k3r.yaml",
            "--token=not-the-token",
            "--data-dir",
        ])
        .arg(&data_dir)
        .arg(format!("--https-listen-port={port}"))
        .output()
        .expect("k3r");
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success() && stderr.contains("--token does not match"),
        "{stderr}"
    );
    let _ = Command::new(k3r_binary())
        .arg("killall")
        .arg("--data-dir")
        .arg(&data_dir)
        .status();
    // After killall the host is clean.
    let link = Command::new("ip")
        .args(["link", "show", "cni0"])
        .output()
        .expect("ip");
    assert!(!link.status.success(), "cni0 left behind");
    let netns = crate::cluster::orphaned_pod_netns();
    assert!(netns.is_empty(), "pod network namespaces left: {netns:#?}");
    let rules = Command::new("iptables-save")
        .output()
        .expect("iptables-save");
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(
        !rules.contains("KUBE-") && !rules.contains("CNI-"),
        "iptables chains left behind"
    );
}

/// The components each k3r-kube child of the server runs (`k3r-kube
/// together A … --- B …` runs A and B), sorted.
fn component_processes(cluster: &Cluster) -> Vec<Vec<String>> {
    let pid = cluster.pid().expect("pid");
    let mut processes: Vec<Vec<String>> = children_of(pid)
        .iter()
        .map(|line| {
            let words: Vec<&str> = line
                .split_once(": ")
                .map_or("", |(_, cmd)| cmd)
                .split(' ')
                .skip(1)
                .collect();
            match words.split_first() {
                Some((&"together", rest)) => rest
                    .split(|w| *w == "---")
                    .filter_map(|component| component.first().map(|n| n.to_string()))
                    .collect(),
                Some((name, _)) => vec![name.to_string()],
                None => Vec::new(),
            }
        })
        .collect();
    processes.sort();
    processes
}

fn children_of(pid: u32) -> Vec<String> {
    processes_mentioning("k3r-kube")
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!(
                "/proc/{}/stat",
                p.split(':').next().unwrap_or_default()
            ))
            .is_ok_and(|stat| stat.split(' ').nth(3) == Some(&pid.to_string()))
        })
        .collect()
}

/// kube-apiserver on our datastore: 1,000 ConfigMaps created, listed with
/// pagination, and watched.
/// 1000 ConfigMaps in one request, listed in pages and watched.
pub fn bulk_configmaps(cluster: &Cluster) {
    cluster.ok(&["create", "namespace", "bulk"]);
    let rv = cluster.ok(&[
        "get",
        "configmaps",
        "-n",
        "bulk",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    let mut watch = Command::new(k3r_binary())
        .args(["kubectl", "get", "--raw"])
        .arg(format!("/api/v1/namespaces/bulk/configmaps?watch=1&resourceVersion={rv}&labelSelector=e2e%3Dbulk"))
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("K3R_DATA_DIR", &cluster.data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch");
    let stdout = watch.stdout.take().expect("stdout");
    let watcher = std::thread::spawn(move || {
        let mut added = 0;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("\"type\":\"ADDED\"") {
                added += 1;
                if added == 1000 {
                    break;
                }
            }
        }
        added
    });
    let started = Instant::now();
    let mut items = Vec::new();
    for i in 0..1000 {
        items.push(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i:04}"), "namespace": "bulk", "labels": {"e2e": "bulk"}},
            "data": {"index": i.to_string(), "payload": "x".repeat(256)},
        }));
    }
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    let created = cluster.kubectl_stdin(&["create", "-f", "-"], Some(&list));
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    eprintln!(
        "E2E: 1000 ConfigMaps created in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Pagination: 11 pages of up to 100 (1000 + kube-root-ca.crt), with
    // remainingItemCount on the first (kube-apiserver omits it when a
    // label selector filters).
    let mut continue_token = String::new();
    let mut listed = 0;
    let mut pages = 0;
    loop {
        let mut path = "/api/v1/namespaces/bulk/configmaps?limit=100".to_string();
        if !continue_token.is_empty() {
            path.push_str(&format!("&continue={continue_token}"));
        }
        let page: serde_json::Value =
            serde_json::from_str(&cluster.ok(&["get", "--raw", &path])).expect("json");
        if pages == 0 {
            assert_eq!(
                page["metadata"]["remainingItemCount"], 901,
                "remainingItemCount on the first page"
            );
        }
        listed += page["items"].as_array().map_or(0, Vec::len);
        pages += 1;
        continue_token = page["metadata"]["continue"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if continue_token.is_empty() {
            break;
        }
    }
    assert_eq!((listed, pages), (1001, 11));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !watcher.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let added = watcher.join().expect("watcher");
    assert_eq!(added, 1000, "watch saw every ConfigMap once");
}

/// Prints the resident memory of k3r and each component (for the docs).
fn rss_report(cluster: &Cluster) {
    let Some(pid) = cluster.pid() else { return };
    let rss = |pid: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .map(|v| v.trim().trim_end_matches(" kB").parse().unwrap_or(0))
            })
            .unwrap_or(0)
    };
    eprintln!("E2E: RSS k3r server: {} MiB", rss(&pid.to_string()) / 1024);
    let coredns = processes_mentioning("-conf /etc/coredns/Corefile");
    for line in processes_mentioning(&cluster.data_dir.display().to_string())
        .into_iter()
        .chain(coredns)
    {
        let (p, cmd) = line.split_once(": ").unwrap_or_default();
        let name = cmd.split(' ').take(2).collect::<Vec<_>>().join(" ");
        eprintln!("E2E: RSS {name}: {} MiB", rss(p) / 1024);
    }
}

/// Every long-running process of k3r's binaries unmapped its binary's
/// start-up pages after k3r's delay (K3R_TRIM_START_PAGES_AFTER),
/// and fewer of its pages were resident afterwards; each says so in its
/// log: the Go components, the k3r server, the operators and CoreDNS (the
/// image k3r builds) in their pods.
pub fn start_pages_trimmed(cluster: &Cluster) {
    const TRIMMED: &str = "unmapped the binary's";
    let logs = cluster.data_dir.join("logs");
    let delay = Duration::from_secs(60);
    // The trim waits for the next whole half minute after the delay.
    let alignment = Duration::from_secs(30);
    let wait = (cluster.started() + delay + alignment + Duration::from_secs(30))
        .saturating_duration_since(Instant::now());
    let check = |name: &str, line: String| {
        let (before, after) = resident_before_and_after(&line)
            .unwrap_or_else(|| panic!("{name}: no 'resident A -> B MiB' in {line}"));
        eprintln!("E2E: {name}: resident {before} -> {after} MiB at the trim");
        assert!(after < before, "{name}: {line}");
        assert!(
            !line.contains("cached pages stay"),
            "{name}: the eviction failed: {line}"
        );
    };
    for name in ["kube-apiserver", "kubelet", "containerd"] {
        let log = logs.join(format!("{name}.log"));
        let line = cluster.eventually(&format!("the trim in {}", log.display()), wait, || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .find(|l| l.contains(TRIMMED))
                .map(str::to_string)
        });
        check(name, line);
    }
    let line = cluster.eventually("the trim in the k3r server's log", wait, || {
        cluster.log_line(TRIMMED)
    });
    check("k3r server", line);
    // Pods start later than the server: 90 s past their start at most.
    let pod_wait = wait.max(delay + alignment + Duration::from_secs(30));
    for (name, selector) in [
        ("operators", "app.kubernetes.io/name=k3r-operators"),
        (
            "node operators",
            "app.kubernetes.io/name=k3r-node-operators",
        ),
        ("coredns", "k8s-app=kube-dns"),
    ] {
        let line = cluster.eventually(&format!("the trim in {name}'s log"), pod_wait, || {
            let logs = cluster.kubectl(&["-n", "kube-system", "logs", "-l", selector, "--tail=-1"]);
            String::from_utf8_lossy(&logs.stdout)
                .lines()
                .find(|l| l.contains(TRIMMED))
                .map(str::to_string)
        });
        check(name, line);
    }
}

/// "… resident 312 -> 201 MiB" -> (312, 201).
fn resident_before_and_after(line: &str) -> Option<(u64, u64)> {
    let rest = line.split("resident ").nth(1)?;
    let mut numbers = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    Some((numbers.next()?.parse().ok()?, numbers.next()?.parse().ok()?))
}
