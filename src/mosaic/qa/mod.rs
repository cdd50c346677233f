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
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

pub use config::{QaConfig, QaTierConfig, Thresholds};

use crate::fits::read::{FitsReadError, read_image};
use crate::manifest::{MosaicManifest, QA_SCHEMA};
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
    #[error("mosaic {id} is not in the database {db}; run `contimg build` first or check the id")]
    NoMosaic { id: i64, db: PathBuf },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
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

/// What QA is run on: the facts from a mosaic manifest or a `mosaics` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MosaicInput {
    pub database: PathBuf,
    pub mosaic_id: i64,
    pub name: String,
    pub tier: String,
    pub path: PathBuf,
    /// The expected-noise map; `None` skips the noise efficiency (with a warning).
    pub noise_path: Option<PathBuf>,
}

impl MosaicInput {
    /// From a `contimg.mosaic/1` manifest.
    pub fn from_manifest(m: &MosaicManifest) -> MosaicInput {
        MosaicInput {
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
    pub fn from_db(conn: &Connection, db: &Path, id: i64) -> Result<MosaicInput, QaError> {
        let row: Option<(String, String, Option<String>)> = conn
            .query_row(
                "SELECT m.path, m.tier, p.name FROM mosaics m \
                 LEFT JOIN mosaic_plans p ON p.id = m.plan_id WHERE m.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (path, tier, name) = row.ok_or_else(|| QaError::NoMosaic {
            id,
            db: db.to_path_buf(),
        })?;
        let path = PathBuf::from(path);
        let noise = path.with_file_name(format!("{}.noise.fits", stem(&path)));
        Ok(MosaicInput {
            database: db.to_path_buf(),
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
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mosaic".into());
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
    /// 1.4826·MAD over all covered pixels (sources included).
    pub global_rms_jy: f64,
    /// Median background level (Jy/beam).
    pub median_background_jy: f64,
    /// Median expected noise from the build's noise map, if any.
    pub median_expected_jy: Option<f64>,
    /// Median over covered pixels of expected / measured noise (1 = as good as the weights say).
    pub noise_efficiency: Option<f64>,
    pub box_px: usize,
    pub n_pixels: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AstrometryReport {
    pub reference: PathBuf,
    pub n_reference: usize,
    /// The columns used: RA, Dec, flux ("" when none).
    pub columns: [String; 3],
    pub match_radius_arcsec: f64,
    pub n_matches: usize,
    /// Median offset found − reference (arcsec): ΔRA·cos δ and ΔDec.
    pub median_dra_arcsec: Option<f64>,
    pub median_ddec_arcsec: Option<f64>,
    /// RMS of the offsets about zero (arcsec).
    pub rms_dra_arcsec: Option<f64>,
    pub rms_ddec_arcsec: Option<f64>,
    /// sqrt(rms_dra² + rms_ddec²).
    pub rms_arcsec: Option<f64>,
    /// |median offset|: the systematic offset the verdict uses.
    pub offset_arcsec: Option<f64>,
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

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

fn rms(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt())
}

/// Sampling stride giving at most about `max` samples of an `nx` × `ny` grid.
fn stride_for(nx: usize, ny: usize, max: usize) -> usize {
    (((nx * ny) as f64 / max as f64).sqrt().ceil() as usize).max(1)
}

/// Measures the mosaic, writes the source catalogues and pictures, and decides the verdict.
pub fn measure(input: &MosaicInput, opts: &QaOptions) -> Result<QaReport, QaError> {
    let t0 = Instant::now();
    let mut timings = BTreeMap::new();
    let mut lap = Instant::now();
    let mut stage = |name: &str| {
        timings.insert(name.to_string(), lap.elapsed().as_secs_f64());
        lap = Instant::now();
    };
    let cfg = &opts.config;
    let mut warnings = Vec::new();
    let img = read_image(&input.path)?;
    let wcs = Wcs::from_header(&img.header).map_err(|source| QaError::Wcs {
        path: input.path.clone(),
        source,
    })?;
    let beam_h =
        crate::fits::facts::restoring_beam(&img.header).ok_or_else(|| QaError::NoBeam {
            path: input.path.clone(),
        })?;
    let beam = BeamPx {
        bmaj_arcsec: beam_h.bmaj_arcsec,
        bmin_arcsec: beam_h.bmin_arcsec,
        bpa_deg: beam_h.bpa_deg,
        cell_arcsec: wcs.pixel_scale_deg() * 3600.0,
    };
    let image = img.plane;
    let (ny, nx) = image.dim();
    stage("read");
    let box_px = ((cfg.box_beams * beam.fwhm_px()).round() as usize).max(16);
    let grid = BackgroundGrid::measure(image.view(), box_px).ok_or_else(|| QaError::Empty {
        path: input.path.clone(),
    })?;

    // Samples of the rms map (and of the expected noise) over covered pixels.
    let st = stride_for(nx, ny, 1_000_000);
    let mut samples = Vec::new();
    for y in (0..ny).step_by(st) {
        for x in (0..nx).step_by(st) {
            if image[[y, x]].is_finite() {
                samples.push((x, y));
            }
        }
    }
    let rms_at: Vec<f64> = samples
        .iter()
        .map(|&(x, y)| grid.at(x as f64, y as f64).1 as f64)
        .collect();
    let median_rms = median(rms_at.clone()).unwrap_or(f64::NAN);
    let median_bkg = median(
        samples
            .iter()
            .map(|&(x, y)| grid.at(x as f64, y as f64).0 as f64)
            .collect(),
    )
    .unwrap_or(f64::NAN);
    let gst = stride_for(nx, ny, 4_000_000);
    let global_rms = crate::stats::robust_rms(
        image
            .slice(ndarray::s![..;gst, ..;gst])
            .iter()
            .collect::<Vec<_>>(),
    )
    .unwrap_or(f64::NAN);

    stage("background");
    let mut expected_nodes: Option<Array2<f64>> = None;
    let mut median_expected = None;
    let mut efficiency = None;
    match &input.noise_path {
        None => warnings.push(
            "no expected-noise map: noise efficiency not measured, edge noise compares raw rms"
                .to_string(),
        ),
        Some(p) => match read_image(p) {
            Err(e) => warnings.push(format!(
                "expected-noise map unreadable ({e}): noise efficiency not measured"
            )),
            Ok(n) if n.plane.dim() != image.dim() => warnings.push(format!(
                "{}: expected-noise map is {:?}, the mosaic {:?}: noise efficiency not measured",
                p.display(),
                n.plane.dim(),
                image.dim()
            )),
            Ok(n) => {
                let e = n.plane;
                let ex: Vec<f64> = samples.iter().map(|&(x, y)| e[[y, x]] as f64).collect();
                median_expected = median(ex.iter().copied().filter(|v| *v > 0.0).collect());
                efficiency = median(
                    ex.iter()
                        .zip(&rms_at)
                        .filter(|(e, r)| **e > 0.0 && **r > 0.0)
                        .map(|(e, r)| e / r)
                        .collect(),
                );
                let mut nodes = Array2::from_elem(grid.rms.dim(), f64::NAN);
                for (j, &y) in grid.ys.iter().enumerate() {
                    for (i, &x) in grid.xs.iter().enumerate() {
                        nodes[[j, i]] = e[[y, x]] as f64;
                    }
                }
                expected_nodes = Some(nodes);
                if efficiency.is_none() {
                    warnings.push(
                        "expected-noise map has no positive values where the mosaic is covered"
                            .into(),
                    );
                }
            }
        },
    }

    stage("noise_map");
    let mut scan = scan::scan(image.view(), &grid, cfg.detection_sigma);
    let sources = sources::find_sources(image.view(), &grid, &mut scan.mask, &beam, &wcs);
    scan.mask = Vec::new();

    let out_dir = opts.out_dir.clone().unwrap_or_else(|| {
        input
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    });
    let st_name = stem(&input.path);
    let product = |suffix: &str| out_dir.join(format!("{st_name}.{suffix}"));
    let csv = product("sources.csv");
    let fits = product("sources.fits");
    catalog::write_sources_csv(&csv, &sources)?;
    catalog::write_sources_fits(&fits, &sources)?;

    stage("sources");
    // Astrometry.
    let mut matched = vec![false; sources.len()];
    let mut matches = Vec::new();
    let astrometry = match &opts.reference {
        None => None,
        Some(rpath) => {
            let reference = catalog::read_reference(rpath)?;
            if reference.skipped > 0 {
                warnings.push(format!(
                    "{}: {} row(s) without a readable position were skipped",
                    rpath.display(),
                    reference.skipped
                ));
            }
            let radius_deg = cfg.match_radius_beams * beam.bmaj_arcsec / 3600.0;
            let index = xmatch::ZoneIndex::new(&reference.ra, &reference.dec, radius_deg);
            let found: Vec<(f64, f64, f64)> = sources
                .iter()
                .map(|s| (s.ra_deg, s.dec_deg, s.peak_jy))
                .collect();
            matches = xmatch::cross_match(
                &found,
                &index,
                &reference.ra,
                &reference.dec,
                reference.flux.as_deref(),
            );
            for m in &matches {
                matched[m.source] = true;
            }
            let dra: Vec<f64> = matches.iter().map(|m| m.dra_arcsec).collect();
            let ddec: Vec<f64> = matches.iter().map(|m| m.ddec_arcsec).collect();
            let (mr, md) = (median(dra.clone()), median(ddec.clone()));
            let (rr, rd) = (rms(&dra), rms(&ddec));
            Some(AstrometryReport {
                reference: rpath.clone(),
                n_reference: reference.ra.len(),
                columns: reference.columns.clone(),
                match_radius_arcsec: radius_deg * 3600.0,
                n_matches: matches.len(),
                median_dra_arcsec: mr,
                median_ddec_arcsec: md,
                rms_dra_arcsec: rr,
                rms_ddec_arcsec: rd,
                rms_arcsec: rr.zip(rd).map(|(a, b)| a.hypot(b)),
                offset_arcsec: mr.zip(md).map(|(a, b)| a.hypot(b)),
                median_flux_ratio: median(matches.iter().filter_map(|m| m.flux_ratio).collect()),
            })
        }
    };

    stage("astrometry");
    // Dynamic range: the brightest source's fitted peak (else the brightest pixel) / median noise.
    let peak = match (sources.first(), scan.max_pixel) {
        (Some(s), _) => s.peak_jy,
        (None, Some((v, x, y))) => v as f64 - grid.at(x as f64, y as f64).0 as f64,
        (None, None) => f64::NAN,
    };
    let dynamic_range = peak / median_rms;

    let expected_fn = expected_nodes
        .as_ref()
        .map(|n| move |j: usize, i: usize| Some(n[[j, i]]).filter(|v| v.is_finite() && *v > 0.0));
    let artefacts = artefacts::score(
        image.view(),
        &grid,
        &scan,
        &sources,
        &beam,
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
        beam,
        noise: NoiseReport {
            median_rms_jy: median_rms,
            global_rms_jy: global_rms,
            median_background_jy: median_bkg,
            median_expected_jy: median_expected,
            noise_efficiency: efficiency,
            box_px: grid.box_px,
            n_pixels: scan.n_finite,
        },
        peak_jy: peak,
        dynamic_range,
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
    let verdict = report.verdict;
    let astrometry = &report.astrometry;
    let artefacts = &report.artefacts;

    // Pictures.
    let mut pictures = Pictures {
        quicklook: None,
        offsets: None,
        noise_histogram: None,
    };
    if opts.pictures {
        let ql = product("qa.png");
        let title = format!(
            "{} (tier {}, mosaic {})",
            input.name, input.tier, input.mosaic_id
        );
        let subtitle = format!(
            "{} sources > {}σ; noise {:.3} mJy/beam; dynamic range {:.0}\nartefact score {:.2}{}",
            sources.len(),
            cfg.detection_sigma,
            median_rms * 1e3,
            dynamic_range,
            artefacts.score,
            astrometry
                .as_ref()
                .and_then(|a| a
                    .offset_arcsec
                    .map(|o| format!("; offset {o:.2}\" ({} matches)", a.n_matches)))
                .unwrap_or_default()
        );
        plot::quicklook(
            &ql,
            image.view(),
            &wcs,
            &sources,
            &matched,
            &beam,
            cfg.quicklook_max_px,
            &plot::QuicklookText {
                title: &title,
                subtitle: &subtitle,
                verdict: verdict.as_str(),
            },
        )?;
        pictures.quicklook = Some(ql);
        if let Some(a) = &astrometry {
            let p = product("offsets.png");
            let title = match (a.median_dra_arcsec, a.median_ddec_arcsec) {
                (Some(r), Some(d)) => format!(
                    "{} matches: median dRA {r:+.2}\", dDec {d:+.2}\"\nrms dRA {:.2}\", dDec {:.2}\"; \
                     reference {}; match radius {:.1}\"",
                    a.n_matches,
                    a.rms_dra_arcsec.unwrap_or(f64::NAN),
                    a.rms_ddec_arcsec.unwrap_or(f64::NAN),
                    a.reference
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    a.match_radius_arcsec
                ),
                _ => "no matches with the reference catalogue".to_string(),
            };
            plot::offsets(&p, &matches, &beam, &title)?;
            pictures.offsets = Some(p);
        }
        let p = product("noise_hist.png");
        let title = format!(
            "noise {:.3} mJy/beam{}",
            median_rms * 1e3,
            match (median_expected, efficiency) {
                (Some(e), Some(f)) => format!(", expected {:.3} (efficiency {f:.2})", e * 1e3),
                _ => String::new(),
            }
        );
        plot::noise_histogram(&p, &scan.hist, scan.n_finite, &title)?;
        pictures.noise_histogram = Some(p);
    }

    stage("pictures");
    report.pictures = pictures;
    report.timings_s = timings;
    report.elapsed_s = t0.elapsed().as_secs_f64();
    Ok(report)
}

/// Finds sources only (no records, no pictures): for tools and tests that need the catalogue.
pub fn find_sources_in(path: &Path, cfg: &QaConfig) -> Result<(Vec<Source>, BeamPx), QaError> {
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
    let box_px = ((cfg.box_beams * beam.fwhm_px()).round() as usize).max(16);
    let grid = BackgroundGrid::measure(img.plane.view(), box_px).ok_or_else(|| QaError::Empty {
        path: path.to_path_buf(),
    })?;
    let mut scan = scan::scan(img.plane.view(), &grid, cfg.detection_sigma);
    Ok((
        sources::find_sources(img.plane.view(), &grid, &mut scan.mask, &beam, &wcs),
        beam,
    ))
}

/// Records the report: a `mosaic_qa` row and the `mosaics` row's status and details, in one
/// transaction. Returns the `mosaic_qa` id.
pub fn record(conn: &mut Connection, db: &Path, report: &QaReport) -> Result<i64, QaError> {
    let tx = conn.transaction()?;
    let exists: Option<i64> = tx
        .query_row(
            "SELECT id FROM mosaics WHERE id = ?1",
            [report.mosaic_id],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Err(QaError::NoMosaic {
            id: report.mosaic_id,
            db: db.to_path_buf(),
        });
    }
    let warnings: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status != Verdict::Pass)
        .map(|c| format!("{} {}: {}", c.status.as_str(), c.name, c.message))
        .chain(report.warnings.iter().cloned())
        .collect();
    let details = serde_json::to_string(report).unwrap_or_else(|_| "{}".into());
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
    tx.execute(
        "INSERT INTO mosaic_qa (mosaic_id, astrometry_rms_arcsec, n_reference_stars, \
         median_noise_jy, dynamic_range, has_artifacts, artifact_score, passed, warnings, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            report.mosaic_id,
            finite(report.astrometry.as_ref().and_then(|a| a.rms_arcsec)),
            report.astrometry.as_ref().map(|a| a.n_matches as i64),
            finite(Some(report.noise.median_rms_jy)),
            finite(Some(report.dynamic_range)),
            i64::from(report.artefacts.score > report.thresholds.artefact_warn),
            report.artefacts.score,
            i64::from(report.verdict != Verdict::Fail),
            serde_json::to_string(&warnings).unwrap_or_else(|_| "[]".into()),
            crate::time::now_unix(),
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "UPDATE mosaics SET qa_status = ?1, qa_details = ?2 WHERE id = ?3",
        params![report.verdict.as_str(), details, report.mosaic_id],
    )?;
    tx.commit()?;
    Ok(id)
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
/// thresholds needs no new measurement).
pub fn checks(r: &QaReport, th: &Thresholds, require_astrometry: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    match &r.astrometry {
        Some(a) if a.n_matches >= th.min_matches => {
            let off = a.offset_arcsec.unwrap_or(f64::NAN);
            let status = if off.is_nan() || off > th.astrometry_fail_arcsec {
                Verdict::Fail
            } else if off > th.astrometry_warn_arcsec {
                Verdict::Warn
            } else {
                Verdict::Pass
            };
            checks.push(Check {
                name: "astrometry".into(),
                status,
                value: Some(off),
                message: format!(
                    "median offset {off:.2}\" (dRA·cos(dec) {:+.2}\", dDec {:+.2}\") over {} matches \
                     with {}; WARN above {}\", FAIL above {}\"",
                    a.median_dra_arcsec.unwrap_or(f64::NAN),
                    a.median_ddec_arcsec.unwrap_or(f64::NAN),
                    a.n_matches,
                    a.reference.display(),
                    th.astrometry_warn_arcsec,
                    th.astrometry_fail_arcsec
                ),
            });
        }
        Some(a) => checks.push(Check {
            name: "astrometry".into(),
            status: if require_astrometry {
                Verdict::Warn
            } else {
                Verdict::Pass
            },
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
        }),
        None => checks.push(Check {
            name: "astrometry".into(),
            status: if require_astrometry {
                Verdict::Warn
            } else {
                Verdict::Pass
            },
            value: None,
            message: if require_astrometry {
                format!(
                    "tier {} requires astrometry but no reference catalogue was given: pass \
                     --reference CATALOGUE or set reference in [qa.tiers.{}] of contimg.toml",
                    r.tier, r.tier
                )
            } else {
                "no reference catalogue; astrometry not checked (not required by this tier)".into()
            },
        }),
    }
    checks.push(Check {
        name: "dynamic_range".into(),
        status: if r.dynamic_range >= th.dynamic_range_fail {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        value: Some(r.dynamic_range),
        message: format!(
            "peak {:.4} Jy/beam / median noise {:.3e} Jy/beam = {:.0}; FAIL below {}",
            r.peak_jy, r.noise.median_rms_jy, r.dynamic_range, th.dynamic_range_fail
        ),
    });
    if let Some(eff) = r.noise.noise_efficiency {
        checks.push(Check {
            name: "noise_efficiency".into(),
            status: if eff >= th.noise_efficiency_warn {
                Verdict::Pass
            } else {
                Verdict::Warn
            },
            value: Some(eff),
            message: format!(
                "expected / measured noise = {eff:.2} (median expected {:.3e}, measured {:.3e} \
                 Jy/beam); WARN below {}",
                r.noise.median_expected_jy.unwrap_or(f64::NAN),
                r.noise.median_rms_jy,
                th.noise_efficiency_warn
            ),
        });
    }
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
    checks.push(Check {
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
    });
    checks
}

/// The worst status of the checks (PASS when there are none).
pub fn verdict_of(checks: &[Check]) -> Verdict {
    checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Verdict::Pass)
}
