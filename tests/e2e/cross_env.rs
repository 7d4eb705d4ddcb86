//! Restoring one environment's state into another, with the real terraform and the demo's
//! local backend: refused without --force, whether or not the target has a state yet.

use predicates::prelude::*;

use crate::support::{Project, stdout_json};

fn restore_into_production(project: &Project, source: &str, force: bool) -> assert_cmd::Command {
    let mut cmd = project.tfenv_real();
    cmd.args(["restore", "production", source])
        .args(["--yes", "--confirm", "production"]);
    if force {
        cmd.arg("--force");
    }
    cmd
}

#[test]
fn another_environments_backup_is_refused_without_force_even_into_an_empty_state() {
    let project = Project::demo();
    project
        .tfenv_real()
        .args(["deploy", "staging", "--yes"])
        .assert()
        .success();
    let output = project
        .tfenv_real()
        .args(["backup", "staging", "--output", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let file = stdout_json(&output)["backups"][0]["backup"]["file"]
        .as_str()
        .unwrap()
        .to_string();
    let production_state = project.join("state/production/terraform.tfstate");
    assert!(!production_state.exists(), "production has no state yet");

    // Named by its path in staging's backups.
    let in_staging = format!("state/staging/backups/{file}");
    restore_into_production(&project, &in_staging, false)
        .assert()
        .code(5)
        .stderr(predicate::str::contains(format!(
            "`{in_staging}` belongs to environment `staging` (it lies in `state/staging`), not to `production`"
        )))
        .stderr(predicate::str::contains("--force"));
    // Copied out of state/: its checksum is in staging's manifest.
    std::fs::copy(project.join(&in_staging), project.join("copy.tfstate")).unwrap();
    restore_into_production(&project, "copy.tfstate", false)
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "belongs to environment `staging` (it is backup",
        ));
    // staging's live state, saved by hand: its lineage is staging's.
    std::fs::copy(
        project.join("state/staging/terraform.tfstate"),
        project.join("saved.tfstate"),
    )
    .unwrap();
    restore_into_production(&project, "saved.tfstate", false)
        .assert()
        .code(5)
        .stderr(predicate::str::contains("belongs to environment `staging`"));
    assert!(!production_state.exists(), "nothing was pushed");

    // --force: on purpose, with the tier's confirmation.
    restore_into_production(&project, "copy.tfstate", true)
        .assert()
        .success()
        .stderr(predicate::str::contains("belongs to environment `staging`"));
    assert!(production_state.exists());

    // staging's own backup restores into staging as before.
    project
        .tfenv_real()
        .args(["restore", "staging", &file, "--yes"])
        .assert()
        .success();
}

#[test]
fn another_environments_backup_copied_into_the_targets_own_folder_is_refused_without_force() {
    let project = Project::demo();
    project
        .tfenv_real()
        .args(["deploy", "staging", "--yes"])
        .assert()
        .success();
    let output = project
        .tfenv_real()
        .args(["backup", "staging", "--output", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let file = stdout_json(&output)["backups"][0]["backup"]["file"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::create_dir_all(project.join("state/production")).unwrap();
    std::fs::copy(
        project.join(&format!("state/staging/backups/{file}")),
        project.join("state/production/x.tfstate"),
    )
    .unwrap();
    restore_into_production(&project, "state/production/x.tfstate", false)
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "`state/production/x.tfstate` belongs to environment `staging` (it is backup",
        ))
        .stderr(predicate::str::contains("--force"));
    assert!(
        !project.join("state/production/terraform.tfstate").exists(),
        "nothing was pushed"
    );
}
