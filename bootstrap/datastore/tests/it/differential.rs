//! The same scenarios against real etcd and against our datastore on every
//! backend; the observed transcripts (revisions, values, prev_kv, watch
//! event order, errors) must be identical.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions, KeyValue, PutOptions,
    SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, WatchFilterType, WatchOptions, WatchStream,
};

use crate::harness::{ALL_TARGETS, start};

/// What a scenario observed, one line per observation.
#[derive(Default)]
struct Log(Vec<String>);

impl Log {
    fn push(&mut self, line: impl Into<String>) {
        self.0.push(line.into());
    }

    fn result<T>(
        &mut self,
        what: &str,
        result: Result<T, etcd_client::Error>,
        show: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        match result {
            Ok(value) => {
                let line = format!("{what}: {}", show(&value));
                self.push(line);
                Some(value)
            }
            Err(err) => {
                self.push(format!("{what}: ERROR {}", error_text(&err)));
                None
            }
        }
    }
}

fn error_text(err: &etcd_client::Error) -> String {
    match err {
        etcd_client::Error::GRpcStatus(status) => {
            format!("{:?} {}", status.code(), status.message())
        }
        other => other.to_string(),
    }
}

fn kv(kv: &KeyValue) -> String {
    format!(
        "{}={} c{} m{} v{}{}",
        String::from_utf8_lossy(kv.key()),
        String::from_utf8_lossy(kv.value()),
        kv.create_revision(),
        kv.mod_revision(),
        kv.version(),
        // Lease IDs are random; only whether a key has one is comparable.
        if kv.lease() != 0 { " leased" } else { "" }
    )
}

fn kvs(list: &[KeyValue]) -> String {
    list.iter().map(kv).collect::<Vec<_>>().join(", ")
}

fn rev(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(-1, |h| h.revision())
}

async fn get(c: &mut Client, log: &mut Log, key: &str, opts: Option<GetOptions>) {
    let what = format!("get {key} {opts:?}");
    log.result(&what, c.get(key, opts).await, |r| {
        format!(
            "rev{} count{} more{} [{}]",
            rev(r.header()),
            r.count(),
            r.more(),
            kvs(r.kvs())
        )
    });
}

async fn put(c: &mut Client, log: &mut Log, key: &str, value: &str, opts: Option<PutOptions>) {
    let what = format!("put {key}={value}");
    log.result(&what, c.put(key, value, opts).await, |r| {
        format!(
            "rev{} prev[{}]",
            rev(r.header()),
            r.prev_key().map(kv).unwrap_or_default()
        )
    });
}

async fn delete(c: &mut Client, log: &mut Log, key: &str, opts: Option<DeleteOptions>) {
    let what = format!("delete {key}");
    log.result(&what, c.delete(key, opts).await, |r| {
        format!(
            "rev{} deleted{} prev[{}]",
            rev(r.header()),
            r.deleted(),
            kvs(r.prev_kvs())
        )
    });
}

fn txn_responses(responses: Vec<TxnOpResponse>) -> String {
    responses
        .into_iter()
        .map(|r| match r {
            TxnOpResponse::Put(p) => {
                format!("put prev[{}]", p.prev_key().map(kv).unwrap_or_default())
            }
            TxnOpResponse::Get(g) => format!("get count{} [{}]", g.count(), kvs(g.kvs())),
            TxnOpResponse::Delete(d) => format!("delete {} [{}]", d.deleted(), kvs(d.prev_kvs())),
            TxnOpResponse::Txn(t) => format!(
                "txn {} ({})",
                t.succeeded(),
                txn_responses(t.op_responses())
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn txn(c: &mut Client, log: &mut Log, what: &str, txn: Txn) {
    log.result(what, c.txn(txn).await, |r| {
        format!(
            "rev{} succeeded={} {}",
            rev(r.header()),
            r.succeeded(),
            txn_responses(r.op_responses())
        )
    });
}

/// Reads watch responses until `events` events arrived (or a cancel), and
/// logs them in order.
async fn watch_events(stream: &mut WatchStream, log: &mut Log, events: usize) {
    let mut seen = 0;
    while seen < events {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
        let response = match message {
            Ok(Ok(Some(response))) => response,
            Ok(Ok(None)) => return log.push("watch: stream ended"),
            Ok(Err(err)) => return log.push(format!("watch: ERROR {}", error_text(&err))),
            Err(_) => return log.push(format!("watch: timed out after {seen} of {events} events")),
        };
        if response.canceled() {
            return log.push(format!(
                "watch: canceled compact_revision={}",
                response.compact_revision()
            ));
        }
        for event in response.events() {
            seen += 1;
            let kind = match event.event_type() {
                EventType::Put => "PUT",
                EventType::Delete => "DELETE",
            };
            log.push(format!(
                "watch: {kind} {} prev[{}]",
                event.kv().map(kv).unwrap_or_default(),
                event.prev_kv().map(kv).unwrap_or_default()
            ));
        }
    }
}

/// Runs `scenario` against every target and compares with etcd.
macro_rules! differential {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let mut transcripts: Vec<(crate::harness::Target, Vec<String>)> = Vec::new();
            for target in ALL_TARGETS {
                let running = start(target).await;
                let mut client = running.client().await;
                let mut log = Log::default();
                scenarios::$name(&mut client, &mut log).await;
                transcripts.push((target, log.0));
                running.stop().await;
            }
            let (_, etcd) = &transcripts[0];
            if std::env::var_os("K3R_TEST_SHOW").is_some() {
                eprintln!("{}", etcd.join("\n"));
            }
            assert!(etcd.len() > 3, "scenario observed too little: {etcd:?}");
            for (target, ours) in &transcripts[1..] {
                for (i, (want, got)) in etcd.iter().zip(ours.iter()).enumerate() {
                    assert_eq!(got, want, "{target:?} differs from etcd at observation {i}");
                }
                assert_eq!(
                    ours.len(),
                    etcd.len(),
                    "{target:?} made a different number of observations"
                );
            }
        }
    };
}

differential!(put_get_and_range_options);
differential!(delete_ranges);
differential!(kube_apiserver_txn_shapes);
differential!(general_txns);
differential!(compaction);
differential!(watches);
differential!(leases);

mod scenarios {
    use super::*;

    pub async fn put_get_and_range_options(c: &mut Client, log: &mut Log) {
        for (k, v) in [
            ("/r/b", "2"),
            ("/r/a", "1"),
            ("/r/c", "3"),
            ("/r/a", "1b"),
            ("/s/x", "x"),
            ("/r/d", "4"),
        ] {
            put(c, log, k, v, None).await;
        }
        get(c, log, "/r/a", None).await;
        get(c, log, "/missing", None).await;
        get(c, log, "/r/", Some(GetOptions::new().with_prefix())).await;
        get(
            c,
            log,
            "/r/",
            Some(GetOptions::new().with_prefix().with_limit(2)),
        )
        .await;
        get(
            c,
            log,
            "/r/",
            Some(GetOptions::new().with_prefix().with_limit(4)),
        )
        .await;
        get(
            c,
            log,
            "/r/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await;
        get(
            c,
            log,
            "/r/",
            Some(GetOptions::new().with_prefix().with_keys_only()),
        )
        .await;
        get(
            c,
            log,
            "/r/",
            Some(GetOptions::new().with_prefix().with_revision(3)),
        )
        .await;
        get(c, log, "/r/a", Some(GetOptions::new().with_revision(2))).await;
        get(
            c,
            log,
            "/r/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_revision(3)
                    .with_limit(1),
            ),
        )
        .await;
        get(
            c,
            log,
            "/r/",
            Some(GetOptions::new().with_prefix().with_revision(99)),
        )
        .await;
        get(c, log, "/r/b", Some(GetOptions::new().with_range("/r/d"))).await;
        get(c, log, "/r/c", Some(GetOptions::new().with_from_key())).await;
        get(c, log, "", Some(GetOptions::new().with_all_keys())).await;
        get(
            c,
            log,
            "/r/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Key, SortOrder::Descend),
            ),
        )
        .await;
        get(
            c,
            log,
            "/r/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Mod, SortOrder::Descend)
                    .with_limit(2),
            ),
        )
        .await;
        get(
            c,
            log,
            "/r/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Value, SortOrder::Ascend),
            ),
        )
        .await;
        get(
            c,
            log,
            "/r/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Version, SortOrder::None),
            ),
        )
        .await;
        get(
            c,
            log,
            "/r/",
            Some(GetOptions::new().with_prefix().with_min_mod_revision(4)),
        )
        .await;
        get(
            c,
            log,
            "/r/",
            Some(GetOptions::new().with_prefix().with_max_create_revision(3)),
        )
        .await;
        put(
            c,
            log,
            "/r/a",
            "1c",
            Some(PutOptions::new().with_prev_key()),
        )
        .await;
        put(
            c,
            log,
            "/r/b",
            "",
            Some(PutOptions::new().with_ignore_value()),
        )
        .await;
        put(
            c,
            log,
            "/nope",
            "",
            Some(PutOptions::new().with_ignore_value()),
        )
        .await;
        put(
            c,
            log,
            "/nope",
            "",
            Some(PutOptions::new().with_ignore_lease()),
        )
        .await;
        put(c, log, "", "empty-key", None).await;
        get(c, log, "/r/b", None).await;
    }

    pub async fn delete_ranges(c: &mut Client, log: &mut Log) {
        for k in ["/d/1", "/d/2", "/d/3", "/e/1"] {
            put(c, log, k, "v", None).await;
        }
        delete(c, log, "/d/1", Some(DeleteOptions::new().with_prev_key())).await;
        delete(c, log, "/d/1", None).await;
        delete(
            c,
            log,
            "/nothing/",
            Some(DeleteOptions::new().with_prefix()),
        )
        .await;
        delete(
            c,
            log,
            "/d/",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await;
        put(c, log, "/d/2", "again", None).await;
        get(c, log, "/d/2", None).await;
        get(
            c,
            log,
            "/d/",
            Some(GetOptions::new().with_prefix().with_revision(5)),
        )
        .await;
        get(
            c,
            log,
            "/d/",
            Some(GetOptions::new().with_prefix().with_revision(6)),
        )
        .await;
        delete(c, log, "", Some(DeleteOptions::new().with_all_keys())).await;
        get(
            c,
            log,
            "",
            Some(GetOptions::new().with_all_keys().with_count_only()),
        )
        .await;
    }

    pub async fn kube_apiserver_txn_shapes(c: &mut Client, log: &mut Log) {
        let key = "/registry/configmaps/default/cm";
        let create = |value: &str| {
            Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key, value, None)])
        };
        txn(c, log, "create", create("one")).await;
        txn(c, log, "create again", create("two")).await;
        let update = |rev: i64, value: &str| {
            Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, rev)])
                .and_then([TxnOp::put(key, value, None)])
                .or_else([TxnOp::get(key, None)])
        };
        txn(c, log, "update at 2", update(2, "three")).await;
        txn(c, log, "stale update at 2", update(2, "four")).await;
        let delete = |rev: i64| {
            Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, rev)])
                .and_then([TxnOp::delete(
                    key,
                    Some(DeleteOptions::new().with_prev_key()),
                )])
                .or_else([TxnOp::get(key, None)])
        };
        txn(c, log, "stale delete", delete(2)).await;
        txn(c, log, "delete", delete(3)).await;
        // kube-apiserver's compaction bookkeeping key.
        let compact = |version: i64, rev: &str| {
            Txn::new()
                .when([Compare::version(
                    "compact_rev_key",
                    CompareOp::Equal,
                    version,
                )])
                .and_then([TxnOp::put("compact_rev_key", rev, None)])
                .or_else([TxnOp::get("compact_rev_key", None)])
        };
        txn(c, log, "compact key v0", compact(0, "4")).await;
        txn(c, log, "compact key stale", compact(0, "5")).await;
        txn(c, log, "compact key v1", compact(1, "5")).await;
        // A lease-carrying create, as for Events.
        if let Some(lease) = log.result("grant", c.lease_grant(3600, None).await, |r| {
            format!("ttl{}", r.ttl())
        }) {
            let event = Txn::new()
                .when([Compare::mod_revision(
                    "/registry/events/e",
                    CompareOp::Equal,
                    0,
                )])
                .and_then([TxnOp::put(
                    "/registry/events/e",
                    "ev",
                    Some(PutOptions::new().with_lease(lease.id())),
                )]);
            txn(c, log, "leased create", event).await;
        }
        get(c, log, "/registry/", Some(GetOptions::new().with_prefix())).await;
    }

    pub async fn general_txns(c: &mut Client, log: &mut Log) {
        put(c, log, "/t/a", "1", None).await;
        put(c, log, "/t/b", "2", None).await;
        let multi = Txn::new()
            .when([
                Compare::value("/t/a", CompareOp::Equal, "1"),
                Compare::version("/t/b", CompareOp::Greater, 0),
                Compare::create_revision("/t/a", CompareOp::Less, 10),
            ])
            .and_then([
                TxnOp::put("/t/c", "3", None),
                TxnOp::put("/t/a", "1b", Some(PutOptions::new().with_prev_key())),
                TxnOp::get("/t/", Some(GetOptions::new().with_prefix())),
                TxnOp::delete("/t/b", Some(DeleteOptions::new().with_prev_key())),
            ]);
        txn(c, log, "multi-op", multi).await;
        let failing = Txn::new()
            .when([Compare::value("/t/a", CompareOp::NotEqual, "1b")])
            .and_then([TxnOp::put("/t/x", "never", None)])
            .or_else([TxnOp::get("/t/a", None), TxnOp::get("/t/x", None)]);
        txn(c, log, "failing", failing).await;
        let range_compare = Txn::new()
            .when([Compare::version("/t/", CompareOp::Greater, 0).with_prefix()])
            .and_then([TxnOp::put("/t/all", "yes", None)]);
        txn(c, log, "range compare", range_compare).await;
        let missing_value = Txn::new()
            .when([Compare::value("/t/missing", CompareOp::NotEqual, "x")])
            .and_then([TxnOp::put("/t/y", "y", None)]);
        txn(c, log, "value compare on missing key", missing_value).await;
        let missing_version = Txn::new()
            .when([Compare::version("/t/missing", CompareOp::Equal, 0)])
            .and_then([TxnOp::put("/t/z", "z", None)]);
        txn(c, log, "version compare on missing key", missing_version).await;
        let nested = Txn::new().when([]).and_then([TxnOp::txn(
            Txn::new()
                .when([Compare::value("/t/z", CompareOp::Equal, "z")])
                .and_then([TxnOp::put("/t/n", "nested", None)]),
        )]);
        txn(c, log, "nested", nested).await;
        let duplicate =
            Txn::new().and_then([TxnOp::put("/t/d", "1", None), TxnOp::put("/t/d", "2", None)]);
        txn(c, log, "duplicate put", duplicate).await;
        let overlap = Txn::new().and_then([
            TxnOp::put("/t/a", "1", None),
            TxnOp::delete("/t/", Some(DeleteOptions::new().with_prefix())),
        ]);
        txn(c, log, "put inside deleted range", overlap).await;
        let read_only = Txn::new().and_then([TxnOp::get("/t/a", None)]);
        txn(c, log, "read-only", read_only).await;
        let lease_missing = Txn::new().and_then([TxnOp::put(
            "/t/l",
            "v",
            Some(PutOptions::new().with_lease(12345)),
        )]);
        txn(c, log, "missing lease", lease_missing).await;
        get(c, log, "/t/", Some(GetOptions::new().with_prefix())).await;
    }

    pub async fn compaction(c: &mut Client, log: &mut Log) {
        for i in 0..10 {
            put(c, log, "/c/k", &format!("v{i}"), None).await;
        }
        put(c, log, "/c/gone", "x", None).await;
        delete(c, log, "/c/gone", None).await;
        log.result("compact 6", c.compact(6, None).await, |r| {
            format!("rev{}", rev(r.header()))
        });
        get(c, log, "/c/k", Some(GetOptions::new().with_revision(5))).await;
        get(c, log, "/c/k", Some(GetOptions::new().with_revision(6))).await;
        get(c, log, "/c/k", Some(GetOptions::new().with_revision(8))).await;
        log.result("compact 6 again", c.compact(6, None).await, |r| {
            format!("rev{}", rev(r.header()))
        });
        log.result("compact 4", c.compact(4, None).await, |r| {
            format!("rev{}", rev(r.header()))
        });
        log.result("compact future", c.compact(100, None).await, |r| {
            format!("rev{}", rev(r.header()))
        });
        log.result("compact 13", c.compact(13, None).await, |r| {
            format!("rev{}", rev(r.header()))
        });
        get(c, log, "/c/", Some(GetOptions::new().with_prefix())).await;
        get(
            c,
            log,
            "/c/",
            Some(GetOptions::new().with_prefix().with_revision(13)),
        )
        .await;
        if let Ok(mut stream) = c
            .watch(
                "/c/",
                Some(WatchOptions::new().with_prefix().with_start_revision(2)),
            )
            .await
        {
            let created = stream.message().await.ok().flatten().map(|r| r.created());
            log.push(format!("watch created={created:?}"));
            watch_events(&mut stream, log, 1).await;
        }
    }

    pub async fn watches(c: &mut Client, log: &mut Log) {
        put(c, log, "/w/a", "1", None).await;
        put(c, log, "/w/b", "1", None).await;
        put(c, log, "/other", "1", None).await;
        put(c, log, "/w/a", "2", None).await;
        delete(c, log, "/w/b", None).await;
        // History replay with prev_kv.
        if let Ok(mut stream) = c
            .watch(
                "/w/",
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(1)
                        .with_prev_key(),
                ),
            )
            .await
        {
            watch_events(&mut stream, log, 4).await;
        }
        // Live events, filtered, from now on.
        let mut live = c
            .watch("/w/", Some(WatchOptions::new().with_prefix()))
            .await
            .ok();
        let mut no_delete = c
            .watch(
                "/w/",
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_filters([WatchFilterType::NoDelete]),
                ),
            )
            .await
            .ok();
        let mut single = c
            .watch("/w/c", Some(WatchOptions::new().with_prev_key()))
            .await
            .ok();
        for stream in [&mut live, &mut no_delete, &mut single]
            .into_iter()
            .flatten()
        {
            let created = stream.message().await.ok().flatten().map(|r| r.created());
            log.push(format!("watch created={created:?}"));
        }
        put(c, log, "/w/c", "1", None).await;
        put(c, log, "/w/c", "2", None).await;
        let txn_both =
            Txn::new().and_then([TxnOp::put("/w/d", "1", None), TxnOp::put("/w/e", "1", None)]);
        txn(c, log, "two keys", txn_both).await;
        delete(c, log, "/w/", Some(DeleteOptions::new().with_prefix())).await;
        put(c, log, "/w/f", "1", None).await;
        if let Some(stream) = live.as_mut() {
            watch_events(stream, log, 8).await;
        }
        if let Some(stream) = no_delete.as_mut() {
            watch_events(stream, log, 5).await;
        }
        if let Some(stream) = single.as_mut() {
            watch_events(stream, log, 3).await;
        }
        // A watch starting in the future (now: 11) waits for its revision.
        if let Ok(mut future) = c
            .watch(
                "/w/",
                Some(WatchOptions::new().with_prefix().with_start_revision(14)),
            )
            .await
        {
            let _ = future.message().await;
            for i in 0..5 {
                put(c, log, "/w/g", &format!("{i}"), None).await;
            }
            watch_events(&mut future, log, 3).await;
        }
    }

    pub async fn leases(c: &mut Client, log: &mut Log) {
        let Some(lease) = log.result("grant", c.lease_grant(60, None).await, |r| {
            format!("ttl{}", r.ttl())
        }) else {
            return;
        };
        let id = lease.id();
        put(c, log, "/l/a", "1", Some(PutOptions::new().with_lease(id))).await;
        put(c, log, "/l/b", "1", Some(PutOptions::new().with_lease(id))).await;
        put(c, log, "/l/c", "1", None).await;
        put(
            c,
            log,
            "/l/b",
            "2",
            Some(PutOptions::new().with_ignore_lease()),
        )
        .await;
        get(c, log, "/l/", Some(GetOptions::new().with_prefix())).await;
        let ttl = c
            .lease_time_to_live(
                id,
                Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()),
            )
            .await;
        log.result("ttl", ttl, |r| {
            // etcd lists a lease's keys in Go map order (random): compare sets.
            let mut keys: Vec<String> = r
                .keys()
                .iter()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect();
            keys.sort();
            format!(
                "granted{} keys{keys:?} remaining>50:{}",
                r.granted_ttl(),
                r.ttl() > 50
            )
        });
        let mut watch = c
            .watch(
                "/l/",
                Some(WatchOptions::new().with_prefix().with_prev_key()),
            )
            .await
            .ok();
        if let Some(stream) = watch.as_mut() {
            let _ = stream.message().await;
        }
        log.result("revoke", c.lease_revoke(id).await, |r| {
            format!("rev{}", rev(r.header()))
        });
        if let Some(stream) = watch.as_mut() {
            watch_events(stream, log, 2).await;
        }
        get(c, log, "/l/", Some(GetOptions::new().with_prefix())).await;
        log.result("revoke again", c.lease_revoke(id).await, |r| {
            format!("rev{}", rev(r.header()))
        });
        log.result(
            "ttl of revoked",
            c.lease_time_to_live(id, None).await,
            |r| format!("ttl{}", r.ttl()),
        );
        put(c, log, "/l/d", "1", Some(PutOptions::new().with_lease(id))).await;
        if let Ok((_, mut responses)) = c.lease_keep_alive(id).await {
            let first = responses.message().await;
            log.result("keepalive revoked", first, |r| {
                format!("ttl{:?}", r.as_ref().map(|r| r.ttl()))
            });
        }
        // A short lease expires by itself and deletes its keys.
        if let Some(short) = log.result("grant short", c.lease_grant(2, None).await, |r| {
            format!("ttl{}", r.ttl())
        }) {
            put(
                c,
                log,
                "/l/short",
                "1",
                Some(PutOptions::new().with_lease(short.id())),
            )
            .await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            get(c, log, "/l/short", None).await;
        }
    }
}
