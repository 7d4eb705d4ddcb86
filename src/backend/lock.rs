//! The state lock of one environment as read from its backend: free, held (by a known
//! or an unknown holder), a dead run's leftover, or not readable for this backend type.
//! Serialized to the shape docs/json.md documents (`supported`, `held`, `stale`,
//! `holder`, `source`, `note`).

use serde::ser::{Serialize, Serializer};

use crate::lock_info::LockInfo;

/// What the backend says about the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// Someone holds it, and says who.
    Held(LockInfo),
    /// Someone holds it without saying who (an OS lock whose info file is empty or
    /// missing, an Azure lease without metadata); the note says what tfenv saw.
    HeldUnknown,
    /// A leftover of a holder that died: it blocks nobody (a local lock info file
    /// without its OS lock).
    Stale(LockInfo),
    /// An empty lock info file left by a run that could not write it (a full disk),
    /// without its OS lock: it names no holder and blocks nobody.
    StaleEmpty,
    /// tfenv cannot read locks of this backend type; why.
    Unsupported(String),
}

/// The lock of one environment's state, where tfenv read it, and what else to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateLock {
    pub state: LockState,
    /// Where tfenv looked, e.g. `dynamodb:tf-locks/bucket/key`; empty when unsupported.
    pub source: String,
    /// Anything else the user should know.
    pub note: Option<String>,
}

impl StateLock {
    pub fn new(state: LockState, source: String) -> StateLock {
        StateLock {
            state,
            source,
            note: None,
        }
    }

    pub fn free(source: String) -> StateLock {
        StateLock::new(LockState::Free, source)
    }

    pub fn held_by(info: LockInfo, source: String) -> StateLock {
        StateLock::new(LockState::Held(info), source)
    }

    pub fn unsupported(kind: &str) -> StateLock {
        StateLock {
            state: LockState::Unsupported(format!(
                "lock inspection is not supported for backend `{kind}`"
            )),
            source: String::new(),
            note: None,
        }
    }

    /// The same lock, with a note for the user.
    pub fn noting(mut self, note: String) -> StateLock {
        self.note = Some(note);
        self
    }

    /// The same lock with the paths in `source` and `note` (a local lock's info file)
    /// relative to the project `root`, as every other path tfenv prints.
    pub fn relative_to(mut self, root: &std::path::Path) -> StateLock {
        for base in [crate::project::physical(root), root.to_path_buf()] {
            let prefix = format!("{}/", base.display());
            self.source = self.source.replace(&prefix, "");
            self.note = self.note.map(|note| note.replace(&prefix, ""));
        }
        self
    }

    /// tfenv can read locks of this backend.
    pub fn supported(&self) -> bool {
        !matches!(self.state, LockState::Unsupported(_))
    }

    /// Someone holds the lock (known or not).
    pub fn is_held(&self) -> bool {
        matches!(self.state, LockState::Held(_) | LockState::HeldUnknown)
    }

    /// A leftover of a dead holder that blocks nobody.
    pub fn is_stale(&self) -> bool {
        matches!(self.state, LockState::Stale(_) | LockState::StaleEmpty)
    }

    /// Who holds it, or held it when it is a leftover; `None` when nobody can tell.
    pub fn holder(&self) -> Option<&LockInfo> {
        match &self.state {
            LockState::Held(info) | LockState::Stale(info) => Some(info),
            _ => None,
        }
    }

    /// The lock ID, when the holder names one.
    pub fn id(&self) -> Option<&str> {
        self.holder()
            .map(|info| info.id.as_str())
            .filter(|id| !id.is_empty())
    }

    /// The holder in one line (see `LockInfo::describe`), for messages.
    pub fn describe(&self) -> String {
        self.holder()
            .map_or_else(|| "an unknown holder".to_string(), LockInfo::describe)
    }

    /// The note, or for an unsupported backend the reason.
    pub fn note(&self) -> Option<&str> {
        match &self.state {
            LockState::Unsupported(reason) => Some(self.note.as_deref().unwrap_or(reason)),
            _ => self.note.as_deref(),
        }
    }
}

impl Serialize for StateLock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The documented JSON of a lock: flags, not the enum, so scripts keep working.
        #[derive(serde::Serialize)]
        struct Shape<'a> {
            supported: bool,
            held: bool,
            stale: bool,
            holder: Option<Holder<'a>>,
            source: &'a str,
            note: Option<&'a str>,
        }
        /// Lock info plus its age.
        #[derive(serde::Serialize)]
        struct Holder<'a> {
            #[serde(flatten)]
            info: &'a LockInfo,
            age_seconds: Option<i64>,
        }
        Shape {
            supported: self.supported(),
            held: self.is_held(),
            stale: self.is_stale(),
            holder: self.holder().map(|info| Holder {
                info,
                age_seconds: info.age_seconds(),
            }),
            source: &self.source,
            note: self.note(),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> LockInfo {
        LockInfo::parse(r#"{"ID":"9db5","Operation":"OperationTypeApply","Info":"","Who":"root@host","Version":"1.0.3","Created":"2026-11-22T09:14:03.123456Z","Path":"p"}"#).unwrap()
    }

    #[test]
    fn a_local_locks_paths_are_shown_relative_to_the_project() {
        let root = std::path::Path::new("/nonexistent/project");
        let lock = StateLock::free("file:/nonexistent/project/state/dev/.x.lock.info".into())
            .noting("`/nonexistent/project/state/dev/.x.lock.info` is left over".into())
            .relative_to(root);
        assert_eq!(lock.source, "file:state/dev/.x.lock.info");
        assert_eq!(lock.note(), Some("`state/dev/.x.lock.info` is left over"));
    }

    #[test]
    fn each_lock_state_keeps_the_documented_json_shape() {
        let json = |lock: &StateLock| serde_json::to_value(lock).unwrap();
        let lock = StateLock::held_by(info(), "s3://b/k.tflock".into());
        // The documented fields, in the documented order.
        let text = serde_json::to_string(&lock).unwrap();
        let at = |key: &str| text.find(&format!("\"{key}\":")).unwrap();
        let keys = ["supported", "held", "stale", "holder", "source", "note"];
        assert!(keys.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        let held = json(&lock);
        assert_eq!(held.as_object().unwrap().len(), keys.len(), "{text}");
        assert_eq!(
            (&held["held"], &held["stale"]),
            (&true.into(), &false.into())
        );
        // tfenv's own JSON uses lowercase keys, plus the age.
        assert_eq!(held["holder"]["id"], "9db5");
        assert_eq!(held["holder"]["who"], "root@host");
        assert!(held["holder"].get("ID").is_none());
        assert!(held["holder"]["age_seconds"].is_i64());

        let stale = StateLock {
            state: LockState::Stale(info()),
            source: "file:x".into(),
            note: Some("left over".into()),
        };
        let stale = json(&stale);
        assert_eq!(
            (&stale["held"], &stale["stale"], &stale["note"]),
            (&false.into(), &true.into(), &"left over".into())
        );
        assert_eq!(stale["holder"]["id"], "9db5");

        let empty = json(&StateLock {
            state: LockState::StaleEmpty,
            source: "file:x".into(),
            note: None,
        });
        assert_eq!(
            (&empty["stale"], &empty["holder"]),
            (&true.into(), &serde_json::Value::Null)
        );

        let unknown = json(&StateLock {
            state: LockState::HeldUnknown,
            source: "file:x".into(),
            note: Some("pid 7".into()),
        });
        assert_eq!(
            (&unknown["held"], &unknown["holder"]),
            (&true.into(), &serde_json::Value::Null)
        );

        let unsupported = json(&StateLock::unsupported("consul"));
        assert_eq!(unsupported["supported"], false);
        assert_eq!(unsupported["source"], "");
        assert_eq!(
            unsupported["note"],
            "lock inspection is not supported for backend `consul`"
        );
        let free = json(&StateLock::free("file:x".into()));
        assert_eq!(
            (
                &free["supported"],
                &free["held"],
                &free["stale"],
                &free["note"]
            ),
            (
                &true.into(),
                &false.into(),
                &false.into(),
                &serde_json::Value::Null
            )
        );
    }
}
