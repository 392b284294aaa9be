//! containerd for a node: its config, waiting for it, and importing image
//! tarballs (k3r's own and the airgap directory), pinned.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::{Executor, ProcessSpec, Supervised};
use crate::{Error, NodePaths};

/// containerd's config.toml for this node.
pub fn config(paths: &NodePaths) -> String {
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
  # runc's state next to this containerd's, not the host-wide default.
  Root = "{runc}"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{cni}"
"#,
        root = paths.containerd_root().display(),
        state = paths.containerd_state().display(),
        socket = paths.containerd_socket().display(),
        pause = k3r_images::PAUSE_IMAGE,
        cni = paths.cni_conf_dir().display(),
        runc = paths.containerd_state().join("runc").display(),
    )
}

/// Writes the node's containerd config and starts containerd (`program`,
/// output to `log`) through `executor`. `ready` then waits for it.
pub fn launch(
    executor: &dyn Executor,
    paths: &NodePaths,
    program: PathBuf,
    log: PathBuf,
) -> Result<Supervised, Error> {
    let dir = paths.etc().join("containerd");
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io(dir.clone(), e))?;
    let conf = dir.join("config.toml");
    std::fs::write(&conf, config(paths)).map_err(|e| Error::Io(conf.clone(), e))?;
    Ok(executor.start(ProcessSpec {
        name: "containerd".into(),
        program,
        args: vec!["--config".into(), conf.display().to_string()],
        env: crate::process::go_env(),
        cwd: None,
        log,
    }))
}

/// Waits for a launched containerd to answer, then imports k3r's and the
/// airgap images.
pub async fn ready(paths: &NodePaths) -> Result<(), Error> {
    wait(paths, Duration::from_secs(60)).await?;
    import_images(paths).await
}

pub async fn wait(paths: &NodePaths, timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let ok = tokio::process::Command::new("ctr")
            .args([
                "-a",
                &paths.containerd_socket().to_string_lossy(),
                "version",
            ])
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

/// `ctr -a <socket> -n k8s.io images …`
async fn ctr_images(paths: &NodePaths, args: &[&str]) -> std::io::Result<std::process::Output> {
    tokio::process::Command::new("ctr")
        .arg("-a")
        .arg(paths.containerd_socket())
        .args(["-n", "k8s.io", "images"])
        .args(args)
        .output()
        .await
}

/// `ctr … images <args>` that must succeed; `doing` names it in the error.
async fn ctr_images_ok(
    paths: &NodePaths,
    args: &[&str],
    doing: impl FnOnce() -> String,
) -> Result<std::process::Output, Error> {
    let output = ctr_images(paths, args)
        .await
        .map_err(|e| Error::Host(format!("ctr: {e}")))?;
    if !output.status.success() {
        return Err(Error::Host(format!(
            "{}: {}",
            doing(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output)
}

/// Pins `reference`, so the kubelet's image garbage collection keeps it.
async fn pin(paths: &NodePaths, reference: &str) {
    let _ = ctr_images(
        paths,
        &["label", reference, "io.cri-containerd.pinned=pinned"],
    )
    .await;
}

/// Imports one image tarball into the k8s.io namespace and pins what it
/// brought in.
pub async fn import_image(paths: &NodePaths, file: &Path) -> Result<Vec<String>, Error> {
    let output = ctr_images_ok(
        paths,
        &["import", "--all-platforms", &file.to_string_lossy()],
        || format!("importing {}", file.display()),
    )
    .await?;
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
        pin(paths, reference).await;
    }
    Ok(refs)
}

/// Points `target` at the image `source` names (replacing what it named),
/// pinned as imported images are.
pub async fn tag_image(paths: &NodePaths, source: &str, target: &str) -> Result<(), Error> {
    ctr_images_ok(paths, &["tag", "--force", source, target], || {
        format!("tagging {source} as {target}")
    })
    .await?;
    pin(paths, target).await;
    Ok(())
}

/// Writes k3r's own images and imports them with everything in
/// agent/images (the airgap path).
pub async fn import_images(paths: &NodePaths) -> Result<(), Error> {
    let own = paths.own_images();
    std::fs::create_dir_all(&own).map_err(|e| Error::Io(own.clone(), e))?;
    let pause = own.join("pause.tar");
    k3r_images::write_image(&k3r_images::pause_image(), &pause)
        .map_err(|e| Error::Host(e.to_string()))?;
    let mut files = vec![pause];
    std::fs::create_dir_all(paths.images()).map_err(|e| Error::Io(paths.images(), e))?;
    let mut airgap: Vec<PathBuf> = std::fs::read_dir(paths.images())
        .map_err(|e| Error::Io(paths.images(), e))?
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
        let refs = import_image(paths, &file).await?;
        tracing::info!(file = %file.display(), images = ?refs, seconds = started.elapsed().as_secs_f32(), "imported images");
    }
    Ok(())
}
