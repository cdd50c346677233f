//! The verdict: each check compares what QA measured with what the image should be, and says
//! the figure, the expectation, the outcome and — where it can — the snapshots to blame.
//!
//! Owns [`checks`] (pure: a measured [`QaReport`] and [`Thresholds`] in, checks out, so a verdict
//! can be re-decided with other thresholds without measuring again) and the false-alarm budget.
//!
//! The checks, in order (each PASS, WARN or FAIL; a check that could not be made says so with
//! `checked: false` and does not move the verdict):
//! - `noise`: measured noise / the build's expected-noise map (from the inputs' own rms).
//! - `noise_history`: measured noise / the median of the same tier's recent mosaics (at least 5;
//!   median and robust scatter, so a few bad nights in the history do not move it) — the inputs'
//!   rms, which a corrupted input inflates, does not enter it.
//! - `noise_structure`: per input, on its own pixel grid, the directional excess of its whitened
//!   noise power (stripes along rows, columns or any direction); the inputs are named.
//! - `dynamic_range`: the noise 3–12 beams around the brightest sources (S/N ≥ 50) against the
//!   expected noise there: sidelobes or calibration errors raise it, a faint field cannot.
//! - `astrometry`, `completeness`, `flux_scale`: against a reference catalogue when one is named
//!   (the bulk offset in beams; the share of the reference sources the mosaic should detect that
//!   it did; the flux scale against the reference scaled to the mosaic's frequency).
//! - `snapshot_astrometry`, `snapshot_flux`: every snapshot against the others where they
//!   overlap; the offending snapshots are named.
//! - `artefacts`: negative bowls and pixels (against the expected noise), edge noise.
//! - `selection`: the share of the night's images its plan left out (for noise, band,
//!   resolution, no frequency, duplicates; not the tier's count nor the sky box asked for),
//!   against `[qa] max_left_out_share`; WARN only, naming the images and the count per reason.
//!   Made only when the database holds the mosaic's plan with its left-out images. Not a
//!   statistical test, so it takes no share of the false-alarm budget.
//!
//! False-alarm budget (the stripe check excepted: its thresholds are significances calibrated on
//! 32 500 clean noise images, none of which reached the WARN level): every statistical decision is a one-sided test of "past the threshold by
//! more than z standard errors". The night's budget `false_alarm_per_night` (default 1 %) is
//! shared evenly over all the tests made (each check, plus one per snapshot for each per-snapshot
//! check): z is the normal quantile of budget / tests (2-D offsets
//! use the radius a 2-D Gaussian exceeds as rarely), never below `significance_sigma`. Gross
//! faults are far past their FAIL thresholds, so the stricter z costs them nothing.

use super::config::Thresholds;
use super::{Check, QaReport, Verdict};

/// The number of standard errors each test needs, from the night's false-alarm budget.
#[derive(Debug, Clone, Copy)]
pub struct Significance {
    /// One-sided 1-D tests.
    pub z: f64,
    /// 2-D offsets (radius in standard errors).
    pub z2: f64,
    pub n_tests: usize,
}

impl Significance {
    pub fn new(th: &Thresholds, n_tests: usize) -> Significance {
        let p = th.false_alarm_per_night / n_tests.max(1) as f64;
        let z = crate::stats::normal_upper_quantile(p).max(th.significance_sigma);
        let z2 = (-2.0 * p.ln())
            .sqrt()
            .max(crate::stats::two_d_equivalent(th.significance_sigma));
        Significance { z, z2, n_tests }
    }
}

/// How many statistical tests a report makes (for the budget).
fn n_tests(r: &QaReport) -> usize {
    // Two per-snapshot checks, each judged against the others and against the reference.
    let per_snapshot = r.snapshots.as_ref().map_or(0, |s| 4 * s.snapshots.len());
    9 + per_snapshot
}

/// The significance each test of `r` needs under `th`.
pub fn significance_for(r: &QaReport, th: &Thresholds) -> Significance {
    Significance::new(th, n_tests(r))
}

/// The verdict's checks for a measured report under `th`.
pub fn checks(r: &QaReport, th: &Thresholds) -> Vec<Check> {
    let sig = significance_for(r, th);
    vec![
        noise_check(r, th, &sig),
        noise_history_check(r, th, &sig),
        structure_check(r, th),
        dynamic_range_check(r, th, &sig),
        astrometry_check(r, th, &sig),
        completeness_check(r, th, &sig),
        flux_scale_check(r, th, &sig),
        snapshot_astrometry_check(r, th, &sig),
        snapshot_flux_check(r, th, &sig),
        artefacts_check(r, th),
        selection_check(r, th),
    ]
}

/// The worst status of the checks that were made (PASS when there are none).
pub fn verdict_of(checks: &[Check]) -> Verdict {
    checks
        .iter()
        .filter(|c| c.checked)
        .map(|c| c.status)
        .max()
        .unwrap_or(Verdict::Pass)
}

/// WARN/FAIL when `value` is past a threshold and differs from what a clean night gives
/// (`null`: 1 for a ratio, 0 for a deviation) by more than `z` standard errors `err`: the second
/// condition keeps the false-alarm rate within the budget, the first makes small but significant
/// deviations harmless.
fn above(value: f64, warn: f64, fail: f64, err: f64, z: f64, null: f64) -> Verdict {
    let significant = value.is_finite() && value - null > z * err.max(0.0);
    if significant && value > fail {
        Verdict::Fail
    } else if significant && value > warn {
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}

/// WARN/FAIL when `value` falls short of a threshold by more than `z` standard errors `err`.
fn below(value: f64, warn: f64, fail: f64, err: f64, z: f64) -> Verdict {
    let past = |t: f64| value.is_finite() && t - value > z * err.max(0.0);
    if past(fail) {
        Verdict::Fail
    } else if past(warn) {
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}

fn check(
    name: &str,
    status: Verdict,
    value: Option<f64>,
    expected: String,
    message: String,
) -> Check {
    Check {
        name: name.into(),
        status,
        checked: true,
        value,
        expected,
        message,
        blame: Vec::new(),
    }
}

fn not_checked(name: &str, expected: String, message: String) -> Check {
    Check {
        name: name.into(),
        status: Verdict::Pass,
        checked: false,
        value: None,
        expected,
        message,
        blame: Vec::new(),
    }
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn noise_check(r: &QaReport, th: &Thresholds, sig: &Significance) -> Check {
    let expected = format!(
        "measured noise ≤ {}× the expected-noise map (FAIL at {}×)",
        th.noise_warn_ratio, th.noise_fail_ratio
    );
    let (Some(eff), Some(e)) = (r.noise.noise_efficiency, r.noise.median_expected_jy) else {
        return not_checked(
            "noise",
            expected,
            "no expected-noise map: measured noise not compared with what the inputs predict"
                .into(),
        );
    };
    let ratio = 1.0 / eff;
    let err = r.noise.noise_efficiency_err.unwrap_or(0.0) / (eff * eff);
    let status = above(
        ratio,
        th.noise_warn_ratio,
        th.noise_fail_ratio,
        err,
        sig.z,
        1.0,
    );
    check(
        "noise",
        status,
        Some(ratio),
        expected,
        format!(
            "measured {:.3e} Jy/beam = {ratio:.2} ± {err:.2} × the expected {e:.3e} Jy/beam \
             (median over the covered pixels); judged at {:.1} standard errors",
            r.noise.median_rms_jy, sig.z
        ),
    )
}

fn noise_history_check(r: &QaReport, th: &Thresholds, sig: &Significance) -> Check {
    let expected = format!(
        "noise ≤ {}× the median of the same tier's recent nights (FAIL at {}×)",
        th.noise_warn_ratio, th.noise_fail_ratio
    );
    let Some(h) = &r.noise_history else {
        return not_checked(
            "noise_history",
            expected,
            "fewer than 5 earlier mosaics of this tier in the database: no history to compare"
                .into(),
        );
    };
    // The history's spread is the error: a night is judged against how much nights vary.
    let err = if h.median_jy > 0.0 {
        h.scatter_jy / h.median_jy
    } else {
        0.0
    };
    let status = above(
        h.ratio,
        th.noise_warn_ratio,
        th.noise_fail_ratio,
        err,
        sig.z,
        1.0,
    );
    check(
        "noise_history",
        status,
        Some(h.ratio),
        expected,
        format!(
            "measured {:.3e} Jy/beam = {:.2} × the median {:.3e} Jy/beam of the last {} mosaics of \
             tier {} (nights scatter by {:.0} %)",
            r.noise.median_rms_jy,
            h.ratio,
            h.median_jy,
            h.n,
            r.tier,
            100.0 * err
        ),
    )
}

fn structure_check(r: &QaReport, th: &Thresholds) -> Check {
    let expected = format!(
        "each input's whitened noise power isotropic: no direction {} standard deviations above \
         the others (FAIL at {} with {}× their power)",
        th.noise_structure_warn,
        th.noise_structure_fail,
        super::structure::FAIL_EXCESS
    );
    let measured: Vec<_> = r
        .noise_structure
        .iter()
        .filter_map(|s| s.report.as_ref().map(|rep| (s, rep)))
        .collect();
    if measured.is_empty() {
        return not_checked(
            "noise_structure",
            expected,
            "no input images recorded with the mosaic (or none large enough): stripes in the \
             inputs not looked for"
                .into(),
        );
    }
    // Calibrated on 32 500 clean beam-correlated noise images (largest significance 7.3): a
    // significance of `noise_structure_warn` is a WARN, of `noise_structure_fail` with at least
    // `structure::FAIL_EXCESS` times the power of the other directions a FAIL.
    let mut judged: Vec<(Verdict, f64, String, String)> = measured
        .iter()
        .map(|(s, rep)| {
            let status = if rep.significance >= th.noise_structure_fail
                && rep.excess >= super::structure::FAIL_EXCESS
            {
                Verdict::Fail
            } else if rep.significance >= th.noise_structure_warn {
                Verdict::Warn
            } else {
                Verdict::Pass
            };
            let name = file_name(&s.path);
            let what = format!(
                "{name}: {:.1}× along {:.0}° ({:.0} standard deviations, {:.0} % of the noise power)",
                rep.excess,
                rep.stripe_angle_deg,
                rep.significance,
                100.0 * rep.stripe_power_fraction
            );
            (status, rep.significance, name, what)
        })
        .collect();
    judged.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
    let status = judged[0].0;
    let bad: Vec<&(Verdict, f64, String, String)> =
        judged.iter().filter(|j| j.0 != Verdict::Pass).collect();
    let mut c = check(
        "noise_structure",
        status,
        Some(judged[0].1),
        expected,
        if bad.is_empty() {
            format!(
                "{} inputs, largest directional excess {}",
                judged.len(),
                judged[0].3
            )
        } else {
            format!(
                "stripes in {} of {} inputs: {}",
                bad.len(),
                judged.len(),
                bad.iter()
                    .take(5)
                    .map(|j| j.3.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
    );
    c.blame = bad.iter().map(|j| j.2.clone()).collect();
    c
}

fn dynamic_range_check(r: &QaReport, th: &Thresholds, sig: &Significance) -> Check {
    let d = &r.dynamic_range_noise;
    let expected = format!(
        "noise {}–{} beams around sources above {} sigma ≤ {}× the expected noise there \
         (FAIL at {}×)",
        d.inner_beams,
        d.outer_beams,
        d.min_snr,
        th.dynamic_range_warn_ratio,
        th.dynamic_range_fail_ratio
    );
    let classic = format!(
        "peak/noise {:.0} (peak {:.4} Jy/beam)",
        r.dynamic_range, r.peak_jy
    );
    if d.sources.is_empty() {
        return check(
            "dynamic_range",
            Verdict::Pass,
            None,
            expected,
            format!(
                "no source above {} sigma, so the image cannot be dynamic-range limited; {classic}",
                d.min_snr
            ),
        );
    }
    let judged: Vec<(Verdict, &super::AroundSource)> = d
        .sources
        .iter()
        .map(|s| {
            (
                above(
                    s.noise_ratio,
                    th.dynamic_range_warn_ratio,
                    th.dynamic_range_fail_ratio,
                    s.err,
                    sig.z,
                    1.0,
                ),
                s,
            )
        })
        .collect();
    let (status, worst) = judged
        .iter()
        .max_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.noise_ratio.total_cmp(&b.1.noise_ratio))
        })
        .copied()
        .expect("at least one source");
    check(
        "dynamic_range",
        status,
        Some(worst.noise_ratio),
        expected,
        format!(
            "around the source at RA {:.4}, Dec {:.4} ({:.3} Jy/beam, S/N {:.0}) the noise is \
             {:.2} ± {:.2} × expected over {} pixels ({} sources checked); {classic}",
            worst.ra_deg,
            worst.dec_deg,
            worst.peak_jy,
            worst.snr,
            worst.noise_ratio,
            worst.err,
            worst.n_pixels,
            d.sources.len()
        ),
    )
}

fn astrometry_check(r: &QaReport, th: &Thresholds, sig: &Significance) -> Check {
    let expected = format!(
        "bulk offset against the reference ≤ {} beam (FAIL above {} beam) of {:.1}\"",
        th.astrometry_warn_beams, th.astrometry_fail_beams, r.beam.bmaj_arcsec
    );
    let Some(a) = &r.astrometry else {
        return not_checked(
            "astrometry",
            expected,
            "no reference catalogue: absolute astrometry not checked (name one with --reference \
             or `reference` in [qa] of contimg.toml; each snapshot is still checked against the \
             others)"
                .into(),
        );
    };
    if a.n_matches < th.min_matches {
        return not_checked(
            "astrometry",
            expected,
            format!(
                "{} match(es) with {} (need {}): offset not measured; see completeness",
                a.n_matches,
                a.reference.display(),
                th.min_matches
            ),
        );
    }
    let off = a.offset_beams.unwrap_or(f64::NAN);
    let z = a.offset_significance.unwrap_or(f64::NAN);
    let significant = z.is_nan() || z > sig.z2;
    let status = if off.is_nan() || (off > th.astrometry_fail_beams && significant) {
        Verdict::Fail
    } else if off > th.astrometry_warn_beams && significant {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    let bulk = a.bulk.map_or_else(
        || "no bulk offset found by votes".to_string(),
        |b| {
            format!(
                "bulk offset by votes {:+.1}\", {:+.1}\" ({} votes, {:.1} by chance)",
                b.dra_arcsec, b.ddec_arcsec, b.votes, b.chance_votes
            )
        },
    );
    check(
        "astrometry",
        status,
        Some(off),
        expected,
        format!(
            "median offset {off:.3} beam = {:.2}\" (dRA·cos(dec) {:+.2}\" ± {:.2}\", dDec {:+.2}\" \
             ± {:.2}\"; {z:.1} standard errors, judged at {:.1}) over {} matches with {}; {bulk}; \
             robust rms {:.2}\"",
            a.offset_arcsec.unwrap_or(f64::NAN),
            a.median_dra_arcsec.unwrap_or(f64::NAN),
            a.median_dra_err_arcsec.unwrap_or(f64::NAN),
            a.median_ddec_arcsec.unwrap_or(f64::NAN),
            a.median_ddec_err_arcsec.unwrap_or(f64::NAN),
            sig.z2,
            a.n_matches,
            a.reference.display(),
            a.robust_rms_arcsec.unwrap_or(f64::NAN),
        ),
    )
}

fn completeness_check(r: &QaReport, th: &Thresholds, sig: &Significance) -> Check {
    let expected = format!(
        "≥ {:.0} % of the isolated reference sources predicted at S/N ≥ {} matched (FAIL below \
         {:.0} %)",
        100.0 * th.completeness_warn,
        super::COMPLETENESS_SNR,
        100.0 * th.completeness_fail
    );
    let Some(a) = &r.astrometry else {
        return not_checked("completeness", expected, "no reference catalogue".into());
    };
    let (Some(n), Some(k)) = (a.n_predicted, a.n_predicted_matched) else {
        return not_checked(
            "completeness",
            expected,
            "the reference has no flux column: which of its sources the mosaic should detect is \
             unknown"
                .into(),
        );
    };
    if n < 10 {
        return not_checked(
            "completeness",
            expected,
            format!(
                "only {n} reference source(s) predicted above S/N {}: too few to judge",
                super::COMPLETENESS_SNR
            ),
        );
    }
    let f = k as f64 / n as f64;
    let err = (f.max(1.0 / n as f64) * (1.0 - f).max(1.0 / n as f64) / n as f64).sqrt();
    let status = below(f, th.completeness_warn, th.completeness_fail, err, sig.z);
    check(
        "completeness",
        status,
        Some(f),
        expected,
        format!(
            "{k} of {n} reference sources predicted above S/N {} (scaled by the flux scale {:.2}) \
             were matched: {:.0} ± {:.0} %",
            super::COMPLETENESS_SNR,
            a.flux_scale_used.unwrap_or(f64::NAN),
            100.0 * f,
            100.0 * err
        ),
    )
}

fn flux_scale_check(r: &QaReport, th: &Thresholds, sig: &Significance) -> Check {
    let mut expected = format!(
        "mosaic / reference flux within ±{:.0} % of the spectral expectation (FAIL beyond ±{:.0} %)",
        100.0 * th.flux_scale_warn,
        100.0 * th.flux_scale_fail
    );
    let Some(a) = &r.astrometry else {
        return not_checked("flux_scale", expected, "no reference catalogue".into());
    };
    let (Some(scale), Some(err), Some(exp)) =
        (a.flux_scale, a.flux_scale_err, a.flux_scale_expected)
    else {
        return not_checked(
            "flux_scale",
            expected,
            format!(
                "{} compact matched source(s) above S/N 10 with a reference flux: too few (need 5) \
                 or the reference has no flux",
                a.n_flux
            ),
        );
    };
    let allowance = a.flux_scale_allowance.unwrap_or(0.0);
    expected.push_str(&format!(
        "; expected ratio {exp:.3}, widened by {:.0} % for spectral-index scatter",
        100.0 * (allowance.exp() - 1.0)
    ));
    // Judged on |ln(scale)| beyond the allowance, against ln(1 + threshold).
    let dev = scale.ln().abs() - allowance;
    let mut status = above(
        dev,
        (1.0 + th.flux_scale_warn).ln(),
        (1.0 + th.flux_scale_fail).ln(),
        err,
        sig.z,
        0.0,
    );
    // Across more than a factor 1.5 in frequency the comparison rests on an assumed spectral
    // index: it can warn, never fail a night.
    let across = match (a.mosaic_frequency_hz, a.reference_frequency_hz) {
        (Some(f), Some(fr)) if f > 0.0 && fr > 0.0 => (f / fr).ln().abs() > 1.5f64.ln(),
        _ => false,
    };
    if across && status == Verdict::Fail {
        status = Verdict::Warn;
        expected.push_str(
            "; the reference is at another frequency, so a discrepancy can only WARN (name a \
             catalogue at the mosaic's frequency to judge the flux scale for certain)",
        );
    }
    check(
        "flux_scale",
        status,
        Some(scale),
        expected,
        format!(
            "median integrated flux / reference = {:.3} over {} compact sources; / expected \
             {exp:.3} = {scale:.3} (± {:.1} %); reference at {}, mosaic at {}",
            scale * exp,
            a.n_flux,
            100.0 * err,
            a.reference_frequency_hz.map_or_else(
                || "an unknown frequency (taken as the mosaic's)".into(),
                |f| format!("{:.4} GHz", f / 1e9)
            ),
            a.mosaic_frequency_hz.map_or_else(
                || "an unknown frequency".into(),
                |f| format!("{:.4} GHz", f / 1e9)
            ),
        ),
    )
}

fn snapshot_astrometry_check(r: &QaReport, th: &Thresholds, sig: &Significance) -> Check {
    let expected = format!(
        "each snapshot within {} beam of the others where they overlap (FAIL beyond {} beam)",
        th.snapshot_offset_warn_beams, th.snapshot_offset_fail_beams
    );
    let Some(s) = &r.snapshots else {
        return not_checked(
            "snapshot_astrometry",
            expected,
            "no record of the inputs beside the mosaic (built by an older contimg, or not a \
             build's product): snapshots not compared"
                .into(),
        );
    };
    // Each snapshot against the others (the overlap solution) and against the reference (its
    // own sources, relative to the night's bulk offset); the worse of the two counts.
    let judge = |off: f64, err: f64| {
        let z = if err > 0.0 { off / err } else { f64::INFINITY };
        if z <= sig.z2 {
            Verdict::Pass
        } else if off > th.snapshot_offset_fail_beams {
            Verdict::Fail
        } else if off > th.snapshot_offset_warn_beams {
            Verdict::Warn
        } else {
            Verdict::Pass
        }
    };
    // One comparison's judgement: (status, offset, what it says).
    let judged_offset = |(off, err): (Option<f64>, Option<f64>),
                         (dra, ddec): (Option<f64>, Option<f64>),
                         (from, count): (&str, String)| {
        off.zip(err).map(|(off, err)| {
            (
                judge(off, err),
                off,
                format!(
                    "{off:.2} ± {err:.2} beam from {from} (dRA·cos(dec) {:+.1}\", dDec {:+.1}\", \
                     {count})",
                    dra.unwrap_or(f64::NAN),
                    ddec.unwrap_or(f64::NAN)
                ),
            )
        })
    };
    let judged: Vec<(Verdict, f64, String)> = s
        .snapshots
        .iter()
        .filter_map(|i| {
            let overlap = judged_offset(
                (i.offset_beams, i.offset_err_beams),
                (i.offset_ra_arcsec, i.offset_dec_arcsec),
                ("the others", format!("{} pairs", i.n_pairs)),
            );
            let against_ref = judged_offset(
                (i.ref_offset_beams, i.ref_offset_err_beams),
                (i.ref_offset_ra_arcsec, i.ref_offset_dec_arcsec),
                ("the reference", format!("{} sources", i.ref_n)),
            );
            named_worse(&i.path, overlap, against_ref, |v| v)
        })
        .collect();
    per_snapshot("snapshot_astrometry", judged, expected, s)
}

fn snapshot_flux_check(r: &QaReport, th: &Thresholds, sig: &Significance) -> Check {
    let expected = format!(
        "each snapshot's flux scale within ±{:.0} % of the others' (FAIL beyond ±{:.0} %)",
        100.0 * th.snapshot_flux_warn,
        100.0 * th.snapshot_flux_fail
    );
    let Some(s) = &r.snapshots else {
        return not_checked(
            "snapshot_flux",
            expected,
            "no record of the inputs beside the mosaic: snapshots not compared".into(),
        );
    };
    let judge = |g: f64, err: f64| {
        above(
            g.ln().abs(),
            (1.0 + th.snapshot_flux_warn).ln(),
            (1.0 + th.snapshot_flux_fail).ln(),
            err,
            sig.z,
            0.0,
        )
    };
    let judged: Vec<(Verdict, f64, String)> = s
        .snapshots
        .iter()
        .filter_map(|i| {
            let judged_gain = |g: Option<f64>, err: Option<f64>, against: String| {
                g.zip(err).map(|(g, err)| {
                    (
                        judge(g, err),
                        g,
                        format!("×{g:.2} ± {:.0} % against {against}", 100.0 * err),
                    )
                })
            };
            let overlap = judged_gain(
                i.gain,
                i.gain_err,
                format!("the others ({} pairs)", i.n_pairs),
            );
            let against_ref = judged_gain(
                i.ref_gain,
                i.ref_gain_err,
                format!("the reference ({} sources)", i.ref_n),
            );
            named_worse(&i.path, overlap, against_ref, |g| g.ln().abs())
        })
        .collect();
    per_snapshot("snapshot_flux", judged, expected, s)
}

/// One snapshot's judgement: the worse of its comparison with the others and with the reference
/// (by status, then by `dev` of the value), with its file name in front.
fn named_worse(
    path: &std::path::Path,
    overlap: Option<(Verdict, f64, String)>,
    against_ref: Option<(Verdict, f64, String)>,
    dev: impl Fn(f64) -> f64,
) -> Option<(Verdict, f64, String)> {
    let worst = match (overlap, against_ref) {
        (Some(a), Some(b)) => {
            if (b.0, dev(b.1)) > (a.0, dev(a.1)) {
                b
            } else {
                a
            }
        }
        (a, b) => a.or(b)?,
    };
    Some((
        worst.0,
        worst.1,
        format!("{}: {}", file_name(path), worst.2),
    ))
}

/// One check over per-snapshot verdicts: the worst decides, the failing ones are named.
fn per_snapshot(
    name: &str,
    mut judged: Vec<(Verdict, f64, String)>,
    expected: String,
    s: &super::snapshots::SnapshotsReport,
) -> Check {
    if judged.is_empty() {
        return not_checked(
            name,
            expected,
            format!(
                "{} snapshot(s), none sharing enough sources with another to be compared",
                s.snapshots.len()
            ),
        );
    }
    // The snapshots that could not be compared are named: a verdict never passes them in silence.
    let compared: std::collections::HashSet<&str> = judged
        .iter()
        .filter_map(|j| j.2.split(": ").next())
        .collect();
    let uncompared: Vec<String> = s
        .snapshots
        .iter()
        .map(|i| file_name(&i.path))
        .filter(|n| !compared.contains(n.as_str()))
        .collect();
    let uncompared = if uncompared.is_empty() {
        String::new()
    } else {
        format!(
            "; not compared (too little overlap with the others and no reference source): {}",
            uncompared.join(", ")
        )
    };
    let dev = |v: f64| {
        if name == "snapshot_flux" {
            v.ln().abs()
        } else {
            v
        }
    };
    judged.sort_by(|a, b| b.0.cmp(&a.0).then(dev(b.1).total_cmp(&dev(a.1))));
    let bad: Vec<&(Verdict, f64, String)> =
        judged.iter().filter(|j| j.0 != Verdict::Pass).collect();
    let n = judged.len();
    let mut c = check(
        name,
        judged[0].0,
        Some(judged[0].1),
        expected,
        if bad.is_empty() {
            format!(
                "{n} of {} snapshots compared; worst {}{uncompared}",
                s.snapshots.len(),
                judged[0].2
            )
        } else {
            format!(
                "{} of {n} snapshots off: {}{uncompared}",
                bad.len(),
                bad.iter()
                    .take(5)
                    .map(|j| j.2.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
    );
    c.blame = bad
        .iter()
        .map(|j| j.2.split(": ").next().unwrap_or("").to_string())
        .collect();
    c
}

fn artefacts_check(r: &QaReport, th: &Thresholds) -> Check {
    let named = [
        ("negative_bowls", &r.artefacts.negative_bowls),
        ("negative_pixels", &r.artefacts.negative_pixels),
        ("edge_noise", &r.artefacts.edge_noise),
        ("striping", &r.artefacts.striping),
    ];
    let worst = named
        .iter()
        .max_by(|a, b| a.1.score.total_cmp(&b.1.score))
        .map(|(n, c)| format!("{n} {:.2}: {}", c.score, c.note))
        .unwrap_or_default();
    check(
        "artefacts",
        if r.artefacts.score > th.artefact_warn {
            Verdict::Warn
        } else {
            Verdict::Pass
        },
        Some(r.artefacts.score),
        format!("artefact score ≤ {}", th.artefact_warn),
        format!(
            "artefact score {:.2} (worst component {worst})",
            r.artefacts.score
        ),
    )
}

/// The most left-out images a `selection` WARN names in its blame.
const SELECTION_BLAME_MAX: usize = 10;

fn selection_check(r: &QaReport, th: &Thresholds) -> Check {
    use crate::manifest::left_out_counts;
    let expected = format!(
        "at most {:.0} % of the night's images left out by its plan (for noise, band, resolution, \
         no frequency, or as duplicates)",
        100.0 * th.max_left_out_share
    );
    let Some(sel) = &r.selection else {
        return not_checked(
            "selection",
            expected,
            "the mosaic's plan is not in the database: which images the night left out is unknown"
                .into(),
        );
    };
    let Some(left_out) = &sel.left_out else {
        return not_checked(
            "selection",
            expected,
            format!(
                "plan {} was recorded before contimg kept the images a plan leaves out; plan the \
                 window again with --replace to know",
                sel.plan_id
            ),
        );
    };
    let lost: Vec<&crate::manifest::LeftOut> = left_out
        .iter()
        .filter(|l| l.reason_kind.is_loss())
        .collect();
    let total = sel.n_chosen + lost.len();
    let share = if total == 0 {
        0.0
    } else {
        lost.len() as f64 / total as f64
    };
    let status = if share > th.max_left_out_share {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    let counts = left_out_counts(left_out);
    let per_kind = |loss: bool| {
        counts
            .iter()
            .filter(|(k, _)| k.is_loss() == loss)
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut message = format!(
        "{} of the night's {total} images left out by plan {} ({:.0} %)",
        lost.len(),
        sel.plan_id,
        100.0 * share
    );
    let lost_kinds = per_kind(true);
    if !lost_kinds.is_empty() {
        message.push_str(&format!(": {lost_kinds}"));
    }
    let other = per_kind(false);
    if !other.is_empty() {
        message.push_str(&format!(
            "; also not taken, not counted: {other} (past the tier's max_images, outside the sky \
             box asked for)"
        ));
    }
    if status != Verdict::Pass {
        let shown: Vec<String> = lost
            .iter()
            .take(3)
            .map(|l| format!("{}: {}", file_name(&l.path), l.reason))
            .collect();
        message.push_str(&format!("; e.g. {}", shown.join("; ")));
    }
    let mut c = check("selection", status, Some(share), expected, message);
    if status != Verdict::Pass {
        c.blame = lost
            .iter()
            .take(SELECTION_BLAME_MAX)
            .map(|l| l.path.display().to_string())
            .collect();
    }
    c
}
