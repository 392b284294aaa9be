//! Facts about this host that flags default to.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

pub fn hostname() -> anyhow::Result<String> {
    let name = nix::unistd::gethostname().context("reading the hostname")?;
    Ok(name.to_string_lossy().to_lowercase())
}

pub fn check_node_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        bail!(
            "--node-name: {name:?} is not a valid Kubernetes node name (lowercase letters, digits, '-' and '.')"
        );
    }
    Ok(())
}

/// The IPv4 address of the interface holding the default route, else the
/// first non-loopback IPv4 address.
pub fn default_ip() -> anyhow::Result<IpAddr> {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let default_iface = routes
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&"00000000"))
        .and_then(|f| f.first().map(|s| s.to_string()));
    let addrs: Vec<(String, IpAddr)> = nix::ifaddrs::getifaddrs()
        .context("listing interfaces")?
        .filter_map(|a| {
            let ip = a.address?.as_sockaddr_in()?.ip();
            Some((a.interface_name, IpAddr::V4(ip)))
        })
        .filter(|(_, ip)| !ip.is_loopback())
        .collect();
    if let Some(iface) = default_iface
        && let Some((_, ip)) = addrs.iter().find(|(name, _)| *name == iface)
    {
        return Ok(*ip);
    }
    match addrs.first() {
        Some((_, ip)) => Ok(*ip),
        None => bail!("no IPv4 address found on this host; pass --node-ip"),
    }
}

/// The data dir a tool command (kubectl, crictl, ctr) works with:
/// `$K3R_DATA_DIR`, else `/var/lib/k3r` for root and `~/.k3r` for others
/// (as k3s).
pub fn tool_data_dir() -> anyhow::Result<PathBuf> {
    Ok(match std::env::var_os("K3R_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None if nix::unistd::Uid::effective().is_root() => {
            PathBuf::from(super::node_flags::DEFAULT_DATA_DIR)
        }
        None => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".k3r"))
            .context("HOME is not set: set K3R_DATA_DIR")?,
    })
}

/// This k3r's programs for a tool command: its payload, extracted under
/// `<tool data dir>/data` if not there yet.
pub fn tool_programs() -> anyhow::Result<k3r_node::programs::Programs> {
    Ok(k3r_node::programs::Source::this_k3r()?.install(&tool_data_dir()?)?)
}
