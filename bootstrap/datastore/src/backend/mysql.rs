//! MySQL/MariaDB backend (InnoDB). Same model as PostgreSQL: writers in
//! several processes serialise on the revision row.

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, Row, TxOpts, Value};

use super::{Backend, Reader, WriteTxn, Writer};
use crate::error::{Error, Result};
use crate::store::types::{KeyRange, LogRow, RangeEnd, Revisions};

const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS kv (
        revision BIGINT NOT NULL,
        sub BIGINT NOT NULL,
        `key` VARBINARY(2048) NOT NULL,
        create_revision BIGINT NOT NULL,
        prev_revision BIGINT NOT NULL,
        version BIGINT NOT NULL,
        lease BIGINT NOT NULL,
        value LONGBLOB NOT NULL,
        PRIMARY KEY (revision, sub),
        UNIQUE KEY kv_key_revision (`key`, revision)
    ) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS live (`key` VARBINARY(2048) NOT NULL PRIMARY KEY, revision BIGINT NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS meta (name VARCHAR(64) NOT NULL PRIMARY KEY, value BIGINT NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS lease (id BIGINT NOT NULL PRIMARY KEY, ttl BIGINT NOT NULL) ENGINE=InnoDB",
    "INSERT IGNORE INTO meta (name, value) VALUES ('current_revision', 1), ('compacted_revision', 0)",
];

const COLUMNS: &str = "kv.revision, kv.sub, kv.`key`, kv.create_revision, kv.prev_revision, kv.version, kv.lease, kv.value";

pub struct Mysql {
    opts: Opts,
}

impl Mysql {
    pub fn new(dsn: &str) -> Result<Self> {
        let opts = Opts::from_url(dsn).map_err(|e| Error::InvalidEndpoint {
            endpoint: dsn.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self { opts })
    }

    fn connect(&self) -> Result<Conn> {
        Ok(Conn::new(self.opts.clone())?)
    }

    /// Creates the endpoint's database over a connection without one.
    fn create_database(&self) -> Result<()> {
        let Some(name) = self.opts.get_db_name().map(str::to_string) else {
            return Ok(());
        };
        let without = mysql::OptsBuilder::from_opts(self.opts.clone()).db_name(None::<String>);
        let mut admin = Conn::new(without)?;
        let quoted = format!("`{}`", name.replace('`', "``"));
        admin.query_drop(format!("CREATE DATABASE IF NOT EXISTS {quoted}"))?;
        tracing::info!(database = %name, "created the MySQL database");
        Ok(())
    }
}

/// MySQL's "Unknown database".
const ER_BAD_DB_ERROR: u16 = 1049;

impl Backend for Mysql {
    fn kind(&self) -> &'static str {
        "mysql"
    }

    fn init(&self) -> Result<()> {
        let mut conn = match Conn::new(self.opts.clone()) {
            Ok(conn) => conn,
            // As kine does: a named database that does not exist yet is
            // created, so an empty server is enough.
            Err(mysql::Error::MySqlError(err)) if err.code == ER_BAD_DB_ERROR => {
                self.create_database()?;
                self.connect()?
            }
            Err(err) => return Err(err.into()),
        };
        for statement in SCHEMA {
            conn.query_drop(statement)?;
        }
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn Reader>> {
        Ok(Box::new(MyConn {
            conn: self.connect()?,
            in_snapshot: false,
        }))
    }

    fn writer(&self) -> Result<Box<dyn Writer>> {
        Ok(Box::new(MyConn {
            conn: self.connect()?,
            in_snapshot: false,
        }))
    }
}

struct MyConn {
    conn: Conn,
    in_snapshot: bool,
}

fn int(row: &Row, index: usize) -> Result<i64> {
    row.get_opt::<i64, _>(index)
        .ok_or_else(|| Error::Corrupt(format!("missing column {index}")))?
        .map_err(|e| Error::Corrupt(e.to_string()))
}

fn bytes(row: &Row, index: usize) -> Result<Vec<u8>> {
    row.get_opt::<Vec<u8>, _>(index)
        .ok_or_else(|| Error::Corrupt(format!("missing column {index}")))?
        .map_err(|e| Error::Corrupt(e.to_string()))
}

fn row_of(row: &Row, offset: usize) -> Result<LogRow> {
    Ok(LogRow {
        revision: int(row, offset)?,
        sub: int(row, offset + 1)?,
        key: bytes(row, offset + 2)?,
        create_revision: int(row, offset + 3)?,
        prev_revision: int(row, offset + 4)?,
        version: int(row, offset + 5)?,
        lease: int(row, offset + 6)?,
        value: bytes(row, offset + 7)?,
    })
}

fn range_condition(range: &KeyRange, column: &str) -> String {
    match range.end {
        RangeEnd::Single => format!("{column} = ?"),
        RangeEnd::Unbounded => format!("{column} >= ?"),
        RangeEnd::Before(_) => format!("{column} >= ? AND {column} < ?"),
    }
}

fn range_params(range: &KeyRange, revision: Option<i64>) -> Vec<Value> {
    let mut params = vec![Value::Bytes(range.key.clone())];
    if let RangeEnd::Before(end) = &range.end {
        params.push(Value::Bytes(end.clone()));
    }
    if let Some(revision) = revision {
        params.push(Value::Int(revision));
    }
    params
}

fn range_sql(range: &KeyRange, at_current: bool, limit: i64, lock: bool) -> String {
    let limit = if limit > 0 {
        format!(" LIMIT {limit}")
    } else {
        String::new()
    };
    let lock = if lock { " FOR UPDATE" } else { "" };
    if at_current {
        let cond = range_condition(range, "live.`key`");
        format!(
            "SELECT {COLUMNS} FROM live JOIN kv ON kv.`key` = live.`key` AND kv.revision = live.revision \
             WHERE {cond} ORDER BY live.`key`{limit}{lock}"
        )
    } else {
        let cond = range_condition(range, "`key`");
        format!(
            "SELECT {COLUMNS} FROM kv JOIN (SELECT `key` AS k, MAX(revision) AS r FROM kv \
             WHERE {cond} AND revision <= ? GROUP BY `key`) latest \
             ON kv.`key` = latest.k AND kv.revision = latest.r WHERE kv.version > 0 ORDER BY kv.`key`{limit}"
        )
    }
}

fn revisions(conn: &mut impl Queryable, lock: bool) -> Result<Revisions> {
    let sql = if lock {
        "SELECT name, value FROM meta WHERE name IN ('current_revision', 'compacted_revision') FOR UPDATE"
    } else {
        "SELECT name, value FROM meta"
    };
    let rows: Vec<(String, i64)> = conn.query(sql)?;
    let mut revs = Revisions::default();
    for (name, value) in rows {
        match name.as_str() {
            "current_revision" => revs.current = value,
            "compacted_revision" => revs.compacted = value,
            _ => {}
        }
    }
    Ok(revs)
}

impl Reader for MyConn {
    fn begin(&mut self) -> Result<()> {
        self.conn
            .query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")?;
        self.in_snapshot = true;
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        if self.in_snapshot {
            self.in_snapshot = false;
            self.conn.query_drop("COMMIT")?;
        }
        Ok(())
    }

    fn revisions(&mut self) -> Result<Revisions> {
        revisions(&mut self.conn, false)
    }

    fn range(&mut self, range: &KeyRange, revision: i64, limit: i64) -> Result<Vec<LogRow>> {
        let at_current = revision >= revisions(&mut self.conn, false)?.current;
        let sql = range_sql(range, at_current, limit, false);
        let rows: Vec<Row> = self
            .conn
            .exec(sql, range_params(range, (!at_current).then_some(revision)))?;
        rows.iter().map(|r| row_of(r, 0)).collect()
    }

    fn count(&mut self, range: &KeyRange, revision: i64) -> Result<i64> {
        let at_current = revision >= revisions(&mut self.conn, false)?.current;
        let cond = range_condition(range, "`key`");
        let sql = if at_current {
            format!("SELECT COUNT(*) FROM live WHERE {cond}")
        } else {
            format!(
                "SELECT COUNT(*) FROM kv JOIN (SELECT `key` AS k, MAX(revision) AS r FROM kv \
                 WHERE {cond} AND revision <= ? GROUP BY `key`) latest \
                 ON kv.`key` = latest.k AND kv.revision = latest.r WHERE kv.version > 0"
            )
        };
        let count: Option<i64> = self
            .conn
            .exec_first(sql, range_params(range, (!at_current).then_some(revision)))?;
        count.ok_or_else(|| Error::Storage("COUNT returned no row".into()))
    }

    fn changes(&mut self, from: i64, to: i64, limit: i64) -> Result<Vec<(LogRow, Option<LogRow>)>> {
        let sql = format!(
            "SELECT {COLUMNS}, p.revision, p.sub, p.`key`, p.create_revision, p.prev_revision, p.version, p.lease, p.value \
             FROM kv LEFT JOIN kv p ON p.`key` = kv.`key` AND p.revision = kv.prev_revision AND p.version > 0 \
             WHERE kv.revision >= ? AND kv.revision <= ? ORDER BY kv.revision, kv.sub LIMIT ?"
        );
        let rows: Vec<Row> = self.conn.exec(sql, (from, to, limit))?;
        rows.iter()
            .map(|r| {
                let has_prev = !matches!(r.as_ref(8), Some(Value::NULL) | None);
                let prev = if has_prev { Some(row_of(r, 8)?) } else { None };
                Ok((row_of(r, 0)?, prev))
            })
            .collect()
    }

    fn size(&mut self) -> Result<(i64, i64)> {
        let row: Option<(i64, i64)> = self.conn.query_first(
            "SELECT CAST(COALESCE(SUM(data_length + index_length + data_free), 0) AS SIGNED), \
             CAST(COALESCE(SUM(data_length + index_length), 0) AS SIGNED) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name IN ('kv', 'live', 'meta', 'lease')",
        )?;
        Ok(row.unwrap_or((0, 0)))
    }

    fn leases(&mut self) -> Result<Vec<(i64, i64)>> {
        Ok(self.conn.query("SELECT id, ttl FROM lease")?)
    }

    fn leased_keys(&mut self) -> Result<Vec<(i64, Vec<u8>)>> {
        Ok(self.conn.query(
            "SELECT kv.lease, kv.`key` FROM live JOIN kv ON kv.`key` = live.`key` AND kv.revision = live.revision \
             WHERE kv.lease != 0",
        )?)
    }
}

impl Writer for MyConn {
    fn transaction(&mut self, body: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<()>) -> Result<()> {
        let mut tx = self.conn.start_transaction(TxOpts::default())?;
        body(&mut MyTxn { tx: &mut tx })?;
        tx.commit()?;
        Ok(())
    }

    fn reclaim(&mut self) -> Result<()> {
        // InnoDB reuses freed pages by itself.
        Ok(())
    }
}

struct MyTxn<'a, 'b> {
    tx: &'a mut mysql::Transaction<'b>,
}

impl WriteTxn for MyTxn<'_, '_> {
    fn lock_revisions(&mut self) -> Result<Revisions> {
        revisions(self.tx, true)
    }

    fn set_current_revision(&mut self, revision: i64) -> Result<()> {
        self.tx.exec_drop(
            "UPDATE meta SET value = ? WHERE name = 'current_revision'",
            (revision,),
        )?;
        Ok(())
    }

    fn set_compacted_revision(&mut self, revision: i64) -> Result<()> {
        self.tx.exec_drop(
            "UPDATE meta SET value = ? WHERE name = 'compacted_revision'",
            (revision,),
        )?;
        Ok(())
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<LogRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM live JOIN kv ON kv.`key` = live.`key` AND kv.revision = live.revision WHERE live.`key` = ?"
        );
        let row: Option<Row> = self.tx.exec_first(sql, (key.to_vec(),))?;
        row.map(|r| row_of(&r, 0)).transpose()
    }

    fn range(&mut self, range: &KeyRange) -> Result<Vec<LogRow>> {
        let rows: Vec<Row> = self
            .tx
            .exec(range_sql(range, true, 0, false), range_params(range, None))?;
        rows.iter().map(|r| row_of(r, 0)).collect()
    }

    fn append(&mut self, row: &LogRow) -> Result<()> {
        self.tx.exec_drop(
            "INSERT INTO kv (revision, sub, `key`, create_revision, prev_revision, version, lease, value) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.revision, row.sub, row.key.clone(), row.create_revision, row.prev_revision, row.version, row.lease, row.value.clone()),
        )?;
        if row.is_delete() {
            self.tx
                .exec_drop("DELETE FROM live WHERE `key` = ?", (row.key.clone(),))?;
        } else {
            self.tx.exec_drop(
                "INSERT INTO live (`key`, revision) VALUES (?, ?) ON DUPLICATE KEY UPDATE revision = VALUES(revision)",
                (row.key.clone(), row.revision),
            )?;
        }
        Ok(())
    }

    fn savepoint(&mut self) -> Result<()> {
        self.tx.query_drop("SAVEPOINT request")?;
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.tx.query_drop("ROLLBACK TO SAVEPOINT request")?;
        self.tx.query_drop("RELEASE SAVEPOINT request")?;
        Ok(())
    }

    fn release_savepoint(&mut self) -> Result<()> {
        self.tx.query_drop("RELEASE SAVEPOINT request")?;
        Ok(())
    }

    fn put_lease(&mut self, id: i64, ttl: i64) -> Result<()> {
        self.tx.exec_drop(
            "INSERT INTO lease (id, ttl) VALUES (?, ?) ON DUPLICATE KEY UPDATE ttl = VALUES(ttl)",
            (id, ttl),
        )?;
        Ok(())
    }

    fn delete_lease(&mut self, id: i64) -> Result<()> {
        self.tx.exec_drop("DELETE FROM lease WHERE id = ?", (id,))?;
        Ok(())
    }

    fn compact(&mut self, after: i64, upto: i64) -> Result<u64> {
        // MySQL cannot delete from a table it selects from in a subquery,
        // but it can join against a materialised derived table.
        self.tx.exec_drop(
            "DELETE kv FROM kv JOIN (SELECT `key` AS k, prev_revision AS r FROM kv \
             WHERE revision > ? AND revision <= ? AND prev_revision > 0) s ON kv.`key` = s.k AND kv.revision = s.r",
            (after, upto),
        )?;
        let superseded = self.tx.affected_rows();
        self.tx.exec_drop(
            "DELETE FROM kv WHERE revision > ? AND revision <= ? AND version = 0",
            (after, upto),
        )?;
        Ok(superseded + self.tx.affected_rows())
    }
}
