//! Shell completion, as a user gets it: the script `tfenv completions bash` prints,
//! sourced into a real bash, its completion function called the way bash calls it on TAB.

use std::path::Path;
use std::process::Output;

use crate::support::{Project, stderr};

/// Runs `tfenv completions bash` in a fresh bash, then, for each line of `lines` (words
/// separated by spaces; a trailing space means the cursor is on a new, empty word), the
/// registered completion function, printing COMPREPLY one candidate a line and `--` after
/// each line's candidates. `tfenv` is found on PATH, as in a user's shell.
fn complete_in(dir: &Path, project: &Project, lines: &[&str]) -> Output {
    let script = r#"
set -u
PATH="$(dirname "$0"):$PATH"
source <(tfenv completions bash) || exit 90
fn=$(complete -p tfenv | sed -E 's/.* -F ([^ ]+) .*/\1/')
for line in "$@"; do
    read -r -a COMP_WORDS <<< "$line"
    [[ "$line" == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMP_LINE="$line"
    COMP_POINT=${#COMP_LINE}
    COMP_TYPE=9
    COMPREPLY=()
    "$fn" tfenv "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    for reply in "${COMPREPLY[@]}"; do
        # Options are clap's; the names are what this test is about.
        [[ "$reply" == -* ]] || printf '%s\n' "$reply"
    done
    echo --
done
"#;
    let mut cmd = project.command_via(&["bash", "--noprofile", "--norc", "-c", script]);
    cmd.current_dir(dir).args(lines);
    let output = cmd
        .output()
        .expect("bash is needed for this test (apt-get install bash)");
    assert_eq!(
        output.status.code(),
        Some(0),
        "bash failed: {}",
        stderr(&output)
    );
    output
}

/// Each line's candidates.
fn replies(output: &Output) -> Vec<Vec<String>> {
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    let mut all = vec![Vec::new()];
    for line in text.lines() {
        if line == "--" {
            all.push(Vec::new());
        } else {
            all.last_mut().unwrap().push(line.to_string());
        }
    }
    all.pop();
    all
}

/// dev with two backups (listed in its manifest, as `tfenv backup` leaves them).
fn demo_with_backups() -> Project {
    let project = Project::demo();
    let mut manifest = String::new();
    for (day, serial) in [(1, 3), (2, 4)] {
        let name = format!("terraform.tfstate.202611{day:02}-120000");
        project.write(&format!("state/dev/backups/{name}"), "{}");
        manifest.push_str(&format!(
            "{{\"file\":\"{name}\",\"sha256\":\"00\",\"bytes\":2,\"serial\":{serial},\"lineage\":\"l\",\"terraform_version\":\"1.11.4\",\"created\":\"2026-11-{day:02}T12:00:00Z\",\"reason\":\"manual\"}}\n"
        ));
    }
    project.write("state/dev/backups/MANIFEST.jsonl", &manifest);
    project
}

#[test]
fn bash_completes_environment_names_and_aliases_wherever_an_environment_goes() {
    let project = demo_with_backups();
    let output = complete_in(
        project.path(),
        &project,
        &[
            "tfenv deploy ",
            "tfenv deploy st",
            "tfenv plan dev ",
            "tfenv backup --all ",
            "tfenv deploy production --confirm ",
            "tfenv de",
        ],
    );
    let all = ["dev", "staging", "production", "prod"];
    assert_eq!(
        replies(&output),
        [
            all.to_vec(),
            vec!["staging"],
            all.to_vec(),
            // `--all` takes no value: nothing more to name there.
            vec![],
            // --confirm takes the full name only.
            vec!["dev", "staging", "production"],
            vec!["deploy"],
        ],
        "{}",
        stderr(&output)
    );
}

#[test]
fn bash_completes_the_backups_of_the_environment_being_restored() {
    let project = demo_with_backups();
    let elsewhere = tempfile::tempdir().unwrap();
    let root = project.path().display().to_string();
    let output = complete_in(
        project.path(),
        &project,
        &[
            "tfenv restore dev ",
            "tfenv restore prod ",
            "tfenv restore dev terraform.tfstate.20261101",
        ],
    );
    let newest_first = vec![
        "latest",
        "terraform.tfstate.20261102-120000",
        "terraform.tfstate.20261101-120000",
    ];
    assert_eq!(
        replies(&output),
        [
            newest_first.clone(),
            vec![],
            vec!["terraform.tfstate.20261101-120000"],
        ]
    );
    // From another folder, with -C naming the project.
    let line = format!("tfenv -C {root} restore dev ");
    let output = complete_in(elsewhere.path(), &project, &[&line]);
    assert_eq!(replies(&output), [newest_first]);
}

#[test]
fn completing_outside_a_project_offers_no_names_and_prints_nothing() {
    let project = Project::demo();
    let elsewhere = tempfile::tempdir().unwrap();
    let output = complete_in(
        elsewhere.path(),
        &project,
        &["tfenv deploy ", "tfenv restore dev "],
    );
    assert_eq!(replies(&output), [Vec::<String>::new(), vec![]]);
    assert_eq!(stderr(&output), "");
    // The engine itself, as the script calls it: exit 0, no output at all.
    for words in [["deploy", "d"], ["restore", "dev"]] {
        let output = project
            .command()
            .current_dir(elsewhere.path())
            .env("TFENV_COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", "2")
            .args(["--", "tfenv", words[0], words[1]])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(String::from_utf8(output.stdout).unwrap(), "", "{words:?}");
        assert_eq!(String::from_utf8(output.stderr).unwrap(), "", "{words:?}");
    }
}

#[test]
fn a_broken_tfenv_toml_is_no_project_to_complete_from() {
    let project = Project::empty();
    project.write("tfenv.toml", "[environments.dev\n");
    let output = complete_in(project.path(), &project, &["tfenv deploy "]);
    assert_eq!(replies(&output), [Vec::<String>::new()]);
    assert_eq!(stderr(&output), "");
}

#[test]
fn every_shell_gets_a_script_that_asks_tfenv_and_a_stray_complete_variable_changes_nothing() {
    let project = Project::demo();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = project
            .command()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            stderr(&output)
        );
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains("TFENV_COMPLETE"), "{shell}:\n{script}");
    }
    // clap's default variable is not tfenv's: a run stays a run.
    let output = project
        .command()
        .env("COMPLETE", "bash")
        .arg("envs")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        String::from_utf8(output.stdout)
            .unwrap()
            .contains("production")
    );
}

#[test]
fn bash_offers_no_environment_names_for_the_lock_id_of_unlock() {
    let project = Project::demo();
    let output = complete_in(
        project.path(),
        &project,
        &["tfenv unlock d", "tfenv unlock dev ", "tfenv unlock dev 9d"],
    );
    assert_eq!(
        replies(&output),
        [vec!["dev"], vec![], vec![]],
        "{}",
        stderr(&output)
    );
}

#[test]
fn bash_completes_the_command_names_of_man() {
    let project = Project::demo();
    let output = complete_in(project.path(), &project, &["tfenv man ", "tfenv man dep"]);
    let all = &replies(&output)[0];
    for name in ["envs", "plan", "deploy", "unlock", "completions", "man"] {
        assert!(all.iter().any(|n| n == name), "{name}: {all:?}");
    }
    assert!(!all.iter().any(|n| n == "help"), "{all:?}");
    assert_eq!(replies(&output)[1], ["deploy"]);
}

/// Bash hands the completion function the words as typed, quotes and `~` included: the
/// folder of `-C` (and the file of `--config`) is read as the shell reads it on Enter.
#[test]
fn bash_completes_environments_in_a_chdir_given_with_a_tilde_or_shell_quoting() {
    let project = Project::demo();
    let home = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(project.path(), home.path().join("my proj")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let abs = home.path().join("my proj").display().to_string();
    let script = r#"
set -u
PATH="$(dirname "$0"):$PATH"
source <(tfenv completions bash) || exit 90
fn=$(complete -p tfenv | sed -E 's/.* -F ([^ ]+) .*/\1/')
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
COMPREPLY=()
"$fn" tfenv "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
for reply in "${COMPREPLY[@]}"; do
    [[ "$reply" == -* ]] || printf '%s\n' "$reply"
done
"#;
    let quoted = format!("\"{abs}\"");
    let escaped = abs.replace(' ', "\\ ");
    let config = format!("'{abs}/tfenv.toml'");
    for words in [
        vec!["tfenv", "-C", "~/my\\ proj", "deploy", "st"],
        vec!["tfenv", "-C", "~/'my proj'", "deploy", "st"],
        vec!["tfenv", "-C", &quoted, "deploy", "st"],
        vec!["tfenv", "--chdir", &escaped, "deploy", "st"],
        vec!["tfenv", "-C", &escaped, "--config", &config, "deploy", "st"],
    ] {
        let mut cmd = project.command_via(&["bash", "--noprofile", "--norc", "-c", script]);
        cmd.current_dir(elsewhere.path())
            .env("HOME", home.path())
            .args(&words);
        let output = cmd
            .output()
            .expect("bash is needed for this test (apt-get install bash)");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "staging\n",
            "{words:?}: {}",
            stderr(&output)
        );
    }
}

/// `source <(tfenv completions bash)` in a .bashrc must never fail, nor `tfenv man`:
/// neither reads a project, so a deleted current directory is no error for them.
#[test]
fn completions_and_man_work_in_a_deleted_current_directory() {
    let project = Project::demo();
    let gone = tempfile::tempdir().unwrap();
    let dir = gone.path().join("gone");
    std::fs::create_dir(&dir).unwrap();
    let man_dir = gone.path().join("man1");
    for args in [
        vec!["completions", "bash"],
        vec!["man"],
        vec!["man", "deploy"],
        vec!["man", "--dir", man_dir.to_str().unwrap()],
    ] {
        let mut cmd = project.command_via(&[
            "sh",
            "-c",
            "cd \"$0\" && rmdir \"$0\" && exec \"$@\"",
            dir.to_str().unwrap(),
        ]);
        cmd.args(&args);
        // `sh -c SCRIPT DIR TFENV ARGS…`: $0 is DIR, "$@" is tfenv and its arguments.
        std::fs::create_dir_all(&dir).unwrap();
        let output = cmd.output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            !output.stdout.is_empty() || args.contains(&"--dir"),
            "{args:?}"
        );
        assert!(!dir.exists(), "the directory was deleted before tfenv ran");
    }
    assert!(man_dir.join("tfenv-deploy.1").is_file());
    // A command that reads a project still says what is wrong there.
    let mut cmd = project.command_via(&[
        "sh",
        "-c",
        "cd \"$0\" && rmdir \"$0\" && exec \"$@\"",
        dir.to_str().unwrap(),
    ]);
    std::fs::create_dir_all(&dir).unwrap();
    cmd.arg("envs");
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot read the current directory"),
        "{}",
        stderr(&output)
    );
}
