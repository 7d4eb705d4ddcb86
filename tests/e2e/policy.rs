//! The policy gate on the real terraform: a policy that refuses deleting a
//! `terraform_data` stops deploys and plans with exit 5 and its own words, before any
//! backup; `policy = false` skips it; a passing policy lets the deploy through.

use std::os::unix::fs::PermissionsExt;

use predicates::prelude::*;

use crate::support::{self, Project};

/// A policy as a user would write one: reads the plan's JSON, names what it refuses.
/// It also notes where it ran and which file it was given, for the test to check.
const NO_DELETE_POLICY: &str = r#"#!/usr/bin/env python3
import json, os, stat, sys

path = sys.argv[1]
mode = stat.S_IMODE(os.stat(path).st_mode)
with open("policy-seen.txt", "a") as seen:
    seen.write(f"{os.getcwd()} {path} {mode:o}\n")
with open(path) as f:
    plan = json.load(f)
deleted = [
    rc["address"]
    for rc in plan.get("resource_changes", [])
    if rc["type"] == "terraform_data" and "delete" in rc["change"]["actions"]
]
for address in deleted:
    print(f"FAIL - {address}: deleting a terraform_data is not allowed")
if deleted:
    print("policy: 1 rule failed", file=sys.stderr)
    sys.exit(1)
print("PASS - nothing is deleted")
"#;

/// A project of `terraform_data` items (one per name in `names`) with a sensitive
/// variable, environments `staging` (the project's policy), `dev` (`policy = false`).
pub fn policy_project() -> Project {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        r#"[policy]
command = ["python3", "policy/no_delete.py", "{plan_json}"]

[environments.staging]
backend_config = "environments/staging.backend.conf"
var_files = ["environments/staging.tfvars"]

[environments.dev]
backend_config = "environments/dev.backend.conf"
var_files = ["environments/dev.tfvars"]
policy = false
"#,
    );
    project.write(
        "main.tf",
        r#"terraform {
  backend "local" {}
}

variable "names" {
  type = list(string)
}

variable "db_password" {
  type      = string
  sensitive = true
}

resource "terraform_data" "item" {
  for_each = toset(var.names)
  input    = each.key
}

output "items" {
  value = length(var.names)
}

output "db_password" {
  value     = var.db_password
  sensitive = true
}
"#,
    );
    for env in ["staging", "dev"] {
        project.write(
            &format!("environments/{env}.backend.conf"),
            &format!("path = \"state/{env}/terraform.tfstate\"\n"),
        );
        set_names(&project, env, &["a", "b"]);
    }
    project.write("policy/no_delete.py", NO_DELETE_POLICY);
    project
}

/// The environment's items are `names` from now on.
pub fn set_names(project: &Project, env: &str, names: &[&str]) {
    let list = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    project.write(
        &format!("environments/{env}.tfvars"),
        &format!("names = [{list}]\ndb_password = \"pw-4f9a-do-not-print\"\n"),
    );
}

#[test]
fn a_policy_refusing_a_delete_stops_the_deploy_with_exit_5_before_any_backup() {
    let project = policy_project();
    let tf = support::terraform();
    // Creating passes the policy: the deploy goes through.
    project
        .tfenv_with(&tf)
        .args(["deploy", "staging", "--yes"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "[staging] policy: PASS - nothing is deleted",
        ))
        .stdout(predicate::str::contains("Applied to `staging`"));
    let seen = project.read("policy-seen.txt");
    let plan_json = project.join("state/staging/plan.json");
    assert_eq!(
        seen.trim(),
        format!("{} {} 600", project.path().display(), plan_json.display()),
        "run in the project root, on state/<env>/plan.json, mode 0600"
    );
    assert!(
        !plan_json.exists(),
        "the plan's JSON is removed after the policy"
    );
    let state = project.read("state/staging/terraform.tfstate");
    let backups = std::fs::read_dir(project.join("state/staging/backups"))
        .map(|d| d.count())
        .unwrap_or(0);

    // Deleting `b` is refused: exit 5, the policy's own words, nothing changed.
    set_names(&project, "staging", &["a"]);
    project
        .tfenv_with(&tf)
        .args(["deploy", "staging", "--yes"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "refused by policy: `python3 policy/no_delete.py {plan_json}` exited with code 1",
        ))
        .stderr(predicate::str::contains(
            "FAIL - terraform_data.item[\"b\"]: deleting a terraform_data is not allowed",
        ))
        .stderr(predicate::str::contains("policy: 1 rule failed"))
        .stderr(predicate::str::contains("pw-4f9a-do-not-print").not())
        .stdout(predicate::str::contains("Applied").not());
    assert_eq!(project.read("state/staging/terraform.tfstate"), state);
    assert!(
        !plan_json.exists(),
        "the plan's JSON is removed after a refusal"
    );
    assert!(!project.join("state/staging/terraform.plan").exists());
    let backups_after = std::fs::read_dir(project.join("state/staging/backups"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        backups_after, backups,
        "a refused run keeps no backup, nor the state it pulled meanwhile"
    );
    let record = project.last_history("staging");
    assert_eq!(record["result"], "refused");
    assert_eq!(record["exit_code"], 5);
    assert_eq!(record["plan"]["destroy"], 1);
}

#[test]
fn a_plan_the_policy_refuses_exits_5_even_when_nothing_is_applied() {
    let project = policy_project();
    let tf = support::terraform();
    project
        .tfenv_with(&tf)
        .args(["deploy", "staging", "--yes"])
        .assert()
        .success();
    set_names(&project, "staging", &["b"]);
    project
        .tfenv_with(&tf)
        .args(["plan", "staging", "--log"])
        .assert()
        .code(5)
        .stdout(predicate::str::contains("-1 to destroy"))
        .stderr(predicate::str::contains("refused by policy"))
        .stderr(predicate::str::contains("terraform_data.item[\"a\"]"));
    assert!(!project.join("state/staging/plan.json").exists());
    // The run's log keeps the policy's verdict beside terraform's output.
    let logs: Vec<_> = std::fs::read_dir(project.join("state/staging/logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("plan-")
        })
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(log.contains("FAIL - terraform_data.item[\"a\"]"), "{log}");

    // JSON: one document, the error carrying the policy's words.
    let output = project
        .tfenv_with(&tf)
        .args(["plan", "staging", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5));
    let json = support::stdout_json(&output);
    assert_eq!(json["error"]["exit_code"], 5);
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("terraform_data.item[\"a\"]"), "{message}");
}

#[test]
fn an_environment_with_policy_false_deploys_what_the_policy_would_refuse() {
    let project = policy_project();
    let tf = support::terraform();
    for names in [&["a", "b"][..], &["a"][..]] {
        set_names(&project, "dev", names);
        project
            .tfenv_with(&tf)
            .args(["deploy", "dev", "--yes"])
            .assert()
            .success()
            .stderr(predicate::str::contains("policy").not());
    }
    assert!(!project.join("policy-seen.txt").exists(), "no policy ran");
    assert_eq!(project.last_history("dev")["plan"]["destroy"], 1);
}

#[test]
fn the_policy_also_judges_a_plan_without_changes_and_a_refresh() {
    let project = policy_project();
    let tf = support::terraform();
    for _ in 0..2 {
        project
            .tfenv_with(&tf)
            .args(["deploy", "staging", "--yes"])
            .assert()
            .success();
    }
    assert_eq!(project.read("policy-seen.txt").lines().count(), 2);
    assert_eq!(project.last_history("staging")["result"], "no-changes");
    // A refresh's plan is judged too, a dry run's as well.
    project
        .tfenv_with(&tf)
        .args(["refresh", "staging", "--dry-run"])
        .assert()
        .success();
    assert_eq!(project.read("policy-seen.txt").lines().count(), 3);
}

#[test]
fn a_policy_command_that_cannot_start_is_an_error_naming_it() {
    let project = policy_project();
    let tf = support::terraform();
    let toml = project.read("tfenv.toml").replace(
        "\"python3\", \"policy/no_delete.py\"",
        "\"conftest-not-installed\", \"test\"",
    );
    project.write("tfenv.toml", &toml);
    project
        .tfenv_with(&tf)
        .args(["plan", "staging"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the policy command `conftest-not-installed test {plan_json}` could not be started",
        ))
        .stderr(predicate::str::contains("install `conftest-not-installed`"));
    assert!(!project.join("state/staging/plan.json").exists());
    let mode = std::fs::metadata(project.join("state/staging"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}
