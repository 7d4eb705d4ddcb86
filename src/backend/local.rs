//! The local backend: the state is a file (`path`, default `terraform.tfstate`) beside
//! the root module; a non-default workspace lives under `workspace_dir/<name>/`.

use std::path::{Path, PathBuf};

use super::Backend;
use super::lock::{LockInfo, LockState};
use crate::project::normalize;

pub(super) fn state_file(backend: &Backend, root: &Path) -> PathBuf {
    // terraform resolves `..` from its working directory physically: through a symlinked
    // root, `../state` is beside the link's target, not beside the link.
    let physical = crate::project::physical(root);
    let root = physical.as_path();
    normalize(&match backend.workspace_name() {
        "default" => root.join(
            backend
                .setting("path")
                .unwrap_or_else(|| "terraform.tfstate".into()),
        ),
        workspace => root
            .join(
                backend
                    .setting("workspace_dir")
                    .unwrap_or_else(|| "terraform.tfstate.d".into()),
            )
            .join(workspace)
            .join("terraform.tfstate"),
    })
}

/// The lock of a local state: terraform holds an fcntl write lock on the state file and
/// writes `.<name>.lock.info` beside it. An info file without the OS lock is a leftover
/// of a killed run (stale), not a lock.
pub(super) fn read_lock(state_file: &Path) -> anyhow::Result<LockState> {
    let name = state_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let info_file = state_file.with_file_name(format!(".{name}.lock.info"));
    let source = format!("file:{}", info_file.display());
    let info = match std::fs::read_to_string(&info_file) {
        Ok(text) => Some(
            LockInfo::parse(&text)
                .map_err(|e| anyhow::anyhow!("`{}`: {e}", info_file.display()))?,
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            return Err(
                anyhow::Error::new(err).context(format!("reading `{}`", info_file.display()))
            );
        }
    };
    let os_lock = os_lock_holder(state_file)?;
    Ok(match (info, os_lock) {
        (Some(info), Some(_)) => LockState::held_by(info, source),
        (Some(info), None) => {
            let mut state = LockState::held_by(info, source);
            state.held = false;
            state.stale = true;
            state.note = Some(format!(
                "`{}` is left over from a run that died; no process holds the lock",
                info_file.display()
            ));
            state
        }
        (None, Some(pid)) => {
            let mut state = LockState::free(source);
            state.held = true;
            state.note = Some(format!(
                "process {pid} holds the state file's lock but wrote no lock info"
            ));
            state
        }
        (None, None) => LockState::free(source),
    })
}

/// The pid holding a POSIX write lock on `path`, probed with F_GETLK (nothing is locked).
fn os_lock_holder(path: &Path) -> anyhow::Result<Option<i32>> {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;
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
