//! The pipeline's steps, one function each: the clean-tree check, the log, init, plan,
//! summary, backup, confirmation, apply, outputs and pruning. `run` says which steps
//! each mode takes, in which order, and which of them run at the same time.

use std::path::{Path, PathBuf};

use console::Style;

use super::bundle::{self, Bundle, BundleMeta, BundleRef, Sealer, StateRef, VarFile};
use super::promotion::Deploying;
use super::published;
use super::{Apply, Mode, Outcome, Run};
use crate::artifacts::backups::{self, Pulled};
use crate::artifacts::{history, outputs, plan_json};
use crate::backend::store::Store;
use crate::confirm::{Approval, Gate};
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::files;
use crate::git_info::GitInfo;
use crate::project::{Environment, Tier};
use crate::settings::Sealing;
use crate::terraform::plan::PlanSummary;
use crate::terraform::{self, InitOptions, RunLog, state};

pub(super) async fn run(run: &mut Run<'_>) -> anyhow::Result<Outcome> {
    let mode = run.mode;
    match mode {
        Mode::Plan {
            detailed_exitcode,
            out,
            encrypt,
            publish,
        } => {
            let exit = match detailed_exitcode {
                true => Exit::Changes,
                false => Exit::Success,
            };
            plan_only(run, exit, out.as_deref(), encrypt.as_ref(), *publish).await
        }
        Mode::Refresh(None) => plan_only(run, Exit::Success, None, None, false).await,
        Mode::Deploy(apply) | Mode::Refresh(Some(apply)) => deploy(run, apply).await,
        Mode::ApplyBundle(apply, bundle) => apply_bundle(run, apply, bundle).await,
    }
}

/// `plan` and `refresh --dry-run`: up to the summary; nothing is applied. With `out`
/// (`plan --out`), the plan is kept as a plan bundle in that folder; with `publish`
/// (`plan --publish`), the bundle is uploaded to the shared ledger.
async fn plan_only(
    run: &mut Run<'_>,
    changes_exit: Exit,
    out: Option<&Path>,
    encrypt: Option<&Sealing>,
    publish: bool,
) -> anyhow::Result<Outcome> {
    // A bundle's folder, keys, store and commit are known before anything runs: a wrong
    // one costs no plan.
    let sealer = encrypt.map(Sealer::new).transpose()?;
    let store = match publish {
        true => Some(published::store(
            run.project,
            run.env,
            run.backend,
            run.ctx.runner.clone(),
            "--publish",
        )?),
        false => None,
    };
    let keeps_bundle = out.is_some() || publish;
    if let Some(dir) = out {
        bundle::check_replaceable(dir)?;
    }
    let bundle_git = match keeps_bundle {
        true => Some(bundle_git(run)?),
        false => None,
    };
    open_log(run)?;
    init(run).await?;
    // What the plan is made against, read before it: should the state move in between,
    // the bundle names the older state and is refused, never the other way round.
    let planned_against = match keeps_bundle {
        true => {
            // A run holding the state lock may be changing it: wait (--lock-timeout) first.
            wait_for_state_lock(run).await?;
            Some(current_state(run).await?)
        }
        false => None,
    };
    let plan_file = PlanFile::new(run.env)?;
    // A bundle always keeps plan.json, even of a plan without changes.
    let may_change = plan(run, &plan_file).await? || keeps_bundle;
    let (summary, plan_json) = read_summary(run, &plan_file, may_change).await?;
    print_summary(run, &summary);
    let changes = summary.has_changes();
    run.recorded.ledger.plan = Some(summary.clone());
    // A plan the policy refuses leaves no bundle behind.
    check_policy(run, plan_json.as_deref()).await?;
    if let (Some(git), Some(state), Some(json)) = (bundle_git, planned_against, plan_json) {
        // A bundle that is only published is written to a private folder under
        // `state/<env>/`, removed whichever way this returns.
        let temp = match out {
            Some(_) => None,
            None => Some(PublishDir::new(run.env)?),
        };
        let dir = match (out, &temp) {
            (Some(dir), _) => dir.to_path_buf(),
            (None, temp) => temp.as_ref().map(PublishDir::bundle).unwrap_or_default(),
        };
        let id = published::new_id(chrono::Utc::now(), git.as_ref());
        write_bundle(run, &dir, &plan_file, &json, git, state, sealer.as_ref())?;
        if let Some(store) = &store {
            publish_bundle(run, store, &id, &dir).await?;
        }
        if out.is_none() {
            // Only published: there is no folder to apply.
            run.bundle = None;
        }
    }
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
        Mode::Plan { .. } | Mode::Deploy(_) | Mode::ApplyBundle(..) => {
            format!("review the plan (`tfenv plan {}`)", run.env.name)
        }
    };
    gate(run, 0, 0, review).check_flags_early()?;
    check_clean_tree(run, apply)?;
    if let Mode::Deploy(_) = run.mode {
        super::promotion::check(run, apply, Deploying::Head).await?;
    }
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
    back_up_confirm_apply(run, apply, gate, pulled, plan_file.path()).await
}

/// The end of every run that applies a plan, once its summary is approved by the flags:
/// the backup (`pulled` already, or pulled now), the tier's prompt, apply, outputs and
/// pruning.
async fn back_up_confirm_apply(
    run: &mut Run<'_>,
    apply: &Apply,
    gate: Gate,
    pulled: Option<anyhow::Result<Option<Pulled>>>,
    plan_file: &Path,
) -> anyhow::Result<Outcome> {
    if takes_backup(run.env) {
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
    let applied = run.tf.apply(run.env, plan_file, run.log.as_ref()).await;
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

/// `deploy --plan`: every check of the bundle instead of a plan, then the deploy's end.
/// Nothing is planned: what was reviewed is what is applied.
async fn apply_bundle(
    run: &mut Run<'_>,
    apply: &Apply,
    bundle: &Bundle,
) -> anyhow::Result<Outcome> {
    run.recorded.ledger.bundle = Some(bundle.sha256.clone());
    run.bundle = Some(bundle.reference(run.project));
    let review = match bundle.published {
        true => format!("review the published plan `{}`", bundle.label),
        false => format!(
            "review the bundle's plan (`{}`)",
            bundle.plan_json_file().display()
        ),
    };
    gate(run, 0, 0, review.clone()).check_flags_early()?;
    let verified = bundle.verify_files()?;
    let summary = verified.summary;
    // Recorded from here on, refused or not: history says what the bundle would have done.
    run.recorded.ledger.plan = Some(summary.clone());
    check_bundle(run, bundle)?;
    super::promotion::check(run, apply, Deploying::Bundle(bundle)).await?;
    open_log(run)?;
    // A fresh clone has no data dir: terraform needs its backend and providers to apply.
    init(run).await?;
    // A run holding the state lock may be changing it: wait (--lock-timeout) first.
    wait_for_state_lock(run).await?;
    // A remote state that is backed up anyway is pulled once: its header is checked
    // here, and it becomes the backup if the run goes on.
    let (found, pulled) = match run.backend.local_state_file(run.env) {
        None if takes_backup(run.env) => {
            let pulled = pull_state(run).await?;
            let found = pulled.as_ref().map(|p| StateRef::of(p.header()));
            (found, Some(Ok(pulled)))
        }
        _ => (current_state(run).await?, None),
    };
    if found != bundle.meta.state {
        let show = |state: &Option<StateRef>| match state {
            Some(state) => state.to_string(),
            None => "no state".to_string(),
        };
        return Err(bundle::mismatch(
            "state lineage/serial",
            show(&bundle.meta.state),
            show(&found),
            format!(
                "the state changed since the plan (another deploy?); plan again with `tfenv plan {} --out DIR`",
                run.env.name
            ),
        )
        .into());
    }
    let p = &run.ctx.printer;
    p.progress(&format!(
        "{}: applying plan bundle `{}` (planned {} from {})",
        run.env.name,
        match bundle.published {
            true => bundle.label.clone(),
            false => run.project.show(&bundle.dir),
        },
        bundle.meta.created.format("%Y-%m-%d %H:%M:%S UTC"),
        match &bundle.meta.git {
            Some(git) => format!("commit {}", short(&git.commit)),
            None => "outside git".to_string(),
        }
    ));
    print_summary(run, &summary);
    if !summary.has_changes() {
        return Ok(Outcome::NoChanges);
    }
    let gate = gate(run, summary.destroys(), summary.replace, review);
    gate.check_flags()?;
    if takes_backup(run.env) {
        run.ctx
            .printer
            .progress(&format!("{}: backing up the state", run.env.name));
    }
    // The plan bytes checked above (decrypted, for an encrypted bundle) are what terraform
    // applies, from a 0600 file under state/<env>/ that exists until this returns,
    // whichever way: never the bundle's file, which may have changed since the check.
    let checked = PlanFile::with_content(run.env, &verified.plan)?;
    back_up_confirm_apply(run, apply, gate, pulled, checked.path()).await
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The checks of a bundle (its files' checksums aside) that need no terraform:
/// environment, terraform version, backend, commit, clean tree (then and now) and var
/// files.
fn check_bundle(run: &Run<'_>, bundle: &Bundle) -> anyhow::Result<()> {
    let meta = &bundle.meta;
    let env = run.env;
    let again = format!("plan again with `tfenv plan {} --out DIR`", env.name);
    if meta.environment != env.name {
        return Err(bundle::mismatch(
            "environment",
            &meta.environment,
            &env.name,
            format!(
                "apply it to its own environment (`tfenv deploy {} --plan …`), or plan `{}` with --out",
                meta.environment, env.name
            ),
        )
        .into());
    }
    let version = run.tf.version.to_string();
    if meta.terraform_version != version {
        return Err(bundle::mismatch(
            "terraform version",
            &meta.terraform_version,
            &version,
            format!(
                "apply it with terraform {} (--terraform), or {again}",
                meta.terraform_version
            ),
        )
        .into());
    }
    let backend = terraform::backend_fingerprint(env, run.backend)?;
    if meta.backend_fingerprint != backend {
        return Err(bundle::mismatch(
            "backend",
            &meta.backend_fingerprint,
            &backend,
            format!(
                "the backend configuration of `{}` differs from the one planned with; {again}",
                env.name
            ),
        )
        .into());
    }
    check_bundle_git(run, bundle, &again)?;
    let found = bundle::var_files(run.project, env)?;
    let paths = |files: &[VarFile]| {
        files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if paths(&meta.var_files) != paths(&found) {
        return Err(
            bundle::mismatch("var files", paths(&meta.var_files), paths(&found), again).into(),
        );
    }
    for (planned, now) in meta.var_files.iter().zip(&found) {
        if planned.sha256 != now.sha256 {
            return Err(bundle::mismatch(
                &format!("sha256 of var file {}", now.path),
                &planned.sha256,
                &now.sha256,
                again,
            )
            .into());
        }
    }
    Ok(())
}

/// The bundle was planned from a clean tree at HEAD, and the tree is still clean.
fn check_bundle_git(run: &Run<'_>, bundle: &Bundle, again: &str) -> anyhow::Result<()> {
    let here = match run.recorded.git() {
        Ok(here) => here.as_ref(),
        Err(err) => {
            return Err(TfenvError::Refused {
                message: format!("cannot tell the git commit and whether the tree is clean: {err:#}"),
                hint: Some(
                    "fix git here (e.g. `git config --global --add safe.directory <path>`); a plan bundle is applied only at its commit"
                        .to_string(),
                ),
            }
            .into());
        }
    };
    match (&bundle.meta.git, here) {
        (None, None) => {
            run.ctx.printer.warn(
                "not a git repository (here and where the bundle was planned): the commit cannot be checked",
            );
            Ok(())
        }
        (None, Some(here)) => Err(bundle::mismatch(
            "git commit",
            "none (planned outside git)",
            &here.info.commit,
            again,
        )
        .into()),
        (Some(planned), None) => Err(bundle::mismatch(
            "git commit",
            &planned.commit,
            "none (not a git repository)",
            "apply it from a checkout of the commit it was planned from",
        )
        .into()),
        (Some(planned), Some(here)) => {
            if planned.dirty {
                return Err(bundle::mismatch(
                    "clean tree when planned",
                    "clean",
                    "dirty",
                    format!("it was planned from uncommitted changes: commit them, then {again}"),
                )
                .into());
            }
            if planned.commit != here.info.commit {
                return Err(bundle::mismatch(
                    "git commit",
                    &planned.commit,
                    &here.info.commit,
                    format!("check out `{}`, or {again}", short(&planned.commit)),
                )
                .into());
            }
            if here.is_dirty() {
                let mut hint = "a plan bundle is applied from a clean checkout of its commit: commit or stash the changes".to_string();
                if let Some(folders) = here.untracked_folders_hint() {
                    hint = format!("{hint}; {folders}");
                }
                return Err(bundle::mismatch(
                    "clean tree",
                    "clean",
                    format!("dirty: {}", here.listed()),
                    hint,
                )
                .into());
            }
            Ok(())
        }
    }
}

/// The commit a bundle records: a tree with changes or no git repository is said (the
/// bundle is written all the same); git failing is a refusal.
fn bundle_git(run: &mut Run<'_>) -> anyhow::Result<Option<GitInfo>> {
    let env = run.env;
    let checkout = match run.recorded.git() {
        Ok(checkout) => Ok(checkout.clone()),
        Err(err) => Err(format!("{err:#}")),
    };
    let git = match checkout {
        Ok(Some(checkout)) => {
            if checkout.is_dirty() {
                let mut warning = format!(
                    "the git tree has uncommitted changes ({}): `tfenv deploy {} --plan` will refuse this bundle; commit them and plan again",
                    checkout.listed(),
                    env.name
                );
                if let Some(folders) = checkout.untracked_folders_hint() {
                    warning = format!("{warning}; {folders}");
                }
                run.recorded.warn(&run.ctx.printer, warning);
            }
            Some(checkout.info.clone())
        }
        Ok(None) => {
            run.recorded.warn(
                &run.ctx.printer,
                "not a git repository: the bundle cannot be tied to a commit".to_string(),
            );
            None
        }
        Err(err) => {
            return Err(TfenvError::Refused {
                message: format!("cannot tell the git commit the bundle is planned from: {err}"),
                hint: Some(
                    "fix git here (e.g. `git config --global --add safe.directory <path>`)"
                        .to_string(),
                ),
            }
            .into());
        }
    };
    Ok(git)
}

/// `plan --out`: the plan, its JSON and what it was made from, as a bundle in `dir`.
fn write_bundle(
    run: &mut Run<'_>,
    dir: &Path,
    plan_file: &PlanFile,
    plan_json: &[u8],
    git: Option<GitInfo>,
    planned_against: Option<StateRef>,
    sealer: Option<&Sealer>,
) -> anyhow::Result<()> {
    let env = run.env;
    let meta = BundleMeta {
        format: bundle::FORMAT,
        environment: env.name.clone(),
        tier: env.tier,
        git,
        terraform_version: run.tf.version.to_string(),
        tfenv_version: env!("CARGO_PKG_VERSION").to_string(),
        backend_fingerprint: terraform::backend_fingerprint(env, run.backend)?,
        var_files: bundle::var_files(run.project, env)?,
        state: planned_against,
        // The summary printed and recorded for this plan.
        summary: run.recorded.ledger.plan.clone().unwrap_or_default(),
        created: chrono::Utc::now(),
        sha256: bundle::Checksums {
            plan: String::new(),
            plan_json: String::new(),
        },
        encryption: None,
    };
    let sha256 = bundle::write(dir, plan_file.path(), plan_json, meta, sealer)?;
    run.bundle = Some(BundleRef {
        dir: run.project.show(dir),
        sha256,
        encrypted: sealer.is_some(),
        path: dir.to_path_buf(),
    });
    Ok(())
}

/// `plan --publish`: the bundle in `dir` uploaded to the shared ledger as `id`.
async fn publish_bundle(
    run: &mut Run<'_>,
    store: &Store,
    id: &str,
    dir: &Path,
) -> anyhow::Result<()> {
    run.ctx.printer.progress(&format!(
        "{}: publishing the plan as `{id}` to `{}`",
        run.env.name,
        store.location()
    ));
    let location = published::upload(store, id, dir).await?;
    let (sha256, encrypted) = run
        .bundle
        .as_ref()
        .map(|b| (b.sha256.clone(), b.encrypted))
        .unwrap_or_default();
    run.published = Some(published::Published {
        id: id.to_string(),
        location,
        sha256,
        encrypted,
    });
    Ok(())
}

/// The private folder (0700, under `state/<env>/`) a bundle that is only published is
/// written to; removed when dropped: on success, failure and interrupt.
struct PublishDir(tempfile::TempDir);

impl PublishDir {
    fn new(env: &Environment) -> anyhow::Result<PublishDir> {
        files::ensure_private_dir(&env.artifacts_dir)?;
        let temp = tempfile::Builder::new()
            .prefix(".publish-")
            .tempdir_in(&env.artifacts_dir)
            .map_err(|err| {
                anyhow::anyhow!(
                    "creating a temporary folder in `{}`: {err}",
                    env.artifacts_dir.display()
                )
            })?;
        files::ensure_private_dir(temp.path())?;
        Ok(PublishDir(temp))
    }

    fn bundle(&self) -> PathBuf {
        self.0.path().join("bundle")
    }
}

/// The state's lineage and serial now: a local state straight from its file, a remote
/// one through `terraform state pull` (after init). `None` when there is no state yet.
async fn current_state(run: &Run<'_>) -> anyhow::Result<Option<StateRef>> {
    let header = match run.backend.local_state_file(run.env) {
        Some(file) => {
            // Never open a FIFO in the state's place: it would block the run.
            if std::fs::metadata(&file).is_ok_and(|meta| !meta.is_file()) {
                anyhow::bail!("the state `{}` is not a regular file", file.display());
            }
            terraform::read_state_file(&file)?
        }
        None => run.tf.state_header(run.env).await?,
    };
    Ok(header.as_ref().map(StateRef::of))
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
        Mode::Plan { .. } | Mode::Deploy(_) | Mode::ApplyBundle(..) => "apply this plan to",
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
        Mode::Plan { .. } | Mode::Deploy(_) | Mode::ApplyBundle(..) => "pre-deploy",
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
    // `ledger = "backend"`: a backup not uploaded yet is this machine's only copy; it
    // stays until the upload after this run (or a later one) has put it there.
    protected.unshared = run.project.ledger == crate::project::LedgerMode::Backend
        && run.backend.store(run.ctx.runner.clone()).is_some();
    let dir = backups::dir(env);
    let plan = backups::prune_plan(&dir, keep, &protected);
    let unshared = plan.as_ref().map_or(0, |plan| {
        plan.kept
            .iter()
            .filter(|k| k.reason == backups::KeptReason::Unshared)
            .count()
    });
    match plan.and_then(|plan| backups::prune_planned(&dir, &plan)) {
        Ok(deleted) if !deleted.is_empty() || unshared > 0 => {
            run.ctx.printer.progress(&format!(
                "{}: pruned {} old backup(s) (backup_keep = {keep}){}",
                env.name,
                deleted.len(),
                if unshared > 0 {
                    format!(
                        "; kept {unshared} not in the shared ledger yet, which are uploaded next"
                    )
                } else {
                    String::new()
                }
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
        // Created empty, 0600, before terraform writes the plan into it: terraform
        // truncates an existing file and keeps its mode, so the plan (secrets and all) is
        // never readable by others, whatever the umask.
        files::write_atomic(&path, b"", files::PRIVATE_FILE)?;
        Ok(PlanFile(path))
    }

    /// The plan file holding `bytes` (a decrypted bundle's plan): written atomically,
    /// mode 0600, in the private `state/<env>/`.
    fn with_content(env: &Environment, bytes: &[u8]) -> anyhow::Result<PlanFile> {
        let file = PlanFile::new(env)?;
        files::write_atomic(file.path(), bytes, files::PRIVATE_FILE)?;
        Ok(file)
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
