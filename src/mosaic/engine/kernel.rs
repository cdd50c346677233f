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
            Interpolation::Lanczos3 => self.lanczos3_tabulated(x, y),
        }
    }

    /// Lanczos-3 with its weights from the direct formula ([`lanczos3_weights`], three trig
    /// calls per axis): the reference the tabulated kernel is tested against.
    #[inline(always)]
    pub fn sample_lanczos3_direct(&self, x: f64, y: f64) -> f32 {
        self.separable::<6>(x, y, lanczos3_weights)
    }

    /// Lanczos-3 with its weights interpolated in [`LANCZOS3_TABLE`]: no trigonometry, and
    /// inside the image a branch-free 6×6 sum in 4-wide vectors (SSE on x86-64).
    #[inline(always)]
    fn lanczos3_tabulated(&self, x: f64, y: f64) -> f32 {
        let table = &*LANCZOS3_TABLE;
        let (ix, rx, ux) = table.split(x);
        let (iy, ry, uy) = table.split(y);
        let wx = rx.interpolate(ux);
        let wy = ry.interpolate(uy);
        let (x0, y0) = (ix - 2, iy - 2);
        if x0 >= 0 && y0 >= 0 && x0 + 6 <= self.nx as i64 && y0 + 6 <= self.ny as i64 {
            let acc = taps6(
                self.data,
                self.nx,
                x0 as usize + y0 as usize * self.nx,
                &wx,
                &wy,
            );
            if !acc.is_nan() {
                return acc;
            }
        }
        self.taps_checked(x0, y0, &unpack(&wx), &unpack(&wy))
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

/// Lanczos-3 with the weights from the direct formula, not the table: the reference of the
/// accuracy tests (`BuildOptions::direct_kernel`).
pub struct Lanczos3DirectK;
impl Kernel for Lanczos3DirectK {
    const KIND: Interpolation = Interpolation::Lanczos3;
    #[inline(always)]
    fn sample(p: &Plane, x: f64, y: f64) -> f32 {
        p.sample_lanczos3_direct(x, y)
    }
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

/// Six Lanczos-3 weights (taps −2..=3) in two 4-wide lanes: [w0 w1 w2 w3 | 0 0 w4 w5], so that
/// the second lane pairs with the taps 2..6 of an image row (a load that overlaps the first).
pub type Packed6 = [f32; 8];

/// Unpacks [`Packed6`] to the six weights in tap order.
#[inline(always)]
pub fn unpack(w: &Packed6) -> [f32; 6] {
    [w[0], w[1], w[2], w[3], w[6], w[7]]
}

/// One sub-pixel phase of [`Lanczos3Table`]: the weights at t = k / PHASES, and their change to
/// the next phase (one cache line).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct PhaseRow {
    w: Packed6,
    dw: Packed6,
}

impl PhaseRow {
    /// The weights a fraction `u` (in [0, 1]) of the way to the next phase.
    #[inline(always)]
    pub fn interpolate(&self, u: f32) -> Packed6 {
        std::array::from_fn(|i| self.w[i] + u * self.dw[i])
    }
}

/// Lanczos-3 weights tabulated at [`Lanczos3Table::PHASES`] sub-pixel phases t = k / PHASES
/// (each normalised to sum 1, computed in f64 from the direct formula) and interpolated linearly
/// between phases: no trigonometry per sample. Interpolated weights still sum to 1 (to rounding)
/// and differ from [`lanczos3_weights`] by less than 1e-6 (tested:
/// `lanczos3_table_matches_the_direct_formula`).
pub struct Lanczos3Table {
    rows: Box<[PhaseRow; Lanczos3Table::PHASES]>,
}

/// The one table, built on first use (64 KiB).
pub static LANCZOS3_TABLE: std::sync::LazyLock<Lanczos3Table> =
    std::sync::LazyLock::new(Lanczos3Table::new);

impl Lanczos3Table {
    pub const PHASES: usize = 1024;
    const SHIFT: u32 = 10; // log2(PHASES)

    fn new() -> Lanczos3Table {
        const LANE: [usize; 6] = [0, 1, 2, 3, 6, 7];
        let at = |k: usize| lanczos3_weights_f64(k as f64 / Self::PHASES as f64);
        let rows: Vec<PhaseRow> = (0..Self::PHASES)
            .map(|k| {
                let (a, b) = (at(k), at(k + 1));
                let mut row = PhaseRow {
                    w: [0.0; 8],
                    dw: [0.0; 8],
                };
                for (i, &lane) in LANE.iter().enumerate() {
                    row.w[lane] = a[i] as f32;
                    row.dw[lane] = (b[i] - a[i]) as f32;
                }
                row
            })
            .collect();
        Lanczos3Table {
            rows: rows
                .try_into()
                .unwrap_or_else(|_| unreachable!("PHASES rows")),
        }
    }

    /// Splits a position into floor(x), the table row of its phase and the fraction of the way
    /// to the next row, from one floor of x·PHASES. Positions are clamped to |x| < 2^32 (far
    /// off any image); NaN is taken as 0 (callers never pass one: the sample is NaN anyway
    /// when an image has no pixel there).
    // Unsafe: a float-to-int cast without the saturation check, on the hot path of every pixel.
    // Not `clamp`: clamp keeps a NaN, max/min map it to a bound.
    #[allow(unsafe_code, clippy::manual_clamp)]
    #[inline(always)]
    pub fn split(&self, x: f64) -> (i64, &PhaseRow, f32) {
        const OFF: f64 = 4_398_046_511_104.0; // 2^42
        // max/min map NaN to the bound, so s is finite and s + OFF lies in [1, 2^43].
        let s = (x * Self::PHASES as f64).max(1.0 - OFF).min(OFF);
        // SAFETY: s + OFF is finite and in [1, 2^43], which fits an i64.
        let si = unsafe { (s + OFF).to_int_unchecked::<i64>() } - OFF as i64; // floor(s)
        let u = (s - si as f64) as f32;
        let k = (si & (Self::PHASES as i64 - 1)) as usize;
        (si >> Self::SHIFT, &self.rows[k], u)
    }

    /// The six interpolated weights at t in [0, 1) (taps −2..=3 from floor(x)).
    pub fn weights(&self, t: f64) -> [f32; 6] {
        let (i, row, u) = self.split(t);
        debug_assert_eq!(i, 0, "t = {t} is not in [0, 1)");
        unpack(&row.interpolate(u))
    }
}

/// Σ_j wy_j Σ_i wx_i I[start + j·nx + i] over a 6×6 block that lies inside `data` (the caller
/// checked), with weights as [`Packed6`]: rows summed as 4-wide vectors, then one dot product.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[inline(always)]
fn taps6(data: &[f32], nx: usize, start: usize, wx: &Packed6, wy: &Packed6) -> f32 {
    use std::arch::x86_64::*;
    assert!(start + 5 * nx + 6 <= data.len());
    const LANE: [usize; 6] = [0, 1, 2, 3, 6, 7];
    // SAFETY: the assert above keeps every load (six floats from start + j·nx, j < 6) inside
    // `data`; SSE2 is part of the x86-64 baseline; unaligned loads (loadu) are allowed.
    unsafe {
        let p = data.as_ptr().add(start);
        let mut lo = _mm_setzero_ps();
        let mut hi = _mm_setzero_ps();
        for (j, &lane) in LANE.iter().enumerate() {
            let row = p.add(j * nx);
            let w = _mm_set1_ps(wy[lane]);
            lo = _mm_add_ps(lo, _mm_mul_ps(w, _mm_loadu_ps(row)));
            hi = _mm_add_ps(hi, _mm_mul_ps(w, _mm_loadu_ps(row.add(2))));
        }
        let (wlo, whi) = (_mm_loadu_ps(wx.as_ptr()), _mm_loadu_ps(wx.as_ptr().add(4)));
        let s = _mm_add_ps(_mm_mul_ps(wlo, lo), _mm_mul_ps(whi, hi));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
        _mm_cvtss_f32(s)
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn taps6(data: &[f32], nx: usize, start: usize, wx: &Packed6, wy: &Packed6) -> f32 {
    taps6_portable(data, nx, start, wx, wy)
}

/// [`taps6`] in plain Rust (other architectures; the reference of the SIMD one in the tests).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn taps6_portable(data: &[f32], nx: usize, start: usize, wx: &Packed6, wy: &Packed6) -> f32 {
    let (wx, wy) = (unpack(wx), unpack(wy));
    let block = &data[start..start + 5 * nx + 6];
    let mut v = [0.0f32; 6];
    for (j, &wyj) in wy.iter().enumerate() {
        let row: &[f32; 6] = block[j * nx..j * nx + 6].try_into().expect("six taps");
        for i in 0..6 {
            v[i] += wyj * row[i];
        }
    }
    let mut acc = 0.0f32;
    for i in 0..6 {
        acc += wx[i] * v[i];
    }
    acc
}

/// The direct Lanczos-3 formula in f64 at t in [0, 1], normalised to sum 1 (the table's source).
fn lanczos3_weights_f64(t: f64) -> [f64; 6] {
    let mut w = [0.0f64; 6];
    for (k, wk) in w.iter_mut().enumerate() {
        let d = t + 2.0 - k as f64;
        *wk = if d.abs() < 1e-12 {
            1.0
        } else if d.abs() >= 3.0 || d.fract() == 0.0 {
            0.0
        } else {
            let pd = std::f64::consts::PI * d;
            3.0 * pd.sin() * (pd / 3.0).sin() / (pd * pd)
        };
    }
    let s: f64 = w.iter().sum();
    w.map(|v| v / s)
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

    /// The direct formula in f64, normalised (the test's own copy, independent of the table).
    fn direct_f64(t: f64) -> [f64; 6] {
        let mut w = [0.0f64; 6];
        for (k, wk) in w.iter_mut().enumerate() {
            let d = t + 2.0 - k as f64;
            let pd = std::f64::consts::PI * d;
            *wk = if d.abs() < 1e-12 {
                1.0
            } else {
                3.0 * pd.sin() * (pd / 3.0).sin() / (pd * pd)
            };
        }
        let s: f64 = w.iter().sum();
        w.map(|v| v / s)
    }

    #[test]
    fn lanczos3_table_matches_the_direct_formula() {
        // Every phase, the points between phases (where linear interpolation errs most) and a
        // dense sweep: the tabulated weights stay within 1e-6 of the formula, and sum to 1.
        let table = &*LANCZOS3_TABLE;
        let n = Lanczos3Table::PHASES * 64;
        let mut worst: f64 = 0.0;
        for i in 0..n {
            let t = i as f64 / n as f64;
            let w = table.weights(t);
            let d = direct_f64(t);
            for k in 0..6 {
                worst = worst.max((f64::from(w[k]) - d[k]).abs());
            }
            let sum: f64 = w.iter().map(|&v| f64::from(v)).sum();
            assert!((sum - 1.0).abs() < 1e-6, "t {t}: weights sum to {sum}");
        }
        assert!(worst < 1e-6, "largest weight error {worst:e}");
        // Integer positions give the pixel's own weight exactly.
        assert_eq!(table.weights(0.0), [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        // And a sample differs from the direct formula's by well under 1e-5 of the pixels' scale.
        let (nx, ny) = (40, 30);
        let d: Vec<f32> = (0..nx * ny)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let p = Plane { data: &d, nx, ny };
        let mut worst_sample: f64 = 0.0;
        for i in 0..5000 {
            let x = 3.0 + 33.0 * ((f64::from(i) * 0.618_034) % 1.0);
            let y = 3.0 + 23.0 * ((f64::from(i) * 0.414_214) % 1.0);
            let a = p.sample(Interpolation::Lanczos3, x, y);
            let b = p.sample_lanczos3_direct(x, y);
            worst_sample = worst_sample.max(f64::from((a - b).abs()));
        }
        assert!(
            worst_sample < 1e-5,
            "largest sample difference {worst_sample:e}"
        );
    }

    #[test]
    fn simd_taps_equal_the_portable_sum() {
        let (nx, ny) = (17, 9);
        let d: Vec<f32> = (0..nx * ny).map(|i| (i as f32 * 0.37).sin()).collect();
        let table = &*LANCZOS3_TABLE;
        for (i, t) in [0.0, 0.13, 0.5, 0.77, 0.999].iter().enumerate() {
            let (_, rx, ux) = table.split(*t);
            let (_, ry, uy) = table.split(1.0 - t);
            let (wx, wy) = (rx.interpolate(ux), ry.interpolate(uy));
            for start in [0, i, nx + 3, 3 * nx + 11] {
                let a = taps6(&d, nx, start, &wx, &wy);
                let b = taps6_portable(&d, nx, start, &wx, &wy);
                assert!((a - b).abs() < 1e-6, "{a} {b}");
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
