//! `contimg build [MANIFEST | - | --plan ID]`: build a planned mosaic.

use std::path::PathBuf;

use anyhow::Context as _;

use super::{CliError, Ctx, emit_json};
use crate::manifest::{self, PLAN_SCHEMA, PlanManifest};
use crate::mosaic::build::{BuildRequest, build};
use crate::mosaic::engine::{Interpolation, PrimaryBeam, ProjectionChoice};

/// Build a plan's mosaic, weight map and expected-noise map.
///
/// Build the mosaic of a plan: reproject every input onto one ICRS grid and combine them
/// linmos-style (weights A²/σ², primary-beam cut-off); write the mosaic, its weight map and its
/// expected-noise map into the workspace's mosaics/ directory; print a `contimg.mosaic/1` manifest.
///
/// The plan comes from a `contimg.plan/1` manifest file, from stdin (`-`), or from the database
/// (--plan ID). Every input must still hash to what was planned. The grid is chosen from the inputs
/// (median pixel size; SIN for compact fields, CAR for wide strips) unless overridden.
///
/// Example: contimg plan --tier science --night 2026-11-20 | contimg build - | contimg qa -
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan manifest file, or `-` for stdin.
    #[arg(
        value_name = "MANIFEST",
        conflicts_with = "plan",
        required_unless_present = "plan"
    )]
    pub manifest: Option<PathBuf>,
    /// Build the recorded plan with this id.
    #[arg(long, value_name = "ID")]
    pub plan: Option<i64>,
    /// Output pixel size in arcsec (default: the median of the inputs).
    #[arg(long, value_name = "ARCSEC")]
    pub cell: Option<f64>,
    /// Output projection (default from contimg.toml: auto = SIN for compact fields, CAR for
    /// strips wider than 10°).
    #[arg(long, value_name = "PROJ", ignore_case = true,
          value_parser = one_of(ProjectionChoice::names(), ProjectionChoice::parse))]
    pub projection: Option<ProjectionChoice>,
    /// Interpolation kernel (default: the tier's; see `contimg tiers`).
    #[arg(long, value_name = "KERNEL",
          value_parser = one_of(Interpolation::names(), Interpolation::from_name))]
    pub interpolation: Option<Interpolation>,
    /// Primary-beam cut-off in (0, 1) (default from contimg.toml: 0.1).
    #[arg(long, value_name = "A")]
    pub pb_cutoff: Option<f64>,
    /// Primary beam: `auto` (a <stem>.pb.fits beside an input, else its telescope's model),
    /// `model` (the model of each input's TELESCOP: DSA-110, VLA, ATCA, MeerKAT, ASKAP, GMRT, WSRT
    /// or [build.telescopes] in contimg.toml), `image` (the beam image, required), or `unity`
    /// (A = 1: inputs already corrected and of unknown beam).
    #[arg(long, value_name = "SOURCE", default_value = "auto",
          value_parser = one_of(PrimaryBeam::names(), PrimaryBeam::from_name))]
    pub primary_beam: PrimaryBeam,
    /// Observing frequency in Hz for inputs whose header gives none (no RESTFRQ, no FREQ axis).
    #[arg(long, value_name = "HZ")]
    pub frequency: Option<f64>,
    /// Directory for the mosaic and its maps (default: the workspace's mosaics directory, from
    /// `[paths] mosaics`). A pipeline's build job gets the directory recorded with its execution,
    /// so the products land there whichever worker builds them.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// A flag's parser from an enum's own list of names and its parser of them: `--help` lists the
/// names, clap refuses any other, and the value arrives parsed.
fn one_of<T: Clone + Send + Sync + 'static>(
    names: Vec<&'static str>,
    parse: fn(&str) -> Option<T>,
) -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(names)
        .map(move |name| parse(&name).expect("a name from the enum's own list"))
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let mut db = ctx.session.open_db()?;
    let plan: PlanManifest = match (&args.manifest, args.plan) {
        (_, Some(id)) => crate::mosaic::plan::load(&mut db, id)?,
        (Some(src), None) => {
            let name = if src.as_os_str() == "-" {
                "stdin".to_string()
            } else {
                src.display().to_string()
            };
            manifest::read(src)
                .and_then(|value| manifest::parse(value, PLAN_SCHEMA, &name))
                .context("cannot read the plan to build")?
        }
        (None, None) => {
            return Err(CliError::Input(
                "give a plan manifest, `-` for stdin, or --plan ID".into(),
            )
            .into());
        }
    };
    let tier = crate::mosaic::tiers::find(ctx.session.tiers()?, &plan.tier)?;
    let config = ctx
        .session
        .find_workspace()?
        .map(|w| w.config.build.clone())
        .unwrap_or_default();
    let out_dir = match &args.out_dir {
        Some(d) => crate::fsutil::absolute(d),
        None => ctx.session.mosaics_dir()?,
    };
    let req = BuildRequest {
        tier,
        out_dir,
        cell_arcsec: args.cell,
        projection: args.projection.unwrap_or(config.projection),
        interpolation: args.interpolation,
        pb_cutoff: args.pb_cutoff.unwrap_or(config.pb_cutoff),
        max_pixels: config.max_pixels,
        dish_diameter_m: config.dish_diameter_m,
        primary_beam: args.primary_beam,
        freq_hz: match args.frequency {
            Some(f) if !(f.is_finite() && f > 1e6) => {
                return Err(CliError::Input(format!(
                    "--frequency {f}: give the observing frequency in Hz (above 1 MHz)"
                ))
                .into());
            }
            f => f,
        },
        telescopes: config.telescopes,
    };
    ctx.info(&format!(
        "build: plan {} ({}), {} input(s), tier {}",
        plan.plan_id,
        plan.name,
        plan.images.len(),
        plan.tier
    ));
    let bar = ctx.bar(plan.images.len() as u64, "build");
    let result = build(&mut db, &plan, &req, &|done, _| {
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let m = result?;
    // How each input's primary beam was chosen, grouped: an astronomer sees at once when an
    // image was taken as a coadd or given no beam.
    let mut beams: std::collections::BTreeMap<String, usize> = Default::default();
    for b in &m.primary_beams {
        let what = format!("{:?}", b.primary_beam).to_ascii_lowercase();
        let reason = match b.primary_beam {
            // Beam images are named per input; group them as one kind.
            crate::manifest::AppliedBeam::Image => "beam image beside the input".to_string(),
            _ => b.reason.clone(),
        };
        *beams.entry(format!("{what} ({reason})")).or_default() += 1;
    }
    for (kind, n) in &beams {
        ctx.info(&format!("build: primary beam of {n} input(s): {kind}"));
    }
    ctx.info(&format!(
        "build: mosaic {} ({} x {} {}, effective noise {:.3} mJy/beam) -> {}",
        m.mosaic_id,
        m.shape[0],
        m.shape[1],
        m.projection,
        m.effective_noise_jy * 1e3,
        m.path.display()
    ));
    emit_json(&m)
}
