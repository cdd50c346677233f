//! One task on a site's ABSURD queue, for a worker that is not contimg: spawn it, wait for it, hand
//! back its result — the work of `contimg absurd-task`, the child process of a pipeline's
//! `absurd_task` job.
//!
//! Invariants: every message shows the database URL with the password masked; only a completed
//! task gives outputs (a JSON object: the result as it is, any other value as `{"result": VALUE}`);
//! one that fails, is cancelled or outlasts the timeout (then cancelled) is an
//! [`AbsurdTaskError::Unfinished`] naming the task, the queue and why.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::queue::{AbsurdQueue, NewTask, QueueError, TaskKey, TaskState, TaskView};

/// The first poll comes this soon; later ones back off to [`POLL_MAX`].
const POLL_MIN: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(2);

/// The task to run and where.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The postgres:// URL of the ABSURD database.
    pub url: &'a str,
    /// The ABSURD queue (created if missing).
    pub queue: &'a str,
    /// The task name, as the other worker registered it.
    pub task: &'a str,
    /// The task's params, a JSON object.
    pub params: Value,
    /// Cancel the task and give up after this long; `None` waits as long as it takes.
    pub timeout: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum AbsurdTaskError {
    /// Connecting, polling or cancelling failed.
    #[error(transparent)]
    Queue(Box<QueueError>),
    #[error("spawning '{task}' on {place}")]
    Spawn {
        task: String,
        place: String,
        #[source]
        source: Box<QueueError>,
    },
    /// The task failed, was cancelled, or was still unfinished at the timeout (then cancelled).
    #[error("{0}")]
    Unfinished(String),
}

impl From<QueueError> for AbsurdTaskError {
    fn from(e: QueueError) -> Self {
        AbsurdTaskError::Queue(Box::new(e))
    }
}

/// Spawns the task, tells `spawned` its id and where it went (e.g. `queue 'q' at postgres://…`),
/// polls until it ends (cancelling it past the timeout) and returns its outputs.
pub fn run(req: Request<'_>, spawned: impl FnOnce(&str, &str)) -> Result<Value, AbsurdTaskError> {
    let mut queue = AbsurdQueue::connect(req.url, req.queue)?;
    let place = where_(&queue);
    let key = queue
        .spawn(&new_task(req.task, req.params))
        .map_err(|source| AbsurdTaskError::Spawn {
            task: req.task.to_string(),
            place: place.clone(),
            source: Box::new(source),
        })?;
    spawned(&key.to_string(), &place);
    let view = wait(&mut queue, key, req.timeout)?;
    match view.state {
        TaskState::Completed => Ok(outputs(view.result.unwrap_or(Value::Null))),
        state => Err(AbsurdTaskError::Unfinished(format!(
            "ABSURD task '{}' ({key}) on {place} {state}{}",
            req.task,
            last_error(&view)
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ))),
    }
}

/// The task as spawned: the pipeline's execution and job (from the worker's environment) go into
/// ABSURD's headers for its own tools; ABSURD itself does not retry it (the job's retries do).
fn new_task(task: &str, params: Value) -> NewTask {
    let mut t = NewTask::new(task, params);
    t.execution_id = std::env::var("CONTIMG_EXECUTION_ID")
        .ok()
        .and_then(|e| e.parse().ok());
    // One ABSURD task per attempt of the job: a retried job spawns afresh.
    t.job_id = std::env::var("CONTIMG_JOB_ID").ok().map(|j| {
        let attempt = std::env::var("CONTIMG_ATTEMPT").unwrap_or_default();
        format!("{j}#{attempt}")
    });
    t
}

fn where_(q: &AbsurdQueue) -> String {
    format!("queue '{}' at {}", q.queue_name(), q.url())
}

/// Polls until the task is completed, failed or cancelled; past `timeout` cancels it.
fn wait(
    q: &mut AbsurdQueue,
    key: TaskKey,
    timeout: Option<Duration>,
) -> Result<TaskView, AbsurdTaskError> {
    let started = Instant::now();
    let mut pause = POLL_MIN;
    loop {
        let view = q.inspect(key)?;
        if view.state.is_terminal() {
            return Ok(view);
        }
        if let Some(t) = timeout
            && started.elapsed() >= t
        {
            q.cancel(key, "timeout")?;
            return Err(AbsurdTaskError::Unfinished(format!(
                "ABSURD task '{}' ({key}) on {} was still {} after {t:?}; cancelled it",
                view.name,
                where_(q),
                view.state
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(POLL_MAX);
    }
}

/// A result object is the outputs as it is; any other value becomes `{"result": value}`.
fn outputs(result: Value) -> Value {
    match result {
        Value::Object(_) => result,
        other => json!({ "result": other }),
    }
}

/// The failure reason of the task's last run that has one.
fn last_error(view: &TaskView) -> Option<&str> {
    view.runs.iter().rev().find_map(|r| r.error.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_object_is_the_outputs_and_anything_else_is_wrapped() {
        assert_eq!(outputs(json!({"a": 1})), json!({"a": 1}));
        assert_eq!(outputs(json!(3)), json!({"result": 3}));
        assert_eq!(outputs(Value::Null), json!({"result": null}));
    }
}
