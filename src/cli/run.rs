//! `contimg run`: create (or find) the execution of a pipeline for a slot and work it to its end.
//! Also the helpers `worker`, `retry`, `status`, `cancel` and `pipelines` share.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{CliError, Ctx, emit_json};
use crate::pipeline::def::NamedPipeline;
use crate::pipeline::jobs::SelfInvocation;
use crate::pipeline::worker::process_id;
use crate::pipeline::{ExecutionManifest, PipelineError, Slot, StopWhen, WorkerConfig, exec};
use crate::queue::{Queue, SystemClock};
use crate::time::iso;
use crate::workspace::Workspace;

/// Run a pipeline for one slot: create its execution and tasks, work them, print the manifest.
///
/// The execution is keyed by (pipeline, slot): running again for the same slot resumes the
/// unfinished execution (completed jobs are not re-run) or reports the finished one; it never
/// creates a second. While another `run` process is working it, this one reports it and exits 0
/// (so a doubled cron firing is harmless). A new slot while the pipeline's `max_active` executions
/// still run is skipped (exit 0; `--catch-up` runs it later) or waits, as its `when_busy` says.
/// Each job runs in a child process; a job whose child exits 2 (an input error) is not retried.
/// Prints a `contimg.execution/1` manifest; exit 0 when the execution completed, 1 when it failed
/// or was cancelled. Undelivered failure notifications are retried first.
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
    /// Only create the execution and its tasks (print the manifest); leave the work to `contimg worker`.
    #[arg(long)]
    pub detach: bool,
}

/// The pipelines in force in the workspace, with the workspace.
pub(super) fn pipelines(ctx: &Ctx) -> anyhow::Result<(Workspace, Vec<NamedPipeline>)> {
    let ws = ctx.workspace()?;
    let path = ws.root.join(crate::workspace::CONFIG_FILE);
    let all = crate::pipeline::def::resolve(&ws.config.pipelines, &path.display().to_string());
    Ok((ws, all))
}

/// Finds a pipeline by name and checks it; errors are input errors naming what is wrong.
pub(super) fn checked(all: &[NamedPipeline], name: &str) -> Result<NamedPipeline, CliError> {
    let p = all.iter().find(|p| p.name == name).ok_or_else(|| {
        CliError::Input(format!(
            "no pipeline named '{name}'; known: {}",
            all.iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let errs = crate::pipeline::validate(p);
    if !errs.is_empty() {
        return Err(CliError::Input(format!(
            "pipeline '{name}' is invalid:\n{}",
            errs.iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )));
    }
    Ok(p.clone())
}

/// Lease from a duration argument.
pub(super) fn lease(s: &str) -> Result<Duration, CliError> {
    let d = crate::time::parse_duration(s)?;
    if d.as_secs_f64() < 0.3 {
        return Err(CliError::Input(format!(
            "--lease {s} is too short; give at least 1s"
        )));
    }
    Ok(d)
}

/// What every worker thread of this process needs.
#[derive(Clone)]
pub(super) struct Engine {
    pub me: SelfInvocation,
    pub logs_dir: PathBuf,
    pub lease: Duration,
    pub delivery: crate::pipeline::notify::Delivery,
    /// Whether worker threads deliver due notifications (`worker` does; `run` delivers at its start
    /// and end instead).
    pub workers_deliver: bool,
}

impl Engine {
    pub fn new(ctx: &Ctx, ws: &Workspace, lease: Duration) -> anyhow::Result<Engine> {
        let database =
            crate::fsutil::absolute(&ctx.db_arg.clone().unwrap_or_else(|| ws.database()));
        let exe = std::env::current_exe().map_err(|e| {
            CliError::Failed(format!(
                "cannot find the contimg binary to run jobs with: {e}"
            ))
        })?;
        Ok(Engine {
            me: SelfInvocation {
                exe,
                workspace: ws.root.clone(),
                database,
            },
            logs_dir: ws.logs_dir(),
            lease,
            delivery: crate::pipeline::notify::Delivery {
                config: ws.config.notify.clone(),
                logs_dir: ws.logs_dir(),
                by: process_id(),
            },
            workers_deliver: false,
        })
    }

    /// A queue over a new connection (one per thread).
    pub fn queue(&self) -> anyhow::Result<Queue> {
        let store = crate::store::Store::open(&self.me.database)?;
        Ok(Queue::new(store.conn, Arc::new(SystemClock)))
    }

    pub fn worker_config(&self, idx: usize) -> WorkerConfig {
        WorkerConfig {
            me: self.me.clone(),
            logs_dir: self.logs_dir.clone(),
            worker_id: format!("{}:{idx}", process_id()),
            lease: self.lease,
            poll: Duration::from_millis(500),
            notify: self.workers_deliver.then(|| self.delivery.clone()),
        }
    }

    /// Runs `n` worker threads until `stop`; returns the first error.
    pub fn work(&self, n: usize, stop: StopWhen) -> anyhow::Result<crate::pipeline::WorkStats> {
        let n = n.max(1);
        let results: Vec<anyhow::Result<crate::pipeline::WorkStats>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    s.spawn(move || -> anyhow::Result<crate::pipeline::WorkStats> {
                        let q = self.queue()?;
                        Ok(crate::pipeline::work(&q, &self.worker_config(i), stop)?)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked")))
                })
                .collect()
        });
        let mut total = crate::pipeline::WorkStats::default();
        for r in results {
            let s = r?;
            total.attempts += s.attempts;
            total.completed += s.completed;
            total.failed += s.failed;
        }
        Ok(total)
    }

    /// Delivers pending notifications (all of them when `all`); a channel error is recorded in the
    /// outbox and reported on stderr, never an error of the command.
    pub fn deliver(&self, ctx: &Ctx, q: &Queue, all: bool) {
        match crate::pipeline::notify::deliver(q.connection(), &self.delivery, all) {
            Ok(s) => {
                if s.delivered + s.retrying + s.failed > 0 {
                    ctx.info(&format!(
                        "notifications: {} delivered, {} to retry, {} given up, {} skipped (unconfigured); see `contimg notifications`",
                        s.delivered, s.retrying, s.failed, s.skipped
                    ));
                }
            }
            Err(e) => ctx.warn(&format!("warning: {e}")),
        }
    }

    pub fn manifest(&self, q: &Queue, eid: i64) -> Result<ExecutionManifest, PipelineError> {
        exec::manifest(q, &self.me.database.display().to_string(), eid)
    }
}

/// Prints the manifest; a failed or cancelled execution is exit 1.
pub(super) fn finish(ctx: &Ctx, m: &ExecutionManifest) -> anyhow::Result<()> {
    emit_json(m)?;
    match m.status.as_str() {
        "completed" => {
            ctx.info(&format!(
                "execution {} of {} completed",
                m.execution_id, m.pipeline
            ));
            Ok(())
        }
        "running" => Ok(()),
        s => Err(CliError::Failed(format!(
            "execution {} of {} {s}: {}; see `contimg status {}`, re-run with `contimg retry {}`",
            m.execution_id,
            m.pipeline,
            m.error.as_deref().unwrap_or("-"),
            m.execution_id,
            m.execution_id
        ))
        .into()),
    }
}

pub(super) fn map_pipeline_err(e: PipelineError) -> anyhow::Error {
    match e {
        PipelineError::Invalid(m) | PipelineError::Conflict(m) => CliError::Input(m).into(),
        e @ PipelineError::NoSuchExecution(_) => CliError::Input(e.to_string()).into(),
        e => e.into(),
    }
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

/// What happened to one slot.
enum SlotRun {
    Ran(Box<ExecutionManifest>),
    Skipped(serde_json::Value),
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (ws, all) = pipelines(ctx)?;
    let p = checked(&all, &args.pipeline)?;
    let given = parse_params(&args.params)?;
    let params = exec::resolve_params(&p, &given).map_err(CliError::Input)?;
    let engine = Engine::new(ctx, &ws, lease(&args.lease)?)?;
    let q = engine.queue()?;
    engine.deliver(ctx, &q, true);
    let now = crate::time::now();
    let schedule = || {
        p.def.schedule.clone().ok_or_else(|| {
            CliError::Input(format!(
                "pipeline '{}' has no schedule; give --slot TIME or --slot now",
                p.name
            ))
        })
    };
    if args.catch_up {
        let sched = schedule()?;
        let last: Option<String> = q.connection().query_row(
            "SELECT max(slot) FROM pipeline_executions WHERE pipeline_name = ?1 AND status = 'completed'",
            [&p.name],
            |r| r.get(0),
        )?;
        let last = last.as_deref().and_then(crate::time::parse_rfc3339);
        let (slots, dropped) =
            crate::pipeline::cron::catch_up_slots(&sched, last, now, ws.config.cron.max_catch_up)
                .map_err(|e| CliError::Input(e.to_string()))?;
        if let Some(first) = dropped.first() {
            ctx.warn(&format!(
                "warning: {} missed slot(s) from {} are older than the newest [cron] max_catch_up = {}; \
                 backfill them with --slot TIME",
                dropped.len(),
                iso(*first),
                ws.config.cron.max_catch_up
            ));
        }
        ctx.info(&format!(
            "catch-up of {}: {} slot(s) since {}",
            p.name,
            slots.len(),
            last.map(iso)
                .unwrap_or_else(|| "(no successful execution yet)".into())
        ));
        let mut out = Vec::new();
        let mut failed = 0;
        for t in &slots {
            let slot = Slot::new(*t, p.def.window.as_deref()).map_err(CliError::Input)?;
            match run_slot(ctx, &engine, &q, &p, &slot, &params, false, args.workers)? {
                SlotRun::Ran(m) => {
                    if m.status == "failed" || m.status == "cancelled" {
                        failed += 1;
                    }
                    out.push(serde_json::to_value(&*m)?);
                }
                SlotRun::Skipped(v) => out.push(v),
            }
        }
        engine.deliver(ctx, &q, true);
        emit_json(&serde_json::json!({
            "schema": "contimg.catch-up/1",
            "pipeline": p.name,
            "last_success": last.map(iso),
            "slots": slots.iter().copied().map(iso).collect::<Vec<_>>(),
            "dropped": dropped.iter().copied().map(iso).collect::<Vec<_>>(),
            "executions": out,
        }))?;
        if failed > 0 {
            return Err(CliError::Failed(format!(
                "{failed} of {} caught-up execution(s) of {} did not complete; see `contimg status`",
                slots.len(),
                p.name
            ))
            .into());
        }
        return Ok(());
    }
    let slot_time = match args.slot.trim() {
        "now" => now,
        "scheduled" => exec::scheduled_slot(&schedule()?, now).map_err(CliError::Input)?,
        s => crate::time::parse_time(s)?,
    };
    let slot = Slot::new(slot_time, p.def.window.as_deref()).map_err(CliError::Input)?;
    let r = run_slot(
        ctx,
        &engine,
        &q,
        &p,
        &slot,
        &params,
        args.detach,
        args.workers,
    )?;
    engine.deliver(ctx, &q, true);
    match r {
        SlotRun::Ran(m) => finish(ctx, &m),
        SlotRun::Skipped(v) => emit_json(&v),
    }
}

/// Creates (or finds) the execution for one slot and works it unless another process does.
#[allow(clippy::too_many_arguments)]
fn run_slot(
    ctx: &Ctx,
    engine: &Engine,
    q: &Queue,
    p: &NamedPipeline,
    slot: &Slot,
    params: &BTreeMap<String, Option<String>>,
    detach: bool,
    workers: usize,
) -> anyhow::Result<SlotRun> {
    use crate::pipeline::{WhenBusy, runner};
    let slot_s = iso(slot.time);
    let exists: bool = q.connection().query_row(
        "SELECT count(*) > 0 FROM pipeline_executions WHERE pipeline_name = ?1 AND slot = ?2",
        rusqlite::params![p.name, slot_s],
        |r| r.get(0),
    )?;
    if !exists {
        loop {
            let active = runner::active(q.connection(), &p.name, &slot_s)?;
            if (active.len() as u32) < p.def.max_active {
                break;
            }
            match p.def.when_busy {
                WhenBusy::Skip => {
                    ctx.info(&format!(
                        "{} already has {} execution(s) running ({}; max_active = {}); slot {slot_s} skipped \
                         (`contimg run {} --catch-up` runs it later)",
                        p.name,
                        active.len(),
                        active.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
                        p.def.max_active,
                        p.name
                    ));
                    return Ok(SlotRun::Skipped(serde_json::json!({
                        "schema": "contimg.skipped/1",
                        "pipeline": p.name,
                        "slot": slot_s,
                        "reason": "max_active executions of this pipeline are running",
                        "active_executions": active,
                    })));
                }
                WhenBusy::Wait => {
                    ctx.debug(&format!(
                        "{}: waiting for execution(s) {active:?} to end (max_active = {})",
                        p.name, p.def.max_active
                    ));
                    std::thread::sleep(Duration::from_secs(2));
                }
            }
        }
    }
    let created = exec::create(q, p, slot, params).map_err(map_pipeline_err)?;
    let eid = created.execution_id;
    let status = exec::sync(q.connection(), eid)?;
    if created.existing {
        ctx.info(&format!(
            "execution {eid} of {} for slot {slot_s} exists ({status}){}",
            p.name,
            if status == "running" {
                "; resuming it"
            } else {
                "; reporting it"
            }
        ));
    } else {
        ctx.info(&format!(
            "execution {eid} of {} for slot {slot_s} created with {} job(s)",
            p.name,
            p.def.jobs.len()
        ));
    }
    if status == "running" && !detach {
        match runner::acquire(q.connection(), eid, engine.lease)? {
            Some(holder) => {
                ctx.info(&format!(
                    "execution {eid} is being run by {holder}; reporting it (see `contimg status {eid}`)"
                ));
            }
            None => {
                let hb = runner::Heartbeat::start(engine.me.database.clone(), eid, engine.lease);
                let r = engine.work(workers, StopWhen::ExecutionDone(eid));
                drop(hb);
                runner::release(q.connection(), eid)?;
                r?;
            }
        }
    }
    let mut m = engine.manifest(q, eid).map_err(map_pipeline_err)?;
    m.existing = created.existing;
    Ok(SlotRun::Ran(Box::new(m)))
}
