#!/usr/bin/env python3
"""Helpers for scripts/bench-build: prepare peer inputs and run the astropy reproject peer.

  bench_peers.py prep SIMDIR WORKDIR MOSAIC.fits [CUTOFF]
      For each snapshot in SIMDIR/snapshots.csv write WORKDIR/img/<stem>.fits (2-D I/A, NaN where
      A < CUTOFF) and WORKDIR/wt/<stem>.fits (A^2/sigma^2, 0 where A < CUTOFF), using the same
      Gaussian primary beam as contimg (FWHM = 1.2 c / (RESTFRQ DISHDIAM), centre = reference
      pixel). Also write the output grid of MOSAIC.fits as WORKDIR/template.hdr (Montage) and
      WORKDIR/swarp/coadd.head (SWarp). SWarp and Montage have no primary-beam input, so they get
      these pre-divided images and weight maps (their preparation is not timed).
  bench_peers.py reproject WORKDIR OUT.fits
      astropy reproject_and_coadd (bilinear, input_weights, mean) of the prepared inputs onto the
      template grid.
"""
import csv
import os
import sys

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

C = 299792458.0


def grid_cards(mh):
    keys = ["NAXIS1", "NAXIS2", "CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2",
            "CDELT1", "CDELT2", "CUNIT1", "CUNIT2", "LONPOLE"]
    return [(k, mh[k]) for k in keys if k in mh]


def card(k, v):
    return fits.Card(k, v).image


def prep(simdir, work, mosaic, cutoff=0.1):
    os.makedirs(os.path.join(work, "img"), exist_ok=True)
    os.makedirs(os.path.join(work, "wt"), exist_ok=True)
    os.makedirs(os.path.join(work, "swarp"), exist_ok=True)
    mh = fits.getheader(mosaic)
    cards = grid_cards(mh)
    with open(os.path.join(work, "template.hdr"), "w") as f:
        for k, v in [("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2)] + cards + [("EQUINOX", 2000.0)]:
            f.write(card(k, v) + "\n")
        f.write("END\n")
    with open(os.path.join(work, "swarp", "coadd.head"), "w") as f:
        for k, v in cards + [("EQUINOX", 2000.0), ("RADESYS", "FK5")]:
            f.write(card(k, v) + "\n")
        f.write("END\n")
    rows = list(csv.DictReader(open(os.path.join(simdir, "snapshots.csv"))))
    for r in rows:
        path = os.path.join(simdir, r["file"])
        sigma = float(r["rms_jy"])
        with fits.open(path) as hd:
            h = hd[0].header
            data = np.squeeze(hd[0].data).astype(np.float32)
        w = WCS(h).celestial
        ny, nx = data.shape
        yy, xx = np.mgrid[0:ny, 0:nx]
        sky = w.pixel_to_world(xx, yy)
        centre = w.pixel_to_world(h["CRPIX1"] - 1, h["CRPIX2"] - 1)
        fwhm = 1.2 * C / h["RESTFRQ"] / h.get("DISHDIAM", 4.65)
        A = np.exp(-4 * np.log(2) * (centre.separation(sky).rad / fwhm) ** 2)
        ok = A >= cutoff
        hh = w.to_header()
        hh["EQUINOX"] = 2000.0
        hh["RADESYS"] = "FK5"
        stem = os.path.splitext(r["file"])[0]
        fits.writeto(os.path.join(work, "img", stem + ".fits"),
                     np.where(ok, data / A, np.nan).astype(np.float32), hh, overwrite=True)
        fits.writeto(os.path.join(work, "wt", stem + ".fits"),
                     np.where(ok, A * A / sigma ** 2, 0).astype(np.float32), hh, overwrite=True)


def run_reproject(work, out):
    from reproject import reproject_interp
    from reproject.mosaicking import reproject_and_coadd
    th = fits.Header.fromtextfile(os.path.join(work, "template.hdr"))
    names = sorted(os.listdir(os.path.join(work, "img")))
    imgs, wts = [], []
    for n in names:
        with fits.open(os.path.join(work, "img", n)) as hd:
            imgs.append((hd[0].data.copy(), WCS(hd[0].header)))
        wts.append(fits.getdata(os.path.join(work, "wt", n)))
    arr, foot = reproject_and_coadd(imgs, WCS(th), shape_out=(th["NAXIS2"], th["NAXIS1"]),
                                    input_weights=wts, reproject_function=reproject_interp,
                                    combine_function="mean", match_background=False,
                                    blank_pixel_value=np.nan, order="bilinear",
                                    roundtrip_coords=False)
    fits.writeto(out, arr.astype(np.float32), WCS(th).to_header(), overwrite=True)


if __name__ == "__main__":
    if sys.argv[1] == "prep":
        prep(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]) if len(sys.argv) > 5 else 0.1)
    elif sys.argv[1] == "reproject":
        run_reproject(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
