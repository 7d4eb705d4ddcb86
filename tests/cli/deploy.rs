//! Deploy faults only a fake terraform produces on demand: apply failing half-way or
//! killed, garbage from `show -json`, `output -json` failing after a good apply, a held
//! state lock, a failing backup, two deploys at once.

use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::support::fake::FakeTerraform;
use crate::support::running::RunningTfenv;
use crate::support::{Project, wait_until};

/// A fake terraform that works, except for `apply`.
fn ok_fake(project: &Project, apply: &str) -> std::path::PathBuf {
    FakeTerraform::working().on("apply", apply).install(project)
}

fn deploy(project: &Project, tf: &std::path::Path, env: &str) -> assert_cmd::Command {
    let mut cmd = project.tfenv_with(tf);
    cmd.args(["deploy", env, "--yes"]);
    cmd
}

#[test]
fn apply_failing_half_way_is_a_failure_with_terraforms_message() {
    let project = Project::demo();
    let tf = ok_fake(
        &project,
        "echo 'terraform_data.a: Creating...'; echo 'Error: creating thing: quota exceeded' >&2; exit 1",
    );
    deploy(&project, &tf, "dev")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`terraform apply` for `dev` exited with code 1",
        ))
        .stderr(predicate::str::contains(
            "Error: creating thing: quota exceeded",
        ));
    assert!(!project.join("state/dev/terraform.plan").exists());
    let record = project.last_history("dev");
    assert_eq!(record["result"], "failed");
    assert_eq!(record["exit_code"], 1);
    assert!(!project.join("state/dev/outputs.json").exists());
}

#[test]
fn apply_killed_by_a_signal_is_a_failure() {
    let project = Project::demo();
    let tf = ok_fake(&project, "kill -9 $$");
    deploy(&project, &tf, "dev")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`terraform apply` for `dev` was killed by signal 9",
        ));
    assert!(!project.join("state/dev/terraform.plan").exists());
    assert_eq!(project.last_history("dev")["result"], "failed");
}

#[test]
fn garbage_from_show_json_stops_before_apply() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on("show", "echo 'panic: runtime error'")
        .install(&project);
    deploy(&project, &tf, "dev")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("did not print a plan"))
        // Not quoted: what came instead of a plan may hold the plan's values.
        .stderr(predicate::str::contains("panic: runtime error").not());
    assert!(
        !project.read("calls.log").contains("apply"),
        "nothing may be applied"
    );
    assert!(!project.join("state/dev/terraform.plan").exists());
}

#[test]
fn outputs_failing_after_apply_is_applied_with_a_warning_and_keeps_old_outputs() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on(
            "output",
            "echo 'Error: state snapshot was created by a newer Terraform' >&2; exit 1",
        )
        .install(&project);
    project.write("state/dev/outputs.json", "{\"previous\": true}\n");
    deploy(&project, &tf, "dev")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Applied to `dev`"))
        .stderr(predicate::str::contains(
            "warning: the change was applied, but reading its outputs failed",
        ));
    assert_eq!(
        project.read("state/dev/outputs.json"),
        "{\"previous\": true}\n"
    );
    assert_eq!(project.last_history("dev")["result"], "applied");
}

#[test]
fn a_held_state_lock_exits_4_and_names_the_holder() {
    let project = Project::demo();
    let lock_error = r#"printf 'Error: Error acquiring the state lock\n\nLock Info:\n  ID:        9db590f1-b6fe\n  Path:      state/dev\n  Operation: OperationTypeApply\n  Who:       alice@laptop\n  Version:   1.11.4\n  Created:   2026-11-22 09:14:03 +0000 UTC\n  Info:\n' >&2; exit 1"#;
    let tf = FakeTerraform::working()
        .on("plan", lock_error)
        .install(&project);
    deploy(&project, &tf, "dev")
        .assert()
        .code(4)
        .stderr(predicate::str::contains(
            "the state of `dev` is locked by alice@laptop (OperationTypeApply since 2026-11-22 09:14:03 +0000 UTC, lock ID 9db590f1-b6fe)",
        ));
    assert_eq!(project.last_history("dev")["exit_code"], 4);
}

#[test]
fn a_state_lock_still_held_after_lock_timeout_says_to_wait_longer_not_to_pass_it() {
    let project = Project::demo();
    let lock_error = r#"printf 'Error: Error acquiring the state lock\n\nLock Info:\n  ID:        9db590f1-b6fe\n  Path:      state/dev\n  Operation: OperationTypeApply\n  Who:       alice@laptop\n  Version:   1.11.4\n  Created:   2026-11-22 09:14:03 +0000 UTC\n  Info:\n' >&2; exit 1"#;
    let tf = FakeTerraform::working()
        .on("plan", lock_error)
        .install(&project);
    deploy(&project, &tf, "dev")
        .args(["--lock-timeout", "1s"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(
            "wait longer (a larger --lock-timeout), or check who holds it with `tfenv lock dev`",
        ))
        .stderr(predicate::str::contains("(--lock-timeout 5m)").not());
}

#[test]
fn a_production_deploy_whose_backup_fails_does_not_apply() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on(
            "state",
            "echo 'Error: AccessDenied reading state' >&2; exit 1",
        )
        .install(&project);
    project
        .tfenv_with(&tf)
        .args(["deploy", "production", "--yes", "--confirm", "production"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`terraform state pull` for `production` exited with code 1",
        ));
    assert!(
        !project.read("calls.log").contains("apply"),
        "nothing may be applied"
    );
    let backups = project.join("state/production/backups");
    let left: Vec<_> = std::fs::read_dir(&backups)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no partial backup left: {left:?}");
}

#[test]
fn a_second_deploy_of_the_same_environment_exits_4_at_once() {
    let project = Project::demo();
    let tf = ok_fake(
        &project,
        &format!("touch '{}'; sleep 5", project.join("applying").display()),
    );
    let mut first = project.command();
    first
        .arg("--terraform")
        .arg(&tf)
        .args(["deploy", "dev", "--yes"]);
    let mut first = RunningTfenv::spawn(first);
    wait_until(
        "the first deploy reaches apply",
        Duration::from_secs(20),
        || project.join("applying").exists(),
    );
    let second = Instant::now();
    deploy(&project, &tf, "dev")
        .assert()
        .code(4)
        .stderr(predicate::str::contains(
            "environment `dev` is busy: another tfenv holds it",
        ))
        .stderr(predicate::str::contains(format!("pid {}", first.pid())));
    assert!(
        second.elapsed() < Duration::from_secs(3),
        "refused at once, not after waiting"
    );
    let (status, _) = first.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{}", first.output_text());
}

#[test]
fn production_refuses_when_git_cannot_say_whether_the_tree_is_clean() {
    let project = Project::demo();
    let tf = ok_fake(&project, "exit 0");
    // A checkout git refuses to read (owned by another user).
    std::fs::create_dir(project.join(".git")).unwrap();
    project.script(
        "bin/git",
        "echo \"fatal: detected dubious ownership in repository at '$PWD'\" >&2; exit 128",
    );
    let path = project.fake_path();
    project
        .tfenv_with(&tf)
        .env("PATH", &path)
        .args(["deploy", "production", "--yes", "--confirm", "production"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "cannot tell whether the git tree is clean",
        ))
        .stderr(predicate::str::contains("dubious ownership"))
        .stderr(predicate::str::contains("--allow-dirty"));
    assert!(
        !project.read("calls.log").contains("apply"),
        "nothing may be applied"
    );
    project
        .tfenv_with(&tf)
        .env("PATH", &path)
        .args([
            "deploy",
            "production",
            "--yes",
            "--confirm",
            "production",
            "--allow-dirty",
        ])
        .assert()
        .success();
}

#[test]
fn confirm_with_an_alias_is_refused_and_asks_for_the_full_name() {
    let project = Project::demo();
    let tf = ok_fake(&project, "exit 0");
    project
        .tfenv_with(&tf)
        .args(["deploy", "production", "--yes", "--confirm", "prod"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "--confirm `prod` is an alias of `production`: type the environment's full name `production` (aliases don't count)",
        ))
        .stderr(predicate::str::contains("pass --confirm production"));
    assert!(
        !project.read("calls.log").contains("apply"),
        "nothing may be applied"
    );
}

/// The plan summary counts a replacement apart from a destroy; the refusal's count of
/// destroyed resources includes both and says so.
#[test]
fn the_destroy_count_of_a_production_refusal_says_what_is_destroyed_and_replaced() {
    let project = Project::demo();
    let plan = r#"{"format_version":"1.2","resource_changes":[{"address":"terraform_data.a","change":{"actions":["delete"]}},{"address":"terraform_data.b","change":{"actions":["delete","create"]}}],"output_changes":{}}"#;
    let tf = FakeTerraform::working()
        .on("show", format!("echo '{plan}'"))
        .install(&project);
    project
        .tfenv_with(&tf)
        .args(["deploy", "production", "--yes", "--confirm", "production"])
        .assert()
        .code(5)
        .stdout(predicate::str::contains("-1 to destroy, ±1 to replace"))
        .stderr(predicate::str::contains(
            "error: this change destroys 2 resource(s) (1 destroyed, 1 replaced) in production `production`",
        ));
    assert!(!project.read("calls.log").contains("apply"));
}

#[test]
fn confirm_and_yes_are_checked_before_init_and_plan_run() {
    let project = Project::demo();
    let tf = ok_fake(&project, "exit 0");
    let cases: [(&[&str], &str); 5] = [
        (
            &["deploy", "production", "--yes", "--confirm", "PRODUCTION"],
            "--confirm `PRODUCTION` is not `production`: the name must match exactly, case and spaces included",
        ),
        (
            &["deploy", "production", "--yes", "--confirm", " production"],
            "--confirm ` production` is not `production`: the name must match exactly",
        ),
        (
            &["deploy", "production", "--yes", "--confirm", "staging"],
            "--confirm `staging` names another environment",
        ),
        (
            &["deploy", "production", "--yes"],
            "pass --yes --confirm production",
        ),
        (
            &["refresh", "dev", "--non-interactive"],
            "write the refreshed state of `dev` needs confirmation and this run cannot prompt",
        ),
    ];
    for (args, says) in cases {
        let _ = std::fs::remove_file(project.join("calls.log"));
        project
            .tfenv_with(&tf)
            .args(args)
            .assert()
            .code(5)
            .stderr(predicate::str::contains(says));
        let calls = project.read_or_empty("calls.log");
        assert!(
            calls.lines().all(|call| call.starts_with("version")),
            "{args:?}: only the version check may run before the refusal:\n{calls}"
        );
    }
    assert_eq!(
        project.last_history("production")["result"],
        "refused",
        "an early refusal is recorded too"
    );
}

#[test]
fn concurrent_backups_keep_every_manifest_line() {
    let project = Project::demo();
    let tf = ok_fake(&project, "exit 0");
    project
        .tfenv_with(&tf)
        .args(["init", "dev"])
        .assert()
        .success();
    let children: Vec<RunningTfenv> = (0..8)
        .map(|_| {
            let mut backup = project.command();
            backup
                .arg("--terraform")
                .arg(&tf)
                .args(["backup", "dev", "-q"]);
            RunningTfenv::spawn(backup)
        })
        .collect();
    for mut child in children {
        let (status, _) = child.wait_exit(Duration::from_secs(60));
        assert!(status.success(), "{}", child.output_text());
    }
    let manifest = project.read("state/dev/backups/MANIFEST.jsonl");
    assert_eq!(manifest.lines().count(), 8, "{manifest}");
    project.tfenv().args(["verify", "dev"]).assert().success();
}

// ---- plan bundles: what is refused before terraform runs ----

#[test]
fn deploy_plan_with_allow_dirty_is_a_usage_error() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--plan", "bundle", "--allow-dirty"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--allow-dirty"));
}

#[test]
fn deploy_plan_of_a_missing_folder_is_a_usage_error() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--plan", "no-such-bundle", "--yes"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no-such-bundle`: no such directory",
        ));
    assert!(!project.join("state/dev/history.jsonl").exists());
}

#[test]
fn deploy_plan_of_a_folder_that_is_not_a_bundle_is_refused() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    project.write("notabundle/readme.txt", "x");
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--plan", "notabundle", "--yes"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "is not a plan bundle: it has no bundle.json",
        ))
        .stderr(predicate::str::contains(
            "give the folder `tfenv plan dev --out DIR` wrote",
        ));
    project.write("future/bundle.json", r#"{"format": 3}"#);
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--plan", "future", "--yes"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "plan bundle check `format` failed: expected `1 or 2`, found `3`",
        ));
}

/// `plan --encrypt`'s flags and keys, checked before anything runs: each a usage error
/// (exit 2) saying what to give.
#[test]
fn plan_encrypt_without_keys_or_with_a_bad_key_is_a_usage_error_before_planning() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    let plan = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = project.tfenv_with(&tf);
        cmd.args(["plan", "dev"])
            .args(args)
            .envs(env.iter().copied());
        cmd.assert().code(2)
    };
    plan(&["--encrypt"], &[]).stderr(predicate::str::contains("--out <DIR>"));
    plan(&["--out", "b", "--recipient", key], &[]).stderr(predicate::str::contains("--encrypt"));
    plan(&["--out", "b", "--encrypt"], &[])
        .stderr(predicate::str::contains(
            "--encrypt needs a recipient or a passphrase",
        ))
        .stderr(predicate::str::contains("TFENV_BUNDLE_RECIPIENTS"));
    plan(
        &["--out", "b", "--encrypt", "--recipient", key],
        &[("TFENV_BUNDLE_PASSPHRASE", "p")],
    )
    .stderr(predicate::str::contains(
        "both recipients and TFENV_BUNDLE_PASSPHRASE are set",
    ));
    plan(
        &["--out", "b", "--encrypt"],
        &[("TFENV_BUNDLE_RECIPIENTS", &format!("{key}, not-a-key"))],
    )
    .stderr(predicate::str::contains(
        "recipient `not-a-key` is not an age public key",
    ));
    assert!(!project.join("b").exists(), "no bundle");
    assert!(
        !project.join(".terraform/tfenv/dev").exists(),
        "no init, no plan"
    );
}

/// The demo with `[project] ledger = "backend"`: its backend is local.
fn demo_with_shared_ledger() -> Project {
    let project = Project::demo();
    let toml = project.read("tfenv.toml").replace(
        "state_dir = \"state\"\n",
        "state_dir = \"state\"\nledger = \"backend\"\n",
    );
    assert!(toml.contains("ledger = \"backend\""));
    project.write("tfenv.toml", &toml);
    project
}

#[test]
fn plan_publish_with_the_local_ledger_is_a_usage_error_naming_the_setting() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    for args in [
        &["plan", "dev", "--publish"][..],
        &["plan", "dev", "--publish", "--encrypt", "--recipient", key],
    ] {
        project
            .tfenv_with(&tf)
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "--publish needs the shared ledger, and this project keeps its ledger on this machine (`ledger = \"local\"`)",
            ))
            .stderr(predicate::str::contains(
                "set `ledger = \"backend\"` under `[project]` in `tfenv.toml`",
            ))
            // --encrypt has what it needs: --publish.
            .stderr(predicate::str::contains("--out <DIR>").not());
    }
    let output = project
        .tfenv_with(&tf)
        .args(["plan", "dev", "--publish", "--output", "json"])
        .output()
        .unwrap();
    let doc = crate::support::stdout_json(&output);
    assert_eq!(doc["error"]["exit_code"], 2, "{doc}");
    assert!(
        !project.join(".terraform/tfenv/dev").exists(),
        "no init, no plan"
    );
}

#[test]
fn plan_publish_with_a_local_backend_is_a_usage_error_saying_it_has_no_shared_storage() {
    let project = demo_with_shared_ledger();
    let tf = FakeTerraform::working().install(&project);
    project
        .tfenv_with(&tf)
        .args(["plan", "dev", "--publish"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--publish: `dev` has a local backend: there is no shared storage to keep plans in",
        ))
        .stderr(predicate::str::contains("--out DIR --encrypt"));
    assert!(
        !project.join(".terraform/tfenv/dev").exists(),
        "no init, no plan"
    );
    assert!(!project.join("state/dev").exists(), "nothing written");
}

#[test]
fn plan_publish_of_several_environments_is_a_usage_error() {
    let project = demo_with_shared_ledger();
    let tf = FakeTerraform::working().install(&project);
    project
        .tfenv_with(&tf)
        .args(["plan", "dev", "staging", "--publish"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--publish publishes the plan of one environment",
        ));
}

#[test]
fn deploy_of_a_ledger_plan_without_a_shared_ledger_is_a_usage_error() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--plan", "ledger:42"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--plan `ledger:42` needs the shared ledger",
        ))
        .stderr(predicate::str::contains("`ledger = \"backend\"`"));
    let project = demo_with_shared_ledger();
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--plan", "ledger:42"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--plan `ledger:42`: `dev` has a local backend",
        ));
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--plan", "ledger:../42"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`../42` is not the ID of a published plan",
        ));
    assert!(!project.join(".terraform/tfenv/dev").exists());
}

/// A bundle encrypted to a key, through the fake terraform: applied with the key from
/// the environment, the clear plan file never left behind.
#[test]
fn an_encrypted_bundle_applies_with_the_key_itself_in_tfenv_bundle_identity() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let identity = age::x25519::Identity::generate();
    let public = identity.to_public().to_string();
    let secret = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_string();
    project
        .tfenv_with(&tf)
        .args(["plan", "dev", "--out", "bundle", "--encrypt"])
        .env("TFENV_BUNDLE_RECIPIENTS", &public)
        .assert()
        .success()
        .stdout(predicate::str::contains("its plan encrypted (age)"));
    assert!(!project.join("bundle/terraform.plan").exists());
    assert!(!project.join("state/dev/terraform.plan").exists());
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--plan", "bundle", "--yes"])
        .env("TFENV_BUNDLE_IDENTITY", &secret)
        .assert()
        .success()
        .stderr(predicate::str::contains(&secret).not());
    assert_eq!(project.last_history("dev")["result"], "applied");
    assert!(!project.join("state/dev/terraform.plan").exists());
}

#[test]
fn deploy_plan_with_a_missing_plan_file_is_refused_and_recorded() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    project
        .tfenv_with(&tf)
        .args(["plan", "dev", "--out", "bundle"])
        .assert()
        .success();
    std::fs::remove_file(project.join("bundle/terraform.plan")).unwrap();
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--plan", "bundle", "--yes"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "plan bundle check `sha256 of terraform.plan` failed: expected `",
        ))
        .stderr(predicate::str::contains("found `missing`"));
    assert_eq!(project.last_history("dev")["result"], "refused");
}

/// A fake terraform whose apply says it started (the file `applying`) and then holds on
/// until the test creates `release`: the first deploy holds the environment meanwhile.
fn held_apply_fake(project: &Project) -> std::path::PathBuf {
    let applying = project.join("applying");
    let release = project.join("release");
    ok_fake(
        project,
        &format!(
            "touch '{}'; for i in $(seq 600); do [ -e '{}' ] && exit 0; sleep 0.1; done; exit 1",
            applying.display(),
            release.display()
        ),
    )
}

/// `tfenv deploy dev --yes` holding the environment, in its apply, until `release`.
fn holding_deploy(project: &Project, tf: &std::path::Path) -> RunningTfenv {
    let mut first = project.command();
    first
        .arg("--terraform")
        .arg(tf)
        .args(["deploy", "dev", "--yes"]);
    let first = RunningTfenv::spawn(first);
    wait_until(
        "the first deploy reaches apply",
        Duration::from_secs(20),
        || project.join("applying").exists(),
    );
    first
}

fn history_lines(project: &Project) -> usize {
    project
        .read_or_empty("state/dev/history.jsonl")
        .lines()
        .count()
}

#[test]
fn a_deploy_with_a_lock_timeout_waits_for_the_other_tfenv_says_who_and_then_applies() {
    let project = Project::demo();
    let tf = held_apply_fake(&project);
    let mut first = holding_deploy(&project, &tf);
    let mut second = project.command();
    second
        .arg("--terraform")
        .arg(&tf)
        .args(["deploy", "dev", "--yes", "--lock-timeout", "60s"]);
    let mut second = RunningTfenv::spawn(second);
    second.wait_for_stderr(
        &format!(
            "dev: waiting for another tfenv to finish (pid {}, `tfenv deploy dev`",
            first.pid()
        ),
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(history_lines(&project), 0, "nobody finished yet");

    std::fs::write(project.join("release"), "").unwrap();
    let (status, _) = first.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{}", first.output_text());
    let (status, _) = second.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{}", second.output_text());
    assert!(
        second
            .stderr()
            .contains("dev: got the environment's lock after"),
        "{}",
        second.output_text()
    );
    let history = project.read("state/dev/history.jsonl");
    let results: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 2, "{history}");
    assert!(
        results.iter().all(|r| r["result"] == "applied"),
        "{history}"
    );
}

#[test]
fn a_deploy_whose_lock_timeout_runs_out_exits_4_naming_the_holder_and_how_long_it_waited() {
    let project = Project::demo();
    let tf = held_apply_fake(&project);
    let mut first = holding_deploy(&project, &tf);
    let started = Instant::now();
    deploy(&project, &tf, "dev")
        .args(["--lock-timeout", "2s"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(format!(
            "dev: waiting for another tfenv to finish (pid {}",
            first.pid()
        )))
        .stderr(predicate::str::contains(
            "environment `dev` is still busy after waiting 2s (--lock-timeout): another tfenv holds it",
        ))
        .stderr(predicate::str::contains(format!("pid {}, `tfenv deploy dev`", first.pid())));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "gave up after the timeout, not before nor much later: {took:?}"
    );
    assert_eq!(
        history_lines(&project),
        0,
        "the waiting run recorded nothing"
    );
    std::fs::write(project.join("release"), "").unwrap();
    let (status, _) = first.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{}", first.output_text());
}

#[test]
fn init_during_a_deploy_waits_for_the_environment_or_exits_4() {
    let project = Project::demo();
    let tf = held_apply_fake(&project);
    let mut first = holding_deploy(&project, &tf);
    // At once: exit 4 naming the deploy; no terraform init ran under it.
    project
        .tfenv_with(&tf)
        .args(["init", "dev", "--reconfigure"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(format!(
            "pid {}, `tfenv deploy dev`",
            first.pid()
        )));
    // With --lock-timeout: it waits, then runs once the deploy is done.
    let mut init = project.command();
    init.arg("--terraform").arg(&tf).args([
        "init",
        "dev",
        "--reconfigure",
        "--lock-timeout",
        "60s",
    ]);
    let mut init = RunningTfenv::spawn(init);
    init.wait_for_stderr(
        "dev: waiting for another tfenv to finish",
        Duration::from_secs(20),
    );
    std::fs::write(project.join("release"), "").unwrap();
    let (status, _) = first.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{}", first.output_text());
    let (status, _) = init.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", init.output_text());
    assert!(
        init.output_text().contains("dev: initialized"),
        "{}",
        init.output_text()
    );
    assert_eq!(history_lines(&project), 1, "init records nothing");
}

#[test]
fn ctrl_c_while_waiting_for_the_environment_exits_130_at_once_and_records_nothing() {
    let project = Project::demo();
    let tf = held_apply_fake(&project);
    let mut first = holding_deploy(&project, &tf);
    let mut second = project.command();
    second
        .arg("--terraform")
        .arg(&tf)
        .args(["deploy", "dev", "--yes", "--lock-timeout", "5m"]);
    let mut second = RunningTfenv::spawn(second);
    second.wait_for_stderr(
        "dev: waiting for another tfenv to finish",
        Duration::from_secs(20),
    );
    second.signal(nix::sys::signal::Signal::SIGINT);
    let (status, took) = second.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{}", second.output_text());
    assert!(took < Duration::from_secs(3), "at once: {took:?}");
    assert_eq!(
        history_lines(&project),
        0,
        "the interrupted wait recorded nothing"
    );

    std::fs::write(project.join("release"), "").unwrap();
    let (status, _) = first.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{}", first.output_text());
    let history = project.read("state/dev/history.jsonl");
    assert_eq!(
        history.lines().count(),
        1,
        "only the first deploy: {history}"
    );
    let record = project.last_history("dev");
    assert_eq!(record["result"], "applied", "{record}");
}

#[test]
fn a_lock_timeout_that_is_not_a_duration_is_a_usage_error_saying_how_to_write_one() {
    let project = Project::demo();
    let tf = ok_fake(&project, "exit 0");
    deploy(&project, &tf, "dev")
        .args(["--lock-timeout", "soon"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--lock-timeout"))
        .stderr(predicate::str::contains("write it like 0s, 90s or 5m"));
    // terraform would reject what does not fit its own durations; tfenv caps it first.
    deploy(&project, &tf, "dev")
        .args(["--lock-timeout", "3000000h"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("at most 7d"));
    assert!(
        !project.read_or_empty("calls.log").contains("plan"),
        "nothing ran"
    );
}

#[test]
fn the_apply_command_a_plan_prints_works_from_a_subdirectory_and_with_c() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let stdout_of = |cmd: &mut assert_cmd::Command| {
        let output = cmd.output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    // From a subdirectory: the path as typed there, not the project root's.
    let out = stdout_of(
        project
            .tfenv_with(&tf)
            .current_dir(project.join("environments"))
            .args(["plan", "dev", "--out", "bundles/dev"]),
    );
    assert!(
        out.contains("Apply it with:\n  tfenv deploy dev --plan bundles/dev\n"),
        "{out}"
    );
    // With -C: -C again, and the path as --plan reads it (from -C's folder).
    let parent = project.path().parent().unwrap().to_path_buf();
    let name = project.path().file_name().unwrap().to_str().unwrap();
    let out = stdout_of(project.tfenv_with(&tf).current_dir(&parent).args([
        "-C",
        name,
        "plan",
        "staging",
        "--out",
        "bundles/staging",
    ]));
    assert!(
        out.contains(&format!(
            "Apply it with:\n  tfenv -C {name} deploy staging --plan bundles/staging\n"
        )),
        "{out}"
    );
    // Outside the folder it is read from: absolute.
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path().join("production");
    let out = stdout_of(
        project
            .tfenv_with(&tf)
            .current_dir(project.join("environments"))
            .args(["plan", "dev", "--out", dir.to_str().unwrap()]),
    );
    assert!(
        out.contains(&format!("tfenv deploy dev --plan {}\n", dir.display())),
        "{out}"
    );
    // What it printed applies, from where it was printed.
    let applied = project
        .tfenv_with(&tf)
        .current_dir(project.join("environments"))
        .args(["deploy", "dev", "--plan", "bundles/dev", "--yes"])
        .output()
        .unwrap();
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
}

#[test]
fn the_history_marks_a_run_that_applied_a_bundle() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes"])
        .assert()
        .code(0);
    project
        .tfenv_with(&tf)
        .args(["plan", "dev", "--out", "bundle"])
        .assert()
        .code(0);
    project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--plan", "bundle", "--yes"])
        .assert()
        .code(0);
    let sha = project.last_history("dev")["bundle"]
        .as_str()
        .expect("the record names its bundle")
        .to_string();
    let output = project.tfenv().args(["history", "dev"]).output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].ends_with("BUNDLE"), "{out}");
    assert!(lines[1].ends_with(" -"), "a plain deploy has none:\n{out}");
    assert!(
        lines.last().unwrap().ends_with(&format!("{}…", &sha[..8])),
        "{out}"
    );
}
