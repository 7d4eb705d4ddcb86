//! Faults only a fake terraform can produce on demand: missing binary, wrong version,
//! failing init, garbage from `state pull`, a slow process interrupted by the user.

use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::support::fake::{FakeTerraform, INIT_OK};
use crate::support::running::RunningTfenv;
use crate::support::{Project, stdout_json, wait_until};

/// A fake terraform whose `version` answers `version`, and whose `init` and `state`
/// behave as given.
fn fake_terraform(
    project: &Project,
    version: &str,
    init: &str,
    state_pull: &str,
) -> std::path::PathBuf {
    FakeTerraform::empty()
        .version(version)
        .on("init", init)
        .on("state", state_pull)
        .on("workspace", "echo \"* default\"")
        .install(project)
}

#[test]
fn terraform_missing_says_how_to_install_it() {
    let project = Project::demo();
    std::fs::create_dir_all(project.join("empty-bin")).unwrap();
    project
        .tfenv()
        .env("PATH", project.join("empty-bin"))
        .args(["init", "dev"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`terraform` was not found on PATH",
        ))
        .stderr(predicate::str::contains("install Terraform"));

    project
        .tfenv()
        .args(["--terraform", "/nonexistent/terraform", "init", "dev"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "terraform binary `/nonexistent/terraform` does not exist",
        ));
}

#[test]
fn terraform_below_required_version_stops_before_anything_runs() {
    let project = Project::demo();
    let tf = fake_terraform(&project, "0.14.11", INIT_OK, "exit 0");
    project
        .tfenv_with(&tf)
        .args(["init", "dev"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("terraform 0.14.11 (`"))
        .stderr(predicate::str::contains(
            "does not satisfy required_version `>= 1.0` from tfenv.toml",
        ));
    assert_eq!(
        project.read("calls.log"),
        "version -json -no-color\n",
        "no init may run"
    );
}

#[test]
fn terraform_on_path_is_used_and_tfenv_toml_can_name_another() {
    let project = Project::demo();
    fake_terraform(&project, "1.9.0", INIT_OK, "exit 0");
    let path = project.fake_path();
    project
        .tfenv()
        .env("PATH", &path)
        .args(["init", "dev"])
        .assert()
        .success();
    assert!(project.read("calls.log").contains("init -input=false"));

    let toml = project
        .read("tfenv.toml")
        .replace("[project]\n", "[project]\nterraform = \"tools/tofu\"\n");
    project.write("tfenv.toml", &toml);
    project
        .tfenv()
        .env("PATH", &path)
        .args(["init", "dev"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("terraform binary `")
                .and(predicate::str::contains("tools/tofu` does not exist")),
        );
}

#[test]
fn init_failure_shows_terraforms_own_message() {
    let project = Project::demo();
    let tf = fake_terraform(
        &project,
        "1.11.4",
        r#"printf '\n\xe2\x95\xb7\n\xe2\x94\x82 Error: Backend initialization required: please run "terraform init"\n\xe2\x94\x82\n\xe2\x94\x82 Reason: Unsetting the previously set backend "s3"\n\xe2\x95\xb5\n' >&2; exit 1"#,
        "exit 0",
    );
    project
        .tfenv_with(&tf)
        .args(["init", "staging"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`terraform init` for `staging` exited with code 1",
        ))
        .stderr(predicate::str::contains(
            "Error: Backend initialization required",
        ))
        .stderr(predicate::str::contains(
            "Reason: Unsetting the previously set backend",
        ));
    assert!(
        !project
            .join("examples/quickstart/.terraform/tfenv/staging.fingerprint")
            .exists()
    );
}

/// A gcs-backend project (status reads its state through `terraform state pull`) with
/// a fake `gcloud` that finds no lock, so only terraform's behaviour matters.
fn remote_project(state_pull: &str) -> (Project, std::path::PathBuf, String) {
    let project = Project::empty();
    project.write("main.tf", "terraform {\n  backend \"gcs\" {}\n}\n");
    project.write(
        "environments/dev.backend.conf",
        "bucket = \"b\"\nprefix = \"dev\"\n",
    );
    project.script("bin/gcloud", "echo 'ERROR: NotFound' >&2; exit 1");
    let tf = fake_terraform(&project, "1.11.4", INIT_OK, state_pull);
    let path = project.fake_path();
    (project, tf, path)
}

#[test]
fn garbage_from_state_pull_is_a_status_problem_not_a_crash() {
    let (project, tf, path) = remote_project("echo '<html>502 Bad Gateway</html>'");
    project
        .tfenv_with(&tf)
        .env("PATH", &path)
        .args(["init", "dev"])
        .assert()
        .success();
    let output = project
        .tfenv_with(&tf)
        .env("PATH", &path)
        .args(["status", "dev", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = stdout_json(&output);
    let problems = &json["environments"][0]["problems"];
    assert_eq!(problems[0]["code"], "state-unreadable", "{json}");
    assert!(
        problems[0]["message"]
            .as_str()
            .unwrap()
            .contains("not a state"),
        "{json}"
    );
    assert_eq!(json["environments"][0]["state_source"], "terraform");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
    assert!(project.read("calls.log").contains("state pull"));

    // The same garbage never becomes a backup.
    project
        .tfenv_with(&tf)
        .env("PATH", &path)
        .args(["backup", "dev"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "printed something that is not a state",
        ));
    let left: Vec<_> = std::fs::read_dir(project.join("state/dev/backups"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_failing_state_pull_shows_terraforms_error_in_status() {
    let (project, tf, path) =
        remote_project("echo 'Error: AccessDenied: no permission to read s3://x' >&2; exit 1");
    project
        .tfenv_with(&tf)
        .env("PATH", &path)
        .args(["init", "dev"])
        .assert()
        .success();
    project
        .tfenv_with(&tf)
        .env("PATH", &path)
        .args(["status", "dev"])
        .assert()
        .code(6)
        .stdout(predicate::str::contains("dev: cannot read the state"))
        .stdout(predicate::str::contains("AccessDenied"));
}

#[test]
fn interrupt_during_init_is_passed_to_terraform_and_exits_130() {
    let project = Project::demo();
    let tf = fake_terraform(
        &project,
        "1.11.4",
        &format!(
            "trap 'echo got-sigint >> {}; exit 1' INT; sleep 30 & wait",
            project.join("signals.log").display()
        ),
        "exit 0",
    );
    let mut init = project.command();
    init.arg("--terraform").arg(&tf).args(["init", "dev"]);
    let started = Instant::now();
    let mut run = RunningTfenv::spawn(init);
    wait_until("terraform init starts", Duration::from_secs(20), || {
        project.read_or_empty("calls.log").contains("init")
    });
    std::thread::sleep(Duration::from_millis(300));
    run.signal(nix::sys::signal::Signal::SIGINT);
    let (status, _) = run.wait_exit(Duration::from_secs(30));
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("waiting for `terraform` to stop"),
        "{stderr}"
    );
    assert_eq!(
        project.read("signals.log"),
        "got-sigint\n",
        "terraform got exactly one SIGINT"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// tfenv catches SIGHUP, SIGQUIT, SIGTSTP and SIGXFSZ (and SIGINT, SIGTERM); a child must
/// not inherit any of them as ignored, nor a blocked signal mask: terraform starts with
/// the dispositions a shell would give it.
#[test]
fn terraform_starts_with_no_signal_ignored_or_blocked() {
    let project = Project::demo();
    let sigs = project.join("sigs.txt");
    let terraform = FakeTerraform::empty()
        .on(
            "version",
            format!(
                r#"sed -n '/^Sig\(Ign\|Blk\)/p' /proc/self/status > '{sigs}'
           echo '{{"terraform_version":"1.5.7","platform":"linux_amd64"}}'"#,
                sigs = sigs.display()
            ),
        )
        .on("init", INIT_OK)
        .on("workspace", "echo \"* default\"")
        .fallback("true")
        .install(&project);
    project
        .tfenv_with(&terraform)
        .args(["init", "dev"])
        .assert()
        .success();
    let text = std::fs::read_to_string(&sigs).unwrap();
    let mask = |name: &str| {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        u64::from_str_radix(line.trim(), 16).unwrap()
    };
    // HUP INT QUIT PIPE TERM TSTP XFSZ
    for signal in [1, 2, 3, 13, 15, 20, 25] {
        assert_eq!(
            mask("SigIgn:") & (1 << (signal - 1)),
            0,
            "signal {signal} is ignored in terraform:\n{text}"
        );
    }
    assert_eq!(
        mask("SigBlk:"),
        0,
        "no signal is blocked in terraform:\n{text}"
    );
}
