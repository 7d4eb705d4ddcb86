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
