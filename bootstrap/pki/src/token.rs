//! The k3s token format: `K10<sha256 of the server CA>::<user>:<password>`.

use sha2::{Digest, Sha256};

use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Hex SHA-256 of the server CA bundle; empty for a short token.
    pub ca_hash: String,
    pub username: String,
    pub password: String,
}

/// Hash of a CA bundle as k3s computes it for a single self-signed CA: the
/// SHA-256 of the PEM file bytes.
pub fn ca_hash(ca_pem: &[u8]) -> String {
    Sha256::digest(ca_pem)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 16 random bytes, hex encoded (k3s's util.Random(16) is 32 hex chars).
pub fn generate_password() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Token {
    /// Parses a full `K10…::user:password` token or a short one.
    pub fn parse(token: &str, default_user: &str) -> Result<Self> {
        let token = token.trim();
        if token.is_empty() {
            return Err(Error::InvalidToken("empty".into()));
        }
        if let Some(rest) = token.strip_prefix("K10") {
            let (hash, creds) = rest
                .split_once("::")
                .ok_or_else(|| Error::InvalidToken("K10 token without '::' separator".into()))?;
            if !(hash.is_empty() || hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(Error::InvalidToken(
                    "CA hash must be 64 hex characters".into(),
                ));
            }
            let (username, password) = creds.split_once(':').unwrap_or((default_user, creds));
            if password.is_empty() {
                return Err(Error::InvalidToken("no password".into()));
            }
            return Ok(Self {
                ca_hash: hash.to_lowercase(),
                username: username.into(),
                password: password.into(),
            });
        }
        Ok(Self {
            ca_hash: String::new(),
            username: default_user.into(),
            password: token.into(),
        })
    }

    pub fn format(&self) -> String {
        format!("K10{}::{}:{}", self.ca_hash, self.username, self.password)
    }
}

/// A node's password in `agent_dir/node-password`, made once (k3s keeps it
/// in /etc/rancher/node/password; k3r in the data dir, so several nodes
/// can share a machine).
pub fn node_password(agent_dir: &std::path::Path) -> Result<String> {
    let path = agent_dir.join("node-password");
    if let Ok(existing) = std::fs::read_to_string(&path)
        && !existing.trim().is_empty()
    {
        return Ok(existing.trim().to_string());
    }
    let password = generate_password();
    crate::files::write_private(&path, format!("{password}\n").as_bytes())?;
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_short_tokens() {
        let hash = "a".repeat(64);
        let full = Token::parse(&format!("K10{hash}::server:secret"), "node").expect("full");
        assert_eq!(
            (
                full.ca_hash.as_str(),
                full.username.as_str(),
                full.password.as_str()
            ),
            (hash.as_str(), "server", "secret")
        );
        assert_eq!(full.format(), format!("K10{hash}::server:secret"));
        let short = Token::parse("secret", "node").expect("short");
        assert_eq!(
            (short.ca_hash.as_str(), short.username.as_str()),
            ("", "node")
        );
        for bad in [
            "",
            "K10abc::server:x",
            "K10nohash",
            &format!("K10{hash}::server:"),
        ] {
            assert!(Token::parse(bad, "node").is_err(), "{bad}");
        }
        assert_eq!(
            ca_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
