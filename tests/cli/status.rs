//! `tfenv status` problems that need no terraform: git-ignore, shared state, init.

use predicates::prelude::*;

use crate::support::{Project, stdout_json};

fn git(project: &Project, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(args)
        .current_dir(project.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("git is needed for this test");
    assert!(status.success());
}

#[test]
fn state_and_terraform_dirs_must_be_git_ignored() {
    let project = Project::demo();
    git(&project, &["init", "-q"]);
    let output = project
        .tfenv()
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6));
    let json = stdout_json(&output);
    let messages: Vec<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with("`state/` is not ignored by git"),
        "{messages:?}"
    );
    assert!(
        messages[1].starts_with("`examples/quickstart/.terraform/` is not ignored by git"),
        "{messages:?}"
    );

    project.write(".gitignore", "/state/*\n!/state/README.md\n.terraform/\n");
    let output = project
        .tfenv()
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    let json = stdout_json(&output);
    assert_eq!(json["problems"], serde_json::json!([]));
}

#[test]
fn uninitialized_environments_are_problems_with_the_fix() {
    let project = Project::demo();
    project
        .tfenv()
        .arg("status")
        .assert()
        .code(6)
        .stdout(predicate::str::contains(
            "dev: not initialized: run `tfenv init dev`",
        ))
        .stdout(predicate::str::contains(
            "production: not initialized: run `tfenv init production`",
        ));
}

#[test]
fn two_environments_sharing_one_state_are_flagged() {
    let project = Project::empty();
    project.write("main.tf", "terraform {\n  backend \"local\" {}\n}\n");
    project.write(
        "environments/dev.backend.conf",
        "path = \"shared.tfstate\"\n",
    );
    project.write(
        "environments/qa.backend.conf",
        "path = \"./shared.tfstate\"\n",
    );
    let output = project
        .tfenv()
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    let json = stdout_json(&output);
    for (i, other) in [(0, "qa"), (1, "dev")] {
        let codes: Vec<&str> = json["environments"][i]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&"shared-state"), "{json}");
        assert!(
            json["environments"][i]
                .to_string()
                .contains(&format!("shares its state with `{other}`"))
        );
    }
}

#[test]
fn status_of_an_unknown_environment_is_a_usage_error() {
    Project::demo()
        .tfenv()
        .args(["status", "dev", "stagin"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `staging`?"));
}

#[test]
fn a_non_interactive_init_says_which_lines_to_add_and_writes_nothing() {
    let project = Project::demo();
    git(&project, &["init", "-q"]);
    let tf = project.script(
        "bin/terraform",
        "case \"$1\" in\n  version) echo '{\"terraform_version\":\"1.11.4\"}' ;;\n  init) mkdir -p \"$TF_DATA_DIR\" ;;\nesac",
    );
    project
        .tfenv()
        .arg("--terraform")
        .arg(&tf)
        .args(["init", "dev", "--non-interactive"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: git does not ignore `state/` and `examples/quickstart/.terraform/`",
        ))
        .stderr(predicate::str::contains("  /state/\n  .terraform/"));
    assert!(!project.join(".gitignore").exists());
}
