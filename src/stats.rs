//! Robust statistics on pixel data: median and MAD-based rms by selection (no full sort).
//!
//! Invariant: NaN and infinite pixels are ignored; an input with no finite values gives `None`.

/// Median of `values` by selection; reorders the slice. Even lengths give the mean of the two
/// middle values, as numpy does.
pub fn median_in_place(values: &mut [f32]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (lower, upper_mid, _) = values.select_nth_unstable_by(mid, f32::total_cmp);
    let upper = *upper_mid as f64;
    if n % 2 == 1 {
        return Some(upper);
    }
    // The largest value of the lower half is the other middle value.
    let lower_max = lower.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
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
        *v = (*v as f64 - median).abs() as f32;
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
    fn all_blank_is_none() {
        assert!(robust_rms(&[f32::NAN, f32::INFINITY]).is_none());
        assert!(robust_rms(&[]).is_none());
    }
}
