//! `-q` on PostgreSQL: a worker that meets a task on its ABSURD queue that is not contimg's warns
//! through the same log path as every message, so `-q` silences it (the real binary against the
//! server `scripts/pg-cluster start` runs, found through CONTIMG_TEST_PG; without it this fails and
//! says so).

mod common;

use contimg::queue::{AbsurdQueue, NewTask};

fn pg_url() -> String {
    std::env::var("CONTIMG_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "CONTIMG_TEST_PG is not set: this test needs a PostgreSQL server with ABSURD's schema; \
             start one with `eval \"$(scripts/pg-cluster start)\"`"
        )
    })
}

#[test]
fn quiet_silences_the_worker_s_warnings() {
    let name = format!("q_cli_quiet_{}", std::process::id());
    let mut admin = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
    let drop_all = |c: &mut postgres::Client| {
        c.execute("SELECT absurd.drop_queue($1)", &[&name]).unwrap();
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
            .unwrap();
    };
    drop_all(&mut admin);
    let ws = common::workspace();
    let worker = |quiet: bool| {
        let mut c = common::contimg();
        c.current_dir(ws.path())
            .env("CONTIMG_DB", pg_url())
            .env("CONTIMG_PG_SCHEMA", &name)
            .env("CONTIMG_ABSURD_QUEUE", &name);
        if quiet {
            c.arg("-q");
        }
        c.args(["worker", "--once"]).output().unwrap()
    };
    // Creates contimg's schema and the queue.
    let out = worker(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut q = AbsurdQueue::connect(&pg_url(), &name).unwrap();
    q.spawn(&NewTask::new("someone_elses", serde_json::json!({})))
        .unwrap();
    let out = worker(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "-q printed on stderr"
    );

    q.spawn(&NewTask::new("someone_elses", serde_json::json!({})))
        .unwrap();
    let out = worker(false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("contimg: warning: refused task ") && l.contains("not accepted")),
        "{err}"
    );
    drop(q);
    drop_all(&mut admin);
}
