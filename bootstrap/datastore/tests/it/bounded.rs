//! Churn on 1,000 keys for 200,000 revisions with automatic compaction:
//! the database file ends within 2x of the live data once the history has
//! aged out (retention age shortened from 5 minutes to 2 seconds here).

use std::time::Duration;

use etcd_client::GetOptions;
use k3r_datastore::{Endpoint, StoreConfig};

use crate::harness::{start_datastore, tcp_endpoint};

const KEYS: usize = 1000;
const REVISIONS: usize = 200_000;
const VALUE_SIZE: usize = 1024;
const WRITERS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_stays_bounded_under_churn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let config = StoreConfig {
        compaction_interval: Duration::from_secs(1),
        compaction_retain_age: Duration::from_secs(2),
        ..StoreConfig::default()
    };
    let datastore = start_datastore(Endpoint::Sqlite(db.clone()), config).await;
    let endpoint = tcp_endpoint(&datastore);
    let client = etcd_client::Client::connect([endpoint.as_str()], None)
        .await
        .expect("connect");
    let value = "v".repeat(VALUE_SIZE);
    let per_writer = REVISIONS / WRITERS;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let mut client = client.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let n = writer * per_writer + i;
                let key = format!("/churn/{:04}", n % KEYS);
                // Every seventh operation deletes instead of writing.
                if n % 7 == 3 {
                    client.delete(key, None).await?;
                } else {
                    client.put(key, value.as_str(), None).await?;
                }
            }
            Ok::<(), etcd_client::Error>(())
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("churn write");
    }
    let mut client = client.clone();
    for key in 0..KEYS {
        client
            .put(format!("/churn/{key:04}"), value.as_str(), None)
            .await
            .expect("final pass");
    }
    let mut max_size = 0u64;
    let current = client
        .get(
            "/churn/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .expect("count");
    assert_eq!(current.count() as usize, KEYS);
    let revision = current.header().expect("header").revision();
    assert!(
        revision as usize > REVISIONS / 2,
        "fewer revisions than expected: {revision}"
    );
    let live_bytes = KEYS * (VALUE_SIZE + "/churn/0000".len());
    // Wait for automatic compaction to catch up and give space back.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let file_size = || {
        let wal = std::fs::metadata(dir.path().join("state.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) + wal
    };
    while datastore.store.revisions().compacted < revision || file_size() as usize > 2 * live_bytes
    {
        max_size = max_size.max(file_size());
        if std::time::Instant::now() >= deadline {
            let conn = rusqlite::Connection::open(&db).expect("open db");
            let pragma = |name: &str| {
                conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
                    .unwrap_or(-1)
            };
            let rows: i64 = conn
                .query_row("SELECT COUNT(*) FROM kv", [], |r| r.get(0))
                .unwrap_or(-1);
            panic!(
                "database is {} bytes for {live_bytes} live bytes (compacted {} of {revision}): \
                 {} pages, {} free, auto_vacuum {}, {rows} rows; wal {} bytes",
                file_size(),
                datastore.store.revisions().compacted,
                pragma("page_count"),
                pragma("freelist_count"),
                pragma("auto_vacuum"),
                std::fs::metadata(dir.path().join("state.db-wal"))
                    .map(|m| m.len())
                    .unwrap_or(0),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "{revision} revisions: database {} bytes for {live_bytes} live bytes (largest seen while settling: {max_size})",
        file_size()
    );
    datastore.stop().await;
}
