//! Events on the objects controllers manage. Failing to record one is
//! logged, never fatal.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

pub use kube::runtime::events::EventType as Type;

pub async fn publish<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    object: &K,
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
    if let Err(err) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(error = %err, reason, "cannot record event");
    }
}
