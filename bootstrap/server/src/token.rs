//! The server token, K10 format, at server/token (and node-token).

use k3r_pki::{Pki, Token, ca_hash, generate_password};

use crate::Error;
use crate::layout::Layout;

/// Keeps the existing token; on first start takes the given one (or makes
/// one). A different --token on an existing data dir is refused.
pub fn ensure(layout: &Layout, pki: &Pki, given: Option<&str>) -> Result<Token, Error> {
    let path = layout.server().join("token");
    let ca = std::fs::read(&pki.server_ca).map_err(|e| Error::Io(pki.server_ca.clone(), e))?;
    let hash = ca_hash(&ca);
    let given = given.map(|t| Token::parse(t, "server")).transpose()?;
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = Token::parse(&existing, "server")?;
        if let Some(given) = &given
            && given.password != existing.password
        {
            return Err(Error::Config(format!(
                "--token does not match the token of this data dir ({}); use the existing token",
                path.display()
            )));
        }
        return Ok(existing);
    }
    if let Some(given) = &given
        && !given.ca_hash.is_empty()
        && given.ca_hash != hash
    {
        return Err(Error::Config(
            "--token carries a CA hash that does not match this server's CA".into(),
        ));
    }
    let password = given.map(|t| t.password).unwrap_or_else(generate_password);
    let token = Token {
        ca_hash: hash,
        username: "server".into(),
        password,
    };
    for name in ["token", "node-token"] {
        let file = layout.server().join(name);
        // Atomic and 0600: a crash never leaves a half-written token.
        k3r_pki::write_private(&file, format!("{}\n", token.format()).as_bytes())?;
    }
    Ok(token)
}
