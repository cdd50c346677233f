//! [`AbsurdQueue`]: the queue on ABSURD (earendil-works/absurd) in PostgreSQL.
//!
//! contimg drives ABSURD only through its SQL functions — `spawn_task`, `claim_task`, `extend_claim`,
//! `complete_run`, `fail_run`, `schedule_run`, `cancel_task`, `retry_task`, `create_queue` — and reads its `t_`/`r_`
//! tables only to report state; it never creates or alters ABSURD's tables, and writes one column of
//! them only: [`AbsurdQueue::interrupt`] raises a task's `max_attempts` by one when it ends a run
//! whose worker is gone, so an interruption does not spend the job's retries. ABSURD's schema is
//! installed by ABSURD's own tool (`absurdctl init`); [`AbsurdQueue::connect`] checks that it is there
//! and that its version is one contimg knows ([`KNOWN_VERSIONS`]), and creates the queue through
//! `create_queue` when it is missing.
//!
//! How contimg's task rules map onto ABSURD's terms:
//! * retry rule → `retry_strategy` (`none`, `fixed` with `base_seconds`, `exponential` with
//!   `base_seconds`, `factor`, `max_seconds`); attempts → `max_attempts`; the lease → `claim_timeout`
//!   (whole seconds) and `extend_claim`;
//! * pipeline, execution, job, priority and timeout → the task's `headers` (`pipeline`, `execution`,
//!   `job`, `priority`, `timeout_s`), so ABSURD's own tools show them; ABSURD claims in
//!   `available_at` order and ignores priority;
//! * a task naming an execution and a job gets the idempotency key `contimg:<execution>:<job>`.
//!
//! Time is ABSURD's `absurd.current_time()`, which a session can fake with `SET absurd.fake_now`
//! ([`AbsurdQueue::set_fake_now`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::Client;
use postgres::error::SqlState;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::pg::PgTarget;
pub use crate::pg::mask_url;

use super::backend::{Claim, Failure, RunKey, RunView, TaskKey, TaskView, WorkLease};
use super::{NewTask, QueueError, Result, RetryStrategy, TaskState, UnknownName};

/// ABSURD schema versions this contimg has been checked against.
pub const KNOWN_VERSIONS: &[&str] = &["0.5.1"];

/// The ABSURD queue contimg uses unless told otherwise.
pub const DEFAULT_QUEUE: &str = "contimg";

/// The `failure_reason.name` of a run contimg ended because its worker was gone (an interruption,
/// not a failure of the job).
pub const INTERRUPTED_REASON: &str = "contimg.Interrupted";

/// ABSURD's limit on any retry delay (one day).
const ABSURD_MAX_DELAY_S: f64 = 86_400.0;

/// A running run: its task, run, worker and whether its claim has expired.
pub type RunningRun = (Uuid, Uuid, Option<String>, bool);

/// One connection to ABSURD, working one queue.
pub struct AbsurdQueue {
    client: Client,
    target: PgTarget,
    queue: String,
    /// `absurd."t_<queue>"` and `absurd."r_<queue>"`, for reads.
    tasks_table: String,
    runs_table: String,
}

impl AbsurdQueue {
    /// Connects to `url` (a `postgres://` URL), checks ABSURD's schema and version, and makes sure
    /// `queue` exists (creating it with ABSURD's `create_queue` if not).
    pub fn connect(url: &str, queue: &str) -> Result<AbsurdQueue> {
        let target = PgTarget::parse(url)?;
        let client = target.connect()?;
        AbsurdQueue::with_client(url, queue, client)
    }

    /// As [`AbsurdQueue::connect`], over a connection the caller opened to `url` (the pipeline layer
    /// shares one connection between its own schema and ABSURD's, so that one transaction can record a
    /// result and spawn the tasks it releases).
    pub fn with_client(url: &str, queue: &str, mut client: Client) -> Result<AbsurdQueue> {
        check_queue_name(queue)?;
        let target = PgTarget::parse(url)?;
        check_schema(&mut client, &target)?;
        let exists = client
            .query_opt(
                "SELECT 1 FROM absurd.list_queues() WHERE queue_name = $1",
                &[&queue],
            )
            .map_err(|e| target.error("list ABSURD queues", e))?
            .is_some();
        if !exists {
            // Many workers may start at once: one creates the queue, the others find it.
            let action = format!("create ABSURD queue '{queue}'");
            let mut tx = client.transaction().map_err(|e| target.error(&action, e))?;
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('contimg:create_queue:' || $1))",
                &[&queue],
            )
            .map_err(|e| target.error(&action, e))?;
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM absurd.list_queues() WHERE queue_name = $1",
                    &[&queue],
                )
                .map_err(|e| target.error(&action, e))?
                .is_some();
            if !exists {
                tx.execute("SELECT absurd.create_queue($1)", &[&queue])
                    .map_err(|e| target.error(&action, e))?;
            }
            tx.commit().map_err(|e| target.error(&action, e))?;
        }
        Ok(AbsurdQueue {
            client,
            queue: queue.to_string(),
            tasks_table: tables(queue).0,
            runs_table: tables(queue).1,
            target,
        })
    }

    /// The URL with its password masked.
    pub fn url(&self) -> &str {
        &self.target.shown
    }

    /// The ABSURD queue this connection works.
    pub fn queue_name(&self) -> &str {
        &self.queue
    }

    /// The connection, for a caller's own transaction (see [`spawn_on`]).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// A driver error as a one-line message naming the masked URL.
    pub fn error(&self, action: &str, e: postgres::Error) -> QueueError {
        self.target.error(action, e).into()
    }

    /// The installed ABSURD schema version.
    pub fn schema_version(&mut self) -> Result<String> {
        schema_version(&mut self.client, &self.target)
    }

    /// Makes ABSURD's clock read `t` for this connection (`SET absurd.fake_now`), or the real time
    /// again with `None`.
    pub fn set_fake_now(&mut self, t: Option<DateTime<Utc>>) -> Result<()> {
        let v = t.map(|t| t.to_rfc3339()).unwrap_or_default();
        self.client
            .execute("SELECT set_config('absurd.fake_now', $1, false)", &[&v])
            .map_err(|e| self.target.error("set absurd.fake_now", e))?;
        Ok(())
    }

    fn err(&self, action: &str) -> impl FnOnce(postgres::Error) -> QueueError + '_ {
        let action = action.to_string();
        move |e| self.target.error(&action, e).into()
    }

    fn absurd_ids(lease: &WorkLease) -> Result<(Uuid, Uuid)> {
        match (lease.task, lease.run) {
            (TaskKey::Absurd(t), RunKey::Absurd(r)) => Ok((t, r)),
            _ => Err(QueueError::InvalidTask(format!(
                "task {} is not an ABSURD task; this is the ABSURD queue",
                lease.task
            ))),
        }
    }

    fn absurd_task(key: TaskKey) -> Result<Uuid> {
        match key {
            TaskKey::Absurd(t) => Ok(t),
            TaskKey::Sqlite(id) => Err(QueueError::InvalidTask(format!(
                "task {id} is a SQLite task; this is the ABSURD queue"
            ))),
        }
    }

    /// After ABSURD refused a change to a run: `Ok(None)` when it is not ours to change any more
    /// (the caller turns that into [`QueueError::ClaimLost`]), else the original error.
    fn run_state(&mut self, run: Uuid) -> Result<Option<(String, String)>> {
        let sql = format!(
            "SELECT r.state, t.state FROM {} r JOIN {} t ON t.task_id = r.task_id WHERE r.run_id = $1",
            self.runs_table, self.tasks_table
        );
        let row = self
            .client
            .query_opt(&sql, &[&run])
            .map_err(|e| self.target.error("read an ABSURD run", e))?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Turns ABSURD's refusal of a change to a run the worker no longer holds into ClaimLost.
    fn refused(&mut self, lease: &WorkLease, action: &str, e: postgres::Error) -> QueueError {
        let refusal = e.code().is_some_and(|c| {
            [SqlState::RAISE_EXCEPTION.code(), "AB001", "AB002"].contains(&c.code())
        });
        if !refusal {
            return self.target.error(action, e).into();
        }
        let Ok((task, run)) = Self::absurd_ids(lease) else {
            return self.target.error(action, e).into();
        };
        let detail = match self.run_state(run) {
            Ok(Some((r, t))) => format!("its run is {r} and the task is {t}"),
            Ok(None) => "the run does not exist in this queue".to_string(),
            Err(err) => return err,
        };
        QueueError::ClaimLost {
            task,
            run,
            worker: lease.worker.clone(),
            detail,
        }
    }
}

impl AbsurdQueue {
    /// The current time by ABSURD's clock (`absurd.current_time()`, faked in tests).
    pub fn now(&mut self) -> Result<DateTime<Utc>> {
        let row = self
            .client
            .query_one("SELECT absurd.current_time()", &[])
            .map_err(self.err("read ABSURD's clock"))?;
        Ok(row.get(0))
    }

    /// Spawns one task. Its retry rule, attempts, timeout and its pipeline, execution and job
    /// travel as ABSURD's own spawn options and headers, and a task naming an execution and a job
    /// gets an idempotency key from them: spawning it again returns the existing task. ABSURD has
    /// no dependencies or delayed start: a task with `depends_on` or `available_at` is refused.
    pub fn spawn(&mut self, t: &NewTask) -> Result<TaskKey> {
        let key = match (t.execution_id, &t.job_id) {
            (Some(e), Some(j)) => Some(format!("contimg:{e}:{j}")),
            _ => None,
        };
        let shown = self.target.shown.clone();
        spawn_on(&mut self.client, &shown, &self.queue, t, key.as_deref()).map(TaskKey::Absurd)
    }

    /// Claims the next due run for `worker` under a claim of `claim` length (whole seconds,
    /// rounded up), or `None` when nothing is due. Expired claims are reaped first.
    pub fn claim(&mut self, worker: &str, claim: Duration) -> Result<Option<Claim>> {
        if worker.trim().is_empty() {
            return Err(QueueError::InvalidTask(
                "a worker id must not be empty (use e.g. host:pid)".into(),
            ));
        }
        let secs = claim_seconds(claim)?;
        let row = self
            .client
            .query_opt(
                "SELECT c.run_id, c.task_id, c.attempt, c.task_name, c.params, c.max_attempts,
                        c.headers, absurd.current_time() + $3::int4 * interval '1 second'
                   FROM absurd.claim_task($1, $2, $3::int4, 1) c",
                &[&self.queue, &worker, &secs],
            )
            .map_err(self.err("claim a task"))?;
        let Some(r) = row else { return Ok(None) };
        let headers: Option<Value> = r.get(6);
        let attempt: i32 = r.get(2);
        let max_attempts: Option<i32> = r.get(5);
        Ok(Some(Claim {
            lease: WorkLease {
                task: TaskKey::Absurd(r.get(1)),
                run: RunKey::Absurd(r.get(0)),
                worker: worker.to_string(),
            },
            name: r.get(3),
            params: r.get(4),
            attempt: attempt.max(0) as u32,
            max_attempts: max_attempts.map(|m| m.max(0) as u32),
            timeout_s: headers
                .as_ref()
                .and_then(|h| h.get("timeout_s"))
                .and_then(Value::as_f64),
            claim_expires_at: r.get(7),
        }))
    }

    /// Extends the claim to now + `extend`, if the worker still holds the run.
    pub fn heartbeat(&mut self, lease: &WorkLease, extend: Duration) -> Result<()> {
        let (_, run) = Self::absurd_ids(lease)?;
        let secs = claim_seconds(extend)?;
        match self.client.execute(
            "SELECT absurd.extend_claim($1, $2, $3::int4)",
            &[&self.queue, &run, &secs],
        ) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.refused(lease, "extend a claim", e)),
        }
    }

    /// Completes the task with `result` (again with the same lease: accepted, nothing changes).
    pub fn complete(&mut self, lease: &WorkLease, result: &Value) -> Result<()> {
        let (_, run) = Self::absurd_ids(lease)?;
        match self.client.execute(
            "SELECT absurd.complete_run($1, $2, $3)",
            &[&self.queue, &run, result],
        ) {
            Ok(_) => Ok(()),
            Err(e) => {
                // Completing the same run again changes nothing and is accepted.
                if let Ok(Some((r, _))) = self.run_state(run)
                    && r.parse() == Ok(TaskState::Completed)
                {
                    return Ok(());
                }
                Err(self.refused(lease, "complete a run", e))
            }
        }
    }

    /// Records a failed run (`timed_out`: the worker stopped it for running over its timeout); the
    /// task is retried by its retry rule while attempts remain, else it fails for good.
    pub fn fail(&mut self, lease: &WorkLease, error: &str, timed_out: bool) -> Result<Failure> {
        let (task, run) = Self::absurd_ids(lease)?;
        let reason = json!({
            "name": if timed_out { "contimg.TimedOut" } else { "contimg.JobFailed" },
            "message": error,
            "workerId": lease.worker,
        });
        let outcome_sql = format!(
            "SELECT t.state, r.available_at, r.attempt FROM {} t
               LEFT JOIN {} r ON r.run_id = t.last_attempt_run WHERE t.task_id = $1",
            self.tasks_table, self.runs_table
        );
        // The retry delay follows contimg's count of failures, not ABSURD's attempt number, which
        // also counts the interruptions (a crash, a stop, an outage) that spend no retry.
        let failures_sql = format!(
            "SELECT t.retry_strategy::text,
                    (SELECT count(*) FROM {} r WHERE r.task_id = t.task_id AND r.state = 'failed'
                        AND r.failure_reason->>'name' IN ('contimg.JobFailed', 'contimg.TimedOut'))
               FROM {} t WHERE t.task_id = $1",
            self.runs_table, self.tasks_table
        );
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| self.target.error("fail a run", e))?;
        let delay_s = match tx.query_opt(&failures_sql, &[&task]) {
            Ok(Some(r)) => r
                .get::<_, Option<String>>(0)
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .and_then(|v| strategy_of(&v))
                .map(|s| s.delay_secs(r.get::<_, i64>(1).max(0) as u32 + 1)),
            Ok(None) => None,
            Err(e) => {
                drop(tx);
                return Err(self.target.error("read a task's failures", e).into());
            }
        };
        if let Err(e) = tx.execute(
            "SELECT absurd.fail_run($1, $2, $3,
                    absurd.current_time() + make_interval(secs => $4::float8))",
            &[&self.queue, &run, &reason, &delay_s],
        ) {
            drop(tx);
            return Err(self.refused(lease, "fail a run", e));
        }
        let row = tx.query_one(&outcome_sql, &[&task]);
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                drop(tx);
                return Err(self.target.error("read a failed task", e).into());
            }
        };
        tx.commit()
            .map_err(|e| self.target.error("fail a run", e))?;
        let state: String = row.get(0);
        Ok(match state.parse() {
            Ok(TaskState::Pending | TaskState::Sleeping) => Failure::Retrying {
                at: row.get(1),
                next_attempt: row.get::<_, i32>(2).max(0) as u32,
            },
            _ => Failure::Failed,
        })
    }

    /// Fails the run with `error` and its task for good, in one transaction: ABSURD's `fail_run`
    /// with the next attempt put off to the far future (so no worker can claim it), then
    /// `cancel_task`. The task ends `cancelled` (or `failed` when no attempts were left) after one
    /// run, whose failure holds `error`.
    pub fn fail_for_good(&mut self, lease: &WorkLease, error: &str) -> Result<()> {
        let (task, run) = Self::absurd_ids(lease)?;
        let reason = json!({
            "name": "contimg.Refused",
            "message": error,
            "workerId": lease.worker,
        });
        let queue = self.queue.clone();
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| self.target.error("fail a run", e))?;
        let done = tx
            .execute(
                "SELECT absurd.fail_run($1, $2, $3, absurd.current_time() + interval '100 years')",
                &[&queue, &run, &reason],
            )
            .and_then(|_| {
                tx.execute(
                    "SELECT absurd.cancel_task($1, $2) FROM absurd.get_task_result($1, $2) g
                      WHERE g.state NOT IN ('completed', 'failed', 'cancelled')",
                    &[&queue, &task],
                )
            })
            .and_then(|_| tx.commit());
        done.map_err(|e| self.refused(lease, "fail a task for good", e))
    }

    /// The running runs whose worker may be gone: `(task, run, worker, claim expired)` for every
    /// run in state `running` (the caller decides which holders are dead).
    pub fn running_runs(&mut self) -> Result<Vec<RunningRun>> {
        let sql = format!(
            "SELECT task_id, run_id, claimed_by,
                    coalesce(claim_expires_at <= absurd.current_time(), false)
               FROM {} WHERE state = 'running'",
            self.runs_table
        );
        let rows = self
            .client
            .query(&sql, &[])
            .map_err(self.err("read the running runs"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    /// Ends run `run` of `task`, whose worker is gone, as an interruption rather than a failure:
    /// in one transaction the task's `max_attempts` is raised by one (the attempt ABSURD adds is
    /// not taken from the job's retries; no ABSURD function gives an attempt back, so this is the
    /// one write contimg makes to ABSURD's tables) and `fail_run` gets the reason
    /// [`INTERRUPTED_REASON`] and a retry time of now (due at once, no retry delay). Past
    /// `max_interruptions` earlier interruptions of the task ABSURD's own rule applies. False
    /// when someone else ended the run first.
    pub fn interrupt(
        &mut self,
        task: Uuid,
        run: Uuid,
        message: &str,
        max_interruptions: u32,
    ) -> Result<bool> {
        let reason = json!({ "name": INTERRUPTED_REASON, "message": message });
        let count_sql = format!(
            "SELECT count(*) FROM {} WHERE task_id = $1 AND failure_reason->>'name' = $2",
            self.runs_table
        );
        let raise_sql = format!(
            "UPDATE {} SET max_attempts = max_attempts + 1
              WHERE task_id = $1 AND max_attempts IS NOT NULL AND state = 'running'",
            self.tasks_table
        );
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| self.target.error("interrupt a run", e))?;
        let r = (|| {
            // Locks the run first, as fail_run does, so two workers cannot both raise the limit.
            tx.execute(
                &format!(
                    "SELECT 1 FROM {} WHERE run_id = $1 AND state = 'running' FOR UPDATE",
                    self.runs_table
                ),
                &[&run],
            )?;
            let before: i64 = tx
                .query_one(&count_sql, &[&task, &INTERRUPTED_REASON])?
                .get(0);
            if before < i64::from(max_interruptions) {
                tx.execute(&raise_sql, &[&task])?;
            }
            tx.execute(
                "SELECT absurd.fail_run($1, $2, $3, absurd.current_time())",
                &[&self.queue, &run, &reason],
            )
        })();
        match r {
            Ok(_) => {
                tx.commit()
                    .map_err(|e| self.target.error("interrupt a run", e))?;
                Ok(true)
            }
            // Another worker (or ABSURD's claim_task) ended it first.
            Err(e)
                if e.code().is_some_and(|c| {
                    ["AB001", "AB002", SqlState::RAISE_EXCEPTION.code()].contains(&c.code())
                }) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.target.error("interrupt a run", e).into()),
        }
    }

    /// The state a task's step `step` recorded (a checkpoint; for an awaited event, its payload once
    /// emitted), or `None`.
    pub fn checkpoint(&mut self, task: TaskKey, step: &str) -> Result<Option<Value>> {
        let task = Self::absurd_task(task)?;
        Ok(self
            .client
            .query_opt(
                "SELECT state FROM absurd.get_task_checkpoint_state($1, $2, $3, false)",
                &[&self.queue, &task, &step],
            )
            .map_err(self.err("read a task's checkpoint"))?
            .and_then(|r| r.get::<_, Option<Value>>(0)))
    }

    /// Awaits event `event` as step `step` of the claimed run (`absurd.await_event`, no timeout):
    /// its payload when it was emitted already, else `None`: the run sleeps until the event is
    /// emitted (then ABSURD offers the same run again, the payload recorded as the step's
    /// checkpoint) and the worker no longer holds a claim on it.
    pub fn await_event(
        &mut self,
        lease: &WorkLease,
        step: &str,
        event: &str,
    ) -> Result<Option<Value>> {
        let (task, run) = Self::absurd_ids(lease)?;
        let row = match self.client.query_one(
            "SELECT should_suspend, payload FROM absurd.await_event($1, $2, $3, $4, $5, NULL)",
            &[&self.queue, &task, &run, &step, &event],
        ) {
            Ok(r) => r,
            Err(e) => return Err(self.refused(lease, "await an event", e)),
        };
        let suspended: bool = row.get(0);
        Ok(if suspended {
            None
        } else {
            Some(row.get::<_, Option<Value>>(1).unwrap_or(Value::Null))
        })
    }

    /// Hands a claimed run back without a verdict (its worker is shutting down):
    /// `absurd.schedule_run` puts the same run to sleep until now, so any worker claims it again at
    /// once and ABSURD counts no new attempt.
    pub fn release(&mut self, lease: &WorkLease) -> Result<()> {
        let (_, run) = Self::absurd_ids(lease)?;
        match self.client.execute(
            "SELECT absurd.schedule_run($1, $2, absurd.current_time())",
            &[&self.queue, &run],
        ) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.refused(lease, "hand back a run", e)),
        }
    }

    /// Cancels a task that is not finished (a running run's next heartbeat or complete is refused);
    /// false when it was already completed, failed or cancelled. `cancel_task` takes no reason.
    pub fn cancel(&mut self, task: TaskKey, _reason: &str) -> Result<bool> {
        let id = Self::absurd_task(task)?;
        let before = self.inspect_state(id)?;
        if before.is_terminal() {
            return Ok(false);
        }
        self.client
            .execute("SELECT absurd.cancel_task($1, $2)", &[&self.queue, &id])
            .map_err(self.err("cancel a task"))?;
        Ok(true)
    }

    /// Gives a failed task one more attempt (`retry_task`).
    pub fn retry(&mut self, task: TaskKey) -> Result<()> {
        let id = Self::absurd_task(task)?;
        let state = self.inspect_state(id)?;
        if state != TaskState::Failed {
            return Err(QueueError::InvalidTask(format!(
                "ABSURD task {id} is {state}; ABSURD retries only failed tasks"
            )));
        }
        self.client
            .execute(
                "SELECT 1 FROM absurd.retry_task($1, $2, '{}'::jsonb)",
                &[&self.queue, &id],
            )
            .map_err(self.err("retry a task"))?;
        Ok(())
    }

    /// The task and its runs.
    pub fn inspect(&mut self, task: TaskKey) -> Result<TaskView> {
        let id = Self::absurd_task(task)?;
        let sql = format!(
            "SELECT task_name, params, state, attempts, max_attempts, completed_payload
               FROM {} WHERE task_id = $1",
            self.tasks_table
        );
        let t = self
            .client
            .query_opt(&sql, &[&id])
            .map_err(self.err("read an ABSURD task"))?
            .ok_or_else(|| QueueError::NoSuchAbsurdTask {
                queue: self.queue.clone(),
                task: id,
            })?;
        let state = parse_state(id, &t.get::<_, String>(2))?;
        let sql = format!(
            "SELECT run_id, attempt, claimed_by, state, failure_reason, started_at,
                    coalesce(completed_at, failed_at), available_at
               FROM {} WHERE task_id = $1 ORDER BY attempt, run_id",
            self.runs_table
        );
        let rows = self
            .client
            .query(&sql, &[&id])
            .map_err(self.err("read ABSURD runs"))?;
        let mut next_attempt_at = None;
        let mut runs = Vec::with_capacity(rows.len());
        for r in rows {
            let run_state: String = r.get(3);
            if matches!(
                run_state.parse(),
                Ok(TaskState::Pending | TaskState::Sleeping)
            ) {
                next_attempt_at = Some(r.get::<_, DateTime<Utc>>(7));
            }
            let reason: Option<Value> = r.get(4);
            runs.push(RunView {
                run: RunKey::Absurd(r.get(0)),
                attempt: r.get::<_, i32>(1).max(0) as u32,
                worker: r.get(2),
                state: run_state,
                error: reason.as_ref().map(failure_text),
                started_at: r.get(5),
                ended_at: r.get(6),
            });
        }
        Ok(TaskView {
            key: task,
            name: t.get(0),
            params: t.get(1),
            state,
            attempts: t.get::<_, i32>(3).max(0) as u32,
            max_attempts: t.get::<_, Option<i32>>(4).map(|m| m.max(0) as u32),
            result: t.get(5),
            next_attempt_at,
            runs,
        })
    }
}

impl AbsurdQueue {
    fn inspect_state(&mut self, id: Uuid) -> Result<TaskState> {
        let sql = format!("SELECT state FROM {} WHERE task_id = $1", self.tasks_table);
        let row = self
            .client
            .query_opt(&sql, &[&id])
            .map_err(self.err("read an ABSURD task"))?
            .ok_or_else(|| QueueError::NoSuchAbsurdTask {
                queue: self.queue.clone(),
                task: id,
            })?;
        parse_state(id, &row.get::<_, String>(0))
    }
}

fn parse_state(task: Uuid, s: &str) -> Result<TaskState> {
    s.parse()
        .map_err(|e: UnknownName| QueueError::AbsurdCorrupt {
            task,
            detail: e.to_string(),
        })
}

/// An ABSURD queue name contimg accepts: 1–57 lowercase letters, digits or '_'.
pub fn check_queue_name(queue: &str) -> Result<()> {
    let ok = !queue.is_empty()
        && queue.len() <= 57
        && queue
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(QueueError::InvalidTask(format!(
            "ABSURD queue name '{queue}' is not allowed: use 1–57 lowercase letters, digits or '_'"
        )))
    }
}

fn schema_version(client: &mut Client, target: &PgTarget) -> Result<String> {
    let row = client
        .query_one("SELECT absurd.get_schema_version()", &[])
        .map_err(|e| target.error("read ABSURD's schema version", e))?;
    Ok(row.get(0))
}

/// ABSURD's schema must be installed (by `absurdctl init`) and of a version contimg knows.
pub fn check_schema(client: &mut Client, target: &PgTarget) -> Result<()> {
    let installed: bool = client
        .query_one(
            "SELECT to_regprocedure('absurd.get_schema_version()') IS NOT NULL
                AND to_regprocedure('absurd.claim_task(text, text, integer, integer)') IS NOT NULL",
            &[],
        )
        .map_err(|e| target.error("look for ABSURD's schema", e))?
        .get(0);
    if !installed {
        return Err(QueueError::AbsurdMissing {
            url: target.shown.clone(),
        });
    }
    let found = schema_version(client, target)?;
    if !KNOWN_VERSIONS.contains(&found.as_str()) {
        return Err(QueueError::AbsurdVersion {
            url: target.shown.clone(),
            found,
        });
    }
    Ok(())
}

/// A run's `failure_reason` as text: its `message` when it has one (contimg's and the SDKs' reasons
/// do), else the whole JSON.
pub fn failure_text(reason: &Value) -> String {
    match reason.get("message").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => reason.to_string(),
    }
}

/// `absurd."t_<queue>"` and `absurd."r_<queue>"`: ABSURD's task and run tables of a queue, which
/// contimg only reads (to report state).
pub fn tables(queue: &str) -> (String, String) {
    (
        format!("absurd.\"t_{queue}\""),
        format!("absurd.\"r_{queue}\""),
    )
}

/// Spawns `t` on `queue` over `c` (a connection or an open transaction) with ABSURD's `spawn_task`:
/// its retry rule, attempts and timeout as ABSURD's options, its pipeline, execution, job, priority and
/// timeout as headers, and `idempotency_key` when given (spawning the same key again returns the
/// existing task). `shown` is the masked URL for messages.
pub fn spawn_on(
    c: &mut impl postgres::GenericClient,
    shown: &str,
    queue: &str,
    t: &NewTask,
    idempotency_key: Option<&str>,
) -> Result<Uuid> {
    check_spawnable(t)?;
    let opts = spawn_options(t, idempotency_key)?;
    let row = c
        .query_one(
            "SELECT task_id FROM absurd.spawn_task($1, $2, $3, $4)",
            &[&queue, &t.kind, &t.params, &opts],
        )
        .map_err(|e| crate::pg::pg_error(shown, &format!("spawn task '{}'", t.kind), e))?;
    Ok(row.get(0))
}

fn spawn_options(t: &NewTask, idempotency_key: Option<&str>) -> Result<Value> {
    let mut headers = serde_json::Map::new();
    headers.insert("origin".into(), json!("contimg"));
    if let Some(p) = &t.pipeline {
        headers.insert("pipeline".into(), json!(p));
    }
    if let Some(e) = t.execution_id {
        headers.insert("execution".into(), json!(e));
    }
    if let Some(j) = &t.job_id {
        headers.insert("job".into(), json!(j));
    }
    headers.insert("priority".into(), json!(t.priority));
    if let Some(s) = t.timeout_s {
        headers.insert("timeout_s".into(), json!(s));
    }
    let mut opts = json!({
        "headers": headers,
        "retry_strategy": retry_strategy(&t.retry, &t.kind)?,
        "max_attempts": t.max_attempts,
    });
    if let Some(k) = idempotency_key {
        opts["idempotency_key"] = json!(k);
    }
    Ok(opts)
}

/// ABSURD has no dependencies and no delayed start; the pipeline layer spawns a task only when it is due.
fn check_spawnable(t: &NewTask) -> Result<()> {
    if t.kind.trim().is_empty() {
        return Err(QueueError::InvalidTask(
            "a task needs a name (its job type), got an empty string".into(),
        ));
    }
    if t.max_attempts == 0 || t.max_attempts > i32::MAX as u32 {
        return Err(QueueError::InvalidTask(format!(
            "task '{}' has max_attempts = {}; ABSURD needs 1 to {}",
            t.kind,
            t.max_attempts,
            i32::MAX
        )));
    }
    if !t.depends_on.is_empty() || t.available_at.is_some() {
        return Err(QueueError::InvalidTask(format!(
            "task '{}' has dependencies or a start time; ABSURD has neither: spawn it when it is due",
            t.kind
        )));
    }
    if let Some(s) = t.timeout_s
        && !(s.is_finite() && s > 0.0)
    {
        return Err(QueueError::InvalidTask(format!(
            "task '{}' has timeout {s} s; a timeout must be a positive number of seconds",
            t.kind
        )));
    }
    Ok(())
}

/// The retry rule of ABSURD's `retry_strategy` (the inverse of [`retry_strategy`]); `None` for
/// one contimg does not write (a task another client spawned keeps ABSURD's own delays).
fn strategy_of(v: &Value) -> Option<RetryStrategy> {
    let num = |k: &str| v.get(k).and_then(Value::as_f64);
    match v.get("kind").and_then(Value::as_str)? {
        "none" => Some(RetryStrategy::None),
        "fixed" => Some(RetryStrategy::Fixed {
            delay_s: num("base_seconds")?,
        }),
        "exponential" => Some(RetryStrategy::Exponential {
            base_s: num("base_seconds")?,
            factor: num("factor")?,
            cap_s: num("max_seconds"),
        }),
        _ => None,
    }
}

/// The retry rule as ABSURD's `retry_strategy`; delays beyond ABSURD's one-day limit are refused.
fn retry_strategy(r: &RetryStrategy, kind: &str) -> Result<Value> {
    r.validate()?;
    let too_long = |what: &str, v: f64| {
        Err(QueueError::InvalidTask(format!(
            "task '{kind}': retry {what} = {v} s is longer than ABSURD allows ({ABSURD_MAX_DELAY_S} s)"
        )))
    };
    Ok(match *r {
        RetryStrategy::None => json!({ "kind": "none" }),
        RetryStrategy::Fixed { delay_s } => {
            if delay_s > ABSURD_MAX_DELAY_S {
                return too_long("delay_s", delay_s);
            }
            json!({ "kind": "fixed", "base_seconds": delay_s })
        }
        RetryStrategy::Exponential {
            base_s,
            factor,
            cap_s,
        } => {
            if base_s > ABSURD_MAX_DELAY_S {
                return too_long("base_s", base_s);
            }
            let cap = cap_s.unwrap_or(ABSURD_MAX_DELAY_S);
            if cap > ABSURD_MAX_DELAY_S {
                return too_long("cap_s", cap);
            }
            json!({ "kind": "exponential", "base_seconds": base_s, "factor": factor, "max_seconds": cap })
        }
    })
}

/// A claim length in ABSURD's whole seconds (rounded up, at least 1).
fn claim_seconds(d: Duration) -> Result<i32> {
    let s = d.as_secs_f64().ceil();
    if d.is_zero() || s > f64::from(i32::MAX) {
        return Err(QueueError::InvalidTask(format!(
            "a claim of {d:?} is not allowed; give a positive duration of at most {} s",
            i32::MAX
        )));
    }
    Ok(s as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_retry_rule_reads_back_from_its_absurd_strategy() {
        for r in [
            RetryStrategy::None,
            RetryStrategy::Fixed { delay_s: 7.5 },
            RetryStrategy::Exponential {
                base_s: 2.0,
                factor: 3.0,
                cap_s: Some(600.0),
            },
        ] {
            let v = retry_strategy(&r, "t").unwrap();
            assert_eq!(strategy_of(&v), Some(r), "{v}");
        }
        // Uncapped: ABSURD's one-day limit is written, and read back as the cap.
        let v = retry_strategy(
            &RetryStrategy::Exponential {
                base_s: 1.0,
                factor: 2.0,
                cap_s: None,
            },
            "t",
        )
        .unwrap();
        assert_eq!(strategy_of(&v).unwrap().delay_secs(30), ABSURD_MAX_DELAY_S);
        // Another client's strategy of a kind contimg does not write: ABSURD's own delays.
        assert_eq!(strategy_of(&json!({ "kind": "jitter" })), None);
    }
}
