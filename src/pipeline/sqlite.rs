//! The pipeline layer on the embedded SQLite queue: [`SqliteBackend`] opens connections to the
//! file, [`SqliteExecutions`] is the execution store over [`crate::queue::Queue`] (executions and
//! their `pipeline_jobs` mirror in [`super::exec`], runner leases in [`super::runner`]), and
//! [`SqliteJobs`] is the worker's job source.
//!
//! Invariants: the execution's tasks, dependencies and rows are written in one transaction; every
//! change of task state is followed by [`super::exec::sync`] before anything is reported; one live
//! runner per execution.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;

use super::PipelineError;
use super::def::NamedPipeline;
use super::exec::{self, Admitted, ExecStatus, ExecutionManifest, ExecutionSummary, Slot};
use super::executions::{Access, Backend, Executions};
use super::jobs::ChildDatabase;
use super::notify::{Delivery, DeliveryStats};
use super::runner::{self, Holder};
use super::source::{Held, Job, JobSource, Upstream, Verdict, held};
use crate::queue::{
    ClaimedTask, Lease, Queue, QueueError, RunKey, SystemClock, TaskKey, WorkLease,
};
use crate::store::sql::SqliteRef;
use crate::store::{Db, Store};
use serde_json::Value;

/// An SQLite database file.
pub struct SqliteBackend {
    path: PathBuf,
}

impl SqliteBackend {
    pub fn new(path: &Path) -> SqliteBackend {
        SqliteBackend {
            path: path.to_path_buf(),
        }
    }

    fn queue(store: Store) -> Queue {
        Queue::new(store.conn, Arc::new(SystemClock))
    }
}

impl Backend for SqliteBackend {
    fn executions(&self, access: Access) -> Result<Box<dyn Executions>, PipelineError> {
        let store = match access {
            Access::ReadWrite => Store::open(&self.path)?,
            // A missing file, or a schema older than this binary's, gets the writing open (which
            // creates or migrates it).
            Access::ReadOnly => match self
                .path
                .is_file()
                .then(|| Store::open_read_only(&self.path))
                .transpose()?
                .flatten()
            {
                Some(s) => s,
                None => Store::open(&self.path)?,
            },
        };
        Ok(Box::new(SqliteExecutions {
            label: crate::fsutil::absolute(&self.path).display().to_string(),
            path: self.path.clone(),
            q: Self::queue(store),
            synced: access == Access::ReadWrite,
        }))
    }

    fn jobs(&self, _deliver: bool) -> Result<Box<dyn JobSource>, PipelineError> {
        // SqliteJobs delivers over its own connection when the worker's configuration says so.
        Ok(Box::new(SqliteJobs(Self::queue(Store::open(&self.path)?))))
    }

    fn outbox(&self) -> Result<Db, PipelineError> {
        Ok(Db::Sqlite(Store::open(&self.path)?))
    }

    fn child_database(&self) -> ChildDatabase {
        ChildDatabase {
            args: vec!["--db".to_string(), self.path.display().to_string()],
            env: BTreeMap::new(),
        }
    }
}

/// The execution store on one SQLite connection.
pub struct SqliteExecutions {
    q: Queue,
    path: PathBuf,
    label: String,
    /// Whether reads sync first (a read-only store reports what is stored).
    synced: bool,
}

impl SqliteExecutions {
    /// Refuses an unknown execution id before anything changes.
    fn known(&self, eid: i64) -> Result<(), PipelineError> {
        self.q
            .connection()
            .query_row(
                "SELECT 1 FROM pipeline_executions WHERE id = ?1",
                [eid],
                |_| Ok(()),
            )
            .optional()?
            .ok_or(PipelineError::NoSuchExecution(eid))
    }
}

impl Executions for SqliteExecutions {
    fn database(&self) -> String {
        self.label.clone()
    }

    fn create(
        &mut self,
        p: &NamedPipeline,
        slot: &Slot,
        params: &BTreeMap<String, Option<String>>,
        products: &Path,
        runner_lease: Option<Duration>,
        key: Option<&exec::RequestKey>,
    ) -> Result<Admitted, PipelineError> {
        exec::create(&self.q, p, slot, params, products, runner_lease, key)
    }

    fn sync(&mut self, eid: i64) -> Result<ExecStatus, PipelineError> {
        exec::sync(self.q.connection(), eid)
    }

    fn manifest(&mut self, eid: i64) -> Result<ExecutionManifest, PipelineError> {
        if self.synced {
            exec::manifest(&self.q, &self.label, eid)
        } else {
            exec::report(&self.q, &self.label, eid)
        }
    }

    fn list(&mut self, limit: usize) -> Result<Vec<ExecutionSummary>, PipelineError> {
        if self.synced {
            exec::list(self.q.connection(), limit)
        } else {
            exec::listing(self.q.connection(), limit)
        }
    }

    fn last_success(&mut self, pipeline: &str) -> Result<Option<DateTime<Utc>>, PipelineError> {
        Ok(exec::last_success(self.q.connection(), pipeline)?)
    }

    fn cancel(&mut self, eid: i64) -> Result<usize, PipelineError> {
        self.known(eid)?;
        exec::sync(self.q.connection(), eid)?;
        let cancelled = self.q.cancel_execution(eid)?;
        exec::sync(self.q.connection(), eid)?;
        Ok(cancelled.len())
    }

    fn retry(&mut self, eid: i64) -> Result<usize, PipelineError> {
        self.known(eid)?;
        exec::sync(self.q.connection(), eid)?;
        let reset = self.q.retry_failed(eid)?;
        exec::sync(self.q.connection(), eid)?;
        Ok(reset.len())
    }

    fn deliver(&mut self, d: &Delivery, all: bool) -> Result<DeliveryStats, PipelineError> {
        Ok(super::notify::deliver(
            &mut SqliteRef(self.q.connection()),
            d,
            all,
        )?)
    }

    fn as_runner(
        &mut self,
        eid: i64,
        lease: Duration,
        work: &mut dyn FnMut() -> Result<(), PipelineError>,
    ) -> Result<Option<Holder>, PipelineError> {
        if let Some(holder) = runner::acquire(self.q.connection(), eid, lease)? {
            return Ok(Some(holder));
        }
        let hb = runner::Heartbeat::start(self.path.clone(), eid, lease);
        let r = work();
        drop(hb);
        runner::release(self.q.connection(), eid)?;
        r.map(|()| None)
    }
}

/// The SQLite queue as a job source.
pub struct SqliteJobs(pub Queue);

fn lease_of(job: &Job) -> Result<Lease, PipelineError> {
    match (job.lease.task, job.lease.run) {
        (TaskKey::Sqlite(task_id), RunKey::Sqlite(attempt_id)) => Ok(Lease {
            task_id,
            attempt_id,
            worker_id: job.lease.worker.clone(),
        }),
        _ => Err(PipelineError::Invalid(format!(
            "task {} is not a task of the SQLite queue",
            job.lease.task
        ))),
    }
}

/// A claimed task of the SQLite queue as a job.
fn job_of(t: ClaimedTask) -> Job {
    Job {
        lease: WorkLease {
            task: TaskKey::Sqlite(t.lease.task_id),
            run: RunKey::Sqlite(t.lease.attempt_id),
            worker: t.lease.worker_id,
        },
        kind: t.kind,
        params: t.params,
        attempt: t.attempt,
        max_attempts: Some(t.max_attempts),
        generation: t.generation,
        execution_id: t.execution_id,
        job_id: t.job_id,
        timeout_s: t.timeout_s,
    }
}

impl JobSource for SqliteJobs {
    fn now(&mut self) -> Result<DateTime<Utc>, PipelineError> {
        Ok(self.0.now())
    }

    fn reap_abandoned(&mut self) -> Result<Vec<(String, String, Option<String>)>, PipelineError> {
        Ok(self
            .0
            .reap_abandoned(&super::procs::holder_dead)?
            .into_iter()
            .map(|a| (a.task.to_string(), a.worker_id, a.log_path))
            .collect())
    }

    fn claim(
        &mut self,
        worker: &str,
        lease: Duration,
        only: Option<i64>,
    ) -> Result<Option<Job>, PipelineError> {
        Ok(self.0.claim_in(worker, lease, only)?.map(job_of))
    }

    fn upstream(&mut self, eid: i64, job: &str) -> Result<Upstream, PipelineError> {
        Ok(match self.0.find_task(eid, job)? {
            Some(t) => Upstream::Outputs(t.result.unwrap_or(Value::Null)),
            None => Upstream::Missing,
        })
    }

    fn set_log_path(&mut self, job: &Job, path: &str) -> Result<Held, PipelineError> {
        held(self.0.set_log_path(&lease_of(job)?, path))
    }

    fn heartbeat(&mut self, job: &Job, extend: Duration) -> Result<Held, PipelineError> {
        match self.0.heartbeat(&lease_of(job)?, extend) {
            // A writer holds the database past the busy timeout: the lease cannot be reaped
            // meanwhile either (that needs the same lock), so the job keeps running and the next
            // beat tries again.
            Err(QueueError::Db(e)) if crate::store::db_busy(&e) => {
                log::warn!(
                    "heartbeat of task {}: {e}; the job keeps running",
                    job.lease.task
                );
                Ok(Held::Yes)
            }
            r => held(r),
        }
    }

    fn report(&mut self, job: &Job, v: &Verdict) -> Result<Held, PipelineError> {
        let lease = lease_of(job)?;
        match v {
            Verdict::Complete(value) => held(self.0.complete(&lease, value)),
            Verdict::Fail { msg, timed_out } => held(self.0.fail(&lease, msg, *timed_out)),
            Verdict::FailForGood(msg) => held(self.0.fail_permanently(&lease, msg)),
            Verdict::Abandon => Ok(Held::Lost("abandoned".into())),
            Verdict::Release(why) => held(self.0.release(&lease, why)),
        }
    }

    fn sync(&mut self, eid: i64) -> Result<ExecStatus, PipelineError> {
        exec::sync(self.0.connection(), eid)
    }

    fn sync_active(&mut self) -> Result<bool, PipelineError> {
        // The SQLite queue releases dependents itself, at once.
        exec::sync_active(self.0.connection())?;
        Ok(false)
    }

    fn next_wakeup(&mut self) -> Result<Option<DateTime<Utc>>, PipelineError> {
        Ok(self.0.next_wakeup()?)
    }

    fn deliver_due(&mut self, notify: &crate::pipeline::notify::Delivery) {
        let mut db = crate::store::sql::SqliteRef(self.0.connection());
        if let Err(e) = crate::pipeline::notify::deliver(&mut db, notify, false) {
            log::warn!("{e}");
        }
    }
}
