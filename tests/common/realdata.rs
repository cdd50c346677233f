//! Where the real-data tests find the files of `../shared/data/real` (never copied into the
//! repository), and what they do when the files are not there.
//!
//! - `CONTIMG_REAL_DATA` set: that folder is the data set. Every file `SHA256SUMS` lists must be
//!   there with that checksum, or the test fails: a named data set is never skipped silently.
//! - unset: `../shared/data/real` beside the checkout is used (and checked the same way) when it
//!   exists; `scripts/test` sets the variable to it.
//! - unset and absent (a lone clone): the test prints one line saying it did not run and why,
//!   appends the same line to the file named by `CONTIMG_SKIP_LOG` (so `scripts/test` counts it
//!   as skipped in its closing line) and passes.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The verified real-data folder, or `None` after saying that `test` did not run.
pub fn real_data(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("CONTIMG_REAL_DATA") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/real");
            if !beside.is_dir() {
                skip(
                    test,
                    &format!(
                        "no real data: CONTIMG_REAL_DATA is unset and {} does not exist",
                        beside.display()
                    ),
                );
                return None;
            }
            beside
        }
    };
    static VERIFIED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = VERIFIED.get_or_init(|| verify(&dir)) {
        panic!("real data set {}: {e}", dir.display());
    }
    Some(dir)
}

/// Records that `test` did not run: one line on stderr and, for `scripts/test`'s count, in the
/// file named by `CONTIMG_SKIP_LOG`.
pub fn skip(test: &str, why: &str) {
    let line = format!("skipped: {test}: {why}");
    eprintln!("{line}");
    if let Some(log) = std::env::var_os("CONTIMG_SKIP_LOG") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("CONTIMG_SKIP_LOG {}: {e}", Path::new(&log).display()));
        writeln!(f, "{line}").expect("writing CONTIMG_SKIP_LOG");
    }
}

/// Every file listed in `dir/SHA256SUMS` exists and has its checksum.
fn verify(dir: &Path) -> Result<(), String> {
    let sums = dir.join("SHA256SUMS");
    let text = std::fs::read_to_string(&sums).map_err(|e| {
        format!(
            "{}: {e} (the folder CONTIMG_REAL_DATA names must hold the data set with its SHA256SUMS)",
            sums.display()
        )
    })?;
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (want, name) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{}: malformed line {line:?}", sums.display()))?;
        let name = name.trim().trim_start_matches('*');
        let path = dir.join(name);
        let got = contimg::fsutil::sha256_file(&path)
            .map_err(|e| format!("{}: {e} (listed in SHA256SUMS)", path.display()))?;
        if !got.eq_ignore_ascii_case(want) {
            return Err(format!(
                "{}: SHA-256 {got}, SHA256SUMS says {want}: the file is not the published one",
                path.display()
            ));
        }
        n += 1;
    }
    if n == 0 {
        return Err(format!("{} lists no file", sums.display()));
    }
    Ok(())
}
