//! Where a node keeps state outside its data dir (run dir, host-local's
//! allocations, its cgroup root), recorded in the agent dir so that
//! `k3r killall --data-dir DIR` cleans up after that node and no other.

use std::path::{Path, PathBuf};

use crate::{Error, NodePaths};

const FILE: &str = "node-scope.json";

pub fn write(paths: &NodePaths, cgroup_root: &str) -> Result<(), Error> {
    let path = paths.agent_dir.join(FILE);
    let record = serde_json::json!({
        "runDir": paths.run_dir,
        "cniStateDir": paths.cni_state_dir,
        "cgroupRoot": cgroup_root,
    });
    std::fs::write(&path, record.to_string()).map_err(|e| Error::Io(path.clone(), e))
}

/// The node's paths and cgroup root, if it recorded them.
pub fn read(agent_dir: &Path) -> Option<(NodePaths, String)> {
    let text = std::fs::read_to_string(agent_dir.join(FILE)).ok()?;
    let record: serde_json::Value = serde_json::from_str(&text).ok()?;
    let path = |key: &str| record[key].as_str().map(PathBuf::from);
    Some((
        NodePaths::new(agent_dir, &path("runDir")?, &path("cniStateDir")?),
        record["cgroupRoot"].as_str()?.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_scope_reads_back() {
        let dir = std::env::temp_dir().join(format!("k3r-scope-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        assert!(read(&dir).is_none());
        let paths = NodePaths::new(&dir, Path::new("/run/k3r-a1"), &dir.join("cni"));
        write(&paths, "/k3r-a1").expect("write");
        let (back, root) = read(&dir).expect("read");
        assert_eq!(back.run_dir, Path::new("/run/k3r-a1"));
        assert_eq!(back.cni_state_dir, dir.join("cni"));
        assert_eq!(root, "/k3r-a1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
