//! `tfenv migrate`: move an environment's state to the backend its config names now
//! (`terraform init -migrate-state -force-copy`), after a backup of the old state and a
//! check that the new place holds nothing it would overwrite; then check it landed.

use std::io::Write;

use serde::Serialize;

use crate::Context;
use crate::artifacts::backups::{self, Backup};
use crate::artifacts::history::{Migrated, Place};
use crate::backend::{Backend, BackendKind, Backends};
use crate::confirm::{Approval, Gate};
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::pipeline::{RecordedRun, RunResult};
use crate::project::{Environment, Project};
use crate::settings::MigrateSettings;
use crate::terraform::moved::{self, header_of, read_state_at, reads_state, same_place};
use crate::terraform::{InitOptions, RunLog, StateHeader, Terraform};

#[derive(Serialize)]
struct MigrateReport {
    environment: String,
    from: Place,
    to: Place,
    lineage: String,
    serial_before: u64,
    serial_after: u64,
    resources: u64,
    /// What was at the new place before (a state: resources, a serial past 0 or
    /// outputs; overwritten with `--force`, backed up first); `null`: nothing.
    overwritten: Option<Overwritten>,
    /// The old state, backed up before the move (reason `pre-migrate`).
    backup: Option<Backup>,
    /// The old state is left where it was: always true.
    old_state_left: bool,
    /// terraform wrote the copy under a lineage of its own (1.11 into an empty s3 key),
    /// and tfenv pushed the state over it with its own lineage.
    lineage_pushed: bool,
    /// terraform's full output, relative to `state/<env>/` (always for production).
    log: Option<String>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct Overwritten {
    serial: u64,
    lineage: String,
    resources: u64,
}

/// The old backend and, when given, its config file.
struct From {
    backend: Backend,
    file: Option<std::path::PathBuf>,
}

pub async fn migrate(ctx: &Context, settings: MigrateSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let env = project.environment(&settings.env)?.clone();
    let backend = Backends::default().resolve(&env, &project)?;
    let recorded = moved::recorded_backend(&env)?;
    let from = old_backend(&project, &env, &backend, &settings, recorded.as_ref())?;
    let from_place = place(&from.backend, &env, &project);
    let to_place = place(&backend, &env, &project);
    if same_place(&from.backend, &backend, &env) {
        return Err(TfenvError::usage(
            format!(
                "the backend config of `{}` still points at `{}`: there is nothing to migrate",
                env.name, to_place.location
            ),
            Some(format!(
                "point the environment at the new backend first (edit its backend config{}), then run `tfenv migrate {}` again; if the state is still at an old place this machine never initialized (a fresh checkout), name that backend config: `tfenv migrate {} --from <old backend config>`",
                env.backend_config
                    .as_ref()
                    .map(|p| format!(" `{}`", project.show(p)))
                    .unwrap_or_default(),
                env.name,
                env.name
            )),
        )
        .into());
    }
    if !reads_state(&from.backend) {
        return Err(TfenvError::usage(
            format!(
                "tfenv reads local and s3 states itself; migrating `{}` from a {} backend is not supported",
                env.name, from.backend.kind
            ),
            Some(format!(
                "back it up with `tfenv backup {}` while it is still initialized there, then run `terraform init -migrate-state` yourself",
                env.name
            )),
        )
        .into());
    }
    let mut tf = ctx.terraform(&project).await?;
    tf.lock_timeout = settings.lock_wait.timeout;
    let mut recorded_run = RecordedRun::start(
        ctx,
        &project,
        &env,
        "migrate",
        true,
        &tf,
        &settings.lock_wait,
    )
    .await?;
    recorded_run.ledger.migrated = Some(Migrated {
        from: from_place.clone(),
        to: to_place.clone(),
    });
    let moving = Moving {
        project: &project,
        env: &env,
        backend: &backend,
        from: &from,
        recorded: recorded.as_ref(),
        from_place,
        to_place,
    };
    let result = moving
        .run(ctx, &settings, &tf, &mut recorded_run.ledger)
        .await;
    match result {
        Ok(mut report) => {
            recorded_run.finish(&ctx.printer, RunResult::Applied, Exit::Success);
            report.warnings = recorded_run.warnings().to_vec();
            drop(recorded_run);
            if ctx.printer.is_json() {
                ctx.printer.json(&report)?;
            } else {
                ctx.printer.result(&format!(
                    "Migrated `{}`: {} `{}` → {} `{}` (lineage {}, serial {}, {} resource(s)). The old state is left at `{}`{}.",
                    report.environment,
                    report.from.backend,
                    report.from.location,
                    report.to.backend,
                    report.to.location,
                    short(&report.lineage),
                    report.serial_after,
                    report.resources,
                    report.from.location,
                    report
                        .backup
                        .as_ref()
                        .map(|b| format!("; backed up as {}", b.file))
                        .unwrap_or_default()
                ));
            }
            Ok(Exit::Success)
        }
        Err(err) => Err(recorded_run.fail(&ctx.printer, err)),
    }
}

/// Where the state was: `--from` (its type `--from-type`, else the recorded one, else
/// the root module's), else the backend the data dir was last initialized with.
fn old_backend(
    project: &Project,
    env: &Environment,
    backend: &Backend,
    settings: &MigrateSettings,
    recorded: Option<&Backend>,
) -> anyhow::Result<From> {
    let Some(file) = &settings.from else {
        let Some(recorded) = recorded else {
            return Err(TfenvError::usage(
                format!(
                    "tfenv does not know where the state of `{}` was: it was never initialized on this machine (a fresh checkout?); name the old backend config with --from",
                    env.name
                ),
                Some(format!(
                    "name the old backend config: `tfenv migrate {} --from <file>` (and `--from-type local` when the old backend was of another type than the root module's)",
                    env.name
                )),
            )
            .into());
        };
        return Ok(From {
            backend: recorded.clone(),
            file: None,
        });
    };
    if !file.is_file() {
        return Err(TfenvError::usage(
            format!("--from `{}`: no such file", file.display()),
            Some(
                "pass the old backend config file (the same HCL as a backend config file)"
                    .to_string(),
            ),
        )
        .into());
    }
    let settings_read = crate::project::hcl::read_settings(file, &project.root)?;
    let keys: Vec<&str> = settings_read.keys().map(String::as_str).collect();
    let kind = match (&settings.from_type, inferred_kind(&keys), recorded) {
        (Some(kind), _, _) => BackendKind::parse(kind),
        (None, Some(kind), _) => kind,
        (None, None, Some(recorded)) => recorded.kind.clone(),
        (None, None, None) => backend.kind.clone(),
    };
    check_from_keys(&kind, &keys, file, settings.from_type.is_some())?;
    Ok(From {
        backend: Backend {
            kind,
            implicit: false,
            settings: settings_read,
            workspace: env.workspace.clone(),
        },
        file: Some(file.clone()),
    })
}

/// The backend type a `--from` file's keys belong to, when they say it.
fn inferred_kind(keys: &[&str]) -> Option<BackendKind> {
    let has = |k: &str| keys.contains(&k);
    if has("storage_account_name") || has("container_name") {
        Some(BackendKind::AzureRm)
    } else if has("bucket") {
        if has("prefix") && !has("key") && !has("region") {
            Some(BackendKind::Gcs)
        } else {
            Some(BackendKind::S3)
        }
    } else if !keys.is_empty() && keys.iter().all(|k| LOCAL_KEYS.contains(k)) {
        Some(BackendKind::Local)
    } else {
        None
    }
}

const LOCAL_KEYS: &[&str] = &["path", "workspace_dir"];

/// A `--from` file whose keys are not settings of the type it is read as: said, with
/// the type its keys suggest.
fn check_from_keys(
    kind: &BackendKind,
    keys: &[&str],
    file: &std::path::Path,
    type_given: bool,
) -> anyhow::Result<()> {
    let wrong = match kind {
        BackendKind::Local => keys.iter().find(|k| !LOCAL_KEYS.contains(k)).copied(),
        BackendKind::S3 => ["bucket", "key"].into_iter().find(|k| !keys.contains(k)),
        _ => None,
    };
    let Some(key) = wrong else {
        return Ok(());
    };
    let message = if *kind == BackendKind::S3 {
        format!(
            "--from `{}` is read as an s3 backend config but has no `{key}`",
            file.display()
        )
    } else {
        format!(
            "--from `{}`: `{key}` is not a setting of the {kind} backend",
            file.display()
        )
    };
    let hint = match inferred_kind(keys).filter(|k| k != kind) {
        Some(other) => format!("its keys look like a {other} backend config: pass `--from-type {other}`"),
        None if type_given => "check the file: it must hold the old backend's settings (the same HCL as a backend config file)".to_string(),
        None => "name the old backend's type with `--from-type <type>` (local, s3, …)".to_string(),
    };
    Err(TfenvError::usage(message, Some(hint)).into())
}

fn place(backend: &Backend, env: &Environment, project: &Project) -> Place {
    Place {
        backend: backend.kind.to_string(),
        location: backend.location(env, project),
    }
}

struct Moving<'a> {
    project: &'a Project,
    env: &'a Environment,
    backend: &'a Backend,
    from: &'a From,
    recorded: Option<&'a Backend>,
    from_place: Place,
    to_place: Place,
}

impl Moving<'_> {
    async fn run(
        &self,
        ctx: &Context,
        settings: &MigrateSettings,
        tf: &Terraform,
        ledger: &mut crate::artifacts::history::Ledger,
    ) -> anyhow::Result<MigrateReport> {
        let env = self.env;
        // Both sides are read before anything changes.
        let old_bytes = read_state_at(&self.from.backend, env)
            .await
            .map_err(|err| {
                err.context(format!(
                    "reading the old state `{}`",
                    self.from_place.location
                ))
            })?;
        let old = match old_bytes.as_deref().map(header_of).transpose()?.flatten() {
            Some(header) => header,
            None => {
                return Err(TfenvError::usage(
                    format!(
                        "there is no state at `{}` ({}), where `{}` was: nothing to migrate",
                        self.from_place.location, self.from_place.backend, env.name
                    ),
                    Some(format!(
                        "if the state is elsewhere, name its backend config with --from; if there is none, start at the new backend with `tfenv init {} --reconfigure`",
                        env.name
                    )),
                )
                .into());
            }
        };
        let old_bytes = old_bytes.unwrap_or_default();
        self.check_source(ctx, &old, settings.force).await?;
        let (target, target_bytes) = self.target(ctx, settings.force).await?;
        if let Some(t) = &target
            && !settings.force
        {
            return Err(TfenvError::Refused {
                message: format!(
                    "`{}` ({}) already holds a state with {} resource(s) (serial {}, lineage {}): migrating would overwrite it; nothing was changed",
                    self.to_place.location,
                    self.to_place.backend,
                    t.resources,
                    t.serial,
                    short(&t.lineage)
                ),
                hint: Some(format!(
                    "check what it holds (is the backend config of `{}` pointing at the right place?); to overwrite it with the state from `{}`, pass --force",
                    env.name, self.from_place.location
                )),
            }
            .into());
        }
        let approval = Approval::new(
            self.project,
            env,
            format!(
                "move the state ({} resource(s)) from `{}` to `{}` for",
                old.resources, self.from_place.location, self.to_place.location
            ),
            0,
        )
        .with_review("check the new backend config".to_string());
        let gate = Gate::new(approval, settings.flags.clone());
        gate.check_flags()?;
        gate.ask(&ctx.interrupts, ctx.prompter.clone()).await?;

        // A state overwritten with --force is kept first: it may be all there is of it.
        // (Before the old state's backup, so that the newest backup stays this
        // environment's own lineage.)
        if let (Some(_), Some(bytes)) = (&target, target_bytes) {
            ctx.printer.progress(&format!(
                "{}: backing up the state at `{}` before overwriting it",
                env.name, self.to_place.location
            ));
            let kept = backups::create(env, "pre-migrate-target", |mut sink| async move {
                sink.write_all(&bytes)?;
                sink.flush()?;
                Ok(crate::terraform::state::read_header_slice(&bytes)?)
            })
            .await?;
            if let Some(kept) = &kept {
                ctx.printer.warn(&format!(
                    "the state overwritten at `{}` is backed up as {} (reason `pre-migrate-target`)",
                    self.to_place.location, kept.file
                ));
            }
        }

        ctx.printer.progress(&format!(
            "{}: backing up the state at `{}`",
            env.name, self.from_place.location
        ));
        let old_bytes_kept = old_bytes.clone();
        let backup = backups::create(env, "pre-migrate", |mut sink| async move {
            sink.write_all(&old_bytes)?;
            sink.flush()?;
            Ok(crate::terraform::state::read_header_slice(&old_bytes)?)
        })
        .await?;
        ledger.backup = backup.clone();
        // The data dir must be initialized with the old backend for terraform to move
        // the state from it.
        let data_dir_knows = self
            .recorded
            .is_some_and(|r| same_place(r, &self.from.backend, env));
        if !data_dir_knows {
            let file = self
                .from
                .file
                .as_ref()
                .expect("--from given when nothing is recorded");
            ctx.printer.progress(&format!(
                "{}: terraform init with the old backend ({})",
                env.name, self.from_place.backend
            ));
            tf.init_old_backend(env, &self.from.backend, file).await?;
        }
        let log = if env.tier == crate::project::Tier::Production {
            Some(RunLog::open(self.project, env, "migrate")?)
        } else {
            None
        };
        ledger.log = log.as_ref().map(|l| l.name.clone());
        // From here on the new place may change.
        ledger.reached_apply = true;
        let options = InitOptions {
            migrate: true,
            ..InitOptions::default()
        };
        if let Err(err) = ctx
            .ensure_init(tf, self.project, env, self.backend, options, log.as_ref())
            .await
        {
            return Err(self.failed(err, backup.as_ref()));
        }
        if let Err(err) = self.backend.make_state_private(env) {
            ctx.printer.warn(&format!("{err:#}"));
        }
        self.target_dirs_private();
        let mut landed = tf.state_header(env).await?.filter(|h| !h.is_empty());
        let mut lineage_pushed = false;
        // Copied to a remote backend, terraform may write the resources under a lineage
        // of its own (1.11 into an empty s3 key does): the state's history (its backups, the
        // lineage checks of restore and status) would no longer be this state's. The old
        // state is pushed over that fresh copy, as it was.
        if let Some(h) = &landed
            && h.lineage != old.lineage
            && h.resources == old.resources
        {
            ctx.printer.progress(&format!(
                "{}: terraform gave the copy a new lineage; pushing the state with its own ({})",
                env.name,
                short(&old.lineage)
            ));
            crate::files::ensure_private_dir(&env.artifacts_dir)?;
            let staged = Staged(env.artifacts_dir.join(".migrate.tfstate"));
            crate::files::write_atomic(&staged.0, &old_bytes_kept, crate::files::PRIVATE_FILE)?;
            tf.state_push(env, &staged.0, true).await?;
            drop(staged);
            lineage_pushed = true;
            landed = tf.state_header(env).await?.filter(|h| !h.is_empty());
        }
        match &landed {
            Some(h)
                if h.lineage == old.lineage
                    && h.serial >= old.serial
                    && h.resources == old.resources
                    && h.instances == old.instances => {}
            other => anyhow::bail!(
                "terraform reported the state of `{}` moved, but `{}` now reads {} where `{}` had lineage {}, serial {}, {} resource(s); the old state is still at `{}`{}",
                env.name,
                self.to_place.location,
                other.as_ref().map_or("no state".to_string(), |h| format!(
                    "lineage {}, serial {}, {} resource(s)",
                    short(&h.lineage),
                    h.serial,
                    h.resources
                )),
                self.from_place.location,
                short(&old.lineage),
                old.serial,
                old.resources,
                self.from_place.location,
                backup
                    .as_ref()
                    .map(|b| format!(" (and backed up as {})", b.file))
                    .unwrap_or_default()
            ),
        }
        let landed = landed.expect("checked above");
        Ok(MigrateReport {
            environment: env.name.clone(),
            from: self.from_place.clone(),
            to: self.to_place.clone(),
            lineage: landed.lineage,
            serial_before: old.serial,
            serial_after: landed.serial,
            resources: landed.resources,
            overwritten: target.map(|t| Overwritten {
                serial: t.serial,
                lineage: t.lineage,
                resources: t.resources,
            }),
            backup,
            old_state_left: true,
            lineage_pushed,
            log: log.map(|l| l.name),
            warnings: Vec::new(),
        })
    }

    /// The state at the new place, when there is one (any state terraform would refuse
    /// to lose: resources, a serial past 0, or outputs), and its bytes. A backend tfenv
    /// does not read: refused unless `--force` (it cannot tell whether a state would be
    /// overwritten). Something that is not a state: refused; with `--force` a local one is
    /// copied aside and removed (terraform cannot migrate over it).
    async fn target(
        &self,
        ctx: &Context,
        force: bool,
    ) -> anyhow::Result<(Option<StateHeader>, Option<Vec<u8>>)> {
        if !reads_state(self.backend) {
            if force {
                return Ok((None, None));
            }
            return Err(TfenvError::Refused {
                message: format!(
                    "tfenv cannot check whether `{}` ({}) already holds a state: it reads local and s3 states itself; nothing was changed",
                    self.to_place.location, self.to_place.backend
                ),
                hint: Some(
                    "check the new place yourself; when it holds no state you want, pass --force".to_string(),
                ),
            }
            .into());
        }
        let bytes = read_state_at(self.backend, self.env)
            .await
            .map_err(|err| err.context(format!("reading `{}`", self.to_place.location)))?;
        let Some(bytes) = bytes else {
            return Ok((None, None));
        };
        match header_of(&bytes) {
            Ok(Some(header)) if holds_a_state(&header, &bytes) => Ok((Some(header), Some(bytes))),
            Ok(_) => Ok((None, None)),
            Err(err) => self.unreadable_target(ctx, force, &bytes, err),
        }
    }

    /// Something at the new place terraform cannot load ("State migration cannot occur
    /// unless the state can be loaded"): what to remove, and with `--force` (local) the
    /// bytes kept aside and the file removed.
    fn unreadable_target(
        &self,
        ctx: &Context,
        force: bool,
        bytes: &[u8],
        err: anyhow::Error,
    ) -> anyhow::Result<(Option<StateHeader>, Option<Vec<u8>>)> {
        let local = self.backend.local_state_file(self.env);
        if force && let Some(file) = &local {
            crate::files::ensure_private_dir(&self.env.artifacts_dir)?;
            let kept = self.env.artifacts_dir.join(format!(
                "migrate-target-{}.unreadable",
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            ));
            crate::files::write_atomic(&kept, bytes, crate::files::PRIVATE_FILE)?;
            std::fs::remove_file(file)
                .map_err(|e| anyhow::anyhow!("removing `{}`: {e}", file.display()))?;
            ctx.printer.warn(&format!(
                "`{}` was not a readable state: its bytes are kept in `{}` and it was removed so terraform can migrate",
                self.to_place.location,
                self.project.show(&kept)
            ));
            return Ok((None, None));
        }
        let hint = match &local {
            Some(file) => format!(
                "a partial copy from a migration that failed? terraform cannot migrate over it. Keep a copy and remove it (`mv {} {}.broken`), or pass --force: tfenv keeps its bytes in `state/{}/` and removes it",
                self.project.show(file),
                self.project.show(file),
                self.env.name
            ),
            None => format!(
                "a partial copy from a migration that failed? terraform cannot migrate over it, and tfenv does not remove remote objects: copy `{loc}` somewhere safe and delete it yourself (for s3: `aws s3 cp {loc} ./{name}-target.broken && aws s3 rm {loc}`), then run `tfenv migrate {name}` again",
                loc = self.to_place.location,
                name = self.env.name
            ),
        };
        Err(TfenvError::Refused {
            message: format!(
                "`{}` ({}) holds something that is not a readable Terraform state ({err:#}); nothing was changed",
                self.to_place.location, self.to_place.backend
            ),
            hint: Some(hint),
        }
        .into())
    }

    /// Folders terraform created for a local target under `state/`: 0700, as tfenv's own.
    fn target_dirs_private(&self) {
        let Some(file) = self.backend.local_state_file(self.env) else {
            return;
        };
        let state_dir = &self.project.state_dir;
        let mut dir = file.parent();
        while let Some(d) = dir {
            if !d.starts_with(state_dir) || d == state_dir.as_path() {
                break;
            }
            let _ = std::fs::set_permissions(
                d,
                std::os::unix::fs::PermissionsExt::from_mode(crate::files::PRIVATE_DIR),
            );
            dir = d.parent();
        }
    }

    /// The `--from` state is this environment's: not another environment's place, the
    /// lineage this environment last had, and not a place other than the recorded one
    /// while that still holds a state. Refused (exit 5) unless `--force`.
    async fn check_source(
        &self,
        ctx: &Context,
        old: &StateHeader,
        force: bool,
    ) -> anyhow::Result<()> {
        if self.from.file.is_none() {
            return Ok(());
        }
        let env = self.env;
        let mut problems = Vec::new();
        let from_id = self.from.backend.identity(env);
        for other in &self.project.environments {
            if other.name == env.name {
                continue;
            }
            let Ok(theirs) = Backends::default().resolve(other, self.project) else {
                continue;
            };
            if theirs.kind == self.from.backend.kind
                && from_id.is_some()
                && theirs.identity(other) == from_id
            {
                problems.push(format!(
                    "`{}` is the state of environment `{}` (its backend config points there), not of `{}`",
                    self.from_place.location, other.name, env.name
                ));
            }
        }
        let mut known: Option<(String, String)> = None;
        if let Some(recorded) = self.recorded
            && !same_place(recorded, &self.from.backend, env)
            && reads_state(recorded)
            && let Ok(Some(bytes)) = read_state_at(recorded, env).await
            && let Ok(Some(h)) = header_of(&bytes)
        {
            let location = recorded.location(env, self.project);
            problems.push(format!(
                "`{}` was initialized with `{location}`, which still holds a state (lineage {}, serial {}, {} resource(s)), and --from names another place",
                env.name,
                short(&h.lineage),
                h.serial,
                h.resources
            ));
            known = Some((h.lineage, format!("the state at `{location}`")));
        }
        if known.is_none()
            && let Ok(Some(b)) = backups::newest_backup(&env.artifacts_dir)
        {
            known = Some((b.lineage, format!("its newest backup {}", b.file)));
        }
        if let Some((lineage, whence)) = &known
            && !lineage.is_empty()
            && *lineage != old.lineage
        {
            let mut owner = String::new();
            for other in self
                .project
                .environments
                .iter()
                .filter(|o| o.name != env.name)
            {
                if let Ok(theirs) = Backends::default().resolve(other, self.project)
                    && reads_state(&theirs)
                    && let Ok(Some(bytes)) = read_state_at(&theirs, other).await
                    && let Ok(Some(h)) = header_of(&bytes)
                    && h.lineage == old.lineage
                {
                    owner = format!(", the lineage of environment `{}`", other.name);
                    break;
                }
            }
            problems.push(format!(
                "the state at `{}` has lineage {}{owner}; `{}` last had lineage {} ({whence})",
                self.from_place.location,
                short(&old.lineage),
                env.name,
                short(lineage)
            ));
        }
        if problems.is_empty() {
            return Ok(());
        }
        if force {
            for p in &problems {
                ctx.printer
                    .warn(&format!("{p} (--force: migrating anyway)"));
            }
            return Ok(());
        }
        Err(TfenvError::Refused {
            message: format!(
                "--from `{}` does not look like the state of `{}`: {}; nothing was changed",
                self.from_place.location,
                env.name,
                problems.join("; ")
            ),
            hint: Some(format!(
                "check --from names the old backend config of `{}` (not another environment's); if this really is its state, pass --force",
                env.name
            )),
        }
        .into())
    }

    /// terraform failed (or crashed) while moving: what is where, and what to do.
    fn failed(&self, err: anyhow::Error, backup: Option<&Backup>) -> anyhow::Error {
        if matches!(
            err.downcast_ref::<TfenvError>(),
            Some(TfenvError::Interrupted)
        ) {
            return err;
        }
        let name = &self.env.name;
        TfenvError::Config {
            message: format!(
                "moving the state of `{name}` failed: {err:#}\nThe state is still at `{}` ({}){}; `{}` ({}) may hold a partial copy, and the data dir may still point at the old backend.",
                self.from_place.location,
                self.from_place.backend,
                backup
                    .map(|b| format!(", backed up as {}", b.file))
                    .unwrap_or_default(),
                self.to_place.location,
                self.to_place.backend,
            ),
            hint: Some(format!(
                "fix the cause above, then run `tfenv migrate {name}{}` again (add --force if `{}` now holds a state); `tfenv status {name}` shows where the environment stands",
                self.from
                    .file
                    .as_ref()
                    .map(|f| format!(" --from {}", f.display()))
                    .unwrap_or_default(),
                self.to_place.location
            )),
        }
        .into()
    }
}

/// The state being pushed, removed however the migration ends.
struct Staged(std::path::PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether a state at the target is one terraform's copy would replace: resources, a
/// serial past 0, or outputs.
fn holds_a_state(header: &StateHeader, bytes: &[u8]) -> bool {
    header.resources > 0
        || header.serial > 0
        || serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|v| {
                v.get("outputs")
                    .and_then(|o| o.as_object())
                    .map(|o| !o.is_empty())
            })
            .unwrap_or(false)
}

fn short(lineage: &str) -> String {
    lineage.chars().take(8).collect()
}
