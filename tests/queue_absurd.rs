//! The same queue rules on both backends (the SQLite queue's own API and ABSURD's, each put in the
//! shared vocabulary of `contimg::queue` by [`Conn`]), and ABSURD on a real PostgreSQL server.
//!
//! The server is the one `scripts/pg-cluster start` runs (scripts/test and .ci/run start it), found
//! through CONTIMG_TEST_PG; without it these tests fail and say how to start one. Each test works its
//! own ABSURD queue, dropped at the end. Time on ABSURD is ABSURD's own fake clock
//! (`absurd.fake_now`), on SQLite a ManualClock: nothing sleeps for a retry or a claim to expire.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use contimg::queue::{
    AbsurdQueue, AttemptOutcome, Claim, Failure, Lease, ManualClock, NewTask, Queue, QueueError,
    RetryStrategy, RunKey, RunView, TaskKey, TaskState, TaskView, WorkLease,
};
use serde_json::{Value, json};

const CLAIM: Duration = Duration::from_secs(30);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

/// The test server's URL; fails (never skips) when there is none.
fn pg_url() -> String {
    std::env::var("CONTIMG_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "CONTIMG_TEST_PG is not set: these tests need a PostgreSQL server with ABSURD's schema. \
             Run them with scripts/test (it starts one), or start one with \
             `eval \"$(scripts/pg-cluster start)\"` (needs apt-get install postgresql and \
             pip install absurdctl absurd-sdk)"
        )
    })
}

fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: start the test server with `eval \"$(scripts/pg-cluster start)\"`"
        )
    })
}

fn raw_client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test server ({e})"))
}

/// A fresh ABSURD queue for one test, dropped (with ABSURD's `drop_queue`) at the end.
struct PgQueue {
    name: String,
}

impl PgQueue {
    fn new(test: &str) -> PgQueue {
        let name = format!("t_{test}_{}", std::process::id());
        raw_client(&pg_url())
            .execute("SELECT absurd.drop_queue($1)", &[&name])
            .unwrap();
        PgQueue { name }
    }

    /// A connection (a worker) on this queue, its fake clock at `t`.
    fn open_at(&self, t: DateTime<Utc>) -> AbsurdQueue {
        let mut q = AbsurdQueue::connect(&pg_url(), &self.name).expect("connect to ABSURD");
        q.set_fake_now(Some(t)).unwrap();
        q
    }
}

impl Drop for PgQueue {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
            let _ = c.execute("SELECT absurd.drop_queue($1)", &[&self.name]);
        }
    }
}

/// Either backend, with a clock the test moves.
enum Bed {
    Sqlite {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        clock: Arc<ManualClock>,
    },
    Absurd(PgQueue),
}

/// One worker's connection on a [`Bed`].
enum Conn {
    Sqlite(Queue),
    Absurd(Box<AbsurdQueue>),
}

/// The SQLite queue's lease behind a shared-vocabulary one.
fn sqlite_lease(l: &WorkLease) -> Lease {
    match (l.task, l.run) {
        (TaskKey::Sqlite(task_id), RunKey::Sqlite(attempt_id)) => Lease {
            task_id,
            attempt_id,
            worker_id: l.worker.clone(),
        },
        other => panic!("not an SQLite lease: {other:?}"),
    }
}

fn sqlite_id(key: TaskKey) -> contimg::queue::TaskId {
    match key {
        TaskKey::Sqlite(id) => id,
        TaskKey::Absurd(id) => panic!("{id} is an ABSURD task"),
    }
}

/// Each operation the shared cases use, on either backend, in the shared vocabulary.
impl Conn {
    fn spawn(&mut self, t: &NewTask) -> Result<TaskKey, QueueError> {
        match self {
            Conn::Sqlite(q) => q.spawn(t).map(TaskKey::Sqlite),
            Conn::Absurd(q) => q.spawn(t),
        }
    }

    fn claim(&mut self, worker: &str, claim: Duration) -> Result<Option<Claim>, QueueError> {
        match self {
            Conn::Sqlite(q) => Ok(q.claim(worker, claim)?.map(|c| Claim {
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
            })),
            Conn::Absurd(q) => q.claim(worker, claim),
        }
    }

    fn heartbeat(&mut self, lease: &WorkLease, extend: Duration) -> Result<(), QueueError> {
        match self {
            Conn::Sqlite(q) => q.heartbeat(&sqlite_lease(lease), extend).map(|_| ()),
            Conn::Absurd(q) => q.heartbeat(lease, extend),
        }
    }

    fn complete(&mut self, lease: &WorkLease, result: &Value) -> Result<(), QueueError> {
        match self {
            Conn::Sqlite(q) => q.complete(&sqlite_lease(lease), result),
            Conn::Absurd(q) => q.complete(lease, result),
        }
    }

    fn fail(
        &mut self,
        lease: &WorkLease,
        error: &str,
        timed_out: bool,
    ) -> Result<Failure, QueueError> {
        match self {
            Conn::Sqlite(q) => q
                .fail(&sqlite_lease(lease), error, timed_out)
                .map(Failure::from),
            Conn::Absurd(q) => q.fail(lease, error, timed_out),
        }
    }

    /// False when the task was already finished.
    fn cancel(&mut self, task: TaskKey, reason: &str) -> Result<bool, QueueError> {
        match self {
            Conn::Sqlite(q) => Ok(!q.cancel_task(sqlite_id(task), reason)?.is_empty()),
            Conn::Absurd(q) => q.cancel(task, reason),
        }
    }

    fn retry(&mut self, task: TaskKey) -> Result<(), QueueError> {
        match self {
            Conn::Sqlite(q) => q.retry_task(sqlite_id(task)),
            Conn::Absurd(q) => q.retry(task),
        }
    }

    /// The task and the runs of its current generation (SQLite) or all its runs (ABSURD).
    fn inspect(&mut self, task: TaskKey) -> Result<TaskView, QueueError> {
        let q = match self {
            Conn::Sqlite(q) => q,
            Conn::Absurd(q) => return q.inspect(task),
        };
        let id = sqlite_id(task);
        let t = q.task(id)?;
        let runs = q
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

impl Bed {
    fn sqlite() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite3");
        contimg::store::Store::open(&path).unwrap();
        Bed::Sqlite {
            _dir: dir,
            path,
            clock: Arc::new(ManualClock::new(t0())),
        }
    }

    fn absurd(test: &str) -> Bed {
        Bed::Absurd(PgQueue::new(test))
    }

    fn open(&self) -> Conn {
        match self {
            Bed::Sqlite { path, clock, .. } => {
                let conn = contimg::store::Store::open(path).unwrap().conn;
                Conn::Sqlite(Queue::new(conn, clock.clone()))
            }
            Bed::Absurd(pq) => Conn::Absurd(Box::new(pq.open_at(t0()))),
        }
    }

    /// Moves the clock of the bed and of every given connection to `t`.
    fn set_time(&self, conns: &mut [&mut Conn], t: DateTime<Utc>) {
        if let Bed::Sqlite { clock, .. } = self {
            clock.set(t);
        }
        for c in conns {
            if let Conn::Absurd(q) = c {
                q.set_fake_now(Some(t)).unwrap();
            }
        }
    }
}

fn noop(n: u32) -> NewTask {
    NewTask::new("noop", json!({ "n": n }))
}

/// ABSURD's retry vector: base 40 s, factor 3, cap 90 s, 3 attempts → retries after 40 s and 90 s,
/// then failed; nothing is claimable a second early.
fn retry_vector(bed: &Bed) {
    let mut c = bed.open();
    bed.set_time(&mut [&mut c], t0());
    let retry = RetryStrategy::Exponential {
        base_s: 40.0,
        factor: 3.0,
        cap_s: Some(90.0),
    };
    let key = c.spawn(&noop(1).retry(retry).max_attempts(3)).unwrap();
    let mut now = t0();
    let mut delays = Vec::new();
    for attempt in 1..=3u32 {
        let claim = c.claim("w1", CLAIM).unwrap().expect("a due task");
        assert_eq!((claim.lease.task, claim.attempt), (key, attempt));
        assert_eq!(claim.max_attempts, Some(3));
        match c.fail(&claim.lease, "boom", false).unwrap() {
            Failure::Retrying { at, next_attempt } => {
                assert_eq!(next_attempt, attempt + 1);
                delays.push((at - now).num_seconds());
                bed.set_time(&mut [&mut c], at - secs(1));
                assert!(c.claim("w1", CLAIM).unwrap().is_none(), "claimable early");
                now = at;
                bed.set_time(&mut [&mut c], now);
            }
            Failure::Failed => assert_eq!(attempt, 3, "failed for good too early"),
        }
    }
    assert_eq!(delays, vec![40, 90]);
    let view = c.inspect(key).unwrap();
    assert_eq!(view.state, TaskState::Failed);
    assert_eq!(view.attempts, 3);
    assert_eq!(view.runs.len(), 3);
    assert!(view.runs.iter().all(|r| r.state == "failed"
        && r.error.as_deref() == Some("boom")
        && r.worker.as_deref() == Some("w1")));
}

#[test]
fn retry_vector_sqlite() {
    retry_vector(&Bed::sqlite());
}

#[test]
fn retry_vector_absurd() {
    retry_vector(&Bed::absurd("retry_vector"));
}

/// A claim that is not extended expires; another worker gets the next attempt; the first worker's
/// complete is refused; a heartbeat keeps a claim alive; completing twice is accepted.
fn claim_expiry(bed: &Bed) {
    let (mut a, mut b) = (bed.open(), bed.open());
    bed.set_time(&mut [&mut a, &mut b], t0());
    let key = a.spawn(&noop(1).max_attempts(3)).unwrap();
    let first = a.claim("a", CLAIM).unwrap().unwrap();
    bed.set_time(&mut [&mut a, &mut b], t0() + secs(20));
    a.heartbeat(&first.lease, CLAIM).unwrap();
    bed.set_time(&mut [&mut a, &mut b], t0() + secs(49));
    assert!(
        b.claim("b", CLAIM).unwrap().is_none(),
        "a heartbeat kept the claim"
    );
    bed.set_time(&mut [&mut a, &mut b], t0() + secs(50));
    let second = b
        .claim("b", CLAIM)
        .unwrap()
        .expect("the expired claim is offered again");
    assert_eq!((second.lease.task, second.attempt), (key, 2));
    let lost = a.complete(&first.lease, &json!({})).unwrap_err();
    assert!(
        matches!(
            lost,
            QueueError::LeaseLost { .. } | QueueError::ClaimLost { .. }
        ),
        "{lost}"
    );
    assert!(a.heartbeat(&first.lease, CLAIM).is_err());
    b.complete(&second.lease, &json!({ "ok": 1 })).unwrap();
    b.complete(&second.lease, &json!({ "ok": 1 })).unwrap();
    let view = b.inspect(key).unwrap();
    assert_eq!(view.state, TaskState::Completed);
    assert_eq!(view.result, Some(json!({ "ok": 1 })));
    let who: Vec<_> = view.runs.iter().map(|r| r.worker.as_deref()).collect();
    assert_eq!(who, vec![Some("a"), Some("b")]);
    assert_ne!(view.runs[0].state, "completed");
    assert_eq!(view.runs[1].state, "completed");
}

#[test]
fn claim_expiry_sqlite() {
    claim_expiry(&Bed::sqlite());
}

#[test]
fn claim_expiry_absurd() {
    claim_expiry(&Bed::absurd("claim_expiry"));
}

/// Cancel stops a running task (its worker's next heartbeat is refused); retry gives a failed task
/// another attempt.
fn cancel_and_retry(bed: &Bed) {
    let mut c = bed.open();
    bed.set_time(&mut [&mut c], t0());
    let running = c.spawn(&noop(1)).unwrap();
    let claim = c.claim("w", CLAIM).unwrap().unwrap();
    assert!(c.cancel(running, "operator").unwrap());
    assert!(!c.cancel(running, "again").unwrap());
    assert!(c.heartbeat(&claim.lease, CLAIM).is_err());
    assert_eq!(c.inspect(running).unwrap().state, TaskState::Cancelled);

    let failing = c.spawn(&noop(2)).unwrap();
    let claim = c.claim("w", CLAIM).unwrap().unwrap();
    assert_eq!(c.fail(&claim.lease, "bad", false).unwrap(), Failure::Failed);
    c.retry(failing).unwrap();
    let again = c.claim("w", CLAIM).unwrap().expect("retried task is due");
    assert_eq!(again.lease.task, failing);
    c.complete(&again.lease, &json!(null)).unwrap();
    assert_eq!(c.inspect(failing).unwrap().state, TaskState::Completed);
    assert!(c.retry(failing).is_err(), "a completed task is not retried");
}

#[test]
fn cancel_and_retry_sqlite() {
    cancel_and_retry(&Bed::sqlite());
}

#[test]
fn cancel_and_retry_absurd() {
    cancel_and_retry(&Bed::absurd("cancel_retry"));
}

/// Child side of the kill -9 tests: claim one task at t0, say so, then hang until killed.
fn child_worker(spec: &str) -> ! {
    let mut conn = match spec.split_once(':') {
        Some(("sqlite", path)) => {
            let c = contimg::store::Store::open(std::path::Path::new(path))
                .unwrap()
                .conn;
            Conn::Sqlite(Queue::new(c, Arc::new(ManualClock::new(t0()))))
        }
        Some(("absurd", queue)) => {
            let mut q = AbsurdQueue::connect(&pg_url(), queue).unwrap();
            q.set_fake_now(Some(t0())).unwrap();
            Conn::Absurd(Box::new(q))
        }
        _ => panic!("bad child spec {spec}"),
    };
    let claim = conn
        .claim("doomed", CLAIM)
        .unwrap()
        .expect("a task for the child");
    // Straight to the pipe: the test harness may capture print! output.
    let mut out = std::io::stdout().lock();
    writeln!(out, "CLAIMED {} {}", claim.lease.task, claim.attempt).unwrap();
    out.flush().unwrap();
    drop(out);
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// A worker process killed with SIGKILL mid-task: its claim expires and another worker (another
/// "machine": its own process and connection) finishes the task; both attempts are recorded.
fn kill_9_worker(bed: &Bed, test: &str) {
    let mut c = bed.open();
    bed.set_time(&mut [&mut c], t0());
    let key = c.spawn(&noop(7).max_attempts(3)).unwrap();
    let spec = match bed {
        Bed::Sqlite { path, .. } => format!("sqlite:{}", path.display()),
        Bed::Absurd(pq) => format!("absurd:{}", pq.name),
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("CONTIMG_TEST_CHILD", spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let claimed = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.find("CLAIMED ").map(|i| l[i..].to_string()))
        .expect("the child worker claimed the task");
    assert_eq!(claimed, format!("CLAIMED {key} 1"));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    bed.set_time(&mut [&mut c], t0() + secs(29));
    assert!(
        c.claim("rescuer", CLAIM).unwrap().is_none(),
        "claim not yet expired"
    );
    bed.set_time(&mut [&mut c], t0() + secs(30));
    let claim = c
        .claim("rescuer", CLAIM)
        .unwrap()
        .expect("the dead worker's task");
    assert_eq!((claim.lease.task, claim.attempt), (key, 2));
    c.complete(&claim.lease, &json!({ "rescued": true }))
        .unwrap();
    let view = c.inspect(key).unwrap();
    assert_eq!(view.state, TaskState::Completed);
    assert_eq!(view.attempts, 2);
    let runs: Vec<_> = view
        .runs
        .iter()
        .map(|r| {
            (
                r.attempt,
                r.worker.clone().unwrap_or_default(),
                r.state.clone(),
            )
        })
        .collect();
    let expired = if matches!(bed, Bed::Sqlite { .. }) {
        "lease_expired"
    } else {
        "failed"
    };
    assert_eq!(
        runs,
        vec![
            (1, "doomed".to_string(), expired.to_string()),
            (2, "rescuer".to_string(), "completed".to_string())
        ]
    );
}

#[test]
fn kill_9_worker_sqlite() {
    if let Ok(spec) = std::env::var("CONTIMG_TEST_CHILD") {
        child_worker(&spec);
    }
    kill_9_worker(&Bed::sqlite(), "kill_9_worker_sqlite");
}

#[test]
fn kill_9_worker_absurd() {
    if let Ok(spec) = std::env::var("CONTIMG_TEST_CHILD") {
        child_worker(&spec);
    }
    let bed = Bed::absurd("kill_9");
    kill_9_worker(&bed, "kill_9_worker_absurd");
    // ABSURD recorded why the first run failed, in its own words.
    let Bed::Absurd(pq) = &bed else {
        unreachable!()
    };
    let reason: Value = raw_client(&pg_url())
        .query_one(
            &format!(
                "SELECT failure_reason FROM absurd.\"r_{}\" WHERE attempt = 1",
                pq.name
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(reason["name"], "$ClaimTimeout", "{reason}");
    assert_eq!(reason["workerId"], "doomed");
}

// ---- ABSURD specifics: spawn options, peers, bad input ----

#[test]
fn contimg_tasks_carry_absurd_options_and_headers() {
    let pq = PgQueue::new("options");
    let mut q = pq.open_at(t0());
    let task = noop(3)
        .pipeline("nightly_mosaic")
        .execution(42)
        .job_id("build")
        .priority(5)
        .timeout_s(600.0)
        .max_attempts(3)
        .retry(RetryStrategy::Exponential {
            base_s: 40.0,
            factor: 3.0,
            cap_s: Some(90.0),
        });
    let key = q.spawn(&task).unwrap();
    assert_eq!(
        q.spawn(&task).unwrap(),
        key,
        "the idempotency key returns the same task"
    );
    let TaskKey::Absurd(id) = key else {
        panic!("not an ABSURD key")
    };
    let row = raw_client(&pg_url())
        .query_one(
            &format!(
                "SELECT task_name, params, headers, retry_strategy, max_attempts, idempotency_key
                   FROM absurd.\"t_{}\" WHERE task_id = $1",
                pq.name
            ),
            &[&id],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "noop");
    assert_eq!(row.get::<_, Value>(1), json!({ "n": 3 }));
    let headers: Value = row.get(2);
    assert_eq!(headers["pipeline"], "nightly_mosaic");
    assert_eq!(headers["execution"], 42);
    assert_eq!(headers["job"], "build");
    assert_eq!(headers["priority"], 5);
    assert_eq!(headers["timeout_s"], 600.0);
    assert_eq!(
        row.get::<_, Value>(3),
        json!({ "kind": "exponential", "base_seconds": 40.0, "factor": 3.0, "max_seconds": 90.0 })
    );
    assert_eq!(row.get::<_, i32>(4), 3);
    assert_eq!(row.get::<_, String>(5), "contimg:42:build");
    let claim = q.claim("w", CLAIM).unwrap().unwrap();
    assert_eq!(claim.timeout_s, Some(600.0));
    assert_eq!(claim.claim_expires_at, t0() + secs(30));

    // What ABSURD cannot express is refused, not dropped.
    let err = q
        .spawn(&noop(4).retry(RetryStrategy::Fixed { delay_s: 90_000.0 }))
        .unwrap_err();
    assert!(
        err.to_string().contains("longer than ABSURD allows"),
        "{err}"
    );
    let err = q
        .spawn(&noop(5).depends_on([contimg::queue::TaskId(1)]))
        .unwrap_err();
    assert!(err.to_string().contains("ABSURD has neither"), "{err}");
}

fn peer(args: &[&str]) -> Value {
    let out = Command::new(common::python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/py/absurd_peer.py"
        ))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}); install Python 3", common::python()));
    assert!(
        out.status.success(),
        "absurd_peer.py {args:?} failed (is absurd-sdk installed? pip install absurd-sdk): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    if s.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("peer printed no JSON ({e}): {s}"))
    }
}

#[test]
fn python_sdk_sees_contimg_tasks_and_its_cancel_and_retry_are_seen() {
    let pq = PgQueue::new("py_peer");
    let url = pg_url();
    let mut q = AbsurdQueue::connect(&url, &pq.name).unwrap();

    // The SDK's worker runs a task contimg spawned and sees its name, params and headers.
    let key = q
        .spawn(
            &NewTask::new("py_job", json!({ "field": "A" }))
                .pipeline("p")
                .execution(9)
                .job_id("qa"),
        )
        .unwrap();
    let seen = peer(&["work", &url, &pq.name, "py_job", "py-1"]);
    assert_eq!(seen["claimed"], 1, "{seen}");
    assert_eq!(seen["seen"][0]["params"], json!({ "field": "A" }));
    let h = &seen["seen"][0]["headers"];
    assert_eq!(
        (
            h["pipeline"].as_str(),
            h["execution"].as_i64(),
            h["job"].as_str()
        ),
        (Some("p"), Some(9), Some("qa"))
    );
    let view = q.inspect(key).unwrap();
    assert_eq!(view.state, TaskState::Completed);
    assert_eq!(view.result, Some(json!({ "by": "py-1" })));
    assert_eq!(view.runs[0].worker.as_deref(), Some("py-1"));

    // A cancel from Python: contimg's worker holding the task is told to stop.
    let key = q.spawn(&noop(1)).unwrap();
    let claim = q.claim("contimg-w", CLAIM).unwrap().unwrap();
    peer(&["cancel", &url, &pq.name, &key.to_string()]);
    assert_eq!(q.inspect(key).unwrap().state, TaskState::Cancelled);
    let err = q.heartbeat(&claim.lease, CLAIM).unwrap_err();
    assert!(matches!(err, QueueError::ClaimLost { .. }), "{err}");
    assert!(err.to_string().contains("cancelled"), "{err}");

    // A retry from Python of a task that failed in contimg: contimg claims it again.
    let key = q.spawn(&noop(2)).unwrap();
    let claim = q.claim("contimg-w", CLAIM).unwrap().unwrap();
    assert_eq!(q.fail(&claim.lease, "bad", false).unwrap(), Failure::Failed);
    peer(&["retry", &url, &pq.name, &key.to_string()]);
    let again = q
        .claim("contimg-w", CLAIM)
        .unwrap()
        .expect("retried by Python");
    assert_eq!((again.lease.task, again.attempt), (key, 2));
}

/// contimg workers (threads, own connections) and Python SDK workers (processes) on one queue:
/// every task is done exactly once.
#[test]
fn mixed_race_with_python_workers_does_every_task_once() {
    const N: u32 = 300;
    let pq = PgQueue::new("race");
    let url = pg_url();
    let mut q = AbsurdQueue::connect(&url, &pq.name).unwrap();
    let keys: Vec<TaskKey> = (0..N).map(|i| q.spawn(&noop(i)).unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let go_s = go.to_string_lossy().to_string();
    let mut pythons: Vec<_> = (0..2)
        .map(|i| {
            Command::new(common::python())
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/py/absurd_peer.py"
                ))
                .args(["race", &url, &pq.name, "noop", &format!("py-{i}"), &go_s])
                .stdout(Stdio::piped())
                .spawn()
                .expect("python for the SDK peers")
        })
        .collect();
    // Both Python workers connected before anyone starts, so that both sides race.
    for (i, p) in pythons.iter_mut().enumerate() {
        let ready = dir.path().join(format!("go.py-{i}.ready"));
        while !ready.exists() {
            assert!(
                p.try_wait().unwrap().is_none(),
                "Python worker {i} exited early"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::fs::write(&go, "").unwrap();
    let rust: Vec<_> = (0..2)
        .map(|i| {
            let (url, queue) = (url.clone(), pq.name.clone());
            std::thread::spawn(move || {
                let mut q = AbsurdQueue::connect(&url, &queue).unwrap();
                let worker = format!("contimg-{i}");
                let mut done = Vec::new();
                while let Some(c) = q.claim(&worker, CLAIM).unwrap() {
                    std::thread::sleep(Duration::from_millis(2));
                    q.complete(&c.lease, &json!({ "by": worker })).unwrap();
                    done.push(c.lease.task.to_string());
                }
                done
            })
        })
        .collect();
    let mut done: Vec<String> = rust.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let by_contimg = done.len();
    for p in pythons {
        let out = p.wait_with_output().unwrap();
        assert!(out.status.success(), "a Python worker failed");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        done.extend(
            v["done"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string()),
        );
    }
    let by_python = done.len() - by_contimg;
    assert!(
        by_contimg > 0 && by_python > 0,
        "both sides worked: {by_contimg} / {by_python}"
    );
    let mut sorted = done.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), done.len(), "a task was done twice");
    assert_eq!(done.len(), N as usize, "every task done");
    for k in keys {
        let v = q.inspect(k).unwrap();
        assert_eq!(v.state, TaskState::Completed);
        assert_eq!(v.runs.len(), 1, "task {k} ran more than once");
        assert_eq!(
            v.result.as_ref().unwrap()["by"].as_str(),
            v.runs[0].worker.as_deref()
        );
    }
}

#[test]
fn bad_servers_give_one_line_errors_with_the_password_masked() {
    let one_line = |e: &QueueError| {
        let s = e.to_string();
        assert!(!s.contains('\n'), "not one line: {s}");
        s
    };
    let e = AbsurdQueue::connect("postgres://contimg:hunter2@127.0.0.1:1/contimg", "contimg")
        .err()
        .expect("nothing listens on port 1");
    let s = one_line(&e);
    assert!(
        s.contains("postgres://contimg:***@127.0.0.1:1/contimg"),
        "{s}"
    );
    assert!(
        !s.contains("hunter2") && s.contains("is the server running"),
        "{s}"
    );

    let url = pg_url();
    let wrong = {
        let start = url.find("://contimg:").unwrap() + "://contimg:".len();
        let end = url.find('@').unwrap();
        format!("{}not-the-password{}", &url[..start], &url[end..])
    };
    let s = one_line(&AbsurdQueue::connect(&wrong, "contimg").err().unwrap());
    assert!(
        s.contains("refused the login") && !s.contains("not-the-password"),
        "{s}"
    );

    let missing_db = url.replace("@/contimg?", "@/no_such_database?");
    let s = one_line(&AbsurdQueue::connect(&missing_db, "contimg").err().unwrap());
    assert!(
        s.contains("database does not exist") && s.contains("***"),
        "{s}"
    );

    // The admin database has no ABSURD schema: the message says what to run.
    let admin = env_var("CONTIMG_TEST_PG_ADMIN");
    let s = one_line(&AbsurdQueue::connect(&admin, "contimg").err().unwrap());
    assert!(s.contains("absurdctl init --database"), "{s}");

    // An ABSURD version contimg does not know is refused before anything is touched.
    let db = format!("contimg_future_absurd_{}", std::process::id());
    let mut adm = raw_client(&admin);
    adm.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .unwrap();
    adm.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    let future = admin.replace("/postgres?", &format!("/{db}?"));
    raw_client(&future)
        .batch_execute(
            "CREATE SCHEMA absurd;
             CREATE FUNCTION absurd.get_schema_version() RETURNS text LANGUAGE sql AS $$ SELECT '9.9.9' $$;
             CREATE FUNCTION absurd.claim_task(text, text, integer, integer) RETURNS void
               LANGUAGE sql AS $$ SELECT $$;",
        )
        .unwrap();
    let r = AbsurdQueue::connect(&future, "contimg");
    adm.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .unwrap();
    let s = one_line(&r.err().unwrap());
    assert!(s.contains("9.9.9") && s.contains("0.5.1"), "{s}");

    let s = one_line(&AbsurdQueue::connect("mysql://x", "contimg").err().unwrap());
    assert!(s.contains("postgres://"), "{s}");
    let s = one_line(&AbsurdQueue::connect(&url, "Bad-Name").err().unwrap());
    assert!(s.contains("lowercase"), "{s}");
}

/// A worker whose connection is cut mid-task gets a one-line error, and its task is offered again
/// by ABSURD's claim rules: never lost.
#[test]
fn lost_connection_mid_task_is_reported_and_the_task_retried() {
    let pq = PgQueue::new("lost_conn");
    let app = format!("lostconn{}", std::process::id());
    let url = format!("{}&application_name={app}", pg_url());
    let mut q = AbsurdQueue::connect(&url, &pq.name).unwrap();
    q.set_fake_now(Some(t0())).unwrap();
    let key = q.spawn(&noop(1).max_attempts(2)).unwrap();
    let claim = q.claim("victim", CLAIM).unwrap().unwrap();
    let killed: i64 = raw_client(&env_var("CONTIMG_TEST_PG_ADMIN"))
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    let e = q.complete(&claim.lease, &json!({})).unwrap_err();
    let s = e.to_string();
    assert!(
        !s.contains('\n') && s.contains("***") && !s.contains(&pg_url()),
        "{s}"
    );
    assert!(
        matches!(e, QueueError::Pg(contimg::pg::PgError::Postgres { .. })),
        "{s}"
    );

    let mut other = pq.open_at(t0() + secs(30));
    let again = other
        .claim("survivor", CLAIM)
        .unwrap()
        .expect("the task is not lost");
    assert_eq!((again.lease.task, again.attempt), (key, 2));
}

#[test]
fn sslmode_require_connects_over_tls() {
    let url = format!(
        "{}&application_name=tls{}",
        env_var("CONTIMG_TEST_PG_TLS"),
        std::process::id()
    );
    env_var("PGSSLROOTCERT");
    let pq = PgQueue::new("tls");
    let mut q = AbsurdQueue::connect(&url, &pq.name).expect("TLS connection");
    q.now().unwrap();
    let ssl: bool = raw_client(&env_var("CONTIMG_TEST_PG_ADMIN"))
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE a.application_name = $1",
            &[&format!("tls{}", std::process::id())],
        )
        .unwrap()
        .get(0);
    assert!(ssl);
}
