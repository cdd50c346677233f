//! `[qa]` in `contimg.toml`: detection and matching settings, and per-tier verdict thresholds.
//!
//! Invariants: every threshold a verdict uses comes from [`QaConfig::thresholds`], which overlays
//! a tier's `[qa.tiers.NAME]` table on the built-in values for that tier (a tier without built-in
//! QA values starts from the science values); `QaConfig::default()` spells the built-ins out.
//! Astrometric thresholds are fractions of the mosaic's restoring beam (FWHM, major axis), never
//! fixed arcseconds; a check leaves PASS only when the measurement is past its threshold by more
//! than `significance_sigma` standard errors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::catalog::CatalogSettings;

/// The `[qa]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QaConfig {
    /// Reference catalogue for every tier that does not name its own (empty: none).
    pub reference: PathBuf,
    /// Islands are pixels above this many local sigma (seed and flood threshold).
    pub detection_sigma: f64,
    /// Background/rms box size in restoring-beam widths (BANE-like); the grid step is a third.
    pub box_beams: f64,
    /// Cross-match radius in units of the combined resolution √(θ_mosaic² + θ_reference²)
    /// (FWHM, major axes), widened in quadrature by 3× the reference's position error.
    pub match_radius_beams: f64,
    /// A check leaves PASS only when its value is past the threshold by more than this many
    /// standard errors.
    pub significance_sigma: f64,
    /// The chance that a clean night raises any WARN or FAIL, shared over all statistical tests.
    pub false_alarm_per_night: f64,
    /// Spectral index α (S ∝ ν^α) assumed to compare fluxes at the reference's frequency, and
    /// the scatter of real sources' indices about it (widens the flux-scale tolerance).
    pub spectral_index: f64,
    pub spectral_index_scatter: f64,
    /// Sources brighter than this many sigma are used to look for negative bowls.
    pub bright_sigma: f64,
    /// Longest side of the quicklook PNG in pixels.
    pub quicklook_max_px: usize,
    /// The `selection` check WARNs when the plan left out more than this share of the window's
    /// images (left out / (taken + left out), not counting images past the tier's count or
    /// outside the requested sky box).
    pub max_left_out_share: f64,
    /// Per-tier thresholds and reference catalogues.
    pub tiers: BTreeMap<String, QaTierConfig>,
    /// `[qa.catalogues."FILE NAME"]`: columns, resolution and position error of a reference
    /// catalogue, by its file name.
    pub catalogues: BTreeMap<String, CatalogSettings>,
}

/// `[qa.tiers.NAME]`: every field optional; a missing one takes the built-in value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QaTierConfig {
    pub reference: Option<PathBuf>,
    pub astrometry_warn_beams: Option<f64>,
    pub astrometry_fail_beams: Option<f64>,
    pub noise_warn_ratio: Option<f64>,
    pub noise_fail_ratio: Option<f64>,
    pub noise_structure_warn: Option<f64>,
    pub noise_structure_fail: Option<f64>,
    pub dynamic_range_warn_ratio: Option<f64>,
    pub dynamic_range_fail_ratio: Option<f64>,
    pub flux_scale_warn: Option<f64>,
    pub flux_scale_fail: Option<f64>,
    pub completeness_warn: Option<f64>,
    pub completeness_fail: Option<f64>,
    pub snapshot_offset_warn_beams: Option<f64>,
    pub snapshot_offset_fail_beams: Option<f64>,
    pub snapshot_flux_warn: Option<f64>,
    pub snapshot_flux_fail: Option<f64>,
    pub artefact_warn: Option<f64>,
    pub min_matches: Option<usize>,
    /// Settings that workspaces made by older versions wrote out and that no check uses any
    /// more: read so that such a workspace still opens, never used (see
    /// [`QaConfig::deprecations`]), and not written again.
    #[serde(default, skip_serializing)]
    pub astrometry_warn_arcsec: Option<f64>,
    #[serde(default, skip_serializing)]
    pub astrometry_fail_arcsec: Option<f64>,
    #[serde(default, skip_serializing)]
    pub dynamic_range_fail: Option<f64>,
    #[serde(default, skip_serializing)]
    pub noise_efficiency_warn: Option<f64>,
}

/// The thresholds in force for one tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Reference catalogue named for this tier (or the `[qa]` default), if any.
    pub reference: Option<PathBuf>,
    /// WARN / FAIL when the bulk astrometric offset against the reference exceeds this fraction
    /// of the mosaic's beam (FWHM), significantly.
    pub astrometry_warn_beams: f64,
    pub astrometry_fail_beams: f64,
    /// The smallest number of standard errors past a threshold that makes a WARN/FAIL; the
    /// false-alarm budget may ask for more (see [`super::verdict`]).
    pub significance_sigma: f64,
    /// The chance that a clean night raises any WARN or FAIL, shared over every statistical test.
    pub false_alarm_per_night: f64,
    /// WARN / FAIL when the measured noise exceeds the build's expected noise by these factors.
    pub noise_warn_ratio: f64,
    pub noise_fail_ratio: f64,
    /// WARN / FAIL when an input's whitened noise power along one direction stands this many
    /// standard deviations above the other directions' (stripes; FAIL also needs 3× the power).
    pub noise_structure_warn: f64,
    pub noise_structure_fail: f64,
    /// WARN / FAIL when the noise around the brightest sources exceeds the expected noise there
    /// by these factors (the image is dynamic-range limited).
    pub dynamic_range_warn_ratio: f64,
    pub dynamic_range_fail_ratio: f64,
    /// WARN / FAIL when the flux scale against the reference is off by more than these fractions
    /// (beyond what spectral indices allow).
    pub flux_scale_warn: f64,
    pub flux_scale_fail: f64,
    /// WARN / FAIL when fewer than these fractions of the reference sources the mosaic should
    /// detect were matched.
    pub completeness_warn: f64,
    pub completeness_fail: f64,
    /// WARN / FAIL when one snapshot is offset from the others by this fraction of the beam.
    pub snapshot_offset_warn_beams: f64,
    pub snapshot_offset_fail_beams: f64,
    /// WARN / FAIL when one snapshot's flux scale differs from the others' by this fraction.
    pub snapshot_flux_warn: f64,
    pub snapshot_flux_fail: f64,
    /// WARN when the artefact score exceeds this.
    pub artefact_warn: f64,
    /// Fewer matches than this is no astrometry check.
    pub min_matches: usize,
    /// Assumed spectral index (S ∝ ν^α) and its scatter, to compare fluxes across frequencies.
    pub spectral_index: f64,
    pub spectral_index_scatter: f64,
    /// WARN when the plan left out more than this share of the night's images (`[qa]
    /// max_left_out_share`).
    #[serde(default = "default_max_left_out_share")]
    pub max_left_out_share: f64,
}

/// `[qa] max_left_out_share` unless set: a night that lost more than a quarter of its images.
pub const DEFAULT_MAX_LEFT_OUT_SHARE: f64 = 0.25;

fn default_max_left_out_share() -> f64 {
    DEFAULT_MAX_LEFT_OUT_SHARE
}

#[derive(Debug, thiserror::Error)]
pub enum QaConfigError {
    #[error("[qa] {key} = {value} is out of range: {why}")]
    Range {
        key: String,
        value: String,
        why: String,
    },
}

fn builtin_tier(name: &str) -> QaTierConfig {
    let ql = name == "quicklook";
    QaTierConfig {
        reference: None,
        // A shift of f beams lowers a Gaussian's peak by 1 − exp(−4 ln2 f²): 0.7 % at 0.05,
        // 2.7 % at 0.1, 10 % at 0.2 (README, "QA verdicts").
        astrometry_warn_beams: Some(if ql { 0.1 } else { 0.05 }),
        astrometry_fail_beams: Some(if ql { 0.2 } else { 0.1 }),
        noise_warn_ratio: Some(if ql { 1.5 } else { 1.3 }),
        noise_fail_ratio: Some(2.0),
        noise_structure_warn: Some(8.0),
        noise_structure_fail: Some(12.0),
        dynamic_range_warn_ratio: Some(if ql { 1.5 } else { 1.25 }),
        dynamic_range_fail_ratio: Some(if ql { 2.0 } else { 1.5 }),
        flux_scale_warn: Some(if ql { 0.2 } else { 0.15 }),
        flux_scale_fail: Some(0.3),
        completeness_warn: Some(0.7),
        completeness_fail: Some(0.4),
        snapshot_offset_warn_beams: Some(if ql { 0.4 } else { 0.3 }),
        snapshot_offset_fail_beams: Some(if ql { 0.7 } else { 0.5 }),
        snapshot_flux_warn: Some(if ql { 0.15 } else { 0.1 }),
        snapshot_flux_fail: Some(0.2),
        artefact_warn: Some(0.5),
        min_matches: Some(5),
        ..QaTierConfig::default()
    }
}

/// Tier names with built-in QA thresholds.
pub const BUILTIN_TIERS: &[&str] = &["deep", "quicklook", "science"];

impl Default for QaConfig {
    fn default() -> Self {
        QaConfig {
            reference: PathBuf::new(),
            detection_sigma: 5.0,
            box_beams: 30.0,
            match_radius_beams: 0.5,
            significance_sigma: 3.0,
            false_alarm_per_night: 0.01,
            spectral_index: -0.7,
            spectral_index_scatter: 0.2,
            bright_sigma: 30.0,
            quicklook_max_px: 1600,
            max_left_out_share: DEFAULT_MAX_LEFT_OUT_SHARE,
            tiers: BUILTIN_TIERS
                .iter()
                .map(|t| (t.to_string(), builtin_tier(t)))
                .collect(),
            catalogues: BTreeMap::new(),
        }
    }
}

impl QaConfig {
    /// One warning per setting that is read but no longer used (settings older versions wrote
    /// out), saying what replaced it.
    pub fn deprecations(&self) -> Vec<String> {
        let mut out = vec![];
        for (tier, t) in &self.tiers {
            let th = self.thresholds(tier);
            for (key, value, instead) in [
                (
                    "astrometry_warn_arcsec",
                    t.astrometry_warn_arcsec,
                    format!(
                        "astrometry thresholds are fractions of the mosaic's beam: set \
                         astrometry_warn_beams (in force: {})",
                        th.astrometry_warn_beams
                    ),
                ),
                (
                    "astrometry_fail_arcsec",
                    t.astrometry_fail_arcsec,
                    format!(
                        "astrometry thresholds are fractions of the mosaic's beam: set \
                         astrometry_fail_beams (in force: {})",
                        th.astrometry_fail_beams
                    ),
                ),
                (
                    "dynamic_range_fail",
                    t.dynamic_range_fail,
                    format!(
                        "peak/noise measures the sky, not the image; dynamic range is now judged \
                         by the noise around the brightest sources against the expected noise: \
                         set dynamic_range_warn_ratio / dynamic_range_fail_ratio (in force: {} / {})",
                        th.dynamic_range_warn_ratio, th.dynamic_range_fail_ratio
                    ),
                ),
                (
                    "noise_efficiency_warn",
                    t.noise_efficiency_warn,
                    format!(
                        "noise is judged as measured / expected: set noise_warn_ratio / \
                         noise_fail_ratio (in force: {} / {})",
                        th.noise_warn_ratio, th.noise_fail_ratio
                    ),
                ),
            ] {
                if let Some(v) = value {
                    out.push(format!(
                        "warning: [qa.tiers.{tier}] {key} = {v} is no longer used: {instead}; \
                         delete the line"
                    ));
                }
            }
        }
        out
    }

    /// Checks the values that would make QA meaningless.
    pub fn validate(&self) -> Result<(), QaConfigError> {
        let range = |key: &str, v: f64, ok: bool, why: &str| {
            if ok && v.is_finite() {
                Ok(())
            } else {
                Err(QaConfigError::Range {
                    key: key.into(),
                    value: v.to_string(),
                    why: why.into(),
                })
            }
        };
        range(
            "detection_sigma",
            self.detection_sigma,
            self.detection_sigma >= 2.0,
            "must be at least 2",
        )?;
        range(
            "box_beams",
            self.box_beams,
            self.box_beams >= 3.0,
            "must be at least 3 beams",
        )?;
        range(
            "match_radius_beams",
            self.match_radius_beams,
            self.match_radius_beams > 0.0 && self.match_radius_beams <= 5.0,
            "must be in (0, 5]",
        )?;
        range(
            "significance_sigma",
            self.significance_sigma,
            self.significance_sigma >= 1.0,
            "must be at least 1",
        )?;
        range(
            "false_alarm_per_night",
            self.false_alarm_per_night,
            self.false_alarm_per_night > 0.0 && self.false_alarm_per_night < 0.5,
            "must be in (0, 0.5)",
        )?;
        range(
            "spectral_index_scatter",
            self.spectral_index_scatter,
            self.spectral_index_scatter >= 0.0 && self.spectral_index_scatter <= 2.0,
            "must be in [0, 2]",
        )?;
        range(
            "spectral_index",
            self.spectral_index,
            self.spectral_index.abs() <= 5.0,
            "must be in [-5, 5]",
        )?;
        range(
            "bright_sigma",
            self.bright_sigma,
            self.bright_sigma > self.detection_sigma,
            "must exceed detection_sigma",
        )?;
        range(
            "max_left_out_share",
            self.max_left_out_share,
            (0.0..=1.0).contains(&self.max_left_out_share),
            "must be a share in [0, 1], e.g. 0.25",
        )?;
        if self.quicklook_max_px < 200 {
            return Err(QaConfigError::Range {
                key: "quicklook_max_px".into(),
                value: self.quicklook_max_px.to_string(),
                why: "must be at least 200".into(),
            });
        }
        Ok(())
    }

    /// The thresholds for `tier`: its `[qa.tiers.NAME]` over the built-in values.
    pub fn thresholds(&self, tier: &str) -> Thresholds {
        let base = if BUILTIN_TIERS.contains(&tier) {
            builtin_tier(tier)
        } else {
            builtin_tier("science")
        };
        let o = self.tiers.get(tier).cloned().unwrap_or_default();
        let pick = |a: Option<f64>, b: Option<f64>| a.or(b).unwrap_or(f64::NAN);
        let reference = o
            .reference
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(|| (!self.reference.as_os_str().is_empty()).then(|| self.reference.clone()));
        Thresholds {
            reference,
            astrometry_warn_beams: pick(o.astrometry_warn_beams, base.astrometry_warn_beams),
            astrometry_fail_beams: pick(o.astrometry_fail_beams, base.astrometry_fail_beams),
            significance_sigma: self.significance_sigma,
            false_alarm_per_night: self.false_alarm_per_night,
            noise_warn_ratio: pick(o.noise_warn_ratio, base.noise_warn_ratio),
            noise_fail_ratio: pick(o.noise_fail_ratio, base.noise_fail_ratio),
            noise_structure_warn: pick(o.noise_structure_warn, base.noise_structure_warn),
            noise_structure_fail: pick(o.noise_structure_fail, base.noise_structure_fail),
            dynamic_range_warn_ratio: pick(
                o.dynamic_range_warn_ratio,
                base.dynamic_range_warn_ratio,
            ),
            dynamic_range_fail_ratio: pick(
                o.dynamic_range_fail_ratio,
                base.dynamic_range_fail_ratio,
            ),
            flux_scale_warn: pick(o.flux_scale_warn, base.flux_scale_warn),
            flux_scale_fail: pick(o.flux_scale_fail, base.flux_scale_fail),
            completeness_warn: pick(o.completeness_warn, base.completeness_warn),
            completeness_fail: pick(o.completeness_fail, base.completeness_fail),
            snapshot_offset_warn_beams: pick(
                o.snapshot_offset_warn_beams,
                base.snapshot_offset_warn_beams,
            ),
            snapshot_offset_fail_beams: pick(
                o.snapshot_offset_fail_beams,
                base.snapshot_offset_fail_beams,
            ),
            snapshot_flux_warn: pick(o.snapshot_flux_warn, base.snapshot_flux_warn),
            snapshot_flux_fail: pick(o.snapshot_flux_fail, base.snapshot_flux_fail),
            artefact_warn: pick(o.artefact_warn, base.artefact_warn),
            min_matches: o.min_matches.or(base.min_matches).unwrap_or(5),
            spectral_index: self.spectral_index,
            spectral_index_scatter: self.spectral_index_scatter,
            max_left_out_share: self.max_left_out_share,
        }
    }

    /// The settings for the reference catalogue at `path`: its `[qa.catalogues]` entry (by file
    /// name) overlaid with `over` (the command line's column choices).
    pub fn catalogue(&self, path: &std::path::Path, over: &CatalogSettings) -> CatalogSettings {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.catalogues
            .get(&name)
            .cloned()
            .unwrap_or_default()
            .overlaid(over)
    }

    /// The `[qa]` section of the default `contimg.toml`, every value at its default.
    pub fn default_toml() -> String {
        let d = QaConfig::default();
        let mut out = format!(
            r#"[qa]
# Reference catalogue for tiers that name none; "" = none (the default): absolute astrometry,
# completeness and flux scale are then reported as not checked and do not change the verdict;
# every other check (noise, stripes, dynamic range, each snapshot against the others) still runs.
# Read: CSV with ra/dec[/flux] columns (VizieR's CSV too), a FITS binary table such as the NVSS
# VZ table, or a VOTable (TABLEDATA) as VizieR serves it, e.g. NVSS (VIII/65), FIRST (VIII/92),
# SUMSS (VIII/81), VLSSr (VIII/97), TGSS (J/A+A/598/A78), RACS. `contimg qa --reference FILE`
# overrides both this and a tier's own `reference`.
reference = "{reference}"
# Islands: connected pixels above this many sigma of the local (BANE-like) rms.
detection_sigma = {det}
# Background/rms box size in restoring-beam widths; the grid step is a third of it.
box_beams = {box_beams}
# Cross-match radius in units of the combined resolution sqrt(mosaic beam^2 + catalogue beam^2)
# (FWHM), widened by 3x the catalogue's position error; matches are one-to-one, after the bulk
# offset has been found by votes over all pairs within 5 combined beams.
match_radius_beams = {radius}
# The chance that a clean night raises any WARN or FAIL: shared over every statistical test of a
# night (each check and each per-snapshot test), so each test needs more standard errors the
# more tests there are. `contimg qa --help` and man contimg-qa list the tests.
false_alarm_per_night = {fa}
# A check never leaves PASS with fewer standard errors than this past its threshold.
significance_sigma = {sig}
# Fluxes are compared at the reference's frequency with S ~ nu^alpha; the tolerance widens by
# the scatter of real spectral indices times |ln(nu / nu_reference)|.
spectral_index = {alpha}
spectral_index_scatter = {alpha_sd}
# Sources above this many sigma are checked for negative bowls around them.
bright_sigma = {bright}
# Longest side of the quicklook PNG in pixels.
quicklook_max_px = {ql}
# The selection check WARNs when the night's plan left out more than this share of its images
# (for noise, band, resolution, no frequency or as duplicates; not those past the tier's
# max_images or outside the sky box asked for); it names the images left out.
max_left_out_share = {left_out}

# Verdict thresholds per tier; each check compares the image with what it should be:
# - astrometry_*_beams: bulk offset against the reference, fraction of the beam (FWHM)
# - noise_*_ratio: measured noise / the build's expected-noise map (and / the tier's history)
# - noise_structure_*: stripes, significance (sigma) of the strongest direction in each
#  input's whitened noise power (FAIL also needs 3x the other directions' power)
# - dynamic_range_*_ratio: noise around the brightest sources / expected noise there
# - flux_scale_*: |mosaic / reference - 1| beyond what spectral indices allow
# - completeness_*: matched share of the reference sources the mosaic should detect
# - snapshot_offset_*_beams: one snapshot's offset from the others (and the reference), beams
# - snapshot_flux_*: one snapshot's flux scale against the others' (and the reference's)
# - artefact_warn: artefact score (negative bowls and pixels, edge noise)
# A tier may also name its own catalogue with a line such as: reference = "catalogues/nvss.fits"
#
# A reference catalogue's columns, resolution, position error and frequency, by file name
# (NVSS, FIRST, SUMSS, VLSS, TGSS, RACS and WENSS are recognised by name), e.g. (uncomment):
#   [qa.catalogues."my_survey.csv"]
#   beam_arcsec = 45.0
#   position_error_arcsec = 1.0
#   frequency_hz = 1.4e9
#   flux_column = "S1.4"
"#,
            reference = d.reference.display(),
            det = fmt_f(d.detection_sigma),
            box_beams = fmt_f(d.box_beams),
            radius = fmt_f(d.match_radius_beams),
            fa = fmt_f(d.false_alarm_per_night),
            sig = fmt_f(d.significance_sigma),
            alpha = fmt_f(d.spectral_index),
            alpha_sd = fmt_f(d.spectral_index_scatter),
            bright = fmt_f(d.bright_sigma),
            ql = d.quicklook_max_px,
            left_out = fmt_f(d.max_left_out_share),
        );
        for (name, t) in &d.tiers {
            let f = |v: Option<f64>| fmt_f(v.unwrap_or(f64::NAN));
            out.push_str(&format!("[qa.tiers.{name}]\n"));
            for (key, v) in [
                ("astrometry_warn_beams", t.astrometry_warn_beams),
                ("astrometry_fail_beams", t.astrometry_fail_beams),
                ("noise_warn_ratio", t.noise_warn_ratio),
                ("noise_fail_ratio", t.noise_fail_ratio),
                ("noise_structure_warn", t.noise_structure_warn),
                ("noise_structure_fail", t.noise_structure_fail),
                ("dynamic_range_warn_ratio", t.dynamic_range_warn_ratio),
                ("dynamic_range_fail_ratio", t.dynamic_range_fail_ratio),
                ("flux_scale_warn", t.flux_scale_warn),
                ("flux_scale_fail", t.flux_scale_fail),
                ("completeness_warn", t.completeness_warn),
                ("completeness_fail", t.completeness_fail),
                ("snapshot_offset_warn_beams", t.snapshot_offset_warn_beams),
                ("snapshot_offset_fail_beams", t.snapshot_offset_fail_beams),
                ("snapshot_flux_warn", t.snapshot_flux_warn),
                ("snapshot_flux_fail", t.snapshot_flux_fail),
                ("artefact_warn", t.artefact_warn),
            ] {
                out.push_str(&format!("{key} = {}\n", f(v)));
            }
            out.push_str(&format!("min_matches = {}\n\n", t.min_matches.unwrap_or(5)));
        }
        out
    }
}

/// A float as TOML writes it (always with a decimal point).
fn fmt_f(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        qa: QaConfig,
    }

    #[test]
    fn settings_older_versions_wrote_still_parse_and_are_named() {
        let w: Wrap = toml::from_str(
            "[qa]\n[qa.tiers.science]\ndynamic_range_fail = 100.0\nnoise_efficiency_warn = 0.5\n",
        )
        .unwrap();
        let d = w.qa.deprecations();
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(
            d.iter().any(|m| m.contains("dynamic_range_fail_ratio")),
            "{d:?}"
        );
        assert!(d.iter().any(|m| m.contains("noise_fail_ratio")), "{d:?}");
        assert_eq!(
            w.qa.thresholds("science"),
            QaConfig::default().thresholds("science")
        );
    }

    #[test]
    fn default_text_is_the_default_and_overrides_merge() {
        let w: Wrap = toml::from_str(&QaConfig::default_toml()).unwrap();
        assert_eq!(w.qa, QaConfig::default());
        let w: Wrap =
            toml::from_str("[qa]\n[qa.tiers.science]\nastrometry_fail_beams = 0.15\n").unwrap();
        let t = w.qa.thresholds("science");
        assert_eq!(t.astrometry_fail_beams, 0.15);
        assert_eq!(t.astrometry_warn_beams, 0.05);
        let q = w.qa.thresholds("quicklook");
        assert_eq!(
            (q.astrometry_fail_beams, q.dynamic_range_fail_ratio),
            (0.2, 2.0)
        );
        assert!(q.reference.is_none());
        assert!(toml::from_str::<Wrap>("[qa]\nmatch_radius = 1\n").is_err());
    }
}
