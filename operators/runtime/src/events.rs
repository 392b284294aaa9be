//! Events on the objects operators manage (failing to record one is
//! logged, never fatal), and waiting for changes of watched objects.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::events::{Event, EventType, Recorder};

/// Waits for a change on `changes` or for `resync`, then lets a burst of
/// changes settle so that one pass handles them all.
pub async fn wait_for_change(mut changes: Pin<&mut impl Stream<Item = ()>>, resync: Duration) {
    let _ = tokio::time::timeout(resync, changes.next()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(Some(())) = tokio::time::timeout(Duration::from_millis(10), changes.next()).await {
    }
}

pub async fn publish(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.into()),
        action: reason.into(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, reference).await {
        tracing::warn!(error = %err, reason, "cannot record event");
    }
}
