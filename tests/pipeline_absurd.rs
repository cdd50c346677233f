//! The pipeline layer on ABSURD: the real binary against a real PostgreSQL server with ABSURD's schema
//! (the one `scripts/pg-cluster start` runs, found through CONTIMG_TEST_PG; without it these tests fail
//! and say how to start one). Each test has its own contimg schema and ABSURD queue, dropped at the end;
//! "machines" are separate workspace directories and processes sharing only the server.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

fn pg_url() -> String {
    std::env::var("CONTIMG_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "CONTIMG_TEST_PG is not set: these tests need a PostgreSQL server with ABSURD's schema. \
             Run them with scripts/test (it starts one), or start one with \
             `eval \"$(scripts/pg-cluster start)\"` (needs apt-get install postgresql and \
             pip install absurdctl absurd-sdk)"
        )
    })
}

fn raw_client() -> postgres::Client {
    postgres::Client::connect(&pg_url(), postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test server ({e})"))
}

/// One test's contimg schema and ABSURD queue (same name), dropped at the end.
struct Bed {
    name: String,
}

impl Bed {
    fn new(test: &str) -> Bed {
        let name = format!("p_{test}_{}", std::process::id());
        let mut c = raw_client();
        c.execute("SELECT absurd.drop_queue($1)", &[&name]).unwrap();
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
            .unwrap();
        Bed { name }
    }

    /// contimg in `dir` against this bed.
    fn cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = common::contimg();
        c.current_dir(dir)
            .env("CONTIMG_DB", pg_url())
            .env("CONTIMG_PG_SCHEMA", &self.name)
            .env("CONTIMG_ABSURD_QUEUE", &self.name)
            .args(args);
        c
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.cmd(dir, args).output().expect("running contimg")
    }

    fn json(&self, dir: &Path, args: &[&str], code: i32) -> Value {
        let out = self.run(dir, args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "contimg {args:?}: stdout={} stderr={}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("stdout is JSON")
    }

    fn spawn(&self, dir: &Path, args: &[&str]) -> Child {
        self.cmd(dir, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting contimg")
    }

    /// ABSURD's own record of a task: (name, state, attempts, headers).
    fn absurd_task(&self, id: &str) -> (String, String, i32, Value) {
        let id: Uuid = id.parse().unwrap();
        let r = raw_client()
            .query_one(
                &format!(
                    "SELECT task_name, state, attempts, headers FROM absurd.\"t_{}\" WHERE task_id = $1",
                    self.name
                ),
                &[&id],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    }

    /// How many runs ABSURD made of every task of the queue, by state.
    fn runs(&self) -> Vec<(String, i64)> {
        raw_client()
            .query(
                &format!(
                    "SELECT state, count(*) FROM absurd.\"r_{}\" GROUP BY state ORDER BY state",
                    self.name
                ),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// A peer: ABSURD's Python SDK on this queue runs `script` with `sdk` bound to it.
    fn python(&self, script: &str) {
        let full = format!(
            "import sys, absurd_sdk\nsdk = absurd_sdk.Absurd(sys.argv[1], queue_name=sys.argv[2])\n{script}\nsdk.close()\n"
        );
        let out = Command::new(common::python())
            .arg("-c")
            .arg(&full)
            .arg(pg_url())
            .arg(&self.name)
            .output()
            .expect("python");
        assert!(
            out.status.success(),
            "the ABSURD SDK failed (pip install absurd-sdk): {}",
            String::from_utf8_lossy(&out.stderr)
        );
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

/// A workspace whose `chain` pipeline has job `a` (outputs x = 41, appends to `ran.txt`) and job `b`
/// downstream of it (outputs y = ${a.x}).
fn chain_workspace(ran: &Path, a_script: &str) -> tempfile::TempDir {
    let ws = common::workspace();
    let log = ran.display();
    common::add_config(
        ws.path(),
        &format!(
            r#"
[pipelines.chain]
window = "1h"
max_retries = 2
retry = {{ kind = "fixed", delay_s = 1 }}
[[pipelines.chain.jobs]]
id = "a"
type = "command"
params = {{ argv = ["sh", "-c", "echo a $CONTIMG_ATTEMPT >> {log}; {a_script} echo '{{\"x\": 41}}'"] }}
[[pipelines.chain.jobs]]
id = "b"
type = "command"
depends_on = ["a"]
params = {{ argv = ["sh", "-c", "echo b >> {log}; echo '{{\"y\": ${{a.x}}}}'"] }}
"#
        ),
    );
    ws
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

const SLOT: &str = "2026-03-01T00:00:00Z";

/// The manifests the `run` processes printed, each checked to have succeeded and completed.
fn completed_manifests(children: Vec<Child>) -> Vec<Value> {
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let m: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(m["status"], "completed", "{m}");
            m
        })
        .collect()
}

#[test]
fn a_pipeline_runs_on_absurd_with_dependencies_outputs_and_headers() {
    let bed = Bed::new("chain");
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran.txt");
    let ws = chain_workspace(&ran, "");
    let m = bed.json(ws.path(), &["run", "chain", "--slot", SLOT], 0);
    assert_eq!(m["status"], "completed", "{m}");
    assert_eq!(
        common::job(&m, "b")["outputs"]["y"],
        41,
        "b read a's output"
    );
    assert_eq!(lines(&ran), ["a 1", "b"], "each job ran once, a before b");
    // Every job is an ABSURD task that ABSURD's tools see with contimg's names.
    let eid = m["execution_id"].as_i64().unwrap();
    for j in ["a", "b"] {
        let id = common::job(&m, j)["task_id"].as_str().unwrap().to_string();
        let (name, state, attempts, headers) = bed.absurd_task(&id);
        assert_eq!(name, "command");
        assert_eq!(state, "completed");
        assert_eq!(attempts, 1);
        assert_eq!(headers["pipeline"], "chain", "{headers}");
        assert_eq!(headers["execution"], eid, "{headers}");
        assert_eq!(headers["job"], j, "{headers}");
    }
    // A second run of the slot reports the same execution and runs nothing.
    let again = bed.json(ws.path(), &["run", "chain", "--slot", SLOT], 0);
    assert_eq!(again["execution_id"], m["execution_id"]);
    assert_eq!(again["existing"], true);
    assert_eq!(lines(&ran).len(), 2);
    // status lists it from the server, with no workspace at all.
    let nowhere = tempfile::tempdir().unwrap();
    let list = bed.json(nowhere.path(), &["status", "--json"], 0);
    assert_eq!(list[0]["execution_id"], m["execution_id"], "{list}");
    assert_eq!(list[0]["jobs"]["b"], "completed", "{list}");
    // contimg's numbered migrations are recorded in its own schema, ABSURD's tables untouched.
    let n: i64 = raw_client()
        .query_one(
            &format!(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{}' AND table_name = 'pipeline_jobs'",
                bed.name
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[test]
fn eight_concurrent_runs_of_one_slot_make_one_execution_and_run_each_job_once() {
    let bed = Bed::new("eight");
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran.txt");
    // Eight "machines": eight workspaces with the same pipeline, one server.
    let machines: Vec<_> = (0..8)
        .map(|_| chain_workspace(&ran, "sleep 0.3;"))
        .collect();
    let children: Vec<Child> = machines
        .iter()
        .map(|ws| bed.spawn(ws.path(), &["run", "chain", "--slot", SLOT]))
        .collect();
    let mut ids = Vec::new();
    for m in completed_manifests(children) {
        assert_eq!(common::job(&m, "b")["outputs"]["y"], 41);
        ids.push(m["execution_id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one execution for the slot: {ids:?}");
    assert_eq!(lines(&ran), ["a 1", "b"], "each job ran exactly once");
    assert_eq!(bed.runs(), [("completed".to_string(), 2)]);
    let list = bed.json(machines[0].path(), &["status", "--json"], 0);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[test]
fn a_killed_worker_s_job_is_finished_by_a_worker_on_another_machine() {
    let bed = Bed::new("kill");
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran.txt");
    // The first attempt of `a` hangs; later attempts finish at once.
    let ws1 = chain_workspace(&ran, "[ $CONTIMG_ATTEMPT = 1 ] && sleep 600;");
    let ws2 = chain_workspace(&ran, "[ $CONTIMG_ATTEMPT = 1 ] && sleep 600;");
    let created = bed.json(ws1.path(), &["run", "chain", "--slot", SLOT, "--detach"], 0);
    assert_eq!(created["status"], "running");
    let mut doomed = bed.spawn(ws1.path(), &["worker", "--lease", "2s"]);
    let t = Instant::now();
    while lines(&ran).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(30), "job a never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    doomed.kill().unwrap(); // SIGKILL
    doomed.wait().unwrap();
    // Another worker: it ends the dead worker's run as an interruption (at once here, since the
    // dead process was on this host; on another host once its claim expired) and takes `a` over
    // without a retry delay, the interruption not spent from `a`'s retries.
    let eid = created["execution_id"].as_i64().unwrap().to_string();
    let t = Instant::now();
    let (stats, m) = loop {
        let stats = bed.json(ws2.path(), &["worker", "--lease", "2s", "--once"], 0);
        let m = bed.json(ws2.path(), &["status", &eid, "--json"], 0);
        if m["status"] != "running" || t.elapsed() > Duration::from_secs(30) {
            break (stats, m);
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(m["status"], "completed", "{m} after {stats}");
    let a = common::job(&m, "a");
    assert_eq!(a["attempts"], 2, "{a}");
    assert_eq!(
        a["attempt_outcomes"],
        serde_json::json!(["failed", "completed"]),
        "ABSURD's runs: the interrupted one, then the rescue"
    );
    let first: Value = raw_client()
        .query_one(
            &format!(
                "SELECT failure_reason FROM absurd.\"r_{}\" WHERE task_id = $1 AND attempt = 1",
                bed.name
            ),
            &[&a["task_id"].as_str().unwrap().parse::<Uuid>().unwrap()],
        )
        .unwrap()
        .get(0);
    assert_eq!(first["name"], "contimg.Interrupted", "{first}");
    assert_eq!(lines(&ran), ["a 1", "a 2", "b"]);
}

#[test]
fn an_input_error_fails_the_job_for_good_and_retry_gives_it_a_new_task() {
    let bed = Bed::new("inputerr");
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran.txt");
    let flag = tmp.path().join("fixed");
    // Exit 2 (an input error) until the flag exists.
    let ws = chain_workspace(&ran, &format!("[ -e {} ] || exit 2;", flag.display()));
    let m = bed.json(ws.path(), &["run", "chain", "--slot", SLOT], 1);
    assert_eq!(m["status"], "failed", "{m}");
    let a = common::job(&m, "a");
    assert_eq!(a["state"], "failed");
    assert_eq!(a["attempts"], 1, "an input error is not retried: {a}");
    assert_eq!(common::job(&m, "b")["state"], "skipped");
    // ABSURD would retry it (max_retries = 2): contimg cancelled the task so that no one does.
    let (_, state, _, _) = bed.absurd_task(a["task_id"].as_str().unwrap());
    assert_eq!(state, "cancelled");
    std::fs::write(&flag, "").unwrap();
    let eid = m["execution_id"].as_i64().unwrap().to_string();
    let r = bed.json(ws.path(), &["retry", &eid], 0);
    assert_eq!(r["status"], "completed", "{r}");
    assert_ne!(
        common::job(&r, "a")["task_id"],
        a["task_id"],
        "a fresh ABSURD task"
    );
    assert_eq!(common::job(&r, "b")["outputs"]["y"], 41);
}

#[test]
fn cancel_and_retry_by_absurds_own_sdk_show_in_status() {
    let bed = Bed::new("peers");
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran.txt");
    let flag = tmp.path().join("fixed");
    // `a` fails (exit 1, retried) until the flag exists; max_retries = 2 → 3 attempts.
    let ws = chain_workspace(&ran, &format!("[ -e {} ] || exit 1;", flag.display()));
    let m = bed.json(ws.path(), &["run", "chain", "--slot", SLOT], 1);
    assert_eq!(m["status"], "failed", "{m}");
    let a = common::job(&m, "a").clone();
    assert_eq!(a["attempts"], 3, "{a}");
    let task = a["task_id"].as_str().unwrap().to_string();
    // ABSURD's SDK retries the failed task; contimg's status shows it waiting again.
    bed.python(&format!("sdk.retry_task('{task}')"));
    let eid = m["execution_id"].as_i64().unwrap().to_string();
    let s = bed.json(ws.path(), &["status", &eid, "--json"], 0);
    assert_eq!(s["status"], "running", "{s}");
    assert_eq!(common::job(&s, "a")["state"], "pending", "{s}");
    std::fs::write(&flag, "").unwrap();
    bed.json(ws.path(), &["worker", "--once"], 0);
    let s = bed.json(ws.path(), &["status", &eid, "--json"], 0);
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(common::job(&s, "a")["attempts"], 4);

    // A second slot, created but not worked: the SDK cancels `a`; contimg shows the cancel and
    // never starts `b`.
    let m2 = bed.json(
        ws.path(),
        &["run", "chain", "--slot", "2026-03-02T00:00:00Z", "--detach"],
        0,
    );
    let t2 = common::job(&m2, "a")["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    bed.python(&format!("sdk.cancel_task('{t2}')"));
    let eid2 = m2["execution_id"].as_i64().unwrap().to_string();
    let s2 = bed.json(ws.path(), &["status", &eid2, "--json"], 0);
    assert_eq!(s2["status"], "cancelled", "{s2}");
    assert_eq!(common::job(&s2, "a")["state"], "cancelled");
    assert_eq!(common::job(&s2, "b")["state"], "skipped");
}

#[test]
fn contimg_cancel_stops_a_running_job_through_absurd() {
    let bed = Bed::new("cancel");
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran.txt");
    let ws = chain_workspace(&ran, "sleep 600;");
    let m = bed.json(ws.path(), &["run", "chain", "--slot", SLOT, "--detach"], 0);
    let mut worker = bed.spawn(ws.path(), &["worker", "--lease", "3s"]);
    let t = Instant::now();
    while lines(&ran).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(30), "job a never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let eid = m["execution_id"].as_i64().unwrap().to_string();
    let c = bed.json(ws.path(), &["cancel", &eid], 0);
    assert_eq!(c["status"], "cancelled", "{c}");
    // Cancelling it again changes nothing and is no error; an unknown id is a usage error.
    let again = bed.json(ws.path(), &["cancel", &eid], 0);
    assert_eq!(again["status"], "cancelled", "{again}");
    let out = bed.run(ws.path(), &["cancel", "987654"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("987654"), "{err}");
    let (_, state, _, _) = bed.absurd_task(common::job(&c, "a")["task_id"].as_str().unwrap());
    assert_eq!(state, "cancelled");
    // The worker's next heartbeat is refused: it kills the job (well before its 600 s).
    std::thread::sleep(Duration::from_millis(2500));
    let _ = worker.kill();
    worker.wait().unwrap();
    let log = common::job(&c, "a")["log_path"]
        .as_str()
        .unwrap()
        .to_string();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("stopped"), "{text}");
}

#[test]
fn a_command_job_gets_neither_the_database_url_nor_its_password() {
    let bed = Bed::new("secrets");
    let tmp = tempfile::tempdir().unwrap();
    let env_file = tmp.path().join("env.txt");
    let ws = common::workspace();
    common::add_config(
        ws.path(),
        &format!(
            r#"
[pipelines.envdump]
window = "1h"
[[pipelines.envdump.jobs]]
id = "dump"
type = "command"
params = {{ argv = ["sh", "-c", "env > {}; echo '{{}}'"] }}
"#,
            env_file.display()
        ),
    );
    let password = "s3cret-not-for-jobs";
    let url = pg_url();
    let mut run = bed.cmd(ws.path(), &["run", "envdump", "--slot", SLOT]);
    // The worker has the URL (CONTIMG_DB, with its password) and PGPASSWORD; not the test's own
    // variables.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CONTIMG_TEST_PG")) {
        run.env_remove(k);
    }
    let out = run.env("PGPASSWORD", password).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("CONTIMG_JOB_ID=dump"), "{env}");
    for (what, secret) in [
        ("the URL", url.as_str()),
        ("PGPASSWORD", password),
        ("CONTIMG_DB", "CONTIMG_DB="),
        ("PGPASSWORD", "PGPASSWORD="),
    ] {
        assert!(!env.contains(secret), "the job got {what}: {env}");
    }
    // The URL's password itself appears nowhere either.
    let pw = url
        .split(':')
        .nth(2)
        .and_then(|r| r.split('@').next())
        .unwrap();
    assert!(pw.len() > 8 && !env.contains(pw), "{env}");
}

/// The test server's contimg database as the superuser (CONTIMG_TEST_PG_ADMIN names the
/// `postgres` database).
fn admin_url() -> String {
    let admin = std::env::var("CONTIMG_TEST_PG_ADMIN")
        .expect("CONTIMG_TEST_PG_ADMIN: start the server with scripts/pg-cluster start");
    let url = pg_url();
    let db = url.split("@/").nth(1).unwrap().split('?').next().unwrap();
    admin.replacen("@/postgres?", &format!("@/{db}?"), 1)
}

/// A login role of its own, dropped (with its grants) at the end.
struct Role {
    name: String,
    url: String,
}

impl Role {
    fn new(name: String, password: &str) -> Role {
        let mut admin = postgres::Client::connect(&admin_url(), postgres::NoTls).unwrap();
        Role::drop_in(&mut admin, &name);
        admin
            .batch_execute(&format!(
                "CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'"
            ))
            .unwrap();
        let url = pg_url();
        let rest = &url[url.find('@').unwrap()..];
        let url = format!("postgresql://{name}:{password}{rest}");
        Role { name, url }
    }

    fn drop_in(admin: &mut postgres::Client, name: &str) {
        let exists = admin
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
            .unwrap()
            .is_some();
        if exists {
            admin
                .batch_execute(&format!("DROP OWNED BY \"{name}\"; DROP ROLE \"{name}\""))
                .unwrap();
        }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&admin_url(), postgres::NoTls) {
            Role::drop_in(&mut admin, &self.name);
        }
    }
}

#[test]
fn an_outside_role_may_spawn_on_the_queue_and_nothing_else() {
    let bed = Bed::new("roles");
    let ws = common::workspace();
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("pwned");
    // The workers' role makes contimg's schema and the queue.
    bed.json(ws.path(), &["worker", "--once"], 0);
    let outside = Role::new(format!("spawner_{}", std::process::id()), "outside-pw");
    let worker_role = pg_url()["postgresql://".len()..]
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-roles.sql");
    let out = Command::new("psql")
        .arg(admin_url())
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .arg("-v")
        .arg(format!("queue={}", bed.name))
        .arg("-v")
        .arg(format!("schema={}", bed.name))
        .arg("-v")
        .arg(format!("worker={worker_role}"))
        .arg("-v")
        .arg(format!("outside={}", outside.name))
        .arg("-f")
        .arg(&script)
        .output()
        .expect("psql (apt-get install postgresql-client)");
    assert!(out.status.success(), "{out:?}");

    // As the outside role, ABSURD's SDK spawns (twice with one idempotency key: one task) and reads
    // a task's result.
    let py = Command::new(common::python())
        .arg("-c")
        .arg(format!(
            "import sys, absurd_sdk\n\
             sdk = absurd_sdk.Absurd(sys.argv[1], queue_name=sys.argv[2])\n\
             a = sdk.spawn('command', {{'argv': ['touch', '{m}']}}, idempotency_key='k', queue=sys.argv[2])\n\
             b = sdk.spawn('command', {{'argv': ['touch', '{m}']}}, idempotency_key='k', queue=sys.argv[2])\n\
             assert a['task_id'] == b['task_id']\n\
             print(sdk.fetch_task_result(a['task_id']).state)\n\
             print(a['task_id'])\n",
            m = marker.display()
        ))
        .arg(&outside.url)
        .arg(&bed.name)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&py.stdout).to_string();
    assert!(
        py.status.success(),
        "the outside role could not spawn: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("pending"), "{text}");
    let task: Uuid = lines.next().unwrap().parse().unwrap();

    // It may not read or write contimg's schema, nor change a task on the queue.
    let mut c = postgres::Client::connect(&outside.url, postgres::NoTls).unwrap();
    let q = &bed.name;
    for sql in [
        format!("SELECT count(*) FROM \"{q}\".pipeline_jobs"),
        format!("SELECT count(*) FROM \"{q}\".pipeline_executions"),
        format!("INSERT INTO \"{q}\".pipeline_jobs (execution_id, job_id) VALUES (1, 'x')"),
        format!("UPDATE absurd.\"t_{q}\" SET state = 'completed'"),
        format!("DELETE FROM absurd.\"r_{q}\""),
        format!("SELECT params FROM absurd.\"t_{q}\""),
        format!("SELECT absurd.cancel_task('{q}', '{task}')"),
        format!("SELECT * FROM absurd.claim_task('{q}', 'me', 60, 1)"),
        format!("SELECT absurd.drop_queue('{q}')"),
    ] {
        let e = c.batch_execute(&sql).unwrap_err();
        let why = e.as_db_error().map(|d| d.message().to_string());
        assert!(
            why.as_deref()
                .is_some_and(|m| m.contains("permission denied") || m.contains("must be owner")),
            "{sql}: {e:?}"
        );
    }
    // The workers' role still runs the queue: the outside `command` is refused, not run.
    bed.json(ws.path(), &["worker", "--once"], 0);
    assert!(!marker.exists(), "an outside command ran");
    let t = outside_tasks(&bed, "command");
    assert_eq!((t[0].0.as_str(), t[0].1), ("cancelled", 1), "{t:?}");
}

#[test]
fn bad_servers_give_one_line_errors_naming_the_masked_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = pg_url();
    let wrong_pw = if let Some(at) = url.find('@') {
        let colon = url[..at].rfind(':').unwrap();
        format!("{}:not-the-password{}", &url[..colon], &url[at..])
    } else {
        panic!("the test URL has no user info: {url}")
    };
    let unreachable = "postgres://someone:s3cret@127.0.0.1:1/contimg";
    // A wrong password is failed work (1); a server that cannot be reached is EX_TEMPFAIL (75).
    for (db, says, code) in [
        (wrong_pw.as_str(), "password", 1),
        (unreachable, "server running", 75),
    ] {
        let out = common::contimg()
            .current_dir(dir.path())
            .args(["--db", db, "status"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(err.contains("***"), "the URL is shown masked: {err}");
        assert!(
            !err.contains("not-the-password") && !err.contains("s3cret"),
            "{err}"
        );
        assert!(err.contains(says), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn jobs_ready_together_are_claimed_in_priority_order() {
    let bed = Bed::new("prio");
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran.txt");
    let ws = common::workspace();
    let mut toml = String::from("[pipelines.prio]\nwindow = \"1h\"\n");
    for (id, prio) in [("low", 0), ("high", 10), ("middle", 5)] {
        toml.push_str(&format!(
            "[[pipelines.prio.jobs]]\nid = \"{id}\"\ntype = \"command\"\npriority = {prio}\n\
             params = {{ argv = [\"sh\", \"-c\", \"echo {id} >> {}\"] }}\n",
            ran.display()
        ));
    }
    common::add_config(ws.path(), &toml);
    let m = bed.json(
        ws.path(),
        &["run", "prio", "--slot", SLOT, "--workers", "1"],
        0,
    );
    assert_eq!(m["status"], "completed", "{m}");
    assert_eq!(lines(&ran), ["high", "middle", "low"]);
}

#[test]
fn a_worker_whose_connections_are_cut_reconnects_and_finishes_its_job() {
    let bed = Bed::new("lost");
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran.txt");
    let ws = chain_workspace(&ran, "[ $CONTIMG_ATTEMPT = 1 ] && sleep 4;");
    let created = bed.json(ws.path(), &["run", "chain", "--slot", SLOT, "--detach"], 0);
    // This worker's connections carry their own application name, so that only they are cut.
    let app = format!("contimg_lost_{}", std::process::id());
    let sep = if pg_url().contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}application_name={app}", pg_url());
    let mut worker = bed
        .cmd(ws.path(), &["worker", "--lease", "6s"])
        .env("CONTIMG_DB", &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while lines(&ran).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(30), "job a never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let admin = std::env::var("CONTIMG_TEST_PG_ADMIN")
        .expect("CONTIMG_TEST_PG_ADMIN: start the server with scripts/pg-cluster start");
    let cut: i64 = postgres::Client::connect(&admin, postgres::NoTls)
        .unwrap()
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE application_name = $1) x",
            &[&app],
        )
        .unwrap()
        .get(0);
    assert!(cut >= 1, "no connection of the worker found");
    // The worker reconnects, its job goes on under the same claim, and the chain completes.
    let eid = created["execution_id"].as_i64().unwrap().to_string();
    let t = Instant::now();
    let m = loop {
        let m = bed.json(ws.path(), &["status", &eid, "--json"], 0);
        if m["status"] != "running" || t.elapsed() > Duration::from_secs(30) {
            break m;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(m["status"], "completed", "{m}");
    assert_eq!(common::job(&m, "a")["attempts"], 1, "{m}");
    assert!(worker.try_wait().unwrap().is_none(), "the worker exited");
    worker.kill().unwrap();
    let out = worker.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Said once what was lost (naming the masked URL) and that it reconnected at once.
    assert_eq!(err.matches("; reconnected at once").count(), 1, "{err}");
    assert!(!err.contains("reconnecting (trying every"), "{err}");
    assert!(err.contains("***") || !pg_url().contains('@'), "{err}");
}

/// Three small simulated snapshots on 2026-01-01 00:00–00:10 UTC in `dir`, ingested on the server
/// from workspace `ws`.
fn night_on_server(bed: &Bed, ws: &Path, dir: &Path) {
    common::json_in(
        dir,
        &[
            "simulate", "--out", "snaps", "--images", "3", "--size", "128", "--cell", "20",
        ],
        0,
    );
    let snaps = dir.join("snaps").display().to_string();
    let r = bed.json(ws, &["ingest", &snaps], 0);
    assert_eq!(r["added"].as_array().unwrap().len(), 3, "{r}");
}

fn server_count(bed: &Bed, table: &str) -> i64 {
    raw_client()
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".{table}", bed.name),
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn the_nightly_mosaic_runs_on_absurd_with_a_worker_on_another_machine() {
    let bed = Bed::new("nightly");
    let shared = tempfile::tempdir().unwrap();
    let (a, b) = (common::workspace(), common::workspace());
    night_on_server(&bed, a.path(), shared.path());
    let slot = "2026-01-01T03:00Z";
    let queued = bed.json(
        a.path(),
        &["run", "nightly_mosaic", "--slot", slot, "--detach"],
        0,
    );
    assert_eq!(queued["status"], "running");
    // Machine B, which ingested nothing, does the work from what the server records.
    let stats = bed.json(b.path(), &["worker", "--once"], 0);
    assert_eq!(stats["completed"], 3, "{stats}");
    let eid = queued["execution_id"].as_i64().unwrap().to_string();
    let m = bed.json(a.path(), &["status", &eid, "--json"], 0);
    assert_eq!(m["status"], "completed", "{m}");
    let mosaic = common::job(&m, "build")["outputs"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    // Built by machine B, written where the execution says: machine A's mosaics directory.
    assert!(
        mosaic.starts_with(&a.path().join("mosaics").display().to_string()),
        "written where the execution says: {mosaic}"
    );
    assert!(
        !b.path().join("mosaics").read_dir().unwrap().any(|_| true),
        "nothing written in the building worker's workspace"
    );
    assert!(Path::new(&mosaic).is_file());
    let qa = &common::job(&m, "qa")["outputs"];
    assert!(qa["verdict"].is_string(), "{qa}");
    // Everything is recorded on the server, once.
    assert_eq!(server_count(&bed, "images"), 3);
    assert_eq!(server_count(&bed, "mosaic_plans"), 1);
    assert_eq!(server_count(&bed, "mosaics"), 1);
    assert_eq!(server_count(&bed, "mosaic_qa"), 1);
    // Machine A sees B's mosaic through the server.
    let again = bed.json(a.path(), &["run", "nightly_mosaic", "--slot", slot], 0);
    assert_eq!(again["execution_id"], queued["execution_id"]);
    assert_eq!(again["existing"], true);
}

#[test]
fn eight_concurrent_runs_of_the_nightly_mosaic_on_absurd_build_one_mosaic() {
    let bed = Bed::new("nightly8");
    let shared = tempfile::tempdir().unwrap();
    let machines: Vec<_> = (0..8).map(|_| common::workspace()).collect();
    night_on_server(&bed, machines[0].path(), shared.path());
    let children: Vec<Child> = machines
        .iter()
        .map(|ws| {
            bed.spawn(
                ws.path(),
                &["run", "nightly_mosaic", "--slot", "2026-01-01T03:00Z"],
            )
        })
        .collect();
    let mut ids: Vec<i64> = completed_manifests(children)
        .iter()
        .map(|m| m["execution_id"].as_i64().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one execution: {ids:?}");
    assert_eq!(server_count(&bed, "pipeline_executions"), 1);
    assert_eq!(server_count(&bed, "mosaic_plans"), 1);
    assert_eq!(server_count(&bed, "mosaics"), 1);
    assert_eq!(
        bed.runs(),
        [("completed".to_string(), 3)],
        "each job ran once"
    );
}

#[test]
fn a_double_cron_firing_against_the_server_makes_one_execution() {
    let bed = Bed::new("cron");
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran.txt");
    let ws = chain_workspace(&ran, "sleep 0.2;");
    // The workspace names the server in contimg.toml, as a cron-run workspace does.
    let cfg = ws.path().join("contimg.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text
        .replacen(
            "database = \"pipeline.sqlite3\"",
            &format!("database = \"{}\"", pg_url()),
            1,
        )
        .replace(
            "[pipelines.chain]\n",
            "[pipelines.chain]\nschedule = \"0 3 * * *\"\n",
        );
    std::fs::write(&cfg, text).unwrap();
    let printed = common::contimg()
        .current_dir(ws.path())
        .env("CONTIMG_PG_SCHEMA", &bed.name)
        .env("CONTIMG_ABSURD_QUEUE", &bed.name)
        .args(["cron", "print"])
        .output()
        .unwrap();
    let block = String::from_utf8_lossy(&printed.stdout).to_string();
    let line = block
        .lines()
        .find(|l| l.contains("run chain"))
        .unwrap_or_else(|| panic!("no crontab line for chain: {block}"));
    // What cron runs: the command after the five schedule fields, through /bin/sh, twice at once.
    let command: String = line
        .split_whitespace()
        .skip(5)
        .collect::<Vec<_>>()
        .join(" ");
    let fire = || {
        Command::new("sh")
            .arg("-c")
            .arg(&command)
            .env_remove("CONTIMG_DB")
            .env("CONTIMG_PG_SCHEMA", &bed.name)
            .env("CONTIMG_ABSURD_QUEUE", &bed.name)
            .spawn()
            .unwrap()
    };
    let (mut one, mut two) = (fire(), fire());
    assert!(one.wait().unwrap().success());
    assert!(two.wait().unwrap().success());
    assert_eq!(server_count(&bed, "pipeline_executions"), 1);
    assert_eq!(lines(&ran), ["a 1", "b"], "each job ran once");
    let log = std::fs::read_to_string(ws.path().join("logs/chain.log")).unwrap();
    assert!(!log.contains("contimg: error"), "{log}");
    assert_eq!(
        log.matches("\"existing\": true").count(),
        1,
        "the second firing reported the first: {log}"
    );
    // `run --catch-up` (what a machine back from downtime runs) starts from the server's last success.
    let slot: String = raw_client()
        .query_one(
            &format!("SELECT slot FROM \"{}\".pipeline_executions", bed.name),
            &[],
        )
        .unwrap()
        .get(0);
    let c = common::contimg()
        .current_dir(ws.path())
        .env("CONTIMG_PG_SCHEMA", &bed.name)
        .env("CONTIMG_ABSURD_QUEUE", &bed.name)
        .args(["run", "chain", "--catch-up"])
        .output()
        .unwrap();
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let c: Value = serde_json::from_slice(&c.stdout).unwrap();
    assert_eq!(c["schema"], "contimg.catch-up/1", "{c}");
    assert_eq!(c["last_success"], slot.as_str(), "{c}");
    assert_eq!(c["slots"], serde_json::json!([]), "nothing was missed: {c}");
    assert_eq!(server_count(&bed, "pipeline_executions"), 1);
}

#[test]
fn a_job_completed_by_a_python_sdk_worker_feeds_the_next_job() {
    let bed = Bed::new("pydone");
    let ws = common::workspace();
    common::add_config(
        ws.path(),
        r#"
[pipelines.mixed]
window = "1h"
[[pipelines.mixed.jobs]]
id = "a"
type = "command"
params = { argv = ["false"] }
[[pipelines.mixed.jobs]]
id = "b"
type = "command"
depends_on = ["a"]
params = { argv = ["sh", "-c", "echo '{\"from\": \"${a.by}\"}'"] }
"#,
    );
    let m = bed.json(ws.path(), &["run", "mixed", "--slot", SLOT, "--detach"], 0);
    // A worker of ABSURD's own SDK (not contimg) claims job a's task and completes it.
    let out = Command::new(common::python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/py/absurd_peer.py"
        ))
        .args(["work", &pg_url(), &bed.name, "command", "py-worker"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "absurd_peer.py failed (pip install absurd-sdk): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["claimed"], 1, "{seen}");
    assert_eq!(seen["seen"][0]["headers"]["job"], "a", "{seen}");
    // contimg picks the result up, releases b, and runs it with a's outputs.
    let stats = bed.json(ws.path(), &["worker", "--once"], 0);
    assert_eq!(stats["completed"], 1, "{stats}");
    let eid = m["execution_id"].as_i64().unwrap().to_string();
    let s = bed.json(ws.path(), &["status", &eid, "--json"], 0);
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(common::job(&s, "a")["outputs"]["by"], "py-worker");
    assert_eq!(common::job(&s, "b")["outputs"]["from"], "py-worker");
}

#[test]
fn a_failed_execution_on_the_server_notifies_once_per_failure_round() {
    let bed = Bed::new("notify");
    let tmp = tempfile::tempdir().unwrap();
    let sent = tmp.path().join("sent.txt");
    let ws = common::workspace();
    common::add_config(
        ws.path(),
        &format!(
            r#"
[pipelines.doomed]
window = "1h"
notify = [{{ channel = "command", argv = ["sh", "-c", "echo $CONTIMG_PIPELINE $CONTIMG_EXECUTION_ID $CONTIMG_FAILED_JOBS db=$CONTIMG_DB$PGPASSWORD >> {}"] }}]
[[pipelines.doomed.jobs]]
id = "a"
type = "command"
params = {{ argv = ["sh", "-c", "echo broken >&2; exit 1"] }}
"#,
            sent.display()
        ),
    );
    let m = bed.json(ws.path(), &["run", "doomed", "--slot", SLOT], 1);
    assert_eq!(m["status"], "failed", "{m}");
    let eid = m["execution_id"].as_i64().unwrap();
    // The outbox is on the server, and `run` delivered it on its way out; the program got none
    // of the worker's database variables.
    assert_eq!(lines(&sent), [format!("doomed {eid} a db=")]);
    let rows = bed.json(ws.path(), &["notifications", "--json"], 0);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["state"], "delivered", "{rows}");
    assert_eq!(rows[0]["pipeline"], "doomed");
    assert_eq!(server_count(&bed, "notification_attempts"), 1);
    // Reporting the failed slot again notifies nobody; a retry that fails again does.
    bed.json(ws.path(), &["run", "doomed", "--slot", SLOT], 1);
    assert_eq!(lines(&sent).len(), 1);
    bed.json(ws.path(), &["retry", &eid.to_string()], 1);
    assert_eq!(
        server_count(&bed, "notifications"),
        2,
        "a new failure round"
    );
    let rows = bed.json(ws.path(), &["notifications", "--deliver", "--json"], 0);
    assert_eq!(rows[0]["state"], "delivered", "{rows}");
    assert_eq!(lines(&sent).len(), 2);
}

#[test]
fn a_database_without_absurd_says_what_to_run_and_is_left_untouched() {
    let admin = std::env::var("CONTIMG_TEST_PG_ADMIN")
        .expect("CONTIMG_TEST_PG_ADMIN: start the server with scripts/pg-cluster start");
    let name = format!("noabsurd_{}", std::process::id());
    let mut a = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
    a.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    a.batch_execute(&format!("CREATE DATABASE {name} OWNER contimg"))
        .unwrap();
    // The test URL with another database name.
    let url = pg_url();
    let (head, rest) = url.split_at(url.find("@/").expect("a socket URL") + 2);
    let tail = rest.find('?').map_or("", |i| &rest[i..]);
    let other = format!("{head}{name}{tail}");
    let ws = common::workspace();
    let out = common::contimg()
        .current_dir(ws.path())
        .env("CONTIMG_DB", &other)
        .args(["worker", "--once"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("absurdctl init"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let schemas: i64 = postgres::Client::connect(&other, postgres::NoTls)
        .unwrap()
        .query_one(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'contimg'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(schemas, 0, "nothing of contimg's was created");
    a.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
}

/// Sets `[postgres] accept_outside` of workspace `ws` to `types` (TOML array text).
fn accept_outside(ws: &Path, types: &str) {
    let p = ws.join("contimg.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let line = "accept_outside = [\"contimg.run\"]";
    assert!(text.contains(line), "the default contimg.toml names {line}");
    std::fs::write(&p, text.replace(line, &format!("accept_outside = {types}"))).unwrap();
}

/// ABSURD's record of every task of the queue named `name`: (state, runs started, last failure
/// message).
fn outside_tasks(bed: &Bed, name: &str) -> Vec<(String, i64, Option<String>)> {
    raw_client()
        .query(
            &format!(
                "SELECT t.state,
                        (SELECT count(*) FROM absurd.\"r_{0}\" r WHERE r.task_id = t.task_id
                            AND r.started_at IS NOT NULL),
                        (SELECT r.failure_reason->>'message' FROM absurd.\"r_{0}\" r
                          WHERE r.task_id = t.task_id AND r.failure_reason IS NOT NULL
                          ORDER BY r.attempt DESC LIMIT 1)
                   FROM absurd.\"t_{0}\" t WHERE t.task_name = $1 ORDER BY t.enqueue_at",
                bed.name
            ),
            &[&name],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[test]
fn a_task_spawned_by_the_sdk_with_an_accepted_job_type_is_run_by_a_contimg_worker() {
    let bed = Bed::new("sdkjob");
    let ws = common::workspace();
    // The site opts in to outside `command` tasks; another ABSURD client spawns one, and a task
    // contimg does not know.
    accept_outside(ws.path(), "[\"command\"]");
    bed.python(
        "q = sys.argv[2]\nsdk.create_queue(q)\n\
         sdk.spawn('command', {'argv': ['printf', '{\"ok\": 1}']}, max_attempts=1, queue=q)\n\
         sdk.spawn('resize_images', {'n': 3}, queue=q)",
    );
    bed.json(ws.path(), &["worker", "--once"], 0);
    let states: Vec<(String, String, Option<Value>)> = raw_client()
        .query(
            &format!(
                "SELECT task_name, state, completed_payload FROM absurd.\"t_{}\" ORDER BY task_name",
                bed.name
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(states[0].0, "command");
    assert_eq!(states[0].1, "completed", "{states:?}");
    assert_eq!(states[0].2, Some(serde_json::json!({ "ok": 1 })));
    // The unknown task fails once, for good (the SDK gave it 5 attempts), saying why.
    let t = outside_tasks(&bed, "resize_images");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].0, "cancelled", "not contimg's to run: {t:?}");
    assert_eq!(t[0].1, 1, "one attempt, never retried: {t:?}");
    let why = t[0].2.as_deref().unwrap();
    assert!(
        why.contains("'resize_images' is not accepted from outside contimg (accepted: command"),
        "{why}"
    );
    // `status` lists the accepted outside task after the executions (none here), not the other.
    let list = bed.json(ws.path(), &["status", "--json"], 0);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["schema"], "contimg.standalone-task/1", "{list}");
    assert_eq!(rows[0]["task_type"], "command", "{list}");
    assert_eq!(rows[0]["state"], "completed", "{list}");
    assert_eq!(rows[0]["attempts"], 1, "{list}");
}

#[test]
fn an_outside_command_task_runs_nothing_and_fails_once_with_the_reason() {
    let bed = Bed::new("stranger");
    let ws = common::workspace();
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("pwned");
    // By default no outside `command` runs: its argv would create the marker. Nor does a task
    // claiming to be a job of a contimg execution (by header or by param) that contimg never spawned.
    bed.python(&format!(
        "q = sys.argv[2]\nsdk.create_queue(q)\n\
         sdk.spawn('command', {{'argv': ['touch', '{m}']}}, queue=q)\n\
         sdk.spawn('command', {{'argv': ['touch', '{m}']}}, queue=q, \
                   headers={{'origin': 'contimg', 'execution': 1, 'job': 'a'}})\n\
         sdk.spawn('mosaic_build', {{'plan_id': 1, 'execution_id': 1, 'job_id': 'build'}}, queue=q)",
        m = marker.display()
    ));
    let out = bed.run(ws.path(), &["worker", "--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // A second worker finds nothing left to retry.
    bed.json(ws.path(), &["worker", "--once"], 0);
    assert!(!marker.exists(), "an outside command ran");
    let cmd = outside_tasks(&bed, "command");
    assert_eq!(cmd.len(), 2, "{cmd:?}");
    for (state, runs, why) in &cmd {
        assert_eq!(state, "cancelled", "{cmd:?}");
        assert_eq!(*runs, 1, "failed once, never retried: {cmd:?}");
        let why = why.as_deref().unwrap();
        assert!(why.starts_with("refused task "), "{why}");
    }
    assert!(
        cmd[0].2.as_deref().unwrap().contains(
            "task type 'command' is not accepted from outside contimg (accepted: contimg.run"
        ),
        "{cmd:?}"
    );
    assert!(
        cmd[1]
            .2
            .as_deref()
            .unwrap()
            .contains("claims to be a job of a contimg execution"),
        "{cmd:?}"
    );
    let build = outside_tasks(&bed, "mosaic_build");
    assert_eq!(build[0].1, 1, "{build:?}");
    assert!(
        build[0]
            .2
            .as_deref()
            .unwrap()
            .contains("claims to be a job"),
        "{build:?}"
    );
    // Each refusal is a warning on the worker's log.
    let warned = err
        .lines()
        .filter(|l| l.starts_with("contimg: warning: refused task "))
        .count();
    assert_eq!(warned, 3, "{err}");
}

#[test]
fn an_outside_task_of_an_accepted_type_with_a_hostile_param_is_refused() {
    let bed = Bed::new("hostile");
    let ws = common::workspace();
    accept_outside(ws.path(), "[\"mosaic_plan\", \"mosaic_qa\", \"command\"]");
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("ran");
    bed.python(&format!(
        "q = sys.argv[2]\nsdk.create_queue(q)\n\
         sdk.spawn('mosaic_plan', {{'tier': 'auto', 'start': '2026-11-20T00:00Z', \
                   'end': '2026-11-21T00:00Z', 'replace': True}}, queue=q)\n\
         sdk.spawn('mosaic_qa', {{'mosaic_id': 1, 'reference': '/etc/passwd'}}, queue=q)\n\
         sdk.spawn('command', {{'argv': ['touch', '{m}'], 'cwd': '/'}}, queue=q)",
        m = marker.display()
    ));
    bed.json(ws.path(), &["worker", "--once"], 0);
    assert!(!marker.exists(), "a refused command ran");
    for (name, why) in [
        (
            "mosaic_plan",
            "parameter 'replace' is not accepted from outside",
        ),
        (
            "mosaic_qa",
            "parameter 'reference' = \"/etc/passwd\" leaves the workspace",
        ),
        ("command", "parameter 'cwd' = \"/\" leaves the workspace"),
    ] {
        let t = outside_tasks(&bed, name);
        assert_eq!(t[0].0, "cancelled", "{name}: {t:?}");
        assert_eq!(t[0].1, 1, "{name}: {t:?}");
        assert!(t[0].2.as_deref().unwrap().contains(why), "{name}: {t:?}");
    }
    // Refused or not, tasks of an accepted type show in `status`, with the reason.
    let list = bed.json(ws.path(), &["status", "--json"], 0);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{list}");
    for r in rows {
        assert_eq!(r["schema"], "contimg.standalone-task/1", "{list}");
        assert_eq!(r["state"], "cancelled", "{list}");
        assert!(
            r["error"].as_str().unwrap().contains("refused task"),
            "{list}"
        );
    }
}

#[test]
fn a_job_over_its_timeout_is_killed_and_absurd_records_why() {
    let bed = Bed::new("timeout");
    let ws = common::workspace();
    common::add_config(
        ws.path(),
        r#"
[pipelines.slow]
[[pipelines.slow.jobs]]
id = "sleepy"
type = "command"
params = { argv = ["sh", "-c", "echo $$ > sleepy.pid; exec sleep 30"] }
timeout = "1s"
"#,
    );
    let t0 = Instant::now();
    let m = bed.json(ws.path(), &["run", "slow"], 1);
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    let j = common::job(&m, "sleepy");
    assert_eq!(j["state"], "failed", "{j}");
    assert!(j["error"].as_str().unwrap().contains("timed out"), "{j}");
    let pid: i32 = std::fs::read_to_string(ws.path().join("sleepy.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !common::pid_alive(pid),
        "the timed-out child {pid} still runs"
    );
    // ABSURD's record names the timeout in contimg's terms.
    let reason: Value = raw_client()
        .query_one(
            &format!("SELECT failure_reason FROM absurd.\"r_{}\"", bed.name),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(reason["name"], "contimg.TimedOut", "{reason}");
}

#[test]
fn catch_up_of_three_missed_nights_on_the_server_runs_them_oldest_first() {
    let bed = Bed::new("catchup");
    let ws = common::workspace();
    common::add_config(
        ws.path(),
        r#"
[pipelines.tick]
schedule = "0 3 * * *"
window = "24h"
[[pipelines.tick.jobs]]
id = "echo"
type = "command"
params = { argv = ["sh", "-c", "echo '{\"slot\": \"${slot.start}\"}'"] }
"#,
    );
    let latest = contimg::pipeline::exec::scheduled_slot("0 3 * * *", chrono::Utc::now()).unwrap();
    let iso = |t: chrono::DateTime<chrono::Utc>| contimg::time::iso(t);
    let ok = latest - chrono::Duration::days(3);
    bed.json(ws.path(), &["run", "tick", "--slot", &iso(ok)], 0);
    let m = bed.json(ws.path(), &["run", "tick", "--catch-up"], 0);
    assert_eq!(m["last_success"], iso(ok));
    let want: Vec<String> = (0..3)
        .rev()
        .map(|d| iso(latest - chrono::Duration::days(d)))
        .collect();
    assert_eq!(m["slots"], serde_json::json!(want));
    let rows: Vec<(String, String)> = raw_client()
        .query(
            &format!(
                "SELECT slot, status FROM \"{}\".pipeline_executions ORDER BY id",
                bed.name
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[1..].iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        want,
        "created oldest first"
    );
    assert!(rows.iter().all(|r| r.1 == "completed"), "{rows:?}");
    let again = bed.json(ws.path(), &["run", "tick", "--catch-up"], 0);
    assert_eq!(again["slots"], serde_json::json!([]));
}

#[test]
fn a_new_slot_is_skipped_while_max_active_executions_run_on_the_server() {
    let bed = Bed::new("busy");
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran.txt");
    let ws = chain_workspace(&ran, "");
    let first = bed.json(ws.path(), &["run", "chain", "--slot", SLOT, "--detach"], 0);
    assert_eq!(first["status"], "running");
    // Another machine asks for the next slot while the first still runs (max_active = 1).
    let other = chain_workspace(&ran, "");
    let skipped = bed.json(
        other.path(),
        &["run", "chain", "--slot", "2026-03-01T01:00:00Z"],
        0,
    );
    assert_eq!(skipped["schema"], "contimg.skipped/1", "{skipped}");
    assert_eq!(
        skipped["active_executions"],
        serde_json::json!([first["execution_id"]])
    );
    assert_eq!(server_count(&bed, "pipeline_executions"), 1);
    // Once the first is done, the slot runs.
    bed.json(ws.path(), &["worker", "--once"], 0);
    let m = bed.json(
        other.path(),
        &["run", "chain", "--slot", "2026-03-01T01:00:00Z"],
        0,
    );
    assert_eq!(m["status"], "completed", "{m}");
}

#[test]
fn a_night_whose_every_image_is_left_out_fails_for_good_on_absurd_and_an_empty_one_is_retried() {
    let bed = Bed::new("leftout");
    let shared = tempfile::tempdir().unwrap();
    let ws = common::workspace();
    // A workspace planning L band only, a night of 1.52 GHz images on the server.
    common::add_config(
        ws.path(),
        r#"
[tiers.science]
frequency_hz = [1.3e9, 1.45e9]

[pipelines.pb]
window = "24h"
max_retries = 2
retry = { kind = "fixed", delay_s = 0 }
[[pipelines.pb.jobs]]
id = "plan"
type = "mosaic_plan"
params = { tier = "science", start = "${slot.start}", end = "${slot.end}" }
"#,
    );
    common::json_in(
        shared.path(),
        &[
            "simulate", "--out", "snaps", "--images", "2", "--size", "128", "--cell", "20",
            "--freq", "1.52e9",
        ],
        0,
    );
    let snaps = shared.path().join("snaps").display().to_string();
    bed.json(ws.path(), &["ingest", &snaps], 0);
    let m = bed.json(ws.path(), &["run", "pb", "--slot", "2026-01-01T12:00Z"], 1);
    assert_eq!(m["status"], "failed", "{m}");
    let plan = common::job(&m, "plan");
    assert_eq!(plan["state"], "failed");
    assert_eq!(
        plan["attempts"], 1,
        "a permanent failure is not retried: {plan}"
    );
    let error = plan["error"].as_str().unwrap();
    assert!(
        error.contains("exit code 3") && error.contains("frequency_hz"),
        "{error}"
    );
    // ABSURD would retry it (max_retries = 2): contimg cancelled the task so that no one does.
    let (_, state, _, _) = bed.absurd_task(plan["task_id"].as_str().unwrap());
    assert_eq!(state, "cancelled");
    // One run failed; the retry ABSURD scheduled never ran.
    let runs = bed.runs();
    assert!(
        runs.contains(&("failed".to_string(), 1))
            && !runs.iter().any(|(s, _)| s == "running" || s == "completed"),
        "{runs:?}"
    );
    assert_eq!(server_count(&bed, "mosaic_plans"), 0);
    // A window with no image yet is retried, as late data can mend it.
    let m = bed.json(ws.path(), &["run", "pb", "--slot", "2026-02-01T12:00Z"], 1);
    let plan = common::job(&m, "plan");
    assert_eq!(plan["state"], "failed", "{plan}");
    assert_eq!(plan["attempts"], 3, "retried twice: {plan}");
    assert!(
        plan["error"]
            .as_str()
            .unwrap()
            .contains("no image was observed"),
        "{plan}"
    );
}

/// Issue 23's peer case: a client with nothing but ABSURD's Python SDK starts `on_demand_mosaic`
/// by spawning `contimg.run`, and reads the execution's manifest from the task's result. The one
/// worker thread admits the execution and lets go of the task while the execution runs (were it
/// to hold its claim, the execution's jobs would starve), and the task ends with the execution.
/// Bad requests fail once, with the reason; the worker goes on.
#[test]
fn an_sdk_client_spawns_contimg_run_and_reads_the_execution_manifest_from_the_task_result() {
    let bed = Bed::new("ctrun");
    let shared = tempfile::tempdir().unwrap();
    let (ws, other) = (common::workspace(), common::workspace());
    night_on_server(&bed, ws.path(), shared.path());
    let worker = bed.spawn(ws.path(), &["worker", "--concurrency", "1"]);
    let script = r#"
import json, sys, absurd_sdk
sdk = absurd_sdk.Absurd(sys.argv[1], queue_name=sys.argv[2])
q = sys.argv[2]
sdk.create_queue(q)
run = lambda p: sdk.spawn('contimg.run', p, queue=q)['task_id']
window = {'start': '2026-01-01T00:00:00Z', 'end': '2026-01-01T01:00:00Z'}
good = run({'pipeline': 'on_demand_mosaic', 'params': window})
bad = {
    'value': run({'pipeline': 'on_demand_mosaic', 'params': {'start': 'yesterday', 'end': 'today'}}),
    'pipeline': run({'pipeline': 'nightly_mosaic'}),
    'shape': run({'pipeline': 'on_demand_mosaic', 'params': 'start=x'}),
}
r = sdk.await_task_result(good, timeout=120)
out = {'state': r.state, 'result': r.result, 'bad': {}}
for k, t in bad.items():
    out['bad'][k] = sdk.await_task_result(t, timeout=60).state
print(json.dumps(out))
sdk.close()
"#;
    let out = Command::new(common::python())
        .args(["-c", script, &pg_url(), &bed.name])
        .output()
        .expect("python");
    let _ = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status();
    let w = worker.wait_with_output().unwrap();
    let werr = String::from_utf8_lossy(&w.stderr);
    assert!(
        out.status.success(),
        "the SDK client: {}\nworker: {werr}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        w.status.success(),
        "the worker went on and stopped cleanly: {werr}"
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["state"], "completed", "{r}\n{werr}");
    let m = &r["result"];
    assert_eq!(m["schema"], "contimg.execution/1", "{m}");
    assert_eq!(m["pipeline"], "on_demand_mosaic", "{m}");
    assert_eq!(
        m["status"], "completed",
        "the task ended with its execution: {m}"
    );
    let mosaic = common::job(m, "build")["outputs"]["path"].as_str().unwrap();
    assert!(Path::new(mosaic).is_file(), "{mosaic}");
    assert!(
        mosaic.starts_with(&ws.path().join("mosaics").display().to_string()),
        "{mosaic}"
    );
    // The same execution as contimg sees it.
    let eid = m["execution_id"].as_i64().unwrap().to_string();
    let seen = bed.json(other.path(), &["status", &eid, "--json"], 0);
    assert_eq!(seen["status"], "completed");
    assert_eq!(
        server_count(&bed, "pipeline_executions"),
        1,
        "bad requests admit nothing"
    );
    // The task slept while its execution ran: two runs of one attempt, no failure.
    let t = outside_tasks(&bed, "contimg.run");
    assert_eq!(t.len(), 4, "{t:?}");
    assert_eq!(t[0].0, "completed", "{t:?}");
    assert_eq!(
        t[0].1, 1,
        "one run: the task slept and the same run went on: {t:?}"
    );
    // Each bad request failed once, for good, saying why.
    for (k, why) in [
        ("value", "yesterday"),
        ("pipeline", "run_pipelines"),
        ("shape", "must be a table"),
    ] {
        assert_eq!(r["bad"][k], "cancelled", "{k}: {r}");
        let i = match k {
            "value" => 1,
            "pipeline" => 2,
            _ => 3,
        };
        assert_eq!(t[i].1, 1, "{k}: one attempt, never retried: {t:?}");
        let msg = t[i].2.as_deref().unwrap_or_default();
        assert!(msg.contains(why), "{k}: {msg}");
    }
}
