//! `state/<env>/history.jsonl`: one record per deploy, refresh, restore or unlock —
//! who, where, which commit, what the plan said, and how it ended.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::backups::Backup;
use crate::exit::Exit;
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
    /// applied | no-changes | refused | failed | interrupted | planned
    pub result: String,
    pub exit_code: u8,
    /// The backup taken before the change, by file name in `backups/`.
    pub backup: Option<String>,
    /// The run's log, relative to `state/<env>/`.
    pub log: Option<String>,
    pub error: Option<String>,
    /// `unlock`: the lock that was released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GitInfo {
    pub commit: String,
    pub dirty: bool,
}

/// Appends one record (atomically: the file is rewritten through `write_atomic`).
pub fn append(artifacts_dir: &Path, record: &HistoryRecord) -> anyhow::Result<()> {
    super::append_line(
        &artifacts_dir.join("history.jsonl"),
        &serde_json::to_string(record)?,
    )
}

/// The backup taken before the last successful deploy: the way back from it, which
/// pruning never deletes.
pub fn last_good_backup(artifacts_dir: &Path) -> anyhow::Result<Option<String>> {
    Ok(read(artifacts_dir)?
        .into_iter()
        .rev()
        .find(|r| r.command == "deploy" && r.result == "applied" && r.backup.is_some())
        .and_then(|r| r.backup))
}

/// Every readable record, oldest first; torn or foreign lines are skipped.
pub fn read(artifacts_dir: &Path) -> anyhow::Result<Vec<HistoryRecord>> {
    let path = artifacts_dir.join("history.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading `{}`", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
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
                result: String::new(),
                exit_code: 0,
                backup: None,
                log: None,
                error: None,
                lock: None,
            }),
            command,
            git: None,
            plan: None,
            backup: None,
            log: None,
            lock: None,
        }
    }

    pub fn finish(
        &mut self,
        result: &str,
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
        record.result = result.to_string();
        record.exit_code = exit.code();
        record.error = error;
        record.lock = self.lock.clone();
        append(&self.artifacts_dir, &record)
    }
}

impl Ledger {
    /// Records a run that ended with `err`: refused, interrupted or failed, by its exit code.
    pub fn fail(&mut self, err: &anyhow::Error) -> anyhow::Result<()> {
        let exit = crate::error::exit_for(err);
        let result = match exit {
            Exit::Refused => "refused",
            Exit::Interrupted => "interrupted",
            _ => "failed",
        };
        self.finish(result, exit, Some(format!("{err:#}")))
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if self.record.is_some() {
            let _ = self.finish(
                "interrupted",
                Exit::Interrupted,
                Some("interrupted".to_string()),
            );
        }
    }
}
