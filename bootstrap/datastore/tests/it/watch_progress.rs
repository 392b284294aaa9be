//! Watch progress: periodic notifications for idle watchers that asked for
//! them, and stream-wide answers to progress requests (watch ID -1) at the
//! revision the stream has dispatched, which kube-apiserver's consistent
//! reads from its watch cache rely on.

use std::time::Duration;

use etcd_client::WatchOptions;

use crate::harness::{Target, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_notifications_and_requests() {
    let running = start(Target::Sqlite).await;
    let mut client = running.client().await;
    client.put("/p/a", "1", None).await.expect("put");
    let mut stream = client
        .watch(
            "/p/",
            Some(WatchOptions::new().with_prefix().with_progress_notify()),
        )
        .await
        .expect("watch");
    let created = stream.message().await.expect("stream").expect("created");
    assert!(created.created());
    let id = created.watch_id();
    // The harness sets a 1 s notify interval: an idle watcher hears within ~2 s.
    let notify = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("a progress notification in time")
        .expect("stream")
        .expect("message");
    assert_eq!((notify.watch_id(), notify.events().len()), (id, 0));
    assert_eq!(notify.header().expect("header").revision(), 2);
    let put = client.put("/p/b", "2", None).await.expect("put");
    let rev = put.header().expect("header").revision();
    stream.request_progress().await.expect("progress request");
    // The event comes first, then the stream-wide progress at its revision.
    let mut saw_event = false;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("answer in time")
            .expect("stream")
            .expect("message");
        if !message.events().is_empty() {
            saw_event = true;
            continue;
        }
        if message.watch_id() == -1 {
            assert!(saw_event, "progress must not overtake undelivered events");
            assert_eq!(message.header().expect("header").revision(), rev);
            break;
        }
    }
    running.stop().await;
}
