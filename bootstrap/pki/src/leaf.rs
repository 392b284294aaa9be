use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use crate::ca::Ca;
use crate::{Error, Result, files};

/// Leaf certificates last a year and are renewed at start within this many
/// days of expiry (k3s: 120).
const LEAF_VALIDITY_DAYS: i64 = 365;
const RENEW_WITHIN_DAYS: i64 = 120;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    Client,
    Server,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafSpec {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub usage: Usage,
}

impl LeafSpec {
    pub fn client(common_name: &str, organizations: &[&str]) -> Self {
        Self {
            common_name: common_name.to_string(),
            organizations: organizations.iter().map(|o| o.to_string()).collect(),
            dns_names: Vec::new(),
            ips: Vec::new(),
            usage: Usage::Client,
        }
    }

    pub fn serving(common_name: &str, dns_names: Vec<String>, ips: Vec<IpAddr>) -> Self {
        Self {
            common_name: common_name.to_string(),
            organizations: Vec::new(),
            dns_names,
            ips,
            usage: Usage::Server,
        }
    }

    fn names(&self) -> (BTreeSet<String>, BTreeSet<IpAddr>) {
        (
            self.dns_names.iter().cloned().collect(),
            self.ips.iter().copied().collect(),
        )
    }
}

/// What an existing certificate says about itself.
struct Existing {
    common_name: String,
    organizations: Vec<String>,
    dns_names: BTreeSet<String>,
    ips: BTreeSet<IpAddr>,
    issuer: String,
    not_after: i64,
}

fn inspect(pem: &str) -> Option<Existing> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let subject = cert.subject();
    let common_name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let organizations = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(String::from))
        .collect();
    let mut dns_names = BTreeSet::new();
    let mut ips = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => {
                    dns_names.insert(d.to_string());
                }
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => {
                        ips.insert(IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?));
                    }
                    16 => {
                        ips.insert(IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Some(Existing {
        common_name,
        organizations,
        dns_names,
        ips,
        issuer: cert.issuer().to_string(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

fn ca_subject(ca: &Ca) -> Option<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(ca.cert_pem.as_bytes()).ok()?;
    Some(pem.parse_x509().ok()?.subject().to_string())
}

/// Makes sure `<stem>.crt/.key` exist, match `spec`, are issued by `ca`
/// and are not about to expire. Keys are kept across renewals.
pub fn ensure(dir: &Path, stem: &str, spec: &LeafSpec, ca: &Ca) -> Result<()> {
    let cert_path = dir.join(format!("{stem}.crt"));
    let key_path = dir.join(format!("{stem}.key"));
    let key = match files::read(&key_path)? {
        Some(pem) => KeyPair::from_pem(&pem).map_err(|e| Error::BadCertificate {
            path: key_path.clone(),
            reason: format!("key: {e}"),
        })?,
        None => {
            let key = KeyPair::generate()?;
            files::write_private(&key_path, key.serialize_pem().as_bytes())?;
            key
        }
    };
    let now = OffsetDateTime::now_utc();
    if let Some(existing) = files::read(&cert_path)?.as_deref().and_then(inspect) {
        let (dns, ips) = spec.names();
        let fresh = existing.not_after - now.unix_timestamp() > RENEW_WITHIN_DAYS * 86400;
        let same = existing.common_name == spec.common_name
            && existing.organizations == spec.organizations
            && existing.dns_names == dns
            && existing.ips == ips
            && Some(&existing.issuer) == ca_subject(ca).as_ref();
        if fresh && same {
            return Ok(());
        }
        tracing::info!(
            cert = stem,
            expiring = !fresh,
            changed = !same,
            "renewing certificate"
        );
    }
    let cert = sign(spec, &key, ca, now)?;
    files::write_public(&cert_path, cert.as_bytes())?;
    Ok(())
}

/// A fresh key and a certificate for it, issued by `ca` (for agents
/// joining: their certificates are never written on the server).
/// Returns (certificate PEM followed by the CA's, key PEM).
pub fn issue(spec: &LeafSpec, ca: &Ca) -> Result<(String, String)> {
    let key = KeyPair::generate()?;
    let cert = sign(spec, &key, ca, OffsetDateTime::now_utc())?;
    Ok((format!("{cert}{}", ca.cert_pem), key.serialize_pem()))
}

fn sign(spec: &LeafSpec, key: &KeyPair, ca: &Ca, now: OffsetDateTime) -> Result<String> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, spec.common_name.clone());
    for org in &spec.organizations {
        params
            .distinguished_name
            .push(DnType::OrganizationName, org.clone());
    }
    for name in &spec.dns_names {
        params
            .subject_alt_names
            .push(SanType::DnsName(name.clone().try_into()?));
    }
    for ip in &spec.ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = match spec.usage {
        Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Usage::Server => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(LEAF_VALIDITY_DAYS);
    params.use_authority_key_identifier_extension = true;
    Ok(params.signed_by(key, &ca.issuer)?.pem())
}
