//! deploy / plan / refresh / outputs / history on the real terraform, local backend.

use std::os::unix::fs::PermissionsExt;

use predicates::prelude::*;
use serde_json::Value;

use crate::support::{self, Project, stdout_json};

#[test]
fn deploy_dev_writes_private_redacted_outputs_and_history_and_no_plan_file() {
    let project = Project::demo();
    let tf = support::terraform();
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Plan for `dev` (development):"))
        .stdout(predicate::str::contains("4 output(s) change"))
        .stdout(predicate::str::contains("Applied to `dev`"))
        .stderr(predicate::str::contains("[dev] Apply complete!"))
        .stderr(predicate::str::contains("demo-token-not-a-real-secret").not());

    let outputs = project.join("state/dev/outputs.json");
    assert_eq!(
        std::fs::metadata(&outputs).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = project.read("state/dev/outputs.json");
    assert!(!text.contains("demo-token-not-a-real-secret"), "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["api_token"]["value"], "<sensitive>");
    assert_eq!(json["environment"]["value"], "dev");
    assert!(!project.join("state/dev/terraform.plan").exists());

    let record = project.last_history("dev");
    assert_eq!(record["result"], "applied");
    assert_eq!(record["exit_code"], 0);
    assert_eq!(record["command"], "deploy");
    assert_eq!(record["plan"]["outputs"], 4);
    assert!(record["who"].as_str().is_some_and(|w| !w.is_empty()));

    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("No changes: `dev` is up to date"));
    assert_eq!(project.last_history("dev")["result"], "no-changes");
    let lines = project.read("state/dev/history.jsonl").lines().count();
    assert_eq!(lines, 2);
}

#[test]
fn production_needs_yes_and_confirm_naming_it_when_non_interactive() {
    let project = Project::demo();
    let tf = support::terraform();
    let state = project.join("state/production/terraform.tfstate");
    let deploy = |extra: &[&str]| {
        let mut cmd = project.tfenv_with(&tf);
        cmd.args(["deploy", "production"]).args(extra);
        cmd
    };
    deploy(&["--yes"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("pass --yes --confirm production"));
    assert!(!state.exists(), "refused: the state is untouched");
    deploy(&["--yes", "--confirm", "staging"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "--confirm `staging` names another environment",
        ));
    assert!(!state.exists());
    assert_eq!(project.last_history("production")["result"], "refused");

    // `prod` is an alias: --confirm must still name the environment itself.
    deploy(&["--yes", "--confirm", "production"])
        .assert()
        .success();
    assert!(state.exists());
    assert!(
        project
            .join("state/production/logs")
            .read_dir()
            .unwrap()
            .count()
            >= 1,
        "production runs are logged"
    );

    // A change to an existing production state is backed up (and verified) first.
    let tfvars = project
        .read("environments/production.tfvars")
        .replace("instance_count = 3", "instance_count = 4");
    project.write("environments/production.tfvars", &tfvars);
    let output = deploy(&["--yes", "--confirm", "production", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = stdout_json(&output);
    assert_eq!(report["result"], "applied");
    let backup = &report["backup"];
    assert_eq!(backup["reason"], "pre-deploy");
    let file = project.join(&format!(
        "state/production/backups/{}",
        backup["file"].as_str().unwrap()
    ));
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(std::fs::read(&file).unwrap()));
    assert_eq!(backup["sha256"], sha);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let manifest = project.read("state/production/backups/MANIFEST.jsonl");
    assert!(manifest.contains(&sha), "{manifest}");
    assert_eq!(project.last_history("production")["backup"], backup["file"]);
}

fn destroy_project(count: u32) -> Project {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[environments.production]\nbackend_config = \"prod.backend.conf\"\nvar_files = [\"prod.tfvars\"]\n",
    );
    project.write(
        "prod.backend.conf",
        "path = \"state/production/terraform.tfstate\"\n",
    );
    project.write(
        "main.tf",
        "terraform {\n  backend \"local\" {}\n}\nvariable \"n\" { type = number }\nresource \"terraform_data\" \"x\" {\n  count = var.n\n  input = \"v\"\n}\n",
    );
    project.write("prod.tfvars", &format!("n = {count}\n"));
    project
}

#[test]
fn a_production_plan_that_destroys_needs_allow_destroy() {
    let project = destroy_project(2);
    let tf = support::terraform();
    let deploy = |extra: &[&str]| {
        let mut cmd = project.tfenv_with(&tf);
        cmd.args(["deploy", "production", "--yes", "--confirm", "production"])
            .args(extra);
        cmd
    };
    deploy(&[]).assert().success();
    project.write("prod.tfvars", "n = 1\n");
    deploy(&[])
        .assert()
        .code(5)
        .stdout(predicate::str::contains("destroy: terraform_data.x[1]"))
        .stderr(predicate::str::contains(
            "destroys 1 resource(s) in production",
        ))
        .stderr(predicate::str::contains("--allow-destroy"));
    let state = project.read("state/production/terraform.tfstate");
    assert_eq!(
        state.matches("\"index_key\"").count(),
        2,
        "nothing destroyed"
    );
    deploy(&["--allow-destroy"]).assert().success();
    let state = project.read("state/production/terraform.tfstate");
    assert_eq!(state.matches("\"index_key\"").count(), 1);
}

#[test]
fn plan_summarizes_and_detailed_exitcode_says_whether_anything_changes() {
    let project = Project::demo();
    let tf = support::terraform();
    let output = project
        .tfenv_with(&tf)
        .args(["plan", "staging", "--detailed-exitcode", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = stdout_json(&output);
    assert_eq!(report["result"], "planned");
    assert_eq!(report["plan"]["outputs"], 4);
    assert!(!project.join("state/staging/terraform.plan").exists());
    assert!(
        !project.join("state/staging/history.jsonl").exists(),
        "plan records no history"
    );
    assert!(
        !project.join("state/staging/terraform.tfstate").exists(),
        "plan applies nothing"
    );

    project
        .tfenv_with(&tf)
        .args(["deploy", "staging", "--yes"])
        .assert()
        .success();
    project
        .tfenv_with(&tf)
        .args(["plan", "staging", "--detailed-exitcode"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no changes"));
}

#[test]
fn refresh_dry_run_plans_only_and_conflicting_flags_are_refused() {
    let project = Project::demo();
    let tf = support::terraform();
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes"])
        .assert()
        .success();
    project
        .tfenv_with(&tf)
        .args(["refresh", "dev", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Refresh for `dev`"));
    project
        .tfenv()
        .args(["refresh", "dev", "--dry-run", "--yes"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
    project
        .tfenv_with(&tf)
        .args(["refresh", "dev", "--yes"])
        .assert()
        .success();
    assert_eq!(
        project.read("state/dev/history.jsonl").lines().count(),
        2,
        "dry-run records nothing"
    );
}

#[test]
fn outputs_live_and_cached_and_history_listing() {
    let project = Project::demo();
    let tf = support::terraform();
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes"])
        .assert()
        .success();
    project
        .tfenv_with(&tf)
        .args(["outputs", "dev"])
        .assert()
        .success()
        .stdout(predicate::str::contains("api_token       <sensitive>"))
        .stdout(predicate::str::contains("quickstart-dev-0"));
    let output = project
        .tfenv()
        .args(["outputs", "dev", "--cached", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(stdout_json(&output)["environment"]["value"], "dev");
    let output = project
        .tfenv_with(&tf)
        .args(["outputs", "dev", "--include-sensitive", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        stdout_json(&output)["api_token"]["value"],
        "demo-token-not-a-real-secret"
    );
    project
        .tfenv()
        .args(["outputs", "staging", "--cached"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("`staging` has no cached outputs"));
    project
        .tfenv()
        .args(["history", "dev"])
        .assert()
        .success()
        .stdout(predicate::str::contains("deploy   applied"));
}

#[test]
fn deploying_an_unknown_environment_writes_nothing() {
    let project = Project::demo();
    project
        .tfenv()
        .args(["deploy", "prdo", "--yes"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "environment `prdo` is not defined; did you mean `prod`?",
        ));
    assert!(!project.join("state").exists());
}

#[test]
fn cached_outputs_stay_redacted_even_when_written_in_clear() {
    let project = Project::demo();
    let tf = support::terraform();
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes", "--include-sensitive"])
        .assert()
        .success();
    assert!(
        project
            .read("state/dev/outputs.json")
            .contains("demo-token-not-a-real-secret")
    );
    project
        .tfenv()
        .args(["outputs", "dev", "--cached"])
        .assert()
        .success()
        .stdout(predicate::str::contains("<sensitive>"))
        .stdout(predicate::str::contains("demo-token-not-a-real-secret").not());
    project
        .tfenv()
        .args(["outputs", "dev", "--cached", "--include-sensitive"])
        .assert()
        .success()
        .stdout(predicate::str::contains("demo-token-not-a-real-secret"));
}

#[test]
fn automatic_pruning_keeps_the_backup_of_the_last_successful_deploy() {
    let project = Project::demo();
    let tf = support::terraform();
    let toml = project.read("tfenv.toml").replace(
        "[environments.staging]\n",
        "[environments.staging]\nbackup_keep = 1\n",
    );
    project.write("tfenv.toml", &toml);
    let backups = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(project.join("state/staging/backups"))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.retain(|n| n.starts_with("terraform.tfstate."));
        names.sort();
        names
    };
    for count in 1..=4 {
        let tfvars = format!("environment    = \"staging\"\ninstance_count = {count}\n");
        project.write("environments/staging.tfvars", &tfvars);
        project
            .tfenv_with(&tf)
            .args(["deploy", "staging", "--yes"])
            .assert()
            .success();
        // Two instants apart, so backup names sort by time.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    // Deploys 2, 3, 4 took backups B1, B2, B3. With backup_keep = 1, the newest (B3) stays
    // and so does B2: the backup the last successful deploy before it was taken with.
    let left = backups();
    assert_eq!(left.len(), 2, "{left:?}");
    let history = project.read("state/staging/history.jsonl");
    let records: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let b2 = records[2]["backup"].as_str().unwrap();
    let b3 = records[3]["backup"].as_str().unwrap();
    assert_eq!(left, [b2.to_string(), b3.to_string()]);
}

#[test]
fn a_plan_that_only_moves_a_resource_is_applied_not_skipped() {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[environments.dev]\nbackend_config = \"dev.backend.conf\"\n",
    );
    project.write(
        "dev.backend.conf",
        "path = \"state/dev/terraform.tfstate\"\n",
    );
    project.write(
        "main.tf",
        "terraform {\n  backend \"local\" {}\n}\nresource \"terraform_data\" \"a\" {\n  input = \"v\"\n}\n",
    );
    let tf = support::terraform();
    let deploy = || {
        let mut cmd = project.tfenv_with(&tf);
        cmd.args(["deploy", "dev", "--yes"]);
        cmd
    };
    deploy().assert().success();
    project.write(
        "main.tf",
        "terraform {\n  backend \"local\" {}\n}\nresource \"terraform_data\" \"b\" {\n  input = \"v\"\n}\nmoved {\n  from = terraform_data.a\n  to   = terraform_data.b\n}\n",
    );
    deploy()
        .assert()
        .success()
        .stdout(predicate::str::contains("1 moved, 0 imported, 0 forgotten"))
        .stdout(predicate::str::contains("Applied to `dev`"));
    let state = project.read("state/dev/terraform.tfstate");
    assert!(state.contains("\"name\": \"b\""), "{state}");
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// terraform writes the local state and its .backup 0644 and its data dir 0755; tfenv
/// keeps them as private as everything else it writes: files 0600, folders 0700, after
/// a deploy and after a restore alike.
#[test]
fn the_local_state_its_backup_and_the_data_dir_are_private() {
    let project = Project::demo();
    let deploy = || {
        project
            .tfenv_real()
            .args(["deploy", "dev", "--yes"])
            .assert()
            .success();
    };
    deploy();
    // A second apply makes terraform write the previous state to `.backup`.
    let tfvars = project
        .read("environments/dev.tfvars")
        .replace("instance_count = 1", "instance_count = 2");
    project.write("environments/dev.tfvars", &tfvars);
    deploy();
    let state = project.join("state/dev/terraform.tfstate");
    let backup = project.join("state/dev/terraform.tfstate.backup");
    assert_eq!(mode(&state), 0o600);
    assert_eq!(mode(&backup), 0o600);
    assert_eq!(
        mode(&project.join("examples/quickstart/.terraform/tfenv/dev")),
        0o700
    );

    // A state made readable by others (as terraform would make a new one) is private
    // again once restore has pushed into it.
    project
        .tfenv_real()
        .args(["backup", "dev"])
        .assert()
        .success();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o644)).unwrap();
    project
        .tfenv_real()
        .args(["restore", "dev", "latest", "--yes"])
        .assert()
        .success();
    assert_eq!(mode(&state), 0o600);
}
