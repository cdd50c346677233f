//! `contimg notifications`: the notification outbox.

use std::io::IsTerminal;

use super::{Ctx, emit_listing, emit_text};

/// List the failure notifications and their delivery.
///
/// List the failure notifications (newest first): channel, state (pending, sending, delivered,
/// failed = attempts exhausted, skipped = no target configured), attempts and the last error.
///
/// A notification is written when an execution fails (one per notify rule); `run` and `worker`
/// deliver pending ones and retry undelivered ones. `--deliver` delivers the pending ones now.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON even on a terminal.
    #[arg(long)]
    pub json: bool,
    /// How many to list.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// First deliver every pending notification (ignoring the retry back-off).
    #[arg(long)]
    pub deliver: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    if args.deliver {
        let engine = super::engine::engine(ctx, std::time::Duration::from_secs(60))?;
        let s = engine.deliver_all()?;
        ctx.info(&format!(
            "notifications: {} delivered, {} to retry, {} given up, {} skipped",
            s.delivered, s.retrying, s.failed, s.skipped
        ));
    }
    let rows =
        crate::pipeline::api::notifications(&mut ctx.session.open_db_read_only()?, args.limit)?;
    if args.json || !std::io::stdout().is_terminal() {
        return emit_listing("contimg.notification/1", &rows);
    }
    let mut out = format!(
        "{:>4} {:>5} {:<18} {:<21} {:<8} {:<10} {:>3}  {}\n",
        "id", "exec", "pipeline", "slot", "channel", "state", "try", "last error / delivered"
    );
    for n in &rows {
        out.push_str(&format!(
            "{:>4} {:>5} {:<18} {:<21} {:<8} {:<10} {:>3}  {}\n",
            n.id,
            n.execution_id,
            n.pipeline,
            n.slot.as_deref().unwrap_or("-"),
            n.channel,
            n.state,
            n.attempts,
            n.last_error
                .as_deref()
                .or(n.delivered_at.as_deref())
                .unwrap_or("")
        ));
    }
    emit_text(&out)
}
