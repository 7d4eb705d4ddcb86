//! What a state lock looks like wherever it lives: terraform's lock JSON (`ID`,
//! `Operation`, `Who`, `Version`, `Created`, `Path`, `Info`), and whether it is held.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Terraform's lock info, as every backend stores it. Read with terraform's keys (`ID`,
/// `Who`, …), written in tfenv's JSON with lowercase ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    #[serde(rename(deserialize = "ID"), alias = "id", default)]
    pub id: String,
    #[serde(rename(deserialize = "Operation"), alias = "operation", default)]
    pub operation: String,
    #[serde(rename(deserialize = "Who"), alias = "who", default)]
    pub who: String,
    #[serde(rename(deserialize = "Version"), alias = "version", default)]
    pub version: String,
    #[serde(rename(deserialize = "Created"), alias = "created", default)]
    pub created: String,
    #[serde(rename(deserialize = "Path"), alias = "path", default)]
    pub path: String,
    #[serde(rename(deserialize = "Info"), alias = "info", default)]
    pub info: String,
}

impl LockInfo {
    pub fn parse(text: &str) -> Result<LockInfo, String> {
        serde_json::from_str(text.trim())
            .map_err(|e| format!("the lock info is not terraform's lock JSON ({e})"))
    }

    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.created)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn age_seconds(&self) -> Option<i64> {
        self.created_at().map(|t| (Utc::now() - t).num_seconds())
    }
}

/// The lock of one environment's state, as read from its backend.
#[derive(Clone, Debug, Serialize)]
pub struct LockState {
    /// tfenv can read locks of this backend.
    pub supported: bool,
    /// Someone holds the lock.
    pub held: bool,
    /// A leftover of a dead holder that no longer blocks anyone (local info file without
    /// its OS lock).
    pub stale: bool,
    /// Who holds it. `None` with `held`: held by someone unknown (e.g. an Azure lease
    /// without metadata).
    pub holder: Option<Holder>,
    /// Where tfenv looked, e.g. `dynamodb:tf-locks/bucket/key`.
    pub source: String,
    /// Anything else the user should know.
    pub note: Option<String>,
}

/// Lock info plus its age, for output.
#[derive(Clone, Debug, Serialize)]
pub struct Holder {
    #[serde(flatten)]
    pub info: LockInfo,
    pub age_seconds: Option<i64>,
}

impl From<LockInfo> for Holder {
    fn from(info: LockInfo) -> Holder {
        Holder {
            age_seconds: info.age_seconds(),
            info,
        }
    }
}

impl LockState {
    pub fn free(source: String) -> LockState {
        LockState {
            supported: true,
            held: false,
            stale: false,
            holder: None,
            source,
            note: None,
        }
    }

    pub fn held_by(info: LockInfo, source: String) -> LockState {
        LockState {
            supported: true,
            held: true,
            stale: false,
            holder: Some(info.into()),
            source,
            note: None,
        }
    }

    pub fn unsupported(kind: &str) -> LockState {
        LockState {
            supported: false,
            held: false,
            stale: false,
            holder: None,
            source: String::new(),
            note: Some(format!(
                "lock inspection is not supported for backend `{kind}`"
            )),
        }
    }

    /// The same lock with the paths in `source` and `note` (a local lock's info file)
    /// relative to the project `root`, as every other path tfenv prints.
    pub fn relative_to(mut self, root: &std::path::Path) -> LockState {
        for base in [crate::project::physical(root), root.to_path_buf()] {
            let prefix = format!("{}/", base.display());
            self.source = self.source.replace(&prefix, "");
            self.note = self.note.map(|note| note.replace(&prefix, ""));
        }
        self
    }

    pub fn id(&self) -> Option<&str> {
        self.holder
            .as_ref()
            .map(|h| h.info.id.as_str())
            .filter(|id| !id.is_empty())
    }

    /// `alice@laptop (OperationTypeApply, 5m ago, ID 9db5…)`, for messages.
    pub fn describe(&self) -> String {
        match &self.holder {
            Some(h) => format!(
                "{} ({}, {}, lock ID {})",
                or_unknown(&h.info.who),
                or_unknown(&h.info.operation),
                h.age_seconds.map_or_else(
                    || format!("since {}", or_unknown(&h.info.created)),
                    |s| format!("{} ago", crate::output::age(s))
                ),
                or_unknown(&h.info.id)
            ),
            None => "an unknown holder".to_string(),
        }
    }
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() { "unknown" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terraform_lock_json_is_parsed() {
        let info = LockInfo::parse(r#"{"ID":"9db5","Operation":"OperationTypeApply","Info":"","Who":"root@host","Version":"1.0.3","Created":"2026-11-22T09:14:03.123456Z","Path":"tfstate-test/dev/terraform.tfstate"}"#).unwrap();
        assert_eq!(info.id, "9db5");
        assert_eq!(info.who, "root@host");
        assert_eq!(
            info.created_at().unwrap().to_rfc3339(),
            "2026-11-22T09:14:03.123456+00:00"
        );
        assert!(LockInfo::parse("garbage").is_err());
        // tfenv's own JSON uses lowercase keys.
        let out = serde_json::to_value(Holder::from(info)).unwrap();
        assert_eq!(out["id"], "9db5");
        assert_eq!(out["who"], "root@host");
        assert!(out.get("ID").is_none());
    }

    #[test]
    fn a_local_locks_paths_are_shown_relative_to_the_project() {
        let root = std::path::Path::new("/nonexistent/project");
        let mut lock = LockState::free("file:/nonexistent/project/state/dev/.x.lock.info".into());
        lock.note = Some("`/nonexistent/project/state/dev/.x.lock.info` is left over".into());
        let lock = lock.relative_to(root);
        assert_eq!(lock.source, "file:state/dev/.x.lock.info");
        assert_eq!(
            lock.note.as_deref(),
            Some("`state/dev/.x.lock.info` is left over")
        );
    }
}
