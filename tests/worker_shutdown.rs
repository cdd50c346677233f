//! Issue 21: a worker stopped by SIGTERM hands its job back at once (no lease wait, no retry
//! spent), and an interruption (SIGTERM, kill -9) never counts against a job's `max_retries`; on
//! the SQLite file and on ABSURD (the real server `CONTIMG_TEST_PG` names, as in
//! tests/pipeline_absurd.rs).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{add_config, job, pid_alive, workspace};
use serde_json::Value;

/// One job that sleeps 30 s the first time it starts (writing its pid to `child.pid`) and completes
/// at once on any later start; no retries at all.
const HOLD: &str = r#"
[pipelines.hold]
max_retries = 0
retry = { kind = "none" }
[[pipelines.hold.jobs]]
id = "sleeper"
type = "command"
params = { argv = ["sh", "-c", "if [ ! -e started ]; then touch started; echo $$ > child.pid; exec sleep 30; fi; echo '{\"done\": 1}'"] }
"#;

const SLOT: &str = "2026-11-20T03:00Z";

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where contimg runs: the SQLite file of the workspace, or a schema and queue on the server.
struct Target {
    pg: Option<String>,
}

impl Target {
    fn sqlite() -> Target {
        Target { pg: None }
    }

    fn absurd(test: &str) -> Target {
        let name = format!("sd_{test}_{}", std::process::id());
        let t = Target { pg: Some(name) };
        t.drop_bed();
        t
    }

    fn url() -> String {
        std::env::var("CONTIMG_TEST_PG").expect(
            "CONTIMG_TEST_PG is not set: run with scripts/test or `eval \"$(scripts/pg-cluster start)\"`",
        )
    }

    fn drop_bed(&self) {
        if let Some(name) = &self.pg
            && let Ok(mut c) = postgres::Client::connect(&Self::url(), postgres::NoTls)
        {
            let _ = c.execute("SELECT absurd.drop_queue($1)", &[name]);
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"));
        }
    }

    fn cmd(&self, ws: &Path, args: &[&str]) -> Command {
        let mut c = common::contimg();
        c.current_dir(ws).args(args);
        if let Some(name) = &self.pg {
            c.env("CONTIMG_DB", Self::url())
                .env("CONTIMG_PG_SCHEMA", name)
                .env("CONTIMG_ABSURD_QUEUE", name);
        }
        c
    }

    fn spawn(&self, ws: &Path, args: &[&str]) -> Child {
        self.cmd(ws, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn json(&self, ws: &Path, args: &[&str], code: i32) -> Value {
        let out = self.cmd(ws, args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "contimg {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.drop_bed();
    }
}

fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Starts a worker on the `hold` execution and waits for its job's child; returns both.
fn worker_holding_the_job(t: &Target, ws: &Path, lease: &str) -> (Child, i32) {
    let created = t.json(ws, &["run", "hold", "--slot", SLOT, "--detach"], 0);
    assert_eq!(created["status"], "running", "{created}");
    let w = t.spawn(ws, &["worker", "--lease", lease]);
    let pid_file = ws.join("child.pid");
    wait_for("the job's child", Duration::from_secs(30), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (w, pid)
}

/// A second worker (`--once` in a loop) takes the job over; returns the manifest and how long it took.
fn taken_over(t: &Target, ws: &Path, within: Duration) -> (Value, Duration) {
    let t0 = Instant::now();
    loop {
        t.json(ws, &["worker", "--once", "--lease", "60s"], 0);
        let m = t.json(ws, &["status", "1", "--json"], 0);
        if m["status"] != "running" {
            return (m, t0.elapsed());
        }
        assert!(
            t0.elapsed() < within,
            "not taken over within {within:?}: {m}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sigterm_hands_the_job_back(t: &Target) -> Value {
    let ws = workspace();
    add_config(ws.path(), HOLD);
    let (mut w, child) = worker_holding_the_job(t, ws.path(), "60s");
    let t0 = Instant::now();
    signal(&w, "TERM");
    wait_for("the worker to exit", Duration::from_secs(5), || {
        w.try_wait().unwrap().is_some()
    });
    let out = w.wait_with_output().unwrap();
    let stopped = t0.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["handed_back"], 1, "{stats}");
    assert!(!pid_alive(child), "the job's child survived the SIGTERM");
    // The lease is 60 s: a takeover within 5 s did not wait for it.
    let (m, took) = taken_over(t, ws.path(), Duration::from_secs(5));
    eprintln!("worker stopped in {stopped:?}; job taken over in {took:?}");
    assert_eq!(m["status"], "completed", "{m}");
    job(&m, "sleeper").clone()
}

#[test]
fn sigterm_hands_the_job_back_at_once_on_sqlite() {
    let sleeper = sigterm_hands_the_job_back(&Target::sqlite());
    // max_retries = 0: the interrupted attempt was not counted.
    assert_eq!(
        sleeper["attempt_outcomes"],
        serde_json::json!(["lease_expired", "completed"]),
        "{sleeper}"
    );
}

#[test]
fn sigterm_hands_the_job_back_at_once_on_absurd() {
    let sleeper = sigterm_hands_the_job_back(&Target::absurd("term"));
    // ABSURD's run was rescheduled, not failed: one run, one attempt.
    assert_eq!(sleeper["attempts"], 1, "{sleeper}");
    assert_eq!(
        sleeper["attempt_outcomes"],
        serde_json::json!(["completed"]),
        "{sleeper}"
    );
}

#[test]
fn a_second_signal_ends_the_worker_at_once() {
    let t = Target::sqlite();
    let ws = workspace();
    add_config(ws.path(), HOLD);
    // SIGTERM and SIGINT back to back: the worker is gone at once either way, and so is its child.
    let (mut w, child) = worker_holding_the_job(&t, ws.path(), "60s");
    signal(&w, "INT");
    signal(&w, "TERM");
    wait_for("the worker to exit", Duration::from_secs(5), || {
        w.try_wait().unwrap().is_some()
    });
    let code = w.wait().unwrap().code();
    // 0: the first signal's hand-back finished first; 128 + a signal's number (130 SIGINT,
    // 143 SIGTERM): the second signal ended it at once.
    assert!(matches!(code, Some(0) | Some(130) | Some(143)), "{code:?}");
    wait_for("the child to die", Duration::from_secs(5), || {
        !pid_alive(child)
    });
}

/// The shipped unit (scripts/contimg-worker.service) passes `systemd-analyze verify` with its
/// placeholders filled in, and keeps the settings the hand-back relies on.
#[test]
fn the_worker_service_unit_verifies() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/contimg-worker.service"),
    )
    .unwrap();
    for key in [
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        "Restart=on-failure",
        "TimeoutStopSec=30",
        "ExecStart=/usr/local/bin/contimg worker",
    ] {
        assert!(unit.lines().any(|l| l.starts_with(key)), "missing {key}");
    }
    let found = Command::new("sh")
        .args(["-c", "command -v systemd-analyze"])
        .output()
        .unwrap();
    if !found.status.success() {
        common::realdata::skip(
            "the_worker_service_unit_verifies",
            "systemd-analyze is not installed (apt-get install systemd)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let filled = unit
        .replace("/usr/local/bin/contimg", env!("CARGO_BIN_EXE_contimg"))
        .replace("/srv/contimg", &dir.path().display().to_string())
        .replace("User=contimg", "User=root")
        .replace("Group=contimg", "Group=root");
    let path = dir.path().join("contimg-worker.service");
    std::fs::write(&path, filled).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// kill -9 of a worker holding the job: `status` shows the job (and the execution) `interrupted`
/// before anyone takes it over; another worker then does, and the job completes although it had
/// no retries: a crash is an interruption, not a failure.
fn kill_9_is_an_interruption(t: &Target, lease: &str, takeover: Duration) -> Value {
    let ws = workspace();
    add_config(ws.path(), HOLD);
    let (mut w, child) = worker_holding_the_job(t, ws.path(), lease);
    w.kill().unwrap();
    w.wait().unwrap();
    wait_for(
        "the job to die with its worker",
        Duration::from_secs(5),
        || !pid_alive(child),
    );
    let t0 = Instant::now();
    let st = loop {
        let st = t.json(ws.path(), &["status", "1", "--json"], 0);
        if st["status"] == "interrupted" || t0.elapsed() > takeover {
            break st;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(st["status"], "interrupted", "{st}");
    assert_eq!(job(&st, "sleeper")["state"], "interrupted", "{st}");
    // The listing says so too, on either backend (while nobody has taken the job over yet).
    let listed = t.json(ws.path(), &["status", "--json"], 0);
    let m = t.json(ws.path(), &["status", "1", "--json"], 0);
    if m["status"] == "interrupted" {
        assert_eq!(listed[0]["status"], "interrupted", "{listed}");
        assert_eq!(listed[0]["jobs"]["sleeper"], "interrupted", "{listed}");
    }
    let (m, took) = taken_over(t, ws.path(), takeover);
    eprintln!("killed worker's job taken over {took:?} after it showed interrupted");
    assert_eq!(m["status"], "completed", "{m}");
    job(&m, "sleeper").clone()
}

#[test]
fn kill_9_of_a_worker_spends_no_retry_on_sqlite() {
    // The dead holder is on this host: reaped at once, no wait for the 60 s lease.
    let sleeper = kill_9_is_an_interruption(&Target::sqlite(), "60s", Duration::from_secs(5));
    assert_eq!(
        sleeper["attempt_outcomes"],
        serde_json::json!(["lease_expired", "completed"]),
        "{sleeper}"
    );
}

#[test]
fn kill_9_of_a_worker_spends_no_retry_on_absurd() {
    // The dead holder is on this host: ended as an interruption at once, no wait for the lease
    // or the retry delay, and ABSURD's extra attempt is not taken from max_retries = 0.
    let t = Target::absurd("kill9");
    let sleeper = kill_9_is_an_interruption(&t, "60s", Duration::from_secs(5));
    assert_eq!(
        sleeper["attempt_outcomes"],
        serde_json::json!(["failed", "completed"]),
        "ABSURD's runs: the interrupted one, then the takeover: {sleeper}"
    );
}

#[test]
fn an_expired_claim_shows_interrupted_and_spends_no_retry_on_absurd() {
    // A holder that is not provably dead (here: the worker frozen with SIGSTOP) is taken over
    // when its claim expires, without a retry delay and without spending max_retries = 0.
    let t = Target::absurd("expire");
    let ws = workspace();
    add_config(ws.path(), HOLD);
    let (mut w, child) = worker_holding_the_job(&t, ws.path(), "2s");
    signal(&w, "STOP");
    let t0 = Instant::now();
    let st = loop {
        let st = t.json(ws.path(), &["status", "1", "--json"], 0);
        if st["status"] != "running" || t0.elapsed() > Duration::from_secs(10) {
            break st;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(st["status"], "interrupted", "{st}");
    assert_eq!(job(&st, "sleeper")["state"], "interrupted", "{st}");
    let shown = t0.elapsed();
    // The frozen worker's child still sleeps; the takeover must not wait for it.
    let (m, took) = taken_over(&t, ws.path(), Duration::from_secs(5));
    eprintln!("claim (2 s) shown interrupted after {shown:?}; taken over {took:?} later");
    assert_eq!(m["status"], "completed", "{m}");
    assert_eq!(
        job(&m, "sleeper")["attempt_outcomes"],
        serde_json::json!(["failed", "completed"])
    );
    let _ = w.kill();
    let _ = w.wait();
    wait_for(
        "the frozen worker's child to die",
        Duration::from_secs(5),
        || !pid_alive(child),
    );
}

#[test]
fn sigterm_to_run_hands_the_job_back_and_a_rerun_finishes_it() {
    let t = Target::sqlite();
    let ws = workspace();
    add_config(ws.path(), HOLD);
    let r = t.spawn(
        ws.path(),
        &["run", "hold", "--slot", SLOT, "--lease", "60s"],
    );
    let pid_file = ws.path().join("child.pid");
    wait_for("the job's child", Duration::from_secs(30), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    let child: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    signal(&r, "TERM");
    let t0 = Instant::now();
    let out = r.wait_with_output().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["status"], "running", "{m}");
    assert_eq!(job(&m, "sleeper")["state"], "pending", "{m}");
    assert!(!pid_alive(child), "the job's child survived the SIGTERM");
    let t0 = Instant::now();
    let m = t.json(ws.path(), &["run", "hold", "--slot", SLOT], 0);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(m["status"], "completed", "{m}");
}
