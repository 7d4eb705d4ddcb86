//! `tfenv verify`: every backup against its manifest line (present, SHA-256, a valid
//! state whose header matches), files the manifest does not know, and lines without a
//! file. Exit 1 naming each bad file.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::Context;
use crate::artifacts::backups;
use crate::cli::VerifyArgs;
use crate::error::TfenvError;
use crate::exit::Exit;

#[derive(Serialize)]
struct EnvReport {
    name: String,
    checked: usize,
    bytes: u64,
    problems: Vec<String>,
}

pub async fn verify(ctx: &Context, args: VerifyArgs) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let selected = project.select(&args.envs)?;
    let mut reports = Vec::new();
    for env in selected {
        let dir = backups::dir(env);
        let manifest = backups::manifest(&dir)?;
        let files = backups::files(&dir)?;
        let mut problems = Vec::new();
        for file in &files {
            if !manifest.iter().any(|b| &b.file == file) {
                problems.push(format!("`{file}` has no line in MANIFEST.jsonl"));
            }
        }
        // Hashing is the cost: spread the files over the cores, off the async threads so
        // that Ctrl-C still ends the run.
        let (found, (checked, bytes)) =
            tokio::task::spawn_blocking(move || check_all(&dir, &manifest)).await?;
        problems.extend(found.into_iter().map(|(_, p)| p));
        reports.push(EnvReport {
            name: env.name.clone(),
            checked,
            bytes,
            problems,
        });
    }
    let ok = reports.iter().all(|r| r.problems.is_empty());
    if ctx.printer.is_json() {
        ctx.printer
            .json(&serde_json::json!({ "ok": ok, "environments": reports }))?;
    } else {
        for r in &reports {
            if r.problems.is_empty() {
                ctx.printer
                    .result(&format!("{}: {} backup(s) verified", r.name, r.checked));
            } else {
                ctx.printer.result(&format!(
                    "{}: {} problem(s) in {} backup(s):",
                    r.name,
                    r.problems.len(),
                    r.checked
                ));
                for p in &r.problems {
                    ctx.printer.result(&format!("  {p}"));
                }
            }
        }
    }
    if ok {
        Ok(Exit::Success)
    } else {
        Err(TfenvError::Reported(Exit::Failure).into())
    }
}

/// Verifies every manifest line on all cores: the problems found, in manifest order,
/// and (backups checked, their bytes).
fn check_all(
    dir: &std::path::Path,
    manifest: &[backups::Backup],
) -> (Vec<(usize, String)>, (usize, u64)) {
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(manifest.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(backup) = manifest.get(i) else { break };
                    if let Err(problem) = backups::verify(dir, backup) {
                        found.lock().expect("results").push((i, problem));
                    }
                }
            });
        }
    });
    let mut found = found.into_inner().expect("results");
    found.sort();
    (
        found,
        (manifest.len(), manifest.iter().map(|b| b.bytes).sum()),
    )
}
