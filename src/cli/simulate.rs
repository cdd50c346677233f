//! `contimg simulate`: synthetic DSA-110-like drift-scan snapshots and their truth catalogue.

use std::path::PathBuf;

use super::{Ctx, emit_json};
use crate::mosaic::sim::{SimConfig, simulate};

/// Write simulated drift-scan snapshots and their truth catalogue.
///
/// Write simulated drift-scan snapshots (4-D SIN FITS, apparent sky, beam-correlated noise),
/// truth.csv (the sky) and snapshots.csv (each snapshot's centre, time and rms) into --out.
///
/// The telescope points at a fixed declination on the meridian, so each snapshot's RA is the
/// sidereal time at OVRO at its observation time (about 15 deg per hour) unless --ra-start is
/// given. Every snapshot sees the same sky through a 4.65 m dish primary beam (about 3 deg FWHM
/// at 1.4 GHz). Deterministic for a given --seed. Prints a JSON summary.
///
/// Example (a benchmark set): contimg simulate --out big --images 64 --size 2048 --cell 6
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Number of snapshots.
    #[arg(long, default_value_t = 4)]
    pub images: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Pixel size in arcsec.
    #[arg(long, default_value_t = 30.0)]
    pub cell: f64,
    /// Declination of the strip in degrees.
    #[arg(long, default_value_t = 35.0, allow_hyphen_values = true)]
    pub dec: f64,
    /// Start of the first snapshot, ISO-8601 UTC or MJD.
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    pub start: String,
    /// Seconds between snapshots.
    #[arg(long, default_value_t = 300.0)]
    pub cadence: f64,
    /// Random seed for the sky and the noise.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// RA of the first snapshot in degrees (default: the sidereal time at OVRO at --start).
    #[arg(long, value_name = "DEG")]
    pub ra_start: Option<f64>,
    /// Observing frequency in Hz.
    #[arg(long, default_value_t = 1.405e9)]
    pub freq: f64,
    /// Base noise rms in Jy/beam (each snapshot gets this times a factor in [0.7, 1.4]).
    #[arg(long, default_value_t = 0.5e-3)]
    pub noise: f64,
    /// Also write a primary-beam image <stem>.pb.fits per snapshot.
    #[arg(long)]
    pub pb_images: bool,
    /// Telescope whose primary beam attenuates the sky (TELESCOP): DSA-110, VLA, ATCA, MeerKAT,
    /// ASKAP, GMRT or WSRT.
    #[arg(long, default_value = "DSA-110")]
    pub telescope: String,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let cfg = SimConfig {
        out: args.out,
        images: args.images,
        size: args.size,
        cell: args.cell,
        dec: args.dec,
        start: crate::time::parse_time(&args.start)?,
        cadence: args.cadence,
        seed: args.seed,
        ra_start: args.ra_start,
        freq_hz: args.freq,
        noise_jy: args.noise,
        pb_images: args.pb_images,
        telescope: args.telescope,
    };
    let bar = ctx.bar(cfg.images as u64, "simulate");
    let summary = simulate(&cfg, &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    ctx.info(&format!(
        "simulate: {} snapshot(s), {} source(s) in {}",
        summary.snapshots.len(),
        summary.n_sources,
        summary.out_dir.display()
    ));
    emit_json(&serde_json::json!({
        "schema": "contimg.simulate/1",
        "summary": summary,
    }))
}
