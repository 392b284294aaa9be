//! The in-place switch: after a [`k3r_node::Shutdown::Switch`] stop (the
//! pods left running), k3r executes the binary at the path it was started
//! from — by then the new one, if an upgrade replaced it — with the same
//! arguments and environment, in the same process: the PID, the parent
//! (a service manager or a shell), the cgroup and the log streams stay.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// The binary's path as started, taken before anything may replace it
/// (`/proc/self/exe` then names the replaced, deleted file).
pub fn started_from() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe)
}

/// Runs `exe` again with this process's arguments; returns only if that
/// fails.
pub fn exec_again(exe: &std::path::Path) -> anyhow::Error {
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.as_os_str().to_owned());
    tracing::info!(exe = %exe.display(), "switching: running k3r again in place");
    let err = Command::new(exe).arg0(arg0).args(args).exec();
    anyhow::anyhow!("switching to {}: {err}", exe.display())
}
