//! Object names in the shared ledger (`<state key>.tfenv/`): one object per history
//! record, a state file and its manifest entry per backup. Names begin with the UTC
//! time, so listing order is time order.

use chrono::{DateTime, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use crate::artifacts::backups;

/// The folder of history records.
pub const HISTORY: &str = "history/";
/// The folder of backups and their manifest entries.
pub const BACKUPS: &str = "backups/";
/// A backup's manifest entry is `backups/<backup name>` + this.
pub const ENTRY: &str = ".json";
/// `restore <env> shared:<name>`: the shared backup `<name>`, when this machine has a
/// different backup of the same name.
pub const EXPLICIT: &str = "shared:";

const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// The shared name of a history record: `<start, UTC>-<host>-<12 hex>.json`, the hex
/// from the record's own line. The same record always gets the same name, so an upload
/// retried after a crash (or by two tfenv processes at once) finds its object there
/// instead of writing a second one; two different records never share a name.
pub fn history(line: &[u8], start: DateTime<Utc>, host: &str) -> String {
    let hash = hex::encode(Sha256::digest(line));
    format!(
        "{}-{}-{}.json",
        start.format(STAMP),
        clean(host),
        &hash[..12]
    )
}

/// The start time in a history record's name (to the second).
pub fn history_time(name: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(name.get(..16)?, STAMP)
        .ok()
        .map(|t| t.and_utc())
}

/// A history object's name as the store lists it: `history/<name>` → `<name>`.
pub fn history_listed(object: &str) -> Option<&str> {
    object
        .strip_prefix(HISTORY)
        .filter(|n| n.ends_with(".json") && !n.contains('/'))
}

/// The next free shared name for a backup after `name` clashed with another machine's
/// backup of the same second: `terraform.tfstate.<ts>-N`.
pub fn next_backup(name: &str) -> String {
    let stamp = &name[..(backups::PREFIX.len() + 15).min(name.len())];
    format!("{stamp}-{}", backups::suffix(name) + 1)
}

/// A host name as it may appear in an object name: letters, digits, `-` and `.`.
fn clean(host: &str) -> String {
    let host: String = host
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '.' => c,
            _ => '_',
        })
        .take(63)
        .collect();
    if host.is_empty() {
        "unknown".to_string()
    } else {
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_name_is_its_start_host_and_content() {
        let start = "2026-11-30T12:00:01.5Z".parse().unwrap();
        let a = history(b"{\"a\":1}", start, "ci runner/7");
        assert!(a.starts_with("20261130T120001Z-ci_runner_7-"), "{a}");
        assert!(
            a.ends_with(".json") && a.len() == 16 + 1 + 11 + 1 + 12 + 5,
            "{a}"
        );
        assert_eq!(a, history(b"{\"a\":1}", start, "ci runner/7"));
        assert_ne!(a, history(b"{\"a\":2}", start, "ci runner/7"));
        assert_eq!(
            history_time(&a),
            Some("2026-11-30T12:00:01Z".parse().unwrap())
        );
        assert_eq!(history_listed(&format!("history/{a}")), Some(a.as_str()));
        assert_eq!(history_listed("history/x/y.json"), None);
        assert_eq!(history_listed("backups/x.json"), None);
    }

    #[test]
    fn the_next_backup_name_counts_up_in_its_second() {
        let name = "terraform.tfstate.20261130-120000";
        assert_eq!(next_backup(name), format!("{name}-1"));
        assert_eq!(next_backup(&format!("{name}-1")), format!("{name}-2"));
        assert!(backups::is_backup_name(&next_backup(&format!("{name}-9"))));
    }
}
