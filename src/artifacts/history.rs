//! `state/<env>/history.jsonl`: one record per deploy, refresh, restore, unlock, drift
//! check or state-changing exec — who, where, which commit, what the plan said, and how
//! it ended.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use super::backups::{Backup, Protected};
use super::envlock::Holder;
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
    /// `deploy --plan`: the sha256 of the applied plan bundle's bundle.json (which holds
    /// the checksums of its terraform.plan and plan.json). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// `restore`: what was restored — a backup's name (as `tfenv backups` shows it),
    /// `version:<ID>` of the state object, or the path given. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
    /// deploy of an environment with `promote_from`: the environment whose deploy of this
    /// commit let it through. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<PromotedFrom>,
    /// deploy of an environment with `promote_from`, its check skipped
    /// (`--skip-promotion-check`): the reason given. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_check_skipped: Option<String>,
    /// `ledger = "backend"`: the record's object in the shared ledger, `history/<this>`
    /// under `<state key>.tfenv/`. Absent until tfenv first tries to upload it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<String>,
    /// Its upload failed: the next command that writes the ledger tries again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unshared: bool,
    /// `drift`: what the check found (counts and the worst severity; never values).
    /// Absent for other commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftCounts>,
    /// `migrate`: where the state moved from and to (backend type and location, never
    /// credentials). Absent for other commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated: Option<Migrated>,
    /// `exec`: the terraform subcommand it ran (`apply`, `state rm`, `import`), never its
    /// other arguments (they may hold values). Absent for other commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform_command: Option<String>,
}

/// A state moved by `tfenv migrate`: from one backend to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migrated {
    pub from: Place,
    pub to: Place,
}

/// Where a state is: its backend type and location (`s3://bucket/key`, a path).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub backend: String,
    pub location: String,
}

/// A drift check's findings as its history record keeps them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftCounts {
    /// Resources changed outside Terraform.
    pub drifted: usize,
    /// Changes the code would make (not yet applied).
    pub pending: usize,
    /// The worst severity among the drifted resources; `null` when none drifted.
    pub severity: Option<super::drift::Severity>,
}

impl DriftCounts {
    /// `2 drifted (high), 1 pending`, `in sync`, for tables.
    pub fn short(&self) -> String {
        let drifted = match (self.drifted, self.severity) {
            (0, _) => "in sync".to_string(),
            (n, Some(severity)) => format!("{n} drifted ({})", severity.as_str()),
            (n, None) => format!("{n} drifted"),
        };
        match self.pending {
            0 => drifted,
            n => format!("{drifted}, {n} pending"),
        }
    }
}

/// The deploy of `promote_from` that let a deploy through: that environment, at that
/// commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotedFrom {
    pub environment: String,
    pub commit: String,
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
    /// Another process held the environment or its state (a run's report only: history
    /// records such a run as `failed`).
    Locked,
    Interrupted,
    /// A run that tfenv found killed (SIGKILL, a crash) after the fact, by the holder
    /// text it left in its environment lock: its outcome is unknown.
    Killed,
    /// `drift`: the check found nothing changed outside Terraform.
    InSync,
    /// `drift`: the check found resources changed outside Terraform.
    Drifted,
    /// A result this version does not know (a newer tfenv wrote it): kept as written.
    #[serde(untagged)]
    Other(String),
}

impl RunResult {
    /// How the run ended when it ended with an error: by the error's exit code.
    pub fn of_error(exit: Exit) -> RunResult {
        match exit {
            Exit::Refused => RunResult::Refused,
            Exit::Locked => RunResult::Locked,
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
            RunResult::Locked => "locked",
            RunResult::Interrupted => "interrupted",
            RunResult::Killed => "killed",
            RunResult::InSync => "in-sync",
            RunResult::Drifted => "drifted",
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

/// What pruning must keep because of history: the backup taken before the last
/// successful deploy (the way back from what is running now, `last_good`) — and, when
/// history lines that cannot be read come after that deploy, every backup taken since
/// (any of those lines may be a newer successful deploy naming one), with a warning.
/// The backups of runs killed after it are kept too: one of them may be the way back.
pub fn protected_backups(artifacts_dir: &Path) -> anyhow::Result<Protection> {
    let path = artifacts_dir.join(FILE);
    Ok(protection(&path, &read(artifacts_dir)?))
}

/// See [`protected_backups`].
#[derive(Debug, Default)]
pub struct Protection {
    pub protected: Protected,
    /// Why `protected.since` is set: the unreadable lines, and what they cost.
    pub warnings: Vec<String>,
}

/// [`protected_backups`] of a history already read from `path`.
pub fn protection(path: &Path, history: &Jsonl<HistoryRecord>) -> Protection {
    let good = history.records.iter().rposition(|r| {
        r.command == "deploy" && r.result == RunResult::Applied && r.backup.is_some()
    });
    let after = good.map_or(0, |i| i + 1);
    let good_line = good.map_or(0, |i| history.lines[i]);
    let mut out = Protection::default();
    out.protected
        .files
        .extend(good.and_then(|i| history.records[i].backup.clone()));
    out.protected.files.extend(
        history.records[after..]
            .iter()
            .filter(|r| r.result == RunResult::Killed)
            .filter_map(|r| r.backup.clone()),
    );
    let unsure: Vec<usize> = history
        .skipped
        .iter()
        .copied()
        .filter(|&line| line > good_line)
        .collect();
    let Some(&first) = unsure.first() else {
        return out;
    };
    // Runs on one environment take turns (its lock), and a run's record is written as
    // it ends: the run of an unreadable line began after the readable record before it
    // had begun, so its backup is not older than that (to the second: backups are named
    // to the second).
    let since = history
        .lines
        .iter()
        .rposition(|&line| line < first)
        .map(|i| history.records[i].start)
        .and_then(|start| start.with_nanosecond(0))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    out.protected.since = Some(since);
    let lines = unsure
        .iter()
        .map(|line| line.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let kept = if since == DateTime::<Utc>::MIN_UTC {
        "every backup is kept".to_string()
    } else {
        format!(
            "every backup taken since {} is kept",
            since.format("%Y-%m-%d %H:%M:%S UTC")
        )
    };
    out.warnings.push(format!(
        "`{}` line(s) {lines} cannot be read, and may record a newer successful deploy than the last one tfenv can read: {kept}; repair or remove those lines to prune them",
        path.display()
    ));
    out
}

/// Every readable record, oldest first; a line that is not UTF-8 or not a record is
/// skipped with a warning naming its line. A history.jsonl that is not a regular file
/// is an error (never a hang on a FIFO).
pub fn read(artifacts_dir: &Path) -> anyhow::Result<Jsonl<HistoryRecord>> {
    jsonl::read(&artifacts_dir.join(FILE), RECORD, check)
}

const RECORD: &str = "history record";

/// Every record that parses is trusted.
fn check(_: &HistoryRecord) -> Result<(), String> {
    Ok(())
}

/// One line as `read` takes it (the same rule for a reader from the end), or `None`.
pub fn parse_line(line: &[u8]) -> Option<HistoryRecord> {
    jsonl::parse_line(line, RECORD, check).ok()
}

/// The newest deploy, refresh or restore that reached its change — `applied`, or
/// `failed` / `interrupted` / `killed` once terraform apply (a restore's state push) had
/// started (deploy records from before `reached_apply`: after their plan) — for
/// `status`'s LAST DEPLOY and `last-deploy-failed`. Refused and no-change runs, plans,
/// drift checks and unlocks are skipped. Read backwards from the
/// end of the file; lines `read` skips are skipped. Only a history.jsonl that is not a
/// regular file is an error.
pub fn last_deploy(artifacts_dir: &Path) -> anyhow::Result<Option<HistoryRecord>> {
    jsonl::find_last(&artifacts_dir.join(FILE), |line| {
        parse_line(line).filter(reached_apply)
    })
}

pub fn reached_apply(record: &HistoryRecord) -> bool {
    // A restore reaches its change when it starts pushing the state; older restore
    // records do not say, and are not counted.
    if record.command == "restore" {
        return record.reached_apply == Some(true);
    }
    if !matches!(record.command.as_str(), "deploy" | "refresh") {
        return false;
    }
    match record.reached_apply {
        Some(reached) => reached,
        // Older records do not say. A run that failed or was interrupted before its plan
        // (init, plan) surely did not reach apply; one after it may have.
        None => match record.result {
            RunResult::Applied => true,
            RunResult::Failed | RunResult::Interrupted => record.plan.is_some(),
            _ => false,
        },
    }
}

/// The newest `killed` run that may have changed the state (it reached terraform apply,
/// or was a restore or an unlock), unless a deploy or refresh finished since (`applied`
/// or `no-changes`: the state and the configuration agree again) or a restore replaced
/// the state: for `status`'s `killed-run` problem.
pub fn unresolved_kill(artifacts_dir: &Path) -> anyhow::Result<Option<HistoryRecord>> {
    let found = jsonl::find_last(&artifacts_dir.join(FILE), |line| {
        let record = parse_line(line)?;
        let deploys = matches!(record.command.as_str(), "deploy" | "refresh");
        if record.result == RunResult::Killed {
            let may_have_changed = !deploys || record.reached_apply != Some(false);
            return may_have_changed.then_some(Some(record));
        }
        let settled = (deploys
            && matches!(record.result, RunResult::Applied | RunResult::NoChanges))
            || (record.command == "restore" && record.result == RunResult::Applied);
        settled.then_some(None)
    })?;
    Ok(found.flatten())
}

impl HistoryRecord {
    /// A record of `command` on `env` by this user on this host, started (and, until
    /// told otherwise, ended) at `start`, with `result` and exit code 0: every other
    /// field empty. Each kind of record fills in what it knows.
    pub fn of(command: &str, env: &Environment, start: DateTime<Utc>, result: RunResult) -> Self {
        HistoryRecord {
            command: command.to_string(),
            environment: env.name.clone(),
            tier: env.tier.to_string(),
            who: super::whoami(),
            host: super::hostname(),
            git: None,
            start,
            end: start,
            seconds: 0.0,
            terraform_version: None,
            plan: None,
            result,
            exit_code: 0,
            backup: None,
            log: None,
            error: None,
            lock: None,
            reached_apply: None,
            bundle: None,
            restored: None,
            promoted_from: None,
            promotion_check_skipped: None,
            shared: None,
            unshared: false,
            drift: None,
            migrated: None,
            terraform_command: None,
        }
    }

    /// The record of a run that `holder` left in the environment lock when it was
    /// killed, written by the run that found it (`found_by`, e.g. `deploy dev`).
    pub fn killed(env: &Environment, holder: &Holder, found_by: &str) -> HistoryRecord {
        let deploys = matches!(holder.command.as_str(), "deploy" | "refresh");
        let stage = match (deploys, holder.applying) {
            (true, Some(_)) => {
                "during terraform apply: terraform may have gone on and applied all, part or none of the change"
            }
            (true, None) => "before terraform apply started: nothing was applied",
            (false, _) => "and its outcome is unknown",
        };
        let end = holder.applying.unwrap_or(holder.since);
        HistoryRecord {
            who: holder.who.clone(),
            host: holder.host.clone(),
            end,
            seconds: (end - holder.since).num_milliseconds() as f64 / 1000.0,
            // What a shell reports for a SIGKILL; the real status is unknown.
            exit_code: 137,
            backup: holder.backup.clone(),
            log: holder.log.clone(),
            error: Some(format!(
                "tfenv (pid {}) was killed before this run finished, {stage}; found by `tfenv {found_by}` at {}",
                holder.pid,
                Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
            )),
            reached_apply: deploys.then_some(holder.applying.is_some()),
            ..HistoryRecord::of(&holder.command, env, holder.since, RunResult::Killed)
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
    /// `deploy --plan`: the bundle's sha256 (of its bundle.json).
    pub bundle: Option<String>,
    /// `restore`: what it restores (see [`HistoryRecord::restored`]).
    pub restored: Option<String>,
    /// The promotion check passed on this deploy of that environment's commit.
    pub promoted_from: Option<PromotedFrom>,
    /// `--skip-promotion-check`: the reason the check was skipped.
    pub promotion_check_skipped: Option<String>,
    /// `migrate`: where the state moved from and to.
    pub migrated: Option<Migrated>,
    /// `exec`: the terraform subcommand (see [`HistoryRecord::terraform_command`]).
    pub terraform_command: Option<String>,
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
                terraform_version,
                // Set when the run ends (`finish`).
                ..HistoryRecord::of(command, env, now, RunResult::Interrupted)
            }),
            command,
            git: None,
            plan: None,
            backup: None,
            log: None,
            lock: None,
            reached_apply: false,
            bundle: None,
            restored: None,
            promoted_from: None,
            promotion_check_skipped: None,
            migrated: None,
            terraform_command: None,
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
        record.bundle = self.bundle.clone();
        record.restored = self.restored.clone();
        record.migrated = self.migrated.clone();
        record.promoted_from = self.promoted_from.clone();
        record.promotion_check_skipped = self.promotion_check_skipped.clone();
        record.terraform_command = self.terraform_command.clone();
        // Only deploy and refresh have an apply step to reach, and restore its push.
        record.reached_apply =
            matches!(self.command, "deploy" | "refresh" | "restore").then_some(self.reached_apply);
        append(&self.artifacts_dir, &record)
    }
}

impl Ledger {
    /// Records a run that ended with `err`: refused, interrupted or failed, by its exit code.
    pub fn fail(&mut self, err: &anyhow::Error) -> anyhow::Result<()> {
        let exit = crate::error::exit_for(err);
        // A record's results are fixed (docs/json.md): a held lock is `failed` there.
        let result = match RunResult::of_error(exit) {
            RunResult::Locked => RunResult::Failed,
            result => result,
        };
        self.finish(result, exit, Some(format!("{err:#}")))
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

    const PLAN: &str = r#"{"add":1,"change":0,"destroy":0,"replace":0,"outputs":0,"drifted":[],"destroyed":[],"replaced":[]}"#;

    /// A whole history line for `command` ending in `result`, told apart by `who`, with
    /// `extra` fields (`,"reached_apply":true`) after the required ones.
    fn line(command: &str, result: &str, who: &str, extra: &str) -> String {
        format!(
            "{{\"command\":\"{command}\",\"environment\":\"dev\",\"tier\":\"development\",\"who\":\"{who}\",\"host\":\"h\",\"git\":null,\"start\":\"2026-11-22T10:15:00Z\",\"end\":\"2026-11-22T10:15:01Z\",\"seconds\":1.0,\"terraform_version\":null,\"plan\":null,\"result\":\"{result}\",\"exit_code\":0,\"backup\":null,\"log\":null,\"error\":null{extra}}}\n"
        )
    }

    fn last_who(dir: &Path) -> Option<String> {
        last_deploy(dir).unwrap().map(|r| r.who)
    }

    #[test]
    fn last_deploy_is_the_newest_run_that_reached_apply() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let mut text = line("deploy", "applied", "n1", "");
        text += &line("deploy", "failed", "n2", ",\"reached_apply\":true");
        text += &line("deploy", "interrupted", "n3", ",\"reached_apply\":false");
        text += &line("deploy", "failed", "n4", ",\"reached_apply\":false");
        text += &line("deploy", "no-changes", "n5", ",\"reached_apply\":false");
        text += &line("deploy", "refused", "n6", ",\"reached_apply\":false");
        text += &line("deploy", "killed", "n6k", ",\"reached_apply\":false");
        text += &line("unlock", "applied", "n7", "");
        text += &line("unlock", "refused", "n8", "");
        text += &line("restore", "applied", "n9", "");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(last_who(dir.path()).as_deref(), Some("n2"));

        // Records from before `reached_apply`: the result decides, and a failure or an
        // interrupt counts only after the plan.
        text += &line("refresh", "interrupted", "n10", "")
            .replace("\"plan\":null", &format!("\"plan\":{PLAN}"));
        text += &line("deploy", "failed", "n11", "");
        text += &line("deploy", "no-changes", "n12", "")
            .replace("\"plan\":null", &format!("\"plan\":{PLAN}"));
        std::fs::write(&path, &text).unwrap();
        assert_eq!(last_who(dir.path()).as_deref(), Some("n10"));

        // A run found killed during its apply.
        text += &line("deploy", "killed", "n13", ",\"reached_apply\":true");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(last_who(dir.path()).as_deref(), Some("n13"));

        std::fs::write(&path, line("deploy", "refused", "n", "")).unwrap();
        assert!(last_deploy(dir.path()).unwrap().is_none());
        assert!(last_deploy(&dir.path().join("none")).unwrap().is_none());
    }

    #[test]
    fn last_deploy_skips_a_record_that_history_skips() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = line("deploy", "applied", "good", "");
        // Parses as JSON, but its `start` is not a time: `tfenv history` skips it.
        text += &line("deploy", "applied", "bad", "")
            .replace("\"start\":\"2026-11-22T10:15:00Z\"", "\"start\":\"bad\"");
        std::fs::write(dir.path().join(FILE), &text).unwrap();
        assert_eq!(read(dir.path()).unwrap().records.len(), 1);
        assert_eq!(last_who(dir.path()).as_deref(), Some("good"));
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
                "n1",
                &format!(",\"error\":\"{}{}\"", "€".repeat(30_000), " ".repeat(pad)),
            )
            .replace(",\"error\":null", "");
            text += &line("deploy", "applied", "n2", "");
            std::fs::write(&path, &text).unwrap();
            assert_eq!(last_who(dir.path()).as_deref(), Some("n2"), "pad {pad}");
        }
    }

    #[test]
    fn drift_checks_are_neither_a_last_deploy_nor_settle_a_killed_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let drift = |result: &str, who: &str| {
            line(
                "drift",
                result,
                who,
                r#","drift":{"drifted":2,"pending":1,"severity":"high"}"#,
            )
        };
        let checks =
            drift("in-sync", "d1") + &drift("drifted", "d2") + &line("drift", "failed", "d3", "");
        let deployed = line("deploy", "applied", "deployer", "");
        std::fs::write(&path, deployed.clone() + &checks).unwrap();
        assert_eq!(last_who(dir.path()).as_deref(), Some("deployer"));
        let killed = line("deploy", "killed", "killed", ",\"reached_apply\":true");
        std::fs::write(&path, deployed + &killed + &checks).unwrap();
        let unresolved = unresolved_kill(dir.path()).unwrap().map(|r| r.who);
        assert_eq!(unresolved.as_deref(), Some("killed"));
        // They read back with their results and counts, for `tfenv history`.
        let records = read(dir.path()).unwrap().records;
        assert_eq!(records[2].result, RunResult::InSync);
        assert_eq!(records[3].result, RunResult::Drifted);
        let counts = records[3].drift.as_ref().unwrap();
        assert_eq!(counts.short(), "2 drifted (high), 1 pending");
        assert_eq!(records[4].result, RunResult::Failed);
        assert!(records[4].drift.is_none());
    }

    #[test]
    fn a_killed_run_is_unresolved_until_a_later_deploy_plans() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let planned = |result: &str, who: &str| {
            line("deploy", result, who, "").replace("\"plan\":null", &format!("\"plan\":{PLAN}"))
        };
        let unresolved = || unresolved_kill(dir.path()).unwrap().map(|r| r.who);
        let mut text = planned("applied", "n1");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(unresolved(), None);
        text += &line("deploy", "killed", "k1", ",\"reached_apply\":true");
        // Neither a refused unlock nor a deploy that failed or was refused settles it.
        text += &line("unlock", "refused", "n2", "");
        text += &line("deploy", "failed", "n3", ",\"reached_apply\":false");
        text += &planned("refused", "n3r");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(unresolved().as_deref(), Some("k1"));
        // A deploy that found nothing to change since does.
        text += &planned("no-changes", "n4");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(unresolved(), None);
        // A run killed before its apply changed nothing.
        text += &line("deploy", "killed", "k2", ",\"reached_apply\":false");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(unresolved(), None);
        // A restore killed at any point may have pushed a state.
        text += &line("restore", "killed", "k3", "");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(unresolved().as_deref(), Some("k3"));
        text += &line("restore", "applied", "n5", "");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(unresolved(), None);
    }

    #[test]
    fn a_killed_record_says_what_is_known_of_the_run() {
        let env = Environment {
            name: "dev".into(),
            tier: crate::project::Tier::Staging,
            aliases: Vec::new(),
            layout: crate::project::Layout::Config,
            root: "/p".into(),
            backend_config: None,
            var_files: Vec::new(),
            workspace: None,
            backend_type: None,
            artifacts_dir: "/p/state/dev".into(),
            backup: false,
            backup_keep: None,
            backup_max_age: None,
            policy: None,
            promote_from: None,
            config_problem: None,
        };
        let holder = Holder {
            pid: 4242,
            command: "deploy".into(),
            environment: "dev".into(),
            who: "ci".into(),
            host: "runner".into(),
            since: "2025-01-01T10:00:00Z".parse().unwrap(),
            recorded: true,
            applying: Some("2025-01-01T10:01:00Z".parse().unwrap()),
            backup: Some("terraform.tfstate.20250101-100030".into()),
            log: Some("logs/deploy-20250101-100000.log".into()),
        };
        let record = HistoryRecord::killed(&env, &holder, "plan dev");
        assert_eq!(record.result, RunResult::Killed);
        assert_eq!(
            (record.who.as_str(), record.host.as_str()),
            ("ci", "runner")
        );
        assert_eq!(record.tier, "staging");
        assert_eq!(record.seconds, 60.0);
        assert_eq!(record.reached_apply, Some(true));
        assert_eq!(record.backup, holder.backup);
        assert_eq!(record.log, holder.log);
        let error = record.error.unwrap();
        assert!(
            error.starts_with(
                "tfenv (pid 4242) was killed before this run finished, during terraform apply"
            ) && error.contains("found by `tfenv plan dev`"),
            "{error}"
        );
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

    fn deploy_with_backup(backup: &str, start: &str) -> String {
        line("deploy", "applied", "n", "")
            .replace("\"backup\":null", &format!("\"backup\":\"{backup}\""))
            .replace("2026-11-22T10:15:00Z", start)
    }

    #[test]
    fn unreadable_history_lines_are_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = b"{\"command\":\"deploy\",\"result\":\"app\xe9lied\"}\n".to_vec();
        bytes.extend_from_slice(
            deploy_with_backup("terraform.tfstate.20261122-101500", "2026-11-22T10:15:00Z")
                .as_bytes(),
        );
        std::fs::write(dir.path().join(FILE), &bytes).unwrap();
        let read = read(dir.path()).unwrap();
        assert_eq!(read.records.len(), 1);
        assert_eq!(read.warnings.len(), 1);
        assert!(read.warnings[0].contains("history.jsonl` line 1: not valid UTF-8"));
        // Older than the last good deploy it can read: it changes nothing.
        let protection = protected_backups(dir.path()).unwrap();
        assert_eq!(
            protection.protected,
            Protected {
                files: vec!["terraform.tfstate.20261122-101500".into()],
                since: None,
                unshared: false,
            }
        );
        assert!(protection.warnings.is_empty());
    }

    #[test]
    fn an_unreadable_line_after_the_last_good_deploy_protects_every_backup_since() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes =
            deploy_with_backup("terraform.tfstate.20261101-120000", "2026-11-01T12:00:00Z")
                .into_bytes();
        bytes.extend_from_slice(
            line("deploy", "no-changes", "n", "")
                .replace("2026-11-22T10:15:00Z", "2026-11-02T08:30:00.750Z")
                .as_bytes(),
        );
        // The damaged line: the newer last good deploy.
        bytes.extend_from_slice(
            &deploy_with_backup("terraform.tfstate.20261103-120000", "2026-11-03T12:00:00Z")
                .replace("applied", "appl\u{e9}ied")
                .into_bytes()
                .into_iter()
                .map(|b| if b == 0xc3 { 0xff } else { b })
                .collect::<Vec<u8>>(),
        );
        bytes.extend_from_slice(line("unlock", "refused", "n", "").as_bytes());
        std::fs::write(dir.path().join(FILE), &bytes).unwrap();
        let protection = protected_backups(dir.path()).unwrap();
        assert_eq!(
            protection.protected,
            Protected {
                files: vec!["terraform.tfstate.20261101-120000".into()],
                // The start of the record before the damaged line, to the second.
                since: Some("2026-11-02T08:30:00Z".parse().unwrap()),
                unshared: false,
            }
        );
        assert_eq!(protection.warnings.len(), 1, "{:?}", protection.warnings);
        assert!(
            protection.warnings[0].contains("history.jsonl` line(s) 3 cannot be read")
                && protection.warnings[0]
                    .contains("every backup taken since 2026-11-02 08:30:00 UTC is kept"),
            "{}",
            protection.warnings[0]
        );

        // Damaged before anything readable: every backup is kept.
        std::fs::write(dir.path().join(FILE), b"\xff\n").unwrap();
        let protection = protected_backups(dir.path()).unwrap();
        assert_eq!(protection.protected.since, Some(DateTime::<Utc>::MIN_UTC));
        assert!(protection.warnings[0].contains("every backup is kept"));
    }
}
