//! `contimg cancel`: stop an execution's pending and running tasks.

use super::{Ctx, emit_json};

/// Cancel an execution.
///
/// Cancel an execution: its pending and sleeping tasks are cancelled at once; a running task's
/// worker sees its lease lost at its next heartbeat and kills the job's process group. Prints the
/// execution manifest. Exit 0 when the execution exists (cancelled now, or already finished: then
/// nothing changes); 2 for an unknown execution id.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Execution id (see `contimg status`).
    pub execution: i64,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let engine = super::engine::engine(ctx, std::time::Duration::from_secs(60))?;
    let m = engine.cancel(args.execution, ctx)?;
    emit_json(&m)?;
    ctx.info(&format!(
        "execution {} of {} is {}",
        m.execution_id, m.pipeline, m.status
    ));
    Ok(())
}
