use super::*;

fn header(cards: &[(&str, Value)]) -> Header {
    let mut h = Header::new();
    for (k, v) in cards {
        h.set(k, v.clone(), "");
    }
    h
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

fn f(v: f64) -> Value {
    Value::Float(v)
}

fn basic(proj: &str, lat: f64) -> Header {
    header(&[
        ("NAXIS", Value::Int(2)),
        ("CTYPE1", s(&format!("RA---{proj}"))),
        ("CTYPE2", s(&format!("DEC--{proj}"))),
        ("CRVAL1", f(150.0)),
        ("CRVAL2", f(lat)),
        ("CRPIX1", f(50.5)),
        ("CRPIX2", f(40.0)),
        ("CDELT1", f(-0.01)),
        ("CDELT2", f(0.01)),
        ("PC1_1", f(0.9)),
        ("PC1_2", f(-0.2)),
        ("PC2_1", f(0.25)),
        ("PC2_2", f(0.95)),
    ])
}

#[test]
fn round_trips_every_projection() {
    for proj in [
        "SIN", "NCP", "TAN", "ARC", "ZEA", "STG", "CAR", "MER", "CEA", "SFL", "AIT",
    ] {
        for lat in [-75.0, -20.0, 0.5, 33.0, 89.0] {
            if proj == "NCP" && lat == 0.5 {
                continue; // NCP near the equator compresses Dec without bound: off-domain pixels.
            }
            let w = Wcs::from_header(&basic(proj, lat)).unwrap();
            for &(x, y) in &[
                (0.0, 0.0),
                (49.5, 39.0),
                (99.0, 3.0),
                (-30.0, 140.0),
                (10.5, 77.25),
            ] {
                let Some((lon, la)) = w.pix_to_world(x, y) else {
                    panic!("{proj} lat {lat}: ({x},{y}) has no world position");
                };
                assert!((0.0..360.0).contains(&lon), "{proj} lon {lon}");
                let (x2, y2) = w.world_to_pix(lon, la).unwrap();
                assert!(
                    (x2 - x).abs() < 1e-8 && (y2 - y).abs() < 1e-8,
                    "{proj} lat {lat}: ({x},{y}) -> ({lon},{la}) -> ({x2},{y2})"
                );
                let (ra, dec) = w.pix_to_icrs(x, y).unwrap();
                let (x3, y3) = w.icrs_to_pix(ra, dec).unwrap();
                assert!(
                    (x3 - x).abs() < 1e-7 && (y3 - y).abs() < 1e-7,
                    "{proj} icrs round trip"
                );
            }
            // The reference pixel maps to CRVAL.
            let (lon, la) = w.pix_to_world(49.5, 39.0).unwrap();
            assert!(
                separation_deg((lon, la), (150.0, lat)) < 1e-10,
                "{proj} {lat}"
            );
        }
    }
}

#[test]
fn ncp_is_slant_sin_with_cot_dec() {
    let lat = -63.7;
    let ncp = Wcs::from_header(&basic("NCP", lat)).unwrap();
    let mut h = basic("SIN", lat);
    h.set("PV2_1", f(0.0), "");
    h.set("PV2_2", f(1.0 / lat.to_radians().tan()), "");
    let sin = Wcs::from_header(&h).unwrap();
    let plain = Wcs::from_header(&basic("SIN", lat)).unwrap();
    let mut max_plain: f64 = 0.0;
    for &(x, y) in &[(0.0, 0.0), (99.0, 99.0), (0.0, 99.0), (-200.0, 300.0)] {
        let a = ncp.pix_to_world(x, y).unwrap();
        let b = sin.pix_to_world(x, y).unwrap();
        assert!(separation_deg(a, b) < 1e-12);
        max_plain = max_plain.max(separation_deg(a, plain.pix_to_world(x, y).unwrap()));
    }
    // NCP differs measurably from plain SIN away from the reference point.
    assert!(max_plain > 1e-3, "{max_plain}");
}

#[test]
fn sin_far_side_is_none_not_nan() {
    let w = Wcs::new("SIN", (10.0, 20.0), (50.0, 50.0), (-0.5, 0.5), Frame::Icrs).unwrap();
    assert_eq!(w.world_to_pix(190.0, -20.0), None);
    assert_eq!(w.pix_to_world(50.0 + 200.0, 50.0), None);
    let t = Wcs::new("TAN", (10.0, 20.0), (50.0, 50.0), (-0.5, 0.5), Frame::Icrs).unwrap();
    assert_eq!(t.world_to_pix(190.0, -20.0), None);
    assert!(w.pix_to_world(f64::NAN, 1.0).is_none());
}

#[test]
fn frame_round_trips_and_sizes() {
    let frames = [
        Frame::Icrs,
        Frame::Fk5 { equinox: 2000.0 },
        Frame::Fk4 { equinox: 1950.0 },
        Frame::Fk4 { equinox: 1900.0 },
        Frame::Galactic,
    ];
    for frame in frames {
        for &(ra, dec) in &[
            (0.0, 0.0),
            (123.4, -56.7),
            (359.99, 89.9),
            (200.0, -89.95),
            (45.0, 30.0),
        ] {
            let (l, b) = from_icrs(frame, ra, dec);
            let (ra2, dec2) = to_icrs(frame, l, b);
            assert!(
                // astropy's FK4 inverse uses a transposed, not inverted, matrix: ~1e-8 deg.
                separation_deg((ra, dec), (ra2, dec2)) < 1e-8,
                "{frame:?} ({ra},{dec}) -> ({l},{b}) -> ({ra2},{dec2})"
            );
        }
    }
    // FK5 J2000 and ICRS differ by the frame bias: tens of mas, not zero.
    let sep = separation_deg(
        to_icrs(Frame::Fk5 { equinox: 2000.0 }, 30.0, 10.0),
        (30.0, 10.0),
    ) * 3.6e6;
    assert!(sep > 5.0 && sep < 40.0, "{sep} mas");
    // B1950 -> J2000 precession moves a position by ~0.7 deg at most (50"/yr * 50 yr).
    let sep = separation_deg(
        to_icrs(Frame::Fk4 { equinox: 1950.0 }, 30.0, 10.0),
        (30.0, 10.0),
    );
    assert!(sep > 0.3 && sep < 0.8, "{sep} deg");
    // The Galactic centre lies at RA 266.405, Dec -28.936 (IAU definition).
    let (ra, dec) = to_icrs(Frame::Galactic, 0.0, 0.0);
    assert!(
        (ra - 266.405).abs() < 1e-3 && (dec + 28.936).abs() < 1e-3,
        "{ra} {dec}"
    );
}

#[test]
fn separation_matches_simple_cases() {
    assert!((separation_deg((0.0, 0.0), (90.0, 0.0)) - 90.0).abs() < 1e-12);
    assert!((separation_deg((10.0, 89.0), (190.0, 89.0)) - 2.0).abs() < 1e-10);
    assert!((separation_deg((0.0, 0.0), (180.0, 0.0)) - 180.0).abs() < 1e-12);
    assert!(separation_deg((359.9999, 0.0), (0.0001, 0.0)) < 2.1e-4);
}

#[test]
fn refuses_what_it_cannot_do() {
    let mut h = basic("SIN", 10.0);
    h.set("CTYPE1", s("DEC--SIN"), "");
    h.set("CTYPE2", s("RA---SIN"), "");
    let e = Wcs::from_header(&h).unwrap_err();
    assert!(matches!(e, WcsError::SwappedAxes { .. }));
    assert!(e.to_string().contains("DEC--SIN"));

    let mut h = basic("SIN", 10.0);
    h.set("CTYPE1", s("ELON-SIN"), "");
    h.set("CTYPE2", s("ELAT-SIN"), "");
    let e = Wcs::from_header(&h).unwrap_err();
    assert!(matches!(e, WcsError::UnsupportedFrame(_)), "{e}");
    assert!(e.to_string().contains("ELON-SIN"));

    let mut h = basic("TAN", 10.0);
    h.set("CTYPE1", s("RA---TAN-SIP"), "");
    h.set("CTYPE2", s("DEC--TAN-SIP"), "");
    assert!(matches!(
        Wcs::from_header(&h),
        Err(WcsError::UnsupportedProjection(_))
    ));

    let mut h = basic("TAN", 10.0);
    h.set("CTYPE1", s("FREQ"), "");
    assert!(matches!(
        Wcs::from_header(&h),
        Err(WcsError::NoCelestialAxes { .. })
    ));

    let mut h = basic("SIN", 10.0);
    h.set("RADESYS", s("GAPPT"), "");
    assert!(matches!(
        Wcs::from_header(&h),
        Err(WcsError::UnsupportedFrame(_))
    ));

    let mut h = basic("SIN", 10.0);
    h.set("PC2_1", f(0.9 * 0.01 / 0.01 * (0.25 / 0.9)), "");
    h.set("PC2_2", f(-0.2 * 0.25 / 0.9), "");
    h.set("PC2_1", f(0.9), "");
    h.set("PC2_2", f(-0.2), "");
    assert!(matches!(
        Wcs::from_header(&h),
        Err(WcsError::SingularMatrix { .. })
    ));

    // CAR with LONPOLE 150 at CRVAL2 40 has no celestial pole (WCSLIB refuses it too).
    let mut h = basic("CAR", 40.0);
    h.set("LONPOLE", f(150.0), "");
    assert!(matches!(
        Wcs::from_header(&h),
        Err(WcsError::InvalidPole { .. })
    ));

    assert!(matches!(
        Wcs::new("XYZ", (0.0, 0.0), (0.0, 0.0), (-1.0, 1.0), Frame::Icrs),
        Err(WcsError::UnsupportedProjection(_))
    ));
}

#[test]
fn frame_rules_follow_astropy() {
    let frame_of = |extra: &[(&str, Value)]| {
        let mut h = basic("SIN", 10.0);
        for (k, v) in extra {
            h.set(k, v.clone(), "");
        }
        Wcs::from_header(&h).map(|w| w.frame())
    };
    assert_eq!(frame_of(&[]), Ok(Frame::Icrs));
    assert_eq!(
        frame_of(&[("EQUINOX", f(2000.0))]),
        Ok(Frame::Fk5 { equinox: 2000.0 })
    );
    assert_eq!(
        frame_of(&[("EPOCH", f(1950.0))]),
        Ok(Frame::Fk4 { equinox: 1950.0 })
    );
    assert_eq!(
        frame_of(&[("EQUINOX", f(2000.0)), ("EPOCH", f(1950.0))]),
        Ok(Frame::Fk5 { equinox: 2000.0 })
    );
    assert_eq!(
        frame_of(&[("RADESYS", s("ICRS")), ("EQUINOX", f(2000.0))]),
        Ok(Frame::Icrs)
    );
    assert_eq!(
        frame_of(&[("RADESYS", s("FK4"))]),
        Ok(Frame::Fk4 { equinox: 1950.0 })
    );
    assert_eq!(
        frame_of(&[("RADECSYS", s("FK5"))]),
        Ok(Frame::Fk5 { equinox: 2000.0 })
    );
    let mut g = basic("SIN", 10.0);
    g.set("CTYPE1", s("GLON-SIN"), "");
    g.set("CTYPE2", s("GLAT-SIN"), "");
    g.set("EQUINOX", f(0.0), "");
    assert_eq!(Wcs::from_header(&g).map(|w| w.frame()), Ok(Frame::Galactic));
}

#[test]
fn cards_rebuild_the_same_wcs() {
    let mut hs = vec![basic("SIN", -30.0), basic("CAR", 40.0), basic("NCP", 60.0)];
    let mut cd = basic("TAN", 10.0);
    for k in ["PC1_1", "PC1_2", "PC2_1", "PC2_2", "CDELT1", "CDELT2"] {
        cd.cards.retain(|c| c.key != k);
    }
    cd.set("CD1_1", f(-1e-3), "");
    cd.set("CD1_2", f(2e-4), "");
    cd.set("CD2_1", f(3e-4), "");
    cd.set("CD2_2", f(1.1e-3), "");
    cd.set("EPOCH", f(1950.0), "");
    hs.push(cd);
    let mut slant = basic("SIN", 20.0);
    slant.set("PV2_1", f(0.1), "");
    slant.set("PV2_2", f(-0.3), "");
    slant.set("RADESYS", s("FK5"), "");
    hs.push(slant);
    for h in hs {
        let a = Wcs::from_header(&h).unwrap();
        let b = Wcs::from_header(&Header {
            cards: a.to_cards(),
        })
        .unwrap();
        assert_eq!(a.frame(), b.frame());
        assert_eq!(a.projection(), b.projection());
        for &(x, y) in &[(0.0, 0.0), (99.0, 10.0), (-50.0, 200.0)] {
            let p = a.pix_to_world(x, y).unwrap();
            let q = b.pix_to_world(x, y).unwrap();
            assert!(separation_deg(p, q) < 1e-12, "{:?}", a.projection());
        }
    }
    let w = Wcs::new(
        "ZEA",
        (10.0, -30.0),
        (99.5, 49.5),
        (-0.002, 0.002),
        Frame::Galactic,
    )
    .unwrap();
    let cards = w.to_cards();
    assert!(
        cards
            .iter()
            .any(|c| c.key == "CTYPE1" && c.value == s("GLON-ZEA"))
    );
    assert!(
        cards
            .iter()
            .any(|c| c.key == "CRPIX1" && c.value == f(100.5))
    );
    assert!((w.pixel_scale_deg() - 0.002).abs() < 1e-15);
}
