//! `contimg status`: executions and their jobs.

use std::io::IsTerminal;

use super::output::tagged;
use super::{Ctx, emit_json, emit_listing, emit_text};

/// Show the executions, or one execution's jobs.
///
/// Show executions (newest first) or one execution's jobs: state, attempts, next retry, last
/// error, duration and log path.
///
/// A table when stdout is a terminal; JSON with --json or when stdout is a pipe or file (one
/// execution: its `contimg.execution/1` manifest). On PostgreSQL the listing also shows the tasks
/// other ABSURD clients spawned on the queue of a type `[postgres] accept_outside` names (JSON:
/// rows tagged `contimg.standalone-task/1`, after the executions).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Execution id; without it, the latest executions.
    pub execution: Option<i64>,
    /// How many executions to list.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print JSON even on a terminal.
    #[arg(long)]
    pub json: bool,
}

fn short(s: &str, n: usize) -> String {
    let s = crate::pipeline::worker::printable(s);
    let one = s.lines().next().unwrap_or("");
    if one.chars().count() > n {
        format!("{}…", one.chars().take(n).collect::<String>())
    } else {
        one.to_string()
    }
}

/// An execution's status with its QA verdict, e.g. `completed (QA WARN)`.
fn shown_status(status: &str, qa: Option<&str>) -> String {
    match qa {
        Some(v) => format!("{status} (QA {v})"),
        None => status.to_string(),
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let db = ctx.session.pipeline_database()?;
    let table = !args.json && std::io::stdout().is_terminal();
    match args.execution {
        None => {
            let list = crate::pipeline::api::executions(&db, args.limit)?;
            let outside = crate::pipeline::api::standalone_tasks(&db, args.limit)?;
            if !table {
                if outside.is_empty() {
                    return emit_listing("contimg.execution-summary/1", &list);
                }
                let mut rows = Vec::new();
                for e in &list {
                    rows.push(tagged("contimg.execution-summary/1", e)?);
                }
                for t in &outside {
                    rows.push(tagged("contimg.standalone-task/1", t)?);
                }
                return emit_json(&rows);
            }
            let mut out = format!(
                "{:>5}  {:<20} {:<21} {:<20} {}\n",
                "id", "pipeline", "slot", "status", "jobs"
            );
            for e in &list {
                let jobs: Vec<String> = e.jobs.iter().map(|(j, s)| format!("{j}:{s}")).collect();
                out.push_str(&format!(
                    "{:>5}  {:<20} {:<21} {:<20} {}\n",
                    e.execution_id,
                    e.pipeline,
                    e.slot.as_deref().unwrap_or("-"),
                    shown_status(&e.status.to_string(), e.qa_verdict.as_deref()),
                    jobs.join(" ")
                ));
            }
            if !outside.is_empty() {
                out.push_str(&format!(
                    "\nstandalone tasks spawned by other ABSURD clients:\n{:<36}  {:<13} {:<10} {:>8}  {}\n",
                    "task", "type", "state", "attempts", "last error"
                ));
                for t in &outside {
                    out.push_str(&format!(
                        "{:<36}  {:<13} {:<10} {:>8}  {}\n",
                        t.task_id,
                        t.task_type,
                        t.state,
                        t.attempts,
                        t.error
                            .as_deref()
                            .map_or_else(|| "-".into(), |e| short(e, 70))
                    ));
                }
            }
            emit_text(&out)
        }
        Some(eid) => {
            let m = crate::pipeline::api::execution(&db, eid)?;
            if !table {
                return emit_json(&m);
            }
            let mut out = format!(
                "execution {} of {} for slot {}: {}{}\n\n{:<12} {:<13} {:<10} {:>8} {:>9} {:<21} {}\n",
                m.execution_id,
                m.pipeline,
                m.slot.as_deref().unwrap_or("-"),
                shown_status(&m.status.to_string(), m.qa_verdict.as_deref()),
                m.error
                    .as_deref()
                    .map(|e| format!(" ({})", short(e, 80)))
                    .unwrap_or_default(),
                "job",
                "type",
                "state",
                "attempts",
                "duration",
                "next retry",
                "last error / log"
            );
            for j in &m.jobs {
                out.push_str(&format!(
                    "{:<12} {:<13} {:<10} {:>8} {:>9} {:<21} {}\n",
                    j.id,
                    j.job_type,
                    j.state.as_str(),
                    format!("{}/{}", j.attempts, j.max_attempts),
                    j.duration_s
                        .map_or_else(|| "-".into(), |d| format!("{d:.1}s")),
                    j.next_retry_at.as_deref().unwrap_or("-"),
                    match (&j.error, &j.log_path) {
                        (Some(e), _) => short(e, 70),
                        (None, Some(l)) => l.clone(),
                        _ => "-".into(),
                    }
                ));
            }
            ctx.debug(&format!("{} job(s)", m.jobs.len()));
            emit_text(&out)
        }
    }
}
