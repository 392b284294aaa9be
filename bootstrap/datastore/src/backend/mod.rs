//! Storage backends. Each holds the revision log in SQL and knows nothing of
//! etcd semantics: the store above evaluates requests and hands the backend
//! rows to append. All calls are blocking; the store runs them on a
//! dedicated writer thread and a small reader pool.

mod endpoint;
mod mysql;
mod postgres;
mod sqlite;

pub use endpoint::Endpoint;

use crate::error::Result;
use crate::store::types::{KeyRange, LogRow, Revisions};

/// Opens connections to one database.
pub trait Backend: Send + Sync + 'static {
    /// Short name for logs and metrics ("sqlite", "postgres", "mysql").
    fn kind(&self) -> &'static str;
    /// Creates the schema if needed. Called once before anything else.
    fn init(&self) -> Result<()>;
    fn reader(&self) -> Result<Box<dyn Reader>>;
    fn writer(&self) -> Result<Box<dyn Writer>>;
}

/// Read-only access. Calls between `begin` and `end` see one consistent
/// snapshot of the database.
pub trait Reader: Send {
    fn begin(&mut self) -> Result<()>;
    fn end(&mut self) -> Result<()>;
    fn revisions(&mut self) -> Result<Revisions>;
    /// Live keys in `range` as of `revision` (at or past the current
    /// revision means now), ordered by key, at most
    /// `limit` (0 = no limit) rows, starting at the range start.
    fn range(&mut self, range: &KeyRange, revision: i64, limit: i64) -> Result<Vec<LogRow>>;
    fn count(&mut self, range: &KeyRange, revision: i64) -> Result<i64>;
    /// Rows with `from <= revision <= to`, in (revision, sub) order, at most
    /// `limit` rows; the second value is the previous row of each key, when
    /// it is still stored.
    fn changes(&mut self, from: i64, to: i64, limit: i64) -> Result<Vec<(LogRow, Option<LogRow>)>>;
    /// Database size on disk and the part of it holding data.
    fn size(&mut self) -> Result<(i64, i64)>;
    /// Persisted leases: (id, ttl seconds).
    fn leases(&mut self) -> Result<Vec<(i64, i64)>>;
    /// Live keys that carry a lease: (lease, key).
    fn leased_keys(&mut self) -> Result<Vec<(i64, Vec<u8>)>>;
}

/// The single writer. `transaction` runs `body` inside one database
/// transaction and commits it durably, or rolls it back when `body` fails.
pub trait Writer: Send {
    fn transaction(&mut self, body: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<()>) -> Result<()>;
    /// Returns freed space to the file system and truncates the WAL; cheap
    /// when there is nothing to do.
    fn reclaim(&mut self) -> Result<()>;
}

/// Operations inside one write transaction. Reads see the transaction's own
/// writes.
pub trait WriteTxn {
    /// Current revisions; locks the revision counter against other
    /// processes sharing the database until commit.
    fn lock_revisions(&mut self) -> Result<Revisions>;
    fn set_current_revision(&mut self, revision: i64) -> Result<()>;
    fn set_compacted_revision(&mut self, revision: i64) -> Result<()>;
    /// The live row of `key`, if any.
    fn get(&mut self, key: &[u8]) -> Result<Option<LogRow>>;
    /// Live rows in `range`, ordered by key.
    fn range(&mut self, range: &KeyRange) -> Result<Vec<LogRow>>;
    /// Appends a row and makes it the key's live row (or removes the key
    /// from the live set when the row is a delete).
    fn append(&mut self, row: &LogRow) -> Result<()>;
    fn savepoint(&mut self) -> Result<()>;
    fn rollback_to_savepoint(&mut self) -> Result<()>;
    fn release_savepoint(&mut self) -> Result<()>;
    fn put_lease(&mut self, id: i64, ttl: i64) -> Result<()>;
    fn delete_lease(&mut self, id: i64) -> Result<()>;
    /// Deletes rows with `after < revision <= upto` superseded at or before
    /// `upto`, and delete tombstones in that window. Returns rows removed.
    fn compact(&mut self, after: i64, upto: i64) -> Result<u64>;
}

pub fn sqlite_backend(path: &std::path::Path) -> sqlite::Sqlite {
    sqlite::Sqlite::new(path)
}

pub fn postgres_backend(dsn: &str) -> Result<postgres::Postgres> {
    postgres::Postgres::new(dsn)
}

pub fn mysql_backend(dsn: &str) -> Result<mysql::Mysql> {
    mysql::Mysql::new(dsn)
}

/// Rows with `from <= revision <= to` in whole revisions: about `limit`
/// rows, but a revision is never cut in two (one larger than `limit` comes
/// whole). Readers of history continue after the last revision returned;
/// an empty result means nothing is left up to `to`.
pub fn whole_revisions(
    reader: &mut dyn Reader,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<(LogRow, Option<LogRow>)>> {
    let mut rows = reader.changes(from, to, limit)?;
    if (rows.len() as i64) < limit {
        return Ok(rows);
    }
    let (Some(first), Some(last)) = (
        rows.first().map(|r| r.0.revision),
        rows.last().map(|r| r.0.revision),
    ) else {
        return Ok(rows);
    };
    if first == last {
        return reader.changes(last, last, i64::MAX);
    }
    rows.retain(|(row, _)| row.revision < last);
    Ok(rows)
}
