//! `contimg absurd-task`: spawn a task on an ABSURD queue for a worker that is not contimg, wait for it,
//! and print its result — the child process of a pipeline's `absurd_task` job.
//!
//! Invariants: the database URL is read from an environment variable only (never an argument, so it
//! never shows in a process list or a job's log) and every message shows it with the password masked;
//! stdout carries the completed task's result as one JSON object, nothing else; a task that fails, is
//! cancelled or outlasts `--timeout` (then cancelled) exits 1 with a one-line reason.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::{CliError, Ctx};
use crate::queue::{AbsurdQueue, NewTask, TaskKey, TaskState, TaskView};

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

/// The first poll comes this soon; later ones back off to [`POLL_MAX`].
const POLL_MIN: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(2);

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
    let mut queue = AbsurdQueue::connect(&url, &args.queue)?;
    let key = queue
        .spawn(&spawned(&args.task, params))
        .with_context(|| format!("spawning '{}' on {}", args.task, where_(&queue)))?;
    ctx.info(&format!(
        "absurd-task: spawned '{}' as task {key} on {}",
        args.task,
        where_(&queue)
    ));
    let view = wait(&mut queue, key, timeout)?;
    match view.state {
        TaskState::Completed => super::emit_json(&outputs(view.result.unwrap_or(Value::Null))),
        state => Err(CliError::Failed(format!(
            "ABSURD task '{}' ({key}) on {} {state}{}",
            args.task,
            where_(&queue),
            last_error(&view)
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ))
        .into()),
    }
}

/// The task as spawned: the pipeline's execution and job (from the worker's environment) go into
/// ABSURD's headers for its own tools; ABSURD itself does not retry it (the job's retries do).
fn spawned(task: &str, params: Value) -> NewTask {
    let mut t = NewTask::new(task, params);
    t.execution_id = std::env::var("CONTIMG_EXECUTION_ID")
        .ok()
        .and_then(|e| e.parse().ok());
    // One ABSURD task per attempt of the job: a retried job spawns afresh.
    t.job_id = std::env::var("CONTIMG_JOB_ID").ok().map(|j| {
        let attempt = std::env::var("CONTIMG_ATTEMPT").unwrap_or_default();
        format!("{j}#{attempt}")
    });
    t
}

fn where_(q: &AbsurdQueue) -> String {
    format!("queue '{}' at {}", q.queue_name(), q.url())
}

/// Polls until the task is completed, failed or cancelled; past `timeout` cancels it.
fn wait(q: &mut AbsurdQueue, key: TaskKey, timeout: Option<Duration>) -> anyhow::Result<TaskView> {
    let started = Instant::now();
    let mut pause = POLL_MIN;
    loop {
        let view = q.inspect(key)?;
        if view.state.is_terminal() {
            return Ok(view);
        }
        if let Some(t) = timeout
            && started.elapsed() >= t
        {
            q.cancel(key, "timeout")?;
            return Err(CliError::Failed(format!(
                "ABSURD task '{}' ({key}) on {} was still {} after {t:?}; cancelled it",
                view.name,
                where_(q),
                view.state
            ))
            .into());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(POLL_MAX);
    }
}

/// A result object is the outputs as it is; any other value becomes `{"result": value}`.
fn outputs(result: Value) -> Value {
    match result {
        Value::Object(_) => result,
        other => json!({ "result": other }),
    }
}

/// The failure reason of the task's last run that has one.
fn last_error(view: &TaskView) -> Option<&str> {
    view.runs.iter().rev().find_map(|r| r.error.as_deref())
}
