//! The slow-apply project the interrupt and lock suites share: one development
//! environment `dev` whose apply runs a provisioner's `sleep` (a `terraform_data` whose
//! input changes each deploy), on the local or s3 backend, deployed by the real terraform.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::moto::Moto;
use super::running::RunningTfenv;
use super::{Project, expect_code, stdout_json};

/// How long a tfenv command run to its end may take before the test gives up on it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Printed (prefixed `[dev] `) when the provisioner starts its command: terraform holds
/// the state lock. The test then also waits for the `sleep` itself to run.
pub const APPLY_RUNNING: &str = "terraform_data.slow (local-exec): Executing:";

pub const MAIN_TF: &str = r#"terraform {
  backend "BACKEND" {}
}

variable "run_id" {
  type = string
}

variable "sleep" {
  type = number
}

resource "terraform_data" "slow" {
  input = var.run_id

  provisioner "local-exec" {
    command = "sleep ${var.sleep}"
  }
}

output "run_id" {
  value = terraform_data.slow.output
}
"#;

pub const TFENV_TOML: &str = r#"[project]
state_dir = "state"

[environments.dev]
tier = "development"
backend_config = "environments/dev.backend.conf"
var_files = ["environments/dev.tfvars"]
"#;

/// Where the dev state lives with the local backend (relative to the project root,
/// which is the root module).
pub const LOCAL_STATE: &str = "state/dev/terraform.tfstate";
pub const LOCAL_LOCK_INFO: &str = "state/dev/.terraform.tfstate.lock.info";

pub const BUCKET: &str = "tfstate-test";
pub const KEY: &str = "dev/terraform.tfstate";
pub const TABLE: &str = "tf-locks";

/// A project with one development environment `dev` (see the module's header).
pub struct SlowProject {
    pub project: Project,
    pub terraform: PathBuf,
}

impl SlowProject {
    /// The slow module on the local backend.
    pub fn local() -> SlowProject {
        SlowProject::slow("local", &format!("path = \"{LOCAL_STATE}\"\n"))
    }

    /// The slow module on the s3 backend of `moto`, with a bucket and lock table made.
    pub fn s3(moto: &Moto) -> SlowProject {
        moto.create_bucket(BUCKET);
        moto.create_lock_table(TABLE);
        SlowProject::slow("s3", &moto.backend_conf(BUCKET, KEY, TABLE))
    }

    /// The slow module on `backend`, configured by `backend_conf`.
    pub fn slow(backend: &str, backend_conf: &str) -> SlowProject {
        SlowProject::new(
            &MAIN_TF.replace("BACKEND", backend),
            backend_conf,
            super::terraform(),
        )
    }

    /// Any root module `main_tf` for `dev`, deployed with `terraform`.
    pub fn new(main_tf: &str, backend_conf: &str, terraform: PathBuf) -> SlowProject {
        let project = Project::empty();
        project.write("tfenv.toml", TFENV_TOML);
        project.write("main.tf", main_tf);
        project.write("environments/dev.backend.conf", backend_conf);
        SlowProject { project, terraform }
    }

    /// The next deploy changes `terraform_data.slow`, whose provisioner sleeps `sleep` s.
    pub fn set_vars(&self, run_id: u32, sleep: u32) {
        self.project.write(
            "environments/dev.tfvars",
            &format!("run_id = \"run-{run_id}\"\nsleep  = {sleep}\n"),
        );
    }

    /// `tfenv --terraform <tf>` in the project (see `Project::command_via`).
    pub fn command_via(&self, wrapper: &[&str]) -> Command {
        // The project's PATH: the host's without the aws CLI (tfenv reads s3 itself).
        let mut cmd = self.project.command_via(wrapper);
        cmd.arg("--terraform").arg(&self.terraform);
        cmd
    }

    /// Runs `tfenv --terraform <tf> <args>` to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command_via(&[]);
        cmd.args(args);
        let mut cmd = assert_cmd::Command::from_std(cmd);
        cmd.timeout(COMMAND_TIMEOUT);
        cmd.output().unwrap()
    }

    /// Runs tfenv and checks its exit code.
    pub fn run_expecting(&self, args: &[&str], code: i32) -> Output {
        let output = self.run(args);
        expect_code(&output, code);
        output
    }

    /// `tfenv lock dev --output json`, which must succeed.
    pub fn lock_json(&self) -> serde_json::Value {
        stdout_json(&self.run_expecting(&["lock", "dev", "--output", "json"], 0))
    }

    /// `tfenv deploy dev --yes` as a child process, its output collected as it arrives.
    pub fn spawn_deploy(&self) -> RunningTfenv {
        let mut cmd = self.command_via(&[]);
        cmd.args(["deploy", "dev", "--yes"]);
        RunningTfenv::spawn(cmd)
    }

    /// `tfenv deploy dev --yes` with a terminal as its controlling terminal, stdin,
    /// stdout and stderr (see `RunningTfenv::spawn_in_terminal`).
    pub fn spawn_deploy_in_terminal(&self) -> RunningTfenv {
        let mut cmd = self.command_via(&["setsid", "--ctty"]);
        cmd.args(["deploy", "dev", "--yes"]);
        RunningTfenv::spawn_in_terminal(cmd)
    }

    /// A `tfenv deploy dev --yes` with a fast provisioner: it must get the state lock at
    /// once and apply. Returns how long it took.
    pub fn deploy_succeeds(&self, run_id: u32) -> Duration {
        self.set_vars(run_id, 0);
        let started = Instant::now();
        let output = self.run(&["deploy", "dev", "--yes"]);
        let took = started.elapsed();
        assert_eq!(
            output.status.code(),
            Some(0),
            "the deploy failed: a state lock left behind?\n{}",
            super::output_text(&output)
        );
        let last = self.last_history();
        assert_eq!(last["command"], "deploy", "{last}");
        assert_eq!(last["result"], "applied", "{last}");
        assert_eq!(last["exit_code"], 0, "{last}");
        let outputs = self.project.read("state/dev/outputs.json");
        assert!(
            outputs.contains(&format!("run-{run_id}")),
            "outputs.json holds the new run: {outputs}"
        );
        took
    }

    pub fn plan_file(&self) -> PathBuf {
        self.project.join("state/dev/terraform.plan")
    }

    /// The last line of `state/dev/history.jsonl`, parsed.
    pub fn last_history(&self) -> serde_json::Value {
        self.project.last_history("dev")
    }
}
