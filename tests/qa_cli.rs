//! `contimg qa` end to end: the real binary on simulated mosaics recorded in a test database.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use contimg::manifest::{Coverage, MOSAIC_SCHEMA, MosaicManifest, ProductHashes, Window};
use contimg::mosaic::qa::synth::SynthMosaic;
use contimg::store::Store;

fn contimg(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_contimg"));
    cmd.args(args)
        .env_remove("CONTIMG_WORKSPACE")
        .env_remove("CONTIMG_DB")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn add_mosaic(db: &Path, name: &str, tier: &str, path: &Path) -> i64 {
    let store = Store::open(db).unwrap();
    store
        .conn
        .execute(
            "INSERT INTO mosaic_plans (name, tier, start_time, end_time, image_ids, n_images, created_at) \
             VALUES (?1, ?2, 0, 3600, '[]', 1, 0)",
            rusqlite::params![name, tier],
        )
        .unwrap();
    let plan = store.conn.last_insert_rowid();
    store
        .conn
        .execute(
            "INSERT INTO mosaics (plan_id, path, tier, n_images, created_at) VALUES (?1, ?2, ?3, 1, 0)",
            rusqlite::params![plan, path.to_str().unwrap(), tier],
        )
        .unwrap();
    store.conn.last_insert_rowid()
}

fn synth(seed: u64, fmax: f64) -> SynthMosaic {
    let mut m = SynthMosaic {
        nx: 256,
        ny: 240,
        cell_arcsec: 3.0,
        projection: "SIN".into(),
        centre: (210.0, 45.0),
        beam_arcsec: 12.0,
        noise_jy: 5e-4,
        seed,
        sources: vec![],
    };
    m.add_random_sources(25, 0.01, fmax, 15.0, 18.0);
    m
}

fn reference(dir: &Path, m: &SynthMosaic) -> PathBuf {
    let p = dir.join("ref.csv");
    let mut s = String::from("ra,dec,peak\n");
    for src in &m.sources {
        s.push_str(&format!("{},{},{}\n", src.ra_deg, src.dec_deg, src.flux_jy));
    }
    std::fs::write(&p, s).unwrap();
    p
}

fn qa_rows(db: &Path, mosaic: i64) -> Vec<(i64, Option<i64>, i64, String)> {
    let store = Store::open(db).unwrap();
    let mut st = store
        .conn
        .prepare("SELECT id, n_reference_stars, passed, warnings FROM mosaic_qa WHERE mosaic_id = ?1 ORDER BY id")
        .unwrap();
    st.query_map([mosaic], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

fn status(db: &Path, mosaic: i64) -> (Option<String>, Option<String>) {
    let store = Store::open(db).unwrap();
    store
        .conn
        .query_row(
            "SELECT qa_status, qa_details FROM mosaics WHERE id = ?1",
            [mosaic],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[test]
fn pass_fail_stdin_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pipeline.sqlite3");
    let dbs = db.to_str().unwrap();

    // A good science mosaic: PASS, exit 0, one row, status and details recorded.
    let good = synth(1, 1.0);
    let paths = good.write(dir.path(), "good", &|_| {}).unwrap();
    let id = add_mosaic(&db, "good_plan", "science", &paths[0]);
    let refp = reference(dir.path(), &good);
    let out = contimg(
        &[
            "--db",
            dbs,
            "qa",
            "--mosaic",
            &id.to_string(),
            "--reference",
            refp.to_str().unwrap(),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["schema"], "contimg.qa/1");
    assert_eq!(m["verdict"], "PASS", "{m:#}");
    assert_eq!(m["mosaic_id"], id);
    let rows = qa_rows(&db, id);
    assert_eq!(rows.len(), 1);
    assert_eq!(m["qa_id"], rows[0].0);
    assert_eq!(rows[0].1, m["astrometry"]["n_matches"].as_i64());
    assert!(rows[0].1.unwrap() >= 15);
    assert_eq!(rows[0].2, 1);
    let (st, details) = status(&db, id);
    assert_eq!(st.as_deref(), Some("PASS"));
    let d: serde_json::Value = serde_json::from_str(&details.unwrap()).unwrap();
    assert_eq!(d["verdict"], "PASS");
    for k in ["quicklook", "offsets", "noise_histogram"] {
        assert!(
            Path::new(m["pictures"][k].as_str().unwrap()).is_file(),
            "{k}"
        );
    }
    assert!(dir.path().join("good.sources.csv").is_file());
    assert!(dir.path().join("good.sources.fits").is_file());

    // A clean faint field (brightest source ~40 sigma) passes: it is not dynamic-range limited.
    let faint = synth(2, 0.02);
    let fpaths = faint.write(dir.path(), "faint", &|_| {}).unwrap();
    let fid = add_mosaic(&db, "faint_plan", "science", &fpaths[0]);
    let out = contimg(&["--db", dbs, "qa", "--mosaic", &fid.to_string()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["verdict"], "PASS", "{m:#}");
    let dr = m["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "dynamic_range")
        .unwrap();
    assert!(
        dr["message"]
            .as_str()
            .unwrap()
            .contains("cannot be dynamic-range limited"),
        "{dr}"
    );

    // Sidelobe-like rings (±20 sigma, 3-8 beams out) around the bright sources of a field:
    // dynamic-range limited, FAIL, with the check named.
    let bright = synth(3, 0.5);
    let centres: Vec<(f64, f64)> = bright
        .sources
        .iter()
        .filter(|s| s.flux_jy > 0.1)
        .filter_map(|s| bright.wcs().icrs_to_pix(s.ra_deg, s.dec_deg))
        .collect();
    assert!(!centres.is_empty());
    let bpaths = bright
        .write(dir.path(), "rings", &|img| {
            for &(sx, sy) in &centres {
                for ((y, x), v) in img.indexed_iter_mut() {
                    let d = (x as f64 - sx).hypot(y as f64 - sy) / 4.0; // beams (12"/3")
                    if (3.0..8.0).contains(&d) {
                        *v += (20.0 * 5e-4 * (2.0 * d).sin()) as f32;
                    }
                }
            }
        })
        .unwrap();
    let fid = add_mosaic(&db, "rings_plan", "science", &bpaths[0]);
    std::fs::remove_file(&bpaths[2]).unwrap(); // no expected-noise map: a warning, not an error
    let out = contimg(&["--db", dbs, "qa", "--mosaic", &fid.to_string()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("FAIL dynamic_range") && stderr.contains("expected-noise map"),
        "{stderr}"
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["verdict"], "FAIL");
    let rows = qa_rows(&db, fid);
    assert_eq!((rows.len(), rows[0].2), (1, 0));
    assert!(
        rows[0].3.contains("no reference catalogue"),
        "{}",
        rows[0].3
    );
    assert_eq!(status(&db, fid).0.as_deref(), Some("FAIL"));

    // The manifest route, on stdin; the database comes from the manifest.
    let manifest = MosaicManifest {
        schema: MOSAIC_SCHEMA.into(),
        database: db.clone(),
        mosaic_id: id,
        plan_id: 1,
        plan_name: "good_plan".into(),
        tier: "quicklook".into(),
        path: paths[0].clone(),
        weight_path: paths[1].clone(),
        noise_path: paths[2].clone(),
        sha256: ProductHashes {
            mosaic: String::new(),
            weight: String::new(),
            noise: String::new(),
        },
        window: Window {
            start: "2026-11-20T00:00:00Z".into(),
            end: "2026-11-20T01:00:00Z".into(),
        },
        n_images: 1,
        median_rms_jy: 5e-4,
        effective_noise_jy: 5e-4,
        coverage: Coverage {
            ra_min_deg: 209.0,
            ra_max_deg: 211.0,
            dec_min_deg: 44.0,
            dec_max_deg: 46.0,
        },
        coverage_sq_deg: 0.04,
        shape: [256, 240],
        projection: "SIN".into(),
        cell_arcsec: 3.0,
        interpolation: "bilinear".into(),
        created_at: "2026-11-20T01:05:00Z".into(),
        primary_beams: vec![],
    };
    let text = serde_json::to_string(&manifest).unwrap();
    let out = contimg(&["qa", "-", "--no-pictures"], Some(&text));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Quicklook without a reference does not need astrometry: PASS.
    assert_eq!(m["verdict"], "PASS", "{m:#}");
    assert!(m["pictures"]["quicklook"].is_null());
    assert_eq!(qa_rows(&db, id).len(), 2);

    // A manifest of another schema, and an unknown mosaic id, are input errors (exit 2).
    let out = contimg(
        &["qa", "-"],
        Some(&text.replace(MOSAIC_SCHEMA, "contimg.plan/1")),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema"));
    assert!(out.stdout.is_empty());
    let out = contimg(&["--db", dbs, "qa", "--mosaic", "999"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mosaic 999"));
}

#[test]
fn a_fits_image_given_as_the_manifest_gets_the_command_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pipeline.sqlite3");
    let dbs = db.to_str().unwrap();
    let m = synth(3, 1.0);
    let paths = m.write(dir.path(), "recorded", &|_| {}).unwrap();
    let id = add_mosaic(&db, "recorded_plan", "science", &paths[0]);
    let out = contimg(&["--db", dbs, "qa", paths[0].to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a FITS image"), "{stderr}");
    assert!(
        stderr.contains(&format!("contimg qa --mosaic {id}")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(qa_rows(&db, id).is_empty(), "nothing recorded");

    // A FITS file that is no recorded mosaic: says so and what qa takes instead.
    let other = m.write(dir.path(), "stray", &|_| {}).unwrap();
    let out = contimg(&["--db", dbs, "qa", other[0].to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no recorded mosaic"), "{stderr}");
    assert!(stderr.contains("--mosaic ID"), "{stderr}");
}
