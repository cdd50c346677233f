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
    /// Sources brighter than this many sigma are used to look for negative bowls.
    pub bright_sigma: f64,
    /// Longest side of the quicklook PNG in pixels.
    pub quicklook_max_px: usize,
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
    pub dynamic_range_fail: Option<f64>,
    pub noise_efficiency_warn: Option<f64>,
    pub artefact_warn: Option<f64>,
    pub min_matches: Option<usize>,
}

/// The thresholds in force for one tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Reference catalogue named for this tier (or the `[qa]` default), if any.
    pub reference: Option<PathBuf>,
    /// WARN when the systematic (median) astrometric offset exceeds this fraction of the
    /// mosaic's beam (FWHM), significantly.
    pub astrometry_warn_beams: f64,
    /// FAIL when it exceeds this fraction of the beam, significantly.
    pub astrometry_fail_beams: f64,
    /// How many standard errors past a threshold make a WARN/FAIL.
    pub significance_sigma: f64,
    /// FAIL when peak / median noise is below this.
    pub dynamic_range_fail: f64,
    /// WARN when expected / measured noise is below this.
    pub noise_efficiency_warn: f64,
    /// WARN when the artefact score exceeds this.
    pub artefact_warn: f64,
    /// Fewer matches than this is no astrometry check.
    pub min_matches: usize,
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
        dynamic_range_fail: Some(if ql { 50.0 } else { 100.0 }),
        noise_efficiency_warn: Some(if ql { 0.3 } else { 0.5 }),
        artefact_warn: Some(0.5),
        min_matches: Some(5),
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
            bright_sigma: 30.0,
            quicklook_max_px: 1600,
            tiers: BUILTIN_TIERS
                .iter()
                .map(|t| (t.to_string(), builtin_tier(t)))
                .collect(),
            catalogues: BTreeMap::new(),
        }
    }
}

impl QaConfig {
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
            "bright_sigma",
            self.bright_sigma,
            self.bright_sigma > self.detection_sigma,
            "must exceed detection_sigma",
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
            dynamic_range_fail: pick(o.dynamic_range_fail, base.dynamic_range_fail),
            noise_efficiency_warn: pick(o.noise_efficiency_warn, base.noise_efficiency_warn),
            artefact_warn: pick(o.artefact_warn, base.artefact_warn),
            min_matches: o.min_matches.or(base.min_matches).unwrap_or(5),
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
# Reference catalogue (CSV with ra/dec[/flux] columns, a FITS binary table such as NVSS VZ, or a
# VOTable) for tiers that name none; "" = none. `contimg qa --reference` overrides both.
reference = "{reference}"
# Islands: connected pixels above this many sigma of the local (BANE-like) rms.
detection_sigma = {det}
# Background/rms box size in restoring-beam widths; the grid step is a third of it.
box_beams = {box_beams}
# Cross-match radius in units of the combined resolution sqrt(mosaic beam^2 + catalogue beam^2)
# (FWHM), widened by 3x the catalogue's position error; matches are one-to-one.
match_radius_beams = {radius}
# A check leaves PASS only when its value is past the threshold by more than this many standard
# errors (so that a verdict does not flip on noise).
significance_sigma = {sig}
# Sources above this many sigma are checked for negative bowls around them.
bright_sigma = {bright}
# Longest side of the quicklook PNG in pixels.
quicklook_max_px = {ql}

# Verdict thresholds per tier. Astrometry uses the systematic (median) offset in fractions of
# the mosaic's beam (FWHM); dynamic range is the brightest source's peak over the median noise;
# noise efficiency is expected / measured noise. Each must be past its threshold by more than
# significance_sigma standard errors. A tier may also name its own catalogue with a line such
# as: reference = "catalogues/nvss.fits"
#
# A reference catalogue's columns, resolution and position error, by file name (uncomment):
#   [qa.catalogues."NVSSVZ.FIT.gz"]
#   beam_arcsec = 45.0
#   position_error_arcsec = 1.0
#   flux_column = "PEAK INT"
"#,
            reference = d.reference.display(),
            det = fmt_f(d.detection_sigma),
            box_beams = fmt_f(d.box_beams),
            radius = fmt_f(d.match_radius_beams),
            sig = fmt_f(d.significance_sigma),
            bright = fmt_f(d.bright_sigma),
            ql = d.quicklook_max_px,
        );
        for (name, t) in &d.tiers {
            out.push_str(&format!(
                "[qa.tiers.{name}]\nastrometry_warn_beams = {}\nastrometry_fail_beams = {}\n\
                 dynamic_range_fail = {}\nnoise_efficiency_warn = {}\nartefact_warn = {}\nmin_matches = {}\n\n",
                fmt_f(t.astrometry_warn_beams.unwrap_or(f64::NAN)),
                fmt_f(t.astrometry_fail_beams.unwrap_or(f64::NAN)),
                fmt_f(t.dynamic_range_fail.unwrap_or(f64::NAN)),
                fmt_f(t.noise_efficiency_warn.unwrap_or(f64::NAN)),
                fmt_f(t.artefact_warn.unwrap_or(f64::NAN)),
                t.min_matches.unwrap_or(5),
            ));
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
    fn default_text_is_the_default_and_overrides_merge() {
        let w: Wrap = toml::from_str(&QaConfig::default_toml()).unwrap();
        assert_eq!(w.qa, QaConfig::default());
        let w: Wrap =
            toml::from_str("[qa]\n[qa.tiers.science]\nastrometry_fail_beams = 0.15\n").unwrap();
        let t = w.qa.thresholds("science");
        assert_eq!(t.astrometry_fail_beams, 0.15);
        assert_eq!(t.astrometry_warn_beams, 0.05);
        let q = w.qa.thresholds("quicklook");
        assert_eq!((q.astrometry_fail_beams, q.dynamic_range_fail), (0.2, 50.0));
        assert!(q.reference.is_none());
        assert!(toml::from_str::<Wrap>("[qa]\nmatch_radius = 1\n").is_err());
    }
}
