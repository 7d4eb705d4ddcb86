//! `tfenv backup` (take one) and `tfenv backups` (list them, each verified).

use chrono::Utc;
use futures_util::StreamExt;
use indicatif::HumanBytes;
use serde::Serialize;

use crate::Context;
use crate::age::Age;
use crate::artifacts::backups::{self, Backup};
use crate::backend::Backends;
use crate::exit::Exit;
use crate::ledger::{EnvLedger, Where};
use crate::output;
use crate::project::LedgerMode;
use crate::settings::{BackupSettings, BackupsSettings};
use crate::terraform::InitOptions;

#[derive(Serialize)]
struct Taken {
    environment: String,
    /// `null`: the environment has no state yet (nothing was written), or `error`.
    backup: Option<Backup>,
    /// Why no backup was taken: the environment's configuration is broken (a missing var
    /// or backend file). The other environments were backed up.
    error: Option<String>,
    /// The upload to the shared ledger failed (`ledger = "backend"`): the backup is
    /// here, marked `unshared`, and the next command that writes the ledger uploads it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    /// `ledger = "backend"`: what went up to the shared ledger (this backup, and anything
    /// still pending from before), and under which name when it was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<crate::ledger::Shared>,
}

pub async fn backup(ctx: &Context, settings: BackupSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    // An environment whose own files are broken is reported; the others are backed up.
    let selected = project.select(&settings.names)?;
    let backends = Backends::default();
    let mut resolved = Vec::new();
    let mut unusable: Vec<(String, anyhow::Error)> = Vec::new();
    for env in &selected {
        match backends.resolve(env, &project) {
            Ok(backend) => resolved.push((*env, backend)),
            Err(err) => unusable.push((env.name.clone(), err)),
        }
    }
    if resolved.is_empty() {
        // Nothing to back up: no terraform needed to say so.
        let failed = unusable;
        return Err(super::environments_failed(
            "cannot back up",
            selected.len(),
            failed,
        ));
    }
    let tf = ctx.terraform(&project).await?;
    // init is not safe to run concurrently (shared plugin cache): do it first, in turn.
    for (env, backend) in &resolved {
        ctx.ensure_init(&tf, &project, env, backend, InitOptions::default(), None)
            .await?;
    }
    let results: Vec<anyhow::Result<Taken>> =
        futures_util::stream::iter(resolved.iter().map(|(env, _)| {
            let tf = &tf;
            // A large state shows its bytes going by (on a terminal, for people).
            let progress = ctx
                .printer
                .byte_progress(format!("{}: backing up", env.name), None);
            async move {
                let backup = backups::create(env, "manual", |sink| {
                    tf.state_pull_into(env, progress.writer(sink))
                })
                .await;
                progress.finish();
                let backup = backup?;
                Ok(Taken {
                    environment: env.name.clone(),
                    backup,
                    error: None,
                    warnings: Vec::new(),
                    shared: None,
                })
            }
        }))
        .buffered(4)
        .collect()
        .await;
    let mut taken = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    // Off this machine (`ledger = "backend"`): every environment's at once.
    let shared: Vec<Option<crate::ledger::Shared>> = futures_util::future::join_all(
        resolved
            .iter()
            .map(|(env, backend)| crate::pipeline::share(ctx, &project, env, backend)),
    )
    .await;
    for (t, shared) in taken.iter_mut().zip(shared) {
        if let Some(shared) = shared {
            t.warnings.clone_from(&shared.warnings);
            t.shared = Some(shared);
        }
    }
    let mut failed = Vec::new();
    for (name, err) in unusable {
        taken.push(Taken {
            environment: name.clone(),
            backup: None,
            error: Some(format!("{err:#}")),
            warnings: Vec::new(),
            shared: None,
        });
        failed.push((name, err));
    }
    // In project order, as selected.
    taken.sort_by_key(|t| selected.iter().position(|env| env.name == t.environment));
    let outcome = || -> anyhow::Result<Exit> {
        if failed.is_empty() {
            return Ok(Exit::Success);
        }
        Err(super::environments_failed(
            "cannot back up",
            selected.len(),
            failed,
        ))
    };
    if ctx.printer.is_json() {
        ctx.printer.json(&serde_json::json!({ "backups": taken }))?;
        return outcome();
    }
    for t in &taken {
        if t.error.is_some() {
            ctx.printer.result(&format!(
                "{}: not backed up (config problem, below)",
                t.environment
            ));
            continue;
        }
        match &t.backup {
            Some(b) => ctx.printer.result(&format!(
                "{}: backed up to state/{}/backups/{} (serial {}, {}, sha256 {}…)",
                t.environment,
                t.environment,
                b.file,
                b.serial,
                HumanBytes(b.bytes),
                &b.sha256[..12]
            )),
            None => ctx.printer.result(&format!(
                "{}: no state yet, nothing to back up",
                t.environment
            )),
        }
    }
    outcome()
}

#[derive(Serialize)]
struct Listed {
    /// What `restore` takes for it, unique in the list: its file name, or — only in the
    /// shared ledger — its shared name (`shared:<name>` when this machine has another
    /// backup of that name).
    name: String,
    #[serde(flatten)]
    backup: Backup,
    age_seconds: i64,
    /// Checked against its manifest line: the local file (local, both); a backup only
    /// in the shared ledger is listed unchecked (`verify` downloads and checks it).
    verified: bool,
    problem: Option<String>,
    #[serde(rename = "where")]
    place: Where,
}

pub async fn list(ctx: &Context, settings: BackupsSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let env = project.environment(&settings.env)?;
    if settings.versions {
        return super::versions::list(ctx, &project, env).await;
    }
    let dir = backups::dir(env);
    let (ledger, unresolved) = EnvLedger::resolve(&project, env, ctx.runner.clone());
    let ledger = ledger.with_timeout(settings.timeout);
    if let Some(note) = ledger.no_store() {
        crate::ledger::warn_once(&ctx.printer, note);
    }
    let found = ledger.backups().await?;
    let mut warnings = found.merged.warnings;
    warnings.extend(unresolved);
    for warning in &warnings {
        ctx.printer.warn(warning);
    }
    let shared = ledger.mode == LedgerMode::Backend;
    let names = crate::ledger::backup_names(&found.merged.entries);
    let labels: Vec<String> = found
        .merged
        .entries
        .iter()
        .zip(&names)
        .map(|(entry, name)| crate::ledger::backup_label(entry, name))
        .collect();
    let listed: Vec<Listed> = found
        .merged
        .entries
        .into_iter()
        .zip(names)
        .map(|(entry, name)| {
            let backup = entry.record;
            let check = match entry.place {
                Where::Shared => Err(
                    "only in the shared ledger: `tfenv verify` downloads and checks it".to_string(),
                ),
                Where::Local | Where::Both => backups::verify(&dir, &backup),
            };
            Listed {
                name,
                age_seconds: (Utc::now() - backup.created).num_seconds(),
                verified: check.is_ok(),
                problem: check.err().filter(|_| entry.place != Where::Shared),
                backup,
                place: entry.place,
            }
        })
        .collect();
    if ctx.printer.is_json() {
        ctx.printer
            .json(&serde_json::json!({ "environment": env.name, "backups": listed, "warnings": warnings }))?;
        return Ok(Exit::Success);
    }
    if listed.is_empty() {
        ctx.printer.result(&format!(
            "`{}` has no backups yet (take one with `tfenv backup {}`)",
            env.name, env.name
        ));
        return Ok(Exit::Success);
    }
    let mut rows = vec![
        [
            "CREATED (UTC)",
            "AGE",
            "SERIAL",
            "LINEAGE",
            "SIZE",
            "REASON",
            "VERIFIED",
            "FILE",
            "WHERE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    // WHERE only says something when there is a shared ledger.
    if !shared {
        rows[0].pop();
    }
    for (l, label) in listed.iter().zip(&labels) {
        let b = &l.backup;
        let mut row = vec![
            b.created.format("%Y-%m-%d %H:%M:%S").to_string(),
            Age(l.age_seconds).to_string(),
            b.serial.to_string(),
            b.lineage.chars().take(8).collect(),
            HumanBytes(b.bytes).to_string(),
            b.reason.clone(),
            match (l.verified, l.place) {
                (true, _) => "yes".to_string(),
                (false, Where::Shared) => "-".to_string(),
                (false, _) => "NO".to_string(),
            },
            label.clone(),
        ];
        if shared {
            row.push(l.place.as_str().to_string());
        }
        rows.push(row);
    }
    ctx.printer.result(output::table(&rows).trim_end());
    for l in listed
        .iter()
        .filter(|l| !l.verified && l.place != Where::Shared)
    {
        ctx.printer
            .warn(l.problem.as_deref().unwrap_or("not verified"));
    }
    Ok(Exit::Success)
}
