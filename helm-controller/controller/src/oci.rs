//! Charts in OCI registries, as Helm stores them: references
//! (`oci://host/path/chart[:tag]`), tags for versions (`+` becomes `_`),
//! the chart layer of a manifest, registry auth challenges and
//! credentials from a `kubernetes.io/dockerconfigjson` Secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::repo::{RepoError, choose, sort_descending};

/// Media type of the chart archive layer Helm pushes.
pub const CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// What the manifest request accepts.
pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OciError {
    #[error("invalid OCI reference {0:?}: want oci://HOST/PATH/CHART")]
    Reference(String),
    #[error("invalid OCI manifest: {0}")]
    Manifest(String),
    #[error("the OCI manifest has no Helm chart layer ({CHART_LAYER})")]
    NoChartLayer,
    #[error("no tag of {reference} matches version {wanted:?}")]
    NoVersion { reference: String, wanted: String },
    #[error(transparent)]
    Version(#[from] RepoError),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    /// host[:port]
    pub registry: String,
    /// The repository path inside the registry, chart name last.
    pub repository: String,
    pub tag: Option<String>,
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference, OciError> {
        let invalid = || OciError::Reference(text.to_string());
        let rest = text.strip_prefix("oci://").ok_or_else(invalid)?;
        let (registry, path) = rest.split_once('/').ok_or_else(invalid)?;
        // A colon after the last slash is a tag; one before it is a port.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string())),
            _ => (path, None),
        };
        if registry.is_empty() || repository.is_empty() || repository.ends_with('/') {
            return Err(invalid());
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
        })
    }

    /// The registry API base, `https://host/v2/path/chart` (or http).
    pub fn api_base(&self, plain_http: bool) -> String {
        let scheme = if plain_http { "http" } else { "https" };
        format!("{scheme}://{}/v2/{}", self.registry, self.repository)
    }

    /// Chart name: the last path element.
    pub fn chart(&self) -> &str {
        self.repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)
    }
}

/// OCI tags cannot hold `+`; Helm pushes `1.0.0+build` as `1.0.0_build`.
pub fn tag_for(version: &str) -> String {
    version.replace('+', "_")
}

/// The tag to pull: `wanted` itself when it names a pushed version,
/// otherwise the highest tag satisfying it as a constraint (empty: the
/// highest stable version).
pub fn select_tag(
    reference: &Reference,
    tags: &[String],
    wanted: &str,
) -> Result<String, OciError> {
    let mut versions: Vec<String> = tags.iter().map(|t| t.replace('_', "+")).collect();
    sort_descending(&mut versions, String::as_str);
    let names: Vec<&str> = versions.iter().map(String::as_str).collect();
    match choose(&names, wanted)? {
        Some(i) => Ok(tag_for(&versions[i])),
        None => Err(OciError::NoVersion {
            reference: reference.to_string(),
            wanted: wanted.to_string(),
        }),
    }
}

/// Whether `wanted` names one exact version (no tag listing needed).
pub fn is_exact(wanted: &str) -> bool {
    k3r_helm_render::semver::Version::parse(wanted.trim()).is_ok()
        && !wanted.trim().starts_with(['=', '<', '>', '~', '^', 'v'])
}

/// The digest of the chart archive layer in an image manifest.
pub fn chart_layer(manifest: &[u8]) -> Result<String, OciError> {
    let json: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| OciError::Manifest(e.to_string()))?;
    let layers = json["layers"]
        .as_array()
        .ok_or_else(|| OciError::Manifest("no layers".into()))?;
    layers
        .iter()
        .find(|l| l["mediaType"] == CHART_LAYER)
        .and_then(|l| l["digest"].as_str())
        .map(String::from)
        .ok_or(OciError::NoChartLayer)
}

/// A registry's `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    pub fn parse(header: &str) -> Option<Challenge> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut realm = None;
        let mut service = None;
        let mut scope = None;
        for (key, value) in auth_params(params) {
            match key.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value),
                "service" => service = Some(value),
                "scope" => scope = Some(value),
                _ => {}
            }
        }
        Some(Challenge::Bearer {
            realm: realm?,
            service,
            scope,
        })
    }
}

/// `key="value", key=value` pairs; quoted values may hold commas.
fn auth_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.push((key, value.to_string()));
        rest = next.trim_start().trim_start_matches(',');
    }
    out
}

/// Username and password for `registry` in a `.dockerconfigjson`, matched
/// as Docker matches them (the host, with or without a scheme or path).
pub fn docker_credentials(config: &[u8], registry: &str) -> Option<(String, String)> {
    let json: serde_json::Value = serde_json::from_slice(config).ok()?;
    let auths = json["auths"].as_object()?;
    let host_of = |key: &str| {
        let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
        without_scheme
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let entry = auths.iter().find(|(k, _)| host_of(k) == registry)?.1;
    if let (Some(user), Some(pass)) = (entry["username"].as_str(), entry["password"].as_str()) {
        return Some((user.to_string(), pass.to_string()));
    }
    let decoded = STANDARD.decode(entry["auth"].as_str()?).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_like_helm_writes_them() {
        let r = Reference::parse("oci://127.0.0.1:5000/charts/greeter").expect("ref");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "charts/greeter");
        assert_eq!(r.tag, None);
        assert_eq!(r.chart(), "greeter");
        assert_eq!(r.api_base(true), "http://127.0.0.1:5000/v2/charts/greeter");
        let tagged = Reference::parse("oci://ghcr.io/org/web:1.2.3").expect("tagged");
        assert_eq!(tagged.tag.as_deref(), Some("1.2.3"));
        assert_eq!(tagged.to_string(), "oci://ghcr.io/org/web");
        for bad in ["https://x/y", "oci://host", "oci:///chart", "oci://host/"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_map_to_versions() {
        let r = Reference::parse("oci://r/c").expect("ref");
        let tags: Vec<String> = ["0.1.0", "1.0.0_build.1", "1.1.0-rc.1", "latest", "0.9.0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(select_tag(&r, &tags, "").expect("stable"), "1.0.0_build.1");
        assert_eq!(select_tag(&r, &tags, "~0.1").expect("tilde"), "0.1.0");
        assert_eq!(
            select_tag(&r, &tags, "1.1.0-rc.1").expect("exact"),
            "1.1.0-rc.1"
        );
        assert!(matches!(
            select_tag(&r, &tags, ">=2"),
            Err(OciError::NoVersion { .. })
        ));
        assert_eq!(tag_for("1.0.0+abc"), "1.0.0_abc");
        assert!(is_exact("1.2.3"));
        assert!(!is_exact("^1.2.3"));
        assert!(!is_exact("1.x"));
    }

    #[test]
    fn chart_layer_is_found_by_media_type() {
        let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"sha256:c"},
            "layers":[{"mediaType":"application/vnd.cncf.helm.chart.provenance.v1.prov","digest":"sha256:p"},
                      {"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"sha256:abc"}]}"#;
        assert_eq!(chart_layer(manifest).expect("layer"), "sha256:abc");
        assert_eq!(
            chart_layer(br#"{"layers":[]}"#),
            Err(OciError::NoChartLayer)
        );
        assert!(matches!(chart_layer(b"{"), Err(OciError::Manifest(_))));
    }

    #[test]
    fn challenges_parse() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(Challenge::parse(r#"Bearer service="x""#), None);
    }

    #[test]
    fn docker_config_credentials() {
        let auth = STANDARD.encode("ann:s3cret:x");
        let config = format!(
            r#"{{"auths":{{"https://reg.example:5000/v1/":{{"auth":"{auth}"}},"other":{{"username":"u","password":"p"}}}}}}"#
        );
        assert_eq!(
            docker_credentials(config.as_bytes(), "reg.example:5000"),
            Some(("ann".into(), "s3cret:x".into()))
        );
        assert_eq!(
            docker_credentials(config.as_bytes(), "other"),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(docker_credentials(config.as_bytes(), "missing"), None);
    }
}
