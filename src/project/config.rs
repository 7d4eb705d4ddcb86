//! `tfenv.toml`: the explicit form of a project. Unknown keys are errors, so a typo
//! never silently falls back to a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::file_kind::FileKind;
use crate::error::TfenvError;

pub const FILE_NAME: &str = "tfenv.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub project: ProjectSection,
    #[serde(default)]
    /// In file order: that is the order people list and read them in.
    pub environments: indexmap::IndexMap<String, EnvironmentSection>,
    /// The policy gate every plan passes (DESIGN.md §10).
    pub policy: Option<PolicySection>,
    /// Commands run after a deploy, a failure or a drift check (DESIGN.md §11).
    pub hooks: Option<HooksSection>,
}

/// `[hooks]`: each a command as a list (program first), run with the event's JSON
/// document on stdin.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksSection {
    #[serde(default, deserialize_with = "on_deploy")]
    pub on_deploy: Option<HookCommand>,
    #[serde(default, deserialize_with = "on_failure")]
    pub on_failure: Option<HookCommand>,
    #[serde(default, deserialize_with = "on_drift")]
    pub on_drift: Option<HookCommand>,
    /// How long a hook may run before it is killed ("30s", "2m").
    pub timeout: Option<String>,
}

/// A hook's command line: program and arguments, never a shell string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookCommand(pub Vec<String>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    pub command: PolicyCommand,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    /// Terraform root module, relative to tfenv.toml.
    pub root: Option<PathBuf>,
    /// `terraform`, `tofu`, or a path.
    pub terraform: Option<String>,
    pub required_version: Option<String>,
    pub state_dir: Option<PathBuf>,
    /// Backend type when the root module has no `backend` block tfenv can read.
    pub backend: Option<String>,
    /// A state lock older than this is a problem in `status` (e.g. "2h", "30m").
    pub stale_lock_after: Option<String>,
    /// Where history and backups are kept: this machine only, or also the state backend.
    pub ledger: Option<LedgerMode>,
    /// `status` reports `backup-stale` when no verified backup is younger than this
    /// ("7d"); `"off"` or `false` for no check. Default: 7d for production, else none.
    pub backup_max_age: Option<MaxAge>,
}

/// `backup_max_age = "7d"`, or `"off"` / `false` for no check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaxAge {
    Flag(bool),
    Text(String),
}

impl<'de> Deserialize<'de> for MaxAge {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<MaxAge, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = MaxAge;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "`backup_max_age` to be a duration like \"7d\" or \"36h\", or \"off\" / `false` for no check",
                )
            }

            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<MaxAge, E> {
                Ok(MaxAge::Flag(v))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MaxAge, E> {
                Ok(MaxAge::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `[project] ledger`: where tfenv keeps history and backups (DESIGN.md §12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerMode {
    /// `state/<env>/` on this machine only.
    #[default]
    Local,
    /// Also under `<state key>.tfenv/` in the state backend, shared by every machine.
    Backend,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSection {
    pub tier: Option<super::Tier>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub root: Option<PathBuf>,
    pub backend_config: Option<PathBuf>,
    pub var_files: Option<Vec<PathBuf>>,
    pub workspace: Option<String>,
    pub backend: Option<String>,
    pub backup: Option<bool>,
    pub backup_keep: Option<usize>,
    /// Overrides `[project] backup_max_age` for this environment (`"off"` / `false`:
    /// no check).
    pub backup_max_age: Option<MaxAge>,
    /// This environment's own policy command, or `false` for none.
    pub policy: Option<PolicySetting>,
    /// The environment (name or alias) that must have deployed a commit successfully,
    /// from a clean tree, before this one deploys it (DESIGN.md §12).
    pub promote_from: Option<String>,
}

/// A policy command line: program and arguments, `{plan_json}` standing for the plan's
/// JSON file. A list, never a shell string: nothing is split or quoted by tfenv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyCommand(pub Vec<String>);

/// `policy = [...]` or `policy = false` in an environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySetting {
    Off,
    Command(PolicyCommand),
}

/// Reads a list of strings; `what` names the key in the error, which serde's own
/// "expected a sequence" would not.
struct CommandVisitor {
    what: &'static str,
    takes_false: bool,
    /// A correct value, shown in the error.
    example: &'static str,
}

/// The example a policy command's error shows.
const POLICY_EXAMPLE: &str = "[\"conftest\", \"test\", \"{plan_json}\"]";
/// The example a hook's error shows.
pub const HOOK_EXAMPLE: &str = "[\"./hooks/notify.sh\", \"--channel\", \"ops\"]";

impl<'de> serde::de::Visitor<'de> for CommandVisitor {
    type Value = PolicySetting;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let (what, example) = (self.what, self.example);
        match self.takes_false {
            true => write!(
                f,
                "`{what}` to be a command as a list of strings (e.g. {example}) or `false`"
            ),
            false => write!(
                f,
                "`{what}` to be a command as a list of strings (e.g. {example})"
            ),
        }
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<PolicySetting, E> {
        match (v, self.takes_false) {
            (false, true) => Ok(PolicySetting::Off),
            _ => Err(E::invalid_value(serde::de::Unexpected::Bool(v), &self)),
        }
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> Result<PolicySetting, A::Error> {
        let mut words = Vec::new();
        while let Some(word) = seq.next_element::<toml::Value>()? {
            match word {
                toml::Value::String(word) => words.push(word),
                other => {
                    return Err(serde::de::Error::invalid_type(
                        serde::de::Unexpected::Other(other.type_str()),
                        &self,
                    ));
                }
            }
        }
        Ok(PolicySetting::Command(PolicyCommand(words)))
    }
}

impl<'de> Deserialize<'de> for PolicySetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CommandVisitor {
            what: "policy",
            takes_false: true,
            example: POLICY_EXAMPLE,
        })
    }
}

impl<'de> Deserialize<'de> for PolicyCommand {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(CommandVisitor {
            what: "[policy] command",
            takes_false: false,
            example: POLICY_EXAMPLE,
        })? {
            PolicySetting::Command(command) => Ok(command),
            PolicySetting::Off => Err(serde::de::Error::custom(
                "`[policy] command` cannot be `false`: remove the [policy] section for no policy",
            )),
        }
    }
}

/// A hook's command, its key named in the error (serde does not say which field it reads).
fn hook_command<'de, D: serde::Deserializer<'de>>(
    d: D,
    what: &'static str,
) -> Result<Option<HookCommand>, D::Error> {
    match d.deserialize_any(CommandVisitor {
        what,
        takes_false: false,
        example: HOOK_EXAMPLE,
    })? {
        PolicySetting::Command(command) => Ok(Some(HookCommand(command.0))),
        PolicySetting::Off => Err(serde::de::Error::custom(format!(
            "`{what}` cannot be `false`: leave the key out for no hook"
        ))),
    }
}

fn on_deploy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<HookCommand>, D::Error> {
    hook_command(d, "[hooks] on_deploy")
}

fn on_failure<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<HookCommand>, D::Error> {
    hook_command(d, "[hooks] on_failure")
}

fn on_drift<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<HookCommand>, D::Error> {
    hook_command(d, "[hooks] on_drift")
}

/// How tfenv came to read a tfenv.toml: hints differ for a file the user named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Given with `--config`.
    Flag,
    /// Found walking up from the working directory.
    Search,
}

/// Reads and parses `path`; errors name the file (as `shown`), line and column. Anything
/// but a regular file (or a symlink to one) is an error: tfenv never falls back to
/// discovery past a tfenv.toml it cannot read, and never opens a FIFO.
pub fn load(path: &Path, shown: &str, found: Found) -> anyhow::Result<ConfigFile> {
    let fix = |what: &str| match found {
        Found::Flag => format!("{what}, or pass --config the path of a tfenv.toml file"),
        Found::Search => format!(
            "{what}: tfenv does not guess the environments past a tfenv.toml it cannot read"
        ),
    };
    if let Some(problem) = FileKind::of(path).problem() {
        return Err(TfenvError::config(
            format!("`{}` {problem}", path.display()),
            Some(fix("make it a regular file (or a symlink to one)")),
        )
        .into());
    }
    let bytes = std::fs::read(path).map_err(|err| {
        TfenvError::config(
            format!("cannot read `{}`: {err}", path.display()),
            Some(fix("check the file's permissions")),
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|err| {
        TfenvError::config(
            format!(
                "`{}` is not UTF-8 text (invalid byte at offset {})",
                path.display(),
                err.utf8_error().valid_up_to()
            ),
            Some(match found {
                Found::Flag => {
                    "check the path given to --config: it must name a tfenv.toml".to_string()
                }
                Found::Search => {
                    "write it as TOML; see the tfenv.toml reference in docs/configuration.md"
                        .to_string()
                }
            }),
        )
    })?;
    // An empty file is a mistake (a truncated write, a `touch`), not a request to
    // discover: read as "no environments" it would drop every declared tier and alias.
    if has_no_settings(&text) {
        return Err(TfenvError::config(
            format!("`{}` is empty (no settings)", path.display()),
            Some(fix(
                "declare the environments in it (see docs/configuration.md), or delete it to use the layout tfenv discovers",
            )),
        )
        .into());
    }
    parse(&text, shown)
}

/// Only blank lines and comments: TOML has no other way to say nothing.
fn has_no_settings(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    })
}

pub fn parse(text: &str, shown: &str) -> anyhow::Result<ConfigFile> {
    toml::from_str(text).map_err(|err| {
        let (line, column) = err
            .span()
            .map(|span| line_column(text, span.start))
            .unwrap_or((1, 1));
        TfenvError::config(
            format!(
                "invalid `{shown}` at line {line}, column {column}: {}",
                err.message().trim()
            ),
            Some("see the tfenv.toml reference in docs/configuration.md".to_string()),
        )
        .into()
    })
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tier_names_the_position() {
        let text = "[environments.dev]\ntier = \"prod\"\n";
        let err = parse(text, "tfenv.toml").unwrap_err().to_string();
        assert!(
            err.contains("invalid `tfenv.toml` at line 2, column 8"),
            "{err}"
        );
        assert!(err.contains("development"), "{err}");
    }

    #[test]
    fn a_tfenv_toml_with_no_settings_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tfenv.toml");
        for text in ["", "\n  \n", "# environments come later\n\n"] {
            std::fs::write(&path, text).unwrap();
            let err = load(&path, "tfenv.toml", Found::Search).unwrap_err();
            let tfenv = err.downcast_ref::<TfenvError>().unwrap();
            assert_eq!(
                tfenv.to_string(),
                format!("`{}` is empty (no settings)", path.display())
            );
            assert!(tfenv.hint().unwrap().contains("delete it"), "{tfenv:?}");
        }
        std::fs::write(&path, "[project]\nroot = \".\"\n").unwrap();
        load(&path, "tfenv.toml", Found::Search).unwrap();
    }

    #[test]
    fn policy_commands_and_false_are_read() {
        let text = "[policy]\ncommand = [\"conftest\", \"test\", \"{plan_json}\"]\n\n[environments.dev]\npolicy = false\n\n[environments.prod]\npolicy = [\"./check\"]\n";
        let file = parse(text, "tfenv.toml").unwrap();
        assert_eq!(
            file.policy.unwrap().command,
            PolicyCommand(vec!["conftest".into(), "test".into(), "{plan_json}".into()])
        );
        assert_eq!(file.environments["dev"].policy, Some(PolicySetting::Off));
        assert_eq!(
            file.environments["prod"].policy,
            Some(PolicySetting::Command(PolicyCommand(vec![
                "./check".into()
            ])))
        );
    }

    #[test]
    fn a_policy_of_the_wrong_type_names_the_key() {
        for (text, key) in [
            (
                "[policy]\ncommand = \"conftest test\"\n",
                "`[policy] command`",
            ),
            ("[policy]\ncommand = false\n", "`[policy] command`"),
            ("[environments.dev]\npolicy = \"conftest\"\n", "`policy`"),
            ("[environments.dev]\npolicy = true\n", "`policy`"),
            ("[environments.dev]\npolicy = [\"a\", 1]\n", "`policy`"),
        ] {
            let err = parse(text, "tfenv.toml").unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
            assert!(err.contains("line 2"), "{text}: {err}");
        }
    }

    #[test]
    fn hooks_are_read_as_lists() {
        let text = "[hooks]\non_deploy = [\"./notify.sh\", \"ok\"]\non_drift = [\"curl\"]\ntimeout = \"5s\"\n";
        let hooks = parse(text, "tfenv.toml").unwrap().hooks.unwrap();
        assert_eq!(
            hooks.on_deploy,
            Some(HookCommand(vec!["./notify.sh".into(), "ok".into()]))
        );
        assert_eq!(hooks.on_failure, None);
        assert_eq!(hooks.on_drift, Some(HookCommand(vec!["curl".into()])));
        assert_eq!(hooks.timeout.as_deref(), Some("5s"));
    }

    #[test]
    fn a_hook_of_the_wrong_type_names_the_key_and_shows_a_list() {
        for (text, key) in [
            (
                "[hooks]\non_deploy = \"curl -d @- x\"\n",
                "`[hooks] on_deploy`",
            ),
            ("[hooks]\non_failure = false\n", "`[hooks] on_failure`"),
            ("[hooks]\non_drift = [\"a\", 1]\n", "`[hooks] on_drift`"),
        ] {
            let err = parse(text, "tfenv.toml").unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
            assert!(err.contains("line 2"), "{text}: {err}");
            assert!(err.contains("./hooks/notify.sh"), "{text}: {err}");
        }
        let err = parse("[hooks]\non_deply = [\"x\"]\n", "tfenv.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("on_deply") && err.contains("on_deploy"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_an_error() {
        let text = "[project]\nterrafrom = \"tofu\"\n";
        let err = parse(text, "tfenv.toml").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("terrafrom"), "{err}");
    }
}
