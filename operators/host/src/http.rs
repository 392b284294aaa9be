//! The probe and metrics endpoint: /healthz (liveness), /readyz
//! (readiness) and /metrics (Prometheus text format).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use k3r_reconciler::health::Health;
use k3r_reconciler::metrics::Metrics;

use crate::Error;

/// What the endpoint reports on.
#[derive(Clone)]
pub struct Probes {
    pub health: Health,
    pub metrics: Metrics,
    /// In cluster mode: whether this replica leads (a standby is ready).
    pub standby: Option<Arc<AtomicBool>>,
}

impl Probes {
    fn ready(&self) -> Result<(), String> {
        match &self.standby {
            Some(leading) if !leading.load(Ordering::SeqCst) => Ok(()),
            _ => self.health.ready(),
        }
    }
}

/// Binds `addr` and serves until the task is dropped. Returns the bound
/// address (so port 0 works in tests).
pub async fn serve(
    addr: SocketAddr,
    probes: Probes,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Listen(addr, e))?;
    let bound = listener.local_addr().map_err(|e| Error::Listen(addr, e))?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let probes = probes.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| respond(request, probes.clone()));
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
    probes: Probes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (code, content_type, body) = match request.uri().path() {
        "/healthz" | "/livez" => check(probes.health.live()),
        "/readyz" => check(probes.ready()),
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            probes.metrics.encode(),
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
