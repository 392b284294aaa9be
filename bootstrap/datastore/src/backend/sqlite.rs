//! SQLite backend: WAL mode, fsync on every commit (synchronous=FULL), and
//! incremental auto-vacuum so that compaction gives space back.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Backend, Reader, WriteTxn, Writer};
use crate::error::Result;
use crate::store::types::{KeyRange, LogRow, RangeEnd, Revisions};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    revision INTEGER NOT NULL,
    sub INTEGER NOT NULL,
    key BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lease INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (revision, sub)
);
CREATE UNIQUE INDEX IF NOT EXISTS kv_key_revision ON kv (key, revision);
CREATE TABLE IF NOT EXISTS live (key BLOB PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lease (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('current_revision', 1), ('compacted_revision', 0);
";

const COLUMNS: &str = "kv.revision, kv.sub, kv.key, kv.create_revision, kv.prev_revision, kv.version, kv.lease, kv.value";

pub struct Sqlite {
    path: PathBuf,
}

impl Sqlite {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    fn open(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        // Room for every statement the writer and readers use (range SQL
        // varies with the range's shape and limit).
        conn.set_prepared_statement_cache_capacity(128);
        // One plan per statement, whatever the bound values: otherwise a
        // cached statement is re-parsed and re-planned at every execution
        // (its plan is marked as depending on the bound key), which was a
        // quarter of a commit's CPU. There are no statistics tables for
        // value-dependent plans to use anyway.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Keep the WAL from growing past this between checkpoints.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        Ok(conn)
    }
}

impl Backend for Sqlite {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn init(&self) -> Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let conn = Connection::open(&self.path)?;
        // auto_vacuum only takes effect before the first table is created,
        // and only persists once a page is written: same connection.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.execute_batch(SCHEMA)?;
        drop(conn);
        let conn = self.open()?;
        let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        if mode != 2 {
            tracing::warn!(path = %self.path.display(), "database was created without incremental auto-vacuum; compaction cannot shrink the file");
        }
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn Reader>> {
        Ok(Box::new(SqliteConn { conn: self.open()? }))
    }

    fn writer(&self) -> Result<Box<dyn Writer>> {
        Ok(Box::new(SqliteConn { conn: self.open()? }))
    }
}

struct SqliteConn {
    conn: Connection,
}

fn row_of(row: &Row<'_>, offset: usize) -> rusqlite::Result<LogRow> {
    Ok(LogRow {
        revision: row.get(offset)?,
        sub: row.get(offset + 1)?,
        key: row.get(offset + 2)?,
        create_revision: row.get(offset + 3)?,
        prev_revision: row.get(offset + 4)?,
        version: row.get(offset + 5)?,
        lease: row.get(offset + 6)?,
        value: row.get(offset + 7)?,
    })
}

/// SQL condition on `column` for a key range, with parameters ?1 (and ?2).
fn range_condition(range: &KeyRange, column: &str) -> (String, Vec<u8>) {
    match &range.end {
        RangeEnd::Single => (format!("{column} = ?1"), Vec::new()),
        RangeEnd::Unbounded => (format!("{column} >= ?1"), Vec::new()),
        RangeEnd::Before(end) => (format!("{column} >= ?1 AND {column} < ?2"), end.clone()),
    }
}

fn revisions(conn: &Connection) -> Result<Revisions> {
    let mut stmt = conn.prepare_cached("SELECT name, value FROM meta")?;
    let mut revs = Revisions::default();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let value: i64 = row.get(1)?;
        match name.as_str() {
            "current_revision" => revs.current = value,
            "compacted_revision" => revs.compacted = value,
            _ => {}
        }
    }
    Ok(revs)
}

fn query_rows(
    conn: &Connection,
    sql: &str,
    range: &KeyRange,
    extra: &[i64],
) -> Result<Vec<LogRow>> {
    let (_, end) = range_condition(range, "key");
    let mut stmt = conn.prepare_cached(sql)?;
    let mut values: Vec<rusqlite::types::Value> = vec![range.key.clone().into()];
    if matches!(range.end, RangeEnd::Before(_)) {
        values.push(end.into());
    }
    values.extend(extra.iter().map(|v| rusqlite::types::Value::Integer(*v)));
    let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| row_of(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn range_sql(range: &KeyRange, at_current: bool, limit: i64) -> String {
    let extra = if matches!(range.end, RangeEnd::Before(_)) {
        3
    } else {
        2
    };
    let limit = if limit > 0 {
        format!(" LIMIT {limit}")
    } else {
        String::new()
    };
    if at_current {
        let (cond, _) = range_condition(range, "live.key");
        format!(
            "SELECT {COLUMNS} FROM live JOIN kv ON kv.key = live.key AND kv.revision = live.revision \
             WHERE {cond} ORDER BY live.key{limit}"
        )
    } else {
        let (cond, _) = range_condition(range, "key");
        format!(
            "SELECT {COLUMNS} FROM kv JOIN (SELECT key AS k, MAX(revision) AS r FROM kv \
             WHERE {cond} AND revision <= ?{extra} GROUP BY key) latest \
             ON kv.key = latest.k AND kv.revision = latest.r WHERE kv.version > 0 ORDER BY kv.key{limit}"
        )
    }
}

impl Reader for SqliteConn {
    fn begin(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN DEFERRED")?;
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    fn revisions(&mut self) -> Result<Revisions> {
        revisions(&self.conn)
    }

    fn range(&mut self, range: &KeyRange, revision: i64, limit: i64) -> Result<Vec<LogRow>> {
        let at_current = revision >= revisions(&self.conn)?.current;
        let sql = range_sql(range, at_current, limit);
        let extra: &[i64] = if at_current { &[] } else { &[revision] };
        query_rows(&self.conn, &sql, range, extra)
    }

    fn count(&mut self, range: &KeyRange, revision: i64) -> Result<i64> {
        let current = revisions(&self.conn)?.current;
        let extra_idx = if matches!(range.end, RangeEnd::Before(_)) {
            3
        } else {
            2
        };
        let (sql, extra) = if revision >= current {
            let (cond, _) = range_condition(range, "key");
            (format!("SELECT COUNT(*) FROM live WHERE {cond}"), vec![])
        } else {
            let (cond, _) = range_condition(range, "key");
            (
                format!(
                    "SELECT COUNT(*) FROM kv JOIN (SELECT key AS k, MAX(revision) AS r FROM kv \
                     WHERE {cond} AND revision <= ?{extra_idx} GROUP BY key) latest \
                     ON kv.key = latest.k AND kv.revision = latest.r WHERE kv.version > 0"
                ),
                vec![revision],
            )
        };
        let mut values: Vec<rusqlite::types::Value> = vec![range.key.clone().into()];
        if let RangeEnd::Before(end) = &range.end {
            values.push(end.clone().into());
        }
        values.extend(extra.into_iter().map(rusqlite::types::Value::Integer));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        Ok(stmt.query_row(rusqlite::params_from_iter(values), |r| r.get(0))?)
    }

    fn changes(&mut self, from: i64, to: i64, limit: i64) -> Result<Vec<(LogRow, Option<LogRow>)>> {
        let sql = format!(
            "SELECT {COLUMNS}, p.revision, p.sub, p.key, p.create_revision, p.prev_revision, p.version, p.lease, p.value \
             FROM kv LEFT JOIN kv p ON p.key = kv.key AND p.revision = kv.prev_revision AND p.version > 0 \
             WHERE kv.revision >= ?1 AND kv.revision <= ?2 ORDER BY kv.revision, kv.sub LIMIT ?3"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![from, to, limit], |r| {
            let row = row_of(r, 0)?;
            let prev = match r.get::<_, Option<i64>>(8)? {
                Some(_) => Some(row_of(r, 8)?),
                None => None,
            };
            Ok((row, prev))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn size(&mut self) -> Result<(i64, i64)> {
        let page_size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        Ok((pages * page_size, (pages - free) * page_size))
    }

    fn leases(&mut self) -> Result<Vec<(i64, i64)>> {
        let mut stmt = self.conn.prepare_cached("SELECT id, ttl FROM lease")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn leased_keys(&mut self) -> Result<Vec<(i64, Vec<u8>)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kv.lease, kv.key FROM live JOIN kv ON kv.key = live.key AND kv.revision = live.revision \
             WHERE kv.lease != 0",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

impl Writer for SqliteConn {
    fn transaction(&mut self, body: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<()>) -> Result<()> {
        run_cached(&self.conn, "BEGIN IMMEDIATE")?;
        let result = body(&mut SqliteTxn { conn: &self.conn })
            .and_then(|()| run_cached(&self.conn, "COMMIT"));
        if result.is_err() && !self.conn.is_autocommit() {
            // Leave no half-done transaction behind for the next batch.
            if let Err(err) = run_cached(&self.conn, "ROLLBACK") {
                tracing::warn!(error = %err, "rolling back a failed datastore commit failed");
            }
        }
        result
    }

    fn reclaim(&mut self) -> Result<()> {
        // incremental_vacuum frees one page per step: run it to the end.
        let mut vacuum = self.conn.prepare("PRAGMA incremental_vacuum")?;
        let mut steps = vacuum.query([])?;
        while steps.next()?.is_some() {}
        drop(steps);
        drop(vacuum);
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

fn get_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM live JOIN kv ON kv.key = live.key AND kv.revision = live.revision WHERE live.key = ?1"
    )
}

/// Runs a statement without arguments from the statement cache: the writer
/// begins, commits and sets savepoints for every request, and parsing the
/// SQL each time was a visible share of a commit's CPU.
fn run_cached(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

struct SqliteTxn<'a> {
    conn: &'a Connection,
}

impl WriteTxn for SqliteTxn<'_> {
    fn lock_revisions(&mut self) -> Result<Revisions> {
        revisions(self.conn)
    }

    fn set_current_revision(&mut self, revision: i64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'current_revision'")?
            .execute([revision])?;
        Ok(())
    }

    fn set_compacted_revision(&mut self, revision: i64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'compacted_revision'")?
            .execute([revision])?;
        Ok(())
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<LogRow>> {
        Ok(self
            .conn
            .prepare_cached(&get_sql())?
            .query_row([key], |r| row_of(r, 0))
            .optional()?)
    }

    fn range(&mut self, range: &KeyRange) -> Result<Vec<LogRow>> {
        query_rows(self.conn, &range_sql(range, true, 0), range, &[])
    }

    fn append(&mut self, row: &LogRow) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO kv (revision, sub, key, create_revision, prev_revision, version, lease, value) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                row.revision,
                row.sub,
                row.key,
                row.create_revision,
                row.prev_revision,
                row.version,
                row.lease,
                row.value
            ])?;
        if row.is_delete() {
            self.conn
                .prepare_cached("DELETE FROM live WHERE key = ?1")?
                .execute([&row.key])?;
        } else {
            self.conn
                .prepare_cached("INSERT OR REPLACE INTO live (key, revision) VALUES (?1, ?2)")?
                .execute(params![row.key, row.revision])?;
        }
        Ok(())
    }

    fn savepoint(&mut self) -> Result<()> {
        run_cached(self.conn, "SAVEPOINT request")
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        run_cached(self.conn, "ROLLBACK TO request")?;
        run_cached(self.conn, "RELEASE request")
    }

    fn release_savepoint(&mut self) -> Result<()> {
        run_cached(self.conn, "RELEASE request")
    }

    fn put_lease(&mut self, id: i64, ttl: i64) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO lease (id, ttl) VALUES (?1, ?2)")?
            .execute([id, ttl])?;
        Ok(())
    }

    fn delete_lease(&mut self, id: i64) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM lease WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    fn compact(&mut self, after: i64, upto: i64) -> Result<u64> {
        let superseded = self
            .conn
            .prepare_cached(
                "DELETE FROM kv WHERE (key, revision) IN (SELECT key, prev_revision FROM kv \
                 WHERE revision > ?1 AND revision <= ?2 AND prev_revision > 0)",
            )?
            .execute([after, upto])?;
        let tombstones = self
            .conn
            .prepare_cached(
                "DELETE FROM kv WHERE revision > ?1 AND revision <= ?2 AND version = 0",
            )?
            .execute([after, upto])?;
        Ok((superseded + tombstones) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_statements_are_not_prepared_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = Sqlite::new(&dir.path().join("state.db"));
        backend.init().expect("init");
        let mut conn = SqliteConn {
            conn: backend.open().expect("open"),
        };
        for revision in 2..50 {
            let key = format!("/k/{}", revision % 5).into_bytes();
            conn.transaction(&mut |txn| {
                let prev = txn.get(&key)?;
                txn.append(&LogRow {
                    revision,
                    sub: 0,
                    key: key.clone(),
                    create_revision: prev.as_ref().map_or(revision, |p| p.create_revision),
                    prev_revision: prev.as_ref().map_or(0, |p| p.revision),
                    version: prev.as_ref().map_or(1, |p| p.version + 1),
                    lease: 0,
                    value: b"v".to_vec(),
                })?;
                txn.set_current_revision(revision)
            })
            .expect("commit");
        }
        let reprepares = conn
            .conn
            .prepare_cached(&get_sql())
            .expect("cached")
            .get_status(rusqlite::StatementStatus::RePrepare);
        assert_eq!(reprepares, 0, "the get statement was parsed again");
    }
}
