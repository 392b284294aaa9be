//! Which upstream components share one process of the multicall
//! (`k3r-kube together`, as k3s runs its control plane in one process):
//! every process of that binary carries its own Go runtime and its own
//! copy of what the upstream packages set up at start (about 16 MiB of
//! heap each), so the server runs kube-apiserver, kube-controller-manager
//! and kube-scheduler as one process and every node runs kubelet and
//! kube-proxy as one.
//!
//! Logging, feature gates and emulated versions are process-wide in Go,
//! so a component whose user flags set them differently from the first
//! component's runs in its own process, as does every component when
//! `K3R_COMPONENT_PROCESSES=separate` is set.

use std::path::{Path, PathBuf};

use crate::process::ProcessSpec;

/// The environment variable that restores one process per component.
pub const SEPARATE_ENV: &str = "K3R_COMPONENT_PROCESSES";

/// Flags whose values are process-wide in the upstream binary.
const PROCESS_WIDE: [&str; 11] = [
    "v",
    "vmodule",
    "logging-format",
    "log-flush-frequency",
    "log-json-split-stream",
    "log-json-info-buffer-size",
    "log-text-split-stream",
    "log-text-info-buffer-size",
    "feature-gates",
    "emulated-version",
    "min-compatibility-version",
];

/// One upstream component: its command line (the component's name first)
/// and the user's passthrough flags (`key=value`) already part of it.
#[derive(Clone, Debug)]
pub struct Component {
    pub args: Vec<String>,
    pub user_args: Vec<String>,
}

impl Component {
    pub fn name(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or_default()
    }
}

/// A process to start: its name (the first component's) and command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub name: String,
    pub args: Vec<String>,
}

impl Process {
    /// How the executor runs it: the upstream multicall `program` in `cwd`,
    /// logging to `<logs>/<name>.log`, with the Go components' environment.
    pub fn spec(self, program: &Path, cwd: PathBuf, logs: &Path) -> ProcessSpec {
        let env = crate::process::kube_env(&self.name);
        ProcessSpec {
            log: logs.join(format!("{}.log", self.name)),
            name: self.name,
            program: program.to_path_buf(),
            args: self.args,
            env,
            cwd: Some(cwd),
        }
    }
}

impl Process {
    /// Adds a group that only runs inside `together` (k3r-front), turning
    /// a process of one component into a `together` of one.
    pub fn with_group(mut self, group: Vec<String>) -> Self {
        if self.args.first().map(String::as_str) != Some("together") {
            self.args.insert(0, "together".into());
        }
        self.args.push("---".into());
        self.args.extend(group);
        self
    }
}

/// The first component's process (with every later component that can
/// share it) and the components that run alone, in order.
pub fn group(first: Component, later: Vec<Component>) -> (Process, Vec<Process>) {
    let separate = std::env::var(SEPARATE_ENV).is_ok_and(|v| v == "separate");
    group_with(first, later, separate)
}

fn group_with(first: Component, later: Vec<Component>, separate: bool) -> (Process, Vec<Process>) {
    let name = first.name().to_string();
    let wanted = process_wide(&first.user_args);
    let (shared, alone): (Vec<_>, Vec<_>) = later
        .into_iter()
        .partition(|c| !separate && process_wide(&c.user_args) == wanted);
    let process = if shared.is_empty() {
        Process {
            name,
            args: first.args,
        }
    } else {
        let mut args = vec!["together".to_string()];
        args.extend(first.args);
        for component in shared {
            args.push("---".into());
            args.extend(component.args);
        }
        Process { name, args }
    };
    let alone = alone
        .into_iter()
        .map(|c| Process {
            name: c.name().to_string(),
            args: c.args,
        })
        .collect();
    (process, alone)
}

/// The user's process-wide flags, normalised (`--v=2` and `v=2` alike;
/// the last value of a repeated flag wins, as in pflag).
fn process_wide(user_args: &[String]) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for arg in user_args {
        let arg = arg.trim_start_matches('-');
        let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
        let key = key.replace('_', "-");
        if PROCESS_WIDE.contains(&key.as_str()) {
            found.retain(|(k, _)| *k != key);
            found.push((key, value.to_string()));
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(name: &str, user: &[&str]) -> Component {
        let user_args: Vec<String> = user.iter().map(|s| s.to_string()).collect();
        let mut args = vec![name.to_string(), format!("--{name}-flag=1")];
        args.extend(crate::passthrough(&user_args));
        Component { args, user_args }
    }

    #[test]
    fn a_group_makes_a_lone_component_a_together_of_one() {
        let (process, _) = group_with(component("kube-apiserver", &[]), vec![], false);
        let process = process.with_group(vec!["k3r-front".into(), "--listen=:6443".into()]);
        assert_eq!(
            process.args,
            [
                "together",
                "kube-apiserver",
                "--kube-apiserver-flag=1",
                "---",
                "k3r-front",
                "--listen=:6443"
            ]
        );
        let (shared, _) = group_with(
            component("kube-apiserver", &[]),
            vec![component("kube-scheduler", &[])],
            false,
        );
        let shared = shared.with_group(vec!["k3r-front".into()]);
        assert_eq!(shared.args.first().map(String::as_str), Some("together"));
        assert_eq!(shared.args.iter().filter(|a| *a == "together").count(), 1);
        assert_eq!(shared.args.last().map(String::as_str), Some("k3r-front"));
    }

    #[test]
    fn components_without_process_wide_flags_share_the_first_process() {
        let (process, alone) = group_with(
            component("kube-apiserver", &["max-requests-inflight=10"]),
            vec![
                component("kube-controller-manager", &["node-monitor-period=10s"]),
                component("kube-scheduler", &[]),
            ],
            false,
        );
        assert_eq!(process.name, "kube-apiserver");
        assert_eq!(
            process.args,
            [
                "together",
                "kube-apiserver",
                "--kube-apiserver-flag=1",
                "--max-requests-inflight=10",
                "---",
                "kube-controller-manager",
                "--kube-controller-manager-flag=1",
                "--node-monitor-period=10s",
                "---",
                "kube-scheduler",
                "--kube-scheduler-flag=1",
            ]
        );
        assert!(alone.is_empty());
    }

    #[test]
    fn a_different_verbosity_or_feature_gate_runs_alone() {
        let (process, alone) = group_with(
            component("kubelet", &["v=2"]),
            vec![component("kube-proxy", &["v=4"])],
            false,
        );
        assert_eq!(process.args, ["kubelet", "--kubelet-flag=1", "--v=2"]);
        assert_eq!(alone.len(), 1);
        assert_eq!(alone[0].name, "kube-proxy");

        let (process, alone) = group_with(
            component("kube-apiserver", &["feature-gates=A=true", "v=3"]),
            vec![
                component(
                    "kube-controller-manager",
                    &["--v=3", "feature_gates=A=true"],
                ),
                component("kube-scheduler", &["feature-gates=B=true", "v=3"]),
            ],
            false,
        );
        assert_eq!(process.args.first().map(String::as_str), Some("together"));
        assert!(
            process
                .args
                .contains(&"kube-controller-manager".to_string())
        );
        assert_eq!(
            alone.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["kube-scheduler"]
        );
    }

    #[test]
    fn a_process_logs_under_its_first_components_name() {
        let (process, _) = group_with(
            component("kubelet", &[]),
            vec![component("kube-proxy", &[])],
            false,
        );
        let spec = process.spec(
            Path::new("/bin/k3r-kube"),
            PathBuf::from("/data/agent"),
            Path::new("/data/logs"),
        );
        assert_eq!(spec.name, "kubelet");
        assert_eq!(spec.log, Path::new("/data/logs/kubelet.log"));
        assert_eq!(spec.cwd.as_deref(), Some(Path::new("/data/agent")));
        assert_eq!(spec.args.first().map(String::as_str), Some("together"));
        assert_eq!(spec.env, crate::process::kube_env("kubelet"));
    }

    #[test]
    fn separate_mode_runs_every_component_alone() {
        let (process, alone) = group_with(
            component("kube-apiserver", &[]),
            vec![
                component("kube-controller-manager", &[]),
                component("kube-scheduler", &[]),
            ],
            true,
        );
        assert_eq!(process.args, ["kube-apiserver", "--kube-apiserver-flag=1"]);
        assert_eq!(alone.len(), 2);
        assert_eq!(alone[1].args, ["kube-scheduler", "--kube-scheduler-flag=1"]);
    }
}
