//! `tfenv unlock`: release a stuck state lock — only the one the user named, after a
//! backup and the tier's confirmation — and check that it is gone.

use crate::Context;
use crate::artifacts::backups;
use crate::backend::lock::StateLock;
use crate::backend::{Backend, Backends};
use crate::confirm::{Approval, Gate};
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::pipeline::{RecordedRun, RunResult};
use crate::project::{Environment, Project};
use crate::settings::UnlockSettings;
use crate::terraform::InitOptions;

pub async fn unlock(ctx: &Context, settings: UnlockSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let env = project.environment(&settings.env)?.clone();
    let backend = Backends::default().resolve(&env, &project)?;
    let lock = backend
        .read_lock(&env, ctx.runner.as_ref())
        .await?
        .relative_to(&project.root);
    if lock.supported() {
        if lock.is_stale() {
            return remove_leftover(ctx, &project, &env, &backend, &lock, &settings.lock_id);
        }
        if !lock.is_held() {
            if ctx.printer.is_json() {
                ctx.printer.json(&serde_json::json!({
                    "environment": env.name, "unlocked": null, "released": null, "lock": lock,
                }))?;
            } else {
                ctx.printer.result(&format!(
                    "{}: the state is not locked; nothing to do",
                    env.name
                ));
            }
            return Ok(Exit::Success);
        }
        if backend.local_state_file(&env).is_some() {
            return Err(live_local_lock(&env, &backend, &lock));
        }
        if let Some(current) = lock.id()
            && current != settings.lock_id
        {
            return Err(TfenvError::Refused {
                message: format!(
                    "`{}` is not the current lock of `{}`: it is held by {}",
                    settings.lock_id,
                    env.name,
                    lock.describe()
                ),
                hint: Some(format!(
                    "check with `tfenv lock {}`; unlock only the ID you mean to break",
                    env.name
                )),
            }
            .into());
        }
        ctx.printer
            .progress(&format!("{}: locked by {}", env.name, lock.describe()));
    } else {
        ctx.printer.progress(&format!(
            "{}: lock inspection is not supported for backend `{}`; unlocking `{}` through terraform force-unlock",
            env.name, backend.kind, settings.lock_id
        ));
    }

    let tf = ctx.terraform(&project).await?;
    let mut recorded = RecordedRun::start(
        ctx,
        &project,
        &env,
        "unlock",
        true,
        &tf,
        &settings.lock_wait,
    )
    .await?;
    let ledger = &mut recorded.ledger;
    ledger.lock = serde_json::to_value(&lock).ok();
    let result = async {
        ctx.ensure_init(&tf, &project, &env, &backend, InitOptions::default(), None)
            .await?;
        let approval = Approval::new(
            &project,
            &env,
            format!("force-unlock `{}` on the state of", settings.lock_id),
            0,
        )
        .with_review(format!(
            "check with `tfenv lock {}` that no run holds it any more",
            env.name
        ));
        let gate = Gate::new(approval, settings.flags.clone());
        gate.check_flags()?;
        // State pull does not take the lock: the state as it is now can still be saved.
        ledger.backup =
            backups::create(&env, "pre-unlock", |sink| tf.state_pull_into(&env, sink)).await?;
        gate.ask(&ctx.interrupts, ctx.prompter.clone()).await?;
        tf.force_unlock(&env, &settings.lock_id).await?;
        if lock.supported() {
            let after = backend.read_lock(&env, ctx.runner.as_ref()).await?;
            if after.is_held() && after.id() == Some(settings.lock_id.as_str()) {
                anyhow::bail!(
                    "terraform reported success but the lock `{}` is still held",
                    settings.lock_id
                );
            }
        }
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            recorded.finish(&ctx.printer, RunResult::Applied, Exit::Success);
            let backup = recorded.ledger.backup.clone();
            let mut warnings = recorded.warnings().to_vec();
            // Recorded, the environment's lock released: then the shared ledger.
            drop(recorded);
            let shared = crate::pipeline::share(ctx, &project, &env, &backend).await;
            warnings.extend(shared.iter().flat_map(|s| s.warnings.iter().cloned()));
            if ctx.printer.is_json() {
                let mut document = serde_json::json!({
                    "environment": env.name, "unlocked": settings.lock_id, "released": lock, "backup": backup,
                    "warnings": warnings,
                });
                if let Some(shared) = shared {
                    document["shared"] = serde_json::to_value(shared)?;
                }
                ctx.printer.json(&document)?;
            } else {
                ctx.printer.result(&format!(
                    "{}: lock `{}` released; the state is unlocked.",
                    env.name, settings.lock_id
                ));
            }
            Ok(Exit::Success)
        }
        Err(err) => {
            let err = recorded.fail(&ctx.printer, err);
            drop(recorded);
            crate::pipeline::share(ctx, &project, &env, &backend).await;
            Err(err)
        }
    }
}

/// A lock info file a dead run left beside a local state is no lock: removing it needs
/// no terraform, backup or confirmation — only the ID it names (`-` when it names none,
/// e.g. an empty file left by a full disk), so a different lock is never cleared by mistake.
fn remove_leftover(
    ctx: &Context,
    project: &Project,
    env: &Environment,
    backend: &Backend,
    lock: &StateLock,
    lock_id: &str,
) -> anyhow::Result<Exit> {
    let expected = lock.id().unwrap_or(super::lock::NO_ID);
    if lock_id != expected {
        return Err(TfenvError::Refused {
            message: format!(
                "`{lock_id}` is not the ID of the leftover lock info of `{}` (it is `{expected}`)",
                env.name
            ),
            hint: Some(format!("check with `tfenv lock {}`", env.name)),
        }
        .into());
    }
    let removed = backend.clear_stale_lock(env)?;
    if ctx.printer.is_json() {
        ctx.printer.json(&serde_json::json!({
            "environment": env.name, "unlocked": null, "released": null, "lock": lock,
            "removed": removed.as_ref().map(|p| project.show(p)),
        }))?;
    } else {
        match &removed {
            Some(path) => ctx.printer.result(&format!(
                "{}: the state is not locked; removed the leftover lock info file `{}`",
                env.name,
                project.show(path)
            )),
            None => ctx.printer.result(&format!(
                "{}: the state is not locked; nothing to do",
                env.name
            )),
        }
    }
    Ok(Exit::Success)
}

/// A local state's lock is held by a live process (a dead one's is stale, handled above):
/// terraform's local lock lives as long as that process and `force-unlock` cannot break
/// it (terraform says "LocalState not locked"). Refused (exit 4) without running terraform.
fn live_local_lock(env: &Environment, backend: &Backend, lock: &StateLock) -> anyhow::Error {
    let pid = backend.local_lock_pid(env);
    TfenvError::Locked {
        message: format!(
            "the state of `{}` is locked by a live process ({}; {}): a local state's lock lasts as long as that process and cannot be force-unlocked",
            env.name,
            pid.map_or_else(|| "pid unknown".to_string(), |pid| format!("pid {pid}")),
            lock.describe()
        ),
        hint: Some(match pid {
            Some(pid) => format!(
                "wait for it to finish (`tfenv lock {}` shows when the lock is gone), or stop it: kill -INT {pid}",
                env.name
            ),
            None => format!(
                "wait for it to finish (`tfenv lock {}` shows when the lock is gone), or stop it",
                env.name
            ),
        }),
    }
    .into()
}
