//! Command-line interface: global options, the subcommand table, exit codes and output rules.
//!
//! Invariants: stdout carries JSON manifests only (or a table for a person at a terminal);
//! progress, logs and warnings go to stderr. Exit codes: 0 success, 1 the work failed,
//! 2 usage or input error, 3 the work failed for good (the data it was given can never make the
//! product, e.g. every image of a plan's window was left out: retrying cannot help). A closed
//! stdout (broken pipe) is not an error.

mod absurd_task;
mod build;
mod cancel;
mod completions;
mod cron;
mod images;
mod ingest;
mod init;
mod manual;
mod notifications;
mod pipelines;
mod plan;
mod qa;
mod retry;
mod run;
mod simulate;
mod status;
mod tiers;
mod worker;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{CommandFactory, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::store::{Db, Store, StoreError, Target};
use crate::workspace::{Workspace, WorkspaceError};

/// The heading under which the options every subcommand takes are listed.
const GLOBAL: &str = "Global options";

/// Turn a night of radio continuum snapshots into planned, built, quality-checked mosaics.
///
/// Steps can be chained from the shell (each prints a JSON manifest on stdout that the next
/// reads) or run as a pipeline. Start with `contimg init DIR`, then `contimg ingest FILES`.
#[derive(Debug, Parser)]
#[command(
    name = "contimg",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Use the workspace at DIR (it must hold contimg.toml).
    ///
    /// Unlike `git -C`, contimg does not change directory: the workspace's own paths (database,
    /// mosaics/, logs/) come from DIR, while paths you type as arguments (`ingest ../night`,
    /// `build plan.json`) stay relative to the directory you are in, as your shell completed
    /// them. Without -C or CONTIMG_WORKSPACE the workspace is the current directory or the
    /// nearest parent holding contimg.toml, as git finds a repository.
    #[arg(
        short = 'C',
        long = "workspace",
        global = true,
        env = "CONTIMG_WORKSPACE",
        value_name = "DIR",
        help_heading = GLOBAL
    )]
    pub workspace: Option<PathBuf>,

    /// Use this database instead of the workspace's: an SQLite file (no workspace needed) or a
    /// postgres:// URL.
    ///
    /// A URL such as postgresql://USER@HOST/DBNAME?sslmode=require keeps contimg's records in a
    /// schema of their own on that server ([postgres] schema in contimg.toml, or
    /// CONTIMG_PG_SCHEMA; default contimg); a password missing from the URL comes from PGPASSWORD.
    #[arg(
        long,
        global = true,
        env = "CONTIMG_DB",
        value_name = "FILE|URL",
        help_heading = GLOBAL
    )]
    pub db: Option<PathBuf>,

    /// Print only errors on stderr.
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = GLOBAL
    )]
    pub quiet: bool,

    /// Print more detail on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,

    /// Never draw progress bars (they already hide when stderr is not a terminal).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub no_progress: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::Args),
    Simulate(simulate::Args),

    Ingest(ingest::Args),
    Images(images::Args),
    Tiers(tiers::Args),
    Plan(plan::Args),
    Build(build::Args),
    Qa(qa::Args),
    Run(run::Args),
    Worker(worker::Args),
    Status(status::Args),
    Retry(retry::Args),
    Cancel(cancel::Args),
    AbsurdTask(absurd_task::Args),
    Pipelines(pipelines::Args),
    Cron(cron::Args),
    Notifications(notifications::Args),
    Completions(completions::CompletionsArgs),
    Man(completions::ManArgs),
}

/// A tier name for `--tier`: help and completions offer the built-in tiers and `auto`; any other
/// name is accepted here and checked against the workspace's `[tiers.NAME]` when the command runs.
#[derive(Debug, Clone, Copy)]
pub struct TierName;

impl clap::builder::TypedValueParser for TierName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::NonEmptyStringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        let builtin = crate::mosaic::tiers::builtin()
            .into_iter()
            .map(|t| clap::builder::PossibleValue::new(t.name).help(t.description));
        let auto = clap::builder::PossibleValue::new("auto")
            .help("choose from the window: < 1 h quicklook, > 48 h deep, else science");
        Some(Box::new(builtin.chain(std::iter::once(auto))))
    }
}

/// The exit code of work that failed for good: the data can never make the product, so a
/// pipeline does not retry the job (see `pipeline::worker`).
pub const PERMANENT_EXIT: i32 = crate::pipeline::worker::PERMANENT_EXIT;

/// An error whose exit code is fixed: 2 for bad input or usage, 1 for work that failed, 3 for
/// work that failed for good.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Failed(String),
    /// The work failed and the same data would fail it again (exit [`PERMANENT_EXIT`]).
    #[error("{0}")]
    Permanent(String),
}

impl From<crate::time::TimeError> for CliError {
    fn from(e: crate::time::TimeError) -> CliError {
        CliError::Input(e.to_string())
    }
}

/// The exit code for an error: 2 when the cause is the user's input, 3 when the work failed for
/// good, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return match e {
                CliError::Input(_) => 2,
                CliError::Failed(_) => 1,
                CliError::Permanent(_) => PERMANENT_EXIT,
            };
        }
        if let Some(e) = cause.downcast_ref::<crate::pipeline::PipelineError>() {
            return if e.is_input() { 2 } else { 1 };
        }
        if let Some(e) = cause.downcast_ref::<crate::pipeline::cron::CronError>() {
            return if e.is_input() { 2 } else { 1 };
        }
        if cause.downcast_ref::<WorkspaceError>().is_some()
            || cause
                .downcast_ref::<crate::workspace::config::ConfigError>()
                .is_some()
            || cause
                .downcast_ref::<StoreError>()
                .is_some_and(StoreError::is_input)
        {
            return 2;
        }
    }
    1
}

/// What every subcommand gets: global options, and helpers for output and the workspace.
pub struct Ctx {
    pub workspace_arg: Option<PathBuf>,
    pub db_arg: Option<PathBuf>,
    pub quiet: bool,
    pub verbose: u8,
    pub progress: bool,
    /// Whether the configuration's warnings were printed (once a command).
    pub config_warned: std::cell::Cell<bool>,
}

impl Ctx {
    /// A warning or error line on stderr (shown unless `-q` and it is only a warning).
    pub fn warn(&self, msg: &str) {
        if !self.quiet || msg.starts_with("error") {
            eprintln!("{msg}");
        }
    }

    /// An informational line on stderr (hidden with `-q`).
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// A detail line on stderr, shown with `-v`.
    pub fn debug(&self, msg: &str) {
        if self.verbose > 0 {
            eprintln!("{msg}");
        }
    }

    /// The workspace, found like git finds a repository.
    pub fn workspace(&self) -> Result<Workspace, WorkspaceError> {
        let cwd = std::env::current_dir().map_err(|source| WorkspaceError::Io {
            path: PathBuf::from("."),
            source,
        })?;
        let ws = Workspace::discover(self.workspace_arg.as_deref(), &cwd)?;
        // Checked when the configuration was loaded.
        if let Ok(mode) = ws.config.files.mode_bits() {
            crate::fsutil::set_file_mode(mode);
        }
        if !self.config_warned.replace(true) {
            for w in ws.config.qa.deprecations() {
                self.warn(&w);
            }
        }
        Ok(ws)
    }

    /// The database named by `--db`/`CONTIMG_DB` if given (no workspace needed for an SQLite
    /// file), else by the workspace's `[paths] database`: an SQLite path or a `postgres://` URL.
    pub fn target(&self) -> anyhow::Result<Target> {
        match &self.db_arg {
            Some(p) if p.to_str().is_some_and(crate::pg::is_url) => {
                Ok(Target::new(p.as_os_str(), &self.postgres()?.schema)?)
            }
            Some(p) => Ok(Target::Sqlite(p.clone())),
            None => Ok(self.workspace()?.database_target()?),
        }
    }

    /// Where the pipelines are recorded: [`Ctx::target`], and on PostgreSQL also the ABSURD queue
    /// (`[postgres] queue`, `CONTIMG_ABSURD_QUEUE`).
    pub fn pipeline_database(&self) -> anyhow::Result<crate::pipeline::Database> {
        Ok(crate::pipeline::Database {
            target: match self.target()? {
                Target::Sqlite(path) => Target::Sqlite(crate::fsutil::absolute(&path)),
                pg => pg,
            },
            queue: self.postgres()?.queue,
        })
    }

    /// The `[postgres]` settings (the workspace's, else the defaults) with the environment's
    /// overrides (`CONTIMG_PG_SCHEMA`, `CONTIMG_ABSURD_QUEUE`).
    pub fn postgres(&self) -> anyhow::Result<crate::workspace::config::PostgresConfig> {
        let cfg = match self.workspace() {
            Ok(ws) => ws.config.postgres,
            Err(WorkspaceError::NotFound { .. }) => Default::default(),
            Err(e) => return Err(e.into()),
        };
        Ok(cfg.with_env())
    }

    /// The database of the mosaic steps (ingest, images, plan, build, qa) on either backend,
    /// created and migrated if needed.
    pub fn db(&self) -> anyhow::Result<Db> {
        Ok(Db::open(&self.target()?)?)
    }

    /// [`Ctx::db`] for a command that only reads: an SQLite file is opened as
    /// [`Ctx::store_read_only`] opens it.
    pub fn db_read_only(&self) -> anyhow::Result<Db> {
        match self.target()? {
            Target::Sqlite(path) => Ok(Db::Sqlite(sqlite_read_only(&path)?)),
            pg => Ok(Db::open(&pg)?),
        }
    }

    /// The SQLite database for the commands that work on SQLite only (the pipeline's, for now):
    /// `--db` if given (no workspace needed), else the workspace's. A PostgreSQL URL is refused
    /// with a one-line error.
    pub fn store(&self) -> anyhow::Result<Store> {
        match self.target()? {
            Target::Sqlite(path) => Ok(Store::open(&path)?),
            pg => Err(StoreError::NotSupported {
                target: pg.to_string(),
            }
            .into()),
        }
    }

    /// The database for a command that only reads (`status`, `notifications`): opened
    /// read-only, so it never waits behind a writer and works on a read-only copy. A missing file,
    /// or a schema older than this binary's, gets the writing open (which creates or migrates it).
    pub fn store_read_only(&self) -> anyhow::Result<Store> {
        match self.target()? {
            Target::Sqlite(path) => sqlite_read_only(&path),
            pg => Err(StoreError::NotSupported {
                target: pg.to_string(),
            }
            .into()),
        }
    }

    /// The tiers in force: the workspace's configuration over the built-ins (built-ins alone
    /// when there is no workspace).
    pub fn tiers(&self) -> anyhow::Result<Vec<crate::mosaic::tiers::Tier>> {
        let overrides = match self.workspace() {
            Ok(ws) => ws.config.tiers,
            Err(WorkspaceError::NotFound { .. }) => Default::default(),
            Err(e) => return Err(e.into()),
        };
        Ok(
            crate::mosaic::tiers::resolve(&overrides)
                .map_err(|e| CliError::Input(e.to_string()))?,
        )
    }

    /// A progress bar on stderr, hidden when disabled or stderr is not a terminal.
    pub fn bar(&self, len: u64, what: &str) -> ProgressBar {
        let show = self.progress && !self.quiet && std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some(len),
            if show {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        bar
    }
}

/// Opens an SQLite file read-only when it exists with the current schema, else for writing.
fn sqlite_read_only(path: &std::path::Path) -> anyhow::Result<Store> {
    if path.is_file()
        && let Some(store) = Store::open_read_only(path)?
    {
        return Ok(store);
    }
    Ok(Store::open(path)?)
}

/// Writes a JSON value and a newline to stdout. A closed pipe is not an error.
pub fn emit_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    emit_text(&format!("{text}\n"))
}

/// A serializable value as a JSON object whose first field is its `schema` tag.
fn tagged<T: serde::Serialize>(schema: &str, value: &T) -> anyhow::Result<serde_json::Value> {
    let mut obj = serde_json::Map::new();
    obj.insert("schema".into(), schema.into());
    match serde_json::to_value(value)? {
        serde_json::Value::Object(fields) => {
            obj.extend(fields.into_iter().filter(|(k, _)| k != "schema"));
        }
        other => {
            obj.insert("value".into(), other);
        }
    }
    Ok(serde_json::Value::Object(obj))
}

/// Writes one JSON object tagged with its `schema` (a summary that is not a manifest, e.g.
/// `worker`'s statistics), so a script can check what it reads.
pub fn emit_object<T: serde::Serialize>(schema: &str, value: &T) -> anyhow::Result<()> {
    emit_json(&tagged(schema, value)?)
}

/// Writes a listing as a JSON array whose every row carries its `schema` tag first, so a
/// consumer of `contimg images --json` and the like can check what it reads row by row.
pub fn emit_listing<T: serde::Serialize>(schema: &str, rows: &[T]) -> anyhow::Result<()> {
    let rows = rows
        .iter()
        .map(|row| tagged(schema, row))
        .collect::<anyhow::Result<Vec<_>>>()?;
    emit_json(&rows)
}

/// Writes text to stdout. A closed pipe is not an error.
pub fn emit_text(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

/// The clap command, for completions and man pages.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Ctx {
        workspace_arg: cli.workspace,
        db_arg: cli.db,
        quiet: cli.quiet,
        verbose: cli.verbose,
        progress: !cli.no_progress,
        config_warned: std::cell::Cell::new(false),
    };
    match cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Simulate(a) => simulate::run(&ctx, a),

        Command::Ingest(a) => ingest::run(&ctx, a),
        Command::Images(a) => images::run(&ctx, a),
        Command::Tiers(a) => tiers::run(&ctx, a),
        Command::Plan(a) => plan::run(&ctx, a),
        Command::Build(a) => build::run(&ctx, a),
        Command::Qa(a) => qa::run(&ctx, a),
        Command::Run(a) => run::run(&ctx, a),
        Command::Worker(a) => worker::run(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Retry(a) => retry::run(&ctx, a),
        Command::Cancel(a) => cancel::run(&ctx, a),
        Command::AbsurdTask(a) => absurd_task::run(&ctx, a),
        Command::Pipelines(a) => pipelines::run(&ctx, a),
        Command::Cron(a) => cron::run(&ctx, a),
        Command::Notifications(a) => notifications::run(&ctx, a),
        Command::Completions(a) => completions::run_completions(a),
        Command::Man(a) => completions::run_man(a),
    }
}

/// An error and every cause under it on one line, outermost first. A cause whose text the line
/// already holds (a message written as "{path}: {source}" that also keeps the source) is not
/// repeated.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The whole program: parse, run, report. Returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and exit 0; usage errors exit 2.
            let code = e.exit_code();
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("contimg: error: {}", error_chain(&e));
            exit_code(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("plan.json: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[test]
    fn the_error_chain_is_one_line_without_repeats() {
        let io = std::io::Error::other("disk full");
        let err = anyhow::Error::new(Outer { source: io }).context("building the mosaic");
        assert_eq!(
            super::error_chain(&err),
            "building the mosaic: plan.json: disk full"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::error_chain(&plain), "outer: inner");
    }
}
