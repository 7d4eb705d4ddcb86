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
    /// The newest deploy of any commit that counts: what a refusal names.
    pub last_success: Option<&'a Entry<HistoryRecord>>,
    /// The newest deploy of the commit that does not count (it failed, was refused or
    /// interrupted, or the tree had uncommitted changes).
    pub not_counted: Option<&'a Entry<HistoryRecord>>,
}

/// A deploy that finished: applied, or found nothing to change.
fn succeeded(record: &HistoryRecord) -> bool {
    record.command == "deploy" && matches!(record.result, RunResult::Applied | RunResult::NoChanges)
}

/// A commit ID git gave: 40 (SHA-1) or 64 (SHA-256) hex digits. Anything else (a
/// repository's `(no commits)` placeholder) is never a commit that was deployed.
pub fn is_commit(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A successful deploy of a real commit from a clean tree.
fn counts_any(record: &HistoryRecord) -> bool {
    succeeded(record)
        && record
            .git
            .as_ref()
            .is_some_and(|git| !git.dirty && is_commit(&git.commit))
}

/// Whether `record` shows `commit` deployed so that it may be promoted.
pub fn counts(record: &HistoryRecord, commit: &str) -> bool {
    is_commit(commit)
        && counts_any(record)
        && record.git.as_ref().is_some_and(|git| git.commit == commit)
}

/// The deploy did finish, of this commit, but from a tree with uncommitted changes.
pub fn dirty_success(record: &HistoryRecord) -> bool {
    succeeded(record) && record.git.as_ref().is_some_and(|git| git.dirty)
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
        last_success: newest(&counts_any),
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

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";
    const X: &str = "0123456789abcdef0123456789abcdef01234567";
    const Y: &str = "fedcba9876543210fedcba9876543210fedcba98";

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
            let entries = [record(command, result, Y, dirty, t)];
            let found = evidence(&entries, Y);
            assert!(found.passed.is_none(), "{command} {result} {dirty}");
        }
        for result in ["applied", "no-changes"] {
            let entries = [record("deploy", result, Y, false, t)];
            assert!(evidence(&entries, Y).passed.is_some(), "{result}");
            assert!(evidence(&entries, X).passed.is_none(), "{result}");
        }
    }

    #[test]
    fn a_placeholder_that_is_not_a_commit_never_counts() {
        let t = "2026-11-30T10:00:00Z";
        let entries = [record("deploy", "applied", "(no commits)", false, t)];
        let found = evidence(&entries, "(no commits)");
        assert!(found.passed.is_none());
        assert!(found.last_success.is_none());
        assert!(is_commit(X) && is_commit(&X.repeat(2)[..64]));
        assert!(!is_commit("(no commits)") && !is_commit(&X[..39]));
    }

    #[test]
    fn the_newest_by_end_is_named_whatever_the_order() {
        let entries = [
            record("deploy", "applied", B, false, "2026-11-30T12:00:00Z"),
            record("deploy", "applied", A, false, "2026-11-30T10:00:00Z"),
            record("deploy", "failed", C, false, "2026-11-30T13:00:00Z"),
            record("deploy", "applied", C, true, "2026-11-30T14:00:00Z"),
        ];
        let found = evidence(&entries, C);
        assert!(found.passed.is_none());
        // The dirty deploy of C is newer, but it does not count: B is named.
        let last = &found.last_success.unwrap().record;
        assert_eq!(last.git.as_ref().unwrap().commit, B);
        let not = &found.not_counted.unwrap().record;
        assert_eq!(
            why_not(not),
            "was `applied` from a tree with uncommitted changes"
        );
        assert_eq!(why_not(&entries[2].record), "ended `failed`");
    }
}
