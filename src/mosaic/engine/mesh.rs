//! Coordinate mesh: the exact output→input transform evaluated on a coarse lattice of output
//! pixels, bilinearly interpolated in between.
//!
//! The mesh carries four smooth channels per output pixel: the input pixel coordinates (x, y)
//! and the direction cosines (l, m) of the sky position about the input's pointing centre, from
//! which the beam response is computed per pixel (sin² of the separation is l² + m²).
//!
//! Bound: after building, the mesh is checked against the exact transform at the centre and the
//! edge midpoints of every cell (where bilinear interpolation of a smooth map errs most); while
//! the largest error exceeds half the tolerance (default 0.01 px on the input pixel coordinates,
//! 1e-7 rad ≈ 0.02″ on l and m, i.e. a relative beam error below 1e-5 for a 3° beam), the step is
//! halved, down to 1 px (exact).
//! Nodes where the exact transform has no answer (beyond a projection's horizon) are NaN; pixels
//! of cells touching such a node are evaluated exactly instead.

use rayon::prelude::*;

/// Values carried by the mesh at each output pixel: input x, input y (0-based), and the direction
/// cosines l, m about the input's pointing centre.
pub type Node = [f64; 4];

/// A bounding box of output pixels, inclusive on both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixBox {
    pub x0: usize,
    pub x1: usize,
    pub y0: usize,
    pub y1: usize,
}

impl PixBox {
    pub fn width(&self) -> usize {
        self.x1 - self.x0 + 1
    }
    pub fn height(&self) -> usize {
        self.y1 - self.y0 + 1
    }
}

/// Tolerances the mesh must meet.
#[derive(Debug, Clone, Copy)]
pub struct MeshTolerance {
    /// Largest error of the interpolated input pixel coordinates, pixels.
    pub px: f64,
    /// Largest error of the interpolated direction cosines l, m (radians).
    pub lm_rad: f64,
}

impl Default for MeshTolerance {
    fn default() -> Self {
        MeshTolerance {
            px: 0.01,
            lm_rad: 1e-7,
        }
    }
}

pub struct Mesh {
    pub bbox: PixBox,
    pub step: usize,
    pub ncols: usize,
    pub nrows: usize,
    nodes: Vec<Node>,
    /// Largest error found by the check (pixels, relative beam).
    pub checked_error: (f64, f64),
}

const NAN4: Node = [f64::NAN; 4];

impl Mesh {
    /// Builds a mesh over `bbox` meeting `tol`, starting from `step` and halving as needed.
    pub fn build<F>(bbox: PixBox, mut step: usize, tol: MeshTolerance, f: &F) -> Mesh
    where
        F: Fn(f64, f64) -> Option<Node> + Sync,
    {
        step = step.max(1);
        loop {
            let mesh = Mesh::at_step(bbox, step, f);
            if step == 1 {
                return mesh;
            }
            let err = mesh.check(f);
            if err.0 <= 0.5 * tol.px && err.1 <= 0.5 * tol.lm_rad {
                return Mesh {
                    checked_error: err,
                    ..mesh
                };
            }
            step /= 2;
        }
    }

    fn at_step<F>(bbox: PixBox, step: usize, f: &F) -> Mesh
    where
        F: Fn(f64, f64) -> Option<Node> + Sync,
    {
        let ncols = (bbox.width() - 1).div_ceil(step) + 1;
        let nrows = (bbox.height() - 1).div_ceil(step) + 1;
        let nodes: Vec<Node> = (0..nrows * ncols)
            .into_par_iter()
            .map(|k| {
                let (j, i) = (k / ncols, k % ncols);
                let x = (bbox.x0 + i * step) as f64;
                let y = (bbox.y0 + j * step) as f64;
                f(x, y).unwrap_or(NAN4)
            })
            .collect();
        Mesh {
            bbox,
            step,
            ncols,
            nrows,
            nodes,
            checked_error: (0.0, 0.0),
        }
    }

    #[inline]
    fn node(&self, i: usize, j: usize) -> &Node {
        &self.nodes[j * self.ncols + i]
    }

    /// Interpolated value at output pixel (x, y) inside the bbox (None if a corner is invalid).
    pub fn interp(&self, x: f64, y: f64) -> Option<Node> {
        let fx = (x - self.bbox.x0 as f64) / self.step as f64;
        let fy = (y - self.bbox.y0 as f64) / self.step as f64;
        let i = (fx.floor().max(0.0) as usize).min(self.ncols.saturating_sub(2));
        let j = (fy.floor().max(0.0) as usize).min(self.nrows.saturating_sub(2));
        let (s, t) = (fx - i as f64, fy - j as f64);
        let i1 = (i + 1).min(self.ncols - 1);
        let j1 = (j + 1).min(self.nrows - 1);
        let mut out = [0.0; 4];
        for (c, o) in out.iter_mut().enumerate() {
            let a = self.node(i, j)[c] + s * (self.node(i1, j)[c] - self.node(i, j)[c]);
            let b = self.node(i, j1)[c] + s * (self.node(i1, j1)[c] - self.node(i, j1)[c]);
            *o = a + t * (b - a);
        }
        if out.iter().any(|v| v.is_nan()) {
            None
        } else {
            Some(out)
        }
    }

    /// Largest error against the exact transform at cell centres and edge midpoints.
    fn check<F>(&self, f: &F) -> (f64, f64)
    where
        F: Fn(f64, f64) -> Option<Node> + Sync,
    {
        let h = self.step as f64 / 2.0;
        (0..self.nrows.max(2) - 1)
            .into_par_iter()
            .map(|j| {
                let mut e = (0.0f64, 0.0f64);
                for i in 0..self.ncols.max(2) - 1 {
                    let x = (self.bbox.x0 + i * self.step) as f64;
                    let y = (self.bbox.y0 + j * self.step) as f64;
                    for (dx, dy) in [(h, h), (h, 0.0), (0.0, h)] {
                        let (Some(exact), Some(approx)) =
                            (f(x + dx, y + dy), self.interp(x + dx, y + dy))
                        else {
                            continue;
                        };
                        let ep = (exact[0] - approx[0]).hypot(exact[1] - approx[1]);
                        let eb = (exact[2] - approx[2]).hypot(exact[3] - approx[3]);
                        e = (e.0.max(ep), e.1.max(eb));
                    }
                }
                e
            })
            .reduce(|| (0.0, 0.0), |a, b| (a.0.max(b.0), a.1.max(b.1)))
    }

    /// Fills `buf` (length ncols) with the mesh interpolated vertically at output row `y`.
    pub fn row_into(&self, y: usize, buf: &mut Vec<Node>) {
        buf.clear();
        let fy = (y - self.bbox.y0) as f64 / self.step as f64;
        let j = (fy.floor() as usize).min(self.nrows.saturating_sub(2));
        let t = fy - j as f64;
        let j1 = (j + 1).min(self.nrows - 1);
        for i in 0..self.ncols {
            let (a, b) = (self.node(i, j), self.node(i, j1));
            buf.push([
                a[0] + t * (b[0] - a[0]),
                a[1] + t * (b[1] - a[1]),
                a[2] + t * (b[2] - a[2]),
                a[3] + t * (b[3] - a[3]),
            ]);
        }
    }
}

/// Value at output column `x` from a row buffer filled by [`Mesh::row_into`].
#[inline]
pub fn along_row(mesh: &Mesh, row: &[Node], x: usize) -> Node {
    let dx = x - mesh.bbox.x0;
    let i = (dx / mesh.step).min(mesh.ncols.saturating_sub(2));
    let s = (dx - i * mesh.step) as f64 / mesh.step as f64;
    let i1 = (i + 1).min(mesh.ncols - 1);
    let (a, b) = (&row[i], &row[i1]);
    [
        a[0] + s * (b[0] - a[0]),
        a[1] + s * (b[1] - a[1]),
        a[2] + s * (b[2] - a[2]),
        a[3] + s * (b[3] - a[3]),
    ]
}

/// Calls `f(x, node)` for every output column of the mesh's bbox on one row, walking each mesh
/// cell with constant increments (no division per pixel). Nodes touching an invalid mesh node
/// are NaN.
#[inline]
pub fn walk_row(mesh: &Mesh, row: &[Node], f: impl FnMut(usize, &Node)) {
    walk_range(mesh, row, mesh.bbox.x0, mesh.bbox.x1, f);
}

/// As [`walk_row`], for the output columns `xa..=xb` (inside the bbox) only.
#[inline]
pub fn walk_range(
    mesh: &Mesh,
    row: &[Node],
    xa: usize,
    xb: usize,
    mut f: impl FnMut(usize, &Node),
) {
    let (x0, step) = (mesh.bbox.x0, mesh.step);
    let inv = 1.0 / step as f64;
    let last = mesh.ncols.saturating_sub(1);
    let mut x = xa;
    while x <= xb {
        let dx = x - x0;
        let i = (dx / step).min(mesh.ncols.saturating_sub(2));
        let (a, b) = (&row[i], &row[(i + 1).min(last)]);
        let d = [
            (b[0] - a[0]) * inv,
            (b[1] - a[1]) * inv,
            (b[2] - a[2]) * inv,
            (b[3] - a[3]) * inv,
        ];
        let end = if i + 1 >= last {
            xb
        } else {
            (x0 + (i + 1) * step - 1).min(xb)
        };
        let t0 = (dx - i * step) as f64;
        for (k, xx) in (x..=end).enumerate() {
            let t = t0 + k as f64;
            let v = [
                a[0] + t * d[0],
                a[1] + t * d[1],
                a[2] + t * d[2],
                a[3] + t * d[3],
            ];
            f(xx, &v);
        }
        x = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curved_map_meets_the_tolerance_everywhere() {
        // A strongly curved map (quadratic + sine) forces step halving.
        let f = |x: f64, y: f64| {
            Some([
                x + 1e-4 * x * y + 2.0 * (x / 90.0).sin(),
                y - 2e-4 * x * x,
                1e-5 * x + 1e-9 * y * y,
                2e-5 * y - 1e-9 * x * x,
            ])
        };
        let bbox = PixBox {
            x0: 3,
            x1: 400,
            y0: 7,
            y1: 300,
        };
        let mesh = Mesh::build(bbox, 32, MeshTolerance::default(), &f);
        assert!(mesh.step < 32 && mesh.step > 1, "step {}", mesh.step);
        let mut buf = Vec::new();
        let mut worst: f64 = 0.0;
        for y in bbox.y0..=bbox.y1 {
            mesh.row_into(y, &mut buf);
            let mut seen = bbox.x0;
            walk_row(&mesh, &buf, |x, v| {
                assert_eq!(x, seen);
                seen += 1;
                let w = along_row(&mesh, &buf, x);
                assert!(v.iter().zip(w.iter()).all(|(p, q)| (p - q).abs() < 1e-9));
                let e = f(x as f64, y as f64).unwrap();
                worst = worst.max((v[0] - e[0]).hypot(v[1] - e[1]));
                assert!((v[2] - e[2]).hypot(v[3] - e[3]) <= 1e-7);
            });
            assert_eq!(seen, bbox.x1 + 1);
            // The same row in uneven blocks gives the same values.
            let mut xs = Vec::new();
            for (xa, xb) in [(bbox.x0, 40), (41, 41), (42, 250), (251, bbox.x1)] {
                walk_range(&mesh, &buf, xa, xb, |x, v| {
                    let w = along_row(&mesh, &buf, x);
                    assert!(v.iter().zip(w.iter()).all(|(p, q)| (p - q).abs() < 1e-9));
                    xs.push(x);
                });
            }
            assert!(xs.iter().copied().eq(bbox.x0..=bbox.x1));
        }
        assert!(worst <= 0.01, "worst {worst}");
    }
}
