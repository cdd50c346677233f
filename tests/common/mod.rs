//! Helpers shared by the integration tests: the real binary, temporary workspaces, python.
#![allow(dead_code)]

pub mod api;
pub mod hook;
pub mod realdata;

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The contimg binary under test, with a clean environment for contimg's own variables.
pub fn contimg() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_contimg"));
    c.env_remove("CONTIMG_WORKSPACE").env_remove("CONTIMG_DB");
    c.stdin(Stdio::null());
    c
}

/// Runs contimg with args in `dir`, returning the output.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    contimg()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running contimg")
}

/// Runs contimg and parses stdout as JSON, asserting the exit code.
pub fn json_in(dir: &Path, args: &[&str], code: i32) -> serde_json::Value {
    let out = run_in(dir, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "contimg {args:?}: stdout={} stderr={}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout of {args:?} is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A new workspace in a temporary directory.
pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    json_in(dir.path(), &["init", "."], 0);
    dir
}

/// The python interpreter with astropy (CONTIMG_PYTHON, default python3).
pub fn python() -> String {
    std::env::var("CONTIMG_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs a python script with astropy and returns its stdout parsed as JSON. Panics with a clear
/// message when python or astropy is missing: these tests must not pass silently.
pub fn python_json(script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); install Python 3 with astropy (see .ci/run)",
                python()
            )
        });
    assert!(
        out.status.success(),
        "python failed (is astropy installed? see .ci/run): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

/// Appends TOML to a workspace's contimg.toml (a pipeline, a tier, a setting).
pub fn add_config(ws: &Path, toml: &str) {
    let p = ws.join("contimg.toml");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push('\n');
    text.push_str(toml);
    std::fs::write(&p, text).unwrap();
}

/// The job `id` of an execution manifest.
pub fn job<'a>(m: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    m["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id)
        .unwrap_or_else(|| panic!("no job {id} in {m}"))
}

/// Whether a process exists and is not a zombie (the library's own check).
pub fn pid_alive(pid: i32) -> bool {
    contimg::fsutil::pid_alive(i64::from(pid))
}
