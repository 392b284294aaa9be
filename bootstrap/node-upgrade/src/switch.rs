//! The files beside a node's record (`<node>.json` in
//! [`k3r_node::record::DIR`]) that carry an upgrade across the switch:
//! the Job's request (what to switch to, the binaries it replaced, the
//! health deadline), taken by k3r when SIGUSR2 arrives; and the
//! watchdog's rollback (why the switch was undone), which the Job reports
//! and which stops later attempts at the same version.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub from: String,
    pub to: String,
    /// How long the new boot has to become ready.
    pub deadline_seconds: u64,
    /// The binaries replaced (each has a `.prev`), by their host paths.
    pub replaced: Vec<PathBuf>,
    pub requested_at: String,
}

impl Request {
    pub fn deadline(&self) -> Duration {
        Duration::from_secs(self.deadline_seconds)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    pub from: String,
    pub to: String,
    pub reason: String,
    pub at: String,
}

fn path(dir: &Path, node: &str, kind: &str) -> PathBuf {
    dir.join(format!("{node}.{kind}.json"))
}

fn write<T: Serialize>(dir: &Path, node: &str, kind: &str, value: &T) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let target = path(dir, node, kind);
    let tmp = dir.join(format!(".{node}.{kind}.tmp"));
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, target)
}

fn read<T: DeserializeOwned>(dir: &Path, node: &str, kind: &str) -> Option<T> {
    let text = std::fs::read(path(dir, node, kind)).ok()?;
    serde_json::from_slice(&text).ok()
}

pub fn request(dir: &Path, node: &str, request: &Request) -> std::io::Result<()> {
    write(dir, node, "switch", request)
}

/// The pending request, removed as it is taken (one switch per request).
pub fn take_request(dir: &Path, node: &str) -> Option<Request> {
    let found = read(dir, node, "switch");
    let _ = std::fs::remove_file(path(dir, node, "switch"));
    found
}

pub fn record_rollback(dir: &Path, node: &str, rollback: &Rollback) -> std::io::Result<()> {
    write(dir, node, "rollback", rollback)
}

pub fn rollback(dir: &Path, node: &str) -> Option<Rollback> {
    read(dir, node, "rollback")
}

pub fn clear_rollback(dir: &Path, node: &str) {
    let _ = std::fs::remove_file(path(dir, node, "rollback"));
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_taken_once_and_a_rollback_stays_until_cleared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let req = Request {
            from: "v0.1.0".into(),
            to: "v0.2.0".into(),
            deadline_seconds: 120,
            replaced: vec!["/usr/local/bin/k3r".into()],
            requested_at: now(),
        };
        request(dir.path(), "n1", &req).expect("write");
        assert_eq!(take_request(dir.path(), "n1"), Some(req));
        assert_eq!(take_request(dir.path(), "n1"), None);
        let rb = Rollback {
            from: "v0.1.0".into(),
            to: "v0.2.0".into(),
            reason: "exited".into(),
            at: now(),
        };
        record_rollback(dir.path(), "n1", &rb).expect("write");
        assert_eq!(rollback(dir.path(), "n1"), Some(rb));
        clear_rollback(dir.path(), "n1");
        assert_eq!(rollback(dir.path(), "n1"), None);
    }
}
