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
use crate::workspace::Workspace;

/// Run a pipeline for one slot: create its execution and tasks, work them, print the manifest.
///
/// The execution is keyed by (pipeline, slot): running again for the same slot resumes the
/// unfinished execution (completed jobs are not re-run) or reports the finished one; it never
/// creates a second. Each job runs in a child process. Prints a `contimg.execution/1` manifest;
/// exit 0 when the execution completed, 1 when it failed or was cancelled.
///
/// Example: contimg run on_demand_mosaic --param start=2026-11-20T00:00Z --param end=2026-11-21T00:00Z
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pipeline name (see `contimg pipelines`).
    pub pipeline: String,
    /// The slot: ISO-8601 UTC or MJD, `now` (default), or `scheduled` (the latest time at or before
    /// now that the pipeline's schedule fires).
    #[arg(long, value_name = "TIME", default_value = "now")]
    pub slot: String,
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
    let all = crate::pipeline::def::resolve(&ws.config.pipelines, Some(&path));
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
    let secs = crate::pipeline::def::parse_duration_s(s).map_err(CliError::Input)?;
    if secs < 0.3 {
        return Err(CliError::Input(format!(
            "--lease {s} is too short; give at least 1s"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// What every worker thread of this process needs.
#[derive(Clone)]
pub(super) struct Engine {
    pub me: SelfInvocation,
    pub logs_dir: PathBuf,
    pub lease: Duration,
}

impl Engine {
    pub fn new(ctx: &Ctx, ws: &Workspace, lease: Duration) -> anyhow::Result<Engine> {
        let database = super::absolute(&ctx.db_arg.clone().unwrap_or_else(|| ws.database()));
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

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (ws, all) = pipelines(ctx)?;
    let p = checked(&all, &args.pipeline)?;
    let now = chrono::Utc::now();
    let slot_time = match args.slot.trim() {
        "now" => now,
        "scheduled" => {
            let sched = p.def.schedule.as_deref().ok_or_else(|| {
                CliError::Input(format!(
                    "pipeline '{}' has no schedule; give --slot TIME or --slot now",
                    p.name
                ))
            })?;
            exec::scheduled_slot(sched, now).map_err(CliError::Input)?
        }
        s => super::plan::parse_time(s)?,
    };
    let slot = Slot::new(slot_time, p.def.window.as_deref()).map_err(CliError::Input)?;
    let given = parse_params(&args.params)?;
    let params = exec::resolve_params(&p, &given).map_err(CliError::Input)?;
    let engine = Engine::new(ctx, &ws, lease(&args.lease)?)?;
    let q = engine.queue()?;
    let created = exec::create(&q, &p, &slot, &params).map_err(map_pipeline_err)?;
    let eid = created.execution_id;
    let status = exec::sync(q.connection(), eid)?;
    if created.existing {
        ctx.info(&format!(
            "execution {eid} of {} for slot {} exists ({status}){}",
            p.name,
            exec::iso(slot.time),
            if status == "running" {
                "; resuming it"
            } else {
                "; reporting it"
            }
        ));
    } else {
        ctx.info(&format!(
            "execution {eid} of {} for slot {} created with {} job(s)",
            p.name,
            exec::iso(slot.time),
            p.def.jobs.len()
        ));
    }
    if status == "running" && !args.detach {
        engine.work(args.workers, StopWhen::ExecutionDone(eid))?;
    }
    let mut m = engine.manifest(&q, eid).map_err(map_pipeline_err)?;
    m.existing = created.existing;
    finish(ctx, &m)
}
