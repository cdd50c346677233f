//! Planning a night of any telescope through the real binary: the noise cut fits the night (a VLA
//! 327 MHz night at 6.5 mJy plans in the science tier), bands and resolutions are never mixed
//! (the images left out are named in the plan, in the database and by QA's `selection` check), a
//! window whose every image is left out fails for good (a pipeline does not retry it) while an
//! empty window is retried for late data.

mod common;

use std::path::Path;

use common::{job, json_in, run_in, workspace};
use serde_json::Value;

/// `contimg simulate` into `out` (small snapshots, 5 min apart from `start`, 20" cells unless
/// `extra` gives --cell) with `extra` flags, then ingests them.
fn night(ws: &Path, out: &str, n: usize, start: &str, extra: &[&str]) {
    let n = n.to_string();
    let mut args = vec![
        "simulate", "--out", out, "--images", &n, "--size", "128", "--start", start,
    ];
    if !extra.contains(&"--cell") {
        args.extend(["--cell", "20"]);
    }
    args.extend_from_slice(extra);
    json_in(ws, &args, 0);
    json_in(ws, &["ingest", out], 0);
}

const DAY: &[&str] = &["--tier", "science", "--night", "2026-01-01"];

fn plan(ws: &Path) -> (Value, String) {
    let mut args = vec!["plan"];
    args.extend_from_slice(DAY);
    let out = run_in(ws, &args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    (serde_json::from_slice(&out.stdout).unwrap(), err)
}

fn left_out(m: &Value) -> Vec<(String, String, String)> {
    m["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["path"].as_str().unwrap().to_string(),
                l["reason_kind"].as_str().unwrap().to_string(),
                l["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn recorded_left_out(ws: &Path, plan_id: i64) -> Value {
    let conn = rusqlite::Connection::open(ws.join("pipeline.sqlite3")).unwrap();
    let text: String = conn
        .query_row(
            "SELECT left_out FROM mosaic_plans WHERE id = ?1",
            [plan_id],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn two_bands_in_one_window_plan_one_and_name_the_other_down_to_qa() {
    let ws = workspace();
    let dir = ws.path();
    night(dir, "l", 3, "2026-01-01T00:00:00Z", &["--freq", "1.40e9"]);
    night(
        dir,
        "evla",
        2,
        "2026-01-01T02:00:00Z",
        &["--freq", "1.52e9", "--seed", "7"],
    );
    let (m, err) = plan(dir);
    assert_eq!(m["n_images"], 3, "{m}");
    for im in m["images"].as_array().unwrap() {
        assert!(im["path"].as_str().unwrap().contains("/l/"), "{im}");
    }
    let left = left_out(&m);
    assert_eq!(left.len(), 2, "{left:?}");
    for (path, kind, reason) in &left {
        assert!(path.contains("/evla/"), "{path}");
        assert_eq!(kind, "band");
        assert!(
            reason.contains("1.520 GHz") && reason.contains("1.400 GHz"),
            "{reason}"
        );
    }
    assert!(
        err.contains("3 image(s), tier science, 2 left out"),
        "{err}"
    );
    assert!(err.contains("left out (band): 2 image(s)"), "{err}");
    // The database keeps the list with the plan, for QA.
    let plan_id = m["plan_id"].as_i64().unwrap();
    assert_eq!(recorded_left_out(dir, plan_id), m["left_out"]);
    // QA of the mosaic says the night lost 2 of its 5 images (40 % > 25 %) and names them.
    let built = json_in(dir, &["build", "--plan", &plan_id.to_string()], 0);
    let id = built["mosaic_id"].as_i64().unwrap().to_string();
    let qa = json_in(dir, &["qa", "--mosaic", &id, "--no-pictures"], 0);
    let sel = qa["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "selection")
        .unwrap_or_else(|| panic!("no selection check: {qa}"));
    assert_eq!(sel["checked"], true, "{sel}");
    assert_eq!(sel["status"], "WARN", "{sel}");
    assert!((sel["value"].as_f64().unwrap() - 0.4).abs() < 1e-9, "{sel}");
    assert!(sel["message"].as_str().unwrap().contains("2 band"), "{sel}");
    let blame: Vec<&str> = sel["blame"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert_eq!(blame.len(), 2, "{sel}");
    assert!(blame.iter().all(|b| b.contains("/evla/")), "{blame:?}");
    assert_eq!(qa["verdict"], "WARN", "{}", qa["checks"]);
}

#[test]
fn another_resolution_is_left_out_with_its_reason() {
    let ws = workspace();
    let dir = ws.path();
    // --cell 20: a 64"x52" restoring beam; --cell 40: 128"x104", four times the area.
    night(dir, "fine", 3, "2026-01-01T00:00:00Z", &[]);
    night(
        dir,
        "coarse",
        1,
        "2026-01-01T02:00:00Z",
        &["--cell", "40", "--seed", "9"],
    );
    let (m, err) = plan(dir);
    assert_eq!(m["n_images"], 3, "{m}");
    let left = left_out(&m);
    assert_eq!(left.len(), 1, "{left:?}");
    let (path, kind, reason) = &left[0];
    assert!(path.contains("/coarse/"), "{path}");
    assert_eq!(kind, "resolution");
    assert!(
        reason.contains("4.00×") && reason.contains("max_beam_spread"),
        "{reason}"
    );
    assert!(err.contains("left out (resolution): 1 image(s)"), "{err}");
}

#[test]
fn a_vla_night_at_6_5_mjy_plans_in_the_science_tier_losing_nothing() {
    let ws = workspace();
    let dir = ws.path();
    night(
        dir,
        "p",
        4,
        "2026-01-01T00:00:00Z",
        &[
            "--freq",
            "3.27e8",
            "--noise",
            "0.0065",
            "--telescope",
            "VLA",
        ],
    );
    let (m, _) = plan(dir);
    assert_eq!(m["n_images"], 4, "{m}");
    assert_eq!(m["left_out"], serde_json::json!([]));
    let rms: Vec<f64> = m["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["rms_jy"].as_f64().unwrap())
        .collect();
    assert!(rms.iter().all(|r| *r > 3e-3), "{rms:?}");
}

/// A pipeline `pb` (plan on the science tier for the 24 h before the slot) with two retries, no
/// delay between them.
fn retried_plan_pipeline(ws: &Path) {
    common::add_config(
        ws,
        r#"
[pipelines.pb]
window = "24h"
max_retries = 2
retry = { kind = "fixed", delay_s = 0 }
[[pipelines.pb.jobs]]
id = "plan"
type = "mosaic_plan"
params = { tier = "science", start = "${slot.start}", end = "${slot.end}" }
"#,
    );
}

#[test]
fn a_night_whose_every_image_is_left_out_fails_at_once_and_an_empty_one_is_retried() {
    let ws = workspace();
    let dir = ws.path();
    // A workspace planning L band only: a night of 1.52 GHz images has nothing for it.
    common::add_config(dir, "[tiers.science]\nfrequency_hz = [1.3e9, 1.45e9]\n");
    retried_plan_pipeline(dir);
    night(
        dir,
        "evla",
        2,
        "2026-01-01T00:00:00Z",
        &["--freq", "1.52e9"],
    );
    let out = run_in(dir, &["plan", "--tier", "science", "--night", "2026-01-01"]);
    assert_eq!(out.status.code(), Some(3));
    let m = json_in(dir, &["run", "pb", "--slot", "2026-01-01T12:00Z"], 1);
    assert_eq!(m["status"], "failed", "{m}");
    let plan = job(&m, "plan");
    assert_eq!(plan["state"], "failed");
    assert_eq!(
        plan["attempts"], 1,
        "a permanent failure is not retried: {plan}"
    );
    let error = plan["error"].as_str().unwrap();
    assert!(
        error.contains("exit code 3")
            && error.contains("frequency_hz")
            && error.contains("not retried"),
        "{error}"
    );
    // A window with no image yet is retried, as late data can mend it.
    let m = json_in(dir, &["run", "pb", "--slot", "2026-02-01T12:00Z"], 1);
    let plan = job(&m, "plan");
    assert_eq!(plan["state"], "failed", "{plan}");
    assert_eq!(plan["attempts"], 3, "retried twice: {plan}");
    let error = plan["error"].as_str().unwrap();
    assert!(
        error.contains("exit code 1") && error.contains("no image was observed"),
        "{error}"
    );
}
