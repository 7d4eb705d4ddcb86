//! The policy gate's faults, with a fake terraform: a Ctrl-C stops the policy command
//! like terraform (one SIGINT to its process group), the run exits 130 and the plan's
//! JSON is gone; the policy sees exactly what `show -json` printed.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::fake::{FakeTerraform, PLAN_JSON};
use crate::support::running::RunningTfenv;
use crate::support::{Project, wait_until};

/// The demo with `policy.sh` as every environment's policy.
fn project_with_policy(body: &str) -> Project {
    let project = Project::demo();
    let toml = project.read("tfenv.toml");
    project.write(
        "tfenv.toml",
        &format!("{toml}\n[policy]\ncommand = [\"./policy.sh\", \"{{plan_json}}\"]\n"),
    );
    project.script("policy.sh", body);
    project
}

#[test]
fn a_ctrl_c_while_the_policy_runs_stops_it_and_removes_the_plan_json() {
    // It runs in the project root: its files land there.
    let project = project_with_policy(
        "trap 'echo got-sigint >> signals.log; exit 1' INT\ncp \"$1\" seen.json\nsleep 30 & wait",
    );
    let tf = FakeTerraform::working().install(&project);
    let mut plan = project.command();
    plan.arg("--terraform").arg(&tf).args(["plan", "dev"]);
    let started = Instant::now();
    let mut run = RunningTfenv::spawn(plan);
    wait_until("the policy runs", Duration::from_secs(20), || {
        project.join("seen.json").exists()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(project.join("state/dev/plan.json").exists());
    run.signal(Signal::SIGINT);
    let (status, _) = run.wait_exit(Duration::from_secs(30));
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("waiting for `policy.sh` to stop"),
        "{stderr}"
    );
    assert_eq!(project.read("signals.log"), "got-sigint\n");
    assert!(!project.join("state/dev/plan.json").exists());
    assert_eq!(project.read("seen.json").trim(), PLAN_JSON);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_plan_the_policy_refuses_writes_no_bundle() {
    let project = project_with_policy("echo 'FAIL - deletes are not allowed'; exit 1");
    let tf = FakeTerraform::working().install(&project);
    let output = project
        .tfenv_with(&tf)
        .args(["plan", "dev", "--out", "bundle"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("refused by policy"), "{stderr}");
    assert!(!project.join("bundle").exists(), "no bundle is written");
    // Nothing temporary is left beside it either.
    let leftovers: Vec<_> = std::fs::read_dir(project.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".bundle"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
