//! Promotion gates as configured and asked for: `promote_from` values tfenv.toml cannot
//! mean, `--skip-promotion-check` without a reason, and a deploy the gate cannot check
//! (no git repository) — each stopped before terraform plans anything.

use predicates::prelude::*;

use crate::support::Project;
use crate::support::fake::FakeTerraform;

/// The demo with `line` added to production's section (the last one).
fn demo_with_production(line: &str) -> Project {
    let project = Project::demo();
    let toml = project.read("tfenv.toml");
    project.write("tfenv.toml", &format!("{toml}{line}\n"));
    project
}

#[test]
fn a_promote_from_that_names_no_environment_or_itself_stops_every_command_with_a_hint() {
    let project = demo_with_production("promote_from = \"stagng\"");
    project
        .tfenv()
        .arg("envs")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: `tfenv.toml`: [environments.production] promote_from = `stagng` is not an environment (known: dev, staging, production)",
        ))
        .stderr(predicate::str::contains("or remove promote_from"));

    // An alias stands for its environment: `prod` is production itself.
    let project = demo_with_production("promote_from = \"prod\"");
    project
        .tfenv()
        .args(["deploy", "dev", "--yes"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "[environments.production] promote_from names `production` itself",
        ));
}

#[test]
fn promote_from_in_a_circle_is_a_config_error() {
    let project = demo_with_production("promote_from = \"staging\"");
    let toml = project.read("tfenv.toml").replace(
        "[environments.staging]\n",
        "[environments.staging]\npromote_from = \"production\"\n",
    );
    project.write("tfenv.toml", &toml);
    project
        .tfenv()
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "promote_from goes round in a circle: staging → production → staging",
        ));
}

#[test]
fn envs_json_names_each_environments_promote_from() {
    let project = demo_with_production("promote_from = \"staging\"");
    let output = project
        .tfenv()
        .args(["envs", "--output", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let json = crate::support::stdout_json(&output);
    assert_eq!(json["environments"][2]["promote_from"], "staging", "{json}");
    assert_eq!(
        json["environments"][1]["promote_from"],
        serde_json::Value::Null
    );
}

#[test]
fn skip_promotion_check_without_a_reason_is_a_usage_error_before_terraform_runs() {
    let project = demo_with_production("promote_from = \"staging\"");
    let tf = FakeTerraform::working().install(&project);
    for reason in ["", "   "] {
        project
            .tfenv_with(&tf)
            .args(["deploy", "production", "--yes", "--confirm", "production"])
            .args(["--skip-promotion-check", reason])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "--skip-promotion-check needs a reason, and it is empty",
            ))
            .stderr(predicate::str::contains("hotfix"));
    }
    assert!(!project.read_or_empty("calls.log").contains("plan"));
}

#[test]
fn a_gated_deploy_outside_git_is_refused_before_the_plan_unless_skipped() {
    let project = demo_with_production("promote_from = \"staging\"");
    let tf = FakeTerraform::working().install(&project);
    project
        .tfenv_with(&tf)
        .args(["deploy", "production", "--yes", "--confirm", "production"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "promotion check failed: not a git repository: `production` deploys only commits `staging` deployed",
        ))
        .stderr(predicate::str::contains("--skip-promotion-check \"<reason>\""));
    assert!(
        !project.read_or_empty("calls.log").contains("plan"),
        "nothing may be planned"
    );
    assert_eq!(project.last_history("production")["result"], "refused");

    project
        .tfenv_with(&tf)
        .args(["deploy", "production", "--yes", "--confirm", "production"])
        .args(["--skip-promotion-check", "first deploy"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "the promotion check of `production` (promote_from = `staging`) was skipped: first deploy",
        ));
    assert_eq!(
        project.last_history("production")["promotion_check_skipped"],
        "first deploy"
    );

    // An environment without promote_from has nothing to skip: said, not recorded.
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes", "--skip-promotion-check", "habit"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "`dev` has no promote_from in tfenv.toml: --skip-promotion-check has nothing to skip",
        ));
    assert!(
        project
            .last_history("dev")
            .get("promotion_check_skipped")
            .is_none()
    );
}

/// The demo with production promoted from staging, in a git repository whose commit
/// holds the project's files; everything else the run writes (the fake terraform, its
/// logs, `state/`) is ignored, so the tree stays clean. `empty`: no commit at all.
fn gated_repo(empty: bool) -> (Project, std::path::PathBuf) {
    let project = demo_with_production("promote_from = \"staging\"");
    let tf = FakeTerraform::working().install(&project);
    project.git(&["init", "-q"]);
    project.write(".git/info/exclude", "*\n");
    if !empty {
        project.git(&["add", "-f", "tfenv.toml", "environments", "examples"]);
        project.git(&["commit", "-q", "-m", "demo"]);
    }
    (project, tf)
}

fn head(project: &Project) -> String {
    project.git(&["rev-parse", "HEAD"]).trim().to_string()
}

fn deploy(
    project: &Project,
    tf: &std::path::Path,
    env: &str,
    extra: &[&str],
) -> std::process::Output {
    project
        .tfenv_with(tf)
        .args(["deploy", env, "--yes", "--confirm", env])
        .args(extra)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap()
}

fn text(output: &std::process::Output) -> String {
    crate::support::output_text(output)
}

#[test]
fn a_skip_reason_with_control_characters_or_too_long_is_a_usage_error() {
    let project = demo_with_production("promote_from = \"staging\"");
    let tf = FakeTerraform::working().install(&project);
    let long = "x".repeat(501);
    for (reason, says) in [
        (
            "hotfix\n2026-11-30 10:00 deploy by alice: applied",
            "without newlines or other control characters",
        ),
        (
            "hotfix \u{1b}[2J\u{7}",
            "without newlines or other control characters",
        ),
        (
            "hotfix\rINC-1",
            "without newlines or other control characters",
        ),
        (
            long.as_str(),
            "the reason is 501 characters long; at most 500 are kept",
        ),
    ] {
        project
            .tfenv_with(&tf)
            .args(["deploy", "production", "--yes", "--confirm", "production"])
            .args(["--skip-promotion-check", reason])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says))
            .stderr(predicate::str::contains("one short line"));
    }
    assert!(!project.read_or_empty("calls.log").contains("plan"));
    // 500 characters of text are kept.
    let fine = "é".repeat(500);
    project
        .tfenv_with(&tf)
        .args(["deploy", "production", "--yes", "--confirm", "production"])
        .args(["--skip-promotion-check", &fine])
        .assert()
        .success();
    assert_eq!(
        project.last_history("production")["promotion_check_skipped"],
        fine.as_str()
    );
}

#[test]
fn a_repository_without_commits_is_refused_even_after_staging_deployed_there() {
    let (project, tf) = gated_repo(true);
    let staged = deploy(&project, &tf, "staging", &[]);
    assert_eq!(staged.status.code(), Some(0), "{}", text(&staged));
    assert_eq!(
        project.last_history("staging")["git"]["commit"],
        "(no commits)"
    );
    let refused = deploy(&project, &tf, "production", &[]);
    assert_eq!(refused.status.code(), Some(5), "{}", text(&refused));
    assert!(
        text(&refused).contains("promotion check failed: HEAD is not a commit (`(no commits)`"),
        "{}",
        text(&refused)
    );
    assert!(
        !project
            .read("calls.log")
            .contains("-var-file=environments/production.tfvars")
    );
    assert_eq!(project.last_history("production")["result"], "refused");
}

#[test]
fn an_unreadable_staging_history_refuses_the_gate_with_exit_5() {
    let (project, tf) = gated_repo(false);
    std::fs::create_dir_all(project.join("state/staging/history.jsonl")).unwrap();
    let refused = deploy(&project, &tf, "production", &["--output", "json"]);
    assert_eq!(refused.status.code(), Some(5), "{}", text(&refused));
    let json = crate::support::stdout_json(&refused);
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "promotion check failed: cannot read the history of `staging` on this machine"
        ),
        "{json}"
    );
    assert_eq!(project.last_history("production")["result"], "refused");
}

#[test]
fn a_record_in_stagings_history_for_another_environment_does_not_count() {
    let (project, tf) = gated_repo(false);
    let staged = deploy(&project, &tf, "staging", &[]);
    assert_eq!(staged.status.code(), Some(0), "{}", text(&staged));
    let path = project.join("state/staging/history.jsonl");
    let mut record = project.last_history("staging");
    record["environment"] = "dev".into();
    std::fs::write(&path, format!("{record}\n")).unwrap();
    let refused = deploy(&project, &tf, "production", &[]);
    assert_eq!(refused.status.code(), Some(5), "{}", text(&refused));
    assert!(
        text(&refused).contains("ignoring 1 history record(s) in history.jsonl of `staging` that say they are of another environment (`dev`)"),
        "{}",
        text(&refused)
    );
}

#[test]
fn after_a_dirty_staging_deploy_the_refusal_names_the_last_clean_one_and_says_to_deploy_clean() {
    let (project, tf) = gated_repo(false);
    let x = head(&project);
    assert!(deploy(&project, &tf, "staging", &[]).status.success());
    let tfvars = project.read("environments/staging.tfvars");
    project.write("environments/staging.tfvars", &format!("{tfvars}\n# y\n"));
    project.git(&["commit", "-q", "-am", "y"]);
    let y = head(&project);
    // Staging deploys Y with a change not committed.
    let toml = project.read("tfenv.toml");
    project.write("tfenv.toml", &format!("{toml}\n"));
    assert!(deploy(&project, &tf, "staging", &[]).status.success());
    assert_eq!(project.last_history("staging")["git"]["dirty"], true);
    project.git(&["checkout", "-q", "tfenv.toml"]);
    let refused = deploy(&project, &tf, "production", &[]);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(5), "{said}");
    assert!(
        said.contains(&format!("`staging` last deployed `{}` on ", &x[..12])),
        "{said}"
    );
    assert!(
        said.contains("was `applied` from a tree with uncommitted changes"),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "deploy `staging` at `{}` from a clean tree (commit or stash the changes there first) first",
            &y[..12]
        )),
        "{said}"
    );
}

#[test]
fn deploy_json_and_the_job_summary_say_a_promotion_passed_or_was_skipped() {
    let (project, tf) = gated_repo(false);
    let x = head(&project);
    let summary = project.join("summary.md");
    let skipped = deploy(
        &project,
        &tf,
        "production",
        &[
            "--skip-promotion-check",
            "hotfix INC-42",
            "--output",
            "json",
            "--summary",
            summary.to_str().unwrap(),
        ],
    );
    assert_eq!(skipped.status.code(), Some(0), "{}", text(&skipped));
    let json = crate::support::stdout_json(&skipped);
    assert_eq!(json["promotion_check_skipped"], "hotfix INC-42", "{json}");
    assert!(json.get("promoted_from").is_none(), "{json}");
    assert!(
        json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("was skipped: hotfix INC-42")),
        "{json}"
    );
    let md = project.read("summary.md");
    assert!(
        md.contains(
            "- **production** promotion check skipped (promote_from `staging`): hotfix INC-42"
        ),
        "{md}"
    );

    assert!(deploy(&project, &tf, "staging", &[]).status.success());
    let passed = deploy(&project, &tf, "production", &["--output", "json"]);
    let json = crate::support::stdout_json(&passed);
    assert_eq!(
        json["promoted_from"],
        serde_json::json!({ "environment": "staging", "commit": x }),
        "{json}"
    );
    assert!(json.get("promotion_check_skipped").is_none(), "{json}");

    let dev = deploy(
        &project,
        &tf,
        "dev",
        &["--skip-promotion-check", "habit", "--output", "json"],
    );
    let json = crate::support::stdout_json(&dev);
    assert!(
        json["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("`dev` has no promote_from in tfenv.toml")),
        "{json}"
    );
    assert!(json.get("promotion_check_skipped").is_none(), "{json}");
}

/// Staging and production on gcs with the shared ledger on, production promoted from
/// staging, in a git repository; the fake gcloud's every call to the store hangs while
/// the file `hang` exists.
fn shared_gated_repo() -> (Project, std::path::PathBuf) {
    let project = Project::empty();
    let mut toml = String::from("[project]\nledger = \"backend\"\n");
    for env in ["staging", "production"] {
        toml.push_str(&format!(
            "\n[environments.{env}]\nbackend_config = \"environments/{env}.backend.conf\"\nvar_files = [\"environments/{env}.tfvars\"]\n"
        ));
        project.write(
            &format!("environments/{env}.backend.conf"),
            &format!("bucket = \"b\"\nprefix = \"{env}\"\n"),
        );
        project.write(&format!("environments/{env}.tfvars"), "");
    }
    toml.push_str("promote_from = \"staging\"\n");
    project.write("tfenv.toml", &toml);
    project.write("main.tf", "terraform {\n  backend \"gcs\" {}\n}\n");
    crate::support::clouds::FakeCloud::gcloud(&project, &[]);
    std::fs::rename(project.join("bin/gcloud"), project.join("bin/gcloud-store")).unwrap();
    project.script(
        "bin/gcloud",
        &format!(
            "if [ -f '{hang}' ]; then exec sleep 30; fi\nexec '{store}' \"$@\"",
            hang = project.join("hang").display(),
            store = project.join("bin/gcloud-store").display(),
        ),
    );
    let tf = FakeTerraform::working()
        .at("fake/terraform")
        .install(&project);
    project.git(&["init", "-q"]);
    project.write(".git/info/exclude", "*\n");
    project.git(&["add", "-f", "tfenv.toml", "main.tf", "environments"]);
    project.git(&["commit", "-q", "-m", "demo"]);
    (project, tf)
}

#[test]
fn a_shared_ledger_that_does_not_answer_refuses_the_gate_once_saying_so_and_to_retry() {
    let (project, tf) = shared_gated_repo();
    std::fs::write(project.join("hang"), "").unwrap();
    let started = std::time::Instant::now();
    let refused = project
        .tfenv_with(&tf)
        .env("PATH", project.fake_path())
        .args(["deploy", "production", "--yes", "--confirm", "production"])
        .args(["--timeout", "2s", "--output", "json"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let took = started.elapsed();
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(5), "{said}");
    // One dead store, one wait: the refused record's upload does not wait again.
    assert!(took < std::time::Duration::from_secs(6), "{took:?}\n{said}");
    let json = crate::support::stdout_json(&refused);
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "promotion check failed: the shared ledger of `staging` at `gs://b/staging/default.tfstate.tfenv/` could not be read ("
        ) && message.contains("did not answer within 2s (--timeout)"),
        "{json}"
    );
    assert!(!message.contains("has no successful deploy"), "{json}");
    let hint = json["error"]["hint"].as_str().unwrap();
    assert!(
        hint.starts_with("retry when the state backend answers")
            && hint.contains("--skip-promotion-check"),
        "{json}"
    );
    assert!(!hint.contains("deploy `staging`"), "{json}");
    assert!(
        said.contains("not uploaded to the shared ledger of `production`: it did not answer earlier in this run"),
        "{said}"
    );
    let record = project.last_history("production");
    assert_eq!(record["result"], "refused", "{record}");
}
