//! Job summaries of runs that end before terraform does anything.

use crate::support::Project;
use crate::support::fake::FakeTerraform;

#[test]
fn a_run_that_fails_before_it_starts_still_gets_its_summary_row() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    project
        .tfenv()
        .arg("--terraform")
        .arg(&tf)
        .env("GITHUB_STEP_SUMMARY", project.join("summary.md"))
        .args(["deploy", "prodd", "--yes"])
        .assert()
        .code(2);
    let markdown = project.read("summary.md");
    assert!(markdown.starts_with("### tfenv deploy\n"), "{markdown}");
    assert!(
        markdown.contains("| prodd | - | **failed** | - | - |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("- **prodd** failed: environment <code>prodd</code> is not defined"),
        "{markdown}"
    );
}

#[test]
fn a_deploy_stopped_by_the_environment_lock_says_locked() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    // Another tfenv holds dev: this process keeps the lock file locked while it runs.
    let lock = project.join("state/dev/.tfenv.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .expect("flock (util-linux) is needed for this test");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let result = project
        .tfenv()
        .arg("--terraform")
        .arg(&tf)
        .args(["deploy", "dev", "--yes", "--summary", "summary.md"])
        .assert();
    let _ = holder.kill();
    let _ = holder.wait();
    result.code(4);
    let markdown = project.read("summary.md");
    assert!(
        markdown.contains("| dev | development | **locked** |"),
        "{markdown}"
    );
    assert!(!markdown.contains("Applied"), "{markdown}");
}

#[test]
fn a_terraform_failure_in_the_summary_shows_the_line_that_says_why() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on(
            "plan",
            "echo >&2; echo 'Error: Unsupported argument' >&2; exit 1",
        )
        .install(&project);
    project
        .tfenv_with(&tf)
        .args(["plan", "dev", "--summary", "summary.md"])
        .assert()
        .code(1);
    let markdown = project.read("summary.md");
    assert!(
        markdown.contains(
            "- **dev** failed: <code>terraform plan</code> for <code>dev</code> exited with code 1: Error: Unsupported argument"
        ),
        "{markdown}"
    );
}

#[test]
fn a_policy_refusal_in_the_summary_shows_what_the_policy_said_capped_and_escaped() {
    let project = Project::demo();
    let toml = project.read("tfenv.toml");
    project.write(
        "tfenv.toml",
        &format!("{toml}\n[policy]\ncommand = [\"./policy.sh\", \"{{plan_json}}\"]\n"),
    );
    project.script(
        "policy.sh",
        "echo 'FAIL - <b>deletes</b> are not allowed'\nfor i in $(seq 1 20); do echo \"rule $i\"; done\nexit 1",
    );
    let tf = FakeTerraform::working().install(&project);
    project
        .tfenv_with(&tf)
        .args(["plan", "dev", "--summary", "summary.md"])
        .assert()
        .code(5);
    let markdown = project.read("summary.md");
    assert!(
        markdown.contains("it said: FAIL - &lt;b&gt;deletes&lt;/b&gt; are not allowed"),
        "{markdown}"
    );
    assert!(
        markdown.contains("<details><summary>dev: what the policy said</summary>"),
        "{markdown}"
    );
    assert!(markdown.contains("rule 9\n… (11 more lines"), "{markdown}");
    assert!(!markdown.contains("rule 10\n"), "{markdown}");
    assert!(!markdown.contains("<b>"), "{markdown}");
}

/// A FIFO where the summary should go (no reader: opening it for writing would block
/// forever) is a warning at once; the run's exit code stands.
#[test]
fn a_fifo_as_the_summary_file_is_a_warning_never_a_hang() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let fifo = project.join("summary.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    project
        .tfenv()
        .arg("--terraform")
        .arg(&tf)
        .env("GITHUB_STEP_SUMMARY", &fifo)
        .args(["plan", "dev"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(0)
        .stderr(predicates::str::contains(
            "could not write the job summary to",
        ))
        .stderr(predicates::str::contains("a FIFO (named pipe)"));
}

#[test]
fn a_summary_file_in_a_folder_that_does_not_exist_is_a_warning_naming_the_folder() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    let missing = project.join("no-such-folder");
    project
        .tfenv()
        .arg("--terraform")
        .arg(&tf)
        .env("GITHUB_STEP_SUMMARY", missing.join("summary.md"))
        .args(["plan", "dev"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(0)
        .stderr(predicates::str::contains(format!(
            "its folder `{}` does not exist",
            missing.display()
        )));
}
