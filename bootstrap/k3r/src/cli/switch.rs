//! The in-place switch: after a [`k3r_node::Shutdown::Switch`] stop (the
//! pods left running), k3r executes the binary at the path it was started
//! from — by then the new one, if an upgrade replaced it — with the same
//! arguments and environment, in the same process: the PID, the parent
//! (a service manager or a shell), the cgroup and the log streams stay.
//!
//! When an upgrade asked for the switch (its request sits beside the node
//! record), a watchdog is started first from the old binary
//! (`k3r __switch-watch`): if the new boot is not ready within the
//! request's deadline, it restores the previous binaries and brings the
//! old k3r back.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use k3r_node::record;
use k3r_node_upgrade::switch::{self, Request};
use k3r_node_upgrade::watch::{self, Host, Probe};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long the old k3r, signalled back after a rollback, may take.
const RETURN_DEADLINE: Duration = Duration::from_secs(180);

/// The binary's path as started, taken before anything may replace it
/// (`/proc/self/exe` then names the replaced, deleted file).
pub fn started_from() -> anyhow::Result<PathBuf> {
    Ok(std::env::current_exe()?)
}

/// Runs `exe` again with this process's arguments, after starting the
/// watchdog if an upgrade asked for this switch; returns only on failure.
pub fn exec_again(exe: &Path, node: &str, data_dir: &Path) -> anyhow::Error {
    if let Some(request) = switch::take_request(Path::new(record::DIR), node)
        && let Err(err) = start_watchdog(&request, node, data_dir)
    {
        tracing::error!(error = %err, "cannot watch the switch; switching anyway");
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.as_os_str().to_owned());
    tracing::info!(exe = %exe.display(), "switching: running k3r again in place");
    let err = Command::new(exe).arg0(arg0).args(args).exec();
    anyhow::anyhow!("switching to {}: {err}", exe.display())
}

fn start_watchdog(request: &Request, node: &str, data_dir: &Path) -> anyhow::Result<()> {
    // This process's own (old) image, even though its path now holds the
    // new binary.
    let mut command = Command::new("/proc/self/exe");
    command
        .arg("__switch-watch")
        .arg("--node")
        .arg(node)
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--request")
        .arg(serde_json::to_string(request)?)
        .arg("--")
        .args(std::env::args_os());
    let child = command.spawn().context("starting the switch watchdog")?;
    tracing::info!(pid = child.id(), to = %request.to, deadline_s = request.deadline_seconds, "switch watchdog started");
    Ok(())
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[arg(long)]
    node: String,
    #[arg(long)]
    pid: u32,
    #[arg(long)]
    data_dir: PathBuf,
    /// The switch request, as JSON
    #[arg(long)]
    request: String,
    /// k3r's command line, to start it again if it died
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// `k3r __switch-watch`: confirms the switch or rolls it back.
pub fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let request: Request = serde_json::from_str(&args.request).context("--request")?;
    let records = Path::new(record::DIR);
    let probe = Host { records };
    let poll = Duration::from_millis(500);
    let reason = match watch::wait_for_new_boot(&probe, &args.node, args.pid, &request, poll) {
        Ok(took) => {
            switch::clear_rollback(records, &args.node);
            tracing::info!(node = %args.node, to = %request.to, took_s = took.as_secs_f64(), "switch confirmed");
            return Ok(());
        }
        Err(reason) => reason,
    };
    tracing::error!(node = %args.node, %reason, from = %request.from, "switch failed; rolling back");
    watch::roll_back(records, &args.node, &request, &reason);
    let pid = Pid::from_raw(i32::try_from(args.pid).unwrap_or(i32::MAX));
    if probe.alive(args.pid) {
        // Alive but not ready: the same switch, back to the restored binary.
        let _ = kill(pid, Signal::SIGUSR2);
        let back = Request {
            deadline_seconds: RETURN_DEADLINE.as_secs(),
            to: request.from.clone(),
            ..request.clone()
        };
        if watch::wait_for_new_boot(&probe, &args.node, args.pid, &back, poll).is_ok() {
            tracing::warn!(node = %args.node, version = %request.from, "back on the previous k3r");
            return Ok(());
        }
        let _ = kill(pid, Signal::SIGKILL);
    }
    // Gone: start the previous k3r again, as it was started — unless a
    // service manager runs k3r, which restarts it (now from the restored
    // binary) by itself; a second k3r beside its restart would fight it.
    k3r_server::cleanup::stop_components(&args.data_dir);
    if let Some(manager) = service_manager(|name| std::env::var_os(name).is_some()) {
        tracing::warn!(node = %args.node, version = %request.from, manager, "previous k3r restored; its service manager starts it again");
        return Ok(());
    }
    let (program, rest) = args
        .command
        .split_first()
        .context("no command line to start")?;
    let exe = request
        .replaced
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "k3r"))
        .cloned()
        .unwrap_or_else(|| PathBuf::from(program));
    let mut command = Command::new(&exe);
    command.arg0(program).args(rest);
    // Its own process group: it outlives the watchdog and a terminal's
    // Ctrl-C meant for whoever started the watchdog's parent.
    command.process_group(0);
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    tracing::warn!(node = %args.node, pid = child.id(), version = %request.from, "previous k3r started again");
    Ok(())
}

/// The service manager k3r runs under, told by what it puts in the
/// environment of a service (which the watchdog inherits from k3r):
/// systemd's `INVOCATION_ID`, OpenRC's `RC_SVCNAME`.
fn service_manager(is_set: impl Fn(&str) -> bool) -> Option<&'static str> {
    [("INVOCATION_ID", "systemd"), ("RC_SVCNAME", "openrc")]
        .into_iter()
        .find(|(variable, _)| is_set(variable))
        .map(|(_, manager)| manager)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_managers_are_told_by_their_environment() {
        assert_eq!(service_manager(|v| v == "INVOCATION_ID"), Some("systemd"));
        assert_eq!(service_manager(|v| v == "RC_SVCNAME"), Some("openrc"));
        assert_eq!(service_manager(|_| false), None);
    }
}
