//! Issue 13's pipeline items through the real binary: job output bounded and made printable,
//! `max_active` decided in one transaction, `run P` working only P's tasks, recovery after a kill -9
//! (dead runners seen as dead, their jobs' process groups killed, no wait for the lease), secrets
//! kept out of listings and the database, read-only commands on a read-only copy.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{contimg, json_in, run_in, workspace};
use serde_json::Value;

fn add_config(ws: &Path, toml: &str) {
    let p = ws.join("contimg.toml");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push('\n');
    text.push_str(toml);
    std::fs::write(&p, text).unwrap();
}

fn job<'a>(m: &'a Value, id: &str) -> &'a Value {
    m["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id)
        .unwrap_or_else(|| panic!("no job {id} in {m}"))
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    exists
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().starts_with('Z'))
                    == Some(true)
            })
            .unwrap_or(false)
}

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
