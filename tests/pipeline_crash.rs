//! Issue 13's pipeline items through the real binary: job output bounded and made printable,
//! `max_active` decided in one transaction, `run P` working only P's tasks, recovery after a kill -9
//! (dead runners seen as dead, their jobs' process groups killed, no wait for the lease), secrets
//! kept out of listings and the database, read-only commands on a read-only copy.

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

fn spawn(ws: &Path, args: &[&str]) -> Child {
    contimg()
        .current_dir(ws)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

const NOISY: &str = r#"
[pipelines.noisy]
max_retries = 0
retry = { kind = "none" }
[[pipelines.noisy.jobs]]
id = "flood"
type = "command"
params = { argv = ["python3", "-c", "import sys; sys.stdout.write('a' * (6 << 20)); print('{}')"] }
[[pipelines.noisy.jobs]]
id = "escapes"
type = "command"
params = { argv = ["sh", "-c", "printf 'bad \\033[31mred\\033]0;owned\\007 \\r\\n' >&2; exit 1"] }
"#;

#[test]
fn job_stdout_is_bounded_and_escapes_never_reach_the_terminal() {
    let ws = workspace();
    add_config(ws.path(), NOISY);
    let out = run_in(ws.path(), &["run", "noisy"]);
    assert_eq!(out.status.code(), Some(1));
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let flood = job(&m, "flood");
    assert_eq!(flood["state"], "failed");
    let e = flood["error"].as_str().unwrap();
    assert!(e.contains("stdout over 4 MiB"), "{e}");
    let esc = job(&m, "escapes")["error"].as_str().unwrap().to_string();
    assert!(esc.contains(r"\x1b[31mred"), "{esc}");
    assert!(
        !esc.contains('\u{1b}') && !esc.contains('\u{7}') && !esc.contains('\r'),
        "{esc:?}"
    );
    assert!(
        !out.stderr.contains(&0x1b) && !out.stderr.contains(&0x07),
        "raw escapes on run's stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for args in [vec!["status"], vec!["status", "1"]] {
        let s = run_in(ws.path(), &args);
        assert_eq!(s.status.code(), Some(0));
        assert!(!s.stdout.contains(&0x1b), "{args:?}");
    }
}

/// Every byte of the database (after a checkpoint) and of the files under `dir`.
fn bytes_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            bytes_under(&p, out);
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
}

#[test]
fn an_inline_webhook_url_is_sent_to_but_never_shown_or_stored() {
    let ws = workspace();
    let (base, got) = common::hook::start();
    let secret = "T0K3N-s3cr3t";
    add_config(
        ws.path(),
        &format!(
            r#"
[pipelines.leaky]
max_retries = 0
retry = {{ kind = "none" }}
notify = [{{ channel = "webhook", url = "{base}/services/{secret}?token={secret}" }}]
[[pipelines.leaky.jobs]]
id = "boom"
type = "command"
params = {{ argv = ["sh", "-c", "exit 1"] }}
"#
        ),
    );
    let run = run_in(ws.path(), &["run", "leaky"]);
    assert_eq!(run.status.code(), Some(1));
    let reqs = got.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1, "delivered once");
    assert!(
        reqs[0]
            .0
            .contains(&format!("/services/{secret}?token={secret}")),
        "{}",
        reqs[0].0
    );

    let mut shown = vec![
        ("run stderr".to_string(), run.stderr.clone()),
        ("run stdout".to_string(), run.stdout.clone()),
    ];
    for args in [
        &["notifications", "--json"][..],
        &["pipelines", "--json"],
        &["status", "1", "--json"],
    ] {
        let o = run_in(ws.path(), args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        shown.push((format!("{args:?}"), [o.stdout, o.stderr].concat()));
    }
    let p: Value =
        serde_json::from_slice(&run_in(ws.path(), &["pipelines", "--json"]).stdout).unwrap();
    let leaky = p
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "leaky")
        .unwrap();
    assert_eq!(
        leaky["def"]["notify"][0]["url"],
        format!("{base}/…"),
        "the listing shows scheme and host"
    );
    let conn = rusqlite::Connection::open(ws.path().join("pipeline.sqlite3")).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    bytes_under(ws.path(), &mut shown);
    shown.retain(|(name, _)| !name.ends_with("contimg.toml"));
    for (name, bytes) in &shown {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is in {name}"
        );
    }
}

/// Two `run`s for different slots started together with `max_active = 1`: one runs, the other is
/// skipped — never both (issue 13 item 8; the count and the new execution are one transaction).
#[test]
fn max_active_holds_for_two_runs_started_at_the_same_instant() {
    let ws = workspace();
    add_config(
        ws.path(),
        r#"
[pipelines.one]
max_active = 1
when_busy = "skip"
[[pipelines.one.jobs]]
id = "hold"
type = "command"
params = { argv = ["sh", "-c", "sleep 0.5; echo '{}'"] }
"#,
    );
    for trial in 0..6 {
        let slots = [
            format!("2026-11-{:02}T01:00Z", trial + 1),
            format!("2026-11-{:02}T02:00Z", trial + 1),
        ];
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let outs: Vec<Value> = std::thread::scope(|s| {
            let hs: Vec<_> = slots
                .iter()
                .map(|slot| {
                    let b = barrier.clone();
                    let dir = ws.path();
                    s.spawn(move || {
                        b.wait();
                        json_in(dir, &["run", "one", "--slot", slot], 0)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ran = outs
            .iter()
            .filter(|o| o["schema"] == "contimg.execution/1")
            .count();
        let skipped = outs
            .iter()
            .filter(|o| o["schema"] == "contimg.skipped/1")
            .count();
        assert_eq!((ran, skipped), (1, 1), "trial {trial}: {outs:?}");
    }
}

/// `run P` works P's execution only: another pipeline's queued tasks wait for their own runner.
#[test]
fn run_works_only_its_own_executions_tasks() {
    let ws = workspace();
    add_config(
        ws.path(),
        r#"
[pipelines.other]
[[pipelines.other.jobs]]
id = "mark"
type = "command"
params = { argv = ["sh", "-c", "touch other.ran; echo '{}'"] }
[pipelines.mine]
[[pipelines.mine.jobs]]
id = "a"
type = "command"
params = { argv = ["sh", "-c", "sleep 0.3; echo '{}'"] }
[[pipelines.mine.jobs]]
id = "b"
type = "command"
params = { argv = ["true"] }
depends_on = ["a"]
"#,
    );
    let queued = json_in(ws.path(), &["run", "other", "--detach"], 0);
    assert_eq!(queued["status"], "running");
    let m = json_in(ws.path(), &["run", "mine", "--workers", "2"], 0);
    assert_eq!(m["status"], "completed");
    assert!(
        !ws.path().join("other.ran").exists(),
        "run mine ran other's job"
    );
    let other = json_in(ws.path(), &["status", "1", "--json"], 0);
    assert_eq!(job(&other, "mark")["state"], "pending");
}

const ORPHANS: &str = r#"
[pipelines.orphans]
max_retries = 3
retry = { kind = "fixed", delay_s = 600 }
[[pipelines.orphans.jobs]]
id = "fork"
type = "command"
params = { argv = ["sh", "-c", "if [ -e go ]; then echo '{}'; exit 0; fi; sleep 300 & echo $! > grandchild.pid; echo $$ > child.pid; wait"] }
"#;

/// kill -9 of `run` while its job has a child of its own: the rerun sees the runner is dead (same
/// host, pid gone), kills what the job left running, and retries at once — not after the rest of
/// the 60 s lease plus the 600 s retry delay. Before the rerun, `status` calls the execution
/// interrupted, not running.
#[test]
fn a_rerun_after_kill_9_reaps_at_once_and_kills_the_jobs_leftovers() {
    let ws = workspace();
    add_config(ws.path(), ORPHANS);
    let slot = "2026-11-20T03:00Z";
    let mut runner = spawn(
        ws.path(),
        &["run", "orphans", "--slot", slot, "--lease", "60s"],
    );
    let gc_file = ws.path().join("grandchild.pid");
    let child_file = ws.path().join("child.pid");
    wait_for("the job and its child", Duration::from_secs(20), || {
        child_file.exists() && gc_file.exists()
    });
    let (child, grandchild) = (read_pid(&child_file), read_pid(&gc_file));
    runner.kill().unwrap();
    runner.wait().unwrap();
    wait_for(
        "the job to die with its runner",
        Duration::from_secs(5),
        || !pid_alive(child),
    );
    assert!(
        pid_alive(grandchild),
        "the scenario needs a surviving grandchild"
    );
    let st = json_in(ws.path(), &["status", "1", "--json"], 0);
    assert_eq!(st["status"], "interrupted", "{st}");
    let listed = json_in(ws.path(), &["status", "--json"], 0);
    assert_eq!(listed[0]["status"], "interrupted");

    std::fs::write(ws.path().join("go"), "").unwrap();
    let m = json_in(
        ws.path(),
        &["run", "orphans", "--slot", slot, "--lease", "60s"],
        0,
    );
    assert_eq!(m["status"], "completed");
    assert_eq!(m["existing"], true);
    let fork = job(&m, "fork");
    assert_eq!(
        fork["attempt_outcomes"],
        serde_json::json!(["lease_expired", "completed"])
    );
    assert!(
        !pid_alive(grandchild),
        "the job's leftover child survived the rerun"
    );
    let conn = rusqlite::Connection::open(ws.path().join("pipeline.sqlite3")).unwrap();
    let err: String = conn
        .query_row(
            "SELECT error FROM task_attempts WHERE attempt = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(err.contains("died while it held the lease"), "{err}");
}

/// Read-only commands open the database read-only: they answer while another process holds the
/// write lock, and they work on a read-only copy without changing a byte of it.
#[test]
fn read_only_commands_neither_wait_for_writers_nor_write() {
    let ws = workspace();
    add_config(
        ws.path(),
        r#"
[pipelines.tiny]
[[pipelines.tiny.jobs]]
id = "a"
type = "command"
params = { argv = ["true"] }
"#,
    );
    json_in(ws.path(), &["run", "tiny"], 0);
    let db = ws.path().join("pipeline.sqlite3");
    let reads: [&[&str]; 4] = [
        &["status", "--json"],
        &["status", "1", "--json"],
        &["images", "--json"],
        &["notifications", "--json"],
    ];
    {
        let writer = rusqlite::Connection::open(&db).unwrap();
        writer
            .execute_batch("BEGIN IMMEDIATE; UPDATE pipeline_executions SET error = 'x' WHERE 0;")
            .unwrap();
        for args in reads {
            let out = run_in(ws.path(), args);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?} behind a writer: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        writer.execute_batch("ROLLBACK").unwrap();
        writer
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("night.sqlite3");
    std::fs::copy(&db, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(copy_dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    for args in reads {
        let mut a = vec!["--db", copy.to_str().unwrap()];
        a.extend_from_slice(args);
        let out = run_in(ws.path(), &a);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{a:?} on a read-only copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::set_permissions(copy_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "a reader changed the copy"
    );
}

/// kill -9 of `run` after its webhook request went out but before the answer was recorded: the
/// next delivery does not wait for the 5-minute claim, sends it once more, with the same
/// idempotency key in the header and the JSON, and records it delivered.
#[test]
fn a_notification_cut_off_by_kill_9_is_sent_again_once_with_the_same_key() {
    let ws = workspace();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hold = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let got = common::hook::serve_gated(listener, hold.clone());
    add_config(
        ws.path(),
        &format!(
            r#"
[pipelines.alarm]
max_retries = 0
retry = {{ kind = "none" }}
notify = [{{ channel = "webhook", url = "{base}/hook" }}]
[[pipelines.alarm.jobs]]
id = "boom"
type = "command"
params = {{ argv = ["false"] }}
"#
        ),
    );
    let mut runner = spawn(ws.path(), &["run", "alarm"]);
    wait_for("the webhook request", Duration::from_secs(20), || {
        !got.lock().unwrap().is_empty()
    });
    runner.kill().unwrap();
    runner.wait().unwrap();
    let rows = json_in(ws.path(), &["notifications", "--json"], 0);
    assert_eq!(rows[0]["state"], "sending");
    hold.store(false, std::sync::atomic::Ordering::SeqCst);

    json_in(ws.path(), &["notifications", "--deliver", "--json"], 0);
    let reqs = got.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "sent once more, not more");
    let keys: Vec<String> = reqs
        .iter()
        .map(|(head, body)| {
            let h = common::hook::header(head, "idempotency-key").expect("Idempotency-Key header");
            let v: Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["idempotency_key"], h.as_str());
            h
        })
        .collect();
    assert_eq!(keys[0], keys[1], "the repeat carries the same key");
    let rows = json_in(ws.path(), &["notifications", "--json"], 0);
    assert_eq!(rows[0]["state"], "delivered");
    assert_eq!(
        rows[0]["attempts"], 1,
        "one recorded attempt: the cut-off one never was"
    );
    // Delivered: later runs send nothing more.
    json_in(ws.path(), &["notifications", "--deliver", "--json"], 0);
    assert_eq!(got.lock().unwrap().len(), 2);
}
