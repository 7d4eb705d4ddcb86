//! Promotion evidence (DESIGN.md §12): whether an environment's ledger shows a deploy of
//! a commit that lets the next environment deploy it — `deploy`, `applied` or
//! `no-changes`, from a clean tree — and, when not, what it shows instead.

use super::Entry;
use crate::artifacts::history::{HistoryRecord, RunResult};

/// What one environment's ledger says about a commit.
#[derive(Debug, Default)]
pub struct Evidence<'a> {
    /// The newest deploy of the commit that counts.
    pub passed: Option<&'a Entry<HistoryRecord>>,
    /// The newest successful deploy of any commit, from any tree: what a refusal names.
    pub last_success: Option<&'a Entry<HistoryRecord>>,
    /// The newest deploy of the commit that does not count (it failed, was refused or
    /// interrupted, or the tree had uncommitted changes).
    pub not_counted: Option<&'a Entry<HistoryRecord>>,
}

/// A deploy that finished: applied, or found nothing to change.
fn succeeded(record: &HistoryRecord) -> bool {
    record.command == "deploy" && matches!(record.result, RunResult::Applied | RunResult::NoChanges)
}

/// Whether `record` shows `commit` deployed so that it may be promoted.
pub fn counts(record: &HistoryRecord, commit: &str) -> bool {
    succeeded(record)
        && record
            .git
            .as_ref()
            .is_some_and(|git| git.commit == commit && !git.dirty)
}

/// The evidence about `commit` among `entries`. Each is the newest by its end: the
/// entries of two ledgers, merged, need not be in order.
pub fn evidence<'a>(entries: &'a [Entry<HistoryRecord>], commit: &str) -> Evidence<'a> {
    let newest = |keep: &dyn Fn(&HistoryRecord) -> bool| {
        entries
            .iter()
            .filter(|entry| keep(&entry.record))
            .max_by_key(|entry| entry.record.end)
    };
    Evidence {
        passed: newest(&|record| counts(record, commit)),
        last_success: newest(&succeeded),
        not_counted: newest(&|record| {
            record.command == "deploy"
                && record.git.as_ref().is_some_and(|git| git.commit == commit)
                && !counts(record, commit)
        }),
    }
}

/// Why a deploy of the commit did not count, in a few words.
pub fn why_not(record: &HistoryRecord) -> String {
    match (&record.result, &record.git) {
        (RunResult::Applied | RunResult::NoChanges, Some(git)) if git.dirty => format!(
            "was `{}` from a tree with uncommitted changes",
            record.result
        ),
        (result, _) => format!("ended `{result}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Where;

    fn record(
        command: &str,
        result: &str,
        commit: &str,
        dirty: bool,
        end: &str,
    ) -> Entry<HistoryRecord> {
        let line = format!(
            "{{\"command\":\"{command}\",\"environment\":\"staging\",\"tier\":\"staging\",\"who\":\"w\",\"host\":\"h\",\"git\":{{\"commit\":\"{commit}\",\"dirty\":{dirty}}},\"start\":\"{end}\",\"end\":\"{end}\",\"seconds\":0.0,\"terraform_version\":null,\"plan\":null,\"result\":\"{result}\",\"exit_code\":0,\"backup\":null,\"log\":null,\"error\":null}}"
        );
        Entry {
            record: serde_json::from_str(&line).unwrap(),
            place: Where::Local,
        }
    }

    #[test]
    fn only_a_finished_deploy_of_the_commit_from_a_clean_tree_counts() {
        let t = "2026-11-30T10:00:00Z";
        for (command, result, dirty) in [
            ("deploy", "failed", false),
            ("deploy", "refused", false),
            ("deploy", "interrupted", false),
            ("deploy", "killed", false),
            ("deploy", "applied", true),
            ("refresh", "applied", false),
            ("restore", "applied", false),
        ] {
            let entries = [record(command, result, "y", dirty, t)];
            let found = evidence(&entries, "y");
            assert!(found.passed.is_none(), "{command} {result} {dirty}");
        }
        for result in ["applied", "no-changes"] {
            let entries = [record("deploy", result, "y", false, t)];
            assert!(evidence(&entries, "y").passed.is_some(), "{result}");
            assert!(evidence(&entries, "x").passed.is_none(), "{result}");
        }
    }

    #[test]
    fn the_newest_by_end_is_named_whatever_the_order() {
        let entries = [
            record("deploy", "applied", "b", false, "2026-11-30T12:00:00Z"),
            record("deploy", "applied", "a", false, "2026-11-30T10:00:00Z"),
            record("deploy", "failed", "c", false, "2026-11-30T13:00:00Z"),
            record("deploy", "applied", "c", true, "2026-11-30T11:00:00Z"),
        ];
        let found = evidence(&entries, "c");
        assert!(found.passed.is_none());
        let last = &found.last_success.unwrap().record;
        assert_eq!(last.git.as_ref().unwrap().commit, "b");
        let not = &found.not_counted.unwrap().record;
        assert_eq!(why_not(not), "ended `failed`");
        assert_eq!(
            why_not(&entries[3].record),
            "was `applied` from a tree with uncommitted changes"
        );
    }
}
