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
