//! What tfenv asks git: whether paths are ignored (and, for deploys, the commit and
//! whether the tree is dirty). Not being in a git repository is not an error.

use std::path::{Path, PathBuf};

use crate::process::{Invocation, RunOptions, Runner};

/// For each of `paths` (relative to `root`), whether git ignores it. `None` when `root`
/// is not in a git repository or git is not installed.
pub async fn ignored(runner: &dyn Runner, root: &Path, paths: &[PathBuf]) -> Option<Vec<bool>> {
    let git = which::which("git").ok()?;
    let mut args = vec!["check-ignore", "--no-index", "--verbose", "--non-matching"];
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(shown.iter().map(String::as_str));
    let mut inv = Invocation::new(git, &args);
    inv.cwd = root.to_path_buf();
    let done = runner.run(&inv, RunOptions::default()).await.ok()?;
    // 0: some ignored, 1: none ignored, 128: not a repository (or another fatal error).
    if !matches!(done.code, Some(0 | 1)) {
        tracing::debug!("git check-ignore: {}", done.stderr_text().trim());
        return None;
    }
    let text = done.stdout_text();
    let verdicts = shown
        .iter()
        .map(|path| {
            text.lines().any(|line| {
                let Some((source, rest)) = line.split_once('\t') else {
                    return false;
                };
                // `<file>:<line>:<pattern>\t<path>`; `::\t<path>` when nothing matched.
                let pattern = source.splitn(3, ':').nth(2).unwrap_or("");
                rest == path && !pattern.is_empty() && !pattern.starts_with('!')
            })
        })
        .collect();
    Some(verdicts)
}

/// The commit checked out in `root` and whether the tree has uncommitted changes.
/// `Ok(None)` outside a git repository (or without git); an error when git fails in
/// another way (e.g. "dubious ownership"), so a clean-tree check can refuse instead of
/// assuming.
pub async fn head(
    runner: &dyn Runner,
    root: &Path,
) -> anyhow::Result<Option<crate::artifacts::history::GitInfo>> {
    let Ok(git) = which::which("git") else {
        return Ok(None);
    };
    let run = |args: &[&str]| {
        let mut inv = Invocation::new(&git, args);
        inv.cwd = root.to_path_buf();
        inv
    };
    let inside = runner
        .run(
            &run(&["rev-parse", "--is-inside-work-tree"]),
            RunOptions::default(),
        )
        .await?;
    if !inside.success() {
        let stderr = inside.stderr_text();
        if stderr.contains("not a git repository") {
            return Ok(None);
        }
        anyhow::bail!(
            "git failed in `{}`: {}",
            root.display(),
            stderr.lines().next().unwrap_or("").trim()
        );
    }
    let rev = runner
        .run(&run(&["rev-parse", "HEAD"]), RunOptions::default())
        .await?;
    // A repository without commits has no HEAD yet.
    let commit = if rev.success() {
        rev.stdout_text().trim().to_string()
    } else {
        "(no commits)".to_string()
    };
    let status = runner
        .run(
            &run(&["status", "--porcelain", "--untracked-files=normal"]),
            RunOptions::default(),
        )
        .await?;
    if !status.success() {
        anyhow::bail!(
            "`git status` failed in `{}`: {}",
            root.display(),
            status.stderr_text().lines().next().unwrap_or("").trim()
        );
    }
    let dirty = !status.stdout_text().trim().is_empty();
    Ok(Some(crate::artifacts::history::GitInfo { commit, dirty }))
}
