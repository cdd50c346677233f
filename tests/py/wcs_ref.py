"""Reference values for tests/wcs_astropy.rs, computed with astropy (WCSLIB).

Input (JSON file named by argv[1]):
  {"cases": [{"name", "cards": [[key, value], ...], "pixels": [[x, y], ...] (0-based),
              "worlds": [[lon, lat], ...]}],
   "frames": [{"frame": "fk4"|"fk5"|"icrs"|"galactic", "equinox": float|null,
               "points": [[lon, lat], ...]}],
   "files": [path, ...]}
Output (JSON on stdout): per case "world" (pixel -> world, own frame), "pix" (world -> pixel),
"icrs" (pixel -> ICRS); per frame "to_icrs" and "from_icrs"; per file the ICRS position of the
image centre ((n1-1)/2, (n2-1)/2). Invalid results are null.
"""
import json
import math
import sys
import warnings

import numpy as np
from astropy import units as u
from astropy.coordinates import FK4, FK5, ICRS, Galactic, SkyCoord
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

warnings.simplefilter("ignore")


def pairs(a, b):
    return [None if (math.isnan(x) or math.isnan(y)) else [float(x), float(y)] for x, y in zip(a, b)]


def frame_of(spec):
    name, eq = spec["frame"], spec.get("equinox")
    if name == "fk4":
        return FK4(equinox=Time(eq, format="byear"))
    if name == "fk5":
        return FK5(equinox=Time(eq, format="jyear"))
    if name == "galactic":
        return Galactic()
    return ICRS()


def main():
    spec = json.load(open(sys.argv[1]))
    out = {"cases": [], "frames": [], "files": []}
    for case in spec.get("cases", []):
        h = fits.Header()
        for k, v in case["cards"]:
            h[k] = v
        w = WCS(h).celestial
        px = np.array(case["pixels"], dtype=float).reshape(-1, 2)
        wl = np.array(case["worlds"], dtype=float).reshape(-1, 2)
        lon, lat = w.wcs_pix2world(px[:, 0], px[:, 1], 0)
        x, y = w.wcs_world2pix(wl[:, 0], wl[:, 1], 0)
        sky = w.pixel_to_world(px[:, 0], px[:, 1]).icrs
        out["cases"].append({
            "name": case["name"],
            "world": pairs(lon, lat),
            "pix": pairs(x, y),
            "icrs": pairs(sky.ra.deg, sky.dec.deg),
        })
    for fs in spec.get("frames", []):
        fr = frame_of(fs)
        p = np.array(fs["points"], dtype=float).reshape(-1, 2)
        c = SkyCoord(p[:, 0] * u.deg, p[:, 1] * u.deg, frame=fr).icrs
        back = SkyCoord(p[:, 0] * u.deg, p[:, 1] * u.deg, frame=ICRS()).transform_to(fr)
        sph = back.spherical
        out["frames"].append({
            "to_icrs": pairs(c.ra.deg, c.dec.deg),
            "from_icrs": pairs(sph.lon.deg, sph.lat.deg),
        })
    for path in spec.get("files", []):
        h = fits.getheader(path)
        w = WCS(h).celestial
        n1, n2 = h["NAXIS1"], h["NAXIS2"]
        c = w.pixel_to_world((n1 - 1) / 2, (n2 - 1) / 2).icrs
        out["files"].append({"path": path, "icrs": [float(c.ra.deg), float(c.dec.deg)]})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
