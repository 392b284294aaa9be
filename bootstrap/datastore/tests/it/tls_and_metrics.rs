//! TCP with mutual TLS (checked with etcdctl), and the Prometheus endpoint.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use k3r_datastore::{Datastore, DatastoreConfig, Endpoint, Listen, TlsFiles};
use k3r_pki::{Pki, PkiOptions};

use crate::harness::{free_port, test_store_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_and_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::ensure(
        &dir.path().join("tls"),
        &PkiOptions {
            node_name: "datastore".into(),
            node_ips: vec![IpAddr::from([127, 0, 0, 1])],
            tls_sans: Vec::new(),
            cluster_domain: "cluster.local".into(),
            api_service_ip: IpAddr::from([10, 43, 0, 1]),
        },
    )
    .expect("pki");
    let port = free_port();
    let metrics_port = free_port();
    let datastore = Datastore::start(DatastoreConfig {
        endpoint: Endpoint::Sqlite(dir.path().join("state.db")),
        listen: vec![Listen::Tcp(
            format!("127.0.0.1:{port}").parse().expect("addr"),
        )],
        tls: Some(TlsFiles {
            cert: pki.cert("serving-kube-apiserver"),
            key: pki.key("serving-kube-apiserver"),
            client_ca: pki.client_ca.clone(),
        }),
        metrics_listen: Some(format!("127.0.0.1:{metrics_port}").parse().expect("addr")),
        store: test_store_config(),
        progress_notify_interval: Duration::from_secs(5),
    })
    .await
    .expect("datastore with TLS");
    let endpoint = format!("https://127.0.0.1:{port}");
    let etcdctl = move |args: &[&str], with_client_cert: bool| {
        let mut command = Command::new("etcdctl");
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .arg("--dial-timeout=3s");
        command.arg(format!("--cacert={}", pki.server_ca.display()));
        if with_client_cert {
            command.arg(format!(
                "--cert={}",
                pki.cert("client-kube-apiserver").display()
            ));
            command.arg(format!(
                "--key={}",
                pki.key("client-kube-apiserver").display()
            ));
        }
        let out = command.args(args).output().expect("etcdctl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let ctl = etcdctl;
    let (put, get, denied) = tokio::task::spawn_blocking(move || {
        (
            ctl(&["put", "/tls", "yes"], true),
            ctl(&["get", "/tls", "--print-value-only"], true),
            ctl(&["get", "/tls"], false),
        )
    })
    .await
    .expect("etcdctl");
    assert!(put.0, "put over mTLS");
    assert_eq!(get.1.trim(), "yes");
    assert!(!denied.0, "a client without a certificate must be refused");
    let metrics = tokio::task::spawn_blocking(move || {
        let mut socket =
            std::net::TcpStream::connect(("127.0.0.1", metrics_port)).expect("metrics");
        socket
            .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
            .expect("request");
        let mut body = String::new();
        socket.read_to_string(&mut body).expect("response");
        body
    })
    .await
    .expect("metrics");
    for name in [
        "k3r_datastore_rpc_duration_seconds_count{method=\"Put\"}",
        "k3r_datastore_commit_duration_seconds",
        "k3r_datastore_compactions",
    ] {
        assert!(metrics.contains(name), "missing {name} in:\n{metrics}");
    }
    datastore.stop().await;
}
