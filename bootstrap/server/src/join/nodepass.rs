//! Node passwords, as k3s keeps them: each agent sends a password of its
//! own with its node name; the first one is stored (salted hash) in the
//! Secret `kube-system/<node>.node-password.k3r` and later ones must match,
//! so a second machine cannot take over a live node's name. Once the Node
//! object is gone, a new password replaces the old one (a deleted node
//! may rejoin). If the Secret cannot be written the join is allowed, as in
//! k3s (fail open), and checked again next time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::auth::same_secret;
use crate::Error;
use crate::api::ApiClient;

pub const REJECTED: &str = "Node password rejected, duplicate hostname or contents of the node \
     password file may not match the server's entry; use a unique node name (--node-name or \
     --with-node-id), or delete the Node to let this machine take the name";

fn secret_name(node: &str) -> String {
    format!("{node}.node-password.k3r")
}

/// `sha256$<salt>$<hex of sha256(salt || password)>`
pub fn hash(password: &str, salt: &str) -> String {
    let digest = Sha256::digest(format!("{salt}{password}"));
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256${salt}${hex}")
}

pub fn matches(stored: &str, password: &str) -> bool {
    let mut parts = stored.splitn(3, '$');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("sha256"), Some(salt), Some(_)) => same_secret(&hash(password, salt), stored),
        _ => false,
    }
}

/// Whether `password` may join as `node`.
pub async fn check(api: &ApiClient, node: &str, password: &str) -> Result<bool, Error> {
    let path = format!(
        "/api/v1/namespaces/kube-system/secrets/{}",
        secret_name(node)
    );
    if let Some(secret) = api.get_json(&path).await? {
        let stored = secret["data"]["hash"]
            .as_str()
            .and_then(|h| STANDARD.decode(h).ok())
            .map(|h| String::from_utf8_lossy(&h).into_owned())
            .unwrap_or_default();
        if matches(&stored, password) {
            return Ok(true);
        }
        if api
            .get_json(&format!("/api/v1/nodes/{node}"))
            .await?
            .is_some()
        {
            tracing::warn!(%node, "node password rejected: the name belongs to a live node");
            return Ok(false);
        }
        tracing::info!(%node, "node password replaced: the old Node is gone");
    }
    store(api, node, password).await;
    Ok(true)
}

async fn store(api: &ApiClient, node: &str, password: &str) {
    let salt = k3r_pki::generate_password();
    let secret = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "k3r.io/node-password",
        "metadata": {
            "name": secret_name(node),
            "namespace": "kube-system",
            "labels": {"k3r.io/node-password": "true"},
        },
        "data": {"hash": STANDARD.encode(hash(password, &salt))},
    });
    if let Err(err) = api.apply(&secret).await {
        tracing::warn!(%node, error = %err, "storing the node password failed; allowing the join");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salted_hashes() {
        let stored = hash("pw-one", "salt");
        assert!(stored.starts_with("sha256$salt$"));
        assert!(matches(&stored, "pw-one"));
        assert!(!matches(&stored, "pw-two"));
        assert_ne!(hash("pw-one", "salt"), hash("pw-one", "pepper"));
        assert!(!matches("plain", "plain"));
    }
}
