//! `contimg init [DIR]`: create a workspace (idempotent).

use std::path::PathBuf;

use super::{Ctx, emit_json};

/// Create a workspace (contimg.toml, database, mosaics/, logs/).
///
/// Create a workspace: contimg.toml (every default written out), pipeline.sqlite3, mosaics/, logs/.
///
/// Running it again on an existing workspace changes nothing and reports what is already there.
/// Prints a `contimg.init/1` manifest.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to create the workspace in (created if missing; default: the current one, or -C).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let dir = args
        .dir
        .or_else(|| ctx.session.workspace_arg().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    let report = crate::workspace::init(&dir)?;
    for p in &report.created {
        ctx.info(&format!("created {}", p.display()));
    }
    if report.created.is_empty() {
        ctx.info(&format!(
            "{} is already a workspace; nothing changed",
            report.workspace.display()
        ));
    }
    emit_json(&serde_json::json!({
        "schema": "contimg.init/1",
        "workspace": report.workspace,
        "database": report.database,
        "schema_version": report.schema_version,
        "created": report.created,
        "existing": report.existing,
    }))
}
