//! `tfenv prune`: delete the oldest backups beyond N — never the newest, never the one
//! taken before the last successful deploy. It deletes files, so it confirms by tier.

use serde::Serialize;

use crate::Context;
use crate::artifacts::{backups, history};
use crate::cli::PruneArgs;
use crate::confirm::{Approval, Gate};
use crate::exit::Exit;

#[derive(Serialize)]
struct PruneReport {
    environment: String,
    keep: usize,
    deleted: Vec<String>,
    protected: Vec<String>,
}

pub async fn prune(ctx: &Context, args: PruneArgs) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let env = project.environment(&args.env)?;
    let dir = backups::dir(env);
    let protected: Vec<String> = history::last_good_backup(&env.artifacts_dir)?
        .into_iter()
        .collect();
    let doomed = backups::prune_plan(&dir, args.keep, &protected)?;
    let report = |deleted: Vec<String>| PruneReport {
        environment: env.name.clone(),
        keep: args.keep,
        deleted,
        protected: protected.clone(),
    };
    if doomed.is_empty() {
        if ctx.printer.is_json() {
            ctx.printer.json(&report(Vec::new()))?;
        } else {
            ctx.printer
                .result(&format!("{}: nothing to prune", env.name));
        }
        return Ok(Exit::Success);
    }
    if !ctx.printer.is_json() {
        ctx.printer.result(&format!(
            "{}: {} backup(s) to delete:",
            env.name,
            doomed.len()
        ));
        for name in &doomed {
            ctx.printer.result(&format!("  {name}"));
        }
    }
    let approval = Approval::new(
        &project,
        env,
        format!("delete {} backup(s) of", doomed.len()),
        0,
    )
    .with_review("check the list above");
    let gate = Gate::new(approval, super::flags(ctx, &args.approve));
    gate.check_flags()?;
    gate.ask(&ctx.interrupts).await?;
    let deleted = backups::prune(&dir, args.keep, &protected)?;
    if ctx.printer.is_json() {
        ctx.printer.json(&report(deleted))?;
    } else {
        ctx.printer.result(&format!(
            "{}: deleted {} backup(s), kept the newest {}",
            env.name,
            deleted.len(),
            args.keep.max(1)
        ));
    }
    Ok(Exit::Success)
}
