//! The output grid of a mosaic: an ICRS projection (SIN, TAN or CAR) with a pixel size, and the
//! rule that picks it from the inputs' footprints.
//!
//! Invariants: pixels are 0-based (x along NAXIS1, y along NAXIS2), angles in degrees at the API;
//! the transforms here are exact closed forms (FITS WCS paper II), no approximation. SIN and TAN
//! have their reference point at the field centre with LONPOLE = 180; CAR has CRVAL2 = 0 and
//! LONPOLE = 0 (native = celestial, so a strip at any declination is exact) with
//! CDELT1 = -cell / cos(dec_ref) so pixels are square on the sky at the strip's declination.

use crate::fits::{Card, Value};
use crate::wcs::separation_deg;

const D2R: f64 = std::f64::consts::PI / 180.0;

/// The projections the output grid can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GridProjection {
    Sin,
    Tan,
    Car,
}

impl GridProjection {
    /// Every projection the output grid can use, in the order they are listed to a user.
    pub const ALL: &[GridProjection] = &[
        GridProjection::Sin,
        GridProjection::Tan,
        GridProjection::Car,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            GridProjection::Sin => "SIN",
            GridProjection::Tan => "TAN",
            GridProjection::Car => "CAR",
        }
    }

    /// Parses `SIN`, `TAN` or `CAR` (any case).
    pub fn parse(s: &str) -> Option<GridProjection> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SIN" => Some(GridProjection::Sin),
            "TAN" => Some(GridProjection::Tan),
            "CAR" => Some(GridProjection::Car),
            _ => None,
        }
    }
}

/// The output projection a workspace or a build asks for: `auto` (SIN when the field is compact,
/// CAR for a wide strip; see [`GridChoice::projection`]) or one of [`GridProjection::ALL`]. Its
/// names ([`ProjectionChoice::names`]) are the one list that `contimg.toml`, its default text and
/// `build --projection` use; they are read in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProjectionChoice {
    #[default]
    Auto,
    Fixed(GridProjection),
}

impl ProjectionChoice {
    /// `auto`, then each projection's code.
    pub fn names() -> Vec<&'static str> {
        std::iter::once("auto")
            .chain(GridProjection::ALL.iter().map(GridProjection::code))
            .collect()
    }

    pub fn name(&self) -> &'static str {
        match self {
            ProjectionChoice::Auto => "auto",
            ProjectionChoice::Fixed(p) => p.code(),
        }
    }

    /// Parses a name of [`ProjectionChoice::names`], in any case.
    pub fn parse(s: &str) -> Option<ProjectionChoice> {
        if s.trim().eq_ignore_ascii_case("auto") {
            Some(ProjectionChoice::Auto)
        } else {
            GridProjection::parse(s).map(ProjectionChoice::Fixed)
        }
    }

    /// The projection to use, or `None` to choose one from the footprints.
    pub fn fixed(&self) -> Option<GridProjection> {
        match self {
            ProjectionChoice::Auto => None,
            ProjectionChoice::Fixed(p) => Some(*p),
        }
    }
}

impl serde::Serialize for ProjectionChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for ProjectionChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ProjectionChoice::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown projection {s:?}: use {}",
                ProjectionChoice::names().join(", ")
            ))
        })
    }
}

/// A complete output grid: projection, reference point, pixel size and shape.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutputGrid {
    pub projection: GridProjection,
    /// CRVAL1/CRVAL2 in degrees (ICRS). For CAR, crval_deg.1 is always 0.
    pub crval_deg: (f64, f64),
    /// Reference pixel, 0-based (FITS CRPIX minus one).
    pub crpix0: (f64, f64),
    /// CDELT1/CDELT2 in degrees (CDELT1 negative: RA increases to the left).
    pub cdelt_deg: (f64, f64),
    pub nx: usize,
    pub ny: usize,
}

impl OutputGrid {
    pub fn n_pixels(&self) -> u64 {
        self.nx as u64 * self.ny as u64
    }

    /// Pixel (0-based) to ICRS (ra, dec) in degrees; None where the projection has no sky.
    #[inline]
    pub fn pix_to_icrs(&self, px: f64, py: f64) -> Option<(f64, f64)> {
        let x = self.cdelt_deg.0 * (px - self.crpix0.0);
        let y = self.cdelt_deg.1 * (py - self.crpix0.1);
        match self.projection {
            GridProjection::Car => {
                if !(-90.0..=90.0).contains(&y) {
                    return None;
                }
                Some((norm_ra(self.crval_deg.0 + x), y))
            }
            GridProjection::Sin | GridProjection::Tan => {
                let (l, m) = (x * D2R, y * D2R);
                let (l, m, n) = if self.projection == GridProjection::Sin {
                    let r2 = l * l + m * m;
                    if r2 > 1.0 {
                        return None;
                    }
                    (l, m, (1.0 - r2).sqrt())
                } else {
                    let s = 1.0 / (1.0 + l * l + m * m).sqrt();
                    (l * s, m * s, s)
                };
                let (sd0, cd0) = (self.crval_deg.1 * D2R).sin_cos();
                let dec = (m * cd0 + n * sd0).clamp(-1.0, 1.0).asin();
                let dra = l.atan2(n * cd0 - m * sd0);
                Some((norm_ra(self.crval_deg.0 + dra / D2R), dec / D2R))
            }
        }
    }

    /// ICRS (ra, dec) in degrees to pixel (0-based); None on the far side of a zenithal projection.
    #[inline]
    pub fn icrs_to_pix(&self, ra: f64, dec: f64) -> Option<(f64, f64)> {
        let (x, y) = match self.projection {
            GridProjection::Car => (wrap180(ra - self.crval_deg.0), dec),
            GridProjection::Sin | GridProjection::Tan => {
                let (sd, cd) = (dec * D2R).sin_cos();
                let (sd0, cd0) = (self.crval_deg.1 * D2R).sin_cos();
                let (sa, ca) = ((ra - self.crval_deg.0) * D2R).sin_cos();
                let l = cd * sa;
                let m = sd * cd0 - cd * sd0 * ca;
                let n = sd * sd0 + cd * cd0 * ca;
                if self.projection == GridProjection::Sin {
                    if n < 0.0 {
                        return None;
                    }
                    (l / D2R, m / D2R)
                } else {
                    if n <= 1e-12 {
                        return None;
                    }
                    (l / n / D2R, m / n / D2R)
                }
            }
        };
        Some((
            self.crpix0.0 + x / self.cdelt_deg.0,
            self.crpix0.1 + y / self.cdelt_deg.1,
        ))
    }

    /// Solid angle of the pixel at (px, py) in square degrees (exact Jacobian of the projection).
    pub fn pixel_area_deg2(&self, px: f64, py: f64) -> f64 {
        let base = (self.cdelt_deg.0 * self.cdelt_deg.1).abs();
        let x = self.cdelt_deg.0 * (px - self.crpix0.0) * D2R;
        let y = self.cdelt_deg.1 * (py - self.crpix0.1) * D2R;
        match self.projection {
            GridProjection::Car => base * (y).cos(),
            // SIN: dΩ = dl dm / n; TAN: dΩ = dx dy / (1 + r²)^(3/2).
            GridProjection::Sin => base / (1.0 - x * x - y * y).max(1e-12).sqrt(),
            GridProjection::Tan => base / (1.0 + x * x + y * y).powf(1.5),
        }
    }

    /// The FITS WCS cards of this grid (2-D image, ICRS).
    pub fn wcs_cards(&self) -> Vec<Card> {
        let p = self.projection.code();
        let f = |v: f64| Value::Float(v);
        vec![
            Card::new("WCSAXES", Value::Int(2), "number of WCS axes"),
            Card::new(
                "CTYPE1",
                Value::Str(format!("RA---{p}")),
                "ICRS right ascension",
            ),
            Card::new(
                "CTYPE2",
                Value::Str(format!("DEC--{p}")),
                "ICRS declination",
            ),
            Card::new("CRVAL1", f(self.crval_deg.0), "[deg] RA at reference pixel"),
            Card::new(
                "CRVAL2",
                f(self.crval_deg.1),
                "[deg] Dec at reference pixel",
            ),
            Card::new(
                "CRPIX1",
                f(self.crpix0.0 + 1.0),
                "reference pixel (1-based)",
            ),
            Card::new(
                "CRPIX2",
                f(self.crpix0.1 + 1.0),
                "reference pixel (1-based)",
            ),
            Card::new("CDELT1", f(self.cdelt_deg.0), "[deg] pixel increment"),
            Card::new("CDELT2", f(self.cdelt_deg.1), "[deg] pixel increment"),
            Card::new("CUNIT1", Value::Str("deg".into()), ""),
            Card::new("CUNIT2", Value::Str("deg".into()), ""),
            Card::new(
                "LONPOLE",
                f(if self.projection == GridProjection::Car {
                    0.0
                } else {
                    180.0
                }),
                "[deg] native longitude of celestial pole",
            ),
            Card::new("RADESYS", Value::Str("ICRS".into()), "celestial frame"),
        ]
    }
}

/// Wraps an angle into [0, 360).
#[inline]
pub fn norm_ra(ra: f64) -> f64 {
    let r = ra.rem_euclid(360.0);
    if r >= 360.0 { 0.0 } else { r }
}

/// Wraps an angle difference into (-180, 180].
#[inline]
pub fn wrap180(d: f64) -> f64 {
    let r = (d + 180.0).rem_euclid(360.0) - 180.0;
    if r <= -180.0 { r + 360.0 } else { r }
}

/// How the grid is chosen.
#[derive(Debug, Clone)]
pub struct GridChoice {
    /// Pixel size in degrees; None = median of the inputs.
    pub cell_deg: Option<f64>,
    /// Projection; None = SIN when every footprint point lies within `wide_field_deg` of the
    /// field centre, CAR otherwise.
    pub projection: Option<GridProjection>,
    /// Angular radius beyond which a field counts as wide (SIN would compress pixels by more
    /// than 1 − cos(radius)); default 10° (1.5 %).
    pub wide_field_deg: f64,
    /// Refuse grids with more pixels than this.
    pub max_pixels: u64,
}

impl Default for GridChoice {
    fn default() -> Self {
        GridChoice {
            cell_deg: None,
            projection: None,
            wide_field_deg: 10.0,
            max_pixels: 400_000_000,
        }
    }
}

/// Why a grid could not be chosen.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GridError {
    #[error("no input footprints: nothing to grid")]
    Empty,
    #[error(
        "the output grid would be {nx} x {ny} = {pixels} pixels ({projection}, cell {cell_arcsec:.3}\"), \
         above the limit of {limit}; raise the pixel limit, use a coarser cell, or select fewer images"
    )]
    TooLarge {
        nx: u64,
        ny: u64,
        pixels: u64,
        limit: u64,
        projection: &'static str,
        cell_arcsec: f64,
    },
    #[error("invalid pixel size {0} deg: it must be positive and finite")]
    BadCell(f64),
    #[error(
        "{projection} cannot hold this field: points lie {max_sep_deg:.1} deg from the centre; use CAR"
    )]
    ProjectionCannotHold {
        projection: &'static str,
        max_sep_deg: f64,
    },
}

/// One input's footprint: its centre, border samples (ICRS degrees) and pixel size (degrees).
#[derive(Debug, Clone)]
pub struct Footprint {
    pub centre: (f64, f64),
    pub border: Vec<(f64, f64)>,
    pub cell_deg: f64,
}

fn unit(ra: f64, dec: f64) -> [f64; 3] {
    let (sr, cr) = (ra * D2R).sin_cos();
    let (sd, cd) = (dec * D2R).sin_cos();
    [cd * cr, cd * sr, sd]
}

/// Chooses the output grid holding every footprint.
pub fn choose_grid(feet: &[Footprint], choice: &GridChoice) -> Result<OutputGrid, GridError> {
    if feet.is_empty() {
        return Err(GridError::Empty);
    }
    let cell = match choice.cell_deg {
        Some(c) if !(c.is_finite() && c > 0.0) => return Err(GridError::BadCell(c)),
        Some(c) => c,
        None => {
            let cells: Vec<f64> = feet.iter().map(|f| f.cell_deg).collect();
            crate::stats::median_f64(&cells).unwrap_or(f64::NAN)
        }
    };
    if !(cell.is_finite() && cell > 0.0) {
        return Err(GridError::BadCell(cell));
    }
    // Field centre: the normalised mean of the centres' unit vectors (correct across RA 0h).
    let mut v = [0.0; 3];
    for f in feet {
        let u = unit(f.centre.0, f.centre.1);
        for k in 0..3 {
            v[k] += u[k];
        }
    }
    let norm = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    let (ra0, dec0) = if norm < 1e-9 {
        feet[0].centre
    } else {
        (
            norm_ra(v[1].atan2(v[0]) / D2R),
            (v[2] / norm).clamp(-1.0, 1.0).asin() / D2R,
        )
    };
    let points = || {
        feet.iter()
            .flat_map(|f| f.border.iter().chain(std::iter::once(&f.centre)))
    };
    let max_sep = points()
        .map(|&(r, d)| separation_deg((ra0, dec0), (r, d)))
        .fold(0.0, f64::max);
    let projection = choice
        .projection
        .unwrap_or(if max_sep > choice.wide_field_deg {
            GridProjection::Car
        } else {
            GridProjection::Sin
        });
    let limit_sep = match projection {
        GridProjection::Sin => 89.0,
        GridProjection::Tan => 80.0,
        GridProjection::Car => 360.0,
    };
    if max_sep > limit_sep {
        return Err(GridError::ProjectionCannotHold {
            projection: projection.code(),
            max_sep_deg: max_sep,
        });
    }
    let mut grid = match projection {
        GridProjection::Car => {
            let c = (dec0 * D2R).cos().max(0.05);
            OutputGrid {
                projection,
                crval_deg: (ra0, 0.0),
                crpix0: (0.0, 0.0),
                cdelt_deg: (-cell / c, cell),
                nx: 1,
                ny: 1,
            }
        }
        _ => OutputGrid {
            projection,
            crval_deg: (ra0, dec0),
            crpix0: (0.0, 0.0),
            cdelt_deg: (-cell, cell),
            nx: 1,
            ny: 1,
        },
    };
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(r, d) in points() {
        if let Some((x, y)) = grid.icrs_to_pix(r, d) {
            xmin = xmin.min(x);
            xmax = xmax.max(x);
            ymin = ymin.min(y);
            ymax = ymax.max(y);
        }
    }
    // One pixel of margin on every side; the reference pixel moves so that xmin lands on pixel 1.
    let nx = (xmax - xmin).ceil() as i64 + 3;
    let ny = (ymax - ymin).ceil() as i64 + 3;
    let (nx, ny) = (nx.max(1) as u64, ny.max(1) as u64);
    if nx.saturating_mul(ny) > choice.max_pixels {
        return Err(GridError::TooLarge {
            nx,
            ny,
            pixels: nx.saturating_mul(ny),
            limit: choice.max_pixels,
            projection: projection.code(),
            cell_arcsec: cell * 3600.0,
        });
    }
    grid.crpix0 = (1.0 - xmin.floor(), 1.0 - ymin.floor());
    grid.nx = nx as usize;
    grid.ny = ny as usize;
    Ok(grid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(p: GridProjection, dec0: f64) -> OutputGrid {
        OutputGrid {
            projection: p,
            crval_deg: (350.0, if p == GridProjection::Car { 0.0 } else { dec0 }),
            crpix0: (100.5, 80.25),
            cdelt_deg: (-0.001, 0.001),
            nx: 200,
            ny: 160,
        }
    }

    #[test]
    fn round_trips_are_exact() {
        for p in [
            GridProjection::Sin,
            GridProjection::Tan,
            GridProjection::Car,
        ] {
            for dec0 in [-60.0, 0.0, 37.0, 71.6] {
                let g = grid(p, dec0);
                for &(x, y) in &[
                    (0.0, 0.0),
                    (199.0, 159.0),
                    (100.5, 80.25),
                    (-3000.0, 5000.0),
                ] {
                    let (r, d) = g.pix_to_icrs(x, y).unwrap();
                    let (x2, y2) = g.icrs_to_pix(r, d).unwrap();
                    assert!(
                        (x - x2).abs() < 1e-7 && (y - y2).abs() < 1e-7,
                        "{p:?} {x} {y} -> {x2} {y2}"
                    );
                }
            }
        }
    }

    #[test]
    fn sin_reference_pixel_is_crval_and_ra_increases_left() {
        let g = grid(GridProjection::Sin, 30.0);
        let (r, d) = g.pix_to_icrs(100.5, 80.25).unwrap();
        assert!((wrap180(r - 350.0)).abs() < 1e-12 && (d - 30.0).abs() < 1e-12);
        let (r2, _) = g.pix_to_icrs(90.5, 80.25).unwrap();
        assert!(wrap180(r2 - r) > 0.0);
    }

    #[test]
    fn strip_across_ra_zero_gets_car_and_a_sane_size() {
        // Thirty 1-deg fields along Dec 40 from RA 345 to RA 14 (crossing 0h): 23 deg on the sky.
        let feet: Vec<Footprint> = (0..30)
            .map(|i| {
                let ra = norm_ra(345.0 + f64::from(i));
                let border = [(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)]
                    .iter()
                    .map(|(dx, dy)| (norm_ra(ra + dx / (40.0 * D2R).cos()), 40.0 + dy))
                    .collect();
                Footprint {
                    centre: (ra, 40.0),
                    border,
                    cell_deg: 0.01,
                }
            })
            .collect();
        let g = choose_grid(&feet, &GridChoice::default()).unwrap();
        assert_eq!(g.projection, GridProjection::Car);
        // RA span ~30 deg at cos(40) -> ~23 deg on the sky -> ~2300 px, not ~36000.
        assert!(g.nx > 2290 && g.nx < 2320, "nx {}", g.nx);
        assert!(g.ny > 100 && g.ny < 110, "ny {}", g.ny);
        for f in &feet {
            for &(r, d) in &f.border {
                let (x, y) = g.icrs_to_pix(r, d).unwrap();
                assert!(x >= 0.0 && x <= (g.nx - 1) as f64 && y >= 0.0 && y <= (g.ny - 1) as f64);
            }
        }
        let small = GridChoice {
            max_pixels: 1000,
            ..GridChoice::default()
        };
        match choose_grid(&feet, &small) {
            Err(GridError::TooLarge { nx, ny, .. }) => {
                assert_eq!((nx as usize, ny as usize), (g.nx, g.ny));
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn pixel_area_matches_finite_differences() {
        for p in [
            GridProjection::Sin,
            GridProjection::Tan,
            GridProjection::Car,
        ] {
            let g = grid(p, 50.0);
            let (x, y) = (20.0, 150.0);
            let (r0, d0) = g.pix_to_icrs(x - 0.5, y).unwrap();
            let (r1, d1) = g.pix_to_icrs(x + 0.5, y).unwrap();
            let (r2, d2) = g.pix_to_icrs(x, y - 0.5).unwrap();
            let (r3, d3) = g.pix_to_icrs(x, y + 0.5).unwrap();
            let a = [wrap180(r1 - r0) * (0.5 * (d0 + d1) * D2R).cos(), d1 - d0];
            let b = [wrap180(r3 - r2) * (0.5 * (d2 + d3) * D2R).cos(), d3 - d2];
            let area = (a[0] * b[1] - a[1] * b[0]).abs();
            let exact = g.pixel_area_deg2(x, y);
            assert!(
                (area / exact - 1.0).abs() < 1e-4,
                "{p:?}: {area} vs {exact}"
            );
        }
    }
}
