//! Supervision of child processes: each runs with its output appended to
//! its own log file, is restarted with exponential backoff when it exits,
//! and is stopped with SIGTERM (then SIGKILL after a grace period).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Everything needed to start one component.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub log: PathBuf,
}

/// The Go garbage collector's target for the Go components k3r starts
/// (upstream's multicall, containerd): a heap may grow to 1.5x its live
/// size between collections instead of Go's default 2x. Measured on an
/// idle single-node server, the components' PSS fell by 61 MiB, with the
/// same CPU for 3,000 ConfigMap creates (docs/benchmarks.md).
pub const GOGC: &str = "50";

/// kube-apiserver's process (with the controller manager and scheduler)
/// holds most of a server's memory, nearly all of it heap (about 110 MiB
/// live when idle), so it collects at 1.25x its live size: measured on an
/// idle server, 16 MiB less PSS for 5 % more of that process's CPU
/// (docs/benchmarks.md). Its idle allocation is small (about 34 MB/min),
/// so the extra collections are a few a minute.
pub const CONTROL_PLANE_GOGC: &str = "25";

/// The GC percentage kube-apiserver's process collects at while it is busy
/// (allocating over 8 MiB/s or using a quarter of a core; back to
/// [`CONTROL_PLANE_GOGC`] after 10 calm seconds, bootstrap/idlepace): at
/// GOGC=25 a burst of creates spent a fifth more of that process's CPU and
/// ran 10-13 % longer (docs/benchmarks.md).
pub const CONTROL_PLANE_BUSY_GOGC: &str = "100";

/// The variable bootstrap/idlepace reads; "off" keeps GOGC throughout.
pub const GOGC_BUSY_ENV: &str = "K3R_GOGC_BUSY";

/// How many Ps (GOMAXPROCS) a Go component runs on while calm; while busy
/// (as above) it has the runtime's default. With several Ps every timer or
/// network wake-up of an idle process also wakes an idle thread to look for
/// more work, at about 50 µs per context switch on this VM: one P while
/// calm cut the idle node's CPU by 8 %, with serial GETs as fast as before
/// (docs/benchmarks.md).
pub const IDLE_GOMAXPROCS: &str = "1";

/// The variable bootstrap/idlepace reads; "off" keeps the runtime's
/// GOMAXPROCS throughout, as does a `GOMAXPROCS` of the user's.
pub const GOMAXPROCS_IDLE_ENV: &str = "K3R_GOMAXPROCS_IDLE";

/// How late a calm upstream component's threads may wake for a timer
/// (bootstrap/idlepace; the kernel's timer slack, 50 µs by default): the
/// runtime then fires every timer that came due meanwhile in one wake-up
/// instead of one each. While busy (as above) the kernel's slack holds.
/// Not containerd's: a process inherits its parent's slack, and
/// containerd's children are the shims, whose children are the containers.
pub const IDLE_TIMER_SLACK: &str = "50ms";

/// The variable bootstrap/idlepace reads; "off" keeps the kernel's slack.
pub const TIMER_SLACK_IDLE_ENV: &str = "K3R_TIMER_SLACK_IDLE";

/// How long after its start a process of k3r's binaries (the Go
/// multicalls' components, k3r itself) unmaps its binary's read-only pages
/// once (bootstrap/starttrim), so that only what it still uses stays
/// mapped: Go's start touches every package's init, spread over the whole
/// binary. 60 s is past a node's start (Ready in about 10 s).
pub const TRIM_START_PAGES_AFTER: &str = k3r_starttrim::DEFAULT_DELAY;

/// The variable bootstrap/starttrim reads; "off" keeps the pages mapped.
pub const TRIM_START_PAGES_ENV: &str = k3r_starttrim::ENV;

/// The environment every Go component gets: `GOGC`, the start-up trim and
/// the calm GOMAXPROCS (each unless k3r's own environment sets it, which
/// the child then inherits, as every other variable).
pub fn go_env() -> Vec<(String, String)> {
    go_env_with(|name| std::env::var_os(name).is_some())
}

/// The environment of the upstream components (k3r-kube): [`go_env`]
/// (with [`CONTROL_PLANE_GOGC`] for kube-apiserver's process), the calm
/// timer slack unless k3r's environment sets one, and this
/// k3r's version for the version they report
/// ([`k3r_version::kube_build_metadata`]).
pub fn kube_env(process: &str) -> Vec<(String, String)> {
    let user_set = |name: &str| std::env::var_os(name).is_some();
    let mut env = if process == "kube-apiserver" {
        control_plane_env(user_set)
    } else {
        go_env_with_gogc(GOGC, user_set)
    };
    if !user_set(TIMER_SLACK_IDLE_ENV) {
        env.push((TIMER_SLACK_IDLE_ENV.into(), IDLE_TIMER_SLACK.into()));
    }
    env.push((
        k3r_version::KUBE_BUILD_METADATA_ENV.into(),
        k3r_version::kube_build_metadata(),
    ));
    env
}

/// `env` with `PATH` set to `search_path` (the node's programs, then the
/// host's, [`crate::programs::Programs::search_path`]) unless that is empty.
pub fn with_search_path(
    mut env: Vec<(String, String)>,
    search_path: &str,
) -> Vec<(String, String)> {
    if !search_path.is_empty() {
        env.push(("PATH".into(), search_path.into()));
    }
    env
}

fn go_env_with(user_set: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    go_env_with_gogc(GOGC, user_set)
}

/// kube-apiserver's process: [`CONTROL_PLANE_GOGC`], and
/// [`CONTROL_PLANE_BUSY_GOGC`] while busy unless the user chose a GOGC (which
/// then holds throughout) or the busy pace.
fn control_plane_env(user_set: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    let mut env = go_env_with_gogc(CONTROL_PLANE_GOGC, &user_set);
    if !user_set("GOGC") && !user_set(GOGC_BUSY_ENV) {
        env.push((GOGC_BUSY_ENV.into(), CONTROL_PLANE_BUSY_GOGC.into()));
    }
    env
}

fn go_env_with_gogc(gogc: &str, user_set: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    [
        ("GOGC", gogc),
        (TRIM_START_PAGES_ENV, TRIM_START_PAGES_AFTER),
        (GOMAXPROCS_IDLE_ENV, IDLE_GOMAXPROCS),
    ]
    .into_iter()
    .filter(|(name, _)| !user_set(name))
    // A GOMAXPROCS of the user's holds throughout.
    .filter(|(name, _)| *name != GOMAXPROCS_IDLE_ENV || !user_set("GOMAXPROCS"))
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect()
}

/// The seam around running a component, as k3s's executor: the server
/// asks for a component; how it runs is the executor's business.
pub trait Executor: Send + Sync {
    fn start(&self, spec: ProcessSpec) -> Supervised;
}

/// Runs components as supervised child processes.
#[derive(Default)]
pub struct ChildExecutor;

impl Executor for ChildExecutor {
    fn start(&self, spec: ProcessSpec) -> Supervised {
        Supervised::spawn(spec)
    }
}

pub struct Supervised {
    pub name: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

const GRACE: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long is considered healthy: backoff resets.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

impl Supervised {
    pub fn spawn(spec: ProcessSpec) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let name = spec.name.clone();
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let started = Instant::now();
                let mut child = match start_child(&spec) {
                    Ok(child) => child,
                    Err(err) => {
                        tracing::error!(component = %spec.name, error = %err, "cannot start");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = until_stopped(&mut stopped) => return,
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                };
                let pid = child.id();
                tokio::select! {
                    status = child.wait() => {
                        let stopping = *stopped.borrow();
                        if stopping {
                            return;
                        }
                        if started.elapsed() > HEALTHY_AFTER {
                            backoff = Duration::from_secs(1);
                        }
                        tracing::warn!(
                            component = %spec.name,
                            status = ?status.ok(),
                            restart_in = ?backoff,
                            log = %spec.log.display(),
                            "component exited; restarting"
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = until_stopped(&mut stopped) => return,
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    _ = until_stopped(&mut stopped) => {
                        terminate(&spec.name, pid, &mut child).await;
                        return;
                    }
                }
            }
        });
        Self { name, stop, task }
    }

    /// Stops the component and waits until the process is gone.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn start_child(spec: &ProcessSpec) -> std::io::Result<tokio::process::Child> {
    if let Some(dir) = spec.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)?;
    let mut command = tokio::process::Command::new(&spec.program);
    command
        .args(&spec.args)
        .envs(spec.env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Own process group: a terminal's Ctrl-C reaches k3r, which then
        // stops the children in order.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    let child = command.spawn()?;
    tracing::debug!(component = %spec.name, pid = ?child.id(), "started");
    Ok(child)
}

async fn terminate(name: &str, pid: Option<u32>, child: &mut tokio::process::Child) {
    if let Some(pid) = pid {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    }
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        tracing::warn!(component = name, "did not stop after SIGTERM; killing");
        let _ = child.kill().await;
    }
    tracing::debug!(component = name, "stopped");
}

/// Resolves once `stop` is set (or its sender is gone).
async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_settings_are_set_unless_the_user_set_them() {
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(
            go_env_with(|_| false),
            [
                pair("GOGC", "50"),
                pair("K3R_TRIM_START_PAGES_AFTER", "60s"),
                pair("K3R_GOMAXPROCS_IDLE", "1")
            ]
        );
        assert_eq!(
            go_env_with(|name| name == "GOGC"),
            [
                pair("K3R_TRIM_START_PAGES_AFTER", "60s"),
                pair("K3R_GOMAXPROCS_IDLE", "1")
            ]
        );
        assert_eq!(
            go_env_with(|name| name == "GOMAXPROCS"),
            [
                pair("GOGC", "50"),
                pair("K3R_TRIM_START_PAGES_AFTER", "60s")
            ]
        );
        assert!(go_env_with(|_| true).is_empty());
    }

    fn value_of(env: Vec<(String, String)>, variable: &str) -> Option<String> {
        env.into_iter()
            .find(|(name, _)| name == variable)
            .map(|(_, value)| value)
    }

    #[test]
    fn only_the_upstream_components_get_the_calm_timer_slack() {
        let slack = |env| value_of(env, TIMER_SLACK_IDLE_ENV);
        // containerd's: its shims, and their containers, would inherit it.
        assert_eq!(slack(go_env()), None);
        // One of the user's is inherited from k3r's environment instead.
        let expected = std::env::var_os(TIMER_SLACK_IDLE_ENV)
            .is_none()
            .then(|| IDLE_TIMER_SLACK.to_string());
        for process in ["kube-apiserver", "kubelet"] {
            assert_eq!(slack(kube_env(process)), expected, "{process}");
        }
    }

    #[test]
    fn kube_apiservers_process_collects_sooner_unless_the_user_set_gogc() {
        let gogc = |env| value_of(env, "GOGC");
        if std::env::var_os("GOGC").is_some() {
            assert_eq!(gogc(kube_env("kube-apiserver")), None);
            return;
        }
        assert_eq!(gogc(kube_env("kube-apiserver")).as_deref(), Some("25"));
        assert_eq!(gogc(kube_env("kubelet")).as_deref(), Some("50"));
        assert_eq!(
            gogc(go_env_with_gogc(CONTROL_PLANE_GOGC, |name| name == "GOGC")),
            None
        );
    }

    #[test]
    fn only_kube_apiservers_process_slows_its_collector_when_busy() {
        let busy = |env| value_of(env, GOGC_BUSY_ENV);
        assert_eq!(busy(control_plane_env(|_| false)).as_deref(), Some("100"));
        // A GOGC of the user's holds throughout; so does their own busy pace
        // (inherited from k3r's environment).
        assert_eq!(busy(control_plane_env(|name| name == "GOGC")), None);
        assert_eq!(busy(control_plane_env(|name| name == GOGC_BUSY_ENV)), None);
        assert_eq!(busy(go_env_with_gogc(GOGC, |_| false)), None);
        if std::env::var_os("GOGC").is_none() && std::env::var_os(GOGC_BUSY_ENV).is_none() {
            assert_eq!(busy(kube_env("kube-apiserver")).as_deref(), Some("100"));
            assert_eq!(busy(kube_env("kubelet")), None);
        }
    }
}
