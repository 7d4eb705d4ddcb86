//! `tfenv history`: the environment's deploy ledger, newest last.

use chrono::SecondsFormat;

use crate::Context;
use crate::age::Age;
use crate::artifacts::history;
use crate::artifacts::jsonl::Jsonl;
use crate::exit::Exit;
use crate::output;
use crate::settings::HistorySettings;

pub async fn history(ctx: &Context, settings: HistorySettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let env = project.environment(&settings.env)?;
    let Jsonl {
        mut records,
        warnings,
        ..
    } = history::read(&env.artifacts_dir)?;
    for warning in &warnings {
        ctx.printer.warn(warning);
    }
    if settings.limit > 0 && records.len() > settings.limit {
        records.drain(..records.len() - settings.limit);
    }
    if ctx.printer.is_json() {
        ctx.printer
            .json(&serde_json::json!({ "environment": env.name, "records": records, "warnings": warnings }))?;
        return Ok(Exit::Success);
    }
    if records.is_empty() {
        ctx.printer
            .result(&format!("`{}` has no history yet", env.name));
        return Ok(Exit::Success);
    }
    let mut rows = vec![
        [
            "START (UTC)",
            "COMMAND",
            "RESULT",
            "PLAN",
            "WHO",
            "GIT",
            "TOOK",
            "BACKUP",
            "BUNDLE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in &records {
        rows.push(vec![
            r.start.to_rfc3339_opts(SecondsFormat::Secs, true),
            r.command.clone(),
            r.result.to_string(),
            r.plan
                .as_ref()
                .map_or_else(|| "-".to_string(), |p| p.short()),
            format!("{}@{}", r.who, r.host),
            r.git.as_ref().map_or_else(
                || "-".to_string(),
                |g| {
                    format!(
                        "{}{}",
                        &g.commit[..g.commit.len().min(8)],
                        if g.dirty { "+dirty" } else { "" }
                    )
                },
            ),
            Age(r.seconds.round() as i64).to_string(),
            r.backup.clone().unwrap_or_else(|| "-".to_string()),
            // `deploy --plan`: which plan bundle was applied (its bundle.json's sha256).
            r.bundle.as_ref().map_or_else(
                || "-".to_string(),
                |sha| format!("{}…", &sha[..sha.len().min(8)]),
            ),
        ]);
    }
    ctx.printer.result(output::table(&rows).trim_end());
    // A deploy past its promotion gate is worth seeing with its reason, not only in JSON.
    for r in &records {
        if let Some(reason) = &r.promotion_check_skipped {
            ctx.printer.result(&format!(
                "{} {} by {}@{}: promotion check skipped: {reason}",
                r.start.to_rfc3339_opts(SecondsFormat::Secs, true),
                r.command,
                r.who,
                r.host
            ));
        }
    }
    Ok(Exit::Success)
}
