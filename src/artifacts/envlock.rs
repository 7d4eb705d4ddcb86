//! tfenv's own lock per environment in this checkout (`state/<env>/.tfenv.lock`, an OS
//! file lock): a second tfenv on the same environment stops at once and says who holds it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;

use crate::error::TfenvError;

/// Held until dropped; the OS releases it if tfenv dies.
pub struct EnvLock {
    _file: File,
}

impl EnvLock {
    pub fn acquire(artifacts_dir: &Path, env: &str, command: &str) -> anyhow::Result<EnvLock> {
        super::ensure_private_dir(artifacts_dir)?;
        let path = artifacts_dir.join(".tfenv.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(super::PRIVATE_FILE)
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
        let who = format!(
            "pid {}, `tfenv {command}`, {}@{}, since {}",
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
        Ok(EnvLock { _file: file })
    }
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
}
