//! insta snapshots of what a user sees (help texts, human output, every JSON document),
//! so that a change of wording or shape is a reviewed diff of a `.snap` file.
//!
//! A snapshot is stored in `snapshots/` beside the test file that takes it (named after
//! what it shows, e.g. `json-status.snap`), with the command line as its description.
//! What differs from run to run is replaced before comparing: the project's temporary
//! path, times and time stamps, durations and ages, hashes, lineages and lock IDs,
//! pids, the user and host, and (with the real terraform) its version and the state's
//! size in bytes. A filter is narrow on purpose: it replaces a value, never a shape.
//!
//! To add or update snapshots: `INSTA_UPDATE=always cargo test …`, then read every
//! changed `.snap` file (`git diff tests/*/snapshots`) before committing it. In CI
//! (`CI` set) a missing or different snapshot fails the test.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::{Project, output_text};

pub struct Snapshots {
    settings: insta::Settings,
}

impl Snapshots {
    /// Snapshots of output produced in `project`, with every filter below.
    #[track_caller]
    pub fn new(project: &Project) -> Snapshots {
        let mut snapshots = Snapshots::plain(std::panic::Location::caller().file());
        snapshots.literal(&project.path().display().to_string(), "[PROJECT]");
        if let Ok(real) = project.path().canonicalize() {
            snapshots.literal(&real.display().to_string(), "[PROJECT]");
        }
        for (regex, replacement) in [
            // 2026-11-22T10:15:00.123Z, 2026-11-22T10:15:00+00:00
            (
                r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                "[TIME]",
            ),
            // 2026-11-22 10:15:00 (tables), with terraform's ` +0000 UTC` when it has it
            (
                r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}( [+-]\d{4} UTC)?",
                "[TIME]",
            ),
            // backup and log names: 20261122-101500, -1 for a second one in that second
            (r"\b\d{8}-\d{6}(-\d+)?\b", "[STAMP]"),
            (r"\b[0-9a-f]{64}\b", "[SHA256]"),
            (r"\b[0-9a-f]{40}\b", "[COMMIT]"),
            (
                r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
                "[UUID]",
            ),
            (r#""seconds": \d+(\.\d+)?"#, r#""seconds": [SECONDS]"#),
            (r#""age_seconds": \d+"#, r#""age_seconds": [AGE]"#),
            // human durations and ages: (0.6s), in 1.2s, 3s ago, 2m ago
            (r"\b\d+(\.\d+)?(ms|s|m|h|d)\b", "[DURATION]"),
            (r"\bpid \d+", "pid [PID]"),
        ] {
            snapshots.filter(regex, replacement);
        }
        let (user, host) = (whoami(), hostname());
        snapshots.literal(&format!("{user}@{host}"), "[USER]@[HOST]");
        snapshots.literal(&format!(r#""who": "{user}""#), r#""who": "[USER]""#);
        snapshots.literal(&format!(r#""host": "{host}""#), r#""host": "[HOST]""#);
        snapshots
    }

    /// Snapshots of text nothing varies in (help texts): no filters.
    #[track_caller]
    pub fn unfiltered() -> Snapshots {
        Snapshots::plain(std::panic::Location::caller().file())
    }

    fn plain(caller: &str) -> Snapshots {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(dir_of(caller));
        settings.set_input_file(caller);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        Snapshots { settings }
    }

    /// Replaces what `regex` matches.
    pub fn filter(&mut self, regex: &str, replacement: &str) -> &mut Snapshots {
        self.settings.add_filter(regex, replacement);
        self
    }

    /// Replaces `text` wherever it stands.
    pub fn literal(&mut self, text: &str, replacement: &str) -> &mut Snapshots {
        let escaped: String = text
            .chars()
            .flat_map(|c| {
                let meta = "\\.+*?()|[]{}^$#&-~".contains(c);
                meta.then_some('\\').into_iter().chain([c])
            })
            .collect();
        self.filter(&escaped, replacement)
    }

    /// Output of the real terraform `bin`: its version, and state sizes (which depend on
    /// it), are replaced too.
    pub fn real_terraform(&mut self, bin: &Path) -> &mut Snapshots {
        let version = super::terraform_version(bin).unwrap_or_else(|why| panic!("{why}"));
        self.literal(&version, "[TF_VERSION]")
            .filter(r#""bytes": \d+"#, r#""bytes": [BYTES]"#)
            .filter(r"\b\d+(\.\d+)? (B|KiB|MiB)\b", "[SIZE]")
    }

    /// `text`, printed by `tfenv <args>`, is what snapshot `name` holds.
    pub fn text(&self, name: &str, args: &[&str], text: &str) {
        let mut settings = self.settings.clone();
        settings.set_description(format!("tfenv {}", args.join(" ")));
        settings.bind(|| insta::assert_snapshot!(name, text));
    }

    /// What `tfenv <args>` printed on stdout is what snapshot `name` holds.
    pub fn stdout(&self, name: &str, args: &[&str], output: &Output) {
        let text = String::from_utf8(output.stdout.clone()).unwrap_or_else(|_| {
            panic!(
                "`tfenv {}` printed no UTF-8\n{}",
                args.join(" "),
                output_text(output)
            )
        });
        self.text(name, args, &text);
    }

    /// `tfenv <args>` printed exactly one JSON document on stdout, which is what snapshot
    /// `name` holds, as printed (the order of its keys included).
    pub fn json(&self, name: &str, args: &[&str], output: &Output) {
        if let Err(err) = serde_json::from_slice::<serde_json::Value>(&output.stdout) {
            panic!(
                "`tfenv {}` did not print one JSON document ({err})\n{}",
                args.join(" "),
                output_text(output)
            );
        }
        self.stdout(name, args, output);
    }
}

/// The snapshots folder of the test file `caller` (as `file!()` names it).
pub fn dir_of(caller: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(caller)
        .parent()
        .unwrap()
        .join("snapshots")
}

/// The user name tfenv records (`who`), found the way it finds it.
fn whoami() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".to_string())
}
