//! What a command writes: JSON (or a table) on stdout, messages and progress bars on stderr.
//!
//! Every message on stderr goes through one gate set from `-q`/`-v` once a command: the
//! subcommands' own lines ([`Output::info`], [`Output::warn`], [`Output::debug`]) and what the
//! layers below log through the `log` crate (the pipeline worker's warnings, the workspace's
//! "read contimg.toml"), which [`Output::install`] routes here. Levels: `-q` errors only; default
//! warnings and information; `-v` details; `-vv` also the internal steps (trace).

use std::io::{IsTerminal, Write};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use log::{Level, LevelFilter};

/// The output settings of a command.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    quiet: bool,
    progress: bool,
}

/// The `log` records of the layers below, on stderr as `contimg: [error: |warning: ]MESSAGE`.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, meta: &log::Metadata) -> bool {
        meta.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let kind = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            _ => "",
        };
        eprintln!("contimg: {kind}{}", record.args());
    }

    fn flush(&self) {}
}

static LOG: StderrLog = StderrLog;

impl Output {
    /// The settings of `-q`, `-v` (repeated) and `--no-progress`, made the process's log level.
    pub fn install(quiet: bool, verbose: u8, no_progress: bool) -> Output {
        // Only the first call installs (one command per process); later ones just set the level.
        let _ = log::set_logger(&LOG);
        log::set_max_level(match (quiet, verbose) {
            (true, _) => LevelFilter::Error,
            (false, 0) => LevelFilter::Info,
            (false, 1) => LevelFilter::Debug,
            (false, _) => LevelFilter::Trace,
        });
        Output {
            quiet,
            progress: !no_progress,
        }
    }

    fn say(level: Level, msg: &str) {
        if level <= log::max_level() {
            eprintln!("{msg}");
        }
    }

    /// A warning or error line on stderr (shown unless `-q` and it is only a warning).
    pub fn warn(&self, msg: &str) {
        let level = if msg.starts_with("error") {
            Level::Error
        } else {
            Level::Warn
        };
        Self::say(level, msg);
    }

    /// An informational line on stderr (hidden with `-q`).
    pub fn info(&self, msg: &str) {
        Self::say(Level::Info, msg);
    }

    /// A detail line on stderr, shown with `-v`.
    pub fn debug(&self, msg: &str) {
        Self::say(Level::Debug, msg);
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

/// Writes a JSON value and a newline to stdout. A closed pipe is not an error.
pub fn emit_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    emit_text(&format!("{text}\n"))
}

/// A serializable value as a JSON object whose first field is its `schema` tag.
pub fn tagged<T: serde::Serialize>(schema: &str, value: &T) -> anyhow::Result<serde_json::Value> {
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
