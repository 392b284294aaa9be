//! `k3r token create|list|delete`: kubeadm-style bootstrap tokens
//! (`<id>.<secret>`, Secrets `bootstrap-token-<id>` in kube-system) that
//! agents may join with instead of the cluster token, as `k3s token`.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use rand::Rng;

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    /// Kubeconfig of the cluster (default: $KUBECONFIG, else /etc/k3r/k3r.yaml)
    #[arg(long, global = true)]
    kubeconfig: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a bootstrap token and print it in full (K10<CA hash>::<id>.<secret>)
    Create {
        /// Lifetime (0 = never expires)
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// A note shown by `list`
        #[arg(long, default_value = "")]
        description: String,
        /// The token itself (<6 [a-z0-9]>.<16 [a-z0-9]>); generated if absent
        #[arg(value_name = "TOKEN")]
        token: Option<String>,
    },
    /// List bootstrap tokens
    List,
    /// Delete bootstrap tokens by id or full token
    Delete {
        #[arg(required = true)]
        tokens: Vec<String>,
    },
}

const NAMESPACE: &str = "kube-system";
const GROUP: &str = "system:bootstrappers:k3r:default-node-token";
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The id of a token given as `<id>`, `<id>.<secret>` or a full K10 token.
fn token_id(text: &str) -> &str {
    let creds = text.rsplit("::").next().unwrap_or(text);
    creds.split('.').next().unwrap_or(creds)
}

fn valid(token: &str) -> bool {
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| ALPHABET.contains(&b));
    matches!(token.split_once('.'), Some((id, secret)) if ok(id, 6) && ok(secret, 16))
}

/// The Secret kube-apiserver's bootstrap authenticator also reads.
fn secret(id: &str, secret: &str, expiration: Option<SystemTime>, description: &str) -> Secret {
    let mut data = serde_json::json!({
        "token-id": id,
        "token-secret": secret,
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-signing": "true",
        "auth-extra-groups": GROUP,
    });
    if let Some(at) = expiration {
        data["expiration"] = humantime::format_rfc3339_seconds(at).to_string().into();
    }
    if !description.is_empty() {
        data["description"] = description.into();
    }
    let object = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": NAMESPACE},
        "stringData": data,
    });
    // The JSON above is a valid Secret by construction.
    serde_json::from_value(object).unwrap_or_default()
}

async fn client(kubeconfig: Option<std::path::PathBuf>) -> anyhow::Result<(kube::Client, String)> {
    let path = kubeconfig
        .or_else(|| std::env::var_os("KUBECONFIG").map(Into::into))
        .unwrap_or_else(|| "/etc/k3r/k3r.yaml".into());
    let config = kube::config::Kubeconfig::read_from(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    let ca = config
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .unwrap_or_default();
    let ca_pem = STANDARD.decode(ca.trim()).unwrap_or_default();
    let client = k3r_kube_client::from_kubeconfig(&path).await?;
    Ok((client, k3r_pki::ca_hash(&ca_pem)))
}

pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async move {
        let (client, ca_hash) = client(args.kubeconfig).await?;
        let secrets: Api<Secret> = Api::namespaced(client, NAMESPACE);
        match args.command {
            TokenCommand::Create {
                ttl,
                description,
                token,
            } => {
                let token = token.unwrap_or_else(|| format!("{}.{}", random(6), random(16)));
                if !valid(&token) {
                    anyhow::bail!("invalid token {token:?}: want <6 of [a-z0-9]>.<16 of [a-z0-9]>");
                }
                let (id, secret_part) = token.split_once('.').unwrap_or_default();
                let expiration = (!ttl.is_zero()).then(|| SystemTime::now() + ttl);
                secrets
                    .create(
                        &PostParams::default(),
                        &secret(id, secret_part, expiration, &description),
                    )
                    .await
                    .with_context(|| format!("creating bootstrap token {id}"))?;
                println!("K10{ca_hash}::{token}");
            }
            TokenCommand::List => {
                let list = secrets
                    .list(&ListParams::default().fields("type=bootstrap.kubernetes.io/token"))
                    .await
                    .context("listing bootstrap tokens")?;
                println!(
                    "{:<8} {:<22} {:<30} DESCRIPTION",
                    "TOKEN", "EXPIRES", "USAGES"
                );
                for s in list.items {
                    let data = s.data.unwrap_or_default();
                    let field = |k: &str| {
                        data.get(k)
                            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
                            .unwrap_or_default()
                    };
                    let usages: Vec<&str> = ["authentication", "signing"]
                        .into_iter()
                        .filter(|u| field(&format!("usage-bootstrap-{u}")) == "true")
                        .collect();
                    let expires = field("expiration");
                    println!(
                        "{:<8} {:<22} {:<30} {}",
                        field("token-id"),
                        if expires.is_empty() {
                            "<forever>".into()
                        } else {
                            expires
                        },
                        usages.join(","),
                        field("description")
                    );
                }
            }
            TokenCommand::Delete { tokens } => {
                for token in tokens {
                    let id = token_id(&token);
                    match secrets
                        .delete(&format!("bootstrap-token-{id}"), &DeleteParams::default())
                        .await
                    {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 404 => {
                            anyhow::bail!("no bootstrap token {id} (expired tokens are removed by the token cleaner)")
                        }
                        Err(e) => {
                            return Err(e).with_context(|| format!("deleting bootstrap token {id}"));
                        }
                    }
                    println!("bootstrap token {id} deleted");
                }
            }
        }
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shapes() {
        let generated = format!("{}.{}", random(6), random(16));
        assert!(valid(&generated), "{generated}");
        assert!(!valid("abc.def"));
        assert!(!valid("ABCDEF.0123456789abcdef"));
        assert_eq!(token_id("abcdef"), "abcdef");
        assert_eq!(token_id("abcdef.0123456789abcdef"), "abcdef");
        assert_eq!(token_id("K10aa::abcdef.0123456789abcdef"), "abcdef");
    }

    #[test]
    fn secret_has_the_bootstrap_fields() {
        let s = secret("abcdef", "0123456789abcdef", None, "ci");
        let data = s.string_data.expect("data");
        assert_eq!(data["token-id"], "abcdef");
        assert_eq!(data["usage-bootstrap-authentication"], "true");
        assert!(!data.contains_key("expiration"));
        assert_eq!(s.type_.as_deref(), Some("bootstrap.kubernetes.io/token"));
    }
}
