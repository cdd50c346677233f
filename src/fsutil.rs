//! The one discipline for files: how products are written, and how input files are read.
//!
//! Writing. Invariants: a file written with [`write_atomic`] (or staged through a [`TempGuard`])
//! is either absent or complete at its final name, so a reader sees the old product or the new
//! one; the temporary (`.NAME.tmp.PID.N`) sits in the same directory so the rename cannot cross
//! filesystems, and it is removed when the write fails; a set of files committed with
//! [`commit_all`] appears together or not at all; temporaries left by a process that died
//! (kill -9, power cut) are removed by [`sweep_stale_temps`] on the next write into that
//! directory; every file gets the configured mode ([`set_file_mode`], group-readable 0640 by
//! default) before it appears; a full disk is reported as [`is_disk_full`] errors that the
//! writers turn into "disk full" messages naming the path.
//!
//! Reading. [`read_regular`] opens without blocking and refuses anything that is not a regular
//! file (FIFO, device such as /dev/zero, directory, socket) before reading a byte, and refuses a
//! file larger than the caller's ceiling before allocating for it.

// Unsafe: statvfs(2), fallocate(2) and kill(2, 0) through libc, which std does not offer.
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The default mode of product files: owner read-write, group read, nothing for others.
pub const DEFAULT_FILE_MODE: u32 = 0o640;

static FILE_MODE: AtomicU32 = AtomicU32::new(DEFAULT_FILE_MODE);

/// Sets the mode every file written from now on gets (from `contimg.toml` `[files] mode`).
pub fn set_file_mode(mode: u32) {
    FILE_MODE.store(mode & 0o7777, Ordering::Relaxed);
}

/// The mode files are written with.
pub fn file_mode() -> u32 {
    FILE_MODE.load(Ordering::Relaxed)
}

/// Whether an I/O error means the filesystem (or the user's quota) is full.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Checks that `dir` exists, is a directory and this process may create files in it. It is never
/// created here: a directory recorded by another machine that is missing on this one means a
/// shared filesystem not mounted here, and writing into a fresh local copy would scatter products.
pub fn writable_dir(dir: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Bytes available to this user on the filesystem holding `dir` (None if it cannot be asked).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid NUL-terminated path and out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Reserves `len` bytes of disk for `file` without changing its size, so that a full disk is
/// found before any product byte is written. Filesystems without `fallocate` are not an error.
pub fn reserve(file: &std::fs::File, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    if len == 0 {
        return Ok(());
    }
    // SAFETY: a valid open descriptor; FALLOC_FL_KEEP_SIZE only allocates blocks.
    let r = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_KEEP_SIZE,
            0,
            len.min(i64::MAX as u64) as libc::off_t,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(()),
        _ => Err(e),
    }
}

/// The parts of a temporary name `.NAME.tmp.PID.N`: (NAME, PID).
fn parse_temp_name(file_name: &str) -> Option<(&str, i32)> {
    let rest = file_name.strip_prefix('.')?;
    let (head, n) = rest.rsplit_once('.')?;
    let (head, pid) = head.rsplit_once('.')?;
    let name = head.strip_suffix(".tmp")?;
    if name.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.is_empty() {
        return None;
    }
    Some((name, pid.parse().ok()?))
}

/// Whether process `pid` exists on this machine and is not a zombie (a killed process whose
/// parent has not reaped it yet writes nothing more).
pub fn pid_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // A zombie (killed, not yet reaped by its parent) works, and writes, no more.
    exists
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                == Some("Z")
        })
}

/// Removes the temporaries in `dir` (not below it) whose writing process is gone, and returns
/// them. Temporaries of live processes (another build writing right now) are left alone.
pub fn sweep_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut removed = vec![];
    for e in entries.flatten() {
        let name = e.file_name();
        let Some((_, pid)) = name.to_str().and_then(parse_temp_name) else {
            continue;
        };
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        if is_file && !pid_alive(i64::from(pid)) && std::fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

/// A fresh temporary name beside `path`: `.NAME.tmp.PID.N` (unique within and across processes).
pub fn temp_path(path: &Path) -> std::io::Result<PathBuf> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} has no UTF-8 file name; give a file path such as out/image.fits",
                path.display()
            ),
        )
    })?;
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp_name = format!(".{name}.tmp.{}.{n}", std::process::id());
    Ok(match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(tmp_name),
        _ => PathBuf::from(tmp_name),
    })
}

/// A temporary file that is removed on drop unless [`TempGuard::commit`] renamed it into place.
pub struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl TempGuard {
    pub fn new(path: PathBuf) -> TempGuard {
        TempGuard { path, armed: true }
    }

    /// The temporary's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the (already written and synced) temporary the configured mode, renames it over
    /// `target`, then syncs the directory so the rename itself is durable (a directory that
    /// cannot be opened is skipped).
    pub fn commit(self, target: &Path) -> std::io::Result<()> {
        commit_all(vec![(self, target.to_path_buf())])
    }
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Commits a set of written and synced temporaries together: every file gets its mode first,
/// then each is renamed to its target. If a rename fails, the targets already renamed in this
/// call are removed again, so the set appears whole or not at all.
pub fn commit_all(staged: Vec<(TempGuard, PathBuf)>) -> std::io::Result<()> {
    let mode = std::fs::Permissions::from_mode(file_mode());
    for (g, _) in &staged {
        std::fs::set_permissions(&g.path, mode.clone())?;
    }
    let mut done: Vec<PathBuf> = vec![];
    for (mut g, target) in staged {
        if let Err(e) = std::fs::rename(&g.path, &target) {
            for t in &done {
                let _ = std::fs::remove_file(t);
            }
            return Err(e);
        }
        g.armed = false;
        done.push(target);
    }
    let dirs: std::collections::BTreeSet<PathBuf> = done.iter().map(|t| parent_dir(t)).collect();
    for dir in dirs {
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, fsync and rename:
/// a reader sees the old file or the whole new one; on error nothing is left behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    sweep_stale_temps(&parent_dir(path));
    let tmp = temp_path(path)?;
    let guard = TempGuard::new(tmp.clone());
    let mut f = std::fs::File::create(&tmp)?;
    reserve(&f, bytes.len() as u64)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    guard.commit(path)
}

/// Why an input file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: cannot read the file: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: is {kind}, not a regular file; only regular files are read")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "{path}: the file has {size} bytes, more than the limit of {limit}; raise the limit in \
         contimg.toml if this file is genuine"
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
}

fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Refuses at once what is not a regular file (following symlinks), without opening it.
pub fn check_regular(path: &Path) -> Result<std::fs::Metadata, ReadError> {
    let meta = std::fs::metadata(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(meta.file_type()),
        });
    }
    Ok(meta)
}

/// Reads a whole regular file of at most `limit` bytes. The file is opened without blocking (a
/// FIFO cannot hang the open) and checked on the open descriptor, so a file swapped for a FIFO
/// or a device after [`check_regular`] is refused too; at most `limit` + 1 bytes are ever read.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(meta.file_type()),
        });
    }
    let too_large = |size| ReadError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit,
    };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Lower-case hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex SHA-256 of a file, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub(crate) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes a path absolute against the current directory without touching the filesystem.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_round_trip() {
        let t = temp_path(Path::new("dir/mosaic.fits")).unwrap();
        let name = t.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            parse_temp_name(name),
            Some(("mosaic.fits", std::process::id() as i32))
        );
        assert_eq!(parse_temp_name("mosaic.fits"), None);
        assert_eq!(parse_temp_name(".mosaic.fits.tmp.x.1"), None);
    }
}
