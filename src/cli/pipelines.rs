//! `contimg pipelines`: list the pipelines in force, or check every definition.

use std::io::IsTerminal;

use super::{CliError, Ctx, emit_json, emit_listing, emit_text};

/// List the pipelines, or validate them with `check`.
///
/// List the pipelines (built-in and from contimg.toml), or validate them with `check`.
///
/// A table when stdout is a terminal; JSON (each pipeline with its full definition) with --json
/// or when stdout is a pipe or file.
///
/// A job's params may reference the slot: ${slot.start} and ${slot.end} (the window [slot −
/// window, slot), ISO-8601 UTC), ${slot.date} (the slot's date, YYYY-MM-DD) and ${slot.night}
/// (the date of the window's start: the night the window holds; the built-in nightly_mosaic
/// names its plan nightly_${slot.night}, so the 03:00 UTC slot of 1999-06-01 makes
/// nightly_1999-05-31); ${param.NAME} (a --param of `run`); ${JOB.KEY} (an upstream job's
/// output, e.g. ${plan.plan_id}). `$${` is a literal `${`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// Print JSON even on a terminal.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Validate every pipeline: job types, ids, dependencies and cycles, references, parameters,
    /// durations, retry settings and cron schedules. Exit 2 (and each error on stderr, naming the
    /// file, pipeline and job) when any is invalid.
    Check,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let all = ctx.session.pipelines()?;
    match args.action {
        Some(Action::Check) => {
            let errors: Vec<_> = all.iter().flat_map(crate::pipeline::validate).collect();
            for e in &errors {
                ctx.warn(&format!("error: {e}"));
            }
            emit_json(&serde_json::json!({
                "schema": "contimg.pipelines-check/1",
                "ok": errors.is_empty(),
                "pipelines": all.iter().map(|p| &p.name).collect::<Vec<_>>(),
                "errors": errors,
            }))?;
            if errors.is_empty() {
                ctx.info(&format!("{} pipeline(s) valid", all.len()));
                Ok(())
            } else {
                Err(
                    CliError::Input(format!("{} error(s) in pipeline definitions", errors.len()))
                        .into(),
                )
            }
        }
        None => {
            if args.json || !std::io::stdout().is_terminal() {
                return emit_listing("contimg.pipeline/1", all);
            }
            let mut out = format!(
                "{:<20} {:<12} {:<14} {:<24} {}\n",
                "name", "source", "schedule", "jobs", "description"
            );
            for p in all {
                let jobs: Vec<&str> = p.def.jobs.iter().map(|j| j.id.as_str()).collect();
                out.push_str(&format!(
                    "{:<20} {:<12} {:<14} {:<24} {}\n",
                    p.name,
                    if p.source.0 == "built-in" {
                        "built-in"
                    } else if p.overrides_builtin {
                        "config*"
                    } else {
                        "config"
                    },
                    p.def.schedule.as_deref().unwrap_or("-"),
                    jobs.join(","),
                    p.def.description.as_deref().unwrap_or("")
                ));
            }
            emit_text(&out)
        }
    }
}
