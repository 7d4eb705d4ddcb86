//! Dynamic shell completion (clap_complete's engine, `TFENV_COMPLETE=<shell> tfenv -- <words>`):
//! the project's environment names and aliases wherever an `ENV` goes, and an
//! environment's backups for `restore`'s `BACKUP`.
//!
//! [`attach`] walks any clap tree and gives every argument named `ENV` (and `BACKUP`) its
//! completer, so a new command gets completions without a line here; `man`'s `COMMAND`
//! gets the tree's command names. A completer never
//! prints and never fails: no project (or a broken one) means no candidates. It reads the
//! local state/ only: nothing touches the network while a shell waits for a TAB.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use crate::artifacts::backups;
use crate::project::Project;

/// The environment variable that asks tfenv for completions instead of a run: tfenv's
/// own, not clap's default `COMPLETE`, so a variable of that common name set for
/// something else can never turn a run into a completion (or an error).
pub const VAR: &str = "TFENV_COMPLETE";

/// The tree the command line being completed is parsed with (for `-C`, `--config` and
/// the environment already typed), kept by [`attach`].
static TREE: OnceLock<clap::Command> = OnceLock::new();

/// `tree` with a completer on every argument whose value is an environment or a backup.
pub fn attach(tree: clap::Command) -> clap::Command {
    let tree = with_completers(tree);
    let _ = TREE.set(tree.clone());
    tree
}

fn with_completers(mut cmd: clap::Command) -> clap::Command {
    let ids: Vec<(clap::Id, Option<ArgValueCompleter>)> = cmd
        .get_arguments()
        .map(|arg| (arg.get_id().clone(), completer_for(arg)))
        .collect();
    // `mut_arg` takes an argument out and puts it back last: every argument goes through
    // it, in order, so the positionals keep their order (an `ENV` given a completer
    // before a `LOCK_ID` without one would otherwise be completed in the `LOCK_ID`'s place).
    for (id, completer) in ids {
        cmd = cmd.mut_arg(id, |arg| match completer {
            Some(completer) => arg.add(completer),
            None => arg,
        });
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, with_completers);
    }
    // `tfenv man <COMMAND>`: the commands that have a page, from the tree itself.
    let man_command = cmd
        .get_positionals()
        .find(|arg| cmd.get_name() == "man" && value_name(arg) == Some("COMMAND"))
        .map(|arg| arg.get_id().clone());
    if let Some(id) = man_command {
        cmd = cmd.mut_arg(id, |arg| arg.add(ArgValueCompleter::new(command_names)));
    }
    cmd
}

fn value_name(arg: &clap::Arg) -> Option<&str> {
    Some(arg.get_value_names()?.first()?.as_str())
}

fn completer_for(arg: &clap::Arg) -> Option<ArgValueCompleter> {
    match value_name(arg)? {
        // `--confirm ENV` takes the full name only: an alias doesn't count there.
        "ENV" if arg.get_long() == Some("confirm") => {
            Some(ArgValueCompleter::new(|current: &OsStr| {
                environments(current, false)
            }))
        }
        // An environment argument that conflicts with one given (`--all`): none.
        "ENV" if arg.is_positional() => Some(ArgValueCompleter::new(|current: &OsStr| {
            if current_given().env_excluded {
                return Vec::new();
            }
            environments(current, true)
        })),
        "ENV" => Some(ArgValueCompleter::new(|current: &OsStr| {
            environments(current, true)
        })),
        "BACKUP" => Some(ArgValueCompleter::new(backup_names)),
        _ => None,
    }
}

/// What the command line being completed says so far.
#[derive(Debug, Default, PartialEq)]
struct Given {
    chdir: Option<PathBuf>,
    config: Option<PathBuf>,
    /// The first environment typed for the subcommand, when one is.
    env: Option<String>,
    /// The subcommand's environment argument conflicts with an argument given (`--all`).
    env_excluded: bool,
}

/// The words of the command line the shell asks about: after `--`, up to (not including)
/// the word under the cursor (bash says which with `_CLAP_COMPLETE_INDEX`; the others
/// complete the last word).
fn words() -> Vec<OsString> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut words: Vec<OsString> = match args.iter().position(|a| a == "--") {
        Some(at) => args[at + 1..].to_vec(),
        None => return Vec::new(),
    };
    let current = std::env::var("_CLAP_COMPLETE_INDEX")
        .ok()
        .and_then(|i| i.parse::<usize>().ok())
        .unwrap_or(words.len().saturating_sub(1));
    words.truncate(current);
    words
}

/// Reads `words` with the tree, errors ignored: only what was typed before the cursor.
fn given(tree: &clap::Command, words: &[OsString]) -> Given {
    let Ok(matches) = tree.clone().ignore_errors(true).try_get_matches_from(words) else {
        return Given::default();
    };
    let mut given = Given::default();
    let mut level = (tree, &matches);
    loop {
        let (cmd, m) = level;
        if let Ok(Some(dir)) = m.try_get_one::<PathBuf>("chdir") {
            given.chdir = Some(as_the_shell_reads(dir));
        }
        if let Ok(Some(file)) = m.try_get_one::<PathBuf>("config") {
            given.config = Some(as_the_shell_reads(file));
        }
        let env_arg = cmd.get_positionals().find(|arg| {
            arg.get_value_names()
                .is_some_and(|names| names.first().is_some_and(|n| n == "ENV"))
        });
        if let Some(arg) = env_arg {
            if let Ok(Some(mut values)) = m.try_get_raw(arg.get_id().as_str())
                && let Some(first) = values.next().and_then(OsStr::to_str)
            {
                given.env = Some(first.to_string());
            }
            // Only ids the matches hold are asked about (clap asserts on others).
            given.env_excluded = cmd.get_arg_conflicts_with(arg).iter().any(|other| {
                m.ids().any(|id| id == other.get_id())
                    && m.value_source(other.get_id().as_str())
                        == Some(clap::parser::ValueSource::CommandLine)
            });
        }
        let Some((name, sub)) = m.subcommand() else {
            break;
        };
        let Some(sub_cmd) = cmd.find_subcommand(name) else {
            break;
        };
        level = (sub_cmd, sub);
    }
    given
}

/// A word of the command line as the shell hands it to tfenv when the command runs: the
/// completion script passes the words as typed (`~/infra`, `"/a b"`, `/a\ b`), so the
/// quoting is undone and a leading `~` (unquoted) is the home folder. A word the shell
/// could not read yet (an open quote) is taken as it is.
fn as_the_shell_reads(word: &Path) -> PathBuf {
    let Some(raw) = word.to_str() else {
        return word.to_path_buf();
    };
    let mut path = match shell_words::split(raw) {
        Ok(parts) if parts.len() == 1 => PathBuf::from(&parts[0]),
        _ => PathBuf::from(raw),
    };
    let home = std::env::var_os("HOME").filter(|home| !home.is_empty());
    if let Some(home) = home
        && (raw == "~" || raw.starts_with("~/"))
        && let Ok(rest) = path.strip_prefix("~")
    {
        path = PathBuf::from(home).join(rest);
    }
    path
}

fn project(given: &Given) -> Option<Project> {
    // An absolute -C needs no current directory (it may have been deleted).
    let start = match (&given.chdir, std::env::current_dir()) {
        (Some(dir), _) if dir.is_absolute() => dir.clone(),
        (Some(dir), Ok(cwd)) => cwd.join(dir),
        (None, Ok(cwd)) => cwd,
        (_, Err(_)) => return None,
    };
    let config = given.config.as_ref().map(|file| start.join(file));
    Project::load(&start, config.as_deref()).ok()
}

fn current_given() -> Given {
    TREE.get()
        .map(|tree| given(tree, &words()))
        .unwrap_or_default()
}

fn environments(current: &OsStr, aliases: bool) -> Vec<CompletionCandidate> {
    let Some(project) = project(&current_given()) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for env in &project.environments {
        names.push((
            env.name.clone(),
            format!("{} ({})", env.tier.as_str(), env.layout.as_str()),
        ));
        if aliases {
            for alias in &env.aliases {
                names.push((alias.clone(), format!("alias of {}", env.name)));
            }
        }
    }
    candidates(current, names)
}

fn backup_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let given = current_given();
    let Some(project) = project(&given) else {
        return Vec::new();
    };
    let Some(env) = given
        .env
        .as_deref()
        .and_then(|name| project.environment(name).ok())
    else {
        return Vec::new();
    };
    // The names `tfenv backups` lists from this machine, newest first; no backups, no names.
    let Ok(manifest) = backups::manifest(&backups::dir(env)) else {
        return Vec::new();
    };
    if manifest.records.is_empty() {
        return Vec::new();
    }
    let mut names = vec![("latest".to_string(), "the newest backup".to_string())];
    for backup in manifest.records.iter().rev() {
        names.push((
            backup.file.clone(),
            format!("{}, serial {}", backup.reason, backup.serial),
        ));
    }
    candidates(current, names)
}

/// The commands `tfenv man` has a page for: the tree's visible subcommands.
fn command_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(tree) = TREE.get() else {
        return Vec::new();
    };
    let names = tree
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        .map(|sub| {
            let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
            (sub.get_name().to_string(), about)
        })
        .collect();
    candidates(current, names)
}

fn candidates(current: &OsStr, names: Vec<(String, String)>) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    names
        .into_iter()
        .filter(|(name, _)| name.starts_with(current.as_ref()))
        .map(|(name, help)| CompletionCandidate::new(name).help(Some(help.into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> clap::Command {
        clap::Command::new("tfenv")
            .arg(
                clap::Arg::new("chdir")
                    .short('C')
                    .value_parser(clap::value_parser!(PathBuf))
                    .global(true),
            )
            .subcommand(
                clap::Command::new("restore")
                    .arg(clap::Arg::new("env").value_name("ENV").required(true))
                    .arg(clap::Arg::new("backup").value_name("BACKUP").required(true)),
            )
    }

    #[test]
    fn the_environment_and_folder_typed_before_the_cursor_are_read() {
        let words: Vec<OsString> = ["tfenv", "-C", "infra", "restore", "dev"]
            .map(OsString::from)
            .to_vec();
        let given = given(&tree(), &words);
        assert_eq!(given.env.as_deref(), Some("dev"));
        assert_eq!(given.chdir, Some(PathBuf::from("infra")));
    }

    #[test]
    fn every_env_and_backup_argument_gets_a_completer() {
        let tree = with_completers(tree());
        let restore = tree.find_subcommand("restore").unwrap();
        for id in ["env", "backup"] {
            let arg = restore.get_arguments().find(|a| a.get_id() == id).unwrap();
            assert!(arg.get::<ArgValueCompleter>().is_some(), "{id}");
        }
    }
}
