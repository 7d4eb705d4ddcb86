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

/// A duration to the second, each unit that is not zero: `1m 34s`, `7d`, `30d 2h 5s` —
/// for a limit and an age compared with it, and in tfenv.toml's own syntax (humantime
/// reads it back). Zero is `0s`.
pub fn exact(seconds: u64) -> String {
    let mut left = seconds;
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if left >= size {
            parts.push(format!("{}{unit}", left / size));
            left %= size;
        }
    }
    if parts.is_empty() {
        return "0s".to_string();
    }
    parts.join(" ")
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

    #[test]
    fn exact_durations_keep_every_unit_in_config_syntax() {
        assert_eq!(exact(94), "1m 34s");
        assert_eq!(exact(60), "1m");
        assert_eq!(exact(7 * 86400), "7d");
        assert_eq!(exact(30 * 86400 + 2 * 3600 + 5), "30d 2h 5s");
        assert_eq!(exact(0), "0s");
    }
}
