//! Ingest: read FITS images, measure what planning and mosaicking need, and register them.
//!
//! Invariants: a file is analysed from its own bytes only (header through cfitsio, pixels, hash);
//! each file's row is written in its own transaction, so a failure in one file never touches
//! another's row and nothing is written for a bad file; unchanged bytes mean no write at all.
//! Only regular files are read (a FIFO or a device is refused before it is opened for reading),
//! and never more than [`IngestOptions::max_image_bytes`] for a file, its decompressed data or
//! its pixel plane. What a row records is what the header says, checked: pixels in Jy/beam,
//! an observation time that parses (or none at all, with a warning).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rayon::prelude::*;
use serde::Serialize;

use crate::fits::Header;
use crate::fits::facts::{frequency_hz, restoring_beam};
use crate::fits::read::{FitsReadError, read_image_bytes};
use crate::mosaic::beam::Telescope;
use crate::mosaic::observation::{self, ImageKind, PointingSource};
use crate::stats;
use crate::store::images::{self, ImageRecord, Upsert};
use crate::store::{Db, Sql, StoreError};
use crate::time::{self, Instant};
use crate::wcs::{Frame, Wcs, WcsError};

/// Why one file could not be ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Read(#[from] crate::fsutil::ReadError),
    #[error(
        "{path}: {card} = '{value}' cannot be read as a time{why}, and there is no usable \
         MJD-OBS to fall back on; fix the card (e.g. DATE-OBS = '2026-11-20T03:00:00')"
    )]
    BadTime {
        path: PathBuf,
        card: &'static str,
        value: String,
        why: String,
    },
    #[error(
        "{path}: BUNIT = '{unit}', but contimg mosaics images in Jy/beam only \
         (K, Jy/pixel and other units would be combined as if they were Jy/beam); \
         convert the image to Jy/beam first"
    )]
    Unit { path: PathBuf, unit: String },
    #[error(transparent)]
    Fits(#[from] Box<FitsReadError>),
    #[error("{path}: {source}")]
    Wcs { path: PathBuf, source: WcsError },
    #[error("{path}: every pixel is blank (NaN); nothing to measure")]
    AllBlank { path: PathBuf },
    #[error(
        "{path}: every finite pixel has the same value, so there is no noise to measure \
         (is this a catalogue's placeholder image, or a model?)"
    )]
    NoNoise { path: PathBuf },
    #[error("{path}: the image centre does not map to the sky through its WCS")]
    CentreOffSky { path: PathBuf },
    #[error("{path}: {source}")]
    Store {
        path: PathBuf,
        source: Box<StoreError>,
    },
    #[error("cannot start the reader threads: {0}")]
    Threads(String),
    #[error(transparent)]
    Database(#[from] StoreError),
    #[error("{path}: no such file or directory")]
    Missing { path: PathBuf },
}

/// Observation times outside these years are taken as broken headers, not observations.
const PLAUSIBLE_YEARS: std::ops::Range<i32> = 1900..2200;

/// A card's value as text (strings unquoted, numbers as written), if the card has one.
fn card_text(h: &Header, key: &str) -> Option<String> {
    use crate::fits::Value;
    match h.get(key)? {
        Value::Str(s) => Some(s.trim().to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(if *b { "T" } else { "F" }.into()),
        _ => None,
    }
}

/// The time a card gives: `Ok(None)` when the card is absent or blank; `Err((value, why))` when
/// it is there but is no plausible time.
fn time_card(h: &Header, key: &'static str) -> Result<Option<Instant>, (String, String)> {
    let Some(text) = card_text(h, key).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let parsed = match key {
        "MJD-OBS" => text
            .parse::<f64>()
            .ok()
            .and_then(|m| time::from_mjd(m).ok()),
        _ => time::parse_date_obs(&text).ok(),
    };
    match parsed {
        Some(t) if PLAUSIBLE_YEARS.contains(&chrono::Datelike::year(&t)) => Ok(Some(t)),
        Some(_) => Err((text, " (outside the years 1900-2199)".into())),
        None => Err((text, String::new())),
    }
}

/// Observation time: DATE-OBS (with TIME-OBS if DATE-OBS has no time), else MJD-OBS; `None` when
/// the header has neither. A card that is present but unreadable is an error unless the other
/// gives a time (then the caller gets a warning).
fn observation_time(
    path: &Path,
    h: &Header,
    warnings: &mut Vec<String>,
) -> Result<Option<Instant>, IngestError> {
    let bad = |card, (value, why): (String, String)| IngestError::BadTime {
        path: path.to_path_buf(),
        card,
        value,
        why,
    };
    let date = time_card(h, "DATE-OBS");
    let mjd = time_card(h, "MJD-OBS");
    let mjd_time = mjd.as_ref().ok().copied().flatten();
    match (date, mjd) {
        (Ok(Some(t)), _) => {
            let has_time = card_text(h, "DATE-OBS").is_some_and(|s| s.contains('T'));
            match card_text(h, "TIME-OBS").filter(|s| !s.is_empty() && !has_time) {
                None if !has_time && mjd_time.is_some() => {
                    // A date-only DATE-OBS with an MJD-OBS: the MJD carries the time of day.
                    Ok(mjd_time)
                }
                None => {
                    if !has_time {
                        warnings.push(format!(
                            "{}: DATE-OBS = '{}' gives a date without a time of day, and there is \
                             no TIME-OBS or MJD-OBS; recorded as 00:00 UTC of that date, so a \
                             window cut during that day may miss it (add the time to DATE-OBS)",
                            path.display(),
                            card_text(h, "DATE-OBS").unwrap_or_default()
                        ));
                    }
                    Ok(Some(t))
                }
                Some(tod) => match time::parse_time_of_day(&tod) {
                    Some(extra) => Ok(Some(t.date_naive().and_time(extra).and_utc())),
                    None => Err(bad("TIME-OBS", (tod, String::new()))),
                },
            }
        }
        (Ok(None), Ok(m)) => Ok(m),
        (Err(e), Ok(Some(m))) => {
            warnings.push(format!(
                "{}: DATE-OBS = '{}' cannot be read as a time; MJD-OBS used instead",
                path.display(),
                e.0
            ));
            Ok(Some(m))
        }
        (Err(e), _) => Err(bad("DATE-OBS", e)),
        (Ok(None), Err(e)) => Err(bad("MJD-OBS", e)),
    }
}

/// Checks BUNIT: Jy/beam (any case and spacing) passes, and so does a header without BUNIT
/// (common in radio images, whose pixels are Jy/beam by convention); any other unit is refused.
fn check_unit(path: &Path, h: &Header) -> Result<(), IngestError> {
    let Some(unit) = card_text(h, "BUNIT").filter(|u| !u.is_empty()) else {
        return Ok(());
    };
    let norm: String = unit
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if matches!(
        norm.as_str(),
        "JY/BEAM" | "JY/BM" | "JANSKY/BEAM" | "JY.BEAM-1" | "JY/BEAM(I)"
    ) {
        return Ok(());
    }
    Err(IngestError::Unit {
        path: path.to_path_buf(),
        unit,
    })
}

/// Warnings about an image's primary beam, given at ingest so that a build never surprises:
/// a single pointing whose WCS centre lies beyond its own primary beam from its pointing
/// (OBSRA/OBSDEC), and a telescope contimg has no beam model for.
fn beam_warnings(
    path: &Path,
    h: &Header,
    wcs: &Wcs,
    centre: (f64, f64),
    freq_hz: Option<f64>,
) -> Vec<String> {
    let mut out = vec![];
    if observation::kind(h) != ImageKind::Pointing {
        return out;
    }
    let telescope = h.str("TELESCOP").map(str::trim).unwrap_or("");
    let known = Telescope::lookup(telescope);
    if let (Some(Telescope::Dish(model)), Some(f)) = (&known, freq_hz)
        && let Some((pointing, PointingSource::Header)) = observation::pointing_icrs(h, wcs)
    {
        let sep = crate::wcs::separation_deg(pointing, centre);
        let fwhm = model.fwhm_rad(f).to_degrees();
        if sep > fwhm {
            out.push(format!(
                "{}: the image centre is {sep:.3} deg from its own pointing (OBSRA/OBSDEC \
                 {:.4}, {:.4}), beyond the {telescope} primary beam (FWHM {fwhm:.3} deg at \
                 {:.4} GHz): the WCS or the pointing is wrong, and a build will refuse the image \
                 if it would contribute almost nothing; fix CRVAL/CRPIX or OBSRA/OBSDEC",
                path.display(),
                pointing.0,
                pointing.1,
                f / 1e9
            ));
        }
    }
    if known.is_none() && !telescope.is_empty() && h.f64("DISHDIAM").is_none() {
        out.push(format!(
            "{}: TELESCOP = '{telescope}' has no built-in primary-beam model; a build will \
             refuse the image unless contimg.toml describes it ([build.telescopes.{}]), a beam \
             image sits beside it, or it is built with --primary-beam unity",
            path.display(),
            crate::mosaic::beam::telescope_key(telescope)
        ));
    }
    out
}

fn frame_name(f: Frame) -> String {
    match f {
        Frame::Icrs => "ICRS".into(),
        Frame::Fk5 { equinox } => format!("FK5 J{equinox}"),
        Frame::Fk4 { equinox } => format!("FK4 B{equinox}"),
        Frame::Galactic => "GALACTIC".into(),
    }
}

/// What an ingest may read and allocate.
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    /// Threads for reading files; 0 means one per core.
    pub threads: usize,
    /// The largest file, decompressed data or pixel plane (bytes) read for one image.
    pub max_image_bytes: u64,
}

/// One file's row, with the warnings its header gave.
pub struct Analysis {
    pub record: ImageRecord,
    pub warnings: Vec<String>,
}

/// Reads one file and measures everything its `images` row records.
pub fn analyse(
    path: &Path,
    bytes: &[u8],
    sha256: String,
    max_image_bytes: u64,
) -> Result<Analysis, IngestError> {
    let image = read_image_bytes(path, bytes, max_image_bytes).map_err(Box::new)?;
    let h = &image.header;
    let mut warnings = vec![];
    check_unit(path, h)?;
    let obs = observation_time(path, h, &mut warnings)?;
    if obs.is_none() {
        warnings.push(format!(
            "{}: no observation time (no DATE-OBS or MJD-OBS); recorded without one, so no \
             time window selects it",
            path.display()
        ));
    }
    let wcs = Wcs::from_header(h).map_err(|source| IngestError::Wcs {
        path: path.to_path_buf(),
        source,
    })?;
    let (ny, nx) = image.plane.dim();
    let (ra, dec) = wcs
        .pix_to_icrs((nx as f64 - 1.0) / 2.0, (ny as f64 - 1.0) / 2.0)
        .ok_or_else(|| IngestError::CentreOffSky {
            path: path.to_path_buf(),
        })?;
    let n_blank = image.plane.iter().filter(|v| !v.is_finite()).count() as u64;
    let rms = stats::robust_rms(image.plane.iter()).ok_or_else(|| IngestError::AllBlank {
        path: path.to_path_buf(),
    })?;
    if rms.is_nan() || rms <= 0.0 {
        let (lo, hi) = image
            .plane
            .iter()
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        if lo == hi {
            return Err(IngestError::NoNoise {
                path: path.to_path_buf(),
            });
        }
    }
    let peak = f64::from(
        image
            .plane
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f32::NEG_INFINITY, f32::max),
    );
    let beam = restoring_beam(h);
    if beam.is_none() {
        warnings.push(format!(
            "{}: no restoring beam (no BMAJ/BMIN keywords, no AIPS CLEAN HISTORY card); recorded without one",
            path.display()
        ));
    }
    let freq_hz = frequency_hz(h);
    warnings.extend(beam_warnings(path, h, &wcs, (ra, dec), freq_hz));
    let record = ImageRecord {
        id: None,
        path: path.to_string_lossy().into_owned(),
        rms_jy: rms,
        ra_deg: ra,
        dec_deg: dec,
        content_sha256: sha256,
        file_size: bytes.len() as u64,
        obs_time: obs.map(time::iso_millis),
        obs_mjd: obs.map(time::mjd),
        naxis1: nx as u64,
        naxis2: ny as u64,
        cell_arcsec: wcs.pixel_scale_deg() * 3600.0,
        freq_hz,
        bmaj_arcsec: beam.as_ref().map(|b| b.bmaj_arcsec),
        bmin_arcsec: beam.as_ref().map(|b| b.bmin_arcsec),
        bpa_deg: beam.as_ref().map(|b| b.bpa_deg),
        beam_source: beam.as_ref().map(|b| b.source.to_string()),
        projection: wcs.projection().to_string(),
        frame: frame_name(wcs.frame()),
        pb_corrected: observation::pb_corrected(path, h).is_some(),
        telescope: h.str("TELESCOP").map(|s| s.trim().to_string()),
        bunit: h.str("BUNIT").map(|s| s.trim().to_string()),
        peak_jy: peak.is_finite().then_some(peak),
        n_blank,
        ingested_at: time::now_iso(),
    };
    Ok(Analysis { record, warnings })
}

pub use crate::mosaic::observation::looks_like_image;

/// Expands the command line's paths: files as given, directories recursively (FITS names only,
/// sorted), `-` reads one path per line from stdin. Missing paths become failures.
pub fn collect_paths(
    args: &[PathBuf],
    stdin: &mut dyn BufRead,
) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut failed = Vec::new();
    let mut queue: Vec<PathBuf> = Vec::new();
    for a in args {
        if a.as_os_str() == "-" {
            let mut text = String::new();
            let _ = stdin.read_to_string(&mut text);
            queue.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(PathBuf::from),
            );
        } else {
            queue.push(a.clone());
        }
    }
    for p in queue {
        if p.is_dir() {
            walk(&p, &mut files, &mut failed);
        } else if !p.exists() {
            failed.push((p.clone(), IngestError::Missing { path: p }.to_string()));
        } else {
            match crate::fsutil::check_regular(&p) {
                Ok(_) => files.push(p),
                Err(e) => failed.push((p, e.to_string())),
            }
        }
    }
    (files, failed)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, failed: &mut Vec<(PathBuf, String)>) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            failed.push((
                dir.to_path_buf(),
                format!("{}: cannot list the directory: {e}", dir.display()),
            ));
            return;
        }
    };
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, files, failed);
        } else if looks_like_image(&p) {
            match crate::fsutil::check_regular(&p) {
                Ok(_) => files.push(p),
                Err(e) => failed.push((p, e.to_string())),
            }
        }
    }
}

/// One file's outcome, as the manifest reports it.
#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    pub path: String,
    pub id: i64,
}

/// One failure, as the manifest reports it.
#[derive(Debug, Clone, Serialize)]
pub struct FileFailure {
    pub path: String,
    pub reason: String,
}

/// The result of ingesting a set of files.
#[derive(Debug, Default, Serialize)]
pub struct IngestReport {
    pub added: Vec<FileOutcome>,
    pub updated: Vec<FileOutcome>,
    pub unchanged: Vec<FileOutcome>,
    pub failed: Vec<FileFailure>,
    /// Per-file warnings (e.g. no restoring beam found).
    pub warnings: Vec<FileFailure>,
}

enum Analysed {
    Unchanged(String, i64),
    Record(Box<Analysis>),
}

fn hash_file(path: &Path, limit: u64) -> Result<(Vec<u8>, String), IngestError> {
    let bytes = crate::fsutil::read_regular(path, limit)?;
    let hex = crate::fsutil::sha256_hex(&bytes);
    Ok((bytes, hex))
}

/// A warning when another registered path holds the same bytes (plans take only one copy).
fn same_bytes_elsewhere(db: &mut Db, rec: &ImageRecord) -> Option<String> {
    let other: Option<(i64, String)> = db
        .query_opt(
            "SELECT id, path FROM images WHERE content_sha256 = ?1 AND path <> ?2 ORDER BY id LIMIT 1",
            crate::vals![&rec.content_sha256, &rec.path],
        )
        .ok()
        .flatten()
        .and_then(|r| Some((r.get(0).ok()?, r.get(1).ok()?)));
    other.map(|(id, p)| {
        format!(
            "{}: the same bytes as image {id} ({p}); a plan takes only one of the two",
            rec.path
        )
    })
}

/// Ingests `files` into the database: analysis in parallel on `threads` threads (0: one per
/// core), one transaction per file on the calling thread. `on_file` is called once per file (progress); `on_problem` once per failure
/// or warning with a one-line message.
pub fn ingest(
    db: &mut Db,
    files: Vec<PathBuf>,
    opts: &IngestOptions,
    on_file: &(dyn Fn() + Sync),
    on_problem: &dyn Fn(&str),
) -> Result<IngestReport, IngestError> {
    let known: HashMap<String, (i64, String)> = db
        .query("SELECT path, id, content_sha256 FROM images", &[])?
        .iter()
        .map(|r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .collect::<Result<_, StoreError>>()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| IngestError::Threads(e.to_string()))?;
    let mut report = IngestReport::default();
    let (tx, rx) = mpsc::channel::<(PathBuf, Result<Analysed, IngestError>)>();
    std::thread::scope(|scope| -> Result<(), IngestError> {
        let known = &known;
        scope.spawn(move || {
            pool.install(|| {
                files.into_par_iter().for_each_with(tx, |tx, path| {
                    let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                    let result =
                        hash_file(&canonical, opts.max_image_bytes).and_then(|(bytes, hash)| {
                            let key = canonical.to_string_lossy().into_owned();
                            match known.get(&key) {
                                Some((id, stored)) if *stored == hash => {
                                    Ok(Analysed::Unchanged(key, *id))
                                }
                                _ => analyse(&canonical, &bytes, hash, opts.max_image_bytes)
                                    .map(|r| Analysed::Record(Box::new(r))),
                            }
                        });
                    on_file();
                    let _ = tx.send((path, result));
                });
            });
        });
        for (path, result) in rx {
            match result {
                Ok(Analysed::Unchanged(p, id)) => {
                    report.unchanged.push(FileOutcome { path: p, id });
                }
                Ok(Analysed::Record(analysis)) => {
                    let Analysis {
                        record: rec,
                        mut warnings,
                    } = *analysis;
                    warnings.extend(same_bytes_elsewhere(db, &rec));
                    for msg in warnings {
                        on_problem(&format!("warning: {msg}"));
                        report.warnings.push(FileFailure {
                            path: rec.path.clone(),
                            reason: msg,
                        });
                    }
                    match images::upsert(db, &rec) {
                        Ok((Upsert::Added, id)) => report.added.push(FileOutcome {
                            path: rec.path.clone(),
                            id,
                        }),
                        Ok((Upsert::Updated, id)) => report.updated.push(FileOutcome {
                            path: rec.path.clone(),
                            id,
                        }),
                        Ok((Upsert::Unchanged, id)) => report.unchanged.push(FileOutcome {
                            path: rec.path.clone(),
                            id,
                        }),
                        Err(source) => {
                            let e = IngestError::Store {
                                path,
                                source: Box::new(source),
                            };
                            on_problem(&format!("error: {e}"));
                            report.failed.push(FileFailure {
                                path: rec.path.clone(),
                                reason: e.to_string(),
                            });
                        }
                    }
                }
                Err(e) => {
                    on_problem(&format!("error: {e}"));
                    let path = std::fs::canonicalize(&path).unwrap_or(path);
                    report.failed.push(FileFailure {
                        path: path.to_string_lossy().into_owned(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(())
    })?;
    for list in [
        &mut report.added,
        &mut report.updated,
        &mut report.unchanged,
    ] {
        list.sort_by(|a, b| a.path.cmp(&b.path));
    }
    report.failed.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}
