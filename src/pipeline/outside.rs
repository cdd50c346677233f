//! Tasks another ABSURD client spawned on contimg's queue: which of them a contimg worker runs.
//!
//! A contimg worker tells its own tasks from a stranger's by contimg's schema, not by anything in the
//! task: a task is contimg's own when `pipeline_jobs` records its task id (only the execution
//! machinery writes there, and an outside client's role has no access to the schema). Any other task
//! is an *outside* task, and it runs only when
//! * it does not claim to belong to a contimg execution (an `execution`/`job` header, or an
//!   `execution_id`/`job_id`/`execution`/`job` parameter): a job of an execution is run only as the
//!   task contimg spawned for it;
//! * its name is on the site's allow-list, `[postgres] accept_outside` (default: `contimg.run`
//!   only; never `command` unless the site names it), and contimg handles that name;
//! * its parameters pass checks as strict as `run --param`: a table of the type's own parameters
//!   only, every required one, plain values (no `${...}`), no `replace`, and no path that leaves the
//!   workspace.
//!
//! Anything else is refused: its task fails once, for good, with the reason.

use serde_json::{Map, Value};

use super::jobs::{JobKind, job_type};

/// The default of `[postgres] accept_outside`: the pipeline-run task.
pub const DEFAULT_ACCEPT: &[&str] = &[super::jobs::PIPELINE_RUN_TASK];

/// The parameter and header names by which a task claims to be a job of a contimg execution.
const CLAIMS: &[&str] = &["execution_id", "job_id", "execution", "job"];

/// Why an outside task may not run, in words for its failure and the worker's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(String);

impl std::ops::Deref for Refusal {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Whether an outside task may run, and as which job type; `Err` holds the reason it may not.
pub fn vet(
    name: &str,
    params: &Value,
    headers: Option<&Value>,
    accept: &[String],
    run_pipelines: &[String],
) -> Result<JobKind, Refusal> {
    let claim = |v: Option<&Value>, keys: &[&str]| {
        v.and_then(Value::as_object).and_then(|m| {
            keys.iter()
                .find(|k| m.contains_key(**k))
                .map(ToString::to_string)
        })
    };
    if let Some(k) = claim(headers, &["execution", "job"]).or_else(|| claim(Some(params), CLAIMS)) {
        return Err(Refusal(format!(
            "it claims to be a job of a contimg execution ('{k}'), but contimg's schema records no \
             such task: a job of an execution runs only as the task contimg spawned for it"
        )));
    }
    if !accept.iter().any(|a| a == name) {
        return Err(Refusal(format!(
            "task type '{name}' is not accepted from outside contimg (accepted: {}; a site adds \
             a type to [postgres] accept_outside in contimg.toml)",
            listed(accept)
        )));
    }
    let Ok(kind) = name.parse::<JobKind>() else {
        return Err(Refusal(format!(
            "task type '{name}' is accepted from outside but is no task type this contimg handles"
        )));
    };
    let Value::Object(params) = params else {
        return Err(Refusal(format!("its params must be a table, got {params}")));
    };
    if let Some(why) = params_problem(kind, params) {
        return Err(Refusal(why));
    }
    if kind == JobKind::PipelineRun {
        let pipeline = params.get("pipeline").map(text_of).unwrap_or_default();
        if !run_pipelines.contains(&pipeline) {
            return Err(Refusal(format!(
                "pipeline '{pipeline}' may not be started by a {name} task (allowed: {}; a site \
                 adds a pipeline to [postgres] run_pipelines in contimg.toml)",
                listed(run_pipelines)
            )));
        }
    }
    Ok(kind)
}

/// A site's allow-list as a refusal names it: "none", or the names.
fn listed(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The first thing wrong with an outside task's parameters for job type `kind`.
fn params_problem(kind: JobKind, params: &Map<String, Value>) -> Option<String> {
    let t = job_type(kind);
    for (k, v) in params {
        if !t.params.iter().any(|(n, _, _)| n == k) {
            return Some(format!(
                "unknown parameter '{k}' for task type {}; it takes: {}",
                t.name,
                t.params.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
            ));
        }
        let structured = matches!(
            (kind, k.as_str()),
            (JobKind::Command, "argv" | "env")
                | (JobKind::AbsurdTask, "params")
                | (JobKind::PipelineRun, "params")
        );
        if kind == JobKind::PipelineRun && k == "params" {
            let Value::Object(m) = v else {
                return Some(format!(
                    "parameter 'params' must be a table of the pipeline's parameters, got {v}"
                ));
            };
            if let Some((pk, pv)) = m
                .iter()
                .find(|(_, pv)| !matches!(pv, Value::String(_) | Value::Number(_)))
            {
                return Some(format!(
                    "pipeline parameter '{pk}' must be a string or number, got {pv}"
                ));
            }
        }
        if !structured && !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            return Some(format!(
                "parameter '{k}' must be a string or number, got {v}"
            ));
        }
        if text_of(v).contains("${") {
            return Some(format!(
                "parameter '{k}' holds a ${{...}} reference, which only a pipeline definition may use"
            ));
        }
    }
    for (n, req, _) in t.params {
        if *req && !params.contains_key(*n) {
            return Some(format!(
                "parameter '{n}' is required for task type {}",
                t.name
            ));
        }
    }
    if let Some(v) = params.get("replace")
        && text_of(v) != "false"
    {
        return Some(
            "parameter 'replace' is not accepted from outside contimg (it would overwrite a plan)"
                .into(),
        );
    }
    for k in ["reference", "cwd", super::jobs::OUT_DIR] {
        if let Some(v) = params.get(k) {
            let p = std::path::Path::new(v.as_str().unwrap_or_default());
            let leaves = p.is_absolute()
                || p.components()
                    .any(|c| matches!(c, std::path::Component::ParentDir));
            if leaves {
                return Some(format!(
                    "parameter '{k}' = {v} leaves the workspace: give a path relative to it, \
                     without '..'"
                ));
            }
        }
    }
    None
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn accept(names: &[&str]) -> Vec<String> {
        names.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_default_refuses_command_and_every_job_type() {
        let d = accept(DEFAULT_ACCEPT);
        let e = vet("command", &json!({"argv": ["touch", "x"]}), None, &d, &[]).unwrap_err();
        assert!(
            e.contains("not accepted") && e.contains("accept_outside"),
            "{e}"
        );
        let e = vet("mosaic_build", &json!({"plan_id": 1}), None, &d, &[]).unwrap_err();
        assert!(e.contains("not accepted"), "{e}");
        let e = vet("contimg.run", &json!({}), None, &d, &[]).unwrap_err();
        assert!(e.contains("'pipeline' is required"), "{e}");
        let e = vet("resize", &json!({}), None, &[], &[]).unwrap_err();
        assert!(e.contains("accepted: none"), "{e}");
    }

    #[test]
    fn an_accepted_type_runs_with_plain_params() {
        let a = accept(&["mosaic_plan", "mosaic_qa", "command"]);
        let ok = json!({"tier": "science", "start": "2026-11-20T00:00Z", "end": 61000.5});
        assert_eq!(
            vet("mosaic_plan", &ok, None, &a, &[]),
            Ok(JobKind::MosaicPlan)
        );
        let ok = json!({"mosaic_id": 3, "reference": "catalogues/nvss.csv"});
        assert_eq!(vet("mosaic_qa", &ok, None, &a, &[]), Ok(JobKind::MosaicQa));
        let ok = json!({"argv": ["true"], "env": {"A": "1"}});
        assert_eq!(vet("command", &ok, None, &a, &[]), Ok(JobKind::Command));
    }

    #[test]
    fn hostile_params_are_refused() {
        let a = accept(&["mosaic_plan", "mosaic_qa", "command"]);
        let plan = |extra: Value| {
            let mut p = json!({"tier": "science", "start": "2026-11-20T00:00Z", "end": "2026-11-21T00:00Z"});
            p.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            vet("mosaic_plan", &p, None, &a, &[])
        };
        assert!(
            plan(json!({"replace": true}))
                .unwrap_err()
                .contains("replace")
        );
        assert!(
            plan(json!({"replace": "true"}))
                .unwrap_err()
                .contains("replace")
        );
        assert!(plan(json!({"replace": false})).is_ok());
        assert!(
            plan(json!({"name": "${param.x}"}))
                .unwrap_err()
                .contains("reference")
        );
        assert!(
            plan(json!({"db": "/tmp/x"}))
                .unwrap_err()
                .contains("unknown parameter")
        );
        assert!(
            plan(json!({"name": ["a"]}))
                .unwrap_err()
                .contains("string or number")
        );
        let e = vet(
            "mosaic_qa",
            &json!({"mosaic_id": 1, "reference": "/etc/passwd"}),
            None,
            &a,
            &[],
        );
        assert!(e.unwrap_err().contains("leaves the workspace"));
        let e = vet(
            "mosaic_qa",
            &json!({"mosaic_id": 1, "reference": "a/../../x"}),
            None,
            &a,
            &[],
        );
        assert!(e.unwrap_err().contains("leaves the workspace"));
        let e = vet(
            "command",
            &json!({"argv": ["true"], "cwd": "/root"}),
            None,
            &a,
            &[],
        );
        assert!(e.unwrap_err().contains("leaves the workspace"));
        let e = vet("mosaic_qa", &json!({"reference": "x"}), None, &a, &[]);
        assert!(e.unwrap_err().contains("required"));
        assert!(
            vet("mosaic_qa", &json!([1]), None, &a, &[])
                .unwrap_err()
                .contains("table")
        );
    }

    #[test]
    fn a_task_claiming_an_execution_is_refused() {
        let a = accept(&["mosaic_build"]);
        let h = json!({"origin": "contimg", "execution": 1, "job": "build"});
        let e = vet("mosaic_build", &json!({"plan_id": 1}), Some(&h), &a, &[]).unwrap_err();
        assert!(e.contains("claims to be a job"), "{e}");
        let e = vet(
            "mosaic_build",
            &json!({"plan_id": 1, "execution_id": 4}),
            None,
            &a,
            &[],
        );
        assert!(e.unwrap_err().contains("claims to be a job"));
        let h = json!({"origin": "contimg", "priority": 0});
        assert!(vet("mosaic_build", &json!({"plan_id": 1}), Some(&h), &a, &[]).is_ok());
    }

    #[test]
    fn a_pipeline_run_starts_only_an_allowed_pipeline_with_plain_params() {
        let a = accept(DEFAULT_ACCEPT);
        let allowed = accept(&["on_demand_mosaic"]);
        let run = |p: Value| vet("contimg.run", &p, None, &a, &allowed);
        let ok = json!({"pipeline": "on_demand_mosaic",
                        "params": {"start": "2026-11-20T00:00Z", "end": 61001}});
        assert_eq!(run(ok), Ok(JobKind::PipelineRun));
        let ok = json!({"pipeline": "on_demand_mosaic", "slot": "2026-11-20T03:00Z"});
        assert_eq!(run(ok), Ok(JobKind::PipelineRun));
        let e = run(json!({"pipeline": "nightly_mosaic"})).unwrap_err();
        assert!(
            e.contains("may not be started") && e.contains("run_pipelines"),
            "{e}"
        );
        let e = run(json!({"pipeline": "on_demand_mosaic", "params": "start=x"})).unwrap_err();
        assert!(e.contains("must be a table"), "{e}");
        let e =
            run(json!({"pipeline": "on_demand_mosaic", "params": {"start": ["x"]}})).unwrap_err();
        assert!(e.contains("string or number"), "{e}");
        let e = run(json!({"pipeline": "on_demand_mosaic", "params": {"start": "${x.y}"}}))
            .unwrap_err();
        assert!(e.contains("${...}"), "{e}");
        let e = run(json!({"pipeline": "on_demand_mosaic", "cwd": "x"})).unwrap_err();
        assert!(e.contains("unknown parameter 'cwd'"), "{e}");
    }
}
