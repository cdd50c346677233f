//! The queue's value types: what a caller spawns ([`NewTask`]), what a worker receives ([`ClaimedTask`],
//! [`Lease`]), and what status queries return ([`TaskInfo`], [`AttemptInfo`], [`StateCounts`]).
//!
//! These are plain data; every rule about how they change lives in `ops.rs`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::RetryStrategy;

/// A task's row id in `tasks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub i64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The life cycle of a task. `completed`, `failed` and `cancelled` are terminal (until `retry_failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Waiting for its time and its dependencies.
    Pending,
    /// Claimed by a worker under a lease.
    Running,
    /// Waiting for its next attempt after a failed one.
    Sleeping,
    Completed,
    Failed,
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 6] = [
        TaskState::Pending,
        TaskState::Running,
        TaskState::Sleeping,
        TaskState::Completed,
        TaskState::Failed,
        TaskState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Sleeping => "sleeping",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// True for completed, failed and cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Failed | TaskState::Cancelled
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name stored for a task state or an attempt outcome that the queue does not know (the database was
/// written by another version, or edited by hand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{name}'")]
pub struct UnknownName {
    /// `task state` or `attempt outcome`.
    pub what: &'static str,
    pub name: String,
}

impl FromStr for TaskState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        TaskState::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "task state",
                name: s.to_string(),
            })
    }
}

/// How an attempt ended (or `Running` while it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Running,
    Completed,
    Failed,
    /// The worker reported that the task ran over its timeout (and killed it).
    TimedOut,
    /// The worker stopped heartbeating; another claim reaped the task.
    LeaseExpired,
    /// The task was cancelled while this attempt ran.
    Cancelled,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 6] = [
        AttemptOutcome::Running,
        AttemptOutcome::Completed,
        AttemptOutcome::Failed,
        AttemptOutcome::TimedOut,
        AttemptOutcome::LeaseExpired,
        AttemptOutcome::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Running => "running",
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::TimedOut => "timed_out",
            AttemptOutcome::LeaseExpired => "lease_expired",
            AttemptOutcome::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AttemptOutcome {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        AttemptOutcome::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "attempt outcome",
                name: s.to_string(),
            })
    }
}

/// A task to spawn. Build with [`NewTask::new`] and the builder methods.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// What to run (a job type such as `mosaic_build`); never empty.
    pub kind: String,
    /// The pipeline job id (e.g. `build`); unique within an execution when set.
    pub job_id: Option<String>,
    /// The execution (`pipeline_executions.id`) this task belongs to.
    pub execution_id: Option<i64>,
    /// The pipeline of that execution (named in ABSURD's task headers; the SQLite queue finds it
    /// through the execution).
    pub pipeline: Option<String>,
    pub params: serde_json::Value,
    /// Higher runs first.
    pub priority: i64,
    /// Total attempts allowed (≥ 1): `max_retries = 2` means `max_attempts = 3`.
    pub max_attempts: u32,
    pub retry: RetryStrategy,
    /// Seconds an attempt may run before the worker kills it; stored for the worker, not enforced here.
    pub timeout_s: Option<f64>,
    /// Tasks that must be completed first; they must already exist.
    pub depends_on: Vec<TaskId>,
    /// Not claimable before this time; `None` means the time of spawning.
    pub available_at: Option<DateTime<Utc>>,
}

impl NewTask {
    /// A task of `kind` with `params`, priority 0, one attempt, no retry delay, no timeout, no dependencies.
    pub fn new(kind: impl Into<String>, params: serde_json::Value) -> Self {
        NewTask {
            kind: kind.into(),
            job_id: None,
            execution_id: None,
            pipeline: None,
            params,
            priority: 0,
            max_attempts: 1,
            retry: RetryStrategy::None,
            timeout_s: None,
            depends_on: Vec::new(),
            available_at: None,
        }
    }

    pub fn job_id(mut self, job_id: impl Into<String>) -> Self {
        self.job_id = Some(job_id.into());
        self
    }

    pub fn execution(mut self, execution_id: i64) -> Self {
        self.execution_id = Some(execution_id);
        self
    }

    pub fn pipeline(mut self, pipeline: impl Into<String>) -> Self {
        self.pipeline = Some(pipeline.into());
        self
    }

    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = priority;
        self
    }

    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// `n` retries after the first attempt, i.e. `max_attempts = n + 1`.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_attempts = n.saturating_add(1);
        self
    }

    pub fn retry(mut self, retry: RetryStrategy) -> Self {
        self.retry = retry;
        self
    }

    pub fn timeout_s(mut self, secs: f64) -> Self {
        self.timeout_s = Some(secs);
        self
    }

    pub fn depends_on(mut self, deps: impl IntoIterator<Item = TaskId>) -> Self {
        self.depends_on.extend(deps);
        self
    }

    pub fn available_at(mut self, t: DateTime<Utc>) -> Self {
        self.available_at = Some(t);
        self
    }
}

/// Proof of a claim: which attempt of which task a worker holds. Every change a worker makes names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    pub task_id: TaskId,
    /// Row id in `task_attempts`.
    pub attempt_id: i64,
    pub worker_id: String,
}

/// A task handed to a worker by [`Queue::claim`](super::Queue::claim).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTask {
    pub lease: Lease,
    pub kind: String,
    pub job_id: Option<String>,
    pub execution_id: Option<i64>,
    pub params: serde_json::Value,
    pub priority: i64,
    /// This attempt's number, 1-based, within the current generation.
    pub attempt: u32,
    pub max_attempts: u32,
    /// Retry generation: 1, plus one per `retry_failed` that reset the task.
    pub generation: u32,
    pub timeout_s: Option<f64>,
    pub lease_expires_at: DateTime<Utc>,
}

impl ClaimedTask {
    pub fn id(&self) -> TaskId {
        self.lease.task_id
    }

    /// True when a failure of this attempt fails the task for good.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// What [`Queue::fail`](super::Queue::fail) did with the task.
#[derive(Debug, Clone, PartialEq)]
pub enum FailOutcome {
    /// Attempts remain: the task sleeps until `at`, when attempt `next_attempt` may be claimed.
    Retrying {
        at: DateTime<Utc>,
        next_attempt: u32,
    },
    /// No attempts remain: the task failed for good and these dependents were cancelled.
    Failed { cancelled: Vec<TaskId> },
}

/// A task as stored, for status displays and for reading upstream results.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInfo {
    pub id: TaskId,
    pub execution_id: Option<i64>,
    pub job_id: Option<String>,
    pub kind: String,
    pub params: serde_json::Value,
    pub priority: i64,
    pub state: TaskState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub generation: u32,
    pub retry: RetryStrategy,
    pub timeout_s: Option<f64>,
    pub available_at: DateTime<Utc>,
    pub claimed_by: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub result: Option<serde_json::Value>,
    /// The last error (of the last failed attempt, or why the task was cancelled).
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Start of the first attempt of the current generation.
    pub started_at: Option<DateTime<Utc>>,
    /// When the task reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    pub depends_on: Vec<TaskId>,
}

impl TaskInfo {
    /// When a sleeping task becomes claimable again.
    pub fn next_retry_at(&self) -> Option<DateTime<Utc>> {
        (self.state == TaskState::Sleeping).then_some(self.available_at)
    }

    /// From the first attempt's start to the end (or to `now` while unfinished).
    pub fn duration(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.started_at
            .map(|s| self.finished_at.unwrap_or(now).signed_duration_since(s))
    }
}

/// One attempt of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptInfo {
    pub id: i64,
    pub task_id: TaskId,
    pub generation: u32,
    pub attempt: u32,
    pub worker_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
    pub log_path: Option<String>,
}

impl AttemptInfo {
    /// Time from start to end (or to `now` while running).
    pub fn duration(&self, now: DateTime<Utc>) -> Duration {
        self.ended_at
            .unwrap_or(now)
            .signed_duration_since(self.started_at)
    }
}

/// How many tasks (of an execution, or of the whole queue) are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    pub pending: u64,
    pub running: u64,
    pub sleeping: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl StateCounts {
    pub fn total(&self) -> u64 {
        self.pending + self.running + self.sleeping + self.completed + self.failed + self.cancelled
    }

    /// No task can make progress any more: every task is completed, failed or cancelled.
    pub fn is_finished(&self) -> bool {
        self.pending + self.running + self.sleeping == 0
    }

    pub(crate) fn add(&mut self, state: TaskState, n: u64) {
        match state {
            TaskState::Pending => self.pending += n,
            TaskState::Running => self.running += n,
            TaskState::Sleeping => self.sleeping += n,
            TaskState::Completed => self.completed += n,
            TaskState::Failed => self.failed += n,
            TaskState::Cancelled => self.cancelled += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_typed() {
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>(), Ok(s));
        }
        for o in AttemptOutcome::ALL {
            assert_eq!(o.as_str().parse::<AttemptOutcome>(), Ok(o));
        }
        let e = "Running".parse::<TaskState>().unwrap_err();
        assert_eq!((e.what, e.name.as_str()), ("task state", "Running"));
        assert_eq!(e.to_string(), "unknown task state 'Running'");
        let e = "timedout".parse::<AttemptOutcome>().unwrap_err();
        assert_eq!(e.to_string(), "unknown attempt outcome 'timedout'");
    }
}
