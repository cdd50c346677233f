//! Scheduling by the system crontab: the crontab lines for a workspace's scheduled pipelines, editing the
//! user's crontab through the real `crontab` program inside a marked block, and the slots a schedule
//! fired at (for `run --slot scheduled` and `run --catch-up`).
//!
//! Invariants: contimg only ever changes the lines between `# BEGIN contimg <workspace>` and
//! `# END contimg <workspace>` for its own workspace path; every other line of the crontab is written
//! back byte for byte; installing the same block twice leaves the crontab as it was (and is not
//! rewritten); a crontab with a BEGIN marker and no END is refused, not guessed at. Schedules are
//! 5-field cron expressions in UTC (parsed by `croner`: day-of-month and day-of-week combine with OR
//! when both are restricted; 0 and 7 are Sunday).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};

use crate::pipeline::NamedPipeline;

/// What can go wrong editing the crontab.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error(
        "cannot run `{program}`: {source}; install cron (Debian: apt-get install cron) or set [cron] crontab in contimg.toml"
    )]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{program}` failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error(
        "the crontab has `{begin}` without a matching `{end}`; fix it with `crontab -e`, then try again (nothing was changed)"
    )]
    Unbalanced { begin: String, end: String },
    #[error(
        "the {what} {text:?} cannot be written into a crontab line: it holds {why}, which cron would \
         read as the end of the line or a command of its own; rename or move it and try again \
         (the crontab was not changed)"
    )]
    Unquotable {
        what: &'static str,
        text: String,
        why: String,
    },
    #[error(transparent)]
    Schedule(#[from] crate::pipeline::ScheduleError),
}

impl CronError {
    /// True when the cause is the user's input (their crontab or schedule), not a failing program.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            CronError::Unbalanced { .. } | CronError::Schedule(_) | CronError::Unquotable { .. }
        )
    }
}

/// The block markers for a workspace.
pub fn markers(workspace: &Path) -> (String, String) {
    (
        format!("# BEGIN contimg {}", workspace.display()),
        format!("# END contimg {}", workspace.display()),
    )
}

/// Checks that a word can stand in a crontab line once quoted: no line break or other control
/// character (cron ends the entry at a newline, and a NUL or CR is no part of a path anyone means).
/// `%` is fine: [`sh_quote`] escapes it.
pub fn quotable(what: &'static str, s: &str) -> Result<(), CronError> {
    match s.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(CronError::Unquotable {
            what,
            text: s.to_string(),
            why: match c {
                '\n' => "a newline".to_string(),
                '\r' => "a carriage return".to_string(),
                c => format!("the control character U+{:04X}", c as u32),
            },
        }),
    }
}

/// Quotes a word for /bin/sh and escapes `%`, which cron turns into a newline.
fn sh_quote(s: &str) -> String {
    let q = if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    };
    q.replace('%', r"\%")
}

/// One crontab line: `SCHEDULE EXE -C WORKSPACE run PIPELINE --slot scheduled >> LOG 2>&1`, every word
/// checked by [`quotable`] and quoted; `None` for a pipeline without a schedule.
pub fn line(
    exe: &Path,
    workspace: &Path,
    logs_dir: &Path,
    p: &NamedPipeline,
) -> Result<Option<String>, CronError> {
    let Some(schedule) = p.def.schedule.as_deref() else {
        return Ok(None);
    };
    let log = logs_dir.join(format!("{}.log", p.name));
    let words = [
        ("contimg binary path", exe.display().to_string()),
        ("workspace path", workspace.display().to_string()),
        ("pipeline name", p.name.clone()),
        ("log path", log.display().to_string()),
    ];
    for (what, w) in &words {
        quotable(what, w)?;
    }
    quotable("schedule", schedule)?;
    let [exe, ws, name, log] = words.map(|(_, w)| sh_quote(&w));
    Ok(Some(format!(
        "{} {exe} -C {ws} run {name} --slot scheduled >> {log} 2>&1",
        schedule.split_whitespace().collect::<Vec<_>>().join(" "),
    )))
}

/// The marked block for a workspace (ends with a newline).
pub fn block(workspace: &Path, lines: &[String]) -> String {
    let (b, e) = markers(workspace);
    let mut out = format!(
        "{b}\n# Written by `contimg cron install`; `contimg cron remove` deletes this block. Times are UTC.\n"
    );
    if lines.is_empty() {
        out.push_str("# (no scheduled pipelines)\n");
    }
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&e);
    out.push('\n');
    out
}

/// The crontab text with this workspace's block replaced by `new_block` (at the old block's place, or
/// appended), or removed when `new_block` is `None`. Other lines are kept exactly.
pub fn splice(
    existing: &str,
    workspace: &Path,
    new_block: Option<&str>,
) -> Result<String, CronError> {
    quotable("workspace path", &workspace.display().to_string())?;
    let (b, e) = markers(workspace);
    let mut out = String::with_capacity(existing.len() + 256);
    let mut inside = false;
    let mut placed = false;
    for l in existing.split_inclusive('\n') {
        let bare = l.trim_end_matches(['\n', '\r']);
        if !inside && bare == b {
            inside = true;
            if !placed && let Some(nb) = new_block {
                out.push_str(nb);
            }
            placed = true;
            continue;
        }
        if inside {
            if bare == e {
                inside = false;
            }
            continue;
        }
        out.push_str(l);
    }
    if inside {
        return Err(CronError::Unbalanced { begin: b, end: e });
    }
    if !placed && let Some(nb) = new_block {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(nb);
    }
    Ok(out)
}

/// The crontab program as argv (the setting split on whitespace, e.g. `crontab -u alice`).
pub fn program(setting: &str) -> Vec<String> {
    let v: Vec<String> = setting.split_whitespace().map(String::from).collect();
    if v.is_empty() {
        vec!["crontab".into()]
    } else {
        v
    }
}

/// The user's crontab (`crontab -l`); "no crontab for USER" is an empty one.
pub fn read(program: &[String]) -> Result<String, CronError> {
    let name = program.join(" ");
    let out = Command::new(&program[0])
        .args(&program[1..])
        .arg("-l")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| CronError::Spawn {
            program: name.clone(),
            source,
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if stderr.to_lowercase().contains("no crontab for") {
        return Ok(String::new());
    }
    Err(CronError::Failed {
        program: format!("{name} -l"),
        status: out.status.to_string(),
        stderr,
    })
}

/// Replaces the user's crontab with `text` (`crontab -`).
pub fn write(program: &[String], text: &str) -> Result<(), CronError> {
    let name = program.join(" ");
    let mut child = Command::new(&program[0])
        .args(&program[1..])
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| CronError::Spawn {
            program: name.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|source| CronError::Spawn {
                program: name.clone(),
                source,
            })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|source| CronError::Spawn {
            program: name.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(CronError::Failed {
            program: format!("{name} -"),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The latest time ≤ `now` at which `schedule` fires (the slot of `run --slot scheduled`).
pub fn latest_slot(schedule: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, CronError> {
    Ok(crate::pipeline::exec::scheduled_slot(schedule, now)?)
}

/// Slot times, oldest first.
pub type Slots = Vec<DateTime<Utc>>;

/// The slots `run --catch-up` runs, oldest first, and how many older ones the cap left out.
///
/// With a last successful slot: every firing after it up to `now` (inclusive). Without one: the latest
/// `cap` firings ≤ now. At most the newest `cap` slots are returned.
pub fn catch_up_slots(
    schedule: &str,
    last_success: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    cap: u32,
) -> Result<(Slots, Slots), CronError> {
    let cron = crate::pipeline::parse_schedule(schedule)?;
    let cap = cap.max(1) as usize;
    let mut all = Vec::new();
    match last_success {
        Some(t0) => {
            let mut t = t0;
            // Bounded walk: a schedule firing every minute for years is not a reason to loop forever.
            while all.len() < 100_000 {
                match cron.find_next_occurrence(&t, false) {
                    Ok(n) if n <= now => {
                        all.push(n);
                        t = n;
                    }
                    _ => break,
                }
            }
        }
        None => {
            let mut t = now;
            let mut inclusive = true;
            while all.len() < cap {
                match cron.find_previous_occurrence(&t, inclusive) {
                    Ok(p) => {
                        all.push(p);
                        t = p;
                        inclusive = false;
                    }
                    Err(_) => break,
                }
            }
            all.reverse();
        }
    }
    let dropped = all.len().saturating_sub(cap);
    let kept = all.split_off(dropped);
    Ok((kept, all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn splice_keeps_other_lines_and_is_idempotent() {
        let ws = Path::new("/data/ws one");
        let other = "MAILTO=me\n# keep me\n*/5 * * * * /usr/bin/true\n";
        let b1 = block(ws, &["0 3 * * * x".into()]);
        let once = splice(other, ws, Some(&b1)).unwrap();
        assert!(once.starts_with(other));
        assert_eq!(splice(&once, ws, Some(&b1)).unwrap(), once);
        // Replacing keeps the block in place, lines after it stay after it.
        let with_tail = format!("{once}@reboot /bin/x\n");
        let b2 = block(ws, &["0 4 * * * y".into()]);
        let replaced = splice(&with_tail, ws, Some(&b2)).unwrap();
        assert_eq!(replaced, format!("{other}{b2}@reboot /bin/x\n"));
        // Another workspace's block is not ours.
        let ws2 = Path::new("/data/ws");
        let both = splice(&replaced, ws2, Some(&block(ws2, &[]))).unwrap();
        assert_eq!(splice(&both, ws2, None).unwrap(), replaced);
        assert_eq!(
            splice(&replaced, ws, None).unwrap(),
            format!("{other}@reboot /bin/x\n")
        );
        // No final newline in the original: one is added before the block.
        assert_eq!(
            splice("* * * * * a", ws, Some(&b1)).unwrap(),
            format!("* * * * * a\n{b1}")
        );
        let (b, _) = markers(ws);
        assert!(matches!(
            splice(&format!("{b}\nx\n"), ws, None),
            Err(CronError::Unbalanced { .. })
        ));
    }

    #[test]
    fn quoting_for_sh_and_cron() {
        assert_eq!(sh_quote("/usr/bin/contimg"), "/usr/bin/contimg");
        assert_eq!(sh_quote("/a b/it's"), r"'/a b/it'\''s'");
        assert_eq!(sh_quote("/x/100%"), r"'/x/100\%'");
    }

    #[test]
    fn catch_up_lists_missed_slots_oldest_first_capped() {
        let now = t(2026, 11, 23, 10, 0);
        let (s, dropped) =
            catch_up_slots("0 3 * * *", Some(t(2026, 11, 20, 3, 0)), now, 7).unwrap();
        assert_eq!(
            s,
            [
                t(2026, 11, 21, 3, 0),
                t(2026, 11, 22, 3, 0),
                t(2026, 11, 23, 3, 0)
            ]
        );
        assert!(dropped.is_empty());
        let (s, dropped) =
            catch_up_slots("0 3 * * *", Some(t(2026, 11, 20, 3, 0)), now, 2).unwrap();
        assert_eq!(s, [t(2026, 11, 22, 3, 0), t(2026, 11, 23, 3, 0)]);
        assert_eq!(dropped, [t(2026, 11, 21, 3, 0)]);
        // Nothing succeeded yet: the latest `cap` slots.
        let (s, _) = catch_up_slots("0 3 * * *", None, now, 2).unwrap();
        assert_eq!(s, [t(2026, 11, 22, 3, 0), t(2026, 11, 23, 3, 0)]);
        // Up to date: nothing to do.
        let (s, _) = catch_up_slots("0 3 * * *", Some(t(2026, 11, 23, 3, 0)), now, 7).unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn the_scheduled_slot_is_the_latest_firing_at_or_before_now() {
        // The `--slot scheduled` rule (tested here, not in validate.rs: exec imports validate, so
        // validate must not import exec).
        let now = t(2026, 11, 20, 2, 59);
        assert_eq!(
            latest_slot("0 3 * * *", now).unwrap(),
            t(2026, 11, 19, 3, 0)
        );
    }
}
