//! PostgreSQL backend. Writers in several processes serialise on the
//! revision row (`SELECT … FOR UPDATE`), which keeps revisions gapless.

use postgres::error::SqlState;
use postgres::{Client, GenericClient, NoTls, Row};

use super::{Backend, Reader, WriteTxn, Writer};
use crate::error::{Error, Result};
use crate::store::types::{KeyRange, LogRow, RangeEnd, Revisions};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    revision BIGINT NOT NULL,
    sub BIGINT NOT NULL,
    key BYTEA NOT NULL,
    create_revision BIGINT NOT NULL,
    prev_revision BIGINT NOT NULL,
    version BIGINT NOT NULL,
    lease BIGINT NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (revision, sub)
);
CREATE UNIQUE INDEX IF NOT EXISTS kv_key_revision ON kv (key, revision);
CREATE TABLE IF NOT EXISTS live (key BYTEA PRIMARY KEY, revision BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS lease (id BIGINT PRIMARY KEY, ttl BIGINT NOT NULL);
INSERT INTO meta (name, value) VALUES ('current_revision', 1), ('compacted_revision', 0) ON CONFLICT DO NOTHING;
";

const COLUMNS: &str = "kv.revision, kv.sub, kv.key, kv.create_revision, kv.prev_revision, kv.version, kv.lease, kv.value";

pub struct Postgres {
    dsn: String,
}

impl Postgres {
    pub fn new(dsn: &str) -> Result<Self> {
        Ok(Self {
            dsn: dsn.to_string(),
        })
    }

    fn connect(&self) -> Result<Client> {
        Ok(Client::connect(&self.dsn, NoTls)?)
    }

    /// Creates the endpoint's database, connected to the server's
    /// `postgres` database with the same credentials.
    fn create_database(&self) -> Result<()> {
        let mut config: postgres::Config = self.dsn.parse()?;
        let Some(name) = config.get_dbname().map(str::to_string) else {
            return Ok(());
        };
        config.dbname("postgres");
        let mut admin = config.connect(NoTls)?;
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match admin.batch_execute(&format!("CREATE DATABASE {quoted}")) {
            Ok(()) => {
                tracing::info!(database = %name, "created the PostgreSQL database");
                Ok(())
            }
            // Another server created it first.
            Err(err) if err.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

impl Backend for Postgres {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn init(&self) -> Result<()> {
        let mut client = match Client::connect(&self.dsn, NoTls) {
            Ok(client) => client,
            // As kine does: a named database that does not exist yet is
            // created, so an empty server is enough.
            Err(err) if err.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
                self.create_database()?;
                self.connect()?
            }
            Err(err) => return Err(err.into()),
        };
        // Serialise schema creation between servers starting together.
        let mut tx = client.transaction()?;
        tx.batch_execute("SELECT pg_advisory_xact_lock(7033723)")?;
        tx.batch_execute(SCHEMA)?;
        tx.commit()?;
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn Reader>> {
        Ok(Box::new(PgConn {
            client: self.connect()?,
            in_snapshot: false,
        }))
    }

    fn writer(&self) -> Result<Box<dyn Writer>> {
        Ok(Box::new(PgConn {
            client: self.connect()?,
            in_snapshot: false,
        }))
    }
}

struct PgConn {
    client: Client,
    in_snapshot: bool,
}

fn row_of(row: &Row, offset: usize) -> Result<LogRow> {
    Ok(LogRow {
        revision: row.try_get(offset)?,
        sub: row.try_get(offset + 1)?,
        key: row.try_get(offset + 2)?,
        create_revision: row.try_get(offset + 3)?,
        prev_revision: row.try_get(offset + 4)?,
        version: row.try_get(offset + 5)?,
        lease: row.try_get(offset + 6)?,
        value: row.try_get(offset + 7)?,
    })
}

fn range_condition(range: &KeyRange, column: &str) -> String {
    match range.end {
        RangeEnd::Single => format!("{column} = $1"),
        RangeEnd::Unbounded => format!("{column} >= $1"),
        RangeEnd::Before(_) => format!("{column} >= $1 AND {column} < $2"),
    }
}

fn next_param(range: &KeyRange) -> usize {
    if matches!(range.end, RangeEnd::Before(_)) {
        3
    } else {
        2
    }
}

fn range_sql(range: &KeyRange, at_current: bool, limit: i64) -> String {
    let limit = if limit > 0 {
        format!(" LIMIT {limit}")
    } else {
        String::new()
    };
    if at_current {
        let cond = range_condition(range, "live.key");
        format!(
            "SELECT {COLUMNS} FROM live JOIN kv ON kv.key = live.key AND kv.revision = live.revision \
             WHERE {cond} ORDER BY live.key{limit}"
        )
    } else {
        let cond = range_condition(range, "key");
        let rev = next_param(range);
        format!(
            "SELECT {COLUMNS} FROM kv JOIN (SELECT key AS k, MAX(revision) AS r FROM kv \
             WHERE {cond} AND revision <= ${rev} GROUP BY key) latest \
             ON kv.key = latest.k AND kv.revision = latest.r WHERE kv.version > 0 ORDER BY kv.key{limit}"
        )
    }
}

fn query_range(
    client: &mut impl GenericClient,
    sql: &str,
    range: &KeyRange,
    revision: Option<i64>,
) -> Result<Vec<Row>> {
    let end = match &range.end {
        RangeEnd::Before(end) => Some(end.clone()),
        _ => None,
    };
    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&range.key];
    if let Some(end) = &end {
        params.push(end);
    }
    if let Some(revision) = &revision {
        params.push(revision);
    }
    Ok(client.query(sql, &params)?)
}

fn revisions(client: &mut impl GenericClient, lock: bool) -> Result<Revisions> {
    let sql = if lock {
        "SELECT name, value FROM meta WHERE name IN ('current_revision', 'compacted_revision') FOR UPDATE"
    } else {
        "SELECT name, value FROM meta"
    };
    let mut revs = Revisions::default();
    for row in client.query(sql, &[])? {
        let name: String = row.try_get(0)?;
        let value: i64 = row.try_get(1)?;
        match name.as_str() {
            "current_revision" => revs.current = value,
            "compacted_revision" => revs.compacted = value,
            _ => {}
        }
    }
    Ok(revs)
}

impl Reader for PgConn {
    fn begin(&mut self) -> Result<()> {
        self.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        self.in_snapshot = true;
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        if self.in_snapshot {
            self.in_snapshot = false;
            self.client.batch_execute("COMMIT")?;
        }
        Ok(())
    }

    fn revisions(&mut self) -> Result<Revisions> {
        revisions(&mut self.client, false)
    }

    fn range(&mut self, range: &KeyRange, revision: i64, limit: i64) -> Result<Vec<LogRow>> {
        let at_current = revision >= revisions(&mut self.client, false)?.current;
        let sql = range_sql(range, at_current, limit);
        let rows = query_range(
            &mut self.client,
            &sql,
            range,
            (!at_current).then_some(revision),
        )?;
        rows.iter().map(|r| row_of(r, 0)).collect()
    }

    fn count(&mut self, range: &KeyRange, revision: i64) -> Result<i64> {
        let at_current = revision >= revisions(&mut self.client, false)?.current;
        let cond = range_condition(range, "key");
        let sql = if at_current {
            format!("SELECT COUNT(*) FROM live WHERE {cond}")
        } else {
            let rev = next_param(range);
            format!(
                "SELECT COUNT(*) FROM kv JOIN (SELECT key AS k, MAX(revision) AS r FROM kv \
                 WHERE {cond} AND revision <= ${rev} GROUP BY key) latest \
                 ON kv.key = latest.k AND kv.revision = latest.r WHERE kv.version > 0"
            )
        };
        let rows = query_range(
            &mut self.client,
            &sql,
            range,
            (!at_current).then_some(revision),
        )?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Storage("COUNT returned no row".into()))?;
        Ok(row.try_get(0)?)
    }

    fn changes(&mut self, from: i64, to: i64, limit: i64) -> Result<Vec<(LogRow, Option<LogRow>)>> {
        let sql = format!(
            "SELECT {COLUMNS}, p.revision, p.sub, p.key, p.create_revision, p.prev_revision, p.version, p.lease, p.value \
             FROM kv LEFT JOIN kv p ON p.key = kv.key AND p.revision = kv.prev_revision AND p.version > 0 \
             WHERE kv.revision >= $1 AND kv.revision <= $2 ORDER BY kv.revision, kv.sub LIMIT $3"
        );
        let rows = self.client.query(&sql, &[&from, &to, &limit])?;
        rows.iter()
            .map(|r| {
                let prev = match r.try_get::<_, Option<i64>>(8)? {
                    Some(_) => Some(row_of(r, 8)?),
                    None => None,
                };
                Ok((row_of(r, 0)?, prev))
            })
            .collect()
    }

    fn size(&mut self) -> Result<(i64, i64)> {
        let row = self.client.query_one(
            "SELECT (pg_total_relation_size('kv') + pg_total_relation_size('live') + pg_total_relation_size('meta') \
             + pg_total_relation_size('lease'))::BIGINT",
            &[],
        )?;
        let size: i64 = row.try_get(0)?;
        Ok((size, size))
    }

    fn leases(&mut self) -> Result<Vec<(i64, i64)>> {
        let rows = self.client.query("SELECT id, ttl FROM lease", &[])?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn leased_keys(&mut self) -> Result<Vec<(i64, Vec<u8>)>> {
        let rows = self.client.query(
            "SELECT kv.lease, kv.key FROM live JOIN kv ON kv.key = live.key AND kv.revision = live.revision WHERE kv.lease != 0",
            &[],
        )?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}

impl Writer for PgConn {
    fn transaction(&mut self, body: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<()>) -> Result<()> {
        let mut tx = self.client.transaction()?;
        body(&mut PgTxn { tx: &mut tx })?;
        tx.commit()?;
        Ok(())
    }

    fn reclaim(&mut self) -> Result<()> {
        // autovacuum reclaims space in PostgreSQL.
        Ok(())
    }
}

struct PgTxn<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
}

impl WriteTxn for PgTxn<'_, '_> {
    fn lock_revisions(&mut self) -> Result<Revisions> {
        revisions(self.tx, true)
    }

    fn set_current_revision(&mut self, revision: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE meta SET value = $1 WHERE name = 'current_revision'",
            &[&revision],
        )?;
        Ok(())
    }

    fn set_compacted_revision(&mut self, revision: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE meta SET value = $1 WHERE name = 'compacted_revision'",
            &[&revision],
        )?;
        Ok(())
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<LogRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM live JOIN kv ON kv.key = live.key AND kv.revision = live.revision WHERE live.key = $1"
        );
        let rows = self.tx.query(&sql, &[&key])?;
        rows.first().map(|r| row_of(r, 0)).transpose()
    }

    fn range(&mut self, range: &KeyRange) -> Result<Vec<LogRow>> {
        let rows = query_range(self.tx, &range_sql(range, true, 0), range, None)?;
        rows.iter().map(|r| row_of(r, 0)).collect()
    }

    fn append(&mut self, row: &LogRow) -> Result<()> {
        self.tx.execute(
            "INSERT INTO kv (revision, sub, key, create_revision, prev_revision, version, lease, value) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&row.revision, &row.sub, &row.key, &row.create_revision, &row.prev_revision, &row.version, &row.lease, &row.value],
        )?;
        if row.is_delete() {
            self.tx
                .execute("DELETE FROM live WHERE key = $1", &[&row.key])?;
        } else {
            self.tx.execute(
                "INSERT INTO live (key, revision) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET revision = EXCLUDED.revision",
                &[&row.key, &row.revision],
            )?;
        }
        Ok(())
    }

    fn savepoint(&mut self) -> Result<()> {
        self.tx.batch_execute("SAVEPOINT request")?;
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.tx
            .batch_execute("ROLLBACK TO SAVEPOINT request; RELEASE SAVEPOINT request")?;
        Ok(())
    }

    fn release_savepoint(&mut self) -> Result<()> {
        self.tx.batch_execute("RELEASE SAVEPOINT request")?;
        Ok(())
    }

    fn put_lease(&mut self, id: i64, ttl: i64) -> Result<()> {
        self.tx.execute(
            "INSERT INTO lease (id, ttl) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET ttl = EXCLUDED.ttl",
            &[&id, &ttl],
        )?;
        Ok(())
    }

    fn delete_lease(&mut self, id: i64) -> Result<()> {
        self.tx.execute("DELETE FROM lease WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn compact(&mut self, after: i64, upto: i64) -> Result<u64> {
        let superseded = self.tx.execute(
            "DELETE FROM kv WHERE (key, revision) IN (SELECT key, prev_revision FROM kv \
             WHERE revision > $1 AND revision <= $2 AND prev_revision > 0)",
            &[&after, &upto],
        )?;
        let tombstones = self.tx.execute(
            "DELETE FROM kv WHERE revision > $1 AND revision <= $2 AND version = 0",
            &[&after, &upto],
        )?;
        Ok(superseded + tombstones)
    }
}
