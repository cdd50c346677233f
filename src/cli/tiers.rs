//! `contimg tiers`: the mosaic tiers in force (built-in, overridden by contimg.toml).

use std::io::IsTerminal;

use super::{Ctx, emit_listing, emit_text};
use crate::mosaic::tiers::Tier;

/// Show the mosaic tiers in force.
///
/// Show the mosaic tiers: image count, which images a plan takes (noise, band, resolution),
/// interpolation, astrometry, timeout.
///
/// A plan leaves out images noisier than max_rms_factor times the median rms of the window's
/// images (and, when a tier sets max_rms_jy, at or above that absolute rms); it takes one band
/// (frequencies within max_band_spread of each other; optionally only within frequency_hz) and
/// one resolution (restoring-beam areas within max_beam_spread of the band's median).
///
/// Tiers are built in (quicklook, science, deep) and can be overridden or extended with
/// [tiers.NAME] tables in contimg.toml. A table on a terminal; JSON with --json or in a pipe.
/// Outside a workspace the built-in tiers are shown.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON even on a terminal.
    #[arg(long)]
    pub json: bool,
}

/// The noise rule of a tier in words: "2.5x median", "2.5x median, < 1 mJy".
fn rms_rule(t: &Tier) -> String {
    let mut s = format!("{}x median", t.max_rms_factor);
    if let Some(cut) = t.max_rms_jy {
        s.push_str(&format!(", < {} mJy", cut * 1e3));
    }
    s
}

/// The band rule of a tier: "5 %", "1.3-1.5 GHz, 5 %".
fn band_rule(t: &Tier) -> String {
    let spread = format!("{} %", t.max_band_spread * 100.0);
    match t.frequency_hz {
        Some([lo, hi]) => format!("{}-{} GHz, {spread}", lo / 1e9, hi / 1e9),
        None => spread,
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let tiers = ctx.session.tiers()?;
    if args.json || !std::io::stdout().is_terminal() {
        return emit_listing("contimg.tier/1", tiers);
    }
    let rows: Vec<[String; 9]> = tiers
        .iter()
        .map(|t| {
            [
                t.name.clone(),
                t.max_images.to_string(),
                rms_rule(t),
                band_rule(t),
                format!("{} %", t.max_beam_spread * 100.0),
                t.interpolation.name().to_string(),
                if t.require_astrometry { "wanted" } else { "no" }.to_string(),
                format!("{}m", t.timeout_minutes),
                t.description.clone(),
            ]
        })
        .collect();
    let head = [
        "tier",
        "max_images",
        "rms cut",
        "band spread",
        "beam spread",
        "interpolation",
        "astrometry",
        "timeout",
        "description",
    ];
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(head.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    emit_text(&out)
}
