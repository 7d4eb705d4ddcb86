//! tfenv's own lock per environment in this checkout (`state/<env>/.tfenv.lock`, an OS
//! file lock): a second tfenv on the same environment stops at once and says who holds it,
//! and the next one after a run that was killed (SIGKILL, a crash) says so.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;

use crate::error::TfenvError;

/// The plan file a run keeps only while it runs (the pipeline removes it on every way out).
const PLAN_FILE: &str = "terraform.plan";

/// Held until dropped; the OS releases it if tfenv dies.
///
/// While held, the file names its holder; a clean release empties it. So a holder's name
/// found by the next run that gets the lock means that run ended without releasing it:
/// it was killed (SIGKILL cannot be caught) or crashed, maybe in the middle of an apply.
pub struct EnvLock {
    file: File,
}

impl EnvLock {
    pub fn acquire(artifacts_dir: &Path, env: &str, command: &str) -> anyhow::Result<EnvLock> {
        crate::files::ensure_private_dir(artifacts_dir)?;
        let path = artifacts_dir.join(".tfenv.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(crate::files::PRIVATE_FILE)
            .open(&path)
            .with_context(|| format!("opening `{}`", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(TfenvError::Locked {
                    message: format!(
                        "environment `{env}` is busy: another tfenv holds it ({})",
                        if holder.is_empty() {
                            "holder unknown"
                        } else {
                            holder
                        }
                    ),
                    hint: Some(
                        "wait for that run to finish; the lock goes away with its process"
                            .to_string(),
                    ),
                }
                .into());
            }
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("locking `{}`", path.display()));
            }
        }
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        if let Some(warning) = unfinished_run(artifacts_dir, env, &previous) {
            crate::output::stderr_line(&format!("warning: {warning}"));
            // Useless now (terraform refuses a stale plan) and it would be reported again.
            let _ = std::fs::remove_file(artifacts_dir.join(PLAN_FILE));
        }
        // The newline marks text written by a tfenv that empties the file on release;
        // older ones left their holder text behind on every exit.
        let who = format!(
            "pid {}, `tfenv {command}`, {}@{}, since {}\n",
            std::process::id(),
            super::whoami(),
            super::hostname(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        );
        // Best effort: the lock itself is the OS lock, this text only names its holder.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(who.as_bytes()));
        Ok(EnvLock { file })
    }
}

impl Drop for EnvLock {
    fn drop(&mut self) {
        // Released cleanly: nothing for the next run to report. (The OS lock goes with
        // the file handle, right after.)
        let _ = self.file.set_len(0);
    }
}

/// What a run that was killed left behind, as a warning for the next run on `env`: its
/// holder text in the lock file (see [`EnvLock`]) and/or its plan file.
fn unfinished_run(artifacts_dir: &Path, env: &str, previous_holder: &str) -> Option<String> {
    let holder = previous_holder
        .ends_with('\n')
        .then(|| previous_holder.trim())
        .filter(|holder| !holder.is_empty());
    let plan = artifacts_dir.join(PLAN_FILE);
    let plan_left = plan.is_file();
    let what = match (holder, plan_left) {
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
    Some(format!(
        "{what}\n  terraform may have been in the middle of an apply, and may still be running: \
         check the state and its lock with `tfenv status {env}` and `tfenv lock {env}` before trusting this run"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = EnvLock::acquire(dir.path(), "dev", "deploy dev").unwrap();
        let err = EnvLock::acquire(dir.path(), "dev", "deploy dev")
            .err()
            .unwrap();
        let typed = err.downcast_ref::<TfenvError>().unwrap();
        assert_eq!(typed.exit(), crate::exit::Exit::Locked);
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        EnvLock::acquire(dir.path(), "dev", "deploy dev").unwrap();
    }

    #[test]
    fn a_lock_released_normally_leaves_nothing_to_report() {
        let dir = tempfile::tempdir().unwrap();
        drop(EnvLock::acquire(dir.path(), "dev", "deploy dev").unwrap());
        let left = std::fs::read_to_string(dir.path().join(".tfenv.lock")).unwrap();
        assert_eq!(left, "", "a clean release empties the holder text");
        assert_eq!(unfinished_run(dir.path(), "dev", &left), None);
    }

    #[test]
    fn a_holder_that_never_released_the_lock_is_reported_as_killed() {
        let dir = tempfile::tempdir().unwrap();
        let holder = "pid 4242, `tfenv deploy dev`, ci@runner, since 2025-01-01 10:00:00 UTC\n";
        let warning = unfinished_run(dir.path(), "dev", holder).unwrap();
        assert!(
            warning.contains("pid 4242, `tfenv deploy dev`"),
            "{warning}"
        );
        assert!(warning.contains("was killed"), "{warning}");
        assert!(
            warning.contains("`tfenv status dev`") && warning.contains("`tfenv lock dev`"),
            "{warning}"
        );
        assert!(!warning.contains("plan"), "{warning}");
    }

    #[test]
    fn a_plan_file_left_behind_is_reported_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PLAN_FILE), b"plan").unwrap();
        let warning = unfinished_run(dir.path(), "dev", "").unwrap();
        assert!(warning.contains("terraform.plan"), "{warning}");
        // The run proceeds, and the next one has nothing to report.
        drop(EnvLock::acquire(dir.path(), "dev", "deploy dev").unwrap());
        assert!(!dir.path().join(PLAN_FILE).exists());
        let left = std::fs::read_to_string(dir.path().join(".tfenv.lock")).unwrap();
        assert_eq!(unfinished_run(dir.path(), "dev", &left), None);
    }

    #[test]
    fn holder_text_from_an_older_tfenv_is_not_taken_for_a_killed_run() {
        // Older tfenvs never emptied the file and wrote no newline.
        let dir = tempfile::tempdir().unwrap();
        let old = "pid 4242, `tfenv deploy dev`, ci@runner, since 2025-01-01 10:00:00 UTC";
        assert_eq!(unfinished_run(dir.path(), "dev", old), None);
    }
}
