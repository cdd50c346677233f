//! [`JobSource`]: what the worker needs from where a pipeline's jobs live — the embedded SQLite queue
//! ([`super::sqlite::SqliteJobs`]) or ABSURD on PostgreSQL ([`super::pg::PgJobs`]). The worker (timeouts, logs, child
//! processes, verdicts) is one implementation over this interface; each backend keeps its executions,
//! dependencies and results in its own tables.
//!
//! Invariants, on either backend: a verdict is reported only under the claim it was made for (a lost
//! claim is [`Held::Lost`], never an error, and the verdict is discarded); after a report the job's
//! execution is brought up to date ([`JobSource::sync`]) before the worker claims again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::PipelineError;
use super::exec::ExecStatus;
use crate::queue::{QueueError, WorkLease};

/// A claimed attempt of a job, on either backend.
#[derive(Debug, Clone)]
pub struct Job {
    pub lease: WorkLease,
    /// The job type (`mosaic_plan`, `command`, ...).
    pub kind: String,
    pub params: Value,
    /// This attempt's number, 1-based.
    pub attempt: u32,
    /// `None`: unlimited (an ABSURD task spawned without a limit).
    pub max_attempts: Option<u32>,
    /// SQLite retry generation (`contimg retry` starts a new one); 1 on ABSURD, whose attempts keep
    /// counting across a retry.
    pub generation: u32,
    pub execution_id: Option<i64>,
    pub job_id: Option<String>,
    pub timeout_s: Option<f64>,
}

impl Job {
    /// The task's id as shown in logs and given to the child (`CONTIMG_TASK_ID`).
    pub fn task_label(&self) -> String {
        self.lease.task.to_string()
    }

    /// The job's name: its id in the pipeline, else `task<ID>`.
    pub fn name(&self) -> String {
        self.job_id
            .clone()
            .unwrap_or_else(|| format!("task{}", self.lease.task))
    }
}

/// Whether the worker still holds the claim it acted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    Yes,
    /// Someone else owns the task now (cancelled, or its claim expired and it was handed on); why.
    Lost(String),
}

/// What the worker decided about an attempt, before telling the backend.
#[derive(Debug, Clone)]
pub enum Verdict {
    Complete(Value),
    /// A failed attempt; retried while attempts remain. `timed_out` marks the attempt's outcome.
    Fail {
        msg: String,
        timed_out: bool,
    },
    /// A failure the same input would repeat: the job fails now, without retries.
    FailForGood(String),
    /// The claim was lost while the child ran; nothing to report.
    Abandon,
    /// The worker is shutting down: the job's child was killed and the job goes back to the queue,
    /// due now for another worker, the attempt not counted against its retries. The text says why.
    Release(String),
}

/// An upstream job as `${job.key}` sees it.
pub enum Upstream {
    /// No job of that id in the execution.
    Missing,
    /// The job's outputs (null until it completed).
    Outputs(Value),
}

/// Where a worker's jobs come from and where their outcomes go.
pub trait JobSource {
    /// The backend's clock.
    fn now(&mut self) -> Result<DateTime<Utc>, PipelineError>;
    /// Ends attempts whose holder is provably dead (this host, process gone); returns their log
    /// paths so leftover processes can be killed.
    fn reap_abandoned(&mut self) -> Result<Vec<(String, String, Option<String>)>, PipelineError>;
    /// Claims the next due job (of execution `only` where the backend can choose; ABSURD cannot).
    fn claim(
        &mut self,
        worker: &str,
        lease: Duration,
        only: Option<i64>,
    ) -> Result<Option<Job>, PipelineError>;
    /// The outputs of job `job` of execution `eid`.
    fn upstream(&mut self, eid: i64, job: &str) -> Result<Upstream, PipelineError>;
    /// Records the attempt's log file.
    fn set_log_path(&mut self, job: &Job, path: &str) -> Result<Held, PipelineError>;
    /// Extends the claim to now + `extend`. `Err` only for errors worth stopping the worker for; a
    /// database busy past its timeout is reported as `Ok(Held::Yes)` after a warning.
    fn heartbeat(&mut self, job: &Job, extend: Duration) -> Result<Held, PipelineError>;
    /// Tells the backend the verdict.
    fn report(&mut self, job: &Job, v: &Verdict) -> Result<Held, PipelineError>;
    /// Brings execution `eid` up to date with its tasks; returns its status.
    fn sync(&mut self, eid: i64) -> Result<ExecStatus, PipelineError>;
    /// Syncs every execution not yet finished; true when that made new jobs claimable (ABSURD,
    /// where the pipeline layer spawns a job's task once its upstream jobs completed).
    fn sync_active(&mut self) -> Result<bool, PipelineError>;
    /// When the next sleeping job becomes due, if the backend knows.
    fn next_wakeup(&mut self) -> Result<Option<DateTime<Utc>>, PipelineError>;
    /// Delivers due notifications (a channel error is a warning).
    fn deliver_due(&mut self, notify: &crate::pipeline::notify::Delivery);
}

/// A queue result with a lost lease (SQLite) or claim (ABSURD) turned into [`Held::Lost`].
pub(super) fn held<T>(r: Result<T, QueueError>) -> Result<Held, PipelineError> {
    match r {
        Ok(_) => Ok(Held::Yes),
        Err(e @ (QueueError::LeaseLost { .. } | QueueError::ClaimLost { .. })) => {
            Ok(Held::Lost(e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}
