//! The pipeline against the real terraform where only the real one can tell: paths that
//! are not UTF-8 reach it intact (1.11 and 1.0.3), `--no-color` holds in a terminal, and
//! what tfenv reads itself instead of asking terraform (outputs, the version, a plan
//! without changes) is what terraform would have said.

use std::path::Path;
use std::time::{Duration, Instant};

use rexpect::process::WaitStatus;

use crate::support::{self, Project};

fn deploy_in_a_folder_whose_name_is_not_utf8(tf: &Path) {
    let project = Project::empty();
    let dir = project.demo_in_folder(b"infra-\xff\xfe");
    let output = project
        .tfenv_with(tf)
        .arg("-C")
        .arg(&dir)
        .args(["deploy", "dev", "--yes"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}: {}\n{}",
        tf.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The backend config says `../../state/dev/terraform.tfstate` from the root module:
    // the state is where it says only when the paths reached terraform byte for byte.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state/dev/terraform.tfstate")).unwrap())
            .unwrap();
    assert_eq!(state["outputs"]["environment"]["value"], "dev", "{state}");
    assert!(dir.join("state/dev/outputs.json").is_file());
    assert!(
        dir.join("examples/quickstart/.terraform/tfenv/dev")
            .is_dir(),
        "the data dir is the environment's own"
    );
}

#[test]
fn a_project_in_a_folder_whose_name_is_not_utf8_deploys_with_terraform_1_11() {
    deploy_in_a_folder_whose_name_is_not_utf8(&support::terraform());
}

#[test]
fn a_project_in_a_folder_whose_name_is_not_utf8_deploys_with_terraform_1_0() {
    deploy_in_a_folder_whose_name_is_not_utf8(&support::terraform_1_0());
}

/// SGR escape sequences (colour, bold): `ESC [ <digits and ;> m`. A spinner's cursor
/// movements are not colour.
fn colour_codes(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("\u{1b}[") {
        let tail = &rest[at + 2..];
        let params = tail
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(tail.len());
        if tail[params..].starts_with('m') {
            found.push(format!("ESC[{}m", &tail[..params]));
        }
        rest = tail;
    }
    found
}

#[test]
fn no_color_holds_for_the_prompt_in_a_terminal() {
    let project = Project::demo();
    let mut cmd = project.command();
    cmd.env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("CI")
        .arg("--terraform")
        .arg(support::terraform())
        .args(["--no-color", "deploy", "dev"]);
    let mut session =
        rexpect::session::spawn_command(cmd, Some(90_000)).expect("tfenv starts in a pty");
    let before = session
        .exp_string("Apply this plan to `dev`?")
        .unwrap_or_else(|err| panic!("no prompt: {err}"));
    let prompt_line = session
        .exp_string("[y/N]")
        .unwrap_or_else(|err| panic!("no prompt: {err}"));
    session.send_line("n").unwrap();
    let rest = session.exp_eof().unwrap_or_default();
    let start = Instant::now();
    let code = loop {
        match session.process().status() {
            Some(WaitStatus::Exited(_, code)) => break code,
            Some(WaitStatus::StillAlive) if start.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => panic!("tfenv did not exit normally: {other:?}"),
        }
    };
    let transcript = format!("{before}Apply this plan to `dev`?{prompt_line}[y/N]{rest}");
    assert_eq!(code, 5, "{transcript}");
    assert_eq!(
        colour_codes(&transcript),
        Vec::<String>::new(),
        "--no-color, yet colour reached the terminal:\n{transcript:?}"
    );
}

/// The terraform calls a recording wrapper saw since the log was last cleared: the
/// subcommand of each.
fn subcommands(calls: &Path) -> Vec<String> {
    std::fs::read_to_string(calls)
        .unwrap_or_default()
        .lines()
        .map(|line| line.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

fn outputs_come_from_the_local_state_as_terraform_prints_them(tf: &Path) {
    let project = Project::demo();
    let (wrapper, calls) = support::recording_wrapper(&project, tf);
    let tfenv = |args: &[&str]| {
        let output = project
            .tfenv()
            .arg("--terraform")
            .arg(&wrapper)
            .args(args)
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?} with {}: {}\n{}",
            tf.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    tfenv(&["deploy", "dev", "--yes", "--include-sensitive"]);
    assert!(
        !subcommands(&calls).contains(&"output".to_string()),
        "no `terraform output` for a local state: {:?}",
        subcommands(&calls)
    );
    let module = project.join("examples/quickstart");
    let printed = project
        .terraform(tf)
        .current_dir(&module)
        .env("TF_DATA_DIR", module.join(".terraform/tfenv/dev"))
        .args(["output", "-json"])
        .output()
        .unwrap();
    assert!(printed.status.success(), "{printed:?}");
    let printed: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&project.read("state/dev/outputs.json")).unwrap();
    assert_eq!(written, printed, "{}", tf.display());
    assert_eq!(written["api_token"]["sensitive"], true);

    // With nothing to change, a plan is `terraform plan` alone: no `show -json`.
    std::fs::write(&calls, "").unwrap();
    tfenv(&["plan", "dev", "--detailed-exitcode"]);
    let ran = subcommands(&calls);
    assert!(
        !ran.contains(&"show".to_string()) && ran.contains(&"plan".to_string()),
        "{ran:?}"
    );

    // A change to an output alone is a change for terraform's exit code too.
    let vars = project.read("environments/dev.tfvars");
    project.write(
        "environments/dev.tfvars",
        &vars.replace("beta_ui   = true", "beta_ui   = false"),
    );
    project
        .tfenv()
        .arg("--terraform")
        .arg(&wrapper)
        .args(["plan", "dev", "--detailed-exitcode"])
        .timeout(Duration::from_secs(120))
        .assert()
        .code(3);
}

#[test]
fn outputs_come_from_the_local_state_as_terraform_1_11_prints_them() {
    outputs_come_from_the_local_state_as_terraform_prints_them(&support::terraform());
}

#[test]
fn outputs_come_from_the_local_state_as_terraform_1_0_prints_them() {
    outputs_come_from_the_local_state_as_terraform_prints_them(&support::terraform_1_0());
}

#[test]
fn the_terraform_version_is_asked_once_and_again_when_the_binary_changes() {
    let project = Project::demo();
    let bin = project.join("bin/terraform");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(support::terraform(), &bin).unwrap();
    let plan = || {
        let output = project
            .tfenv()
            .args(["-v", "--terraform"])
            .arg(&bin)
            .args(["plan", "dev"])
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let asked = |log: &str| log.contains("terraform version -json");
    assert!(asked(&plan()), "the first run asks");
    let second = plan();
    assert!(!asked(&second), "the second run remembers:\n{second}");
    assert!(second.contains("(remembered)"), "{second}");
    // Another binary in its place (here: a new modification time) is asked again.
    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&bin)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert!(asked(&plan()), "a changed binary is asked again");
}
