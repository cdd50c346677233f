//! `contimg serve --workers 0` on PostgreSQL, with two `contimg worker` processes in other
//! directories ("machines" sharing only the server): a run POSTed over HTTP is worked by them to
//! `completed`, its products are where the execution says (the serving workspace's mosaics
//! directory, not a worker's), and the API
//! serves them. Needs the server of `scripts/pg-cluster start` (CONTIMG_TEST_PG), as the other
//! PostgreSQL tests do; without it this test fails and says how to start one.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::api::{Server, get, post};
use serde_json::json;

const TOKEN: &str = "pg-write-token-0123456789";

fn pg_url() -> String {
    std::env::var("CONTIMG_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "CONTIMG_TEST_PG is not set: this test needs a PostgreSQL server with ABSURD's schema. \
             Run it with scripts/test (it starts one), or start one with \
             `eval \"$(scripts/pg-cluster start)\"`"
        )
    })
}

/// This test's contimg schema and ABSURD queue (same name), dropped at the end.
struct Bed {
    name: String,
}

impl Bed {
    fn new() -> Bed {
        let name = format!("serve_{}", std::process::id());
        let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
        c.execute("SELECT absurd.drop_queue($1)", &[&name]).unwrap();
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
            .unwrap();
        Bed { name }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CONTIMG_DB", pg_url()),
            ("CONTIMG_PG_SCHEMA", self.name.clone()),
            ("CONTIMG_ABSURD_QUEUE", self.name.clone()),
        ]
    }

    fn cmd(&self, dir: &Path, args: &[&str]) -> std::process::Command {
        let mut c = common::contimg();
        c.current_dir(dir).args(args);
        for (k, v) in self.env() {
            c.env(k, v);
        }
        c
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
            let _ = c.execute("SELECT absurd.drop_queue($1)", &[&self.name]);
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name));
        }
    }
}

/// Worker processes, stopped with SIGTERM (and reaped) when dropped.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        for c in &mut self.0 {
            let deadline = Instant::now() + Duration::from_secs(15);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn serve_with_no_workers_of_its_own_on_postgresql_and_two_workers_elsewhere() {
    let bed = Bed::new();
    let (ws, a, b) = (
        common::workspace(),
        common::workspace(),
        common::workspace(),
    );
    let shared = tempfile::tempdir().unwrap();
    common::json_in(
        shared.path(),
        &[
            "simulate", "--out", "snaps", "--images", "3", "--size", "128", "--cell", "20",
        ],
        0,
    );
    let snaps = shared.path().join("snaps").display().to_string();
    let out = bed.cmd(ws.path(), &["ingest", &snaps]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let workers = Workers(
        [a.path(), b.path()]
            .iter()
            .map(|dir| {
                bed.cmd(dir, &["worker", "--lease", "30s"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let mut env: Vec<(&str, String)> = bed.env();
    env.push(("CONTIMG_API_TOKEN", TOKEN.to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Server::start(ws.path(), &["--workers", "0"], &env);

    let body = serde_json::to_vec(&json!({
        "pipeline": "on_demand_mosaic",
        "params": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"}
    }))
    .unwrap();
    assert_eq!(post(&s, "/api/v1/runs", None, None, &body).status, 401);
    let r = loop {
        let r = post(&s, "/api/v1/runs", Some(TOKEN), Some("pg-1"), &body);
        if r.status != 503 {
            break r;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let eid = r.json()["execution_id"].as_i64().unwrap();

    let deadline = Instant::now() + Duration::from_secs(240);
    let m = loop {
        let m = get(&s, &format!("/api/v1/executions/{eid}"), None).json();
        if m["status"] != "running" {
            break m;
        }
        assert!(Instant::now() < deadline, "still running: {m}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(m["status"], "completed", "{m}");
    assert!(m["qa_verdict"].is_string(), "{m}");
    // Built by one of the workers, in its own directory, as the execution says.
    let build = m["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == "build")
        .unwrap();
    let path = build["outputs"]["path"].as_str().unwrap().to_string();
    assert!(
        path.starts_with(&ws.path().join("mosaics").display().to_string()),
        "{path} is not in the mosaics directory recorded with the execution"
    );
    for d in [a.path(), b.path()] {
        assert!(
            !path.starts_with(&d.display().to_string()),
            "{path} is in a worker's directory"
        );
    }
    let mid = build["outputs"]["mosaic_id"].as_i64().unwrap();
    let fits = get(&s, &format!("/api/v1/mosaics/{mid}/fits"), None);
    assert_eq!(fits.status, 200);
    assert_eq!(fits.body, std::fs::read(&path).unwrap());
    let listed = get(&s, "/api/v1/mosaics", None).json();
    assert_eq!(listed["items"][0]["path"], path.as_str());
    let page = get(&s, "/", None);
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(html.contains(&format!(">{eid}</a>")), "{html}");
    // The database password appears in no response.
    if let Some(pw) = pg_url()
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .and_then(|(u, _)| u.split_once(':'))
        .map(|(_, p)| p.to_string())
    {
        for p in [
            format!("/api/v1/executions/{eid}"),
            "/api/v1/executions".into(),
            "/".into(),
            "/healthz".into(),
        ] {
            let body = get(&s, &p, None).body;
            assert!(!String::from_utf8_lossy(&body).contains(&pw), "{p}");
        }
    }
    assert_eq!(s.stop(), Some(0));
    drop(workers);
}
