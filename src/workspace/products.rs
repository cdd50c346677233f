//! The recorded products of a workspace as a reader sees them: mosaics (their files, as the
//! `mosaics` table records them), their QA reports, and the images ingested per night, on either
//! backend. What `contimg serve` lists and serves; nothing here writes.
//!
//! Invariant: every file path handed out comes from a row of the database (the mosaic's `path`,
//! the weight and noise maps `build` writes beside it under the same stem, the rms map and the PNGs
//! the QA report records), never from a caller's text.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::mosaic::qa::QaManifest;
use crate::store::{Db, Sql, StoreError};

/// One recorded mosaic (`contimg.mosaic-record/1`): the `mosaics` row with its plan's name.
#[derive(Debug, Clone, Serialize)]
pub struct MosaicRecord {
    pub mosaic_id: i64,
    pub plan_id: i64,
    pub plan_name: Option<String>,
    pub tier: String,
    pub path: PathBuf,
    pub n_images: i64,
    pub median_rms_jy: Option<f64>,
    pub effective_noise_jy: Option<f64>,
    pub coverage_sq_deg: Option<f64>,
    /// PASS, WARN or FAIL once QA has run.
    pub qa_verdict: Option<String>,
    pub created_at: String,
    pub sha256: Option<String>,
    pub weight_sha256: Option<String>,
    pub noise_sha256: Option<String>,
}

/// Which mosaics to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct MosaicFilter {
    pub tier: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

/// A product file of a recorded mosaic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    Mosaic,
    Weight,
    Noise,
    /// QA's background-rms map.
    Rms,
    /// QA's pictures.
    Quicklook,
    Offsets,
    NoiseHistogram,
}

impl Product {
    /// The product a URL segment names (`fits`, `weight`, `noise`, `rms`, `qa.png`, …).
    pub fn named(s: &str) -> Option<Product> {
        Some(match s {
            "fits" => Product::Mosaic,
            "weight" => Product::Weight,
            "noise" => Product::Noise,
            "rms" => Product::Rms,
            "quicklook.png" => Product::Quicklook,
            "offsets.png" => Product::Offsets,
            "noise_hist.png" => Product::NoiseHistogram,
            _ => return None,
        })
    }

    /// The names [`Product::named`] accepts.
    pub const NAMES: &[&str] = &[
        "fits",
        "weight",
        "noise",
        "rms",
        "quicklook.png",
        "offsets.png",
        "noise_hist.png",
    ];

    pub fn is_png(self) -> bool {
        matches!(
            self,
            Product::Quicklook | Product::Offsets | Product::NoiseHistogram
        )
    }
}

const COLUMNS: &str = "m.id, m.plan_id, p.name, m.tier, m.path, m.n_images, m.median_rms_jy, \
     m.effective_noise_jy, m.coverage_sq_deg, m.qa_status, m.created_at, m.sha256, \
     m.weight_sha256, m.noise_sha256";

fn record(r: &crate::store::sql::Row) -> Result<MosaicRecord, StoreError> {
    let created: i64 = r.get(10)?;
    Ok(MosaicRecord {
        mosaic_id: r.get(0)?,
        plan_id: r.get(1)?,
        plan_name: r.get(2)?,
        tier: r.get(3)?,
        path: PathBuf::from(r.get::<String>(4)?),
        n_images: r.get(5)?,
        median_rms_jy: r.get(6)?,
        effective_noise_jy: r.get(7)?,
        coverage_sq_deg: r.get(8)?,
        qa_verdict: r.get(9)?,
        created_at: chrono::DateTime::from_timestamp(created, 0)
            .map_or_else(|| created.to_string(), crate::time::iso),
        sha256: r.get(11)?,
        weight_sha256: r.get(12)?,
        noise_sha256: r.get(13)?,
    })
}

/// The recorded mosaics a filter selects, newest first.
pub fn mosaics(db: &mut Db, f: &MosaicFilter) -> Result<Vec<MosaicRecord>, StoreError> {
    let mut params = Vec::new();
    let mut cond = String::from("TRUE");
    if let Some(t) = &f.tier {
        params.push(crate::store::Value::Text(t.clone()));
        cond = format!("m.tier = ?{}", params.len());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM mosaics m LEFT JOIN mosaic_plans p ON p.id = m.plan_id \
         WHERE {cond} ORDER BY m.id DESC LIMIT {} OFFSET {}",
        f.limit, f.offset
    );
    db.query(&sql, &params)?.iter().map(record).collect()
}

/// The recorded mosaic `id`, if any.
pub fn mosaic(db: &mut Db, id: i64) -> Result<Option<MosaicRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM mosaics m LEFT JOIN mosaic_plans p ON p.id = m.plan_id WHERE m.id = ?1"
    );
    db.query_opt(&sql, crate::vals![id])?
        .map(|r| record(&r))
        .transpose()
}

/// The latest QA of mosaic `id` as a `contimg.qa/1` manifest (`None` before QA ran).
pub fn qa(db: &mut Db, id: i64) -> Result<Option<QaManifest>, StoreError> {
    let label = PathBuf::from(db.label());
    let Some(row) = db.query_opt(
        "SELECT q.id, q.created_at, m.qa_details FROM mosaic_qa q JOIN mosaics m ON m.id = q.mosaic_id \
         WHERE q.mosaic_id = ?1 ORDER BY q.id DESC LIMIT 1",
        crate::vals![id],
    )?
    else {
        return Ok(None);
    };
    let qa_id: i64 = row.get(0)?;
    let created: i64 = row.get(1)?;
    let Some(details) = row.get::<Option<String>>(2)? else {
        return Ok(None);
    };
    let Ok(report) = serde_json::from_str(&details) else {
        return Ok(None);
    };
    let mut m = QaManifest::new(&label, qa_id, report);
    if let Some(t) = chrono::DateTime::from_timestamp(created, 0) {
        m.created_at = crate::time::iso(t);
    }
    Ok(Some(m))
}

/// The file of product `what` of mosaic `id`, as the database records it (`None`: no such
/// mosaic, or that product was not recorded, e.g. no QA yet).
pub fn product_path(db: &mut Db, id: i64, what: Product) -> Result<Option<PathBuf>, StoreError> {
    let Some(m) = mosaic(db, id)? else {
        return Ok(None);
    };
    let stem = |suffix: &str| {
        let name = m.path.file_name()?.to_str()?;
        let stem = name
            .strip_suffix(".fits")
            .or_else(|| name.strip_suffix(".fit"))
            .unwrap_or(name);
        Some(m.path.with_file_name(format!("{stem}.{suffix}")))
    };
    Ok(match what {
        Product::Mosaic => Some(m.path.clone()),
        Product::Weight => stem("weight.fits"),
        Product::Noise => stem("noise.fits"),
        Product::Rms | Product::Quicklook | Product::Offsets | Product::NoiseHistogram => {
            let Some(q) = qa(db, id)? else {
                return Ok(None);
            };
            let r = q.report;
            match what {
                Product::Rms => Some(r.noise.rms_map),
                Product::Quicklook => r.pictures.quicklook,
                Product::Offsets => r.pictures.offsets,
                _ => r.pictures.noise_histogram,
            }
        }
    })
}

/// How many images were observed on each UTC night (the date of `obs_time` 12 h earlier, so a
/// night that crosses midnight is one), the latest `nights` nights, newest first.
pub fn images_per_night(db: &mut Db, nights: usize) -> Result<Vec<(String, usize)>, StoreError> {
    let rows = db.query("SELECT obs_mjd FROM images WHERE obs_mjd IS NOT NULL", &[])?;
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        let mjd: f64 = r.get(0)?;
        if let Ok(t) = crate::time::from_mjd(mjd - 0.5) {
            *per.entry(t.format("%Y-%m-%d").to_string()).or_default() += 1;
        }
    }
    Ok(per.into_iter().rev().take(nights).collect())
}
