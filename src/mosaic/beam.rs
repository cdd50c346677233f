//! The primary-beam model shared by the simulator and the mosaic engine.
//!
//! Owns: the DSA-110 dish diameter and the circular Gaussian primary beam
//! A(ρ) = exp(−4 ln 2 · ρ² / FWHM²) with FWHM = 1.2 λ / D (λ = c / ν), the usual linmos
//! approximation of an unblocked dish's main lobe (about 3.2° at 1.4 GHz for a 4.65 m dish).
//!
//! Invariants: A = 1 at the pointing centre, A = 0.5 at ρ = FWHM / 2, 0 < A ≤ 1 for finite ρ,
//! and A depends only on the angular separation ρ (no sidelobes, no squint, no polarisation).

/// Diameter of a DSA-110 dish in metres (the `DISHDIAM` card the simulator writes).
pub const DSA110_DISH_M: f64 = 4.65;

/// Speed of light in m/s.
pub const SPEED_OF_LIGHT_M_S: f64 = 299_792_458.0;

/// Full width at half maximum of the primary beam in radians: 1.2 · λ / D.
///
/// `freq_hz` is the observing frequency, `dish_m` the dish diameter in metres. Both must be
/// positive; non-positive inputs give a non-finite or negative width.
pub fn pb_fwhm_rad(freq_hz: f64, dish_m: f64) -> f64 {
    1.2 * (SPEED_OF_LIGHT_M_S / freq_hz) / dish_m
}

/// Primary-beam response (power pattern, 1 at the pointing centre) at angular separation
/// `sep_rad` (radians) from the pointing centre: exp(−4 ln 2 · (sep / FWHM)²).
pub fn pb_response(sep_rad: f64, freq_hz: f64, dish_m: f64) -> f64 {
    let fwhm = pb_fwhm_rad(freq_hz, dish_m);
    let r = sep_rad / fwhm;
    (-4.0 * std::f64::consts::LN_2 * r * r).exp()
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
}
