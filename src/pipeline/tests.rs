//! The pipeline's modes on a scripted runner and scripted answers: which terraform calls
//! each mode makes, what a confirmation answer leads to, what is backed up and recorded.

use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::artifacts::history;
use crate::confirm::ScriptedPrompter;
use crate::output::{Format, Printer};
use crate::process::Interrupts;
use crate::process::scripted::{Reply, ScriptedRunner};
use crate::settings::{Colors, GlobalSettings, OutputSettings};

const VERSION_JSON: &str = r#"{"terraform_version":"1.11.4"}"#;
const CREATES: &str = r#"{"format_version":"1.2","resource_changes":[{"address":"terraform_data.a","change":{"actions":["create"]}}],"output_changes":{"name":{"actions":["update"]}}}"#;
const DESTROYS: &str = r#"{"format_version":"1.2","resource_changes":[{"address":"terraform_data.a","change":{"actions":["delete"]}}]}"#;
const STATE: &str = r#"{"version":4,"terraform_version":"1.11.4","serial":3,"lineage":"abc","outputs":{"name":{"value":"new","type":"string"},"token":{"value":"hunter2","type":"string","sensitive":true}},"resources":[]}"#;

/// A project with `dev` and `production` on the local backend (state in state/<env>/),
/// and a terraform that is a script, so that its version is asked every run.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    runner: Arc<ScriptedRunner>,
    prompter: Arc<ScriptedPrompter>,
}

impl Fixture {
    fn new(runner: ScriptedRunner, answers: &[Option<&'static str>]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(
            root.join("tfenv.toml"),
            "[project]\nterraform = \"bin/terraform\"\n\
             [environments.dev]\nbackend_config = \"dev.backend.conf\"\n\
             [environments.production]\nbackend_config = \"production.backend.conf\"\n",
        )
        .unwrap();
        std::fs::write(
            root.join("main.tf"),
            "terraform {\n  backend \"local\" {}\n}\n",
        )
        .unwrap();
        for env in ["dev", "production"] {
            std::fs::write(
                root.join(format!("{env}.backend.conf")),
                format!("path = \"state/{env}/terraform.tfstate\"\n"),
            )
            .unwrap();
        }
        std::fs::create_dir(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/terraform"), "#!/bin/sh\nexit 99\n").unwrap();
        Fixture {
            _dir: dir,
            root,
            runner: Arc::new(runner),
            prompter: Arc::new(ScriptedPrompter::new(answers)),
        }
    }

    /// The state terraform leaves after an apply, for the outputs to be read from.
    fn with_state(self, env: &str) -> Fixture {
        let dir = self.root.join("state").join(env);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("terraform.tfstate"), STATE).unwrap();
        self
    }

    async fn run(&self, env: &str, mode: Mode, interactive: bool) -> anyhow::Result<Exit> {
        // Settings as the command line `-C <root>` resolves them, without colour.
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "tfenv".as_ref(),
            "-C".as_ref(),
            self.root.as_os_str(),
            "envs".as_ref(),
        ])
        .unwrap();
        let output = OutputSettings {
            format: Format::Human,
            verbosity: 0,
            quiet: true,
            colors: Colors {
                stdout: false,
                stderr: false,
            },
        };
        let mut settings = GlobalSettings::resolve(&cli.global, output).unwrap();
        settings.interactive = interactive;
        let mut ctx = Context::new(
            settings,
            Printer::new(Format::Human, true, false, false),
            self.runner.clone(),
            Interrupts::default(),
        );
        ctx.prompter = self.prompter.clone();
        let req = Request {
            env: env.to_string(),
            mode,
            log: false,
            lock_wait: crate::settings::LockWait::default(),
            ledger_timeout: crate::ledger::DEFAULT_TIMEOUT,
            summary: Vec::new(),
        };
        run(&ctx, req).await
    }

    /// The terraform subcommands that ran, in order.
    fn terraform_calls(&self) -> Vec<String> {
        self.runner
            .calls()
            .iter()
            .filter(|call| call.program_name() == "terraform")
            .map(|call| call.args[0].to_string_lossy().into_owned())
            .collect()
    }

    /// The files in `backups/` (partial pulls included), but the manifest's lock file.
    fn backups(&self, env: &str) -> Vec<String> {
        let mut names: Vec<String> =
            match std::fs::read_dir(self.root.join("state").join(env).join("backups")) {
                Ok(dir) => dir
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|name| !name.ends_with(".lock"))
                    .collect(),
                Err(_) => Vec::new(),
            };
        names.sort();
        names
    }

    fn last_result(&self, env: &str) -> Option<RunResult> {
        let records = history::read(&self.root.join("state").join(env))
            .unwrap()
            .records;
        records.last().map(|r| r.result.clone())
    }
}

/// What every run that gets as far as a plan starts with: the version, git (a directory
/// that is no repository), the .gitignore check before the first init, init.
fn up_to_init(runner: ScriptedRunner, root_git: bool) -> ScriptedRunner {
    let runner = runner.expect(&["version", "-json"], Reply::ok(VERSION_JSON));
    let runner = match root_git {
        true => runner.expect(
            &["-C"],
            Reply::fail(128, "fatal: not a git repository (or any parent)"),
        ),
        false => runner,
    };
    runner
        .expect(&["-C"], Reply::fail(128, "fatal: not a git repository"))
        .expect(&["init", "-input=false"], Reply::ok(""))
}

fn plan_reply(code: i32) -> Reply {
    Reply {
        code,
        stdout: Vec::new(),
        stderr: Vec::new(),
    }
}

fn deploy(yes: bool, confirm: Option<&str>, interactive: bool) -> Mode {
    Mode::Deploy(Apply {
        flags: Flags {
            yes,
            confirm: confirm.map(str::to_string),
            allow_destroy: false,
            interactive,
        },
        allow_dirty: false,
        include_sensitive: false,
        skip_promotion_check: None,
    })
}

#[tokio::test]
async fn a_dev_deploy_answered_yes_applies_and_takes_its_outputs_from_the_state() {
    let runner = up_to_init(ScriptedRunner::default(), true)
        .expect(&["plan"], plan_reply(2))
        .expect(&["show", "-json"], Reply::ok(CREATES))
        .expect(&["apply"], Reply::ok(""));
    let fx = Fixture::new(runner, &[Some("y")]).with_state("dev");
    let exit = fx
        .run("dev", deploy(false, None, true), true)
        .await
        .unwrap();
    assert_eq!(exit, Exit::Success);
    assert_eq!(fx.prompter.asked(), 1);
    // No `output -json`: the local state has the outputs.
    assert_eq!(
        fx.terraform_calls(),
        ["version", "init", "plan", "show", "apply"]
    );
    assert_eq!(fx.runner.remaining(), 0);
    let outputs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.root.join("state/dev/outputs.json")).unwrap())
            .unwrap();
    assert_eq!(
        outputs,
        serde_json::json!({
            "name": {"sensitive": false, "type": "string", "value": "new"},
            "token": {"sensitive": true, "type": "string", "value": "<sensitive>"}
        })
    );
    assert_eq!(fx.last_result("dev"), Some(RunResult::Applied));
}

#[tokio::test]
async fn a_wrong_answer_or_no_answer_refuses_and_applies_nothing() {
    for answer in [Some("n"), None] {
        let runner = up_to_init(ScriptedRunner::default(), true)
            .expect(&["plan"], plan_reply(2))
            .expect(&["show", "-json"], Reply::ok(CREATES));
        let fx = Fixture::new(runner, &[answer]);
        let err = fx
            .run("dev", deploy(false, None, true), true)
            .await
            .unwrap_err();
        assert_eq!(error::exit_for(&err), Exit::Refused, "{answer:?}: {err:#}");
        assert_eq!(fx.terraform_calls(), ["version", "init", "plan", "show"]);
        assert_eq!(fx.last_result("dev"), Some(RunResult::Refused));
    }
}

#[tokio::test]
async fn a_plan_without_changes_reads_no_plan_and_records_nothing() {
    // A plan asks no git: it neither records a commit nor needs a clean tree.
    let runner = up_to_init(ScriptedRunner::default(), false)
        .expect(&["plan", "-no-color", "-input=false"], plan_reply(0));
    let fx = Fixture::new(runner, &[]);
    let mode = Mode::Plan {
        detailed_exitcode: true,
        out: None,
        encrypt: None,
        publish: false,
    };
    assert_eq!(fx.run("dev", mode, false).await.unwrap(), Exit::Success);
    assert_eq!(fx.terraform_calls(), ["version", "init", "plan"]);
    let plan = &fx.runner.calls()[3];
    assert!(
        plan.args.iter().any(|a| a == "-detailed-exitcode"),
        "{}",
        plan.display()
    );
    assert_eq!(fx.last_result("dev"), None);
}

#[tokio::test]
async fn plan_with_detailed_exitcode_exits_3_on_changes() {
    let runner = up_to_init(ScriptedRunner::default(), false)
        .expect(&["plan"], plan_reply(2))
        .expect(&["show", "-json"], Reply::ok(CREATES));
    let fx = Fixture::new(runner, &[]);
    let mode = Mode::Plan {
        detailed_exitcode: true,
        out: None,
        encrypt: None,
        publish: false,
    };
    assert_eq!(fx.run("dev", mode, false).await.unwrap(), Exit::Changes);
    assert_eq!(fx.terraform_calls(), ["version", "init", "plan", "show"]);
}

#[tokio::test]
async fn a_refresh_reads_its_plan_whatever_terraform_says() {
    let runner = up_to_init(ScriptedRunner::default(), false)
        .expect(&["plan"], plan_reply(0))
        .expect(
            &["show", "-json"],
            Reply::ok(r#"{"resource_drift":[{"address":"terraform_data.a","change":{"actions":["update"]}}]}"#),
        );
    let fx = Fixture::new(runner, &[]);
    let exit = fx.run("dev", Mode::Refresh(None), false).await.unwrap();
    assert_eq!(exit, Exit::Success);
    assert_eq!(fx.terraform_calls(), ["version", "init", "plan", "show"]);
    let plan = &fx.runner.calls()[3];
    assert!(plan.args.iter().any(|a| a == "-refresh-only"));
    assert!(!plan.args.iter().any(|a| a == "-detailed-exitcode"));
}

#[tokio::test]
async fn a_production_deploy_refused_for_its_destroys_leaves_no_backup() {
    // The flags could approve a plan without destroys, so the state is pulled while the
    // plan is read; this one destroys, the flags do not allow it: the pull is dropped.
    let runner = up_to_init(ScriptedRunner::default(), true)
        .expect(&["plan"], plan_reply(2))
        .expect(&["show", "-json"], Reply::ok(DESTROYS))
        .expect(&["state", "pull"], Reply::ok(STATE));
    let fx = Fixture::new(runner, &[]);
    let err = fx
        .run("production", deploy(true, Some("production"), false), false)
        .await
        .unwrap_err();
    assert_eq!(error::exit_for(&err), Exit::Refused, "{err:#}");
    assert!(
        format!("{err:#}").contains("destroys 1 resource(s)"),
        "{err:#}"
    );
    assert_eq!(
        fx.terraform_calls(),
        ["version", "init", "plan", "show", "state"]
    );
    assert_eq!(fx.backups("production"), Vec::<String>::new());
    assert_eq!(fx.last_result("production"), Some(RunResult::Refused));
}

#[tokio::test]
async fn a_production_deploy_without_its_flags_is_refused_before_init_and_plan() {
    let runner = ScriptedRunner::default()
        .expect(&["version", "-json"], Reply::ok(VERSION_JSON))
        .expect(&["-C"], Reply::fail(128, "fatal: not a git repository"));
    let fx = Fixture::new(runner, &[]);
    let err = fx
        .run("production", deploy(true, None, false), false)
        .await
        .unwrap_err();
    assert_eq!(error::exit_for(&err), Exit::Refused, "{err:#}");
    assert_eq!(fx.terraform_calls(), ["version"]);
    assert!(fx.backups("production").is_empty());
    assert_eq!(fx.last_result("production"), Some(RunResult::Refused));
}

#[tokio::test]
async fn a_production_deploy_keeps_a_verified_backup_before_applying() {
    let runner = up_to_init(ScriptedRunner::default(), true)
        .expect(&["plan"], plan_reply(2))
        .expect(&["show", "-json"], Reply::ok(CREATES))
        .expect(&["state", "pull"], Reply::ok(STATE))
        .expect(&["apply"], Reply::ok(""));
    let fx = Fixture::new(runner, &[]).with_state("production");
    let exit = fx
        .run("production", deploy(true, Some("production"), false), false)
        .await
        .unwrap();
    assert_eq!(exit, Exit::Success);
    let backups = fx.backups("production");
    assert_eq!(backups.len(), 2, "a backup and its manifest: {backups:?}");
    assert_eq!(backups[0], "MANIFEST.jsonl");
    let records = history::read(&fx.root.join("state/production"))
        .unwrap()
        .records;
    let record = records.last().unwrap();
    assert_eq!(record.result, RunResult::Applied);
    assert!(
        backups.contains(record.backup.as_ref().unwrap()),
        "{backups:?}"
    );
    assert_eq!(fx.runner.remaining(), 0);
}

#[test]
fn results_are_written_as_history_has_always_spelled_them() {
    for (result, text) in [
        (RunResult::Applied, "applied"),
        (RunResult::NoChanges, "no-changes"),
        (RunResult::Planned, "planned"),
        (RunResult::Refused, "refused"),
        (RunResult::Failed, "failed"),
        (RunResult::Locked, "locked"),
        (RunResult::Interrupted, "interrupted"),
        (RunResult::Killed, "killed"),
        (RunResult::InSync, "in-sync"),
        (RunResult::Drifted, "drifted"),
    ] {
        assert_eq!(serde_json::to_value(&result).unwrap(), text);
        assert_eq!(
            serde_json::from_value::<RunResult>(text.into()).unwrap(),
            result
        );
        assert_eq!(result.to_string(), text);
    }
    // A result a newer tfenv wrote is kept as it was written.
    let other: RunResult = serde_json::from_value("superseded".into()).unwrap();
    assert_eq!(other, RunResult::Other("superseded".into()));
    assert_eq!(serde_json::to_value(&other).unwrap(), "superseded");
}
