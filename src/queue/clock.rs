//! Time sources for the queue.
//!
//! Every timestamp the queue stores or compares (available_at, leases, attempt start/end) comes from a
//! [`Clock`], so that runs can be made deterministic: tests and replays drive a [`ManualClock`] instead of
//! sleeping. A clock only has to be monotone enough for the caller's purpose; the queue never assumes it.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// A source of the current UTC time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        crate::time::now()
    }
}

/// A clock that only moves when told to: [`ManualClock::set`] or [`ManualClock::advance`].
///
/// It is shared by reference (`Arc<ManualClock>`) between the code under control and the code driving time.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `t` (backwards too, if asked).
    pub fn set(&self, t: DateTime<Utc>) {
        *self.lock() = t;
    }

    /// Moves the clock forward by `d` and returns the new time.
    pub fn advance(&self, d: Duration) -> DateTime<Utc> {
        let mut now = self.lock();
        *now += d;
        *now
    }

    /// Moves the clock forward by `secs` seconds (fractions allowed) and returns the new time.
    pub fn advance_secs(&self, secs: f64) -> DateTime<Utc> {
        self.advance(super::retry::seconds(secs))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A poisoned lock still holds a valid time: a panic elsewhere cannot corrupt a DateTime.
        self.now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}
