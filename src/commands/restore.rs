//! `tfenv restore`: put a backup (or any state file) back as the environment's state,
//! through `terraform state push` — never by copying objects — and check it landed.

use std::path::PathBuf;

use serde::Serialize;

use crate::Context;
use crate::artifacts::backups::{self, Backup};
use crate::artifacts::history::Ledger;
use crate::backend::Backends;
use crate::confirm::{Approval, Gate};
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::ledger::{EnvLedger, Where};
use crate::pipeline::{RecordedRun, RunResult};
use crate::project::Project;
use crate::settings::RestoreSettings;
use crate::terraform::{self, InitOptions, StateHeader, Terraform};

#[derive(Serialize)]
struct RestoreReport {
    environment: String,
    restored: String,
    lineage: String,
    serial_before: Option<u64>,
    serial_after: u64,
    forced: bool,
    pre_restore_backup: Option<Backup>,
    /// Steps after the push that failed without undoing it (the history record).
    warnings: Vec<String>,
    /// Whether the environment had no state before (terraform then gives the pushed
    /// state a lineage of its own on a remote backend).
    #[serde(skip)]
    no_state_before: bool,
    /// `ledger = "backend"`: what went up to the shared ledger after the restore.
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<crate::ledger::Shared>,
}

pub async fn restore(ctx: &Context, mut settings: RestoreSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let env = project.environment(&settings.env)?.clone();
    // What the history record says was restored: `version:<ID>` as given, else the
    // backup's name or the path (below).
    let version = settings
        .backup
        .starts_with(super::versions::PREFIX)
        .then(|| settings.backup.clone());
    // `version:<ID>`: that version of the state object, downloaded into a backup first
    // (or the backup an earlier attempt made of it). A backup made now is removed again
    // when the restore stops before anything is pushed, so `latest` never picks it.
    let mut downloaded = None;
    if let Some(id) = settings.backup.strip_prefix(super::versions::PREFIX) {
        let (backup, new) = super::versions::into_backup(ctx, &project, &env, id).await?;
        settings.backup = backup.file.clone();
        downloaded = new.then_some(backup.file);
    }
    let mut pushed = false;
    let result = restore_backup(
        ctx,
        &project,
        &env,
        &settings,
        version,
        &mut pushed,
        &downloaded,
    )
    .await;
    if result.is_err() && !pushed {
        discard(ctx, &env, &downloaded);
    }
    result
}

/// Removes the backup `restore version:<ID>` made of the version (file and manifest
/// line) when nothing was pushed: `latest` must not pick a version nobody restored.
fn discard(ctx: &Context, env: &crate::project::Environment, downloaded: &Option<String>) {
    let Some(file) = downloaded else {
        return;
    };
    let plan = backups::PrunePlan {
        delete: vec![file.clone()],
        kept: Vec::new(),
        warnings: Vec::new(),
    };
    if let Err(err) = backups::prune_planned(&backups::dir(env), &plan) {
        ctx.printer.warn(&format!("{err:#}"));
    }
}

async fn restore_backup(
    ctx: &Context,
    project: &Project,
    env: &crate::project::Environment,
    settings: &RestoreSettings,
    version: Option<String>,
    pushed: &mut bool,
    downloaded: &Option<String>,
) -> anyhow::Result<Exit> {
    let dir = backups::dir(env);

    // What to restore: `latest`, a backup's name (checked against its manifest line), or a path.
    let manifest = backups::manifest(&dir)?;
    for warning in &manifest.warnings {
        ctx.printer.warn(warning);
    }
    let manifest = manifest.records;
    // With the shared ledger, backups taken on other machines too.
    let (ledger, unresolved) = EnvLedger::resolve(project, env, ctx.runner.clone());
    if let Some(note) = ledger.no_store() {
        crate::ledger::warn_once(&ctx.printer, note);
    }
    if let Some(warning) = &unresolved {
        ctx.printer.warn(warning);
    }
    let (shared, missing_files) = match ledger.shared.is_some() {
        true => {
            let found = ledger.backups().await?;
            for warning in &found.merged.warnings {
                ctx.printer.warn(warning);
            }
            (found.merged.entries, found.missing_files)
        }
        false => (Vec::new(), Vec::new()),
    };
    let newest_shared = shared
        .last()
        .filter(|e| e.place == Where::Shared)
        .map(|e| e.record.clone());
    // A name as `tfenv backups` shows it: this machine's file name, a shared backup's
    // name in the bucket, or `shared:<name>` (see `ledger::find_backup`).
    let named = match settings.backup.as_str() {
        "latest" => None,
        wanted => crate::ledger::find_backup(&shared, wanted),
    };
    let local_file = match named {
        Some(entry) if entry.place != Where::Shared => Some(entry.record.file.clone()),
        Some(_) => None,
        None if settings.backup.starts_with(crate::ledger::names::EXPLICIT) => None,
        None => Some(settings.backup.clone()),
    };
    let (source, shown): (PathBuf, String) = if settings.backup == "latest"
        && let Some(entry) = newest_shared
    {
        fetch_shared(ctx, &ledger, &dir, entry).await?
    } else if settings.backup == "latest" {
        let newest = manifest.last().ok_or_else(|| {
            TfenvError::config(
                format!("`{}` has no backups", env.name),
                Some(format!("list them with `tfenv backups {}`", env.name)),
            )
        })?;
        local_or_shared(ctx, &ledger, &dir, newest, &shared).await?
    } else if let Some(backup) = local_file
        .as_ref()
        .and_then(|file| manifest.iter().find(|b| &b.file == file))
    {
        local_or_shared(ctx, &ledger, &dir, backup, &shared).await?
    } else if let Some(entry) = named.filter(|e| e.place == Where::Shared) {
        // This machine's backup whose local file was deleted: its own line is checked.
        match manifest.iter().find(|b| **b == entry.record) {
            Some(backup) => local_or_shared(ctx, &ledger, &dir, backup, &shared).await?,
            None => fetch_shared(ctx, &ledger, &dir, entry.record.clone()).await?,
        }
    } else {
        let path = ctx.settings.cwd.join(&settings.backup);
        let stray = dir.join(&settings.backup);
        if !path.is_file() && stray.is_file() && !settings.backup.contains('/') {
            // A file in backups/ that the manifest does not list (copied in by hand, or
            // its line lost): tfenv has no checksum for it, so it is restored as a path.
            let shown = stray
                .strip_prefix(&ctx.settings.cwd)
                .unwrap_or(&stray)
                .display()
                .to_string();
            return Err(TfenvError::usage(
                format!(
                    "`{}` is in `{}` but not in its manifest (MANIFEST.jsonl): it is no backup tfenv made or can check",
                    settings.backup,
                    project.show(&dir)
                ),
                Some(format!(
                    "to restore it anyway, pass its path: `tfenv restore {} {shown}`",
                    env.name
                )),
            )
            .into());
        }
        if !path.is_file() && missing_files.contains(&settings.backup) {
            return Err(TfenvError::Refused {
                message: format!(
                    "the shared backup `{}` has its manifest entry but its state file `{}{}` is missing from `{}`: nothing was restored",
                    settings.backup,
                    crate::ledger::names::BACKUPS,
                    settings.backup,
                    ledger.location().unwrap_or_default()
                ),
                hint: Some(format!(
                    "pick another backup from `tfenv backups {}`, or look for the object among the bucket's versions",
                    env.name
                )),
            }
            .into());
        }
        if !path.is_file() {
            return Err(TfenvError::usage(
                format!(
                    "`{}` is neither a backup of `{}` nor a file",
                    settings.backup, env.name
                ),
                Some(format!(
                    "pass `latest`, a name from `tfenv backups {}`, or the path of a state file",
                    env.name
                )),
            )
            .into());
        }
        (path, settings.backup.clone())
    };
    let restored = match terraform::read_state_file(&source) {
        Ok(Some(header)) => header,
        Ok(None) | Err(_) => {
            return Err(TfenvError::Refused {
                message: format!("`{shown}` is not a Terraform state"),
                hint: Some(
                    "restore a file written by `terraform state pull` or `tfenv backup`"
                        .to_string(),
                ),
            }
            .into());
        }
    };

    crate::provenance::check_restore(
        &ctx.printer,
        project,
        env,
        &source,
        &shown,
        &restored,
        settings.force,
    )?;

    let backend = Backends::default().resolve(env, project)?;
    let mut tf = ctx.terraform(project).await?;
    tf.lock_timeout = settings.lock_wait.timeout;
    let mut recorded =
        RecordedRun::start(ctx, project, env, "restore", true, &tf, &settings.lock_wait).await?;
    recorded.ledger.restored = Some(version.unwrap_or_else(|| shown.clone()));
    let result = run(
        ctx,
        project,
        settings,
        env,
        &backend,
        &tf,
        &source,
        &shown,
        &restored,
        &mut recorded.ledger,
        pushed,
    )
    .await;
    match result {
        Ok(mut report) => {
            recorded.finish(&ctx.printer, RunResult::Applied, Exit::Success);
            report.warnings = recorded.warnings().to_vec();
            // Recorded, the environment's lock released: then the shared ledger.
            drop(recorded);
            if let Some(shared) = crate::pipeline::share(ctx, project, env, &backend).await {
                report.warnings.extend(shared.warnings.iter().cloned());
                report.shared = Some(shared);
            }
            if ctx.printer.is_json() {
                ctx.printer.json(&report)?;
            } else {
                if report.no_state_before {
                    ctx.printer.progress(&format!(
                        "{}: there was no state before; terraform wrote the restored resources as serial {} lineage {}",
                        report.environment,
                        report.serial_after,
                        short(&report.lineage)
                    ));
                }
                ctx.printer.result(&format!(
                    "Restored `{}` into `{}`: serial {} → {}{}.",
                    report.restored,
                    report.environment,
                    report
                        .serial_before
                        .map_or("none".to_string(), |s| s.to_string()),
                    report.serial_after,
                    report
                        .pre_restore_backup
                        .as_ref()
                        .map(|b| format!(" (the state before is in backup {})", b.file))
                        .unwrap_or_default()
                ));
            }
            Ok(Exit::Success)
        }
        Err(err) => {
            let err = recorded.fail(&ctx.printer, err);
            drop(recorded);
            // Before the shared ledger is written: the version's backup is not shared.
            if !*pushed {
                discard(ctx, env, downloaded);
            }
            crate::pipeline::share(ctx, project, env, &backend).await;
            Err(err)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    ctx: &Context,
    project: &Project,
    settings: &RestoreSettings,
    env: &crate::project::Environment,
    backend: &crate::backend::Backend,
    tf: &Terraform,
    source: &std::path::Path,
    shown: &str,
    restored: &StateHeader,
    ledger: &mut Ledger,
    pushed: &mut bool,
) -> anyhow::Result<RestoreReport> {
    ctx.ensure_init(tf, project, env, backend, InitOptions::default(), None)
        .await?;
    // No state at all (terraform prints an empty placeholder, no lineage): nothing for
    // the backup's lineage to differ from.
    let current = tf.state_header(env).await?.filter(|c| !c.is_empty());
    let same_lineage = current
        .as_ref()
        .is_none_or(|c| c.lineage == restored.lineage);
    if !same_lineage && !settings.force {
        let current = current
            .as_ref()
            .expect("lineage differs only when a state exists");
        return Err(TfenvError::Refused {
            message: format!(
                "`{shown}` is from another lineage ({}) than the state of `{}` ({}): it is not a version of this state",
                short(&restored.lineage),
                env.name,
                short(&current.lineage)
            ),
            hint: Some("if you really mean to replace it, pass --force (and confirm)".to_string()),
        }
        .into());
    }
    let approval = Approval::new(
        project,
        env,
        format!(
            "restore `{shown}` (serial {}) over the state of",
            restored.serial
        ),
        0,
    )
    .with_review(format!("check what `{shown}` holds"));
    let gate = Gate::new(approval, settings.flags.clone());
    gate.check_flags()?;
    gate.ask(&ctx.interrupts, ctx.prompter.clone()).await?;
    // After the confirmation: a declined restore must not add a newer backup of the
    // current state, or `latest` would point at it next time.
    ctx.printer
        .progress(&format!("{}: backing up the current state", env.name));
    let pre = backups::create(env, "pre-restore", |sink| tf.state_pull_into(env, sink)).await?;
    ledger.backup = pre.clone();

    // Same lineage: one serial above the current one, so terraform accepts the push
    // without -force. Another lineage (forced): pushed as it is, with -force.
    let serial = match &current {
        Some(c) if same_lineage => c.serial + 1,
        _ => restored.serial,
    };
    crate::files::ensure_private_dir(&env.artifacts_dir)?;
    let staged = StagedFile(env.artifacts_dir.join(".restore.tfstate"));
    backups::with_serial(source, &staged.0, serial)?;
    crate::pipeline::wait_for_state_lock(ctx, backend, env, &settings.lock_wait).await?;
    *pushed = true;
    // From here on the state may change: a failure is `last-deploy-failed` in status.
    ledger.reached_apply = true;
    tf.state_push(env, &staged.0, !same_lineage).await?;
    drop(staged);
    if let Err(err) = backend.make_state_private(env) {
        ctx.printer.warn(&format!("{err:#}"));
    }

    let landed = tf.state_header(env).await?;
    let serial_after = landed.as_ref().map_or(serial, |h| h.serial);
    let lineage_after = landed
        .as_ref()
        .map_or(restored.lineage.clone(), |h| h.lineage.clone());
    // Some backends bump the serial once more as they write; lineage and content must
    // match. Pushed where there was no state, a remote backend keeps the resources but
    // writes a lineage of its own (terraform 1.11 keeps the serial, 1.0 sets it to 0):
    // then only the content must match.
    let no_state_before = current.is_none();
    match landed {
        Some(h)
            if (no_state_before || (h.lineage == restored.lineage && h.serial >= serial))
                && !h.lineage.is_empty()
                && h.resources == restored.resources
                && h.instances == restored.instances => {}
        other => anyhow::bail!(
            "the push reported success but the state of `{}` now reads {}: check it with `tfenv status {}`",
            env.name,
            other.map_or("empty".to_string(), |h| format!(
                "serial {} lineage {}",
                h.serial,
                short(&h.lineage)
            )),
            env.name
        ),
    }
    Ok(RestoreReport {
        environment: env.name.clone(),
        restored: shown.to_string(),
        lineage: lineage_after,
        serial_before: current.map(|c| c.serial),
        serial_after,
        forced: !same_lineage,
        pre_restore_backup: pre,
        warnings: Vec::new(),
        no_state_before,
        shared: None,
    })
}

/// Downloads the shared backup `entry` into the environment's backups folder and
/// checks it against its manifest entry (SHA-256, size, serial, lineage) before
/// anything else: a copy that does not match is removed and the restore refused. One
/// that does becomes a local backup (its manifest line names its shared copy).
/// A backup of this machine's manifest: its file, checked; when that file is gone
/// (deleted by hand) and the backup is in the shared ledger, the shared copy, downloaded
/// and checked against this machine's manifest line.
async fn local_or_shared(
    ctx: &Context,
    ledger: &EnvLedger<'_>,
    dir: &std::path::Path,
    backup: &Backup,
    shared: &[crate::ledger::Entry<Backup>],
) -> anyhow::Result<(PathBuf, String)> {
    let gone = std::fs::symlink_metadata(dir.join(&backup.file)).is_err();
    let in_shared = backup.shared.as_deref().filter(|name| {
        !backup.unshared
            && shared
                .iter()
                .any(|e| e.place != Where::Local && e.record.shared.as_deref() == Some(*name))
    });
    if gone && let Some(name) = in_shared {
        let (path, _) = fetch_shared(
            ctx,
            ledger,
            dir,
            Backup {
                shared: Some(name.to_string()),
                ..backup.clone()
            },
        )
        .await?;
        return Ok((path, backup.file.clone()));
    }
    backups::verify(dir, backup)
        .map_err(|why| anyhow::anyhow!("the backup does not verify: {why}"))?;
    Ok((dir.join(&backup.file), backup.file.clone()))
}

async fn fetch_shared(
    ctx: &Context,
    ledger: &EnvLedger<'_>,
    dir: &std::path::Path,
    entry: Backup,
) -> anyhow::Result<(PathBuf, String)> {
    // Its name in the shared ledger (a local backup's may differ from its file's).
    let name = entry.shared.clone().unwrap_or_else(|| entry.file.clone());
    let location = ledger.location().unwrap_or_default();
    let temp = ledger.download_backup(&name, dir).await?;
    let temp_name = temp
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let check = backups::verify(
        dir,
        &Backup {
            file: temp_name.clone(),
            ..entry.clone()
        },
    );
    if let Err(why) = check {
        let _ = std::fs::remove_file(&temp);
        return Err(TfenvError::Refused {
            message: format!(
                "the shared backup `{name}` in `{location}` does not match its manifest entry ({}): nothing was restored",
                why.replace(&format!("`{temp_name}`"), "the download")
            ),
            hint: Some(format!(
                "the object was changed or damaged after tfenv wrote it; pick another backup from `tfenv backups {env}`; if the bucket keeps object versions, an earlier version of `{location}{dir}{name}` may be the original (look in the bucket: `tfenv backups {env} --versions` lists only the state object's versions)",
                env = ledger.env.name,
                dir = crate::ledger::names::BACKUPS,
            )),
        }
        .into());
    }
    ctx.printer.progress(&format!(
        "{}: downloaded `{name}` from {location}{}{name}, sha256 checked",
        ledger.env.name,
        crate::ledger::names::BACKUPS
    ));
    let local = backups::adopt(
        dir,
        &temp,
        Backup {
            shared: Some(name.clone()),
            unshared: false,
            ..entry
        },
    )?;
    Ok((dir.join(&local.file), name))
}

fn short(lineage: &str) -> String {
    lineage.chars().take(8).collect()
}

/// The state being pushed, removed however the restore ends.
struct StagedFile(PathBuf);

impl Drop for StagedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
