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

/// Finds k3r-kube: $K3R_KUBE, beside this binary, one folder up (cargo's
/// target/), in `<data-dir>/bin`, or on PATH.
pub fn kube_binary(data_dir: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("K3R_KUBE") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locating the k3r binary")?;
    let mut candidates = Vec::new();
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join("k3r-kube"));
        if let Some(up) = dir.parent() {
            candidates.push(up.join("k3r-kube"));
        }
    }
    if let Some(data_dir) = data_dir {
        candidates.push(data_dir.join("bin").join("k3r-kube"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("k3r-kube")));
    }
    Ok(candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/k3r-kube")))
}
