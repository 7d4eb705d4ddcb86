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
        .stderr(predicate::str::contains(warning));
    let (code, report, stderr) = json(&project, &["verify", "dev"]);
    assert_eq!(code, Some(0));
    assert_eq!(report["ok"], true);
    let warnings = report["environments"][0]["warnings"].to_string();
    assert!(warnings.contains(warning), "{report}");
    assert!(stderr.contains(warning), "{stderr}");

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

/// A file in backups/ that the manifest does not list is not restored by its name (tfenv
/// cannot check it); the refusal says so and how to restore it anyway.
#[test]
fn restoring_a_stray_file_by_name_says_it_is_not_in_the_manifest_and_how_to_restore_it() {
    let project = Project::demo();
    add_backup(&project, "dev", 1);
    let stray = "terraform.tfstate.20200101-000000";
    project.write(&format!("state/dev/backups/{stray}"), "{}");
    project
        .tfenv()
        .args(["restore", "dev", stray])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "error: `{stray}` is in `state/dev/backups` but not in its manifest (MANIFEST.jsonl)"
        )))
        .stderr(predicate::str::contains(format!(
            "to restore it anyway, pass its path: `tfenv restore dev state/dev/backups/{stray}`"
        )))
        .stderr(predicate::str::contains("neither").not());
    // Passed as a path it is read (here: it is no state at all).
    project
        .tfenv()
        .args(["restore", "dev", &format!("state/dev/backups/{stray}")])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("is not a Terraform state"));
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
        .stdout(predicate::str::contains("warning").not())
        .stderr(predicate::str::contains(format!(
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
    // On stderr, like every command's warnings: stdout keeps only the result.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: `.backup-Xy12ab.partial` is left over from a backup that did not finish; unless one is running now, remove it: rm '{}'",
            partial.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "dev: 1 backup(s) verified\n"
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
fn prune_refused_in_json_names_the_backups_instead_of_a_list_above() {
    let project = Project::demo();
    let first = add_backup(&project, "dev", 1);
    let second = add_backup(&project, "dev", 2);
    add_backup(&project, "dev", 3);
    let (code, doc, stderr) = json(
        &project,
        &["prune", "dev", "--keep", "1", "--non-interactive"],
    );
    assert_eq!(code, Some(5), "{stderr}");
    let hint = doc["error"]["hint"].as_str().unwrap();
    assert!(!hint.contains("above"), "{hint}");
    assert!(
        hint.starts_with(&format!(
            "check the backups it deletes (`{first}`, `{second}`), then pass --yes"
        )),
        "{hint}"
    );
    assert_eq!(backup_files(&project, "dev").len(), 3, "nothing deleted");

    // In text, the list is printed: the hint points at it.
    project
        .tfenv()
        .args(["prune", "dev", "--keep", "1", "--non-interactive"])
        .assert()
        .code(5)
        .stdout(predicate::str::contains(format!("  {first}")))
        .stderr(predicate::str::contains("check the list above"));
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

/// A whole history record of a dev deploy, as tfenv writes them.
fn history_record(result: &str, backup: Option<&str>, start: &str) -> String {
    serde_json::json!({
        "command": "deploy", "environment": "dev", "tier": "development", "who": "a",
        "host": "h", "git": null, "start": start, "end": start,
        "seconds": 1.0, "terraform_version": "1.11.4", "plan": null, "result": result,
        "exit_code": 0, "backup": backup, "log": null, "error": null
    })
    .to_string()
}

/// Backups of days 1 to 5, and a history whose last successful deploy — the one that
/// took day 4's backup — is a line that is not UTF-8. Before it: a deploy that took day
/// 2's backup, then a no-change run on day 3 at 13:00 (after day 3's backup).
fn history_damaged_after_the_last_good_deploy(project: &Project) -> Vec<String> {
    let backups: Vec<String> = (1..=5).map(|day| add_backup(project, "dev", day)).collect();
    let history = "state/dev/history.jsonl";
    append(
        project,
        history,
        history_record("applied", Some(&backups[1]), "2026-11-02T12:00:00Z").as_bytes(),
    );
    append(
        project,
        history,
        history_record("no-changes", None, "2026-11-03T13:00:00.500Z").as_bytes(),
    );
    let damaged = history_record("applied", Some(&backups[3]), "2026-11-04T12:00:00Z")
        .replace("\"who\":\"a\"", "\"who\":\"\u{e9}\"");
    let damaged: Vec<u8> = damaged
        .into_bytes()
        .into_iter()
        .map(|b| if b == 0xc3 { 0xff } else { b })
        .collect();
    append(project, history, &damaged);
    backups
}

#[test]
fn prune_keeps_every_backup_taken_since_a_damaged_history_line_that_may_name_the_last_good_one() {
    let project = Project::demo();
    let backups = history_damaged_after_the_last_good_deploy(&project);
    let (code, pruned, stderr) = json(&project, &["prune", "dev", "--keep", "1", "--yes"]);
    assert_eq!(code, Some(0), "{stderr}");
    // Day 4's backup — the real last good one — stays, and so does everything after the
    // readable record before the damaged line; older backups go as usual.
    assert_eq!(
        pruned["deleted"],
        serde_json::json!([backups[0], backups[2]]),
        "{pruned}"
    );
    assert_eq!(pruned["protected"], serde_json::json!([backups[1]]));
    assert_eq!(
        pruned["protected_since"], "2026-11-03T13:00:00Z",
        "{pruned}"
    );
    let reasons: Vec<&str> = pruned["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["newest", "maybe-last-good", "last-good"],
        "{pruned}"
    );
    let warning =
        "history.jsonl` line(s) 3 cannot be read, and may record a newer successful deploy";
    assert!(stderr.contains(warning), "{stderr}");
    assert!(pruned["warnings"].to_string().contains(warning), "{pruned}");
    assert_eq!(
        backup_files(&project, "dev"),
        [backups[1].clone(), backups[3].clone(), backups[4].clone()]
    );
}

#[test]
fn pruning_after_a_deploy_keeps_the_backups_a_damaged_history_line_may_name() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let toml = project.read("tfenv.toml").replace(
        "var_files = [\"environments/common.tfvars\", \"environments/dev.tfvars\"]\n",
        "var_files = [\"environments/common.tfvars\", \"environments/dev.tfvars\"]\nbackup_keep = 1\n",
    );
    project.write("tfenv.toml", &toml);
    let backups = history_damaged_after_the_last_good_deploy(&project);
    let output = project.run_with(&tf, &["deploy", "dev", "--yes", "--output", "json"]);
    assert_eq!(output.status.code(), Some(0));
    let report = stdout_json(&output);
    assert_eq!(report["result"], "applied", "{report}");
    assert!(
        report["warnings"]
            .to_string()
            .contains("history.jsonl` line(s) 3 cannot be read"),
        "{report}"
    );
    assert_eq!(
        backup_files(&project, "dev"),
        [backups[1].clone(), backups[3].clone(), backups[4].clone()]
    );
}

#[test]
fn status_last_deploy_skips_a_record_that_history_rejects() {
    let project = Project::demo();
    let history = "state/dev/history.jsonl";
    std::fs::create_dir_all(project.join("state/dev")).unwrap();
    append(
        &project,
        history,
        history_record("failed", None, "2026-11-02T12:00:00Z")
            .replace("\"plan\":null", "\"plan\":null,\"reached_apply\":true")
            .as_bytes(),
    );
    append(
        &project,
        history,
        history_record("applied", None, "bad").as_bytes(),
    );
    let (_, listed, _) = json(&project, &["history", "dev"]);
    assert_eq!(listed["records"].as_array().unwrap().len(), 1, "{listed}");
    let (_, status, _) = json(&project, &["status", "dev"]);
    assert_eq!(
        status["environments"][0]["last_deploy"]["result"], "failed",
        "{status}"
    );
}

#[test]
fn a_fifo_in_place_of_the_manifest_is_a_status_problem() {
    let project = Project::demo();
    std::fs::create_dir_all(project.join("state/dev/backups")).unwrap();
    nix::unistd::mkfifo(
        &project.join("state/dev/backups/MANIFEST.jsonl"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let (code, status, _) = json(&project, &["status", "dev"]);
    assert_eq!(code, Some(6), "{status}");
    let problems = &status["environments"][0]["problems"];
    let problem = problems
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "backups-unreadable")
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("MANIFEST.jsonl` is a FIFO (named pipe), not a regular file"),
        "{problem}"
    );
}

/// The FIFO tests: tfenv must finish at once, not wait for a writer.
fn within_seconds(project: &Project, tf: &std::path::Path, args: &[&str]) -> std::process::Output {
    project
        .tfenv_with(tf)
        .args(args)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap()
}

#[test]
fn a_fifo_in_place_of_the_init_fingerprint_fails_at_once_naming_it() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    assert!(
        within_seconds(&project, &tf, &["init", "dev"])
            .status
            .success()
    );
    let fingerprint = project.join("examples/quickstart/.terraform/tfenv/dev.fingerprint");
    std::fs::remove_file(&fingerprint).unwrap();
    nix::unistd::mkfifo(
        &fingerprint,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let message = "dev.fingerprint` is a FIFO (named pipe), not a regular file";

    for args in [
        &["deploy", "dev", "--yes"][..],
        &["plan", "dev"],
        &["init", "dev"],
    ] {
        let output = within_seconds(&project, &tf, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let output = within_seconds(&project, &tf, &["status", "--output", "json"]);
    assert_eq!(output.status.code(), Some(6));
    let status = stdout_json(&output);
    let dev = &status["environments"][0];
    assert_eq!(dev["problems"][0]["code"], "init-unreadable", "{status}");
    assert!(
        dev["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains(message),
        "{status}"
    );
    // The other environments are still reported.
    assert_eq!(status["environments"][1]["name"], "staging", "{status}");
}

#[test]
fn a_fifo_in_place_of_the_environment_lock_fails_at_once_naming_it() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    std::fs::create_dir_all(project.join("state/dev")).unwrap();
    nix::unistd::mkfifo(
        &project.join("state/dev/.tfenv.lock"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let message = ".tfenv.lock` is a FIFO (named pipe), not a regular file";
    let output = within_seconds(&project, &tf, &["deploy", "dev", "--yes"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(message), "{stderr}");
    let output = within_seconds(&project, &tf, &["status", "dev", "--output", "json"]);
    assert_eq!(output.status.code(), Some(6));
    let status = stdout_json(&output);
    assert!(
        status["environments"][0]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["code"] == "env-lock-unreadable"
                && p["message"].as_str().unwrap().contains(message)),
        "{status}"
    );
}

/// The holder line a tfenv killed during `deploy dev`'s apply left in the environment
/// lock: a process that is gone, on this host.
fn killed_holder(project: &Project) -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    project.write(
        "state/dev/.tfenv.lock",
        &format!(
            "{}\n",
            serde_json::json!({
                "pid": pid, "command": "deploy", "environment": "dev", "who": "alice",
                "host": host, "since": "2026-11-22T10:00:00Z", "recorded": true,
                "applying": "2026-11-22T10:01:00Z",
                "backup": "terraform.tfstate.20261122-100030",
                "log": "logs/deploy-20261122-100000.log"
            })
        ),
    );
    project.write("state/dev/terraform.plan", "plan");
    pid
}

fn problem<'a>(status: &'a serde_json::Value, code: &str) -> Option<&'a serde_json::Value> {
    status["environments"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == code)
}

#[test]
fn a_run_killed_mid_apply_is_recorded_by_the_next_run_and_shown_by_status_until_a_deploy_finishes()
{
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    assert!(
        within_seconds(&project, &tf, &["init", "dev"])
            .status
            .success()
    );
    let pid = killed_holder(&project);

    // Before any run records it, status already says so.
    let (code, status, _) = json(&project, &["status", "dev"]);
    assert_eq!(code, Some(6), "{status}");
    let killed = problem(&status, "killed-run").unwrap_or_else(|| panic!("{status}"));
    let message = killed["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("(pid {pid}, `tfenv deploy dev`, alice@"))
            && message.contains("is not in history yet")
            && message.contains("`tfenv plan dev`"),
        "{message}"
    );

    // A run refused at its confirmation still records the killed one first.
    let output = within_seconds(&project, &tf, &["deploy", "dev"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: the previous run on `dev` (pid {pid}, `tfenv deploy dev`"
        )) && stderr.contains("was killed before it finished"),
        "{stderr}"
    );
    let (_, listed, _) = json(&project, &["history", "dev"]);
    let records = listed["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{listed}");
    let record = &records[0];
    assert_eq!(record["result"], "killed", "{record}");
    assert_eq!(record["reached_apply"], true, "{record}");
    assert_eq!(record["start"], "2026-11-22T10:00:00Z", "{record}");
    assert_eq!(record["backup"], "terraform.tfstate.20261122-100030");
    assert_eq!(record["log"], "logs/deploy-20261122-100000.log");
    assert!(
        record["error"].as_str().unwrap().contains(&format!(
            "tfenv (pid {pid}) was killed before this run finished, during terraform apply"
        )),
        "{record}"
    );
    assert_eq!(records[1]["result"], "refused", "{listed}");
    assert!(!project.join("state/dev/terraform.plan").exists());

    // Recorded: LAST DEPLOY is the killed run, still a problem; the warning is not repeated.
    let (code, status, _) = json(&project, &["status", "dev"]);
    assert_eq!(code, Some(6), "{status}");
    assert_eq!(status["environments"][0]["last_deploy"]["result"], "killed");
    let message = problem(&status, "killed-run").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("the last `tfenv deploy` (by alice@")
            && message.contains("terraform may have applied all, part or none of the change"),
        "{message}"
    );
    let human = String::from_utf8(
        project
            .tfenv()
            .args(["status", "dev"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(human.contains("killed "), "{human}");

    let output = within_seconds(&project, &tf, &["deploy", "dev", "--yes"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("killed"), "{stderr}");
    let (_, status, _) = json(&project, &["status", "dev"]);
    assert!(problem(&status, "killed-run").is_none(), "{status}");
    assert_eq!(
        status["environments"][0]["last_deploy"]["result"],
        "applied"
    );
}

#[test]
fn a_killed_run_that_cannot_be_recorded_is_reported_again_by_the_next_run() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let pid = killed_holder(&project);
    // history.jsonl cannot be written: a folder in its place.
    std::fs::create_dir_all(project.join("state/dev/history.jsonl")).unwrap();
    let said = format!("the previous run on `dev` (pid {pid}");
    for _ in 0..2 {
        let output = within_seconds(&project, &tf, &["plan", "dev"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&said), "{stderr}");
        assert!(
            stderr.contains("could not record the killed run in history"),
            "{stderr}"
        );
        assert!(output.status.success(), "{stderr}");
    }
    std::fs::remove_dir(project.join("state/dev/history.jsonl")).unwrap();
    let output = within_seconds(&project, &tf, &["plan", "dev"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains(&said));
    assert_eq!(project.last_history("dev")["result"], "killed");
    let output = within_seconds(&project, &tf, &["plan", "dev"]);
    assert!(!String::from_utf8_lossy(&output.stderr).contains("killed"));
}

/// `ledger = "backend"` with the local backend: there is no backend storage to share the
/// ledger in. Each command says so once, on stderr, and works on this machine's files.
#[test]
fn a_shared_ledger_on_the_local_backend_is_a_warning_and_the_ledger_stays_local() {
    let project = Project::demo();
    let toml = project
        .read("tfenv.toml")
        .replace("[project]\n", "[project]\nledger = \"backend\"\n");
    project.write("tfenv.toml", &toml);
    let file = add_backup(&project, "dev", 1);
    let said =
        "uses the local backend: there is no backend storage to share its history and backups in";
    for args in [
        &["history", "dev"][..],
        &["backups", "dev"],
        &["verify", "dev"],
    ] {
        let (code, doc, stderr) = json(&project, args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr.matches(said).count(), 1, "{args:?}: {stderr}");
        if args[0] == "backups" {
            assert_eq!(doc["backups"][0]["file"], file.as_str(), "{doc}");
            assert_eq!(doc["backups"][0]["where"], "local", "{doc}");
        }
    }
    let (_, status, stderr) = json(&project, &["status", "dev"]);
    assert_eq!(stderr.matches(said).count(), 1, "{stderr}");
    let env = &status["environments"][0];
    assert_eq!(env["newest_backup"]["where"], "local", "{status}");
    assert!(
        env["warnings"][0].as_str().unwrap().contains(said),
        "{status}"
    );
}
