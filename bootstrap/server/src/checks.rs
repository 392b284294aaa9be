//! Pre-flight checks: everything that can be known to fail is reported
//! before anything in the data dir is touched.

use std::net::{IpAddr, SocketAddr, TcpListener};

use crate::Error;
use crate::config::{ServerConfig, check_networks};

pub fn preflight(config: &ServerConfig) -> Result<(), Error> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(Error::Config("k3r server must run as root".into()));
    }
    check_networks(config)?;
    // The runtime and iptables come from k3r's own payload: only the
    // kernel is the host's to provide.
    k3r_node::host::kernel_check().map_err(Error::Config)?;
    port_free(config.bind_address, config.https_listen_port)?;
    port_free(IpAddr::from([0, 0, 0, 0]), config.apiserver_port())?;
    Ok(())
}

fn port_free(ip: IpAddr, port: u16) -> Result<(), Error> {
    TcpListener::bind(SocketAddr::new(ip, port))
        .map(drop)
        .map_err(|e| Error::Config(format!("port {port} on {ip} is not available: {e}")))
}
