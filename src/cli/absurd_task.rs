//! `contimg absurd-task`: spawn a task on an ABSURD queue for a worker that is not contimg, wait for it,
//! and print its result — the child process of a pipeline's `absurd_task` job. The arguments are
//! read here; the spawn, poll and cancel loop is [`crate::pipeline::absurd_task`].
//!
//! Invariants: the database URL is read from an environment variable only (never an argument, so it
//! never shows in a process list or a job's log) and every message shows it with the password masked;
//! stdout carries the completed task's result as one JSON object, nothing else; a task that fails, is
//! cancelled or outlasts `--timeout` (then cancelled) exits 1 with a one-line reason.

use serde_json::Value;

use super::{CliError, Ctx};
use crate::pipeline::absurd_task;

/// Run one task on an ABSURD queue and print its result.
///
/// Spawns TASK with PARAMS on the ABSURD queue QUEUE of the PostgreSQL database whose
/// postgres:// URL is in the environment variable named by --database-env, waits until a worker
/// (any ABSURD worker, e.g. one written with absurd-sdk) completes, fails or cancels it, and prints
/// its result: a JSON object as it is, any other value as {"result": VALUE}. A failed or cancelled
/// task, or one still unfinished after --timeout (it is then cancelled), exits 1. This is the
/// child process of a pipeline's `absurd_task` job; its output becomes the job's outputs.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// ABSURD queue (created if missing).
    #[arg(long)]
    pub queue: String,
    /// Task name, as the other worker registered it.
    #[arg(long)]
    pub task: String,
    /// The task's params, a JSON object.
    #[arg(long, default_value = "{}")]
    pub params: String,
    /// Environment variable holding the postgres:// URL.
    #[arg(long, value_name = "VAR", default_value = crate::pipeline::jobs::ABSURD_URL_ENV)]
    pub database_env: String,
    /// Give up after this long (e.g. 30m) and cancel the task; without it, wait as long as it takes.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let url = std::env::var(&args.database_env).map_err(|_| {
        CliError::Input(format!(
            "environment variable {} is not set: it must hold the postgres:// URL of the ABSURD database",
            args.database_env
        ))
    })?;
    let params: Value = serde_json::from_str(&args.params)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            CliError::Input(format!(
                "--params must be a JSON object, got {}",
                args.params
            ))
        })?;
    let timeout = args
        .timeout
        .as_deref()
        .map(crate::time::parse_duration)
        .transpose()?;
    let request = absurd_task::Request {
        url: &url,
        queue: &args.queue,
        task: &args.task,
        params,
        timeout,
    };
    let outputs = absurd_task::run(request, |key, place| {
        ctx.info(&format!(
            "absurd-task: spawned '{}' as task {key} on {place}",
            args.task
        ));
    })?;
    super::emit_json(&outputs)
}
