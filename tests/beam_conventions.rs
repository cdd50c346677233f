//! The conventions real imagers write, on synthetic headers: a pointing (OBSRA/OBSDEC) away
//! from the reference pixel, a WCS that contradicts its own pointing, a frequency only on a
//! degenerate FREQ-LSR axis, an unknown TELESCOP, a phased array, WSClean's `-image` /
//! `-image-pb` / `-beam-0` sets. Each either builds to the sky that was put in (the beam taken
//! from the AIPS/Miriad VLA formula written out here, not from contimg) or is refused with a
//! message naming the file, the cause and the fix.

mod mosaic_util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use contimg::fits::{Header, Value};
use contimg::mosaic::beam::BeamModel;
use contimg::mosaic::engine::{
    AppliedBeam, BuildOptions, Interpolation, MosaicError, MosaicInput, MosaicResult, OutputPaths,
    PrimaryBeam, build_mosaic,
};
use contimg::mosaic::observation::PointingSource;
use mosaic_util::read;

const N: usize = 200;
const CELL_DEG: f64 = 15.0 / 3600.0;
const CENTRE: (f64, f64) = (150.0, 30.0);
const SKY_JY: f64 = 0.5;

/// The VLA beam of AIPS PBCOR / Miriad `pb.for`: A = P(0)/P(x), x = (r[arcmin] ν[GHz])².
fn vla_beam(r_deg: f64, freq_hz: f64) -> f64 {
    let c = [
        0.992_037_8,
        0.995_688_5e-3,
        0.381_457_3e-5,
        -0.531_169_5e-8,
        0.398_096_3e-11,
    ];
    let x = (r_deg * 60.0 * freq_hz / 1e9).powi(2);
    let p = c.iter().rev().fold(0.0, |acc, k| acc * x + k);
    let a = c[0] / p;
    if a < 0.023 { 0.0 } else { a }
}

/// A 200² SIN image of 15" pixels (50′ across, wider than the VLA's 31′ FWHM at 1.4 GHz) centred
/// on `CENTRE`, whose pixel values are `value(ra, dec)`, with `cards` added to the header.
fn image(path: &Path, cards: &[(&str, Value)], value: impl Fn(f64, f64) -> f64) -> PathBuf {
    let mut h = Header::new();
    let f = Value::Float;
    let s = |v: &str| Value::Str(v.into());
    for (k, v) in [
        ("CTYPE1", s("RA---SIN")),
        ("CTYPE2", s("DEC--SIN")),
        ("CRVAL1", f(CENTRE.0)),
        ("CRVAL2", f(CENTRE.1)),
        ("CRPIX1", f(N as f64 / 2.0 + 0.5)),
        ("CRPIX2", f(N as f64 / 2.0 + 0.5)),
        ("CDELT1", f(-CELL_DEG)),
        ("CDELT2", f(CELL_DEG)),
        ("EQUINOX", f(2000.0)),
        ("RADESYS", s("FK5")),
        ("BUNIT", s("JY/BEAM")),
        ("BMAJ", f(45.0 / 3600.0)),
        ("BMIN", f(45.0 / 3600.0)),
        ("BPA", f(0.0)),
        ("DATE-OBS", s("2026-11-20T03:00:00")),
    ] {
        h.set(k, v, "");
    }
    for (k, v) in cards {
        h.set(k, v.clone(), "");
    }
    let wcs = contimg::wcs::Wcs::from_header(&h).unwrap();
    let mut data = ndarray::Array2::<f32>::zeros((N, N));
    // Deterministic noise of ~1e-4 Jy/beam (an LCG), so that every image has a noise to measure.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for ((y, x), v) in data.indexed_iter_mut() {
        let (ra, dec) = wcs.pix_to_icrs(x as f64, y as f64).unwrap();
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let u = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        *v = (value(ra, dec) + 3.5e-4 * u) as f32;
    }
    contimg::fits::write::write_image_2d(path, data.view(), &h).unwrap();
    path.to_path_buf()
}

fn freq_cards(freq_hz: f64) -> Vec<(&'static str, Value)> {
    vec![
        ("CTYPE3", Value::Str("FREQ".into())),
        ("CRVAL3", Value::Float(freq_hz)),
        ("CRPIX3", Value::Float(1.0)),
        ("CDELT3", Value::Float(1e6)),
    ]
}

fn build(
    paths: &[PathBuf],
    opts: &BuildOptions,
    dir: &Path,
    stem: &str,
) -> Result<MosaicResult, MosaicError> {
    let inputs: Vec<MosaicInput> = paths.iter().map(|p| MosaicInput::new(p, 1e-3)).collect();
    build_mosaic(&inputs, opts, &OutputPaths::from_stem(dir, stem), &|_| {})
}

fn bilinear() -> BuildOptions {
    BuildOptions {
        interpolation: Interpolation::Bilinear,
        ..BuildOptions::default()
    }
}

/// Worst |mosaic / `SKY_JY` − 1| over the mosaic's pixels whose input beam (by `beam(ra, dec)`)
/// is at least 0.15, and how many there were.
fn worst_flat_sky_error(r: &MosaicResult, beam: impl Fn(f64, f64) -> f64) -> (f64, usize) {
    let (_, img) = read(&r.paths.mosaic);
    let (mut worst, mut n) = (0.0f64, 0usize);
    for ((y, x), v) in img.indexed_iter() {
        let Some((ra, dec)) = r.grid.pix_to_icrs(x as f64, y as f64) else {
            continue;
        };
        if beam(ra, dec) < 0.15 || !v.is_finite() {
            continue;
        }
        // Stay a few pixels inside the image's edge.
        if contimg::wcs::separation_deg((ra, dec), CENTRE) > 0.45 * N as f64 * CELL_DEG {
            continue;
        }
        n += 1;
        worst = worst.max((f64::from(*v) / SKY_JY - 1.0).abs());
    }
    (worst, n)
}

#[test]
fn the_beam_is_centred_on_obsra_obsdec_not_the_reference_pixel() {
    let dir = tempfile::tempdir().unwrap();
    let f = 1.4e9;
    // The pointing lies 8′ east and 4′ north of the reference pixel.
    let pointing = (
        CENTRE.0 + 8.0 / 60.0 / CENTRE.1.to_radians().cos(),
        CENTRE.1 + 4.0 / 60.0,
    );
    let beam = |ra: f64, dec: f64| vla_beam(contimg::wcs::separation_deg((ra, dec), pointing), f);
    let mut cards = freq_cards(f);
    cards.extend([
        ("TELESCOP", Value::Str("VLA".into())),
        ("OBSRA", Value::Float(pointing.0)),
        ("OBSDEC", Value::Float(pointing.1)),
    ]);
    let p = image(&dir.path().join("vla.fits"), &cards, |ra, dec| {
        SKY_JY * beam(ra, dec)
    });
    let r = build(&[p], &bilinear(), dir.path(), "vla").unwrap();
    let rec = &r.inputs[0];
    assert_eq!(rec.primary_beam, AppliedBeam::Model);
    assert_eq!(rec.pointing_source, Some(PointingSource::Header));
    // (FK5 J2000 and ICRS differ by the frame bias, ~20 mas.)
    assert!(contimg::wcs::separation_deg(rec.pointing_deg, pointing) < 1e-4);
    let (worst, n) = worst_flat_sky_error(&r, beam);
    assert!(n > 5000, "{n} pixels judged");
    assert!(worst < 0.01, "the flat sky comes back within {worst}");
    // The test discriminates: on many of the judged pixels a beam on the reference pixel would
    // have been off by more than 5 %.
    let off = |ra: f64, dec: f64| vla_beam(contimg::wcs::separation_deg((ra, dec), CENTRE), f);
    let g = &r.grid;
    let mut n_off = 0;
    for y in 0..g.ny {
        for x in 0..g.nx {
            let (ra, dec) = g.pix_to_icrs(x as f64, y as f64).unwrap();
            let (a, b) = (beam(ra, dec), off(ra, dec));
            if a >= 0.15 && b > 0.0 && (a / b - 1.0).abs() > 0.05 {
                n_off += 1;
            }
        }
    }
    assert!(n_off > 1000, "{n_off}");
}

#[test]
fn a_wcs_that_contradicts_its_own_pointing_is_refused_at_build_and_flagged_at_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let mut cards = freq_cards(1.4e9);
    cards.extend([
        ("TELESCOP", Value::Str("VLA".into())),
        ("OBSRA", Value::Float(CENTRE.0 + 3.0)),
        ("OBSDEC", Value::Float(CENTRE.1)),
    ]);
    let p = image(&dir.path().join("badwcs.fits"), &cards, |_, _| SKY_JY);
    let err = build(std::slice::from_ref(&p), &bilinear(), dir.path(), "bad").unwrap_err();
    assert!(matches!(err, MosaicError::OutsideBeam { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("badwcs.fits")
            && msg.contains("OBSRA/OBSDEC")
            && msg.contains("--primary-beam unity"),
        "{msg}"
    );
    // Ingest says so before any build.
    let bytes = std::fs::read(&p).unwrap();
    let a = contimg::mosaic::ingest::analyse(&p, &bytes, "x".into(), 1 << 30).unwrap();
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("from its own pointing")),
        "{:?}",
        a.warnings
    );
}

#[test]
fn the_frequency_of_a_degenerate_freq_lsr_axis_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // Miriad: NAXIS = 2, the frequency on axis 3 only.
    let cards = vec![
        ("TELESCOP", Value::Str("ATCA".into())),
        ("CTYPE3", Value::Str("FREQ-LSR".into())),
        ("CRVAL3", Value::Float(1.4e9)),
        ("CRPIX3", Value::Float(1.0)),
        ("CDELT3", Value::Float(8e6)),
    ];
    let p = image(&dir.path().join("miriad.fits"), &cards, |_, _| SKY_JY);
    let r = build(std::slice::from_ref(&p), &bilinear(), dir.path(), "miriad").unwrap();
    assert_eq!(r.inputs[0].freq_hz, Some(1.4e9));
    assert_eq!(r.inputs[0].primary_beam, AppliedBeam::Model);
    let bytes = std::fs::read(&p).unwrap();
    let a = contimg::mosaic::ingest::analyse(&p, &bytes, "x".into(), 1 << 30).unwrap();
    assert_eq!(a.record.freq_hz, Some(1.4e9));
    // The mosaic carries the frequency on its own degenerate axis, which we read back.
    let (h, _) = read(&r.paths.mosaic);
    assert_eq!(contimg::fits::facts::frequency_hz(&h), Some(1.4e9));
    assert!(
        h.get("RESTFRQ").is_none(),
        "a continuum mosaic has no line rest frequency"
    );
    assert_eq!(h.str("TELESCOP"), Some("ATCA"));
}

#[test]
fn an_unknown_telescope_is_refused_unless_the_configuration_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut cards = freq_cards(1.4e9);
    cards.push(("TELESCOP", Value::Str("Mystery-7".into())));
    let p = image(&dir.path().join("mystery.fits"), &cards, |_, _| SKY_JY);
    let err = build(std::slice::from_ref(&p), &bilinear(), dir.path(), "m").unwrap_err();
    assert!(matches!(err, MosaicError::UnknownTelescope { .. }), "{err}");
    let msg = err.to_string();
    for needle in [
        "mystery.fits",
        "[build.telescopes.MYSTERY7]",
        "--primary-beam unity",
        "mystery.pb.fits",
    ] {
        assert!(msg.contains(needle), "{needle} missing from: {msg}");
    }
    // Ingest warns about it too.
    let bytes = std::fs::read(&p).unwrap();
    let a = contimg::mosaic::ingest::analyse(&p, &bytes, "x".into(), 1 << 30).unwrap();
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("no built-in primary-beam model")),
        "{:?}",
        a.warnings
    );
    // Each fix the message names builds.
    let configured = BuildOptions {
        telescopes: BTreeMap::from([("MYSTERY7".to_string(), BeamModel::gaussian(9.0))]),
        ..bilinear()
    };
    let r = build(std::slice::from_ref(&p), &configured, dir.path(), "m1").unwrap();
    assert_eq!(r.inputs[0].model.as_ref().unwrap().dish_m, 9.0);
    assert!(
        r.inputs[0].beam_reason.contains("configured"),
        "{}",
        r.inputs[0].beam_reason
    );
    let unity = BuildOptions {
        primary_beam: PrimaryBeam::Unity,
        ..bilinear()
    };
    assert_eq!(
        build(std::slice::from_ref(&p), &unity, dir.path(), "m2")
            .unwrap()
            .inputs[0]
            .primary_beam,
        AppliedBeam::Unity
    );
    let dish = BuildOptions {
        default_dish_m: Some(7.0),
        ..bilinear()
    };
    assert_eq!(
        build(std::slice::from_ref(&p), &dish, dir.path(), "m3")
            .unwrap()
            .inputs[0]
            .model
            .as_ref()
            .unwrap()
            .dish_m,
        7.0
    );
    // A DISHDIAM card is the header saying it.
    let mut cards = freq_cards(1.4e9);
    cards.extend([
        ("TELESCOP", Value::Str("Mystery-7".into())),
        ("DISHDIAM", Value::Float(6.0)),
    ]);
    let q = image(&dir.path().join("mystery_dish.fits"), &cards, |_, _| SKY_JY);
    assert_eq!(
        build(&[q], &bilinear(), dir.path(), "m4").unwrap().inputs[0]
            .model
            .as_ref()
            .unwrap()
            .dish_m,
        6.0
    );
}

#[test]
fn ami_la_gets_its_own_dishes_and_a_single_dish_map_no_beam() {
    let dir = tempfile::tempdir().unwrap();
    let mut cards = freq_cards(15.7e9);
    cards.push(("TELESCOP", Value::Str("AMI-LA".into())));
    let p = image(&dir.path().join("ami.fits"), &cards, |_, _| SKY_JY);
    let r = build(&[p], &bilinear(), dir.path(), "ami").unwrap();
    let m = r.inputs[0].model.clone().unwrap();
    assert_eq!(m.dish_m, 12.8);
    // ≈ 5.5′ FWHM at 15.7 GHz (Zwart et al. 2008).
    assert!((m.fwhm_rad(15.7e9).to_degrees() * 60.0 - 5.5).abs() < 0.2);
    let mut cards = freq_cards(1.4e9);
    cards.push(("TELESCOP", Value::Str("GBT".into())));
    let g = image(&dir.path().join("gbt.fits"), &cards, |_, _| SKY_JY);
    let r = build(&[g], &bilinear(), dir.path(), "gbt").unwrap();
    assert_eq!(r.inputs[0].primary_beam, AppliedBeam::Unity);
    assert!(
        r.inputs[0].beam_reason.contains("single dish"),
        "{}",
        r.inputs[0].beam_reason
    );
}

/// WSClean's products of one LOFAR pointing: `-image` (apparent, S·A), `-image-pb` (corrected,
/// S) and `-beam-0` (A). Either image, with the beam beside it, builds to S; the corrected one is
/// never divided again; without the beam image a phased array is refused.
#[test]
fn wsclean_image_pb_and_beam_sets_build_to_the_sky_and_are_never_corrected_twice() {
    let dir = tempfile::tempdir().unwrap();
    let f = 150e6;
    // A station-like beam, not a dish formula: 3° FWHM Gaussian about a point 0.1° off centre.
    let pnt = (CENTRE.0 + 0.1, CENTRE.1);
    let a = |ra: f64, dec: f64| {
        let r = contimg::wcs::separation_deg((ra, dec), pnt);
        (-4.0 * std::f64::consts::LN_2 * (r / 0.7).powi(2)).exp()
    };
    let mut cards = freq_cards(f);
    cards.push(("TELESCOP", Value::Str("LOFAR".into())));
    let apparent = image(&dir.path().join("field-image.fits"), &cards, |ra, dec| {
        SKY_JY * a(ra, dec)
    });
    let corrected = image(&dir.path().join("field-image-pb.fits"), &cards, |_, _| {
        SKY_JY
    });
    // Without the beam: refused, naming WSClean's beam image.
    let err = build(
        std::slice::from_ref(&apparent),
        &bilinear(),
        dir.path(),
        "w0",
    )
    .unwrap_err();
    assert!(matches!(err, MosaicError::PhasedArray { .. }), "{err}");
    assert!(
        err.to_string().contains("-beam-0.fits") && err.to_string().contains("field-image.fits"),
        "{err}"
    );
    image(&dir.path().join("field-beam-0.fits"), &cards, a);
    for (p, stem) in [(&apparent, "w1"), (&corrected, "w2")] {
        let r = build(std::slice::from_ref(p), &bilinear(), dir.path(), stem).unwrap();
        let rec = &r.inputs[0];
        assert_eq!(rec.primary_beam, AppliedBeam::Image, "{stem}");
        assert!(
            rec.pb_image
                .as_ref()
                .unwrap()
                .ends_with("field-beam-0.fits")
        );
        assert_eq!(rec.pb_corrected, stem == "w2", "{stem}");
        let (worst, n) = worst_flat_sky_error(&r, a);
        assert!(n > 5000 && worst < 0.01, "{stem}: worst {worst} over {n}");
    }
    // And a directory ingest takes the two images but not the beam.
    assert!(contimg::mosaic::ingest::looks_like_image(&corrected));
    assert!(!contimg::mosaic::ingest::looks_like_image(
        &dir.path().join("field-beam-0.fits")
    ));
}
