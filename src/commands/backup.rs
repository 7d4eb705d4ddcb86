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
use crate::output;
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
                })
            }
        }))
        .buffered(4)
        .collect()
        .await;
    let mut taken = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let mut failed = Vec::new();
    for (name, err) in unusable {
        taken.push(Taken {
            environment: name.clone(),
            backup: None,
            error: Some(format!("{err:#}")),
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
    #[serde(flatten)]
    backup: Backup,
    age_seconds: i64,
    verified: bool,
    problem: Option<String>,
}

pub async fn list(ctx: &Context, settings: BackupsSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let env = project.environment(&settings.env)?;
    if settings.versions {
        return super::versions::list(ctx, &project, env).await;
    }
    let dir = backups::dir(env);
    let manifest = backups::manifest(&dir)?;
    for warning in &manifest.warnings {
        ctx.printer.warn(warning);
    }
    let listed: Vec<Listed> = manifest
        .records
        .into_iter()
        .map(|backup| {
            let check = backups::verify(&dir, &backup);
            Listed {
                age_seconds: (Utc::now() - backup.created).num_seconds(),
                verified: check.is_ok(),
                problem: check.err(),
                backup,
            }
        })
        .collect();
    if ctx.printer.is_json() {
        ctx.printer
            .json(&serde_json::json!({ "environment": env.name, "backups": listed, "warnings": manifest.warnings }))?;
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
        ]
        .map(String::from)
        .to_vec(),
    ];
    for l in &listed {
        let b = &l.backup;
        rows.push(vec![
            b.created.format("%Y-%m-%d %H:%M:%S").to_string(),
            Age(l.age_seconds).to_string(),
            b.serial.to_string(),
            b.lineage.chars().take(8).collect(),
            HumanBytes(b.bytes).to_string(),
            b.reason.clone(),
            if l.verified {
                "yes".to_string()
            } else {
                "NO".to_string()
            },
            b.file.clone(),
        ]);
    }
    ctx.printer.result(output::table(&rows).trim_end());
    for l in listed.iter().filter(|l| !l.verified) {
        ctx.printer
            .warn(l.problem.as_deref().unwrap_or("not verified"));
    }
    Ok(Exit::Success)
}
