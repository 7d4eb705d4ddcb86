//! `tfenv prune`: delete the oldest backups beyond N — never the newest, never the one
//! taken before the last successful deploy. It deletes files, so it confirms by tier.
//! The whole plan is computed before anything is deleted; only the manifest's backups
//! count, never a file merely named like one.

use serde::Serialize;

use crate::Context;
use crate::artifacts::backups::{self, Kept, KeptReason};
use crate::artifacts::history;
use crate::confirm::{Approval, Gate};
use crate::exit::Exit;
use crate::ledger::EnvLedger;
use crate::project::LedgerMode;
use crate::settings::PruneSettings;

#[derive(Serialize)]
struct PruneReport {
    environment: String,
    keep: usize,
    deleted: Vec<String>,
    protected: Vec<String>,
    /// Every backup taken since then is kept too: history has unreadable lines that may
    /// name a newer last known good backup (a warning says which).
    protected_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Every backup that stays, newest first, with why.
    kept: Vec<Kept>,
    /// Why nothing was deleted (`null` when something was).
    nothing_to_prune: Option<String>,
    warnings: Vec<String>,
    /// `ledger = "backend"`: what went up to the shared ledger before the prune.
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<crate::ledger::Shared>,
}

pub async fn prune(ctx: &Context, settings: PruneSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let env = project.environment(&settings.env)?;
    let dir = backups::dir(env);
    // With the shared ledger, what is only on this machine is uploaded before any of it
    // is deleted here (tfenv never deletes a shared backup), and what is still not
    // uploaded after that — the upload failed, or the ledger cannot be reached — is kept:
    // this machine has its only copy.
    let mut shared = Vec::new();
    let mut keep_unshared = None;
    let mut uploaded: Option<crate::ledger::Shared> = None;
    if project.ledger == LedgerMode::Backend {
        let (ledger, unresolved) = EnvLedger::resolve(&project, env, ctx.runner.clone());
        if let Some(note) = ledger.no_store() {
            crate::ledger::warn_once(&ctx.printer, note);
        } else {
            keep_unshared = Some(
                ledger
                    .location()
                    .map_or_else(|| "the shared ledger".to_string(), |l| format!("`{l}`")),
            );
        }
        shared.extend(unresolved);
        let published = ledger.publish_pending().await;
        if let Some(said) = published.said() {
            ctx.printer.progress(&format!("{}: {said}", env.name));
        }
        for renamed in &published.renamed {
            ctx.printer.progress(&format!(
                "{}: backup `{}` is stored as `{}` in the shared ledger (the name was taken by another machine's backup of the same second)",
                env.name, renamed.file, renamed.shared
            ));
        }
        shared.extend(published.warnings.iter().cloned());
        uploaded = Some(published);
    }
    let history = history::read(&env.artifacts_dir)?;
    let protection = history::protection(&env.artifacts_dir.join(history::FILE), &history);
    let mut protected = protection.protected;
    protected.unshared = keep_unshared.is_some();
    let mut plan = backups::prune_plan(&dir, settings.keep, &protected)?;
    let unshared = plan
        .kept
        .iter()
        .filter(|k| k.reason == KeptReason::Unshared)
        .count();
    let kept_unshared = keep_unshared.filter(|_| unshared > 0).map(|location| {
        format!(
            "kept {unshared} backup(s) of `{}` that are not in the shared ledger at {location} yet (their upload failed, or could not be tried): this machine has their only copy; prune deletes them once the next command that writes the ledger (`tfenv backup {}`, deploy, prune…) has uploaded them",
            env.name, env.name
        )
    });
    plan.warnings.splice(
        0..0,
        shared
            .into_iter()
            .chain(history.warnings)
            .chain(protection.warnings)
            .chain(kept_unshared),
    );
    for warning in &plan.warnings {
        ctx.printer.warn(warning);
    }
    let report = |deleted: Vec<String>, nothing_to_prune: Option<String>| PruneReport {
        environment: env.name.clone(),
        keep: settings.keep,
        deleted,
        protected: protected.files.clone(),
        protected_since: protected.since,
        kept: plan.kept.clone(),
        nothing_to_prune,
        warnings: plan.warnings.clone(),
        shared: uploaded.clone(),
    };
    if plan.delete.is_empty() {
        let why = why_nothing(&plan.kept, settings.keep);
        if ctx.printer.is_json() {
            ctx.printer.json(&report(Vec::new(), Some(why)))?;
        } else {
            ctx.printer
                .result(&format!("{}: nothing to prune: {why}", env.name));
        }
        return Ok(Exit::Success);
    }
    if !ctx.printer.is_json() {
        ctx.printer.result(&format!(
            "{}: {} backup(s) to delete:",
            env.name,
            plan.delete.len()
        ));
        for name in &plan.delete {
            ctx.printer.result(&format!("  {name}"));
        }
    }
    let approval = Approval::new(
        &project,
        env,
        format!("delete {} backup(s) of", plan.delete.len()),
        0,
    )
    .with_review(if ctx.printer.is_json() {
        // No list was printed: the refusal names the files itself.
        format!("check the backups it deletes ({})", listed(&plan.delete))
    } else {
        "check the list above".to_string()
    });
    let gate = Gate::new(approval, settings.flags.clone());
    gate.check_flags()?;
    gate.ask(&ctx.interrupts, ctx.prompter.clone()).await?;
    // Exactly the plan shown: a backup taken meanwhile is not in it.
    let deleted = backups::prune_planned(&dir, &plan)?;
    if ctx.printer.is_json() {
        ctx.printer.json(&report(deleted, None))?;
    } else {
        ctx.printer.result(&format!(
            "{}: deleted {} backup(s), kept the newest {}{}{}{}",
            env.name,
            deleted.len(),
            settings.keep.max(1),
            if plan.kept.iter().any(|k| k.reason == KeptReason::LastGood) {
                " and the last known good"
            } else {
                ""
            },
            if plan
                .kept
                .iter()
                .any(|k| k.reason == KeptReason::MaybeLastGood)
            {
                " and those taken since an unreadable history line"
            } else {
                ""
            },
            if plan.kept.iter().any(|k| k.reason == KeptReason::Unshared) {
                " and those not in the shared ledger yet"
            } else {
                ""
            }
        ));
    }
    Ok(Exit::Success)
}

/// `a`, `b`, `c` and 2 more: the files a refusal names.
fn listed(files: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = files
        .iter()
        .take(SHOWN)
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > SHOWN {
        text.push_str(&format!(" and {} more", files.len() - SHOWN));
    }
    text
}

/// Why a plan deletes nothing, from what it keeps: `3 backup(s), no more than --keep 5`,
/// `kept the newest 2 (--keep 2) and the last known good …`.
fn why_nothing(kept: &[Kept], keep: usize) -> String {
    if kept.is_empty() {
        return "no backups".to_string();
    }
    let last_good: Vec<&str> = kept
        .iter()
        .filter(|k| k.reason == KeptReason::LastGood)
        .map(|k| k.file.as_str())
        .collect();
    let maybe = kept
        .iter()
        .filter(|k| k.reason == KeptReason::MaybeLastGood)
        .count();
    let unshared = kept
        .iter()
        .filter(|k| k.reason == KeptReason::Unshared)
        .count();
    if last_good.is_empty() && maybe == 0 && unshared == 0 {
        return if keep == 0 {
            "1 backup, and the newest is always kept".to_string()
        } else {
            format!("{} backup(s), no more than --keep {keep}", kept.len())
        };
    }
    let newest = kept.len() - last_good.len() - maybe - unshared;
    let mut why = format!("kept the newest {newest} (--keep {keep})");
    if !last_good.is_empty() {
        why += &format!(
            " and `{}`, the last known good backup (taken before the last successful deploy)",
            last_good.join("`, `")
        );
    }
    if maybe > 0 {
        why += &format!(
            " and {maybe} backup(s) taken since an unreadable history line, which may name the last known good one"
        );
    }
    if unshared > 0 {
        why += &format!(
            " and {unshared} backup(s) not in the shared ledger yet, whose only copy is on this machine"
        );
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(reasons: &[KeptReason]) -> Vec<Kept> {
        reasons
            .iter()
            .enumerate()
            .map(|(i, &reason)| Kept {
                file: format!("b{i}"),
                reason,
            })
            .collect()
    }

    #[test]
    fn nothing_to_prune_says_why() {
        use KeptReason::*;
        assert_eq!(why_nothing(&[], 3), "no backups");
        assert_eq!(
            why_nothing(&kept(&[Newest, WithinKeep]), 5),
            "2 backup(s), no more than --keep 5"
        );
        assert_eq!(
            why_nothing(&kept(&[Newest]), 0),
            "1 backup, and the newest is always kept"
        );
        assert_eq!(
            why_nothing(&kept(&[Newest, WithinKeep, LastGood]), 2),
            "kept the newest 2 (--keep 2) and `b2`, the last known good backup (taken before the last successful deploy)"
        );
        assert_eq!(
            why_nothing(&kept(&[Newest, MaybeLastGood, MaybeLastGood]), 1),
            "kept the newest 1 (--keep 1) and 2 backup(s) taken since an unreadable history line, which may name the last known good one"
        );
        assert_eq!(
            why_nothing(&kept(&[Newest, Unshared]), 1),
            "kept the newest 1 (--keep 1) and 1 backup(s) not in the shared ledger yet, whose only copy is on this machine"
        );
    }
}
