//! A k3r server process with its own data dir and ports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::process::Process;

/// The k3r under test, as users get it: the cargo-built binary with the
/// runtime payload appended (target/k3r-kube from scripts/build-kube,
/// target/runtime from scripts/build-runtime), packed once per run into
/// target/e2e/k3r. `K3R_BIN` names another.
pub fn k3r_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("K3R_BIN") {
        return bin.into();
    }
    static BUNDLED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUNDLED.get_or_init(bundle).clone()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn bundle() -> PathBuf {
    let target = target_dir();
    let runtime = target.join("runtime");
    let kube = target.join("k3r-kube");
    assert!(
        runtime.join("containerd").is_file() && kube.is_file(),
        "no runtime to bundle: run scripts/build-kube and scripts/build-runtime (scripts/test does)"
    );
    let e2e = target.join("e2e");
    let tree = e2e.join("payload");
    let _ = std::fs::remove_dir_all(&tree);
    let bin = tree.join("bin");
    link_tree(&runtime, &bin);
    std::fs::hard_link(&kube, bin.join("k3r-kube")).expect("payload k3r-kube");
    let out = e2e.join("k3r");
    k3r_payload::pack(&target.join("debug").join("k3r"), &tree, &out, 1).expect("packing k3r");
    let _ = std::fs::remove_dir_all(&tree);
    out
}

/// `to` as `from`: files hard-linked, links and dirs recreated.
fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("payload tree");
    for entry in std::fs::read_dir(from).expect("target/runtime").flatten() {
        let (path, dest) = (entry.path(), to.join(entry.file_name()));
        if let Ok(link) = std::fs::read_link(&path) {
            std::os::unix::fs::symlink(link, &dest).expect("payload link");
        } else if path.is_dir() {
            link_tree(&path, &dest);
        } else {
            std::fs::hard_link(&path, &dest).expect("payload file");
        }
    }
}

/// The node's own k3r in `<data_dir>/bin` (a hard link to the one under
/// test, as if installed there), so that an upgrade replacing it (by
/// rename) touches that node alone, never the build's file.
pub fn node_binary(data_dir: &Path) -> PathBuf {
    let bin = data_dir.join("bin");
    std::fs::create_dir_all(&bin).expect("node bin dir");
    let to = bin.join("k3r");
    if !to.exists() && std::fs::hard_link(k3r_binary(), &to).is_err() {
        std::fs::copy(k3r_binary(), &to).expect("copy the node's binary");
    }
    to
}

pub fn free_port() -> u16 {
    // The apiserver takes the next port too, so ask for a pair.
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        if port < 65000 && std::net::TcpListener::bind(("0.0.0.0", port + 1)).is_ok() {
            return port;
        }
    }
}

/// Kubelet flags every e2e node gets (see spawn_server_in).
pub const NODE_KUBELET_ARGS: &[&str] = &[
    "--kubelet-arg=eviction-hard=imagefs.available<512Mi,nodefs.available<512Mi",
    "--kubelet-arg=image-gc-high-threshold=100",
    "--kubelet-arg=image-gc-low-threshold=99",
];

/// A shell script that hides the host's containerd, runc, CNI plugins and
/// iptables (Debian's packages; every iptables name links to one of the
/// two xtables multicalls) in a private mount namespace, checks they are
/// gone, and runs its arguments there.
const HIDE_HOST_RUNTIME: &str = r#"
for p in /usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/bin/ctr \
         /usr/bin/runc /usr/sbin/runc /usr/bin/crictl \
         /usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi; do
  [ -e "$p" ] && mount --bind /dev/null "$p"
done
[ -d /usr/lib/cni ] && mount -t tmpfs k3r-e2e-hidden /usr/lib/cni
if containerd --version >/dev/null 2>&1 || runc --version >/dev/null 2>&1 ||
   iptables --version >/dev/null 2>&1 || [ -e /usr/lib/cni/bridge ]; then
  echo "the host's runtime is still visible" >&2
  exit 1
fi
exec "$@"
"#;

fn spawn_server(data_dir: &Path, kubeconfig: &Path, port: u16, extra: &[&str]) -> Process {
    spawn_server_in(data_dir, kubeconfig, port, extra, None)
}

fn spawn_server_in(
    data_dir: &Path,
    kubeconfig: &Path,
    port: u16,
    extra: &[&str],
    hidden_in: Option<&str>,
) -> Process {
    let mut command = if let Some(netns) = hidden_in {
        let mut unshare = Command::new("nsenter");
        unshare
            .arg(format!("--net=/run/netns/{netns}"))
            .args([
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
            ])
            .arg(HIDE_HOST_RUNTIME)
            .arg("hide-host-runtime")
            .arg(node_binary(data_dir));
        unshare
    } else {
        Command::new(node_binary(data_dir))
    };
    command
        .arg("server")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--write-kubeconfig")
        .arg(kubeconfig)
        .arg(format!("--https-listen-port={port}"))
        .arg("--config=/nonexistent/k3r-e2e.yaml")
        // This host's disk is shared and its free space swings (down to
        // 5% of it at times): the default percentages would put the node
        // under DiskPressure mid-run and keep test pods off it, and image
        // garbage collection (from 85% used) would delete images the tests
        // imported unpinned (an upgrade image a Job's retry still needs).
        .args(NODE_KUBELET_ARGS)
        .args(extra)
        .env("K3R_LOG", "info");
    Process::spawn("k3r server", "k3r", command)
}

pub struct Cluster {
    pub data_dir: PathBuf,
    /// The supervisor port (https://127.0.0.1:PORT).
    pub port: u16,
    pub kubeconfig: PathBuf,
    process: Process,
}

impl Cluster {
    pub fn start(data_dir: &Path, port: u16, extra: &[&str]) -> Self {
        Self::start_in(data_dir, port, extra, None)
    }

    /// A server in network namespace `netns` and a mount namespace of its
    /// own where the host's containerd, runc, CNI plugins and iptables are
    /// hidden.
    pub fn start_hiding_host_runtime(data_dir: &Path, port: u16, netns: &str) -> Self {
        Self::start_in(data_dir, port, &[], Some(netns))
    }

    fn start_in(data_dir: &Path, port: u16, extra: &[&str], hidden_in: Option<&str>) -> Self {
        let kubeconfig = data_dir.join("k3r.yaml");
        let process = spawn_server_in(data_dir, &kubeconfig, port, extra, hidden_in);
        Self {
            data_dir: data_dir.to_path_buf(),
            port,
            kubeconfig,
            process,
        }
    }

    /// Stops the server and starts it again on the same data dir, leaving
    /// everything else (agents) alone; returns seconds to node Ready.
    pub fn restart(&mut self, extra: &[&str]) -> f64 {
        self.stop();
        self.start_again(extra)
    }

    /// Starts a stopped server again on the same data dir; returns seconds
    /// to node Ready.
    pub fn start_again(&mut self, extra: &[&str]) -> f64 {
        self.process = spawn_server(&self.data_dir, &self.kubeconfig, self.port, extra);
        self.wait_ready(Duration::from_secs(240))
    }

    /// Waits for the server's "node Ready" progress line; returns seconds.
    pub fn wait_ready(&mut self, timeout: Duration) -> f64 {
        self.process.wait_for_line("node Ready", timeout)
    }

    /// The first line of this server's own log that contains `needle`.
    pub fn log_line(&self, needle: &str) -> Option<String> {
        self.process.line_containing(needle)
    }

    /// When this server was started.
    pub fn started(&self) -> Instant {
        self.process.started
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    /// A kubectl command against this cluster, not yet run.
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(k3r_binary());
        command
            .arg("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            // kubectl from the payload the server extracted.
            .env("K3R_DATA_DIR", &self.data_dir);
        command
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .kubectl_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("kubectl output")
    }

    /// `kubectl apply -f -` of `yaml`, which must succeed.
    pub fn apply(&self, yaml: &str) {
        let applied = self.kubectl_stdin(&["apply", "-f", "-"], Some(yaml));
        assert!(
            applied.status.success(),
            "{}",
            String::from_utf8_lossy(&applied.stderr)
        );
    }

    /// kubectl that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Retries `check` until it returns Some or the timeout passes.
    /// Every node's k3r-node-operators pod rolled out (an agent that just
    /// joined may still be importing the operators image).
    pub fn wait_node_operators(&self) {
        self.ok(&[
            "-n",
            "kube-system",
            "rollout",
            "status",
            "daemonset/k3r-node-operators",
            "--timeout=180s",
        ]);
    }

    pub fn eventually<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check() {
                return v;
            }
            if Instant::now() >= deadline {
                panic!("timed out waiting for {what}\n{}", self.diagnosis());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Node conditions, pods and recent events: what a timeout needs to be
    /// understood from a CI log alone.
    pub fn diagnosis(&self) -> String {
        let queries: [&[&str]; 3] = [
            &[
                "get",
                "nodes",
                "-o",
                "custom-columns=NAME:.metadata.name,CONDITIONS:.status.conditions[?(@.status==\"True\")].type,TAINTS:.spec.taints[*].key",
            ],
            &["get", "pods", "-A", "-o", "wide"],
            &["get", "events", "-A", "--sort-by=.lastTimestamp"],
        ];
        let mut report = String::new();
        for args in queries {
            let out = self.kubectl(args);
            let text = String::from_utf8_lossy(&out.stdout);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            report.push_str(&format!(
                "--- kubectl {}\n{}\n{}",
                args.join(" "),
                tail.join("\n"),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        report
    }

    /// SIGTERM and wait; returns seconds the stop took.
    pub fn stop(&mut self) -> f64 {
        match self.process.terminate() {
            Some((status, seconds)) => {
                assert!(
                    status.success(),
                    "k3r server exited with {status} after SIGTERM"
                );
                seconds
            }
            None => 0.0,
        }
    }

    /// The InternalIP of the (first) node.
    pub fn node_ip(&self) -> String {
        self.ok(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[0].status.addresses[?(@.type==\"InternalIP\")].address}",
        ])
    }

    /// When this server was started, as Kubernetes prints times (UTC, to
    /// the second, rounded down).
    pub fn started_rfc3339(&self) -> String {
        let started = std::time::SystemTime::now() - self.process.started.elapsed();
        let seconds = started
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let out = Command::new("date")
            .args(["-u", "-d", &format!("@{seconds}"), "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .expect("date");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The server's own node (the one that is not an e2e agent).
    pub fn server_node(&self) -> String {
        self.ok(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"])
            .split_whitespace()
            .find(|n| !n.starts_with("e2e-agent"))
            .expect("the server node")
            .to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.process.kill();
        let _ = Command::new(k3r_binary())
            .arg("killall")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .status();
    }
}

/// Processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{pid}: {cmd}"));
            }
        }
    }
    found
}

pub fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir) || p.starts_with("/run/k3r"))
        .map(String::from)
        .collect()
}

/// Packs Debian's busybox-static with k3r's image tooling.
pub fn pack_busybox(output: &Path) {
    let mut args: Vec<String> = vec![
        "image".into(),
        "pack".into(),
        "--name".into(),
        "docker.io/library/busybox:k3r-e2e".into(),
        "--add".into(),
        "/bin/busybox:/bin/busybox".into(),
        "-o".into(),
        output.display().to_string(),
    ];
    for applet in [
        "sh", "httpd", "wget", "hostname", "cat", "echo", "sleep", "mkdir", "nc", "ls", "nslookup",
    ] {
        args.push("--symlink".into());
        args.push(format!("bin/{applet}=busybox"));
    }
    let status = Command::new(k3r_binary())
        .args(&args)
        .status()
        .expect("k3r image pack");
    assert!(
        status.success(),
        "packing busybox (needs Debian's busybox-static)"
    );
}

/// The e2e's UDP server, CoreDNS answering `probe.test` with 10.1.2.3 on
/// UDP 5353 (named port `dns`): its ConfigMap `corefile` in `namespace`.
pub fn probe_dns_config(namespace: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: corefile, namespace: {namespace}}}
data:
  Corefile: |
    .:5353 {{
        hosts {{
            10.1.2.3 probe.test
        }}
    }}
"#
    )
}

/// Its container and volume, in flow style (for any indentation).
/// The benchmarks' backend container: busybox serving forward-bench's
/// protocol on :9000 (`nc -ll -e sh`: a process per connection; the first
/// byte says sink (s) or echo (e)).
pub const BENCH_BACKEND_CONTAINER: &str = r#"{name: backend, image: docker.io/library/busybox:k3r-e2e, imagePullPolicy: Never,
          command: [nc, -ll, -p, "9000", -e, sh, -c, 'read -n 1 mode; if [ "$mode" = e ]; then cat; else cat >/dev/null; fi'],
          ports: [{name: bench, containerPort: 9000}],
          readinessProbe: {tcpSocket: {port: 9000}, periodSeconds: 2}}"#;

pub const PROBE_DNS_CONTAINER: &str = r#"{name: dns, image: "docker.io/coredns/coredns:1.15.0", imagePullPolicy: Never, args: ["-conf", "/etc/probe/Corefile"], ports: [{name: dns, containerPort: 5353, protocol: UDP}], volumeMounts: [{name: corefile, mountPath: /etc/probe}]}"#;
pub const PROBE_DNS_VOLUME: &str = "{name: corefile, configMap: {name: corefile}}";

/// A one-replica Deployment `dns` (label app=dns) of it, with its ConfigMap.
pub fn probe_dns_deployment(namespace: &str) -> String {
    format!(
        r#"{config}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: dns, namespace: {namespace}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: dns}}}}
  template:
    metadata: {{labels: {{app: dns}}}}
    spec:
      containers: [{PROBE_DNS_CONTAINER}]
      volumes: [{PROBE_DNS_VOLUME}]
"#,
        config = probe_dns_config(namespace)
    )
}

/// Builds upstream CoreDNS from its Go module and packs it for agent/images
/// (scripts/coredns-image; the build is cached outside the repository).
pub fn pack_coredns(output: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/coredns-image");
    let status = Command::new(script)
        .arg(output)
        .arg(k3r_binary())
        .status()
        .expect("scripts/coredns-image");
    assert!(status.success(), "building and packing CoreDNS");
}

/// Builds traefik from its Go module and packs it for agent/images
/// (scripts/traefik-image; the build is cached outside the repository).
pub fn pack_traefik(output: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/traefik-image");
    let status = Command::new(script)
        .arg(output)
        .arg(k3r_binary())
        .status()
        .expect("scripts/traefik-image");
    assert!(status.success(), "building and packing traefik");
}

/// Pod network namespaces no process is in: what a stopped node must not
/// leave (the same listing `k3r` cleans up with).
pub use k3r_node::cleanup::orphaned_pod_netns;
