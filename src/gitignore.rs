//! Keeping `state/` and `.terraform/` out of git: which of them git would pick up, and
//! the offer to add them to the project's .gitignore (they hold state and secrets).
//! May use: git, confirm (the `Prompter` it is handed), project, process, files, output.

use std::path::PathBuf;
use std::sync::Arc;

use crate::confirm::{Prompter, Question};
use crate::files;
use crate::git;
use crate::output::Printer;
use crate::process::Runner;
use crate::project::Project;

/// A folder git does not ignore, and the .gitignore line that would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unignored {
    /// As the user sees it: `state/`, `examples/quickstart/.terraform/`.
    pub shown: String,
    /// The line to add: `/state/`, `.terraform/`.
    pub pattern: String,
}

/// The folders that must be ignored and are not. Empty outside a git repository.
pub async fn unignored(runner: &dyn Runner, project: &Project) -> Vec<Unignored> {
    // (a path inside the folder for git to judge, the folder as shown, the pattern)
    let mut checks: Vec<(PathBuf, Unignored)> = Vec::new();
    if let Ok(rel) = project.state_dir.strip_prefix(&project.root) {
        checks.push((
            rel.join("tfenv-check/outputs.json"),
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
                rel.join(".terraform/tfenv"),
                Unignored {
                    shown: format!("{}/", rel.join(".terraform").display()),
                    pattern: ".terraform/".to_string(),
                },
            ));
        }
    }
    let paths: Vec<PathBuf> = checks.iter().map(|(p, _)| p.clone()).collect();
    let Some(verdicts) = git::ignored(runner, &project.root, &paths).await else {
        return Vec::new();
    };
    checks
        .into_iter()
        .zip(verdicts)
        .filter(|(_, ignored)| !ignored)
        .map(|((_, unignored), _)| unignored)
        .collect()
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
            shown.join(" and "),
            project.show(&gitignore),
            patterns.join("\n  ")
        ));
        return Ok(());
    }
    let question = Question::YesNo {
        prompt: format!(
            "git does not ignore {}, which will hold state and secrets. Add {} to {}?",
            shown.join(" and "),
            patterns.join(" and "),
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
