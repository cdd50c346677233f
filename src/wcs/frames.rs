//! Celestial reference frames and the conversions between them and ICRS, as astropy does them.
//!
//! Invariants: every conversion works on unit vectors with 3x3 matrices built once per frame
//! ([`FrameXform`]); angles in and out are degrees; ICRS right ascension comes back in [0, 360).
//!
//! Paths (the same as astropy's frame graph, so results agree to well under 1 mas):
//! - FK5 (J2000) -> ICRS: the frame-bias rotation of USNO circular 179 (~20 mas).
//! - Galactic -> FK5 J2000 through astropy's fixed pole (192.8594812065348, 27.12825118085622) and
//!   longitude 122.9319185680026, then FK5 -> ICRS.
//! - FK4 (with E-terms) -> FK4 without E-terms (same equinox) -> Newcomb precession to B1950 ->
//!   astropy's B1950->J2000 matrix with the FK4 rotation correction at obstime = equinox -> FK5 J2000
//!   -> ICRS. The inverse adds the E-terms back by astropy's fixed-point iteration.

/// A celestial frame of a WCS. Equinoxes are years (Besselian for FK4, Julian for FK5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Frame {
    Icrs,
    Fk5 { equinox: f64 },
    Fk4 { equinox: f64 },
    Galactic,
}

type M3 = [[f64; 3]; 3];

const IDENTITY: M3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

fn mat_mul(a: &M3, b: &M3) -> M3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

fn transpose(a: &M3) -> M3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = a[j][i];
        }
    }
    out
}

fn apply(m: &M3, v: [f64; 3]) -> [f64; 3] {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn normalize(v: [f64; 3]) -> [f64; 3] {
    let n = dot(v, v).sqrt();
    [v[0] / n, v[1] / n, v[2] / n]
}

/// astropy's `rotation_matrix(angle_deg, axis)`: a passive (coordinate-frame) rotation.
fn rot(angle_deg: f64, axis: usize) -> M3 {
    let (s, c) = angle_deg.to_radians().sin_cos();
    let mut m = IDENTITY;
    let a1 = (axis + 1) % 3;
    let a2 = (axis + 2) % 3;
    m[a1][a1] = c;
    m[a1][a2] = s;
    m[a2][a1] = -s;
    m[a2][a2] = c;
    m
}

pub(crate) fn lonlat_to_vec(lon: f64, lat: f64) -> [f64; 3] {
    let (sl, cl) = lon.to_radians().sin_cos();
    let (sb, cb) = lat.to_radians().sin_cos();
    [cb * cl, cb * sl, sb]
}

/// Longitude in [0, 360), latitude in [-90, 90], degrees.
pub(crate) fn vec_to_lonlat(v: [f64; 3]) -> (f64, f64) {
    let lat = v[2].atan2((v[0] * v[0] + v[1] * v[1]).sqrt()).to_degrees();
    let mut lon = v[1].atan2(v[0]).to_degrees();
    if lon < 0.0 {
        lon += 360.0;
    }
    if lon >= 360.0 {
        lon -= 360.0;
    }
    (lon, lat)
}

/// ICRS -> FK5 J2000 frame bias (astropy `_icrs_to_fk5_matrix`).
fn icrs_to_fk5() -> M3 {
    let eta0 = -19.9 / 3_600_000.0;
    let xi0 = 9.1 / 3_600_000.0;
    let da0 = -22.9 / 3_600_000.0;
    mat_mul(&mat_mul(&rot(-eta0, 0), &rot(xi0, 1)), &rot(da0, 2))
}

/// FK5 J2000 -> Galactic (astropy `fk5_to_gal` for an FK5 J2000 input).
fn fk5_to_gal() -> M3 {
    let ngp_ra = 192.8594812065348;
    let ngp_dec = 27.12825118085622;
    let lon0 = 122.9319185680026;
    mat_mul(
        &mat_mul(&rot(180.0 - lon0, 2), &rot(90.0 - ngp_dec, 1)),
        &rot(ngp_ra, 2),
    )
}

/// Julian date (TT) of a Besselian epoch (ERFA `epb2jd`).
fn besselian_to_jd(b: f64) -> f64 {
    2_400_000.5 + 15019.81352 + (b - 1900.0) * 365.242198781
}

/// Julian epoch of a Julian date (ERFA `epj`).
fn jd_to_julian_year(jd: f64) -> f64 {
    2000.0 + (jd - 2_451_545.0) / 365.25
}

/// Newcomb precession between Besselian equinoxes (astropy `FK4NoETerms._precession_matrix`).
fn besselian_precession(from: f64, to: f64) -> M3 {
    let t1 = (from - 1850.0) / 1000.0;
    let dt = (to - 1850.0) / 1000.0 - t1;
    let dt3600 = dt / 3600.0;
    let zeta1 = (0.060 * t1 + 139.720) * t1 + 23035.545;
    let z1 = zeta1;
    let zeta2 = -0.27 * t1 + 30.240;
    let zeta = ((17.995 * dt + zeta2) * dt + zeta1) * dt3600;
    let z2 = 109.480 + 0.39 * t1;
    let z = ((18.325 * dt + z2) * dt + z1) * dt3600;
    let theta1 = (-0.37 * t1 - 85.29) * t1 + 20051.12;
    let theta2 = -0.37 * t1 - 42.65;
    let theta = ((-41.8 * dt + theta2) * dt + theta1) * dt3600;
    mat_mul(&mat_mul(&rot(-z, 2), &rot(theta, 1)), &rot(-zeta, 2))
}

/// astropy `_fk4_B_matrix(obstime)`: B1950 -> J2000 with the FK4 rotation correction.
fn fk4_b_matrix(obstime_besselian: f64) -> M3 {
    const B: M3 = [
        [0.9999256794956877, -0.0111814832204662, -0.0048590038153592],
        [0.0111814832391717, 0.9999374848933135, -0.0000271625947142],
        [0.0048590037723143, -0.0000271702937440, 0.9999881946023742],
    ];
    const CORR: M3 = [
        [-0.0026455262, -1.1539918689, 2.1111346190],
        [1.1540628161, -0.0129042997, 0.0236021478],
        [-2.1112979048, -0.0056024448, 0.0102587734],
    ];
    let t = (jd_to_julian_year(besselian_to_jd(obstime_besselian)) - 1950.0) / 100.0;
    let mut m = B;
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] += CORR[i][j] * 1e-6 * t;
        }
    }
    m
}

/// E-terms of aberration for an FK4 equinox (astropy `fk4_e_terms`).
fn fk4_e_terms(equinox_besselian: f64) -> [f64; 3] {
    let jd = besselian_to_jd(equinox_besselian);
    let t = (jd - besselian_to_jd(1950.0)) / 36525.0;
    let k = 0.0056932_f64.to_radians();
    let ek = k * ((-0.000000126 * t - 0.00004193) * t + 0.01673011);
    let g = ((((0.012 * t + 1.65) * t + 6190.67) * t + 1015489.951) / 3600.0).to_radians();
    // ERFA obl80: mean obliquity, IAU 1980.
    let tj = (jd - 2_451_545.0) / 36525.0;
    let o = ((84381.448 + (-46.8150 + (-0.00059 + 0.001813 * tj) * tj) * tj) / 3600.0).to_radians();
    let minus_ek_cos_g = -ek * g.cos();
    [
        ek * g.sin(),
        minus_ek_cos_g * o.cos(),
        minus_ek_cos_g * o.sin(),
    ]
}

/// A frame's conversion to and from ICRS, precomputed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameXform {
    /// Frame (without E-terms) -> ICRS.
    to: M3,
    /// ICRS -> frame (without E-terms).
    from: M3,
    /// FK4 E-terms vector, if the frame has them.
    eterms: Option<[f64; 3]>,
}

impl FrameXform {
    pub(crate) fn new(frame: Frame) -> FrameXform {
        let bias = icrs_to_fk5();
        match frame {
            Frame::Icrs => FrameXform {
                to: IDENTITY,
                from: IDENTITY,
                eterms: None,
            },
            // Only J2000 is accepted by the WCS parser; other equinoxes are treated as J2000 here.
            Frame::Fk5 { .. } => FrameXform {
                to: transpose(&bias),
                from: bias,
                eterms: None,
            },
            Frame::Galactic => {
                let g = fk5_to_gal();
                FrameXform {
                    to: mat_mul(&transpose(&bias), &transpose(&g)),
                    from: mat_mul(&g, &bias),
                    eterms: None,
                }
            }
            Frame::Fk4 { equinox } => {
                let b = fk4_b_matrix(equinox);
                let to = mat_mul(
                    &mat_mul(&transpose(&bias), &b),
                    &besselian_precession(equinox, 1950.0),
                );
                let from = mat_mul(
                    &mat_mul(&besselian_precession(1950.0, equinox), &transpose(&b)),
                    &bias,
                );
                FrameXform {
                    to,
                    from,
                    eterms: Some(fk4_e_terms(equinox)),
                }
            }
        }
    }

    pub(crate) fn forward(&self, lon: f64, lat: f64) -> (f64, f64) {
        let mut v = lonlat_to_vec(lon, lat);
        if let Some(a) = self.eterms {
            let d = dot(a, v);
            v = normalize([
                v[0] - a[0] + d * v[0],
                v[1] - a[1] + d * v[1],
                v[2] - a[2] + d * v[2],
            ]);
        }
        vec_to_lonlat(apply(&self.to, v))
    }

    pub(crate) fn inverse(&self, ra: f64, dec: f64) -> (f64, f64) {
        let mut v = normalize(apply(&self.from, lonlat_to_vec(ra, dec)));
        if let Some(a) = self.eterms {
            let ini = [a[0] + v[0], a[1] + v[1], a[2] + v[2]];
            for _ in 0..10 {
                let d = 1.0 + dot(a, v);
                v = [ini[0] / d, ini[1] / d, ini[2] / d];
            }
            v = normalize(v);
        }
        vec_to_lonlat(v)
    }
}

/// Converts a position in `frame` (degrees) to ICRS (degrees, RA in [0, 360)).
pub fn to_icrs(frame: Frame, lon: f64, lat: f64) -> (f64, f64) {
    FrameXform::new(frame).forward(lon, lat)
}

/// Converts an ICRS position (degrees) to `frame` (degrees, longitude in [0, 360)).
pub fn from_icrs(frame: Frame, ra: f64, dec: f64) -> (f64, f64) {
    FrameXform::new(frame).inverse(ra, dec)
}

/// Great-circle separation in degrees (Vincenty's formula: accurate at all separations).
pub fn separation_deg(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (l1, b1) = (a.0.to_radians(), a.1.to_radians());
    let (l2, b2) = (b.0.to_radians(), b.1.to_radians());
    let dl = l2 - l1;
    let (sdl, cdl) = dl.sin_cos();
    let (sb1, cb1) = b1.sin_cos();
    let (sb2, cb2) = b2.sin_cos();
    let num1 = cb2 * sdl;
    let num2 = cb1 * sb2 - sb1 * cb2 * cdl;
    let den = sb1 * sb2 + cb1 * cb2 * cdl;
    (num1.hypot(num2)).atan2(den).to_degrees()
}
