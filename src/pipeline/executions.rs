//! The seam between the pipeline layer and its two backends.
//!
//! [`Executions`] is what an execution store does: create (or find) the execution of a (pipeline,
//! slot) under `max_active`, bring its status up to date with its tasks, describe it (its manifest,
//! the listing, the last success of a pipeline), cancel and retry it, deliver the notification
//! outbox it writes failures to, and hold the execution's runner lease while this process works it.
//! [`Backend`] is what a process opens on a database: execution stores, job sources for worker
//! threads ([`JobSource`]), the outbox alone, and how a job's child process is told the database.
//!
//! [`crate::pipeline::api::backend`] is the one place that looks at which backend a database is; everything above it (run,
//! catch-up, retry, cancel, status, workers, notifications) goes through these traits. The two
//! implementations: [`super::sqlite`] (the embedded queue, executions in [`super::exec`], runner
//! leases in [`super::runner`]) and [`super::pg`] (ABSURD on PostgreSQL).
//!
//! Where the backends differ, by design:
//! * the runner lease: on SQLite one `run` process holds an execution (a lease renewed by a
//!   heartbeat; others report it and exit 0) and `max_active` counts executions with a live runner;
//!   on PostgreSQL ABSURD's claims are the leases, any number of processes work one execution, and
//!   `max_active` counts running executions;
//! * reading: an SQLite store opened with [`Access::ReadOnly`] reports executions as stored (every
//!   writer syncs before it commits); a PostgreSQL store always reconciles with ABSURD first, since
//!   another ABSURD client may have changed a task.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::PipelineError;
use super::def::NamedPipeline;
use super::exec::{Admitted, ExecStatus, ExecutionManifest, ExecutionSummary, RequestKey, Slot};
use super::jobs::ChildDatabase;
use super::notify::{Delivery, DeliveryStats};
use super::runner::Holder;
use super::source::JobSource;
use crate::store::Db;

/// A task another client spawned on the queue, of a type the site accepts from outside: run by the
/// workers as a standalone job (or refused, with the reason), in no execution.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StandaloneTask {
    pub task_id: String,
    pub task_type: String,
    /// ABSURD's state of the task (pending, running, completed, failed, cancelled, …).
    pub state: String,
    /// Runs started.
    pub attempts: i64,
    pub enqueued_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// How a command uses an execution store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Creates, syncs and changes executions.
    ReadWrite,
    /// Only reads (`status`): an SQLite file is opened read-only, so it never waits behind a writer
    /// and works on a read-only copy.
    ReadOnly,
}

/// What an execution store does, on either backend (one connection; one per thread).
pub trait Executions {
    /// The database as manifests name it (the SQLite file's absolute path, or the masked URL and
    /// schema).
    fn database(&self) -> String;

    /// Creates the execution of `p` for `slot` with its jobs, or finds the one that exists;
    /// [`Admitted::Busy`] while `max_active` executions of `p` for other slots run. With
    /// `runner_lease`, this process becomes the new execution's runner in the same transaction
    /// (SQLite; ignored on PostgreSQL, where there are no runner leases). `products` is the
    /// directory its products go to, recorded with it (see [`super::exec::planned_jobs`]). With
    /// `key`, the execution recorded with that key is found first, whatever the slot, and a new
    /// one records it.
    fn create(
        &mut self,
        p: &NamedPipeline,
        slot: &Slot,
        params: &BTreeMap<String, Option<String>>,
        products: &Path,
        runner_lease: Option<Duration>,
        key: Option<&RequestKey>,
    ) -> Result<Admitted, PipelineError>;

    /// Brings execution `eid` up to date with its tasks; returns its status.
    fn sync(&mut self, eid: i64) -> Result<ExecStatus, PipelineError>;

    /// The manifest of execution `eid` ([`PipelineError::NoSuchExecution`] for an unknown id).
    fn manifest(&mut self, eid: i64) -> Result<ExecutionManifest, PipelineError>;

    /// The latest `limit` executions, newest first.
    fn list(&mut self, limit: usize) -> Result<Vec<ExecutionSummary>, PipelineError>;

    /// The latest `limit` tasks another client spawned on the queue whose type is one of `accept`
    /// (see [`super::outside`]), newest first. Only ABSURD has such tasks.
    fn standalone(
        &mut self,
        _accept: &[String],
        _limit: usize,
    ) -> Result<Vec<StandaloneTask>, PipelineError> {
        Ok(Vec::new())
    }

    /// The slot of the latest completed execution of `pipeline` (where `run --catch-up` starts).
    fn last_success(&mut self, pipeline: &str) -> Result<Option<DateTime<Utc>>, PipelineError>;

    /// Cancels the unfinished jobs of `eid` and syncs it; returns how many were cancelled. An
    /// unknown id is refused before anything changes.
    fn cancel(&mut self, eid: i64) -> Result<usize, PipelineError>;

    /// Gives the failed and cancelled jobs of `eid` a fresh set of attempts (the completed ones
    /// keep their outputs) and syncs it; returns how many jobs were reset. An unknown id is
    /// refused before anything changes.
    fn retry(&mut self, eid: i64) -> Result<usize, PipelineError>;

    /// Delivers the notifications due in the outbox this store writes failures to (all pending
    /// ones when `all`).
    fn deliver(&mut self, d: &Delivery, all: bool) -> Result<DeliveryStats, PipelineError>;

    /// Takes the runner lease of `eid` for this process, runs `work` while holding it (renewed by a
    /// heartbeat) and lets it go; or, when a live process holds it, returns that holder without
    /// running `work`. On PostgreSQL, where ABSURD's claims are the leases, it only runs `work`.
    fn as_runner(
        &mut self,
        eid: i64,
        lease: Duration,
        work: &mut dyn FnMut() -> Result<(), PipelineError>,
    ) -> Result<Option<Holder>, PipelineError>;
}

/// What a process opens on its database; every call opens a new connection.
pub trait Backend: Send + Sync {
    /// An execution store.
    fn executions(&self, access: Access) -> Result<Box<dyn Executions>, PipelineError>;

    /// A worker thread's job source; with `deliver`, one that also delivers due notifications.
    fn jobs(&self, deliver: bool) -> Result<Box<dyn JobSource>, PipelineError>;

    /// The notification outbox alone (`notifications --deliver`, a worker's start).
    fn outbox(&self) -> Result<Db, PipelineError>;

    /// How a job's child `contimg` is pointed at this database.
    fn child_database(&self) -> ChildDatabase;
}
