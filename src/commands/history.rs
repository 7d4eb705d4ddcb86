//! `tfenv history`: the environment's deploy ledger, newest last.

use chrono::SecondsFormat;
use serde::Serialize;

use crate::Context;
use crate::age::Age;
use crate::artifacts::history::HistoryRecord;
use crate::exit::Exit;
use crate::ledger::{self, EnvLedger, Where};
use crate::output;
use crate::project::LedgerMode;
use crate::settings::HistorySettings;

/// One record as `history --output json` shows it: the record and where it lives.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    record: &'a HistoryRecord,
    #[serde(rename = "where")]
    place: Where,
}

pub async fn history(ctx: &Context, settings: HistorySettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let env = project.environment(&settings.env)?;
    let (ledger, unresolved) = EnvLedger::resolve(&project, env, ctx.runner.clone());
    let ledger = ledger.with_timeout(settings.timeout);
    if let Some(note) = ledger.no_store() {
        ledger::warn_once(&ctx.printer, note);
    }
    let merged = ledger.history_newest(settings.limit).await?;
    let mut warnings = merged.warnings;
    warnings.extend(unresolved);
    for warning in &warnings {
        ctx.printer.warn(warning);
    }
    let shared = ledger.mode == LedgerMode::Backend;
    let records = merged.entries;
    if ctx.printer.is_json() {
        let shown: Vec<Shown> = records
            .iter()
            .map(|e| Shown {
                record: &e.record,
                place: e.place,
            })
            .collect();
        ctx.printer.json(
            &serde_json::json!({ "environment": env.name, "records": shown, "warnings": warnings }),
        )?;
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
            "WHERE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    // WHERE only says something when there is a shared ledger.
    if !shared {
        rows[0].pop();
    }
    for entry in &records {
        let r = &entry.record;
        let mut row = vec![
            r.start.to_rfc3339_opts(SecondsFormat::Secs, true),
            // A restore says what it restored (BACKUP is the state it replaced).
            match &r.restored {
                Some(restored) => format!("{} ← {restored}", r.command),
                None => r.command.clone(),
            },
            r.result.to_string(),
            // A drift check has no plan to apply: what it found.
            match (&r.plan, &r.drift) {
                (Some(plan), _) => plan.short(),
                (None, Some(drift)) => drift.short(),
                (None, None) => "-".to_string(),
            },
            format!("{}@{}", r.who, r.host),
            r.git.as_ref().map_or_else(
                || "-".to_string(),
                |g| {
                    format!(
                        "{}{}",
                        g.commit.chars().take(8).collect::<String>(),
                        if g.dirty { "+dirty" } else { "" }
                    )
                },
            ),
            Age(r.seconds.round() as i64).to_string(),
            r.backup.clone().unwrap_or_else(|| "-".to_string()),
            // `deploy --plan`: which plan bundle was applied (its bundle.json's sha256).
            r.bundle.as_ref().map_or_else(
                || "-".to_string(),
                |sha| format!("{}…", sha.chars().take(8).collect::<String>()),
            ),
        ];
        if shared {
            // Only here, and its upload failed: the next command that writes the ledger
            // retries it.
            row.push(match (entry.place, r.unshared) {
                (Where::Local, true) => "local (unshared)".to_string(),
                (place, _) => place.as_str().to_string(),
            });
        }
        rows.push(row);
    }
    ctx.printer.result(output::table(&rows).trim_end());
    // A deploy past its promotion gate is worth seeing with its reason, not only in JSON.
    for r in records.iter().map(|entry| &entry.record) {
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
