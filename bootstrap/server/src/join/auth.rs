//! Who may use the join endpoints: the cluster token as Basic
//! `node:<password>` or `server:<password>`, a kubeadm-style bootstrap
//! token (`Bearer <id>.<secret>`, a Secret `bootstrap-token-<id>` in
//! kube-system, unexpired, usable for authentication), or a node's own
//! client certificate (group system:nodes) after its first join.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;

use crate::api::ApiClient;
use crate::tls::Certified;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The server token (`server:` user).
    Server,
    /// The agent token (`node:` user).
    Agent,
    /// A bootstrap token, by id.
    Bootstrap(String),
    /// A node's client certificate.
    Node(String),
}

/// Equal without revealing where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub async fn authenticate(
    headers: &HeaderMap,
    certified: Option<&Certified>,
    token_password: &str,
    api: &ApiClient,
) -> Option<Caller> {
    if let Some(cert) = certified
        && cert.groups.iter().any(|g| g == "system:nodes")
    {
        return Some(Caller::Node(
            cert.user
                .strip_prefix("system:node:")
                .unwrap_or(&cert.user)
                .to_string(),
        ));
    }
    let header = headers.get(AUTHORIZATION)?.to_str().ok()?;
    if let Some(basic) = header.strip_prefix("Basic ") {
        let decoded = String::from_utf8(STANDARD.decode(basic.trim()).ok()?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        if !same_secret(password, token_password) {
            return None;
        }
        return match user {
            "server" => Some(Caller::Server),
            "node" => Some(Caller::Agent),
            _ => None,
        };
    }
    let bearer = header.strip_prefix("Bearer ")?.trim();
    let (id, secret) = parse_bootstrap_token(bearer)?;
    valid_bootstrap_token(api, id, secret)
        .await
        .then(|| Caller::Bootstrap(id.to_string()))
}

/// `[a-z0-9]{6}.[a-z0-9]{16}`
pub fn parse_bootstrap_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

async fn valid_bootstrap_token(api: &ApiClient, id: &str, secret: &str) -> bool {
    let path = format!("/api/v1/namespaces/kube-system/secrets/bootstrap-token-{id}");
    let Ok(Some(object)) = api.get_json(&path).await else {
        return false;
    };
    let field = |key: &str| {
        object["data"][key]
            .as_str()
            .and_then(|v| STANDARD.decode(v).ok())
            .and_then(|v| String::from_utf8(v).ok())
    };
    object["type"] == "bootstrap.kubernetes.io/token"
        && field("token-id").as_deref() == Some(id)
        && field("token-secret").is_some_and(|s| same_secret(&s, secret))
        && field("usage-bootstrap-authentication").as_deref() == Some("true")
        && field("expiration").is_none_or(|e| !expired(&e, SystemTime::now()))
}

/// An expiration that cannot be read counts as expired.
pub fn expired(expiration: &str, now: SystemTime) -> bool {
    humantime::parse_rfc3339_weak(expiration.trim_end_matches('Z')).map_or(true, |at| at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bootstrap_token_shape() {
        assert_eq!(
            parse_bootstrap_token("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        for bad in [
            "abcdef0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abc.0123456789abcdef",
            "abcdef.short",
        ] {
            assert_eq!(parse_bootstrap_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn expiry() {
        let now = humantime::parse_rfc3339("2026-11-24T10:00:00Z").expect("time");
        assert!(!expired("2026-11-24T10:00:01Z", now));
        assert!(expired("2026-11-24T09:59:59Z", now));
        assert!(expired("not a time", now));
        assert!(!expired(
            "2026-11-25T10:00:00Z",
            now - Duration::from_secs(1)
        ));
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
