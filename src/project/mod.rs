//! The user's Terraform project: where its root is, which environments it has and
//! where each one's files live — from tfenv.toml or discovered from the three layouts.
//! May use: error only.

mod config;
mod discovery;
mod environment;
mod file_kind;
pub mod hcl;
pub mod own_files;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::TfenvError;

pub use config::FILE_NAME as CONFIG_FILE_NAME;
pub use config::LedgerMode;
pub use discovery::{Note, auto_var_files};
pub use environment::{ConfigProblem, Environment, Layout, Tier, display_path, validate_name};
pub use file_kind::FileKind;

use discovery::{Discovery, discover_with_root};

/// A resolved project. Paths are absolute.
#[derive(Debug)]
pub struct Project {
    /// The folder holding tfenv.toml, or where the layout was discovered.
    pub root: PathBuf,
    pub config_file: Option<PathBuf>,
    /// `terraform` from tfenv.toml (a name on PATH or a path).
    pub terraform: Option<String>,
    pub required_version: Option<String>,
    pub state_dir: PathBuf,
    pub environments: Vec<Environment>,
    /// A state lock older than this is a problem in `status`.
    pub stale_lock_after: std::time::Duration,
    /// A tfenv.toml further up that a nearer discovered layout keeps from being used.
    pub shadowed_config: Option<PathBuf>,
    /// `[project] ledger`: history and backups on this machine only, or also shared in
    /// the state backend.
    pub ledger: config::LedgerMode,
    /// `[hooks]`: the commands run after a deploy, a failure, a drift check.
    pub hooks: Hooks,
    /// Files discovery saw that no discovered environment uses, or that one lacks
    /// (`tfenv envs` shows them); none when tfenv.toml declares the environments.
    pub notes: Vec<Note>,
}

/// `[hooks]` of tfenv.toml (DESIGN.md §11), each a command line, program first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hooks {
    pub on_deploy: Option<Vec<String>>,
    pub on_failure: Option<Vec<String>>,
    pub on_drift: Option<Vec<String>>,
    /// A hook still running after this is killed.
    pub timeout: std::time::Duration,
}

/// The default of `[hooks] timeout`.
pub const HOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Default for Hooks {
    fn default() -> Hooks {
        Hooks {
            on_deploy: None,
            on_failure: None,
            on_drift: None,
            timeout: HOOK_TIMEOUT,
        }
    }
}

/// The default of `backup_max_age` for production environments.
const PRODUCTION_BACKUP_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(7 * 86400);

/// `backup_max_age` when tfenv.toml does not set it: 7 days for production, else no check.
fn default_backup_max_age(tier: Tier) -> Option<std::time::Duration> {
    (tier == Tier::Production).then_some(PRODUCTION_BACKUP_MAX_AGE)
}

/// A `backup_max_age` value (`key` as tfenv.toml spells it): a duration, or `"off"` /
/// `false` for no check (`None`).
fn backup_max_age(
    value: &config::MaxAge,
    key: &str,
    shown: &str,
) -> Result<Option<std::time::Duration>, TfenvError> {
    let hint = || {
        Some(
            "write it like \"7d\", \"36h\" or \"2w\", or \"off\" (or `false`) for no check"
                .to_string(),
        )
    };
    match value {
        config::MaxAge::Flag(false) => Ok(None),
        config::MaxAge::Flag(true) => Err(TfenvError::config(
            format!("`{shown}`: {key} `true` is not a duration"),
            hint(),
        )),
        config::MaxAge::Text(text) if text.trim() == "off" => Ok(None),
        config::MaxAge::Text(text) => match humantime::parse_duration(text.trim()) {
            Ok(age) if !age.is_zero() => Ok(Some(age)),
            Ok(_) => Err(TfenvError::config(
                format!("`{shown}`: {key} `{text}` is zero: every backup would be stale"),
                hint(),
            )),
            Err(e) => Err(TfenvError::config(
                format!("`{shown}`: {key} `{text}` is not a duration ({e})"),
                hint(),
            )),
        },
    }
}

/// The default of `stale_lock_after`.
const STALE_LOCK_AFTER: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

impl Project {
    /// Finds the project from `start` (upward), or from `config` when given. The nearest
    /// folder with either a tfenv.toml or a discoverable layout is the project: a
    /// tfenv.toml further up never reaches past a layout found nearer.
    pub fn load(start: &Path, config: Option<&Path>) -> anyhow::Result<Project> {
        // `--config ../real.toml`, `-C ..`: lexically, as a shell's `cd ..` goes, so the
        // root prints as the folder it is (not `/x/..`) and the walk upward starts there.
        let start = &normalize(start);
        if let Some(config) = config {
            let config = normalize(&absolute(start, config));
            let root = config.parent().map(Path::to_path_buf).unwrap_or_default();
            return Project::from_config(&root, &config, config::Found::Flag);
        }
        // Near misses are looked for up to the repository's top (the folder with `.git`),
        // or in the start folder alone outside a repository: never in `/` or `$HOME`.
        let top = start
            .ancestors()
            .find(|dir| dir.join(".git").exists())
            .unwrap_or(start);
        let mut near: Option<(PathBuf, Vec<Note>)> = None;
        for dir in start.ancestors() {
            let candidate = dir.join(CONFIG_FILE_NAME);
            // Anything named tfenv.toml is the project's config, readable or not: a
            // broken one must stop tfenv, not send it to a layout further away.
            if FileKind::of(&candidate).exists() {
                return Project::from_config(dir, &candidate, config::Found::Search);
            }
            let found = discover(dir)?;
            if !found.environments.is_empty() {
                let mut project = Project::from_discovery(dir, found)?;
                // Said, not silent: the tfenv.toml above may declare tiers this layout lacks.
                project.shadowed_config = dir
                    .ancestors()
                    .skip(1)
                    .map(|up| up.join(CONFIG_FILE_NAME))
                    .find(|candidate| FileKind::of(candidate).exists());
                return Ok(project);
            }
            if near.is_none() && dir.starts_with(top) {
                let misses = discovery::near_misses(dir, found.notes);
                if !misses.is_empty() {
                    near = Some((dir.to_path_buf(), misses));
                }
            }
        }
        Err(not_found(start, near).into())
    }

    /// Where the project came from, for people: "`/repo` (config `tfenv.toml`)" or
    /// "`/repo` (discovered layout, no tfenv.toml)".
    pub fn describe(&self) -> String {
        match &self.config_file {
            Some(config) => format!("`{}` (config `{}`)", self.root.display(), self.show(config)),
            None => format!(
                "`{}` (discovered layout, no tfenv.toml)",
                self.root.display()
            ),
        }
    }

    fn from_discovery(root: &Path, discovery: Discovery) -> anyhow::Result<Project> {
        let mut found = discovery.environments;
        keep_file_problems(&mut found, root);
        for env in &mut found {
            env.backup_max_age = default_backup_max_age(env.tier);
        }
        Ok(Project {
            root: root.to_path_buf(),
            config_file: None,
            terraform: None,
            required_version: None,
            state_dir: root.join("state"),
            environments: found,
            stale_lock_after: STALE_LOCK_AFTER,
            shadowed_config: None,
            ledger: config::LedgerMode::Local,
            hooks: Hooks::default(),
            notes: discovery.notes,
        })
    }

    fn from_config(
        root: &Path,
        config_path: &Path,
        found: config::Found,
    ) -> anyhow::Result<Project> {
        let shown = display_path(config_path, root);
        let file = config::load(config_path, &shown, found)?;
        let state_dir = root.join(
            file.project
                .state_dir
                .as_deref()
                .unwrap_or(Path::new("state")),
        );
        let tf_root = root.join(file.project.root.as_deref().unwrap_or(Path::new(".")));
        let tf_root = normalize(&tf_root);
        if !tf_root.is_dir() {
            return Err(TfenvError::config(
                format!(
                    "`{shown}`: project root `{}` is not a folder",
                    display_path(&tf_root, root)
                ),
                Some("set [project] root to the folder of the Terraform root module".to_string()),
            )
            .into());
        }
        let discovery = discover_with_root(root, &tf_root, !file.environments.is_empty())?;
        let mut discovered = discovery.environments;
        // Notes are about what discovery decides; declared environments decide themselves.
        let notes = match file.environments.is_empty() {
            true => {
                keep_file_problems(&mut discovered, root);
                discovery.notes
            }
            false => Vec::new(),
        };
        let stale_lock_after = match &file.project.stale_lock_after {
            None => STALE_LOCK_AFTER,
            Some(text) => humantime::parse_duration(text).map_err(|e| {
                TfenvError::config(
                    format!("`{shown}`: stale_lock_after `{text}` is not a duration ({e})"),
                    Some("write it like \"2h\", \"30m\" or \"1d\"".to_string()),
                )
            })?,
        };
        let project_max_age = match &file.project.backup_max_age {
            None => None,
            Some(value) => Some(backup_max_age(value, "[project] backup_max_age", &shown)?),
        };

        let hooks = match &file.hooks {
            Some(section) => hooks(section, &shown)?,
            None => Hooks::default(),
        };
        let project_policy = match &file.policy {
            Some(section) => Some(policy_command(
                &section.command,
                "[policy] command",
                &shown,
            )?),
            None => None,
        };
        let mut environments = if file.environments.is_empty() {
            discovered
                .into_iter()
                .map(|mut env| {
                    env.policy = project_policy.clone();
                    env
                })
                .collect()
        } else {
            let mut environments = Vec::new();
            for (name, section) in &file.environments {
                validate_name(name).map_err(|err| {
                    TfenvError::config(
                        format!("`{shown}` declares [environments.{name}]: {err}"),
                        Some("rename the section".to_string()),
                    )
                })?;
                let found = discovered.iter().find(|env| &env.name == name);
                // Two files name this environment: an error unless the section sets the
                // key they compete for.
                for conflict in discovery.conflicts.iter().filter(|c| &c.env == name) {
                    let settled = match conflict.key {
                        discovery::Key::Root => section.root.is_some(),
                        discovery::Key::BackendConfig => section.backend_config.is_some(),
                        discovery::Key::VarFiles => section.var_files.is_some(),
                    };
                    if !settled {
                        return Err(conflict.error().into());
                    }
                }
                let env_root = match (&section.root, found) {
                    (Some(dir), _) => normalize(&root.join(dir)),
                    (None, Some(found)) => found.root.clone(),
                    (None, None) => tf_root.clone(),
                };
                let backend_config = match (&section.backend_config, found) {
                    (Some(path), _) => Some(root.join(path)),
                    (None, Some(found)) => found.backend_config.clone(),
                    (None, None) => None,
                };
                let var_files = match (&section.var_files, found) {
                    (Some(paths), _) => paths.iter().map(|p| root.join(p)).collect(),
                    (None, Some(found)) => found.var_files.clone(),
                    (None, None) => Vec::new(),
                };
                if let Some(workspace) = &section.workspace {
                    validate_workspace(workspace, name, &shown)?;
                }
                let mut env = Environment {
                    name: name.clone(),
                    tier: section.tier.unwrap_or_else(|| Tier::default_for(name)),
                    aliases: section.aliases.clone(),
                    layout: found.map_or(Layout::Config, |f| f.layout),
                    root: env_root,
                    backend_config,
                    var_files,
                    workspace: section.workspace.clone(),
                    backend_type: section
                        .backend
                        .clone()
                        .or_else(|| file.project.backend.clone()),
                    artifacts_dir: state_dir.join(name),
                    backup: section.backup.unwrap_or(false),
                    backup_keep: section.backup_keep,
                    backup_max_age: None,
                    policy: match &section.policy {
                        None => project_policy.clone(),
                        Some(config::PolicySetting::Off) => None,
                        Some(config::PolicySetting::Command(command)) => Some(policy_command(
                            command,
                            &format!("[environments.{name}] policy"),
                            &shown,
                        )?),
                    },
                    // Resolved once every environment is known (`resolve_promotions`).
                    promote_from: None,
                    config_problem: None,
                };
                // Only commands on this environment fail on a bad file (see
                // `Environment::check_config`); `status` reports it and goes on.
                env.config_problem = file_problem(&env, root, Some(&shown));
                environments.push(env);
            }
            environments
        };
        for env in &mut environments {
            let own = file
                .environments
                .get(&env.name)
                .and_then(|section| section.backup_max_age.as_ref());
            env.backup_max_age = match own {
                Some(value) => backup_max_age(
                    value,
                    &format!("[environments.{}] backup_max_age", env.name),
                    &shown,
                )?,
                None => match project_max_age {
                    Some(project) => project,
                    None => default_backup_max_age(env.tier),
                },
            };
        }
        check_aliases(&environments, &shown)?;
        resolve_promotions(&mut environments, &file.environments, &shown)?;

        Ok(Project {
            root: root.to_path_buf(),
            config_file: Some(config_path.to_path_buf()),
            terraform: file.project.terraform,
            required_version: file.project.required_version,
            environments: environments
                .into_iter()
                .map(|mut env| {
                    env.artifacts_dir = state_dir.join(&env.name);
                    env
                })
                .collect(),
            state_dir,
            stale_lock_after,
            shadowed_config: None,
            ledger: file.project.ledger.unwrap_or_default(),
            hooks,
            notes,
        })
    }

    /// Looks an environment up by name or alias. Invalid names never reach a path.
    /// Its configuration must be usable (see `Environment::check_config`).
    pub fn environment(&self, name: &str) -> Result<&Environment, TfenvError> {
        let env = self.find(name)?;
        env.check_config()?;
        Ok(env)
    }

    fn find(&self, name: &str) -> Result<&Environment, TfenvError> {
        validate_name(name)?;
        if let Some(env) = self.environments.iter().find(|env| env.matches(name)) {
            return Ok(env);
        }
        let known: Vec<&str> = self.environments.iter().map(|e| e.name.as_str()).collect();
        let suggestion = self
            .environments
            .iter()
            .flat_map(|env| std::iter::once(&env.name).chain(&env.aliases))
            .map(|candidate| (strsim::levenshtein(name, candidate), candidate))
            .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
            .min()
            .map(|(_, candidate)| candidate);
        let known = format!("(known: {})", known.join(", "));
        let message = match suggestion {
            Some(candidate) => {
                format!("environment `{name}` is not defined; did you mean `{candidate}`? {known}")
            }
            None => format!("environment `{name}` is not defined {known}"),
        };
        Err(TfenvError::usage(
            message,
            Some("run `tfenv envs` to list environments".to_string()),
        ))
    }

    /// The environments named (all when `names` is empty), in project order, each once;
    /// also those whose configuration is not usable (`Environment::check_config`).
    pub fn select(&self, names: &[String]) -> Result<Vec<&Environment>, TfenvError> {
        if names.is_empty() {
            return Ok(self.environments.iter().collect());
        }
        let mut selected: Vec<&Environment> = Vec::new();
        for name in names {
            let env = self.find(name)?;
            if !selected.iter().any(|e| e.name == env.name) {
                selected.push(env);
            }
        }
        Ok(selected)
    }

    /// The program of a command from tfenv.toml (policy, hooks): one named by a relative
    /// path (`./policy/check.sh`) is the project root's; a bare name is looked up on PATH.
    pub fn program(&self, program: &str) -> PathBuf {
        let path = Path::new(program);
        match path.components().count() > 1 && path.is_relative() {
            true => self.root.join(path),
            false => path.to_path_buf(),
        }
    }

    /// Shows a path relative to the project root.
    pub fn show(&self, path: &Path) -> String {
        display_path(path, &self.root)
    }
}

/// "no tfenv project found", naming the near misses seen in `near` (the folder and its
/// notes) and the tfenv.toml that would use them.
fn not_found(start: &Path, near: Option<(PathBuf, Vec<Note>)>) -> TfenvError {
    let headline = format!(
        "no tfenv project found in `{}` or any folder above it",
        start.display()
    );
    let Some((dir, misses)) = near else {
        return TfenvError::config(
            headline,
            Some(
                "create a tfenv.toml, or add environments/<env>.backend.conf (.backend.hcl, .tfbackend), backend-<env>.tfbackend, or a folder per environment under environments/, envs/ or env/ (see README.md)"
                    .to_string(),
            ),
        );
    };
    let mut message = format!(
        "{headline}; in `{}` these look like environment files but fit no layout:",
        dir.display()
    );
    for note in &misses {
        message.push_str(&format!("\n  - {}", note.message));
    }
    let hint = match discovery::suggested_config(&misses) {
        Some(toml) => format!(
            "save this as `{}` (adjust names and tiers as needed; see docs/configuration.md):\n\n{}",
            dir.join(CONFIG_FILE_NAME).display(),
            toml.trim_end()
        ),
        None => "rename the files to a layout tfenv discovers (see README.md), or declare the environments in tfenv.toml".to_string(),
    };
    TfenvError::config(message, Some(hint))
}

/// Discovered environments whose files are not regular files keep that as their
/// configuration problem, as declared ones do: commands on the others still work.
fn keep_file_problems(found: &mut [Environment], root: &Path) {
    for env in found {
        if env.config_problem.is_none() {
            env.config_problem = file_problem(env, root, None);
        }
    }
}

/// The first backend config or var file of `env` that is missing or not a regular file:
/// a directory, FIFO or broken symlink is named for what it is, never read (a FIFO would
/// block) and never skipped. `named_in`: the tfenv.toml as shown, `None` when the
/// environment was discovered.
fn file_problem(env: &Environment, root: &Path, named_in: Option<&str>) -> Option<ConfigProblem> {
    env.backend_config
        .iter()
        .chain(&env.var_files)
        .find_map(|path| {
            let problem = FileKind::of(path).problem()?;
            let name = &env.name;
            let shown = display_path(path, root);
            Some(match named_in {
                Some(config) => ConfigProblem {
                    message: format!(
                        "environment `{name}`: `{shown}` (named in `{config}`) {problem}"
                    ),
                    hint: format!("create the file or fix the path in [environments.{name}]"),
                },
                None => ConfigProblem {
                    message: format!("environment `{name}`: `{shown}` {problem}"),
                    hint: "make it a regular file (or a symlink to one), or move it out of the way"
                        .to_string(),
                },
            })
        })
}

/// A policy command must name a program.
fn policy_command(
    command: &config::PolicyCommand,
    key: &str,
    shown: &str,
) -> anyhow::Result<Vec<String>> {
    match command.0.first() {
        Some(program) if !program.trim().is_empty() => Ok(command.0.clone()),
        _ => Err(TfenvError::config(
            format!("`{shown}`: {key} names no program"),
            Some(
                "write the command as a list, program first: [\"conftest\", \"test\", \"{plan_json}\"], or `policy = false` for none"
                    .to_string(),
            ),
        )
        .into()),
    }
}

/// `[hooks]`, checked: each command names a program, the timeout is a duration.
fn hooks(section: &config::HooksSection, shown: &str) -> anyhow::Result<Hooks> {
    let command = |command: &Option<config::HookCommand>, key: &str| match command {
        None => Ok(None),
        Some(config::HookCommand(words)) => match words.first() {
            Some(program) if !program.trim().is_empty() => Ok(Some(words.clone())),
            _ => Err(TfenvError::config(
                format!("`{shown}`: [hooks] {key} names no program"),
                Some(format!(
                    "write the command as a list, program first: {key} = {}, or leave the key out for no hook",
                    config::HOOK_EXAMPLE
                )),
            )),
        },
    };
    let timeout = match &section.timeout {
        None => HOOK_TIMEOUT,
        Some(text) => match humantime::parse_duration(text) {
            Ok(timeout) if !timeout.is_zero() => timeout,
            Ok(_) => {
                return Err(TfenvError::config(
                    format!("`{shown}`: [hooks] timeout `{text}` is zero: every hook would be killed at once"),
                    Some("write how long a hook may run, like timeout = \"30s\" or \"2m\"".to_string()),
                )
                .into());
            }
            Err(e) => {
                return Err(TfenvError::config(
                    format!("`{shown}`: [hooks] timeout `{text}` is not a duration ({e})"),
                    Some("write it like timeout = \"30s\" or \"2m\"".to_string()),
                )
                .into());
            }
        },
    };
    Ok(Hooks {
        on_deploy: command(&section.on_deploy, "on_deploy")?,
        on_failure: command(&section.on_failure, "on_failure")?,
        on_drift: command(&section.on_drift, "on_drift")?,
        timeout,
    })
}

fn validate_workspace(workspace: &str, env: &str, shown: &str) -> anyhow::Result<()> {
    let ok = !workspace.is_empty()
        && workspace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        return Ok(());
    }
    Err(TfenvError::config(
        format!("environment `{env}` in `{shown}`: workspace `{workspace}` is not a valid Terraform workspace name"),
        Some("use letters, digits, `-` and `_`".to_string()),
    )
    .into())
}

fn check_aliases(environments: &[Environment], shown: &str) -> anyhow::Result<()> {
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for env in environments {
        owners.insert(&env.name, &env.name);
    }
    for env in environments {
        for alias in &env.aliases {
            validate_name(alias).map_err(|err| {
                TfenvError::config(
                    format!("environment `{}` in `{shown}`: alias {err}", env.name),
                    Some("fix the alias".to_string()),
                )
            })?;
            if let Some(owner) = owners.insert(alias, &env.name) {
                return Err(TfenvError::config(
                    format!(
                        "`{shown}`: alias `{alias}` of `{}` is already the name or an alias of `{owner}`",
                        env.name
                    ),
                    Some("each name and alias must point at one environment".to_string()),
                )
                .into());
            }
        }
    }
    Ok(())
}

/// Each `promote_from` names another environment (an alias stands for its environment),
/// and following them never comes back to where it started: a commit must be deployed
/// somewhere first. Declared sections and environments are in the same order.
fn resolve_promotions(
    environments: &mut [Environment],
    sections: &indexmap::IndexMap<String, config::EnvironmentSection>,
    shown: &str,
) -> anyhow::Result<()> {
    let known = || {
        environments
            .iter()
            .map(|env| env.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut resolved = Vec::new();
    for (name, section) in sections {
        let Some(source) = &section.promote_from else {
            continue;
        };
        let key = format!("[environments.{name}] promote_from");
        let Some(found) = environments.iter().find(|env| env.matches(source)) else {
            return Err(TfenvError::config(
                format!(
                    "`{shown}`: {key} = `{}` is not an environment (known: {})",
                    source.escape_default(),
                    known()
                ),
                Some(format!(
                    "name the environment whose successful deploy of a commit lets `{name}` deploy it (e.g. `staging`), or remove promote_from"
                )),
            )
            .into());
        };
        if &found.name == name {
            return Err(TfenvError::config(
                format!("`{shown}`: {key} names `{name}` itself"),
                Some(format!(
                    "name the environment a commit is deployed to before `{name}` (e.g. `staging`), or remove promote_from"
                )),
            )
            .into());
        }
        resolved.push((name.clone(), found.name.clone()));
    }
    for (name, source) in resolved {
        if let Some(env) = environments.iter_mut().find(|env| env.name == name) {
            env.promote_from = Some(source);
        }
    }
    for env in environments.iter() {
        let mut chain = vec![env.name.as_str()];
        let mut at = env;
        while let Some(source) = &at.promote_from {
            let Some(next) = environments.iter().find(|e| &e.name == source) else {
                break;
            };
            chain.push(&next.name);
            if next.name == env.name {
                return Err(TfenvError::config(
                    format!(
                        "`{shown}`: promote_from goes round in a circle: {}",
                        chain.join(" → ")
                    ),
                    Some(
                        "a commit must be deployed somewhere first: remove promote_from from one of them"
                            .to_string(),
                    ),
                )
                .into());
            }
            // A circle that does not pass through `env` is found from one of its members.
            if chain.len() > environments.len() {
                break;
            }
            at = next;
        }
    }
    Ok(())
}

/// Discovers environments in `dir` with the project root as the Terraform root.
fn discover(dir: &Path) -> anyhow::Result<Discovery> {
    discover_with_root(dir, dir, false)
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// The path with symlinks resolved the way the OS would, for the part that exists (the
/// rest appended lexically): how terraform sees a path relative to its root.
pub fn physical(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            let mut out = real;
            out.extend(rest.iter().rev());
            return normalize(&out);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return normalize(path),
        }
    }
}

/// Removes `.` and resolves `..` lexically, so paths print the way users wrote them.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests;
