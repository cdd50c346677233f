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
//! Two backends ([`Database`]): on SQLite the queue is [`crate::queue::Queue`] (one per thread, opened
//! by [`Engine::queue`]); on PostgreSQL every job is an ABSURD task and executions live in contimg's
//! schema ([`PgPipeline`], one connection per thread). Workers run over either through
//! [`JobSource`]. There, executions have no runner lease (ABSURD's claims are the leases); the
//! notification outbox is one implementation over [`Db`] on both.
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
use super::exec::{self, Admitted, ExecStatus, ExecutionManifest, ExecutionSummary, Slot};
use super::jobs::SelfInvocation;
use super::notify::{Delivery, DeliveryStats, Notification, NotifyConfig};
use super::pg::{PgJobs, PgPipeline};
use super::procs::process_id;
use super::source::{JobSource, SqliteJobs};
use super::worker::{StopWhen, WorkStats, WorkerConfig};
use super::{Database, PipelineError, cron, runner, validate};
use crate::queue::{Queue, SystemClock};
use crate::store::sql::SqliteRef;
use crate::store::sql::Writer;
use crate::store::{Db, Sql, Store, Target};
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

/// An engine's connection to its database, for one command.
enum Backend {
    Sqlite(Queue),
    Postgres(Box<PgPipeline>),
}

/// One process's handle on a workspace's pipelines.
#[derive(Clone)]
pub struct Engine {
    me: SelfInvocation,
    logs_dir: PathBuf,
    lease: Duration,
    delivery: Delivery,
    /// Whether worker threads deliver due notifications (`worker` does; `run` delivers at its start
    /// and end instead).
    workers_deliver: bool,
}

impl Engine {
    pub fn new(setup: Setup, lease: Duration) -> Engine {
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
                database: setup.database,
            },
            logs_dir: setup.logs_dir,
            lease,
            workers_deliver: false,
        }
    }

    /// Worker threads also deliver due notifications after each task and when idle.
    pub fn workers_deliver(mut self) -> Engine {
        self.workers_deliver = true;
        self
    }

    /// A queue over a new connection (one per thread); SQLite only.
    pub fn queue(&self) -> Result<Queue, PipelineError> {
        let Target::Sqlite(path) = &self.me.database.target else {
            return Err(PipelineError::Invalid(format!(
                "{}: this is the embedded SQLite queue's call; the database is PostgreSQL",
                self.me.database.target
            )));
        };
        let store = crate::store::Store::open(path)?;
        Ok(Queue::new(store.conn, Arc::new(SystemClock)))
    }

    /// The pipeline on PostgreSQL over a new connection, or `None` on SQLite.
    pub fn postgres(&self) -> Result<Option<PgPipeline>, PipelineError> {
        match &self.me.database.target {
            Target::Sqlite(_) => Ok(None),
            Target::Postgres { url, schema } => Ok(Some(PgPipeline::open(
                url,
                schema,
                &self.me.database.queue,
            )?)),
        }
    }

    /// A job source over a new connection (one per worker thread).
    fn source(&self) -> Result<Box<dyn JobSource>, PipelineError> {
        Ok(match self.postgres()? {
            Some(pg) => Box::new(PgJobs {
                pg,
                outbox: if self.workers_deliver {
                    Some(self.outbox()?)
                } else {
                    None
                },
            }),
            None => Box::new(SqliteJobs(self.queue()?)),
        })
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
                        let mut q = self.source()?;
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
        }
        Ok(total)
    }

    /// Delivers pending notifications (all of them when `all`); a channel error is recorded in the
    /// outbox and reported as a warning, never an error of the command.
    pub fn deliver_now(&self, progress: &dyn Progress) -> Result<(), PipelineError> {
        self.deliver(&mut self.outbox()?, true, progress);
        Ok(())
    }

    /// The notification outbox over a new connection, on either backend.
    pub fn outbox(&self) -> Result<Db, PipelineError> {
        match &self.me.database.target {
            t @ Target::Sqlite(_) => Ok(Db::open(t)?),
            Target::Postgres { url, schema } => super::pg::outbox(url, schema),
        }
    }

    /// Delivers pending notifications from `db` (all of them when `all`).
    pub fn deliver(&self, db: &mut dyn Writer, all: bool, progress: &dyn Progress) {
        match super::notify::deliver(db, &self.delivery, all) {
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

    /// Delivers every pending notification now and returns what happened (`notifications --deliver`).
    pub fn deliver_all(&self) -> Result<DeliveryStats, PipelineError> {
        Ok(super::notify::deliver(
            &mut self.outbox()?,
            &self.delivery,
            true,
        )?)
    }

    /// The manifest of execution `eid` (synced first).
    pub fn manifest(&self, q: &Queue, eid: i64) -> Result<ExecutionManifest, PipelineError> {
        exec::manifest(q, &self.me.database.target.to_string(), eid)
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
        let params = exec::resolve_params(p, params)?;
        let mut b = self.backend(progress)?;
        let now = crate::time::now();
        let slot_time = match choice {
            SlotChoice::Now => now,
            SlotChoice::Scheduled => exec::scheduled_slot(schedule_of(p)?, now)?,
            SlotChoice::At(t) => t,
        };
        let slot = Slot::new(slot_time, p.def.window.as_deref())?;
        let r = self.slot(&mut b, p, &slot, &params, detach, workers, progress)?;
        self.done(&b, progress);
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
        let mut b = self.backend(progress)?;
        let sched = schedule_of(p)?;
        let last = match &mut b {
            Backend::Sqlite(q) => exec::last_success(q.connection(), &p.name)?,
            Backend::Postgres(pg) => pg.last_success(&p.name)?,
        };
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
            let slot = Slot::new(*t, p.def.window.as_deref())?;
            executions.push(self.slot(&mut b, p, &slot, &params, false, workers, progress)?);
        }
        self.done(&b, progress);
        Ok(CatchUp {
            schema: "contimg.catch-up/1",
            pipeline: p.name.clone(),
            last_success: last.map(iso),
            slots: slots.iter().map(|t| iso(*t)).collect(),
            dropped: dropped.iter().map(|t| iso(*t)).collect(),
            executions,
        })
    }

    /// The backend of this engine's database over a new connection; on SQLite, the pending
    /// notifications are delivered first (a new run is the moment to try again).
    fn backend(&self, progress: &dyn Progress) -> Result<Backend, PipelineError> {
        let b = match self.postgres()? {
            Some(pg) => Backend::Postgres(Box::new(pg)),
            None => Backend::Sqlite(self.queue()?),
        };
        self.done(&b, progress);
        Ok(b)
    }

    /// Delivers the pending notifications (before and after a run).
    fn done(&self, b: &Backend, progress: &dyn Progress) {
        match b {
            Backend::Sqlite(q) => self.deliver(&mut SqliteRef(q.connection()), true, progress),
            Backend::Postgres(_) => match self.outbox() {
                Ok(mut db) => self.deliver(&mut db, true, progress),
                Err(e) => progress.warn(&format!("warning: {e}")),
            },
        }
    }

    /// One slot on either backend.
    #[allow(clippy::too_many_arguments)]
    fn slot(
        &self,
        b: &mut Backend,
        p: &NamedPipeline,
        slot: &Slot,
        params: &BTreeMap<String, Option<String>>,
        detach: bool,
        workers: usize,
        progress: &dyn Progress,
    ) -> Result<SlotRun, PipelineError> {
        match b {
            Backend::Sqlite(q) => self.run_slot(q, p, slot, params, detach, workers, progress),
            Backend::Postgres(pg) => {
                self.run_slot_pg(pg, p, slot, params, detach, workers, progress)
            }
        }
    }

    /// Creates (or finds) the execution for one slot and works it unless another process does.
    #[allow(clippy::too_many_arguments)]
    fn run_slot(
        &self,
        q: &Queue,
        p: &NamedPipeline,
        slot: &Slot,
        params: &BTreeMap<String, Option<String>>,
        detach: bool,
        workers: usize,
        progress: &dyn Progress,
    ) -> Result<SlotRun, PipelineError> {
        let slot_s = iso(slot.time);
        let runner_lease = (!detach).then_some(self.lease);
        let created = match admit(p, &slot_s, progress, || {
            exec::create(q, p, slot, params, runner_lease)
        })? {
            Ok(c) => c,
            Err(skipped) => return Ok(SlotRun::Skipped(skipped)),
        };
        let eid = created.execution_id;
        let status = exec::sync(q.connection(), eid)?;
        announce(p, &slot_s, created, status, progress);
        if !status.is_finished() && !detach {
            self.work_as_runner(q, eid, workers, progress)?;
        }
        let mut m = self.manifest(q, eid)?;
        m.existing = created.existing;
        Ok(SlotRun::Ran(Box::new(m)))
    }

    /// [`Engine::run_slot`] on PostgreSQL: any number of processes on any machines may run the same
    /// slot; they find one execution and all work the queue until it ends (ABSURD hands each run to one
    /// of them).
    #[allow(clippy::too_many_arguments)]
    fn run_slot_pg(
        &self,
        pg: &mut PgPipeline,
        p: &NamedPipeline,
        slot: &Slot,
        params: &BTreeMap<String, Option<String>>,
        detach: bool,
        workers: usize,
        progress: &dyn Progress,
    ) -> Result<SlotRun, PipelineError> {
        let slot_s = iso(slot.time);
        let created = match admit(p, &slot_s, progress, || pg.create(p, slot, params))? {
            Ok(c) => c,
            Err(skipped) => return Ok(SlotRun::Skipped(skipped)),
        };
        let eid = created.execution_id;
        let status = pg.sync(eid)?;
        announce(p, &slot_s, created, status, progress);
        if !status.is_finished() && !detach {
            self.work(workers, StopWhen::ExecutionDone(eid))?;
        }
        let mut m = pg.manifest(eid)?;
        m.existing = created.existing;
        Ok(SlotRun::Ran(Box::new(m)))
    }

    /// Takes the runner lease of `eid` and works it to its end, or reports who holds it.
    fn work_as_runner(
        &self,
        q: &Queue,
        eid: i64,
        workers: usize,
        progress: &dyn Progress,
    ) -> Result<(), PipelineError> {
        if let Some(holder) = runner::acquire(q.connection(), eid, self.lease)? {
            progress.info(&format!(
                "execution {eid} is being run by {holder}; reporting it (see `contimg status {eid}`)"
            ));
            return Ok(());
        }
        let Target::Sqlite(path) = &self.me.database.target else {
            unreachable!("runner leases are kept on SQLite only")
        };
        let hb = runner::Heartbeat::start(path.clone(), eid, self.lease);
        let r = self.work(workers, StopWhen::ExecutionDone(eid));
        drop(hb);
        runner::release(q.connection(), eid)?;
        r.map(|_| ())
    }

    /// Resets the failed and cancelled jobs of `eid` and works it to its end (unless `detach`).
    pub fn retry(
        &self,
        eid: i64,
        detach: bool,
        workers: usize,
        progress: &dyn Progress,
    ) -> Result<ExecutionManifest, PipelineError> {
        if let Some(mut pg) = self.postgres()? {
            let reset = pg.retry(eid)?;
            let status = pg.sync(eid)?;
            progress.info(&format!(
                "execution {eid}: {} job(s) reset; {status}",
                reset.len()
            ));
            if !detach && !status.is_finished() {
                self.work(workers, StopWhen::ExecutionDone(eid))?;
            }
            return pg.manifest(eid);
        }
        let q = self.queue()?;
        self.manifest(&q, eid)?;
        let reset = q.retry_failed(eid)?;
        let status = exec::sync(q.connection(), eid)?;
        progress.info(&format!(
            "execution {eid}: {} job(s) reset; {status}",
            reset.len()
        ));
        if !detach && !status.is_finished() {
            self.work(workers, StopWhen::ExecutionDone(eid))?;
        }
        self.manifest(&q, eid)
    }

    /// Cancels the pending, sleeping and running tasks of `eid`.
    pub fn cancel(
        &self,
        eid: i64,
        progress: &dyn Progress,
    ) -> Result<ExecutionManifest, PipelineError> {
        if let Some(mut pg) = self.postgres()? {
            let n = pg.cancel(eid)?;
            progress.info(&format!("execution {eid}: {n} job(s) cancelled"));
            return pg.manifest(eid);
        }
        let q = self.queue()?;
        // Refuse an unknown id before changing anything.
        self.manifest(&q, eid)?;
        let cancelled = q.cancel_execution(eid)?;
        exec::sync(q.connection(), eid)?;
        progress.info(&format!(
            "execution {eid}: {} task(s) cancelled",
            cancelled.len()
        ));
        self.manifest(&q, eid)
    }
}

/// The latest `limit` executions, newest first, as stored (`store` may be read-only).
pub fn executions(store: &Store, limit: usize) -> Result<Vec<ExecutionSummary>, PipelineError> {
    exec::listing(&store.conn, limit)
}

/// One execution's manifest as stored (`store` may be read-only).
pub fn execution(store: Store, eid: i64) -> Result<ExecutionManifest, PipelineError> {
    let database = crate::fsutil::absolute(&store.path).display().to_string();
    let q = Queue::new(store.conn, Arc::new(SystemClock));
    exec::report(&q, &database, eid)
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
