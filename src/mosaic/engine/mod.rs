//! The mosaic engine: choose an output grid from the inputs, reproject each input onto it and
//! combine them linmos-style, then write the mosaic, its weight map and its expected-noise map.
//!
//! What it owns and promises:
//! - **Grid** ([`grid`]): ICRS; pixel size = median of the inputs unless overridden; SIN at the
//!   field centre for compact fields, CAR (CRVAL2 = 0, exact at any declination, CDELT1 scaled by
//!   1/cos δ so pixels are square at the strip's declination) when a footprint point lies more
//!   than `wide_field_deg` (10°) from the centre; RA wrap-around handled by working in unit
//!   vectors and RA differences. A grid above `max_pixels` is refused before any pixel is read.
//! - **Reprojection** ([`kernel`], [`mesh`]): nearest, bilinear, bicubic (Keys a = −0.5),
//!   Lanczos-3; a NaN or off-image tap with non-negligible weight makes the sample NaN (no
//!   renormalisation). Input pixel coordinates and the direction cosines (l, m) about the
//!   pointing come from an exact transform on a mesh (start 32 px, halved until the error
//!   checked at every cell centre and edge midpoint is ≤ half the tolerance: 0.01 px, 1e-7 rad)
//!   with bilinear interpolation in between; A is then looked up per pixel from l² + m² in a
//!   fine table of the beam model (error < 1e-8). Only output pixels inside each input's
//!   footprint ∩ beam cut-off circle are visited.
//! - **Combination**: A = primary-beam response (Gaussian model of `beam.rs` for the input's
//!   frequency and dish, or a `<stem>.pb.fits` beam image beside the input, sampled bilinearly);
//!   pixels with A < `pb_cutoff` (0.1) are ignored; inputs that are not pb-corrected are divided
//!   by A; weight w = A²/σ² (σ of a pb-corrected input is its noise at the pointing centre,
//!   measured as the robust rms of I·A where A ≥ the cut-off, not the recorded rms of the
//!   corrected image, whose noise σ/A grows outwards); mosaic = Σ w·(I/A) / Σ w; weight map Σ w in (Jy/beam)⁻²; noise map
//!   1/√Σw. Accumulators are `f32` holding weights normalised by the median σ (so they stay near
//!   1); per-pixel arithmetic is f32 with coordinates in f64.
//! - **Memory**: two f32 output accumulators plus at most three inputs (one being combined, one
//!   queued, one being read by the reader thread, their buffers reused), whatever the number of
//!   inputs; the noise map is computed from the weight map while it is written, never stored.
//! - **Common beam**: BMAJ = the largest input BMAJ, BMIN = the largest input BMIN, BPA of the
//!   input with the largest BMAJ (stated in a COMMENT); inputs are not convolved to it.
//! - **Output**: 2-D BITPIX −32 images, NaN where nothing contributed (weight map 0 there),
//!   written atomically by `fits::write` in large chunks (O_DIRECT where the filesystem takes
//!   it), each hashed (SHA-256) as it is written.

pub mod grid;
pub mod kernel;
pub mod linmos;
pub mod mesh;

pub use grid::{GridChoice, GridError, GridProjection, OutputGrid, ProjectionChoice};
pub use kernel::Interpolation;
pub use linmos::{
    AppliedBeam, BuildOptions, Coverage, GridPlan, MosaicError, MosaicInput, MosaicResult,
    OutputPaths, PrimaryBeam, Progress, build_from_plan, build_mosaic, plan_grid,
};
pub use mesh::MeshTolerance;
