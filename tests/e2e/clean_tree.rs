//! Production's clean-tree check against a real git repository and the real terraform:
//! tfenv's own artifacts never make the tree dirty, anything else does and is listed,
//! files git was told to stop looking at count, and GIT_DIR cannot redirect the check.

use predicates::prelude::*;

use crate::support::{self, Project};

/// The demo as a git repository with everything committed and no .gitignore: the
/// situation of a repo that has not taken tfenv's .gitignore offer.
fn committed_demo() -> Project {
    let project = Project::demo();
    project.git(&["init", "-q"]);
    project.git(&["add", "-A"]);
    project.git(&["commit", "-q", "-m", "demo"]);
    project
}

fn deploy(project: &Project, env: &str) -> assert_cmd::Command {
    let mut cmd = project.tfenv_real();
    cmd.args(["deploy", env, "--yes", "--confirm", env]);
    cmd
}

#[test]
fn untracked_state_and_terraform_dirs_never_block_a_production_deploy() {
    let project = committed_demo();
    deploy(&project, "dev").assert().success();
    deploy(&project, "production").assert().success();
    // Now state/ holds two environments, logs and backups, and .terraform/ two data
    // dirs, neither of them ignored: git sees them both.
    let status = project.git(&["status", "--porcelain"]);
    assert!(status.contains("?? state/"), "{status}");
    assert!(
        status.contains("?? examples/quickstart/.terraform/"),
        "{status}"
    );
    let tfvars = project
        .read("environments/production.tfvars")
        .replace("instance_count = 3", "instance_count = 4");
    project.write("environments/production.tfvars", &tfvars);
    project.git(&["commit", "-q", "-am", "four instances"]);
    deploy(&project, "production")
        .assert()
        .success()
        .stdout(predicate::str::contains("Applied to `production`"));
    let record = project.last_history("production");
    assert_eq!(record["result"], "applied", "{record}");
    assert_eq!(record["git"]["dirty"], false, "{record}");
}

#[test]
fn any_other_change_refuses_production_and_is_listed() {
    let project = committed_demo();
    project.write("notes.txt", "todo\n");
    let main_tf = project.read("examples/quickstart/main.tf");
    project.write(
        "examples/quickstart/main.tf",
        &format!("{main_tf}\n# edited\n"),
    );
    project.write("more/a.txt", "x");
    deploy(&project, "production")
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "the git tree has uncommitted changes; production `production` deploys from a clean tree:",
        ))
        .stderr(predicate::str::contains(
            "  examples/quickstart/main.tf (modified)",
        ))
        .stderr(predicate::str::contains("  notes.txt (untracked)"))
        .stderr(predicate::str::contains("  more/ (untracked)"))
        .stderr(predicate::str::contains("--allow-dirty"));
    assert!(
        !project.join("state/production/terraform.tfstate").exists(),
        "nothing was applied"
    );

    // More than ten: ten are listed, the rest counted.
    project.write("examples/quickstart/main.tf", &main_tf);
    std::fs::remove_dir_all(project.join("more")).unwrap();
    std::fs::remove_file(project.join("notes.txt")).unwrap();
    for i in 0..12 {
        project.write(&format!("n{i:02}.txt"), "x");
    }
    deploy(&project, "production")
        .assert()
        .code(5)
        .stderr(predicate::str::contains("  n09.txt (untracked)"))
        .stderr(predicate::str::contains("n10.txt").not())
        .stderr(predicate::str::contains("  … and 2 more"));
}

#[test]
fn a_var_file_hidden_with_assume_unchanged_or_skip_worktree_counts_as_dirty() {
    let project = committed_demo();
    let tfvars = project
        .read("environments/production.tfvars")
        .replace("instance_count = 3", "instance_count = 0");
    project.write("environments/production.tfvars", &tfvars);
    project.git(&[
        "update-index",
        "--assume-unchanged",
        "environments/production.tfvars",
    ]);
    assert_eq!(
        project.git(&["status", "--porcelain"]),
        "",
        "git itself now calls the tree clean"
    );
    deploy(&project, "production")
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "environments/production.tfvars (marked --assume-unchanged: git does not report its changes)",
        ))
        .stderr(predicate::str::contains("--no-assume-unchanged"));
    assert!(!project.join("state/production/terraform.tfstate").exists());

    project.git(&[
        "update-index",
        "--no-assume-unchanged",
        "environments/production.tfvars",
    ]);
    project.git(&["checkout", "--", "environments/production.tfvars"]);
    project.git(&[
        "update-index",
        "--skip-worktree",
        "examples/quickstart/main.tf",
    ]);
    deploy(&project, "production")
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "examples/quickstart/main.tf (marked --skip-worktree: git does not report its changes)",
        ));
    // A file this environment does not hand terraform (another one's var file) may be hidden.
    project.git(&[
        "update-index",
        "--no-skip-worktree",
        "examples/quickstart/main.tf",
    ]);
    project.git(&[
        "update-index",
        "--skip-worktree",
        "environments/staging.tfvars",
    ]);
    deploy(&project, "production").assert().success();
}

#[test]
fn git_dir_in_the_environment_cannot_point_the_check_at_another_repository() {
    let project = committed_demo();
    project.write("notes.txt", "uncommitted\n");
    let elsewhere = tempfile::tempdir().unwrap();
    support::git(elsewhere.path(), &["init", "-q"]);
    support::git(
        elsewhere.path(),
        &["commit", "-q", "--allow-empty", "-m", "clean"],
    );
    deploy(&project, "production")
        .env("GIT_DIR", elsewhere.path().join(".git"))
        .env("GIT_WORK_TREE", elsewhere.path())
        .assert()
        .code(5)
        .stderr(predicate::str::contains("  notes.txt (untracked)"));
    assert!(!project.join("state/production/terraform.tfstate").exists());
}
