//! The portable database handle: [`Db`] over an SQLite [`Store`] or a PostgreSQL connection in
//! contimg's own schema, with the small API the mosaic steps call (execute, query, a closure-based
//! write transaction), the same on both backends.
//!
//! Invariants:
//! * SQL is written once, with `?1`-style placeholders; on PostgreSQL they become `$1` (text in
//!   quotes is left alone). Parameters are [`Value`]s, which each backend binds to the column's
//!   actual type (an `i64` to INT4/INT8/FLOAT8/BOOL, a `bool` to BOOLEAN or an integer 0/1, …).
//! * Rows come back owned, each column as a [`Value`] read through typed getters, so the code that
//!   reads them does not know the backend.
//! * Writes go through [`Db::write`] and are serialised the same way on both: on SQLite it is a
//!   `BEGIN IMMEDIATE` transaction (one writer per file); on PostgreSQL every write transaction
//!   first takes `pg_advisory_xact_lock` on a key derived from the schema name
//!   ([`lock_key`](super::pgschema::lock_key)), so one writer per schema at a time, and a rule
//!   that reads then writes (idempotent ingest, a plan's name, recording a mosaic) sees no
//!   concurrent change between its read and its write.
//!   ([`Sql::execute`] on a bare [`Db`] runs outside that lock: the mosaic steps do not use it.)
//! * On PostgreSQL the connection's `search_path` is the contimg schema alone, so the same
//!   unqualified table names reach it.
//! * A lost PostgreSQL connection (a server restart) is reopened, waiting up to the target's
//!   patience (`CONTIMG_PG_CONNECT_WAIT`; a pipeline job's child gets 60 s), and what was cut is
//!   done again when that is safe: a read ([`Sql::query`] on a bare [`Db`]), or a write transaction
//!   that had not reached its COMMIT (the server rolled it back). A transaction cut during its
//!   COMMIT may or may not have committed, so that error is returned, as is any other.

use std::path::{Path, PathBuf};

use postgres::types::{IsNull, ToSql, Type};

use super::pgschema::lock_key;
use super::{Store, StoreError};
use crate::pg::{PgTarget, pg_error};

/// One parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    I64(i64),
    F64(f64),
    Text(String),
    Bool(bool),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::I64(_) => "integer",
            Value::F64(_) => "real",
            Value::Text(_) => "text",
            Value::Bool(_) => "boolean",
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::I64(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::I64(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::I64(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::F64(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
impl<T: Clone + Into<Value>> From<&Option<T>> for Value {
    fn from(v: &Option<T>) -> Value {
        v.clone().map_or(Value::Null, Into::into)
    }
}

/// Parameters for [`Sql`] calls: `vals![a, b, c]` is `&[Value::from(a), …]`.
#[macro_export]
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$($crate::store::sql::Value::from($v)),*][..] };
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as V};
        Ok(ToSqlOutput::Owned(match self {
            Value::Null => V::Null,
            Value::I64(v) => V::Integer(*v),
            Value::F64(v) => V::Real(*v),
            Value::Text(s) => V::Text(s.clone()),
            Value::Bool(b) => V::Integer(i64::from(*b)),
        }))
    }
}

fn is_text(ty: &Type) -> bool {
    [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
    ]
    .contains(ty)
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::I64(v), &Type::INT8) => v.to_sql(ty, out),
            (Value::I64(v), &Type::INT4) => i32::try_from(*v)?.to_sql(ty, out),
            (Value::I64(v), &Type::INT2) => i16::try_from(*v)?.to_sql(ty, out),
            (Value::I64(v), &Type::FLOAT8) => (*v as f64).to_sql(ty, out),
            (Value::I64(v), &Type::BOOL) => (*v != 0).to_sql(ty, out),
            (Value::F64(v), &Type::FLOAT8) => v.to_sql(ty, out),
            (Value::F64(v), &Type::FLOAT4) => (*v as f32).to_sql(ty, out),
            (Value::Bool(b), &Type::BOOL) => b.to_sql(ty, out),
            (Value::Bool(b), &Type::INT8) => i64::from(*b).to_sql(ty, out),
            (Value::Bool(b), &Type::INT4) => i32::from(*b).to_sql(ty, out),
            (Value::Text(s), t) if is_text(t) => s.as_str().to_sql(ty, out),
            (v, t) => {
                Err(format!("a {} value cannot be bound to a {t} parameter", v.kind()).into())
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column read back as the type the caller asked for.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
    const NAME: &'static str;
}

impl FromValue for i64 {
    const NAME: &'static str = "integer";
    fn from_value(v: &Value) -> Option<i64> {
        match v {
            Value::I64(x) => Some(*x),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }
}
impl FromValue for f64 {
    const NAME: &'static str = "real";
    fn from_value(v: &Value) -> Option<f64> {
        match v {
            Value::F64(x) => Some(*x),
            Value::I64(x) => Some(*x as f64),
            _ => None,
        }
    }
}
impl FromValue for bool {
    const NAME: &'static str = "boolean";
    fn from_value(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::I64(x) => Some(*x != 0),
            _ => None,
        }
    }
}
impl FromValue for String {
    const NAME: &'static str = "text";
    fn from_value(v: &Value) -> Option<String> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    const NAME: &'static str = T::NAME;
    fn from_value(v: &Value) -> Option<Option<T>> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One result row, owned.
#[derive(Debug, Clone)]
pub struct Row(Vec<Value>);

impl Row {
    /// Column `i` as `T`; a NULL read as a non-`Option` or a value of another kind is an error.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, StoreError> {
        let v = self.0.get(i).unwrap_or(&Value::Null);
        T::from_value(v).ok_or_else(|| StoreError::Column {
            index: i,
            expected: T::NAME,
            found: v.kind(),
        })
    }
}

/// The statements the mosaic steps run, the same on a [`Db`] and inside a [`Tx`].
pub trait Sql {
    /// Runs a statement; returns the number of rows changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;
    /// Runs a query and returns every row.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row; none is [`StoreError::NotFound`] naming the statement.
    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?
            .ok_or_else(|| StoreError::NotFound(format!("no row for: {sql}")))
    }
}

/// `?N` placeholders as PostgreSQL's `$N`, leaving quoted strings and identifiers untouched.
pub fn to_dollar(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '?') if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            (None, _) => {}
        }
        out.push(c);
    }
    out
}

/// Takes the schema's write lock inside `tx` (what [`Db::write`] does first on PostgreSQL), for code
/// that runs its own transaction on a connection in the schema (the pipeline layer, which spawns
/// ABSURD tasks in the same transaction).
pub fn pg_write_lock(
    tx: &mut impl postgres::GenericClient,
    schema: &str,
) -> Result<(), postgres::Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])?;
    Ok(())
}

fn sqlite_rows(
    stmt: &mut rusqlite::Statement<'_>,
    params: &[Value],
) -> Result<Vec<Row>, StoreError> {
    use rusqlite::types::ValueRef;
    let n = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            vals.push(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(x) => Value::I64(x),
                ValueRef::Real(x) => Value::F64(x),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(_) => {
                    return Err(StoreError::Column {
                        index: i,
                        expected: "a value",
                        found: "blob",
                    });
                }
            });
        }
        out.push(Row(vals));
    }
    Ok(out)
}

fn pg_row(r: &postgres::Row) -> Result<Row, postgres::Error> {
    let mut vals = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let t = col.type_();
        let v = if *t == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map(Value::I64)
        } else if *t == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?
                .map(|x| Value::I64(x.into()))
        } else if *t == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?
                .map(|x| Value::I64(x.into()))
        } else if *t == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map(Value::F64)
        } else if *t == Type::FLOAT4 {
            r.try_get::<_, Option<f32>>(i)?
                .map(|x| Value::F64(x.into()))
        } else if *t == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?.map(Value::Bool)
        } else {
            r.try_get::<_, Option<String>>(i)?.map(Value::Text)
        };
        vals.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(vals))
}

fn pg_params(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// A PostgreSQL connection in contimg's schema, migrated.
pub struct PgDb {
    pub client: postgres::Client,
    /// The URL with its password masked.
    pub shown: String,
    pub schema: String,
    /// Where a lost connection is reopened (boxed: a parsed URL is large).
    pub target: Box<PgTarget>,
}

impl PgDb {
    /// A new connection in place of one the server dropped (see the module invariants).
    fn reopen(&mut self, what: &str) -> Result<(), StoreError> {
        log::warn!(
            "the connection to PostgreSQL at {} was lost during {what}; reconnecting",
            self.shown
        );
        self.client = super::pgschema::open(&self.target, &self.schema)?;
        log::info!("reconnected to PostgreSQL at {}", self.shown);
        Ok(())
    }
}

/// An open database of either backend, its schema up to date.
// One per command or worker thread, never in a collection: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Db {
    Sqlite(Store),
    Postgres(PgDb),
}

/// A write transaction of [`Db::write`].
pub enum Tx<'a> {
    Sqlite(rusqlite::Transaction<'a>),
    Postgres {
        tx: postgres::Transaction<'a>,
        shown: &'a str,
    },
}

impl Db {
    /// Opens (creating and migrating if needed) the database `target` names.
    pub fn open(target: &super::Target) -> Result<Db, StoreError> {
        match target {
            super::Target::Sqlite(path) => Ok(Db::Sqlite(Store::open(path)?)),
            super::Target::Postgres { url, schema } => {
                let pg = PgTarget::parse(url)?;
                let client = super::pgschema::open(&pg, schema)?;
                Ok(Db::Postgres(PgDb {
                    client,
                    shown: pg.shown.clone(),
                    schema: schema.clone(),
                    target: Box::new(pg),
                }))
            }
        }
    }

    /// [`Db::open`] for a command that only reads: an existing SQLite file is opened read-only
    /// (it never waits behind a writer and works on a read-only copy); a missing file, or a
    /// schema older than this binary's, gets the writing open (which creates or migrates it).
    /// A PostgreSQL database opens as usual.
    pub fn open_read_only(target: &super::Target) -> Result<Db, StoreError> {
        if let super::Target::Sqlite(path) = target
            && path.is_file()
            && let Some(store) = Store::open_read_only(path)?
        {
            return Ok(Db::Sqlite(store));
        }
        Db::open(target)
    }

    /// Whether a manifest's `database` (a [`Db::label`]) names this database: the same SQLite
    /// file by any path to it, or the same masked URL and schema.
    pub fn is_labelled(&self, label: &Path) -> bool {
        let canon =
            |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| crate::fsutil::absolute(p));
        let mine = PathBuf::from(self.label());
        match self {
            Db::Sqlite(_) => canon(label) == canon(&mine),
            Db::Postgres(_) => label == mine,
        }
    }

    /// What manifests record as the database: the SQLite file's absolute path, or the masked
    /// URL and the schema (see [`super::Target::label`]).
    pub fn label(&self) -> String {
        match self {
            Db::Sqlite(s) => crate::fsutil::absolute(&s.path)
                .to_string_lossy()
                .into_owned(),
            Db::Postgres(p) => super::pg_label(&p.shown, &p.schema),
        }
    }

    /// The schema version: `PRAGMA user_version`, or the newest migration recorded.
    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        match self {
            Db::Sqlite(s) => s.schema_version(),
            Db::Postgres(p) => {
                super::pgschema::recorded_version(&mut p.client, &p.shown, &p.schema)
                    .map(|v| v.unwrap_or(0))
            }
        }
    }

    /// Runs `f` in one write transaction (see the module invariants): committed when `f`
    /// returns `Ok`, rolled back when it returns `Err`. On PostgreSQL `f` runs again, on a new
    /// connection, when the connection was lost before the COMMIT.
    pub fn write<T, E: From<StoreError>>(
        &mut self,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Db::Sqlite(s) => {
                let tx = s
                    .conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(StoreError::from)?;
                let mut tx = Tx::Sqlite(tx);
                let out = f(&mut tx)?;
                if let Tx::Sqlite(tx) = tx {
                    tx.commit().map_err(StoreError::from)?;
                }
                Ok(out)
            }
            Db::Postgres(p) => loop {
                match pg_transaction(p, &mut f) {
                    Ok(out) => return Ok(out),
                    // Cut before the COMMIT: the server rolled it back, so it is done again.
                    Err((_, Stage::Body)) if p.client.is_closed() => {
                        p.reopen("a write transaction")?;
                    }
                    Err((e, _)) => return Err(e),
                }
            },
        }
    }
}

/// Where a PostgreSQL write transaction stopped.
enum Stage {
    /// Before its COMMIT was sent: nothing of it is kept.
    Body,
    /// At its COMMIT: it may or may not have committed.
    Commit,
}

/// One try of [`Db::write`]'s transaction on PostgreSQL.
fn pg_transaction<T, E: From<StoreError>>(
    p: &mut PgDb,
    f: &mut impl FnMut(&mut Tx<'_>) -> Result<T, E>,
) -> Result<T, (E, Stage)> {
    let shown = p.shown.as_str();
    let err = |e| E::from(StoreError::from(pg_error(shown, "a write transaction", e)));
    let mut tx = p.client.transaction().map_err(|e| (err(e), Stage::Body))?;
    pg_write_lock(&mut tx, &p.schema).map_err(|e| (err(e), Stage::Body))?;
    let mut tx = Tx::Postgres { tx, shown };
    let out = f(&mut tx).map_err(|e| (e, Stage::Body))?;
    if let Tx::Postgres { tx, .. } = tx {
        tx.commit().map_err(|e| (err(e), Stage::Commit))?;
    }
    Ok(out)
}

impl Sql for Db {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        match self {
            Db::Sqlite(s) => Ok(s
                .conn
                .execute(sql, rusqlite::params_from_iter(params.iter()))?
                as u64),
            Db::Postgres(p) => p
                .client
                .execute(&to_dollar(sql), &pg_params(params))
                .map_err(|e| pg_error(&p.shown, "a statement", e).into()),
        }
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        match self {
            Db::Sqlite(s) => sqlite_rows(&mut *s.conn.prepare_cached(sql)?, params),
            Db::Postgres(p) => loop {
                match p.client.query(&to_dollar(sql), &pg_params(params)) {
                    Ok(rows) => {
                        return rows
                            .iter()
                            .map(pg_row)
                            .collect::<Result<_, _>>()
                            .map_err(|e| pg_error(&p.shown, "a query", e).into());
                    }
                    // A read is safe to repeat on a new connection.
                    Err(_) if p.client.is_closed() => p.reopen("a query")?,
                    Err(e) => return Err(pg_error(&p.shown, "a query", e).into()),
                }
            },
        }
    }
}

impl Sql for Tx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        match self {
            Tx::Sqlite(tx) => {
                Ok(tx.execute(sql, rusqlite::params_from_iter(params.iter()))? as u64)
            }
            Tx::Postgres { tx, shown } => tx
                .execute(&to_dollar(sql), &pg_params(params))
                .map_err(|e| pg_error(shown, "a statement", e).into()),
        }
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        match self {
            Tx::Sqlite(tx) => sqlite_rows(&mut *tx.prepare_cached(sql)?, params),
            Tx::Postgres { tx, shown } => tx
                .query(&to_dollar(sql), &pg_params(params))
                .and_then(|rows| rows.iter().map(pg_row).collect())
                .map_err(|e| pg_error(shown, "a query", e).into()),
        }
    }
}

/// [`Sql`] over an SQLite connection someone else owns (the pipeline's queue connection, or a
/// transaction already open on it).
pub struct SqliteRef<'a>(pub &'a rusqlite::Connection);

impl Sql for SqliteRef<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        Ok(self
            .0
            .execute(sql, rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        sqlite_rows(&mut *self.0.prepare_cached(sql)?, params)
    }
}

/// [`Sql`] inside a PostgreSQL transaction someone else opened (and locked: see
/// [`pg_write_lock`]); `shown` is the masked URL for messages.
pub struct PgTxRef<'a, 'b> {
    pub tx: &'a mut postgres::Transaction<'b>,
    pub shown: &'a str,
}

impl Sql for PgTxRef<'_, '_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        self.tx
            .execute(&to_dollar(sql), &pg_params(params))
            .map_err(|e| pg_error(self.shown, "a statement", e).into())
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        self.tx
            .query(&to_dollar(sql), &pg_params(params))
            .and_then(|rows| rows.iter().map(pg_row).collect())
            .map_err(|e| pg_error(self.shown, "a query", e).into())
    }
}

/// A connection that also runs write transactions, as an object (for code that takes either
/// backend through `&mut dyn Writer`): [`Db::write`], or `BEGIN IMMEDIATE` on a borrowed SQLite
/// connection.
pub trait Writer: Sql {
    /// Runs `f` in one write transaction: committed when it returns `Ok`.
    fn write_dyn(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
}

impl Writer for Db {
    fn write_dyn(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.write(|tx| f(tx))
    }
}

impl Writer for SqliteRef<'_> {
    fn write_dyn(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let tx =
            rusqlite::Transaction::new_unchecked(self.0, rusqlite::TransactionBehavior::Immediate)?;
        f(&mut SqliteRef(&tx))?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            to_dollar("SELECT '?1', \"a?2\" FROM t WHERE a = ?1 AND b = ?12 AND c ? 'k'"),
            "SELECT '?1', \"a?2\" FROM t WHERE a = $1 AND b = $12 AND c ? 'k'"
        );
        assert_eq!(to_dollar("'it''s ?1' || ?2"), "'it''s ?1' || $2");
    }

    #[test]
    fn rows_read_as_the_asked_type() {
        let row = Row(vec![Value::I64(1), Value::Null, Value::Text("x".into())]);
        assert!(row.get::<bool>(0).unwrap());
        assert_eq!(row.get::<f64>(0).unwrap(), 1.0);
        assert_eq!(row.get::<Option<String>>(1).unwrap(), None);
        assert!(row.get::<String>(1).is_err());
        assert!(row.get::<i64>(2).is_err());
    }
}
