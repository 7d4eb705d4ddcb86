//! The terraform calls of `tfenv validate`, on a root module rather than an environment:
//! `fmt -check`, `init -backend=false` into a data dir of its own (never an
//! environment's, never the backend), and `validate -json`, parsed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{Terraform, check_interrupted, terraform_error_text};
use crate::process::{Finished, Invocation, RunOptions};

/// What `terraform fmt -check -recursive` found in a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FmtCheck {
    /// Every file is formatted.
    Formatted,
    /// These files (relative to the root, as terraform lists them) need `terraform fmt`.
    Unformatted(Vec<String>),
    /// terraform could not parse a file (exit 2): `validate` says where.
    Unparsable(String),
}

/// One diagnostic of `terraform validate -json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// `error` or `warning`.
    pub severity: String,
    pub summary: String,
    pub detail: String,
    /// Relative to the root, as terraform names it; `None` for one about no file.
    pub file: Option<String>,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

/// `validate -json`'s document, the part tfenv reads.
#[derive(Deserialize)]
struct ValidateDocument {
    valid: bool,
    #[serde(default)]
    diagnostics: Vec<RawDiagnostic>,
}

#[derive(Deserialize)]
struct RawDiagnostic {
    severity: String,
    summary: String,
    #[serde(default)]
    detail: String,
    range: Option<RawRange>,
}

#[derive(Deserialize)]
struct RawRange {
    filename: String,
    start: RawPos,
}

#[derive(Deserialize)]
struct RawPos {
    line: u64,
    column: u64,
}

/// What `validate -json` said about a root.
#[derive(Clone, Debug)]
pub struct Validation {
    pub valid: bool,
    pub diagnostics: Vec<Diagnostic>,
}

impl Terraform {
    /// A terraform call in `root` with `data_dir` as its data dir, no workspace, the
    /// shared plugin cache, and never a prompt.
    fn root_invocation(&self, root: &Path, data_dir: &Path, args: &[&str]) -> Invocation {
        let mut inv = Invocation::new(&self.bin, args);
        inv.cwd = root.to_path_buf();
        inv.env
            .push(("TF_DATA_DIR".into(), data_dir.as_os_str().to_os_string()));
        inv.env.push(("TF_IN_AUTOMATION".into(), "1".into()));
        inv.env.push(("TF_INPUT".into(), "0".into()));
        if let Some(cache) = &self.plugin_cache {
            inv.env
                .push(("TF_PLUGIN_CACHE_DIR".into(), cache.clone().into_os_string()));
        }
        inv.env_remove.push("TF_WORKSPACE".into());
        inv
    }

    /// The data dir `validate` initializes a root into: beside the environments' own,
    /// under a name no environment can have (names start with a letter or digit).
    pub fn validation_data_dir(root: &Path) -> PathBuf {
        root.join(".terraform").join("tfenv").join("_validate")
    }

    /// `fmt -check -recursive -list=true` in `root`.
    pub async fn fmt_check(&self, root: &Path) -> anyhow::Result<FmtCheck> {
        let inv = self.root_invocation(
            root,
            &Terraform::validation_data_dir(root),
            &["fmt", "-check", "-recursive", "-list=true", "-no-color"],
        );
        let done = self.runner.run(&inv, RunOptions::default()).await?;
        check_interrupted(&done)?;
        match done.code {
            Some(0) => Ok(FmtCheck::Formatted),
            Some(3) => {
                let files = done
                    .stdout_text()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect();
                Ok(FmtCheck::Unformatted(files))
            }
            Some(2) => Ok(FmtCheck::Unparsable(error_text(&done))),
            _ => Err(root_failed("fmt -check", root, &done)),
        }
    }

    /// `init -backend=false` of `root` into its validation data dir: modules and
    /// providers (from the shared plugin cache), never the backend, never an
    /// environment's data dir.
    pub async fn init_for_validation(&self, root: &Path) -> anyhow::Result<()> {
        if let Some(cache) = &self.plugin_cache {
            std::fs::create_dir_all(cache)
                .with_context(|| format!("creating the plugin cache `{}`", cache.display()))?;
        }
        let inv = self.root_invocation(
            root,
            &Terraform::validation_data_dir(root),
            &["init", "-backend=false", "-input=false", "-no-color"],
        );
        let done = self.runner.run(&inv, RunOptions::default()).await?;
        check_interrupted(&done)?;
        if !done.success() {
            return Err(root_failed("init -backend=false", root, &done));
        }
        Ok(())
    }

    /// `validate -json` of `root`. Exit 1 with its document is an invalid configuration,
    /// not a failure; anything that is not its document is.
    pub async fn validate_json(&self, root: &Path) -> anyhow::Result<Validation> {
        let inv = self.root_invocation(
            root,
            &Terraform::validation_data_dir(root),
            &["validate", "-json", "-no-color"],
        );
        let done = self.runner.run(&inv, RunOptions::default()).await?;
        check_interrupted(&done)?;
        let parsed = serde_json::from_slice::<ValidateDocument>(&done.stdout);
        let document = match (done.code, parsed) {
            (Some(0 | 1), Ok(document)) => document,
            (_, Err(err)) if matches!(done.code, Some(0 | 1)) => {
                let text = done.stdout_text();
                let first = text.lines().map(str::trim).find(|l| !l.is_empty());
                anyhow::bail!(
                    "`terraform validate -json` in `{}` {} but did not print its JSON document ({err}); it printed {}",
                    root.display(),
                    done.describe(),
                    first.map_or("nothing".to_string(), |l| format!("`{}`", truncate(l, 120)))
                );
            }
            _ => return Err(root_failed("validate -json", root, &done)),
        };
        Ok(Validation {
            valid: document.valid,
            diagnostics: document
                .diagnostics
                .into_iter()
                .map(|d| Diagnostic {
                    severity: d.severity,
                    summary: d.summary,
                    detail: d.detail,
                    file: d.range.as_ref().map(|r| r.filename.clone()),
                    line: d.range.as_ref().map(|r| r.start.line),
                    column: d.range.as_ref().map(|r| r.start.column),
                })
                .collect(),
        })
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn error_text(done: &Finished) -> String {
    let stderr = done.stderr_text();
    let text = if stderr.trim().is_empty() {
        done.stdout_text()
    } else {
        stderr
    };
    terraform_error_text(&text, 10, "run it in the root to see all of it")
}

/// A failed call on a root: what terraform said (its first lines), or how it ended.
fn root_failed(what: &str, root: &Path, done: &Finished) -> anyhow::Error {
    let detail = error_text(done);
    anyhow::anyhow!(
        "`terraform {what}` in `{}` {}{}",
        root.display(),
        done.describe(),
        if detail.trim().is_empty() {
            String::new()
        } else {
            format!(":\n{detail}")
        }
    )
}
