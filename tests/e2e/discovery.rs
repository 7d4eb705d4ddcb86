//! A discovered layout variant deployed with the real terraform: `envs/<env>/` with an
//! inline local backend and var files terraform loads itself.

use serde_json::json;

use crate::support::{self, Project, recording_wrapper};

#[test]
fn an_envs_folder_with_an_inline_backend_deploys_with_each_var_file_applied_once_in_terraforms_order()
 {
    let project = Project::empty();
    project.write(
        "envs/dev/main.tf",
        r#"terraform {
  backend "local" {
    path = "dev.tfstate"
  }
}
variable "region" {}
variable "size" {}
variable "tags" { type = list(string) }
resource "terraform_data" "app" { input = "${var.region}-${var.size}" }
output "region" { value = var.region }
output "size" { value = var.size }
output "tags" { value = var.tags }
"#,
    );
    // Terraform reads terraform.tfvars, then *.auto.tfvars, then -var-file: the
    // environment's own file wins. Passed again with -var-file, terraform.tfvars would
    // come last and undo it.
    project.write(
        "envs/dev/terraform.tfvars",
        "region = \"eu-west-1\"\nsize = \"small\"\ntags = [\"base\"]\n",
    );
    project.write("envs/dev/tags.auto.tfvars", "tags = [\"auto\"]\n");
    project.write("envs/dev/override.tfvars", "size = \"large\"\n");
    let (wrapper, calls) = recording_wrapper(&project, &support::terraform());
    let output = project.run_with(&wrapper, &["deploy", "dev", "--yes"]);
    support::expect_code(&output, 0);

    let outputs: serde_json::Value =
        serde_json::from_str(&project.read("state/dev/outputs.json")).unwrap();
    let values = json!([
        outputs["region"]["value"],
        outputs["size"]["value"],
        outputs["tags"]["value"]
    ]);
    assert_eq!(values, json!(["eu-west-1", "large", ["auto"]]));
    assert!(
        project.join("envs/dev/dev.tfstate").is_file(),
        "the inline backend's state"
    );
    let log = std::fs::read_to_string(calls).unwrap();
    assert!(log.lines().any(|l| l.starts_with("plan")), "{log}");
    for call in log.lines().filter(|l| l.starts_with("plan")) {
        let var_files: Vec<&str> = call
            .split(' ')
            .filter(|arg| arg.starts_with("-var-file="))
            .collect();
        assert_eq!(var_files.len(), 1, "{call}");
        assert!(var_files[0].ends_with("envs/dev/override.tfvars"), "{call}");
    }
    let stderr = support::stderr(&output);
    assert!(!stderr.to_lowercase().contains("duplicate"), "{stderr}");
}

#[test]
fn a_symlinked_env_folder_never_deploys_prod_into_devs_state() {
    let project = Project::empty();
    project.write(
        "envs/dev/main.tf",
        r#"terraform {
  backend "local" {
    path = "env.tfstate"
  }
}
variable "name" {}
resource "terraform_data" "app" { input = var.name }
"#,
    );
    project.write("envs/dev/dev.tfvars", "name = \"dev\"\n");
    std::os::unix::fs::symlink("dev", project.join("envs/prod")).unwrap();
    let terraform = support::terraform();
    let output = project.run_with(&terraform, &["deploy", "dev", "--yes"]);
    support::expect_code(&output, 0);
    let before = project.read("envs/dev/env.tfstate");

    let output = project.run_with(&terraform, &["deploy", "prod", "--yes"]);
    support::expect_code(&output, 2);
    assert!(
        support::stderr(&output).contains("environment `prod` is not defined (known: dev)"),
        "{}",
        support::stderr(&output)
    );
    assert_eq!(
        project.read("envs/dev/env.tfstate"),
        before,
        "dev's state untouched"
    );

    // Declared on the one state: refused by name, dev's state still untouched.
    project.write(
        "tfenv.toml",
        "[environments.dev]\nroot = \"envs/dev\"\nvar_files = [\"envs/dev/dev.tfvars\"]\n\n[environments.prod]\nroot = \"envs/prod\"\nvar_files = [\"envs/dev/dev.tfvars\"]\n",
    );
    let output = project.run_with(&terraform, &["deploy", "prod", "--yes"]);
    support::expect_code(&output, 1);
    let stderr = support::stderr(&output);
    assert!(
        stderr.contains("environment `prod` shares its state (`envs/dev/env.tfstate`) with `dev`"),
        "{stderr}"
    );
    assert_eq!(
        project.read("envs/dev/env.tfstate"),
        before,
        "dev's state untouched"
    );
}
