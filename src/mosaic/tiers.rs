//! Mosaic tiers: how many images, how noisy, which interpolation, whether astrometry is required,
//! and how long a build may take. Built in with the instrument's values; `[tiers.NAME]` tables in
//! `contimg.toml` override fields of a built-in tier or define new tiers.
//!
//! Invariant: every tier returned by [`resolve`] is complete and valid (known interpolation,
//! positive limits); a new tier must give every field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Interpolation kernels the mosaic engine offers, by their config names.
pub const INTERPOLATIONS: &[&str] = &["nearest", "bilinear", "bicubic", "lanczos3"];

/// A complete tier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tier {
    pub name: String,
    pub max_images: usize,
    pub max_rms_jy: f64,
    pub interpolation: String,
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
    pub max_rms_jy: Option<f64>,
    pub interpolation: Option<String>,
    pub require_astrometry: Option<bool>,
    pub timeout_minutes: Option<u64>,
    pub description: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("unknown tier {name:?}; known tiers: {known}")]
    Unknown { name: String, known: String },
    #[error("tier {tier:?}: {message}")]
    Invalid { tier: String, message: String },
}

/// The built-in tiers (DSA-110 practice).
pub fn builtin() -> Vec<Tier> {
    vec![
        Tier {
            name: "quicklook".into(),
            max_images: 10,
            max_rms_jy: 0.010,
            interpolation: "bilinear".into(),
            require_astrometry: false,
            timeout_minutes: 5,
            description: "fast look at recent data; no astrometry check".into(),
        },
        Tier {
            name: "science".into(),
            max_images: 100,
            max_rms_jy: 0.001,
            // Lanczos-3, not Keys bicubic: on the ~3-pixel beams of DSA-110 snapshots bicubic
            // lowers point-source peaks by 3-5 % (tests/flux_fidelity.rs); Lanczos-3 keeps them
            // within 1 %, the science tier's flux-fidelity goal.
            interpolation: "lanczos3".into(),
            require_astrometry: true,
            timeout_minutes: 30,
            description: "nightly science mosaic; astrometry required".into(),
        },
        Tier {
            name: "deep".into(),
            max_images: 1000,
            max_rms_jy: 0.0005,
            interpolation: "lanczos3".into(),
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
                max_rms_jy: o.max_rms_jy.unwrap_or(base.max_rms_jy),
                interpolation: o
                    .interpolation
                    .clone()
                    .unwrap_or_else(|| base.interpolation.clone()),
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
                    max_rms_jy: o.max_rms_jy.ok_or_else(|| need("max_rms_jy"))?,
                    interpolation: o
                        .interpolation
                        .clone()
                        .ok_or_else(|| need("interpolation"))?,
                    require_astrometry: o
                        .require_astrometry
                        .ok_or_else(|| need("require_astrometry"))?,
                    timeout_minutes: o.timeout_minutes.ok_or_else(|| need("timeout_minutes"))?,
                    description: o.description.clone().unwrap_or_default(),
                }
            }
        };
        if !INTERPOLATIONS.contains(&tier.interpolation.as_str()) {
            return Err(invalid(
                name,
                format!(
                    "interpolation {:?} is not one of {}",
                    tier.interpolation,
                    INTERPOLATIONS.join(", ")
                ),
            ));
        }
        if tier.max_images == 0
            || tier.max_rms_jy.is_nan()
            || tier.max_rms_jy <= 0.0
            || tier.timeout_minutes == 0
        {
            return Err(invalid(
                name,
                "max_images, max_rms_jy and timeout_minutes must be positive".into(),
            ));
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
                interpolation: Some("bicubic".into()),
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
        assert_eq!((s.max_images, s.max_rms_jy), (50, 0.001));
        o.insert(
            "weekly".to_string(),
            TierConfig {
                max_images: Some(300),
                ..Default::default()
            },
        );
        let err = resolve(&o).unwrap_err().to_string();
        assert!(
            err.contains("weekly") && err.contains("max_rms_jy"),
            "{err}"
        );
    }

    #[test]
    fn bad_interpolation_is_named() {
        let mut o = BTreeMap::new();
        o.insert(
            "quicklook".to_string(),
            TierConfig {
                interpolation: Some("spline9".into()),
                ..Default::default()
            },
        );
        assert!(resolve(&o).unwrap_err().to_string().contains("spline9"));
    }

    #[test]
    fn auto_thresholds() {
        assert_eq!(auto_for_window(0.5), "quicklook");
        assert_eq!(auto_for_window(1.0), "science");
        assert_eq!(auto_for_window(48.0), "science");
        assert_eq!(auto_for_window(48.5), "deep");
    }
}
