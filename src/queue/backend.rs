//! [`TaskQueue`]: the queue operations the pipeline layer needs, implemented by both backends — the
//! embedded SQLite [`Queue`] and ABSURD on PostgreSQL ([`AbsurdQueue`](super::AbsurdQueue)).
//!
//! The interface speaks ABSURD's vocabulary: a task has runs (attempts); a worker claims one run under a
//! claim that expires unless extended (heartbeat); a failed run is retried after the task's
//! [`RetryStrategy`] delay while `max_attempts` allows. Identities are backend-tagged ([`TaskKey`],
//! [`RunKey`]) so one value can never be handed to the wrong backend.
//!
//! Invariants, on either backend:
//! * a run is held by at most one worker, and a worker's heartbeat, complete or fail names its
//!   [`WorkLease`]; when the run is no longer the one it holds (expired and retried, cancelled, failed)
//!   the change is refused with a `ClaimLost`/`LeaseLost` error and nothing changes;
//! * completing twice with the same lease is accepted and changes nothing;
//! * where the backends differ (ABSURD has no dependencies or priorities; SQLite keys idempotency by
//!   (execution, job)), the difference is stated on the method.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AttemptOutcome, FailOutcome, NewTask, Queue, Result, TaskId, TaskState};

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

/// A run handed to a worker by [`TaskQueue::claim`].
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

/// What became of a task after [`TaskQueue::fail`].
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

/// The queue operations the pipeline layer needs, on either backend.
pub trait TaskQueue {
    /// `sqlite` or `absurd`, for messages and benchmarks.
    fn backend(&self) -> &'static str;

    /// The current time by the queue's clock (its fake time in tests).
    fn now(&mut self) -> Result<DateTime<Utc>>;

    /// Spawns one task. On ABSURD the task's retry rule, attempts, timeout and its pipeline, execution
    /// and job travel as ABSURD's own spawn options and headers, and a task naming an execution and a
    /// job gets an idempotency key from them: spawning it again returns the existing task. ABSURD has
    /// no dependencies or delayed start: a task with `depends_on` or `available_at` is refused there.
    fn spawn(&mut self, task: &NewTask) -> Result<TaskKey>;

    /// Claims the next due run for `worker` under a claim of `claim` length (ABSURD: whole seconds,
    /// rounded up), or `None` when nothing is due. Expired claims are reaped first.
    fn claim(&mut self, worker: &str, claim: Duration) -> Result<Option<Claim>>;

    /// Extends the claim to now + `extend`, if the worker still holds the run.
    fn heartbeat(&mut self, lease: &WorkLease, extend: Duration) -> Result<()>;

    /// Completes the task with `result`.
    fn complete(&mut self, lease: &WorkLease, result: &serde_json::Value) -> Result<()>;

    /// Records a failed run (`timed_out`: the worker stopped it for running over its timeout); the
    /// task is retried by its retry rule while attempts remain, else it fails for good.
    fn fail(&mut self, lease: &WorkLease, error: &str, timed_out: bool) -> Result<Failure>;

    /// Cancels a task that is not finished (a running run's next heartbeat or complete is refused).
    /// Returns false when it was already completed, failed or cancelled.
    fn cancel(&mut self, task: TaskKey, reason: &str) -> Result<bool>;

    /// Gives a failed task another attempt. SQLite: a failed or cancelled task starts a fresh
    /// generation with all its attempts; ABSURD (`retry_task`): a failed task gets one more attempt.
    fn retry(&mut self, task: TaskKey) -> Result<()>;

    /// The task and its runs.
    fn inspect(&mut self, task: TaskKey) -> Result<TaskView>;
}

fn sqlite_id(key: TaskKey) -> Result<TaskId> {
    match key {
        TaskKey::Sqlite(id) => Ok(id),
        TaskKey::Absurd(id) => Err(super::QueueError::InvalidTask(format!(
            "task {id} is an ABSURD task; this is the SQLite queue"
        ))),
    }
}

fn sqlite_lease(l: &WorkLease) -> Result<super::Lease> {
    match l.run {
        RunKey::Sqlite(attempt_id) => Ok(super::Lease {
            task_id: sqlite_id(l.task)?,
            attempt_id,
            worker_id: l.worker.clone(),
        }),
        RunKey::Absurd(id) => Err(super::QueueError::InvalidTask(format!(
            "run {id} is an ABSURD run; this is the SQLite queue"
        ))),
    }
}

impl TaskQueue for Queue {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn now(&mut self) -> Result<DateTime<Utc>> {
        Ok(Queue::now(self))
    }

    fn spawn(&mut self, task: &NewTask) -> Result<TaskKey> {
        Queue::spawn(self, task).map(TaskKey::Sqlite)
    }

    fn claim(&mut self, worker: &str, claim: Duration) -> Result<Option<Claim>> {
        Ok(Queue::claim(self, worker, claim)?.map(|c| Claim {
            lease: WorkLease {
                task: TaskKey::Sqlite(c.lease.task_id),
                run: RunKey::Sqlite(c.lease.attempt_id),
                worker: c.lease.worker_id,
            },
            name: c.kind,
            params: c.params,
            attempt: c.attempt,
            max_attempts: Some(c.max_attempts),
            timeout_s: c.timeout_s,
            claim_expires_at: c.lease_expires_at,
        }))
    }

    fn heartbeat(&mut self, lease: &WorkLease, extend: Duration) -> Result<()> {
        Queue::heartbeat(self, &sqlite_lease(lease)?, extend).map(|_| ())
    }

    fn complete(&mut self, lease: &WorkLease, result: &serde_json::Value) -> Result<()> {
        Queue::complete(self, &sqlite_lease(lease)?, result)
    }

    fn fail(&mut self, lease: &WorkLease, error: &str, timed_out: bool) -> Result<Failure> {
        Queue::fail(self, &sqlite_lease(lease)?, error, timed_out).map(Failure::from)
    }

    fn cancel(&mut self, task: TaskKey, reason: &str) -> Result<bool> {
        let id = sqlite_id(task)?;
        Ok(!self.cancel_task(id, reason)?.is_empty())
    }

    fn retry(&mut self, task: TaskKey) -> Result<()> {
        self.retry_task(sqlite_id(task)?)
    }

    fn inspect(&mut self, task: TaskKey) -> Result<TaskView> {
        let id = sqlite_id(task)?;
        let t = self.task(id)?;
        let runs = self
            .attempts(id)?
            .into_iter()
            .filter(|a| a.generation == t.generation)
            .map(|a| RunView {
                run: RunKey::Sqlite(a.id),
                attempt: a.attempt,
                worker: Some(a.worker_id),
                state: a.outcome.as_str().to_string(),
                error: a.error,
                started_at: Some(a.started_at),
                ended_at: a.ended_at.filter(|_| a.outcome != AttemptOutcome::Running),
            })
            .collect();
        Ok(TaskView {
            key: task,
            name: t.kind.clone(),
            params: t.params.clone(),
            state: t.state,
            attempts: t.attempts,
            max_attempts: Some(t.max_attempts),
            result: t.result.clone(),
            next_attempt_at: matches!(t.state, TaskState::Pending | TaskState::Sleeping)
                .then_some(t.available_at),
            runs,
        })
    }
}
