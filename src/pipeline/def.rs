//! Pipeline definitions as written in TOML: [`PipelineDef`], [`JobDef`], [`ParamSpec`], [`NotifyRule`],
//! the built-in pipelines, and how a workspace's `[pipelines.NAME]` tables combine with them.
//!
//! Invariants: a definition is plain data (parsing never fails on meaning, only on shape: unknown keys are
//! refused); every check of meaning lives in `validate.rs`. A workspace table replaces the built-in of the
//! same name as a whole (no field-by-field merge, so what runs is exactly what is written).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::queue::RetryStrategy;

/// The built-in pipelines, in the same TOML form a workspace uses.
pub const BUILTIN_TOML: &str = r#"
[pipelines.nightly_mosaic]
description = "Plan, build and QA a science-tier mosaic of the 24 h ending at the slot"
schedule = "0 3 * * *"
window = "24h"
max_retries = 2
retry = { kind = "exponential", base_s = 60, factor = 3, cap_s = 900 }
# Every failure is logged; email, webhook and command take their targets from [notify] in contimg.toml
# (email_to, webhook_url / webhook_url_env, command) and are recorded as skipped while those are unset.
notify = [
    { on = "failure", channel = "log" },
    { on = "failure", channel = "email" },
    { on = "failure", channel = "webhook" },
    { on = "failure", channel = "command" },
]

[[pipelines.nightly_mosaic.jobs]]
id = "plan"
type = "mosaic_plan"
params = { tier = "science", start = "${slot.start}", end = "${slot.end}", name = "nightly_${slot.night}" }
timeout = "10m"

[[pipelines.nightly_mosaic.jobs]]
id = "build"
type = "mosaic_build"
params = { plan_id = "${plan.plan_id}" }
depends_on = ["plan"]
timeout = "30m"

[[pipelines.nightly_mosaic.jobs]]
id = "qa"
type = "mosaic_qa"
params = { mosaic_id = "${build.mosaic_id}" }
depends_on = ["build"]
timeout = "10m"

[pipelines.on_demand_mosaic]
description = "Plan, build and QA one mosaic of a window given with --param start=… end=… [tier=…] [name=…]"
max_retries = 2
retry = { kind = "exponential", base_s = 60, factor = 3, cap_s = 900 }

[pipelines.on_demand_mosaic.params]
start = { required = true, description = "window start (ISO-8601 UTC or MJD)" }
end = { required = true, description = "window end, exclusive" }
tier = { default = "science", description = "tier name (see `contimg tiers`)" }
name = { description = "plan name (default: tier and window)" }

[[pipelines.on_demand_mosaic.jobs]]
id = "plan"
type = "mosaic_plan"
params = { tier = "${param.tier}", start = "${param.start}", end = "${param.end}", name = "${param.name}" }
timeout = "10m"

[[pipelines.on_demand_mosaic.jobs]]
id = "build"
type = "mosaic_build"
params = { plan_id = "${plan.plan_id}" }
depends_on = ["plan"]
timeout = "30m"

[[pipelines.on_demand_mosaic.jobs]]
id = "qa"
type = "mosaic_qa"
params = { mosaic_id = "${build.mosaic_id}" }
depends_on = ["build"]
timeout = "10m"
"#;

/// One pipeline: a graph of jobs with shared retry, window, schedule and notification settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// 5-field cron expression in UTC (minute hour day-of-month month day-of-week); `None` = unscheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Length of the window ending at the slot (e.g. "24h"): `${slot.start}` = slot − window.
    /// Without it `${slot.start}` equals `${slot.end}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Retries after the first attempt for every job (a job may override). `max_retries = 2` = 3 attempts.
    #[serde(default)]
    pub max_retries: u32,
    /// Delay between attempts. `kind = "none"` means no retries at all (then `max_retries` must be 0).
    #[serde(default)]
    pub retry: RetryStrategy,
    /// Who hears about failures (delivered by the notification outbox; parsed and validated here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyRule>,
    /// How many executions of this pipeline may run at once (different slots); at least 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub max_active: u32,
    /// What `run` does with a new slot while `max_active` executions still run.
    #[serde(default, skip_serializing_if = "WhenBusy::is_skip")]
    pub when_busy: WhenBusy,
    /// Parameters a run may set with `--param k=v`, referenced as `${param.k}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, ParamSpec>,
    pub jobs: Vec<JobDef>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// What a new slot does while the pipeline already has `max_active` executions running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WhenBusy {
    /// Do not start it: `run` reports the running execution(s) and exits 0; `run --catch-up` (or a
    /// later `--slot` backfill) picks the slot up afterwards. The default: a cron job never piles up.
    #[default]
    Skip,
    /// Wait (polling) until fewer than `max_active` run, then start.
    Wait,
}

impl WhenBusy {
    fn is_skip(&self) -> bool {
        *self == WhenBusy::Skip
    }
}

/// One job of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDef {
    pub id: String,
    #[serde(rename = "type")]
    pub job_type: String,
    /// Parameters for the job type; string values may contain `${…}` references.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Higher runs first among jobs that are ready at the same time.
    #[serde(default)]
    pub priority: i64,
    /// Longest an attempt may run (e.g. "30m"); the worker kills it after that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Overrides the pipeline's `max_retries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Overrides the pipeline's `retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryStrategy>,
}

impl JobDef {
    /// The job's kind; `Err` for a type no kind has (which validation reports).
    pub fn kind(&self) -> Result<super::jobs::JobKind, super::jobs::UnknownJobKind> {
        self.job_type.parse()
    }
}

/// A run parameter: required, or with a default, or optional (then a job parameter that is exactly
/// `${param.NAME}` is left out when it is not given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// When to notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NotifyOn {
    /// The execution failed (any job failed for good, a QA FAIL included).
    #[default]
    Failure,
}

/// A notification rule. `channel` is one of `email` (`to`), `webhook` (`url` or `url_env`), `command`
/// (`argv`) or `log` (a line in the workspace's `logs/notifications.log` and on stderr). A rule without
/// its target takes it from `[notify]` in `contimg.toml` when it is delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyRule {
    #[serde(default)]
    pub on: NotifyOn,
    /// Only failures of these jobs (default: any job).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    pub channel: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Written out redacted (see [`super::secret`]); delivery takes the full URL from the
    /// definition in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<super::secret::SecretUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
}

impl NotifyRule {
    /// The rule's channel; `Err` for a name no channel has (which validation reports).
    pub fn channel(&self) -> Result<Channel, UnknownChannel> {
        self.channel.parse()
    }
}

/// Where a notification goes. Written in notify rules and stored in the outbox
/// (`notifications.channel`) as its lowercase name ([`Channel::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Webhook,
    Command,
    Log,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Email,
        Channel::Webhook,
        Channel::Command,
        Channel::Log,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::Command => "command",
            Channel::Log => "log",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A name that is no notification channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?}")]
pub struct UnknownChannel(pub String);

impl std::str::FromStr for Channel {
    type Err = UnknownChannel;
    fn from_str(s: &str) -> Result<Channel, UnknownChannel> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_string()))
    }
}

/// Where a definition came from, for error messages (`built-in` or the config file's path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin(pub String);

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A named definition and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedPipeline {
    pub name: String,
    pub source: Origin,
    /// True when a workspace table replaced a built-in of the same name.
    pub overrides_builtin: bool,
    pub def: PipelineDef,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BuiltinFile {
    pipelines: BTreeMap<String, PipelineDef>,
}

/// The built-in pipelines.
pub fn builtin() -> BTreeMap<String, PipelineDef> {
    // The text is a constant checked by a unit test; failing here is a bug in this file.
    toml::from_str::<BuiltinFile>(BUILTIN_TOML).map_or_else(
        |e| panic!("built-in pipeline TOML is invalid (a bug in contimg): {e}"),
        |f| f.pipelines,
    )
}

/// The built-ins with a workspace's `[pipelines.NAME]` tables over them, by name.
pub fn resolve(workspace: &BTreeMap<String, PipelineDef>, source: &str) -> Vec<NamedPipeline> {
    let mut out: BTreeMap<String, NamedPipeline> = builtin()
        .into_iter()
        .map(|(name, def)| {
            (
                name.clone(),
                NamedPipeline {
                    name,
                    source: Origin("built-in".into()),
                    overrides_builtin: false,
                    def,
                },
            )
        })
        .collect();
    let file = source.to_string();
    for (name, def) in workspace {
        let overrides = out.contains_key(name);
        out.insert(
            name.clone(),
            NamedPipeline {
                name: name.clone(),
                source: Origin(file.clone()),
                overrides_builtin: overrides,
                def: def.clone(),
            },
        );
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_have_the_seed_jobs() {
        let b = builtin();
        for name in ["nightly_mosaic", "on_demand_mosaic"] {
            let ids: Vec<&str> = b[name].jobs.iter().map(|j| j.id.as_str()).collect();
            assert_eq!(ids, ["plan", "build", "qa"], "{name}");
            assert_eq!(b[name].max_retries, 2);
        }
        assert_eq!(b["nightly_mosaic"].window.as_deref(), Some("24h"));
        assert_eq!(b["nightly_mosaic"].notify[0].on, NotifyOn::Failure);
    }

    #[test]
    fn workspace_table_replaces_builtin() {
        let mut ws = BTreeMap::new();
        let mut d = builtin()["nightly_mosaic"].clone();
        d.max_retries = 0;
        ws.insert("nightly_mosaic".to_string(), d);
        let all = resolve(&ws, "contimg.toml");
        let n = all.iter().find(|p| p.name == "nightly_mosaic").unwrap();
        assert!(n.overrides_builtin);
        assert_eq!(n.def.max_retries, 0);
        assert_eq!(n.source.0, "contimg.toml");
    }
}
