//! QA verdicts on simulated nights.
//!
//! - Whole nights through the real binary (simulate → inject a fault → init → ingest → plan →
//!   build → qa, without and with the night's truth as reference): clean nights PASS; each fault
//!   kind FAILs on the check that names it, blaming the faulty snapshot where there is one, and
//!   never an innocent one. Sized by `CONTIMG_QA_NIGHTS` / `CONTIMG_QA_FAULT_NIGHTS`
//!   (`scripts/qa-verdicts` runs 40 and 10).
//! - Astrometry by significance on 50 synthetic mosaics: with no injected shift no night's
//!   astrometry leaves PASS; with a shift of 0.2 beam at least 49 of 50 FAIL (sources of 5σ to
//!   200σ, correlated noise, a reference whose positions scatter by 1/16 beam per axis).
//! - The background-rms map on disk.

// A test or example reports on stdout, which its harness captures; only the binary is held to
// "stdout carries manifests only".
#![allow(clippy::print_stdout)]

mod common;

use std::path::Path;

use contimg::mosaic::qa::synth::{SynthMosaic, SynthSource};
use contimg::mosaic::qa::{self, QaConfig, QaOptions, QaReport, Subject, Verdict};
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rayon::prelude::*;

const BEAM_ARCSEC: f64 = 8.0;
const NIGHTS: u64 = 50;
/// The reference's position scatter per axis: 1/16 of the beam, as in the issue's 96" beam with
/// 6" scatter.
const REF_SCATTER_ARCSEC: f64 = 0.5;

fn night(seed: u64) -> SynthMosaic {
    let mut m = SynthMosaic {
        nx: 240,
        ny: 240,
        cell_arcsec: 2.0,
        projection: "SIN".into(),
        centre: (150.0 + seed as f64 * 0.5, 35.0),
        beam_arcsec: BEAM_ARCSEC,
        noise_jy: 1e-3,
        seed,
        sources: vec![],
    };
    m.add_random_sources(60, 0.005, 0.2, 15.0, 14.0);
    m
}

/// The reference: the truth shifted by `shift_arcsec` in a seeded direction, each position
/// scattered by [`REF_SCATTER_ARCSEC`] per axis.
fn write_reference(path: &Path, sources: &[SynthSource], seed: u64, shift_arcsec: f64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xca7a);
    let pa: f64 = rng.random_range(0.0..std::f64::consts::TAU);
    let mut text = String::from("name,ra,dec,flux\n");
    for (i, s) in sources.iter().enumerate() {
        let ex: f64 = rng.sample(StandardNormal);
        let ey: f64 = rng.sample(StandardNormal);
        let dx = shift_arcsec * pa.sin() + REF_SCATTER_ARCSEC * ex;
        let dy = shift_arcsec * pa.cos() + REF_SCATTER_ARCSEC * ey;
        let ra = s.ra_deg - dx / 3600.0 / s.dec_deg.to_radians().cos();
        let dec = s.dec_deg - dy / 3600.0;
        text.push_str(&format!(
            "\"src {i}, night {seed}\",{ra:.9},{dec:.9},{}\n",
            s.flux_jy
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn qa_night(dir: &Path, seed: u64, shift_arcsec: f64) -> QaReport {
    let m = night(seed);
    let stem = format!("night{seed}_{shift_arcsec}");
    let paths = m.write(dir, &stem, &|_| {}).unwrap();
    let reference = dir.join(format!("{stem}.ref.csv"));
    write_reference(&reference, &m.sources, seed, shift_arcsec);
    let cfg = QaConfig::default();
    let opts = QaOptions {
        thresholds: cfg.thresholds("science"),
        config: cfg,
        reference: Some(reference),
        out_dir: None,
        pictures: false,
        history_noise_jy: Vec::new(),
        selection: None,
    };
    let input = Subject {
        database: dir.join("none.sqlite3"),
        mosaic_id: seed as i64,
        name: stem,
        tier: "science".into(),
        path: paths[0].clone(),
        noise_path: Some(paths[2].clone()),
        inputs_path: None,
    };
    qa::measure(&input, &opts).unwrap()
}

/// (status, message, offset in beams, significance).
fn astrometry_status(r: &QaReport) -> (Verdict, String, f64, f64) {
    let c = r.checks.iter().find(|c| c.name == "astrometry").unwrap();
    let a = r.astrometry.as_ref().unwrap();
    (
        c.status,
        c.message.clone(),
        a.offset_beams.unwrap_or(f64::NAN),
        a.offset_significance.unwrap_or(f64::NAN),
    )
}

#[test]
fn fifty_nights_pass_without_a_shift_and_fail_with_a_fifth_of_a_beam() {
    let dir = tempfile::tempdir().unwrap();
    type Status = (Verdict, String, f64, f64);
    let results: Vec<(u64, Status, Status)> = (0..NIGHTS)
        .into_par_iter()
        .map(|seed| {
            let clean = qa_night(dir.path(), seed, 0.0);
            let a = clean.astrometry.as_ref().unwrap();
            assert!(a.n_matches >= 30, "night {seed}: {} matches", a.n_matches);
            let shifted = qa_night(dir.path(), seed, 0.2 * BEAM_ARCSEC);
            (seed, astrometry_status(&clean), astrometry_status(&shifted))
        })
        .collect();
    let worst_clean = results.iter().map(|r| r.1.2).fold(0.0, f64::max);
    let max_z_clean = results.iter().map(|r| r.1.3).fold(0.0, f64::max);
    let min_z_shifted = results.iter().map(|r| r.2.3).fold(f64::INFINITY, f64::min);
    eprintln!(
        "no shift: largest offset {worst_clean:.3} beam, largest significance {max_z_clean:.1}; \
         0.2 beam shift: smallest significance {min_z_shifted:.1}"
    );
    let flipped: Vec<String> = results
        .iter()
        .filter(|r| r.1.0 != Verdict::Pass)
        .map(|r| format!("night {}: {:?} {}", r.0, r.1.0, r.1.1))
        .collect();
    assert!(flipped.is_empty(), "no shift, yet:\n{}", flipped.join("\n"));
    let failed = results.iter().filter(|r| r.2.0 == Verdict::Fail).count();
    let missed: Vec<String> = results
        .iter()
        .filter(|r| r.2.0 != Verdict::Fail)
        .map(|r| format!("night {}: {:?} {}", r.0, r.2.0, r.2.1))
        .collect();
    assert!(
        failed >= 49,
        "0.2 beam shift failed only {failed} of {NIGHTS}:\n{}",
        missed.join("\n")
    );
}

#[test]
fn the_rms_map_is_written_beside_the_mosaic_and_measures_the_noise() {
    let dir = tempfile::tempdir().unwrap();
    let r = qa_night(dir.path(), 7, 0.0);
    let path = &r.noise.rms_map;
    assert_eq!(path, &dir.path().join("night7_0.rms.fits"));
    let map = contimg::fits::read::read_image(path).unwrap();
    let mosaic = contimg::fits::read::read_image(&r.mosaic).unwrap();
    assert_eq!(map.plane.dim(), mosaic.plane.dim());
    assert_eq!(map.header.str("BUNIT"), Some("JY/BEAM"));
    assert_eq!(map.header.f64("CRVAL1"), mosaic.header.f64("CRVAL1"));
    let median = contimg::stats::robust_stats(map.plane.iter()).unwrap().0;
    // The synthetic noise is 1 mJy/beam per pixel.
    assert!((median / 1e-3 - 1.0).abs() < 0.05, "median rms {median}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["noise"]["rms_map"], path.to_str().unwrap());
}

// ---------------------------------------------------------------------------------------------
// Whole simulated nights through the real binary, clean and with injected faults.
//
// A night: `contimg simulate` (size, count and cell drawn from the seed) → a fault written into
// the snapshot FITS files → `init`, `ingest`, `plan --tier science`, `build -`, `qa -` (no
// reference) and `qa --mosaic ID --reference truth.csv`. Each fault kind names the check that must
// FAIL (and, for a single bad snapshot, the snapshot it must blame). Sizes: CONTIMG_QA_NIGHTS
// clean nights (default 8), CONTIMG_QA_FAULT_NIGHTS per fault kind (default 2);
// CONTIMG_QA_KEEP=1 keeps the work directory. `scripts/qa-verdicts` runs it large.
// ---------------------------------------------------------------------------------------------

/// A check's or a verdict's status, ordered PASS < WARN < FAIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    fn parse(s: &str) -> Option<Status> {
        match s {
            "PASS" => Some(Status::Pass),
            "WARN" => Some(Status::Warn),
            "FAIL" => Some(Status::Fail),
            _ => None,
        }
    }
}

/// What is injected into a night's snapshots before ingest.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Clean,
    /// Every snapshot's CRVAL moved by this many beams (BMAJ), one seeded direction.
    NightShift(f64),
    /// One snapshot (not the first or last) moved by this many beams.
    SnapShift(f64),
    /// One snapshot's pixels times this factor.
    SnapFlux(f64),
    /// Every snapshot's pixels times this factor.
    NightFlux(f64),
    /// A constant offset per row (true) or column (false), N(0, 3σ) of the snapshot's rms.
    Stripes {
        rows: bool,
    },
    /// Spokes and a ring, ±3 % of the brightest source's apparent peak, 2 to 15 beams from it.
    Sidelobes,
}

const KINDS: [(&str, Fault); 13] = [
    ("clean", Fault::Clean),
    ("night_shift_1beam", Fault::NightShift(1.0)),
    ("night_shift_2beam", Fault::NightShift(2.0)),
    ("night_shift_0.2beam", Fault::NightShift(0.2)),
    ("snap_shift_1beam", Fault::SnapShift(1.0)),
    ("snap_shift_3beam", Fault::SnapShift(3.0)),
    ("snap_flux_1.5", Fault::SnapFlux(1.5)),
    ("snap_flux_3", Fault::SnapFlux(3.0)),
    ("night_flux_1.5", Fault::NightFlux(1.5)),
    ("night_flux_0.5", Fault::NightFlux(0.5)),
    ("stripes_rows", Fault::Stripes { rows: true }),
    ("stripes_cols", Fault::Stripes { rows: false }),
    ("sidelobes", Fault::Sidelobes),
];

/// What QA must say about a faulty night: `check` at `at_least`, the verdict too, the faulty
/// snapshot in the check's blame when `blames`; judged without a reference only when
/// `without_reference` (a whole-night shift or flux scale is invisible without one).
struct Expect {
    check: &'static str,
    at_least: Status,
    blames: bool,
    without_reference: bool,
}

impl Fault {
    fn expect(self) -> Option<Expect> {
        let e = |check, at_least, blames, without_reference| {
            Some(Expect {
                check,
                at_least,
                blames,
                without_reference,
            })
        };
        match self {
            Fault::Clean => None,
            Fault::NightShift(b) if b < 0.5 => e("astrometry", Status::Warn, false, false),
            Fault::NightShift(_) => e("astrometry", Status::Fail, false, false),
            Fault::SnapShift(_) => e("snapshot_astrometry", Status::Fail, true, true),
            Fault::SnapFlux(_) => e("snapshot_flux", Status::Fail, true, true),
            Fault::NightFlux(_) => e("flux_scale", Status::Fail, false, false),
            Fault::Stripes { .. } => e("noise_structure", Status::Fail, false, true),
            Fault::Sidelobes => e("dynamic_range", Status::Fail, false, true),
        }
    }

    /// Faults that raise a snapshot's measured rms past the science tier's cut (1 mJy/beam; the
    /// simulated rms is up to 0.7 mJy/beam): the cut is raised so that plan keeps them.
    fn raises_rms(self) -> bool {
        matches!(self, Fault::SnapFlux(_) | Fault::Stripes { .. })
            || matches!(self, Fault::NightFlux(f) if f > 1.0)
    }
}

/// A night's size, drawn from its seed.
#[derive(Clone, Copy, Debug)]
struct NightSize {
    images: usize,
    size: usize,
    cell_arcsec: u32,
}

fn night_size(seed: u64) -> NightSize {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    NightSize {
        images: rng.random_range(8..=16),
        size: rng.random_range(256..=384),
        cell_arcsec: rng.random_range(15..=40),
    }
}

const START: &str = "2026-11-20T04:00:00Z";
/// A plan window covering every night (at most 16 snapshots of 5 minutes from 04:00).
const WINDOW: [&str; 4] = [
    "--start",
    "2026-11-20T03:30:00Z",
    "--end",
    "2026-11-20T06:30:00Z",
];
const SIDELOBE_FRACTION: f64 = 0.03;

/// A snapshot loaded for fault injection.
struct Snapshot {
    path: std::path::PathBuf,
    file: String,
    /// The simulated noise rms (snapshots.csv), Jy/beam.
    rms: f64,
    image: contimg::fits::read::FitsImage,
    changed: bool,
}

impl Snapshot {
    fn beam_deg(&self) -> f64 {
        self.image.header.f64("BMAJ").expect("BMAJ")
    }

    fn beam_px(&self) -> f64 {
        self.beam_deg() / self.image.header.f64("CDELT2").expect("CDELT2").abs()
    }

    /// Sets a numeric card, keeping its comment.
    fn set(&mut self, key: &str, value: f64) {
        let card = self.image.header.cards.iter_mut().find(|c| c.key == key);
        card.expect(key).value = contimg::fits::Value::Float(value);
        self.changed = true;
    }

    /// Records what was done to the snapshot in a HISTORY card.
    fn history(&mut self, what: &str) {
        self.image
            .header
            .push_history(&format!("qa_verdicts: {what}"));
        self.changed = true;
    }

    fn write(&self) {
        let data: Vec<f32> = self.image.plane.iter().copied().collect();
        contimg::fits::write::write_image(&self.path, &self.image.shape, &data, &self.image.header)
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.path.display()));
    }
}

fn load_snapshots(night: &Path) -> Vec<Snapshot> {
    let mut rd = csv::Reader::from_path(night.join("snapshots.csv")).unwrap();
    rd.deserialize::<std::collections::HashMap<String, String>>()
        .map(|row| {
            let row = row.unwrap();
            let path = night.join(&row["file"]);
            Snapshot {
                image: contimg::fits::read::read_image(&path).unwrap(),
                path,
                file: row["file"].clone(),
                rms: row["rms_jy"].parse().unwrap(),
                changed: false,
            }
        })
        .collect()
}

/// A true source (truth.csv): name, RA, Dec (deg), flux (Jy).
struct TrueSource {
    name: String,
    ra: f64,
    dec: f64,
    flux: f64,
}

fn load_truth(night: &Path) -> Vec<TrueSource> {
    let mut rd = csv::Reader::from_path(night.join("truth.csv")).unwrap();
    rd.deserialize::<std::collections::HashMap<String, String>>()
        .map(|row| {
            let row = row.unwrap();
            TrueSource {
                name: row["name"].clone(),
                ra: row["ra_deg"].parse().unwrap(),
                dec: row["dec_deg"].parse().unwrap(),
                flux: row["flux_jy"].parse().unwrap(),
            }
        })
        .collect()
}

/// Moves a snapshot's reference point by `beams` restoring beams towards position angle `pa`
/// (radians, north through east).
fn shift(s: &mut Snapshot, beams: f64, pa: f64) {
    let h = &s.image.header;
    let (ra, dec) = (h.f64("CRVAL1").unwrap(), h.f64("CRVAL2").unwrap());
    let d = beams * s.beam_deg();
    let new_ra = (ra + d * pa.sin() / dec.to_radians().cos()).rem_euclid(360.0);
    let new_dec = dec + d * pa.cos();
    s.set("CRVAL1", new_ra);
    s.set("CRVAL2", new_dec);
    s.history(&format!(
        "shifted {beams} beam towards PA {:.0} deg",
        pa.to_degrees()
    ));
}

/// Multiplies a snapshot's pixels (sources and noise) by `factor`.
fn scale(s: &mut Snapshot, factor: f64) {
    s.image.plane.mapv_inplace(|v| v * factor as f32);
    s.history(&format!("pixels x {factor}"));
}

/// Adds a constant offset drawn from N(0, 3σ) to every row (or column) of a snapshot.
fn stripes(s: &mut Snapshot, rows: bool, rng: &mut impl rand::Rng) {
    let sd = 3.0 * s.rms;
    let axis = ndarray::Axis(if rows { 0 } else { 1 });
    for mut lane in s.image.plane.axis_iter_mut(axis) {
        let offset = (sd * rng.sample::<f64, _>(StandardNormal)) as f32;
        lane.mapv_inplace(|v| v + offset);
    }
    let what = if rows { "row" } else { "column" };
    s.history(&format!("per-{what} offsets drawn from N(0, {sd:.3e})"));
}

/// The sidelobe pattern at (dx, dy) beams from the source, in units of its amplitude: six radial
/// spokes of alternating sign starting at angle `spoke0`, and a negative ring at 8 beams, each one
/// restoring beam wide, between 2 and 15 beams.
fn sidelobe_pattern(dx: f64, dy: f64, spoke0: f64) -> f64 {
    use std::f64::consts::{FRAC_PI_3, TAU};
    let r = dx.hypot(dy);
    if !(2.0..=15.0).contains(&r) {
        return 0.0;
    }
    let sigma = 1.0 / 2.354_820_045; // one beam FWHM
    let theta = (dy.atan2(dx) - spoke0).rem_euclid(TAU);
    let k = (theta / FRAC_PI_3).round();
    let across = r * (theta - k * FRAC_PI_3).sin();
    let sign = if k as i64 % 2 == 0 { 1.0 } else { -1.0 };
    let gauss = |d: f64| (-0.5 * (d / sigma).powi(2)).exp();
    sign * gauss(across) - gauss(r - 8.0)
}

/// A source's 0-based pixel position in a snapshot, when at least a beam inside its edges.
fn position_in(s: &Snapshot, src: &TrueSource) -> Option<(f64, f64)> {
    let wcs = contimg::wcs::Wcs::from_header(&s.image.header).unwrap();
    let (x, y) = wcs.icrs_to_pix(src.ra, src.dec)?;
    let (ny, nx) = s.image.plane.dim();
    let m = s.beam_px();
    (x >= m && y >= m && x <= nx as f64 - 1.0 - m && y <= ny as f64 - 1.0 - m).then_some((x, y))
}

/// The apparent peak at a position: the brightest pixel within a beam of it.
fn apparent_peak(s: &Snapshot, (x0, y0): (f64, f64)) -> f64 {
    let beam = s.beam_px();
    let (ny, nx) = s.image.plane.dim();
    let span =
        |c: f64, n: usize| (c - beam).ceil().max(0.0) as usize..=((c + beam) as usize).min(n - 1);
    let mut peak = f64::NEG_INFINITY;
    for y in span(y0, ny) {
        for x in span(x0, nx) {
            if (x as f64 - x0).hypot(y as f64 - y0) <= beam {
                peak = peak.max(f64::from(s.image.plane[[y, x]]));
            }
        }
    }
    peak
}

/// Adds sidelobes around the apparently brightest of the 20 brightest true sources lying inside a
/// snapshot to every snapshot that holds it, at [`SIDELOBE_FRACTION`] of the source's apparent peak
/// there (a resolved source's peak can be far below its flux). Returns a description with the
/// amplitude over each snapshot's noise.
fn sidelobes(snaps: &mut [Snapshot], truth: &[TrueSource], spoke0: f64) -> String {
    let brightest_peak = |t: &TrueSource| {
        snaps
            .iter()
            .filter_map(|s| position_in(s, t).map(|p| apparent_peak(s, p)))
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let mut inside: Vec<&TrueSource> = truth
        .iter()
        .filter(|t| snaps.iter().any(|s| position_in(s, t).is_some()))
        .collect();
    inside.sort_by(|a, b| b.flux.total_cmp(&a.flux));
    let src = *inside
        .iter()
        .take(20)
        .max_by(|a, b| brightest_peak(a).total_cmp(&brightest_peak(b)))
        .expect("a true source inside some snapshot");
    let mut ratios = Vec::new();
    for s in snaps.iter_mut() {
        let Some((x0, y0)) = position_in(s, src) else {
            continue;
        };
        let amp = SIDELOBE_FRACTION * apparent_peak(s, (x0, y0));
        let beam = s.beam_px();
        for ((y, x), v) in s.image.plane.indexed_iter_mut() {
            let (dx, dy) = ((x as f64 - x0) / beam, (y as f64 - y0) / beam);
            *v += (amp * sidelobe_pattern(dx, dy, spoke0)) as f32;
        }
        s.history(&format!("sidelobes of {} at {amp:.3e} Jy/beam", src.name));
        ratios.push(amp / s.rms);
    }
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(0.0, f64::max);
    format!(
        "sidelobes of {} ({:.3} Jy) in {} snapshot(s), amplitude {lo:.1}..{hi:.1} x rms{}",
        src.name,
        src.flux,
        ratios.len(),
        if hi < 5.0 {
            " (weak: no brighter source)"
        } else {
            ""
        }
    )
}

/// What was injected: a description, and the one snapshot to blame (if any).
#[derive(Debug)]
struct Injected {
    detail: String,
    culprit: Option<String>,
}

/// Writes `fault` into the night's snapshot files (before ingest).
fn inject(fault: Fault, night: &Path, seed: u64) -> Injected {
    let mut snaps = load_snapshots(night);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xfa_0175);
    let pa: f64 = rng.random_range(0.0..std::f64::consts::TAU);
    let one = rng.random_range(1..snaps.len() - 1);
    let mut culprit = None;
    let detail = match fault {
        Fault::Clean => String::new(),
        Fault::NightShift(beams) => {
            snaps.iter_mut().for_each(|s| shift(s, beams, pa));
            format!("all shifted {beams} beam to PA {:.0}", pa.to_degrees())
        }
        Fault::SnapShift(beams) => {
            shift(&mut snaps[one], beams, pa);
            culprit = Some(snaps[one].file.clone());
            format!(
                "{} shifted {beams} beam to PA {:.0}",
                snaps[one].file,
                pa.to_degrees()
            )
        }
        Fault::SnapFlux(factor) => {
            scale(&mut snaps[one], factor);
            culprit = Some(snaps[one].file.clone());
            format!("{} x {factor}", snaps[one].file)
        }
        Fault::NightFlux(factor) => {
            snaps.iter_mut().for_each(|s| scale(s, factor));
            format!("all x {factor}")
        }
        Fault::Stripes { rows } => {
            snaps.iter_mut().for_each(|s| stripes(s, rows, &mut rng));
            format!("{} stripes of 3 sigma", if rows { "row" } else { "column" })
        }
        Fault::Sidelobes => sidelobes(&mut snaps, &load_truth(night), pa),
    };
    snaps.iter().filter(|s| s.changed).for_each(Snapshot::write);
    Injected { detail, culprit }
}

/// Runs contimg with `args`, `stdin` piped in; (exit code, stdout, stderr).
fn contimg_run(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    use std::io::Write;
    let mut child = common::contimg()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running contimg");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), out.stdout, stderr)
}

/// Runs a step that must exit 0 and print JSON.
fn step(args: &[&str], stdin: &[u8]) -> Result<(Vec<u8>, serde_json::Value), String> {
    let (code, stdout, stderr) = contimg_run(args, stdin);
    if code != 0 {
        return Err(format!("contimg {args:?} exited {code}: {stderr}"));
    }
    let json = serde_json::from_slice(&stdout)
        .map_err(|e| format!("contimg {args:?}: stdout is not JSON ({e})"))?;
    Ok((stdout, json))
}

/// One check of a QA manifest.
#[derive(Debug)]
struct CheckOutcome {
    name: String,
    status: Status,
    message: String,
    blame: Vec<String>,
}

/// A QA manifest's verdict and checks.
#[derive(Debug)]
struct QaOutcome {
    verdict: Status,
    checks: Vec<CheckOutcome>,
}

/// Runs `contimg qa` (exit 0 on PASS/WARN, 1 on FAIL, the manifest printed either way).
fn qa_step(args: &[&str], stdin: &[u8]) -> Result<QaOutcome, String> {
    let (code, stdout, stderr) = contimg_run(args, stdin);
    let m: serde_json::Value = serde_json::from_slice(&stdout)
        .map_err(|e| format!("contimg {args:?} exited {code}, stdout not JSON ({e}): {stderr}"))?;
    let status = |v: &serde_json::Value| Status::parse(v.as_str().unwrap_or_default());
    let verdict = status(&m["verdict"]).ok_or_else(|| format!("no verdict in {m}"))?;
    if code != i32::from(verdict == Status::Fail) {
        return Err(format!(
            "qa {args:?}: verdict {verdict:?} but exit code {code}"
        ));
    }
    let checks = m["checks"]
        .as_array()
        .ok_or_else(|| format!("no checks in {m}"))?
        .iter()
        .map(|c| CheckOutcome {
            name: c["name"].as_str().unwrap_or_default().to_string(),
            status: status(&c["status"]).unwrap_or(Status::Fail),
            message: c["message"].as_str().unwrap_or_default().to_string(),
            blame: c["blame"]
                .as_array()
                .map(|b| {
                    b.iter()
                        .filter_map(|p| p.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    Ok(QaOutcome { verdict, checks })
}

/// One night's outcome: [without reference, with reference].
#[derive(Debug)]
struct NightOutcome {
    kind: usize,
    seed: u64,
    size: NightSize,
    injected: Injected,
    planned: usize,
    qa: [QaOutcome; 2],
    seconds: f64,
}

fn run_night(root: &Path, kind: usize, seed: u64) -> Result<NightOutcome, String> {
    let t0 = std::time::Instant::now();
    let (name, fault) = KINDS[kind];
    let size = night_size(seed);
    let dir = root.join(format!("{name}_{seed}"));
    let (night, ws) = (dir.join("night"), dir.join("ws"));
    let (n, s, c, sd) = (
        size.images.to_string(),
        size.size.to_string(),
        size.cell_arcsec.to_string(),
        seed.to_string(),
    );
    let night_s = night.to_str().unwrap();
    let ws_s = ws.to_str().unwrap();
    step(
        &[
            "simulate", "--out", night_s, "--images", &n, "--size", &s, "--cell", &c, "--seed",
            &sd, "--start", START,
        ],
        b"",
    )?;
    let injected = inject(fault, &night, seed);
    step(&["init", ws_s], b"")?;
    if fault.raises_rms() {
        // QA is to see the faulty snapshot: the plan must not leave it out as noisy.
        common::add_config(
            &ws,
            "[tiers.science]\nmax_rms_jy = 0.01\nmax_rms_factor = inf\n",
        );
    }
    let (_, ingest) = step(&["-C", ws_s, "ingest", night_s], b"")?;
    let added = ingest["added"].as_array().map_or(0, Vec::len);
    if added != size.images {
        return Err(format!(
            "ingest added {added} of {} images: {ingest}",
            size.images
        ));
    }
    let mut plan_args = vec!["-C", ws_s, "plan", "--tier", "science"];
    plan_args.extend(WINDOW);
    let (plan, plan_json) = step(&plan_args, b"")?;
    let planned = plan_json["n_images"].as_u64().unwrap_or(0) as usize;
    let (mosaic, mosaic_json) = step(&["-C", ws_s, "build", "-"], &plan)?;
    let id = mosaic_json["mosaic_id"].to_string();
    let truth = night.join("truth.csv");
    let without = qa_step(&["-C", ws_s, "qa", "-"], &mosaic)?;
    let with = qa_step(
        &[
            "-C",
            ws_s,
            "qa",
            "--mosaic",
            &id,
            "--reference",
            truth.to_str().unwrap(),
        ],
        b"",
    )?;
    Ok(NightOutcome {
        kind,
        seed,
        size,
        injected,
        planned,
        qa: [without, with],
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// How one QA run of a night measures up: (the named check at its status, the culprit blamed,
/// meets the expectation); `None` when nothing is expected of it. Without a reference, a culprit
/// snapshot that shares too few sources with the others cannot be judged; the check must then
/// name it as not compared (never pass it in silence), and that meets the expectation.
fn judge(o: &NightOutcome, with_reference: bool) -> Option<(bool, bool, bool)> {
    let qa = &o.qa[usize::from(with_reference)];
    let Some(e) = KINDS[o.kind].1.expect() else {
        return Some((false, false, qa.verdict == Status::Pass));
    };
    if !with_reference && !e.without_reference {
        return None;
    }
    let check = qa.checks.iter().find(|c| c.name == e.check);
    let named = check.is_some_and(|c| c.status >= e.at_least) && qa.verdict >= e.at_least;
    let blamed = match (check, &o.injected.culprit) {
        (Some(c), Some(file)) => c
            .blame
            .iter()
            .any(|b| Path::new(b).file_name().is_some_and(|f| f == file.as_str())),
        _ => false,
    };
    Some((
        named,
        blamed,
        (named && (blamed || !e.blames)) || (!with_reference && not_compared(o, e.check)),
    ))
}

/// Whether the check names the night's culprit among the snapshots it could not compare.
fn not_compared(o: &NightOutcome, check: &str) -> bool {
    let (Some(c), Some(file)) = (
        o.qa[0].checks.iter().find(|c| c.name == check),
        &o.injected.culprit,
    ) else {
        return false;
    };
    c.message
        .split_once("not compared")
        .is_some_and(|(_, names)| names.contains(file.as_str()))
}

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a count"))
    })
}

#[test]
fn nights_clean_pass_and_injected_faults_fail_with_the_check_named() {
    let clean = env_count("CONTIMG_QA_NIGHTS", 8);
    let per_fault = env_count("CONTIMG_QA_FAULT_NIGHTS", 2);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    // Removed when the test ends (or panics) unless CONTIMG_QA_KEEP is set.
    let _tmp = if std::env::var_os("CONTIMG_QA_KEEP").is_some() {
        eprintln!("keeping the nights in {}", tmp.keep().display());
        None
    } else {
        Some(tmp)
    };
    // Clean nights are seeds 1..; fault kind k's nights are seeds 1000k + 1...
    let nights: Vec<(usize, u64)> = (0..KINDS.len())
        .flat_map(|k| {
            let n = if k == 0 { clean } else { per_fault };
            (1..=n).map(move |i| (k, 1000 * k as u64 + i))
        })
        .collect();
    let t0 = std::time::Instant::now();
    let results: Vec<Result<NightOutcome, String>> = nights
        .par_iter()
        .map(|&(k, seed)| {
            run_night(&root, k, seed).map_err(|e| format!("{} seed {seed}: {e}", KINDS[k].0))
        })
        .collect();
    let wall = t0.elapsed().as_secs_f64();
    let (ok, errors): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    let outcomes: Vec<NightOutcome> = ok.into_iter().map(Result::unwrap).collect();
    let errors: Vec<String> = errors.into_iter().map(Result::unwrap_err).collect();

    // The table: per kind and per QA run, the verdicts, the named check, the blamed snapshot.
    let cell = |n: usize, applies: bool| {
        if applies { n.to_string() } else { "-".into() }
    };
    let mut table = format!(
        "{:<20} {:>3} | {:^31} | {:^31}\n{:<20} {:>3} |{}|{}\n",
        "",
        "",
        "without reference",
        "with reference",
        "kind",
        "n",
        " PASS WARN FAIL  check  blamed ",
        " PASS WARN FAIL  check  blamed "
    );
    let mut failures = Vec::new();
    for (k, (name, fault)) in KINDS.iter().enumerate() {
        let of_kind: Vec<&NightOutcome> = outcomes.iter().filter(|o| o.kind == k).collect();
        let e = fault.expect();
        table.push_str(&format!("{name:<20} {:>3} ", of_kind.len()));
        for with_reference in [false, true] {
            let count = |v| {
                of_kind
                    .iter()
                    .filter(|o| o.qa[usize::from(with_reference)].verdict == v)
                    .count()
            };
            let judged: Vec<(bool, bool, bool)> = of_kind
                .iter()
                .filter_map(|o| judge(o, with_reference))
                .collect();
            let applies = e
                .as_ref()
                .is_some_and(|e| with_reference || e.without_reference);
            let named = judged.iter().filter(|j| j.0).count();
            let blamed = judged.iter().filter(|j| j.1).count();
            let met = judged.iter().filter(|j| j.2).count();
            table.push_str(&format!(
                "| {:>4} {:>4} {:>4} {:>6} {:>6}  ",
                count(Status::Pass),
                count(Status::Warn),
                count(Status::Fail),
                cell(named, applies),
                cell(blamed, applies && e.as_ref().is_some_and(|e| e.blames)),
            ));
            // Without a reference a snapshot is judged only against the ones it overlaps; on the
            // sparse simulated sky some culprits share two or three faint sources with their
            // neighbours, too few for a significant verdict (the check then reports its figure,
            // e.g. "x1.62 +- 15 %", and PASSes rather than risk false alarms). Two nights in
            // three must still FAIL with the culprit named; with a reference, every night.
            let sparse = !with_reference && e.as_ref().is_some_and(|e| e.blames);
            let required = if sparse {
                (2 * of_kind.len()).div_ceil(3)
            } else {
                of_kind.len()
            };
            if !judged.is_empty() && met < required {
                let want = match &e {
                    None => "PASS".to_string(),
                    Some(e) => format!(
                        "{:?} on {}{}",
                        e.at_least,
                        e.check,
                        if e.blames { " blaming the culprit" } else { "" }
                    ),
                };
                let how = if with_reference { "with" } else { "without" };
                failures.push(format!(
                    "{name} {how} reference: {met}/{} nights gave {want}",
                    of_kind.len()
                ));
            }
        }
        table.push('\n');
    }
    let expected_nights = nights.len();
    eprintln!(
        "{} nights ({clean} clean, {per_fault} per fault kind) in {wall:.1} s wall; {:.2} s per \
         night on average (longest {:.2} s)\n{table}",
        expected_nights,
        outcomes.iter().map(|o| o.seconds).sum::<f64>() / outcomes.len().max(1) as f64,
        outcomes.iter().map(|o| o.seconds).fold(0.0, f64::max),
    );

    // Every unexpected outcome, one line each; then the notes (what was injected where it says
    // something about the night, e.g. the sidelobe amplitude) and images the plan left out.
    let mut notes = Vec::new();
    for o in &outcomes {
        let name = KINDS[o.kind].0;
        let size = format!(
            "seed {} ({} x {}px, {}\")",
            o.seed, o.size.images, o.size.size, o.size.cell_arcsec
        );
        // A check that blames must blame the culprit only: never an innocent snapshot.
        for qa in &o.qa {
            for c in &qa.checks {
                let innocent: Vec<&String> = c
                    .blame
                    .iter()
                    .filter(|b| {
                        o.injected.culprit.as_ref().is_none_or(|f| {
                            Path::new(b.as_str())
                                .file_name()
                                .is_none_or(|n| n != f.as_str())
                        }) && !matches!(KINDS[o.kind].1, Fault::Stripes { .. } | Fault::Sidelobes)
                    })
                    .collect();
                if !innocent.is_empty() {
                    failures.push(format!(
                        "{name} {size}: {} blames {innocent:?}, which is not at fault",
                        c.name
                    ));
                }
            }
        }
        if o.planned != o.size.images {
            notes.push(format!(
                "{name} {size}: plan took {} of {} images",
                o.planned, o.size.images
            ));
            failures.push(format!("{name} {size}: the plan left images out"));
        }
        if KINDS[o.kind].1 == Fault::Sidelobes {
            notes.push(format!("{name} {size}: {}", o.injected.detail));
        }
        if let Some(e) = KINDS[o.kind].1.expect()
            && e.blames
            && not_compared(o, e.check)
        {
            notes.push(format!(
                "{name} {size}: without a reference the culprit shares too few sources with the \
                 other snapshots to be compared, and {} says so",
                e.check
            ));
        }
        for with_reference in [false, true] {
            let Some((_, _, false)) = judge(o, with_reference) else {
                continue;
            };
            let qa = &o.qa[usize::from(with_reference)];
            let checks: Vec<String> = qa
                .checks
                .iter()
                .filter(|c| c.status != Status::Pass)
                .map(|c| {
                    let blame = if c.blame.is_empty() {
                        String::new()
                    } else {
                        format!(" [blame: {}]", c.blame.join(", "))
                    };
                    format!("{} {:?}: {}{blame}", c.name, c.status, c.message)
                })
                .collect();
            eprintln!(
                "UNEXPECTED {name} {size} {} reference: {:?}{}; {}",
                if with_reference { "with" } else { "without" },
                qa.verdict,
                if o.injected.detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", o.injected.detail)
                },
                if checks.is_empty() {
                    "every check PASS".to_string()
                } else {
                    checks.join(" | ")
                }
            );
        }
    }
    for n in &notes {
        eprintln!("note: {n}");
    }
    for e in &errors {
        eprintln!("ERROR {e}");
    }
    assert!(
        errors.is_empty(),
        "{} night(s) did not run through",
        errors.len()
    );
    assert!(
        failures.is_empty(),
        "QA verdicts fall short:\n{}",
        failures.join("\n")
    );
}
