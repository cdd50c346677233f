//! Queue throughput benchmark: spawn N no-op tasks, then claim + complete them with W concurrent workers
//! (threads, each with its own SQLite connection, as separate processes would have) on a file database.
//! Run through `scripts/bench-queue`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clap::Parser;
use contimg::queue::{NewTask, Queue, SystemClock};
use rusqlite::Connection;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Tasks per run.
    #[arg(long, default_value_t = 10_000)]
    tasks: usize,
    /// Worker counts to try, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    workers: Vec<usize>,
    /// Directory for the database files (default: a fresh temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Opens the database through the store (every migration, the store's pragmas).
fn open(path: &Path, _create: bool) -> anyhow::Result<Connection> {
    Ok(contimg::store::Store::open(path)?.conn)
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let n = args.tasks;
    let tasks: Vec<NewTask> = (0..n)
        .map(|i| NewTask::new("noop", json!({ "i": i })).max_attempts(3))
        .collect();

    // Spawning in one transaction (what `run` does for an execution's tasks).
    let path = dir.join("bench-batch.sqlite3");
    let _ = std::fs::remove_file(&path);
    let q = Queue::new(open(&path, true)?, Arc::new(SystemClock));
    let t = Instant::now();
    q.spawn_many(&tasks)?;
    let d = t.elapsed();
    println!(
        "spawn, one transaction:      {n} tasks in {:7.3} s = {:9.0} tasks/s",
        d.as_secs_f64(),
        rate(n, d)
    );

    for &w in &args.workers {
        let path = dir.join(format!("bench-{w}w.sqlite3"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let q = Queue::new(open(&path, true)?, Arc::new(SystemClock));
        let t = Instant::now();
        for task in &tasks {
            q.spawn(task)?;
        }
        let d = t.elapsed();
        println!(
            "spawn, one transaction each: {n} tasks in {:7.3} s = {:9.0} tasks/s",
            d.as_secs_f64(),
            rate(n, d)
        );

        let barrier = Arc::new(Barrier::new(w + 1));
        let handles: Vec<_> = (0..w)
            .map(|i| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || -> anyhow::Result<usize> {
                    let q = Queue::new(open(&path, false)?, Arc::new(SystemClock));
                    let worker = format!("bench-{i}");
                    barrier.wait();
                    let mut done = 0;
                    while let Some(c) = q.claim(&worker, Duration::from_secs(300))? {
                        q.complete(&c.lease, &json!({}))?;
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
        let d = t.elapsed();
        let counts = q.counts(None)?;
        let attempts: i64 =
            q.connection()
                .query_row("SELECT count(*) FROM task_attempts", [], |r| r.get(0))?;
        anyhow::ensure!(
            counts.completed as usize == n && attempts as usize == n,
            "expected {n} completed tasks with one attempt each, got {counts:?} and {attempts} attempts"
        );
        println!(
            "claim+complete, {w} worker(s):  {n} tasks in {:7.3} s = {:9.0} tasks/s  (per worker: {per_worker:?})",
            d.as_secs_f64(),
            rate(n, d)
        );
    }
    Ok(())
}
