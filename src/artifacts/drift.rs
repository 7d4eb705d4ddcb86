//! `state/<env>/drift.json`: the last drift check of an environment (DESIGN.md §11),
//! written by `tfenv drift` (atomic, 0600) and read by `status` for its DRIFT column and
//! the `drifted` problem. It names resources and attributes, never values.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::project::Tier;

pub const FILE: &str = "drift.json";

/// How bad a drift is, by the environment's tier and what happened to the resource.
/// Ordered: `Low < Medium < High < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// DESIGN.md §11: `critical` = a resource deleted outside Terraform in production;
    /// `high` = other production drift, or a deletion in staging; `medium` = other staging
    /// drift; `low` = development.
    pub fn of(tier: Tier, action: DriftAction) -> Severity {
        match (tier, action) {
            (Tier::Production, DriftAction::Delete) => Severity::Critical,
            (Tier::Production, _) | (Tier::Staging, DriftAction::Delete) => Severity::High,
            (Tier::Staging, _) => Severity::Medium,
            (Tier::Development, _) => Severity::Low,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What changed outside Terraform: the object differs from the state (`update`), or is
/// gone (`delete`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftAction {
    Update,
    Delete,
}

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckResult {
    /// Nothing changed outside Terraform (pending code changes may still be listed).
    InSync,
    Drifted,
    /// The check itself failed (init, a bad var file, the backend): nothing is known.
    Failed,
}

/// One resource changed outside Terraform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftedResource {
    pub address: String,
    pub action: DriftAction,
    /// The names of the attributes that differ (top-level), never their values. Empty
    /// for a deletion.
    #[serde(default)]
    pub attributes: Vec<String>,
    pub severity: Severity,
}

/// A change the code would make that is not drift: code not yet applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    pub address: String,
    /// terraform's actions, e.g. `["update"]`, `["delete", "create"]`.
    pub actions: Vec<String>,
}

/// One environment's drift check, as `drift.json` holds it and as `tfenv drift` prints
/// it (one entry of its document per environment).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DriftReport {
    pub environment: String,
    pub tier: Tier,
    pub checked: DateTime<Utc>,
    pub seconds: f64,
    pub result: CheckResult,
    /// The worst severity among `drifted`; `null` when nothing drifted.
    pub severity: Option<Severity>,
    #[serde(default)]
    pub drifted: Vec<DriftedResource>,
    #[serde(default)]
    pub pending: Vec<PendingChange>,
    /// Why the check failed (`result` `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform_version: Option<String>,
    /// A failed check: what the last check that completed found (`null` when none did),
    /// so a check that breaks never forgets known drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completed: Option<CompletedCheck>,
}

/// What the last completed check (`in-sync` or `drifted`) of an environment found, kept
/// in the report of each failed check after it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompletedCheck {
    pub checked: DateTime<Utc>,
    pub result: CheckResult,
    pub severity: Option<Severity>,
    #[serde(default)]
    pub drifted: Vec<DriftedResource>,
    /// How many pending changes it found.
    #[serde(default)]
    pub pending: usize,
}

impl DriftReport {
    /// The last completed check as of this report: this one, or — when this one failed —
    /// the one it carries.
    pub fn completed(&self) -> Option<CompletedCheck> {
        match self.result {
            CheckResult::Failed => self.last_completed.clone(),
            _ => Some(CompletedCheck {
                checked: self.checked,
                result: self.result,
                severity: self.severity,
                drifted: self.drifted.clone(),
                pending: self.pending.len(),
            }),
        }
    }
}

/// Writes `state/<env>/drift.json` atomically (0600, folder 0700).
pub fn write(artifacts_dir: &Path, report: &DriftReport) -> anyhow::Result<()> {
    crate::files::ensure_private_dir(artifacts_dir)?;
    let mut text = serde_json::to_vec_pretty(report)?;
    text.push(b'\n');
    crate::files::write_atomic(&artifacts_dir.join(FILE), &text, crate::files::PRIVATE_FILE)
}

/// The last check: `Ok(None)` when the environment was never checked. A file that is
/// not a drift report is an error naming it.
pub fn read(artifacts_dir: &Path) -> anyhow::Result<Option<DriftReport>> {
    let path = artifacts_dir.join(FILE);
    let Some(bytes) = crate::files::read_regular(&path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|err| {
        crate::error::TfenvError::config(
            format!("`{}` is not a drift report: {err}", path.display()),
            Some("remove it; the next `tfenv drift` writes it again".to_string()),
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_follows_tier_and_action() {
        use DriftAction::*;
        assert_eq!(Severity::of(Tier::Production, Delete), Severity::Critical);
        assert_eq!(Severity::of(Tier::Production, Update), Severity::High);
        assert_eq!(Severity::of(Tier::Staging, Delete), Severity::High);
        assert_eq!(Severity::of(Tier::Staging, Update), Severity::Medium);
        assert_eq!(Severity::of(Tier::Development, Delete), Severity::Low);
        assert!(Severity::Critical > Severity::High && Severity::Medium > Severity::Low);
    }

    #[test]
    fn a_report_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let report = DriftReport {
            environment: "prod".into(),
            tier: Tier::Production,
            checked: Utc::now(),
            seconds: 1.5,
            result: CheckResult::Drifted,
            severity: Some(Severity::High),
            drifted: vec![DriftedResource {
                address: "a.b".into(),
                action: DriftAction::Update,
                attributes: vec!["content".into()],
                severity: Severity::High,
            }],
            pending: vec![],
            error: None,
            terraform_version: Some("1.11.4".into()),
            last_completed: None,
        };
        assert!(read(dir.path()).unwrap().is_none());
        write(dir.path(), &report).unwrap();
        let back = read(dir.path()).unwrap().unwrap();
        assert_eq!(back.drifted, report.drifted);
        assert_eq!(back.result, CheckResult::Drifted);
        std::fs::write(dir.path().join(FILE), b"[]").unwrap();
        assert!(read(dir.path()).is_err());
    }
}
