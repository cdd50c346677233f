//! Simulated DSA-110-like drift-scan snapshots and their truth catalogue.
//!
//! Owns: [`SimConfig`] (one field per `contimg simulate` flag), [`simulate`], the seeded sky
//! model and the snapshot rendering. The sidereal-time helpers ([`gmst_deg`], [`lst_ovro_deg`])
//! are exact, self-contained formulas; a snapshot's pixel grid ([`SinGrid`]) projects through
//! the `wcs` module (SIN), the one projection code of the crate, checked against astropy by
//! tests/sim_astropy.rs.
//!
//! The model:
//! - The telescope at OVRO (longitude −118.2834°) stares at the meridian at declination `dec`.
//!   Snapshot i covers [start + i·cadence, start + (i+1)·cadence). Its phase centre RA is the
//!   local mean sidereal time at OVRO at the snapshot's *mid* time (GMST, IAU 1982 expression,
//!   UT1 taken as UTC), or `ra_start + 15.0410686°/h × i·cadence` when `ra_start` is given
//!   (then snapshot 0 is centred on `ra_start`). RAs are wrapped into [0, 360).
//! - `DATE-OBS`/`MJD-OBS` are the snapshot's *start* (the FITS convention); `DATE-AVG`/`MJD-AVG`
//!   are its mid time, when the phase centre was on the meridian; `TELAPSE` is the cadence.
//! - One sky for the whole run, drawn from the seed: point sources with Euclidean counts
//!   N(>S) ∝ S^−1.5 between 2 mJy and 1 Jy at 8 per square degree, plus resolved elliptical
//!   Gaussians (10–200 mJy, 60–300″ FWHM major axis, at least 3, 0.3 per square degree), spread
//!   uniformly over the strip seen by all snapshots plus a margin.
//! - Each snapshot is the apparent sky: every source × the primary beam ([`crate::mosaic::beam`]) at its
//!   separation from the phase centre, convolved analytically with the restoring beam (an
//!   elliptical Gaussian with BMAJ = 3.2 cells, BMIN = 2.6 cells, BPA drawn per snapshot from the
//!   seed in [−90°, 90°)), in Jy/beam; shapes are laid out in the (l, m) pixel plane, exactly as
//!   an imager's restoring beam is. Plus correlated noise: white noise convolved with the
//!   restoring beam and scaled so its expected rms is σ_i = `noise_jy` × a seeded factor in
//!   [0.7, 1.4]. The images are NOT primary-beam corrected (`PBCOR = F`).
//!
//! Invariants: the output is a pure function of the configuration — bit-identical for a seed
//! whatever the thread count (every random stream is derived from the seed and the snapshot index,
//! and the noise from the seed, snapshot and row). Every file is written atomically.

use std::f64::consts::PI;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::Serialize;

use crate::fits::header::{Header, Value};
use crate::fits::write::{FitsWriteError, write_bytes_atomic, write_image};
use crate::mosaic::beam::BeamModel;
use crate::time::{fits_date, mjd};
use crate::wcs::{Frame, Wcs, separation_deg};

/// Longitude of OVRO (east positive), degrees.
pub const OVRO_LON_DEG: f64 = -118.2834;
/// The rate at which the meridian sweeps across RA, degrees per hour of UTC.
pub const SIDEREAL_RATE_DEG_PER_H: f64 = 360.985_647_366_29 / 24.0;
/// Bandwidth recorded as CDELT3, Hz.
pub const BANDWIDTH_HZ: f64 = 187.5e6;
/// Restoring-beam major axis in cells.
pub const BMAJ_CELLS: f64 = 3.2;
/// Restoring-beam minor axis in cells.
pub const BMIN_CELLS: f64 = 2.6;
/// Point sources per square degree above [`POINT_FLUX_MIN_JY`].
pub const POINT_DENSITY_PER_DEG2: f64 = 8.0;
pub const POINT_FLUX_MIN_JY: f64 = 2e-3;
pub const POINT_FLUX_MAX_JY: f64 = 1.0;
/// Resolved Gaussian sources per square degree (at least [`GAUSS_MIN_COUNT`] per run).
pub const GAUSS_DENSITY_PER_DEG2: f64 = 0.3;
pub const GAUSS_MIN_COUNT: usize = 3;
const GAUSS_MAJ_MAX_ARCSEC: f64 = 300.0;
/// Sources are rendered out to this many standard deviations of their apparent Gaussian.
const STAMP_NSIGMA: f64 = 5.0;
/// The noise kernel (the restoring beam) is truncated at this many standard deviations.
const NOISE_KERNEL_NSIGMA: f64 = 4.0;
use crate::stats::FWHM_PER_SIGMA;

/// Everything `contimg simulate` can be told; field names follow the flags
/// (`--out --images --size --cell --dec --start --cadence --seed --ra-start --freq --noise
/// --pb-images`).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Output directory (created if missing; existing files of the same names are replaced).
    pub out: PathBuf,
    /// Number of snapshots.
    pub images: usize,
    /// Image side in pixels (NAXIS1 = NAXIS2).
    pub size: usize,
    /// Pixel size, arcsec.
    pub cell: f64,
    /// Declination of the drift strip, degrees.
    pub dec: f64,
    /// Start of the first snapshot (UTC).
    pub start: DateTime<Utc>,
    /// Seconds between snapshot starts (= each snapshot's duration).
    pub cadence: f64,
    /// Seed for the sky and the noise.
    pub seed: u64,
    /// RA of snapshot 0's phase centre, degrees; `None`: follow the sidereal time at OVRO.
    pub ra_start: Option<f64>,
    /// Observing frequency, Hz.
    pub freq_hz: f64,
    /// Base noise rms, Jy/beam (each snapshot gets this × a seeded factor in [0.7, 1.4]).
    pub noise_jy: f64,
    /// Also write `<stem>.pb.fits`, the primary-beam response A on the same grid.
    pub pb_images: bool,
    /// The telescope (TELESCOP card) whose primary beam attenuates the sky: one that
    /// `beam::BeamModel::for_telescope` knows.
    pub telescope: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            out: PathBuf::from("sim"),
            images: 4,
            size: 256,
            cell: 30.0,
            dec: 35.0,
            start: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            cadence: 300.0,
            seed: 42,
            ra_start: None,
            freq_hz: 1.405e9,
            noise_jy: 0.5e-3,
            pb_images: false,
            telescope: "DSA-110".into(),
        }
    }
}

/// Why a simulation could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulate setting {field} = {value}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot create the output directory {path}: {source}; check the path and permissions")]
    OutDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: FitsWriteError,
    },
}

/// One written snapshot, as listed in `snapshots.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    pub index: usize,
    pub file: PathBuf,
    pub pb_file: Option<PathBuf>,
    pub ra_deg: f64,
    pub dec_deg: f64,
    /// Start of the snapshot, ISO 8601 UTC (the `DATE-OBS` card).
    pub date_obs: String,
    /// Start of the snapshot, MJD UTC (the `MJD-OBS` card).
    pub mjd_obs: f64,
    /// Expected noise rms σ_i, Jy/beam.
    pub rms_jy: f64,
    pub bmaj_deg: f64,
    pub bmin_deg: f64,
    pub bpa_deg: f64,
}

/// The region the sky model covers.
#[derive(Debug, Clone, Serialize)]
pub struct SkyRegion {
    /// Lower RA edge in [0, 360); the region runs `ra_width_deg` eastwards from it (may wrap).
    pub ra_min_deg: f64,
    pub ra_width_deg: f64,
    pub dec_min_deg: f64,
    pub dec_max_deg: f64,
    pub area_deg2: f64,
    pub n_point: usize,
    pub n_gaussian: usize,
}

/// What [`simulate`] wrote (the CLI prints it as JSON).
#[derive(Debug, Clone, Serialize)]
pub struct SimSummary {
    pub out_dir: PathBuf,
    pub truth_csv: PathBuf,
    pub snapshots_csv: PathBuf,
    pub n_sources: usize,
    pub sky: SkyRegion,
    pub snapshots: Vec<SnapshotInfo>,
}

/// One source of the sky model (intrinsic flux; sizes are FWHM, 0 for points).
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: String,
    pub ra_deg: f64,
    pub dec_deg: f64,
    pub flux_jy: f64,
    pub maj_arcsec: f64,
    pub min_arcsec: f64,
    pub pa_deg: f64,
}

/// Greenwich mean sidereal time in degrees [0, 360) (IAU 1982 expression; UT1 = UTC).
pub fn gmst_deg(t: DateTime<Utc>) -> f64 {
    // Days from J2000.0 (2000-01-01T12:00:00 UT1), computed from the Unix time to keep precision.
    let unix = t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) * 1e-9;
    let d = (unix - 946_728_000.0) / 86_400.0;
    let tc = d / 36_525.0;
    // 360.98564736629·d split as 360·d + 0.98564736629·d so the large part cancels mod 360.
    let whole = 360.0 * d.fract();
    let g = 280.460_618_37 + whole + 0.985_647_366_29 * d + 0.000_387_933 * tc * tc
        - tc * tc * tc / 38_710_000.0;
    wrap360(g)
}

/// Local mean sidereal time at OVRO in degrees [0, 360).
pub fn lst_ovro_deg(t: DateTime<Utc>) -> f64 {
    wrap360(gmst_deg(t) + OVRO_LON_DEG)
}

/// Wraps an angle in degrees into [0, 360).
pub fn wrap360(x: f64) -> f64 {
    let r = x.rem_euclid(360.0);
    if r >= 360.0 { 0.0 } else { r }
}

/// A snapshot's orthographic (SIN, no PV terms) celestial grid in FITS conventions: 1-based
/// reference pixel, `cdelt` in degrees (CDELT1 < 0 for RA increasing to the left), LONPOLE =
/// 180°. Positions and pixels go through [`crate::wcs`].
#[derive(Debug, Clone)]
pub struct SinGrid {
    pub ra0_deg: f64,
    pub dec0_deg: f64,
    pub crpix1: f64,
    pub crpix2: f64,
    pub cdelt1_deg: f64,
    pub cdelt2_deg: f64,
    wcs: Wcs,
}

impl SinGrid {
    pub fn new(ra0_deg: f64, dec0_deg: f64, crpix: (f64, f64), cdelt_deg: (f64, f64)) -> SinGrid {
        let wcs = Wcs::new(
            "SIN",
            (ra0_deg, dec0_deg),
            (crpix.0 - 1.0, crpix.1 - 1.0),
            cdelt_deg,
            Frame::Icrs,
        )
        .expect("a SIN grid with a finite, non-zero cell is valid");
        SinGrid {
            ra0_deg,
            dec0_deg,
            crpix1: crpix.0,
            crpix2: crpix.1,
            cdelt1_deg: cdelt_deg.0,
            cdelt2_deg: cdelt_deg.1,
            wcs,
        }
    }

    /// Angular separation (radians) of a position from the reference point.
    pub fn separation_rad(&self, ra_deg: f64, dec_deg: f64) -> f64 {
        separation_deg((self.ra0_deg, self.dec0_deg), (ra_deg, dec_deg)).to_radians()
    }

    /// FITS (1-based) pixel of a position, or `None` on the far hemisphere (SIN cannot show it).
    pub fn world_to_pixel(&self, ra_deg: f64, dec_deg: f64) -> Option<(f64, f64)> {
        if self.separation_rad(ra_deg, dec_deg) >= std::f64::consts::FRAC_PI_2 {
            return None;
        }
        let (x, y) = self.wcs.icrs_to_pix(ra_deg, dec_deg)?;
        Some((x + 1.0, y + 1.0))
    }

    /// Sky position (RA in [0, 360), Dec) of a FITS (1-based) pixel, or `None` off the sphere.
    pub fn pixel_to_world(&self, p1: f64, p2: f64) -> Option<(f64, f64)> {
        let (ra, dec) = self.wcs.pix_to_icrs(p1 - 1.0, p2 - 1.0)?;
        Some((wrap360(ra), dec))
    }

    /// Angular separation (radians) from the reference point of a FITS (1-based) pixel.
    pub fn pixel_separation_rad(&self, p1: f64, p2: f64) -> Option<f64> {
        let (ra, dec) = self.pixel_to_world(p1, p2)?;
        Some(self.separation_rad(ra, dec))
    }
}

/// A 2-D Gaussian in pixel coordinates as a covariance matrix (pixels²).
#[derive(Debug, Clone, Copy)]
struct Cov {
    xx: f64,
    xy: f64,
    yy: f64,
}

impl Cov {
    /// From FWHM axes (pixels) and a position angle (degrees, north through east). Pixel x
    /// grows to the west (CDELT1 < 0), y to the north.
    fn from_fwhm(maj_px: f64, min_px: f64, pa_deg: f64) -> Cov {
        let (s1, s2) = (maj_px / FWHM_PER_SIGMA, min_px / FWHM_PER_SIGMA);
        let (s, c) = pa_deg.to_radians().sin_cos();
        // Major axis along (−sin pa, cos pa), minor along (cos pa, sin pa).
        Cov {
            xx: s1 * s1 * s * s + s2 * s2 * c * c,
            yy: s1 * s1 * c * c + s2 * s2 * s * s,
            xy: (s2 * s2 - s1 * s1) * s * c,
        }
    }
    fn add(self, o: Cov) -> Cov {
        Cov {
            xx: self.xx + o.xx,
            xy: self.xy + o.xy,
            yy: self.yy + o.yy,
        }
    }
    fn det(self) -> f64 {
        self.xx * self.yy - self.xy * self.xy
    }
    /// exp(−½ dᵀ Σ⁻¹ d) evaluator coefficients: q = a dx² + 2 b dx dy + c dy².
    fn quad(self) -> (f64, f64, f64) {
        let det = self.det();
        (self.yy / det, -self.xy / det, self.xx / det)
    }
}

/// One snapshot's pointing, time, beam and noise, fixed before any pixel is rendered.
#[derive(Debug, Clone)]
struct Plan {
    index: usize,
    start: DateTime<Utc>,
    mid: DateTime<Utc>,
    /// Unwrapped RA (degrees, RA_0 + rate·elapsed) for the sky region; `ra` is wrapped.
    ra_unwrapped: f64,
    ra: f64,
    rms: f64,
    bpa: f64,
    stem: String,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed for one random stream, derived from the run seed and a path of labels.
fn derive_seed(seed: u64, parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(splitmix64(seed), |acc, &p| splitmix64(acc ^ splitmix64(p)))
}

const TAG_SKY: u64 = 1;
const TAG_IMAGE: u64 = 2;
const TAG_NOISE: u64 = 3;

fn invalid(field: &'static str, value: impl ToString, reason: &str) -> SimError {
    SimError::Invalid {
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl SimConfig {
    /// Checks every setting; the messages say which flag to change.
    pub fn validate(&self) -> Result<(), SimError> {
        if BeamModel::for_telescope(&self.telescope).is_none() {
            return Err(invalid(
                "telescope",
                &self.telescope,
                &format!(
                    "give one of {}",
                    crate::mosaic::beam::builtin_telescopes().join(", ")
                ),
            ));
        }
        if self.images == 0 || self.images > 100_000 {
            return Err(invalid("images", self.images, "give 1 to 100000 snapshots"));
        }
        if self.size < 8 || self.size > 32_768 {
            return Err(invalid("size", self.size, "give 8 to 32768 pixels"));
        }
        if !(self.cell.is_finite() && self.cell > 0.0) {
            return Err(invalid(
                "cell",
                self.cell,
                "the pixel size must be a positive number of arcsec",
            ));
        }
        // The SIN projection only shows a hemisphere: the image's corners must stay on it.
        let half_diag_l =
            (self.size as f64 / 2.0 + 1.0) * (self.cell / 3600.0).to_radians() * 2f64.sqrt();
        if half_diag_l >= 1.0 {
            return Err(invalid(
                "cell",
                self.cell,
                "size × cell is too large for a SIN image (its corners would be off the sky); use a smaller size or cell",
            ));
        }
        if !(self.dec.is_finite() && self.dec.abs() < 89.0) {
            return Err(invalid(
                "dec",
                self.dec,
                "give a declination between −89 and +89 degrees",
            ));
        }
        if !(self.cadence.is_finite() && self.cadence > 0.0 && self.cadence <= 86_400.0) {
            return Err(invalid(
                "cadence",
                self.cadence,
                "give 0 < cadence ≤ 86400 seconds",
            ));
        }
        if let Some(ra) = self.ra_start
            && !ra.is_finite()
        {
            return Err(invalid("ra_start", ra, "give an RA in degrees"));
        }
        if !(self.freq_hz.is_finite() && self.freq_hz > 1e6) {
            return Err(invalid(
                "freq_hz",
                self.freq_hz,
                "give a frequency in Hz above 1 MHz",
            ));
        }
        if !(self.noise_jy.is_finite() && self.noise_jy >= 0.0) {
            return Err(invalid(
                "noise_jy",
                self.noise_jy,
                "give a noise rms ≥ 0 in Jy/beam",
            ));
        }
        Ok(())
    }

    /// The telescope's primary beam (validated to exist).
    fn beam(&self) -> BeamModel {
        BeamModel::for_telescope(&self.telescope)
            .unwrap_or_else(|| BeamModel::gaussian(crate::mosaic::beam::DSA110_DISH_M))
    }

    fn cell_deg(&self) -> f64 {
        self.cell / 3600.0
    }

    fn bmaj_deg(&self) -> f64 {
        BMAJ_CELLS * self.cell_deg()
    }

    fn bmin_deg(&self) -> f64 {
        BMIN_CELLS * self.cell_deg()
    }

    fn grid(&self, ra0: f64) -> SinGrid {
        let c = (self.size / 2 + 1) as f64;
        SinGrid::new(ra0, self.dec, (c, c), (-self.cell_deg(), self.cell_deg()))
    }
}

fn time_at(start: DateTime<Utc>, seconds: f64) -> DateTime<Utc> {
    start + chrono::Duration::nanoseconds((seconds * 1e9).round() as i64)
}

fn plans(cfg: &SimConfig) -> Vec<Plan> {
    let ra0_unwrapped = match cfg.ra_start {
        Some(r) => r,
        None => lst_ovro_deg(time_at(cfg.start, 0.5 * cfg.cadence)),
    };
    (0..cfg.images)
        .map(|i| {
            let start = time_at(cfg.start, i as f64 * cfg.cadence);
            let mid = time_at(cfg.start, (i as f64 + 0.5) * cfg.cadence);
            let elapsed_h = i as f64 * cfg.cadence / 3600.0;
            let ra_unwrapped = ra0_unwrapped + SIDEREAL_RATE_DEG_PER_H * elapsed_h;
            let ra = match cfg.ra_start {
                Some(_) => wrap360(ra_unwrapped),
                None => lst_ovro_deg(mid),
            };
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, &[TAG_IMAGE, i as u64]));
            let factor: f64 = rng.random_range(0.7..1.4);
            let bpa: f64 = rng.random_range(-90.0..90.0);
            Plan {
                index: i,
                start,
                mid,
                ra_unwrapped,
                ra,
                rms: cfg.noise_jy * factor,
                bpa,
                stem: format!("snap_{i:04}_{}", crate::time::compact(start)),
            }
        })
        .collect()
}

/// The angular radius (degrees) around each phase centre where sources matter: the image's
/// half-diagonal, capped at 4 primary-beam FWHM (A < 1e-19 beyond), plus the render margin.
fn sky_radius_deg(cfg: &SimConfig) -> f64 {
    let half_diag_l = (cfg.size as f64 / 2.0 + 1.0) * cfg.cell_deg().to_radians() * 2f64.sqrt();
    let half_diag = half_diag_l.min(1.0).asin().to_degrees();
    let fwhm = cfg.beam().fwhm_rad(cfg.freq_hz).to_degrees();
    let beam_sigma = cfg.bmaj_deg() / FWHM_PER_SIGMA;
    let src_sigma = GAUSS_MAJ_MAX_ARCSEC / 3600.0 / FWHM_PER_SIGMA;
    let margin = STAMP_NSIGMA * (beam_sigma.powi(2) + src_sigma.powi(2)).sqrt();
    half_diag.min(4.0 * fwhm) + margin
}

fn sky_region(cfg: &SimConfig, plans: &[Plan]) -> (f64, f64, f64, f64) {
    let r = sky_radius_deg(cfg);
    let dec_lo = (cfg.dec - r).max(-90.0);
    let dec_hi = (cfg.dec + r).min(90.0);
    let first = plans.first().map_or(0.0, |p| p.ra_unwrapped);
    let last = plans.last().map_or(0.0, |p| p.ra_unwrapped);
    let max_abs_dec = dec_lo.abs().max(dec_hi.abs());
    let full = (0.0, 360.0);
    let (ra_lo, width) = if max_abs_dec >= 89.0 {
        full
    } else {
        let dra = r / max_abs_dec.to_radians().cos();
        let width = last - first + 2.0 * dra;
        if width >= 360.0 {
            full
        } else {
            (wrap360(first - dra), width)
        }
    };
    (ra_lo, width, dec_lo, dec_hi)
}

fn make_sky(cfg: &SimConfig, region: (f64, f64, f64, f64)) -> (Vec<Source>, SkyRegion) {
    let (ra_lo, width, dec_lo, dec_hi) = region;
    let (s_lo, s_hi) = (dec_lo.to_radians().sin(), dec_hi.to_radians().sin());
    let area = width * (s_hi - s_lo) * (180.0 / PI);
    let n_point = (area * POINT_DENSITY_PER_DEG2).round() as usize;
    let n_gauss = ((area * GAUSS_DENSITY_PER_DEG2).round() as usize).max(GAUSS_MIN_COUNT);
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, &[TAG_SKY]));
    let position = |rng: &mut ChaCha8Rng| {
        let ra = wrap360(ra_lo + width * rng.random::<f64>());
        let dec = (s_lo + (s_hi - s_lo) * rng.random::<f64>())
            .clamp(-1.0, 1.0)
            .asin()
            .to_degrees();
        (ra, dec)
    };
    let mut sources = Vec::with_capacity(n_point + n_gauss);
    let (a, b) = (POINT_FLUX_MIN_JY.powf(-1.5), POINT_FLUX_MAX_JY.powf(-1.5));
    for k in 0..n_point {
        let (ra, dec) = position(&mut rng);
        // Inverse CDF of N(>S) ∝ S^−1.5 truncated to [S_min, S_max].
        let u: f64 = rng.random();
        let flux = (a - u * (a - b)).powf(-1.0 / 1.5);
        sources.push(Source {
            name: format!("P{:06}", k + 1),
            ra_deg: ra,
            dec_deg: dec,
            flux_jy: flux,
            maj_arcsec: 0.0,
            min_arcsec: 0.0,
            pa_deg: 0.0,
        });
    }
    for k in 0..n_gauss {
        let (ra, dec) = position(&mut rng);
        let flux = 10f64.powf(rng.random_range((0.01f64).log10()..(0.2f64).log10()));
        let maj = rng.random_range(60.0..GAUSS_MAJ_MAX_ARCSEC);
        let min = maj * rng.random_range(0.3..1.0);
        let pa = rng.random_range(0.0..180.0);
        sources.push(Source {
            name: format!("G{:04}", k + 1),
            ra_deg: ra,
            dec_deg: dec,
            flux_jy: flux,
            maj_arcsec: maj,
            min_arcsec: min,
            pa_deg: pa,
        });
    }
    let region = SkyRegion {
        ra_min_deg: ra_lo,
        ra_width_deg: width,
        dec_min_deg: dec_lo,
        dec_max_deg: dec_hi,
        area_deg2: area,
        n_point,
        n_gaussian: n_gauss,
    };
    (sources, region)
}

/// Correlated noise: seeded white noise convolved with the restoring beam (peak-1 kernel,
/// truncated at 4σ) and scaled by σ / sqrt(Σk²), so the expected rms is exactly `rms`.
fn noise_image(cfg: &SimConfig, plan: &Plan, beam: Cov) -> Vec<f32> {
    let n = cfg.size;
    let mut out = vec![0f32; n * n];
    if plan.rms == 0.0 {
        return out;
    }
    let rx = (NOISE_KERNEL_NSIGMA * beam.xx.sqrt()).ceil() as usize;
    let ry = (NOISE_KERNEL_NSIGMA * beam.yy.sqrt()).ceil() as usize;
    let (qa, qb, qc) = beam.quad();
    let kw = 2 * rx + 1;
    let mut kernel = vec![0f64; kw * (2 * ry + 1)];
    for (j, row) in kernel.chunks_mut(kw).enumerate() {
        let dy = j as f64 - ry as f64;
        for (i, k) in row.iter_mut().enumerate() {
            let dx = i as f64 - rx as f64;
            let q = qa * dx * dx + 2.0 * qb * dx * dy + qc * dy * dy;
            let v = (-0.5 * q).exp();
            *k = if v < 1e-6 { 0.0 } else { v };
        }
    }
    let norm = plan.rms / kernel.iter().map(|k| k * k).sum::<f64>().sqrt();
    let kernel: Vec<f32> = kernel.iter().map(|k| (k * norm) as f32).collect();

    let wpad = n + 2 * rx;
    let hpad = n + 2 * ry;
    let mut white = vec![0f32; wpad * hpad];
    white.par_chunks_mut(wpad).enumerate().for_each(|(j, row)| {
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(
            cfg.seed,
            &[TAG_NOISE, plan.index as u64, j as u64],
        ));
        for v in row.iter_mut() {
            *v = rng.sample(StandardNormal);
        }
    });
    out.par_chunks_mut(n).enumerate().for_each(|(y, orow)| {
        for (j, krow) in kernel.chunks(kw).enumerate() {
            let wrow = &white[(y + j) * wpad..(y + j + 1) * wpad];
            for (i, &k) in krow.iter().enumerate() {
                if k == 0.0 {
                    continue;
                }
                let src = &wrow[i..i + n];
                for (o, &w) in orow.iter_mut().zip(src) {
                    *o += k * w;
                }
            }
        }
    });
    out
}

/// Adds every source, attenuated by the primary beam and convolved with the restoring beam.
fn add_sources(cfg: &SimConfig, grid: &SinGrid, beam: Cov, sources: &[Source], img: &mut [f32]) {
    let n = cfg.size as isize;
    let beam_det_sqrt = beam.det().sqrt();
    let pb = cfg.beam();
    for s in sources {
        let Some((p1, p2)) = grid.world_to_pixel(s.ra_deg, s.dec_deg) else {
            continue;
        };
        // 0-based pixel position.
        let (px, py) = (p1 - 1.0, p2 - 1.0);
        let cov = if s.maj_arcsec > 0.0 {
            let cell = cfg.cell;
            beam.add(Cov::from_fwhm(
                s.maj_arcsec / cell,
                s.min_arcsec / cell,
                s.pa_deg,
            ))
        } else {
            beam
        };
        let rx = STAMP_NSIGMA * cov.xx.sqrt();
        let ry = STAMP_NSIGMA * cov.yy.sqrt();
        if px + rx < 0.0 || py + ry < 0.0 || px - rx > (n - 1) as f64 || py - ry > (n - 1) as f64 {
            continue;
        }
        let a = pb.response(grid.separation_rad(s.ra_deg, s.dec_deg), cfg.freq_hz);
        // Integrated flux S·A spread over the convolved Gaussian, in Jy per beam area.
        let peak = s.flux_jy * a * beam_det_sqrt / cov.det().sqrt();
        let (qa, qb, qc) = cov.quad();
        let x0 = ((px - rx).floor() as isize).max(0);
        let x1 = ((px + rx).ceil() as isize).min(n - 1);
        let y0 = ((py - ry).floor() as isize).max(0);
        let y1 = ((py + ry).ceil() as isize).min(n - 1);
        for iy in y0..=y1 {
            let dy = iy as f64 - py;
            let row = &mut img[(iy * n) as usize..((iy + 1) * n) as usize];
            for ix in x0..=x1 {
                let dx = ix as f64 - px;
                let q = qa * dx * dx + 2.0 * qb * dx * dy + qc * dy * dy;
                row[ix as usize] += (peak * (-0.5 * q).exp()) as f32;
            }
        }
    }
}

fn pb_image(cfg: &SimConfig, grid: &SinGrid) -> Vec<f32> {
    let n = cfg.size;
    let mut out = vec![0f32; n * n];
    let pb = cfg.beam();
    out.par_chunks_mut(n).enumerate().for_each(|(iy, row)| {
        for (ix, v) in row.iter_mut().enumerate() {
            *v = match grid.pixel_separation_rad(ix as f64 + 1.0, iy as f64 + 1.0) {
                Some(sep) => pb.response(sep, cfg.freq_hz) as f32,
                None => f32::NAN,
            };
        }
    });
    out
}

fn image_header(cfg: &SimConfig, plan: &Plan, grid: &SinGrid, pb: bool) -> Header {
    let mut h = Header::new();
    let f = |x: f64| Value::Float(x);
    let s = |x: &str| Value::Str(x.to_string());
    let object = format!("DRIFT_{:04}", plan.index);
    h.set("OBJECT", s(&object), "simulated drift-scan snapshot");
    h.set(
        "BUNIT",
        s(if pb { "" } else { "JY/BEAM" }),
        if pb {
            "primary-beam response A"
        } else {
            "apparent brightness"
        },
    );
    h.set("BTYPE", s(if pb { "Beam" } else { "Intensity" }), "");
    h.set(
        "BMAJ",
        f(cfg.bmaj_deg()),
        "[deg] restoring beam major axis FWHM",
    );
    h.set(
        "BMIN",
        f(cfg.bmin_deg()),
        "[deg] restoring beam minor axis FWHM",
    );
    h.set(
        "BPA",
        f(plan.bpa),
        "[deg] restoring beam position angle, N through E",
    );
    h.set("CTYPE1", s("RA---SIN"), "");
    h.set("CRVAL1", f(grid.ra0_deg), "[deg] phase centre RA");
    h.set("CDELT1", f(grid.cdelt1_deg), "[deg]");
    h.set("CRPIX1", f(grid.crpix1), "");
    h.set("CUNIT1", s("deg"), "");
    h.set("CTYPE2", s("DEC--SIN"), "");
    h.set("CRVAL2", f(grid.dec0_deg), "[deg] phase centre Dec");
    h.set("CDELT2", f(grid.cdelt2_deg), "[deg]");
    h.set("CRPIX2", f(grid.crpix2), "");
    h.set("CUNIT2", s("deg"), "");
    h.set("CTYPE3", s("FREQ"), "");
    h.set("CRVAL3", f(cfg.freq_hz), "[Hz]");
    h.set("CDELT3", f(BANDWIDTH_HZ), "[Hz] bandwidth");
    h.set("CRPIX3", f(1.0), "");
    h.set("CUNIT3", s("Hz"), "");
    h.set("CTYPE4", s("STOKES"), "");
    h.set("CRVAL4", f(1.0), "Stokes I");
    h.set("CDELT4", f(1.0), "");
    h.set("CRPIX4", f(1.0), "");
    h.set("CUNIT4", s(""), "");
    h.set("RADESYS", s("ICRS"), "");
    h.set("LONPOLE", f(180.0), "");
    h.set("SPECSYS", s("TOPOCENT"), "");
    h.set("TELESCOP", s(&cfg.telescope), "");
    h.set("INSTRUME", s(&cfg.telescope), "");
    h.set("OBSERVER", s("contimg simulate"), "");
    h.set("ORIGIN", s("contimg simulate"), "");
    h.set("TIMESYS", s("UTC"), "");
    h.set(
        "DATE-OBS",
        s(&fits_date(plan.start)),
        "start of the snapshot (UTC); mid time in DATE-AVG",
    );
    h.set(
        "MJD-OBS",
        f(mjd(plan.start)),
        "[d] start of the snapshot (UTC)",
    );
    h.set(
        "DATE-AVG",
        s(&fits_date(plan.mid)),
        "mid time of the snapshot (UTC), RA on the meridian",
    );
    h.set(
        "MJD-AVG",
        f(mjd(plan.mid)),
        "[d] mid time of the snapshot (UTC)",
    );
    h.set("TELAPSE", f(cfg.cadence), "[s] snapshot duration");
    h.set("OBSRA", f(grid.ra0_deg), "[deg] pointing centre RA");
    h.set("OBSDEC", f(grid.dec0_deg), "[deg] pointing centre Dec");
    h.set("OBSGEO-L", f(OVRO_LON_DEG), "[deg] OVRO longitude");
    h.set("RESTFRQ", f(cfg.freq_hz), "[Hz]");
    h.set("DISHDIAM", f(cfg.beam().dish_m), "[m] dish diameter");
    h.set(
        "PBCOR",
        Value::Bool(false),
        "not primary-beam corrected (apparent sky)",
    );
    h.set(
        "SIMNOISE",
        f(plan.rms),
        "[Jy/beam] expected noise rms of this snapshot",
    );
    h.set("SIMSEED", Value::Int(cfg.seed as i64), "simulation seed");
    h.set(
        "SIMINDEX",
        Value::Int(plan.index as i64),
        "snapshot index in the run",
    );
    let ra_start = cfg.ra_start.map_or("lst".to_string(), |r| format!("{r}"));
    h.push_history(&format!(
        "contimg simulate images={} size={} cell={}arcsec dec={}deg start={} cadence={}s \
         seed={} ra_start={} freq={}Hz noise={}Jy pb_images={} snapshot={}",
        cfg.images,
        cfg.size,
        cfg.cell,
        cfg.dec,
        cfg.start.to_rfc3339(),
        cfg.cadence,
        cfg.seed,
        ra_start,
        cfg.freq_hz,
        cfg.noise_jy,
        cfg.pb_images,
        plan.index
    ));
    if pb {
        let b = cfg.beam();
        h.push_history(&format!(
            "primary beam: {:?}, FWHM = {} c/(RESTFRQ DISHDIAM)",
            b.shape, b.fwhm_factor
        ));
    }
    h
}

fn render_and_write(
    cfg: &SimConfig,
    plan: &Plan,
    sources: &[Source],
) -> Result<SnapshotInfo, SimError> {
    let grid = cfg.grid(plan.ra);
    let beam = Cov::from_fwhm(BMAJ_CELLS, BMIN_CELLS, plan.bpa);
    let mut img = noise_image(cfg, plan, beam);
    add_sources(cfg, &grid, beam, sources, &mut img);
    let shape = [cfg.size, cfg.size, 1, 1];
    let file = cfg.out.join(format!("{}.fits", plan.stem));
    write_image(&file, &shape, &img, &image_header(cfg, plan, &grid, false)).map_err(|source| {
        SimError::Write {
            path: file.clone(),
            source,
        }
    })?;
    drop(img);
    let pb_file = if cfg.pb_images {
        let path = cfg.out.join(format!("{}.pb.fits", plan.stem));
        let pb = pb_image(cfg, &grid);
        write_image(&path, &shape, &pb, &image_header(cfg, plan, &grid, true)).map_err(
            |source| SimError::Write {
                path: path.clone(),
                source,
            },
        )?;
        Some(path)
    } else {
        None
    };
    Ok(SnapshotInfo {
        index: plan.index,
        file,
        pb_file,
        ra_deg: plan.ra,
        dec_deg: cfg.dec,
        date_obs: fits_date(plan.start),
        mjd_obs: mjd(plan.start),
        rms_jy: plan.rms,
        bmaj_deg: cfg.bmaj_deg(),
        bmin_deg: cfg.bmin_deg(),
        bpa_deg: plan.bpa,
    })
}

fn write_csv(path: &Path, text: &str) -> Result<(), SimError> {
    write_bytes_atomic(path, text.as_bytes()).map_err(|source| SimError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs the simulation described by `cfg` (see the module documentation) and writes into
/// `cfg.out`: `snap_NNNN_YYYYMMDDTHHMMSS.fits` per snapshot (+ `.pb.fits` when asked),
/// `truth.csv` and `snapshots.csv`. `progress(1)` is called once per finished snapshot, always
/// from the calling thread.
pub fn simulate(cfg: &SimConfig, progress: &dyn Fn(usize)) -> Result<SimSummary, SimError> {
    cfg.validate()?;
    std::fs::create_dir_all(&cfg.out).map_err(|source| SimError::OutDir {
        path: cfg.out.clone(),
        source,
    })?;
    let plans = plans(cfg);
    let (sources, sky) = make_sky(cfg, sky_region(cfg, &plans));

    // Only the sources near a snapshot are rendered in it.
    let radius_rad = sky_radius_deg(cfg).min(89.0).to_radians();
    // Snapshots render as tasks in the caller's rayon pool; the calling thread collects them and
    // reports progress (it helps with the work when it is itself a worker of that pool).
    let mut results: Vec<Option<Result<SnapshotInfo, SimError>>> = Vec::new();
    results.resize_with(plans.len(), || None);
    rayon::in_place_scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<SnapshotInfo, SimError>)>();
        for plan in &plans {
            let tx = tx.clone();
            let sources = &sources;
            scope.spawn(move |_| {
                let grid = cfg.grid(plan.ra);
                let near: Vec<Source> = sources
                    .iter()
                    .filter(|s| grid.separation_rad(s.ra_deg, s.dec_deg) <= radius_rad)
                    .cloned()
                    .collect();
                let _ = tx.send((plan.index, render_and_write(cfg, plan, &near)));
            });
        }
        drop(tx);
        let mut take = |(i, r): (usize, Result<SnapshotInfo, SimError>)| {
            results[i] = Some(r);
            progress(1);
        };
        loop {
            match rx.try_recv() {
                Ok(done) => take(done),
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        match rx.recv_timeout(Duration::from_millis(5)) {
                            Ok(done) => take(done),
                            Err(RecvTimeoutError::Disconnected) => break,
                            Err(RecvTimeoutError::Timeout) => {}
                        }
                    }
                }
            }
        }
    });
    let snapshots = results
        .into_iter()
        .map(|r| r.expect("every snapshot task reports exactly once"))
        .collect::<Result<Vec<_>, _>>()?;

    let mut truth = String::from("name,ra_deg,dec_deg,flux_jy,maj_arcsec,min_arcsec,pa_deg\n");
    for s in &sources {
        let _ = writeln!(
            truth,
            "{},{},{},{},{},{},{}",
            s.name, s.ra_deg, s.dec_deg, s.flux_jy, s.maj_arcsec, s.min_arcsec, s.pa_deg
        );
    }
    let truth_csv = cfg.out.join("truth.csv");
    write_csv(&truth_csv, &truth)?;
    let mut snaps =
        String::from("file,ra_deg,dec_deg,date_obs,mjd_obs,rms_jy,bmaj_deg,bmin_deg,bpa_deg\n");
    for s in &snapshots {
        let name = s
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            snaps,
            "{},{},{},{},{},{},{},{},{}",
            name,
            s.ra_deg,
            s.dec_deg,
            s.date_obs,
            s.mjd_obs,
            s.rms_jy,
            s.bmaj_deg,
            s.bmin_deg,
            s.bpa_deg
        );
    }
    let snapshots_csv = cfg.out.join("snapshots.csv");
    write_csv(&snapshots_csv, &snaps)?;
    Ok(SimSummary {
        out_dir: cfg.out.clone(),
        truth_csv,
        snapshots_csv,
        n_sources: sources.len(),
        sky,
        snapshots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmst_matches_the_iau_1982_value_at_j2000() {
        let t = Utc.with_ymd_and_hms(2000, 1, 1, 12, 0, 0).unwrap();
        assert!((gmst_deg(t) - 280.460_618_37).abs() < 1e-9);
        // One solar day later the sidereal clock has gained ~3m56s = 0.9856°.
        let t2 = Utc.with_ymd_and_hms(2000, 1, 2, 12, 0, 0).unwrap();
        let gain = wrap360(gmst_deg(t2) - gmst_deg(t));
        assert!((gain - 0.985_647_366).abs() < 1e-6, "{gain}");
        assert!((mjd(t) - 51_544.5).abs() < 1e-12);
    }

    #[test]
    fn sin_grid_round_trips_and_orients_like_fits() {
        let g = SinGrid::new(359.5, 35.0, (129.0, 129.0), (-30.0 / 3600.0, 30.0 / 3600.0));
        let (x, y) = g.world_to_pixel(359.5, 35.0).unwrap();
        assert!((x - 129.0).abs() < 1e-12 && (y - 129.0).abs() < 1e-12);
        // East (RA increasing, across 0h) is to the left; north is up.
        let (x, _) = g.world_to_pixel(0.2, 35.0).unwrap();
        assert!(x < 129.0);
        let (_, y) = g.world_to_pixel(359.5, 35.5).unwrap();
        assert!((y - 129.0 - 60.0).abs() < 0.01, "{y}");
        for &(p1, p2) in &[(1.0, 1.0), (256.0, 3.0), (40.5, 200.25), (129.0, 129.0)] {
            let (ra, dec) = g.pixel_to_world(p1, p2).unwrap();
            let (q1, q2) = g.world_to_pixel(ra, dec).unwrap();
            assert!(
                (q1 - p1).abs() < 1e-8 && (q2 - p2).abs() < 1e-8,
                "{p1},{p2} -> {q1},{q2}"
            );
            // SIN: the pixel's distance from the reference is sin(separation).
            let sep = g.pixel_separation_rad(p1, p2).unwrap();
            let r = ((p1 - 129.0).hypot(p2 - 129.0) * 30.0 / 3600.0).to_radians();
            assert!(
                (sep.sin() - r).abs() < 1e-12,
                "{p1},{p2}: {sep} vs asin({r})"
            );
        }
        assert!(g.world_to_pixel(179.5, -35.0).is_none());
    }

    #[test]
    fn beam_covariance_has_the_right_axes_and_orientation() {
        // PA = 90°: major axis east-west, i.e. along pixel x.
        let c = Cov::from_fwhm(4.0, 2.0, 90.0);
        assert!((c.xx.sqrt() * FWHM_PER_SIGMA - 4.0).abs() < 1e-12);
        assert!((c.yy.sqrt() * FWHM_PER_SIGMA - 2.0).abs() < 1e-12);
        assert!(c.xy.abs() < 1e-12);
        // PA = 45°: major axis towards north-east, i.e. towards −x, +y: negative xy covariance.
        let c = Cov::from_fwhm(4.0, 2.0, 45.0);
        assert!(c.xy < 0.0);
        // Convolution adds areas: det grows.
        let b = Cov::from_fwhm(3.2, 2.6, 10.0);
        assert!(b.add(c).det() > b.det());
    }

    #[test]
    fn config_validation_names_the_field() {
        let mut c = SimConfig {
            size: 4,
            ..SimConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(SimError::Invalid { field: "size", .. })
        ));
        c.size = 4096;
        c.cell = 3600.0;
        assert!(matches!(
            c.validate(),
            Err(SimError::Invalid { field: "cell", .. })
        ));
        let c = SimConfig {
            dec: 95.0,
            ..SimConfig::default()
        };
        assert!(c.validate().is_err());
        assert!(SimConfig::default().validate().is_ok());
    }

    #[test]
    fn plans_follow_the_sidereal_clock_and_wrap() {
        let cfg = SimConfig {
            images: 3,
            ra_start: Some(359.0),
            ..SimConfig::default()
        };
        let p = plans(&cfg);
        assert_eq!(p[0].ra, 359.0);
        assert!(
            (p[1].ra - (359.0 + 1.253_422_386_4 - 360.0)).abs() < 1e-6,
            "{}",
            p[1].ra
        );
        assert!(p.iter().all(|q| (0.0..360.0).contains(&q.ra)));
        assert!(
            p.iter()
                .all(|q| (0.7e-3 * 0.5..=1.4e-3 * 0.5).contains(&q.rms))
        );
        let cfg = SimConfig::default();
        let p = plans(&cfg);
        for q in &p {
            assert!((q.ra - lst_ovro_deg(q.mid)).abs() < 1e-12);
            assert_eq!((q.mid - q.start).num_seconds(), 150);
        }
        assert!(p[0].stem < p[1].stem && p[1].stem < p[2].stem);
        assert_eq!(p[0].stem, "snap_0000_20260101T000000");
    }

    #[test]
    fn sky_density_gives_a_few_dozen_sources_per_default_snapshot() {
        let cfg = SimConfig::default();
        let p = plans(&cfg);
        let (sources, region) = make_sky(&cfg, sky_region(&cfg, &p));
        assert_eq!(sources.len(), region.n_point + region.n_gaussian);
        let g = cfg.grid(p[1].ra);
        let inside = sources
            .iter()
            .filter(|s| {
                g.world_to_pixel(s.ra_deg, s.dec_deg)
                    .is_some_and(|(x, y)| (0.5..=256.5).contains(&x) && (0.5..=256.5).contains(&y))
            })
            .count();
        assert!(
            (15..=80).contains(&inside),
            "{inside} sources in a default snapshot"
        );
        let fluxes: Vec<f64> = sources
            .iter()
            .filter(|s| s.maj_arcsec == 0.0)
            .map(|s| s.flux_jy)
            .collect();
        assert!(
            fluxes
                .iter()
                .all(|&f| (POINT_FLUX_MIN_JY..=POINT_FLUX_MAX_JY).contains(&f))
        );
        // Euclidean counts: half of the sources above 2 mJy are above 2·2^(2/3) ≈ 3.17 mJy.
        let above = fluxes
            .iter()
            .filter(|&&f| f > 2e-3 * 2f64.powf(2.0 / 3.0))
            .count() as f64;
        let frac = above / fluxes.len() as f64;
        assert!((frac - 0.5).abs() < 0.08, "{frac}");
    }

    #[test]
    fn rendered_sources_carry_their_flux_times_the_primary_beam() {
        let cfg = SimConfig {
            size: 128,
            noise_jy: 0.0,
            ..SimConfig::default()
        };
        let grid = cfg.grid(10.0);
        let beam = Cov::from_fwhm(BMAJ_CELLS, BMIN_CELLS, 30.0);
        let beam_area_px = 2.0 * PI * beam.det().sqrt();
        let (ra, dec) = grid.pixel_to_world(60.3, 70.8).unwrap();
        let sep = grid.pixel_separation_rad(60.3, 70.8).unwrap();
        let a =
            crate::mosaic::beam::pb_response(sep, cfg.freq_hz, crate::mosaic::beam::DSA110_DISH_M);
        for (maj, min) in [(0.0, 0.0), (240.0, 90.0)] {
            let src = Source {
                name: "X".into(),
                ra_deg: ra,
                dec_deg: dec,
                flux_jy: 0.1,
                maj_arcsec: maj,
                min_arcsec: min,
                pa_deg: 20.0,
            };
            let mut img = vec![0f32; 128 * 128];
            add_sources(&cfg, &grid, beam, &[src], &mut img);
            let total: f64 = img.iter().map(|&v| f64::from(v)).sum();
            let integrated = total / beam_area_px;
            assert!(
                (integrated - 0.1 * a).abs() < 1e-4 * 0.1,
                "{maj}: {integrated} vs {}",
                0.1 * a
            );
            // The brightest pixel is the one holding the position (0-based 59.3, 69.8 -> 59, 70).
            let imax = img
                .iter()
                .enumerate()
                .max_by(|x, y| x.1.total_cmp(y.1))
                .unwrap()
                .0;
            assert_eq!((imax % 128, imax / 128), (59, 70));
            if maj == 0.0 {
                let peak = 0.1
                    * a
                    * (-0.5 * {
                        let (qa, qb, qc) = beam.quad();
                        let (dx, dy) = (-0.3, 0.2);
                        qa * dx * dx + 2.0 * qb * dx * dy + qc * dy * dy
                    })
                    .exp();
                assert!((f64::from(img[imax]) - peak).abs() < 1e-6);
            }
        }
    }
}
