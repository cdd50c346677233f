//! [`Reconnecting`]: a job source or execution store on PostgreSQL that rides out a lost connection
//! (a server restart, a network outage). The one place where a worker, `run` and its wait for its
//! execution meet a dropped connection: a call that fails with a connection-class error
//! ([`PipelineError::is_connection_lost`]; never a statement the server refused) drops the
//! connection, reopens it with back-off (0.5 s doubling to 10 s, for as long as it takes) and tries
//! the call again. An outage is logged once per process when it begins (a warning, however many
//! worker threads notice it) and once when the server is back, never per attempt.
//!
//! Invariants: a job's verdict is recorded only under a claim known to hold — after a reconnect the
//! claim is extended first ([`JobSource::heartbeat`]); a claim whose lease ran out while the server
//! was away (an outage longer than the lease: any claim may hand it on) or that ABSURD refuses to
//! extend (reaped, cancelled) is [`Held::Lost`], so the worker discards the result and kills a child
//! still running. A heartbeat never waits for the server: while it is unreachable the heartbeat says
//! [`Held::Yes`] and the child goes on; the claim is checked once the server is back.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::PipelineError;
use super::def::NamedPipeline;
use super::exec::{Admitted, ExecStatus, ExecutionManifest, ExecutionSummary, Slot};
use super::executions::Executions;
use super::notify::{Delivery, DeliveryStats};
use super::runner::Holder;
use super::source::{Held, Job, JobSource, Upstream, Verdict};
use crate::pg::{FIRST_RETRY_PAUSE, MAX_RETRY_PAUSE};

/// Whether this process has warned of an outage and not yet said the server is back: the first
/// holder to notice an outage warns, the first to reconnect after it says so. (Not a count of the
/// holders in the outage: a holder asleep in its back-off, or dropped, must not hold back the news.)
static OUTAGE_WARNED: AtomicBool = AtomicBool::new(false);

type Opener<T> = Box<dyn Fn() -> Result<Box<T>, PipelineError> + Send + Sync>;

/// A connection-holding `T` (a [`JobSource`] or [`Executions`]) reopened by `open` whenever a call
/// fails because the connection is gone.
pub struct Reconnecting<T: ?Sized> {
    open: Opener<T>,
    inner: Option<Box<T>>,
    /// The masked URL, for the messages.
    shown: String,
    /// When the current outage began (`None` while connected).
    outage: Option<Instant>,
    /// What was lost, for the outage's warning.
    why: String,
    /// Whether this holder met this outage's first failed reopen (and so may announce its end).
    warned: bool,
    /// Whether the claim of the job in hand is known to hold on the current connection (set by a
    /// claim or a heartbeat on it, cleared when the connection is lost).
    verified: bool,
    /// The claim length last asked for (a claim's lease, a heartbeat's extension).
    extend: Duration,
    /// When the claim in hand was last made or extended (the moment the request was sent).
    confirmed: Instant,
    /// [`Executions::database`], kept for when the connection is down.
    label: String,
}

impl<T: ?Sized> Reconnecting<T> {
    /// Opens the first connection; an error here (the server down at start) is returned as is.
    pub fn new(shown: &str, open: Opener<T>) -> Result<Reconnecting<T>, PipelineError> {
        let inner = open()?;
        Ok(Reconnecting::starting(shown, open, Some(inner)))
    }

    /// Like [`Reconnecting::new`], but a server that cannot be reached at start is waited for
    /// like any outage, at the first call (a worker started while PostgreSQL restarts).
    pub fn patient(shown: &str, open: Opener<T>) -> Result<Reconnecting<T>, PipelineError> {
        match open() {
            Ok(inner) => Ok(Reconnecting::starting(shown, open, Some(inner))),
            Err(e) if e.is_connection_lost() => {
                let mut r = Reconnecting::starting(shown, open, None);
                r.lost(&e);
                Ok(r)
            }
            Err(e) => Err(e),
        }
    }

    fn starting(shown: &str, open: Opener<T>, inner: Option<Box<T>>) -> Reconnecting<T> {
        Reconnecting {
            open,
            inner,
            shown: shown.to_string(),
            outage: None,
            why: String::new(),
            warned: false,
            verified: false,
            extend: Duration::from_secs(30),
            confirmed: Instant::now(),
            label: String::new(),
        }
    }

    /// Drops the connection after a connection-class error.
    fn lost(&mut self, e: &PipelineError) {
        self.inner = None;
        self.verified = false;
        if self.outage.is_none() {
            self.outage = Some(Instant::now());
            self.why = e.to_string();
        }
    }

    /// One attempt to reopen; `Ok(false)` while the server cannot be reached. The first failed
    /// attempt of an outage warns (unless another holder of this process already did); a
    /// connection back after a warning says so once, one back at once says what was lost.
    fn try_reopen(&mut self) -> Result<bool, PipelineError> {
        match (self.open)() {
            Ok(t) => {
                self.inner = Some(t);
                self.verified = false;
                if let Some(since) = self.outage.take() {
                    let took = since.elapsed().as_secs_f64();
                    if !std::mem::take(&mut self.warned) {
                        log::info!("{}; reconnected at once", self.why);
                    } else if OUTAGE_WARNED.swap(false, Ordering::SeqCst) {
                        log::info!(
                            "reconnected to PostgreSQL at {} after {took:.1} s",
                            self.shown
                        );
                    }
                }
                Ok(true)
            }
            Err(e) if e.is_connection_lost() => {
                if self.outage.is_none() {
                    self.lost(&e);
                }
                if !self.warned {
                    self.warned = true;
                    if OUTAGE_WARNED
                        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        log::warn!(
                            "{}; reconnecting (trying every {:.1}–{:.0} s until the server is back)",
                            self.why,
                            FIRST_RETRY_PAUSE.as_secs_f64(),
                            MAX_RETRY_PAUSE.as_secs_f64()
                        );
                    }
                }
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Reopens with back-off until the server answers (or refuses with something other than a
    /// connection error), or a stop signal arrives ([`PipelineError::Unreachable`]: nothing can be
    /// handed back while the server is away; a held claim is taken over when its lease expires).
    fn ensure_open(&mut self) -> Result<&mut T, PipelineError> {
        let mut pause = FIRST_RETRY_PAUSE;
        while self.inner.is_none() {
            if !self.try_reopen()? {
                super::shutdown::sleep(pause);
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
                if super::shutdown::requested() {
                    return Err(PipelineError::Unreachable(format!(
                        "{} at {}",
                        self.why, self.shown
                    )));
                }
            }
        }
        Ok(self.inner.as_mut().expect("opened").as_mut())
    }

    /// One try of `f` on an open connection; `Ok(None)` when the connection was lost meanwhile.
    fn once<R>(
        &mut self,
        mut f: impl FnMut(&mut T) -> Result<R, PipelineError>,
    ) -> Result<Option<R>, PipelineError> {
        let inner = self.ensure_open()?;
        match f(inner) {
            Err(e) if e.is_connection_lost() => {
                self.lost(&e);
                Ok(None)
            }
            r => r.map(Some),
        }
    }

    /// `f`, tried again over a new connection whenever the connection is lost.
    fn call<R>(
        &mut self,
        mut f: impl FnMut(&mut T) -> Result<R, PipelineError>,
    ) -> Result<R, PipelineError> {
        let mut pause = FIRST_RETRY_PAUSE;
        let mut first = true;
        loop {
            if let Some(r) = self.once(&mut f)? {
                return Ok(r);
            }
            // Reopening works at once while the server is up (only our connection died); a
            // connection lost again right away waits before the next try.
            if !first {
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
            }
            first = false;
        }
    }
}

impl Reconnecting<dyn JobSource> {
    /// Extends the claim of `job` on the open connection and notes it confirmed; `None` when the
    /// connection was lost meanwhile. A claim not confirmed since before its lease ran out is gone
    /// (ABSURD hands an expired claim on at the next claim anyone makes), so it is not extended.
    fn confirm(&mut self, job: &Job) -> Result<Option<Held>, PipelineError> {
        if !self.verified && self.confirmed.elapsed() >= self.extend {
            return Ok(Some(Held::Lost(format!(
                "its claim expired while PostgreSQL was unreachable (last extended {:.1} s ago, lease {:.1} s)",
                self.confirmed.elapsed().as_secs_f64(),
                self.extend.as_secs_f64()
            ))));
        }
        let extend = self.extend;
        let sent = Instant::now();
        let held = self.once(|s| s.heartbeat(job, extend))?;
        if held == Some(Held::Yes) {
            self.verified = true;
            self.confirmed = sent;
        }
        Ok(held)
    }
}

impl JobSource for Reconnecting<dyn JobSource> {
    fn now(&mut self) -> Result<DateTime<Utc>, PipelineError> {
        self.call(JobSource::now)
    }

    fn reap_abandoned(&mut self) -> Result<Vec<(String, String, Option<String>)>, PipelineError> {
        self.call(JobSource::reap_abandoned)
    }

    fn claim(
        &mut self,
        worker: &str,
        lease: Duration,
        only: Option<i64>,
    ) -> Result<Option<Job>, PipelineError> {
        let mut sent = Instant::now();
        let job = self.call(|s| {
            sent = Instant::now();
            s.claim(worker, lease, only)
        })?;
        self.extend = lease;
        self.verified = true;
        self.confirmed = sent;
        Ok(job)
    }

    fn upstream(&mut self, eid: i64, job: &str) -> Result<Upstream, PipelineError> {
        self.call(|s| s.upstream(eid, job))
    }

    fn set_log_path(&mut self, job: &Job, path: &str) -> Result<Held, PipelineError> {
        self.call(|s| s.set_log_path(job, path))
    }

    fn heartbeat(&mut self, job: &Job, extend: Duration) -> Result<Held, PipelineError> {
        self.extend = extend;
        // Never waits for the server: the child goes on while it is away.
        if self.inner.is_none() && !self.try_reopen()? {
            return Ok(Held::Yes);
        }
        match self.confirm(job)? {
            Some(held) => Ok(held),
            // Only this connection died (cut, or the server restarted in between): one more try
            // on a new one.
            None if self.try_reopen()? => Ok(self.confirm(job)?.unwrap_or(Held::Yes)),
            None => Ok(Held::Yes),
        }
    }

    fn report(&mut self, job: &Job, v: &Verdict) -> Result<Held, PipelineError> {
        loop {
            if !self.verified && !matches!(v, Verdict::Abandon) {
                // The connection was lost since the claim was last confirmed: extend it first, and
                // record nothing under a claim that is gone.
                self.ensure_open()?;
                match self.confirm(job)? {
                    Some(Held::Lost(why)) => {
                        log::warn!("job '{}': {why}; its result is discarded", job.name());
                        return Ok(Held::Lost(why));
                    }
                    Some(Held::Yes) => {}
                    None => continue,
                }
            }
            if let Some(held) = self.once(|s| s.report(job, v))? {
                return Ok(held);
            }
        }
    }

    fn sync(&mut self, eid: i64) -> Result<ExecStatus, PipelineError> {
        self.call(|s| s.sync(eid))
    }

    fn sync_active(&mut self) -> Result<bool, PipelineError> {
        self.call(JobSource::sync_active)
    }

    fn next_wakeup(&mut self) -> Result<Option<DateTime<Utc>>, PipelineError> {
        self.call(JobSource::next_wakeup)
    }

    fn deliver_due(&mut self, notify: &Delivery) {
        // Errors are warnings inside; a dead connection is reopened by the next call.
        if let Some(s) = self.inner.as_mut() {
            s.deliver_due(notify);
        }
    }
}

impl Reconnecting<dyn Executions> {
    /// An execution store that reconnects; its label is read once, from the first connection.
    pub fn executions(
        shown: &str,
        open: Opener<dyn Executions>,
    ) -> Result<Reconnecting<dyn Executions>, PipelineError> {
        let mut r = Reconnecting::new(shown, open)?;
        r.label = r.inner.as_ref().map(|s| s.database()).unwrap_or_default();
        Ok(r)
    }
}

impl Executions for Reconnecting<dyn Executions> {
    fn database(&self) -> String {
        self.label.clone()
    }

    fn create(
        &mut self,
        p: &NamedPipeline,
        slot: &Slot,
        params: &BTreeMap<String, Option<String>>,
        products: &Path,
        runner_lease: Option<Duration>,
        key: Option<&super::RequestKey>,
    ) -> Result<Admitted, PipelineError> {
        // Creating again finds the execution a lost connection's create may have made.
        self.call(|s| s.create(p, slot, params, products, runner_lease, key))
    }

    fn sync(&mut self, eid: i64) -> Result<ExecStatus, PipelineError> {
        self.call(|s| s.sync(eid))
    }

    fn manifest(&mut self, eid: i64) -> Result<ExecutionManifest, PipelineError> {
        self.call(|s| s.manifest(eid))
    }

    fn list(&mut self, limit: usize) -> Result<Vec<ExecutionSummary>, PipelineError> {
        self.call(|s| s.list(limit))
    }

    fn last_success(&mut self, pipeline: &str) -> Result<Option<DateTime<Utc>>, PipelineError> {
        self.call(|s| s.last_success(pipeline))
    }

    fn standalone(
        &mut self,
        accept: &[String],
        limit: usize,
    ) -> Result<Vec<super::executions::StandaloneTask>, PipelineError> {
        self.call(|s| s.standalone(accept, limit))
    }

    fn cancel(&mut self, eid: i64) -> Result<usize, PipelineError> {
        self.call(|s| s.cancel(eid))
    }

    fn retry(&mut self, eid: i64) -> Result<usize, PipelineError> {
        self.call(|s| s.retry(eid))
    }

    fn deliver(&mut self, d: &Delivery, all: bool) -> Result<DeliveryStats, PipelineError> {
        self.call(|s| s.deliver(d, all))
    }

    fn as_runner(
        &mut self,
        eid: i64,
        lease: Duration,
        work: &mut dyn FnMut() -> Result<(), PipelineError>,
    ) -> Result<Option<Holder>, PipelineError> {
        // The work (worker threads with their own connections) runs once, never again.
        self.ensure_open()?.as_runner(eid, lease, work)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A real refused connection (nothing listens on port 1), as a connection-class error.
    fn refused() -> PipelineError {
        let driver = postgres::Client::connect(
            "host=127.0.0.1 port=1 user=x connect_timeout=2",
            postgres::NoTls,
        )
        .err()
        .expect("nothing listens on port 1");
        let e = PipelineError::Queue(crate::queue::QueueError::Pg(crate::pg::PgError::Postgres {
            url: "postgresql://x@127.0.0.1:1/x".into(),
            action: "connect".into(),
            cause: driver.to_string(),
            hint: "",
            driver,
        }));
        assert!(e.is_connection_lost(), "{e}");
        e
    }

    /// The news that the server is back is given by the first holder to reconnect, not held back
    /// by a holder still asleep in its back-off (or dropped) — the worker whose idle thread had not
    /// retried yet never said the server was back.
    #[test]
    fn the_first_holder_back_announces_the_end_of_the_outage() {
        let up = Arc::new(AtomicBool::new(false));
        let holder = |up: &Arc<AtomicBool>| {
            let up = Arc::clone(up);
            let open: Opener<u32> = Box::new(move || {
                if up.load(Ordering::SeqCst) {
                    Ok(Box::new(1))
                } else {
                    Err(refused())
                }
            });
            Reconnecting::starting("postgresql://x@127.0.0.1:1/x", open, None)
        };
        let (mut a, mut b) = (holder(&up), holder(&up));
        let lost = refused();
        a.lost(&lost);
        b.lost(&lost);
        assert!(!a.try_reopen().unwrap());
        assert!(!b.try_reopen().unwrap());
        assert!(
            OUTAGE_WARNED.load(Ordering::SeqCst),
            "the outage was warned of"
        );
        up.store(true, Ordering::SeqCst);
        assert!(a.try_reopen().unwrap());
        assert!(
            !OUTAGE_WARNED.load(Ordering::SeqCst),
            "the first holder back said so, though the other has not retried yet"
        );
        drop(b);
        // A new outage is warned of again.
        up.store(false, Ordering::SeqCst);
        a.lost(&lost);
        assert!(!a.try_reopen().unwrap());
        assert!(OUTAGE_WARNED.load(Ordering::SeqCst));
        up.store(true, Ordering::SeqCst);
        assert!(a.try_reopen().unwrap());
        assert!(!OUTAGE_WARNED.load(Ordering::SeqCst));
    }
}
