//! The PostgreSQL side of the store: contimg's own schema on a server, created if missing, and its
//! numbered migrations ([`super::PG_MIGRATIONS`]).
//!
//! Invariants: the version is the highest `version` in the schema's `schema_migrations (version,
//! name, applied_at)` table; a schema whose version is newer than this binary's is refused before
//! anything is written; creating the schema and each migration run in their own transaction under
//! the schema's advisory lock ([`lock_key`], which [`super::sql`]'s writes take too), the version
//! re-read inside it, so two processes opening a new schema at once apply each migration once.
//! Every connection returned has its `search_path` set to the schema.

use postgres::Client;

use super::{PG_MIGRATIONS, StoreError};
use crate::pg::{PgTarget, pg_error};

/// The advisory-lock key of a schema: FNV-1a of `contimg:` and its name, as PostgreSQL's bigint.
pub fn lock_key(schema: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "contimg:".bytes().chain(schema.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// The schema name as a quoted identifier (names are checked by [`super::check_schema`]).
fn quoted(schema: &str) -> String {
    format!("\"{schema}\"")
}

/// The newest migration recorded in `schema`, `None` when it has no migrations table yet.
pub fn recorded_version(
    client: &mut Client,
    shown: &str,
    schema: &str,
) -> Result<Option<i64>, StoreError> {
    let err = |e| StoreError::from(pg_error(shown, "reading the schema version", e));
    let table = format!("{}.schema_migrations", quoted(schema));
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .map_err(err)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let v: Option<i64> = client
        .query_one(&format!("SELECT max(version) FROM {table}"), &[])
        .map_err(err)?
        .get(0);
    Ok(Some(v.unwrap_or(0)))
}

/// Connects to `pg`, refuses a newer schema untouched, creates `schema` if missing, applies the
/// pending migrations and sets the `search_path`.
pub fn open(pg: &PgTarget, schema: &str) -> Result<Client, StoreError> {
    super::check_schema(schema)?;
    prepare(pg, pg.connect()?, schema)
}

/// [`open`] over a connection the caller made to `pg` (and may have checked first).
pub fn prepare(pg: &PgTarget, mut client: Client, schema: &str) -> Result<Client, StoreError> {
    super::check_schema(schema)?;
    let known = PG_MIGRATIONS.len() as i64;
    let too_new = |found| StoreError::PgTooNew {
        url: pg.shown.clone(),
        schema: schema.to_string(),
        found,
        known,
    };
    let found = recorded_version(&mut client, &pg.shown, schema)?;
    if let Some(v) = found.filter(|v| *v > known) {
        return Err(too_new(v));
    }
    client
        .batch_execute(&format!("SET search_path TO {}", quoted(schema)))
        .map_err(|e| pg_error(&pg.shown, "setting the search_path", e))?;
    if found == Some(known) {
        return Ok(client);
    }
    loop {
        let err = |action: String| move |e| StoreError::from(pg_error(&pg.shown, &action, e));
        let mut tx = client
            .transaction()
            .map_err(err(format!("migrating schema {schema}")))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
            .map_err(err(format!("locking schema {schema}")))?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {q}; CREATE TABLE IF NOT EXISTS {q}.schema_migrations \
             (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
            q = quoted(schema)
        ))
        .map_err(err(format!("creating schema {schema}")))?;
        // Read the version under the lock: another process may have migrated meanwhile.
        let version: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                &[],
            )
            .map_err(err(format!("reading the version of schema {schema}")))?
            .get(0);
        if version > known {
            return Err(too_new(version));
        }
        if version == known {
            tx.commit()
                .map_err(err(format!("creating schema {schema}")))?;
            return Ok(client);
        }
        let (name, sql) = PG_MIGRATIONS[version as usize];
        let action = format!("migration {name} of schema {schema}");
        tx.batch_execute(sql).map_err(err(action.clone()))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&(version + 1), &name, &crate::time::now_iso()],
        )
        .map_err(err(action.clone()))?;
        tx.commit().map_err(err(action))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_by_schema() {
        assert_ne!(lock_key("contimg"), lock_key("t_1"));
        assert_eq!(lock_key("contimg"), lock_key("contimg"));
    }
}
