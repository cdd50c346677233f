//! Positional cross-match with a declination-zone index (the "zones" algorithm of Gray et al.):
//! the sky is cut into Dec bands as tall as the match radius, each band sorted by RA; a query
//! looks at three bands and, in each, the RA interval ±r/cos δ found by binary search (both sides
//! of RA 0h/360h when the interval wraps). Building is O(N log N), a query O(log N + k).
//!
//! Invariants: matches are one-to-one: each found source takes its nearest reference within the
//! radius (great-circle separation), and a reference claimed by several found sources keeps only
//! the nearest of them; offsets are found − reference, ΔRA measured as ΔRA·cos δ on the tangent plane, in arcsec.

use serde::Serialize;

use crate::wcs::separation_deg;

/// The index over a reference catalogue.
pub struct ZoneIndex {
    radius_deg: f64,
    zone_h: f64,
    /// Per zone: (ra, dec, original row) sorted by ra.
    zones: Vec<Vec<(f64, f64, u32)>>,
}

impl ZoneIndex {
    /// Builds the index for searches up to `radius_deg`.
    pub fn new(ra: &[f64], dec: &[f64], radius_deg: f64) -> ZoneIndex {
        let zone_h = radius_deg.clamp(1e-5, 10.0);
        let nz = (180.0 / zone_h).ceil() as usize + 1;
        let mut zones: Vec<Vec<(f64, f64, u32)>> = vec![Vec::new(); nz];
        for (i, (&r, &d)) in ra.iter().zip(dec).enumerate() {
            let z = (((d + 90.0) / zone_h) as usize).min(nz - 1);
            zones[z].push((r.rem_euclid(360.0), d, i as u32));
        }
        for z in &mut zones {
            z.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        ZoneIndex {
            radius_deg,
            zone_h,
            zones,
        }
    }

    /// The nearest row within the radius of (ra, dec), with its separation (deg).
    pub fn nearest(&self, ra: f64, dec: f64) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        self.each_within(ra, dec, self.radius_deg, |row, s| {
            if best.is_none_or(|(_, b)| s < b) {
                best = Some((row, s));
            }
        });
        best
    }

    /// Every row within the radius of (ra, dec), with its separation (deg).
    pub fn within(&self, ra: f64, dec: f64) -> Vec<(usize, f64)> {
        self.within_radius(ra, dec, self.radius_deg)
    }

    /// Every row within `r_deg` of (ra, dec) — any radius: a larger one than the index was built
    /// for looks at more zones — with its separation (deg).
    pub fn within_radius(&self, ra: f64, dec: f64, r_deg: f64) -> Vec<(usize, f64)> {
        let mut out = Vec::new();
        self.each_within(ra, dec, r_deg, |row, s| out.push((row, s)));
        out
    }

    fn each_within(&self, ra: f64, dec: f64, r: f64, mut visit: impl FnMut(usize, f64)) {
        let nz = self.zones.len();
        let z0 = (((dec - r + 90.0) / self.zone_h).floor().max(0.0) as usize).min(nz - 1);
        let z1 = (((dec + r + 90.0) / self.zone_h).floor().max(0.0) as usize).min(nz - 1);
        let cosd = (dec.abs() + r).min(89.999_999).to_radians().cos();
        let dra = if dec.abs() + r >= 89.9 {
            180.0
        } else {
            (r / cosd).min(180.0)
        };
        let mut check = |zone: &[(f64, f64, u32)], lo: f64, hi: f64| {
            let start = zone.partition_point(|e| e.0 < lo);
            for e in &zone[start..] {
                if e.0 > hi {
                    break;
                }
                let s = separation_deg((ra, dec), (e.0, e.1));
                if s <= r {
                    visit(e.2 as usize, s);
                }
            }
        };
        for zone in &self.zones[z0..=z1] {
            if dra >= 180.0 {
                check(zone, 0.0, 360.0);
                continue;
            }
            let (lo, hi) = (ra - dra, ra + dra);
            check(zone, lo.max(0.0), hi.min(360.0));
            if lo < 0.0 {
                check(zone, lo + 360.0, 360.0);
            }
            if hi > 360.0 {
                check(zone, 0.0, hi - 360.0);
            }
        }
    }
}

/// One matched pair.
#[derive(Debug, Clone, Serialize)]
pub struct Match {
    pub source: usize,
    pub reference: usize,
    pub dra_arcsec: f64,
    pub ddec_arcsec: f64,
    pub sep_arcsec: f64,
    /// Found peak / reference flux, when the reference has a flux.
    pub flux_ratio: Option<f64>,
}

/// Offset (found − reference) as (ΔRA·cos δ, ΔDec) in arcsec on the tangent plane at the reference.
pub fn offset_arcsec(found: (f64, f64), reference: (f64, f64)) -> (f64, f64) {
    let (a, d) = (found.0.to_radians(), found.1.to_radians());
    let (a0, d0) = (reference.0.to_radians(), reference.1.to_radians());
    // Gnomonic projection of `found` about `reference`.
    let cosc = d0.sin() * d.sin() + d0.cos() * d.cos() * (a - a0).cos();
    let xi = d.cos() * (a - a0).sin() / cosc;
    let eta = (d0.cos() * d.sin() - d0.sin() * d.cos() * (a - a0).cos()) / cosc;
    (xi.to_degrees() * 3600.0, eta.to_degrees() * 3600.0)
}

/// The bulk offset of a set of found positions against a reference, found before any
/// one-to-one match so that a shift of several beams is measured rather than missed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct BulkOffset {
    /// Found − reference, ΔRA·cos δ and ΔDec (arcsec).
    pub dra_arcsec: f64,
    pub ddec_arcsec: f64,
    /// Pairs voting for it (within one cell of the peak) and the number chance alone would put
    /// there (every pair's offset spread evenly over the search disc).
    pub votes: usize,
    pub chance_votes: f64,
    /// Search radius and cell size (arcsec).
    pub search_arcsec: f64,
    pub cell_arcsec: f64,
}

/// Votes over every (found, reference) pair closer than `index`'s radius: each pair's offset
/// falls in a cell of `cell_arcsec`; the cell (with its eight neighbours) holding the most votes
/// is the bulk offset, refined as the median of the offsets in it. `None` when the peak is not
/// significant: fewer than `min_votes` votes, or not at least 5 Poisson standard deviations
/// above what chance pairs put in a 3×3-cell block.
pub fn bulk_offset(
    found: &[(f64, f64)],
    index: &ZoneIndex,
    ref_ra: &[f64],
    ref_dec: &[f64],
    cell_arcsec: f64,
    min_votes: usize,
) -> Option<BulkOffset> {
    let search = index.radius_deg * 3600.0;
    let offsets: Vec<(f64, f64)> = found
        .iter()
        .flat_map(|&(ra, dec)| {
            index
                .within(ra, dec)
                .into_iter()
                .map(move |(j, _)| offset_arcsec((ra, dec), (ref_ra[j], ref_dec[j])))
        })
        .collect();
    if offsets.is_empty() || cell_arcsec.is_nan() || cell_arcsec <= 0.0 {
        return None;
    }
    let n = (search / cell_arcsec).ceil() as i64;
    let side = (2 * n + 1) as usize;
    let mut grid = vec![0u32; side * side];
    let cell_of = |(x, y): (f64, f64)| {
        let i = ((x / cell_arcsec).round() as i64 + n).clamp(0, 2 * n) as usize;
        let j = ((y / cell_arcsec).round() as i64 + n).clamp(0, 2 * n) as usize;
        (i, j)
    };
    for &o in &offsets {
        let (i, j) = cell_of(o);
        grid[j * side + i] += 1;
    }
    let block = |i: usize, j: usize| -> u32 {
        let mut sum = 0;
        for jj in j.saturating_sub(1)..=(j + 1).min(side - 1) {
            for ii in i.saturating_sub(1)..=(i + 1).min(side - 1) {
                sum += grid[jj * side + ii];
            }
        }
        sum
    };
    let (mut best, mut at) = (0u32, (n as usize, n as usize));
    for j in 0..side {
        for i in 0..side {
            let b = block(i, j);
            // Ties go to the cell nearer zero offset.
            let nearer = || {
                let d = |(a, b): (usize, usize)| (a as i64 - n).pow(2) + (b as i64 - n).pow(2);
                d((i, j)) < d(at)
            };
            if b > best || (b == best && nearer()) {
                best = b;
                at = (i, j);
            }
        }
    }
    let area = std::f64::consts::PI * search * search;
    let chance = offsets.len() as f64 * 9.0 * cell_arcsec * cell_arcsec / area;
    let significant = f64::from(best) >= chance + 5.0 * chance.sqrt().max(1.0);
    if (best as usize) < min_votes || !significant {
        return None;
    }
    let (ci, cj) = at;
    let near: Vec<(f64, f64)> = offsets
        .iter()
        .copied()
        .filter(|&o| {
            let (i, j) = cell_of(o);
            i.abs_diff(ci) <= 1 && j.abs_diff(cj) <= 1
        })
        .collect();
    let xs: Vec<f64> = near.iter().map(|o| o.0).collect();
    let ys: Vec<f64> = near.iter().map(|o| o.1).collect();
    Some(BulkOffset {
        dra_arcsec: crate::stats::median_f64(&xs)?,
        ddec_arcsec: crate::stats::median_f64(&ys)?,
        votes: best as usize,
        chance_votes: chance,
        search_arcsec: search,
        cell_arcsec,
    })
}

/// A position moved by (ΔRA·cos δ, ΔDec) arcsec on the tangent plane.
pub fn moved(pos: (f64, f64), dra_arcsec: f64, ddec_arcsec: f64) -> (f64, f64) {
    let dec = (pos.1 + ddec_arcsec / 3600.0).clamp(-90.0, 90.0);
    let cosd = pos.1.to_radians().cos().max(1e-9);
    ((pos.0 + dra_arcsec / 3600.0 / cosd).rem_euclid(360.0), dec)
}

/// Matches each found position to its nearest reference within the index's radius, one-to-one
/// (a reference nearest to several found positions is matched to the closest), in found order.
pub fn cross_match(
    found: &[(f64, f64, f64)],
    index: &ZoneIndex,
    ref_ra: &[f64],
    ref_dec: &[f64],
    ref_flux: Option<&[f64]>,
) -> Vec<Match> {
    let candidates: Vec<Match> = found
        .iter()
        .enumerate()
        .filter_map(|(i, &(ra, dec, peak))| {
            let (j, sep) = index.nearest(ra, dec)?;
            let (dra, ddec) = offset_arcsec((ra, dec), (ref_ra[j], ref_dec[j]));
            let flux_ratio = ref_flux
                .map(|f| f[j])
                .filter(|f| f.is_finite() && *f > 0.0)
                .map(|f| peak / f);
            Some(Match {
                source: i,
                reference: j,
                dra_arcsec: dra,
                ddec_arcsec: ddec,
                sep_arcsec: sep * 3600.0,
                flux_ratio,
            })
        })
        .collect();
    let mut closest: std::collections::HashMap<usize, (usize, f64)> = Default::default();
    for (k, m) in candidates.iter().enumerate() {
        let e = closest.entry(m.reference).or_insert((k, m.sep_arcsec));
        if m.sep_arcsec < e.1 {
            *e = (k, m.sep_arcsec);
        }
    }
    candidates
        .into_iter()
        .enumerate()
        .filter(|(k, m)| closest[&m.reference].0 == *k)
        .map(|(_, m)| m)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn zones_agree_with_brute_force_including_wrap_and_pole() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let n = 20000;
        let ra: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..360.0)).collect();
        let dec: Vec<f64> = (0..n)
            .map(|_| rng.random_range(-1.0f64..1.0).asin().to_degrees())
            .collect();
        let r = 1.5;
        let idx = ZoneIndex::new(&ra, &dec, r);
        let mut queries: Vec<(f64, f64)> = (0..300)
            .map(|_| {
                (
                    rng.random_range(0.0..360.0),
                    rng.random_range(-1.0f64..1.0).asin().to_degrees(),
                )
            })
            .collect();
        queries.extend([(0.1, 10.0), (359.9, -20.0), (45.0, 89.5), (200.0, -89.9)]);
        for (qa, qd) in queries {
            let brute = (0..n)
                .map(|j| (j, separation_deg((qa, qd), (ra[j], dec[j]))))
                .filter(|(_, s)| *s <= r)
                .min_by(|a, b| a.1.total_cmp(&b.1));
            assert_eq!(idx.nearest(qa, qd).map(|b| b.0), brute.map(|b| b.0));
        }
    }

    #[test]
    fn a_shift_of_several_match_radii_is_found_by_votes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let n = 200;
        let ra: Vec<f64> = (0..n).map(|_| rng.random_range(150.0..152.0)).collect();
        let dec: Vec<f64> = (0..n).map(|_| rng.random_range(30.0..32.0)).collect();
        // Found = reference moved by (+40", −25"), i.e. 2 beams of 24" — far beyond a match radius.
        let found: Vec<(f64, f64)> = ra
            .iter()
            .zip(&dec)
            .map(|(&a, &d)| moved((a, d), 40.0, -25.0))
            .collect();
        let idx = ZoneIndex::new(&ra, &dec, 5.0 * 24.0 / 3600.0);
        let b = bulk_offset(&found, &idx, &ra, &dec, 6.0, 5).unwrap();
        assert!(
            (b.dra_arcsec - 40.0).abs() < 0.1 && (b.ddec_arcsec + 25.0).abs() < 0.1,
            "{b:?}"
        );
        // Unrelated positions: no significant peak.
        let other: Vec<(f64, f64)> = (0..n)
            .map(|_| (rng.random_range(150.0..152.0), rng.random_range(30.0..32.0)))
            .collect();
        assert!(bulk_offset(&other, &idx, &ra, &dec, 6.0, 5).is_none());
    }

    #[test]
    fn matches_are_one_to_one() {
        // Two found sources near one reference: only the nearer keeps it.
        let idx = ZoneIndex::new(&[10.0, 20.0], &[0.0, 0.0], 0.01);
        let found = [
            (10.0 + 9.0 / 3600.0, 0.0, 1.0),
            (10.0 + 3.0 / 3600.0, 0.0, 1.0),
            (20.0, 0.0, 1.0),
        ];
        let m = cross_match(&found, &idx, &[10.0, 20.0], &[0.0, 0.0], None);
        let pairs: Vec<(usize, usize)> = m.iter().map(|m| (m.source, m.reference)).collect();
        assert_eq!(pairs, [(1, 0), (2, 1)]);
    }

    #[test]
    fn offsets_have_the_documented_sign() {
        let (dra, ddec) = offset_arcsec(
            (10.0 + 2.0 / 3600.0 / 60f64.to_radians().cos(), 60.0),
            (10.0, 60.0),
        );
        assert!(
            (dra - 2.0).abs() < 1e-4 && ddec.abs() < 1e-3,
            "{dra} {ddec}"
        );
        let (dra, ddec) = offset_arcsec((359.9999, 0.0), (0.0001, 1.0 / 3600.0));
        assert!(
            (dra + 0.72).abs() < 1e-3 && (ddec + 1.0).abs() < 1e-3,
            "{dra} {ddec}"
        );
    }
}
