//! A scripted API server for reconcilers' unit tests: every request the
//! client makes is recorded and answered by the test's `respond` function
//! (the `tower-test` pattern of kube-rs's controller-rs).

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::Value;

/// One request the client made.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The JSON body (Null when empty or not JSON).
    pub body: Value,
}

impl Recorded {
    /// The path without its query.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    /// "METHOD path" (without the query), for compact assertions.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.route())
    }
}

pub struct MockApi {
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockApi {
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// "METHOD path" of every request so far, without query strings.
    pub fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Recorded::line).collect()
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client whose requests `respond` answers with (status, JSON body).
pub fn client(
    respond: impl Fn(&Recorded) -> (u16, Value) + Send + 'static,
) -> (kube::Client, MockApi) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&requests);
    let task = tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default();
            let entry = Recorded {
                method: parts.method.to_string(),
                path: parts
                    .uri
                    .path_and_query()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            let (status, reply) = respond(&entry);
            recorded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(entry);
            let response = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(reply.to_string().into_bytes()));
            match response {
                Ok(response) => send.send_response(response),
                Err(err) => panic!("mock response: {err}"),
            }
        }
    });
    (
        kube::Client::new(service, "default"),
        MockApi { requests, task },
    )
}

/// A Kubernetes Status error body, as the API server sends it.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
}
