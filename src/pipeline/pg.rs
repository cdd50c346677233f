//! The pipeline layer on ABSURD (PostgreSQL): executions and their jobs in contimg's own schema
//! (migration `postgres/0002_pipeline`), every job an ABSURD task on an ABSURD queue, driven only
//! through ABSURD's SQL functions.
//!
//! What ABSURD lacks, this module adds in contimg's tables, never in ABSURD's:
//! * **dependencies**: a job's task is spawned only when every job it depends on has completed, by
//!   [`PgPipeline::sync`], in the same transaction that records the last of those results in
//!   `pipeline_jobs`, with the idempotency key `contimg:<schema>:<execution>:<job>` — a crash between
//!   two steps can never spawn a job twice, and the next sync by any process finishes the step;
//! * **priorities**: ABSURD claims in spawn order, so of the jobs ready at once, those of the highest
//!   priority are spawned first and a lower one waits while a higher-priority contimg job waits
//!   unclaimed on the queue (a job already spawned keeps its place);
//! * **one execution per (pipeline, slot)** across machines: a unique key, written under the schema's
//!   advisory lock (see [`crate::store::pg_write_lock`]), so concurrent `run --slot X` on any number of
//!   machines find one execution;
//! * **reconciling** with other ABSURD clients: [`PgPipeline::sync`] mirrors each task's state,
//!   attempts, result and failure from ABSURD's tables, so a cancel or retry done with `absurdctl` or
//!   the SDK shows in `contimg status`;
//! * **cancel and retry of an execution** in ABSURD's terms (`cancel_task`; `retry_task` with a full
//!   set of attempts, or a fresh task for a job ABSURD cancelled).
//!
//! Invariants: a job whose contimg verdict was "failed for good" (an input error, a QA FAIL) has its
//! ABSURD task cancelled so no one retries it, and stays `failed` here; every write runs in one
//! transaction under the advisory lock. Left to ABSURD: claims, leases, retry delays, attempts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::Client;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::PipelineError;
use super::def::NamedPipeline;
use super::exec::{
    self, Admitted, Created, ExecStatus, ExecutionManifest, ExecutionSummary, JobReport, Slot,
};
use super::executions::{Access, Backend, Executions, StandaloneTask};
use super::jobs::{ChildDatabase, JobKind, PIPELINE_RUN_TASK};
use super::notify::{Delivery, DeliveryStats};
use super::reconnect::Reconnecting;
use super::runner::Holder;
use super::source::{Held, Job, JobSource, Upstream, Verdict, held};
use crate::pipeline::notify::FailedJob;
use crate::queue::absurd::{failure_text, spawn_on, tables};
use crate::queue::{
    AbsurdQueue, Failure, NewTask, QueueError, RetryStrategy, TaskKey, TaskState, WorkLease,
};
use crate::store::sql::PgTxRef;
use crate::time::iso;

/// The task a job becomes, as recorded in `pipeline_jobs.task` until it is spawned.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TaskSpec {
    kind: String,
    params: Value,
    priority: i64,
    max_attempts: u32,
    retry: RetryStrategy,
    timeout_s: Option<f64>,
    pipeline: String,
}

/// One connection to a contimg schema and the ABSURD queue its pipelines use.
pub struct PgPipeline {
    q: AbsurdQueue,
    /// The URL (with its password: for the outbox's own connection only; never shown).
    url: String,
    schema: String,
    shown: String,
    /// Jobs this connection's syncs have spawned (so a draining worker knows to claim again).
    released: usize,
    /// The notification outbox, on its own connection (delivery runs outside the pipeline's
    /// transactions), opened when first needed.
    outbox: Option<crate::store::Db>,
}

/// A job's state as `pipeline_jobs.status` records it on PostgreSQL: its ABSURD task's state once
/// spawned, else `waiting` (for its upstream jobs) or `skipped` (an upstream job failed, was
/// cancelled or is missing). Stored and shown as those names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobState {
    Waiting,
    Skipped,
    Task(TaskState),
}

impl JobState {
    const FAILED: JobState = JobState::Task(TaskState::Failed);
    const COMPLETED: JobState = JobState::Task(TaskState::Completed);

    fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Skipped => "skipped",
            JobState::Task(t) => t.as_str(),
        }
    }

    fn parse(s: &str) -> Result<JobState, PipelineError> {
        match s.parse::<TaskState>() {
            Ok(t) => Ok(JobState::Task(t)),
            Err(e) => [JobState::Waiting, JobState::Skipped]
                .into_iter()
                .find(|j| j.as_str() == s)
                .ok_or_else(|| PipelineError::Invalid(format!("a recorded job is corrupt: {e}"))),
        }
    }

    /// Whether the job can still change by itself (waiting, pending, sleeping, running).
    fn is_open(self) -> bool {
        match self {
            JobState::Waiting => true,
            JobState::Skipped => false,
            JobState::Task(t) => !t.is_terminal(),
        }
    }

    /// Whether a job downstream of one in this state can never run (as things stand).
    fn blocks_downstream(self) -> bool {
        matches!(
            self,
            JobState::Skipped | JobState::Task(TaskState::Failed | TaskState::Cancelled)
        )
    }

    /// The states a job can still change from, for SQL filters.
    fn open_names() -> Vec<&'static str> {
        [JobState::Waiting]
            .into_iter()
            .chain(TaskState::ALL.into_iter().map(JobState::Task))
            .filter(|j| j.is_open())
            .map(JobState::as_str)
            .collect()
    }
}

/// The state of an ABSURD run or task as read from its table.
fn absurd_state(s: &str) -> Result<TaskState, PipelineError> {
    s.parse().map_err(|e| {
        PipelineError::Invalid(format!("ABSURD's record is not one contimg knows: {e}"))
    })
}

fn db(shown: &str, action: &str) -> impl FnOnce(postgres::Error) -> PipelineError + use<> {
    let (shown, action) = (shown.to_string(), action.to_string());
    move |e| PipelineError::Queue(crate::pg::pg_error(&shown, &action, e).into())
}

impl PgPipeline {
    /// Connects to `url`: contimg's schema `schema` (created and migrated when needed) and ABSURD's
    /// queue `queue` (checked; created with ABSURD's `create_queue` when missing).
    pub fn open(url: &str, schema: &str, queue: &str) -> Result<PgPipeline, PipelineError> {
        let (_, client) = checked_client(url, schema)?;
        let q = AbsurdQueue::with_client(url, queue, client)?;
        Ok(PgPipeline {
            q,
            url: url.to_string(),
            schema: schema.to_string(),
            shown: crate::pg::mask_url(url),
            released: 0,
            outbox: None,
        })
    }

    /// The ABSURD queue.
    pub fn queue_name(&self) -> &str {
        self.q.queue_name()
    }

    /// The masked URL and schema, as manifests name the database.
    pub fn label(&self) -> String {
        crate::store::pg_label(&self.shown, &self.schema)
    }

    fn client(&mut self) -> &mut Client {
        self.q.client()
    }

    /// Creates the execution of `p` for `slot`, or finds the one that exists; the roots' tasks are
    /// spawned in the same transaction. `max_active` counts the other slots' running executions.
    pub fn create(
        &mut self,
        p: &NamedPipeline,
        slot: &Slot,
        params: &BTreeMap<String, Option<String>>,
        products: &Path,
        key: Option<&exec::RequestKey>,
    ) -> Result<Admitted, PipelineError> {
        let slot_s = iso(slot.time);
        let params_json =
            serde_json::to_string(params).map_err(|e| PipelineError::Invalid(e.to_string()))?;
        let def_json =
            serde_json::to_string(&p.def).map_err(|e| PipelineError::Invalid(e.to_string()))?;
        let jobs = exec::planned_jobs(p, slot, params, products)?;
        let (shown, schema, queue) = (
            self.shown.clone(),
            self.schema.clone(),
            self.queue_name().to_string(),
        );
        let mut tx = self.client().transaction().map_err(db(&shown, "begin"))?;
        crate::store::pg_write_lock(&mut tx, &schema).map_err(db(&shown, "lock"))?;
        if let Some(k) = key {
            let found = tx
                .query_opt(
                    "SELECT id, request FROM pipeline_executions WHERE request_key = $1",
                    &[&k.key],
                )
                .map_err(db(&shown, "find the execution of an idempotency key"))?
                .map(|r| (r.get::<_, i64>(0), r.get::<_, Option<String>>(1)));
            // The key's execution (or the refusal), whatever the slot says: nothing written.
            if let Some(c) = exec::keyed(k, found)? {
                return Ok(Admitted::Yes(c));
            }
        }
        if let Some(row) = tx
            .query_opt(
                "SELECT id, params FROM pipeline_executions WHERE pipeline_name = $1 AND slot = $2",
                &[&p.name, &slot_s],
            )
            .map_err(db(&shown, "find the execution"))?
        {
            let (id, old): (i64, String) = (row.get(0), row.get(1));
            drop(tx);
            if old != params_json {
                return Err(PipelineError::Conflict(format!(
                    "execution {id} of pipeline '{}' for slot {slot_s} exists with parameters {old}, not {params_json}; \
                     it is reported, not changed: use another --slot for different parameters",
                    p.name
                )));
            }
            return Ok(Admitted::Yes(Created {
                execution_id: id,
                existing: true,
            }));
        }
        let active: Vec<i64> = tx
            .query(
                "SELECT id FROM pipeline_executions WHERE pipeline_name = $1 AND status = 'running' AND slot <> $2",
                &[&p.name, &slot_s],
            )
            .map_err(db(&shown, "count running executions"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if active.len() as u32 >= p.def.max_active {
            return Ok(Admitted::Busy(active));
        }
        let now = iso(crate::time::now());
        let eid: i64 = tx
            .query_one(
                "INSERT INTO pipeline_executions (pipeline_name, status, started_at, slot, params, definition, source, queue, request_key, request)
                 VALUES ($1, 'running', $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                &[
                    &p.name,
                    &now,
                    &slot_s,
                    &params_json,
                    &def_json,
                    &p.source.0,
                    &queue,
                    &key.map(|k| &k.key),
                    &key.map(|k| &k.request),
                ],
            )
            .map_err(db(&shown, "record the execution"))?
            .get(0);
        for (pos, (j, sp)) in jobs.iter().enumerate() {
            let t = exec::job_task(p, j, sp, eid)?;
            let spec = TaskSpec {
                kind: t.kind,
                params: t.params,
                priority: t.priority,
                max_attempts: t.max_attempts,
                retry: t.retry,
                timeout_s: t.timeout_s,
                pipeline: p.name.clone(),
            };
            tx.execute(
                "INSERT INTO pipeline_jobs (execution_id, job_id, job_type, status, position, depends_on, task)
                 VALUES ($1, $2, $3, 'waiting', $4, $5, $6)",
                &[
                    &eid,
                    &j.id,
                    &j.job_type,
                    &(pos as i64),
                    &json!(j.depends_on).to_string(),
                    &json!(spec).to_string(),
                ],
            )
            .map_err(db(&shown, "record a job"))?;
        }
        let (_, n) = sync_in(&mut tx, &shown, &schema, eid)?;
        tx.commit().map_err(db(&shown, "commit the execution"))?;
        self.released += n;
        Ok(Admitted::Yes(Created {
            execution_id: eid,
            existing: false,
        }))
    }

    /// Reconciles execution `eid` with ABSURD and spawns the jobs whose upstream jobs completed;
    /// returns its status.
    pub fn sync(&mut self, eid: i64) -> Result<ExecStatus, PipelineError> {
        let (shown, schema) = (self.shown.clone(), self.schema.clone());
        let mut tx = self.client().transaction().map_err(db(&shown, "begin"))?;
        crate::store::pg_write_lock(&mut tx, &schema).map_err(db(&shown, "lock"))?;
        let (status, n) = sync_in(&mut tx, &shown, &schema, eid)?;
        tx.commit().map_err(db(&shown, "commit the sync"))?;
        self.released += n;
        Ok(status)
    }

    /// Syncs every running execution; true when that spawned jobs.
    pub fn sync_active(&mut self) -> Result<bool, PipelineError> {
        let before = self.released;
        let shown = self.shown.clone();
        let ids: Vec<i64> = self
            .client()
            .query(
                "SELECT id FROM pipeline_executions WHERE status = 'running' ORDER BY id",
                &[],
            )
            .map_err(db(&shown, "list running executions"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for id in ids {
            self.sync(id)?;
        }
        Ok(self.released > before)
    }

    /// The slot of the latest completed execution of `pipeline` (where `run --catch-up` starts).
    pub fn last_success(&mut self, pipeline: &str) -> Result<Option<DateTime<Utc>>, PipelineError> {
        let shown = self.shown.clone();
        let last: Option<String> = self
            .client()
            .query_one(
                "SELECT max(slot) FROM pipeline_executions WHERE pipeline_name = $1 AND status = 'completed'",
                &[&pipeline],
            )
            .map_err(db(&shown, "find the last successful execution"))?
            .get(0);
        Ok(last.as_deref().and_then(crate::time::parse_rfc3339))
    }

    /// The manifest of execution `eid`, synced first.
    pub fn manifest(&mut self, eid: i64) -> Result<ExecutionManifest, PipelineError> {
        self.sync(eid)?;
        let shown = self.shown.clone();
        let label = self.label();
        let row = self
            .client()
            .query_opt(
                "SELECT pipeline_name, slot, params, status, error, started_at, completed_at, queue
                   FROM pipeline_executions WHERE id = $1",
                &[&eid],
            )
            .map_err(db(&shown, "read the execution"))?
            .ok_or(PipelineError::NoSuchExecution(eid))?;
        let status: String = row.get(3);
        let (tasks_table, runs_table) = tables(&row.get::<_, String>(7));
        // ABSURD's max_attempts: another client's retry may have raised it.
        let sql = format!(
            "SELECT j.job_id, j.job_type, j.task_id, j.status, j.attempts, j.task, j.depends_on, j.result,
                    j.error, j.started_at, j.completed_at, j.log_path, t.max_attempts
               FROM pipeline_jobs j LEFT JOIN {tasks_table} t ON t.task_id = j.task_id
              WHERE j.execution_id = $1 ORDER BY j.position"
        );
        let rows = self
            .client()
            .query(&sql, &[&eid])
            .map_err(db(&shown, "read the jobs"))?;
        let runs_sql = format!(
            "SELECT state, available_at,
                    state = 'running' AND claim_expires_at <= absurd.current_time(),
                    CASE WHEN state = 'running' THEN claimed_by END
               FROM {runs_table} WHERE task_id = $1 ORDER BY attempt"
        );
        let mut jobs = Vec::new();
        let mut any_interrupted = false;
        for r in rows {
            let spec: TaskSpec = parse_spec(&r.get::<_, String>(5))?;
            let task_id: Option<Uuid> = r.get(2);
            // ABSURD's runs: the outcome of each attempt, and when a sleeping retry is due.
            let runs = match task_id {
                Some(t) => self
                    .client()
                    .query(&runs_sql, &[&t])
                    .map_err(db(&shown, "read a task's runs"))?,
                None => Vec::new(),
            };
            let run_states = runs
                .iter()
                .map(|x| absurd_state(&x.get::<_, String>(0)))
                .collect::<Result<Vec<_>, _>>()?;
            let next_retry_at = runs
                .iter()
                .zip(&run_states)
                .find(|(_, s)| **s == TaskState::Sleeping)
                .map(|(x, _)| iso(x.get::<_, DateTime<Utc>>(1)));
            let attempt_outcomes: Vec<String> = run_states
                .iter()
                .filter(|s| !matches!(s, TaskState::Pending | TaskState::Sleeping))
                .map(|s| s.as_str().to_string())
                .collect();
            let started: Option<String> = r.get(9);
            let finished: Option<String> = r.get(10);
            // A running job whose worker's claim expired (it died or hung), or whose worker on
            // this host is provably dead: interrupted until another worker takes it over.
            let mut state: String = r.get(3);
            if state == TaskState::Running.as_str()
                && runs.iter().any(|x| {
                    x.get::<_, Option<bool>>(2) == Some(true)
                        || x.get::<_, Option<String>>(3)
                            .is_some_and(|w| super::procs::holder_dead(&w))
                })
            {
                state = super::exec::INTERRUPTED.to_string();
                any_interrupted = true;
            }
            jobs.push(JobReport {
                id: r.get(0),
                job_type: r.get(1),
                task_id: task_id.map_or(Value::Null, |u| Value::from(u.to_string())),
                state,
                attempts: r.get::<_, i64>(4).max(0) as u32,
                max_attempts: r
                    .get::<_, Option<i32>>(12)
                    .map_or(spec.max_attempts, |m| m.max(0) as u32),
                priority: spec.priority,
                depends_on: serde_json::from_str(&r.get::<_, String>(6)).unwrap_or_default(),
                params: spec.params,
                outputs: r
                    .get::<_, Option<String>>(7)
                    .and_then(|s| serde_json::from_str(&s).ok()),
                error: r.get(8),
                next_retry_at,
                duration_s: duration(started.as_deref(), finished.as_deref()),
                started_at: started,
                finished_at: finished,
                log_path: r.get(11),
                attempt_outcomes,
            });
        }
        Ok(ExecutionManifest {
            schema: crate::manifest::EXECUTION_SCHEMA,
            database: label,
            execution_id: eid,
            pipeline: row.get(0),
            slot: row.get(1),
            params: serde_json::from_str(&row.get::<_, String>(2)).unwrap_or(Value::Null),
            status: match parse_status(&status)? {
                ExecStatus::Running if any_interrupted => ExecStatus::Interrupted,
                s => s,
            },
            error: row.get(4),
            started_at: row.get(5),
            completed_at: row.get(6),
            existing: false,
            qa_verdict: super::exec::qa_verdict_of_jobs(&jobs),
            jobs,
        })
    }

    /// The latest `limit` executions, newest first, synced.
    pub fn list(&mut self, limit: usize) -> Result<Vec<ExecutionSummary>, PipelineError> {
        self.sync_active()?;
        let shown = self.shown.clone();
        let rows = self
            .client()
            .query(
                "SELECT id, pipeline_name, slot, status, started_at, completed_at, error, queue
                   FROM pipeline_executions ORDER BY id DESC LIMIT $1",
                &[&(limit as i64)],
            )
            .map_err(db(&shown, "list executions"))?;
        let mut out = Vec::new();
        for r in rows {
            let eid: i64 = r.get(0);
            let mut jobs = BTreeMap::new();
            let mut qa_verdict = None;
            for j in self
                .client()
                .query(
                    "SELECT job_id, status, job_type, result, error FROM pipeline_jobs \
                     WHERE execution_id = $1 ORDER BY position",
                    &[&eid],
                )
                .map_err(db(&shown, "list jobs"))?
            {
                let outputs = j
                    .get::<_, Option<String>>(3)
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok());
                let error: Option<String> = j.get(4);
                qa_verdict = qa_verdict.or_else(|| {
                    super::exec::qa_verdict(j.get(2), outputs.as_ref(), error.as_deref())
                });
                jobs.insert(j.get(0), j.get(1));
            }
            let mut status = parse_status(&r.get::<_, String>(3))?;
            if status == ExecStatus::Running {
                for job in self.interrupted(eid, &r.get::<_, String>(7))? {
                    status = ExecStatus::Interrupted;
                    jobs.insert(job, super::exec::INTERRUPTED.to_string());
                }
            }
            out.push(ExecutionSummary {
                execution_id: eid,
                pipeline: r.get(1),
                slot: r.get(2),
                status,
                started_at: r.get(4),
                completed_at: r.get(5),
                error: r.get(6),
                jobs,
                qa_verdict,
            });
        }
        Ok(out)
    }

    /// The jobs of running execution `eid` (on queue `queue`) held by a worker whose claim expired
    /// or that is provably dead on this host: nobody works them until another worker takes them
    /// over (as [`PgPipeline::manifest`] shows each job).
    fn interrupted(&mut self, eid: i64, queue: &str) -> Result<Vec<String>, PipelineError> {
        let shown = self.shown.clone();
        let (_, runs_table) = tables(queue);
        let sql = format!(
            "SELECT j.job_id, r.claim_expires_at <= absurd.current_time(), r.claimed_by
               FROM pipeline_jobs j JOIN {runs_table} r ON r.task_id = j.task_id
              WHERE j.execution_id = $1 AND r.state = 'running'"
        );
        let rows = self
            .client()
            .query(&sql, &[&eid])
            .map_err(db(&shown, "read the running jobs' claims"))?;
        Ok(rows
            .iter()
            .filter(|x| {
                x.get::<_, Option<bool>>(1) == Some(true)
                    || x.get::<_, Option<String>>(2)
                        .is_some_and(|w| super::procs::holder_dead(&w))
            })
            .map(|x| x.get(0))
            .collect())
    }

    /// The latest `limit` tasks of the queue that `pipeline_jobs` does not record (spawned by
    /// another client) whose name is one of `accept`, newest first.
    pub fn standalone(
        &mut self,
        accept: &[String],
        limit: usize,
    ) -> Result<Vec<StandaloneTask>, PipelineError> {
        let shown = self.shown.clone();
        let (tasks, runs) = tables(self.queue_name());
        let exists: Option<String> = self
            .client()
            .query_one("SELECT to_regclass($1)::text", &[&tasks])
            .map_err(db(&shown, "find the queue"))?
            .get(0);
        if exists.is_none() {
            return Ok(Vec::new());
        }
        let rows = self
            .client()
            .query(
                &format!(
                    "SELECT t.task_id, t.task_name, t.state, t.enqueue_at,
                            (SELECT count(*) FROM {runs} r WHERE r.task_id = t.task_id
                                AND r.started_at IS NOT NULL),
                            (SELECT max(coalesce(r.completed_at, r.failed_at)) FROM {runs} r
                              WHERE r.task_id = t.task_id),
                            (SELECT r.failure_reason FROM {runs} r WHERE r.task_id = t.task_id
                                AND r.failure_reason IS NOT NULL ORDER BY r.attempt DESC LIMIT 1)
                       FROM {tasks} t
                      WHERE t.task_name = ANY($1)
                        AND NOT EXISTS (SELECT 1 FROM pipeline_jobs j WHERE j.task_id = t.task_id)
                      ORDER BY t.enqueue_at DESC LIMIT $2"
                ),
                &[&accept, &(limit as i64)],
            )
            .map_err(db(&shown, "list standalone tasks"))?;
        Ok(rows
            .iter()
            .map(|r| StandaloneTask {
                task_id: r.get::<_, Uuid>(0).to_string(),
                task_type: r.get(1),
                state: r.get(2),
                attempts: r.get(4),
                enqueued_at: r.get::<_, Option<DateTime<Utc>>>(3).map(iso),
                finished_at: r.get::<_, Option<DateTime<Utc>>>(5).map(iso),
                error: r.get::<_, Option<Value>>(6).as_ref().map(failure_text),
            })
            .collect())
    }

    /// Cancels the unfinished jobs of `eid` (ABSURD's `cancel_task` for spawned ones); returns how many.
    pub fn cancel(&mut self, eid: i64) -> Result<usize, PipelineError> {
        // Up to date with ABSURD first (and an unknown id refused before anything changes).
        self.sync(eid)?;
        let (shown, schema) = (self.shown.clone(), self.schema.clone());
        let mut tx = self.client().transaction().map_err(db(&shown, "begin"))?;
        crate::store::pg_write_lock(&mut tx, &schema).map_err(db(&shown, "lock"))?;
        let queue = execution_queue(&mut tx, &shown, eid)?;
        let rows = tx
            .query(
                "SELECT job_id, task_id FROM pipeline_jobs WHERE execution_id = $1 AND status = ANY($2)",
                &[&eid, &JobState::open_names()],
            )
            .map_err(db(&shown, "read the jobs"))?;
        for r in &rows {
            let job: String = r.get(0);
            match r.get::<_, Option<Uuid>>(1) {
                Some(task) => {
                    tx.execute("SELECT absurd.cancel_task($1, $2)", &[&queue, &task])
                        .map_err(db(&shown, "cancel a task"))?;
                }
                None => {
                    tx.execute(
                        "UPDATE pipeline_jobs SET status = 'cancelled', error = 'cancelled before it started'
                          WHERE execution_id = $1 AND job_id = $2",
                        &[&eid, &job],
                    )
                    .map_err(db(&shown, "cancel a job"))?;
                }
            }
        }
        sync_in(&mut tx, &shown, &schema, eid)?;
        tx.commit().map_err(db(&shown, "commit the cancel"))?;
        Ok(rows.len())
    }

    /// Gives the failed, cancelled and skipped jobs of `eid` another full set of attempts: ABSURD's
    /// `retry_task` for a failed task, a fresh task for a cancelled one, `waiting` again for a
    /// skipped one. Returns the jobs reset.
    pub fn retry(&mut self, eid: i64) -> Result<Vec<String>, PipelineError> {
        // Up to date with ABSURD first (and an unknown id refused before anything changes).
        self.sync(eid)?;
        let (shown, schema) = (self.shown.clone(), self.schema.clone());
        let mut tx = self.client().transaction().map_err(db(&shown, "begin"))?;
        crate::store::pg_write_lock(&mut tx, &schema).map_err(db(&shown, "lock"))?;
        let queue = execution_queue(&mut tx, &shown, eid)?;
        let (tasks_table, _) = tables(&queue);
        let rows = tx
            .query(
                "SELECT job_id, task_id, task FROM pipeline_jobs
                  WHERE execution_id = $1 AND status IN ('failed', 'cancelled', 'skipped') ORDER BY position",
                &[&eid],
            )
            .map_err(db(&shown, "read the jobs"))?;
        let mut reset = Vec::new();
        for r in &rows {
            let job: String = r.get(0);
            let spec = parse_spec(&r.get::<_, String>(2))?;
            let absurd_state: Option<(String, i32)> = match r.get::<_, Option<Uuid>>(1) {
                Some(t) => tx
                    .query_opt(
                        &format!("SELECT state, attempts FROM {tasks_table} WHERE task_id = $1"),
                        &[&t],
                    )
                    .map_err(db(&shown, "read a task"))?
                    .map(|x| (x.get(0), x.get(1))),
                None => None,
            };
            let absurd_state = absurd_state
                .map(|(s, attempts)| Ok::<_, PipelineError>((self::absurd_state(&s)?, attempts)))
                .transpose()?;
            match (r.get::<_, Option<Uuid>>(1), absurd_state) {
                (Some(t), Some((TaskState::Failed, attempts))) => {
                    let more =
                        json!({ "max_attempts": attempts.max(0) as u32 + spec.max_attempts });
                    tx.execute(
                        "SELECT 1 FROM absurd.retry_task($1, $2, $3)",
                        &[&queue, &t, &more],
                    )
                    .map_err(db(&shown, "retry a task"))?;
                    tx.execute(
                        "UPDATE pipeline_jobs SET status = 'pending', error = NULL WHERE task_id = $1",
                        &[&t],
                    )
                    .map_err(db(&shown, "reset a job"))?;
                }
                (Some(_), _) => {
                    // Cancelled (by contimg or another client): ABSURD retries only failed tasks,
                    // so the job gets a fresh task.
                    let n: i64 = tx
                        .query_one(
                            "SELECT count(*) FROM pipeline_jobs WHERE execution_id = $1",
                            &[&eid],
                        )
                        .map_err(db(&shown, "count"))?
                        .get(0);
                    let key = format!("contimg:{schema}:{eid}:{job}:retry:{}:{n}", Uuid::new_v4());
                    let t = new_task(&spec, eid, &job);
                    let id = spawn_on(&mut tx, &shown, &queue, &t, Some(&key))?;
                    tx.execute(
                        "UPDATE pipeline_jobs SET status = 'pending', error = NULL, result = NULL, task_id = $3
                          WHERE execution_id = $1 AND job_id = $2",
                        &[&eid, &job, &id],
                    )
                    .map_err(db(&shown, "reset a job"))?;
                }
                (None, _) => {
                    tx.execute(
                        "UPDATE pipeline_jobs SET status = 'waiting', error = NULL
                          WHERE execution_id = $1 AND job_id = $2",
                        &[&eid, &job],
                    )
                    .map_err(db(&shown, "reset a job"))?;
                }
            }
            reset.push(job);
        }
        tx.execute(
            "UPDATE pipeline_executions SET status = 'running', error = NULL, completed_at = NULL,
                    round = round + 1
              WHERE id = $1",
            &[&eid],
        )
        .map_err(db(&shown, "reopen the execution"))?;
        let (_, n) = sync_in(&mut tx, &shown, &schema, eid)?;
        tx.commit().map_err(db(&shown, "commit the retry"))?;
        self.released += n;
        Ok(reset)
    }
}

/// A connection to contimg's schema `schema` at `url`, made only once ABSURD's schema is found there:
/// on a server without it nothing of contimg's is created.
fn checked_client(url: &str, schema: &str) -> Result<(crate::pg::PgTarget, Client), PipelineError> {
    let target = crate::pg::PgTarget::parse(url).map_err(QueueError::from)?;
    let mut client = target.connect().map_err(QueueError::from)?;
    crate::queue::absurd::check_schema(&mut client, &target)?;
    let client = crate::store::pg_prepare(&target, client, schema)?;
    Ok((target, client))
}

/// The notification outbox in contimg's schema on the server (checked as [`PgPipeline::open`]).
pub fn outbox(url: &str, schema: &str) -> Result<crate::store::Db, PipelineError> {
    let (target, client) = checked_client(url, schema)?;
    Ok(crate::store::Db::Postgres(crate::store::sql::PgDb {
        client,
        shown: target.shown.clone(),
        schema: schema.to_string(),
        target: Box::new(target),
    }))
}

/// A contimg schema on a PostgreSQL server and the ABSURD queue its pipelines use.
pub struct PgBackend {
    pub url: String,
    pub schema: String,
    pub queue: String,
    /// `[postgres] accept_outside` (see [`super::outside`]).
    pub accept_outside: Vec<String>,
    /// `[postgres] run_pipelines`.
    pub run_pipelines: Vec<String>,
}

impl Backend for PgBackend {
    // Both reconnect after a lost connection (a server restart): see [`Reconnecting`].
    fn executions(&self, _access: Access) -> Result<Box<dyn Executions>, PipelineError> {
        // Reads reconcile with ABSURD too: another ABSURD client may have changed a task.
        let (url, schema, queue) = (self.url.clone(), self.schema.clone(), self.queue.clone());
        Ok(Box::new(Reconnecting::executions(
            &crate::pg::mask_url(&self.url),
            Box::new(move || {
                Ok(Box::new(PgPipeline::open(&url, &schema, &queue)?) as Box<dyn Executions>)
            }),
        )?))
    }

    fn jobs(&self, deliver: bool) -> Result<Box<dyn JobSource>, PipelineError> {
        let (url, schema, queue) = (self.url.clone(), self.schema.clone(), self.queue.clone());
        let accept_outside = self.accept_outside.clone();
        let run_pipelines = self.run_pipelines.clone();
        // A worker thread waits for a server that is down at its start, like for any outage.
        Ok(Box::new(Reconnecting::patient(
            &crate::pg::mask_url(&self.url),
            Box::new(move || {
                Ok(Box::new(PgJobs {
                    pg: PgPipeline::open(&url, &schema, &queue)?,
                    accept_outside: accept_outside.clone(),
                    run_pipelines: run_pipelines.clone(),
                    outbox: if deliver {
                        Some(outbox(&url, &schema)?)
                    } else {
                        None
                    },
                }) as Box<dyn JobSource>)
            }),
        )?))
    }

    fn outbox(&self) -> Result<crate::store::Db, PipelineError> {
        outbox(&self.url, &self.schema)
    }

    fn child_database(&self) -> ChildDatabase {
        // The URL may hold a password: it goes by environment, never on a command line.
        ChildDatabase {
            args: Vec::new(),
            env: BTreeMap::from([
                ("CONTIMG_DB".to_string(), self.url.clone()),
                ("CONTIMG_PG_SCHEMA".to_string(), self.schema.clone()),
                ("CONTIMG_ABSURD_QUEUE".to_string(), self.queue.clone()),
                // A job's child waits out a short outage (a server restart) instead of failing.
                (
                    crate::pg::CONNECT_WAIT_ENV.to_string(),
                    std::env::var(crate::pg::CONNECT_WAIT_ENV)
                        .unwrap_or_else(|_| crate::pg::CHILD_CONNECT_WAIT_S.to_string()),
                ),
            ]),
        }
    }
}

impl Executions for PgPipeline {
    fn database(&self) -> String {
        self.label()
    }

    fn create(
        &mut self,
        p: &NamedPipeline,
        slot: &Slot,
        params: &BTreeMap<String, Option<String>>,
        products: &Path,
        _runner_lease: Option<Duration>,
        key: Option<&exec::RequestKey>,
    ) -> Result<Admitted, PipelineError> {
        PgPipeline::create(self, p, slot, params, products, key)
    }

    fn sync(&mut self, eid: i64) -> Result<ExecStatus, PipelineError> {
        PgPipeline::sync(self, eid)
    }

    fn manifest(&mut self, eid: i64) -> Result<ExecutionManifest, PipelineError> {
        PgPipeline::manifest(self, eid)
    }

    fn list(&mut self, limit: usize) -> Result<Vec<ExecutionSummary>, PipelineError> {
        PgPipeline::list(self, limit)
    }

    fn last_success(&mut self, pipeline: &str) -> Result<Option<DateTime<Utc>>, PipelineError> {
        PgPipeline::last_success(self, pipeline)
    }

    fn standalone(
        &mut self,
        accept: &[String],
        limit: usize,
    ) -> Result<Vec<StandaloneTask>, PipelineError> {
        PgPipeline::standalone(self, accept, limit)
    }

    fn cancel(&mut self, eid: i64) -> Result<usize, PipelineError> {
        PgPipeline::cancel(self, eid)
    }

    fn retry(&mut self, eid: i64) -> Result<usize, PipelineError> {
        PgPipeline::retry(self, eid).map(|reset| reset.len())
    }

    fn deliver(&mut self, d: &Delivery, all: bool) -> Result<DeliveryStats, PipelineError> {
        let outbox = match &mut self.outbox {
            Some(db) => db,
            empty => empty.insert(outbox(&self.url, &self.schema)?),
        };
        Ok(super::notify::deliver(outbox, d, all)?)
    }

    fn as_runner(
        &mut self,
        _eid: i64,
        _lease: Duration,
        work: &mut dyn FnMut() -> Result<(), PipelineError>,
    ) -> Result<Option<Holder>, PipelineError> {
        // No runner lease: ABSURD's claims are the leases, and any number of processes on any
        // machines may work one execution (ABSURD hands each job's run to one of them).
        work().map(|()| None)
    }
}

fn parse_spec(s: &str) -> Result<TaskSpec, PipelineError> {
    serde_json::from_str(s)
        .map_err(|e| PipelineError::Invalid(format!("a recorded job task is corrupt: {e}")))
}

fn parse_status(s: &str) -> Result<ExecStatus, PipelineError> {
    ExecStatus::ALL
        .into_iter()
        .find(|x| x.as_str() == s)
        .ok_or_else(|| PipelineError::Invalid(format!("unknown execution status '{s}'")))
}

fn duration(started: Option<&str>, finished: Option<&str>) -> Option<f64> {
    let s = DateTime::parse_from_rfc3339(started?).ok()?;
    let f = DateTime::parse_from_rfc3339(finished?).ok()?;
    Some((f - s).num_milliseconds() as f64 / 1000.0)
}

fn new_task(spec: &TaskSpec, eid: i64, job: &str) -> NewTask {
    let mut t = NewTask::new(spec.kind.clone(), spec.params.clone())
        .job_id(job.to_string())
        .execution(eid)
        .pipeline(spec.pipeline.clone())
        .priority(spec.priority)
        .max_attempts(spec.max_attempts)
        .retry(spec.retry);
    if let Some(s) = spec.timeout_s {
        t = t.timeout_s(s);
    }
    t
}

/// One job row as [`sync_in`] sees it.
struct JobRow {
    job_id: String,
    status: JobState,
    task_id: Option<Uuid>,
    depends_on: Vec<String>,
    task: String,
}

/// What ABSURD says of a task.
struct TaskFacts {
    state: TaskState,
    attempts: i64,
    result: Option<Value>,
    error: Option<String>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

/// The ABSURD queue execution `eid` was created on.
fn execution_queue(
    tx: &mut postgres::Transaction<'_>,
    shown: &str,
    eid: i64,
) -> Result<String, PipelineError> {
    Ok(tx
        .query_opt(
            "SELECT queue FROM pipeline_executions WHERE id = $1",
            &[&eid],
        )
        .map_err(db(shown, "read the execution"))?
        .ok_or(PipelineError::NoSuchExecution(eid))?
        .get(0))
}

/// The reconciler, inside the caller's locked transaction: mirrors ABSURD's state of every spawned
/// job, spawns the waiting jobs whose upstream jobs all completed, skips those with a failed or
/// cancelled upstream job, and derives the execution's status. Returns the status and how many jobs
/// it spawned.
fn sync_in(
    tx: &mut postgres::Transaction<'_>,
    shown: &str,
    schema: &str,
    eid: i64,
) -> Result<(ExecStatus, usize), PipelineError> {
    let before = tx
        .query_opt(
            "SELECT status, definition, round, queue FROM pipeline_executions WHERE id = $1",
            &[&eid],
        )
        .map_err(db(shown, "read the execution"))?
        .ok_or(PipelineError::NoSuchExecution(eid))?;
    let mut r = Reconcile {
        tx,
        shown,
        schema,
        eid,
        // The queue the execution was created on (the configuration may have changed since).
        queue: before.get(3),
    };
    let mut jobs = r.jobs()?;
    r.mirror(&mut jobs)?;
    let (states, spawned) = r.release(&jobs)?;
    let status = r.conclude(&states)?;
    let was = parse_status(&before.get::<_, String>(0))?;
    // Ended just now: any ABSURD client (a `contimg.run` task) waiting for it is woken.
    if status.is_finished() && !was.is_finished() {
        r.emit_ended(status)?;
    }
    // Turned failed just now: its notifications go to the outbox in this same transaction.
    if status == ExecStatus::Failed && was != ExecStatus::Failed {
        r.notify(before.get(1), before.get(2))?;
    }
    Ok((status, spawned))
}

/// Each job's state by job id.
type JobStates = BTreeMap<String, JobState>;

/// One execution's reconciliation, inside a locked transaction (see [`sync_in`]).
struct Reconcile<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    shown: &'a str,
    schema: &'a str,
    eid: i64,
    queue: String,
}

impl Reconcile<'_, '_> {
    fn jobs(&mut self) -> Result<Vec<JobRow>, PipelineError> {
        self.tx
            .query(
                "SELECT job_id, status, task_id, depends_on, task FROM pipeline_jobs
                  WHERE execution_id = $1 ORDER BY position",
                &[&self.eid],
            )
            .map_err(db(self.shown, "read the jobs"))?
            .iter()
            .map(|r| {
                Ok(JobRow {
                    job_id: r.get(0),
                    status: JobState::parse(&r.get::<_, String>(1))?,
                    task_id: r.get(2),
                    depends_on: serde_json::from_str(&r.get::<_, String>(3)).unwrap_or_default(),
                    task: r.get(4),
                })
            })
            .collect::<Result<_, PipelineError>>()
    }

    /// Stage 1: every spawned job takes ABSURD's state, attempts, result and failure.
    fn mirror(&mut self, jobs: &mut [JobRow]) -> Result<(), PipelineError> {
        let (tasks_table, runs_table) = tables(&self.queue);
        for j in jobs.iter_mut() {
            let Some(task) = j.task_id else { continue };
            let Some(f) = task_facts(self.tx, self.shown, &tasks_table, &runs_table, task)? else {
                continue;
            };
            // contimg's "failed for good" cancelled the task so that no one retries it: keep
            // `failed`.
            let state = if j.status == JobState::FAILED && f.state == TaskState::Cancelled {
                JobState::FAILED
            } else {
                JobState::Task(f.state)
            };
            self.tx
                .execute(
                    "UPDATE pipeline_jobs SET status = $2, attempts = $3, result = COALESCE($4, result),
                            error = CASE WHEN $2 = 'failed' THEN COALESCE(error, $5)
                                         WHEN $2 = 'cancelled' THEN COALESCE($5, 'cancelled') ELSE $5 END,
                            started_at = $6, completed_at = $7
                      WHERE task_id = $1",
                    &[
                        &task,
                        &state.as_str(),
                        &f.attempts,
                        &f.result.as_ref().map(Value::to_string),
                        &f.error,
                        &f.started_at.map(iso),
                        &f.ended_at.filter(|_| !state.is_open()).map(iso),
                    ],
                )
                .map_err(db(self.shown, "record a job's state"))?;
            j.status = state;
        }
        Ok(())
    }

    fn set_status(
        &mut self,
        job: &str,
        status: JobState,
        error: Option<&str>,
    ) -> Result<(), PipelineError> {
        self.tx
            .execute(
                "UPDATE pipeline_jobs SET status = $3, error = $4 WHERE execution_id = $1 AND job_id = $2",
                &[&self.eid, &job, &status.as_str(), &error],
            )
            .map_err(db(self.shown, "record a job's state"))?;
        Ok(())
    }

    /// Stage 2: skips the waiting jobs with a failed upstream job, lets a skipped job wait again
    /// once its upstream jobs were retried (by `contimg retry` or another ABSURD client), and spawns
    /// the ready ones by priority. Jobs come in dependency order, so one pass suffices. Returns every
    /// job's state and how many were spawned.
    fn release(&mut self, jobs: &[JobRow]) -> Result<(JobStates, usize), PipelineError> {
        let mut states: JobStates = jobs.iter().map(|j| (j.job_id.clone(), j.status)).collect();
        let mut ready: Vec<(&JobRow, TaskSpec)> = Vec::new();
        for j in jobs
            .iter()
            .filter(|j| matches!(j.status, JobState::Waiting | JobState::Skipped))
        {
            // `None`: no job of that id in the execution.
            let ups: Vec<(&String, Option<JobState>)> = j
                .depends_on
                .iter()
                .map(|d| (d, states.get(d).copied()))
                .collect();
            let bad = ups
                .iter()
                .find(|(_, s)| s.is_none_or(JobState::blocks_downstream))
                .map(|(d, s)| {
                    format!(
                        "skipped: upstream job '{d}' is {}",
                        s.map_or("missing", JobState::as_str)
                    )
                });
            let all_done = ups.iter().all(|(_, s)| *s == Some(JobState::COMPLETED));
            match (bad, j.status) {
                (Some(_), JobState::Skipped) => {}
                (Some(why), _) => {
                    self.set_status(&j.job_id, JobState::Skipped, Some(&why))?;
                    states.insert(j.job_id.clone(), JobState::Skipped);
                }
                (None, _) if all_done => ready.push((j, parse_spec(&j.task)?)),
                (None, JobState::Skipped) => {
                    self.set_status(&j.job_id, JobState::Waiting, None)?;
                    states.insert(j.job_id.clone(), JobState::Waiting);
                }
                (None, _) => {}
            }
        }
        let mut spawned = 0;
        for (j, spec) in self.by_priority(ready)? {
            let t = new_task(&spec, self.eid, &j.job_id);
            let key = format!("contimg:{}:{}:{}", self.schema, self.eid, j.job_id);
            let id = spawn_on(self.tx, self.shown, &self.queue, &t, Some(&key))?;
            self.tx
                .execute(
                    "UPDATE pipeline_jobs SET status = 'pending', task_id = $3 WHERE execution_id = $1 AND job_id = $2",
                    &[&self.eid, &j.job_id, &id],
                )
                .map_err(db(self.shown, "record a spawned job"))?;
            states.insert(j.job_id.clone(), JobState::Task(TaskState::Pending));
            spawned += 1;
        }
        Ok((states, spawned))
    }

    /// Priorities: ABSURD claims in spawn order, so of the ready jobs only those at the highest
    /// priority, and not below a contimg job waiting unclaimed on the queue, are spawned now; the rest
    /// wait for a later sync (every worker syncs after each job and when idle).
    fn by_priority<'j>(
        &mut self,
        ready: Vec<(&'j JobRow, TaskSpec)>,
    ) -> Result<Vec<(&'j JobRow, TaskSpec)>, PipelineError> {
        if ready.is_empty() {
            return Ok(ready);
        }
        let (tasks_table, _) = tables(&self.queue);
        let pending_max: Option<i64> = self
            .tx
            .query_one(
                &format!(
                    "SELECT max((j.task::jsonb->>'priority')::bigint) FROM pipeline_jobs j
                       JOIN {tasks_table} t ON t.task_id = j.task_id WHERE t.state = 'pending'"
                ),
                &[],
            )
            .map_err(db(self.shown, "read the queue's priorities"))?
            .get(0);
        let ready_max = ready.iter().map(|(_, s)| s.priority).max().unwrap_or(0);
        let threshold = pending_max.map_or(ready_max, |p| p.max(ready_max));
        Ok(ready
            .into_iter()
            .filter(|(_, s)| s.priority >= threshold)
            .collect())
    }

    /// Stage 3: the execution's status, derived from its jobs by the rule both backends share
    /// (a job waiting for its upstream jobs counts as pending, a skipped one as cancelled).
    fn conclude(&mut self, states: &JobStates) -> Result<ExecStatus, PipelineError> {
        let count = |s: TaskState| {
            states
                .values()
                .filter(|v| match v {
                    JobState::Waiting => s == TaskState::Pending,
                    JobState::Skipped => s == TaskState::Cancelled,
                    JobState::Task(t) => *t == s,
                })
                .count() as i64
        };
        let status = ExecStatus::derive(count);
        let error: Option<String> = if status.is_finished() && status != ExecStatus::Completed {
            self.tx
                .query_opt(
                    "SELECT job_id, status, error FROM pipeline_jobs WHERE execution_id = $1
                        AND status IN ('failed', 'cancelled') ORDER BY status = 'cancelled', position LIMIT 1",
                    &[&self.eid],
                )
                .map_err(db(self.shown, "read a failed job"))?
                .map(|r| {
                    format!(
                        "job '{}' {}: {}",
                        r.get::<_, String>(0),
                        r.get::<_, String>(1),
                        r.get::<_, Option<String>>(2).unwrap_or_default()
                    )
                })
        } else {
            None
        };
        self.tx
            .execute(
                "UPDATE pipeline_executions SET status = $2, error = $3,
                        completed_at = CASE WHEN $2 = 'running' THEN NULL
                            ELSE COALESCE(completed_at,
                                (SELECT max(completed_at) FROM pipeline_jobs WHERE execution_id = $1), $4) END
                  WHERE id = $1",
                &[&self.eid, &status.as_str(), &error, &iso(crate::time::now())],
            )
            .map_err(db(self.shown, "record the execution's status"))?;
        Ok(status)
    }

    /// Emits the ABSURD event [`ended_event`] on the execution's queue, in this transaction (so
    /// it is emitted exactly when the end is recorded). ABSURD keeps an event's first payload: a
    /// `contimg retry` that ends again emits nothing new.
    fn emit_ended(&mut self, status: ExecStatus) -> Result<(), PipelineError> {
        let row = self
            .tx
            .query_one(
                "SELECT pipeline_name, slot, error FROM pipeline_executions WHERE id = $1",
                &[&self.eid],
            )
            .map_err(db(self.shown, "read the execution"))?;
        let payload = json!({
            "schema": "contimg.execution-ended/1",
            "execution_id": self.eid,
            "pipeline": row.get::<_, String>(0),
            "slot": row.get::<_, String>(1),
            "status": status.as_str(),
            "error": row.get::<_, Option<String>>(2),
        });
        self.tx
            .execute(
                "SELECT absurd.emit_event($1, $2, $3)",
                &[&self.queue, &ended_event(self.eid), &payload],
            )
            .map_err(db(self.shown, "emit the execution's end"))?;
        Ok(())
    }

    /// The failure notifications of the execution, written in this transaction.
    fn notify(&mut self, definition: Option<String>, round: i64) -> Result<(), PipelineError> {
        let failed: Vec<FailedJob> = self
            .tx
            .query(
                "SELECT job_id, error, log_path FROM pipeline_jobs
                  WHERE execution_id = $1 AND status = 'failed' ORDER BY position",
                &[&self.eid],
            )
            .map_err(db(self.shown, "read the failed jobs"))?
            .iter()
            .map(|r| FailedJob {
                job: r.get(0),
                error: r.get::<_, Option<String>>(1).unwrap_or_default(),
                log: r.get(2),
            })
            .collect();
        crate::pipeline::notify::enqueue_failure(
            &mut PgTxRef {
                tx: self.tx,
                shown: self.shown,
            },
            self.eid,
            definition.as_deref(),
            round,
            &failed,
        )?;
        Ok(())
    }
}

/// ABSURD's record of `task`: its state, attempts, result, the latest failure and its times.
fn task_facts(
    tx: &mut postgres::Transaction<'_>,
    shown: &str,
    tasks_table: &str,
    runs_table: &str,
    task: Uuid,
) -> Result<Option<TaskFacts>, PipelineError> {
    let Some(t) = tx
        .query_opt(
            &format!(
                "SELECT t.state,
                        (SELECT count(*) FROM {runs_table} r WHERE r.task_id = t.task_id AND r.started_at IS NOT NULL),
                        t.completed_payload,
                        (SELECT min(r.started_at) FROM {runs_table} r WHERE r.task_id = t.task_id),
                        (SELECT max(coalesce(r.completed_at, r.failed_at)) FROM {runs_table} r WHERE r.task_id = t.task_id),
                        (SELECT r.failure_reason FROM {runs_table} r WHERE r.task_id = t.task_id
                            AND r.failure_reason IS NOT NULL ORDER BY r.attempt DESC LIMIT 1)
                   FROM {tasks_table} t WHERE t.task_id = $1"
            ),
            &[&task],
        )
        .map_err(db(shown, "read an ABSURD task"))?
    else {
        return Ok(None);
    };
    let reason: Option<Value> = t.get(5);
    Ok(Some(TaskFacts {
        state: absurd_state(&t.get::<_, String>(0))?,
        attempts: t.get(1),
        result: t.get(2),
        error: reason.as_ref().map(failure_text),
        started_at: t.get(3),
        ended_at: t.get(4),
    }))
}

/// The ABSURD event emitted (on the execution's queue) when execution `eid` first ends; its payload
/// is a `contimg.execution-ended/1` object (id, pipeline, slot, status, error).
pub fn ended_event(eid: i64) -> String {
    format!("contimg.execution.{eid}.ended")
}

/// The step name under which a `contimg.run` task awaits [`ended_event`].
const ENDED_STEP: &str = "contimg.execution-ended";

/// The pipeline on ABSURD as the worker's job source. ABSURD claims in its own order (no
/// priorities, no choice of execution). A task another ABSURD client spawned on the queue (one
/// `pipeline_jobs` does not record) is run as a standalone job only when [`super::outside::vet`]
/// accepts it, else failed once, for good, with the reason.
pub struct PgJobs {
    pub pg: PgPipeline,
    /// `[postgres] accept_outside`.
    pub accept_outside: Vec<String>,
    /// `[postgres] run_pipelines`: the pipelines a `contimg.run` task may start.
    pub run_pipelines: Vec<String>,
    /// The notification outbox, when this worker delivers (its own connection: delivery runs
    /// outside the job transactions).
    pub outbox: Option<crate::store::Db>,
}

impl PgJobs {
    /// A `contimg.run` task whose `contimg run --detach` admitted execution `admitted` (its
    /// manifest; a `contimg.skipped/1` when `max_active` skipped the slot): the task awaits the
    /// execution's end, asleep (no claim held while the execution runs: its jobs need the
    /// workers), and ends with its manifest when woken; at once when it has ended already.
    fn run_admitted(&mut self, job: &Job, admitted: &Value) -> Result<Held, PipelineError> {
        let Some(eid) = admitted.get("execution_id").and_then(Value::as_i64) else {
            // Skipped: nothing to wait for.
            return held(self.pg.q.complete(&job.lease, admitted));
        };
        match self
            .pg
            .q
            .await_event(&job.lease, ENDED_STEP, &ended_event(eid))
        {
            Ok(Some(ended)) => self.run_ended(&job.lease, &ended),
            Ok(None) => {
                log::info!(
                    "task {}: execution {eid} admitted; the task sleeps until it ends (ABSURD \
                     event {})",
                    job.lease.task,
                    ended_event(eid)
                );
                Ok(Held::Yes)
            }
            Err(e) => held::<()>(Err(e)),
        }
    }

    /// Completes a `contimg.run` task with the manifest of the execution whose end `ended` (the
    /// event's payload) reports.
    fn run_ended(&mut self, lease: &WorkLease, ended: &Value) -> Result<Held, PipelineError> {
        let result = match ended.get("execution_id").and_then(Value::as_i64) {
            Some(eid) => serde_json::to_value(self.pg.manifest(eid)?).unwrap_or(Value::Null),
            None => ended.clone(),
        };
        held(self.pg.q.complete(lease, &result))
    }
}

impl JobSource for PgJobs {
    fn now(&mut self) -> Result<DateTime<Utc>, PipelineError> {
        Ok(self.pg.q.now()?)
    }

    fn reap_abandoned(&mut self) -> Result<Vec<(String, String, Option<String>)>, PipelineError> {
        // A pipeline job whose worker is gone (its claim expired, or its process on this host
        // died) is ended here as an interruption, before ABSURD's claim_task would count it as a
        // failed attempt with a retry delay. A job's child dies with its worker (PDEATHSIG).
        let shown = self.pg.shown.clone();
        let mut out = Vec::new();
        for (task, run, worker, expired) in self.pg.q.running_runs()? {
            let worker = worker.unwrap_or_default();
            if !expired && !super::procs::holder_dead(&worker) {
                continue;
            }
            let ours = self
                .pg
                .client()
                .query_opt("SELECT 1 FROM pipeline_jobs WHERE task_id = $1", &[&task])
                .map_err(db(&shown, "find a task's job"))?
                .is_some();
            if !ours {
                continue;
            }
            let why = if expired {
                format!("the claim of worker '{worker}' expired (it stopped heartbeating)")
            } else {
                format!("worker '{worker}' died while it held the claim (its process is gone)")
            };
            if self
                .pg
                .q
                .interrupt(task, run, &why, crate::queue::MAX_INTERRUPTIONS)?
            {
                log::info!("task {task}: {why}; due again now (not counted as a failed attempt)");
                out.push((task.to_string(), worker, None));
            }
        }
        Ok(out)
    }

    fn claim(
        &mut self,
        worker: &str,
        lease: Duration,
        _only: Option<i64>,
    ) -> Result<Option<Job>, PipelineError> {
        loop {
            let Some(c) = self.pg.q.claim(worker, lease)? else {
                return Ok(None);
            };
            let TaskKey::Absurd(task) = c.lease.task else {
                unreachable!("an ABSURD queue hands out ABSURD tasks")
            };
            let shown = self.pg.shown.clone();
            let row = self
                .pg
                .client()
                .query_opt(
                    "SELECT execution_id, job_id FROM pipeline_jobs WHERE task_id = $1",
                    &[&task],
                )
                .map_err(db(&shown, "find a task's job"))?;
            // A task another client spawned: run it only when the site accepts its type and its
            // params pass; else fail it for good, saying why.
            let mut params = c.params;
            let (execution_id, job_id) = match row {
                Some(r) => (Some(r.get(0)), Some(r.get(1))),
                None => {
                    let (tasks_table, _) = tables(self.pg.queue_name());
                    let (headers, enqueued): (Option<Value>, Option<DateTime<Utc>>) = self
                        .pg
                        .client()
                        .query_opt(
                            &format!(
                                "SELECT headers, enqueue_at FROM {tasks_table} WHERE task_id = $1"
                            ),
                            &[&task],
                        )
                        .map_err(db(&shown, "read a task's headers"))?
                        .map_or((None, None), |r| (r.get(0), r.get(1)));
                    match super::outside::vet(
                        &c.name,
                        &params,
                        headers.as_ref(),
                        &self.accept_outside,
                        &self.run_pipelines,
                    ) {
                        Ok(JobKind::PipelineRun) => {
                            // Woken by its execution's end: complete it with the manifest.
                            if let Some(ended) = self.pg.q.checkpoint(c.lease.task, ENDED_STEP)? {
                                self.run_ended(&c.lease, &ended)?;
                                continue;
                            }
                            // The slot "now" is the moment the task was spawned, so a run of
                            // the task again (after a crash) admits the same execution.
                            let now = params
                                .get("slot")
                                .and_then(Value::as_str)
                                .is_none_or(|s| s.trim() == "now");
                            if let (true, Some(t), Value::Object(m)) = (now, enqueued, &mut params)
                            {
                                m.insert("slot".into(), Value::String(iso(t)));
                            }
                            (None, None)
                        }
                        Ok(_) => (None, None),
                        Err(why) => {
                            let msg = format!(
                                "refused task {task} ('{}') spawned on queue '{}' by another \
                                 client: {why}",
                                c.name,
                                self.pg.queue_name(),
                            );
                            log::warn!("{msg}");
                            if let Err(e) = self.pg.q.fail_for_good(&c.lease, &msg) {
                                log::warn!("{e}");
                            }
                            continue;
                        }
                    }
                }
            };
            return Ok(Some(Job {
                lease: c.lease,
                kind: c.name,
                params,
                attempt: c.attempt,
                max_attempts: c.max_attempts,
                generation: 1,
                execution_id,
                job_id,
                timeout_s: c.timeout_s,
            }));
        }
    }

    fn upstream(&mut self, eid: i64, job: &str) -> Result<Upstream, PipelineError> {
        let shown = self.pg.shown.clone();
        let row = self
            .pg
            .client()
            .query_opt(
                "SELECT result FROM pipeline_jobs WHERE execution_id = $1 AND job_id = $2",
                &[&eid, &job],
            )
            .map_err(db(&shown, "read an upstream job"))?;
        Ok(match row {
            None => Upstream::Missing,
            Some(r) => Upstream::Outputs(
                r.get::<_, Option<String>>(0)
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or(Value::Null),
            ),
        })
    }

    fn set_log_path(&mut self, job: &Job, path: &str) -> Result<Held, PipelineError> {
        let TaskKey::Absurd(task) = job.lease.task else {
            return Err(PipelineError::Invalid("not an ABSURD task".into()));
        };
        let shown = self.pg.shown.clone();
        self.pg
            .client()
            .execute(
                "UPDATE pipeline_jobs SET log_path = $2 WHERE task_id = $1",
                &[&task, &path],
            )
            .map_err(db(&shown, "record a log path"))?;
        Ok(Held::Yes)
    }

    fn heartbeat(&mut self, job: &Job, extend: Duration) -> Result<Held, PipelineError> {
        held(self.pg.q.heartbeat(&job.lease, extend))
    }

    fn report(&mut self, job: &Job, v: &Verdict) -> Result<Held, PipelineError> {
        match v {
            Verdict::Complete(value)
                if job.execution_id.is_none() && job.kind == PIPELINE_RUN_TASK =>
            {
                self.run_admitted(job, value)
            }
            Verdict::Complete(value) => held(self.pg.q.complete(&job.lease, value)),
            Verdict::Fail { msg, timed_out } => held(self.pg.q.fail(&job.lease, msg, *timed_out)),
            Verdict::FailForGood(msg) => {
                let failure = match self.pg.q.fail(&job.lease, msg, false) {
                    Ok(f) => f,
                    Err(e) => return held::<()>(Err(e)),
                };
                // ABSURD would retry it while attempts remain: cancel the task, and keep the
                // job `failed` here (the reconciler keeps a contimg failure over ABSURD's cancel).
                if let Failure::Retrying { .. } = failure {
                    self.pg.q.cancel(job.lease.task, msg)?;
                }
                let TaskKey::Absurd(task) = job.lease.task else {
                    return Ok(Held::Yes);
                };
                let shown = self.pg.shown.clone();
                self.pg
                    .client()
                    .execute(
                        "UPDATE pipeline_jobs SET status = 'failed', error = $2 WHERE task_id = $1",
                        &[&task, msg],
                    )
                    .map_err(db(&shown, "record a failed job"))?;
                Ok(Held::Yes)
            }
            Verdict::Abandon => Ok(Held::Lost("abandoned".into())),
            Verdict::Release(_) => held(self.pg.q.release(&job.lease)),
        }
    }

    fn sync(&mut self, eid: i64) -> Result<ExecStatus, PipelineError> {
        self.pg.sync(eid)
    }

    fn sync_active(&mut self) -> Result<bool, PipelineError> {
        self.pg.sync_active()
    }

    fn next_wakeup(&mut self) -> Result<Option<DateTime<Utc>>, PipelineError> {
        Ok(None)
    }

    fn deliver_due(&mut self, notify: &crate::pipeline::notify::Delivery) {
        let Some(outbox) = &mut self.outbox else {
            return;
        };
        if let Err(e) = crate::pipeline::notify::deliver(outbox, notify, false) {
            log::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Backend, PgBackend};

    #[test]
    fn a_job_s_child_waits_out_a_short_outage() {
        let b = PgBackend {
            url: "postgres://u:pw@db/x".into(),
            schema: "s".into(),
            queue: "q".into(),
            accept_outside: vec![],
            run_pipelines: vec![],
        };
        let env = b.child_database().env;
        let wait = std::env::var(crate::pg::CONNECT_WAIT_ENV)
            .unwrap_or_else(|_| crate::pg::CHILD_CONNECT_WAIT_S.to_string());
        assert_eq!(env[crate::pg::CONNECT_WAIT_ENV], wait);
        assert_eq!(env["CONTIMG_DB"], "postgres://u:pw@db/x");
    }
}
