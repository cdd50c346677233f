//! What a header says about the observation, read the same way by ingest and the mosaic engine:
//! observing frequency, restoring beam (keywords or AIPS HISTORY) and primary-beam correction.
//!
//! Invariant: each fact has one reader; a value that is missing or unusable gives `None`/`false`,
//! never a guess.

use super::{Header, Value};

/// Speed of light, m/s (for wavelength and velocity axes).
const C_M_S: f64 = 299_792_458.0;

/// The highest axis number the header describes: NAXIS, WCSAXES, or the highest CTYPEn present.
/// Miriad, AIPS and WSClean write 2-D images whose frequency sits on a third, degenerate axis
/// (`NAXIS = 2`, `CTYPE3 = 'FREQ-LSR'`), which astropy reads; so must we.
fn wcs_axes(h: &Header) -> i64 {
    let declared = h
        .i64("NAXIS")
        .unwrap_or(0)
        .max(h.i64("WCSAXES").unwrap_or(0));
    let described = (1..=9)
        .filter(|i| h.contains(&format!("CTYPE{i}")))
        .max()
        .unwrap_or(0);
    declared.max(described)
}

/// Observing frequency in Hz: the spectral axis's value at its first pixel (any FREQ-*, a
/// wavelength axis WAVE/LAMBDA as c/λ, a velocity axis VRAD/VOPT/FELO/VELO converted with
/// RESTFRQ), degenerate axes beyond NAXIS included; else RESTFRQ/RESTFREQ/FREQ/OBSFREQ.
pub fn frequency_hz(h: &Header) -> Option<f64> {
    for i in 1..=wcs_axes(h) {
        let ctype = h
            .str(&format!("CTYPE{i}"))
            .unwrap_or("")
            .trim()
            .to_ascii_uppercase();
        let value = || -> Option<f64> {
            let crval = h.f64(&format!("CRVAL{i}"))?;
            let crpix = h.f64(&format!("CRPIX{i}")).unwrap_or(1.0);
            let cdelt = h.f64(&format!("CDELT{i}")).unwrap_or(0.0);
            Some(crval + (1.0 - crpix) * cdelt)
        };
        let rest = || h.f64("RESTFRQ").or_else(|| h.f64("RESTFREQ"));
        let kind = ctype.split('-').next().unwrap_or("");
        let f = match kind {
            "FREQ" => value(),
            "WAVE" | "LAMBDA" | "WAVELEN" | "AWAV" => {
                value().filter(|l| *l > 0.0).map(|l| C_M_S / l)
            }
            "VRAD" => value().zip(rest()).map(|(v, f0)| f0 * (1.0 - v / C_M_S)),
            "VOPT" | "FELO" | "ZOPT" => value().zip(rest()).map(|(v, f0)| {
                if kind == "ZOPT" {
                    f0 / (1.0 + v)
                } else {
                    f0 / (1.0 + v / C_M_S)
                }
            }),
            "VELO" | "VELOCITY" => value().zip(rest()).map(|(v, f0)| {
                let b = v / C_M_S;
                f0 * ((1.0 - b) / (1.0 + b)).sqrt()
            }),
            _ => continue,
        };
        if let Some(f) = f.filter(|f| f.is_finite() && *f > 0.0) {
            return Some(f);
        }
    }
    ["RESTFRQ", "RESTFREQ", "FREQ", "OBSFREQ"]
        .iter()
        .find_map(|k| h.f64(k))
        .filter(|f| f.is_finite() && *f > 0.0)
}

/// The pointing centre the header records (OBSRA/OBSDEC, as AIPS, Miriad and CASA write them;
/// else RA_PNT/DEC_PNT), in degrees, in the equatorial frame of the image's equinox. `None` when
/// absent, and for AIPS's blank (0, 0) unless the reference value is (0, 0) as well.
pub fn pointing_deg(h: &Header) -> Option<(f64, f64)> {
    let pair = |a: &str, b: &str| h.f64(a).zip(h.f64(b));
    let (ra, dec) = pair("OBSRA", "OBSDEC").or_else(|| pair("RA_PNT", "DEC_PNT"))?;
    if !(ra.is_finite() && dec.is_finite() && (-90.0..=90.0).contains(&dec)) {
        return None;
    }
    let crval = pair("CRVAL1", "CRVAL2").unwrap_or((f64::NAN, f64::NAN));
    if ra == 0.0 && dec == 0.0 && !(crval.0 == 0.0 && crval.1 == 0.0) {
        return None;
    }
    Some((ra.rem_euclid(360.0), dec))
}

/// Why the header says the image is a mosaic or a survey coadd (many pointings combined, already
/// primary-beam corrected), if it does: a mosaicking task in HISTORY (Miriad LINMOS, AIPS
/// FLATN/LTESS/VTESS/IMERG, CASA linearmosaic, SWarp, Montage), an AIPS image class of one
/// (IMCLASS='COADD', 'FLATN', 'IMERG', 'LINMOS'), a survey's postage-stamp server (NVSS, FIRST,
/// SUMSS, VLASS), NCOMBINE/NINPUTS > 1.
pub fn coadd_evidence(h: &Header) -> Option<String> {
    for key in ["NCOMBINE", "NINPUTS"] {
        if let Some(n) = h.i64(key).filter(|n| *n > 1) {
            return Some(format!("{key} = {n}"));
        }
    }
    let origin = h.str("ORIGIN").unwrap_or("").to_ascii_uppercase();
    for survey in ["POSTAGE", "NVSS", "SUMSS", "VLASS"] {
        if origin.contains(survey) {
            return Some(format!(
                "ORIGIN = '{}'",
                h.str("ORIGIN").unwrap_or("").trim()
            ));
        }
    }
    // Multi-word needles match the space-normalised text; single words match whole words only.
    const TASKS: &[(&str, &str)] = &[
        ("LINMOS MOSAIC", "a contimg linmos mosaic"),
        ("IMCLASS='COADD'", "AIPS image class COADD"),
        ("IMCLASS='FLATN'", "AIPS image class FLATN"),
        ("IMCLASS='IMERG'", "AIPS image class IMERG"),
        ("IMCLASS='LINMOS'", "AIPS image class LINMOS"),
        ("NRAO VLA SKY SURVEY", "an NVSS image"),
        ("FIRST VLA SURVEY", "a FIRST survey image"),
        ("LINMOS", "Miriad LINMOS"),
        ("FLATN", "AIPS FLATN"),
        ("LTESS", "AIPS LTESS"),
        ("VTESS", "AIPS VTESS"),
        ("LINEARMOSAIC", "CASA linearmosaic"),
        ("SWARP", "SWarp"),
        ("MONTAGE", "Montage"),
        ("MADD", "Montage mAdd"),
    ];
    for text in h.history() {
        let upper = text.to_ascii_uppercase();
        let spaced = upper.split_whitespace().collect::<Vec<_>>().join(" ");
        let squeezed: String = upper.split_whitespace().collect();
        let words: Vec<&str> = upper
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        for (needle, what) in TASKS {
            let hit = if needle.contains('=') {
                squeezed.contains(needle)
            } else if needle.contains(' ') {
                spaced.contains(needle)
            } else {
                words.contains(needle)
            };
            if hit {
                return Some(format!("HISTORY names {what}"));
            }
        }
    }
    None
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

/// What a header says of primary-beam correction: corrected (and why, in words), or an
/// explicit `PBCOR = F`, which overrides every other hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PbEvidence {
    Corrected(String),
    NotCorrected,
}

/// Why the header says the pixels are already primary-beam corrected, if it does: a PBCOR card
/// (its value decides either way), else a HISTORY card of a task that corrects for the beam
/// (AIPS PBCOR, CASA impbcor/pbcor, Miriad LINMOS); `None` when the header does not say.
pub fn pb_corrected_evidence(h: &Header) -> Option<PbEvidence> {
    if let Some(v) = h.get("PBCOR") {
        let yes = match v {
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Str(s) => matches!(s.trim().to_ascii_uppercase().as_str(), "T" | "TRUE" | "YES"),
            _ => false,
        };
        return Some(if yes {
            PbEvidence::Corrected("PBCOR = T".into())
        } else {
            PbEvidence::NotCorrected
        });
    }
    h.history().find_map(|t| {
        let u = t.to_ascii_uppercase();
        [
            ("IMPBCOR", "CASA impbcor"),
            ("PBCOR", "PBCOR"),
            ("LINMOS", "Miriad LINMOS"),
        ]
        .iter()
        .find(|(needle, _)| u.contains(needle))
        .map(|(_, what)| PbEvidence::Corrected(format!("HISTORY names {what}")))
    })
}

/// Whether the header says the image is already primary-beam corrected.
pub fn is_pb_corrected(h: &Header) -> bool {
    matches!(pb_corrected_evidence(h), Some(PbEvidence::Corrected(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(cards: &[(&str, Value)]) -> Header {
        let mut h = Header::new();
        for (k, v) in cards {
            h.set(k, v.clone(), "");
        }
        h
    }

    #[test]
    fn frequency_comes_from_a_degenerate_spectral_axis() {
        use Value::{Float, Int, Str};
        // Miriad/ATCA: NAXIS = 2 with the frequency on axis 3 (FREQ-LSR).
        let h = header(&[
            ("NAXIS", Int(2)),
            ("CTYPE3", Str("FREQ-LSR".into())),
            ("CRVAL3", Float(1.4e9)),
            ("CRPIX3", Float(1.0)),
            ("CDELT3", Float(8e6)),
        ]);
        assert_eq!(frequency_hz(&h), Some(1.4e9));
        // MAGPIS: a wavelength axis in metres.
        let h = header(&[
            ("NAXIS", Int(2)),
            ("CTYPE3", Str("LAMBDA".into())),
            ("CRVAL3", Float(0.2)),
        ]);
        assert!((frequency_hz(&h).unwrap() - C_M_S / 0.2).abs() < 1.0);
        // A radio-velocity axis needs the rest frequency.
        let h = header(&[
            ("NAXIS", Int(2)),
            ("CTYPE3", Str("VRAD".into())),
            ("CRVAL3", Float(0.0)),
            ("RESTFRQ", Float(1.420405752e9)),
        ]);
        assert_eq!(frequency_hz(&h), Some(1.420405752e9));
        let h = header(&[
            ("NAXIS", Int(2)),
            ("CTYPE3", Str("VRAD".into())),
            ("CRVAL3", Float(0.0)),
        ]);
        assert_eq!(frequency_hz(&h), None);
        // The axis wins over RESTFRQ; STOKES and others are skipped.
        let h = header(&[
            ("NAXIS", Int(4)),
            ("CTYPE3", Str("STOKES".into())),
            ("CRVAL3", Float(1.0)),
            ("CTYPE4", Str("FREQ".into())),
            ("CRVAL4", Float(3.0e9)),
            ("RESTFRQ", Float(1.0e9)),
        ]);
        assert_eq!(frequency_hz(&h), Some(3.0e9));
    }

    #[test]
    fn pointing_ignores_the_aips_blank_but_not_a_real_origin() {
        use Value::Float;
        let h = header(&[("OBSRA", Float(18.1)), ("OBSDEC", Float(-45.4))]);
        assert_eq!(pointing_deg(&h), Some((18.1, -45.4)));
        let h = header(&[
            ("OBSRA", Float(0.0)),
            ("OBSDEC", Float(0.0)),
            ("CRVAL1", Float(150.0)),
            ("CRVAL2", Float(2.0)),
        ]);
        assert_eq!(pointing_deg(&h), None);
        let h = header(&[
            ("OBSRA", Float(0.0)),
            ("OBSDEC", Float(0.0)),
            ("CRVAL1", Float(0.0)),
            ("CRVAL2", Float(0.0)),
        ]);
        assert_eq!(pointing_deg(&h), Some((0.0, 0.0)));
    }

    #[test]
    fn coadds_are_recognised_by_their_history_and_origin() {
        let mut h = Header::new();
        assert!(coadd_evidence(&h).is_none());
        h.push_history("AIPS   IMNAME='10510+30456E' IMCLASS='COADD' IMSEQ=   1     /");
        assert!(coadd_evidence(&h).unwrap().contains("COADD"));
        let mut h = Header::new();
        h.push_history("LINMOS: Miriad linmos: Revision 1.23");
        assert!(coadd_evidence(&h).unwrap().contains("LINMOS"));
        let h = header(&[(
            "ORIGIN",
            Value::Str("postage 1.2.1 (NVSS postage stamp)".into()),
        )]);
        assert!(coadd_evidence(&h).is_some());
        // A single pointing's CLEAN history is not a coadd.
        let mut h = Header::new();
        h.push_history("AIPS   CLEAN BMAJ=  5.0000E-02 BMIN=  5.0000E-02 BPA=   0.00");
        h.push_history("wsclean -size 8192 8192 -scale 1.6asec -name B1934");
        assert!(coadd_evidence(&h).is_none());
    }

    #[test]
    fn an_explicit_pbcor_card_decides() {
        let mut h = header(&[("PBCOR", Value::Bool(false))]);
        h.push_history("LINMOS: something");
        assert!(!is_pb_corrected(&h));
        let mut h = Header::new();
        h.push_history("impbcor(imagename='x.image')");
        assert!(is_pb_corrected(&h));
    }
}
