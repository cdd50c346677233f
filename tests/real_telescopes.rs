//! Every real image of `../shared/data/real` builds alone with the default beam choice, and what
//! reaches the mosaic is the image divided by the right beam: the telescope's beam centred on the
//! pointing for a single pointing (VLA 327 MHz with its OBSRA/OBSDEC in FK4 B1950, MeerKAT by
//! WSClean), nothing for the coadds (Miriad LINMOS of ATCA pointings, a FIRST coadd, an NVSS
//! postage stamp, a MAGPIS merge). The reference is astropy: `reproject` of the original onto our
//! grid, divided by the AIPS/Miriad (VLA) or Gaussian (MeerKAT) beam evaluated by astropy's
//! coordinates at the pointing the header gives.

#![allow(clippy::print_stdout)]

mod mosaic_util;

use contimg::mosaic::engine::{
    AppliedBeam, BuildOptions, Interpolation, MosaicInput, OutputPaths, build_mosaic,
};
use mosaic_util::*;

const SCRIPT: &str = r#"
import sys, json
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.coordinates import SkyCoord, FK4, FK5, ICRS
import astropy.units as u
from reproject import reproject_interp
orig, mosaic, beam, cutoff = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
mh = fits.getheader(mosaic)
mine = fits.getdata(mosaic).astype(float)
with fits.open(orig) as hd:
    h = hd[0].header
    data = np.squeeze(hd[0].data).astype(float)
iw = WCS(h).celestial
mw = WCS(mh).celestial
ref, _ = reproject_interp((data, iw), mw, shape_out=mine.shape, order='bilinear', roundtrip_coords=False)
A = np.ones_like(ref)
if beam != 'none':
    # Pointing: OBSRA/OBSDEC in the header's equinox (FK4 B1950 for EPOCH 1950), else CRVAL.
    eq = h.get('EQUINOX', h.get('EPOCH', 2000.0))
    ra, dec = h.get('OBSRA', h['CRVAL1']), h.get('OBSDEC', h['CRVAL2'])
    frame = FK4(equinox='B1950') if eq < 1984 else FK5(equinox='J2000')
    pnt = SkyCoord(ra * u.deg, dec * u.deg, frame=frame).transform_to(ICRS())
    yy, xx = np.mgrid[0:mine.shape[0], 0:mine.shape[1]]
    sky = mw.pixel_to_world(xx, yy).transform_to(ICRS())
    r_arcmin = sky.separation(pnt).arcmin
    freq_ghz = float(sys.argv[5]) / 1e9
    if beam == 'vla':
        # AIPS PBCOR / Miriad pb.for VLA: A = P(0)/P(x), x = (r[arcmin] nu[GHz])^2, cut at 0.023.
        c = [0.9920378, 0.9956885e-3, 0.3814573e-5, -0.5311695e-8, 0.3980963e-11]
        x = (r_arcmin * freq_ghz) ** 2
        P = sum(ci * x ** i for i, ci in enumerate(c))
        A = c[0] / P
        A[A < 0.023] = 0.0
    elif beam.startswith('gauss:'):
        dish, k = map(float, beam[6:].split(','))
        fwhm_arcmin = np.degrees(k * 299792458.0 / (freq_ghz * 1e9) / dish) * 60
        A = np.exp(-4 * np.log(2) * (r_arcmin / fwhm_arcmin) ** 2)
# Judge away from the cut-off's edge and the image's border (one pixel in), where bilinear
# support is defined differently (astropy reaches half a pixel beyond the last pixel centre).
inner = np.isfinite(ref)
for ax in (0, 1):
    for s in (1, -1):
        inner &= np.roll(np.isfinite(ref), s, axis=ax)
ok = inner & (A >= cutoff * 1.2)
both = ok & np.isfinite(mine)
exp = ref[both] / A[both]
d = mine[both] - exp
scale = np.sqrt(np.mean(exp ** 2))
print(json.dumps({"n_ref": int(ok.sum()), "n_both": int(both.sum()),
                  "rel_rms": float(np.sqrt(np.mean(d ** 2)) / scale),
                  "median_ratio": float(np.median(mine[both][np.abs(exp) > 0.2 * np.abs(exp).max()] / exp[np.abs(exp) > 0.2 * np.abs(exp).max()]))}))
"#;

struct Case {
    file: &'static str,
    applied: AppliedBeam,
    /// Words the recorded reason must contain.
    reason: &'static str,
    /// The beam astropy divides by: "none", "vla" or "gauss:DISH,K".
    beam: &'static str,
}

const CASES: &[Case] = &[
    Case {
        file: "FeatherTestIn1.fits.gz",
        applied: AppliedBeam::Model,
        reason: "VLA",
        beam: "vla",
    },
    Case {
        file: "1934-638LModel.fits.gz",
        applied: AppliedBeam::Model,
        reason: "MeerKAT",
        beam: "gauss:13.5,1.13",
    },
    Case {
        file: "PD_2000_sub.fits",
        applied: AppliedBeam::Unity,
        reason: "LINMOS",
        beam: "none",
    },
    Case {
        file: "first_image.fits",
        applied: AppliedBeam::Unity,
        reason: "COADD",
        beam: "none",
    },
    Case {
        file: "AIPS_header.fits",
        applied: AppliedBeam::Unity,
        reason: "NVSS",
        beam: "none",
    },
    Case {
        file: "magpis_image.fits",
        applied: AppliedBeam::Unity,
        reason: "IMERG",
        beam: "none",
    },
];

#[test]
fn every_real_image_builds_with_the_beam_it_needs() {
    let Some(data) =
        realdata::real_data("real_telescopes::every_real_image_builds_with_the_beam_it_needs")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for case in CASES {
        let path = data.join(case.file);
        let img = contimg::fits::read::read_image(&path).expect("read");
        let rms = contimg::stats::robust_rms(img.plane.iter()).unwrap();
        let opts = BuildOptions {
            interpolation: Interpolation::Bilinear,
            ..BuildOptions::default()
        };
        let stem = case.file.split('.').next().unwrap();
        let r = build_mosaic(
            &[MosaicInput::new(path.clone(), rms)],
            &opts,
            &OutputPaths::from_stem(dir.path(), stem),
            &|_| {},
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.file));
        let rec = &r.inputs[0];
        assert_eq!(rec.primary_beam, case.applied, "{}: {rec:?}", case.file);
        assert!(
            rec.beam_reason.contains(case.reason),
            "{}: reason {:?}",
            case.file,
            rec.beam_reason
        );
        let (h, _) = read(&r.paths.mosaic);
        let history: String = h.history().collect::<Vec<_>>().join(" ");
        assert!(
            history.contains(case.reason),
            "{}: the HISTORY does not record the beam: {history}",
            case.file
        );
        let freq = rec
            .freq_hz
            .unwrap_or_else(|| panic!("{}: no frequency read", case.file));
        let out = run_python(
            SCRIPT,
            &[
                path.to_str().unwrap(),
                r.paths.mosaic.to_str().unwrap(),
                case.beam,
                &opts.pb_cutoff.to_string(),
                &freq.to_string(),
            ],
        );
        println!("{}: {}", case.file, out.trim());
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("python output");
        let (n_ref, n_both) = (
            v["n_ref"].as_u64().unwrap() as f64,
            v["n_both"].as_u64().unwrap() as f64,
        );
        assert!(n_ref > 100.0, "{}: {out}", case.file);
        assert!(
            n_both >= 0.98 * n_ref,
            "{}: the mosaic blanks pixels the image has: {out}",
            case.file
        );
        let rel = v["rel_rms"].as_f64().unwrap();
        let ratio = v["median_ratio"].as_f64().unwrap();
        assert!(
            rel < 0.01,
            "{}: differs from image/A by {rel}: {out}",
            case.file
        );
        assert!(
            (ratio - 1.0).abs() < 0.01,
            "{}: bright pixels off by {ratio}: {out}",
            case.file
        );
    }
}
