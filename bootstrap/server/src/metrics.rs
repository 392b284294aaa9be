//! `--supervisor-metrics`: GET /metrics on the supervisor port answers
//! kube-apiserver's metrics followed by k3r's own (the datastore's), as
//! k3s serves its process's metrics there. The request goes to
//! kube-apiserver as any other, so it authenticates and authorizes the
//! scrape (`get` on the non-resource URL /metrics); k3r's part is added
//! only to a 200.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT, ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue,
};
use hyper::{Method, Request, Response, StatusCode};

/// Renders k3r's own metrics in the Prometheus text format.
pub type OwnMetrics = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// The classic text format: both parts can be joined in it, and every
/// Prometheus scraper reads it.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn is_scrape<B>(req: &Request<B>) -> bool {
    req.method() == Method::GET && req.uri().path() == "/metrics"
}

/// kube-apiserver must answer in plain, uncompressed text for k3r's part
/// to be appended.
pub fn ask_for_text(headers: &mut HeaderMap) {
    headers.remove(ACCEPT_ENCODING);
    headers.insert(ACCEPT, HeaderValue::from_static(TEXT_FORMAT));
}

/// Appends k3r's metrics to kube-apiserver's answer when it is a 200.
pub async fn append_own(
    response: Response<Incoming>,
    own: &OwnMetrics,
) -> Result<Response<Bytes>, Response<Incoming>> {
    if response.status() != StatusCode::OK {
        return Err(response);
    }
    let (mut parts, body) = response.into_parts();
    let upstream = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            tracing::debug!(error = %e, "reading kube-apiserver's metrics failed");
            let mut failed = Response::new(Bytes::from_static(
                b"reading kube-apiserver's metrics failed\n",
            ));
            *failed.status_mut() = StatusCode::BAD_GATEWAY;
            return Ok(failed);
        }
    };
    let joined = join(&upstream, own().as_deref().unwrap_or_default());
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(hyper::header::CONTENT_ENCODING);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    Ok(Response::from_parts(parts, joined))
}

/// kube-apiserver's text, then k3r's without its OpenMetrics `# EOF`
/// terminator (which would end the exposition for an OpenMetrics reader).
fn join(upstream: &[u8], own: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(upstream.len() + own.len() + 1);
    out.extend_from_slice(upstream);
    if !upstream.is_empty() && !upstream.ends_with(b"\n") {
        out.extend_from_slice(b"\n");
    }
    for line in own.lines().filter(|line| *line != "# EOF") {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_metrics_follow_upstreams_without_the_openmetrics_terminator() {
        let joined = join(
            b"# TYPE apiserver_x counter\napiserver_x 1",
            "# HELP k3r_datastore_y y.\n# TYPE k3r_datastore_y gauge\nk3r_datastore_y 2\n# EOF\n",
        );
        assert_eq!(
            std::str::from_utf8(&joined).expect("utf-8"),
            "# TYPE apiserver_x counter\napiserver_x 1\n\
             # HELP k3r_datastore_y y.\n# TYPE k3r_datastore_y gauge\nk3r_datastore_y 2\n"
        );
    }

    #[test]
    fn only_a_get_of_metrics_is_a_scrape() {
        let get = |path: &str| Request::get(path).body(()).expect("request");
        assert!(is_scrape(&get("/metrics")));
        assert!(is_scrape(&get("/metrics?x=1")));
        assert!(!is_scrape(&get("/metrics/slis")));
        assert!(!is_scrape(&get("/api")));
        let post = Request::post("/metrics").body(()).expect("request");
        assert!(!is_scrape(&post));
    }

    #[test]
    fn the_scrape_asks_kube_apiserver_for_uncompressed_text() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0"),
        );
        ask_for_text(&mut headers);
        assert!(headers.get(ACCEPT_ENCODING).is_none());
        assert_eq!(headers.get(ACCEPT).expect("accept"), TEXT_FORMAT);
    }
}
