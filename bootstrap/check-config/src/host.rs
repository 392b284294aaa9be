//! What the running kernel shows: the cgroup hierarchy and which
//! controllers are enabled.

use std::fmt;

/// Controllers kubelet and runc need; on cgroup v2 the ones v1 keeps apart
/// (cpuacct, devices, freezer) are built in.
pub const REQUIRED_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer",
];
const V1_ONLY: &[&str] = &["cpuacct", "devices", "freezer"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupMode {
    V1,
    /// v1 controllers, with a v2 hierarchy mounted beside them.
    Hybrid,
    V2,
}

impl CgroupMode {
    pub fn is_unified(self) -> bool {
        self == Self::V2
    }
}

impl fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V1 => "cgroups V1",
            Self::Hybrid => "cgroups V1 and V2 (hybrid)",
            Self::V2 => "cgroups V2",
        })
    }
}

/// The host's `/proc/mounts`, `/proc/cgroups` and (cgroup v2)
/// `/sys/fs/cgroup/cgroup.controllers`.
#[derive(Debug, Default)]
pub struct Host {
    pub mounts: String,
    pub cgroups: String,
    pub v2_controllers: String,
}

impl Host {
    /// This host's, read from /proc and /sys (what cannot be read is
    /// empty, and reported as missing).
    pub fn read() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Self {
            mounts: read("/proc/mounts"),
            cgroups: read("/proc/cgroups"),
            v2_controllers: read("/sys/fs/cgroup/cgroup.controllers"),
        }
    }

    pub fn cgroup_mode(&self) -> CgroupMode {
        let mounts: Vec<(&str, &str)> = self
            .mounts
            .lines()
            .filter_map(|l| {
                let mut fields = l.split_whitespace();
                let _device = fields.next()?;
                Some((fields.next()?, fields.next()?))
            })
            .collect();
        let unified_root = mounts
            .iter()
            .any(|(at, fs)| *at == "/sys/fs/cgroup" && *fs == "cgroup2");
        let v1 = mounts.iter().any(|(_, fs)| *fs == "cgroup");
        let v2 = mounts.iter().any(|(_, fs)| *fs == "cgroup2");
        match (unified_root, v1, v2) {
            (true, _, _) => CgroupMode::V2,
            (false, true, true) => CgroupMode::Hybrid,
            _ => CgroupMode::V1,
        }
    }

    /// Whether `controller` is usable under `mode`.
    pub fn controller_enabled(&self, controller: &str, mode: CgroupMode) -> bool {
        if mode.is_unified() {
            return V1_ONLY.contains(&controller)
                || self
                    .v2_controllers
                    .split_whitespace()
                    .any(|c| c == controller);
        }
        self.cgroups.lines().any(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields.first() == Some(&controller) && fields.get(3) == Some(&"1")
        })
    }
}
