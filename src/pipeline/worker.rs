//! The worker: claims jobs, runs each in a child process, and reports the outcome — on either backend,
//! through [`JobSource`] (the embedded SQLite queue, or ABSURD on PostgreSQL).
//!
//! Each attempt runs as a child process in its own process group with stdin closed, stdout captured (a
//! JSON object: the job's outputs) and stderr appended to the attempt's log file under `logs/`. While the
//! child runs the worker heartbeats the lease; when the lease is lost (the task was cancelled, or the
//! lease expired and another worker reaped it) or the job's timeout passes, the worker kills the whole
//! process group with SIGKILL and waits for the child. On Linux the child is also killed if the worker
//! thread dies (`PR_SET_PDEATHSIG`), so a `kill -9` of the runner leaves no job running unsupervised;
//! before each claim a worker ends the attempts of holders on this host whose process is gone and
//! kills what their jobs left running (every process still writing the attempt's log), so the task is
//! retried at once. Stdout is read up to [`MAX_STDOUT_BYTES`]; error text taken from job output passes
//! through [`printable`]. A database held by another writer past the busy timeout makes the worker
//! wait and retry (heartbeats included), never kill the job.
//!
//! Invariants: a result is reported only with the lease it was claimed under (the queue refuses stale
//! ones); a child's non-zero exit, a signal, a timeout, or stdout that is not a JSON object is a failed
//! attempt, never a completed one; a missing `${job.key}` fails the attempt before anything is started;
//! a child exiting [`USAGE_EXIT`] (2, an input error) fails the job for good without retries, and so
//! does a contimg child (a mosaic job or `absurd_task`, never a `command`, whose exit codes are its
//! own) exiting [`PERMANENT_EXIT`] (3: the data can never make the product, e.g. every image of a
//! plan's window was left out), the reason recorded as the job's error. A contimg child exiting
//! [`UNAVAILABLE_EXIT`] (75: it lost the database and could not get it back in time) was interrupted,
//! not failed: the job is handed back like on a stop signal, without spending a retry.

// Unsafe: one `pre_exec` hook that puts a job in its own process group (setpgid is async-signal-safe).
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::PipelineError;
use super::jobs::{ChildSpec, JobKind, SelfInvocation, child_spec};
use super::procs::{kill_group, kill_survivors};
use super::shutdown;
use super::source::{Held, Job, JobSource, Upstream, Verdict};
use super::subst::{self, Resolution, SubstError};
use crate::queue::QueueError;
use crate::store::db_busy;

/// The exit code of a child that failed on its input (contimg's usage/input error). Such an attempt fails
/// the job for good instead of being retried; exit 1 (the work failed, e.g. no images in the window yet,
/// a QA FAIL) is retried by the job's rule, since late-arriving data can mend it.
pub const USAGE_EXIT: i32 = 2;

/// The exit code of a contimg child whose work failed for good (the same data fails it the same
/// way, e.g. a window whose every image was left out). Such an attempt fails the job now, on
/// either backend; it is honoured for contimg's own job types only (`command` programs have exit
/// codes of their own).
pub const PERMANENT_EXIT: i32 = 3;

/// The exit code of a contimg child that lost its database (a PostgreSQL restart longer than it
/// waits): `EX_TEMPFAIL` of sysexits.h. Honoured for contimg's own job types only: the attempt
/// was interrupted, so the job goes back to the queue without spending a retry.
pub const UNAVAILABLE_EXIT: i32 = 75;

/// The most a job may write on stdout (its outputs, one JSON object). Past it the rest is read and
/// dropped, so the child never blocks on a full pipe, and the attempt fails.
pub const MAX_STDOUT_BYTES: usize = 4 << 20;

/// Job output made safe to show on a terminal: control characters other than newline and tab
/// (escape sequences, carriage returns, bells) are written as `\xNN` / `\u{NNNN}`. Every error text
/// taken from a job's stdout or stderr passes through here before it is stored or shown.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Reads a child's stdout up to [`MAX_STDOUT_BYTES`], draining the rest; true when it overflowed.
fn read_bounded(mut from: impl Read) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let _ = (&mut from)
        .take(MAX_STDOUT_BYTES as u64 + 1)
        .read_to_end(&mut buf);
    let over = buf.len() > MAX_STDOUT_BYTES;
    if over {
        buf.truncate(MAX_STDOUT_BYTES);
        let _ = std::io::copy(&mut from, &mut std::io::sink());
    }
    (buf, over)
}

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

fn deliver_due(queue: &mut dyn JobSource, cfg: &WorkerConfig) {
    if let Some(d) = &cfg.notify {
        queue.deliver_due(d);
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
    /// Jobs handed back to the queue on a stop signal.
    pub handed_back: u64,
}

/// Claims and runs tasks until `stop` says to return.
pub fn work(
    queue: &mut dyn JobSource,
    cfg: &WorkerConfig,
    stop: StopWhen,
) -> Result<WorkStats, PipelineError> {
    let mut stats = WorkStats::default();
    loop {
        match step(queue, cfg, stop, &mut stats) {
            Ok(Step::Stop) => return Ok(stats),
            Ok(Step::Again) => {}
            // Another process holds the database (a long write, a backup): wait, never give up
            // the tasks this worker holds.
            Err(e) if is_busy(&e) => {
                log::warn!("{e}; waiting for the database");
                shutdown::sleep(cfg.poll);
            }
            // A stop signal while the server was away: nothing more can be done here.
            Err(e @ PipelineError::Unreachable(_)) => {
                log::warn!("{e}");
                return Ok(stats);
            }
            Err(e) => return Err(e),
        }
    }
}

enum Step {
    Again,
    Stop,
}

/// One turn of the worker loop: reap, claim, run (or wait).
fn step(
    queue: &mut dyn JobSource,
    cfg: &WorkerConfig,
    stop: StopWhen,
    stats: &mut WorkStats,
) -> Result<Step, PipelineError> {
    if shutdown::requested() {
        return Ok(Step::Stop);
    }
    if let StopWhen::ExecutionDone(eid) = stop
        && queue.sync(eid)?.is_finished()
    {
        return Ok(Step::Stop);
    }
    reap_abandoned(queue)?;
    let only = match stop {
        StopWhen::ExecutionDone(eid) => Some(eid),
        _ => None,
    };
    match queue.claim(&cfg.worker_id, cfg.lease, only)? {
        Some(task) => {
            stats.attempts += 1;
            match run_task(queue, cfg, task)? {
                Attempt::Completed => stats.completed += 1,
                Attempt::Failed => stats.failed += 1,
                Attempt::LeaseLost => {}
                Attempt::HandedBack => stats.handed_back += 1,
            }
            deliver_due(queue, cfg);
        }
        None => {
            if queue.sync_active()? {
                // Jobs were released just now: claim again before deciding anything.
                return Ok(Step::Again);
            }
            deliver_due(queue, cfg);
            if matches!(stop, StopWhen::Drained) {
                return Ok(Step::Stop);
            }
            let mut wait = cfg.poll;
            if let Some(at) = queue.next_wakeup()? {
                let until = (at - queue.now()?).to_std().unwrap_or(Duration::ZERO);
                wait = wait.min(until.max(Duration::from_millis(20)));
            }
            shutdown::sleep(wait);
        }
    }
    Ok(Step::Again)
}

/// Whether an error only says that another connection holds the database longer than the busy
/// timeout (SQLITE_BUSY / SQLITE_LOCKED): worth waiting for, never a reason to kill a job.
pub fn is_busy(e: &PipelineError) -> bool {
    match e {
        PipelineError::Db(d) | PipelineError::Queue(QueueError::Db(d)) => db_busy(d),
        _ => false,
    }
}

/// Runs `f` until it succeeds or fails with something other than a busy database.
fn patiently<T>(
    what: &str,
    mut f: impl FnMut() -> Result<T, PipelineError>,
) -> Result<T, PipelineError> {
    loop {
        match f() {
            Err(e) if is_busy(&e) => {
                log::warn!("{what}: {e}; trying again");
                std::thread::sleep(Duration::from_millis(500));
            }
            r => return r,
        }
    }
}

/// Ends the attempts of workers on this host whose process is gone and kills what their jobs left
/// running, so that the task is retried now instead of after its lease (and retry delay).
fn reap_abandoned(queue: &mut dyn JobSource) -> Result<(), PipelineError> {
    for (task, worker, log) in queue.reap_abandoned()? {
        if let Some(log) = &log {
            let n = kill_survivors(Path::new(log));
            if n > 0 {
                log::info!(
                    "killed {n} leftover process(es) of task {task} (its worker {worker} died)"
                );
            }
        }
    }
    Ok(())
}

fn log_path(cfg: &WorkerConfig, task: &Job) -> PathBuf {
    let file = format!("{}.{}.{}.log", task.name(), task.generation, task.attempt);
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
    queue: &mut dyn JobSource,
    task: &Job,
) -> Result<serde_json::Map<String, Value>, SubstError> {
    let Value::Object(params) = &task.params else {
        return Err(SubstError(format!(
            "task params are not a table: {}",
            task.params
        )));
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
            match queue.upstream(eid, &r.ns) {
                Ok(Upstream::Outputs(v)) => {
                    cache.insert(r.ns.clone(), v);
                }
                Ok(Upstream::Missing) => {
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
        (_, Some(e)) => Err(SubstError(e)),
        (Ok(m), None) => Ok(subst::unescape(&m)),
        (Err(e), None) => Err(e),
    }
}

fn tail(path: &Path, skip_header: usize, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .skip(skip_header)
        .filter(|l| !l.trim().is_empty())
        .collect();
    printable(&lines[lines.len().saturating_sub(n)..].join("\n"))
}

/// How one claimed attempt ended, as far as this worker knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Completed,
    Failed,
    /// Someone else owns the task now (cancelled, or reaped after the lease expired).
    LeaseLost,
    /// Handed back on a stop signal.
    HandedBack,
}

/// Tells the queue the verdict; a lost lease means someone else owns the task and is not an error.
fn report(queue: &mut dyn JobSource, task: &Job, v: &Verdict) -> Result<Attempt, PipelineError> {
    if matches!(v, Verdict::Abandon) {
        return Ok(Attempt::LeaseLost);
    }
    Ok(match queue.report(task, v)? {
        Held::Lost(_) => Attempt::LeaseLost,
        Held::Yes if matches!(v, Verdict::Complete(_)) => Attempt::Completed,
        Held::Yes if matches!(v, Verdict::Release(_)) => Attempt::HandedBack,
        Held::Yes => Attempt::Failed,
    })
}

fn fail(msg: String) -> Verdict {
    Verdict::Fail {
        msg,
        timed_out: false,
    }
}

/// Runs one claimed attempt to its end and mirrors the outcome into the execution.
fn run_task(
    queue: &mut dyn JobSource,
    cfg: &WorkerConfig,
    task: Job,
) -> Result<Attempt, PipelineError> {
    let sync = |queue: &mut dyn JobSource| match task.execution_id {
        Some(e) => patiently("syncing the execution", || queue.sync(e)).map(|_| ()),
        None => Ok(()),
    };
    sync(queue)?;
    let prepared = patiently("starting the job", || prepare(queue, cfg, &task))?;
    let verdict = match prepared {
        Prepared::Ready(job) => execute(queue, cfg, &task, job)?,
        Prepared::Refused(v) => v,
    };
    let out = patiently("recording the job's outcome", || {
        report(queue, &task, &verdict)
    });
    sync(queue)?;
    out
}

/// An attempt ready to start: its child process and its open log.
struct ReadyJob {
    kind: JobKind,
    spec: ChildSpec,
    log: PathBuf,
    log_file: std::fs::File,
    header_lines: usize,
}

enum Prepared {
    Ready(ReadyJob),
    /// The attempt cannot start (a missing upstream output, bad parameters, no log file).
    Refused(Verdict),
}

/// Stage 1: resolves the parameters, builds the child's argv, opens the attempt's log and records it.
fn prepare(
    queue: &mut dyn JobSource,
    cfg: &WorkerConfig,
    task: &Job,
) -> Result<Prepared, PipelineError> {
    let job = task.name();
    let params = match resolve_outputs(queue, task) {
        Ok(p) => p,
        Err(e) => return Ok(Prepared::Refused(fail(format!("job '{job}': {e}")))),
    };
    let kind: JobKind = match task.kind.parse() {
        Ok(k) => k,
        Err(e) => return Ok(Prepared::Refused(fail(format!("job '{job}': {e}")))),
    };
    let spec = match child_spec(&job, kind, &params, &cfg.me) {
        Ok(s) => s,
        Err(e) => return Ok(Prepared::Refused(fail(e.to_string()))),
    };
    if let Some(dir) = &spec.writes_to
        && let Err(e) = crate::fsutil::writable_dir(dir)
    {
        return Ok(Prepared::Refused(fail(format!(
            "job '{job}': worker '{}' cannot write the execution's products to {}: {e}; every \
             worker must reach the products directory recorded with the execution at the same \
             path (mount the shared filesystem there), or run this worker where it does",
            cfg.worker_id,
            dir.display()
        ))));
    }
    let log = log_path(cfg, task);
    let opened = log
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
        });
    let mut log_file = match opened {
        Ok(f) => f,
        Err(e) => {
            let msg = format!("cannot open log {}: {e}", log.display());
            return Ok(Prepared::Refused(fail(msg)));
        }
    };
    if let Held::Lost(_) = queue.set_log_path(task, &log.display().to_string())? {
        return Ok(Prepared::Refused(Verdict::Abandon));
    }
    let header = log_header(queue.now()?, cfg, task, &job, &spec);
    let _ = log_file.write_all(header.as_bytes());
    Ok(Prepared::Ready(ReadyJob {
        kind,
        spec,
        log,
        log_file,
        header_lines: header.lines().count(),
    }))
}

fn log_header(
    now: chrono::DateTime<chrono::Utc>,
    cfg: &WorkerConfig,
    task: &Job,
    job: &str,
    spec: &ChildSpec,
) -> String {
    let argv_text = std::iter::once(spec.program.display().to_string())
        .chain(spec.args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "# contimg: job '{job}' ({}) task {} attempt {}/{} (generation {}) by {} at {}\n# argv: {argv_text}\n",
        task.kind,
        task.task_label(),
        task.attempt,
        task.max_attempts
            .map_or_else(|| "unlimited".into(), |m| m.to_string()),
        task.generation,
        cfg.worker_id,
        crate::time::iso(now),
    )
}

/// Stages 2–4: starts the child, supervises it, and judges how it ended.
fn execute(
    queue: &mut dyn JobSource,
    cfg: &WorkerConfig,
    task: &Job,
    mut job: ReadyJob,
) -> Result<Verdict, PipelineError> {
    let mut child = match spawn_child(task, &job) {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("cannot start {}: {e}", job.spec.program.display());
            let _ = writeln!(job.log_file, "{msg}");
            return Ok(fail(msg));
        }
    };
    let pid = child.id();
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || stdout.map(read_bounded).unwrap_or_default());
    let started = Instant::now();
    let ended = supervise(queue, cfg, task, &mut child);
    if !matches!(ended, Ok(Ended::Exited(_))) {
        kill_group(pid);
        let _ = child.wait();
    }
    let (out, overflowed) = reader.join().unwrap_or_default();
    let elapsed = started.elapsed().as_secs_f64();
    Ok(match ended? {
        Ended::Exited(status) if overflowed && status.success() => {
            let msg = format!(
                "stdout over {} MiB: a job's outputs must be one small JSON object (write data to files)",
                MAX_STDOUT_BYTES >> 20
            );
            let _ = writeln!(job.log_file, "# contimg: {msg}");
            fail(msg)
        }
        Ended::Exited(status) => judge(&mut job, status, &out, elapsed),
        Ended::TimedOut(t) => {
            let msg = format!(
                "timed out after {elapsed:.1} s (timeout {:.1} s): process group {pid} killed",
                t.as_secs_f64()
            );
            let _ = writeln!(job.log_file, "# contimg: {msg}");
            Verdict::Fail {
                msg,
                timed_out: true,
            }
        }
        Ended::LeaseLost(why) => {
            let _ = writeln!(job.log_file, "# contimg: stopped: {why}");
            Verdict::Abandon
        }
        Ended::Shutdown => {
            let msg = format!(
                "interrupted after {elapsed:.1} s: worker '{}' received {} and handed the job back \
                 (process group {pid} killed; not counted as a failed attempt)",
                cfg.worker_id,
                shutdown::signal_name()
            );
            let _ = writeln!(job.log_file, "# contimg: {msg}");
            log::info!("job '{}' (task {}): {msg}", task.name(), task.task_label());
            Verdict::Release(msg)
        }
        Ended::Lost(e) => fail(format!("lost track of child {pid}: {e}")),
    })
}

/// Stage 2: the child in its own process group, stdin closed, stdout piped, stderr to the log.
fn spawn_child(task: &Job, job: &ReadyJob) -> std::io::Result<std::process::Child> {
    let spec = &job.spec;
    let mut cmd = Command::new(&spec.program);
    for v in &spec.env_remove {
        cmd.env_remove(v);
    }
    cmd.args(&spec.args)
        .envs(&spec.env)
        .env("CONTIMG_TASK_ID", task.task_label())
        .env("CONTIMG_JOB_ID", task.name())
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
    match job.log_file.try_clone() {
        Ok(f) => cmd.stderr(f),
        Err(_) => cmd.stderr(Stdio::null()),
    };
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
}

/// How supervision of a running child ended.
enum Ended {
    Exited(std::process::ExitStatus),
    TimedOut(Duration),
    LeaseLost(String),
    Lost(std::io::Error),
    /// A stop signal arrived: the job is handed back.
    Shutdown,
}

/// Stage 3: waits for the child, heartbeating the lease every third of it and watching the timeout.
/// The caller kills the process group unless the child exited.
fn supervise(
    queue: &mut dyn JobSource,
    cfg: &WorkerConfig,
    task: &Job,
    child: &mut std::process::Child,
) -> Result<Ended, PipelineError> {
    let started = Instant::now();
    let beat = cfg.lease / 3;
    let mut last_beat = Instant::now();
    // Bounded like every duration (a task queued by an older contimg may hold any number).
    let timeout = task.timeout_s.map(|s| {
        let max = Duration::from_secs_f64(crate::time::MAX_DURATION_S);
        Duration::try_from_secs_f64(s).map_or(max, |d| d.min(max))
    });
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Ok(Ended::Exited(s)),
            Ok(None) => {}
            Err(e) => return Ok(Ended::Lost(e)),
        }
        if shutdown::requested() {
            return Ok(Ended::Shutdown);
        }
        if let Some(t) = timeout
            && started.elapsed() >= t
        {
            return Ok(Ended::TimedOut(t));
        }
        if last_beat.elapsed() >= beat {
            last_beat = Instant::now();
            if let Held::Lost(why) = queue.heartbeat(task, cfg.lease)? {
                return Ok(Ended::LeaseLost(why));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stage 4: a child that exited, judged by its exit status and stdout.
fn judge(
    job: &mut ReadyJob,
    status: std::process::ExitStatus,
    out: &[u8],
    elapsed: f64,
) -> Verdict {
    if !status.success() {
        return judge_failure(job, status, out, elapsed);
    }
    let text = String::from_utf8_lossy(out);
    let result = if text.trim().is_empty() && job.kind == JobKind::Command {
        Ok(Value::Object(Default::default()))
    } else {
        match serde_json::from_str::<Value>(text.trim()) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) | Err(_) => Err(format!(
                "exit code 0 but stdout is not a JSON object (a job's outputs must be one): {}",
                printable(&text.chars().take(200).collect::<String>())
            )),
        }
    };
    match result {
        Ok(v) => {
            let _ = writeln!(job.log_file, "# contimg: completed in {elapsed:.2} s");
            Verdict::Complete(v)
        }
        Err(msg) => {
            let _ = writeln!(job.log_file, "# contimg: {msg}");
            fail(msg)
        }
    }
}

fn judge_failure(
    job: &mut ReadyJob,
    status: std::process::ExitStatus,
    out: &[u8],
    elapsed: f64,
) -> Verdict {
    let why = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "ended abnormally".into(),
    };
    let last = tail(&job.log, job.header_lines, 5);
    let msg = if last.is_empty() {
        why
    } else {
        format!("{why}: {last}")
    };
    // A QA FAIL is a verdict on a finished mosaic, not a transient error: QA of the same
    // mosaic would say the same again, so it is final (and the notification goes out now).
    let qa_verdict_fail = job.kind == JobKind::MosaicQa
        && status.code() == Some(1)
        && serde_json::from_slice::<Value>(out)
            .is_ok_and(|v| v.get("verdict").and_then(Value::as_str) == Some("FAIL"));
    if job.kind.is_contimg() && status.code() == Some(UNAVAILABLE_EXIT) {
        let msg = format!(
            "interrupted after {elapsed:.1} s: {msg} (the job lost the database; handed back, not \
             counted as a failed attempt)"
        );
        let _ = writeln!(job.log_file, "# contimg: {msg}");
        log::warn!("{msg}");
        return Verdict::Release(msg);
    }
    // contimg's exit 3 = its work failed for good (every image of a window left out).
    let permanent = job.kind.is_contimg() && status.code() == Some(PERMANENT_EXIT);
    if status.code() == Some(USAGE_EXIT) || qa_verdict_fail || permanent {
        // contimg's exit 2 = a usage or input error (no such plan, a bad manifest, an unknown
        // tier): the same input gives the same error, so the job fails for good now.
        let msg = if qa_verdict_fail {
            format!("{} (final, not retried): {msg}", super::exec::QA_FAIL_ERROR)
        } else if permanent {
            format!("{msg} (failed for good: the same data fails the same way; not retried)")
        } else {
            format!("{msg} (an input error: not retried)")
        };
        let _ = writeln!(
            job.log_file,
            "# contimg: failed for good after {elapsed:.2} s ({})",
            msg.lines().next().unwrap_or("")
        );
        return Verdict::FailForGood(msg);
    }
    let _ = writeln!(
        job.log_file,
        "# contimg: failed after {elapsed:.2} s ({})",
        msg.lines().next().unwrap_or("")
    );
    fail(msg)
}
