//! A Plan's `channel`: a URL that answers 302 with the latest version as
//! the last path element of its Location (SUC's ResolveChannel). As in
//! SUC, a URL answering 2xx whose last element is a version names that
//! version itself; any other answer — a channel that does not redirect
//! (`…/channels/stable` answering 200 or 404) — is refused
//! ([`Error::refused`]: the Plan is not valid), where SUC would take
//! "stable" for a version. Requests carry `X-SUC-Cluster-ID` and
//! `X-SUC-Latest-Version` when known.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("channel {0}: {1}")]
    Request(String, #[source] reqwest::Error),
    #[error("channel {0}: 302 without a usable Location")]
    NoLocation(String),
    #[error("channel {0} does not redirect to a version: it answered {1}")]
    NotARedirect(String, reqwest::StatusCode),
}

impl Error {
    /// The channel answered, but not as a channel does: the Plan is not
    /// valid (not a passing failure to retry quietly).
    pub fn refused(&self) -> bool {
        matches!(self, Self::NoLocation(_) | Self::NotARedirect(..))
    }
}

/// Whether a path element reads as a release version (`v1.35.8+k3s1`).
fn names_a_version(element: &str) -> bool {
    element
        .strip_prefix('v')
        .unwrap_or(element)
        .starts_with(|c: char| c.is_ascii_digit())
}

/// The last element of a URL's path.
fn last_element(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The version the channel points at now.
pub async fn resolve(url: &str, latest_version: &str, cluster_id: &str) -> Result<String, Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Request(url.into(), e))?;
    let mut request = client.get(url);
    if !cluster_id.is_empty() {
        request = request.header("X-SUC-Cluster-ID", cluster_id);
    }
    if !latest_version.is_empty() {
        request = request.header("X-SUC-Latest-Version", latest_version);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Error::Request(url.into(), e))?;
    let status = response.status();
    if status == reqwest::StatusCode::FOUND {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| Error::NoLocation(url.into()))?;
        let version = last_element(location);
        if version.is_empty() {
            return Err(Error::NoLocation(url.into()));
        }
        return Ok(version);
    }
    if status.is_success() && names_a_version(&last_element(url)) {
        return Ok(last_element(url));
    }
    Err(Error::NotARedirect(url.into(), status))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// Answers every request with `response`; hands back what it was sent.
    async fn server(response: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            let n = stream.read(&mut buf).await.expect("read");
            stream.write_all(response.as_bytes()).await.expect("write");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (format!("http://{address}"), task)
    }

    #[tokio::test]
    async fn a_redirect_names_the_version_and_the_headers_go_along() {
        let (base, request) = server(
            "HTTP/1.1 302 Found\r\nLocation: https://github.com/k3s-io/k3s/releases/tag/v1.35.8+k3s1\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let version = resolve(
            &format!("{base}/v1-release/channels/stable"),
            "v1.35.7+k3s1",
            "c-1",
        )
        .await
        .expect("resolved");
        assert_eq!(version, "v1.35.8+k3s1");
        let sent = request.await.expect("request").to_lowercase();
        assert!(sent.contains("x-suc-cluster-id: c-1"), "{sent}");
        assert!(
            sent.contains("x-suc-latest-version: v1.35.7+k3s1"),
            "{sent}"
        );
    }

    #[tokio::test]
    async fn a_version_url_names_itself_and_a_channel_that_does_not_redirect_is_refused() {
        let (base, _) = server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(
            resolve(&format!("{base}/releases/v1.36.0"), "", "")
                .await
                .expect("ok"),
            "v1.36.0"
        );
        let (base, _) = server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        let error = resolve(&format!("{base}/channels/stable"), "", "")
            .await
            .expect_err("not a version");
        assert!(error.refused());
        assert_eq!(
            error.to_string(),
            format!(
                "channel {base}/channels/stable does not redirect to a version: it answered 200 OK"
            )
        );
        let (base, _) = server("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await;
        let error = resolve(&format!("{base}/v1.36.0"), "", "")
            .await
            .expect_err("404");
        assert!(error.refused(), "{error}");
        let gone = resolve("http://127.0.0.1:1/stable", "", "")
            .await
            .expect_err("nothing listens");
        assert!(!gone.refused(), "unreachable: retried, not refused");
    }
}
