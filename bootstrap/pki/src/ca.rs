use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};

use crate::{Error, Result, files};

/// CAs last ten years, as in k3s.
const CA_VALIDITY_DAYS: i64 = 3650;

pub struct Ca {
    pub cert_path: PathBuf,
    pub cert_pem: String,
    pub issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// Loads `<stem>.crt/.key` from `dir`, or creates a self-signed CA.
    /// Pre-existing (custom) CA files are used as they are.
    pub fn ensure(dir: &Path, stem: &str, common_name: &str) -> Result<Self> {
        let cert_path = dir.join(format!("{stem}.crt"));
        let key_path = dir.join(format!("{stem}.key"));
        if let (Some(cert_pem), Some(key_pem)) = (files::read(&cert_path)?, files::read(&key_path)?)
        {
            let bad = |reason: String| Error::BadCertificate {
                path: cert_path.clone(),
                reason,
            };
            let key = KeyPair::from_pem(&key_pem).map_err(|e| bad(format!("key: {e}")))?;
            let issuer =
                Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| bad(e.to_string()))?;
            return Ok(Self {
                cert_path,
                cert_pem,
                issuer,
            });
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let now = OffsetDateTime::now_utc();
        params.distinguished_name.push(
            DnType::CommonName,
            format!("{common_name}@{}", now.unix_timestamp()),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
        let cert = params.self_signed(&key)?;
        files::write_private(&key_path, key.serialize_pem().as_bytes())?;
        files::write_public(&cert_path, cert.pem().as_bytes())?;
        tracing::info!(ca = stem, "created certificate authority");
        let cert_pem = cert.pem();
        Ok(Self {
            cert_path,
            cert_pem,
            issuer: Issuer::new(params, key),
        })
    }
}
