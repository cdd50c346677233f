//! The mosaic job types run the same subcommands a person runs: a pipeline of plan → build on simulated
//! snapshots leaves the rows the shell chain leaves, and the built-in nightly pipeline runs end to end.

mod common;

use std::path::Path;

use common::{job, json_in, workspace};

/// Three small simulated snapshots on 2026-01-01 00:00–00:10 UTC, ingested.
fn night(ws: &Path) {
    json_in(
        ws,
        &[
            "simulate", "--out", "snaps", "--images", "3", "--size", "128", "--cell", "20",
        ],
        0,
    );
    let files: Vec<String> = std::fs::read_dir(ws.join("snaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "fits"))
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(files.len(), 3);
    let mut args = vec!["ingest"];
    args.extend(files.iter().map(String::as_str));
    json_in(ws, &args, 0);
}

fn count(ws: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(ws.join("pipeline.sqlite3")).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn plan_and_build_jobs_leave_the_rows_the_shell_chain_leaves() {
    let ws = workspace();
    night(ws.path());
    let cfg = ws.path().join("contimg.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        r#"
[pipelines.pb]
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
    std::fs::write(&cfg, text).unwrap();
    let m = json_in(ws.path(), &["run", "pb", "--slot", "2026-01-01T12:00Z"], 0);
    let plan = &job(&m, "plan")["outputs"];
    let build = &job(&m, "build")["outputs"];
    assert_eq!(plan["schema"], "contimg.plan/1");
    assert_eq!(plan["name"], "pb_2026-01-01");
    assert_eq!(plan["n_images"], 3);
    assert_eq!(
        plan["window"]["start"].as_str().unwrap()[..16],
        *"2025-12-31T12:00"
    );
    assert_eq!(build["schema"], "contimg.mosaic/1");
    assert_eq!(build["plan_id"], plan["plan_id"]);
    assert!(Path::new(build["path"].as_str().unwrap()).is_file());
    assert_eq!(count(ws.path(), "SELECT count(*) FROM mosaic_plans"), 1);
    assert_eq!(count(ws.path(), "SELECT count(*) FROM mosaics"), 1);
    // The same plan by hand is the same row (plan is idempotent by name and selection).
    let by_hand = json_in(
        ws.path(),
        &[
            "plan",
            "--tier",
            "science",
            "--start",
            "2025-12-31T12:00:00Z",
            "--end",
            "2026-01-01T12:00:00Z",
            "--name",
            "pb_2026-01-01",
        ],
        0,
    );
    assert_eq!(by_hand["plan_id"], plan["plan_id"]);
    assert_eq!(by_hand["existing"], true);
    assert_eq!(count(ws.path(), "SELECT count(*) FROM mosaic_plans"), 1);
}

/// Processes whose command line mentions `needle` (e.g. the workspace path of a test).
fn processes_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let zombie = std::fs::read_to_string(e.path().join("stat"))
                .map_or(true, |s| s.split_whitespace().nth(2) == Some("Z"));
            if cmd.contains(needle) && !zombie {
                out.push(cmd);
            }
        }
    }
    out
}

#[test]
fn kill_9_of_run_during_build_then_run_again_builds_once_more_and_plans_once() {
    let ws = workspace();
    // Big enough that a debug build takes about a second.
    json_in(
        ws.path(),
        &[
            "simulate", "--out", "snaps", "--images", "4", "--size", "512", "--cell", "10",
        ],
        0,
    );
    let mut args = vec!["ingest".to_string()];
    for e in std::fs::read_dir(ws.path().join("snaps")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "fits") {
            args.push(p.display().to_string());
        }
    }
    json_in(
        ws.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        0,
    );
    let cfg = ws.path().join("contimg.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        r#"
[pipelines.pb]
window = "24h"
max_retries = 2
retry = { kind = "fixed", delay_s = 0 }
[[pipelines.pb.jobs]]
id = "plan"
type = "mosaic_plan"
params = { tier = "science", start = "${slot.start}", end = "${slot.end}" }
[[pipelines.pb.jobs]]
id = "build"
type = "mosaic_build"
params = { plan_id = "${plan.plan_id}" }
depends_on = ["plan"]
"#,
    );
    std::fs::write(&cfg, text).unwrap();
    let slot = "2026-01-01T12:00Z";
    let mut child = common::contimg()
        .current_dir(ws.path())
        .args(["run", "pb", "--slot", slot, "--lease", "1s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    let ws_path = ws.path().canonicalize().unwrap().display().to_string();
    // Wait until the build job's child process is running, then kill -9 the runner.
    loop {
        assert!(t0.elapsed().as_secs() < 30, "build never started");
        if processes_with(&ws_path)
            .iter()
            .any(|c| c.contains(" build --plan"))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        count(ws.path(), "SELECT count(*) FROM mosaics"),
        0,
        "killed mid-build"
    );
    // The build child died with its runner.
    let t1 = std::time::Instant::now();
    while processes_with(&ws_path)
        .iter()
        .any(|c| c.contains(" build --plan"))
    {
        assert!(
            t1.elapsed().as_secs() < 5,
            "the build child outlived its runner"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let m = json_in(
        ws.path(),
        &["run", "pb", "--slot", slot, "--lease", "1s"],
        0,
    );
    assert_eq!(m["existing"], true);
    assert_eq!(job(&m, "plan")["attempts"], 1);
    assert_eq!(
        job(&m, "build")["attempt_outcomes"],
        serde_json::json!(["lease_expired", "completed"])
    );
    assert_eq!(
        count(ws.path(), "SELECT count(*) FROM pipeline_executions"),
        1
    );
    assert_eq!(count(ws.path(), "SELECT count(*) FROM mosaic_plans"), 1);
    assert_eq!(count(ws.path(), "SELECT count(*) FROM mosaics"), 1);
}

#[test]
fn nightly_mosaic_runs_plan_build_qa_once_per_slot() {
    let ws = workspace();
    night(ws.path());
    let m = json_in(
        ws.path(),
        &["run", "nightly_mosaic", "--slot", "2026-01-01T03:00Z"],
        0,
    );
    for j in ["plan", "build", "qa"] {
        assert_eq!(job(&m, j)["state"], "completed", "{m}");
    }
    // Named after the night its window [2025-12-31T03:00, 2026-01-01T03:00) holds.
    assert_eq!(
        job(&m, "plan")["outputs"]["name"],
        "nightly_2025-12-31",
        "{m}"
    );
    // The QA verdict is carried by the execution and its listing, so a WARN is seen.
    let verdict = job(&m, "qa")["outputs"]["verdict"].clone();
    assert!(verdict.is_string(), "{m}");
    assert_eq!(m["qa_verdict"], verdict, "{m}");
    let listed = json_in(ws.path(), &["status", "--json"], 0);
    assert_eq!(listed[0]["qa_verdict"], verdict, "{listed}");
    let again = json_in(
        ws.path(),
        &["run", "nightly_mosaic", "--slot", "2026-01-01T03:00Z"],
        0,
    );
    assert_eq!(again["execution_id"], m["execution_id"]);
    assert_eq!(
        count(ws.path(), "SELECT count(*) FROM pipeline_executions"),
        1
    );
    assert_eq!(count(ws.path(), "SELECT count(*) FROM mosaics"), 1);
    assert_eq!(count(ws.path(), "SELECT count(*) FROM mosaic_qa"), 1);
}

#[test]
fn a_qa_fail_fails_the_execution_at_once_and_queues_its_notification() {
    let ws = workspace();
    night(ws.path());
    // A reference catalogue that puts every source 1.5 restoring beams south of where the
    // mosaic has it: the astrometry check FAILs.
    let snaps = std::fs::read_to_string(ws.path().join("snaps/snapshots.csv")).unwrap();
    let head: Vec<&str> = snaps.lines().next().unwrap().split(',').collect();
    let bmaj_col = head.iter().position(|c| *c == "bmaj_deg").unwrap();
    let bmaj: f64 = snaps
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(bmaj_col)
        .unwrap()
        .parse()
        .unwrap();
    let truth = std::fs::read_to_string(ws.path().join("snaps/truth.csv")).unwrap();
    let mut lines = truth.lines();
    let header = lines.next().unwrap();
    let cols: Vec<&str> = header.split(',').collect();
    let dec_col = cols.iter().position(|c| *c == "dec_deg").unwrap();
    let mut shifted = format!("{header}\n");
    for l in lines {
        let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
        let dec: f64 = f[dec_col].parse().unwrap();
        f[dec_col] = format!("{}", dec - 1.5 * bmaj);
        shifted.push_str(&f.join(","));
        shifted.push('\n');
    }
    std::fs::write(ws.path().join("shifted.csv"), shifted).unwrap();
    let cfg = ws.path().join("contimg.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "reference = \"\"",
        "reference = \"shifted.csv\"",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let started = std::time::Instant::now();
    let m = json_in(
        ws.path(),
        &["run", "nightly_mosaic", "--slot", "2026-01-01T03:00Z"],
        1,
    );
    // Not retried with the pipeline's back-off (60 s, then 180 s): one attempt, failed.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "QA FAIL was retried"
    );
    let qa = job(&m, "qa");
    assert_eq!(qa["state"], "failed", "{m}");
    assert_eq!(qa["attempts"], 1, "{qa}");
    assert!(
        qa["error"].as_str().unwrap().contains("QA verdict FAIL"),
        "{qa}"
    );
    assert_eq!(job(&m, "build")["state"], "completed");
    assert_eq!(
        count(ws.path(), "SELECT count(*) FROM mosaic_qa WHERE passed = 0"),
        1
    );
    assert_eq!(
        count(
            ws.path(),
            "SELECT count(*) FROM mosaics WHERE qa_status = 'FAIL'"
        ),
        1
    );
    // The failure is in the notification outbox.
    assert!(count(ws.path(), "SELECT count(*) FROM notifications") >= 1);
    // And status says why the execution failed, at a glance: its QA said FAIL.
    assert_eq!(m["qa_verdict"], "FAIL", "{m}");
    let listed = json_in(ws.path(), &["status"], 0);
    assert_eq!(listed[0]["status"], "failed", "{listed}");
    assert_eq!(listed[0]["qa_verdict"], "FAIL", "{listed}");
    let table = on_a_terminal(ws.path(), &["status"]);
    assert!(table.contains("failed (QA FAIL)"), "{table}");
}

/// Runs `contimg ARGS` in `dir` on a terminal (a pseudo-terminal made by util-linux's
/// `script`), as a person at a shell sees it: the table forms. Returns what was printed.
fn on_a_terminal(dir: &Path, args: &[&str]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut cmd = vec![quote(env!("CARGO_BIN_EXE_contimg"))];
    cmd.extend(args.iter().map(|a| quote(a)));
    let out = std::process::Command::new("script")
        .current_dir(dir)
        .env_remove("CONTIMG_WORKSPACE")
        .env_remove("CONTIMG_DB")
        .args(["-q", "-e", "-c", &cmd.join(" "), "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `script` ({e}): install util-linux (Debian: bsdutils)")
        });
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        out.status.success(),
        "contimg {args:?} on a terminal: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn a_night_is_named_after_its_date_and_a_qa_warn_shows_in_status() {
    let ws = workspace();
    // Three snapshots in the evening of 1999-05-31 (UTC).
    json_in(
        ws.path(),
        &[
            "simulate",
            "--out",
            "snaps",
            "--images",
            "3",
            "--size",
            "128",
            "--cell",
            "20",
            "--start",
            "1999-05-31T22:00:00Z",
        ],
        0,
    );
    let mut args = vec!["ingest".to_string()];
    for e in std::fs::read_dir(ws.path().join("snaps")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "fits") {
            args.push(p.display().to_string());
        }
    }
    json_in(
        ws.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        0,
    );
    // A clean night WARNs when the science tier's artefact score may not exceed −1 (every
    // score, 0 for a clean night, does). The statistical checks cannot be made to WARN so: they
    // leave PASS only when significantly worse than a clean night, whatever the threshold.
    let cfg = ws.path().join("contimg.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let at = text.find("[qa.tiers.science]").unwrap();
    let (head, tail) = text.split_at(at);
    let tail = tail.replacen("artefact_warn = 0.5", "artefact_warn = -1.0", 1);
    assert_ne!(tail, text[at..], "no artefact_warn in [qa.tiers.science]");
    std::fs::write(&cfg, format!("{head}{tail}")).unwrap();

    // The 03:00 UTC slot of 1999-06-01 holds [1999-05-31T03:00, 1999-06-01T03:00): the night of
    // 1999-05-31, which names the plan (its slot's date, 1999-06-01, has none of the data).
    let m = json_in(
        ws.path(),
        &["run", "nightly_mosaic", "--slot", "1999-06-01T03:00Z"],
        0,
    );
    let plan = &job(&m, "plan")["outputs"];
    assert_eq!(plan["name"], "nightly_1999-05-31", "{m}");
    assert_eq!(plan["n_images"], 3, "{m}");
    assert_eq!(m["status"], "completed", "{m}");
    let qa = &job(&m, "qa")["outputs"];
    assert_eq!(qa["verdict"], "WARN", "{qa}");
    assert_eq!(m["qa_verdict"], "WARN", "{m}");
    let eid = m["execution_id"].as_i64().unwrap().to_string();

    // status, as JSON (a pipe) and as a table (a terminal), listing and one execution.
    let listed = json_in(ws.path(), &["status"], 0);
    assert_eq!(listed[0]["status"], "completed", "{listed}");
    assert_eq!(listed[0]["qa_verdict"], "WARN", "{listed}");
    let one = json_in(ws.path(), &["status", &eid], 0);
    assert_eq!(one["qa_verdict"], "WARN", "{one}");
    let table = on_a_terminal(ws.path(), &["status"]);
    let row = table
        .lines()
        .find(|l| l.contains("nightly_mosaic"))
        .unwrap_or_else(|| panic!("no nightly_mosaic row in:\n{table}"));
    assert!(row.contains("completed (QA WARN)"), "{table}");
    let detail = on_a_terminal(ws.path(), &["status", &eid]);
    assert!(
        detail
            .lines()
            .next()
            .is_some_and(|l| l.ends_with(": completed (QA WARN)")),
        "{detail}"
    );
}
