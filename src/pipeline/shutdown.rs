//! Stopping a worker on SIGTERM or SIGINT without spending anyone's retries.
//!
//! [`install`] (called by `contimg worker` and `contimg run`, the commands that work jobs) sets a
//! handler for SIGTERM and SIGINT. The first signal only raises a flag ([`requested`]): every worker
//! thread stops claiming, kills the process group of the job it runs, and hands the job back to the
//! queue at once, the attempt recorded as interrupted and not counted against the job's retries
//! (SQLite: [`crate::queue::Queue::release`]; ABSURD: `absurd.schedule_run` of the same run, due
//! now), so another worker takes it over without waiting for the lease; then the command exits 0.
//! Handing back takes one database write per job, so there is no grace period: a second signal
//! ends the process at once (exit 128 + the signal); its jobs' children die with it
//! (`PR_SET_PDEATHSIG`) and their claims are taken over when their leases expire.
//!
//! Invariants: the handler only touches atomics and calls `_exit` (async-signal-safe); a child
//! process starts with the default dispositions (exec resets handlers).

// Unsafe: sigaction(2) and _exit(2) through libc, which std does not offer.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static LAST: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    LAST.store(sig, Ordering::SeqCst);
    if SIGNALS.fetch_add(1, Ordering::SeqCst) >= 1 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) };
    }
}

/// Handles SIGTERM and SIGINT as described in the module documentation (idempotent).
pub fn install() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with a handler of the right signature and an empty mask is
        // valid; the handler is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Whether a stop signal has arrived.
pub fn requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// The signal that asked to stop (`SIGTERM`, `SIGINT`), for messages.
pub fn signal_name() -> &'static str {
    match LAST.load(Ordering::SeqCst) {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "a stop signal",
    }
}

/// Sleeps for `d`, returning early (within 50 ms) when a stop signal arrives.
pub fn sleep(d: Duration) {
    let until = Instant::now() + d;
    while !requested() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}
