//! The node record: what a running `k3r server` or `k3r agent` is, for
//! the upgrade Job on that node (which finds k3r there by its node name,
//! with the host's /run mounted): its PID, version, binaries, data dir,
//! and whether this boot finished. Written atomically at boot and when
//! ready; removed when k3r stops for good, kept across a switch.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the records are (one file per node name, `<node>.json`).
pub const DIR: &str = "/run/k3r-nodes";

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NodeRecord {
    pub node: String,
    /// `server` or `agent`.
    pub role: String,
    pub pid: u32,
    /// k3r's version, as `k3r --version` prints it.
    pub version: String,
    /// The k3r binary, by the path it was started from.
    pub exe: PathBuf,
    /// The upstream multicall it runs.
    pub kube_binary: PathBuf,
    pub data_dir: PathBuf,
    /// When this boot began (RFC 3339).
    pub booted_at: String,
    /// This boot finished: the node is Ready (and, on a server, the API
    /// serves).
    pub ready: bool,
}

pub fn path_in(dir: &Path, node: &str) -> PathBuf {
    dir.join(format!("{node}.json"))
}

/// Writes `record` under `dir` (tmp file, then rename).
pub fn write_in(dir: &Path, record: &NodeRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = path_in(dir, &record.node);
    let tmp = dir.join(format!(".{}.{}.tmp", record.node, record.pid));
    let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)
}

pub fn read_in(dir: &Path, node: &str) -> std::io::Result<NodeRecord> {
    let text = std::fs::read(path_in(dir, node))?;
    serde_json::from_slice(&text).map_err(std::io::Error::other)
}

/// Removes the record of `node` if it is still this process's, with the
/// files an upgrade keeps beside it (`<node>.*.json`), and the directory
/// once empty.
pub fn remove_in(dir: &Path, node: &str, pid: u32) {
    if read_in(dir, node).is_ok_and(|r| r.pid == pid) {
        remove_node_files(dir, node);
    }
    let _ = std::fs::remove_dir(dir);
}

fn remove_node_files(dir: &Path, node: &str) {
    let prefix = format!("{node}.");
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".json") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes every record (and its upgrade files) of a node whose data dir
/// is `data_dir` (`k3r killall`: its process is gone without a word).
pub fn remove_data_dir_in(dir: &Path, data_dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let record: Option<NodeRecord> = std::fs::read(entry.path())
            .ok()
            .and_then(|t| serde_json::from_slice(&t).ok());
        if let Some(record) = record
            && record.data_dir == data_dir
        {
            remove_node_files(dir, &record.node);
        }
    }
    let _ = std::fs::remove_dir(dir);
}

impl NodeRecord {
    /// This boot finished: says so in the record, then waits for how to
    /// stop.
    pub async fn ready_until(
        &mut self,
        shutdown: impl std::future::Future<Output = crate::Shutdown>,
    ) -> crate::Shutdown {
        self.ready = true;
        publish(self);
        let how = shutdown.await;
        tracing::info!(?how, "shutting down");
        how
    }

    /// The record goes with a real stop; a switch keeps it for the Job
    /// that asked for the switch.
    pub fn forget(&self, how: crate::Shutdown) {
        if how == crate::Shutdown::Stop {
            remove_in(Path::new(DIR), &self.node, self.pid);
        }
    }
}

/// This process's record, not yet ready.
pub fn this_process(role: &str, node: &str, kube_binary: &Path, data_dir: &Path) -> NodeRecord {
    NodeRecord {
        node: node.to_string(),
        role: role.to_string(),
        pid: std::process::id(),
        version: k3r_version::tag(),
        exe: std::env::current_exe().unwrap_or_default(),
        kube_binary: kube_binary.to_path_buf(),
        data_dir: data_dir.to_path_buf(),
        booted_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        ready: false,
    }
}

/// Writes the record, logging (not failing) when it cannot be written:
/// only upgrades need it.
pub fn publish(record: &NodeRecord) {
    if let Err(err) = write_in(Path::new(DIR), record) {
        tracing::warn!(error = %err, dir = DIR, "cannot write the node record; Plans cannot upgrade this node");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_only_their_process_removes_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut record = this_process(
            "agent",
            "n1",
            Path::new("/usr/local/bin/k3r-kube"),
            Path::new("/var/lib/k3r"),
        );
        write_in(dir.path(), &record).expect("write");
        assert_eq!(read_in(dir.path(), "n1").expect("read"), record);
        record.ready = true;
        write_in(dir.path(), &record).expect("rewrite");
        assert!(read_in(dir.path(), "n1").expect("read").ready);
        remove_in(dir.path(), "n1", record.pid + 1);
        assert!(
            read_in(dir.path(), "n1").is_ok(),
            "another PID's removal is ignored"
        );
        std::fs::write(dir.path().join("n1.rollback.json"), "{}").expect("upgrade file");
        std::fs::write(dir.path().join("n10.json"), "{}").expect("another node");
        remove_in(dir.path(), "n1", record.pid);
        assert!(read_in(dir.path(), "n1").is_err());
        assert!(!dir.path().join("n1.rollback.json").exists());
        std::fs::remove_file(dir.path().join("n10.json")).expect("n10 left alone");
        remove_in(dir.path(), "n1", record.pid);
        assert!(
            !dir.path().exists(),
            "no tmp files left, and the directory goes"
        );
    }

    #[test]
    fn killall_removes_the_records_of_its_data_dir_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = dir.path().join("records");
        for (node, data) in [("a", "/d/a"), ("b", "/d/b")] {
            let record = this_process("agent", node, Path::new("/k"), Path::new(data));
            write_in(&records, &record).expect("write");
        }
        remove_data_dir_in(&records, Path::new("/d/a"));
        assert!(read_in(&records, "a").is_err());
        assert!(read_in(&records, "b").is_ok());
        remove_data_dir_in(&records, Path::new("/d/b"));
        assert!(!records.exists());
    }
}
