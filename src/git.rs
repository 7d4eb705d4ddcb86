//! What tfenv asks git: whether paths are ignored (and, for deploys, the commit and
//! whether the tree is dirty). Not being in a git repository is not an error. git always
//! runs on the project's own checkout: `-C <root>`, with every `GIT_*` variable removed,
//! so the environment cannot point the clean-tree check at another repository or stop
//! git from finding the project's own. The verdict rests on git's exit statuses and on
//! the `.git` entries tfenv sees itself, never on git's messages (which are translated).
//! May use: project, process, git_info, error.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::TfenvError;
use crate::git_info::GitInfo;
use crate::process::{Invocation, RunOptions, Runner};
use crate::project::{Environment, Project, hcl, physical};

/// How many offending paths a refusal lists.
const LISTED: usize = 10;

/// `git -C <root> <args>`, in the C locale, with every `GIT_*` variable removed (GIT_DIR,
/// GIT_WORK_TREE, GIT_CEILING_DIRECTORIES, GIT_CONFIG_*, …) and no file-system monitor,
/// so what git reports is the checkout's own state, not what a hook says about it.
fn invocation<S: AsRef<OsStr>>(git: &Path, root: &Path, args: &[S]) -> Invocation {
    let mut full: Vec<OsString> = vec![
        "-C".into(),
        root.as_os_str().to_os_string(),
        "-c".into(),
        "core.fsmonitor=false".into(),
    ];
    full.extend(args.iter().map(|a| a.as_ref().to_os_string()));
    let mut inv = Invocation::new(git, &full);
    inv.cwd = root.to_path_buf();
    inv.env_remove = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("GIT_"))
        .chain(["LANGUAGE".to_string()])
        .collect();
    inv.env = vec![("LC_ALL".to_string(), "C".into())];
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
/// that matter to `env`. `Ok(None)` only when no `.git` lies in the project's folder or
/// above it (up to the file-system boundary, where git stops too); an error when git
/// fails in any other way (a broken `.git`, "dubious ownership", git missing from PATH
/// in a checkout), so a clean-tree check refuses instead of assuming.
///
/// Dirty: any change git reports outside tfenv's own artifacts, and any file terraform
/// loads for `env` (var files, backend config, the root's configuration and auto-loaded
/// var files, local modules' configuration) that is marked `--assume-unchanged` or
/// `--skip-worktree`, since git hides its changes.
pub async fn head(
    runner: &dyn Runner,
    project: &Project,
    env: &Environment,
) -> anyhow::Result<Option<Checkout>> {
    head_excluding(runner, project, env, &[]).await
}

/// `head`, with `also_own` (absolute paths: a plan bundle's folder) counted as tfenv's
/// own files too: a bundle kept inside the checkout never makes its tree dirty.
pub async fn head_excluding(
    runner: &dyn Runner,
    project: &Project,
    env: &Environment,
    also_own: &[PathBuf],
) -> anyhow::Result<Option<Checkout>> {
    let root = &project.root;
    let Ok(git) = which::which("git") else {
        return match enclosing_git_entry(root) {
            None => Ok(None),
            Some(entry) => anyhow::bail!(
                "`git` is not on PATH, and `{}` is in a git checkout (`{}`)",
                root.display(),
                entry.display()
            ),
        };
    };
    let run = |args: &[OsString]| invocation(&git, root, args);
    // git's first line of complaint, or how it ended when it said nothing.
    let why = |done: &crate::process::Finished| {
        let stderr = done.stderr_text();
        match stderr.lines().map(str::trim).find(|l| !l.is_empty()) {
            Some(line) => line.to_string(),
            None => done.describe(),
        }
    };
    let failed = |what: &str, done: &crate::process::Finished| {
        anyhow::anyhow!("`git {what}` failed in `{}`: {}", root.display(), why(done))
    };
    let args = |list: &[&str]| -> Vec<OsString> { list.iter().map(OsString::from).collect() };
    let located = runner
        .run(
            &run(&args(&[
                "rev-parse",
                "--is-inside-work-tree",
                "--show-toplevel",
            ])),
            RunOptions::default(),
        )
        .await?;
    // `true\n<top>\n` in a work tree; `false` inside a git directory.
    let top = match located.stdout.strip_prefix(b"true\n") {
        Some(rest) if located.success() => rest.strip_suffix(b"\n").unwrap_or(rest),
        _ => {
            let in_git_dir = located.stdout.starts_with(b"false");
            match enclosing_git_entry(root) {
                None if !in_git_dir => return Ok(None),
                Some(entry) => anyhow::bail!(
                    "git cannot read the checkout of `{}` (`{}`): {}",
                    root.display(),
                    entry.display(),
                    why(&located)
                ),
                None => anyhow::bail!(
                    "`{}` is inside a git directory, not a work tree",
                    root.display()
                ),
            }
        }
    };
    let top = PathBuf::from(OsStr::from_bytes(top));

    let mut own = crate::project::own_files::own_paths(project);
    own.extend(also_own.iter().cloned());
    let mut status_args = args(&[
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=normal",
        "--ignore-submodules=none",
        "--",
        ":(top)",
    ]);
    status_args.extend(
        relative_to(&top, &own)
            .iter()
            .map(|rel| pathspec("top,exclude,literal", rel)),
    );
    let loaded = relative_to(&top, &loaded_by_terraform(env));
    let mut ls_args = args(&["ls-files", "-v", "-z", "--full-name", "--"]);
    ls_args.extend(loaded.iter().map(|rel| pathspec("top,literal", rel)));

    // The commit, the changes and the hidden files are three questions that do not
    // depend on each other: asked at the same time.
    let (rev_call, status_call, ls_call) = (
        run(&args(&["rev-parse", "HEAD"])),
        run(&status_args),
        run(&ls_args),
    );
    let (rev, status, listed) = tokio::join!(
        runner.run(&rev_call, RunOptions::default()),
        runner.run(&status_call, RunOptions::default()),
        async {
            match loaded.is_empty() {
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

/// The `.git` entry (folder, file, symlink, anything) in `root` or the nearest folder
/// above it, stopping at the file-system boundary as git does. An entry tfenv cannot
/// even look at counts as one.
fn enclosing_git_entry(root: &Path) -> Option<PathBuf> {
    let start = physical(root);
    let device = std::fs::metadata(&start).ok().map(|m| m.dev());
    for dir in start.ancestors() {
        let entry = dir.join(".git");
        match std::fs::symlink_metadata(&entry) {
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) => {}
            _ => return Some(entry),
        }
        let parent_device = dir
            .parent()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.dev());
        if device.is_some() && parent_device.is_some() && parent_device != device {
            return None;
        }
    }
    None
}

/// The files terraform loads for `env`, as far as tfenv can tell before running it: the
/// var files and backend config tfenv passes, the root module's configuration
/// (`*.tf`, `*.tf.json`), auto-loaded var files (`terraform.tfvars[.json]`,
/// `*.auto.tfvars[.json]`) and dependency lock file, and the configuration of the local
/// modules it calls, module by module.
fn loaded_by_terraform(env: &Environment) -> Vec<PathBuf> {
    let mut files = env.var_files.clone();
    files.extend(env.backend_config.iter().cloned());
    files.extend(terraform_files(&env.root, true));
    let mut seen: HashSet<PathBuf> = HashSet::from([physical(&env.root)]);
    let mut modules = hcl::local_module_dirs(&env.root);
    // A bound, in case modules call each other in a circle through symlinks.
    while let Some(dir) = modules.pop()
        && seen.len() < 1000
    {
        if !seen.insert(physical(&dir)) {
            continue;
        }
        files.extend(terraform_files(&dir, false));
        modules.extend(hcl::local_module_dirs(&dir));
    }
    files
}

/// The files directly in `dir` that terraform reads: configuration, and for a root
/// module its auto-loaded var files and dependency lock file. Names as OS strings.
fn terraform_files(dir: &Path, root_module: bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.as_bytes();
            let config = name.ends_with(b".tf") || name.ends_with(b".tf.json");
            let root_only = name == b"terraform.tfvars"
                || name == b"terraform.tfvars.json"
                || name.ends_with(b".auto.tfvars")
                || name.ends_with(b".auto.tfvars.json")
                || name == b".terraform.lock.hcl";
            config || (root_module && root_only)
        })
        .map(|entry| entry.path())
        .collect();
    files.sort();
    files
}

/// `:(<magic>)<path>`, the path as bytes: git takes any bytes but NUL.
fn pathspec(magic: &str, rel: &Path) -> OsString {
    let mut spec = OsString::from(format!(":({magic})"));
    spec.push(rel.as_os_str());
    spec
}

/// `paths` relative to the repository's top folder (as git spells paths), leaving out
/// those outside it. `top` is physical (git resolves symlinks), so the paths are too;
/// a path whose last component is a symlink is given both ways: as the symlink git sees
/// in its folder, and as where it leads when that is in the repository too.
fn relative_to(top: &Path, paths: &[PathBuf]) -> Vec<PathBuf> {
    let top = physical(top);
    let mut out: Vec<PathBuf> = paths
        .iter()
        .flat_map(|path| {
            let entry = match (path.parent(), path.file_name()) {
                (Some(parent), Some(name)) => Some(physical(parent).join(name)),
                _ => None,
            };
            [Some(physical(path)), entry]
        })
        .flatten()
        .filter_map(|path| {
            let rel = path.strip_prefix(&top).ok()?.to_path_buf();
            (!rel.as_os_str().is_empty()).then_some(rel)
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
    fn paths_are_relative_to_the_top_as_os_strings_and_symlinks_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join(OsStr::from_bytes(b"pro j\xff"));
        std::fs::create_dir_all(top.join("real-state")).unwrap();
        std::os::unix::fs::symlink(top.join("real-state"), top.join("state")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), top.join("linked")).unwrap();
        let rel = relative_to(
            &top,
            &[
                top.join("state"),
                top.join("linked"),
                top.join(".terraform"),
                outside.path().join("x"),
                top.clone(),
            ],
        );
        assert_eq!(
            rel,
            [".terraform", "linked", "real-state", "state"].map(PathBuf::from)
        );
        assert_eq!(
            pathspec("top,literal", &PathBuf::from(OsStr::from_bytes(b"a\xff/b"))),
            OsStr::from_bytes(b":(top,literal)a\xff/b")
        );
    }

    #[test]
    fn terraform_reads_configuration_auto_var_files_and_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "main.tf",
            "extra.tf.json",
            "terraform.tfvars",
            "terraform.tfvars.json",
            "x.auto.tfvars",
            "x.auto.tfvars.json",
            ".terraform.lock.hcl",
            "README.md",
            "other.tfvars",
            "main.tf.bak",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        std::fs::write(dir.path().join(OsStr::from_bytes(b"\xff.tf")), "").unwrap();
        let names = |root_module| -> Vec<Vec<u8>> {
            terraform_files(dir.path(), root_module)
                .iter()
                .map(|p| p.file_name().unwrap().as_bytes().to_vec())
                .collect()
        };
        assert_eq!(
            names(true),
            [
                &b".terraform.lock.hcl"[..],
                b"extra.tf.json",
                b"main.tf",
                b"terraform.tfvars",
                b"terraform.tfvars.json",
                b"x.auto.tfvars",
                b"x.auto.tfvars.json",
                b"\xff.tf",
            ]
        );
        assert_eq!(
            names(false),
            [&b"extra.tf.json"[..], b"main.tf", b"\xff.tf"]
        );
    }

    #[test]
    fn any_git_entry_above_the_project_is_found_even_a_broken_one() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("repo/infra/proj");
        std::fs::create_dir_all(&project).unwrap();
        // Nothing inside the temporary folder (whatever lies above it).
        let found = enclosing_git_entry(&project);
        assert!(
            found
                .as_ref()
                .is_none_or(|f| !f.starts_with(physical(dir.path()))),
            "{found:?}"
        );
        for entry in ["file", "dangling"] {
            let git = dir.path().join("repo/.git");
            match entry {
                "file" => std::fs::write(&git, "gitdir: /nonexistent\n").unwrap(),
                _ => std::os::unix::fs::symlink("/nonexistent", &git).unwrap(),
            }
            assert_eq!(
                enclosing_git_entry(&project),
                Some(physical(dir.path()).join("repo/.git")),
                "{entry}"
            );
            std::fs::remove_file(&git).unwrap();
        }
        std::fs::create_dir(project.join(".git")).unwrap();
        assert_eq!(
            enclosing_git_entry(&project),
            Some(physical(&project).join(".git"))
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
