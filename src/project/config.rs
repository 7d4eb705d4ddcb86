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
    fn unknown_key_is_an_error() {
        let text = "[project]\nterrafrom = \"tofu\"\n";
        let err = parse(text, "tfenv.toml").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("terrafrom"), "{err}");
    }
}
