//! 64 concurrent writers, on distinct keys and with compare-and-swap on
//! shared keys: no errors but legitimate compare failures, and a watcher
//! sees every event exactly once, in order.

use std::collections::HashSet;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, EventType, GetOptions, Txn, TxnOp, WatchOptions};

use crate::harness::{OUR_BACKENDS, Target, next_revision, start};

const WRITERS: usize = 64;
const SHARED_KEYS: usize = 8;

async fn run(target: Target, puts_per_writer: usize, increments_per_writer: usize) {
    let running = start(target).await;
    let mut watch_client = running.client().await;
    let start_rev = next_revision(&mut watch_client).await;
    let mut stream = watch_client
        .watch(
            "/conc/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(start_rev),
            ),
        )
        .await
        .expect("watch");
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(running.client().await);
    }
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let mut client = clients[writer % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut compare_failures = 0u64;
            for i in 0..puts_per_writer {
                client
                    .put(format!("/conc/distinct/{writer}/{i}"), format!("{i}"), None)
                    .await?;
            }
            let key = format!("/conc/shared/{}", writer % SHARED_KEYS);
            for _ in 0..increments_per_writer {
                loop {
                    let current = client.get(key.as_str(), None).await?;
                    let (value, rev) = match current.kvs().first() {
                        Some(kv) => (
                            String::from_utf8_lossy(kv.value())
                                .parse::<u64>()
                                .unwrap_or(0),
                            kv.mod_revision(),
                        ),
                        None => (0, 0),
                    };
                    let cas = Txn::new()
                        .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, rev)])
                        .and_then([TxnOp::put(key.as_str(), format!("{}", value + 1), None)]);
                    if client.txn(cas).await?.succeeded() {
                        break;
                    }
                    compare_failures += 1;
                }
            }
            Ok::<u64, etcd_client::Error>(compare_failures)
        }));
    }
    let mut compare_failures = 0;
    for task in tasks {
        compare_failures += task
            .await
            .expect("writer task")
            .unwrap_or_else(|e| panic!("{target:?}: writer error {e}"));
    }
    let expected_events = WRITERS * (puts_per_writer + increments_per_writer);
    let mut last_revision = 0;
    let mut seen = HashSet::new();
    let mut events = 0;
    while events < expected_events {
        let response = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .unwrap_or_else(|_| {
                panic!("{target:?}: watcher saw only {events} of {expected_events} events")
            })
            .expect("watch stream")
            .expect("watch open");
        assert!(!response.canceled(), "{target:?}: watch canceled");
        for event in response.events() {
            let kv = event.kv().expect("kv");
            assert_eq!(event.event_type(), EventType::Put);
            assert!(
                kv.mod_revision() > last_revision,
                "{target:?}: revisions out of order"
            );
            last_revision = kv.mod_revision();
            assert!(
                seen.insert((kv.key().to_vec(), kv.mod_revision())),
                "{target:?}: duplicate event"
            );
            events += 1;
        }
    }
    let mut client = running.client().await;
    for shared in 0..SHARED_KEYS {
        let got = client
            .get(format!("/conc/shared/{shared}"), None)
            .await
            .expect("get");
        let value: usize = String::from_utf8_lossy(got.kvs()[0].value())
            .parse()
            .expect("counter");
        assert_eq!(
            value,
            (WRITERS / SHARED_KEYS) * increments_per_writer,
            "{target:?}: lost an increment"
        );
    }
    let distinct = client
        .get(
            "/conc/distinct/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .expect("count");
    assert_eq!(distinct.count() as usize, WRITERS * puts_per_writer);
    eprintln!(
        "{target:?}: {events} events in order, {compare_failures} legitimate compare failures"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_sqlite() {
    run(OUR_BACKENDS[0], 30, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_postgres() {
    run(OUR_BACKENDS[1], 10, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_mysql() {
    run(OUR_BACKENDS[2], 10, 3).await;
}
