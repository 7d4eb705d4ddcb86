//! --version, --help, completions and the man page.

use predicates::prelude::*;

use crate::support::Project;

#[test]
fn version_names_this_project() {
    Project::empty()
        .tfenv()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("tfenv "));
    Project::empty()
        .tfenv()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("safe multi-environment Terraform"));
}

#[test]
fn help_lists_every_command_with_a_description() {
    let output = Project::empty().tfenv().arg("--help").output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    for (command, words) in [
        ("envs", "List environments"),
        ("init", "terraform init"),
        ("status", "Health of every environment"),
        ("plan", "summarize what would change"),
        ("deploy", "confirm by tier"),
        ("refresh", "apply -refresh-only"),
        ("outputs", "outputs"),
        ("history", "deploy ledger"),
        ("backup", "SHA-256"),
        ("backups", "List an environment's backups"),
        ("verify", "against its manifest"),
        ("restore", "terraform state push"),
        ("prune", "oldest backups"),
        ("completions", "shell completions"),
        ("man", "man page"),
    ] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(command))
            .unwrap_or_else(|| panic!("`{command}` missing from --help:\n{text}"));
        assert!(line.contains(words), "{line}");
    }
    assert!(text.contains("Exit codes:"), "{text}");
}

#[test]
fn each_subcommand_help_shows_an_example() {
    for command in [
        "envs",
        "init",
        "status",
        "plan",
        "deploy",
        "refresh",
        "outputs",
        "history",
        "completions",
        "man",
    ] {
        Project::empty()
            .tfenv()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"))
            .stdout(predicate::str::contains(format!("tfenv {command}")));
    }
}

/// `tfenv help` and `tfenv help <command>` print what `--help` prints.
#[test]
fn the_help_subcommand_prints_the_help_of_tfenv_or_a_command() {
    let project = Project::empty();
    let help = |args: &[&str]| {
        let output = project.tfenv().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(help(&["help"]), help(&["--help"]));
    assert_eq!(help(&["help", "deploy"]), help(&["deploy", "--help"]));
    assert!(help(&["help", "deploy"]).contains("Usage: tfenv deploy"));
}

/// Help is text: asked for in JSON, it is a usage error, as one JSON document.
#[test]
fn the_help_subcommand_in_json_is_a_usage_error_in_json() {
    for args in [
        &["help", "--output", "json"][..],
        &["--output", "json", "help", "deploy"],
        &["help", "deploy", "--output", "json"],
    ] {
        let output = Project::empty().tfenv().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: one JSON document: {e}: {output:?}"));
        assert_eq!(
            json["error"]["message"], "`tfenv help` prints text, not JSON",
            "{args:?}"
        );
        assert_eq!(json["error"]["exit_code"], 2);
    }
}

#[test]
fn a_commands_help_lists_its_own_options_before_the_global_ones() {
    let output = Project::empty()
        .tfenv()
        .args(["deploy", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing:\n{text}"))
    };
    assert!(at("--yes") < at("Global options:"), "{text}");
    assert!(at("Global options:") < at("--chdir"), "{text}");
    assert!(at("Global options:") < at("--non-interactive"), "{text}");
}

/// `completions` and `man` do the same with or without -C, --terraform, -v, …: their help
/// leaves those out, and they are still accepted there.
#[test]
fn completions_and_man_help_leave_out_the_globals_that_do_nothing_for_them() {
    let project = Project::empty();
    for args in [&["man", "--help"][..], &["completions", "--help"]] {
        let output = project.tfenv().args(args).output().unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        for global in [
            "--chdir",
            "--config",
            "--verbose",
            "--quiet",
            "--no-color",
            "--non-interactive",
            "--terraform",
        ] {
            assert!(!text.contains(global), "{args:?} lists {global}:\n{text}");
        }
        assert!(text.contains("--output"), "{text}");
    }
    project
        .tfenv()
        .args(["man", "-C", ".", "--no-color", "-q"])
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH tfenv"));
    project
        .tfenv()
        .args(["-v", "completions", "bash", "--terraform", "x"])
        .assert()
        .success()
        .stdout(predicate::str::contains("_clap_complete_tfenv()"));
}

#[test]
fn the_man_page_name_line_names_tfenv_once() {
    let output = Project::empty().tfenv().arg("man").output().unwrap();
    let page = String::from_utf8(output.stdout).unwrap();
    let name = page
        .lines()
        .skip_while(|l| *l != ".SH NAME")
        .nth(1)
        .unwrap_or_else(|| panic!("no NAME section:\n{page}"));
    assert_eq!(
        name,
        "tfenv \\- safe multi\\-environment Terraform (dev / staging / production)"
    );
}

#[test]
fn bad_command_line_exits_2() {
    Project::empty().tfenv().arg("deploi").assert().code(2);
    Project::empty().tfenv().args(["init"]).assert().code(2);
    Project::empty()
        .tfenv()
        .args(["init", "dev", "--all"])
        .assert()
        .code(2);
}

#[test]
fn completions_and_man_page_are_generated() {
    Project::empty()
        .tfenv()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("_clap_complete_tfenv()"));
    Project::empty()
        .tfenv()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH tfenv"));
}

/// `args` run in a demo project with stdout going to `stdout`.
fn run_into(args: &[&str], stdout: impl Into<std::process::Stdio>) -> std::process::Output {
    let project = Project::demo();
    let output = project
        .command()
        .args(args)
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    drop(project);
    output
}

#[test]
fn output_that_cannot_be_written_exits_1_saying_so() {
    for args in [
        &["envs"][..],
        &["envs", "--output", "json"],
        &["completions", "bash"],
        &["man"],
        &["--help"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full is needed for this test");
        let output = run_into(args, full);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("error: cannot write to standard output: No space left on device"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn output_into_a_closed_pipe_exits_quietly() {
    for args in [
        &["envs"][..],
        &["completions", "bash"],
        &["man"],
        &["--help"],
    ] {
        // A pipe whose reader is gone, like `tfenv envs | head -1` once head exited.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = run_into(args, writer);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}
