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
use crate::artifacts::drift::{CheckResult, CompletedCheck, DriftReport, Severity};
use crate::artifacts::history::{HistoryRecord, RunResult};
use crate::backend::lock::{LockState, StateLock};
use crate::backend::{Backend, Backends, is_auth, is_permission, is_unreachable, within};
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
    /// The last drift check (`tfenv drift`); `null` when unchecked (or its file cannot
    /// be read: a `drift-unreadable` problem).
    drift: Option<DriftInfo>,
    problems: Vec<Problem>,
    /// The shared ledger could not be read (`ledger = "backend"`): `newest_backup` and
    /// `last_deploy` are this machine's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    /// The backend answered the state read (with a state or with none).
    #[serde(skip)]
    state_read: bool,
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

/// One thing that needs attention: a stable `code`, what is wrong in one line, and the
/// command that fixes or investigates it (docs/json.md lists every code).
#[derive(Clone, Serialize)]
struct Problem {
    code: &'static str,
    message: String,
    fix: String,
}

impl Problem {
    fn new(code: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Problem {
        Problem {
            code,
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// The last drift check (`state/<env>/drift.json`), as `status` shows it.
#[derive(Serialize)]
struct DriftInfo {
    result: CheckResult,
    /// The worst severity of what drifted; `null` when nothing did (or the check failed).
    severity: Option<Severity>,
    /// How many resources changed outside Terraform; `null` when the check failed.
    drifted: Option<usize>,
    /// How many changes the code would make (not drift); `null` when the check failed.
    pending: Option<usize>,
    checked: DateTime<Utc>,
    age_seconds: i64,
    /// Why the check failed (its first line); absent unless `result` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// A failed check: what the last completed check found; `null` when none did.
    /// Absent unless `result` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_completed: Option<Option<CompletedInfo>>,
}

/// The last completed check behind a failed one.
#[derive(Serialize)]
struct CompletedInfo {
    result: CheckResult,
    severity: Option<Severity>,
    drifted: usize,
    pending: usize,
    checked: DateTime<Utc>,
    age_seconds: i64,
}

impl CompletedInfo {
    fn of(check: &CompletedCheck) -> CompletedInfo {
        CompletedInfo {
            result: check.result,
            severity: check.severity,
            drifted: check.drifted.len(),
            pending: check.pending,
            checked: check.checked,
            age_seconds: (Utc::now() - check.checked).num_seconds(),
        }
    }
}

impl DriftInfo {
    fn of(report: &DriftReport) -> DriftInfo {
        let failed = report.result == CheckResult::Failed;
        DriftInfo {
            result: report.result,
            severity: report.severity,
            drifted: (!failed).then_some(report.drifted.len()),
            pending: (!failed).then_some(report.pending.len()),
            checked: report.checked,
            age_seconds: (Utc::now() - report.checked).num_seconds(),
            error: failed
                .then(|| output::headline(report.error.as_deref().unwrap_or("the check failed"))),
            last_completed: failed.then(|| report.last_completed.as_ref().map(CompletedInfo::of)),
        }
    }

    /// The DRIFT cell: `in sync 2h ago`, `3 drifted (high) 1d ago`, `check failed 1h ago`,
    /// `check failed 1h ago; 3 drifted (high) 1d ago`.
    fn cell(&self) -> String {
        let age = Age(self.age_seconds);
        let drifted = |count: usize, severity: Option<Severity>, age: Age| {
            format!(
                "{count} drifted ({}) {age} ago",
                severity.map_or("?", Severity::as_str)
            )
        };
        match self.result {
            CheckResult::InSync => format!("in sync {age} ago"),
            CheckResult::Drifted => drifted(self.drifted.unwrap_or(0), self.severity, age),
            CheckResult::Failed => match self.last_completed.as_ref().and_then(Option::as_ref) {
                Some(last) if last.result == CheckResult::Drifted => format!(
                    "check failed {age} ago; {}",
                    drifted(last.drifted, last.severity, Age(last.age_seconds))
                ),
                _ => format!("check failed {age} ago"),
            },
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
    shared_state_problems(&resolved, &mut environments);
    shared_lineage_problems(&resolved, &mut environments);
    versioning_problems(&resolved, &mut environments, ctx.runner.clone(), timeout).await;

    for env in &environments {
        for warning in &env.warnings {
            crate::ledger::warn_once(&ctx.printer, warning);
        }
    }
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
    let backups_read = newest.is_ok();
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
            format!("tfenv verify {}", env.name),
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
            format!("tfenv history {}", env.name),
        )),
    }
    problems.extend(killed_run(env));
    problems.extend(state_missing(&status));
    problems.extend(last_deploy_failed(&status));
    problems.extend(backup_stale(env, &status, backups_read));
    match artifacts::drift::read(&env.artifacts_dir) {
        Ok(report) => {
            status.drift = report.as_ref().map(DriftInfo::of);
            if let Some(report) = &report {
                problems.extend(drift_problems(&env.name, report, &status));
            }
        }
        Err(err) => problems.push(Problem::new(
            "drift-unreadable",
            format!("cannot read the last drift check: {err:#}"),
            format!("tfenv drift {}", env.name),
        )),
    }
    status.problems.splice(0..0, problems);
    status
}

/// The last drift check failed (`drift-check-failed`), and the last completed check
/// found resources changed outside Terraform (`drifted`) — kept through failed checks
/// after it. Drift a deploy may have put back since is still drift until checked again.
fn drift_problems(env: &str, report: &DriftReport, status: &EnvStatus) -> Vec<Problem> {
    let mut problems = Vec::new();
    let failed = report.result == CheckResult::Failed;
    let ago = |at: DateTime<Utc>| Age((Utc::now() - at).num_seconds());
    if failed {
        problems.push(Problem::new(
            "drift-check-failed",
            format!(
                "the last drift check ({} ago) failed: {}; nothing it would have found is known",
                ago(report.checked),
                output::headline(report.error.as_deref().unwrap_or("no reason recorded")),
            ),
            format!("tfenv drift {env}"),
        ));
    }
    let Some(check) = report.completed() else {
        return problems;
    };
    if check.result != CheckResult::Drifted {
        return problems;
    }
    let mut addresses: Vec<&str> = check.drifted.iter().map(|d| d.address.as_str()).collect();
    let more = addresses.len().saturating_sub(3);
    addresses.truncate(3);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let newest = if failed {
        format!(" (the newest check, {} ago, failed)", ago(report.checked))
    } else {
        String::new()
    };
    // A deploy (refresh, restore) that applied after the check may have put it back.
    let since = status
        .last_deploy
        .as_ref()
        .map(|last| &last.record)
        .filter(|record| record.result == RunResult::Applied && record.end > check.checked);
    let next = match since {
        Some(record) => format!(
            "a `tfenv {}` ran since this check ({} ago): run `tfenv drift {env}` to check again",
            record.command,
            ago(record.end),
        ),
        None => format!("`tfenv plan {env}` shows what a deploy would put back"),
    };
    problems.push(Problem::new(
        "drifted",
        format!(
            "{} resource(s) changed outside Terraform ({}), found by the drift check {} ago{newest}: `{}`{more}; {next}",
            check.drifted.len(),
            check.severity.map_or("?", Severity::as_str),
            ago(check.checked),
            addresses.join("`, `"),
        ),
        format!("tfenv drift {env}"),
    ));
    problems
}

/// The newest deploy or refresh that reached apply failed or was interrupted (a killed
/// one is `killed-run`): the infrastructure may be half changed. The next one that
/// applies clears it.
fn last_deploy_failed(status: &EnvStatus) -> Option<Problem> {
    let LastDeploy { record, place } = status.last_deploy.as_ref()?;
    if !matches!(record.result, RunResult::Failed | RunResult::Interrupted) {
        return None;
    }
    let whose = if *place == Where::Shared {
        " (shared ledger)"
    } else {
        ""
    };
    let (started, outcome) = if record.command == "restore" {
        (
            "pushing the state had started",
            "the state may be the old one or the restored one; see which with `tfenv status`, and a successful `tfenv restore` or `tfenv deploy`",
        )
    } else {
        (
            "terraform apply had started",
            "part of the change may be applied; see what is left with `tfenv plan`, and a successful `tfenv deploy`",
        )
    };
    Some(Problem::new(
        "last-deploy-failed",
        format!(
            "the last `tfenv {}` ({} by {}@{}{whose}) {} after {started}: {outcome} clears this",
            record.command,
            record.start.format("%Y-%m-%d %H:%M UTC"),
            record.who,
            record.host,
            record.result,
        ),
        format!("tfenv plan {}", status.name),
    ))
}

/// No verified backup younger than `backup_max_age` while there is a state to back up.
/// Verified: the backup's manifest line and its file (or, in the shared ledger, its
/// object and manifest entry) are both there — what `tfenv backups` lists and `restore`
/// can use; `tfenv verify` checks their contents.
fn backup_stale(env: &Environment, status: &EnvStatus, backups_read: bool) -> Option<Problem> {
    let max = env.backup_max_age?;
    let has_state = status.state.as_ref().is_some_and(|s| !s.is_empty());
    if !backups_read || !has_state {
        return None;
    }
    // Both to the second, the limit as tfenv.toml writes it (`7d`): an age shown in
    // whole units could read as the limit itself.
    let limit = crate::age::exact(max.as_secs());
    let message = match &status.newest_backup {
        Some(backup) if backup.age_seconds <= max.as_secs() as i64 => return None,
        Some(backup) => format!(
            "the newest backup (`{}`) is {} old, older than backup_max_age `{limit}`",
            backup.file,
            crate::age::exact(backup.age_seconds.max(0) as u64)
        ),
        None => format!("no backup of the state, and backup_max_age is `{limit}`"),
    };
    Some(Problem::new(
        "backup-stale",
        message,
        format!("tfenv backup {}", env.name),
    ))
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
        drift: None,
        problems: Vec::new(),
        warnings: Vec::new(),
        state_read: false,
    };
    let backend = match backend {
        Ok(backend) => backend,
        Err(err) => {
            status.problems.push(Problem::new(
                "config",
                format!("{err:#}"),
                format!("tfenv validate {}", env.name),
            ));
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
                format!(
                    "rm -r {} && tfenv init {}",
                    project.show(&env.fingerprint_file()),
                    env.name
                ),
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
            format!("tfenv init {}", env.name),
        )),
        Some(InitState::Changed) => status.problems.push(Problem::new(
            "init-outdated",
            format!(
                "the backend config or var files changed since the last init: run `tfenv init {}`",
                env.name
            ),
            format!("tfenv init {}", env.name),
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
                        format!("tfenv unlock {} {id}", env.name),
                    ));
                }
            }
            status.lock = Some(lock.relative_to(&project.root));
        }
        Err(err) if is_unreachable(&err) || is_auth(&err) || is_permission(&err) => {
            backend_failed = is_unreachable(&err) || backend.reads_remote_state();
            backend_problem(&mut status.problems, &err, &env.name)
        }
        Err(err) => {
            let text = format!("{err:#}");
            // The lock table (or the bucket) was never created.
            let fix = if text.contains("the table does not exist") || text.contains("NoSuchBucket")
            {
                format!("tfenv bootstrap {}", env.name)
            } else {
                format!("tfenv lock {}", env.name)
            };
            status.problems.push(Problem::new(
                "lock-unreadable",
                format!("cannot read the state lock: {text}"),
                fix,
            ))
        }
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
            status.problems.push(Problem::new(
                "unreachable",
                why.clone(),
                format!("tfenv status {} --timeout 2m", env.name),
            ));
            None
        }
        _ => None,
    };
    if let Some((source, result)) = read {
        // Where the state was read from; none when there is no state or it was not read.
        match result {
            Ok(None) => status.state_read = true,
            Ok(header) => {
                status.state_read = true;
                status.state_source = Some(source);
                status.state = header;
            }
            Err(err) if is_unreachable(&err) || is_auth(&err) || is_permission(&err) => {
                backend_problem(&mut status.problems, &err, &env.name)
            }
            Err(err) if format!("{err:#}").contains("NoSuchBucket") => {
                status.problems.push(Problem::new(
                    "no-backend",
                    format!("the backend's bucket does not exist: {err:#}"),
                    format!("tfenv bootstrap {}", env.name),
                ));
            }
            Err(err) => {
                // Read, but not a state: where it came from helps.
                status.state_source = Some(source);
                status.problems.push(Problem::new(
                    "state-unreadable",
                    format!("cannot read the state: {err:#}"),
                    format!("tfenv backups {} --versions", env.name),
                ));
            }
        }
    }
    status
}

/// The backend has no state (read, and absent or terraform's empty placeholder) while the
/// last deploy applied: the state object was deleted (or the backend config points
/// elsewhere). Its bucket versions are the way back.
fn state_missing(status: &EnvStatus) -> Option<Problem> {
    let last = status.last_deploy.as_ref()?;
    let absent = status.state.as_ref().is_none_or(StateHeader::is_empty);
    if !status.state_read || !absent || last.record.result != artifacts::history::RunResult::Applied
    {
        return None;
    }
    Some(Problem::new(
        "state-missing",
        format!(
            "no state in the backend, but the last deploy ({}, {} by {}) applied; see `tfenv backups {} --versions`",
            last.record.start.format("%Y-%m-%d %H:%M UTC"),
            last.record.command,
            last.record.who,
            status.name
        ),
        format!("tfenv backups {} --versions", status.name),
    ))
}

/// A backend that did not answer (`unreachable`), refused tfenv's credentials (`auth`),
/// or accepted them but denied the read (`permission`), the last two with the message
/// ending with the fix. One per environment: when the lock and the state read fail the
/// same way, the second adds nothing.
fn backend_problem(problems: &mut Vec<Problem>, err: &anyhow::Error, env: &str) {
    let code = if is_auth(err) {
        Some("auth")
    } else if is_permission(err) {
        Some("permission")
    } else {
        None
    };
    let problem = if let Some(code) = code {
        let fix = crate::error::hint_for(err)
            .map(|hint| format!(": {hint}"))
            .unwrap_or_default();
        Problem::new(code, format!("{err:#}{fix}"), "tfenv doctor")
    } else {
        Problem::new(
            "unreachable",
            format!("{err:#}"),
            format!("tfenv status {env} --timeout 2m"),
        )
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
                format!("tfenv plan {}", env.name),
            ));
        }
        Ok(_) => {}
        Err(err) => {
            return Some(Problem::new(
                "env-lock-unreadable",
                format!("cannot read tfenv's lock of the environment: {err:#}"),
                format!(
                    "rm {}",
                    env.artifacts_dir.join(artifacts::envlock::FILE).display()
                ),
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
        format!("tfenv plan {}", env.name),
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
    let groups = crate::backend::shared_states(
        resolved
            .iter()
            .map(|(env, backend)| (*env, backend.as_ref().ok())),
    );
    for names in &groups {
        for status in statuses.iter_mut().filter(|s| names.contains(&s.name)) {
            let others: Vec<String> = names
                .iter()
                .filter(|n| **n != status.name)
                .cloned()
                .collect();
            status.problems.push(Problem::new(
                "shared-state",
                crate::backend::shared_state_message(&others),
                "tfenv envs",
            ));
        }
    }
}

/// Two environments whose states have one lineage: one state was copied or restored into
/// the other environment, and the two now claim to be the same infrastructure. Not
/// reported between environments that share one state object (`shared-state`).
fn shared_lineage_problems(
    resolved: &[(&Environment, anyhow::Result<Backend>)],
    statuses: &mut [EnvStatus],
) {
    let identity: BTreeMap<&str, Option<String>> = resolved
        .iter()
        .map(|(env, backend)| {
            let id = backend.as_ref().ok().and_then(|b| b.identity(env));
            (env.name.as_str(), id)
        })
        .collect();
    let mut by_lineage: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for status in statuses.iter() {
        if let Some(state) = status.state.as_ref().filter(|s| !s.is_empty()) {
            by_lineage
                .entry(state.lineage.clone())
                .or_default()
                .push(status.name.clone());
        }
    }
    let envs: BTreeMap<&str, &Environment> = resolved
        .iter()
        .map(|(env, _)| (env.name.as_str(), *env))
        .collect();
    for (lineage, names) in by_lineage.iter().filter(|(_, n)| n.len() > 1) {
        let group: Vec<&&Environment> = names.iter().filter_map(|n| envs.get(n.as_str())).collect();
        let overwritten: BTreeMap<String, HistoryRecord> = group
            .iter()
            .filter_map(|env| {
                let others: Vec<&&Environment> = group
                    .iter()
                    .copied()
                    .filter(|o| o.name != env.name)
                    .collect();
                overwriting_restore(env, lineage, &others).map(|r| (env.name.clone(), r))
            })
            .collect();
        for status in statuses.iter_mut().filter(|s| names.contains(&s.name)) {
            let own = identity.get(status.name.as_str()).cloned().flatten();
            let others: Vec<&str> = names
                .iter()
                .filter(|n| **n != status.name)
                .filter(|n| own.is_none() || identity.get(n.as_str()).cloned().flatten() != own)
                .map(String::as_str)
                .collect();
            if others.is_empty() {
                continue;
            }
            status.problems.push(lineage_problem(
                &status.name,
                lineage,
                &others,
                &overwritten,
                &envs,
            ));
        }
    }
}

/// The newest restore of `env` that applied, when it put another environment's state in
/// place of its own: it restored a path under another environment's folder
/// (`state/<other>/…`), or the backup it took first (of the state it replaced) has
/// another lineage than the one the environment has now. `None` when history does not
/// say so.
fn overwriting_restore(
    env: &Environment,
    lineage: &str,
    others: &[&&Environment],
) -> Option<HistoryRecord> {
    let history = artifacts::history::read(&env.artifacts_dir).ok()?;
    let record = history
        .records
        .into_iter()
        .rev()
        .find(|r| r.command == "restore" && r.result == RunResult::Applied)?;
    let restored = record.restored.as_deref().unwrap_or_default();
    let names_other = others.iter().any(|other| {
        other.artifacts_dir.file_name().is_some_and(|dir| {
            let dir = dir.to_string_lossy();
            restored.contains(&format!("{dir}/backups/"))
                || Path::new(restored).starts_with(&other.artifacts_dir)
        })
    });
    let replaced_another_lineage = record.backup.as_ref().is_some_and(|file| {
        artifacts::backups::manifest(&artifacts::backups::dir(env)).is_ok_and(|manifest| {
            manifest
                .records
                .iter()
                .any(|b| &b.file == file && b.lineage != lineage)
        })
    });
    (names_other || replaced_another_lineage).then_some(record)
}

/// `shared-lineage` of `name`, whose state has `lineage` like `others`'. The
/// environment(s) whose state a restore overwrote (`overwritten`, by history) are told
/// to restore their own last state (another lineage: `--force`, and `--confirm` in
/// production); the others that their state is not the one to restore. When history
/// names none, each environment's history says which it was.
fn lineage_problem(
    name: &str,
    lineage: &str,
    others: &[&str],
    overwritten: &BTreeMap<String, HistoryRecord>,
    envs: &BTreeMap<&str, &Environment>,
) -> Problem {
    let restore_command = |env: &str| {
        let confirm = match envs.get(env).map(|e| e.tier) {
            Some(Tier::Production) => format!(" --confirm {env}"),
            _ => String::new(),
        };
        format!("tfenv restore {env} <BACKUP> --force{confirm}")
    };
    let head = format!(
        "its state has the lineage of `{}`'s (`{lineage}`): a state was copied or restored across environments",
        others.join("`, `"),
    );
    let said = |record: &HistoryRecord| {
        format!(
            "`tfenv restore {} {}` ({} by {}@{})",
            record.environment,
            record.restored.as_deref().unwrap_or("?"),
            record.start.format("%Y-%m-%d %H:%M UTC"),
            record.who,
            record.host
        )
    };
    if let Some(record) = overwritten.get(name) {
        return Problem::new(
            "shared-lineage",
            format!(
                "{head}; {} replaced this environment's state: find its own last state (the `pre-restore` backup) with `tfenv backups {name}` and restore it with `{}`",
                said(record),
                restore_command(name)
            ),
            format!("tfenv backups {name}"),
        );
    }
    let victims: Vec<&String> = overwritten
        .keys()
        .filter(|v| others.contains(&v.as_str()))
        .collect();
    if let Some(victim) = victims.first() {
        return Problem::new(
            "shared-lineage",
            format!(
                "{head}; {} put this environment's state into `{victim}`: this state is its own, restore `{victim}` (`{}`) instead",
                said(&overwritten[victim.as_str()]),
                restore_command(victim)
            ),
            format!("tfenv backups {victim}"),
        );
    }
    Problem::new(
        "shared-lineage",
        format!(
            "{head}; history does not say which environment was overwritten: see which with `tfenv history {name}` and `tfenv history {}`, then restore that one's own last state (`tfenv backups <ENV>`) with `tfenv restore <ENV> <BACKUP> --force` (and `--confirm <ENV>` in production)",
            others.join("` and `tfenv history "),
        ),
        format!("tfenv history {name}"),
    )
}

/// Remote state buckets (storage accounts) that keep no object versions: a bad write or
/// a delete of the state cannot be undone. Each bucket is asked once, however many
/// environments it holds, all at once; not those whose backend already failed. A bucket
/// whose versioning cannot be told is a warning, never `versioning-off`.
async fn versioning_problems(
    resolved: &[(&Environment, anyhow::Result<Backend>)],
    statuses: &mut [EnvStatus],
    runner: Arc<dyn Runner>,
    timeout: Duration,
) {
    let mut buckets: BTreeMap<String, (crate::backend::store::Store, Vec<String>)> =
        BTreeMap::new();
    for (env, backend) in resolved {
        let Ok(backend) = backend else { continue };
        let failed = statuses.iter().any(|s| {
            s.name == env.name
                && s.problems
                    .iter()
                    .any(|p| matches!(p.code, "unreachable" | "auth" | "permission" | "config"))
        });
        let Some(store) = backend.store(runner.clone()).filter(|_| !failed) else {
            continue;
        };
        let store = store.with_timeout(timeout);
        buckets
            .entry(store.bucket())
            .or_insert_with(|| (store, Vec::new()))
            .1
            .push(env.name.clone());
    }
    let checks = buckets.iter().map(|(bucket, (store, _))| {
        within(
            timeout,
            move || format!("reading the versioning of `{bucket}`"),
            store.versioning(),
        )
    });
    let results = futures_util::future::join_all(checks).await;
    for ((bucket, (_, names)), result) in buckets.iter().zip(results) {
        for status in statuses.iter_mut().filter(|s| names.contains(&s.name)) {
            match &result {
                Ok(versioning) if versioning.enabled => {}
                Ok(versioning) => status.problems.push(Problem::new(
                    "versioning-off",
                    format!(
                        "`{bucket}`, where its state is, {}: a bad write or a delete of the state cannot be undone; `tfenv bootstrap {} --fix` turns it on (or `{}`)",
                        if versioning.suspended {
                            "has versioning suspended (the old versions are kept, new writes are not versioned)"
                        } else {
                            "keeps no object versions"
                        },
                        status.name,
                        versioning.enable
                    ),
                    format!("tfenv bootstrap {} --fix", status.name),
                )),
                Err(err) => {
                    let hint = crate::error::hint_for(err)
                        .map(|hint| format!(" ({hint})"))
                        .unwrap_or_default();
                    let warning = format!(
                        "cannot tell whether `{bucket}` keeps object versions: {err:#}{hint}"
                    );
                    if !status.warnings.contains(&warning) {
                        status.warnings.push(warning);
                    }
                }
            }
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
    Problem::new(code, message, "tfenv doctor")
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
                format!("echo '{}' >> .gitignore", u.pattern),
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
    let problem = |p: &Problem| format!("{}: {} (fix: {})", p.code, p.message, p.fix);
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
            drift: Some(
                env.drift
                    .as_ref()
                    .map_or_else(|| "unchecked".to_string(), DriftInfo::cell),
            ),
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
            "DRIFT",
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
                // A restore is the last change too; deploys and refreshes say only
                // how they ended, as before.
                let what = match record.command.as_str() {
                    "restore" => format!("restore {}", record.result),
                    _ => record.result.to_string(),
                };
                format!(
                    "{what} {} ago{by}",
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
            env.drift
                .as_ref()
                .map_or_else(|| "unchecked".to_string(), DriftInfo::cell),
            health,
        ]);
    }
    p.result(output::table(&rows).trim_end());
    let mut lines: Vec<String> = Vec::new();
    for env in &report.environments {
        for problem in &env.problems {
            lines.push(format!("  {}: {}", env.name, problem.message));
            lines.push(format!("    fix: {}", problem.fix));
        }
    }
    for problem in &report.problems {
        lines.push(format!("  project: {}", problem.message));
        lines.push(format!("    fix: {}", problem.fix));
    }
    if !lines.is_empty() {
        p.result(&format!("\n{}", p.paint(&Style::new().bold(), "problems:")));
        p.result(&lines.join("\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(env: &str, restored: &str) -> HistoryRecord {
        let mut record: HistoryRecord = serde_json::from_value(serde_json::json!({
            "command": "restore", "environment": env, "tier": "production", "who": "ann",
            "host": "laptop", "git": null, "start": "2026-11-30T10:00:00Z",
            "end": "2026-11-30T10:00:05Z", "seconds": 5.0, "result": "applied", "exit_code": 0,
        }))
        .unwrap();
        record.restored = Some(restored.to_string());
        record
    }

    #[test]
    fn shared_lineage_tells_only_the_overwritten_environment_to_restore_forced_and_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.tf"), "").unwrap();
        std::fs::write(
            dir.path().join("tfenv.toml"),
            "[environments.staging]\n[environments.production]\n",
        )
        .unwrap();
        let project = Project::load(dir.path(), None).unwrap();
        let envs: BTreeMap<&str, &Environment> = project
            .environments
            .iter()
            .map(|e| (e.name.as_str(), e))
            .collect();
        let overwritten: BTreeMap<String, HistoryRecord> = [(
            "production".to_string(),
            record("production", "state/staging/backups/x"),
        )]
        .into();
        let prod = lineage_problem("production", "abc", &["staging"], &overwritten, &envs);
        assert!(
            prod.message.contains(
                "`tfenv restore production state/staging/backups/x` (2026-11-30 10:00 UTC by ann@laptop) replaced this environment's state"
            ) && prod
                .message
                .contains("`tfenv restore production <BACKUP> --force --confirm production`"),
            "{}",
            prod.message
        );
        assert_eq!(prod.fix, "tfenv backups production");
        let staging = lineage_problem("staging", "abc", &["production"], &overwritten, &envs);
        assert!(
            staging.message.contains("restore `production`")
                && !staging.message.contains("tfenv restore staging"),
            "{}",
            staging.message
        );
        assert_eq!(staging.fix, "tfenv backups production");

        // History does not say: each one's history.
        let unknown = lineage_problem("staging", "abc", &["production"], &BTreeMap::new(), &envs);
        assert!(
            unknown
                .message
                .contains("`tfenv history staging` and `tfenv history production`")
                && unknown.message.contains("--force"),
            "{}",
            unknown.message
        );
        assert_eq!(unknown.fix, "tfenv history staging");
    }
}
