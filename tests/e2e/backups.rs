//! backup / backups / verify / restore / prune on the real terraform, local backend.

use predicates::prelude::*;
use serde_json::Value;
use sha2::Digest;

use crate::support::{self, Project, stdout_json};

fn deploy_dev(project: &Project, instances: u32) {
    let tfvars = project.read("environments/dev.tfvars");
    let tfvars: String = tfvars
        .lines()
        .map(|l| {
            if l.starts_with("instance_count") {
                format!("instance_count = {instances}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    project.write("environments/dev.tfvars", &(tfvars + "\n"));
    project
        .tfenv_real()
        .args(["deploy", "dev", "--yes"])
        .assert()
        .success();
}

fn backup(project: &Project) -> Value {
    let output = project
        .tfenv_real()
        .args(["backup", "dev", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout_json(&output)["backups"][0]["backup"].clone()
}

#[test]
fn backups_match_their_manifest_and_verify_catches_damage() {
    let project = Project::demo();
    project
        .tfenv_real()
        .args(["backup", "dev"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "dev: no state yet, nothing to back up",
        ));
    assert!(!project.join("state/dev/backups/MANIFEST.jsonl").exists());

    deploy_dev(&project, 1);
    let first = backup(&project);
    let second = backup(&project);
    assert_ne!(
        first["file"], second["file"],
        "two backups in the same second get two names"
    );
    for b in [&first, &second] {
        let bytes = std::fs::read(project.join(&format!(
            "state/dev/backups/{}",
            b["file"].as_str().unwrap()
        )))
        .unwrap();
        assert_eq!(b["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
        assert_eq!(b["bytes"], bytes.len());
        assert_eq!(b["reason"], "manual");
    }
    project
        .tfenv_real()
        .args(["verify", "dev"])
        .assert()
        .success()
        .stdout(predicate::str::contains("dev: 2 backup(s) verified"));
    let listed = stdout_json(
        &project
            .tfenv_real()
            .args(["backups", "dev", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(listed["backups"].as_array().unwrap().len(), 2);
    assert_eq!(listed["backups"][0]["verified"], true);

    // One byte changed.
    let path = project.join(&format!(
        "state/dev/backups/{}",
        first["file"].as_str().unwrap()
    ));
    let mut bytes = std::fs::read(&path).unwrap();
    let i = bytes.iter().position(|&b| b == b'1').unwrap();
    bytes[i] = b'2';
    std::fs::write(&path, &bytes).unwrap();
    project
        .tfenv_real()
        .args(["verify", "dev"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "`{}`: SHA-256",
            first["file"].as_str().unwrap()
        )));

    // Truncated.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    project
        .tfenv_real()
        .args(["verify", "dev"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(first["file"].as_str().unwrap()));

    // A stray file and a manifest line without its file are reported too.
    std::fs::write(
        project.join("state/dev/backups/terraform.tfstate.20200101-000000"),
        "{}",
    )
    .unwrap();
    std::fs::remove_file(project.join(&format!(
        "state/dev/backups/{}",
        second["file"].as_str().unwrap()
    )))
    .unwrap();
    let output = project
        .tfenv_real()
        .args(["verify", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout_json(&output).to_string();
    assert!(
        text.contains("terraform.tfstate.20200101-000000` has no line in MANIFEST.jsonl"),
        "{text}"
    );
    assert!(text.contains("cannot be opened"), "{text}");
}

#[test]
fn restoring_an_older_backup_brings_its_outputs_back_with_a_higher_serial() {
    let project = Project::demo();
    deploy_dev(&project, 1);
    let old = backup(&project);
    deploy_dev(&project, 3);
    let before = stdout_json(
        &project
            .tfenv_real()
            .args(["status", "dev", "--output", "json"])
            .output()
            .unwrap(),
    );
    let serial_before = before["environments"][0]["state"]["serial"]
        .as_u64()
        .unwrap();

    let output = project
        .tfenv_real()
        .args([
            "restore",
            "dev",
            old["file"].as_str().unwrap(),
            "--yes",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = stdout_json(&output);
    assert!(report["serial_after"].as_u64().unwrap() > serial_before);
    assert_eq!(report["forced"], false);
    assert_eq!(report["pre_restore_backup"]["reason"], "pre-restore");

    let outputs = stdout_json(
        &project
            .tfenv_real()
            .args(["outputs", "dev", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        outputs["instance_names"]["value"],
        serde_json::json!(["quickstart-dev-0"])
    );
    // The configuration still says 3: a plan works and wants the 3 back.
    project
        .tfenv_real()
        .args(["plan", "dev", "--detailed-exitcode"])
        .assert()
        .code(3);
    let history = project.read("state/dev/history.jsonl");
    let last: Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(last["command"], "restore");
    assert_eq!(last["result"], "applied");
}

#[test]
fn a_backup_of_another_lineage_needs_force() {
    let project = Project::demo();
    deploy_dev(&project, 1);
    // Another project's state: same module, fresh lineage.
    let other = Project::demo();
    deploy_dev(&other, 2);
    let foreign = other.join("state/dev/terraform.tfstate");
    let state_before = project.read("state/dev/terraform.tfstate");

    project
        .tfenv_real()
        .arg("restore")
        .arg("dev")
        .arg(&foreign)
        .arg("--yes")
        .assert()
        .code(5)
        .stderr(predicate::str::contains("is from another lineage"))
        .stderr(predicate::str::contains("--force"));
    assert_eq!(
        project.read("state/dev/terraform.tfstate"),
        state_before,
        "state untouched"
    );

    project
        .tfenv_real()
        .arg("restore")
        .arg("dev")
        .arg(&foreign)
        .args(["--yes", "--force"])
        .assert()
        .success();
    let outputs = stdout_json(
        &project
            .tfenv_real()
            .args(["outputs", "dev", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        outputs["instance_names"]["value"],
        serde_json::json!(["quickstart-dev-0", "quickstart-dev-1"])
    );

    project
        .tfenv_real()
        .args(["restore", "dev", "tfenv.toml", "--yes", "--force"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("is not a Terraform state"));
}

#[test]
fn prune_keeps_exactly_n_and_the_newest() {
    let project = Project::demo();
    deploy_dev(&project, 1);
    let made: Vec<String> = (0..5)
        .map(|_| backup(&project)["file"].as_str().unwrap().to_string())
        .collect();
    project
        .tfenv_real()
        .args(["prune", "dev", "--keep", "2"])
        .assert()
        .code(5);
    project
        .tfenv_real()
        .args(["prune", "dev", "--keep", "2", "--yes"])
        .assert()
        .success();
    let left = stdout_json(
        &project
            .tfenv_real()
            .args(["backups", "dev", "--output", "json"])
            .output()
            .unwrap(),
    );
    let files: Vec<&str> = left["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, [made[3].as_str(), made[4].as_str()]);
    project
        .tfenv_real()
        .args(["verify", "dev"])
        .assert()
        .success();
}

#[test]
fn a_write_error_while_backing_up_leaves_no_partial_file_or_manifest_line() {
    let project = Project::demo();
    deploy_dev(&project, 1);
    backup(&project);
    let manifest_before = project.read("state/dev/backups/MANIFEST.jsonl");
    let files_before = std::fs::read_dir(project.join("state/dev/backups"))
        .unwrap()
        .count();
    // A file-size limit of 0 (with SIGXFSZ ignored, as a full disk would behave) makes
    // every write to a regular file fail with EFBIG — as root too, unlike a read-only
    // folder. terraform writes only to its pipe, which the limit does not touch.
    let output = project
        .command_via(&["bash", "-c", r#"trap '' XFSZ; ulimit -f 0; exec "$0" "$@""#])
        .arg("--terraform")
        .arg(support::terraform())
        .args(["backup", "dev"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error:"), "{stderr}");
    assert_eq!(
        project.read("state/dev/backups/MANIFEST.jsonl"),
        manifest_before,
        "no manifest line"
    );
    let files_after = std::fs::read_dir(project.join("state/dev/backups"))
        .unwrap()
        .count();
    assert_eq!(files_after, files_before, "no partial file");
}

#[test]
fn restore_skips_a_non_utf8_manifest_line_with_a_warning() {
    let project = Project::demo();
    deploy_dev(&project, 1);
    let old = backup(&project);
    deploy_dev(&project, 2);
    // A damaged line between the real ones, as a bad disk or editor leaves it.
    let manifest = project.join("state/dev/backups/MANIFEST.jsonl");
    let mut bytes = b"{\"file\":\"terraform.tfstate.20200101-000000\",\"who\":\"\xff\"}\n".to_vec();
    bytes.extend(std::fs::read(&manifest).unwrap());
    std::fs::write(&manifest, bytes).unwrap();

    let output = project
        .tfenv_real()
        .args(["restore", "dev", old["file"].as_str().unwrap(), "--yes"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("MANIFEST.jsonl` line 1: not valid UTF-8 (byte 52); skipped it"),
        "{stderr}"
    );
    let outputs = stdout_json(
        &project
            .tfenv_real()
            .args(["outputs", "dev", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        outputs["instance_names"]["value"],
        serde_json::json!(["quickstart-dev-0"])
    );
    // The pre-restore backup was appended after the damaged line, which stays.
    assert!(
        std::fs::read(&manifest)
            .unwrap()
            .starts_with(b"{\"file\":\"terraform.tfstate.20200101-000000\",\"who\":\"\xff")
    );
    project
        .tfenv_real()
        .args(["verify", "dev"])
        .assert()
        .success();
}
