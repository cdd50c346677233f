//! Interpolation kernels for resampling an input image at fractional pixel positions.
//!
//! NaN policy (no renormalisation): a sample is NaN when any tap with a non-negligible weight
//! (|w| > 1e-6) falls on a NaN pixel or outside the image. Taps with negligible weight are
//! skipped, so resampling at (numerically) integer positions returns the pixel itself with every
//! kernel, right up to the image edge. Kernels: nearest; bilinear; bicubic convolution (Keys,
//! a = −0.5, 4×4 taps); Lanczos-3 (6×6 taps, weights normalised to sum 1 per axis).
//! Pixels are 0-based with centres on integers; `data` is row-major (rows = y).

use serde::{Deserialize, Serialize};

/// The interpolation used to resample inputs onto the output grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    Nearest,
    Bilinear,
    Bicubic,
    Lanczos3,
}

impl Interpolation {
    /// Every kernel, in the order they are listed to a user; their [`Interpolation::name`]s are
    /// the one list that tiers (`interpolation = "..."`) and `build --interpolation` accept.
    pub const ALL: &[Interpolation] = &[
        Interpolation::Nearest,
        Interpolation::Bilinear,
        Interpolation::Bicubic,
        Interpolation::Lanczos3,
    ];

    pub fn names() -> Vec<&'static str> {
        Interpolation::ALL.iter().map(Interpolation::name).collect()
    }

    /// The kernel of this exact name (one of [`Interpolation::names`]).
    pub fn from_name(s: &str) -> Option<Interpolation> {
        Interpolation::ALL.iter().copied().find(|i| i.name() == s)
    }

    /// Parses an interpolation name leniently, in any case: nearest, bilinear, bicubic, lanczos3
    /// (aliases linear, cubic, lanczos, higher-order).
    pub fn parse(s: &str) -> Option<Interpolation> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nearest" => Some(Interpolation::Nearest),
            "bilinear" | "linear" => Some(Interpolation::Bilinear),
            "bicubic" | "cubic" => Some(Interpolation::Bicubic),
            "lanczos3" | "lanczos" | "higher-order" | "higher_order" => {
                Some(Interpolation::Lanczos3)
            }
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Interpolation::Nearest => "nearest",
            Interpolation::Bilinear => "bilinear",
            Interpolation::Bicubic => "bicubic",
            Interpolation::Lanczos3 => "lanczos3",
        }
    }

    /// Half-width of the kernel support in pixels (how far beyond the image a sample can reach).
    pub fn support(&self) -> usize {
        match self {
            Interpolation::Nearest => 0,
            Interpolation::Bilinear => 1,
            Interpolation::Bicubic => 2,
            Interpolation::Lanczos3 => 3,
        }
    }
}

/// A borrowed image plane: row-major, rows = y.
#[derive(Clone, Copy)]
pub struct Plane<'a> {
    pub data: &'a [f32],
    pub nx: usize,
    pub ny: usize,
}

const EPS: f32 = 1e-6;

/// floor() without a libm call or a saturating cast: exact for |x| < 2^20 (callers pass
/// positions within a few pixels of the image); larger |x| is clamped first, far off any image,
/// where it samples as NaN.
// Unsafe: a float-to-int cast without the saturation check, on the hot path of every pixel.
#[allow(unsafe_code)]
#[inline(always)]
fn ffloor(x: f64) -> f64 {
    const OFF: f64 = 1_048_576.0;
    let shifted = (x.clamp(-OFF + 1.0, OFF) + OFF).max(0.0);
    // SAFETY: `shifted` is finite (clamp maps ±inf into range; NaN is mapped to 0 by max) and
    // lies in [0, 2^21], which fits an i64.
    let i: i64 = unsafe { shifted.to_int_unchecked() };
    (i - OFF as i64) as f64
}

impl<'a> Plane<'a> {
    #[inline]
    fn at(&self, ix: i64, iy: i64) -> f32 {
        if ix < 0 || iy < 0 || ix >= self.nx as i64 || iy >= self.ny as i64 {
            f32::NAN
        } else {
            // SAFETY-free: bounds checked above.
            self.data[iy as usize * self.nx + ix as usize]
        }
    }

    /// Samples the plane at (x, y) with `interp`; NaN per the module's NaN policy.
    #[inline(always)]
    pub fn sample(&self, interp: Interpolation, x: f64, y: f64) -> f32 {
        match interp {
            Interpolation::Nearest => self.at(ffloor(x + 0.5) as i64, ffloor(y + 0.5) as i64),
            Interpolation::Bilinear => self.bilinear(x, y),
            Interpolation::Bicubic => self.separable::<4>(x, y, keys_weights),
            Interpolation::Lanczos3 => self.separable::<6>(x, y, lanczos3_weights),
        }
    }

    #[inline(always)]
    fn bilinear(&self, x: f64, y: f64) -> f32 {
        let (fx, fy) = (ffloor(x), ffloor(y));
        let (ix, iy) = (fx as i64, fy as i64);
        let (tx, ty) = ((x - fx) as f32, (y - fy) as f32);
        // Fast path: all four taps inside.
        if ix >= 0 && iy >= 0 && ix + 1 < self.nx as i64 && iy + 1 < self.ny as i64 {
            let i = iy as usize * self.nx + ix as usize;
            let d = self.data;
            let top = d[i] + tx * (d[i + 1] - d[i]);
            let bot = d[i + self.nx] + tx * (d[i + self.nx + 1] - d[i + self.nx]);
            // A NaN tap with zero weight must not poison the sum: handle via the slow path.
            let v = top + ty * (bot - top);
            if !v.is_nan() {
                return v;
            }
        }
        self.taps_checked(ix, iy, &[1.0 - tx, tx], &[1.0 - ty, ty])
    }

    /// The slow path of every kernel: Σ wy·wx·I over the taps from (x0, y0), each tap looked up
    /// with bounds and skipped when its weight is negligible, so that an off-image or NaN tap of
    /// zero weight cannot poison the sum (one of real weight makes it NaN).
    fn taps_checked(&self, x0: i64, y0: i64, wx: &[f32], wy: &[f32]) -> f32 {
        let mut acc = 0.0f32;
        for (j, &wyj) in wy.iter().enumerate() {
            if wyj.abs() <= EPS {
                continue;
            }
            for (i, &wxi) in wx.iter().enumerate() {
                if wxi.abs() <= EPS {
                    continue;
                }
                acc += wyj * wxi * self.at(x0 + i as i64, y0 + j as i64);
            }
        }
        acc
    }

    #[inline(always)]
    fn separable<const N: usize>(&self, x: f64, y: f64, weights: fn(f32) -> [f32; N]) -> f32 {
        let (fx, fy) = (ffloor(x), ffloor(y));
        let (ix, iy) = (fx as i64, fy as i64);
        let wx = weights((x - fx) as f32);
        let wy = weights((y - fy) as f32);
        let off = (N as i64) / 2 - 1; // taps ix-off ..= ix-off+N-1
        let (x0, y0) = (ix - off, iy - off);
        let inside = x0 >= 0
            && y0 >= 0
            && x0 + N as i64 <= self.nx as i64
            && y0 + N as i64 <= self.ny as i64;
        if inside {
            let mut acc = 0.0f32;
            for (j, &wyj) in wy.iter().enumerate() {
                let row = &self.data[(y0 as usize + j) * self.nx + x0 as usize..][..N];
                let mut r = 0.0f32;
                for i in 0..N {
                    r += wx[i] * row[i];
                }
                acc += wyj * r;
            }
            if !acc.is_nan() {
                return acc;
            }
        }
        self.taps_checked(x0, y0, &wx, &wy)
    }
}

/// A kernel as a type, so that a pixel loop can be compiled once per kernel (no dispatch per
/// sample).
pub trait Kernel: Sync {
    const KIND: Interpolation;
    #[inline(always)]
    fn sample(p: &Plane, x: f64, y: f64) -> f32 {
        p.sample(Self::KIND, x, y)
    }
}

pub struct NearestK;
pub struct BilinearK;
pub struct BicubicK;
pub struct Lanczos3K;

impl Kernel for NearestK {
    const KIND: Interpolation = Interpolation::Nearest;
}
impl Kernel for BilinearK {
    const KIND: Interpolation = Interpolation::Bilinear;
}
impl Kernel for BicubicK {
    const KIND: Interpolation = Interpolation::Bicubic;
}
impl Kernel for Lanczos3K {
    const KIND: Interpolation = Interpolation::Lanczos3;
}

/// Keys cubic convolution weights (a = −0.5) for taps at offsets −1, 0, 1, 2 from floor(x).
#[inline]
pub fn keys_weights(t: f32) -> [f32; 4] {
    const A: f32 = -0.5;
    let k1 = |d: f32| ((A + 2.0) * d - (A + 3.0)) * d * d + 1.0; // |d| <= 1
    let k2 = |d: f32| ((A * d - 5.0 * A) * d + 8.0 * A) * d - 4.0 * A; // 1 < |d| < 2
    [k2(1.0 + t), k1(t), k1(1.0 - t), k2(2.0 - t)]
}

/// Lanczos-3 weights for taps at offsets −2..=3 from floor(x), normalised to sum 1.
///
/// w(d) = 3 sin(πd) sin(πd/3) / (πd)² at d = t + 2 − k, with three trigonometric calls per
/// axis instead of twelve: sin(πd) = (−1)^k sin(πt), and sin(πd/3) = sin(a − πk/3) with
/// a = π(t + 2)/3, expanded by the angle-difference formula.
#[inline]
pub fn lanczos3_weights(t: f32) -> [f32; 6] {
    use std::f64::consts::PI;
    const H: f64 = 0.866_025_403_784_438_6; // sin(π/3)
    const COS_K: [f64; 6] = [1.0, 0.5, -0.5, -1.0, -0.5, 0.5];
    const SIN_K: [f64; 6] = [0.0, H, H, 0.0, -H, -H];
    let t = f64::from(t);
    let s_pi_t = (PI * t).sin();
    let (sa, ca) = (PI * (t + 2.0) / 3.0).sin_cos();
    let mut w = [0.0f32; 6];
    let mut s = 0.0f32;
    for (k, wk) in w.iter_mut().enumerate() {
        let d = t + 2.0 - k as f64;
        let v = if d.abs() < 1e-7 {
            1.0
        } else if d.abs() >= 3.0 {
            0.0
        } else {
            let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
            let sin_d3 = sa * COS_K[k] - ca * SIN_K[k];
            3.0 * sign * s_pi_t * sin_d3 / (PI * PI * d * d)
        };
        *wk = v as f32;
        s += *wk;
    }
    for wk in w.iter_mut() {
        *wk /= s;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(nx: usize, ny: usize) -> Vec<f32> {
        (0..ny)
            .flat_map(|y| (0..nx).map(move |x| 2.0 * x as f32 + 3.0 * y as f32 + 1.0))
            .collect()
    }

    #[test]
    fn weights_sum_to_one_and_interpolate_at_integers() {
        for t in [0.0f32, 0.1, 0.5, 0.77, 0.999] {
            let k: f32 = keys_weights(t).iter().sum();
            let l: f32 = lanczos3_weights(t).iter().sum();
            assert!((k - 1.0).abs() < 1e-6 && (l - 1.0).abs() < 1e-6);
        }
        assert_eq!(keys_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
        let l0 = lanczos3_weights(0.0);
        assert!(
            (l0[2] - 1.0).abs() < 1e-6
                && l0.iter().enumerate().all(|(i, w)| i == 2 || w.abs() < 1e-6)
        );
    }

    #[test]
    fn lanczos_weights_equal_the_direct_formula() {
        for i in 0..=1000 {
            let t = i as f32 / 1000.0;
            let direct: Vec<f64> = (0..6)
                .map(|k| {
                    let d = f64::from(t) + 2.0 - f64::from(k);
                    if d.abs() < 1e-7 {
                        1.0
                    } else if d.abs() >= 3.0 {
                        0.0
                    } else {
                        let pd = std::f64::consts::PI * d;
                        3.0 * pd.sin() * (pd / 3.0).sin() / (pd * pd)
                    }
                })
                .collect();
            let sum: f64 = direct.iter().sum();
            for (k, w) in lanczos3_weights(t).iter().enumerate() {
                assert!(
                    (f64::from(*w) - direct[k] / sum).abs() < 1e-6,
                    "t {t} k {k}"
                );
            }
        }
    }

    #[test]
    fn every_kernel_reproduces_a_linear_ramp_and_integer_pixels_up_to_the_edge() {
        let (nx, ny) = (12, 9);
        let d = ramp(nx, ny);
        let p = Plane { data: &d, nx, ny };
        for k in [
            Interpolation::Bilinear,
            Interpolation::Bicubic,
            Interpolation::Lanczos3,
        ] {
            let v = f64::from(p.sample(k, 5.3, 4.6));
            let tol = if k == Interpolation::Lanczos3 {
                2e-2
            } else {
                1e-4
            };
            assert!((v - (2.0 * 5.3 + 3.0 * 4.6 + 1.0)).abs() < tol, "{k:?} {v}");
            // Integer positions, including corners, give the pixel exactly.
            for &(x, y) in &[(0usize, 0usize), (nx - 1, ny - 1), (3, 8)] {
                assert_eq!(
                    p.sample(k, x as f64, y as f64),
                    d[y * nx + x],
                    "{k:?} at {x},{y}"
                );
            }
            assert!(p.sample(k, -0.5, 3.0).is_nan(), "{k:?} off image");
        }
        assert_eq!(p.sample(Interpolation::Nearest, 2.49, 3.51), d[4 * nx + 2]);
    }

    #[test]
    fn nan_in_support_gives_nan_but_not_outside_it() {
        let (nx, ny) = (12, 12);
        let mut d = ramp(nx, ny);
        d[6 * nx + 6] = f32::NAN;
        let p = Plane { data: &d, nx, ny };
        assert!(p.sample(Interpolation::Bilinear, 5.5, 5.5).is_nan());
        assert!(!p.sample(Interpolation::Bilinear, 4.5, 5.5).is_nan());
        assert!(p.sample(Interpolation::Bicubic, 4.5, 5.5).is_nan());
        assert!(!p.sample(Interpolation::Bicubic, 3.5, 5.5).is_nan());
        assert!(p.sample(Interpolation::Lanczos3, 3.5, 5.5).is_nan());
        assert!(!p.sample(Interpolation::Lanczos3, 2.5, 5.5).is_nan());
    }
}
