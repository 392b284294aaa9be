//! Malformed requests, unsupported calls and unusable endpoints give clear
//! errors, and the datastore keeps serving.

use k3r_datastore::{Datastore, DatastoreConfig, Endpoint, Listen};
use k3r_etcd_proto::etcdserverpb::kv_client::KvClient;
use k3r_etcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use k3r_etcd_proto::etcdserverpb::{
    Compare, PutRequest, RangeRequest, RequestOp, SnapshotRequest, TxnRequest, request_op,
};
use tonic::Code;

use crate::harness::{Target, start, test_store_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_errors() {
    let running = start(Target::Sqlite).await;
    let mut kv = KvClient::connect(format!("http://{}", running.endpoint))
        .await
        .expect("connect");
    let empty_key = kv
        .range(RangeRequest::default())
        .await
        .expect_err("empty key");
    assert_eq!(empty_key.code(), Code::InvalidArgument);
    assert!(empty_key.message().contains("key is not provided"));
    let bad_compare = TxnRequest {
        compare: vec![Compare {
            key: b"/k".to_vec(),
            target: 42,
            ..Default::default()
        }],
        ..Default::default()
    };
    let err = kv
        .txn(bad_compare)
        .await
        .expect_err("unknown compare target");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("compare target"),
        "{}",
        err.message()
    );
    let put = |key: &str| RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.into(),
            ..Default::default()
        })),
    };
    let too_many = TxnRequest {
        success: (0..200).map(|i| put(&format!("/k{i}"))).collect(),
        ..Default::default()
    };
    let err = kv.txn(too_many).await.expect_err("too many ops");
    assert!(
        err.message().contains("too many operations"),
        "{}",
        err.message()
    );
    let empty_op = TxnRequest {
        success: vec![RequestOp { request: None }],
        ..Default::default()
    };
    assert_eq!(
        kv.txn(empty_op).await.expect_err("empty op").code(),
        Code::InvalidArgument
    );
    let future = kv
        .range(RangeRequest {
            key: b"/k".to_vec(),
            revision: 1000,
            ..Default::default()
        })
        .await;
    assert_eq!(
        future.expect_err("future revision").code(),
        Code::OutOfRange
    );
    let mut maintenance = MaintenanceClient::connect(format!("http://{}", running.endpoint))
        .await
        .expect("connect");
    let err = maintenance
        .snapshot(SnapshotRequest {})
        .await
        .expect_err("snapshot unsupported");
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("k3r datastore"), "{}", err.message());
    // Still serving after all of that.
    let ok = kv
        .put(PutRequest {
            key: b"/alive".to_vec(),
            value: b"yes".to_vec(),
            ..Default::default()
        })
        .await;
    assert!(ok.is_ok());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_endpoints_fail_fast_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = |endpoint: Endpoint, listen: Vec<Listen>| {
        Datastore::start(DatastoreConfig {
            endpoint,
            listen,
            tls: None,
            metrics_listen: None,
            store: test_store_config(),
            progress_notify_interval: std::time::Duration::from_secs(5),
        })
    };
    let any_port = vec![Listen::Tcp("127.0.0.1:0".parse().expect("addr"))];
    let refused = start(
        Endpoint::Postgres("postgres://k3r@127.0.0.1:1/k3r".into()),
        any_port.clone(),
    )
    .await;
    let err = refused.err().expect("unreachable postgres").to_string();
    assert!(err.starts_with("postgres:"), "{err}");
    let refused = start(
        Endpoint::Mysql("mysql://k3r@127.0.0.1:1/k3r".into()),
        any_port.clone(),
    )
    .await;
    let err = refused.err().expect("unreachable mysql").to_string();
    assert!(err.starts_with("mysql:"), "{err}");
    let unwritable = start(
        Endpoint::Sqlite("/proc/k3r/state.db".into()),
        any_port.clone(),
    )
    .await;
    assert!(unwritable.is_err(), "sqlite in /proc must fail");
    let first = start(Endpoint::Sqlite(dir.path().join("a.db")), any_port.clone())
        .await
        .expect("first");
    let Listen::Tcp(taken) = first.listening()[0].clone() else {
        panic!("tcp")
    };
    let second = start(
        Endpoint::Sqlite(dir.path().join("b.db")),
        vec![Listen::Tcp(taken)],
    )
    .await;
    let err = second.err().expect("port in use").to_string();
    assert!(err.contains(&format!("cannot listen on {taken}")), "{err}");
    let socket = dir.path().join("etcd.sock");
    let unix = start(
        Endpoint::Sqlite(dir.path().join("c.db")),
        vec![Listen::Unix(socket.clone())],
    )
    .await
    .expect("unix");
    let again = start(
        Endpoint::Sqlite(dir.path().join("d.db")),
        vec![Listen::Unix(socket.clone())],
    )
    .await;
    assert!(
        again
            .err()
            .expect("socket in use")
            .to_string()
            .contains("in use")
    );
    unix.stop().await;
    assert!(!socket.exists(), "socket removed on stop");
    first.stop().await;
}
