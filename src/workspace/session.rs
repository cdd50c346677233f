//! One command's view of where it works: the workspace found once, `contimg.toml` read once, the
//! database it names (or `--db`), the tiers and the pipelines in force, each resolved once.
//!
//! Every subcommand gets one [`Session`]; nothing above this module opens a database or reads the
//! configuration itself, and nothing above it names the store's or the queue's types: the handles
//! a command holds ([`Db`], [`Target`]) are re-exported here.
//!
//! Invariants: `contimg.toml` is read at most once per session (the first call that needs it;
//! `-vv` logs "read PATH" when it is); a command that needs no workspace (an SQLite `--db`,
//! `tiers` outside a workspace) never fails for the lack of one; whether a database name is a
//! PostgreSQL URL or an SQLite path is decided in [`Session::target_of`] only.

use std::cell::OnceCell;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::config::PostgresConfig;
use super::{Workspace, WorkspaceError};
use crate::mosaic::tiers::Tier;
use crate::pipeline::def::NamedPipeline;
pub use crate::store::images::{ImageFilter, ImageRecord};
pub use crate::store::{Db, StoreError, Target};

/// The workspace, database and settings of one command (see the module's invariants).
#[derive(Debug, Default)]
pub struct Session {
    /// `-C DIR` / `CONTIMG_WORKSPACE`.
    workspace_arg: Option<PathBuf>,
    /// `--db FILE|URL` / `CONTIMG_DB`.
    db_arg: Option<PathBuf>,
    /// The workspace once looked for: `None` when there is none (no `-C` and no `contimg.toml`
    /// at or above the current directory). A failed look is not kept (the command ends on it).
    workspace: OnceCell<Option<Workspace>>,
    tiers: OnceCell<Vec<Tier>>,
    pipelines: OnceCell<Vec<NamedPipeline>>,
}

impl Session {
    pub fn new(workspace_arg: Option<PathBuf>, db_arg: Option<PathBuf>) -> Session {
        Session {
            workspace_arg,
            db_arg,
            ..Session::default()
        }
    }

    /// A session over a workspace already opened (`init`'s).
    pub fn of(ws: Workspace) -> Session {
        let session = Session::new(Some(ws.root.clone()), None);
        let _ = session.workspace.set(Some(ws));
        session
    }

    /// The directory `-C` named, if any.
    pub fn workspace_arg(&self) -> Option<&Path> {
        self.workspace_arg.as_deref()
    }

    /// Whether `--db` (or `CONTIMG_DB`) named the database.
    pub fn has_db_arg(&self) -> bool {
        self.db_arg.is_some()
    }

    fn cwd() -> Result<PathBuf, WorkspaceError> {
        std::env::current_dir().map_err(|source| WorkspaceError::Io {
            path: PathBuf::from("."),
            source,
        })
    }

    /// The workspace if there is one (`None` outside any), found like git finds a repository.
    /// A workspace that is named but unusable (a `-C` without `contimg.toml`, an invalid
    /// configuration) is an error. The first call reads `contimg.toml`, sets the file mode of
    /// what contimg writes and warns about settings no longer used.
    pub fn find_workspace(&self) -> Result<Option<&Workspace>, WorkspaceError> {
        if let Some(ws) = self.workspace.get() {
            return Ok(ws.as_ref());
        }
        let found = match Workspace::discover(self.workspace_arg.as_deref(), &Self::cwd()?) {
            Ok(ws) => Some(ws),
            Err(WorkspaceError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        if let Some(ws) = &found {
            // Checked when the configuration was loaded.
            if let Ok(mode) = ws.config.files.mode_bits() {
                crate::fsutil::set_file_mode(mode);
            }
            for w in ws.config.qa.deprecations() {
                log::warn!("{}", w.trim_start_matches("warning: "));
            }
        }
        Ok(self.workspace.get_or_init(|| found).as_ref())
    }

    /// The workspace; outside one, an error saying how to make or name one.
    pub fn workspace(&self) -> Result<&Workspace, WorkspaceError> {
        self.find_workspace()?.ok_or_else(|| match Self::cwd() {
            Ok(start) => WorkspaceError::NotFound { start },
            Err(e) => e,
        })
    }

    /// The `[postgres]` settings (the workspace's, else the defaults) with the environment's
    /// overrides (`CONTIMG_PG_SCHEMA`, `CONTIMG_ABSURD_QUEUE`).
    pub fn postgres(&self) -> Result<PostgresConfig, WorkspaceError> {
        let cfg = self
            .find_workspace()?
            .map(|ws| ws.config.postgres.clone())
            .unwrap_or_default();
        Ok(cfg.with_env())
    }

    /// The database a name gives: a `postgres://` URL (in the schema of `[postgres]` or
    /// `CONTIMG_PG_SCHEMA`), else an SQLite file, relative to `base` when given. The one place
    /// that tells a URL from a path.
    pub fn target_of(&self, name: &OsStr, base: Option<&Path>) -> Result<Target, WorkspaceError> {
        // Backend branch: the one place that tells a URL from a path.
        if name.to_str().is_some_and(crate::pg::is_url) {
            return Ok(Target::new(name, &self.postgres()?.schema)?);
        }
        let path = Path::new(name);
        Ok(Target::Sqlite(match base {
            Some(b) if path.is_relative() => b.join(path),
            _ => path.to_path_buf(),
        }))
    }

    /// The database named by `--db`/`CONTIMG_DB` if given (no workspace needed for an SQLite
    /// file), else by the workspace's `[paths] database`.
    pub fn target(&self) -> Result<Target, WorkspaceError> {
        match &self.db_arg {
            Some(p) => self.target_of(p.as_os_str(), None),
            None => {
                let ws = self.workspace()?;
                self.target_of(ws.config.paths.database.as_os_str(), Some(&ws.root))
            }
        }
    }

    /// Where the pipelines are recorded: [`Session::target`] (an SQLite path made absolute, as
    /// jobs run elsewhere), and on PostgreSQL also the ABSURD queue (`[postgres] queue`,
    /// `CONTIMG_ABSURD_QUEUE`).
    pub fn pipeline_database(&self) -> Result<crate::pipeline::Database, WorkspaceError> {
        let pg = self.postgres()?;
        Ok(crate::pipeline::Database {
            // Backend branch: a file path must be absolute for jobs run in other directories;
            // a URL already is.
            target: match self.target()? {
                Target::Sqlite(path) => Target::Sqlite(crate::fsutil::absolute(&path)),
                pg => pg,
            },
            queue: pg.queue,
            accept_outside: pg.accept_outside,
            run_pipelines: pg.run_pipelines,
        })
    }

    /// The database of the mosaic steps (ingest, images, plan, build, qa) on either backend,
    /// created and migrated if needed.
    pub fn open_db(&self) -> Result<Db, WorkspaceError> {
        Ok(Db::open(&self.target()?)?)
    }

    /// [`Session::open_db`] for a command that only reads ([`Db::open_read_only`]).
    pub fn open_db_read_only(&self) -> Result<Db, WorkspaceError> {
        Ok(Db::open_read_only(&self.target()?)?)
    }

    /// The database a manifest records (`database` of a mosaic manifest), opened, when it is an
    /// SQLite file; `None` for a PostgreSQL URL (a manifest holds no password: the caller opens
    /// its own database and compares names).
    pub fn open_recorded(&self, database: &Path) -> Result<Option<Db>, WorkspaceError> {
        // Backend branch: a manifest names a file fully but a server without its password.
        match self.target_of(database.as_os_str(), None)? {
            sqlite @ Target::Sqlite(_) => Ok(Some(Db::open(&sqlite)?)),
            Target::Postgres { .. } => Ok(None),
        }
    }

    /// The registered images a filter selects, read from the database read-only.
    pub fn images(&self, filter: &ImageFilter) -> Result<Vec<ImageRecord>, WorkspaceError> {
        Ok(crate::store::images::list(
            &mut self.open_db_read_only()?,
            filter,
        )?)
    }

    /// Where `build` writes mosaics: the workspace's `mosaics/`; without a workspace, `mosaics/`
    /// beside the SQLite file, or in the current directory for a PostgreSQL database.
    pub fn mosaics_dir(&self) -> Result<PathBuf, WorkspaceError> {
        if let Some(ws) = self.find_workspace()? {
            return Ok(ws.mosaics_dir());
        }
        // Backend branch: a file has a directory to put mosaics beside; a server has none.
        Ok(match self.target()? {
            Target::Sqlite(path) => path
                .parent()
                .map_or_else(|| PathBuf::from("mosaics"), |p| p.join("mosaics")),
            Target::Postgres { .. } => crate::fsutil::absolute(Path::new("mosaics")),
        })
    }

    /// The tiers in force: the workspace's configuration over the built-ins (built-ins alone
    /// when there is no workspace).
    pub fn tiers(&self) -> Result<&[Tier], WorkspaceError> {
        if let Some(t) = self.tiers.get() {
            return Ok(t);
        }
        let tiers = match self.find_workspace()? {
            Some(ws) => crate::mosaic::tiers::resolve(&ws.config.tiers)?,
            None => crate::mosaic::tiers::resolve(&Default::default())?,
        };
        Ok(self.tiers.get_or_init(|| tiers))
    }

    /// The pipelines in force in the workspace (the built-ins and its `[pipelines.NAME]`).
    pub fn pipelines(&self) -> Result<&[NamedPipeline], WorkspaceError> {
        if let Some(p) = self.pipelines.get() {
            return Ok(p);
        }
        let ws = self.workspace()?;
        let source = ws.root.join(super::CONFIG_FILE).display().to_string();
        let all = crate::pipeline::def::resolve(&ws.config.pipelines, &source);
        Ok(self.pipelines.get_or_init(|| all))
    }

    /// What a pipeline engine needs: the workspace, its database, logs, notification settings
    /// and pipelines; jobs run `exe`.
    pub fn engine_setup(&self, exe: PathBuf) -> Result<crate::pipeline::Setup, WorkspaceError> {
        let ws = self.workspace()?;
        Ok(crate::pipeline::Setup {
            exe,
            workspace: ws.root.clone(),
            products_dir: crate::fsutil::absolute(&ws.mosaics_dir()),
            database: self.pipeline_database()?,
            logs_dir: ws.logs_dir(),
            notify: ws.config.notify.clone(),
            pipelines: self.pipelines()?.to_vec(),
        })
    }
}

/// Opens an SQLite file read-only when it exists with the current schema, else for writing.
/// The sha256 `build` recorded for mosaic `id` (`None` when it was built before hashes were
/// recorded, or there is no such mosaic).
pub fn recorded_sha256(db: &mut Db, id: i64) -> Result<Option<String>, StoreError> {
    Ok(crate::store::mosaic_file(db, id)?.and_then(|(_, h)| h))
}

/// The id of the recorded mosaic whose file is `path`, if any (an unreadable database: none).
pub fn mosaic_at(db: &mut Db, path: &Path) -> Option<i64> {
    use crate::store::Sql as _;
    db.query_opt(
        "SELECT id FROM mosaics WHERE path = ?1",
        crate::vals![path.to_string_lossy().into_owned()],
    )
    .ok()
    .flatten()
    .and_then(|r| r.get::<i64>(0).ok())
}

/// The registered images a filter selects, from a database already open.
pub fn images_in(db: &mut Db, filter: &ImageFilter) -> Result<Vec<ImageRecord>, StoreError> {
    crate::store::images::list(db, filter)
}
