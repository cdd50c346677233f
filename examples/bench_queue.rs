//! Queue throughput benchmark on both backends (each through its own API, [`Q`]):
//! spawn N no-op tasks, then claim + complete them with W concurrent workers (threads, each with its
//! own connection, as separate processes would have); then the claim latency as finished tasks
//! accumulate. SQLite works a file database; PostgreSQL works a fresh ABSURD queue on the server named
//! by `--pg-url` (default: CONTIMG_TEST_PG, as `scripts/pg-cluster` prints), dropped afterwards;
//! `postgres-indexed` does the same after adding the partial indexes of `scripts/absurd-claim-indexes`.
//! Run through `scripts/bench-queue`.

// A test or example reports on stdout, which its harness captures; only the binary is held to
// "stdout carries manifests only".
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use contimg::queue::{AbsurdQueue, Lease, NewTask, Queue, SystemClock, WorkLease};
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Backend {
    Sqlite,
    Postgres,
    /// ABSURD with the two partial indexes of `scripts/absurd-claim-indexes`.
    PostgresIndexed,
}

#[derive(Parser)]
struct Args {
    /// Backends to measure, comma separated; all are reported side by side.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sqlite,postgres,postgres-indexed"
    )]
    backend: Vec<Backend>,
    /// Tasks per throughput run.
    #[arg(long, default_value_t = 10_000)]
    tasks: usize,
    /// Worker counts to try, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    workers: Vec<usize>,
    /// Finished-task counts at which to measure claim latency, comma separated (0: skip).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    latency_at: Vec<usize>,
    /// Claims timed at each latency point.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Directory for the SQLite files (default: a fresh temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// PostgreSQL URL with ABSURD's schema (default: $CONTIMG_TEST_PG).
    #[arg(long, env = "CONTIMG_TEST_PG", hide_env_values = true)]
    pg_url: Option<String>,
}

/// One connection to the queue measured.
enum Q {
    Sqlite(Queue),
    Absurd(Box<AbsurdQueue>),
}

/// A claimed task, to complete.
enum Claimed {
    Sqlite(Lease),
    Absurd(WorkLease),
}

impl Q {
    fn spawn(&mut self, t: &NewTask) -> anyhow::Result<()> {
        match self {
            Q::Sqlite(q) => q.spawn(t).map(|_| ())?,
            Q::Absurd(q) => q.spawn(t).map(|_| ())?,
        }
        Ok(())
    }

    fn claim(&mut self, worker: &str, lease: Duration) -> anyhow::Result<Option<Claimed>> {
        Ok(match self {
            Q::Sqlite(q) => q.claim(worker, lease)?.map(|c| Claimed::Sqlite(c.lease)),
            Q::Absurd(q) => q.claim(worker, lease)?.map(|c| Claimed::Absurd(c.lease)),
        })
    }

    fn complete(&mut self, c: &Claimed) -> anyhow::Result<()> {
        match (self, c) {
            (Q::Sqlite(q), Claimed::Sqlite(l)) => q.complete(l, &json!({}))?,
            (Q::Absurd(q), Claimed::Absurd(l)) => q.complete(l, &json!({}))?,
            _ => anyhow::bail!("a claim of the other backend"),
        }
        Ok(())
    }
}

/// Where one measurement runs: a SQLite file or an ABSURD queue.
struct Target {
    backend: Backend,
    sqlite: PathBuf,
    pg_url: String,
    queue: String,
}

impl Target {
    fn new(
        args: &Args,
        backend: Backend,
        dir: &std::path::Path,
        tag: &str,
    ) -> anyhow::Result<Target> {
        let t = Target {
            backend,
            sqlite: dir.join(format!("bench-{tag}.sqlite3")),
            pg_url: args.pg_url.clone().unwrap_or_default(),
            queue: format!("bench_{tag}_{}", std::process::id()),
        };
        t.reset()?;
        if backend == Backend::PostgresIndexed {
            t.open()?; // creates the queue
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/absurd-claim-indexes");
            let ok = std::process::Command::new(script)
                .args([&t.pg_url, &t.queue])
                .status()
                .context("run scripts/absurd-claim-indexes")?
                .success();
            anyhow::ensure!(ok, "scripts/absurd-claim-indexes failed");
        }
        Ok(t)
    }

    fn open(&self) -> anyhow::Result<Q> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let conn = contimg::store::Store::open(&self.sqlite)?.conn;
                Q::Sqlite(Queue::new(conn, Arc::new(SystemClock)))
            }
            Backend::Postgres | Backend::PostgresIndexed => {
                Q::Absurd(Box::new(AbsurdQueue::connect(&self.pg_url, &self.queue)?))
            }
        })
    }

    /// Removes what a run left: the SQLite files, or the ABSURD queue (with ABSURD's drop_queue).
    fn reset(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.sqlite.display()));
                }
            }
            Backend::Postgres | Backend::PostgresIndexed => {
                let mut c = postgres::Client::connect(&self.pg_url, postgres::NoTls)
                    .context("connect to drop the benchmark queue")?;
                c.execute("SELECT absurd.drop_queue($1)", &[&self.queue])?;
            }
        }
        Ok(())
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn spawn_n(q: &mut Q, n: usize) -> anyhow::Result<Duration> {
    let t = Instant::now();
    for i in 0..n {
        q.spawn(&NewTask::new("noop", json!({ "i": i })).max_attempts(3))?;
    }
    Ok(t.elapsed())
}

/// Claims and completes until the queue is empty with `w` workers; returns the time and per-worker counts.
fn drain(target: &Target, w: usize) -> anyhow::Result<(Duration, Vec<usize>)> {
    let barrier = Arc::new(Barrier::new(w + 1));
    let queues = (0..w)
        .map(|_| target.open())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let handles: Vec<_> = queues
        .into_iter()
        .enumerate()
        .map(|(i, mut q)| {
            let barrier = barrier.clone();
            std::thread::spawn(move || -> anyhow::Result<usize> {
                let worker = format!("bench-{i}");
                barrier.wait();
                let mut done = 0;
                while let Some(c) = q.claim(&worker, Duration::from_secs(300))? {
                    q.complete(&c)?;
                    done += 1;
                }
                Ok(done)
            })
        })
        .collect();
    barrier.wait();
    let t = Instant::now();
    let mut per_worker = Vec::new();
    for h in handles {
        per_worker.push(h.join().map_err(|_| anyhow::anyhow!("worker panicked"))??);
    }
    Ok((t.elapsed(), per_worker))
}

/// Median and 95th percentile of one claim (+ its complete) once `finished` tasks are done.
fn latency(
    target: &Target,
    finished: usize,
    samples: usize,
    done_so_far: &mut usize,
) -> anyhow::Result<(f64, f64)> {
    let mut q = target.open()?;
    if finished > *done_so_far {
        spawn_n(&mut q, finished - *done_so_far)?;
        drain(target, 4)?;
        *done_so_far = finished;
    }
    spawn_n(&mut q, samples)?;
    let mut ms = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let c = q
            .claim("latency", Duration::from_secs(300))?
            .context("a sample task")?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        q.complete(&c)?;
    }
    *done_so_far += samples;
    ms.sort_by(f64::total_cmp);
    Ok((
        ms[ms.len() / 2],
        ms[(ms.len() * 95 / 100).min(ms.len() - 1)],
    ))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.backend.iter().any(|b| *b != Backend::Sqlite) && args.pg_url.is_none() {
        anyhow::bail!(
            "--backend postgres needs a server: pass --pg-url or set CONTIMG_TEST_PG \
             (eval \"$(scripts/pg-cluster start)\" starts a throwaway one)"
        );
    }
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let n = args.tasks;
    let mut table: Vec<(String, Vec<String>)> = Vec::new();
    for &backend in &args.backend {
        let name = backend
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string());
        let mut row = Vec::new();
        for &w in &args.workers {
            let target = Target::new(&args, backend, &dir, &format!("{w}w"))?;
            let d = spawn_n(&mut target.open()?, n)?;
            eprintln!(
                "{name}: spawn {n} tasks, one at a time: {:.0} tasks/s",
                rate(n, d)
            );
            let (d, per_worker) = drain(&target, w)?;
            anyhow::ensure!(
                per_worker.iter().sum::<usize>() == n,
                "{name}: {per_worker:?} done of {n}"
            );
            eprintln!(
                "{name}: claim+complete, {w} worker(s): {n} tasks in {:.3} s = {:.0} tasks/s (per worker {per_worker:?})",
                d.as_secs_f64(),
                rate(n, d)
            );
            row.push(format!("{:.0}/s", rate(n, d)));
            target.reset()?;
        }
        let target = Target::new(&args, backend, &dir, "latency")?;
        let mut done = 0;
        for &at in args.latency_at.iter().filter(|&&a| a > 0) {
            let (p50, p95) = latency(&target, at, args.samples, &mut done)?;
            eprintln!(
                "{name}: claim latency with {at} finished tasks: median {p50:.2} ms, p95 {p95:.2} ms"
            );
            row.push(format!("{p50:.2}/{p95:.2} ms"));
        }
        target.reset()?;
        table.push((name, row));
    }
    let mut header = vec!["backend".to_string()];
    header.extend(args.workers.iter().map(|w| format!("{w} worker(s)")));
    header.extend(
        args.latency_at
            .iter()
            .filter(|&&a| a > 0)
            .map(|a| format!("claim p50/p95 @{a} done")),
    );
    println!("{}", header.join(" | "));
    for (name, row) in table {
        println!("{name} | {}", row.join(" | "));
    }
    Ok(())
}
