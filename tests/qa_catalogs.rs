//! Reference catalogues as astronomers have them, each written by astropy: a CSV with quoted
//! names holding commas, comment lines, mixed-case column names and sexagesimal positions; a FITS
//! binary table with a flux in mJy; a VOTable (TABLEDATA) with a beam PARAM. Every format must
//! give astropy's positions and fluxes, name the columns it chose, and take the columns a user
//! names instead.

mod mosaic_util;

use std::path::Path;

use contimg::mosaic::qa::catalog::{CatalogSettings, read_reference};
use mosaic_util::run_python;

const WRITE: &str = r##"
import json, sys, numpy as np
from astropy.table import Table
from astropy.coordinates import SkyCoord
import astropy.units as u
from astropy.io.votable import from_table
from astropy.io.votable.tree import Param
out = sys.argv[1]
rng = np.random.default_rng(11)
n = 40
ra = rng.uniform(0, 360, n); ra[0] = 359.99999; ra[1] = 0.00001
dec = rng.uniform(-89, 89, n)
flux_mjy = rng.uniform(1, 500, n)
names = [f"J{i:03d}, field {i % 3}" for i in range(n)]
c = SkyCoord(ra * u.deg, dec * u.deg)
# CSV: quoted names with commas, comments, sexagesimal strings, odd-case headers, a blank flux.
t = Table({"Name": names,
           "RaJ2000": c.ra.to_string(unit=u.hourangle, sep=":", precision=5, pad=True),
           "DEJ2000": c.dec.to_string(unit=u.deg, sep=":", precision=4, alwayssign=True, pad=True),
           "S1.4_mJy": flux_mjy,
           "alt_ra": ra + 1.0})
t.write(out + "/cat.csv", format="ascii.csv", overwrite=True)
with open(out + "/cat.csv") as f:
    body = f.read()
with open(out + "/cat.csv", "w") as f:
    f.write("# written by astropy\n# beam_arcsec = 45\n" + body)
# FITS binary table, flux in mJy by unit.
ft = Table({"NAME": names, "RAJ2000": ra * u.deg, "DEJ2000": dec * u.deg, "PEAK": flux_mjy * u.mJy})
ft.write(out + "/cat.fits", overwrite=True)
# VOTable with TABLEDATA and a beam PARAM.
vt = Table({"name": names, "RA_ICRS": ra * u.deg, "DE_ICRS": dec * u.deg, "Fpeak": flux_mjy * u.mJy})
vot = from_table(vt)
table = vot.get_first_table()
table.params.append(Param(vot, name="beam_arcsec", datatype="double", value=5.0, unit="arcsec"))
vot.to_xml(out + "/cat.vot", tabledata_format="tabledata")
json.dump({"ra": ra.tolist(), "dec": dec.tolist(), "flux_jy": (flux_mjy / 1e3).tolist()}, sys.stdout)
"##;

fn assert_same(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        let d = if what == "ra" { d.min(360.0 - d) } else { d };
        assert!(d < tol, "{what}[{i}]: {g} vs astropy {w}");
    }
}

#[test]
fn csv_fits_and_votable_written_by_astropy_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let truth: serde_json::Value =
        serde_json::from_str(&run_python(WRITE, &[dir.path().to_str().unwrap()])).unwrap();
    let col = |k: &str| -> Vec<f64> {
        truth[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let (ra, dec, flux) = (col("ra"), col("dec"), col("flux_jy"));
    let none = CatalogSettings::default();
    for (file, format, columns, beam) in [
        ("cat.csv", "csv", ["RaJ2000", "DEJ2000", "S1.4_mJy"], 45.0),
        ("cat.fits", "fits", ["RAJ2000", "DEJ2000", "PEAK"], f64::NAN),
        ("cat.vot", "votable", ["RA_ICRS", "DE_ICRS", "Fpeak"], 5.0),
    ] {
        let r =
            read_reference(&dir.path().join(file), &none).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(r.format, format);
        assert_eq!(r.columns, columns.map(String::from), "{file}");
        assert_eq!(r.skipped, 0, "{file}");
        // Sexagesimal to 1e-5 s of time / 1e-4 arcsec: well under a milliarcsecond.
        assert_same("ra", &r.ra, &ra, 1e-6);
        assert_same("dec", &r.dec, &dec, 1e-6);
        assert_same("flux", r.flux.as_ref().unwrap(), &flux, 1e-9);
        match r.beam_arcsec {
            Some(b) => assert!((b - beam).abs() < 1e-9, "{file}: beam {b}"),
            None => assert!(beam.is_nan(), "{file}: no beam read"),
        }
    }
    // The user's choice of columns wins over recognition (names case-insensitive).
    let chosen = CatalogSettings {
        ra_column: Some("ALT_RA".into()),
        flux_column: Some("s1.4_mjy".into()),
        ..Default::default()
    };
    let r = read_reference(&dir.path().join("cat.csv"), &chosen).unwrap();
    assert_eq!(r.columns[0], "alt_ra");
    let shifted: Vec<f64> = ra.iter().map(|a| (a + 1.0).rem_euclid(360.0)).collect();
    assert_same("ra", &r.ra, &shifted, 1e-9);
    // A column that is not there is named, with the columns that are.
    let wrong = CatalogSettings {
        dec_column: Some("DECL".into()),
        ..Default::default()
    };
    let e = read_reference(&dir.path().join("cat.vot"), &wrong)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"DECL\"") && e.contains("DE_ICRS"), "{e}");
}

/// `contimg qa` with a catalogue whose columns it cannot recognise: exit 2 naming the flag;
/// with `--ra-column/--dec-column` it matches, reports the columns and writes the rms map.
#[test]
fn the_binary_takes_the_columns_a_user_names() {
    use contimg::mosaic::qa::synth::SynthMosaic;
    use contimg::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let mut m = SynthMosaic {
        nx: 200,
        ny: 200,
        cell_arcsec: 3.0,
        projection: "SIN".into(),
        centre: (210.0, 45.0),
        beam_arcsec: 12.0,
        noise_jy: 5e-4,
        seed: 4,
        sources: vec![],
    };
    m.add_random_sources(20, 0.01, 0.5, 15.0, 18.0);
    let paths = m.write(dir.path(), "odd", &|_| {}).unwrap();
    let db = dir.path().join("pipeline.sqlite3");
    let store = Store::open(&db).unwrap();
    store
        .conn
        .execute(
            "INSERT INTO mosaic_plans (name, tier, start_time, end_time, image_ids, n_images, \
             created_at) VALUES ('odd', 'quicklook', 0, 3600, '[]', 1, 0)",
            [],
        )
        .unwrap();
    let plan = store.conn.last_insert_rowid();
    store
        .conn
        .execute(
            "INSERT INTO mosaics (plan_id, path, tier, n_images, created_at) \
             VALUES (?1, ?2, 'quicklook', 1, 0)",
            rusqlite::params![plan, paths[0].to_str().unwrap()],
        )
        .unwrap();
    let id = store.conn.last_insert_rowid().to_string();
    let cat = dir.path().join("odd.csv");
    let mut text = String::from("\"label, with comma\",pos_a,pos_b\n");
    for (i, s) in m.sources.iter().enumerate() {
        text.push_str(&format!("\"s{i}, x\",{},{}\n", s.ra_deg, s.dec_deg));
    }
    std::fs::write(&cat, text).unwrap();
    let qa = |extra: &[&str]| {
        let mut args = vec![
            "--db",
            db.to_str().unwrap(),
            "qa",
            "--mosaic",
            &id,
            "--no-pictures",
            "--reference",
            cat.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_contimg"))
            .args(&args)
            .env_remove("CONTIMG_WORKSPACE")
            .env_remove("CONTIMG_DB")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = qa(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--ra-column") && err.contains("pos_a"),
        "{err}"
    );
    let out = qa(&["--ra-column", "POS_A", "--dec-column", "pos_b"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("RA column \"pos_a\""), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["astrometry"]["columns"][0], "pos_a");
    assert_eq!(v["astrometry"]["reference_format"], "csv");
    assert!(v["astrometry"]["n_matches"].as_u64().unwrap() >= 15, "{v}");
    assert!(Path::new(v["noise"]["rms_map"].as_str().unwrap()).is_file());
}
