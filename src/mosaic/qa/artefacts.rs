//! The artefact score: four named components, each in [0, 1], and their maximum.
//!
//! - `negative_bowls`: around sources brighter than `bright_sigma`, the mean S/N in an annulus
//!   2–6 beam FWHM from the peak (pixels above +5σ excluded); value = median depth in σ
//!   (−mean), score = clamp((value − 0.2) / 0.8). A clean image has value ≈ 0 ± 0.1.
//! - `negative_pixels`: fraction of finite pixels below −5σ; Gaussian noise gives 3·10⁻⁷ per
//!   independent pixel, but pixels come in beam-sized clumps (~10 px), so one chance −5σ dip in
//!   a 0.5-megapixel mosaic is already 2·10⁻⁵: the score starts at 10⁻⁵ and reaches 1 at 10⁻².
//!   score = clamp(log10(fraction / 10⁻⁶) / 3): 10⁻⁶ → 0, 10⁻³ → 1.
//! - `edge_noise`: median of (measured rms / expected noise) over grid nodes whose box touches the
//!   coverage edge, over the same for interior nodes (raw rms when there is no expected-noise map);
//!   score = clamp(value − 1.25).
//! - `striping`: in S/N units, the covariance between the mean of the left and right halves of
//!   every row (top and bottom halves of every column) — noise is independent between halves,
//!   a stripe is common to both — so value = √max(cov, 0) is the stripe amplitude in σ (the larger
//!   of rows and columns); score = clamp((value − 0.1) / 0.4).
//!
//! Invariant: every component is computed or explicitly skipped with a note (score 0).

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::background::BackgroundGrid;
use super::scan::Scan;
use super::sources::{BeamPx, Source};

/// One component.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Component {
    pub score: f64,
    /// The measured quantity the score is derived from (see the module documentation).
    pub value: f64,
    pub note: String,
}

/// The score and its components.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artefacts {
    pub score: f64,
    pub negative_bowls: Component,
    pub negative_pixels: Component,
    pub edge_noise: Component,
    pub striping: Component,
}

fn clamp01(v: f64) -> f64 {
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn skipped(note: &str) -> Component {
    Component {
        score: 0.0,
        value: f64::NAN,
        note: note.to_string(),
    }
}

/// Bowl depth (−mean S/N in the annulus) around each bright source.
pub fn bowl_depths(
    image: ArrayView2<f32>,
    grid: &BackgroundGrid,
    sources: &[Source],
    beam: &BeamPx,
    bright_sigma: f64,
) -> Vec<f64> {
    let (ny, nx) = image.dim();
    let fw = beam.fwhm_px();
    let (r0, r1) = (2.0 * fw, 6.0 * fw);
    sources
        .iter()
        .filter(|s| s.snr >= bright_sigma)
        .take(50)
        .filter_map(|s| {
            let (mut sum, mut n) = (0.0, 0usize);
            let y0 = (s.y - r1).floor().max(0.0) as usize;
            let y1 = ((s.y + r1).ceil() as usize).min(ny.saturating_sub(1));
            let x0 = (s.x - r1).floor().max(0.0) as usize;
            let x1 = ((s.x + r1).ceil() as usize).min(nx.saturating_sub(1));
            for y in y0..=y1 {
                for x in x0..=x1 {
                    let d = ((x as f64 - s.x).powi(2) + (y as f64 - s.y).powi(2)).sqrt();
                    if d < r0 || d > r1 {
                        continue;
                    }
                    let v = image[[y, x]];
                    if !v.is_finite() {
                        continue;
                    }
                    let (b, r) = grid.at(x as f64, y as f64);
                    let snr = f64::from((v - b) / r);
                    if snr < 5.0 {
                        sum += snr;
                        n += 1;
                    }
                }
            }
            (n >= 20).then(|| -sum / n as f64)
        })
        .collect()
}

/// Computes the score. `expected_at_node(j, i)` is the expected noise at grid node (j, i), when
/// an expected-noise map exists.
pub fn score(
    image: ArrayView2<f32>,
    grid: &BackgroundGrid,
    scan: &Scan,
    sources: &[Source],
    beam: &BeamPx,
    bright_sigma: f64,
    expected_at_node: Option<&dyn Fn(usize, usize) -> Option<f64>>,
) -> Artefacts {
    let depths = bowl_depths(image, grid, sources, beam, bright_sigma);
    let negative_bowls = match crate::stats::median_f64(&depths) {
        Some(b) => Component {
            score: clamp01((b - 0.2) / 0.8),
            value: b,
            note: format!(
                "median depth over {} source(s) above {bright_sigma} sigma, in sigma",
                depths.len()
            ),
        },
        None => skipped("no source bright enough to look for bowls"),
    };

    /// Fraction of pixels below −5σ that still scores 0 (see the module notes).
    const NEGATIVE_FRACTION_FLOOR: f64 = 1e-5;
    let negative_pixels = if scan.n_finite > 0 {
        let frac = scan.n_below_minus5 as f64 / scan.n_finite as f64;
        Component {
            score: if frac > 0.0 {
                clamp01((frac / NEGATIVE_FRACTION_FLOOR).log10() / 3.0)
            } else {
                0.0
            },
            value: frac,
            note: format!(
                "{} of {} pixels below -5 sigma",
                scan.n_below_minus5, scan.n_finite
            ),
        }
    } else {
        skipped("no finite pixels")
    };

    let (interior, edge) = grid.interior_and_edge();
    let ratio = |nodes: &[(usize, usize)]| {
        let ratios: Vec<f64> = nodes
            .iter()
            .filter_map(|&(j, i)| {
                let r = f64::from(grid.rms[[j, i]]);
                match expected_at_node {
                    Some(f) => f(j, i).filter(|e| *e > 0.0).map(|e| r / e),
                    None => Some(r),
                }
            })
            .collect();
        crate::stats::median_f64(&ratios)
    };
    let edge_noise = match (ratio(&interior), ratio(&edge)) {
        (Some(i), Some(e)) if i > 0.0 => {
            let v = e / i;
            Component {
                score: clamp01(v - 1.25),
                value: v,
                note: format!(
                    "{} edge / {} interior grid nodes, {}",
                    edge.len(),
                    interior.len(),
                    if expected_at_node.is_some() {
                        "rms relative to the expected noise"
                    } else {
                        "raw rms (no expected-noise map)"
                    }
                ),
            }
        }
        _ => skipped("no interior or no edge grid nodes to compare"),
    };

    let stripe = |halves: &[[f64; 4]]| -> Option<(f64, usize)> {
        let pairs: Vec<(f64, f64)> = halves
            .iter()
            .filter(|h| h[1] >= 16.0 && h[3] >= 16.0)
            .map(|h| (h[0] / h[1], h[2] / h[3]))
            .collect();
        if pairs.len() < 10 {
            return None;
        }
        let n = pairs.len() as f64;
        let ma = pairs.iter().map(|p| p.0).sum::<f64>() / n;
        let mb = pairs.iter().map(|p| p.1).sum::<f64>() / n;
        let cov = pairs.iter().map(|p| (p.0 - ma) * (p.1 - mb)).sum::<f64>() / n;
        Some((cov.max(0.0).sqrt(), pairs.len()))
    };
    let striping = match (stripe(&scan.rows), stripe(&scan.cols)) {
        (None, None) => skipped("image too small or too blank for a striping test"),
        (r, c) => {
            let (vr, nr) = r.unwrap_or((0.0, 0));
            let (vc, nc) = c.unwrap_or((0.0, 0));
            let v = vr.max(vc);
            Component {
                score: clamp01((v - 0.1) / 0.4),
                value: v,
                note: format!(
                    "stripe amplitude in sigma: rows {vr:.3} ({nr} rows), columns {vc:.3} ({nc} columns)"
                ),
            }
        }
    };
    let score = [&negative_bowls, &negative_pixels, &edge_noise, &striping]
        .iter()
        .map(|c| c.score)
        .fold(0.0, f64::max);
    Artefacts {
        score,
        negative_bowls,
        negative_pixels,
        edge_noise,
        striping,
    }
}
