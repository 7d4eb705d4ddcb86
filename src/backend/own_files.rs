//! The files tfenv counts as its own in the user's repository: `state/`, each
//! `.terraform/`, and what terraform's local backend writes for an environment outside
//! `state/` (a `path = "tfstate/prod.tfstate"`, the implicit `terraform.tfstate`, a
//! workspace's `terraform.tfstate.d/`). They hold state and secrets: git must ignore them,
//! and they never make the tree dirty for production's clean-tree check.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{Backend, Backends};
use crate::project::{Environment, Project, physical};

/// A local backend's state outside tfenv's state dir, and what terraform writes beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalStateFiles {
    /// The state file (physical: terraform resolves its path from the real root).
    pub state: PathBuf,
    /// The state file, its `.backup` and its `.<name>.lock.info`.
    pub files: Vec<PathBuf>,
    /// For a non-default workspace: the folder that holds every workspace's state
    /// (`terraform.tfstate.d/`).
    pub workspace_dir: Option<PathBuf>,
}

/// The local states of the project's environments that live outside `state/`, once each.
/// An environment whose backend cannot be resolved is left out: its config problem is
/// reported where it is used.
pub fn local_states(project: &Project) -> Vec<LocalStateFiles> {
    let backends = Backends::default();
    let state_dir = physical(&project.state_dir);
    let mut out: Vec<LocalStateFiles> = Vec::new();
    for env in &project.environments {
        let Ok(backend) = backends.resolve(env, project) else {
            continue;
        };
        let Some(state) = backend.local_state_file(env) else {
            continue;
        };
        if state.starts_with(&state_dir) || out.iter().any(|s| s.state == state) {
            continue;
        }
        let name = state
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let workspace_dir = (backend.workspace_name() != "default")
            .then(|| state.parent().and_then(Path::parent).map(Path::to_path_buf))
            .flatten();
        out.push(LocalStateFiles {
            files: vec![
                state.clone(),
                state.with_file_name(format!("{name}.backup")),
                super::local::info_file(&state),
            ],
            state,
            workspace_dir,
        });
    }
    out
}

/// Every path tfenv counts as its own: the state dir, the `.terraform/` of the project
/// root and of every environment's root, and the local states outside `state/` (a
/// workspace's whole `terraform.tfstate.d/`).
pub fn own_paths(project: &Project) -> Vec<PathBuf> {
    let mut own = vec![project.state_dir.clone(), project.root.join(".terraform")];
    own.extend(
        project
            .environments
            .iter()
            .map(|e| e.root.join(".terraform")),
    );
    for local in local_states(project) {
        match local.workspace_dir {
            Some(dir) => own.push(dir),
            None => own.extend(local.files),
        }
    }
    own
}

/// Gives `env`'s local state file and its `.backup` mode 0600, as every file tfenv keeps:
/// terraform creates them with the umask's mode (0644 as a rule), and a state holds every
/// secret. terraform rewrites both in place afterwards, so once tightened they stay so.
/// Nothing to do for a remote backend, or for a file that is not there.
pub fn make_state_private(backend: &Backend, env: &Environment) -> anyhow::Result<()> {
    let Some(state) = backend.local_state_file(env) else {
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
            std::fs::set_permissions(
                &file,
                std::fs::Permissions::from_mode(crate::artifacts::PRIVATE_FILE),
            )
            .with_context(|| format!("setting mode 0600 on `{}`", file.display()))?;
        }
    }
    Ok(())
}
