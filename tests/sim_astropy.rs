//! The FITS writer and the drift-scan simulator, checked against astropy (an independent FITS
//! reader, WCS and sidereal-time implementation) and against their own truth catalogue.
//!
//! These tests need Python 3 with astropy and numpy (`CONTIMG_PYTHON` picks the interpreter);
//! without them they fail with a message saying so.

// A test or example reports on stdout, which its harness captures; only the binary is held to
// "stdout carries manifests only".
#![allow(clippy::print_stdout)]

use std::fs;
use std::path::Path;
use std::process::Command;

use contimg::fits::header::{Card, Header, Value};
use contimg::fits::write::{write_image, write_image_2d};
use contimg::mosaic::sim::{SimConfig, SimSummary, simulate};
use serde_json::Value as Json;

fn python() -> String {
    std::env::var("CONTIMG_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs `script` with `args`; the script prints one JSON document on stdout.
fn run_python(script: &str, args: &[&str]) -> Json {
    let py = python();
    let out = Command::new(&py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {py} ({e}): these tests need Python 3 with astropy and numpy; set CONTIMG_PYTHON")
        });
    assert!(
        out.status.success(),
        "{py} failed (these tests need astropy and numpy; set CONTIMG_PYTHON to a Python that has them):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn no_temporaries(dir: &Path) {
    let hidden: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n.contains(".tmp"))
        .collect();
    assert!(hidden.is_empty(), "temporary files left behind: {hidden:?}");
}

const READ_BACK: &str = r#"
import sys, json, math
import numpy as np
from astropy.io import fits
out = {}
for path in sys.argv[1:]:
    with fits.open(path) as hdul:
        h = hdul[0].header
        d = hdul[0].data
        def conv(v):
            if isinstance(v, float):
                return repr(v)  # exact text: serde_json's float parsing may be off by an ulp
            if isinstance(v, (bool, int, str)):
                return v
            return "UNDEFINED" if v.__class__.__name__ == "Undefined" else str(v)
        cards = [[c.keyword, conv(c.value), type(c.value).__name__, c.comment] for c in h.cards]
        out[path] = {
            "n_hdus": len(hdul),
            "shape": list(d.shape),
            "dtype": str(d.dtype),
            "data": [None if math.isnan(v) else float(v) for v in d.ravel()],
            "cards": cards,
            "history": [str(x) for x in h.get("HISTORY", [])],
        }
print(json.dumps(out))
"#;

#[test]
fn writer_output_reads_back_in_astropy() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Header::new();
    h.set(
        "OBJECT",
        Value::Str("O'Brien field".into()),
        "a quote inside",
    );
    let long = "a long string value that will not fit in a single card image, so cfitsio continues it over CONTINUE cards";
    h.set("LONGSTR", Value::Str(long.into()), "");
    h.set(
        "CRVAL1",
        Value::Float(0.1 + 0.2),
        "[deg] needs all 17 digits",
    );
    h.set("CDELT1", Value::Float(-8.333333333333333e-3), "");
    h.set("TINY", Value::Float(1.25e-300), "");
    h.set("BIG", Value::Float(-6.02214076e23), "");
    h.set(
        "WHOLE",
        Value::Float(3.0),
        "a float that happens to be whole",
    );
    h.set("NITER", Value::Int(-1234567890123), "");
    h.set("PBCOR", Value::Bool(false), "");
    h.set("DOIT", Value::Bool(true), "");
    h.set("UNDEF", Value::None, "no value");
    // Structural cards in the input are ignored: the writer makes its own.
    h.set("NAXIS", Value::Int(7), "");
    h.set("BITPIX", Value::Int(16), "");
    h.set("BZERO", Value::Float(32768.0), "");
    h.push_history("first history line");
    h.cards
        .push(Card::new("COMMENT", Value::None, "a comment card"));
    h.push_history("second history line, long enough that cfitsio has to wrap it over more than one card image of eighty characters");

    // 2-D through a transposed (non-standard-layout) view: rows are y.
    let mut arr = ndarray::Array2::<f32>::zeros((5, 3)); // (x, y)
    for ((x, y), v) in arr.indexed_iter_mut() {
        *v = (10 * y + x) as f32 + 0.25;
    }
    arr[[1, 2]] = f32::NAN;
    let p2 = dir.path().join("two.fits");
    write_image_2d(&p2, arr.t(), &h).unwrap();

    // 4-D in FITS order.
    let p4 = dir.path().join("four.fits");
    let data4: Vec<f32> = (0..12).map(|i| i as f32 * 1.5 - 3.0).collect();
    write_image(&p4, &[4, 3, 1, 1], &data4, &h).unwrap();
    // Overwriting an existing file goes through the rename.
    write_image(&p4, &[4, 3, 1, 1], &data4, &h).unwrap();
    no_temporaries(dir.path());

    let got = run_python(READ_BACK, &[p2.to_str().unwrap(), p4.to_str().unwrap()]);
    let two = &got[p2.to_str().unwrap()];
    assert_eq!(two["n_hdus"], 1);
    assert_eq!(two["shape"], serde_json::json!([3, 5])); // numpy (NAXIS2, NAXIS1)
    assert_eq!(two["dtype"], ">f4");
    let data = two["data"].as_array().unwrap();
    for y in 0..3 {
        for x in 0..5 {
            let v = &data[y * 5 + x];
            if (x, y) == (1, 2) {
                assert!(v.is_null(), "NaN expected at x=1,y=2, got {v}");
            } else {
                assert_eq!(
                    v.as_f64().unwrap(),
                    (10 * y + x) as f64 + 0.25,
                    "x={x} y={y}"
                );
            }
        }
    }
    let four = &got[p4.to_str().unwrap()];
    assert_eq!(four["shape"], serde_json::json!([1, 1, 3, 4]));
    let vals: Vec<f64> = four["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(
        vals,
        data4.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()
    );

    for file in [two, four] {
        let cards = file["cards"].as_array().unwrap();
        let find = |k: &str| -> &Json {
            &cards
                .iter()
                .find(|c| c[0] == k)
                .unwrap_or_else(|| panic!("{k} missing from {cards:?}"))[1]
        };
        let float = |k: &str| -> f64 { find(k).as_str().unwrap().parse().unwrap() };
        assert_eq!(find("OBJECT"), "O'Brien field");
        assert_eq!(find("LONGSTR"), long);
        assert_eq!(float("CRVAL1"), 0.1 + 0.2);
        assert_eq!(float("CDELT1"), -8.333333333333333e-3);
        assert_eq!(float("TINY"), 1.25e-300);
        assert_eq!(float("BIG"), -6.02214076e23);
        assert_eq!(float("WHOLE"), 3.0);
        assert_eq!(find("NITER"), -1234567890123i64);
        assert_eq!(find("PBCOR"), false);
        assert_eq!(find("DOIT"), true);
        assert_eq!(find("UNDEF"), "UNDEFINED");
        assert_eq!(find("BITPIX"), -32);
        assert!(
            !cards.iter().any(|c| c[0] == "BZERO"),
            "BZERO must not be copied"
        );
        let naxis = find("NAXIS").as_i64().unwrap();
        assert!(naxis == 2 || naxis == 4);
        let hist = file["history"].as_array().unwrap();
        assert_eq!(hist[0], "first history line");
        // A long HISTORY text spans several cards, broken between words (astropy reads each
        // card's text; joined with spaces they give the text back).
        let joined: Vec<&str> = hist[1..].iter().map(|h| h.as_str().unwrap()).collect();
        assert!(joined.len() > 1, "{hist:?}");
        assert!(
            joined
                .join(" ")
                .contains("wrap it over more than one card image"),
            "{hist:?}"
        );
        // Order is kept: OBJECT before CRVAL1 before the first HISTORY.
        let pos = |k: &str| cards.iter().position(|c| c[0] == k).unwrap();
        assert!(pos("OBJECT") < pos("CRVAL1") && pos("CRVAL1") < pos("HISTORY"));
        assert_eq!(
            cards
                .iter()
                .filter(|c| c[0] == "COMMENT" && c[3] == "a comment card")
                .count(),
            0,
            "astropy reports commentary text as the value"
        );
        assert!(
            cards
                .iter()
                .any(|c| c[0] == "COMMENT" && c[1] == "a comment card")
        );
    }
}

/// Measures the snapshots with astropy: truth positions through astropy's WCS vs the image's
/// local maxima, amplitudes vs S·A, the robust noise, the primary-beam images and header cards.
const CHECK_SNAPSHOTS: &str = r#"
import sys, json, csv, math, os
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.coordinates import SkyCoord
import astropy.units as u

d = sys.argv[1]
snaps = list(csv.DictReader(open(os.path.join(d, "snapshots.csv"))))
truth = list(csv.DictReader(open(os.path.join(d, "truth.csv"))))
tra = np.array([float(t["ra_deg"]) for t in truth])
tdec = np.array([float(t["dec_deg"]) for t in truth])
tflux = np.array([float(t["flux_jy"]) for t in truth])
tmaj = np.array([float(t["maj_arcsec"]) for t in truth])
tsky = SkyCoord(tra * u.deg, tdec * u.deg)
N = len(truth)

def para(a, b, c):
    den = a - 2 * b + c
    return 0.0 if den == 0 else 0.5 * (a - c) / den

out = {"snapshots": []}
for s in snaps:
    path = os.path.join(d, s["file"])
    with fits.open(path) as hdul:
        h = hdul[0].header
        img = hdul[0].data[0, 0].astype(float)
    n = img.shape[0]
    w = WCS(h).celestial
    x, y = w.world_to_pixel(tsky)
    c0 = SkyCoord(h["CRVAL1"] * u.deg, h["CRVAL2"] * u.deg)
    sep = c0.separation(tsky).rad
    fwhm = 1.2 * 299792458.0 / h["RESTFRQ"] / h["DISHDIAM"]
    A = np.exp(-4 * np.log(2) * (sep / fwhm) ** 2)
    app = tflux * A
    sigma = float(s["rms_jy"])
    cell = abs(h["CDELT1"])
    # restoring beam in pixels: major axis along (-sin pa, cos pa) (x grows west, y north)
    s1 = h["BMAJ"] / cell / 2.3548200450309493
    s2 = h["BMIN"] / cell / 2.3548200450309493
    pa = math.radians(h["BPA"])
    cxx = s1**2 * math.sin(pa)**2 + s2**2 * math.cos(pa)**2
    cyy = s1**2 * math.cos(pa)**2 + s2**2 * math.sin(pa)**2
    cxy = (s2**2 - s1**2) * math.sin(pa) * math.cos(pa)
    det = cxx * cyy - cxy**2
    ok = np.isfinite(x) & np.isfinite(y) & (sep < math.pi / 2)
    inside = ok & (x > 8) & (x < n - 9) & (y > 8) & (y < n - 9)
    sources = []
    for k in np.where(inside & (tmaj == 0) & (app > 20 * sigma))[0]:
        d2 = (x - x[k])**2 + (y - y[k])**2
        near = ok & (d2 < 20**2) & (np.arange(N) != k) & ((app > 0.01 * app[k]) | (tmaj > 0))
        if near.any():
            continue
        ix, iy = int(round(x[k])), int(round(y[k]))
        win = img[iy - 3:iy + 4, ix - 3:ix + 4]
        j, i = np.unravel_index(np.argmax(win), win.shape)
        mx, my = ix - 3 + i, iy - 3 + j
        px = mx + para(img[my, mx - 1], img[my, mx], img[my, mx + 1])
        py = my + para(img[my - 1, mx], img[my, mx], img[my + 1, mx])
        # amplitude of a beam-shaped template at the truth position
        yy, xx = np.mgrid[iy - 7:iy + 8, ix - 7:ix + 8]
        dx, dy = xx - x[k], yy - y[k]
        q = (cyy * dx * dx - 2 * cxy * dx * dy + cxx * dy * dy) / det
        T = np.exp(-0.5 * q)
        amp = float((T * img[iy - 7:iy + 8, ix - 7:ix + 8]).sum() / (T * T).sum())
        wpos = w.pixel_to_world(px, py)
        sources.append({"name": truth[k]["name"], "dx_max": float(mx - x[k]), "dy_max": float(my - y[k]),
                        "dx": float(px - x[k]), "dy": float(py - y[k]), "app": float(app[k]), "amp": amp,
                        "ra": float(wpos.ra.deg), "dec": float(wpos.dec.deg), "A": float(A[k])})
    # robust rms away from every source that shows
    mask = np.ones_like(img, dtype=bool)
    yy, xx = np.mgrid[0:n, 0:n]
    for k in np.where(ok & (app > 0.5 * sigma))[0]:
        r = max(15.0, 4 * tmaj[k] / 3600 / cell)
        if x[k] < -r or y[k] < -r or x[k] > n + r or y[k] > n + r:
            continue
        mask &= (xx - x[k])**2 + (yy - y[k])**2 > r * r
    vals = img[mask]
    mad_rms = float(1.4826 * np.median(np.abs(vals - np.median(vals))))
    entry = {"file": s["file"], "sigma": sigma, "mad_rms": mad_rms, "n_noise_px": int(mask.sum()),
             "sources": sources, "header": {}}
    for key in ["NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "NAXIS4", "CTYPE1", "CTYPE2", "CTYPE3", "CTYPE4",
                "CRVAL1", "CRVAL2", "CRVAL3", "CDELT1", "CDELT2", "CDELT3", "CRPIX1", "CRPIX2", "CRVAL4",
                "RADESYS", "BUNIT", "BMAJ", "BMIN", "BPA", "DATE-OBS", "MJD-OBS", "DATE-AVG", "MJD-AVG",
                "RESTFRQ", "TELESCOP", "OBSERVER", "ORIGIN", "DISHDIAM", "PBCOR", "SIMNOISE"]:
        entry["header"][key] = h.get(key)
    entry["header"]["HISTORY"] = " ".join(str(x) for x in h.get("HISTORY", []))
    pbpath = path[:-5] + ".pb.fits"
    if os.path.exists(pbpath):
        with fits.open(pbpath) as hdul:
            pb = hdul[0].data[0, 0].astype(float)
            pbw = WCS(hdul[0].header).celestial
        yy, xx = np.mgrid[0:n:7, 0:n:7]
        world = pbw.pixel_to_world(xx, yy)
        ref = np.exp(-4 * np.log(2) * (c0.separation(world).rad / fwhm) ** 2)
        entry["pb_max_abs_err"] = float(np.max(np.abs(pb[0:n:7, 0:n:7] - ref)))
        entry["pb_max"] = float(pb.max())
        entry["pb_min"] = float(pb.min())
    out["snapshots"].append(entry)
print(json.dumps(out))
"#;

/// Equal to within 2 ulp-ish (the JSON float parser is not always correctly rounded; the exact
/// card text is checked in `writer_output_reads_back_in_astropy`).
fn assert_close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 4e-16 * a.abs().max(b.abs()),
        "{what}: {a} != {b}"
    );
}

fn f(v: &Json) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn snapshots_put_truth_where_astropy_expects_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    // The strip crosses RA 0h: centres 359°, 0.25°, 1.5°.
    let cfg = SimConfig {
        out: out.clone(),
        images: 3,
        size: 320,
        seed: 7,
        noise_jy: 0.2e-3,
        ra_start: Some(359.0),
        pb_images: true,
        ..SimConfig::default()
    };
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let summary: SimSummary = simulate(&cfg, &|n| {
        calls.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(calls.into_inner(), 3);
    assert_eq!(summary.snapshots.len(), 3);
    assert!(
        summary.sky.ra_min_deg > 180.0,
        "strip starts west of 0h: {:?}",
        summary.sky
    );
    no_temporaries(&out);
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["snapshots"].as_array().unwrap().len(), 3);

    let got = run_python(CHECK_SNAPSHOTS, &[out.to_str().unwrap()]);
    let snaps = got["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 3);
    let mut checked = 0;
    let mut sum_off2 = 0.0;
    let mut by_name: std::collections::HashMap<String, Vec<(usize, f64, f64)>> = Default::default();
    for (i, s) in snaps.iter().enumerate() {
        let info = &summary.snapshots[i];
        let h = &s["header"];
        // Header: a 4-D WSClean-like image.
        assert_eq!(h["NAXIS"], 4);
        assert_eq!(h["NAXIS1"], 320);
        assert_eq!(h["NAXIS2"], 320);
        assert_eq!(h["NAXIS3"], 1);
        assert_eq!(h["NAXIS4"], 1);
        assert_eq!(h["CTYPE1"], "RA---SIN");
        assert_eq!(h["CTYPE2"], "DEC--SIN");
        assert_eq!(h["CTYPE3"], "FREQ");
        assert_eq!(h["CTYPE4"], "STOKES");
        assert_close(f(&h["CRVAL4"]), 1.0, "CRVAL4");
        assert_close(f(&h["CRPIX1"]), 161.0, "CRPIX1");
        assert_close(f(&h["CRPIX2"]), 161.0, "CRPIX2");
        assert_close(f(&h["CDELT1"]), -30.0 / 3600.0, "CDELT1");
        assert_close(f(&h["CDELT2"]), 30.0 / 3600.0, "CDELT2");
        assert_close(f(&h["CRVAL1"]), info.ra_deg, "CRVAL1");
        assert_close(f(&h["CRVAL2"]), 35.0, "CRVAL2");
        assert_close(f(&h["CRVAL3"]), 1.405e9, "CRVAL3");
        assert_close(f(&h["CDELT3"]), 187.5e6, "CDELT3");
        assert_eq!(h["RADESYS"], "ICRS");
        assert_eq!(h["BUNIT"], "JY/BEAM");
        assert!((f(&h["BMAJ"]) - 3.2 * 30.0 / 3600.0).abs() < 1e-15);
        assert!((f(&h["BMIN"]) - 2.6 * 30.0 / 3600.0).abs() < 1e-15);
        assert_close(f(&h["BPA"]), info.bpa_deg, "BPA");
        assert_eq!(h["DATE-OBS"], info.date_obs.as_str());
        assert_close(f(&h["MJD-OBS"]), info.mjd_obs, "MJD-OBS");
        assert_eq!(h["TELESCOP"], "DSA-110");
        assert_eq!(h["OBSERVER"], "contimg simulate");
        assert_eq!(h["ORIGIN"], "contimg simulate");
        assert_close(f(&h["DISHDIAM"]), 4.65, "DISHDIAM");
        assert_eq!(h["PBCOR"], false);
        assert_close(f(&h["SIMNOISE"]), info.rms_jy, "SIMNOISE");
        assert!(
            h["HISTORY"]
                .as_str()
                .unwrap()
                .contains("contimg simulate images=3 size=320")
        );
        // RA wraps into [0, 360) and advances at the sidereal rate.
        let expect_ra = (359.0 + 15.041_068_64 * (i as f64) * 300.0 / 3600.0) % 360.0;
        assert!(
            (info.ra_deg - expect_ra).abs() < 1e-6,
            "{} vs {expect_ra}",
            info.ra_deg
        );

        // Noise: robust rms of the source-free area within a few % of σ_i.
        let ratio = f(&s["mad_rms"]) / f(&s["sigma"]);
        assert!(s["n_noise_px"].as_u64().unwrap() > 40_000, "{s}");
        assert!(
            (ratio - 1.0).abs() < 0.05,
            "snapshot {i}: rms ratio {ratio}"
        );

        // Primary-beam image: the Gaussian of separation, computed by astropy.
        assert!(f(&s["pb_max_abs_err"]) < 1e-6, "{}", s["pb_max_abs_err"]);
        assert!(f(&s["pb_max"]) <= 1.0 && f(&s["pb_max"]) > 0.999 && f(&s["pb_min"]) > 0.0);

        for src in s["sources"].as_array().unwrap() {
            eprintln!(
                "snapshot {i} {}: peak offset ({:+.3}, {:+.3}) px, amplitude {:.5} vs S·A {:.5} Jy, rms ratio {ratio:.4}",
                src["name"],
                f(&src["dx"]),
                f(&src["dy"]),
                f(&src["amp"]),
                f(&src["app"])
            );
            checked += 1;
            let name = src["name"].as_str().unwrap();
            // The local maximum is the pixel that holds the truth position, its sub-pixel peak
            // within a fraction of a pixel.
            assert!(
                f(&src["dx_max"]).abs() <= 1.0 && f(&src["dy_max"]).abs() <= 1.0,
                "{i} {src}"
            );
            let off = f(&src["dx"]).hypot(f(&src["dy"]));
            sum_off2 += off * off;
            assert!(
                off < 0.5,
                "snapshot {i} {name}: peak {off:.3} px from astropy's truth position: {src}"
            );
            // Amplitude: S·A within noise (matched-template error ≈ σ).
            let (app, amp) = (f(&src["app"]), f(&src["amp"]));
            assert!(
                (amp - app).abs() < 4.0 * info.rms_jy + 0.01 * app,
                "snapshot {i} {name}: amplitude {amp} vs S·A {app}"
            );
            by_name
                .entry(name.to_string())
                .or_default()
                .push((i, f(&src["ra"]), f(&src["dec"])));
        }
    }
    assert!(
        checked >= 12,
        "only {checked} bright isolated sources checked"
    );
    let rms_off = (sum_off2 / f64::from(checked)).sqrt();
    assert!(rms_off < 0.2, "rms peak offset {rms_off:.3} px");
    // Overlapping consecutive snapshots see the same source at the same sky position.
    let mut pairs = 0;
    for (name, seen) in &by_name {
        for w in seen.windows(2) {
            let ((_, ra1, d1), (_, ra2, d2)) = (w[0], w[1]);
            let dra = ((ra1 - ra2 + 540.0) % 360.0 - 180.0) * d1.to_radians().cos();
            let sep_arcsec = dra.hypot(d1 - d2) * 3600.0;
            assert!(
                sep_arcsec < 0.3 * 30.0,
                "{name}: {sep_arcsec}\" between snapshots"
            );
            pairs += 1;
        }
    }
    assert!(pairs >= 2, "only {pairs} sources seen in two snapshots");
}

const CHECK_LST: &str = r#"
import sys, json, csv, os
import erfa
from astropy.io import fits
from astropy.time import Time
d = sys.argv[1]
out = []
for s in csv.DictReader(open(os.path.join(d, "snapshots.csv"))):
    h = fits.getheader(os.path.join(d, s["file"]))
    mid = h["MJD-AVG"]
    gmst = erfa.gmst82(2400000.5, mid)  # UT1 taken as UTC, as the simulator does
    lst = (gmst * 180 / 3.141592653589793 - 118.2834) % 360
    t0 = Time(h["DATE-OBS"], scale="utc")
    tavg = Time(h["DATE-AVG"], scale="utc")
    out.append({"crval1": h["CRVAL1"], "lst": lst, "mjd_obs": h["MJD-OBS"], "mjd_from_date": t0.mjd,
                "mid_minus_start_s": (tavg - t0).sec, "telapse": h["TELAPSE"]})
print(json.dumps(out))
"#;

#[test]
fn phase_centres_follow_the_sidereal_time_at_ovro() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SimConfig {
        out: dir.path().to_path_buf(),
        images: 3,
        size: 32,
        cadence: 600.0,
        start: "2026-03-20T07:31:00Z".parse().unwrap(),
        ..SimConfig::default()
    };
    simulate(&cfg, &|_| {}).unwrap();
    let got = run_python(CHECK_LST, &[dir.path().to_str().unwrap()]);
    let rows = got.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        let d = (f(&r["crval1"]) - f(&r["lst"]) + 540.0) % 360.0 - 180.0;
        assert!(
            d.abs() < 1e-6,
            "CRVAL1 {} vs erfa LST {}",
            r["crval1"],
            r["lst"]
        );
        assert!((f(&r["mjd_obs"]) - f(&r["mjd_from_date"])).abs() * 86400.0 < 1e-3);
        assert!((f(&r["mid_minus_start_s"]) - 300.0).abs() < 1e-3);
        assert_eq!(f(&r["telapse"]), 600.0);
    }
}

/// The pixel bytes of every FITS file in a directory, by name (headers included: they hold no
/// wall-clock time, so whole files must match).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn same_seed_same_bytes_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = |name: &str, seed: u64| SimConfig {
        out: dir.path().join(name),
        images: 3,
        size: 64,
        seed,
        pb_images: true,
        ..SimConfig::default()
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    one.install(|| simulate(&cfg("a", 5), &|_| {})).unwrap();
    three.install(|| simulate(&cfg("b", 5), &|_| {})).unwrap();
    simulate(&cfg("c", 6), &|_| {}).unwrap();
    let (a, b, c) = (
        files(&dir.path().join("a")),
        files(&dir.path().join("b")),
        files(&dir.path().join("c")),
    );
    assert_eq!(a.len(), 3 * 2 + 2);
    assert!(a == b, "same seed, different thread counts: files differ");
    // A different seed changes the sky, the noise and the pixels of every snapshot.
    let names: Vec<_> = a.iter().map(|(n, _)| n).collect();
    assert_eq!(names, c.iter().map(|(n, _)| n).collect::<Vec<_>>());
    for ((name, x), (_, y)) in a.iter().zip(&c) {
        if name.ends_with(".fits") && !name.ends_with(".pb.fits") {
            assert_ne!(
                x[2880 * 2..],
                y[2880 * 2..],
                "{name}: pixels did not change with the seed"
            );
        }
    }
    assert_ne!(
        fs::read(dir.path().join("a/truth.csv")).unwrap(),
        fs::read(dir.path().join("c/truth.csv")).unwrap()
    );
    no_temporaries(&dir.path().join("a"));
}
