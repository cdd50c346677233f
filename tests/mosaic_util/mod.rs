//! Shared helpers for the mosaic tests: simulated inputs, truth catalogue, peak fitting, python.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use contimg::mosaic::engine::{MosaicInput, OutputGrid};
use contimg::mosaic::sim::{SimConfig, SimSummary, simulate};
use ndarray::Array2;

pub struct Sim {
    pub dir: tempfile::TempDir,
    pub summary: SimSummary,
}

/// Simulates `images` snapshots of `size`² pixels of `cell` arcsec along Dec 35.
pub fn sim(
    images: usize,
    size: usize,
    cell: f64,
    noise_jy: f64,
    seed: u64,
    ra_start: Option<f64>,
) -> Sim {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = SimConfig {
        out: dir.path().to_path_buf(),
        images,
        size,
        cell,
        seed,
        noise_jy,
        ra_start: ra_start.or(Some(150.0)),
        ..SimConfig::default()
    };
    let summary = simulate(&cfg, &|_| {}).expect("simulate");
    Sim { dir, summary }
}

/// The engine's inputs for a simulation; `rms` overrides the recorded rms (noise-free runs).
pub fn inputs(s: &Sim, rms: Option<f64>) -> Vec<MosaicInput> {
    s.summary
        .snapshots
        .iter()
        .map(|sn| MosaicInput::new(sn.file.clone(), rms.unwrap_or(sn.rms_jy)))
        .collect()
}

#[derive(Debug, Clone)]
pub struct Truth {
    pub ra: f64,
    pub dec: f64,
    pub flux: f64,
    pub maj_arcsec: f64,
}

pub fn truth(path: &Path) -> Vec<Truth> {
    let text = std::fs::read_to_string(path).expect("truth.csv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Truth {
                ra: f[1].parse().unwrap(),
                dec: f[2].parse().unwrap(),
                flux: f[3].parse().unwrap(),
                maj_arcsec: f[4].parse().unwrap(),
            }
        })
        .collect()
}

pub fn read(path: &Path) -> (contimg::fits::Header, Array2<f32>) {
    let img = contimg::fits::read::read_image(path).expect("read product");
    (img.header, img.plane)
}

/// Peak of a (near-)Gaussian source: the brightest pixel within 2 px of (x, y), then a
/// least-squares quadratic fit to the logarithm of the 3×3 pixels around it (exact for a
/// Gaussian). Returns (x, y, peak) or None when a pixel is not finite/positive or off the image.
pub fn fit_peak(img: &Array2<f32>, x: f64, y: f64) -> Option<(f64, f64, f64)> {
    let (ny, nx) = img.dim();
    let (cx, cy) = (x.round() as i64, y.round() as i64);
    let mut best = (f32::MIN, 0i64, 0i64);
    for j in cy - 2..=cy + 2 {
        for i in cx - 2..=cx + 2 {
            if i < 1 || j < 1 || i >= nx as i64 - 1 || j >= ny as i64 - 1 {
                return None;
            }
            let v = img[[j as usize, i as usize]];
            if !v.is_finite() {
                return None;
            }
            if v > best.0 {
                best = (v, i, j);
            }
        }
    }
    let (_, bi, bj) = best;
    // Normal equations for z = a + b dx + c dy + d dx² + e dx dy + f dy².
    let mut ata = [[0.0f64; 6]; 6];
    let mut atz = [0.0f64; 6];
    for dy in -1..=1i64 {
        for dx in -1..=1i64 {
            let v = f64::from(img[[(bj + dy) as usize, (bi + dx) as usize]]);
            if v.is_nan() || v <= 0.0 {
                return None;
            }
            let (fx, fy) = (dx as f64, dy as f64);
            let row = [1.0, fx, fy, fx * fx, fx * fy, fy * fy];
            let z = v.ln();
            for r in 0..6 {
                atz[r] += row[r] * z;
                for c in 0..6 {
                    ata[r][c] += row[r] * row[c];
                }
            }
        }
    }
    let p = solve6(ata, atz)?;
    let (b, c, d, e, f) = (p[1], p[2], p[3], p[4], p[5]);
    let det = 4.0 * d * f - e * e;
    if det.abs() < 1e-12 {
        return None;
    }
    let ox = (-2.0 * f * b + e * c) / det;
    let oy = (-2.0 * d * c + e * b) / det;
    let z = p[0] + b * ox + c * oy + d * ox * ox + e * ox * oy + f * oy * oy;
    Some((bi as f64 + ox, bj as f64 + oy, z.exp()))
}

fn solve6(mut a: [[f64; 6]; 6], mut b: [f64; 6]) -> Option<[f64; 6]> {
    for col in 0..6 {
        let piv = (col..6).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-14 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let (pivot_row, pivot_b) = (a[col], b[col]);
        for (r, (row, br)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
            if r != col {
                let k = row[col] / pivot_row[col];
                for (x, p) in row.iter_mut().zip(pivot_row.iter()).skip(col) {
                    *x -= k * p;
                }
                *br -= k * pivot_b;
            }
        }
    }
    let mut x = [0.0; 6];
    for i in 0..6 {
        x[i] = b[i] / a[i][i];
    }
    Some(x)
}

/// Point sources with no other source within `iso_px` pixels (and no resolved source within
/// twice that), inside the grid by `margin` px: (grid x, grid y, flux).
pub fn isolated_points(
    t: &[Truth],
    grid: &OutputGrid,
    iso_px: f64,
    margin: f64,
) -> Vec<(f64, f64, f64)> {
    let cell_as = grid.cdelt_deg.1.abs() * 3600.0;
    let pos: Vec<Option<(f64, f64)>> = t.iter().map(|s| grid.icrs_to_pix(s.ra, s.dec)).collect();
    let mut out = Vec::new();
    for (k, s) in t.iter().enumerate() {
        let Some((x, y)) = pos[k] else { continue };
        if s.maj_arcsec > 0.0
            || x < margin
            || y < margin
            || x > grid.nx as f64 - margin
            || y > grid.ny as f64 - margin
        {
            continue;
        }
        let crowded = t.iter().enumerate().any(|(m, o)| {
            if m == k {
                return false;
            }
            let Some((ox, oy)) = pos[m] else { return false };
            let d = (ox - x).hypot(oy - y);
            d < iso_px
                + if o.maj_arcsec > 0.0 {
                    iso_px + 3.0 * o.maj_arcsec / cell_as
                } else {
                    0.0
                }
        });
        if !crowded {
            out.push((x, y, s.flux));
        }
    }
    out
}

pub fn python() -> String {
    std::env::var("CONTIMG_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs a python script; panics with a clear message if python or its packages are missing.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {} ({e}): this test needs python3 with astropy, numpy, reproject (set CONTIMG_PYTHON)", python())
        });
    if !out.status.success() {
        panic!(
            "python reference failed (needs astropy, numpy, scipy, reproject):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[path = "../common/realdata.rs"]
pub mod realdata;
