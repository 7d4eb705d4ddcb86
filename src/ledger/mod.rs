//! The ledger of an environment — its history and backups — as this machine's
//! `state/<env>/` and, with `[project] ledger = "backend"`, the shared copy beside the
//! state in the backend (`<state key>.tfenv/`, DESIGN.md §12). Readers get both, merged,
//! each entry marked with where it lives; writers append locally as before and then
//! upload what is not shared yet (`publish_pending`).
//! May use: artifacts, backend, project, process, files, error.

mod merge;
pub mod names;
pub mod promotion;
mod publish;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;

use crate::artifacts::backups::{self, Backup};
use crate::artifacts::history::{self, HistoryRecord};
use crate::backend::store::Store;
use crate::backend::{Backend, BackendKind, within};
use crate::process::Runner;
use crate::project::{Environment, LedgerMode, Project};

pub use merge::{
    backup_label, backup_names, find_backup, history_to_read, merge_backups, merge_history,
};
pub use publish::Shared;

/// How long one read or write of the shared ledger may take when the command has no
/// `--timeout` of its own (deploy, refresh, restore, unlock, backup).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many objects are read or written at once.
const CONCURRENT: usize = 8;

/// Where an entry of the ledger lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Where {
    Local,
    Shared,
    Both,
}

impl Where {
    pub fn as_str(self) -> &'static str {
        match self {
            Where::Local => "local",
            Where::Shared => "shared",
            Where::Both => "both",
        }
    }
}

/// One entry and where it lives.
#[derive(Clone, Debug)]
pub struct Entry<T> {
    pub record: T,
    pub place: Where,
}

/// Entries of both sides, oldest first, and what could not be read.
#[derive(Clone, Debug)]
pub struct Merged<T> {
    pub entries: Vec<Entry<T>>,
    pub warnings: Vec<String>,
    /// The shared side could not be listed, and why: `entries` holds this machine's only.
    pub unread: Option<Unread>,
}

/// Why the shared side of a ledger could not be read.
#[derive(Debug, Clone)]
pub struct Unread {
    pub why: String,
    /// It did not answer within the timeout (rather than answering with an error).
    pub timed_out: bool,
}

impl<T> Default for Merged<T> {
    fn default() -> Self {
        Merged {
            entries: Vec::new(),
            warnings: Vec::new(),
            unread: None,
        }
    }
}

/// The backups of both sides, and what is wrong in the shared folder.
#[derive(Clone, Debug, Default)]
pub struct Backups {
    pub merged: Merged<Backup>,
    /// Shared manifest entries (`backups/<name>.json`) whose state file is missing.
    pub missing_files: Vec<String>,
    /// Shared state files without their manifest entry: an upload cut short (or one
    /// going on now); not backups.
    pub without_entry: Vec<String>,
    /// The shared folder could not be listed: only this machine's backups are in `merged`.
    pub shared_unread: bool,
}

/// One environment's ledger.
pub struct EnvLedger<'a> {
    pub env: &'a Environment,
    /// The shared side: `None` with `ledger = "local"`, or for a backend without a store.
    pub shared: Option<Store>,
    pub mode: LedgerMode,
    /// Each read or write of the shared side gives up after this long.
    pub timeout: Duration,
    /// `ledger = "backend"` with a backend that has no storage to share it in.
    no_store: Option<String>,
    /// The shared side could not be listed and a warning said so: one per environment
    /// and run, whichever of its folders (`history/`, `backups/`) failed first.
    unread_said: AtomicBool,
}

impl<'a> EnvLedger<'a> {
    pub fn of(
        project: &Project,
        env: &'a Environment,
        backend: &Backend,
        runner: Arc<dyn Runner>,
    ) -> EnvLedger<'a> {
        let shared = match project.ledger {
            LedgerMode::Backend => backend.store(runner),
            LedgerMode::Local => None,
        };
        let no_store = (project.ledger == LedgerMode::Backend && shared.is_none()).then(|| {
            match &backend.kind {
                BackendKind::Local => format!(
                    "`ledger = \"backend\"`, but `{}` uses the local backend: there is no backend storage to share its history and backups in, so they stay in `{}` on this machine",
                    env.name,
                    project.show(&env.artifacts_dir)
                ),
                kind => format!(
                    "`ledger = \"backend\"`, but tfenv cannot write to the storage of a {kind} backend (`{}`): its history and backups stay in `{}` on this machine",
                    env.name,
                    project.show(&env.artifacts_dir)
                ),
            }
        });
        EnvLedger {
            env,
            shared,
            mode: project.ledger,
            timeout: DEFAULT_TIMEOUT,
            no_store,
            unread_said: AtomicBool::new(false),
        }
    }

    /// This machine's ledger only (the backend could not be resolved).
    pub fn local(project: &Project, env: &'a Environment) -> EnvLedger<'a> {
        EnvLedger {
            env,
            shared: None,
            mode: project.ledger,
            timeout: DEFAULT_TIMEOUT,
            no_store: None,
            unread_said: AtomicBool::new(false),
        }
    }

    /// The ledger of `env` with its backend resolved here; a backend that cannot be
    /// resolved leaves the local side, with the reason as a warning when the ledger is
    /// meant to be shared.
    pub fn resolve(
        project: &Project,
        env: &'a Environment,
        runner: Arc<dyn Runner>,
    ) -> (EnvLedger<'a>, Option<String>) {
        match crate::backend::Backends::default().resolve(env, project) {
            Ok(backend) => (EnvLedger::of(project, env, &backend, runner), None),
            Err(err) => {
                let warning = (project.ledger == LedgerMode::Backend).then(|| {
                    format!(
                        "cannot reach the shared ledger of `{}` ({err:#}): showing this machine's entries only",
                        env.name
                    )
                });
                (EnvLedger::local(project, env), warning)
            }
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `ledger = "backend"` but this environment's backend has no storage for it: a
    /// warning to give once per run (see [`warn_once`]).
    pub fn no_store(&self) -> Option<&str> {
        self.no_store.as_deref()
    }

    /// Where the shared ledger is, for people (`s3://bucket/key.tfenv/`).
    pub fn location(&self) -> Option<String> {
        self.shared.as_ref().map(Store::location)
    }

    /// Every history record, local and shared, oldest first.
    pub async fn history(&self) -> anyhow::Result<Merged<HistoryRecord>> {
        self.history_newest(0).await
    }

    /// The newest `limit` history records (all with 0), local and shared, oldest
    /// first. Only the shared records that can be among them are read.
    pub async fn history_newest(&self, limit: usize) -> anyhow::Result<Merged<HistoryRecord>> {
        let local = history::read(&self.env.artifacts_dir)?;
        let mut warnings = local.warnings;
        let mut records = local.records;
        let mut foreign = Vec::new();
        records.retain(|r| self.of_this_env(r, &mut foreign));
        warnings.extend(self.foreign_warning(&foreign, "history.jsonl"));
        let (listed, unread) = match self.list_history_or_why().await {
            Ok(listed) => (listed.unwrap_or_default(), None),
            Err(err) => {
                warnings.extend(self.unread_warning(&err));
                let unread = Unread {
                    why: format!("{err:#}"),
                    timed_out: crate::backend::is_unreachable(&err),
                };
                (Vec::new(), Some(unread))
            }
        };
        self.name_landed(&mut records, &listed);
        let wanted = history_to_read(&records, &listed, limit);
        let fetched = self.read_records(&wanted, &mut warnings).await;
        let mut entries = merge_history(records, &listed, fetched);
        if limit > 0 && entries.len() > limit {
            entries.drain(..entries.len() - limit);
        }
        Ok(Merged {
            entries,
            warnings,
            unread,
        })
    }

    /// The newest deploy or refresh that reached apply (see
    /// [`history::last_deploy`]), here or in the shared ledger, and what could not be
    /// read. Shared records newer than the local one are read newest first, a few at a
    /// time, until one reached apply.
    pub async fn last_deploy(&self) -> anyhow::Result<(Option<Entry<HistoryRecord>>, Vec<String>)> {
        let local = history::last_deploy(&self.env.artifacts_dir)?;
        let mut warnings = Vec::new();
        let mut foreign = Vec::new();
        let local = local.filter(|r| self.of_this_env(r, &mut foreign));
        warnings.extend(self.foreign_warning(&foreign, "history.jsonl"));
        let Some(listed) = self.list_history(&mut warnings).await else {
            return Ok((
                local.map(|record| Entry {
                    record,
                    place: Where::Local,
                }),
                warnings,
            ));
        };
        let mut local = local;
        if let Some(record) = local.as_mut() {
            self.name_landed(std::slice::from_mut(record), &listed);
        }
        let since = local
            .as_ref()
            .map(|r| merge::to_second(r.start))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut candidates: Vec<&String> = listed
            .iter()
            .filter(|name| names::history_time(name).is_none_or(|t| t >= since))
            .collect();
        candidates.sort_by(|a, b| b.cmp(a));
        let mut found = None;
        for batch in candidates.chunks(CONCURRENT) {
            let names: Vec<String> = batch.iter().map(|n| n.to_string()).collect();
            let mut read = self.read_records(&names, &mut warnings).await;
            read.sort_by_key(|r| std::cmp::Reverse(r.start));
            if let Some(record) = read.into_iter().find(history::reached_apply) {
                found = Some(record);
                break;
            }
        }
        let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
        let entry = match (local, found) {
            (Some(local), Some(shared))
                if shared.shared == local.shared || shared.start <= local.start =>
            {
                let place = merge::place(&local, &listed);
                Entry {
                    record: local,
                    place,
                }
            }
            (_, Some(shared)) => Entry {
                record: shared,
                place: Where::Shared,
            },
            (Some(local), None) => {
                let place = merge::place(&local, &listed);
                Entry {
                    record: local,
                    place,
                }
            }
            (None, None) => return Ok((None, warnings)),
        };
        Ok((Some(entry), warnings))
    }

    /// Every backup, local and shared, oldest first; shared ones are read from their
    /// manifest entries (`backups/<name>.json`).
    pub async fn backups(&self) -> anyhow::Result<Backups> {
        let dir = backups::dir(self.env);
        let local = backups::manifest(&dir)?;
        let mut out = Backups {
            merged: Merged {
                entries: Vec::new(),
                warnings: local.warnings,
                unread: None,
            },
            ..Backups::default()
        };
        let listed = match self.list(names::BACKUPS).await {
            Ok(listed) => listed,
            Err(err) => {
                out.shared_unread = self.shared.is_some();
                if let Some(warning) = self.unread_warning(&err) {
                    out.merged.warnings.push(warning);
                }
                Vec::new()
            }
        };
        let shared = merge::SharedBackups::from_listing(&listed);
        out.missing_files = shared.missing_files.clone();
        out.without_entry = shared.without_entry.clone();
        let known: HashSet<&str> = local
            .records
            .iter()
            .filter_map(|b| b.shared.as_deref())
            .collect();
        let wanted: Vec<String> = shared
            .complete
            .iter()
            .filter(|name| !known.contains(name.as_str()))
            .cloned()
            .collect();
        let entries = self.read_entries(&wanted, &mut out.merged.warnings).await;
        out.merged.entries = merge_backups(local.records, &shared.complete, entries);
        // A backup in both places whose local file was deleted lives only in the
        // shared ledger now (restore downloads it from there).
        for entry in &mut out.merged.entries {
            if entry.place == Where::Both
                && std::fs::symlink_metadata(dir.join(&entry.record.file)).is_err()
            {
                entry.place = Where::Shared;
            }
        }
        Ok(out)
    }

    /// The newest backup here or in the shared ledger: its name, when it was taken and
    /// where it is. The shared side is only listed, never read.
    pub async fn newest_backup(
        &self,
    ) -> anyhow::Result<(Option<(String, DateTime<Utc>, Where)>, Vec<String>)> {
        let local = backups::newest_backup(&self.env.artifacts_dir)?;
        let mut warnings = Vec::new();
        let listed = match self.list(names::BACKUPS).await {
            Ok(listed) => listed,
            Err(err) => {
                warnings.extend(self.unread_warning(&err));
                return Ok((local.map(|b| (b.file, b.created, Where::Local)), warnings));
            }
        };
        let shared = merge::SharedBackups::from_listing(&listed);
        let newest_shared = shared
            .complete
            .iter()
            .max_by_key(|name| backups::sort_key(name));
        Ok((
            merge::newest_backup(local, newest_shared.map(String::as_str)),
            warnings,
        ))
    }

    /// Downloads the shared backup `name` into a new hidden file in `dir` and returns
    /// its path (the caller checks it before using it, and removes it when it does not).
    pub async fn download_backup(&self, name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
        let store = self
            .shared
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("`{}` has no shared ledger", self.env.name))?;
        crate::files::ensure_private_dir(dir)?;
        let dest = publish::temp_path(dir);
        let key = format!("{}{name}", names::BACKUPS);
        let found = within(
            self.timeout,
            || format!("downloading `{key}` from `{}`", store.location()),
            store.download(&key, &dest),
        )
        .await;
        match found {
            Ok(true) => Ok(dest),
            Ok(false) => {
                let _ = std::fs::remove_file(&dest);
                anyhow::bail!("`{key}` is no longer in `{}`", store.location())
            }
            Err(err) => {
                let _ = std::fs::remove_file(&dest);
                Err(err)
            }
        }
    }

    /// Uploads every local history record and backup that is not in the shared ledger
    /// yet (new ones, ones whose upload failed before, and — on the first run after
    /// `ledger = "backend"` is set — everything this machine already has). Returns what
    /// went up, and the warnings to show: at most one for what failed, which stays
    /// marked `unshared` for the next command that writes the ledger. Nothing to do
    /// with a local ledger.
    pub async fn publish_pending(&self) -> Shared {
        match &self.shared {
            Some(store) => publish::publish(store, self.env, self.timeout).await,
            None => Shared::default(),
        }
    }

    /// The names under `history/`, or `None` (with a warning) when there is no shared
    /// side or it cannot be listed.
    async fn list_history(&self, warnings: &mut Vec<String>) -> Option<Vec<String>> {
        match self.list_history_or_why().await {
            Ok(listed) => listed,
            Err(err) => {
                warnings.extend(self.unread_warning(&err));
                None
            }
        }
    }

    /// The shared history records' names (`None` without a shared side), or why the
    /// shared side could not be listed.
    async fn list_history_or_why(&self) -> anyhow::Result<Option<Vec<String>>> {
        if self.shared.is_none() {
            return Ok(None);
        }
        let listed = self.list(names::HISTORY).await?;
        Ok(Some(
            listed
                .iter()
                .filter_map(|object| names::history_listed(object))
                .map(str::to_string)
                .collect(),
        ))
    }

    /// Object names under `dir` (with `dir`), name order; empty without a shared side.
    async fn list(&self, dir: &str) -> anyhow::Result<Vec<String>> {
        let Some(store) = &self.shared else {
            return Ok(Vec::new());
        };
        let objects = within(
            self.timeout,
            || format!("listing `{dir}` in `{}`", store.location()),
            store.list(dir),
        )
        .await?;
        Ok(objects.into_iter().map(|o| o.name).collect())
    }

    /// The warning that the shared ledger could not be read, the first time only: a
    /// command that lists both folders (`status`: the newest backup and the last deploy)
    /// says it once, not once per folder.
    fn unread_warning(&self, err: &anyhow::Error) -> Option<String> {
        let store = self.shared.as_ref()?;
        if self.unread_said.swap(true, Ordering::SeqCst) {
            return None;
        }
        Some(format!(
            "cannot read the shared ledger of `{}` at `{}` ({}): showing this machine's entries only",
            self.env.name,
            store.location(),
            said(err)
        ))
    }

    /// Reads the history records `names` (under `history/`), a few at a time; one
    /// warning for all that could not be read.
    async fn read_records(
        &self,
        names: &[String],
        warnings: &mut Vec<String>,
    ) -> Vec<HistoryRecord> {
        let read = self.read_all(names::HISTORY, names, "").await;
        let mut out = Vec::new();
        let mut failed = Vec::new();
        let mut foreign = Vec::new();
        for (name, result) in read {
            match result {
                Ok(Some(bytes)) => match history::parse_line(bytes.trim_ascii()) {
                    Some(record) if !self.of_this_env(&record, &mut foreign) => {}
                    Some(mut record) => {
                        record.shared = Some(name);
                        record.unshared = false;
                        out.push(record);
                    }
                    None => failed.push(format!(
                        "`{}{name}` is not a history record",
                        names::HISTORY
                    )),
                },
                // Listed, then gone: nothing to show.
                Ok(None) => {}
                Err(err) => failed.push(format!("{err:#}")),
            }
        }
        warnings.extend(self.failed_reads("history record", &failed));
        warnings.extend(self.foreign_warning(&foreign, "the shared ledger"));
        out
    }

    /// Local records without a shared name yet — an upload that landed but was
    /// interrupted before the local line was marked — whose object name (computed from
    /// the line, as the upload computes it) is listed: that object is this record, so
    /// it gets that name and shows once, as `both`, instead of once per side.
    fn name_landed(&self, records: &mut [HistoryRecord], listed: &[String]) {
        if listed.is_empty() || records.iter().all(|r| r.shared.is_some()) {
            return;
        }
        let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
        let path = self.env.artifacts_dir.join(history::FILE);
        let Ok(Some(bytes)) = crate::files::read_regular(&path) else {
            return;
        };
        let mut landed: Vec<(serde_json::Value, String)> = Vec::new();
        for line in bytes.split(|&b| b == b'\n') {
            let line = line.trim_ascii();
            let Some(record) = history::parse_line(line) else {
                continue;
            };
            if record.shared.is_some() {
                continue;
            }
            let name = names::history(line, record.start, &record.host);
            if listed.contains(name.as_str())
                && let Ok(value) = serde_json::to_value(&record)
            {
                landed.push((value, name));
            }
        }
        for record in records.iter_mut().filter(|r| r.shared.is_none()) {
            if let Ok(value) = serde_json::to_value(&*record)
                && let Some((_, name)) = landed.iter().find(|(v, _)| *v == value)
            {
                record.shared = Some(name.clone());
            }
        }
    }

    /// Whether `record` is of this environment; if not, its environment goes to
    /// `foreign` (a record copied or planted under another environment's ledger is
    /// never shown as this one's).
    fn of_this_env(&self, record: &HistoryRecord, foreign: &mut Vec<String>) -> bool {
        let ours = record.environment == self.env.name;
        if !ours {
            foreign.push(record.environment.clone());
        }
        ours
    }

    /// One warning for the records of other environments found in `place`.
    fn foreign_warning(&self, foreign: &[String], place: &str) -> Option<String> {
        let first = foreign.first()?;
        Some(format!(
            "ignoring {} history record(s) in {place} of `{}` that say they are of another environment (`{}`)",
            foreign.len(),
            self.env.name,
            crate::output::printable(first)
        ))
    }

    /// Reads the manifest entries of the shared backups `names`.
    async fn read_entries(&self, names: &[String], warnings: &mut Vec<String>) -> Vec<Backup> {
        let read = self.read_all(names::BACKUPS, names, names::ENTRY).await;
        let mut out = Vec::new();
        let mut failed = Vec::new();
        for (name, result) in read {
            match result {
                Ok(Some(bytes)) => match serde_json::from_slice::<Backup>(&bytes) {
                    Ok(mut backup) => {
                        backup.file = name.clone();
                        backup.shared = Some(name);
                        backup.unshared = false;
                        out.push(backup);
                    }
                    Err(err) => failed.push(format!(
                        "`{}{name}{}` is not a backup's manifest entry ({err})",
                        names::BACKUPS,
                        names::ENTRY
                    )),
                },
                Ok(None) => {}
                Err(err) => failed.push(format!("{err:#}")),
            }
        }
        warnings.extend(self.failed_reads("backup entry", &failed));
        out
    }

    async fn read_all(
        &self,
        dir: &str,
        names: &[String],
        suffix: &str,
    ) -> Vec<(String, anyhow::Result<Option<Vec<u8>>>)> {
        let Some(store) = &self.shared else {
            return Vec::new();
        };
        futures_util::stream::iter(names.iter().map(|name| async move {
            let key = format!("{dir}{name}{suffix}");
            let read = within(
                self.timeout,
                || format!("reading `{key}` from `{}`", store.location()),
                store.read(&key),
            )
            .await;
            (name.clone(), read)
        }))
        .buffer_unordered(CONCURRENT)
        .collect()
        .await
    }

    fn failed_reads(&self, what: &str, failed: &[String]) -> Option<String> {
        let first = failed.first()?;
        Some(format!(
            "could not read {} shared {what}(s) of `{}` from `{}`, first: {first}; they are left out",
            failed.len(),
            self.env.name,
            self.location().unwrap_or_default()
        ))
    }
}

/// A failed read or write of the shared ledger as a warning says it: the error and, when
/// the credentials were refused or the call denied, what to fix or which permission to
/// grant (a warning has no hint line of its own).
fn said(err: &anyhow::Error) -> String {
    use crate::backend::{is_auth, is_permission};
    match crate::error::hint_for(err) {
        Some(hint) if is_auth(err) || is_permission(err) => format!("{err:#}; {hint}"),
        _ => format!("{err:#}"),
    }
}

/// Prints `text` once per run (a command that reads many environments says the same
/// thing about each only once).
pub fn warn_once(printer: &crate::output::Printer, text: &str) {
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.iter().any(|s| s == text) {
        said.push(text.to_string());
        printer.warn(text);
    }
}
