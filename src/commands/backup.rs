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
    /// `null`: the environment has no state yet; nothing was written.
    backup: Option<Backup>,
}

pub async fn backup(ctx: &Context, settings: BackupSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let resolved = Backends::default().resolve_all(&project, &settings.names)?;
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
                })
            }
        }))
        .buffered(4)
        .collect()
        .await;
    let taken = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    if ctx.printer.is_json() {
        ctx.printer.json(&serde_json::json!({ "backups": taken }))?;
        return Ok(Exit::Success);
    }
    for t in &taken {
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
    Ok(Exit::Success)
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
