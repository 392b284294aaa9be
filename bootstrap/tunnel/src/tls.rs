//! rustls configurations from PEM files, as nodes and the supervisor
//! use them.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TunnelError;

fn tls_err(what: &Path, e: impl std::fmt::Display) -> TunnelError {
    TunnelError::Tls(format!("{}: {e}", what.display()))
}

pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TunnelError> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(path, e))
}

pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TunnelError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| tls_err(path, e))
}

pub fn roots(ca: &Path) -> Result<RootCertStore, TunnelError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca)? {
        roots.add(cert).map_err(|e| tls_err(ca, e))?;
    }
    Ok(roots)
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Client side: trusts `ca`, presents `cert`/`key`.
pub fn client_config(
    ca: &Path,
    cert: &Path,
    key_path: &Path,
) -> Result<rustls::ClientConfig, TunnelError> {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TunnelError::Tls(e.to_string()))?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(certs(cert)?, key(key_path)?)
        .map_err(|e| tls_err(cert, e))
}
