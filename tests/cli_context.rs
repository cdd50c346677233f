//! One command, one context: the real binary reads `contimg.toml` once per command (its `-vv` log
//! says "read PATH" once), decides the exit code from the error's type (a corrupt database is
//! contimg's fault: 1; a bad manifest is the input's: 2) and prints the error's causes; `-q` leaves
//! stderr empty, the worker's messages included.

mod common;

use std::path::Path;

use common::{add_config, contimg, json_in, run_in};

/// stderr of a command, as text.
fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A pipeline of one `command` job that prints its outputs, and one that fails.
const PIPELINES: &str = r#"
[pipelines.echo]
[[pipelines.echo.jobs]]
id = "say"
type = "command"
params = { argv = ["sh", "-c", "echo 'to the log' >&2; echo '{\"n\": 1}'"] }
"#;

#[test]
fn contimg_toml_is_read_once_per_command() {
    let ws = common::workspace();
    add_config(ws.path(), PIPELINES);
    let cfg = std::fs::canonicalize(ws.path().join("contimg.toml")).unwrap();
    let read_line = format!("contimg: read {}", cfg.display());
    let commands: &[(&[&str], i32)] = &[
        (&["images", "--json"], 0),
        (&["tiers", "--json"], 0),
        (&["pipelines", "--json"], 0),
        (&["pipelines", "check"], 0),
        (&["status", "--json"], 0),
        (&["notifications", "--json"], 0),
        (&["cron", "--json"], 0),
        // No image in the window: the work failed (1), after the tiers and the database.
        (&["plan", "--tier", "science", "--night", "2026-11-20"], 1),
        (&["build", "--plan", "7"], 2),
        (&["run", "echo", "--detach"], 0),
        (&["worker", "--once"], 0),
        (&["run", "echo"], 0),
        (&["retry", "1", "--detach"], 0),
    ];
    for (args, code) in commands {
        let mut all = vec!["-vv"];
        all.extend_from_slice(args);
        let out = run_in(ws.path(), &all);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "contimg {all:?}: {err}");
        let reads = err.lines().filter(|l| *l == read_line).count();
        assert_eq!(
            reads, 1,
            "contimg {all:?} read contimg.toml {reads} times: {err}"
        );
    }
    // Without -vv the line is not shown.
    let out = run_in(ws.path(), &["images", "--json"]);
    assert!(!stderr(&out).contains("contimg: read"), "{}", stderr(&out));
}

/// Writes `bytes` over the workspace's database.
fn corrupt(ws: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let db = ws.join("pipeline.sqlite3");
    for side in ["pipeline.sqlite3-wal", "pipeline.sqlite3-shm"] {
        let _ = std::fs::remove_file(ws.join(side));
    }
    std::fs::write(&db, bytes).unwrap();
    db
}

#[test]
fn a_corrupt_database_is_contimg_s_fault_exit_1_naming_the_file_and_the_cause() {
    let ws = common::workspace();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    corrupt(ws.path(), &garbage);
    for args in [
        &["images"][..],
        &["status"],
        &["plan", "--tier", "science", "--last", "1d"],
    ] {
        let out = run_in(ws.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let mut lines = err.lines();
        let first = lines.next().unwrap_or("");
        assert!(
            first.starts_with("contimg: error: ") && first.contains("pipeline.sqlite3"),
            "{args:?}: {err}"
        );
        assert!(
            lines.any(|l| l.starts_with("  caused by: ") && l.contains("not a database")),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    // An empty (truncated) database file was exit 2, as if the command line were wrong; it is
    // the database's fault.
    corrupt(ws.path(), b"");
    let out = run_in(ws.path(), &["images"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("pipeline.sqlite3") && err.contains("empty"),
        "{err}"
    );
}

#[test]
fn a_bad_manifest_is_the_input_s_fault_exit_2_with_its_cause() {
    let ws = common::workspace();
    let out = contimg()
        .current_dir(ws.path())
        .args(["build", "-"])
        .stdin(std::fs::File::open(ws.path().join("contimg.toml")).unwrap())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.lines().next(),
        Some("contimg: error: cannot read the plan to build"),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("  caused by: stdin: not a JSON manifest")),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // A plan id that is not recorded is the input's too, and a tier name that is not one.
    let out = run_in(ws.path(), &["build", "--plan", "42"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no plan with id 42"));
    let out = run_in(ws.path(), &["plan", "--tier", "nope", "--last", "1d"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown tier \"nope\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn quiet_means_an_empty_stderr_for_the_worker_too() {
    let ws = common::workspace();
    add_config(ws.path(), PIPELINES);
    json_in(ws.path(), &["-q", "run", "echo", "--detach"], 0);
    let out = run_in(ws.path(), &["-q", "worker", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "-q worker --once printed on stderr");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["completed"], 1, "{stats}");
    // The same work without -q says what it did.
    json_in(
        ws.path(),
        &["run", "echo", "--detach", "--slot", "2026-01-01"],
        0,
    );
    let out = run_in(ws.path(), &["worker", "--once"]);
    assert!(
        stderr(&out).contains("worker: 1 attempt(s), 1 completed"),
        "{}",
        stderr(&out)
    );
}
