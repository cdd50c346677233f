//! Mosaic tiers: how many images, which of a window's images a plan takes (noise, band,
//! resolution), which interpolation, whether astrometry is wanted, and how long a build may take.
//! Built in with values that fit any telescope; `[tiers.NAME]` tables in `contimg.toml` override
//! fields of a built-in tier or define new tiers.
//!
//! The selection keys are relative to the night's own data, so that one tier serves DSA-110 at
//! 0.5 mJy and the VLA at 327 MHz at 6.5 mJy alike: `max_rms_factor` (an image noisier than this
//! × the median rms of the window's images is left out), `max_band_spread` (frequencies within
//! this fraction of their neighbour are one band; the plan takes one band), `max_beam_spread`
//! (restoring-beam areas further than this fraction from the band's median are left out). The
//! absolute `max_rms_jy` and the `frequency_hz` range are optional filters a workspace may add.
//!
//! Invariant: every tier returned by [`resolve`] is complete and valid (an interpolation of
//! [`Interpolation::ALL`], parsed with the configuration; positive limits, a factor of at least
//! 1, spreads in range, a frequency range with lo < hi); a new tier must give max_images, interpolation, require_astrometry and timeout_minutes, and
//! takes the selection defaults ([`DEFAULT_MAX_RMS_FACTOR`], [`DEFAULT_MAX_BAND_SPREAD`],
//! [`DEFAULT_MAX_BEAM_SPREAD`]) for what it does not set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::mosaic::engine::kernel::Interpolation;

/// `max_rms_factor` of the science and deep tiers and of new tiers. A clean simulated night's
/// per-image noise varies by a factor in [0.7, 1.4) (`contimg simulate`), so no image of it is
/// ever above 2× the median; measured over 40 three-snapshot nights the largest rms / median was
/// 1.77, over a 48-snapshot night 1.35.
pub const DEFAULT_MAX_RMS_FACTOR: f64 = 2.5;
/// `max_rms_factor` of the quicklook tier (a look at everything that arrived).
pub const QUICKLOOK_MAX_RMS_FACTOR: f64 = 3.0;
/// Frequencies within 5 % of their neighbour are one band: DSA-110's 1.405 GHz and the VLA's
/// 1.4 GHz are one band, the EVLA's 1.52 GHz (8.6 % above) another.
pub const DEFAULT_MAX_BAND_SPREAD: f64 = 0.05;
/// Restoring-beam areas within 25 % of the band's median are mixed in one Jy/beam mosaic.
pub const DEFAULT_MAX_BEAM_SPREAD: f64 = 0.25;

/// A complete tier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tier {
    pub name: String,
    pub max_images: usize,
    /// An image is left out when its rms exceeds this × the median rms of the window's images
    /// (those in the window, the region and the chosen band).
    pub max_rms_factor: f64,
    /// An absolute rms cut (Jy/beam) applied as well; `None` (the built-ins): none, since the
    /// noise a night reaches depends on the telescope and the band.
    pub max_rms_jy: Option<f64>,
    /// Only images observed in [lo, hi] Hz; `None`: any frequency.
    pub frequency_hz: Option<[f64; 2]>,
    /// Images whose frequencies are within this fraction of their neighbour (in sorted order)
    /// are one band; the plan takes the band with the most images (ties: the lower frequency).
    pub max_band_spread: f64,
    /// Within the band, an image whose restoring-beam area (BMAJ·BMIN) differs from the band's
    /// median by more than this fraction is left out.
    pub max_beam_spread: f64,
    pub interpolation: Interpolation,
    /// Whether the tier's mosaics are meant to be checked against a reference catalogue. QA
    /// checks astrometry whenever a reference is named; without one it reports astrometry as not
    /// checked and, by design, never WARNs for that alone (`contimg qa --help`).
    pub require_astrometry: bool,
    pub timeout_minutes: u64,
    pub description: String,
}

/// A `[tiers.NAME]` table: every field optional so a built-in tier can be partly overridden.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    pub max_images: Option<usize>,
    pub max_rms_factor: Option<f64>,
    pub max_rms_jy: Option<f64>,
    pub frequency_hz: Option<[f64; 2]>,
    pub max_band_spread: Option<f64>,
    pub max_beam_spread: Option<f64>,
    /// One of [`Interpolation::names`], exactly.
    pub interpolation: Option<Interpolation>,
    pub require_astrometry: Option<bool>,
    pub timeout_minutes: Option<u64>,
    pub description: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("unknown tier {name:?}; known tiers: {known}")]
    Unknown { name: String, known: String },
    #[error("[tiers.{tier}]: {message}")]
    Invalid { tier: String, message: String },
}

/// The built-in tiers.
pub fn builtin() -> Vec<Tier> {
    vec![
        Tier {
            name: "quicklook".into(),
            max_images: 10,
            max_rms_factor: QUICKLOOK_MAX_RMS_FACTOR,
            max_rms_jy: None,
            frequency_hz: None,
            max_band_spread: DEFAULT_MAX_BAND_SPREAD,
            max_beam_spread: DEFAULT_MAX_BEAM_SPREAD,
            interpolation: Interpolation::Bilinear,
            require_astrometry: false,
            timeout_minutes: 5,
            description: "fast look at recent data; no astrometry check".into(),
        },
        Tier {
            name: "science".into(),
            max_images: 100,
            max_rms_factor: DEFAULT_MAX_RMS_FACTOR,
            max_rms_jy: None,
            frequency_hz: None,
            max_band_spread: DEFAULT_MAX_BAND_SPREAD,
            max_beam_spread: DEFAULT_MAX_BEAM_SPREAD,
            // Lanczos-3, not Keys bicubic: on the ~3-pixel beams of DSA-110 snapshots bicubic
            // lowers point-source peaks by 3-5 % (tests/flux_fidelity.rs); Lanczos-3 keeps them
            // within 1 %, the science tier's flux-fidelity goal.
            interpolation: Interpolation::Lanczos3,
            require_astrometry: true,
            timeout_minutes: 30,
            description: "nightly science mosaic; astrometry required".into(),
        },
        Tier {
            name: "deep".into(),
            max_images: 1000,
            max_rms_factor: DEFAULT_MAX_RMS_FACTOR,
            max_rms_jy: None,
            frequency_hz: None,
            max_band_spread: DEFAULT_MAX_BAND_SPREAD,
            max_beam_spread: DEFAULT_MAX_BEAM_SPREAD,
            interpolation: Interpolation::Lanczos3,
            require_astrometry: true,
            timeout_minutes: 120,
            description: "multi-night deep mosaic; astrometry required".into(),
        },
    ]
}

fn invalid(tier: &str, message: String) -> TierError {
    TierError::Invalid {
        tier: tier.to_string(),
        message,
    }
}

/// What is wrong with a complete tier's values, if anything (with the fix).
fn problem(t: &Tier) -> Option<String> {
    if t.max_images == 0 || t.timeout_minutes == 0 {
        return Some("max_images and timeout_minutes must be positive".into());
    }
    if let Some(v) = t.max_rms_jy
        && !(v.is_finite() && v > 0.0)
    {
        return Some(format!(
            "max_rms_jy = {v} must be a positive rms in Jy/beam (or leave it out: \
             max_rms_factor cuts relative to the night's median)"
        ));
    }
    if t.max_rms_factor.is_nan() || t.max_rms_factor < 1.0 {
        return Some(format!(
            "max_rms_factor = {} must be at least 1 (a factor below 1 would leave out the \
             night's median image; inf turns the cut off)",
            t.max_rms_factor
        ));
    }
    if let Some([lo, hi]) = t.frequency_hz
        && !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo < hi)
    {
        return Some(format!(
            "frequency_hz = [{lo}, {hi}] must be [lo, hi] in Hz with 0 < lo < hi, e.g. \
             [1.3e9, 1.5e9]"
        ));
    }
    if !(t.max_band_spread > 0.0 && t.max_band_spread < 1.0) {
        return Some(format!(
            "max_band_spread = {} must be a fraction in (0, 1), e.g. 0.05",
            t.max_band_spread
        ));
    }
    if !(t.max_beam_spread > 0.0 && t.max_beam_spread.is_finite()) {
        return Some(format!(
            "max_beam_spread = {} must be a positive fraction, e.g. 0.25",
            t.max_beam_spread
        ));
    }
    None
}

/// Built-in tiers overlaid with the configuration's tables, sorted by name.
pub fn resolve(overrides: &BTreeMap<String, TierConfig>) -> Result<Vec<Tier>, TierError> {
    let mut tiers: BTreeMap<String, Tier> =
        builtin().into_iter().map(|t| (t.name.clone(), t)).collect();
    for (name, o) in overrides {
        if name == "auto" {
            return Err(invalid(
                name,
                "\"auto\" is reserved for choosing a tier from the window length".into(),
            ));
        }
        let tier = match tiers.get(name) {
            Some(base) => Tier {
                name: name.clone(),
                max_images: o.max_images.unwrap_or(base.max_images),
                max_rms_factor: o.max_rms_factor.unwrap_or(base.max_rms_factor),
                max_rms_jy: o.max_rms_jy.or(base.max_rms_jy),
                frequency_hz: o.frequency_hz.or(base.frequency_hz),
                max_band_spread: o.max_band_spread.unwrap_or(base.max_band_spread),
                max_beam_spread: o.max_beam_spread.unwrap_or(base.max_beam_spread),
                interpolation: o.interpolation.unwrap_or(base.interpolation),
                require_astrometry: o.require_astrometry.unwrap_or(base.require_astrometry),
                timeout_minutes: o.timeout_minutes.unwrap_or(base.timeout_minutes),
                description: o
                    .description
                    .clone()
                    .unwrap_or_else(|| base.description.clone()),
            },
            None => {
                let need = |field: &str| invalid(name, format!("a new tier must set {field}"));
                Tier {
                    name: name.clone(),
                    max_images: o.max_images.ok_or_else(|| need("max_images"))?,
                    max_rms_factor: o.max_rms_factor.unwrap_or(DEFAULT_MAX_RMS_FACTOR),
                    max_rms_jy: o.max_rms_jy,
                    frequency_hz: o.frequency_hz,
                    max_band_spread: o.max_band_spread.unwrap_or(DEFAULT_MAX_BAND_SPREAD),
                    max_beam_spread: o.max_beam_spread.unwrap_or(DEFAULT_MAX_BEAM_SPREAD),
                    interpolation: o.interpolation.ok_or_else(|| need("interpolation"))?,
                    require_astrometry: o
                        .require_astrometry
                        .ok_or_else(|| need("require_astrometry"))?,
                    timeout_minutes: o.timeout_minutes.ok_or_else(|| need("timeout_minutes"))?,
                    description: o.description.clone().unwrap_or_default(),
                }
            }
        };
        if let Some(message) = problem(&tier) {
            return Err(invalid(name, message));
        }
        tiers.insert(name.clone(), tier);
    }
    // Shallowest first, as an astronomer reads them (quicklook, science, deep), a workspace's own
    // tiers in their place by depth.
    let mut tiers: Vec<Tier> = tiers.into_values().collect();
    tiers.sort_by(|a, b| (a.max_images, &a.name).cmp(&(b.max_images, &b.name)));
    Ok(tiers)
}

/// Finds a tier by name.
pub fn find(tiers: &[Tier], name: &str) -> Result<Tier, TierError> {
    tiers
        .iter()
        .find(|t| t.name == name)
        .cloned()
        .ok_or_else(|| TierError::Unknown {
            name: name.to_string(),
            known: tiers
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The tier `--tier auto` picks for a window: under 1 h quicklook, over 48 h deep, else science.
pub fn auto_for_window(hours: f64) -> &'static str {
    if hours < 1.0 {
        "quicklook"
    } else if hours > 48.0 {
        "deep"
    } else {
        "science"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_listed_shallowest_first_with_custom_ones_in_place() {
        let mut o = BTreeMap::new();
        o.insert(
            "weekly".to_string(),
            TierConfig {
                max_images: Some(300),
                max_rms_jy: Some(0.001),
                interpolation: Some(Interpolation::Bicubic),
                require_astrometry: Some(true),
                timeout_minutes: Some(60),
                ..Default::default()
            },
        );
        let names: Vec<String> = resolve(&o).unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["quicklook", "science", "weekly", "deep"]);
    }

    #[test]
    fn overrides_merge_and_new_tiers_need_every_field() {
        let mut o = BTreeMap::new();
        o.insert(
            "science".to_string(),
            TierConfig {
                max_images: Some(50),
                ..Default::default()
            },
        );
        let t = resolve(&o).unwrap();
        let s = find(&t, "science").unwrap();
        assert_eq!((s.max_images, s.max_rms_jy), (50, None));
        assert_eq!(s.max_rms_factor, DEFAULT_MAX_RMS_FACTOR);
        o.insert(
            "weekly".to_string(),
            TierConfig {
                max_images: Some(300),
                ..Default::default()
            },
        );
        let err = resolve(&o).unwrap_err().to_string();
        assert!(
            err.contains("weekly") && err.contains("interpolation"),
            "{err}"
        );
    }

    #[test]
    fn a_workspace_s_absolute_rms_cut_still_applies_beside_the_factor() {
        let mut o = BTreeMap::new();
        o.insert(
            "science".to_string(),
            TierConfig {
                max_rms_jy: Some(0.002),
                ..Default::default()
            },
        );
        o.insert(
            "weekly".to_string(),
            TierConfig {
                max_images: Some(300),
                max_rms_jy: Some(0.001),
                interpolation: Some(Interpolation::Bicubic),
                require_astrometry: Some(true),
                timeout_minutes: Some(60),
                ..Default::default()
            },
        );
        let t = resolve(&o).unwrap();
        let s = find(&t, "science").unwrap();
        assert_eq!(
            (s.max_rms_jy, s.max_rms_factor),
            (Some(0.002), DEFAULT_MAX_RMS_FACTOR)
        );
        let w = find(&t, "weekly").unwrap();
        assert_eq!(w.max_rms_jy, Some(0.001));
        assert_eq!(
            (w.max_band_spread, w.max_beam_spread),
            (DEFAULT_MAX_BAND_SPREAD, DEFAULT_MAX_BEAM_SPREAD)
        );
    }

    #[test]
    fn selection_keys_out_of_range_are_refused_with_the_fix() {
        for (cfg, words) in [
            (
                TierConfig {
                    max_rms_factor: Some(0.5),
                    ..Default::default()
                },
                "at least 1",
            ),
            (
                TierConfig {
                    frequency_hz: Some([1.5e9, 1.3e9]),
                    ..Default::default()
                },
                "lo < hi",
            ),
            (
                TierConfig {
                    max_band_spread: Some(1.5),
                    ..Default::default()
                },
                "(0, 1)",
            ),
            (
                TierConfig {
                    max_rms_jy: Some(-1.0),
                    ..Default::default()
                },
                "max_rms_factor",
            ),
        ] {
            let mut o = BTreeMap::new();
            o.insert("science".to_string(), cfg);
            let err = resolve(&o).unwrap_err().to_string();
            assert!(
                err.contains("[tiers.science]") && err.contains(words),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_interpolation_is_named() {
        // Refused when the table is read, naming the value and every kernel.
        let err = toml::from_str::<TierConfig>("interpolation = \"spline9\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("spline9"), "{err}");
        for name in Interpolation::names() {
            assert!(err.contains(name), "{err}");
        }
        let ok: TierConfig = toml::from_str("interpolation = \"lanczos3\"").unwrap();
        assert_eq!(ok.interpolation, Some(Interpolation::Lanczos3));
    }

    #[test]
    fn auto_thresholds() {
        assert_eq!(auto_for_window(0.5), "quicklook");
        assert_eq!(auto_for_window(1.0), "science");
        assert_eq!(auto_for_window(48.0), "science");
        assert_eq!(auto_for_window(48.5), "deep");
    }
}
