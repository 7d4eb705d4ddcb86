//! `tfenv doctor`: is this machine and this project ready to run tfenv? One check per
//! line (terraform, which `tfenv` is first on PATH, the cloud CLIs and credentials the
//! backends need, git-ignored folders, the plugin cache, leftovers), each with its fix;
//! `--fix` removes the leftovers. Every outside call goes through the runner, with --timeout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use console::Style;
use indicatif::HumanBytes;
use serde::Serialize;

use crate::Context;
use crate::artifacts::envlock::{self, EnvLock, Holder, KilledRun};
use crate::backend::{Backend, BackendKind, Backends, is_unreachable, within};
use crate::confirm::Question;
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::gitignore;
use crate::pipeline::RecordedRun;
use crate::process::{Finished, Invocation, RunOptions};
use crate::project::{Environment, Project, hcl};
use crate::settings::{DoctorSettings, LockWait};
use crate::terraform::version;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    /// The environment the check is about; `null` for the machine or the project.
    environment: Option<String>,
    status: Status,
    message: String,
    /// What to do about it; `null` when there is nothing to do.
    fix: Option<String>,
}

impl Check {
    fn new(name: &'static str, status: Status, message: impl Into<String>) -> Check {
        Check {
            name,
            environment: None,
            status,
            message: message.into(),
            fix: None,
        }
    }

    fn ok(name: &'static str, message: impl Into<String>) -> Check {
        Check::new(name, Status::Ok, message)
    }

    fn warn(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(name, Status::Warn, message).fixed_by(fix)
    }

    fn fail(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(name, Status::Fail, message).fixed_by(fix)
    }

    fn fixed_by(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    fn about(mut self, env: &str) -> Check {
        self.environment = Some(env.to_string());
        self
    }
}

#[derive(Serialize)]
struct DoctorReport {
    /// No check failed (warnings allowed).
    healthy: bool,
    checks: Vec<Check>,
    /// What `--fix` removed, as paths relative to the project root.
    fixed: Vec<String>,
}

/// A data dir of an environment that no longer exists, with its fingerprint file.
struct StaleDataDir {
    dir: PathBuf,
    fingerprint: PathBuf,
}

/// tfenv's lock file of an environment left by a run that never released it: its OS
/// lock is free and it still names a holder (what the next run reports as killed).
struct DeadLock {
    /// `state/<name>/`.
    dir: PathBuf,
    name: String,
    killed: KilledRun,
}

impl DeadLock {
    /// Killed while it may have changed the state (status's `killed-run` problem).
    fn may_have_changed(&self) -> bool {
        self.killed
            .holder
            .as_ref()
            .is_none_or(Holder::may_have_changed)
    }
}

pub async fn doctor(ctx: &Context, settings: DoctorSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let timeout = settings.timeout;
    let backends = Backends::default();
    let resolved: Vec<(&Environment, Backend)> = project
        .environments
        .iter()
        .filter_map(|env| backends.resolve(env, &project).ok().map(|b| (env, b)))
        .collect();

    let spinner = ctx.printer.spinner("checking".to_string());
    let (terraform, on_path, clis, gitignore) = tokio::join!(
        terraform_check(ctx, &project, timeout),
        tfenv_on_path(ctx, timeout),
        cloud_checks(ctx, &resolved, timeout),
        gitignore_check(ctx, &project, timeout),
    );
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let (terraform, version) = terraform;
    let mut checks = vec![terraform];
    if let Some(version) = &version {
        checks.extend(root_required_version_check(&project, version));
    }
    checks.push(on_path);
    checks.extend(clis);
    checks.push(gitignore);
    checks.push(plugin_cache_check(&project));

    let stale_dirs = stale_data_dirs(&project);
    let (dead_locks, unreadable_locks) = dead_locks(&project);
    let mut fixed = Vec::new();
    let mut refused = None;
    let wanted = settings.fix && !(stale_dirs.is_empty() && dead_locks.is_empty());
    if wanted {
        match approve(ctx, &settings, &project, &stale_dirs, &dead_locks).await? {
            Ok(()) => {
                fixed = fix(ctx, &project, &stale_dirs, &dead_locks).await;
            }
            Err(why) => refused = Some(why),
        }
    }
    let done = !fixed.is_empty();
    checks.push(stale_dirs_check(&project, &stale_dirs, done));
    checks.push(dead_locks_check(&project, &dead_locks, done));
    if !unreadable_locks.is_empty() {
        checks.push(Check::fail(
            "unreadable-env-locks",
            format!(
                "tfenv lock files that cannot be read: {}",
                unreadable_locks.join("; ")
            ),
            "move them out of the way: every command on those environments fails on them",
        ));
    }

    let healthy = checks.iter().all(|c| c.status != Status::Fail);
    let report = DoctorReport {
        healthy,
        checks,
        fixed,
    };
    if ctx.printer.is_json() {
        ctx.printer.json(&report)?;
    } else {
        print_human(ctx, &report);
    }
    if let Some(why) = refused {
        return Err(why.into());
    }
    Ok(if healthy {
        Exit::Success
    } else {
        Exit::Failure
    })
}

/// terraform found (`--terraform`, tfenv.toml, PATH), and its version against
/// `required_version` — the same check every command makes, through the version cache.
async fn terraform_check(
    ctx: &Context,
    project: &Project,
    timeout: Duration,
) -> (Check, Option<semver::Version>) {
    let what = || "terraform (`terraform version`)".to_string();
    match within(timeout, what, ctx.terraform(project)).await {
        Ok(tf) => {
            let required = match &project.required_version {
                Some(required) => format!("satisfies required_version `{required}`"),
                None => "(tfenv.toml sets no required_version)".to_string(),
            };
            let check = Check::ok(
                "terraform",
                format!(
                    "terraform {} at `{}` {required}",
                    tf.version,
                    tf.bin.display()
                ),
            );
            (check, Some(tf.version.clone()))
        }
        Err(err) => {
            let fix = crate::error::hint_for(&err)
                .unwrap_or("check that terraform runs: `terraform version`")
                .to_string();
            (Check::fail("terraform", format!("{err:#}"), fix), None)
        }
    }
}

/// The `required_version` of each root module's own `terraform` blocks (every distinct
/// root of the environments) against the terraform found: terraform itself refuses to
/// run when one is unmet. No check when no root sets one.
fn root_required_version_check(project: &Project, version: &semver::Version) -> Option<Check> {
    const NAME: &str = "root-required-version";
    let mut roots: Vec<&Path> = project
        .environments
        .iter()
        .map(|e| e.root.as_path())
        .collect();
    roots.sort();
    roots.dedup();
    let mut met = Vec::new();
    let mut unmet = Vec::new();
    for root in roots {
        let found = match hcl::read_required_versions(root, &project.root) {
            Ok(found) => found,
            Err(err) => {
                unmet.push(format!("{err:#}"));
                continue;
            }
        };
        for (file, constraint) in found {
            let file = project.show(&file);
            match version::satisfies(version, &constraint) {
                Ok(true) => met.push(format!("`{constraint}` in `{file}`")),
                Ok(false) => unmet.push(format!(
                    "terraform {version} does not satisfy required_version `{constraint}` in `{file}`"
                )),
                Err(why) => unmet.push(format!(
                    "required_version `{constraint}` in `{file}`: {why}"
                )),
            }
        }
    }
    if !unmet.is_empty() {
        return Some(Check::fail(
            NAME,
            unmet.join("; "),
            "install a terraform that satisfies it (point tfenv.toml's `terraform` or --terraform at it), or correct the constraint",
        ));
    }
    (!met.is_empty()).then(|| {
        Check::ok(
            NAME,
            format!(
                "terraform {version} satisfies the root modules' required_version: {}",
                met.join(", ")
            ),
        )
    })
}

/// DESIGN.md §8: tfutils/tfenv, a Terraform version manager, installs a `tfenv` too.
/// Which one does typing `tfenv` run?
async fn tfenv_on_path(ctx: &Context, timeout: Duration) -> Check {
    const NAME: &str = "tfenv-on-path";
    let ours = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .unwrap_or_default();
    let our_dir = ours.parent().unwrap_or(Path::new("")).display().to_string();
    let our_version = format!("tfenv {}", env!("CARGO_PKG_VERSION"));
    let Ok(first) = which::which("tfenv") else {
        return Check::warn(
            NAME,
            format!(
                "no `tfenv` on PATH: this one (`{}`) runs only by its full path",
                ours.display()
            ),
            format!("add `{our_dir}` to PATH"),
        );
    };
    if std::fs::canonicalize(&first).is_ok_and(|f| f == ours) {
        return Check::ok(
            NAME,
            format!(
                "`tfenv` on PATH is this one (`{}`, {our_version})",
                first.display()
            ),
        );
    }
    let script = std::fs::read(&first).is_ok_and(|bytes| bytes.starts_with(b"#!"));
    let what = || format!("`{} --version`", first.display());
    let mut inv = Invocation::new(&first, &["--version"]);
    inv.after_interrupt = true;
    let says = match within(timeout, what, ctx.runner.run(&inv, RunOptions::default())).await {
        Ok(done) => done
            .stdout_text()
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        Err(err) if is_unreachable(&err) => "no answer to --version".to_string(),
        Err(err) => format!("cannot run it: {err:#}"),
    };
    let other_dir = first
        .parent()
        .unwrap_or(Path::new(""))
        .display()
        .to_string();
    let ours_on_path = ours.parent().is_some_and(|dir| {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|p| std::fs::canonicalize(&p).is_ok_and(|p| p == dir))
        })
    });
    let fix = if ours_on_path {
        format!(
            "put `{our_dir}` before `{other_dir}` in PATH (or call this one by its full path); `tfenv --version` prints `{our_version}` for this project"
        )
    } else {
        format!(
            "add `{our_dir}` to PATH before `{other_dir}` (or call this one by its full path); `tfenv --version` prints `{our_version}` for this project"
        )
    };
    if script && looks_like_tfutils(&says) && says != our_version {
        // This project ships one compiled binary; tfutils/tfenv is a bash script that
        // answers `tfenv 3.0.0`.
        return Check::fail(
            NAME,
            format!(
                "the first `tfenv` on PATH is `{}` (it says `{says}`): tfutils/tfenv, the Terraform version manager, not this tool (`{}`)",
                first.display(),
                ours.display()
            ),
            fix,
        );
    }
    if says == our_version {
        return Check::ok(
            NAME,
            format!(
                "`tfenv` on PATH is another copy of this one (`{}`, {says})",
                first.display()
            ),
        );
    }
    Check::warn(
        NAME,
        format!(
            "the first `tfenv` on PATH is `{}` (it says `{says}`): another program named tfenv, not this one (`{}`, {our_version})",
            first.display(),
            ours.display()
        ),
        fix,
    )
}

/// tfutils/tfenv answers `--version` with `tfenv <semver>` (`tfenv 3.0.0`,
/// `tfenv 3.0.0-18-g1ccfddb`).
fn looks_like_tfutils(says: &str) -> bool {
    says.strip_prefix("tfenv ")
        .is_some_and(|v| semver::Version::parse(v.trim().trim_start_matches('v')).is_ok())
}

/// The cloud CLIs the environments' backends need, and their logins: `az` for azurerm,
/// `gcloud` for gcs. s3 needs no CLI (tfenv reads it through the AWS SDK): the AWS
/// credentials of each s3 environment instead, resolved as its reads resolve them.
async fn cloud_checks(
    ctx: &Context,
    resolved: &[(&Environment, Backend)],
    timeout: Duration,
) -> Vec<Check> {
    let mut by_kind: BTreeMap<&'static str, Vec<(&Environment, &Backend)>> = BTreeMap::new();
    let mut s3 = Vec::new();
    for (env, backend) in resolved {
        let cli = match backend.kind {
            BackendKind::AzureRm => "az",
            BackendKind::Gcs => "gcloud",
            BackendKind::S3 => {
                s3.push((*env, backend));
                continue;
            }
            _ => continue,
        };
        by_kind.entry(cli).or_default().push((env, backend));
    }
    let mut checks = Vec::new();
    for (cli, envs) in by_kind {
        let names = envs
            .iter()
            .map(|(env, _)| format!("`{}`", env.name))
            .collect::<Vec<_>>()
            .join(", ");
        let Ok(bin) = which::which(cli) else {
            let (what, install) = match cli {
                "az" => (
                    "the Azure CLI",
                    "https://learn.microsoft.com/cli/azure/install-azure-cli",
                ),
                _ => (
                    "the Google Cloud CLI",
                    "https://cloud.google.com/sdk/docs/install",
                ),
            };
            checks.push(Check::fail(
                cli,
                format!(
                    "environment(s) {names} ({}) need {what} (`{cli}`) to read their state locks, and it is not on PATH",
                    envs[0].1.kind
                ),
                format!("install it: {install}"),
            ));
            continue;
        };
        match cli {
            "az" => checks.push(az_check(ctx, &bin, &names, &envs, timeout).await),
            _ => checks.push(gcloud_check(ctx, &bin, &names, &envs, timeout).await),
        }
    }
    checks.extend(
        futures_util::future::join_all(
            s3.iter()
                .map(|(env, backend)| aws_credentials(env, backend, timeout)),
        )
        .await,
    );
    checks
}

/// Runs a cloud CLI's check with the deadline.
async fn run_cli(ctx: &Context, inv: Invocation, timeout: Duration) -> anyhow::Result<Finished> {
    let shown = inv.display();
    let what = move || format!("`{shown}`");
    within(timeout, what, ctx.runner.run(&inv, RunOptions::default())).await
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no error output")
        .to_string()
}

async fn az_check(
    ctx: &Context,
    bin: &Path,
    names: &str,
    envs: &[(&Environment, &Backend)],
    timeout: Duration,
) -> Check {
    // A storage key or SAS token in the backend config needs no login.
    if envs
        .iter()
        .all(|(_, b)| b.setting("access_key").is_some() || b.setting("sas_token").is_some())
    {
        return Check::ok(
            "az",
            format!(
                "`{}` is there for {names}; no login needed: their backend configs give a storage key or SAS token",
                bin.display()
            ),
        );
    }
    let inv = Invocation::new(bin, &["account", "show", "--output", "json"]);
    let fix = "run `az login` (or give the backend config an `access_key` / `sas_token`)";
    match run_cli(ctx, inv, timeout).await {
        Ok(done) if done.success() => {
            let account: serde_json::Value =
                serde_json::from_slice(&done.stdout).unwrap_or_default();
            let user = account
                .pointer("/user/name")
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            let subscription = account.get("name").and_then(|v| v.as_str()).unwrap_or("?");
            Check::ok(
                "az",
                format!("az is logged in as `{user}` (subscription `{subscription}`) for {names}"),
            )
        }
        Ok(done) => Check::fail(
            "az",
            format!(
                "az is not logged in ({names} need it): `az account show` {}: {}",
                done.describe(),
                first_line(&done.stderr_text())
            ),
            fix,
        ),
        Err(err) => Check::fail("az", format!("{err:#}"), fix),
    }
}

async fn gcloud_check(
    ctx: &Context,
    bin: &Path,
    names: &str,
    envs: &[(&Environment, &Backend)],
    timeout: Duration,
) -> Check {
    if envs.iter().all(|(_, b)| b.setting("credentials").is_some()) {
        return Check::ok(
            "gcloud",
            format!(
                "`{}` is there for {names}; no login needed: their backend configs name a credentials file",
                bin.display()
            ),
        );
    }
    let inv = Invocation::new(bin, &["auth", "list", "--format=json"]);
    let fix = "run `gcloud auth login` (and `gcloud auth application-default login` for terraform), or name a `credentials` file in the backend config";
    match run_cli(ctx, inv, timeout).await {
        Ok(done) if done.success() => {
            let accounts: Vec<serde_json::Value> =
                serde_json::from_slice(&done.stdout).unwrap_or_default();
            let active = accounts.iter().find(|a| {
                a.get("status")
                    .and_then(|s| s.as_str())
                    .is_some_and(|s| s.eq_ignore_ascii_case("active"))
            });
            match active
                .and_then(|a| a.get("account"))
                .and_then(|a| a.as_str())
            {
                Some(account) => Check::ok(
                    "gcloud",
                    format!("gcloud is logged in as `{account}` for {names}"),
                ),
                None => Check::fail(
                    "gcloud",
                    format!("gcloud has no active account ({names} need one)"),
                    fix,
                ),
            }
        }
        Ok(done) => Check::fail(
            "gcloud",
            format!(
                "`gcloud auth list` {}: {}",
                done.describe(),
                first_line(&done.stderr_text())
            ),
            fix,
        ),
        Err(err) => Check::fail("gcloud", format!("{err:#}"), fix),
    }
}

/// The AWS credentials of an s3 environment, resolved exactly as tfenv's reads of it
/// resolve them (backend config, profile, environment, shared files, web identity,
/// container or instance role; then `assume_role`). No S3 or DynamoDB call: whether AWS
/// accepts them is not checked. Never a secret in the message.
async fn aws_credentials(env: &Environment, backend: &Backend, timeout: Duration) -> Check {
    const NAME: &str = "aws-credentials";
    let what = || format!("resolving the AWS credentials of `{}`", env.name);
    match within(
        timeout,
        what,
        crate::backend::aws::check_credentials(backend),
    )
    .await
    {
        Ok(found) => {
            let checked = if found.from_sts {
                "the role was assumed through STS; not checked against S3 or DynamoDB"
            } else {
                "not checked against AWS (whether AWS accepts them)"
            };
            Check::ok(
                NAME,
                format!(
                    "`{}` (s3): credentials from {}; {checked}",
                    env.name, found.source
                ),
            )
            .about(&env.name)
        }
        Err(err) => {
            let fix = crate::error::hint_for(&err)
                .unwrap_or("check the s3 backend config of this environment")
                .to_string();
            Check::fail(NAME, format!("`{}` (s3): {err:#}", env.name), fix).about(&env.name)
        }
    }
}

/// `state/` and every `.terraform/` git-ignored (the same check `status` makes).
async fn gitignore_check(ctx: &Context, project: &Project, timeout: Duration) -> Check {
    const NAME: &str = "gitignore";
    let Ok(unignored) =
        tokio::time::timeout(timeout, gitignore::unignored(ctx.runner.as_ref(), project)).await
    else {
        return Check::fail(
            NAME,
            format!(
                "git did not answer within {} (--timeout): not checked that `state/` and `.terraform/` are git-ignored",
                humantime::format_duration(timeout)
            ),
            "run `git check-ignore -v state/` by hand, or allow longer with --timeout",
        );
    };
    if unignored.is_empty() {
        return Check::ok(
            NAME,
            "git picks up nothing tfenv and terraform keep (state/, .terraform/, local states)",
        );
    }
    let shown: Vec<String> = unignored.iter().map(|u| format!("`{}`", u.shown)).collect();
    let mut patterns: Vec<String> = unignored.iter().map(|u| u.pattern.clone()).collect();
    patterns.dedup();
    Check::fail(
        NAME,
        format!(
            "git does not ignore {}: they hold state and secrets",
            shown.join(", ")
        ),
        format!(
            "add to `{}`: {}",
            project.show(&project.root.join(".gitignore")),
            patterns.join(" ")
        ),
    )
}

/// The shared provider plugin cache: `TF_PLUGIN_CACHE_DIR`, else tfenv's under the root.
fn plugin_cache_check(project: &Project) -> Check {
    const NAME: &str = "plugin-cache";
    let (cache, whose) = match std::env::var_os("TF_PLUGIN_CACHE_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => (PathBuf::from(dir), "from TF_PLUGIN_CACHE_DIR"),
        None => (
            project
                .root
                .join(".terraform")
                .join("tfenv")
                .join("plugin-cache"),
            "shared by the environments",
        ),
    };
    let shown = project.show(&cache);
    let fix = "make it a folder you can write (chown / chmod), or point TF_PLUGIN_CACHE_DIR at one";
    match std::fs::metadata(&cache) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Check::ok(
            NAME,
            format!(
                "the plugin cache `{shown}` ({whose}) does not exist yet: the first init creates it"
            ),
        ),
        Err(err) => Check::fail(NAME, format!("the plugin cache `{shown}`: {err}"), fix),
        Ok(meta) if !meta.is_dir() => Check::fail(
            NAME,
            format!(
                "the plugin cache `{shown}` ({whose}) is not a folder: terraform init cannot use it"
            ),
            format!("remove `{shown}`; init creates the folder"),
        ),
        Ok(_) => match tempfile::Builder::new()
            .prefix(".tfenv-doctor-")
            .tempfile_in(&cache)
        {
            Err(err) => Check::fail(
                NAME,
                format!("the plugin cache `{shown}` ({whose}) is not writable: {err}"),
                fix,
            ),
            Ok(_probe) => Check::ok(
                NAME,
                format!(
                    "the plugin cache `{shown}` ({whose}) is writable and holds {}",
                    HumanBytes(size_of(&cache))
                ),
            ),
        },
    }
}

/// The bytes of the files under `dir`, links not followed.
fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => size_of(&entry.path()),
            Ok(t) if t.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// `.terraform/tfenv/<name>/` with its `<name>.fingerprint` (what `init` leaves), `<name>`
/// an environment name, in a root whose environments have no `<name>`: an environment
/// that was removed or renamed.
fn stale_data_dirs(project: &Project) -> Vec<StaleDataDir> {
    let mut roots: Vec<&Path> = project
        .environments
        .iter()
        .map(|e| e.root.as_path())
        .collect();
    roots.push(&project.root);
    roots.sort();
    roots.dedup();
    let mut stale = Vec::new();
    for root in roots {
        let base = root.join(".terraform").join("tfenv");
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        let mut found: Vec<StaleDataDir> = entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|entry| {
                let name = entry.file_name().to_str()?.to_string();
                // Only what could be an environment's: not `plugin-cache` (it has no
                // fingerprint), not `validate`'s `_validate`.
                crate::project::validate_name(&name).ok()?;
                let fingerprint = base.join(format!("{name}.fingerprint"));
                let known = project
                    .environments
                    .iter()
                    .any(|e| e.name == name && e.root == root);
                (!known && fingerprint.is_file()).then(|| StaleDataDir {
                    dir: entry.path(),
                    fingerprint,
                })
            })
            .collect();
        found.sort_by(|a, b| a.dir.cmp(&b.dir));
        stale.extend(found);
    }
    stale
}

/// `state/<name>/.tfenv.lock` left by a run that never released it (its OS lock free, a
/// holder in it: see `envlock::stale_holder`); and the lock files that cannot be read
/// (not a regular file), as messages.
fn dead_locks(project: &Project) -> (Vec<DeadLock>, Vec<String>) {
    let mut dead = Vec::new();
    let mut unreadable = Vec::new();
    let Ok(entries) = std::fs::read_dir(&project.state_dir) else {
        return (dead, unreadable);
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = entry.path();
        if !dir.join(envlock::FILE).exists() {
            continue;
        }
        match envlock::stale_holder(&dir) {
            Ok(Some(killed)) => dead.push(DeadLock {
                name: entry.file_name().to_string_lossy().into_owned(),
                dir,
                killed,
            }),
            Ok(None) => {}
            Err(err) => unreadable.push(format!("{err:#}")),
        }
    }
    dead.sort_by(|a, b| a.name.cmp(&b.name));
    unreadable.sort();
    (dead, unreadable)
}

/// `--fix` asks first; without a terminal it needs `--yes`. `Ok(Err(refusal))`: not
/// approved, nothing is removed.
async fn approve(
    ctx: &Context,
    settings: &DoctorSettings,
    project: &Project,
    stale: &[StaleDataDir],
    dead: &[DeadLock],
) -> anyhow::Result<Result<(), TfenvError>> {
    if settings.yes {
        return Ok(Ok(()));
    }
    let mut what: Vec<String> = stale
        .iter()
        .map(|s| format!("remove `{}`", project.show(&s.dir)))
        .collect();
    what.extend(dead.iter().map(|d| {
        format!(
            "record the killed run and empty `{}`",
            project.show(&d.dir.join(envlock::FILE))
        )
    }));
    let refusal = |message: String| TfenvError::Refused {
        message,
        hint: Some("run `tfenv doctor --fix --yes` to remove them without a prompt".to_string()),
    };
    if !settings.interactive {
        return Ok(Err(refusal(format!(
            "--fix without a terminal needs --yes: nothing changed (it would {})",
            what.join(", ")
        ))));
    }
    let question = Question::YesNo {
        prompt: format!("{}?", capitalized(&what.join(", "))),
    };
    let prompter = ctx.prompter.clone();
    let answer = tokio::task::spawn_blocking(move || prompter.ask(&question)).await??;
    Ok(match answer.as_deref().map(str::trim) {
        Some("y" | "Y" | "yes") => Ok(()),
        _ => Err(refusal("not confirmed: nothing changed".to_string())),
    })
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Removes the stale data dirs, and clears each dead lock the way the next run on its
/// environment would: taken, the killed run recorded in history, released. A lock a
/// live process holds is left alone. What was done, as paths relative to the root.
async fn fix(
    ctx: &Context,
    project: &Project,
    stale: &[StaleDataDir],
    dead: &[DeadLock],
) -> Vec<String> {
    let mut fixed = Vec::new();
    for s in stale {
        match std::fs::remove_dir_all(&s.dir) {
            Ok(()) => {
                let _ = std::fs::remove_file(&s.fingerprint);
                fixed.push(project.show(&s.dir));
            }
            Err(err) => ctx
                .printer
                .warn(&format!("cannot remove `{}`: {err}", project.show(&s.dir))),
        }
    }
    for d in dead {
        let file = project.show(&d.dir.join(envlock::FILE));
        let taken = match project
            .environments
            .iter()
            .find(|e| e.artifacts_dir == d.dir)
        {
            Some(env) => RecordedRun::lock(ctx, env, "doctor", false, &LockWait::default())
                .await
                .map(drop),
            // No such environment any more: nothing to record it in.
            None => match EnvLock::try_acquire(&d.dir, &d.name, "doctor", false) {
                Ok(Ok(mut lock)) => {
                    lock.settle_killed();
                    Ok(())
                }
                Ok(Err(busy)) => Err(busy.error(None).into()),
                Err(err) => Err(err),
            },
        };
        match taken {
            Ok(()) => fixed.push(file),
            Err(err) => ctx.printer.warn(&format!("left `{file}` alone: {err:#}")),
        }
    }
    fixed
}

fn stale_dirs_check(project: &Project, stale: &[StaleDataDir], fixed: bool) -> Check {
    const NAME: &str = "stale-data-dirs";
    let gone: Vec<&StaleDataDir> = if fixed {
        stale.iter().filter(|s| s.dir.exists()).collect()
    } else {
        stale.iter().collect()
    };
    if gone.is_empty() {
        return Check::ok(
            NAME,
            match stale.len() {
                0 => "no data dirs of environments that no longer exist".to_string(),
                n => format!("removed {n} data dir(s) of environments that no longer exist"),
            },
        );
    }
    let shown: Vec<String> = gone
        .iter()
        .map(|s| format!("`{}`", project.show(&s.dir)))
        .collect();
    Check::warn(
        NAME,
        format!(
            "data dirs of environments that no longer exist: {}",
            shown.join(", ")
        ),
        "`tfenv doctor --fix` removes them (and their fingerprints)",
    )
}

fn dead_locks_check(project: &Project, dead: &[DeadLock], fixed: bool) -> Check {
    const NAME: &str = "stale-env-locks";
    let left: Vec<&DeadLock> = if fixed {
        dead.iter()
            .filter(|d| envlock::stale_holder(&d.dir).ok().flatten().is_some())
            .collect()
    } else {
        dead.iter().collect()
    };
    if left.is_empty() {
        return Check::ok(
            NAME,
            match dead.len() {
                0 => "no tfenv lock files left by a run that died".to_string(),
                n => format!(
                    "cleared {n} tfenv lock file(s) left by a run that died (emptied; the killed run recorded in history)"
                ),
            },
        );
    }
    let shown: Vec<String> = left
        .iter()
        .map(|d| {
            format!(
                "`{}` ({}: its lock is free, the run was killed{})",
                project.show(&d.dir.join(envlock::FILE)),
                d.killed.warning,
                if d.may_have_changed() {
                    " and may have changed the state"
                } else {
                    ""
                }
            )
        })
        .collect();
    let message = format!(
        "tfenv lock files left by a run that died: {}",
        shown.join("; ")
    );
    let fix = "`tfenv doctor --fix` records the killed run in history and empties them (so does the next tfenv run on that environment); check the state with `tfenv plan <env>` where it may have changed";
    if left.iter().any(|d| d.may_have_changed()) {
        Check::fail(NAME, message, fix)
    } else {
        Check::warn(NAME, message, fix)
    }
}

fn print_human(ctx: &Context, report: &DoctorReport) {
    let p = &ctx.printer;
    for check in &report.checks {
        let mark = match check.status {
            Status::Ok => p.paint(&Style::new().green(), "✓"),
            Status::Warn => p.paint(&Style::new().yellow().bold(), "!"),
            Status::Fail => p.paint(&Style::new().red().bold(), "✗"),
        };
        p.result(&format!("{mark} {}", check.message));
        if let Some(fix) = &check.fix {
            p.result(&format!("    fix: {fix}"));
        }
    }
    for fixed in &report.fixed {
        if fixed.ends_with(envlock::FILE) {
            p.progress(&format!(
                "emptied `{fixed}` (the killed run recorded in history)"
            ));
        } else {
            p.progress(&format!("removed `{fixed}`"));
        }
    }
}
