//! Changes written by other processes sharing the database (several k3r
//! servers on one PostgreSQL or MySQL): read from the database and published
//! in revision order, before or between this process's own commits.

use crate::backend::{Reader, whole_revisions};
use crate::error::Result;
use crate::store::hub::{Batch, Hub};
use crate::store::lessor::Lessor;
use crate::store::types::Change;

const CHUNK: i64 = 1000;

/// Publishes every change with a revision in `(published, upto]` that the
/// hub has not published yet. Call with `hub.publishing()` held.
pub fn publish_missing(
    reader: &mut dyn Reader,
    hub: &Hub,
    lessor: &Lessor,
    upto: i64,
) -> Result<()> {
    loop {
        let from = hub.revisions().current + 1;
        if from > upto {
            return Ok(());
        }
        reader.begin()?;
        let rows = whole_revisions(reader, from, upto, CHUNK);
        reader.end()?;
        let rows = rows?;
        let Some(last) = rows.last().map(|(row, _)| row.revision) else {
            return Ok(());
        };
        let changes: Vec<Change> = rows
            .into_iter()
            .map(|(row, prev)| Change {
                row,
                prev: prev.map(|p| p.to_kv()),
            })
            .collect();
        for change in &changes {
            if let Some(prev) = change.prev.as_ref().filter(|p| p.lease != 0) {
                lessor.detach(prev.lease, &prev.key);
            }
            if !change.row.is_delete() && change.row.lease != 0 {
                lessor.attach(change.row.lease, &change.row.key);
            }
        }
        hub.publish(Batch {
            first: from,
            last,
            changes,
        });
    }
}
