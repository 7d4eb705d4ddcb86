//! The local backend: the state is a file (`path`, default `terraform.tfstate`) beside
//! the root module; a non-default workspace lives under `workspace_dir/<name>/`.

use std::path::{Path, PathBuf};

use super::Backend;
use super::lock::{LockState, StateLock};
use crate::lock_info::LockInfo;

pub(super) fn state_file(backend: &Backend, root: &Path) -> PathBuf {
    crate::project::own_files::local_state_path(
        root,
        backend.setting("path").as_deref(),
        backend.setting("workspace_dir").as_deref(),
        backend.workspace_name(),
    )
}

impl Backend {
    /// Gives `env`'s local state file and its `.backup` mode 0600, as every file tfenv
    /// keeps: terraform creates them with the umask's mode (0644 as a rule), and a state
    /// holds every secret. terraform rewrites both in place afterwards, so once tightened
    /// they stay so. Nothing to do for a remote backend, or for a file that is not there.
    pub fn make_state_private(&self, env: &crate::project::Environment) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let Some(state) = self.local_state_file(env) else {
            return Ok(());
        };
        let name = state
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for file in [
            state.clone(),
            state.with_file_name(format!("{name}.backup")),
        ] {
            let Ok(meta) = std::fs::symlink_metadata(&file) else {
                continue;
            };
            if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(
                    |e| anyhow::anyhow!("setting mode 0600 on `{}`: {e}", file.display()),
                )?;
            }
        }
        Ok(())
    }
}

/// The lock of a local state: terraform holds an fcntl write lock on the state file and
/// writes `.<name>.lock.info` beside it. An info file without the OS lock is a leftover
/// of a killed run (stale), not a lock. An empty info file is what a run leaves when it
/// took the OS lock but could not write the info (a full disk): it names no holder.
pub(super) fn read_lock(state_file: &Path) -> anyhow::Result<StateLock> {
    let info_file = info_file(state_file);
    let source = format!("file:{}", info_file.display());
    let info = match read_info_file(&info_file)? {
        None => None,
        Some(text) if text.trim().is_empty() => Some(None),
        Some(text) => {
            Some(Some(LockInfo::parse(&text).map_err(|e| {
                anyhow::anyhow!("`{}`: {e}", info_file.display())
            })?))
        }
    };
    let os_lock = os_lock_holder(state_file)?;
    Ok(match (info, os_lock) {
        (Some(Some(info)), Some(_)) => StateLock::held_by(info, source),
        (Some(Some(info)), None) => StateLock::new(LockState::Stale(info), source).noting(format!(
            "`{}` is left over from a run that died; no process holds the lock",
            info_file.display()
        )),
        (Some(None), Some(pid)) => StateLock::new(LockState::HeldUnknown, source).noting(format!(
            "process {pid} holds the state file's lock, and its lock info file `{}` is empty (it could not be written; is the disk full?)",
            info_file.display()
        )),
        (Some(None), None) => StateLock::new(LockState::StaleEmpty, source).noting(format!(
            "`{}` is an empty leftover of a run that could not write its lock info (a full disk?); no process holds the lock",
            info_file.display()
        )),
        (None, Some(pid)) => StateLock::new(LockState::HeldUnknown, source).noting(format!(
            "process {pid} holds the state file's lock but wrote no lock info"
        )),
        (None, None) => StateLock::free(source),
    })
}

/// Removes the lock info file a dead run left beside a local state. It takes the state
/// file's OS lock first, as terraform does before writing the info, so the info file of
/// a run that starts meanwhile is never the one removed. `Ok(None)`: nothing to remove.
pub(super) fn clear_stale_lock(state_file: &Path) -> anyhow::Result<Option<PathBuf>> {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;
    let info_file = info_file(state_file);
    if read_info_file(&info_file)?.is_none() {
        return Ok(None);
    }
    // Held until the end of this function: closing the file releases it.
    let _state = match std::fs::OpenOptions::new().write(true).open(state_file) {
        Ok(file) => {
            let lock = libc::flock {
                l_type: libc::F_WRLCK as libc::c_short,
                l_whence: libc::SEEK_SET as libc::c_short,
                l_start: 0,
                l_len: 0,
                l_pid: 0,
            };
            if fcntl(&file, FcntlArg::F_SETLK(&lock)).is_err() {
                anyhow::bail!(
                    "a process holds the lock of `{}`: the lock info is not stale",
                    state_file.display()
                );
            }
            Some(file)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            return Err(
                anyhow::Error::new(err).context(format!("opening `{}`", state_file.display()))
            );
        }
    };
    match std::fs::remove_file(&info_file) {
        Ok(()) => Ok(Some(info_file)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => {
            Err(anyhow::Error::new(err).context(format!("removing `{}`", info_file.display())))
        }
    }
}

/// `.<name>.lock.info` beside the state file.
fn info_file(state_file: &Path) -> PathBuf {
    crate::project::own_files::lock_info_file(state_file)
}

/// The lock info file's text; `None` when there is none. Anything but a regular file
/// (a FIFO would block the read forever) is an error naming it.
fn read_info_file(info_file: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::metadata(info_file) {
        Ok(meta) if !meta.is_file() => anyhow::bail!(
            "`{}` is not a regular file; terraform writes its lock info there: remove it",
            info_file.display()
        ),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(
                anyhow::Error::new(err).context(format!("reading `{}`", info_file.display()))
            );
        }
    }
    match std::fs::read(info_file) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => {
            Err(anyhow::Error::new(err).context(format!("reading `{}`", info_file.display())))
        }
    }
}

/// The pid holding a POSIX write lock on `path`, probed with F_GETLK (nothing is locked).
pub(super) fn os_lock_holder(path: &Path) -> anyhow::Result<Option<i32>> {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;
    // A FIFO or device in the state file's place would block `open`.
    if std::fs::metadata(path).is_ok_and(|meta| !meta.is_file()) {
        anyhow::bail!("`{}` is not a regular file", path.display());
    }
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!("opening `{}`", path.display())));
        }
    };
    let mut probe = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(&file, FcntlArg::F_GETLK(&mut probe))
        .map_err(|e| anyhow::anyhow!("probing the lock on `{}`: {e}", path.display()))?;
    Ok((probe.l_type != libc::F_UNLCK as libc::c_short).then_some(probe.l_pid))
}

#[cfg(test)]
mod tests {
    use super::super::tests::backend;
    use super::*;
    use serde_json::json;

    #[test]
    fn relative_paths_resolve_through_a_symlinked_root_like_terraform() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(base.join("shared/infra")).unwrap();
        std::fs::create_dir_all(base.join("project")).unwrap();
        std::os::unix::fs::symlink(base.join("shared/infra"), base.join("project/infra")).unwrap();
        let b = backend("local", json!({"path": "../state/dev.tfstate"}), None);
        assert_eq!(
            state_file(&b, &base.join("project/infra")),
            base.join("shared/state/dev.tfstate")
        );
    }

    #[test]
    fn default_and_workspace_paths() {
        let root = Path::new("/p");
        assert_eq!(
            state_file(&backend("local", json!({}), None), root),
            root.join("terraform.tfstate")
        );
        assert_eq!(
            state_file(
                &backend("local", json!({"path": "../state/dev.tfstate"}), None),
                root
            ),
            Path::new("/state/dev.tfstate")
        );
        assert_eq!(
            state_file(&backend("local", json!({}), Some("qa")), root),
            root.join("terraform.tfstate.d/qa/terraform.tfstate")
        );
    }
}
