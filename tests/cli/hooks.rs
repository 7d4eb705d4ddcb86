//! `[hooks]` with a fake terraform (DESIGN.md §11): what a hook receives, and every way
//! a hook goes wrong (fails, hangs, is missing, is interrupted) being one warning that
//! leaves the run's exit code as it was. The normal deploy with a real terraform is in
//! tests/e2e/hooks.rs.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::support::fake::FakeTerraform;
use crate::support::procs::is_live;
use crate::support::running::RunningTfenv;
use crate::support::{Project, stderr, stdout, wait_until};

/// A hook that writes what it received into `received/`: its stdin, `TFENV_EVENT`,
/// `TFENV_ENVIRONMENT` and its working directory, then says something on stdout and stderr.
const RECORDING_HOOK: &str = r#"mkdir -p received
cat > received/stdin.json
printf '%s\n' "$TFENV_EVENT" >> received/events
printf '%s\n' "$TFENV_ENVIRONMENT" > received/environment
pwd > received/cwd
echo "hook says hello on stdout"
echo "hook says hello on stderr" >&2"#;

/// The demo with `[hooks]` holding `hooks` (TOML lines) and the scripts `scripts` (name
/// under `hooks/`, body).
fn project_with_hooks(hooks: &str, scripts: &[(&str, &str)]) -> Project {
    let project = Project::demo();
    let toml = project.read("tfenv.toml");
    project.write("tfenv.toml", &format!("{toml}\n[hooks]\n{hooks}\n"));
    for (name, body) in scripts {
        project.script(&format!("hooks/{name}"), body);
    }
    project
}

fn events(project: &Project) -> Vec<String> {
    project
        .read_or_empty("received/events")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn on_deploy_gets_the_runs_json_document_on_stdin_and_stdout_stays_one_document() {
    let project = project_with_hooks(
        "on_deploy = [\"./hooks/record.sh\"]\non_failure = [\"./hooks/record.sh\"]",
        &[("record.sh", RECORDING_HOOK)],
    );
    let tf = FakeTerraform::working().install(&project);
    let output = project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes", "--output", "json"])
        .output()
        .unwrap();
    let (out, err) = (stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(0), "{err}");
    // The whole of stdout is one JSON document: the hook's stdout went to stderr.
    let document: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!("stdout is not one JSON document ({e}):\n{out}");
    });
    assert!(
        err.contains("[dev] on_deploy: hook says hello on stdout"),
        "{err}"
    );
    assert!(
        err.contains("[dev] on_deploy: hook says hello on stderr"),
        "{err}"
    );
    assert!(!err.contains("warning:"), "{err}");
    let received: serde_json::Value =
        serde_json::from_str(&project.read("received/stdin.json")).unwrap();
    assert_eq!(received, document, "the hook reads what deploy printed");
    assert_eq!(received["result"], "applied");
    assert_eq!(events(&project), ["deploy"]);
    assert_eq!(project.read("received/environment"), "dev\n");
    assert_eq!(
        std::path::Path::new(project.read("received/cwd").trim()),
        project.path().canonicalize().unwrap()
    );
}

#[test]
fn on_failure_gets_the_failed_run_and_the_exit_code_stays_terraforms() {
    let project = project_with_hooks(
        "on_deploy = [\"./hooks/record.sh\"]\non_failure = [\"./hooks/record.sh\"]",
        &[("record.sh", RECORDING_HOOK)],
    );
    // dev backs up before its deploys, so the failed run has a backup to name.
    let toml = project.read("tfenv.toml").replace(
        "var_files = [\"environments/common.tfvars\", \"environments/dev.tfvars\"]\n",
        "var_files = [\"environments/common.tfvars\", \"environments/dev.tfvars\"]\nbackup = true\n",
    );
    project.write("tfenv.toml", &toml);
    let tf = FakeTerraform::working()
        .on("apply", "echo 'Error: quota exceeded' >&2; exit 1")
        .install(&project);
    let output = project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes", "--log", "--output", "json"])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    // stdout: the one document, the failed run's entry (the error document's `error` in
    // it), the same the hook reads.
    let document: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(document["error"]["exit_code"], 1);
    assert_eq!(events(&project), ["failure"]);
    // What the run knew when apply failed, as its history record has it.
    let record = project.last_history("dev");
    assert_eq!(record["result"], "failed", "{record}");
    assert!(record["backup"].is_string(), "{record}");
    assert_eq!(document["backup"]["file"], record["backup"], "{document}");
    assert_eq!(document["log"], record["log"], "{document}");
    assert!(document["log"].is_string(), "{document}");
    assert_eq!(document["plan"], record["plan"], "{document}");
    assert!(document["plan"]["add"].is_number(), "{document}");
    assert_eq!(project.read("received/environment"), "dev\n");
    let received: serde_json::Value =
        serde_json::from_str(&project.read("received/stdin.json")).unwrap();
    assert_eq!(received["environment"], "dev");
    assert_eq!(received["command"], "deploy");
    assert_eq!(received["result"], "failed");
    assert_eq!(received["error"]["exit_code"], 1);
    assert_eq!(
        (&received["plan"], &received["backup"], &received["log"]),
        (&document["plan"], &document["backup"], &document["log"])
    );
    let message = received["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`terraform apply` for `dev` exited with code 1"),
        "{message}"
    );
}

#[test]
fn a_refused_deploy_runs_no_hook() {
    let project = project_with_hooks(
        "on_deploy = [\"./hooks/record.sh\"]\non_failure = [\"./hooks/record.sh\"]",
        &[("record.sh", RECORDING_HOOK)],
    );
    let tf = FakeTerraform::working().install(&project);
    // Production without a terminal and without --confirm: refused at the confirmation.
    let output = project
        .tfenv_with(&tf)
        .args(["deploy", "production", "--allow-dirty"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    // A usage error (an unknown environment) never started a run either.
    let output = project
        .tfenv_with(&tf)
        .args(["deploy", "nosuch", "--yes"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(events(&project), Vec::<String>::new());
}

#[test]
fn a_failing_hook_is_one_warning_naming_its_quoted_command_and_the_exit_code_stays() {
    let project = project_with_hooks(
        "on_deploy = [\"./hooks/fail.sh\", \"--channel\", \"ops & infra\"]",
        &[(
            "fail.sh",
            "echo 'curl: (6) Could not resolve host' >&2; exit 3",
        )],
    );
    let tf = FakeTerraform::working().install(&project);
    let output = project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes"])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        err.contains("[dev] on_deploy: curl: (6) Could not resolve host"),
        "{err}"
    );
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(
        warnings,
        [
            "warning: hook on_deploy (`./hooks/fail.sh --channel 'ops & infra'`) of `dev` exited with code 3; check its output above and its command in [hooks] of tfenv.toml"
        ],
        "{err}"
    );
    assert!(stdout(&output).contains("Applied to `dev`"));
}

#[test]
fn a_hook_that_is_not_found_is_a_warning_and_the_exit_code_stays() {
    let project = project_with_hooks("on_deploy = [\"./hooks/missing.sh\"]", &[]);
    let tf = FakeTerraform::working().install(&project);
    let output = project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes"])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    let warning = err
        .lines()
        .find(|l| {
            l.starts_with(
                "warning: hook on_deploy (`./hooks/missing.sh`) of `dev` could not be started",
            )
        })
        .unwrap_or_else(|| panic!("no warning:\n{err}"));
    assert!(warning.contains("No such file or directory"), "{warning}");
    assert!(
        warning.contains("check that `./hooks/missing.sh` exists and is executable"),
        "{warning}"
    );
}

#[test]
fn a_hook_that_never_reads_stdin_is_fine() {
    let project = project_with_hooks(
        "on_deploy = [\"./hooks/quiet.sh\"]",
        &[("quiet.sh", "exec 0<&-; echo $TFENV_EVENT > event")],
    );
    let tf = FakeTerraform::working().install(&project);
    let output = project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes"])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(!err.contains("warning:"), "{err}");
    assert_eq!(project.read("event"), "deploy\n");
}

/// A hook that writes its own pid and that of a child it waits for, then hangs.
const HANGING_HOOK: &str = "sleep 300 &\necho \"$$ $!\" > hook.pids\nwait";

fn hook_pids(project: &Project) -> Vec<Pid> {
    project
        .read("hook.pids")
        .split_whitespace()
        .map(|p| Pid::from_raw(p.parse().unwrap()))
        .collect()
}

fn assert_gone(pids: &[Pid]) {
    wait_until(
        "the hook's processes are gone",
        Duration::from_secs(5),
        || pids.iter().all(|&pid| !is_live(pid)),
    );
}

#[test]
fn a_hanging_hook_is_killed_at_the_timeout_with_its_children_and_the_exit_code_stays() {
    let project = project_with_hooks(
        "on_deploy = [\"./hooks/hang.sh\"]\ntimeout = \"1s\"",
        &[("hang.sh", HANGING_HOOK)],
    );
    let tf = FakeTerraform::working().install(&project);
    let started = Instant::now();
    let output = project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--yes", "--output", "json"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    assert!(
        err.contains("warning: hook on_deploy (`./hooks/hang.sh`) of `dev` did not finish within 1s and was killed; make it faster or raise `timeout` in [hooks] of tfenv.toml"),
        "{err}"
    );
    let document: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(document["result"], "applied");
    let pids = hook_pids(&project);
    assert_eq!(pids.len(), 2);
    assert_gone(&pids);
}

/// Runs `tfenv --terraform <tf> <args>` in a project whose hook hangs, with a Ctrl-C once
/// the hook runs: the exit code and stderr, the hook's processes checked gone.
fn ctrl_c_while_the_hook_runs(
    project: &Project,
    tf: &std::path::Path,
    args: &[&str],
) -> (Option<i32>, String) {
    let mut command = project.command();
    command.arg("--terraform").arg(tf).args(args);
    let mut run = RunningTfenv::spawn(command);
    wait_until("the hook runs", Duration::from_secs(30), || {
        project
            .read_or_empty("hook.pids")
            .split_whitespace()
            .count()
            == 2
    });
    let pids = hook_pids(project);
    run.signal(Signal::SIGINT);
    let (status, _) = run.wait_exit(Duration::from_secs(20));
    assert_gone(&pids);
    (status.code(), run.stderr())
}

#[test]
fn a_ctrl_c_while_a_hook_runs_kills_it_and_keeps_the_runs_exit_code() {
    let project = project_with_hooks(
        "on_deploy = [\"./hooks/hang.sh\"]",
        &[("hang.sh", HANGING_HOOK)],
    );
    let tf = FakeTerraform::working().install(&project);
    let (code, err) = ctrl_c_while_the_hook_runs(&project, &tf, &["deploy", "dev", "--yes"]);
    assert_eq!(code, Some(0), "the deploy had applied: {err}");
    assert!(
        err.contains("warning: hook on_deploy (`./hooks/hang.sh`) of `dev` was killed: tfenv was interrupted while it ran"),
        "{err}"
    );
}

#[test]
fn a_ctrl_c_while_on_drift_runs_kills_it_and_drift_still_exits_3() {
    let project = project_with_hooks(
        "on_drift = [\"./hooks/hang.sh\"]",
        &[("hang.sh", HANGING_HOOK)],
    );
    // dev's file was edited outside Terraform.
    let drifted = r#"{"format_version":"1.2","resource_drift":[{"address":"tfenvtest_file.app","mode":"managed","change":{"actions":["update"],"before":{"id":"a","content":"v1"},"after":{"id":"a","content":"edited"},"after_unknown":{}}}],"resource_changes":[]}"#;
    let tf = FakeTerraform::working()
        .on("show", format!("echo '{drifted}'"))
        .install(&project);
    let (code, err) = ctrl_c_while_the_hook_runs(&project, &tf, &["drift", "dev"]);
    assert_eq!(code, Some(3), "the check had found drift: {err}");
    assert!(
        err.contains("hook on_drift (`./hooks/hang.sh`) of `dev` was killed"),
        "{err}"
    );
}

#[test]
fn hooks_run_for_refresh_and_for_a_plan_bundle() {
    let project = project_with_hooks(
        "on_deploy = [\"./hooks/record.sh\"]",
        &[("record.sh", RECORDING_HOOK)],
    );
    let tf = FakeTerraform::working().install(&project);
    let output = project
        .tfenv_with(&tf)
        .args(["plan", "dev", "--out", "bundle"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        events(&project),
        Vec::<String>::new(),
        "a plan runs no hook"
    );
    let output = project
        .tfenv_with(&tf)
        .args(["deploy", "dev", "--plan", "bundle", "--yes"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let received: serde_json::Value =
        serde_json::from_str(&project.read("received/stdin.json")).unwrap();
    assert_eq!(received["command"], "deploy");
    assert_eq!(received["bundle"]["dir"], "bundle", "{received}");
    let output = project
        .tfenv_with(&tf)
        .args(["refresh", "dev", "--yes"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let received: serde_json::Value =
        serde_json::from_str(&project.read("received/stdin.json")).unwrap();
    assert_eq!(received["command"], "refresh");
    assert_eq!(events(&project), ["deploy", "deploy"]);
}

#[test]
fn a_hook_written_wrong_in_tfenv_toml_is_an_error_naming_the_key_with_an_example() {
    for (hooks, says) in [
        (
            "on_deploy = \"curl -d @- https://hooks.slack.com/x\"",
            "expected `[hooks] on_deploy` to be a command as a list of strings (e.g. [\"./hooks/notify.sh\", \"--channel\", \"ops\"])",
        ),
        ("on_failure = []", "[hooks] on_failure names no program"),
        (
            "on_deply = [\"./hooks/notify.sh\"]",
            "unknown field `on_deply`, expected one of `on_deploy`, `on_failure`, `on_drift`, `timeout`",
        ),
        (
            "timeout = \"forever\"",
            "[hooks] timeout `forever` is not a duration",
        ),
    ] {
        let project = project_with_hooks(hooks, &[]);
        let output = project.tfenv().args(["envs"]).output().unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{hooks}: {err}");
        assert!(err.contains(says), "{hooks}: {err}");
    }
}

#[test]
fn a_deploy_interrupted_during_apply_runs_on_failure_and_still_exits_130() {
    let project = project_with_hooks(
        "on_deploy = [\"./hooks/record.sh\"]\non_failure = [\"./hooks/record.sh\"]",
        &[("record.sh", RECORDING_HOOK)],
    );
    let tf = FakeTerraform::working()
        .on(
            "apply",
            "trap 'echo stopped >&2; exit 1' INT\ntouch \"$FAKE_DIR/applying\"\nsleep 30 & wait",
        )
        .install(&project);
    let mut deploy = project.command();
    deploy
        .arg("--terraform")
        .arg(&tf)
        .args(["deploy", "dev", "--yes"]);
    let mut run = RunningTfenv::spawn(deploy);
    wait_until("the apply runs", Duration::from_secs(30), || {
        project.join("applying").exists()
    });
    run.signal(Signal::SIGINT);
    let (status, _) = run.wait_exit(Duration::from_secs(30));
    let err = run.stderr();
    assert_eq!(status.code(), Some(130), "{err}");
    assert_eq!(events(&project), ["failure"], "{err}");
    let received: serde_json::Value =
        serde_json::from_str(&project.read("received/stdin.json")).unwrap();
    assert_eq!(received["result"], "interrupted", "{received}");
    assert_eq!(received["error"]["exit_code"], 130);
}
