//! `tfenv exec` and `tfenv env` with the real terraform and the real test provider:
//! local backend, and s3 on moto. The shell lines are evaluated in real bash, zsh and fish.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::support::moto::Moto;
use crate::support::provider;
use crate::support::{Project, expect_code, output_text, stdout, stdout_json, terraform};

/// `tfenv exec …` (or any tfenv command) run to its end, stdin closed.
fn tfenv(project: &Project, args: &[&str]) -> Output {
    project
        .tfenv_real()
        .args(args)
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap()
}

fn deploy(project: &Project, env: &str) {
    let mut args = vec!["deploy", env, "--yes"];
    if env == "production" {
        args.extend(["--confirm", "production"]);
    }
    let output = tfenv(project, &args);
    expect_code(&output, 0);
}

/// What `terraform state list` prints, one address a line.
fn addresses(output: &Output) -> Vec<String> {
    stdout(output)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `status <env> --output json`'s state for `env`.
fn status_state(project: &Project, env: &str) -> Value {
    let output = tfenv(project, &["status", env, "--output", "json"]);
    let doc = stdout_json(&output);
    doc["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == env)
        .unwrap()["state"]
        .clone()
}

#[test]
fn exec_state_list_shows_the_resources_that_outputs_and_status_see() {
    let project = provider::demo();
    deploy(&project, "dev");
    let listed = tfenv(&project, &["exec", "dev", "--", "state", "list"]);
    expect_code(&listed, 0);
    assert_eq!(addresses(&listed), ["tfenvtest_file.app"]);
    let state = status_state(&project, "dev");
    assert_eq!(state["instances"], 1, "{state:#}");
    let outputs = stdout_json(&tfenv(&project, &["outputs", "dev", "--output", "json"]));
    assert_eq!(
        outputs["file"]["value"],
        provider::managed_file(&project, "dev")
            .display()
            .to_string()
    );
    // Another environment is another state: staging has none yet, and terraform says so.
    let staging = tfenv(&project, &["exec", "staging", "--", "state", "list"]);
    expect_code(&staging, 1);
    assert!(
        output_text(&staging).contains("No state file was found"),
        "{}",
        output_text(&staging)
    );
    // The alias resolves like everywhere else.
    deploy(&project, "production");
    let prod = tfenv(&project, &["exec", "prod", "--", "state", "list"]);
    assert_eq!(addresses(&prod), ["tfenvtest_file.app"]);
}

#[test]
fn exec_passes_terraform_exit_code_through() {
    let project = provider::demo();
    let changes = tfenv(
        &project,
        &[
            "exec",
            "dev",
            "--",
            "plan",
            "-detailed-exitcode",
            "-no-color",
        ],
    );
    expect_code(&changes, 2);
    deploy(&project, "dev");
    let none = tfenv(
        &project,
        &[
            "exec",
            "dev",
            "--",
            "plan",
            "-detailed-exitcode",
            "-no-color",
        ],
    );
    expect_code(&none, 0);
    let missing = tfenv(
        &project,
        &["exec", "dev", "--", "state", "show", "tfenvtest_file.nope"],
    );
    expect_code(&missing, 1);
    // terraform's own error, not tfenv's.
    assert!(
        !output_text(&missing).contains("error: "),
        "{}",
        output_text(&missing)
    );
}

#[test]
fn exec_plan_and_console_get_the_environments_var_files() {
    let project = provider::demo();
    let dev_vars = project.read("environments/dev.tfvars");
    project.write(
        "environments/dev.tfvars",
        &format!("{dev_vars}\napp_content = \"only-in-dev-tfvars\"\n"),
    );
    let plan = tfenv(&project, &["exec", "dev", "--", "plan", "-no-color"]);
    expect_code(&plan, 0);
    assert!(
        stdout(&plan).contains("only-in-dev-tfvars"),
        "{}",
        output_text(&plan)
    );
    let staging = tfenv(&project, &["exec", "staging", "--", "plan", "-no-color"]);
    assert!(!stdout(&staging).contains("only-in-dev-tfvars"));

    // console reads its stdin: tfenv passes it through.
    let console = project
        .tfenv_real()
        .args(["exec", "dev", "--", "console"])
        .write_stdin("var.app_content\n")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    expect_code(&console, 0);
    assert!(
        stdout(&console).contains("only-in-dev-tfvars"),
        "{}",
        output_text(&console)
    );

    // A saved plan file is refused: tfenv cannot tell which environment it was made for.
    let saved = tfenv(
        &project,
        &["exec", "dev", "--", "plan", "-out=dev.tfplan", "-no-color"],
    );
    expect_code(&saved, 0);
    let applied = tfenv(
        &project,
        &[
            "exec",
            "staging",
            "--yes",
            "--",
            "apply",
            "-no-color",
            "dev.tfplan",
        ],
    );
    expect_code(&applied, 2);
    assert!(
        output_text(&applied).contains("saved plan"),
        "{}",
        output_text(&applied)
    );
    assert!(!provider::managed_file(&project, "dev").exists());
    assert!(!provider::managed_file(&project, "staging").exists());
    assert!(!project.join("state/staging/history.jsonl").exists());
}

#[test]
fn exec_apply_in_production_is_confirmed_by_tier() {
    let project = provider::demo();
    let refused = tfenv(
        &project,
        &["exec", "production", "--", "apply", "-auto-approve"],
    );
    expect_code(&refused, 5);
    let text = output_text(&refused);
    assert!(text.contains("--yes --confirm production"), "{text}");
    assert!(!provider::managed_file(&project, "production").exists());
    assert!(!project.join("state/production/terraform.tfstate").exists());
    assert_eq!(project.last_history("production")["result"], "refused");
    assert_eq!(
        project.last_history("production")["terraform_command"],
        "apply"
    );
    // --yes alone is not enough for production; an alias is not its name.
    let yes_only = tfenv(
        &project,
        &[
            "exec",
            "production",
            "--yes",
            "--",
            "apply",
            "-auto-approve",
        ],
    );
    expect_code(&yes_only, 5);
    let alias = tfenv(
        &project,
        &[
            "exec",
            "prod",
            "--yes",
            "--confirm",
            "prod",
            "--",
            "apply",
            "-auto-approve",
        ],
    );
    expect_code(&alias, 5);
    assert!(!provider::managed_file(&project, "production").exists());

    let applied = tfenv(
        &project,
        &[
            "exec",
            "production",
            "--yes",
            "--confirm",
            "production",
            "--",
            "apply",
            "-auto-approve",
            "-no-color",
        ],
    );
    expect_code(&applied, 0);
    assert!(provider::managed_file(&project, "production").exists());
    let record = project.last_history("production");
    assert_eq!(record["command"], "exec");
    assert_eq!(record["terraform_command"], "apply");
    assert_eq!(record["result"], "applied");

    // Destroying production also needs --allow-destroy.
    let destroy = tfenv(
        &project,
        &[
            "exec",
            "production",
            "--yes",
            "--confirm",
            "production",
            "--",
            "destroy",
            "-auto-approve",
        ],
    );
    expect_code(&destroy, 5);
    assert!(
        output_text(&destroy).contains("--allow-destroy"),
        "{}",
        output_text(&destroy)
    );
    assert!(provider::managed_file(&project, "production").exists());

    // A dev apply with --yes runs; terraform's failure is its exit code and recorded.
    let dev = tfenv(
        &project,
        &[
            "exec",
            "dev",
            "--yes",
            "--",
            "apply",
            "-auto-approve",
            "-target=nope",
        ],
    );
    expect_code(&dev, 1);
    let record = project.last_history("dev");
    assert_eq!(record["result"], "failed");
    assert_eq!(record["exit_code"], 1);
}

#[test]
fn exec_state_rm_takes_a_backup_first() {
    let project = provider::demo();
    deploy(&project, "dev");
    let before = std::fs::read_to_string(project.join("state/dev/terraform.tfstate")).unwrap();
    let removed = tfenv(
        &project,
        &[
            "exec",
            "dev",
            "--yes",
            "--",
            "state",
            "rm",
            "tfenvtest_file.app",
        ],
    );
    expect_code(&removed, 0);
    let listed = tfenv(&project, &["exec", "dev", "--", "state", "list"]);
    assert!(addresses(&listed).is_empty());
    // terraform's own `terraform.tfstate.<time>.backup` (secrets, 0644) is not left in
    // the root module, in the git work tree; nor in state/dev/.
    let timed_backups = state_backup_files(&project.join("."));
    assert!(timed_backups.is_empty(), "{timed_backups:?}");

    let backups = stdout_json(&tfenv(&project, &["backups", "dev", "--output", "json"]));
    let newest = backups["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["reason"] == "pre-exec")
        .unwrap_or_else(|| panic!("a pre-exec backup: {backups:#}"))
        .clone();
    let file = newest["file"].as_str().unwrap();
    let saved = project.read(&format!("state/dev/backups/{file}"));
    let serial = |text: &str| serde_json::from_str::<Value>(text).unwrap()["serial"].clone();
    assert_eq!(serial(&saved), serial(&before));
    assert!(
        saved.contains("tfenvtest_file"),
        "the backup holds the resource"
    );
    let record = project.last_history("dev");
    assert_eq!(record["terraform_command"], "state rm");
    assert_eq!(record["backup"], file);

    // Read-only commands take no backup and write no history.
    let count = backups["backups"].as_array().unwrap().len();
    expect_code(&tfenv(&project, &["exec", "dev", "--", "state", "list"]), 0);
    let again = stdout_json(&tfenv(&project, &["backups", "dev", "--output", "json"]));
    assert_eq!(again["backups"].as_array().unwrap().len(), count);
    assert_eq!(project.last_history("dev")["terraform_command"], "state rm");
}

/// terraform's timed backups (`terraform.tfstate.<time>.backup`, and any private folder
/// tfenv ran terraform with) anywhere under `dir`.
fn state_backup_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with(".exec-backup")
            || (name.starts_with("terraform.tfstate.")
                && name.ends_with(".backup")
                && name != "terraform.tfstate.backup")
        {
            found.push(path.clone());
        }
        if entry.file_type().unwrap().is_dir() && name != ".terraform" && name != ".git" {
            found.extend(state_backup_files(&path));
        }
    }
    found
}

#[test]
fn exec_on_s3_lists_what_deploy_put_there() {
    const BUCKET: &str = "tfstate-exec";
    const TABLE: &str = "tfstate-exec-locks";
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = provider::demo();
    project.write(
        "examples/quickstart/main.tf",
        &provider::module_with_backend("s3"),
    );
    project.write(
        "environments/dev.backend.conf",
        &moto.backend_conf(BUCKET, "dev/terraform.tfstate", TABLE),
    );
    deploy(&project, "dev");
    let listed = tfenv(&project, &["exec", "dev", "--", "state", "list"]);
    expect_code(&listed, 0);
    assert_eq!(addresses(&listed), ["tfenvtest_file.app"]);
    let removed = tfenv(
        &project,
        &[
            "exec",
            "dev",
            "--yes",
            "--",
            "state",
            "rm",
            "tfenvtest_file.app",
        ],
    );
    expect_code(&removed, 0);
    let state: Value =
        serde_json::from_str(&moto.object_text(BUCKET, "dev/terraform.tfstate")).unwrap();
    assert_eq!(state["resources"], serde_json::json!([]));
    assert!(project.last_history("dev")["backup"].is_string());
}

/// The var file in a folder with a space and quotes in its name.
const ODD_VAR_FILE: &str = "environments/dev's \"odd\" vars/app.tfvars";

/// A demo whose dev var files include `ODD_VAR_FILE`, setting `app_content`.
fn demo_with_awkward_var_file() -> Project {
    let project = provider::demo();
    project.write(ODD_VAR_FILE, "app_content = \"deployed\"\n");
    let toml = project.read("tfenv.toml");
    project.write(
        "tfenv.toml",
        &toml.replace(
            "var_files = [\"environments/common.tfvars\", \"environments/dev.tfvars\"]",
            "var_files = [\"environments/common.tfvars\", \"environments/dev.tfvars\", \"environments/dev's \\\"odd\\\" vars/app.tfvars\"]",
        ),
    );
    project
}

/// The tool, or a failure naming how to install it.
fn shell(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "`{name}` is not installed: these tests run the lines of `tfenv env` in it. Install it with `apt-get install -y zsh fish` (scripts/test.sh does when it runs as root)"
    );
}

/// `script` run by `shell` in the project, with tfenv and terraform on PATH.
fn in_shell(project: &Project, shell: &Path, flag: &str, script: &str) -> Output {
    let tfenv_bin = assert_cmd::cargo::cargo_bin("tfenv");
    let tf = terraform();
    let path = format!(
        "{}:{}:{}",
        tfenv_bin.parent().unwrap().display(),
        tf.parent().unwrap().display(),
        project.host_path().to_string_lossy()
    );
    Command::new(shell)
        .arg(flag)
        .arg(script)
        .current_dir(project.path())
        .env("PATH", path)
        .env("HOME", project.path())
        .env("TF_CLI_CONFIG_FILE", project.cli_config())
        .env("CHECKPOINT_DISABLE", "1")
        .env("NO_COLOR", "1")
        .env("CI", "1")
        .env_remove("TF_DATA_DIR")
        .env_remove("TF_WORKSPACE")
        .env_remove("TF_PLUGIN_CACHE_DIR")
        .env_remove("TFENV_ENV")
        .output()
        .unwrap()
}

/// The steps each shell runs: switch to dev, plan, list, then undo.
fn check_shell_session(output: &Output, project: &Project) {
    let text = output_text(output);
    expect_code(output, 0);
    assert!(
        text.contains("from-the-odd-file"),
        "plan used dev's var files:\n{text}"
    );
    assert!(
        text.contains("STATE:tfenvtest_file.app"),
        "state list:\n{text}"
    );
    let root = project.join("examples/quickstart");
    assert!(
        text.contains(&format!("PWD:{}", root.display())),
        "cd to the root:\n{text}"
    );
    assert!(text.contains("AFTER-UNSET:[][][]"), "unset:\n{text}");
}

#[test]
fn env_lines_make_bare_terraform_act_on_the_environment_in_bash() {
    let project = demo_with_awkward_var_file();
    deploy(&project, "dev");
    // What a bare plan must find in dev's var files now.
    project.write(ODD_VAR_FILE, "app_content = \"from-the-odd-file\"\n");
    let bash = shell("bash");
    let script = r#"set -e
eval "$(tfenv env dev)"
terraform plan -no-color
terraform state list | sed 's/^/STATE:/'
echo "PWD:$PWD"
eval "$(tfenv env --unset)"
echo "AFTER-UNSET:[${TF_DATA_DIR-}][${TF_CLI_ARGS_plan-}][${TFENV_ENV-}]"
"#;
    let output = in_shell(&project, &bash, "-c", script);
    check_shell_session(&output, &project);
}

#[test]
fn env_lines_make_bare_terraform_act_on_the_environment_in_zsh() {
    let project = demo_with_awkward_var_file();
    deploy(&project, "dev");
    // What a bare plan must find in dev's var files now.
    project.write(ODD_VAR_FILE, "app_content = \"from-the-odd-file\"\n");
    let zsh = shell("zsh");
    let script = r#"set -e
eval "$(tfenv env dev --shell zsh)"
terraform plan -no-color
terraform state list | sed 's/^/STATE:/'
echo "PWD:$PWD"
eval "$(tfenv env --unset --shell zsh)"
echo "AFTER-UNSET:[${TF_DATA_DIR-}][${TF_CLI_ARGS_plan-}][${TFENV_ENV-}]"
"#;
    let output = in_shell(&project, &zsh, "-c", script);
    check_shell_session(&output, &project);
}

#[test]
fn env_lines_make_bare_terraform_act_on_the_environment_in_fish() {
    let project = demo_with_awkward_var_file();
    deploy(&project, "dev");
    // What a bare plan must find in dev's var files now.
    project.write(ODD_VAR_FILE, "app_content = \"from-the-odd-file\"\n");
    let fish = shell("fish");
    let script = r#"tfenv env dev --shell fish | source; or exit 1
terraform plan -no-color; or exit 1
terraform state list | sed 's/^/STATE:/'
echo "PWD:$PWD"
tfenv env --unset --shell fish | source
echo "AFTER-UNSET:[$TF_DATA_DIR][$TF_CLI_ARGS_plan][$TFENV_ENV]"
"#;
    let output = in_shell(&project, &fish, "-c", script);
    check_shell_session(&output, &project);
}

#[test]
fn tfenv_runs_in_a_switched_shell_ignore_its_var_files() {
    // After `eval "$(tfenv env dev)"`, tfenv's own runs of another environment must not
    // get dev's var files through TF_CLI_ARGS_plan.
    let project = demo_with_awkward_var_file();
    let bash = shell("bash");
    let script = r#"set -e
eval "$(tfenv env dev)"
tfenv exec staging -- plan -no-color
"#;
    let output = in_shell(&project, &bash, "-c", script);
    let text = output_text(&output);
    expect_code(&output, 0);
    assert!(!text.contains("\"deployed\""), "{text}");
    assert!(text.contains("\"v1\""), "{text}");
    assert!(text.contains("staging"), "{text}");
}

#[test]
fn env_output_json_lists_the_variables() {
    let project = provider::demo();
    let doc = stdout_json(&tfenv(&project, &["env", "dev", "--output", "json"]));
    assert_eq!(doc["environment"], "dev");
    assert_eq!(
        doc["set"]["TF_DATA_DIR"],
        project
            .join("examples/quickstart/.terraform/tfenv/dev")
            .display()
            .to_string()
    );
    assert!(
        doc["set"]["TF_CLI_ARGS_plan"]
            .as_str()
            .unwrap()
            .contains("dev.tfvars")
    );
    assert!(
        doc["unset"]
            .as_array()
            .unwrap()
            .contains(&Value::from("TF_WORKSPACE"))
    );
}

/// terraform's `console` in a real terminal through tfenv: it reads what is typed (with
/// dev's var files), and Ctrl-C reaches terraform itself, which ends as it would alone.
#[test]
fn exec_console_gets_the_terminal_and_ctrl_c_reaches_terraform() {
    use rexpect::process::WaitStatus;
    let project = provider::demo();
    let mut cmd = project.command();
    cmd.env("TERM", "xterm")
        .env_remove("CI")
        .arg("--terraform")
        .arg(terraform())
        .args(["exec", "dev", "--", "console"]);
    let mut session =
        rexpect::session::spawn_command(cmd, Some(90_000)).expect("tfenv starts in a terminal");
    session.exp_string(">").expect("the console's prompt");
    session.send_line("var.environment").unwrap();
    session
        .exp_string("\"dev\"")
        .expect("dev's value, from its var file");
    session.send_control('c').unwrap();
    let rest = session
        .exp_eof()
        .expect("terraform and tfenv end at Ctrl-C");
    let status = loop {
        match session.process().status() {
            Some(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(20)),
            other => break other,
        }
    };
    assert!(
        matches!(status, Some(WaitStatus::Exited(_, 0))),
        "{status:?}\n{rest}"
    );
    assert!(
        !rest.contains("tfenv: interrupt"),
        "tfenv leaves Ctrl-C to terraform:\n{rest}"
    );
}

/// A saved destroy plan is refused too: tfenv cannot see that it destroys, so it would
/// skip `--allow-destroy`. Terraform 1.0.3 (which refuses -var-file beside a saved plan)
/// still gets the var files for a plain apply.
#[test]
fn exec_refuses_a_saved_destroy_plan_and_applies_without_one_on_terraform_1_0() {
    let project = Project::demo();
    let tf = crate::support::terraform_1_0();
    let run = |args: &[&str]| {
        project
            .tfenv_with(&tf)
            .args(args)
            .timeout(Duration::from_secs(180))
            .output()
            .unwrap()
    };
    let applied = run(&[
        "exec",
        "dev",
        "--yes",
        "--",
        "apply",
        "-auto-approve",
        "-no-color",
    ]);
    expect_code(&applied, 0);
    assert!(
        stdout(&applied).contains("Apply complete"),
        "{}",
        output_text(&applied)
    );
    expect_code(
        &run(&[
            "exec",
            "dev",
            "--",
            "plan",
            "-destroy",
            "-out=d.tfplan",
            "-no-color",
        ]),
        0,
    );
    let destroy = run(&[
        "exec",
        "dev",
        "--yes",
        "--",
        "apply",
        "-no-color",
        "d.tfplan",
    ]);
    expect_code(&destroy, 2);
    assert!(
        output_text(&destroy).contains("tfenv plan ENV --out DIR"),
        "{}",
        output_text(&destroy)
    );
    let outputs = stdout_json(&run(&["outputs", "dev", "--output", "json"]));
    assert_eq!(outputs["environment"]["value"], "dev", "{outputs:#}");
}

/// Switching a switched shell to another environment replaces every line of the first.
#[test]
fn env_lines_switch_a_switched_shell_to_another_environment() {
    let project = provider::demo();
    let bash = shell("bash");
    let script = r#"set -e
eval "$(tfenv env dev)"
eval "$(tfenv env staging)"
echo "ENV:$TFENV_ENV DATA:$TF_DATA_DIR ARGS:$TF_CLI_ARGS_plan"
"#;
    let output = in_shell(&project, &bash, "-c", script);
    expect_code(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("ENV:staging"), "{text}");
    assert!(text.contains("tfenv/staging"), "{text}");
    assert!(text.contains("staging.tfvars"), "{text}");
    assert!(!text.contains("dev.tfvars"), "{text}");
}

/// A refused prompt changes nothing and keeps no backup: tfenv asks first, then backs up.
#[test]
fn a_refused_exec_prompt_keeps_no_backup() {
    let project = provider::demo();
    deploy(&project, "dev");
    let pre_exec = |project: &Project| {
        stdout_json(&tfenv(project, &["backups", "dev", "--output", "json"]))["backups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["reason"] == "pre-exec")
            .count()
    };
    let mut cmd = project.command();
    cmd.env("TERM", "xterm")
        .env_remove("CI")
        .arg("--terraform")
        .arg(terraform())
        .args(["exec", "dev", "--", "state", "rm", "tfenvtest_file.app"]);
    let mut session =
        rexpect::session::spawn_command(cmd, Some(120_000)).expect("tfenv in a terminal");
    let before = session.exp_string("[y/N]").expect("the dev prompt");
    assert!(!before.contains("backed up"), "{before}");
    session.send_line("n").unwrap();
    session.flush().unwrap();
    let rest = session.exp_eof().expect("tfenv ends");
    assert!(rest.contains("confirmation not given"), "{rest}");
    match session.process().wait().unwrap() {
        rexpect::process::WaitStatus::Exited(_, code) => assert_eq!(code, 5, "{rest}"),
        other => panic!("{other:?}: {rest}"),
    }
    assert_eq!(pre_exec(&project), 0);
    let listed = tfenv(&project, &["exec", "dev", "--", "state", "list"]);
    assert_eq!(addresses(&listed), ["tfenvtest_file.app"]);
}
