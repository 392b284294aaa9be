//! Talking to a server's supervisor as a joining node (k3s's
//! clientaccess): `/cacerts` fetched without trust, re-fetched trusting
//! only what it returned, and compared with the token's CA hash; only then
//! are credentials sent. A short token (no hash) trusts the CA on first
//! use, with a warning.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k3r_join_protocol::{CACERTS, Endpoint, header};
use k3r_pki::{Token, ca_hash};
use reqwest::StatusCode;

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("invalid server URL {0:?}: only https:// URLs are accepted")]
    Url(String),
    #[error("invalid token: {0}")]
    Token(String),
    #[error("cannot reach the server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "token CA hash does not match the Cluster CA certificate hash (token {expected}, server {actual}); no credentials were sent"
    )]
    CaHashMismatch { expected: String, actual: String },
    #[error("the server at {0} serves a certificate its own /cacerts does not sign")]
    Untrusted(String),
    #[error("the server refused the token (401): check --token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("GET {url}: {status}: {body}")]
    Status {
        url: String,
        status: StatusCode,
        body: String,
    },
}

/// Who this node says it is, sent with kubelet certificate requests.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    pub name: String,
    pub password: String,
    pub ips: Vec<std::net::IpAddr>,
}

/// A verified connection to one server's supervisor.
pub struct Joiner {
    server: String,
    token: Token,
    ca_pem: Vec<u8>,
    http: reqwest::Client,
}

/// An error with its causes ("error sending request" says little).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, JoinError> {
    let unreachable = |e: reqwest::Error| JoinError::Unreachable {
        url: url.to_string(),
        reason: chain(&e),
    };
    let response = client.get(url).send().await.map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?.to_vec();
    if !status.is_success() {
        return Err(JoinError::Status {
            url: url.to_string(),
            status,
            body: String::from_utf8_lossy(&body).trim().to_string(),
        });
    }
    Ok(body)
}

fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, JoinError> {
    builder
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| JoinError::Token(format!("HTTP client: {e}")))
}

impl Joiner {
    /// Verifies the server at `server` (https://HOST:PORT) against `token`.
    pub async fn connect(server: &str, token: &str) -> Result<Joiner, JoinError> {
        let server = server.trim_end_matches('/').to_string();
        if !server.starts_with("https://") {
            return Err(JoinError::Url(server));
        }
        let token = Token::parse(token, "node").map_err(|e| JoinError::Token(e.to_string()))?;
        let url = format!("{server}{CACERTS}");
        let insecure = build(reqwest::Client::builder().danger_accept_invalid_certs(true))?;
        let bundle = fetch(&insecure, &url).await?;
        let actual = ca_hash(&bundle);
        if token.ca_hash.is_empty() {
            tracing::warn!(
                ca_hash = %actual,
                "short token: trusting the server's CA on first use; use the full token (K10…) from the server's node-token file"
            );
        } else if token.ca_hash != actual {
            return Err(JoinError::CaHashMismatch {
                expected: token.ca_hash,
                actual,
            });
        }
        let mut builder = reqwest::Client::builder().tls_built_in_root_certs(false);
        let certs = reqwest::Certificate::from_pem_bundle(&bundle)
            .map_err(|_| JoinError::Untrusted(server.clone()))?;
        if certs.is_empty() {
            return Err(JoinError::Untrusted(server.clone()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
        let http = build(builder)?;
        // The server must prove it holds the CA it served.
        fetch(&http, &url).await.map_err(|e| match e {
            JoinError::Unreachable { .. } => JoinError::Untrusted(server.clone()),
            other => other,
        })?;
        Ok(Joiner {
            server,
            token,
            ca_pem: bundle,
            http,
        })
    }

    /// The server CA bundle, as verified.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// The full token for this cluster (K10<hash>::<credentials>).
    pub fn ca_hash(&self) -> String {
        ca_hash(&self.ca_pem)
    }

    /// GET a join endpoint with the token, and for kubelet certificates
    /// the node's identity.
    pub async fn get(
        &self,
        endpoint: Endpoint,
        node: Option<&NodeIdentity>,
    ) -> Result<Vec<u8>, JoinError> {
        let url = format!("{}{}", self.server, endpoint.path());
        let credentials = if is_bootstrap_token(&self.token.password) {
            format!("Bearer {}", self.token.password)
        } else {
            let pair = format!("{}:{}", self.token.username, self.token.password);
            format!("Basic {}", STANDARD.encode(pair))
        };
        let mut request = self
            .http
            .get(&url)
            .header(reqwest::header::AUTHORIZATION, credentials);
        if let Some(node) = node {
            let ips: Vec<String> = node.ips.iter().map(ToString::to_string).collect();
            request = request
                .header(header::NODE_NAME, &node.name)
                .header(header::NODE_PASSWORD, &node.password)
                .header(header::NODE_IP, ips.join(","));
        }
        let unreachable = |e: reqwest::Error| JoinError::Unreachable {
            url: url.clone(),
            reason: chain(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?.to_vec();
        match status {
            s if s.is_success() => Ok(body),
            StatusCode::UNAUTHORIZED => Err(JoinError::Unauthorized),
            StatusCode::FORBIDDEN => Err(JoinError::Forbidden(
                String::from_utf8_lossy(&body).trim().to_string(),
            )),
            status => Err(JoinError::Status {
                url,
                status,
                body: String::from_utf8_lossy(&body).trim().to_string(),
            }),
        }
    }
}

/// `<6 of [a-z0-9]>.<16 of [a-z0-9]>`: sent as a Bearer token.
fn is_bootstrap_token(credential: &str) -> bool {
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    matches!(credential.split_once('.'), Some((id, secret)) if ok(id, 6) && ok(secret, 16))
}

/// Splits a PEM body holding certificates and a key (what the kubelet
/// certificate endpoints return) into (certificates, key).
pub fn split_cert_and_key(pem: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(pem);
    let mut certs = String::new();
    let mut key = String::new();
    let mut current = String::new();
    for line in text.lines() {
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            if line.contains("PRIVATE KEY") {
                key.push_str(&current);
            } else {
                certs.push_str(&current);
            }
            current.clear();
        }
    }
    (certs, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_tokens_and_pem_splitting() {
        assert!(is_bootstrap_token("abcdef.0123456789abcdef"));
        assert!(!is_bootstrap_token("0123456789abcdef0123456789abcdef"));
        let (certs, key) = split_cert_and_key(
            b"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n",
        );
        assert_eq!(certs.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(key.contains("\nK\n"));
    }
}
