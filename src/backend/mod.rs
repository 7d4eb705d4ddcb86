//! Backends: for each type, where an environment's state lives (from the root module's
//! `backend` block merged with the environment's backend config file) and how to read
//! its lock without terraform. May use: process, project, lock_info, error.

pub(crate) mod aws;
mod azurerm;
pub mod bootstrap;
mod cloud_cli;
mod gcs;
mod local;
pub mod lock;
pub mod store;
mod s3;
mod s3_store;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::error::TfenvError;
use crate::process::Runner;
use crate::project::hcl::{self, BackendBlock, Settings};
use crate::project::{Environment, Project};
use lock::StateLock;

/// A backend type. The four tfenv knows where state and locks live; any other is
/// carried by name (terraform still runs it; tfenv cannot read its lock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Local,
    S3,
    AzureRm,
    Gcs,
    Other(String),
}

impl BackendKind {
    /// The type as terraform names it in `backend "<type>"`.
    pub fn parse(name: &str) -> BackendKind {
        match name {
            "local" => BackendKind::Local,
            "s3" => BackendKind::S3,
            "azurerm" => BackendKind::AzureRm,
            "gcs" => BackendKind::Gcs,
            other => BackendKind::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            BackendKind::Local => "local",
            BackendKind::S3 => "s3",
            BackendKind::AzureRm => "azurerm",
            BackendKind::Gcs => "gcs",
            BackendKind::Other(name) => name,
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As terraform's name: `"s3"`, `"consul"`.
impl serde::Serialize for BackendKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Where an environment's state lives.
#[derive(Clone, Debug)]
pub struct Backend {
    pub kind: BackendKind,
    /// The root module has no backend block: terraform uses local defaults.
    pub implicit: bool,
    /// Inline block settings overlaid with the backend config file. May hold secrets:
    /// never print it.
    pub settings: Settings,
    pub workspace: Option<String>,
}

impl Backend {
    /// Where the state is, for people: a path, `s3://bucket/key`, …
    pub fn location(&self, env: &Environment, project: &Project) -> String {
        match &self.kind {
            BackendKind::Local => project.show(&local::state_file(self, &env.root)),
            BackendKind::Other(name) => format!("({name} backend)"),
            _ => self.remote_location().unwrap_or_default(),
        }
    }

    /// The state file of a local backend, which tfenv can read without terraform.
    pub fn local_state_file(&self, env: &Environment) -> Option<PathBuf> {
        (self.kind == BackendKind::Local).then(|| local::state_file(self, &env.root))
    }

    /// A key equal for two environments exactly when they would share one state.
    pub fn identity(&self, env: &Environment) -> Option<String> {
        match &self.kind {
            BackendKind::Local => Some(format!(
                "local:{}",
                local::state_file(self, &env.root).display()
            )),
            _ => Some(format!("{}:{}", self.kind, self.remote_location()?)),
        }
    }

    /// Where a remote state is (`s3://…`, `azurerm://…`, `gs://…`); `None` for a local
    /// state and for backend types tfenv does not know.
    fn remote_location(&self) -> Option<String> {
        match &self.kind {
            BackendKind::S3 => Some(s3::location(self)),
            BackendKind::AzureRm => Some(azurerm::location(self)),
            BackendKind::Gcs => Some(gcs::location(self)),
            BackendKind::Local | BackendKind::Other(_) => None,
        }
    }

    /// Reads the state lock where this backend keeps it, without `terraform init`.
    pub async fn read_lock(
        &self,
        env: &Environment,
        runner: &dyn Runner,
    ) -> anyhow::Result<StateLock> {
        match &self.kind {
            BackendKind::Local => local::read_lock(&local::state_file(self, &env.root)),
            BackendKind::S3 => s3::read_lock(self).await,
            BackendKind::AzureRm => azurerm::read_lock(self, runner).await,
            BackendKind::Gcs => gcs::read_lock(self, runner).await,
            BackendKind::Other(name) => Ok(StateLock::unsupported(name)),
        }
    }

    /// Whether tfenv reads this backend's state itself (`read_remote_state`), without
    /// terraform and whether or not the environment is initialized: s3, through the AWS
    /// SDK.
    pub fn reads_remote_state(&self) -> bool {
        self.kind == BackendKind::S3
    }

    /// Reads the state straight from where this backend keeps it (see
    /// `reads_remote_state`), streaming it through `parse` (the state header reader) on
    /// a blocking thread: constant memory. `Ok(None)` when there is no state object.
    pub async fn read_remote_state<T: Send + 'static>(
        &self,
        parse: StateParser<T>,
    ) -> anyhow::Result<Option<T>> {
        match &self.kind {
            BackendKind::S3 => s3::read_state(self, parse).await,
            other => anyhow::bail!("tfenv does not read the state of a {other} backend itself"),
        }
    }

    /// What reading this backend's state means, for a message.
    pub fn state_read(&self, env: &Environment) -> String {
        format!(
            "reading the state of `{}` ({} backend, `{}`)",
            env.name,
            self.kind,
            self.remote_location().unwrap_or_default()
        )
    }

    /// The process holding the OS lock of a local state (terraform, while it runs);
    /// `None` for other backends, or when no process holds it or it cannot be probed.
    pub fn local_lock_pid(&self, env: &Environment) -> Option<i32> {
        let file = self.local_state_file(env)?;
        local::os_lock_holder(&file).ok().flatten()
    }

    /// Removes what a dead run left of a local state's lock (`.<state>.lock.info` without
    /// the OS lock); `Ok(None)` when there is nothing to remove. Other backends leave no
    /// leftover tfenv could remove: their stale locks go through `force-unlock`.
    pub fn clear_stale_lock(&self, env: &Environment) -> anyhow::Result<Option<PathBuf>> {
        match &self.kind {
            BackendKind::Local => local::clear_stale_lock(&local::state_file(self, &env.root)),
            _ => Ok(None),
        }
    }

    /// What reading this backend's lock means, for a message: the environment, the
    /// backend type and, for remote ones, where the state is.
    fn lock_read(&self, env: &Environment) -> String {
        match self.remote_location() {
            Some(location) => format!(
                "reading the state lock of `{}` ({} backend, `{location}`)",
                env.name, self.kind
            ),
            None => format!(
                "reading the state lock of `{}` ({} backend)",
                env.name, self.kind
            ),
        }
    }

    /// A setting as text, when it is set to a string, number or bool.
    pub fn setting(&self, name: &str) -> Option<String> {
        setting_text(self.settings.get(name)?)
    }

    /// The workspace name terraform uses for this environment.
    pub fn workspace_name(&self) -> &str {
        self.workspace.as_deref().unwrap_or("default")
    }
}

/// A setting's value as text, when it is a string, number or bool (also for settings
/// of nested blocks such as `endpoints { … }`).
pub(crate) fn setting_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses a state streamed from a backend (the state header reader): `Ok(None)` for an
/// empty state.
pub type StateParser<T> =
    Box<dyn FnOnce(Box<dyn std::io::Read + Send>) -> anyhow::Result<Option<T>> + Send>;

/// Runs `read` with a deadline. When it passes, `read` is dropped — which kills the
/// processes it started (the runner kills a child's process group when its run is
/// dropped) — and the error is `TfenvError::Unreachable`, saying what did not answer.
pub async fn within<T>(
    timeout: Duration,
    what: impl FnOnce() -> String,
    read: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(unreachable(what(), timeout)),
    }
}

fn unreachable(what: String, timeout: Duration) -> anyhow::Error {
    TfenvError::Unreachable {
        message: format!(
            "{what} did not answer within {} (--timeout); tfenv stopped it",
            humantime::format_duration(timeout)
        ),
        hint: Some(
            "check the network and the backend's credentials, or allow longer with --timeout"
                .to_string(),
        ),
    }
    .into()
}

/// The error is a read that did not answer within its deadline (see `within`).
pub fn is_unreachable(err: &anyhow::Error) -> bool {
    carries(err, |e| matches!(e, TfenvError::Unreachable { .. }))
}

/// The error is a backend refusing tfenv's credentials, or none found (`TfenvError::Auth`).
pub fn is_auth(err: &anyhow::Error) -> bool {
    carries(err, |e| matches!(e, TfenvError::Auth { .. }))
}

/// The error is a backend refusing a call tfenv's (accepted) credentials may not make
/// (`TfenvError::Permission`).
pub fn is_permission(err: &anyhow::Error) -> bool {
    carries(err, |e| matches!(e, TfenvError::Permission { .. }))
}

/// Some `TfenvError` in the chain of `err` is one `kind` accepts.
fn carries(err: &anyhow::Error, kind: impl Fn(&TfenvError) -> bool) -> bool {
    err.chain()
        .any(|cause| cause.downcast_ref::<TfenvError>().is_some_and(&kind))
}

/// Reads the locks of many environments at once: DynamoDB locks that share a table,
/// endpoint and credentials in one batch request, everything else concurrently. Each
/// read gets `timeout` (see `within`). The results are in the order of `items`.
pub async fn read_locks(
    items: &[(&Environment, &Backend)],
    runner: &dyn Runner,
    timeout: Duration,
) -> Vec<anyhow::Result<StateLock>> {
    use futures_util::StreamExt;
    let mut groups: std::collections::BTreeMap<String, Vec<usize>> =
        std::collections::BTreeMap::new();
    for (i, (_, backend)) in items.iter().enumerate() {
        if let Some(group) = s3::dynamodb_group(backend) {
            groups.entry(group).or_default().push(i);
        }
    }
    let batched: std::collections::HashSet<usize> = groups
        .values()
        .filter(|members| members.len() > 1)
        .flatten()
        .copied()
        .collect();
    let mut results: Vec<Option<anyhow::Result<StateLock>>> = items.iter().map(|_| None).collect();
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);

    let batches = futures_util::stream::iter(groups.values().filter(|m| m.len() > 1).map(
        |members| async move {
            let backends: Vec<&Backend> = members.iter().map(|&i| items[i].1).collect();
            let what = || {
                // Each member's error repeats this: a few names, not all of them.
                const NAMED: usize = 3;
                let names: Vec<&str> = members.iter().map(|&i| items[i].0.name.as_str()).collect();
                let more = match names.len().saturating_sub(NAMED) {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                format!(
                    "reading the state locks of `{}`{more} (s3 backend, DynamoDB table `{}`)",
                    names[..names.len().min(NAMED)].join("`, `"),
                    backends[0].setting("dynamodb_table").unwrap_or_default()
                )
            };
            let read = within(timeout, what, s3::read_dynamodb_batch(&backends)).await;
            (members, read)
        },
    ))
    .buffer_unordered(jobs)
    .collect::<Vec<_>>();
    let singles = futures_util::stream::iter(
        items
            .iter()
            .enumerate()
            .filter(|(i, _)| !batched.contains(i))
            .map(|(i, (env, backend))| async move {
                let read = within(
                    timeout,
                    || backend.lock_read(env),
                    backend.read_lock(env, runner),
                )
                .await;
                (i, read)
            }),
    )
    .buffer_unordered(jobs)
    .collect::<Vec<_>>();
    let (batches, singles) = futures_util::join!(batches, singles);
    for (members, outcome) in batches {
        match outcome {
            Ok(states) => {
                for (&i, state) in members.iter().zip(states) {
                    results[i] = Some(state);
                }
            }
            Err(err) => {
                // Every member gets the error, of the same kind and with its hint.
                let text = format!("{err:#}");
                let hint = crate::error::hint_for(&err).map(str::to_string);
                let unreachable = is_unreachable(&err);
                let auth = is_auth(&err);
                let permission = is_permission(&err);
                for &i in members {
                    let (message, hint) = (text.clone(), hint.clone());
                    results[i] = Some(Err(if unreachable {
                        TfenvError::Unreachable { message, hint }.into()
                    } else if auth {
                        TfenvError::Auth { message, hint }.into()
                    } else if permission {
                        TfenvError::Permission { message, hint }.into()
                    } else if hint.is_some() {
                        TfenvError::Config { message, hint }.into()
                    } else {
                        anyhow::anyhow!("{message}")
                    }));
                }
            }
        }
    }
    for (i, outcome) in singles {
        results[i] = Some(outcome);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("lock not read"))))
        .collect()
}

/// A cloud CLI tfenv reads locks and the store with and bootstrap creates through, or an
/// error saying how to install it.
fn cli_binary(name: &str, what: &str, install: &str) -> anyhow::Result<PathBuf> {
    which::which(name).map_err(|_| {
        TfenvError::config(
            format!("tfenv reaches this backend (its lock, shared ledger, state versions, or creating it with bootstrap) through {what} (`{name}`), and it is not on PATH"),
            Some(format!("install it: {install}")),
        )
        .into()
    })
}

/// The line of a CLI's error output that says what went wrong.
fn first_error_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no error output")
        .to_string()
}

/// The groups of environments whose states are one object (same local file, same bucket
/// and key and workspace): each group of two or more names, sorted. `status` reports each
/// as `shared-state`, `envs` as a problem, and init/plan/deploy refuse such an environment.
pub fn shared_states<'e>(
    resolved: impl IntoIterator<Item = (&'e Environment, Option<&'e Backend>)>,
) -> Vec<Vec<String>> {
    let mut by_identity: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (env, backend) in resolved {
        if let Some(identity) = backend.and_then(|b| b.identity(env)) {
            by_identity
                .entry(identity)
                .or_default()
                .push(env.name.clone());
        }
    }
    by_identity
        .into_values()
        .filter(|names| names.len() > 1)
        .collect()
}

/// Why two environments must not share one state, and what to do: "shares its state
/// with `dev`: …". `others`: the other environments of its group.
pub fn shared_state_message(others: &[String]) -> String {
    format!(
        "shares its state with `{}`: give each environment its own backend config (key or path) or workspace",
        others.join("`, `")
    )
}

/// Reads each Terraform root module's backend block once, however many environments
/// share the root.
#[derive(Default)]
pub struct Backends {
    blocks: Mutex<HashMap<PathBuf, Option<BackendBlock>>>,
}

impl Backends {
    pub fn resolve(&self, env: &Environment, project: &Project) -> anyhow::Result<Backend> {
        env.check_config()?;
        let block = self.block(&env.root, &project.root)?;
        let mut settings = block
            .as_ref()
            .map(|b| b.settings.clone())
            .unwrap_or_default();
        if let Some(path) = &env.backend_config {
            settings.extend(hcl::read_settings(path, &project.root)?);
        }
        let kind = match (&block, &env.backend_type) {
            (Some(block), Some(configured)) if &block.kind != configured => {
                return Err(TfenvError::config(
                    format!(
                        "environment `{}`: tfenv.toml says backend `{configured}` but the root module `{}` declares `{}`",
                        env.name,
                        project.show(&env.root),
                        block.kind
                    ),
                    Some("remove `backend` from tfenv.toml or make it match the root module".to_string()),
                )
                .into());
            }
            (Some(block), _) => BackendKind::parse(&block.kind),
            (None, Some(configured)) => BackendKind::parse(configured),
            (None, None) => BackendKind::Local,
        };
        Ok(Backend {
            kind,
            implicit: block.is_none() && env.backend_type.is_none(),
            settings,
            workspace: env.workspace.clone(),
        })
    }

    /// Resolves the backend of every environment named (all when `names` is empty), in
    /// project order: a bad name or config fails before anything runs.
    /// An error when `env`'s state (`backend`, resolved) is also another environment's
    /// of `project`: a deploy of one would overwrite the other.
    pub fn refuse_shared_state(
        &self,
        env: &Environment,
        backend: &Backend,
        project: &Project,
    ) -> anyhow::Result<()> {
        let others: Vec<(&Environment, Backend)> = project
            .environments
            .iter()
            .filter(|other| other.name != env.name)
            .filter_map(|other| self.resolve(other, project).ok().map(|b| (other, b)))
            .collect();
        let groups = shared_states(
            std::iter::once((env, Some(backend)))
                .chain(others.iter().map(|(other, b)| (*other, Some(b)))),
        );
        let Some(group) = groups.iter().find(|g| g.contains(&env.name)) else {
            return Ok(());
        };
        let others: Vec<String> = group.iter().filter(|n| **n != env.name).cloned().collect();
        Err(TfenvError::config(
            format!(
                "environment `{}` shares its state (`{}`) with `{}`: a run of one would overwrite the other's state",
                env.name,
                backend.location(env, project),
                others.join("`, `")
            ),
            Some(
                "give each environment its own backend config (key or path), or declare them in tfenv.toml with distinct workspaces; `tfenv envs` shows where each state is"
                    .to_string(),
            ),
        )
        .into())
    }

    pub fn resolve_all<'p>(
        &self,
        project: &'p Project,
        names: &[String],
    ) -> anyhow::Result<Vec<(&'p Environment, Backend)>> {
        project
            .select(names)?
            .into_iter()
            .map(|env| self.resolve(env, project).map(|backend| (env, backend)))
            .collect()
    }

    fn block(&self, root: &Path, base: &Path) -> anyhow::Result<Option<BackendBlock>> {
        if let Some(block) = self.blocks.lock().expect("backend cache").get(root) {
            return Ok(block.clone());
        }
        let block = if root.is_dir() {
            hcl::read_backend_block(root, base)?
        } else {
            None
        };
        self.blocks
            .lock()
            .expect("backend cache")
            .insert(root.to_path_buf(), block.clone());
        Ok(block)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn backend(kind: &str, settings: Value, workspace: Option<&str>) -> Backend {
        Backend {
            kind: BackendKind::parse(kind),
            implicit: false,
            settings: settings.as_object().cloned().unwrap_or_default(),
            workspace: workspace.map(str::to_string),
        }
    }

    #[test]
    fn an_unknown_backend_type_is_carried_by_name_not_read_as_another() {
        use crate::process::scripted::ScriptedRunner;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tfenv.toml"), "[environments.dev]\n").unwrap();
        std::fs::write(
            dir.path().join("main.tf"),
            "terraform {\n  backend \"consul\" {\n    path = \"app\"\n  }\n}\n",
        )
        .unwrap();
        let project = Project::load(dir.path(), None).unwrap();
        let env = project.environment("dev").unwrap();
        let b = Backends::default().resolve(env, &project).unwrap();
        assert_eq!(b.kind, BackendKind::Other("consul".into()));
        assert_eq!(serde_json::to_value(&b.kind).unwrap(), "consul");
        assert_eq!(b.location(env, &project), "(consul backend)");
        // No identity: two consul environments are not taken for one shared gcs state.
        assert_eq!(b.identity(env), None);
        assert_eq!(b.local_state_file(env), None);
        // Nothing runs (the scripted runner fails on any call): the lock is unsupported.
        let lock =
            futures_util::FutureExt::now_or_never(b.read_lock(env, &ScriptedRunner::default()))
                .unwrap()
                .unwrap();
        assert!(!lock.supported());
        assert_eq!(
            lock.note(),
            Some("lock inspection is not supported for backend `consul`")
        );
        for known in ["local", "s3", "azurerm", "gcs"] {
            assert_eq!(BackendKind::parse(known).to_string(), known);
        }
    }

    #[test]
    fn setting_reads_scalars_only() {
        let b = backend(
            "s3",
            serde_json::json!({"bucket": "b", "n": 3, "flag": true, "obj": {}}),
            None,
        );
        assert_eq!(b.setting("bucket").as_deref(), Some("b"));
        assert_eq!(b.setting("n").as_deref(), Some("3"));
        assert_eq!(b.setting("flag").as_deref(), Some("true"));
        assert_eq!(b.setting("obj"), None);
        assert_eq!(b.setting("missing"), None);
    }
}
