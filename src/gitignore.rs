//! Keeping `state/`, `.terraform/` and the local backend's state files out of git: which
//! of them git would pick up, and the offer to add them to the project's .gitignore (they
//! hold state and secrets).
//! May use: git, confirm (the `Prompter` it is handed), project, process, files, output.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::confirm::{Prompter, Question};
use crate::files;
use crate::git;
use crate::output::Printer;
use crate::process::Runner;
use crate::project::{Project, own_files, physical};

/// A folder git does not ignore, and the .gitignore line that would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unignored {
    /// As the user sees it: `state/`, `examples/quickstart/.terraform/`.
    pub shown: String,
    /// The line to add: `/state/`, `.terraform/`.
    pub pattern: String,
}

/// The folders and files that must be ignored and are not. Empty outside a git
/// repository.
pub async fn unignored(runner: &dyn Runner, project: &Project) -> Vec<Unignored> {
    // (paths inside for git to judge, all of which must be ignored; what is shown)
    let mut checks: Vec<(Vec<PathBuf>, Unignored)> = Vec::new();
    if let Ok(rel) = project.state_dir.strip_prefix(&project.root) {
        checks.push((
            vec![rel.join("tfenv-check/outputs.json")],
            Unignored {
                shown: format!("{}/", rel.display()),
                pattern: format!("/{}/", rel.display()),
            },
        ));
    }
    let mut roots: Vec<&PathBuf> = project.environments.iter().map(|e| &e.root).collect();
    roots.sort();
    roots.dedup();
    for root in roots {
        if let Ok(rel) = root.strip_prefix(&project.root) {
            checks.push((
                vec![rel.join(".terraform/tfenv")],
                Unignored {
                    shown: format!("{}/", rel.join(".terraform").display()),
                    pattern: ".terraform/".to_string(),
                },
            ));
        }
    }
    checks.extend(local_state_checks(project));
    let paths: Vec<PathBuf> = checks.iter().flat_map(|(p, _)| p.clone()).collect();
    let Some(verdicts) = git::ignored(runner, &project.root, &paths).await else {
        return Vec::new();
    };
    let mut verdicts = verdicts.into_iter();
    checks
        .into_iter()
        .filter_map(|(paths, unignored)| {
            // Every path takes its verdict, whatever the ones before it said.
            let ignored: Vec<bool> = paths
                .iter()
                .map(|_| verdicts.next().unwrap_or(true))
                .collect();
            (!ignored.iter().all(|i| *i)).then_some(unignored)
        })
        .collect()
}

/// The local backend's states outside `state/` (inside the project): a workspace's
/// `terraform.tfstate.d/` as a folder, any other state file with its `.backup` and lock
/// info as one pattern (`/tfstate/*prod.tfstate*` matches all three and nothing else
/// but other copies of that state).
fn local_state_checks(project: &Project) -> Vec<(Vec<PathBuf>, Unignored)> {
    let top = physical(&project.root);
    let mut checks = Vec::new();
    for local in own_files::local_states(project) {
        let rel = |path: &Path| path.strip_prefix(&top).ok().map(Path::to_path_buf);
        let files: Option<Vec<PathBuf>> = local.files.iter().map(|f| rel(f)).collect();
        let (Some(files), Some(state)) = (files, rel(&local.state)) else {
            continue;
        };
        let unignored = match local.workspace_dir.as_deref().and_then(rel) {
            Some(dir) => Unignored {
                shown: format!("{}/", dir.display()),
                pattern: format!("/{}/", dir.display()),
            },
            None => {
                let name = state.file_name().unwrap_or_default().to_string_lossy();
                let dir = state.parent().unwrap_or(Path::new(""));
                let glob = dir.join(format!("*{name}*"));
                Unignored {
                    shown: state.display().to_string(),
                    pattern: format!("/{}", glob.display()),
                }
            }
        };
        if !checks
            .iter()
            .any(|(_, known): &(Vec<PathBuf>, Unignored)| known.shown == unignored.shown)
        {
            checks.push((files, unignored));
        }
    }
    checks
}

/// Before the first init: when git would pick up `state/` or `.terraform/`, ask
/// `prompter` to add them to .gitignore (interactive), or say which lines to add
/// (non-interactive).
pub async fn offer(
    runner: &dyn Runner,
    printer: &Printer,
    prompter: Arc<dyn Prompter>,
    interactive: bool,
    project: &Project,
) -> anyhow::Result<()> {
    let missing = unignored(runner, project).await;
    if missing.is_empty() {
        return Ok(());
    }
    let mut patterns: Vec<String> = missing.iter().map(|m| m.pattern.clone()).collect();
    patterns.dedup();
    let shown: Vec<String> = missing.iter().map(|m| format!("`{}`", m.shown)).collect();
    let gitignore = project.root.join(".gitignore");
    if !interactive {
        printer.warn(&format!(
            "git does not ignore {}, which will hold state and secrets; add to `{}`:\n  {}",
            listed(&shown),
            project.show(&gitignore),
            patterns.join("\n  ")
        ));
        return Ok(());
    }
    let question = Question::YesNo {
        prompt: format!(
            "git does not ignore {}, which will hold state and secrets. Add {} to {}?",
            listed(&shown),
            listed(&patterns),
            project.show(&gitignore)
        ),
    };
    let answer = tokio::task::spawn_blocking(move || prompter.ask(&question)).await??;
    if answer.as_deref() != Some("y") {
        printer.warn("not added: `tfenv status` will report it until they are ignored");
        return Ok(());
    }
    append(&gitignore, &patterns)?;
    printer.progress(&format!(
        "added {} to {}",
        patterns.join(", "),
        project.show(&gitignore)
    ));
    Ok(())
}

/// `a`, `a and b`, `a, b and c`.
fn listed(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn append(gitignore: &std::path::Path, patterns: &[String]) -> anyhow::Result<()> {
    let mut text = match std::fs::read_to_string(gitignore) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => {
            return Err(
                anyhow::Error::new(err).context(format!("reading `{}`", gitignore.display()))
            );
        }
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("\n# tfenv: state and terraform data dirs hold state and secrets\n");
    for pattern in patterns {
        text.push_str(pattern);
        text.push('\n');
    }
    files::write_atomic(gitignore, text.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_keeps_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".gitignore");
        std::fs::write(&path, "/target").unwrap();
        append(&path, &["/state/".to_string(), ".terraform/".to_string()]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("/target\n"), "{text}");
        assert!(text.ends_with("/state/\n.terraform/\n"), "{text}");
    }
}
