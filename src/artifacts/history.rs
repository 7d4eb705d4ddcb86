//! `state/<env>/history.jsonl`: one record per deploy, refresh, restore or unlock —
//! who, where, which commit, what the plan said, and how it ended.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::backups::Backup;
use super::jsonl::{self, Jsonl};
use crate::exit::Exit;
use crate::git_info::GitInfo;
use crate::project::Environment;
use crate::terraform::plan::PlanSummary;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub command: String,
    pub environment: String,
    pub tier: String,
    pub who: String,
    pub host: String,
    pub git: Option<GitInfo>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub seconds: f64,
    pub terraform_version: Option<String>,
    pub plan: Option<PlanSummary>,
    pub result: RunResult,
    pub exit_code: u8,
    /// The backup taken before the change, by file name in `backups/`.
    pub backup: Option<String>,
    /// The run's log, relative to `state/<env>/`.
    pub log: Option<String>,
    pub error: Option<String>,
    /// `unlock`: the lock that was released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<serde_json::Value>,
    /// deploy and refresh: whether the run got as far as terraform apply (from then on the
    /// state may have changed). Absent for other commands and in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached_apply: Option<bool>,
}

pub const FILE: &str = "history.jsonl";

/// How a run ended: the `result` of its history record and of its JSON document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunResult {
    /// The change was applied (deploy, refresh), or the state restored or the lock
    /// released (restore, unlock).
    Applied,
    /// The plan found nothing to do.
    NoChanges,
    /// A plan-only run found changes and stopped there.
    Planned,
    /// A confirmation was not given, or a safety rule stopped the run.
    Refused,
    Failed,
    Interrupted,
    /// A result this version does not know (a newer tfenv wrote it): kept as written.
    #[serde(untagged)]
    Other(String),
}

impl RunResult {
    /// How the run ended when it ended with an error: by the error's exit code.
    pub fn of_error(exit: Exit) -> RunResult {
        match exit {
            Exit::Refused => RunResult::Refused,
            Exit::Interrupted => RunResult::Interrupted,
            _ => RunResult::Failed,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            RunResult::Applied => "applied",
            RunResult::NoChanges => "no-changes",
            RunResult::Planned => "planned",
            RunResult::Refused => "refused",
            RunResult::Failed => "failed",
            RunResult::Interrupted => "interrupted",
            RunResult::Other(text) => text,
        }
    }
}

impl std::fmt::Display for RunResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Appends one record (atomically: the file is rewritten through `write_atomic`).
pub fn append(artifacts_dir: &Path, record: &HistoryRecord) -> anyhow::Result<()> {
    crate::files::append_line(&artifacts_dir.join(FILE), &serde_json::to_string(record)?)
}

/// The backup taken before the last successful deploy: the way back from it, which
/// pruning never deletes.
pub fn last_good_backup(artifacts_dir: &Path) -> anyhow::Result<Option<String>> {
    Ok(last_good(&read(artifacts_dir)?.records))
}

/// `last_good_backup` of records already read.
pub fn last_good(records: &[HistoryRecord]) -> Option<String> {
    records
        .iter()
        .rev()
        .find(|r| r.command == "deploy" && r.result == RunResult::Applied && r.backup.is_some())
        .and_then(|r| r.backup.clone())
}

/// Every readable record, oldest first; a line that is not UTF-8 or not a record is
/// skipped with a warning naming its line. A history.jsonl that is not a regular file
/// is an error (never a hang on a FIFO).
pub fn read(artifacts_dir: &Path) -> anyhow::Result<Jsonl<HistoryRecord>> {
    jsonl::read(&artifacts_dir.join(FILE), "history record", |_| Ok(()))
}

/// The newest deploy or refresh that reached apply — `applied`, or `failed` /
/// `interrupted` once terraform apply had started (records from before `reached_apply`:
/// after their plan) — for `status`'s LAST DEPLOY. Refused and no-change runs, plans,
/// restores and unlocks are skipped. Read backwards from the
/// end of the file; unreadable lines are skipped. Only a history.jsonl that is not a
/// regular file is an error.
pub fn last_deploy(artifacts_dir: &Path) -> anyhow::Result<Option<Value>> {
    jsonl::find_last(&artifacts_dir.join(FILE), |line| {
        let record: Value = serde_json::from_slice(line).ok()?;
        reached_apply(&record).then_some(record)
    })
}

fn reached_apply(record: &Value) -> bool {
    let command = record.get("command").and_then(Value::as_str);
    let result = record
        .get("result")
        .and_then(|result| RunResult::deserialize(result).ok());
    if !matches!(command, Some("deploy" | "refresh")) {
        return false;
    }
    match record.get("reached_apply").and_then(Value::as_bool) {
        Some(reached) => reached,
        // Older records do not say. A run that failed or was interrupted before its plan
        // (init, plan) surely did not reach apply; one after it may have.
        None => {
            let planned = record.get("plan").is_some_and(|plan| !plan.is_null());
            match result {
                Some(RunResult::Applied) => true,
                Some(RunResult::Failed | RunResult::Interrupted) => planned,
                _ => false,
            }
        }
    }
}

/// The history record of one run. Dropped without `finish` (the run was cut short by
/// an interrupt), it records `interrupted`.
pub struct Ledger {
    artifacts_dir: PathBuf,
    record: Option<HistoryRecord>,
    pub command: &'static str,
    pub git: Option<GitInfo>,
    pub plan: Option<PlanSummary>,
    pub backup: Option<Backup>,
    pub log: Option<String>,
    pub lock: Option<serde_json::Value>,
    /// Set just before terraform apply starts: from then on the state may change.
    pub reached_apply: bool,
}

impl Ledger {
    pub fn start(
        env: &Environment,
        command: &'static str,
        record: bool,
        terraform_version: Option<String>,
    ) -> Ledger {
        let now = Utc::now();
        Ledger {
            artifacts_dir: env.artifacts_dir.clone(),
            record: record.then(|| HistoryRecord {
                command: command.to_string(),
                environment: env.name.clone(),
                tier: env.tier.to_string(),
                who: super::whoami(),
                host: super::hostname(),
                git: None,
                start: now,
                end: now,
                seconds: 0.0,
                terraform_version,
                plan: None,
                result: RunResult::Failed,
                exit_code: 0,
                backup: None,
                log: None,
                error: None,
                lock: None,
                reached_apply: None,
            }),
            command,
            git: None,
            plan: None,
            backup: None,
            log: None,
            lock: None,
            reached_apply: false,
        }
    }

    pub fn finish(
        &mut self,
        result: RunResult,
        exit: Exit,
        error: Option<String>,
    ) -> anyhow::Result<()> {
        let Some(mut record) = self.record.take() else {
            return Ok(());
        };
        record.end = Utc::now();
        record.seconds = (record.end - record.start).num_milliseconds() as f64 / 1000.0;
        record.git = self.git.clone();
        record.plan = self.plan.clone();
        record.backup = self.backup.as_ref().map(|b| b.file.clone());
        record.log = self.log.clone();
        record.result = result;
        record.exit_code = exit.code();
        record.error = error;
        record.lock = self.lock.clone();
        // Only deploy and refresh have an apply step to reach.
        record.reached_apply =
            matches!(self.command, "deploy" | "refresh").then_some(self.reached_apply);
        append(&self.artifacts_dir, &record)
    }
}

impl Ledger {
    /// Records a run that ended with `err`: refused, interrupted or failed, by its exit code.
    pub fn fail(&mut self, err: &anyhow::Error) -> anyhow::Result<()> {
        let exit = crate::error::exit_for(err);
        self.finish(RunResult::of_error(exit), exit, Some(format!("{err:#}")))
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if self.record.is_some() {
            let _ = self.finish(
                RunResult::Interrupted,
                Exit::Interrupted,
                Some("interrupted".to_string()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(command: &str, result: &str, extra: &str) -> String {
        format!(
            "{{\"command\":\"{command}\",\"result\":\"{result}\",\"environment\":\"dev\"{extra}}}\n"
        )
    }

    #[test]
    fn last_deploy_is_the_newest_run_that_reached_apply() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let mut text = line("deploy", "applied", ",\"n\":1");
        text += &line("deploy", "failed", ",\"n\":2,\"reached_apply\":true");
        text += &line("deploy", "interrupted", ",\"n\":3,\"reached_apply\":false");
        text += &line("deploy", "failed", ",\"n\":4,\"reached_apply\":false");
        text += &line("deploy", "no-changes", ",\"n\":5,\"reached_apply\":false");
        text += &line("deploy", "refused", ",\"n\":6,\"reached_apply\":false");
        text += &line("unlock", "applied", ",\"n\":7");
        text += &line("unlock", "refused", ",\"n\":8");
        text += &line("restore", "applied", ",\"n\":9");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(last_deploy(dir.path()).unwrap().unwrap()["n"], 2);

        // Records from before `reached_apply`: the result decides, and a failure or an
        // interrupt counts only after the plan.
        text += &line("refresh", "interrupted", ",\"n\":10,\"plan\":{\"add\":1}");
        text += &line("deploy", "failed", ",\"n\":11,\"plan\":null");
        text += &line("deploy", "no-changes", ",\"n\":12,\"plan\":{\"add\":0}");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(last_deploy(dir.path()).unwrap().unwrap()["n"], 10);

        std::fs::write(&path, line("deploy", "refused", "")).unwrap();
        assert!(last_deploy(dir.path()).unwrap().is_none());
        assert!(last_deploy(&dir.path().join("none")).unwrap().is_none());
    }

    #[test]
    fn last_deploy_reads_a_tail_that_starts_inside_a_multibyte_character() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        // An old error message full of three-byte characters, then the deploy. The padding
        // after the characters moves where the 64 KiB tail begins: one of the three puts
        // it inside a character, and the newest record is still found.
        for pad in 0..3 {
            let mut text = line(
                "deploy",
                "failed",
                &format!(",\"error\":\"{}{}\"", "€".repeat(30_000), " ".repeat(pad)),
            );
            text += &line("deploy", "applied", ",\"n\":2");
            std::fs::write(&path, &text).unwrap();
            assert_eq!(
                last_deploy(dir.path()).unwrap().unwrap()["n"],
                2,
                "pad {pad}"
            );
        }
    }

    #[test]
    fn a_history_that_is_a_fifo_is_an_error_naming_it_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(
            format!("{err:#}")
                .contains("history.jsonl` is a FIFO (named pipe), not a regular file"),
            "{err:#}"
        );
        assert!(last_deploy(dir.path()).is_err());
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(format!("{:#}", read(dir.path()).unwrap_err()).contains("is a folder"));
    }

    #[test]
    fn unreadable_history_lines_are_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let good = serde_json::json!({
            "command": "deploy", "environment": "dev", "tier": "development", "who": "a",
            "host": "h", "git": null, "start": "2026-11-22T10:15:00Z", "end": "2026-11-22T10:15:01Z",
            "seconds": 1.0, "terraform_version": null, "plan": null, "result": "applied",
            "exit_code": 0, "backup": "terraform.tfstate.20261122-101500", "log": null, "error": null
        })
        .to_string();
        let mut bytes = b"{\"command\":\"deploy\",\"result\":\"app\xe9lied\"}\n".to_vec();
        bytes.extend_from_slice(good.as_bytes());
        bytes.push(b'\n');
        std::fs::write(dir.path().join(FILE), &bytes).unwrap();
        let read = read(dir.path()).unwrap();
        assert_eq!(read.records.len(), 1);
        assert_eq!(read.warnings.len(), 1);
        assert!(read.warnings[0].contains("history.jsonl` line 1: not valid UTF-8"));
        assert_eq!(
            last_good(&read.records).as_deref(),
            Some("terraform.tfstate.20261122-101500")
        );
    }
}
