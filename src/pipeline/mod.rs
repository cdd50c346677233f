//! The pipeline engine: declarative pipelines (TOML) run as executions of tasks on the durable queue.
//!
//! Owns `migrations/0003_pipeline.sql` (the (pipeline, slot) key of `pipeline_executions`, the task link of
//! `pipeline_jobs`) and the meaning of pipeline definitions:
//! * [`def`]: the definition types, the built-ins (`nightly_mosaic`, `on_demand_mosaic`) and how a
//!   workspace's `[pipelines.NAME]` tables replace or add to them;
//! * [`validate`]: every check made before anything runs (`contimg pipelines check`);
//! * [`subst`]: `${slot.*}`, `${param.*}` (substituted when the execution is created) and `${job.key}`
//!   (substituted from upstream outputs when the task is claimed);
//! * [`jobs`]: job types and the child process each becomes (the mosaic jobs run `contimg plan`, `build`,
//!   `qa` — the same subcommands a person runs);
//! * [`executions`]: the seam between the pipeline layer and its backends ([`executions::Executions`],
//!   [`executions::Backend`]) and the one place that chooses the backend; [`sqlite`] and [`pg`]
//!   implement it;
//! * [`exec`]: creating executions, mirroring tasks into `pipeline_jobs`, execution manifests;
//! * [`runner`]: which `run` process works an execution (one per execution; `max_active` counts them);
//! * [`worker`]: claiming tasks and running each in its own process group with heartbeats and timeouts;
//! * [`procs`]: who holds a lease (`host:pid`), whether that holder is provably dead, and killing what
//!   a dead holder's job left running;
//! * [`shutdown`]: SIGTERM/SIGINT on a command that works jobs: stop claiming, hand the jobs back;
//! * [`secret`]: webhook URLs, written out only redacted;
//! * [`absurd_task`]: one task on a site's ABSURD queue, spawned, waited for, its result returned
//!   (`contimg absurd-task`, the child of an `absurd_task` job);
//! * [`api`]: the one entry point the commands call (`run`, `worker`, `status`, `retry`, `cancel`,
//!   `cron`, `notifications`).
//!
//! Retry semantics: a job gets `max_retries + 1` attempts with delays from its retry strategy; the strategy
//! `none` means *no retries* (one attempt), and a definition combining `none` with `max_retries > 0` is
//! refused. Invariants: one execution per (pipeline, slot); an execution's tasks, dependencies and
//! `pipeline_jobs` rows are written in one transaction; a job's final failure cancels its dependents and
//! fails the execution.

pub mod absurd_task;
pub mod api;
pub mod cron;
pub mod def;
pub mod exec;
pub mod executions;
pub mod jobs;
pub mod notify;
pub mod outside;
pub mod pg;
pub mod procs;
pub mod reconnect;
pub mod runner;
pub mod secret;
pub mod shutdown;
pub mod source;
pub mod sqlite;
pub mod subst;
pub mod validate;
pub mod worker;

pub use api::{Engine, Progress, Setup, SlotChoice, SlotRun};

/// Where a workspace's pipelines are recorded: the database (an SQLite file with its embedded
/// queue, or contimg's schema on PostgreSQL) and, on PostgreSQL, the ABSURD queue the jobs go to.
/// Manifests and messages name it by the target's display form (password masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub target: crate::store::Target,
    /// The ABSURD queue (unused on SQLite).
    pub queue: String,
    /// The task types run when another ABSURD client spawned them (`[postgres] accept_outside`;
    /// unused on SQLite).
    pub accept_outside: Vec<String>,
    /// The pipelines a `contimg.run` task from another ABSURD client may start (`[postgres]
    /// run_pipelines`; unused on SQLite).
    pub run_pipelines: Vec<String>,
}

pub use def::{JobDef, NamedPipeline, NotifyRule, ParamSpec, PipelineDef, WhenBusy};
pub use exec::{Created, ExecStatus, ExecutionManifest, RequestKey, Slot};
pub use validate::{ScheduleError, ValidationError, parse_schedule, validate};
pub use worker::{StopWhen, WorkStats, WorkerConfig, work};

/// What can go wrong running pipelines.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("database error: {0} (is the workspace database reachable and migrated?)")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Notify(#[from] notify::NotifyError),
    #[error(transparent)]
    Cron(#[from] cron::CronError),
    /// A definition, parameter or argument that cannot be run (the message says which and why).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Subst(#[from] subst::SubstError),
    #[error("{0}")]
    Conflict(String),
    /// An idempotency key sent again with another request ([`exec::RequestKey`]).
    #[error("{0}")]
    KeyReused(String),
    #[error(
        "execution {0} does not exist in this database; see `contimg status` for the executions"
    )]
    NoSuchExecution(i64),
    #[error("a worker thread panicked; see the messages above")]
    WorkerPanicked,
    /// A stop signal arrived while waiting for an unreachable PostgreSQL server.
    #[error(
        "stopped while waiting for the database ({0}); jobs this process held are taken over by \
         other workers when their leases expire"
    )]
    Unreachable(String),
}

impl PipelineError {
    /// True when the connection to PostgreSQL was lost or could not be made (a server restart):
    /// worth reconnecting for ([`reconnect::Reconnecting`]), unlike a statement the server refused.
    pub fn is_connection_lost(&self) -> bool {
        use crate::queue::QueueError;
        use crate::store::StoreError;
        match self {
            PipelineError::Queue(QueueError::Pg(e))
            | PipelineError::Store(StoreError::Postgres(e))
            | PipelineError::Notify(notify::NotifyError::Db(StoreError::Postgres(e))) => {
                e.is_connection_lost()
            }
            _ => false,
        }
    }

    /// True when the cause is the caller's input (a usage error, exit 2), not failed work.
    pub fn is_input(&self) -> bool {
        match self {
            PipelineError::Invalid(_)
            | PipelineError::Schedule(_)
            | PipelineError::Subst(_)
            | PipelineError::Conflict(_)
            | PipelineError::KeyReused(_)
            | PipelineError::NoSuchExecution(_) => true,
            PipelineError::Cron(e) => e.is_input(),
            PipelineError::Store(e) => matches!(e, crate::store::StoreError::TooNew { .. }),
            _ => false,
        }
    }
}
