//! `contimg qa`: quality-check a built mosaic and record the verdict.

use std::path::{Path, PathBuf};

use super::{CliError, Ctx, emit_json};
use crate::fsutil::absolute;
use crate::manifest::{self, MOSAIC_SCHEMA, MosaicManifest};
use crate::mosaic::qa::{self, QaManifest, QaOptions, Subject, Verdict};
use crate::workspace::Workspace;
use crate::workspace::session::{Db, mosaic_at, recorded_sha256};

/// Quality-check a mosaic and record the verdict.
///
/// Quality-check a mosaic; prints a `contimg.qa/1` manifest and records a `mosaic_qa` row.
///
/// Every check compares the mosaic with what it should be, never with what the sky happens to
/// contain, and says the figure, the expectation and, where it can, the snapshot to blame:
///
///   (figures in brackets: the science tier's defaults)
///   noise                measured noise / the build's expected-noise map (WARN 1.3x, FAIL 2x)
///   noise_history        measured noise / the median of the tier's last 20 mosaics (at least 5
///                        in the database; judged against how much nights scatter)
///   noise_structure      stripes: each input's noise power spectrum, whitened by the restoring
///                        beam, must be isotropic (rows, columns or any direction; inputs named)
///   dynamic_range        noise 3-12 beams around sources above 50 sigma / expected noise there
///                        (WARN 1.25x, FAIL 1.5x); a faint field passes; peak/noise is only reported
///   astrometry           bulk offset against the reference, found by votes over all pairs
///                        within 5 beams, then matched (WARN 0.05, FAIL 0.1 beam)
///   completeness         share of the isolated reference sources predicted at S/N >= 10 that
///                        were matched (WARN < 70 %, FAIL < 40 %)
///   flux_scale           integrated flux / reference, against (nu/nu_ref)^alpha (alpha -0.7,
///                        widened by its scatter; WARN 15 %, FAIL 30 %)
///   snapshot_astrometry  each snapshot against the others where they overlap (and against the
///                        reference): WARN 0.3, FAIL 0.5 beam; the snapshot is named
///   snapshot_flux        each snapshot's flux scale against the others' and the reference's
///                        (WARN 10 %, FAIL 20 %)
///   artefacts            negative bowls and pixels (against the expected noise), edge noise
///   selection            the share of the night's images its plan left out (for noise, band,
///                        resolution, no frequency, duplicates; not past max_images nor outside
///                        the sky box asked for): WARN above [qa] max_left_out_share (25 %); the
///                        images are named with their reasons (made only when the database
///                        holds the mosaic's plan)
///
/// Without a reference catalogue the three reference checks are reported as not checked and do
/// not change the verdict. Thresholds are per tier ([qa.tiers.NAME] in contimg.toml). Each
/// decision must also be significant: the night's false-alarm budget (false_alarm_per_night,
/// default 1 %) is shared over all its tests, so a clean night WARNs or FAILs with at most that
/// probability; gross faults are far past their FAIL thresholds.
///
/// Reference catalogues read: CSV (VizieR's too), FITS binary tables (e.g. the NVSS VZ table),
/// VOTables (TABLEDATA). Columns are recognised by name (RAJ2000, DEJ2000, S1.4, PEAK, ...) or
/// named with --ra-column/--dec-column/--flux-column; NVSS, FIRST, SUMSS, VLSS, TGSS, RACS and
/// WENSS are recognised by file name (frequency, resolution, position error); others take them
/// from [qa.catalogues."FILE"] or a CSV comment (# frequency_hz = 1.4e9, # beam_arcsec = 45).
///
/// Writes <stem>.sources.csv/.fits, the background-rms map <stem>.rms.fits and PNGs
/// (<stem>.qa.png, .offsets.png, .noise_hist.png) beside the mosaic. The source list gives each
/// source's position, peak and integrated flux, fitted FWHM axes and position angle, with their
/// 1σ noise errors from Condon (1997) (ra_err_arcsec, dec_err_arcsec, peak_err_jy, int_err_jy,
/// maj_err_arcsec, min_err_arcsec, pa_err_deg); the FITS table's columns carry their units
/// (TUNIT). Exits 1 when the verdict is FAIL (the manifest is still printed), 0 on PASS and
/// WARN.
///
/// Example: contimg build --plan 3 | contimg qa - --reference NVSSVZ.FIT.gz
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A `contimg.mosaic/1` manifest file, or `-` to read it from stdin.
    #[arg(value_name = "MANIFEST", conflicts_with = "mosaic")]
    pub manifest: Option<PathBuf>,
    /// Check the mosaic with this id in the database instead of reading a manifest.
    #[arg(long, value_name = "ID")]
    pub mosaic: Option<i64>,
    /// Reference catalogue (overrides the tier's and [qa]'s `reference` in contimg.toml).
    #[arg(long, value_name = "CATALOGUE")]
    pub reference: Option<PathBuf>,
    /// The reference catalogue's RA column (default: recognised by name, e.g. RAJ2000).
    #[arg(long, value_name = "NAME")]
    pub ra_column: Option<String>,
    /// The reference catalogue's Dec column (default: recognised by name, e.g. DEJ2000).
    #[arg(long, value_name = "NAME")]
    pub dec_column: Option<String>,
    /// The reference catalogue's flux column (default: recognised by name, e.g. S1.4, PEAK).
    #[arg(long, value_name = "NAME")]
    pub flux_column: Option<String>,
    /// Write the source catalogues, rms map and PNGs here instead of beside the mosaic.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Do not draw the PNGs.
    #[arg(long)]
    pub no_pictures: bool,
}

/// The mosaic file must still be the bytes build recorded (mosaics built before hashes were
/// recorded are checked with a warning only).
fn check_mosaic_hash(ctx: &Ctx, db: &mut Db, input: &Subject) -> anyhow::Result<()> {
    let recorded = recorded_sha256(db, input.mosaic_id)?;
    let Some(recorded) = recorded else {
        ctx.warn(&format!(
            "warning: mosaic {} has no recorded sha256 (built by an older contimg); its file is not verified",
            input.mosaic_id
        ));
        return Ok(());
    };
    let now = crate::fsutil::sha256_file(&input.path).map_err(|e| {
        CliError::input_because(
            format!("{}: cannot read the mosaic", input.path.display()),
            e,
        )
    })?;
    if now != recorded {
        return Err(CliError::Input(format!(
            "{}: the file's sha256 is {now}, but mosaic {} was recorded with {recorded}; the file \
             was changed or replaced after `contimg build`. Rebuild it (contimg build --plan ID)",
            input.path.display(),
            input.mosaic_id
        ))
        .into());
    }
    Ok(())
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let ws = ctx.session.find_workspace()?;
    let cfg = ws.map(|w| w.config.qa.clone()).unwrap_or_default();
    cfg.validate()?;
    let (mut db, input) = subject(ctx, &args)?;
    let mut opts = options(ctx, &args, ws, cfg, &input)?;
    opts.history_noise_jy = qa::noise_history(&mut db, &input.tier, input.mosaic_id, 20)?;
    opts.selection = qa::plan_selection(&mut db, input.mosaic_id)?;
    ctx.info(&format!(
        "qa: mosaic {} ({}), tier {}",
        input.mosaic_id,
        input.path.display(),
        input.tier
    ));
    let report = qa::measure(&input, &opts)?;
    say_measured(ctx, &report);
    let qa_id = qa::record(&mut db, &report)?;
    let verdict = report.verdict;
    let summary: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status != Verdict::Pass)
        .map(|c| format!("{} {}: {}", c.status.as_str(), c.name, c.message))
        .collect();
    ctx.info(&format!(
        "qa {}: {} sources, noise {:.3e} Jy/beam, DR {:.0}, artefacts {:.2}, {:.1} s",
        verdict.as_str(),
        report.sources.n,
        report.noise.median_rms_jy,
        report.dynamic_range,
        report.artefacts.score,
        report.elapsed_s
    ));
    for s in &summary {
        ctx.info(&format!("  {s}"));
    }
    ctx.debug(&format!(
        "qa timings (s): {}",
        report
            .timings_s
            .iter()
            .map(|(k, v)| format!("{k} {v:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    emit_json(&QaManifest::new(Path::new(&db.label()), qa_id, report))?;
    if verdict == Verdict::Fail {
        return Err(CliError::Failed(format!("QA verdict FAIL: {}", summary.join("; "))).into());
    }
    Ok(())
}

/// The mosaic to check, from `--mosaic ID` or a manifest, as the database records it: the
/// manifest must name the recorded file, the file must exist and hash to what `build` recorded.
fn subject(ctx: &Ctx, args: &Args) -> anyhow::Result<(Db, Subject)> {
    let (mut db, mut input) = match (&args.mosaic, &args.manifest) {
        (Some(id), _) => {
            let mut db = ctx.session.open_db()?;
            let input = Subject::from_db(&mut db, *id)?;
            (db, input)
        }
        (None, Some(src)) => {
            let name = if src.as_os_str() == "-" {
                "stdin".to_string()
            } else {
                src.display().to_string()
            };
            let value = manifest::read(src).map_err(|e| fits_given(ctx, src, e))?;
            let m: MosaicManifest = manifest::parse(value, MOSAIC_SCHEMA, &name)?;
            let mut db = manifest_db(ctx, &m)?;
            // The database, not the manifest, says which file mosaic N is (its sha256 is
            // checked below); products go beside that file.
            let recorded = Subject::from_db(&mut db, m.mosaic_id)?;
            let input = Subject::from_manifest(&m);
            if absolute(&input.path) != recorded.path {
                return Err(CliError::Input(format!(
                    "the manifest names {} as mosaic {}, but the database records {}; \
                     use the manifest `contimg build` printed, or --mosaic {}",
                    m.path.display(),
                    m.mosaic_id,
                    recorded.path.display(),
                    m.mosaic_id
                ))
                .into());
            }
            let input = Subject {
                noise_path: recorded.noise_path,
                inputs_path: recorded.inputs_path,
                ..input
            };
            (db, input)
        }
        (None, None) => {
            return Err(CliError::Input(
                "give a mosaic manifest (a file, or - for stdin) or --mosaic ID".into(),
            )
            .into());
        }
    };
    input.database = PathBuf::from(db.label());
    if !input.path.is_file() {
        return Err(CliError::Input(format!(
            "{}: the mosaic file does not exist; was it moved or deleted after `contimg build`?",
            input.path.display()
        ))
        .into());
    }
    check_mosaic_hash(ctx, &mut db, &input)?;
    if input.noise_path.as_ref().is_some_and(|p| !p.is_file()) {
        input.noise_path = None;
    }

    Ok((db, input))
}

/// The database a mosaic manifest was recorded in: `--db`/`CONTIMG_DB` when given, else the
/// SQLite file the manifest names, or, for a PostgreSQL database (whose manifest holds no
/// password), the workspace's, which must be the one the manifest names.
fn manifest_db(ctx: &Ctx, m: &MosaicManifest) -> anyhow::Result<Db> {
    if ctx.session.has_db_arg() {
        return Ok(ctx.session.open_db()?);
    }
    if let Some(db) = ctx.session.open_recorded(&m.database)? {
        return Ok(db);
    }
    let db = ctx.session.open_db()?;
    if Path::new(&db.label()) != m.database {
        return Err(CliError::Input(format!(
            "mosaic {} was recorded in {}, but this workspace's database is {}; run qa in the \
             workspace that built it, or pass --db URL",
            m.mosaic_id,
            m.database.display(),
            db.label()
        ))
        .into());
    }
    Ok(db)
}

/// What to measure against: the tier's thresholds, the reference catalogue (the flag, else the
/// tier's in contimg.toml, relative to the workspace) and its columns.
fn options(
    ctx: &Ctx,
    args: &Args,
    ws: Option<&Workspace>,
    mut cfg: qa::QaConfig,
    input: &Subject,
) -> anyhow::Result<QaOptions> {
    if let Err(e) = crate::mosaic::tiers::find(ctx.session.tiers()?, &input.tier) {
        ctx.warn(&format!(
            "warning: {e}; judging tier {:?} with the science tier's QA thresholds",
            input.tier
        ));
    }
    let thresholds = cfg.thresholds(&input.tier);
    let reference = match &args.reference {
        Some(p) => Some(absolute(p)),
        None => thresholds.reference.clone().map(|p| match &ws {
            Some(w) if p.is_relative() => w.root.join(p),
            _ => p,
        }),
    };
    if let Some(r) = &reference
        && !r.is_file()
    {
        return Err(CliError::Input(format!(
            "reference catalogue {} does not exist",
            r.display()
        ))
        .into());
    }
    if let Some(r) = &reference {
        let flags = qa::catalog::CatalogSettings {
            ra_column: args.ra_column.clone(),
            dec_column: args.dec_column.clone(),
            flux_column: args.flux_column.clone(),
            ..Default::default()
        };
        let name = r
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let chosen = cfg.catalogue(r, &flags);
        cfg.catalogues.insert(name, chosen);
    }
    if let Some(d) = &args.out_dir {
        std::fs::create_dir_all(d)
            .map_err(|e| CliError::input_because(format!("cannot create {}", d.display()), e))?;
    }
    Ok(QaOptions {
        config: cfg,
        thresholds,
        reference,
        out_dir: args.out_dir.as_ref().map(|d| absolute(d)),
        pictures: !args.no_pictures,
        history_noise_jy: Vec::new(),
        selection: None,
    })
}

/// The reference's columns and match radius, and the measurement's warnings, on stderr.
fn say_measured(ctx: &Ctx, report: &qa::QaReport) {
    if let Some(a) = &report.astrometry {
        ctx.info(&format!(
            "qa: reference {} ({}, {} rows): RA column {:?}, Dec column {:?}, flux column {:?}; \
             match radius {:.1}\"",
            a.reference.display(),
            a.reference_format,
            a.n_reference,
            a.columns[0],
            a.columns[1],
            a.columns[2],
            a.match_radius_arcsec
        ));
    }
    for w in &report.warnings {
        ctx.warn(&format!("warning: {w}"));
    }
}

/// A manifest error as the user sees it; a FITS image given where the manifest goes gets the
/// command that would work: `--mosaic N` when it is a recorded mosaic.
fn fits_given(ctx: &Ctx, src: &std::path::Path, e: manifest::ManifestError) -> anyhow::Error {
    if !matches!(e, manifest::ManifestError::FitsImage { .. }) {
        return e.into();
    }
    let path = absolute(src);
    let recorded = ctx
        .session
        .open_db_read_only()
        .ok()
        .and_then(|mut db| mosaic_at(&mut db, &path));
    anyhow::Error::from(CliError::Input(match recorded {
        Some(id) => format!(
            "{} is a FITS image, not a manifest; it is mosaic {id}: run `contimg qa --mosaic {id}`",
            src.display()
        ),
        None => format!(
            "{} is a FITS image, not a manifest, and no recorded mosaic; qa checks mosaics that \
             `contimg build` made: give the manifest it printed, or `--mosaic ID` (see `contimg status`)",
            src.display()
        ),
    }))
}
