//! Confirmation by tier with a person at the keyboard: the built tfenv runs `deploy` in a
//! real pseudo-terminal (stdin is a terminal, `CI` is unset) against the real terraform,
//! and the test answers dialoguer's prompts as a user would.
//!
//! For each tier of the demo: the right answer applies; a wrong answer and Ctrl-D are a
//! refusal (exit 5) that changes nothing — no new state, no plan file left behind, and a
//! `refused` record in history.jsonl. A production plan that destroys something also
//! asks for the number of destroyed resources.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rexpect::process::WaitStatus;
use rexpect::session::PtySession;

use crate::support::{self, Project, procs};

/// Output that needs terraform first (init + plan is ~1 s alone, apply about as long,
/// but the suite runs many terraform processes in parallel).
const SLOW: Duration = Duration::from_secs(90);
/// Output that follows a keypress directly: the reaction to an answer.
const QUICK: Duration = Duration::from_secs(10);
/// How often a wait looks at the clock; also how long the session's drop gives tfenv
/// between SIGTERM and SIGKILL when a test fails with tfenv still running.
const POLL_MS: u64 = 2_000;

const DEV_PROMPT: &str = "Apply this plan to `dev`? [y/N]";
const STAGING_PROMPT: &str = "staging environment `staging`? Type `yes` to continue";
const PRODUCTION_PROMPT: &str =
    "PRODUCTION environment `production`? Type the environment name to continue";

/// A tfenv run in a pseudo-terminal, with everything it printed so far kept for messages.
struct Pty {
    session: PtySession,
    transcript: String,
    what: String,
}

impl Pty {
    /// `tfenv deploy <env>` in `project`, as support's `tfenv()` runs it but with `CI`
    /// removed, so that stdin being a terminal makes the run interactive.
    fn deploy(project: &Project, env: &str) -> Pty {
        Pty::run(project, &["deploy", env])
    }

    /// Any tfenv command, interactive.
    fn run(project: &Project, args: &[&str]) -> Pty {
        let mut cmd = project.command();
        cmd.env("TERM", "xterm")
            .env_remove("CI")
            .arg("--terraform")
            .arg(support::terraform())
            .args(args);
        let session = rexpect::session::spawn_command(cmd, Some(POLL_MS))
            .expect("tfenv starts in a pseudo-terminal");
        Pty {
            session,
            transcript: String::new(),
            what: format!("tfenv {}", args.join(" ")),
        }
    }

    /// Waits up to `limit` for `needle` on the terminal; fails the test, showing what the
    /// terminal showed, when it does not come or tfenv's output ends first.
    fn expect(&mut self, needle: &str, limit: Duration) {
        let start = Instant::now();
        loop {
            match self.session.exp_string(needle) {
                Ok(before) => {
                    self.transcript.push_str(&before);
                    self.transcript.push_str(needle);
                    return;
                }
                Err(rexpect::error::Error::Timeout { .. }) if start.elapsed() < limit => {}
                Err(rexpect::error::Error::Timeout { got, .. }) => panic!(
                    "{}: {needle:?} did not appear within {limit:?}\n--- terminal ---\n{}{got}",
                    self.what, self.transcript
                ),
                Err(err) => panic!(
                    "{}: expected {needle:?}: {err}\n--- terminal ---\n{}",
                    self.what, self.transcript
                ),
            }
        }
    }

    /// Types `text` and Enter.
    fn type_line(&mut self, text: &str) {
        self.session.send_line(text).unwrap();
        self.session.flush().unwrap();
    }

    /// Presses Ctrl-D, the end-of-input key.
    fn ctrl_d(&mut self) {
        self.session.send_control('d').unwrap();
    }

    /// Reads the terminal to its end and returns tfenv's exit code; fails the test when
    /// that takes longer than `limit` (the session's drop then kills tfenv).
    fn exit_code(&mut self, limit: Duration) -> i32 {
        let start = Instant::now();
        loop {
            match self.session.exp_eof() {
                Ok(rest) => {
                    self.transcript.push_str(&rest);
                    break;
                }
                Err(rexpect::error::Error::Timeout { .. }) if start.elapsed() < limit => {}
                Err(err) => panic!(
                    "{}: still running after {limit:?}: {err}\n--- terminal ---\n{}",
                    self.what, self.transcript
                ),
            }
        }
        loop {
            match self.session.process().status() {
                Some(WaitStatus::Exited(_, code)) => return code,
                Some(WaitStatus::StillAlive) if start.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => panic!(
                    "{}: did not exit normally ({other:?})\n--- terminal ---\n{}",
                    self.what, self.transcript
                ),
            }
        }
    }

    /// Asserts the run ends (within `limit`) with `code`.
    fn assert_exit(&mut self, code: i32, limit: Duration) {
        let actual = self.exit_code(limit);
        assert_eq!(
            actual, code,
            "{}: exit code\n--- terminal ---\n{}",
            self.what, self.transcript
        );
    }
}

fn state_file(project: &Project, env: &str) -> PathBuf {
    project.join(&format!("state/{env}/terraform.tfstate"))
}

fn read_bytes(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => panic!("reading {}: {err}", path.display()),
    }
}

/// The state of `env` holds the demo's outputs, history records the apply, and no plan
/// file is left.
fn assert_applied(project: &Project, env: &str) {
    let state: serde_json::Value =
        serde_json::from_slice(&read_bytes(&state_file(project, env)).expect("a state file"))
            .unwrap();
    assert_eq!(
        state["outputs"]["environment"]["value"], env,
        "the state has the outputs: {state}"
    );
    let record = project.last_history(env);
    assert_eq!(record["result"], "applied", "{record}");
    assert_eq!(record["exit_code"], 0, "{record}");
    assert!(
        !project
            .join(&format!("state/{env}/terraform.plan"))
            .exists(),
        "the plan file is removed after the apply"
    );
}

/// Nothing changed: the state is the bytes it was before (`None`: still no state), no
/// plan file is left, and history records the refusal.
fn assert_refused(project: &Project, env: &str, state_before: Option<&[u8]>) {
    assert_eq!(
        read_bytes(&state_file(project, env)).as_deref(),
        state_before,
        "the state of `{env}` is unchanged"
    );
    assert!(
        !project
            .join(&format!("state/{env}/terraform.plan"))
            .exists(),
        "no plan file is left behind"
    );
    let record = project.last_history(env);
    assert_eq!(record["result"], "refused", "{record}");
    assert_eq!(record["exit_code"], 5, "{record}");
}

// ---- development: y/N ----

#[test]
fn dev_prompt_applies_on_y() {
    let project = Project::demo();
    let mut tfenv = Pty::deploy(&project, "dev");
    tfenv.expect(DEV_PROMPT, SLOW);
    tfenv.type_line("y");
    tfenv.expect("Applied to `dev`", SLOW);
    tfenv.assert_exit(0, QUICK);
    assert_applied(&project, "dev");
}

#[test]
fn dev_prompt_refuses_n() {
    let project = Project::demo();
    let mut tfenv = Pty::deploy(&project, "dev");
    tfenv.expect(DEV_PROMPT, SLOW);
    tfenv.type_line("n");
    tfenv.expect("confirmation not given (answered `n`)", QUICK);
    tfenv.assert_exit(5, QUICK);
    assert_refused(&project, "dev", None);
}

#[test]
fn dev_prompt_refuses_on_enter_as_no_is_the_default() {
    let project = Project::demo();
    let mut tfenv = Pty::deploy(&project, "dev");
    tfenv.expect(DEV_PROMPT, SLOW);
    tfenv.type_line("");
    tfenv.expect("confirmation not given (answered `n`)", QUICK);
    tfenv.assert_exit(5, QUICK);
    assert_refused(&project, "dev", None);
}

/// Ctrl-D is "no answer", and no answer is a refusal (README: "A prompt that cannot be
/// answered is a refusal: exit 5, nothing changed").
#[test]
fn dev_prompt_refuses_on_ctrl_d() {
    let project = Project::demo();
    let mut tfenv = Pty::deploy(&project, "dev");
    tfenv.expect(DEV_PROMPT, SLOW);
    tfenv.ctrl_d();
    tfenv.expect("confirmation not given (no answer)", QUICK);
    tfenv.assert_exit(5, QUICK);
    assert_refused(&project, "dev", None);
}

/// Ctrl-Z at a prompt, where no terraform runs, from a job-control shell: tfenv (which
/// catches SIGTSTP, to ignore it while terraform holds the state lock) stops like any
/// program, the shell says so, and `fg` brings back the prompt's run.
#[test]
fn ctrl_z_at_the_dev_prompt_suspends_tfenv_until_fg() {
    let project = Project::demo();
    let mut shell = rexpect::spawn_bash(Some(POLL_MS)).expect("an interactive bash");
    let line = format!(
        "cd '{}' && env -u CI -u TFENV_LOG -u TF_WORKSPACE -u TF_DATA_DIR -u TF_PLUGIN_CACHE_DIR \
         TF_CLI_CONFIG_FILE='{}' CHECKPOINT_DISABLE=1 NO_COLOR=1 TERM=xterm '{}' --terraform '{}' deploy dev",
        project.path().display(),
        project.cli_config().display(),
        assert_cmd::cargo::cargo_bin("tfenv").display(),
        support::terraform().display()
    );
    shell.send_line(&line).unwrap();
    expect_in(&mut shell, DEV_PROMPT, SLOW);
    let pid = tfenv_in(&project);
    shell.send_control('z').unwrap();
    expect_in(&mut shell, "Stopped", QUICK);
    wait_for_state(pid, 'T', true);
    shell.send_line("fg").unwrap();
    wait_for_state(pid, 'T', false);
    shell.send_line("y").unwrap();
    expect_in(&mut shell, "Applied to `dev`", SLOW);
    shell.wait_for_prompt().unwrap();
    shell.send_line("echo \"exit=$?\"").unwrap();
    expect_in(&mut shell, "exit=0", QUICK);
    assert_applied(&project, "dev");
}

/// The same Ctrl-Z where no job-control shell could continue tfenv (here tfenv leads its
/// own session, so its process group is orphaned): ignored, as the kernel ignores it for
/// a program that does not catch it, and the prompt goes on.
#[test]
fn ctrl_z_at_a_prompt_without_job_control_is_ignored() {
    let project = Project::demo();
    let mut tfenv = Pty::deploy(&project, "dev");
    tfenv.expect(DEV_PROMPT, SLOW);
    let pid = tfenv_in(&project);
    tfenv.session.send_control('z').unwrap();
    std::thread::sleep(Duration::from_millis(500));
    wait_for_state(pid, 'T', false);
    tfenv.type_line("y");
    tfenv.expect("Applied to `dev`", SLOW);
    tfenv.assert_exit(0, QUICK);
    assert_applied(&project, "dev");
}

/// tfenv started in the background of its terminal (here by `timeout`, which runs it in
/// a process group of its own, as `tfenv deploy dev &` in a shell does): it cannot read
/// an answer there (a read would stop it with SIGTTIN after every SIGCONT, and then only
/// SIGKILL could end it), so the run is non-interactive and refused at once.
#[test]
fn a_run_in_the_background_of_its_terminal_is_refused_as_non_interactive() {
    let project = Project::demo();
    let mut cmd = project.command_via(&[
        "setsid",
        "--ctty",
        "bash",
        "-c",
        "timeout 100 \"$0\" \"$@\"; echo \"exit=$?\"",
    ]);
    cmd.env_remove("CI")
        .arg("--terraform")
        .arg(support::terraform())
        .args(["deploy", "dev"]);
    let mut tfenv = support::running::RunningTfenv::spawn_in_terminal(cmd);
    // The terminal stays open until the test closes it: wait for the shell's last line.
    support::wait_until(
        "tfenv and then the shell end",
        Duration::from_secs(80),
        || tfenv.stderr().contains("exit="),
    );
    tfenv.hang_up();
    tfenv.wait_exit(QUICK);
    let shown = tfenv.stderr();
    assert!(shown.contains("exit=5"), "{shown}");
    assert!(
        shown.contains("apply this plan to `dev` needs confirmation and this run cannot prompt"),
        "{shown}"
    );
    assert!(shown.contains("tfenv runs in its background"), "{shown}");
    assert_refused(&project, "dev", None);
}

/// Ctrl-Z at the prompt, then `bg`: tfenv, waiting for an answer it can no longer read,
/// refuses (exit 5) instead of stopping again on its next read (after which only SIGKILL
/// could end it), and the shell reports the job's exit code.
#[test]
fn a_prompt_moved_to_the_background_is_refused() {
    let project = Project::demo();
    let mut shell = rexpect::spawn_bash(Some(POLL_MS)).expect("an interactive bash");
    let line = format!(
        "cd '{}' && env -u CI -u TFENV_LOG -u TF_WORKSPACE -u TF_DATA_DIR -u TF_PLUGIN_CACHE_DIR \
         TF_CLI_CONFIG_FILE='{}' CHECKPOINT_DISABLE=1 NO_COLOR=1 TERM=xterm '{}' --terraform '{}' deploy dev",
        project.path().display(),
        project.cli_config().display(),
        assert_cmd::cargo::cargo_bin("tfenv").display(),
        support::terraform().display()
    );
    shell.send_line(&line).unwrap();
    expect_in(&mut shell, DEV_PROMPT, SLOW);
    let pid = tfenv_in(&project);
    shell.send_control('z').unwrap();
    expect_in(&mut shell, "Stopped", QUICK);
    wait_for_state(pid, 'T', true);
    shell.send_line("bg").unwrap();
    expect_in(&mut shell, "confirmation not given (no answer)", QUICK);
    // The shell reports the background job's end at its next prompt after the job has
    // exited: the refusal is printed a moment before tfenv exits, so one prompt may come
    // too soon. Ask for prompts until the report appears.
    let start = Instant::now();
    loop {
        shell.send_line("true").unwrap();
        match shell.exp_string("Exit 5") {
            Ok(_) => break,
            Err(rexpect::error::Error::Timeout { .. }) if start.elapsed() < QUICK => {}
            Err(err) => panic!("\"Exit 5\" did not appear within {QUICK:?}: {err}"),
        }
    }
    assert_refused(&project, "dev", None);
}

/// Waits up to `limit` for `needle` in an interactive shell's terminal.
fn expect_in(shell: &mut rexpect::session::PtyReplSession, needle: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        match shell.exp_string(needle) {
            Ok(_) => return,
            Err(rexpect::error::Error::Timeout { .. }) if start.elapsed() < limit => {}
            Err(err) => panic!("{needle:?} did not appear within {limit:?}: {err}"),
        }
    }
}

/// The tfenv process working in `project`.
fn tfenv_in(project: &Project) -> nix::unistd::Pid {
    let root = project.path().canonicalize().unwrap();
    procs::processes()
        .into_iter()
        .find(|p| {
            p.name == "tfenv"
                && p.is_live()
                && std::fs::read_link(format!("/proc/{}/cwd", p.pid)).ok() == Some(root.clone())
        })
        .map(|p| p.pid)
        .expect("a tfenv process in the project")
}

/// Waits until `pid`'s state letter is (or is no longer) `state`.
fn wait_for_state(pid: nix::unistd::Pid, state: char, is: bool) {
    let start = Instant::now();
    loop {
        let now = procs::state(pid);
        if (now == state) == is {
            return;
        }
        assert!(
            start.elapsed() < QUICK,
            "tfenv (pid {pid}) is in state {now:?}, expected {}{state:?}",
            if is { "" } else { "anything but " }
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- staging: type `yes` ----

#[test]
fn staging_prompt_applies_on_yes() {
    let project = Project::demo();
    let mut tfenv = Pty::deploy(&project, "staging");
    tfenv.expect(STAGING_PROMPT, SLOW);
    tfenv.type_line("yes");
    tfenv.expect("Applied to `staging`", SLOW);
    tfenv.assert_exit(0, QUICK);
    assert_applied(&project, "staging");
}

#[test]
fn staging_prompt_refuses_anything_but_yes() {
    let project = Project::demo();
    let mut tfenv = Pty::deploy(&project, "staging");
    tfenv.expect(STAGING_PROMPT, SLOW);
    tfenv.type_line("y");
    tfenv.expect("confirmation not given (answered `y`)", QUICK);
    tfenv.assert_exit(5, QUICK);
    assert_refused(&project, "staging", None);
}

#[test]
fn staging_prompt_refuses_on_ctrl_d() {
    let project = Project::demo();
    let mut tfenv = Pty::deploy(&project, "staging");
    tfenv.expect(STAGING_PROMPT, SLOW);
    tfenv.ctrl_d();
    tfenv.expect("confirmation not given (no answer)", QUICK);
    tfenv.assert_exit(5, QUICK);
    assert_refused(&project, "staging", None);
}

// ---- production: type the environment's name ----

#[test]
fn production_prompt_applies_on_the_environment_name() {
    let project = Project::demo();
    let mut tfenv = Pty::deploy(&project, "production");
    // The temporary project is no git repository: tfenv warns and goes on.
    tfenv.expect("not a git repository", SLOW);
    // The prompt says which project and config this is before it asks.
    tfenv.expect(
        &format!(
            "Project `{}` (config `tfenv.toml`)",
            project.path().display()
        ),
        SLOW,
    );
    tfenv.expect(PRODUCTION_PROMPT, QUICK);
    tfenv.type_line("production");
    tfenv.expect("Applied to `production`", SLOW);
    tfenv.assert_exit(0, QUICK);
    assert_applied(&project, "production");
}

#[test]
fn production_prompt_refuses_anything_but_the_environment_name() {
    let project = Project::demo();
    // `prod` is production's alias: it names the environment, but is not its name.
    let mut tfenv = Pty::deploy(&project, "production");
    tfenv.expect(PRODUCTION_PROMPT, SLOW);
    tfenv.type_line("prod");
    tfenv.expect(
        "confirmation not given (answered `prod`): type the environment's full name `production` (aliases don't count)",
        QUICK,
    );
    tfenv.assert_exit(5, QUICK);
    assert_refused(&project, "production", None);
}

#[test]
fn production_prompt_refuses_on_ctrl_d() {
    let project = Project::demo();
    let mut tfenv = Pty::deploy(&project, "production");
    tfenv.expect(PRODUCTION_PROMPT, SLOW);
    tfenv.ctrl_d();
    tfenv.expect("confirmation not given (no answer)", QUICK);
    tfenv.assert_exit(5, QUICK);
    assert_refused(&project, "production", None);
}

// ---- production plans that destroy ----

/// A production environment whose module has `var.n` terraform_data instances, deployed
/// non-interactively with n = 2 and then set to n = 1, so the next plan destroys one.
fn production_about_to_destroy_one() -> Project {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        r#"[project]
state_dir = "state"

[environments.production]
backend_config = "production.backend.conf"
var_files = ["production.tfvars"]
"#,
    );
    project.write(
        "production.backend.conf",
        "path = \"state/production/terraform.tfstate\"\n",
    );
    project.write(
        "main.tf",
        r#"terraform {
  backend "local" {}
}

variable "n" {
  type = number
}

resource "terraform_data" "x" {
  count = var.n
  input = "v"
}
"#,
    );
    project.write("production.tfvars", "n = 2\n");
    project
        .tfenv_real()
        .env_remove("CI")
        .args(["deploy", "production", "--yes", "--confirm", "production"])
        .assert()
        .success();
    assert_eq!(instances(&project), 2);
    project.write("production.tfvars", "n = 1\n");
    project
}

/// How many `terraform_data.x` instances the production state holds.
fn instances(project: &Project) -> usize {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_file(project, "production")).unwrap()).unwrap();
    state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "terraform_data" && r["name"] == "x")
        .map(|r| r["instances"].as_array().unwrap().len())
        .sum()
}

#[test]
fn production_destroy_applies_when_the_name_and_the_count_are_typed() {
    let project = production_about_to_destroy_one();
    let mut tfenv = Pty::deploy(&project, "production");
    tfenv.expect("destroy: terraform_data.x[1]", SLOW);
    tfenv.expect(PRODUCTION_PROMPT, SLOW);
    tfenv.type_line("production");
    tfenv.expect(
        "This destroys 1 resource(s) in production. Type 1 to confirm",
        QUICK,
    );
    tfenv.type_line("1");
    tfenv.expect("Applied to `production`", SLOW);
    tfenv.assert_exit(0, QUICK);
    assert_eq!(instances(&project), 1);
    let record = project.last_history("production");
    assert_eq!(record["result"], "applied", "{record}");
    assert!(!project.join("state/production/terraform.plan").exists());
}

#[test]
fn production_destroy_refuses_a_wrong_count() {
    let project = production_about_to_destroy_one();
    let before = read_bytes(&state_file(&project, "production")).unwrap();
    let mut tfenv = Pty::deploy(&project, "production");
    tfenv.expect(PRODUCTION_PROMPT, SLOW);
    tfenv.type_line("production");
    tfenv.expect("Type 1 to confirm", QUICK);
    tfenv.type_line("2");
    tfenv.expect("confirmation not given (answered `2`)", QUICK);
    tfenv.assert_exit(5, QUICK);
    assert_refused(&project, "production", Some(&before));
    assert_eq!(instances(&project), 2);
}

#[test]
fn the_first_deploy_offers_to_git_ignore_state_and_terraform_dirs() {
    let project = Project::demo();
    project.git(&["init", "-q"]);
    let mut tfenv = Pty::deploy(&project, "dev");
    tfenv.expect(
        "git does not ignore `state/` and `examples/quickstart/.terraform/`",
        SLOW,
    );
    tfenv.expect("Add /state/ and .terraform/ to .gitignore? [y/N]", QUICK);
    tfenv.type_line("y");
    tfenv.expect(DEV_PROMPT, SLOW);
    tfenv.type_line("y");
    tfenv.expect("Applied to `dev`", SLOW);
    tfenv.assert_exit(0, QUICK);
    let gitignore = project.read(".gitignore");
    assert!(
        gitignore.contains("\n/state/\n.terraform/\n"),
        "{gitignore}"
    );
    let output = project
        .tfenv()
        .args(["status", "dev", "--output", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["problems"], serde_json::json!([]), "{json}");
}

#[test]
fn a_declined_restore_takes_no_backup_so_latest_stays_the_same() {
    let project = Project::demo();
    let tf = support::terraform();
    for count in [2, 3] {
        let tfvars = format!("environment    = \"staging\"\ninstance_count = {count}\n");
        project.write("environments/staging.tfvars", &tfvars);
        project
            .tfenv_with(&tf)
            .args(["deploy", "staging", "--yes"])
            .assert()
            .success();
    }
    let before = std::fs::read_dir(project.join("state/staging/backups"))
        .unwrap()
        .count();
    let mut tfenv = Pty::run(&project, &["restore", "staging", "latest"]);
    tfenv.expect("Type `yes` to continue", SLOW);
    tfenv.type_line("no");
    tfenv.assert_exit(5, QUICK);
    let after = std::fs::read_dir(project.join("state/staging/backups"))
        .unwrap()
        .count();
    assert_eq!(
        after, before,
        "a declined restore leaves no pre-restore backup behind"
    );
}

// ---- plan bundles ----

#[test]
fn a_production_bundle_asks_for_the_environment_name_in_a_terminal() {
    let clones = crate::bundles::Clones::local();
    clones.plan("a", "production", "production");
    let mut tfenv = Pty::run(
        &clones.project,
        &[
            "-C",
            "a",
            "deploy",
            "production",
            "--plan",
            "../bundles/production",
        ],
    );
    tfenv.expect("applying plan bundle", SLOW);
    tfenv.expect(PRODUCTION_PROMPT, SLOW);
    tfenv.type_line("prod");
    tfenv.expect("confirmation not given (answered `prod`)", QUICK);
    tfenv.assert_exit(5, QUICK);
    assert!(!clones.project.join("shared/production.tfstate").exists());

    let mut tfenv = Pty::run(
        &clones.project,
        &[
            "-C",
            "a",
            "deploy",
            "production",
            "--plan",
            "../bundles/production",
        ],
    );
    tfenv.expect(PRODUCTION_PROMPT, SLOW);
    tfenv.type_line("production");
    tfenv.expect("Applied to `production`", SLOW);
    tfenv.assert_exit(0, QUICK);
    assert!(clones.project.join("shared/production.tfstate").is_file());
}

/// `doctor --fix` at a terminal asks before it removes anything: `n` is a refusal (exit
/// 5) that leaves the stale data dir, `y` removes it.
#[test]
fn doctor_fix_asks_first_and_removes_only_on_y() {
    let project = Project::demo();
    let stale = "examples/quickstart/.terraform/tfenv/old";
    project.write(&format!("{stale}/terraform.tfstate"), "{}");
    project.write(&format!("{stale}.fingerprint"), "abc");
    let prompt = format!("Remove `{stale}`? [y/N]");

    let mut tfenv = Pty::run(&project, &["doctor", "--fix"]);
    tfenv.expect(&prompt, SLOW);
    tfenv.type_line("n");
    tfenv.expect("not confirmed: nothing changed", QUICK);
    tfenv.assert_exit(5, QUICK);
    assert!(project.join(stale).is_dir());

    let mut tfenv = Pty::run(&project, &["doctor", "--fix"]);
    tfenv.expect(&prompt, SLOW);
    tfenv.type_line("y");
    tfenv.assert_exit(0, QUICK);
    assert!(!project.join(stale).exists());
    assert!(!project.join(&format!("{stale}.fingerprint")).exists());
}
