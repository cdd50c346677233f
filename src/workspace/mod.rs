//! The workspace: a directory holding `contimg.toml`, `pipeline.sqlite3`, `mosaics/` and `logs/`.
//!
//! Found like git finds a repository: `-C DIR`, else `CONTIMG_WORKSPACE`, else the current
//! directory and its parents. Invariant: `init` never overwrites an existing file, so running it
//! twice changes nothing.

pub mod config;
pub mod products;
pub mod session;

use std::path::{Path, PathBuf};

use config::{Config, ConfigError};
pub use session::Session;

/// The configuration file that marks a workspace.
pub const CONFIG_FILE: &str = "contimg.toml";

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(
        "not inside a contimg workspace (no {CONFIG_FILE} in {start} or any parent). \
         Create one with `contimg init DIR`, then run from inside it or pass `-C DIR`"
    )]
    NotFound { start: PathBuf },
    #[error(
        "{dir} is not a contimg workspace (no {CONFIG_FILE}); create it with `contimg init {dir}`"
    )]
    NotAWorkspace { dir: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Tier(#[from] crate::mosaic::tiers::TierError),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
}

/// An opened workspace: its root and its configuration.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub config: Config,
}

impl Workspace {
    /// Opens the workspace rooted at `dir` (which must hold `contimg.toml`).
    pub fn open(dir: &Path) -> Result<Workspace, WorkspaceError> {
        let cfg_path = dir.join(CONFIG_FILE);
        if !cfg_path.is_file() {
            return Err(WorkspaceError::NotAWorkspace {
                dir: dir.to_path_buf(),
            });
        }
        let root = std::fs::canonicalize(dir).map_err(|source| WorkspaceError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let config = config::load(&cfg_path)?;
        log::trace!("read {}", root.join(CONFIG_FILE).display());
        Ok(Workspace { root, config })
    }

    /// Finds the workspace: an explicit directory (from `-C` or `CONTIMG_WORKSPACE`), else the
    /// nearest directory at or above `cwd` holding `contimg.toml`.
    pub fn discover(explicit: Option<&Path>, cwd: &Path) -> Result<Workspace, WorkspaceError> {
        if let Some(dir) = explicit {
            return Workspace::open(dir);
        }
        let mut dir = Some(cwd);
        while let Some(d) = dir {
            if d.join(CONFIG_FILE).is_file() {
                return Workspace::open(d);
            }
            dir = d.parent();
        }
        Err(WorkspaceError::NotFound {
            start: cwd.to_path_buf(),
        })
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }

    pub fn mosaics_dir(&self) -> PathBuf {
        self.resolve(&self.config.paths.mosaics)
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.resolve(&self.config.paths.logs)
    }
}

/// What `init` did.
#[derive(Debug, serde::Serialize)]
pub struct InitReport {
    pub workspace: PathBuf,
    pub created: Vec<PathBuf>,
    pub existing: Vec<PathBuf>,
    pub database: PathBuf,
    pub schema_version: i64,
}

/// Creates a workspace in `dir` (created if missing). Existing files are kept as they are.
pub fn init(dir: &Path) -> Result<InitReport, WorkspaceError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WorkspaceError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let root = std::fs::canonicalize(dir).map_err(io(dir))?;
    let mut created = Vec::new();
    let mut existing = Vec::new();
    let cfg_path = root.join(CONFIG_FILE);
    if cfg_path.exists() {
        existing.push(cfg_path.clone());
    } else {
        crate::fsutil::write_atomic(&cfg_path, config::default_toml().as_bytes())
            .map_err(io(&cfg_path))?;
        created.push(cfg_path.clone());
    }
    let ws = Workspace::open(&root)?;
    for sub in [ws.mosaics_dir(), ws.logs_dir()] {
        if sub.is_dir() {
            existing.push(sub);
        } else {
            std::fs::create_dir_all(&sub).map_err(io(&sub))?;
            created.push(sub);
        }
    }
    let session = Session::of(ws);
    let target = session.target()?;
    // Backend branch: `init` reports the SQLite file it created or found; a server is not ours
    // to create.
    if let crate::store::Target::Sqlite(path) = &target {
        if path.exists() {
            existing.push(path.clone());
        } else {
            created.push(path.clone());
        }
    }
    let mut db = crate::store::Db::open(&target)?;
    Ok(InitReport {
        workspace: root,
        created,
        existing,
        database: PathBuf::from(db.label()),
        schema_version: db.schema_version()?,
    })
}
