//! `tfenv drift`: faults the real terraform cannot make on demand — a plan that fails in
//! one environment, garbage from `show -json`, a check that hangs, Ctrl-C — and what the
//! command passes to terraform (`-lock=false`, never a prompt). A fake terraform's
//! `show -json` prints a canned plan per environment (`show-<env>.json` in the project).

use std::time::Duration;

use serde_json::Value;

use crate::support::fake::{FakeTerraform, WRITE_PLAN};
use crate::support::running::RunningTfenv;
use crate::support::{Project, expecting, output_text, stderr, stdout, stdout_json, wait_until};

/// A sensitive value in the canned plans: it must never leave tfenv.
const SECRET: &str = "s3cr3t-value-never-shown";

/// staging: a file edited outside Terraform (`content` and the sensitive `secret`), and
/// the plan to set it back.
fn edited() -> String {
    format!(
        r#"{{"format_version":"1.2","resource_drift":[{{"address":"tfenvtest_file.config","mode":"managed","change":{{"actions":["update"],"before":{{"id":"a","content":"v1","secret":"old-{SECRET}"}},"after":{{"id":"a","content":"edited-outside","secret":"{SECRET}"}},"after_unknown":{{}},"before_sensitive":{{"secret":true}},"after_sensitive":{{"secret":true}}}}}}],"resource_changes":[{{"address":"tfenvtest_file.config","mode":"managed","change":{{"actions":["update"],"before":{{"id":"a","content":"edited-outside","secret":"{SECRET}"}},"after":{{"id":"a","content":"v1","secret":"old-{SECRET}"}},"after_unknown":{{}}}}}}]}}"#
    )
}

/// production: a file deleted outside Terraform, and the plan to create it again.
const DELETED: &str = r#"{"format_version":"1.2","resource_drift":[{"address":"tfenvtest_file.config","mode":"managed","change":{"actions":["delete"],"before":{"id":"a","content":"v1"},"after":null,"after_unknown":{}}}],"resource_changes":[{"address":"tfenvtest_file.config","mode":"managed","change":{"actions":["create"],"before":null,"after":{"content":"v1"},"after_unknown":{"id":true}}}]}"#;

/// dev: no drift, one resource in the code not yet applied.
const PENDING: &str = r#"{"format_version":"1.2","resource_changes":[{"address":"tfenvtest_file.new","mode":"managed","change":{"actions":["create"],"before":null,"after":{"content":"n"},"after_unknown":{"id":true}}}]}"#;

/// The demo with `show-<env>.json` per environment and a fake terraform whose `plan`
/// runs `plan_body` first (`$env` is the environment) and whose `show` prints that file.
fn project_with(shown: &[(&str, &str)], plan_body: &str) -> (Project, std::path::PathBuf) {
    let project = Project::demo();
    for (env, json) in shown {
        project.write(&format!("show-{env}.json"), json);
    }
    let tf = FakeTerraform::working()
        .on(
            "plan",
            format!("env=\"${{TF_DATA_DIR##*/}}\"\n{plan_body}\n{WRITE_PLAN}"),
        )
        .on(
            "show",
            r#"env="${TF_DATA_DIR##*/}"; cat "$FAKE_DIR/show-$env.json""#,
        )
        .install(&project);
    (project, tf)
}

fn all_three() -> (Project, std::path::PathBuf) {
    let edited = edited();
    project_with(
        &[
            ("dev", PENDING),
            ("staging", &edited),
            ("production", DELETED),
        ],
        "",
    )
}

fn entry<'a>(json: &'a Value, env: &str) -> &'a Value {
    json["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == env)
        .unwrap_or_else(|| panic!("no entry for {env} in {json:#}"))
}

/// Leftover temporary plans (`state/<env>/.drift-*`) of any environment.
fn temporary_plans(project: &Project) -> Vec<String> {
    let mut found = Vec::new();
    for env in ["dev", "staging", "production"] {
        if let Ok(dir) = std::fs::read_dir(project.join(&format!("state/{env}"))) {
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.starts_with(".drift-") {
                    found.push(format!("{env}/{name}"));
                }
            }
        }
    }
    found
}

#[test]
fn drift_is_reported_worst_first_with_attribute_names_and_exits_3() {
    let (project, tf) = all_three();
    let summary = project.join("summary.md");
    let output = expecting(
        project.run_with(
            &tf,
            &["drift", "--all", "--summary", summary.to_str().unwrap()],
        ),
        3,
    );
    let out = stdout(&output);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip_while(|l| !l.starts_with("ENV "))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        ["production", "staging", "dev"],
        "worst severity first:\n{out}"
    );
    assert_eq!(rows[0][2..6], ["drifted", "critical", "1", "0"], "{out}");
    assert_eq!(rows[1][2..6], ["drifted", "medium", "1", "0"], "{out}");
    assert_eq!(rows[2][2..5], ["in", "sync", "-"], "{out}");
    assert!(
        out.contains("staging: update tfenvtest_file.config (content, secret) [medium]"),
        "{out}"
    );
    assert!(
        out.contains("production: delete tfenvtest_file.config [critical]"),
        "{out}"
    );
    assert!(out.contains("dev: create tfenvtest_file.new"), "{out}");

    // drift.json and the history record of each environment.
    let report: Value = serde_json::from_str(&project.read("state/staging/drift.json")).unwrap();
    assert_eq!(report["result"], "drifted");
    assert_eq!(report["severity"], "medium");
    assert_eq!(
        report["drifted"][0]["attributes"],
        serde_json::json!(["content", "secret"])
    );
    let mode = std::fs::metadata(project.join("state/staging/drift.json"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let record = project.last_history("production");
    assert_eq!(record["command"], "drift");
    assert_eq!(record["result"], "drifted");
    assert_eq!(record["exit_code"], 3);
    assert_eq!(record["drift"]["severity"], "critical");
    assert_eq!(project.last_history("dev")["result"], "in-sync");
    assert_eq!(project.last_history("dev")["drift"]["pending"], 1);

    let summary = project.read("summary.md");
    assert!(
        summary.contains("### tfenv drift: 2 environment(s) drifted"),
        "{summary}"
    );
    assert!(
        summary.contains("| production | production | **drifted** | critical | 1 | 0 |"),
        "{summary}"
    );
    assert!(
        summary.contains("drifted: update <code>tfenvtest_file.config</code> (content, secret)"),
        "{summary}"
    );

    // No value of the plans anywhere: not the secret, not a plain attribute's value.
    let json = expecting(
        project.run_with(&tf, &["drift", "--all", "--output", "json"]),
        3,
    );
    let mut everywhere = vec![output_text(&output), output_text(&json), summary];
    for env in ["dev", "staging", "production"] {
        everywhere.push(project.read(&format!("state/{env}/drift.json")));
        everywhere.push(project.read(&format!("state/{env}/history.jsonl")));
    }
    for text in everywhere {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("edited-outside"), "{text}");
    }
    let doc = stdout_json(&json);
    assert_eq!(doc["command"], "drift");
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["drifted"], 2);
    assert_eq!(doc["in_sync"], 1);
    assert_eq!(doc["severity"], "critical");
    assert_eq!(
        entry(&doc, "dev")["pending"][0]["actions"],
        serde_json::json!(["create"])
    );
    assert_eq!(entry(&doc, "production")["drifted"][0]["action"], "delete");
    assert!(
        temporary_plans(&project).is_empty(),
        "{:?}",
        temporary_plans(&project)
    );
}

#[test]
fn pending_code_alone_is_not_drift_and_exits_0() {
    let (project, tf) = project_with(&[("dev", PENDING)], "");
    let output = expecting(project.run_with(&tf, &["drift", "dev"]), 0);
    assert!(
        stdout(&output).contains("`dev` is in sync with its state; 1 pending change(s)"),
        "{}",
        output_text(&output)
    );
}

#[test]
fn a_failing_check_exits_1_is_recorded_and_the_other_environments_are_still_reported() {
    let edited = edited();
    let (project, tf) = project_with(
        &[
            ("dev", PENDING),
            ("staging", &edited),
            ("production", DELETED),
        ],
        r#"if [ "$env" = staging ]; then echo "Error: Invalid expression in staging.tfvars" >&2; exit 1; fi"#,
    );
    let output = expecting(project.run_with(&tf, &["drift", "--all"]), 1);
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(
        err.contains("error: staging: `terraform plan` for `staging` exited with code 1"),
        "{err}"
    );
    assert!(out.contains("Drift in `production`"), "{out}");
    assert!(out.contains("`dev` is in sync"), "{out}");
    assert!(out.contains("failed:\n  staging: "), "{out}");

    let output = expecting(
        project.run_with(&tf, &["drift", "--all", "--output", "json"]),
        1,
    );
    let doc = stdout_json(&output);
    assert_eq!(doc["exit_code"], 1, "failure wins over drift");
    assert_eq!(doc["failed"], 1);
    assert_eq!(entry(&doc, "production")["result"], "drifted");
    assert_eq!(entry(&doc, "staging")["result"], "failed");
    let report: Value = serde_json::from_str(&project.read("state/staging/drift.json")).unwrap();
    assert_eq!(report["result"], "failed");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("Invalid expression"),
        "{report}"
    );
    let record = project.last_history("staging");
    assert_eq!(
        (record["command"].as_str(), record["result"].as_str()),
        (Some("drift"), Some("failed"))
    );
    assert_eq!(record["exit_code"], 1);
}

#[test]
fn garbage_from_show_fails_the_check_without_showing_it() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on("show", format!("echo 'not a plan {SECRET}'"))
        .install(&project);
    let output = expecting(project.run_with(&tf, &["drift", "dev"]), 1);
    let text = output_text(&output);
    assert!(
        text.contains(
            "reading the drift check's plan of `dev`: `terraform show -json` did not print a plan"
        ),
        "{text}"
    );
    assert!(!text.contains(SECRET), "{text}");
    assert!(!project.read("state/dev/drift.json").contains(SECRET));
    assert!(temporary_plans(&project).is_empty());
}

#[test]
fn drift_plans_without_the_state_lock_or_input_and_removes_its_temporary_plan() {
    let (project, tf) = project_with(&[("production", DELETED)], "");
    expecting(project.run_with(&tf, &["drift", "prod"]), 3);
    let calls = project.read("calls.log");
    let plan = calls
        .lines()
        .find(|l| l.starts_with("plan "))
        .unwrap_or_else(|| panic!("no plan call:\n{calls}"));
    for flag in ["-lock=false", "-detailed-exitcode", "-input=false"] {
        assert!(plan.split(' ').any(|a| a == flag), "{flag} missing: {plan}");
    }
    assert!(
        plan.contains("-var-file=") && plan.contains("production.tfvars"),
        "{plan}"
    );
    let out = plan
        .split(' ')
        .find_map(|a| a.strip_prefix("-out="))
        .unwrap();
    assert!(
        out.contains("/state/production/.drift-"),
        "the plan is private, under state/<env>/: {out}"
    );
    assert!(!std::path::Path::new(out).exists(), "{out} was left behind");
    // Nothing that takes or writes state: no apply, no push, no refresh, no lock.
    for forbidden in ["apply", "state push", "refresh", "force-unlock"] {
        assert!(
            !calls.lines().any(|l| l.starts_with(forbidden)),
            "`{forbidden}` ran:\n{calls}"
        );
    }
}

#[test]
fn drift_never_prompts_even_on_a_terminal() {
    let (project, tf) = project_with(&[("dev", PENDING)], "");
    // A git repository that does not ignore state/: an init would offer to add it.
    project.git(&["init", "-q"]);
    let mut tfenv = project.command_via(&["setsid", "--ctty"]);
    tfenv.arg("--terraform").arg(&tf).args(["drift", "dev"]);
    let mut run = RunningTfenv::spawn_in_terminal(tfenv);
    let (status, _) = run.wait_exit(Duration::from_secs(60));
    let text = run.output_text();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(!text.contains("[y/N]"), "{text}");
    assert!(
        text.contains("git does not ignore"),
        "said as a warning: {text}"
    );
    assert!(!project.join(".gitignore").exists());
}

#[test]
fn ctrl_c_during_a_check_exits_130_and_leaves_no_temporary_plan() {
    let (project, tf) = project_with(
        &[
            ("dev", PENDING),
            ("staging", PENDING),
            ("production", PENDING),
        ],
        "for a in \"$@\"; do case \"$a\" in -out=*) echo plan > \"${a#-out=}\" ;; esac; done\ntouch \"$FAKE_DIR/planning-$env\"\ntrap 'exit 1' INT; sleep 30 & wait",
    );
    let mut tfenv = project.command();
    tfenv
        .arg("--terraform")
        .arg(&tf)
        .args(["drift", "--all", "-j", "3"]);
    let mut run = RunningTfenv::spawn(tfenv);
    wait_until("the plans start", Duration::from_secs(30), || {
        ["dev", "staging", "production"]
            .iter()
            .all(|env| project.join(&format!("planning-{env}")).exists())
    });
    assert_eq!(temporary_plans(&project).len(), 3);
    run.interrupt();
    assert!(
        temporary_plans(&project).is_empty(),
        "{:?}",
        temporary_plans(&project)
    );
    // An interrupted check knows nothing: no drift.json, no record.
    assert!(!project.join("state/dev/drift.json").exists());
    assert!(!project.join("state/dev/history.jsonl").exists());
}

#[test]
fn a_check_that_hangs_is_stopped_at_its_timeout_and_fails() {
    let (project, tf) = project_with(
        &[("dev", PENDING), ("staging", PENDING)],
        r#"if [ "$env" = staging ]; then sleep 60; fi"#,
    );
    let started = std::time::Instant::now();
    let output = expecting(
        project.run_with(&tf, &["drift", "dev", "staging", "--timeout", "3s"]),
        1,
    );
    assert!(started.elapsed() < Duration::from_secs(40));
    let text = output_text(&output);
    assert!(
        text.contains("the drift check of `staging` did not finish within 3s (--timeout)"),
        "{text}"
    );
    assert!(text.contains("`dev` is in sync"), "{text}");
    assert!(temporary_plans(&project).is_empty(), "{text}");
}

#[test]
fn on_drift_runs_once_per_checked_environment_with_its_report_whatever_the_result() {
    let edited = edited();
    // dev in sync (pending code only), staging drifted, production's check fails.
    let (project, tf) = project_with(
        &[
            ("dev", PENDING),
            ("staging", &edited),
            ("production", DELETED),
        ],
        r#"if [ "$env" = production ]; then echo "Error: Invalid expression in production.tfvars" >&2; exit 1; fi"#,
    );
    let toml = project.read("tfenv.toml");
    project.write(
        "tfenv.toml",
        &format!("{toml}\n[hooks]\non_drift = [\"./hooks/record.sh\"]\n"),
    );
    // Each call appends its event, environment and stdin as one line.
    project.script(
        "hooks/record.sh",
        r#"mkdir -p received
printf '%s %s %s\n' "$TFENV_EVENT" "$TFENV_ENVIRONMENT" "$(tr -d '\n')" >> received/calls"#,
    );
    let output = project
        .tfenv_with(&tf)
        .args(["drift", "--all", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    stdout_json(&output);
    let calls = project.read_or_empty("received/calls");
    let mut seen: Vec<(String, String)> = calls
        .lines()
        .map(|line| {
            let mut words = line.splitn(3, ' ');
            assert_eq!(words.next(), Some("drift"), "{line}");
            let env = words.next().unwrap();
            let report: Value = serde_json::from_str(words.next().unwrap()).unwrap();
            assert_eq!(report["environment"], env);
            (
                env.to_string(),
                report["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let seen: Vec<(&str, &str)> = seen.iter().map(|(e, r)| (e.as_str(), r.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("dev", "in-sync"),
            ("production", "failed"),
            ("staging", "drifted")
        ],
        "{calls}"
    );
    assert!(!calls.contains(SECRET), "the hook got a secret: {calls}");
}

#[test]
fn a_failed_check_keeps_the_drift_the_last_check_found_and_status_stays_unhealthy() {
    let edited = edited();
    // staging's check fails while the file `broken` is in the project.
    let (project, tf) = project_with(
        &[("staging", &edited)],
        r#"if [ -f "$FAKE_DIR/broken" ]; then echo "Error: Invalid expression in staging.tfvars" >&2; exit 1; fi"#,
    );
    let status = || {
        let output = project
            .tfenv_with(&tf)
            .args(["status", "staging", "--output", "json"])
            .output()
            .unwrap();
        (output.status.code(), stdout_json(&output))
    };
    let problems = |json: &Value| -> Vec<(String, String, String)> {
        json["environments"][0]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["code"].as_str().unwrap().to_string(),
                    p["message"].as_str().unwrap().to_string(),
                    p["fix"].as_str().unwrap().to_string(),
                )
            })
            .filter(|(code, _, _)| code.starts_with("drift"))
            .collect()
    };
    expecting(project.run_with(&tf, &["drift", "staging"]), 3);
    let (code, json) = status();
    assert_eq!(code, Some(6), "{json}");
    assert_eq!(problems(&json).len(), 1, "{json}");

    // The next two checks fail: the drift is still known, and the failure is a problem.
    project.write("broken", "");
    for _ in 0..2 {
        expecting(project.run_with(&tf, &["drift", "staging"]), 1);
        let report: Value =
            serde_json::from_str(&project.read("state/staging/drift.json")).unwrap();
        assert_eq!(report["result"], "failed", "{report}");
        let last = &report["last_completed"];
        assert_eq!(
            (&last["result"], &last["severity"], &last["pending"]),
            (&"drifted".into(), &"medium".into(), &0.into()),
            "{report}"
        );
        assert_eq!(last["drifted"][0]["address"], "tfenvtest_file.config");
        assert!(last["checked"].is_string(), "{report}");

        let (code, json) = status();
        assert_eq!(code, Some(6), "{json}");
        let found = problems(&json);
        let codes: Vec<&str> = found.iter().map(|(c, _, _)| c.as_str()).collect();
        assert_eq!(codes, ["drift-check-failed", "drifted"], "{json}");
        let (_, failed, fix) = &found[0];
        assert!(failed.contains("Invalid expression"), "{failed}");
        assert_eq!(fix, "tfenv drift staging");
        let (_, drifted, _) = &found[1];
        assert!(
            drifted.contains("tfenvtest_file.config") && drifted.contains("the newest check"),
            "{drifted}"
        );
        let drift = &json["environments"][0]["drift"];
        assert_eq!(drift["last_completed"]["result"], "drifted", "{drift}");
        assert_eq!(drift["drifted"], Value::Null, "{drift}");
        let table = stdout(&project.run_with(&tf, &["status", "staging"]));
        assert!(
            table.contains("check failed 0s ago; 1 drifted (medium)"),
            "{table}"
        );
    }

    // Fixed and checked again: in sync, healthy as far as drift goes.
    std::fs::remove_file(project.join("broken")).unwrap();
    project.write("show-staging.json", PENDING);
    expecting(project.run_with(&tf, &["drift", "staging"]), 0);
    let (_, json) = status();
    assert!(problems(&json).is_empty(), "{json}");
}

#[test]
fn a_temporary_folder_left_by_a_killed_check_is_removed_by_the_next_one_but_not_a_running_ones() {
    let (project, tf) = project_with(&[("dev", PENDING)], "");
    // What `kill -9` of tfenv during a check leaves: its folder, its plan, its lock file
    // that nobody holds any more.
    project.write("state/dev/.drift-killed/drift.tfplan", "plan");
    project.write("state/dev/.drift-killed/held", "");
    // A check running in another tfenv holds its lock.
    project.write("state/dev/.drift-running/held", "");
    let held = std::fs::File::open(project.join("state/dev/.drift-running/held")).unwrap();
    held.lock().unwrap();
    let output = project
        .tfenv_with(&tf)
        .args(["drift", "dev"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!project.join("state/dev/.drift-killed").exists());
    assert!(project.join("state/dev/.drift-running/held").exists());
    assert_eq!(temporary_plans(&project), ["dev/.drift-running"]);
}
