//! `contimg cron`: the crontab lines for the workspace's scheduled pipelines, and installing or
//! removing them in the user's crontab (through the `crontab` program, inside a marked block).

use super::{CliError, Ctx, emit_json, emit_object, emit_text};
use crate::pipeline::api;

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

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let ws = ctx.session.workspace()?;
    let all = ctx.session.pipelines()?;
    let root = crate::fsutil::absolute(&ws.root);
    let logs = crate::fsutil::absolute(&ws.logs_dir());
    let exe = std::env::current_exe().map_err(|e| {
        CliError::Failed(format!(
            "cannot find the path of the contimg binary for the crontab: {e}"
        ))
    })?;
    let plan = api::cron_plan(&exe, &root, &logs, all)?;
    let offset = chrono::Local::now().offset().local_minus_utc();
    if offset != 0 {
        ctx.warn(&format!(
            "warning: this machine's local time is UTC{:+}h; the system cron reads the schedules in local \
             time, so they fire at a shifted time (`--slot scheduled` still runs the right UTC slot). \
             Run cron with TZ=UTC to fire on time",
            f64::from(offset) / 3600.0
        ));
    }
    let setting = std::env::var("CONTIMG_CRONTAB")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| ws.config.cron.crontab.clone());
    let program = crate::pipeline::cron::program(&setting);
    let action = args.action.unwrap_or(Action::Print);
    let (changed, verb) = match action {
        Action::Print if args.json => return emit_object("contimg.cron-plan/1", &plan),
        Action::Print => return emit_text(&plan.block),
        Action::Install => (api::cron_apply(&program, &root, Some(&plan))?, "install"),
        Action::Remove => (api::cron_apply(&program, &root, None)?, "remove"),
    };
    ctx.info(&format!(
        "cron {verb}: {} ({} scheduled pipeline(s) of {})",
        if changed {
            "crontab updated"
        } else {
            "crontab already up to date"
        },
        plan.pipelines.len(),
        root.display()
    ));
    emit_json(&serde_json::json!({
        "schema": "contimg.cron/1",
        "action": verb,
        "crontab": program.join(" "),
        "workspace": root,
        "changed": changed,
        "pipelines": plan.pipelines,
        "lines": if matches!(action, Action::Install) { plan.lines } else { vec![] },
    }))
}
