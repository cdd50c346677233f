//! QA on simulated mosaics with a known truth: astrometric shifts, fluxes, noise, dynamic range,
//! artefacts, verdict thresholds and pictures.

use std::path::{Path, PathBuf};

use contimg::mosaic::qa::synth::{SynthMosaic, SynthSource};
use contimg::mosaic::qa::{self, QaConfig, QaOptions, QaReport, Subject, Verdict};
use ndarray::Array2;

fn mosaic(seed: u64, n_sources: usize, fmax: f64) -> SynthMosaic {
    let mut m = SynthMosaic {
        nx: 420,
        ny: 380,
        cell_arcsec: 2.0,
        projection: "SIN".into(),
        centre: (150.0, 35.0),
        beam_arcsec: 8.0,
        noise_jy: 1e-3,
        seed,
        sources: vec![],
    };
    m.add_random_sources(n_sources, 0.03, fmax, 25.0, 22.0);
    m
}

fn write_reference(path: &Path, sources: &[SynthSource], dra_arcsec: f64, ddec_arcsec: f64) {
    let mut s = String::from("name,RAJ2000,DEJ2000,flux_jy\n");
    for (i, src) in sources.iter().enumerate() {
        let ra = src.ra_deg + dra_arcsec / 3600.0 / src.dec_deg.to_radians().cos();
        let dec = src.dec_deg + ddec_arcsec / 3600.0;
        s.push_str(&format!("s{i},{ra:.9},{dec:.9},{}\n", src.flux_jy));
    }
    std::fs::write(path, s).unwrap();
}

fn run(
    dir: &Path,
    m: &SynthMosaic,
    stem: &str,
    edit: &dyn Fn(&mut Array2<f32>),
    reference: Option<PathBuf>,
    tier: &str,
) -> QaReport {
    let paths = m.write(dir, stem, edit).unwrap();
    let cfg = QaConfig::default();
    let opts = QaOptions {
        thresholds: cfg.thresholds(tier),
        config: cfg,
        reference,
        out_dir: None,
        pictures: true,
        history_noise_jy: Vec::new(),
        selection: None,
    };
    let input = Subject {
        database: dir.join("none.sqlite3"),
        mosaic_id: 1,
        name: stem.into(),
        tier: tier.into(),
        path: paths[0].clone(),
        noise_path: Some(paths[2].clone()),
        inputs_path: None,
    };
    qa::measure(&input, &opts).unwrap()
}

#[test]
fn shifted_reference_fluxes_noise_dynamic_range_and_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let m = mosaic(11, 60, 1.0);
    assert!(m.sources.len() >= 50, "placed {}", m.sources.len());
    let reference = dir.path().join("ref.csv");
    // The reference sits 2" north of the truth: found - reference = -2" in Dec.
    write_reference(&reference, &m.sources, 0.0, 2.0);
    let r = run(
        dir.path(),
        &m,
        "sim",
        &|_| {},
        Some(reference.clone()),
        "science",
    );
    let a = r.astrometry.as_ref().unwrap();
    assert!(a.n_matches >= 50, "{} matches", a.n_matches);
    let (dra, ddec) = (a.median_dra_arcsec.unwrap(), a.median_ddec_arcsec.unwrap());
    assert!(
        (ddec + 2.0).abs() <= 0.2 && dra.abs() <= 0.2,
        "dra {dra} ddec {ddec}"
    );
    assert!((a.offset_arcsec.unwrap() - 2.0).abs() <= 0.2);
    // 2" > 0.5" science FAIL threshold.
    assert_eq!(r.verdict, Verdict::Fail);
    let astro = r.checks.iter().find(|c| c.name == "astrometry").unwrap();
    assert_eq!(astro.status, Verdict::Fail, "{}", astro.message);

    // Fluxes: the median ratio within 2 %, and every source bright enough that noise moves its
    // peak by well under 2 % (above 200 sigma) within 2 %.
    let ratio = a.median_flux_ratio.unwrap();
    assert!((ratio - 1.0).abs() < 0.02, "median flux ratio {ratio}");
    let csv = std::fs::read_to_string(&r.sources.csv).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .take(13)
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), r.sources.n);
    let wcs = m.wcs();
    let mut checked = 0;
    for s in &m.sources {
        let (tx, ty) = wcs.icrs_to_pix(s.ra_deg, s.dec_deg).unwrap();
        let found = rows
            .iter()
            .find(|row| (row[3] - tx).hypot(row[4] - ty) < 1.5)
            .unwrap_or_else(|| panic!("source at ({tx:.1}, {ty:.1}) not found"));
        if s.flux_jy / m.noise_jy > 200.0 {
            let (peak, int) = (found[5], found[6]);
            assert!(
                (peak / s.flux_jy - 1.0).abs() < 0.02,
                "peak {peak} vs {}",
                s.flux_jy
            );
            assert!(
                (int / s.flux_jy - 1.0).abs() < 0.05,
                "int {int} vs {}",
                s.flux_jy
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked}");

    // Noise and dynamic range within 3 % of the truth.
    let noise = r.noise.median_rms_jy;
    assert!((noise / m.noise_jy - 1.0).abs() < 0.03, "noise {noise}");
    let brightest = m.sources.iter().map(|s| s.flux_jy).fold(0.0, f64::max);
    let dr_truth = brightest / m.noise_jy;
    assert!(
        (r.dynamic_range / dr_truth - 1.0).abs() < 0.03,
        "DR {} vs {dr_truth}",
        r.dynamic_range
    );
    let eff = r.noise.noise_efficiency.unwrap();
    assert!((eff - 1.0).abs() < 0.05, "efficiency {eff}");
    assert!(
        r.artefacts.score < 0.2,
        "clean image artefacts {:?}",
        r.artefacts
    );

    // An RA shift is measured on the other axis, with the documented sign.
    write_reference(&reference, &m.sources, -2.0, 0.0);
    let r2 = run(dir.path(), &m, "sim", &|_| {}, Some(reference), "science");
    let a2 = r2.astrometry.as_ref().unwrap();
    let (dra, ddec) = (
        a2.median_dra_arcsec.unwrap(),
        a2.median_ddec_arcsec.unwrap(),
    );
    assert!(
        (dra - 2.0).abs() <= 0.2 && ddec.abs() <= 0.2,
        "dra {dra} ddec {ddec}"
    );

    // Pictures decode at the documented sizes.
    let decode = |p: &Path, min_levels: usize| {
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(p).unwrap()));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let px = &buf[..info.buffer_size()];
        // Not blank: enough ink, and for the quicklook many grey levels.
        let ink = px.chunks(3).filter(|c| c != &[255, 255, 255]).count();
        assert!(ink * 50 > px.len() / 3, "{} looks blank", p.display());
        let mut levels: Vec<u8> = px.to_vec();
        levels.sort_unstable();
        levels.dedup();
        assert!(
            levels.len() >= min_levels,
            "{}: {} levels",
            p.display(),
            levels.len()
        );
        if let Ok(keep) = std::env::var("CONTIMG_KEEP_PNG") {
            std::fs::copy(p, Path::new(&keep).join(p.file_name().unwrap())).unwrap();
        }
        (info.width as usize, info.height as usize)
    };
    let lay = qa::plot::quicklook_layout(m.nx, m.ny, QaConfig::default().quicklook_max_px);
    assert_eq!(
        decode(r2.pictures.quicklook.as_ref().unwrap(), 50),
        lay.canvas
    );
    assert_eq!(
        decode(r2.pictures.offsets.as_ref().unwrap(), 3),
        qa::plot::OFFSETS_SIZE
    );
    assert_eq!(
        decode(r2.pictures.noise_histogram.as_ref().unwrap(), 3),
        qa::plot::HIST_SIZE
    );
    // The FITS table has the same rows as the CSV.
    let mut f = fitsio::FitsFile::open(&r.sources.fits).unwrap();
    let hdu = f.hdu("SOURCES").unwrap();
    let ra: Vec<f64> = hdu.read_col(&mut f, "ra_deg").unwrap();
    assert_eq!(ra.len(), r.sources.n);
}

#[test]
fn artefact_score_rises_with_stripes_and_bowls() {
    let dir = tempfile::tempdir().unwrap();
    let m = mosaic(5, 25, 3.0);
    let clean = run(dir.path(), &m, "clean", &|_| {}, None, "quicklook");
    assert!(clean.artefacts.score < 0.2, "{:?}", clean.artefacts);
    assert!(clean.artefacts.striping.score < 0.1);

    // Row stripes of ±0.6 sigma, constant along each row.
    let noise = m.noise_jy as f32;
    let striped = run(
        dir.path(),
        &m,
        "striped",
        &|img| {
            for (y, mut row) in img.rows_mut().into_iter().enumerate() {
                let s = if (y * 7919) % 13 < 6 { 0.6 } else { -0.6 };
                row.mapv_inplace(|v| v + s * noise);
            }
        },
        None,
        "quicklook",
    );
    assert!(
        striped.artefacts.striping.score > 0.5 && striped.artefacts.score > 0.5,
        "{:?}",
        striped.artefacts
    );
    assert_eq!(striped.verdict, Verdict::Warn);

    // Negative bowls: a broad negative ring (-2 sigma) around every bright source.
    let wcs = m.wcs();
    let bright: Vec<(f64, f64)> = m
        .sources
        .iter()
        .filter(|s| s.flux_jy > 0.1)
        .map(|s| wcs.icrs_to_pix(s.ra_deg, s.dec_deg).unwrap())
        .collect();
    assert!(bright.len() >= 5);
    let bowled = run(
        dir.path(),
        &m,
        "bowls",
        &|img| {
            for &(sx, sy) in &bright {
                for ((y, x), v) in img.indexed_iter_mut() {
                    let d = (x as f64 - sx).hypot(y as f64 - sy);
                    let ring = (-0.5 * ((d - 14.0) / 5.0).powi(2)).exp();
                    *v -= (2.0 * ring) as f32 * noise;
                }
            }
        },
        None,
        "quicklook",
    );
    assert!(
        bowled.artefacts.negative_bowls.score > 0.5
            && bowled.artefacts.negative_bowls.score > clean.artefacts.negative_bowls.score + 0.4,
        "{:?} vs clean {:?}",
        bowled.artefacts.negative_bowls,
        clean.artefacts.negative_bowls
    );
    assert!(bowled.artefacts.score > clean.artefacts.score);
}

#[test]
fn verdicts_flip_at_the_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let m = mosaic(23, 30, 0.5);
    let reference = dir.path().join("ref.csv");
    // 1.2" = 0.15 of the 8" beam.
    write_reference(&reference, &m.sources, 0.0, 1.2);
    let r = run(dir.path(), &m, "v", &|_| {}, Some(reference), "quicklook");
    let base = QaConfig::default().thresholds("quicklook");
    let decide = |th: &qa::Thresholds| {
        let c = qa::checks(&r, th);
        (qa::verdict_of(&c), c)
    };
    // 0.15 beam offset, significant: quicklook WARN (> 0.1, <= 0.2 beam); science FAIL (> 0.1).
    let a = r.astrometry.as_ref().unwrap();
    let off = a.offset_beams.unwrap();
    assert!((a.offset_arcsec.unwrap() - 1.2).abs() < 0.2, "{off}");
    assert!(a.offset_significance.unwrap() > 10.0, "{a:?}");
    assert_eq!(decide(&base).0, Verdict::Warn);
    let sci = QaConfig::default().thresholds("science");
    assert_eq!(decide(&sci).0, Verdict::Fail);
    // Move each threshold just across its measured value.
    let mut th = base.clone();
    th.astrometry_warn_beams = off * 1.01;
    assert_eq!(decide(&th).0, Verdict::Pass);
    th.astrometry_fail_beams = off * 0.99;
    th.astrometry_warn_beams = off * 0.5;
    assert_eq!(decide(&th).0, Verdict::Fail);
    let mut th = base.clone();
    th.astrometry_warn_beams = 10.0;
    th.astrometry_fail_beams = 20.0;
    assert_eq!(decide(&th).0, Verdict::Pass);
    // A significant offset below the thresholds passes; an offset above them that is not
    // significant passes too.
    th.astrometry_warn_beams = off * 0.5;
    th.significance_sigma = a.offset_significance.unwrap() * 1.01;
    assert_eq!(decide(&th).0, Verdict::Pass);
    th.significance_sigma = 3.0;
    th.astrometry_warn_beams = 10.0;
    // The noise around the brightest sources and the noise against the expected map leave PASS
    // only when past the threshold *and* significantly above a clean night's 1 (z standard
    // errors, z from the false-alarm budget): a value just past the threshold but within z
    // errors of 1 passes.
    let z = qa::verdict::significance_for(&r, &th).z;
    assert!(z >= th.significance_sigma, "{z}");
    let around = &r.dynamic_range_noise.sources;
    assert!(!around.is_empty(), "no bright source measured");
    for s in around {
        assert!(
            s.noise_ratio > 0.8 && s.noise_ratio < 1.25,
            "clean noise around a source {s:?}"
        );
    }
    let err = around[0].err;
    assert!(err > 0.0 && err < 0.2, "{err}");
    let decide_with = |r: &QaReport, th: &qa::Thresholds| qa::verdict_of(&qa::checks(r, th));
    let mut dr = r.clone();
    let mut th_dr = th.clone();
    th_dr.dynamic_range_warn_ratio = 1.0;
    th_dr.dynamic_range_fail_ratio = 10.0;
    dr.dynamic_range_noise.sources.truncate(1);
    dr.dynamic_range_noise.sources[0].noise_ratio = 1.0 + z * err * 1.01;
    assert_eq!(decide_with(&dr, &th_dr), Verdict::Warn);
    dr.dynamic_range_noise.sources[0].noise_ratio = 1.0 + z * err * 0.99;
    assert_eq!(decide_with(&dr, &th_dr), Verdict::Pass);
    th_dr.dynamic_range_fail_ratio = 1.0;
    dr.dynamic_range_noise.sources[0].noise_ratio = 1.0 + z * err * 1.01;
    assert_eq!(decide_with(&dr, &th_dr), Verdict::Fail);
    let eff = r.noise.noise_efficiency.unwrap();
    let ratio = 1.0 / eff;
    let err = r.noise.noise_efficiency_err.unwrap() / (eff * eff);
    assert!(
        err > 0.0 && err < 0.05 && (ratio - 1.0).abs() < 0.2,
        "{ratio} ± {err}"
    );
    let mut noisy = r.clone();
    let mut th_n = th.clone();
    th_n.noise_warn_ratio = 1.0;
    // measured / expected = 1 + 1.01 z errors: WARN; 0.99: PASS.
    let set = |rep: &mut QaReport, ratio: f64| {
        rep.noise.noise_efficiency = Some(1.0 / ratio);
        rep.noise.noise_efficiency_err = Some(err / (ratio * ratio));
    };
    set(&mut noisy, 1.0 + z * err * 1.01 * 1.0);
    // The error is rescaled with the ratio: recompute it as the check does.
    let e_now = noisy.noise.noise_efficiency_err.unwrap() * (1.0 + z * err * 1.01).powi(2);
    assert!((e_now - err).abs() < 1e-12);
    assert_eq!(decide_with(&noisy, &th_n), Verdict::Warn);
    set(&mut noisy, 1.0 + z * err * 0.99);
    assert_eq!(decide_with(&noisy, &th_n), Verdict::Pass);
    th.artefact_warn = r.artefacts.score * 0.999 - 1e-9;
    th.noise_warn_ratio = 1.3;
    assert_eq!(decide(&th).0, Verdict::Warn);
    th.artefact_warn = r.artefacts.score + 1e-6;
    assert_eq!(decide(&th).0, Verdict::Pass);
    // Too few matches: the offset is not measured, and that alone does not move the verdict.
    th.min_matches = r.astrometry.as_ref().unwrap().n_matches + 1;
    let (v, c) = decide(&th);
    assert_eq!(v, Verdict::Pass);
    let astro = c.iter().find(|c| c.name == "astrometry").unwrap();
    assert!(
        !astro.checked && astro.message.contains("not measured"),
        "{astro:?}"
    );
    // No reference at all: reported as not checked, PASS.
    let mut no_ref = r.clone();
    no_ref.astrometry = None;
    let c = qa::checks(&no_ref, &th);
    assert_eq!(qa::verdict_of(&c), Verdict::Pass);
    let astro = c.iter().find(|c| c.name == "astrometry").unwrap();
    assert!(
        !astro.checked && astro.message.contains("no reference catalogue"),
        "{}",
        astro.message
    );
}

/// Reads `<stem>.sources.fits` with astropy's `Table.read`: each column's unit as astropy
/// understands it (FITS format string, or null) and its values (NaN as null).
const READ_SOURCES: &str = r#"
import sys, json, math
import astropy.units as u
from astropy.table import Table
t = Table.read(sys.argv[1], hdu="SOURCES")
# The units as a reader asks for them.
assert t["ra_deg"].unit == "deg" and t["dec_deg"].unit == u.deg
assert t["peak_jy"].unit == u.Jy / u.beam and t["int_jy"].unit == u.Jy
assert t["ra_err_arcsec"].quantity.to(u.deg).unit == u.deg
out = {
    "units": {c: (None if t[c].unit is None else t[c].unit.to_string("fits")) for c in t.colnames},
    "rows": {c: [None if isinstance(v, float) and math.isnan(v) else float(v) for v in t[c].tolist()] for c in t.colnames},
}
print(json.dumps(out))
"#;

fn run_python(script: &str, args: &[&str]) -> serde_json::Value {
    let py = std::env::var("CONTIMG_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {py} ({e}): this test needs Python 3 with astropy; set CONTIMG_PYTHON"
            )
        });
    assert!(
        out.status.success(),
        "{py} failed (this test needs astropy; set CONTIMG_PYTHON to a Python that has it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Median of a copy.
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

#[test]
fn source_table_has_units_and_condon_errors_that_astropy_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = SynthMosaic {
        nx: 640,
        ny: 600,
        cell_arcsec: 2.0,
        projection: "SIN".into(),
        centre: (150.0, 35.0),
        beam_arcsec: 8.0,
        noise_jy: 1e-3,
        seed: 31,
        sources: vec![],
    };
    // S/N from 8 to 400.
    m.add_random_sources(260, 0.008, 0.4, 25.0, 20.0);
    assert!(m.sources.len() >= 200, "placed {}", m.sources.len());
    let r = run(dir.path(), &m, "err", &|_| {}, None, "quicklook");
    let got = run_python(READ_SOURCES, &[r.sources.fits.to_str().unwrap()]);
    let units = &got["units"];
    for (col, unit) in [
        ("ra_deg", "deg"),
        ("dec_deg", "deg"),
        ("x", "pix"),
        ("y", "pix"),
        ("peak_jy", "Jy beam-1"),
        ("int_jy", "Jy"),
        ("island_jy", "Jy"),
        ("rms_jy", "Jy beam-1"),
        ("maj_arcsec", "arcsec"),
        ("min_arcsec", "arcsec"),
        ("pa_deg", "deg"),
        ("ra_err_arcsec", "arcsec"),
        ("dec_err_arcsec", "arcsec"),
        ("peak_err_jy", "Jy beam-1"),
        ("int_err_jy", "Jy"),
        ("maj_err_arcsec", "arcsec"),
        ("min_err_arcsec", "arcsec"),
        ("pa_err_deg", "deg"),
        ("npix", "pix"),
    ] {
        assert_eq!(units[col], unit, "{col}: {units}");
    }
    // Pure numbers carry no unit.
    for col in ["id", "snr", "gauss_fit"] {
        assert!(units[col].is_null(), "{col}: {units}");
    }
    let col = |name: &str| -> Vec<f64> {
        got["rows"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect()
    };
    let n = r.sources.n;
    assert_eq!(col("id").len(), n);
    let (ra, dec, x, y) = (col("ra_deg"), col("dec_deg"), col("x"), col("y"));
    let (peak, int, snr, gauss) = (col("peak_jy"), col("int_jy"), col("snr"), col("gauss_fit"));
    let errs = [
        "ra_err_arcsec",
        "dec_err_arcsec",
        "peak_err_jy",
        "int_err_jy",
        "maj_err_arcsec",
        "min_err_arcsec",
        "pa_err_deg",
    ]
    .map(|c| (c, col(c)));
    // Every error of a Gaussian fit is positive and finite; a centroid has position and flux
    // errors but no shape.
    for k in 0..n {
        for (c, e) in &errs {
            let shape = c.starts_with("maj") || c.starts_with("min") || c.starts_with("pa");
            if gauss[k] == 1.0 || !shape {
                assert!(e[k] > 0.0 && e[k].is_finite(), "source {k}: {c} = {}", e[k]);
            }
        }
    }
    // Each found source against the truth: normalised residuals (found − true) / error.
    let wcs = m.wcs();
    let truth: Vec<(f64, f64, f64)> = m
        .sources
        .iter()
        .map(|s| {
            let (tx, ty) = wcs.icrs_to_pix(s.ra_deg, s.dec_deg).unwrap();
            (tx, ty, s.flux_jy)
        })
        .collect();
    let (ra_err, dec_err, peak_err, int_err) = (&errs[0].1, &errs[1].1, &errs[2].1, &errs[3].1);
    // Per matched Gaussian fit: its S/N and the residuals over the errors for RA, Dec, peak and
    // integrated flux.
    let mut zs: Vec<(f64, [f64; 4])> = vec![];
    // The Dec error of the faint (S/N < 30) and the bright (S/N > 100) ones.
    let (mut lo, mut hi) = (vec![], vec![]);
    for k in (0..n).filter(|&k| gauss[k] == 1.0) {
        let Some(t) = truth.iter().find(|t| (t.0 - x[k]).hypot(t.1 - y[k]) < 2.0) else {
            continue;
        };
        let true_sky = wcs.pix_to_icrs(t.0, t.1).unwrap();
        let dra = (ra[k] - true_sky.0) * dec[k].to_radians().cos() * 3600.0;
        let ddec = (dec[k] - true_sky.1) * 3600.0;
        zs.push((
            snr[k],
            [
                dra / ra_err[k],
                ddec / dec_err[k],
                (peak[k] - t.2) / peak_err[k],
                (int[k] - t.2) / int_err[k],
            ],
        ));
        if snr[k] < 30.0 {
            lo.push(dec_err[k]);
        } else if snr[k] > 100.0 {
            hi.push(dec_err[k]);
        }
    }
    assert!(zs.len() >= 150, "{} matched", zs.len());
    assert!(
        lo.len() >= 20 && hi.len() >= 20,
        "{} {}",
        lo.len(),
        hi.len()
    );
    // Errors shrink with S/N: the bright sources' are several times smaller.
    assert!(
        median(&hi) * 3.0 < median(&lo),
        "median Dec error {} at S/N > 100 vs {} at S/N < 30",
        median(&hi),
        median(&lo)
    );
    // And they are the right size, faint or bright: the normalised residuals' robust scatter
    // (1.4826 × MAD) is about 1.
    let scatter = |keep: &dyn Fn(f64) -> bool, i: usize| {
        let z: Vec<f64> = zs
            .iter()
            .filter(|(s, _)| keep(*s))
            .map(|(_, z)| z[i])
            .collect();
        let med = median(&z);
        1.4826 * median(&z.iter().map(|v| (v - med).abs()).collect::<Vec<_>>())
    };
    for (bin, keep) in [
        ("all", &(|_| true) as &dyn Fn(f64) -> bool),
        ("S/N < 30", &|s| s < 30.0),
        ("S/N >= 30", &|s| s >= 30.0),
    ] {
        let s: Vec<f64> = (0..4).map(|i| scatter(keep, i)).collect();
        eprintln!(
            "{bin}: residual / error scatter: RA {:.2} Dec {:.2} peak {:.2} int {:.2}",
            s[0], s[1], s[2], s[3]
        );
        // Over three seeds the scatter was 0.95–1.18 over all sources, 0.74–1.19 in a bin.
        let (lo_ok, hi_ok) = if bin == "all" { (0.8, 1.3) } else { (0.6, 1.5) };
        for (what, v) in ["RA", "Dec", "peak", "int"].iter().zip(s) {
            assert!(
                v > lo_ok && v < hi_ok,
                "{bin}, {what}: residual / error scatter {v:.2}"
            );
        }
    }
}
