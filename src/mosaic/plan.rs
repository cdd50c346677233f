//! Planning: choose the images of a time window for a tier and record a `mosaic_plans` row with
//! every image it left out and why.
//!
//! The rules, in order; an image left out is named with the first rule it fails
//! ([`LeftOutKind`]):
//! 1. observed in [start, end) (by `obs_mjd`) — the window; nothing outside it is named;
//! 2. centre in the optional sky box (`region`);
//! 3. a frequency inside the tier's `frequency_hz` range when it has one (`band`; an image with
//!    no frequency cannot be placed in a range: `no_frequency`);
//! 4. one band: frequencies within `max_band_spread` of their neighbour (sorted) are one band; the
//!    band with the most images is taken, ties to the lower frequency (`band`). Images without a
//!    frequency are kept only when no candidate has one (`no_frequency` otherwise);
//! 5. one resolution: a restoring-beam area within `max_beam_spread` of the band's median
//!    (the lower middle value for an even count, so the reference is a beam some image has;
//!    images without a beam are kept) (`resolution`);
//! 6. noise: a measured rms at most `max_rms_factor` × the median rms of the band's images, and
//!    below `max_rms_jy` when the tier sets one (`rms`);
//! 7. one copy of byte-identical files, the best rms first (`duplicate`), then at most
//!    `max_images` (`limit`, the noisiest go).
//!
//! Invariants: nothing is written when no image is taken; a window with no image at all (or none
//! in the sky box) is [`PlanError::NoImages`], which late data can mend, while a window whose
//! every image was left out is [`PlanError::AllLeftOut`], which the same data would repeat; a
//! name maps to one selection unless the caller replaces it; the recorded `left_out` is the one
//! the selection made (re-planned with the same selection, it is brought up to date).

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::manifest::{
    Coverage, LeftOut, LeftOutKind, PLAN_SCHEMA, PlanImage, PlanManifest, Window, left_out_counts,
};
use crate::mosaic::tiers::Tier;
use crate::store::images::{ImageFilter, ImageRecord, list};
use crate::store::{Db, Sql, StoreError};
use crate::time::{compact, iso, mjd};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "no image to plan for tier {tier} in [{start}, {end}): {}; nothing was recorded. Ingest \
         images for this window (a pipeline retries: late data can mend it), or widen it (--start/--end, \
         --last){}",
        if *in_window == 0 {
            "no image was observed in the window".to_string()
        } else {
            format!("{in_window} image(s) observed in the window, none inside the requested sky region")
        },
        if *in_window == 0 { "" } else { ", or widen the sky box (--ra-min/--ra-max, --dec-min/--dec-max)" }
    )]
    NoImages {
        tier: String,
        start: String,
        end: String,
        in_window: usize,
    },
    #[error(
        "every one of the {n} image(s) of tier {tier}'s window [{start}, {end}) was left out: {}; \
         nothing was recorded. The same images give the same result, so a pipeline does not \
         retry it (exit 3): follow the fix named for each reason, or plan with a tier that fits these images \
         (`contimg tiers`; [tiers.NAME] in contimg.toml)",
        examples(left_out),
        n = left_out.len()
    )]
    AllLeftOut {
        tier: String,
        start: String,
        end: String,
        left_out: Vec<LeftOut>,
    },
    #[error(
        "a plan named {name:?} already exists (id {id}) with a different selection of images; \
         choose another --name, or pass --replace to replace it"
    )]
    NameTaken { name: String, id: i64 },
    #[error("the window is empty or reversed: start {start} is not before end {end}")]
    BadWindow { start: String, end: String },
    #[error("no plan with id {id} in {database}")]
    NoPlan { id: i64, database: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Per reason, how many images and the first one with its reason: "2 band (e.g. a.fits: …)".
fn examples(left_out: &[LeftOut]) -> String {
    left_out_counts(left_out)
        .iter()
        .filter_map(|(k, n)| {
            let l = left_out.iter().find(|l| l.reason_kind == *k)?;
            Some(format!("{n} {k} (e.g. {}: {})", l.path.display(), l.reason))
        })
        .collect::<Vec<_>>()
        .join("; ")
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
    let Selection { chosen, left_out } = select(db, req)?;
    let name = req
        .name
        .clone()
        .unwrap_or_else(|| default_name(&req.tier.name, &req.start, &req.end));
    let coverage = coverage_of(&chosen);
    let (plan_id, created_at, existing) = record(db, &name, req, &chosen, &left_out, &coverage)?;
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
        left_out,
        created_at: DateTime::from_timestamp(created_at, 0)
            .map(iso)
            .unwrap_or_default(),
        existing,
    })
}

/// What a plan takes from its window (in observation order) and what it leaves out (by reason,
/// then observation order).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub chosen: Vec<ImageRecord>,
    pub left_out: Vec<LeftOut>,
}

/// The window's images, chosen by the rules of the module (an error when none is taken).
fn select(db: &mut Db, req: &PlanRequest) -> Result<Selection, PlanError> {
    let in_window = list(
        db,
        &ImageFilter {
            since_mjd: Some(mjd(req.start)),
            until_mjd: Some(mjd(req.end)),
            max_rms_jy: None,
        },
    )?;
    let n_window = in_window.len();
    let sel = choose(in_window, req);
    if !sel.chosen.is_empty() {
        return Ok(sel);
    }
    let in_region = sel
        .left_out
        .iter()
        .filter(|l| l.reason_kind != LeftOutKind::Region)
        .count();
    if in_region == 0 {
        return Err(PlanError::NoImages {
            tier: req.tier.name.clone(),
            start: iso(req.start),
            end: iso(req.end),
            in_window: n_window,
        });
    }
    Err(PlanError::AllLeftOut {
        tier: req.tier.name.clone(),
        start: iso(req.start),
        end: iso(req.end),
        left_out: sel
            .left_out
            .into_iter()
            .filter(|l| l.reason_kind != LeftOutKind::Region)
            .collect(),
    })
}

/// A frequency as people write it: MHz below 1 GHz, else GHz.
fn freq_text(hz: f64) -> String {
    if hz < 1e9 {
        format!("{:.1} MHz", hz / 1e6)
    } else {
        format!("{:.3} GHz", hz / 1e9)
    }
}

/// An image's frequency when it is usable (finite and positive).
fn freq_of(im: &ImageRecord) -> Option<f64> {
    im.freq_hz.filter(|f| f.is_finite() && *f > 0.0)
}

/// An image's restoring-beam area (arcsec²) when it has a usable beam.
fn beam_area(im: &ImageRecord) -> Option<f64> {
    match (im.bmaj_arcsec, im.bmin_arcsec) {
        (Some(a), Some(b)) if a.is_finite() && b.is_finite() && a > 0.0 && b > 0.0 => Some(a * b),
        _ => None,
    }
}

/// The median, or for an even count the lower of the two middle values (a value some member has).
fn lower_median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[(values.len() - 1) / 2])
}

/// A band of frequencies: its images' indices (into the candidates) and its range.
struct Band {
    members: Vec<usize>,
    lo: f64,
    hi: f64,
}

impl Band {
    fn text(&self) -> String {
        if self.hi - self.lo < 1e-6 * self.hi {
            freq_text(self.lo)
        } else {
            format!("{}–{}", freq_text(self.lo), freq_text(self.hi))
        }
    }
}

/// Groups `(index, frequency)` pairs into bands: neighbours in frequency order within `spread`
/// (fractional, of the lower one) of each other are one band. Bands come out lowest first.
fn bands(freqs: &[(usize, f64)], spread: f64) -> Vec<Band> {
    let mut sorted = freqs.to_vec();
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<Band> = Vec::new();
    for (i, f) in sorted {
        match out.last_mut() {
            Some(b) if f - b.hi <= spread * b.hi => {
                b.members.push(i);
                b.hi = f;
            }
            _ => out.push(Band {
                members: vec![i],
                lo: f,
                hi: f,
            }),
        }
    }
    out
}

/// Applies the module's rules to the window's images (pure: the database is not read).
pub fn choose(in_window: Vec<ImageRecord>, req: &PlanRequest) -> Selection {
    let tier = &req.tier;
    let mut left_out: Vec<(f64, LeftOut)> = Vec::new();
    let mut leave = |im: &ImageRecord, kind: LeftOutKind, reason: String| {
        left_out.push((
            im.obs_mjd.unwrap_or(f64::NAN),
            LeftOut {
                image_id: im.id.unwrap_or(0),
                path: PathBuf::from(&im.path),
                reason_kind: kind,
                reason,
            },
        ));
    };
    // 2. The sky box.
    let mut cands: Vec<ImageRecord> = Vec::new();
    for im in in_window {
        if in_region(&im, req) {
            cands.push(im);
        } else {
            leave(
                &im,
                LeftOutKind::Region,
                format!(
                    "centre RA {:.3}, Dec {:.3} deg is outside the requested sky box",
                    im.ra_deg, im.dec_deg
                ),
            );
        }
    }
    // 3. The tier's frequency range.
    if let Some([lo, hi]) = tier.frequency_hz {
        let mut kept = Vec::with_capacity(cands.len());
        for im in cands {
            match freq_of(&im) {
                Some(f) if f >= lo && f <= hi => kept.push(im),
                Some(f) => leave(
                    &im,
                    LeftOutKind::Band,
                    format!(
                        "observed at {}, outside tier {}'s frequency_hz range [{}, {}]; plan it \
                         with a tier for that band",
                        freq_text(f),
                        tier.name,
                        freq_text(lo),
                        freq_text(hi)
                    ),
                ),
                None => leave(
                    &im,
                    LeftOutKind::NoFrequency,
                    format!(
                        "no observing frequency recorded, so it cannot be placed in tier {}'s \
                         frequency_hz range; set the FREQ (or CRVAL3/RESTFRQ) card in the FITS \
                         header and re-ingest the file",
                        tier.name
                    ),
                ),
            }
        }
        cands = kept;
    }
    // 4. One band.
    let freqs: Vec<(usize, f64)> = cands
        .iter()
        .enumerate()
        .filter_map(|(i, im)| freq_of(im).map(|f| (i, f)))
        .collect();
    let mut keep = vec![true; cands.len()];
    if !freqs.is_empty() {
        let bands = bands(&freqs, tier.max_band_spread);
        // The most images; ties to the lower frequency (bands come lowest first).
        let best = bands
            .iter()
            .enumerate()
            .max_by(|a, b| {
                a.1.members
                    .len()
                    .cmp(&b.1.members.len())
                    .then(b.0.cmp(&a.0))
            })
            .map(|(i, _)| i)
            .unwrap_or(0);
        let chosen = &bands[best];
        for (bi, band) in bands.iter().enumerate() {
            if bi == best {
                continue;
            }
            for &i in &band.members {
                keep[i] = false;
                leave(
                    &cands[i],
                    LeftOutKind::Band,
                    format!(
                        "observed at {}, in a band of {} image(s), not the band chosen: {} ({} \
                         image(s), the most); bands are never mixed in one mosaic (frequencies \
                         within max_band_spread = {} of each other are one band): plan this band \
                         with a tier whose frequency_hz selects it",
                        freq_text(freq_of(&cands[i]).unwrap_or(f64::NAN)),
                        band.members.len(),
                        chosen.text(),
                        chosen.members.len(),
                        tier.max_band_spread
                    ),
                );
            }
        }
        for (i, im) in cands.iter().enumerate() {
            if freq_of(im).is_none() {
                keep[i] = false;
                leave(
                    im,
                    LeftOutKind::NoFrequency,
                    format!(
                        "no observing frequency recorded while other images of the window have \
                         one (the band chosen is {}), so its band is unknown; set the FREQ (or \
                         CRVAL3/RESTFRQ) card in the FITS header and re-ingest the file",
                        chosen.text()
                    ),
                );
            }
        }
    }
    let band: Vec<ImageRecord> = cands
        .into_iter()
        .zip(keep)
        .filter_map(|(im, k)| k.then_some(im))
        .collect();
    // The night's median rms, over the band's images (before the resolution rule).
    let median_rms = crate::stats::median_f64(
        &band
            .iter()
            .map(|im| im.rms_jy)
            .filter(|r| r.is_finite() && *r > 0.0)
            .collect::<Vec<_>>(),
    );
    // 5. One resolution, against the beam of the image with the (lower) median area.
    let mut areas: Vec<f64> = band.iter().filter_map(beam_area).collect();
    let ref_area = lower_median(&mut areas);
    let ref_beam = ref_area.and_then(|r| {
        band.iter().find(|im| beam_area(im) == Some(r)).map(|im| {
            (
                im.bmaj_arcsec.unwrap_or(f64::NAN),
                im.bmin_arcsec.unwrap_or(f64::NAN),
            )
        })
    });
    let mut chosen: Vec<ImageRecord> = Vec::with_capacity(band.len());
    for im in band {
        if let (Some(a), Some(r)) = (beam_area(&im), ref_area)
            && (a / r - 1.0).abs() > tier.max_beam_spread
        {
            leave(
                &im,
                LeftOutKind::Resolution,
                format!(
                    "restoring beam {:.1}\"×{:.1}\" has {:.2}× the area of the band's median \
                     beam {:.1}\"×{:.1}\", beyond max_beam_spread = {}; a Jy/beam mosaic needs \
                     one resolution: convolve the image to the common beam and re-ingest it, or \
                     raise max_beam_spread for tier {}",
                    im.bmaj_arcsec.unwrap_or(f64::NAN),
                    im.bmin_arcsec.unwrap_or(f64::NAN),
                    a / r,
                    ref_beam.map_or(f64::NAN, |b| b.0),
                    ref_beam.map_or(f64::NAN, |b| b.1),
                    tier.max_beam_spread,
                    tier.name
                ),
            );
            continue;
        }
        chosen.push(im);
    }
    // 6. Noise.
    let mut quiet: Vec<ImageRecord> = Vec::with_capacity(chosen.len());
    for im in chosen {
        let r = im.rms_jy;
        if !(r.is_finite() && r > 0.0) {
            leave(
                &im,
                LeftOutKind::Rms,
                "no rms could be measured (no finite pixels?); check the file and re-ingest it"
                    .into(),
            );
        } else if let Some(m) = median_rms.filter(|m| r > tier.max_rms_factor * m) {
            leave(
                &im,
                LeftOutKind::Rms,
                format!(
                    "rms {:.3} mJy/beam is {:.2}× the night's median {:.3} mJy/beam, beyond \
                     max_rms_factor = {} of tier {}; look at the image for RFI or bad \
                     calibration, or raise max_rms_factor",
                    r * 1e3,
                    r / m,
                    m * 1e3,
                    tier.max_rms_factor,
                    tier.name
                ),
            );
        } else if let Some(cut) = tier.max_rms_jy.filter(|c| r >= *c) {
            leave(
                &im,
                LeftOutKind::Rms,
                format!(
                    "rms {:.3} mJy/beam is at or above tier {}'s absolute max_rms_jy = {} mJy/beam \
                     (set in contimg.toml); raise or remove max_rms_jy for this telescope's \
                     noise, max_rms_factor already cuts relative to the night",
                    r * 1e3,
                    tier.name,
                    cut * 1e3
                ),
            );
        } else {
            quiet.push(im);
        }
    }
    // 7. One copy of identical bytes, best rms first; then the tier's count.
    let by_time = |a: &ImageRecord, b: &ImageRecord| {
        a.obs_mjd
            .unwrap_or(0.0)
            .total_cmp(&b.obs_mjd.unwrap_or(0.0))
    };
    quiet.sort_by(|a, b| {
        a.rms_jy
            .total_cmp(&b.rms_jy)
            .then(by_time(a, b))
            .then(a.path.cmp(&b.path))
    });
    let mut first_copy: std::collections::HashMap<String, String> = Default::default();
    let mut taken: Vec<ImageRecord> = Vec::with_capacity(quiet.len());
    for im in quiet {
        if let Some(kept) = first_copy.get(&im.content_sha256) {
            leave(
                &im,
                LeftOutKind::Duplicate,
                format!("the same bytes as {kept}, which was taken"),
            );
            continue;
        }
        first_copy.insert(im.content_sha256.clone(), im.path.clone());
        if taken.len() >= tier.max_images {
            leave(
                &im,
                LeftOutKind::Limit,
                format!(
                    "past tier {}'s max_images = {} (the least noisy were taken)",
                    tier.name, tier.max_images
                ),
            );
            continue;
        }
        taken.push(im);
    }
    taken.sort_by(|a, b| by_time(a, b).then(a.path.cmp(&b.path)));
    left_out.sort_by(|a, b| {
        a.1.reason_kind
            .cmp(&b.1.reason_kind)
            .then(a.0.total_cmp(&b.0))
            .then(a.1.path.cmp(&b.1.path))
    });
    Selection {
        chosen: taken,
        left_out: left_out.into_iter().map(|(_, l)| l).collect(),
    }
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
/// existing plan (idempotent; its `left_out` is brought up to date when it changed, e.g. late
/// images of another band); a different one is refused unless `req.replace`, which rewrites it.
/// Returns (plan id, created_at, whether it already existed).
fn record(
    db: &mut Db,
    name: &str,
    req: &PlanRequest,
    chosen: &[ImageRecord],
    left_out: &[LeftOut],
    coverage: &Coverage,
) -> Result<(i64, i64, bool), PlanError> {
    let mut ids: Vec<i64> = chosen.iter().filter_map(|i| i.id).collect();
    let ids_json = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
    let left_json = serde_json::to_string(left_out).unwrap_or_else(|_| "[]".into());
    let (start_s, end_s) = (req.start.timestamp(), req.end.timestamp());
    db.write(|tx| {
        let stored = tx.query_opt(
            "SELECT id, image_ids, tier, start_time, end_time, created_at, left_out FROM mosaic_plans \
             WHERE name = ?1",
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
                if r.get::<Option<String>>(6)?.as_deref() != Some(left_json.as_str()) {
                    tx.execute(
                        "UPDATE mosaic_plans SET left_out = ?2 WHERE id = ?1",
                        crate::vals![id, &left_json],
                    )?;
                }
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
                 ra_max_deg, dec_min_deg, dec_max_deg, created_at, status, left_out) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending', ?12) \
                 ON CONFLICT(name) DO UPDATE SET tier = excluded.tier, start_time = excluded.start_time, \
                 end_time = excluded.end_time, image_ids = excluded.image_ids, n_images = excluded.n_images, \
                 ra_min_deg = excluded.ra_min_deg, ra_max_deg = excluded.ra_max_deg, \
                 dec_min_deg = excluded.dec_min_deg, dec_max_deg = excluded.dec_max_deg, \
                 created_at = excluded.created_at, status = 'pending', left_out = excluded.left_out \
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
                    now,
                    &left_json
                ],
            )?
            .get(0)?;
        Ok((plan_id, now, false))
    })
}

/// The images plan `plan_id` left out, as recorded; `None` when the plan was recorded before
/// contimg kept them (or the record cannot be read).
pub fn recorded_left_out(
    db: &mut dyn Sql,
    plan_id: i64,
) -> Result<Option<Vec<LeftOut>>, StoreError> {
    let Some(r) = db.query_opt(
        "SELECT left_out FROM mosaic_plans WHERE id = ?1",
        crate::vals![plan_id],
    )?
    else {
        return Ok(None);
    };
    Ok(r.get::<Option<String>>(0)?
        .and_then(|t| serde_json::from_str(&t).ok()))
}

/// Loads a recorded plan as its manifest (for `build --plan ID`).
pub fn load(db: &mut Db, plan_id: i64) -> Result<PlanManifest, PlanError> {
    let database = db.label();
    let r = db
        .query_opt(
            "SELECT name, tier, start_time, end_time, image_ids, created_at, ra_min_deg, ra_max_deg, dec_min_deg, \
             dec_max_deg, left_out FROM mosaic_plans WHERE id = ?1",
            crate::vals![plan_id],
        )?
        .ok_or_else(|| PlanError::NoPlan {
            id: plan_id,
            database: database.clone(),
        })?;
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
    let left_out: Vec<LeftOut> = r
        .get::<Option<String>>(10)?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
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
        left_out,
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

    fn image(id: i64, freq: Option<f64>, beam: Option<(f64, f64)>, rms: f64) -> ImageRecord {
        ImageRecord {
            id: Some(id),
            path: format!("/night/im{id:02}.fits"),
            rms_jy: rms,
            ra_deg: 10.0,
            dec_deg: 30.0,
            content_sha256: format!("{id:064}"),
            file_size: 1,
            obs_time: None,
            obs_mjd: Some(61000.0 + id as f64 / 100.0),
            naxis1: 100,
            naxis2: 100,
            cell_arcsec: 10.0,
            freq_hz: freq,
            bmaj_arcsec: beam.map(|b| b.0),
            bmin_arcsec: beam.map(|b| b.1),
            bpa_deg: None,
            beam_source: None,
            projection: "SIN".into(),
            frame: "ICRS".into(),
            pb_corrected: false,
            telescope: None,
            bunit: None,
            peak_jy: None,
            n_blank: 0,
            ingested_at: String::new(),
        }
    }

    fn request(tier: &str) -> PlanRequest {
        let tiers = crate::mosaic::tiers::builtin();
        PlanRequest {
            tier: crate::mosaic::tiers::find(&tiers, tier).unwrap(),
            start: DateTime::from_timestamp(0, 0).unwrap(),
            end: DateTime::from_timestamp(86_400, 0).unwrap(),
            name: None,
            dec_min: None,
            dec_max: None,
            ra_min: None,
            ra_max: None,
            replace: false,
        }
    }

    fn ids(v: &[ImageRecord]) -> Vec<i64> {
        v.iter().filter_map(|i| i.id).collect()
    }

    fn kinds(v: &[LeftOut]) -> Vec<(i64, LeftOutKind)> {
        v.iter().map(|l| (l.image_id, l.reason_kind)).collect()
    }

    const BEAM: Option<(f64, f64)> = Some((30.0, 20.0));

    #[test]
    fn one_band_is_planned_the_one_with_most_images_ties_to_the_lower() {
        let night = vec![
            image(1, Some(1.40e9), BEAM, 1e-3),
            image(2, Some(1.52e9), BEAM, 1e-3),
            image(3, Some(1.40e9), BEAM, 1e-3),
            image(4, Some(1.52e9), BEAM, 1e-3),
            image(5, Some(1.52e9), BEAM, 1e-3),
        ];
        let s = choose(night.clone(), &request("science"));
        assert_eq!(ids(&s.chosen), [2, 4, 5]);
        assert_eq!(
            kinds(&s.left_out),
            [(1, LeftOutKind::Band), (3, LeftOutKind::Band)]
        );
        assert!(
            s.left_out[0].reason.contains("1.400 GHz")
                && s.left_out[0].reason.contains("1.520 GHz"),
            "{}",
            s.left_out[0].reason
        );
        // Two and two: the lower band.
        let s = choose(night[..4].to_vec(), &request("science"));
        assert_eq!(ids(&s.chosen), [1, 3]);
        // DSA-110's 1.405 GHz and the VLA's 1.4 GHz are one band.
        let s = choose(
            vec![
                image(1, Some(1.405e9), BEAM, 1e-3),
                image(2, Some(1.4e9), BEAM, 1e-3),
            ],
            &request("science"),
        );
        assert_eq!(ids(&s.chosen), [1, 2]);
    }

    #[test]
    fn images_without_a_frequency_go_only_with_others_that_have_none() {
        let s = choose(
            vec![image(1, None, BEAM, 1e-3), image(2, None, BEAM, 1e-3)],
            &request("science"),
        );
        assert_eq!(ids(&s.chosen), [1, 2]);
        assert!(s.left_out.is_empty());
        let s = choose(
            vec![
                image(1, None, BEAM, 1e-3),
                image(2, Some(1.4e9), BEAM, 1e-3),
            ],
            &request("science"),
        );
        assert_eq!(ids(&s.chosen), [2]);
        assert_eq!(kinds(&s.left_out), [(1, LeftOutKind::NoFrequency)]);
        assert!(s.left_out[0].reason.contains("FREQ"));
        // A tier's frequency range leaves out what is outside it, and what cannot be placed.
        let mut req = request("science");
        req.tier.frequency_hz = Some([1.3e9, 1.45e9]);
        let s = choose(
            vec![
                image(1, Some(1.4e9), BEAM, 1e-3),
                image(2, Some(1.52e9), BEAM, 1e-3),
                image(3, None, BEAM, 1e-3),
            ],
            &req,
        );
        assert_eq!(ids(&s.chosen), [1]);
        assert_eq!(
            kinds(&s.left_out),
            [(3, LeftOutKind::NoFrequency), (2, LeftOutKind::Band)]
        );
    }

    #[test]
    fn another_resolution_is_left_out_and_images_without_a_beam_are_kept() {
        let s = choose(
            vec![
                image(1, Some(1.4e9), BEAM, 1e-3),
                image(2, Some(1.4e9), Some((45.0, 30.0)), 1e-3),
                image(3, Some(1.4e9), BEAM, 1e-3),
                image(4, Some(1.4e9), None, 1e-3),
                image(5, Some(1.4e9), Some((32.0, 21.0)), 1e-3),
            ],
            &request("science"),
        );
        assert_eq!(ids(&s.chosen), [1, 3, 4, 5]);
        assert_eq!(kinds(&s.left_out), [(2, LeftOutKind::Resolution)]);
        assert!(
            s.left_out[0].reason.contains("2.25×"),
            "{}",
            s.left_out[0].reason
        );
        // Two and two: the reference is a beam some image has (the smaller), never a mean.
        let s = choose(
            vec![
                image(1, Some(1.4e9), BEAM, 1e-3),
                image(2, Some(1.4e9), Some((45.0, 30.0)), 1e-3),
            ],
            &request("science"),
        );
        assert_eq!(ids(&s.chosen), [1]);
    }

    #[test]
    fn noise_is_judged_against_the_night_and_any_absolute_cut() {
        // A VLA 327 MHz night at 6.5 mJy plans in the science tier.
        let night: Vec<ImageRecord> = (1..=6)
            .map(|i| image(i, Some(327e6), BEAM, 6.5e-3 * (0.8 + 0.08 * i as f64)))
            .collect();
        let s = choose(night.clone(), &request("science"));
        assert_eq!(s.chosen.len(), 6);
        assert!(s.left_out.is_empty());
        // One image at 3× the median is left out, named with the figures.
        let mut noisy = night.clone();
        noisy.push(image(7, Some(327e6), BEAM, 3.0 * 6.5e-3));
        let s = choose(noisy, &request("science"));
        assert_eq!(kinds(&s.left_out), [(7, LeftOutKind::Rms)]);
        assert!(s.left_out[0].reason.contains("max_rms_factor = 2.5"));
        // A workspace's absolute cut applies as well.
        let mut req = request("science");
        req.tier.max_rms_jy = Some(6.5e-3);
        let s = choose(night, &req);
        assert_eq!(ids(&s.chosen), [1, 2]);
        assert!(s.left_out.iter().all(|l| l.reason_kind == LeftOutKind::Rms));
    }

    #[test]
    fn duplicates_and_the_count_are_named_last() {
        let mut dup = image(9, Some(1.4e9), BEAM, 2e-3);
        dup.content_sha256 = format!("{:064}", 1);
        let mut night: Vec<ImageRecord> = (1..=4)
            .map(|i| image(i, Some(1.4e9), BEAM, 1e-3 + i as f64 * 1e-5))
            .collect();
        night.push(dup);
        let mut req = request("science");
        req.tier.max_images = 3;
        let s = choose(night, &req);
        assert_eq!(ids(&s.chosen), [1, 2, 3]);
        assert_eq!(
            kinds(&s.left_out),
            [(9, LeftOutKind::Duplicate), (4, LeftOutKind::Limit)]
        );
        assert!(s.left_out[0].reason.contains("/night/im01.fits"));
    }

    #[test]
    fn ra_box_wraps() {
        assert!(ra_in_box(359.5, 350.0, 10.0));
        assert!(ra_in_box(5.0, 350.0, 10.0));
        assert!(!ra_in_box(180.0, 350.0, 10.0));
        assert!(ra_in_box(180.0, 170.0, 190.0));
    }
}
