//! `contimg cron`: the crontab lines for the workspace's scheduled pipelines, and installing or
//! removing them in the user's crontab (through the `crontab` program, inside a marked block).

use super::{CliError, Ctx, emit_json, emit_text};

/// Schedule the workspace's pipelines with the system crontab.
///
/// `print` (the default) writes the crontab lines: for each pipeline with a `schedule`, the
/// absolute path of this contimg binary, `-C` and the workspace, `run PIPELINE --slot scheduled`,
/// with stdout and stderr appended to `logs/PIPELINE.log`. `install` puts them into the user's
/// crontab between `# BEGIN contimg WORKSPACE` and `# END contimg WORKSPACE` (replacing an older
/// block; running it twice changes nothing), `remove` deletes that block. Every other crontab line
/// is left exactly as it was. Schedules are UTC; the system cron reads them in the machine's local
/// time, so keep the machine on UTC (a warning says so otherwise); `--slot scheduled` picks the
/// right slot either way. The `crontab` program is `[cron] crontab` in contimg.toml, or the
/// environment variable CONTIMG_CRONTAB (e.g. "crontab -u alice" as root).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// Print JSON (the lines and the block) instead of the block itself.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum Action {
    /// Print the crontab block (the default).
    Print,
    /// Add or update this workspace's block in the user's crontab.
    Install,
    /// Remove this workspace's block from the user's crontab.
    Remove,
}

fn err(e: crate::pipeline::cron::CronError) -> anyhow::Error {
    match e {
        e @ crate::pipeline::cron::CronError::Unbalanced { .. } => {
            CliError::Input(e.to_string()).into()
        }
        e => CliError::Failed(e.to_string()).into(),
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let (ws, all) = super::run::pipelines(ctx)?;
    let root = crate::fsutil::absolute(&ws.root);
    let logs = crate::fsutil::absolute(&ws.logs_dir());
    let exe = std::env::current_exe().map_err(|e| {
        CliError::Failed(format!(
            "cannot find the path of the contimg binary for the crontab: {e}"
        ))
    })?;
    let mut lines = Vec::new();
    let mut pipelines = Vec::new();
    for p in all.iter().filter(|p| p.def.schedule.is_some()) {
        let errs = crate::pipeline::validate(p);
        if !errs.is_empty() {
            return Err(CliError::Input(format!(
                "pipeline '{}' is invalid (see `contimg pipelines check`): {}",
                p.name, errs[0]
            ))
            .into());
        }
        if let Some(l) = crate::pipeline::cron::line(&exe, &root, &logs, p) {
            lines.push(l);
            pipelines.push(p.name.clone());
        }
    }
    let offset = chrono::Local::now().offset().local_minus_utc();
    if offset != 0 {
        ctx.warn(&format!(
            "warning: this machine's local time is UTC{:+}h; the system cron reads the schedules in local \
             time, so they fire at a shifted time (`--slot scheduled` still runs the right UTC slot). \
             Run cron with TZ=UTC to fire on time",
            offset as f64 / 3600.0
        ));
    }
    let block = crate::pipeline::cron::block(&root, &lines);
    let setting = std::env::var("CONTIMG_CRONTAB")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| ws.config.cron.crontab.clone());
    let program = crate::pipeline::cron::program(&setting);
    let action = args.action.unwrap_or(Action::Print);
    let (changed, verb) = match action {
        Action::Print => {
            if args.json {
                return emit_json(&serde_json::json!({
                    "workspace": root,
                    "pipelines": pipelines,
                    "lines": lines,
                    "block": block,
                }));
            }
            return emit_text(&block);
        }
        Action::Install => {
            let old = crate::pipeline::cron::read(&program).map_err(err)?;
            let new = crate::pipeline::cron::splice(&old, &root, Some(&block)).map_err(err)?;
            let changed = new != old;
            if changed {
                crate::pipeline::cron::write(&program, &new).map_err(err)?;
            }
            (changed, "install")
        }
        Action::Remove => {
            let old = crate::pipeline::cron::read(&program).map_err(err)?;
            let new = crate::pipeline::cron::splice(&old, &root, None).map_err(err)?;
            let changed = new != old;
            if changed {
                crate::pipeline::cron::write(&program, &new).map_err(err)?;
            }
            (changed, "remove")
        }
    };
    ctx.info(&format!(
        "cron {verb}: {} ({} scheduled pipeline(s) of {})",
        if changed {
            "crontab updated"
        } else {
            "crontab already up to date"
        },
        pipelines.len(),
        root.display()
    ));
    emit_json(&serde_json::json!({
        "action": verb,
        "crontab": program.join(" "),
        "workspace": root,
        "changed": changed,
        "pipelines": pipelines,
        "lines": if matches!(action, Action::Install) { lines } else { vec![] },
    }))
}
