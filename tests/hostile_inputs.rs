//! The "inputs" half of the hostile suite: what comes in (FITS files, special files, dates,
//! units, manifests, pipeline files, an empty database) and what is written (full disks, temp
//! files of killed writers, file modes), through the real binary. Every hostile case asserts its
//! exit code, its message, and that the database is exactly as it was before.

// A test or example reports on stdout, which its harness captures; only the binary is held to
// "stdout carries manifests only".
#![allow(clippy::print_stdout)]
// Unsafe: wait4(2) for a child's peak memory, kill(2) and mkfifo(2) through libc.
#![allow(unsafe_code)]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{contimg, json_in, run_in, workspace};
use contimg::fits::header::{Header, Value};

/// Everything the data tables hold, one line per row, to compare before and after.
fn db_dump(ws: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(ws.join("pipeline.sqlite3")).unwrap();
    let mut out = vec![];
    for table in ["images", "mosaic_plans", "mosaics", "mosaic_qa"] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY id"))
            .unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect();
                Ok(format!("{table}: {}", cells.join(" | ")))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

/// Runs contimg, but fails (instead of hanging the suite) if it has not finished in 60 s, and
/// returns its peak resident memory in KiB as well.
// The child is reaped by wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_bounded(dir: &Path, args: &[&str]) -> (Output, i64) {
    let mut child = contimg()
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_t = std::thread::spawn(move || {
        let mut v = vec![];
        std::io::Read::read_to_end(&mut so, &mut v).unwrap();
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = vec![];
        std::io::Read::read_to_end(&mut se, &mut v).unwrap();
        v
    });
    let started = Instant::now();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: our own child; WNOHANG polls.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("contimg {args:?} hung (killed after 60 s)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    let output = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    };
    assert_eq!(output.status.code(), code);
    (output, usage.ru_maxrss)
}

/// A header for a small SIN image at RA 150, Dec 30 with the given extra cards.
fn header(extra: &[(&str, Value)]) -> Header {
    let mut h = Header::new();
    let base = [
        ("CTYPE1", Value::Str("RA---SIN".into())),
        ("CTYPE2", Value::Str("DEC--SIN".into())),
        ("CRVAL1", Value::Float(150.0)),
        ("CRVAL2", Value::Float(30.0)),
        ("CRPIX1", Value::Float(17.0)),
        ("CRPIX2", Value::Float(17.0)),
        ("CDELT1", Value::Float(-0.01)),
        ("CDELT2", Value::Float(0.01)),
        ("BUNIT", Value::Str("JY/BEAM".into())),
        ("BMAJ", Value::Float(0.01)),
        ("BMIN", Value::Float(0.01)),
        ("BPA", Value::Float(0.0)),
    ];
    for (k, v) in base.iter().chain(extra) {
        h.set(k, v.clone(), "");
    }
    h
}

fn write_image(path: &Path, extra: &[(&str, Value)]) {
    let n = 32;
    let data: Vec<f32> = (0..n * n).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
    contimg::fits::write::write_image(path, &[n, n], &data, &header(extra)).unwrap();
}

/// A primary header (as FITS bytes, padded) declaring `nx` x `ny` pixels of BITPIX -32.
fn raw_header(nx: u64, ny: u64) -> Vec<u8> {
    let cards = [
        "SIMPLE  =                    T".to_string(),
        "BITPIX  =                  -32".to_string(),
        "NAXIS   =                    2".to_string(),
        format!("NAXIS1  = {nx:>20}"),
        format!("NAXIS2  = {ny:>20}"),
        "CTYPE1  = 'RA---SIN'".to_string(),
        "CTYPE2  = 'DEC--SIN'".to_string(),
        "CRVAL1  =                150.0".to_string(),
        "CRVAL2  =                 30.0".to_string(),
        "CDELT1  =                -0.01".to_string(),
        "CDELT2  =                 0.01".to_string(),
        "END".to_string(),
    ];
    let mut out: Vec<u8> = cards
        .iter()
        .flat_map(|c| format!("{c:<80}").into_bytes())
        .collect();
    out.resize(out.len().div_ceil(2880) * 2880, b' ');
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Ingests one hostile path and checks exit code, message words and an unchanged database.
fn refused(ws: &Path, path: &Path, words: &[&str]) -> i64 {
    let before = db_dump(ws);
    let (out, rss_kib) = run_bounded(ws, &["ingest", path.to_str().unwrap()]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{}: {err}", path.display());
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = m["failed"][0]["reason"].as_str().unwrap_or("").to_string();
    for w in words {
        assert!(
            reason.contains(w) && err.contains(w),
            "{}: expected {w:?} in the reason and on stderr: {reason} / {err}",
            path.display()
        );
    }
    assert_eq!(
        db_dump(ws),
        before,
        "{}: the database changed",
        path.display()
    );
    rss_kib
}

#[test]
fn hostile_fits_files_are_refused_at_once_with_bounded_memory_and_nothing_written() {
    let ws = workspace();
    let w = ws.path();
    write_image(
        &w.join("good.fits"),
        &[("DATE-OBS", Value::Str("2026-01-01T00:00:00".into()))],
    );
    json_in(w, &["ingest", "good.fits"], 0);
    let h = w.join("hostile");
    std::fs::create_dir(&h).unwrap();
    let mut tried = 0;
    let mut peak_mib = 0;

    // Headers claiming far more pixels than the file holds, plain and gzipped.
    let mut huge = raw_header(200_000, 200_000);
    huge.extend(vec![0u8; 2880]);
    std::fs::write(h.join("huge.fits"), &huge).unwrap();
    std::fs::write(h.join("huge.fits.gz"), gzip(&huge)).unwrap();
    // A gz bomb of a few hundred bytes claiming 20000 x 20000 pixels.
    let mut bomb = raw_header(20_000, 20_000);
    bomb.extend(vec![0u8; 400_000]);
    let bomb = gzip(&bomb);
    assert!(bomb.len() < 1000, "the bomb is {} bytes", bomb.len());
    std::fs::write(h.join("bomb.fits.gz"), &bomb).unwrap();
    for (name, words) in [
        ("huge.fits", &["header needs"][..]),
        ("huge.fits.gz", &["more than the limit"][..]),
        ("bomb.fits.gz", &["header needs"][..]),
    ] {
        tried += 1;
        let rss = refused(w, &h.join(name), words);
        peak_mib = peak_mib.max(rss / 1024);
    }
    eprintln!("peak memory of a hostile ingest: {peak_mib} MiB");
    assert!(
        peak_mib < 300,
        "peak memory {peak_mib} MiB for a hostile header"
    );

    // Special files: a FIFO (given, and found in a directory) and a symlink to /dev/zero.
    let fifo = h.join("fifo.fits");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    std::os::unix::fs::symlink("/dev/zero", h.join("zero.fits")).unwrap();
    tried += 2;
    refused(w, &fifo, &["FIFO", "only regular files"]);
    refused(w, &h.join("zero.fits"), &["character device"]);
    tried += 1;
    let before = db_dump(w);
    let (out, _) = run_bounded(w, &["ingest", "hostile"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> = m["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(
        failed.iter().any(|p| p.ends_with("fifo.fits")),
        "{failed:?}"
    );
    assert_eq!(db_dump(w), before);

    // A directory named like a FITS file is a directory: walked, nothing read.
    tried += 1;
    std::fs::create_dir(w.join("dir.fits")).unwrap();
    let m = json_in(w, &["ingest", "dir.fits"], 0);
    assert_eq!(m["added"].as_array().unwrap().len(), 0);
    assert_eq!(db_dump(w), before);

    // The ceiling is configurable: 1 MiB refuses a 4 MB image whose gzip is a few kB.
    tried += 1;
    let cfg = std::fs::read_to_string(w.join("contimg.toml")).unwrap();
    std::fs::write(
        w.join("contimg.toml"),
        cfg.replace("max_image_mb = 4096", "max_image_mb = 1"),
    )
    .unwrap();
    let mut big = raw_header(1000, 1000);
    big.extend(vec![0u8; 4_000_000usize.div_ceil(2880) * 2880]);
    std::fs::write(h.join("big.fits.gz"), gzip(&big)).unwrap();
    refused(
        w,
        &h.join("big.fits.gz"),
        &["more than the limit of 1048576"],
    );
    std::fs::write(w.join("contimg.toml"), cfg).unwrap();
    eprintln!("hostile FITS and special files: tried {tried}, survived {tried}, lost 0");
}

/// A hostile header: file name, extra cards, words its refusal must contain.
type Case = (&'static str, Vec<(&'static str, Value)>, &'static str);

#[test]
fn dates_and_units_are_checked_and_named() {
    let ws = workspace();
    let w = ws.path();
    let s = |x: &str| Value::Str(x.into());
    let bad: Vec<Case> = vec![
        (
            "words",
            vec![("DATE-OBS", s("yesterday"))],
            "DATE-OBS = 'yesterday'",
        ),
        (
            "month13",
            vec![("DATE-OBS", s("2026-13-01"))],
            "DATE-OBS = '2026-13-01'",
        ),
        (
            "feb30",
            vec![("DATE-OBS", s("2026-02-30T00:00:00"))],
            "2026-02-30",
        ),
        (
            "hour25",
            vec![("DATE-OBS", s("2026-11-20T25:61:00"))],
            "25:61",
        ),
        (
            "ddmmyyyy",
            vec![("DATE-OBS", s("20/11/2026"))],
            "20/11/2026",
        ),
        ("year1", vec![("DATE-OBS", s("0001-01-01"))], "1900-2199"),
        ("mjdtext", vec![("MJD-OBS", s("soon"))], "MJD-OBS = 'soon'"),
        (
            "mjdneg",
            vec![("MJD-OBS", Value::Float(-5.0))],
            "MJD-OBS = '-5'",
        ),
        (
            "timeobs",
            vec![("DATE-OBS", s("2026-11-20")), ("TIME-OBS", s("noon"))],
            "TIME-OBS = 'noon'",
        ),
        ("kelvin", vec![("BUNIT", s("K"))], "BUNIT = 'K'"),
        (
            "jypix",
            vec![("BUNIT", s("JY/PIXEL"))],
            "BUNIT = 'JY/PIXEL'",
        ),
    ];
    for (name, cards, words) in &bad {
        let p = w.join(format!("{name}.fits"));
        write_image(&p, cards);
        refused(w, &p, &[words]);
    }
    // A bad DATE-OBS with a good MJD-OBS: MJD-OBS is used, with a warning.
    write_image(
        &w.join("fallback.fits"),
        &[
            ("DATE-OBS", s("garbage")),
            ("MJD-OBS", Value::Float(61000.5)),
        ],
    );
    let out = run_in(w, &["ingest", "fallback.fits"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("MJD-OBS used instead"));
    // No time at all: ingested with a warning, and `images` shows no time.
    write_image(&w.join("timeless.fits"), &[]);
    let out = run_in(w, &["ingest", "timeless.fits"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("no observation time"),
        "{}",
        stderr_of(&out)
    );
    let images = json_in(w, &["images", "--json"], 0);
    let timeless = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"].as_str().unwrap().ends_with("timeless.fits"))
        .unwrap();
    assert!(timeless["obs_time"].is_null() && timeless["obs_mjd"].is_null());
    let fallback = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"].as_str().unwrap().ends_with("fallback.fits"))
        .unwrap();
    assert_eq!(fallback["obs_time"], "2025-11-21T12:00:00.000Z");
    eprintln!(
        "bad dates and units: tried {}, survived {}, lost 0",
        bad.len(),
        bad.len()
    );
}

/// A workspace with `n` simulated snapshots on 2026-11-20 ingested.
fn ingested(n: usize) -> tempfile::TempDir {
    let ws = workspace();
    let n = n.to_string();
    json_in(
        ws.path(),
        &[
            "simulate",
            "--out",
            "snaps",
            "--images",
            &n,
            "--size",
            "160",
            "--cell",
            "40",
            "--start",
            "2026-11-20T03:00:00Z",
        ],
        0,
    );
    json_in(ws.path(), &["ingest", "snaps"], 0);
    ws
}

fn snaps(ws: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(ws.join("snaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "fits") && !p.to_string_lossy().contains(".pb.")
        })
        .collect();
    v.sort();
    v
}

fn sha256(p: &Path) -> String {
    contimg::fsutil::sha256_file(p).unwrap()
}

fn run_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut c = contimg()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that does not read stdin (qa --mosaic) may exit before the write ends.
    if let Err(e) = c.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    c.wait_with_output().unwrap()
}

#[test]
fn duplicate_bytes_are_planned_once() {
    let ws = ingested(2);
    let w = ws.path();
    let first = &snaps(w)[0];
    std::fs::copy(first, w.join("copy.fits")).unwrap();
    let out = run_in(w, &["ingest", "copy.fits"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr_of(&out).contains("the same bytes as image"),
        "{}",
        stderr_of(&out)
    );
    let plan = json_in(
        w,
        &["plan", "--tier", "science", "--night", "2026-11-20"],
        0,
    );
    assert_eq!(plan["n_images"], 2, "{plan}");
}

#[test]
fn manifests_are_trusted_no_further_than_the_database() {
    let ws = ingested(3);
    let w = ws.path();
    let plan = json_in(
        w,
        &["plan", "--tier", "science", "--night", "2026-11-20"],
        0,
    );
    let stranger = w.join("stranger.fits");
    std::fs::copy(&snaps(w)[0], &stranger).unwrap();
    // Make the stranger's bytes different from every ingested file (a HISTORY card).
    let mut img = contimg::fits::read::read_image(&stranger).unwrap();
    img.header.push_history("swapped in");
    let data: Vec<f32> = img.plane.iter().copied().collect();
    contimg::fits::write::write_image(&stranger, &img.shape[..2], &data, &img.header).unwrap();
    let stranger_s = stranger
        .canonicalize()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut swapped = plan.clone();
    swapped["images"][0]["path"] = stranger_s.clone().into();
    swapped["images"][0]["sha256"] = sha256(&stranger).into();
    let mut other_hash = plan.clone();
    other_hash["images"][0]["sha256"] = sha256(&stranger).into();
    let mut fewer = plan.clone();
    fewer["images"].as_array_mut().unwrap().pop();
    let mut foreign_id = plan.clone();
    foreign_id["images"][0]["id"] = 999.into();
    let cases = [
        (
            "swapped image with its new hash",
            swapped,
            "in the manifest but",
        ),
        ("recorded path, another hash", other_hash, "sha256"),
        ("an image left out", fewer, "the plan recorded"),
        ("an image never ingested", foreign_id, "the plan recorded"),
    ];
    let before = db_dump(w);
    for (what, m, words) in &cases {
        let out = run_stdin(w, &["build", "-"], &m.to_string());
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains("does not match plan") && err.contains(words),
            "{what}: {err}"
        );
        assert!(out.stdout.is_empty(), "{what}");
        assert_eq!(db_dump(w), before, "{what}: the database changed");
    }
    let mosaics = w.join("mosaics");
    let leftovers = std::fs::read_dir(&mosaics).map_or(0, std::iter::Iterator::count);
    assert_eq!(leftovers, 0, "nothing written by refused builds");

    // The real build, then qa manifests that name a foreign file or a changed one.
    let mosaic = {
        let out = run_stdin(w, &["build", "-"], &plan.to_string());
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let real = PathBuf::from(mosaic["path"].as_str().unwrap());
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = foreign_dir.path().join("foreign.fits");
    std::fs::copy(&real, &foreign).unwrap();
    let mut m = mosaic.clone();
    m["path"] = foreign.to_string_lossy().into_owned().into();
    let before = db_dump(w);
    let out = run_stdin(w, &["qa", "-"], &m.to_string());
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("the database records"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(db_dump(w), before);
    assert_eq!(
        std::fs::read_dir(foreign_dir.path()).unwrap().count(),
        1,
        "no products beside a foreign file"
    );

    // The recorded mosaic, changed after build: its sha256 no longer matches the row.
    let mut bytes = std::fs::read(&real).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&real, &bytes).unwrap();
    for args in [
        vec!["qa", "-"],
        vec!["qa", "--mosaic", &mosaic["mosaic_id"].to_string()],
    ] {
        let out = run_stdin(w, &args, &mosaic.to_string());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains("sha256"), "{}", stderr_of(&out));
        assert_eq!(db_dump(w), before, "{args:?}");
    }
    eprintln!("bad manifests: tried 7, survived 7, lost 0");
}

#[test]
fn an_empty_database_file_is_refused_not_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("empty.sqlite3");
    std::fs::write(&db, b"").unwrap();
    let out = run_in(
        dir.path(),
        &["--db", db.to_str().unwrap(), "images", "--json"],
    );
    // A database file that is not one is a fault of the database, not of the command line: 1.
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("empty (0 bytes)"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "left untouched");
}

#[test]
fn pipeline_files_with_unbounded_timeouts_or_bad_argv_fail_the_check() {
    let ws = workspace();
    let w = ws.path();
    let mut cfg = std::fs::read_to_string(w.join("contimg.toml")).unwrap();
    cfg.push_str(
        r#"
[pipelines.forever]
[[pipelines.forever.jobs]]
id = "a"
type = "command"
timeout = "99999999999999999999h"
params = { argv = ["true"] }
[[pipelines.forever.jobs]]
id = "b"
type = "command"
params = { argv = [] }
[[pipelines.forever.jobs]]
id = "c"
type = "command"
params = { argv = ["echo", 1, true] }
"#,
    );
    std::fs::write(w.join("contimg.toml"), cfg).unwrap();
    let out = run_in(w, &["pipelines", "check"]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("too long"), "{err}");
    assert!(err.contains("argv = [] runs nothing"), "{err}");
    assert!(err.contains("argv[1] = 1 is not a string"), "{err}");
    // And `run` refuses the same definitions before queueing anything.
    let out = run_in(w, &["run", "forever", "--slot", "now"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
}

/// A tmpfs mounted for the test and unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, bytes: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount ({e}): install util-linux"));
        assert!(
            out.status.success(),
            "this test needs to mount a small tmpfs (run the suite as root, or in a container \
             allowed to mount): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_leaves_no_partial_product_and_says_disk_full() {
    let ws = ingested(3);
    let w = ws.path();
    // The size of one product file, from a build on the ordinary disk.
    let plan = json_in(
        w,
        &["plan", "--tier", "science", "--night", "2026-11-20"],
        0,
    );
    let probe = json_in(w, &["build", "--plan", &plan["plan_id"].to_string()], 0);
    let one = std::fs::metadata(probe["path"].as_str().unwrap())
        .unwrap()
        .len();
    // Room for two of the three files: the third cannot be written.
    let disk = w.join("small");
    let _tmpfs = Tmpfs::mount(&disk, (2 * one).div_ceil(4096) * 4096 + 8192);
    let cfg = std::fs::read_to_string(w.join("contimg.toml")).unwrap();
    let mosaics = disk.join("mosaics");
    std::fs::write(
        w.join("contimg.toml"),
        cfg.replace(
            "mosaics = \"mosaics\"",
            &format!("mosaics = \"{}\"", mosaics.display()),
        ),
    )
    .unwrap();
    let mosaics_before = db_dump(w)
        .into_iter()
        .filter(|l| l.starts_with("mosaics:"))
        .collect::<Vec<_>>();
    let out = run_in(w, &["build", "--plan", &plan["plan_id"].to_string()]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    eprintln!("{err}");
    assert!(err.contains("disk full"), "{err}");
    assert!(
        err.contains(&mosaics.display().to_string()),
        "names the path: {err}"
    );
    let left: Vec<String> = std::fs::read_dir(&mosaics)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.is_empty(),
        "partial products or temp files left: {left:?}"
    );
    let mosaics_after = db_dump(w)
        .into_iter()
        .filter(|l| l.starts_with("mosaics:"))
        .collect::<Vec<_>>();
    assert_eq!(
        mosaics_after, mosaics_before,
        "no mosaics row for a failed build"
    );
    eprintln!("ENOSPC builds: tried 1, survived 1, lost 0");
}

#[test]
fn temp_files_of_a_killed_writer_are_swept_and_products_are_group_readable() {
    let ws = ingested(2);
    let w = ws.path();
    let mosaics = w.join("mosaics");
    std::fs::create_dir_all(&mosaics).unwrap();
    // A writer that was killed: its process is gone, its temporary remains.
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let stale = mosaics.join(format!(".science_x.fits.tmp.{dead_pid}.0"));
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    // A live writer's temporary (this test process) must be left alone.
    let live = mosaics.join(format!(".other.fits.tmp.{}.0", std::process::id()));
    std::fs::write(&live, b"busy").unwrap();
    let plan = json_in(
        w,
        &["plan", "--tier", "science", "--night", "2026-11-20"],
        0,
    );
    let m = json_in(w, &["build", "--plan", &plan["plan_id"].to_string()], 0);
    assert!(!stale.exists(), "the dead writer's temporary is swept");
    assert!(live.exists(), "a live writer's temporary is kept");
    for key in ["path", "weight_path", "noise_path"] {
        let mode = std::fs::metadata(m[key].as_str().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640, "{key}");
    }
    let db_mode = std::fs::metadata(w.join("pipeline.sqlite3"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(db_mode & 0o777, 0o640, "database");
    // Every product QA writes beside the mosaic (source tables, maps, pictures, the inputs
    // record) has the same mode: one write discipline for every file.
    let out = run_stdin(w, &["qa", "-"], &m.to_string());
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        stderr_of(&out)
    );
    let mut products = 0;
    for e in std::fs::read_dir(&mosaics).unwrap().flatten() {
        let p = e.path();
        if p == live {
            continue;
        }
        let mode = e.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "{}", p.display());
        products += 1;
    }
    assert!(
        mosaics
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".sources.fits")),
        "qa wrote no sources.fits"
    );
    assert!(products >= 8, "only {products} products");
    // The mode is configurable.
    let cfg = std::fs::read_to_string(w.join("contimg.toml")).unwrap();
    std::fs::write(
        w.join("contimg.toml"),
        cfg.replace("mode = \"0640\"", "mode = \"0600\""),
    )
    .unwrap();
    let m = json_in(w, &["build", "--plan", &plan["plan_id"].to_string()], 0);
    let mode = std::fs::metadata(m["path"].as_str().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::remove_file(&live).unwrap();
}

/// Starts `contimg build` and kills it with SIGKILL the moment one of its temporaries appears in
/// `dir`; returns the temporaries left behind, or `None` if the build finished first.
fn kill_during_write(w: &Path, plan_id: &str, dir: &Path) -> Option<Vec<PathBuf>> {
    let mut child = contimg()
        .current_dir(w)
        .args(["build", "--plan", plan_id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let temps = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().contains(".tmp."))
                    .collect()
            })
            .unwrap_or_default()
    };
    loop {
        if !temps(dir).is_empty() {
            child.kill().unwrap();
            child.wait().unwrap();
            return Some(temps(dir));
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
    }
}

#[test]
fn a_build_killed_while_writing_leaves_temporaries_that_the_next_run_removes() {
    let ws = ingested(4);
    let w = ws.path();
    let plan = json_in(
        w,
        &["plan", "--tier", "science", "--night", "2026-11-20"],
        0,
    );
    let id = plan["plan_id"].to_string();
    let mosaics = w.join("mosaics");
    std::fs::create_dir_all(&mosaics).unwrap();
    let mut left = None;
    for _ in 0..20 {
        for f in std::fs::read_dir(&mosaics).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        left = kill_during_write(w, &id, &mosaics);
        if left.is_some() {
            break;
        }
    }
    let left = left.expect(
        "20 builds finished before a temporary file could be seen; the kill -9 could not be placed",
    );
    assert!(!left.is_empty());
    let m = json_in(w, &["build", "--plan", &id], 0);
    let after: Vec<String> = std::fs::read_dir(&mosaics)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        after.iter().all(|n| !n.contains(".tmp.")),
        "temporaries of the killed build survived the next run: {after:?}"
    );
    // The mosaic, its weight and noise maps, and the record of its inputs.
    assert_eq!(after.len(), 4, "{after:?}");
    assert_eq!(
        sha256(Path::new(m["path"].as_str().unwrap())),
        m["sha256"]["mosaic"].as_str().unwrap()
    );
    eprintln!(
        "kill -9 during a write: tried 1, survived 1, lost 0 ({} temporaries swept)",
        left.len()
    );
}

#[test]
fn a_manifest_read_is_bounded() {
    let ws = workspace();
    let before = db_dump(ws.path());
    let (out, rss_kib) = run_bounded(ws.path(), &["build", "/dev/zero"]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("far more than any manifest"), "{err}");
    assert!(rss_kib < 400 * 1024, "peak memory {} MiB", rss_kib / 1024);
    assert_eq!(db_dump(ws.path()), before);
}
