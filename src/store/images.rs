//! The `images` table: one row per FITS file, keyed by its canonical path.
//!
//! Invariant: a row describes the file whose content hash it records; re-ingesting the same bytes
//! changes nothing, different bytes under the same path replace the row's facts (same id).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::StoreError;

/// Everything ingest learns about one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageRecord {
    pub id: Option<i64>,
    pub path: String,
    pub rms_jy: f64,
    pub ra_deg: f64,
    pub dec_deg: f64,
    pub content_sha256: String,
    pub file_size: u64,
    pub obs_time: Option<String>,
    pub obs_mjd: Option<f64>,
    pub naxis1: u64,
    pub naxis2: u64,
    pub cell_arcsec: f64,
    pub freq_hz: Option<f64>,
    pub bmaj_arcsec: Option<f64>,
    pub bmin_arcsec: Option<f64>,
    pub bpa_deg: Option<f64>,
    pub beam_source: Option<String>,
    pub projection: String,
    pub frame: String,
    pub pb_corrected: bool,
    pub telescope: Option<String>,
    pub bunit: Option<String>,
    pub peak_jy: Option<f64>,
    pub n_blank: u64,
    pub ingested_at: String,
}

/// What happened to one file's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsert {
    Added,
    Updated,
    Unchanged,
}

const COLUMNS: &str = "id, path, rms_jy, ra_deg, dec_deg, content_sha256, file_size, obs_time, obs_mjd, \
    naxis1, naxis2, cell_arcsec, freq_hz, bmaj_arcsec, bmin_arcsec, bpa_deg, beam_source, projection, \
    frame, pb_corrected, telescope, bunit, peak_jy, n_blank, ingested_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ImageRecord> {
    Ok(ImageRecord {
        id: r.get(0)?,
        path: r.get(1)?,
        rms_jy: r.get(2)?,
        ra_deg: r.get(3)?,
        dec_deg: r.get(4)?,
        content_sha256: r.get(5)?,
        file_size: r.get::<_, i64>(6)? as u64,
        obs_time: r.get(7)?,
        obs_mjd: r.get(8)?,
        naxis1: r.get::<_, i64>(9)? as u64,
        naxis2: r.get::<_, i64>(10)? as u64,
        cell_arcsec: r.get(11)?,
        freq_hz: r.get(12)?,
        bmaj_arcsec: r.get(13)?,
        bmin_arcsec: r.get(14)?,
        bpa_deg: r.get(15)?,
        beam_source: r.get(16)?,
        projection: r.get(17)?,
        frame: r.get(18)?,
        pb_corrected: r.get::<_, i64>(19)? != 0,
        telescope: r.get(20)?,
        bunit: r.get(21)?,
        peak_jy: r.get(22)?,
        n_blank: r.get::<_, i64>(23)? as u64,
        ingested_at: r.get(24)?,
    })
}

/// Inserts or updates one image in its own transaction. Returns what happened and the row id.
pub fn upsert(conn: &mut Connection, rec: &ImageRecord) -> Result<(Upsert, i64), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let existing: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, content_sha256 FROM images WHERE path = ?1",
            [&rec.path],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let unchanged = existing
        .as_ref()
        .is_some_and(|(_, hash)| *hash == rec.content_sha256);
    if let (true, Some((id, _))) = (unchanged, &existing) {
        tx.commit()?;
        return Ok((Upsert::Unchanged, *id));
    }
    // One statement for both cases: a new path inserts, a changed file updates its row in place
    // (same id, original created_at).
    const UPDATED: &[&str] = &[
        "rms_jy",
        "ra_deg",
        "dec_deg",
        "content_sha256",
        "file_size",
        "obs_time",
        "obs_mjd",
        "naxis1",
        "naxis2",
        "cell_arcsec",
        "freq_hz",
        "bmaj_arcsec",
        "bmin_arcsec",
        "bpa_deg",
        "beam_source",
        "projection",
        "frame",
        "pb_corrected",
        "telescope",
        "bunit",
        "peak_jy",
        "n_blank",
        "ingested_at",
        "updated_at",
    ];
    let set = UPDATED
        .iter()
        .map(|c| format!("{c}=excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let now = crate::time::now_iso();
    let id: i64 = tx.query_row(
        &format!(
            "INSERT INTO images (path, rms_jy, ra_deg, dec_deg, created_at, content_sha256, file_size, \
             obs_time, obs_mjd, naxis1, naxis2, cell_arcsec, freq_hz, bmaj_arcsec, bmin_arcsec, bpa_deg, \
             beam_source, projection, frame, pb_corrected, telescope, bunit, peak_jy, n_blank, \
             ingested_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
             ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?25) \
             ON CONFLICT(path) DO UPDATE SET {set} RETURNING id"
        ),
        params![
            rec.path,
            rec.rms_jy,
            rec.ra_deg,
            rec.dec_deg,
            crate::time::now_unix(),
            rec.content_sha256,
            rec.file_size as i64,
            rec.obs_time,
            rec.obs_mjd,
            rec.naxis1 as i64,
            rec.naxis2 as i64,
            rec.cell_arcsec,
            rec.freq_hz,
            rec.bmaj_arcsec,
            rec.bmin_arcsec,
            rec.bpa_deg,
            rec.beam_source,
            rec.projection,
            rec.frame,
            i64::from(rec.pb_corrected),
            rec.telescope,
            rec.bunit,
            rec.peak_jy,
            rec.n_blank as i64,
            now,
        ],
        |r| r.get(0),
    )?;
    let outcome = if existing.is_some() {
        (Upsert::Updated, id)
    } else {
        (Upsert::Added, id)
    };
    tx.commit()?;
    Ok(outcome)
}

/// Filters for listing images. Times are MJD (UTC).
#[derive(Debug, Clone, Default)]
pub struct ImageFilter {
    pub since_mjd: Option<f64>,
    pub until_mjd: Option<f64>,
    pub max_rms_jy: Option<f64>,
}

/// Images matching the filter, ordered by observation time then path.
pub fn list(conn: &Connection, f: &ImageFilter) -> Result<Vec<ImageRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM images WHERE (?1 IS NULL OR obs_mjd >= ?1) AND (?2 IS NULL OR obs_mjd < ?2) \
         AND (?3 IS NULL OR rms_jy <= ?3) ORDER BY obs_mjd IS NULL, obs_mjd, path"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![f.since_mjd, f.until_mjd, f.max_rms_jy], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Images by id, in the order of `ids`; a missing id is an error naming it.
pub fn by_ids(conn: &Connection, ids: &[i64]) -> Result<Vec<ImageRecord>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM images WHERE id = ?1"))?;
    ids.iter()
        .map(|id| {
            stmt.query_row([id], from_row).optional()?.ok_or_else(|| {
                StoreError::NotFound(format!("image id {id} is not in the database"))
            })
        })
        .collect()
}
