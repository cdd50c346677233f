//! The durable job queue with ABSURD semantics: on SQLite ([`Queue`], the embedded default) or on ABSURD
//! itself in PostgreSQL ([`AbsurdQueue`]). They share a vocabulary ([`Claim`], [`WorkLease`], ...), not
//! an interface: the pipeline layer's seam over both backends is `pipeline::executions`.
//!
//! The rest of this note is about the SQLite queue; `absurd/` says how ABSURD's own rules apply there.
//!
//! Owns the tables of `migrations/0002_queue.sql` (`tasks`, `task_deps`, `task_attempts`) and every write to
//! them. A task is spawned `pending`; [`Queue::claim`] hands the next due task whose dependencies are all
//! `completed` (by priority desc, available_at, id) to one worker under a lease and records an attempt row;
//! the worker heartbeats, then completes or fails it. A failed attempt sleeps until
//! now + [`RetryStrategy::delay`] while attempts remain, else the task is `failed` and its dependents
//! (transitively) are `cancelled`. An expired lease, a dead holder reaped and a task handed back by a
//! stopping worker ([`Queue::release`]) are interruptions (outcome `lease_expired`), not failures:
//! the task is due again at once and only `failed`/`timed_out` attempts count against
//! `max_attempts` (the attempt numbers count every attempt); past [`MAX_INTERRUPTIONS`] in one
//! generation an interruption fails the task.
//!
//! Invariants:
//! * every state change runs in one `BEGIN IMMEDIATE` transaction, so concurrent workers in any number of
//!   processes serialise on the database and each attempt is handed to exactly one worker;
//! * a change made on behalf of a worker names its [`Lease`] (task, attempt row, worker) and is refused with
//!   [`QueueError::LeaseLost`] — changing nothing — unless that attempt is still the task's running attempt;
//! * a task whose dependency failed or was cancelled is never claimed (it is cancelled instead);
//! * time comes only from the injected [`Clock`].

pub mod absurd;
mod backend;
mod clock;
mod ops;
mod retry;
mod task;

pub use absurd::AbsurdQueue;
pub use backend::{Claim, Failure, RunKey, RunView, TaskKey, TaskView, WorkLease};
pub use clock::{Clock, ManualClock, SystemClock};
pub(crate) use ops::fmt_ts;
pub use ops::{Abandoned, MAX_INTERRUPTIONS, Queue, SpawnBatch};
pub use retry::{MAX_DELAY_S, RetryStrategy};
pub use task::{
    AttemptInfo, AttemptOutcome, ClaimedTask, FailOutcome, Lease, NewTask, StateCounts, TaskId,
    TaskInfo, TaskState, UnknownName,
};

/// What can go wrong in the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue database error: {0} (is the workspace database reachable and migrated?)")]
    Db(#[from] rusqlite::Error),
    #[error("task {0} does not exist in this database")]
    NoSuchTask(TaskId),
    #[error("invalid task: {0}")]
    InvalidTask(String),
    #[error(
        "worker '{worker}' no longer holds task {task} (attempt row {attempt_id}): the task is {state}{}; \
         stop working on it and discard its result",
        holder.as_ref().map(|h| format!(" and held by '{h}'")).unwrap_or_default()
    )]
    LeaseLost {
        task: TaskId,
        attempt_id: i64,
        worker: String,
        state: TaskState,
        holder: Option<String>,
    },
    #[error("task {task} in the database is corrupt: {detail}")]
    Corrupt { task: TaskId, detail: String },
    #[error(transparent)]
    Pg(#[from] crate::pg::PgError),
    #[error(
        "the database at {url} has no ABSURD schema: install it with \
         `absurdctl init --database '{url}'` (PyPI: pip install absurdctl; put the password in place \
         of ***), then try again"
    )]
    AbsurdMissing { url: String },
    #[error(
        "the ABSURD schema at {url} is version {found}, which this contimg does not know (it knows {}): \
         use an ABSURD release it knows or a contimg that knows {found}",
        absurd::KNOWN_VERSIONS.join(", ")
    )]
    AbsurdVersion { url: String, found: String },
    #[error(
        "worker '{worker}' no longer holds ABSURD task {task} (run {run}): {detail}; stop working on it \
         and discard its result"
    )]
    ClaimLost {
        task: uuid::Uuid,
        run: uuid::Uuid,
        worker: String,
        detail: String,
    },
    #[error("ABSURD task {task} does not exist in queue '{queue}'")]
    NoSuchAbsurdTask { queue: String, task: uuid::Uuid },
    #[error("ABSURD task {task} is corrupt: {detail}")]
    AbsurdCorrupt { task: uuid::Uuid, detail: String },
}

/// Result alias for queue operations.
pub type Result<T, E = QueueError> = std::result::Result<T, E>;
