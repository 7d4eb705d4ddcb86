//! `state/<env>/history.jsonl`: one record per deploy, refresh, restore or unlock —
//! who, where, which commit, what the plan said, and how it ended.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
