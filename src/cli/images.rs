//! `contimg images`: list registered images.

use std::io::IsTerminal;

use super::{Ctx, emit_listing, emit_text};
use crate::workspace::session::ImageFilter;

/// List registered images, ordered by observation time.
///
/// A table when stdout is a terminal; JSON (an array of image records) with --json or when
/// stdout is a pipe or file. Times are ISO-8601 UTC (e.g. 2026-01-01T03:00:00Z) or MJD.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only images observed at or after this time (ISO-8601 UTC or MJD).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only images observed before this time (ISO-8601 UTC or MJD).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only images whose rms is at most this (Jy/beam).
    #[arg(long, value_name = "JY")]
    pub max_rms: Option<f64>,
    /// Print JSON even on a terminal.
    #[arg(long)]
    pub json: bool,
}

/// A time given as ISO-8601 UTC (date, or date and time) or as an MJD number, as an MJD.
fn parse_time_mjd(s: &str) -> Result<f64, crate::time::TimeError> {
    if let Ok(m) = s.trim().parse::<f64>()
        && crate::time::from_mjd(m).is_ok()
    {
        return Ok(m);
    }
    Ok(crate::time::mjd(crate::time::parse_time(s)?))
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let filter = ImageFilter {
        since_mjd: args.since.as_deref().map(parse_time_mjd).transpose()?,
        until_mjd: args.until.as_deref().map(parse_time_mjd).transpose()?,
        max_rms_jy: args.max_rms,
    };
    let rows = ctx.session.images(&filter)?;
    if args.json || !std::io::stdout().is_terminal() {
        return emit_listing("contimg.image/1", &rows);
    }
    let mut out = format!(
        "{:>5}  {:<24}  {:>10}  {:>10}  {:>9}  {:>8}  {:>9}  {}\n",
        "id", "obs_time", "ra_deg", "dec_deg", "rms_mJy", "cell_\"", "beam_\"", "path"
    );
    for r in &rows {
        let beam = match (r.bmaj_arcsec, r.bmin_arcsec) {
            (Some(a), Some(b)) => format!("{a:.1}x{b:.1}"),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "{:>5}  {:<24}  {:>10.5}  {:>10.5}  {:>9.4}  {:>8.2}  {:>9}  {}\n",
            r.id.unwrap_or(0),
            r.obs_time.as_deref().unwrap_or("-"),
            r.ra_deg,
            r.dec_deg,
            r.rms_jy * 1e3,
            r.cell_arcsec,
            beam,
            r.path
        ));
    }
    ctx.debug(&format!("{} image(s)", rows.len()));
    emit_text(&out)
}
