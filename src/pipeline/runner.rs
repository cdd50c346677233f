//! Execution runners: which `contimg run` process is working an execution, so that many simultaneous
//! firings for one slot give one worker (the others report the execution and exit 0), and so that
//! `max_active` can count the executions of a pipeline that are really being run.
//!
//! Invariants: at most one live runner per execution (`execution_runners` primary key, changed only in
//! `BEGIN IMMEDIATE` transactions); a runner is live while its lease (`expires_at`, renewed by a
//! heartbeat) holds and, when it is on this host, while its process exists — so a `run` killed with
//! kill -9 is taken over at once by the next `run` on the same machine.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::time::{chrono_duration, iso, now};

/// Who holds an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: i64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} on {}", self.pid, self.host)
    }
}

fn me() -> Holder {
    let id = super::procs::process_id();
    let host = id
        .rsplit_once(':')
        .map(|(h, _)| h.to_string())
        .unwrap_or_default();
    Holder {
        host,
        pid: i64::from(std::process::id()),
    }
}

fn live(h: &Holder, expires_at: &str, now: &str) -> bool {
    if expires_at <= now {
        return false;
    }
    let m = me();
    h.host != m.host || super::procs::pid_alive(h.pid)
}

fn lease_end(lease: Duration) -> String {
    iso(now() + chrono_duration(lease))
}

/// Takes execution `eid` for this process, or returns the live holder.
pub fn acquire(conn: &Connection, eid: i64, lease: Duration) -> rusqlite::Result<Option<Holder>> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let now = iso(now());
    let m = me();
    let cur: Option<(String, i64, String)> = tx
        .query_row(
            "SELECT host, pid, expires_at FROM execution_runners WHERE execution_id = ?1",
            [eid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((host, pid, exp)) = cur {
        let h = Holder { host, pid };
        if h != m && live(&h, &exp, &now) {
            return Ok(Some(h));
        }
    }
    take(&tx, eid, lease)?;
    tx.commit()?;
    Ok(None)
}

/// Makes this process the runner of `eid`, inside the caller's transaction (no check of a live
/// holder: [`acquire`] makes it, or the execution was created in this transaction).
pub fn take(conn: &Connection, eid: i64, lease: Duration) -> rusqlite::Result<()> {
    let m = me();
    conn.execute(
        "INSERT INTO execution_runners (execution_id, host, pid, started_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (execution_id) DO UPDATE SET host = ?2, pid = ?3, started_at = ?4, expires_at = ?5",
        params![eid, m.host, m.pid, iso(now()), lease_end(lease)],
    )?;
    Ok(())
}

/// Extends this process's hold on `eid`.
pub fn renew(conn: &Connection, eid: i64, lease: Duration) -> rusqlite::Result<()> {
    let m = me();
    conn.execute(
        "UPDATE execution_runners SET expires_at = ?4 WHERE execution_id = ?1 AND host = ?2 AND pid = ?3",
        params![eid, m.host, m.pid, lease_end(lease)],
    )?;
    Ok(())
}

/// Lets go of `eid` (if this process holds it).
pub fn release(conn: &Connection, eid: i64) -> rusqlite::Result<()> {
    let m = me();
    conn.execute(
        "DELETE FROM execution_runners WHERE execution_id = ?1 AND host = ?2 AND pid = ?3",
        params![eid, m.host, m.pid],
    )?;
    Ok(())
}

/// The running executions of `pipeline` for other slots than `slot` that a live runner is working.
pub fn active(conn: &Connection, pipeline: &str, slot: &str) -> rusqlite::Result<Vec<i64>> {
    let now = iso(now());
    let rows: Vec<(i64, String, i64, String)> = conn
        .prepare(
            "SELECT e.id, r.host, r.pid, r.expires_at FROM pipeline_executions e
               JOIN execution_runners r ON r.execution_id = e.id
             WHERE e.pipeline_name = ?1 AND e.status = 'running' AND coalesce(e.slot, '') != ?2
             ORDER BY e.id",
        )?
        .query_map(params![pipeline, slot], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows
        .into_iter()
        .filter(|(_, host, pid, exp)| {
            live(
                &Holder {
                    host: host.clone(),
                    pid: *pid,
                },
                exp,
                &now,
            )
        })
        .map(|(id, ..)| id)
        .collect())
}

/// Renews the hold on `eid` every third of `lease` on its own connection until dropped.
pub struct Heartbeat {
    stop: std::sync::mpsc::Sender<()>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    pub fn start(db: std::path::PathBuf, eid: i64, lease: Duration) -> Heartbeat {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            let Ok(store) = crate::store::Store::open(&db) else {
                return;
            };
            loop {
                match rx.recv_timeout(lease / 3) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        let _ = renew(&store.conn, eid, lease);
                    }
                    _ => return,
                }
            }
        });
        Heartbeat {
            stop: tx,
            handle: Some(handle),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
