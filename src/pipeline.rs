//! The deploy pipeline of DESIGN.md §5, shared by `plan`, `deploy` and `refresh`: lock
//! the environment, init if needed, plan into a file, summarize, back up, confirm by
//! tier, apply exactly that plan, write outputs and history.
//! May use: context, artifacts, terraform, backend, git, confirm and what lies below.

mod recorded;

use std::path::{Path, PathBuf};
use std::time::Instant;

use console::Style;
use serde::Serialize;

pub use recorded::RecordedRun;

use crate::Context;
use crate::artifacts::backups::{self, Backup};
use crate::artifacts::history;
use crate::artifacts::outputs;
use crate::backend::Backends;
use crate::confirm::{Approval, Flags, Gate};
use crate::error::{self, TfenvError};
use crate::exit::Exit;
use crate::project::{Environment, Tier};
use crate::terraform::plan::PlanSummary;
use crate::terraform::{InitOptions, RunLog, Terraform};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Deploy,
    Refresh,
}

impl Mode {
    fn command(self) -> &'static str {
        match self {
            Mode::Deploy => "deploy",
            Mode::Refresh => "refresh",
        }
    }
}

/// What the user asked for.
pub struct Request {
    pub env: String,
    pub mode: Mode,
    /// Stop after the plan (`plan`, `refresh --dry-run`).
    pub plan_only: bool,
    /// Record the run in history.jsonl (deploy and refresh).
    pub record: bool,
    pub flags: Flags,
    pub allow_dirty: bool,
    pub include_sensitive: bool,
    pub log: bool,
    /// Exit 3 when a plan-only run finds changes.
    pub detailed_exitcode: bool,
}

/// The one JSON document a pipeline run prints.
#[derive(Serialize)]
struct Report {
    environment: String,
    tier: Tier,
    command: &'static str,
    result: &'static str,
    plan: Option<PlanSummary>,
    backup: Option<Backup>,
    outputs_written: Option<bool>,
    log: Option<String>,
    seconds: f64,
    /// Steps after a successful apply that failed (outputs, pruning, history): the
    /// change stands, each is said here and on stderr.
    warnings: Vec<String>,
}

struct Outcome {
    result: &'static str,
    exit: Exit,
    outputs_written: Option<bool>,
}

pub async fn run(ctx: &Context, req: Request) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let project = ctx.project()?;
    let env = project.environment(&req.env)?.clone();
    let backend = Backends::default().resolve(&env, &project)?;
    let tf = ctx.terraform(&project).await?;
    let command = if req.plan_only && req.mode == Mode::Deploy {
        "plan"
    } else {
        req.mode.command()
    };
    let mut recorded = RecordedRun::start(ctx, &project, &env, command, req.record, &tf).await?;
    let run = Run {
        project: &project,
        env: &env,
        backend: &backend,
        tf: &tf,
    };
    let result = steps(ctx, &req, run, &mut recorded).await;
    let seconds = crate::output::seconds(started.elapsed());
    match result {
        Ok(outcome) => {
            recorded.finish(&ctx.printer, outcome.result, outcome.exit);
            let ledger = &recorded.ledger;
            if ctx.printer.is_json() {
                ctx.printer.json(&Report {
                    environment: env.name.clone(),
                    tier: env.tier,
                    command,
                    result: outcome.result,
                    plan: ledger.plan.clone(),
                    backup: ledger.backup.clone(),
                    outputs_written: outcome.outputs_written,
                    log: ledger.log.clone(),
                    seconds,
                    warnings: recorded.warnings().to_vec(),
                })?;
            } else {
                print_outcome(ctx, &env, outcome.result, seconds, &recorded);
            }
            Ok(outcome.exit)
        }
        Err(err) => {
            let exit = error::exit_for(&err);
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
    }
}

/// What one run works with, resolved before its steps begin.
struct Run<'a> {
    project: &'a crate::project::Project,
    env: &'a Environment,
    backend: &'a crate::backend::Backend,
    tf: &'a Terraform,
}

async fn steps(
    ctx: &Context,
    req: &Request,
    run: Run<'_>,
    recorded: &mut RecordedRun,
) -> anyhow::Result<Outcome> {
    let Run {
        project,
        env,
        backend,
        tf,
    } = run;
    let p = &ctx.printer;
    let changes_state = !req.plan_only;
    let action = match req.mode {
        Mode::Deploy => "apply this plan to",
        Mode::Refresh => "write the refreshed state of",
    };
    if changes_state {
        // --yes and --confirm are known now: a run they cannot approve is refused before
        // init and plan run. What the plan destroys is not (--allow-destroy: after it).
        let review = match req.mode {
            Mode::Deploy => format!("review the plan (`tfenv plan {}`)", env.name),
            Mode::Refresh => format!("review it (`tfenv refresh {} --dry-run`)", env.name),
        };
        Gate::new(
            Approval::new(project, env, action, 0).with_review(review),
            req.flags.clone(),
        )
        .check_flags_early()?;
    }
    if changes_state && env.tier == Tier::Production && !req.allow_dirty {
        match recorded.git() {
            Ok(Some(checkout)) if checkout.is_dirty() => {
                return Err(checkout.refusal(&env.name).into());
            }
            Err(err) => {
                return Err(TfenvError::Refused {
                    message: format!("cannot tell whether the git tree is clean: {err:#}"),
                    hint: Some(
                        "fix git here (e.g. `git config --global --add safe.directory <path>` for a checkout owned by another user), or pass --allow-dirty"
                            .to_string(),
                    ),
                }
                .into());
            }
            Ok(None) => p.warn("not a git repository: cannot check for uncommitted changes"),
            Ok(Some(_)) => {}
        }
    }
    let log = if req.log || env.tier == Tier::Production {
        let log = RunLog::open(project, env, recorded.ledger.command)?;
        recorded.ledger.log = Some(log.name.clone());
        Some(log)
    } else {
        None
    };

    ctx.ensure_init(
        tf,
        project,
        env,
        backend,
        InitOptions::default(),
        log.as_ref(),
    )
    .await?;

    crate::files::ensure_private_dir(&env.artifacts_dir)?;
    let plan_file = PlanFile::new(env.artifacts_dir.join("terraform.plan"));
    tf.plan(
        env,
        plan_file.path(),
        req.mode == Mode::Refresh,
        log.as_ref(),
    )
    .await?;
    let summary = tf.show_plan(env, plan_file.path()).await?;
    recorded.ledger.plan = Some(summary.clone());
    if !p.is_json() {
        print_summary(ctx, env, req.mode, &summary);
    }
    if !summary.has_changes() {
        return Ok(Outcome {
            result: "no-changes",
            exit: Exit::Success,
            outputs_written: None,
        });
    }
    if req.plan_only {
        let exit = if req.detailed_exitcode {
            Exit::Changes
        } else {
            Exit::Success
        };
        return Ok(Outcome {
            result: "planned",
            exit,
            outputs_written: None,
        });
    }

    let approval = Approval::new(project, env, action, summary.destroys())
        .with_replaced(summary.replace)
        .with_review("review the plan");
    let gate = Gate::new(approval, req.flags.clone());
    gate.check_flags()?;

    if env.tier >= Tier::Staging || env.backup {
        let reason = if req.mode == Mode::Refresh {
            "pre-refresh"
        } else {
            "pre-deploy"
        };
        p.progress(&format!("{}: backing up the state", env.name));
        match backups::create(env, reason, |sink| tf.state_pull_into(env, sink)).await? {
            Some(backup) => {
                if env.tier == Tier::Production {
                    backups::verify(&backups::dir(env), &backup).map_err(|why| {
                        anyhow::anyhow!(
                            "the pre-deploy backup did not verify ({why}); nothing was applied"
                        )
                    })?;
                }
                p.progress(&format!(
                    "{}: backup `{}` ({} bytes, serial {}, sha256 {}…)",
                    env.name,
                    backup.file,
                    backup.bytes,
                    backup.serial,
                    &backup.sha256[..12]
                ));
                recorded.ledger.backup = Some(backup);
            }
            None => p.progress(&format!("{}: no state yet, nothing to back up", env.name)),
        }
    }

    gate.ask(&ctx.interrupts).await?;

    recorded.reaching_apply();
    let applied = tf.apply(env, plan_file.path(), log.as_ref()).await;
    // Even a failed apply may have written the state.
    if let Err(err) = backend.make_state_private(env) {
        ctx.printer.warn(&format!("{err:#}"));
    }
    applied?;
    // From here on the change is applied: a step that fails now is a warning, never a
    // failed run (history must say `applied`, or the next person trusts the wrong state).
    let outputs_written = write_outputs(ctx, req, env, tf, recorded).await;
    prune_backups(ctx, env, recorded);
    Ok(Outcome {
        result: "applied",
        exit: Exit::Success,
        outputs_written: Some(outputs_written),
    })
}

/// `output -json` into outputs.json after an apply; whether it was written.
async fn write_outputs(
    ctx: &Context,
    req: &Request,
    env: &Environment,
    tf: &Terraform,
    recorded: &mut RecordedRun,
) -> bool {
    let had_outputs = env.artifacts_dir.join("outputs.json").is_file();
    let written = match tf.outputs(env).await {
        Ok(values) => outputs::write(
            &env.artifacts_dir,
            &outputs::redact(&values, req.include_sensitive),
        )
        .map_err(|err| format!("writing outputs.json failed: {err:#}")),
        Err(err) => Err(format!("reading its outputs failed: {err:#}")),
    };
    match written {
        Ok(()) => true,
        Err(why) => {
            recorded.warn(
                &ctx.printer,
                format!(
                    "the change was applied, but {why}\n  {}; run `tfenv outputs {}` later",
                    if had_outputs {
                        "outputs.json keeps its previous content"
                    } else {
                        "there is no outputs.json yet"
                    },
                    env.name
                ),
            );
            false
        }
    }
}

/// The retention configured in tfenv.toml (`backup_keep`), after an apply. Never the
/// backup just taken, nor the way back from the last successful deploy.
fn prune_backups(ctx: &Context, env: &Environment, recorded: &mut RecordedRun) {
    let Some(keep) = env.backup_keep else {
        return;
    };
    let last_good = match history::protected_backups(&env.artifacts_dir) {
        Ok(last_good) => last_good,
        Err(err) => {
            recorded.warn(
                &ctx.printer,
                format!(
                    "old backups were not pruned: the last good backup cannot be told ({err:#})"
                ),
            );
            return;
        }
    };
    for warning in last_good.warnings {
        recorded.warn(&ctx.printer, warning);
    }
    let mut protected = last_good.protected;
    protected
        .files
        .extend(recorded.ledger.backup.iter().map(|b| b.file.clone()));
    match backups::prune(&backups::dir(env), keep, &protected) {
        Ok(deleted) if !deleted.is_empty() => {
            ctx.printer.progress(&format!(
                "{}: pruned {} old backup(s) (backup_keep = {keep})",
                env.name,
                deleted.len()
            ));
        }
        Ok(_) => {}
        Err(err) => recorded.warn(&ctx.printer, format!("pruning old backups failed: {err:#}")),
    }
}

fn print_summary(ctx: &Context, env: &Environment, mode: Mode, s: &PlanSummary) {
    let p = &ctx.printer;
    let red = Style::new().red().bold();
    let yellow = Style::new().yellow().bold();
    let title = match mode {
        Mode::Deploy => "Plan",
        Mode::Refresh => "Refresh",
    };
    p.result(&format!("{title} for `{}` ({}):", env.name, env.tier));
    if !s.has_changes() {
        p.result("  no changes");
        return;
    }
    if mode == Mode::Refresh {
        p.result(&format!(
            "  {} resource(s) drifted; {} output(s) change",
            s.drifted.len(),
            s.outputs
        ));
        for address in &s.drifted {
            p.result(&format!("    drifted: {address}"));
        }
        return;
    }
    let destroy = format!("-{} to destroy", s.destroy);
    let replace = format!("±{} to replace", s.replace);
    p.result(&format!(
        "  +{} to add, ~{} to change, {}, {}; {} output(s) change",
        s.add,
        s.change,
        if s.destroy > 0 {
            p.paint(&red, &destroy)
        } else {
            destroy
        },
        if s.replace > 0 {
            p.paint(&yellow, &replace)
        } else {
            replace
        },
        s.outputs
    ));
    if s.moved + s.imported + s.forgotten > 0 {
        p.result(&format!(
            "  {} moved, {} imported, {} forgotten (state only)",
            s.moved, s.imported, s.forgotten
        ));
    }
    if !s.drifted.is_empty() {
        // JSON's `drifted`: the plan was made against a state refreshed from what exists.
        p.result(&format!(
            "  {} resource(s) changed outside Terraform: {}",
            s.drifted.len(),
            s.drifted.join(", ")
        ));
    }
    for address in &s.destroyed {
        p.result(&format!("    {} {address}", p.paint(&red, "destroy:")));
    }
    for address in &s.replaced {
        p.result(&format!("    {} {address}", p.paint(&yellow, "replace:")));
    }
}

fn print_outcome(
    ctx: &Context,
    env: &Environment,
    result: &str,
    seconds: f64,
    recorded: &RecordedRun,
) {
    let p = &ctx.printer;
    let backup = recorded.ledger.backup.as_ref();
    let warned = match recorded.warnings().len() {
        0 => String::new(),
        1 => " (with 1 warning, above)".to_string(),
        n => format!(" (with {n} warnings, above)"),
    };
    let line = match result {
        "no-changes" => format!("No changes: `{}` is up to date ({seconds:.1}s).", env.name),
        "planned" => format!(
            "Planned `{}` ({seconds:.1}s); nothing was applied.",
            env.name
        ),
        _ => {
            let backup = backup
                .map(|b| format!("; backup {}", b.file))
                .unwrap_or_default();
            format!(
                "Applied to `{}` in {seconds:.1}s{backup}{warned}.",
                env.name
            )
        }
    };
    p.result(&line);
}

/// The plan file exists only while a run needs it: removed on every way out.
struct PlanFile(PathBuf);

impl PlanFile {
    fn new(path: PathBuf) -> PlanFile {
        let _ = std::fs::remove_file(&path);
        PlanFile(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PlanFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
