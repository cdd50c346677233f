//! `contimg tiers`: the mosaic tiers in force (built-in, overridden by contimg.toml).

use std::io::IsTerminal;

use super::{Ctx, emit_listing, emit_text};

/// Show the mosaic tiers in force.
///
/// Show the mosaic tiers: image count, rms threshold, interpolation, astrometry, timeout.
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

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let tiers = ctx.tiers()?;
    if args.json || !std::io::stdout().is_terminal() {
        return emit_listing("contimg.tier/1", &tiers);
    }
    let mut out = format!(
        "{:<12} {:>10} {:>12} {:<13} {:<10} {:>8}  {}\n",
        "tier",
        "max_images",
        "max_rms_mJy",
        "interpolation",
        "astrometry",
        "timeout",
        "description"
    );
    for t in &tiers {
        out.push_str(&format!(
            "{:<12} {:>10} {:>12} {:<13} {:<10} {:>6}m  {}\n",
            t.name,
            t.max_images,
            t.max_rms_jy * 1e3,
            t.interpolation,
            if t.require_astrometry { "wanted" } else { "no" },
            t.timeout_minutes,
            t.description
        ));
    }
    emit_text(&out)
}
