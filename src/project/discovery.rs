//! Discovery: the environments of a project that tfenv.toml does not declare, read from
//! the layouts teams use (DESIGN.md §2). The naming variants are data (`NAMINGS`,
//! `ENV_FOLDERS`); a file that looks like an environment's but fits no layout becomes a
//! `Note`, never silently dropped, and two files naming one environment are an error.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::{Environment, Layout, Tier, display_path, hcl, validate_name};
use crate::error::TfenvError;

/// What a file is to the environment it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Backend,
    VarFile,
}

/// One way a file names an environment: `<folder>/<prefix><env><suffix>`.
struct Naming {
    layout: Layout,
    /// Relative to the project root; "" for the root itself.
    folder: &'static str,
    prefix: &'static str,
    suffix: &'static str,
    role: Role,
    /// A file named so makes an environment by itself; otherwise it only joins the
    /// environment another file of its layout makes.
    defines: bool,
}

const fn naming(
    layout: Layout,
    folder: &'static str,
    prefix: &'static str,
    suffix: &'static str,
    role: Role,
    defines: bool,
) -> Naming {
    Naming {
        layout,
        folder,
        prefix,
        suffix,
        role,
        defines,
    }
}

/// The file layouts, one row per naming variant; the first naming that fits a file
/// takes it.
const NAMINGS: [Naming; 9] = [
    naming(
        Layout::EnvironmentsFiles,
        "environments",
        "",
        ".backend.conf",
        Role::Backend,
        true,
    ),
    naming(
        Layout::EnvironmentsFiles,
        "environments",
        "",
        ".backend.hcl",
        Role::Backend,
        true,
    ),
    naming(
        Layout::EnvironmentsFiles,
        "environments",
        "",
        ".tfbackend",
        Role::Backend,
        true,
    ),
    naming(
        Layout::EnvironmentsFiles,
        "environments",
        "",
        ".tfvars",
        Role::VarFile,
        false,
    ),
    naming(
        Layout::EnvironmentsFiles,
        "environments",
        "",
        ".tfvars.json",
        Role::VarFile,
        false,
    ),
    naming(
        Layout::SuffixFiles,
        "",
        "backend-",
        ".tfbackend",
        Role::Backend,
        true,
    ),
    naming(
        Layout::SuffixFiles,
        "",
        "terraform.tfvars.",
        "",
        Role::VarFile,
        true,
    ),
    naming(Layout::SuffixFiles, "", "", ".tfvars", Role::VarFile, false),
    naming(
        Layout::SuffixFiles,
        "",
        "",
        ".tfvars.json",
        Role::VarFile,
        false,
    ),
];

/// The layouts made of files named after the environment.
const FILE_LAYOUTS: [Layout; 2] = [Layout::EnvironmentsFiles, Layout::SuffixFiles];

/// Folders whose subfolders holding `.tf` files are one environment each, its root module.
pub const ENV_FOLDERS: [&str; 3] = ["environments", "envs", "env"];

/// The backend config inside an environment's folder (the backend block may also be
/// complete inline, with none of these).
const FOLDER_BACKEND_FILES: [&str; 3] = ["backend.conf", "backend.hcl", "backend.tfbackend"];

/// Files that look like an environment's wherever they sit in these folders, once no
/// naming took them: `prod.backend.conf` at the root, `envs/dev.tfvars`.
const LOOKALIKE_FOLDERS: [&str; 4] = ["", "environments", "envs", "env"];
const LOOKALIKE_SUFFIXES: [(&str, Role); 5] = [
    (".backend.conf", Role::Backend),
    (".backend.hcl", Role::Backend),
    (".tfbackend", Role::Backend),
    (".tfvars", Role::VarFile),
    (".tfvars.json", Role::VarFile),
];

/// Folders never searched for root modules that fit no layout.
const NOT_ROOT_MODULES: [&str; 4] = ["modules", "state", "examples", "test"];

/// A file or folder that looks like an environment's but that no environment uses, or
/// an environment missing a file its layout expects. Shown by `tfenv envs`; when no
/// environment is found at all, these are the near misses the error names.
#[derive(Clone, Debug)]
pub struct Note {
    /// `unmatched-var-file`, `unmatched-backend-config`, `unmatched-folder`,
    /// `unmatched-root-module`, `missing-var-file`, `invalid-name`, `backend-as-var-file`,
    /// `hidden-file`, `symlinked-folder`, `not-an-environment` or `state-in-folder`.
    pub code: &'static str,
    pub file: PathBuf,
    /// Paths relative to the project root.
    pub message: String,
    /// The environment tfenv.toml would declare to use it (near misses only).
    declares: Option<Declared>,
}

/// One `[environments.<name>]` section of a suggested tfenv.toml.
#[derive(Clone, Debug, Default, serde::Serialize)]
struct Declared {
    #[serde(skip)]
    name: String,
    tier: Option<Tier>,
    root: Option<String>,
    backend_config: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    var_files: Vec<String>,
}

/// Two files or folders that name the same environment, as the error using it gives.
#[derive(Clone, Debug)]
pub struct Conflict {
    pub env: String,
    /// The key of `[environments.<env>]` that settles it: the one the two compete for.
    pub key: Key,
    pub message: String,
    pub hint: String,
}

/// A key of `[environments.<env>]` that discovery would otherwise fill in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Root,
    BackendConfig,
    VarFiles,
}

impl Conflict {
    pub fn error(&self) -> TfenvError {
        TfenvError::config(self.message.clone(), Some(self.hint.clone()))
    }
}

/// What discovery found in a folder.
#[derive(Debug, Default)]
pub struct Discovery {
    pub environments: Vec<Environment>,
    pub notes: Vec<Note>,
    /// Only when lenient (tfenv.toml declares the environments): each is an error for a
    /// declared environment that takes a file from discovery.
    pub conflicts: Vec<Conflict>,
}

/// Terraform loads these from its working directory by itself: passing one again with
/// `-var-file` would load it twice, the second time after the environment's own files.
fn is_auto_loaded(file_name: &str) -> bool {
    matches!(file_name, "terraform.tfvars" | "terraform.tfvars.json")
        || file_name.ends_with(".auto.tfvars")
        || file_name.ends_with(".auto.tfvars.json")
}

/// The var files terraform loads by itself from `root`, in its order:
/// `terraform.tfvars`, `terraform.tfvars.json`, then `*.auto.tfvars[.json]` by name.
pub fn auto_var_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["terraform.tfvars", "terraform.tfvars.json"]
        .iter()
        .map(|name| root.join(name))
        .filter(|path| path.is_file())
        .collect();
    let mut auto: Vec<PathBuf> = entries(root)
        .into_iter()
        .filter(|path| {
            let name = file_name(path);
            (name.ends_with(".auto.tfvars") || name.ends_with(".auto.tfvars.json"))
                && path.is_file()
        })
        .collect();
    auto.sort();
    files.extend(auto);
    files
}

/// Discovers environments from the layouts under `dir`, `tf_root` being the Terraform
/// root of the file layouts. Two files or layouts naming the same environment is an
/// error: tfenv cannot guess which one the user meant.
///
/// A file or folder whose name is not a valid environment name is a note, never a stop.
/// An env folder that cannot be read is that environment's `config_problem`; an
/// unreadable `environments/`, `envs/` or `env/` is an error naming it.
///
/// `lenient`: tfenv.toml declares the environments, so a conflict is kept for the
/// declared environment it concerns (`Discovery::conflicts`) rather than stopping the
/// whole project.
pub fn discover_with_root(dir: &Path, tf_root: &Path, lenient: bool) -> anyhow::Result<Discovery> {
    let state_dir = dir.join("state");
    let new_env = |name: &str, layout: Layout, root: &Path| Environment {
        name: name.to_string(),
        tier: Tier::default_for(name),
        aliases: Vec::new(),
        layout,
        root: root.to_path_buf(),
        backend_config: None,
        var_files: Vec::new(),
        workspace: None,
        backend_type: None,
        artifacts_dir: state_dir.join(name),
        backup: false,
        backup_keep: None,
        backup_max_age: None,
        policy: None,
        promote_from: None,
        config_problem: None,
    };
    let show = |path: &Path| display_path(path, dir);
    let mut found = Discovery::default();
    // Each candidate with the file or folder that made it, for "defined twice".
    let mut candidates: Vec<(Environment, PathBuf)> = Vec::new();
    let conflict = |found: &mut Discovery, conflict: Conflict| -> anyhow::Result<()> {
        if !lenient {
            return Err(conflict.error().into());
        }
        found.conflicts.push(conflict);
        Ok(())
    };

    // The file layouts: group each layout's files by the environment they name.
    let mut taken: HashSet<PathBuf> = HashSet::new();
    let mut groups: BTreeMap<(&'static str, String), Vec<(&Naming, PathBuf)>> = BTreeMap::new();
    for naming in &NAMINGS {
        for path in entries(&dir.join(naming.folder)) {
            let name = file_name(&path);
            if path.is_dir() || is_leftover(name) || is_auto_loaded(name) || taken.contains(&path) {
                continue;
            }
            let Some(env) = name
                .strip_prefix(naming.prefix)
                .and_then(|rest| rest.strip_suffix(naming.suffix))
                .filter(|env| !env.is_empty())
            else {
                continue;
            };
            taken.insert(path.clone());
            if naming.role == Role::VarFile
                && let Some(real) = backend_lookalike(env).filter(|real| !real.is_empty())
            {
                let rename = dir
                    .join(naming.folder)
                    .join(format!("{}{real}.tfbackend", backend_prefix(naming.layout)));
                found
                    .notes
                    .push(backend_as_var_file(dir, &path, real, &rename));
                continue;
            }
            groups
                .entry((naming.layout.as_str(), env.to_string()))
                .or_default()
                .push((naming, path));
        }
    }
    for ((_, name), files) in &groups {
        let layout = files[0].0.layout;
        let of_role = |role: Role| -> Vec<&PathBuf> {
            files
                .iter()
                .filter(|(naming, _)| naming.role == role)
                .map(|(_, path)| path)
                .collect()
        };
        let (backends, vars) = (of_role(Role::Backend), of_role(Role::VarFile));
        if !files.iter().any(|(naming, _)| naming.defines) {
            for var in vars {
                found.notes.push(Note {
                    code: "unmatched-var-file",
                    file: var.clone(),
                    message: format!(
                        "`{}` is not used: no {} beside it makes `{name}` an environment",
                        show(var),
                        alternatives(dir, &[layout], Role::Backend, true, name)
                    ),
                    declares: declared(name, |d| d.var_files.push(show(var))),
                });
            }
            continue;
        }
        let source = files[0].1.clone();
        let Some(name) = discovered_name(name, &source, dir, &mut found.notes) else {
            continue;
        };
        if backends.len() > 1 {
            conflict(
                &mut found,
                two_files(dir, name, &backends, Key::BackendConfig),
            )?;
            continue;
        }
        if vars.len() > 1 {
            conflict(&mut found, two_files(dir, name, &vars, Key::VarFiles))?;
            continue;
        }
        let mut env = new_env(name, layout, tf_root);
        env.backend_config = backends.first().map(|p| (*p).clone());
        env.var_files = vars.iter().map(|p| (*p).clone()).collect();
        if let (Some(backend), true) = (&env.backend_config, vars.is_empty()) {
            found.notes.push(Note {
                code: "missing-var-file",
                file: backend.clone(),
                message: format!(
                    "`{}` has no var file beside it ({}): `{name}` runs with no var file of its own",
                    show(backend),
                    alternatives(dir, &[layout], Role::VarFile, false, name)
                ),
                declares: None,
            });
        }
        candidates.push((env, source));
    }

    // One folder per environment, its root module.
    let mut env_folders = Vec::new();
    for parent in ENV_FOLDERS {
        env_folders.extend(read_entries(&dir.join(parent), dir)?);
    }
    let is_symlink = |path: &Path| {
        path.symlink_metadata()
            .is_ok_and(|meta| meta.file_type().is_symlink())
    };
    for folder in &env_folders {
        let folder = folder.clone();
        let folder_name = file_name(&folder);
        if !folder.is_dir() || is_leftover(folder_name) {
            continue;
        }
        // `ln -s dev envs/prod`: one folder, one backend block, one state for both.
        if is_symlink(&folder)
            && let Ok(target) = folder.canonicalize()
            && let Some(sibling) = env_folders.iter().find(|other| {
                **other != folder
                    && !is_symlink(other)
                    && other.canonicalize().is_ok_and(|o| o == target)
            })
        {
            found.notes.push(Note {
                code: "symlinked-folder",
                file: folder.clone(),
                message: format!(
                    "`{}/` is a symlink to `{}/`, not an environment: one folder would give both environments one state; copy the folder (with its own backend config), or declare `{folder_name}` in tfenv.toml with its own backend_config or workspace",
                    show(&folder),
                    show(sibling)
                ),
                declares: None,
            });
            continue;
        }
        // An unreadable folder is that environment's problem, never "no .tf files".
        if let Err(err) = std::fs::read_dir(&folder)
            && err.kind() == std::io::ErrorKind::PermissionDenied
        {
            let Some(name) = discovered_name(folder_name, &folder, dir, &mut found.notes) else {
                continue;
            };
            let mut env = new_env(name, Layout::FolderPerEnv, &folder);
            env.config_problem = Some(super::ConfigProblem {
                message: format!(
                    "environment `{name}`: cannot read `{}/`: permission denied",
                    show(&folder)
                ),
                hint: "make the folder readable by this user (`chmod`/`chown`), or move it out of the way".to_string(),
            });
            candidates.push((env, folder));
            continue;
        }
        let backends = folder_backend_files(&folder);
        if !has_tf_files(&folder) {
            // Per-environment files in a folder, the root module elsewhere.
            let vars = folder_var_files(&folder, false);
            if backends.is_empty() && vars.is_empty() {
                continue;
            }
            found.notes.push(Note {
                code: "unmatched-folder",
                file: folder.clone(),
                message: format!(
                    "`{}/` holds an environment's files but no `.tf` files: an environment's folder is its root module",
                    show(&folder)
                ),
                declares: declared(folder_name, |d| {
                    d.backend_config = backends.first().map(|p| show(p));
                    d.var_files = vars.iter().map(|p| show(p)).collect();
                }),
            });
            continue;
        }
        let Some(name) = discovered_name(folder_name, &folder, dir, &mut found.notes) else {
            continue;
        };
        if backends.len() > 1 {
            let backends: Vec<&PathBuf> = backends.iter().collect();
            conflict(
                &mut found,
                two_files(dir, name, &backends, Key::BackendConfig),
            )?;
            continue;
        }
        // A backend config named like a var file is never passed with -var-file.
        let (misnamed, var_files): (Vec<PathBuf>, Vec<PathBuf>) = folder_var_files(&folder, true)
            .into_iter()
            .partition(|path| {
                var_stem(file_name(path)).is_some_and(|stem| backend_lookalike(stem).is_some())
            });
        for path in &misnamed {
            found.notes.push(backend_as_var_file(
                dir,
                path,
                name,
                &folder.join("backend.tfbackend"),
            ));
        }
        let no_block = matches!(hcl::read_backend_block(&folder, dir), Ok(None));
        if no_block
            && backends.is_empty()
            && folder_var_files(&folder, false).len() == misnamed.len()
        {
            found.notes.push(Note {
                code: "not-an-environment",
                file: folder.clone(),
                message: format!(
                    "`{}/` is not an environment: no backend and no var files (shared code? move it out of {}, or give it a backend block)",
                    show(&folder),
                    ENV_FOLDERS.map(|f| format!("`{f}/`")).join(", ")
                ),
                declares: None,
            });
            continue;
        }
        if no_block {
            found.notes.push(Note {
                code: "state-in-folder",
                file: folder.clone(),
                message: format!(
                    "`{}/` has no backend block: `{name}` keeps terraform's default local state `{}` inside the repository, which tfenv does not add to .gitignore; add a backend block (or make sure git ignores it)",
                    show(&folder),
                    show(&folder.join("terraform.tfstate"))
                ),
                declares: None,
            });
        }
        let mut env = new_env(name, Layout::FolderPerEnv, &folder);
        env.backend_config = backends.into_iter().next();
        // Terraform loads the folder's auto-loaded files itself (it runs there).
        env.var_files = var_files;
        candidates.push((env, folder));
    }

    // Files that look like an environment's where no naming takes them.
    for folder in LOOKALIKE_FOLDERS {
        for path in entries(&dir.join(folder)) {
            let name = file_name(&path);
            if path.is_dir() || taken.contains(&path) || is_auto_loaded(name) {
                continue;
            }
            if is_leftover(name) {
                // `.dev.backend.hcl`: hidden, so never used, but said (not editor locks).
                let hidden = name.starts_with('.')
                    && !name.starts_with(".#")
                    && !is_leftover(name.trim_start_matches('.'))
                    && LOOKALIKE_SUFFIXES.iter().any(|(s, _)| name.ends_with(s));
                if hidden {
                    found.notes.push(Note {
                        code: "hidden-file",
                        file: path.clone(),
                        message: format!(
                            "`{}` is a hidden file: tfenv ignores files whose name starts with `.`; rename it if it is meant as an environment's file",
                            show(&path)
                        ),
                        declares: None,
                    });
                }
                continue;
            }
            let Some((env, role)) = LOOKALIKE_SUFFIXES.iter().find_map(|(suffix, role)| {
                name.strip_suffix(suffix)
                    .filter(|env| !env.is_empty())
                    .map(|env| (env, *role))
            }) else {
                continue;
            };
            if role == Role::VarFile
                && let Some(real) = backend_lookalike(env).filter(|real| !real.is_empty())
            {
                let rename = dir.join(folder).join(format!("{real}.tfbackend"));
                found
                    .notes
                    .push(backend_as_var_file(dir, &path, real, &rename));
                continue;
            }
            let (code, what, key) = match role {
                Role::Backend => (
                    "unmatched-backend-config",
                    "backend config",
                    "backend_config",
                ),
                Role::VarFile => ("unmatched-var-file", "var file", "var_files"),
            };
            found.notes.push(Note {
                code,
                file: path.clone(),
                message: format!(
                    "`{}` looks like the {what} of `{env}` but fits no layout: tfenv looks for {}",
                    show(&path),
                    alternatives(dir, &FILE_LAYOUTS, role, false, env)
                ),
                declares: declared(env, |d| match key {
                    "backend_config" => d.backend_config = Some(show(&path)),
                    _ => d.var_files.push(show(&path)),
                }),
            });
        }
    }

    // Each environment once, whichever layout names it.
    let mut by_name: BTreeMap<String, (Environment, PathBuf)> = BTreeMap::new();
    for (env, source) in candidates {
        if let Some((existing, existing_source)) = by_name.get(&env.name) {
            let c = Conflict {
                env: env.name.clone(),
                key: Key::Root,
                message: format!(
                    "environment `{}` is defined twice: by `{}` ({}) and by `{}` ({})",
                    env.name,
                    show(existing_source),
                    existing.layout.as_str(),
                    show(&source),
                    env.layout.as_str()
                ),
                hint: format!(
                    "remove one of them, or declare `{}` in tfenv.toml with its root (and backend_config, var_files if it has them)",
                    env.name
                ),
            };
            conflict(&mut found, c)?;
            by_name.remove(&env.name);
            continue;
        }
        by_name.insert(env.name.clone(), (env, source));
    }
    found.environments = by_name.into_values().map(|(env, _)| env).collect();
    found.notes.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(found)
}

/// The near misses in `dir` when it has no environment: the notes discovery made, and
/// folders that are root modules of their own (a backend block, a backend config or var
/// files) outside the folders tfenv searches (`stacks/dev/`, `live/prod/`).
pub fn near_misses(dir: &Path, notes: Vec<Note>) -> Vec<Note> {
    let mut misses = notes;
    let searchable = |path: &Path| {
        let name = file_name(path);
        path.is_dir() && !name.starts_with('.') && !NOT_ROOT_MODULES.contains(&name)
    };
    let mut folders = Vec::new();
    for first in entries(dir).into_iter().filter(|p| searchable(p)) {
        if ENV_FOLDERS.contains(&file_name(&first)) {
            continue;
        }
        folders.extend(entries(&first).into_iter().filter(|p| searchable(p)));
        folders.push(first);
    }
    folders.sort();
    for folder in folders {
        if !has_tf_files(&folder) {
            continue;
        }
        let backends = folder_backend_files(&folder);
        let vars = folder_var_files(&folder, true);
        let own_backend = matches!(hcl::read_backend_block(&folder, dir), Ok(Some(_)));
        if !own_backend && backends.is_empty() && vars.is_empty() {
            continue;
        }
        let show = |path: &Path| display_path(path, dir);
        misses.push(Note {
            code: "unmatched-root-module",
            file: folder.clone(),
            message: format!(
                "`{}/` looks like an environment's root module, outside {}",
                show(&folder),
                ENV_FOLDERS.map(|f| format!("`{f}/`")).join(", ")
            ),
            declares: declared(file_name(&folder), |d| {
                d.root = Some(show(&folder));
                d.backend_config = backends.first().map(|p| show(p));
                d.var_files = vars.iter().map(|p| show(p)).collect();
            }),
        });
    }
    misses
}

/// The tfenv.toml that declares the environments the near misses suggest, ready to save
/// next to them; `None` when none of them names a valid environment. A second value for
/// the same key is left out (the near miss that suggests it is listed with the error).
pub fn suggested_config(misses: &[Note]) -> Option<String> {
    let mut environments: indexmap::IndexMap<String, Declared> = indexmap::IndexMap::new();
    for declared in misses.iter().filter_map(|note| note.declares.as_ref()) {
        let section = environments
            .entry(declared.name.clone())
            .or_insert_with(|| Declared {
                tier: Some(Tier::default_for(&declared.name)),
                ..Declared::default()
            });
        section.root = section.root.take().or(declared.root.clone());
        section.backend_config = section
            .backend_config
            .take()
            .or(declared.backend_config.clone());
        section.var_files.extend(declared.var_files.iter().cloned());
    }
    if environments.is_empty() {
        return None;
    }
    #[derive(serde::Serialize)]
    struct Suggested {
        environments: indexmap::IndexMap<String, Declared>,
    }
    toml::to_string(&Suggested { environments }).ok()
}

/// Two files of environment `env` for the one `key` of `[environments.<env>]` (its
/// backend config, or its var file): the user says which, tfenv never picks.
fn two_files(dir: &Path, env: &str, paths: &[&PathBuf], key: Key) -> Conflict {
    let (what, settle) = match key {
        Key::BackendConfig => ("backend configs", "the backend_config to use"),
        Key::Root | Key::VarFiles => (
            "var files",
            "var_files (in the order terraform should read them)",
        ),
    };
    let files: Vec<String> = paths
        .iter()
        .map(|p| format!("`{}`", display_path(p, dir)))
        .collect();
    Conflict {
        env: env.to_string(),
        key,
        message: format!(
            "environment `{env}` has two {what}: {}",
            files.join(" and ")
        ),
        hint: format!(
            "remove or rename the one that is not meant, or declare `{env}` in tfenv.toml with {settle}"
        ),
    }
}

/// A `Declared` section for `name`, when it is a valid environment name.
fn declared(name: &str, fill: impl FnOnce(&mut Declared)) -> Option<Declared> {
    validate_name(name).ok()?;
    let mut declared = Declared {
        name: name.to_string(),
        ..Declared::default()
    };
    fill(&mut declared);
    Some(declared)
}

/// The file names `layouts` give `env` for `role`, for a message: "`a`, `b` or `c`".
/// `defining`: only those that make an environment by themselves.
fn alternatives(dir: &Path, layouts: &[Layout], role: Role, defining: bool, env: &str) -> String {
    let names: Vec<String> = NAMINGS
        .iter()
        .filter(|n| layouts.contains(&n.layout) && n.role == role && (n.defines || !defining))
        .map(|n| {
            let file = format!("{}{env}{}", n.prefix, n.suffix);
            format!("`{}`", display_path(&dir.join(n.folder).join(file), dir))
        })
        .collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The environment a discovered file or folder names; `None` when the name is not a
/// valid environment name: a note (each one said, none stopping the others).
fn discovered_name<'a>(
    name: &'a str,
    source: &Path,
    base: &Path,
    notes: &mut Vec<Note>,
) -> Option<&'a str> {
    if validate_name(name).is_ok() {
        return Some(name);
    }
    let (what, shown) = if source.is_dir() {
        ("folder", format!("{}/", display_path(source, base)))
    } else {
        ("file", display_path(source, base))
    };
    let valid_chars = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || (i > 0 && (c == '_' || c == '-'))
    });
    let fault = if name.len() > 63 && valid_chars {
        format!("`{}` is longer than 63 characters", shown_name(name))
    } else {
        format!("`{}` is not a valid environment name", shown_name(name))
    };
    notes.push(Note {
        code: "invalid-name",
        file: source.to_path_buf(),
        message: format!(
            "`{shown}` is not used: {fault} (names are 1-63 characters: lowercase letters, digits, `-` and `_`, starting with a letter or digit); rename the {what}, or declare the environment in tfenv.toml"
        ),
        declares: None,
    });
    None
}

/// A name for a message: unicode as itself, control characters escaped.
fn shown_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The environment a var file's stem names when it looks like a backend config
/// (`qa.backend`, `backend-dev`, `backend`): "" for a bare `backend`.
fn backend_lookalike(stem: &str) -> Option<&str> {
    if stem == "backend" {
        return Some("");
    }
    stem.strip_suffix(".backend")
        .or_else(|| stem.strip_prefix("backend-"))
        .or_else(|| stem.strip_prefix("backend_"))
        .filter(|env| !env.is_empty())
}

/// A var file's name without `.tfvars` / `.tfvars.json`.
fn var_stem(name: &str) -> Option<&str> {
    name.strip_suffix(".tfvars.json")
        .or_else(|| name.strip_suffix(".tfvars"))
}

/// The prefix of a layout's backend config names.
fn backend_prefix(layout: Layout) -> &'static str {
    match layout {
        Layout::SuffixFiles => "backend-",
        _ => "",
    }
}

/// A backend config named like a var file: said, never passed with `-var-file` (its
/// settings would not reach the backend and the state would land elsewhere).
fn backend_as_var_file(dir: &Path, path: &Path, env: &str, rename: &Path) -> Note {
    Note {
        code: "backend-as-var-file",
        file: path.to_path_buf(),
        message: format!(
            "`{}` looks like the backend config of `{env}`; rename it to `{}` (a `.tfvars` file is a var file to terraform, so it is not used)",
            display_path(path, dir),
            display_path(rename, dir)
        ),
        declares: None,
    }
}

/// The backend config files of an environment's folder, in `FOLDER_BACKEND_FILES` order.
fn folder_backend_files(folder: &Path) -> Vec<PathBuf> {
    FOLDER_BACKEND_FILES
        .iter()
        .map(|name| folder.join(name))
        .filter(|path| super::FileKind::of(path).exists())
        .collect()
}

/// The var files of a folder (`*.tfvars`, `*.tfvars.json`) by name; `except_auto`:
/// without those terraform loads itself when it runs there.
fn folder_var_files(folder: &Path, except_auto: bool) -> Vec<PathBuf> {
    entries(folder)
        .into_iter()
        .filter(|path| {
            let name = file_name(path);
            (name.ends_with(".tfvars") || name.ends_with(".tfvars.json"))
                && !path.is_dir()
                && !is_leftover(name)
                && !(except_auto && is_auto_loaded(name))
        })
        .collect()
}

/// Hidden files (editor locks like `.#dev.backend.conf`) and backup copies
/// (`*.bak`, `*~`, …) are never environments.
fn is_leftover(file_name: &str) -> bool {
    const LEFTOVER_SUFFIXES: [&str; 9] = [
        ".bak", ".backup", ".orig", ".swp", ".tmp", ".old", ".example", ".sample", "~",
    ];
    file_name.starts_with('.') || LEFTOVER_SUFFIXES.iter().any(|s| file_name.ends_with(s))
}

fn has_tf_files(dir: &Path) -> bool {
    hcl::tf_files(dir).is_ok_and(|files| !files.is_empty())
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
}

/// The entries of `dir`, sorted; none when it is not a readable folder.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect::<Vec<_>>();
    entries.sort();
    entries
}

/// The entries of `dir`, sorted; none when it does not exist or is not a folder, an
/// error naming it when it cannot be read (never taken for an empty folder).
fn read_entries(dir: &Path, base: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let unreadable = |err: std::io::Error| -> anyhow::Error {
        let why = match err.kind() {
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => err.to_string(),
        };
        TfenvError::config(
            format!("cannot read `{}/`: {why}", display_path(dir, base)),
            Some("make the folder readable by this user (`chmod`/`chown`), or move it out of the way".to_string()),
        )
        .into()
    };
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Vec::new());
        }
        Err(err) => return Err(unreadable(err)),
    };
    let mut entries = Vec::new();
    for entry in listing {
        entries.push(entry.map_err(unreadable)?.path());
    }
    entries.sort();
    Ok(entries)
}
