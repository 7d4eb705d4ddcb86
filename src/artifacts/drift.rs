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
/// not a drift report — not JSON, larger than tfenv ever writes, or the report of
/// another environment (copied from its folder) — is an error naming it.
pub fn read(artifacts_dir: &Path) -> anyhow::Result<Option<DriftReport>> {
    use std::io::Read;
    let path = artifacts_dir.join(FILE);
    let not_a_report = |why: String| -> anyhow::Error {
        crate::error::TfenvError::config(
            format!("`{}` is not a drift report: {why}", path.display()),
            Some("remove it; the next `tfenv drift` writes it again".to_string()),
        )
        .into()
    };
    let Some(file) = crate::files::open_regular(&path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| not_a_report(format!("cannot read it ({err})")))?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(not_a_report(format!(
            "it is larger than {} MiB",
            MAX_SIZE >> 20
        )));
    }
    let report: DriftReport =
        serde_json::from_slice(&bytes).map_err(|err| not_a_report(err.to_string()))?;
    let folder = artifacts_dir.file_name().and_then(|n| n.to_str());
    if folder.is_some_and(|name| name != report.environment) {
        return Err(not_a_report(format!(
            "it is the report of `{}`",
            report.environment
        )));
    }
    Ok(Some(report))
}

/// More than any report tfenv writes (a few hundred bytes per drifted resource).
const MAX_SIZE: u64 = 16 << 20;

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
        let prod = dir.path().join("prod");
        assert!(read(&prod).unwrap().is_none());
        write(&prod, &report).unwrap();
        let back = read(&prod).unwrap().unwrap();
        assert_eq!(back.drifted, report.drifted);
        assert_eq!(back.result, CheckResult::Drifted);

        // Copied into another environment's folder: not that environment's report.
        let dev = dir.path().join("dev");
        std::fs::create_dir(&dev).unwrap();
        std::fs::copy(prod.join(FILE), dev.join(FILE)).unwrap();
        let err = read(&dev).unwrap_err().to_string();
        assert!(err.contains("it is the report of `prod`"), "{err}");

        std::fs::write(prod.join(FILE), b"[]").unwrap();
        assert!(read(&prod).is_err());
        // Larger than tfenv ever writes: refused before it is parsed.
        let huge = std::fs::File::create(prod.join(FILE)).unwrap();
        huge.set_len(MAX_SIZE + 1).unwrap();
        let err = read(&prod).unwrap_err().to_string();
        assert!(err.contains("larger than 16 MiB"), "{err}");
    }
}
