//! The watchdog of a switch, run from the old binary (so a new binary
//! that cannot even start is no danger): it waits for the new boot to be
//! ready within the request's deadline; if the process dies first or the
//! deadline passes, the previous binaries go back and the rollback is
//! recorded with its reason. Bringing the old k3r back (a signal, or a
//! fresh start) is the caller's, which knows how k3r was started.

use std::path::Path;
use std::time::{Duration, Instant};

use k3r_node::record::{self, NodeRecord};

use crate::install;
use crate::switch::{self, Request, Rollback};

/// What the watchdog reads about the node.
pub trait Probe {
    fn alive(&self, pid: u32) -> bool;
    fn record(&self, node: &str) -> Option<NodeRecord>;
}

/// The host: /proc and the records directory.
pub struct Host<'a> {
    pub records: &'a Path,
}

impl Probe for Host<'_> {
    fn alive(&self, pid: u32) -> bool {
        // A zombie is not alive: its status says Z.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
            .is_some_and(|rest| !rest.starts_with('Z'))
    }

    fn record(&self, node: &str) -> Option<NodeRecord> {
        record::read_in(self.records, node).ok()
    }
}

fn same_version(a: &str, b: &str) -> bool {
    a.trim_start_matches('v') == b.trim_start_matches('v')
}

/// Whether `node`'s process `pid` runs `version` and finished booting.
pub fn ready_on(probe: &impl Probe, node: &str, pid: Option<u32>, version: &str) -> bool {
    probe.record(node).is_some_and(|r| {
        pid.is_none_or(|p| r.pid == p) && same_version(&r.version, version) && r.ready
    })
}

/// Waits for `pid` to be ready on the request's version; the reason it
/// was not, otherwise.
pub fn wait_for_new_boot(
    probe: &impl Probe,
    node: &str,
    pid: u32,
    request: &Request,
    poll: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let deadline = request.deadline();
    loop {
        if ready_on(probe, node, Some(pid), &request.to) {
            return Ok(started.elapsed());
        }
        if !probe.alive(pid) {
            return Err(format!(
                "k3r {} exited before it was ready ({:.0} s after the switch)",
                request.to,
                started.elapsed().as_secs_f64()
            ));
        }
        if started.elapsed() >= deadline {
            return Err(format!(
                "k3r {} was not ready within {} s",
                request.to,
                deadline.as_secs()
            ));
        }
        std::thread::sleep(poll);
    }
}

/// Puts the previous binaries back and records why.
pub fn roll_back(records: &Path, node: &str, request: &Request, reason: &str) -> Rollback {
    for dest in &request.replaced {
        match install::restore(dest) {
            Ok(true) => tracing::warn!(binary = %dest.display(), "previous binary restored"),
            Ok(false) => tracing::warn!(binary = %dest.display(), "no previous binary to restore"),
            Err(err) => tracing::error!(error = %err, "cannot restore the previous binary"),
        }
    }
    let rollback = Rollback {
        from: request.from.clone(),
        to: request.to.clone(),
        reason: reason.to_string(),
        at: switch::now(),
    };
    if let Err(err) = switch::record_rollback(records, node, &rollback) {
        tracing::error!(error = %err, "cannot record the rollback");
    }
    rollback
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    struct Scripted {
        /// Polls until the process dies (None: never).
        dies_after: Option<u32>,
        /// Polls until the new version is ready (None: never).
        ready_after: Option<u32>,
        polls: Cell<u32>,
    }

    impl Probe for Scripted {
        fn alive(&self, _: u32) -> bool {
            self.dies_after.is_none_or(|n| self.polls.get() < n)
        }

        fn record(&self, node: &str) -> Option<NodeRecord> {
            let poll = self.polls.get();
            self.polls.set(poll + 1);
            let ready = self.ready_after.is_some_and(|n| poll >= n);
            let mut record =
                k3r_node::record::this_process("agent", node, Path::new("/k"), Path::new("/d"));
            record.pid = 7;
            record.version = if ready { "v0.2.0" } else { "v0.1.0" }.into();
            record.ready = ready;
            Some(record)
        }
    }

    fn request(deadline_seconds: u64) -> Request {
        Request {
            from: "v0.1.0".into(),
            to: "v0.2.0".into(),
            deadline_seconds,
            replaced: Vec::new(),
            requested_at: switch::now(),
        }
    }

    fn scripted(dies_after: Option<u32>, ready_after: Option<u32>) -> Scripted {
        Scripted {
            dies_after,
            ready_after,
            polls: Cell::new(0),
        }
    }

    #[test]
    fn a_ready_boot_confirms_a_dead_or_slow_one_does_not() {
        let poll = Duration::from_millis(1);
        assert!(wait_for_new_boot(&scripted(None, Some(3)), "n", 7, &request(60), poll).is_ok());
        let died = wait_for_new_boot(&scripted(Some(2), None), "n", 7, &request(60), poll)
            .expect_err("died");
        assert!(
            died.starts_with("k3r v0.2.0 exited before it was ready"),
            "{died}"
        );
        let slow =
            wait_for_new_boot(&scripted(None, None), "n", 7, &request(0), poll).expect_err("slow");
        assert_eq!(slow, "k3r v0.2.0 was not ready within 0 s");
    }

    #[test]
    fn rolling_back_restores_the_binaries_and_records_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("k3r");
        let payload = dir.path().join("new");
        std::fs::write(&dest, b"old").expect("old");
        std::fs::write(&payload, b"new").expect("new");
        crate::install::replace(&dest, &payload).expect("swap");
        let mut req = request(60);
        req.replaced = vec![dest.clone()];
        let records = dir.path().join("records");
        let rb = roll_back(&records, "n1", &req, "k3r v0.2.0 exited");
        assert_eq!(std::fs::read(&dest).expect("dest"), b"old");
        assert_eq!(switch::rollback(&records, "n1"), Some(rb));
    }
}
