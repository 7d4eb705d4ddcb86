//! Byte progress for long backups and verifies: drawn on a terminal once 16 MiB have gone
//! by, never when stderr is not a terminal and never with `--output json`.

use std::path::PathBuf;

use rexpect::process::WaitStatus;
use sha2::Digest;

use crate::support::Project;
use crate::support::fake::{FakeTerraform, INIT_OK};

/// A state of about 20 MiB: past the size from which tfenv shows byte progress.
fn large_state() -> String {
    format!(
        r#"{{"version":4,"terraform_version":"1.11.4","serial":1,"lineage":"big","outputs":{{"blob":{{"value":"{}","type":"string"}}}},"resources":[]}}"#,
        "x".repeat(20 << 20)
    )
}

/// A large backup of `dev` with its manifest line, as `tfenv backup` writes them.
fn large_backup(project: &Project) {
    let state = large_state();
    let name = "terraform.tfstate.20261101-120000";
    project.write(&format!("state/dev/backups/{name}"), &state);
    let line = serde_json::json!({
        "file": name, "sha256": hex::encode(sha2::Sha256::digest(state.as_bytes())),
        "bytes": state.len(), "serial": 1, "lineage": "big", "terraform_version": "1.11.4",
        "created": "2026-11-01T12:00:00Z", "reason": "manual"
    });
    project.write("state/dev/backups/MANIFEST.jsonl", &format!("{line}\n"));
}

/// A terraform whose `state pull` prints the large state.
fn pulling_terraform(project: &Project) -> PathBuf {
    let state = project.write("big.tfstate", &large_state());
    FakeTerraform::empty()
        .on("init", INIT_OK)
        .on("state", format!("cat '{}'", state.display()))
        .install(project)
}

/// tfenv run with a pseudo-terminal as stdin, stdout and stderr: its exit code and
/// everything the terminal showed.
fn on_terminal(project: &Project, args: &[&str]) -> (i32, String) {
    let mut cmd = project.command();
    cmd.env("TERM", "xterm").args(args);
    let mut session =
        rexpect::session::spawn_command(cmd, Some(60_000)).expect("tfenv starts in a pty");
    let shown = session.exp_eof().expect("tfenv ends within a minute");
    let code = match session.process_mut().wait().expect("tfenv's exit status") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("tfenv did not exit normally: {other:?}\n{shown}"),
    };
    (code, shown)
}

#[test]
fn verify_of_a_large_backup_shows_byte_progress_on_a_terminal_only() {
    let project = Project::demo();
    large_backup(&project);

    let (code, shown) = on_terminal(&project, &["verify", "dev"]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("dev: verifying"),
        "no progress shown:\n{shown}"
    );
    assert!(shown.contains("dev: 1 backup(s) verified"), "{shown}");

    let (code, shown) = on_terminal(&project, &["verify", "dev", "--output", "json"]);
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains("verifying"), "progress with JSON:\n{shown}");

    let piped = project.tfenv().args(["verify", "dev"]).output().unwrap();
    assert_eq!(piped.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("verifying"),
        "progress on a pipe:\n{stderr}"
    );
}

#[test]
fn backup_of_a_large_state_shows_byte_progress_on_a_terminal_only() {
    let project = Project::demo();
    let tf = pulling_terraform(&project);
    let tf = tf.to_str().unwrap();

    let (code, shown) = on_terminal(&project, &["--terraform", tf, "backup", "dev"]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("dev: backing up"),
        "no progress shown:\n{shown}"
    );
    assert!(
        shown.contains("dev: backed up to state/dev/backups/"),
        "{shown}"
    );
    assert!(shown.contains("20.00 MiB"), "{shown}");

    let piped = project
        .tfenv()
        .args(["--terraform", tf, "backup", "dev"])
        .output()
        .unwrap();
    assert_eq!(piped.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("backing up"),
        "progress on a pipe:\n{stderr}"
    );
}
