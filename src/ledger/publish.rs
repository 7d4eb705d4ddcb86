//! Uploading what this machine has and the shared ledger has not: history records and
//! backups without a `shared` name, or still marked `unshared`. Every write is
//! create-only; the local line is then rewritten (atomically, under its lock) with its
//! shared name, and `unshared` while its upload has not succeeded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{CONCURRENT, names};
use crate::artifacts::backups::{self, Backup};
use crate::artifacts::history::{self, HistoryRecord};
use crate::artifacts::jsonl;
use crate::backend::store::{Body, Created, Store};
use crate::backend::within;
use crate::project::Environment;

/// One local line to upload.
struct Pending {
    /// The line as it is in the local file (trimmed).
    line: Vec<u8>,
    /// Its shared name so far.
    name: String,
    /// The line's fields.
    fields: Map<String, Value>,
}

/// What one upload of the pending ledger did (see [`super::EnvLedger::publish_pending`]):
/// in the JSON document of the command that wrote the ledger as `shared`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Shared {
    /// Where: `s3://bucket/<key>.tfenv/`.
    pub location: String,
    /// History records uploaded now (0 when nothing was pending).
    pub records: usize,
    /// Backups uploaded now.
    pub backups: usize,
    /// Backups stored under another name than their file's: the name was taken.
    pub renamed: Vec<Renamed>,
    /// At most one: what could not be uploaded (said on stderr, and in the document's
    /// `warnings`).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A backup stored in the shared ledger under another name than its file's.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Renamed {
    pub file: String,
    pub shared: String,
}

impl Shared {
    /// `shared 3 history records and 1 backup in s3://…/`; `None` when nothing went up.
    pub fn said(&self) -> Option<String> {
        let plural = |n: usize, one: &str| match n {
            1 => format!("1 {one}"),
            n => format!("{n} {one}s"),
        };
        let what = match (self.records, self.backups) {
            (0, 0) => return None,
            (r, 0) => plural(r, "history record"),
            (0, b) => plural(b, "backup"),
            (r, b) => format!(
                "{} and {}",
                plural(r, "history record"),
                plural(b, "backup")
            ),
        };
        Some(format!("shared {what} in {}", self.location))
    }
}

/// See [`super::EnvLedger::publish_pending`].
pub async fn publish(store: &Store, env: &Environment, timeout: Duration) -> Shared {
    let mut shared = Shared {
        location: store.location(),
        ..Shared::default()
    };
    shared.warnings = publish_into(store, env, timeout, &mut shared).await;
    shared
}

async fn publish_into(
    store: &Store,
    env: &Environment,
    timeout: Duration,
    shared: &mut Shared,
) -> Vec<String> {
    let mut problems: Vec<String> = Vec::new();
    let history_path = env.artifacts_dir.join(history::FILE);
    let records = pending_history(&history_path).unwrap_or_else(|err| {
        problems.push(format!("{err:#}"));
        Vec::new()
    });
    let dir = backups::dir(env);
    let backups = pending_backups(&dir).unwrap_or_else(|err| {
        problems.push(format!("{err:#}"));
        Vec::new()
    });
    if records.is_empty() && backups.is_empty() {
        return summary(store, env, &problems, 0, 0);
    }

    // One upload first: when the store is down, that is the only one that waits.
    let mut record_results: HashMap<Vec<u8>, (String, Result<(), String>)> = HashMap::new();
    let mut backup_results: HashMap<String, (String, Result<(), String>)> = HashMap::new();
    let mut records = records.into_iter();
    let mut backups = backups.into_iter();
    let first_failed = if let Some(first) = records.next() {
        let result = upload_record(store, &first, timeout).await;
        let failed = result.is_err();
        record_results.insert(first.line.clone(), (first.name, result));
        failed
    } else if let Some(backup) = backups.next() {
        let result = upload_backup(store, &dir, &backup, timeout).await;
        let failed = result.is_err();
        insert_backup(&mut backup_results, &backup, result);
        failed
    } else {
        false
    };
    if first_failed {
        let why = record_results
            .values()
            .chain(backup_results.values())
            .find_map(|(_, r)| r.clone().err())
            .unwrap_or_default();
        for record in records {
            record_results.insert(record.line, (record.name, Err(why.clone())));
        }
        for backup in backups {
            let name = backup.shared.clone().unwrap_or_else(|| backup.file.clone());
            backup_results.insert(backup.file, (name, Err(why.clone())));
        }
    } else {
        let uploaded: Vec<(Pending, Result<(), String>)> =
            futures_util::stream::iter(records.map(|record| async move {
                let result = upload_record(store, &record, timeout).await;
                (record, result)
            }))
            .buffer_unordered(CONCURRENT)
            .collect()
            .await;
        for (record, result) in uploaded {
            record_results.insert(record.line, (record.name, result));
        }
        let dir = &dir;
        let uploaded: Vec<(Backup, Result<String, String>)> =
            futures_util::stream::iter(backups.map(|backup| async move {
                let result = upload_backup(store, dir, &backup, timeout).await;
                (backup, result)
            }))
            .buffer_unordered(CONCURRENT / 2)
            .collect()
            .await;
        for (backup, result) in uploaded {
            insert_backup(&mut backup_results, &backup, result);
        }
    }

    let failed_records = record_results.values().filter(|(_, r)| r.is_err()).count();
    let failed_backups = backup_results.values().filter(|(_, r)| r.is_err()).count();
    shared.records = record_results.len() - failed_records;
    shared.backups = backup_results.len() - failed_backups;
    let mut renamed: Vec<Renamed> = backup_results
        .iter()
        .filter(|(file, (name, result))| result.is_ok() && name != *file)
        .map(|(file, (name, _))| Renamed {
            file: file.clone(),
            shared: name.clone(),
        })
        .collect();
    renamed.sort_by(|a, b| a.file.cmp(&b.file));
    shared.renamed = renamed;
    problems.extend(
        record_results
            .values()
            .chain(backup_results.values())
            .find_map(|(_, r)| r.clone().err()),
    );
    if !record_results.is_empty()
        && let Err(err) = jsonl::rewrite(&history_path, |line| {
            let (name, result) = record_results.get(line)?;
            marked(line, name, result.is_ok())
        })
    {
        problems.push(format!("{err:#}"));
    }
    if !backup_results.is_empty()
        && let Err(err) = jsonl::rewrite(&dir.join(backups::MANIFEST), |line| {
            let backup: Backup = serde_json::from_slice(line).ok()?;
            let (name, result) = backup_results.get(&backup.file)?;
            if backup.shared.as_deref() == Some(name) && backup.unshared == result.is_err() {
                return None;
            }
            marked(line, name, result.is_ok())
        })
    {
        problems.push(format!("{err:#}"));
    }
    summary(store, env, &problems, failed_records, failed_backups)
}

fn insert_backup(
    results: &mut HashMap<String, (String, Result<(), String>)>,
    backup: &Backup,
    result: Result<String, String>,
) {
    let tried = backup.shared.clone().unwrap_or_else(|| backup.file.clone());
    let entry = match result {
        Ok(name) => (name, Ok(())),
        Err(why) => (tried, Err(why)),
    };
    results.insert(backup.file.clone(), entry);
}

/// The one warning of a publish, if anything went wrong.
fn summary(
    store: &Store,
    env: &Environment,
    problems: &[String],
    records: usize,
    backups: usize,
) -> Vec<String> {
    let Some(first) = problems.first() else {
        return Vec::new();
    };
    let what = match (records, backups) {
        (0, 0) => "the ledger".to_string(),
        (r, 0) => format!("{r} history record(s)"),
        (0, b) => format!("{b} backup(s)"),
        (r, b) => format!("{r} history record(s) and {b} backup(s)"),
    };
    vec![format!(
        "could not upload {what} of `{}` to the shared ledger at `{}` ({first}); they stay in `state/{}/` marked `unshared`, and the next command that writes the ledger (deploy, refresh, backup, restore, unlock, prune) uploads them",
        env.name,
        store.location(),
        env.name
    )]
}

/// The line with its shared name, and `unshared` unless it is uploaded; `None` when
/// that is what it says already.
fn marked(line: &[u8], name: &str, uploaded: bool) -> Option<String> {
    let mut fields: Map<String, Value> = serde_json::from_slice(line).ok()?;
    let before = fields.clone();
    fields.insert("shared".into(), Value::String(name.to_string()));
    if uploaded {
        fields.remove("unshared");
    } else {
        fields.insert("unshared".into(), Value::Bool(true));
    }
    (fields != before).then(|| Value::Object(fields).to_string())
}

/// History lines not in the shared ledger yet.
fn pending_history(path: &Path) -> anyhow::Result<Vec<Pending>> {
    let Some(bytes) = crate::files::read_regular(path)? else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Pending> = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        let Some(record) = history::parse_line(line) else {
            continue;
        };
        if !is_pending(&record) || out.iter().any(|p| p.line == line) {
            continue;
        }
        let Ok(fields) = serde_json::from_slice::<Map<String, Value>>(line) else {
            continue;
        };
        let name = record
            .shared
            .clone()
            .unwrap_or_else(|| names::history(line, record.start, &record.host));
        out.push(Pending {
            line: line.to_vec(),
            name,
            fields,
        });
    }
    Ok(out)
}

fn is_pending(record: &HistoryRecord) -> bool {
    record.shared.is_none() || record.unshared
}

/// Manifest lines not in the shared ledger yet, whose file is still here.
fn pending_backups(dir: &Path) -> anyhow::Result<Vec<Backup>> {
    let manifest = backups::manifest(dir)?;
    let mut out: Vec<Backup> = Vec::new();
    for backup in manifest.records {
        if (backup.shared.is_none() || backup.unshared)
            && !out.iter().any(|b| b.file == backup.file)
            && std::fs::symlink_metadata(dir.join(&backup.file)).is_ok_and(|m| m.is_file())
        {
            out.push(backup);
        }
    }
    Ok(out)
}

async fn upload_record(store: &Store, record: &Pending, timeout: Duration) -> Result<(), String> {
    let mut fields = record.fields.clone();
    fields.remove("unshared");
    fields.insert("shared".into(), Value::String(record.name.clone()));
    let body = Value::Object(fields).to_string();
    let key = format!("{}{}", names::HISTORY, record.name);
    // Exists: this record's name is its content, so it is there already.
    within(
        timeout,
        || format!("writing `{key}` to `{}`", store.location()),
        store.create(&key, Body::Bytes(body.as_bytes())),
    )
    .await
    .map(|_| ())
    .map_err(|err| format!("{err:#}"))
}

/// Uploads one backup: its state file, then its manifest entry (a listing shows a
/// backup only once both are there). When the name is taken — by another machine's
/// backup of the same second, even one with the same content — the next `-N` is tried;
/// an entry carrying this backup's `origin` is this backup's own earlier upload (the
/// local line could not be marked). Returns the shared name.
async fn upload_backup(
    store: &Store,
    dir: &Path,
    backup: &Backup,
    timeout: Duration,
) -> Result<String, String> {
    let mut name = backup.shared.clone().unwrap_or_else(|| backup.file.clone());
    let path = dir.join(&backup.file);
    let origin = origin(dir, backup);
    let fail = |err: anyhow::Error| format!("{err:#}");
    for _ in 0..100 {
        let key = format!("{}{name}", names::BACKUPS);
        let entry_key = format!("{key}{}", names::ENTRY);
        let entry = Backup {
            file: name.clone(),
            shared: None,
            unshared: false,
            ..backup.clone()
        };
        let mut entry = serde_json::to_value(&entry).map_err(|e| e.to_string())?;
        entry["origin"] = Value::String(origin.clone());
        let entry = entry.to_string();
        let created = within(
            timeout,
            || format!("writing `{key}` to `{}`", store.location()),
            store.create(&key, Body::File(&path)),
        )
        .await
        .map_err(fail)?;
        if created == Created::Created {
            within(
                timeout,
                || format!("writing `{entry_key}` to `{}`", store.location()),
                store.create(&entry_key, Body::Bytes(entry.as_bytes())),
            )
            .await
            .map_err(fail)?;
            return Ok(name);
        }
        let existing = within(
            timeout,
            || format!("reading `{entry_key}` from `{}`", store.location()),
            store.read(&entry_key),
        )
        .await
        .map_err(fail)?;
        let ours = existing
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .is_some_and(|other| other["origin"].as_str() == Some(origin.as_str()));
        if ours {
            return Ok(name);
        }
        name = names::next_backup(&name);
    }
    Err(format!(
        "no free name for `{}` in `{}`",
        backup.file,
        store.location()
    ))
}

/// Which local backup a shared entry came from: the same for every upload of that
/// backup, different for any other (another machine, another checkout, another file).
fn origin(dir: &Path, backup: &Backup) -> String {
    let text = format!(
        "{}\n{}\n{}\n{}\n{}",
        crate::artifacts::hostname(),
        dir.display(),
        backup.file,
        backup.created.to_rfc3339(),
        backup.sha256
    );
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// A new file name in `dir` for a download in progress (a leftover is one `verify` shows).
pub fn temp_path(dir: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(
        ".backup-{}-{n}-{nanos:08x}.partial",
        std::process::id()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_line_keeps_every_field_and_says_where_it_went() {
        let line = br#"{"command":"deploy","future":{"x":1},"unshared":true}"#;
        assert_eq!(
            marked(line, "n.json", true).unwrap(),
            r#"{"command":"deploy","future":{"x":1},"shared":"n.json"}"#
        );
        assert_eq!(
            marked(br#"{"a":1}"#, "n.json", false).unwrap(),
            r#"{"a":1,"shared":"n.json","unshared":true}"#
        );
        assert_eq!(
            marked(
                br#"{"a":1,"shared":"n.json","unshared":true}"#,
                "n.json",
                false
            ),
            None
        );
    }
}
