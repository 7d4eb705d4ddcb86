//! tfenv's own files under state/<env>/ when they are damaged or not what they seem:
//! non-UTF-8 lines in MANIFEST.jsonl and history.jsonl, stray files named like backups,
//! leftovers of a killed backup, a FIFO in place of history.jsonl, an outputs.json that
//! is not an object. No terraform runs in these tests.

use std::time::Duration;

use predicates::prelude::*;
use sha2::Digest;

use crate::support::fake::{FakeTerraform, WRITE_PLAN};
use crate::support::{Project, stdout_json};

/// A valid backup of `env` named `terraform.tfstate.202611DD-120000` with its manifest
/// line appended, as `tfenv backup` writes them.
fn add_backup(project: &Project, env: &str, day: u32) -> String {
    let name = format!("terraform.tfstate.202611{day:02}-120000");
    let state = format!(
        r#"{{"version":4,"terraform_version":"1.11.4","serial":{day},"lineage":"l-1","outputs":{{}},"resources":[]}}"#
    );
    project.write(&format!("state/{env}/backups/{name}"), &state);
    let line = serde_json::json!({
        "file": name, "sha256": hex::encode(sha2::Sha256::digest(state.as_bytes())),
        "bytes": state.len(), "serial": day, "lineage": "l-1", "terraform_version": "1.11.4",
        "created": format!("2026-11-{day:02}T12:00:00Z"), "reason": "manual"
    });
    append(
        project,
        &format!("state/{env}/backups/MANIFEST.jsonl"),
        line.to_string().as_bytes(),
    );
    name
}

/// Appends raw bytes and a newline.
fn append(project: &Project, rel: &str, bytes: &[u8]) {
    let path = project.join(rel);
    let mut all = std::fs::read(&path).unwrap_or_default();
    all.extend_from_slice(bytes);
    all.push(b'\n');
    std::fs::write(&path, all).unwrap();
}

/// A manifest line whose file name is cut by a byte that is not UTF-8.
const NOT_UTF8: &[u8] =
    b"{\"file\":\"terraform.tfstate.20261130-120000\",\"reason\":\"man\xe9ual\"}";

fn backup_files(project: &Project, env: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(project.join(&format!("state/{env}/backups")))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("terraform.tfstate."))
        .collect();
    names.sort();
    names
}

fn json(project: &Project, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let output = project
        .tfenv()
        .args(args)
        .args(["--output", "json"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stdout_json(&output), stderr)
}

#[test]
fn a_non_utf8_manifest_line_is_skipped_with_a_warning_by_verify_backups_and_prune() {
    let project = Project::demo();
    let first = add_backup(&project, "dev", 1);
    append(&project, "state/dev/backups/MANIFEST.jsonl", NOT_UTF8);
    let second = add_backup(&project, "dev", 2);
    let third = add_backup(&project, "dev", 3);
    let warning = "MANIFEST.jsonl` line 2: not valid UTF-8";

    project
        .tfenv()
        .args(["verify", "dev"])
        .assert()
        .success()
        .stdout(predicate::str::contains("dev: 3 backup(s) verified"))
        .stdout(predicate::str::contains(warning));
    let (code, report, _) = json(&project, &["verify", "dev"]);
    assert_eq!(code, Some(0));
    assert_eq!(report["ok"], true);
    let warnings = report["environments"][0]["warnings"].to_string();
    assert!(warnings.contains(warning), "{report}");

    let (code, listed, stderr) = json(&project, &["backups", "dev"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(listed["backups"].as_array().unwrap().len(), 3);
    assert!(
        listed["warnings"][0].as_str().unwrap().contains(warning),
        "{listed}"
    );
    assert!(stderr.contains(warning), "{stderr}");
    project
        .tfenv()
        .args(["backups", "dev"])
        .assert()
        .success()
        .stdout(predicate::str::contains(&third))
        .stderr(predicate::str::contains(warning));

    // Before the fix prune deleted the two oldest files, then failed on the manifest.
    let (code, pruned, stderr) = json(&project, &["prune", "dev", "--keep", "1", "--yes"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(pruned["deleted"], serde_json::json!([first, second]));
    assert!(
        pruned["warnings"][0].as_str().unwrap().contains(warning),
        "{pruned}"
    );
    assert_eq!(backup_files(&project, "dev"), [third]);
    let manifest = std::fs::read(project.join("state/dev/backups/MANIFEST.jsonl")).unwrap();
    assert!(
        manifest.windows(NOT_UTF8.len()).any(|w| w == NOT_UTF8),
        "prune keeps a line it cannot read, byte for byte"
    );
    project.tfenv().args(["verify", "dev"]).assert().success();
}

#[test]
fn a_non_utf8_history_line_is_skipped_with_a_warning_by_history_and_prune() {
    let project = Project::demo();
    let history = "state/dev/history.jsonl";
    let record = |result: &str, backup: &str| {
        serde_json::json!({
            "command": "deploy", "environment": "dev", "tier": "development", "who": "a",
            "host": "h", "git": null, "start": "2026-11-22T10:15:00Z", "end": "2026-11-22T10:15:01Z",
            "seconds": 1.0, "terraform_version": "1.11.4", "plan": null, "result": result,
            "exit_code": 0, "backup": backup, "log": null, "error": null
        })
        .to_string()
    };
    let first = add_backup(&project, "dev", 1);
    add_backup(&project, "dev", 2);
    add_backup(&project, "dev", 3);
    append(&project, history, record("applied", &first).as_bytes());
    append(
        &project,
        history,
        b"{\"command\":\"deploy\",\"who\":\"\xff\xfe\"}",
    );
    append(&project, history, record("no-changes", "").as_bytes());

    let warning = "history.jsonl` line 2: not valid UTF-8";
    project
        .tfenv()
        .args(["history", "dev"])
        .assert()
        .success()
        .stdout(predicate::str::contains("no-changes"))
        .stderr(predicate::str::contains(warning));
    let (code, listed, _) = json(&project, &["history", "dev"]);
    assert_eq!(code, Some(0));
    assert_eq!(listed["records"].as_array().unwrap().len(), 2);
    assert!(
        listed["warnings"][0].as_str().unwrap().contains(warning),
        "{listed}"
    );

    // The last known good backup (from line 1) is still protected.
    let (code, pruned, stderr) = json(&project, &["prune", "dev", "--keep", "1", "--yes"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(pruned["deleted"].as_array().unwrap().len(), 1, "{pruned}");
    assert_eq!(pruned["protected"], serde_json::json!([first]));
    assert!(stderr.contains(warning), "{stderr}");
    assert!(project.join(&format!("state/dev/backups/{first}")).exists());
}

#[test]
fn a_stray_file_named_like_a_backup_is_not_counted_by_prune_and_verify_shows_it() {
    let project = Project::demo();
    let real = [
        add_backup(&project, "dev", 1),
        add_backup(&project, "dev", 2),
    ];
    // Newer by name than both real backups: counted by name, they would make prune
    // --keep 2 delete a real one.
    let stray = "terraform.tfstate.20301231-235959";
    project.write(&format!("state/dev/backups/{stray}"), "not a backup");

    let (code, pruned, stderr) = json(&project, &["prune", "dev", "--keep", "2", "--yes"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(pruned["deleted"], serde_json::json!([]));
    assert!(
        pruned["warnings"][0].as_str().unwrap().contains(stray),
        "{pruned}"
    );
    let mut all = real.to_vec();
    all.push(stray.to_string());
    assert_eq!(backup_files(&project, "dev"), all);

    // A warning, not a failed backup: verify passes and shows it.
    project
        .tfenv()
        .args(["verify", "dev"])
        .assert()
        .success()
        .stdout(predicate::str::contains("dev: 2 backup(s) verified"))
        .stdout(predicate::str::contains(format!(
            "warning: `{stray}` has no line in MANIFEST.jsonl"
        )));
    let (code, report, _) = json(&project, &["verify", "dev"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        report["environments"][0]["unlisted"],
        serde_json::json!([stray])
    );
    assert_eq!(report["environments"][0]["problems"], serde_json::json!([]));

    // Status's newest backup is the newest real one.
    let (_, status, _) = json(&project, &["status", "dev"]);
    assert_eq!(status["environments"][0]["newest_backup"]["file"], real[1]);
}

#[test]
fn verify_reports_leftover_partial_files_with_the_command_to_remove_them() {
    let project = Project::demo();
    add_backup(&project, "dev", 1);
    let partial = project.write("state/dev/backups/.backup-Xy12ab.partial", "{\"vers");
    let output = project.tfenv().args(["verify", "dev"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "warning: `.backup-Xy12ab.partial` is left over from a backup that did not finish; unless one is running now, remove it: rm '{}'",
            partial.display()
        )),
        "{stdout}"
    );
    let (_, report, _) = json(&project, &["verify", "dev"]);
    assert_eq!(
        report["environments"][0]["leftovers"],
        serde_json::json!([".backup-Xy12ab.partial"])
    );
    assert!(
        report["environments"][0]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("rm '")
    );
}

#[test]
fn a_fifo_named_history_jsonl_is_an_error_naming_it_not_a_hang() {
    let project = Project::demo();
    std::fs::create_dir_all(project.join("state/dev")).unwrap();
    let fifo = project.join("state/dev/history.jsonl");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let message = "history.jsonl` is a FIFO (named pipe), not a regular file";

    project
        .tfenv()
        .args(["history", "dev"])
        .timeout(Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(message))
        .stderr(predicate::str::contains("move it away"));

    // status reads the same file for LAST DEPLOY: it must finish, not wait on the FIFO.
    let (code, status, _) = json(&project, &["status", "dev"]);
    assert_eq!(code, Some(6), "{status}");
    assert_eq!(
        status["environments"][0]["last_deploy"],
        serde_json::Value::Null
    );
    assert_eq!(
        status["environments"][0]["problems"][0]["code"], "history-unreadable",
        "{status}"
    );
}

#[test]
fn status_last_deploy_is_the_newest_run_that_reached_apply_even_past_a_multibyte_boundary() {
    let project = Project::demo();
    let history = "state/dev/history.jsonl";
    std::fs::create_dir_all(project.join("state/dev")).unwrap();
    let record = |command: &str, result: &str, error: &str, reached: Option<bool>| {
        let mut r = serde_json::json!({
            "command": command, "environment": "dev", "tier": "development", "who": "a",
            "host": "h", "git": null, "start": "2026-11-22T10:15:00Z", "end": "2026-11-22T10:15:01Z",
            "seconds": 1.0, "terraform_version": "1.11.4", "plan": null, "result": result,
            "exit_code": 0, "backup": null, "log": null, "error": error
        });
        if let Some(reached) = reached {
            r["reached_apply"] = reached.into();
        }
        r.to_string()
    };
    // An old error message long and full of three-byte characters, so the tail that
    // status reads begins inside one of them (one of three paddings puts it there).
    for pad in 0..3 {
        // The padding comes after the characters, so it moves where the tail begins.
        let error = format!("{}{}", "€".repeat(30_000), " ".repeat(pad));
        std::fs::write(project.join(history), "").unwrap();
        append(
            &project,
            history,
            record("deploy", "failed", &error, Some(true)).as_bytes(),
        );
        append(
            &project,
            history,
            record("deploy", "applied", "", Some(true)).as_bytes(),
        );
        let (_, status, _) = json(&project, &["status", "dev"]);
        let last = &status["environments"][0]["last_deploy"];
        assert_eq!(last["result"], "applied", "pad {pad}: {status}");
    }
    // Runs that did not reach apply are not the last deploy.
    append(
        &project,
        history,
        record("deploy", "interrupted", "", Some(false)).as_bytes(),
    );
    append(
        &project,
        history,
        record("deploy", "no-changes", "", Some(false)).as_bytes(),
    );
    append(
        &project,
        history,
        record("unlock", "refused", "", None).as_bytes(),
    );
    let (_, status, _) = json(&project, &["status", "dev"]);
    let last = &status["environments"][0]["last_deploy"];
    assert_eq!(last["result"], "applied", "{status}");
    assert_eq!(last["reached_apply"], true);
    // `history` still shows every run.
    let (_, listed, _) = json(&project, &["history", "dev"]);
    assert_eq!(listed["records"].as_array().unwrap().len(), 5);
}

#[test]
fn cached_outputs_that_are_a_json_array_are_an_error_naming_the_file() {
    let project = Project::demo();
    project.write("state/dev/outputs.json", "[1, 2]\n");
    project
        .tfenv()
        .args(["outputs", "dev", "--cached"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("{}").not())
        .stderr(predicate::str::contains(
            "outputs.json` is not an outputs document: it holds a JSON array, not an object of outputs",
        ));
    let (code, doc, _) = json(&project, &["outputs", "dev", "--cached"]);
    assert_eq!(code, Some(1));
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an outputs document")
    );
}

#[test]
fn prune_says_why_there_is_nothing_to_prune() {
    let project = Project::demo();
    let tfenv_prune = |keep: &str| {
        let output = project
            .tfenv()
            .args(["prune", "dev", "--keep", keep, "--yes"])
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(tfenv_prune("2"), "dev: nothing to prune: no backups\n");
    let first = add_backup(&project, "dev", 1);
    add_backup(&project, "dev", 2);
    assert_eq!(
        tfenv_prune("2"),
        "dev: nothing to prune: 2 backup(s), no more than --keep 2\n"
    );
    project.write(
        "state/dev/history.jsonl",
        &(serde_json::json!({
            "command": "deploy", "environment": "dev", "tier": "development", "who": "a",
            "host": "h", "git": null, "start": "2026-11-22T10:15:00Z", "end": "2026-11-22T10:15:01Z",
            "seconds": 1.0, "terraform_version": "1.11.4", "plan": null, "result": "applied",
            "exit_code": 0, "backup": first, "log": null, "error": null
        })
        .to_string()
            + "\n"),
    );
    assert_eq!(
        tfenv_prune("1"),
        format!(
            "dev: nothing to prune: kept the newest 1 (--keep 1) and `{first}`, the last known good backup (taken before the last successful deploy)\n"
        )
    );
    let (code, report, _) = json(&project, &["prune", "dev", "--keep", "1", "--yes"]);
    assert_eq!(code, Some(0));
    assert!(
        report["nothing_to_prune"]
            .as_str()
            .unwrap()
            .contains("last known good"),
        "{report}"
    );
    assert_eq!(report["kept"][0]["reason"], "newest");
    assert_eq!(
        report["kept"][1],
        serde_json::json!({ "file": first, "reason": "last-good" })
    );
}

#[test]
fn status_last_deploy_skips_a_later_deploy_that_failed_before_apply() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on(
            "plan",
            format!(
                r#"[ -e '{fail}' ] && {{ echo "Error: plan failed" >&2; exit 1; }}
        {WRITE_PLAN}"#,
                fail = project.join("fail-plan").display()
            ),
        )
        .on("output", "echo '{}'")
        .install(&project);
    let deploy = || {
        project
            .tfenv_with(&tf)
            .args(["deploy", "dev", "--yes"])
            .output()
            .unwrap()
    };
    assert!(deploy().status.success());
    assert_eq!(project.last_history("dev")["reached_apply"], true);
    project.write("fail-plan", "");
    assert_eq!(deploy().status.code(), Some(1));
    let failed = project.last_history("dev");
    assert_eq!(
        (&failed["result"], &failed["reached_apply"]),
        (&"failed".into(), &false.into())
    );

    let (_, status, _) = json(&project, &["status", "dev"]);
    assert_eq!(
        status["environments"][0]["last_deploy"]["result"], "applied",
        "{status}"
    );
}
