//! Real data: overlapping tiles cut out of a VLA image with an old AIPS FK4/B1950 header (each
//! tile keeps its own, shifted, WCS) mosaic back to the original.

// A test or example reports on stdout, which its harness captures; only the binary is held to
// "stdout carries manifests only".
#![allow(clippy::print_stdout)]

mod mosaic_util;

use contimg::fits::Value;
use contimg::mosaic::engine::{
    BuildOptions, Interpolation, MosaicInput, OutputPaths, PrimaryBeam, build_mosaic,
};
use mosaic_util::*;

const RMS: f64 = 6.5e-3;

const SCRIPT: &str = r#"
import sys, json
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from reproject import reproject_interp
orig, mosaic = sys.argv[1], sys.argv[2]
mh = fits.getheader(mosaic)
mine = fits.getdata(mosaic).astype(float)
with fits.open(orig) as hd:
    h = hd[0].header
    data = np.squeeze(hd[0].data).astype(float)
iw = WCS(h).celestial
ref, _ = reproject_interp((data, iw), WCS(mh).celestial, shape_out=mine.shape, order='bilinear', roundtrip_coords=False)
both = np.isfinite(ref) & np.isfinite(mine)
d = mine[both] - ref[both]
print(json.dumps({"n": int(both.sum()), "n_mine": int(np.isfinite(mine).sum()), "rms": float(np.sqrt(np.mean(d ** 2))),
                  "frame": str(iw.wcs.radesys), "equinox": float(iw.wcs.equinox)}))
"#;

#[test]
fn fk4_tiles_mosaic_back_to_the_original() {
    let Some(data) = realdata::real_data("mosaic_real::fk4_tiles_mosaic_back_to_the_original")
    else {
        return;
    };
    let orig = data.join("FeatherTestIn1.fits.gz");
    assert!(
        orig.exists(),
        "real data missing: {} (set CONTIMG_REAL_DATA)",
        orig.display()
    );
    let img = contimg::fits::read::read_image(&orig).expect("read FeatherTestIn1");
    let (ny, nx) = img.plane.dim();
    let dir = tempfile::tempdir().unwrap();
    // 2 x 2 tiles of 230 px overlapping by 68 px; each keeps the original WCS with CRPIX shifted.
    let (w, step) = (230usize, nx - 230);
    let mut tiles = Vec::new();
    for (k, &(x0, y0)) in [(0, 0), (step, 0), (0, ny - w), (step, ny - w)]
        .iter()
        .enumerate()
    {
        let mut h = img.header.clone();
        let c1 = h.f64("CRPIX1").unwrap() - x0 as f64;
        let c2 = h.f64("CRPIX2").unwrap() - y0 as f64;
        h.set("CRPIX1", Value::Float(c1), "");
        h.set("CRPIX2", Value::Float(c2), "");
        let mut shape = img.shape.clone();
        shape[0] = w;
        shape[1] = w;
        let mut data = Vec::with_capacity(w * w);
        for y in y0..y0 + w {
            for x in x0..x0 + w {
                data.push(img.plane[[y, x]]);
            }
        }
        let path = dir.path().join(format!("tile{k}.fits"));
        contimg::fits::write::write_image(&path, &shape, &data, &h).unwrap();
        tiles.push(MosaicInput {
            pb_corrected: Some(true),
            ..MosaicInput::new(path, RMS)
        });
    }
    let opts = BuildOptions {
        interpolation: Interpolation::Bilinear,
        primary_beam: PrimaryBeam::Unity,
        ..BuildOptions::default()
    };
    let r = build_mosaic(
        &tiles,
        &opts,
        &OutputPaths::from_stem(dir.path(), "tiles"),
        &|_| {},
    )
    .unwrap();
    assert_eq!(r.n_contributing, 4);
    // The original alone, on the same grid, with the same kernel.
    let single = BuildOptions {
        grid_override: Some(r.grid.clone()),
        ..opts.clone()
    };
    let whole = MosaicInput {
        pb_corrected: Some(true),
        ..MosaicInput::new(orig.clone(), RMS)
    };
    let r1 = build_mosaic(
        &[whole],
        &single,
        &OutputPaths::from_stem(dir.path(), "whole"),
        &|_| {},
    )
    .unwrap();
    let (_, m) = read(&r.paths.mosaic);
    let (_, o) = read(&r1.paths.mosaic);
    let (mut n_both, mut n_o, mut worst) = (0usize, 0usize, 0.0f64);
    for (a, b) in m.iter().zip(o.iter()) {
        if b.is_finite() {
            n_o += 1;
        }
        if a.is_finite() && b.is_finite() {
            n_both += 1;
            worst = worst.max((f64::from(*a) - f64::from(*b)).abs());
        }
    }
    assert!(
        n_both as f64 >= 0.999 * n_o as f64,
        "tiles cover {n_both} of the original's {n_o} pixels"
    );
    assert!(
        worst <= 1e-6,
        "tiles differ from the original by up to {worst} Jy/beam"
    );
    // And against astropy reproject of the original onto our grid: exercises FK4 -> ICRS.
    let out = run_python(
        SCRIPT,
        &[orig.to_str().unwrap(), r.paths.mosaic.to_str().unwrap()],
    );
    eprintln!("reproject comparison: {}", out.trim());
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("python output");
    let rms = v["rms"].as_f64().unwrap();
    assert!(
        v["n"].as_u64().unwrap() as f64 > 0.99 * v["n_mine"].as_u64().unwrap() as f64,
        "{out}"
    );
    assert!(
        rms <= 0.05 * RMS,
        "rms difference {rms:.3e} Jy/beam against reproject ({out})"
    );
}
