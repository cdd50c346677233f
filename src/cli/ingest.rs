//! `contimg ingest PATH…`: register FITS images.

use std::path::PathBuf;

use super::{CliError, Ctx, emit_json};

/// Register FITS images (centre, time, rms, beam, frequency, hash).
///
/// Register FITS images: centre (ICRS), time, rms, beam, frequency, pixel scale, hash.
///
/// PATHs are files or directories (searched recursively for *.fits, *.fit, *.fts, optionally
/// .gz, skipping primary-beam images *.pb.fits); `-` reads one path per line from stdin.
/// Re-ingesting an unchanged file changes nothing; a changed file updates its row.
/// Only regular files are read (a FIFO or device is refused at once), none larger than
/// [ingest] max_image_mb; pixels must be in Jy/beam; an unreadable DATE-OBS is an error.
/// Prints a `contimg.ingest/1` manifest (added, updated, unchanged, failed). A file that cannot
/// be ingested gets one line on stderr; the others are still ingested, and the exit code is 1.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// FITS files or directories; `-` reads paths from stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let mut db = ctx.session.open_db()?;
    let mut stdin = std::io::stdin().lock();
    let (files, missing) = crate::mosaic::ingest::collect_paths(&args.paths, &mut stdin);
    for (_, reason) in &missing {
        ctx.warn(&format!("error: {reason}"));
    }
    let bar = ctx.bar(files.len() as u64, "ingest");
    let on_file = || bar.inc(1);
    let on_problem = |msg: &str| bar.suspend(|| ctx.warn(msg));
    let cfg = ctx
        .session
        .find_workspace()?
        .map(|w| w.config.ingest.clone())
        .unwrap_or_default();
    let opts = crate::mosaic::ingest::IngestOptions {
        threads: cfg.threads,
        max_image_bytes: cfg.max_image_bytes(),
    };
    let mut report = crate::mosaic::ingest::ingest(&mut db, files, &opts, &on_file, &on_problem)?;
    bar.finish_and_clear();
    report.failed.extend(missing.into_iter().map(|(p, reason)| {
        crate::mosaic::ingest::FileFailure {
            path: p.to_string_lossy().into_owned(),
            reason,
        }
    }));
    ctx.info(&format!(
        "ingest: {} added, {} updated, {} unchanged, {} failed",
        report.added.len(),
        report.updated.len(),
        report.unchanged.len(),
        report.failed.len()
    ));
    emit_json(&serde_json::json!({
        "schema": "contimg.ingest/1",
        "database": db.label(),
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "failed": report.failed,
        "warnings": report.warnings,
    }))?;
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} file(s) could not be ingested (see above)",
            report.failed.len()
        ))
        .into())
    }
}
