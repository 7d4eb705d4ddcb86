//! `tfenv status` as a health check (DESIGN.md §11): each problem made to happen for
//! real, then shown to clear after its fix — and the command that fixes it, in `fix`.

use std::time::Duration;

use crate::support::fake::{FakeTerraform, WRITE_PLAN};
use crate::support::{Project, stdout, stdout_json};

/// An `apply` body that writes the fake's state where dev's local backend keeps it, as
/// terraform would, then runs `then`.
fn apply_writing_state(project: &Project, then: &str) -> String {
    format!(
        r#"echo "$FAKE_STATE" > '{}'; {then}"#,
        project.join("state/dev/terraform.tfstate").display()
    )
}

/// `tfenv --terraform <tf> status <env> --output json`: exit code and document.
fn status(project: &Project, tf: &std::path::Path, env: &str) -> (Option<i32>, serde_json::Value) {
    let output = project
        .tfenv_with(tf)
        .args(["status", env, "--output", "json"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    (output.status.code(), stdout_json(&output))
}

/// The problems of the first environment of a status document, by code.
fn problem<'a>(json: &'a serde_json::Value, code: &str) -> Option<&'a serde_json::Value> {
    json["environments"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == code)
}

fn codes(json: &serde_json::Value) -> Vec<String> {
    json["environments"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_deploy_that_failed_after_apply_started_is_a_problem_until_a_deploy_succeeds() {
    let project = Project::demo();
    let fail = project.join("fail-apply");
    let tf = FakeTerraform::working()
        .on(
            "apply",
            apply_writing_state(
                &project,
                &format!(
                    r#"[ -e '{}' ] && {{ echo "Error: creating thing: boom" >&2; exit 1; }}; true"#,
                    fail.display()
                ),
            ),
        )
        .install(&project);
    let deploy = || {
        project
            .tfenv_with(&tf)
            .args(["deploy", "dev", "--yes"])
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    };
    assert!(deploy().status.success());
    let (code, json) = status(&project, &tf, "dev");
    assert_eq!(code, Some(0), "{json}");

    project.write("fail-apply", "");
    assert_eq!(deploy().status.code(), Some(1));
    let record = project.last_history("dev");
    assert_eq!(
        (&record["result"], &record["reached_apply"]),
        (&"failed".into(), &true.into())
    );
    let (code, json) = status(&project, &tf, "dev");
    assert_eq!(code, Some(6), "{json}");
    let failed = problem(&json, "last-deploy-failed").unwrap_or_else(|| panic!("{json}"));
    assert_eq!(failed["fix"], "tfenv plan dev");
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains("the last `tfenv deploy`") && message.contains("failed"),
        "{message}"
    );
    // The human table says so too, with the fix.
    let human = project
        .tfenv_with(&tf)
        .args(["status", "dev"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(human.status.code(), Some(6));
    let text = stdout(&human);
    assert!(
        text.contains("1 problem(s)") && text.contains("    fix: tfenv plan dev"),
        "{text}"
    );

    std::fs::remove_file(&fail).unwrap();
    assert!(deploy().status.success());
    let (code, json) = status(&project, &tf, "dev");
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(codes(&json), Vec::<String>::new());
}

#[test]
fn a_deploy_that_failed_before_apply_or_was_refused_is_not_a_failed_deploy() {
    let project = Project::demo();
    let fail = project.join("fail-plan");
    let tf = FakeTerraform::working()
        .on(
            "plan",
            format!(
                r#"[ -e '{}' ] && {{ echo "Error: plan failed" >&2; exit 1; }}
        {WRITE_PLAN}"#,
                fail.display()
            ),
        )
        .on("apply", apply_writing_state(&project, "true"))
        .install(&project);
    let deploy = |args: &[&str]| {
        project
            .tfenv_with(&tf)
            .args(["deploy", "dev"])
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    };
    assert!(deploy(&["--yes"]).status.success());
    // Refused: no terminal and no --yes.
    assert_eq!(deploy(&[]).status.code(), Some(5));
    project.write("fail-plan", "");
    assert_eq!(deploy(&["--yes"]).status.code(), Some(1));
    let (code, json) = status(&project, &tf, "dev");
    assert_eq!(code, Some(0), "{json}");
}

/// A drift report as `tfenv drift` writes it (src/artifacts/drift.rs).
fn drift_report(project: &Project, env: &str, result: &str, hours_ago: i64) {
    let checked = chrono::Utc::now() - chrono::Duration::hours(hours_ago);
    let drifted = if result == "drifted" {
        serde_json::json!([
            {"address": "tfenvtest_file.a", "action": "update", "attributes": ["content"], "severity": "high"},
            {"address": "tfenvtest_file.b", "action": "update", "attributes": ["content"], "severity": "high"},
            {"address": "tfenvtest_file.c", "action": "update", "attributes": ["content"], "severity": "high"}
        ])
    } else {
        serde_json::json!([])
    };
    let report = serde_json::json!({
        "environment": env, "tier": "production", "checked": checked.to_rfc3339(),
        "seconds": 1.5, "result": result,
        "severity": if result == "drifted" { serde_json::json!("high") } else { serde_json::Value::Null },
        "drifted": drifted, "pending": [],
    });
    let mut report = report;
    if result == "failed" {
        report["error"] =
            "`terraform plan` for `dev` exited with code 1:\n  Error: bad var file".into();
    }
    project.write(&format!("state/{env}/drift.json"), &report.to_string());
}

#[test]
fn drift_found_by_the_last_check_is_a_problem_and_a_drift_column_until_a_check_finds_none() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on("apply", apply_writing_state(&project, "true"))
        .install(&project);
    assert!(
        project
            .tfenv_with(&tf)
            .args(["deploy", "dev", "--yes"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let (code, json) = status(&project, &tf, "dev");
    assert_eq!(
        (code, &json["environments"][0]["drift"]),
        (Some(0), &serde_json::Value::Null)
    );
    let table = |project: &Project| {
        let output = project
            .tfenv_with(&tf)
            .args(["status", "dev"])
            .output()
            .unwrap();
        stdout(&output)
    };
    assert!(
        table(&project).contains(" unchecked "),
        "{}",
        table(&project)
    );

    drift_report(&project, "dev", "drifted", 26);
    let (code, json) = status(&project, &tf, "dev");
    assert_eq!(code, Some(6), "{json}");
    let drift = &json["environments"][0]["drift"];
    assert_eq!(
        (
            &drift["result"],
            &drift["severity"],
            &drift["drifted"],
            &drift["pending"]
        ),
        (&"drifted".into(), &"high".into(), &3.into(), &0.into()),
        "{drift}"
    );
    assert!(
        drift["age_seconds"].as_i64().unwrap() >= 26 * 3600,
        "{drift}"
    );
    let drifted = problem(&json, "drifted").unwrap_or_else(|| panic!("{json}"));
    assert_eq!(drifted["fix"], "tfenv drift dev");
    // The deploy above ran after this check: it may have put the drift back.
    let message = drifted["message"].as_str().unwrap();
    assert!(
        message.contains("tfenvtest_file.a")
            && message.contains("a `tfenv deploy` ran since this check")
            && message.contains("run `tfenv drift dev` to check again")
            && !message.contains("tfenv plan dev"),
        "{message}"
    );
    assert!(
        table(&project).contains("3 drifted (high) 1d ago"),
        "{}",
        table(&project)
    );
    // A check newer than the last deploy: plan shows what a deploy would put back.
    drift_report(&project, "dev", "drifted", 0);
    let (code, json) = status(&project, &tf, "dev");
    assert_eq!(code, Some(6), "{json}");
    let message = problem(&json, "drifted").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("`tfenv plan dev` shows what a deploy would put back")
            && !message.contains("ran since"),
        "{message}"
    );

    // A failed check knows no counts, and is a problem of its own.
    drift_report(&project, "dev", "failed", 1);
    let (code, json) = status(&project, &tf, "dev");
    assert_eq!(code, Some(6), "{json}");
    let drift = &json["environments"][0]["drift"];
    assert_eq!(
        (&drift["result"], &drift["drifted"], &drift["pending"]),
        (
            &"failed".into(),
            &serde_json::Value::Null,
            &serde_json::Value::Null
        ),
        "{drift}"
    );
    assert_eq!(codes(&json), ["drift-check-failed"], "{json}");
    let failed = problem(&json, "drift-check-failed").unwrap();
    assert_eq!(failed["fix"], "tfenv drift dev");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("Error: bad var file"),
        "{failed}"
    );
    assert!(
        table(&project).contains("check failed 1h ago"),
        "{}",
        table(&project)
    );

    drift_report(&project, "dev", "in-sync", 2);
    let (code, json) = status(&project, &tf, "dev");
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["environments"][0]["drift"]["result"], "in-sync");
    assert!(
        table(&project).contains("in sync 2h ago"),
        "{}",
        table(&project)
    );
}

#[test]
fn a_drift_report_that_cannot_be_read_is_a_problem_not_a_crash() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    project.write("state/dev/drift.json", "{\"not\": \"a report\"");
    let (code, json) = status(&project, &tf, "dev");
    assert_eq!(code, Some(6), "{json}");
    let unreadable = problem(&json, "drift-unreadable").unwrap_or_else(|| panic!("{json}"));
    assert_eq!(unreadable["fix"], "tfenv drift dev");
    assert!(
        unreadable["message"]
            .as_str()
            .unwrap()
            .contains("drift.json"),
        "{unreadable}"
    );
    assert_eq!(json["environments"][0]["drift"], serde_json::Value::Null);
}

#[test]
fn a_production_backup_older_than_backup_max_age_is_stale_until_tfenv_backup() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let run = |args: &[&str]| {
        project
            .tfenv_with(&tf)
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    };
    assert!(run(&["init", "production"]).status.success());
    project.write(
        "state/production/terraform.tfstate",
        r#"{"version":4,"terraform_version":"1.11.4","serial":3,"lineage":"abc","outputs":{},"resources":[]}"#,
    );
    // A state, and no backup of it at all (production: 7 days by default).
    let (code, json) = status(&project, &tf, "production");
    assert_eq!(code, Some(6), "{json}");
    let stale = problem(&json, "backup-stale").unwrap_or_else(|| panic!("{json}"));
    assert_eq!(stale["fix"], "tfenv backup production");
    assert!(
        stale["message"]
            .as_str()
            .unwrap()
            .ends_with("no backup of the state, and backup_max_age is `7d`"),
        "{stale}"
    );

    let backup = run(&["backup", "production"]);
    assert!(
        backup.status.success(),
        "{}",
        crate::support::output_text(&backup)
    );
    let (code, json) = status(&project, &tf, "production");
    assert_eq!(code, Some(0), "{json}");

    // The same backup, taken 30 days ago by its manifest.
    let manifest = project.join("state/production/backups/MANIFEST.jsonl");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    let old = chrono::Utc::now() - chrono::Duration::days(30);
    line["created"] = old.to_rfc3339().into();
    std::fs::write(&manifest, format!("{line}\n")).unwrap();
    let (code, json) = status(&project, &tf, "production");
    assert_eq!(code, Some(6), "{json}");
    let stale = problem(&json, "backup-stale").unwrap_or_else(|| panic!("{json}"));
    assert!(
        stale["message"].as_str().unwrap().contains("30d old"),
        "{stale}"
    );

    // An age just past a limit of minutes reads to the second, never as the limit.
    line["created"] = (chrono::Utc::now() - chrono::Duration::seconds(94))
        .to_rfc3339()
        .into();
    std::fs::write(&manifest, format!("{line}\n")).unwrap();
    let config = project.read("tfenv.toml").replace(
        "backup_keep = 50\n",
        "backup_keep = 50\nbackup_max_age = \"1m\"\n",
    );
    project.write("tfenv.toml", &config);
    let (_, json) = status(&project, &tf, "production");
    let message = problem(&json, "backup-stale").unwrap_or_else(|| panic!("{json}"))["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("is 1m 3") && message.contains("s old, older than backup_max_age `1m`"),
        "{message}"
    );
    let config = config.replace("backup_max_age = \"1m\"\n", "");
    project.write("tfenv.toml", &config);
    line["created"] = old.to_rfc3339().into();
    std::fs::write(&manifest, format!("{line}\n")).unwrap();

    // Development has no limit unless tfenv.toml sets one; production's can be off.
    let config = project.read("tfenv.toml").replace(
        "backup_keep = 50\n",
        "backup_keep = 50\nbackup_max_age = \"off\"\n",
    );
    project.write("tfenv.toml", &config);
    assert_eq!(status(&project, &tf, "production").0, Some(0));
    let config = config.replace("backup_max_age = \"off\"\n", "backup_max_age = \"60d\"\n");
    project.write("tfenv.toml", &config);
    assert_eq!(status(&project, &tf, "production").0, Some(0));
    let config = config.replace("backup_max_age = \"60d\"\n", "");
    project.write("tfenv.toml", &config);

    assert!(run(&["backup", "production"]).status.success());
    let (code, json) = status(&project, &tf, "production");
    assert_eq!(code, Some(0), "{json}");
}

#[test]
fn a_backup_max_age_that_is_not_a_duration_names_the_key_and_the_fix() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let config = project.read("tfenv.toml").replace(
        "[environments.dev]\n",
        "[environments.dev]\nbackup_max_age = \"weekly\"\n",
    );
    project.write("tfenv.toml", &config);
    let output = project.tfenv_with(&tf).args(["status"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = crate::support::stderr(&output);
    assert!(
        text.contains("[environments.dev] backup_max_age `weekly` is not a duration")
            && text.contains("\"off\""),
        "{text}"
    );
}

#[test]
fn a_restore_that_failed_while_pushing_the_state_is_a_problem_until_a_restore_succeeds() {
    let project = Project::demo();
    let fail = project.join("fail-push");
    let tf = FakeTerraform::working()
        .on(
            "state",
            format!(
                r#"case "$2" in
    pull) if [ -f "$FAKE_DIR/pushed.tfstate" ]; then cat "$FAKE_DIR/pushed.tfstate"; else echo "$FAKE_STATE"; fi ;;
    push) [ -e '{}' ] && {{ echo "Error: writing state: connection reset" >&2; exit 1; }}
          for a in "$@"; do f="$a"; done; cp "$f" "$FAKE_DIR/pushed.tfstate"; cp "$f" '{}' ;;
  esac"#,
                fail.display(),
                // Where dev's local backend keeps the state, which status reads itself.
                project.join("state/dev/terraform.tfstate").display()
            ),
        )
        .install(&project);
    let run = |args: &[&str]| {
        project
            .tfenv_with(&tf)
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    };
    assert!(run(&["backup", "dev"]).status.success());

    project.write("fail-push", "");
    let failed = run(&["restore", "dev", "latest", "--yes"]);
    assert_eq!(failed.status.code(), Some(1), "{}", stdout(&failed));
    let record = project.last_history("dev");
    assert_eq!(
        (
            &record["command"],
            &record["result"],
            &record["reached_apply"]
        ),
        (&"restore".into(), &"failed".into(), &true.into())
    );
    let (code, json) = status(&project, &tf, "dev");
    assert_eq!(code, Some(6), "{json}");
    let problem = problem(&json, "last-deploy-failed").unwrap_or_else(|| panic!("{json}"));
    let message = problem["message"].as_str().unwrap();
    assert!(
        message.contains("the last `tfenv restore`")
            && message.contains("after pushing the state had started"),
        "{message}"
    );

    std::fs::remove_file(&fail).unwrap();
    let restored = run(&["restore", "dev", "latest", "--yes"]);
    assert!(restored.status.success(), "{}", stdout(&restored));
    let (code, json) = status(&project, &tf, "dev");
    assert_eq!(codes(&json), Vec::<String>::new(), "{json}");
    assert_eq!(code, Some(0));
    assert_eq!(
        json["environments"][0]["last_deploy"]["command"], "restore",
        "{json}"
    );
}
