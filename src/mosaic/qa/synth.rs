//! Synthetic "mosaics" with known truth for tests, benchmarks and demos: point sources of known
//! flux convolved with a circular Gaussian restoring beam, plus correlated noise (white noise
//! convolved with the same beam, scaled so the per-pixel rms is exactly `noise_jy`), on a SIN or
//! CAR grid in ICRS.
//!
//! Invariants: the output is a pure function of the struct (seeded); pixel (x, y) is 0-based; a
//! point source of flux S has peak S Jy/beam at its true position.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::fits::header::{Header, Value};
use crate::fits::write::{FitsWriteError, write_image_2d};
use crate::wcs::{Frame, Wcs};

/// A point source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthSource {
    pub ra_deg: f64,
    pub dec_deg: f64,
    pub flux_jy: f64,
}

/// A synthetic mosaic description.
#[derive(Debug, Clone)]
pub struct SynthMosaic {
    pub nx: usize,
    pub ny: usize,
    pub cell_arcsec: f64,
    /// "SIN", "CAR", …
    pub projection: String,
    /// ICRS position of the central pixel (deg).
    pub centre: (f64, f64),
    /// Beam FWHM (arcsec), circular.
    pub beam_arcsec: f64,
    pub noise_jy: f64,
    pub seed: u64,
    pub sources: Vec<SynthSource>,
}

use crate::stats::FWHM_PER_SIGMA;

impl SynthMosaic {
    /// The grid's WCS (reference pixel at the centre).
    pub fn wcs(&self) -> Wcs {
        let cell = self.cell_arcsec / 3600.0;
        let crpix = ((self.nx as f64 - 1.0) / 2.0, (self.ny as f64 - 1.0) / 2.0);
        // The CAR reference point must be on the equator of the projection for a plain grid;
        // a CAR grid centred at dec δ is offset by δ/cell pixels.
        if self.projection.eq_ignore_ascii_case("CAR") {
            return Wcs::new(
                "CAR",
                (self.centre.0, 0.0),
                (crpix.0, crpix.1 - self.centre.1 / cell),
                (-cell, cell),
                Frame::Icrs,
            )
            .expect("a CAR grid with a finite cell is valid");
        }
        Wcs::new(
            &self.projection,
            self.centre,
            crpix,
            (-cell, cell),
            Frame::Icrs,
        )
        .expect("projection codes used by tests are valid")
    }

    /// The FITS header: WCS, restoring beam, units.
    pub fn header(&self) -> Header {
        let mut h = Header::new();
        for c in self.wcs().to_cards() {
            h.set(&c.key, c.value, &c.comment);
        }
        let b = self.beam_arcsec / 3600.0;
        h.set("BMAJ", Value::Float(b), "restoring beam major axis (deg)");
        h.set("BMIN", Value::Float(b), "restoring beam minor axis (deg)");
        h.set(
            "BPA",
            Value::Float(0.0),
            "restoring beam position angle (deg)",
        );
        h.set("BUNIT", Value::Str("JY/BEAM".into()), "");
        h.set("PBCOR", Value::Bool(true), "primary-beam corrected");
        h.push_history("contimg qa::synth test mosaic");
        h
    }

    /// Adds `n` sources with fluxes log-uniform in [fmin, fmax], at least `margin` pixels from the
    /// edges and at least `min_sep` pixels apart.
    pub fn add_random_sources(
        &mut self,
        n: usize,
        fmin: f64,
        fmax: f64,
        margin: f64,
        min_sep: f64,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x5eed_5eed);
        let wcs = self.wcs();
        let mut placed: Vec<(f64, f64)> = Vec::new();
        let mut tries = 0;
        while placed.len() < n && tries < n * 1000 {
            tries += 1;
            let x = rng.random_range(margin..self.nx as f64 - margin);
            let y = rng.random_range(margin..self.ny as f64 - margin);
            if placed
                .iter()
                .any(|p| (p.0 - x).powi(2) + (p.1 - y).powi(2) < min_sep * min_sep)
            {
                continue;
            }
            let Some((ra, dec)) = wcs.pix_to_icrs(x, y) else {
                continue;
            };
            let u: f64 = rng.random_range(0.0..1.0);
            let flux = fmin * (fmax / fmin).powf(u);
            placed.push((x, y));
            self.sources.push(SynthSource {
                ra_deg: ra,
                dec_deg: dec,
                flux_jy: flux,
            });
        }
    }

    /// Renders the pixels (rows = y).
    pub fn render(&self) -> Array2<f32> {
        let (nx, ny) = (self.nx, self.ny);
        let sig = self.beam_arcsec / self.cell_arcsec / FWHM_PER_SIGMA;
        let r = (4.0 * sig).ceil() as usize;
        let k1: Vec<f64> = (0..=2 * r)
            .map(|i| {
                let d = i as f64 - r as f64;
                (-0.5 * d * d / (sig * sig)).exp()
            })
            .collect();
        let s2: f64 = k1.iter().map(|k| k * k).sum();
        let scale = self.noise_jy / s2;
        let k1f: Vec<f32> = k1.iter().map(|k| *k as f32).collect();
        let (wp, hp) = (nx + 2 * r, ny + 2 * r);
        let mut white = vec![0f32; wp * hp];
        white.par_chunks_mut(wp).enumerate().for_each(|(j, row)| {
            let mut rng = ChaCha8Rng::seed_from_u64(
                self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (j as u64),
            );
            for v in row.iter_mut() {
                *v = rng.sample(StandardNormal);
            }
        });
        // Horizontal pass: hp rows × nx.
        let mut tmp = vec![0f32; nx * hp];
        tmp.par_chunks_mut(nx).enumerate().for_each(|(j, out)| {
            let src = &white[j * wp..(j + 1) * wp];
            for (i, &k) in k1f.iter().enumerate() {
                for (o, &w) in out.iter_mut().zip(&src[i..i + nx]) {
                    *o += k * w;
                }
            }
        });
        drop(white);
        let mut img = vec![0f32; nx * ny];
        img.par_chunks_mut(nx).enumerate().for_each(|(y, out)| {
            for (j, &k) in k1f.iter().enumerate() {
                let src = &tmp[(y + j) * nx..(y + j + 1) * nx];
                for (o, &w) in out.iter_mut().zip(src) {
                    *o += k * w;
                }
            }
            for o in out.iter_mut() {
                *o = (f64::from(*o) * scale) as f32;
            }
        });
        let mut img = Array2::from_shape_vec((ny, nx), img).expect("shape matches");
        let wcs = self.wcs();
        let rs = (6.0 * sig).ceil() as i64;
        for s in &self.sources {
            let Some((x0, y0)) = wcs.icrs_to_pix(s.ra_deg, s.dec_deg) else {
                continue;
            };
            let (cx, cy) = (x0.round() as i64, y0.round() as i64);
            for y in cy - rs..=cy + rs {
                for x in cx - rs..=cx + rs {
                    if x < 0 || y < 0 || x >= nx as i64 || y >= ny as i64 {
                        continue;
                    }
                    let d2 = (x as f64 - x0).powi(2) + (y as f64 - y0).powi(2);
                    img[[y as usize, x as usize]] +=
                        (s.flux_jy * (-0.5 * d2 / (sig * sig)).exp()) as f32;
                }
            }
        }
        img
    }

    /// Writes `<stem>.fits`, `<stem>.weight.fits` and `<stem>.noise.fits` (uniform expected noise
    /// `noise_jy`, NaN where the mosaic is NaN) into `dir`; `edit` may change the pixels first.
    pub fn write(
        &self,
        dir: &Path,
        stem: &str,
        edit: &dyn Fn(&mut Array2<f32>),
    ) -> Result<[PathBuf; 3], FitsWriteError> {
        let mut img = self.render();
        edit(&mut img);
        let h = self.header();
        let paths = [
            dir.join(format!("{stem}.fits")),
            dir.join(format!("{stem}.weight.fits")),
            dir.join(format!("{stem}.noise.fits")),
        ];
        write_image_2d(&paths[0], img.view(), &h)?;
        let w = 1.0 / (self.noise_jy * self.noise_jy);
        let weight = img.mapv(|v| if v.is_finite() { w as f32 } else { 0.0 });
        write_image_2d(&paths[1], weight.view(), &h)?;
        let noise = img.mapv(|v| {
            if v.is_finite() {
                self.noise_jy as f32
            } else {
                f32::NAN
            }
        });
        write_image_2d(&paths[2], noise.view(), &h)?;
        Ok(paths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_rms_and_peak_are_as_specified() {
        let mut m = SynthMosaic {
            nx: 300,
            ny: 300,
            cell_arcsec: 2.0,
            projection: "SIN".into(),
            centre: (150.0, 30.0),
            beam_arcsec: 8.0,
            noise_jy: 1e-3,
            seed: 1,
            sources: vec![],
        };
        let img = m.render();
        let rms = crate::stats::robust_rms(img.iter()).unwrap();
        assert!((rms / 1e-3 - 1.0).abs() < 0.03, "rms {rms}");
        m.noise_jy = 0.0;
        let (ra, dec) = m.wcs().pix_to_icrs(100.0, 120.0).unwrap();
        m.sources.push(SynthSource {
            ra_deg: ra,
            dec_deg: dec,
            flux_jy: 2.0,
        });
        let img = m.render();
        assert!((img[[120, 100]] - 2.0).abs() < 1e-5);
    }
}
