//! init and status on the demo project with the real terraform and the local backend.

use std::path::Path;

use predicates::prelude::*;

use crate::support::{self, Project, recording_wrapper, stdout_json};

fn data_dir(project: &Project, env: &str) -> std::path::PathBuf {
    project.join(&format!("examples/quickstart/.terraform/tfenv/{env}"))
}

/// Applies the demo for `env` directly with terraform, as a user would by hand, so
/// there is a real state to read.
fn apply_by_hand(project: &Project, terraform: &Path, env: &str) {
    let output = project
        .terraform(terraform)
        .current_dir(project.join("examples/quickstart"))
        .env("TF_DATA_DIR", data_dir(project, env))
        .args(["apply", "-auto-approve", "-input=false", "-no-color"])
        .arg(format!(
            "-var-file={}",
            project.join("environments/common.tfvars").display()
        ))
        .arg(format!(
            "-var-file={}",
            project
                .join(&format!("environments/{env}.tfvars"))
                .display()
        ))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn init_side_by_side_without_reconfigure(terraform: &Path) {
    let project = Project::demo();
    let (wrapper, calls) = recording_wrapper(&project, terraform);
    for env in ["dev", "production"] {
        project
            .tfenv_with(&wrapper)
            .args(["init", env])
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("{env}: initialized")));
        assert!(
            data_dir(&project, env).join("terraform.tfstate").is_file(),
            "{env} has its own data dir"
        );
    }
    let log = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(log.matches("init ").count(), 2, "{log}");
    assert!(!log.contains("-reconfigure"), "{log}");

    // Both stay initialized: a second init of either runs no terraform init at all.
    for env in ["dev", "production"] {
        project
            .tfenv_with(&wrapper)
            .args(["init", env])
            .assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "{env}: already initialized"
            )));
    }
    let log = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(log.matches("init ").count(), 2, "no new init ran:\n{log}");

    // Each environment's state lands in its own file, in a private folder.
    apply_by_hand(&project, terraform, "dev");
    apply_by_hand(&project, terraform, "production");
    assert!(
        project
            .read("state/dev/terraform.tfstate")
            .contains("\"environment\"")
    );
    assert!(
        project
            .read("state/production/terraform.tfstate")
            .contains("quickstart-production-2")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(project.join("state/dev"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

fn status_reads_real_state(terraform: &Path, version_prefix: &str) {
    let project = Project::demo();
    project
        .tfenv_with(terraform)
        .args(["init", "--all"])
        .assert()
        .success();
    apply_by_hand(&project, terraform, "dev");

    let output = project
        .tfenv_with(terraform)
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = stdout_json(&output);
    assert_eq!(json["healthy"], true);
    let dev = &json["environments"][0];
    assert_eq!(dev["name"], "dev");
    assert_eq!(dev["init"], "current");
    // A local state is read straight from its file: what `state pull` would read.
    assert_eq!(dev["state_source"], "file");
    assert!(dev["state"]["serial"].as_u64().unwrap() >= 1, "{dev}");
    assert_eq!(dev["state"]["lineage"].as_str().unwrap().len(), 36, "{dev}");
    assert!(
        dev["state"]["terraform_version"]
            .as_str()
            .unwrap()
            .starts_with(version_prefix),
        "{dev}"
    );
    assert_eq!(dev["backend"]["location"], "state/dev/terraform.tfstate");
    assert_eq!(
        json["environments"][1]["state"],
        serde_json::Value::Null,
        "staging has no state yet"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("demo-token"),
        "no secret in status"
    );

    let output = project
        .tfenv_with(terraform)
        .arg("status")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let dev_row = text.lines().find(|l| l.starts_with("dev ")).unwrap();
    assert!(
        dev_row.contains(" yes ") && dev_row.contains(version_prefix) && dev_row.ends_with("ok"),
        "{text}"
    );
    assert!(text.lines().next().unwrap().starts_with("ENV"), "{text}");
}

#[test]
fn init_dev_and_production_side_by_side_without_reconfigure() {
    init_side_by_side_without_reconfigure(&support::terraform());
}

#[test]
fn init_dev_and_production_side_by_side_on_terraform_1_0() {
    init_side_by_side_without_reconfigure(&support::terraform_1_0());
}

#[test]
fn status_reads_the_state_in_human_and_json() {
    status_reads_real_state(&support::terraform(), "1.");
}

#[test]
fn status_reads_the_state_written_by_terraform_1_0() {
    status_reads_real_state(&support::terraform_1_0(), "1.0.3");
}

#[test]
fn status_reads_a_local_state_file_without_init() {
    let terraform = support::terraform();
    let project = Project::demo();
    project
        .tfenv_with(&terraform)
        .args(["init", "dev"])
        .assert()
        .success();
    apply_by_hand(&project, &terraform, "dev");
    // Someone removed the data dirs: status still reads the local state, and says to init.
    std::fs::remove_dir_all(project.join("examples/quickstart/.terraform")).unwrap();
    let output = project
        .tfenv()
        .args(["status", "dev", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6));
    let json = stdout_json(&output);
    let dev = &json["environments"][0];
    assert_eq!(dev["init"], "never");
    assert_eq!(dev["state_source"], "file");
    assert!(dev["state"]["serial"].as_u64().unwrap() >= 1);
    assert_eq!(dev["problems"][0]["code"], "not-initialized");
}

#[test]
fn a_workspace_environment_is_created_on_init() {
    let terraform = support::terraform();
    let project = Project::demo();
    let toml = project.read("tfenv.toml")
        + "\n[environments.qa]\nworkspace = \"qa\"\nbackend_config = \"environments/dev.backend.conf\"\nvar_files = [\"environments/dev.tfvars\"]\n";
    project.write("tfenv.toml", &toml);
    project
        .tfenv_with(&terraform)
        .args(["init", "qa"])
        .assert()
        .success();
    let output = project
        .terraform(&terraform)
        .current_dir(project.join("examples/quickstart"))
        .env("TF_DATA_DIR", data_dir(&project, "qa"))
        .args(["workspace", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&output.stdout);
    assert!(
        list.lines()
            .any(|l| l.trim_start_matches(['*', ' ']) == "qa"),
        "{list}"
    );

    let output = project
        .tfenv_with(&terraform)
        .args(["envs", "--output", "json"])
        .output()
        .unwrap();
    let json = stdout_json(&output);
    assert_eq!(
        json["environments"][3]["backend"]["location"],
        "examples/quickstart/terraform.tfstate.d/qa/terraform.tfstate"
    );
}

/// A drift check's `--timeout` or `kill -9` during `terraform init` leaves the data dir's
/// backend file empty; terraform alone would refuse every later init.
#[test]
fn an_init_killed_while_writing_the_backend_file_does_not_break_the_next_one() {
    let project = Project::demo();
    let terraform = support::terraform();
    let init = || project.run_with(terraform.clone(), &["init", "dev"]);
    support::expect_code(&init(), 0);
    let backend_file = data_dir(&project, "dev").join("terraform.tfstate");
    std::fs::write(&backend_file, "").unwrap();
    // As an init that never finished: no fingerprint of it.
    std::fs::remove_file(project.join("examples/quickstart/.terraform/tfenv/dev.fingerprint"))
        .unwrap();
    support::expect_code(&init(), 0);
    assert!(std::fs::metadata(&backend_file).unwrap().len() > 0);
    support::expect_code(&project.run_with(terraform, &["deploy", "dev", "--yes"]), 0);
}
