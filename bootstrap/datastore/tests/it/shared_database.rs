//! Several k3r servers on one PostgreSQL or MySQL database (the HA setup
//! with an external SQL datastore): a watcher on one server sees the writes
//! of all of them, each revision once, in order, without gaps.

use std::collections::BTreeSet;
use std::time::Duration;

use etcd_client::WatchOptions;

use crate::harness::{Target, endpoint_for, start_datastore, tcp_endpoint, test_store_config};

const PUTS_PER_SERVER: usize = 60;

async fn run(target: Target) {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = endpoint_for(target, dir.path()).await;
    let a = start_datastore(endpoint.clone(), test_store_config()).await;
    let b = start_datastore(endpoint, test_store_config()).await;
    let mut client_a = etcd_client::Client::connect([tcp_endpoint(&a)], None)
        .await
        .expect("a");
    let mut client_b = etcd_client::Client::connect([tcp_endpoint(&b)], None)
        .await
        .expect("b");
    let start = client_b
        .put("/shared/start", "x", None)
        .await
        .expect("put")
        .header()
        .expect("header")
        .revision();
    let mut watch = client_b
        .watch(
            "/shared/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(start + 1),
            ),
        )
        .await
        .expect("watch");
    let writer = |mut client: etcd_client::Client, name: &'static str| {
        tokio::spawn(async move {
            for i in 0..PUTS_PER_SERVER {
                client
                    .put(format!("/shared/{name}/{i}"), "v", None)
                    .await
                    .expect("put");
            }
        })
    };
    let (wa, wb) = (writer(client_a.clone(), "a"), writer(client_b.clone(), "b"));
    wa.await.expect("writer a");
    wb.await.expect("writer b");
    let mut revisions = Vec::new();
    let mut keys = BTreeSet::new();
    while revisions.len() < 2 * PUTS_PER_SERVER {
        let response = tokio::time::timeout(Duration::from_secs(10), watch.message())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{target:?}: watcher on B saw {} of {} writes",
                    revisions.len(),
                    2 * PUTS_PER_SERVER
                )
            })
            .expect("stream")
            .expect("open");
        for event in response.events() {
            let kv = event.kv().expect("kv");
            revisions.push(kv.mod_revision());
            keys.insert(String::from_utf8_lossy(kv.key()).into_owned());
        }
    }
    let expected: Vec<i64> = (start + 1..=start + 2 * PUTS_PER_SERVER as i64).collect();
    assert_eq!(
        revisions, expected,
        "{target:?}: revisions not gapless and in order"
    );
    assert_eq!(
        keys.len(),
        2 * PUTS_PER_SERVER,
        "{target:?}: every write seen once"
    );
    let from_a = client_a.get("/shared/b/0", None).await.expect("get");
    assert_eq!(from_a.kvs().len(), 1, "{target:?}: A reads B's write");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_postgres() {
    run(Target::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_mysql() {
    run(Target::Mysql).await;
}
