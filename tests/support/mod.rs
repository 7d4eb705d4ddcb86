//! Shared by the integration test binaries: a temporary project, the tfenv command with
//! a clean environment, and where the real tools are (installed by scripts/test.sh).

#![allow(dead_code)]

pub mod moto;
pub mod procs;
pub mod slow;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const SETUP: &str = "run `scripts/test.sh` (it installs the test tools into .cache/test-tools), \
or `eval \"$(scripts/test.sh --install-only)\"` before `cargo test`";

/// A throwaway project folder.
pub struct Project {
    pub dir: tempfile::TempDir,
    cli_config: PathBuf,
}

impl Project {
    pub fn empty() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("tfenv-test-")
            .tempdir()
            .unwrap();
        let cli_config = dir.path().join(".terraformrc");
        std::fs::write(&cli_config, "disable_checkpoint = true\n").unwrap();
        Project { dir, cli_config }
    }

    /// A copy of the repository's demo: tfenv.toml, environments/, examples/quickstart.
    pub fn demo() -> Project {
        let project = Project::empty();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        project.copy_from(&repo.join("tfenv.toml"), "tfenv.toml");
        for entry in std::fs::read_dir(repo.join("environments")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            project.copy_from(&path, &format!("environments/{name}"));
        }
        project.copy_from(
            &repo.join("examples/quickstart/main.tf"),
            "examples/quickstart/main.tf",
        );
        project
    }

    fn copy_from(&self, from: &Path, rel: &str) {
        self.write(rel, &std::fs::read_to_string(from).unwrap());
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap()
    }

    /// The last record of `state/<env>/history.jsonl`, parsed.
    pub fn last_history(&self, env: &str) -> serde_json::Value {
        let text = self.read(&format!("state/{env}/history.jsonl"));
        let line = text.lines().last().expect("history.jsonl has a record");
        serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("history line is not JSON ({err}): {line}"))
    }

    /// An executable script at `rel` (a fake terraform, aws, az, …).
    pub fn script(&self, rel: &str, body: &str) -> PathBuf {
        let path = self.write(rel, &format!("#!/usr/bin/env bash\n{body}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// tfenv run in this project, with an environment that does not leak the host's.
    pub fn tfenv(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("tfenv").unwrap();
        cmd.current_dir(self.path())
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("NO_COLOR", "1")
            .env_remove("TFENV_LOG")
            .env_remove("TF_WORKSPACE")
            .env_remove("TF_DATA_DIR")
            .env_remove("TF_PLUGIN_CACHE_DIR");
        cmd
    }

    /// The real terraform run directly in this project, as a user would by hand.
    pub fn terraform(&self, bin: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(bin);
        cmd.env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1");
        cmd
    }
}

/// The terraform for end-to-end tests: `TFENV_TEST_TERRAFORM`, else the one on PATH.
/// It must be ≥ 1.10: the tests use `terraform_data` (1.4) and `use_lockfile` (1.10).
pub fn terraform() -> PathBuf {
    static CHECKED: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let path = match std::env::var_os("TFENV_TEST_TERRAFORM") {
                Some(path) => PathBuf::from(path),
                None => which::which("terraform").map_err(|_| {
                    format!("terraform is not installed and TFENV_TEST_TERRAFORM is not set: {SETUP}")
                })?,
            };
            let output = std::process::Command::new(&path)
                .args(["version", "-json"])
                .env("CHECKPOINT_DISABLE", "1")
                .output()
                .map_err(|e| format!("cannot run `{}`: {e}", path.display()))?;
            let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
            let version = json["terraform_version"].as_str().unwrap_or("unknown").to_string();
            let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
            let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
            if (major, minor) < (1, 10) {
                return Err(format!(
                    "the end-to-end tests need Terraform >= 1.10 (terraform_data, use_lockfile), found {version} at `{}`: \
                     install one on PATH from https://developer.hashicorp.com/terraform/install (the machine image has \
                     1.11.4; PyPI offers only the 1.0.3 that the 1.0 tests use)",
                    path.display()
                ));
            }
            Ok(path)
        })
        .clone()
        .unwrap_or_else(|why| panic!("{why}"))
}

/// Terraform 1.0.3 (installed by scripts/test.sh from PyPI).
pub fn terraform_1_0() -> PathBuf {
    tool(
        "TFENV_TEST_TERRAFORM_1_0",
        ".cache/test-tools/tf103/bin/terraform",
        "Terraform 1.0.3",
    )
}

pub fn moto_server() -> PathBuf {
    tool(
        "TFENV_TEST_MOTO_SERVER",
        ".cache/test-tools/moto/bin/moto_server",
        "moto_server",
    )
}

pub fn aws_cli() -> PathBuf {
    tool(
        "TFENV_TEST_AWS",
        ".cache/test-tools/moto/bin/aws",
        "the aws CLI",
    )
}

fn tool(var: &str, default: &str, what: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(default);
    assert!(
        path.is_file(),
        "{what} is missing ({var} is not set and `{}` does not exist): {SETUP}",
        path.display()
    );
    path
}

/// A wrapper around a real binary that appends each call's arguments to `calls.log`,
/// so a test can see which terraform processes tfenv started.
pub fn recording_wrapper(project: &Project, real: &Path) -> (PathBuf, PathBuf) {
    let log = project.join("calls.log");
    let script = project.script(
        "bin/terraform",
        &format!(
            "echo \"$*\" >> '{}'\nexec '{}' \"$@\"",
            log.display(),
            real.display()
        ),
    );
    (script, log)
}

pub fn stdout_json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not one JSON document ({err}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}
