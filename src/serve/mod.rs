//! `contimg serve`: the HTTP API and the status page over a workspace's database (SQLite or
//! PostgreSQL), with embedded worker threads.
//!
//! The server is axum on a small tokio runtime. Every database call is blocking (rusqlite, the
//! synchronous postgres client) and runs on tokio's blocking pool, never on the async threads,
//! behind a semaphore ([`BLOCKING`] at once); a request that cannot get a permit or whose write
//! does not finish within [`WRITE_WAIT`] (an SQLite write lock held by another process) answers
//! `503` with `Retry-After`. The write goes on in the background and, when an `Idempotency-Key`
//! was given, is what a retry with that key finds: the key is recorded with the execution
//! ([`crate::pipeline::RequestKey`]) and looked up in the creating transaction, so it holds
//! across restarts and between requests racing each other.
//!
//! Runs are admitted through [`crate::pipeline::api::Engine::run_keyed`] with `detach` (create the
//! execution, never work it in the request), exactly as `contimg run --detach` admits them; the
//! embedded workers ([`Options::workers`] threads, [`Engine::work`]) or separate `contimg worker`
//! processes work the queue. SIGTERM/SIGINT ([`crate::pipeline::shutdown`]): the server stops
//! accepting, finishes the requests in flight, and the workers hand their jobs back to the queue.
//!
//! Invariants: no path from a request reaches the filesystem (files served are those the
//! database records, see [`crate::workspace::products`]); every JSON body and page is redacted
//! of the known secrets (database password, webhook URLs, tokens); bodies are at most
//! [`MAX_BODY`] bytes; no CORS headers are ever sent.

mod auth;
mod page;
mod routes;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};

use crate::pipeline::api::Engine;
use crate::pipeline::exec::ExecutionSummary;
use crate::pipeline::executions::{Access as StoreAccess, Backend, Executions};
use crate::pipeline::{
    Database, ExecutionManifest, NamedPipeline, PipelineError, Progress, Setup, StopWhen,
};
use crate::workspace::config::ServeConfig;
use crate::workspace::session::Target;

pub use auth::{Access, Token};

/// Largest request body accepted (bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// Blocking database calls in flight at once.
pub const BLOCKING: usize = 8;
/// How long a write (admitting a run, cancel, retry) on SQLite may take before the request
/// answers 503 (another process holds the write lock).
pub const WRITE_WAIT: Duration = Duration::from_millis(750);
/// The same on PostgreSQL, where there is no file lock to meet and a write opens a connection.
pub const PG_WRITE_WAIT: Duration = Duration::from_secs(30);
/// How long a listing of executions is reused: clients polling the listing share one read of
/// the database per this interval, whatever their number (a write through this server clears it).
pub const LISTING_TTL: Duration = Duration::from_millis(500);
/// How long a read may wait for a permit and run.
pub const READ_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to serve on {0} (beyond the loopback) without a token: set CONTIMG_API_TOKEN or \
         [serve] token_file in contimg.toml (and CONTIMG_API_READ_TOKEN / [serve] read_token_file \
         for readers), or listen on 127.0.0.1"
    )]
    NoToken(SocketAddr),
    #[error("{path}: cannot read the token: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: the token file is empty")]
    EmptyToken(PathBuf),
    #[error("[serve] pipelines names {0:?}, which is not a pipeline of this workspace")]
    UnknownPipeline(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
}

impl ServeError {
    /// True when the cause is the caller's input or settings (exit 2).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            ServeError::NoToken(_)
                | ServeError::EmptyToken(_)
                | ServeError::TokenFile { .. }
                | ServeError::UnknownPipeline(_)
                | ServeError::Bind { .. }
        )
    }
}

/// What `serve` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// Embedded worker threads (0: separate `contimg worker` processes serve the queue).
    pub workers: usize,
    pub lease: Duration,
    /// The workspace's `[serve]` settings; token files are relative to `root`.
    pub config: ServeConfig,
    pub root: PathBuf,
    /// The database of the mosaic steps (mosaics, QA, images).
    pub target: Target,
}

/// Progress of the engine's calls, to the log (stderr).
struct LogProgress;

impl Progress for LogProgress {
    fn info(&self, msg: &str) {
        log::info!("{msg}");
    }
    fn debug(&self, msg: &str) {
        log::debug!("{msg}");
    }
    fn warn(&self, msg: &str) {
        log::warn!("{}", msg.trim_start_matches("warning: "));
    }
}

/// What every request handler shares.
pub(crate) struct App {
    engine: Engine,
    /// The backend of `database`, for reading executions.
    backend: Arc<dyn Backend>,
    database: Database,
    target: Target,
    pipelines: Vec<NamedPipeline>,
    startable: Vec<String>,
    /// [`WRITE_WAIT`] or [`PG_WRITE_WAIT`].
    write_wait: Duration,
    access: Access,
    secrets: Vec<String>,
    pool: Arc<tokio::sync::Semaphore>,
    /// The latest listing of executions read ([`LISTING_TTL`]), and how many it asked for.
    listing: tokio::sync::Mutex<Option<Listing>>,
    /// Writes through this server so far (a cached listing read before the latest is stale).
    writes: std::sync::atomic::AtomicU64,
}

/// A listing of executions as read at a time, after so many writes, of so many executions.
type Listing = (std::time::Instant, u64, usize, Arc<Vec<ExecutionSummary>>);

thread_local! {
    /// A blocking thread's read-only execution store, kept between requests (opening one per
    /// request would cost more than most reads); dropped after an error.
    static READER: std::cell::RefCell<Option<Box<dyn Executions>>> =
        const { std::cell::RefCell::new(None) };
}

impl App {
    /// Runs `f` on this thread's read-only execution store (see [`StoreAccess::ReadOnly`]).
    fn reading<T>(
        &self,
        f: impl FnOnce(&mut dyn Executions) -> Result<T, PipelineError>,
    ) -> Result<T, PipelineError> {
        READER.with(|cell| {
            let mut slot = cell.borrow_mut();
            let store = match slot.as_mut() {
                Some(s) => s,
                None => slot.insert(self.backend.executions(StoreAccess::ReadOnly)?),
            };
            let r = f(store.as_mut());
            if matches!(&r, Err(e) if !matches!(e, PipelineError::NoSuchExecution(_))) {
                *slot = None;
            }
            r
        })
    }

    /// The latest `limit` executions, newest first.
    fn executions(&self, limit: usize) -> Result<Vec<ExecutionSummary>, PipelineError> {
        self.reading(|s| s.list(limit))
    }

    /// One execution's manifest.
    fn execution(&self, eid: i64) -> Result<ExecutionManifest, PipelineError> {
        self.reading(|s| s.manifest(eid))
    }

    /// The database of the mosaic steps, read-only.
    fn mosaic_db_plain(
        &self,
    ) -> Result<crate::workspace::session::Db, crate::workspace::session::StoreError> {
        crate::workspace::session::Db::open_read_only(&self.target)
    }
}

/// The endpoints, behind the access check every request passes.
fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(page::status_page))
        .route("/healthz", get(routes::healthz))
        .route("/api/v1/runs", post(routes::create_run))
        .route("/api/v1/executions", get(routes::list_executions))
        .route("/api/v1/executions/{id}", get(routes::show_execution))
        .route(
            "/api/v1/executions/{id}/cancel",
            post(routes::cancel_execution),
        )
        .route(
            "/api/v1/executions/{id}/retry",
            post(routes::retry_execution),
        )
        .route("/api/v1/mosaics", get(routes::list_mosaics))
        .route("/api/v1/mosaics/{id}", get(routes::show_mosaic))
        .route("/api/v1/mosaics/{id}/qa", get(routes::show_qa))
        .route("/api/v1/mosaics/{id}/{product}", get(routes::mosaic_file))
        .route("/api/v1/images", get(routes::list_images))
        .fallback(routes::not_found)
        .layer(middleware::from_fn_with_state(app.clone(), routes::guard))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

/// A token from the environment variable `var`, else from `file` (relative to `root`; "" = none).
fn token(var: &str, file: &str, root: &Path) -> Result<Option<String>, ServeError> {
    if let Ok(v) = std::env::var(var)
        && !v.trim().is_empty()
    {
        return Ok(Some(v.trim().to_string()));
    }
    if file.trim().is_empty() {
        return Ok(None);
    }
    let path = root.join(file.trim());
    let text = std::fs::read_to_string(&path).map_err(|source| ServeError::TokenFile {
        path: path.clone(),
        source,
    })?;
    let t = text.trim();
    if t.is_empty() {
        return Err(ServeError::EmptyToken(path));
    }
    Ok(Some(t.to_string()))
}

/// The secrets no response may carry.
fn secrets(setup: &Setup, tokens: &[&Option<String>]) -> Vec<String> {
    let mut out = Vec::new();
    if let Target::Postgres { url, .. } = &setup.database.target {
        out.extend(crate::pg::url_passwords(url));
    }
    if let Ok(pw) = std::env::var("PGPASSWORD") {
        out.push(pw);
    }
    let n = &setup.notify;
    out.push(n.webhook_url.clone());
    if !n.webhook_url_env.is_empty()
        && let Ok(u) = std::env::var(&n.webhook_url_env)
    {
        out.push(u);
    }
    for p in &setup.pipelines {
        for rule in &p.def.notify {
            if let Some(u) = rule.url.as_ref().and_then(|u| u.expose()) {
                out.push(u.to_string());
            }
            if let Some(var) = &rule.url_env
                && let Ok(u) = std::env::var(var)
            {
                out.push(u);
            }
        }
    }
    out.extend(tokens.iter().filter_map(|t| (*t).clone()));
    out.retain(|s| s.len() >= 4);
    // Longest first, so a URL is replaced whole before a shorter secret inside it.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// Serves until SIGTERM or SIGINT; returns once the requests in flight have been answered and
/// the embedded workers have handed back their jobs.
pub fn serve(setup: Setup, opts: Options) -> Result<(), ServeError> {
    let write = token("CONTIMG_API_TOKEN", &opts.config.token_file, &opts.root)?;
    let read = token(
        "CONTIMG_API_READ_TOKEN",
        &opts.config.read_token_file,
        &opts.root,
    )?;
    let access = Access::new(
        opts.listen,
        write.clone(),
        read.clone(),
        &opts.config.allowed_hosts,
    )?;
    for name in &opts.config.pipelines {
        if !setup.pipelines.iter().any(|p| &p.name == name) {
            return Err(ServeError::UnknownPipeline(name.clone()));
        }
    }
    let secrets = secrets(&setup, &[&write, &read]);
    let database = setup.database.clone();
    let pipelines = setup.pipelines.clone();
    let engine = Engine::new(setup, opts.lease);
    crate::pipeline::shutdown::install();

    // One async thread is plenty: every request's work is on the blocking pool.
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(BLOCKING * 4)
        .enable_all()
        .build()?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(opts.listen))
        .map_err(|source| ServeError::Bind {
            addr: opts.listen,
            source,
        })?;
    let bound = listener.local_addr()?;
    let app = Arc::new(App {
        engine: engine.clone(),
        backend: crate::pipeline::api::backend(&database),
        // Backend branch: only SQLite has a file lock that a write may wait behind.
        write_wait: match &database.target {
            Target::Sqlite(_) => WRITE_WAIT,
            Target::Postgres { .. } => PG_WRITE_WAIT,
        },
        database,
        target: opts.target.clone(),
        pipelines,
        startable: opts.config.pipelines.clone(),
        access,
        secrets,
        pool: Arc::new(tokio::sync::Semaphore::new(BLOCKING)),
        listing: tokio::sync::Mutex::new(None),
        writes: std::sync::atomic::AtomicU64::new(0),
    });

    let workers = (opts.workers > 0).then(|| {
        let engine = engine.workers_deliver();
        let n = opts.workers;
        std::thread::spawn(move || engine.work(n, StopWhen::Never))
    });
    log::info!(
        "listening on http://{bound} ({} embedded worker(s){}); stop with SIGTERM or Ctrl-C",
        opts.workers,
        if app.access.write.is_some() {
            ", write token set"
        } else {
            ", no write token: POST endpoints refused"
        }
    );

    let router = router(app);
    let served = rt.block_on(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                while !crate::pipeline::shutdown::requested() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                log::info!(
                    "{}: no new requests; finishing those in flight",
                    crate::pipeline::shutdown::signal_name()
                );
            })
            .await
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    if let Some(h) = workers {
        // The workers see the same stop flag: they hand their jobs back and return.
        match h.join() {
            Ok(Ok(s)) => log::info!(
                "workers: {} attempt(s), {} completed, {} failed, {} handed back",
                s.attempts,
                s.completed,
                s.failed,
                s.handed_back
            ),
            Ok(Err(e)) => log::warn!("the embedded workers stopped on an error: {e}"),
            Err(_) => log::warn!("an embedded worker thread panicked"),
        }
    }
    served?;
    Ok(())
}
