//! The programs a node runs — upstream Kubernetes (k3r-kube), containerd
//! and ctr, containerd's runc shim, runc, crictl, the CNI plugins (one
//! `cni` multicall) and iptables — all from one dir: the runtime payload
//! this k3r carries, extracted under `<data-dir>/data/<sha256>/bin`, or a
//! dir a developer names with `K3R_RUNTIME_DIR`.
//!
//! As in k3s, the host utilities (iptables and its -save/-restore, in
//! `bin/aux`) are a fallback: found after the host's own on PATH, so rules
//! stay in the backend (nf_tables or legacy) the host's tools use, unless
//! `--prefer-bundled-bin` puts them first.

use std::path::{Path, PathBuf};

use crate::Error;

/// Every program the dir must hold.
pub const PROGRAMS: &[&str] = &[
    "k3r-kube",
    "containerd",
    "ctr",
    "containerd-shim-runc-v2",
    "runc",
    "crictl",
    "cni",
    "bridge",
    "host-local",
    "loopback",
    "portmap",
    "bandwidth",
    "xtables-legacy-multi",
    "aux/iptables",
    "aux/iptables-save",
    "aux/iptables-restore",
    "aux/ip6tables",
    "aux/ip6tables-save",
    "aux/ip6tables-restore",
];

/// The host's PATH, or a usual one where k3r was started without any.
pub fn host_path() -> String {
    std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into())
}

/// A developer's dir of programs, used instead of the payload.
pub const DIR_ENV: &str = "K3R_RUNTIME_DIR";

/// Where the programs come from; [`Source::install`] makes them ready.
#[derive(Clone, Debug)]
pub enum Source {
    Payload(k3r_payload::Payload),
    Dir(PathBuf),
    /// This k3r carries no payload and no dir was named.
    Missing(PathBuf),
}

impl Source {
    /// The programs of the running k3r: `$K3R_RUNTIME_DIR`, else its payload.
    pub fn this_k3r() -> Result<Source, Error> {
        if let Some(dir) = std::env::var_os(DIR_ENV) {
            return Ok(Source::Dir(dir.into()));
        }
        let exe = std::env::current_exe().map_err(|e| Error::Io("/proc/self/exe".into(), e))?;
        Source::of(&exe)
    }

    /// The programs `exe` carries.
    pub fn of(exe: &Path) -> Result<Source, Error> {
        Ok(match k3r_payload::Payload::find(exe)? {
            Some(payload) => Source::Payload(payload),
            None => Source::Missing(exe.to_path_buf()),
        })
    }

    /// The programs, extracted under `<data_dir>/data` if need be.
    pub fn install(&self, data_dir: &Path) -> Result<Programs, Error> {
        let dir = match self {
            Source::Dir(dir) => dir.clone(),
            Source::Payload(payload) => payload.extract(&payloads_dir(data_dir))?.bin,
            Source::Missing(exe) => {
                return Err(Error::Programs(format!(
                    "{} carries no runtime payload (a plain cargo build, or a file cut \
                     short): build k3r with scripts/build or reinstall it, or name a dir of \
                     programs with {DIR_ENV}",
                    exe.display()
                )));
            }
        };
        let programs = Programs {
            dir,
            prefer_bundled: false,
        };
        programs.check()?;
        Ok(programs)
    }
}

/// `<data-dir>/data`: the extracted payloads, as k3s keeps them.
pub fn payloads_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("data")
}

/// The PATH to clean a node's rules up with when its k3r is not running
/// (killall): the host's, then the bundled utilities of the payload it
/// last ran.
pub fn cleanup_search_path(data_dir: &Path) -> String {
    let aux = k3r_payload::current_bin(&payloads_dir(data_dir)).join("aux");
    format!("{}:{}", host_path(), aux.display())
}

/// Once a start succeeded: removes extracted payloads other than the one
/// running and the one before it (kept for a rollback).
pub fn clean_up_after_start(data_dir: &Path) {
    for removed in k3r_payload::clean_up(&payloads_dir(data_dir)) {
        tracing::info!(dir = %removed.display(), "removed an old k3r payload");
    }
}

/// A dir holding every program in [`PROGRAMS`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Programs {
    pub dir: PathBuf,
    /// `--prefer-bundled-bin`: the bundled host utilities before the host's.
    pub prefer_bundled: bool,
}

impl Programs {
    pub fn preferring_bundled(mut self, prefer: bool) -> Self {
        self.prefer_bundled = prefer;
        self
    }
    /// The PATH every node process and k3r's own iptables calls search:
    /// k3r's programs first, then the host's, then the bundled utilities
    /// (before the host's with `--prefer-bundled-bin`).
    pub fn search_path(&self) -> String {
        search_path(&self.dir, &host_path(), self.prefer_bundled)
    }
    pub fn path(&self, program: &str) -> PathBuf {
        self.dir.join(program)
    }
    pub fn kube(&self) -> PathBuf {
        self.path("k3r-kube")
    }
    pub fn containerd(&self) -> PathBuf {
        self.path("containerd")
    }
    pub fn runc(&self) -> PathBuf {
        self.path("runc")
    }
    /// The CNI plugins live beside the rest, as in k3s's bin dir.
    pub fn cni_dir(&self) -> &Path {
        &self.dir
    }

    fn check(&self) -> Result<(), Error> {
        let missing: Vec<&str> = PROGRAMS
            .iter()
            .copied()
            .filter(|p| !self.path(p).is_file())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::Programs(format!(
            "{} lacks {} (build the runtime with scripts/build)",
            self.dir.display(),
            missing.join(", ")
        )))
    }
}

fn search_path(bin: &Path, host: &str, prefer_bundled: bool) -> String {
    let aux = bin.join("aux");
    let (bin, aux) = (bin.display(), aux.display());
    if prefer_bundled {
        format!("{bin}:{aux}:{host}")
    } else {
        format!("{bin}:{host}:{aux}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_iptables_comes_first_unless_the_bundled_is_preferred() {
        let bin = Path::new("/d/data/abc/bin");
        assert_eq!(
            search_path(bin, "/usr/sbin:/usr/bin", false),
            "/d/data/abc/bin:/usr/sbin:/usr/bin:/d/data/abc/bin/aux"
        );
        assert_eq!(
            search_path(bin, "/usr/sbin:/usr/bin", true),
            "/d/data/abc/bin:/d/data/abc/bin/aux:/usr/sbin:/usr/bin"
        );
    }

    #[test]
    fn a_dir_lacking_programs_is_named_with_what_it_lacks() {
        let dir = tempfile::tempdir().expect("must succeed");
        std::fs::create_dir(dir.path().join("aux")).expect("must succeed");
        for p in PROGRAMS.iter().filter(|p| **p != "runc" && **p != "crictl") {
            std::fs::write(dir.path().join(p), b"").expect("must succeed");
        }
        let err = Source::Dir(dir.path().into())
            .install(Path::new("/nonexistent"))
            .expect_err("must fail")
            .to_string();
        assert!(err.ends_with("lacks runc, crictl (build the runtime with scripts/build)"));
        std::fs::write(dir.path().join("runc"), b"").expect("must succeed");
        std::fs::write(dir.path().join("crictl"), b"").expect("must succeed");
        let programs = Source::Dir(dir.path().into())
            .install(Path::new("/nonexistent"))
            .expect("must succeed");
        assert_eq!(programs.runc(), dir.path().join("runc"));
    }

    #[test]
    fn a_k3r_without_payload_says_how_to_get_one() {
        let dir = tempfile::tempdir().expect("must succeed");
        let exe = dir.path().join("k3r");
        std::fs::write(&exe, b"no payload here").expect("must succeed");
        let source = Source::of(&exe).expect("must succeed");
        let err = source
            .install(dir.path())
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("carries no runtime payload"), "{err}");
        assert!(!dir.path().join("data").exists());
    }
}
