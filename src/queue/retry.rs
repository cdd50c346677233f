//! Retry strategies and ABSURD's retry-delay formula.
//!
//! A task that fails attempt `n` (1-based) while `n < max_attempts` sleeps for [`RetryStrategy::delay`]`(n)`
//! before it can be claimed again; otherwise it has failed for good. `None` still retries (immediately) while
//! attempts remain: how many attempts a task gets is `max_attempts`' job, not the strategy's.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::QueueError;

/// The longest delay the queue will schedule (ten years): anything longer is a configuration mistake.
pub const MAX_DELAY_S: f64 = 10.0 * 365.25 * 86_400.0;

/// How long a failed task waits before its next attempt.
///
/// Serialised with a `kind` tag, e.g. in TOML `retry = { kind = "exponential", base_s = 40, factor = 3,
/// cap_s = 90 }` or `retry = { kind = "fixed", delay_s = 30 }` or `retry = { kind = "none" }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RetryStrategy {
    /// Retry at once.
    #[default]
    None,
    /// Always wait `delay_s` seconds.
    Fixed { delay_s: f64 },
    /// Wait min(base_s · factor^(attempt−1), cap_s) seconds (ABSURD's formula); no cap when `cap_s` is absent.
    Exponential {
        base_s: f64,
        factor: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cap_s: Option<f64>,
    },
}

impl RetryStrategy {
    /// Delay in seconds after attempt `attempt` (1-based) failed.
    pub fn delay_secs(&self, attempt: u32) -> f64 {
        let d = match *self {
            RetryStrategy::None => 0.0,
            RetryStrategy::Fixed { delay_s } => delay_s,
            RetryStrategy::Exponential {
                base_s,
                factor,
                cap_s,
            } => {
                let exp = attempt.saturating_sub(1).min(i32::MAX as u32) as i32;
                let raw = base_s * factor.powi(exp);
                // NaN (0 · ∞) or ∞ falls back to the cap.
                let raw = if raw.is_finite() { raw } else { f64::INFINITY };
                raw.min(cap_s.unwrap_or(f64::INFINITY))
            }
        };
        d.clamp(0.0, MAX_DELAY_S)
    }

    /// Delay after attempt `attempt` (1-based) failed, as a duration (microsecond resolution).
    pub fn delay(&self, attempt: u32) -> Duration {
        seconds(self.delay_secs(attempt))
    }

    /// Checks that every number is finite and in range; the error says which field is wrong.
    pub fn validate(&self) -> Result<(), QueueError> {
        let bad = |what: &str, v: f64| {
            Err(QueueError::InvalidTask(format!(
                "retry {what} = {v} is not allowed: it must be a finite number of seconds between 0 and {MAX_DELAY_S}"
            )))
        };
        let ok = |v: f64| v.is_finite() && (0.0..=MAX_DELAY_S).contains(&v);
        match *self {
            RetryStrategy::None => Ok(()),
            RetryStrategy::Fixed { delay_s } => {
                if ok(delay_s) {
                    Ok(())
                } else {
                    bad("delay_s", delay_s)
                }
            }
            RetryStrategy::Exponential {
                base_s,
                factor,
                cap_s,
            } => {
                if !ok(base_s) {
                    return bad("base_s", base_s);
                }
                if let Some(c) = cap_s
                    && !ok(c)
                {
                    return bad("cap_s", c);
                }
                if !(factor.is_finite() && factor >= 1.0) {
                    return Err(QueueError::InvalidTask(format!(
                        "retry factor = {factor} is not allowed: an exponential back-off needs a finite factor ≥ 1"
                    )));
                }
                Ok(())
            }
        }
    }
}

/// `secs` seconds as a chrono duration, rounded to the microsecond and clamped to ±[`MAX_DELAY_S`].
pub(crate) fn seconds(secs: f64) -> Duration {
    let s = if secs.is_nan() {
        0.0
    } else {
        secs.clamp(-MAX_DELAY_S, MAX_DELAY_S)
    };
    Duration::microseconds((s * 1e6).round() as i64)
}
