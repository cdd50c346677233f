//! The pipeline engine end to end through the real binary: `command` jobs passing outputs, missing keys,
//! timeouts that kill the process group, priority order, kill -9 of `run` and resume, cancel, validation,
//! and two `worker` processes sharing one queue.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{add_config, contimg, job, json_in, pid_alive, run_in, workspace};
use serde_json::Value;

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_pid(p: &Path) -> i32 {
    std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
}

fn db_count(ws: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(ws.join("pipeline.sqlite3")).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn spawn_run(ws: &Path, args: &[&str]) -> Child {
    contimg()
        .current_dir(ws)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn command_outputs_flow_downstream_and_a_missing_key_fails_the_job() {
    let ws = workspace();
    add_config(
        ws.path(),
        r#"
[pipelines.chain]
[[pipelines.chain.jobs]]
id = "a"
type = "command"
params = { argv = ["sh", "-c", "echo '{\"n\": 42, \"nested\": {\"s\": \"deep\"}}'"] }
[[pipelines.chain.jobs]]
id = "b"
type = "command"
params = { argv = ["sh", "-c", "printf '{\"got\": \"%s/%s\"}' \"$0\" \"$1\"", "${a.n}", "x-${a.nested.s}"] }
depends_on = ["a"]
[[pipelines.chain.jobs]]
id = "c"
type = "command"
params = { argv = ["echo", "${b.missing}"] }
depends_on = ["b"]
[[pipelines.chain.jobs]]
id = "d"
type = "command"
params = { argv = ["true"] }
depends_on = ["c"]
"#,
    );
    let m = json_in(
        ws.path(),
        &["run", "chain", "--slot", "2026-11-20T03:00Z"],
        1,
    );
    assert_eq!(m["schema"], "contimg.execution/1");
    assert_eq!(m["status"], "failed");
    assert_eq!(job(&m, "b")["outputs"]["got"], "42/x-deep");
    let c = job(&m, "c");
    assert_eq!(c["state"], "failed");
    let err = c["error"].as_str().unwrap();
    assert!(err.contains("${b.missing}") && err.contains("got"), "{err}");
    assert_eq!(job(&m, "d")["state"], "cancelled");
    // The seed tables mirror the tasks.
    assert_eq!(
        db_count(
            ws.path(),
            "SELECT count(*) FROM pipeline_jobs WHERE execution_id = 1"
        ),
        4
    );
    assert_eq!(
        db_count(
            ws.path(),
            "SELECT count(*) FROM pipeline_executions WHERE status = 'failed'"
        ),
        1
    );
    assert_eq!(
        db_count(
            ws.path(),
            "SELECT count(*) FROM pipeline_jobs j JOIN tasks t ON t.id = j.task_id
             WHERE j.status = t.state AND coalesce(j.result, '') = coalesce(t.result, '')"
        ),
        4
    );
    // `run` again for the same slot reports the failed execution; no second one.
    let again = json_in(
        ws.path(),
        &["run", "chain", "--slot", "2026-11-20T03:00Z"],
        1,
    );
    assert_eq!(again["execution_id"], 1);
    assert_eq!(again["existing"], true);
    assert_eq!(
        db_count(ws.path(), "SELECT count(*) FROM pipeline_executions"),
        1
    );
    // The log of b holds the argv with the substituted values.
    let log = std::fs::read_to_string(job(&m, "b")["log_path"].as_str().unwrap()).unwrap();
    assert!(log.contains("42 x-deep"), "{log}");
}

#[test]
fn a_job_over_its_timeout_is_killed_and_recorded_as_timed_out() {
    let ws = workspace();
    add_config(
        ws.path(),
        r#"
[pipelines.slow]
[[pipelines.slow.jobs]]
id = "sleepy"
type = "command"
params = { argv = ["sh", "-c", "echo $$ > sleepy.pid; exec sleep 30"] }
timeout = "1s"
"#,
    );
    let t0 = Instant::now();
    let m = json_in(ws.path(), &["run", "slow"], 1);
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    let j = job(&m, "sleepy");
    assert_eq!(j["state"], "failed");
    assert_eq!(j["attempt_outcomes"], serde_json::json!(["timed_out"]));
    assert!(j["error"].as_str().unwrap().contains("timed out"), "{j}");
    let pid = read_pid(&ws.path().join("sleepy.pid"));
    assert!(
        !pid_alive(pid),
        "the timed-out child {pid} is still running"
    );
}

#[test]
fn ready_jobs_run_by_priority() {
    let ws = workspace();
    let mut toml = String::from("[pipelines.prio]\n");
    for (id, prio) in [("low", 1), ("high", 9), ("mid", 5), ("zero", 0)] {
        toml.push_str(&format!(
            "[[pipelines.prio.jobs]]\nid = \"{id}\"\ntype = \"command\"\npriority = {prio}\n\
             params = {{ argv = [\"sh\", \"-c\", \"echo {id} >> order.txt\"] }}\n"
        ));
    }
    add_config(ws.path(), &toml);
    json_in(ws.path(), &["run", "prio", "--workers", "1"], 0);
    let order = std::fs::read_to_string(ws.path().join("order.txt")).unwrap();
    assert_eq!(
        order.split_whitespace().collect::<Vec<_>>(),
        ["high", "mid", "low", "zero"]
    );
}

const RESUME: &str = r#"
[pipelines.resume]
max_retries = 2
retry = { kind = "fixed", delay_s = 0 }
[[pipelines.resume.jobs]]
id = "first"
type = "command"
params = { argv = ["sh", "-c", "echo ran >> first.count; echo '{\"token\": \"abc\"}'"] }
[[pipelines.resume.jobs]]
id = "slow"
type = "command"
params = { argv = ["sh", "-c", "echo $$ > slow.pid; if [ -e go ]; then echo \"{\\\"from\\\": \\\"$0\\\"}\"; exit 0; fi; exec sleep 30", "${first.token}"] }
depends_on = ["first"]
"#;

#[test]
fn kill_9_of_run_then_run_again_resumes_the_same_execution() {
    let ws = workspace();
    add_config(ws.path(), RESUME);
    let slot = "2026-11-20T03:00Z";
    let mut child = spawn_run(
        ws.path(),
        &["run", "resume", "--slot", slot, "--lease", "1s"],
    );
    let pidfile = ws.path().join("slow.pid");
    wait_for("the slow job to start", Duration::from_secs(20), || {
        pidfile.exists()
    });
    let job_pid = read_pid(&pidfile);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The orphaned job does not keep running unsupervised.
    wait_for(
        "the job of the killed runner to die",
        Duration::from_secs(5),
        || !pid_alive(job_pid),
    );
    std::fs::remove_file(&pidfile).unwrap();
    std::fs::write(ws.path().join("go"), "").unwrap();
    let m = json_in(
        ws.path(),
        &["run", "resume", "--slot", slot, "--lease", "1s"],
        0,
    );
    assert_eq!(m["status"], "completed");
    assert_eq!(m["existing"], true);
    assert_eq!(m["execution_id"], 1);
    let first = job(&m, "first");
    assert_eq!(first["attempts"], 1);
    let slow = job(&m, "slow");
    assert_eq!(slow["attempts"], 2);
    assert_eq!(
        slow["attempt_outcomes"],
        serde_json::json!(["lease_expired", "completed"])
    );
    assert_eq!(slow["outputs"]["from"], "abc");
    // The upstream job ran exactly once; one execution; one task per job.
    let count = std::fs::read_to_string(ws.path().join("first.count")).unwrap();
    assert_eq!(count.lines().count(), 1);
    assert_eq!(
        db_count(ws.path(), "SELECT count(*) FROM pipeline_executions"),
        1
    );
    assert_eq!(db_count(ws.path(), "SELECT count(*) FROM tasks"), 2);
}

#[test]
fn cancel_kills_the_running_job_and_cancels_the_rest() {
    let ws = workspace();
    add_config(ws.path(), RESUME);
    let child = spawn_run(ws.path(), &["run", "resume", "--lease", "1s"]);
    let pidfile = ws.path().join("slow.pid");
    wait_for("the slow job to start", Duration::from_secs(20), || {
        pidfile.exists()
    });
    let job_pid = read_pid(&pidfile);
    let m = json_in(ws.path(), &["cancel", "1"], 0);
    assert_eq!(m["status"], "cancelled");
    assert_eq!(job(&m, "slow")["state"], "cancelled");
    assert_eq!(job(&m, "first")["state"], "completed");
    let t0 = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(!pid_alive(job_pid), "cancelled job {job_pid} still runs");
    // A cancel of an unknown execution is a usage error (exit 2).
    let out = run_in(ws.path(), &["cancel", "99"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // retry re-runs only the cancelled job.
    std::fs::write(ws.path().join("go"), "").unwrap();
    let m = json_in(ws.path(), &["retry", "1", "--lease", "1s"], 0);
    assert_eq!(m["status"], "completed");
    let count = std::fs::read_to_string(ws.path().join("first.count")).unwrap();
    assert_eq!(count.lines().count(), 1);
}

#[test]
fn two_worker_processes_run_each_task_exactly_once() {
    let ws = workspace();
    let n = 40;
    let mut toml = String::from("[pipelines.many]\n");
    for i in 0..n {
        toml.push_str(&format!(
            "[[pipelines.many.jobs]]\nid = \"j{i}\"\ntype = \"command\"\n\
             params = {{ argv = [\"sh\", \"-c\", \"echo $CONTIMG_JOB_ID >> ran.txt\"] }}\n"
        ));
    }
    add_config(ws.path(), &toml);
    let m = json_in(ws.path(), &["run", "many", "--detach"], 0);
    assert_eq!(m["status"], "running");
    let workers: Vec<Child> = (0..2)
        .map(|_| {
            contimg()
                .current_dir(ws.path())
                .args(["worker", "--once", "--concurrency", "2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut attempts = 0;
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        attempts += v["attempts"].as_i64().unwrap();
    }
    assert_eq!(attempts, n);
    let ran = std::fs::read_to_string(ws.path().join("ran.txt")).unwrap();
    let mut ids: Vec<&str> = ran.lines().collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!((before, ids.len()), (n as usize, n as usize));
    let s = json_in(ws.path(), &["status", "1", "--json"], 0);
    assert_eq!(s["status"], "completed");
}

#[test]
fn pipelines_check_names_file_pipeline_and_job() {
    let ws = workspace();
    add_config(
        ws.path(),
        r#"
[pipelines.broken]
schedule = "0 25 * * *"
[[pipelines.broken.jobs]]
id = "a"
type = "mosaic_plan"
params = { tier = "science", start = "${slot.start}", end = "${b.end}", colour = "red" }
depends_on = ["b"]
[[pipelines.broken.jobs]]
id = "b"
type = "mosaic_buld"
depends_on = ["a"]
"#,
    );
    let out = run_in(ws.path(), &["pipelines", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = ws.path().canonicalize().unwrap().join("contimg.toml");
    for needle in [
        format!(
            "{}: pipeline 'broken': schedule \"0 25 * * *\"",
            file.display()
        ),
        "pipeline 'broken', job 'a': unknown parameter 'colour'".into(),
        "pipeline 'broken', job 'b': unknown job type \"mosaic_buld\"".into(),
        "dependency cycle".into(),
    ] {
        assert!(err.contains(&needle), "missing {needle:?} in:\n{err}");
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    // `run` refuses the invalid pipeline before creating anything; the valid ones still run.
    let out = run_in(ws.path(), &["run", "broken"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        db_count(ws.path(), "SELECT count(*) FROM pipeline_executions"),
        0
    );
    // An unknown --param is refused too.
    let out = run_in(
        ws.path(),
        &["run", "on_demand_mosaic", "--param", "colour=red"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no parameter 'colour'"));
}
