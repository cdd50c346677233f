//! `contimg tiers`, `plan` and `build` through the real binary: windows, selection rules,
//! idempotent naming, manifests through a pipe, a file and the database, and bad manifests.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use common::{contimg, json_in, run_in, workspace};

/// A workspace with `n` simulated snapshots (5 min apart from `start`) ingested.
fn ingested(n: usize, start: &str, extra: &[&str]) -> tempfile::TempDir {
    let ws = workspace();
    let n = n.to_string();
    let mut args = vec![
        "simulate", "--out", "snaps", "--images", &n, "--size", "160", "--cell", "40", "--start",
        start,
    ];
    args.extend_from_slice(extra);
    json_in(ws.path(), &args, 0);
    json_in(ws.path(), &["ingest", "snaps"], 0);
    ws
}

fn count(ws: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(ws.join("pipeline.sqlite3")).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn tiers_are_built_in_and_overridable() {
    let ws = workspace();
    let tiers = json_in(ws.path(), &["tiers", "--json"], 0);
    let names: Vec<&str> = tiers
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["quicklook", "science", "deep"]);
    let science = tiers
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "science")
        .unwrap();
    assert_eq!(science["max_images"], 100);
    // Noise cuts fit the night: relative to its median, no absolute cut unless a workspace sets one.
    assert_eq!(science["max_rms_factor"], 2.5);
    assert!(science["max_rms_jy"].is_null(), "{science}");
    assert_eq!(science["max_band_spread"], 0.05);
    assert_eq!(science["max_beam_spread"], 0.25);
    assert_eq!(science["interpolation"], "lanczos3");
    assert_eq!(science["require_astrometry"], true);
    let cfg = ws.path().join("contimg.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[tiers.science]\nmax_images = 3\n\n[tiers.weekly]\nmax_images = 500\nmax_rms_jy = 0.002\ninterpolation = \"lanczos3\"\nrequire_astrometry = true\ntimeout_minutes = 240\n");
    std::fs::write(&cfg, text).unwrap();
    let tiers = json_in(ws.path(), &["tiers", "--json"], 0);
    let find = |n: &str| {
        tiers
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("science")["max_images"], 3);
    assert!(find("science")["max_rms_jy"].is_null());
    assert_eq!(find("weekly")["max_rms_jy"], 0.002);
    assert_eq!(find("weekly")["max_rms_factor"], 2.5);
    assert_eq!(find("weekly")["timeout_minutes"], 240);
}

#[test]
fn plan_selects_window_threshold_and_count_and_is_idempotent_by_name() {
    let ws = ingested(6, "2026-11-20T03:00:00Z", &[]);
    let dir = ws.path();
    // [03:00, 03:20) holds snapshots at 03:00, 03:05, 03:10, 03:15.
    let m = json_in(
        dir,
        &[
            "plan",
            "--tier",
            "science",
            "--start",
            "2026-11-20T03:00:00Z",
            "--end",
            "2026-11-20T03:20:00Z",
            "--name",
            "w1",
        ],
        0,
    );
    assert_eq!(m["schema"], "contimg.plan/1");
    assert_eq!(m["n_images"], 4);
    assert_eq!(m["existing"], false);
    let rms: Vec<f64> = m["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["rms_jy"].as_f64().unwrap())
        .collect();
    assert!(rms.iter().all(|r| *r < 1e-3));
    for im in m["images"].as_array().unwrap() {
        assert_eq!(im["sha256"].as_str().unwrap().len(), 64);
        assert!(Path::new(im["path"].as_str().unwrap()).is_file());
    }
    // Same name, same selection: the existing plan comes back, no new row.
    let again = json_in(
        dir,
        &[
            "plan",
            "--tier",
            "science",
            "--start",
            "2026-11-20T03:00:00Z",
            "--end",
            "2026-11-20T03:20:00Z",
            "--name",
            "w1",
        ],
        0,
    );
    assert_eq!(again["plan_id"], m["plan_id"]);
    assert_eq!(again["existing"], true);
    assert_eq!(count(dir, "mosaic_plans"), 1);
    // Same name, different selection: refused (exit 2) unless --replace.
    let out = run_in(
        dir,
        &[
            "plan",
            "--tier",
            "science",
            "--start",
            "2026-11-20T03:00:00Z",
            "--end",
            "2026-11-20T03:10:00Z",
            "--name",
            "w1",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--replace"));
    let replaced = json_in(
        dir,
        &[
            "plan",
            "--tier",
            "science",
            "--start",
            "2026-11-20T03:00:00Z",
            "--end",
            "2026-11-20T03:10:00Z",
            "--name",
            "w1",
            "--replace",
        ],
        0,
    );
    assert_eq!(replaced["plan_id"], m["plan_id"]);
    assert_eq!(replaced["n_images"], 2);
    assert_eq!(count(dir, "mosaic_plans"), 1);
    // The tier's count caps the selection, best rms first.
    let cfg = dir.join("contimg.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[tiers.quicklook]\nmax_images = 2\n");
    std::fs::write(&cfg, text).unwrap();
    let q = json_in(
        dir,
        &[
            "plan",
            "--tier",
            "quicklook",
            "--night",
            "2026-11-20",
            "--name",
            "q",
        ],
        0,
    );
    assert_eq!(q["n_images"], 2);
    let all = json_in(dir, &["images", "--json"], 0);
    let mut rms_all: Vec<f64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rms_jy"].as_f64().unwrap())
        .collect();
    rms_all.sort_by(f64::total_cmp);
    let mut chosen: Vec<f64> = q["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["rms_jy"].as_f64().unwrap())
        .collect();
    chosen.sort_by(f64::total_cmp);
    assert_eq!(chosen, rms_all[..2].to_vec());
    // auto: a 30 min window is quicklook, a 3-day one deep.
    let a = json_in(
        dir,
        &[
            "plan",
            "--tier",
            "auto",
            "--start",
            "2026-11-20T03:00:00Z",
            "--end",
            "2026-11-20T03:30:00Z",
            "--name",
            "a1",
        ],
        0,
    );
    assert_eq!(a["tier"], "quicklook");
    let d = json_in(
        dir,
        &[
            "plan",
            "--tier",
            "auto",
            "--start",
            "2026-11-18T00:00:00Z",
            "--end",
            "2026-11-21T00:00:00Z",
            "--name",
            "a2",
        ],
        0,
    );
    assert_eq!(d["tier"], "deep");
}

#[test]
fn empty_window_fails_to_be_retried_and_an_all_rejected_one_fails_for_good_recording_nothing() {
    let ws = ingested(3, "2026-11-20T03:00:00Z", &["--noise", "0.02"]);
    let dir = ws.path();
    // A workspace's absolute cut (contimg.toml of an older contimg) still applies: every image of
    // the 20 mJy night is over it, which the same data would repeat (exit 3).
    common::add_config(dir, "[tiers.science]\nmax_rms_jy = 0.001\n");
    let out = run_in(dir, &["plan", "--tier", "science", "--night", "2026-11-20"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("every one of the 3 image(s)")
            && err.contains("3 rms (e.g.")
            && err.contains("max_rms_jy = 1 mJy/beam")
            && err.contains("a pipeline does not retry it"),
        "{err}"
    );
    // An empty window is a failure that late data can mend (exit 1).
    let out = run_in(
        dir,
        &["plan", "--tier", "quicklook", "--night", "2026-11-21"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no image was observed in the window"), "{err}");
    assert_eq!(count(dir, "mosaic_plans"), 0);
}

#[test]
fn coverage_crosses_ra_zero() {
    // Six snapshots starting at RA 358 deg: the strip runs across 0h.
    let ws = ingested(6, "2026-11-20T03:00:00Z", &["--ra-start", "358"]);
    let m = json_in(
        ws.path(),
        &["plan", "--tier", "science", "--night", "2026-11-20"],
        0,
    );
    let c = &m["coverage"];
    let (lo, hi) = (
        c["ra_min_deg"].as_f64().unwrap(),
        c["ra_max_deg"].as_f64().unwrap(),
    );
    assert!(lo > 350.0 && hi < 10.0, "coverage should wrap: {c}");
    // And the mosaic builds across it, with the same wrapped coverage.
    let b = json_in(
        ws.path(),
        &["build", "--plan", &m["plan_id"].to_string()],
        0,
    );
    let bc = &b["coverage"];
    assert!(
        bc["ra_min_deg"].as_f64().unwrap() > 350.0 && bc["ra_max_deg"].as_f64().unwrap() < 10.0,
        "{bc}"
    );
}

fn pipe_plan_into_build(dir: &Path) -> serde_json::Value {
    let mut plan = contimg()
        .current_dir(dir)
        .args(["plan", "--tier", "science", "--night", "2026-11-20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let build = contimg()
        .current_dir(dir)
        .args(["build", "-"])
        .stdin(plan.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(plan.wait().unwrap().success());
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    serde_json::from_slice(&build.stdout).unwrap()
}

#[test]
fn build_from_a_pipe_a_file_and_the_database_leaves_one_mosaic() {
    let ws = ingested(4, "2026-11-20T03:00:00Z", &[]);
    let dir = ws.path();
    let m = pipe_plan_into_build(dir);
    assert_eq!(m["schema"], "contimg.mosaic/1");
    assert_eq!(m["n_images"], 4);
    for key in ["path", "weight_path", "noise_path"] {
        let p = m[key].as_str().unwrap();
        assert!(Path::new(p).is_file(), "{key} {p}");
        assert!(
            p.starts_with(
                dir.canonicalize()
                    .unwrap()
                    .join("mosaics")
                    .to_str()
                    .unwrap()
            )
        );
    }
    assert_eq!(
        m["sha256"]["mosaic"].as_str().unwrap(),
        contimg::fsutil::sha256_file(Path::new(m["path"].as_str().unwrap())).unwrap()
    );
    // No temporary files are left beside the products.
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("mosaics"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let conn = rusqlite::Connection::open(dir.join("pipeline.sqlite3")).unwrap();
    let (status,): (String,) = conn
        .query_row("SELECT status FROM mosaic_plans", [], |r| Ok((r.get(0)?,)))
        .unwrap();
    assert_eq!(status, "completed");
    let (n, tier, noise): (i64, String, f64) = conn
        .query_row(
            "SELECT n_images, tier, effective_noise_jy FROM mosaics",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((n, tier.as_str()), (4, "science"));
    assert!((noise - m["effective_noise_jy"].as_f64().unwrap()).abs() < 1e-12);

    // A manifest file and --plan ID rebuild the same product: still one mosaic row.
    let plan = json_in(
        dir,
        &["plan", "--tier", "science", "--night", "2026-11-20"],
        0,
    );
    std::fs::write(dir.join("plan.json"), plan.to_string()).unwrap();
    let from_file = json_in(dir, &["build", "plan.json"], 0);
    assert_eq!(from_file["mosaic_id"], m["mosaic_id"]);
    let from_db = json_in(dir, &["build", "--plan", &plan["plan_id"].to_string()], 0);
    assert_eq!(from_db["mosaic_id"], m["mosaic_id"]);
    assert_eq!(count(dir, "mosaics"), 1);

    // The mosaic's header carries provenance astropy can read.
    let hdr = common::python_json(
        r#"
import json, sys
from astropy.io import fits
from astropy.wcs import WCS
h = fits.getheader(sys.argv[1])
w = WCS(h)
print(json.dumps({"bunit": h.get("BUNIT"), "bmaj": h.get("BMAJ"), "history": [str(x) for x in h.get("HISTORY", [])],
                  "naxis": [h["NAXIS1"], h["NAXIS2"]], "celestial": w.has_celestial}))
"#,
        &[m["path"].as_str().unwrap()],
    );
    assert_eq!(hdr["naxis"], serde_json::json!(m["shape"]));
    assert_eq!(hdr["celestial"], true);
    assert!(hdr["bunit"].as_str().unwrap().to_uppercase().contains("JY"));
    assert!(hdr["bmaj"].as_f64().unwrap() > 0.0);
    let history = hdr["history"].to_string();
    for im in plan["images"].as_array().unwrap() {
        let name = Path::new(im["path"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        assert!(history.contains(name), "HISTORY should name input {name}");
    }
}

#[test]
fn bad_manifests_fail_clearly() {
    let ws = ingested(2, "2026-11-20T03:00:00Z", &[]);
    let dir = ws.path();
    let plan = json_in(
        dir,
        &["plan", "--tier", "science", "--night", "2026-11-20"],
        0,
    );
    let feed = |text: &str| {
        let mut child = contimg()
            .current_dir(dir)
            .args(["build", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.stdout,
        )
    };
    // Unknown schema.
    let mut other = plan.clone();
    other["schema"] = "contimg.plan/99".into();
    let (code, err, stdout) = feed(&other.to_string());
    assert_eq!(code, Some(2));
    assert!(
        err.contains("contimg.plan/99") && err.contains("contimg.plan/1"),
        "{err}"
    );
    assert!(stdout.is_empty());
    // Empty input (the previous step failed).
    let (code, err, _) = feed("");
    assert_eq!(code, Some(2));
    assert!(err.contains("empty"), "{err}");
    // Not JSON.
    let (code, _, _) = feed("plan: yes");
    assert_eq!(code, Some(2));
    // An image changed since planning.
    let first = plan["images"][0]["path"].as_str().unwrap().to_string();
    let mut bytes = std::fs::read(&first).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x55;
    std::fs::write(&first, &bytes).unwrap();
    let (code, err, _) = feed(&plan.to_string());
    assert_eq!(code, Some(2));
    assert!(
        err.contains("changed since it was planned") && err.contains(&first),
        "{err}"
    );
    // A missing image.
    std::fs::remove_file(&first).unwrap();
    let (code, err, _) = feed(&plan.to_string());
    assert_eq!(code, Some(2));
    assert!(err.contains("missing") && err.contains(&first), "{err}");
    assert_eq!(count(dir, "mosaics"), 0);
    // A plan id that does not exist.
    let out = run_in(dir, &["build", "--plan", "999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("999"));
}
