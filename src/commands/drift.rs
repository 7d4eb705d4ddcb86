//! `tfenv drift [ENV...] | --all` (DESIGN.md §11): what changed outside Terraform, and
//! the code not yet applied, per environment, checked at once (`-j`). Each check inits if
//! needed, plans with `-lock=false -detailed-exitcode` into a private temporary file and
//! reads it with `show -json`: no state lock, no state written, no prompt. Each check
//! writes `state/<env>/drift.json` and a `drift` history record (shared with
//! `ledger = "backend"`); the run prints one table worst first (or one JSON document) and
//! exits 3 when anything drifted, 1 when a check failed (failure wins), else 0.

use std::time::Instant;

use chrono::Utc;
use futures_util::StreamExt;
use serde::Serialize;

use crate::Context;
use crate::artifacts::drift::{self, CheckResult, DriftReport, Severity};
use crate::artifacts::drift_check::{self, Findings};
use crate::artifacts::history::{self, DriftCounts, HistoryRecord, RunResult};
use crate::backend::Backends;
use crate::error::{self, TfenvError};
use crate::exit::Exit;
use crate::hooks::HookEvent;
use crate::output::{self, Block};
use crate::project::{Environment, Project};
use crate::settings::DriftSettings;
use crate::summary;
use crate::terraform::{InitOptions, Terraform};

/// The one document `drift --output json` prints: every environment checked, in the
/// order asked (tfenv.toml's for `--all`), and the totals.
#[derive(Serialize)]
struct DriftDocument {
    command: &'static str,
    environments: Vec<Entry>,
    /// How many environments drifted, were in sync, failed their check.
    drifted: usize,
    in_sync: usize,
    failed: usize,
    /// The worst severity over all environments; `null` when nothing drifted.
    severity: Option<Severity>,
    /// The exit code of the run and what it means (`drifted`, `failed`, `in-sync`,
    /// `interrupted`).
    exit_code: u8,
    meaning: &'static str,
    seconds: f64,
}

/// One environment's entry: its drift report (what `drift.json` holds) and, for people and
/// scripts, the hint of a failed check and what could not be recorded.
#[derive(Serialize)]
struct Entry {
    #[serde(flatten)]
    report: DriftReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    /// Recording the check (drift.json, history, the shared ledger) went wrong: the check
    /// itself stands.
    warnings: Vec<String>,
}

/// One environment, checked.
struct Checked {
    /// Its lines, printed when it finished.
    block: Block,
    entry: Entry,
    /// Stopped by Ctrl-C: nothing was recorded for it.
    interrupted: bool,
}

pub async fn drift(ctx: &Context, settings: DriftSettings) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let project = ctx.project()?;
    let selected = project.select(&settings.envs)?;
    // A terraform that is missing or outside required_version fails the command, said once.
    ctx.terraform(&project).await?;
    // Drift runs unattended (nightly CI, cron) and never asks anything: the .gitignore
    // offer an init would make is a warning, before the environments start.
    let uninitialized = selected.iter().any(|env| {
        Backends::default()
            .resolve(env, &project)
            .is_ok_and(|backend| {
                Terraform::needs_init(env, &backend, Default::default()).unwrap_or(true)
            })
    });
    ctx.warn_gitignore(&project, uninitialized).await?;
    ctx.printer.progress(&format!(
        "checking {} environment(s) for drift, {} at a time",
        selected.len(),
        settings.jobs.min(selected.len())
    ));
    let project = &project;
    let settings = &settings;
    let mut finished = futures_util::stream::iter(
        selected
            .iter()
            .enumerate()
            .map(|(at, env)| async move { (at, check_one(ctx, project, env, settings).await) }),
    )
    .buffer_unordered(settings.jobs);
    let mut checks: Vec<Option<Checked>> = selected.iter().map(|_| None).collect();
    while let Some((at, checked)) = finished.next().await {
        checked.block.print();
        checks[at] = Some(checked);
    }
    drop(finished);
    let checks: Vec<Checked> = checks.into_iter().flatten().collect();

    // A Ctrl-C that only stopped a hook leaves every check finished: the run ends as
    // they did. One that stopped a check (or kept one from starting) is an interrupt.
    let interrupted = checks.iter().any(|c| c.interrupted);
    let count = |result: CheckResult| {
        checks
            .iter()
            .filter(|c| !c.interrupted && c.entry.report.result == result)
            .count()
    };
    let (drifted, in_sync, failed) = (
        count(CheckResult::Drifted),
        count(CheckResult::InSync),
        count(CheckResult::Failed),
    );
    let (exit, meaning) = match () {
        () if interrupted => (Exit::Interrupted, "interrupted"),
        () if failed > 0 => (Exit::Failure, "failed"),
        () if drifted > 0 => (Exit::Changes, "drifted"),
        () => (Exit::Success, "in-sync"),
    };
    // Worst first: by severity, then failed checks, then those in sync; ties in the order
    // asked.
    let mut worst_first: Vec<&Checked> = checks.iter().collect();
    worst_first.sort_by_key(|c| std::cmp::Reverse(rank(&c.entry.report)));

    let summary_files = ctx.settings.summary_files(settings.summary.as_deref());
    if !summary_files.is_empty() {
        let rows: Vec<summary::DriftRow> = worst_first
            .iter()
            .filter(|c| !c.interrupted)
            .map(|c| summary_row(&c.entry.report))
            .collect();
        crate::pipeline::write_summary(ctx, &summary_files, &summary::drift(&rows));
    }
    if ctx.printer.is_json() {
        let severity = checks.iter().filter_map(|c| c.entry.report.severity).max();
        ctx.printer.json(&DriftDocument {
            command: "drift",
            drifted,
            in_sync,
            failed,
            severity,
            exit_code: exit.code(),
            meaning,
            seconds: output::seconds(started.elapsed()),
            environments: checks.into_iter().map(|c| c.entry).collect(),
        })?;
    } else {
        print_human(ctx, &worst_first);
    }
    if exit == Exit::Interrupted {
        // Every terraform was sent SIGINT by the runner and has stopped; each temporary
        // plan was removed with its check. The top says so and exits 130.
        return Err(TfenvError::Interrupted.into());
    }
    Ok(exit)
}

/// Orders reports worst first: drift by severity above a failed check above in sync.
fn rank(report: &DriftReport) -> u8 {
    match (report.result, report.severity) {
        (CheckResult::Drifted, Some(severity)) => 2 + severity as u8,
        (CheckResult::Drifted, None) => 2,
        (CheckResult::Failed, _) => 1,
        (CheckResult::InSync, _) => 0,
    }
}

/// One environment's check with its lines kept in a block, recorded.
async fn check_one(
    ctx: &Context,
    project: &Project,
    env: &Environment,
    settings: &DriftSettings,
) -> Checked {
    let started = Instant::now();
    let checked = Utc::now();
    let block = Block::default();
    let env_ctx = ctx.for_block(block.clone());
    let mut terraform_version = None;
    let result = tokio::time::timeout(
        settings.timeout,
        run_check(&env_ctx, project, env, &mut terraform_version),
    )
    .await
    .unwrap_or_else(|_| {
        // The check's future was dropped: its terraform's process group was killed and
        // its temporary plan removed.
        Err(TfenvError::config(
            format!(
                "the drift check of `{}` did not finish within {} (--timeout); its terraform was stopped",
                env.name,
                humantime::format_duration(settings.timeout)
            ),
            Some(format!(
                "give it longer with `--timeout`, or see what terraform waits for with `tfenv -v drift {}`",
                env.name
            )),
        )
        .into())
    });
    let mut report = DriftReport {
        environment: env.name.clone(),
        tier: env.tier,
        checked,
        seconds: 0.0,
        result: CheckResult::InSync,
        severity: None,
        drifted: Vec::new(),
        pending: Vec::new(),
        error: None,
        terraform_version,
        last_completed: None,
    };
    let p = &env_ctx.printer;
    let (hint, interrupted) = match result {
        Ok(findings) => {
            report.severity = findings.severity();
            report.result = match findings.drifted.is_empty() {
                true => CheckResult::InSync,
                false => CheckResult::Drifted,
            };
            let Findings { drifted, pending } = findings;
            report.drifted = drifted;
            report.pending = pending;
            (None, false)
        }
        Err(err) => {
            let interrupted = error::exit_for(&err) == Exit::Interrupted;
            let hint = error::hint_for(&err).map(str::to_string);
            report.result = CheckResult::Failed;
            report.error = Some(format!("{err:#}"));
            // A check that fails knows nothing new: what the last completed check found
            // stays known (status keeps reporting its drift). An unreadable drift.json
            // has nothing to carry.
            report.last_completed = drift::read(&env.artifacts_dir)
                .ok()
                .flatten()
                .and_then(|last| last.completed());
            if !interrupted {
                let label = p.paint_err(&console::Style::new().red().bold(), "error:");
                block.err(&format!("{label} {}: {err:#}", env.name));
                if let Some(hint) = &hint {
                    block.err(&format!("  {hint}"));
                }
            }
            (hint, interrupted)
        }
    };
    report.seconds = output::seconds(started.elapsed());
    if interrupted {
        // An interrupted check knows nothing: the last check's drift.json stays.
        report.error = Some("interrupted".to_string());
        return Checked {
            block,
            entry: Entry {
                report,
                hint: None,
                warnings: Vec::new(),
            },
            interrupted: true,
        };
    }
    let mut warnings = record(&env_ctx, project, env, &report).await;
    if !p.is_json() {
        block.out(&outcome_line(&report));
    }
    // `[hooks] on_drift` (DESIGN.md §11), once the check is recorded and said: its
    // document is `report`, the value drift.json, the JSON entry and the summary row are
    // made from. Every check that completed or failed is the event (its `result` says
    // which); an interrupted one returned above.
    let hook = crate::hooks::run(&env_ctx, project, HookEvent::Drift, &env.name, &report);
    warnings.extend(hook.await);
    Checked {
        block,
        entry: Entry {
            report,
            hint,
            warnings,
        },
        interrupted: false,
    }
}

/// The check itself: init if needed, the plan without the lock, `show -json`, the
/// findings. The plan file lives in a private temporary folder under `state/<env>/`,
/// removed when this returns or is dropped (a failure, Ctrl-C, `--timeout`).
async fn run_check(
    ctx: &Context,
    project: &Project,
    env: &Environment,
    terraform_version: &mut Option<String>,
) -> anyhow::Result<Findings> {
    // The environment's own problems (a var file that is missing) fail its check only.
    let env = project.environment(&env.name)?;
    let backend = Backends::default().resolve(env, project)?;
    let mut tf = ctx.terraform(project).await?;
    *terraform_version = Some(tf.version.to_string());
    // terraform's plan text is not the report: shown with -v only.
    tf.stream = tf.echo;
    ctx.ensure_init(&tf, project, env, &backend, InitOptions::default(), None)
        .await?;
    crate::files::ensure_private_dir(&env.artifacts_dir)?;
    remove_leftover_checks(&env.artifacts_dir);
    let temp = tempfile::Builder::new()
        .prefix(".drift-")
        .tempdir_in(&env.artifacts_dir)
        .map_err(|err| {
            anyhow::anyhow!(
                "creating a temporary folder in `{}`: {err}",
                env.artifacts_dir.display()
            )
        })?;
    crate::files::ensure_private_dir(temp.path())?;
    // Held while this check runs: a folder whose lock another run can take is a leftover.
    let _held = hold(temp.path())?;
    let plan_file = temp.path().join("drift.tfplan");
    ctx.printer
        .progress(&format!("{}: terraform plan -lock=false", env.name));
    tf.plan_unlocked(env, &plan_file).await?;
    // Read here, not summarized: what a document that is not a plan says never shows.
    let json = tf.show_json(env, &plan_file).await?;
    drift_check::read(env.tier, &json)
        .map_err(|why| anyhow::anyhow!("reading the drift check's plan of `{}`: {why}", env.name))
}

/// The file in a check's temporary folder whose OS lock the check holds while it runs.
const HELD: &str = "held";

fn hold(temp: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = temp.join(HELD);
    let file = std::fs::File::create(&path)
        .and_then(|file| file.lock().map(|()| file))
        .map_err(|err| anyhow::anyhow!("locking `{}`: {err}", path.display()))?;
    Ok(file)
}

/// Removes the temporary folders of checks that a killed tfenv (`kill -9`) left in
/// `state/<env>/`: those whose lock nobody holds. A folder without its lock file yet is
/// left alone for a minute: a check may be just creating it. Best effort: what cannot
/// be removed stays for the next run.
fn remove_leftover_checks(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || !name.to_string_lossy().starts_with(".drift-") {
            continue;
        }
        let folder = entry.path();
        let leftover = match std::fs::OpenOptions::new()
            .write(true)
            .open(folder.join(HELD))
        {
            Ok(file) => file.try_lock().is_ok(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 60)),
            Err(_) => false,
        };
        if leftover {
            tracing::debug!(
                "removing `{}`, left by a killed drift check",
                folder.display()
            );
            let _ = std::fs::remove_dir_all(&folder);
        }
    }
}

/// Writes the check's drift.json and history record, and shares the record with
/// `ledger = "backend"`. What fails is a warning (said, and returned for the document):
/// the check's result stands.
async fn record(
    ctx: &Context,
    project: &Project,
    env: &Environment,
    report: &DriftReport,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut warn = |what: String| {
        ctx.printer.warn(&what);
        warnings.push(what);
    };
    if let Err(err) = drift::write(&env.artifacts_dir, report) {
        warn(format!(
            "could not write the drift report of `{}`: {err:#}",
            env.name
        ));
    }
    if let Err(err) = history::append(&env.artifacts_dir, &history_record(env, report)) {
        warn(format!(
            "could not record the drift check of `{}` in its history: {err:#}",
            env.name
        ));
    }
    if let Ok(backend) = Backends::default().resolve(env, project)
        && let Some(shared) = crate::pipeline::share(ctx, project, env, &backend).await
    {
        // `share` said its warnings already.
        warnings.extend(shared.warnings);
    }
    warnings
}

/// The `drift` history record of a check: its result (`in-sync`, `drifted`, `failed`),
/// exit code and counts; never a value.
fn history_record(env: &Environment, report: &DriftReport) -> HistoryRecord {
    let (result, exit) = match report.result {
        CheckResult::InSync => (RunResult::InSync, Exit::Success),
        CheckResult::Drifted => (RunResult::Drifted, Exit::Changes),
        CheckResult::Failed => (RunResult::Failed, Exit::Failure),
    };
    HistoryRecord {
        end: Utc::now(),
        seconds: report.seconds,
        terraform_version: report.terraform_version.clone(),
        exit_code: exit.code(),
        error: report.error.clone(),
        drift: (report.result != CheckResult::Failed).then_some(DriftCounts {
            drifted: report.drifted.len(),
            pending: report.pending.len(),
            severity: report.severity,
        }),
        ..HistoryRecord::of("drift", env, report.checked, result)
    }
}

/// The block's last line, for people.
fn outcome_line(report: &DriftReport) -> String {
    let name = &report.environment;
    let seconds = report.seconds;
    let pending = match report.pending.len() {
        0 => String::new(),
        n => format!("; {n} pending change(s) in the code, not yet applied"),
    };
    match (report.result, report.severity) {
        (CheckResult::Drifted, severity) => format!(
            "Drift in `{name}`: {} resource(s) changed outside Terraform{}{pending} ({seconds:.1}s).",
            report.drifted.len(),
            severity.map_or_else(String::new, |s| format!(", severity {}", s.as_str())),
        ),
        (CheckResult::InSync, _) => {
            format!("`{name}` is in sync with its state{pending} ({seconds:.1}s).")
        }
        (CheckResult::Failed, _) => format!("The drift check of `{name}` failed ({seconds:.1}s)."),
    }
}

/// The table (worst first), then what drifted, what is pending and what failed.
fn print_human(ctx: &Context, worst_first: &[&Checked]) {
    let p = &ctx.printer;
    let mut rows = vec![
        [
            "ENV", "TIER", "RESULT", "SEVERITY", "DRIFTED", "PENDING", "SECONDS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let dash = || "-".to_string();
    for checked in worst_first {
        let r = &checked.entry.report;
        let (result, counts) = match (checked.interrupted, r.result) {
            (true, _) => (p.paint(&console::Style::new().red(), "interrupted"), false),
            (false, CheckResult::Drifted) => (
                p.paint(&console::Style::new().yellow().bold(), "drifted"),
                true,
            ),
            (false, CheckResult::InSync) => {
                (p.paint(&console::Style::new().green(), "in sync"), true)
            }
            (false, CheckResult::Failed) => (
                p.paint(&console::Style::new().red().bold(), "failed"),
                false,
            ),
        };
        let severity = match r.severity {
            Some(s @ (Severity::Critical | Severity::High)) => {
                p.paint(&console::Style::new().red().bold(), s.as_str())
            }
            Some(s) => p.paint(&console::Style::new().yellow(), s.as_str()),
            None => dash(),
        };
        rows.push(vec![
            r.environment.clone(),
            r.tier.to_string(),
            result,
            severity,
            if counts {
                r.drifted.len().to_string()
            } else {
                dash()
            },
            if counts {
                r.pending.len().to_string()
            } else {
                dash()
            },
            format!("{:.1}", r.seconds),
        ]);
    }
    p.result(&format!("\n{}", output::table(&rows).trim_end()));
    let bold = |text: &str| p.paint(&console::Style::new().bold(), text);
    let drifted: Vec<String> = worst_first
        .iter()
        .flat_map(|c| {
            let r = &c.entry.report;
            r.drifted.iter().map(move |d| {
                let attributes = match d.attributes.is_empty() {
                    true => String::new(),
                    false => format!(" ({})", d.attributes.join(", ")),
                };
                format!(
                    "  {}: {} {}{attributes} [{}]",
                    r.environment,
                    match d.action {
                        drift::DriftAction::Update => "update",
                        drift::DriftAction::Delete => "delete",
                    },
                    d.address,
                    d.severity.as_str()
                )
            })
        })
        .collect();
    if !drifted.is_empty() {
        p.result(&format!(
            "\n{}",
            bold("drifted (changed outside Terraform; attribute names only):")
        ));
        p.result(&drifted.join("\n"));
    }
    let pending: Vec<String> = worst_first
        .iter()
        .flat_map(|c| {
            let r = &c.entry.report;
            r.pending.iter().map(move |change| {
                format!(
                    "  {}: {} {}",
                    r.environment,
                    change.actions.join(", "),
                    change.address
                )
            })
        })
        .collect();
    if !pending.is_empty() {
        p.result(&format!(
            "\n{}",
            bold("pending (in the code, not yet applied; `tfenv plan ENV` shows them):")
        ));
        p.result(&pending.join("\n"));
    }
    let failed: Vec<String> = worst_first
        .iter()
        .filter(|c| !c.interrupted)
        .filter_map(|c| {
            let r = &c.entry.report;
            let error = r.error.as_deref()?;
            let mut text = format!("  {}: {}", r.environment, output::headline(error));
            if let Some(hint) = &c.entry.hint {
                text.push_str(&format!("\n    {hint}"));
            }
            Some(text)
        })
        .collect();
    if !failed.is_empty() {
        p.result(&format!("\n{}", bold("failed:")));
        p.result(&failed.join("\n"));
    }
}

/// A report's row of the job summary.
fn summary_row(report: &DriftReport) -> summary::DriftRow {
    summary::DriftRow {
        environment: report.environment.clone(),
        tier: report.tier.to_string(),
        result: match report.result {
            CheckResult::InSync => "in-sync",
            CheckResult::Drifted => "drifted",
            CheckResult::Failed => "failed",
        }
        .to_string(),
        severity: report.severity.map(|s| s.as_str().to_string()),
        drifted: report
            .drifted
            .iter()
            .map(|d| {
                let action = match d.action {
                    drift::DriftAction::Update => "update",
                    drift::DriftAction::Delete => "delete",
                };
                (d.address.clone(), action.to_string(), d.attributes.clone())
            })
            .collect(),
        pending: report
            .pending
            .iter()
            .map(|c| (c.address.clone(), c.actions.join(", ")))
            .collect(),
        error: report.error.as_deref().map(output::headline),
    }
}
