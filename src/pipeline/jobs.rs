//! Job types: which parameters each accepts, and the child process each becomes.
//!
//! Invariant: the mosaic job types run the same `contimg` subcommands a person runs (`plan`, `build`,
//! `qa`), so a pipeline and the shell chain `plan | build - | qa -` do identical work and leave identical
//! rows. A `command` job runs its argv directly, never through a shell. An `absurd_task` job runs
//! `contimg absurd-task`, which spawns a task on an ABSURD queue for a worker that is not contimg, waits
//! for it and prints its result (the job's outputs); the database URL reaches that child only through
//! its environment, so no password is ever stored in a task's parameters or shown in its log.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kinds of job a pipeline runs. Written in definitions, stored in the database (a task's
/// kind, `pipeline_jobs.job_type`, an ABSURD task's name) and shown in manifests as the snake_case
/// name ([`JobKind::as_str`]); parsed once where such a name comes in ([`str::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    MosaicPlan,
    MosaicBuild,
    MosaicQa,
    Command,
    AbsurdTask,
    /// `contimg.run`: admit an execution of a pipeline (`contimg run --detach`). Only another
    /// ABSURD client spawns it (see [`super::outside`]); no pipeline's job may be one.
    #[serde(rename = "contimg.run")]
    PipelineRun,
}

impl JobKind {
    pub const ALL: [JobKind; 6] = [
        JobKind::MosaicPlan,
        JobKind::MosaicBuild,
        JobKind::MosaicQa,
        JobKind::Command,
        JobKind::AbsurdTask,
        JobKind::PipelineRun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::MosaicPlan => "mosaic_plan",
            JobKind::MosaicBuild => "mosaic_build",
            JobKind::MosaicQa => "mosaic_qa",
            JobKind::Command => "command",
            JobKind::AbsurdTask => "absurd_task",
            JobKind::PipelineRun => PIPELINE_RUN_TASK,
        }
    }

    /// Whether a pipeline's job may be of this type (`contimg.run` is for other ABSURD clients).
    pub fn in_pipelines(self) -> bool {
        !matches!(self, JobKind::PipelineRun)
    }

    /// Whether the job runs contimg itself (whose exit codes mean input error / failed for good).
    pub fn is_contimg(self) -> bool {
        !matches!(self, JobKind::Command)
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A name that is no job kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job type '{0}'")]
pub struct UnknownJobKind(pub String);

impl std::str::FromStr for JobKind {
    type Err = UnknownJobKind;
    fn from_str(s: &str) -> Result<JobKind, UnknownJobKind> {
        JobKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownJobKind(s.to_string()))
    }
}

/// A job type and its parameters: (name, required, what it is).
pub struct JobType {
    pub kind: JobKind,
    /// [`JobKind::as_str`] of `kind`.
    pub name: &'static str,
    pub params: &'static [(&'static str, bool, &'static str)],
    pub description: &'static str,
}

pub const JOB_TYPES: &[JobType] = &[
    JobType {
        kind: JobKind::MosaicPlan,
        name: "mosaic_plan",
        description: "contimg plan: select the images of a window for a tier",
        params: &[
            ("tier", true, "tier name or auto"),
            ("start", true, "window start, ISO-8601 UTC or MJD"),
            ("end", true, "window end (exclusive)"),
            ("name", false, "plan name"),
            ("dec_min", false, "deg"),
            ("dec_max", false, "deg"),
            ("ra_min", false, "deg"),
            ("ra_max", false, "deg"),
            ("replace", false, "true to replace a plan of the same name"),
        ],
    },
    JobType {
        kind: JobKind::MosaicBuild,
        name: "mosaic_build",
        description: "contimg build --plan ID: build the planned mosaic",
        params: &[
            ("plan_id", true, "mosaic_plans id"),
            (
                OUT_DIR,
                false,
                "directory for the products (default: the mosaics directory of the workspace that started the execution, recorded with it)",
            ),
        ],
    },
    JobType {
        kind: JobKind::MosaicQa,
        name: "mosaic_qa",
        description: "contimg qa --mosaic ID: quality-check a mosaic (QA FAIL fails the job)",
        params: &[
            ("mosaic_id", true, "mosaics id"),
            ("reference", false, "reference catalogue path"),
        ],
    },
    JobType {
        kind: JobKind::Command,
        name: "command",
        description: "run argv without a shell; its JSON stdout object is the job's outputs",
        params: &[
            ("argv", true, "array of strings: program and arguments"),
            ("env", false, "table of extra environment variables"),
            ("cwd", false, "working directory (default: the workspace)"),
        ],
    },
    JobType {
        kind: JobKind::AbsurdTask,
        name: "absurd_task",
        description: "spawn a task on an ABSURD queue for another worker, wait; its result object is the job's outputs",
        params: &[
            ("queue", true, "ABSURD queue name"),
            ("task", true, "task name the other worker registered"),
            (
                "params",
                false,
                "table of the task's params (string values may hold ${...})",
            ),
            (
                "database",
                false,
                "postgres:// URL without a password (else use database_env)",
            ),
            (
                "database_env",
                false,
                "name of an environment variable holding the postgres:// URL",
            ),
            (
                "timeout",
                false,
                "how long to wait before cancelling the task, e.g. 30m",
            ),
        ],
    },
    JobType {
        kind: JobKind::PipelineRun,
        name: PIPELINE_RUN_TASK,
        description: "contimg run PIPELINE --detach: admit an execution (spawned by another ABSURD client; the task ends with the execution, its result the execution's manifest)",
        params: &[
            (
                "pipeline",
                true,
                "pipeline name ([postgres] run_pipelines lists those allowed)",
            ),
            (
                "slot",
                false,
                "slot time (ISO-8601 UTC or MJD), \"now\" (default) or \"scheduled\"",
            ),
            ("params", false, "table of the pipeline's parameters"),
        ],
    },
];

/// The `mosaic_build` parameter naming the directory its products are written to (see
/// [`super::exec::planned_jobs`]).
pub const OUT_DIR: &str = "out_dir";

/// The task another ABSURD client spawns on contimg's queue to start a pipeline.
pub const PIPELINE_RUN_TASK: &str = "contimg.run";

/// The environment variable through which an `absurd_task` job hands `database` to its child.
pub const ABSURD_URL_ENV: &str = "CONTIMG_ABSURD_URL";

/// What is wrong with an `absurd_task` job's parameters (empty when nothing): exactly one of
/// `database`/`database_env`, no password in `database`, `params` a table, a well-formed queue name
/// and timeout. Values still holding `${...}` references are checked once they are resolved.
pub fn absurd_task_problems(params: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let unresolved = |v: &Value| v.as_str().is_some_and(|s| s.contains("${"));
    match (params.get("database"), params.get("database_env")) {
        (Some(_), Some(_)) => out.push("give either 'database' or 'database_env', not both".into()),
        (None, None) => out.push(
            "give 'database_env' (an environment variable holding the postgres:// URL) or 'database'"
                .into(),
        ),
        (Some(Value::String(url)), None) => {
            if crate::pg::mask_url(url) != *url {
                out.push(format!(
                    "'database' = {} holds a password, which would be stored with the task: put the \
                     URL in an environment variable and name it with 'database_env'",
                    crate::pg::mask_url(url)
                ));
            }
        }
        (Some(other), None) => out.push(format!("'database' must be a postgres:// URL, got {other}")),
        (None, Some(v)) => {
            let ok = v.as_str().is_some_and(|s| {
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
            if !ok {
                out.push(format!(
                    "'database_env' must name an environment variable (letters, digits, '_'), got {v}"
                ));
            }
        }
    }
    match params.get("queue") {
        Some(v) if unresolved(v) => {}
        Some(Value::String(q)) => match crate::queue::absurd::check_queue_name(q) {
            Ok(()) => {}
            Err(crate::queue::QueueError::InvalidTask(m)) => out.push(m),
            Err(e) => out.push(e.to_string()),
        },
        Some(other) => out.push(format!("'queue' must be a string, got {other}")),
        None => {}
    }
    match params.get("task") {
        Some(Value::String(t)) if !t.trim().is_empty() => {}
        Some(other) => out.push(format!("'task' must be a non-empty task name, got {other}")),
        None => {}
    }
    match params.get("params") {
        None | Some(Value::Object(_)) => {}
        Some(other) => out.push(format!("'params' must be a table, got {other}")),
    }
    match params.get("timeout") {
        Some(v) if unresolved(v) => {}
        Some(Value::String(t)) => {
            if let Err(e) = crate::time::parse_duration(t) {
                out.push(format!("'timeout': {e}"));
            }
        }
        Some(other) => out.push(format!(
            "'timeout' must be a duration such as \"30m\", got {other}"
        )),
        None => {}
    }
    out
}

/// The parameters of job kind `kind`.
pub fn job_type(kind: JobKind) -> &'static JobType {
    JOB_TYPES
        .iter()
        .find(|t| t.kind == kind)
        .expect("every job kind has its entry in JOB_TYPES")
}

/// A child process to start: program, arguments, extra environment, the worker's variables it must
/// not inherit, working directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Variables of the worker's environment removed from the child's (before `env` is added).
    pub env_remove: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// The directory the job writes its products to (a build's `out_dir`): the worker refuses the
    /// job, with the reason, when it cannot write there (a shared filesystem not mounted here).
    pub writes_to: Option<PathBuf>,
}

/// The worker's variables that give the database (its URL, which may hold the password, or the
/// password itself): a job that is not a contimg step never inherits them, so a `command` job
/// cannot read or write contimg's records, nor hand the password on.
pub const DATABASE_SECRETS: &[&str] = &["CONTIMG_DB", "PGPASSWORD", ABSURD_URL_ENV];

/// What the worker needs to call contimg itself.
#[derive(Debug, Clone)]
pub struct SelfInvocation {
    /// The contimg binary.
    pub exe: PathBuf,
    pub workspace: PathBuf,
    pub database: ChildDatabase,
}

/// How a child `contimg` is pointed at the pipeline's database: arguments (an SQLite file's
/// `--db PATH`) and environment (a PostgreSQL URL, which may hold a password, never goes on a
/// command line). Made by [`super::executions::Backend::child_database`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChildDatabase {
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// A job whose parameters do not make a child process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job '{job}': {problem}")]
pub struct JobSpecError {
    pub job: String,
    pub problem: String,
}

impl JobSpecError {
    fn new(job: &str, problem: String) -> JobSpecError {
        JobSpecError {
            job: job.to_string(),
            problem,
        }
    }
}

fn scalar(job: &str, key: &str, v: &Value) -> Result<String, JobSpecError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(JobSpecError::new(
            job,
            format!("parameter '{key}' must be a string or number, got {other}"),
        )),
    }
}

/// Turns a job with fully resolved parameters into the child process to run.
pub fn child_spec(
    job: &str,
    job_type: JobKind,
    params: &serde_json::Map<String, Value>,
    me: &SelfInvocation,
) -> Result<ChildSpec, JobSpecError> {
    let contimg = |sub: &str, mut rest: Vec<String>| {
        let mut args = vec!["-C".to_string(), me.workspace.display().to_string()];
        args.extend(me.database.args.iter().cloned());
        let env = me.database.env.clone();
        args.extend(["--no-progress".to_string(), sub.to_string()]);
        args.append(&mut rest);
        ChildSpec {
            program: me.exe.clone(),
            args,
            env,
            env_remove: Vec::new(),
            cwd: Some(me.workspace.clone()),
            writes_to: None,
        }
    };
    let get = |k: &str| -> Result<Option<String>, JobSpecError> {
        params.get(k).map(|v| scalar(job, k, v)).transpose()
    };
    let need = |k: &str| -> Result<String, JobSpecError> {
        get(k)?.ok_or_else(|| {
            JobSpecError::new(job, format!("parameter '{k}' is required for {job_type}"))
        })
    };
    match job_type {
        JobKind::MosaicPlan => {
            let mut a = vec![
                "--tier".into(),
                need("tier")?,
                "--start".into(),
                need("start")?,
                "--end".into(),
                need("end")?,
            ];
            for k in ["name", "dec_min", "dec_max", "ra_min", "ra_max"] {
                if let Some(v) = get(k)? {
                    a.push(format!("--{}", k.replace('_', "-")));
                    a.push(v);
                }
            }
            if get("replace")?.as_deref() == Some("true") {
                a.push("--replace".into());
            }
            Ok(contimg("plan", a))
        }
        JobKind::MosaicBuild => {
            let mut a = vec!["--plan".into(), need("plan_id")?];
            let out = get(OUT_DIR)?.map(|d| me.workspace.join(d));
            if let Some(d) = &out {
                a.push("--out-dir".into());
                a.push(d.display().to_string());
            }
            let mut spec = contimg("build", a);
            spec.writes_to = out;
            Ok(spec)
        }
        JobKind::MosaicQa => {
            let mut a = vec!["--mosaic".into(), need("mosaic_id")?];
            if let Some(r) = get("reference")? {
                a.push("--reference".into());
                a.push(r);
            }
            Ok(contimg("qa", a))
        }
        JobKind::Command => {
            let argv = match params.get("argv") {
                Some(Value::Array(items)) if !items.is_empty() => items
                    .iter()
                    .map(|v| scalar(job, "argv", v))
                    .collect::<Result<Vec<_>, _>>()?,
                _ => {
                    return Err(JobSpecError::new(
                        job,
                        "parameter 'argv' must be a non-empty array of strings".into(),
                    ));
                }
            };
            let mut env = BTreeMap::new();
            match params.get("env") {
                None => {}
                Some(Value::Object(m)) => {
                    for (k, v) in m {
                        env.insert(k.clone(), scalar(job, &format!("env.{k}"), v)?);
                    }
                }
                Some(other) => {
                    return Err(JobSpecError::new(
                        job,
                        format!("parameter 'env' must be a table of strings, got {other}"),
                    ));
                }
            }
            let cwd = get("cwd")?
                .map(|c| {
                    let p = PathBuf::from(c);
                    if p.is_absolute() {
                        p
                    } else {
                        me.workspace.join(p)
                    }
                })
                .or_else(|| Some(me.workspace.clone()));
            let mut it = argv.into_iter();
            let program = PathBuf::from(it.next().unwrap_or_default());
            Ok(ChildSpec {
                program,
                args: it.collect(),
                env,
                env_remove: DATABASE_SECRETS.iter().map(ToString::to_string).collect(),
                cwd,
                writes_to: None,
            })
        }
        JobKind::AbsurdTask => absurd_task_child(job, params, contimg),
        JobKind::PipelineRun => {
            let mut a = vec![need("pipeline")?, "--detach".into()];
            if let Some(slot) = get("slot")? {
                a.extend(["--slot".into(), slot]);
            }
            match params.get("params") {
                None => {}
                Some(Value::Object(m)) => {
                    for (k, v) in m {
                        let v = scalar(job, &format!("params.{k}"), v)?;
                        a.extend(["--param".into(), format!("{k}={v}")]);
                    }
                }
                Some(other) => {
                    return Err(JobSpecError::new(
                        job,
                        format!("parameter 'params' must be a table, got {other}"),
                    ));
                }
            }
            Ok(contimg("run", a))
        }
    }
}

/// `contimg absurd-task`: the URL travels in the child's environment, never in its argv.
fn absurd_task_child(
    job: &str,
    params: &serde_json::Map<String, Value>,
    contimg: impl Fn(&str, Vec<String>) -> ChildSpec,
) -> Result<ChildSpec, JobSpecError> {
    if let Some(problem) = absurd_task_problems(params).into_iter().next() {
        return Err(JobSpecError::new(job, problem));
    }
    let text = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(queue), Some(task)) = (text("queue"), text("task")) else {
        return Err(JobSpecError::new(
            job,
            "parameters 'queue' and 'task' are required for absurd_task".into(),
        ));
    };
    let task_params = params
        .get("params")
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let mut args = vec![
        "--queue".into(),
        queue,
        "--task".into(),
        task,
        "--params".into(),
        task_params.to_string(),
    ];
    if let Some(t) = text("timeout") {
        args.extend(["--timeout".into(), t]);
    }
    let database_env = text("database_env").unwrap_or_else(|| ABSURD_URL_ENV.to_string());
    args.extend(["--database-env".into(), database_env]);
    let mut spec = contimg("absurd-task", args);
    if let Some(url) = text("database") {
        spec.env.insert(ABSURD_URL_ENV.to_string(), url);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> SelfInvocation {
        SelfInvocation {
            exe: "/bin/contimg".into(),
            workspace: "/ws".into(),
            database: ChildDatabase {
                args: vec!["--db".into(), "/ws/db".into()],
                env: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn job_kinds_read_and_write_as_their_names() {
        for k in JobKind::ALL {
            assert_eq!(k.as_str().parse::<JobKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(job_type(k).name, k.as_str());
        }
        assert_eq!(
            "mosaic_buld".parse::<JobKind>(),
            Err(UnknownJobKind("mosaic_buld".into()))
        );
    }

    #[test]
    fn plan_job_is_the_plan_subcommand() {
        let p = serde_json::json!({"tier": "science", "start": "2026-11-20T03:00Z", "end": 61000.5, "dec_min": -10});
        let c = child_spec("plan", JobKind::MosaicPlan, p.as_object().unwrap(), &me()).unwrap();
        assert_eq!(
            c.args,
            [
                "-C",
                "/ws",
                "--db",
                "/ws/db",
                "--no-progress",
                "plan",
                "--tier",
                "science",
                "--start",
                "2026-11-20T03:00Z",
                "--end",
                "61000.5",
                "--dec-min",
                "-10"
            ]
        );
    }

    #[test]
    fn command_needs_argv() {
        let p = serde_json::json!({"argv": []});
        assert!(child_spec("x", JobKind::Command, p.as_object().unwrap(), &me()).is_err());
        let p = serde_json::json!({"argv": ["echo", "hi"], "env": {"A": 1}, "cwd": "sub"});
        let c = child_spec("x", JobKind::Command, p.as_object().unwrap(), &me()).unwrap();
        assert_eq!(c.program, PathBuf::from("echo"));
        assert_eq!(c.env["A"], "1");
        assert_eq!(c.cwd, Some(PathBuf::from("/ws/sub")));
        // The database and its password are not the command's: the worker's are not inherited.
        for v in ["CONTIMG_DB", "PGPASSWORD"] {
            assert!(c.env_remove.iter().any(|r| r == v), "{c:?}");
        }
        let p = serde_json::json!({"tier": "t", "start": "a", "end": "b"});
        let c = child_spec("x", JobKind::MosaicPlan, p.as_object().unwrap(), &me()).unwrap();
        assert!(c.env_remove.is_empty(), "a contimg step keeps the database");
    }

    #[test]
    fn absurd_task_passes_the_url_by_environment_and_refuses_passwords() {
        let p = serde_json::json!({"queue": "site", "task": "calibrate", "database_env": "SITE_PG",
                                   "params": {"n": 1}, "timeout": "5m"});
        let c = child_spec("x", JobKind::AbsurdTask, p.as_object().unwrap(), &me()).unwrap();
        assert_eq!(
            c.args[5..],
            [
                "absurd-task",
                "--queue",
                "site",
                "--task",
                "calibrate",
                "--params",
                "{\"n\":1}",
                "--timeout",
                "5m",
                "--database-env",
                "SITE_PG"
            ]
        );
        assert!(c.env.is_empty());
        let p = serde_json::json!({"queue": "site", "task": "t", "database": "postgres://u@h/db"});
        let c = child_spec("x", JobKind::AbsurdTask, p.as_object().unwrap(), &me()).unwrap();
        assert_eq!(c.env[ABSURD_URL_ENV], "postgres://u@h/db");
        assert!(!c.args.iter().any(|a| a.contains("postgres://")));
        let p =
            serde_json::json!({"queue": "site", "task": "t", "database": "postgres://u:pw@h/db"});
        let e = child_spec("x", JobKind::AbsurdTask, p.as_object().unwrap(), &me()).unwrap_err();
        assert!(
            e.problem.contains("database_env") && !e.problem.contains("pw"),
            "{e}"
        );
        let p =
            serde_json::json!({"queue": "Bad-Name", "task": "t", "database_env": "X", "params": 3});
        let problems = absurd_task_problems(p.as_object().unwrap());
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
