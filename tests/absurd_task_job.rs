//! The `absurd_task` job: a contimg pipeline hands a task to a site's own ABSURD worker (absurd-sdk in
//! Python, not contimg) on a real PostgreSQL server, waits for it, and passes its result downstream.
//!
//! The server is the one `scripts/pg-cluster start` runs, found through CONTIMG_TEST_PG (as in
//! tests/queue_absurd.rs); without it these tests fail and say how to start one. The pipeline runs on
//! the workspace's SQLite queue; only the `absurd_task` job talks to ABSURD.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{contimg, job, workspace};
use serde_json::Value;

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

/// A fresh ABSURD queue for one test, dropped at the end.
struct PgQueue(String);

impl PgQueue {
    fn new(test: &str) -> PgQueue {
        let name = format!("j_{test}_{}", std::process::id());
        drop_queue(&name);
        PgQueue(name)
    }
}

impl Drop for PgQueue {
    fn drop(&mut self) {
        drop_queue(&self.0);
    }
}

fn drop_queue(name: &str) {
    let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test server ({e})"));
    c.execute("SELECT absurd.drop_queue($1)", &[&name]).unwrap();
}

/// The site's worker on `queue`: runs one task, then prints what it saw.
fn site_worker(queue: &str) -> Child {
    Command::new(common::python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/py/absurd_site_worker.py"
        ))
        .args([&pg_url(), queue])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}); install Python 3", common::python()))
}

fn seen_by(worker: Child) -> Value {
    let out = worker.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "absurd_site_worker.py failed (is absurd-sdk installed? pip install absurd-sdk): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A pipeline `site`: job `ext` runs ABSURD task `task` on `queue`, job `use` echoes `${ext.some_key}`.
fn add_pipeline(ws: &Path, queue: &str, task: &str, timeout: &str) {
    let p = ws.join("contimg.toml");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(&format!(
        r#"
[pipelines.site]
[[pipelines.site.jobs]]
id = "ext"
type = "absurd_task"
params = {{ queue = "{queue}", task = "{task}", database_env = "SITE_ABSURD_URL", timeout = "{timeout}", params = {{ slot = "${{slot.start}}", factor = 21 }} }}
[[pipelines.site.jobs]]
id = "use"
type = "command"
params = {{ argv = ["sh", "-c", "printf '{{\"got\": \"%s\"}}' \"$0\"", "${{ext.some_key}}"] }}
depends_on = ["ext"]
"#
    ));
    std::fs::write(&p, text).unwrap();
}

/// `contimg run site` with the URL in SITE_ABSURD_URL; its manifest, after checking the exit code.
fn run_site(ws: &Path, code: i32) -> Value {
    let out = contimg()
        .current_dir(ws)
        .env("SITE_ABSURD_URL", pg_url())
        .args(["run", "site", "--slot", "2026-11-20T03:00Z"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout={} stderr={}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_site_workers_result_flows_to_the_downstream_job() {
    let ws = workspace();
    let q = PgQueue::new("ok");
    add_pipeline(ws.path(), &q.0, "calibrate", "2m");
    let worker = site_worker(&q.0);
    let m = run_site(ws.path(), 0);
    let seen = seen_by(worker);

    assert_eq!(m["status"], "completed", "{m}");
    let params = &seen["seen"][0]["params"];
    assert_eq!(seen["seen"][0]["task_name"], "calibrate");
    let slot = params["slot"].as_str().unwrap();
    assert!(
        !slot.contains("${") && slot.contains("2026-11-20"),
        "the worker got unsubstituted params: {params}"
    );
    assert_eq!(params["factor"], 21);
    let expected = format!("{slot}|42");
    assert_eq!(job(&m, "ext")["outputs"]["some_key"], expected.as_str());
    assert_eq!(job(&m, "use")["outputs"]["got"], expected.as_str());
    // Neither the URL nor its password is in the job's log.
    let log = std::fs::read_to_string(job(&m, "ext")["log_path"].as_str().unwrap()).unwrap();
    let password = pg_url()
        .split(':')
        .nth(2)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    assert!(!log.contains(&password), "{log}");
}

#[test]
fn a_failed_absurd_task_fails_the_job() {
    let ws = workspace();
    let q = PgQueue::new("fail");
    add_pipeline(ws.path(), &q.0, "explode", "2m");
    let worker = site_worker(&q.0);
    let m = run_site(ws.path(), 1);
    let seen = seen_by(worker);

    assert_eq!(seen["seen"][0]["task_name"], "explode");
    assert_eq!(m["status"], "failed", "{m}");
    let ext = job(&m, "ext");
    assert_eq!(ext["state"], "failed");
    let err = ext["error"].as_str().unwrap();
    assert!(
        err.contains("failed") && err.contains("detector on fire"),
        "{err}"
    );
    assert_eq!(job(&m, "use")["state"], "cancelled");
}

#[test]
fn a_task_nobody_works_is_cancelled_after_its_timeout() {
    let ws = workspace();
    let q = PgQueue::new("late");
    add_pipeline(ws.path(), &q.0, "calibrate", "1s");
    let m = run_site(ws.path(), 1);
    let err = job(&m, "ext")["error"].as_str().unwrap();
    assert!(err.contains("cancelled it"), "{err}");
    let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
    let states: Vec<String> = c
        .query(&format!("SELECT state FROM absurd.\"t_{}\"", q.0), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(states, ["cancelled"]);
}

#[test]
fn pipelines_check_refuses_bad_absurd_task_jobs() {
    let ws = workspace();
    let p = ws.path().join("contimg.toml");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(
        r#"
[pipelines.bad]
[[pipelines.bad.jobs]]
id = "pw"
type = "absurd_task"
params = { queue = "site", task = "t", database = "postgres://u:hunter2@db/site" }
[[pipelines.bad.jobs]]
id = "q"
type = "absurd_task"
params = { queue = "Not-OK", database_env = "X", params = 3 }
"#,
    );
    std::fs::write(&p, text).unwrap();
    let out = common::run_in(ws.path(), &["pipelines", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "job 'pw': 'database' = postgres://u:***@db/site holds a password",
        "job 'q': parameter 'task' is required",
        "job 'q': ABSURD queue name 'Not-OK' is not allowed",
        "job 'q': 'params' must be a table",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(!err.contains("hunter2"), "{err}");
}
