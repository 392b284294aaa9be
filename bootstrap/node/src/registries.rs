//! k3s's `registries.yaml` (mirrors with their endpoints, per-registry
//! auth and TLS) as containerd 2 takes it: one `hosts.toml` per registry
//! under the node's `certs.d` (endpoints, TLS), and the credentials in the
//! CRI plugin's `registry.configs` (hosts.toml has no place for them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;

/// The file's contents, as k3s reads them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    #[serde(default)]
    pub configs: BTreeMap<String, RegistryConfig>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    #[serde(default)]
    pub endpoint: Vec<String>,
    /// k3s rewrites repository names with these; upstream containerd
    /// cannot, so a mirror with rewrites is refused rather than ignored.
    #[serde(default)]
    pub rewrite: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub auth: Option<Auth>,
    pub tls: Option<Tls>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub auth: Option<String>,
    pub identity_token: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub insecure_skip_verify: Option<bool>,
}

/// How the node pulls: the registries file, and whether a mirrored
/// registry's own endpoint is tried after its mirrors (k3s's default) or
/// not (`--disable-default-registry-endpoint`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    pub registries: Registries,
    pub disable_default_endpoint: bool,
}

impl Registries {
    /// `path`'s registries; none when the file does not exist (the
    /// default path is optional, as in k3s).
    pub fn load(path: &Path) -> Result<Registries, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::Io(path.to_path_buf(), e)),
        };
        let bad = |why: String| Error::Registries(format!("{}: {why}", path.display()));
        let registries: Registries = if text.trim().is_empty() {
            Self::default()
        } else {
            serde_saphyr::from_str(&text).map_err(|e| bad(e.to_string()))?
        };
        registries.check().map_err(bad)?;
        Ok(registries)
    }

    fn check(&self) -> Result<(), String> {
        for (name, mirror) in &self.mirrors {
            if !mirror.rewrite.is_empty() {
                return Err(format!(
                    "mirror {name}: rewrite is not supported (containerd's hosts.toml has no \
                     rewrites); name the mirror's repositories as the images do"
                ));
            }
            for endpoint in &mirror.endpoint {
                Endpoint::parse(endpoint).map_err(|e| format!("mirror {name}: {e}"))?;
            }
        }
        for (name, config) in &self.configs {
            if let Some(tls) = &config.tls
                && tls.cert_file.is_some() != tls.key_file.is_some()
            {
                return Err(format!(
                    "configs {name}: tls cert_file and key_file go together"
                ));
            }
        }
        Ok(())
    }
}

/// A mirror endpoint URL, split as hosts.toml needs it.
#[derive(Debug, PartialEq, Eq)]
struct Endpoint {
    /// `scheme://host[:port]`, or the whole URL when it has a path.
    url: String,
    /// `host[:port]`: the key of its `configs` entry.
    host: String,
    /// The URL names the API path itself (no `/v2` appended).
    override_path: bool,
}

impl Endpoint {
    fn parse(endpoint: &str) -> Result<Endpoint, String> {
        let (scheme, rest) = endpoint
            .split_once("://")
            .ok_or_else(|| format!("endpoint {endpoint:?} is not an http:// or https:// URL"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "endpoint {endpoint:?} is not an http:// or https:// URL"
            ));
        }
        let (host, path) = match rest.find('/') {
            Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if host.is_empty() {
            return Err(format!("endpoint {endpoint:?} names no host"));
        }
        let override_path = !path.is_empty() && path != "/v2";
        Ok(Endpoint {
            url: if override_path {
                format!("{scheme}://{host}{path}")
            } else {
                format!("{scheme}://{host}")
            },
            host: host.to_string(),
            override_path,
        })
    }
}

/// The registry's own endpoint (hosts.toml's `server`).
fn default_server(registry: &str) -> String {
    match registry {
        "docker.io" => "https://registry-1.docker.io".into(),
        _ => format!("https://{registry}"),
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// hosts.toml lines for a host's TLS settings from its `configs` entry.
fn tls_lines(config: Option<&RegistryConfig>, indent: &str) -> String {
    let Some(tls) = config.and_then(|c| c.tls.as_ref()) else {
        return String::new();
    };
    let mut out = String::new();
    if let Some(ca) = &tls.ca_file {
        out += &format!("{indent}ca = {}\n", quoted(&ca.display().to_string()));
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        out += &format!(
            "{indent}client = [[{}, {}]]\n",
            quoted(&cert.display().to_string()),
            quoted(&key.display().to_string())
        );
    }
    if tls.insecure_skip_verify == Some(true) {
        out += &format!("{indent}skip_verify = true\n");
    }
    out
}

/// The `hosts.toml` for `registry`.
pub fn hosts_toml(settings: &RegistrySettings, registry: &str) -> String {
    let registries = &settings.registries;
    let endpoints: Vec<Endpoint> = registries
        .mirrors
        .get(registry)
        .map(|m| {
            m.endpoint
                .iter()
                .filter_map(|e| Endpoint::parse(e).ok())
                .collect()
        })
        .unwrap_or_default();
    let mut out = String::from("# Written by k3r from registries.yaml; rewritten at each start.\n");
    // `*` has no endpoint of its own; a mirrored registry's own one goes
    // last, unless disabled.
    let own_endpoint =
        registry != "*" && (endpoints.is_empty() || !settings.disable_default_endpoint);
    if own_endpoint {
        out += &format!("server = {}\n", quoted(&default_server(registry)));
        out += &tls_lines(registries.configs.get(registry), "");
    }
    for endpoint in &endpoints {
        out += &format!("\n[host.{}]\n", quoted(&endpoint.url));
        out += "  capabilities = [\"pull\", \"resolve\"]\n";
        if endpoint.override_path {
            out += "  override_path = true\n";
        }
        out += &tls_lines(registries.configs.get(&endpoint.host), "  ");
    }
    out
}

/// The CRI plugin's credentials section (config v3) for every `configs`
/// entry with auth.
pub fn auth_config(settings: &RegistrySettings) -> String {
    let mut out = String::new();
    for (host, config) in &settings.registries.configs {
        let Some(auth) = &config.auth else { continue };
        out += &format!(
            "\n[plugins.'io.containerd.cri.v1.images'.registry.configs.{}.auth]\n",
            quoted(host)
        );
        for (key, value) in [
            ("username", &auth.username),
            ("password", &auth.password),
            ("auth", &auth.auth),
            ("identitytoken", &auth.identity_token),
        ] {
            if let Some(value) = value {
                out += &format!("  {key} = {}\n", quoted(value));
            }
        }
    }
    out
}

/// Writes `certs.d/<registry>/hosts.toml` for every registry named in
/// the file (`*` as containerd's `_default`), after removing what an
/// earlier start wrote: the file is the whole truth.
pub fn write_hosts(settings: &RegistrySettings, dir: &Path) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| Error::Io(path, e)
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    let registries = &settings.registries;
    let names: std::collections::BTreeSet<&String> = registries
        .mirrors
        .keys()
        .chain(
            registries
                .configs
                .keys()
                .filter(|k| !is_endpoint_host(registries, k)),
        )
        .collect();
    for name in names {
        let host_dir = dir.join(if name == "*" { "_default" } else { name });
        std::fs::create_dir_all(&host_dir).map_err(io(&host_dir))?;
        let file = host_dir.join("hosts.toml");
        std::fs::write(&file, hosts_toml(settings, name)).map_err(io(&file))?;
    }
    Ok(())
}

/// Whether `host` is only a mirror endpoint's host (its `configs` entry
/// then applies inside that mirror's hosts.toml, not as a registry).
fn is_endpoint_host(registries: &Registries, host: &str) -> bool {
    !registries.mirrors.contains_key(host)
        && registries.mirrors.values().any(|m| {
            m.endpoint
                .iter()
                .filter_map(|e| Endpoint::parse(e).ok())
                .any(|e| e.host == host)
        })
}

#[cfg(test)]
mod tests;
