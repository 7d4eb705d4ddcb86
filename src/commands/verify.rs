//! `tfenv verify`: every backup against its manifest line (present, SHA-256, a valid
//! state whose header matches) and lines without a file: exit 1 naming each bad file.
//! Files the manifest does not know, leftover partial files and unreadable manifest
//! lines are warnings: shown, but not failed backups.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::Context;
use crate::artifacts::backups;
use crate::exit::Exit;
use crate::ledger::{EnvLedger, Where};
use crate::output::ByteProgress;
use crate::settings::VerifySettings;

#[derive(Serialize)]
struct EnvReport {
    name: String,
    checked: usize,
    bytes: u64,
    /// Backups that fail verification, and lines without their file: exit 1.
    problems: Vec<String>,
    /// Shown, but not a failed backup: unreadable manifest lines, files the manifest
    /// does not list, leftovers of a backup that never finished.
    warnings: Vec<String>,
    /// Files named like a backup that the manifest does not list (not backups).
    unlisted: Vec<String>,
    /// `.backup-*.partial` / `.tfenv-*.tmp` left in the backups folder.
    leftovers: Vec<String>,
    /// `ledger = "backend"`: each backup in the shared ledger, downloaded and checked
    /// against its manifest entry. Absent with a local ledger.
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<Vec<SharedCheck>>,
    /// Local backups that do not verify (for the summary line).
    #[serde(skip)]
    local_failed: usize,
    /// The shared ledger could not be read (for the summary line).
    #[serde(skip)]
    shared_unread: bool,
}

/// One shared backup, downloaded and checked.
#[derive(Serialize)]
struct SharedCheck {
    /// As `tfenv backups` names it (what `restore` takes).
    name: String,
    /// As `tfenv backups` has it: the local file name of a backup in both places, else
    /// its shared name.
    file: String,
    /// Its name in the shared ledger (`backups/<shared>`).
    shared: String,
    /// `shared` (only there) or `both` (this machine has it too).
    #[serde(rename = "where")]
    place: Where,
    verified: bool,
    problem: Option<String>,
}

pub async fn verify(ctx: &Context, settings: VerifySettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let selected = project.select(&settings.envs)?;
    let mut reports = Vec::new();
    for env in selected {
        let dir = backups::dir(env);
        let mut problems = Vec::new();
        // A manifest that cannot be read at all is this environment's problem; the
        // other environments are still checked.
        let manifest = backups::manifest(&dir).unwrap_or_else(|err| {
            problems.push(format!("{err:#}"));
            Default::default()
        });
        let mut warnings = manifest.warnings;
        let manifest = manifest.records;
        let unlisted: Vec<String> = backups::files(&dir)?
            .into_iter()
            .filter(|file| !manifest.iter().any(|b| &b.file == file))
            .collect();
        for file in &unlisted {
            warnings.push(format!(
                "`{file}` has no line in {}: not a backup tfenv took (or its line was lost), so it is not verified, counted or pruned; move it out of `{}` if it is not yours",
                backups::MANIFEST,
                project.show(&dir)
            ));
        }
        let leftovers = backups::leftovers(&dir)?;
        for file in &leftovers {
            warnings.push(format!(
                "`{file}` is left over from a backup that did not finish; unless one is running now, remove it: rm {}",
                shell_quote(&dir.join(file).to_string_lossy())
            ));
        }
        // Hashing is the cost: spread the files over the cores, off the async threads so
        // that Ctrl-C still ends the run. Large backups show their bytes going by.
        let progress = ctx.printer.byte_progress(
            format!("{}: verifying", env.name),
            Some(manifest.iter().map(|b| b.bytes).sum()),
        );
        let counted = progress.clone();
        let checked =
            tokio::task::spawn_blocking(move || check_all(&dir, &manifest, &counted)).await;
        progress.finish();
        let (found, (checked, bytes)) = checked?;
        let local_failed = found.len();
        problems.extend(found.into_iter().map(|(_, p)| p));
        let mut shared_unread = false;
        let shared = verify_shared(
            ctx,
            &project,
            env,
            settings.timeout,
            &mut problems,
            &mut warnings,
            &mut shared_unread,
        )
        .await;
        reports.push(EnvReport {
            name: env.name.clone(),
            checked,
            bytes,
            problems,
            warnings,
            unlisted,
            leftovers,
            shared,
            local_failed,
            shared_unread,
        });
    }
    let ok = reports.iter().all(|r| r.problems.is_empty());
    if ctx.printer.is_json() {
        ctx.printer
            .json(&serde_json::json!({ "ok": ok, "environments": reports }))?;
    } else {
        for r in &reports {
            ctx.printer.result(&summary_line(r));
            for p in &r.problems {
                ctx.printer.result(&format!("  {p}"));
            }
        }
    }
    // Warnings go to stderr like every command's (JSON keeps them in the document too).
    for r in &reports {
        for w in &r.warnings {
            ctx.printer.warn(w);
        }
    }
    Ok(if ok { Exit::Success } else { Exit::Failure })
}

/// One environment's line: how many backups verified, local and shared apart, and what
/// did not (the problems follow it, one a line).
fn summary_line(r: &EnvReport) -> String {
    let Some(shared) = &r.shared else {
        return match r.problems.len() {
            0 => format!("{}: {} backup(s) verified", r.name, r.checked),
            n => format!("{}: {n} problem(s) in {} backup(s):", r.name, r.checked),
        };
    };
    let local = match r.local_failed {
        0 => format!("{} local verified", r.checked),
        bad => format!("{bad} of {} local backup(s) do not verify", r.checked),
    };
    let failed = shared.iter().filter(|c| !c.verified).count();
    let shared = match (r.shared_unread, failed) {
        (true, _) => "could not read the shared ledger".to_string(),
        (false, 0) => format!("{} shared verified", shared.len()),
        (false, bad) => format!("{bad} of {} shared backup(s) do not verify", shared.len()),
    };
    match r.problems.len() {
        0 => format!("{}: {shared}, {local}", r.name),
        n => format!("{}: {n} problem(s): {shared}; {local}:", r.name),
    }
}

/// The backups in the shared ledger of `env` (`ledger = "backend"`), each downloaded
/// into a private temporary folder and checked like a local one; `None` without a
/// shared ledger. A shared folder that cannot be read is a problem (nothing there could
/// be checked), as are manifest entries without their state file.
async fn verify_shared(
    ctx: &Context,
    project: &crate::project::Project,
    env: &crate::project::Environment,
    timeout: std::time::Duration,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
    unread: &mut bool,
) -> Option<Vec<SharedCheck>> {
    let (ledger, unresolved) = EnvLedger::resolve(project, env, ctx.runner.clone());
    let ledger = ledger.with_timeout(timeout);
    if let Some(note) = ledger.no_store() {
        crate::ledger::warn_once(&ctx.printer, note);
    }
    if let Some(why) = unresolved {
        problems.push(why);
        *unread = true;
        return Some(Vec::new());
    }
    let location = ledger.location()?;
    let found = match ledger.backups().await {
        Ok(found) => found,
        Err(err) => {
            problems.push(format!("{err:#}"));
            *unread = true;
            return Some(Vec::new());
        }
    };
    if found.shared_unread {
        problems.extend(found.merged.warnings);
        *unread = true;
        return Some(Vec::new());
    }
    for name in &found.missing_files {
        problems.push(format!(
            "shared `{name}`: its manifest entry is in `{location}`, its state file is not"
        ));
    }
    for name in &found.without_entry {
        warnings.push(format!(
            "shared `{name}` has no manifest entry (`{name}.json`) in `{location}`: an upload cut short, or one going on now; it is not a backup"
        ));
    }
    let dir = env.artifacts_dir.join("backups");
    let mut checks = Vec::new();
    let names = crate::ledger::backup_names(&found.merged.entries);
    for (entry, shown) in found
        .merged
        .entries
        .into_iter()
        .zip(names)
        .filter(|(e, _)| e.place != Where::Local)
    {
        let label = crate::ledger::backup_label(&entry, &shown);
        let file = entry.record.file.clone();
        let mut backup = entry.record;
        let name = backup.shared.clone().unwrap_or_else(|| backup.file.clone());
        let result = match ledger.download_backup(&name, &dir).await {
            Ok(path) => {
                backup.file = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // A copy this machine has too is checked against its local manifest line.
                let checked = backups::verify(&dir, &backup);
                let _ = std::fs::remove_file(&path);
                checked.map_err(|why| {
                    why.replace(&format!("`{}`", backup.file), &format!("`{label}`"))
                })
            }
            Err(err) => Err(format!("`{label}` cannot be downloaded: {err:#}")),
        };
        if let Err(why) = &result {
            problems.push(format!("shared {why}"));
        }
        checks.push(SharedCheck {
            name: shown,
            file,
            shared: name,
            place: entry.place,
            verified: result.is_ok(),
            problem: result.err(),
        });
    }
    Some(checks)
}

/// `'…'` for a shell, so the printed command can be pasted as is.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Verifies every manifest line on all cores: the problems found, in manifest order,
/// and (backups checked, their bytes).
fn check_all(
    dir: &std::path::Path,
    manifest: &[backups::Backup],
    progress: &ByteProgress,
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
                    if let Err(problem) =
                        backups::verify_counting(dir, backup, &|n| progress.add(n))
                    {
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
