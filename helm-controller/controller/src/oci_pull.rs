//! Pulling a chart from an OCI registry as `helm pull oci://…` does:
//! version to tag (listing tags for a constraint), manifest, chart layer,
//! digest checked. Registries asking for credentials get them by the
//! challenge they send: Basic directly, Bearer through their token service.

use crate::oci::{self, Challenge, Reference};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use sha2::{Digest, Sha256};

use k3r_reconciler::chain;

use crate::Error;
use crate::access::Credentials;

struct Session<'a> {
    http: &'a reqwest::Client,
    credentials: Option<&'a Credentials>,
    /// The Authorization header that the registry accepted last.
    authorization: Option<String>,
}

impl Session<'_> {
    async fn get(&mut self, url: &str, accept: Option<&str>) -> Result<Vec<u8>, Error> {
        let mut response = self.send(url, accept).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|h| h.to_str().ok())
                .and_then(Challenge::parse)
                .ok_or_else(|| {
                    Error::Other(format!("GET {url}: 401 without a usable auth challenge"))
                })?;
            self.authorization = Some(self.authorize(url, &challenge).await?);
            response = self.send(url, accept).await?;
        }
        let status = response.status();
        if !status.is_success() {
            let hint = if status == StatusCode::UNAUTHORIZED {
                " (credentials rejected)"
            } else {
                ""
            };
            return Err(Error::Other(format!("GET {url}: {status}{hint}")));
        }
        Ok(response
            .bytes()
            .await
            .map_err(|e| Error::Other(format!("GET {url}: {}", chain(&e))))?
            .to_vec())
    }

    async fn send(&self, url: &str, accept: Option<&str>) -> Result<reqwest::Response, Error> {
        let mut request = self.http.get(url);
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        request
            .send()
            .await
            .map_err(|e| Error::Other(format!("GET {url}: {}", chain(&e))))
    }

    /// The Authorization header answering `challenge`.
    async fn authorize(&self, url: &str, challenge: &Challenge) -> Result<String, Error> {
        let needs_credentials = || {
            Error::Other(format!(
                "GET {url}: the registry requires credentials: set spec.dockerRegistrySecret or spec.authSecret"
            ))
        };
        match challenge {
            Challenge::Basic => {
                let c = self.credentials.ok_or_else(needs_credentials)?;
                Ok(basic(c))
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut request = self.http.get(realm);
                let mut query = Vec::new();
                if let Some(service) = service {
                    query.push(("service", service.as_str()));
                }
                if let Some(scope) = scope {
                    query.push(("scope", scope.as_str()));
                }
                request = request.query(&query);
                if let Some(c) = self.credentials {
                    request = request.basic_auth(&c.username, Some(&c.password));
                }
                let response = request.send().await.map_err(|e| {
                    Error::Other(format!("registry token from {realm}: {}", chain(&e)))
                })?;
                if response.status() == StatusCode::UNAUTHORIZED && self.credentials.is_none() {
                    return Err(needs_credentials());
                }
                if !response.status().is_success() {
                    return Err(Error::Other(format!(
                        "registry token from {realm}: {}",
                        response.status()
                    )));
                }
                let body = response.bytes().await.map_err(|e| {
                    Error::Other(format!("registry token from {realm}: {}", chain(&e)))
                })?;
                let body: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                    Error::Other(format!("registry token from {realm}: {}", chain(&e)))
                })?;
                let token = body["token"]
                    .as_str()
                    .or_else(|| body["access_token"].as_str())
                    .ok_or_else(|| {
                        Error::Other(format!(
                            "registry token from {realm}: no token in the answer"
                        ))
                    })?;
                Ok(format!("Bearer {token}"))
            }
        }
    }
}

fn basic(c: &Credentials) -> String {
    use base64::Engine;
    let pair = format!("{}:{}", c.username, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The chart archive and where it came from.
pub async fn pull(
    http: &reqwest::Client,
    reference: &Reference,
    wanted: &str,
    plain_http: bool,
    credentials: Option<&Credentials>,
) -> Result<(Vec<u8>, String), Error> {
    let mut session = Session {
        http,
        credentials,
        authorization: None,
    };
    let base = reference.api_base(plain_http);
    let tag = match (&reference.tag, wanted.trim()) {
        (Some(tag), _) => tag.clone(),
        (None, wanted) if oci::is_exact(wanted) => oci::tag_for(wanted),
        (None, wanted) => {
            let listing = session.get(&format!("{base}/tags/list"), None).await?;
            let json: serde_json::Value = serde_json::from_slice(&listing)
                .map_err(|e| Error::Other(format!("{reference} tags: {e}")))?;
            let tags: Vec<String> = json["tags"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            oci::select_tag(reference, &tags, wanted).map_err(|e| Error::Other(e.to_string()))?
        }
    };
    let manifest = session
        .get(
            &format!("{base}/manifests/{tag}"),
            Some(oci::MANIFEST_TYPES),
        )
        .await?;
    let digest =
        oci::chart_layer(&manifest).map_err(|e| Error::Other(format!("{reference}:{tag}: {e}")))?;
    let blob = session.get(&format!("{base}/blobs/{digest}"), None).await?;
    let actual = format!("sha256:{:x}", Sha256::digest(&blob));
    if actual != digest {
        return Err(Error::Other(format!(
            "{reference}:{tag}: chart layer digest {actual} does not match {digest}"
        )));
    }
    Ok((blob, format!("{reference}:{tag}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn chart_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/testdata/charts/greeter")
    }

    /// Against a real registry with htpasswd auth, charts pushed by Helm.
    #[tokio::test(flavor = "multi_thread")]
    async fn pulls_what_helm_pushed() {
        let registry = k3r_helm_oracle::Registry::start("127.0.0.1").expect("registry");
        for version in ["0.1.0", "0.2.0", "0.3.0-rc.1", "1.0.0+build.7"] {
            registry
                .push(&chart_dir(), version, "charts")
                .expect("helm push");
        }
        let http = reqwest::Client::new();
        let reference =
            Reference::parse(&format!("oci://{}/charts/greeter", registry.host)).expect("ref");
        let credentials = Credentials {
            username: registry.username.clone(),
            password: registry.password.clone(),
        };
        let pulled = |wanted: &'static str| {
            let (http, reference, credentials) = (&http, &reference, &credentials);
            async move { pull(http, reference, wanted, true, Some(credentials)).await }
        };
        for (wanted, tag) in [
            ("~0.1", "0.1.0"),
            ("0.2.0", "0.2.0"),
            ("<1", "0.2.0"),
            ("", "1.0.0_build.7"),
            ("1.0.0+build.7", "1.0.0_build.7"),
        ] {
            let (bytes, source) = pulled(wanted).await.expect(wanted);
            assert!(source.ends_with(&format!(":{tag}")), "{wanted}: {source}");
            let chart = k3r_helm_render::chart::load_archive(&bytes).expect("a chart");
            assert_eq!(chart.name(), "greeter");
            assert_eq!(chart.version(), tag.replace('_', "+"), "{wanted}");
        }
        let missing = pulled(">=2").await.expect_err("no such version");
        assert!(missing.to_string().contains("no tag"), "{missing}");
        let anonymous = pull(&http, &reference, "0.1.0", true, None)
            .await
            .expect_err("credentials needed");
        assert!(
            anonymous.to_string().contains("requires credentials"),
            "{anonymous}"
        );
        let wrong = Credentials {
            username: "k3r".into(),
            password: "wrong".into(),
        };
        let rejected = pull(&http, &reference, "0.1.0", true, Some(&wrong))
            .await
            .expect_err("bad password");
        assert!(
            rejected.to_string().contains("credentials rejected"),
            "{rejected}"
        );
    }
}
