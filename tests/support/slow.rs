//! The slow-apply project the interrupt and lock suites share: one development
//! environment `dev` whose apply runs a provisioner's `sleep`, on the local or s3 backend.

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
