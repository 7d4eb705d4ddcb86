//! One environment as tfenv sees it: its name, tier, files and Terraform root,
//! and the per-environment paths derived from them.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TfenvError;

/// How careful tfenv is with an environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Development,
    Staging,
    Production,
}

impl Tier {
    /// The tier a name implies when the configuration does not say.
    pub fn default_for(name: &str) -> Tier {
        match name {
            "prod" | "production" | "prd" | "live" => Tier::Production,
            "stage" | "staging" | "stg" | "preprod" | "uat" => Tier::Staging,
            _ => Tier::Development,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Development => "development",
            Tier::Staging => "staging",
            Tier::Production => "production",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which of the supported project layouts an environment came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Declared in tfenv.toml.
    Config,
    /// `environments/<env>.backend.conf` + `environments/<env>.tfvars`.
    EnvironmentsFiles,
    /// `backend-<env>.tfbackend` + `terraform.tfvars.<env>`.
    SuffixFiles,
    /// `environments/<env>/` holding its own root module.
    FolderPerEnv,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Config => "tfenv.toml",
            Layout::EnvironmentsFiles => "environments-files",
            Layout::SuffixFiles => "suffix-files",
            Layout::FolderPerEnv => "folder-per-env",
        }
    }
}

/// A resolved environment. Paths are absolute.
#[derive(Clone, Debug)]
pub struct Environment {
    pub name: String,
    pub tier: Tier,
    pub aliases: Vec<String>,
    pub layout: Layout,
    /// The Terraform root module terraform runs in.
    pub root: PathBuf,
    pub backend_config: Option<PathBuf>,
    pub var_files: Vec<PathBuf>,
    /// A Terraform workspace in a shared backend (`TF_WORKSPACE`).
    pub workspace: Option<String>,
    /// `backend = "..."` from tfenv.toml, when the root module does not say.
    pub backend_type: Option<String>,
    /// Where tfenv keeps this environment's artifacts: `<state_dir>/<env>`.
    pub artifacts_dir: PathBuf,
    /// Back up before a development deploy (staging and production always do).
    pub backup: bool,
    pub backup_keep: Option<usize>,
    /// `status` reports `backup-stale` when no verified backup is younger than this
    /// (`backup_max_age`: the environment's, else the project's, else 7 days for
    /// production); `None`: no check.
    pub backup_max_age: Option<std::time::Duration>,
    /// The policy command every plan of this environment must pass (`{plan_json}` stands
    /// for the plan's JSON file): its own `policy`, else `[policy] command`; `None` for none.
    pub policy: Option<Vec<String>>,
    /// `promote_from`: the environment (its name, aliases resolved) whose successful
    /// deploy of a commit from a clean tree this one's deploy of it needs.
    pub promote_from: Option<String>,
    /// Why this environment cannot be used (a file tfenv.toml names does not exist).
    pub config_problem: Option<ConfigProblem>,
}

/// A configuration mistake that concerns one environment only. It is kept on the
/// environment instead of failing the whole project, so commands on other environments
/// still work and `status` reports it as that environment's `config` problem.
#[derive(Clone, Debug)]
pub struct ConfigProblem {
    pub message: String,
    pub hint: String,
}

impl Environment {
    /// Terraform's data dir for this environment (`TF_DATA_DIR`).
    pub fn data_dir(&self) -> PathBuf {
        self.root.join(".terraform").join("tfenv").join(&self.name)
    }

    /// The fingerprint of the configuration `init` last ran with, next to the data dir.
    pub fn fingerprint_file(&self) -> PathBuf {
        self.root
            .join(".terraform")
            .join("tfenv")
            .join(format!("{}.fingerprint", self.name))
    }

    /// The environment's configuration problem, as the error a command on it fails with.
    pub fn check_config(&self) -> Result<(), TfenvError> {
        match &self.config_problem {
            Some(problem) => Err(TfenvError::config(
                problem.message.clone(),
                Some(problem.hint.clone()),
            )),
            None => Ok(()),
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        self.name == name || self.aliases.iter().any(|alias| alias == name)
    }
}

/// Checks an environment name against `[a-z0-9][a-z0-9_-]{0,62}`, so a name can never
/// escape into a path (`../x`) or a command line.
pub fn validate_name(name: &str) -> Result<(), TfenvError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if first_ok && rest_ok && name.len() <= 63 {
        return Ok(());
    }
    let shown = if name.is_empty() { "(empty)" } else { name };
    Err(TfenvError::usage(
        format!("`{}` is not a valid environment name", shown.escape_default()),
        Some(
            "names are 1-63 characters: lowercase letters, digits, `-` and `_`, starting with a letter or digit"
                .to_string(),
        ),
    ))
}

/// Shows `path` relative to `base` when it is inside it, for messages and listings.
pub fn display_path(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_defaults_follow_the_name() {
        for name in ["prod", "production", "prd", "live"] {
            assert_eq!(Tier::default_for(name), Tier::Production, "{name}");
        }
        for name in ["stage", "staging", "stg", "preprod", "uat"] {
            assert_eq!(Tier::default_for(name), Tier::Staging, "{name}");
        }
        for name in ["dev", "qa", "sandbox", "production2"] {
            assert_eq!(Tier::default_for(name), Tier::Development, "{name}");
        }
    }

    #[test]
    fn valid_names_are_accepted() {
        for name in ["dev", "prod-eu", "a", "0x", "us_east_1", &"a".repeat(63)] {
            assert!(validate_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn names_that_could_escape_or_confuse_are_refused() {
        for name in [
            "",
            "../x",
            "Prod",
            "-dev",
            "_dev",
            "dev/x",
            "dev x",
            "dév",
            &"a".repeat(64),
        ] {
            let err = validate_name(name).unwrap_err();
            assert!(
                err.to_string().contains("not a valid environment name"),
                "{name}"
            );
        }
    }
}
