//! `contimg cancel`: stop an execution's pending and running tasks.

use super::Ctx;
use crate::pipeline::exec;

/// Cancel an execution: its pending and sleeping tasks are cancelled at once; a running task's
/// worker sees its lease lost at its next heartbeat and kills the job's process group. Prints the
/// execution manifest (exit 1: the execution did not complete).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Execution id (see `contimg status`).
    pub execution: i64,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let ws = ctx.workspace()?;
    let engine = super::run::Engine::new(ctx, &ws, std::time::Duration::from_secs(60))?;
    let q = engine.queue()?;
    // Refuse an unknown id before changing anything.
    engine
        .manifest(&q, args.execution)
        .map_err(super::run::map_pipeline_err)?;
    let cancelled = q.cancel_execution(args.execution)?;
    exec::sync(q.connection(), args.execution)?;
    ctx.info(&format!(
        "execution {}: {} task(s) cancelled",
        args.execution,
        cancelled.len()
    ));
    let m = engine
        .manifest(&q, args.execution)
        .map_err(super::run::map_pipeline_err)?;
    super::run::finish(ctx, &m)
}
