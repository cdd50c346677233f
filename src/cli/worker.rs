//! `contimg worker`: drain the queue (any number of workers on one database cooperate).

use super::{Ctx, emit_object};
use crate::pipeline::{StopWhen, api};

/// Claim and run queued tasks (more processes or machines).
///
/// Claim and run queued tasks, each in a child process, until stopped (or, with --once, until
/// nothing is claimable).
///
/// Any number of workers, in any number of processes, may work one database: each attempt is
/// handed to exactly one of them. A worker whose lease expires (it crashed or hung) has its task
/// retried by another.
///
/// On SIGTERM or SIGINT the worker stops claiming, kills the jobs it runs and hands them back to
/// the queue at once (another worker takes them over now; the interrupted attempt does not count
/// against the job's retries), then exits 0. A second signal exits at once.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Return when no task is claimable now (sleeping retries are left for later) and print a summary.
    #[arg(long)]
    pub once: bool,
    /// Worker threads in this process.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub concurrency: usize,
    /// Lease length: a task whose worker stops heartbeating this long is retried by another worker.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub lease: String,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    crate::pipeline::shutdown::install();
    let engine = super::engine::engine(ctx, api::lease(&args.lease)?)?.workers_deliver();
    if let Err(e) = engine.wait_for_database() {
        return match e {
            // Stopped before the server came back: nothing was held, nothing to hand back.
            crate::pipeline::PipelineError::Unreachable(_) => {
                ctx.warn(&e.to_string());
                Ok(())
            }
            e => Err(e.into()),
        };
    }
    engine.deliver_now(ctx)?;
    let stop = if args.once {
        StopWhen::Drained
    } else {
        StopWhen::Never
    };
    let stats = engine.work(args.concurrency, stop)?;
    ctx.info(&format!(
        "worker: {} attempt(s), {} completed, {} failed, {} handed back",
        stats.attempts, stats.completed, stats.failed, stats.handed_back
    ));
    emit_object("contimg.worker/1", &stats)
}
