//! Failure notifications through an outbox: [`enqueue_failure`] writes one row per notify rule when an
//! execution fails (called inside the transaction that marks it failed), and [`deliver`] sends pending
//! rows through their channel — `email` (an RFC 5322 message piped to a sendmail-compatible command),
//! `webhook` (HTTP POST of JSON with a Slack-compatible `text` field), `command` (an argv run without a
//! shell, the facts in `CONTIMG_*` environment variables) or `log` (`logs/notifications.log` + stderr).
//!
//! Owns `migrations/0004_notify.sql` (`notifications`, `notification_attempts`; `execution_runners` is
//! used by `pipeline::runner`) and their PostgreSQL twins in `migrations/postgres/0002_pipeline.sql`:
//! one implementation over the portable [`Sql`] handle serves both backends.
//!
//! Invariants: one notification per (execution, rule, failure round) — a UNIQUE key, so a second
//! enqueue changes nothing; a row is delivered by at most one process at a time (claimed `sending` with
//! an expiry); every attempt is recorded; a channel error only changes the notification's row, never a
//! job or an execution; after `max_attempts` failed attempts a row is `failed` and left alone; a rule
//! whose target is configured nowhere is `skipped`, with the setting to add in `last_error`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use std::collections::BTreeMap;

use crate::pipeline::def::{Channel, NamedPipeline, NotifyOn, NotifyRule, PipelineDef};
use crate::pipeline::secret::{SecretUrl, redact_url};
use crate::store::sql::Writer;
use crate::store::{Sql, StoreError, Value as V};

/// Defaults for notification channels; a pipeline's `notify` rule may set its own target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The sendmail-compatible command (argv) an email is piped to; it reads recipients from the headers.
    pub sendmail: Vec<String>,
    /// The From address of emails (default: contimg@HOSTNAME).
    pub from: String,
    /// Recipients of `email` rules that name none.
    pub email_to: Vec<String>,
    /// URL for `webhook` rules that name none.
    pub webhook_url: String,
    /// Environment variable holding the URL for `webhook` rules that name none (when webhook_url is empty).
    pub webhook_url_env: String,
    /// argv for `command` rules that name none.
    pub command: Vec<String>,
    /// Longest a delivery may take (HTTP request, sendmail, command), in seconds.
    pub timeout_s: f64,
    /// Delivery attempts before a notification is given up (marked failed).
    pub max_attempts: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            sendmail: vec!["/usr/sbin/sendmail".into(), "-t".into()],
            from: String::new(),
            email_to: vec![],
            webhook_url: String::new(),
            webhook_url_env: "CONTIMG_WEBHOOK_URL".into(),
            command: vec![],
            timeout_s: 10.0,
            max_attempts: 10,
        }
    }
}

/// How long a process may hold a notification it is delivering before another may take it over.
const CLAIM: Duration = Duration::from_secs(300);

/// What can go wrong with the outbox itself (a channel's failure is not an error: it is recorded).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notification outbox: {0}")]
    Db(#[from] StoreError),
    /// A row this contimg cannot read (written by another version?).
    #[error("notification outbox: {0}")]
    Corrupt(String),
}

/// The facts about a failed execution a message is made of (stored as the row's `event`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Event {
    pub execution_id: i64,
    pub pipeline: String,
    pub slot: Option<String>,
    pub status: String,
    pub failed_jobs: Vec<String>,
    /// The error of each failed job.
    pub errors: std::collections::BTreeMap<String, String>,
    /// The log of each failed job's last attempt.
    pub logs: std::collections::BTreeMap<String, String>,
    pub round: i64,
    pub failed_at: String,
}

impl Event {
    /// One line for a chat message or a subject.
    pub fn summary(&self) -> String {
        format!(
            "contimg: {} {} for slot {} (execution {}): job(s) {} failed",
            self.pipeline,
            self.status,
            self.slot.as_deref().unwrap_or("-"),
            self.execution_id,
            self.failed_jobs.join(", ")
        )
    }

    /// The full text: summary, each failed job's error and log, what to do next.
    pub fn text(&self) -> String {
        let mut t = self.summary();
        t.push('\n');
        for j in &self.failed_jobs {
            t.push_str(&format!(
                "\n{j}: {}\n",
                self.errors.get(j).map_or("-", String::as_str)
            ));
            if let Some(l) = self.logs.get(j) {
                t.push_str(&format!("  log: {l}\n"));
            }
        }
        t.push_str(&format!(
            "\nSee `contimg status {id}`; re-run the failed jobs with `contimg retry {id}`.\n",
            id = self.execution_id
        ));
        t
    }
}

/// A failed job of an execution, as its failure notification tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedJob {
    pub job: String,
    pub error: String,
    /// The log of its last attempt.
    pub log: Option<String>,
}

/// Writes the notifications for execution `eid`, which has just failed, on `db` (inside the caller's
/// transaction). `def_json` is the pipeline definition stored with the execution; `round` is its
/// failure round (a retry that fails again notifies again) and `failed` its failed jobs, which each
/// backend reads from where it keeps its tasks. Returns how many rows were new.
pub fn enqueue_failure(
    db: &mut dyn Sql,
    eid: i64,
    def_json: Option<&str>,
    round: i64,
    failed: &[FailedJob],
) -> Result<usize, NotifyError> {
    let Some(def) = def_json.and_then(|d| serde_json::from_str::<PipelineDef>(d).ok()) else {
        return Ok(0);
    };
    if def.notify.is_empty() {
        return Ok(0);
    }
    let r = db.query_one(
        "SELECT pipeline_name, slot, status FROM pipeline_executions WHERE id = ?1",
        &[V::from(eid)],
    )?;
    let now = crate::time::now();
    let event = Event {
        execution_id: eid,
        pipeline: r.get(0)?,
        slot: r.get(1)?,
        status: r.get(2)?,
        failed_jobs: failed.iter().map(|f| f.job.clone()).collect(),
        errors: failed
            .iter()
            .map(|f| (f.job.clone(), f.error.clone()))
            .collect(),
        logs: failed
            .iter()
            .filter_map(|f| Some((f.job.clone(), f.log.clone()?)))
            .collect(),
        round,
        failed_at: crate::time::iso(now),
    };
    let event_json = serde_json::to_string(&event).unwrap_or_else(|_| "{}".into());
    let mut n = 0;
    for (i, rule) in def.notify.iter().enumerate() {
        if rule.on != NotifyOn::Failure {
            continue;
        }
        if !rule.jobs.is_empty() && !event.failed_jobs.iter().any(|j| rule.jobs.contains(j)) {
            continue;
        }
        let rule_json = serde_json::to_string(rule).unwrap_or_else(|_| "{}".into());
        n += db.execute(
            "INSERT INTO notifications
                 (execution_id, rule_index, round, channel, rule, event, created_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
             ON CONFLICT (execution_id, rule_index, round) DO NOTHING",
            &[
                V::from(eid),
                V::from(i),
                V::from(round),
                V::from(rule.channel.as_str()),
                V::from(rule_json),
                V::from(event_json.as_str()),
                V::from(crate::time::iso(now)),
            ],
        )? as usize;
    }
    Ok(n)
}

/// Where and how [`deliver`] sends.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub config: NotifyConfig,
    /// The workspace's logs directory (for the `log` channel).
    pub logs_dir: PathBuf,
    /// Who is delivering (`host:pid`), recorded with each attempt.
    pub by: String,
    /// The inline webhook URLs of the definitions in force, by (pipeline, rule index): the stored
    /// rule has them only redacted.
    pub inline_urls: BTreeMap<(String, i64), SecretUrl>,
}

/// The inline webhook URLs of `pipelines`, for [`Delivery::inline_urls`].
pub fn inline_urls(pipelines: &[NamedPipeline]) -> BTreeMap<(String, i64), SecretUrl> {
    let mut out = BTreeMap::new();
    for p in pipelines {
        for (i, rule) in p.def.notify.iter().enumerate() {
            if let Some(u) = &rule.url {
                out.insert((p.name.clone(), i as i64), u.clone());
            }
        }
    }
    out
}

/// Where a notification is in its delivery: `pending` (due at `next_attempt_at`), `sending` (claimed
/// by a deliverer), `delivered`, `failed` (attempts exhausted) or `skipped` (no target configured).
/// Stored in `notifications.state` and shown as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationState {
    Pending,
    Sending,
    Delivered,
    Failed,
    Skipped,
}

impl NotificationState {
    pub const ALL: [NotificationState; 5] = [
        NotificationState::Pending,
        NotificationState::Sending,
        NotificationState::Delivered,
        NotificationState::Failed,
        NotificationState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Sending => "sending",
            NotificationState::Delivered => "delivered",
            NotificationState::Failed => "failed",
            NotificationState::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for NotificationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for NotificationState {
    type Err = NotifyError;
    fn from_str(s: &str) -> Result<NotificationState, NotifyError> {
        NotificationState::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| NotifyError::Corrupt(format!("unknown notification state '{s}'")))
    }
}

/// One row of the outbox, for `contimg notifications`.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub id: i64,
    pub execution_id: i64,
    pub pipeline: String,
    pub slot: Option<String>,
    pub rule_index: i64,
    pub round: i64,
    pub channel: String,
    pub state: NotificationState,
    pub attempts: i64,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
    pub rule: Value,
}

/// The outbox, newest first.
pub fn list(db: &mut dyn Sql, limit: usize) -> Result<Vec<Notification>, NotifyError> {
    let rows = db.query(
        "SELECT id, execution_id, event, rule_index, round, channel, state, attempts, created_at,
                next_attempt_at, delivered_at, last_error, rule
         FROM notifications ORDER BY id DESC LIMIT ?1",
        crate::vals![limit],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let event: Value = serde_json::from_str(&r.get::<String>(2)?).unwrap_or(Value::Null);
        let state: NotificationState = r.get::<String>(6)?.parse()?;
        out.push(Notification {
            id: r.get(0)?,
            execution_id: r.get(1)?,
            pipeline: event["pipeline"].as_str().unwrap_or_default().to_string(),
            slot: event["slot"].as_str().map(str::to_string),
            rule_index: r.get(3)?,
            round: r.get(4)?,
            channel: r.get(5)?,
            next_attempt_at: if state == NotificationState::Pending {
                r.get(9)?
            } else {
                None
            },
            state,
            attempts: r.get(7)?,
            created_at: r.get(8)?,
            delivered_at: r.get(10)?,
            last_error: r.get(11)?,
            rule: serde_json::from_str(&r.get::<String>(12)?).unwrap_or(Value::Null),
        });
    }
    Ok(out)
}

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct DeliveryStats {
    pub delivered: u32,
    pub retrying: u32,
    pub failed: u32,
    pub skipped: u32,
}

/// Delivers the pending notifications: those due (`next_attempt_at` ≤ now), or all pending ones when
/// `all` (`run` does this: a new run is the moment to try again). Each row is claimed first so that two
/// processes never send the same one.
pub fn deliver(db: &mut dyn Writer, d: &Delivery, all: bool) -> Result<DeliveryStats, NotifyError> {
    release_dead_claims(db)?;
    let now = crate::time::iso(crate::time::now());
    let due = "(state = 'pending' AND (?2 OR next_attempt_at <= ?1))
               OR (state = 'sending' AND claim_expires_at <= ?1)";
    let ids: Vec<i64> = db
        .query(
            &format!("SELECT id FROM notifications WHERE {due} ORDER BY id"),
            crate::vals![now, all],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect::<Result<_, _>>()?;
    let mut stats = DeliveryStats::default();
    for id in ids {
        let now = crate::time::now();
        let claimed = db.execute(
            &format!(
                "UPDATE notifications SET state = 'sending', claimed_by = ?3, claim_expires_at = ?4
                 WHERE id = ?5 AND ({due})"
            ),
            crate::vals![
                crate::time::iso(now),
                all,
                d.by.as_str(),
                crate::time::iso(now + chrono::Duration::from_std(CLAIM).unwrap_or_default()),
                id
            ],
        )?;
        if claimed != 1 {
            continue;
        }
        let r = db.query_one(
            "SELECT rule, event, attempts, rule_index FROM notifications WHERE id = ?1",
            crate::vals![id],
        )?;
        let (rule_s, event_s, attempts, rule_index): (String, String, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let started = crate::time::now();
        let outcome = match (
            serde_json::from_str::<NotifyRule>(&rule_s),
            serde_json::from_str::<Event>(&event_s),
        ) {
            (Ok(rule), Ok(event)) => send(&rule, rule_index, &event, id, d),
            _ => Outcome::Failed(
                "the stored rule or event cannot be read (written by another contimg version?)"
                    .into(),
            ),
        };
        let ended = crate::time::now();
        let attempt = attempts + 1;
        let (ok, err) = match &outcome {
            Outcome::Sent => (true, None),
            Outcome::Failed(e) | Outcome::NotConfigured(e) => (false, Some(e.clone())),
        };
        let (state, next) = match &outcome {
            Outcome::Sent => {
                stats.delivered += 1;
                (NotificationState::Delivered, ended)
            }
            Outcome::NotConfigured(_) => {
                stats.skipped += 1;
                (NotificationState::Skipped, ended)
            }
            Outcome::Failed(_) if attempt >= i64::from(d.config.max_attempts.max(1)) => {
                stats.failed += 1;
                (NotificationState::Failed, ended)
            }
            Outcome::Failed(_) => {
                stats.retrying += 1;
                let delay = (60.0 * 2f64.powi(attempt.clamp(1, 20) as i32 - 1)).min(3600.0);
                (
                    NotificationState::Pending,
                    ended + chrono::Duration::milliseconds((delay * 1000.0) as i64),
                )
            }
        };
        db.write_dyn(&mut |tx| {
            tx.execute(
                "INSERT INTO notification_attempts (notification_id, attempt, started_at, ended_at, by_process, ok, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                crate::vals![
                    id,
                    attempt,
                    crate::time::iso(started),
                    crate::time::iso(ended),
                    d.by.as_str(),
                    ok,
                    &err
                ],
            )?;
            tx.execute(
                "UPDATE notifications SET state = ?2, attempts = ?3, next_attempt_at = ?4, last_error = ?5,
                     delivered_at = CASE WHEN ?2 = 'delivered' THEN ?6 ELSE delivered_at END,
                     claimed_by = NULL, claim_expires_at = NULL
                 WHERE id = ?1",
                crate::vals![
                    id,
                    state.as_str(),
                    attempt,
                    crate::time::iso(next),
                    &err,
                    crate::time::iso(ended)
                ],
            )?;
            Ok(())
        })?;
    }
    Ok(stats)
}

/// Puts back to `pending` (due now) the notifications claimed for delivery by a process that is
/// provably dead (this host, pid gone) instead of waiting for the claim to expire. Such a message
/// may have been sent before the kill, but its sending was never recorded: it is sent again, with
/// the same [`idempotency_key`] so the receiver can drop the repeat.
fn release_dead_claims(db: &mut dyn Writer) -> Result<(), NotifyError> {
    let claims = db.query(
        "SELECT id, claimed_by FROM notifications WHERE state = 'sending' AND claimed_by IS NOT NULL",
        &[],
    )?;
    for r in claims {
        let (id, by): (i64, String) = (r.get(0)?, r.get(1)?);
        if crate::pipeline::procs::holder_dead(&by) {
            db.execute(
                "UPDATE notifications SET state = 'pending', next_attempt_at = ?3,
                     claimed_by = NULL, claim_expires_at = NULL
                 WHERE id = ?1 AND state = 'sending' AND claimed_by = ?2",
                crate::vals![id, by, crate::time::iso(crate::time::now())],
            )?;
        }
    }
    Ok(())
}

/// The key every delivery of notification `id` carries (HTTP header `Idempotency-Key` and JSON
/// field `idempotency_key`, `CONTIMG_IDEMPOTENCY_KEY` for a command; an email's Message-ID is
/// likewise stable): the
/// same for a re-send after a crash, so a receiver can drop the repeat.
pub fn idempotency_key(ev: &Event, id: i64) -> String {
    format!("contimg:{}:e{}:n{id}", ev.pipeline, ev.execution_id)
}

/// The attempts made for notification `id`, oldest first: (attempt, ok, error).
pub fn attempts(
    db: &mut dyn Sql,
    id: i64,
) -> Result<Vec<(i64, bool, Option<String>)>, NotifyError> {
    db.query(
        "SELECT attempt, ok, error FROM notification_attempts WHERE notification_id = ?1 ORDER BY id",
        crate::vals![id],
    )?
    .iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .collect()
}

/// The state of one notification, if it exists.
pub fn state(db: &mut dyn Sql, id: i64) -> Result<Option<String>, NotifyError> {
    Ok(db
        .query_opt(
            "SELECT state FROM notifications WHERE id = ?1",
            crate::vals![id],
        )?
        .map(|r| r.get(0))
        .transpose()?)
}

enum Outcome {
    Sent,
    Failed(String),
    NotConfigured(String),
}

fn send(rule: &NotifyRule, rule_index: i64, ev: &Event, id: i64, d: &Delivery) -> Outcome {
    let timeout = Duration::from_secs_f64(d.config.timeout_s.clamp(0.1, 3600.0));
    let channel = match rule.channel() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    match channel {
        Channel::Log => {
            let line = format!(
                "{} {}\n",
                crate::time::iso(crate::time::now()),
                ev.summary()
            );
            eprint!("{line}");
            let path = d.logs_dir.join("notifications.log");
            let r = std::fs::create_dir_all(&d.logs_dir).and_then(|_| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(line.as_bytes()))
            });
            match r {
                Ok(()) => Outcome::Sent,
                Err(e) => Outcome::Failed(format!("cannot append to {}: {e}", path.display())),
            }
        }
        Channel::Email => {
            let to = if rule.to.is_empty() {
                &d.config.email_to
            } else {
                &rule.to
            };
            if to.is_empty() {
                return Outcome::NotConfigured(
                    "email: no recipients; give the rule to = [\"address\"] or set [notify] email_to in contimg.toml"
                        .into(),
                );
            }
            if d.config.sendmail.is_empty() {
                return Outcome::NotConfigured(
                    "email: [notify] sendmail is empty; set it to a sendmail-compatible command"
                        .into(),
                );
            }
            let msg = email_message(&from_address(&d.config), to, ev, id);
            match run_argv(&d.config.sendmail, &[], Some(msg.as_bytes()), timeout) {
                Ok(_) => Outcome::Sent,
                Err(e) => Outcome::Failed(format!("email: {e}")),
            }
        }
        Channel::Webhook => {
            let (url, var) = if let Some(u) = &rule.url {
                let live = u.expose().or_else(|| {
                    d.inline_urls
                        .get(&(ev.pipeline.clone(), rule_index))
                        .and_then(SecretUrl::expose)
                });
                match live {
                    Some(u) => (Some(u.to_string()), None),
                    None => {
                        return Outcome::NotConfigured(format!(
                            "webhook: rule {} of pipeline '{}' had an inline url ({u}), which is never \
                             stored, and contimg.toml no longer has it; put it back, or give the rule url_env",
                            rule_index + 1,
                            ev.pipeline
                        ));
                    }
                }
            } else if let Some(v) = &rule.url_env {
                (std::env::var(v).ok(), Some(v.clone()))
            } else if !d.config.webhook_url.trim().is_empty() {
                (Some(d.config.webhook_url.clone()), None)
            } else {
                let v = d.config.webhook_url_env.clone();
                (
                    (!v.is_empty()).then(|| std::env::var(&v).ok()).flatten(),
                    Some(v),
                )
            };
            let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
                return Outcome::NotConfigured(format!(
                    "webhook: no URL; give the rule url = \"…\", or set [notify] webhook_url in contimg.toml{}",
                    var.filter(|v| !v.is_empty())
                        .map(|v| format!(
                            ", or the environment variable {v} of the delivering process"
                        ))
                        .unwrap_or_default()
                ));
            };
            let key = idempotency_key(ev, id);
            let body = json!({
                "text": ev.text(),
                "contimg": ev,
                "notification_id": id,
                "idempotency_key": key,
            });
            match post_json(&url, &body, &key, timeout) {
                Ok(()) => Outcome::Sent,
                Err(e) => Outcome::Failed(format!("webhook: {e}")),
            }
        }
        Channel::Command => {
            let argv = if rule.argv.is_empty() {
                &d.config.command
            } else {
                &rule.argv
            };
            if argv.is_empty() {
                return Outcome::NotConfigured(
                    "command: no argv; give the rule argv = [\"program\", …] or set [notify] command in contimg.toml"
                        .into(),
                );
            }
            match run_argv(argv, &command_env(ev, id), None, timeout) {
                Ok(_) => Outcome::Sent,
                Err(e) => Outcome::Failed(format!("command: {e}")),
            }
        }
    }
}

/// The environment a `command` channel's program gets.
pub fn command_env(ev: &Event, id: i64) -> Vec<(String, String)> {
    vec![
        ("CONTIMG_NOTIFICATION_ID".into(), id.to_string()),
        ("CONTIMG_IDEMPOTENCY_KEY".into(), idempotency_key(ev, id)),
        ("CONTIMG_EXECUTION_ID".into(), ev.execution_id.to_string()),
        ("CONTIMG_PIPELINE".into(), ev.pipeline.clone()),
        ("CONTIMG_SLOT".into(), ev.slot.clone().unwrap_or_default()),
        ("CONTIMG_STATUS".into(), ev.status.clone()),
        ("CONTIMG_FAILED_JOBS".into(), ev.failed_jobs.join(",")),
        ("CONTIMG_SUMMARY".into(), ev.summary()),
        ("CONTIMG_MESSAGE".into(), ev.text()),
        (
            "CONTIMG_EVENT_JSON".into(),
            serde_json::to_string(ev).unwrap_or_default(),
        ),
    ]
}

fn from_address(c: &NotifyConfig) -> String {
    if c.from.trim().is_empty() {
        format!("contimg@{}", super::procs::hostname())
    } else {
        c.from.clone()
    }
}

/// A header value with line breaks removed (no header injection through error text).
fn header_value(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// The RFC 5322 message for `ev` (LF line ends, as sendmail expects on its input).
pub fn email_message(from: &str, to: &[String], ev: &Event, id: i64) -> String {
    let now = crate::time::now();
    let mut m = String::new();
    m.push_str(&format!("From: {}\n", header_value(from)));
    m.push_str(&format!(
        "To: {}\n",
        header_value(&to.iter().map(String::as_str).collect::<Vec<_>>().join(", "))
    ));
    m.push_str(&format!(
        "Subject: [contimg] {} {} for slot {}\n",
        header_value(&ev.pipeline),
        header_value(&ev.status),
        header_value(ev.slot.as_deref().unwrap_or("-"))
    ));
    m.push_str(&format!("Date: {}\n", now.to_rfc2822()));
    m.push_str(&format!(
        "Message-ID: <contimg.{}.{}.{}@{}>\n",
        ev.execution_id,
        id,
        ev.round,
        header_value(&super::procs::hostname())
    ));
    // The same Message-ID for a re-send after a crash: mail systems drop the repeat.
    m.push_str("MIME-Version: 1.0\n");
    m.push_str("Content-Type: text/plain; charset=utf-8\n");
    m.push_str("Content-Transfer-Encoding: 8bit\n");
    m.push_str(&format!("X-Contimg-Execution: {}\n", ev.execution_id));

    m.push('\n');
    // A line of a lone "." ends the message for some sendmails: indent it.
    for line in ev.text().lines() {
        if line == "." {
            m.push_str("..\n");
        } else {
            m.push_str(line);
            m.push('\n');
        }
    }
    m
}

/// Why a channel could not deliver (recorded in the outbox row, never an error of a command).
#[derive(Debug, thiserror::Error)]
enum ChannelError {
    #[error("cannot start {program}: {source}")]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("waiting for {program}: {source}")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} did not finish within {secs:.0} s and was killed")]
    Timeout { program: String, secs: f64 },
    #[error("{program} exited with {status}: {stderr}")]
    Exit {
        program: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    /// The URL is shown redacted: a hook's path or query is its secret.
    #[error("POST {url}: {reason}")]
    Http { url: String, reason: String },
}

/// Runs argv (no shell) with extra environment and optional stdin, killing it after `timeout`.
/// The worker's database variables are not passed on: a notification program needs none of them.
fn run_argv(
    argv: &[String],
    env: &[(String, String)],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<(), ChannelError> {
    let mut cmd = Command::new(&argv[0]);
    for v in super::jobs::DATABASE_SECRETS {
        cmd.env_remove(v);
    }
    cmd.args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let program = argv[0].clone();
    let mut child = cmd.spawn().map_err(|source| ChannelError::Start {
        program: program.clone(),
        source,
    })?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A program that exits without reading is judged by its exit status below.
        let _ = pipe.write_all(data);
    }
    let mut err_pipe = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = std::io::Read::read_to_string(p, &mut s);
        }
        s
    });
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if t0.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ChannelError::Timeout {
                    program,
                    secs: timeout.as_secs_f64(),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(source) => return Err(ChannelError::Wait { program, source }),
        }
    };
    let stderr = reader.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(ChannelError::Exit {
            program,
            status,
            stderr: stderr.trim().chars().take(300).collect(),
        })
    }
}

/// POSTs `body` as JSON; a non-2xx status is an error.
fn post_json(url: &str, body: &Value, key: &str, timeout: Duration) -> Result<(), ChannelError> {
    let shown = redact_url(url);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .send(body.to_string())
        .map_err(|e| ChannelError::Http {
            url: shown.clone(),
            reason: e.to_string().replace(url, &shown),
        })?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(ChannelError::Http {
            url: shown,
            reason: format!("HTTP {status}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            execution_id: 7,
            pipeline: "nightly_mosaic".into(),
            slot: Some("2026-11-20T03:00:00Z".into()),
            status: "failed".into(),
            failed_jobs: vec!["build".into()],
            errors: [("build".to_string(), "exit code 1:\nSubject: x".to_string())]
                .into_iter()
                .collect(),
            logs: Default::default(),
            round: 1,
            failed_at: "2026-11-20T03:10:00Z".into(),
        }
    }

    #[test]
    fn email_is_rfc5322_and_error_text_cannot_inject_headers() {
        let m = email_message("a@b", &["x@y".into(), "z@w".into()], &event(), 3);
        let (head, body) = m.split_once("\n\n").unwrap();
        let names: Vec<&str> = head.lines().map(|l| l.split_once(':').unwrap().0).collect();
        assert_eq!(
            names,
            [
                "From",
                "To",
                "Subject",
                "Date",
                "Message-ID",
                "MIME-Version",
                "Content-Type",
                "Content-Transfer-Encoding",
                "X-Contimg-Execution"
            ]
        );
        assert!(head.contains("To: x@y, z@w"));
        assert!(
            chrono::DateTime::parse_from_rfc2822(
                head.lines().find_map(|l| l.strip_prefix("Date: ")).unwrap()
            )
            .is_ok()
        );
        assert!(body.contains("Subject: x"), "error text stays in the body");
        assert!(body.contains("contimg retry 7"));
    }

    #[test]
    fn command_env_has_the_facts() {
        let env: std::collections::BTreeMap<_, _> = command_env(&event(), 3).into_iter().collect();
        assert_eq!(env["CONTIMG_EXECUTION_ID"], "7");
        assert_eq!(env["CONTIMG_FAILED_JOBS"], "build");
        assert_eq!(env["CONTIMG_SLOT"], "2026-11-20T03:00:00Z");
        assert_eq!(env["CONTIMG_STATUS"], "failed");
    }
}
