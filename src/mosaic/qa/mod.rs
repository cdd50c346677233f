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
pub mod sources;
pub mod synth;
pub mod xmatch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

pub use config::{QaConfig, QaTierConfig, Thresholds};

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
            path,
            noise_path: noise.is_file().then_some(noise),
        })
    }
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
    /// Whether the tier requires an astrometry check.
    pub require_astrometry: bool,
    /// The reference catalogue (already resolved: command line, tier, `[qa]`).
    pub reference: Option<PathBuf>,
    /// Where products go (default: beside the mosaic).
    pub out_dir: Option<PathBuf>,
    /// Draw the PNGs.
    pub pictures: bool,
}

/// One check of the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: Verdict,
    pub value: Option<f64>,
    pub message: String,
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

/// The astrometry stage: reads the reference, matches one-to-one and measures the offsets.
fn astrometry(
    sources: &[Source],
    beam: &BeamPx,
    rpath: &Path,
    cfg: &QaConfig,
    warnings: &mut Vec<String>,
) -> Result<(AstrometryReport, Vec<xmatch::Match>), QaError> {
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
    let radius_arcsec =
        ((k * beam.bmaj_arcsec).powi(2) + (k * ref_beam).powi(2) + (3.0 * ref_err).powi(2)).sqrt();
    let index = xmatch::ZoneIndex::new(&reference.ra, &reference.dec, radius_arcsec / 3600.0);
    let found: Vec<(f64, f64, f64)> = sources
        .iter()
        .map(|s| (s.ra_deg, s.dec_deg, s.peak_jy))
        .collect();
    let matches = xmatch::cross_match(
        &found,
        &index,
        &reference.ra,
        &reference.dec,
        reference.flux.as_deref(),
    );
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
    };
    Ok((report, matches))
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

    let mut scan = scan::scan(m.image.view(), &grid, cfg.detection_sigma);
    let sources = sources::find_sources(m.image.view(), &grid, &mut scan.mask, &m.beam, &m.wcs);
    scan.mask = Vec::new();
    noise.report.n_pixels = scan.n_finite;
    let (csv, fits) = (product("sources.csv"), product("sources.fits"));
    catalog::write_sources_csv(&csv, &sources)?;
    catalog::write_sources_fits(&fits, &sources)?;
    stage("sources");

    let (astrometry, matches) = match &opts.reference {
        None => (None, Vec::new()),
        Some(rpath) => {
            let (a, matches) = astrometry(&sources, &m.beam, rpath, cfg, &mut warnings)?;
            (Some(a), matches)
        }
    };
    stage("astrometry");

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
    report.checks = checks(&report, &opts.thresholds, opts.require_astrometry);
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
    let mut scan = scan::scan(m.image.view(), &grid, cfg.detection_sigma);
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
        .filter(|c| c.status != Verdict::Pass)
        .map(|c| format!("{} {}: {}", c.status.as_str(), c.name, c.message))
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
                db: label,
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

/// The verdict's checks for a measured report under `th` (pure: re-deciding with other
/// thresholds needs no new measurement). A check leaves PASS only when the measurement is past
/// its threshold and that is not noise: an astrometric offset must also be significantly
/// non-zero (more than `significance_sigma` standard errors), a dynamic range or noise efficiency
/// must fall short of its threshold by more than `significance_sigma` standard errors.
pub fn checks(r: &QaReport, th: &Thresholds, require_astrometry: bool) -> Vec<Check> {
    let mut checks = vec![astrometry_check(r, th, require_astrometry)];
    checks.push(dynamic_range_check(r, th));
    if let Some(eff) = r.noise.noise_efficiency {
        checks.push(noise_efficiency_check(r, th, eff));
    }
    checks.push(artefacts_check(r, th));
    checks
}

/// Whether `value` falls short of `threshold` by more than `k` standard errors `err` (an unknown
/// error counts as zero).
fn significantly_below(value: f64, threshold: f64, err: Option<f64>, k: f64) -> bool {
    value.is_nan() || threshold - value > k * err.unwrap_or(0.0).max(0.0)
}

fn astrometry_check(r: &QaReport, th: &Thresholds, require_astrometry: bool) -> Check {
    let not_checked = if require_astrometry {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    let a = match &r.astrometry {
        Some(a) if a.n_matches >= th.min_matches => a,
        Some(a) => {
            return Check {
                name: "astrometry".into(),
                status: not_checked,
                value: None,
                message: format!(
                    "only {} match(es) with {} within {:.1}\" (need {}): astrometry not checked{}",
                    a.n_matches,
                    a.reference.display(),
                    a.match_radius_arcsec,
                    th.min_matches,
                    if require_astrometry {
                        format!(", and tier {} requires it", r.tier)
                    } else {
                        String::new()
                    }
                ),
            };
        }
        None => {
            return Check {
                name: "astrometry".into(),
                status: not_checked,
                value: None,
                message: if require_astrometry {
                    format!(
                        "tier {} requires astrometry but no reference catalogue was given: pass \
                         --reference CATALOGUE or set reference in [qa.tiers.{}] of contimg.toml",
                        r.tier, r.tier
                    )
                } else {
                    "no reference catalogue; astrometry not checked (not required by this tier)"
                        .into()
                },
            };
        }
    };
    let off = a.offset_beams.unwrap_or(f64::NAN);
    let z = a.offset_significance.unwrap_or(f64::NAN);
    let z_min = crate::stats::two_d_equivalent(th.significance_sigma);
    let significant = z.is_nan() || z > z_min;
    let status = if off.is_nan() || (off > th.astrometry_fail_beams && significant) {
        Verdict::Fail
    } else if off > th.astrometry_warn_beams && significant {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    Check {
        name: "astrometry".into(),
        status,
        value: Some(off),
        message: format!(
            "median offset {off:.3} beam = {:.2}\" (dRA·cos(dec) {:+.2}\" ± {:.2}\", dDec {:+.2}\" \
             ± {:.2}\"; {z:.1} standard errors) over {} matches with {}; robust rms {:.2}\"; \
             WARN above {} beam, FAIL above {} beam of {:.1}\", when beyond {z_min:.2} standard \
             errors (2-D, as rare as {}σ)",
            a.offset_arcsec.unwrap_or(f64::NAN),
            a.median_dra_arcsec.unwrap_or(f64::NAN),
            a.median_dra_err_arcsec.unwrap_or(f64::NAN),
            a.median_ddec_arcsec.unwrap_or(f64::NAN),
            a.median_ddec_err_arcsec.unwrap_or(f64::NAN),
            a.n_matches,
            a.reference.display(),
            a.robust_rms_arcsec.unwrap_or(f64::NAN),
            th.astrometry_warn_beams,
            th.astrometry_fail_beams,
            r.beam.bmaj_arcsec,
            th.significance_sigma
        ),
    }
}

fn dynamic_range_check(r: &QaReport, th: &Thresholds) -> Check {
    let fail = significantly_below(
        r.dynamic_range,
        th.dynamic_range_fail,
        r.dynamic_range_err,
        th.significance_sigma,
    );
    Check {
        name: "dynamic_range".into(),
        status: if fail { Verdict::Fail } else { Verdict::Pass },
        value: Some(r.dynamic_range),
        message: format!(
            "peak {:.4} Jy/beam / median noise {:.3e} Jy/beam = {:.0} ± {:.0}; FAIL below {} by \
             more than {} standard errors",
            r.peak_jy,
            r.noise.median_rms_jy,
            r.dynamic_range,
            r.dynamic_range_err.unwrap_or(f64::NAN),
            th.dynamic_range_fail,
            th.significance_sigma
        ),
    }
}

fn noise_efficiency_check(r: &QaReport, th: &Thresholds, eff: f64) -> Check {
    let err = r.noise.noise_efficiency_err;
    let warn = significantly_below(eff, th.noise_efficiency_warn, err, th.significance_sigma);
    Check {
        name: "noise_efficiency".into(),
        status: if warn { Verdict::Warn } else { Verdict::Pass },
        value: Some(eff),
        message: format!(
            "expected / measured noise = {eff:.2} ± {:.2} (median expected {:.3e}, measured \
             {:.3e} Jy/beam); WARN below {} by more than {} standard errors",
            err.unwrap_or(f64::NAN),
            r.noise.median_expected_jy.unwrap_or(f64::NAN),
            r.noise.median_rms_jy,
            th.noise_efficiency_warn,
            th.significance_sigma
        ),
    }
}

fn artefacts_check(r: &QaReport, th: &Thresholds) -> Check {
    let named = [
        ("negative_bowls", &r.artefacts.negative_bowls),
        ("negative_pixels", &r.artefacts.negative_pixels),
        ("edge_noise", &r.artefacts.edge_noise),
        ("striping", &r.artefacts.striping),
    ];
    let worst = named
        .iter()
        .max_by(|a, b| a.1.score.total_cmp(&b.1.score))
        .map(|(n, c)| format!("{n} {:.2}: {}", c.score, c.note))
        .unwrap_or_default();
    Check {
        name: "artefacts".into(),
        status: if r.artefacts.score > th.artefact_warn {
            Verdict::Warn
        } else {
            Verdict::Pass
        },
        value: Some(r.artefacts.score),
        message: format!(
            "artefact score {:.2} (worst component {worst}); WARN above {}",
            r.artefacts.score, th.artefact_warn
        ),
    }
}

/// The worst status of the checks (PASS when there are none).
pub fn verdict_of(checks: &[Check]) -> Verdict {
    checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Verdict::Pass)
}
