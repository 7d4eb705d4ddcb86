//! The recorded run around deploy, restore and unlock, faults after a successful apply,
//! what reaches terraform (OS-string paths, `-no-color`), and what tfenv prints when
//! terraform fails or the command line is not what it expects — driven by a fake
//! terraform that logs each call's raw arguments.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::support::fake::FakeTerraform;
use crate::support::running::RunningTfenv;
use crate::support::{
    Project, expect_code, output_text, stderr as err_text, stdout_json, wait_until,
};

/// A project whose root module has `backend "pg" {}`: tfenv cannot read its lock, so
/// `unlock` goes straight to terraform force-unlock.
fn pg_project() -> Project {
    let project = Project::empty();
    project.write("main.tf", "terraform {\n  backend \"pg\" {}\n}\n");
    project.write(
        "environments/dev.backend.conf",
        "conn_str = \"postgres://tf@127.0.0.1/tfstate\"\n",
    );
    project
}

/// A folder where a file tfenv writes should be: no write can replace it.
fn block_with_a_folder(project: &Project, rel: &str) {
    std::fs::create_dir_all(project.join(rel).join("in-the-way")).unwrap();
}

fn warnings(json: &Value) -> Vec<String> {
    json["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings array: {json}"))
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

// --- a failure after a successful apply is not a failed deploy -------------------------

/// The warning says outputs.json keeps its previous content only when there was one.
#[test]
fn outputs_that_cannot_be_read_after_apply_say_whether_outputs_json_kept_anything() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on("output", "echo 'Error: no outputs' >&2; exit 1")
        .install(&project);
    let first = project.run_with(&tf, &["deploy", "dev", "--yes", "--output", "json"]);
    expect_code(&first, 0);
    let warning = &warnings(&stdout_json(&first))[0];
    assert!(
        warning.contains("there is no outputs.json yet; run `tfenv outputs dev` later"),
        "{warning}"
    );
    assert!(!warning.contains("previous content"), "{warning}");
    assert!(!project.join("state/dev/outputs.json").exists());

    project.write("state/dev/outputs.json", "{}");
    let second = project.run_with(&tf, &["deploy", "dev", "--yes", "--output", "json"]);
    expect_code(&second, 0);
    let warning = &warnings(&stdout_json(&second))[0];
    assert!(
        warning.contains("outputs.json keeps its previous content; run `tfenv outputs dev` later"),
        "{warning}"
    );
}

#[test]
fn outputs_json_that_cannot_be_written_after_apply_is_applied_with_a_warning() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    block_with_a_folder(&project, "state/dev/outputs.json");
    let output = project.run_with(&tf, &["deploy", "dev", "--yes", "--output", "json"]);
    expect_code(&output, 0);
    let json = stdout_json(&output);
    assert_eq!(json["result"], "applied", "{json}");
    assert_eq!(json["outputs_written"], false, "{json}");
    let warnings = warnings(&json);
    assert_eq!(warnings.len(), 1, "{json}");
    assert!(
        warnings[0].contains("the change was applied, but writing outputs.json failed"),
        "{json}"
    );
    assert!(
        err_text(&output)
            .contains("warning: the change was applied, but writing outputs.json failed"),
        "{}",
        output_text(&output)
    );
    let record = project.last_history("dev");
    assert_eq!(record["result"], "applied", "{record}");
    assert_eq!(record["exit_code"], 0, "{record}");
}

#[test]
fn a_history_that_cannot_be_read_while_pruning_does_not_fail_an_applied_deploy() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    // Production prunes after the apply (backup_keep = 50) and reads history to find the
    // last good backup; this history has bytes that are not UTF-8.
    std::fs::create_dir_all(project.join("state/production")).unwrap();
    std::fs::write(
        project.join("state/production/history.jsonl"),
        b"{\"command\":\"deploy\",\"result\":\"appl\xff\xfeed\"}\n",
    )
    .unwrap();
    let output = project.run_with(
        &tf,
        &[
            "deploy",
            "production",
            "--yes",
            "--confirm",
            "production",
            "--output",
            "json",
        ],
    );
    expect_code(&output, 0);
    let json = stdout_json(&output);
    assert_eq!(json["result"], "applied", "{json}");
    assert_eq!(json["outputs_written"], true, "{json}");
    let record = project.last_history("production");
    assert_eq!(record["result"], "applied", "{record}");
    assert_eq!(record["exit_code"], 0, "{record}");
}

#[test]
fn pruning_that_fails_after_apply_is_applied_with_a_warning_in_json() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    // dev takes no backup before its apply, so only the pruning after it meets the fault.
    let toml = project.read("tfenv.toml").replace(
        "var_files = [\"environments/common.tfvars\", \"environments/dev.tfvars\"]\n",
        "var_files = [\"environments/common.tfvars\", \"environments/dev.tfvars\"]\nbackup_keep = 1\n",
    );
    project.write("tfenv.toml", &toml);
    // Two listed backups, so one is due for pruning; the manifest's lock file is a
    // folder, so the manifest cannot be rewritten.
    let mut manifest = String::new();
    for old in [
        "terraform.tfstate.20200101-000000",
        "terraform.tfstate.20200102-000000",
    ] {
        project.write(&format!("state/dev/backups/{old}"), "{}");
        manifest.push_str(&format!(
            "{{\"file\":\"{old}\",\"sha256\":\"00\",\"bytes\":2,\"serial\":1,\"lineage\":\"abc\",\"terraform_version\":\"1.11.4\",\"created\":\"{}T00:00:00Z\",\"reason\":\"manual\"}}\n",
            if old.ends_with("0101-000000") { "2020-01-01" } else { "2020-01-02" }
        ));
    }
    project.write("state/dev/backups/MANIFEST.jsonl", &manifest);
    block_with_a_folder(&project, "state/dev/backups/.MANIFEST.jsonl.lock");
    let output = project.run_with(&tf, &["deploy", "dev", "--yes", "--output", "json"]);
    expect_code(&output, 0);
    let json = stdout_json(&output);
    assert_eq!(json["result"], "applied", "{json}");
    let warnings = warnings(&json);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("pruning old backups failed")),
        "{json}"
    );
    assert_eq!(project.last_history("dev")["result"], "applied");
}

#[test]
fn a_history_that_cannot_be_written_after_apply_is_applied_with_a_warning() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    block_with_a_folder(&project, "state/dev/history.jsonl");
    let output = project.run_with(&tf, &["deploy", "dev", "--yes", "--output", "json"]);
    expect_code(&output, 0);
    let json = stdout_json(&output);
    assert_eq!(json["result"], "applied", "{json}");
    assert!(
        warnings(&json)
            .iter()
            .any(|w| w.contains("could not record the run in history")),
        "{json}"
    );
    assert!(
        err_text(&output).contains("warning: could not record the run in history"),
        "{}",
        output_text(&output)
    );
}

// --- one recorded run for deploy, restore and unlock -----------------------------------

#[test]
fn restore_surfaces_a_history_that_cannot_be_written() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    expect_code(&project.run_with(&tf, &["backup", "dev"]), 0);
    block_with_a_folder(&project, "state/dev/history.jsonl");

    // Refused: the refusal stands, and the lost record is said.
    let refused = project.run_with(&tf, &["restore", "dev", "latest"]);
    expect_code(&refused, 5);
    assert!(
        err_text(&refused).contains("warning: could not record the run in history"),
        "{}",
        output_text(&refused)
    );

    // Restored: the state was pushed, so the restore succeeded; the record is a warning.
    let restored = project.run_with(
        &tf,
        &["restore", "dev", "latest", "--yes", "--output", "json"],
    );
    expect_code(&restored, 0);
    let json = stdout_json(&restored);
    assert!(
        warnings(&json)
            .iter()
            .any(|w| w.contains("could not record the run in history")),
        "{json}"
    );
    assert!(
        project.read("calls.log").contains("state push"),
        "the state was pushed"
    );
}

#[test]
fn unlock_surfaces_a_history_that_cannot_be_written() {
    let project = pg_project();
    let tf = FakeTerraform::working().install(&project);
    block_with_a_folder(&project, "state/dev/history.jsonl");

    let refused = project.run_with(&tf, &["unlock", "dev", "some-id"]);
    expect_code(&refused, 5);
    assert!(
        err_text(&refused).contains("warning: could not record the run in history"),
        "{}",
        output_text(&refused)
    );

    let unlocked = project.run_with(
        &tf,
        &["unlock", "dev", "some-id", "--yes", "--output", "json"],
    );
    expect_code(&unlocked, 0);
    let json = stdout_json(&unlocked);
    assert_eq!(json["unlocked"], "some-id", "{json}");
    assert!(
        warnings(&json)
            .iter()
            .any(|w| w.contains("could not record the run in history")),
        "{json}"
    );
}

/// Runs `args` with a `git` on PATH that hangs once `slow` exists, interrupts tfenv
/// while git runs, and returns how tfenv ended.
fn interrupt_while_git_runs(project: &Project, tf: &Path, args: &[&str]) -> (Option<i32>, String) {
    let started = project.join("git-started");
    project.script(
        "bin/git",
        &format!(
            // `exec`: the interrupt tfenv forwards reaches `sleep` itself, with no shell in
            // between to decide what to do with it.
            "if [ -f '{slow}' ]; then touch '{started}'; exec sleep 30; fi\necho 'fatal: not a git repository' >&2; exit 128",
            slow = project.join("slow").display(),
            started = started.display()
        ),
    );
    std::fs::write(project.join("slow"), "").unwrap();
    let mut tfenv = project.command();
    tfenv
        .env("PATH", project.fake_path())
        .arg("--terraform")
        .arg(tf)
        .args(args);
    let mut run = RunningTfenv::spawn(tfenv);
    wait_until(
        &format!("git runs for tfenv {args:?}"),
        Duration::from_secs(30),
        || started.exists(),
    );
    run.signal(Signal::SIGINT);
    let (status, _) = run.wait_exit(Duration::from_secs(30));
    (status.code(), run.stderr())
}

#[test]
fn an_interrupt_while_git_runs_is_recorded_as_interrupted_by_deploy_restore_and_unlock() {
    // Production checks the tree is clean: git stopped by Ctrl-C is not a refusal.
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let (code, stderr) = interrupt_while_git_runs(
        &project,
        &tf,
        &["deploy", "production", "--yes", "--confirm", "production"],
    );
    assert_eq!(code, Some(130), "{stderr}");
    let record = project.last_history("production");
    assert_eq!(record["result"], "interrupted", "{record}");
    assert_eq!(record["exit_code"], 130, "{record}");
    assert!(!project.read("calls.log").contains("plan"), "nothing ran");

    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    expect_code(&project.run_with(&tf, &["backup", "dev"]), 0);
    let (code, stderr) =
        interrupt_while_git_runs(&project, &tf, &["restore", "dev", "latest", "--yes"]);
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(project.last_history("dev")["result"], "interrupted");
    assert!(
        !project.read("calls.log").contains("push"),
        "nothing pushed"
    );

    let project = pg_project();
    let tf = FakeTerraform::working().install(&project);
    let (code, stderr) =
        interrupt_while_git_runs(&project, &tf, &["unlock", "dev", "some-id", "--yes"]);
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(project.last_history("dev")["result"], "interrupted");
    assert!(
        !project.read("calls.log").contains("force-unlock"),
        "nothing unlocked"
    );
}

#[test]
fn ctrl_z_and_ctrl_c_while_git_runs_do_not_speak_of_a_state_lock() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let started = project.join("git-started");
    project.script(
        "bin/git",
        &format!("touch '{}'; sleep 30; exit 128", started.display()),
    );
    let mut tfenv = project.command();
    tfenv
        .env("PATH", project.fake_path())
        .arg("--terraform")
        .arg(&tf)
        .args(["deploy", "production", "--yes", "--confirm", "production"]);
    let mut run = RunningTfenv::spawn(tfenv);
    wait_until("git runs", Duration::from_secs(30), || started.exists());
    run.signal(Signal::SIGTSTP);
    run.wait_for_stderr("Ctrl-Z ignored", Duration::from_secs(10));
    run.signal(Signal::SIGINT);
    let (status, _) = run.wait_exit(Duration::from_secs(30));
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("tfenv: Ctrl-Z ignored while `git` runs; press Ctrl-C to stop it"),
        "{stderr}"
    );
    assert!(
        stderr.contains("waiting for `git` to stop (Ctrl-C again to force)"),
        "{stderr}"
    );
    assert!(!stderr.contains("state lock"), "{stderr}");
}

// --- init if needed, in one place -----------------------------------------------------

#[test]
fn every_command_that_inits_first_offers_to_git_ignore_state() {
    for args in [
        &["backup", "dev"][..],
        &["outputs", "dev"],
        &["deploy", "dev", "--yes"],
    ] {
        let project = Project::demo();
        let tf = FakeTerraform::working().install(&project);
        project.git(&["init", "-q"]);
        let output = project.run_with(&tf, args);
        expect_code(&output, 0);
        assert!(
            err_text(&output).contains("git does not ignore `state/`"),
            "tfenv {args:?}\n{}",
            output_text(&output)
        );
    }
}

// --- paths reach terraform as the OS has them -----------------------------------------

#[test]
fn a_project_in_a_folder_whose_name_is_not_utf8_reaches_terraform_intact() {
    let project = Project::empty();
    let dir = project.demo_in_folder(b"proj\xff\xfe");
    let tf = FakeTerraform::working().install(&project);
    let output = project
        .tfenv_with(&tf)
        .arg("-C")
        .arg(&dir)
        .args(["deploy", "dev", "--yes"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    expect_code(&output, 0);
    let mut calls = std::fs::read(project.join("calls.log")).unwrap();
    calls.extend(std::fs::read(project.join("data-dirs.log")).unwrap());
    let raw = |rel: &str| {
        let mut bytes = dir.as_os_str().as_bytes().to_vec();
        bytes.extend_from_slice(rel.as_bytes());
        bytes
    };
    let has = |needle: &[u8]| calls.windows(needle.len()).any(|w| w == needle);
    for rel in [
        "/environments/dev.backend.conf",
        "/environments/dev.tfvars",
        "/state/dev/terraform.plan",
        "/examples/quickstart/.terraform/tfenv/dev",
    ] {
        assert!(
            has(&raw(rel)),
            "`{rel}` under the project did not reach terraform byte for byte:\n{}",
            String::from_utf8_lossy(&calls)
        );
    }
    assert!(
        !has("\u{FFFD}".as_bytes()),
        "a path was converted lossily:\n{}",
        String::from_utf8_lossy(&calls)
    );
}

#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error_not_a_panic() {
    let project = Project::empty();
    let bad = OsStr::from_bytes(b"dev\xff");
    let output = project.tfenv().arg("deploy").arg(bad).output().unwrap();
    expect_code(&output, 2);
    assert!(
        err_text(&output).contains("is not valid UTF-8"),
        "{}",
        output_text(&output)
    );
    assert!(
        !err_text(&output).contains("panicked"),
        "{}",
        output_text(&output)
    );

    let output = project
        .tfenv()
        .arg("deploy")
        .arg(bad)
        .args(["--output", "json"])
        .output()
        .unwrap();
    expect_code(&output, 2);
    let json = stdout_json(&output);
    assert_eq!(json["error"]["exit_code"], 2, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not valid UTF-8"),
        "{json}"
    );
}

// --- colour ---------------------------------------------------------------------------

#[test]
fn terraform_text_tfenv_keeps_has_no_colour_codes() {
    // state pull fails (the pre-unlock backup), then force-unlock fails: both messages
    // reach stderr and history.jsonl.
    for (failing, body) in [
        (
            "state pull",
            r#"red "Error: AccessDenied reading the state"; exit 1"#,
        ),
        (
            "force-unlock",
            r#"red "Failed to unlock state: lock id does not match"; exit 1"#,
        ),
    ] {
        let project = pg_project();
        let command = failing.split(' ').next().unwrap();
        let tf = FakeTerraform::working().on(command, body).install(&project);
        let output = project.run_with(&tf, &["unlock", "dev", "some-id", "--yes"]);
        expect_code(&output, 1);
        let stderr = err_text(&output);
        assert!(
            stderr.contains("AccessDenied") || stderr.contains("Failed to unlock state"),
            "{}",
            output_text(&output)
        );
        assert!(!stderr.contains('\u{1b}'), "{failing}: {stderr:?}");
        let history = project.read("state/dev/history.jsonl");
        assert!(!history.contains("\\u001b"), "{failing}: {history}");
        for call in project.read("calls.log").lines() {
            assert!(
                call.split(' ').any(|a| a == "-no-color"),
                "terraform ran without -no-color: `{call}`"
            );
        }
    }
}

#[test]
fn terraform_output_streamed_live_has_no_escape_codes() {
    let project = Project::demo();
    // A terraform (a shim, a fork) that colours and retitles whatever it is told.
    let tf = FakeTerraform::working()
        .on(
            "plan",
            format!(
                r#"printf '\033[31mred plan line\033[0m\n\033]0;pwned\007titled line\n'; {}"#,
                crate::support::fake::WRITE_PLAN
            ),
        )
        .install(&project);
    let output = project.run_with(
        &tf,
        &["deploy", "production", "--yes", "--confirm", "production"],
    );
    expect_code(&output, 0);
    let stderr = err_text(&output);
    assert!(stderr.contains("[production] red plan line"), "{stderr}");
    assert!(stderr.contains("[production] titled line"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    let logs = project.join("state/production/logs");
    for log in std::fs::read_dir(logs).unwrap() {
        let text = std::fs::read_to_string(log.unwrap().path()).unwrap();
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }
}

#[test]
fn no_color_turns_off_colour_in_verbose_logs() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let output = project
        .tfenv_with(&tf)
        .env_remove("NO_COLOR")
        .args(["--no-color", "-v", "init", "dev"])
        .output()
        .unwrap();
    expect_code(&output, 0);
    let stderr = err_text(&output);
    assert!(stderr.contains("DEBUG"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

// --- JSON requests ----------------------------------------------------------------------

#[test]
fn version_help_completions_and_man_answer_a_json_request_in_json() {
    let project = Project::empty();
    let output = project
        .tfenv()
        .args(["--version", "--output", "json"])
        .output()
        .unwrap();
    expect_code(&output, 0);
    assert_eq!(
        stdout_json(&output),
        serde_json::json!({ "version": env!("CARGO_PKG_VERSION") })
    );
    for args in [
        &["--help", "--output", "json"][..],
        &["deploy", "--help", "--output=json"],
        &["completions", "bash", "--output", "json"],
        &["man", "--output", "json"],
    ] {
        let output = project.tfenv().args(args).output().unwrap();
        expect_code(&output, 2);
        let json = stdout_json(&output);
        assert_eq!(json["error"]["exit_code"], 2, "tfenv {args:?}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not JSON"),
            "tfenv {args:?}: {json}"
        );
    }
}

#[test]
fn lock_that_cannot_be_read_keeps_its_json_shape() {
    let project = Project::empty();
    project.write("main.tf", "terraform {\n  backend \"azurerm\" {}\n}\n");
    project.write(
        "environments/dev.backend.conf",
        "storage_account_name = \"a\"\ncontainer_name = \"c\"\nkey = \"k\"\n",
    );
    std::fs::create_dir_all(project.join("empty-bin")).unwrap();
    let output = project
        .tfenv()
        .env("PATH", project.join("empty-bin"))
        .args(["lock", "dev", "--output", "json"])
        .output()
        .unwrap();
    expect_code(&output, 1);
    let json = stdout_json(&output);
    for key in [
        "environment",
        "backend",
        "supported",
        "held",
        "stale",
        "holder",
        "source",
        "note",
        "error",
    ] {
        assert!(json.get(key).is_some(), "`{key}` missing: {json}");
    }
    assert!(json["error"].as_str().unwrap().contains("az"), "{json}");
}

// --- terraform's errors: cut, and where the rest is -------------------------------------

#[test]
fn a_long_terraform_error_is_cut_with_a_marker_and_init_log_keeps_all_of_it() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on(
            "init",
            r#"echo 'Error: Failed to get existing workspaces' >&2; for i in $(seq 1 29); do echo "detail line $i" >&2; done; exit 1"#,
        )
        .install(&project);
    let output = project.run_with(&tf, &["init", "dev"]);
    expect_code(&output, 1);
    let stderr = err_text(&output);
    assert!(stderr.contains("detail line 19"), "{stderr}");
    assert!(!stderr.contains("detail line 20"), "{stderr}");
    assert!(
        stderr.contains("… (10 more lines; full output: rerun with `tfenv -vv …`)"),
        "{stderr}"
    );

    let output = project.run_with(&tf, &["init", "dev", "--log"]);
    expect_code(&output, 1);
    let stderr = err_text(&output);
    assert!(
        stderr.contains("… (10 more lines; full output: `tfenv -vv …` or state/dev/logs/init-"),
        "{stderr}"
    );
    let logs: Vec<PathBuf> = std::fs::read_dir(project.join("state/dev/logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(log.contains("detail line 29"), "{log}");

    let output = project.run_with(&tf, &["-vv", "init", "dev"]);
    expect_code(&output, 1);
    let stderr = err_text(&output);
    assert!(stderr.contains("detail line 29"), "{stderr}");
    assert!(!stderr.contains("more lines"), "{stderr}");
}

#[test]
fn an_apply_that_fails_printing_only_the_state_keeps_it_out_of_errors_and_history() {
    use std::os::unix::fs::PermissionsExt;
    let secret = "s3cr3t-token-value";
    let project = Project::demo();
    // What terraform does when it cannot save the state: the state on stdout, exit 1.
    let tf = FakeTerraform::working()
        .on(
            "apply",
            format!(
                r#"echo '{{"version":4,"outputs":{{"api_token":{{"value":"{secret}"}}}}}}'; exit 1"#
            ),
        )
        .install(&project);
    // -q: no live stream, so stderr is tfenv's own words only.
    let output = project.run_with(&tf, &["-q", "deploy", "dev", "--yes"]);
    expect_code(&output, 1);
    let stderr = err_text(&output);
    assert!(
        stderr.contains(
            "`terraform apply` for `dev` exited with code 1 and printed no error; what it printed is not shown: it may hold state values"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
    let record = project.last_history("dev");
    assert_eq!(record["result"], "failed", "{record}");
    assert!(!record.to_string().contains(secret), "{record}");

    // Production keeps a log: the message says where terraform's output is, and only the
    // log (0600) has it.
    let output = project.run_with(
        &tf,
        &[
            "-q",
            "deploy",
            "production",
            "--yes",
            "--confirm",
            "production",
        ],
    );
    expect_code(&output, 1);
    let stderr = err_text(&output);
    assert!(
        stderr.contains("printed no error; its full output is in state/production/logs/deploy-"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
    assert!(
        !project
            .read("state/production/history.jsonl")
            .contains(secret)
    );
    let log = std::fs::read_dir(project.join("state/production/logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("deploy-"))
        .unwrap();
    assert!(std::fs::read_to_string(&log).unwrap().contains(secret));
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", log.display());
}

// --- wording ------------------------------------------------------------------------------

#[test]
fn unlock_refused_for_want_of_flags_says_to_check_the_lock_not_a_plan() {
    let project = pg_project();
    let tf = FakeTerraform::working().install(&project);
    let output = project.run_with(&tf, &["unlock", "dev", "some-id"]);
    expect_code(&output, 5);
    let stderr = err_text(&output);
    assert!(
        stderr
            .contains("check with `tfenv lock dev` that no run holds it any more, then pass --yes"),
        "{stderr}"
    );
    assert!(!stderr.contains("plan"), "{stderr}");
}

#[test]
fn refresh_help_describes_allow_dirty_as_a_refresh() {
    let project = Project::empty();
    let help = |command: &str| {
        let output = project.tfenv().args([command, "--help"]).output().unwrap();
        expect_code(&output, 0);
        String::from_utf8(output.stdout).unwrap()
    };
    let refresh = help("refresh");
    let line = refresh
        .lines()
        .find(|l| l.contains("--allow-dirty"))
        .unwrap_or_else(|| panic!("{refresh}"));
    assert!(line.contains("Refresh production"), "{line}");
    let deploy = help("deploy");
    let line = deploy
        .lines()
        .find(|l| l.contains("--allow-dirty"))
        .unwrap_or_else(|| panic!("{deploy}"));
    assert!(line.contains("Deploy production"), "{line}");
}

// --- the shape of the JSON documents ----------------------------------------------------

/// Every `seconds` anywhere in `json`, as printed.
fn all_seconds(json: &Value, into: &mut Vec<String>) {
    match json {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "seconds" {
                    into.push(value.to_string());
                }
                all_seconds(value, into);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| all_seconds(v, into)),
        _ => {}
    }
}

/// `seconds` is a duration in milliseconds in every document: `init`, a deploy, a plan,
/// and the history records.
#[test]
fn seconds_are_rounded_to_milliseconds_in_every_document() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on("init", "sleep 0.0123; mkdir -p \"$TF_DATA_DIR\"")
        .on("apply", "sleep 0.0123")
        .install(&project);
    let mut seen = Vec::new();
    for args in [
        &["init", "dev", "--output", "json"][..],
        &["deploy", "dev", "--yes", "--output", "json"],
        &["plan", "dev", "--output", "json"],
        &["history", "dev", "--output", "json"],
    ] {
        let output = project.run_with(&tf, args);
        expect_code(&output, 0);
        let before = seen.len();
        all_seconds(&stdout_json(&output), &mut seen);
        assert!(
            seen.len() > before,
            "{args:?}: no seconds: {}",
            output_text(&output)
        );
    }
    for printed in &seen {
        let decimals = printed.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(
            decimals <= 3,
            "`seconds: {printed}` is not in milliseconds: {seen:?}"
        );
    }
}

/// A gcs project with the shared ledger on, its `gcloud` the fake storage of
/// `support::clouds` behind a wrapper that, while the file `slow` exists, sleeps on
/// every upload (`storage cp` to `gs://`) after touching `started`.
fn ledger_project_with_slow_uploads() -> (Project, PathBuf, crate::support::clouds::FakeCloud) {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[project]\nledger = \"backend\"\n[environments.dev]\ntier = \"development\"\nbackend_config = \"environments/dev.backend.conf\"\nvar_files = [\"environments/dev.tfvars\"]\n",
    );
    project.write("main.tf", "terraform {\n  backend \"gcs\" {}\n}\n");
    project.write(
        "environments/dev.backend.conf",
        "bucket = \"b\"\nprefix = \"app\"\n",
    );
    project.write("environments/dev.tfvars", "");
    let fake = crate::support::clouds::FakeCloud::gcloud(&project, &[]);
    std::fs::rename(project.join("bin/gcloud"), project.join("bin/gcloud-store")).unwrap();
    let started = project.join("started");
    project.script(
        "bin/gcloud",
        &format!(
            "if [ -f '{slow}' ] && [ \"$2\" = cp ] && [[ \"$4\" == gs://* ]]; then touch '{started}'; exec sleep 30; fi\nexec '{store}' \"$@\"",
            slow = project.join("slow").display(),
            started = started.display(),
            store = project.join("bin/gcloud-store").display(),
        ),
    );
    (project, started, fake)
}

#[test]
fn ctrl_c_during_the_shared_ledger_upload_after_an_apply_keeps_the_runs_outcome() {
    let (project, started, fake) = ledger_project_with_slow_uploads();
    let tf = FakeTerraform::working()
        .at("fake/terraform")
        .install(&project);
    std::fs::write(project.join("slow"), "").unwrap();
    let mut tfenv = project.command();
    tfenv
        .env("PATH", project.fake_path())
        .arg("--terraform")
        .arg(&tf)
        .args(["deploy", "dev", "--yes"]);
    let mut run = RunningTfenv::spawn(tfenv);
    wait_until("the upload starts", Duration::from_secs(30), || {
        started.exists()
    });
    run.signal(Signal::SIGINT);
    let (status, took) = run.wait_exit(Duration::from_secs(20));
    let text = run.output_text();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(took < Duration::from_secs(20), "{text}");
    assert!(text.contains("Applied to `dev`"), "{text}");
    assert!(
        text.contains("the upload to the shared ledger of `dev` was cut short (interrupted)")
            && text.contains("the next tfenv command that writes the ledger uploads it"),
        "{text}"
    );
    assert!(!text.contains("tfenv: interrupted"), "{text}");
    let record = project.last_history("dev");
    assert_eq!(record["result"], "applied", "{record}");
    assert_eq!(record["exit_code"], 0, "{record}");

    // The next command that writes the ledger uploads the record.
    std::fs::remove_file(project.join("slow")).unwrap();
    let output = project
        .tfenv_with(&tf)
        .env("PATH", project.fake_path())
        .args(["backup", "dev"])
        .output()
        .unwrap();
    let output = crate::support::expecting(output, 0);
    let records = fake.names("b/app/default.tfstate.tfenv/history/");
    assert_eq!(records.len(), 1, "{records:?}\n{}", output_text(&output));
}
