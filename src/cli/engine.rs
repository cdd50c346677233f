//! The pipeline engine the pipeline commands (`run`, `worker`, `retry`, `cancel`,
//! `notifications --deliver`) work with, and how they report an execution's end.

use std::time::Duration;

use super::{CliError, Ctx, emit_json};
use crate::pipeline::api::Engine;
use crate::pipeline::{ExecStatus, ExecutionManifest};

impl crate::pipeline::Progress for Ctx {
    fn info(&self, msg: &str) {
        Ctx::info(self, msg);
    }
    fn debug(&self, msg: &str) {
        Ctx::debug(self, msg);
    }
    fn warn(&self, msg: &str) {
        Ctx::warn(self, msg);
    }
}

/// An engine over the workspace's database (or `--db`) with this lease; its jobs run this binary.
pub(super) fn engine(ctx: &Ctx, lease: Duration) -> anyhow::Result<Engine> {
    let exe = std::env::current_exe().map_err(|e| {
        CliError::Failed(format!(
            "cannot find the contimg binary to run jobs with: {e}"
        ))
    })?;
    Ok(Engine::new(ctx.session.engine_setup(exe)?, lease))
}

/// Prints the manifest; a failed or cancelled execution is exit 1.
pub(super) fn finish(ctx: &Ctx, m: &ExecutionManifest) -> anyhow::Result<()> {
    emit_json(m)?;
    match m.status {
        ExecStatus::Completed => {
            ctx.info(&format!(
                "execution {} of {} completed",
                m.execution_id, m.pipeline
            ));
            Ok(())
        }
        ExecStatus::Running | ExecStatus::Interrupted => Ok(()),
        s => Err(CliError::Failed(format!(
            "execution {} of {} {s}: {}; see `contimg status {}`, re-run with `contimg retry {}`",
            m.execution_id,
            m.pipeline,
            crate::pipeline::worker::printable(m.error.as_deref().unwrap_or("-")),
            m.execution_id,
            m.execution_id
        ))
        .into()),
    }
}
