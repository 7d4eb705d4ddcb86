//! tfenv's own lock per environment in this checkout (`state/<env>/.tfenv.lock`, an OS
//! file lock): a second tfenv on the same environment stops at once and says who holds it,
//! and the next one after a run that was killed (SIGKILL, a crash) says so — and has it
//! recorded in history (see `pipeline::RecordedRun`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::TfenvError;

/// The lock file, in `state/<env>/`.
pub const FILE: &str = ".tfenv.lock";
/// The plan file a run keeps only while it runs (the pipeline removes it on every way out).
const PLAN_FILE: &str = "terraform.plan";

/// Who holds the lock: one JSON line in the lock file while it is held; a clean release
/// empties the file. So a holder found by the next run that gets the lock ended without
/// releasing it: it was killed (SIGKILL cannot be caught) or crashed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// The tfenv command, e.g. `deploy`.
    pub command: String,
    pub environment: String,
    pub who: String,
    pub host: String,
    pub since: DateTime<Utc>,
    /// The run writes a history record (deploy, refresh, restore, unlock; not plan).
    #[serde(default)]
    pub recorded: bool,
    /// When terraform apply started (deploy, refresh): from then on the state may change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applying: Option<DateTime<Utc>>,
    /// The backup taken before the apply, by file name in `backups/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// The run's log, relative to `state/<env>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

impl Holder {
    /// `pid 42, `tfenv deploy dev`, alice@laptop, since … [, applying since …]`.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "pid {}, `tfenv {} {}`, {}@{}, since {}",
            self.pid,
            self.command,
            self.environment,
            self.who,
            self.host,
            self.since.format("%Y-%m-%d %H:%M:%S UTC")
        );
        if let Some(applying) = self.applying {
            text += &format!(
                ", applying since {}",
                applying.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        text
    }

    /// Whether the run may have changed the state: a deploy or refresh once terraform
    /// apply started; a restore or an unlock at any time; never a plan.
    pub fn may_have_changed(&self) -> bool {
        match self.command.as_str() {
            "deploy" | "refresh" => self.applying.is_some(),
            "plan" => false,
            _ => true,
        }
    }

    fn line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

/// What a killed run left behind: its holder line in the lock file and/or its plan file.
#[derive(Clone, Debug)]
pub struct KilledRun {
    /// `None`: the holder text is not a holder line (an older tfenv wrote plain text,
    /// or the file was damaged); or only a plan file was left.
    pub holder: Option<Holder>,
    /// For the warning, whatever its form.
    pub warning: String,
}

/// The lock is held by another tfenv: who, as its holder line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Busy {
    pub env: String,
    /// `pid 42, `tfenv deploy dev`, …` (see [`Holder::describe`]), or `holder unknown`.
    pub holder: String,
}

impl Busy {
    /// Exit 4, naming the holder; `waited`: how long this run waited for it
    /// (`--lock-timeout`), said in the message.
    pub fn error(&self, waited: Option<std::time::Duration>) -> TfenvError {
        let message = match waited {
            None => format!(
                "environment `{}` is busy: another tfenv holds it ({})",
                self.env, self.holder
            ),
            Some(waited) => format!(
                "environment `{}` is still busy after waiting {} (--lock-timeout): another tfenv holds it ({})",
                self.env,
                humantime::format_duration(waited),
                self.holder
            ),
        };
        TfenvError::Locked {
            message,
            hint: Some(match waited {
                None => "wait for that run to finish (the lock goes away with its process), or let tfenv wait: --lock-timeout 5m".to_string(),
                Some(_) => "that run is still going: wait longer (a larger --lock-timeout), or check on it".to_string(),
            }),
        }
    }
}

/// Held until dropped; the OS releases it if tfenv dies.
pub struct EnvLock {
    file: File,
    dir: PathBuf,
    holder: Holder,
    /// The killed run found when the lock was taken, until [`EnvLock::settle_killed`].
    killed: Option<KilledRun>,
    /// The killed run's holder text: put back on release while its run is not recorded,
    /// so the next run reports it again.
    unsettled: Option<Vec<u8>>,
}

impl EnvLock {
    /// Takes the lock of `env` for `tfenv <command> <env>`; `recorded`: the run writes a
    /// history record. A second holder is refused (exit 4) naming the first. A lock file
    /// that is not a regular file (a FIFO) is an error naming it, never a hang. (Runs
    /// take it through `pipeline`, which may wait: `try_acquire`.)
    #[cfg(test)]
    pub fn acquire(
        artifacts_dir: &Path,
        env: &str,
        command: &str,
        recorded: bool,
    ) -> anyhow::Result<EnvLock> {
        match EnvLock::try_acquire(artifacts_dir, env, command, recorded)? {
            Ok(lock) => Ok(lock),
            Err(busy) => Err(busy.error(None).into()),
        }
    }

    /// `acquire`, with a lock someone else holds as `Ok(Err(Busy))`: for a caller that
    /// waits and tries again (`--lock-timeout`).
    pub fn try_acquire(
        artifacts_dir: &Path,
        env: &str,
        command: &str,
        recorded: bool,
    ) -> anyhow::Result<Result<EnvLock, Busy>> {
        crate::files::ensure_private_dir(artifacts_dir)?;
        let path = artifacts_dir.join(FILE);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        let mut file = crate::files::open_own(&path, &options)?
            .with_context(|| format!("opening `{}`", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = Vec::new();
                let _ = file.read_to_end(&mut holder);
                return Ok(Err(Busy {
                    env: env.to_string(),
                    holder: describe_text(&holder).unwrap_or_else(|| "holder unknown".to_string()),
                }));
            }
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("locking `{}`", path.display()));
            }
        }
        let mut previous = Vec::new();
        let _ = file.read_to_end(&mut previous);
        let killed = unfinished_run(artifacts_dir, env, &previous);
        let holder = Holder {
            pid: std::process::id(),
            command: command.to_string(),
            environment: env.to_string(),
            who: super::whoami(),
            host: super::hostname(),
            since: Utc::now(),
            recorded,
            applying: None,
            backup: None,
            log: None,
        };
        let mut lock = EnvLock {
            file,
            dir: artifacts_dir.to_path_buf(),
            holder,
            unsettled: killed.as_ref().map(|_| previous),
            killed,
        };
        lock.write_holder();
        Ok(Ok(lock))
    }

    /// The run that held this lock before and was killed, until it is settled.
    pub fn killed(&self) -> Option<&KilledRun> {
        self.killed.as_ref()
    }

    /// The killed run is recorded in history (or had nothing to record): its evidence
    /// goes — the plan file (terraform refuses a stale plan anyway) and its holder text.
    pub fn settle_killed(&mut self) {
        if self.killed.take().is_some() {
            let _ = std::fs::remove_file(self.dir.join(PLAN_FILE));
        }
        self.unsettled = None;
    }

    /// terraform apply starts now: if tfenv is killed from here on, the next run records
    /// that the state may have changed, and where the way back is.
    pub fn applying(&mut self, backup: Option<&str>, log: Option<&str>) {
        self.holder.applying = Some(Utc::now());
        self.holder.backup = backup.map(str::to_string);
        self.holder.log = log.map(str::to_string);
        self.write_holder();
    }

    /// Best effort: the lock itself is the OS lock, this text only names its holder.
    fn write_holder(&mut self) {
        let line = self.holder.line();
        let _ = self
            .file
            .set_len(0)
            .and_then(|()| self.file.rewind())
            .and_then(|()| self.file.write_all(line.as_bytes()));
    }
}

impl Drop for EnvLock {
    fn drop(&mut self) {
        // Released cleanly: nothing for the next run to report — unless the killed run
        // found at the start could not be recorded; then the next run finds it again.
        // (The OS lock goes with the file handle, right after.)
        let _ = self.file.set_len(0);
        if let Some(previous) = self.unsettled.take() {
            let _ = self
                .file
                .rewind()
                .and_then(|()| self.file.write_all(&previous));
        }
    }
}

/// The holder a run that never released the lock left in `state/<env>/.tfenv.lock`, for
/// `status` (which takes no lock): `Ok(None)` when the file is missing or empty, or its
/// holder may still be running. Only a holder on this host whose process is gone is
/// known to be dead; a lock file that is not a regular file is an error naming it.
pub fn dead_holder(artifacts_dir: &Path) -> anyhow::Result<Option<Holder>> {
    let Some(text) = crate::files::read_regular(&artifacts_dir.join(FILE))? else {
        return Ok(None);
    };
    let Some(holder) = parse_holder(&text) else {
        return Ok(None);
    };
    let gone = holder.host == super::hostname()
        && i32::try_from(holder.pid).is_ok_and(|pid| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH)
        });
    Ok(gone.then_some(holder))
}

/// A lock file a run left without releasing it, as the next run would find it: the OS
/// lock is free (probed without blocking, as `try_acquire` does) and the file still names a
/// holder. `Ok(None)` when the file is missing or empty, or someone holds the OS lock.
/// `holder`: `None` for text that is not a holder line (an older tfenv, damage).
pub fn stale_holder(artifacts_dir: &Path) -> anyhow::Result<Option<KilledRun>> {
    let path = artifacts_dir.join(FILE);
    let Some(mut file) = crate::files::open_regular(&path)? else {
        return Ok(None);
    };
    match file.try_lock_shared() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(err)) => {
            return Err(err).with_context(|| format!("locking `{}`", path.display()));
        }
    }
    let mut text = Vec::new();
    file.read_to_end(&mut text)
        .with_context(|| format!("reading `{}`", path.display()))?;
    drop(file);
    // The same test the next run makes (see `unfinished_run`).
    if !text.ends_with(b"\n") {
        return Ok(None);
    }
    Ok(describe_text(&text).map(|warning| KilledRun {
        holder: parse_holder(&text),
        warning,
    }))
}

fn parse_holder(text: &[u8]) -> Option<Holder> {
    serde_json::from_slice(text.trim_ascii()).ok()
}

/// The holder's description from the lock file's text: a holder line, or the plain text
/// an older tfenv wrote; `None` when empty.
fn describe_text(text: &[u8]) -> Option<String> {
    if let Some(holder) = parse_holder(text) {
        return Some(holder.describe());
    }
    let text = String::from_utf8_lossy(text).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// What a run that was killed left behind, for the next run on `env`: its holder in the
/// lock file (see [`Holder`]) and/or its plan file.
fn unfinished_run(artifacts_dir: &Path, env: &str, previous: &[u8]) -> Option<KilledRun> {
    // Text without the final newline was written by an older tfenv that left it behind
    // on every exit: not a sign of a killed run.
    let holder_text = previous
        .ends_with(b"\n")
        .then(|| describe_text(previous))
        .flatten();
    let holder = parse_holder(previous);
    let plan = artifacts_dir.join(PLAN_FILE);
    let plan_left = plan.is_file();
    let what = match (&holder_text, plan_left) {
        (None, false) => return None,
        (Some(holder), false) => {
            format!("the previous run on `{env}` ({holder}) was killed before it finished")
        }
        (Some(holder), true) => format!(
            "the previous run on `{env}` ({holder}) was killed before it finished, and left its plan `{}` behind",
            plan.display()
        ),
        (None, true) => format!(
            "a previous run on `{env}` did not finish: it left its plan `{}` behind",
            plan.display()
        ),
    };
    let stage = match &holder {
        Some(h) if !h.may_have_changed() => {
            format!(
                "  it had not started to change anything (no terraform apply); if this run stops at the state lock, a terraform it started may still hold it: `tfenv lock {env}`"
            )
        }
        _ => format!(
            "  terraform may have been in the middle of an apply, and may still be running: \
             check the state and its lock with `tfenv status {env}` and `tfenv lock {env}` before trusting this run"
        ),
    };
    Some(KilledRun {
        holder,
        warning: format!("{what}\n{stage}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(pid: u32, applying: bool) -> Holder {
        Holder {
            pid,
            command: "deploy".into(),
            environment: "dev".into(),
            who: "ci".into(),
            host: "runner".into(),
            since: "2025-01-01T10:00:00Z".parse().unwrap(),
            recorded: true,
            applying: applying.then(|| "2025-01-01T10:01:00Z".parse().unwrap()),
            backup: None,
            log: None,
        }
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = EnvLock::acquire(dir.path(), "dev", "deploy", true).unwrap();
        let err = EnvLock::acquire(dir.path(), "dev", "deploy", true)
            .err()
            .unwrap();
        let typed = err.downcast_ref::<TfenvError>().unwrap();
        assert_eq!(typed.exit(), crate::exit::Exit::Locked);
        assert!(
            err.to_string()
                .contains(&format!("pid {}, `tfenv deploy dev`", std::process::id())),
            "{err}"
        );
        drop(first);
        EnvLock::acquire(dir.path(), "dev", "deploy", true).unwrap();
    }

    #[test]
    fn a_lock_released_normally_leaves_nothing_to_report() {
        let dir = tempfile::tempdir().unwrap();
        drop(EnvLock::acquire(dir.path(), "dev", "deploy", true).unwrap());
        let left = std::fs::read(dir.path().join(FILE)).unwrap();
        assert_eq!(left, b"", "a clean release empties the holder text");
        assert!(unfinished_run(dir.path(), "dev", &left).is_none());
    }

    #[test]
    fn a_holder_that_never_released_the_lock_is_reported_as_killed() {
        let dir = tempfile::tempdir().unwrap();
        let killed =
            unfinished_run(dir.path(), "dev", holder(4242, true).line().as_bytes()).unwrap();
        let warning = &killed.warning;
        assert!(
            warning.contains("pid 4242, `tfenv deploy dev`, ci@runner, since 2025-01-01 10:00:00 UTC, applying since"),
            "{warning}"
        );
        assert!(warning.contains("was killed"), "{warning}");
        assert!(
            warning.contains("`tfenv status dev`") && warning.contains("`tfenv lock dev`"),
            "{warning}"
        );
        assert!(!warning.contains("plan"), "{warning}");
        assert_eq!(killed.holder, Some(holder(4242, true)));
    }

    #[test]
    fn a_run_killed_before_its_apply_is_said_to_have_changed_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let killed =
            unfinished_run(dir.path(), "dev", holder(4242, false).line().as_bytes()).unwrap();
        assert!(
            killed
                .warning
                .contains("had not started to change anything"),
            "{}",
            killed.warning
        );
    }

    #[test]
    fn a_plan_file_left_behind_is_reported_and_removed_once_settled() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PLAN_FILE), b"plan").unwrap();
        let killed = unfinished_run(dir.path(), "dev", b"").unwrap();
        assert!(
            killed.warning.contains("terraform.plan"),
            "{}",
            killed.warning
        );
        let mut lock = EnvLock::acquire(dir.path(), "dev", "deploy", true).unwrap();
        assert!(lock.killed().is_some());
        lock.settle_killed();
        drop(lock);
        assert!(!dir.path().join(PLAN_FILE).exists());
        let left = std::fs::read(dir.path().join(FILE)).unwrap();
        assert!(unfinished_run(dir.path(), "dev", &left).is_none());
    }

    #[test]
    fn a_killed_run_not_settled_is_found_again_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), holder(4242, true).line()).unwrap();
        std::fs::write(dir.path().join(PLAN_FILE), b"plan").unwrap();
        let lock = EnvLock::acquire(dir.path(), "dev", "unlock", true).unwrap();
        assert_eq!(lock.killed().unwrap().holder, Some(holder(4242, true)));
        // While held, the file names the new holder.
        let text = std::fs::read(dir.path().join(FILE)).unwrap();
        assert_eq!(parse_holder(&text).unwrap().command, "unlock");
        drop(lock);
        assert!(dir.path().join(PLAN_FILE).exists());
        let lock = EnvLock::acquire(dir.path(), "dev", "deploy", true).unwrap();
        assert_eq!(lock.killed().unwrap().holder, Some(holder(4242, true)));
    }

    #[test]
    fn applying_is_written_to_the_holder_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut lock = EnvLock::acquire(dir.path(), "dev", "deploy", true).unwrap();
        lock.applying(
            Some("terraform.tfstate.20250101-100000"),
            Some("logs/x.log"),
        );
        let text = std::fs::read(dir.path().join(FILE)).unwrap();
        let written = parse_holder(&text).unwrap();
        assert!(written.applying.is_some());
        assert_eq!(
            written.backup.as_deref(),
            Some("terraform.tfstate.20250101-100000")
        );
        assert_eq!(written.log.as_deref(), Some("logs/x.log"));
        assert_eq!(written.pid, std::process::id());
    }

    #[test]
    fn holder_text_from_an_older_tfenv_is_not_taken_for_a_killed_run() {
        // Older tfenvs never emptied the file and wrote no newline.
        let dir = tempfile::tempdir().unwrap();
        let old = b"pid 4242, `tfenv deploy dev`, ci@runner, since 2025-01-01 10:00:00 UTC";
        assert!(unfinished_run(dir.path(), "dev", old).is_none());
    }

    #[test]
    fn a_lock_file_that_is_a_fifo_is_an_error_naming_it_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = EnvLock::acquire(dir.path(), "dev", "deploy", true)
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains(".tfenv.lock` is a FIFO (named pipe), not a regular file"),
            "{err:#}"
        );
        assert!(dead_holder(dir.path()).is_err());
    }

    #[test]
    fn only_a_holder_whose_process_is_gone_on_this_host_is_dead() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(dead_holder(dir.path()).unwrap(), None);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let mut dead = holder(gone, true);
        dead.host = crate::artifacts::hostname();
        std::fs::write(dir.path().join(FILE), dead.line()).unwrap();
        assert_eq!(dead_holder(dir.path()).unwrap(), Some(dead.clone()));
        // Alive (this test), or on another host: cannot be told dead.
        let mut alive = dead.clone();
        alive.pid = std::process::id();
        std::fs::write(dir.path().join(FILE), alive.line()).unwrap();
        assert_eq!(dead_holder(dir.path()).unwrap(), None);
        dead.host = "elsewhere".into();
        std::fs::write(dir.path().join(FILE), dead.line()).unwrap();
        assert_eq!(dead_holder(dir.path()).unwrap(), None);
    }
}
