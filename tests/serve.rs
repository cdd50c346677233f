//! `contimg serve` against the real binary and a real workspace: a run requested over HTTP is
//! admitted (with the write token only), worked by the embedded worker to `completed`, its mosaic
//! downloads and opens in astropy, the status page shows it in headless Chromium; hostile requests
//! get clear 4xx and change nothing; serving beyond the loopback needs a token; a POST while
//! another process holds the SQLite write lock is answered within a second.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::api::{Server, agent, get, post, reply};
use common::{contimg, json_in, python, workspace};
use serde_json::{Value, json};

const TOKEN: &str = "test-write-token-0123456789";

/// Three small simulated snapshots on 2026-01-01 00:00–00:10 UTC, ingested.
fn night(ws: &Path) {
    json_in(
        ws,
        &[
            "simulate", "--out", "snaps", "--images", "3", "--size", "128", "--cell", "20",
        ],
        0,
    );
    let mut args = vec!["ingest".to_string()];
    for e in std::fs::read_dir(ws.join("snaps")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "fits") {
            args.push(p.display().to_string());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    json_in(ws, &args, 0);
}

fn on_demand() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "pipeline": "on_demand_mosaic",
        "params": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"}
    }))
    .unwrap()
}

fn executions(s: &Server) -> Vec<Value> {
    let r = get(s, "/api/v1/executions?limit=500", None);
    assert_eq!(r.status, 200);
    r.json()["items"].as_array().unwrap().clone()
}

/// Polls an execution until it is no longer running (at most `secs`).
fn wait_done(s: &Server, eid: i64, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = get(s, &format!("/api/v1/executions/{eid}"), None);
        assert_eq!(r.status, 200);
        let m = r.json();
        if m["status"] != "running" {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "execution {eid} still running: {m}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_run_requested_over_http_completes_and_its_mosaic_downloads() {
    let ws = workspace();
    night(ws.path());
    let s = Server::start(ws.path(), &[], &[("CONTIMG_API_TOKEN", TOKEN)]);
    assert_eq!(get(&s, "/healthz", None).status, 200);

    let r = post(&s, "/api/v1/runs", None, None, &on_demand());
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
    assert!(executions(&s).is_empty(), "a refused POST created nothing");

    let r = post(&s, "/api/v1/runs", Some(TOKEN), Some("req-1"), &on_demand());
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let m = r.json();
    assert_eq!(m["schema"], "contimg.execution/1");
    let eid = m["execution_id"].as_i64().unwrap();
    assert_eq!(m["url"], format!("/api/v1/executions/{eid}"));
    // The same Idempotency-Key gives the same execution.
    let again = post(&s, "/api/v1/runs", Some(TOKEN), Some("req-1"), &on_demand());
    assert_eq!(again.status, 202);
    assert_eq!(again.json()["execution_id"], eid);
    assert_eq!(again.json()["existing"], true);

    let m = wait_done(&s, eid, 180);
    assert_eq!(m["status"], "completed", "{m}");
    let verdict = m["qa_verdict"].as_str().expect("a QA verdict").to_string();
    let qa_job = m["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == "qa")
        .unwrap();
    assert!(qa_job["log_tail"].is_string(), "{qa_job}");
    assert_eq!(executions(&s).len(), 1);

    let mosaics = get(&s, "/api/v1/mosaics", None).json();
    let first = &mosaics["items"][0];
    assert_eq!(first["schema"], "contimg.mosaic-record/1");
    let mid = first["mosaic_id"].as_i64().unwrap();
    assert_eq!(first["qa_verdict"], verdict.as_str());
    let qa = get(&s, &format!("/api/v1/mosaics/{mid}/qa"), None);
    assert_eq!(qa.status, 200);
    assert_eq!(qa.json()["schema"], "contimg.qa/1");

    let fits = get(&s, &format!("/api/v1/mosaics/{mid}/fits"), None);
    assert_eq!(fits.status, 200);
    assert_eq!(fits.content_type, "application/fits");
    let path = ws.path().join("downloaded.fits");
    std::fs::write(&path, &fits.body).unwrap();
    let out = Command::new(python())
        .args([
            "-c",
            "import sys, json\nfrom astropy.io import fits\nh = fits.open(sys.argv[1])\n\
             print(json.dumps({'naxis': h[0].header['NAXIS'], 'shape': list(h[0].data.shape)}))",
        ])
        .arg(&path)
        .output()
        .expect("python with astropy (see scripts/test)");
    assert!(
        out.status.success(),
        "astropy could not open the download: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let facts: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(facts["naxis"].as_i64().unwrap() >= 2, "{facts}");
    for (product, ctype) in [
        ("weight", "application/fits"),
        ("noise", "application/fits"),
        ("rms", "application/fits"),
        ("quicklook.png", "image/png"),
    ] {
        let r = get(&s, &format!("/api/v1/mosaics/{mid}/{product}"), None);
        assert_eq!(r.status, 200, "{product}");
        assert_eq!(r.content_type, ctype, "{product}");
    }
    let images = get(&s, "/api/v1/images?since=2026-01-01&limit=2", None).json();
    assert_eq!(images["items"].as_array().unwrap().len(), 2);
    assert!(images["next"].is_string(), "{images}");

    page_in_chromium(&s, ws.path(), eid, &verdict);
    assert_eq!(s.stop(), Some(0), "SIGTERM stops serve cleanly");

    // The key is recorded with the execution: after a restart of the server, the same key still
    // gives the same execution (its slot "now" long past), and the key with another request is 422.
    let s = Server::start(ws.path(), &[], &[("CONTIMG_API_TOKEN", TOKEN)]);
    let other = serde_json::to_vec(&json!({
        "pipeline": "on_demand_mosaic",
        "params": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:30:00Z"}
    }))
    .unwrap();
    // This server has not seen the key: the database knows it.
    let r = post(&s, "/api/v1/runs", Some(TOKEN), Some("req-1"), &other);
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    let msg = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        msg.contains("\"req-1\"") && msg.contains("another request"),
        "{msg}"
    );
    // The same key and request, twice: the same execution each time.
    for _ in 0..2 {
        let again = post(&s, "/api/v1/runs", Some(TOKEN), Some("req-1"), &on_demand());
        assert_eq!(
            again.status,
            202,
            "{}",
            String::from_utf8_lossy(&again.body)
        );
        assert_eq!(again.json()["execution_id"], eid);
        assert_eq!(again.json()["existing"], true);
    }
    assert_eq!(executions(&s).len(), 1, "a reused key created nothing");
    assert_eq!(s.stop(), Some(0));
}

/// The status page in headless Chromium (Debian's `chromium`, which scripts/test installs): a
/// screenshot, and the DOM shows the execution and its verdict.
fn page_in_chromium(s: &Server, dir: &Path, eid: i64, verdict: &str) {
    let Some(chromium) = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
    else {
        common::realdata::skip(
            "serve: the status page in headless Chromium",
            "no chromium (Debian: apt-get install chromium; scripts/test installs it as root)",
        );
        return;
    };
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1200,1400",
    ];
    let shot = dir.join("status.png");
    let out = Command::new(chromium)
        .args(common)
        .arg(format!("--screenshot={}", shot.display()))
        .arg(s.url("/"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
    let out = Command::new(chromium)
        .args(common)
        .arg("--dump-dom")
        .arg(s.url("/"))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains(&format!("href=\"/api/v1/executions/{eid}\">{eid}</a>")),
        "{dom}"
    );
    assert!(dom.contains(&format!("QA {verdict}")), "{dom}");
    assert!(
        dom.contains("on_demand_mosaic") && dom.contains("completed"),
        "{dom}"
    );
    assert!(dom.contains("http-equiv=\"refresh\""), "{dom}");
    assert!(dom.contains("/quicklook.png"), "{dom}");
}

#[test]
fn hostile_requests_get_a_clear_4xx_and_change_nothing() {
    let ws = workspace();
    let s = Server::start(
        ws.path(),
        &["--workers", "0"],
        &[("CONTIMG_API_TOKEN", TOKEN)],
    );
    let huge = vec![b' '; 200 * 1024];
    let posts: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        ("/api/v1/runs", Some(TOKEN), b"{not json".to_vec(), 400),
        ("/api/v1/runs", Some(TOKEN), huge, 413),
        ("/api/v1/runs", Some("wrong-token"), on_demand(), 401),
        ("/api/v1/runs", Some(TOKEN), br#"{"pipeline": "no_such"}"#.to_vec(), 404),
        (
            "/api/v1/runs",
            Some(TOKEN),
            br#"{"pipeline": "nightly_mosaic", "slot": "2026-01-01"}"#.to_vec(),
            403,
        ),
        (
            "/api/v1/runs",
            Some(TOKEN),
            br#"{"pipeline": "on_demand_mosaic", "slot": "last tuesday", "params": {"start": "2026-01-01", "end": "2026-01-02"}}"#.to_vec(),
            400,
        ),
        (
            "/api/v1/runs",
            Some(TOKEN),
            br#"{"pipeline": "on_demand_mosaic", "params": {"start": "2026-01-01"}}"#.to_vec(),
            400,
        ),
        (
            "/api/v1/runs",
            Some(TOKEN),
            br#"{"pipeline": "on_demand_mosaic", "params": {"start": "2026-01-01", "end": "2026-01-02", "evil": "x"}}"#.to_vec(),
            400,
        ),
        (
            "/api/v1/runs",
            Some(TOKEN),
            br#"{"pipeline": "on_demand_mosaic", "extra": 1}"#.to_vec(),
            400,
        ),
        ("/api/v1/executions/999/cancel", Some(TOKEN), vec![], 404),
        ("/api/v1/executions/999/retry", Some(TOKEN), vec![], 404),
        ("/api/v1/executions/../../x/cancel", Some(TOKEN), vec![], 404),
    ];
    for (path, token, body, want) in &posts {
        let r = post(&s, path, *token, None, body);
        assert_eq!(
            r.status,
            *want,
            "POST {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        assert_eq!(v["schema"], "contimg.error/1", "{v}");
        assert!(!v["error"].as_str().unwrap().is_empty());
    }
    let gets: Vec<(&str, u16)> = vec![
        ("/api/v1/executions/999", 404),
        ("/api/v1/executions/abc", 400),
        ("/api/v1/executions/-1", 400),
        ("/api/v1/executions?status=exploded", 400),
        ("/api/v1/executions?limit=100000", 400),
        ("/api/v1/executions?since=yesterday", 400),
        ("/api/v1/executions?bogus=1", 400),
        ("/api/v1/mosaics/1", 404),
        ("/api/v1/mosaics/1/fits", 404),
        ("/api/v1/mosaics/1/..%2F..%2Fcontimg.toml", 404),
        ("/api/v1/mosaics/..%2F..%2Fetc%2Fpasswd/fits", 400),
        ("/api/v1/mosaics/%2e%2e/fits", 400),
        ("/api/v1/images?since=not-a-time", 400),
        ("/etc/passwd", 404),
    ];
    for (path, want) in &gets {
        let r = get(&s, path, None);
        assert_eq!(
            r.status,
            *want,
            "GET {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["schema"], "contimg.error/1");
    }
    // A foreign Host header (DNS rebinding) is refused.
    let r = reply(
        agent()
            .get(&s.url("/api/v1/executions"))
            .header("Host", "evil.example:8750")
            .call(),
    );
    assert_eq!(r.status, 403);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("allowed_hosts")
    );
    // Nothing changed, and no CORS header is ever sent.
    assert!(executions(&s).is_empty());
    let r = agent()
        .get(&s.url("/api/v1/executions"))
        .header("Origin", "http://evil.example")
        .call()
        .unwrap();
    assert!(
        r.headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-")),
        "{:?}",
        r.headers()
    );
    assert_eq!(s.stop(), Some(0));
}

#[test]
fn serving_beyond_the_loopback_needs_tokens() {
    let ws = workspace();
    let out = contimg()
        .current_dir(ws.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("CONTIMG_API_TOKEN")
        .env_remove("CONTIMG_API_READ_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without a token"), "{err}");

    // With tokens from files: reads need the read (or write) token, writes the write token.
    std::fs::write(ws.path().join("api.token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(ws.path().join("read.token"), "read-token-abcdef\n").unwrap();
    let cfg = ws.path().join("contimg.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\ntoken_file = \"\"", "\ntoken_file = \"api.token\"")
        .replace("read_token_file = \"\"", "read_token_file = \"read.token\"");
    std::fs::write(&cfg, text).unwrap();
    let s = Server::start_on(ws.path(), "0.0.0.0:0", &["--workers", "0"], &[]);
    assert_eq!(get(&s, "/api/v1/executions", None).status, 401);
    assert_eq!(get(&s, "/", None).status, 401);
    assert_eq!(get(&s, "/api/v1/executions", Some("nope")).status, 401);
    assert_eq!(
        get(&s, "/api/v1/executions", Some("read-token-abcdef")).status,
        200
    );
    assert_eq!(get(&s, "/api/v1/executions", Some(TOKEN)).status, 200);
    assert_eq!(get(&s, "/healthz", None).status, 200);
    let r = post(
        &s,
        "/api/v1/runs",
        Some("read-token-abcdef"),
        None,
        &on_demand(),
    );
    assert_eq!(r.status, 401, "the read token cannot write");
    let r = post(&s, "/api/v1/runs", Some(TOKEN), None, &on_demand());
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    // No token in any response.
    let body = get(&s, "/api/v1/executions/1", Some(TOKEN)).body;
    assert!(!String::from_utf8_lossy(&body).contains(TOKEN));
    assert_eq!(s.stop(), Some(0));
}

#[test]
fn a_post_while_another_process_holds_the_sqlite_write_lock_is_answered_within_a_second() {
    let ws = workspace();
    let s = Server::start(
        ws.path(),
        &["--workers", "0"],
        &[("CONTIMG_API_TOKEN", TOKEN)],
    );
    let conn = rusqlite::Connection::open(ws.path().join("pipeline.sqlite3")).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let t0 = Instant::now();
    let r = post(
        &s,
        "/api/v1/runs",
        Some(TOKEN),
        Some("locked-1"),
        &on_demand(),
    );
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    assert!(
        r.status == 503 || r.status == 202,
        "{} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    if r.status == 503 {
        assert!(r.retry_after.is_some(), "503 carries Retry-After");
    }
    // Reads go on while the write waits.
    assert_eq!(get(&s, "/api/v1/executions", None).status, 200);
    conn.execute_batch("COMMIT").unwrap();
    // A retry with the same key gets the one execution the held request made.
    let deadline = Instant::now() + Duration::from_secs(30);
    let eid = loop {
        let r = post(
            &s,
            "/api/v1/runs",
            Some(TOKEN),
            Some("locked-1"),
            &on_demand(),
        );
        if r.status == 202 {
            break r.json()["execution_id"].as_i64().unwrap();
        }
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(200));
    };
    let all = executions(&s);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["execution_id"], eid);
    assert_eq!(s.stop(), Some(0));
}
