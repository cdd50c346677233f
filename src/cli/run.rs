//! `contimg run`: create (or find) the execution of a pipeline for a slot and work it to its end
//! (the work itself is [`crate::pipeline::api`]).

use std::collections::BTreeMap;

use super::engine::{engine, finish};
use super::{CliError, Ctx, emit_json};
use crate::pipeline::api::{self, SlotChoice, SlotRun};

/// Run a pipeline for one slot, or for every missed slot.
///
/// Run a pipeline for one slot: create its execution and tasks, work them, print the manifest.
///
/// The execution is keyed by (pipeline, slot): running again for the same slot resumes the
/// unfinished execution (completed jobs are not re-run) or reports the finished one; it never
/// creates a second. While another `run` process is working it, this one reports it and exits 0
/// (so a doubled cron firing is harmless). A new slot while the pipeline's `max_active` executions
/// still run is skipped (exit 0; `--catch-up` runs it later) or waits, as its `when_busy` says.
/// Each job runs in a child process; a job whose child exits 2 (an input error) is not retried,
/// nor a mosaic job whose contimg exits 3 (failed for good: e.g. every image of the window was
/// left out), while exit 1 (e.g. no image in the window yet) is retried by the job's rule.
/// Prints a `contimg.execution/1` manifest; exit 0 when the execution completed, 1 when it failed
/// or was cancelled. Undelivered failure notifications are retried first. On SIGTERM or SIGINT the
/// running jobs are killed and handed back to the queue (not counted as failed attempts) and the
/// manifest is printed, exit 0; `run` again, or a worker, resumes the execution.
///
/// Example: contimg run on_demand_mosaic --param start=2026-11-20T00:00Z --param end=2026-11-21T00:00Z
///          contimg run nightly_mosaic --slot scheduled      (what the crontab line runs)
///          contimg run nightly_mosaic --catch-up             (every slot missed since the last success)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pipeline name (see `contimg pipelines`).
    pub pipeline: String,
    /// The slot: ISO-8601 UTC or MJD, `now` (default), or `scheduled` (the latest time at or before
    /// now that the pipeline's schedule fires).
    #[arg(long, value_name = "TIME", default_value = "now")]
    pub slot: String,
    /// Run every scheduled slot since the last successful execution, oldest first (at most
    /// `[cron] max_catch_up`, the newest); prints a `contimg.catch-up/1` summary of the executions.
    #[arg(long, conflicts_with_all = ["slot", "detach"])]
    pub catch_up: bool,
    /// A pipeline parameter, `key=value` (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Worker threads working the execution (each job still runs in its own process).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub workers: usize,
    /// Lease length: a task whose worker stops heartbeating this long is retried by another worker.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub lease: String,
    /// Only create the execution and its tasks (print the manifest); leave the work to `contimg
    /// worker`. Exit 0 once the execution exists, whatever its status (an existing one may have
    /// ended; the manifest says how).
    #[arg(long)]
    pub detach: bool,
}

fn parse_params(list: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for kv in list {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| CliError::Input(format!("--param {kv:?}: write key=value")))?;
        if out.insert(k.trim().to_string(), v.to_string()).is_some() {
            return Err(CliError::Input(format!("--param {k} given twice")));
        }
    }
    Ok(out)
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let p = api::checked(ctx.session.pipelines()?, &args.pipeline)?;
    let params = parse_params(&args.params)?;
    let engine = engine(ctx, api::lease(&args.lease)?)?;
    if !args.detach {
        crate::pipeline::shutdown::install();
    }
    // Fired by cron while the server restarts: wait for it rather than miss the slot.
    engine.wait_for_database()?;
    if args.catch_up {
        let max = ctx.session.workspace()?.config.cron.max_catch_up;
        let c = engine.catch_up(&p, &params, max, args.workers, ctx)?;
        emit_json(&c)?;
        let failed = c.failed();
        if failed > 0 {
            return Err(CliError::Failed(format!(
                "{failed} of {} caught-up execution(s) of {} did not complete; see `contimg status`",
                c.slots.len(),
                p.name
            ))
            .into());
        }
        return Ok(());
    }
    let choice = match args.slot.trim() {
        "now" => SlotChoice::Now,
        "scheduled" => SlotChoice::Scheduled,
        s => SlotChoice::At(crate::time::parse_time(s)?),
    };
    match engine.run(&p, &params, choice, args.detach, args.workers, ctx)? {
        // Detached, the execution exists: exit 0 whatever its status (the manifest says it).
        SlotRun::Ran(m) if args.detach => emit_json(&m),
        SlotRun::Ran(m) => finish(ctx, &m),
        SlotRun::Skipped(v) => emit_json(&v),
    }
}
