//! Shared by the integration test binaries: a temporary project, the tfenv command with
//! a clean environment, a fake terraform (`fake`), fake `az` and `gcloud` (`clouds`), a
//! running tfenv (`running`), the slow project of the lock and interrupt suites (`slow`),
//! snapshot filters (`snap`), the real test provider `tfenv/tfenvtest` (`provider`), and
//! where the real tools are (installed by scripts/test.sh).

#![allow(dead_code)]

pub mod clouds;
pub mod fake;
pub mod moto;
pub mod procs;
pub mod provider;
pub mod running;
pub mod slow;
pub mod snap;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

pub const SETUP: &str = "run `scripts/test.sh` (it installs the test tools into .cache/test-tools), \
or `eval \"$(scripts/test.sh --install-only)\"` before `cargo test`";

/// A throwaway project folder.
pub struct Project {
    pub dir: tempfile::TempDir,
    cli_config: PathBuf,
    /// The host's PATH without the aws CLI (see `path_without_aws`).
    path: std::ffi::OsString,
    /// Where that PATH's stand-in folders live, removed with the project.
    _path_dir: tempfile::TempDir,
}

impl Project {
    pub fn empty() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("tfenv-test-")
            .tempdir()
            .unwrap();
        let cli_config = dir.path().join(".terraformrc");
        std::fs::write(&cli_config, "disable_checkpoint = true\n").unwrap();
        let path_dir = tempfile::Builder::new()
            .prefix("tfenv-test-path-")
            .tempdir()
            .unwrap();
        let path = path_without_aws(path_dir.path());
        Project {
            dir,
            cli_config,
            path,
            _path_dir: path_dir,
        }
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

    /// A copy of the demo in a folder of this project named `name` (bytes: it may be
    /// a name that is not UTF-8).
    pub fn demo_in_folder(&self, name: &[u8]) -> PathBuf {
        let demo = Project::demo();
        let dir = self.path().join(OsStr::from_bytes(name));
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(demo.path())
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        dir
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The terraform CLI config every command run here gets (`disable_checkpoint`).
    pub fn cli_config(&self) -> &Path {
        &self.cli_config
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

    /// The file's text, or "" while it does not exist.
    pub fn read_or_empty(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_default()
    }

    /// The last record of `state/<env>/history.jsonl`, parsed. Read as bytes: the file
    /// may hold other lines that are not UTF-8.
    pub fn last_history(&self, env: &str) -> serde_json::Value {
        let bytes = std::fs::read(self.join(&format!("state/{env}/history.jsonl"))).unwrap();
        let line = bytes
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .expect("history.jsonl has a record");
        serde_json::from_slice(line).unwrap_or_else(|err| {
            panic!(
                "the last history line is not JSON ({err}): {}",
                String::from_utf8_lossy(line)
            )
        })
    }

    /// An executable script at `rel` (a fake aws, az, git, …; a fake terraform is
    /// `fake::FakeTerraform`).
    pub fn script(&self, rel: &str, body: &str) -> PathBuf {
        let path = self.write(rel, &format!("#!/usr/bin/env bash\n{body}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// PATH with the project's `bin/` (its fakes) first, then only the system's basic
    /// tools: a CLI the test did not fake is not found.
    pub fn fake_path(&self) -> String {
        format!("{}:/usr/bin:/bin", self.join("bin").display())
    }

    /// The built tfenv as a std command, run in this project with an environment that
    /// does not leak the host's. The base of `tfenv()`, and of every test that starts
    /// tfenv some other way (in the background, in a terminal).
    pub fn command(&self) -> std::process::Command {
        self.command_via(&[])
    }

    /// `command()` started through a wrapper that runs tfenv, which it gets as its last
    /// argument, with tfenv's arguments after it: `["setsid", "--ctty"]`, `["nohup"]`,
    /// `["bash", "-c", "ulimit -f 0; exec \"$0\" \"$@\""]`.
    pub fn command_via(&self, wrapper: &[&str]) -> std::process::Command {
        let tfenv = assert_cmd::cargo::cargo_bin("tfenv");
        let mut cmd = match wrapper.split_first() {
            None => std::process::Command::new(&tfenv),
            Some((program, args)) => {
                let mut cmd = std::process::Command::new(program);
                cmd.args(args).arg(&tfenv);
                cmd
            }
        };
        cmd.current_dir(self.path())
            // tfenv speaks S3 and DynamoDB itself: no test may lean on an aws CLI.
            .env("PATH", &self.path)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("NO_COLOR", "1")
            .env_remove("TFENV_LOG")
            // Plan bundles' keys come from the test, never from the host.
            .env_remove("TFENV_BUNDLE_RECIPIENTS")
            .env_remove("TFENV_BUNDLE_IDENTITY")
            .env_remove("TFENV_BUNDLE_PASSPHRASE")
            // A job summary goes where the test says, never into the CI run of the tests.
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("TF_WORKSPACE")
            .env_remove("TF_DATA_DIR")
            // A shell switched by `tfenv env` must not switch the tests' tfenv.
            .env_remove("TFENV_ENV")
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_S3")
            .env_remove("AWS_ENDPOINT_URL_DYNAMODB");
        cmd
    }

    /// The PATH tfenv gets here unless the test sets its own: the host's, without the
    /// aws CLI (see `path_without_aws`).
    pub fn host_path(&self) -> &std::ffi::OsStr {
        &self.path
    }

    /// tfenv run in this project (see `command`), to assert on.
    pub fn tfenv(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.command())
    }

    /// `tfenv --terraform <terraform> …` in this project.
    pub fn tfenv_with(&self, terraform: impl AsRef<Path>) -> assert_cmd::Command {
        let mut cmd = self.tfenv();
        cmd.arg("--terraform").arg(terraform.as_ref());
        cmd
    }

    /// `tfenv --terraform <the end-to-end terraform>` (see `terraform()`) in this project.
    pub fn tfenv_real(&self) -> assert_cmd::Command {
        self.tfenv_with(terraform())
    }

    /// `tfenv --terraform <terraform> <args>` run to its end (within two minutes).
    pub fn run_with(&self, terraform: impl AsRef<Path>, args: &[&str]) -> Output {
        self.tfenv_with(terraform)
            .args(args)
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap()
    }

    /// The real terraform run directly in this project, as a user would by hand.
    pub fn terraform(&self, bin: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(bin);
        cmd.env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1");
        cmd
    }

    /// `git <args>` in this project (see `git`).
    pub fn git(&self, args: &[&str]) -> String {
        git(self.path(), args)
    }
}

/// The host's PATH with no `aws` on it: each folder that holds an `aws` is replaced by
/// a folder (made in `dir`) of links to everything else in it, so that terraform, git
/// and the rest are still found. Panics if `aws` can still be found.
pub fn path_without_aws(dir: &Path) -> std::ffi::OsString {
    let host = std::env::var_os("PATH").unwrap_or_default();
    let mut folders = Vec::new();
    for (index, folder) in std::env::split_paths(&host).enumerate() {
        if !folder.join("aws").exists() {
            folders.push(folder);
            continue;
        }
        let stand_in = dir.join(format!("path-{index}"));
        std::fs::create_dir_all(&stand_in).unwrap();
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let name = entry.file_name();
            if name != "aws" {
                let _ = std::os::unix::fs::symlink(entry.path(), stand_in.join(&name));
            }
        }
        folders.push(stand_in);
    }
    let path = std::env::join_paths(folders).unwrap();
    assert!(
        which::which_in("aws", Some(&path), dir).is_err(),
        "the tests' PATH still finds an aws CLI: {}",
        path.display()
    );
    path
}

/// `git <args>` in `dir`, which must succeed; its stdout. Commits get a fixed author,
/// and GIT_DIR / GIT_WORK_TREE from the host cannot point it elsewhere.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=tfenv test",
            "-c",
            "user.email=test@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git is needed for these tests: install git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
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
            let version = terraform_version(&path)?;
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

/// What `<bin> version -json` says its version is.
pub fn terraform_version(bin: &Path) -> Result<String, String> {
    let output = std::process::Command::new(bin)
        .args(["version", "-json"])
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", bin.display()))?;
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    Ok(json["terraform_version"]
        .as_str()
        .unwrap_or("unknown")
        .to_string())
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

pub fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not one JSON document ({err}):\n{}",
            output_text(output)
        )
    })
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A finished command's exit code and both output streams, for failure messages.
pub fn output_text(output: &Output) -> String {
    format!(
        "--- exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Fails the test (showing the output) unless the command exited with `code`.
pub fn expect_code(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "expected exit {code}\n{}",
        output_text(output)
    );
}

/// `expect_code`, passing the output on.
pub fn expecting(output: Output, code: i32) -> Output {
    expect_code(&output, code);
    output
}

/// Polls `done` until it holds; fails the test, saying `what` did not happen, after
/// `within`.
pub fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < within,
            "{what}: not within {}s",
            within.as_secs_f32()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
