//! `tfenv status`: the health of every environment at once. Read-only: it never runs
//! `init` and never writes state. Exit 6 when anything needs attention.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use console::Style;
use futures_util::StreamExt;
use indicatif::HumanBytes;
use serde::Serialize;

use super::envs::BackendInfo;
use crate::age::Age;
use crate::artifacts::history::HistoryRecord;
use crate::backend::lock::{LockState, StateLock};
use crate::backend::{Backend, Backends, is_auth, is_unreachable, within};
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::ledger::{EnvLedger, Where};
use crate::process::Runner;
use crate::project::{Environment, LedgerMode, Project, Tier};
use crate::settings::StatusSettings;
use crate::terraform::{self, InitState, StateHeader, Terraform};
use crate::{Context, artifacts, gitignore, output, summary};

#[derive(Serialize)]
struct StatusReport {
    healthy: bool,
    environments: Vec<EnvStatus>,
    /// Problems of the project as a whole (e.g. `state/` not git-ignored).
    problems: Vec<Problem>,
}

#[derive(Serialize)]
struct EnvStatus {
    name: String,
    tier: Tier,
    workspace: Option<String>,
    backend: Option<BackendInfo>,
    init: Option<InitState>,
    /// Where `state` was read from: `terraform` (state pull), `file` (local backend) or
    /// `s3` (the object, through the AWS SDK).
    state_source: Option<&'static str>,
    /// `null` when there is no state yet or it could not be read.
    state: Option<StateHeader>,
    /// The state lock as the backend holds it; `null` when it could not be read.
    lock: Option<StateLock>,
    newest_backup: Option<BackupInfo>,
    last_deploy: Option<LastDeploy>,
    problems: Vec<Problem>,
    /// The shared ledger could not be read (`ledger = "backend"`): `newest_backup` and
    /// `last_deploy` are this machine's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct BackupInfo {
    file: String,
    created: DateTime<Utc>,
    age_seconds: i64,
    #[serde(rename = "where")]
    place: Where,
}

#[derive(Serialize)]
struct LastDeploy {
    #[serde(flatten)]
    record: HistoryRecord,
    #[serde(rename = "where")]
    place: Where,
}

#[derive(Clone, Serialize)]
struct Problem {
    code: &'static str,
    message: String,
}

impl Problem {
    fn new(code: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            code,
            message: message.into(),
        }
    }
}

pub async fn status(ctx: &Context, settings: StatusSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let selected = project.select(&settings.envs)?;
    let jobs = settings.jobs;

    let backends = Backends::default();
    let resolved: Vec<(&Environment, anyhow::Result<Backend>)> = selected
        .iter()
        .map(|env| (*env, backends.resolve(env, &project)))
        .collect();
    // terraform reads the states of initialized environments with a remote backend tfenv
    // does not read itself (a local state is the same file `state pull` would read,
    // streamed here without a terraform process; an s3 one is read through the AWS SDK).
    // Whether it runs at all, in a version required_version allows, is checked for every
    // project, alongside the lock reads; no state read waits for it unless it needs it.
    let needs_terraform = resolved.iter().any(|(env, backend)| {
        backend.as_ref().is_ok_and(|b| {
            b.local_state_file(env).is_none()
                && !b.reads_remote_state()
                && Terraform::init_state(env, b).is_ok_and(|init| init == InitState::Current)
        })
    });
    let timeout = settings.timeout;
    let what = || "asking terraform for its version (`terraform version`)".to_string();
    let version_check = within(timeout, what, ctx.terraform(&project));

    let spinner = ctx
        .printer
        .spinner(format!("checking {} environment(s)", resolved.len()));
    // Locks first, all at once: DynamoDB locks sharing a table are one request.
    let lockable: Vec<(&Environment, &Backend)> = resolved
        .iter()
        .filter_map(|(env, backend)| backend.as_ref().ok().map(|b| (*env, b)))
        .collect();
    let (version_check, locks) = tokio::join!(
        version_check,
        crate::backend::read_locks(&lockable, ctx.runner.as_ref(), timeout)
    );
    let mut locks: std::collections::HashMap<String, anyhow::Result<StateLock>> = lockable
        .iter()
        .map(|(env, _)| env.name.clone())
        .zip(locks)
        .collect();
    // A terraform that does not even answer `version` leaves the states it would read
    // unreachable; one that is missing or too old is a problem of the whole project.
    let mut problems = Vec::new();
    let tf: Result<Option<Terraform>, String> = match version_check {
        Ok(tf) => Ok(needs_terraform.then_some(tf)),
        Err(err) if is_unreachable(&err) => Err(format!("{err:#}")),
        Err(err) => {
            problems.push(terraform_problem(&err));
            Ok(None)
        }
    };
    let mut environments: Vec<EnvStatus> =
        futures_util::stream::iter(resolved.iter().map(|(env, backend)| {
            let lock = locks.remove(&env.name);
            check(
                env,
                backend.as_ref(),
                lock,
                tf.as_ref(),
                &project,
                timeout,
                ctx.runner.clone(),
            )
        }))
        .buffered(jobs)
        .collect()
        .await;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    for env in &environments {
        for warning in &env.warnings {
            crate::ledger::warn_once(&ctx.printer, warning);
        }
    }
    shared_state_problems(&resolved, &mut environments);

    problems.extend(gitignore_problems(ctx, &project, timeout).await);
    let healthy = problems.is_empty() && environments.iter().all(|e| e.problems.is_empty());
    let report = StatusReport {
        healthy,
        environments,
        problems,
    };
    let files = ctx.settings.summary_files(settings.summary.as_deref());
    if !files.is_empty() {
        crate::pipeline::write_summary(ctx, &files, &summary_section(&report));
    }
    if ctx.printer.is_json() {
        ctx.printer.json(&report)?;
    } else {
        print_human(ctx, &report, project.ledger == LedgerMode::Backend);
    }
    Ok(if healthy {
        Exit::Success
    } else {
        Exit::Unhealthy
    })
}

/// One environment's status: its state and lock, and — at the same time — its ledger
/// (newest backup, last deploy), here and in the shared ledger.
async fn check(
    env: &Environment,
    backend: Result<&Backend, &anyhow::Error>,
    lock: Option<anyhow::Result<StateLock>>,
    tf: Result<&Option<Terraform>, &String>,
    project: &Project,
    timeout: Duration,
    runner: Arc<dyn Runner>,
) -> EnvStatus {
    let ledger = match backend {
        Ok(backend) => EnvLedger::of(project, env, backend, runner),
        Err(_) => EnvLedger::local(project, env),
    }
    .with_timeout(timeout);
    let (mut status, (newest, last)) = tokio::join!(
        check_backend(env, backend, lock, tf, project, timeout),
        async { tokio::join!(ledger.newest_backup(), ledger.last_deploy()) }
    );
    let mut problems = Vec::new();
    status
        .warnings
        .extend(ledger.no_store().map(str::to_string));
    match newest {
        Ok((newest, warnings)) => {
            status.warnings.extend(warnings);
            status.newest_backup = newest.map(|(file, created, place)| BackupInfo {
                age_seconds: (Utc::now() - created).num_seconds(),
                file,
                created,
                place,
            })
        }
        Err(err) => problems.push(Problem::new(
            "backups-unreadable",
            format!("cannot read the backups manifest: {err:#}"),
        )),
    }
    match last {
        Ok((last, warnings)) => {
            for warning in warnings {
                if !status.warnings.contains(&warning) {
                    status.warnings.push(warning);
                }
            }
            status.last_deploy = last.map(|entry| LastDeploy {
                record: entry.record,
                place: entry.place,
            })
        }
        Err(err) => problems.push(Problem::new(
            "history-unreadable",
            format!("cannot read the deploy history: {err:#}"),
        )),
    }
    problems.extend(killed_run(env));
    status.problems.splice(0..0, problems);
    status
}

async fn check_backend(
    env: &Environment,
    backend: Result<&Backend, &anyhow::Error>,
    lock: Option<anyhow::Result<StateLock>>,
    tf: Result<&Option<Terraform>, &String>,
    project: &Project,
    timeout: Duration,
) -> EnvStatus {
    let mut status = EnvStatus {
        name: env.name.clone(),
        tier: env.tier,
        workspace: env.workspace.clone(),
        backend: None,
        init: None,
        state_source: None,
        state: None,
        lock: None,
        newest_backup: None,
        last_deploy: None,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let backend = match backend {
        Ok(backend) => backend,
        Err(err) => {
            status
                .problems
                .push(Problem::new("config", format!("{err:#}")));
            return status;
        }
    };
    status.backend = Some(BackendInfo {
        kind: backend.kind.clone(),
        implicit: backend.implicit,
        location: backend.location(env, project),
        config: env.backend_config.as_deref().map(|p| project.show(p)),
    });
    let init = match Terraform::init_state(env, backend) {
        Ok(init) => Some(init),
        Err(err) => {
            status.problems.push(Problem::new(
                "init-unreadable",
                format!("cannot tell whether it is initialized: {err:#}"),
            ));
            None
        }
    };
    status.init = init;
    match init {
        None => {}
        Some(InitState::Never) => status.problems.push(Problem::new(
            "not-initialized",
            format!("not initialized: run `tfenv init {}`", env.name),
        )),
        Some(InitState::Changed) => status.problems.push(Problem::new(
            "init-outdated",
            format!(
                "the backend config or var files changed since the last init: run `tfenv init {}`",
                env.name
            ),
        )),
        Some(InitState::Current) => {}
    }

    // A backend whose lock read did not answer (or refused the credentials) is not asked
    // again for the state: that would only double the wait (`--timeout` bounds each read).
    let mut backend_failed = false;
    match lock.unwrap_or_else(|| Err(anyhow::anyhow!("not read"))) {
        Ok(lock) => {
            if lock.is_held() {
                let age = lock.holder().and_then(|info| info.age_seconds());
                let limit = project.stale_lock_after.as_secs() as i64;
                if age.is_some_and(|a| a > limit) {
                    let id = lock.id().unwrap_or("<ID>").to_string();
                    status.problems.push(Problem::new(
                        "stale-lock",
                        format!(
                            "the state has been locked by {} for longer than {}: if that run is dead, `tfenv unlock {} {id}`",
                            lock.describe(),
                            humantime::format_duration(project.stale_lock_after),
                            env.name
                        ),
                    ));
                }
            }
            status.lock = Some(lock.relative_to(&project.root));
        }
        Err(err) if is_unreachable(&err) || is_auth(&err) => {
            backend_failed = is_unreachable(&err) || backend.reads_remote_state();
            backend_problem(&mut status.problems, &err)
        }
        Err(err) => status.problems.push(Problem::new(
            "lock-unreadable",
            format!("cannot read the state lock: {err:#}"),
        )),
    }

    let read = match (backend.local_state_file(env), init, tf) {
        (Some(file), _, _) => Some(("file", read_local_state(&file))),
        (None, _, _) if backend_failed => None,
        // Straight from S3, initialized or not: no terraform process.
        (None, _, _) if backend.reads_remote_state() => Some((
            "s3",
            within(
                timeout,
                || backend.state_read(env),
                backend
                    .read_remote_state(Box::new(|body| Ok(terraform::state::read_header(body)?))),
            )
            .await,
        )),
        (None, Some(InitState::Current), Ok(Some(tf))) => {
            let what = || {
                format!(
                    "reading the state of `{}` (`terraform state pull`)",
                    env.name
                )
            };
            Some((
                "terraform",
                within(timeout, what, tf.state_header(env)).await,
            ))
        }
        (None, Some(InitState::Current), Err(why)) => {
            status
                .problems
                .push(Problem::new("unreachable", why.clone()));
            None
        }
        _ => None,
    };
    if let Some((source, result)) = read {
        // Where the state was read from; none when there is no state or it was not read.
        match result {
            Ok(None) => {}
            Ok(header) => {
                status.state_source = Some(source);
                status.state = header;
            }
            Err(err) if is_unreachable(&err) || is_auth(&err) => {
                backend_problem(&mut status.problems, &err)
            }
            Err(err) => {
                // Read, but not a state: where it came from helps.
                status.state_source = Some(source);
                status.problems.push(Problem::new(
                    "state-unreadable",
                    format!("cannot read the state: {err:#}"),
                ));
            }
        }
    }
    status
}

/// A backend that did not answer (`unreachable`) or refused tfenv's credentials (`auth`,
/// its message ending with the fix). One per environment: when the lock and the state
/// read fail the same way, the second adds nothing.
fn backend_problem(problems: &mut Vec<Problem>, err: &anyhow::Error) {
    let problem = if is_auth(err) {
        let fix = crate::error::hint_for(err)
            .map(|hint| format!(": {hint}"))
            .unwrap_or_default();
        Problem::new("auth", format!("{err:#}{fix}"))
    } else {
        Problem::new("unreachable", format!("{err:#}"))
    };
    if !problems.iter().any(|p| p.code == problem.code) {
        problems.push(problem);
    }
}

/// A run on `env` that was killed (SIGKILL, a crash) and may have changed the state:
/// recorded in history as `killed` with nothing since that planned against the state, or
/// not recorded yet (its holder line is still in the environment lock, its process gone).
fn killed_run(env: &Environment) -> Option<Problem> {
    let check = format!(
        "check what it did with `tfenv plan {0}` (and the state lock with `tfenv lock {0}`); the next deploy or refresh that finishes (applied or no changes) clears this",
        env.name
    );
    match artifacts::envlock::dead_holder(&env.artifacts_dir) {
        Ok(Some(holder)) if holder.may_have_changed() => {
            return Some(Problem::new(
                "killed-run",
                format!(
                    "a run was killed before it finished ({}) and is not in history yet (the next tfenv run on `{}` records it): its outcome is unknown; {check}",
                    holder.describe(),
                    env.name
                ),
            ));
        }
        Ok(_) => {}
        Err(err) => {
            return Some(Problem::new(
                "env-lock-unreadable",
                format!("cannot read tfenv's lock of the environment: {err:#}"),
            ));
        }
    }
    // An unreadable history is already a problem of its own.
    let killed = artifacts::history::unresolved_kill(&env.artifacts_dir).ok()??;
    Some(Problem::new(
        "killed-run",
        format!(
            "the last `tfenv {}` (by {}@{}, started {}) was killed before it finished: {}; {check}",
            killed.command,
            killed.who,
            killed.host,
            killed.start.format("%Y-%m-%d %H:%M:%S UTC"),
            if killed.reached_apply == Some(true) {
                "terraform may have applied all, part or none of the change"
            } else {
                "its outcome is unknown"
            }
        ),
    ))
}

/// A local state, read straight from its file — only when it is a regular file: opening
/// a FIFO in its place would block status forever.
fn read_local_state(file: &Path) -> anyhow::Result<Option<terraform::StateHeader>> {
    if std::fs::metadata(file).is_ok_and(|meta| !meta.is_file()) {
        anyhow::bail!("`{}` is not a regular file", file.display());
    }
    terraform::read_state_file(file)
}

/// Two environments whose state is the same object overwrite each other.
fn shared_state_problems(
    resolved: &[(&Environment, anyhow::Result<Backend>)],
    statuses: &mut [EnvStatus],
) {
    let mut by_identity: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (env, backend) in resolved {
        if let Some(identity) = backend.as_ref().ok().and_then(|b| b.identity(env)) {
            by_identity.entry(identity).or_default().push(&env.name);
        }
    }
    for names in by_identity.values().filter(|names| names.len() > 1) {
        for status in statuses
            .iter_mut()
            .filter(|s| names.contains(&s.name.as_str()))
        {
            let others: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| *n != status.name)
                .collect();
            status.problems.push(Problem::new(
                "shared-state",
                format!(
                    "shares its state with `{}`: give each environment its own backend config (key or path) or workspace",
                    others.join("`, `")
                ),
            ));
        }
    }
}

/// terraform is missing (or does not run), or its version is not one required_version
/// allows: no command but `status` could work. The message ends with the fix.
fn terraform_problem(err: &anyhow::Error) -> Problem {
    let hint = err
        .downcast_ref::<TfenvError>()
        .and_then(TfenvError::hint)
        .map(|hint| format!(": {hint}"))
        .unwrap_or_default();
    let message = format!("{err:#}{hint}");
    let code = if message.contains("required_version") {
        "terraform-version"
    } else {
        "terraform-missing"
    };
    Problem::new(code, message)
}

/// `state/` and every `.terraform/` must be git-ignored: they hold state and secrets.
async fn gitignore_problems(ctx: &Context, project: &Project, timeout: Duration) -> Vec<Problem> {
    let Ok(unignored) =
        tokio::time::timeout(timeout, gitignore::unignored(ctx.runner.as_ref(), project)).await
    else {
        ctx.printer.warn(&format!(
            "git did not answer within {}; not checking that `state/` and `.terraform/` are git-ignored",
            humantime::format_duration(timeout)
        ));
        return Vec::new();
    };
    unignored
        .into_iter()
        .map(|u| {
            Problem::new(
                "not-gitignored",
                format!(
                    "`{}` is not ignored by git: it holds state and secrets; add `{}` to .gitignore",
                    u.shown, u.pattern
                ),
            )
        })
        .collect()
}

/// `alice@laptop 5m` when held, `-` when free, `stale` when a dead run's leftover lock
/// info blocks nobody, `?` when tfenv cannot tell.
fn lock_cell(lock: Option<&StateLock>) -> String {
    let Some(lock) = lock else {
        return "?".to_string();
    };
    match &lock.state {
        LockState::Stale(_) | LockState::StaleEmpty => "stale".to_string(),
        LockState::Held(info) => match info.age_seconds() {
            Some(age) => format!("{} {}", info.who, Age(age)),
            None => info.who.clone(),
        },
        LockState::HeldUnknown => "unknown".to_string(),
        LockState::Free => "-".to_string(),
        LockState::Unsupported(_) => "?".to_string(),
    }
}

/// The report as a Markdown job summary section.
fn summary_section(report: &StatusReport) -> String {
    let problem = |p: &Problem| format!("{}: {}", p.code, p.message);
    let rows: Vec<summary::StatusRow> = report
        .environments
        .iter()
        .map(|env| summary::StatusRow {
            environment: env.name.clone(),
            tier: env.tier.to_string(),
            serial: env.state.as_ref().map(|s| s.serial),
            resources: env.state.as_ref().map(|s| s.resources),
            lock: lock_cell(env.lock.as_ref()),
            newest_backup: env
                .newest_backup
                .as_ref()
                .map(|b| format!("{} ago", Age(b.age_seconds))),
            last_deploy: env.last_deploy.as_ref().map(|LastDeploy { record, .. }| {
                format!(
                    "{} {} ago",
                    record.result,
                    Age((Utc::now() - record.end).num_seconds())
                )
            }),
            problems: env.problems.iter().map(problem).collect(),
        })
        .collect();
    let project: Vec<String> = report.problems.iter().map(problem).collect();
    summary::status(report.healthy, &rows, &project)
}

fn print_human(ctx: &Context, report: &StatusReport, shared_ledger: bool) {
    let p = &ctx.printer;
    let mut rows = vec![
        [
            "ENV",
            "TIER",
            "BACKEND",
            "INIT",
            "SERIAL",
            "RESOURCES",
            "SIZE",
            "TERRAFORM",
            "LOCK",
            "BACKUP",
            "LAST DEPLOY",
            "HEALTH",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let dash = || "-".to_string();
    for env in &report.environments {
        let state = env.state.as_ref();
        let last = env
            .last_deploy
            .as_ref()
            .map_or_else(dash, |LastDeploy { record, place }| {
                // With the shared ledger, whose run it was — every time, this machine's
                // own too, so the column reads the same whoever ran it. A run only in
                // the shared ledger says so.
                let by = match (shared_ledger, place) {
                    (false, _) => String::new(),
                    (true, Where::Shared) => {
                        format!(" by {}@{} (shared)", record.who, record.host)
                    }
                    (true, _) => format!(" by {}@{}", record.who, record.host),
                };
                format!(
                    "{} {} ago{by}",
                    record.result,
                    Age((Utc::now() - record.end).num_seconds())
                )
            });
        let health = if env.problems.is_empty() {
            p.paint(&Style::new().green(), "ok")
        } else {
            p.paint(
                &Style::new().red().bold(),
                &format!("{} problem(s)", env.problems.len()),
            )
        };
        rows.push(vec![
            env.name.clone(),
            env.tier.to_string(),
            env.backend
                .as_ref()
                .map_or_else(dash, |b| b.kind.to_string()),
            match env.init {
                Some(InitState::Current) => "yes".to_string(),
                Some(InitState::Changed) => "outdated".to_string(),
                Some(InitState::Never) => "no".to_string(),
                None => dash(),
            },
            state.map_or_else(dash, |s| s.serial.to_string()),
            state.map_or_else(dash, |s| s.resources.to_string()),
            state.map_or_else(dash, |s| HumanBytes(s.bytes).to_string()),
            state
                .and_then(|s| s.terraform_version.clone())
                .unwrap_or_else(dash),
            lock_cell(env.lock.as_ref()),
            // Only in the shared ledger (another machine's): not on this machine.
            env.newest_backup.as_ref().map_or_else(dash, |b| {
                format!(
                    "{} ago{}",
                    Age(b.age_seconds),
                    if b.place == Where::Shared {
                        " (shared)"
                    } else {
                        ""
                    }
                )
            }),
            last,
            health,
        ]);
    }
    p.result(output::table(&rows).trim_end());
    let mut lines: Vec<String> = Vec::new();
    for env in &report.environments {
        for problem in &env.problems {
            lines.push(format!("  {}: {}", env.name, problem.message));
        }
    }
    for problem in &report.problems {
        lines.push(format!("  project: {}", problem.message));
    }
    if !lines.is_empty() {
        p.result(&format!("\n{}", p.paint(&Style::new().bold(), "problems:")));
        p.result(&lines.join("\n"));
    }
}
