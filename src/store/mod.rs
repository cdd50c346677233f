//! The database: naming it ([`Target`]: an SQLite file or a PostgreSQL URL and schema), opening
//! it with its numbered migrations, the portable handle the mosaic steps use ([`Db`], in [`sql`]),
//! and typed access to its tables.
//!
//! Invariants on SQLite: every connection runs with WAL, `synchronous=NORMAL`, a busy timeout and
//! foreign keys on; the schema version is `PRAGMA user_version` and equals the number of migrations
//! applied; a database whose version is newer than this binary knows is refused and never altered;
//! each migration runs in its own transaction together with its version bump. On PostgreSQL the
//! same rules hold in contimg's own schema, with a `schema_migrations` table for the version (see
//! [`pgschema`]), and every write transaction holds the schema's advisory lock (see [`sql`]).

pub mod images;
mod pgschema;
pub mod sql;

pub use sql::{Db, Sql, Value, pg_write_lock};

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Numbered migrations, embedded in the binary. Index i holds migration i+1.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_core", include_str!("../../migrations/0001_core.sql")),
    (
        "0002_queue",
        include_str!("../../migrations/0002_queue.sql"),
    ),
    (
        "0003_pipeline",
        include_str!("../../migrations/0003_pipeline.sql"),
    ),
    (
        "0004_notify",
        include_str!("../../migrations/0004_notify.sql"),
    ),
    (
        "0005_mosaic_hashes",
        include_str!("../../migrations/0005_mosaic_hashes.sql"),
    ),
    (
        "0006_plan_left_out",
        include_str!("../../migrations/0006_plan_left_out.sql"),
    ),
    (
        "0007_request_keys",
        include_str!("../../migrations/0007_request_keys.sql"),
    ),
];

/// Numbered PostgreSQL migrations, embedded in the binary. Index i holds migration i+1.
pub const PG_MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_core",
        include_str!("../../migrations/postgres/0001_core.sql"),
    ),
    (
        "0002_pipeline",
        include_str!("../../migrations/postgres/0002_pipeline.sql"),
    ),
    (
        "0003_plan_left_out",
        include_str!("../../migrations/postgres/0003_plan_left_out.sql"),
    ),
    (
        "0004_request_keys",
        include_str!("../../migrations/postgres/0004_request_keys.sql"),
    ),
];

/// The PostgreSQL schema contimg uses unless `[postgres] schema` or `CONTIMG_PG_SCHEMA` says
/// otherwise.
pub const DEFAULT_PG_SCHEMA: &str = "contimg";

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a writer waits for another process's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether an SQLite error only says that another connection held the database longer than
/// [`BUSY_TIMEOUT`] (SQLITE_BUSY / SQLITE_LOCKED): worth waiting for, never a reason to give up.
pub fn db_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path}: the database has schema version {found}, newer than this contimg understands ({known}); \
         it was written by a newer contimg. Upgrade contimg; the database was not changed"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "{path}: {why}, so it is not a contimg database (a truncated copy or a failed restore?); \
         restore it from a backup, or move it away to start a new empty database. Nothing was changed"
    )]
    NotADatabase { path: PathBuf, why: String },
    #[error("{path}: cannot open the database: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path}: migration {name} failed: {source}")]
    Migration {
        path: PathBuf,
        name: String,
        source: rusqlite::Error,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Postgres(#[from] crate::pg::PgError),
    #[error(
        "{url} schema {schema}: the database has schema version {found}, newer than this contimg \
         understands ({known}); it was written by a newer contimg. Upgrade contimg; the database was \
         not changed"
    )]
    PgTooNew {
        url: String,
        schema: String,
        found: i64,
        known: i64,
    },
    #[error(
        "PostgreSQL schema name {0:?} is not usable: use letters, digits and _ only, not starting \
         with a digit, at most 63 characters (set [postgres] schema or CONTIMG_PG_SCHEMA)"
    )]
    BadSchema(String),
    #[error("column {index}: expected {expected}, found {found}")]
    Column {
        index: usize,
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "{target}: this command does not work on PostgreSQL yet (ingest, images, plan, build and \
         qa do); give it an SQLite database with --db FILE"
    )]
    NotSupported { target: String },
}

impl StoreError {
    /// Whether the cause is what the user named or configured (exit 2) rather than failed work.
    /// A database file that is not one (empty, truncated, not a regular file) is a fault of the
    /// database, not of the command line: not input.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            StoreError::TooNew { .. }
                | StoreError::PgTooNew { .. }
                | StoreError::BadSchema(_)
                | StoreError::NotSupported { .. }
                | StoreError::Postgres(crate::pg::PgError::BadUrl { .. })
        )
    }

    /// Whether the PostgreSQL server could not be reached or the connection was lost.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, StoreError::Postgres(e) if e.is_connection_lost())
    }
}

/// Where contimg's records live: an SQLite file, or a schema on a PostgreSQL server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl Target {
    /// The database a name gives: a `postgres://`/`postgresql://` URL (in `schema`, which must be
    /// a plain identifier) or an SQLite path.
    pub fn new(name: &std::ffi::OsStr, schema: &str) -> Result<Target, StoreError> {
        match name.to_str().filter(|s| crate::pg::is_url(s)) {
            Some(url) => {
                check_schema(schema)?;
                Ok(Target::Postgres {
                    url: url.to_string(),
                    schema: schema.to_string(),
                })
            }
            None => Ok(Target::Sqlite(PathBuf::from(name))),
        }
    }
}

/// The display form: the SQLite path, or the URL with its password masked and the schema.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Sqlite(p) => write!(f, "{}", p.display()),
            Target::Postgres { url, schema } => {
                f.write_str(&pg_label(&crate::pg::mask_url(url), schema))
            }
        }
    }
}

/// How a PostgreSQL database is named in messages and manifests: masked URL and schema.
pub fn pg_label(shown_url: &str, schema: &str) -> String {
    format!("{shown_url} (schema {schema})")
}

/// Refuses a schema name that is not a plain identifier (it is spliced into SQL, quoted).
pub fn check_schema(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadSchema(name.to_string()))
    }
}

/// A PostgreSQL connection in contimg's `schema` at `url`: connected, migrated, `search_path`
/// set. For the pipeline layer's own statements.
pub fn pg_client(url: &str, schema: &str) -> Result<postgres::Client, StoreError> {
    let pg = crate::pg::PgTarget::parse(url)?;
    pgschema::open(&pg, schema)
}

/// [`pg_client`] over a connection the caller made to `pg` (the pipeline layer checks ABSURD's
/// schema on it before anything of contimg's is created).
pub fn pg_prepare(
    pg: &crate::pg::PgTarget,
    client: postgres::Client,
    schema: &str,
) -> Result<postgres::Client, StoreError> {
    pgschema::prepare(pg, client, schema)
}

/// An open database with its schema up to date.
pub struct Store {
    pub conn: Connection,
    pub path: PathBuf,
}

/// The recorded file of mosaic `id`: its path and sha256 (`None` if built before hashes were
/// recorded); `None` if there is no such mosaic.
pub fn mosaic_file(
    db: &mut dyn Sql,
    id: i64,
) -> Result<Option<(PathBuf, Option<String>)>, StoreError> {
    db.query_opt(
        "SELECT path, sha256 FROM mosaics WHERE id = ?1",
        crate::vals![id],
    )?
    .map(|r| Ok((PathBuf::from(r.get::<String>(0)?), r.get(1)?)))
    .transpose()
}

/// Refuses an existing database path that cannot hold a database; returns whether the file is
/// about to be created.
fn check_existing(path: &Path) -> Result<bool, StoreError> {
    let not_db = |why: String| StoreError::NotADatabase {
        path: path.to_path_buf(),
        why,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(_) => Ok(false), // let SQLite report what is wrong
        Ok(m) if !m.is_file() => Err(not_db("it is not a regular file".into())),
        Ok(m) if m.len() == 0 => Err(not_db("the file is empty (0 bytes)".into())),
        Ok(_) => Ok(false),
    }
}

/// Applies the connection settings every contimg connection uses.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// An existing path must be a regular file that is not empty: SQLite would silently turn a
    /// 0-byte file into a new empty database, and the work recorded in the lost one would be
    /// redone over its products. A new database file gets the configured file mode.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let created = check_existing(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        if created {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(crate::fsutil::file_mode());
            let _ = std::fs::set_permissions(path, mode);
        }
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // Check the version before touching anything (switching to WAL writes to the file).
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        configure(&conn).map_err(open_err)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing database for reading only: no migration and no write, so a reader never
    /// waits behind a writer's lock (WAL) and works on a read-only copy (a read-only directory is
    /// opened immutable). `Ok(None)` when the schema is older than this binary's: only a writing
    /// open may migrate it.
    pub fn open_read_only(path: &Path) -> Result<Option<Store>, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        if !path.is_file() {
            return Err(StoreError::NotFound(format!(
                "{}: no database here; create a workspace with `contimg init`, or give --db FILE",
                path.display()
            )));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let version = |conn: &Connection| -> rusqlite::Result<i64> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        };
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        let (conn, found) = match version(&conn) {
            Ok(v) => (conn, v),
            // A WAL database in a directory this process cannot write: no -shm can be made, so
            // read the file as it is.
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
                ) =>
            {
                drop(conn);
                let uri = format!("file:{}?immutable=1", uri_path(path));
                let conn = Connection::open_with_flags(uri, flags).map_err(open_err)?;
                let v = version(&conn).map_err(open_err)?;
                (conn, v)
            }
            Err(e) => return Err(open_err(e)),
        };
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            return Ok(None);
        }
        Ok(Some(Store {
            conn,
            path: path.to_path_buf(),
        }))
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        loop {
            let path = self.path.clone();
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Read the version inside the write lock: another process may have migrated meanwhile.
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version > SCHEMA_VERSION {
                return Err(StoreError::TooNew {
                    path,
                    found: version,
                    known: SCHEMA_VERSION,
                });
            }
            if version == SCHEMA_VERSION {
                tx.commit()?;
                return Ok(());
            }
            let (name, sql) = MIGRATIONS[version as usize];
            tx.execute_batch(sql)
                .map_err(|source| StoreError::Migration {
                    path: path.clone(),
                    name: name.to_string(),
                    source,
                })?;
            tx.pragma_update(None, "user_version", version + 1)?;
            tx.commit()?;
        }
    }
}

/// A path as the path part of an SQLite `file:` URI (`?`, `#` and `%` escaped).
fn uri_path(path: &Path) -> String {
    let abs = crate::fsutil::absolute(path);
    let mut out = String::new();
    for c in abs.to_string_lossy().chars() {
        match c {
            '?' | '#' | '%' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_postgres_and_shows_no_password() {
        let t = Target::new("postgresql://u:pw@h/db".as_ref(), "contimg").unwrap();
        assert_eq!(
            t,
            Target::Postgres {
                url: "postgresql://u:pw@h/db".into(),
                schema: "contimg".into()
            }
        );
        assert_eq!(t.to_string(), "postgresql://u:***@h/db (schema contimg)");
        let f = Target::new("postgres.sqlite3".as_ref(), "bad name").unwrap();
        assert_eq!(f, Target::Sqlite("postgres.sqlite3".into()));
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["contimg", "t_1", "_x", "Survey2"] {
            assert!(check_schema(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a\"b", "x; DROP", &"s".repeat(64)] {
            assert!(
                matches!(check_schema(bad), Err(StoreError::BadSchema(_))),
                "{bad}"
            );
        }
        assert!(Target::new("postgres://h/db".as_ref(), "a b").is_err());
    }
}
