//! The build: headers → grid (refused early when too large) → per-input reprojection and
//! linmos accumulation (one reader thread feeding a bounded queue, rayon over output rows) →
//! mosaic, weight and noise FITS written atomically, and a result record.
//!
//! Invariants: inputs are read one at a time by a single reader thread through a channel of
//! capacity one, so at most three input planes (plus their beam images) are alive; accumulators
//! are indexed `y * nx + x`; an input whose footprint misses the grid contributes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use rayon::prelude::*;

use super::grid::{Footprint, GridChoice, GridError, OutputGrid, norm_ra, wrap180};
use super::kernel::{
    BicubicK, BilinearK, Interpolation, Kernel, Lanczos3DirectK, Lanczos3K, NearestK, Plane,
};
use super::mesh::{Mesh, MeshTolerance, Node, PixBox, walk_range};
use crate::fits::facts;
use crate::fits::write::{PixelFill, StagedImage};
use crate::fits::{Card, Header, Value};
use crate::manifest::ProductHashes;
use crate::mosaic::beam::{BeamModel, Telescope, telescope_key};
use crate::mosaic::observation::{
    self, ImageKind, PointingSource, beam_image, beam_image_candidates,
};
use crate::wcs::Wcs;

const D2R: f64 = std::f64::consts::PI / 180.0;

/// One input image and what the caller knows about it. `None` fields are taken from the header.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MosaicInput {
    pub path: PathBuf,
    /// Image rms σ in Jy/beam (must be positive).
    pub rms_jy: f64,
    /// Whether the pixels are already primary-beam corrected (header PBCOR when None, else false).
    pub pb_corrected: Option<bool>,
    /// Observing frequency (header RESTFRQ/RESTFREQ, else the FREQ axis value).
    pub freq_hz: Option<f64>,
    /// Dish diameter (header DISHDIAM, else the telescope's, else the default dish).
    pub dish_m: Option<f64>,
    /// Restoring beam (BMAJ, BMIN, BPA) in degrees (header when None).
    pub beam_deg: Option<(f64, f64, f64)>,
    /// Observation time (header DATE-OBS / MJD-OBS when None).
    pub date_obs: Option<String>,
    pub mjd_obs: Option<f64>,
}

impl MosaicInput {
    /// An input with everything but the rms taken from its header.
    pub fn new(path: impl Into<PathBuf>, rms_jy: f64) -> MosaicInput {
        MosaicInput {
            path: path.into(),
            rms_jy,
            pb_corrected: None,
            freq_hz: None,
            dish_m: None,
            beam_deg: None,
            date_obs: None,
            mjd_obs: None,
        }
    }
}

/// Where the primary-beam response A comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrimaryBeam {
    /// Per input: a beam image beside it, else A = 1 for a coadd or a single-dish map, else the
    /// telescope's model centred on the pointing (see `decide_beam`).
    Auto,
    /// Always the model of the input's telescope (beam.rs) at its frequency.
    Model,
    /// Always the beam image `<stem>.pb.fits` beside the input (an error when it is missing).
    Image,
    /// A ≡ 1 (inputs already corrected, unknown beam): weights 1/σ², no cut-off region.
    Unity,
}

impl PrimaryBeam {
    /// Every choice, in the order they are listed to a user (`build --primary-beam`).
    pub const ALL: &[PrimaryBeam] = &[
        PrimaryBeam::Auto,
        PrimaryBeam::Model,
        PrimaryBeam::Image,
        PrimaryBeam::Unity,
    ];

    /// The name a user gives and the HISTORY shows (also its serde name).
    pub fn name(&self) -> &'static str {
        match self {
            PrimaryBeam::Auto => "auto",
            PrimaryBeam::Model => "model",
            PrimaryBeam::Image => "image",
            PrimaryBeam::Unity => "unity",
        }
    }

    pub fn names() -> Vec<&'static str> {
        PrimaryBeam::ALL.iter().map(PrimaryBeam::name).collect()
    }

    /// The choice of this exact name (one of [`PrimaryBeam::names`]).
    pub fn from_name(s: &str) -> Option<PrimaryBeam> {
        PrimaryBeam::ALL.iter().copied().find(|b| b.name() == s)
    }
}

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub interpolation: Interpolation,
    pub grid: GridChoice,
    /// Use exactly this grid instead of choosing one.
    pub grid_override: Option<OutputGrid>,
    pub pb_cutoff: f64,
    pub primary_beam: PrimaryBeam,
    pub mesh: MeshTolerance,
    /// First mesh step in output pixels (halved until the tolerance holds).
    pub mesh_step: usize,
    /// Provenance written to HISTORY, e.g. `plan 7 "nightly 2026-11-28" tier science`.
    pub plan_label: Option<String>,
    /// Dish diameter (m) of the generic Gaussian model (1.2 λ/D) for inputs of a telescope
    /// contimg does not know (no `dish_m`, no DISHDIAM card); `None`: such inputs are refused.
    pub default_dish_m: Option<f64>,
    /// Beam models by telescope key (`beam::telescope_key` of TELESCOP), over the built-in ones.
    pub telescopes: BTreeMap<String, BeamModel>,
    /// Observing frequency (Hz) for inputs whose header gives none.
    pub default_freq_hz: Option<f64>,
    /// Lanczos-3 weights from the direct formula (three trigonometric calls per axis and
    /// sample) instead of the interpolated table: several times slower, the same mosaic to
    /// ~1e-6 of its noise. The reference the table is tested against; no build needs it.
    pub direct_kernel: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            interpolation: Interpolation::Bilinear,
            grid: GridChoice::default(),
            grid_override: None,
            pb_cutoff: 0.1,
            primary_beam: PrimaryBeam::Auto,
            mesh: MeshTolerance::default(),
            mesh_step: 32,
            plan_label: None,
            default_dish_m: None,
            telescopes: BTreeMap::new(),
            default_freq_hz: None,
            direct_kernel: false,
        }
    }
}

/// The three products, and where the record of the inputs goes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutputPaths {
    pub mosaic: PathBuf,
    pub weight: PathBuf,
    pub noise: PathBuf,
    /// `<stem>.inputs.json`: the [`InputRecord`]s (`contimg.inputs/1`). The engine does not write
    /// it; `build::build` does, once the products are in place.
    #[serde(default)]
    pub inputs: PathBuf,
}

impl OutputPaths {
    /// `<dir>/<stem>.fits`, `<dir>/<stem>.weight.fits`, `<dir>/<stem>.noise.fits` and
    /// `<dir>/<stem>.inputs.json`.
    pub fn from_stem(dir: &Path, stem: &str) -> OutputPaths {
        OutputPaths {
            mosaic: dir.join(format!("{stem}.fits")),
            weight: dir.join(format!("{stem}.weight.fits")),
            noise: dir.join(format!("{stem}.noise.fits")),
            inputs: dir.join(format!("{stem}.inputs.json")),
        }
    }
}

/// Schema of the `<stem>.inputs.json` record a build writes beside its mosaic.
pub const INPUTS_SCHEMA: &str = "contimg.inputs/1";

/// One input as the build resolved and used it: enough for QA to re-measure the input against
/// the mosaic (its file, noise, primary beam and pointing) without the builder's internals.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputRecord {
    pub path: PathBuf,
    /// Image rms σ (Jy/beam) the weights were computed from.
    pub rms_jy: f64,
    /// Whether the pixels are primary-beam corrected (true flux density).
    pub pb_corrected: bool,
    pub freq_hz: Option<f64>,
    /// TELESCOP.
    pub telescope: Option<String>,
    /// Pointing centre (ICRS, degrees): OBSRA/OBSDEC, else the reference pixel.
    pub pointing_deg: (f64, f64),
    /// Where the pointing centre came from.
    #[serde(default)]
    pub pointing_source: Option<PointingSource>,
    /// What the image is: one pointing, a coadd (with the evidence), a single dish.
    #[serde(default)]
    pub kind: Option<ImageKind>,
    /// Restoring beam (BMAJ, BMIN, BPA) in degrees.
    pub beam_deg: Option<(f64, f64, f64)>,
    /// What gave A for this input in the build ("model", "image" or "unity" in JSON).
    pub primary_beam: AppliedBeam,
    /// Why that beam, in words (e.g. "a coadd of many pointings (HISTORY names Miriad LINMOS)").
    #[serde(default)]
    pub beam_reason: String,
    /// The input's primary-beam model (its telescope's; evaluated at `freq_hz`), recorded
    /// whichever beam applied.
    pub model: Option<BeamModel>,
    /// The beam image, when `primary_beam` is [`AppliedBeam::Image`].
    pub pb_image: Option<PathBuf>,
    /// The build's beam cut-off: pixels with A below it were left out.
    pub pb_cutoff: f64,
}

/// Reported after each input has been combined.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    pub done: usize,
    pub total: usize,
    pub path: &'a Path,
}

/// Sky area actually covered (weight > 0). Serialized flat, as before the RA/Dec range became a
/// [`manifest::Coverage`](crate::manifest::Coverage): `ra_min_deg`, `ra_max_deg`, `dec_min_deg`,
/// `dec_max_deg`, `area_deg2`, `covered_pixels`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Coverage {
    /// RA/Dec range of the covered pixels, as the mosaic manifest records it (RA in [0, 360)).
    #[serde(flatten)]
    pub sky: crate::manifest::Coverage,
    pub area_deg2: f64,
    pub covered_pixels: u64,
}

/// What a build produced.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MosaicResult {
    pub paths: OutputPaths,
    pub grid: OutputGrid,
    pub interpolation: Interpolation,
    pub n_images: usize,
    /// Inputs that put at least one pixel into the mosaic.
    pub n_contributing: usize,
    pub median_rms_jy: f64,
    /// Median of the expected-noise map over covered pixels.
    pub effective_noise_jy: f64,
    pub coverage: Coverage,
    pub beam_deg: Option<(f64, f64, f64)>,
    pub freq_hz: Option<f64>,
    pub mjd_beg: Option<f64>,
    pub mjd_end: Option<f64>,
    /// Largest mesh error found by the checks, pixels.
    pub max_mesh_error_px: f64,
    pub elapsed_s: f64,
    /// Every input in input order, as the build used it.
    #[serde(default)]
    pub inputs: Vec<InputRecord>,
    /// SHA-256 of the three products as written (each hashed by its writer thread from the
    /// synced file, before the three are renamed into place).
    #[serde(default)]
    pub sha256: ProductHashes,
}

/// What went wrong; every variant says what to do.
#[derive(Debug, thiserror::Error)]
pub enum MosaicError {
    #[error("no input images: give at least one")]
    NoInputs,
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: no usable celestial WCS ({reason}); fix or drop this image")]
    Wcs { path: PathBuf, reason: String },
    #[error("{path}: rms {rms} Jy/beam is not a positive finite number; re-ingest the image")]
    BadRms { path: PathBuf, rms: f64 },
    #[error(
        "{path}: no observing frequency (RESTFRQ or a FREQ axis) for the primary-beam model; \
         give one with `contimg build --frequency HZ`, put the beam image {stem}.pb.fits beside \
         it, or build with `--primary-beam unity` if the images are already corrected"
    )]
    NoFrequency { path: PathBuf, stem: String },
    #[error(
        "{path}: --primary-beam image needs the beam image {pb} beside it; put it there or \
         build with `--primary-beam model`"
    )]
    NoBeamImage { path: PathBuf, pb: PathBuf },
    #[error(
        "{path}: TELESCOP = {telescope:?} is a telescope contimg has no primary-beam model for \
         (built in: {known}), so its images cannot be corrected without being told how; either \
         describe its dishes in contimg.toml as [build.telescopes.{key}] (dish_m, shape, \
         fwhm_factor), put its beam image {pb} beside it, or, if the image is already corrected \
         or a mosaic, build with `--primary-beam unity`"
    )]
    UnknownTelescope {
        path: PathBuf,
        telescope: String,
        key: String,
        known: String,
        pb: String,
    },
    #[error(
        "{path}: TELESCOP = {telescope:?} is a phased array (stations or tiles whose beam depends \
         on the station, the time and the direction): no dish model can serve it; put its beam \
         image {pb} (or WSClean's -beam-0.fits) beside it, or, if it is already corrected \
         (WSClean -image-pb), build with `--primary-beam unity`"
    )]
    PhasedArray {
        path: PathBuf,
        telescope: String,
        pb: String,
    },
    #[error(
        "{path}: the image would contribute almost nothing: {share:.1} % of it lies where its \
         primary beam (centred on the pointing {pointing_ra:.4}, {pointing_dec:.4} from {from}) \
         is above the cut-off {cutoff}, and the image centre is {sep_deg:.3} deg from that \
         pointing (the beam reaches {radius_deg:.3} deg); the WCS contradicts the pointing, or \
         the image is a mosaic contimg did not recognise: fix the header (CRVAL/CRPIX or \
         OBSRA/OBSDEC), or build with `--primary-beam unity` if it is already corrected"
    )]
    OutsideBeam {
        path: PathBuf,
        share: f64,
        pointing_ra: f64,
        pointing_dec: f64,
        from: String,
        cutoff: f64,
        sep_deg: f64,
        radius_deg: f64,
    },
    #[error(
        "{path}: the beam model for telescope {telescope:?} is unusable (dish {dish_m} m, \
         fwhm_factor {fwhm_factor}); fix [build.telescopes] in contimg.toml"
    )]
    BadBeamModel {
        path: PathBuf,
        telescope: String,
        dish_m: f64,
        fwhm_factor: f64,
    },
    #[error("{path}: beam image {pb} is {pb_shape:?} but the image is {shape:?}; they must match")]
    BeamImageShape {
        path: PathBuf,
        pb: PathBuf,
        pb_shape: (usize, usize),
        shape: (usize, usize),
    },
    #[error("invalid primary-beam cut-off {0}: it must lie in (0, 1)")]
    BadCutoff(f64),
    #[error(transparent)]
    Grid(#[from] GridError),
    #[error(
        "{path}: its beam image {pb} is at or above the cut-off {cutoff} on only {share:.1} % \
         of the image, so the image would contribute almost nothing; check that the beam image \
         belongs to it (a power beam peaking at 1), or lower --pb-cutoff"
    )]
    BeamImageEmpty {
        path: PathBuf,
        pb: PathBuf,
        share: f64,
        cutoff: f64,
    },
    #[error(
        "no input pixel reached the output grid above the beam cut-off; nothing to write. \
         The inputs: {inputs}"
    )]
    NoCoverage {
        /// Each input with its primary beam and why, e.g. `a.fits (model: built-in …)`.
        inputs: String,
    },
    #[error("{path}: cannot write ({reason}); check the directory exists and is writable")]
    Write { path: PathBuf, reason: String },
    /// A product could not be written (a full disk says so itself, naming the path).
    #[error(transparent)]
    Output(crate::fits::write::FitsWriteError),
}

/// Everything about an input that comes from its header.
struct Prepared {
    path: PathBuf,
    wcs: Wcs,
    nx: usize,
    ny: usize,
    rms: f64,
    pb_corrected: bool,
    freq_hz: Option<f64>,
    /// The telescope's primary-beam model, when one is known (used when `applied` is Model).
    model: Option<BeamModel>,
    /// What gives A for this input in the build, decided once in [`prepare`].
    applied: AppliedBeam,
    /// Why, in words (recorded in the inputs record and the HISTORY).
    beam_reason: String,
    /// What the image is (one pointing, a coadd, a single dish).
    kind: ImageKind,
    /// TELESCOP, INSTRUME and OBJECT, for the provenance and the mosaic header.
    telescope: Option<String>,
    instrument: Option<String>,
    object: Option<String>,
    /// Pointing centre (ICRS degrees) and where it came from.
    pointing: (f64, f64),
    pointing_source: PointingSource,
    beam_deg: Option<(f64, f64, f64)>,
    date_obs: Option<String>,
    mjd_obs: Option<f64>,
    bunit: Option<String>,
    pb_image: Option<PathBuf>,
    footprint: Footprint,
}

/// The grid chosen for a set of inputs, before any pixel work.
pub struct GridPlan {
    pub grid: OutputGrid,
    inputs: Vec<Prepared>,
}

impl GridPlan {
    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }
}

pub use crate::manifest::AppliedBeam;

impl Prepared {
    fn record(&self, opts: &BuildOptions) -> InputRecord {
        let applied = self.applied;
        InputRecord {
            path: self.path.clone(),
            rms_jy: self.rms,
            pb_corrected: self.pb_corrected,
            freq_hz: self.freq_hz,
            telescope: self.telescope.clone(),
            pointing_deg: self.pointing,
            pointing_source: Some(self.pointing_source),
            kind: Some(self.kind.clone()),
            beam_deg: self.beam_deg,
            primary_beam: applied,
            beam_reason: self.beam_reason.clone(),
            model: self.model.clone(),
            pb_image: (applied == AppliedBeam::Image)
                .then(|| self.pb_image.clone())
                .flatten(),
            pb_cutoff: opts.pb_cutoff,
        }
    }
}

/// The model for a telescope, and where it came from: `[build.telescopes]` for its TELESCOP,
/// else the built-in table (a DISHDIAM card replacing a built-in model's diameter); for a
/// telescope contimg does not know, the generic Gaussian of 1.2 λ/D on DISHDIAM, else on the
/// configured `[build] dish_diameter_m`. `Ok(None)` for a single dish; an error for a phased
/// array or a telescope nobody described.
fn beam_model(
    path: &Path,
    telescope: Option<&str>,
    dish_m: Option<f64>,
    opts: &BuildOptions,
) -> Result<Option<(BeamModel, &'static str)>, MosaicError> {
    let pb_hint = || {
        beam_image_candidates(path)
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<stem>.pb.fits".into())
    };
    let configured = telescope.and_then(|t| opts.telescopes.get(&telescope_key(t)).cloned());
    let (model, from) = match (&configured, telescope.and_then(Telescope::lookup)) {
        (Some(m), _) => (m.clone(), "configured [build.telescopes] model"),
        (None, Some(Telescope::Dish(mut m))) => match dish_m {
            Some(d) => {
                m.dish_m = d;
                (m, "built-in model with the DISHDIAM diameter")
            }
            None => (m, "built-in model"),
        },
        (None, Some(Telescope::SingleDish)) => return Ok(None),
        (None, Some(Telescope::PhasedArray)) => {
            return Err(MosaicError::PhasedArray {
                path: path.to_path_buf(),
                telescope: telescope.unwrap_or("").to_string(),
                pb: pb_hint(),
            });
        }
        (None, None) => match (dish_m, opts.default_dish_m) {
            (Some(d), _) => (
                BeamModel::gaussian(d),
                "generic Gaussian on the DISHDIAM card",
            ),
            (None, Some(d)) => (
                BeamModel::gaussian(d),
                "generic Gaussian on [build] dish_diameter_m",
            ),
            (None, None) => {
                let t = telescope.unwrap_or("").to_string();
                return Err(MosaicError::UnknownTelescope {
                    path: path.to_path_buf(),
                    key: if t.is_empty() {
                        "NAME".into()
                    } else {
                        telescope_key(&t)
                    },
                    telescope: t,
                    known: crate::mosaic::beam::builtin_telescopes().join(", "),
                    pb: pb_hint(),
                });
            }
        },
    };
    if !model.is_valid() {
        return Err(MosaicError::BadBeamModel {
            path: path.to_path_buf(),
            telescope: telescope.unwrap_or("").to_string(),
            dish_m: model.dish_m,
            fwhm_factor: model.fwhm_factor,
        });
    }
    Ok(Some((model, from)))
}

/// What gives A for one input, and why.
struct BeamDecision {
    applied: AppliedBeam,
    pb_image: Option<PathBuf>,
    /// The telescope's model when one is known (recorded even when a beam image or A ≡ 1 is
    /// applied, for QA's noise model); `None` for coadds and single dishes.
    model: Option<BeamModel>,
    pb_corrected: bool,
    reason: String,
}

/// The one decision of what gives A for an input (`--primary-beam`, default `auto`): a beam
/// image beside it; else, for a coadd or a single-dish map, A ≡ 1; else its telescope's model.
/// `pb_corrected` is what the header and name say; a coadd is corrected whatever they say.
fn decide_beam(
    path: &Path,
    kind: &ImageKind,
    telescope: Option<&str>,
    dish_m: Option<f64>,
    freq_hz: Option<f64>,
    pb_corrected: bool,
    opts: &BuildOptions,
) -> Result<BeamDecision, MosaicError> {
    let model = || beam_model(path, telescope, dish_m, opts);
    let name = telescope.unwrap_or("an unnamed telescope");
    let decision = |applied, pb_image, model: Option<BeamModel>, reason: String| BeamDecision {
        applied,
        pb_image,
        model,
        pb_corrected,
        reason,
    };
    let single_dish = || format!("single-dish map (TELESCOP = '{name}'): no primary beam");
    let with_model = |m: Option<(BeamModel, &str)>, prefix: &str| match m {
        Some((m, from)) => {
            let why = format!("{prefix}{from} of {name}: {}", m.describe(freq_hz));
            decision(AppliedBeam::Model, None, Some(m), why)
        }
        None => decision(AppliedBeam::Unity, None, None, single_dish()),
    };
    let known_model = || model().ok().flatten().map(|(m, _)| m);
    Ok(match opts.primary_beam {
        PrimaryBeam::Unity => decision(
            AppliedBeam::Unity,
            None,
            known_model(),
            "--primary-beam unity".into(),
        ),
        PrimaryBeam::Image => {
            let pb = beam_image(path).ok_or_else(|| MosaicError::NoBeamImage {
                path: path.to_path_buf(),
                pb: beam_image_candidates(path)
                    .first()
                    .cloned()
                    .unwrap_or_else(|| path.to_path_buf()),
            })?;
            let why = format!("beam image {}", pb.display());
            decision(AppliedBeam::Image, Some(pb), known_model(), why)
        }
        PrimaryBeam::Model => with_model(model()?, "--primary-beam model: "),
        PrimaryBeam::Auto => match (beam_image(path), kind) {
            (Some(pb), _) => {
                let why = format!("beam image {} beside it", pb.display());
                decision(AppliedBeam::Image, Some(pb), known_model(), why)
            }
            // No model recorded: a coadd's noise does not follow one pointing's beam.
            (None, ImageKind::Coadd(ev)) => BeamDecision {
                pb_corrected: true,
                ..decision(
                    AppliedBeam::Unity,
                    None,
                    None,
                    format!(
                        "a coadd of many pointings ({ev}): already corrected, weighted by its \
                         own noise"
                    ),
                )
            },
            (None, ImageKind::SingleDish(ev)) => decision(
                AppliedBeam::Unity,
                None,
                None,
                format!("{ev}: no primary beam"),
            ),
            (None, ImageKind::Pointing) => with_model(model()?, ""),
        },
    })
}

/// Share of the image (a grid of up to 48 × 48 of its pixels) where the model beam centred on
/// `pointing` is at least `cutoff`.
fn share_in_beam(
    wcs: &Wcs,
    (nx, ny): (usize, usize),
    model: &BeamModel,
    freq: f64,
    pointing: (f64, f64),
    cutoff: f64,
) -> f64 {
    let steps = |n: usize| n.min(48);
    let (sx, sy) = (steps(nx), steps(ny));
    let (mut inside, mut total) = (0usize, 0usize);
    for j in 0..sy {
        for i in 0..sx {
            let x = (i as f64 + 0.5) * nx as f64 / sx as f64 - 0.5;
            let y = (j as f64 + 0.5) * ny as f64 / sy as f64 - 0.5;
            let Some(pos) = wcs.pix_to_icrs(x, y) else {
                continue;
            };
            total += 1;
            let sep = crate::wcs::separation_deg(pointing, pos);
            if model.response(sep * D2R, freq) >= cutoff {
                inside += 1;
            }
        }
    }
    if total == 0 {
        0.0
    } else {
        inside as f64 / total as f64
    }
}

/// Below this share of an image inside its beam (A ≥ cut-off), the build refuses the image.
const MIN_SHARE_IN_BEAM: f64 = 0.005;

fn prepare(input: &MosaicInput, opts: &BuildOptions) -> Result<Prepared, MosaicError> {
    let path = input.path.clone();
    if !(input.rms_jy.is_finite() && input.rms_jy > 0.0) {
        return Err(MosaicError::BadRms {
            path,
            rms: input.rms_jy,
        });
    }
    let h = crate::fits::read::read_header(&path).map_err(|e| MosaicError::Read {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let wcs = Wcs::from_header(&h).map_err(|e| MosaicError::Wcs {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let nx = h.i64("NAXIS1").unwrap_or(0).max(0) as usize;
    let ny = h.i64("NAXIS2").unwrap_or(0).max(0) as usize;
    if nx == 0 || ny == 0 {
        return Err(MosaicError::Read {
            path,
            reason: "image has an empty axis".into(),
        });
    }
    let wcs_err = |what: &str| MosaicError::Wcs {
        path: path.clone(),
        reason: what.to_string(),
    };
    let crpix = (
        h.f64("CRPIX1").unwrap_or(1.0) - 1.0,
        h.f64("CRPIX2").unwrap_or(1.0) - 1.0,
    );
    let reference = wcs
        .pix_to_icrs(crpix.0, crpix.1)
        .ok_or_else(|| wcs_err("the reference pixel has no sky position"))?;
    let centre = wcs
        .pix_to_icrs((nx as f64 - 1.0) / 2.0, (ny as f64 - 1.0) / 2.0)
        .ok_or_else(|| wcs_err("the image centre has no sky position"))?;
    // Border samples every 16 px along the pixel edges (half a pixel outside the centres).
    let mut border = Vec::new();
    let (ex, ey) = (nx as f64 - 0.5, ny as f64 - 0.5);
    let steps = |n: usize| (n / 16).max(1);
    for k in 0..=steps(nx) {
        let x = -0.5 + (nx as f64) * k as f64 / steps(nx) as f64;
        border.push((x, -0.5));
        border.push((x, ey));
    }
    for k in 0..=steps(ny) {
        let y = -0.5 + (ny as f64) * k as f64 / steps(ny) as f64;
        border.push((-0.5, y));
        border.push((ex, y));
    }
    let border: Vec<(f64, f64)> = border
        .into_iter()
        .filter_map(|(x, y)| wcs.pix_to_icrs(x, y))
        .collect();
    if border.is_empty() {
        return Err(wcs_err("no edge pixel has a sky position"));
    }
    let cell_deg = wcs.pixel_scale_deg();
    let kind = observation::kind(&h);
    let (pointing, pointing_source) = match kind {
        ImageKind::Pointing => observation::pointing_icrs(&h, &wcs)
            .ok_or_else(|| wcs_err("the pointing centre has no sky position"))?,
        // A coadd's OBSRA is a field centre, not a pointing; record the reference pixel.
        _ => (reference, PointingSource::ReferencePixel),
    };
    let freq_hz = input
        .freq_hz
        .or_else(|| facts::frequency_hz(&h))
        .or(opts.default_freq_hz);
    let telescope = h
        .str("TELESCOP")
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let pb_corrected = input
        .pb_corrected
        .unwrap_or_else(|| observation::pb_corrected(&path, &h).is_some());
    let BeamDecision {
        applied,
        pb_image,
        model,
        pb_corrected,
        reason: beam_reason,
    } = decide_beam(
        &path,
        &kind,
        telescope.as_deref(),
        input.dish_m.or_else(|| h.f64("DISHDIAM")),
        freq_hz,
        pb_corrected,
        opts,
    )?;
    if applied == AppliedBeam::Model {
        let Some(f) = freq_hz else {
            let pb = beam_image_candidates(&path)
                .first()
                .cloned()
                .unwrap_or_else(|| path.clone());
            let stem = pb
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = stem.strip_suffix(".pb.fits").unwrap_or(&stem).to_string();
            return Err(MosaicError::NoFrequency { path, stem });
        };
        let m = model
            .as_ref()
            .expect("a model is applied only when there is one");
        let share = share_in_beam(&wcs, (nx, ny), m, f, pointing, opts.pb_cutoff);
        if share < MIN_SHARE_IN_BEAM {
            return Err(MosaicError::OutsideBeam {
                share: share * 100.0,
                pointing_ra: pointing.0,
                pointing_dec: pointing.1,
                from: match pointing_source {
                    PointingSource::Header => "OBSRA/OBSDEC".into(),
                    PointingSource::ReferencePixel => "the reference pixel".into(),
                },
                cutoff: opts.pb_cutoff,
                sep_deg: crate::wcs::separation_deg(pointing, centre),
                radius_deg: cutoff_radius_deg(m, f, opts.pb_cutoff).unwrap_or(90.0),
                path,
            });
        }
    }
    let beam_deg = input.beam_deg.or_else(|| {
        facts::restoring_beam(&h)
            .map(|b| (b.bmaj_arcsec / 3600.0, b.bmin_arcsec / 3600.0, b.bpa_deg))
    });
    let card = |k: &str| {
        h.str(k)
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    Ok(Prepared {
        wcs,
        nx,
        ny,
        rms: input.rms_jy,
        pb_corrected,
        freq_hz,
        model,
        applied,
        beam_reason,
        kind,
        instrument: card("INSTRUME"),
        object: card("OBJECT"),
        telescope,
        pointing,
        pointing_source,
        beam_deg,
        date_obs: input
            .date_obs
            .clone()
            .or_else(|| h.str("DATE-OBS").map(str::to_string)),
        mjd_obs: input.mjd_obs.or_else(|| h.f64("MJD-OBS")),
        bunit: h.str("BUNIT").map(str::to_string),
        pb_image,
        footprint: Footprint {
            centre,
            border,
            cell_deg,
        },
        path,
    })
}

/// Reads every header, checks the inputs and chooses the grid; no pixel is read. Fails with
/// [`GridError::TooLarge`] (naming the size) when the grid exceeds the limit.
pub fn plan_grid(inputs: &[MosaicInput], opts: &BuildOptions) -> Result<GridPlan, MosaicError> {
    if inputs.is_empty() {
        return Err(MosaicError::NoInputs);
    }
    if !(opts.pb_cutoff > 0.0 && opts.pb_cutoff < 1.0) {
        return Err(MosaicError::BadCutoff(opts.pb_cutoff));
    }
    let prepared: Vec<Prepared> = inputs
        .par_iter()
        .map(|i| prepare(i, opts))
        .collect::<Result<_, _>>()?;
    let grid = match &opts.grid_override {
        Some(g) => {
            if g.n_pixels() > opts.grid.max_pixels {
                return Err(GridError::TooLarge {
                    nx: g.nx as u64,
                    ny: g.ny as u64,
                    pixels: g.n_pixels(),
                    limit: opts.grid.max_pixels,
                    projection: g.projection.code(),
                    cell_arcsec: g.cdelt_deg.1.abs() * 3600.0,
                }
                .into());
            }
            g.clone()
        }
        None => {
            let feet: Vec<Footprint> = prepared.iter().map(|p| p.footprint.clone()).collect();
            super::grid::choose_grid(&feet, &opts.grid)?
        }
    };
    Ok(GridPlan {
        grid,
        inputs: prepared,
    })
}

/// The point `dist` degrees from (ra, dec) towards position angle `pa` (degrees, east of north).
fn offset(ra: f64, dec: f64, dist: f64, pa: f64) -> (f64, f64) {
    let (d, t, p) = (dec * D2R, dist * D2R, pa * D2R);
    let sd = d.sin() * t.cos() + d.cos() * t.sin() * p.cos();
    let d2 = sd.clamp(-1.0, 1.0).asin();
    let dra = (p.sin() * t.sin() * d.cos()).atan2(t.cos() - d.sin() * sd);
    (norm_ra(ra + dra / D2R), d2 / D2R)
}

/// Radius (degrees) where the model beam falls to `cutoff`; None if it never does within 90°.
fn cutoff_radius_deg(model: &BeamModel, freq: f64, cutoff: f64) -> Option<f64> {
    let a = |deg: f64| model.response(deg * D2R, freq);
    if a(90.0) >= cutoff {
        return None;
    }
    let (mut lo, mut hi) = (0.0, 90.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if a(mid) >= cutoff { lo = mid } else { hi = mid }
    }
    Some(hi)
}

fn bbox_of(
    grid: &OutputGrid,
    pts: impl Iterator<Item = (f64, f64)>,
) -> Option<(f64, f64, f64, f64)> {
    let mut b = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    let mut any = false;
    for (r, d) in pts {
        let (x, y) = grid.icrs_to_pix(r, d)?;
        b = (b.0.min(x), b.1.max(x), b.2.min(y), b.3.max(y));
        any = true;
    }
    any.then_some(b)
}

/// Output pixels this input can touch: its footprint ∩ its beam cut-off circle, clipped.
fn input_box(grid: &OutputGrid, p: &Prepared, opts: &BuildOptions) -> Option<PixBox> {
    let pad = opts.interpolation.support() as f64 + 1.0;
    let mut b = bbox_of(grid, p.footprint.border.iter().copied()).unwrap_or((
        0.0,
        grid.nx as f64 - 1.0,
        0.0,
        grid.ny as f64 - 1.0,
    ));
    if p.applied == AppliedBeam::Model
        && let Some(f) = p.freq_hz
        && let Some(m) = &p.model
        && let Some(r) = cutoff_radius_deg(m, f, opts.pb_cutoff)
    {
        let circle =
            (0..72).map(|k| offset(p.pointing.0, p.pointing.1, r * 1.01, f64::from(k) * 5.0));
        if r < 60.0
            && let Some(c) = bbox_of(grid, circle)
        {
            b = (b.0.max(c.0), b.1.min(c.1), b.2.max(c.2), b.3.min(c.3));
        }
    }
    let x0 = (b.0 - pad).floor().max(0.0);
    let x1 = (b.1 + pad).ceil().min(grid.nx as f64 - 1.0);
    let y0 = (b.2 - pad).floor().max(0.0);
    let y1 = (b.3 + pad).ceil().min(grid.ny as f64 - 1.0);
    if x0 > x1 || y0 > y1 {
        return None;
    }
    Some(PixBox {
        x0: x0 as usize,
        x1: x1 as usize,
        y0: y0 as usize,
        y1: y1 as usize,
    })
}

/// An input's pixels, as read by the reader thread.
struct Loaded {
    plane: Vec<f32>,
    pb: Option<Vec<f32>>,
    /// For a primary-beam-corrected input: its noise at the pointing centre, measured as the
    /// robust rms of I·A (the apparent, uniform noise) where A ≥ the cut-off. The rms recorded at
    /// ingest is taken over the corrected image, whose noise σ/A grows outwards, and overstates it.
    centre_rms: Option<f64>,
}

/// Row-major pixels without a copy when the array already is row-major.
fn into_vec(a: ndarray::Array2<f32>) -> Vec<f32> {
    if a.is_standard_layout() {
        let (v, off) = a.into_raw_vec_and_offset();
        if off.unwrap_or(0) == 0 {
            return v;
        }
        return v[off.unwrap_or(0)..].to_vec();
    }
    a.iter().copied().collect()
}

/// Reads an input; `plane` is a buffer to reuse (one of an earlier input, or empty).
fn load(p: &Prepared, opts: &BuildOptions, mut plane: Vec<f32>) -> Result<Loaded, MosaicError> {
    let read = |path: &Path| {
        crate::fits::read::read_image(path).map_err(|e| MosaicError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    };
    let (nx, ny) =
        crate::fits::read::read_plane_into(&p.path, &mut plane).map_err(|e| MosaicError::Read {
            path: p.path.clone(),
            reason: e.to_string(),
        })?;
    if (nx, ny) != (p.nx, p.ny) {
        return Err(MosaicError::Read {
            path: p.path.clone(),
            reason: format!("pixels are {nx}x{ny} but the header said {}x{}", p.nx, p.ny),
        });
    }
    let pb = match &p.pb_image {
        Some(pbp) => {
            let pbi = read(pbp)?;
            let (pny, pnx) = pbi.plane.dim();
            if (pnx, pny) != (nx, ny) {
                return Err(MosaicError::BeamImageShape {
                    path: p.path.clone(),
                    pb: pbp.clone(),
                    pb_shape: (pnx, pny),
                    shape: (nx, ny),
                });
            }
            let pb = into_vec(pbi.plane);
            let cutoff = opts.pb_cutoff as f32;
            let inside = pb.iter().filter(|a| **a >= cutoff).count();
            let share = inside as f64 / pb.len().max(1) as f64;
            if share < MIN_SHARE_IN_BEAM {
                return Err(MosaicError::BeamImageEmpty {
                    path: p.path.clone(),
                    pb: pbp.clone(),
                    share: share * 100.0,
                    cutoff: opts.pb_cutoff,
                });
            }
            Some(pb)
        }
        None => None,
    };
    let centre_rms = (p.pb_corrected && p.applied != AppliedBeam::Unity)
        .then(|| apparent_rms(p, &plane, pb.as_deref(), opts.pb_cutoff))
        .flatten();
    Ok(Loaded {
        plane,
        pb,
        centre_rms,
    })
}

/// Robust rms of I·A over (a sample of at most ~250 000 of) the pixels where A ≥ `cutoff`, A from
/// the beam image or the model: the noise of a corrected image before its correction.
fn apparent_rms(p: &Prepared, plane: &[f32], pb: Option<&[f32]>, cutoff: f64) -> Option<f64> {
    let stride = ((p.nx * p.ny) as f64 / 250_000.0).sqrt().ceil().max(1.0) as usize;
    if pb.is_none() && (p.freq_hz.is_none() || p.model.is_none()) {
        return None;
    }
    let freq = p.freq_hz.unwrap_or(f64::NAN);
    let mut apparent = Vec::new();
    for y in (0..p.ny).step_by(stride) {
        for x in (0..p.nx).step_by(stride) {
            let i = y * p.nx + x;
            let a = match pb {
                Some(pb) => f64::from(pb[i]),
                None => {
                    let Some(pos) = p.wcs.pix_to_icrs(x as f64, y as f64) else {
                        continue;
                    };
                    let sep = crate::wcs::separation_deg(p.pointing, pos);
                    p.model
                        .as_ref()
                        .map_or(0.0, |m| m.response(sep * D2R, freq))
                }
            };
            if a >= cutoff && plane[i].is_finite() {
                apparent.push((f64::from(plane[i]) * a) as f32);
            }
        }
    }
    crate::stats::robust_rms(&apparent).filter(|r| *r > 0.0)
}

/// The model beam as a function of s² = sin²(separation) = l² + m², tabulated finely enough
/// that linear interpolation errs by < 1e-8 (A is smooth in s²); beyond `s2_max` A < cut-off.
struct BeamLut {
    s2_max: f64,
    inv_step: f64,
    table: Vec<f32>,
}

impl BeamLut {
    const N: usize = 8192;

    fn new(model: &BeamModel, freq: f64, cutoff: f64) -> BeamLut {
        let r = cutoff_radius_deg(model, freq, cutoff)
            .unwrap_or(90.0)
            .min(90.0);
        let s2_max = (r * D2R).sin().powi(2) * 1.0001;
        let table = (0..=Self::N)
            .map(|k| {
                let s2 = s2_max * k as f64 / Self::N as f64;
                model.response(s2.sqrt().min(1.0).asin(), freq) as f32
            })
            .collect();
        BeamLut {
            s2_max,
            inv_step: Self::N as f64 / s2_max,
            table,
        }
    }

    // Unsafe: a float-to-int cast without the saturation check, on the hot path of every pixel.
    #[allow(unsafe_code)]
    #[inline]
    fn at(&self, s2: f64) -> f32 {
        // NaN s2 also lands here.
        if s2.is_nan() || s2 > self.s2_max {
            return 0.0;
        }
        let f = (s2 * self.inv_step).max(0.0);
        // SAFETY: s2 is a finite number in [0, s2_max] here, so f lies in [0, N]. (A signed
        // cast: x86-64 has no instruction for f64 -> u64.)
        let i = (unsafe { f.to_int_unchecked::<i64>() } as usize).min(Self::N - 1);
        let t = (f - i as f64) as f32;
        self.table[i] + t * (self.table[i + 1] - self.table[i])
    }
}

/// Direction cosines (l, m) of (ra, dec) about (ra0, dec0); sin²(separation) = l² + m² on the
/// near hemisphere (the far one is pushed out of any beam).
#[inline]
fn direction_cosines(ra: f64, dec: f64, ra0: f64, dec0: f64) -> (f64, f64) {
    let (sd, cd) = (dec * D2R).sin_cos();
    let (sd0, cd0) = (dec0 * D2R).sin_cos();
    let (sa, ca) = ((ra - ra0) * D2R).sin_cos();
    let n = sd * sd0 + cd * cd0 * ca;
    if n < 0.0 {
        return (2.0, 2.0);
    }
    (cd * sa, sd * cd0 - cd * sd0 * ca)
}

/// Everything the pixel loop needs for one input.
struct RowJob<'a, F> {
    mesh: &'a Mesh,
    exact: &'a F,
    plane: Plane<'a>,
    pb: Option<Plane<'a>>,
    lut: Option<&'a BeamLut>,
    cutoff: f32,
    pbcor: bool,
    weight_scale: f32,
    reach: f64,
    lim: (f64, f64),
}

impl<F: Fn(f64, f64) -> Option<Node> + Sync> RowJob<'_, F> {
    /// Adds the input into the accumulator rows of its bbox (rayon over rows), compiled once
    /// per kernel. Returns the number of output pixels that received a value.
    fn run<K: Kernel>(&self, srows: &mut [f32], wrows: &mut [f32], nx: usize) -> u64 {
        // Bands of BAND output rows, walked in blocks of BLOCK columns, so the input pixels a
        // block needs stay in cache even where the input is rotated against the grid.
        const BAND: usize = 16;
        const BLOCK: usize = 128;
        let bbox = self.mesh.bbox;
        let (reach, lim_x, lim_y) = (self.reach, self.lim.0 + self.reach, self.lim.1 + self.reach);
        srows
            .par_chunks_mut(nx * BAND)
            .zip(wrows.par_chunks_mut(nx * BAND))
            .enumerate()
            .map_init(
                Vec::new,
                |bufs: &mut Vec<Vec<Node>>, (band, (sband, wband))| {
                    let nrows = sband.len() / nx;
                    let y_first = bbox.y0 + band * BAND;
                    bufs.resize_with(nrows.max(bufs.len()), Vec::new);
                    for (r, buf) in bufs.iter_mut().enumerate().take(nrows) {
                        self.mesh.row_into(y_first + r, buf);
                    }
                    let mut n_added = 0u64;
                    let mut xa = bbox.x0;
                    while xa <= bbox.x1 {
                        let xb = (xa + BLOCK - 1).min(bbox.x1);
                        for r in 0..nrows {
                            let y = y_first + r;
                            let srow = &mut sband[r * nx..(r + 1) * nx];
                            let wrow = &mut wband[r * nx..(r + 1) * nx];
                            walk_range(self.mesh, &bufs[r], xa, xb, |x, node| {
                                let mut node = *node;
                                if node[0].is_nan() || node[2].is_nan() {
                                    match (self.exact)(x as f64, y as f64) {
                                        Some(v) => node = v,
                                        None => return,
                                    }
                                }
                                let [xi, yi, l, m] = node;
                                if xi < -reach || yi < -reach || xi > lim_x || yi > lim_y {
                                    return;
                                }
                                let a = match (&self.pb, self.lut) {
                                    (Some(pbp), _) => pbp.sample(Interpolation::Bilinear, xi, yi),
                                    (None, Some(lut)) => lut.at(l * l + m * m),
                                    (None, None) => 1.0,
                                };
                                // A NaN beam value (blank in a beam image) also lands here.
                                if a.is_nan() || a < self.cutoff {
                                    return;
                                }
                                let v = K::sample(&self.plane, xi, yi);
                                if v.is_nan() {
                                    return;
                                }
                                // w·(I/A) with w = A²·scale is A·scale·I: no division.
                                let aw = a * self.weight_scale;
                                let w = a * aw;
                                let wv = if self.pbcor { w * v } else { aw * v };
                                if let (Some(s), Some(wt)) = (srow.get_mut(x), wrow.get_mut(x)) {
                                    *s += wv;
                                    *wt += w;
                                    n_added += 1;
                                }
                            });
                        }
                        xa = xb + 1;
                    }
                    n_added
                },
            )
            .sum()
    }
}

/// Which primary beam an input was combined with, and why, for its HISTORY line.
fn beam_provenance(p: &Prepared) -> String {
    let what = match p.applied {
        AppliedBeam::Unity => "unity",
        AppliedBeam::Image => "image",
        AppliedBeam::Model => "model",
    };
    format!("{what} ({})", p.beam_reason)
}

/// Reprojects one input and adds it into the accumulators. Returns (pixels added, mesh error).
#[allow(clippy::too_many_arguments)]
fn accumulate(
    grid: &OutputGrid,
    p: &Prepared,
    data: &Loaded,
    opts: &BuildOptions,
    bbox: PixBox,
    weight_scale: f32,
    sum: &mut [f32],
    wsum: &mut [f32],
) -> (u64, f64) {
    let applied = p.applied;
    let lut = p
        .model
        .as_ref()
        .filter(|_| applied == AppliedBeam::Model)
        .map(|m| BeamLut::new(m, p.freq_hz.unwrap_or(f64::NAN), opts.pb_cutoff));
    let (pra, pdec) = p.pointing;
    let exact = |x: f64, y: f64| -> Option<Node> {
        let (ra, dec) = grid.pix_to_icrs(x, y)?;
        let (xi, yi) = p.wcs.icrs_to_pix(ra, dec)?;
        let (l, m) = direction_cosines(ra, dec, pra, pdec);
        Some([xi, yi, l, m])
    };
    let tm = Instant::now();
    let mesh = Mesh::build(bbox, opts.mesh_step, opts.mesh, &exact);
    phase(
        tm,
        &format!(
            "mesh: step {} px over {}x{}",
            mesh.step,
            bbox.width(),
            bbox.height()
        ),
    );
    let plane = Plane {
        data: &data.plane,
        nx: p.nx,
        ny: p.ny,
    };
    let pb = data
        .pb
        .as_ref()
        .filter(|_| applied == AppliedBeam::Image)
        .map(|d| Plane {
            data: d,
            nx: p.nx,
            ny: p.ny,
        });
    let job = RowJob {
        mesh: &mesh,
        exact: &exact,
        plane,
        pb,
        lut: lut.as_ref(),
        cutoff: opts.pb_cutoff as f32,
        pbcor: p.pb_corrected,
        weight_scale,
        reach: opts.interpolation.support() as f64 + 0.5,
        lim: (p.nx as f64 - 1.0, p.ny as f64 - 1.0),
    };
    let nx = grid.nx;
    let rows = bbox.y0 * nx..(bbox.y1 + 1) * nx;
    let (srows, wrows) = (&mut sum[rows.clone()], &mut wsum[rows]);
    let added = match opts.interpolation {
        Interpolation::Nearest => job.run::<NearestK>(srows, wrows, nx),
        Interpolation::Bilinear => job.run::<BilinearK>(srows, wrows, nx),
        Interpolation::Bicubic => job.run::<BicubicK>(srows, wrows, nx),
        Interpolation::Lanczos3 if opts.direct_kernel => {
            job.run::<Lanczos3DirectK>(srows, wrows, nx)
        }
        Interpolation::Lanczos3 => job.run::<Lanczos3K>(srows, wrows, nx),
    };
    (added, mesh.checked_error.0)
}

fn mjd_to_iso(mjd: f64) -> String {
    crate::time::from_mjd(mjd)
        .map(crate::time::fits_date)
        .unwrap_or_default()
}

/// Builds the mosaic of `inputs` and writes it, with its weight and noise maps, to `out`.
pub fn build_mosaic(
    inputs: &[MosaicInput],
    opts: &BuildOptions,
    out: &OutputPaths,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<MosaicResult, MosaicError> {
    let t0 = Instant::now();
    let plan = plan_grid(inputs, opts)?;
    build_planned(&plan, opts, out, progress, t0)
}

/// Phase timings on stderr when `CONTIMG_MOSAIC_TIMING` is set (for benchmarking).
fn phase(t0: Instant, what: &str) {
    if std::env::var_os("CONTIMG_MOSAIC_TIMING").is_some() {
        eprintln!("[mosaic] {:8.3} s  {what}", t0.elapsed().as_secs_f64());
    }
}

/// Builds from a plan made by [`plan_grid`] (headers are not read again), e.g. after showing
/// the grid to the user.
pub fn build_from_plan(
    plan: &GridPlan,
    opts: &BuildOptions,
    out: &OutputPaths,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<MosaicResult, MosaicError> {
    build_planned(plan, opts, out, progress, Instant::now())
}

fn build_planned(
    plan: &GridPlan,
    opts: &BuildOptions,
    out: &OutputPaths,
    progress: &(dyn Fn(&Progress) + Sync),
    t0: Instant,
) -> Result<MosaicResult, MosaicError> {
    let grid = &plan.grid;
    phase(t0, "headers read, grid chosen");
    let rms: Vec<f64> = plan.inputs.iter().map(|p| p.rms).collect();
    let sigma_ref = crate::stats::median_f64(&rms).unwrap_or(f64::NAN);
    let Accumulated {
        mut sum,
        mut wsum,
        n_contributing,
        max_mesh_err,
    } = accumulate_inputs(plan, opts, sigma_ref, progress, t0)?;
    normalise(&mut sum, &mut wsum, sigma_ref);
    phase(t0, "mosaic and weight maps computed");
    let header = output_header(plan, opts, sigma_ref);
    // The coverage and the median noise are computed while the products are written (their
    // writer threads wait on the disk much of the time).
    let (written, (coverage, noise_median)) = rayon::join(
        || write_products(grid, &header, out, &sum, &wsum),
        || (coverage_of(grid, &wsum), subsampled_median(&wsum)),
    );
    let sha256 = written?;
    drop((sum, wsum));
    phase(t0, "mosaic, weight and noise written");
    let mjds: Vec<f64> = plan.inputs.iter().filter_map(|p| p.mjd_obs).collect();
    Ok(MosaicResult {
        paths: out.clone(),
        grid: grid.clone(),
        interpolation: opts.interpolation,
        n_images: plan.inputs.len(),
        n_contributing,
        median_rms_jy: sigma_ref,
        effective_noise_jy: noise_median,
        coverage,
        beam_deg: common_beam(plan),
        freq_hz: mean_freq(plan),
        mjd_beg: mjds.iter().copied().reduce(f64::min),
        mjd_end: mjds.iter().copied().reduce(f64::max),
        max_mesh_error_px: max_mesh_err,
        elapsed_s: t0.elapsed().as_secs_f64(),
        inputs: plan.inputs.iter().map(|p| p.record(opts)).collect(),
        sha256,
    })
}

/// The accumulators after every input was added: sum of weighted pixels and sum of weights (the
/// weights normalised by the median rms `sigma_ref`).
struct Accumulated {
    sum: Vec<f32>,
    wsum: Vec<f32>,
    /// Inputs that put at least one pixel into the mosaic.
    n_contributing: usize,
    /// Largest mesh error found by the checks, pixels.
    max_mesh_err: f64,
}

/// Reads the inputs whose footprint meets the grid (one at a time, on a reader thread, one ahead)
/// and adds each into the accumulators, reporting progress. Fails with [`MosaicError::NoCoverage`]
/// when no input put a pixel into the grid.
fn accumulate_inputs(
    plan: &GridPlan,
    opts: &BuildOptions,
    sigma_ref: f64,
    progress: &(dyn Fn(&Progress) + Sync),
    t0: Instant,
) -> Result<Accumulated, MosaicError> {
    let grid = &plan.grid;
    let total = plan.inputs.len();
    let npix = grid.nx * grid.ny;
    // Written (not calloc'ed): a calloc'ed page is first mapped to the shared zero page by the
    // read of `+=`, then copied on write with a TLB shoot-down to every thread: ~20 % of the
    // CPU time of a large build.
    let zeroed = || -> Vec<f32> { (0..npix).into_par_iter().map(|_| 0.0f32).collect() };
    let (mut sum, mut wsum) = (Vec::new(), Vec::new());
    let boxes: Vec<Option<PixBox>> = plan
        .inputs
        .iter()
        .map(|p| input_box(grid, p, opts))
        .collect();
    let mut n_contributing = 0;
    let mut max_mesh_err: f64 = 0.0;

    std::thread::scope(|scope| -> Result<(), MosaicError> {
        let (tx, rx) = sync_channel::<(usize, Result<Loaded, MosaicError>)>(1);
        // Planes combined come back to the reader to be filled again: no allocation (and no
        // page faults) per input once three are in flight.
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<Vec<f32>>();
        let inputs = &plan.inputs;
        let boxes = &boxes;
        scope.spawn(move || {
            for (k, p) in inputs.iter().enumerate() {
                if boxes[k].is_none() {
                    continue;
                }
                let loaded = load(p, opts, recycle_rx.try_recv().unwrap_or_default());
                let failed = loaded.is_err();
                if tx.send((k, loaded)).is_err() || failed {
                    break;
                }
            }
        });
        // Zero the accumulators while the first input is being read.
        sum = zeroed();
        wsum = zeroed();
        for (done, (k, loaded)) in (1..).zip(rx) {
            let data = loaded?;
            phase(t0, "input received");
            let p = &plan.inputs[k];
            let scale = (sigma_ref / data.centre_rms.unwrap_or(p.rms)).powi(2) as f32;
            let bbox = boxes[k].expect("only inputs with a box are sent");
            let (added, err) = accumulate(grid, p, &data, opts, bbox, scale, &mut sum, &mut wsum);
            // The reader may have finished already: then the plane is just dropped.
            let _ = recycle_tx.send(data.plane);
            if added > 0 {
                n_contributing += 1;
            }
            max_mesh_err = max_mesh_err.max(err);
            phase(t0, "input combined");
            progress(&Progress {
                done,
                total,
                path: &p.path,
            });
        }
        Ok(())
    })?;
    if n_contributing == 0 {
        let inputs = plan
            .inputs
            .iter()
            .map(|p| format!("{} ({})", p.path.display(), beam_provenance(p)))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(MosaicError::NoCoverage { inputs });
    }
    // Skipped inputs (footprint off the grid) still count as processed for the caller's bar.
    progress(&Progress {
        done: total,
        total,
        path: &plan.inputs[total - 1].path,
    });
    Ok(Accumulated {
        sum,
        wsum,
        n_contributing,
        max_mesh_err,
    })
}

/// One pass: sum -> mosaic in place, normalised weight -> weight map in (Jy/beam)^-2 (undo the
/// normalisation by the median sigma). The expected-noise map, 1/sqrt(weight), is not stored: its
/// writer computes it from the weight map ([`noise_of`]).
fn normalise(sum: &mut [f32], wsum: &mut [f32], sigma_ref: f64) {
    let inv_s2 = (1.0 / (sigma_ref * sigma_ref)) as f32;
    sum.par_iter_mut()
        .zip(wsum.par_iter_mut())
        .for_each(|(s, w)| {
            if *w > 0.0 {
                *s /= *w;
                *w *= inv_s2;
            } else {
                *s = f32::NAN;
                *w = 0.0;
            }
        });
}

/// The expected noise 1/sqrt(w) of a pixel of the weight map, NaN where nothing contributed.
#[inline]
fn noise_of(w: f32) -> f32 {
    if w > 0.0 { 1.0 / w.sqrt() } else { f32::NAN }
}

/// Median of the expected noise over a regular subsample of about 500 000 pixels of the weight
/// map (plenty for a median); NaN when nothing contributed.
fn subsampled_median(wsum: &[f32]) -> f64 {
    let stride = (wsum.len() / 500_000).max(1);
    let mut v: Vec<f32> = wsum
        .iter()
        .step_by(stride)
        .map(|&w| noise_of(w))
        .filter(|w| !w.is_nan())
        .collect();
    if v.is_empty() {
        f64::NAN
    } else {
        let m = v.len() / 2;
        f64::from(*v.select_nth_unstable_by(m, f32::total_cmp).1)
    }
}

/// Writes the mosaic, weight and noise maps (the noise map computed from the weight map as it is
/// written) with `header` (plus each map's own cards). The three are written concurrently under
/// temporary names, each hashed by its writer thread as its bytes are written (nothing is read
/// back), then renamed into place together: they appear all three or not at all. Returns their
/// SHA-256.
fn write_products(
    grid: &OutputGrid,
    header: &Header,
    out: &OutputPaths,
    sum: &[f32],
    wsum: &[f32],
) -> Result<ProductHashes, MosaicError> {
    let shape = [grid.nx, grid.ny];
    let write = |path: &Path,
                 pixels: PixelFill,
                 extra: &[Card]|
     -> Result<(StagedImage, String), MosaicError> {
        let mut h = header.clone();
        for c in extra {
            h.set(&c.key, c.value.clone(), &c.comment);
        }
        crate::fits::write::stage_image_streamed(path, &shape, &h, pixels)
            .map_err(MosaicError::Output)
    };
    let copy_sum = |first: usize, chunk: &mut [f32]| {
        let n = chunk.len();
        chunk.copy_from_slice(&sum[first..first + n]);
    };
    let copy_wsum = |first: usize, chunk: &mut [f32]| {
        let n = chunk.len();
        chunk.copy_from_slice(&wsum[first..first + n]);
    };
    let noise = |first: usize, chunk: &mut [f32]| {
        let n = chunk.len();
        for (o, &w) in chunk.iter_mut().zip(&wsum[first..first + n]) {
            *o = noise_of(w);
        }
    };
    let weight_cards = [
        Card::new(
            "BUNIT",
            Value::Str("(JY/BEAM)**-2".into()),
            "sum of A^2/sigma^2",
        ),
        Card::new("BTYPE", Value::Str("weight".into()), "linmos weight map"),
    ];
    let noise_cards = [Card::new(
        "BTYPE",
        Value::Str("noise".into()),
        "expected noise 1/sqrt(sum of weights)",
    )];
    let results: Vec<Result<(StagedImage, String), MosaicError>> = std::thread::scope(|sc| {
        let jobs: [(&PathBuf, PixelFill, &[Card]); 3] = [
            (&out.mosaic, &copy_sum, &[][..]),
            (&out.weight, &copy_wsum, &weight_cards[..]),
            (&out.noise, &noise, &noise_cards[..]),
        ];
        let write = &write;
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|(path, pixels, cards)| sc.spawn(move || write(path, pixels, cards)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(MosaicError::Write {
                        path: out.mosaic.clone(),
                        reason: "writer thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    let (staged, mut sha): (Vec<StagedImage>, Vec<String>) = results
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    crate::fits::write::commit_together(staged).map_err(MosaicError::Output)?;
    let (noise, weight, mosaic) = (sha.pop(), sha.pop(), sha.pop());
    Ok(ProductHashes {
        mosaic: mosaic.unwrap_or_default(),
        weight: weight.unwrap_or_default(),
        noise: noise.unwrap_or_default(),
    })
}

/// The common restoring beam: the largest BMAJ and the largest BMIN among the inputs, with the
/// BPA of the input that has the largest BMAJ.
fn common_beam(plan: &GridPlan) -> Option<(f64, f64, f64)> {
    let beams: Vec<(f64, f64, f64)> = plan.inputs.iter().filter_map(|p| p.beam_deg).collect();
    let major = beams.iter().copied().max_by(|a, b| a.0.total_cmp(&b.0))?;
    let bmin = beams.iter().map(|b| b.1).fold(f64::MIN, f64::max);
    Some((major.0, bmin, major.2))
}

fn mean_freq(plan: &GridPlan) -> Option<f64> {
    let f: Vec<f64> = plan.inputs.iter().filter_map(|p| p.freq_hz).collect();
    (!f.is_empty()).then(|| f.iter().sum::<f64>() / f.len() as f64)
}

fn output_header(plan: &GridPlan, opts: &BuildOptions, sigma_ref: f64) -> Header {
    let mut h = Header::new();
    for c in plan.grid.wcs_cards() {
        h.cards.push(c);
    }
    let bunit = plan
        .inputs
        .iter()
        .find_map(|p| p.bunit.clone())
        .unwrap_or_else(|| "JY/BEAM".into());
    h.set("BUNIT", Value::Str(bunit), "pixel unit");
    h.set(
        "BTYPE",
        Value::Str("Intensity".into()),
        "primary-beam corrected linmos mosaic",
    );
    if let Some((a, b, pa)) = common_beam(plan) {
        h.set(
            "BMAJ",
            Value::Float(a),
            "[deg] common restoring beam major axis",
        );
        h.set(
            "BMIN",
            Value::Float(b),
            "[deg] common restoring beam minor axis",
        );
        h.set(
            "BPA",
            Value::Float(pa),
            "[deg] common restoring beam position angle",
        );
        h.cards.push(Card::new(
            "COMMENT",
            Value::None,
            "Beam: largest BMAJ and largest BMIN of the inputs, BPA of the largest BMAJ;",
        ));
        h.cards.push(Card::new(
            "COMMENT",
            Value::None,
            "inputs are not convolved to it (linmos).",
        ));
    }
    // The frequency on a degenerate third axis, as Miriad, AIPS and WSClean write continuum
    // images and astropy and CASA read them (RESTFRQ is a spectral line's rest frequency).
    if let Some(f) = mean_freq(plan) {
        let fs: Vec<f64> = plan.inputs.iter().filter_map(|p| p.freq_hz).collect();
        let span = fs.iter().copied().fold(f64::MIN, f64::max)
            - fs.iter().copied().fold(f64::MAX, f64::min);
        h.set(
            "WCSAXES",
            Value::Int(3),
            "two celestial axes and a degenerate frequency axis",
        );
        h.set("CTYPE3", Value::Str("FREQ".into()), "");
        h.set(
            "CRVAL3",
            Value::Float(f),
            "[Hz] mean frequency of the inputs",
        );
        h.set(
            "CDELT3",
            Value::Float(if span > 0.0 { span } else { 1.0 }),
            "[Hz] span of the inputs' frequencies",
        );
        h.set("CRPIX3", Value::Float(1.0), "");
        h.set("CUNIT3", Value::Str("Hz".into()), "");
        h.set("SPECSYS", Value::Str("TOPOCENT".into()), "");
    }
    // Who observed what, where every input agrees.
    let agreed = |get: fn(&Prepared) -> Option<&String>| -> Option<String> {
        let first = get(plan.inputs.first()?)?;
        plan.inputs
            .iter()
            .all(|p| get(p).is_some_and(|v| v.eq_ignore_ascii_case(first)))
            .then(|| first.clone())
    };
    for (key, get, what) in [
        (
            "TELESCOP",
            (|p: &Prepared| p.telescope.as_ref()) as fn(&Prepared) -> Option<&String>,
            "telescope of every input",
        ),
        (
            "INSTRUME",
            |p: &Prepared| p.instrument.as_ref(),
            "instrument of every input",
        ),
        (
            "OBJECT",
            |p: &Prepared| p.object.as_ref(),
            "object of every input",
        ),
    ] {
        if let Some(v) = agreed(get) {
            h.set(key, Value::Str(v), what);
        }
    }
    // Observation span: first and last input start times.
    let mut by_time: Vec<&Prepared> = plan.inputs.iter().filter(|p| p.mjd_obs.is_some()).collect();
    by_time.sort_by(|a, b| {
        a.mjd_obs
            .unwrap_or(0.0)
            .total_cmp(&b.mjd_obs.unwrap_or(0.0))
    });
    if let (Some(first), Some(last)) = (by_time.first(), by_time.last()) {
        let (m0, m1) = (first.mjd_obs.unwrap_or(0.0), last.mjd_obs.unwrap_or(0.0));
        let date0 = first.date_obs.clone().unwrap_or_else(|| mjd_to_iso(m0));
        h.set(
            "DATE-OBS",
            Value::Str(date0.clone()),
            "start of the first input",
        );
        h.set("DATE-BEG", Value::Str(date0), "start of the first input");
        h.set(
            "DATE-END",
            Value::Str(last.date_obs.clone().unwrap_or_else(|| mjd_to_iso(m1))),
            "start of the last input",
        );
        h.set("MJD-OBS", Value::Float(m0), "[d] start of the first input");
        h.set("MJD-BEG", Value::Float(m0), "[d] start of the first input");
        h.set("MJD-END", Value::Float(m1), "[d] start of the last input");
    } else if let Some(d) = plan.inputs.iter().find_map(|p| p.date_obs.clone()) {
        h.set("DATE-OBS", Value::Str(d), "start of the first input");
    }
    h.set(
        "NINPUTS",
        Value::Int(plan.inputs.len() as i64),
        "number of input images",
    );
    h.set("ORIGIN", Value::Str("contimg".into()), "");
    h.push_history(&format!(
        "contimg {} linmos mosaic",
        env!("CARGO_PKG_VERSION")
    ));
    if let Some(label) = &opts.plan_label {
        h.push_history(&format!("plan: {label}"));
    }
    h.push_history(&format!(
        "weights A^2/sigma^2 (median sigma {sigma_ref:.4e} Jy/beam), beam cut-off A >= {}, \
             primary beam {}, interpolation {}",
        opts.pb_cutoff,
        opts.primary_beam.name(),
        opts.interpolation.name()
    ));
    for (k, p) in plan.inputs.iter().enumerate() {
        h.push_history(&format!(
            "input {}/{}: {} rms={:.4e} pbcor={} beam={}",
            k + 1,
            plan.inputs.len(),
            p.path.display(),
            p.rms,
            if p.pb_corrected { "T" } else { "F" },
            beam_provenance(p)
        ));
    }
    h
}

/// Covered area and its RA/Dec range (from the first and last covered pixel of every row and
/// column, which bound the region for the grids used here).
fn coverage_of(grid: &OutputGrid, wsum: &[f32]) -> Coverage {
    let nx = grid.nx;
    // Per row: covered pixels, covered area, first and last covered column.
    type RowCover = (u64, f64, Option<(usize, usize)>);
    let per_row: Vec<RowCover> = wsum
        .par_chunks(nx)
        .enumerate()
        .map(|(y, row)| {
            let mut n = 0u64;
            let mut area = 0.0;
            let (mut first, mut last) = (None, 0);
            for (x, &w) in row.iter().enumerate() {
                if w > 0.0 {
                    n += 1;
                    area += grid.pixel_area_deg2(x as f64, y as f64);
                    first.get_or_insert(x);
                    last = x;
                }
            }
            (n, area, first.map(|f| (f, last)))
        })
        .collect();
    let mut pts: Vec<(f64, f64)> = Vec::new();
    for (y, r) in per_row.iter().enumerate() {
        if let Some((a, b)) = r.2 {
            pts.push((a as f64, y as f64));
            pts.push((b as f64, y as f64));
        }
    }
    // First and last covered row of every column, in one row-major pass.
    let (mut first, mut last) = (vec![usize::MAX; nx], vec![0usize; nx]);
    for (y, row) in wsum.chunks(nx).enumerate() {
        if per_row[y].2.is_none() {
            continue;
        }
        for (x, &w) in row.iter().enumerate() {
            if w > 0.0 {
                first[x] = first[x].min(y);
                last[x] = y;
            }
        }
    }
    for x in 0..nx {
        if first[x] != usize::MAX {
            pts.push((x as f64, first[x] as f64));
            pts.push((x as f64, last[x] as f64));
        }
    }
    let ra_c = grid.crval_deg.0;
    let (mut dmin, mut dmax, mut rmin, mut rmax) = (90.0f64, -90.0f64, 180.0f64, -180.0f64);
    for (x, y) in pts {
        if let Some((r, d)) = grid.pix_to_icrs(x, y) {
            let dr = wrap180(r - ra_c);
            rmin = rmin.min(dr);
            rmax = rmax.max(dr);
            dmin = dmin.min(d);
            dmax = dmax.max(d);
        }
    }
    Coverage {
        sky: crate::manifest::Coverage {
            ra_min_deg: norm_ra(ra_c + rmin),
            ra_max_deg: norm_ra(ra_c + rmax),
            dec_min_deg: dmin,
            dec_max_deg: dmax,
        },
        area_deg2: per_row.iter().map(|r| r.1).sum(),
        covered_pixels: per_row.iter().map(|r| r.0).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wcs::separation_deg;

    #[test]
    fn coverage_serializes_flat() {
        let c = Coverage {
            sky: crate::manifest::Coverage {
                ra_min_deg: 350.5,
                ra_max_deg: 10.25,
                dec_min_deg: -30.0,
                dec_max_deg: -20.5,
            },
            area_deg2: 12.5,
            covered_pixels: 4096,
        };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"ra_min_deg":350.5,"ra_max_deg":10.25,"dec_min_deg":-30.0,"dec_max_deg":-20.5,"area_deg2":12.5,"covered_pixels":4096}"#
        );
        assert_eq!(serde_json::from_str::<Coverage>(&text).unwrap(), c);
    }

    #[test]
    fn offset_moves_the_right_distance_and_direction() {
        for &(ra, dec) in &[(10.0, 0.0), (359.5, 70.0), (180.0, -45.0)] {
            for pa in [0.0, 90.0, 200.0] {
                let (r, d) = offset(ra, dec, 2.5, pa);
                assert!((separation_deg((ra, dec), (r, d)) - 2.5).abs() < 1e-9);
                if pa == 0.0 {
                    assert!(d > dec);
                }
                if pa == 90.0 {
                    assert!(wrap180(r - ra) > 0.0);
                }
            }
        }
    }

    #[test]
    fn beam_image_path_follows_the_stem() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("snap_001.fits");
        assert_eq!(beam_image(&img), None);
        std::fs::write(dir.path().join("snap_001.pb.fits"), b"x").unwrap();
        assert_eq!(beam_image(&img), Some(dir.path().join("snap_001.pb.fits")));
        assert_eq!(beam_image(&dir.path().join("snap_001.pb.fits")), None);
    }
}
