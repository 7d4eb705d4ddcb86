//! The deploy pipeline of DESIGN.md §5, shared by `plan`, `deploy` and `refresh`: lock
//! the environment, init if needed, plan into a file, summarize, back up, confirm by
//! tier, apply exactly that plan, write outputs and history. A `Mode` says which of the
//! named steps (`steps.rs`) a run takes; a new mode is a new variant and its steps.
//! May use: context, artifacts, terraform, backend, git, confirm and what lies below.

pub mod bundle;
mod policy;
mod promotion;
pub mod published;
mod recorded;
mod steps;
#[cfg(test)]
mod tests;
mod wait;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

pub use crate::artifacts::history::RunResult;
pub use bundle::Bundle;
pub use recorded::RecordedRun;
pub use wait::wait_for_state_lock;

use crate::Context;
use crate::artifacts::backups::Backup;
use crate::backend::{Backend, Backends};
use crate::confirm::Flags;
use crate::error;
use crate::exit::Exit;
use crate::git;
use crate::hooks::HookEvent;
use crate::project::{Environment, Project, Tier};
use crate::settings::LockWait;
use crate::summary;
use crate::terraform::plan::PlanSummary;
use crate::terraform::{RunLog, Terraform};

/// What a run does.
#[derive(Clone, Debug)]
pub enum Mode {
    /// `tfenv plan`: up to the summary; nothing is applied or recorded.
    /// `detailed_exitcode`: exit 3 when the plan has changes. `out`: keep the plan as a
    /// plan bundle in that folder (`--out`; one folder per environment).
    Plan {
        detailed_exitcode: bool,
        out: Option<PathBuf>,
        /// `--encrypt`: the bundle's plan files are encrypted (with `out` or `publish`).
        encrypt: Option<crate::settings::Sealing>,
        /// `--publish`: the bundle (in `out`, or in a private temporary folder under
        /// `state/<env>/`) is uploaded to the shared ledger.
        publish: bool,
    },
    /// `tfenv deploy`: plan, confirm, back up, apply, record.
    Deploy(Apply),
    /// `tfenv refresh`: the deploy's steps around `plan -refresh-only`. Without `Apply`
    /// (`--dry-run`) it stops after the summary, like `Plan`.
    Refresh(Option<Apply>),
    // Wave 2 plugs in here (DESIGN.md §10, §11), each a variant and the steps it takes:
    // - `Drift`: init, plan (-refresh-only and a normal plan), summarize, write
    //   drift.json, exit 3 on drift; never confirm nor apply.
    /// `tfenv deploy --plan DIR`: verify the bundle in place of the plan, then back up,
    /// confirm, apply the bundle's plan file, outputs and history as `Deploy` does.
    ApplyBundle(Apply, Box<Bundle>),
}

/// How a run that applies is approved, and what it keeps.
#[derive(Clone, Debug, Default)]
pub struct Apply {
    pub flags: Flags,
    /// Production only: deploy from a git tree with uncommitted changes.
    pub allow_dirty: bool,
    /// Keep sensitive values in outputs.json.
    pub include_sensitive: bool,
    /// `deploy --skip-promotion-check`: why `promote_from`'s check is skipped.
    pub skip_promotion_check: Option<String>,
}

impl Mode {
    /// The command, as history and the JSON document name it.
    pub fn command(&self) -> &'static str {
        match self {
            Mode::Plan { .. } => "plan",
            Mode::Deploy(_) | Mode::ApplyBundle(..) => "deploy",
            Mode::Refresh(_) => "refresh",
        }
    }

    /// The plan bundle's folder this run writes or applies: tfenv's own, never a change
    /// that makes the git tree dirty.
    fn bundle_dir(&self) -> Option<&Path> {
        match self {
            Mode::Plan { out, .. } => out.as_deref(),
            Mode::ApplyBundle(_, bundle) => Some(&bundle.dir),
            Mode::Deploy(_) | Mode::Refresh(_) => None,
        }
    }

    /// How the run applies its plan; `None` for a run that stops after the summary.
    pub fn apply(&self) -> Option<&Apply> {
        match self {
            Mode::Deploy(apply) | Mode::Refresh(Some(apply)) | Mode::ApplyBundle(apply, _) => {
                Some(apply)
            }
            Mode::Plan { .. } | Mode::Refresh(None) => None,
        }
    }

    /// A plan that writes a bundle (`--out` or `--publish`): it records the commit.
    fn writes_bundle(&self) -> bool {
        matches!(
            self,
            Mode::Plan { out: Some(_), .. } | Mode::Plan { publish: true, .. }
        )
    }

    fn refresh_only(&self) -> bool {
        matches!(self, Mode::Refresh(_))
    }
}

/// What the user asked for.
pub struct Request {
    pub env: String,
    pub mode: Mode,
    /// Keep terraform's full output in `state/<env>/logs/` (always for production).
    pub log: bool,
    /// How long a lock someone else holds is waited for (`--lock-timeout`).
    pub lock_wait: LockWait,
    /// Each read or upload of the shared ledger (`--timeout` of deploy and refresh).
    pub ledger_timeout: std::time::Duration,
    /// Where the run's Markdown job summary is appended (`--summary`, `GITHUB_STEP_SUMMARY`).
    pub summary: Vec<PathBuf>,
}

/// The one JSON document a pipeline run prints; one entry of `plan --all`'s.
#[derive(Serialize)]
pub struct Report {
    pub environment: String,
    pub tier: Tier,
    pub command: &'static str,
    pub result: RunResult,
    pub plan: Option<PlanSummary>,
    pub backup: Option<Backup>,
    pub outputs_written: Option<bool>,
    pub log: Option<String>,
    /// `plan --out` and `deploy --plan`: the bundle written or applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<bundle::BundleRef>,
    /// `plan --publish`: the bundle's ID and where it is in the shared ledger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<published::Published>,
    /// `deploy` of an environment with `promote_from` whose check passed: the source
    /// environment and the commit it deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<crate::artifacts::history::PromotedFrom>,
    /// `deploy --skip-promotion-check`: the reason given (the check was skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_check_skipped: Option<String>,
    /// `ledger = "backend"`: what this run uploaded to the shared ledger (its record, its
    /// backup, anything still pending from before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<crate::ledger::Shared>,
    pub seconds: f64,
    /// Steps after a successful apply that failed (outputs, pruning, history): the
    /// change stands, each is said here and on stderr.
    pub warnings: Vec<String>,
    /// Why the run failed, as the error document of a failed command says it. Only an
    /// entry of a document listing several runs has it (one run that fails prints the
    /// error document itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<error::ErrorReport>,
}

impl Report {
    /// The entry of a run that failed with `err` after `seconds`.
    pub fn failed(env: &Environment, mode: &Mode, err: &anyhow::Error, seconds: f64) -> Report {
        Report {
            environment: env.name.clone(),
            tier: env.tier,
            command: mode.command(),
            result: RunResult::of_error(error::exit_for(err)),
            plan: None,
            backup: None,
            outputs_written: None,
            log: None,
            bundle: None,
            published: None,
            promoted_from: None,
            promotion_check_skipped: None,
            shared: None,
            seconds,
            warnings: Vec::new(),
            error: Some(error::ErrorReport::of(err)),
        }
    }
}

/// What a run that failed knew when it failed, as its history record has it: the plan's
/// summary, the backup taken before the apply, terraform's log.
#[derive(Clone, Default)]
pub struct Known {
    pub plan: Option<PlanSummary>,
    pub backup: Option<Backup>,
    pub log: Option<String>,
}

impl Report {
    /// The failed run's entry with what it knew ([`Known`]).
    pub fn knowing(mut self, known: Known) -> Report {
        self.plan = known.plan;
        self.backup = known.backup;
        self.log = known.log;
        self
    }
}

/// A run that did not fail: its report and the exit code it asks for.
pub struct Ran {
    pub report: Report,
    pub exit: Exit,
}

/// How the steps ended, when they did not fail.
enum Outcome {
    /// The plan found nothing to do.
    NoChanges,
    /// A run that stops after the summary found changes; `exit` says it (`plan
    /// --detailed-exitcode`: 3) or not.
    Planned { exit: Exit },
    /// The plan was applied; whether outputs.json was written after it.
    Applied { outputs_written: bool },
}

impl Outcome {
    fn result(&self) -> RunResult {
        match self {
            Outcome::NoChanges => RunResult::NoChanges,
            Outcome::Planned { .. } => RunResult::Planned,
            Outcome::Applied { .. } => RunResult::Applied,
        }
    }

    fn exit(&self) -> Exit {
        match self {
            Outcome::Planned { exit } => *exit,
            Outcome::NoChanges | Outcome::Applied { .. } => Exit::Success,
        }
    }

    fn outputs_written(&self) -> Option<bool> {
        match self {
            Outcome::Applied { outputs_written } => Some(*outputs_written),
            Outcome::NoChanges | Outcome::Planned { .. } => None,
        }
    }
}

/// One run: what its steps work with, resolved before they begin, and its record.
struct Run<'a> {
    ctx: &'a Context,
    mode: &'a Mode,
    project: &'a Project,
    env: &'a Environment,
    backend: &'a Backend,
    tf: &'a Terraform,
    /// `--log` was given.
    wants_log: bool,
    /// terraform's full output for this run (`--log`, and always for production).
    log: Option<RunLog>,
    /// How long a held state lock is waited for before each terraform call that takes it.
    lock_wait: LockWait,
    recorded: RecordedRun,
    /// The plan bundle written (`plan --out`) or applied (`deploy --plan`).
    bundle: Option<bundle::BundleRef>,
    /// The plan bundle published (`plan --publish`).
    published: Option<published::Published>,
    /// Each read or upload of the shared ledger.
    ledger_timeout: std::time::Duration,
    /// A shared ledger did not answer within `ledger_timeout` earlier in the run (the
    /// promotion check's read): its storage (`gs://bucket`, see [`storage_of`]) and why.
    /// The upload at the end does not wait on the same storage again.
    store_dead: Option<(String, String)>,
}

/// Runs the request's steps and prints its result: its JSON document, or its lines.
/// Then, for a run that applies (deploy, refresh, `deploy --plan`), the project's hook:
/// `on_deploy` with that document when it applied or found no changes, `on_failure` with
/// the run's entry (`Report::failed`) when it failed or was interrupted — not when it
/// was refused (a confirmation, the policy, a gate) or never started (a usage or
/// configuration error). A hook never changes the exit code.
pub async fn run(ctx: &Context, req: Request) -> anyhow::Result<Exit> {
    let hooked = req
        .mode
        .apply()
        .is_some()
        .then(|| (req.env.clone(), req.mode.clone()));
    let started = Instant::now();
    let files = req.summary.clone();
    let command = req.mode.command();
    let (result, row, known) = execute_planned(ctx, req).await;
    if !files.is_empty() {
        write_summary(ctx, &files, &summary::runs(command, &[row]));
    }
    let ran = match result {
        Ok(ran) => ran,
        Err(err) => {
            if let Some((env, mode)) = &hooked {
                failed_run(ctx, env, mode, &err, started, known).await;
            }
            return Err(err);
        }
    };
    if ctx.printer.is_json() {
        ctx.printer.json(&ran.report)?;
    } else {
        print_outcome(ctx, &ran.report);
    }
    if hooked.is_some()
        && let Ok(project) = Project::load(&ctx.settings.cwd, ctx.settings.config.as_deref())
    {
        let report = &ran.report;
        crate::hooks::run(
            ctx,
            &project,
            HookEvent::Deploy,
            &report.environment,
            report,
        )
        .await;
    }
    Ok(ran.exit)
}

/// A deploy or refresh that failed (or was interrupted) after it started: its entry as a
/// document listing several runs has it, with what it knew (the plan's summary, the
/// backup, the log: [`Known`]) and the error, is its `--output json` document (the error
/// document's `error` within it) and `on_failure`'s. A refused run, and one whose project
/// or environment could not be resolved, prints the error document and runs no hook.
async fn failed_run(
    ctx: &Context,
    env: &str,
    mode: &Mode,
    err: &anyhow::Error,
    started: Instant,
    known: Known,
) {
    if matches!(error::exit_for(err), Exit::Refused | Exit::Usage) {
        return;
    }
    let Ok(project) = Project::load(&ctx.settings.cwd, ctx.settings.config.as_deref()) else {
        return;
    };
    let Ok(env) = project.environment(env) else {
        return;
    };
    let seconds = crate::output::seconds(started.elapsed());
    let report = Report::failed(env, mode, err, seconds).knowing(known);
    if ctx.printer.is_json() {
        // The top prints no error document after this one.
        let _ = ctx.printer.json(&report);
    }
    crate::hooks::run(ctx, &project, HookEvent::Failure, &env.name, &report).await;
}

/// Runs the request's steps; what they found, for the caller to print (`run`, or `plan`
/// of several environments, which writes one job summary table of all runs: every way a
/// run ends has its row, a refused or failed run with its reason), and what a run that
/// failed knew (the plan's summary of one that failed
/// after planning — a policy refusal, a refused confirmation —, its backup and log), for
/// its entry of a document listing several runs.
pub async fn execute_planned(
    ctx: &Context,
    req: Request,
) -> (anyhow::Result<Ran>, summary::RunRow, Known) {
    let started = Instant::now();
    let mut row = summary::RunRow {
        environment: req.env.clone(),
        ..summary::RunRow::default()
    };
    let mut known = Known::default();
    let result = run_env(ctx, req, started, &mut row, &mut known).await;
    row.seconds = crate::output::seconds(started.elapsed());
    if let Err(err) = &result {
        let exit = error::exit_for(err);
        row.result = RunResult::of_error(exit).as_str().to_string();
        row.error = Some(crate::output::headline(&format!("{err:#}")));
        row.policy_output = policy::refusal_output(err);
    }
    (result, row, known)
}

/// Appends a job summary section to each file (created when missing), in one write:
/// GitHub's summary file is shared by every step of a job, and each adds its own. One
/// that cannot be written is a warning: the run's outcome stands. Opened the way tfenv
/// opens its own files, so a FIFO in its place is refused at once instead of hanging.
pub fn write_summary(ctx: &Context, files: &[PathBuf], markdown: &str) {
    use std::io::Write as _;
    for file in files {
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        let written = crate::files::open_own(file, &options).and_then(|opened| {
            // Created when missing, so not found means its folder is not there.
            let folder = file.parent().filter(|p| !p.as_os_str().is_empty());
            let mut opened = opened.ok_or_else(|| match folder {
                Some(folder) if !folder.is_dir() => {
                    anyhow::anyhow!("its folder `{}` does not exist", folder.display())
                }
                _ => anyhow::anyhow!("the file vanished while it was opened"),
            })?;
            opened.write_all(markdown.as_bytes())?;
            Ok(())
        });
        if let Err(err) = written {
            ctx.printer.warn(&format!(
                "could not write the job summary to `{}`: {err:#}",
                file.display()
            ));
        }
    }
}

/// What a finished (or failed) run tells its job summary row.
fn fill_row(row: &mut summary::RunRow, recorded: &RecordedRun, env: &Environment) {
    let ledger = &recorded.ledger;
    row.changes = ledger.plan.as_ref().map(|plan| summary::Changes {
        add: plan.add,
        change: plan.change,
        destroy: plan.destroy,
        replace: plan.replace,
        drifted: plan.drifted.len() as u64,
        destroyed: plan.destroyed.clone(),
        replaced: plan.replaced.clone(),
    });
    row.backup = ledger.backup.as_ref().map(|b| b.file.clone());
    row.commit = ledger
        .git
        .as_ref()
        .map(|git| (git.commit.chars().take(12).collect(), git.dirty));
    row.promotion = match (&ledger.promotion_check_skipped, &ledger.promoted_from) {
        (Some(reason), _) => env
            .promote_from
            .clone()
            .map(|from| summary::Promotion::Skipped {
                from,
                reason: reason.clone(),
            }),
        (None, Some(promoted)) => Some(summary::Promotion::Passed {
            from: promoted.environment.clone(),
            commit: promoted.commit.chars().take(12).collect(),
        }),
        (None, None) => None,
    };
}

async fn run_env(
    ctx: &Context,
    req: Request,
    started: Instant,
    row: &mut summary::RunRow,
    known: &mut Known,
) -> anyhow::Result<Ran> {
    let project = ctx.project()?;
    let env = project.environment(&req.env)?.clone();
    row.environment = env.name.clone();
    row.tier = Some(env.tier.to_string());
    let backends = Backends::default();
    let backend = backends.resolve(&env, &project)?;
    // Two environments on one state overwrite each other: never run either.
    backends.refuse_shared_state(&env, &backend, &project)?;
    let mode = &req.mode;
    // A new plan into a bundle's folder removes the old bundle first: a run that fails
    // (a lock held, terraform, the policy) leaves no bundle, never an older one.
    if let Mode::Plan { out: Some(dir), .. } = mode
        && bundle::remove_old(dir)?
    {
        ctx.printer.progress(&format!(
            "{}: removed the previous plan bundle in `{}`; the new one is written when the plan succeeds",
            env.name,
            project.show(dir)
        ));
    }
    let records = mode.apply().is_some();
    // The version check and git do not depend on each other: both at once. Only a run
    // that applies asks git (history records the commit; production needs a clean tree),
    // a plan that writes a bundle (which records the commit), and a run with a job
    // summary (which names the commit a plan was made from, too).
    let bundle_dir: Vec<PathBuf> = mode
        .bundle_dir()
        .map(Path::to_path_buf)
        .into_iter()
        .collect();
    let asks_git = records || mode.writes_bundle() || !req.summary.is_empty();
    let (tf, git) = tokio::join!(ctx.terraform(&project), async {
        match asks_git {
            true => {
                Some(git::head_excluding(ctx.runner.as_ref(), &project, &env, &bundle_dir).await)
            }
            false => None,
        }
    });
    let mut tf = tf?;
    tf.lock_timeout = req.lock_wait.timeout;
    let lock = RecordedRun::lock(ctx, &env, mode.command(), records, &req.lock_wait).await?;
    let recorded = RecordedRun::begin(ctx, &env, mode.command(), records, &tf, lock, git)?;
    let mut run = Run {
        ctx,
        mode,
        project: &project,
        env: &env,
        backend: &backend,
        tf: &tf,
        wants_log: req.log,
        log: None,
        lock_wait: req.lock_wait,
        recorded,
        bundle: None,
        published: None,
        ledger_timeout: req.ledger_timeout,
        store_dead: None,
    };
    let result = steps::run(&mut run).await;
    let seconds = crate::output::seconds(started.elapsed());
    let Run {
        mut recorded,
        bundle,
        published,
        ledger_timeout,
        store_dead,
        ..
    } = run;
    fill_row(row, &recorded, &env);
    row.published = published.as_ref().map(|p| p.id.clone());
    let mut ran = match result {
        Ok(outcome) => {
            row.result = outcome.result().as_str().to_string();
            recorded.finish(&ctx.printer, outcome.result(), outcome.exit());
            let ledger = &recorded.ledger;
            Ok(Ran {
                report: Report {
                    environment: env.name.clone(),
                    tier: env.tier,
                    command: mode.command(),
                    result: outcome.result(),
                    plan: ledger.plan.clone(),
                    backup: ledger.backup.clone(),
                    outputs_written: outcome.outputs_written(),
                    log: ledger.log.clone(),
                    bundle,
                    published,
                    promoted_from: ledger.promoted_from.clone(),
                    promotion_check_skipped: ledger.promotion_check_skipped.clone(),
                    shared: None,
                    seconds,
                    warnings: recorded.warnings().to_vec(),
                    error: None,
                },
                exit: outcome.exit(),
            })
        }
        Err(err) => {
            let exit = error::exit_for(&err);
            *known = Known {
                plan: recorded.ledger.plan.clone(),
                backup: recorded.ledger.backup.clone(),
                log: recorded.ledger.log.clone(),
            };
            let err = recorded.fail(&ctx.printer, err);
            if exit == Exit::Interrupted {
                // terraform normally releases its lock when interrupted; after a forced stop
                // it may not have. Say so, with the exact command.
                match backend.read_lock(&env, ctx.runner.as_ref()).await {
                    Ok(lock) if lock.is_held() => ctx.printer.warn(&format!(
                        "the state lock is still held by {}; if no terraform is running, release it with:\n  tfenv unlock {} {}",
                        lock.describe(),
                        env.name,
                        lock.id().unwrap_or("<LOCK_ID>")
                    )),
                    Ok(_) => ctx.printer.progress(&format!("{}: the state lock was released", env.name)),
                    Err(read_err) => ctx.printer.warn(&format!(
                        "could not check whether the state lock was released ({read_err:#}); check with `tfenv lock {}`",
                        env.name
                    )),
                }
            }
            Err(err)
        }
    };
    // The record is written and the environment's lock released: now the upload to the
    // shared ledger (`ledger = "backend"`), which never changes how the run ended.
    drop(recorded);
    if records {
        // Cut short by Ctrl-C, the upload leaves its entries unshared (the next command
        // uploads them): the run ended as it ended, and says so. A second Ctrl-C still
        // ends tfenv at once.
        let seen = ctx.interrupts.handle_next();
        let upload = async {
            let own = crate::ledger::EnvLedger::of(&project, &env, &backend, ctx.runner.clone())
                .location()
                .map(|location| storage_of(&location));
            match &store_dead {
                // One store that did not answer is one wait: the record stays unshared, and
                // the next command that writes the ledger uploads it.
                Some((storage, why)) if own.as_ref() == Some(storage) => {
                    let warning = format!(
                        "not uploaded to the shared ledger of `{}`: it did not answer earlier in this run ({why}); the next tfenv command that writes the ledger uploads it",
                        env.name
                    );
                    ctx.printer.warn(&warning);
                    (vec![warning], None)
                }
                _ => match share_within(ctx, &project, &env, &backend, ledger_timeout).await {
                    Some(shared) => (shared.warnings.clone(), Some(shared)),
                    None => (Vec::new(), None),
                },
            }
        };
        let (warnings, shared) = tokio::select! {
            biased;
            () = ctx.interrupts.stop_requested_after(seen) => {
                let warning = format!(
                    "the upload to the shared ledger of `{}` was cut short (interrupted): what it had not uploaded stays unshared on this machine, and the next tfenv command that writes the ledger uploads it",
                    env.name
                );
                ctx.printer.warn(&warning);
                (vec![warning], None)
            }
            done = upload => done,
        };
        if let Ok(ran) = &mut ran {
            ran.report.warnings.extend(warnings);
            ran.report.shared = shared;
        }
    }
    ran
}

/// The storage a shared ledger's location is in: `gs://bucket` of
/// `gs://bucket/key.tfenv/` (an s3 bucket, an Azure storage account).
pub(crate) fn storage_of(location: &str) -> String {
    location
        .splitn(4, '/')
        .take(3)
        .collect::<Vec<_>>()
        .join("/")
}

/// Uploads what the environment's ledger has not shared yet (see
/// `EnvLedger::publish_pending`): what went up is one line on stderr (unless `-q`), each
/// warning is said on stderr, and both are returned for the run's JSON document.
/// `None` with `ledger = "local"`, or a backend with no storage for it.
pub async fn share(
    ctx: &Context,
    project: &Project,
    env: &Environment,
    backend: &Backend,
) -> Option<crate::ledger::Shared> {
    share_within(ctx, project, env, backend, crate::ledger::DEFAULT_TIMEOUT).await
}

/// [`share`], each upload given `timeout` (`--timeout`).
pub async fn share_within(
    ctx: &Context,
    project: &Project,
    env: &Environment,
    backend: &Backend,
    timeout: std::time::Duration,
) -> Option<crate::ledger::Shared> {
    if project.ledger == crate::project::LedgerMode::Local {
        return None;
    }
    let ledger = crate::ledger::EnvLedger::of(project, env, backend, ctx.runner.clone())
        .with_timeout(timeout);
    if let Some(note) = ledger.no_store() {
        crate::ledger::warn_once(&ctx.printer, note);
        return None;
    }
    let shared = ledger.publish_pending().await;
    say_shared(ctx, &env.name, &shared);
    Some(shared)
}

/// What an upload to the shared ledger did, for people: one line for what went up, one
/// per backup stored under another name, and the warning of what did not.
pub fn say_shared(ctx: &Context, env: &str, shared: &crate::ledger::Shared) {
    if let Some(said) = shared.said() {
        ctx.printer.progress(&format!("{env}: {said}"));
    }
    for renamed in &shared.renamed {
        ctx.printer.progress(&format!(
            "{env}: backup `{}` is stored as `{}` in the shared ledger (the name was taken by another machine's backup of the same second)",
            renamed.file, renamed.shared
        ));
    }
    for warning in &shared.warnings {
        ctx.printer.warn(warning);
    }
}

/// The run's last line, for people.
pub fn print_outcome(ctx: &Context, report: &Report) {
    let p = &ctx.printer;
    let name = &report.environment;
    let seconds = report.seconds;
    let warned = match report.warnings.len() {
        0 => String::new(),
        1 => " (with 1 warning, above)".to_string(),
        n => format!(" (with {n} warnings, above)"),
    };
    let line = match report.result {
        RunResult::Planned => format!("Planned `{name}` ({seconds:.1}s); nothing was applied."),
        RunResult::Applied => {
            let backup = report
                .backup
                .as_ref()
                .map(|b| format!("; backup {}", b.file))
                .unwrap_or_default();
            format!("Applied to `{name}` in {seconds:.1}s{backup}{warned}.")
        }
        _ => format!("No changes: `{name}` is up to date ({seconds:.1}s)."),
    };
    p.result(&line);
    if report.command != "plan" {
        return;
    }
    // Valid where the user is: the path as `--plan` reads it (from `-C`'s folder),
    // and `-C` again when it was given.
    let settings = &ctx.settings;
    let chdir = match settings.cwd == settings.started_in {
        true => String::new(),
        false => format!("-C {} ", from(&settings.cwd, &settings.started_in)),
    };
    let keys = format!(
        "{} or {} set",
        crate::settings::IDENTITY_VAR,
        crate::settings::PASSPHRASE_VAR
    );
    if let Some(bundle) = &report.bundle {
        let dir = from(&bundle.path, &settings.cwd);
        if bundle.encrypted {
            p.result(&format!(
                "Plan bundle `{dir}` (sha256 {}…), its plan encrypted (age). Apply it with {keys}:\n  tfenv {chdir}deploy {name} --plan {dir}",
                &bundle.sha256[..12],
            ));
        } else {
            p.result(&format!(
                "Plan bundle `{dir}` (sha256 {}…); it holds secrets. Apply it with:\n  tfenv {chdir}deploy {name} --plan {dir}",
                &bundle.sha256[..12],
            ));
        }
    }
    if let Some(published) = &report.published {
        let (how, with) = match published.encrypted {
            true => (", its plan encrypted (age)", format!(" with {keys}")),
            false => ("; it holds secrets", " with".to_string()),
        };
        // CI applies it without a terminal: the tier's flags, as the confirmation needs them.
        let unattended = match report.tier {
            Tier::Production => format!(
                " --yes --confirm {name}{}",
                match report.plan.as_ref().is_some_and(|plan| plan.destroys() > 0) {
                    true => " --allow-destroy",
                    false => "",
                }
            ),
            _ => " --yes".to_string(),
        };
        p.result(&format!(
            "Published the plan as `{id}` to `{location}` (sha256 {sum}…){how}. Apply it{with}:\n  tfenv {chdir}deploy {name} --plan {prefix}{id}\nor non-interactively (CI):\n  tfenv {chdir}deploy {name} --plan {prefix}{id}{unattended}",
            id = published.id,
            location = published.location,
            sum = &published.sha256[..12],
            prefix = crate::settings::LEDGER_PREFIX,
        ));
    }
}

/// `path` for a command typed in `base`: relative when it lies under `base`, else absolute.
fn from(path: &Path, base: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}
