//! Putting the two sides together: a local entry that names its shared object, and
//! that object is listed, lives in `both` places; a shared object no local entry names
//! is `shared`; the rest are `local`. Pure functions, so the rules are tested alone.

use std::collections::HashSet;

use chrono::{DateTime, Timelike, Utc};

use super::names;
use super::{Entry, Where};
use crate::artifacts::backups::{self, Backup};
use crate::artifacts::history::HistoryRecord;

/// `t` without its fraction of a second (names carry whole seconds).
pub fn to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// Where a local history record lives, given the names listed under `history/`.
pub fn place(record: &HistoryRecord, listed: &HashSet<&str>) -> Where {
    match record.shared.as_deref() {
        Some(name) if listed.contains(name) => Where::Both,
        _ => Where::Local,
    }
}

/// The shared history records to read so that the newest `limit` records (0: all) of
/// both sides are known: those no local record names, and — with a limit — only those
/// not older than the `limit`-th newest of everything (to the second, as names are).
pub fn history_to_read(local: &[HistoryRecord], listed: &[String], limit: usize) -> Vec<String> {
    let known: HashSet<&str> = local.iter().filter_map(|r| r.shared.as_deref()).collect();
    let shared_only: Vec<&String> = listed
        .iter()
        .filter(|name| !known.contains(name.as_str()))
        .collect();
    if limit == 0 {
        return shared_only.into_iter().cloned().collect();
    }
    let mut times: Vec<DateTime<Utc>> = local
        .iter()
        .map(|r| to_second(r.start))
        .chain(shared_only.iter().filter_map(|n| names::history_time(n)))
        .collect();
    if times.len() <= limit {
        return shared_only.into_iter().cloned().collect();
    }
    times.sort_unstable_by(|a, b| b.cmp(a));
    let boundary = times[limit - 1];
    shared_only
        .into_iter()
        .filter(|name| names::history_time(name).is_none_or(|t| t >= boundary))
        .cloned()
        .collect()
}

/// Local records and the shared ones read (`fetched`, each with its name in `shared`),
/// oldest first by start. A fetched record that a local one names is that record.
pub fn merge_history(
    local: Vec<HistoryRecord>,
    listed: &[String],
    fetched: Vec<HistoryRecord>,
) -> Vec<Entry<HistoryRecord>> {
    let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
    let known: HashSet<String> = local.iter().filter_map(|r| r.shared.clone()).collect();
    let mut entries: Vec<Entry<HistoryRecord>> = local
        .into_iter()
        .map(|record| Entry {
            place: place(&record, &listed),
            record,
        })
        .collect();
    entries.extend(
        fetched
            .into_iter()
            .filter(|r| r.shared.as_ref().is_none_or(|n| !known.contains(n)))
            .map(|record| Entry {
                record,
                place: Where::Shared,
            }),
    );
    // Stable: local records of the same start keep their file order.
    entries.sort_by_key(|e| e.record.start);
    entries
}

/// The shared backups folder as listed: backups are the names with both their state
/// file and their manifest entry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SharedBackups {
    pub complete: Vec<String>,
    pub missing_files: Vec<String>,
    pub without_entry: Vec<String>,
}

impl SharedBackups {
    /// From the object names under `backups/` (with that prefix).
    pub fn from_listing(listed: &[String]) -> SharedBackups {
        let mut files = HashSet::new();
        let mut entries = Vec::new();
        for object in listed {
            let Some(name) = object.strip_prefix(names::BACKUPS) else {
                continue;
            };
            match name.strip_suffix(names::ENTRY) {
                Some(file) if backups::is_backup_name(file) => entries.push(file.to_string()),
                None if backups::is_backup_name(name) => {
                    files.insert(name.to_string());
                }
                _ => {}
            }
        }
        let mut out = SharedBackups::default();
        for entry in &entries {
            if files.contains(entry) {
                out.complete.push(entry.clone());
            } else {
                out.missing_files.push(entry.clone());
            }
        }
        let entries: HashSet<&String> = entries.iter().collect();
        out.without_entry = files.into_iter().filter(|f| !entries.contains(f)).collect();
        out.complete.sort_by_key(|n| backups::sort_key(n));
        out.missing_files.sort_by_key(|n| backups::sort_key(n));
        out.without_entry.sort_by_key(|n| backups::sort_key(n));
        out
    }
}

/// Local manifest lines and the shared entries read (`fetched`, `file` = `shared` = the
/// shared name), oldest first. `complete` are the shared backups listed.
pub fn merge_backups(
    local: Vec<Backup>,
    complete: &[String],
    fetched: Vec<Backup>,
) -> Vec<Entry<Backup>> {
    let complete: HashSet<&str> = complete.iter().map(String::as_str).collect();
    let known: HashSet<String> = local.iter().filter_map(|b| b.shared.clone()).collect();
    let mut entries: Vec<Entry<Backup>> = Vec::new();
    for backup in local {
        // A manifest may list a file twice (hand edits): once is enough.
        if entries.iter().any(|e| e.record.file == backup.file) {
            continue;
        }
        let place = match backup.shared.as_deref() {
            Some(name) if complete.contains(name) => Where::Both,
            _ => Where::Local,
        };
        entries.push(Entry {
            record: backup,
            place,
        });
    }
    entries.extend(
        fetched
            .into_iter()
            .filter(|b| b.shared.as_ref().is_none_or(|n| !known.contains(n)))
            .map(|record| Entry {
                record,
                place: Where::Shared,
            }),
    );
    entries.sort_by_key(|e| (e.record.created, backups::suffix(&e.record.file)));
    entries
}

/// How `backups` names each of `entries` and `restore` takes it, unique among them: a
/// local backup by its file name; one only in the shared ledger by its shared name, or
/// `shared:<name>` when this machine has a different backup of that name (a clash in
/// the same second); one in both places by its local name.
pub fn backup_names(entries: &[Entry<Backup>]) -> Vec<String> {
    let local: HashSet<&str> = entries
        .iter()
        .filter(|e| e.place != Where::Shared)
        .map(|e| e.record.file.as_str())
        .collect();
    entries
        .iter()
        .map(|e| {
            let name = &e.record.file;
            match e.place {
                Where::Shared if local.contains(name.as_str()) => {
                    format!("{}{name}", names::EXPLICIT)
                }
                _ => name.clone(),
            }
        })
        .collect()
}

/// A backup's name for people: [`backup_names`], and the shared name of one in both
/// places when it differs (`<file> (shared as <file>-1)`).
pub fn backup_label(entry: &Entry<Backup>, name: &str) -> String {
    match (&entry.place, entry.record.shared.as_deref()) {
        (Where::Both, Some(shared)) if shared != entry.record.file => {
            format!("{name} (shared as {shared})")
        }
        _ => name.to_string(),
    }
}

/// The entry `wanted` names: `shared:<name>` is the shared backup of that name; any
/// other name is this machine's backup of that file name first, then the shared backup
/// of that name (which may be this machine's under another local name).
pub fn find_backup<'e>(entries: &'e [Entry<Backup>], wanted: &str) -> Option<&'e Entry<Backup>> {
    let in_shared = |name: &str| {
        entries
            .iter()
            .find(|e| e.place != Where::Local && e.record.shared.as_deref() == Some(name))
    };
    if let Some(name) = wanted.strip_prefix(names::EXPLICIT) {
        return in_shared(name);
    }
    entries
        .iter()
        .find(|e| e.place != Where::Shared && e.record.file == wanted)
        .or_else(|| in_shared(wanted))
}

/// The newer of this machine's newest backup and the newest shared one (by name).
pub fn newest_backup(
    local: Option<Backup>,
    shared: Option<&str>,
) -> Option<(String, DateTime<Utc>, Where)> {
    let shared = shared.and_then(|name| Some((name, backups::time_in_name(name)?)));
    match (local, shared) {
        (Some(local), Some((name, _))) if local.shared.as_deref() == Some(name) => {
            Some((local.file, local.created, Where::Both))
        }
        (Some(local), Some((name, time)))
            if (time, backups::suffix(name)) > (local.created, backups::suffix(&local.file)) =>
        {
            Some((name.to_string(), time, Where::Shared))
        }
        (Some(local), _) => Some((local.file, local.created, Where::Local)),
        (None, Some((name, time))) => Some((name.to_string(), time, Where::Shared)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(start: &str, shared: Option<&str>) -> HistoryRecord {
        let mut record: HistoryRecord = serde_json::from_value(serde_json::json!({
            "command": "deploy", "environment": "prod", "tier": "production",
            "who": "w", "host": "h", "git": null, "start": start, "end": start,
            "seconds": 0.0, "terraform_version": null, "plan": null, "result": "applied",
            "exit_code": 0, "backup": null, "log": null, "error": null
        }))
        .unwrap();
        record.shared = shared.map(str::to_string);
        record
    }

    fn name(stamp: &str, tag: &str) -> String {
        format!("{stamp}-h-{tag}.json")
    }

    #[test]
    fn local_and_shared_history_meet_by_the_shared_name() {
        let a = name("20261130T100000Z", "aaaaaaaaaaaa");
        let b = name("20261130T110000Z", "bbbbbbbbbbbb");
        let c = name("20261130T120000Z", "cccccccccccc");
        let local = vec![
            record("2026-11-30T10:00:00.3Z", Some(&a)),
            // Named but not listed: its upload failed, or the listing lost it.
            record(
                "2026-11-30T11:30:00Z",
                Some("20261130T113000Z-h-dddddddddddd.json"),
            ),
            // From before the shared ledger was on.
            record("2026-11-30T09:00:00Z", None),
        ];
        let listed = vec![a.clone(), b.clone(), c.clone()];
        assert_eq!(history_to_read(&local, &listed, 0), [b.clone(), c.clone()]);
        let fetched = vec![
            record("2026-11-30T12:00:00Z", Some(&c)),
            record("2026-11-30T11:00:00Z", Some(&b)),
        ];
        let merged = merge_history(local, &listed, fetched);
        let places: Vec<(String, Where)> = merged
            .iter()
            .map(|e| (e.record.start.format("%H:%M").to_string(), e.place))
            .collect();
        assert_eq!(
            places,
            [
                ("09:00".to_string(), Where::Local),
                ("10:00".to_string(), Where::Both),
                ("11:00".to_string(), Where::Shared),
                ("11:30".to_string(), Where::Local),
                ("12:00".to_string(), Where::Shared),
            ]
        );
    }

    #[test]
    fn a_limit_reads_only_the_shared_records_that_can_be_among_the_newest() {
        let local = vec![
            record("2026-11-30T10:00:00Z", None),
            record("2026-11-30T12:00:00Z", None),
        ];
        let listed: Vec<String> = ["09", "11", "13", "14"]
            .iter()
            .map(|h| name(&format!("20261130T{h}0000Z"), "aaaaaaaaaaaa"))
            .collect();
        // Newest three: 14, 13, 12 (local).
        assert_eq!(
            history_to_read(&local, &listed, 3),
            [listed[2].clone(), listed[3].clone()]
        );
        // More than there are: all of them.
        assert_eq!(history_to_read(&local, &listed, 10), listed);
        // One record fits the limit; one in the same second as the boundary is read too.
        let same = name("20261130T140000Z", "bbbbbbbbbbbb");
        let mut listed2 = listed.clone();
        listed2.push(same.clone());
        assert_eq!(
            history_to_read(&local, &listed2, 1),
            [listed[3].clone(), same]
        );
    }

    fn backup(file: &str, shared: Option<&str>) -> Backup {
        Backup {
            file: file.to_string(),
            sha256: "x".into(),
            bytes: 1,
            serial: 1,
            lineage: "l".into(),
            terraform_version: None,
            created: backups::time_in_name(file).unwrap(),
            reason: "manual".into(),
            shared: shared.map(str::to_string),
            unshared: false,
        }
    }

    #[test]
    fn shared_backups_are_the_files_with_their_entry() {
        let listed: Vec<String> = [
            "backups/terraform.tfstate.20261130-100000",
            "backups/terraform.tfstate.20261130-100000.json",
            "backups/terraform.tfstate.20261130-110000.json",
            "backups/terraform.tfstate.20261130-120000",
            "backups/notes.txt",
            "history/x.json",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            SharedBackups::from_listing(&listed),
            SharedBackups {
                complete: vec!["terraform.tfstate.20261130-100000".into()],
                missing_files: vec!["terraform.tfstate.20261130-110000".into()],
                without_entry: vec!["terraform.tfstate.20261130-120000".into()],
            }
        );
    }

    #[test]
    fn local_and_shared_backups_meet_by_the_shared_name() {
        let t1 = "terraform.tfstate.20261130-100000";
        let t2 = "terraform.tfstate.20261130-110000";
        let t3 = "terraform.tfstate.20261130-120000";
        // This machine's t2 clashed in the store with another machine's: shared as t2-1.
        let local = vec![backup(t1, Some(t1)), backup(t2, Some(&format!("{t2}-1")))];
        let complete = vec![
            t1.to_string(),
            t2.to_string(),
            format!("{t2}-1"),
            t3.to_string(),
        ];
        let fetched = vec![backup(t2, Some(t2)), backup(t3, Some(t3))];
        let merged = merge_backups(local, &complete, fetched);
        let got: Vec<(&str, Where)> = merged
            .iter()
            .map(|e| (e.record.file.as_str(), e.place))
            .collect();
        assert_eq!(
            got,
            [
                (t1, Where::Both),
                (t2, Where::Both),
                (t2, Where::Shared),
                (t3, Where::Shared)
            ]
        );
    }

    #[test]
    fn every_backup_has_a_name_of_its_own_that_restore_finds() {
        let t = "terraform.tfstate.20261130-175248";
        let t1 = format!("{t}-1");
        // B's own backup is `t` here, `t-1` in the bucket; C's is `t` in the bucket.
        let local = vec![backup(t, Some(&t1))];
        let complete = vec![t.to_string(), t1.clone()];
        let fetched = vec![backup(t, Some(t))];
        let entries = merge_backups(local, &complete, fetched);
        let names = backup_names(&entries);
        assert_eq!(names, [t.to_string(), format!("shared:{t}")]);
        let labels: Vec<String> = entries
            .iter()
            .zip(&names)
            .map(|(e, n)| backup_label(e, n))
            .collect();
        assert_eq!(
            labels,
            [format!("{t} (shared as {t1})"), format!("shared:{t}")]
        );
        let found = |wanted: &str| find_backup(&entries, wanted).map(|e| e.place);
        assert_eq!(found(t), Some(Where::Both));
        assert_eq!(found(&t1), Some(Where::Both));
        assert_eq!(found(&format!("shared:{t}")), Some(Where::Shared));
        assert_eq!(found(&format!("shared:{t1}")), Some(Where::Both));
        assert_eq!(found("terraform.tfstate.20261130-175249"), None);
    }

    #[test]
    fn the_newest_backup_is_the_newer_of_both_sides() {
        let t1 = "terraform.tfstate.20261130-100000";
        let t2 = "terraform.tfstate.20261130-110000";
        assert_eq!(
            newest_backup(Some(backup(t1, None)), Some(t2)).map(|n| n.2),
            Some(Where::Shared)
        );
        assert_eq!(
            newest_backup(Some(backup(t2, None)), Some(t1)).map(|n| n.2),
            Some(Where::Local)
        );
        assert_eq!(
            newest_backup(Some(backup(t2, Some(t2))), Some(t2)).map(|n| n.2),
            Some(Where::Both)
        );
        assert_eq!(newest_backup(None, Some(t1)).map(|n| n.0), Some(t1.into()));
        assert_eq!(newest_backup(None, None), None);
    }
}
