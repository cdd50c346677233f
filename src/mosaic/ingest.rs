//! Ingest: read FITS images, measure what planning and mosaicking need, and register them.
//!
//! Invariants: a file is analysed from its own bytes only (header through cfitsio, pixels, hash);
//! each file's row is written in its own transaction, so a failure in one file never touches
//! another's row and nothing is written for a bad file; unchanged bytes mean no write at all.

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rayon::prelude::*;
use rusqlite::Connection;
use serde::Serialize;

use crate::fits::Header;
use crate::fits::facts::{frequency_hz, is_pb_corrected, restoring_beam};
use crate::fits::read::{FitsReadError, read_image_bytes};
use crate::stats;
use crate::store::StoreError;
use crate::store::images::{self, ImageRecord, Upsert};
use crate::time::{self, Instant};
use crate::wcs::{Frame, Wcs, WcsError};

/// Why one file could not be ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: cannot read the file: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
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

/// Observation time: DATE-OBS (with TIME-OBS if DATE-OBS has no time), else MJD-OBS.
fn observation_time(h: &Header) -> Option<Instant> {
    if let Some(t) = h.str("DATE-OBS").and_then(|s| time::parse_date_obs(s).ok()) {
        let has_time = h.str("DATE-OBS").is_some_and(|s| s.contains('T'));
        if !has_time && let Some(extra) = h.str("TIME-OBS").and_then(time::parse_time_of_day) {
            return Some(t.date_naive().and_time(extra).and_utc());
        }
        return Some(t);
    }
    h.f64("MJD-OBS").and_then(|m| time::from_mjd(m).ok())
}

fn frame_name(f: Frame) -> String {
    match f {
        Frame::Icrs => "ICRS".into(),
        Frame::Fk5 { equinox } => format!("FK5 J{equinox}"),
        Frame::Fk4 { equinox } => format!("FK4 B{equinox}"),
        Frame::Galactic => "GALACTIC".into(),
    }
}

/// Reads one file and measures everything its `images` row records.
pub fn analyse(path: &Path, bytes: &[u8], sha256: String) -> Result<ImageRecord, IngestError> {
    let image = read_image_bytes(path, bytes).map_err(Box::new)?;
    let h = &image.header;
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
    let peak = image
        .plane
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    let obs = observation_time(h);
    let beam = restoring_beam(h);
    Ok(ImageRecord {
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
        freq_hz: frequency_hz(h),
        bmaj_arcsec: beam.as_ref().map(|b| b.bmaj_arcsec),
        bmin_arcsec: beam.as_ref().map(|b| b.bmin_arcsec),
        bpa_deg: beam.as_ref().map(|b| b.bpa_deg),
        beam_source: beam.as_ref().map(|b| b.source.to_string()),
        projection: wcs.projection().to_string(),
        frame: frame_name(wcs.frame()),
        pb_corrected: is_pb_corrected(h),
        telescope: h.str("TELESCOP").map(|s| s.trim().to_string()),
        bunit: h.str("BUNIT").map(|s| s.trim().to_string()),
        peak_jy: peak.is_finite().then_some(peak),
        n_blank,
        ingested_at: time::now_iso(),
    })
}

/// Whether a directory walk picks up this file: FITS names, but not primary-beam images
/// (`*.pb.fits`) that sit beside snapshots, nor our own weight and noise maps.
pub fn looks_like_image(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".fz"))
        .unwrap_or(&name);
    let is_fits = [".fits", ".fit", ".fts"].iter().any(|e| stem.ends_with(e));
    let is_aux = [".pb.", ".weight.", ".noise."]
        .iter()
        .any(|m| stem.contains(m));
    is_fits && !is_aux
}

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
        } else if p.exists() {
            files.push(p);
        } else {
            failed.push((p.clone(), IngestError::Missing { path: p }.to_string()));
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
            files.push(p);
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
    Record(Box<ImageRecord>),
}

fn hash_file(path: &Path) -> Result<(Vec<u8>, String), IngestError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|source| IngestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let hex = crate::fsutil::sha256_hex(&bytes);
    Ok((bytes, hex))
}

/// Ingests `files` into the database: analysis in parallel on `threads` threads (0: one per
/// core), one transaction per file on the calling thread. `on_file` is called once per file (progress); `on_problem` once per failure
/// or warning with a one-line message.
pub fn ingest(
    conn: &mut Connection,
    files: Vec<PathBuf>,
    threads: usize,
    on_file: &(dyn Fn() + Sync),
    on_problem: &dyn Fn(&str),
) -> Result<IngestReport, IngestError> {
    let known: HashMap<String, (i64, String)> = {
        let mut stmt = conn
            .prepare("SELECT path, id, content_sha256 FROM images")
            .map_err(StoreError::from)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?))))
            .map_err(StoreError::from)?;
        rows.collect::<Result<_, _>>().map_err(StoreError::from)?
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
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
                    let result = hash_file(&canonical).and_then(|(bytes, hash)| {
                        let key = canonical.to_string_lossy().into_owned();
                        match known.get(&key) {
                            Some((id, stored)) if *stored == hash => {
                                Ok(Analysed::Unchanged(key, *id))
                            }
                            _ => analyse(&canonical, &bytes, hash)
                                .map(|r| Analysed::Record(Box::new(r))),
                        }
                    });
                    on_file();
                    let _ = tx.send((path, result));
                })
            });
        });
        for (path, result) in rx {
            match result {
                Ok(Analysed::Unchanged(p, id)) => {
                    report.unchanged.push(FileOutcome { path: p, id })
                }
                Ok(Analysed::Record(rec)) => {
                    if rec.beam_source.is_none() {
                        let msg = format!(
                            "{}: no restoring beam (no BMAJ/BMIN keywords, no AIPS CLEAN HISTORY card); recorded without one",
                            rec.path
                        );
                        on_problem(&format!("warning: {msg}"));
                        report.warnings.push(FileFailure {
                            path: rec.path.clone(),
                            reason: msg,
                        });
                    }
                    match images::upsert(conn, &rec) {
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
