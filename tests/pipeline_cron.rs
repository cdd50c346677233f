//! Scheduling and notifications through the real binary: cron semantics and slot resolution, catch-up,
//! concurrent firings for one slot, max_active, exit 2 = no retry, the crontab block via the real
//! `crontab` program, and notification delivery (webhook to a local HTTP server, email to a fake
//! sendmail, a dead webhook retried on the next run).

// Unsafe: geteuid(2), to know whether the crontab tests may use `crontab -u`.
#![allow(unsafe_code)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::{add_config, contimg, json_in, run_in, workspace};
use contimg::pipeline::exec::{Slot, scheduled_slot};
use contimg::pipeline::parse_schedule;
use contimg::time::iso;
use serde_json::Value;

/// Replaces a line of the default contimg.toml (`init` writes every setting).
fn set_config(ws: &Path, old: &str, new: &str) {
    let p = ws.join("contimg.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(old), "no {old:?} in contimg.toml");
    std::fs::write(&p, text.replacen(old, new, 1)).unwrap();
}

fn db_count(ws: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(ws.join("pipeline.sqlite3")).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn next(expr: &str, after: DateTime<Utc>) -> DateTime<Utc> {
    parse_schedule(expr)
        .unwrap()
        .find_next_occurrence(&after, false)
        .unwrap()
}

fn nexts(expr: &str, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut at = after;
    for _ in 0..n {
        at = next(expr, at);
        out.push(at);
    }
    out
}

#[test]
fn cron_semantics_vectors() {
    // Day-of-month and day-of-week both restricted: OR (the 13th, or any Friday). 2026-11-01 is a Sunday.
    assert_eq!(
        nexts("0 0 13 * 5", t(2026, 11, 1, 0, 0), 4),
        [
            t(2026, 11, 6, 0, 0),
            t(2026, 11, 13, 0, 0),
            t(2026, 11, 20, 0, 0),
            t(2026, 11, 27, 0, 0)
        ]
    );
    assert_eq!(
        nexts("0 0 1 * 1", t(2026, 11, 24, 0, 0), 3),
        [
            t(2026, 11, 30, 0, 0),
            t(2026, 12, 1, 0, 0),
            t(2026, 12, 7, 0, 0)
        ]
    );
    // Only one restricted: AND with the other's '*'.
    assert_eq!(
        nexts("0 0 * * 5", t(2026, 11, 1, 0, 0), 2),
        [t(2026, 11, 6, 0, 0), t(2026, 11, 13, 0, 0)]
    );
    // 0 and 7 are both Sunday.
    for e in ["30 3 * * 0", "30 3 * * 7", "30 3 * * SUN"] {
        assert_eq!(
            nexts(e, t(2026, 11, 2, 0, 0), 2),
            [t(2026, 11, 8, 3, 30), t(2026, 11, 15, 3, 30)],
            "{e}"
        );
    }
    // Month ends: the 31st skips 30-day months and February.
    assert_eq!(
        nexts("0 3 31 * *", t(2027, 1, 1, 0, 0), 4),
        [
            t(2027, 1, 31, 3, 0),
            t(2027, 3, 31, 3, 0),
            t(2027, 5, 31, 3, 0),
            t(2027, 7, 31, 3, 0)
        ]
    );
    // Leap day: only in leap years.
    assert_eq!(
        nexts("0 0 29 2 *", t(2026, 11, 1, 0, 0), 2),
        [t(2028, 2, 29, 0, 0), t(2032, 2, 29, 0, 0)]
    );
    // Steps, ranges, lists; UTC throughout.
    assert_eq!(
        nexts("*/20 22-23 * * 1-5", t(2026, 11, 27, 23, 30), 2),
        [t(2026, 11, 27, 23, 40), t(2026, 11, 30, 22, 0)]
    );
    // Five fields only; bad values refused.
    for bad in [
        "0 0 3 * * *",
        "61 * * * *",
        "0 3 * * 8",
        "0 3 32 * *",
        "nonsense",
    ] {
        assert!(parse_schedule(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn scheduled_slot_and_window_anchoring_with_an_injected_clock() {
    let sched = "0 3 * * *";
    // Run late (a busy machine at 05:17): still the 03:00 slot.
    assert_eq!(
        scheduled_slot(sched, t(2026, 11, 20, 5, 17)).unwrap(),
        t(2026, 11, 20, 3, 0)
    );
    // Exactly on time: that slot; a second early: the previous night's.
    assert_eq!(
        scheduled_slot(sched, t(2026, 11, 20, 3, 0)).unwrap(),
        t(2026, 11, 20, 3, 0)
    );
    assert_eq!(
        scheduled_slot(sched, t(2026, 11, 20, 3, 0) - chrono::Duration::seconds(1)).unwrap(),
        t(2026, 11, 19, 3, 0)
    );
    // Windows [slot − 24 h, slot) of consecutive nights abut: no overlap, no gap.
    let mut prev: Option<Slot> = None;
    for now in [
        t(2026, 11, 19, 3, 4),
        t(2026, 11, 20, 9, 59),
        t(2026, 11, 21, 3, 0),
    ] {
        let s = Slot::new(scheduled_slot(sched, now).unwrap(), Some("24h")).unwrap();
        assert_eq!(s.end, s.time);
        assert_eq!(s.end - s.start, chrono::Duration::hours(24));
        if let Some(p) = prev {
            assert_eq!(s.start, p.end, "consecutive windows abut");
        }
        prev = Some(s);
    }
}

const ECHO_PIPELINE: &str = r#"
[pipelines.tick]
schedule = "0 3 * * *"
window = "24h"
[[pipelines.tick.jobs]]
id = "echo"
type = "command"
params = { argv = ["sh", "-c", "printf '{\"start\": \"%s\", \"end\": \"%s\"}' \"$0\" \"$1\"", "${slot.start}", "${slot.end}"] }
"#;

#[test]
fn run_slot_scheduled_resolves_to_the_latest_firing_and_anchors_the_window() {
    let ws = workspace();
    add_config(ws.path(), ECHO_PIPELINE);
    let before = scheduled_slot("0 3 * * *", Utc::now()).unwrap();
    let m = json_in(ws.path(), &["run", "tick", "--slot", "scheduled"], 0);
    let after = scheduled_slot("0 3 * * *", Utc::now()).unwrap();
    let slot = m["slot"].as_str().unwrap();
    assert!(slot == iso(before) || slot == iso(after), "{slot}");
    let out = &m["jobs"][0]["outputs"];
    assert_eq!(out["end"], slot);
    let start = DateTime::parse_from_rfc3339(out["start"].as_str().unwrap()).unwrap();
    let end = DateTime::parse_from_rfc3339(slot).unwrap();
    assert_eq!(end - start, chrono::Duration::hours(24));
    // Backfill one slot by time.
    let b = json_in(
        ws.path(),
        &["run", "tick", "--slot", "2026-11-20T03:00Z"],
        0,
    );
    assert_eq!(b["slot"], "2026-11-20T03:00:00Z");
    assert_eq!(b["jobs"][0]["outputs"]["start"], "2026-11-19T03:00:00Z");
}

#[test]
fn catch_up_of_three_missed_nights_creates_three_executions_in_order() {
    let ws = workspace();
    add_config(ws.path(), ECHO_PIPELINE);
    let latest = scheduled_slot("0 3 * * *", Utc::now()).unwrap();
    let ok = latest - chrono::Duration::days(3);
    // The last success, three nights before the latest slot; an older failure is not "since" it.
    json_in(ws.path(), &["run", "tick", "--slot", &iso(ok)], 0);
    let m = json_in(ws.path(), &["run", "tick", "--catch-up"], 0);
    assert_eq!(m["schema"], "contimg.catch-up/1");
    assert_eq!(m["last_success"], iso(ok));
    let want: Vec<String> = (1..=3)
        .rev()
        .map(|d| iso(latest - chrono::Duration::days(d - 1)))
        .collect();
    let slots: Vec<String> = m["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(slots, want);
    let conn = rusqlite::Connection::open(ws.path().join("pipeline.sqlite3")).unwrap();
    let rows: Vec<(i64, String, String)> = conn
        .prepare("SELECT id, slot, status FROM pipeline_executions ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[1..].iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        want,
        "created oldest first"
    );
    assert!(rows.iter().all(|r| r.2 == "completed"));
    // Up to date now: catching up again runs nothing.
    let again = json_in(ws.path(), &["run", "tick", "--catch-up"], 0);
    assert_eq!(again["slots"].as_array().unwrap().len(), 0);
    // The cap keeps the newest slots.
    set_config(ws.path(), "max_catch_up = 7", "max_catch_up = 2");
    conn.execute("DELETE FROM pipeline_jobs WHERE execution_id > 1", [])
        .unwrap();
    conn.execute("DELETE FROM tasks WHERE execution_id > 1", [])
        .unwrap();
    conn.execute("DELETE FROM pipeline_executions WHERE id > 1", [])
        .unwrap();
    let capped = json_in(ws.path(), &["run", "tick", "--catch-up"], 0);
    assert_eq!(capped["slots"], serde_json::json!(want[1..]));
    assert_eq!(capped["dropped"], serde_json::json!(want[..1]));
}

#[test]
fn exit_2_fails_the_job_for_good_and_exit_1_is_retried() {
    let ws = workspace();
    add_config(
        ws.path(),
        r#"
[pipelines.bad]
max_retries = 3
retry = { kind = "fixed", delay_s = 0.1 }
[[pipelines.bad.jobs]]
id = "input"
type = "command"
params = { argv = ["sh", "-c", "echo 'no such plan' >&2; exit 2"] }

[pipelines.flaky]
max_retries = 1
retry = { kind = "fixed", delay_s = 0.1 }
[[pipelines.flaky.jobs]]
id = "work"
type = "command"
params = { argv = ["sh", "-c", "exit 1"] }
"#,
    );
    let m = json_in(ws.path(), &["run", "bad"], 1);
    let j = &m["jobs"][0];
    assert_eq!(j["state"], "failed");
    assert_eq!(j["attempts"], 1, "an input error is not retried");
    assert!(j["error"].as_str().unwrap().contains("no such plan"));
    let m = json_in(ws.path(), &["run", "flaky"], 1);
    assert_eq!(m["jobs"][0]["attempts"], 2, "exit 1 follows the retry rule");
}

/// Three small simulated snapshots on 2026-01-01 00:00–00:10 UTC, ingested.
fn night(ws: &Path) {
    json_in(
        ws,
        &[
            "simulate", "--out", "snaps", "--images", "3", "--size", "128", "--cell", "20",
        ],
        0,
    );
    json_in(ws, &["ingest", "snaps"], 0);
}

fn eight_concurrent_runs(ws: &Path, pipeline: &str) {
    let slot = "2026-01-01T03:00Z";
    let children: Vec<_> = (0..8)
        .map(|_| {
            contimg()
                .current_dir(ws)
                .args(["run", pipeline, "--slot", slot])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut reported = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        let m: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(m["execution_id"], 1, "{m}");
        if err.contains("is being run by") {
            reported += 1;
        }
    }
    assert!(reported <= 7);
    assert_eq!(db_count(ws, "SELECT count(*) FROM pipeline_executions"), 1);
    assert_eq!(db_count(ws, "SELECT count(*) FROM mosaics"), 1);
    assert_eq!(db_count(ws, "SELECT count(*) FROM mosaic_plans"), 1);
    assert_eq!(
        db_count(ws, "SELECT count(*) FROM task_attempts"),
        db_count(ws, "SELECT count(*) FROM tasks"),
        "each job ran once"
    );
    // Whoever reported it early, the execution completes.
    let m = json_in(ws, &["run", pipeline, "--slot", slot], 0);
    assert_eq!(m["status"], "completed");
}

#[test]
fn eight_concurrent_runs_for_one_slot_give_one_execution_and_one_mosaic() {
    let ws = workspace();
    night(ws.path());
    add_config(
        ws.path(),
        r#"
[pipelines.pb]
schedule = "0 3 * * *"
window = "24h"
[[pipelines.pb.jobs]]
id = "plan"
type = "mosaic_plan"
params = { tier = "science", start = "${slot.start}", end = "${slot.end}", name = "pb_${slot.date}" }
[[pipelines.pb.jobs]]
id = "build"
type = "mosaic_build"
params = { plan_id = "${plan.plan_id}" }
depends_on = ["plan"]
"#,
    );
    eight_concurrent_runs(ws.path(), "pb");
}

#[test]
fn eight_concurrent_runs_of_the_builtin_nightly_mosaic() {
    let ws = workspace();
    night(ws.path());
    eight_concurrent_runs(ws.path(), "nightly_mosaic");
}

#[test]
fn a_new_slot_is_skipped_while_max_active_executions_run() {
    let ws = workspace();
    add_config(
        ws.path(),
        r#"
[pipelines.slow]
[[pipelines.slow.jobs]]
id = "wait"
type = "command"
params = { argv = ["sh", "-c", "while [ ! -e go ]; do sleep 0.05; done; echo '{}'"] }
"#,
    );
    let first = contimg()
        .current_dir(ws.path())
        .args(["run", "slow", "--slot", "2026-11-20T03:00Z"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while db_count(
        ws.path(),
        "SELECT count(*) FROM execution_runners r JOIN tasks t ON t.execution_id = r.execution_id
         WHERE t.state = 'running'",
    ) == 0
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "first run never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let skipped = json_in(
        ws.path(),
        &["run", "slow", "--slot", "2026-11-21T03:00Z"],
        0,
    );
    assert_eq!(skipped["schema"], "contimg.skipped/1");
    assert_eq!(skipped["active_executions"], serde_json::json!([1]));
    assert_eq!(
        db_count(ws.path(), "SELECT count(*) FROM pipeline_executions"),
        1
    );
    std::fs::write(ws.path().join("go"), "").unwrap();
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Now free: the slot runs.
    let m = json_in(
        ws.path(),
        &["run", "slow", "--slot", "2026-11-21T03:00Z"],
        0,
    );
    assert_eq!(m["status"], "completed");
}

// ---- the crontab ----------------------------------------------------------------------------------

/// The crontab program the test edits, and a guard that puts the original crontab back.
///
/// As root (CI) the test edits the crontab of a dedicated user, `contimg-ci` (created by `.ci/run`, or
/// here if missing), via `crontab -u contimg-ci`: root's and every real user's crontab are never
/// touched. Otherwise it edits the invoking user's own crontab, saved first and restored on drop
/// (panics included); contimg only ever touches its block marked with the test's temporary path.
struct CrontabUnderTest {
    argv: Vec<String>,
    saved: Option<String>,
    /// One test at a time edits the crontab (tests run in parallel threads).
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

static CRONTAB_LOCK: Mutex<()> = Mutex::new(());

impl CrontabUnderTest {
    fn new() -> CrontabUnderTest {
        let guard = CRONTAB_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = std::process::Command::new("sh")
            .args(["-c", "command -v crontab"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "the `crontab` program is missing: install Debian's cron package (apt-get install cron); .ci/run does"
        );
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc_geteuid() } == 0;
        let argv: Vec<String> = if root {
            let exists = std::process::Command::new("id")
                .arg("contimg-ci")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success();
            if !exists {
                let ok = std::process::Command::new("useradd")
                    .args(["--system", "--no-create-home", "contimg-ci"])
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "cannot create the test user contimg-ci with useradd");
            }
            vec!["crontab".into(), "-u".into(), "contimg-ci".into()]
        } else {
            vec!["crontab".into()]
        };
        let saved = contimg::pipeline::cron::read(&argv).expect("crontab -l");
        CrontabUnderTest {
            argv,
            saved: Some(saved),
            _one_at_a_time: guard,
        }
    }
    fn read(&self) -> String {
        contimg::pipeline::cron::read(&self.argv).unwrap()
    }
    fn write(&self, text: &str) {
        contimg::pipeline::cron::write(&self.argv, text).unwrap();
    }
}

impl Drop for CrontabUnderTest {
    fn drop(&mut self) {
        if let Some(s) = self.saved.take() {
            if s.is_empty() {
                let mut argv = self.argv.clone();
                argv.push("-r".into());
                let _ = std::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .stderr(Stdio::null())
                    .status();
            } else {
                let _ = contimg::pipeline::cron::write(&self.argv, &s);
            }
        }
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn cron_install_twice_then_remove_round_trips_a_crontab_with_other_lines() {
    let ws = workspace();
    add_config(ws.path(), ECHO_PIPELINE);
    let ct = CrontabUnderTest::new();
    let base = format!(
        "{}MAILTO=\"\"\n# a line of someone else's, kept as it is\n17 4 * * 1 /bin/true  # weekly\n",
        ct.saved.clone().unwrap_or_default()
    );
    ct.write(&base);
    let crontab = ct.argv.join(" ");
    let cron = |args: &[&str]| {
        let out = contimg()
            .current_dir(ws.path())
            .env("CONTIMG_CRONTAB", &crontab)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let printed = cron(&["cron", "print"]);
    let root = std::fs::canonicalize(ws.path()).unwrap();
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_contimg")).unwrap();
    let line = format!(
        "0 3 * * * {} -C {} run tick --slot scheduled >> {} 2>&1",
        exe.display(),
        root.display(),
        root.join("logs/tick.log").display()
    );
    assert!(printed.contains(&line), "{printed}\nwant {line}");
    assert!(printed.contains("run nightly_mosaic --slot scheduled"));
    assert!(printed.starts_with(&format!("# BEGIN contimg {}\n", root.display())));

    let first: Value = serde_json::from_str(&cron(&["cron", "install"])).unwrap();
    assert_eq!(first["changed"], true);
    let installed = ct.read();
    assert_eq!(installed, format!("{base}{printed}"));
    let second: Value = serde_json::from_str(&cron(&["cron", "install"])).unwrap();
    assert_eq!(second["changed"], false, "install is idempotent");
    assert_eq!(ct.read(), installed);
    let removed: Value = serde_json::from_str(&cron(&["cron", "remove"])).unwrap();
    assert_eq!(removed["changed"], true);
    assert_eq!(ct.read(), base, "every other line as it was");
    let again: Value = serde_json::from_str(&cron(&["cron", "remove"])).unwrap();
    assert_eq!(again["changed"], false);
}

// ---- notifications --------------------------------------------------------------------------------

/// A one-request-at-a-time HTTP server on 127.0.0.1 that records each request's body and answers 200.
fn http_server(listener: TcpListener) -> Arc<Mutex<Vec<(String, String)>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then Content-Length bytes of body.
            let (head, body) = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break (String::from_utf8_lossy(&buf).to_string(), String::new());
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    let mut body = buf[i + 4..].to_vec();
                    while body.len() < len {
                        let n = s.read(&mut chunk).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..n]);
                    }
                    break (head, String::from_utf8_lossy(&body).to_string());
                }
            };
            g.lock().unwrap().push((head, body));
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    got
}

const FAILING: &str = r#"
[[pipelines.nightly.jobs]]
id = "plan"
type = "command"
params = { argv = ["sh", "-c", "echo '{\"plan_id\": 1}'"] }
[[pipelines.nightly.jobs]]
id = "build"
type = "command"
params = { argv = ["sh", "-c", "echo 'disk full' >&2; exit 1"] }
depends_on = ["plan"]
"#;

fn outbox(ws: &Path) -> Vec<Value> {
    let v = json_in(ws, &["notifications", "--json"], 0);
    v.as_array().unwrap().clone()
}

#[test]
fn webhook_delivered_to_a_local_server_with_the_expected_json() {
    let ws = workspace();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = http_server(listener);
    add_config(
        ws.path(),
        &format!(
            r#"
[pipelines.nightly]
schedule = "0 3 * * *"
notify = [{{ on = "failure", channel = "webhook", url_env = "TEST_HOOK" }},
          {{ on = "failure", jobs = ["plan"], channel = "webhook", url = "{url}" }}]
{FAILING}"#
        ),
    );
    let out = contimg()
        .current_dir(ws.path())
        .env("TEST_HOOK", &url)
        .args(["run", "nightly", "--slot", "2026-11-20T03:00Z"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the execution failed");
    let reqs = got.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1, "one rule matched (the plan rule did not)");
    let (head, body) = &reqs[0];
    assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let v: Value = serde_json::from_str(body).unwrap();
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("nightly failed for slot 2026-11-20T03:00:00Z"),
        "{text}"
    );
    assert!(
        text.contains("build") && text.contains("disk full"),
        "{text}"
    );
    assert_eq!(v["contimg"]["execution_id"], 1);
    assert_eq!(v["contimg"]["pipeline"], "nightly");
    assert_eq!(v["contimg"]["status"], "failed");
    assert_eq!(v["contimg"]["failed_jobs"], serde_json::json!(["build"]));
    let rows = outbox(ws.path());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["state"], "delivered");
    assert_eq!(rows[0]["attempts"], 1);
    // Running the failed slot again reports it: no second notification.
    let again = run_in(
        ws.path(),
        &["run", "nightly", "--slot", "2026-11-20T03:00Z"],
    );
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(got.lock().unwrap().len(), 1);
    assert_eq!(outbox(ws.path()).len(), 1);
}

#[test]
fn email_is_handed_to_a_fake_sendmail_and_command_gets_the_facts() {
    let ws = workspace();
    let dir = ws.path().join("fake");
    std::fs::create_dir_all(&dir).unwrap();
    let sendmail = dir.join("sendmail");
    std::fs::write(
        &sendmail,
        format!(
            "#!/bin/sh\necho \"$@\" > {d}/args\ncat > {d}/message\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &sendmail,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    set_config(
        ws.path(),
        r#"sendmail = ["/usr/sbin/sendmail", "-t"]"#,
        &format!(r#"sendmail = ["{}", "-t", "-oi"]"#, sendmail.display()),
    );
    set_config(ws.path(), "from = \"\"", "from = \"pipeline@example.org\"");
    set_config(
        ws.path(),
        "email_to = []",
        "email_to = [\"astro@example.org\"]",
    );
    add_config(
        ws.path(),
        &format!(
            r#"
[pipelines.nightly]
notify = [{{ channel = "email" }},
          {{ channel = "command", argv = ["sh", "-c", "env | grep ^CONTIMG_ | sort > {d}/env"] }}]
{FAILING}"#,
            d = dir.display()
        ),
    );
    let out = run_in(
        ws.path(),
        &["run", "nightly", "--slot", "2026-11-20T03:00Z"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(dir.join("args")).unwrap().trim(),
        "-t -oi"
    );
    let msg = std::fs::read_to_string(dir.join("message")).unwrap();
    let (head, body) = msg.split_once("\n\n").expect("headers, blank line, body");
    assert!(head.contains("From: pipeline@example.org"), "{head}");
    assert!(head.contains("To: astro@example.org"), "{head}");
    assert!(
        head.contains("Subject: [contimg] nightly failed for slot 2026-11-20T03:00:00Z"),
        "{head}"
    );
    assert!(head.lines().any(|l| l.starts_with("Date: ")));
    assert!(head.lines().any(|l| l.starts_with("Message-ID: <")));
    assert!(
        body.contains("disk full") && body.contains("contimg retry 1"),
        "{body}"
    );
    let env = std::fs::read_to_string(dir.join("env")).unwrap();
    for want in [
        "CONTIMG_EXECUTION_ID=1",
        "CONTIMG_PIPELINE=nightly",
        "CONTIMG_SLOT=2026-11-20T03:00:00Z",
        "CONTIMG_STATUS=failed",
        "CONTIMG_FAILED_JOBS=build",
    ] {
        assert!(env.lines().any(|l| l == want), "{want} not in {env}");
    }
    let rows = outbox(ws.path());
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:?}");
}

#[test]
fn a_dead_webhook_leaves_the_job_alone_and_is_delivered_on_the_next_run() {
    let ws = workspace();
    // A port with nobody listening: bind, note it, close.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    add_config(
        ws.path(),
        &format!(
            r#"
[pipelines.nightly]
notify = [{{ channel = "webhook", url = "http://127.0.0.1:{port}/hook" }}]
{FAILING}
[pipelines.fine]
[[pipelines.fine.jobs]]
id = "ok"
type = "command"
params = {{ argv = ["true"] }}
"#
        ),
    );
    let m = json_in(
        ws.path(),
        &["run", "nightly", "--slot", "2026-11-20T03:00Z"],
        1,
    );
    let jobs_before: Vec<(String, String)> = m["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["id"].to_string(), j["state"].to_string()))
        .collect();
    let rows = outbox(ws.path());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["state"], "pending");
    assert_eq!(rows[0]["attempts"], 1);
    assert!(
        rows[0]["last_error"].as_str().unwrap().contains("webhook"),
        "{rows:?}"
    );
    assert_eq!(
        db_count(
            ws.path(),
            "SELECT count(*) FROM pipeline_jobs WHERE status = 'failed' AND job_id = 'build'"
        ),
        1
    );
    assert_eq!(
        db_count(
            ws.path(),
            "SELECT count(*) FROM pipeline_jobs WHERE status = 'completed' AND job_id = 'plan'"
        ),
        1
    );
    // The server comes up; the next run (of any pipeline) delivers it.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let got = http_server(listener);
    json_in(ws.path(), &["run", "fine"], 0);
    assert_eq!(got.lock().unwrap().len(), 1);
    let rows = outbox(ws.path());
    assert_eq!(rows[0]["state"], "delivered");
    assert_eq!(rows[0]["attempts"], 2);
    assert_eq!(
        db_count(
            ws.path(),
            "SELECT count(*) FROM notification_attempts WHERE ok = 0"
        ),
        1
    );
    // The jobs are as they were.
    let m2: Value =
        serde_json::from_slice(&run_in(ws.path(), &["status", "1", "--json"]).stdout).unwrap();
    let jobs_after: Vec<(String, String)> = m2["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["id"].to_string(), j["state"].to_string()))
        .collect();
    assert_eq!(jobs_before, jobs_after);
}

/// A workspace path with a newline would put lines of its own into the crontab (issue 13, item 1):
/// every `cron` action refuses it with exit 2 and the crontab stays byte for byte as it was; a path
/// with `%` (which cron turns into a newline unless escaped) installs and removes cleanly.
#[test]
fn cron_refuses_a_workspace_path_it_cannot_quote_and_escapes_percent() {
    let ct = CrontabUnderTest::new();
    let before = ct.read();
    let crontab = ct.argv.join(" ");
    let parent = tempfile::tempdir().unwrap();
    let evil = parent
        .path()
        .join("ws\n* * * * * touch contimg-cron-injected #");
    std::fs::create_dir(&evil).unwrap();
    json_in(&evil, &["init", "."], 0);
    add_config(&evil, ECHO_PIPELINE);
    for action in ["print", "install", "remove"] {
        let out = contimg()
            .current_dir(&evil)
            .env("CONTIMG_CRONTAB", &crontab)
            .args(["cron", action])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "cron {action}: {err}");
        assert!(
            err.contains("a newline") && err.contains("workspace path"),
            "cron {action}: {err}"
        );
        assert!(out.stdout.is_empty(), "cron {action} printed a block");
        assert_eq!(ct.read(), before, "cron {action} changed the crontab");
    }

    let pct = parent.path().join("ws 100%");
    std::fs::create_dir(&pct).unwrap();
    json_in(&pct, &["init", "."], 0);
    add_config(&pct, ECHO_PIPELINE);
    let cron = |action: &str| {
        let out = contimg()
            .current_dir(&pct)
            .env("CONTIMG_CRONTAB", &crontab)
            .args(["cron", action])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cron("install");
    let installed = ct.read();
    let ours: Vec<&str> = installed
        .lines()
        .filter(|l| l.contains("run tick"))
        .collect();
    assert_eq!(ours.len(), 1, "{installed}");
    assert!(ours[0].contains(r"ws 100\%'"), "{}", ours[0]);
    cron("remove");
    assert_eq!(ct.read(), before);
}
