//! A minimal HTTPS client for the Kubernetes API, used for readiness
//! checks and bootstrap objects before any operator runs.

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::{Error, tls};

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

#[derive(Clone)]
pub struct ApiClient {
    base: String,
    client: Client<Connector, Full<Bytes>>,
}

pub fn connector(config: rustls::ClientConfig) -> Connector {
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build()
}

impl ApiClient {
    pub fn new(base: &str, ca: &Path, cert: &Path, key: &Path) -> Result<Self, Error> {
        let config = tls::client_config(ca, cert, key)?;
        let client = Client::builder(TokioExecutor::new()).build(connector(config));
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            client,
        })
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(StatusCode, Bytes), Error> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        let body = match body {
            Some((content_type, bytes)) => {
                builder = builder.header("content-type", content_type);
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).map_err(|e| Error::Api(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| Error::Api(format!("{path}: {e}")))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Api(e.to_string()))?
            .to_bytes();
        Ok((status, bytes))
    }

    pub async fn get(&self, path: &str) -> Result<(StatusCode, Bytes), Error> {
        self.request(Method::GET, path, None).await
    }

    pub async fn get_json(&self, path: &str) -> Result<Option<serde_json::Value>, Error> {
        let (status, body) = self.get(path).await?;
        match status {
            StatusCode::OK => Ok(Some(
                serde_json::from_slice(&body).map_err(|e| Error::Api(e.to_string()))?,
            )),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(Error::Api(format!(
                "GET {path}: {other}: {}",
                String::from_utf8_lossy(&body)
            ))),
        }
    }
}
