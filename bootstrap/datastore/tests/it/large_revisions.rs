//! A revision can hold more rows than one read of history (a delete of a
//! large prefix): watchers replaying history get all of it, once.

use etcd_client::{DeleteOptions, EventType, WatchOptions};

use crate::harness::{Target, start};

const KEYS: usize = 1500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_a_revision_larger_than_a_chunk() {
    let running = start(Target::Sqlite).await;
    let mut client = running.client().await;
    let first = client
        .put("/big/0000", "v", None)
        .await
        .expect("put")
        .header()
        .expect("header")
        .revision();
    for i in 1..KEYS {
        client
            .put(format!("/big/{i:04}"), "v", None)
            .await
            .expect("put");
    }
    let deleted = client
        .delete("/big/", Some(DeleteOptions::new().with_prefix()))
        .await
        .expect("delete");
    assert_eq!(deleted.deleted() as usize, KEYS);
    let mut stream = client
        .watch(
            "/big/",
            Some(WatchOptions::new().with_prefix().with_start_revision(first)),
        )
        .await
        .expect("watch");
    let (mut puts, mut deletes) = (0, 0);
    while puts + deletes < 2 * KEYS {
        let response = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
            .await
            .unwrap_or_else(|_| panic!("replay stopped after {puts} puts and {deletes} deletes"))
            .expect("stream")
            .expect("open");
        for event in response.events() {
            match event.event_type() {
                EventType::Put => puts += 1,
                EventType::Delete => deletes += 1,
            }
        }
    }
    assert_eq!((puts, deletes), (KEYS, KEYS));
    running.stop().await;
}
