//! `tfenv doctor`: each failure it checks for, injected with a fake (a cloud CLI that is
//! not logged in or missing, a terraform of the wrong version, tfutils/tfenv first on
//! PATH, a missing .gitignore, an unwritable plugin cache), and what `--fix` removes and
//! never removes.

use std::process::Output;

use serde_json::Value;

use crate::support::fake::FakeTerraform;
use crate::support::{Project, expect_code, output_text, stdout, stdout_json};

/// A project with one environment `dev` on `kind`, and a working terraform on PATH.
fn project(kind: &str, conf: &str) -> Project {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[project]\nrequired_version = \">= 1.5\"\n\n[environments.dev]\nbackend_config = \"environments/dev.backend.conf\"\nvar_files = [\"environments/dev.tfvars\"]\n",
    );
    project.write(
        "main.tf",
        &format!("terraform {{\n  backend \"{kind}\" {{}}\n}}\n"),
    );
    project.write("environments/dev.backend.conf", conf);
    project.write("environments/dev.tfvars", "");
    FakeTerraform::working().install(&project);
    project
}

fn local_project() -> Project {
    project("local", "path = \"state/dev/terraform.tfstate\"\n")
}

/// `tfenv doctor <args>` with only the project's fakes (and `extra_path`) on PATH.
fn doctor_with_path(project: &Project, path: &str, args: &[&str]) -> Output {
    project
        .tfenv()
        .env("PATH", path)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .arg("doctor")
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap()
}

/// PATH with the project's fakes and only what the fakes themselves need (bash, cat; sh
/// and sleep for a credential_process): no cloud CLI this machine may have in /usr/bin.
fn bare_path(project: &Project) -> String {
    let sys = project.join("sys");
    std::fs::create_dir_all(&sys).unwrap();
    for tool in ["bash", "cat", "sh", "sleep"] {
        let real = which::which(tool).unwrap();
        let _ = std::os::unix::fs::symlink(real, sys.join(tool));
    }
    format!("{}:{}", project.join("bin").display(), sys.display())
}

fn doctor(project: &Project, args: &[&str]) -> Output {
    doctor_with_path(project, &project.fake_path(), args)
}

/// `tfenv doctor --output json`, exiting `code`.
fn doctor_json(project: &Project, code: i32) -> Value {
    let output = doctor(project, &["--output", "json"]);
    expect_code(&output, code);
    stdout_json(&output)
}

/// The check named `name` (the first, for per-environment ones).
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {report:#}"))
}

fn assert_status(report: &Value, name: &str, status: &str, says: &str) {
    let check = check(report, name);
    assert_eq!(check["status"], status, "{report:#}");
    assert!(
        check["message"].as_str().unwrap().contains(says),
        "`{name}` should say `{says}`: {report:#}"
    );
    if status != "ok" {
        assert!(
            check["fix"].is_string(),
            "a problem comes with its fix: {check:#}"
        );
    }
}

#[test]
fn doctor_of_a_healthy_local_project_is_all_ok_and_exits_0() {
    let project = local_project();
    let report = doctor_json(&project, 0);
    assert_eq!(report["healthy"], true, "{report:#}");
    for name in [
        "terraform",
        "gitignore",
        "plugin-cache",
        "stale-data-dirs",
        "stale-env-locks",
    ] {
        assert_eq!(check(&report, name)["status"], "ok", "{report:#}");
    }
    // No backend that needs a cloud CLI: none is checked.
    for cli in ["az", "gcloud", "aws"] {
        assert!(
            !report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == cli),
            "{report:#}"
        );
    }
    let human = doctor(&project, &[]);
    expect_code(&human, 0);
    assert!(
        stdout(&human).contains("✓ terraform 1.11.4"),
        "{}",
        output_text(&human)
    );
}

#[test]
fn doctor_fails_on_a_terraform_below_required_version_and_says_how_to_fix_it() {
    let project = local_project();
    FakeTerraform::working().version("1.0.3").install(&project);
    let report = doctor_json(&project, 1);
    assert_eq!(report["healthy"], false, "{report:#}");
    assert_status(&report, "terraform", "fail", "terraform 1.0.3");
    assert_status(&report, "terraform", "fail", "required_version `>= 1.5`");
    let human = doctor(&project, &[]);
    expect_code(&human, 1);
    let text = stdout(&human);
    assert!(
        text.contains("✗ terraform 1.0.3"),
        "{}",
        output_text(&human)
    );
    assert!(
        text.contains("    fix: install a matching version"),
        "{}",
        output_text(&human)
    );
}

/// tfenv.toml allows the terraform found, but the root module's own `terraform {
/// required_version }` does not: terraform would refuse to run, so doctor fails naming
/// the file and the constraint.
#[test]
fn doctor_fails_when_the_root_modules_own_required_version_is_not_met() {
    let project = local_project();
    FakeTerraform::working().version("1.6.0").install(&project);
    project.write(
        "versions.tf",
        "terraform {\n  required_version = \">= 1.0, < 1.6\"\n}\n",
    );
    let report = doctor_json(&project, 1);
    assert_status(&report, "terraform", "ok", "terraform 1.6.0");
    assert_status(
        &report,
        "root-required-version",
        "fail",
        "terraform 1.6.0 does not satisfy required_version `>= 1.0, < 1.6` in `versions.tf`",
    );

    project.write(
        "versions.tf",
        "terraform {\n  required_version = \"~> 1.5\"\n}\n",
    );
    let report = doctor_json(&project, 0);
    assert_status(
        &report,
        "root-required-version",
        "ok",
        "`~> 1.5` in `versions.tf`",
    );
}

#[test]
fn doctor_fails_when_tfutils_tfenv_is_first_on_path() {
    let project = local_project();
    project.script("bin/tfenv", "echo 'tfenv 3.0.0'");
    let report = doctor_json(&project, 1);
    assert_status(&report, "tfenv-on-path", "fail", "tfutils/tfenv");
    assert_status(&report, "tfenv-on-path", "fail", "tfenv 3.0.0");
    // This binary's folder is not on PATH at all: the fix says to add it.
    let ours = assert_cmd::cargo::cargo_bin("tfenv");
    let our_dir = std::fs::canonicalize(ours.parent().unwrap()).unwrap();
    let bin = project.join("bin");
    let fix = check(&report, "tfenv-on-path")["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!(
            "add `{}` to PATH before `{}`",
            our_dir.display(),
            bin.display()
        )),
        "{fix}"
    );
}

/// With this binary's folder on PATH after tfutils/tfenv's, the fix says to move it.
#[test]
fn doctor_says_to_put_this_tfenv_before_tfutils_when_both_are_on_path() {
    let project = local_project();
    project.script("bin/tfenv", "echo 'tfenv 3.0.0'");
    let ours = assert_cmd::cargo::cargo_bin("tfenv");
    let our_dir = std::fs::canonicalize(ours.parent().unwrap()).unwrap();
    let path = format!("{}:{}", project.fake_path(), our_dir.display());
    let output = doctor_with_path(&project, &path, &["--output", "json"]);
    expect_code(&output, 1);
    let report = stdout_json(&output);
    assert_status(&report, "tfenv-on-path", "fail", "tfutils/tfenv");
    let fix = check(&report, "tfenv-on-path")["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!(
            "put `{}` before `{}` in PATH",
            our_dir.display(),
            project.join("bin").display()
        )),
        "{fix}"
    );
}

/// Only a script answering `tfenv <version>` is tfutils/tfenv; a script that says
/// something else, or nothing within the timeout, is another program named tfenv (warning).
#[test]
fn doctor_calls_a_tfenv_that_does_not_answer_like_tfutils_another_program() {
    let project = local_project();
    project.script("bin/tfenv", "echo 'usage: tfenv [options]'");
    let report = doctor_json(&project, 0);
    assert_status(
        &report,
        "tfenv-on-path",
        "warn",
        "another program named tfenv",
    );
    assert!(
        !check(&report, "tfenv-on-path")["message"]
            .as_str()
            .unwrap()
            .contains("tfutils"),
        "{report:#}"
    );

    project.script("bin/tfenv", "sleep 30");
    let output = doctor(&project, &["--timeout", "1s", "--output", "json"]);
    expect_code(&output, 0);
    assert_status(
        &stdout_json(&output),
        "tfenv-on-path",
        "warn",
        "another program named tfenv",
    );
}

#[test]
fn doctor_says_when_this_tfenv_is_the_one_on_path() {
    let project = local_project();
    let ours = assert_cmd::cargo::cargo_bin("tfenv");
    let path = format!(
        "{}:{}",
        ours.parent().unwrap().display(),
        project.fake_path()
    );
    let output = doctor_with_path(&project, &path, &["--output", "json"]);
    expect_code(&output, 0);
    assert_status(&stdout_json(&output), "tfenv-on-path", "ok", "is this one");
}

#[test]
fn doctor_fails_when_az_is_not_logged_in_for_an_azurerm_environment() {
    let project = project(
        "azurerm",
        "storage_account_name = \"acct\"\ncontainer_name = \"tfstate\"\nkey = \"dev.tfstate\"\n",
    );
    project.script(
        "bin/az",
        "[ \"$1 $2\" = 'account show' ] || { echo \"unexpected: $*\" >&2; exit 2; }\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1",
    );
    let report = doctor_json(&project, 1);
    assert_status(&report, "az", "fail", "az is not logged in");
    assert_status(&report, "az", "fail", "Please run 'az login'");
    assert!(
        check(&report, "az")["fix"]
            .as_str()
            .unwrap()
            .contains("az login"),
        "{report:#}"
    );

    // Logged in: the account, never a secret.
    project.script(
        "bin/az",
        r#"echo '{"name":"Dev subscription","user":{"name":"alice@example.com","type":"user"}}'"#,
    );
    let report = doctor_json(&project, 0);
    assert_status(&report, "az", "ok", "logged in as `alice@example.com`");
}

#[test]
fn doctor_fails_when_gcloud_is_missing_for_a_gcs_environment() {
    let project = project("gcs", "bucket = \"tfstate\"\nprefix = \"dev\"\n");
    let path = bare_path(&project);
    let output = doctor_with_path(&project, &path, &["--output", "json"]);
    expect_code(&output, 1);
    let report = stdout_json(&output);
    assert_status(&report, "gcloud", "fail", "the Google Cloud CLI (`gcloud`)");
    assert_status(&report, "gcloud", "fail", "not on PATH");

    // There, but with no active account.
    project.script(
        "bin/gcloud",
        r#"echo '[{"account":"old@example.com","status":""}]'"#,
    );
    let output = doctor_with_path(&project, &path, &["--output", "json"]);
    expect_code(&output, 1);
    assert_status(&stdout_json(&output), "gcloud", "fail", "no active account");
}

/// An s3 project whose environment `dev` has `conf` (plus bucket, key and region).
fn s3_project(conf: &str) -> Project {
    project(
        "s3",
        &format!("bucket = \"tfstate\"\nkey = \"dev.tfstate\"\nregion = \"us-east-1\"\n{conf}"),
    )
}

/// `tfenv doctor --output json` on an s3 project with no `aws` on PATH and none of the
/// host's AWS settings: HOME, the shared files and every AWS_ variable are the test's
/// (`vars`); the instance metadata service is not asked.
fn s3_doctor(project: &Project, vars: &[(&str, &str)]) -> Output {
    s3_doctor_with(project, vars, &[])
}

/// `s3_doctor` with more arguments.
fn s3_doctor_with(project: &Project, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = project.tfenv();
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") {
            cmd.env_remove(name);
        }
    }
    std::fs::create_dir_all(project.join("home")).unwrap();
    cmd.env("PATH", bare_path(project))
        .env("HOME", project.join("home"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            project.join("aws/credentials"),
        )
        .env("AWS_CONFIG_FILE", project.join("aws/config"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (name, value) in vars {
        cmd.env(name, value);
    }
    cmd.args(["doctor", "--output", "json"])
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap()
}

/// The s3 credentials check is all the report says about AWS: no `aws` CLI check.
fn assert_no_aws_cli_check(report: &Value) {
    assert!(
        !report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "aws"),
        "s3 needs no aws CLI: {report:#}"
    );
    assert_eq!(check(report, "aws-credentials")["environment"], "dev");
}

/// Neither stdout (the JSON report) nor stderr shows any of `secrets`.
fn assert_no_secret(output: &Output, secrets: &[&str]) {
    let text = output_text(output);
    for secret in secrets {
        assert!(!text.contains(secret), "`{secret}` shown:\n{text}");
    }
}

const KEY_ID: &str = "AKIAEXAMPLEKEY01WXYZ";
const SECRET: &str = "wJalrXUtnFEMIexampleSECRETkey0123456789";

#[test]
fn doctor_needs_no_aws_cli_and_takes_s3_credentials_from_the_backend_config() {
    let project = s3_project(&format!(
        "access_key = \"{KEY_ID}\"\nsecret_key = \"{SECRET}\"\ntoken = \"session-token-secret\"\n"
    ));
    let output = s3_doctor(&project, &[]);
    expect_code(&output, 0);
    let report = stdout_json(&output);
    assert_no_aws_cli_check(&report);
    assert_status(
        &report,
        "aws-credentials",
        "ok",
        "credentials from `access_key` / `secret_key` in the backend config (access key `…WXYZ`)",
    );
    assert_status(&report, "aws-credentials", "ok", "not checked against AWS");
    assert_no_secret(
        &output,
        &["AKIAEXAMPLEKEY01", SECRET, "session-token-secret"],
    );
}

#[test]
fn doctor_takes_s3_credentials_from_the_profile_aws_profile_names_in_the_shared_files() {
    let project = s3_project("");
    let credentials = project.write(
        "aws/credentials",
        &format!(
            "[default]\naws_access_key_id = AKIADEFAULTKEY00ABCD\naws_secret_access_key = default-secret-value\n\n[ops]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"
        ),
    );
    let output = s3_doctor(&project, &[("AWS_PROFILE", "ops")]);
    expect_code(&output, 0);
    let report = stdout_json(&output);
    assert_no_aws_cli_check(&report);
    assert_status(
        &report,
        "aws-credentials",
        "ok",
        "credentials from profile `ops` (AWS_PROFILE)",
    );
    assert_status(&report, "aws-credentials", "ok", "`…WXYZ`");
    assert_no_secret(
        &output,
        &["AKIAEXAMPLEKEY01", SECRET, "default-secret-value"],
    );

    // No profile named: the default one of the same file.
    let output = s3_doctor(&project, &[]);
    expect_code(&output, 0);
    let report = stdout_json(&output);
    assert_status(
        &report,
        "aws-credentials",
        "ok",
        &format!(
            "credentials from the default profile of `{}` (AWS_SHARED_CREDENTIALS_FILE)",
            credentials.display()
        ),
    );
    assert_status(&report, "aws-credentials", "ok", "(access key `…ABCD`)");
    assert_no_secret(&output, &["AKIADEFAULTKEY00", "default-secret-value"]);
}

#[test]
fn doctor_takes_s3_credentials_from_aws_access_key_id_in_the_environment() {
    let project = s3_project("");
    let output = s3_doctor(
        &project,
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    );
    expect_code(&output, 0);
    let report = stdout_json(&output);
    assert_no_aws_cli_check(&report);
    assert_status(
        &report,
        "aws-credentials",
        "ok",
        "credentials from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) (access key `…WXYZ`)",
    );
    assert_no_secret(&output, &["AKIAEXAMPLEKEY01", SECRET]);
}

#[test]
fn doctor_fails_naming_the_profile_and_its_file_when_the_s3_profile_does_not_exist() {
    let project = s3_project("profile = \"ops\"\n");
    let credentials = project.write(
        "aws/credentials",
        &format!("[dev]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"),
    );
    let output = s3_doctor(&project, &[]);
    expect_code(&output, 1);
    let report = stdout_json(&output);
    assert_eq!(report["healthy"], false, "{report:#}");
    assert_no_aws_cli_check(&report);
    let file = format!("`{}` (AWS_SHARED_CREDENTIALS_FILE)", credentials.display());
    assert_status(
        &report,
        "aws-credentials",
        "fail",
        "profile `ops` was not defined",
    );
    assert_status(
        &report,
        "aws-credentials",
        "fail",
        &format!("tfenv tried profile `ops` (`profile` in the backend config) in {file}"),
    );
    let fix = check(&report, "aws-credentials")["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!("fix profile `ops` in {file}")),
        "{report:#}"
    );
    assert_no_secret(&output, &["AKIAEXAMPLEKEY01", SECRET]);
}

#[test]
fn doctor_fails_with_the_fix_when_no_s3_credentials_are_found_anywhere() {
    let project = s3_project("");
    let started = std::time::Instant::now();
    let output = s3_doctor(&project, &[]);
    expect_code(&output, 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "doctor took {:?}",
        started.elapsed()
    );
    let report = stdout_json(&output);
    assert_no_aws_cli_check(&report);
    assert_status(
        &report,
        "aws-credentials",
        "fail",
        "no usable AWS credentials",
    );
    // Each source of the default chain, and why it gave none, in one line.
    assert_status(
        &report,
        "aws-credentials",
        "fail",
        "Environment: environment variable not set; Profile: not set;",
    );
    assert_status(
        &report,
        "aws-credentials",
        "fail",
        "AWS_EC2_METADATA_DISABLED",
    );
    let fix = check(&report, "aws-credentials")["fix"].as_str().unwrap();
    assert!(
        fix.contains("export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{report:#}"
    );
}

#[test]
fn doctor_gives_up_on_s3_credentials_that_do_not_come_within_the_timeout() {
    // A profile whose credential_process never answers (a hung SSO helper, a prompt).
    let project = s3_project("profile = \"slow\"\n");
    let script = project.write(
        "slow-credentials.sh",
        &format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 30\n",
            project.join("credential-process.pid").display()
        ),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    project.write(
        "aws/config",
        &format!(
            "[profile slow]\ncredential_process = {}\n",
            project.join("slow-credentials.sh").display()
        ),
    );
    let started = std::time::Instant::now();
    let output = s3_doctor_with(&project, &[], &["--timeout", "1s"]);
    expect_code(&output, 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "doctor waited {:?} for credentials",
        started.elapsed()
    );
    assert_status(
        &stdout_json(&output),
        "aws-credentials",
        "fail",
        "resolving the AWS credentials of `dev` did not answer within 1s",
    );
    // The SDK does not stop a credential_process it gave up on; tfenv does, on its way out.
    let pid: i32 = project
        .read("credential-process.pid")
        .trim()
        .parse()
        .unwrap();
    let gone = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
    });
    assert!(gone, "the credential_process (pid {pid}) outlived tfenv");
}

#[test]
fn doctor_fails_when_git_does_not_ignore_state_and_terraform_folders() {
    let project = local_project();
    project.git(&["init", "-q"]);
    let report = doctor_json(&project, 1);
    assert_status(&report, "gitignore", "fail", "`state/`");
    assert_status(&report, "gitignore", "fail", "`.terraform/`");
    project.write(".gitignore", "/state/\n.terraform/\n/bin/\n");
    let report = doctor_json(&project, 0);
    assert_status(&report, "gitignore", "ok", "git picks up nothing");
}

#[test]
fn doctor_fails_on_a_plugin_cache_that_cannot_be_written() {
    let project = local_project();
    // Not a folder (tests run as root too, whom no file mode stops).
    project.write(".terraform/tfenv/plugin-cache", "");
    let report = doctor_json(&project, 1);
    assert_status(&report, "plugin-cache", "fail", "is not a folder");

    // A folder nobody may create files in, the user's own TF_PLUGIN_CACHE_DIR.
    let output = project
        .tfenv()
        .env("PATH", project.fake_path())
        .env("TF_PLUGIN_CACHE_DIR", "/proc/self/fdinfo")
        .args(["doctor", "--output", "json"])
        .output()
        .unwrap();
    expect_code(&output, 1);
    assert_status(
        &stdout_json(&output),
        "plugin-cache",
        "fail",
        "is not writable",
    );

    // Writable: its size.
    std::fs::remove_file(project.join(".terraform/tfenv/plugin-cache")).unwrap();
    project.write(
        ".terraform/tfenv/plugin-cache/registry.terraform.io/x/y/1.0.0/linux_amd64/p",
        &"x".repeat(2048),
    );
    let report = doctor_json(&project, 0);
    assert_status(&report, "plugin-cache", "ok", "writable and holds 2.00 KiB");
}

/// A data dir and fingerprint as `init` leaves them, for an environment named `name`.
fn data_dir(project: &Project, name: &str) {
    project.write(&format!(".terraform/tfenv/{name}/terraform.tfstate"), "{}");
    project.write(&format!(".terraform/tfenv/{name}.fingerprint"), "abc");
}

#[test]
fn doctor_lists_data_dirs_of_removed_environments_and_fix_removes_them_with_yes_only() {
    let project = local_project();
    data_dir(&project, "dev");
    data_dir(&project, "old");
    // Not an environment's: `tfenv validate`'s data dir, the plugin cache.
    data_dir(&project, "_validate");
    project.write(".terraform/tfenv/plugin-cache/x", "");
    let report = doctor_json(&project, 0);
    assert_status(&report, "stale-data-dirs", "warn", "`.terraform/tfenv/old`");
    assert!(
        !check(&report, "stale-data-dirs")["message"]
            .as_str()
            .unwrap()
            .contains("tfenv/dev"),
        "{report:#}"
    );

    // Without a terminal, --fix needs --yes: refused, nothing removed.
    let refused = doctor(&project, &["--fix", "--output", "json"]);
    expect_code(&refused, 5);
    assert_eq!(stdout_json(&refused)["fixed"], serde_json::json!([]));
    assert!(
        crate::support::stderr(&refused).contains("--yes"),
        "{}",
        output_text(&refused)
    );
    assert!(project.join(".terraform/tfenv/old").is_dir());

    let fixed = doctor(&project, &["--fix", "--yes", "--output", "json"]);
    expect_code(&fixed, 0);
    let report = stdout_json(&fixed);
    assert_eq!(report["fixed"], serde_json::json!([".terraform/tfenv/old"]));
    assert_status(&report, "stale-data-dirs", "ok", "removed 1");
    assert!(!project.join(".terraform/tfenv/old").exists());
    assert!(!project.join(".terraform/tfenv/old.fingerprint").exists());
    assert!(project.join(".terraform/tfenv/_validate").is_dir());
    assert!(project.join(".terraform/tfenv/plugin-cache/x").is_file());
    // The living environment's data dir stays.
    assert!(project.join(".terraform/tfenv/dev").is_dir());
    assert!(project.join(".terraform/tfenv/dev.fingerprint").is_file());
}

/// A holder line in `state/dev/.tfenv.lock` of `tfenv <command> dev` by `pid` on `host`,
/// `applying` or not, with nobody holding the OS lock.
fn holder_line(project: &Project, command: &str, pid: u32, host: &str, applying: bool) {
    let mut holder = serde_json::json!({
        "pid": pid, "command": command, "environment": "dev", "who": "alice",
        "host": host, "since": "2026-11-22T10:00:00Z", "recorded": command != "plan"
    });
    if applying {
        holder["applying"] = serde_json::json!("2026-11-22T10:01:00Z");
    }
    project.write("state/dev/.tfenv.lock", &format!("{holder}\n"));
}

fn this_host() -> String {
    nix::unistd::gethostname().unwrap().into_string().unwrap()
}

/// A holder line of a `tfenv deploy dev` killed while applying, whose process is gone.
fn dead_holder(project: &Project) -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    holder_line(project, "deploy", pid, &this_host(), true);
    pid
}

#[test]
fn doctor_fails_on_a_lock_left_by_a_run_killed_while_applying_and_fix_records_and_empties_it() {
    let project = local_project();
    let pid = dead_holder(&project);
    let report = doctor_json(&project, 1);
    assert_status(&report, "stale-env-locks", "fail", &format!("pid {pid}"));

    let fixed = doctor(&project, &["--fix", "--yes", "--output", "json"]);
    expect_code(&fixed, 0);
    let report = stdout_json(&fixed);
    assert_eq!(
        report["fixed"],
        serde_json::json!(["state/dev/.tfenv.lock"]),
        "{report:#}"
    );
    assert_status(&report, "stale-env-locks", "ok", "cleared 1");
    assert_eq!(project.read("state/dev/.tfenv.lock"), "");
    // The killed run is in history, as the next deploy would have recorded it.
    let record = project.last_history("dev");
    assert_eq!(record["result"], "killed", "{record:#}");
    let again = doctor_json(&project, 0);
    assert_status(&again, "stale-env-locks", "ok", "no tfenv lock files");
}

/// The next run decides by the OS lock, not the pid: a holder line naming a live process
/// (here the test itself) or another host, with the OS lock free, is a killed run.
#[test]
fn doctor_flags_a_lock_whose_os_lock_is_free_even_when_its_pid_is_alive_or_on_another_host() {
    let project = local_project();
    holder_line(&project, "plan", std::process::id(), &this_host(), false);
    let report = doctor_json(&project, 0);
    assert_status(
        &report,
        "stale-env-locks",
        "warn",
        &format!("pid {}", std::process::id()),
    );

    holder_line(&project, "deploy", 1, "another-host.example", true);
    let report = doctor_json(&project, 1);
    assert_status(&report, "stale-env-locks", "fail", "another-host.example");

    // --fix clears it; the human message says what happened to the file: emptied.
    let fixed = doctor(&project, &["--fix", "--yes"]);
    expect_code(&fixed, 0);
    let text = output_text(&fixed);
    assert!(text.contains("emptied `state/dev/.tfenv.lock`"), "{text}");
    assert!(!text.contains("removed `state/dev/.tfenv.lock`"), "{text}");
    assert_eq!(project.read("state/dev/.tfenv.lock"), "");
    assert_eq!(project.last_history("dev")["result"], "killed");
}

#[test]
fn doctor_fix_never_touches_a_lock_someone_holds() {
    let project = local_project();
    let pid = dead_holder(&project);
    // The holder line names a dead process, but the OS lock is held by a live one: a
    // run is going on (the next run would say busy), nothing is stale.
    let mut holder = std::process::Command::new("flock")
        .arg(project.join("state/dev/.tfenv.lock"))
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    crate::support::wait_until(
        "flock holds the lock",
        std::time::Duration::from_secs(10),
        || {
            std::fs::File::open(project.join("state/dev/.tfenv.lock"))
                .unwrap()
                .try_lock()
                .is_err()
        },
    );
    let fixed = doctor(&project, &["--fix", "--yes", "--output", "json"]);
    let _ = holder.kill();
    let _ = holder.wait();
    expect_code(&fixed, 0);
    let report = stdout_json(&fixed);
    assert_eq!(report["fixed"], serde_json::json!([]), "{report:#}");
    assert_status(&report, "stale-env-locks", "ok", "no tfenv lock files");
    assert!(
        project
            .read("state/dev/.tfenv.lock")
            .contains(&format!("\"pid\":{pid}")),
        "the holder line stays"
    );
}

#[test]
fn doctor_stops_a_cloud_cli_that_does_not_answer_within_the_timeout() {
    let project = project(
        "azurerm",
        "storage_account_name = \"acct\"\ncontainer_name = \"tfstate\"\nkey = \"dev.tfstate\"\n",
    );
    project.script("bin/az", "sleep 30");
    let started = std::time::Instant::now();
    let output = doctor(&project, &["--timeout", "1s", "--output", "json"]);
    expect_code(&output, 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "doctor waited {:?} for a hung az",
        started.elapsed()
    );
    assert_status(
        &stdout_json(&output),
        "az",
        "fail",
        "did not answer within 1s",
    );
}

#[test]
fn doctor_fails_on_a_fifo_in_place_of_an_environment_lock_without_hanging() {
    let project = local_project();
    std::fs::create_dir_all(project.join("state/dev")).unwrap();
    nix::unistd::mkfifo(
        &project.join("state/dev/.tfenv.lock"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let report = doctor_json(&project, 1);
    assert_status(
        &report,
        "unreadable-env-locks",
        "fail",
        ".tfenv.lock` is a FIFO (named pipe), not a regular file",
    );
    // --fix leaves it alone too: nothing it knows how to clear.
    let output = doctor(&project, &["--fix", "--yes", "--output", "json"]);
    expect_code(&output, 1);
    assert_eq!(stdout_json(&output)["fixed"], serde_json::json!([]));
}
