//! Production's clean-tree check against a real git repository and the real terraform:
//! tfenv's own artifacts never make the tree dirty (symlinked, or in a folder whose name
//! is not UTF-8), anything else does and is listed, files terraform loads that git was
//! told to stop looking at count, no `GIT_*` variable can redirect or switch off the
//! check, and any git failure other than "no repository here" refuses, in any locale.

use std::path::Path;

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

/// `deploy` of the project in `dir` (a folder inside `project`).
fn deploy_in(project: &Project, dir: &Path, env: &str) -> assert_cmd::Command {
    let mut cmd = deploy(project, env);
    cmd.current_dir(dir);
    cmd
}

fn append(path: &Path, text: &str) {
    let old = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, format!("{old}{text}")).unwrap();
}

const CANNOT_TELL: &str = "cannot tell whether the git tree is clean";

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

/// A local backend whose state lives outside `state/` (here `tfstate/prod.tfstate`, with
/// the `.backup` and lock info terraform writes beside it) is tfenv's own artifact too:
/// the second production deploy is not refused for it.
#[test]
fn local_state_files_outside_the_state_dir_never_block_a_production_deploy() {
    let project = Project::demo();
    project.write(
        "environments/production.backend.conf",
        "path = \"../../tfstate/prod.tfstate\"\n",
    );
    project.git(&["init", "-q"]);
    project.git(&["add", "-A"]);
    project.git(&["commit", "-q", "-m", "demo"]);
    deploy(&project, "production").assert().success();
    assert!(project.join("tfstate/prod.tfstate").is_file());
    let tfvars = project
        .read("environments/production.tfvars")
        .replace("instance_count = 3", "instance_count = 4");
    project.write("environments/production.tfvars", &tfvars);
    project.git(&["commit", "-q", "-am", "four instances"]);
    deploy(&project, "production")
        .assert()
        .success()
        .stdout(predicate::str::contains("Applied to `production`"));
    assert!(project.join("tfstate/prod.tfstate.backup").is_file());
    // Anything else in that folder still counts.
    project.write("tfstate/notes.txt", "x");
    deploy(&project, "production")
        .assert()
        .code(5)
        .stderr(predicate::str::contains("  tfstate/ (untracked)"));
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

#[test]
fn git_ceiling_directories_cannot_hide_the_repository_above_the_project() {
    // The repository is the parent folder; the project one of its subfolders.
    let repo = Project::empty();
    let dir = repo.demo_in_folder(b"proj");
    repo.write(".gitignore", "state/\n.terraform/\n.terraformrc\n");
    repo.git(&["init", "-q"]);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "demo"]);
    append(&dir.join("examples/quickstart/main.tf"), "# edited\n");
    deploy_in(&repo, &dir, "production")
        .env("GIT_CEILING_DIRECTORIES", repo.path())
        .env("GIT_DISCOVERY_ACROSS_FILESYSTEM", "0")
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "  proj/examples/quickstart/main.tf (modified)",
        ));
    assert!(!dir.join("state/production/terraform.tfstate").exists());
}

#[test]
fn a_git_checkout_git_cannot_read_refuses_production() {
    let project = committed_demo();
    append(&project.join("examples/quickstart/main.tf"), "# edited\n");
    // A damaged HEAD: git calls it "not a git repository", yet `.git` is there.
    let head = project.read(".git/HEAD");
    project.write(".git/HEAD", "garbage\n");
    deploy(&project, "production")
        .assert()
        .code(5)
        .stderr(predicate::str::contains(CANNOT_TELL))
        .stderr(predicate::str::contains("--allow-dirty"));
    project.write(".git/HEAD", &head);
    // A gitfile pointing at a folder that is gone.
    std::fs::rename(project.join(".git"), project.join("moved.git")).unwrap();
    project.write(".git", "gitdir: /nonexistent/tfenv-test.git\n");
    deploy(&project, "production")
        .assert()
        .code(5)
        .stderr(predicate::str::contains(CANNOT_TELL));
    // git missing from PATH in a checkout: nothing can tell.
    std::fs::remove_file(project.join(".git")).unwrap();
    std::fs::rename(project.join("moved.git"), project.join(".git")).unwrap();
    deploy(&project, "production")
        .env("PATH", project.join("no-tools"))
        .assert()
        .code(5)
        .stderr(predicate::str::contains(CANNOT_TELL))
        .stderr(predicate::str::contains("`git` is not on PATH"));
    assert!(!project.join("state/production/terraform.tfstate").exists());
}

/// A git that speaks German and fails, as a translated git does outside a repository.
fn german_git(project: &Project) {
    project.script(
        "bin/git",
        "echo 'fatal: Kein Git-Repository (oder irgendeines der Elternverzeichnisse): .git' >&2\nexit 128",
    );
}

#[test]
fn the_verdict_does_not_depend_on_gits_language() {
    // Not a checkout: git's failure is "no repository", whatever its words.
    let plain = Project::demo();
    german_git(&plain);
    deploy(&plain, "production")
        .env("PATH", plain.fake_path())
        .env("LC_ALL", "de_DE.UTF-8")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "not a git repository: cannot check for uncommitted changes",
        ));
    // A checkout: the same failure is one git could not explain away.
    let checkout = committed_demo();
    german_git(&checkout);
    deploy(&checkout, "production")
        .env("PATH", checkout.fake_path())
        .env("LC_ALL", "de_DE.UTF-8")
        .assert()
        .code(5)
        .stderr(predicate::str::contains(CANNOT_TELL));
}

#[test]
fn files_terraform_loads_by_itself_count_when_hidden_from_git() {
    let project = Project::demo();
    let root = "examples/quickstart";
    project.write(
        &format!("{root}/extra.tf.json"),
        r#"{"output": {"extra": {"value": 1}}}"#,
    );
    project.write(&format!("{root}/terraform.tfvars"), "instance_count = 1\n");
    project.write(&format!("{root}/more.auto.tfvars.json"), "{}\n");
    project.write(
        &format!("{root}/net.tf"),
        "module \"net\" {\n  source = \"../../modules/net\"\n}\n",
    );
    project.write("modules/net/main.tf", "output \"id\" { value = 1 }\n");
    project.git(&["init", "-q"]);
    project.git(&["add", "-A"]);
    project.git(&["commit", "-q", "-m", "demo"]);
    let hidden = [
        "examples/quickstart/extra.tf.json",
        "examples/quickstart/more.auto.tfvars.json",
        "examples/quickstart/terraform.tfvars",
        "modules/net/main.tf",
    ];
    for file in hidden {
        project.git(&["update-index", "--assume-unchanged", file]);
    }
    let mut assert = deploy(&project, "production").assert().code(5);
    for file in hidden {
        assert = assert.stderr(predicate::str::contains(format!(
            "  {file} (marked --assume-unchanged: git does not report its changes)"
        )));
    }
    assert!(!project.join("state/production/terraform.tfstate").exists());
}

#[test]
fn a_symlinked_state_folder_is_still_tfenvs_own() {
    let project = committed_demo();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), project.join("state")).unwrap();
    let status = project.git(&["status", "--porcelain"]);
    assert!(status.contains("?? state"), "{status}");
    deploy(&project, "production")
        .assert()
        .success()
        .stdout(predicate::str::contains("Applied to `production`"));
    let record = project.last_history("production");
    assert_eq!(record["git"]["dirty"], false, "{record}");
    assert!(
        elsewhere
            .path()
            .join("production/terraform.tfstate")
            .is_file()
    );
}

#[test]
fn in_a_folder_whose_name_is_not_utf8_state_is_tfenvs_own_and_hidden_files_count() {
    let outer = Project::empty();
    let dir = outer.demo_in_folder(b"pro j\xff");
    support::git(&dir, &["init", "-q"]);
    support::git(&dir, &["add", "-A"]);
    support::git(&dir, &["commit", "-q", "-m", "demo"]);
    deploy_in(&outer, &dir, "dev").assert().success();
    deploy_in(&outer, &dir, "production")
        .assert()
        .success()
        .stdout(predicate::str::contains("Applied to `production`"));
    let tfvars = std::fs::read_to_string(dir.join("environments/production.tfvars"))
        .unwrap()
        .replace("instance_count = 3", "instance_count = 0");
    std::fs::write(dir.join("environments/production.tfvars"), tfvars).unwrap();
    support::git(
        &dir,
        &[
            "update-index",
            "--assume-unchanged",
            "environments/production.tfvars",
        ],
    );
    deploy_in(&outer, &dir, "production")
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "  environments/production.tfvars (marked --assume-unchanged",
        ));
}
