//! The watch fan-out: a stream wakes only for changes its watchers cover,
//! yet every stream stays complete and truthful; a stream whose client
//! stops reading falls behind and catches up from history without losing
//! or repeating an event.

use std::time::Duration;

use etcd_client::{Client, WatchOptions, WatchStream};

use crate::harness::{Running, Target, start_datastore, tcp_endpoint, test_store_config};

async fn watch(client: &mut Client, prefix: &str) -> WatchStream {
    let mut stream = client
        .watch(prefix, Some(WatchOptions::new().with_prefix()))
        .await
        .expect("watch");
    let created = stream.message().await.expect("stream").expect("created");
    assert!(created.created());
    stream
}

/// Event values received on `stream` until `count` arrived.
async fn values(stream: &mut WatchStream, count: usize) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .unwrap_or_else(|_| panic!("timed out after {} of {count} events", seen.len()))
            .expect("stream")
            .expect("message");
        for event in message.events() {
            let kv = event.kv().expect("kv");
            seen.push(String::from_utf8_lossy(kv.value()).into_owned());
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_catches_up_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_store_config();
    // A small fan-out queue, so that the stall overflows it.
    config.watch_buffer = 16;
    let datastore = start_datastore(
        crate::harness::endpoint_for(Target::Sqlite, dir.path()).await,
        config,
    )
    .await;
    let endpoint = tcp_endpoint(&datastore);
    let mut watcher = Client::connect([endpoint.as_str()], None)
        .await
        .expect("connect");
    let mut stream = watch(&mut watcher, "/stall/").await;
    let mut writer = Client::connect([endpoint.as_str()], None)
        .await
        .expect("connect");
    // Nobody reads the stream while these commit (one revision each): the
    // transport's buffers fill, the stream task blocks, its queue overflows.
    // Large values, so that the transport's windows fill quickly.
    const PUTS: usize = 400;
    let padding = "x".repeat(100 * 1024);
    for i in 0..PUTS {
        writer
            .put(format!("/stall/{}", i % 7), format!("{i} {padding}"), None)
            .await
            .expect("put");
    }
    let got: Vec<String> = values(&mut stream, PUTS)
        .await
        .into_iter()
        .map(|v| v.split(' ').next().unwrap_or_default().to_string())
        .collect();
    let expected: Vec<String> = (0..PUTS).map(|i| i.to_string()).collect();
    assert_eq!(got, expected, "every event exactly once, in order");
    datastore.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_hear_only_their_keys_and_progress_stays_truthful() {
    let running: Running = crate::harness::start(Target::Sqlite).await;
    // Like kube-apiserver: one connection and stream per resource prefix.
    let mut streams = Vec::new();
    for i in 0..24 {
        let mut client = running.client().await;
        let stream = watch(&mut client, &format!("/registry/kind{i}/")).await;
        streams.push((client, stream));
    }
    let mut writer = running.client().await;
    let mut last = 0;
    for n in 0..50 {
        let put = writer
            .put("/registry/kind3/x", n.to_string(), None)
            .await
            .expect("put");
        last = put.header().expect("header").revision();
    }
    let (_, busy) = &mut streams[3];
    let got = values(busy, 50).await;
    assert_eq!(got.last().map(String::as_str), Some("49"));
    // A quiet stream: no events, and asked for progress it reports the
    // latest revision (it is complete that far).
    let (_, quiet) = &mut streams[7];
    quiet.request_progress().await.expect("progress request");
    let message = tokio::time::timeout(Duration::from_secs(5), quiet.message())
        .await
        .expect("progress in time")
        .expect("stream")
        .expect("message");
    assert!(message.events().is_empty(), "no events for other keys");
    assert_eq!(message.watch_id(), -1);
    assert_eq!(message.header().expect("header").revision(), last);
    running.stop().await;
}
