//! Executions: creating one (with its tasks) for a (pipeline, slot), mirroring task state into the seed
//! tables, and describing an execution as a `contimg.execution/1` manifest.
//!
//! Invariants: an execution and all its tasks and `pipeline_jobs` rows are written in one transaction;
//! there is at most one execution per (pipeline, slot) — a second request finds the first; the
//! `pipeline_jobs` rows and `pipeline_executions.status` are derived from the tasks by [`sync`], which
//! every writer calls after changing tasks (and readers call before reading).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;
use serde_json::{Map, Value};

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use super::PipelineError;
use super::def::NamedPipeline;
use super::jobs::{JobKind, OUT_DIR};
use super::procs::holder_dead;
use super::subst::{self, Resolution, SubstError};
use super::validate::ScheduleError;
use crate::queue::{NewTask, Queue, RetryStrategy, TaskId, TaskInfo, TaskState};
use crate::time::iso;

/// The state of an execution, derived from its tasks by [`sync`]: `running` while any task can still
/// make progress, else `failed` when one failed, else `cancelled` when one was cancelled, else
/// `completed`. Stored as its lowercase name in `pipeline_executions.status`; this is the one
/// conversion to and from the database and the manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
    /// Never stored: how a `running` execution is shown when everyone working it is provably dead
    /// (see [`shown`]).
    Interrupted,
}

impl ExecStatus {
    /// The states stored in the database.
    pub const ALL: [ExecStatus; 4] = [
        ExecStatus::Running,
        ExecStatus::Completed,
        ExecStatus::Failed,
        ExecStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExecStatus::Running => "running",
            ExecStatus::Completed => "completed",
            ExecStatus::Failed => "failed",
            ExecStatus::Cancelled => "cancelled",
            ExecStatus::Interrupted => "interrupted",
        }
    }

    /// True once no task of the execution can make progress.
    pub fn is_finished(self) -> bool {
        !matches!(self, ExecStatus::Running | ExecStatus::Interrupted)
    }

    /// The status of an execution whose tasks are in these states (on either backend).
    pub(crate) fn derive(count: impl Fn(TaskState) -> i64) -> ExecStatus {
        if count(TaskState::Pending) + count(TaskState::Running) + count(TaskState::Sleeping) > 0 {
            ExecStatus::Running
        } else if count(TaskState::Failed) > 0 {
            ExecStatus::Failed
        } else if count(TaskState::Cancelled) > 0 {
            ExecStatus::Cancelled
        } else {
            ExecStatus::Completed
        }
    }
}

/// Whether a running task's worker is gone: its lease expired (it stopped heartbeating, on any
/// host) or it is provably dead (this host, process gone). Such a task is shown `interrupted`
/// until a worker takes it over.
pub fn interrupted(claimed_by: Option<&str>, lease_expires_at: Option<&str>, now: &str) -> bool {
    lease_expires_at.is_some_and(|t| t <= now) || claimed_by.is_some_and(holder_dead)
}

/// A running job whose worker is gone, as `status` shows it.
pub const INTERRUPTED: &str = "interrupted";

/// How a stored status is shown: a running execution that nobody alive works is `interrupted`.
///
/// Nobody works it when a task of it is held by a worker that is gone ([`interrupted`]), or when
/// its runner is provably dead and no task of it is running. A rerun of the slot, or any
/// `contimg worker`, resumes it.
fn shown(
    conn: &Connection,
    eid: i64,
    stored: ExecStatus,
    now: DateTime<Utc>,
) -> Result<ExecStatus, rusqlite::Error> {
    if stored != ExecStatus::Running {
        return Ok(stored);
    }
    let holders: Vec<(String, Option<String>)> = conn
        .prepare_cached(
            "SELECT claimed_by, lease_expires_at FROM tasks
             WHERE execution_id = ?1 AND state = 'running' AND claimed_by IS NOT NULL",
        )?
        .query_map([eid], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let now_s = crate::queue::fmt_ts(now);
    let dead_task = holders
        .iter()
        .any(|(h, exp)| interrupted(Some(h), exp.as_deref(), &now_s));
    let dead_runner = holders.is_empty()
        && conn
            .query_row(
                "SELECT host || ':' || pid FROM execution_runners WHERE execution_id = ?1",
                [eid],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .is_some_and(|h| holder_dead(&h));
    Ok(if dead_task || dead_runner {
        ExecStatus::Interrupted
    } else {
        stored
    })
}

impl std::fmt::Display for ExecStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for ExecStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for ExecStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        ExecStatus::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| FromSqlError::Other(format!("unknown execution status '{s}'").into()))
    }
}

/// The time an execution is for, and the window it covers: [start, end) with end = the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub time: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Slot {
    /// The slot at `time` for a pipeline with an optional window length ("24h").
    pub fn new(time: DateTime<Utc>, window: Option<&str>) -> Result<Slot, PipelineError> {
        let time = chrono::DurationRound::duration_trunc(time, Duration::seconds(1))
            .map_err(|e| PipelineError::Invalid(format!("slot time {time}: {e}")))?;
        let len = window
            .map(crate::time::parse_duration)
            .transpose()
            .map_err(|e| PipelineError::Invalid(format!("window: {e}")))?
            .unwrap_or_default();
        Ok(Slot {
            time,
            start: time - crate::time::chrono_duration(len),
            end: time,
        })
    }

    /// A `${slot.KEY}` variable ([`super::validate::SLOT_KEYS`]): `start` and `end` of the
    /// window (ISO-8601 UTC), `date` of the slot (YYYY-MM-DD) and `night`, the date of the
    /// window's start: the night the window holds (a 24 h window ending at 03:00 UTC on
    /// 1999-06-01 holds the night of 1999-05-31, whose `date` is 1999-06-01).
    fn var(&self, key: &str) -> Option<String> {
        match key {
            "start" => Some(iso(self.start)),
            "end" => Some(iso(self.end)),
            "date" => Some(crate::time::date(self.time)),
            "night" => Some(crate::time::date(self.start)),
            _ => None,
        }
    }
}

/// The latest time ≤ `now` a cron schedule fires (for `--slot scheduled`).
pub fn scheduled_slot(schedule: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
    let cron = super::validate::parse_schedule(schedule)?;
    cron.find_previous_occurrence(&now, true)
        .map_err(|source| ScheduleError::NoPrevious {
            expr: schedule.to_string(),
            now,
            source,
        })
}

/// Resolves `--param k=v` values against the pipeline's declared parameters.
pub fn resolve_params(
    p: &NamedPipeline,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Option<String>>, PipelineError> {
    for k in given.keys() {
        if !p.def.params.contains_key(k) {
            let known: Vec<&str> = p.def.params.keys().map(String::as_str).collect();
            return Err(PipelineError::Invalid(format!(
                "pipeline '{}' has no parameter '{k}'; it takes: {}",
                p.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    let mut out = BTreeMap::new();
    for (k, spec) in &p.def.params {
        let v = given.get(k).cloned().or_else(|| spec.default.clone());
        if v.is_none() && spec.required {
            return Err(PipelineError::Invalid(format!(
                "pipeline '{}' needs --param {k}=…{}",
                p.name,
                spec.description
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )));
        }
        out.insert(k.clone(), v);
    }
    Ok(out)
}

/// The job parameters with slot and run parameters substituted (upstream references kept).
pub fn static_params(
    job_params: &Map<String, Value>,
    slot: &Slot,
    params: &BTreeMap<String, Option<String>>,
) -> Result<Map<String, Value>, SubstError> {
    subst::substitute(job_params, &mut |r| match r.ns.as_str() {
        "slot" => match slot.var(&r.path[0]) {
            Some(v) => Resolution::Value(Value::String(v)),
            None => Resolution::Error(format!(
                "{r}: the slot has only {}",
                super::validate::SLOT_KEYS.join(", ")
            )),
        },
        "param" => match params.get(&r.path[0]) {
            Some(Some(v)) => Resolution::Value(Value::String(v.clone())),
            Some(None) => Resolution::Omit,
            None => Resolution::Error(format!("{r}: no such parameter")),
        },
        _ => Resolution::Keep,
    })
}

/// The slot of the latest completed execution of `pipeline`.
pub fn last_success(
    conn: &Connection,
    pipeline: &str,
) -> Result<Option<DateTime<Utc>>, rusqlite::Error> {
    let last: Option<String> = conn.query_row(
        "SELECT max(slot) FROM pipeline_executions WHERE pipeline_name = ?1 AND status = ?2",
        params![pipeline, ExecStatus::Completed],
        |r| r.get(0),
    )?;
    Ok(last.as_deref().and_then(crate::time::parse_rfc3339))
}

/// What [`create`] found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    pub execution_id: i64,
    /// True when the execution for this (pipeline, slot) already existed; nothing was written.
    pub existing: bool,
}

/// A caller's idempotency key for an execution (`serve`'s `Idempotency-Key` header) and the
/// request it came with, recorded with the execution: the same key finds the same execution
/// however long after (a restart of the server included); the key with another request is
/// [`PipelineError::KeyReused`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub key: String,
    /// The request as the caller sent it, in a canonical form (compared as text).
    pub request: String,
}

/// The execution recorded with `key`, if any: its id, or [`PipelineError::KeyReused`] when it was
/// made for another request. One query, in the creating transaction, on either backend.
pub(crate) fn keyed(
    key: &RequestKey,
    found: Option<(i64, Option<String>)>,
) -> Result<Option<Created>, PipelineError> {
    match found {
        None => Ok(None),
        Some((id, request)) if request.as_deref() == Some(key.request.as_str()) => {
            Ok(Some(Created {
                execution_id: id,
                existing: true,
            }))
        }
        Some((id, _)) => Err(PipelineError::KeyReused(format!(
            "idempotency key {:?} was used for another request (execution {id}); \
             use a new key for a new request",
            key.key
        ))),
    }
}

/// Whether [`create`] let the execution in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    Yes(Created),
    /// `max_active` executions of the pipeline (these) are being run for other slots; nothing
    /// was written.
    Busy(Vec<i64>),
}

/// Creates the execution of `p` for `slot` with its tasks and `pipeline_jobs` rows in one transaction,
/// or returns the one that exists for (pipeline, slot). The definition must have passed validation.
///
/// A new execution is admitted only while fewer than the pipeline's `max_active` executions for
/// other slots have a live runner, and with `runner_lease` this process becomes its runner — the
/// count, the new rows and the runner row are one transaction, so two processes starting two slots
/// at the same instant cannot both be admitted past `max_active`.
pub fn create(
    queue: &Queue,
    p: &NamedPipeline,
    slot: &Slot,
    params: &BTreeMap<String, Option<String>>,
    products: &Path,
    runner_lease: Option<std::time::Duration>,
    key: Option<&RequestKey>,
) -> Result<Admitted, PipelineError> {
    let slot_s = iso(slot.time);
    let params_json =
        serde_json::to_string(params).map_err(|e| PipelineError::Invalid(e.to_string()))?;
    // Work out every task before writing anything.
    let jobs = planned_jobs(p, slot, params, products)?;
    let def_json =
        serde_json::to_string(&p.def).map_err(|e| PipelineError::Invalid(e.to_string()))?;
    let mut existing_params: Option<(i64, String)> = None;
    let created = queue.spawn_batch(|b| {
        let conn = b.connection();
        if let Some(k) = key {
            let found = conn
                .query_row(
                    "SELECT id, request FROM pipeline_executions WHERE request_key = ?1",
                    params![k.key],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)),
                )
                .optional()?;
            // The key's execution (or the refusal), whatever the slot says: nothing written.
            match keyed(k, found) {
                Ok(Some(c)) => return Ok(Ok(Admitted::Yes(c))),
                Ok(None) => {}
                Err(e) => return Ok(Err(e)),
            }
        }
        if let Some(row) = conn
            .query_row(
                "SELECT id, params FROM pipeline_executions WHERE pipeline_name = ?1 AND slot = ?2",
                params![p.name, slot_s],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?
        {
            existing_params = Some(row.clone());
            return Ok(Ok(Admitted::Yes(Created {
                execution_id: row.0,
                existing: true,
            })));
        }
        let active = super::runner::active(conn, &p.name, &slot_s)?;
        if active.len() as u32 >= p.def.max_active {
            return Ok(Ok(Admitted::Busy(active)));
        }
        let now = iso(b.now());
        conn.execute(
            "INSERT INTO pipeline_executions (pipeline_name, status, started_at, slot, params, definition, source, request_key, request)
             VALUES (?1, ?7, ?2, ?3, ?4, ?5, ?6, ?8, ?9)",
            params![
                p.name,
                now,
                slot_s,
                params_json,
                def_json,
                p.source.0,
                ExecStatus::Running,
                key.map(|k| &k.key),
                key.map(|k| &k.request)
            ],
        )?;
        let eid = conn.last_insert_rowid();
        if let Some(lease) = runner_lease {
            super::runner::take(conn, eid, lease)?;
        }
        let mut ids: BTreeMap<&str, TaskId> = BTreeMap::new();
        for (j, sp) in &jobs {
            let t = job_task(p, j, sp, eid)?
                .depends_on(j.depends_on.iter().filter_map(|d| ids.get(d.as_str()).copied()));
            let id = b.spawn(&t)?;
            ids.insert(j.id.as_str(), id);
            b.connection().execute(
                "INSERT INTO pipeline_jobs (execution_id, job_id, job_type, status, task_id)
                 VALUES (?1, ?2, ?3, 'pending', ?4)",
                params![eid, j.id, j.job_type, id.0],
            )?;
        }
        Ok(Ok(Admitted::Yes(Created {
            execution_id: eid,
            existing: false,
        })))
    })??;
    if let Some((id, old)) = existing_params
        && old != params_json
    {
        return Err(PipelineError::Conflict(format!(
            "execution {id} of pipeline '{}' for slot {slot_s} exists with parameters {old}, not {params_json}; \
             it is reported, not changed: use another --slot for different parameters",
            p.name
        )));
    }
    Ok(created)
}

/// The task of job `j` of execution `eid` (static parameters `sp`), on either backend: the job's
/// retry rule and attempts (the pipeline's unless the job sets its own), priority and timeout.
pub fn job_task(
    p: &NamedPipeline,
    j: &crate::pipeline::JobDef,
    sp: &Map<String, Value>,
    eid: i64,
) -> Result<NewTask, crate::queue::QueueError> {
    let retry = j.retry.unwrap_or(p.def.retry);
    let max_retries = j.max_retries.unwrap_or(p.def.max_retries);
    // `none` means no retries (validation refuses none with max_retries > 0).
    let attempts = if matches!(retry, RetryStrategy::None) {
        1
    } else {
        max_retries + 1
    };
    let mut t = NewTask::new(j.job_type.clone(), Value::Object(sp.clone()))
        .job_id(j.id.clone())
        .execution(eid)
        .pipeline(p.name.clone())
        .priority(j.priority)
        .max_attempts(attempts)
        .retry(retry);
    if let Some(to) = &j.timeout {
        let timeout = crate::time::parse_duration(to)
            .map_err(|e| crate::queue::QueueError::InvalidTask(e.to_string()))?;
        t = t.timeout_s(timeout.as_secs_f64());
    }
    Ok(t)
}

/// A job of a pipeline and its static parameters for one slot.
pub type PlannedJob<'p> = (&'p crate::pipeline::JobDef, Map<String, Value>);

/// The jobs of `p` in dependency order with their static parameters for `slot`.
///
/// `products` is where the execution's products go: the products (mosaics) directory of the
/// workspace that starts it, absolute. It is recorded with the execution as every `mosaic_build`
/// job's `out_dir` (unless the definition sets one), so the mosaic lands there whichever worker
/// builds it, not in that worker's own workspace (a worker that cannot reach it refuses the job).
pub fn planned_jobs<'p>(
    p: &'p NamedPipeline,
    slot: &Slot,
    params: &BTreeMap<String, Option<String>>,
    products: &Path,
) -> Result<Vec<PlannedJob<'p>>, PipelineError> {
    let products = crate::fsutil::absolute(products);
    let mut jobs = Vec::new();
    for i in topo_order(p)? {
        let j = &p.def.jobs[i];
        let mut sp = static_params(&j.params, slot, params).map_err(|e| {
            PipelineError::Invalid(format!("pipeline '{}', job '{}': {e}", p.name, j.id))
        })?;
        if j.job_type == JobKind::MosaicBuild.as_str() && !sp.contains_key(OUT_DIR) {
            sp.insert(
                OUT_DIR.to_string(),
                Value::String(products.display().to_string()),
            );
        }
        jobs.push((j, sp));
    }
    Ok(jobs)
}

/// Indices of the jobs in dependency order (definition order among independent jobs).
fn topo_order(p: &NamedPipeline) -> Result<Vec<usize>, PipelineError> {
    let n = p.def.jobs.len();
    let mut done = vec![false; n];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let before = out.len();
        for (i, j) in p.def.jobs.iter().enumerate() {
            if done[i] {
                continue;
            }
            let ready = j.depends_on.iter().all(|d| {
                p.def
                    .jobs
                    .iter()
                    .position(|x| &x.id == d)
                    .is_some_and(|k| done[k])
            });
            if ready {
                done[i] = true;
                out.push(i);
            }
        }
        if out.len() == before {
            return Err(PipelineError::Invalid(format!(
                "pipeline '{}' has a dependency cycle or an unknown dependency; run `contimg pipelines check`",
                p.name
            )));
        }
    }
    Ok(out)
}

/// Mirrors the tasks of execution `eid` into `pipeline_jobs` and derives the execution's status.
/// Returns the status.
///
/// When the execution turns `failed`, its notifications are written to the outbox in this same
/// transaction (see [`crate::pipeline::notify::enqueue_failure`]).
pub fn sync(conn: &Connection, eid: i64) -> Result<ExecStatus, PipelineError> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let before: Option<(ExecStatus, Option<String>)> = tx
        .query_row(
            "SELECT status, definition FROM pipeline_executions WHERE id = ?1",
            [eid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    tx.execute(
        "UPDATE pipeline_jobs SET status = t.state, attempts = t.attempts,
             started_at = strftime('%Y-%m-%dT%H:%M:%SZ', t.started_at),
             completed_at = strftime('%Y-%m-%dT%H:%M:%SZ', t.finished_at), result = t.result, error = t.error
         FROM tasks t WHERE t.id = pipeline_jobs.task_id AND pipeline_jobs.execution_id = ?1",
        [eid],
    )?;
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    {
        let mut st = tx.prepare_cached(
            "SELECT state, count(*) FROM tasks WHERE execution_id = ?1 GROUP BY state",
        )?;
        for row in st.query_map([eid], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (s, n) = row?;
            counts.insert(s, n);
        }
    }
    let status = ExecStatus::derive(|s| counts.get(s.as_str()).copied().unwrap_or(0));
    let error: Option<String> = if matches!(status, ExecStatus::Failed | ExecStatus::Cancelled) {
        tx.query_row(
            "SELECT job_id, state, error FROM tasks WHERE execution_id = ?1 AND state IN ('failed', 'cancelled')
             ORDER BY state = 'cancelled', id LIMIT 1",
            [eid],
            |r| {
                Ok(format!(
                    "job '{}' {}: {}",
                    r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?.unwrap_or_default()
                ))
            },
        )
        .optional()?
    } else {
        None
    };
    let finished: Option<String> = if status == ExecStatus::Running {
        None
    } else {
        tx.query_row(
            "SELECT max(finished_at) FROM tasks WHERE execution_id = ?1",
            [eid],
            |r| r.get(0),
        )?
    };
    tx.execute(
        "UPDATE pipeline_executions SET status = ?2, error = ?3,
             completed_at = CASE WHEN ?5 THEN NULL ELSE COALESCE(?4, completed_at) END
         WHERE id = ?1",
        params![
            eid,
            status,
            error,
            finished.map(|f| normalise_ts(&f)),
            !status.is_finished()
        ],
    )?;
    if status == ExecStatus::Failed
        && let Some((old, def)) = &before
        && *old != ExecStatus::Failed
    {
        let (round, failed) = failure_facts(&tx, eid)?;
        crate::pipeline::notify::enqueue_failure(
            &mut crate::store::sql::SqliteRef(&tx),
            eid,
            def.as_deref(),
            round,
            &failed,
        )?;
    }
    tx.commit()?;
    Ok(status)
}

/// What a failure notification of execution `eid` tells: its failure round (the highest task
/// generation, so a retry that fails again notifies again) and its failed jobs.
fn failure_facts(
    conn: &Connection,
    eid: i64,
) -> Result<(i64, Vec<crate::pipeline::notify::FailedJob>), rusqlite::Error> {
    let round: i64 = conn.query_row(
        "SELECT coalesce(max(generation), 1) FROM tasks WHERE execution_id = ?1",
        [eid],
        |r| r.get(0),
    )?;
    let mut st = conn.prepare(
        "SELECT coalesce(t.job_id, 'task' || t.id), t.error,
                (SELECT a.log_path FROM task_attempts a WHERE a.task_id = t.id ORDER BY a.id DESC LIMIT 1)
         FROM tasks t WHERE t.execution_id = ?1 AND t.state = 'failed' ORDER BY t.id",
    )?;
    let failed = st
        .query_map([eid], |r| {
            Ok(crate::pipeline::notify::FailedJob {
                job: r.get(0)?,
                error: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                log: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok((round, failed))
}

/// Syncs every execution not yet finished (after a worker may have changed tasks of several).
pub fn sync_active(conn: &Connection) -> Result<(), PipelineError> {
    let ids: Vec<i64> = conn
        .prepare_cached("SELECT id FROM pipeline_executions WHERE status = ?1")?
        .query_map([ExecStatus::Running], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in ids {
        sync(conn, id)?;
    }
    Ok(())
}

fn normalise_ts(s: &str) -> String {
    crate::time::parse_rfc3339(s).map_or_else(|| s.to_string(), iso)
}

/// One job in an execution manifest.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub id: String,
    #[serde(rename = "type")]
    pub job_type: String,
    /// The task: an integer on SQLite, an ABSURD task id (UUID) on PostgreSQL, null while an ABSURD
    /// job waits for its upstream jobs.
    pub task_id: Value,
    /// The task's state; on PostgreSQL also `waiting` (not yet spawned) and `skipped` (an upstream
    /// job failed or was cancelled).
    pub state: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub priority: i64,
    pub depends_on: Vec<String>,
    pub params: Value,
    /// The job's outputs (its child's JSON stdout) once completed.
    pub outputs: Option<Value>,
    pub error: Option<String>,
    pub next_retry_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_s: Option<f64>,
    /// The log of the latest attempt.
    pub log_path: Option<String>,
    /// Outcome of each attempt, oldest first.
    pub attempt_outcomes: Vec<String>,
}

/// `contimg.execution/1`.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionManifest {
    pub schema: &'static str,
    pub database: String,
    pub execution_id: i64,
    pub pipeline: String,
    pub slot: Option<String>,
    pub params: Value,
    pub status: ExecStatus,
    pub error: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    /// True when `run` found this execution already there (resumed or reported, not created).
    pub existing: bool,
    /// The QA verdict of its `mosaic_qa` job once that job has one (PASS, WARN or FAIL, see
    /// [`qa_verdict`]), so a WARN or a FAIL is seen at a glance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qa_verdict: Option<String>,
    pub jobs: Vec<JobReport>,
}

/// How the error of a `mosaic_qa` job whose QA said FAIL begins: a FAIL is final, so the
/// worker fails the job for good with this error (`worker::judge_failure`) and no outputs.
pub const QA_FAIL_ERROR: &str = "QA verdict FAIL";

/// The QA verdict of a `mosaic_qa` job: the `verdict` of its outputs (its `contimg.qa/1`
/// manifest) once it completed (PASS or WARN), or FAIL when it failed for that reason
/// ([`QA_FAIL_ERROR`]).
pub fn qa_verdict(job_type: &str, outputs: Option<&Value>, error: Option<&str>) -> Option<String> {
    if job_type.parse() != Ok(super::jobs::JobKind::MosaicQa) {
        return None;
    }
    outputs
        .and_then(|o| o.get("verdict")?.as_str().map(str::to_string))
        .or_else(|| {
            error
                .is_some_and(|e| e.starts_with(QA_FAIL_ERROR))
                .then(|| "FAIL".to_string())
        })
}

/// The QA verdict among an execution's jobs.
pub fn qa_verdict_of_jobs(jobs: &[JobReport]) -> Option<String> {
    jobs.iter()
        .find_map(|j| qa_verdict(&j.job_type, j.outputs.as_ref(), j.error.as_deref()))
}

/// The manifest of execution `eid` (synced first).
pub fn manifest(
    queue: &Queue,
    database: &str,
    eid: i64,
) -> Result<ExecutionManifest, PipelineError> {
    sync(queue.connection(), eid)?;
    report(queue, database, eid)
}

/// The manifest of execution `eid` as stored (reads only: works on a read-only database).
pub fn report(queue: &Queue, database: &str, eid: i64) -> Result<ExecutionManifest, PipelineError> {
    let conn = queue.connection();
    type Row = (
        String,
        Option<String>,
        String,
        ExecStatus,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = conn
        .query_row(
            "SELECT pipeline_name, slot, params, status, error, started_at, completed_at
             FROM pipeline_executions WHERE id = ?1",
            [eid],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .optional()?;
    let (pipeline, slot, params_s, status, error, started_at, completed_at) =
        row.ok_or(PipelineError::NoSuchExecution(eid))?;
    let status = shown(conn, eid, status, queue.now())?;
    let tasks = queue.tasks_of_execution(eid)?;
    let by_id: BTreeMap<TaskId, String> = tasks
        .iter()
        .map(|t| (t.id, t.job_id.clone().unwrap_or_else(|| t.id.to_string())))
        .collect();
    let now = queue.now();
    let mut jobs = Vec::new();
    for t in &tasks {
        jobs.push(job_report(queue, t, &by_id, now)?);
    }
    Ok(ExecutionManifest {
        schema: crate::manifest::EXECUTION_SCHEMA,
        database: database.to_string(),
        execution_id: eid,
        pipeline,
        slot,
        params: serde_json::from_str(&params_s).unwrap_or(Value::Null),
        status,
        error,
        started_at,
        completed_at,
        existing: false,
        qa_verdict: qa_verdict_of_jobs(&jobs),
        jobs,
    })
}

fn job_report(
    queue: &Queue,
    t: &TaskInfo,
    names: &BTreeMap<TaskId, String>,
    now: DateTime<Utc>,
) -> Result<JobReport, PipelineError> {
    let attempts = queue.attempts(t.id)?;
    let current: Vec<_> = attempts
        .iter()
        .filter(|a| a.generation == t.generation)
        .collect();
    let gone = t.state == TaskState::Running
        && (t.lease_expires_at.is_some_and(|e| e <= now)
            || t.claimed_by.as_deref().is_some_and(holder_dead));
    Ok(JobReport {
        id: t.job_id.clone().unwrap_or_else(|| t.id.to_string()),
        job_type: t.kind.clone(),
        task_id: Value::from(t.id.0),
        state: if gone {
            INTERRUPTED.to_string()
        } else {
            t.state.as_str().to_string()
        },
        attempts: t.attempts,
        max_attempts: t.max_attempts,
        priority: t.priority,
        depends_on: t
            .depends_on
            .iter()
            .map(|d| names.get(d).cloned().unwrap_or_else(|| d.to_string()))
            .collect(),
        params: t.params.clone(),
        outputs: t.result.clone(),
        error: t.error.clone(),
        next_retry_at: t.next_retry_at().map(iso),
        started_at: t.started_at.map(iso),
        finished_at: t.finished_at.map(iso),
        duration_s: t
            .duration(now)
            .map(|d| d.num_milliseconds() as f64 / 1000.0),
        log_path: attempts.iter().rev().find_map(|a| a.log_path.clone()),
        attempt_outcomes: current.iter().map(|a| a.outcome.to_string()).collect(),
    })
}

/// One line per execution, newest first, for `status` without an execution.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionSummary {
    pub execution_id: i64,
    pub pipeline: String,
    pub slot: Option<String>,
    pub status: ExecStatus,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub error: Option<String>,
    pub jobs: BTreeMap<String, String>,
    /// The QA verdict of its `mosaic_qa` job, once it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qa_verdict: Option<String>,
}

/// The latest `limit` executions, synced.
pub fn list(conn: &Connection, limit: usize) -> Result<Vec<ExecutionSummary>, PipelineError> {
    sync_active(conn)?;
    listing(conn, limit)
}

/// The latest `limit` executions as stored (reads only: works on a read-only database).
pub fn listing(conn: &Connection, limit: usize) -> Result<Vec<ExecutionSummary>, PipelineError> {
    let mut st = conn.prepare(
        "SELECT id, pipeline_name, slot, status, started_at, completed_at, error FROM pipeline_executions
         ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = st
        .query_map([limit as i64], |r| {
            Ok(ExecutionSummary {
                execution_id: r.get(0)?,
                pipeline: r.get(1)?,
                slot: r.get(2)?,
                status: r.get(3)?,
                started_at: r.get(4)?,
                completed_at: r.get(5)?,
                error: r.get(6)?,
                jobs: BTreeMap::new(),
                qa_verdict: None,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    let now = crate::time::now();
    let now_s = crate::queue::fmt_ts(now);
    for mut s in rows {
        s.status = shown(conn, s.execution_id, s.status, now)?;
        let mut q = conn.prepare_cached(
            "SELECT j.job_id, j.status, j.job_type, j.result, j.error, t.claimed_by,
                    t.lease_expires_at, t.state
             FROM pipeline_jobs j LEFT JOIN tasks t ON t.id = j.task_id
             WHERE j.execution_id = ?1 ORDER BY j.id",
        )?;
        for r in q.query_map([s.execution_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })? {
            let (j, st, kind, result, error, holder, expires, task_state) = r?;
            let st = if task_state.as_deref() == Some("running")
                && interrupted(holder.as_deref(), expires.as_deref(), &now_s)
            {
                INTERRUPTED.to_string()
            } else {
                st
            };
            let outputs = result.and_then(|t| serde_json::from_str::<Value>(&t).ok());
            s.qa_verdict = s
                .qa_verdict
                .or_else(|| qa_verdict(&kind, outputs.as_ref(), error.as_deref()));
            s.jobs.insert(j, st);
        }
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn the_nightly_plan_is_named_after_the_night_its_window_holds() {
        let (_, nightly) = crate::pipeline::def::builtin()
            .into_iter()
            .find(|(n, _)| n == "nightly_mosaic")
            .unwrap();
        let slot_time = Utc.with_ymd_and_hms(1999, 6, 1, 3, 0, 0).unwrap();
        let slot = Slot::new(slot_time, nightly.window.as_deref()).unwrap();
        assert_eq!(
            slot.start,
            Utc.with_ymd_and_hms(1999, 5, 31, 3, 0, 0).unwrap()
        );
        assert_eq!(slot.var("night").as_deref(), Some("1999-05-31"));
        assert_eq!(slot.var("date").as_deref(), Some("1999-06-01"));
        let plan = nightly.jobs.iter().find(|j| j.id == "plan").unwrap();
        let p = static_params(&plan.params, &slot, &BTreeMap::new()).unwrap();
        assert_eq!(p["name"], "nightly_1999-05-31");
        assert_eq!(p["start"], "1999-05-31T03:00:00Z");
        assert_eq!(p["end"], "1999-06-01T03:00:00Z");
        // Without a window the night is the slot's own date.
        let bare = Slot::new(slot_time, None).unwrap();
        assert_eq!(bare.var("night").as_deref(), Some("1999-06-01"));
        let e = static_params(
            json!({"x": "${slot.week}"}).as_object().unwrap(),
            &slot,
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(e.0.contains("start, end, date, night"), "{e}");
    }
}
