//! Pre-flight checks: everything that can be known to fail is reported
//! before anything in the data dir is touched.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::Path;

use crate::Error;
use crate::config::{ServerConfig, check_networks};

pub fn preflight(config: &ServerConfig) -> Result<(), Error> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(Error::Config("k3r server must run as root".into()));
    }
    check_networks(config)?;
    k3r_node::host::kernel_check().map_err(Error::Config)?;
    if !config.kube_binary.is_file() {
        return Err(Error::Config(format!(
            "k3r-kube not found at {} (build it with scripts/build-kube, or set K3R_KUBE)",
            config.kube_binary.display()
        )));
    }
    for (program, package) in [
        ("containerd", "containerd"),
        ("runc", "runc"),
        ("ctr", "containerd"),
        ("iptables", "iptables"),
    ] {
        if which(program).is_none() {
            return Err(Error::Config(format!(
                "{program} is not installed (Debian package {package})"
            )));
        }
    }
    if !Path::new("/usr/lib/cni/bridge").exists() {
        return Err(Error::Config(
            "CNI plugins are missing in /usr/lib/cni (Debian package containernetworking-plugins)"
                .into(),
        ));
    }
    port_free(config.bind_address, config.https_listen_port)?;
    port_free(IpAddr::from([0, 0, 0, 0]), config.apiserver_port())?;
    Ok(())
}

pub use k3r_node::host::which;

fn port_free(ip: IpAddr, port: u16) -> Result<(), Error> {
    TcpListener::bind(SocketAddr::new(ip, port))
        .map(drop)
        .map_err(|e| Error::Config(format!("port {port} on {ip} is not available: {e}")))
}
