//! Source finding: islands of connected pixels above the detection threshold (8-connectivity),
//! one source per island at its brightest pixel, refined to sub-pixel precision.
//!
//! The refinement fits a general 2-D quadratic to ln(I − background) over the pixels of a small
//! window around the peak that are above 20 % of the peak, weighted by I² (the inverse variance of
//! ln I for additive noise). The logarithm of any elliptical Gaussian is exactly such a quadratic,
//! so on a point source (the restoring beam) the position, peak and width come out without bias;
//! it is the closed form of a 2-D Gaussian fit. When the fit is not a maximum, or its peak lies
//! more than 1.5 pixels from the brightest pixel, a 3×3 intensity-weighted centroid is used and
//! `fit` says so. Integrated flux is the fitted Gaussian's volume over the beam area; the island
//! flux (sum over the island / beam area) is reported too, for resolved sources. The fitted
//! Gaussian's position angle is measured on the sky through the WCS, and every fitted quantity
//! carries its 1σ statistical error from Condon (1997) ([`condon_errors`]).
//!
//! Invariants: pixel positions are 0-based (x along NAXIS1); sky positions are ICRS through the
//! mosaic's WCS; sources are sorted by decreasing peak flux and numbered from 1 in that order.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::background::BackgroundGrid;
use crate::wcs::Wcs;

/// The restoring beam in pixels.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct BeamPx {
    pub bmaj_arcsec: f64,
    pub bmin_arcsec: f64,
    pub bpa_deg: f64,
    pub cell_arcsec: f64,
}

impl BeamPx {
    /// Beam major axis in pixels.
    pub fn fwhm_px(&self) -> f64 {
        self.bmaj_arcsec / self.cell_arcsec
    }
    /// Beam solid angle in pixels: π·bmaj·bmin / (4 ln 2) / cell².
    pub fn area_px(&self) -> f64 {
        std::f64::consts::PI * self.bmaj_arcsec * self.bmin_arcsec
            / (4.0 * std::f64::consts::LN_2)
            / (self.cell_arcsec * self.cell_arcsec)
    }
}

/// One detected source.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub id: usize,
    /// 0-based pixel position.
    pub x: f64,
    pub y: f64,
    pub ra_deg: f64,
    pub dec_deg: f64,
    /// Peak brightness above the background (Jy/beam).
    pub peak_jy: f64,
    /// Integrated flux of the fitted Gaussian (Jy).
    pub int_jy: f64,
    /// Sum over the island / beam area (Jy).
    pub island_jy: f64,
    /// Local rms (Jy/beam).
    pub rms_jy: f64,
    pub snr: f64,
    pub npix: usize,
    /// Fitted FWHM major and minor axes (arcsec); NaN for a centroid.
    pub maj_arcsec: f64,
    pub min_arcsec: f64,
    /// Fitted major axis's position angle on the sky (deg, east of north, in [0, 180)); NaN for
    /// a centroid.
    pub pa_deg: f64,
    /// 1σ statistical errors ([`condon_errors`]): RA as an angle on the sky (the error of
    /// α·cos δ, arcsec) and Dec (arcsec); peak (Jy/beam) and integrated (Jy) flux; the axes
    /// (arcsec) and the position angle (deg), NaN for a centroid.
    pub ra_err_arcsec: f64,
    pub dec_err_arcsec: f64,
    pub peak_err_jy: f64,
    pub int_err_jy: f64,
    pub maj_err_arcsec: f64,
    pub min_err_arcsec: f64,
    pub pa_err_deg: f64,
    /// "gauss" or "centroid".
    pub fit: &'static str,
}

/// The 1σ statistical errors of one source's measured parameters (see [`condon_errors`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceErrors {
    /// Error of α·cos δ, an angle on the sky (arcsec).
    pub ra_arcsec: f64,
    pub dec_arcsec: f64,
    pub peak_jy: f64,
    pub int_jy: f64,
    pub maj_arcsec: f64,
    pub min_arcsec: f64,
    /// At most 90°: a position angle the data cannot tell (a round source) is reported as
    /// unconstrained, 90°, not as a larger number.
    pub pa_deg: f64,
}

/// What [`condon_errors`] needs of a fitted elliptical Gaussian.
#[derive(Debug, Clone, Copy)]
pub struct GaussShape {
    /// Peak above the background (Jy/beam).
    pub peak_jy: f64,
    /// Integrated flux (Jy).
    pub int_jy: f64,
    /// Local rms noise (Jy/beam).
    pub rms_jy: f64,
    /// Fitted FWHM axes (arcsec), as observed (not deconvolved).
    pub maj_arcsec: f64,
    pub min_arcsec: f64,
    /// Major axis's position angle on the sky (deg, east of north).
    pub pa_deg: f64,
}

/// Condon's ρ² (Condon 1997, eq. 41): the effective signal-to-noise ratio squared of a fitted
/// parameter, for exponents (α_M, α_m).
fn condon_rho2(s: &GaussShape, beam: &BeamPx, alpha_maj: f64, alpha_min: f64) -> f64 {
    let (tm, tn) = (s.maj_arcsec, s.min_arcsec);
    let (bm, bn) = (beam.bmaj_arcsec, beam.bmin_arcsec);
    let snr = s.peak_jy / s.rms_jy;
    tm * tn / (4.0 * bm * bn)
        * (1.0 + (bm / tm).powi(2)).powf(alpha_maj)
        * (1.0 + (bn / tn).powi(2)).powf(alpha_min)
        * snr
        * snr
}

/// The 1σ statistical errors of an elliptical Gaussian fitted to an image whose noise is
/// correlated over the restoring beam: J. J. Condon (1997), "Errors in Elliptical Gaussian
/// Fits", PASP 109, 166.
///
/// With A the fitted peak, σ the local rms, θ_M and θ_m the fitted FWHM axes and θ_B, θ_b the
/// restoring beam's (Condon's noise-correlation width θ_N, taken axis by axis as TraP and the
/// VAST pipeline do, so that an unresolved source, θ_M = θ_B and θ_m = θ_b, gets the
/// point-source errors exactly), each parameter has its own effective signal-to-noise ratio
/// (eq. 41):
///
/// ```text
/// ρ² = (θ_M θ_m / 4 θ_B θ_b) · [1 + (θ_B/θ_M)²]^α_M · [1 + (θ_b/θ_m)²]^α_m · (A/σ)²
/// ```
///
/// with (α_M, α_m) = (3/2, 3/2) for the amplitude, (5/2, 1/2) for the position along the major
/// axis x₀ and for θ_M, and (1/2, 5/2) for the position along the minor axis y₀, θ_m and the
/// position angle φ. The errors are then (eq. 21)
///
/// ```text
/// σ_A / A = √2 / ρ          σ_x₀ = θ_M / (√(4 ln 2) ρ)      σ_y₀ = θ_m / (√(4 ln 2) ρ)
/// σ_θM / θ_M = √2 / ρ       σ_θm / θ_m = √2 / ρ              σ_φ = 2 θ_M θ_m / ((θ_M² − θ_m²) ρ)  [rad]
/// ```
///
/// and the integrated flux S = A θ_M θ_m / (θ_B θ_b) carries
/// (σ_S/S)² = (σ_A/A)² + (θ_B θ_b / θ_M θ_m) · [(σ_θM/θ_M)² + (σ_θm/θ_m)²].
/// The axis errors go to RA and Dec through φ (east of north):
/// σ²(α cos δ) = σ_x₀² sin²φ + σ_y₀² cos²φ and σ²(δ) = σ_x₀² cos²φ + σ_y₀² sin²φ.
/// For a point source (θ_M = θ_B, θ_m = θ_b) these are σ_A = σ, σ_x₀ = θ_B / (√(8 ln 2) A/σ)
/// (the beam's standard deviation over the S/N) and σ_S/S = √3 σ/A.
///
/// These are the noise's errors only: the flux-scale calibration and the astrometric frame's
/// errors come on top. σ_φ is capped at 90° (a round source's φ is unconstrained).
pub fn condon_errors(s: &GaussShape, beam: &BeamPx) -> SourceErrors {
    let rho_amp = condon_rho2(s, beam, 1.5, 1.5).sqrt();
    let rho_maj = condon_rho2(s, beam, 2.5, 0.5).sqrt();
    let rho_min = condon_rho2(s, beam, 0.5, 2.5).sqrt();
    let root_4ln2 = (4.0 * std::f64::consts::LN_2).sqrt();
    let (tm, tn) = (s.maj_arcsec, s.min_arcsec);
    let sx0 = tm / (root_4ln2 * rho_maj);
    let sy0 = tn / (root_4ln2 * rho_min);
    let rel_amp = std::f64::consts::SQRT_2 / rho_amp;
    let rel_maj = std::f64::consts::SQRT_2 / rho_maj;
    let rel_min = std::f64::consts::SQRT_2 / rho_min;
    let pa_rad = if tm > tn {
        (2.0 * tm * tn / ((tm * tm - tn * tn) * rho_min)).min(std::f64::consts::FRAC_PI_2)
    } else {
        std::f64::consts::FRAC_PI_2
    };
    let rel_int = (rel_amp * rel_amp
        + beam.bmaj_arcsec * beam.bmin_arcsec / (tm * tn)
            * (rel_maj * rel_maj + rel_min * rel_min))
        .sqrt();
    let (sin_pa, cos_pa) = s.pa_deg.to_radians().sin_cos();
    SourceErrors {
        ra_arcsec: (sx0 * sx0 * sin_pa * sin_pa + sy0 * sy0 * cos_pa * cos_pa).sqrt(),
        dec_arcsec: (sx0 * sx0 * cos_pa * cos_pa + sy0 * sy0 * sin_pa * sin_pa).sqrt(),
        peak_jy: s.peak_jy.abs() * rel_amp,
        int_jy: s.int_jy.abs() * rel_int,
        maj_arcsec: tm * rel_maj,
        min_arcsec: tn * rel_min,
        pa_deg: pa_rad.to_degrees(),
    }
}

/// The 1σ noise of an island's flux (sum over `npix` pixels, background subtracted, over the
/// beam area `area_px` in pixels), with noise correlated over the beam: each pixel's noise is
/// shared with about `area_px` neighbours (all the island's, when it is smaller than that), so
/// the sum's variance is σ² · npix · min(npix, area_px).
pub fn island_flux_err(rms_jy: f64, npix: usize, area_px: f64) -> f64 {
    let n = npix as f64;
    rms_jy * (n * n.min(area_px)).sqrt() / area_px
}

/// The position angle on the sky (deg, east of north, in [0, 180)) of the direction `theta`
/// (radians from +x towards +y on the pixel grid) at pixel (x, y), through the WCS.
fn sky_pa_deg(wcs: &Wcs, x: f64, y: f64, theta: f64) -> Option<f64> {
    let (dx, dy) = (0.5 * theta.cos(), 0.5 * theta.sin());
    let (ra1, dec1) = wcs.pix_to_icrs(x - dx, y - dy)?;
    let (ra2, dec2) = wcs.pix_to_icrs(x + dx, y + dy)?;
    let (d1, d2) = (dec1.to_radians(), dec2.to_radians());
    let dra = (ra2 - ra1).to_radians();
    let pa = (dra.sin() * d2.cos())
        .atan2(d1.cos() * d2.sin() - d1.sin() * d2.cos() * dra.cos())
        .to_degrees();
    pa.is_finite().then(|| pa.rem_euclid(180.0))
}

/// A refined peak: position (0-based pixels), peak above the background, the Gaussian's volume
/// (pixel units), its FWHM axes in pixels and the major axis's angle on the pixel grid (radians
/// from +x towards +y, in (−π/2, π/2]).
pub(crate) struct Fit {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) peak: f64,
    pub(crate) volume: f64,
    pub(crate) maj_px: f64,
    pub(crate) min_px: f64,
    pub(crate) theta_px: f64,
}

/// Solves the symmetric system `a x = b` (n ≤ 6) by Gaussian elimination with partial pivoting.
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    for c in 0..N {
        let p = (c..N).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[p][c].abs() < 1e-300 {
            return None;
        }
        a.swap(c, p);
        b.swap(c, p);
        for r in c + 1..N {
            let f = a[r][c] / a[c][c];
            let pivot_row = a[c];
            for (x, p) in a[r].iter_mut().zip(pivot_row).skip(c) {
                *x -= f * p;
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = [0.0; N];
    for r in (0..N).rev() {
        let mut s = b[r];
        for k in r + 1..N {
            s -= a[r][k] * x[k];
        }
        x[r] = s / a[r][r];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Quadratic fit of ln I around the peak pixel (px, py); values are background-subtracted by `sub`.
pub(crate) fn gauss_fit(
    image: ArrayView2<f32>,
    px: usize,
    py: usize,
    half: usize,
    sub: &dyn Fn(usize, usize) -> f64,
) -> Option<Fit> {
    let (ny, nx) = image.dim();
    let peak = f64::from(image[[py, px]]) - sub(px, py);
    if peak <= 0.0 {
        return None;
    }
    let mut ata = [[0.0f64; 6]; 6];
    let mut atb = [0.0f64; 6];
    let mut n = 0;
    for y in py.saturating_sub(half)..(py + half + 1).min(ny) {
        for x in px.saturating_sub(half)..(px + half + 1).min(nx) {
            let v = image[[y, x]];
            if !v.is_finite() {
                continue;
            }
            let i = f64::from(v) - sub(x, y);
            if i < 0.2 * peak {
                continue;
            }
            let (dx, dy) = (x as f64 - px as f64, y as f64 - py as f64);
            let basis = [1.0, dx, dy, dx * dx, dx * dy, dy * dy];
            let w = i * i;
            let l = i.ln();
            for r in 0..6 {
                for c in 0..6 {
                    ata[r][c] += w * basis[r] * basis[c];
                }
                atb[r] += w * basis[r] * l;
            }
            n += 1;
        }
    }
    if n < 6 {
        return None;
    }
    let c = solve(ata, atb)?;
    // ln I = c0 + g·d + ½ dᵀ H d with H = [[2c3, c4], [c4, 2c5]].
    let (h11, h12, h22) = (2.0 * c[3], c[4], 2.0 * c[5]);
    let det = h11 * h22 - h12 * h12;
    if !(h11 < 0.0 && det > 0.0) {
        return None;
    }
    // d* = −H⁻¹ g
    let dx = -(h22 * c[1] - h12 * c[2]) / det;
    let dy = -(-h12 * c[1] + h11 * c[2]) / det;
    if dx.abs() > 1.5 || dy.abs() > 1.5 {
        return None;
    }
    let lnp = c[0] + c[1] * dx + c[2] * dy + c[3] * dx * dx + c[4] * dx * dy + c[5] * dy * dy;
    let p = lnp.exp();
    // Eigenvalues of −H give 1/σ² along the principal axes.
    let tr = -(h11 + h22);
    let disc = ((h11 - h22).powi(2) + 4.0 * h12 * h12).sqrt();
    let (l1, l2) = (0.5 * (tr - disc), 0.5 * (tr + disc));
    if l1 <= 0.0 {
        return None;
    }
    let f = 2.0 * (2.0 * std::f64::consts::LN_2).sqrt();
    // −H = R diag(l1, l2) Rᵀ with R the rotation by the major axis's angle θ (l1 the smaller
    // eigenvalue): h11 − h22 = (l2 − l1) cos 2θ and 2 h12 = (l2 − l1) sin 2θ.
    let theta_px = 0.5 * (2.0 * h12).atan2(h11 - h22);
    Some(Fit {
        x: px as f64 + dx,
        y: py as f64 + dy,
        peak: p,
        volume: p * 2.0 * std::f64::consts::PI / det.sqrt(),
        maj_px: f / l1.sqrt(),
        min_px: f / l2.sqrt(),
        theta_px,
    })
}

pub(crate) fn centroid(
    image: ArrayView2<f32>,
    px: usize,
    py: usize,
    sub: &dyn Fn(usize, usize) -> f64,
) -> (f64, f64) {
    let (ny, nx) = image.dim();
    let (mut sx, mut sy, mut sw) = (0.0, 0.0, 0.0);
    for y in py.saturating_sub(1)..(py + 2).min(ny) {
        for x in px.saturating_sub(1)..(px + 2).min(nx) {
            let v = image[[y, x]];
            if !v.is_finite() {
                continue;
            }
            let w = (f64::from(v) - sub(x, y)).max(0.0);
            sx += w * x as f64;
            sy += w * y as f64;
            sw += w;
        }
    }
    if sw > 0.0 {
        (sx / sw, sy / sw)
    } else {
        (px as f64, py as f64)
    }
}

/// Finds sources in the islands of `mask` (consumed: visited pixels are cleared).
pub fn find_sources(
    image: ArrayView2<f32>,
    grid: &BackgroundGrid,
    mask: &mut [bool],
    beam: &BeamPx,
    wcs: &Wcs,
) -> Vec<Source> {
    let (ny, nx) = image.dim();
    let area = beam.area_px();
    let half = ((beam.fwhm_px() * 0.6).ceil() as usize).clamp(1, 5);
    let sub = |x: usize, y: usize| f64::from(grid.at(x as f64, y as f64).0);
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] {
            continue;
        }
        mask[start] = false;
        stack.push(start);
        let (mut best, mut best_v) = (start, f32::NEG_INFINITY);
        let mut sum = 0.0f64;
        let mut npix = 0usize;
        while let Some(k) = stack.pop() {
            let (x, y) = (k % nx, k / nx);
            let v = image[[y, x]];
            if v > best_v {
                best_v = v;
                best = k;
            }
            sum += f64::from(v) - sub(x, y);
            npix += 1;
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (xx, yy) = (x as i64 + dx, y as i64 + dy);
                    if xx < 0 || yy < 0 || xx >= nx as i64 || yy >= ny as i64 {
                        continue;
                    }
                    let kk = yy as usize * nx + xx as usize;
                    if mask[kk] {
                        mask[kk] = false;
                        stack.push(kk);
                    }
                }
            }
        }
        let (px, py) = (best % nx, best / nx);
        let (_, rms) = grid.at(px as f64, py as f64);
        let rms = f64::from(rms);
        let fitted = gauss_fit(image, px, py, half, &sub).and_then(|f| {
            let pa = sky_pa_deg(wcs, f.x, f.y, f.theta_px)?;
            Some((f, pa))
        });
        let (x, y, peak, int_jy, maj, min, pa, fit) = match fitted {
            Some((f, pa)) => (
                f.x,
                f.y,
                f.peak,
                f.volume / area,
                f.maj_px * beam.cell_arcsec,
                f.min_px * beam.cell_arcsec,
                pa,
                "gauss",
            ),
            None => {
                let (cx, cy) = centroid(image, px, py, &sub);
                let p = f64::from(best_v) - sub(px, py);
                let nan = f64::NAN;
                (cx, cy, p, sum / area, nan, nan, nan, "centroid")
            }
        };
        let Some((ra, dec)) = wcs.pix_to_icrs(x, y) else {
            continue;
        };
        let e = if fit == "gauss" {
            condon_errors(
                &GaussShape {
                    peak_jy: peak,
                    int_jy,
                    rms_jy: rms,
                    maj_arcsec: maj,
                    min_arcsec: min,
                    pa_deg: pa,
                },
                beam,
            )
        } else {
            // No fitted shape: the position and peak errors are an unresolved source's (the
            // beam's shape), the flux is the island's sum with its own noise.
            let point = condon_errors(
                &GaussShape {
                    peak_jy: peak,
                    int_jy,
                    rms_jy: rms,
                    maj_arcsec: beam.bmaj_arcsec,
                    min_arcsec: beam.bmin_arcsec,
                    pa_deg: beam.bpa_deg,
                },
                beam,
            );
            SourceErrors {
                int_jy: island_flux_err(rms, npix, area),
                maj_arcsec: f64::NAN,
                min_arcsec: f64::NAN,
                pa_deg: f64::NAN,
                ..point
            }
        };
        out.push(Source {
            id: 0,
            x,
            y,
            ra_deg: ra,
            dec_deg: dec,
            peak_jy: peak,
            int_jy,
            island_jy: sum / area,
            rms_jy: rms,
            snr: peak / rms,
            npix,
            maj_arcsec: maj,
            min_arcsec: min,
            pa_deg: pa,
            ra_err_arcsec: e.ra_arcsec,
            dec_err_arcsec: e.dec_arcsec,
            peak_err_jy: e.peak_jy,
            int_err_jy: e.int_jy,
            maj_err_arcsec: e.maj_arcsec,
            min_err_arcsec: e.min_arcsec,
            pa_err_deg: e.pa_deg,
            fit,
        });
    }
    out.sort_by(|a, b| b.peak_jy.total_cmp(&a.peak_jy));
    for (i, s) in out.iter_mut().enumerate() {
        s.id = i + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn quadratic_fit_is_exact_on_a_noiseless_elliptical_gaussian() {
        let (x0, y0, p0) = (20.3, 17.65, 2.5);
        let (sx, sy, th) = (1.9f64, 1.3f64, 0.4f64);
        let img = Array2::from_shape_fn((40, 40), |(y, x)| {
            let (dx, dy) = (x as f64 - x0, y as f64 - y0);
            let u = dx * th.cos() + dy * th.sin();
            let v = -dx * th.sin() + dy * th.cos();
            (p0 * (-0.5 * (u * u / (sx * sx) + v * v / (sy * sy))).exp()) as f32
        });
        let f = gauss_fit(img.view(), 20, 18, 3, &|_, _| 0.0).unwrap();
        assert!(
            (f.x - x0).abs() < 1e-3 && (f.y - y0).abs() < 1e-3,
            "{} {}",
            f.x,
            f.y
        );
        assert!((f.peak - p0).abs() < 1e-3 * p0);
        let vol = p0 * 2.0 * std::f64::consts::PI * sx * sy;
        assert!((f.volume - vol).abs() < 1e-3 * vol);
        assert!((f.maj_px - 2.3548 * sx).abs() < 1e-2);
        assert!((f.theta_px - th).abs() < 1e-3, "theta {}", f.theta_px);
    }

    fn beam(bmaj: f64, bmin: f64) -> BeamPx {
        BeamPx {
            bmaj_arcsec: bmaj,
            bmin_arcsec: bmin,
            bpa_deg: 0.0,
            cell_arcsec: 2.0,
        }
    }

    #[test]
    fn condon_errors_of_a_point_source_are_the_textbook_ones() {
        // An unresolved source (fitted axes = the beam's) at S/N 20.
        let b = beam(12.0, 8.0);
        let s = GaussShape {
            peak_jy: 0.02,
            int_jy: 0.02,
            rms_jy: 1e-3,
            maj_arcsec: 12.0,
            min_arcsec: 8.0,
            pa_deg: 0.0,
        };
        let e = condon_errors(&s, &b);
        let snr = 20.0;
        let sigma = |fwhm: f64| fwhm / crate::stats::FWHM_PER_SIGMA;
        assert!((e.peak_jy - 1e-3).abs() < 1e-12, "{e:?}");
        // Major axis north: Dec error along the major axis, RA error along the minor.
        assert!((e.dec_arcsec - sigma(12.0) / snr).abs() < 1e-9, "{e:?}");
        assert!((e.ra_arcsec - sigma(8.0) / snr).abs() < 1e-9, "{e:?}");
        assert!((e.int_jy / 0.02 - 3f64.sqrt() / snr).abs() < 1e-9, "{e:?}");
        assert!((e.maj_arcsec / 12.0 - 1.0 / snr).abs() < 1e-9, "{e:?}");
        assert!((e.min_arcsec / 8.0 - 1.0 / snr).abs() < 1e-9, "{e:?}");
        // σ_φ = 2 θM θm / ((θM² − θm²) ρ), ρ = √2 S/N for a point source.
        let pa = (2.0 * 12.0 * 8.0 / ((144.0 - 64.0) * 2f64.sqrt() * snr)).to_degrees();
        assert!((e.pa_deg - pa).abs() < 1e-9, "{e:?}");
        // Turned by 90°: the RA and Dec errors swap.
        let e90 = condon_errors(&GaussShape { pa_deg: 90.0, ..s }, &b);
        assert!((e90.ra_arcsec - e.dec_arcsec).abs() < 1e-12);
        assert!((e90.dec_arcsec - e.ra_arcsec).abs() < 1e-12);
        // Twice the S/N, half every error; a round source's PA is unconstrained (90°).
        let e2 = condon_errors(
            &GaussShape {
                peak_jy: 0.04,
                int_jy: 0.04,
                ..s
            },
            &b,
        );
        assert!((e2.dec_arcsec * 2.0 - e.dec_arcsec).abs() < 1e-12);
        assert!((e2.int_jy / 0.04 * 2.0 - e.int_jy / 0.02).abs() < 1e-12);
        let round = condon_errors(
            &GaussShape {
                maj_arcsec: 10.0,
                min_arcsec: 10.0,
                ..s
            },
            &beam(10.0, 10.0),
        );
        assert_eq!(round.pa_deg, 90.0);
        // A resolved source: its position error grows with its size at a given peak S/N.
        let big = condon_errors(
            &GaussShape {
                maj_arcsec: 36.0,
                min_arcsec: 24.0,
                ..s
            },
            &b,
        );
        assert!(big.dec_arcsec > e.dec_arcsec && big.int_jy > 0.0, "{big:?}");
    }

    #[test]
    fn position_angles_are_east_of_north_on_the_sky() {
        use crate::wcs::Frame;
        // RA increases to −x (CDELT1 < 0), Dec to +y: +y is north, −x is east.
        let wcs = Wcs::new(
            "SIN",
            (150.0, 30.0),
            (50.0, 50.0),
            (-2.0 / 3600.0, 2.0 / 3600.0),
            Frame::Icrs,
        )
        .unwrap();
        let pa = |theta: f64| sky_pa_deg(&wcs, 50.0, 50.0, theta).unwrap();
        assert!(
            pa(std::f64::consts::FRAC_PI_2).min(180.0 - pa(std::f64::consts::FRAC_PI_2)) < 0.01
        );
        assert!((pa(0.0) - 90.0).abs() < 0.01, "{}", pa(0.0));
        // From +x towards +y by 45°: north-west, i.e. PA 135° (= −45°).
        assert!((pa(std::f64::consts::FRAC_PI_4) - 135.0).abs() < 0.01);
    }
}
