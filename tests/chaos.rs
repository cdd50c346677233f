//! The chaos suite (issue 13): kill -9 of `run` and of `worker` at random moments of a real mosaic
//! pipeline (plan, build, a failing job, the failure notification to a webhook on 127.0.0.1), then a
//! rerun, with every invariant checked after each rerun:
//! one execution; one mosaic whose sha256 is the uninterrupted run's; no temporary file left;
//! `PRAGMA integrity_check` ok; nothing stuck (no task pending, running or sleeping, no notification
//! pending or sending); the notification delivered, and delivered twice only when the kill fell
//! between its send and its record (both copies with the same idempotency key).
//! And a database lock held by another process for 60 s while a job runs: the job completes,
//! nothing is killed early.
//!
//! Replay: the trials are drawn from `CONTIMG_CHAOS_SEED` (default 13); `CONTIMG_CHAOS_TRIALS`
//! sets their number (default 24). The figures (tried / survived / lost) go to stderr.

// A test or example reports on stdout, which its harness captures; only the binary is held to
// "stdout carries manifests only".
#![allow(clippy::print_stdout)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{contimg, json_in, run_in, workspace};
use serde_json::Value;
use sha2::Digest;

/// A small, seedable generator (xorshift64*): the same seed draws the same trials.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

const SLOT: &str = "2026-01-01T12:00Z";

/// How long the webhook receiver takes to answer: a window in which a kill falls between a
/// notification's send and its record.
const RECEIVER_DELAY: Duration = Duration::from_millis(30);

fn pipeline(hook: &str) -> String {
    format!(
        r#"
[pipelines.chaos]
window = "24h"
max_retries = 10
retry = {{ kind = "fixed", delay_s = 0 }}
notify = [{{ channel = "webhook", url = "{hook}/hook" }}]
[[pipelines.chaos.jobs]]
id = "plan"
type = "mosaic_plan"
params = {{ tier = "science", start = "${{slot.start}}", end = "${{slot.end}}", name = "chaos" }}
[[pipelines.chaos.jobs]]
id = "build"
type = "mosaic_build"
params = {{ plan_id = "${{plan.plan_id}}" }}
depends_on = ["plan"]
[[pipelines.chaos.jobs]]
id = "alarm"
type = "command"
params = {{ argv = ["sh", "-c", "echo 'the night is over' >&2; exit 1"] }}
depends_on = ["build"]
max_retries = 0
retry = {{ kind = "none" }}
"#
    )
}

/// Simulated snapshots of one night, made once.
fn snapshots(dir: &Path) -> Vec<String> {
    json_in(
        dir,
        &[
            "simulate", "--out", "snaps", "--images", "3", "--size", "128", "--cell", "20",
        ],
        0,
    );
    let mut files: Vec<String> = std::fs::read_dir(dir.join("snaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "fits"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    files
}

/// A fresh workspace with the night ingested and the chaos pipeline pointing at `hook`.
fn trial_workspace(files: &[String], hook: &str) -> tempfile::TempDir {
    let ws = workspace();
    let mut args = vec!["ingest"];
    args.extend(files.iter().map(String::as_str));
    json_in(ws.path(), &args, 0);
    let cfg = ws.path().join("contimg.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&pipeline(hook));
    std::fs::write(&cfg, text).unwrap();
    ws
}

fn sha256_file(p: &Path) -> String {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Victim {
    Run,
    Worker,
}

/// What a trial saw at the moment of the kill.
struct Killed {
    victim: Victim,
    after: Duration,
    pid: u32,
    requests_before: usize,
}

fn kill_at_random(ws: &Path, victim: Victim, after: Duration) -> u32 {
    let args: &[&str] = match victim {
        Victim::Run => &["run", "chaos", "--slot", SLOT, "--lease", "2s"],
        Victim::Worker => {
            json_in(
                ws,
                &["run", "chaos", "--slot", SLOT, "--detach", "--lease", "2s"],
                0,
            );
            &["worker", "--lease", "2s"]
        }
    };
    let mut child = contimg()
        .current_dir(ws)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let pid = child.id();
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    pid
}

/// Every invariant after the rerun; the problems found (empty: the trial survived).
fn check(
    ws: &Path,
    reference_sha: &str,
    killed: &Killed,
    got: &common::hook::Requests,
) -> Vec<String> {
    let mut lost = Vec::new();
    let conn = rusqlite::Connection::open(ws.join("pipeline.sqlite3")).unwrap();
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    if integrity != "ok" {
        lost.push(format!("integrity_check: {integrity}"));
    }
    if one("SELECT count(*) FROM pipeline_executions") != 1 {
        lost.push("not exactly one execution".into());
    }
    let stuck = one("SELECT count(*) FROM tasks WHERE state IN ('pending', 'running', 'sleeping')")
        + one("SELECT count(*) FROM pipeline_executions WHERE status = 'running'")
        + one("SELECT count(*) FROM notifications WHERE state IN ('pending', 'sending')");
    if stuck != 0 {
        lost.push(format!(
            "{stuck} task(s), execution(s) or notification(s) stuck"
        ));
    }
    let done: Vec<(String, String)> = conn
        .prepare("SELECT job_id, state FROM tasks ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want = [
        ("plan", "completed"),
        ("build", "completed"),
        ("alarm", "failed"),
    ];
    if done.iter().map(|(j, s)| (j.as_str(), s.as_str())).ne(want) {
        lost.push(format!("jobs ended as {done:?}"));
    }
    let mosaics: Vec<String> = conn
        .prepare("SELECT path FROM mosaics")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    match mosaics.as_slice() {
        [m] if sha256_file(Path::new(m)) == reference_sha => {}
        [m] => lost.push(format!("mosaic {m} differs from the uninterrupted run's")),
        other => lost.push(format!("{} mosaic rows", other.len())),
    }
    let mut files = Vec::new();
    files_under(ws, &mut files);
    let temps: Vec<_> = files
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".tmp."))
        })
        .collect();
    if !temps.is_empty() {
        lost.push(format!("temporary files left: {temps:?}"));
    }
    lost.extend(check_notification(&conn, killed, got));
    lost
}

/// Delivered, and twice only when the kill fell between the send and its record.
fn check_notification(
    conn: &rusqlite::Connection,
    killed: &Killed,
    got: &common::hook::Requests,
) -> Vec<String> {
    let mut lost = Vec::new();
    let reqs = got.lock().unwrap().clone();
    let keys: Vec<String> = reqs
        .iter()
        .map(|(h, _)| common::hook::header(h, "idempotency-key").unwrap_or_default())
        .collect();
    let state: String = conn
        .query_row("SELECT state FROM notifications", [], |r| r.get(0))
        .unwrap_or_else(|e| format!("({e})"));
    if state != "delivered" || keys.is_empty() {
        lost.push(format!("notification {state}, {} request(s)", keys.len()));
    }
    if keys.iter().any(|k| k.is_empty() || *k != keys[0]) {
        lost.push(format!("requests without one idempotency key: {keys:?}"));
    }
    let recorded_by_victim: i64 = conn
        .query_row(
            "SELECT count(*) FROM notification_attempts WHERE by_process LIKE ?1",
            [format!("%:{}", killed.pid)],
            |r| r.get(0),
        )
        .unwrap();
    let between_send_and_record = killed.requests_before == 1 && recorded_by_victim == 0;
    match keys.len() {
        0 | 1 => {}
        2 if between_send_and_record => {}
        n => lost.push(format!(
            "{n} deliveries ({} before the kill, {recorded_by_victim} recorded by the killed process)",
            killed.requests_before
        )),
    }
    lost
}

/// Reruns after each kill until the execution is over (one rerun is enough unless it is killed).
fn rerun(ws: &Path) -> Result<(), String> {
    let out = run_in(ws, &["run", "chaos", "--slot", SLOT, "--lease", "2s"]);
    let m: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "rerun printed no manifest ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    match (out.status.code(), m["status"].as_str()) {
        (Some(1), Some("failed")) => Ok(()),
        other => Err(format!(
            "rerun ended {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

#[test]
fn kill_9_at_random_points_of_run_and_worker_then_rerun() {
    let seed = env_u64("CONTIMG_CHAOS_SEED", 13);
    let trials = env_u64("CONTIMG_CHAOS_TRIALS", 24);
    let night = tempfile::tempdir().unwrap();
    let files = snapshots(night.path());

    // The uninterrupted run: its mosaic and how long a whole run (with delivery) takes.
    let (hook, _got) = common::hook::start_delayed(RECEIVER_DELAY);
    let reference = trial_workspace(&files, &hook);
    let t0 = Instant::now();
    let m = json_in(reference.path(), &["run", "chaos", "--slot", SLOT], 1);
    let whole = t0.elapsed();
    let build = m["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == "build")
        .unwrap();
    let reference_sha = build["outputs"]["sha256"]["mosaic"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sha256_file(Path::new(build["outputs"]["path"].as_str().unwrap())),
        reference_sha
    );

    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut lost = Vec::new();
    let (mut in_delivery, mut resent) = (0, 0);
    for trial in 0..trials {
        let victim = if rng.below(2) == 0 {
            Victim::Run
        } else {
            Victim::Worker
        };
        // Anywhere from the start to a little past the end of a whole run (delivery included).
        let span = whole.as_millis() as u64 * 5 / 4 + 50;
        let after = Duration::from_millis(rng.below(span));
        let (hook, got) = common::hook::start_delayed(RECEIVER_DELAY);
        let ws = trial_workspace(&files, &hook);
        let pid = kill_at_random(ws.path(), victim, after);
        // A request the killed process wrote may still be in the receiver's socket: let the
        // receiver read it before counting what the killed process sent.
        std::thread::sleep(RECEIVER_DELAY + Duration::from_millis(200));
        let killed = Killed {
            victim,
            after,
            pid,
            requests_before: got.lock().unwrap().len(),
        };
        if killed.requests_before == 1 {
            in_delivery += 1;
        }
        let problems = match rerun(ws.path()) {
            Ok(()) => check(ws.path(), &reference_sha, &killed, &got),
            Err(e) => vec![e],
        };
        if got.lock().unwrap().len() == 2 {
            resent += 1;
        }
        if !problems.is_empty() {
            lost.push(format!(
                "trial {trial} ({:?} killed after {} ms): {}",
                killed.victim,
                killed.after.as_millis(),
                problems.join("; ")
            ));
        }
    }
    eprintln!(
        "chaos: seed {seed}: tried {trials}, survived {}, lost {}; {in_delivery} kill(s) after the \
         notification went out, {resent} re-sent with the same key (a whole run takes {} ms; replay \
         with CONTIMG_CHAOS_SEED={seed})",
        trials as usize - lost.len(),
        lost.len(),
        whole.as_millis()
    );
    assert!(lost.is_empty(), "lost trials:\n{}", lost.join("\n"));
}

/// Another process holds the database's write lock for 60 s while a job runs (longer than the
/// busy timeout and ten times the lease): the job is not killed, and completes on its first attempt.
#[test]
fn a_60_s_lock_held_by_another_process_during_a_job_kills_nothing() {
    let ws = workspace();
    let cfg = ws.path().join("contimg.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        r#"
[pipelines.locked]
[[pipelines.locked.jobs]]
id = "long"
type = "command"
params = { argv = ["sh", "-c", "touch started; while [ ! -e go ]; do sleep 0.1; done; echo '{\"done\": true}'"] }
"#,
    );
    std::fs::write(&cfg, text).unwrap();
    let runner = contimg()
        .current_dir(ws.path())
        .args(["run", "locked", "--lease", "6s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !ws.path().join("started").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The lock holder: another process (python's sqlite3), BEGIN IMMEDIATE for 60 s. The job is
    // released at 58 s, so it ends while the lock is still held.
    let holder = Command::new(common::python())
        .arg("-c")
        .arg(
            "import sqlite3, sys, time, pathlib\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             time.sleep(58)\n\
             pathlib.Path(sys.argv[2]).touch()\n\
             time.sleep(2)\n\
             c.execute('ROLLBACK')\n",
        )
        .arg(ws.path().join("pipeline.sqlite3"))
        .arg(ws.path().join("go"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}): install Python 3", common::python()));
    let held = holder.wait_with_output().unwrap();
    assert!(
        held.status.success() && String::from_utf8_lossy(&held.stdout).contains("locked"),
        "the lock holder failed"
    );
    let out = runner.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["status"], "completed");
    let job = &m["jobs"][0];
    assert_eq!(job["attempt_outcomes"], serde_json::json!(["completed"]));
    assert_eq!(job["outputs"]["done"], true);
}
