//! What a header says about the observation, read the same way by ingest and the mosaic engine:
//! observing frequency, restoring beam (keywords or AIPS HISTORY) and primary-beam correction.
//!
//! Invariant: each fact has one reader; a value that is missing or unusable gives `None`/`false`,
//! never a guess.

use super::{Header, Value};

/// Observing frequency: the FREQ axis's value at the first pixel, else RESTFRQ/RESTFREQ/FREQ.
pub fn frequency_hz(h: &Header) -> Option<f64> {
    let naxis = h.i64("NAXIS").unwrap_or(0);
    for i in 1..=naxis {
        let ctype = h.str(&format!("CTYPE{i}")).unwrap_or("");
        if ctype.trim().starts_with("FREQ") {
            let crval = h.f64(&format!("CRVAL{i}"))?;
            let crpix = h.f64(&format!("CRPIX{i}")).unwrap_or(1.0);
            let cdelt = h.f64(&format!("CDELT{i}")).unwrap_or(0.0);
            return Some(crval + (1.0 - crpix) * cdelt);
        }
    }
    ["RESTFRQ", "RESTFREQ", "FREQ"]
        .iter()
        .find_map(|k| h.f64(k))
}

/// Restoring beam in arcsec/deg, and where it came from.
pub struct Beam {
    pub bmaj_arcsec: f64,
    pub bmin_arcsec: f64,
    pub bpa_deg: f64,
    pub source: &'static str,
}

/// Finds the restoring beam: BMAJ/BMIN/BPA keywords, else the last AIPS `HISTORY ... BMAJ= ...
/// BMIN= ... BPA= ...` card (degrees, as AIPS writes them).
pub fn restoring_beam(h: &Header) -> Option<Beam> {
    if let (Some(bmaj), Some(bmin)) = (h.f64("BMAJ"), h.f64("BMIN"))
        && bmaj > 0.0
        && bmin > 0.0
    {
        return Some(Beam {
            bmaj_arcsec: bmaj * 3600.0,
            bmin_arcsec: bmin * 3600.0,
            bpa_deg: h.f64("BPA").unwrap_or(0.0),
            source: "header",
        });
    }
    let mut found = None;
    for text in h.history() {
        let upper = text.to_ascii_uppercase();
        if let (Some(bmaj), Some(bmin)) = (
            history_value(&upper, "BMAJ="),
            history_value(&upper, "BMIN="),
        ) && bmaj > 0.0
            && bmin > 0.0
        {
            found = Some(Beam {
                bmaj_arcsec: bmaj * 3600.0,
                bmin_arcsec: bmin * 3600.0,
                bpa_deg: history_value(&upper, "BPA=").unwrap_or(0.0),
                source: "history",
            });
        }
    }
    found
}

fn history_value(text: &str, key: &str) -> Option<f64> {
    let start = text.find(key)? + key.len();
    let rest = text[start..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'E' | 'D')))
        .unwrap_or(rest.len());
    rest[..end].replace('D', "E").parse().ok()
}

/// Whether the image is already primary-beam corrected: a PBCOR keyword, else a HISTORY card
/// from a task that corrects for the beam (linmos, pbcor, AIPS PBCOR).
pub fn is_pb_corrected(h: &Header) -> bool {
    if let Some(v) = h.get("PBCOR") {
        return match v {
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Str(s) => matches!(s.trim().to_ascii_uppercase().as_str(), "T" | "TRUE" | "YES"),
            _ => false,
        };
    }
    h.history().any(|t| {
        let u = t.to_ascii_uppercase();
        u.contains("PBCOR") || u.contains("LINMOS")
    })
}
