//! An age at a glance — `45s`, `12m`, `3h`, `5d` — for locks, backups and past runs.
//! A leaf: uses nothing of tfenv's.

use std::fmt;

/// Seconds since something happened, shown in the largest whole unit. A negative age
/// (a clock ahead of ours) shows as `0s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Age(pub i64);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.max(0);
        match s {
            0..60 => write!(f, "{s}s"),
            60..3600 => write!(f, "{}m", s / 60),
            3600..86400 => write!(f, "{}h", s / 3600),
            _ => write!(f, "{}d", s / 86400),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(Age(45).to_string(), "45s");
        assert_eq!(Age(12 * 60 + 59).to_string(), "12m");
        assert_eq!(Age(3 * 3600 + 5).to_string(), "3h");
        assert_eq!(Age(5 * 86400).to_string(), "5d");
        assert_eq!(Age(-5).to_string(), "0s");
    }
}
