//! Who holds a state lock, as terraform writes it (`ID`, `Operation`, `Who`, `Version`,
//! `Created`, `Path`, `Info`) and as tfenv says it in one line. A leaf shared by
//! `backend` (reading locks), `terraform` (its lock errors) and `error`; may use `age`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::age::Age;

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
    /// Anyone who can write the lock table can write a lock: control characters in its
    /// fields (escape sequences, line breaks) are kept escaped (`\u{1b}`), never sent to
    /// a terminal raw.
    pub fn parse(text: &str) -> Result<LockInfo, String> {
        let info: LockInfo = serde_json::from_str(text.trim())
            .map_err(|e| format!("the lock info is not terraform's lock JSON ({e})"))?;
        Ok(LockInfo {
            id: printable_owned(info.id),
            operation: printable_owned(info.operation),
            who: printable_owned(info.who),
            version: printable_owned(info.version),
            created: printable_owned(info.created),
            path: printable_owned(info.path),
            info: printable_owned(info.info),
        })
    }

    /// The lock names nobody: every field that says who holds it is empty (`{}`).
    pub fn is_anonymous(&self) -> bool {
        self.id.is_empty() && self.who.is_empty() && self.operation.is_empty()
    }

    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.created)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn age_seconds(&self) -> Option<i64> {
        self.created_at().map(|t| (Utc::now() - t).num_seconds())
    }

    /// The holder in one line, the one way every message names it:
    /// `alice@laptop (OperationTypeApply, 5m ago, lock ID 9db5…)`, or with the time as
    /// written when it is not a timestamp tfenv reads (terraform's lock error prints its
    /// own format): `alice@laptop (OperationTypeApply since 2026-11-22 09:14:03 +0000 UTC, lock ID 9db5…)`.
    pub fn describe(&self) -> String {
        let when = match self.age_seconds() {
            Some(seconds) => format!(", {} ago", Age(seconds)),
            None => format!(" since {}", or_unknown(&self.created)),
        };
        format!(
            "{} ({}{when}, lock ID {})",
            or_unknown(&self.who),
            or_unknown(&self.operation),
            or_unknown(&self.id)
        )
    }
}

/// `text` with its control characters escaped (`\u{1b}`, `\n`), so that what another
/// machine or a hand-edited file wrote (a lock's holder, a shared history record, a
/// backup's reason) can neither move the cursor, set the title, clear the screen nor
/// break a row. The one place for that: tables escape every cell through it.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(text, false)
}

/// `printable`, keeping colour codes (`ESC [ digits ; … m`), which tfenv paints cells
/// with and which only colour text.
pub fn escape_controls(text: &str, keep_colors: bool) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if keep_colors && c == '\u{1b}' {
            let params = rest[1..].strip_prefix('[').map(|after| {
                after
                    .bytes()
                    .take_while(|b| b.is_ascii_digit() || *b == b';')
                    .count()
            });
            if let Some(n) = params
                && rest.as_bytes().get(2 + n) == Some(&b'm')
            {
                out.push_str(&rest[..3 + n]);
                rest = &rest[3 + n..];
                continue;
            }
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    std::borrow::Cow::Owned(out)
}

fn printable_owned(text: String) -> String {
    printable(&text).into_owned()
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() { "unknown" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_a_lock_are_escaped_never_printed_raw() {
        let info = LockInfo::parse(
            r#"{"ID":"id\u001b]0;title\u0007","Who":"eve\u001b[31m\nfake line","Operation":"OperationTypeApply"}"#,
        )
        .unwrap();
        assert!(
            !info.describe().chars().any(char::is_control),
            "{}",
            info.describe()
        );
        assert_eq!(info.who, "eve\\u{1b}[31m\\nfake line");
        assert_eq!(info.id, "id\\u{1b}]0;title\\u{7}");
        assert!(!info.is_anonymous());
        assert!(LockInfo::parse("{}").unwrap().is_anonymous());
    }

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
    }

    #[test]
    fn a_holder_is_described_with_its_age_or_its_time_as_written() {
        let created = (Utc::now() - chrono::Duration::seconds(300)).to_rfc3339();
        let info = LockInfo {
            id: "9db5".into(),
            operation: "OperationTypeApply".into(),
            who: "alice@laptop".into(),
            created,
            ..LockInfo::default()
        };
        assert_eq!(
            info.describe(),
            "alice@laptop (OperationTypeApply, 5m ago, lock ID 9db5)"
        );
        let info = LockInfo {
            created: "2026-11-22 09:14:03 +0000 UTC".into(),
            ..info
        };
        assert_eq!(
            info.describe(),
            "alice@laptop (OperationTypeApply since 2026-11-22 09:14:03 +0000 UTC, lock ID 9db5)"
        );
        assert_eq!(
            LockInfo::default().describe(),
            "unknown (unknown since unknown, lock ID unknown)"
        );
    }
}
