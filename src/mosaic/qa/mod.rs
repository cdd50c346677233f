//! Quality assessment of a built mosaic: noise, sources, astrometry against a reference
//! catalogue, dynamic range, artefacts, a PASS/WARN/FAIL verdict per tier, the records and the
//! pictures.
//!
//! Owns: [`measure`] (files in, [`QaReport`] and products out: source catalogue CSV + FITS table
//! and PNGs beside the mosaic or in a chosen directory), [`record`] (one `mosaic_qa` row and the
//! `mosaics` row's `qa_status`/`qa_details`, in one transaction), [`QaManifest`]
//! (`contimg.qa/1`), and the submodules that do the measuring.
//!
//! Invariants: QA reads only the mosaic manifest or `mosaics` row and the FITS products, never the
//! builder's internals; the verdict is the worst of its checks, every WARN/FAIL check carries a
//! message saying what was measured against which threshold; `measure` writes nothing to the
//! database and `record` reads no files, so a queued task and the CLI do identical work.

pub mod artefacts;
pub mod background;
pub mod catalog;
pub mod config;
pub mod font;
pub mod plot;
pub mod scan;
pub mod snapshots;
pub mod sources;
pub mod structure;
pub mod synth;
pub mod verdict;
pub mod xmatch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

pub use config::{QaConfig, QaTierConfig, Thresholds};
pub use verdict::{checks, verdict_of};

use crate::fits::read::{FitsReadError, read_image};
use crate::manifest::{MosaicManifest, QA_SCHEMA};
use crate::store::{Db, Sql, StoreError};
use crate::wcs::{Wcs, WcsError};
use artefacts::Artefacts;
use background::BackgroundGrid;
use sources::{BeamPx, Source};

#[derive(Debug, thiserror::Error)]
pub enum QaError {
    #[error(transparent)]
    Read(#[from] FitsReadError),
    #[error("{path}: the mosaic's WCS cannot be used: {source}")]
    Wcs { path: PathBuf, source: WcsError },
    #[error(
        "{path}: no restoring beam (BMAJ/BMIN keywords or an AIPS HISTORY card); QA needs it to \
         size boxes, fits and the match radius"
    )]
    NoBeam { path: PathBuf },
    #[error("{path}: no finite pixels; the mosaic is empty")]
    Empty { path: PathBuf },
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
    #[error("{path}: cannot write the rms map: {source}")]
    RmsMap {
        path: PathBuf,
        #[source]
        source: crate::fits::write::FitsWriteError,
    },
    #[error("mosaic {id} is not in the database {db}; run `contimg build` first or check the id")]
    NoMosaic { id: i64, db: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A check's outcome, ordered PASS < WARN < FAIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

/// What QA is run on (one built mosaic): the facts from a mosaic manifest or a `mosaics` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub database: PathBuf,
    pub mosaic_id: i64,
    pub name: String,
    pub tier: String,
    pub path: PathBuf,
    /// The expected-noise map; `None` skips the noise efficiency (with a warning).
    pub noise_path: Option<PathBuf>,
    /// The build's record of its inputs (`<stem>.inputs.json`: each input's file, rms and primary
    /// beam); `None` skips the checks that compare the snapshots with each other.
    pub inputs_path: Option<PathBuf>,
}

impl Subject {
    /// From a `contimg.mosaic/1` manifest.
    pub fn from_manifest(m: &MosaicManifest) -> Subject {
        Subject {
            database: m.database.clone(),
            mosaic_id: m.mosaic_id,
            name: m.plan_name.clone(),
            tier: m.tier.clone(),
            path: m.path.clone(),
            noise_path: Some(m.noise_path.clone()),
            inputs_path: inputs_beside(&m.path),
        }
    }

    /// From the `mosaics` row `id`; the noise map is `<stem>.noise.fits` beside the mosaic when
    /// that file exists.
    pub fn from_db(db: &mut Db, id: i64) -> Result<Subject, QaError> {
        let label = PathBuf::from(db.label());
        let row = db
            .query_opt(
                "SELECT m.path, m.tier, p.name FROM mosaics m \
                 LEFT JOIN mosaic_plans p ON p.id = m.plan_id WHERE m.id = ?1",
                crate::vals![id],
            )?
            .ok_or_else(|| QaError::NoMosaic {
                id,
                db: label.clone(),
            })?;
        let (path, tier, name): (String, String, Option<String>) =
            (row.get(0)?, row.get(1)?, row.get(2)?);
        let path = PathBuf::from(path);
        let noise = path.with_file_name(format!("{}.noise.fits", stem(&path)));
        Ok(Subject {
            database: label,
            mosaic_id: id,
            name: name.unwrap_or_else(|| stem(&path)),
            tier,
            noise_path: noise.is_file().then_some(noise),
            inputs_path: inputs_beside(&path),
            path,
        })
    }
}

/// `<stem>.inputs.json` beside a mosaic, when the build wrote it.
fn inputs_beside(mosaic: &Path) -> Option<PathBuf> {
    let p = mosaic.with_file_name(format!("{}.inputs.json", stem(mosaic)));
    p.is_file().then_some(p)
}

/// The file name without `.fits`, `.fit`, `.fts` (and `.gz`).
pub fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(|| "mosaic".into(), |n| n.to_string_lossy().into_owned());
    let base = name.strip_suffix(".gz").unwrap_or(&name);
    let lower = base.to_ascii_lowercase();
    for ext in [".fits", ".fit", ".fts"] {
        if lower.ends_with(ext) {
            return base[..base.len() - ext.len()].to_string();
        }
    }
    base.to_string()
}

/// How to run QA.
#[derive(Debug, Clone)]
pub struct QaOptions {
    pub config: QaConfig,
    pub thresholds: Thresholds,
    /// The reference catalogue (already resolved: command line, tier, `[qa]`).
    pub reference: Option<PathBuf>,
    /// Where products go (default: beside the mosaic).
    pub out_dir: Option<PathBuf>,
    /// Draw the PNGs.
    pub pictures: bool,
    /// The measured noise of earlier mosaics of the same tier in this database, newest first
    /// ([`noise_history`]); empty when there are none.
    pub history_noise_jy: Vec<f64>,
    /// What the mosaic's plan took and left out ([`plan_selection`]); `None` when the database
    /// has no plan for it (the `selection` check is then not made).
    pub selection: Option<PlanSelection>,
}

/// What a mosaic's plan took from its window and left out, as the database records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSelection {
    pub plan_id: i64,
    /// Images the plan took.
    pub n_chosen: usize,
    /// The images it left out, with why; `None` for a plan recorded before contimg kept them.
    pub left_out: Option<Vec<crate::manifest::LeftOut>>,
}

/// The plan of mosaic `mosaic_id` as [`PlanSelection`]; `None` when the database has no plan
/// for it.
pub fn plan_selection(db: &mut Db, mosaic_id: i64) -> Result<Option<PlanSelection>, QaError> {
    let Some(r) = db.query_opt(
        "SELECT p.id, p.n_images, p.left_out FROM mosaics m JOIN mosaic_plans p ON p.id = m.plan_id \
         WHERE m.id = ?1",
        crate::vals![mosaic_id],
    )?
    else {
        return Ok(None);
    };
    Ok(Some(PlanSelection {
        plan_id: r.get(0)?,
        n_chosen: usize::try_from(r.get::<i64>(1)?).unwrap_or(0),
        left_out: r
            .get::<Option<String>>(2)?
            .and_then(|t| serde_json::from_str(&t).ok()),
    }))
}

/// The measured median noise (Jy/beam) of the latest `limit` other mosaics of `tier` in the
/// database, newest first (one figure per mosaic: its latest QA).
pub fn noise_history(
    db: &mut Db,
    tier: &str,
    mosaic_id: i64,
    limit: usize,
) -> Result<Vec<f64>, QaError> {
    let rows = db.query(
        "SELECT q.median_noise_jy FROM mosaic_qa q JOIN mosaics m ON m.id = q.mosaic_id \
         WHERE m.tier = ?1 AND q.mosaic_id <> ?2 AND q.median_noise_jy IS NOT NULL \
         AND q.id = (SELECT max(id) FROM mosaic_qa WHERE mosaic_id = q.mosaic_id) \
         ORDER BY q.id DESC LIMIT ?3",
        crate::vals![tier, mosaic_id, limit as i64],
    )?;
    let mut out = Vec::new();
    for r in rows {
        let v: f64 = r.get(0)?;
        if v.is_finite() && v > 0.0 {
            out.push(v);
        }
    }
    Ok(out)
}

/// Tonight's noise against the same tier's recent nights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoiseHistory {
    pub n: usize,
    /// Median and robust scatter (1.4826 MAD) of the earlier nights' noise (Jy/beam).
    pub median_jy: f64,
    pub scatter_jy: f64,
    /// Tonight's noise over that median.
    pub ratio: f64,
}

/// One check of the verdict: what was measured (`value`), what it should be (`expected`), the
/// outcome, and the snapshots to blame when the check can name them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: Verdict,
    /// False when the check could not be made (no reference catalogue, no inputs record, too few
    /// sources): it is reported and does not move the verdict.
    #[serde(default = "yes")]
    pub checked: bool,
    pub value: Option<f64>,
    /// The expectation the value is judged against, in words with its numbers.
    #[serde(default)]
    pub expected: String,
    pub message: String,
    /// Input images (snapshots) the check blames, worst first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blame: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoiseReport {
    /// Median over covered pixels of the local (box) rms map (Jy/beam).
    pub median_rms_jy: f64,
    /// Standard error of that median, from the spread of the independent boxes (Jy/beam).
    pub median_rms_err_jy: Option<f64>,
    /// 1.4826·MAD over all covered pixels (sources included).
    pub global_rms_jy: f64,
    /// Median background level (Jy/beam).
    pub median_background_jy: f64,
    /// Median expected noise from the build's noise map, if any.
    pub median_expected_jy: Option<f64>,
    /// Median over covered pixels of expected / measured noise (1 = as good as the weights say).
    pub noise_efficiency: Option<f64>,
    /// Standard error of the noise efficiency, from the spread of the independent boxes.
    pub noise_efficiency_err: Option<f64>,
    pub box_px: usize,
    pub n_pixels: u64,
    /// The background-rms map written beside the mosaic (`<stem>.rms.fits`, Jy/beam, NaN where
    /// the mosaic is blank), as BANE writes it.
    pub rms_map: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AstrometryReport {
    pub reference: PathBuf,
    /// "csv", "fits" or "votable".
    pub reference_format: String,
    pub n_reference: usize,
    /// The columns used: RA, Dec, flux ("" when none).
    pub columns: [String; 3],
    /// The reference catalogue's resolution (FWHM, arcsec) and 1σ position error, when known.
    pub reference_beam_arcsec: Option<f64>,
    pub reference_position_error_arcsec: Option<f64>,
    /// √((k·θ_mosaic)² + (k·θ_reference)² + (3·σ_reference)²), k = match_radius_beams.
    pub match_radius_arcsec: f64,
    pub n_matches: usize,
    /// Median offset found − reference (arcsec): ΔRA·cos δ and ΔDec.
    pub median_dra_arcsec: Option<f64>,
    pub median_ddec_arcsec: Option<f64>,
    /// Standard errors of those medians: √(π/2) · robust scatter / √n, per axis.
    pub median_dra_err_arcsec: Option<f64>,
    pub median_ddec_err_arcsec: Option<f64>,
    /// RMS of the offsets about zero (arcsec).
    pub rms_dra_arcsec: Option<f64>,
    pub rms_ddec_arcsec: Option<f64>,
    /// sqrt(rms_dra² + rms_ddec²).
    pub rms_arcsec: Option<f64>,
    /// Robust scatter of the offsets about their median, 1.4826·MAD per axis, and combined.
    pub robust_rms_dra_arcsec: Option<f64>,
    pub robust_rms_ddec_arcsec: Option<f64>,
    pub robust_rms_arcsec: Option<f64>,
    /// |median offset|: the systematic offset the verdict uses (arcsec), and in mosaic beams.
    pub offset_arcsec: Option<f64>,
    pub offset_beams: Option<f64>,
    /// Significance of the offset: √((ΔRA/σ_RA)² + (ΔDec/σ_Dec)²), in standard errors.
    pub offset_significance: Option<f64>,
    /// Median found peak / reference flux.
    pub median_flux_ratio: Option<f64>,
    /// The bulk offset found by votes over every pair within 5 combined beams, before matching.
    #[serde(default)]
    pub bulk: Option<xmatch::BulkOffset>,
    /// Isolated reference sources inside the mosaic predicted at S/N ≥ [`COMPLETENESS_SNR`], and
    /// how many of them were matched (`None` without reference fluxes).
    #[serde(default)]
    pub n_predicted: Option<usize>,
    #[serde(default)]
    pub n_predicted_matched: Option<usize>,
    /// The flux scale the prediction used (measured when `flux_scale` is, else 1).
    #[serde(default)]
    pub flux_scale_used: Option<f64>,
    /// Median (integrated flux / reference flux) of compact matched sources above S/N 10 (the
    /// peak times the fitted area over the mosaic's effective PSF area, at least the peak), over
    /// the ratio expected from the two frequencies and the spectral index; its relative error.
    #[serde(default)]
    pub flux_scale: Option<f64>,
    #[serde(default)]
    pub flux_scale_err: Option<f64>,
    #[serde(default)]
    pub flux_scale_expected: Option<f64>,
    /// ln-tolerance added for the scatter of spectral indices: scatter · |ln(ν/ν_ref)|.
    #[serde(default)]
    pub flux_scale_allowance: Option<f64>,
    #[serde(default)]
    pub n_flux: usize,
    #[serde(default)]
    pub reference_frequency_hz: Option<f64>,
    #[serde(default)]
    pub mosaic_frequency_hz: Option<f64>,
}

/// Reference sources predicted above this S/N count towards completeness.
pub const COMPLETENESS_SNR: f64 = 10.0;

/// The noise around one bright source, against the expected noise there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AroundSource {
    pub ra_deg: f64,
    pub dec_deg: f64,
    pub peak_jy: f64,
    pub snr: f64,
    /// √(mean of (pixel − background)² / expected²) over the annulus, islands excluded.
    pub noise_ratio: f64,
    /// Its standard error, from the independent beams in the annulus.
    pub err: f64,
    pub n_pixels: usize,
}

/// Dynamic range as "is the image dynamic-range limited": the noise around the brightest sources.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DynamicRangeNoise {
    pub inner_beams: f64,
    pub outer_beams: f64,
    pub min_snr: f64,
    pub sources: Vec<AroundSource>,
}

/// One input's noise structure (stripes), measured on its own pixel grid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputStructure {
    pub path: PathBuf,
    pub report: Option<structure::StructureReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourcesReport {
    pub n: usize,
    pub csv: PathBuf,
    pub fits: PathBuf,
    pub detection_sigma: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pictures {
    pub quicklook: Option<PathBuf>,
    pub offsets: Option<PathBuf>,
    pub noise_histogram: Option<PathBuf>,
}

/// Everything QA measured and decided (also `mosaics.qa_details`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QaReport {
    pub mosaic_id: i64,
    pub name: String,
    pub tier: String,
    pub mosaic: PathBuf,
    pub verdict: Verdict,
    pub checks: Vec<Check>,
    /// Things a person should know that are not checks (missing noise map, …).
    pub warnings: Vec<String>,
    pub beam: BeamPx,
    pub noise: NoiseReport,
    pub peak_jy: f64,
    pub dynamic_range: f64,
    /// Standard error of the dynamic range (peak noise and median-noise error combined).
    pub dynamic_range_err: Option<f64>,
    /// The noise around the brightest sources against the expected noise (what the
    /// `dynamic_range` check judges; `dynamic_range` above is the classic peak / noise).
    #[serde(default)]
    pub dynamic_range_noise: DynamicRangeNoise,
    /// Each input's noise structure (empty without the build's record of its inputs).
    #[serde(default)]
    pub noise_structure: Vec<InputStructure>,
    /// Every snapshot against the others (without the build's record of its inputs: `None`).
    #[serde(default)]
    pub snapshots: Option<snapshots::SnapshotsReport>,
    /// The noise against the recent nights of the same tier (`None` without such a history).
    #[serde(default)]
    pub noise_history: Option<NoiseHistory>,
    /// What the plan took and left out (`None` when QA ran without the plan's record).
    #[serde(default)]
    pub selection: Option<PlanSelection>,
    pub sources: SourcesReport,
    pub astrometry: Option<AstrometryReport>,
    pub artefacts: Artefacts,
    pub pictures: Pictures,
    pub thresholds: Thresholds,
    pub elapsed_s: f64,
    /// Wall time per stage (s): read, background, noise_map, sources, astrometry, artefacts,
    /// pictures.
    pub timings_s: BTreeMap<String, f64>,
}

/// `contimg.qa/1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QaManifest {
    pub schema: String,
    pub database: PathBuf,
    pub qa_id: i64,
    pub created_at: String,
    #[serde(flatten)]
    pub report: QaReport,
}

fn rms(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt())
}

/// Sampling stride giving at most about `max` samples of an `nx` × `ny` grid.
fn stride_for(nx: usize, ny: usize, max: usize) -> usize {
    (((nx * ny) as f64 / max as f64).sqrt().ceil() as usize).max(1)
}

/// The mosaic as QA reads it.
struct Mosaic {
    image: Array2<f32>,
    header: crate::fits::Header,
    wcs: Wcs,
    beam: BeamPx,
}

/// Reads the mosaic, its WCS and its restoring beam.
fn read_mosaic(path: &Path) -> Result<Mosaic, QaError> {
    let img = read_image(path)?;
    let wcs = Wcs::from_header(&img.header).map_err(|source| QaError::Wcs {
        path: path.to_path_buf(),
        source,
    })?;
    let b = crate::fits::facts::restoring_beam(&img.header).ok_or_else(|| QaError::NoBeam {
        path: path.to_path_buf(),
    })?;
    let beam = BeamPx {
        bmaj_arcsec: b.bmaj_arcsec,
        bmin_arcsec: b.bmin_arcsec,
        bpa_deg: b.bpa_deg,
        cell_arcsec: wcs.pixel_scale_deg() * 3600.0,
    };
    Ok(Mosaic {
        image: img.plane,
        header: img.header,
        wcs,
        beam,
    })
}

/// Box statistics (BANE-like) with boxes of `box_beams` beams.
fn background(m: &Mosaic, path: &Path, cfg: &QaConfig) -> Result<BackgroundGrid, QaError> {
    let box_px = ((cfg.box_beams * m.beam.fwhm_px()).round() as usize).max(16);
    BackgroundGrid::measure(m.image.view(), box_px).ok_or_else(|| QaError::Empty {
        path: path.to_path_buf(),
    })
}

/// Grid nodes whose box is mostly inside the covered image, and how many of them are
/// independent (boxes overlap: the grid step is a third of a box, so about one node in nine).
fn independent_nodes(grid: &BackgroundGrid) -> (Vec<(usize, usize)>, usize) {
    let nodes: Vec<(usize, usize)> = grid
        .fill
        .indexed_iter()
        .filter(|(_, f)| **f >= 0.5)
        .map(|(jk, _)| jk)
        .collect();
    let n_indep = (nodes.len() as f64 * (grid.step as f64 / grid.box_px as f64).powi(2))
        .round()
        .max(1.0) as usize;
    (nodes, n_indep)
}

/// The standard error of the median of `values` over `n_indep` independent samples.
fn median_error(values: &[f64], n_indep: usize) -> Option<f64> {
    let (_, scale) = crate::stats::robust_stats_f64(values)?;
    Some(crate::stats::median_standard_error(scale, n_indep))
}

/// The noise stage: measured noise, expected noise and efficiency, each with its error.
struct NoiseStage {
    report: NoiseReport,
    /// The expected noise at the background grid's nodes (for the edge-noise artefact).
    expected_nodes: Option<Array2<f64>>,
    /// The expected-noise map itself (what artefacts and the noise around bright sources are
    /// measured against).
    expected: Option<Array2<f32>>,
}

fn measure_noise(
    m: &Mosaic,
    grid: &BackgroundGrid,
    noise_path: Option<&Path>,
    rms_map: PathBuf,
    warnings: &mut Vec<String>,
) -> NoiseStage {
    let image = &m.image;
    let (ny, nx) = image.dim();
    // Samples of the rms map (and of the expected noise) over covered pixels.
    let st = stride_for(nx, ny, 1_000_000);
    let samples: Vec<(usize, usize)> = (0..ny)
        .step_by(st)
        .flat_map(|y| (0..nx).step_by(st).map(move |x| (x, y)))
        .filter(|&(x, y)| image[[y, x]].is_finite())
        .collect();
    let at = |&(x, y): &(usize, usize)| grid.at(x as f64, y as f64);
    let rms_at: Vec<f64> = samples.iter().map(|p| f64::from(at(p).1)).collect();
    let bkg_at: Vec<f64> = samples.iter().map(|p| f64::from(at(p).0)).collect();
    let gst = stride_for(nx, ny, 4_000_000);
    let global_rms = crate::stats::robust_rms(image.slice(ndarray::s![..;gst, ..;gst]).iter())
        .unwrap_or(f64::NAN);
    let (nodes, n_indep) = independent_nodes(grid);
    let node_rms: Vec<f64> = nodes.iter().map(|&jk| f64::from(grid.rms[jk])).collect();
    let mut stage = NoiseStage {
        report: NoiseReport {
            median_rms_jy: crate::stats::median_f64(&rms_at).unwrap_or(f64::NAN),
            median_rms_err_jy: median_error(&node_rms, n_indep),
            global_rms_jy: global_rms,
            median_background_jy: crate::stats::median_f64(&bkg_at).unwrap_or(f64::NAN),
            median_expected_jy: None,
            noise_efficiency: None,
            noise_efficiency_err: None,
            box_px: grid.box_px,
            n_pixels: 0,
            rms_map,
        },
        expected_nodes: None,
        expected: None,
    };
    let Some(p) = noise_path else {
        warnings.push(
            "no expected-noise map: noise efficiency not measured, edge noise compares raw rms"
                .to_string(),
        );
        return stage;
    };
    let e = match read_image(p) {
        Err(e) => {
            warnings.push(format!(
                "expected-noise map unreadable ({e}): noise efficiency not measured"
            ));
            return stage;
        }
        Ok(n) if n.plane.dim() != image.dim() => {
            warnings.push(format!(
                "{}: expected-noise map is {:?}, the mosaic {:?}: noise efficiency not measured",
                p.display(),
                n.plane.dim(),
                image.dim()
            ));
            return stage;
        }
        Ok(n) => n.plane,
    };
    let ex: Vec<f64> = samples.iter().map(|&(x, y)| f64::from(e[[y, x]])).collect();
    let positive: Vec<f64> = ex.iter().copied().filter(|v| *v > 0.0).collect();
    let ratios: Vec<f64> = ex
        .iter()
        .zip(&rms_at)
        .filter(|(e, r)| **e > 0.0 && **r > 0.0)
        .map(|(e, r)| e / r)
        .collect();
    let nodes_e = Array2::from_shape_fn(grid.rms.dim(), |(j, i)| {
        f64::from(e[[grid.ys[j], grid.xs[i]]])
    });
    let node_ratios: Vec<f64> = nodes
        .iter()
        .map(|&jk| nodes_e[jk] / f64::from(grid.rms[jk]))
        .filter(|r| r.is_finite() && *r > 0.0)
        .collect();
    stage.report.median_expected_jy = crate::stats::median_f64(&positive);
    stage.report.noise_efficiency = crate::stats::median_f64(&ratios);
    stage.report.noise_efficiency_err = median_error(&node_ratios, n_indep);
    stage.expected_nodes = Some(nodes_e);
    stage.expected = Some(e);
    if stage.report.noise_efficiency.is_none() {
        warnings
            .push("expected-noise map has no positive values where the mosaic is covered".into());
    }
    stage
}

/// Writes the background-rms map at full resolution (bilinear between the grid's nodes, NaN
/// where the mosaic is blank) with the mosaic's header.
fn write_rms_map(path: &Path, m: &Mosaic, grid: &BackgroundGrid) -> Result<(), QaError> {
    use rayon::prelude::*;
    let (ny, nx) = m.image.dim();
    let mut data = vec![f32::NAN; nx * ny];
    data.par_chunks_mut(nx).enumerate().for_each(|(y, row)| {
        for (x, v) in row.iter_mut().enumerate() {
            if m.image[[y, x]].is_finite() {
                *v = grid.at(x as f64, y as f64).1;
            }
        }
    });
    let map = Array2::from_shape_vec((ny, nx), data).expect("ny × nx values");
    let mut header = m.header.clone();
    header.set(
        "BUNIT",
        crate::fits::Value::Str("JY/BEAM".into()),
        "local background rms",
    );
    header.set(
        "BTYPE",
        crate::fits::Value::Str("rms".into()),
        "box statistics, 1.4826 MAD",
    );
    header.push_history(&format!(
        "contimg qa: background rms, boxes of {} px every {} px, bilinear between nodes",
        grid.box_px, grid.step
    ));
    crate::fits::write::write_image_2d(path, map.view(), &header).map_err(|source| {
        QaError::RmsMap {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// What the reference stage needs from the mosaic besides its sources.
struct MosaicView<'a> {
    m: &'a Mosaic,
    grid: &'a BackgroundGrid,
    expected: Option<&'a Array2<f32>>,
}

impl MosaicView<'_> {
    /// The noise a source at pixel (x, y) is detected against: the expected noise where there is
    /// a map, else the local box rms; `None` outside the covered image.
    fn noise_at(&self, x: f64, y: f64) -> Option<f64> {
        let (ny, nx) = self.m.image.dim();
        let (xi, yi) = (x.round(), y.round());
        if xi < 0.0 || yi < 0.0 || xi >= nx as f64 || yi >= ny as f64 {
            return None;
        }
        let (xi, yi) = (xi as usize, yi as usize);
        if !self.m.image[[yi, xi]].is_finite() {
            return None;
        }
        let e = self
            .expected
            .map(|e| f64::from(e[[yi, xi]]))
            .filter(|v| v.is_finite() && *v > 0.0);
        e.or_else(|| Some(f64::from(self.grid.at(x, y).1)))
    }
}

/// What the reference stage returns: the report, the matches, and for each source where it
/// should be according to the reference (for the snapshots' own comparison).
type ReferenceStage = (
    AstrometryReport,
    Vec<xmatch::Match>,
    Vec<Option<snapshots::RefPoint>>,
);

/// The reference stage: reads the catalogue, finds the bulk offset by votes, matches one-to-one
/// around it, measures the offsets, the flux scale (against the reference scaled to the mosaic's
/// frequency) and the completeness (the share of the reference sources the mosaic should detect
/// that it did, predicted with the measured flux scale).
fn astrometry(
    sources: &[Source],
    view: &MosaicView,
    rpath: &Path,
    cfg: &QaConfig,
    min_matches: usize,
    warnings: &mut Vec<String>,
) -> Result<ReferenceStage, QaError> {
    let beam = &view.m.beam;
    let reference = catalog::read_reference(rpath, &cfg.catalogue(rpath, &Default::default()))?;
    if reference.skipped > 0 {
        warnings.push(format!(
            "{}: {} row(s) without a readable position were skipped",
            rpath.display(),
            reference.skipped
        ));
    }
    let k = cfg.match_radius_beams;
    let ref_beam = reference.beam_arcsec.unwrap_or(0.0);
    let ref_err = reference.position_error_arcsec.unwrap_or(0.0);
    let combined = beam.bmaj_arcsec.hypot(ref_beam);
    let radius_arcsec =
        ((k * beam.bmaj_arcsec).powi(2) + (k * ref_beam).powi(2) + (3.0 * ref_err).powi(2)).sqrt();
    // The bulk offset first, from votes over every pair within 5 combined beams (a shift of
    // several beams is measured, not missed), with the brightest 2000 sources.
    // One index of the reference serves the votes (5 combined beams), the snapshots' reference
    // points (3.5) and completeness's isolation (1.5): a query may use any radius.
    let search = xmatch::ZoneIndex::new(&reference.ra, &reference.dec, 5.0 * combined / 3600.0);
    let bright: Vec<(f64, f64)> = sources
        .iter()
        .take(2000)
        .map(|s| (s.ra_deg, s.dec_deg))
        .collect();
    let cell = (0.5 * radius_arcsec).max(2.0 * ref_err).max(0.1);
    let bulk = xmatch::bulk_offset(
        &bright,
        &search,
        &reference.ra,
        &reference.dec,
        cell,
        min_matches.max(3),
    );
    let (bx, by) = bulk.map_or((0.0, 0.0), |b| (b.dra_arcsec, b.ddec_arcsec));
    let index = xmatch::ZoneIndex::new(&reference.ra, &reference.dec, radius_arcsec / 3600.0);
    let shifted: Vec<(f64, f64, f64)> = sources
        .iter()
        .map(|s| {
            let (ra, dec) = xmatch::moved((s.ra_deg, s.dec_deg), -bx, -by);
            (ra, dec, s.peak_jy)
        })
        .collect();
    let mut matches = xmatch::cross_match(
        &shifted,
        &index,
        &reference.ra,
        &reference.dec,
        reference.flux.as_deref(),
    );
    // Offsets are reported against the sources' own positions.
    for mt in &mut matches {
        let s = &sources[mt.source];
        let (dra, ddec) = xmatch::offset_arcsec(
            (s.ra_deg, s.dec_deg),
            (reference.ra[mt.reference], reference.dec[mt.reference]),
        );
        mt.dra_arcsec = dra;
        mt.ddec_arcsec = ddec;
    }
    let dra: Vec<f64> = matches.iter().map(|m| m.dra_arcsec).collect();
    let ddec: Vec<f64> = matches.iter().map(|m| m.ddec_arcsec).collect();
    let n = matches.len();
    let (ra_stats, dec_stats) = (
        crate::stats::robust_stats_f64(&dra),
        crate::stats::robust_stats_f64(&ddec),
    );
    let se = |st: Option<(f64, f64)>| st.map(|(_, s)| crate::stats::median_standard_error(s, n));
    let (mr, md) = (ra_stats.map(|s| s.0), dec_stats.map(|s| s.0));
    let (er, ed) = (se(ra_stats), se(dec_stats));
    let (rr, rd) = (rms(&dra), rms(&ddec));
    let (sr, sd) = (ra_stats.map(|s| s.1), dec_stats.map(|s| s.1));
    let offset = mr.zip(md).map(|(a, b)| a.hypot(b));
    let significance = match (mr, md, er, ed) {
        (Some(a), Some(b), Some(ea), Some(eb)) if ea > 0.0 && eb > 0.0 => {
            Some((a / ea).hypot(b / eb))
        }
        (Some(a), Some(b), Some(_), Some(_)) if a == 0.0 && b == 0.0 => Some(0.0),
        (Some(_), Some(_), Some(_), Some(_)) => Some(f64::INFINITY),
        _ => None,
    };
    let ratios: Vec<f64> = matches.iter().filter_map(|m| m.flux_ratio).collect();
    let flux = flux_scale(sources, &matches, &reference, view, cfg);
    let (n_predicted, n_predicted_matched) = completeness(
        &reference, &search, &matches, view, beam, combined, flux.used,
    );
    let report = AstrometryReport {
        reference: rpath.to_path_buf(),
        reference_format: reference.format.to_string(),
        n_reference: reference.ra.len(),
        columns: reference.columns.clone(),
        reference_beam_arcsec: reference.beam_arcsec,
        reference_position_error_arcsec: reference.position_error_arcsec,
        match_radius_arcsec: radius_arcsec,
        n_matches: n,
        median_dra_arcsec: mr,
        median_ddec_arcsec: md,
        median_dra_err_arcsec: er,
        median_ddec_err_arcsec: ed,
        rms_dra_arcsec: rr,
        rms_ddec_arcsec: rd,
        rms_arcsec: rr.zip(rd).map(|(a, b)| a.hypot(b)),
        robust_rms_dra_arcsec: sr,
        robust_rms_ddec_arcsec: sd,
        robust_rms_arcsec: sr.zip(sd).map(|(a, b)| a.hypot(b)),
        offset_arcsec: offset,
        offset_beams: offset.map(|o| o / beam.bmaj_arcsec),
        offset_significance: significance,
        median_flux_ratio: crate::stats::median_f64(&ratios),
        bulk,
        n_predicted,
        n_predicted_matched,
        flux_scale_used: reference.flux.as_ref().map(|_| flux.used),
        flux_scale: flux.scale,
        flux_scale_err: flux.err,
        flux_scale_expected: flux.expected,
        flux_scale_allowance: flux.allowance,
        n_flux: flux.n,
        reference_frequency_hz: reference.frequency_hz,
        mosaic_frequency_hz: flux.mosaic_freq,
    };
    // Where each source should be and how bright, for the snapshots' own comparison: relative
    // to the night's bulk offset and flux scale (those have checks of their own). Wider than the
    // match radius (a snapshot shifted by up to 3 beams leaves its sources that far from the
    // reference), so only a reference source without a rival within that radius (none at least
    // a fifth as bright) is taken.
    // An individual source's flux ratio scatters with its spectral index as the median's
    // allowance does.
    let ln_err = flux.allowance.unwrap_or(0.0);
    let wide_deg = 3.5 * combined / 3600.0;
    let ref_flux = |j: usize| reference.flux.as_ref().map_or(f64::NAN, |f| f[j]);
    let points: Vec<Option<snapshots::RefPoint>> = shifted
        .iter()
        .map(|&(ra, dec, _)| {
            let near = search.within_radius(ra, dec, wide_deg);
            let &(j, _) = near.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
            let fj = ref_flux(j);
            let rivals = near
                .iter()
                .filter(|&&(k, _)| k != j)
                .any(|&(k, _)| ref_flux(k).is_nan() || ref_flux(k) >= 0.2 * fj);
            if rivals {
                return None;
            }
            let (pra, pdec) = xmatch::moved((reference.ra[j], reference.dec[j]), bx, by);
            Some(snapshots::RefPoint {
                ra: pra,
                dec: pdec,
                flux_jy: fj * flux.used,
                pos_err_arcsec: ref_err,
                ln_err,
            })
        })
        .collect();
    Ok((report, matches, points))
}

/// The measured flux scale against the reference.
struct FluxScale {
    /// Median ratio over the expected ratio, its relative error, the expected ratio, the
    /// spectral-index allowance (ln units), how many sources.
    scale: Option<f64>,
    err: Option<f64>,
    expected: Option<f64>,
    allowance: Option<f64>,
    n: usize,
    /// What the completeness prediction uses: expected × scale when measured, else expected.
    used: f64,
    mosaic_freq: Option<f64>,
}

/// Integrated flux / reference flux of compact matched sources above S/N 10, over the ratio the
/// two frequencies and the spectral index predict.
fn flux_scale(
    sources: &[Source],
    matches: &[xmatch::Match],
    reference: &catalog::Reference,
    view: &MosaicView,
    cfg: &QaConfig,
) -> FluxScale {
    let mosaic_freq = crate::fits::facts::frequency_hz(&view.m.header);
    let beam = &view.m.beam;
    let expected = match (mosaic_freq, reference.frequency_hz) {
        (Some(f), Some(fr)) if f > 0.0 && fr > 0.0 => (f / fr).powf(cfg.spectral_index),
        _ => 1.0,
    };
    let allowance = match (mosaic_freq, reference.frequency_hz) {
        (Some(f), Some(fr)) if f > 0.0 && fr > 0.0 => {
            cfg.spectral_index_scatter * (f / fr).ln().abs()
        }
        _ => 0.0,
    };
    let mut out = FluxScale {
        scale: None,
        err: None,
        expected: Some(expected),
        allowance: Some(allowance),
        n: 0,
        used: expected,
        mosaic_freq,
    };
    let Some(ref_flux) = reference.flux.as_ref() else {
        out.expected = None;
        out.allowance = None;
        return out;
    };
    // Integrated flux against the mosaic's effective point-spread function: the median fitted
    // area of its bright sources. A mosaic of snapshots whose beams are rotated relative to each
    // other has a rounder PSF than the BMAJ/BMIN its header states; volume over the header's beam
    // area would overstate every flux by that ratio (~25 % seen on a simulated DSA-110 night).
    let areas: Vec<f64> = sources
        .iter()
        .filter(|s| s.snr >= 20.0 && s.fit == "gauss" && s.maj_arcsec.is_finite())
        .map(|s| s.maj_arcsec * s.min_arcsec)
        .filter(|a| a.is_finite() && *a > 0.0)
        .collect();
    let psf_area = crate::stats::median_f64(&areas)
        .filter(|_| areas.len() >= 5)
        .unwrap_or(beam.bmaj_arcsec * beam.bmin_arcsec);
    let ln_ratios: Vec<f64> = matches
        .iter()
        .filter_map(|mt| {
            let s = &sources[mt.source];
            let area = s.maj_arcsec * s.min_arcsec;
            // Compact: fitted area at most 2.25 (1.5²) times the PSF's.
            let compact = area.is_finite() && area <= 2.25 * psf_area;
            let f = ref_flux[mt.reference];
            let integrated = s.peak_jy * (area / psf_area).max(1.0);
            (s.snr >= 10.0 && compact && f.is_finite() && f > 0.0 && integrated > 0.0)
                .then(|| (integrated / (f * expected)).ln())
        })
        .collect();
    out.n = ln_ratios.len();
    if ln_ratios.len() < 5 {
        return out;
    }
    let Some((med, scatter)) = crate::stats::robust_stats_f64(&ln_ratios) else {
        return out;
    };
    out.scale = Some(med.exp());
    out.err = Some(crate::stats::median_standard_error(
        scatter.max(0.01),
        ln_ratios.len(),
    ));
    out.used = expected * med.exp();
    out
}

/// Reference sources inside the covered mosaic, isolated (no other reference source within 1.5
/// combined beams), predicted at S/N ≥ [`COMPLETENESS_SNR`] with the flux scale `scale`; and
/// how many of them were matched. `(None, None)` without reference fluxes.
fn completeness(
    reference: &catalog::Reference,
    index: &xmatch::ZoneIndex,
    matches: &[xmatch::Match],
    view: &MosaicView,
    beam: &BeamPx,
    combined_arcsec: f64,
    scale: f64,
) -> (Option<usize>, Option<usize>) {
    let Some(flux) = reference.flux.as_ref() else {
        return (None, None);
    };
    let (ny, nx) = view.m.image.dim();
    let margin = beam.fwhm_px().max(1.0);
    let inside: Vec<usize> = (0..reference.ra.len())
        .filter(|&j| flux[j].is_finite() && flux[j] > 0.0)
        .filter(|&j| {
            let Some((x, y)) = view.m.wcs.icrs_to_pix(reference.ra[j], reference.dec[j]) else {
                return false;
            };
            if x < margin
                || y < margin
                || x > nx as f64 - 1.0 - margin
                || y > ny as f64 - 1.0 - margin
            {
                return false;
            }
            view.noise_at(x, y)
                .is_some_and(|sigma| flux[j] * scale >= COMPLETENESS_SNR * sigma)
        })
        .collect();
    let isolation_deg = 1.5 * combined_arcsec / 3600.0;
    let isolated: Vec<usize> = inside
        .into_iter()
        .filter(|&j| {
            index
                .within_radius(reference.ra[j], reference.dec[j], isolation_deg)
                .len()
                <= 1
        })
        .collect();
    let matched: std::collections::HashSet<usize> = matches.iter().map(|m| m.reference).collect();
    let k = isolated.iter().filter(|j| matched.contains(j)).count();
    (Some(isolated.len()), Some(k))
}

/// The noise 3–12 beams around the brightest sources (S/N ≥ 50, at most 3), against the
/// expected noise (the local box rms without a map). Islands above the detection threshold and
/// everything within 2.5 beams of another detected source are left out, so the figure is the
/// noise (and sidelobes), not the neighbours.
fn noise_around_bright(
    m: &Mosaic,
    grid: &BackgroundGrid,
    mask: &[bool],
    sources: &[Source],
    expected: Option<&Array2<f32>>,
) -> DynamicRangeNoise {
    const INNER: f64 = 3.0;
    const OUTER: f64 = 12.0;
    const MIN_SNR: f64 = 50.0;
    let (ny, nx) = m.image.dim();
    let fwhm = m.beam.fwhm_px().max(1.0);
    let (r0, r1) = (INNER * fwhm, OUTER * fwhm);
    let area = m.beam.area_px().max(1.0);
    let around = sources
        .iter()
        .take(3)
        .filter(|s| s.snr >= MIN_SNR)
        .filter_map(|s| {
            let keep_out = 2.5 * fwhm;
            let neighbours: Vec<(f64, f64)> = sources
                .iter()
                .filter(|o| o.id != s.id)
                .filter(|o| (o.x - s.x).hypot(o.y - s.y) < r1 + keep_out)
                .map(|o| (o.x, o.y))
                .collect();
            let x0 = (s.x - r1).floor().max(0.0) as usize;
            let x1 = ((s.x + r1).ceil() as usize).min(nx - 1);
            let y0 = (s.y - r1).floor().max(0.0) as usize;
            let y1 = ((s.y + r1).ceil() as usize).min(ny - 1);
            // At most ~40k samples per source.
            let n_box = (x1 + 1 - x0) * (y1 + 1 - y0);
            let st = ((n_box as f64 / 40_000.0).sqrt().ceil() as usize).max(1);
            let (mut sum, mut n, mut covered) = (0.0f64, 0usize, 0usize);
            for y in (y0..=y1).step_by(st) {
                for x in (x0..=x1).step_by(st) {
                    let r = (x as f64 - s.x).hypot(y as f64 - s.y);
                    let v = m.image[[y, x]];
                    if r < r0 || r > r1 || !v.is_finite() || mask.get(y * nx + x) == Some(&true) {
                        continue;
                    }
                    let (fx, fy) = (x as f64, y as f64);
                    if neighbours
                        .iter()
                        .any(|&(ox, oy)| (fx - ox).hypot(fy - oy) < keep_out)
                    {
                        continue;
                    }
                    let (b, rms) = grid.at(x as f64, y as f64);
                    let sigma = expected
                        .map(|e| f64::from(e[[y, x]]))
                        .filter(|e| e.is_finite() && *e > 0.0)
                        .unwrap_or(f64::from(rms));
                    let d = f64::from(v - b) / sigma;
                    sum += d * d;
                    n += 1;
                    covered += st * st;
                }
            }
            if n < 20 {
                return None;
            }
            let ratio = (sum / n as f64).sqrt();
            let n_indep = (covered as f64 / area).max(1.0);
            Some(AroundSource {
                ra_deg: s.ra_deg,
                dec_deg: s.dec_deg,
                peak_jy: s.peak_jy,
                snr: s.snr,
                noise_ratio: ratio,
                err: ratio / (2.0 * n_indep).sqrt(),
                n_pixels: covered,
            })
        })
        .collect();
    DynamicRangeNoise {
        inner_beams: INNER,
        outer_beams: OUTER,
        min_snr: MIN_SNR,
        sources: around,
    }
}

/// Dynamic range (the brightest source's fitted peak, else the brightest pixel, over the median
/// noise) and its standard error.
fn dynamic_range(
    sources: &[Source],
    scan: &scan::Scan,
    grid: &BackgroundGrid,
    noise: &NoiseReport,
) -> (f64, f64, Option<f64>) {
    let (peak, peak_err) = match (sources.first(), scan.max_pixel) {
        (Some(s), _) => (s.peak_jy, s.rms_jy),
        (None, Some((v, x, y))) => {
            let (b, r) = grid.at(x as f64, y as f64);
            (f64::from(v) - f64::from(b), f64::from(r))
        }
        (None, None) => (f64::NAN, f64::NAN),
    };
    let dr = peak / noise.median_rms_jy;
    let err = noise
        .median_rms_err_jy
        .map(|e| dr * ((peak_err / peak).powi(2) + (e / noise.median_rms_jy).powi(2)).sqrt());
    (peak, dr, err.filter(|e| e.is_finite()))
}

/// Measures the mosaic, writes the source catalogues, the rms map and the pictures, and decides
/// the verdict.
pub fn measure(input: &Subject, opts: &QaOptions) -> Result<QaReport, QaError> {
    let t0 = Instant::now();
    let mut timings = BTreeMap::new();
    let mut lap = Instant::now();
    let mut stage = |name: &str| {
        timings.insert(name.to_string(), lap.elapsed().as_secs_f64());
        lap = Instant::now();
    };
    let cfg = &opts.config;
    let mut warnings = Vec::new();
    let out_dir = opts.out_dir.clone().unwrap_or_else(|| {
        input
            .path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    let st_name = stem(&input.path);
    let product = |suffix: &str| out_dir.join(format!("{st_name}.{suffix}"));

    let m = read_mosaic(&input.path)?;
    stage("read");
    let grid = background(&m, &input.path, cfg)?;
    stage("background");
    let noise_path = input.noise_path.as_deref();
    let mut noise = measure_noise(&m, &grid, noise_path, product("rms.fits"), &mut warnings);
    write_rms_map(&noise.report.rms_map, &m, &grid)?;
    stage("noise_map");

    let mut scan = scan::scan(
        m.image.view(),
        &grid,
        cfg.detection_sigma,
        noise.expected.as_ref().map(|e| e.view()),
    );
    // The islands, before source finding consumes the mask.
    let islands = scan.mask.clone();
    let sources = sources::find_sources(m.image.view(), &grid, &mut scan.mask, &m.beam, &m.wcs);
    let around = noise_around_bright(&m, &grid, &islands, &sources, noise.expected.as_ref());
    drop(islands);
    scan.mask = Vec::new();
    noise.report.n_pixels = scan.n_finite;
    let (csv, fits) = (product("sources.csv"), product("sources.fits"));
    catalog::write_sources_csv(&csv, &sources)?;
    catalog::write_sources_fits(&fits, &sources)?;
    stage("sources");

    let view = MosaicView {
        m: &m,
        grid: &grid,
        expected: noise.expected.as_ref(),
    };
    let (astrometry, matches, ref_points) = match &opts.reference {
        None => (None, Vec::new(), Vec::new()),
        Some(rpath) => {
            let (a, matches, points) = astrometry(
                &sources,
                &view,
                rpath,
                cfg,
                opts.thresholds.min_matches,
                &mut warnings,
            )?;
            (Some(a), matches, points)
        }
    };
    stage("astrometry");
    let (snapshots, noise_structure) = match &input.inputs_path {
        Some(p) => compare_inputs(p, &sources, &ref_points, &m.beam, &mut warnings),
        None => (None, Vec::new()),
    };
    stage("snapshots");

    let (peak, dr, dr_err) = dynamic_range(&sources, &scan, &grid, &noise.report);
    let expected_fn = noise
        .expected_nodes
        .as_ref()
        .map(|n| move |j: usize, i: usize| Some(n[[j, i]]).filter(|v| v.is_finite() && *v > 0.0));
    let artefacts = artefacts::score(
        m.image.view(),
        &grid,
        &scan,
        &sources,
        &m.beam,
        cfg.bright_sigma,
        expected_fn
            .as_ref()
            .map(|f| f as &dyn Fn(usize, usize) -> Option<f64>),
    );
    stage("artefacts");

    let mut report = QaReport {
        mosaic_id: input.mosaic_id,
        name: input.name.clone(),
        tier: input.tier.clone(),
        mosaic: input.path.clone(),
        verdict: Verdict::Pass,
        checks: Vec::new(),
        warnings,
        beam: m.beam,
        noise: noise.report,
        peak_jy: peak,
        dynamic_range: dr,
        dynamic_range_err: dr_err,
        dynamic_range_noise: around,
        noise_structure,
        snapshots,
        noise_history: None,
        selection: opts.selection.clone(),
        sources: SourcesReport {
            n: sources.len(),
            csv,
            fits,
            detection_sigma: cfg.detection_sigma,
        },
        astrometry,
        artefacts,
        pictures: Pictures {
            quicklook: None,
            offsets: None,
            noise_histogram: None,
        },
        thresholds: opts.thresholds.clone(),
        elapsed_s: 0.0,
        timings_s: BTreeMap::new(),
    };
    report.noise_history = history_of(report.noise.median_rms_jy, &opts.history_noise_jy);
    report.checks = checks(&report, &opts.thresholds);
    report.verdict = verdict_of(&report.checks);
    if opts.pictures {
        let matched = matched_flags(sources.len(), &matches);
        let products = PictureProducts {
            quicklook: product("qa.png"),
            offsets: product("offsets.png"),
            noise_histogram: product("noise_hist.png"),
        };
        report.pictures = draw_pictures(
            &report, &m, &sources, &matched, &matches, &scan, cfg, products,
        )?;
    }
    stage("pictures");
    report.timings_s = timings;
    report.elapsed_s = t0.elapsed().as_secs_f64();
    Ok(report)
}

/// Tonight's noise against at least 5 earlier nights (median and robust scatter, so a few bad
/// nights in the history do not move it).
fn history_of(noise: f64, history: &[f64]) -> Option<NoiseHistory> {
    if history.len() < 5 || !(noise.is_finite() && noise > 0.0) {
        return None;
    }
    let (median, scatter) = crate::stats::robust_stats_f64(history)?;
    (median > 0.0).then(|| NoiseHistory {
        n: history.len(),
        median_jy: median,
        scatter_jy: scatter,
        ratio: noise / median,
    })
}

/// Every input against the others (offsets and flux scales per snapshot) and each input's noise
/// structure, from one read of each input. A record that cannot be read is a warning: those
/// checks are then reported as not made.
fn compare_inputs(
    path: &Path,
    sources: &[Source],
    reference: &[Option<snapshots::RefPoint>],
    beam: &BeamPx,
    warnings: &mut Vec<String>,
) -> (Option<snapshots::SnapshotsReport>, Vec<InputStructure>) {
    let inputs = match snapshots::read_inputs(path) {
        Ok(i) => i,
        Err(e) => {
            warnings.push(format!(
                "{e}: the snapshots are not compared and their stripes not looked for"
            ));
            return (None, Vec::new());
        }
    };
    let found: Vec<std::sync::Mutex<Option<structure::StructureReport>>> =
        inputs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let per_image = |k: usize, plane: ndarray::ArrayView2<f32>, b: &BeamPx| {
        let r = structure::noise_structure(plane, b, Some(b.bpa_deg));
        if let Some(slot) = found.get(k) {
            *slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = r;
        }
    };
    let report = snapshots::snapshot_consistency(&inputs, sources, reference, beam, &per_image);
    let structure = inputs
        .iter()
        .zip(found)
        .map(|(i, r)| InputStructure {
            path: i.path.clone(),
            report: r
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        })
        .collect();
    (Some(report), structure)
}

fn matched_flags(n: usize, matches: &[xmatch::Match]) -> Vec<bool> {
    let mut matched = vec![false; n];
    for m in matches {
        matched[m.source] = true;
    }
    matched
}

/// Where the three pictures go.
struct PictureProducts {
    quicklook: PathBuf,
    offsets: PathBuf,
    noise_histogram: PathBuf,
}

/// Draws the quicklook, the offsets plot (with a reference) and the noise histogram.
#[allow(clippy::too_many_arguments)]
fn draw_pictures(
    r: &QaReport,
    m: &Mosaic,
    sources: &[Source],
    matched: &[bool],
    matches: &[xmatch::Match],
    scan: &scan::Scan,
    cfg: &QaConfig,
    to: PictureProducts,
) -> Result<Pictures, QaError> {
    let title = format!("{} (tier {}, mosaic {})", r.name, r.tier, r.mosaic_id);
    let subtitle = format!(
        "{} sources > {}σ; noise {:.3} mJy/beam; dynamic range {:.0}\nartefact score {:.2}{}",
        sources.len(),
        cfg.detection_sigma,
        r.noise.median_rms_jy * 1e3,
        r.dynamic_range,
        r.artefacts.score,
        r.astrometry
            .as_ref()
            .and_then(|a| a
                .offset_arcsec
                .map(|o| format!("; offset {o:.2}\" ({} matches)", a.n_matches)))
            .unwrap_or_default()
    );
    plot::quicklook(
        &to.quicklook,
        m.image.view(),
        &m.wcs,
        sources,
        matched,
        &m.beam,
        cfg.quicklook_max_px,
        &plot::QuicklookText {
            title: &title,
            subtitle: &subtitle,
            verdict: r.verdict.as_str(),
        },
    )?;
    let mut pictures = Pictures {
        quicklook: Some(to.quicklook),
        offsets: None,
        noise_histogram: None,
    };
    if let Some(a) = &r.astrometry {
        let title = match (a.median_dra_arcsec, a.median_ddec_arcsec) {
            (Some(ra), Some(d)) => format!(
                "{} matches: median dRA {ra:+.2}\", dDec {d:+.2}\" (± {:.2}\", {:.2}\")\n\
                 robust rms dRA {:.2}\", dDec {:.2}\"; reference {}; match radius {:.1}\"",
                a.n_matches,
                a.median_dra_err_arcsec.unwrap_or(f64::NAN),
                a.median_ddec_err_arcsec.unwrap_or(f64::NAN),
                a.robust_rms_dra_arcsec.unwrap_or(f64::NAN),
                a.robust_rms_ddec_arcsec.unwrap_or(f64::NAN),
                a.reference
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                a.match_radius_arcsec
            ),
            _ => "no matches with the reference catalogue".to_string(),
        };
        plot::offsets(&to.offsets, matches, &m.beam, &title)?;
        pictures.offsets = Some(to.offsets);
    }
    let title = format!(
        "noise {:.3} mJy/beam{}",
        r.noise.median_rms_jy * 1e3,
        match (r.noise.median_expected_jy, r.noise.noise_efficiency) {
            (Some(e), Some(f)) => format!(", expected {:.3} (efficiency {f:.2})", e * 1e3),
            _ => String::new(),
        }
    );
    plot::noise_histogram(&to.noise_histogram, &scan.hist, scan.n_finite, &title)?;
    pictures.noise_histogram = Some(to.noise_histogram);
    Ok(pictures)
}

/// Finds sources only (no records, no pictures): for tools and tests that need the catalogue.
pub fn find_sources_in(path: &Path, cfg: &QaConfig) -> Result<(Vec<Source>, BeamPx), QaError> {
    let m = read_mosaic(path)?;
    let grid = background(&m, path, cfg)?;
    let mut scan = scan::scan(m.image.view(), &grid, cfg.detection_sigma, None);
    let sources = sources::find_sources(m.image.view(), &grid, &mut scan.mask, &m.beam, &m.wcs);
    Ok((sources, m.beam))
}

/// Records the report: a `mosaic_qa` row and the `mosaics` row's status and details, in one
/// transaction. Returns the `mosaic_qa` id.
pub fn record(db: &mut Db, report: &QaReport) -> Result<i64, QaError> {
    let label = PathBuf::from(db.label());
    let warnings: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status != Verdict::Pass || !c.checked)
        .map(|c| {
            let status = if c.checked {
                c.status.as_str()
            } else {
                "NOT CHECKED"
            };
            format!("{status} {}: {}", c.name, c.message)
        })
        .chain(report.warnings.iter().cloned())
        .collect();
    let details = serde_json::to_string(report).unwrap_or_else(|_| "{}".into());
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
    db.write(|tx| {
        let exists = tx.query_opt(
            "SELECT id FROM mosaics WHERE id = ?1",
            crate::vals![report.mosaic_id],
        )?;
        if exists.is_none() {
            return Err(QaError::NoMosaic {
                id: report.mosaic_id,
                db: label.clone(),
            });
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO mosaic_qa (mosaic_id, astrometry_rms_arcsec, n_reference_stars, \
                 median_noise_jy, dynamic_range, has_artifacts, artifact_score, passed, warnings, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
                crate::vals![
                    report.mosaic_id,
                    finite(report.astrometry.as_ref().and_then(|a| a.rms_arcsec)),
                    report.astrometry.as_ref().map(|a| a.n_matches),
                    finite(Some(report.noise.median_rms_jy)),
                    finite(Some(report.dynamic_range)),
                    report.artefacts.score > report.thresholds.artefact_warn,
                    report.artefacts.score,
                    report.verdict != Verdict::Fail,
                    serde_json::to_string(&warnings).unwrap_or_else(|_| "[]".into()),
                    crate::time::now_unix(),
                ],
            )?
            .get(0)?;
        tx.execute(
            "UPDATE mosaics SET qa_status = ?1, qa_details = ?2 WHERE id = ?3",
            crate::vals![report.verdict.as_str(), &details, report.mosaic_id],
        )?;
        Ok(id)
    })
}

impl QaManifest {
    pub fn new(database: &Path, qa_id: i64, report: QaReport) -> QaManifest {
        QaManifest {
            schema: QA_SCHEMA.to_string(),
            database: database.to_path_buf(),
            qa_id,
            created_at: crate::time::now_iso(),
            report,
        }
    }
}
