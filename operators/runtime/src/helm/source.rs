//! Where a HelmChart's chart comes from: `chartContent` (a base64 .tgz),
//! `chart` as an http(s) .tgz URL, or `repo` + `chart` + `version` through
//! the repository's index.yaml — with `repoCA`, `authSecret` (basic auth),
//! `insecureSkipTLSVerify` and `plainHTTP` as helm-controller has them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k3r_crds::helmchart::HelmChartSpec;
use k3r_helm_controller::repo;

use crate::Error;

/// Basic-auth credentials from `authSecret`.
pub struct Credentials {
    pub username: String,
    pub password: String,
}

fn client(spec: &HelmChartSpec) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .danger_accept_invalid_certs(spec.insecure_skip_tls_verify.unwrap_or(false));
    if let Some(ca) = spec.repo_ca.as_deref().filter(|c| !c.trim().is_empty()) {
        let cert = reqwest::Certificate::from_pem(ca.as_bytes())
            .map_err(|e| Error::Other(format!("spec.repoCA: {e}")))?;
        builder = builder.add_root_certificate(cert);
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
        .map_err(|e| Error::Other(format!("GET {url}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::Other(format!("GET {url}: {status}")));
    }
    Ok(response
        .bytes()
        .await
        .map_err(|e| Error::Other(format!("GET {url}: {e}")))?
        .to_vec())
}

/// The chart archive, and a description of where it came from.
pub async fn fetch(
    spec: &HelmChartSpec,
    credentials: Option<&Credentials>,
) -> Result<(Vec<u8>, String), Error> {
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
    if chart.starts_with("oci://") {
        return Err(Error::Other(
            "oci:// charts are not supported yet; use repo, a .tgz URL or chartContent".into(),
        ));
    }
    let http = client(spec)?;
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
    let bytes = get(&http, &url, credentials).await?;
    Ok((
        bytes,
        format!("{chart} {} from {repo_url}", selected.version),
    ))
}
