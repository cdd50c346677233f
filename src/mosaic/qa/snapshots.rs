//! Snapshot consistency: finds the input image (snapshot) of a night that is shifted
//! (astrometric error) or mis-scaled in flux, without a reference catalogue, and names it.
//!
//! The inputs overlap along a drift-scan strip, so a sky position is typically seen by only two or
//! three snapshots and "compare each with the median of the others" is ambiguous. Instead every
//! snapshot gets an offset (x, y) and a log-gain g, solved by least squares from all the
//! comparisons between snapshots that see the same sources, with the gauge fixed by the median over
//! the snapshots (most snapshots are right).
//!
//! Method:
//! 1. Anchors: the mosaic's sources with S/N ≥ [`ANCHOR_MIN_SNR`] whose fit is a Gaussian no wider
//!    than [`MOSAIC_ANCHOR_MAX_MAJ_BEAMS`] mosaic beams (nearly point-like: the peak of a resolved source depends
//!    on each snapshot's restoring beam), and that are the brightest mosaic source within
//!    [`ISOLATION_RADIUS_BEAMS`] (so the search below finds the same source in every snapshot;
//!    the ghost a shifted snapshot leaves in the mosaic is fainter than the source, or the other
//!    way round, and only one of the two is kept).
//! 2. Each input is read once (in parallel over inputs, with its beam image when the build used
//!    one); `per_image` gets the plane. For each anchor inside the image, A is the primary-beam
//!    response at the anchor from what the build used (the model at the separation from the
//!    pointing, the beam image's pixel, or 1 for "unity", except that a corrected input built
//!    with "unity" still uses its model for the cut-off and its noise); anchors with A < max([`MIN_RESPONSE`],
//!    the build's cut-off) are skipped. The S/N the anchor should have in this input follows from
//!    its mosaic flux density F: F·A / rms (the same for a corrected input, whose local noise is
//!    rms / A); it must reach [`MIN_INPUT_SNR`]. The choice of measurements and their weights
//!    come from this expected S/N, never from the input's own noise draw: cutting on the measured
//!    S/N keeps faint sources only where the noise pushed them up, which biases the noisier or
//!    less sensitive snapshot of a pair upwards (seen in simulations as ~10 % gain steps along
//!    the strip); weighting by the measured flux biases a weighted mean the same way. Then the
//!    brightest pixel within [`SEARCH_RADIUS_BEAMS`] restoring beams (of the input) of the
//!    anchor's position, which must be a local maximum (its 8 neighbours finite and not
//!    brighter), is refined by the quadratic fit of ln I that QA uses on the mosaic
//!    ([`super::sources`]; no background is subtracted: interferometric snapshots have zero
//!    mean). A fit that fails, is wider than [`ANCHOR_MAX_MAJ_BEAMS`] input beams (a centroid's
//!    peak is biased; a blend is not a point) or whose own S/N is below [`MIN_FOUND_SNR`] (a
//!    noise peak was found) is dropped. The intrinsic flux density is peak / A at the fitted
//!    position (peak for a primary-beam-corrected input).
//! 3. A measurement of anchor k in input i is y_ik = (ΔRA·cos δ, ΔDec) from the anchor's mosaic
//!    position in arcsec and ln(flux), with σ_pos = σ_beam / S/N per axis (Condon 1997 for a
//!    point source in beam-correlated noise; σ_beam = √(bmaj·bmin) / 2.355 of the input)
//!    ⊕ [`POSITION_FLOOR_BEAMS`] bmaj, and σ_ln = 1 / S/N ⊕ [`FLUX_FLOOR`]. The model is
//!    y_ik = s_k + o_i + noise with s_k the anchor's unknown true value. Eliminating s_k exactly
//!    turns the normal equations for the o_i into a graph Laplacian whose edge (i, j) for anchor
//!    k weighs w_i·w_j / Σ w (for two measurements 1/(σ_i² + σ_j²), the weight of their
//!    difference; with three or more the pairs are not counted as independent).
//! 4. Inputs sharing fewer than [`MIN_SHARED_ANCHORS`] anchors with the rest are left out (their
//!    values are `None`), repeatedly until every remaining input shares enough. The Laplacian of
//!    each connected component is solved densely (Cholesky of L + α·11ᵀ, which gives the
//!    mean-zero solution; O(n³): about 1–2 s for 1000 inputs), by iteratively reweighted
//!    least squares: the first pass is plain least squares, then each measurement's residual
//!    (standardised by its σ and leverage, scaled by the robust spread of all residuals when that
//!    exceeds 1) gets a Huber weight beyond 2.5σ and weight 0 beyond 5σ (the 2-D equivalents for
//!    positions), so a blended or misidentified anchor cannot drag a snapshot. Per component the
//!    median over its inputs of x, y and g is subtracted (the gauge); a component of fewer than
//!    [`MIN_COMPONENT_INPUTS`] inputs cannot say which one is off and reports `None`.
//! 5. Standard errors: the square root of the diagonal of the Laplacian's pseudo-inverse (the
//!    error of each input's value relative to the component's mean; the median gauge adds a
//!    little, not counted), inflated by √(χ²/dof) of the final residuals when that exceeds 1
//!    (one χ²/dof for positions, one for fluxes, over all components).
//!
//! Cost: one read of each input (plus its beam image for "image" beams), O(anchors) small fits,
//! and a dense solve per component (O(n³) in its number of inputs).
//!
//! Invariants: offsets are the input's measured position minus the consensus (ΔRA·cos δ, ΔDec,
//! arcsec); gain = exp(g) is the input's flux density over the consensus; inputs with too little
//! overlap get `None` values and a note, never a guess; results are in input order.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::sources::{BeamPx, Source, gauss_fit};
use super::xmatch::ZoneIndex;
use crate::mosaic::beam::BeamModel;
use crate::mosaic::engine::grid::wrap180;
use crate::mosaic::engine::linmos::{AppliedBeam, INPUTS_SCHEMA, InputRecord};
use crate::wcs::{Wcs, separation_deg};

const D2R: f64 = std::f64::consts::PI / 180.0;
use crate::stats::FWHM_PER_SIGMA;

/// Mosaic sources at least this significant are anchors.
pub const ANCHOR_MIN_SNR: f64 = 7.0;
/// Anchors (and their fits in the inputs) must be point-like: fitted major axis at most this
/// many restoring beams.
pub const ANCHOR_MAX_MAJ_BEAMS: f64 = 1.5;
/// A mosaic source may be this much wider and still be an anchor: where a shifted snapshot
/// overlaps a good one the mosaic holds both copies blended into one elongated source, and those
/// are the comparisons that find the shift (each input's own fit must still be point-like).
pub const MOSAIC_ANCHOR_MAX_MAJ_BEAMS: f64 = 2.0;
/// The input's peak is searched within this many of its restoring beams of the anchor (a shift of
/// up to 3 beams is still found).
pub const SEARCH_RADIUS_BEAMS: f64 = 4.0;
/// An anchor must be the brightest mosaic source within this many mosaic beams.
pub const ISOLATION_RADIUS_BEAMS: f64 = SEARCH_RADIUS_BEAMS + 1.0;
/// A measurement in an input needs this S/N.
pub const MIN_INPUT_SNR: f64 = 5.0;
/// A measurement whose own S/N is below this is taken as not found (a misidentification).
pub const MIN_FOUND_SNR: f64 = 4.0;
/// Positions where the primary-beam response is below this (or the build's cut-off) are skipped.
pub const MIN_RESPONSE: f64 = 0.2;
/// Floor of the error of ln(flux) per measurement (calibration-like systematics).
pub const FLUX_FLOOR: f64 = 0.02;
/// Floor of the position error per axis, in the input's restoring beams.
pub const POSITION_FLOOR_BEAMS: f64 = 0.02;
/// An input must share this many anchors with the other inputs to get values.
pub const MIN_SHARED_ANCHORS: usize = 2;
/// A snapshot is compared with the reference when at least this many of its measurements have
/// a reference source.
pub const MIN_REFERENCE_SOURCES: usize = 3;
/// Systematic error of one snapshot's flux scale against a catalogue's total fluxes (ln): the
/// fitted integrated flux of faint or slightly resolved sources is biased by up to ~10 % in
/// either direction, the same for every source of a snapshot's field (seen on simulated nights).
pub const REFERENCE_FLUX_FLOOR: f64 = 0.08;
/// A group of overlapping inputs needs this many members for the median to name the odd one.
pub const MIN_COMPONENT_INPUTS: usize = 3;
/// Huber threshold and rejection limit of the robust reweighting (standard deviations, 1-D).
const HUBER_K: f64 = 2.5;
const REJECT_K: f64 = 5.0;
const MAX_ITERATIONS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotsError {
    #[error(transparent)]
    Read(#[from] crate::fsutil::ReadError),
    #[error(
        "{path}: not a record of a build's inputs ({reason}); rebuild the mosaic with `contimg \
         build` to write it again"
    )]
    Format { path: PathBuf, reason: String },
}

/// Reads `<stem>.inputs.json` (`contimg.inputs/1`) as the build wrote it.
pub fn read_inputs(path: &Path) -> Result<Vec<InputRecord>, SnapshotsError> {
    #[derive(Deserialize)]
    struct Record {
        schema: String,
        inputs: Vec<InputRecord>,
    }
    let bytes = crate::fsutil::read_regular(path, 1 << 30)?;
    let format = |reason: String| SnapshotsError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let r: Record = serde_json::from_slice(&bytes).map_err(|e| format(e.to_string()))?;
    if r.schema != INPUTS_SCHEMA {
        return Err(format(format!(
            "schema {:?}, expected {INPUTS_SCHEMA:?}",
            r.schema
        )));
    }
    Ok(r.inputs)
}

/// What the check found for one input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotResult {
    pub path: PathBuf,
    /// Anchors measured in this input (S/N, fit and primary-beam response good enough).
    pub n_measured: usize,
    /// Of those, the anchors that at least one other input measured too and that the solution
    /// kept (robust weight > 0): its overlap with the rest.
    pub n_anchors: usize,
    /// Pairs (this input, another input, an anchor both measured) used.
    pub n_pairs: usize,
    /// Whether it shares at least [`MIN_SHARED_ANCHORS`] anchors with the rest.
    pub connected: bool,
    /// The group of overlapping inputs it belongs to (numbered from 0 in input order), and its
    /// size.
    pub component: Option<usize>,
    pub component_size: Option<usize>,
    /// Measured position − consensus: ΔRA·cos δ and ΔDec (arcsec), and their standard errors.
    pub offset_ra_arcsec: Option<f64>,
    pub offset_dec_arcsec: Option<f64>,
    pub offset_ra_err_arcsec: Option<f64>,
    pub offset_dec_err_arcsec: Option<f64>,
    /// |offset| in mosaic restoring beams (BMAJ), and the standard error per axis in beams.
    pub offset_beams: Option<f64>,
    pub offset_err_beams: Option<f64>,
    /// √((ΔRA/σ)² + (ΔDec/σ)²): the offset in standard errors (2-D).
    pub offset_significance: Option<f64>,
    /// Flux density measured in this input over the consensus, and the standard error of its
    /// logarithm (the relative error).
    pub gain: Option<f64>,
    pub gain_err: Option<f64>,
    /// |ln gain| / gain_err.
    pub gain_significance: Option<f64>,
    /// Why values are missing (unreadable input, too little overlap, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Against the reference catalogue (relative to the night's bulk offset and flux scale):
    /// how many of its measurements have a reference source, the median offset (arcsec, and in
    /// mosaic beams with its error) and the median flux ratio with the error of its logarithm.
    #[serde(default)]
    pub ref_n: usize,
    #[serde(default)]
    pub ref_offset_ra_arcsec: Option<f64>,
    #[serde(default)]
    pub ref_offset_dec_arcsec: Option<f64>,
    #[serde(default)]
    pub ref_offset_beams: Option<f64>,
    #[serde(default)]
    pub ref_offset_err_beams: Option<f64>,
    #[serde(default)]
    pub ref_gain: Option<f64>,
    #[serde(default)]
    pub ref_gain_err: Option<f64>,
}

/// Everything the snapshot check measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotsReport {
    pub n_inputs: usize,
    /// Inputs read and measured.
    pub n_read: usize,
    /// Mosaic sources usable as anchors (significant, point-like, isolated).
    pub n_anchors: usize,
    /// Anchors measured in at least two inputs.
    pub n_anchors_shared: usize,
    /// Measurements (input, anchor) made, and those the robust solution gave weight 0.
    pub n_measurements: usize,
    pub n_rejected: usize,
    /// Pairs of measurements of the same anchor in two inputs, used.
    pub n_pairs: usize,
    /// Inputs with values.
    pub n_solved: usize,
    pub n_connected: usize,
    pub n_components: usize,
    /// Reduced χ² of the final residuals (positions, fluxes); errors are inflated by its square
    /// root when it exceeds 1.
    pub position_chi2_dof: Option<f64>,
    pub flux_chi2_dof: Option<f64>,
    pub mosaic_bmaj_arcsec: f64,
    /// One per input, in input order.
    pub snapshots: Vec<SnapshotResult>,
    pub elapsed_s: f64,
    /// Wall time of reading and measuring the inputs, and of the solution (s).
    pub measure_s: f64,
    pub solve_s: f64,
}

impl SnapshotsReport {
    /// Inputs with values, by decreasing offset significance.
    pub fn worst_offsets(&self) -> Vec<&SnapshotResult> {
        let mut v: Vec<&SnapshotResult> = self
            .snapshots
            .iter()
            .filter(|s| s.offset_significance.is_some())
            .collect();
        v.sort_by(|a, b| {
            let z = |s: &SnapshotResult| s.offset_significance.unwrap_or(f64::NEG_INFINITY);
            z(b).total_cmp(&z(a))
        });
        v
    }

    /// Inputs with values, by decreasing gain significance.
    pub fn worst_gains(&self) -> Vec<&SnapshotResult> {
        let mut v: Vec<&SnapshotResult> = self
            .snapshots
            .iter()
            .filter(|s| s.gain_significance.is_some())
            .collect();
        v.sort_by(|a, b| {
            let z = |s: &SnapshotResult| s.gain_significance.unwrap_or(f64::NEG_INFINITY);
            z(b).total_cmp(&z(a))
        });
        v
    }
}

/// An anchor: a mosaic source's position and (primary-beam corrected) peak flux density.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    /// Index of the mosaic source it is.
    source: usize,
    ra: f64,
    dec: f64,
    cos_dec: f64,
    flux_jy: f64,
}

/// Where a mosaic source should be and how bright, from a reference catalogue: the matched
/// reference position moved by the night's bulk offset, and the reference flux scaled to the
/// mosaic (frequency and the night's flux scale), with the errors a comparison must allow: the
/// catalogue's position error and the scatter of individual sources' spectral indices (ln).
#[derive(Debug, Clone, Copy)]
pub struct RefPoint {
    pub ra: f64,
    pub dec: f64,
    pub flux_jy: f64,
    pub pos_err_arcsec: f64,
    pub ln_err: f64,
}

/// One measurement of an anchor in an input: offsets from the anchor (arcsec), ln flux, errors.
#[derive(Debug, Clone, Copy)]
struct Meas {
    input: usize,
    anchor: usize,
    y: [f64; 3],
    /// ln of the integrated flux density (the fitted Gaussian's volume over the beam area), for
    /// the comparison with a reference catalogue's total fluxes.
    ln_int: f64,
    sigma_pos: f64,
    sigma_ln: f64,
}

/// The anchors among the mosaic's sources (step 1 of the method).
fn select_anchors(sources: &[Source], beam: &BeamPx) -> Vec<Anchor> {
    let r_iso = ISOLATION_RADIUS_BEAMS * beam.bmaj_arcsec / 3600.0;
    let ra: Vec<f64> = sources.iter().map(|s| s.ra_deg).collect();
    let dec: Vec<f64> = sources.iter().map(|s| s.dec_deg).collect();
    let index = ZoneIndex::new(&ra, &dec, r_iso);
    sources
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.snr >= ANCHOR_MIN_SNR
                && s.fit == "gauss"
                && s.maj_arcsec.is_finite()
                && s.maj_arcsec <= MOSAIC_ANCHOR_MAX_MAJ_BEAMS * beam.bmaj_arcsec
                && s.ra_deg.is_finite()
                && s.dec_deg.is_finite()
        })
        .filter(|&(k, s)| {
            index
                .within(s.ra_deg, s.dec_deg)
                .into_iter()
                .all(|(j, _)| j == k || sources[j].peak_jy <= s.peak_jy)
        })
        .map(|(k, s)| Anchor {
            source: k,
            ra: s.ra_deg,
            dec: s.dec_deg,
            cos_dec: (s.dec_deg * D2R).cos(),
            flux_jy: s.peak_jy,
        })
        .collect()
}

/// Where A comes from for one input, as the build used it.
enum Response {
    Unity,
    Model(BeamModel, f64),
    Image(Array2<f32>),
}

impl Response {
    fn at(&self, pointing: (f64, f64), pos: (f64, f64), x: f64, y: f64) -> f64 {
        match self {
            Response::Unity => 1.0,
            Response::Model(m, f) => m.response(separation_deg(pointing, pos) * D2R, *f),
            Response::Image(pb) => {
                let (ny, nx) = pb.dim();
                let (i, j) = (x.round(), y.round());
                if i < 0.0 || j < 0.0 || i >= nx as f64 || j >= ny as f64 {
                    return f64::NAN;
                }
                f64::from(pb[[j as usize, i as usize]])
            }
        }
    }
}

/// Why an input could not be measured (it is then left out of the comparison with a note).
#[derive(Debug, thiserror::Error)]
enum InputError {
    #[error(transparent)]
    Read(#[from] crate::fits::read::FitsReadError),
    #[error("no usable WCS ({0})")]
    Wcs(#[source] crate::wcs::WcsError),
    #[error("no restoring beam (BMAJ/BMIN)")]
    NoBeam,
    #[error("rms {0} Jy/beam is not positive")]
    BadRms(f64),
    #[error("restoring beam or pixel size unusable")]
    BadBeam,
    #[error("primary-beam model or frequency not recorded")]
    NoModel,
    #[error("the record names no beam image")]
    NoBeamImage,
    #[error("beam image {path} is {pb:?}, the image {image:?}")]
    BeamImageShape {
        path: PathBuf,
        pb: (usize, usize),
        image: (usize, usize),
    },
    #[error("the image centre has no sky position")]
    NoCentre,
}

/// Reads one input and measures the anchors in it (step 2). `Err` says why it could not be.
fn measure_input(
    k: usize,
    rec: &InputRecord,
    anchors: &[Anchor],
    index: &ZoneIndex,
    per_image: &(dyn Fn(usize, ArrayView2<f32>, &BeamPx) + Sync),
) -> Result<Vec<Meas>, InputError> {
    let img = crate::fits::read::read_image(&rec.path)?;
    let wcs = Wcs::from_header(&img.header).map_err(InputError::Wcs)?;
    let cell = wcs.pixel_scale_deg() * 3600.0;
    let beam_deg = rec.beam_deg.or_else(|| {
        crate::fits::facts::restoring_beam(&img.header)
            .map(|b| (b.bmaj_arcsec / 3600.0, b.bmin_arcsec / 3600.0, b.bpa_deg))
    });
    let Some((bmaj, bmin, bpa)) = beam_deg else {
        return Err(InputError::NoBeam);
    };
    let beam = BeamPx {
        bmaj_arcsec: bmaj * 3600.0,
        bmin_arcsec: bmin * 3600.0,
        bpa_deg: bpa,
        cell_arcsec: cell,
    };
    let plane = img.plane.view();
    per_image(k, plane, &beam);
    if !(rec.rms_jy.is_finite() && rec.rms_jy > 0.0) {
        return Err(InputError::BadRms(rec.rms_jy));
    }
    if !(beam.fwhm_px().is_finite() && beam.fwhm_px() > 0.0) {
        return Err(InputError::BadBeam);
    }
    let response = match rec.primary_beam {
        // A corrected input combined with A ≡ 1 still has its noise rising as 1/A towards the
        // edge: its model (when known) gives the cut-off and the noise; its flux needs no factor.
        AppliedBeam::Unity => match (&rec.model, rec.freq_hz) {
            (Some(m), Some(f)) if rec.pb_corrected => Response::Model(m.clone(), f),
            _ => Response::Unity,
        },
        AppliedBeam::Model => match (&rec.model, rec.freq_hz) {
            (Some(m), Some(f)) => Response::Model(m.clone(), f),
            _ => return Err(InputError::NoModel),
        },
        AppliedBeam::Image => {
            let Some(pbp) = &rec.pb_image else {
                return Err(InputError::NoBeamImage);
            };
            let pb = crate::fits::read::read_image(pbp)?;
            if pb.plane.dim() != img.plane.dim() {
                return Err(InputError::BeamImageShape {
                    path: pbp.clone(),
                    pb: pb.plane.dim(),
                    image: img.plane.dim(),
                });
            }
            Response::Image(pb.plane)
        }
    };
    let (ny, nx) = plane.dim();
    let Some(centre) = wcs.pix_to_icrs((nx as f64 - 1.0) / 2.0, (ny as f64 - 1.0) / 2.0) else {
        return Err(InputError::NoCentre);
    };
    let radius = [(0.0, 0.0), (nx as f64 - 1.0, 0.0), (0.0, ny as f64 - 1.0)]
        .into_iter()
        .chain([(nx as f64 - 1.0, ny as f64 - 1.0)])
        .filter_map(|(x, y)| wcs.pix_to_icrs(x, y))
        .map(|p| separation_deg(centre, p))
        .fold(0.0f64, f64::max)
        * 1.05
        + cell / 3600.0;
    let cutoff = MIN_RESPONSE.max(rec.pb_cutoff);
    let r_px = SEARCH_RADIUS_BEAMS * beam.fwhm_px();
    let max_maj_px = ANCHOR_MAX_MAJ_BEAMS * beam.fwhm_px();
    let half = ((beam.fwhm_px() * 0.6).ceil() as usize).clamp(1, 5);
    let floor = POSITION_FLOOR_BEAMS * beam.bmaj_arcsec;
    // Condon (1997): a point source's position error per axis is σ_beam / (S/N) along each beam
    // axis (with beam-correlated noise); the geometric mean of the axes stands for both.
    let beam_geo = (beam.bmaj_arcsec * beam.bmin_arcsec).sqrt() / FWHM_PER_SIGMA;
    let mut out = Vec::new();
    for (ai, _) in index.within_radius(centre.0, centre.1, radius) {
        let a = anchors[ai];
        let Some((ax, ay)) = wcs.icrs_to_pix(a.ra, a.dec) else {
            continue;
        };
        if !(ax >= 0.0 && ay >= 0.0 && ax <= nx as f64 - 1.0 && ay <= ny as f64 - 1.0) {
            continue;
        }
        // Whether to measure, and with which weight, follows from the S/N the anchor's mosaic
        // flux density predicts here, not from this input's own noise draw.
        let resp_anchor = response.at(rec.pointing_deg, (a.ra, a.dec), ax, ay);
        if !(resp_anchor >= cutoff && resp_anchor.is_finite()) {
            continue;
        }
        let expected = a.flux_jy * resp_anchor / rec.rms_jy;
        if expected.is_nan() || expected < MIN_INPUT_SNR {
            continue;
        }
        let Some((px, py)) = local_peak(plane, ax, ay, r_px) else {
            continue;
        };
        let Some(fit) = gauss_fit(plane, px, py, half, &|_, _| 0.0) else {
            continue;
        };
        if !(fit.maj_px.is_finite() && fit.maj_px <= max_maj_px && fit.peak > 0.0) {
            continue;
        }
        let Some(p) = wcs.pix_to_icrs(fit.x, fit.y) else {
            continue;
        };
        let resp = response.at(rec.pointing_deg, p, fit.x, fit.y);
        if !(resp > 0.0 && resp.is_finite()) {
            continue;
        }
        let (flux, noise) = if rec.pb_corrected {
            (fit.peak, rec.rms_jy / resp)
        } else {
            (fit.peak / resp, rec.rms_jy)
        };
        // A catalogue gives total fluxes: the fitted Gaussian's volume over the beam area.
        let integrated = flux * fit.volume / fit.peak / beam.area_px();
        // Its own S/N decides only whether it was found at all (else a noise peak was).
        let found = fit.peak / noise;
        if found.is_nan() || found < MIN_FOUND_SNR {
            continue;
        }
        let snr = expected;
        out.push(Meas {
            input: k,
            anchor: ai,
            y: [
                wrap180(p.0 - a.ra) * a.cos_dec * 3600.0,
                (p.1 - a.dec) * 3600.0,
                flux.ln(),
            ],
            ln_int: integrated.ln(),
            sigma_pos: (beam_geo / snr).hypot(floor),
            sigma_ln: (1.0 / snr).hypot(FLUX_FLOOR),
        });
    }
    Ok(out)
}

/// The brightest finite pixel within `r` pixels of (ax, ay), when it is a local maximum (its 8
/// neighbours inside the image, finite and not brighter).
fn local_peak(plane: ArrayView2<f32>, ax: f64, ay: f64, r: f64) -> Option<(usize, usize)> {
    let (ny, nx) = plane.dim();
    let x0 = (ax - r).ceil().max(0.0) as usize;
    let y0 = (ay - r).ceil().max(0.0) as usize;
    let x1 = ((ax + r).floor().max(0.0) as usize).min(nx - 1);
    let y1 = ((ay + r).floor().max(0.0) as usize).min(ny - 1);
    let mut best: Option<(f32, usize, usize)> = None;
    for y in y0..=y1 {
        let dy = y as f64 - ay;
        for x in x0..=x1 {
            let dx = x as f64 - ax;
            if dx * dx + dy * dy > r * r {
                continue;
            }
            let v = plane[[y, x]];
            if v.is_finite() && best.is_none_or(|b| v > b.0) {
                best = Some((v, x, y));
            }
        }
    }
    let (v, x, y) = best?;
    if x == 0 || y == 0 || x + 1 >= nx || y + 1 >= ny {
        return None;
    }
    for j in y - 1..=y + 1 {
        for i in x - 1..=x + 1 {
            let w = plane[[j, i]];
            if !w.is_finite() || w > v {
                return None;
            }
        }
    }
    Some((x, y))
}

/// Checks every input of a mosaic against the others through the mosaic's point sources, and
/// solves for each input's offset and gain (see the module documentation). `anchors` are the
/// mosaic's detected sources; `per_image` is called once per input read, with its plane and its
/// restoring beam in its own pixels.
pub fn snapshot_consistency(
    inputs: &[InputRecord],
    anchors: &[Source],
    reference: &[Option<RefPoint>],
    mosaic_beam: &BeamPx,
    per_image: &(dyn Fn(usize, ArrayView2<f32>, &BeamPx) + Sync),
) -> SnapshotsReport {
    let t0 = Instant::now();
    let anchor_list = select_anchors(anchors, mosaic_beam);
    let index = ZoneIndex::new(
        &anchor_list.iter().map(|a| a.ra).collect::<Vec<_>>(),
        &anchor_list.iter().map(|a| a.dec).collect::<Vec<_>>(),
        1.0,
    );
    let measured: Vec<Result<Vec<Meas>, InputError>> = inputs
        .par_iter()
        .enumerate()
        .map(|(k, rec)| measure_input(k, rec, &anchor_list, &index, per_image))
        .collect();
    let measure_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let n = inputs.len();
    let mut notes: Vec<Option<String>> = vec![None; n];
    let mut n_measured = vec![0usize; n];
    let mut meas = Vec::new();
    for (k, m) in measured.into_iter().enumerate() {
        match m {
            Ok(v) => {
                n_measured[k] = v.len();
                meas.extend(v);
            }
            Err(e) => notes[k] = Some(format!("not measured: {e}")),
        }
    }
    let n_read = notes.iter().filter(|n| n.is_none()).count();
    let solution = solve(n, anchor_list.len(), &meas);
    let solve_s = t1.elapsed().as_secs_f64();

    let bmaj = mosaic_beam.bmaj_arcsec;
    let mut snapshots = Vec::with_capacity(n);
    for (k, rec) in inputs.iter().enumerate() {
        let s = &solution.inputs[k];
        let mut r = SnapshotResult {
            path: rec.path.clone(),
            n_measured: n_measured[k],
            n_anchors: s.shared,
            n_pairs: s.pairs,
            connected: s.shared >= MIN_SHARED_ANCHORS,
            component: s.component,
            component_size: s.component.map(|c| solution.component_sizes[c]),
            offset_ra_arcsec: None,
            offset_dec_arcsec: None,
            offset_ra_err_arcsec: None,
            offset_dec_err_arcsec: None,
            offset_beams: None,
            offset_err_beams: None,
            offset_significance: None,
            gain: None,
            gain_err: None,
            gain_significance: None,
            note: notes[k].clone(),
            ref_n: 0,
            ref_offset_ra_arcsec: None,
            ref_offset_dec_arcsec: None,
            ref_offset_beams: None,
            ref_offset_err_beams: None,
            ref_gain: None,
            ref_gain_err: None,
        };
        if let Some(((x, y), e)) = s.offset.zip(s.offset_err) {
            r.offset_ra_arcsec = Some(x);
            r.offset_dec_arcsec = Some(y);
            r.offset_ra_err_arcsec = Some(e);
            r.offset_dec_err_arcsec = Some(e);
            r.offset_beams = Some(x.hypot(y) / bmaj);
            r.offset_err_beams = Some(e / bmaj);
            r.offset_significance = (e > 0.0).then(|| (x / e).hypot(y / e));
        }
        if let Some((g, e)) = s.log_gain.zip(s.log_gain_err) {
            r.gain = Some(g.exp());
            r.gain_err = Some(e);
            r.gain_significance = (e > 0.0).then(|| g.abs() / e);
        }
        if r.note.is_none() {
            r.note = s.note.clone();
        }
        snapshots.push(r);
    }
    against_reference(&mut snapshots, &meas, &anchor_list, reference, bmaj);
    let mut per_anchor = vec![0usize; anchor_list.len()];
    for m in &meas {
        per_anchor[m.anchor] += 1;
    }
    SnapshotsReport {
        n_inputs: n,
        n_read,
        n_anchors: anchor_list.len(),
        n_anchors_shared: per_anchor.iter().filter(|&&c| c >= 2).count(),
        n_measurements: meas.len(),
        n_rejected: solution.n_rejected,
        n_pairs: solution.n_pairs,
        n_solved: snapshots
            .iter()
            .filter(|s| s.offset_beams.is_some())
            .count(),
        n_connected: snapshots.iter().filter(|s| s.connected).count(),
        n_components: solution.component_sizes.len(),
        position_chi2_dof: solution.position_chi2_dof,
        flux_chi2_dof: solution.flux_chi2_dof,
        mosaic_bmaj_arcsec: bmaj,
        snapshots,
        elapsed_s: t0.elapsed().as_secs_f64(),
        measure_s,
        solve_s,
    }
}

/// Each snapshot's own measurements against the reference (where the anchor has a reference
/// point): the inverse-variance weighted mean offset and ln flux ratio after dropping outliers
/// from the median, with the formal error inflated by √(χ²/dof) when the values scatter more. Needs no overlap between
/// snapshots, so a snapshot no other one shares sources with is still judged.
fn against_reference(
    snapshots: &mut [SnapshotResult],
    meas: &[Meas],
    anchors: &[Anchor],
    reference: &[Option<RefPoint>],
    bmaj: f64,
) {
    let mut per_input: Vec<Vec<[f64; 5]>> = vec![Vec::new(); snapshots.len()];
    for m in meas {
        let a = &anchors[m.anchor];
        let Some(r) = reference.get(a.source).copied().flatten() else {
            continue;
        };
        if r.flux_jy.is_nan() || r.flux_jy <= 0.0 {
            continue;
        }
        // Measured position − reference position = (measured − anchor) + (anchor − reference).
        let ax = wrap180(a.ra - r.ra) * a.cos_dec * 3600.0;
        let ay = (a.dec - r.dec) * 3600.0;
        if !m.ln_int.is_finite() {
            continue;
        }
        // Integrated flux against the catalogue's total flux (a fitted size adds about half
        // again to the error of a peak).
        per_input[m.input].push([
            m.y[0] + ax,
            m.y[1] + ay,
            m.ln_int - r.flux_jy.ln(),
            m.sigma_pos.hypot(r.pos_err_arcsec),
            (1.5 * m.sigma_ln).hypot(r.ln_err),
        ]);
    }
    for (s, v) in snapshots.iter_mut().zip(per_input) {
        s.ref_n = v.len();
        if v.len() < MIN_REFERENCE_SOURCES {
            continue;
        }
        // Inverse-variance weighted means after dropping values more than 4 of their own
        // standard errors (and 4 robust spreads) from the median: a misidentified source cannot
        // drag a snapshot, and the brighter sources count for more.
        let robust_mean = |i: usize, si: usize| -> Option<(f64, f64)> {
            let vals: Vec<f64> = v.iter().map(|m| m[i]).collect();
            let (med, scatter) = crate::stats::robust_stats_f64(&vals)?;
            let kept: Vec<&[f64; 5]> = v
                .iter()
                .filter(|m| (m[i] - med).abs() <= 4.0 * m[si].max(scatter))
                .collect();
            if kept.len() < MIN_REFERENCE_SOURCES {
                return None;
            }
            let w: f64 = kept.iter().map(|m| 1.0 / (m[si] * m[si]).max(1e-12)).sum();
            let mean = kept
                .iter()
                .map(|m| m[i] / (m[si] * m[si]).max(1e-12))
                .sum::<f64>()
                / w;
            // The formal error, inflated by the scatter about the mean when that is larger.
            let chi2 = kept
                .iter()
                .map(|m| ((m[i] - mean) / m[si].max(1e-6)).powi(2))
                .sum::<f64>()
                / (kept.len() - 1) as f64;
            Some((mean, w.sqrt().recip() * chi2.max(1.0).sqrt()))
        };
        let (Some((mx, ex)), Some((my, ey)), Some((ml, el))) =
            (robust_mean(0, 3), robust_mean(1, 3), robust_mean(2, 4))
        else {
            continue;
        };
        s.ref_offset_ra_arcsec = Some(mx);
        s.ref_offset_dec_arcsec = Some(my);
        s.ref_offset_beams = Some(mx.hypot(my) / bmaj);
        s.ref_offset_err_beams = Some(ex.max(ey) / bmaj);
        s.ref_gain = Some(ml.exp());
        s.ref_gain_err = Some(el.hypot(REFERENCE_FLUX_FLOOR));
    }
}

/// The solution for one input.
#[derive(Debug, Clone, Default)]
struct InputSolution {
    shared: usize,
    pairs: usize,
    component: Option<usize>,
    offset: Option<(f64, f64)>,
    /// Per axis (the two axes share their weights).
    offset_err: Option<f64>,
    log_gain: Option<f64>,
    log_gain_err: Option<f64>,
    note: Option<String>,
}

struct Solution {
    inputs: Vec<InputSolution>,
    component_sizes: Vec<usize>,
    n_rejected: usize,
    n_pairs: usize,
    position_chi2_dof: Option<f64>,
    flux_chi2_dof: Option<f64>,
}

/// The robust weights of the measurements: positions (both axes) and log flux.
#[derive(Clone)]
struct Weights {
    pos: Vec<f64>,
    flux: Vec<f64>,
}

impl Weights {
    fn used(&self, m: usize) -> bool {
        self.pos[m] > 0.0 || self.flux[m] > 0.0
    }
}

/// Steps 4 and 5: pruning, components, robust least squares, gauge and errors.
fn solve(n: usize, n_anchors: usize, meas: &[Meas]) -> Solution {
    let mut by_anchor: Vec<Vec<usize>> = vec![Vec::new(); n_anchors];
    for (i, m) in meas.iter().enumerate() {
        by_anchor[m.anchor].push(i);
    }
    let mut active = vec![true; n];
    let mut w = Weights {
        pos: vec![1.0; meas.len()],
        flux: vec![1.0; meas.len()],
    };
    let mut result = None;
    for _ in 0..5 {
        prune(&mut active, &by_anchor, meas, &w);
        let comps = components(n, &active, &by_anchor, meas, &w);
        let r = irls(n, &comps, &by_anchor, meas, &mut w);
        // Rejections may have left an input with too few anchors, or split a group: then prune
        // and solve again (keeping the robust weights).
        let before = active.clone();
        prune(&mut active, &by_anchor, meas, &w);
        let stable = before == active && components(n, &active, &by_anchor, meas, &w) == comps;
        result = Some((comps, r));
        if stable {
            break;
        }
    }
    let (comps, r) = result.expect("at least one pass");
    let mut inputs: Vec<InputSolution> = vec![InputSolution::default(); n];
    let (shared, pairs) = overlap(n, &active, &by_anchor, meas, &w);
    for k in 0..n {
        inputs[k].shared = shared[k];
        inputs[k].pairs = pairs[k];
        if shared[k] < MIN_SHARED_ANCHORS {
            inputs[k].note = Some(format!(
                "shares {} anchor(s) with the other inputs (needs {MIN_SHARED_ANCHORS}): too \
                 little overlap to solve",
                shared[k]
            ));
        }
    }
    let mut component_sizes = Vec::new();
    for (c, members) in comps.iter().enumerate() {
        component_sizes.push(members.len());
        for (j, &k) in members.iter().enumerate() {
            let s = &mut inputs[k];
            s.component = Some(c);
            if members.len() < MIN_COMPONENT_INPUTS {
                s.note = Some(format!(
                    "overlaps only {} other input(s): cannot tell which one is off",
                    members.len() - 1
                ));
                continue;
            }
            let sol = &r.per_component[c];
            if let Some(e) = sol.pos_err[j] {
                s.offset = Some((sol.x[j], sol.y[j]));
                s.offset_err = Some(e);
            }
            if let Some(e) = sol.g_err[j] {
                s.log_gain = Some(sol.g[j]);
                s.log_gain_err = Some(e);
            }
        }
    }
    let n_rejected = meas
        .iter()
        .enumerate()
        .filter(|(i, m)| active[m.input] && !w.used(*i))
        .count();
    Solution {
        inputs,
        component_sizes,
        n_rejected,
        n_pairs: pairs.iter().sum::<usize>() / 2,
        position_chi2_dof: r.position_chi2_dof,
        flux_chi2_dof: r.flux_chi2_dof,
    }
}

/// The measurements of anchor `k` that count: active input, robust weight > 0.
fn used_of<'a>(
    k: usize,
    by_anchor: &'a [Vec<usize>],
    meas: &'a [Meas],
    active: &'a [bool],
    w: &'a Weights,
) -> impl Iterator<Item = usize> + 'a {
    by_anchor[k]
        .iter()
        .copied()
        .filter(move |&m| active[meas[m].input] && w.used(m))
}

/// Per input: anchors shared with another active input, and pairs.
fn overlap(
    n: usize,
    active: &[bool],
    by_anchor: &[Vec<usize>],
    meas: &[Meas],
    w: &Weights,
) -> (Vec<usize>, Vec<usize>) {
    let (mut shared, mut pairs) = (vec![0usize; n], vec![0usize; n]);
    for k in 0..by_anchor.len() {
        let used: Vec<usize> = used_of(k, by_anchor, meas, active, w).collect();
        if used.len() < 2 {
            continue;
        }
        for &m in &used {
            shared[meas[m].input] += 1;
            pairs[meas[m].input] += used.len() - 1;
        }
    }
    (shared, pairs)
}

/// Deactivates inputs sharing fewer than [`MIN_SHARED_ANCHORS`] anchors, until none does.
fn prune(active: &mut [bool], by_anchor: &[Vec<usize>], meas: &[Meas], w: &Weights) {
    loop {
        let (shared, _) = overlap(active.len(), active, by_anchor, meas, w);
        let mut changed = false;
        for (a, s) in active.iter_mut().zip(shared) {
            if *a && s < MIN_SHARED_ANCHORS {
                *a = false;
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

/// Connected groups of active inputs (linked by shared anchors), each sorted, in input order.
fn components(
    n: usize,
    active: &[bool],
    by_anchor: &[Vec<usize>],
    meas: &[Meas],
    w: &Weights,
) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for k in 0..by_anchor.len() {
        let used: Vec<usize> = used_of(k, by_anchor, meas, active, w).collect();
        for pair in used.windows(2) {
            let (a, b) = (
                find(&mut parent, meas[pair[0]].input),
                find(&mut parent, meas[pair[1]].input),
            );
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for k in (0..n).filter(|&k| active[k]) {
        let root = find(&mut parent, k);
        groups.entry(root).or_default().push(k);
    }
    groups.into_values().collect()
}

/// The solution of one component (values in the order of its members, gauge applied).
struct ComponentSolution {
    x: Vec<f64>,
    y: Vec<f64>,
    g: Vec<f64>,
    pos_err: Vec<Option<f64>>,
    g_err: Vec<Option<f64>>,
}

struct IrlsResult {
    per_component: Vec<ComponentSolution>,
    position_chi2_dof: Option<f64>,
    flux_chi2_dof: Option<f64>,
}

/// One weighted Laplacian system for a component: L (dense, row-major) and right-hand sides.
struct System {
    l: Vec<f64>,
    b: Vec<Vec<f64>>,
}

/// Builds L and b for the quantities `q` (indices into `Meas::y`) with weights `wt(m)`.
fn build_system(
    members: &[usize],
    slot: &[usize],
    anchors: &[Vec<usize>],
    meas: &[Meas],
    q: &[usize],
    wt: &dyn Fn(usize) -> f64,
) -> System {
    let nc = members.len();
    let mut l = vec![0.0; nc * nc];
    let mut b = vec![vec![0.0; nc]; q.len()];
    for used in anchors {
        let ws: Vec<f64> = used.iter().map(|&m| wt(m)).collect();
        let wsum: f64 = ws.iter().sum();
        if wsum <= 0.0 || ws.iter().filter(|&&v| v > 0.0).count() < 2 {
            continue;
        }
        for (qi, &qq) in q.iter().enumerate() {
            let mean = used
                .iter()
                .zip(&ws)
                .map(|(&m, &wm)| wm * meas[m].y[qq])
                .sum::<f64>()
                / wsum;
            for (&m, &wm) in used.iter().zip(&ws) {
                b[qi][slot[meas[m].input]] += wm * (meas[m].y[qq] - mean);
            }
        }
        for (a, (&ma, &wa)) in used.iter().zip(&ws).enumerate() {
            let ia = slot[meas[ma].input];
            l[ia * nc + ia] += wa * (wsum - wa) / wsum;
            for (&mb, &wb) in used.iter().zip(&ws).skip(a + 1) {
                let ib = slot[meas[mb].input];
                let e = wa * wb / wsum;
                l[ia * nc + ib] -= e;
                l[ib * nc + ia] -= e;
            }
        }
    }
    System { l, b }
}

/// Solves L o = b for the mean-zero o of each right-hand side (through L + α·11ᵀ), and, when
/// asked, the diagonal of L's pseudo-inverse. Nodes with no information (L_ii = 0) get NaN.
fn solve_laplacian(sys: &System, nc: usize, want_diag: bool) -> (Vec<Vec<f64>>, Vec<f64>) {
    let trace: f64 = (0..nc).map(|i| sys.l[i * nc + i]).sum();
    let mean_diag = if trace > 0.0 { trace / nc as f64 } else { 1.0 };
    let alpha = mean_diag / nc as f64;
    let mut m = sys.l.clone();
    let info: Vec<bool> = (0..nc).map(|i| sys.l[i * nc + i] > 0.0).collect();
    for i in 0..nc {
        for j in 0..nc {
            m[i * nc + j] += alpha;
        }
        // A node without information would make the matrix singular: pin it (value 0).
        m[i * nc + i] += if info[i] {
            1e-12 * mean_diag
        } else {
            mean_diag
        };
    }
    if !cholesky(&mut m, nc) {
        let nan = vec![f64::NAN; nc];
        return (vec![nan.clone(); sys.b.len()], nan);
    }
    let sols = sys
        .b
        .iter()
        .map(|b| {
            let mut o = chol_solve(&m, nc, b);
            for (v, ok) in o.iter_mut().zip(&info) {
                if !ok {
                    *v = f64::NAN;
                }
            }
            o
        })
        .collect();
    let diag = if want_diag {
        let n_info = info.iter().filter(|&&v| v).count().max(1) as f64;
        chol_inverse_diag(&m, nc)
            .into_iter()
            .zip(&info)
            .map(|(d, &ok)| {
                if ok {
                    (d - 1.0 / (alpha * n_info * n_info)).max(0.0)
                } else {
                    f64::NAN
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    (sols, diag)
}

/// In-place Cholesky factorisation (lower triangle) of the SPD `a` (n × n, row-major).
fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let row_j = &mut a[j * n..(j + 1) * n];
        let mut d = row_j[j];
        for v in &row_j[..j] {
            d -= v * v;
        }
        if !(d > 0.0 && d.is_finite()) {
            return false;
        }
        let d = d.sqrt();
        row_j[j] = d;
        let row_j: Vec<f64> = row_j[..j].to_vec();
        // Rows below j: a[i][j] = (a[i][j] − Σ_k a[i][k] a[j][k]) / d.
        for i in j + 1..n {
            let row_i = &mut a[i * n..i * n + j + 1];
            let mut s = row_i[j];
            for (x, y) in row_i[..j].iter().zip(&row_j) {
                s -= x * y;
            }
            row_i[j] = s / d;
        }
    }
    true
}

/// Solves (C Cᵀ) x = b with the factor of [`cholesky`].
fn chol_solve(c: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut z = b.to_vec();
    for i in 0..n {
        let mut s = z[i];
        for k in 0..i {
            s -= c[i * n + k] * z[k];
        }
        z[i] = s / c[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = z[i];
        for k in i + 1..n {
            s -= c[k * n + i] * z[k];
        }
        z[i] = s / c[i * n + i];
    }
    z
}

/// diag((C Cᵀ)⁻¹) = column sums of squares of C⁻¹, with C⁻¹ computed row by row.
fn chol_inverse_diag(c: &[f64], n: usize) -> Vec<f64> {
    // Z = C⁻¹ (lower triangular), built by forward substitution of each unit vector.
    let mut diag = vec![0.0; n];
    let mut z = vec![0.0; n];
    for col in 0..n {
        z[..col].iter_mut().for_each(|v| *v = 0.0);
        z[col] = 1.0 / c[col * n + col];
        diag[col] += z[col] * z[col];
        for i in col + 1..n {
            let row = &c[i * n..i * n + i];
            let s: f64 = row[col..i].iter().zip(&z[col..i]).map(|(a, b)| a * b).sum();
            z[i] = -s / c[i * n + i];
            diag[col] += z[i] * z[i];
        }
    }
    diag
}

/// Huber weight with rejection: 1 up to `c`, c/t up to `reject`, 0 beyond.
fn huber(t: f64, c: f64, reject: f64) -> f64 {
    if !t.is_finite() || t > reject {
        0.0
    } else if t <= c {
        1.0
    } else {
        c / t
    }
}

/// Iteratively reweighted least squares over the components; updates the robust weights.
fn irls(
    n: usize,
    comps: &[Vec<usize>],
    by_anchor: &[Vec<usize>],
    meas: &[Meas],
    w: &mut Weights,
) -> IrlsResult {
    let mut slot = vec![usize::MAX; n];
    let mut in_comp = vec![false; n];
    for members in comps {
        for (j, &k) in members.iter().enumerate() {
            slot[k] = j;
            in_comp[k] = true;
        }
    }
    // Per component, the anchors' candidate measurements (inputs of that component).
    let comp_of = |k: usize| comps.iter().position(|c| c.binary_search(&k).is_ok());
    let mut comp_anchors: Vec<Vec<Vec<usize>>> = vec![Vec::new(); comps.len()];
    for list in by_anchor {
        let ms: Vec<usize> = list
            .iter()
            .copied()
            .filter(|&m| in_comp[meas[m].input])
            .collect();
        if ms.len() < 2 {
            continue;
        }
        if let Some(c) = comp_of(meas[ms[0]].input) {
            comp_anchors[c].push(ms);
        }
    }
    let c_pos = crate::stats::two_d_equivalent(HUBER_K);
    let r_pos = crate::stats::two_d_equivalent(REJECT_K);
    // Median of a 2-D standard normal's radius, and of |N(0, 1)|.
    let med_2d = (2.0 * std::f64::consts::LN_2).sqrt();
    let med_1d = 0.674_489_75;
    let solve_all = |w: &Weights, want_err: bool| -> Vec<(ComponentSolution, Residuals)> {
        comps
            .par_iter()
            .zip(&comp_anchors)
            .map(|(members, anchors)| solve_component(members, &slot, anchors, meas, w, want_err))
            .collect()
    };
    for _ in 0..MAX_ITERATIONS {
        let solved = solve_all(w, false);
        // Standardised residuals of every measurement of an anchor (rejected ones too, so that
        // they come back if the solution moves towards them).
        let (mut z_pos, mut z_flux) = (Vec::new(), Vec::new());
        for (_, res) in &solved {
            for &(m, zp, zf) in &res.z {
                if zp.is_finite() {
                    z_pos.push((m, zp));
                }
                if zf.is_finite() {
                    z_flux.push((m, zf));
                }
            }
        }
        let scale = |v: &[(usize, f64)], med: f64| {
            let a: Vec<f64> = v.iter().map(|p| p.1).collect();
            crate::stats::median_f64(&a).map_or(1.0, |m| (m / med).max(1.0))
        };
        let (s_pos, s_flux) = (scale(&z_pos, med_2d), scale(&z_flux, med_1d));
        let mut new_w = w.clone();
        for &(m, z) in &z_pos {
            new_w.pos[m] = huber(z / s_pos, c_pos, r_pos);
        }
        for &(m, z) in &z_flux {
            new_w.flux[m] = huber(z / s_flux, HUBER_K, REJECT_K);
        }
        let change = new_w
            .pos
            .iter()
            .zip(&w.pos)
            .chain(new_w.flux.iter().zip(&w.flux))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        *w = new_w;
        if change < 1e-3 {
            break;
        }
    }
    let solved = solve_all(w, true);
    let mut chi = [0.0; 4];
    for (_, res) in &solved {
        for (a, b) in chi.iter_mut().zip(res.chi) {
            *a += b;
        }
    }
    let mut sols: Vec<ComponentSolution> = solved.into_iter().map(|(s, _)| s).collect();
    let ratio = |c: f64, dof: f64| (dof > 0.0).then(|| c / dof);
    let (pos_chi2, flux_chi2) = (ratio(chi[0], chi[1]), ratio(chi[2], chi[3]));
    let inflate = |v: Option<f64>| v.map_or(1.0, |r| r.max(1.0).sqrt());
    let (fp, ff) = (inflate(pos_chi2), inflate(flux_chi2));
    for s in &mut sols {
        s.pos_err.iter_mut().flatten().for_each(|e| *e *= fp);
        s.g_err.iter_mut().flatten().for_each(|e| *e *= ff);
    }
    IrlsResult {
        per_component: sols,
        position_chi2_dof: pos_chi2,
        flux_chi2_dof: flux_chi2,
    }
}

/// Standardised residuals (measurement, |z| of position (2-D), |z| of ln flux) and the χ² sums
/// [χ²_pos, dof_pos, χ²_flux, dof_flux] of one component's solution.
struct Residuals {
    z: Vec<(usize, f64, f64)>,
    chi: [f64; 4],
}

/// Solves one component with the current weights, applies the median gauge, and returns the
/// residuals for the next reweighting.
fn solve_component(
    members: &[usize],
    slot: &[usize],
    anchors: &[Vec<usize>],
    meas: &[Meas],
    w: &Weights,
    want_err: bool,
) -> (ComponentSolution, Residuals) {
    let nc = members.len();
    let wp = |m: usize| w.pos[m] / (meas[m].sigma_pos * meas[m].sigma_pos);
    let wf = |m: usize| w.flux[m] / (meas[m].sigma_ln * meas[m].sigma_ln);
    let (pos, flux) = rayon::join(
        || {
            let sys = build_system(members, slot, anchors, meas, &[0, 1], &wp);
            solve_laplacian(&sys, nc, want_err)
        },
        || {
            let sys = build_system(members, slot, anchors, meas, &[2], &wf);
            solve_laplacian(&sys, nc, want_err)
        },
    );
    let (x, y, g) = (&pos.0[0], &pos.0[1], &flux.0[0]);
    // Residuals before the gauge (it does not change them).
    let mut z = Vec::new();
    let mut chi = [0.0; 4];
    let (mut n_pos, mut n_flux, mut k_pos, mut k_flux) = (0usize, 0usize, 0usize, 0usize);
    let mut nodes_pos = vec![false; nc];
    let mut nodes_flux = vec![false; nc];
    for used in anchors {
        let o = |m: usize, q: usize| -> f64 {
            let j = slot[meas[m].input];
            match q {
                0 => x[j],
                1 => y[j],
                _ => g[j],
            }
        };
        let mean = |q: usize, wt: &dyn Fn(usize) -> f64| -> (f64, f64) {
            let (mut s, mut ws) = (0.0, 0.0);
            for &m in used {
                let wm = wt(m);
                if wm > 0.0 {
                    s += wm * (meas[m].y[q] - o(m, q));
                    ws += wm;
                }
            }
            (s / ws, ws)
        };
        let (sx, wsum_p) = mean(0, &wp);
        let (sy, _) = mean(1, &wp);
        let (sg, wsum_f) = mean(2, &wf);
        let np = used.iter().filter(|&&m| wp(m) > 0.0).count();
        let nf = used.iter().filter(|&&m| wf(m) > 0.0).count();
        for &m in used {
            let me = &meas[m];
            let mut zp = f64::NAN;
            let mut zf = f64::NAN;
            if np >= 2 && wsum_p > 0.0 {
                let (rx, ry) = (me.y[0] - o(m, 0) - sx, me.y[1] - o(m, 1) - sy);
                let h = wp(m) / wsum_p;
                let s2 = me.sigma_pos * me.sigma_pos * (1.0 - h).max(0.05);
                zp = ((rx * rx + ry * ry) / s2).sqrt();
                chi[0] += wp(m) * (rx * rx + ry * ry);
                if wp(m) > 0.0 {
                    n_pos += 1;
                    nodes_pos[slot[me.input]] = true;
                }
            }
            if nf >= 2 && wsum_f > 0.0 {
                let r = me.y[2] - o(m, 2) - sg;
                let h = wf(m) / wsum_f;
                let s2 = me.sigma_ln * me.sigma_ln * (1.0 - h).max(0.05);
                zf = (r * r / s2).sqrt();
                chi[2] += wf(m) * r * r;
                if wf(m) > 0.0 {
                    n_flux += 1;
                    nodes_flux[slot[me.input]] = true;
                }
            }
            z.push((m, zp, zf));
        }
        if np >= 2 {
            k_pos += 1;
        }
        if nf >= 2 {
            k_flux += 1;
        }
    }
    let free = |nodes: &[bool]| nodes.iter().filter(|&&v| v).count().saturating_sub(1);
    chi[1] = 2.0 * (n_pos as f64 - k_pos as f64 - free(&nodes_pos) as f64);
    chi[3] = n_flux as f64 - k_flux as f64 - free(&nodes_flux) as f64;
    // The gauge: the median of each quantity over the members is zero.
    let gauge = |v: &[f64]| -> Vec<f64> {
        let m = crate::stats::median_f64(v).unwrap_or(0.0);
        v.iter().map(|a| a - m).collect()
    };
    let err = |d: &[f64], j: usize| d.get(j).copied().filter(|e| e.is_finite()).map(f64::sqrt);
    let sol = ComponentSolution {
        x: gauge(x),
        y: gauge(y),
        g: gauge(g),
        pos_err: (0..nc).map(|j| err(&pos.1, j)).collect(),
        g_err: (0..nc).map(|j| err(&flux.1, j)).collect(),
    };
    (sol, Residuals { z, chi })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fits::Value;
    use crate::mosaic::engine::linmos::{
        BuildOptions, MosaicInput, MosaicResult, OutputPaths, build_mosaic,
    };
    use crate::mosaic::qa::{QaConfig, find_sources_in};
    use crate::mosaic::sim::{SimConfig, SimSummary, simulate};

    /// Snapshots every 200 s: 256 cells of 25″ (1.78°) against a drift of 0.68° per snapshot,
    /// so each position is seen by 2–3 snapshots.
    const CADENCE_S: f64 = 200.0;
    /// Base noise (the simulator's default is 0.5 mJy/beam). The simulated sky has 8 sources
    /// per deg² above 2 mJy; at 0.5 mJy/beam, with the default 300 s cadence, a night of 10
    /// snapshots holds ~40 anchors and adjacent snapshots share 2–5 of them: too few for a
    /// per-snapshot gain to ±8 % (about half the snapshots get no value at all). At 0.15 mJy/beam
    /// the strip holds ~100 anchors.
    const NOISE_JY: f64 = 0.15e-3;

    /// A simulated night: `images` DSA-110-like snapshots of `size`² cells of 25″ along Dec 35.
    fn night(seed: u64, images: usize, size: usize) -> (tempfile::TempDir, SimSummary) {
        night_with(seed, images, size, false)
    }

    fn night_with(
        seed: u64,
        images: usize,
        size: usize,
        pb_images: bool,
    ) -> (tempfile::TempDir, SimSummary) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SimConfig {
            out: dir.path().to_path_buf(),
            images,
            size,
            cell: 25.0,
            seed,
            cadence: CADENCE_S,
            noise_jy: NOISE_JY,
            ra_start: Some(150.0),
            pb_images,
            ..SimConfig::default()
        };
        let summary = simulate(&cfg, &|_| {}).unwrap();
        (dir, summary)
    }

    /// Rewrites a snapshot: its pixels × `scale` and its reference position moved by (east,
    /// north) arcsec on the sky.
    fn corrupt(path: &Path, scale: f32, east_arcsec: f64, north_arcsec: f64) {
        let img = crate::fits::read::read_image(path).unwrap();
        let mut h = img.header.clone();
        let (ra, dec) = (h.f64("CRVAL1").unwrap(), h.f64("CRVAL2").unwrap());
        let ra2 = ra + east_arcsec / 3600.0 / (dec * D2R).cos();
        h.set("CRVAL1", Value::Float(ra2), "shifted");
        h.set(
            "CRVAL2",
            Value::Float(dec + north_arcsec / 3600.0),
            "shifted",
        );
        let data: Vec<f32> = img.plane.iter().map(|v| v * scale).collect();
        crate::fits::write::write_image(path, &img.shape, &data, &h).unwrap();
    }

    /// Builds the night's mosaic (snapshot `k`'s rms × `rms_scale[k]`) and runs the check on it.
    fn check(
        dir: &Path,
        s: &SimSummary,
        rms_scale: &[(usize, f64)],
    ) -> (MosaicResult, SnapshotsReport) {
        check_with(dir, s, rms_scale, &BuildOptions::default())
    }

    fn check_with(
        dir: &Path,
        s: &SimSummary,
        rms_scale: &[(usize, f64)],
        opts: &BuildOptions,
    ) -> (MosaicResult, SnapshotsReport) {
        let inputs: Vec<MosaicInput> = s
            .snapshots
            .iter()
            .map(|sn| {
                let k = rms_scale
                    .iter()
                    .find(|(i, _)| *i == sn.index)
                    .map_or(1.0, |p| p.1);
                MosaicInput::new(sn.file.clone(), sn.rms_jy * k)
            })
            .collect();
        let out = OutputPaths::from_stem(dir, "night");
        let result = build_mosaic(&inputs, opts, &out, &|_| {}).unwrap();
        assert_eq!(result.inputs.len(), inputs.len());
        let (sources, beam) = find_sources_in(&result.paths.mosaic, &QaConfig::default()).unwrap();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let report = snapshot_consistency(&result.inputs, &sources, &[], &beam, &|_, plane, b| {
            assert!(!plane.is_empty() && b.fwhm_px() > 1.0);
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(calls.into_inner(), inputs.len(), "per_image once per input");
        eprintln!(
            "{}: {} anchors ({} shared), {} measurements ({} rejected), {} pairs, {}/{} solved, \
             chi2/dof pos {:.2?} flux {:.2?}; {:.3} s (measure {:.3} s, solve {:.3} s)",
            dir.display(),
            report.n_anchors,
            report.n_anchors_shared,
            report.n_measurements,
            report.n_rejected,
            report.n_pairs,
            report.n_solved,
            report.n_inputs,
            report.position_chi2_dof,
            report.flux_chi2_dof,
            report.elapsed_s,
            report.measure_s,
            report.solve_s
        );
        for (k, r) in report.snapshots.iter().enumerate() {
            eprintln!(
                "  #{k}: anchors {:>3}/{:<3} pairs {:>3} offset {:.3?} ± {:.3?} beam ({:.1?} σ) \
                 gain {:.3?} ± {:.3?} {}",
                r.n_anchors,
                r.n_measured,
                r.n_pairs,
                r.offset_beams,
                r.offset_err_beams,
                r.offset_significance,
                r.gain,
                r.gain_err,
                r.note.as_deref().unwrap_or("")
            );
        }
        (result, report)
    }

    fn offset_vec(r: &SnapshotResult, bmaj: f64) -> (f64, f64) {
        (
            r.offset_ra_arcsec.unwrap() / bmaj,
            r.offset_dec_arcsec.unwrap() / bmaj,
        )
    }

    #[test]
    fn clean_nights_agree() {
        let (mut worst_off, mut worst_gain, mut worst_z_off, mut worst_z_gain) =
            (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for seed in [1, 2, 3, 4] {
            let (dir, s) = night(seed, 10, 256);
            let (_, rep) = check(dir.path(), &s, &[]);
            assert!(rep.n_solved >= 8, "seed {seed}: {} solved", rep.n_solved);
            for r in rep.snapshots.iter().filter(|r| r.offset_beams.is_some()) {
                let off = r.offset_beams.unwrap();
                let gain = r.gain.unwrap();
                assert!(
                    off < 0.25,
                    "seed {seed}: {} offset {off} beam",
                    r.path.display()
                );
                assert!(
                    (gain - 1.0).abs() < 0.08,
                    "seed {seed}: {} gain {gain}",
                    r.path.display()
                );
                worst_off = worst_off.max(off);
                worst_gain = worst_gain.max((gain - 1.0).abs());
                worst_z_off = worst_z_off.max(r.offset_significance.unwrap_or(0.0));
                worst_z_gain = worst_z_gain.max(r.gain_significance.unwrap_or(0.0));
            }
        }
        eprintln!(
            "clean nights: worst |offset| {worst_off:.3} beam ({worst_z_off:.2} σ at most), worst \
             |gain − 1| {worst_gain:.3} ({worst_z_gain:.2} σ at most)"
        );
    }

    #[test]
    fn beam_images_and_unity_beams_are_used_as_the_build_used_them() {
        let (dir, s) = night_with(10, 8, 256, true);
        // `auto` finds the beam images beside the snapshots.
        let (result, rep) = check(dir.path(), &s, &[]);
        assert!(
            result
                .inputs
                .iter()
                .all(|r| r.primary_beam == AppliedBeam::Image
                    && r.pb_image.as_deref().is_some_and(Path::exists))
        );
        for r in rep.snapshots.iter().filter(|r| r.gain.is_some()) {
            assert!(r.offset_beams.unwrap() < 0.25, "{r:?}");
            assert!((r.gain.unwrap() - 1.0).abs() < 0.08, "{r:?}");
        }
        assert!(rep.n_solved >= 6, "{} solved", rep.n_solved);
        // The same night with A ≡ 1 (wrong for these apparent images): positions still agree,
        // the fluxes of an anchor seen at different places in the beams do not, and the flux
        // χ²/dof says so (the gain errors are inflated by it).
        let unity = BuildOptions {
            primary_beam: crate::mosaic::engine::linmos::PrimaryBeam::Unity,
            ..BuildOptions::default()
        };
        let (result, rep) = check_with(dir.path(), &s, &[], &unity);
        assert!(
            result
                .inputs
                .iter()
                .all(|r| r.primary_beam == AppliedBeam::Unity && r.pb_image.is_none())
        );
        assert!(rep.n_solved >= 6);
        for r in rep.snapshots.iter().filter(|r| r.gain.is_some()) {
            assert!(r.offset_beams.unwrap() < 0.25, "{r:?}");
        }
        assert!(rep.flux_chi2_dof.unwrap() > 2.0, "{:?}", rep.flux_chi2_dof);
    }

    #[test]
    fn a_shifted_snapshot_is_named() {
        for (seed, beams) in [(5, 1.0), (6, 2.0)] {
            let (dir, s) = night(seed, 10, 256);
            let bmaj = crate::mosaic::sim::BMAJ_CELLS * 25.0;
            let bad = 4;
            // 0.6 east, 0.8 north: |shift| = `beams` beams.
            let (e, n) = (0.6 * beams * bmaj, 0.8 * beams * bmaj);
            corrupt(&s.snapshots[bad].file, 1.0, e, n);
            let (_, rep) = check(dir.path(), &s, &[]);
            let mb = rep.mosaic_bmaj_arcsec;
            for (k, r) in rep.snapshots.iter().enumerate() {
                let (x, y) = offset_vec(r, mb);
                if k == bad {
                    let (dx, dy) = (x - e / mb, y - n / mb);
                    assert!(
                        dx.hypot(dy) < 0.2,
                        "shift {beams}: snapshot {k} offset ({x:.3}, {y:.3}) beam, expected \
                         ({:.3}, {:.3})",
                        e / mb,
                        n / mb
                    );
                    assert!(r.offset_significance.unwrap() > 5.0);
                } else {
                    assert!(
                        x.hypot(y) < 0.3,
                        "shift {beams}: good snapshot {k} offset {:.3} beam",
                        x.hypot(y)
                    );
                }
            }
            let worst = rep.worst_offsets();
            assert_eq!(worst[0].path, s.snapshots[bad].file);
            assert!(worst[1].offset_significance.unwrap() < 5.0);
        }
    }

    #[test]
    fn a_mis_scaled_snapshot_is_named() {
        for (seed, k) in [(7, 1.5), (8, 3.0), (9, 0.5)] {
            let (dir, s) = night(seed, 10, 256);
            let bad = 5;
            corrupt(&s.snapshots[bad].file, k as f32, 0.0, 0.0);
            let (_, rep) = check(dir.path(), &s, &[(bad, k)]);
            for (i, r) in rep.snapshots.iter().enumerate() {
                let g = r.gain.unwrap();
                let want = if i == bad { k } else { 1.0 };
                assert!(
                    (g / want - 1.0).abs() < 0.08,
                    "×{k}: snapshot {i} gain {g:.3}, expected {want}"
                );
                let (x, y) = offset_vec(r, rep.mosaic_bmaj_arcsec);
                assert!(x.hypot(y) < 0.3, "×{k}: snapshot {i} offset {}", x.hypot(y));
            }
            let worst = rep.worst_gains();
            assert_eq!(worst[0].path, s.snapshots[bad].file);
            assert!(worst[0].gain_significance.unwrap() > 5.0);
        }
    }

    #[test]
    fn inputs_record_reads_back_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let rec = InputRecord {
            path: "a.fits".into(),
            rms_jy: 1e-3,
            pb_corrected: false,
            freq_hz: Some(1.4e9),
            telescope: Some("DSA-110".into()),
            pointing_deg: (150.0, 35.0),
            pointing_source: None,
            kind: None,
            beam_deg: Some((0.02, 0.018, 10.0)),
            primary_beam: AppliedBeam::Model,
            beam_reason: "built-in model of DSA-110".into(),
            model: BeamModel::for_telescope("DSA-110"),
            pb_image: None,
            pb_cutoff: 0.1,
        };
        let p = dir.path().join("x.inputs.json");
        let text = serde_json::json!({"schema": INPUTS_SCHEMA, "inputs": [rec.clone()]});
        std::fs::write(&p, text.to_string()).unwrap();
        assert_eq!(read_inputs(&p).unwrap(), vec![rec]);
        std::fs::write(&p, r#"{"schema": "contimg.other/1", "inputs": []}"#).unwrap();
        let e = read_inputs(&p).unwrap_err().to_string();
        assert!(e.contains("contimg.inputs/1"), "{e}");
        assert!(read_inputs(&dir.path().join("missing.json")).is_err());
    }

    #[test]
    fn laplacian_solve_recovers_offsets_with_pseudo_inverse_errors() {
        // Three inputs in a chain, each pair sharing anchors; input 2 is 5″ east.
        let mut meas = Vec::new();
        let truth = [0.0, 0.0, 5.0];
        for a in 0..12 {
            let pair = if a < 6 { [0, 1] } else { [1, 2] };
            for i in pair {
                meas.push(Meas {
                    input: i,
                    anchor: a,
                    y: [truth[i] + a as f64, -(a as f64), 0.1 * a as f64],
                    ln_int: 0.0,
                    sigma_pos: 1.0,
                    sigma_ln: 0.05,
                });
            }
        }
        let sol = solve(3, 12, &meas);
        let x: Vec<f64> = sol.inputs.iter().map(|s| s.offset.unwrap().0).collect();
        assert!((x[0]).abs() < 1e-9 && (x[1]).abs() < 1e-9 && (x[2] - 5.0).abs() < 1e-9);
        // Six pairs of weight 1/2 per link: L⁺ of the path graph 0–1–2 with link weight 3.
        let e: Vec<f64> = sol.inputs.iter().map(|s| s.offset_err.unwrap()).collect();
        let want = [5.0 / 27.0, 2.0 / 27.0, 5.0 / 27.0].map(f64::sqrt);
        for (a, b) in e.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{e:?} vs {want:?}");
        }
    }

    /// A synthetic strip of `n` inputs: anchor k is seen by inputs k/`per`, …, +2 (three
    /// consecutive snapshots), with noise of 2″ and 3 % drawn from `seed`.
    fn strip(n: usize, per: usize, seed: u64) -> (Vec<Meas>, usize) {
        use rand::{RngExt, SeedableRng};
        use rand_distr::StandardNormal;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n_anchors = (n - 2) * per;
        let mut meas = Vec::new();
        for a in 0..n_anchors {
            let first = a / per;
            let truth: [f64; 3] = [rng.random::<f64>() * 10.0, rng.random::<f64>() * 10.0, -4.0];
            for input in first..first + 3 {
                let mut y = truth;
                y[0] += 2.0 * rng.sample::<f64, _>(StandardNormal);
                y[1] += 2.0 * rng.sample::<f64, _>(StandardNormal);
                y[2] += 0.03 * rng.sample::<f64, _>(StandardNormal);
                meas.push(Meas {
                    input,
                    anchor: a,
                    y,
                    ln_int: 0.0,
                    sigma_pos: 2.0,
                    sigma_ln: 0.03,
                });
            }
        }
        (meas, n_anchors)
    }

    #[test]
    fn a_misidentified_anchor_does_not_drag_a_snapshot() {
        let (mut meas, n_anchors) = strip(12, 8, 3);
        // Input 5 is 40″ west and 20 % bright; one of its measurements is of another source.
        for m in meas.iter_mut().filter(|m| m.input == 5) {
            m.y[0] -= 40.0;
            m.y[2] += 0.2f64.ln_1p();
        }
        let bad = meas.iter().position(|m| m.input == 7).unwrap();
        meas[bad].y[0] += 150.0;
        meas[bad].y[2] += 1.0;
        let sol = solve(12, n_anchors, &meas);
        for (k, s) in sol.inputs.iter().enumerate() {
            let (x, y) = s.offset.unwrap();
            let g = s.log_gain.unwrap();
            let (wx, wg) = if k == 5 {
                (-40.0, 0.2f64.ln_1p())
            } else {
                (0.0, 0.0)
            };
            assert!(
                (x - wx).abs() < 3.0 && y.abs() < 3.0,
                "input {k}: ({x}, {y})"
            );
            assert!((g - wg).abs() < 0.05, "input {k}: g {g}");
        }
        assert!(sol.n_rejected >= 1, "the misidentification is rejected");
    }

    #[test]
    fn a_thousand_inputs_solve_quickly() {
        let (meas, n_anchors) = strip(1000, 6, 4);
        let t = Instant::now();
        let sol = solve(1000, n_anchors, &meas);
        let dt = t.elapsed().as_secs_f64();
        eprintln!(
            "1000 inputs, {} measurements: solved in {dt:.2} s",
            meas.len()
        );
        assert_eq!(sol.component_sizes, vec![1000]);
        let worst = sol
            .inputs
            .iter()
            .map(|s| s.offset.unwrap().0.abs() / s.offset_err.unwrap())
            .fold(0.0f64, f64::max);
        // A random walk along the strip: errors grow away from the middle, and say so.
        assert!(worst < 5.0, "worst offset {worst} standard errors");
    }

    #[test]
    fn cholesky_inverse_diagonal_is_exact() {
        let a = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0];
        let mut c = a;
        assert!(cholesky(&mut c, 3));
        let x = chol_solve(&c, 3, &[1.0, 2.0, 3.0]);
        for i in 0..3 {
            let r: f64 = (0..3).map(|j| a[i * 3 + j] * x[j]).sum();
            assert!((r - [1.0, 2.0, 3.0][i]).abs() < 1e-12);
        }
        let d = chol_inverse_diag(&c, 3);
        for i in 0..3 {
            let mut e = [0.0; 3];
            e[i] = 1.0;
            let col = chol_solve(&c, 3, &e);
            assert!((col[i] - d[i]).abs() < 1e-12);
        }
    }

    /// A realistic night: 16 snapshots of 2048² pixels. The time of the check against the time of
    /// reading the files (not asserted; about 7 s in all).
    #[test]
    fn timing_on_16_snapshots_of_2048_pixels() {
        let t = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let cfg = SimConfig {
            out: dir.path().to_path_buf(),
            images: 16,
            size: 2048,
            cell: 3.2,
            seed: 11,
            ra_start: Some(150.0),
            cadence: CADENCE_S,
            noise_jy: NOISE_JY,
            ..SimConfig::default()
        };
        let s = simulate(&cfg, &|_| {}).unwrap();
        eprintln!("simulated in {:.1} s", t.elapsed().as_secs_f64());
        let t = Instant::now();
        let (_, rep) = check(dir.path(), &s, &[]);
        eprintln!("built + checked in {:.1} s", t.elapsed().as_secs_f64());
        let t = Instant::now();
        let n: usize = s
            .snapshots
            .par_iter()
            .map(|sn| crate::fits::read::read_image(&sn.file).unwrap().plane.len())
            .sum();
        eprintln!(
            "reading the {} inputs ({n} pixels) alone: {:.3} s; the check: {:.3} s (measure \
             {:.3} s, solve {:.3} s)",
            s.snapshots.len(),
            t.elapsed().as_secs_f64(),
            rep.elapsed_s,
            rep.measure_s,
            rep.solve_s
        );
    }
}
