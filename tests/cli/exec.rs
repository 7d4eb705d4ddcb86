//! `tfenv exec` faults a fake terraform produces on demand: killed by a signal, Ctrl-C
//! while it runs, a JSON request, calls tfenv refuses before any terraform runs.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};

use crate::support::fake::FakeTerraform;
use crate::support::running::RunningTfenv;
use crate::support::{Project, expect_code, output_text, stdout_json};

fn run(project: &Project, terraform: &std::path::Path, args: &[&str]) -> std::process::Output {
    project
        .tfenv_with(terraform)
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap()
}

#[test]
fn exec_reports_terraform_killed_by_a_signal_as_128_plus_the_signal() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on("console", "kill -TERM $$")
        .install(&project);
    let output = run(&project, &tf, &["exec", "dev", "--", "console"]);
    expect_code(&output, 128 + 15);
}

#[test]
fn exec_with_output_json_is_refused_with_one_json_document() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let output = run(
        &project,
        &tf,
        &["exec", "dev", "--output", "json", "--", "output", "-json"],
    );
    expect_code(&output, 2);
    let doc = stdout_json(&output);
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("output -json"),
        "{doc:#}"
    );
    assert!(!project.read_or_empty("calls.log").contains("output"));
}

#[test]
fn exec_of_init_or_chdir_is_refused_before_terraform_runs() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let init = run(&project, &tf, &["exec", "dev", "--", "init", "-upgrade"]);
    expect_code(&init, 2);
    assert!(
        output_text(&init).contains("tfenv init"),
        "{}",
        output_text(&init)
    );
    let chdir = run(&project, &tf, &["exec", "dev", "--", "-chdir=..", "plan"]);
    expect_code(&chdir, 2);
    assert!(project.read_or_empty("calls.log").is_empty());
}

#[test]
fn exec_of_an_unknown_environment_names_the_known_ones() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let output = run(&project, &tf, &["exec", "devv", "--", "state", "list"]);
    assert_ne!(output.status.code(), Some(0));
    assert!(
        output_text(&output).contains("dev"),
        "{}",
        output_text(&output)
    );
    assert!(project.read_or_empty("calls.log").is_empty());
}

/// Without a terminal (CI, a pipe), tfenv passes the interrupt on to terraform and
/// ends with the code terraform ends with.
#[test]
fn ctrl_c_during_exec_reaches_terraform_and_tfenv_ends_as_it_ends() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on(
            "console",
            "trap 'echo terraform-got-interrupt >&2; exit 7' INT; echo console-ready >&2; while :; do sleep 0.1; done",
        )
        .install(&project);
    let mut cmd = project.command();
    cmd.arg("--terraform")
        .arg(&tf)
        .args(["exec", "dev", "--", "console"]);
    let mut running = RunningTfenv::spawn(cmd);
    running.wait_for_stderr("console-ready", Duration::from_secs(30));
    kill(running.pid(), Signal::SIGINT).unwrap();
    let (status, _) = running.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(7), "{}", running.output_text());
    assert!(running.stderr().contains("terraform-got-interrupt"));
}

#[test]
fn a_changing_exec_that_terraform_fails_is_recorded_with_its_exit_code() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on("taint", "echo 'no such resource' >&2; exit 3")
        .install(&project);
    let output = run(
        &project,
        &tf,
        &["exec", "dev", "--yes", "--", "taint", "a.b"],
    );
    expect_code(&output, 3);
    let record = project.last_history("dev");
    assert_eq!(record["command"], "exec");
    assert_eq!(record["terraform_command"], "taint");
    assert_eq!(record["result"], "failed");
    assert_eq!(record["exit_code"], 3);
    // The fake's state (serial 3, no resources, a lineage) was backed up first.
    assert!(record["backup"].is_string(), "{record:#}");
}

#[test]
fn repeated_failing_execs_keep_one_backup_of_an_unchanged_state() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on("taint", "echo 'no such resource' >&2; exit 3")
        .install(&project);
    let args = ["exec", "dev", "--yes", "--", "taint", "a.b"];
    expect_code(&run(&project, &tf, &args), 3);
    let first = project.last_history("dev")["backup"].clone();
    let again = run(&project, &tf, &args);
    expect_code(&again, 3);
    assert!(
        output_text(&again).contains("state unchanged since backup"),
        "{}",
        output_text(&again)
    );
    // The history of the second run names the backup that holds its state.
    assert_eq!(project.last_history("dev")["backup"], first);
    let backups = stdout_json(&run(&project, &tf, &["backups", "dev", "--output", "json"]));
    let pre_exec = backups["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["reason"] == "pre-exec")
        .count();
    assert_eq!(pre_exec, 1, "{backups:#}");
}

#[test]
fn exec_refuses_to_apply_a_saved_plan_file() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    for args in [
        &["exec", "staging", "--yes", "--", "apply", "/tmp/p.plan"][..],
        &[
            "exec",
            "production",
            "--yes",
            "--confirm",
            "production",
            "--",
            "apply",
            "-auto-approve",
            "d.plan",
        ],
    ] {
        let output = run(&project, &tf, args);
        expect_code(&output, 2);
        let text = output_text(&output);
        assert!(text.contains("saved plan"), "{text}");
        assert!(text.contains("tfenv deploy ENV --plan"), "{text}");
    }
    assert!(project.read_or_empty("calls.log").is_empty());
}

#[test]
fn exec_refuses_workspace_new_select_and_delete_and_runs_list() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    for sub in ["new", "select", "delete"] {
        let output = run(
            &project,
            &tf,
            &["exec", "dev", "--yes", "--", "workspace", sub, "other"],
        );
        expect_code(&output, 2);
        assert!(
            output_text(&output).contains("workspace ="),
            "{}",
            output_text(&output)
        );
    }
    assert!(!project.read_or_empty("calls.log").contains("workspace"));
    expect_code(
        &run(&project, &tf, &["exec", "dev", "--", "workspace", "list"]),
        0,
    );
    assert!(
        project
            .read_or_empty("calls.log")
            .contains("workspace list")
    );
}

#[test]
fn tfenv_flags_after_the_terraform_subcommand_need_the_double_dash() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let output = run(
        &project,
        &tf,
        &["exec", "dev", "apply", "--yes", "-auto-approve"],
    );
    expect_code(&output, 2);
    let text = output_text(&output);
    assert!(text.contains("<ENV> -- <TERRAFORM_ARGS>"), "{text}");
    // After `--`, tfenv's options are pointed out rather than passed to terraform.
    let after = run(
        &project,
        &tf,
        &["exec", "dev", "--", "apply", "--yes", "-auto-approve"],
    );
    expect_code(&after, 2);
    assert!(
        output_text(&after).contains("goes before `--`"),
        "{}",
        output_text(&after)
    );
    assert!(!project.read_or_empty("calls.log").contains("apply"));
}

#[test]
fn refusal_hints_point_at_what_shows_the_change() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let state_rm = run(&project, &tf, &["exec", "dev", "--", "state", "rm", "a.b"]);
    expect_code(&state_rm, 5);
    let text = output_text(&state_rm);
    assert!(text.contains("-- state list"), "{text}");
    assert!(!text.contains("-- plan"), "{text}");
    let destroy = run(&project, &tf, &["exec", "dev", "--", "destroy"]);
    expect_code(&destroy, 5);
    assert!(
        output_text(&destroy).contains("-- plan -destroy"),
        "{}",
        output_text(&destroy)
    );
}
