//! k3r's PKI: three CAs (client, server, request-header), a certificate per
//! component signed by them, the service-account key, kubeconfigs, and the
//! K10 join token. Everything is created on first start and reused after;
//! leaf certificates are renewed at start when they near expiry or when
//! their names changed, keeping their keys.

mod ca;
mod files;
mod kubeconfig;
mod leaf;
mod token;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use ca::Ca;
pub use files::{write_private, write_public};
pub use kubeconfig::write_kubeconfig;
pub use leaf::{LeafSpec, Usage, issue};
pub use token::{Token, ca_hash, generate_password, node_password};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: not a usable certificate: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error("invalid token: {0}")]
    InvalidToken(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names that go into the server certificates.
#[derive(Clone, Debug)]
pub struct PkiOptions {
    pub node_name: String,
    pub node_ips: Vec<IpAddr>,
    pub tls_sans: Vec<String>,
    pub cluster_domain: String,
    /// First IP of the service CIDR: the `kubernetes` Service.
    pub api_service_ip: IpAddr,
}

/// Paths of everything the PKI wrote under `<data-dir>/server/tls`.
#[derive(Clone, Debug)]
pub struct Pki {
    pub dir: PathBuf,
    pub client_ca: PathBuf,
    pub server_ca: PathBuf,
    pub request_header_ca: PathBuf,
    pub service_key: PathBuf,
    /// Public half of the service-account key, for verifying tokens.
    pub service_pub: PathBuf,
}

/// The leaf certificates a server needs: (file stem, spec).
fn server_leaves(opts: &PkiOptions) -> Vec<(&'static str, LeafSpec)> {
    let client = |cn: &str, orgs: &[&str]| LeafSpec::client(cn, orgs);
    let mut apiserver_names = vec![
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        format!("kubernetes.default.svc.{}", opts.cluster_domain),
        "localhost".to_string(),
        opts.node_name.clone(),
    ];
    apiserver_names.extend(opts.tls_sans.iter().cloned());
    let mut apiserver_ips = vec![IpAddr::from([127, 0, 0, 1]), opts.api_service_ip];
    apiserver_ips.extend(opts.node_ips.iter().copied());
    let mut kubelet_ips = vec![IpAddr::from([127, 0, 0, 1])];
    kubelet_ips.extend(opts.node_ips.iter().copied());
    vec![
        ("client-admin", client("system:admin", &["system:masters"])),
        (
            "client-supervisor",
            client("system:k3r-supervisor", &["system:masters"]),
        ),
        (
            "client-controller",
            client("system:kube-controller-manager", &[]),
        ),
        ("client-scheduler", client("system:kube-scheduler", &[])),
        (
            "client-kube-apiserver",
            client("system:apiserver", &["system:masters"]),
        ),
        ("client-kube-proxy", client("system:kube-proxy", &[])),
        (
            "client-k3r-controller",
            client("system:k3r-controller", &[]),
        ),
        (
            "client-kubelet",
            client(
                &format!("system:node:{}", opts.node_name),
                &["system:nodes"],
            ),
        ),
        (
            "serving-kube-apiserver",
            LeafSpec::serving(
                "kube-apiserver",
                apiserver_names.clone(),
                apiserver_ips.clone(),
            ),
        ),
        (
            "serving-supervisor",
            LeafSpec::serving("k3r", apiserver_names, apiserver_ips),
        ),
        (
            "serving-kubelet",
            LeafSpec::serving(
                &opts.node_name,
                vec![opts.node_name.clone(), "localhost".into()],
                kubelet_ips,
            ),
        ),
    ]
}

impl Pki {
    /// Creates or loads every CA and certificate under `dir`.
    pub fn ensure(dir: &Path, opts: &PkiOptions) -> Result<Self> {
        files::create_dir(dir)?;
        let client_ca = Ca::ensure(dir, "client-ca", "k3r-client-ca")?;
        let server_ca = Ca::ensure(dir, "server-ca", "k3r-server-ca")?;
        let request_header_ca = Ca::ensure(dir, "request-header-ca", "k3r-request-header-ca")?;
        for (stem, spec) in server_leaves(opts) {
            let ca = if spec.usage == Usage::Server {
                &server_ca
            } else {
                &client_ca
            };
            leaf::ensure(dir, stem, &spec, ca)?;
        }
        leaf::ensure(
            dir,
            "client-auth-proxy",
            &LeafSpec::client("system:auth-proxy", &[]),
            &request_header_ca,
        )?;
        let service_key = dir.join("service.key");
        let service_pub = dir.join("service.pub");
        let key = match files::read(&service_key)? {
            Some(pem) => rcgen::KeyPair::from_pem(&pem).map_err(|e| Error::BadCertificate {
                path: service_key.clone(),
                reason: format!("key: {e}"),
            })?,
            None => {
                let key = rcgen::KeyPair::generate()?;
                files::write_private(&service_key, key.serialize_pem().as_bytes())?;
                key
            }
        };
        // kube-apiserver reads verification keys as PUBLIC KEY blocks, not PKCS#8.
        files::write_public(&service_pub, key.public_key_pem().as_bytes())?;
        Ok(Self {
            dir: dir.to_path_buf(),
            client_ca: client_ca.cert_path.clone(),
            server_ca: server_ca.cert_path.clone(),
            request_header_ca: request_header_ca.cert_path.clone(),
            service_key,
            service_pub,
        })
    }

    pub fn cert(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.crt"))
    }

    pub fn key(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.key"))
    }
}
