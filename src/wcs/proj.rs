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
            Proj::Sin { xi, eta } => {
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
                    (phi, theta)
                } else {
                    let w1 = xi * xi + eta * eta;
                    let xy = x0 * xi + y0 * eta;
                    let (theta, z) = if r2 < 1.0e-10 {
                        (90.0 - R2D * (r2 / (1.0 + xy)).sqrt(), r2 / 2.0)
                    } else {
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
                        (asind(s), 1.0 - s)
                    };
                    let x1 = -y0 + eta * z;
                    let y1 = x0 - xi * z;
                    let phi = if x1 == 0.0 && y1 == 0.0 {
                        0.0
                    } else {
                        atan2d(y1, x1)
                    };
                    (phi, theta)
                }
            }
            Proj::Tan => {
                let r = x.hypot(y);
                let phi = if r == 0.0 { 0.0 } else { atan2d(x, -y) };
                (phi, atan2d(R2D, r))
            }
            Proj::Arc => {
                let r = x.hypot(y);
                let phi = if r == 0.0 { 0.0 } else { atan2d(x, -y) };
                (phi, 90.0 - r)
            }
            Proj::Zea => {
                let r = x.hypot(y);
                let phi = if r == 0.0 { 0.0 } else { atan2d(x, -y) };
                let s = r / (2.0 * R2D);
                let theta = if s > 1.0 {
                    if s - 1.0 < TOL {
                        -90.0
                    } else {
                        return None;
                    }
                } else {
                    90.0 - 2.0 * asind(s)
                };
                (phi, theta)
            }
            Proj::Stg => {
                let r = x.hypot(y);
                let phi = if r == 0.0 { 0.0 } else { atan2d(x, -y) };
                (phi, 90.0 - 2.0 * (r / (2.0 * R2D)).atan() * R2D)
            }
            Proj::Car => (x, y),
            Proj::Mer => (x, 2.0 * (y / R2D).exp().atan() * R2D - 90.0),
            Proj::Cea { lambda } => {
                let s = y * lambda / R2D;
                let theta = if s.abs() > 1.0 {
                    if s.abs() - 1.0 < TOL {
                        90.0_f64.copysign(s)
                    } else {
                        return None;
                    }
                } else {
                    asind(s)
                };
                (x, theta)
            }
            Proj::Sfl => {
                let c = cosd(y);
                let phi = if c == 0.0 { 0.0 } else { x / c };
                (phi, y)
            }
            Proj::Ait => {
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
                (phi, asind(st))
            }
        };
        // WCSLIB prjbchk: native coordinates must lie within the sphere.
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
        let phi0 = 0.0;
        const TOLC: f64 = 1.0e-10;
        let mut phip = match lonpole {
            Some(v) => v,
            None => {
                let mut p = if lat0 < theta0 { 180.0 } else { 0.0 } + phi0;
                if p < -180.0 {
                    p += 360.0;
                } else if p > 180.0 {
                    p -= 360.0;
                }
                p
            }
        };
        let mut latp = latpole.unwrap_or(90.0);
        let lngp;
        if theta0 == 90.0 {
            lngp = lng0;
            latp = lat0;
        } else {
            let (slat0, clat0) = (sind(lat0), cosd(lat0));
            let (sthe0, cthe0) = (sind(theta0), cosd(theta0));
            let (sphip, u, v);
            let mut latp_fixed = false;
            if phip == phi0 {
                sphip = 0.0;
                u = theta0;
                v = 90.0 - lat0;
            } else {
                sphip = sind(phip - phi0);
                let cphip = cosd(phip - phi0);
                let x = cthe0 * cphip;
                let y = sthe0;
                let z = x.hypot(y);
                if z == 0.0 {
                    if slat0 != 0.0 {
                        return Err(RotationError::NoPole);
                    }
                    latp_fixed = true;
                    latp = latp.clamp(-90.0, 90.0);
                    u = 0.0;
                    v = 0.0;
                } else {
                    let mut slz = slat0 / z;
                    if slz.abs() > 1.0 {
                        if slz.abs() - 1.0 < TOLC {
                            slz = slz.signum();
                        } else {
                            return Err(RotationError::NoPole);
                        }
                    }
                    u = atan2d(y, x);
                    v = acosd(slz);
                }
            }
            if !latp_fixed {
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
                if (latp - latp1).abs() < (latp - latp2).abs() {
                    latp = if latp1.abs() < 90.0 + TOLC {
                        latp1
                    } else {
                        latp2
                    };
                } else {
                    latp = if latp2.abs() < 90.0 + TOLC {
                        latp2
                    } else {
                        latp1
                    };
                }
                if latp.abs() < 90.0 + TOLC {
                    latp = latp.clamp(-90.0, 90.0);
                } else {
                    // WCSLIB: "no valid solution for latp for these values of phip, phi0, theta0".
                    return Err(RotationError::NoPole);
                }
            }
            let z = cosd(latp) * clat0;
            let mut lp = if z.abs() < TOLC {
                if clat0.abs() < TOLC {
                    lng0
                } else if latp > 0.0 {
                    lng0 + phip - phi0 - 180.0
                } else {
                    lng0 - phip + phi0
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
            lngp = lp;
        }
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
