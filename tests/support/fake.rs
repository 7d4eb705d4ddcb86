//! The one fake terraform: a bash script that answers each subcommand the way a working
//! terraform does, unless the test gives a subcommand another body (a failure, garbage,
//! a hang). Only for faults the real terraform cannot produce on demand.
//!
//! Every call appends its arguments, raw, to `calls.log` and its TF_DATA_DIR to
//! `data-dirs.log` in the project. In a body, `$@` are the call's arguments and
//! `red TEXT` prints TEXT to stderr in ANSI red unless the call has `-no-color`, as
//! terraform does.

use std::path::PathBuf;

use super::Project;

/// What `show -json` of the fake's plan prints: one resource to create.
pub const PLAN_JSON: &str = r#"{"format_version":"1.2","resource_changes":[{"address":"terraform_data.a","change":{"actions":["create"]}}],"output_changes":{}}"#;

/// What `state pull` prints until something was pushed (unless the test gives another).
pub const STATE: &str = r#"{"version":4,"terraform_version":"1.11.4","serial":3,"lineage":"abc","outputs":{},"resources":[]}"#;

/// The part of `plan`'s body that writes the plan file named by `-out=` and, under
/// `-detailed-exitcode`, exits 2 (the plan has changes) as terraform does: a `plan` body
/// of a test that should still leave a plan ends with it.
pub const WRITE_PLAN: &str = r#"for a in "$@"; do case "$a" in -out=*) echo plan > "${a#-out=}" ;; esac; done
        case " $* " in *" -detailed-exitcode "*) exit 2 ;; esac"#;

/// The message a successful init prints.
pub const INIT_OK: &str =
    r#"mkdir -p "$TF_DATA_DIR"; echo "Terraform has been successfully initialized!""#;

/// A fake terraform, built up and then installed into a project.
pub struct FakeTerraform {
    version: String,
    state: String,
    /// Subcommand and the shell body it runs, in `case` order.
    cases: Vec<(String, String)>,
    /// What a subcommand without a case runs.
    fallback: String,
    at: String,
}

impl FakeTerraform {
    /// A terraform 1.11.4 that works: `init` makes the data dir, `plan` writes the plan
    /// file, `show` prints `PLAN_JSON`, `apply` succeeds, `output` prints one output,
    /// `state pull` prints `STATE` (or what `state push` pushed last), `workspace` lists
    /// `default`, `force-unlock` succeeds. Any other subcommand is unexpected (exit 99).
    pub fn working() -> FakeTerraform {
        FakeTerraform::empty()
            .on("init", INIT_OK)
            .on("plan", WRITE_PLAN)
            .on("show", format!("echo '{PLAN_JSON}'"))
            .on("apply", "true")
            .on(
                "output",
                r#"echo '{"name":{"sensitive":false,"type":"string","value":"new"}}'"#,
            )
            .on(
                "state",
                r#"case "$2" in
    pull) if [ -f "$FAKE_DIR/pushed.tfstate" ]; then cat "$FAKE_DIR/pushed.tfstate"; else echo "$FAKE_STATE"; fi ;;
    push) for a in "$@"; do f="$a"; done; cp "$f" "$FAKE_DIR/pushed.tfstate" ;;
  esac"#,
            )
            .on("workspace", "echo '* default'")
            .on(
                "force-unlock",
                "echo 'Terraform state has been successfully unlocked!'",
            )
    }

    /// A terraform that answers only `version`: every other call is unexpected.
    pub fn empty() -> FakeTerraform {
        FakeTerraform {
            version: "1.11.4".to_string(),
            state: STATE.to_string(),
            cases: Vec::new(),
            fallback: r#"echo "unexpected: $*" >&2; exit 99"#.to_string(),
            at: "bin/terraform".to_string(),
        }
    }

    /// A terraform that fails whatever it is asked (after logging the call).
    pub fn failing() -> FakeTerraform {
        FakeTerraform::empty()
            .on("version", "exit 1")
            .fallback("exit 1")
    }

    /// The version `version -json` reports.
    pub fn version(mut self, version: &str) -> FakeTerraform {
        self.version = version.to_string();
        self
    }

    /// What `state pull` prints until something was pushed (default `STATE`); one line
    /// of JSON without `'`.
    pub fn state(mut self, state: &str) -> FakeTerraform {
        assert!(!state.contains('\'') && !state.contains('\n'), "{state}");
        self.state = state.to_string();
        self
    }

    /// `subcommand` runs `body` (replacing what it ran before).
    pub fn on(mut self, subcommand: &str, body: impl Into<String>) -> FakeTerraform {
        let body = body.into();
        match self.cases.iter_mut().find(|(c, _)| c == subcommand) {
            Some(case) => case.1 = body,
            None => self.cases.push((subcommand.to_string(), body)),
        }
        self
    }

    /// What a subcommand without its own body runs (default: "unexpected", exit 99).
    pub fn fallback(mut self, body: impl Into<String>) -> FakeTerraform {
        self.fallback = body.into();
        self
    }

    /// Where in the project the script goes (default `bin/terraform`).
    pub fn at(mut self, rel: &str) -> FakeTerraform {
        self.at = rel.to_string();
        self
    }

    /// Writes the script into `project`; its path, for `--terraform`.
    pub fn install(self, project: &Project) -> PathBuf {
        let version = format!(
            r#"echo '{{"terraform_version":"{}","platform":"linux_amd64"}}'"#,
            self.version
        );
        let mut cases = String::new();
        if !self.cases.iter().any(|(c, _)| c == "version") {
            cases.push_str(&format!("  version) {version} ;;\n"));
        }
        for (command, body) in &self.cases {
            cases.push_str(&format!("  {command}) {body} ;;\n"));
        }
        project.script(
            &self.at,
            &format!(
                r#"FAKE_DIR='{dir}'
FAKE_STATE='{state}'
printf '%s\n' "$*" >> "$FAKE_DIR/calls.log"
printf '%s\n' "$TF_DATA_DIR" >> "$FAKE_DIR/data-dirs.log"
nc=0; for a in "$@"; do [ "$a" = -no-color ] && nc=1; done
red() {{ if [ $nc = 1 ]; then printf '%s\n' "$1"; else printf '\033[31m%s\033[0m\n' "$1"; fi >&2; }}
case "$1" in
{cases}  *) {fallback} ;;
esac"#,
                dir = project.path().display(),
                state = self.state,
                fallback = self.fallback,
            ),
        )
    }
}
