//! `k3r check-config`, as k3s's: whether this host's kernel has the
//! features k3r needs (namespaces, cgroups, netfilter, bridging, vxlan,
//! overlayfs, nftables) and which cgroup controllers are enabled. Reads the
//! kernel's build configuration (`/proc/config.gz`, else
//! `/boot/config-<release>`) and what the running kernel shows in `/proc`;
//! the report names each missing feature.

mod features;
mod host;

use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub use features::{FEATURES, Feature, Need};
pub use host::{CgroupMode, Host};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no kernel config found (tried {0}); pass one with --kernel-config")]
    NoKernelConfig(String),
    #[error("{0}: {1}")]
    Read(PathBuf, #[source] std::io::Error),
}

/// A kernel build configuration: `CONFIG_X=y|m|<value>` lines.
#[derive(Debug, Default)]
pub struct KernelConfig {
    options: HashMap<String, String>,
}

/// How the kernel has a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Enabled,
    Module,
    Missing,
}

impl KernelConfig {
    pub fn parse(text: &str) -> Self {
        let options = text
            .lines()
            .filter_map(|l| l.trim().split_once('='))
            .filter(|(k, _)| k.starts_with("CONFIG_"))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        Self { options }
    }

    /// `CONFIG_<name>`'s state.
    pub fn state(&self, name: &str) -> State {
        match self
            .options
            .get(&format!("CONFIG_{name}"))
            .map(String::as_str)
        {
            Some("y") => State::Enabled,
            Some("m") => State::Module,
            _ => State::Missing,
        }
    }
}

/// Where to read a kernel config: `given`, else where the running
/// kernel's may be.
pub fn kernel_config_candidates(given: Option<PathBuf>) -> Vec<PathBuf> {
    match given {
        Some(path) => vec![path],
        None => default_candidates(&this_release()),
    }
}

/// Where the running kernel's config may be, in k3s's script's order.
fn default_candidates(release: &str) -> Vec<PathBuf> {
    vec![
        PathBuf::from("/proc/config.gz"),
        PathBuf::from(format!("/boot/config-{release}")),
        PathBuf::from(format!("/usr/src/linux-{release}/.config")),
        PathBuf::from("/usr/src/linux/.config"),
    ]
}

/// Reads a kernel config, gzipped or not.
pub fn read_kernel_config(path: &Path) -> Result<KernelConfig, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Read(path.to_path_buf(), e))?;
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
            .map_err(|e| Error::Read(path.to_path_buf(), e))?;
        text
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(KernelConfig::parse(&text))
}

/// The first kernel config of `candidates` that exists.
pub fn find_kernel_config(candidates: &[PathBuf]) -> Result<(PathBuf, KernelConfig), Error> {
    for path in candidates {
        if path.exists() {
            return Ok((path.clone(), read_kernel_config(path)?));
        }
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(Error::NoKernelConfig(tried.join(", ")))
}

/// The running kernel's release (`uname -r`).
fn this_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_string())
        .unwrap_or_default()
}

/// Names the kernel config a start's preflight reads instead of the
/// running kernel's (as `k3r check-config --kernel-config`).
pub const KERNEL_CONFIG_ENV: &str = "K3R_KERNEL_CONFIG";

/// The required features this host lacks, for a start's preflight; None
/// when no kernel config can be read (nothing to go by).
pub fn missing_on_this_host() -> Option<Vec<String>> {
    let given = std::env::var_os(KERNEL_CONFIG_ENV).map(PathBuf::from);
    let (_, kernel) = find_kernel_config(&kernel_config_candidates(given)).ok()?;
    Some(check(&kernel, &Host::read()).missing)
}

/// The outcome: the printed report and how many required features are
/// missing.
pub struct Report {
    pub text: String,
    pub missing: Vec<String>,
}

/// One line naming the required features a kernel lacks.
pub fn lacking(missing: &[String]) -> String {
    format!("this kernel lacks what k3r needs: {}", missing.join(", "))
}

/// Checks `kernel` and `host` against [`FEATURES`].
pub fn check(kernel: &KernelConfig, host: &Host) -> Report {
    let mut text = String::new();
    let mut missing = Vec::new();
    let _ = writeln!(text, "Generally Necessary:");
    let mode = host.cgroup_mode();
    let _ = writeln!(text, "- cgroup hierarchy: {mode}");
    for controller in host::REQUIRED_CONTROLLERS {
        if !host.controller_enabled(controller, mode) {
            missing.push(format!("cgroup controller {controller}"));
            let _ = writeln!(text, "- cgroup controller {controller}: missing");
        }
    }
    for need in [Need::Required, Need::Optional] {
        if need == Need::Optional {
            let _ = writeln!(text, "\nOptional Features:");
        }
        for feature in FEATURES.iter().filter(|f| f.need == need) {
            if feature
                .only_on
                .is_some_and(|only| only != mode.is_unified())
            {
                continue;
            }
            let state = feature
                .options
                .iter()
                .map(|o| kernel.state(o))
                .find(|s| *s != State::Missing)
                .unwrap_or(State::Missing);
            let shown = match state {
                State::Enabled => "enabled".to_string(),
                State::Module => "enabled (as module)".to_string(),
                State::Missing => {
                    if need == Need::Required {
                        missing.push(feature.name());
                    }
                    format!("missing ({})", feature.why)
                }
            };
            let _ = writeln!(text, "- {}: {shown}", feature.name());
        }
    }
    let _ = writeln!(text);
    if missing.is_empty() {
        let _ = writeln!(text, "STATUS: pass");
    } else {
        let _ = writeln!(
            text,
            "STATUS: {} required feature(s) missing: {}",
            missing.len(),
            missing.join(", ")
        );
    }
    Report { text, missing }
}

#[cfg(test)]
mod tests;
