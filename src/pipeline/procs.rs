//! Processes: who this process is (`host:pid`), whether a holder named that way is provably dead,
//! and killing what a dead holder's job left running.
//!
//! Invariants: a holder is called dead only when it names this host and its pid is gone (or a
//! zombie); a holder on another host is never called dead here (its lease decides). A process is
//! killed as a survivor only when its stdout or stderr is the log file of the abandoned attempt —
//! the job's own processes and their children inherit it — so an unrelated process that reused a
//! pid is never touched.

// Unsafe: gethostname(2), getpgrp(2) and kill(2) on process groups through libc, which std does not offer.
#![allow(unsafe_code)]

use std::path::Path;

/// This machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "localhost".into()
    }
}

/// `host:pid` of this process, the prefix of its workers' ids.
pub fn process_id() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

pub use crate::fsutil::pid_alive;

/// Whether the holder named `id` (`host:pid` or `host:pid:thread`) is provably dead: it is on this
/// host and its process is gone.
pub fn holder_dead(id: &str) -> bool {
    let mut parts = id.rsplitn(3, ':');
    let (a, b, c) = (parts.next(), parts.next(), parts.next());
    let (host, pid) = match (a, b, c) {
        (Some(_thread), Some(pid), Some(host)) => (host, pid),
        (Some(pid), Some(host), None) => (host, pid),
        _ => return false,
    };
    match pid.parse::<i64>() {
        Ok(pid) => host == hostname() && !pid_alive(pid),
        Err(_) => false,
    }
}

/// Kills process group `pgid` with SIGKILL.
pub fn kill_group(pgid: u32) {
    // SAFETY: kill(2) with a negative pid signals the process group; no memory is touched.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), libc::SIGKILL);
    }
}

/// Kills (with their process groups) the processes whose stdout or stderr is `log`: what a dead
/// worker's job left running. Returns how many processes were found.
pub fn kill_survivors(log: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    // SAFETY: getpgrp has no preconditions.
    let own_group = unsafe { libc::getpgrp() };
    let mut found = 0;
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let writes_log = [1, 2]
            .iter()
            .any(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).is_ok_and(|t| t == log));
        if !writes_log {
            continue;
        }
        found += 1;
        // SAFETY: getpgid and kill touch no memory.
        unsafe {
            let pgid = libc::getpgid(pid);
            if pgid > 0 && pgid != own_group {
                libc::kill(-pgid, libc::SIGKILL);
            }
            libc::kill(pid, libc::SIGKILL);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_on_this_host_are_dead_only_when_their_process_is_gone() {
        let me = process_id();
        assert!(!holder_dead(&me));
        assert!(!holder_dead(&format!("{me}:3")));
        // A pid above the kernel's maximum never exists.
        let gone = format!("{}:{}:0", hostname(), i32::MAX);
        assert!(holder_dead(&gone));
        assert!(!holder_dead(&format!(
            "another-host-{}:{}:0",
            hostname(),
            i32::MAX
        )));
        assert!(!holder_dead("garbage"));
    }
}
