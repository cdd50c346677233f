//! Job types: which parameters each accepts, and the child process each becomes.
//!
//! Invariant: the mosaic job types run the same `contimg` subcommands a person runs (`plan`, `build`,
//! `qa`), so a pipeline and the shell chain `plan | build - | qa -` do identical work and leave identical
//! rows. A `command` job runs its argv directly, never through a shell.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

/// A job type and its parameters: (name, required, what it is).
pub struct JobType {
    pub name: &'static str,
    pub params: &'static [(&'static str, bool, &'static str)],
    pub description: &'static str,
}

pub const JOB_TYPES: &[JobType] = &[
    JobType {
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
        name: "mosaic_build",
        description: "contimg build --plan ID: build the planned mosaic",
        params: &[("plan_id", true, "mosaic_plans id")],
    },
    JobType {
        name: "mosaic_qa",
        description: "contimg qa --mosaic ID: quality-check a mosaic (QA FAIL fails the job)",
        params: &[
            ("mosaic_id", true, "mosaics id"),
            ("reference", false, "reference catalogue path"),
        ],
    },
    JobType {
        name: "command",
        description: "run argv without a shell; its JSON stdout object is the job's outputs",
        params: &[
            ("argv", true, "array of strings: program and arguments"),
            ("env", false, "table of extra environment variables"),
            ("cwd", false, "working directory (default: the workspace)"),
        ],
    },
];

/// The job type called `name`.
pub fn job_type(name: &str) -> Option<&'static JobType> {
    JOB_TYPES.iter().find(|t| t.name == name)
}

/// A child process to start: program, arguments, extra environment, working directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
}

/// What the worker needs to call contimg itself.
#[derive(Debug, Clone)]
pub struct SelfInvocation {
    /// The contimg binary.
    pub exe: PathBuf,
    pub workspace: PathBuf,
    pub database: PathBuf,
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
    job_type: &str,
    params: &serde_json::Map<String, Value>,
    me: &SelfInvocation,
) -> Result<ChildSpec, JobSpecError> {
    let contimg = |sub: &str, mut rest: Vec<String>| {
        let mut args = vec![
            "-C".to_string(),
            me.workspace.display().to_string(),
            "--db".to_string(),
            me.database.display().to_string(),
            "--no-progress".to_string(),
            sub.to_string(),
        ];
        args.append(&mut rest);
        ChildSpec {
            program: me.exe.clone(),
            args,
            env: BTreeMap::new(),
            cwd: Some(me.workspace.clone()),
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
        "mosaic_plan" => {
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
        "mosaic_build" => Ok(contimg("build", vec!["--plan".into(), need("plan_id")?])),
        "mosaic_qa" => {
            let mut a = vec!["--mosaic".into(), need("mosaic_id")?];
            if let Some(r) = get("reference")? {
                a.push("--reference".into());
                a.push(r);
            }
            Ok(contimg("qa", a))
        }
        "command" => {
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
                cwd,
            })
        }
        other => Err(JobSpecError::new(
            job,
            format!("unknown job type '{other}'"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> SelfInvocation {
        SelfInvocation {
            exe: "/bin/contimg".into(),
            workspace: "/ws".into(),
            database: "/ws/db".into(),
        }
    }

    #[test]
    fn plan_job_is_the_plan_subcommand() {
        let p = serde_json::json!({"tier": "science", "start": "2026-11-20T03:00Z", "end": 61000.5, "dec_min": -10});
        let c = child_spec("plan", "mosaic_plan", p.as_object().unwrap(), &me()).unwrap();
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
        assert!(child_spec("x", "command", p.as_object().unwrap(), &me()).is_err());
        let p = serde_json::json!({"argv": ["echo", "hi"], "env": {"A": 1}, "cwd": "sub"});
        let c = child_spec("x", "command", p.as_object().unwrap(), &me()).unwrap();
        assert_eq!(c.program, PathBuf::from("echo"));
        assert_eq!(c.env["A"], "1");
        assert_eq!(c.cwd, Some(PathBuf::from("/ws/sub")));
    }
}
