//! World coordinates: pixel <-> sky for the projections and frames radio astronomers have.
//!
//! Owns: parsing the celestial WCS of a FITS header the way WCSLIB/astropy do (CDELT+PC, CD, or
//! AIPS CDELT+CROTA2; CUNIT; LONPOLE/LATPOLE; PV2_m; NCP as slant SIN), the projections SIN (with
//! PV2_1/PV2_2), NCP, TAN, ARC, ZEA, STG, CAR, MER, CEA, SFL, AIT, the frames ICRS, FK5 J2000, FK4
//! (B1950 or other Besselian equinoxes, with E-terms) and Galactic, and writing the WCS back as cards.
//!
//! Invariants:
//! - Pixel coordinates in this API are 0-based (numpy convention); the 1-based FITS CRPIX only
//!   appears in headers ([`Wcs::from_header`], [`Wcs::to_cards`]).
//! - Angles are degrees; longitudes come back in [0, 360).
//! - Points outside a projection's domain give `None`, never NaN inside `Some`.
//! - Celestial axes must be FITS axes 1 (longitude) and 2 (latitude); others are ignored.
//! - A `Wcs` holds no heap data used per call: transforms do not allocate.

mod frames;
mod proj;

pub use frames::{Frame, from_icrs, separation_deg, to_icrs};

use crate::fits::{Card, Header, Value};
use frames::FrameXform;
use proj::{Proj, Rotation};

/// Why a header's WCS cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WcsError {
    #[error(
        "no celestial axes: CTYPE1 = {ctype1:?}, CTYPE2 = {ctype2:?}; axes 1 and 2 must be a \
         longitude/latitude pair such as RA---SIN/DEC--SIN or GLON-SIN/GLAT-SIN"
    )]
    NoCelestialAxes { ctype1: String, ctype2: String },
    #[error(
        "celestial axes are in an unsupported order: CTYPE1 = {ctype1:?}, CTYPE2 = {ctype2:?}; \
         axis 1 must be longitude and axis 2 latitude (transpose the image first)"
    )]
    SwappedAxes { ctype1: String, ctype2: String },
    #[error(
        "unsupported projection {0:?}; supported: SIN, NCP, TAN, ARC, ZEA, STG, CAR, MER, CEA, SFL, \
         AIT (no SIP/TPV distortions); regrid the image to one of these first"
    )]
    UnsupportedProjection(String),
    #[error("unsupported celestial frame: {0}")]
    UnsupportedFrame(String),
    #[error("header keyword {key} is missing or not a number; the WCS needs it")]
    MissingKeyword { key: String },
    #[error("header keyword {key} has an invalid value: {reason}")]
    BadKeyword { key: String, reason: String },
    #[error(
        "singular pixel-to-world matrix (determinant {det:e}); check CDELTi/PCi_j/CDi_j/CROTA2"
    )]
    SingularMatrix { det: f64 },
    #[error(
        "the reference point ({lon}, {lat}) with LONPOLE/LATPOLE gives no valid celestial pole; \
         check CRVAL2, LONPOLE and LATPOLE"
    )]
    InvalidPole { lon: f64, lat: f64 },
}

/// How the linear transformation was given (kept so that `to_cards` writes the same form).
#[derive(Debug, Clone, Copy, PartialEq)]
enum LinForm {
    /// CDELTi with PCi_j (or CROTA2 converted to PC).
    PcCdelt,
    /// CDi_j.
    Cd,
}

/// A 2-D celestial WCS. Cheap to clone; all transforms are allocation-free.
#[derive(Debug, Clone)]
pub struct Wcs {
    proj: Proj,
    /// Projection code as in CTYPE ("SIN", "NCP", ...).
    code: String,
    /// Coordinate type prefixes ("RA", "DEC") or ("GLON", "GLAT").
    axis_types: (String, String),
    crval: [f64; 2],
    /// FITS (1-based) reference pixel.
    crpix: [f64; 2],
    cdelt: [f64; 2],
    pc: [[f64; 2]; 2],
    lin_form: LinForm,
    cd: [[f64; 2]; 2],
    cd_inv: [[f64; 2]; 2],
    rot: Rotation,
    frame: Frame,
    xform: FrameXform,
}

fn num(h: &Header, key: &str) -> Result<Option<f64>, WcsError> {
    match h.get(key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(WcsError::BadKeyword {
                key: key.to_string(),
                reason: format!("{v:?} is not a finite number"),
            }),
        },
    }
}

/// Splits a CTYPE such as "RA---SIN" into ("RA", Some("SIN")); "RA" alone gives ("RA", None).
/// The part after the code (e.g. "-SIP") is returned separately.
fn split_ctype(ctype: &str) -> (String, Option<String>, String) {
    let c = ctype.trim().to_ascii_uppercase();
    if c.len() >= 8 && c.as_bytes()[4] == b'-' {
        let kind = c[..4].trim_end_matches('-').to_string();
        let code = c[5..8].trim_end_matches('-').to_string();
        let rest = c[8..].to_string();
        (kind, Some(code), rest)
    } else {
        (c.trim_end_matches('-').to_string(), None, String::new())
    }
}

fn is_lon(kind: &str) -> bool {
    kind == "RA" || kind.ends_with("LON") || (kind.len() == 4 && kind.ends_with("LN"))
}

fn is_lat(kind: &str) -> bool {
    kind == "DEC" || kind.ends_with("LAT") || (kind.len() == 4 && kind.ends_with("LT"))
}

fn unit_factor(h: &Header, axis: usize) -> Result<f64, WcsError> {
    let key = format!("CUNIT{axis}");
    let unit = h.str(&key).unwrap_or("").trim().to_ascii_lowercase();
    match unit.as_str() {
        "" | "deg" | "degree" | "degrees" => Ok(1.0),
        "arcmin" => Ok(1.0 / 60.0),
        "arcsec" => Ok(1.0 / 3600.0),
        "mas" => Ok(1.0 / 3_600_000.0),
        "rad" => Ok(180.0 / std::f64::consts::PI),
        other => Err(WcsError::BadKeyword {
            key,
            reason: format!("unit {other:?} is not an angle (use deg, arcmin, arcsec, mas or rad)"),
        }),
    }
}

/// Reads an equinox-like keyword, accepting "J2000"/"B1950" strings as some writers use.
fn equinox_value(h: &Header, key: &str) -> Result<Option<f64>, WcsError> {
    match h.get(key) {
        None => Ok(None),
        Some(Value::Str(s)) => {
            let t = s.trim().trim_start_matches(['J', 'B', 'j', 'b']);
            t.parse::<f64>()
                .map(Some)
                .map_err(|_| WcsError::BadKeyword {
                    key: key.to_string(),
                    reason: format!("{s:?} is not an equinox"),
                })
        }
        Some(_) => num(h, key),
    }
}

fn frame_from_header(h: &Header, lon_kind: &str, ctypes: (&str, &str)) -> Result<Frame, WcsError> {
    match lon_kind {
        "GLON" => return Ok(Frame::Galactic),
        "RA" => {}
        _ => {
            return Err(WcsError::UnsupportedFrame(format!(
                "CTYPE1 = {:?}, CTYPE2 = {:?}: only equatorial (RA/DEC) and Galactic (GLON/GLAT) \
                 axes are supported, not ecliptic, supergalactic or other systems",
                ctypes.0, ctypes.1
            )));
        }
    }
    let radesys = h
        .str("RADESYS")
        .or_else(|| h.str("RADECSYS"))
        .map(|s| s.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let equinox = match equinox_value(h, "EQUINOX")? {
        Some(e) => Some(e),
        None => equinox_value(h, "EPOCH")?,
    };
    let radesys = if radesys.is_empty() {
        match equinox {
            None => "ICRS".to_string(),
            Some(e) if e < 1984.0 => "FK4".to_string(),
            Some(_) => "FK5".to_string(),
        }
    } else {
        radesys
    };
    match radesys.as_str() {
        "ICRS" => Ok(Frame::Icrs),
        "FK5" => {
            let e = equinox.unwrap_or(2000.0);
            if (e - 2000.0).abs() > 1e-9 {
                return Err(WcsError::UnsupportedFrame(format!(
                    "FK5 with EQUINOX = {e}: only J2000 is supported; precess the header to J2000"
                )));
            }
            Ok(Frame::Fk5 { equinox: 2000.0 })
        }
        "FK4" => Ok(Frame::Fk4 {
            equinox: equinox.unwrap_or(1950.0),
        }),
        other => Err(WcsError::UnsupportedFrame(format!(
            "RADESYS = {other:?} (CTYPE1 = {:?}); supported: ICRS, FK5 (J2000), FK4",
            ctypes.0
        ))),
    }
}

fn proj_from_code(
    code: &str,
    pv: &dyn Fn(usize) -> Option<f64>,
    lat0: f64,
) -> Result<Proj, WcsError> {
    Ok(match code {
        "SIN" => Proj::Sin {
            xi: pv(1).unwrap_or(0.0),
            eta: pv(2).unwrap_or(0.0),
        },
        "NCP" => {
            let s = lat0.to_radians().sin();
            if s == 0.0 {
                return Err(WcsError::BadKeyword {
                    key: "CRVAL2".into(),
                    reason: "NCP projection needs a reference declination away from 0".into(),
                });
            }
            Proj::Sin {
                xi: 0.0,
                eta: lat0.to_radians().cos() / s,
            }
        }
        "TAN" => Proj::Tan,
        "ARC" => Proj::Arc,
        "ZEA" => Proj::Zea,
        "STG" => Proj::Stg,
        "CAR" => Proj::Car,
        "MER" => Proj::Mer,
        "CEA" => {
            let lambda = pv(1).unwrap_or(1.0);
            if !(lambda > 0.0 && lambda <= 1.0) {
                return Err(WcsError::BadKeyword {
                    key: "PV2_1".into(),
                    reason: format!("CEA lambda {lambda} must be in (0, 1]"),
                });
            }
            Proj::Cea { lambda }
        }
        "SFL" | "GLS" => Proj::Sfl,
        "AIT" => Proj::Ait,
        other => return Err(WcsError::UnsupportedProjection(other.to_string())),
    })
}

fn invert(m: &[[f64; 2]; 2]) -> Result<[[f64; 2]; 2], WcsError> {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let scale = m.iter().flatten().fold(0.0_f64, |a, v| a.max(v.abs()));
    if !det.is_finite() || det == 0.0 || det.abs() < 1e-14 * scale * scale {
        return Err(WcsError::SingularMatrix { det });
    }
    Ok([
        [m[1][1] / det, -m[0][1] / det],
        [-m[1][0] / det, m[0][0] / det],
    ])
}

impl Wcs {
    /// Reads the celestial WCS of a FITS header (any NAXIS; celestial axes must be axes 1 (lon)
    /// and 2 (lat); other axes such as FREQ/STOKES after them are ignored).
    pub fn from_header(h: &Header) -> Result<Wcs, WcsError> {
        let ctype1 = h.str("CTYPE1").unwrap_or("").trim().to_string();
        let ctype2 = h.str("CTYPE2").unwrap_or("").trim().to_string();
        let (k1, code1, rest1) = split_ctype(&ctype1);
        let (k2, code2, rest2) = split_ctype(&ctype2);
        if is_lat(&k1) && is_lon(&k2) {
            return Err(WcsError::SwappedAxes { ctype1, ctype2 });
        }
        if !(is_lon(&k1) && is_lat(&k2)) {
            return Err(WcsError::NoCelestialAxes { ctype1, ctype2 });
        }
        let pair_ok = (k1 == "RA" && k2 == "DEC")
            || (k1.len() == 4
                && k2.len() == 4
                && k1[..k1.len() - 3] == k2[..k2.len() - 3]
                && k1.ends_with("LON")
                && k2.ends_with("LAT"))
            || (k1.len() == 4 && k2.len() == 4 && k1[..2] == k2[..2] && k1.ends_with("LN"));
        if !pair_ok {
            return Err(WcsError::NoCelestialAxes { ctype1, ctype2 });
        }
        let code = match (&code1, &code2) {
            (Some(a), Some(b)) if a == b => a.clone(),
            (Some(a), Some(b)) => {
                return Err(WcsError::UnsupportedProjection(format!(
                    "CTYPE1 = {ctype1:?} and CTYPE2 = {ctype2:?} name different projections ({a} vs {b})"
                )));
            }
            _ => {
                return Err(WcsError::UnsupportedProjection(format!(
                    "CTYPE1 = {ctype1:?}, CTYPE2 = {ctype2:?} carry no projection code"
                )));
            }
        };
        if !rest1.is_empty() || !rest2.is_empty() {
            return Err(WcsError::UnsupportedProjection(format!(
                "{ctype1}/{ctype2} (distortion convention {}{})",
                rest1, rest2
            )));
        }
        let frame = frame_from_header(h, &k1, (&ctype1, &ctype2))?;

        let u1 = unit_factor(h, 1)?;
        let u2 = unit_factor(h, 2)?;
        let crval1 = num(h, "CRVAL1")?.unwrap_or(0.0) * u1;
        let crval2 = num(h, "CRVAL2")?.unwrap_or(0.0) * u2;
        let crpix = [
            num(h, "CRPIX1")?.unwrap_or(0.0),
            num(h, "CRPIX2")?.unwrap_or(0.0),
        ];
        let any = |keys: &[&str]| keys.iter().any(|k| h.contains(k));
        let has_pc = any(&[
            "PC1_1", "PC1_2", "PC2_1", "PC2_2", "PC001001", "PC001002", "PC002001", "PC002002",
        ]);
        let has_cd = any(&[
            "CD1_1", "CD1_2", "CD2_1", "CD2_2", "CD001001", "CD001002", "CD002001", "CD002002",
        ]);
        let elem = |a: &str, b: &str, default: f64| -> Result<f64, WcsError> {
            Ok(match num(h, a)? {
                Some(v) => v,
                None => num(h, b)?.unwrap_or(default),
            })
        };
        let (lin_form, cdelt, pc) = if has_pc || !has_cd {
            let cdelt = [
                num(h, "CDELT1")?.unwrap_or(1.0) * u1,
                num(h, "CDELT2")?.unwrap_or(1.0) * u2,
            ];
            let pc = if has_pc {
                [
                    [
                        elem("PC1_1", "PC001001", 1.0)?,
                        elem("PC1_2", "PC001002", 0.0)?,
                    ],
                    [
                        elem("PC2_1", "PC002001", 0.0)?,
                        elem("PC2_2", "PC002002", 1.0)?,
                    ],
                ]
            } else if let Some(rho) = num(h, "CROTA2")? {
                // WCSLIB: CROTA of the latitude axis, converted to PC.
                let (s, c) = rho.to_radians().sin_cos();
                if cdelt[0] == 0.0 || cdelt[1] == 0.0 {
                    return Err(WcsError::SingularMatrix { det: 0.0 });
                }
                [[c, -s * cdelt[1] / cdelt[0]], [s * cdelt[0] / cdelt[1], c]]
            } else {
                [[1.0, 0.0], [0.0, 1.0]]
            };
            (LinForm::PcCdelt, cdelt, pc)
        } else {
            let pc = [
                [
                    elem("CD1_1", "CD001001", 0.0)? * u1,
                    elem("CD1_2", "CD001002", 0.0)? * u1,
                ],
                [
                    elem("CD2_1", "CD002001", 0.0)? * u2,
                    elem("CD2_2", "CD002002", 0.0)? * u2,
                ],
            ];
            (LinForm::Cd, [1.0, 1.0], pc)
        };
        let pv = |m: usize| -> Option<f64> {
            num(h, &format!("PV2_{m}"))
                .ok()
                .flatten()
                .or_else(|| num(h, &format!("PROJP{m}")).ok().flatten())
        };
        for m in 1..=2 {
            if num(h, &format!("PV1_{m}"))?.is_some() {
                return Err(WcsError::UnsupportedProjection(format!(
                    "{code} with PV1_{m} (a moved fiducial point) is not supported"
                )));
            }
        }
        let lonpole = match num(h, "LONPOLE")? {
            Some(v) => Some(v),
            None => num(h, "PV1_3")?,
        };
        let latpole = match num(h, "LATPOLE")? {
            Some(v) => Some(v),
            None => num(h, "PV1_4")?,
        };
        let proj = proj_from_code(&code, &pv, crval2)?;
        let axis_types = (k1, k2);
        Wcs::build(
            proj,
            code,
            axis_types,
            [crval1, crval2],
            crpix,
            cdelt,
            pc,
            lin_form,
            lonpole,
            latpole,
            frame,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        proj: Proj,
        code: String,
        axis_types: (String, String),
        crval: [f64; 2],
        crpix: [f64; 2],
        cdelt: [f64; 2],
        pc: [[f64; 2]; 2],
        lin_form: LinForm,
        lonpole: Option<f64>,
        latpole: Option<f64>,
        frame: Frame,
    ) -> Result<Wcs, WcsError> {
        if !(crval[1] >= -90.0 && crval[1] <= 90.0) {
            return Err(WcsError::BadKeyword {
                key: "CRVAL2".into(),
                reason: format!("latitude {} is outside [-90, 90]", crval[1]),
            });
        }
        let cd = [
            [cdelt[0] * pc[0][0], cdelt[0] * pc[0][1]],
            [cdelt[1] * pc[1][0], cdelt[1] * pc[1][1]],
        ];
        let cd_inv = invert(&cd)?;
        let rot =
            Rotation::new(crval[0], crval[1], proj.theta0(), lonpole, latpole).map_err(|_| {
                WcsError::InvalidPole {
                    lon: crval[0],
                    lat: crval[1],
                }
            })?;
        Ok(Wcs {
            proj,
            code,
            axis_types,
            crval,
            crpix,
            cdelt,
            pc,
            lin_form,
            cd,
            cd_inv,
            rot,
            frame,
            xform: FrameXform::new(frame),
        })
    }

    /// A simple grid for output mosaics: projection code ("SIN", "TAN", "CAR", "ZEA", ...),
    /// reference world position (deg, in `frame`) at the 0-based reference pixel, pixel size
    /// (deg; cdelt1 usually negative), frame.
    pub fn new(
        proj: &str,
        crval: (f64, f64),
        crpix0: (f64, f64),
        cdelt: (f64, f64),
        frame: Frame,
    ) -> Result<Wcs, WcsError> {
        let code = proj.trim().to_ascii_uppercase();
        let p = proj_from_code(&code, &|_| None, crval.1)?;
        let axis_types = match frame {
            Frame::Galactic => ("GLON".to_string(), "GLAT".to_string()),
            _ => ("RA".to_string(), "DEC".to_string()),
        };
        if let Frame::Fk5 { equinox } = frame
            && (equinox - 2000.0).abs() > 1e-9
        {
            return Err(WcsError::UnsupportedFrame(format!(
                "FK5 with equinox {equinox}: only J2000 is supported"
            )));
        }
        Wcs::build(
            p,
            code,
            axis_types,
            [crval.0, crval.1],
            [crpix0.0 + 1.0, crpix0.1 + 1.0],
            [cdelt.0, cdelt.1],
            [[1.0, 0.0], [0.0, 1.0]],
            LinForm::PcCdelt,
            None,
            None,
            frame,
        )
    }

    pub fn frame(&self) -> Frame {
        self.frame
    }

    /// Projection code as in CTYPE: "SIN", "NCP", "TAN", ...
    pub fn projection(&self) -> &str {
        &self.code
    }

    /// Reference world position (deg, in the WCS's own frame).
    pub fn crval(&self) -> (f64, f64) {
        (self.crval[0], self.crval[1])
    }

    /// 0-based reference pixel.
    pub fn crpix0(&self) -> (f64, f64) {
        (self.crpix[0] - 1.0, self.crpix[1] - 1.0)
    }

    /// The linear pixel -> intermediate world matrix (deg per pixel), CD = diag(CDELT) * PC.
    pub fn cd_matrix(&self) -> [[f64; 2]; 2] {
        self.cd
    }

    /// 0-based pixel -> world (deg, own frame; longitude in [0, 360)).
    pub fn pix_to_world(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        if !(x.is_finite() && y.is_finite()) {
            return None;
        }
        let dx = x + 1.0 - self.crpix[0];
        let dy = y + 1.0 - self.crpix[1];
        let ix = self.cd[0][0] * dx + self.cd[0][1] * dy;
        let iy = self.cd[1][0] * dx + self.cd[1][1] * dy;
        let (phi, theta) = self.proj.x2s(ix, iy)?;
        let (lon, lat) = self.rot.native_to_celestial(phi, theta);
        (lon.is_finite() && lat.is_finite()).then_some((lon, lat))
    }

    /// World (deg, own frame) -> 0-based pixel.
    pub fn world_to_pix(&self, lon: f64, lat: f64) -> Option<(f64, f64)> {
        if !(lon.is_finite() && lat.is_finite()) || lat.abs() > 90.0 {
            return None;
        }
        let (phi, theta) = self.rot.celestial_to_native(lon, lat);
        let (ix, iy) = self.proj.s2x(phi, theta)?;
        let dx = self.cd_inv[0][0] * ix + self.cd_inv[0][1] * iy;
        let dy = self.cd_inv[1][0] * ix + self.cd_inv[1][1] * iy;
        let x = dx + self.crpix[0] - 1.0;
        let y = dy + self.crpix[1] - 1.0;
        (x.is_finite() && y.is_finite()).then_some((x, y))
    }

    /// 0-based pixel -> ICRS (deg, RA in [0, 360)).
    pub fn pix_to_icrs(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let (lon, lat) = self.pix_to_world(x, y)?;
        Some(self.xform.forward(lon, lat))
    }

    /// ICRS (deg) -> 0-based pixel.
    pub fn icrs_to_pix(&self, ra: f64, dec: f64) -> Option<(f64, f64)> {
        if !(ra.is_finite() && dec.is_finite()) || dec.abs() > 90.0 {
            return None;
        }
        let (lon, lat) = self.xform.inverse(ra, dec);
        self.world_to_pix(lon, lat)
    }

    /// Mean pixel scale in degrees: sqrt(|det CD|).
    pub fn pixel_scale_deg(&self) -> f64 {
        (self.cd[0][0] * self.cd[1][1] - self.cd[0][1] * self.cd[1][0])
            .abs()
            .sqrt()
    }

    /// The cards describing this 2-D celestial WCS, for writing output files: CTYPE1/2, CUNIT1/2,
    /// CRVAL1/2, CRPIX1/2 (1-based), CDELT1/2 + PCi_j (or CDi_j if read so), PV2_m if any,
    /// LONPOLE/LATPOLE, RADESYS/EQUINOX.
    pub fn to_cards(&self) -> Vec<Card> {
        let ct = |kind: &str| {
            let dashes = "-".repeat(5 - kind.len().min(4));
            format!("{kind}{dashes}{}", self.code)
        };
        let f = Value::Float;
        let mut cards = vec![
            Card::new("CTYPE1", Value::Str(ct(&self.axis_types.0)), "projection"),
            Card::new("CTYPE2", Value::Str(ct(&self.axis_types.1)), "projection"),
            Card::new("CUNIT1", Value::Str("deg".into()), ""),
            Card::new("CUNIT2", Value::Str("deg".into()), ""),
            Card::new(
                "CRVAL1",
                f(self.crval[0]),
                "world coordinate at reference pixel",
            ),
            Card::new(
                "CRVAL2",
                f(self.crval[1]),
                "world coordinate at reference pixel",
            ),
            Card::new("CRPIX1", f(self.crpix[0]), "reference pixel (1-based)"),
            Card::new("CRPIX2", f(self.crpix[1]), "reference pixel (1-based)"),
        ];
        match self.lin_form {
            LinForm::PcCdelt => {
                cards.push(Card::new("CDELT1", f(self.cdelt[0]), "deg per pixel"));
                cards.push(Card::new("CDELT2", f(self.cdelt[1]), "deg per pixel"));
                if self.pc != [[1.0, 0.0], [0.0, 1.0]] {
                    for (i, row) in self.pc.iter().enumerate() {
                        for (j, v) in row.iter().enumerate() {
                            cards.push(Card::new(&format!("PC{}_{}", i + 1, j + 1), f(*v), ""));
                        }
                    }
                }
            }
            LinForm::Cd => {
                for (i, row) in self.cd.iter().enumerate() {
                    for (j, v) in row.iter().enumerate() {
                        cards.push(Card::new(&format!("CD{}_{}", i + 1, j + 1), f(*v), ""));
                    }
                }
            }
        }
        match self.proj {
            Proj::Sin { xi, eta } if self.code == "SIN" && (xi != 0.0 || eta != 0.0) => {
                cards.push(Card::new("PV2_1", f(xi), "SIN xi"));
                cards.push(Card::new("PV2_2", f(eta), "SIN eta"));
            }
            Proj::Cea { lambda } if lambda != 1.0 => {
                cards.push(Card::new("PV2_1", f(lambda), "CEA lambda"));
            }
            _ => {}
        }
        cards.push(Card::new(
            "LONPOLE",
            f(self.rot.phip),
            "native longitude of celestial pole",
        ));
        cards.push(Card::new(
            "LATPOLE",
            f(self.rot.latp),
            "celestial latitude of native pole",
        ));
        match self.frame {
            Frame::Icrs => cards.push(Card::new("RADESYS", Value::Str("ICRS".into()), "")),
            Frame::Fk5 { equinox } => {
                cards.push(Card::new("RADESYS", Value::Str("FK5".into()), ""));
                cards.push(Card::new("EQUINOX", f(equinox), "Julian"));
            }
            Frame::Fk4 { equinox } => {
                cards.push(Card::new("RADESYS", Value::Str("FK4".into()), ""));
                cards.push(Card::new("EQUINOX", f(equinox), "Besselian"));
            }
            Frame::Galactic => {}
        }
        cards
    }
}

#[cfg(test)]
mod tests;
