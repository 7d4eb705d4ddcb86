//! The pipeline's steps, one function each: the clean-tree check, the log, init, plan,
//! summary, backup, confirmation, apply, outputs and pruning. `run` says which steps
//! each mode takes, in which order, and which of them run at the same time.

use std::path::{Path, PathBuf};

use console::Style;

use super::{Apply, Mode, Outcome, Run};
use crate::artifacts::backups::{self, Pulled};
use crate::artifacts::{history, outputs, plan_json};
use crate::confirm::{Approval, Gate};
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::files;
use crate::project::{Environment, Tier};
use crate::terraform::plan::PlanSummary;
use crate::terraform::{InitOptions, RunLog, state};

pub(super) async fn run(run: &mut Run<'_>) -> anyhow::Result<Outcome> {
    let mode = run.mode;
    match mode {
        Mode::Plan { detailed_exitcode } => {
            let exit = match detailed_exitcode {
                true => Exit::Changes,
                false => Exit::Success,
            };
            plan_only(run, exit).await
        }
        Mode::Refresh(None) => plan_only(run, Exit::Success).await,
        Mode::Deploy(apply) | Mode::Refresh(Some(apply)) => deploy(run, apply).await,
    }
}

/// `plan` and `refresh --dry-run`: up to the summary; nothing is applied.
async fn plan_only(run: &mut Run<'_>, changes_exit: Exit) -> anyhow::Result<Outcome> {
    open_log(run)?;
    init(run).await?;
    let plan_file = PlanFile::new(run.env)?;
    let may_change = plan(run, &plan_file).await?;
    let (summary, plan_json) = read_summary(run, &plan_file, may_change).await?;
    print_summary(run, &summary);
    let changes = summary.has_changes();
    run.recorded.ledger.plan = Some(summary);
    check_policy(run, plan_json.as_deref()).await?;
    Ok(match changes {
        true => Outcome::Planned { exit: changes_exit },
        false => Outcome::NoChanges,
    })
}

/// `deploy` and `refresh`: the plan, confirmed by tier, backed up, applied, recorded.
async fn deploy(run: &mut Run<'_>, apply: &Apply) -> anyhow::Result<Outcome> {
    // --yes and --confirm are known now: a run they cannot approve is refused before
    // init and plan run. What the plan destroys is not (--allow-destroy: after it).
    let review = match run.mode {
        Mode::Refresh(_) => format!("review it (`tfenv refresh {} --dry-run`)", run.env.name),
        Mode::Plan { .. } | Mode::Deploy(_) => {
            format!("review the plan (`tfenv plan {}`)", run.env.name)
        }
    };
    gate(run, 0, 0, review).check_flags_early()?;
    check_clean_tree(run, apply)?;
    open_log(run)?;
    init(run).await?;
    let plan_file = PlanFile::new(run.env)?;
    let may_change = plan(run, &plan_file).await?;

    // The backup does not need the plan's summary: the flags approve a change that
    // destroys nothing (checked above), so the state is pulled while `show -json` reads
    // the plan, and kept only once they have approved it with the summary's destroy
    // count (a refused run leaves no backup).
    let backing_up = takes_backup(run.env);
    let pull_early = may_change && backing_up;
    let run_ref: &Run<'_> = run;
    let summarized = async {
        let run = run_ref;
        let (summary, plan_json) = read_summary(run, &plan_file, may_change).await?;
        print_summary(run, &summary);
        // Before the flags are judged and the backup is kept: a plan the policy refuses
        // leaves nothing behind (the state pulled meanwhile is dropped).
        let policy = check_policy(run, plan_json.as_deref()).await;
        let gate = gate(
            run,
            summary.destroys(),
            summary.replace,
            "review the plan".to_string(),
        );
        let approved = gate.check_flags();
        if backing_up && summary.has_changes() && approved.is_ok() && policy.is_ok() {
            run.ctx
                .printer
                .progress(&format!("{}: backing up the state", run.env.name));
        }
        anyhow::Ok((summary, policy, gate, approved))
    };
    let pulled = async {
        let run = run_ref;
        match pull_early {
            true => Some(pull_state(run).await),
            false => None,
        }
    };
    let (summarized, pulled) = tokio::join!(summarized, pulled);
    let (summary, policy, gate, approved) = summarized?;
    let changes = summary.has_changes();
    run.recorded.ledger.plan = Some(summary);
    policy?;
    if !changes {
        return Ok(Outcome::NoChanges);
    }
    approved?;

    if backing_up {
        let pulled = match pulled {
            Some(pulled) => pulled?,
            None => pull_state(run).await?,
        };
        keep_backup(run, pulled)?;
    }

    gate.ask(&run.ctx.interrupts, run.ctx.prompter.clone())
        .await?;

    wait_for_state_lock(run).await?;
    run.recorded.reaching_apply();
    let applied = run
        .tf
        .apply(run.env, plan_file.path(), run.log.as_ref())
        .await;
    // Even a failed apply may have written the state.
    if let Err(err) = run.backend.make_state_private(run.env) {
        run.ctx.printer.warn(&format!("{err:#}"));
    }
    applied?;
    // From here on the change is applied: a step that fails now is a warning, never a
    // failed run (history must say `applied`, or the next person trusts the wrong state).
    let outputs_written = write_outputs(run, apply.include_sensitive).await;
    prune_backups(run);
    Ok(Outcome::Applied { outputs_written })
}

/// Production deploys from a clean git tree, unless `--allow-dirty`.
fn check_clean_tree(run: &Run<'_>, apply: &Apply) -> anyhow::Result<()> {
    if run.env.tier != Tier::Production || apply.allow_dirty {
        return Ok(());
    }
    match run.recorded.git() {
        Ok(Some(checkout)) if checkout.is_dirty() => Err(checkout.refusal(&run.env.name).into()),
        Err(err) => Err(TfenvError::Refused {
            message: format!("cannot tell whether the git tree is clean: {err:#}"),
            hint: Some(
                "fix git here (e.g. `git config --global --add safe.directory <path>` for a checkout owned by another user), or pass --allow-dirty"
                    .to_string(),
            ),
        }
        .into()),
        Ok(None) => {
            run.ctx
                .printer
                .warn("not a git repository: cannot check for uncommitted changes");
            Ok(())
        }
        Ok(Some(_)) => Ok(()),
    }
}

/// terraform's full output in `state/<env>/logs/`: with `--log`, and always for production.
fn open_log(run: &mut Run<'_>) -> anyhow::Result<()> {
    if run.wants_log || run.env.tier == Tier::Production {
        let log = RunLog::open(run.project, run.env, run.recorded.ledger.command)?;
        run.recorded.ledger.log = Some(log.name.clone());
        run.log = Some(log);
    }
    Ok(())
}

async fn init(run: &Run<'_>) -> anyhow::Result<()> {
    run.ctx
        .ensure_init(
            run.tf,
            run.project,
            run.env,
            run.backend,
            InitOptions::default(),
            run.log.as_ref(),
        )
        .await?;
    Ok(())
}

/// `plan -out`; whether the plan may have changes. Plans and deploys ask terraform
/// (`-detailed-exitcode`), so that a plan without changes needs no `show -json`. A
/// refresh reads every plan: its drift is what it is for.
async fn plan(run: &Run<'_>, plan_file: &PlanFile) -> anyhow::Result<bool> {
    wait_for_state_lock(run).await?;
    let refresh_only = run.mode.refresh_only();
    run.tf
        .plan(
            run.env,
            plan_file.path(),
            refresh_only,
            !refresh_only,
            run.log.as_ref(),
        )
        .await
}

/// With `--lock-timeout`: waits while another run holds the state lock, saying who.
async fn wait_for_state_lock(run: &Run<'_>) -> anyhow::Result<()> {
    super::wait::wait_for_state_lock(run.ctx, run.backend, run.env, &run.lock_wait).await
}

/// The plan's summary and JSON, from `show -json` — or, when terraform said it has no
/// changes, an empty summary and no JSON, without starting a process. With a policy,
/// `show -json` runs for every plan: the policy must see each plan, an empty one too (a
/// policy may require something of the plan as a whole, not only of its changes).
async fn read_summary(
    run: &Run<'_>,
    plan_file: &PlanFile,
    may_change: bool,
) -> anyhow::Result<(PlanSummary, Option<Vec<u8>>)> {
    match may_change || run.env.policy.is_some() {
        true => {
            let shown = run.tf.show_plan(run.env, plan_file.path()).await?;
            Ok((shown.summary, Some(shown.json)))
        }
        false => Ok((PlanSummary::default(), None)),
    }
}

/// What confirms this run's plan, by tier and flags; `review` is what a refusal's hint
/// says to look at first. `replaces` of the `destroys` are replacements.
fn gate(run: &Run<'_>, destroys: u64, replaces: u64, review: String) -> Gate {
    let action = match run.mode {
        Mode::Refresh(_) => "write the refreshed state of",
        Mode::Plan { .. } | Mode::Deploy(_) => "apply this plan to",
    };
    let flags = run
        .mode
        .apply()
        .map(|a| a.flags.clone())
        .unwrap_or_default();
    Gate::new(
        Approval::new(run.project, run.env, action, destroys)
            .with_replaced(replaces)
            .with_review(review),
        flags,
    )
}

/// `terraform state pull` into a temp file in `backups/`, kept as a backup or dropped.
async fn pull_state(run: &Run<'_>) -> anyhow::Result<Option<Pulled>> {
    backups::pull_state(run.env, |sink| run.tf.state_pull_into(run.env, sink)).await
}

/// Staging and production always back up before a change; others when tfenv.toml asks.
fn takes_backup(env: &Environment) -> bool {
    env.tier >= Tier::Staging || env.backup
}

/// Names the pulled state as a backup (with its manifest line), verifies it for
/// production, and records it.
fn keep_backup(run: &mut Run<'_>, pulled: Option<Pulled>) -> anyhow::Result<()> {
    let p = &run.ctx.printer;
    let env = run.env;
    let Some(pulled) = pulled else {
        p.progress(&format!("{}: no state yet, nothing to back up", env.name));
        return Ok(());
    };
    let reason = match run.mode {
        Mode::Refresh(_) => "pre-refresh",
        Mode::Plan { .. } | Mode::Deploy(_) => "pre-deploy",
    };
    let backup = pulled.keep(reason)?;
    if env.tier == Tier::Production {
        backups::verify(&backups::dir(env), &backup).map_err(|why| {
            anyhow::anyhow!("the pre-deploy backup did not verify ({why}); nothing was applied")
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
    run.recorded.ledger.backup = Some(backup);
    Ok(())
}

/// outputs.json after an apply; whether it was written.
async fn write_outputs(run: &mut Run<'_>, include_sensitive: bool) -> bool {
    let env = run.env;
    let had_outputs = env.artifacts_dir.join("outputs.json").is_file();
    let written = match read_outputs(run).await {
        Ok(values) => outputs::write(
            &env.artifacts_dir,
            &outputs::redact(&values, include_sensitive),
        )
        .map_err(|err| format!("writing outputs.json failed: {err:#}")),
        Err(err) => Err(format!("reading its outputs failed: {err:#}")),
    };
    match written {
        Ok(()) => true,
        Err(why) => {
            run.recorded.warn(
                &run.ctx.printer,
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

/// The outputs after an apply, as `terraform output -json` prints them. A local state
/// holds them (value, type, `sensitive`), so no terraform process is needed; a remote one
/// is asked with `output -json`.
async fn read_outputs(run: &Run<'_>) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    if let Some(file) = run.backend.local_state_file(run.env)
        && let Some(outputs) = state::read_outputs_file(&file)?
    {
        return Ok(outputs);
    }
    run.tf.outputs(run.env).await
}

/// The retention configured in tfenv.toml (`backup_keep`), after an apply. Never the
/// backup just taken, nor the way back from the last successful deploy.
fn prune_backups(run: &mut Run<'_>) {
    let env = run.env;
    let Some(keep) = env.backup_keep else {
        return;
    };
    let last_good = match history::protected_backups(&env.artifacts_dir) {
        Ok(last_good) => last_good,
        Err(err) => {
            run.recorded.warn(
                &run.ctx.printer,
                format!(
                    "old backups were not pruned: the last good backup cannot be told ({err:#})"
                ),
            );
            return;
        }
    };
    for warning in last_good.warnings {
        run.recorded.warn(&run.ctx.printer, warning);
    }
    let mut protected = last_good.protected;
    protected
        .files
        .extend(run.recorded.ledger.backup.iter().map(|b| b.file.clone()));
    match backups::prune(&backups::dir(env), keep, &protected) {
        Ok(deleted) if !deleted.is_empty() => {
            run.ctx.printer.progress(&format!(
                "{}: pruned {} old backup(s) (backup_keep = {keep})",
                env.name,
                deleted.len()
            ));
        }
        Ok(_) => {}
        Err(err) => run.recorded.warn(
            &run.ctx.printer,
            format!("pruning old backups failed: {err:#}"),
        ),
    }
}

/// The environment's policy on the plan's JSON; nothing without a policy.
async fn check_policy(run: &Run<'_>, plan_json: Option<&[u8]>) -> anyhow::Result<()> {
    match (&run.env.policy, plan_json) {
        (Some(command), Some(json)) => super::policy::check(run, command, json).await,
        _ => Ok(()),
    }
}

fn print_summary(run: &Run<'_>, s: &PlanSummary) {
    let p = &run.ctx.printer;
    if p.is_json() {
        return;
    }
    let env = run.env;
    let refresh = run.mode.refresh_only();
    let red = Style::new().red().bold();
    let yellow = Style::new().yellow().bold();
    let title = if refresh { "Refresh" } else { "Plan" };
    p.result(&format!("{title} for `{}` ({}):", env.name, env.tier));
    if !s.has_changes() {
        p.result("  no changes");
        return;
    }
    if refresh {
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

/// The plan file exists only while a run needs it: removed on every way out.
struct PlanFile(PathBuf);

impl PlanFile {
    fn new(env: &Environment) -> anyhow::Result<PlanFile> {
        files::ensure_private_dir(&env.artifacts_dir)?;
        let path = env.artifacts_dir.join("terraform.plan");
        let _ = std::fs::remove_file(&path);
        plan_json::remove_leftover(env);
        Ok(PlanFile(path))
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
