//! The supervisor's join endpoints (k3s's /v1-k3s/*, here /v1-k3r/*):
//! what an agent fetches to become a node — the CAs, its kubelet serving
//! and client certificates (issued per node, after its node password is
//! checked), the shared kube-proxy and k3r-controller certificates, the
//! cluster's critical configuration, the API server addresses and
//! readiness. Every endpoint needs a caller `auth` accepts; at most 20
//! requests are served at once (agents retry), as in k3s.

pub mod auth;
pub mod nodepass;

use std::net::IpAddr;

use bytes::Bytes;
use hyper::{HeaderMap, StatusCode};
use k3r_join_protocol::header::{NODE_IP, NODE_NAME, NODE_PASSWORD};
use k3r_join_protocol::{CriticalConfig, Endpoint};
use k3r_pki::{Ca, LeafSpec, Pki, issue};
use tokio::sync::Semaphore;

use auth::Caller;

use crate::Error;
use crate::api::ApiClient;
use crate::config::ServerConfig;
use crate::tls::Certified;

pub use k3r_join_protocol::PREFIX;

/// What an endpoint answers.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Reply {
    fn text(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    fn json(value: &serde_json::Value) -> Self {
        Reply {
            status: StatusCode::OK,
            content_type: "application/json",
            body: Bytes::from(value.to_string()),
        }
    }
}

pub struct JoinService {
    token_password: String,
    server_ca: Ca,
    client_ca: Ca,
    pki: Pki,
    api: ApiClient,
    cluster: CriticalConfig,
    supervisor_port: u16,
    permits: Semaphore,
}

/// The configuration every node must share (an agent refuses to join a
/// cluster whose values differ from its own flags).
pub fn critical_config(config: &ServerConfig) -> CriticalConfig {
    CriticalConfig {
        cluster_cidr: config.cluster_cidr.to_string(),
        service_cidr: config.service_cidr.to_string(),
        cluster_dns: config.cluster_dns.to_string(),
        cluster_domain: config.cluster_domain.clone(),
        service_node_port_range: config.service_node_port_range.clone(),
        flannel_backend: config.flannel_backend.as_str().to_string(),
        system_default_registry: config.system_default_registry.clone(),
        disable_network_policy: config.disable_network_policy,
    }
}

impl JoinService {
    pub fn new(
        config: &ServerConfig,
        pki: &Pki,
        token_password: String,
        api: ApiClient,
    ) -> Result<Self, Error> {
        Ok(JoinService {
            token_password,
            server_ca: Ca::ensure(&pki.dir, "server-ca", "k3r-server-ca")?,
            client_ca: Ca::ensure(&pki.dir, "client-ca", "k3r-client-ca")?,
            pki: pki.clone(),
            api,
            cluster: critical_config(config),
            supervisor_port: config.https_listen_port,
            permits: Semaphore::new(20),
        })
    }

    pub async fn handle(
        &self,
        path: &str,
        headers: &HeaderMap,
        certified: Option<&Certified>,
    ) -> Reply {
        let Ok(_permit) = self.permits.try_acquire() else {
            return Reply::text(
                StatusCode::TOO_MANY_REQUESTS,
                "too many joins at once; retry\n",
            );
        };
        let Some(caller) =
            auth::authenticate(headers, certified, &self.token_password, &self.api).await
        else {
            return Reply::text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        };
        let Some(endpoint) = Endpoint::from_path(path) else {
            return Reply::text(StatusCode::NOT_FOUND, "not found\n");
        };
        let result = match endpoint {
            Endpoint::ClientCa => Ok(pem(&self.client_ca.cert_pem)),
            Endpoint::ServerCa => Ok(pem(&self.server_ca.cert_pem)),
            Endpoint::ServingKubelet | Endpoint::ClientKubelet => {
                self.kubelet_cert(endpoint, headers, &caller).await
            }
            Endpoint::ClientKubeProxy => self.shared("client-kube-proxy"),
            Endpoint::ClientK3rController => self.shared("client-k3r-controller"),
            Endpoint::Config => Ok(Reply::json(
                &serde_json::to_value(&self.cluster).unwrap_or_default(),
            )),
            Endpoint::Apiservers => self.apiservers().await,
            Endpoint::Readyz => Ok(self.readyz().await),
        };
        result.unwrap_or_else(|err| {
            tracing::warn!(%path, error = %err, "join request failed");
            Reply::text(StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n"))
        })
    }

    async fn kubelet_cert(
        &self,
        endpoint: Endpoint,
        headers: &HeaderMap,
        caller: &Caller,
    ) -> Result<Reply, Error> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let (Some(node), Some(password)) = (header(NODE_NAME), header(NODE_PASSWORD)) else {
            return Ok(Reply::text(
                StatusCode::BAD_REQUEST,
                format!("{NODE_NAME} and {NODE_PASSWORD} headers are required\n"),
            ));
        };
        if let Caller::Node(own) = caller
            && own != node
        {
            return Ok(Reply::text(
                StatusCode::FORBIDDEN,
                format!("node {own} may not fetch certificates of node {node}\n"),
            ));
        }
        if !nodepass::check(&self.api, node, password).await? {
            return Ok(Reply::text(
                StatusCode::FORBIDDEN,
                format!("{}\n", nodepass::REJECTED),
            ));
        }
        let (spec, ca) = if endpoint == Endpoint::ServingKubelet {
            let mut ips = vec![IpAddr::from([127, 0, 0, 1])];
            for ip in header(NODE_IP).unwrap_or_default().split(',') {
                let ip = ip.trim();
                if ip.is_empty() {
                    continue;
                }
                match ip.parse() {
                    Ok(ip) => ips.push(ip),
                    Err(_) => {
                        return Ok(Reply::text(
                            StatusCode::BAD_REQUEST,
                            format!("{NODE_IP}: {ip:?} is not an IP address\n"),
                        ));
                    }
                }
            }
            (
                LeafSpec::serving(node, vec![node.to_string(), "localhost".into()], ips),
                &self.server_ca,
            )
        } else {
            (
                LeafSpec::client(&format!("system:node:{node}"), &["system:nodes"]),
                &self.client_ca,
            )
        };
        let (cert, key) = issue(&spec, ca)?;
        tracing::info!(%node, certificate = endpoint.name(), ?caller, "issued node certificate");
        Ok(pem(&format!("{cert}{key}")))
    }

    /// Certificate and key of one of the server's shared identities.
    fn shared(&self, stem: &str) -> Result<Reply, Error> {
        let read = |path: std::path::PathBuf| {
            std::fs::read_to_string(&path).map_err(|e| Error::Io(path, e))
        };
        let cert = read(self.pki.cert(stem))?;
        let key = read(self.pki.key(stem))?;
        Ok(pem(&format!("{cert}{key}")))
    }

    /// The supervisor address of every API server, from the `kubernetes`
    /// Endpoints.
    async fn apiservers(&self) -> Result<Reply, Error> {
        let endpoints = self
            .api
            .get_json("/api/v1/namespaces/default/endpoints/kubernetes")
            .await?
            .unwrap_or_default();
        let mut addresses: Vec<String> = endpoints["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["ip"].as_str().map(String::from))
            .map(|ip| match ip.parse::<IpAddr>() {
                Ok(IpAddr::V6(_)) => format!("[{ip}]:{}", self.supervisor_port),
                _ => format!("{ip}:{}", self.supervisor_port),
            })
            .collect();
        addresses.sort();
        addresses.dedup();
        Ok(Reply::json(&serde_json::json!(addresses)))
    }

    async fn readyz(&self) -> Reply {
        match self.api.get("/readyz").await {
            Ok((StatusCode::OK, _)) => Reply::text(StatusCode::OK, "ok"),
            _ => Reply::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "kube-apiserver is not ready\n",
            ),
        }
    }
}

fn pem(text: &str) -> Reply {
    Reply {
        status: StatusCode::OK,
        content_type: "application/x-pem-file",
        body: Bytes::from(text.to_string()),
    }
}
