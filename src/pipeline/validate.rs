//! Checks a pipeline definition before anything runs.
//!
//! Every problem found is reported (not just the first), each naming the file, the pipeline and, where it
//! applies, the job. A definition with no errors can be spawned: its graph is acyclic, every dependency and
//! reference names an upstream job, every parameter is known to its job type, and every duration, retry and
//! cron expression is in range.

use std::collections::{BTreeMap, BTreeSet};

use super::def::{JobDef, NamedPipeline, PipelineDef};
use super::jobs::{JOB_TYPES, JobKind, absurd_task_problems, job_type};
use super::subst;
use crate::queue::RetryStrategy;
use crate::time::parse_duration;

/// One problem in one pipeline definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValidationError {
    pub source: String,
    pub pipeline: String,
    pub job: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: pipeline '{}'", self.source, self.pipeline)?;
        if let Some(j) = &self.job {
            write!(f, ", job '{j}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The slot variables a job may reference: `${slot.start}` and `${slot.end}` (the window,
/// ISO-8601 UTC), `${slot.date}` (the slot's date, YYYY-MM-DD) and `${slot.night}` (the date of
/// the window's start: the night the window holds).
pub const SLOT_KEYS: &[&str] = &["start", "end", "date", "night"];

/// A cron expression that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "schedule {expr:?} has {fields} fields; write 5: minute hour day-of-month month day-of-week (UTC)"
    )]
    Fields { expr: String, fields: usize },
    #[error("schedule {expr:?} is not a valid cron expression: {source}")]
    Invalid {
        expr: String,
        #[source]
        source: croner::errors::CronError,
    },
    #[error("schedule {expr:?}: no time at or before {now}: {source}")]
    NoPrevious {
        expr: String,
        now: chrono::DateTime<chrono::Utc>,
        #[source]
        source: croner::errors::CronError,
    },
}

/// Parses a 5-field cron expression (UTC; minute hour day-of-month month day-of-week). Day-of-month and
/// day-of-week combine with OR when both are restricted (Vixie cron); 0 and 7 are Sunday.
pub fn parse_schedule(expr: &str) -> Result<croner::Cron, ScheduleError> {
    let fields = expr.split_whitespace().count();
    if fields != 5 && !expr.trim_start().starts_with('@') {
        return Err(ScheduleError::Fields {
            expr: expr.to_string(),
            fields,
        });
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .dom_and_dow(false)
        .build()
        .parse(expr)
        .map_err(|source| ScheduleError::Invalid {
            expr: expr.to_string(),
            source,
        })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// What is wrong with a retry setting, if anything.
fn retry_problem(r: &RetryStrategy, max_retries: u32) -> Option<String> {
    if let Err(e) = r.validate() {
        return Some(e.to_string());
    }
    if matches!(r, RetryStrategy::None) && max_retries > 0 {
        return Some(format!(
            "retry kind \"none\" means no retries, but max_retries = {max_retries}; set max_retries = 0, \
             or use retry = {{ kind = \"fixed\", delay_s = 0 }} for immediate retries"
        ));
    }
    None
}

/// Checks one pipeline; returns every problem found, in this order: the pipeline's own settings, its
/// notify rules, each job, dependency cycles, then the `${...}` references of each job.
pub fn validate(p: &NamedPipeline) -> Vec<ValidationError> {
    let mut r = Report::new(p);
    let ids: BTreeSet<&str> = p.def.jobs.iter().map(|j| j.id.as_str()).collect();
    check_settings(&mut r, p);
    check_notify(&mut r, &p.def, &ids);
    let mut seen = BTreeSet::new();
    for j in &p.def.jobs {
        check_job(&mut r, &p.def, j, &ids, &mut seen);
    }
    let deps = dependency_graph(&p.def, &ids);
    check_cycles(&mut r, &deps);
    for j in &p.def.jobs {
        check_references(&mut r, p, j, &ids, &deps);
    }
    r.errs
}

/// The problems found so far, each stamped with the pipeline's source and name.
struct Report<'a> {
    p: &'a NamedPipeline,
    errs: Vec<ValidationError>,
}

impl<'a> Report<'a> {
    fn new(p: &'a NamedPipeline) -> Self {
        Report {
            p,
            errs: Vec::new(),
        }
    }

    fn err(&mut self, job: Option<&str>, message: String) {
        self.errs.push(ValidationError {
            source: self.p.source.0.clone(),
            pipeline: self.p.name.clone(),
            job: job.map(str::to_string),
            message,
        });
    }
}

/// Known dependencies of each job id (self-dependencies and unknown ids left out). Duplicate ids pool
/// their dependencies, so a cycle through either copy is still found.
type Deps<'a> = BTreeMap<&'a str, Vec<&'a str>>;

/// The pipeline's own settings: name, jobs present, schedule, window, retry, parameters, max_active.
fn check_settings(r: &mut Report, p: &NamedPipeline) {
    let d = &p.def;
    if !valid_name(&p.name) {
        r.err(
            None,
            "a pipeline name may only hold letters, digits, '_' and '-'".into(),
        );
    }
    if d.jobs.is_empty() {
        r.err(
            None,
            "it has no jobs; add [[pipelines.NAME.jobs]] tables".into(),
        );
    }
    if let Some(s) = &d.schedule
        && let Err(e) = parse_schedule(s)
    {
        r.err(None, e.to_string());
    }
    if let Some(w) = &d.window
        && let Err(e) = parse_duration(w)
    {
        r.err(None, format!("window: {e}"));
    }
    if let Some(e) = retry_problem(&d.retry, d.max_retries) {
        r.err(None, e);
    }
    for (name, spec) in &d.params {
        if !valid_name(name) {
            r.err(
                None,
                format!("parameter name {name:?} may only hold letters, digits, '_' and '-'"),
            );
        }
        if spec.required && spec.default.is_some() {
            r.err(
                None,
                format!("parameter '{name}' is required and has a default; keep one of the two"),
            );
        }
    }
    if d.max_active == 0 {
        r.err(
            None,
            "max_active = 0 would never run anything; use 1 or more".into(),
        );
    }
}

/// Each notify rule: a known channel, and only jobs this pipeline has.
fn check_notify(r: &mut Report, d: &PipelineDef, ids: &BTreeSet<&str>) {
    for (i, rule) in d.notify.iter().enumerate() {
        let what = format!("notify rule {}", i + 1);
        if let Err(e) = rule.channel() {
            r.err(
                None,
                format!("{what}: {e}; use email, webhook, command or log"),
            );
        }
        for j in &rule.jobs {
            if !ids.contains(j.as_str()) {
                r.err(
                    None,
                    format!("{what} names job '{j}', which this pipeline does not have"),
                );
            }
        }
    }
}

/// One job: its id (well-formed, not seen before), type and parameters, dependencies, timeout, argv
/// (for `command`) and retry setting.
fn check_job<'a>(
    r: &mut Report,
    d: &PipelineDef,
    j: &'a JobDef,
    ids: &BTreeSet<&str>,
    seen: &mut BTreeSet<&'a str>,
) {
    let jid = Some(j.id.as_str());
    if !valid_name(&j.id) {
        r.err(
            jid,
            "a job id may only hold letters, digits, '_' and '-'".into(),
        );
    }
    if !seen.insert(j.id.as_str()) {
        r.err(
            jid,
            "duplicate job id; every job of a pipeline needs its own id".into(),
        );
    }
    check_job_params(r, j);
    for dep in &j.depends_on {
        if dep == &j.id {
            r.err(jid, "depends on itself".into());
        } else if !ids.contains(dep.as_str()) {
            r.err(jid, format!("depends on unknown job '{dep}'"));
        }
    }
    if let Some(t) = &j.timeout
        && let Err(e) = parse_duration(t)
    {
        r.err(jid, format!("timeout: {e}"));
    }
    if j.kind() == Ok(JobKind::Command)
        && let Some(argv) = j.params.get("argv")
        && let Err(e) = check_argv(argv)
    {
        r.err(jid, e.to_string());
    }
    if j.kind() == Ok(JobKind::AbsurdTask) {
        for problem in absurd_task_problems(&j.params) {
            r.err(jid, problem);
        }
    }
    let mr = j.max_retries.unwrap_or(d.max_retries);
    if let Some(e) = retry_problem(j.retry.as_ref().unwrap_or(&d.retry), mr) {
        r.err(jid, e);
    }
}

/// A job's type is known, it gives no parameter the type does not take, and every required one.
fn check_job_params(r: &mut Report, j: &JobDef) {
    let jid = Some(j.id.as_str());
    let Ok(t) = j.kind().map(job_type) else {
        r.err(
            jid,
            format!(
                "unknown job type {:?}; known types: {}",
                j.job_type,
                JOB_TYPES
                    .iter()
                    .filter(|t| t.kind.in_pipelines())
                    .map(|t| t.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return;
    };
    if !t.kind.in_pipelines() {
        r.err(
            jid,
            format!(
                "job type '{}' is the task another ABSURD client spawns to start a pipeline; a \
                 pipeline's job cannot start a pipeline",
                t.name
            ),
        );
        return;
    }
    for k in j.params.keys() {
        if !t.params.iter().any(|(n, _, _)| n == k) {
            r.err(
                jid,
                format!(
                    "unknown parameter '{k}' for job type {}; it takes: {}",
                    t.name,
                    t.params.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    for (n, req, _) in t.params {
        if *req && !j.params.contains_key(*n) {
            r.err(
                jid,
                format!("parameter '{n}' is required for job type {}", t.name),
            );
        }
    }
}

/// Each job's known dependencies (see [`Deps`]).
fn dependency_graph<'a>(d: &'a PipelineDef, ids: &BTreeSet<&str>) -> Deps<'a> {
    let mut deps: Deps = BTreeMap::new();
    for j in &d.jobs {
        let e = deps.entry(j.id.as_str()).or_default();
        e.extend(
            j.depends_on
                .iter()
                .map(String::as_str)
                .filter(|x| ids.contains(x) && *x != j.id),
        );
    }
    deps
}

/// Dependency cycles (depth-first search from each job), each reported once.
fn check_cycles(r: &mut Report, deps: &Deps) {
    let mut reported = BTreeSet::new();
    for start in deps.keys() {
        let mut stack = vec![*start];
        if let Some(cycle) = find_cycle(start, deps, &mut stack)
            && reported.insert(cycle.iter().copied().collect::<BTreeSet<_>>())
        {
            r.err(
                Some(start),
                format!("dependency cycle: {}", cycle.join(" -> ")),
            );
        }
    }
}

/// Every job `id` depends on, directly or not.
fn ancestors<'a>(id: &str, deps: &Deps<'a>) -> BTreeSet<&'a str> {
    let mut out = BTreeSet::new();
    let mut todo = vec![id];
    while let Some(x) = todo.pop() {
        for &p in deps.get(x).map(Vec::as_slice).unwrap_or(&[]) {
            if out.insert(p) {
                todo.push(p);
            }
        }
    }
    out
}

/// A job's `${...}` references: the slot, a declared parameter, or an upstream job.
fn check_references(
    r: &mut Report,
    p: &NamedPipeline,
    j: &JobDef,
    ids: &BTreeSet<&str>,
    deps: &Deps,
) {
    let jid = Some(j.id.as_str());
    let up = ancestors(&j.id, deps);
    let refs = match subst::refs(&serde_json::Value::Object(j.params.clone())) {
        Ok(refs) => refs,
        Err(e) => {
            r.err(jid, e.0);
            return;
        }
    };
    for rf in refs {
        match rf.ns.as_str() {
            "slot" if rf.path.len() != 1 || !SLOT_KEYS.contains(&rf.path[0].as_str()) => {
                r.err(
                    jid,
                    format!("{rf}: the slot has only {}", SLOT_KEYS.join(", ")),
                );
            }
            "param" if rf.path.len() != 1 || !p.def.params.contains_key(&rf.path[0]) => {
                r.err(
                    jid,
                    format!(
                        "{rf}: no such parameter; declare it under [pipelines.{}.params]",
                        p.name
                    ),
                );
            }
            "slot" | "param" => {}
            other if other == j.id => r.err(jid, format!("{rf} refers to this job's own output")),
            other if !ids.contains(other) => r.err(
                jid,
                format!("{rf}: there is no job '{other}' (nor is it slot or param)"),
            ),
            other if !up.contains(other) => r.err(
                jid,
                format!("{rf}: job '{other}' is not upstream of this job; add it to depends_on"),
            ),
            _ => {}
        }
    }
}

fn find_cycle<'a>(
    at: &'a str,
    deps: &BTreeMap<&'a str, Vec<&'a str>>,
    stack: &mut Vec<&'a str>,
) -> Option<Vec<&'a str>> {
    for &n in deps.get(at).map(Vec::as_slice).unwrap_or(&[]) {
        if let Some(pos) = stack.iter().position(|x| *x == n) {
            let mut c = stack[pos..].to_vec();
            c.push(n);
            return Some(c);
        }
        if stack.len() > deps.len() {
            return None;
        }
        stack.push(n);
        if let Some(c) = find_cycle(n, deps, stack) {
            return Some(c);
        }
        stack.pop();
    }
    None
}

/// Why a command's argv cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgvError {
    #[error("argv = [] runs nothing: give the program and its arguments")]
    Empty,
    #[error("argv must be an array of strings, got {0}")]
    NotArray(serde_json::Value),
    #[error(
        "argv[{index}] = {value} is not a string; quote every argument (argv = [\"prog\", \"1\"])"
    )]
    NotString {
        index: usize,
        value: serde_json::Value,
    },
    #[error("argv[0] (the program) is empty")]
    EmptyProgram,
}

/// A command's argv as the runner will take it: a non-empty array of strings, the first (the
/// program) not empty.
fn check_argv(argv: &serde_json::Value) -> Result<(), ArgvError> {
    let items = match argv {
        serde_json::Value::Array(items) if !items.is_empty() => items,
        serde_json::Value::Array(_) => return Err(ArgvError::Empty),
        other => return Err(ArgvError::NotArray(other.clone())),
    };
    if let Some((index, value)) = items.iter().enumerate().find(|(_, v)| !v.is_string()) {
        return Err(ArgvError::NotString {
            index,
            value: value.clone(),
        });
    }
    if items[0].as_str().is_some_and(|p| p.trim().is_empty()) {
        return Err(ArgvError::EmptyProgram);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::def::{NamedPipeline, Origin, builtin};

    fn named(text: &str) -> NamedPipeline {
        let def: PipelineDef = toml::from_str(text).unwrap();
        NamedPipeline {
            name: "p".into(),
            source: Origin("f.toml".into()),
            overrides_builtin: false,
            def,
        }
    }

    #[test]
    fn builtins_are_valid() {
        for (name, def) in builtin() {
            let p = NamedPipeline {
                name,
                source: Origin("built-in".into()),
                overrides_builtin: false,
                def,
            };
            assert_eq!(validate(&p), vec![]);
        }
    }

    #[test]
    fn every_kind_of_error_is_named() {
        let p = named(
            r#"
            schedule = "61 * * * *"
            [[jobs]]
            id = "a"
            type = "command"
            params = { argv = ["x", "${c.out}", "${slot.week}"], bogus = 1 }
            depends_on = ["b"]
            [[jobs]]
            id = "b"
            type = "command"
            params = { argv = ["${nope.x}", "${param.zz}"] }
            depends_on = ["a", "ghost"]
            [[jobs]]
            id = "b"
            type = "frobnicate"
            [[jobs]]
            id = "c"
            type = "command"
            params = { argv = ["true"] }
            "#,
        );
        let text: Vec<String> = validate(&p)
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        let all = text.join("\n");
        for needle in [
            "f.toml: pipeline 'p': schedule \"61 * * * *\"",
            "job 'a': unknown parameter 'bogus'",
            "job 'a': ${c.out}: job 'c' is not upstream",
            "job 'a': ${slot.week}",
            "job 'b': depends on unknown job 'ghost'",
            "job 'b': duplicate job id",
            "job 'b': unknown job type \"frobnicate\"",
            "job 'b': ${nope.x}: there is no job 'nope'",
            "job 'b': ${param.zz}: no such parameter",
            "dependency cycle",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn cron_follows_vixie() {
        use chrono::TimeZone;
        // DOM and DOW both restricted: OR. 2026-11-01 is a Sunday; the 15th is a Sunday as well.
        let c = parse_schedule("0 3 13 * 7").unwrap();
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap();
        let next = c.find_next_occurrence(&t0, false).unwrap();
        assert_eq!(
            next,
            chrono::Utc.with_ymd_and_hms(2026, 11, 8, 3, 0, 0).unwrap()
        );
        let next = c.find_next_occurrence(&next, false).unwrap();
        assert_eq!(
            next,
            chrono::Utc.with_ymd_and_hms(2026, 11, 13, 3, 0, 0).unwrap()
        );
        // 0 and 7 are both Sunday.
        let sun0 = parse_schedule("0 3 * * 0").unwrap();
        let sun7 = parse_schedule("0 3 * * 7").unwrap();
        let a = sun0.find_next_occurrence(&t0, false).unwrap();
        assert_eq!(a, sun7.find_next_occurrence(&t0, false).unwrap());
        assert_eq!(
            a,
            chrono::Utc.with_ymd_and_hms(2026, 11, 8, 3, 0, 0).unwrap()
        );
        assert!(parse_schedule("0 0 3 * * *").is_err());
    }
}
