//! The files tfenv counts as its own in the user's repository: `state/`, each
//! `.terraform/`, and what terraform's local backend writes for an environment outside
//! `state/` (a `path = "tfstate/prod.tfstate"`, the implicit `terraform.tfstate`, a
//! workspace's `terraform.tfstate.d/`). They hold state and secrets: git must ignore them,
//! and they never make the tree dirty for production's clean-tree check. Here, below git
//! and .gitignore, so that both can ask; the backend layer uses the same path rule.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::hcl::{self, BackendBlock, Settings};
use super::{Project, normalize, physical};

/// Where terraform's local backend keeps the state of `workspace` for the root module
/// `root`, from its `path` and `workspace_dir` settings.
pub fn local_state_path(
    root: &Path,
    path: Option<&str>,
    workspace_dir: Option<&str>,
    workspace: &str,
) -> PathBuf {
    // terraform resolves `..` from its working directory physically: through a symlinked
    // root, `../state` is beside the link's target, not beside the link.
    let root = physical(root);
    normalize(&match workspace {
        "default" => root.join(path.unwrap_or("terraform.tfstate")),
        workspace => root
            .join(workspace_dir.unwrap_or("terraform.tfstate.d"))
            .join(workspace)
            .join("terraform.tfstate"),
    })
}

/// The lock info file terraform writes beside a local state: `.<name>.lock.info`.
pub fn lock_info_file(state_file: &Path) -> PathBuf {
    let name = state_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    state_file.with_file_name(format!(".{name}.lock.info"))
}

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
/// An environment whose configuration cannot be read, or whose backend is not local, is
/// left out (its config problem is reported where it is used).
pub fn local_states(project: &Project) -> Vec<LocalStateFiles> {
    let state_dir = physical(&project.state_dir);
    let mut blocks: HashMap<&Path, Option<BackendBlock>> = HashMap::new();
    let mut out: Vec<LocalStateFiles> = Vec::new();
    for env in &project.environments {
        if env.check_config().is_err() {
            continue;
        }
        let block = blocks.entry(&env.root).or_insert_with(|| {
            hcl::read_backend_block(&env.root, &project.root)
                .ok()
                .flatten()
        });
        // The backend type as the backend layer decides it: the block, else tfenv.toml.
        let local = match (&*block, &env.backend_type) {
            (Some(block), _) => block.kind == "local",
            (None, configured) => configured.as_deref().is_none_or(|kind| kind == "local"),
        };
        if !local {
            continue;
        }
        let mut settings: Settings = block
            .as_ref()
            .map(|b| b.settings.clone())
            .unwrap_or_default();
        if let Some(path) = &env.backend_config {
            match hcl::read_settings(path, &project.root) {
                Ok(more) => settings.extend(more),
                Err(_) => continue,
            }
        }
        let workspace = env.workspace.as_deref().unwrap_or("default");
        let state = local_state_path(
            &env.root,
            setting(&settings, "path").as_deref(),
            setting(&settings, "workspace_dir").as_deref(),
            workspace,
        );
        if state.starts_with(&state_dir) || out.iter().any(|s| s.state == state) {
            continue;
        }
        let name = state
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let workspace_dir = (workspace != "default")
            .then(|| state.parent().and_then(Path::parent).map(Path::to_path_buf))
            .flatten();
        out.push(LocalStateFiles {
            files: vec![
                state.clone(),
                state.with_file_name(format!("{name}.backup")),
                lock_info_file(&state),
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

/// A backend setting as text, when it is a string, number or bool.
fn setting(settings: &Settings, name: &str) -> Option<String> {
    match settings.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
