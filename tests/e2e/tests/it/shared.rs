//! The one cluster the areas share: booted on first use, in a data dir of
//! its own on free ports, and torn down (processes, mounts, interfaces,
//! rules) when the run ends. A boot failure fails every area that needs
//! the cluster, each saying why; an area that fails leaves the cluster to
//! the next one.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libtest_mimic::Failed;

use crate::cluster::{Cluster, free_port, pack_busybox, pack_coredns, pack_traefik};

pub struct Shared {
    /// Agents joined by the agents area (dropped before the server).
    pub multi: Option<crate::agents::MultiNode>,
    pub cluster: Cluster,
    pub data_dir: PathBuf,
    pub port: u16,
    /// When the slow-hook HelmChart was applied (see `operators`).
    pub slow_hook_applied: Option<Instant>,
    /// The restart area stops the cluster for good.
    pub consumed: bool,
    /// A registry (TLS, htpasswd) the server's registries.yaml names as
    /// docker.io's mirror; stopped after the cluster.
    pub mirror: k3r_helm_oracle::Registry,
    /// Its CA, as registries.yaml names it.
    pub mirror_ca: PathBuf,
    _dir: tempfile::TempDir,
}

static SHARED: Mutex<Option<Result<Shared, String>>> = Mutex::new(None);

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

fn boot() -> Result<Shared, String> {
    catch_unwind(|| {
        let dir = tempfile::Builder::new()
            .prefix("k3r-e2e-")
            .tempdir()
            .expect("tempdir");
        let data_dir = dir.path().join("data");
        // The airgap path: tarballs in agent/images are imported at start.
        std::fs::create_dir_all(data_dir.join("agent/images")).expect("images dir");
        pack_busybox(&data_dir.join("agent/images/busybox.tar"));
        pack_coredns(&data_dir.join("agent/images/coredns.tar"));
        pack_traefik(&data_dir.join("agent/images/traefik.tar"));
        let mirror = k3r_helm_oracle::Registry::start_tls("127.0.0.1").expect("docker-registry");
        let mirror_ca = dir.path().join("mirror-ca.crt");
        std::fs::write(&mirror_ca, mirror.ca_pem.as_deref().expect("TLS")).expect("CA");
        let registries = dir.path().join("registries.yaml");
        std::fs::write(
            &registries,
            format!(
                "mirrors:\n  docker.io:\n    endpoint:\n      - \"https://{host}\"\n\
                 configs:\n  \"{host}\":\n    auth:\n      username: {user}\n      \
                 password: {password}\n    tls:\n      ca_file: {ca}\n",
                host = mirror.host,
                user = mirror.username,
                password = mirror.password,
                ca = mirror_ca.display(),
            ),
        )
        .expect("registries.yaml");
        let port = free_port();
        let private_registry = format!("--private-registry={}", registries.display());
        let mut cluster = Cluster::start(
            &data_dir,
            port,
            &[&private_registry, "--supervisor-metrics"],
        );
        let ready = cluster.wait_ready(Duration::from_secs(240));
        eprintln!("E2E: fresh data dir: node Ready after {ready:.1} s");
        let dns = crate::addons::coredns_ready(&cluster);
        eprintln!("E2E: fresh data dir: CoreDNS Ready after {dns:.1} s");
        Shared {
            multi: None,
            cluster,
            data_dir,
            port,
            slow_hook_applied: None,
            consumed: false,
            mirror,
            mirror_ca,
            _dir: dir,
        }
    })
    .map_err(panic_message)
}

/// Runs `area` against the shared cluster, booting it first if needed.
pub fn with_cluster(area: impl FnOnce(&mut Shared)) -> Result<(), Failed> {
    let mut guard = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    let shared = guard.get_or_insert_with(boot);
    match shared {
        Err(why) => Err(format!("the shared cluster did not boot: {why}").into()),
        Ok(shared) if shared.consumed => {
            Err("the shared cluster was stopped by the restart area, which runs last".into())
        }
        Ok(shared) => catch_unwind(AssertUnwindSafe(|| area(shared)))
            .map_err(|p| Failed::from(panic_message(p))),
    }
}

/// Stops the shared cluster, if one was booted, and cleans the host.
pub fn teardown() {
    let shared = SHARED.lock().unwrap_or_else(|p| p.into_inner()).take();
    drop(shared);
}
