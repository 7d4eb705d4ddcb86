//! `plan [ENV...] | --all`: several environments planned at once. A fake terraform whose
//! `plan` depends on the environment (`$env`, the last part of its TF_DATA_DIR) injects
//! a failure in one, slow output in two at once, an init that must be alone.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::support::fake::{FakeTerraform, WRITE_PLAN};
use crate::support::running::RunningTfenv;
use crate::support::snap::Snapshots;
use crate::support::{Project, expecting, stderr, stdout, stdout_json, wait_until};

/// A fake terraform whose `plan` runs `body` first, with `$env` the environment planned.
fn fake_with_plan(project: &Project, body: &str) -> PathBuf {
    FakeTerraform::working()
        .on(
            "plan",
            format!("env=\"${{TF_DATA_DIR##*/}}\"\n{body}\n{WRITE_PLAN}"),
        )
        .install(project)
}

/// `plan` of staging fails with terraform's error; dev and production plan changes.
const STAGING_FAILS: &str =
    r#"if [ "$env" = staging ]; then echo "Error: staging is broken" >&2; exit 1; fi"#;

fn entry<'a>(json: &'a Value, env: &str) -> &'a Value {
    json["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == env)
        .unwrap_or_else(|| panic!("no entry for {env} in {json:#}"))
}

#[test]
fn one_environment_failing_does_not_stop_the_others_and_the_run_exits_1() {
    let project = Project::demo();
    let tf = fake_with_plan(&project, STAGING_FAILS);
    let output = expecting(
        project.run_with(&tf, &["plan", "--all", "--detailed-exitcode"]),
        1,
    );
    let (out, err) = (stdout(&output), stderr(&output));
    // Every environment was planned; the failure is in its block and in the table.
    assert!(out.contains("Planned `dev`"), "{out}");
    assert!(out.contains("Planned `production`"), "{out}");
    assert!(
        err.contains("error: staging: `terraform plan` for `staging` exited with code 1"),
        "{err}"
    );
    assert!(err.contains("Error: staging is broken"), "{err}");
    let row = |env: &str| {
        out.lines()
            .find(|l| l.starts_with(env) && l.contains("  "))
            .unwrap_or_else(|| panic!("no table row for {env}:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("dev")[..3], ["dev", "development", "planned"], "{out}");
    assert_eq!(
        row("staging")[..3],
        ["staging", "staging", "failed"],
        "{out}"
    );
    assert_eq!(row("production")[2], "planned", "{out}");

    let output = expecting(
        project.run_with(&tf, &["plan", "--all", "--output", "json"]),
        1,
    );
    let json = stdout_json(&output);
    assert_eq!(entry(&json, "dev")["result"], "planned");
    assert_eq!(entry(&json, "staging")["result"], "failed");
    let message = entry(&json, "staging")["error"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("staging is broken"), "{message}");
    assert_eq!(json["failed"], 1);
}

#[test]
fn detailed_exitcode_of_several_is_0_without_changes_3_with_any_and_1_when_any_failed() {
    let project = Project::demo();
    // No changes anywhere: terraform's -detailed-exitcode 0.
    let tf = FakeTerraform::working()
        .on(
            "plan",
            r#"for a in "$@"; do case "$a" in -out=*) echo plan > "${a#-out=}" ;; esac; done"#,
        )
        .install(&project);
    let output = expecting(
        project.run_with(&tf, &["plan", "dev", "staging", "--detailed-exitcode"]),
        0,
    );
    assert!(
        stdout(&output).contains("no changes"),
        "{}",
        stdout(&output)
    );

    // Changes in production only.
    let tf = fake_with_plan(
        &project,
        r#"if [ "$env" != production ]; then for a in "$@"; do case "$a" in -out=*) echo plan > "${a#-out=}" ;; esac; done; exit 0; fi"#,
    );
    expecting(
        project.run_with(&tf, &["plan", "--all", "--detailed-exitcode"]),
        3,
    );
    // Without --detailed-exitcode, changes are a success.
    expecting(project.run_with(&tf, &["plan", "--all"]), 0);

    // Changes in two, a failure in the third: failure wins.
    let tf = fake_with_plan(&project, STAGING_FAILS);
    expecting(
        project.run_with(&tf, &["plan", "--all", "--detailed-exitcode"]),
        1,
    );
}

#[test]
fn output_of_environments_planned_at_once_is_printed_in_blocks_never_interleaved() {
    let project = Project::demo();
    // dev and staging meet: each waits (up to 20 s) until the other's plan has started,
    // so they provably run at the same time; then each prints slowly.
    let dir = project.path().display();
    let tf = fake_with_plan(
        &project,
        &format!(
            r#"touch "{dir}/started-$env"
other=dev; [ "$env" = dev ] && other=staging
for i in $(seq 400); do [ -f "{dir}/started-$other" ] && break; sleep 0.05; done
[ -f "{dir}/started-$other" ] || {{ echo "Error: $other never started alongside $env" >&2; exit 1; }}
for i in 1 2 3 4 5; do echo "$env line $i"; sleep 0.1; done"#
        ),
    );
    let output = expecting(
        project.run_with(&tf, &["plan", "dev", "staging", "-j", "2"]),
        0,
    );
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(" line ")).collect();
    assert_eq!(lines.len(), 10, "{err}");
    let first = if lines[0].starts_with("[dev]") {
        "dev"
    } else {
        "staging"
    };
    let second = if first == "dev" { "staging" } else { "dev" };
    let expected: Vec<String> = [first, second]
        .iter()
        .flat_map(|env| (1..=5).map(move |i| format!("[{env}] {env} line {i}")))
        .collect();
    assert_eq!(lines, expected, "{err}");
    // Each block ends with its own result line, before the table.
    let out = stdout(&output);
    assert!(
        out.find(&format!("Planned `{first}`")) < out.find(&format!("Planned `{second}`")),
        "{out}"
    );
    assert!(out.find("Planned `dev`") < out.find("ENV "), "{out}");
}

#[test]
fn one_environment_still_streams_its_output_as_it_comes() {
    let project = Project::demo();
    let dir = project.path().display();
    // The plan prints a line, then waits until the test has seen it on tfenv's stderr.
    let tf = fake_with_plan(
        &project,
        &format!(
            r#"echo "first line"
for i in $(seq 400); do [ -f "{dir}/seen" ] && break; sleep 0.05; done"#
        ),
    );
    let mut tfenv = project.command();
    tfenv.arg("--terraform").arg(&tf).args(["plan", "dev"]);
    let mut run = RunningTfenv::spawn(tfenv);
    run.wait_for_stderr("[dev] first line", Duration::from_secs(20));
    std::fs::write(project.join("seen"), "").unwrap();
    let (status, _) = run.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", run.output_text());
    assert!(
        !run.output_text().contains("ENV "),
        "no table for one environment"
    );
}

#[test]
fn inits_of_environments_planned_at_once_run_one_at_a_time() {
    let project = Project::demo();
    // An init that finds another one running fails, as two terraforms installing into
    // one plugin cache can.
    let dir = project.path().display();
    let tf = FakeTerraform::working()
        .on(
            "init",
            format!(
                r#"mkdir "{dir}/init-running" 2>/dev/null || {{ echo "Error: another init is installing into the plugin cache" >&2; exit 1; }}
sleep 0.5; rmdir "{dir}/init-running"
mkdir -p "$TF_DATA_DIR"; echo "Terraform has been successfully initialized!""#
            ),
        )
        .install(&project);
    let output = expecting(project.run_with(&tf, &["plan", "--all", "-j", "3"]), 0);
    let inits = project
        .read("calls.log")
        .lines()
        .filter(|l| l.starts_with("init"))
        .count();
    assert_eq!(inits, 3, "{}", stderr(&output));
}

#[test]
fn ctrl_c_stops_every_running_plan_and_exits_130() {
    let project = Project::demo();
    let dir = project.path().display();
    // Each plan says it started, then runs until SIGINT, which it records, like
    // terraform stopping gracefully.
    let tf = fake_with_plan(
        &project,
        &format!(
            r#"trap 'touch "{dir}/stopped-$env"; echo "Error: interrupted" >&2; exit 1' INT
touch "{dir}/running-$env"
for i in $(seq 600); do sleep 0.05; done
exit 1"#
        ),
    );
    let mut tfenv = project.command();
    tfenv
        .arg("--terraform")
        .arg(&tf)
        .args(["plan", "--all", "-j", "3"]);
    let mut run = RunningTfenv::spawn(tfenv);
    let envs = ["dev", "staging", "production"];
    wait_until("every plan runs", Duration::from_secs(30), || {
        envs.iter()
            .all(|env| project.join(&format!("running-{env}")).exists())
    });
    run.interrupt();
    for env in envs {
        assert!(
            project.join(&format!("stopped-{env}")).exists(),
            "{env}'s terraform got SIGINT\n{}",
            run.output_text()
        );
    }
    assert!(
        run.stderr().contains("tfenv: interrupted"),
        "{}",
        run.output_text()
    );
}

#[test]
fn jobs_of_zero_is_a_usage_error() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let output = expecting(project.run_with(&tf, &["plan", "--all", "-j", "0"]), 2);
    assert!(
        stderr(&output).contains("--jobs must be at least 1"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn json_of_plan_all_matches_its_snapshot() {
    let project = Project::demo();
    let tf = fake_with_plan(&project, STAGING_FAILS);
    let args = ["plan", "--all", "--detailed-exitcode", "--output", "json"];
    let output = expecting(project.run_with(&tf, &args), 1);
    Snapshots::new(&project).json("json-plan-all", &args, &output);
    // Exactly one document.
    let json = stdout_json(&output);
    assert_eq!(json["environments"].as_array().unwrap().len(), 3);
}

#[test]
fn an_environment_waiting_for_its_lock_says_so_at_once_while_the_others_finish() {
    let project = Project::demo();
    let dir = project.path().display();
    // The first plan of dev holds dev until `release` exists; later plans go through.
    let tf = fake_with_plan(
        &project,
        &format!(
            r#"if [ "$env" = dev ] && [ ! -e "{dir}/holding" ]; then
  touch "{dir}/holding"
  for i in $(seq 600); do [ -e "{dir}/release" ] && break; sleep 0.1; done
fi"#
        ),
    );
    let mut first = project.command();
    first.arg("--terraform").arg(&tf).args(["plan", "dev"]);
    let mut first = RunningTfenv::spawn(first);
    wait_until("the first plan holds dev", Duration::from_secs(20), || {
        project.join("holding").exists()
    });
    let mut all = project.command();
    all.arg("--terraform")
        .arg(&tf)
        .args(["plan", "--all", "-j", "3", "--lock-timeout", "60s"]);
    let mut all = RunningTfenv::spawn(all);
    // Said while it waits, not kept for the end of dev's block.
    all.wait_for_stderr(
        "dev: waiting for another tfenv to finish",
        Duration::from_secs(20),
    );
    std::fs::write(project.join("release"), "").unwrap();
    let (status, _) = first.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{}", first.output_text());
    let (status, _) = all.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", all.output_text());
    let text = all.output_text();
    for env in ["dev", "staging", "production"] {
        assert!(text.contains(&format!("Planned `{env}`")), "{text}");
    }
}

#[test]
fn a_job_summary_of_several_environments_is_one_table_with_a_row_each() {
    let project = Project::demo();
    let tf = fake_with_plan(&project, STAGING_FAILS);
    let output = project
        .tfenv_with(&tf)
        .args(["plan", "--all", "--summary", "summary.md"])
        .env("GITHUB_STEP_SUMMARY", project.join("step.md"))
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    expecting(output, 1);
    for file in ["summary.md", "step.md"] {
        let markdown = project.read(file);
        assert_eq!(markdown.matches("### tfenv plan").count(), 1, "{markdown}");
        let rows: Vec<&str> = markdown
            .lines()
            .filter(|l| {
                l.starts_with("| dev")
                    || l.starts_with("| staging")
                    || l.starts_with("| production")
            })
            .collect();
        assert_eq!(rows.len(), 3, "{markdown}");
        assert!(
            rows[0].starts_with("| dev") && rows[0].contains("**planned**"),
            "{markdown}"
        );
        assert!(
            rows[1].starts_with("| staging") && rows[1].contains("**failed**"),
            "{markdown}"
        );
        assert!(rows[2].starts_with("| production"), "{markdown}");
    }
}

/// Holds `env`'s environment lock (as another tfenv would) until the child is killed.
fn hold_env_lock(project: &Project, env: &str) -> std::process::Child {
    let lock = project.join(&format!("state/{env}/.tfenv.lock"));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "60"])
        .spawn()
        .expect("flock (util-linux) is needed for this test");
    std::thread::sleep(Duration::from_millis(300));
    holder
}

#[test]
fn a_refusal_among_several_plans_exits_5_and_a_lock_4_never_1() {
    let project = Project::demo();
    let toml = project.read("tfenv.toml");
    project.write(
        "tfenv.toml",
        &format!("{toml}\n[policy]\ncommand = [\"./policy.sh\", \"{{plan_json}}\"]\n"),
    );
    // The plan's JSON lies in state/<env>/: the policy refuses staging's only.
    project.script(
        "policy.sh",
        "case \"$1\" in *staging*) echo 'FAIL - no'; exit 1;; esac",
    );
    let tf = FakeTerraform::working().install(&project);
    let mut holder = hold_env_lock(&project, "dev");
    let refused = project
        .tfenv_with(&tf)
        .args(["plan", "--all", "--output", "json"])
        .output()
        .unwrap();
    let table = project
        .tfenv_with(&tf)
        .args(["plan", "dev", "production", "--detailed-exitcode"])
        .output()
        .unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    // Refused wins over locked; locked over changes.
    let json = stdout_json(&expecting(refused, 5));
    assert_eq!(entry(&json, "dev")["result"], "locked", "{json:#}");
    assert_eq!(entry(&json, "staging")["result"], "refused", "{json:#}");
    assert_eq!(entry(&json, "staging")["plan"]["add"], 1, "{json:#}");
    assert_eq!(entry(&json, "production")["result"], "planned", "{json:#}");
    let out = stdout(&expecting(table, 4));
    let row = |env: &str| {
        out.lines()
            .find(|l| l.starts_with(env) && l.contains("  "))
            .unwrap_or_else(|| panic!("no table row for {env}:\n{out}"))
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_string()
    };
    assert_eq!(row("dev"), "locked", "{out}");
    assert_eq!(row("production"), "planned", "{out}");
}
