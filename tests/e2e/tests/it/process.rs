//! A long-running process a test started (a k3r server or agent): its
//! stderr echoed with a prefix and kept, waiting for a progress line, and
//! stopping with SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Process {
    pub what: String,
    child: Option<Child>,
    /// The process now standing for this one, not our child (a k3r its
    /// switch watchdog started again after a rollback).
    adopted: Option<u32>,
    log: Arc<Mutex<Vec<String>>>,
    pub started: Instant,
}

impl Process {
    pub fn spawn(what: &str, prefix: &str, mut command: Command) -> Process {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} starts: {e}"));
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let stderr = child.stderr.take().expect("stderr");
        let (sink, prefix) = (Arc::clone(&log), prefix.to_string());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{prefix}] {line}");
                sink.lock().expect("log").push(line);
            }
        });
        Process {
            what: what.into(),
            child: Some(child),
            adopted: None,
            log,
            started: Instant::now(),
        }
    }

    /// Waits until a log line contains `needle`; returns seconds since the
    /// start. Panics if the process exits first or time runs out.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .log
                .lock()
                .expect("log")
                .iter()
                .any(|l| l.contains(needle))
            {
                return self.started.elapsed().as_secs_f64();
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{} exited with {status} before {needle:?}", self.what);
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {needle:?} within {timeout:?}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The first log line so far that contains `needle`.
    pub fn line_containing(&self, needle: &str) -> Option<String> {
        let log = self.log.lock().expect("log");
        log.iter().find(|l| l.contains(needle)).cloned()
    }

    /// From now on `pid` is this process (ours exited).
    pub fn adopt(&mut self, pid: u32) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        self.adopted = Some(pid);
    }

    /// SIGTERM and wait (60 s at most); returns the exit status and the
    /// seconds the stop took, or None if it was not running.
    pub fn terminate(&mut self) -> Option<(ExitStatus, f64)> {
        let started = Instant::now();
        if let Some(pid) = self.adopted.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while running(pid) {
                assert!(
                    Instant::now() < deadline,
                    "{} (PID {pid}) did not stop within 60 s of SIGTERM",
                    self.what
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            use std::os::unix::process::ExitStatusExt;
            return Some((ExitStatus::from_raw(0), started.elapsed().as_secs_f64()));
        }
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some((status, started.elapsed().as_secs_f64()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not stop within 60 s of SIGTERM", self.what);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, if still running.
    pub fn kill(&mut self) {
        if let Some(pid) = self.adopted.take() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.adopted.or_else(|| self.child.as_ref().map(Child::id))
    }
}

/// Whether `pid` runs (a zombie does not).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// Runs a short command to completion, failing the test (with its stderr)
/// unless it succeeds.
pub fn succeed(command: &mut Command) -> std::process::Output {
    let out = command.output().expect("runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What a command that must succeed prints on stdout.
pub fn stdout_of(command: &mut Command) -> String {
    String::from_utf8_lossy(&succeed(command).stdout).into_owned()
}
