//! rustls configurations from PEM files.

use std::path::Path;

use crate::Error;

fn tunnel_err(e: k3r_tunnel::TunnelError) -> Error {
    Error::Tls(e.to_string())
}

/// Client side: trusts `ca`, presents `cert`/`key`.
pub fn client_config(
    ca: &Path,
    cert: &Path,
    key_path: &Path,
) -> Result<rustls::ClientConfig, Error> {
    k3r_tunnel::tls::client_config(ca, cert, key_path).map_err(tunnel_err)
}

/// Who the client certificate the front verified says the client is.
#[derive(Clone, Debug, Default)]
pub struct Certified {
    pub user: String,
    pub groups: Vec<String>,
}
