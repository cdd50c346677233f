//! [`Queue`]: every read and write of the queue tables.
//!
//! Each state change is one `BEGIN IMMEDIATE` transaction that reads the clock after taking the write lock,
//! so the times it stores are ordered like the transactions themselves. Changes on behalf of a worker are
//! checked against its [`Lease`]: the task must be `running`, held by that worker, and the lease's attempt
//! row must be the task's running attempt. Otherwise nothing changes and [`QueueError::LeaseLost`] is
//! returned. Completing an attempt that already completed the task is accepted and changes nothing.

use std::sync::Arc;

#[cfg(test)]
use chrono::SubsecRound;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::retry::seconds;
use super::task::{
    AttemptInfo, AttemptOutcome, ClaimedTask, FailOutcome, Lease, NewTask, StateCounts, TaskId,
    TaskInfo, TaskState,
};
use super::{Clock, QueueError, Result, RetryStrategy, UnknownName};

/// The durable queue over one SQLite connection. Use one `Queue` (one connection) per thread or process;
/// any number of them may work the same database file.
pub struct Queue {
    conn: Connection,
    clock: Arc<dyn Clock>,
}

/// Spawns tasks inside one transaction; see [`Queue::spawn_batch`].
pub struct SpawnBatch<'a> {
    conn: &'a Connection,
    now: DateTime<Utc>,
}

const TASK_COLS: &str = "id, execution_id, job_id, kind, params, priority, state, attempts, \
    max_attempts, generation, retry_kind, retry_base_s, retry_factor, retry_cap_s, timeout_s, \
    available_at, claimed_by, lease_expires_at, result, error, created_at, started_at, finished_at";

const ATTEMPT_COLS: &str =
    "id, task_id, generation, attempt, worker_id, started_at, ended_at, outcome, error, log_path";

/// The next claimable task: due, not running, every dependency completed; in claim order.
/// The WHERE clause repeats the partial index `tasks_ready`'s condition verbatim so SQLite can use it.
const CLAIM_SQL: &str = "SELECT t.id FROM tasks t
    WHERE t.state IN ('pending', 'sleeping') AND t.available_at <= ?1
      AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks p ON p.id = d.depends_on
                      WHERE d.task_id = t.id AND p.state <> 'completed')
    ORDER BY t.priority DESC, t.available_at, t.id
    LIMIT 1";

/// [`CLAIM_SQL`] limited to one execution's tasks (`run P` works only its own execution).
const CLAIM_IN_EXECUTION_SQL: &str = "SELECT t.id FROM tasks t
    WHERE t.state IN ('pending', 'sleeping') AND t.available_at <= ?1 AND t.execution_id = ?2
      AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks p ON p.id = d.depends_on
                      WHERE d.task_id = t.id AND p.state <> 'completed')
    ORDER BY t.priority DESC, t.available_at, t.id
    LIMIT 1";

/// A running task whose holder was found dead and whose attempt was ended by
/// [`Queue::reap_abandoned`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    pub task: TaskId,
    pub worker_id: String,
    /// The log of the abandoned attempt (its job's processes may still write to it).
    pub log_path: Option<String>,
}

impl Queue {
    /// A queue over `conn`, which must already have the queue migration applied (see
    /// `migrations/0002_queue.sql`, applied by the store) and should have a busy timeout so that concurrent workers wait
    /// for each other instead of failing with "database is locked".
    pub fn new(conn: Connection, clock: Arc<dyn Clock>) -> Self {
        Queue { conn, clock }
    }

    /// The underlying connection (for reads of other tables).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Gives the connection back.
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    /// The queue's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The current time by the queue's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn immediate<T>(&self, f: impl FnOnce(&Connection, DateTime<Utc>) -> Result<T>) -> Result<T> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let now = self.clock.now();
        let out = f(&tx, now)?;
        tx.commit()?;
        Ok(out)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Spawns one task.
    pub fn spawn(&self, task: &NewTask) -> Result<TaskId> {
        self.spawn_batch(|b| b.spawn(task))
    }

    /// Spawns several tasks in one transaction (all or none). Dependencies must exist already.
    pub fn spawn_many(&self, tasks: &[NewTask]) -> Result<Vec<TaskId>> {
        self.spawn_batch(|b| tasks.iter().map(|t| b.spawn(t)).collect())
    }

    /// Runs `f` in one write transaction in which it may spawn tasks that depend on each other (and use
    /// [`SpawnBatch::connection`] for related rows, e.g. the execution). If `f` fails nothing is kept.
    pub fn spawn_batch<T>(&self, f: impl FnOnce(&mut SpawnBatch<'_>) -> Result<T>) -> Result<T> {
        self.immediate(|conn, now| f(&mut SpawnBatch { conn, now }))
    }

    /// Claims the next task for `worker` under a lease of `lease` length, or `None` when nothing is due.
    ///
    /// In one transaction: first every running task whose lease has expired (`lease_expires_at <= now`) gets
    /// its attempt recorded as `lease_expired` and is retried or failed by the normal rule; then the next task
    /// in state pending/sleeping with `available_at <= now` and all dependencies completed, by priority desc,
    /// available_at, id, becomes running with `attempts + 1` and a new attempt row.
    pub fn claim(&self, worker: &str, lease: std::time::Duration) -> Result<Option<ClaimedTask>> {
        self.claim_in(worker, lease, None)
    }

    /// [`Queue::claim`], limited to the tasks of one execution when `execution_id` is given.
    pub fn claim_in(
        &self,
        worker: &str,
        lease: std::time::Duration,
        execution_id: Option<i64>,
    ) -> Result<Option<ClaimedTask>> {
        check_worker(worker)?;
        let lease_len = lease_duration(lease)?;
        self.immediate(|conn, now| {
            reap_expired(conn, now)?;
            let now_s = fmt_ts(now);
            let next = match execution_id {
                None => conn
                    .prepare_cached(CLAIM_SQL)?
                    .query_row([&now_s], |r| r.get::<_, i64>(0)),
                Some(e) => conn
                    .prepare_cached(CLAIM_IN_EXECUTION_SQL)?
                    .query_row(params![now_s, e], |r| r.get::<_, i64>(0)),
            };
            let Some(id) = next.optional()? else {
                return Ok(None);
            };
            let expires = now + lease_len;
            let claimed = conn
                .prepare_cached(
                    "UPDATE tasks SET state = 'running', attempts = attempts + 1, claimed_by = ?2,
                         lease_expires_at = ?3, started_at = COALESCE(started_at, ?4)
                     WHERE id = ?1
                     RETURNING attempts, generation, kind, job_id, execution_id, params, priority,
                               max_attempts, timeout_s",
                )?
                .query_row(params![id, worker, fmt_ts(expires), now_s], |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, u32>(7)?,
                        r.get::<_, Option<f64>>(8)?,
                    ))
                })?;
            let (attempt, generation, kind, job_id, execution_id, params_s, priority, max, timeout) =
                claimed;
            conn.prepare_cached(
                "INSERT INTO task_attempts (task_id, generation, attempt, worker_id, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, generation, attempt, worker, now_s])?;
            let attempt_id = conn.last_insert_rowid();
            let params_v = parse_json(TaskId(id), &params_s, "params")?;
            Ok(Some(ClaimedTask {
                lease: Lease {
                    task_id: TaskId(id),
                    attempt_id,
                    worker_id: worker.to_string(),
                },
                kind,
                job_id,
                execution_id,
                params: params_v,
                priority,
                attempt,
                max_attempts: max,
                generation,
                timeout_s: timeout,
                lease_expires_at: expires,
            }))
        })
    }

    /// Ends now the running attempts whose holder `is_dead` says is provably gone (e.g. a process
    /// on this host that no longer exists), without waiting for their leases to expire. Each counts
    /// as a `lease_expired` attempt; a task with attempts left is due again at once (the retry delay
    /// is for jobs that failed, and this one did not get to fail). Returns what was reaped.
    pub fn reap_abandoned(&self, is_dead: &dyn Fn(&str) -> bool) -> Result<Vec<Abandoned>> {
        let held: Vec<String> = self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT DISTINCT claimed_by FROM tasks WHERE state = 'running' AND claimed_by IS NOT NULL",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        })?;
        let dead: Vec<String> = held.into_iter().filter(|w| is_dead(w)).collect();
        if dead.is_empty() {
            return Ok(Vec::new());
        }
        self.immediate(|conn, now| {
            let mut out = Vec::new();
            for worker in &dead {
                let rows: Vec<(i64, i64, Option<String>)> = conn
                    .prepare_cached(
                        "SELECT t.id, a.id, a.log_path FROM tasks t
                           JOIN task_attempts a ON a.task_id = t.id AND a.outcome = 'running'
                         WHERE t.state = 'running' AND t.claimed_by = ?1",
                    )?
                    .query_map([worker], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                for (task, attempt, log_path) in rows {
                    let error = format!(
                        "worker '{worker}' died while it held the lease (its process is gone); \
                         reaped without waiting for the lease to expire"
                    );
                    let o = fail_attempt(
                        conn,
                        now,
                        TaskId(task),
                        attempt,
                        AttemptOutcome::LeaseExpired,
                        &error,
                        false,
                    )?;
                    if let FailOutcome::Retrying { .. } = o {
                        conn.prepare_cached("UPDATE tasks SET available_at = ?2 WHERE id = ?1")?
                            .execute(params![task, fmt_ts(now)])?;
                    }
                    out.push(Abandoned {
                        task: TaskId(task),
                        worker_id: worker.clone(),
                        log_path,
                    });
                }
            }
            Ok(out)
        })
    }

    /// Extends the lease to now + `lease` and returns the new expiry, if the worker still holds the task.
    /// A lease that has expired but was not yet reaped by a claim is still held and is renewed.
    pub fn heartbeat(&self, lease: &Lease, extend: std::time::Duration) -> Result<DateTime<Utc>> {
        let len = lease_duration(extend)?;
        self.immediate(|conn, now| {
            check_held(conn, lease)?;
            let expires = now + len;
            conn.prepare_cached("UPDATE tasks SET lease_expires_at = ?2 WHERE id = ?1")?
                .execute(params![lease.task_id.0, fmt_ts(expires)])?;
            Ok(expires)
        })
    }

    /// Records where this attempt's log is written (shown by status).
    pub fn set_log_path(&self, lease: &Lease, path: &str) -> Result<()> {
        self.immediate(|conn, _| {
            check_held(conn, lease)?;
            conn.prepare_cached("UPDATE task_attempts SET log_path = ?2 WHERE id = ?1")?
                .execute(params![lease.attempt_id, path])?;
            Ok(())
        })
    }

    /// Completes the task with `result`. Completing again with the same lease is accepted and changes nothing;
    /// a lease that is no longer the task's running attempt is refused with [`QueueError::LeaseLost`].
    pub fn complete(&self, lease: &Lease, result: &serde_json::Value) -> Result<()> {
        let result_s = result.to_string();
        self.immediate(|conn, now| {
            let st = lease_status(conn, lease)?;
            if !st.holds(lease) {
                if st.state == TaskState::Completed
                    && st.outcome == Some(AttemptOutcome::Completed)
                    && st.attempt_worker.as_deref() == Some(lease.worker_id.as_str())
                {
                    return Ok(());
                }
                return Err(st.lost(lease));
            }
            let now_s = fmt_ts(now);
            conn.prepare_cached(
                "UPDATE task_attempts SET outcome = 'completed', ended_at = ?2, error = NULL WHERE id = ?1",
            )?
            .execute(params![lease.attempt_id, now_s])?;
            conn.prepare_cached(
                "UPDATE tasks SET state = 'completed', result = ?2, error = NULL, finished_at = ?3,
                     lease_expires_at = NULL
                 WHERE id = ?1",
            )?
            .execute(params![lease.task_id.0, result_s, now_s])?;
            Ok(())
        })
    }

    /// Records a failed attempt (`timed_out` when the worker killed it for running over its timeout). While
    /// attempts remain the task sleeps until now + the retry delay; otherwise it fails for good and its
    /// dependents, transitively, are cancelled.
    pub fn fail(&self, lease: &Lease, error: &str, timed_out: bool) -> Result<FailOutcome> {
        let outcome = if timed_out {
            AttemptOutcome::TimedOut
        } else {
            AttemptOutcome::Failed
        };
        self.immediate(|conn, now| {
            let st = lease_status(conn, lease)?;
            if !st.holds(lease) {
                return Err(st.lost(lease));
            }
            fail_attempt(
                conn,
                now,
                lease.task_id,
                lease.attempt_id,
                outcome,
                error,
                false,
            )
        })
    }

    /// Records a failed attempt that no retry can mend (bad input: the job's child exited 2): the task
    /// fails for good now, whatever attempts remain, and its dependents are cancelled as for any final
    /// failure.
    pub fn fail_permanently(&self, lease: &Lease, error: &str) -> Result<FailOutcome> {
        self.immediate(|conn, now| {
            let st = lease_status(conn, lease)?;
            if !st.holds(lease) {
                return Err(st.lost(lease));
            }
            fail_attempt(
                conn,
                now,
                lease.task_id,
                lease.attempt_id,
                AttemptOutcome::Failed,
                error,
                true,
            )
        })
    }

    /// Hands a running task back without a verdict (its worker is shutting down): the attempt is
    /// recorded as `lease_expired` with `reason` — an interruption, not a failure, so it does not
    /// count against the task's attempts — and the task is due again now for any worker. A lease
    /// that is no longer held is refused with [`QueueError::LeaseLost`].
    pub fn release(&self, lease: &Lease, reason: &str) -> Result<()> {
        self.immediate(|conn, now| {
            check_held(conn, lease)?;
            let now_s = fmt_ts(now);
            conn.prepare_cached(
                "UPDATE task_attempts SET outcome = 'lease_expired', ended_at = ?2, error = ?3
                 WHERE id = ?1",
            )?
            .execute(params![lease.attempt_id, now_s, reason])?;
            conn.prepare_cached(
                "UPDATE tasks SET state = 'pending', available_at = ?2,
                     claimed_by = NULL, lease_expires_at = NULL
                 WHERE id = ?1",
            )?
            .execute(params![lease.task_id.0, now_s])?;
            Ok(())
        })
    }

    /// Reaps expired leases now (claim does this too). Returns the tasks reaped and what became of each.
    pub fn reap_expired(&self) -> Result<Vec<(TaskId, FailOutcome)>> {
        self.immediate(reap_expired)
    }

    /// Cancels one task if it is pending, sleeping or running, and its dependents transitively. Returns every
    /// task cancelled (empty if the task was already terminal).
    pub fn cancel_task(&self, id: TaskId, reason: &str) -> Result<Vec<TaskId>> {
        self.immediate(|conn, now| {
            let state = task_state(conn, id)?;
            if state.is_terminal() {
                return Ok(Vec::new());
            }
            let mut out = cancel_ids(conn, now, &[id], reason)?;
            out.extend(cascade_cancel(
                conn,
                now,
                id,
                &format!("cancelled because task {id} was cancelled: {reason}"),
            )?);
            Ok(out)
        })
    }

    /// Cancels every pending, sleeping and running task of an execution (and any dependents they have in other
    /// executions). A running task's attempt is recorded as cancelled and its worker's next heartbeat,
    /// complete or fail is refused with [`QueueError::LeaseLost`], telling it to stop. Returns the tasks
    /// cancelled.
    pub fn cancel_execution(&self, execution_id: i64) -> Result<Vec<TaskId>> {
        self.immediate(|conn, now| {
            let ids: Vec<TaskId> = conn
                .prepare_cached(
                    "SELECT id FROM tasks WHERE execution_id = ?1
                       AND state IN ('pending', 'sleeping', 'running') ORDER BY id",
                )?
                .query_map([execution_id], |r| Ok(TaskId(r.get(0)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let reason = format!("execution {execution_id} was cancelled");
            let mut out = cancel_ids(conn, now, &ids, &reason)?;
            for id in &ids {
                out.extend(cascade_cancel(conn, now, *id, &reason)?);
            }
            Ok(out)
        })
    }

    /// Resets the failed and cancelled tasks of an execution to pending, due now, with a fresh generation of
    /// attempts; completed tasks (and their results) are kept. A reset task that still depends on a failed or
    /// cancelled task outside the execution is cancelled again at once. Returns the tasks reset.
    pub fn retry_failed(&self, execution_id: i64) -> Result<Vec<TaskId>> {
        self.immediate(|conn, now| reset_failed(conn, now, "execution_id", execution_id))
    }

    /// Resets one failed or cancelled task as [`Queue::retry_failed`] does for an execution's tasks.
    /// A task that is not failed or cancelled is refused with [`QueueError::InvalidTask`].
    pub fn retry_task(&self, id: TaskId) -> Result<()> {
        self.immediate(|conn, now| {
            let state = task_state(conn, id)?;
            if !matches!(state, TaskState::Failed | TaskState::Cancelled) {
                return Err(QueueError::InvalidTask(format!(
                    "task {id} is {state}; only a failed or cancelled task can be retried"
                )));
            }
            reset_failed(conn, now, "id", id.0).map(|_| ())
        })
    }

    /// One task, with its dependencies.
    pub fn task(&self, id: TaskId) -> Result<TaskInfo> {
        self.read(|conn| {
            let raw = conn
                .prepare_cached(&format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1"))?
                .query_row([id.0], RawTask::from_row)
                .optional()?
                .ok_or(QueueError::NoSuchTask(id))?;
            raw.into_info(conn)
        })
    }

    /// The task of an execution with this job id, if spawned.
    pub fn find_task(&self, execution_id: i64, job_id: &str) -> Result<Option<TaskInfo>> {
        self.read(|conn| {
            let raw = conn
                .prepare_cached(&format!(
                    "SELECT {TASK_COLS} FROM tasks WHERE execution_id = ?1 AND job_id = ?2"
                ))?
                .query_row(params![execution_id, job_id], RawTask::from_row)
                .optional()?;
            raw.map(|r| r.into_info(conn)).transpose()
        })
    }

    /// Every task of an execution, by id.
    pub fn tasks_of_execution(&self, execution_id: i64) -> Result<Vec<TaskInfo>> {
        self.read(|conn| {
            let raws: Vec<RawTask> = conn
                .prepare_cached(&format!(
                    "SELECT {TASK_COLS} FROM tasks WHERE execution_id = ?1 ORDER BY id"
                ))?
                .query_map([execution_id], RawTask::from_row)?
                .collect::<rusqlite::Result<_>>()?;
            raws.into_iter().map(|r| r.into_info(conn)).collect()
        })
    }

    /// Every attempt of a task (all generations), oldest first.
    pub fn attempts(&self, task: TaskId) -> Result<Vec<AttemptInfo>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {ATTEMPT_COLS} FROM task_attempts WHERE task_id = ?1 ORDER BY id"
            ))?
            .query_map([task.0], RawAttempt::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .map(RawAttempt::into_info)
            .collect()
        })
    }

    /// Tasks per state, of one execution or (with `None`) of the whole queue.
    pub fn counts(&self, execution_id: Option<i64>) -> Result<StateCounts> {
        self.read(|conn| {
            let mut out = StateCounts::default();
            let rows: Vec<(String, i64)> = conn
                .prepare_cached(
                    "SELECT state, count(*) FROM tasks
                     WHERE ?1 IS NULL OR execution_id = ?1 GROUP BY state",
                )?
                .query_map([execution_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (s, n) in rows {
                out.add(parse_state(TaskId(0), &s)?, n.max(0) as u64);
            }
            Ok(out)
        })
    }

    /// The earliest time at which a claim could find work without anything else changing: the soonest
    /// `available_at` of a waiting task whose dependencies are completed, or the soonest lease expiry.
    /// `None` when nothing is waiting or running. Workers sleep until then (or a poll interval).
    pub fn next_wakeup(&self) -> Result<Option<DateTime<Utc>>> {
        self.read(|conn| {
            let s: Option<String> = conn
                .prepare_cached(
                    "SELECT min(x) FROM (
                       SELECT min(t.available_at) AS x FROM tasks t
                        WHERE t.state IN ('pending', 'sleeping')
                          AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks p ON p.id = d.depends_on
                                          WHERE d.task_id = t.id AND p.state <> 'completed')
                       UNION ALL
                       SELECT min(lease_expires_at) FROM tasks WHERE state = 'running')",
                )?
                .query_row([], |r| r.get(0))?;
            s.map(|s| parse_ts(TaskId(0), &s)).transpose()
        })
    }
}

impl SpawnBatch<'_> {
    /// The transaction's connection, for writing related rows atomically with the tasks.
    pub fn connection(&self) -> &Connection {
        self.conn
    }

    /// The time of this transaction.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Spawns one task. A task with a failed or cancelled dependency is stored cancelled, never pending.
    pub fn spawn(&mut self, t: &NewTask) -> Result<TaskId> {
        validate(t)?;
        let conn = self.conn;
        let mut deps = t.depends_on.clone();
        deps.sort();
        deps.dedup();
        let mut blocked: Option<(TaskId, TaskState)> = None;
        for &d in &deps {
            let s = task_state(conn, d).map_err(|e| match e {
                QueueError::NoSuchTask(_) => QueueError::InvalidTask(format!(
                    "task '{}' depends on task {d}, which does not exist; spawn dependencies first",
                    t.kind
                )),
                e => e,
            })?;
            if matches!(s, TaskState::Failed | TaskState::Cancelled) && blocked.is_none() {
                blocked = Some((d, s));
            }
        }
        let (state, error, finished) = match blocked {
            Some((d, s)) => (
                TaskState::Cancelled,
                Some(format!("cancelled because dependency task {d} is {s}")),
                Some(fmt_ts(self.now)),
            ),
            None => (TaskState::Pending, None, None),
        };
        let (rk, base, factor, cap) = retry_columns(&t.retry);
        let now_s = fmt_ts(self.now);
        let avail = t.available_at.map_or_else(|| now_s.clone(), fmt_ts);
        conn.prepare_cached(
            "INSERT INTO tasks (execution_id, job_id, kind, params, priority, state, max_attempts,
                 retry_kind, retry_base_s, retry_factor, retry_cap_s, timeout_s, available_at, error,
                 created_at, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?
        .execute(params![
            t.execution_id,
            t.job_id,
            t.kind,
            t.params.to_string(),
            t.priority,
            state.as_str(),
            t.max_attempts,
            rk,
            base,
            factor,
            cap,
            t.timeout_s,
            avail,
            error,
            now_s,
            finished,
        ])
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                QueueError::InvalidTask(format!(
                    "execution {:?} already has a task with job id {:?}; job ids must be unique \
                     within an execution",
                    t.execution_id, t.job_id
                ))
            }
            e => QueueError::Db(e),
        })?;
        let id = conn.last_insert_rowid();
        let mut ins =
            conn.prepare_cached("INSERT INTO task_deps (task_id, depends_on) VALUES (?1, ?2)")?;
        for d in deps {
            ins.execute(params![id, d.0])?;
        }
        Ok(TaskId(id))
    }
}

fn validate(t: &NewTask) -> Result<()> {
    if t.kind.trim().is_empty() {
        return Err(QueueError::InvalidTask(
            "a task needs a kind (its job type), got an empty string".into(),
        ));
    }
    if t.max_attempts == 0 {
        return Err(QueueError::InvalidTask(format!(
            "task '{}' has max_attempts = 0; it needs at least 1 (max_retries = n gives n + 1 attempts)",
            t.kind
        )));
    }
    t.retry.validate()?;
    if let Some(s) = t.timeout_s
        && !(s.is_finite() && s > 0.0)
    {
        return Err(QueueError::InvalidTask(format!(
            "task '{}' has timeout {s} s; a timeout must be a positive number of seconds",
            t.kind
        )));
    }
    if let Some(a) = t.available_at {
        check_year(a)?;
    }
    Ok(())
}

fn check_year(t: DateTime<Utc>) -> Result<()> {
    use chrono::Datelike;
    if (1..=9999).contains(&t.year()) {
        Ok(())
    } else {
        Err(QueueError::InvalidTask(format!(
            "time {t} is outside the years 1–9999 the queue can store"
        )))
    }
}

fn check_worker(worker: &str) -> Result<()> {
    if worker.trim().is_empty() {
        return Err(QueueError::InvalidTask(
            "a worker id must not be empty (use e.g. host:pid)".into(),
        ));
    }
    Ok(())
}

fn lease_duration(d: std::time::Duration) -> Result<chrono::Duration> {
    if d.is_zero() || d.as_secs_f64() > super::MAX_DELAY_S {
        return Err(QueueError::InvalidTask(format!(
            "a lease of {d:?} is not allowed; give a positive duration of at most ten years"
        )));
    }
    Ok(seconds(d.as_secs_f64()))
}

fn retry_columns(r: &RetryStrategy) -> (&'static str, f64, f64, Option<f64>) {
    match *r {
        RetryStrategy::None => ("none", 0.0, 1.0, None),
        RetryStrategy::Fixed { delay_s } => ("fixed", delay_s, 1.0, None),
        RetryStrategy::Exponential {
            base_s,
            factor,
            cap_s,
        } => ("exponential", base_s, factor, cap_s),
    }
}

fn retry_from_columns(
    task: TaskId,
    kind: &str,
    base: f64,
    factor: f64,
    cap: Option<f64>,
) -> Result<RetryStrategy> {
    match kind {
        "none" => Ok(RetryStrategy::None),
        "fixed" => Ok(RetryStrategy::Fixed { delay_s: base }),
        "exponential" => Ok(RetryStrategy::Exponential {
            base_s: base,
            factor,
            cap_s: cap,
        }),
        other => Err(QueueError::Corrupt {
            task,
            detail: format!("unknown retry kind '{other}'"),
        }),
    }
}

/// The stored form of a time: fixed width so that text order is time order.
pub(crate) fn fmt_ts(t: DateTime<Utc>) -> String {
    crate::time::iso_micros(t)
}

fn parse_ts(task: TaskId, s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| QueueError::Corrupt {
            task,
            detail: format!("bad timestamp '{s}': {e}"),
        })
}

fn parse_state(task: TaskId, s: &str) -> Result<TaskState> {
    s.parse().map_err(unknown_name(task))
}

/// A task whose row holds a state or outcome name this version does not know is corrupt.
fn unknown_name(task: TaskId) -> impl FnOnce(UnknownName) -> QueueError {
    move |e| QueueError::Corrupt {
        task,
        detail: e.to_string(),
    }
}

fn parse_json(task: TaskId, s: &str, what: &str) -> Result<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| QueueError::Corrupt {
        task,
        detail: format!("{what} is not valid JSON: {e}"),
    })
}

fn task_state(conn: &Connection, id: TaskId) -> Result<TaskState> {
    let s: String = conn
        .prepare_cached("SELECT state FROM tasks WHERE id = ?1")?
        .query_row([id.0], |r| r.get(0))
        .optional()?
        .ok_or(QueueError::NoSuchTask(id))?;
    parse_state(id, &s)
}

/// What the database says about a lease.
struct LeaseStatus {
    state: TaskState,
    holder: Option<String>,
    /// Outcome and worker of the lease's attempt row (None if it is not an attempt of this task).
    outcome: Option<AttemptOutcome>,
    attempt_worker: Option<String>,
}

impl LeaseStatus {
    fn holds(&self, lease: &Lease) -> bool {
        self.state == TaskState::Running
            && self.holder.as_deref() == Some(lease.worker_id.as_str())
            && self.outcome == Some(AttemptOutcome::Running)
            && self.attempt_worker.as_deref() == Some(lease.worker_id.as_str())
    }

    fn lost(self, lease: &Lease) -> QueueError {
        QueueError::LeaseLost {
            task: lease.task_id,
            attempt_id: lease.attempt_id,
            worker: lease.worker_id.clone(),
            state: self.state,
            holder: if self.state == TaskState::Running {
                self.holder
            } else {
                None
            },
        }
    }
}

fn lease_status(conn: &Connection, lease: &Lease) -> Result<LeaseStatus> {
    let row: (String, Option<String>, Option<String>, Option<String>) = conn
        .prepare_cached(
            "SELECT t.state, t.claimed_by, a.outcome, a.worker_id FROM tasks t
               LEFT JOIN task_attempts a ON a.id = ?2 AND a.task_id = t.id
             WHERE t.id = ?1",
        )?
        .query_row(params![lease.task_id.0, lease.attempt_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?
        .ok_or(QueueError::NoSuchTask(lease.task_id))?;
    let outcome = row
        .2
        .map(|o| {
            o.parse::<AttemptOutcome>()
                .map_err(unknown_name(lease.task_id))
        })
        .transpose()?;
    Ok(LeaseStatus {
        state: parse_state(lease.task_id, &row.0)?,
        holder: row.1,
        outcome,
        attempt_worker: row.3,
    })
}

fn check_held(conn: &Connection, lease: &Lease) -> Result<()> {
    let st = lease_status(conn, lease)?;
    if st.holds(lease) {
        Ok(())
    } else {
        Err(st.lost(lease))
    }
}

fn reap_expired(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<(TaskId, FailOutcome)>> {
    let expired: Vec<(i64, i64, String, String)> = conn
        .prepare_cached(
            "SELECT t.id, a.id, t.claimed_by, t.lease_expires_at FROM tasks t
               JOIN task_attempts a ON a.task_id = t.id AND a.outcome = 'running'
             WHERE t.state = 'running' AND t.lease_expires_at <= ?1
             ORDER BY t.lease_expires_at, t.id",
        )?
        .query_map([fmt_ts(now)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(expired.len());
    for (task, attempt, worker, at) in expired {
        let error = format!(
            "lease expired at {at}: worker '{worker}' stopped heartbeating (crashed or hung)"
        );
        let o = fail_attempt(
            conn,
            now,
            TaskId(task),
            attempt,
            AttemptOutcome::LeaseExpired,
            &error,
            false,
        )?;
        out.push((TaskId(task), o));
    }
    Ok(out)
}

/// How many times a task may be interrupted (outcome `lease_expired`) in one generation before an
/// interruption fails it.
pub const MAX_INTERRUPTIONS: u32 = 20;

/// Ends the running attempt `attempt_id` with `outcome` and applies the retry rule: a failure
/// (`failed`, `timed_out`) spends one of the task's `max_attempts`; an interruption
/// (`lease_expired`) spends none and is due again now.
fn fail_attempt(
    conn: &Connection,
    now: DateTime<Utc>,
    task: TaskId,
    attempt_id: i64,
    outcome: AttemptOutcome,
    error: &str,
    permanent: bool,
) -> Result<FailOutcome> {
    let now_s = fmt_ts(now);
    conn.prepare_cached(
        "UPDATE task_attempts SET outcome = ?2, ended_at = ?3, error = ?4 WHERE id = ?1",
    )?
    .execute(params![attempt_id, outcome.as_str(), now_s, error])?;
    type Row = (u32, u32, u32, u32, String, f64, f64, Option<f64>);
    // Failures and interruptions of the current generation, this attempt included.
    let (attempts, failures, interruptions, max, rk, base, factor, cap): Row = conn
        .prepare_cached(
            "SELECT t.attempts,
                    (SELECT COUNT(*) FROM task_attempts a WHERE a.task_id = t.id
                       AND a.generation = t.generation AND a.outcome IN ('failed', 'timed_out')),
                    (SELECT COUNT(*) FROM task_attempts a WHERE a.task_id = t.id
                       AND a.generation = t.generation AND a.outcome = 'lease_expired'),
                    t.max_attempts, t.retry_kind, t.retry_base_s, t.retry_factor, t.retry_cap_s
             FROM tasks t WHERE t.id = ?1",
        )?
        .query_row([task.0], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })?;
    // An interruption (the worker crashed, hung, or handed the task back) is not the job's
    // failure: it spends no attempt and the task is due again now, up to MAX_INTERRUPTIONS
    // (a job that keeps killing its workers fails in the end).
    let interrupted = outcome == AttemptOutcome::LeaseExpired;
    let retry_now = interrupted && interruptions <= MAX_INTERRUPTIONS;
    let error = if interrupted && !retry_now {
        format!("{error} (interrupted {interruptions} times: given up)")
    } else {
        error.to_string()
    };
    let error = error.as_str();
    if !permanent && (retry_now || (!interrupted && failures < max)) {
        let retry = retry_from_columns(task, &rk, base, factor, cap)?;
        let at = if retry_now {
            now
        } else {
            now + retry.delay(failures)
        };
        conn.prepare_cached(
            "UPDATE tasks SET state = 'sleeping', available_at = ?2, claimed_by = NULL,
                 lease_expires_at = NULL, error = ?3
             WHERE id = ?1",
        )?
        .execute(params![task.0, fmt_ts(at), error])?;
        Ok(FailOutcome::Retrying {
            at,
            next_attempt: attempts + 1,
        })
    } else {
        conn.prepare_cached(
            "UPDATE tasks SET state = 'failed', error = ?2, finished_at = ?3, lease_expires_at = NULL
             WHERE id = ?1",
        )?
        .execute(params![task.0, error, now_s])?;
        let reason = format!("cancelled because dependency task {task} failed: {error}");
        let cancelled = cascade_cancel(conn, now, task, &reason)?;
        Ok(FailOutcome::Failed { cancelled })
    }
}

/// Resets the failed and cancelled tasks whose column `col` (`id` or `execution_id`, never user input)
/// equals `value`: pending, due now, a fresh generation. A reset task still depending on a failed or
/// cancelled task is cancelled again at once. Returns the tasks reset.
fn reset_failed(
    conn: &Connection,
    now: DateTime<Utc>,
    col: &'static str,
    value: i64,
) -> Result<Vec<TaskId>> {
    let ids: Vec<TaskId> = conn
        .prepare_cached(&format!(
            "UPDATE tasks SET state = 'pending', attempts = 0, generation = generation + 1,
                 available_at = ?2, claimed_by = NULL, lease_expires_at = NULL, result = NULL,
                 error = NULL, started_at = NULL, finished_at = NULL
             WHERE {col} = ?1 AND state IN ('failed', 'cancelled')
             RETURNING id"
        ))?
        .query_map(params![value, fmt_ts(now)], |r| Ok(TaskId(r.get(0)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let blocked: Vec<(TaskId, TaskId, TaskState)> = conn
        .prepare_cached(&format!(
            "SELECT d.task_id, d.depends_on, p.state FROM task_deps d
               JOIN tasks t ON t.id = d.task_id JOIN tasks p ON p.id = d.depends_on
             WHERE t.{col} = ?1 AND t.state = 'pending'
               AND p.state IN ('failed', 'cancelled')
             ORDER BY d.task_id"
        ))?
        .query_map([value], |r| {
            Ok((TaskId(r.get(0)?), TaskId(r.get(1)?), r.get::<_, String>(2)?))
        })?
        .map(|r| {
            let (t, p, s) = r?;
            Ok((t, p, parse_state(p, &s)?))
        })
        .collect::<Result<_>>()?;
    for (task, dep, state) in blocked {
        let reason = format!("cancelled because dependency task {dep} is {state}");
        if !cancel_ids(conn, now, &[task], &reason)?.is_empty() {
            cascade_cancel(conn, now, task, &reason)?;
        }
    }
    Ok(ids)
}

/// Cancels every not-yet-terminal task that depends, directly or not, on `root`.
fn cascade_cancel(
    conn: &Connection,
    now: DateTime<Utc>,
    root: TaskId,
    reason: &str,
) -> Result<Vec<TaskId>> {
    let ids: Vec<TaskId> = conn
        .prepare_cached(
            "WITH RECURSIVE dependents(id) AS (
                 SELECT task_id FROM task_deps WHERE depends_on = ?1
                 UNION
                 SELECT d.task_id FROM task_deps d JOIN dependents x ON d.depends_on = x.id)
             SELECT t.id FROM dependents x JOIN tasks t ON t.id = x.id
             WHERE t.state IN ('pending', 'sleeping', 'running') ORDER BY t.id",
        )?
        .query_map([root.0], |r| Ok(TaskId(r.get(0)?)))?
        .collect::<rusqlite::Result<_>>()?;
    cancel_ids(conn, now, &ids, reason)
}

/// Cancels the listed tasks that are pending, sleeping or running; returns those it cancelled.
fn cancel_ids(
    conn: &Connection,
    now: DateTime<Utc>,
    ids: &[TaskId],
    reason: &str,
) -> Result<Vec<TaskId>> {
    let now_s = fmt_ts(now);
    let mut end_attempt = conn.prepare_cached(
        "UPDATE task_attempts SET outcome = 'cancelled', ended_at = ?2, error = ?3
         WHERE task_id = ?1 AND outcome = 'running'",
    )?;
    let mut cancel = conn.prepare_cached(
        "UPDATE tasks SET state = 'cancelled', error = ?2, finished_at = ?3, claimed_by = NULL,
             lease_expires_at = NULL
         WHERE id = ?1 AND state IN ('pending', 'sleeping', 'running')",
    )?;
    let mut out = Vec::new();
    for &id in ids {
        end_attempt.execute(params![id.0, now_s, reason])?;
        if cancel.execute(params![id.0, reason, now_s])? > 0 {
            out.push(id);
        }
    }
    Ok(out)
}

struct RawTask {
    id: i64,
    execution_id: Option<i64>,
    job_id: Option<String>,
    kind: String,
    params: String,
    priority: i64,
    state: String,
    attempts: u32,
    max_attempts: u32,
    generation: u32,
    retry_kind: String,
    retry_base_s: f64,
    retry_factor: f64,
    retry_cap_s: Option<f64>,
    timeout_s: Option<f64>,
    available_at: String,
    claimed_by: Option<String>,
    lease_expires_at: Option<String>,
    result: Option<String>,
    error: Option<String>,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
}

impl RawTask {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawTask {
            id: r.get(0)?,
            execution_id: r.get(1)?,
            job_id: r.get(2)?,
            kind: r.get(3)?,
            params: r.get(4)?,
            priority: r.get(5)?,
            state: r.get(6)?,
            attempts: r.get(7)?,
            max_attempts: r.get(8)?,
            generation: r.get(9)?,
            retry_kind: r.get(10)?,
            retry_base_s: r.get(11)?,
            retry_factor: r.get(12)?,
            retry_cap_s: r.get(13)?,
            timeout_s: r.get(14)?,
            available_at: r.get(15)?,
            claimed_by: r.get(16)?,
            lease_expires_at: r.get(17)?,
            result: r.get(18)?,
            error: r.get(19)?,
            created_at: r.get(20)?,
            started_at: r.get(21)?,
            finished_at: r.get(22)?,
        })
    }

    fn into_info(self, conn: &Connection) -> Result<TaskInfo> {
        let id = TaskId(self.id);
        let ts = |s: Option<String>| s.map(|s| parse_ts(id, &s)).transpose();
        let depends_on = conn
            .prepare_cached(
                "SELECT depends_on FROM task_deps WHERE task_id = ?1 ORDER BY depends_on",
            )?
            .query_map([self.id], |r| Ok(TaskId(r.get(0)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(TaskInfo {
            id,
            execution_id: self.execution_id,
            job_id: self.job_id,
            kind: self.kind,
            params: parse_json(id, &self.params, "params")?,
            priority: self.priority,
            state: parse_state(id, &self.state)?,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            generation: self.generation,
            retry: retry_from_columns(
                id,
                &self.retry_kind,
                self.retry_base_s,
                self.retry_factor,
                self.retry_cap_s,
            )?,
            timeout_s: self.timeout_s,
            available_at: parse_ts(id, &self.available_at)?,
            claimed_by: self.claimed_by,
            lease_expires_at: ts(self.lease_expires_at)?,
            result: self
                .result
                .map(|s| parse_json(id, &s, "result"))
                .transpose()?,
            error: self.error,
            created_at: parse_ts(id, &self.created_at)?,
            started_at: ts(self.started_at)?,
            finished_at: ts(self.finished_at)?,
            depends_on,
        })
    }
}

struct RawAttempt {
    id: i64,
    task_id: i64,
    generation: u32,
    attempt: u32,
    worker_id: String,
    started_at: String,
    ended_at: Option<String>,
    outcome: String,
    error: Option<String>,
    log_path: Option<String>,
}

impl RawAttempt {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawAttempt {
            id: r.get(0)?,
            task_id: r.get(1)?,
            generation: r.get(2)?,
            attempt: r.get(3)?,
            worker_id: r.get(4)?,
            started_at: r.get(5)?,
            ended_at: r.get(6)?,
            outcome: r.get(7)?,
            error: r.get(8)?,
            log_path: r.get(9)?,
        })
    }

    fn into_info(self) -> Result<AttemptInfo> {
        let task = TaskId(self.task_id);
        Ok(AttemptInfo {
            id: self.id,
            task_id: task,
            generation: self.generation,
            attempt: self.attempt,
            worker_id: self.worker_id,
            started_at: parse_ts(task, &self.started_at)?,
            ended_at: self.ended_at.map(|s| parse_ts(task, &s)).transpose()?,
            outcome: self.outcome.parse().map_err(unknown_name(task))?,
            error: self.error,
            log_path: self.log_path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_scans_the_ready_index_without_sorting() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE pipeline_executions (id INTEGER PRIMARY KEY, pipeline_name TEXT NOT NULL,
                 status TEXT NOT NULL, started_at TEXT, completed_at TEXT, error TEXT);",
        )
        .unwrap();
        conn.execute_batch(include_str!("../../migrations/0002_queue.sql"))
            .unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {CLAIM_SQL}"))
            .unwrap()
            .query_map(["2026-01-01T00:00:00.000000Z"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let text = plan.join("\n");
        assert!(text.contains("tasks_ready"), "{text}");
        assert!(!text.contains("TEMP B-TREE"), "claim must not sort: {text}");
    }

    #[test]
    fn stored_times_sort_as_text() {
        let a = Utc::now();
        let b = a + chrono::Duration::microseconds(1);
        let c = a + chrono::Duration::days(400);
        assert!(fmt_ts(a) < fmt_ts(b) && fmt_ts(b) < fmt_ts(c));
        assert_eq!(parse_ts(TaskId(0), &fmt_ts(a)).unwrap(), a.trunc_subsecs(6));
    }
}
