//! The vocabulary both queues share with the pipeline's workers, in ABSURD's terms: a task has runs
//! (attempts); a worker claims one run under a claim that expires unless extended (heartbeat); a
//! failed run is retried after the task's [`RetryStrategy`](super::RetryStrategy) delay while
//! `max_attempts` allows. Identities are backend-tagged ([`TaskKey`], [`RunKey`]) so one value can
//! never be handed to the wrong backend.
//!
//! There is no queue interface over both backends: the pipeline layer's seam is one level up
//! (`pipeline::executions`), where each backend keeps its own executions. [`AbsurdQueue`](super::AbsurdQueue)
//! speaks these types directly; the SQLite [`Queue`](super::Queue) has its own richer ones
//! (dependencies, priorities, generations) and `pipeline::source` turns them into these.
//!
//! Invariants, on either backend:
//! * a run is held by at most one worker, and a worker's heartbeat, complete or fail names its
//!   [`WorkLease`]; when the run is no longer the one it holds (expired and retried, cancelled, failed)
//!   the change is refused with a `ClaimLost`/`LeaseLost` error and nothing changes;
//! * completing twice with the same lease is accepted and changes nothing.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{FailOutcome, TaskId, TaskState};

/// A task's identity, tagged with its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKey {
    /// A row of the SQLite `tasks` table.
    Sqlite(TaskId),
    /// An ABSURD task id.
    Absurd(Uuid),
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskKey::Sqlite(id) => id.fmt(f),
            TaskKey::Absurd(id) => id.fmt(f),
        }
    }
}

/// One run (attempt) of a task, tagged with its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunKey {
    /// A row of the SQLite `task_attempts` table.
    Sqlite(i64),
    /// An ABSURD run id.
    Absurd(Uuid),
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunKey::Sqlite(id) => id.fmt(f),
            RunKey::Absurd(id) => id.fmt(f),
        }
    }
}

/// Proof of a claim: which run of which task a worker holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkLease {
    pub task: TaskKey,
    pub run: RunKey,
    pub worker: String,
}

/// A run handed to a worker by [`AbsurdQueue::claim`](super::AbsurdQueue::claim).
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub lease: WorkLease,
    /// The task's name (the job type, e.g. `mosaic_build`).
    pub name: String,
    pub params: serde_json::Value,
    /// This run's attempt number, 1-based.
    pub attempt: u32,
    /// `None` when the task may be retried without limit (only ABSURD tasks spawned by other clients).
    pub max_attempts: Option<u32>,
    /// Seconds the attempt may run before the worker must stop it.
    pub timeout_s: Option<f64>,
    /// When the claim runs out unless extended (on ABSURD, as read just after the claim).
    pub claim_expires_at: DateTime<Utc>,
}

impl Claim {
    /// True when a failure of this run fails the task for good.
    pub fn is_last_attempt(&self) -> bool {
        self.max_attempts.is_some_and(|m| self.attempt >= m)
    }
}

/// What became of a task after a failed run.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Attempts remain: attempt `next_attempt` may be claimed from `at`.
    Retrying {
        at: DateTime<Utc>,
        next_attempt: u32,
    },
    /// No attempts remain: the task failed for good.
    Failed,
}

impl From<FailOutcome> for Failure {
    fn from(f: FailOutcome) -> Self {
        match f {
            FailOutcome::Retrying { at, next_attempt } => Failure::Retrying { at, next_attempt },
            FailOutcome::Failed { .. } => Failure::Failed,
        }
    }
}

/// One run of a task, for status displays.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    pub run: RunKey,
    pub attempt: u32,
    /// The worker that claimed it (none while it waits).
    pub worker: Option<String>,
    /// `pending`, `sleeping`, `running`, `completed`, `failed` or `cancelled` (SQLite attempts also
    /// `timed_out` and `lease_expired`).
    pub state: String,
    /// The failure reason of a failed run.
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A task as its backend records it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub key: TaskKey,
    pub name: String,
    pub params: serde_json::Value,
    pub state: TaskState,
    /// Attempts started so far.
    pub attempts: u32,
    pub max_attempts: Option<u32>,
    /// The completed task's result.
    pub result: Option<serde_json::Value>,
    /// When the next attempt may be claimed, while the task waits for one.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Every run, oldest first.
    pub runs: Vec<RunView>,
}
