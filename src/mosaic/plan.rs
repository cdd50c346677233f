//! Planning: choose the images of a time window for a tier and record a `mosaic_plans` row.
//!
//! Invariants: images are selected on observation time in [start, end), rms strictly below the
//! tier's threshold and the optional sky box, best rms first, at most the tier's count; nothing is
//! written when no image qualifies; a name maps to one selection unless the caller replaces it.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::manifest::{Coverage, PLAN_SCHEMA, PlanImage, PlanManifest, Window};
use crate::mosaic::tiers::Tier;
use crate::store::images::{ImageFilter, ImageRecord, list};
use crate::store::{Db, Sql, StoreError};
use crate::time::{compact, iso, mjd};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "no image qualifies for tier {tier} in [{start}, {end}): {in_window} image(s) observed in the window, \
         {rejected_rms} rejected with rms >= {threshold_mjy} mJy, {rejected_region} outside the requested sky region; \
         nothing was recorded. Ingest images for this window, or widen it (--start/--end, --last), or choose a tier \
         with a looser rms threshold (`contimg tiers`)"
    )]
    NoImages {
        tier: String,
        start: String,
        end: String,
        threshold_mjy: f64,
        in_window: usize,
        rejected_rms: usize,
        rejected_region: usize,
    },
    #[error(
        "a plan named {name:?} already exists (id {id}) with a different selection of images; \
         choose another --name, or pass --replace to replace it"
    )]
    NameTaken { name: String, id: i64 },
    #[error("the window is empty or reversed: start {start} is not before end {end}")]
    BadWindow { start: String, end: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub tier: Tier,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub name: Option<String>,
    pub dec_min: Option<f64>,
    pub dec_max: Option<f64>,
    /// RA box; `ra_min > ra_max` selects a box that crosses RA 0h.
    pub ra_min: Option<f64>,
    pub ra_max: Option<f64>,
    pub replace: bool,
}

/// The default plan name: tier and window, e.g. `science_20261119T0300_20261120T0300`.
pub fn default_name(tier: &str, start: &DateTime<Utc>, end: &DateTime<Utc>) -> String {
    format!("{tier}_{}_{}", compact(*start), compact(*end))
}

fn ra_in_box(ra: f64, min: f64, max: f64) -> bool {
    let ra = ra.rem_euclid(360.0);
    let (min, max) = (min.rem_euclid(360.0), max.rem_euclid(360.0));
    if min <= max {
        ra >= min && ra <= max
    } else {
        ra >= min || ra <= max
    }
}

/// The smallest RA arc holding every interval `[centre - half, centre + half]`, as (min, max) in
/// [0, 360); `min > max` when it crosses RA 0h. `(0, 360)` when the whole circle is covered.
pub fn ra_arc(intervals: &[(f64, f64)]) -> (f64, f64) {
    if intervals.is_empty() {
        return (0.0, 0.0);
    }
    let mut iv: Vec<(f64, f64)> = Vec::with_capacity(intervals.len());
    for &(centre, half) in intervals {
        if half >= 180.0 {
            return (0.0, 360.0);
        }
        let s = (centre - half).rem_euclid(360.0);
        iv.push((s, s + 2.0 * half));
    }
    iv.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Merge, then find the largest uncovered gap, including the one across 360 -> 0.
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (s, e) in iv {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let first_start = merged[0].0;
    let last_end = merged.iter().map(|m| m.1).fold(f64::MIN, f64::max);
    // (gap size, start of the covered arc after it, end of the covered arc before it)
    let mut best = (first_start + 360.0 - last_end, first_start, last_end);
    for w in merged.windows(2) {
        let gap = w[1].0 - w[0].1;
        if gap > best.0 {
            best = (gap, w[1].0, w[0].1);
        }
    }
    if best.0 <= 0.0 {
        return (0.0, 360.0);
    }
    (best.1.rem_euclid(360.0), best.2.rem_euclid(360.0))
}

/// The sky covered by a set of images: their footprints (centre ± half the field).
pub fn coverage_of(images: &[ImageRecord]) -> Coverage {
    let mut dec_min = f64::INFINITY;
    let mut dec_max = f64::NEG_INFINITY;
    let mut arcs = Vec::with_capacity(images.len());
    for im in images {
        let half_w = im.naxis1 as f64 * im.cell_arcsec / 7200.0;
        let half_h = im.naxis2 as f64 * im.cell_arcsec / 7200.0;
        dec_min = dec_min.min((im.dec_deg - half_h).max(-90.0));
        dec_max = dec_max.max((im.dec_deg + half_h).min(90.0));
        let cos = im.dec_deg.to_radians().cos().max(1e-6);
        arcs.push((im.ra_deg, (half_w / cos).min(180.0)));
    }
    let (ra_min_deg, ra_max_deg) = ra_arc(&arcs);
    Coverage {
        ra_min_deg,
        ra_max_deg,
        dec_min_deg: dec_min,
        dec_max_deg: dec_max,
    }
}

impl From<&ImageRecord> for PlanImage {
    fn from(im: &ImageRecord) -> PlanImage {
        PlanImage {
            id: im.id.unwrap_or(0),
            path: im.path.clone().into(),
            sha256: im.content_sha256.clone(),
            rms_jy: im.rms_jy,
            ra_deg: im.ra_deg,
            dec_deg: im.dec_deg,
            obs_time: im.obs_time.clone(),
        }
    }
}

/// Selects images and records (or returns the existing) plan.
pub fn plan(db: &mut Db, req: &PlanRequest) -> Result<PlanManifest, PlanError> {
    if req.start >= req.end {
        return Err(PlanError::BadWindow {
            start: iso(req.start),
            end: iso(req.end),
        });
    }
    let chosen = select(db, req)?;
    let name = req
        .name
        .clone()
        .unwrap_or_else(|| default_name(&req.tier.name, &req.start, &req.end));
    let coverage = coverage_of(&chosen);
    let (plan_id, created_at, existing) = record(db, &name, req, &chosen, &coverage)?;
    Ok(PlanManifest {
        schema: PLAN_SCHEMA.to_string(),
        database: PathBuf::from(db.label()),
        plan_id,
        name,
        tier: req.tier.name.clone(),
        window: Window {
            start: iso(req.start),
            end: iso(req.end),
        },
        coverage,
        n_images: chosen.len(),
        images: chosen.iter().map(PlanImage::from).collect(),
        created_at: DateTime::from_timestamp(created_at, 0)
            .map(iso)
            .unwrap_or_default(),
        existing,
    })
}

/// The images of the window that pass the tier's rms threshold and the region, best rms first,
/// one copy of byte-identical files, at most the tier's count; returned in observation order (so
/// products read naturally). None at all is an error that counts each rejection.
fn select(db: &mut Db, req: &PlanRequest) -> Result<Vec<ImageRecord>, PlanError> {
    let in_window = list(
        db,
        &ImageFilter {
            since_mjd: Some(mjd(req.start)),
            until_mjd: Some(mjd(req.end)),
            max_rms_jy: None,
        },
    )?;
    let n_window = in_window.len();
    let (mut rejected_rms, mut rejected_region) = (0, 0);
    let mut chosen: Vec<ImageRecord> = Vec::new();
    for im in in_window {
        if im.rms_jy.is_nan() || im.rms_jy >= req.tier.max_rms_jy {
            rejected_rms += 1;
        } else if !in_region(&im, req) {
            rejected_region += 1;
        } else {
            chosen.push(im);
        }
    }
    let by_time = |a: &ImageRecord, b: &ImageRecord| {
        a.obs_mjd
            .unwrap_or(0.0)
            .total_cmp(&b.obs_mjd.unwrap_or(0.0))
    };
    chosen.sort_by(|a, b| {
        a.rms_jy
            .total_cmp(&b.rms_jy)
            .then(by_time(a, b))
            .then(a.path.cmp(&b.path))
    });
    // Byte-identical files at two paths are one observation: keep the first (best) copy only.
    let mut seen = std::collections::HashSet::new();
    chosen.retain(|im| seen.insert(im.content_sha256.clone()));
    chosen.truncate(req.tier.max_images);
    if chosen.is_empty() {
        return Err(PlanError::NoImages {
            tier: req.tier.name.clone(),
            start: iso(req.start),
            end: iso(req.end),
            threshold_mjy: req.tier.max_rms_jy * 1e3,
            in_window: n_window,
            rejected_rms,
            rejected_region,
        });
    }
    chosen.sort_by(|a, b| by_time(a, b).then(a.path.cmp(&b.path)));
    Ok(chosen)
}

/// Whether an image's centre lies in the request's declination and RA box (RA across 0h too).
fn in_region(im: &ImageRecord, req: &PlanRequest) -> bool {
    let dec_ok =
        req.dec_min.is_none_or(|m| im.dec_deg >= m) && req.dec_max.is_none_or(|m| im.dec_deg <= m);
    let ra_ok = match (req.ra_min, req.ra_max) {
        (Some(a), Some(b)) => ra_in_box(im.ra_deg, a, b),
        (Some(a), None) => ra_in_box(im.ra_deg, a, 360.0),
        (None, Some(b)) => ra_in_box(im.ra_deg, 0.0, b),
        (None, None) => true,
    };
    dec_ok && ra_ok
}

/// Records the plan under `name` in one transaction: the same selection under that name is the
/// existing plan (idempotent); a different one is refused unless `req.replace`, which rewrites
/// it. Returns (plan id, created_at, whether it already existed).
fn record(
    db: &mut Db,
    name: &str,
    req: &PlanRequest,
    chosen: &[ImageRecord],
    coverage: &Coverage,
) -> Result<(i64, i64, bool), PlanError> {
    let mut ids: Vec<i64> = chosen.iter().filter_map(|i| i.id).collect();
    let ids_json = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
    let (start_s, end_s) = (req.start.timestamp(), req.end.timestamp());
    db.write(|tx| {
        let stored = tx.query_opt(
            "SELECT id, image_ids, tier, start_time, end_time, created_at FROM mosaic_plans WHERE name = ?1",
            crate::vals![name],
        )?;
        if let Some(r) = stored {
            let id: i64 = r.get(0)?;
            let mut stored: Vec<i64> =
                serde_json::from_str(&r.get::<String>(1)?).unwrap_or_default();
            stored.sort_unstable();
            ids.sort_unstable();
            let same_window = r.get::<i64>(3)? == start_s && r.get::<i64>(4)? == end_s;
            if stored == ids && r.get::<String>(2)? == req.tier.name && same_window {
                return Ok((id, r.get(5)?, true));
            }
            if !req.replace {
                return Err(PlanError::NameTaken {
                    name: name.to_string(),
                    id,
                });
            }
        }
        let now = crate::time::now_unix();
        let plan_id: i64 = tx
            .query_one(
                "INSERT INTO mosaic_plans (name, tier, start_time, end_time, image_ids, n_images, ra_min_deg, \
                 ra_max_deg, dec_min_deg, dec_max_deg, created_at, status) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending') \
                 ON CONFLICT(name) DO UPDATE SET tier = excluded.tier, start_time = excluded.start_time, \
                 end_time = excluded.end_time, image_ids = excluded.image_ids, n_images = excluded.n_images, \
                 ra_min_deg = excluded.ra_min_deg, ra_max_deg = excluded.ra_max_deg, \
                 dec_min_deg = excluded.dec_min_deg, dec_max_deg = excluded.dec_max_deg, \
                 created_at = excluded.created_at, status = 'pending' \
                 RETURNING id",
                crate::vals![
                    name,
                    &req.tier.name,
                    start_s,
                    end_s,
                    &ids_json,
                    chosen.len(),
                    coverage.ra_min_deg,
                    coverage.ra_max_deg,
                    coverage.dec_min_deg,
                    coverage.dec_max_deg,
                    now
                ],
            )?
            .get(0)?;
        Ok((plan_id, now, false))
    })
}

/// Loads a recorded plan as its manifest (for `build --plan ID`).
pub fn load(db: &mut Db, plan_id: i64) -> Result<PlanManifest, PlanError> {
    let database = db.label();
    let r = db
        .query_opt(
            "SELECT name, tier, start_time, end_time, image_ids, created_at, ra_min_deg, ra_max_deg, dec_min_deg, \
             dec_max_deg FROM mosaic_plans WHERE id = ?1",
            crate::vals![plan_id],
        )?
        .ok_or_else(|| StoreError::NotFound(format!("no plan with id {plan_id} in {database}")))?;
    let (name, tier, s, e, ids_json, created): (String, String, i64, i64, String, i64) = (
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    );
    let (ra_min, ra_max, dec_min, dec_max): (f64, f64, f64, f64) =
        (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?);
    let ids: Vec<i64> = serde_json::from_str(&ids_json).unwrap_or_default();
    let images = crate::store::images::by_ids(db, &ids)?;
    let ts = |t: i64| DateTime::from_timestamp(t, 0).map(iso).unwrap_or_default();
    Ok(PlanManifest {
        schema: PLAN_SCHEMA.to_string(),
        database: PathBuf::from(database),
        plan_id,
        name,
        tier,
        window: Window {
            start: ts(s),
            end: ts(e),
        },
        coverage: Coverage {
            ra_min_deg: ra_min,
            ra_max_deg: ra_max,
            dec_min_deg: dec_min,
            dec_max_deg: dec_max,
        },
        n_images: images.len(),
        images: images.iter().map(PlanImage::from).collect(),
        created_at: ts(created),
        existing: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ra_arc_handles_wrap_and_simple_cases() {
        assert_eq!(ra_arc(&[(10.0, 1.0), (20.0, 1.0)]), (9.0, 21.0));
        let (a, b) = ra_arc(&[(359.0, 2.0), (3.0, 2.0)]);
        assert!(
            (a - 357.0).abs() < 1e-9 && (b - 5.0).abs() < 1e-9,
            "{a} {b}"
        );
        assert_eq!(ra_arc(&[(0.0, 200.0)]), (0.0, 360.0));
        // Three arcs around the circle: the largest gap decides.
        let (a, b) = ra_arc(&[(0.0, 10.0), (120.0, 10.0), (200.0, 10.0)]);
        assert!(
            (a - 350.0).abs() < 1e-9 && (b - 210.0).abs() < 1e-9,
            "{a} {b}"
        );
    }

    #[test]
    fn ra_box_wraps() {
        assert!(ra_in_box(359.5, 350.0, 10.0));
        assert!(ra_in_box(5.0, 350.0, 10.0));
        assert!(!ra_in_box(180.0, 350.0, 10.0));
        assert!(ra_in_box(180.0, 170.0, 190.0));
    }
}
