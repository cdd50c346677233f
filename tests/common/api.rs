//! A running `contimg serve` for the tests, and HTTP calls to it (ureq, every status returned).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::contimg;

/// A running `contimg serve` and the address it listens on.
pub struct Server {
    pub child: Child,
    pub base: String,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    pub fn start(ws: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_on(ws, "127.0.0.1:0", extra, env)
    }

    // The child is waited for by `stop` or by `Drop`.
    #[allow(clippy::zombie_processes)]
    pub fn start_on(ws: &Path, listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = contimg();
        cmd.current_dir(ws)
            .args(["serve", "--listen", listen])
            .args(extra)
            .env_remove("CONTIMG_API_TOKEN")
            .env_remove("CONTIMG_API_READ_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting contimg serve");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("serve: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("contimg serve printed no 'listening on' line");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap();
                let addr = addr.replace("0.0.0.0:", "127.0.0.1:");
                return Server {
                    child,
                    base: format!("http://{addr}"),
                    stderr: rx,
                };
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM; returns the exit code once it has stopped (at most 20 s).
    pub fn stop(mut self) -> Option<i32> {
        signal(self.child.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                while self.stderr.try_recv().is_ok() {}
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("contimg serve did not stop within 20 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// A response: status, headers we look at, body.
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }
}

pub fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("HTTP request");
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = h("content-type").unwrap_or_default();
    let retry_after = h("retry-after");
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(100 << 20)
        .read_to_vec()
        .unwrap();
    Reply {
        status,
        content_type,
        retry_after,
        body,
    }
}

pub fn get(s: &Server, path: &str, token: Option<&str>) -> Reply {
    let mut req = agent().get(&s.url(path));
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    reply(req.call())
}

pub fn post(s: &Server, path: &str, token: Option<&str>, key: Option<&str>, body: &[u8]) -> Reply {
    let mut req = agent()
        .post(&s.url(path))
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    reply(req.send(body))
}
