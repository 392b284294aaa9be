//! k3r's own routes on the supervisor listener (:6443). The listener
//! itself is served from kube-apiserver's process (`k3r-kube together
//! ... --- k3r-front`, as k3s serves it in one process), so an API request
//! reaches kube-apiserver's handler without a hop; the paths k3r answers
//! — /cacerts, /ping, the join endpoints (/v1-k3r/*, see `join`), the
//! agents' tunnel and, with `--supervisor-metrics`, /metrics — come here
//! over a unix socket, with the client certificate the front verified
//! against the client CA in a header. /metrics is forwarded to
//! kube-apiserver on 127.0.0.1:6444 with k3r's own metrics appended (see
//! `metrics`): certificate clients are vouched for with the front-proxy
//! headers (X-Remote-User/Group) over a connection authenticated as
//! system:auth-proxy; other requests pass through with their own
//! credentials (bearer tokens).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::api::connector;
use crate::join::{self, JoinService};
use crate::metrics::{self, OwnMetrics};
use crate::tls::Certified;
use crate::{Error, tls};

type Body = BoxBody<Bytes, hyper::Error>;
type Backend = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Incoming,
>;

/// The header in which the front hands over the client certificate it
/// verified (base64 DER); its Go side is bootstrap/kube/front.go.
const CLIENT_CERT_HEADER: &str = "x-k3r-client-certificate";

pub struct ProxyConfig {
    /// Where the front (kube-apiserver's process) serves :6443.
    pub listen: SocketAddr,
    /// The unix socket the front forwards k3r's own routes to.
    pub socket: PathBuf,
    pub backend: String,
    pub server_ca: PathBuf,
    pub proxy_cert: PathBuf,
    pub proxy_key: PathBuf,
    pub join: Arc<JoinService>,
    pub tunnels: Arc<crate::tunnel::Tunnels>,
    /// `--supervisor-metrics`: what /metrics appends to kube-apiserver's.
    pub own_metrics: Option<OwnMetrics>,
}

impl ProxyConfig {
    /// The `k3r-front` group of kube-apiserver's `together` command line:
    /// where to listen, with which certificate, and which paths are k3r's.
    pub fn front_args(
        &self,
        serving_cert: &std::path::Path,
        serving_key: &std::path::Path,
        client_ca: &std::path::Path,
    ) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "k3r-front".into(),
            format!("--listen={}", self.listen),
            format!("--tls-cert-file={}", serving_cert.display()),
            format!("--tls-private-key-file={}", serving_key.display()),
            format!("--client-ca-file={}", client_ca.display()),
            format!("--k3r-socket={}", self.socket.display()),
        ];
        let mut paths = vec![k3r_join_protocol::CACERTS, "/ping"];
        if self.own_metrics.is_some() {
            paths.push("/metrics");
        }
        let tunnel = crate::tunnel::Tunnels::paths();
        paths.extend(tunnel.0);
        args.extend(paths.iter().map(|p| format!("--path={p}")));
        let prefixes = [vec![join::PREFIX], tunnel.1].concat();
        args.extend(prefixes.iter().map(|p| format!("--prefix={p}")));
        args
    }
}

/// What the listener answers itself, before proxying the rest.
struct Routes {
    ca_pem: Bytes,
    join: Arc<JoinService>,
    tunnels: Arc<crate::tunnel::Tunnels>,
    own_metrics: Option<OwnMetrics>,
}

/// Who a client certificate says the client is.
type Identity = Certified;

fn identity_of(cert: &[u8]) -> Option<Identity> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(String::from))
        .collect();
    Some(Identity { user, groups })
}

/// The identity in the certificate the front verified, if it sent one.
fn identity_from_front<B>(req: &Request<B>) -> Option<Identity> {
    let encoded = req.headers().get(CLIENT_CERT_HEADER)?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .ok()?;
    identity_of(&der)
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
}

const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub async fn serve(
    config: ProxyConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let backend_tls = tls::client_config(&config.server_ca, &config.proxy_cert, &config.proxy_key)?;
    let backend: Backend = Client::builder(TokioExecutor::new()).build(connector(backend_tls));
    let ca_pem = Bytes::from(
        std::fs::read(&config.server_ca).map_err(|e| Error::Io(config.server_ca.clone(), e))?,
    );
    // A socket left by a server that did not stop cleanly.
    let _ = std::fs::remove_file(&config.socket);
    let listener =
        UnixListener::bind(&config.socket).map_err(|e| Error::Io(config.socket.clone(), e))?;
    // Only root (kube-apiserver's process) may speak for a client here.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config.socket, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::Io(config.socket.clone(), e))?;
    }
    let base = Arc::new(config.backend.trim_end_matches('/').to_string());
    let routes = Arc::new(Routes {
        ca_pem,
        join: Arc::clone(&config.join),
        tunnels: Arc::clone(&config.tunnels),
        own_metrics: config.own_metrics.clone(),
    });
    Ok(tokio::spawn(async move {
        loop {
            let socket = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
                },
                _ = stop.wait_for(|s| *s) => break,
            };
            let backend = backend.clone();
            let base = Arc::clone(&base);
            let routes = Arc::clone(&routes);
            let mut stopping = stop.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let identity = identity_from_front(&req);
                    handle(
                        req,
                        identity,
                        backend.clone(),
                        Arc::clone(&routes),
                        Arc::clone(&base),
                    )
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let connection =
                    builder.serve_connection_with_upgrades(TokioIo::new(socket), service);
                // At stop, open connections (agents' tunnels above all)
                // are cut.
                tokio::select! {
                    result = connection => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended");
                        }
                    }
                    _ = stopping.wait_for(|s| *s) => {}
                }
            });
        }
    }))
}

async fn handle(
    mut req: Request<Incoming>,
    identity: Option<Identity>,
    backend: Backend,
    routes: Arc<Routes>,
    base: Arc<String>,
) -> Result<Response<Body>, Infallible> {
    match req.uri().path() {
        k3r_join_protocol::CACERTS => return Ok(text(StatusCode::OK, routes.ca_pem.clone())),
        "/ping" => return Ok(text(StatusCode::OK, "pong")),
        path if crate::tunnel::Tunnels::handles(path) => {
            return Ok(match routes.tunnels.accept(req, identity.as_ref()).await {
                Ok(accept) => {
                    let mut response = text(StatusCode::SWITCHING_PROTOCOLS, "");
                    let headers = response.headers_mut();
                    headers.insert(
                        hyper::header::UPGRADE,
                        HeaderValue::from_static("websocket"),
                    );
                    headers.insert(
                        hyper::header::CONNECTION,
                        HeaderValue::from_static("Upgrade"),
                    );
                    if let Ok(value) = HeaderValue::from_str(&accept) {
                        headers.insert("sec-websocket-accept", value);
                    }
                    response
                }
                Err((status, reason)) => text(status, format!("{reason}\n")),
            });
        }
        path if path.starts_with(join::PREFIX) => {
            let reply = routes
                .join
                .handle(path, req.headers(), identity.as_ref())
                .await;
            let mut response = text(reply.status, reply.body);
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static(reply.content_type),
            );
            return Ok(response);
        }
        _ => {}
    }
    let own_metrics = routes
        .own_metrics
        .as_ref()
        .filter(|_| metrics::is_scrape(&req));
    let upgrade = req.headers().get(hyper::header::UPGRADE).cloned();
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let (parts, body) = req.into_parts();
    let mut out = Request::builder()
        .method(parts.method)
        .uri(format!("{base}{path}"));
    let headers = out.headers_mut().expect("fresh builder has headers");
    for (name, value) in &parts.headers {
        let lower = name.as_str();
        if HOP_BY_HOP.contains(&lower)
            || lower == "host"
            || lower == CLIENT_CERT_HEADER
            || lower.starts_with("x-remote-")
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    if let Some(upgrade) = &upgrade {
        headers.insert(
            hyper::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        );
        headers.insert(hyper::header::UPGRADE, upgrade.clone());
    }
    if own_metrics.is_some() {
        metrics::ask_for_text(headers);
    }
    if let Some(identity) = &identity {
        if let Ok(user) = HeaderValue::from_str(&identity.user) {
            headers.insert(HeaderName::from_static("x-remote-user"), user);
        }
        for group in &identity.groups {
            if let Ok(group) = HeaderValue::from_str(group) {
                headers.append(HeaderName::from_static("x-remote-group"), group);
            }
        }
    }
    let out = match out.body(body) {
        Ok(out) => out,
        Err(e) => return Ok(text(StatusCode::BAD_REQUEST, e.to_string())),
    };
    let mut response = match backend.request(out).await {
        Ok(r) => match own_metrics {
            Some(own) => match metrics::append_own(r, own).await {
                Ok(joined) => return Ok(joined.map(full)),
                Err(r) => r,
            },
            None => r,
        },
        Err(e) => {
            tracing::debug!(error = %e, "kube-apiserver unreachable");
            return Ok(text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("kube-apiserver is not available: {e}\n"),
            ));
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        {
            let backend_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                match (client_upgrade.await, backend_upgrade.await) {
                    (Ok(client), Ok(backend)) => {
                        let mut client = TokioIo::new(client);
                        let mut backend = TokioIo::new(backend);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                    }
                    (c, b) => {
                        tracing::debug!(client = ?c.err(), backend = ?b.err(), "upgrade failed")
                    }
                }
            });
        }
    }
    let (mut parts, body) = response.into_parts();
    if parts.status != StatusCode::SWITCHING_PROTOCOLS {
        for name in HOP_BY_HOP {
            parts.headers.remove(name);
        }
    }
    Ok(Response::from_parts(parts, body.boxed()))
}
