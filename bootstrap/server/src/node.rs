//! The node side of a server: host setup, containerd with k3r's images,
//! and the CNI config once the node has its pod CIDR.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;
use crate::layout::{Layout, RUN_DIR, containerd_socket};

/// Mount propagation, forwarding and bridge netfilter, as kubelet and
/// kube-proxy expect them.
pub fn prepare_host() -> Result<(), Error> {
    use nix::mount::{MsFlags, mount};
    let shared = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|info| {
            info.lines()
                .any(|l| l.split(' ').nth(4) == Some("/") && l.contains("shared:"))
        })
        .unwrap_or(false);
    if !shared {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Error::Host(format!("mount --make-rshared /: {e}")))?;
    }
    if !Path::new("/proc/sys/net/bridge").exists() {
        let _ = std::process::Command::new("modprobe")
            .arg("br_netfilter")
            .status();
    }
    for (key, value) in [
        ("net/ipv4/ip_forward", "1"),
        ("net/bridge/bridge-nf-call-iptables", "1"),
        ("net/bridge/bridge-nf-call-ip6tables", "1"),
    ] {
        let path = Path::new("/proc/sys").join(key);
        if path.exists() {
            std::fs::write(&path, value)
                .map_err(|e| Error::Host(format!("sysctl {key}={value}: {e}")))?;
        }
    }
    Ok(())
}

pub fn containerd_config(layout: &Layout) -> String {
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # Firecracker-style sandboxes refuse negative oom_score_adj.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{cni}"
"#,
        root = layout.containerd_root().display(),
        state = Path::new(RUN_DIR).join("containerd").display(),
        socket = containerd_socket().display(),
        pause = k3r_images::PAUSE_IMAGE,
        cni = layout.cni_conf_dir().display(),
    )
}

pub async fn wait_for_containerd(timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let ok = tokio::process::Command::new("ctr")
            .args(["-a", &containerd_socket().to_string_lossy(), "version"])
            .output()
            .await
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Host(
                "containerd did not come up (see logs/containerd.log)".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Imports one image tarball into the k8s.io namespace and pins what it
/// brought in.
pub async fn import_image(file: &Path) -> Result<Vec<String>, Error> {
    let socket = containerd_socket().to_string_lossy().into_owned();
    let output = tokio::process::Command::new("ctr")
        .args([
            "-a",
            &socket,
            "-n",
            "k8s.io",
            "images",
            "import",
            "--all-platforms",
        ])
        .arg(file)
        .output()
        .await
        .map_err(|e| Error::Host(format!("ctr: {e}")))?;
    if !output.status.success() {
        return Err(Error::Host(format!(
            "importing {}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    // ctr prints "unpacking <ref> (<digest>)...done" per image.
    let refs: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| {
            l.strip_prefix("unpacking ")
                .and_then(|r| r.split(' ').next())
                .map(String::from)
        })
        .collect();
    for reference in &refs {
        let _ = tokio::process::Command::new("ctr")
            .args([
                "-a",
                &socket,
                "-n",
                "k8s.io",
                "images",
                "label",
                reference,
                "io.cri-containerd.pinned=pinned",
            ])
            .output()
            .await;
    }
    Ok(refs)
}

/// Writes k3r's own images and imports them with everything in
/// agent/images (the airgap path).
pub async fn import_images(layout: &Layout) -> Result<(), Error> {
    let own = layout.agent().join("k3r-images");
    std::fs::create_dir_all(&own).map_err(|e| Error::Io(own.clone(), e))?;
    let pause = own.join("pause.tar");
    k3r_images::write_image(&k3r_images::pause_image(), &pause)
        .map_err(|e| Error::Host(e.to_string()))?;
    let mut files = vec![pause];
    std::fs::create_dir_all(layout.images()).map_err(|e| Error::Io(layout.images(), e))?;
    let mut airgap: Vec<PathBuf> = std::fs::read_dir(layout.images())
        .map_err(|e| Error::Io(layout.images(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.to_string_lossy();
            name.ends_with(".tar")
                || name.ends_with(".tar.gz")
                || name.ends_with(".tgz")
                || name.ends_with(".tar.zst")
        })
        .collect();
    airgap.sort();
    files.extend(airgap);
    for file in files {
        let started = Instant::now();
        let refs = import_image(&file).await?;
        tracing::info!(file = %file.display(), images = ?refs, seconds = started.elapsed().as_secs_f32(), "imported images");
    }
    Ok(())
}

/// Builds (when the binary changed) and imports the operators image made
/// from the running k3r.
pub async fn import_operators_image(layout: &Layout) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(|e| Error::Host(format!("locating k3r: {e}")))?;
    let own = layout.agent().join("k3r-images");
    let tarball = own.join("k3r-operators.tar");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = matches!((modified(&tarball), modified(&exe)), (Some(t), Some(e)) if t > e);
    if !fresh {
        let started = Instant::now();
        let (exe2, work, out) = (exe.clone(), own.join("build"), tarball.clone());
        tokio::task::spawn_blocking(move || -> Result<(), Error> {
            let spec = k3r_images::own_image(&exe2, &k3r_images::operators_image(), &work)
                .map_err(|e| Error::Host(e.to_string()))?;
            k3r_images::write_image(&spec, &out).map_err(|e| Error::Host(e.to_string()))?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Host(e.to_string()))??;
        tracing::info!(
            seconds = started.elapsed().as_secs_f32(),
            "operators image built"
        );
    }
    let started = Instant::now();
    let refs = import_image(&tarball).await?;
    tracing::info!(images = ?refs, seconds = started.elapsed().as_secs_f32(), "operators image imported");
    Ok(())
}

/// The bridge CNI config for this node's pod CIDR.
pub fn cni_config(pod_cidr: &str, cluster_cidr: &str) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "cbr0",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "isDefaultGateway": true,
                "hairpinMode": true,
                "forceAddress": true,
                "ipMasq": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": pod_cidr }]],
                    "dataDir": "/var/lib/cni/k3r"
                }
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
            { "type": "bandwidth", "capabilities": { "bandwidth": true } }
        ],
        "k3r-cluster-cidr": cluster_cidr
    })
    .to_string()
}

pub fn write_cni_config(layout: &Layout, pod_cidr: &str, cluster_cidr: &str) -> Result<(), Error> {
    let dir = layout.cni_conf_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io(dir.clone(), e))?;
    let path = dir.join("10-k3r.conflist");
    let contents = cni_config(pod_cidr, cluster_cidr);
    if std::fs::read_to_string(&path).ok().as_deref() != Some(contents.as_str()) {
        std::fs::write(&path, contents).map_err(|e| Error::Io(path.clone(), e))?;
    }
    Ok(())
}

/// The host's resolv.conf if it names a usable resolver, else a fallback
/// (kubelet refuses a resolv.conf that points at loopback for pods).
pub fn resolv_conf(layout: &Layout) -> Result<PathBuf, Error> {
    let host = Path::new("/etc/resolv.conf");
    let usable = std::fs::read_to_string(host)
        .map(|text| {
            text.lines().any(|l| {
                l.trim().strip_prefix("nameserver").is_some_and(|ip| {
                    ip.trim()
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| !ip.is_loopback())
                })
            })
        })
        .unwrap_or(false);
    if usable {
        return Ok(host.to_path_buf());
    }
    let fallback = layout.agent_etc().join("resolv.conf");
    std::fs::write(&fallback, "nameserver 8.8.8.8\n")
        .map_err(|e| Error::Io(fallback.clone(), e))?;
    Ok(fallback)
}
