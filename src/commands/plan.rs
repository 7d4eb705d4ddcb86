//! `tfenv plan`: the pipeline up to the summary; nothing is applied or recorded. One
//! environment streams terraform's output as it comes; several (or `--all`) are planned
//! at once, each one's lines kept and printed as one block when it finishes, then a table
//! (or one JSON document listing them all). With `--out DIR` (one environment), the plan
//! is kept as a plan bundle for `deploy --plan`; with `--publish`, it is uploaded to the
//! shared ledger for `deploy --plan ledger:<ID>`.

use std::path::PathBuf;
use std::time::Instant;

use futures_util::StreamExt;
use serde::Serialize;

use crate::Context;
use crate::error::{self, TfenvError};
use crate::exit::Exit;
use crate::output::{self, Block};
use crate::pipeline::{self, Mode, Report, Request, RunResult, published};
use crate::project::Environment;
use crate::settings::PlanSettings;
use crate::summary;
use crate::terraform::Terraform;

pub async fn plan(ctx: &Context, settings: PlanSettings) -> anyhow::Result<Exit> {
    if let Some(env) = settings.single() {
        return plan_env(ctx, &settings, env, settings.out.clone()).await;
    }
    // --out takes one environment (the settings refuse it with several).
    let mode = Mode::Plan {
        detailed_exitcode: settings.detailed_exitcode,
        out: None,
        encrypt: None,
        publish: false,
    };
    plan_many(ctx, &settings, mode).await
}

/// One environment's plan, streamed; `out` (`--out`) is its plan bundle's folder.
/// Bundles of several environments at once would each get `DIR/<env>/` through here.
async fn plan_env(
    ctx: &Context,
    settings: &PlanSettings,
    env: &str,
    out: Option<PathBuf>,
) -> anyhow::Result<Exit> {
    if settings.publish {
        // Before `--out`'s old bundle is removed and anything runs: a project that
        // cannot publish is a usage error at once.
        let project = ctx.project()?;
        let env = project.environment(env)?;
        let backend = crate::backend::Backends::default().resolve(env, &project)?;
        published::store(&project, env, &backend, ctx.runner.clone(), "--publish")?;
    }
    pipeline::run(
        ctx,
        Request {
            env: env.to_string(),
            mode: Mode::Plan {
                detailed_exitcode: settings.detailed_exitcode,
                out,
                encrypt: settings.encrypt.clone(),
                publish: settings.publish,
            },
            log: settings.log,
            lock_wait: settings.lock_wait,
            ledger_timeout: crate::ledger::DEFAULT_TIMEOUT,
            summary: ctx.settings.summary_files(settings.summary.as_deref()),
        },
    )
    .await
}

/// The document `plan` of several environments prints: one entry per environment, in
/// the order asked (tfenv.toml's for `--all`), each the document `plan <env>` prints —
/// with `error` (and `result` `failed`, `refused`, `interrupted`) for one that failed.
#[derive(Serialize)]
struct ManyReport {
    command: &'static str,
    environments: Vec<Report>,
    /// How many have changes, found none, failed.
    planned: usize,
    no_changes: usize,
    failed: usize,
    seconds: f64,
}

async fn plan_many(ctx: &Context, settings: &PlanSettings, mode: Mode) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let project = ctx.project()?;
    let selected = project.select(&settings.envs)?;
    // What every environment needs and cannot fix on its own, said once: a terraform that
    // is missing or outside required_version fails the command, not each block.
    ctx.terraform(&project).await?;
    let uninitialized = selected.iter().any(|env| {
        crate::backend::Backends::default()
            .resolve(env, &project)
            .is_ok_and(|backend| {
                Terraform::needs_init(env, &backend, Default::default()).unwrap_or(true)
            })
    });
    if uninitialized {
        // Its question must not wait in one environment's block.
        ctx.offer_gitignore(&project).await?;
    }
    ctx.printer.progress(&format!(
        "planning {} environment(s), {} at a time",
        selected.len(),
        settings.jobs.min(selected.len())
    ));

    // As `status` does: a stream of the environments' futures, `jobs` of them at a time.
    // Unordered: each block is printed the moment its environment finishes.
    let summary_files = ctx.settings.summary_files(settings.summary.as_deref());
    let mut finished = futures_util::stream::iter(selected.iter().enumerate().map(|(at, env)| {
        let mode = mode.clone();
        let summary_files = summary_files.clone();
        async move { (at, plan_one(ctx, env, mode, settings, summary_files).await) }
    }))
    .buffer_unordered(settings.jobs);
    let mut planned_envs: Vec<Option<Planned>> = selected.iter().map(|_| None).collect();
    while let Some((at, planned)) = finished.next().await {
        planned.block.print();
        planned_envs[at] = Some(planned);
    }
    drop(finished);
    let planned_envs: Vec<Planned> = planned_envs.into_iter().flatten().collect();
    if !summary_files.is_empty() {
        // One table for the run, a row per environment, in the order asked.
        let rows: Vec<summary::RunRow> = planned_envs.iter().map(|p| p.row.clone()).collect();
        pipeline::write_summary(ctx, &summary_files, &summary::runs(mode.command(), &rows));
    }
    let (reports, exits): (Vec<Report>, Vec<Exit>) =
        planned_envs.into_iter().map(|p| (p.report, p.exit)).unzip();

    let count = |result: RunResult| reports.iter().filter(|r| r.result == result).count();
    let (planned, no_changes) = (count(RunResult::Planned), count(RunResult::NoChanges));
    let interrupted = ctx.interrupts.received() || exits.contains(&Exit::Interrupted);
    let exit = many_exit(&exits, interrupted);
    let report = ManyReport {
        command: mode.command(),
        failed: reports.len() - planned - no_changes,
        planned,
        no_changes,
        environments: reports,
        seconds: output::seconds(started.elapsed()),
    };
    if ctx.printer.is_json() {
        ctx.printer.json(&report)?;
    } else {
        print_table(ctx, &report);
    }
    if exit == Exit::Interrupted {
        // Every terraform was sent SIGINT by the runner and has stopped; the top says so
        // and exits 130.
        return Err(TfenvError::Interrupted.into());
    }
    Ok(exit)
}

/// The exit code of several environments' plans, by the worst of their results (as
/// `plan --help` and README's exit-code table say): any failed → 1; else any refused
/// (a policy's verdict: retrying does not help) → 5; else any locked (someone else's
/// run: retrying later does) → 4; else interrupted → 130; else 3 when any has changes
/// (under --detailed-exitcode), 0.
fn many_exit(exits: &[Exit], interrupted: bool) -> Exit {
    let any = |exit: Exit| exits.contains(&exit);
    let failed = exits.iter().any(|e| {
        !matches!(
            e,
            Exit::Success | Exit::Changes | Exit::Refused | Exit::Locked | Exit::Interrupted
        )
    });
    match () {
        () if failed => Exit::Failure,
        () if any(Exit::Refused) => Exit::Refused,
        () if any(Exit::Locked) => Exit::Locked,
        () if interrupted => Exit::Interrupted,
        () if any(Exit::Changes) => Exit::Changes,
        () => Exit::Success,
    }
}

/// One environment of several, planned.
struct Planned {
    /// Its lines, printed when it finished.
    block: Block,
    /// Its entry of the JSON document and the table.
    report: Report,
    /// `Changes` under --detailed-exitcode, or the error's.
    exit: Exit,
    /// Its row of the job summary.
    row: summary::RunRow,
}

/// One environment's plan with its lines kept in a block.
async fn plan_one(
    ctx: &Context,
    env: &Environment,
    mode: Mode,
    settings: &PlanSettings,
    summary_files: Vec<std::path::PathBuf>,
) -> Planned {
    let started = Instant::now();
    let block = Block::default();
    let env_ctx = ctx.for_block(block.clone());
    let request = Request {
        env: env.name.clone(),
        mode: mode.clone(),
        log: settings.log,
        // Each environment waits for its own locks, side by side with the others.
        lock_wait: settings.lock_wait,
        ledger_timeout: crate::ledger::DEFAULT_TIMEOUT,
        // Its row only: the run writes one table of them all.
        summary: summary_files,
    };
    let (result, row, known) = pipeline::execute_planned(&env_ctx, request).await;
    match result {
        Ok(ran) => {
            if !ctx.printer.is_json() {
                pipeline::print_outcome(&env_ctx, &ran.report);
            }
            Planned {
                block,
                report: ran.report,
                exit: ran.exit,
                row,
            }
        }
        Err(err) => {
            let exit = error::exit_for(&err);
            // A plan the policy (or anything after planning) refused keeps its summary.
            let report =
                Report::failed(env, &mode, &err, output::seconds(started.elapsed())).knowing(known);
            if exit != Exit::Interrupted {
                let error = &report.error;
                let p = &env_ctx.printer;
                let label = p.paint_err(&console::Style::new().red().bold(), "error:");
                block.err(&format!("{label} {}: {err:#}", env.name));
                if let Some(hint) = error.as_ref().and_then(|e| e.hint.as_deref()) {
                    block.err(&format!("  {hint}"));
                }
            }
            Planned {
                block,
                report,
                exit,
                row,
            }
        }
    }
}

fn print_table(ctx: &Context, report: &ManyReport) {
    let p = &ctx.printer;
    let mut rows = vec![
        [
            "ENV", "TIER", "RESULT", "ADD", "CHANGE", "DESTROY", "REPLACE", "SECONDS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let dash = || "-".to_string();
    for entry in &report.environments {
        let plan = entry.plan.as_ref();
        let count = |prefix: &str, n: fn(&crate::terraform::plan::PlanSummary) -> u64| {
            plan.map_or_else(dash, |s| format!("{prefix}{}", n(s)))
        };
        let result = match entry.result {
            RunResult::Planned => p.paint(&console::Style::new().yellow(), "planned"),
            RunResult::NoChanges => p.paint(&console::Style::new().green(), "no changes"),
            ref failed => p.paint(&console::Style::new().red().bold(), failed.as_str()),
        };
        rows.push(vec![
            entry.environment.clone(),
            entry.tier.to_string(),
            result,
            count("+", |s| s.add),
            count("~", |s| s.change),
            count("-", |s| s.destroy),
            count("±", |s| s.replace),
            format!("{:.1}", entry.seconds),
        ]);
    }
    p.result(&format!("\n{}", output::table(&rows).trim_end()));
    // Each failure in one line (its block above has all of it).
    let failed: Vec<String> = report
        .environments
        .iter()
        .filter_map(|entry| {
            let error = entry.error.as_ref()?;
            if error.exit_code == Exit::Interrupted.code() {
                return None;
            }
            let line = output::headline(&error.message);
            Some(format!("  {}: {line}", entry.environment))
        })
        .collect();
    if !failed.is_empty() {
        p.result(&format!(
            "\n{}",
            p.paint(&console::Style::new().bold(), "failed:")
        ));
        p.result(&failed.join("\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_plans_exit_by_their_worst_result_failed_refused_locked_interrupted() {
        use Exit::*;
        assert_eq!(
            many_exit(&[Changes, Refused, Failure, Locked], false),
            Failure
        );
        assert_eq!(many_exit(&[Changes, Locked, Refused], false), Refused);
        assert_eq!(many_exit(&[Success, Locked, Changes], false), Locked);
        assert_eq!(many_exit(&[Locked, Interrupted], true), Locked);
        assert_eq!(many_exit(&[Changes, Interrupted], true), Interrupted);
        assert_eq!(many_exit(&[Success, Changes], false), Changes);
        assert_eq!(many_exit(&[Success, Success], false), Success);
    }
}
