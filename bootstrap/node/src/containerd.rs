//! containerd for a node: its config, waiting for it, and importing image
//! tarballs (k3r's own and the airgap directory), pinned.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::{Executor, ProcessSpec, Supervised};
use crate::registries::RegistrySettings;
use crate::{Error, NodePaths};

/// containerd's config.toml for this node (config version 3, containerd
/// 2.x), naming the node's own runc and CNI plugins and the registry
/// hosts dir (`certs.d`, from registries.yaml).
pub fn config(paths: &NodePaths, registries: &RegistrySettings) -> String {
    let mut config = format!(
        r#"version = 3
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{pause}"

[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = "{hosts}"

[plugins.'io.containerd.cri.v1.runtime']
  # Firecracker-style sandboxes refuse negative oom_score_adj.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  # containerd 2 asks every shim for CPU stats each second by default;
  # the kubelet's own housekeeping is 10 s. Every 10 s saved an idle node
  # about 0.8 CPU-s per 120 s in containerd and three shims
  # (docs/benchmarks.md).
  stats_collect_period = "10s"

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = "runc"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = "{runc}"
  # runc's state next to this containerd's, not the host-wide default.
  Root = "{runc_root}"

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["{cni_bin}"]
  conf_dir = "{cni}"
"#,
        root = paths.containerd_root().display(),
        state = paths.containerd_state().display(),
        socket = paths.containerd_socket().display(),
        pause = k3r_images::PAUSE_IMAGE,
        hosts = paths.registry_hosts().display(),
        runc = paths.program("runc").display(),
        runc_root = paths.containerd_state().join("runc").display(),
        cni_bin = paths.bin.display(),
        cni = paths.cni_conf_dir().display(),
    );
    config += &crate::registries::auth_config(registries);
    config
}

/// Writes the node's containerd config and starts containerd (`program`,
/// output to `log`) through `executor`. `ready` then waits for it.
pub fn launch(
    executor: &dyn Executor,
    paths: &NodePaths,
    registries: &RegistrySettings,
    program: PathBuf,
    log: PathBuf,
) -> Result<Supervised, Error> {
    let dir = paths.etc().join("containerd");
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io(dir.clone(), e))?;
    let conf = dir.join("config.toml");
    std::fs::write(&conf, config(paths, registries)).map_err(|e| Error::Io(conf.clone(), e))?;
    crate::registries::write_hosts(registries, &paths.registry_hosts())?;
    let crictl = crate::crictl_config(&paths.agent_dir);
    let endpoint = format!("unix://{}", paths.containerd_socket().display());
    std::fs::write(
        &crictl,
        format!("runtime-endpoint: {endpoint}\nimage-endpoint: {endpoint}\n"),
    )
    .map_err(|e| Error::Io(crictl.clone(), e))?;
    Ok(executor.start(ProcessSpec {
        name: "containerd".into(),
        program,
        args: vec!["--config".into(), conf.display().to_string()],
        env: crate::process::with_search_path(crate::process::go_env(), &paths.search_path),
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
        let ok = tokio::process::Command::new(paths.program("ctr"))
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
    tokio::process::Command::new(paths.program("ctr"))
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
        // --local: the client-side import, which names each image it
        // brings in on a line of its own (the transfer service's progress
        // display drops some).
        &[
            "import",
            "--local",
            "--all-platforms",
            &file.to_string_lossy(),
        ],
        || format!("importing {}", file.display()),
    )
    .await?;
    let refs = imported_refs(&String::from_utf8_lossy(&output.stdout));
    for reference in &refs {
        pin(paths, reference).await;
    }
    Ok(refs)
}

/// The references an import brought in, from ctr's output:
/// `unpacking <ref> (<digest>)...done` per image (`<ref>  saved` through
/// containerd 2's transfer service).
fn imported_refs(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("unpacking"), Some(reference)) => Some(reference.to_string()),
                (Some(reference), Some("saved")) => Some(reference.to_string()),
                _ => None,
            }
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imported_refs_from_containerd_2_and_1_output() {
        let two = "registry.k8s.io/pause:3.10              \tsaved\t\n\
                   application/vnd.oci.image.manifest.v1+json sha256:8c42\n\
                   Importing\telapsed: 0.0 s\ttotal:   0.0 B\t(0.0 B/s)\t\n";
        assert_eq!(imported_refs(two), ["registry.k8s.io/pause:3.10"]);
        let one = "unpacking docker.io/k3r/k3r-operators:v0.1.0 (sha256:90e8)...done\n";
        assert_eq!(imported_refs(one), ["docker.io/k3r/k3r-operators:v0.1.0"]);
    }
}
