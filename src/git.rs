//! What tfenv asks git: whether paths are ignored (and, for deploys, the commit and
//! whether the tree is dirty). Not being in a git repository is not an error. git always
//! runs on the project's own checkout: `-C <root>`, with `GIT_DIR` and friends removed,
//! so the environment cannot point the clean-tree check at another repository.
//! May use: project, process, git_info, error.

use std::path::{Path, PathBuf};

use crate::error::TfenvError;
use crate::git_info::GitInfo;
use crate::process::{Invocation, RunOptions, Runner};
use crate::project::{Environment, Project, physical};

/// Variables that would make git read another repository, index or work tree than the
/// one the project is in.
const REPOSITORY_VARIABLES: [&str; 4] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
];

/// How many offending paths a refusal lists.
const LISTED: usize = 10;

/// `git -C <root> <args>`, with the repository variables removed.
fn invocation(git: &Path, root: &Path, args: &[&str]) -> Invocation {
    let mut full = vec!["-C", root.to_str().unwrap_or(".")];
    full.extend_from_slice(args);
    let mut inv = Invocation::new(git, &full);
    inv.cwd = root.to_path_buf();
    inv.env_remove = REPOSITORY_VARIABLES.iter().map(|v| v.to_string()).collect();
    inv
}

/// For each of `paths` (relative to `root`), whether git ignores it. `None` when `root`
/// is not in a git repository or git is not installed.
pub async fn ignored(runner: &dyn Runner, root: &Path, paths: &[PathBuf]) -> Option<Vec<bool>> {
    let git = which::which("git").ok()?;
    let mut args = vec!["check-ignore", "--no-index", "--verbose", "--non-matching"];
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(shown.iter().map(String::as_str));
    let done = runner
        .run(&invocation(&git, root, &args), RunOptions::default())
        .await
        .ok()?;
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

/// The checked-out commit and what makes the tree dirty.
#[derive(Clone, Debug)]
pub struct Checkout {
    /// What history records: the commit and whether the tree is dirty.
    pub info: GitInfo,
    /// Each change that makes the tree dirty, as "path (what)", in git's order. tfenv's
    /// own artifacts (the state dir, `.terraform/`) are never among them.
    pub changes: Vec<String>,
}

impl Checkout {
    pub fn is_dirty(&self) -> bool {
        self.info.dirty
    }

    /// Why a production run from this tree is refused, listing up to ten changes.
    pub fn refusal(&self, env: &str) -> TfenvError {
        let mut message = format!(
            "the git tree has uncommitted changes; production `{env}` deploys from a clean tree:"
        );
        for change in self.changes.iter().take(LISTED) {
            message.push_str(&format!("\n  {change}"));
        }
        if self.changes.len() > LISTED {
            message.push_str(&format!("\n  … and {} more", self.changes.len() - LISTED));
        }
        let mut hint = "commit or stash them, or pass --allow-dirty".to_string();
        if self.changes.iter().any(|c| c.ends_with(HIDDEN)) {
            hint.push_str(
                "; `git update-index --no-assume-unchanged --no-skip-worktree <file>` lets git show a hidden file's changes again",
            );
        }
        TfenvError::Refused {
            message,
            hint: Some(hint),
        }
    }
}

/// The end of a change line for a file git was told not to look at.
const HIDDEN: &str = "git does not report its changes)";

/// The commit checked out in the project and whether the tree has uncommitted changes
/// that matter to `env`. `Ok(None)` outside a git repository (or without git); an error
/// when git fails in another way (e.g. "dubious ownership"), so a clean-tree check can
/// refuse instead of assuming.
///
/// Dirty: any change git reports outside tfenv's own artifacts, and any file tfenv hands
/// terraform for `env` (var files, backend config, the root's `*.tf`) that is marked
/// `--assume-unchanged` or `--skip-worktree`, since git hides its changes.
pub async fn head(
    runner: &dyn Runner,
    project: &Project,
    env: &Environment,
) -> anyhow::Result<Option<Checkout>> {
    let Ok(git) = which::which("git") else {
        return Ok(None);
    };
    let root = &project.root;
    let run = |args: &[&str]| invocation(&git, root, args);
    let failed = |what: &str, done: &crate::process::Finished| {
        anyhow::anyhow!(
            "`git {what}` failed in `{}`: {}",
            root.display(),
            done.stderr_text().lines().next().unwrap_or("").trim()
        )
    };
    let top = runner
        .run(
            &run(&["rev-parse", "--show-toplevel"]),
            RunOptions::default(),
        )
        .await?;
    if !top.success() {
        let stderr = top.stderr_text();
        if stderr.contains("not a git repository") {
            return Ok(None);
        }
        anyhow::bail!(
            "git failed in `{}`: {}",
            root.display(),
            stderr.lines().next().unwrap_or("").trim()
        );
    }
    let top = PathBuf::from(top.stdout_text().trim_end_matches(['\n', '\r']));

    let mut own = vec![project.state_dir.clone(), project.root.join(".terraform")];
    own.extend(
        project
            .environments
            .iter()
            .map(|e| e.root.join(".terraform")),
    );
    let mut status_args = vec![
        "status".to_string(),
        "--porcelain=v1".to_string(),
        "-z".to_string(),
        "--untracked-files=normal".to_string(),
        "--".to_string(),
        ":(top)".to_string(),
    ];
    status_args.extend(
        relative_to(&top, &own)
            .into_iter()
            .map(|rel| format!(":(top,exclude,literal){rel}")),
    );
    let status_args: Vec<&str> = status_args.iter().map(String::as_str).collect();

    let mut handed = env.var_files.clone();
    handed.extend(env.backend_config.iter().cloned());
    handed.extend(crate::project::hcl::tf_files(&env.root).unwrap_or_default());
    let handed = relative_to(&top, &handed);
    let mut ls_args = vec![
        "ls-files".to_string(),
        "-v".to_string(),
        "-z".to_string(),
        "--full-name".to_string(),
        "--".to_string(),
    ];
    ls_args.extend(handed.iter().map(|rel| format!(":(top,literal){rel}")));
    let ls_args: Vec<&str> = ls_args.iter().map(String::as_str).collect();

    // The commit, the changes and the hidden files are three questions that do not
    // depend on each other: asked at the same time.
    let (rev_call, status_call, ls_call) = (
        run(&["rev-parse", "HEAD"]),
        run(&status_args),
        run(&ls_args),
    );
    let (rev, status, listed) = tokio::join!(
        runner.run(&rev_call, RunOptions::default()),
        runner.run(&status_call, RunOptions::default()),
        async {
            match handed.is_empty() {
                true => None,
                false => Some(runner.run(&ls_call, RunOptions::default()).await),
            }
        }
    );
    let rev = rev?;
    // A repository without commits has no HEAD yet.
    let commit = if rev.success() {
        rev.stdout_text().trim().to_string()
    } else {
        "(no commits)".to_string()
    };
    let status = status?;
    if !status.success() {
        return Err(failed("status", &status));
    }
    let mut changes = parse_status(&status.stdout);
    if let Some(listed) = listed {
        let listed = listed?;
        if !listed.success() {
            return Err(failed("ls-files", &listed));
        }
        changes.extend(parse_hidden(&listed.stdout));
    }

    Ok(Some(Checkout {
        info: GitInfo {
            commit,
            dirty: !changes.is_empty(),
        },
        changes,
    }))
}

/// `paths` relative to the repository's top folder (as git spells paths), leaving out
/// those outside it. `top` is physical (git resolves symlinks), so the paths are too.
fn relative_to(top: &Path, paths: &[PathBuf]) -> Vec<String> {
    let top = physical(top);
    let mut out: Vec<String> = paths
        .iter()
        .filter_map(|path| {
            let rel = physical(path).strip_prefix(&top).ok()?.to_path_buf();
            let rel = rel.to_str()?.to_string();
            (!rel.is_empty()).then_some(rel)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `git status --porcelain=v1 -z` → "path (what)" per entry.
fn parse_status(out: &[u8]) -> Vec<String> {
    let mut fields = out.split(|b| *b == 0).filter(|f| !f.is_empty());
    let mut changes = Vec::new();
    while let Some(entry) = fields.next() {
        if entry.len() < 4 {
            continue;
        }
        let (x, y) = (entry[0] as char, entry[1] as char);
        let path = String::from_utf8_lossy(&entry[3..]);
        let what = match (x, y) {
            ('?', '?') => "untracked",
            ('!', '!') => "ignored",
            ('U', _) | (_, 'U') | ('A', 'A') | ('D', 'D') => "unmerged",
            ('R', _) | (_, 'R') => "renamed",
            ('C', _) | (_, 'C') => "copied",
            ('D', _) | (_, 'D') => "deleted",
            ('A', _) => "added",
            ('T', _) | (_, 'T') => "type changed",
            _ => "modified",
        };
        // A rename or copy is followed by the path it came from.
        if matches!(what, "renamed" | "copied")
            && let Some(from) = fields.next()
        {
            changes.push(format!(
                "{path} ({what} from {})",
                String::from_utf8_lossy(from)
            ));
            continue;
        }
        changes.push(format!("{path} ({what})"));
    }
    changes
}

/// `git ls-files -v -z` → the entries git was told to stop looking at: a lowercase tag
/// is `--assume-unchanged`, `S` (or `s`) is `--skip-worktree`.
fn parse_hidden(out: &[u8]) -> Vec<String> {
    out.split(|b| *b == 0)
        .filter(|f| f.len() > 2 && f[1] == b' ')
        .filter_map(|entry| {
            let tag = entry[0] as char;
            let path = String::from_utf8_lossy(&entry[2..]);
            let mark = if tag.eq_ignore_ascii_case(&'s') {
                "--skip-worktree"
            } else if tag.is_ascii_lowercase() {
                "--assume-unchanged"
            } else {
                return None;
            };
            Some(format!("{path} (marked {mark}: {HIDDEN}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_entries_say_what_changed() {
        let out =
            b" M main.tf\0?? notes.txt\0R  new.tf\0old.tf\0D  gone.tf\0A  added.tf\0UU both.tf\0";
        assert_eq!(
            parse_status(out),
            [
                "main.tf (modified)",
                "notes.txt (untracked)",
                "new.tf (renamed from old.tf)",
                "gone.tf (deleted)",
                "added.tf (added)",
                "both.tf (unmerged)",
            ]
        );
        assert!(parse_status(b"").is_empty());
    }

    #[test]
    fn assume_unchanged_and_skip_worktree_entries_are_hidden_changes() {
        let out = b"H main.tf\0h environments/prod.tfvars\0S backend.conf\0s both.tf\0";
        assert_eq!(
            parse_hidden(out),
            [
                "environments/prod.tfvars (marked --assume-unchanged: git does not report its changes)",
                "backend.conf (marked --skip-worktree: git does not report its changes)",
                "both.tf (marked --skip-worktree: git does not report its changes)",
            ]
        );
    }

    #[test]
    fn a_refusal_lists_ten_changes_and_counts_the_rest() {
        let checkout = Checkout {
            info: GitInfo {
                commit: "abc".into(),
                dirty: true,
            },
            changes: (0..13).map(|i| format!("f{i} (untracked)")).collect(),
        };
        let err = checkout.refusal("production");
        let text = err.to_string();
        assert!(text.contains("\n  f9 (untracked)"), "{text}");
        assert!(!text.contains("f10"), "{text}");
        assert!(text.ends_with("\n  … and 3 more"), "{text}");
        assert_eq!(err.exit(), crate::exit::Exit::Refused);
    }
}
