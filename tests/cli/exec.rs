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
