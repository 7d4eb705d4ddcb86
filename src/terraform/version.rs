//! Terraform versions and `required_version` constraints (`>= 1.0, < 2.0`, `~> 1.5`).
//! semver parses and compares; this file only maps Terraform's operators onto it.

use semver::Version;

/// Parses `1.11.4`, `v1.0`, `1.6.0-beta1` into a full version.
pub fn parse_version(text: &str) -> Option<Version> {
    let text = text.trim().trim_start_matches('v');
    let (core, pre) = match text.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (text, None),
    };
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    if parts.next().is_some() {
        return None;
    }
    let mut version = Version::new(major, minor, patch);
    if let Some(pre) = pre {
        version.pre = semver::Prerelease::new(pre).ok()?;
    }
    Some(version)
}

/// Whether `version` satisfies every comma-separated constraint of `constraint`.
pub fn satisfies(version: &Version, constraint: &str) -> Result<bool, String> {
    for part in constraint.split(',') {
        let part = part.trim();
        let (op, rest) = ["~>", ">=", "<=", "!=", ">", "<", "="]
            .iter()
            .find_map(|op| part.strip_prefix(op).map(|rest| (*op, rest)))
            .unwrap_or(("=", part));
        let rest = rest.trim();
        let wanted =
            parse_version(rest).ok_or_else(|| format!("`{part}` is not a version constraint"))?;
        let ok = match op {
            "=" => version == &wanted,
            "!=" => version != &wanted,
            ">" => version > &wanted,
            ">=" => version >= &wanted,
            "<" => version < &wanted,
            "<=" => version <= &wanted,
            // ~> allows the rightmost given part to grow: ~> 1.5 is >= 1.5, < 2.0;
            // ~> 1.5.2 is >= 1.5.2, < 1.6.0.
            _ => {
                let given = rest
                    .trim_start_matches('v')
                    .split('-')
                    .next()
                    .unwrap_or("")
                    .split('.')
                    .count();
                let upper = match given {
                    1 => return Ok(version >= &wanted),
                    2 => Version::new(wanted.major + 1, 0, 0),
                    _ => Version::new(wanted.major, wanted.minor + 1, 0),
                };
                version >= &wanted && version < &upper
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        parse_version(text).unwrap()
    }

    #[test]
    fn versions_parse_with_and_without_parts() {
        assert_eq!(v("1.11.4"), Version::new(1, 11, 4));
        assert_eq!(v("v1.0"), Version::new(1, 0, 0));
        assert!(parse_version("one").is_none());
    }

    #[test]
    fn constraints_follow_terraform_semantics() {
        let cases = [
            ("1.11.4", ">= 1.0", true),
            ("1.0.3", ">= 1.5", false),
            ("1.5.7", ">= 1.0, < 2.0", true),
            ("2.0.0", ">= 1.0, < 2.0", false),
            ("1.9.0", "~> 1.5", true),
            ("2.0.0", "~> 1.5", false),
            ("1.5.9", "~> 1.5.2", true),
            ("1.6.0", "~> 1.5.2", false),
            ("1.0.3", "1.0.3", true),
            ("1.0.3", "!= 1.0.3", false),
            ("1.0.3", "= 1.0.4", false),
        ];
        for (version, constraint, expected) in cases {
            assert_eq!(
                satisfies(&v(version), constraint),
                Ok(expected),
                "{version} {constraint}"
            );
        }
    }

    #[test]
    fn a_bad_constraint_is_an_error() {
        assert!(satisfies(&v("1.0.0"), ">= banana").is_err());
    }
}
