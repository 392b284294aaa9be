//! The programs a node runs — upstream Kubernetes (k3r-kube), containerd
//! and ctr, containerd's runc shim, runc, crictl and the CNI plugins — all
//! from one dir: the runtime payload this k3r carries, extracted under
//! `<data-dir>/data/<sha256>/bin`, or a dir a developer names with
//! `K3R_RUNTIME_DIR`. Nothing is taken from the host's packages.

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
    "bridge",
    "host-local",
    "loopback",
    "portmap",
    "bandwidth",
];

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
        let programs = Programs { dir };
        programs.check()?;
        Ok(programs)
    }
}

/// `<data-dir>/data`: the extracted payloads, as k3s keeps them.
pub fn payloads_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("data")
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
}

impl Programs {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_lacking_programs_is_named_with_what_it_lacks() {
        let dir = tempfile::tempdir().expect("must succeed");
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
