//! The durable queue on real SQLite files: retry timing (ABSURD's vector), priorities, dependencies, leases,
//! cancel/retry, and two OS processes racing over the same database. Time is a ManualClock: nothing sleeps
//! except the process race, which runs on the system clock.

// A test or example reports on stdout, which its harness captures; only the binary is held to
// "stdout carries manifests only".
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use contimg::queue::{
    AttemptOutcome, Clock, FailOutcome, ManualClock, NewTask, Queue, QueueError, RetryStrategy,
    SystemClock, TaskId, TaskState,
};
use rusqlite::Connection;
use serde_json::json;

const LEASE: StdDuration = StdDuration::from_secs(60);

/// Opens the database through the store: every migration, the store's pragmas.
fn open_db(path: &Path) -> Connection {
    contimg::store::Store::open(path)
        .expect("open test database")
        .conn
}

fn init_db(path: &Path) -> Connection {
    open_db(path)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    clock: Arc<ManualClock>,
    q: Queue,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pipeline.sqlite3");
    let clock = Arc::new(ManualClock::new(t0()));
    let q = Queue::new(init_db(&path), clock.clone());
    Fixture {
        _dir: dir,
        path,
        clock,
        q,
    }
}

impl Fixture {
    /// A second queue (own connection) on the same file and clock: another worker.
    fn other(&self) -> Queue {
        Queue::new(open_db(&self.path), self.clock.clone())
    }

    fn execution(&self, name: &str) -> i64 {
        let c = self.q.connection();
        c.execute(
            "INSERT INTO pipeline_executions (pipeline_name, status) VALUES (?1, 'running')",
            [name],
        )
        .unwrap();
        c.last_insert_rowid()
    }
}

fn secs(s: i64) -> Duration {
    Duration::seconds(s)
}

#[test]
fn absurd_vector_exponential_40_3_90() {
    let f = fixture();
    let retry = RetryStrategy::Exponential {
        base_s: 40.0,
        factor: 3.0,
        cap_s: Some(90.0),
    };
    // max_retries = 2 ⇔ exactly 3 attempts.
    let id =
        f.q.spawn(
            &NewTask::new("flaky", json!({"x": 1}))
                .retry(retry)
                .max_retries(2),
        )
        .unwrap();
    assert_eq!(f.q.task(id).unwrap().max_attempts, 3);

    let c1 = f.q.claim("w", LEASE).unwrap().expect("attempt 1");
    assert_eq!(
        (c1.id(), c1.attempt, c1.params.clone()),
        (id, 1, json!({"x": 1}))
    );
    let o1 = f.q.fail(&c1.lease, "boom 1", false).unwrap();
    assert_eq!(
        o1,
        FailOutcome::Retrying {
            at: t0() + secs(40),
            next_attempt: 2
        }
    );
    let info = f.q.task(id).unwrap();
    assert_eq!(info.state, TaskState::Sleeping);
    assert_eq!(info.next_retry_at(), Some(t0() + secs(40)));
    assert_eq!(info.error.as_deref(), Some("boom 1"));

    f.clock.set(t0() + secs(39));
    assert!(f.q.claim("w", LEASE).unwrap().is_none(), "not before +40 s");
    f.clock.set(t0() + secs(40));
    let c2 = f.q.claim("w", LEASE).unwrap().expect("attempt 2 at +40 s");
    assert_eq!(c2.attempt, 2);
    // 40 · 3 = 120 s, capped at 90 s.
    let o2 = f.q.fail(&c2.lease, "boom 2", false).unwrap();
    assert_eq!(
        o2,
        FailOutcome::Retrying {
            at: t0() + secs(130),
            next_attempt: 3
        }
    );
    f.clock.set(t0() + secs(129));
    assert!(f.q.claim("w", LEASE).unwrap().is_none(), "not before +90 s");
    f.clock.set(t0() + secs(130));
    let c3 = f.q.claim("w", LEASE).unwrap().expect("attempt 3");
    assert_eq!(c3.attempt, 3);
    assert!(c3.is_last_attempt());
    assert_eq!(
        f.q.fail(&c3.lease, "boom 3", false).unwrap(),
        FailOutcome::Failed { cancelled: vec![] }
    );
    f.clock.set(t0() + secs(100_000));
    assert!(f.q.claim("w", LEASE).unwrap().is_none(), "failed for good");

    let info = f.q.task(id).unwrap();
    assert_eq!(info.state, TaskState::Failed);
    assert_eq!(info.attempts, 3);
    assert_eq!(info.error.as_deref(), Some("boom 3"));
    assert_eq!(info.finished_at, Some(t0() + secs(130)));
    let atts = f.q.attempts(id).unwrap();
    assert_eq!(
        atts.iter()
            .map(|a| (a.attempt, a.outcome, a.error.clone().unwrap(), a.started_at))
            .collect::<Vec<_>>(),
        vec![
            (1, AttemptOutcome::Failed, "boom 1".into(), t0()),
            (2, AttemptOutcome::Failed, "boom 2".into(), t0() + secs(40)),
            (3, AttemptOutcome::Failed, "boom 3".into(), t0() + secs(130)),
        ]
    );
}

#[test]
fn retry_delay_formula() {
    let r = RetryStrategy::Exponential {
        base_s: 40.0,
        factor: 3.0,
        cap_s: Some(90.0),
    };
    assert_eq!(r.delay_secs(1), 40.0);
    assert_eq!(r.delay_secs(2), 90.0);
    assert_eq!(r.delay_secs(3), 90.0);
    assert_eq!(r.delay_secs(1000), 90.0, "overflow falls back to the cap");
    let uncapped = RetryStrategy::Exponential {
        base_s: 2.0,
        factor: 2.0,
        cap_s: None,
    };
    assert_eq!(
        (1..=4).map(|n| uncapped.delay_secs(n)).collect::<Vec<_>>(),
        vec![2.0, 4.0, 8.0, 16.0]
    );
    assert_eq!(RetryStrategy::Fixed { delay_s: 7.5 }.delay_secs(9), 7.5);
    assert_eq!(RetryStrategy::None.delay_secs(3), 0.0);
    assert!(
        RetryStrategy::Exponential {
            base_s: 1.0,
            factor: 0.5,
            cap_s: None
        }
        .validate()
        .is_err()
    );
    assert!(
        RetryStrategy::Fixed { delay_s: f64::NAN }
            .validate()
            .is_err()
    );
    assert!(RetryStrategy::Fixed { delay_s: -1.0 }.validate().is_err());
}

#[test]
fn retry_strategy_reads_toml_and_json() {
    #[derive(serde::Deserialize)]
    struct Cfg {
        retry: RetryStrategy,
    }
    let c: Cfg =
        toml::from_str("retry = { kind = \"exponential\", base_s = 40, factor = 3, cap_s = 90 }")
            .unwrap();
    assert_eq!(
        c.retry,
        RetryStrategy::Exponential {
            base_s: 40.0,
            factor: 3.0,
            cap_s: Some(90.0)
        }
    );
    let c: Cfg = toml::from_str("[retry]\nkind = \"fixed\"\ndelay_s = 30\n").unwrap();
    assert_eq!(c.retry, RetryStrategy::Fixed { delay_s: 30.0 });
    let c: Cfg = toml::from_str("retry = { kind = \"none\" }").unwrap();
    assert_eq!(c.retry, RetryStrategy::None);
    assert!(toml::from_str::<Cfg>("retry = { kind = \"linear\" }").is_err());
    assert!(toml::from_str::<Cfg>("retry = { kind = \"fixed\", delay = 3 }").is_err());
    let r = RetryStrategy::Exponential {
        base_s: 1.5,
        factor: 2.0,
        cap_s: None,
    };
    let j = serde_json::to_value(r).unwrap();
    assert_eq!(
        j,
        json!({"kind": "exponential", "base_s": 1.5, "factor": 2.0})
    );
    assert_eq!(serde_json::from_value::<RetryStrategy>(j).unwrap(), r);
}

#[test]
fn fixed_and_none_strategies() {
    let f = fixture();
    let fixed =
        f.q.spawn(
            &NewTask::new("fixed", json!({}))
                .retry(RetryStrategy::Fixed { delay_s: 30.0 })
                .max_attempts(2),
        )
        .unwrap();
    let c = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!(c.id(), fixed);
    f.clock.advance(secs(5));
    assert_eq!(
        f.q.fail(&c.lease, "e", false).unwrap(),
        FailOutcome::Retrying {
            at: t0() + secs(35),
            next_attempt: 2
        }
    );
    f.clock.set(t0() + secs(35) - Duration::milliseconds(1));
    assert!(f.q.claim("w", LEASE).unwrap().is_none());
    f.clock.set(t0() + secs(35));
    let c = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!((c.id(), c.attempt), (fixed, 2));
    assert!(matches!(
        f.q.fail(&c.lease, "e2", true).unwrap(),
        FailOutcome::Failed { .. }
    ));
    assert_eq!(
        f.q.attempts(fixed).unwrap()[1].outcome,
        AttemptOutcome::TimedOut
    );

    // None: retried at once while attempts remain; one attempt means no retry at all.
    let none =
        f.q.spawn(&NewTask::new("none", json!({})).max_attempts(2))
            .unwrap();
    f.clock.advance(secs(1));
    let once = f.q.spawn(&NewTask::new("once", json!({}))).unwrap();
    f.clock.advance(secs(1));
    let c = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!(c.id(), none);
    let now = f.clock.now();
    assert_eq!(
        f.q.fail(&c.lease, "e", false).unwrap(),
        FailOutcome::Retrying {
            at: now,
            next_attempt: 2
        }
    );
    // Same priority: `none` is due again at `now`, `once` was due a second earlier (FIFO by available_at,
    // although `none` has the smaller id).
    let c = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!(c.id(), once);
    assert_eq!(
        f.q.fail(&c.lease, "e", false).unwrap(),
        FailOutcome::Failed { cancelled: vec![] }
    );
    let c = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!((c.id(), c.attempt), (none, 2));
}

#[test]
fn priority_then_available_at_then_id() {
    let f = fixture();
    let at = |s| t0() + secs(s);
    let spawn = |name: &str, prio: i64, avail: Option<DateTime<Utc>>| {
        let mut t = NewTask::new(name, json!({})).priority(prio);
        if let Some(a) = avail {
            t = t.available_at(a);
        }
        f.q.spawn(&t).unwrap()
    };
    let low_a = spawn("low_a", 0, Some(at(-10)));
    let high_b = spawn("high_b", 5, Some(at(-1)));
    let high_a = spawn("high_a", 5, Some(at(-5)));
    let mid = spawn("mid", 1, None);
    let low_b = spawn("low_b", 0, Some(at(-20)));
    let low_c = spawn("low_c", 0, Some(at(-20)));
    let future = spawn("future", 100, Some(at(60)));

    let mut order = Vec::new();
    while let Some(c) = f.q.claim("w", LEASE).unwrap() {
        f.q.complete(&c.lease, &json!(null)).unwrap();
        order.push(c.id());
    }
    assert_eq!(order, vec![high_a, high_b, mid, low_b, low_c, low_a]);
    assert_eq!(f.q.next_wakeup().unwrap(), Some(at(60)));
    f.clock.set(at(60));
    assert_eq!(f.q.claim("w", LEASE).unwrap().unwrap().id(), future);
}

#[test]
fn dependencies_gate_claims_and_failure_cancels_dependents_transitively() {
    let f = fixture();
    let a = f.q.spawn(&NewTask::new("a", json!({}))).unwrap();
    let b =
        f.q.spawn(&NewTask::new("b", json!({})).priority(10).depends_on([a]))
            .unwrap();
    let c =
        f.q.spawn(&NewTask::new("c", json!({})).priority(10).depends_on([b, a]))
            .unwrap();
    assert_eq!(f.q.task(c).unwrap().depends_on, vec![a, b]);

    let ca = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!(ca.id(), a, "b and c outrank a but wait for it");
    assert!(
        f.q.claim("w", LEASE).unwrap().is_none(),
        "b waits while a runs"
    );
    f.q.complete(&ca.lease, &json!({"out": 1})).unwrap();
    let cb = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!(cb.id(), b);
    assert!(f.q.claim("w", LEASE).unwrap().is_none(), "c waits for b");
    f.q.complete(&cb.lease, &json!({})).unwrap();
    assert_eq!(f.q.claim("w", LEASE).unwrap().unwrap().id(), c);

    // Failure for good of the root cancels the whole chain below it, and nothing else.
    let a2 =
        f.q.spawn(&NewTask::new("a2", json!({})).priority(1))
            .unwrap();
    let b2 =
        f.q.spawn(&NewTask::new("b2", json!({})).depends_on([a2]))
            .unwrap();
    let c2 =
        f.q.spawn(&NewTask::new("c2", json!({})).depends_on([b2]))
            .unwrap();
    let d = f.q.spawn(&NewTask::new("d", json!({}))).unwrap();
    let c = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!(c.id(), a2);
    assert_eq!(
        f.q.fail(&c.lease, "disk full", false).unwrap(),
        FailOutcome::Failed {
            cancelled: vec![b2, c2]
        }
    );
    for t in [b2, c2] {
        let i = f.q.task(t).unwrap();
        assert_eq!(i.state, TaskState::Cancelled);
        assert!(i.error.unwrap().contains("disk full"));
    }
    // A task spawned later on the failed one is cancelled at once.
    let late =
        f.q.spawn(&NewTask::new("late", json!({})).depends_on([c2]))
            .unwrap();
    assert_eq!(f.q.task(late).unwrap().state, TaskState::Cancelled);
    f.clock.advance(secs(3600));
    // c's lease expired meanwhile: an interruption, not a failure, so c (priority 10) is due again
    // at once although it had no retries.
    let again = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!((again.kind.as_str(), again.attempt), ("c", 2));
    f.q.complete(&again.lease, &json!({})).unwrap();
    let c = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!(c.id(), d);
    f.q.complete(&c.lease, &json!({})).unwrap();
    assert!(f.q.claim("w", LEASE).unwrap().is_none());
    assert!(f.q.counts(None).unwrap().is_finished());

    // Dependencies must exist.
    let err =
        f.q.spawn(&NewTask::new("x", json!({})).depends_on([TaskId(9999)]))
            .unwrap_err();
    assert!(
        matches!(err, QueueError::InvalidTask(ref m) if m.contains("9999")),
        "{err}"
    );
}

#[test]
fn expired_lease_is_an_interruption_and_the_stale_worker_is_refused() {
    let f = fixture();
    let w2 = f.other();
    let id =
        f.q.spawn(
            &NewTask::new("slow", json!({}))
                .retry(RetryStrategy::Fixed { delay_s: 10.0 })
                .max_attempts(3),
        )
        .unwrap();
    let c1 = f.q.claim("w1", LEASE).unwrap().unwrap();
    assert_eq!(c1.lease_expires_at, t0() + secs(60));
    f.q.set_log_path(&c1.lease, "logs/slow-1.log").unwrap();

    // Heartbeats keep the lease alive past its first expiry.
    f.clock.advance(secs(50));
    assert_eq!(f.q.heartbeat(&c1.lease, LEASE).unwrap(), t0() + secs(110));
    f.clock.set(t0() + secs(100));
    assert!(w2.claim("w2", LEASE).unwrap().is_none(), "lease still held");
    assert_eq!(f.q.task(id).unwrap().state, TaskState::Running);

    // w1 goes silent; the lease passes; the reaper ends its attempt as an interruption: due
    // again at once (no retry delay), no attempt of the task's three spent.
    f.clock.set(t0() + secs(111));
    assert_eq!(
        f.q.reap_expired().unwrap(),
        vec![(
            id,
            FailOutcome::Retrying {
                at: t0() + secs(111),
                next_attempt: 2
            }
        )]
    );
    let info = f.q.task(id).unwrap();
    assert_eq!(info.state, TaskState::Sleeping);
    assert_eq!(info.next_retry_at(), Some(t0() + secs(111)));
    let a = &f.q.attempts(id).unwrap()[0];
    assert_eq!(a.outcome, AttemptOutcome::LeaseExpired);
    assert!(
        a.error.as_deref().unwrap().contains("lease expired"),
        "{a:?}"
    );
    assert_eq!(a.ended_at, Some(t0() + secs(111)));
    assert_eq!(a.log_path.as_deref(), Some("logs/slow-1.log"));

    // The stale worker changes nothing.
    for r in [
        f.q.complete(&c1.lease, &json!({"from": "w1"})).map(|_| ()),
        f.q.fail(&c1.lease, "late", false).map(|_| ()),
        f.q.heartbeat(&c1.lease, LEASE).map(|_| ()),
    ] {
        assert!(matches!(r, Err(QueueError::LeaseLost { .. })), "{r:?}");
    }
    assert_eq!(f.q.task(id).unwrap(), info);

    f.clock.set(t0() + secs(121));
    let c2 = w2.claim("w2", LEASE).unwrap().unwrap();
    assert_eq!((c2.id(), c2.attempt), (id, 2));
    let err = f.q.complete(&c1.lease, &json!({"from": "w1"})).unwrap_err();
    match &err {
        QueueError::LeaseLost { state, holder, .. } => {
            assert_eq!(
                (*state, holder.as_deref()),
                (TaskState::Running, Some("w2"))
            );
        }
        e => panic!("expected LeaseLost, got {e}"),
    }
    // A forged lease (right attempt, wrong worker) is refused too.
    let mut forged = c2.lease.clone();
    forged.worker_id = "w1".into();
    assert!(matches!(
        f.q.complete(&forged, &json!({})),
        Err(QueueError::LeaseLost { .. })
    ));
    w2.complete(&c2.lease, &json!({"from": "w2"})).unwrap();
    // Completing again is accepted and changes nothing.
    f.clock.advance(secs(5));
    w2.complete(&c2.lease, &json!({"from": "again"})).unwrap();
    let info = f.q.task(id).unwrap();
    assert_eq!(info.state, TaskState::Completed);
    assert_eq!(info.result, Some(json!({"from": "w2"})));
    assert_eq!(info.finished_at, Some(t0() + secs(121)));
    assert_eq!(info.duration(f.clock.now()), Some(secs(121)));
    assert!(matches!(
        f.q.complete(&c1.lease, &json!({})),
        Err(QueueError::LeaseLost { .. })
    ));
    let outcomes: Vec<_> =
        f.q.attempts(id)
            .unwrap()
            .iter()
            .map(|a| (a.worker_id.clone(), a.outcome))
            .collect();
    assert_eq!(
        outcomes,
        vec![
            ("w1".to_string(), AttemptOutcome::LeaseExpired),
            ("w2".to_string(), AttemptOutcome::Completed)
        ]
    );
}

#[test]
fn expired_leases_spend_no_attempt_until_too_many_interruptions() {
    let f = fixture();
    let a = f.q.spawn(&NewTask::new("a", json!({}))).unwrap();
    let b =
        f.q.spawn(&NewTask::new("b", json!({})).depends_on([a]))
            .unwrap();
    // One attempt allowed (no retries), yet every expired lease is taken over at once ...
    for n in 1..=contimg::queue::MAX_INTERRUPTIONS {
        let c = f.q.claim("w1", StdDuration::from_secs(5)).unwrap().unwrap();
        assert_eq!((c.id(), c.attempt), (a, n));
        f.clock.advance(secs(5));
        assert!(matches!(
            f.q.reap_expired().unwrap()[..],
            [(t, FailOutcome::Retrying { .. })] if t == a
        ));
    }
    // ... until a task that keeps losing its workers has been interrupted too often.
    let c = f.q.claim("w1", StdDuration::from_secs(5)).unwrap().unwrap();
    f.clock.advance(secs(5));
    let reaped = f.q.reap_expired().unwrap();
    assert_eq!(
        reaped,
        vec![(a, FailOutcome::Failed { cancelled: vec![b] })]
    );
    assert!(matches!(
        f.q.complete(&c.lease, &json!({})),
        Err(QueueError::LeaseLost {
            state: TaskState::Failed,
            ..
        })
    ));
    assert_eq!(f.q.task(b).unwrap().state, TaskState::Cancelled);
}

#[test]
fn cancel_execution_then_retry_failed_keeps_completed_work() {
    let f = fixture();
    let exec = f.execution("nightly_mosaic");
    let other_exec = f.execution("on_demand_mosaic");
    let (plan, build, qa) =
        f.q.spawn_batch(|b| {
            let plan = b.spawn(
                &NewTask::new("mosaic_plan", json!({}))
                    .execution(exec)
                    .job_id("plan"),
            )?;
            let build = b.spawn(
                &NewTask::new("mosaic_build", json!({"plan": "${plan.manifest}"}))
                    .execution(exec)
                    .job_id("build")
                    .depends_on([plan])
                    .max_retries(2)
                    .timeout_s(1800.0),
            )?;
            let qa = b.spawn(
                &NewTask::new("mosaic_qa", json!({}))
                    .execution(exec)
                    .job_id("qa")
                    .depends_on([build]),
            )?;
            Ok((plan, build, qa))
        })
        .unwrap();
    let unrelated =
        f.q.spawn(
            &NewTask::new("mosaic_plan", json!({}))
                .execution(other_exec)
                .job_id("plan"),
        )
        .unwrap();
    assert_eq!(f.q.find_task(exec, "build").unwrap().unwrap().id, build);

    let c = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!(c.id(), plan);
    f.q.complete(&c.lease, &json!({"manifest": "plan.json"}))
        .unwrap();
    let c = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!((c.id(), c.timeout_s), (build, Some(1800.0)));

    f.clock.advance(secs(30));
    let mut cancelled = f.q.cancel_execution(exec).unwrap();
    cancelled.sort();
    assert_eq!(cancelled, vec![build, qa]);
    assert!(matches!(
        f.q.heartbeat(&c.lease, LEASE),
        Err(QueueError::LeaseLost {
            state: TaskState::Cancelled,
            ..
        })
    ));
    assert!(f.q.complete(&c.lease, &json!({})).is_err());
    assert_eq!(
        f.q.attempts(build).unwrap()[0].outcome,
        AttemptOutcome::Cancelled
    );
    assert_eq!(f.q.task(unrelated).unwrap().state, TaskState::Pending);
    let counts = f.q.counts(Some(exec)).unwrap();
    assert_eq!(
        (counts.completed, counts.cancelled, counts.total()),
        (1, 2, 3)
    );
    assert!(counts.is_finished());

    let mut reset = f.q.retry_failed(exec).unwrap();
    reset.sort();
    assert_eq!(reset, vec![build, qa]);
    let p = f.q.task(plan).unwrap();
    assert_eq!(
        (p.state, p.result.clone()),
        (TaskState::Completed, Some(json!({"manifest": "plan.json"})))
    );
    let bi = f.q.task(build).unwrap();
    assert_eq!(
        (bi.state, bi.attempts, bi.generation, bi.error.clone()),
        (TaskState::Pending, 0, 2, None)
    );

    // The plan is not re-run: the next claims are the unrelated plan (older available_at) and the build.
    let mut seen = Vec::new();
    while let Some(c) = f.q.claim("w", LEASE).unwrap() {
        seen.push((c.id(), c.attempt, c.generation));
        if c.id() == build && c.generation == 2 && c.attempt == 1 {
            f.q.fail(&c.lease, "reproject failed", false).unwrap();
        } else {
            f.q.complete(&c.lease, &json!({})).unwrap();
        }
    }
    assert_eq!(
        seen,
        vec![(unrelated, 1, 1), (build, 1, 2), (build, 2, 2), (qa, 1, 2)]
    );
    assert!(f.q.counts(Some(exec)).unwrap().completed == 3);
    let atts = f.q.attempts(build).unwrap();
    assert_eq!(
        atts.iter()
            .map(|a| (a.generation, a.attempt, a.outcome))
            .collect::<Vec<_>>(),
        vec![
            (1, 1, AttemptOutcome::Cancelled),
            (2, 1, AttemptOutcome::Failed),
            (2, 2, AttemptOutcome::Completed)
        ]
    );
    let tasks = f.q.tasks_of_execution(exec).unwrap();
    assert_eq!(
        tasks.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![plan, build, qa]
    );
}

#[test]
fn retry_failed_after_final_failure_gives_fresh_attempts() {
    let f = fixture();
    let exec = f.execution("p");
    let a =
        f.q.spawn(&NewTask::new("a", json!({})).execution(exec).max_attempts(2))
            .unwrap();
    let b =
        f.q.spawn(&NewTask::new("b", json!({})).execution(exec).depends_on([a]))
            .unwrap();
    for _ in 0..2 {
        let c = f.q.claim("w", LEASE).unwrap().unwrap();
        f.q.fail(&c.lease, "nope", false).unwrap();
    }
    assert_eq!(f.q.task(a).unwrap().state, TaskState::Failed);
    assert_eq!(f.q.task(b).unwrap().state, TaskState::Cancelled);
    assert_eq!(f.q.retry_failed(exec).unwrap(), vec![a, b]);
    let c = f.q.claim("w", LEASE).unwrap().unwrap();
    assert_eq!((c.id(), c.attempt, c.max_attempts), (a, 1, 2));
    assert!(
        f.q.claim("w", LEASE).unwrap().is_none(),
        "b waits for a again"
    );
    f.q.complete(&c.lease, &json!({})).unwrap();
    assert_eq!(f.q.claim("w", LEASE).unwrap().unwrap().id(), b);
    assert!(f.q.retry_failed(exec).unwrap().is_empty());
}

#[test]
fn invalid_tasks_are_refused_and_batches_are_atomic() {
    let f = fixture();
    let exec = f.execution("p");
    for (t, needle) in [
        (NewTask::new("", json!({})), "kind"),
        (NewTask::new("a", json!({})).max_attempts(0), "max_attempts"),
        (NewTask::new("a", json!({})).timeout_s(0.0), "timeout"),
        (
            NewTask::new("a", json!({})).retry(RetryStrategy::Fixed { delay_s: -3.0 }),
            "delay_s",
        ),
    ] {
        let e = f.q.spawn(&t).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    }
    let r = f.q.spawn_many(&[
        NewTask::new("a", json!({})).execution(exec).job_id("x"),
        NewTask::new("b", json!({})).execution(exec).job_id("x"),
    ]);
    assert!(r.unwrap_err().to_string().contains("job id"));
    assert_eq!(
        f.q.counts(None).unwrap().total(),
        0,
        "the whole batch rolled back"
    );
    assert!(f.q.claim("", LEASE).is_err());
    assert!(f.q.claim("w", StdDuration::ZERO).is_err());
    assert!(matches!(
        f.q.task(TaskId(1)),
        Err(QueueError::NoSuchTask(_))
    ));
}

// ---- two OS processes racing over one database ----

const RACE_DB: &str = "CONTIMG_QUEUE_RACE_DB";
const RACE_WORKER: &str = "CONTIMG_QUEUE_RACE_WORKER";
const RACE_TASKS: i64 = 200;

/// Child side of `two_processes_claim_each_task_exactly_once`: drains the queue, printing what it claimed.
#[test]
#[ignore = "child process of two_processes_claim_each_task_exactly_once; run only by that test"]
fn race_child() {
    let db = std::env::var(RACE_DB).expect("race_child runs only as a child of the race test");
    let worker = std::env::var(RACE_WORKER).expect("worker id");
    let go = PathBuf::from(format!("{db}.go"));
    let start = Instant::now();
    while !go.exists() {
        assert!(start.elapsed() < StdDuration::from_secs(30), "no go signal");
        std::thread::sleep(StdDuration::from_millis(1));
    }
    let q = Queue::new(open_db(Path::new(&db)), Arc::new(SystemClock));
    let mut mine = Vec::new();
    while let Some(c) = q.claim(&worker, LEASE).unwrap() {
        // A little "work" so that the two processes interleave.
        std::thread::sleep(StdDuration::from_micros(300));
        q.complete(&c.lease, &json!({"worker": worker})).unwrap();
        mine.push(c.id().0);
    }
    println!("CLAIMED {}", serde_json::to_string(&mine).unwrap());
}

#[test]
fn two_processes_claim_each_task_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.sqlite3");
    let q = Queue::new(init_db(&path), Arc::new(SystemClock));
    let ids = q
        .spawn_many(
            &(0..RACE_TASKS)
                .map(|i| NewTask::new("noop", json!({"i": i})))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|w| {
            Command::new(&exe)
                .args([
                    "race_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(RACE_DB, &path)
                .env(RACE_WORKER, w)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start child test process")
        })
        .collect();
    std::fs::write(format!("{}.go", path.display()), b"go").unwrap();
    let mut claimed: Vec<Vec<i64>> = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("CLAIMED ").map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("child printed no CLAIMED line: {stdout}"));
        claimed.push(serde_json::from_str(line).unwrap());
    }
    assert!(
        claimed.iter().all(|c| !c.is_empty()),
        "both processes should have claimed work: {:?}",
        claimed.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let mut all: Vec<i64> = claimed.concat();
    all.sort();
    assert_eq!(
        all,
        ids.iter().map(|t| t.0).collect::<Vec<_>>(),
        "each task claimed exactly once"
    );

    // The database agrees: one attempt per task, by the worker that completed it.
    let conn = q.connection();
    let (n_attempts, n_tasks_one_attempt): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM task_attempts),
                    (SELECT count(*) FROM (SELECT task_id FROM task_attempts GROUP BY task_id
                                           HAVING count(*) = 1))",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n_attempts, n_tasks_one_attempt), (RACE_TASKS, RACE_TASKS));
    for (worker, list) in ["p1", "p2"].iter().zip(&claimed) {
        for &id in list {
            let t = q.task(TaskId(id)).unwrap();
            assert_eq!(t.state, TaskState::Completed);
            assert_eq!(t.attempts, 1);
            assert_eq!(t.result, Some(json!({"worker": worker})));
            assert_eq!(t.claimed_by.as_deref(), Some(*worker));
            let a = q.attempts(TaskId(id)).unwrap();
            assert_eq!(
                (a[0].worker_id.as_str(), a[0].outcome),
                (*worker, AttemptOutcome::Completed)
            );
        }
    }
}

#[test]
fn permanent_failure_ends_the_task_despite_attempts_left() {
    let f = fixture();
    let a =
        f.q.spawn(
            &NewTask::new("a", json!({}))
                .max_retries(5)
                .retry(RetryStrategy::Fixed { delay_s: 1.0 }),
        )
        .unwrap();
    let b =
        f.q.spawn(&NewTask::new("b", json!({})).depends_on([a]))
            .unwrap();
    let c = f.q.claim("w", LEASE).unwrap().expect("attempt 1");
    assert_eq!(c.id(), a);
    assert!(!c.is_last_attempt());
    assert_eq!(
        f.q.fail_permanently(&c.lease, "exit code 2: no such plan")
            .unwrap(),
        FailOutcome::Failed { cancelled: vec![b] }
    );
    let info = f.q.task(a).unwrap();
    assert_eq!(info.state, TaskState::Failed);
    assert_eq!(info.attempts, 1);
    assert_eq!(f.q.task(b).unwrap().state, TaskState::Cancelled);
    f.clock.set(t0() + secs(3600));
    assert!(f.q.claim("w", LEASE).unwrap().is_none(), "no retry");
    // A stale lease cannot fail it again.
    assert!(f.q.fail_permanently(&c.lease, "again").is_err());
}
