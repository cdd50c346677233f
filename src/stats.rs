//! Robust statistics: median and MAD-based rms by selection (no full sort), on pixel data
//! (`f32`) and on measurements (`f64`: offsets, ratios, per-box noise).
//!
//! Invariant: NaN and infinite values are ignored; an input with no finite values gives `None`.

/// Median of `values` by selection; reorders the slice. Even lengths give the mean of the two
/// middle values, as numpy does.
pub fn median_in_place(values: &mut [f32]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (lower, upper_mid, _) = values.select_nth_unstable_by(mid, f32::total_cmp);
    let upper = f64::from(*upper_mid);
    if n % 2 == 1 {
        return Some(upper);
    }
    // The largest value of the lower half is the other middle value.
    let lower_max = f64::from(lower.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    Some(0.5 * (lower_max + upper))
}

/// Robust location and scale of the finite values: (median, 1.4826 · MAD).
pub fn robust_stats<'a, I>(values: I) -> Option<(f64, f64)>
where
    I: IntoIterator<Item = &'a f32>,
{
    let mut finite: Vec<f32> = values
        .into_iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let median = median_in_place(&mut finite)?;
    for v in finite.iter_mut() {
        *v = (f64::from(*v) - median).abs() as f32;
    }
    let mad = median_in_place(&mut finite)?;
    Some((median, 1.482_6 * mad))
}

/// 1.4826 · MAD of the finite values.
pub fn robust_rms<'a, I>(values: I) -> Option<f64>
where
    I: IntoIterator<Item = &'a f32>,
{
    robust_stats(values).map(|(_, rms)| rms)
}

/// Median of the finite values (numpy's definition: the mean of the two middle values for even
/// lengths).
pub fn median_f64(values: &[f64]) -> Option<f64> {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    median_f64_in_place(&mut finite)
}

/// Median of `values` (all finite) by selection; reorders the slice.
fn median_f64_in_place(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (lower, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower_max = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(0.5 * (lower_max + upper))
}

/// Robust location and scale of the finite values: (median, 1.4826 · MAD), the scale being the
/// standard deviation for Gaussian data.
pub fn robust_stats_f64(values: &[f64]) -> Option<(f64, f64)> {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let median = median_f64_in_place(&mut finite)?;
    for v in finite.iter_mut() {
        *v = (*v - median).abs();
    }
    let mad = median_f64_in_place(&mut finite)?;
    Some((median, 1.482_6 * mad))
}

/// FWHM of a Gaussian in standard deviations: 2·√(2 ln 2).
pub const FWHM_PER_SIGMA: f64 = 2.354_820_045_030_949_3;

/// Standard error of the median of `n` Gaussian samples of standard deviation `scale`:
/// √(π/2) · scale / √n (the median is less efficient than the mean by that factor).
pub fn median_standard_error(scale: f64, n: usize) -> f64 {
    (std::f64::consts::PI / 2.0).sqrt() * scale / (n as f64).sqrt()
}

/// The radius, in standard errors, that a 2-D Gaussian offset exceeds by chance as rarely as a
/// 1-D one exceeds ±`k` σ: √(−2 ln p) with p = erfc(k/√2) (3σ: p = 0.0027, radius 3.44).
pub fn two_d_equivalent(k: f64) -> f64 {
    (-2.0 * erfc(k / std::f64::consts::SQRT_2).ln()).sqrt()
}

/// The z with P(Z > z) = `p` for a standard normal Z (one-sided), by bisection on erfc; `p` is
/// clamped to [1e-300, 0.5].
pub fn normal_upper_quantile(p: f64) -> f64 {
    let p = p.clamp(1e-300, 0.5);
    let (mut lo, mut hi) = (0.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if 0.5 * erfc(mid / std::f64::consts::SQRT_2) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The complementary error function (Numerical Recipes' erfcc, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod quantile_tests {
    #[test]
    fn upper_quantiles_match_the_tables() {
        for (p, z) in [
            (0.5, 0.0),
            (0.158_655, 1.0),
            (0.001_35, 3.0),
            (2.867e-7, 5.0),
        ] {
            let got = super::normal_upper_quantile(p);
            assert!((got - z).abs() < 2e-3, "p {p}: {got} vs {z}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_matches_sorted_definition() {
        let mut odd = vec![5.0, 1.0, 3.0, f32::NAN, 2.0, 4.0];
        assert_eq!(robust_stats(&odd).unwrap().0, 3.0);
        odd.retain(|v| !v.is_nan());
        odd.push(6.0);
        assert_eq!(median_in_place(&mut odd), Some(3.5));
    }

    #[test]
    fn mad_of_known_set() {
        // values 1..=9: median 5, |dev| = 4,3,2,1,0,1,2,3,4 -> MAD 2
        let v: Vec<f32> = (1..=9).map(|i| i as f32).collect();
        let (m, s) = robust_stats(&v).unwrap();
        assert_eq!(m, 5.0);
        assert!((s - 2.0 * 1.4826).abs() < 1e-9);
    }

    #[test]
    fn f64_versions_agree_with_the_f32_ones() {
        let v: Vec<f64> = vec![9.0, 1.0, f64::NAN, 4.0, 2.0, 7.0, 3.0];
        assert_eq!(median_f64(&v), Some(3.5));
        let (m, s) = robust_stats_f64(&v[..6]).unwrap();
        let f: Vec<f32> = v[..6].iter().map(|x| *x as f32).collect();
        let (mf, sf) = robust_stats(&f).unwrap();
        assert!((m - mf).abs() < 1e-12 && (s - sf).abs() < 1e-6);
        assert_eq!(median_f64(&[]), None);
        assert!((median_standard_error(2.0, 100) - 0.250_663).abs() < 1e-6);
        // 3 sigma two-sided is p = 0.0027: a 2-D radius of 3.44; 1 sigma (p = 0.3173) is 1.515.
        assert!(
            (two_d_equivalent(3.0) - 3.4396).abs() < 1e-3,
            "{}",
            two_d_equivalent(3.0)
        );
        assert!((two_d_equivalent(1.0) - 1.5152).abs() < 1e-3);
    }

    #[test]
    fn all_blank_is_none() {
        assert!(robust_rms(&[f32::NAN, f32::INFINITY]).is_none());
        assert!(robust_rms(&[]).is_none());
    }
}
