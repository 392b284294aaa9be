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

/// HTTPS over k3r's TCP connector (TCP_NODELAY: every request would
/// otherwise wait for kube-apiserver's delayed ACK).
pub fn connector(config: rustls::ClientConfig) -> Connector {
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(k3r_kube_client::http_connector())
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

    /// Server-side apply of one object as field manager `k3r`.
    pub async fn apply(&self, object: &serde_json::Value) -> Result<(), Error> {
        let path = rest_path(object)?;
        let body = serde_json::to_vec(object).map_err(|e| Error::Api(e.to_string()))?;
        let (status, response) = self
            .request(
                Method::PATCH,
                &format!("{path}?fieldManager=k3r&force=true"),
                Some(("application/apply-patch+yaml", body)),
            )
            .await?;
        if !status.is_success() {
            return Err(Error::Api(format!(
                "applying {path}: {status}: {}",
                String::from_utf8_lossy(&response)
            )));
        }
        Ok(())
    }

    /// Deletes the object at `path`; one that is already gone is fine.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        let (status, response) = self.request(Method::DELETE, path, None).await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(Error::Api(format!(
            "deleting {path}: {status}: {}",
            String::from_utf8_lossy(&response)
        )))
    }
}

/// The REST path of an object of the kinds the bootstrap applies.
pub fn rest_path(object: &serde_json::Value) -> Result<String, Error> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let plural = match kind {
        "Namespace" => "namespaces",
        "ServiceAccount" => "serviceaccounts",
        "Secret" => "secrets",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "Deployment" => "deployments",
        "DaemonSet" => "daemonsets",
        "CustomResourceDefinition" => "customresourcedefinitions",
        "Node" => "nodes",
        other => return Err(Error::Api(format!("no REST path known for kind {other}"))),
    };
    if name.is_empty() {
        return Err(Error::Api(format!("{kind} without a name")));
    }
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    Ok(match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{prefix}/namespaces/{ns}/{plural}/{name}"),
        None => format!("{prefix}/{plural}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rest_paths_for_core_grouped_and_cluster_scoped_kinds() {
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a", "namespace": "kube-system"}});
        assert_eq!(
            rest_path(&sa).expect("path"),
            "/api/v1/namespaces/kube-system/serviceaccounts/a"
        );
        let crb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"}});
        assert_eq!(
            rest_path(&crb).expect("path"),
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/b"
        );
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "system-upgrade"}});
        assert_eq!(
            rest_path(&ns).expect("path"),
            "/api/v1/namespaces/system-upgrade"
        );
        let unknown = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"}});
        assert!(rest_path(&unknown).is_err());
    }
}
