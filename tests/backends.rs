//! The pipeline's execution store on both backends through the one seam
//! (`pipeline::executions::{Backend, Executions}`): the same cases and the same assertions on an
//! SQLite file and on a real PostgreSQL server with ABSURD's schema (the one `scripts/pg-cluster
//! start` runs, found through CONTIMG_TEST_PG; without it the PostgreSQL half fails and says how to
//! start one). Jobs are cheap `command` jobs run by the engine's real worker threads, each in its own
//! child process.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use contimg::pipeline::api::backend;
use contimg::pipeline::api::{self, Engine, Setup};
use contimg::pipeline::def::{NamedPipeline, PipelineDef};
use contimg::pipeline::exec::{Admitted, Created};
use contimg::pipeline::executions::{Access, Executions};
use contimg::pipeline::notify::{Delivery, NotifyConfig};
use contimg::pipeline::{
    Database, ExecStatus, ExecutionManifest, PipelineError, RequestKey, Slot, StopWhen,
};
use contimg::store::Target;

const LEASE: Duration = Duration::from_secs(30);

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

fn raw_client() -> ::postgres::Client {
    ::postgres::Client::connect(&pg_url(), ::postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test server ({e})"))
}

/// Where one case runs: a temporary directory (the workspace, its logs and flag files) and a
/// database — an SQLite file in it, or a contimg schema and ABSURD queue of the case's own on the
/// server (dropped at the end).
struct Bed {
    dir: tempfile::TempDir,
    database: Database,
    pg_name: Option<String>,
}

impl Bed {
    fn sqlite() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contimg.sqlite3");
        Bed {
            database: Database {
                target: Target::Sqlite(path),
                queue: String::new(),
                accept_outside: Vec::new(),
                run_pipelines: Vec::new(),
            },
            dir,
            pg_name: None,
        }
    }

    fn postgres(case: &str) -> Bed {
        let name = format!("b_{case}_{}", std::process::id());
        let mut c = raw_client();
        c.execute("SELECT absurd.drop_queue($1)", &[&name]).unwrap();
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
            .unwrap();
        Bed {
            dir: tempfile::tempdir().unwrap(),
            database: Database {
                target: Target::Postgres {
                    url: pg_url(),
                    schema: name.clone(),
                },
                queue: name.clone(),
                accept_outside: Vec::new(),
                run_pipelines: Vec::new(),
            },
            pg_name: Some(name),
        }
    }

    /// Creates (or finds) `p`'s execution for slot `hour` with no parameters and no request key,
    /// its products in `mosaics`.
    fn create(
        &self,
        ex: &mut dyn Executions,
        p: &NamedPipeline,
        hour: u32,
        runner_lease: Option<Duration>,
    ) -> Result<Admitted, PipelineError> {
        ex.create(
            p,
            &slot(hour),
            &BTreeMap::new(),
            &self.path("mosaics"),
            runner_lease,
            None,
        )
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A new connection to the execution store, through the seam.
    fn executions(&self) -> Box<dyn Executions> {
        backend(&self.database)
            .executions(Access::ReadWrite)
            .expect("open the execution store")
    }

    /// The pipelines of `toml` (`[pipelines.NAME]` tables) and the built-ins, `name` checked.
    fn pipeline(&self, toml: &str, name: &str) -> (NamedPipeline, Vec<NamedPipeline>) {
        #[derive(serde::Deserialize)]
        struct Cfg {
            pipelines: BTreeMap<String, PipelineDef>,
        }
        let cfg: Cfg = toml::from_str(toml).expect("the test's pipelines parse");
        let all = contimg::pipeline::def::resolve(&cfg.pipelines, "backends.rs");
        (api::checked(&all, name).expect("a valid pipeline"), all)
    }

    fn engine(&self, all: &[NamedPipeline]) -> Engine {
        Engine::new(
            Setup {
                exe: env!("CARGO_BIN_EXE_contimg").into(),
                workspace: self.dir.path().to_path_buf(),
                products_dir: self.path("mosaics"),
                database: self.database.clone(),
                logs_dir: self.path("logs"),
                notify: NotifyConfig::default(),
                pipelines: all.to_vec(),
            },
            LEASE,
        )
    }

    fn delivery(&self) -> Delivery {
        Delivery {
            config: NotifyConfig::default(),
            logs_dir: self.path("logs"),
            by: "backends-test".into(),
            inline_urls: BTreeMap::new(),
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name
            && let Ok(mut c) = ::postgres::Client::connect(&pg_url(), ::postgres::NoTls)
        {
            let _ = c.execute("SELECT absurd.drop_queue($1)", &[name]);
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"));
        }
    }
}

fn slot(hour: u32) -> Slot {
    let t: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).unwrap();
    Slot::new(t, Some("1h")).unwrap()
}

fn created(a: Admitted) -> Created {
    match a {
        Admitted::Yes(c) => c,
        Admitted::Busy(active) => panic!("not admitted: executions {active:?} are running"),
    }
}

fn state<'a>(m: &'a ExecutionManifest, job: &str) -> &'a str {
    &m.jobs
        .iter()
        .find(|j| j.id == job)
        .unwrap_or_else(|| panic!("no job {job} in execution {}", m.execution_id))
        .state
}

fn outputs(m: &ExecutionManifest, job: &str) -> serde_json::Value {
    m.jobs
        .iter()
        .find(|j| j.id == job)
        .and_then(|j| j.outputs.clone())
        .unwrap_or_default()
}

/// Job `a` outputs x = 41 (failing first while `fail_flag` is given and missing); job `b`,
/// downstream of it, outputs y = ${a.x}. One attempt each; failures are logged.
fn chain_toml(name: &str, fail_flag: Option<&Path>, extra: &str) -> String {
    let guard = fail_flag.map_or_else(String::new, |f| {
        format!(
            "test -e {f} || {{ touch {f}; echo boom >&2; exit 1; }}; ",
            f = f.display()
        )
    });
    format!(
        r#"
[pipelines.{name}]
window = "1h"
notify = [{{ on = "failure", channel = "log" }}]
{extra}
[[pipelines.{name}.jobs]]
id = "a"
type = "command"
params = {{ argv = ["sh", "-c", "{guard}echo '{{\"x\": 41}}'"] }}
[[pipelines.{name}.jobs]]
id = "b"
type = "command"
depends_on = ["a"]
params = {{ argv = ["sh", "-c", "echo '{{\"y\": ${{a.x}}}}'"] }}
"#
    )
}

/// One execution per (pipeline, slot); worked to completion under the runner lease (as `run`
/// does); its manifest, the listing and the last success agree, also read-only.
fn one_execution_per_slot_runs_to_completion(bed: &Bed) {
    let (p, all) = bed.pipeline(&chain_toml("chain", None, ""), "chain");
    let engine = bed.engine(&all);
    let mut ex = bed.executions();
    let first = created(bed.create(ex.as_mut(), &p, 3, Some(LEASE)).unwrap());
    assert!(!first.existing);
    let again = created(bed.create(ex.as_mut(), &p, 3, Some(LEASE)).unwrap());
    assert_eq!(
        again.execution_id, first.execution_id,
        "one execution per slot"
    );
    assert!(again.existing);
    let eid = first.execution_id;
    assert_eq!(ex.sync(eid).unwrap(), ExecStatus::Running);
    let before = ex.manifest(eid).unwrap();
    assert_eq!(before.status, ExecStatus::Running);
    assert_eq!(before.jobs.len(), 2);
    assert!(before.jobs.iter().all(|j| j.outputs.is_none()));
    assert_eq!(ex.last_success("chain").unwrap(), None);

    let mut work = || engine.work(1, StopWhen::ExecutionDone(eid)).map(|_| ());
    let holder = ex.as_runner(eid, LEASE, &mut work).unwrap();
    assert!(holder.is_none(), "nobody else runs it: {holder:?}");

    assert_eq!(ex.sync(eid).unwrap(), ExecStatus::Completed);
    let m = ex.manifest(eid).unwrap();
    assert_eq!(m.status, ExecStatus::Completed, "{:?}", m.error);
    assert_eq!(m.database, ex.database());
    assert_eq!(m.pipeline, "chain");
    assert_eq!(m.slot.as_deref(), Some("2026-03-01T03:00:00Z"));
    assert_eq!((state(&m, "a"), state(&m, "b")), ("completed", "completed"));
    assert_eq!(outputs(&m, "b")["y"], 41, "b read a's output");
    assert!(
        m.jobs
            .iter()
            .all(|j| j.attempts == 1 && j.max_attempts == 1)
    );
    assert_eq!(m.jobs[1].depends_on, ["a"]);
    assert!(m.completed_at.is_some() && m.error.is_none());

    let list = ex.list(10).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].execution_id, eid);
    assert_eq!(list[0].status, ExecStatus::Completed);
    assert_eq!(
        list[0].jobs,
        BTreeMap::from([
            ("a".to_string(), "completed".to_string()),
            ("b".to_string(), "completed".to_string())
        ])
    );
    assert_eq!(ex.last_success("chain").unwrap(), Some(slot(3).time));
    assert_eq!(ex.last_success("other").unwrap(), None);

    // What `status` reads (read-only on SQLite) is the same.
    let ro = api::execution(&bed.database, eid).unwrap();
    assert_eq!(ro.status, ExecStatus::Completed);
    assert_eq!(
        serde_json::to_value(&ro.jobs).unwrap(),
        serde_json::to_value(&m.jobs).unwrap()
    );
    assert_eq!(api::executions(&bed.database, 5).unwrap().len(), 1);
    // A second run of the slot finds it finished: nothing is created or run.
    let third = created(bed.create(ex.as_mut(), &p, 3, Some(LEASE)).unwrap());
    assert_eq!((third.execution_id, third.existing), (eid, true));
}

/// Cancel before any work: every job cancelled, the execution cancelled; unknown ids refused.
fn cancel_and_unknown_ids(bed: &Bed) {
    let (p, _) = bed.pipeline(&chain_toml("chain", None, ""), "chain");
    let mut ex = bed.executions();
    let eid = created(bed.create(ex.as_mut(), &p, 4, None).unwrap()).execution_id;
    assert_eq!(ex.cancel(eid).unwrap(), 2, "both jobs cancelled");
    let m = ex.manifest(eid).unwrap();
    assert_eq!(m.status, ExecStatus::Cancelled);
    assert_eq!((state(&m, "a"), state(&m, "b")), ("cancelled", "cancelled"));
    assert!(
        m.error.as_deref().is_some_and(|e| e.contains("job 'a'")),
        "{:?}",
        m.error
    );
    assert_eq!(ex.list(10).unwrap()[0].status, ExecStatus::Cancelled);
    assert_eq!(ex.last_success("chain").unwrap(), None);
    assert_eq!(ex.cancel(eid).unwrap(), 0, "nothing left to cancel");

    let unknown = eid + 1000;
    for r in [
        ex.cancel(unknown).map(|_| ()),
        ex.retry(unknown).map(|_| ()),
        ex.manifest(unknown).map(|_| ()),
    ] {
        assert!(
            matches!(r, Err(PipelineError::NoSuchExecution(id)) if id == unknown),
            "{r:?}"
        );
    }
}

/// A job that fails fails the execution (its dependent never runs) and writes one failure
/// notification to the outbox; retry re-runs the failed job and its dependent, reusing nothing
/// that failed, and the execution completes.
fn retry_a_failed_job(bed: &Bed) {
    let flag = bed.path("a-ran-once");
    let (p, all) = bed.pipeline(&chain_toml("flaky", Some(&flag), ""), "flaky");
    let engine = bed.engine(&all);
    let mut ex = bed.executions();
    let eid = created(bed.create(ex.as_mut(), &p, 5, None).unwrap()).execution_id;
    engine.work(1, StopWhen::ExecutionDone(eid)).unwrap();
    let m = ex.manifest(eid).unwrap();
    assert_eq!(m.status, ExecStatus::Failed);
    assert_eq!(state(&m, "a"), "failed");
    assert!(
        m.error
            .as_deref()
            .is_some_and(|e| e.contains("job 'a' failed")),
        "{:?}",
        m.error
    );
    // The dependent did not run: SQLite cancels it with its failed upstream job, ABSURD's layer
    // marks it skipped (it never became a task).
    assert!(
        matches!(state(&m, "b"), "cancelled" | "skipped"),
        "{}",
        state(&m, "b")
    );
    assert!(outputs(&m, "b").is_null());
    assert_eq!(ex.list(1).unwrap()[0].status, ExecStatus::Failed);

    let d = bed.delivery();
    let s = ex.deliver(&d, true).unwrap();
    assert_eq!(
        (s.delivered, s.failed),
        (1, 0),
        "one failure notification, logged"
    );
    let log = std::fs::read_to_string(bed.path("logs").join("notifications.log")).unwrap();
    assert!(log.contains("flaky"), "{log}");
    assert_eq!(ex.deliver(&d, true).unwrap().delivered, 0, "delivered once");

    assert_eq!(ex.retry(eid).unwrap(), 2, "a and b reset");
    assert_eq!(ex.sync(eid).unwrap(), ExecStatus::Running);
    let reset = ex.manifest(eid).unwrap();
    assert_eq!(reset.status, ExecStatus::Running);
    assert!(reset.error.is_none(), "{:?}", reset.error);
    engine.work(1, StopWhen::ExecutionDone(eid)).unwrap();
    let m = ex.manifest(eid).unwrap();
    assert_eq!(m.status, ExecStatus::Completed, "{:?}", m.error);
    assert_eq!((state(&m, "a"), state(&m, "b")), ("completed", "completed"));
    assert_eq!(outputs(&m, "b")["y"], 41);
    assert_eq!(ex.last_success("flaky").unwrap(), Some(slot(5).time));
    assert_eq!(ex.retry(eid).unwrap(), 0, "nothing left to retry");
    assert_eq!(ex.deliver(&d, true).unwrap().delivered, 0);
}

/// `max_active = 1`: a second slot is not admitted while the first one's execution runs (on
/// SQLite: while its runner lease is live), and is once that execution ended.
fn max_active_admits_one(bed: &Bed) {
    let (p, _) = bed.pipeline(&chain_toml("single", None, "max_active = 1"), "single");
    let mut ex = bed.executions();
    let eid = created(bed.create(ex.as_mut(), &p, 6, Some(LEASE)).unwrap()).execution_id;
    assert_eq!(
        bed.create(ex.as_mut(), &p, 7, Some(LEASE)).unwrap(),
        Admitted::Busy(vec![eid])
    );
    // The running slot itself is found, not refused.
    let same = created(bed.create(ex.as_mut(), &p, 6, Some(LEASE)).unwrap());
    assert_eq!((same.execution_id, same.existing), (eid, true));
    ex.cancel(eid).unwrap();
    let next = created(bed.create(ex.as_mut(), &p, 7, Some(LEASE)).unwrap());
    assert!(!next.existing && next.execution_id != eid);
    let ids: Vec<i64> = ex
        .list(10)
        .unwrap()
        .iter()
        .map(|e| e.execution_id)
        .collect();
    assert_eq!(ids, [next.execution_id, eid], "newest first");
}

/// An idempotency key recorded with an execution finds it whatever the slot (a request repeated
/// an hour later, its "now" long past); the key with another request is refused, nothing written.
fn request_keys_find_their_executions(bed: &Bed) {
    let (p, _) = bed.pipeline(&chain_toml("chain", None, "max_active = 5"), "chain");
    let mut ex = bed.executions();
    let key = RequestKey {
        key: "portal-42".into(),
        request: r#"{"pipeline":"chain"}"#.into(),
    };
    let keyed = |ex: &mut dyn Executions, hour: u32, k: &RequestKey| {
        ex.create(
            &p,
            &slot(hour),
            &BTreeMap::new(),
            &bed.path("mosaics"),
            None,
            Some(k),
        )
    };
    let first = created(keyed(ex.as_mut(), 8, &key).unwrap());
    assert!(!first.existing);
    let again = created(keyed(ex.as_mut(), 9, &key).unwrap());
    assert_eq!(
        (again.execution_id, again.existing),
        (first.execution_id, true)
    );
    let other = RequestKey {
        key: "portal-42".into(),
        request: r#"{"pipeline":"chain","slot":"x"}"#.into(),
    };
    match keyed(ex.as_mut(), 10, &other) {
        Err(PipelineError::KeyReused(m)) => assert!(m.contains("portal-42"), "{m}"),
        r => panic!("a reused key must be refused: {r:?}"),
    }
    // Without a key, or with another key, slots are as before.
    let plain = created(bed.create(ex.as_mut(), &p, 9, None).unwrap());
    assert!(!plain.existing);
    let fresh = RequestKey {
        key: "portal-43".into(),
        request: key.request.clone(),
    };
    let found = created(keyed(ex.as_mut(), 9, &fresh).unwrap());
    assert_eq!(
        (found.execution_id, found.existing),
        (plain.execution_id, true)
    );
    assert_eq!(
        ex.list(10).unwrap().len(),
        2,
        "no execution for the refused request"
    );
}

/// One `#[test]` per backend for each case.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $case() {
                super::$case(&super::Bed::sqlite());
            })*
        }
        mod postgres {
            $(#[test]
            fn $case() {
                super::$case(&super::Bed::postgres(stringify!($case)));
            })*
        }
    };
}

on_both_backends!(
    one_execution_per_slot_runs_to_completion,
    cancel_and_unknown_ids,
    retry_a_failed_job,
    max_active_admits_one,
    request_keys_find_their_executions,
);
