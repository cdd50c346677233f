//! The pipeline API: everything `run`, `worker`, `status`, `retry`, `cancel`, `cron` and
//! `notifications` do, so that each command only turns its arguments into one call here and prints
//! the result.
//!
//! An [`Engine`] is one process's view of a workspace's queue: where the contimg binary and the
//! database are, the lease its workers take, and how notifications are delivered. It owns the
//! orchestration that used to sit in the command line: admitting a new execution under the
//! pipeline's `max_active`, taking the execution's runner lease, the worker threads, catch-up over
//! missed slots, retry and cancel.
//!
//! Two backends ([`Database`]): the embedded SQLite queue, or ABSURD on PostgreSQL with executions
//! in contimg's schema. The engine opens its database's [`Backend`] once and goes through it for
//! everything: execution stores ([`Executions`], one connection per thread), the worker threads'
//! job sources ([`super::source::JobSource`]) and the notification outbox; it never looks at which
//! backend it has (see [`super::executions`] for where the two differ).
//!
//! Invariants: every change of task state is followed by a sync of its execution before anything is
//! reported; progress and warnings go through the caller's [`Progress`], never straight to stdout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::def::{NamedPipeline, WhenBusy};
use super::exec::{
    self, Admitted, ExecStatus, ExecutionManifest, ExecutionSummary, RequestKey, Slot,
};
use super::executions::{Access, Backend, Executions};
use super::jobs::SelfInvocation;
use super::notify::{Delivery, DeliveryStats, Notification, NotifyConfig};
use super::procs::process_id;
use super::worker::{StopWhen, WorkStats, WorkerConfig};
use super::{Database, PipelineError, cron, validate};
use crate::store::{Db, Sql};
use crate::time::iso;

/// Where progress lines, details and warnings go (the command line prints them on stderr).
pub trait Progress {
    fn info(&self, msg: &str);
    fn debug(&self, msg: &str);
    fn warn(&self, msg: &str);
}

/// What an engine needs to know about the workspace.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The contimg binary that jobs run (`plan`, `build`, `qa`).
    pub exe: PathBuf,
    pub workspace: PathBuf,
    /// Where the products of the executions this engine creates go (the workspace's mosaics
    /// directory, absolute); recorded with each execution.
    pub products_dir: PathBuf,
    pub database: Database,
    pub logs_dir: PathBuf,
    pub notify: NotifyConfig,
    /// The definitions in force (their inline webhook URLs are delivered to; they are never stored).
    pub pipelines: Vec<NamedPipeline>,
}

/// Finds a pipeline by name and checks it; errors name what is wrong.
pub fn checked(all: &[NamedPipeline], name: &str) -> Result<NamedPipeline, PipelineError> {
    let p = all.iter().find(|p| p.name == name).ok_or_else(|| {
        PipelineError::Invalid(format!(
            "no pipeline named '{name}'; known: {}",
            all.iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let errs = validate::validate(p);
    if !errs.is_empty() {
        return Err(PipelineError::Invalid(format!(
            "pipeline '{name}' is invalid:\n{}",
            errs.iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )));
    }
    Ok(p.clone())
}

/// A lease length from a duration argument (at least a second).
pub fn lease(s: &str) -> Result<Duration, PipelineError> {
    let d = crate::time::parse_duration(s).map_err(|e| PipelineError::Invalid(e.to_string()))?;
    if d.as_secs_f64() < 0.3 {
        return Err(PipelineError::Invalid(format!(
            "--lease {s} is too short; give at least 1s"
        )));
    }
    Ok(d)
}

/// Which slot `run` is for.
#[derive(Debug, Clone, Copy)]
pub enum SlotChoice {
    Now,
    /// The latest time at or before now that the pipeline's schedule fires.
    Scheduled,
    At(DateTime<Utc>),
}

/// A slot skipped because `max_active` executions of the pipeline are running (`contimg.skipped/1`).
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub schema: &'static str,
    pub pipeline: String,
    pub slot: String,
    pub reason: &'static str,
    pub active_executions: Vec<i64>,
}

/// What happened to one slot.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SlotRun {
    Ran(Box<ExecutionManifest>),
    Skipped(Skipped),
}

/// What `run --catch-up` did (`contimg.catch-up/1`).
#[derive(Debug, Clone, Serialize)]
pub struct CatchUp {
    pub schema: &'static str,
    pub pipeline: String,
    pub last_success: Option<String>,
    pub slots: Vec<String>,
    pub dropped: Vec<String>,
    pub executions: Vec<SlotRun>,
}

impl CatchUp {
    /// How many caught-up executions failed or were cancelled.
    pub fn failed(&self) -> usize {
        self.executions
            .iter()
            .filter(|r| {
                matches!(r, SlotRun::Ran(m) if matches!(m.status, ExecStatus::Failed | ExecStatus::Cancelled))
            })
            .count()
    }
}

/// One process's handle on a workspace's pipelines.
#[derive(Clone)]
pub struct Engine {
    me: SelfInvocation,
    backend: Arc<dyn Backend>,
    logs_dir: PathBuf,
    products_dir: PathBuf,
    lease: Duration,
    delivery: Delivery,
    /// Whether worker threads deliver due notifications (`worker` does; `run` delivers at its start
    /// and end instead).
    workers_deliver: bool,
}

impl Engine {
    pub fn new(setup: Setup, lease: Duration) -> Engine {
        let backend = backend(&setup.database);
        Engine {
            delivery: Delivery {
                config: setup.notify,
                logs_dir: setup.logs_dir.clone(),
                by: process_id(),
                inline_urls: super::notify::inline_urls(&setup.pipelines),
            },
            me: SelfInvocation {
                exe: setup.exe,
                workspace: setup.workspace,
                database: backend.child_database(),
            },
            backend,
            logs_dir: setup.logs_dir,
            products_dir: setup.products_dir,
            lease,
            workers_deliver: false,
        }
    }

    /// Worker threads also deliver due notifications after each task and when idle.
    pub fn workers_deliver(mut self) -> Engine {
        self.workers_deliver = true;
        self
    }

    /// The execution store over a new connection (one per thread).
    pub fn executions(&self) -> Result<Box<dyn Executions>, PipelineError> {
        self.backend.executions(Access::ReadWrite)
    }

    fn worker_config(&self, idx: usize) -> WorkerConfig {
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
    pub fn work(&self, n: usize, stop: StopWhen) -> Result<WorkStats, PipelineError> {
        let results: Vec<Result<WorkStats, PipelineError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n.max(1))
                .map(|i| {
                    s.spawn(move || {
                        let mut q = self.backend.jobs(self.workers_deliver)?;
                        super::worker::work(q.as_mut(), &self.worker_config(i), stop)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(PipelineError::WorkerPanicked)))
                .collect()
        });
        let mut total = WorkStats::default();
        for r in results {
            let s = r?;
            total.attempts += s.attempts;
            total.completed += s.completed;
            total.failed += s.failed;
            total.handed_back += s.handed_back;
        }
        Ok(total)
    }

    /// Delivers pending notifications (all of them when `all`); a channel error is recorded in the
    /// outbox and reported as a warning, never an error of the command.
    pub fn deliver_now(&self, progress: &dyn Progress) -> Result<(), PipelineError> {
        let r = super::notify::deliver(&mut self.outbox()?, &self.delivery, true);
        report_delivery(r.map_err(PipelineError::from), progress);
        Ok(())
    }

    /// Waits for the database to answer: a PostgreSQL server that cannot be reached (restarting,
    /// not up yet at boot) is waited for like any outage ([`super::reconnect::Reconnecting`]: one
    /// warning, back-off) until it answers or a stop signal arrives ([`PipelineError::Unreachable`]).
    /// Any other error (a wrong password, a bad URL) is returned at once. For the commands that
    /// work jobs (`worker`, `run`), which must start unattended; `status` and the others fail at
    /// once instead.
    pub fn wait_for_database(&self) -> Result<(), PipelineError> {
        self.backend.jobs(false)?.now().map(|_| ())
    }

    /// The notification outbox over a new connection, on either backend.
    pub fn outbox(&self) -> Result<Db, PipelineError> {
        self.backend.outbox()
    }

    /// Delivers every pending notification now and returns what happened (`notifications --deliver`).
    pub fn deliver_all(&self) -> Result<DeliveryStats, PipelineError> {
        Ok(super::notify::deliver(
            &mut self.outbox()?,
            &self.delivery,
            true,
        )?)
    }

    /// Runs `p` for one slot: creates (or finds) its execution and works it to its end unless
    /// another process does, `detach` asks not to, or `max_active` skips the slot.
    pub fn run(
        &self,
        p: &NamedPipeline,
        params: &BTreeMap<String, String>,
        choice: SlotChoice,
        detach: bool,
        workers: usize,
        progress: &dyn Progress,
    ) -> Result<SlotRun, PipelineError> {
        self.run_keyed(p, params, choice, None, detach, workers, progress)
    }

    /// [`Engine::run`] for a request that came with an idempotency key: the execution recorded
    /// with `key` is the answer whatever the slot (see [`RequestKey`]).
    #[allow(clippy::too_many_arguments)]
    pub fn run_keyed(
        &self,
        p: &NamedPipeline,
        params: &BTreeMap<String, String>,
        choice: SlotChoice,
        key: Option<&RequestKey>,
        detach: bool,
        workers: usize,
        progress: &dyn Progress,
    ) -> Result<SlotRun, PipelineError> {
        let params = exec::resolve_params(p, params)?;
        let mut ex = self.opened(progress)?;
        let now = crate::time::now();
        let slot_time = match choice {
            SlotChoice::Now => now,
            SlotChoice::Scheduled => exec::scheduled_slot(schedule_of(p)?, now)?,
            SlotChoice::At(t) => t,
        };
        let slot = Slot::new(slot_time, p.def.window.as_deref())?;
        let r = self.run_slot(
            ex.as_mut(),
            p,
            &slot,
            key,
            &params,
            detach,
            workers,
            progress,
        )?;
        self.done(ex.as_mut(), progress);
        Ok(r)
    }

    /// Runs every scheduled slot of `p` missed since its last successful execution, oldest first
    /// (at most the newest `max_catch_up`).
    pub fn catch_up(
        &self,
        p: &NamedPipeline,
        params: &BTreeMap<String, String>,
        max_catch_up: u32,
        workers: usize,
        progress: &dyn Progress,
    ) -> Result<CatchUp, PipelineError> {
        let params = exec::resolve_params(p, params)?;
        let mut ex = self.opened(progress)?;
        let sched = schedule_of(p)?;
        let last = ex.last_success(&p.name)?;
        let (slots, dropped) = cron::catch_up_slots(sched, last, crate::time::now(), max_catch_up)?;
        if let Some(first) = dropped.first() {
            progress.warn(&format!(
                "warning: {} missed slot(s) from {} are older than the newest [cron] max_catch_up = {max_catch_up}; \
                 backfill them with --slot TIME",
                dropped.len(),
                iso(*first),
            ));
        }
        progress.info(&format!(
            "catch-up of {}: {} slot(s) since {}",
            p.name,
            slots.len(),
            last.map_or_else(|| "(no successful execution yet)".into(), iso)
        ));
        let mut executions = Vec::new();
        for t in &slots {
            if super::shutdown::requested() {
                break;
            }
            let slot = Slot::new(*t, p.def.window.as_deref())?;
            executions.push(self.run_slot(
                ex.as_mut(),
                p,
                &slot,
                None,
                &params,
                false,
                workers,
                progress,
            )?);
        }
        self.done(ex.as_mut(), progress);
        Ok(CatchUp {
            schema: "contimg.catch-up/1",
            pipeline: p.name.clone(),
            last_success: last.map(iso),
            slots: slots.iter().map(|t| iso(*t)).collect(),
            dropped: dropped.iter().map(|t| iso(*t)).collect(),
            executions,
        })
    }

    /// The execution store over a new connection, the pending notifications delivered first (a new
    /// run is the moment to try again).
    fn opened(&self, progress: &dyn Progress) -> Result<Box<dyn Executions>, PipelineError> {
        let mut ex = self.executions()?;
        self.done(ex.as_mut(), progress);
        Ok(ex)
    }

    /// Delivers the pending notifications (before and after a run); a failure is a warning.
    fn done(&self, ex: &mut dyn Executions, progress: &dyn Progress) {
        report_delivery(ex.deliver(&self.delivery, true), progress);
    }

    /// Creates (or finds) the execution for one slot and works it to its end unless another
    /// process does (SQLite: the runner lease says who) or `detach`. On PostgreSQL any number of
    /// processes on any machines may run the same slot; they find one execution and all work the
    /// queue until it ends (ABSURD hands each run to one of them). `key`: see [`Engine::run_keyed`].
    #[allow(clippy::too_many_arguments)]
    fn run_slot(
        &self,
        ex: &mut dyn Executions,
        p: &NamedPipeline,
        slot: &Slot,
        key: Option<&RequestKey>,
        params: &BTreeMap<String, Option<String>>,
        detach: bool,
        workers: usize,
        progress: &dyn Progress,
    ) -> Result<SlotRun, PipelineError> {
        let slot_s = iso(slot.time);
        let runner_lease = (!detach).then_some(self.lease);
        // The products directory recorded with the execution is this workspace's: made here, so
        // a worker elsewhere that finds it missing knows the shared filesystem is not mounted.
        if let Err(e) = std::fs::create_dir_all(&self.products_dir) {
            progress.warn(&format!(
                "cannot create the products directory {}: {e}",
                self.products_dir.display()
            ));
        }
        let created = match admit(p, &slot_s, progress, || {
            ex.create(p, slot, params, &self.products_dir, runner_lease, key)
        })? {
            Ok(c) => c,
            Err(skipped) => return Ok(SlotRun::Skipped(skipped)),
        };
        let eid = created.execution_id;
        let status = ex.sync(eid)?;
        announce(p, &slot_s, created, status, progress);
        if !status.is_finished() && !detach {
            let mut work = || self.work(workers, StopWhen::ExecutionDone(eid)).map(|_| ());
            if let Some(holder) = ex.as_runner(eid, self.lease, &mut work)? {
                progress.info(&format!(
                    "execution {eid} is being run by {holder}; reporting it (see `contimg status {eid}`)"
                ));
            }
        }
        let mut m = ex.manifest(eid)?;
        m.existing = created.existing;
        Ok(SlotRun::Ran(Box::new(m)))
    }

    /// Resets the failed and cancelled jobs of `eid` and works it to its end (unless `detach`).
    pub fn retry(
        &self,
        eid: i64,
        detach: bool,
        workers: usize,
        progress: &dyn Progress,
    ) -> Result<ExecutionManifest, PipelineError> {
        let mut ex = self.executions()?;
        let reset = ex.retry(eid)?;
        let status = ex.sync(eid)?;
        progress.info(&format!("execution {eid}: {reset} job(s) reset; {status}"));
        if !detach && !status.is_finished() {
            self.work(workers, StopWhen::ExecutionDone(eid))?;
        }
        ex.manifest(eid)
    }

    /// Cancels the pending, sleeping and running jobs of `eid`.
    pub fn cancel(
        &self,
        eid: i64,
        progress: &dyn Progress,
    ) -> Result<ExecutionManifest, PipelineError> {
        let mut ex = self.executions()?;
        let n = ex.cancel(eid)?;
        progress.info(&format!("execution {eid}: {n} job(s) cancelled"));
        ex.manifest(eid)
    }
}

/// Reports what a delivery did (on `progress`), or its error as a warning.
fn report_delivery(r: Result<DeliveryStats, PipelineError>, progress: &dyn Progress) {
    match r {
        Ok(s) => {
            if s.delivered + s.retrying + s.failed > 0 {
                progress.info(&format!(
                    "notifications: {} delivered, {} to retry, {} given up, {} skipped (unconfigured); see `contimg notifications`",
                    s.delivered, s.retrying, s.failed, s.skipped
                ));
            }
        }
        Err(e) => progress.warn(&format!("warning: {e}")),
    }
}

/// The latest `limit` executions of `db`, newest first, read-only (see [`Access::ReadOnly`]).
pub fn executions(db: &Database, limit: usize) -> Result<Vec<ExecutionSummary>, PipelineError> {
    backend(db).executions(Access::ReadOnly)?.list(limit)
}

/// The latest `limit` tasks other clients spawned on `db`'s queue of a type `[postgres]
/// accept_outside` names, newest first (none on SQLite).
pub fn standalone_tasks(
    db: &Database,
    limit: usize,
) -> Result<Vec<super::executions::StandaloneTask>, PipelineError> {
    backend(db)
        .executions(Access::ReadOnly)?
        .standalone(&db.accept_outside, limit)
}

/// One execution's manifest in `db`, read-only (see [`Access::ReadOnly`]).
pub fn execution(db: &Database, eid: i64) -> Result<ExecutionManifest, PipelineError> {
    backend(db).executions(Access::ReadOnly)?.manifest(eid)
}

/// The notification outbox, newest first.
pub fn notifications(db: &mut dyn Sql, limit: usize) -> Result<Vec<Notification>, PipelineError> {
    Ok(super::notify::list(db, limit)?)
}

/// Says which execution a run found or made, and what happens to it next.
fn announce(
    p: &NamedPipeline,
    slot_s: &str,
    created: exec::Created,
    status: ExecStatus,
    progress: &dyn Progress,
) {
    let eid = created.execution_id;
    if created.existing {
        progress.info(&format!(
            "execution {eid} of {} for slot {slot_s} exists ({status}){}",
            p.name,
            if status.is_finished() {
                "; reporting it"
            } else {
                "; resuming it"
            }
        ));
    } else {
        progress.info(&format!(
            "execution {eid} of {} for slot {slot_s} created with {} job(s)",
            p.name,
            p.def.jobs.len()
        ));
    }
}

/// Creates (or finds) the execution of a slot with `create` (either backend's), waiting while
/// `max_active` executions of other slots run, or skipping the slot, as `when_busy` says.
fn admit(
    p: &NamedPipeline,
    slot_s: &str,
    progress: &dyn Progress,
    mut create: impl FnMut() -> Result<Admitted, PipelineError>,
) -> Result<Result<exec::Created, Skipped>, PipelineError> {
    loop {
        match create()? {
            Admitted::Yes(c) => return Ok(Ok(c)),
            Admitted::Busy(active) => {
                if let Some(skipped) = busy(p, slot_s, active, progress) {
                    return Ok(Err(skipped));
                }
            }
        }
    }
}

/// What to do while `max_active` executions of `p` for other slots run: `Some` to skip the slot,
/// `None` (after a pause) to try again.
fn busy(
    p: &NamedPipeline,
    slot_s: &str,
    active: Vec<i64>,
    progress: &dyn Progress,
) -> Option<Skipped> {
    match p.def.when_busy {
        WhenBusy::Skip => {
            progress.info(&format!(
                "{} already has {} execution(s) running ({}; max_active = {}); slot {slot_s} skipped \
                 (`contimg run {} --catch-up` runs it later)",
                p.name,
                active.len(),
                active.iter().map(std::string::ToString::to_string).collect::<Vec<_>>().join(", "),
                p.def.max_active,
                p.name
            ));
            Some(Skipped {
                schema: "contimg.skipped/1",
                pipeline: p.name.clone(),
                slot: slot_s.to_string(),
                reason: "max_active executions of this pipeline are running",
                active_executions: active,
            })
        }
        WhenBusy::Wait => {
            progress.debug(&format!(
                "{}: waiting for execution(s) {active:?} to end (max_active = {})",
                p.name, p.def.max_active
            ));
            std::thread::sleep(Duration::from_secs(2));
            None
        }
    }
}

fn schedule_of(p: &NamedPipeline) -> Result<&str, PipelineError> {
    p.def.schedule.as_deref().ok_or_else(|| {
        PipelineError::Invalid(format!(
            "pipeline '{}' has no schedule; give --slot TIME or --slot now",
            p.name
        ))
    })
}

/// The crontab lines of a workspace's scheduled pipelines.
#[derive(Debug, Clone, Serialize)]
pub struct CronPlan {
    pub workspace: PathBuf,
    pub pipelines: Vec<String>,
    pub lines: Vec<String>,
    pub block: String,
}

/// The crontab block for every scheduled pipeline of `all` (each must be valid).
pub fn cron_plan(
    exe: &Path,
    workspace: &Path,
    logs_dir: &Path,
    all: &[NamedPipeline],
) -> Result<CronPlan, PipelineError> {
    cron::quotable("workspace path", &workspace.display().to_string())?;
    let mut lines = Vec::new();
    let mut pipelines = Vec::new();
    for p in all.iter().filter(|p| p.def.schedule.is_some()) {
        let errs = validate::validate(p);
        if let Some(first) = errs.first() {
            return Err(PipelineError::Invalid(format!(
                "pipeline '{}' is invalid (see `contimg pipelines check`): {first}",
                p.name
            )));
        }
        if let Some(l) = cron::line(exe, workspace, logs_dir, p)? {
            lines.push(l);
            pipelines.push(p.name.clone());
        }
    }
    Ok(CronPlan {
        block: cron::block(workspace, &lines),
        workspace: workspace.to_path_buf(),
        pipelines,
        lines,
    })
}

/// Puts `plan`'s block into the crontab (`Some`) or removes the workspace's block (`None`) through
/// the crontab program; returns whether the crontab changed.
pub fn cron_apply(
    program: &[String],
    workspace: &Path,
    plan: Option<&CronPlan>,
) -> Result<bool, cron::CronError> {
    let old = cron::read(program)?;
    let new = cron::splice(&old, workspace, plan.map(|p| p.block.as_str()))?;
    let changed = new != old;
    if changed {
        cron::write(program, &new)?;
    }
    Ok(changed)
}

/// The backend of `db` (here, not beside the traits in `executions`, which both
/// implementations import: no circle).
pub fn backend(db: &Database) -> Arc<dyn Backend> {
    // The one place outside the store and the queue that looks at which backend a database is.
    match &db.target {
        crate::store::Target::Sqlite(path) => Arc::new(super::sqlite::SqliteBackend::new(path)),
        crate::store::Target::Postgres { url, schema } => Arc::new(super::pg::PgBackend {
            url: url.clone(),
            schema: schema.clone(),
            queue: db.queue.clone(),
            accept_outside: db.accept_outside.clone(),
            run_pipelines: db.run_pipelines.clone(),
        }),
    }
}
