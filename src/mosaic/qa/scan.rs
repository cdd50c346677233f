//! One parallel pass over the mosaic's pixels against the background grid: the detection mask
//! and every per-pixel statistic QA needs (counts, S/N histogram, row and column half-means for
//! the striping test), without keeping any full-size float map.
//!
//! Invariants: only finite pixels are counted; S/N = (value − background) / rms with the
//! interpolated grid (negative outliers against the larger of that rms and the expected noise); the mask is row-major (`y * nx + x`), true where S/N > the threshold.

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::background::BackgroundGrid;

/// S/N histogram range and bin width.
pub const HIST_MIN: f64 = -10.0;
pub const HIST_MAX: f64 = 10.0;
pub const HIST_BINS: usize = 200;

/// The results of the pass.
#[derive(Debug, Clone)]
pub struct Scan {
    pub nx: usize,
    pub ny: usize,
    pub mask: Vec<bool>,
    pub n_finite: u64,
    /// Pixels with S/N < −5.
    pub n_below_minus5: u64,
    /// Counts per S/N bin over [HIST_MIN, HIST_MAX); values outside are not counted.
    pub hist: Vec<u64>,
    /// Per row: (sum, n) of clipped S/N (|S/N| < 5) in the left half and in the right half.
    pub rows: Vec<[f64; 4]>,
    /// Per column: the same for the top and bottom halves.
    pub cols: Vec<[f64; 4]>,
    /// Largest finite pixel value and its position (x, y).
    pub max_pixel: Option<(f32, usize, usize)>,
}

struct Partial {
    n_finite: u64,
    n_neg: u64,
    hist: Vec<u64>,
    cols: Vec<[f64; 4]>,
    max_pixel: Option<(f32, usize, usize)>,
}

/// Runs the pass. A pixel counts as below −5σ against the larger of the local box rms and the
/// expected noise (`expected`, the build's map, when given): a box straddling a primary-beam
/// corrected edge underestimates the noise there, the build's map does not.
pub fn scan(
    image: ArrayView2<f32>,
    grid: &BackgroundGrid,
    threshold: f64,
    expected: Option<ArrayView2<f32>>,
) -> Scan {
    let (ny, nx) = image.dim();
    let mut mask = vec![false; nx * ny];
    let mut rows = vec![[0.0f64; 4]; ny];
    const BLOCK: usize = 32;
    let half_x = nx / 2;
    let half_y = ny / 2;
    let parts: Vec<Partial> = mask
        .par_chunks_mut(nx * BLOCK)
        .zip(rows.par_chunks_mut(BLOCK))
        .enumerate()
        .map(|(b, (mchunk, rchunk))| {
            let mut p = Partial {
                n_finite: 0,
                n_neg: 0,
                hist: vec![0; HIST_BINS],
                cols: vec![[0.0; 4]; nx],
                max_pixel: None,
            };
            let mut bk = vec![0.0f32; nx];
            let mut rm = vec![0.0f32; nx];
            for (k, rstat) in rchunk.iter_mut().enumerate() {
                let y = b * BLOCK + k;
                grid.row(y, &mut bk, &mut rm);
                let row = image.row(y);
                let mrow = &mut mchunk[k * nx..(k + 1) * nx];
                let top = usize::from(y >= half_y) * 2;
                for x in 0..nx {
                    let v = row[x];
                    if !v.is_finite() {
                        continue;
                    }
                    p.n_finite += 1;
                    if p.max_pixel.is_none_or(|(m, _, _)| v > m) {
                        p.max_pixel = Some((v, x, y));
                    }
                    let snr = f64::from((v - bk[x]) / rm[x]);
                    if snr > threshold {
                        mrow[x] = true;
                    }
                    if snr < -5.0 {
                        let sigma = expected
                            .map(|e| e[[y, x]])
                            .filter(|e| e.is_finite() && *e > rm[x])
                            .unwrap_or(rm[x]);
                        if (v - bk[x]) / sigma < -5.0 {
                            p.n_neg += 1;
                        }
                    }
                    if (HIST_MIN..HIST_MAX).contains(&snr) {
                        let bin =
                            ((snr - HIST_MIN) / (HIST_MAX - HIST_MIN) * HIST_BINS as f64) as usize;
                        p.hist[bin.min(HIST_BINS - 1)] += 1;
                    }
                    if snr.abs() < 5.0 {
                        let side = usize::from(x >= half_x) * 2;
                        rstat[side] += snr;
                        rstat[side + 1] += 1.0;
                        p.cols[x][top] += snr;
                        p.cols[x][top + 1] += 1.0;
                    }
                }
            }
            p
        })
        .collect();
    let mut out = Scan {
        nx,
        ny,
        mask,
        n_finite: 0,
        n_below_minus5: 0,
        hist: vec![0; HIST_BINS],
        rows,
        cols: vec![[0.0; 4]; nx],
        max_pixel: None,
    };
    for p in parts {
        out.n_finite += p.n_finite;
        out.n_below_minus5 += p.n_neg;
        for (h, v) in out.hist.iter_mut().zip(p.hist) {
            *h += v;
        }
        for (c, v) in out.cols.iter_mut().zip(p.cols) {
            for k in 0..4 {
                c[k] += v[k];
            }
        }
        if let Some((v, x, y)) = p.max_pixel
            && out.max_pixel.is_none_or(|(m, _, _)| v > m)
        {
            out.max_pixel = Some((v, x, y));
        }
    }
    out
}
