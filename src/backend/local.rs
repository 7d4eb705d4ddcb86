//! The local backend: the state is a file (`path`, default `terraform.tfstate`) beside
//! the root module; a non-default workspace lives under `workspace_dir/<name>/`.

use std::path::{Path, PathBuf};

use super::Backend;
use crate::project::normalize;

pub(super) fn state_file(backend: &Backend, root: &Path) -> PathBuf {
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

#[cfg(test)]
mod tests {
    use super::super::tests::backend;
    use super::*;
    use serde_json::json;

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
