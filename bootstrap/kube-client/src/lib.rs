//! The kube clients of k3r's components, made in one place: from a
//! kubeconfig file (the server's and agents' component identities,
//! `k3r token`), or inferred (in a pod: its ServiceAccount). They are
//! kube-rs clients built over an HTTP connector that sets TCP_NODELAY:
//! kube-rs's own builder leaves Nagle's algorithm on, and a request
//! written as more than one TLS record then waits for the server's
//! delayed ACK (tens of milliseconds per request).
//!
//! [`http_connector`] is the connector k3r's own hyper clients use too.

use std::path::Path;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use kube::{Client, Config};
use tower::ServiceBuilder;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubeconfig {0}: {1}")]
    Kubeconfig(String, String),
    #[error("cannot find a Kubernetes API to talk to: {0}")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// TCP keepalive as client-go's dialer has it: a connection whose peer
/// vanished without a FIN or RST (a watch on a server that restarted while
/// the close was lost) is found dead by the probes, not waited on forever.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_PROBES: u32 = 3;

/// A TCP connector for HTTP(S) clients: TCP_NODELAY, keepalive, any scheme
/// (TLS is layered on top).
pub fn http_connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(KEEPALIVE_IDLE));
    connector.set_keepalive_interval(Some(KEEPALIVE_INTERVAL));
    connector.set_keepalive_retries(Some(KEEPALIVE_PROBES));
    connector.enforce_http(false);
    connector
}

/// A client for `config`, with kube-rs's layers (base URI, auth, extra
/// headers, timeouts) over [`http_connector`].
pub fn from_config(config: Config) -> Result<Client, Error> {
    let https = config
        .rustls_https_connector_with_connector(http_connector())
        .map_err(Error::Client)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().map_err(Error::Client)?)
        .layer(config.extra_headers_layer().map_err(Error::Client)?)
        .map_err(
            |e: hyper_util::client::legacy::Error| -> Box<dyn std::error::Error + Send + Sync> {
                Box::new(e)
            },
        )
        .service(http);
    Ok(Client::new(service, config.default_namespace))
}

/// A client from a kubeconfig file.
pub async fn from_kubeconfig(path: &Path) -> Result<Client, Error> {
    let problem =
        |e: &dyn std::fmt::Display| Error::Kubeconfig(path.display().to_string(), e.to_string());
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| problem(&e))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| problem(&e))?;
    from_config(config)
}

/// A client as kube-rs infers it: `KUBECONFIG`/~/.kube/config, else the
/// pod's ServiceAccount.
pub async fn infer() -> Result<Client, Error> {
    from_config(Config::infer().await.map_err(Error::Infer)?)
}

#[cfg(test)]
mod tests;
