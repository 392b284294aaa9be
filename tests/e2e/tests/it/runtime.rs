//! The runtime k3r brings: containerd 2, runc and the CNI plugins from
//! the payload it carries (extracted under `<data dir>/data`), not from
//! the host, and `k3r crictl` / `k3r ctr` / a `crictl` link talking to
//! the node's containerd without flags.

use std::path::Path;
use std::process::Command;

use crate::cluster::k3r_binary;
use crate::process::stdout_of;
use crate::shared::Shared;

/// The executable of the process whose command line starts with `program`
/// and names `needle`.
fn exe_of(program: &str, needle: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let first = cmdline.split(' ').next().unwrap_or_default();
        if first.ends_with(program) && cmdline.contains(needle) {
            return std::fs::read_link(entry.path().join("exe")).ok();
        }
    }
    None
}

/// The first node's container runtime, as its kubelet reports it.
fn runtime_version(cluster: &crate::cluster::Cluster) -> String {
    cluster.ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.nodeInfo.containerRuntimeVersion}",
    ])
}

/// `k3r <args>` (or `<argv0> <args>`, a link to k3r) on `data_dir`'s node.
fn tool(data_dir: &Path, argv0: Option<&Path>, args: &[&str]) -> String {
    let mut command = match argv0 {
        Some(link) => Command::new(link),
        None => Command::new(k3r_binary()),
    };
    stdout_of(command.args(args).env("K3R_DATA_DIR", data_dir))
}

pub fn bundled(shared: &mut Shared) {
    let data_dir = &shared.data_dir;
    let payloads = data_dir.join("data");
    let current = std::fs::canonicalize(payloads.join("current")).expect("data/current");
    assert!(current.starts_with(std::fs::canonicalize(&payloads).expect("data")));

    // containerd runs from the extracted payload, and is 2.x.
    let containerd = exe_of("containerd", &data_dir.display().to_string())
        .expect("the node's containerd process");
    assert_eq!(containerd, current.join("bin/containerd"));
    let node = runtime_version(&shared.cluster);
    assert!(node.starts_with("containerd://2."), "{node}");
    // Its config names the bundled runc and CNI plugins.
    let config = std::fs::read_to_string(data_dir.join("agent/etc/containerd/config.toml"))
        .expect("containerd config");
    let bin = payloads
        .join(current.file_name().expect("hash"))
        .join("bin");
    for line in [
        format!("BinaryName = \"{}\"", bin.join("runc").display()),
        format!("bin_dirs = [\"{}\"]", bin.display()),
    ] {
        assert!(config.contains(&line), "{line} not in {config}");
    }

    // k3r crictl lists the node's containers; so does a link named crictl.
    let listed = tool(data_dir, None, &["crictl", "ps", "-o", "json"]);
    assert!(listed.contains("\"operators\""), "{listed}");
    let links = tempfile::tempdir().expect("links dir");
    let crictl = links.path().join("crictl");
    std::os::unix::fs::symlink(k3r_binary(), &crictl).expect("crictl link");
    let pods = tool(data_dir, Some(&crictl), &["pods", "-q"]);
    assert!(pods.lines().count() >= 2, "{pods}");
    // k3r ctr works in Kubernetes' namespace: the pause image is there.
    let images = tool(data_dir, None, &["ctr", "images", "ls", "-q"]);
    assert!(images.contains("registry.k8s.io/pause"), "{images}");
}

/// The server's registries.yaml names a TLS registry with htpasswd auth
/// (started by the harness) as docker.io's mirror: an image pushed there
/// only is pulled under its docker.io name, through the mirror.
pub fn registry_mirror(shared: &mut Shared) {
    let data_dir = shared.data_dir.clone();
    let mirror = &shared.mirror;
    let pushed = format!("{}/library/busybox:e2e-mirror", mirror.host);
    let ctr = |args: &[&str]| tool(&data_dir, None, &[&["ctr"], args].concat());
    ctr(&[
        "images",
        "tag",
        "--force",
        "docker.io/library/busybox:k3r-e2e",
        &pushed,
    ]);
    let user = format!("{}:{}", mirror.username, mirror.password);
    let ca = shared.mirror_ca.display().to_string();
    ctr(&[
        "images",
        "push",
        "--local",
        "--user",
        &user,
        "--tlscacert",
        &ca,
        &pushed,
    ]);
    ctr(&["images", "rm", &pushed]);
    let listed = ctr(&["images", "ls", "-q"]);
    assert!(!listed.contains("e2e-mirror"), "{listed}");

    let cluster = &shared.cluster;
    cluster.apply(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: through-mirror
  namespace: default
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: docker.io/library/busybox:e2e-mirror
    imagePullPolicy: Always
    command: ["/bin/busybox", "true"]
"#,
    );
    let phase = cluster.eventually(
        "the mirrored image pulled and run",
        std::time::Duration::from_secs(120),
        || {
            let phase = cluster.ok(&[
                "get",
                "pod",
                "through-mirror",
                "-o",
                "jsonpath={.status.phase}",
            ]);
            (phase == "Succeeded").then_some(phase)
        },
    );
    assert_eq!(phase, "Succeeded");
    let images = ctr(&["images", "ls", "-q"]);
    assert!(
        images.contains("docker.io/library/busybox:e2e-mirror"),
        "{images}"
    );
    cluster.ok(&["delete", "pod", "through-mirror", "--wait=false"]);
}

/// A network namespace with a veth to the host (10.214.0.1 there, .2
/// inside, its default route); deleted, with everything in it, on drop.
struct IsolatedNet;

impl IsolatedNet {
    const NAME: &'static str = "k3re2e-hid";
    const HOST_SIDE: &'static str = "k3re2e-hid0";
    const INSIDE: &'static str = "10.214.0.2";

    fn create() -> Self {
        use crate::agents::ip;
        Self::remove();
        ip(&["netns", "add", Self::NAME]);
        ip(&[
            "link",
            "add",
            Self::HOST_SIDE,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            Self::NAME,
        ]);
        ip(&["addr", "add", "10.214.0.1/24", "dev", Self::HOST_SIDE]);
        ip(&["link", "set", Self::HOST_SIDE, "up"]);
        crate::agents::configure_eth0(Self::NAME, Self::INSIDE, "10.214.0.1");
        IsolatedNet
    }

    fn remove() {
        let _ = Command::new("ip")
            .args(["netns", "delete", Self::NAME])
            .output();
        let _ = Command::new("ip")
            .args(["link", "delete", Self::HOST_SIDE])
            .output();
    }

    /// `program args` run in the namespace.
    fn run(&self, program: &Path, args: &[&str]) -> String {
        stdout_of(
            Command::new("nsenter")
                .arg(format!("--net=/run/netns/{}", Self::NAME))
                .arg(program)
                .args(args),
        )
    }
}

impl Drop for IsolatedNet {
    fn drop(&mut self) {
        Self::remove();
    }
}

/// In a fresh network namespace and a mount namespace where the host's
/// containerd, runc, CNI plugins and iptables are hidden, the k3r file
/// alone boots a Ready node that runs pods.
pub fn boots_with_the_host_runtime_hidden() {
    let dir = tempfile::Builder::new()
        .prefix("k3r-e2e-hidden-")
        .tempdir()
        .expect("tempdir");
    let data_dir = dir.path().join("data");
    let net = IsolatedNet::create();
    let port = crate::cluster::free_port();
    let mut cluster =
        crate::cluster::Cluster::start_hiding_host_runtime(&data_dir, port, IsolatedNet::NAME);
    let ready = cluster.wait_ready(std::time::Duration::from_secs(240));
    eprintln!("E2E: host runtime hidden: node Ready after {ready:.1} s");
    // kubectl from the host reaches the server at its address in the
    // namespace (a name its certificate carries, as the node IP).
    let written = std::fs::read_to_string(&cluster.kubeconfig).expect("kubeconfig");
    let outside = data_dir.join("k3r-outside.yaml");
    std::fs::write(
        &outside,
        written.replace(
            &format!("https://127.0.0.1:{port}"),
            &format!("https://{}:{port}", IsolatedNet::INSIDE),
        ),
    )
    .expect("kubeconfig from outside");
    cluster.kubeconfig = outside;
    let runtime = runtime_version(&cluster);
    assert!(runtime.starts_with("containerd://2."), "{runtime}");
    // The operators pod ran: sandbox (pause), runc, CNI all from k3r.
    cluster.eventually(
        "the operators pod Running",
        std::time::Duration::from_secs(120),
        || {
            let phase = crate::addons::operators_pods(&cluster, "{.items[*].status.phase}");
            phase.contains("Running").then_some(())
        },
    );
    // With no iptables of the host's, kube-proxy and k3r wrote their rules
    // with the bundled one (legacy tables), and the stop takes them away.
    let bundled = data_dir.join("data/current/bin/aux/iptables-save");
    let legacy_nat = || net.run(&bundled, &["-t", "nat"]);
    cluster.eventually(
        "kube-proxy's and k3r's chains in the legacy nat table",
        std::time::Duration::from_secs(60),
        || {
            let nat = legacy_nat();
            (nat.contains(":KUBE-SERVICES") && nat.contains(":K3R-POSTRTG")).then_some(())
        },
    );
    cluster.stop();
    let left = legacy_nat();
    assert!(
        !left.contains("KUBE-") && !left.contains("K3R-"),
        "k3r's chains outlived the stop: {left}"
    );
}
