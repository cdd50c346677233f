//! The worker: claims tasks, runs each in a child process, and reports the outcome to the queue.
//!
//! Each attempt runs as a child process in its own process group with stdin closed, stdout captured (a
//! JSON object: the job's outputs) and stderr appended to the attempt's log file under `logs/`. While the
//! child runs the worker heartbeats the lease; when the lease is lost (the task was cancelled, or the
//! lease expired and another worker reaped it) or the job's timeout passes, the worker kills the whole
//! process group with SIGKILL and waits for the child. On Linux the child is also killed if the worker
//! thread dies (`PR_SET_PDEATHSIG`), so a `kill -9` of the runner leaves no job running unsupervised.
//!
//! Invariants: a result is reported only with the lease it was claimed under (the queue refuses stale
//! ones); a child's non-zero exit, a signal, a timeout, or stdout that is not a JSON object is a failed
//! attempt, never a completed one; a missing `${job.key}` fails the attempt before anything is started;
//! a child exiting [`USAGE_EXIT`] (2, an input error) fails the job for good without retries.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::PipelineError;
use super::exec;
use super::jobs::{SelfInvocation, child_spec};
use super::subst::{self, Resolution};
use crate::queue::{ClaimedTask, Queue, QueueError};

/// The exit code of a child that failed on its input (contimg's usage/input error). Such an attempt fails
/// the job for good instead of being retried; exit 1 (the work failed, e.g. no images in the window yet,
/// a QA FAIL) is retried by the job's rule, since late-arriving data can mend it.
pub const USAGE_EXIT: i32 = 2;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub me: SelfInvocation,
    pub logs_dir: PathBuf,
    /// Unique among live workers, e.g. `host:pid:thread`.
    pub worker_id: String,
    /// Lease length; heartbeats come every third of it.
    pub lease: Duration,
    /// Longest sleep between claims when nothing is due.
    pub poll: Duration,
    /// Delivers due notifications from the outbox after each task and when idle (a channel error is
    /// printed, never fatal).
    pub notify: Option<crate::pipeline::notify::Delivery>,
}

fn deliver_due(queue: &Queue, cfg: &WorkerConfig) {
    if let Some(d) = &cfg.notify
        && let Err(e) = crate::pipeline::notify::deliver(queue.connection(), d, false)
    {
        eprintln!("contimg: warning: {e}");
    }
}

/// When a worker loop returns.
#[derive(Debug, Clone, Copy)]
pub enum StopWhen {
    /// When no task is claimable right now (`worker --once`).
    Drained,
    /// When every task of this execution is completed, failed or cancelled (`run`).
    ExecutionDone(i64),
    /// Never (`worker`).
    Never,
}

/// What a worker loop did.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct WorkStats {
    pub attempts: u64,
    pub completed: u64,
    pub failed: u64,
}

/// `host:pid` of this process, the prefix of its workers' ids.
pub fn process_id() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let host = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "localhost".into()
    };
    format!("{host}:{}", std::process::id())
}

/// Claims and runs tasks until `stop` says to return.
pub fn work(queue: &Queue, cfg: &WorkerConfig, stop: StopWhen) -> Result<WorkStats, PipelineError> {
    let mut stats = WorkStats::default();
    loop {
        if let StopWhen::ExecutionDone(eid) = stop
            && exec::sync(queue.connection(), eid)? != "running"
        {
            return Ok(stats);
        }
        match queue.claim(&cfg.worker_id, cfg.lease)? {
            Some(task) => {
                stats.attempts += 1;
                match run_task(queue, cfg, task)? {
                    Some(true) => stats.completed += 1,
                    Some(false) => stats.failed += 1,
                    None => {}
                }
                deliver_due(queue, cfg);
            }
            None => {
                exec::sync_active(queue.connection())?;
                deliver_due(queue, cfg);
                if matches!(stop, StopWhen::Drained) {
                    return Ok(stats);
                }
                let mut wait = cfg.poll;
                if let Some(at) = queue.next_wakeup()? {
                    let until = (at - queue.now()).to_std().unwrap_or(Duration::ZERO);
                    wait = wait.min(until.max(Duration::from_millis(20)));
                }
                std::thread::sleep(wait);
            }
        }
    }
}

fn log_path(cfg: &WorkerConfig, task: &ClaimedTask) -> PathBuf {
    let name = task
        .job_id
        .clone()
        .unwrap_or_else(|| format!("task{}", task.id()));
    let file = format!("{name}.{}.{}.log", task.generation, task.attempt);
    match task.execution_id {
        Some(e) => cfg
            .logs_dir
            .join("executions")
            .join(e.to_string())
            .join(file),
        None => cfg.logs_dir.join("tasks").join(file),
    }
}

/// Resolves `${job.key}` references from the outputs of completed upstream tasks.
fn resolve_outputs(
    queue: &Queue,
    task: &ClaimedTask,
) -> Result<serde_json::Map<String, Value>, String> {
    let Value::Object(params) = &task.params else {
        return Err(format!("task params are not a table: {}", task.params));
    };
    let mut err: Option<String> = None;
    let mut cache: std::collections::BTreeMap<String, Value> = Default::default();
    let out = subst::substitute(params, &mut |r| {
        let Some(eid) = task.execution_id else {
            return Resolution::Error(format!(
                "{r}: a task outside an execution has no upstream jobs"
            ));
        };
        if !cache.contains_key(&r.ns) {
            match queue.find_task(eid, &r.ns) {
                Ok(Some(t)) => {
                    cache.insert(r.ns.clone(), t.result.unwrap_or(Value::Null));
                }
                Ok(None) => {
                    return Resolution::Error(format!(
                        "{r}: execution {eid} has no job '{}'",
                        r.ns
                    ));
                }
                Err(e) => {
                    err = Some(e.to_string());
                    return Resolution::Error(e.to_string());
                }
            }
        }
        let outputs = &cache[&r.ns];
        match subst::lookup(outputs, &r.path) {
            Some(v) => Resolution::Value(v.clone()),
            None => {
                let keys = match outputs {
                    Value::Object(m) => m.keys().cloned().collect::<Vec<_>>().join(", "),
                    _ => String::new(),
                };
                Resolution::Error(format!(
                    "{r}: job '{}' has no output '{}' (its outputs: {})",
                    r.ns,
                    r.path.join("."),
                    if keys.is_empty() { "none".into() } else { keys }
                ))
            }
        }
    });
    match (out, err) {
        (_, Some(e)) => Err(e),
        (Ok(m), None) => Ok(subst::unescape(&m)),
        (Err(e), None) => Err(e),
    }
}

fn kill_group(pgid: u32) {
    // SAFETY: kill(2) with a negative pid signals the process group; no memory is touched.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), libc::SIGKILL);
    }
}

fn tail(path: &Path, skip_header: usize, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .skip(skip_header)
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Reports a failed attempt; a lost lease means someone else owns the task now and is not an error.
fn report_fail(
    queue: &Queue,
    task: &ClaimedTask,
    msg: &str,
    timed_out: bool,
) -> Result<Option<bool>, PipelineError> {
    match queue.fail(&task.lease, msg, timed_out) {
        Ok(_) => Ok(Some(false)),
        Err(QueueError::LeaseLost { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Runs one claimed attempt to its end. `Some(true)` completed, `Some(false)` failed, `None` lease lost.
fn run_task(
    queue: &Queue,
    cfg: &WorkerConfig,
    task: ClaimedTask,
) -> Result<Option<bool>, PipelineError> {
    let out = run_task_inner(queue, cfg, &task);
    if let Some(e) = task.execution_id {
        exec::sync(queue.connection(), e)?;
    }
    out
}

fn run_task_inner(
    queue: &Queue,
    cfg: &WorkerConfig,
    task: &ClaimedTask,
) -> Result<Option<bool>, PipelineError> {
    if let Some(e) = task.execution_id {
        exec::sync(queue.connection(), e)?;
    }
    let job = task
        .job_id
        .clone()
        .unwrap_or_else(|| format!("task{}", task.id()));
    let params = match resolve_outputs(queue, task) {
        Ok(p) => p,
        Err(e) => return report_fail(queue, task, &format!("job '{job}': {e}"), false),
    };
    let spec = match child_spec(&job, &task.kind, &params, &cfg.me) {
        Ok(s) => s,
        Err(e) => return report_fail(queue, task, &e, false),
    };
    let log = log_path(cfg, task);
    let log_file = log
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
        });
    let mut log_file = match log_file {
        Ok(f) => f,
        Err(e) => {
            return report_fail(
                queue,
                task,
                &format!("cannot open log {}: {e}", log.display()),
                false,
            );
        }
    };
    match queue.set_log_path(&task.lease, &log.display().to_string()) {
        Ok(()) => {}
        Err(QueueError::LeaseLost { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let argv_text = std::iter::once(spec.program.display().to_string())
        .chain(spec.args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let header = format!(
        "# contimg: job '{job}' ({}) task {} attempt {}/{} (generation {}) by {} at {}\n# argv: {argv_text}\n",
        task.kind,
        task.id(),
        task.attempt,
        task.max_attempts,
        task.generation,
        cfg.worker_id,
        crate::time::iso(queue.now()),
    );
    let _ = log_file.write_all(header.as_bytes());
    let header_lines = header.lines().count();

    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .envs(&spec.env)
        .env("CONTIMG_TASK_ID", task.id().to_string())
        .env("CONTIMG_JOB_ID", &job)
        .env("CONTIMG_ATTEMPT", task.attempt.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0);
    if let Some(e) = task.execution_id {
        cmd.env("CONTIMG_EXECUTION_ID", e.to_string());
    }
    if let Some(d) = &spec.cwd {
        cmd.current_dir(d);
    }
    match log_file.try_clone() {
        Ok(f) => {
            cmd.stderr(f);
        }
        Err(_) => {
            cmd.stderr(Stdio::null());
        }
    }
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("cannot start {}: {e}", spec.program.display());
            let _ = writeln!(log_file, "{msg}");
            return report_fail(queue, task, &msg, false);
        }
    };
    let pid = child.id();
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let started = Instant::now();
    let beat = cfg.lease / 3;
    let mut last_beat = Instant::now();
    // Bounded like every duration (a task queued by an older contimg may hold any number).
    let timeout = task.timeout_s.map(|s| {
        let max = Duration::from_secs_f64(crate::time::MAX_DURATION_S);
        Duration::try_from_secs_f64(s).map_or(max, |d| d.min(max))
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => {
                kill_group(pid);
                let _ = child.wait();
                return report_fail(
                    queue,
                    task,
                    &format!("lost track of child {pid}: {e}"),
                    false,
                );
            }
        }
        if let Some(t) = timeout
            && started.elapsed() >= t
        {
            kill_group(pid);
            let _ = child.wait();
            let _ = reader.join();
            let msg = format!(
                "timed out after {:.1} s (timeout {:.1} s): process group {pid} killed",
                started.elapsed().as_secs_f64(),
                t.as_secs_f64()
            );
            let _ = writeln!(log_file, "# contimg: {msg}");
            return report_fail(queue, task, &msg, true);
        }
        if last_beat.elapsed() >= beat {
            last_beat = Instant::now();
            match queue.heartbeat(&task.lease, cfg.lease) {
                Ok(_) => {}
                Err(e @ QueueError::LeaseLost { .. }) => {
                    kill_group(pid);
                    let _ = child.wait();
                    let _ = reader.join();
                    let _ = writeln!(log_file, "# contimg: stopped: {e}");
                    return Ok(None);
                }
                Err(e) => {
                    kill_group(pid);
                    let _ = child.wait();
                    return Err(e.into());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap_or_default();
    let elapsed = started.elapsed().as_secs_f64();
    if !status.success() {
        let why = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            _ => "ended abnormally".into(),
        };
        let last = tail(&log, header_lines, 5);
        let msg = if last.is_empty() {
            why
        } else {
            format!("{why}: {last}")
        };
        // A QA FAIL is a verdict on a finished mosaic, not a transient error: QA of the same
        // mosaic would say the same again, so it is final (and the notification goes out now).
        let qa_verdict_fail = task.kind == "mosaic_qa"
            && status.code() == Some(1)
            && serde_json::from_slice::<Value>(&out)
                .is_ok_and(|v| v.get("verdict").and_then(Value::as_str) == Some("FAIL"));
        if status.code() == Some(USAGE_EXIT) || qa_verdict_fail {
            // contimg's exit 2 = a usage or input error (no such plan, a bad manifest, an unknown
            // tier): the same input gives the same error, so the job fails for good now.
            let msg = if qa_verdict_fail {
                format!("QA verdict FAIL (final, not retried): {msg}")
            } else {
                format!("{msg} (an input error: not retried)")
            };
            let _ = writeln!(
                log_file,
                "# contimg: failed for good after {elapsed:.2} s ({})",
                msg.lines().next().unwrap_or("")
            );
            return match queue.fail_permanently(&task.lease, &msg) {
                Ok(_) => Ok(Some(false)),
                Err(QueueError::LeaseLost { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        let _ = writeln!(
            log_file,
            "# contimg: failed after {elapsed:.2} s ({})",
            msg.lines().next().unwrap_or("")
        );
        return report_fail(queue, task, &msg, false);
    }
    let text = String::from_utf8_lossy(&out);
    let result = if text.trim().is_empty() && task.kind == "command" {
        Ok(Value::Object(Default::default()))
    } else {
        match serde_json::from_str::<Value>(text.trim()) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) | Err(_) => Err(format!(
                "exit code 0 but stdout is not a JSON object (a job's outputs must be one): {}",
                text.chars().take(200).collect::<String>()
            )),
        }
    };
    match result {
        Ok(v) => {
            let _ = writeln!(log_file, "# contimg: completed in {elapsed:.2} s");
            match queue.complete(&task.lease, &v) {
                Ok(()) => Ok(Some(true)),
                Err(QueueError::LeaseLost { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        Err(msg) => {
            let _ = writeln!(log_file, "# contimg: {msg}");
            report_fail(queue, task, &msg, false)
        }
    }
}
