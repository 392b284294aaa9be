//! Where a HelmChart's chart comes from: `chartContent` (a base64 .tgz),
//! `chart` as an http(s) .tgz URL, or `repo` + `chart` + `version` through
//! the repository's index.yaml, or `oci://` registries — with `repoCA`,
//! `repoCAConfigMap`, `authSecret` (basic auth), `dockerRegistrySecret`,
//! `insecureSkipTLSVerify` and `plainHTTP` as helm-controller has them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k3r_crds::helmchart::HelmChartSpec;
use k3r_reconciler::chain;

use crate::Error;
use crate::access::{Access, Credentials};
use crate::oci::{Reference, docker_credentials};
use crate::repo;

fn client(spec: &HelmChartSpec, extra_ca: &[String]) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .danger_accept_invalid_certs(spec.insecure_skip_tls_verify.unwrap_or(false));
    let mut bundles: Vec<(&str, &str)> = Vec::new();
    if let Some(ca) = spec.repo_ca.as_deref().filter(|c| !c.trim().is_empty()) {
        bundles.push(("spec.repoCA", ca));
    }
    bundles.extend(
        extra_ca
            .iter()
            .map(|ca| ("spec.repoCAConfigMap", ca.as_str())),
    );
    for (field, pem) in bundles {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| Error::Other(format!("{field}: {e}")))?;
        // Text without any PEM certificate parses as an empty bundle.
        if certs.is_empty() {
            return Err(Error::Other(format!("{field}: no PEM certificate in it")));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| Error::Other(format!("HTTP client: {e}")))
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    credentials: Option<&Credentials>,
) -> Result<Vec<u8>, Error> {
    let mut request = client.get(url);
    if let Some(c) = credentials {
        request = request.basic_auth(&c.username, Some(&c.password));
    }
    let response = request
        .send()
        .await
        .map_err(|e| Error::Other(format!("GET {url}: {}", chain(&e))))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::Other(format!("GET {url}: {status}")));
    }
    Ok(response
        .bytes()
        .await
        .map_err(|e| Error::Other(format!("GET {url}: {}", chain(&e))))?
        .to_vec())
}

/// The chart archive, and a description of where it came from.
pub async fn fetch(spec: &HelmChartSpec, access: &Access) -> Result<(Vec<u8>, String), Error> {
    let credentials = access.basic.as_ref();
    if let Some(content) = spec
        .chart_content
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        let bytes = STANDARD
            .decode(content.trim())
            .map_err(|e| Error::Other(format!("spec.chartContent is not base64: {e}")))?;
        return Ok((bytes, "spec.chartContent".into()));
    }
    let chart = spec.chart.as_deref().unwrap_or_default();
    if chart.is_empty() {
        return Err(Error::Other(
            "spec.chart or spec.chartContent is required".into(),
        ));
    }
    let http = client(spec, &access.extra_ca)?;
    if chart.starts_with("oci://") {
        let reference = Reference::parse(chart).map_err(|e| Error::Other(e.to_string()))?;
        // The registry's own entry in dockerRegistrySecret first.
        let registry_credentials = access
            .registry_config
            .as_deref()
            .and_then(|config| docker_credentials(config, &reference.registry))
            .map(|(username, password)| Credentials { username, password });
        return crate::oci_pull::pull(
            &http,
            &reference,
            spec.version.as_deref().unwrap_or_default(),
            spec.plain_http.unwrap_or(false),
            registry_credentials.as_ref().or(credentials),
        )
        .await;
    }
    if chart.starts_with("http://") || chart.starts_with("https://") {
        let bytes = get(&http, chart, credentials).await?;
        return Ok((bytes, chart.to_string()));
    }
    let Some(repo_url) = spec.repo.as_deref().filter(|r| !r.is_empty()) else {
        return Err(Error::Other(format!(
            "spec.chart {chart:?} needs spec.repo (or use a .tgz URL or chartContent)"
        )));
    };
    let index = get(&http, &repo::index_url(repo_url), credentials).await?;
    let index = String::from_utf8_lossy(&index);
    let version = spec.version.as_deref().unwrap_or_default();
    let selected = repo::select(&index, chart, version).map_err(|e| Error::Other(e.to_string()))?;
    let Some(url) = selected.urls.first() else {
        return Err(Error::Other(format!(
            "chart {chart} {} has no download URL in the index",
            selected.version
        )));
    };
    let url = repo::resolve_url(repo_url, url);
    // Like Helm, credentials go to another host only with passCredentials.
    let same_host = reqwest::Url::parse(&url).ok().map(|u| u.origin())
        == reqwest::Url::parse(repo_url).ok().map(|u| u.origin());
    let chart_credentials =
        credentials.filter(|_| same_host || spec.auth_pass_credentials == Some(true));
    let bytes = get(&http, &url, chart_credentials).await?;
    Ok((
        bytes,
        format!("{chart} {} from {repo_url}", selected.version),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS registry whose CA the client must be told about.
    #[tokio::test(flavor = "multi_thread")]
    async fn registry_ca_trust() {
        let registry = k3r_helm_oracle::Registry::start_tls("127.0.0.1").expect("registry");
        let chart_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/e2e/testdata/charts/greeter");
        registry
            .push(&chart_dir, "0.1.0", "charts")
            .expect("helm push");
        let ca = registry.ca_pem.clone().expect("a CA");
        let base = HelmChartSpec {
            chart: Some(format!("oci://{}/charts/greeter", registry.host)),
            version: Some("0.1.0".into()),
            ..HelmChartSpec::default()
        };
        let access = || Access {
            basic: Some(Credentials {
                username: registry.username.clone(),
                password: registry.password.clone(),
            }),
            ..Access::default()
        };
        let untrusted = fetch(&base, &access()).await.expect_err("unknown CA");
        assert!(
            untrusted.to_string().contains("UnknownIssuer"),
            "{untrusted}"
        );
        let with_repo_ca = HelmChartSpec {
            repo_ca: Some(ca.clone()),
            ..base.clone()
        };
        let (bytes, _) = fetch(&with_repo_ca, &access()).await.expect("spec.repoCA");
        assert!(!bytes.is_empty());
        let from_config_map = Access {
            extra_ca: vec![ca],
            ..access()
        };
        fetch(&base, &from_config_map)
            .await
            .expect("spec.repoCAConfigMap");
        let insecure = HelmChartSpec {
            insecure_skip_tls_verify: Some(true),
            ..base.clone()
        };
        fetch(&insecure, &access())
            .await
            .expect("spec.insecureSkipTLSVerify");
        let bad_ca = HelmChartSpec {
            repo_ca: Some("not a certificate".into()),
            ..base
        };
        let refused = fetch(&bad_ca, &access()).await.expect_err("bad repoCA");
        assert!(refused.to_string().contains("spec.repoCA"), "{refused}");
    }
}
