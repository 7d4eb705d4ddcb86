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
use crate::settings::PruneSettings;

#[derive(Serialize)]
struct PruneReport {
    environment: String,
    keep: usize,
    deleted: Vec<String>,
    protected: Vec<String>,
    /// Every backup that stays, newest first, with why.
    kept: Vec<Kept>,
    /// Why nothing was deleted (`null` when something was).
    nothing_to_prune: Option<String>,
    warnings: Vec<String>,
}

pub async fn prune(ctx: &Context, settings: PruneSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let env = project.environment(&settings.env)?;
    let dir = backups::dir(env);
    let history = history::read(&env.artifacts_dir)?;
    let protected: Vec<String> = history::last_good(&history.records).into_iter().collect();
    let mut plan = backups::prune_plan(&dir, settings.keep, &protected)?;
    plan.warnings.splice(0..0, history.warnings);
    for warning in &plan.warnings {
        ctx.printer.warn(warning);
    }
    let report = |deleted: Vec<String>, nothing_to_prune: Option<String>| PruneReport {
        environment: env.name.clone(),
        keep: settings.keep,
        deleted,
        protected: protected.clone(),
        kept: plan.kept.clone(),
        nothing_to_prune,
        warnings: plan.warnings.clone(),
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
    .with_review("check the list above");
    let gate = Gate::new(approval, settings.flags.clone());
    gate.check_flags()?;
    gate.ask(&ctx.interrupts, ctx.prompter.clone()).await?;
    // Exactly the plan shown: a backup taken meanwhile is not in it.
    let deleted = backups::prune_planned(&dir, &plan)?;
    if ctx.printer.is_json() {
        ctx.printer.json(&report(deleted, None))?;
    } else {
        ctx.printer.result(&format!(
            "{}: deleted {} backup(s), kept the newest {}{}",
            env.name,
            deleted.len(),
            settings.keep.max(1),
            if plan.kept.iter().any(|k| k.reason == KeptReason::LastGood) {
                " and the last known good"
            } else {
                ""
            }
        ));
    }
    Ok(Exit::Success)
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
    if last_good.is_empty() {
        return if keep == 0 {
            "1 backup, and the newest is always kept".to_string()
        } else {
            format!("{} backup(s), no more than --keep {keep}", kept.len())
        };
    }
    let newest = kept.len() - last_good.len();
    format!(
        "kept the newest {newest} (--keep {keep}) and `{}`, the last known good backup (taken before the last successful deploy)",
        last_good.join("`, `")
    )
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
    }
}
