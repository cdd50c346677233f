//! A PostgreSQL restart in the middle of a night's pipeline: workers, `run` and the jobs' child
//! processes ride it out. Each test stops and starts a server of its own (a throwaway cluster made
//! with `scripts/pg-cluster start` in a directory and on a port of its own, never the shared
//! CONTIMG_TEST_PG server other tests use), keeping its data across the restart.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A throwaway cluster of this test, deleted at the end.
struct Cluster {
    dir: PathBuf,
    port: u16,
    url: String,
}

impl Cluster {
    fn start(name: &str) -> Cluster {
        let dir = std::env::temp_dir().join(format!("contimg-pgr-{}-{name}", std::process::id()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = Cluster {
            dir,
            port,
            url: String::new(),
        };
        let out = c.script("start");
        assert!(
            out.status.success(),
            "scripts/pg-cluster start failed (needs postgresql 15 and absurdctl): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8_lossy(&out.stdout);
        c.url = env
            .lines()
            .find_map(|l| l.strip_prefix("export CONTIMG_TEST_PG='"))
            .and_then(|l| l.strip_suffix('\''))
            .expect("pg-cluster printed CONTIMG_TEST_PG")
            .to_string();
        c
    }

    fn script(&self, what: &str) -> Output {
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-cluster"))
            .arg(what)
            .env("CONTIMG_PG_DIR", &self.dir)
            .env("CONTIMG_PG_PORT", self.port.to_string())
            .output()
            .expect("running scripts/pg-cluster")
    }

    fn stop_server(&self) {
        let out = self.script("stop-server");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start_server(&self) {
        let out = self.script("start-server");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls)
            .expect("connecting to the test cluster")
    }

    fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }

    /// contimg in `dir` against this cluster.
    fn cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = common::contimg();
        c.current_dir(dir)
            .env("CONTIMG_DB", &self.url)
            .env("CONTIMG_PG_SCHEMA", "night")
            .env("CONTIMG_ABSURD_QUEUE", "night")
            .env_remove(contimg::pg::CONNECT_WAIT_ENV)
            .args(args);
        c
    }

    fn json(&self, dir: &Path, args: &[&str]) -> Value {
        let out = self.cmd(dir, args).output().unwrap();
        assert!(
            out.status.success(),
            "contimg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("stdout is JSON")
    }

    fn spawn(&self, dir: &Path, args: &[&str]) -> Child {
        self.cmd(dir, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}

/// Three small simulated snapshots of 2026-01-01 ingested on the server from a new workspace that
/// also defines `pipeline`.
fn workspace(cluster: &Cluster, pipeline: &str) -> tempfile::TempDir {
    night(cluster, pipeline, 3, 128)
}

/// `images` simulated snapshots of `size`² pixels of 2026-01-01 ingested on the server from a new
/// workspace that also defines `pipeline`.
fn night(cluster: &Cluster, pipeline: &str, images: usize, size: usize) -> tempfile::TempDir {
    let ws = common::workspace();
    common::add_config(ws.path(), pipeline);
    let (n, s) = (images.to_string(), size.to_string());
    common::json_in(
        ws.path(),
        &[
            "simulate", "--out", "snaps", "--images", &n, "--size", &s, "--cell", "20",
        ],
        0,
    );
    let snaps = ws.path().join("snaps").display().to_string();
    let r = cluster.json(ws.path(), &["ingest", &snaps]);
    assert_eq!(r["added"].as_array().unwrap().len(), images, "{r}");
    ws
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ends a worker still running (asserting it is) and returns its stderr.
fn stop_worker(mut w: Child) -> String {
    assert!(
        w.try_wait().unwrap().is_none(),
        "a worker exited during the outage: {}",
        String::from_utf8_lossy(&w.wait_with_output().unwrap().stderr)
    );
    w.kill().unwrap();
    String::from_utf8_lossy(&w.wait_with_output().unwrap().stderr).into_owned()
}

const SLOT: &str = "2026-01-01T12:00Z";

#[test]
fn a_server_restart_during_a_night_s_build_is_ridden_out_by_workers_run_and_jobs() {
    let cluster = Cluster::start("ride");
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran.txt");
    // `gate` holds the night for 3 s after the plan, so that the outage falls inside it.
    let ws = workspace(
        &cluster,
        &format!(
            r#"
[pipelines.night]
window = "24h"
[[pipelines.night.jobs]]
id = "plan"
type = "mosaic_plan"
params = {{ tier = "science", start = "${{slot.start}}", end = "${{slot.end}}", name = "night" }}
[[pipelines.night.jobs]]
id = "gate"
type = "command"
depends_on = ["plan"]
params = {{ argv = ["sh", "-c", "echo gate $CONTIMG_ATTEMPT >> {}; sleep 3; echo '{{}}'"] }}
[[pipelines.night.jobs]]
id = "build"
type = "mosaic_build"
params = {{ plan_id = "${{plan.plan_id}}" }}
depends_on = ["plan", "gate"]
[[pipelines.night.jobs]]
id = "qa"
type = "mosaic_qa"
params = {{ mosaic_id = "${{build.mosaic_id}}" }}
depends_on = ["build"]
"#,
            ran.display()
        ),
    );
    let queued = cluster.json(ws.path(), &["run", "night", "--slot", SLOT, "--detach"]);
    let eid = queued["execution_id"].as_i64().unwrap();
    let workers = [
        cluster.spawn(ws.path(), &["worker"]),
        cluster.spawn(ws.path(), &["worker"]),
    ];
    // A `run` of the same slot works the execution too and waits for its end.
    let mut run = cluster.spawn(ws.path(), &["run", "night", "--slot", SLOT]);
    wait_for("gate started", Duration::from_secs(60), || {
        lines(&ran).contains(&"gate 1".to_string())
    });
    cluster.stop_server();
    let down = Instant::now();
    // A command started while the server is down fails at once by default, and waits for it
    // (with back-off, up to CONTIMG_PG_CONNECT_WAIT seconds) as a job's child process does.
    let at_once = cluster
        .cmd(ws.path(), &["status", "--json"])
        .output()
        .unwrap();
    assert!(!at_once.status.success());
    let patient = cluster
        .cmd(ws.path(), &["status", &eid.to_string(), "--json"])
        .env(contimg::pg::CONNECT_WAIT_ENV, "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(6).saturating_sub(down.elapsed()));
    cluster.start_server();
    let outage = down.elapsed();
    let patient = patient.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&patient.stderr);
    assert!(patient.status.success(), "{said}");
    assert_eq!(
        said.matches("trying again for up to 60 s").count(),
        1,
        "{said}"
    );
    // `run` sees the execution to its end, with no hand and no retry.
    let t = Instant::now();
    let run = loop {
        if run.try_wait().unwrap().is_some() || t.elapsed() > Duration::from_secs(120) {
            break run.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let run_err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "run: {run_err}");
    let m: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(m["status"], "completed", "{m}");
    for j in ["plan", "gate", "build", "qa"] {
        assert_eq!(common::job(&m, j)["attempts"], 1, "{j}: {m}");
    }
    assert_eq!(cluster.count("SELECT count(*) FROM night.mosaics"), 1);
    assert_eq!(
        cluster.count("SELECT count(*) FROM night.pipeline_executions"),
        1
    );
    // Both workers are alive; each said once that the connection was lost and once that it is back.
    for w in workers {
        let err = stop_worker(w);
        assert_eq!(
            err.matches("reconnecting (trying every").count(),
            1,
            "{err}"
        );
        assert_eq!(err.matches("reconnected to PostgreSQL").count(), 1, "{err}");
        assert!(!err.contains(&cluster.url), "the password is masked: {err}");
    }
    eprintln!("outage {:.1} s", outage.as_secs_f64());
}

#[test]
fn an_outage_longer_than_the_lease_discards_the_stale_results_and_runs_the_jobs_again() {
    let cluster = Cluster::start("lease");
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran.txt");
    let r = ran.display();
    // `quick` ends during the outage (its result is stale by the time the server is back); `slow`
    // is still running then (its worker kills it). Each runs again, at once.
    let ws = workspace(
        &cluster,
        &format!(
            r#"
[pipelines.night]
window = "24h"
max_retries = 2
retry = {{ kind = "fixed", delay_s = 0 }}
[[pipelines.night.jobs]]
id = "quick"
type = "command"
params = {{ argv = ["sh", "-c", "echo quick $CONTIMG_ATTEMPT >> {r}; [ $CONTIMG_ATTEMPT = 1 ] && sleep 1; echo quick-done $CONTIMG_ATTEMPT >> {r}; echo '{{\"attempt\": '$CONTIMG_ATTEMPT'}}'"] }}
[[pipelines.night.jobs]]
id = "slow"
type = "command"
params = {{ argv = ["sh", "-c", "echo slow $CONTIMG_ATTEMPT >> {r}; [ $CONTIMG_ATTEMPT = 1 ] && sleep 30; echo slow-done $CONTIMG_ATTEMPT >> {r}; echo '{{\"attempt\": '$CONTIMG_ATTEMPT'}}'"] }}
[[pipelines.night.jobs]]
id = "plan"
type = "mosaic_plan"
depends_on = ["quick", "slow"]
params = {{ tier = "science", start = "${{slot.start}}", end = "${{slot.end}}", name = "night" }}
[[pipelines.night.jobs]]
id = "build"
type = "mosaic_build"
params = {{ plan_id = "${{plan.plan_id}}" }}
depends_on = ["plan"]
"#
        ),
    );
    let queued = cluster.json(ws.path(), &["run", "night", "--slot", SLOT, "--detach"]);
    let eid = queued["execution_id"].as_i64().unwrap().to_string();
    let workers = [
        cluster.spawn(ws.path(), &["worker", "--lease", "3s"]),
        cluster.spawn(ws.path(), &["worker", "--lease", "3s"]),
    ];
    wait_for("both jobs started", Duration::from_secs(60), || {
        let l = lines(&ran);
        l.contains(&"quick 1".to_string()) && l.contains(&"slow 1".to_string())
    });
    cluster.stop_server();
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    cluster.start_server();
    let outage = down.elapsed();
    let t = Instant::now();
    let m = loop {
        let m = cluster.json(ws.path(), &["status", &eid, "--json"]);
        // `interrupted`: the workers' claims expired in the outage and are being taken over.
        let waiting = m["status"] == "running" || m["status"] == "interrupted";
        if !waiting || t.elapsed() > Duration::from_secs(90) {
            break m;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(m["status"], "completed", "{m}");
    for j in ["quick", "slow"] {
        let job = common::job(&m, j);
        assert_eq!(job["attempts"], 2, "{j}: {m}");
        assert_eq!(job["outputs"]["attempt"], 2, "{j}: {m}");
    }
    let l = lines(&ran);
    // quick's first attempt ended, but its result was not recorded; slow's was killed.
    assert!(l.contains(&"quick-done 1".to_string()), "{l:?}");
    assert!(!l.contains(&"slow-done 1".to_string()), "{l:?}");
    assert_eq!(
        l.iter().filter(|x| x.starts_with("quick ")).count(),
        2,
        "{l:?}"
    );
    assert_eq!(
        l.iter().filter(|x| x.starts_with("slow ")).count(),
        2,
        "{l:?}"
    );
    assert_eq!(cluster.count("SELECT count(*) FROM night.mosaics"), 1);
    // Both expired claims were handed on: each job's first run ended as an interruption, by a
    // worker's sweep (`contimg.Interrupted`, no retry spent) or by ABSURD's own claim timeout,
    // whichever came first.
    let reasons: Vec<String> = cluster
        .client()
        .query(
            "SELECT failure_reason->>'name' FROM absurd.\"r_night\" WHERE state = 'failed'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|r| r == "$ClaimTimeout" || r == "contimg.Interrupted"),
        "{reasons:?}"
    );
    let mut said = String::new();
    for w in workers {
        said.push_str(&stop_worker(w));
    }
    assert_eq!(said.matches("its result is discarded").count(), 1, "{said}");
    assert!(
        said.contains("its claim expired while PostgreSQL was unreachable"),
        "{said}"
    );
    eprintln!("outage {:.1} s", outage.as_secs_f64());
}

/// The acceptance case of the fleet: PostgreSQL restarted three times (5 s each) while a night's
/// pipeline is built by two workers, each in a directory of its own (one started while the server
/// is down), queued by `run --detach`, with the pipeline's default `max_retries`. The night
/// completes with no hand: both workers alive, one execution, one mosaic — written where the
/// execution says (the workspace that started it), not into a worker's directory — and no job
/// failed.
#[test]
fn three_restarts_during_a_night_s_build_complete_it_with_no_hand_and_products_where_recorded() {
    let cluster = Cluster::start("thrice");
    let ws = night(
        &cluster,
        r#"
[pipelines.night]
window = "24h"
[[pipelines.night.jobs]]
id = "plan"
type = "mosaic_plan"
params = { tier = "science", start = "${slot.start}", end = "${slot.end}", name = "night" }
[[pipelines.night.jobs]]
id = "build"
type = "mosaic_build"
params = { plan_id = "${plan.plan_id}" }
depends_on = ["plan"]
[[pipelines.night.jobs]]
id = "qa"
type = "mosaic_qa"
params = { mosaic_id = "${build.mosaic_id}" }
depends_on = ["build"]
"#,
        16,
        1024,
    );
    // Each worker in a workspace of its own, elsewhere: the products must not land there.
    let elsewhere = [common::workspace(), common::workspace()];
    let queued = cluster.json(ws.path(), &["run", "night", "--slot", SLOT, "--detach"]);
    let eid = queued["execution_id"].as_i64().unwrap().to_string();
    let mut workers = vec![cluster.spawn(elsewhere[0].path(), &["worker"])];
    // The first outage begins as the build starts, so the build's own process meets it.
    wait_for("the build started", Duration::from_secs(120), || {
        let m = cluster.json(ws.path(), &["status", &eid, "--json"]);
        common::job(&m, "build")["state"] != "pending"
    });
    let mut outages = Vec::new();
    for round in 0..3 {
        cluster.stop_server();
        let down = Instant::now();
        if round == 0 {
            // A worker started while the server is down waits for it.
            workers.push(cluster.spawn(elsewhere[1].path(), &["worker"]));
        }
        std::thread::sleep(Duration::from_secs(5));
        cluster.start_server();
        outages.push(down.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_millis(1500));
    }
    let t = Instant::now();
    let m = loop {
        let m = cluster.json(ws.path(), &["status", &eid, "--json"]);
        let waiting = m["status"] == "running" || m["status"] == "interrupted";
        if !waiting || t.elapsed() > Duration::from_secs(180) {
            break m;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(m["status"], "completed", "{m}");
    for j in ["plan", "build", "qa"] {
        assert_eq!(common::job(&m, j)["state"], "completed", "{j}: {m}");
    }
    assert_eq!(cluster.count("SELECT count(*) FROM night.mosaics"), 1);
    assert_eq!(
        cluster.count("SELECT count(*) FROM night.pipeline_executions"),
        1
    );
    // No attempt failed: every run that did not complete was an interruption.
    let failed: Vec<String> = cluster
        .client()
        .query(
            "SELECT coalesce(failure_reason->>'name', '') || ': ' || coalesce(failure_reason->>'message', '') \
             FROM absurd.\"r_night\" WHERE state = 'failed'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        failed
            .iter()
            .all(|r| r.starts_with("$ClaimTimeout") || r.starts_with("contimg.Interrupted")),
        "{failed:?}"
    );
    // The products are where the execution says: the mosaics directory of the workspace that
    // started it.
    let mosaic = PathBuf::from(
        common::job(&m, "build")["outputs"]["path"]
            .as_str()
            .expect("the build's path"),
    );
    let products = std::fs::canonicalize(ws.path().join("mosaics")).unwrap();
    assert_eq!(
        std::fs::canonicalize(mosaic.parent().unwrap()).unwrap(),
        products,
        "{m}"
    );
    assert!(mosaic.is_file());
    for w in &elsewhere {
        let theirs = std::fs::read_dir(w.path().join("mosaics"))
            .map(Iterator::count)
            .unwrap_or(0);
        assert_eq!(theirs, 0, "nothing written in a worker's own workspace");
    }
    let mut said = String::new();
    for w in workers {
        said.push_str(&stop_worker(w));
    }
    assert!(!said.contains(&cluster.url), "the password is masked");
    eprintln!("outages {outages:?} s; workers said:\n{said}");
}

/// A worker that cannot write to the products directory recorded with the execution refuses the
/// build with the reason (naming the directory), instead of writing into its own workspace.
#[test]
fn a_worker_that_cannot_reach_the_recorded_products_directory_refuses_the_build() {
    let cluster = Cluster::start("reach");
    let ws = workspace(
        &cluster,
        r#"
[pipelines.night]
window = "24h"
max_retries = 0
retry = { kind = "none" }
[[pipelines.night.jobs]]
id = "plan"
type = "mosaic_plan"
params = { tier = "science", start = "${slot.start}", end = "${slot.end}", name = "night" }
[[pipelines.night.jobs]]
id = "build"
type = "mosaic_build"
params = { plan_id = "${plan.plan_id}" }
depends_on = ["plan"]
"#,
    );
    let queued = cluster.json(ws.path(), &["run", "night", "--slot", SLOT, "--detach"]);
    let eid = queued["execution_id"].as_i64().unwrap().to_string();
    // As if the shared filesystem were not mounted on the worker's machine.
    let products = ws.path().join("mosaics");
    std::fs::remove_dir_all(&products).unwrap();
    let elsewhere = common::workspace();
    let out = cluster
        .cmd(elsewhere.path(), &["worker", "--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = cluster.json(ws.path(), &["status", &eid, "--json"]);
    assert_eq!(m["status"], "failed", "{m}");
    let err = common::job(&m, "build")["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        err.contains("cannot write the execution's products")
            && err.contains(&products.display().to_string()),
        "{err}"
    );
    assert!(
        !products.exists(),
        "the directory is not made on the worker"
    );
    let theirs = std::fs::read_dir(elsewhere.path().join("mosaics"))
        .map(Iterator::count)
        .unwrap_or(0);
    assert_eq!(theirs, 0);
}
