//! `contimg ingest` and `contimg images` on simulated snapshots, the real sample images (checked
//! against astropy) and a corpus of bad files.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use common::realdata::real_data;
use common::{contimg, json_in, python_json, run_in, workspace};
use contimg::fits::{Header, Value};

fn simulate(dir: &Path, out: &str, extra: &[&str]) -> serde_json::Value {
    // 512 px: enough independent beams that the measured rms is within 1 % of the simulated one.
    let mut args = vec![
        "simulate", "--out", out, "--images", "4", "--size", "512", "--cell", "10",
    ];
    args.extend_from_slice(extra);
    json_in(dir, &args, 0)
}

fn rows(conn: &rusqlite::Connection) -> Vec<(String, String, String)> {
    let mut stmt = conn
        .prepare("SELECT path, content_sha256, updated_at FROM images ORDER BY path")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

const ASTROPY_CENTRES: &str = r#"
import json, sys, warnings
warnings.simplefilter("ignore")
from astropy.io import fits
from astropy.wcs import WCS
out = {}
for p in sys.argv[1:]:
    with fits.open(p) as hl:
        hdu = next(h for h in hl if h.header.get("NAXIS", 0) >= 2)
        w = WCS(hdu.header).celestial
        n1, n2 = hdu.header["NAXIS1"], hdu.header["NAXIS2"]
        c = w.pixel_to_world((n1 - 1) / 2, (n2 - 1) / 2).icrs
        out[p] = [float(c.ra.deg), float(c.dec.deg)]
print(json.dumps(out))
"#;

fn sep_arcsec(a: (f64, f64), b: (f64, f64)) -> f64 {
    contimg::wcs::separation_deg(a, b) * 3600.0
}

#[test]
fn simulated_snapshots_ingest_with_the_right_facts_and_idempotently() {
    let ws = workspace();
    let sim = simulate(ws.path(), "snaps", &[]);
    let snaps = sim["summary"]["snapshots"].as_array().unwrap().clone();
    assert_eq!(snaps.len(), 4);
    let m = json_in(ws.path(), &["ingest", "snaps"], 0);
    assert_eq!(m["schema"], "contimg.ingest/1");
    assert_eq!(m["added"].as_array().unwrap().len(), 4, "{m}");
    assert!(m["failed"].as_array().unwrap().is_empty());

    let listed = json_in(ws.path(), &["images", "--json"], 0);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 4);
    let paths: Vec<String> = listed
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    let astropy = python_json(
        ASTROPY_CENTRES,
        &paths.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    for (row, snap) in listed.iter().zip(&snaps) {
        let path = row["path"].as_str().unwrap();
        assert!(
            path.ends_with(
                Path::new(snap["file"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
            )
        );
        let ours = (
            row["ra_deg"].as_f64().unwrap(),
            row["dec_deg"].as_f64().unwrap(),
        );
        let theirs = (
            astropy[path][0].as_f64().unwrap(),
            astropy[path][1].as_f64().unwrap(),
        );
        assert!(
            sep_arcsec(ours, theirs) < 0.01,
            "{path}: centre {ours:?} vs astropy {theirs:?}"
        );
        let rms = row["rms_jy"].as_f64().unwrap();
        let truth = snap["rms_jy"].as_f64().unwrap();
        assert!(
            (rms / truth - 1.0).abs() < 0.02,
            "{path}: rms {rms} vs simulated {truth}"
        );
        assert!(
            (row["obs_mjd"].as_f64().unwrap() - snap["mjd_obs"].as_f64().unwrap()).abs() < 1e-6
        );
        assert!(
            (row["bmaj_arcsec"].as_f64().unwrap() - 3600.0 * snap["bmaj_deg"].as_f64().unwrap())
                .abs()
                < 1e-6
        );
        assert!(
            (row["bmin_arcsec"].as_f64().unwrap() - 3600.0 * snap["bmin_deg"].as_f64().unwrap())
                .abs()
                < 1e-6
        );
        assert_eq!(row["beam_source"], "header");
        assert!((row["cell_arcsec"].as_f64().unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(row["naxis1"], 512);
        assert_eq!(row["projection"], "SIN");
        assert_eq!(row["pb_corrected"], false);
        assert!((row["freq_hz"].as_f64().unwrap() - 1.405e9).abs() < 1.0);
        assert_eq!(row["content_sha256"].as_str().unwrap().len(), 64);
    }

    // Unchanged files: nothing written.
    let conn = rusqlite::Connection::open(ws.path().join("pipeline.sqlite3")).unwrap();
    let before = rows(&conn);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = json_in(ws.path(), &["ingest", "snaps"], 0);
    assert_eq!(again["unchanged"].as_array().unwrap().len(), 4);
    assert!(
        again["added"].as_array().unwrap().is_empty()
            && again["updated"].as_array().unwrap().is_empty()
    );
    assert_eq!(rows(&conn), before);

    // Changed bytes under the same names: rows updated in place (same ids).
    simulate(ws.path(), "snaps", &["--seed", "7"]);
    let changed = json_in(ws.path(), &["ingest", "snaps"], 0);
    assert_eq!(changed["updated"].as_array().unwrap().len(), 4, "{changed}");
    let after = rows(&conn);
    assert_eq!(after.len(), 4);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a.0, b.0);
        assert_ne!(a.1, b.1, "hash should change");
    }

    // Filters.
    let first_mjd = snaps[0]["mjd_obs"].as_f64().unwrap();
    let since = format!("{}", first_mjd + 1e-4);
    assert_eq!(
        json_in(ws.path(), &["images", "--json", "--since", &since], 0)
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        json_in(ws.path(), &["images", "--json", "--until", &since], 0)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        json_in(ws.path(), &["images", "--json", "--max-rms", "1e-9"], 0)
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn paths_from_stdin() {
    let ws = workspace();
    simulate(ws.path(), "snaps", &[]);
    let mut names: Vec<String> = std::fs::read_dir(ws.path().join("snaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "fits"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut child = contimg()
        .current_dir(ws.path())
        .args(["ingest", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(names[..2].join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["added"].as_array().unwrap().len(), 2);
}

#[test]
fn real_images_match_astropy() {
    let Some(dir) = real_data("ingest::real_images_match_astropy") else {
        return;
    };
    let ws = workspace();
    let files: Vec<String> = [
        "1934-638LModel.fits.gz",
        "AIPS_header.fits",
        "FeatherTestIn1.fits.gz",
        "PD_2000_sub.fits",
        "first_image.fits",
        "magpis_image.fits",
    ]
    .iter()
    .map(|f| {
        dir.join(f)
            .canonicalize()
            .unwrap_or_else(|e| panic!("{f}: {e} (set CONTIMG_REAL_DATA)"))
    })
    .map(|p| p.to_string_lossy().into_owned())
    .collect();
    let mut args = vec!["ingest"];
    args.extend(files.iter().map(String::as_str));
    let out = run_in(ws.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["added"].as_array().unwrap().len(), files.len(), "{m}");

    let listed = json_in(ws.path(), &["images", "--json"], 0);
    let astropy = python_json(
        ASTROPY_CENTRES,
        &files.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let by_name = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not listed"))
            .clone()
    };
    for f in &files {
        let name = Path::new(f).file_name().unwrap().to_str().unwrap();
        let row = by_name(name);
        let ours = (
            row["ra_deg"].as_f64().unwrap(),
            row["dec_deg"].as_f64().unwrap(),
        );
        let theirs = (
            astropy[f.as_str()][0].as_f64().unwrap(),
            astropy[f.as_str()][1].as_f64().unwrap(),
        );
        let sep = sep_arcsec(ours, theirs);
        assert!(
            sep <= 0.01,
            "{name}: centre {ours:?} vs astropy {theirs:?}: {sep} arcsec"
        );
    }
    // Frames, projections and beams as the files have them.
    let feather = by_name("FeatherTestIn1.fits.gz");
    assert_eq!(feather["frame"], "FK4 B1950");
    assert_eq!(feather["beam_source"], "history");
    assert!((feather["bmaj_arcsec"].as_f64().unwrap() - 180.0).abs() < 1e-6);
    assert_eq!(feather["n_blank"], 1345);
    assert!(
        (feather["rms_jy"].as_f64().unwrap() - 6.5e-3).abs() < 1.5e-3,
        "{feather}"
    );
    assert_eq!(by_name("PD_2000_sub.fits")["projection"], "NCP");
    assert_eq!(by_name("magpis_image.fits")["frame"], "GALACTIC");
    let first = by_name("first_image.fits");
    assert!(
        (first["bmaj_arcsec"].as_f64().unwrap() - 5.4).abs() < 1e-3,
        "{first}"
    );
    assert_eq!(
        first["obs_time"], "1993-04-17T00:00:00.000Z",
        "compact DATE-OBS YYYYMMDD"
    );
    // The NVSS beam (45") lives only in an AIPS HISTORY card; STOKES comes before FREQ.
    let aips = by_name("AIPS_header.fits");
    assert_eq!(aips["beam_source"], "history");
    assert!(
        (aips["bmaj_arcsec"].as_f64().unwrap() - 45.0).abs() < 1e-6,
        "{aips}"
    );
    assert!(
        (aips["freq_hz"].as_f64().unwrap() - 1.4e9).abs() < 5e7,
        "{aips}"
    );
    let pks = by_name("1934-638LModel.fits.gz");
    assert_eq!(pks["beam_source"], "header");
    assert!(pks["peak_jy"].as_f64().unwrap() > 10.0);
}

fn write_fits(path: &Path, header: &[(&str, Value)], n: usize, fill: impl Fn(usize) -> f32) {
    let mut h = Header::new();
    for (k, v) in header {
        h.set(k, v.clone(), "");
    }
    let data: Vec<f32> = (0..n * n).map(fill).collect();
    contimg::fits::write::write_image(path, &[n, n], &data, &h).unwrap();
}

fn sin_header(ctype1: &str, ctype2: &str) -> Vec<(&'static str, Value)> {
    let c1: &'static str = Box::leak(ctype1.to_string().into_boxed_str());
    let c2: &'static str = Box::leak(ctype2.to_string().into_boxed_str());
    vec![
        ("CTYPE1", Value::Str(c1.into())),
        ("CTYPE2", Value::Str(c2.into())),
        ("CRVAL1", Value::Float(150.0)),
        ("CRVAL2", Value::Float(30.0)),
        ("CRPIX1", Value::Float(17.0)),
        ("CRPIX2", Value::Float(17.0)),
        ("CDELT1", Value::Float(-0.01)),
        ("CDELT2", Value::Float(0.01)),
        ("DATE-OBS", Value::Str("2026-01-01T00:00:00".into())),
    ]
}

#[test]
fn bad_files_fail_one_by_one_with_a_message_and_nothing_written() {
    let ws = workspace();
    let bad = ws.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    // A good file among them is still ingested.
    write_fits(
        &bad.join("good.fits"),
        &sin_header("RA---SIN", "DEC--SIN"),
        32,
        |i| ((i * 7919) % 13) as f32 - 6.0,
    );
    std::fs::write(
        bad.join("not_fits.fits"),
        b"this is a text file, not FITS\n".repeat(100),
    )
    .unwrap();
    // Truncated: a good file cut short in its data.
    write_fits(
        &bad.join("whole.tmpfits"),
        &sin_header("RA---SIN", "DEC--SIN"),
        64,
        |i| i as f32,
    );
    let whole = std::fs::read(bad.join("whole.tmpfits")).unwrap();
    std::fs::write(bad.join("truncated.fits"), &whole[..whole.len() / 2 + 100]).unwrap();
    std::fs::remove_file(bad.join("whole.tmpfits")).unwrap();
    write_fits(
        &bad.join("no_celestial.fits"),
        &sin_header("FREQ", "STOKES"),
        32,
        |i| i as f32,
    );
    write_fits(
        &bad.join("all_blank.fits"),
        &sin_header("RA---SIN", "DEC--SIN"),
        32,
        |_| f32::NAN,
    );
    write_fits(
        &bad.join("ecliptic.fits"),
        &sin_header("ELON-SIN", "ELAT-SIN"),
        32,
        |i| i as f32,
    );
    write_fits(
        &bad.join("swapped.fits"),
        &sin_header("DEC--SIN", "RA---SIN"),
        32,
        |i| i as f32,
    );
    write_fits(
        &bad.join("constant.fits"),
        &sin_header("RA---SIN", "DEC--SIN"),
        32,
        |_| 0.0,
    );

    let out = run_in(ws.path(), &["ingest", "bad", "missing.fits"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["added"].as_array().unwrap().len(), 1, "{m}");
    let failed = m["failed"].as_array().unwrap();
    let expect = [
        ("not_fits.fits", "FITS"),
        ("truncated.fits", "truncated"),
        ("no_celestial.fits", "celestial"),
        ("all_blank.fits", "blank"),
        ("ecliptic.fits", "ELON"),
        ("swapped.fits", "DEC"),
        ("constant.fits", "no noise"),
        ("missing.fits", "no such file"),
    ];
    assert_eq!(failed.len(), expect.len(), "{failed:?}");
    for (name, word) in expect {
        let f = failed
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not reported: {failed:?}"));
        let reason = f["reason"].as_str().unwrap();
        assert!(
            reason.to_lowercase().contains(&word.to_lowercase()),
            "{name}: {reason}"
        );
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(name)).collect();
        assert_eq!(
            lines.len(),
            1,
            "{name} should get exactly one stderr line: {stderr}"
        );
    }
    // The good file has no beam at all: recorded, with one warning naming it.
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("good.fits") && l.contains("no restoring beam")),
        "{stderr}"
    );
    assert_eq!(m["warnings"].as_array().unwrap().len(), 1);
    let conn = rusqlite::Connection::open(ws.path().join("pipeline.sqlite3")).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM images", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "only the good file is recorded");
}
