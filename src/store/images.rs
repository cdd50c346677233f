//! The `images` table: one row per FITS file, keyed by its canonical path.
//!
//! Invariant: a row describes the file whose content hash it records; re-ingesting the same bytes
//! changes nothing, different bytes under the same path replace the row's facts (same id). The
//! same code runs on SQLite and PostgreSQL through [`Db`].

use serde::Serialize;

use super::StoreError;
use super::sql::{Db, Row, Sql};

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

fn from_row(r: &Row) -> Result<ImageRecord, StoreError> {
    Ok(ImageRecord {
        id: r.get(0)?,
        path: r.get(1)?,
        rms_jy: r.get(2)?,
        ra_deg: r.get(3)?,
        dec_deg: r.get(4)?,
        content_sha256: r.get(5)?,
        file_size: r.get::<i64>(6)? as u64,
        obs_time: r.get(7)?,
        obs_mjd: r.get(8)?,
        naxis1: r.get::<i64>(9)? as u64,
        naxis2: r.get::<i64>(10)? as u64,
        cell_arcsec: r.get(11)?,
        freq_hz: r.get(12)?,
        bmaj_arcsec: r.get(13)?,
        bmin_arcsec: r.get(14)?,
        bpa_deg: r.get(15)?,
        beam_source: r.get(16)?,
        projection: r.get(17)?,
        frame: r.get(18)?,
        pb_corrected: r.get(19)?,
        telescope: r.get(20)?,
        bunit: r.get(21)?,
        peak_jy: r.get(22)?,
        n_blank: r.get::<i64>(23)? as u64,
        ingested_at: r.get(24)?,
    })
}

/// Inserts or updates one image in its own transaction. Returns what happened and the row id.
pub fn upsert(db: &mut Db, rec: &ImageRecord) -> Result<(Upsert, i64), StoreError> {
    db.write(|tx| {
        let existing = tx
            .query_opt(
                "SELECT id, content_sha256 FROM images WHERE path = ?1",
                crate::vals![&rec.path],
            )?
            .map(|r| Ok::<_, StoreError>((r.get::<i64>(0)?, r.get::<String>(1)?)))
            .transpose()?;
        match existing {
            Some((id, hash)) if hash == rec.content_sha256 => Ok((Upsert::Unchanged, id)),
            Some(_) => Ok((Upsert::Updated, write_row(tx, rec)?)),
            None => Ok((Upsert::Added, write_row(tx, rec)?)),
        }
    })
}

/// Inserts the record, or updates the row of its path in place (same id, original created_at).
fn write_row(tx: &mut dyn Sql, rec: &ImageRecord) -> Result<i64, StoreError> {
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
    tx.query_one(
        &format!(
            "INSERT INTO images (path, rms_jy, ra_deg, dec_deg, created_at, content_sha256, file_size, \
             obs_time, obs_mjd, naxis1, naxis2, cell_arcsec, freq_hz, bmaj_arcsec, bmin_arcsec, bpa_deg, \
             beam_source, projection, frame, pb_corrected, telescope, bunit, peak_jy, n_blank, \
             ingested_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
             ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?25) \
             ON CONFLICT(path) DO UPDATE SET {set} RETURNING id"
        ),
        crate::vals![
            &rec.path,
            rec.rms_jy,
            rec.ra_deg,
            rec.dec_deg,
            crate::time::now_unix(),
            &rec.content_sha256,
            rec.file_size,
            &rec.obs_time,
            rec.obs_mjd,
            rec.naxis1,
            rec.naxis2,
            rec.cell_arcsec,
            rec.freq_hz,
            rec.bmaj_arcsec,
            rec.bmin_arcsec,
            rec.bpa_deg,
            &rec.beam_source,
            &rec.projection,
            &rec.frame,
            rec.pb_corrected,
            &rec.telescope,
            &rec.bunit,
            rec.peak_jy,
            rec.n_blank,
            now,
        ],
    )?
    .get(0)
}

/// Filters for listing images. Times are MJD (UTC).
#[derive(Debug, Clone, Default)]
pub struct ImageFilter {
    pub since_mjd: Option<f64>,
    pub until_mjd: Option<f64>,
    pub max_rms_jy: Option<f64>,
}

/// Images matching the filter, ordered by observation time (none last) then path, compared
/// bytewise (sorted here: a PostgreSQL collation would order paths differently from SQLite).
pub fn list(db: &mut dyn Sql, f: &ImageFilter) -> Result<Vec<ImageRecord>, StoreError> {
    // Only the filters given become conditions: PostgreSQL cannot type a parameter that is only
    // tested with IS NULL.
    let mut conds = vec!["TRUE".to_string()];
    let mut params = Vec::new();
    for (value, cond) in [
        (f.since_mjd, "obs_mjd >= "),
        (f.until_mjd, "obs_mjd < "),
        (f.max_rms_jy, "rms_jy <= "),
    ] {
        if let Some(v) = value {
            params.push(super::Value::F64(v));
            conds.push(format!("{cond}?{}", params.len()));
        }
    }
    let sql = format!("SELECT {COLUMNS} FROM images WHERE {}", conds.join(" AND "));
    let mut rows = db
        .query(&sql, &params)?
        .iter()
        .map(from_row)
        .collect::<Result<Vec<_>, _>>()?;
    rows.sort_by(|a, b| {
        (a.obs_mjd.is_none(), a.obs_mjd.unwrap_or(0.0))
            .partial_cmp(&(b.obs_mjd.is_none(), b.obs_mjd.unwrap_or(0.0)))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.path.as_bytes().cmp(b.path.as_bytes()))
    });
    Ok(rows)
}

/// Images by id, in the order of `ids`; a missing id is an error naming it.
pub fn by_ids(db: &mut dyn Sql, ids: &[i64]) -> Result<Vec<ImageRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM images WHERE id = ?1");
    ids.iter()
        .map(|id| {
            db.query_opt(&sql, crate::vals![*id])?
                .map(|r| from_row(&r))
                .transpose()?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("image id {id} is not in the database"))
                })
        })
        .collect()
}
