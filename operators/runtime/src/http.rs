//! The probe and metrics endpoint: /healthz (liveness), /readyz
//! (readiness) and /metrics (Prometheus text format).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::Error;
use crate::status::Status;

/// An operator loop silent for longer than this is considered stuck.
pub const MAX_SILENCE: Duration = Duration::from_secs(120);

/// Binds `addr` and serves until the task is dropped. Returns the bound
/// address (so port 0 works in tests).
pub async fn serve(
    addr: SocketAddr,
    status: Status,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Other(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Other(format!("{addr}: {e}")))?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let status = status.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| respond(request, status.clone()));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((bound, task))
}

async fn respond(
    request: Request<Incoming>,
    status: Status,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (code, content_type, body) = match request.uri().path() {
        "/healthz" | "/livez" => check(status.live(MAX_SILENCE)),
        "/readyz" => check(status.ready()),
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            status.metrics_text(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert("content-type", value);
    }
    Ok(response)
}

fn check(result: Result<(), String>) -> (StatusCode, &'static str, String) {
    match result {
        Ok(()) => (StatusCode::OK, "text/plain", "ok\n".into()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("{reason}\n"),
        ),
    }
}
