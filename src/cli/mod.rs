//! Command-line interface: global options, the subcommand table, and the [`Ctx`] every
//! subcommand gets (its [`Session`] and output settings, built once a command).
//!
//! Invariants: stdout carries JSON manifests only (or a table for a person at a terminal);
//! progress, logs and warnings go to stderr, all through [`output`] (so `-q` silences them all).
//! Exit codes ([`error`] decides them from the error's type): 0 success, 1 the work failed
//! (a fault of contimg's own files too, e.g. a corrupt database), 2 usage or input error, 3 the
//! work failed for good (the data it was given can never make the product, e.g. every image of a
//! plan's window was left out: retrying cannot help). A closed stdout (broken pipe) is not an
//! error. Subcommands reach the database and the configuration only through the session: no
//! module here names the store or the queue.

mod absurd_task;
mod build;
mod cancel;
mod completions;
mod cron;
mod engine;
mod error;
mod images;
mod ingest;
mod init;
mod manual;
mod notifications;
mod output;
mod pipelines;
mod plan;
mod qa;
mod retry;
mod run;
mod serve;
mod simulate;
mod status;
mod tiers;
mod worker;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};
use indicatif::ProgressBar;

use crate::workspace::Session;
pub use error::{CliError, PERMANENT_EXIT, exit_code};
use output::Output;
pub use output::{emit_json, emit_listing, emit_object, emit_text};

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
    Serve(serve::Args),
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

/// What every subcommand gets, built once a command: the session (workspace, contimg.toml,
/// database, tiers and pipelines, each found or read once) and the output settings.
pub struct Ctx {
    pub session: Session,
    pub out: Output,
}

impl Ctx {
    /// A warning or error line on stderr (shown unless `-q` and it is only a warning).
    pub fn warn(&self, msg: &str) {
        self.out.warn(msg);
    }

    /// An informational line on stderr (hidden with `-q`).
    pub fn info(&self, msg: &str) {
        self.out.info(msg);
    }

    /// A detail line on stderr, shown with `-v`.
    pub fn debug(&self, msg: &str) {
        self.out.debug(msg);
    }

    /// A progress bar on stderr, hidden when disabled or stderr is not a terminal.
    pub fn bar(&self, len: u64, what: &str) -> ProgressBar {
        self.out.bar(len, what)
    }
}

/// The clap command, for completions and man pages.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Ctx {
        session: Session::new(cli.workspace, cli.db),
        out: Output::install(cli.quiet, cli.verbose, cli.no_progress),
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
        Command::Serve(a) => serve::run(&ctx, a),
        Command::AbsurdTask(a) => absurd_task::run(&ctx, a),
        Command::Pipelines(a) => pipelines::run(&ctx, a),
        Command::Cron(a) => cron::run(&ctx, a),
        Command::Notifications(a) => notifications::run(&ctx, a),
        Command::Completions(a) => completions::run_completions(a),
        Command::Man(a) => completions::run_man(a),
    }
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
            eprintln!("{}", error::report(&e));
            exit_code(&e)
        }
    }
}
