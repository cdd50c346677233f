//! Projection math (plane <-> native sphere) and the native <-> celestial rotation, following
//! WCSLIB's prj.c / sph.c / cel.c formulas and domain checks (astropy's defaults: bounds 7).
//!
//! Invariants: all angles in degrees; plane coordinates are intermediate world coordinates in
//! degrees (r0 = 180/pi); a point outside a projection's domain gives `None`, never NaN.

const R2D: f64 = 180.0 / std::f64::consts::PI;
const D2R: f64 = std::f64::consts::PI / 180.0;
const TOL: f64 = 1.0e-13;

fn sind(a: f64) -> f64 {
    (a * D2R).sin()
}
fn cosd(a: f64) -> f64 {
    (a * D2R).cos()
}
fn atan2d(y: f64, x: f64) -> f64 {
    y.atan2(x) * R2D
}
fn asind(v: f64) -> f64 {
    v.asin() * R2D
}
fn acosd(v: f64) -> f64 {
    v.acos() * R2D
}

/// A supported projection and its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Proj {
    /// Slant orthographic: PV2_1 = xi, PV2_2 = eta (both 0 for plain SIN; NCP has eta = cot dec0).
    Sin {
        xi: f64,
        eta: f64,
    },
    Tan,
    Arc,
    Zea,
    Stg,
    Car,
    Mer,
    /// Cylindrical equal area, PV2_1 = lambda.
    Cea {
        lambda: f64,
    },
    Sfl,
    Ait,
}

impl Proj {
    /// Native latitude of the fiducial point (theta0).
    pub(crate) fn theta0(&self) -> f64 {
        match self {
            Proj::Sin { .. } | Proj::Tan | Proj::Arc | Proj::Zea | Proj::Stg => 90.0,
            _ => 0.0,
        }
    }

    /// Plane (x, y) -> native (phi, theta).
    pub(crate) fn x2s(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let (phi, theta) = match *self {
            Proj::Sin { xi, eta } => sin_x2s(x, y, xi, eta)?,
            Proj::Tan => zenithal_x2s(x, y, |r| Some(atan2d(R2D, r)))?,
            Proj::Arc => zenithal_x2s(x, y, |r| Some(90.0 - r))?,
            Proj::Zea => zenithal_x2s(x, y, zea_theta)?,
            Proj::Stg => zenithal_x2s(x, y, |r| Some(90.0 - 2.0 * (r / (2.0 * R2D)).atan() * R2D))?,
            Proj::Car => (x, y),
            Proj::Mer => (x, 2.0 * (y / R2D).exp().atan() * R2D - 90.0),
            Proj::Cea { lambda } => (x, cea_theta(y, lambda)?),
            Proj::Sfl => {
                let c = cosd(y);
                let phi = if c == 0.0 { 0.0 } else { x / c };
                (phi, y)
            }
            Proj::Ait => ait_x2s(x, y)?,
        };
        native_bounds(phi, theta)
    }

    /// Native (phi, theta) -> plane (x, y).
    pub(crate) fn s2x(&self, phi: f64, theta: f64) -> Option<(f64, f64)> {
        let (sphi, cphi) = (sind(phi), cosd(phi));
        let out = match *self {
            Proj::Sin { xi, eta } => {
                let t = (90.0 - theta.abs()) * D2R;
                let (z, costhe) = if t < 1.0e-5 {
                    (
                        if theta > 0.0 {
                            t * t / 2.0
                        } else {
                            2.0 - t * t / 2.0
                        },
                        t,
                    )
                } else {
                    (1.0 - sind(theta), cosd(theta))
                };
                let r = R2D * costhe;
                if xi == 0.0 && eta == 0.0 {
                    if theta < 0.0 {
                        return None;
                    }
                    (r * sphi, -r * cphi)
                } else {
                    let z = z * R2D;
                    let limit = -atan2d(xi * sphi - eta * cphi, 1.0);
                    if theta < limit {
                        return None;
                    }
                    (r * sphi + xi * z, -r * cphi + eta * z)
                }
            }
            Proj::Tan => {
                let s = sind(theta);
                if s <= 0.0 {
                    return None;
                }
                let r = R2D * cosd(theta) / s;
                (r * sphi, -r * cphi)
            }
            Proj::Arc => {
                let r = 90.0 - theta;
                (r * sphi, -r * cphi)
            }
            Proj::Zea => {
                let r = 2.0 * R2D * sind((90.0 - theta) / 2.0);
                (r * sphi, -r * cphi)
            }
            Proj::Stg => {
                let s = 1.0 + sind(theta);
                if s == 0.0 {
                    return None;
                }
                let r = 2.0 * R2D * cosd(theta) / s;
                (r * sphi, -r * cphi)
            }
            Proj::Car => (phi, theta),
            Proj::Mer => {
                if theta <= -90.0 || theta >= 90.0 {
                    return None;
                }
                (phi, R2D * ((90.0 + theta) / 2.0 * D2R).tan().ln())
            }
            Proj::Cea { lambda } => (phi, R2D * sind(theta) / lambda),
            Proj::Sfl => (phi * cosd(theta), theta),
            Proj::Ait => {
                let ct = cosd(theta);
                let w = (2.0 / (1.0 + ct * cosd(phi / 2.0))).sqrt() * R2D;
                (2.0 * w * ct * sind(phi / 2.0), w * sind(theta))
            }
        };
        if out.0.is_finite() && out.1.is_finite() {
            Some(out)
        } else {
            None
        }
    }
}

/// Zenithal projections (TAN, ARC, ZEA, STG): phi from the direction of (x, y), theta from the
/// radius by the projection's own rule (`None` outside its domain).
fn zenithal_x2s(x: f64, y: f64, theta: impl Fn(f64) -> Option<f64>) -> Option<(f64, f64)> {
    let r = x.hypot(y);
    let phi = if r == 0.0 { 0.0 } else { atan2d(x, -y) };
    Some((phi, theta(r)?))
}

/// ZEA: theta from the radius.
fn zea_theta(r: f64) -> Option<f64> {
    let s = r / (2.0 * R2D);
    if s > 1.0 {
        if s - 1.0 < TOL { Some(-90.0) } else { None }
    } else {
        Some(90.0 - 2.0 * asind(s))
    }
}

/// CEA: theta from y.
fn cea_theta(y: f64, lambda: f64) -> Option<f64> {
    let s = y * lambda / R2D;
    if s.abs() > 1.0 {
        if s.abs() - 1.0 < TOL {
            Some(90.0_f64.copysign(s))
        } else {
            None
        }
    } else {
        Some(asind(s))
    }
}

/// SIN, plain (orthographic) or slant (xi, eta not both 0).
fn sin_x2s(x: f64, y: f64, xi: f64, eta: f64) -> Option<(f64, f64)> {
    let x0 = x * D2R;
    let y0 = y * D2R;
    let r2 = x0 * x0 + y0 * y0;
    if xi == 0.0 && eta == 0.0 {
        let phi = if r2 != 0.0 { atan2d(x0, -y0) } else { 0.0 };
        let theta = if r2 < 0.5 {
            acosd(r2.sqrt())
        } else if r2 <= 1.0 {
            asind((1.0 - r2).sqrt())
        } else if r2 <= 1.0 + TOL {
            0.0
        } else {
            return None;
        };
        return Some((phi, theta));
    }
    let xy = x0 * xi + y0 * eta;
    let (theta, z) = if r2 < 1.0e-10 {
        (90.0 - R2D * (r2 / (1.0 + xy)).sqrt(), r2 / 2.0)
    } else {
        let s = slant_sin_root(r2, xy, xi * xi + eta * eta)?;
        (asind(s), 1.0 - s)
    };
    let x1 = -y0 + eta * z;
    let y1 = x0 - xi * z;
    let phi = if x1 == 0.0 && y1 == 0.0 {
        0.0
    } else {
        atan2d(y1, x1)
    };
    Some((phi, theta))
}

/// Slant SIN: sin(theta), the root of WCSLIB's quadratic that lies in [-1, 1] (the larger one
/// unless it exceeds 1 by more than the tolerance).
fn slant_sin_root(r2: f64, xy: f64, w1: f64) -> Option<f64> {
    let a = w1 + 1.0;
    let b = xy - w1;
    let c = r2 - xy - xy + w1 - 1.0;
    let d = b * b - a * c;
    if d < 0.0 {
        return None;
    }
    let d = d.sqrt();
    let s1 = (-b + d) / a;
    let s2 = (-b - d) / a;
    let mut s = s1.max(s2);
    if s > 1.0 {
        if s - 1.0 < TOL {
            s = 1.0;
        } else {
            s = s1.min(s2);
        }
    }
    if s < -1.0 && s + 1.0 > -TOL {
        s = -1.0;
    }
    if !(-1.0..=1.0).contains(&s) {
        return None;
    }
    Some(s)
}

/// AIT (Hammer-Aitoff).
fn ait_x2s(x: f64, y: f64) -> Option<(f64, f64)> {
    let w0 = 2.0 * R2D * R2D;
    let w1 = 1.0 / (2.0 * w0);
    let w2 = w1 / 4.0;
    let w3 = 1.0 / (2.0 * R2D);
    let s = 1.0 - x * x * w2;
    let t = 1.0 - y * y * w1;
    let mut z = s + t - 1.0;
    if z < 0.0 {
        if z < -TOL {
            return None;
        }
        z = 0.0;
    }
    let z = z.sqrt();
    let x0 = 2.0 * z * z - 1.0;
    let y0 = z * x * w3;
    let phi = if x0 == 0.0 && y0 == 0.0 {
        0.0
    } else {
        2.0 * atan2d(y0, x0)
    };
    let mut st = y * z / R2D;
    if st.abs() > 1.0 {
        if st.abs() - 1.0 < TOL {
            st = st.signum();
        } else {
            return None;
        }
    }
    Some((phi, asind(st)))
}

/// WCSLIB prjbchk: native coordinates must lie within the sphere (values past the edge by less
/// than the tolerance are put on it).
fn native_bounds(phi: f64, theta: f64) -> Option<(f64, f64)> {
    if !(phi.is_finite() && theta.is_finite()) {
        return None;
    }
    let phi = if phi < -180.0 {
        if phi < -180.0 - TOL {
            return None;
        }
        -180.0
    } else if phi > 180.0 {
        if phi > 180.0 + TOL {
            return None;
        }
        180.0
    } else {
        phi
    };
    let theta = if theta.abs() > 90.0 {
        if theta.abs() > 90.0 + TOL {
            return None;
        }
        90.0_f64.copysign(theta)
    } else {
        theta
    };
    Some((phi, theta))
}

/// The spherical rotation between native and celestial coordinates (WCSLIB celprm).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rotation {
    /// Celestial longitude of the native pole (alpha_p).
    pub lngp: f64,
    /// Celestial latitude of the native pole (delta_p) = resolved LATPOLE.
    pub latp: f64,
    /// Native longitude of the celestial pole (phi_p) = LONPOLE.
    pub phip: f64,
    cos_e1: f64,
    sin_e1: f64,
}

/// Why a rotation cannot be set up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RotationError {
    NoPole,
}

impl Rotation {
    /// WCSLIB `celset` with phi0 = 0. `lonpole`/`latpole` are the header values if present.
    pub(crate) fn new(
        lng0: f64,
        lat0: f64,
        theta0: f64,
        lonpole: Option<f64>,
        latpole: Option<f64>,
    ) -> Result<Rotation, RotationError> {
        let mut phip = lonpole.unwrap_or_else(|| default_lonpole(lat0, theta0));
        let (lngp, latp) = if theta0 == 90.0 {
            (lng0, lat0)
        } else {
            let latp = pole_latitude(lat0, theta0, phip, latpole.unwrap_or(90.0))?;
            (pole_longitude(lng0, lat0, theta0, phip, latp)?, latp)
        };
        if !phip.is_finite() {
            phip = 180.0;
        }
        let e1 = 90.0 - latp;
        Ok(Rotation {
            lngp,
            latp,
            phip,
            cos_e1: cosd(e1),
            sin_e1: sind(e1),
        })
    }

    /// Native (phi, theta) -> celestial (lng in [0, 360), lat).
    pub(crate) fn native_to_celestial(&self, phi: f64, theta: f64) -> (f64, f64) {
        let dphi = phi - self.phip;
        let (sth, cth) = (sind(theta), cosd(theta));
        let (sdp, cdp) = (sind(dphi), cosd(dphi));
        let mut x = sth * self.sin_e1 - cth * self.cos_e1 * cdp;
        if x.abs() < 1.0e-5 {
            x = -cosd(theta + 90.0 - self.latp) + cth * self.cos_e1 * (1.0 - cdp);
        }
        let y = -cth * sdp;
        let dlng = if x != 0.0 || y != 0.0 {
            atan2d(y, x)
        } else if 90.0 - self.latp < 90.0 {
            dphi + 180.0
        } else {
            -dphi
        };
        let lng = (self.lngp + dlng).rem_euclid(360.0);
        let lng = if lng >= 360.0 { 0.0 } else { lng };
        let z = sth * self.cos_e1 + cth * self.sin_e1 * cdp;
        let lat = if z.abs() > 0.99 {
            acosd(x.hypot(y).min(1.0)).copysign(z)
        } else {
            asind(z)
        };
        (lng, lat)
    }

    /// Celestial (lng, lat) -> native (phi in [-180, 180], theta).
    pub(crate) fn celestial_to_native(&self, lng: f64, lat: f64) -> (f64, f64) {
        let dlng = lng - self.lngp;
        let (slat, clat) = (sind(lat), cosd(lat));
        let (sdl, cdl) = (sind(dlng), cosd(dlng));
        let mut x = slat * self.sin_e1 - clat * self.cos_e1 * cdl;
        if x.abs() < 1.0e-5 {
            x = -cosd(lat + 90.0 - self.latp) + clat * self.cos_e1 * (1.0 - cdl);
        }
        let y = -clat * sdl;
        let dphi = if x != 0.0 || y != 0.0 {
            atan2d(y, x)
        } else if 90.0 - self.latp < 90.0 {
            dlng - 180.0
        } else {
            -dlng
        };
        let mut phi = (self.phip + dphi) % 360.0;
        if phi > 180.0 {
            phi -= 360.0;
        } else if phi < -180.0 {
            phi += 360.0;
        }
        let z = slat * self.cos_e1 + clat * self.sin_e1 * cdl;
        let theta = if z.abs() > 0.99 {
            acosd(x.hypot(y).min(1.0)).copysign(z)
        } else {
            asind(z)
        };
        (phi, theta)
    }
}

/// Native longitude of the fiducial point (WCSLIB's phi0; 0 for every projection here).
const PHI0: f64 = 0.0;
/// Tolerance of WCSLIB's celset.
const TOLC: f64 = 1.0e-10;

/// LONPOLE when the header has none: 180 deg when the reference latitude is below theta0, else 0.
fn default_lonpole(lat0: f64, theta0: f64) -> f64 {
    let mut p = (if lat0 < theta0 { 180.0 } else { 0.0 }) + PHI0;
    if p < -180.0 {
        p += 360.0;
    } else if p > 180.0 {
        p -= 360.0;
    }
    p
}

/// Celestial latitude of the native pole (delta_p) for a projection with theta0 != 90: of the two
/// solutions, the one nearer to `latp` (LATPOLE, default 90) that is valid.
fn pole_latitude(lat0: f64, theta0: f64, phip: f64, latp: f64) -> Result<f64, RotationError> {
    let slat0 = sind(lat0);
    let (sthe0, cthe0) = (sind(theta0), cosd(theta0));
    let (u, v) = if phip == PHI0 {
        (theta0, 90.0 - lat0)
    } else {
        let cphip = cosd(phip - PHI0);
        let x = cthe0 * cphip;
        let y = sthe0;
        let z = x.hypot(y);
        if z == 0.0 {
            if slat0 != 0.0 {
                return Err(RotationError::NoPole);
            }
            // Every latitude is a solution: LATPOLE as given.
            return Ok(latp.clamp(-90.0, 90.0));
        }
        let mut slz = slat0 / z;
        if slz.abs() > 1.0 {
            if slz.abs() - 1.0 < TOLC {
                slz = slz.signum();
            } else {
                return Err(RotationError::NoPole);
            }
        }
        (atan2d(y, x), acosd(slz))
    };
    let wrap = |a: f64| {
        if a > 180.0 {
            a - 360.0
        } else if a < -180.0 {
            a + 360.0
        } else {
            a
        }
    };
    let latp1 = wrap(u + v);
    let latp2 = wrap(u - v);
    let latp = if (latp - latp1).abs() < (latp - latp2).abs() {
        if latp1.abs() < 90.0 + TOLC {
            latp1
        } else {
            latp2
        }
    } else if latp2.abs() < 90.0 + TOLC {
        latp2
    } else {
        latp1
    };
    if latp.abs() < 90.0 + TOLC {
        Ok(latp.clamp(-90.0, 90.0))
    } else {
        // WCSLIB: "no valid solution for latp for these values of phip, phi0, theta0".
        Err(RotationError::NoPole)
    }
}

/// Celestial longitude of the native pole (alpha_p) for a projection with theta0 != 90, given its
/// latitude; in [0, 360] when `lng0` >= 0, else in [-360, 0].
fn pole_longitude(
    lng0: f64,
    lat0: f64,
    theta0: f64,
    phip: f64,
    latp: f64,
) -> Result<f64, RotationError> {
    let (slat0, clat0) = (sind(lat0), cosd(lat0));
    let (sthe0, cthe0) = (sind(theta0), cosd(theta0));
    let sphip = if phip == PHI0 { 0.0 } else { sind(phip - PHI0) };
    let z = cosd(latp) * clat0;
    let mut lp = if z.abs() < TOLC {
        if clat0.abs() < TOLC {
            lng0
        } else if latp > 0.0 {
            lng0 + phip - PHI0 - 180.0
        } else {
            lng0 - phip + PHI0
        }
    } else {
        let x = (sthe0 - sind(latp) * slat0) / z;
        let y = sphip * cthe0 / clat0;
        if x == 0.0 && y == 0.0 {
            return Err(RotationError::NoPole);
        }
        lng0 - atan2d(y, x)
    };
    if lng0 >= 0.0 {
        if lp < 0.0 {
            lp += 360.0;
        } else if lp > 360.0 {
            lp -= 360.0;
        }
    } else if lp > 0.0 {
        lp -= 360.0;
    } else if lp < -360.0 {
        lp += 360.0;
    }
    Ok(lp)
}
