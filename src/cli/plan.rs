//! `contimg plan`: choose the images of a window for a tier and record the plan.

use crate::time::{Instant, chrono_duration, parse_day, parse_duration, parse_time};

use super::{CliError, Ctx, emit_json};
use crate::manifest::{LeftOut, left_out_counts};
use crate::mosaic::plan::PlanRequest;

/// Select images for a mosaic and record the plan.
///
/// Select images for a mosaic and record a plan; prints a `contimg.plan/1` manifest.
///
/// The window is [start, end): give --start and --end (ISO-8601 UTC like 2026-11-20T03:00Z, or
/// MJD), or --last 24h (ending now), or --night 2026-11-20 (that UTC day). Of the images observed
/// in the window (and the sky box), the plan takes one band (frequencies within the tier's
/// max_band_spread of each other; the band with the most images), one resolution (restoring-beam
/// areas within max_beam_spread of the band's median) and images no noisier than max_rms_factor
/// times the night's median rms (and below max_rms_jy if the tier sets one), best rms first, up
/// to the tier's count. Every image left out is named in the manifest's left_out with its reason
/// (rms, band, resolution, no_frequency, duplicate, limit, region) and counted on stderr.
/// Planning the same name with the same selection returns the existing plan; a different
/// selection under an existing name is refused unless --replace.
///
/// Exits 1 when the window holds no image yet (late data can mend it: a pipeline retries), 3 when
/// it holds images but every one was left out (the same data fails the same way: not retried).
///
/// Example: contimg plan --tier science --night 2026-11-20 | contimg build - | contimg qa -
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tier name (a built-in below or a `[tiers.NAME]` of contimg.toml; see `contimg tiers`), or
    /// `auto` to choose from the window length.
    #[arg(long, value_name = "TIER", value_parser = super::TierName)]
    pub tier: String,
    /// Window start (inclusive), ISO-8601 UTC or MJD.
    #[arg(long, value_name = "TIME", requires = "end", conflicts_with_all = ["last", "night"])]
    pub start: Option<String>,
    /// Window end (exclusive), ISO-8601 UTC or MJD.
    #[arg(long, value_name = "TIME", requires = "start")]
    pub end: Option<String>,
    /// Window of this length ending now: e.g. 90m, 24h, 7d.
    #[arg(long, value_name = "DURATION", conflicts_with = "night")]
    pub last: Option<String>,
    /// The UTC day YYYY-MM-DD: [00:00, 24:00).
    #[arg(long, value_name = "DATE")]
    pub night: Option<String>,
    /// Plan name (default: tier and window, e.g. science_20261120T000000_20261121T000000).
    #[arg(long)]
    pub name: Option<String>,
    /// Only images whose centre is at or above this declination (deg).
    #[arg(long, value_name = "DEG", allow_hyphen_values = true)]
    pub dec_min: Option<f64>,
    /// Only images whose centre is at or below this declination (deg).
    #[arg(long, value_name = "DEG", allow_hyphen_values = true)]
    pub dec_max: Option<f64>,
    /// Only images whose centre RA is at or above this (deg); with --ra-max < --ra-min the box crosses 0h.
    #[arg(long, value_name = "DEG")]
    pub ra_min: Option<f64>,
    /// Only images whose centre RA is at or below this (deg).
    #[arg(long, value_name = "DEG")]
    pub ra_max: Option<f64>,
    /// Replace an existing plan of the same name that selected different images.
    #[arg(long)]
    pub replace: bool,
}

fn window(args: &Args) -> anyhow::Result<(Instant, Instant)> {
    if let (Some(s), Some(e)) = (&args.start, &args.end) {
        return Ok((parse_time(s)?, parse_time(e)?));
    }
    if let Some(l) = &args.last {
        let end = crate::time::now();
        return Ok((end - chrono_duration(parse_duration(l)?), end));
    }
    if let Some(n) = &args.night {
        let start = parse_day(n)
            .map_err(|_| CliError::Input(format!("cannot read --night {n:?}: use YYYY-MM-DD")))?;
        return Ok((start, start + chrono::Duration::days(1)));
    }
    Err(CliError::Input(
        "give a window: --start and --end, --last DURATION, or --night YYYY-MM-DD".into(),
    )
    .into())
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (start, end) = window(&args)?;
    let tiers = ctx.session.tiers()?;
    let tier_name = if args.tier == "auto" {
        let hours = (end - start).num_milliseconds() as f64 / 3.6e6;
        let t = crate::mosaic::tiers::auto_for_window(hours);
        ctx.info(&format!("tier auto: {hours:.2} h window -> {t}"));
        t.to_string()
    } else {
        args.tier.clone()
    };
    let tier = crate::mosaic::tiers::find(tiers, &tier_name)?;
    let mut db = ctx.session.open_db()?;
    let req = PlanRequest {
        tier,
        start,
        end,
        name: args.name.clone(),
        dec_min: args.dec_min,
        dec_max: args.dec_max,
        ra_min: args.ra_min,
        ra_max: args.ra_max,
        replace: args.replace,
    };
    let m = crate::mosaic::plan::plan(&mut db, &req)?;
    ctx.info(&format!(
        "plan {} (id {}): {} image(s), tier {}, {} left out{}",
        m.name,
        m.plan_id,
        m.n_images,
        m.tier,
        m.left_out.len(),
        if m.existing {
            ", existing plan returned"
        } else {
            ""
        }
    ));
    say_left_out(ctx, &m.left_out);
    emit_json(&m)
}

/// One line per reason on stderr: how many images were left out and the first one's reason;
/// with -v every image.
fn say_left_out(ctx: &Ctx, left_out: &[LeftOut]) {
    for (kind, n) in left_out_counts(left_out) {
        let mut of_kind = left_out.iter().filter(|l| l.reason_kind == kind);
        let first = of_kind.next().map_or_else(String::new, |l| {
            format!(
                ", e.g. {}: {}",
                l.path.file_name().map_or_else(
                    || l.path.display().to_string(),
                    |f| f.to_string_lossy().into_owned()
                ),
                l.reason
            )
        });
        ctx.info(&format!("  left out ({kind}): {n} image(s){first}"));
    }
    for l in left_out {
        ctx.debug(&format!(
            "  left out {} ({}): {}",
            l.path.display(),
            l.reason_kind,
            l.reason
        ));
    }
}
