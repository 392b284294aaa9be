//! Host settings kubelet and kube-proxy expect, and the resolv.conf pods
//! get.

use std::path::{Path, PathBuf};

use crate::{Error, NodePaths};

/// Set to skip [`kernel_check`] (a kernel that has a feature under
/// another option than the one k3r looks for).
pub const SKIP_KERNEL_CHECK_ENV: &str = "K3R_SKIP_KERNEL_CHECK";

/// Preflight of a server or agent start: the kernel has what k3r needs
/// (`k3r check-config`), when its build config can be read; else one
/// line naming what is missing.
pub fn kernel_check() -> Result<(), String> {
    if std::env::var_os(SKIP_KERNEL_CHECK_ENV).is_some() {
        return Ok(());
    }
    kernel_verdict(k3r_check_config::missing_on_this_host())
}

fn kernel_verdict(missing: Option<Vec<String>>) -> Result<(), String> {
    match missing {
        Some(missing) if !missing.is_empty() => Err(format!(
            "{} (`k3r check-config` lists everything; {SKIP_KERNEL_CHECK_ENV}=1 starts anyway)",
            k3r_check_config::lacking(&missing)
        )),
        _ => Ok(()),
    }
}

/// Mount propagation, forwarding and bridge netfilter, as kubelet and
/// kube-proxy expect them.
pub fn prepare_host() -> Result<(), Error> {
    use nix::mount::{MsFlags, mount};
    let shared = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|info| {
            info.lines()
                .any(|l| l.split(' ').nth(4) == Some("/") && l.contains("shared:"))
        })
        .unwrap_or(false);
    if !shared {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Error::Host(format!("mount --make-rshared /: {e}")))?;
    }
    if !Path::new("/proc/sys/net/bridge").exists() {
        let _ = std::process::Command::new("modprobe")
            .arg("br_netfilter")
            .status();
    }
    for (key, value) in [
        ("net/ipv4/ip_forward", "1"),
        ("net/bridge/bridge-nf-call-iptables", "1"),
        ("net/bridge/bridge-nf-call-ip6tables", "1"),
    ] {
        let path = Path::new("/proc/sys").join(key);
        if path.exists() {
            std::fs::write(&path, value)
                .map_err(|e| Error::Host(format!("sysctl {key}={value}: {e}")))?;
        }
    }
    Ok(())
}

/// The host's resolv.conf if it names a usable resolver, else a fallback
/// (kubelet refuses a resolv.conf that points at loopback for pods).
pub fn resolv_conf(paths: &NodePaths) -> Result<PathBuf, Error> {
    let host = Path::new("/etc/resolv.conf");
    let usable = std::fs::read_to_string(host)
        .map(|text| {
            text.lines().any(|l| {
                l.trim().strip_prefix("nameserver").is_some_and(|ip| {
                    ip.trim()
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| !ip.is_loopback())
                })
            })
        })
        .unwrap_or(false);
    if usable {
        return Ok(host.to_path_buf());
    }
    let fallback = paths.etc().join("resolv.conf");
    std::fs::write(&fallback, "nameserver 8.8.8.8\n")
        .map_err(|e| Error::Io(fallback.clone(), e))?;
    Ok(fallback)
}

#[cfg(test)]
mod kernel_tests {
    use super::*;

    #[test]
    fn a_kernel_lacking_features_stops_the_start_with_one_line() {
        assert_eq!(kernel_verdict(None), Ok(()), "no config: nothing to go by");
        assert_eq!(kernel_verdict(Some(Vec::new())), Ok(()));
        let refused = kernel_verdict(Some(vec![
            "CONFIG_VXLAN".into(),
            "cgroup controller pids".into(),
        ]))
        .expect_err("refused");
        assert!(refused.starts_with(
            "this kernel lacks what k3r needs: CONFIG_VXLAN, cgroup controller pids ("
        ));
        assert!(!refused.contains('\n'));
    }
}
