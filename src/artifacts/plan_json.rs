//! A plan's JSON (`terraform show -json`) on disk. It holds every planned value, secrets
//! included: written 0600 in a private folder and, outside a plan bundle (which keeps
//! its own), it lives only while the policy gate reads it.

use std::path::{Path, PathBuf};

use crate::files;
use crate::project::Environment;

/// The file's name, in `state/<env>/` and in a plan bundle.
pub const FILE_NAME: &str = "plan.json";

/// Writes a plan's JSON to `path`: atomically, mode 0600. The folder must exist (and be
/// private: `files::ensure_private_dir`).
pub fn write(path: &Path, json: &[u8]) -> anyhow::Result<()> {
    files::write_atomic(path, json, files::PRIVATE_FILE)
}

/// `state/<env>/plan.json` for the length of one run: removed when dropped, whichever
/// way the run ends (success, refusal, failure, interrupt).
pub struct TempPlanJson(PathBuf);

impl TempPlanJson {
    pub fn write(env: &Environment, json: &[u8]) -> anyhow::Result<TempPlanJson> {
        files::ensure_private_dir(&env.artifacts_dir)?;
        let file = TempPlanJson(env.artifacts_dir.join(FILE_NAME));
        write(&file.0, json)?;
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPlanJson {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A `plan.json` left by a tfenv that was killed (SIGKILL) while its policy ran: removed
/// before the next run of the environment plans, so secrets do not linger.
pub fn remove_leftover(env: &Environment) {
    let _ = std::fs::remove_file(env.artifacts_dir.join(FILE_NAME));
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_plan_json_is_private_and_gone_once_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("tfenv.toml"), "[environments.dev]\n").unwrap();
        let project = crate::project::Project::load(tmp.path(), None).unwrap();
        let env = project.environment("dev").unwrap();
        let file = TempPlanJson::write(env, b"{\"secret\":\"s3cr3t\"}").unwrap();
        let path = file.path().to_path_buf();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&env.artifacts_dir)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        drop(file);
        assert!(!path.exists());
    }
}
