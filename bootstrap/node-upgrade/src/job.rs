//! `k3r upgrade-node`, what the upgrade Job runs on the node (host root
//! at /host, host PIDs): find the node's k3r by its record, apply the
//! version policy, swap the binaries from the image's payload, request
//! the switch and wait for its outcome — a ready boot on the new version,
//! or the watchdog's rollback, which fails the Job with its reason (and
//! fails any later attempt at the same version at once, so the Plan stops
//! there instead of retrying a broken release).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k3r_node::record;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::install::{self, Swapped};
use crate::policy::{self, Decision, Refusal};
use crate::switch::{self, Request, Rollback};
use crate::watch::{self, Host};

/// Extra time the Job waits past the health deadline: the watchdog's
/// rollback and the old k3r's return take that long at most.
const OUTCOME_GRACE: Duration = Duration::from_secs(240);

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no k3r node record for node {node} at {path} (is k3r {version} or later running there?)", path = .path.display(), version = k3r_version::tag())]
    NoRecord { node: String, path: PathBuf },
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the switch of node {node} to {} was rolled back: {}", .rollback.to, .rollback.reason)]
    RolledBack { node: String, rollback: Rollback },
    #[error(transparent)]
    Install(#[from] install::InstallError),
    #[error("payload {0}: {1}")]
    Payload(PathBuf, String),
    #[error("cannot signal k3r (PID {0}): {1}")]
    Signal(u32, nix::Error),
    #[error("writing the switch request: {0}")]
    Request(std::io::Error),
    #[error("node {node}: no outcome of the switch to {to} within {seconds} s")]
    NoOutcome {
        node: String,
        to: String,
        seconds: u64,
    },
}

pub struct JobConfig {
    pub node: String,
    /// The host's root as the Job sees it (`/host`).
    pub host_root: PathBuf,
    /// The image's payload: `k3r` and `version` (and `k3r-kube` for a k3r
    /// that carries no runtime).
    pub payload: PathBuf,
    pub deadline: Duration,
    /// The k3r versions of the cluster's servers (for an agent).
    pub servers: Vec<String>,
}

impl JobConfig {
    fn records(&self) -> PathBuf {
        on_host(&self.host_root, Path::new(record::DIR))
    }

    pub fn target_version(&self) -> Result<String, JobError> {
        let path = self.payload.join("version");
        std::fs::read_to_string(&path)
            .map(|v| v.trim().to_string())
            .map_err(|e| JobError::Payload(path, e.to_string()))
    }
}

/// `path` (a host path) as seen under `host_root`.
pub fn on_host(host_root: &Path, path: &Path) -> PathBuf {
    host_root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The role of the node's k3r, from its record: `server` or `agent`.
pub fn role(config: &JobConfig) -> Result<String, JobError> {
    let records = config.records();
    record::read_in(&records, &config.node)
        .map(|r| r.role)
        .map_err(|_| JobError::NoRecord {
            node: config.node.clone(),
            path: record::path_in(&records, &config.node),
        })
}

/// Runs the upgrade; a one-line summary of what happened.
pub fn run(config: &JobConfig) -> Result<String, JobError> {
    let records = config.records();
    let node = &config.node;
    let current = record::read_in(&records, node).map_err(|_| JobError::NoRecord {
        node: node.clone(),
        path: record::path_in(&records, node),
    })?;
    let target = config.target_version()?;
    if let Some(rollback) = switch::rollback(&records, node)
        && rollback.to.trim_start_matches('v') == target.trim_start_matches('v')
    {
        return Err(JobError::RolledBack {
            node: node.clone(),
            rollback,
        });
    }
    let decision = policy::decide(
        &current.version,
        &target,
        current.role == "agent",
        &config.servers,
    )?;
    if decision == Decision::Current && current.ready {
        return Ok(format!("node {node} already runs k3r {target}"));
    }
    let mut replaced = Vec::new();
    for (binary, host_path) in [("k3r", &current.exe), ("k3r-kube", &current.kube_binary)] {
        // A k3r that carries its runtime brings its own k3r-kube: the
        // image then has none, and the node's extracted one stays.
        if binary == "k3r-kube" && !config.payload.join(binary).exists() {
            continue;
        }
        let dest = on_host(&config.host_root, host_path);
        if install::replace(&dest, &config.payload.join(binary))? == Swapped::Replaced {
            tracing::info!(binary = %host_path.display(), "replaced; the previous one kept as .prev");
            replaced.push(host_path.clone());
        }
    }
    let request = Request {
        from: current.version.clone(),
        to: target.clone(),
        deadline_seconds: config.deadline.as_secs(),
        replaced,
        requested_at: switch::now(),
    };
    switch::request(&records, node, &request).map_err(JobError::Request)?;
    let started = Instant::now();
    let pid = i32::try_from(current.pid).unwrap_or(i32::MAX);
    kill(Pid::from_raw(pid), Signal::SIGUSR2).map_err(|e| JobError::Signal(current.pid, e))?;
    tracing::info!(node, from = %current.version, to = %target, "switch requested");
    let probe = Host { records: &records };
    let limit = config.deadline + OUTCOME_GRACE;
    while started.elapsed() < limit {
        if watch::ready_on(&probe, node, None, &target) {
            switch::clear_rollback(&records, node);
            return Ok(format!(
                "node {node} switched from k3r {} to {target} in {:.1} s",
                current.version,
                started.elapsed().as_secs_f64()
            ));
        }
        if let Some(rollback) = switch::rollback(&records, node)
            && rollback.to == target
        {
            return Err(JobError::RolledBack {
                node: node.clone(),
                rollback,
            });
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(JobError::NoOutcome {
        node: node.clone(),
        to: target,
        seconds: limit.as_secs(),
    })
}
