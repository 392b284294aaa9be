//! rustls configurations from PEM files.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

fn tls_err(what: &Path, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{}: {e}", what.display()))
}

fn tunnel_err(e: k3r_tunnel::TunnelError) -> Error {
    Error::Tls(e.to_string())
}

pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    k3r_tunnel::tls::certs(path).map_err(tunnel_err)
}

pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    k3r_tunnel::tls::key(path).map_err(tunnel_err)
}

pub fn roots(ca: &Path) -> Result<RootCertStore, Error> {
    k3r_tunnel::tls::roots(ca).map_err(tunnel_err)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    k3r_tunnel::tls::provider()
}

/// Client side: trusts `ca`, presents `cert`/`key`.
pub fn client_config(
    ca: &Path,
    cert: &Path,
    key_path: &Path,
) -> Result<rustls::ClientConfig, Error> {
    k3r_tunnel::tls::client_config(ca, cert, key_path).map_err(tunnel_err)
}

/// Server side: presents `cert`/`key`; verifies client certificates
/// against `client_ca` when a client offers one.
pub fn server_config(
    cert: &Path,
    key_path: &Path,
    client_ca: &Path,
) -> Result<rustls::ServerConfig, Error> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(client_ca)?), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| tls_err(client_ca, e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(cert)?, key(key_path)?)
        .map_err(|e| tls_err(cert, e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The client certificate the supervisor's TLS layer verified, if any.
#[derive(Clone, Debug, Default)]
pub struct Certified {
    pub user: String,
    pub groups: Vec<String>,
}
