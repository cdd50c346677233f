//! `contimg retry`: re-run the failed and cancelled jobs of an execution.

use super::Ctx;
use crate::pipeline::api;

/// Re-run an execution's failed and cancelled jobs.
///
/// Re-run an execution's failed and cancelled jobs (with fresh attempts), reusing the outputs of
/// its completed jobs, then work the execution to its end like `run` (unless --detach).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Execution id (see `contimg status`).
    pub execution: i64,
    /// Only reset the jobs; leave them to `contimg worker`.
    #[arg(long)]
    pub detach: bool,
    /// Worker threads.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub workers: usize,
    /// Lease length (see `run`).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub lease: String,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let engine = super::engine::engine(ctx, api::lease(&args.lease)?)?;
    if !args.detach {
        // It works jobs like `run`: a stop signal hands them back.
        crate::pipeline::shutdown::install();
    }
    let m = engine.retry(args.execution, args.detach, args.workers, ctx)?;
    super::engine::finish(ctx, &m)
}
