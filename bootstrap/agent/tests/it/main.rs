//! The join client against a TLS server that records what it is sent:
//! a wrong CA hash stops the join before any credential leaves the agent.

mod loadbalancer;
mod recording;

use k3r_agent::{JoinError, Joiner};
use k3r_join_protocol::Endpoint;
use recording::Recording;

#[tokio::test]
async fn wrong_ca_hash_sends_no_credentials() {
    let server = Recording::start().await;
    let token = format!("K10{}::node:s3cret", "0".repeat(64));
    let err = Joiner::connect(&server.url, &token)
        .await
        .err()
        .expect("a CA hash mismatch");
    assert!(matches!(err, JoinError::CaHashMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("token CA hash does not match the Cluster CA certificate hash"),
        "{err}"
    );
    let seen = server.requests();
    assert!(!seen.is_empty(), "the CA was fetched");
    assert!(
        seen.iter().all(|r| r.authorization.is_none()),
        "credentials were sent: {seen:?}"
    );
}

#[tokio::test]
async fn right_hash_then_credentials() {
    let server = Recording::start().await;
    let token = format!("K10{}::node:s3cret", server.ca_hash);
    let joiner = Joiner::connect(&server.url, &token).await.expect("joins");
    assert_eq!(joiner.ca_hash(), server.ca_hash);
    let body = joiner
        .get(Endpoint::ClientCa, None)
        .await
        .expect("authorized");
    assert_eq!(body, b"ok");
    let seen = server.requests();
    let with_auth: Vec<_> = seen.iter().filter(|r| r.authorization.is_some()).collect();
    assert_eq!(with_auth.len(), 1, "{seen:?}");
    assert_eq!(with_auth[0].path, "/v1-k3r/client-ca.crt");
    // Basic node:s3cret
    assert_eq!(
        with_auth[0].authorization.as_deref(),
        Some("Basic bm9kZTpzM2NyZXQ=")
    );
}

#[tokio::test]
async fn short_tokens_trust_on_first_use_and_bad_input_is_named() {
    let server = Recording::start().await;
    let joiner = Joiner::connect(&server.url, "s3cret").await.expect("TOFU");
    assert_eq!(joiner.ca_hash(), server.ca_hash);
    let wrong = Joiner::connect(&server.url, "wrong")
        .await
        .expect("the CA is fine")
        .get(Endpoint::ClientCa, None)
        .await
        .expect_err("bad password");
    assert!(matches!(wrong, JoinError::Unauthorized), "{wrong}");
    let http = Joiner::connect(&server.url.replace("https", "http"), "s3cret")
        .await
        .err()
        .expect("http refused");
    assert!(matches!(http, JoinError::Url(_)), "{http}");
    let unreachable = Joiner::connect("https://127.0.0.1:9", "s3cret")
        .await
        .err()
        .expect("nothing listens");
    assert!(
        matches!(unreachable, JoinError::Unreachable { .. }),
        "{unreachable}"
    );
}
