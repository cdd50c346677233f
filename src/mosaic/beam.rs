//! Primary-beam models of real telescopes, shared by the simulator and the mosaic engine.
//!
//! Owns: [`BeamModel`] (dish diameter, shape and width factor: FWHM = k · λ / D with λ = c / ν),
//! the built-in table of telescopes chosen from the `TELESCOP` card ([`BeamModel::for_telescope`]),
//! and the DSA-110 Gaussian helpers [`pb_fwhm_rad`] / [`pb_response`] (k = 1.2, D = 4.65 m).
//! Two shapes: a circular Gaussian A(ρ) = exp(−4 ln 2 · ρ² / FWHM²) and the Airy disk of a
//! uniformly lit aperture A(ρ) = (2 J₁(x) / x)² with x = 3.2327 · ρ / FWHM (its main lobe only:
//! A = 0 beyond the first null at x = 3.8317, where the sidelobes, below 1.8 %, lie under any
//! sensible cut-off).
//!
//! Invariants: A = 1 at the pointing centre, A = 0.5 at ρ = FWHM / 2, 0 ≤ A ≤ 1, and A depends
//! only on the angular separation ρ (no squint, no polarisation, no frequency dependence within
//! the band).

use serde::{Deserialize, Serialize};

/// Diameter of a DSA-110 dish in metres (the `DISHDIAM` card the simulator writes).
pub const DSA110_DISH_M: f64 = 4.65;

/// Speed of light in m/s.
pub const SPEED_OF_LIGHT_M_S: f64 = 299_792_458.0;

/// The shape of a primary-beam model's main lobe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BeamShape {
    Gaussian,
    Airy,
}

/// A primary-beam model: FWHM = `fwhm_factor` · λ / `dish_m`, shaped as `shape`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeamModel {
    /// Dish diameter in metres.
    pub dish_m: f64,
    pub shape: BeamShape,
    /// k in FWHM = k · λ / D (1.029 for an Airy disk of the full aperture).
    pub fwhm_factor: f64,
}

/// Built-in telescopes: the names `TELESCOP` may carry (compared upper-case, ignoring anything
/// but letters and digits) and their beams.
const TELESCOPES: &[(&[&str], BeamModel)] = &[
    // DSA-110: 4.65 m dishes (Ravi et al. 2023, arXiv:2301.01000); a Gaussian of 1.2 λ/D
    // (≈ 3.2° at 1.4 GHz), the model DSA-110 imaging uses for linear mosaics.
    (
        &["DSA110", "DSA"],
        BeamModel {
            dish_m: DSA110_DISH_M,
            shape: BeamShape::Gaussian,
            fwhm_factor: 1.2,
        },
    ),
    // VLA / EVLA: 25 m dishes; FWHM ≈ 42′ / ν[GHz] (NRAO VLA Observational Status Summary,
    // "Field of view"), the Airy disk's 1.029 λ/D.
    (
        &["VLA", "EVLA", "JVLA"],
        BeamModel {
            dish_m: 25.0,
            shape: BeamShape::Airy,
            fwhm_factor: 1.029,
        },
    ),
    // ATCA: 22 m dishes; FWHM ≈ 33′ at 1.4 GHz (ATCA Users Guide, CSIRO), an Airy disk.
    (
        &["ATCA"],
        BeamModel {
            dish_m: 22.0,
            shape: BeamShape::Airy,
            fwhm_factor: 1.029,
        },
    ),
    // MeerKAT: 13.5 m offset dishes; FWHM = 57.5′ at 1.5 GHz = 1.13 λ/D, Gaussian main lobe
    // (Mauch et al. 2020, ApJ 888, 61, §3.2).
    (
        &["MEERKAT", "MKAT"],
        BeamModel {
            dish_m: 13.5,
            shape: BeamShape::Gaussian,
            fwhm_factor: 1.13,
        },
    ),
    // ASKAP: 12 m dishes with phased-array feeds (Hotan et al. 2021, PASA 38, e009); formed
    // beams of FWHM ≈ 1.09 λ/D, Gaussian (McConnell et al. 2020, PASA 37, e048, RACS).
    (
        &["ASKAP"],
        BeamModel {
            dish_m: 12.0,
            shape: BeamShape::Gaussian,
            fwhm_factor: 1.09,
        },
    ),
    // GMRT / uGMRT: 45 m dishes; HPBW 81′ at 325 MHz and 43′ at 610 MHz (GMRT Observer's
    // Manual) = 1.15 λ/D, Gaussian.
    (
        &["GMRT", "UGMRT"],
        BeamModel {
            dish_m: 45.0,
            shape: BeamShape::Gaussian,
            fwhm_factor: 1.15,
        },
    ),
    // WSRT / Apertif: 25 m dishes; the cos⁶(68 ν[GHz] ρ) beam of Popping & Braun 2008
    // (A&A 479, 903) has FWHM = 1.15 λ/D, modelled as a Gaussian of that width.
    (
        &["WSRT", "APERTIF", "WESTERBORK"],
        BeamModel {
            dish_m: 25.0,
            shape: BeamShape::Gaussian,
            fwhm_factor: 1.15,
        },
    ),
];

/// The name a `TELESCOP` value is compared by: upper case, letters and digits only.
pub fn telescope_key(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// The built-in telescope names (first alias of each), for messages and documentation.
pub fn builtin_telescopes() -> Vec<&'static str> {
    TELESCOPES.iter().map(|(names, _)| names[0]).collect()
}

impl BeamModel {
    /// The built-in model for a `TELESCOP` value, if contimg knows the telescope.
    pub fn for_telescope(name: &str) -> Option<BeamModel> {
        let key = telescope_key(name);
        TELESCOPES
            .iter()
            .find(|(names, _)| names.contains(&key.as_str()))
            .map(|(_, m)| m.clone())
    }

    /// The generic model for a dish of unknown telescope: a Gaussian of 1.2 λ/D.
    pub fn gaussian(dish_m: f64) -> BeamModel {
        BeamModel {
            dish_m,
            shape: BeamShape::Gaussian,
            fwhm_factor: 1.2,
        }
    }

    /// Whether the model can be used: positive finite diameter and width factor.
    pub fn is_valid(&self) -> bool {
        self.dish_m.is_finite()
            && self.dish_m > 0.0
            && self.fwhm_factor.is_finite()
            && self.fwhm_factor > 0.0
    }

    /// FWHM in radians at `freq_hz`.
    pub fn fwhm_rad(&self, freq_hz: f64) -> f64 {
        self.fwhm_factor * (SPEED_OF_LIGHT_M_S / freq_hz) / self.dish_m
    }

    /// Response (power, 1 at the pointing centre) at `sep_rad` from the pointing centre.
    pub fn response(&self, sep_rad: f64, freq_hz: f64) -> f64 {
        let r = sep_rad.abs() / self.fwhm_rad(freq_hz);
        match self.shape {
            BeamShape::Gaussian => (-4.0 * std::f64::consts::LN_2 * r * r).exp(),
            BeamShape::Airy => airy(AIRY_HALF_POWER_X * 2.0 * r),
        }
    }
}

/// x where (2 J₁(x) / x)² = 1/2.
const AIRY_HALF_POWER_X: f64 = 1.616_339_948_31;
/// The first zero of J₁.
const AIRY_FIRST_NULL_X: f64 = 3.831_705_970_21;

/// (2 J₁(x) / x)² on the main lobe, 0 beyond the first null. J₁ by its power series, which
/// converges to double precision within 20 terms for x below the first null.
fn airy(x: f64) -> f64 {
    if x >= AIRY_FIRST_NULL_X || x.is_nan() {
        return 0.0;
    }
    let q = -(x * x) / 4.0;
    // 2 J₁(x) / x = Σ_m q^m / (m! (m+1)!)
    let (mut term, mut sum) = (1.0, 1.0);
    for m in 1..24 {
        term *= q / (f64::from(m) * (f64::from(m) + 1.0));
        sum += term;
    }
    sum * sum
}

/// Full width at half maximum of the DSA-110 Gaussian model in radians: 1.2 · λ / D.
///
/// `freq_hz` is the observing frequency, `dish_m` the dish diameter in metres. Both must be
/// positive; non-positive inputs give a non-finite or negative width.
pub fn pb_fwhm_rad(freq_hz: f64, dish_m: f64) -> f64 {
    BeamModel::gaussian(dish_m).fwhm_rad(freq_hz)
}

/// Gaussian primary-beam response (1.2 λ/D) at `sep_rad` from the pointing centre.
pub fn pb_response(sep_rad: f64, freq_hz: f64, dish_m: f64) -> f64 {
    BeamModel::gaussian(dish_m).response(sep_rad, freq_hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fwhm_and_response_match_the_definition() {
        let fwhm = pb_fwhm_rad(1.405e9, DSA110_DISH_M);
        // λ = 0.21338 m at 1.405 GHz: 1.2 λ / 4.65 m = 0.05506 rad = 3.155°.
        let lambda = SPEED_OF_LIGHT_M_S / 1.405e9;
        assert!((lambda - 0.213_375).abs() < 1e-5);
        assert!(
            (fwhm.to_degrees() - 3.1548).abs() < 1e-3,
            "{}",
            fwhm.to_degrees()
        );
        assert_eq!(pb_response(0.0, 1.405e9, DSA110_DISH_M), 1.0);
        assert!((pb_response(fwhm / 2.0, 1.405e9, DSA110_DISH_M) - 0.5).abs() < 1e-12);
        assert!((pb_response(-fwhm / 2.0, 1.405e9, DSA110_DISH_M) - 0.5).abs() < 1e-12);
        assert!((pb_response(fwhm, 1.405e9, DSA110_DISH_M) - 0.0625).abs() < 1e-12);
        // The beam narrows with frequency.
        assert!(pb_fwhm_rad(3e9, DSA110_DISH_M) < fwhm);
    }

    #[test]
    fn every_telescope_is_half_power_at_half_its_fwhm_and_known_by_its_aliases() {
        for name in [
            "DSA-110", "VLA", "EVLA", "ATCA", "MeerKAT", "ASKAP", "GMRT", "WSRT",
        ] {
            let m = BeamModel::for_telescope(name).unwrap_or_else(|| panic!("{name}"));
            let f = m.fwhm_rad(1.4e9);
            assert_eq!(m.response(0.0, 1.4e9), 1.0, "{name}");
            assert!((m.response(f / 2.0, 1.4e9) - 0.5).abs() < 1e-9, "{name}");
            assert!(m.response(f, 1.4e9) < 0.1, "{name}");
        }
        assert!(BeamModel::for_telescope("Parkes").is_none());
        // VLA: 42' / ν[GHz] (NRAO); MeerKAT: 57.5' at 1.5 GHz (Mauch et al. 2020).
        let vla = BeamModel::for_telescope("VLA").unwrap();
        assert!((vla.fwhm_rad(1e9).to_degrees() * 60.0 - 42.4).abs() < 0.2);
        let mk = BeamModel::for_telescope("MEERKAT").unwrap();
        assert!((mk.fwhm_rad(1.5e9).to_degrees() * 60.0 - 57.5).abs() < 0.2);
    }

    #[test]
    fn airy_disk_matches_its_textbook_values() {
        // (2 J1(x)/x)^2: 1 at 0, 0.5 at 1.6163, 0 at the first null; J1(1) = 0.4400505857.
        assert!((airy(1.0) - (2.0 * 0.440_050_585_7f64).powi(2)).abs() < 1e-9);
        assert!((airy(AIRY_HALF_POWER_X) - 0.5).abs() < 1e-9);
        assert!(airy(AIRY_FIRST_NULL_X - 1e-9) < 1e-9);
        assert_eq!(airy(5.0), 0.0);
    }
}
