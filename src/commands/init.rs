//! `tfenv init`: `terraform init` with the environment's backend config, into its own
//! data dir; skipped when nothing it depends on changed.

use std::time::Instant;

use serde::Serialize;

use crate::Context;
use crate::backend::Backends;
use crate::confirm::{Approval, Gate};
use crate::exit::Exit;
use crate::project::Tier;
use crate::settings::InitSettings;
use crate::terraform::{InitOutcome, RunLog, Terraform};

#[derive(Serialize)]
struct InitReport {
    environments: Vec<InitResult>,
}

#[derive(Serialize)]
struct InitResult {
    name: String,
    /// `null` when the environment could not be initialized (`error`).
    outcome: Option<InitOutcome>,
    seconds: f64,
    /// terraform's full output, relative to `state/<env>/` (`--log`, always for production).
    log: Option<String>,
    /// Why the environment was not initialized: its configuration is broken (a missing
    /// var or backend file). The other environments were initialized.
    error: Option<String>,
}

pub async fn init(ctx: &Context, settings: InitSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    // Resolve every name before any terraform runs: a typo must not half-initialize.
    // An environment whose own files are broken is reported; the others are initialized.
    let selected = project.select(&settings.names)?;
    let backends = Backends::default();
    let resolved: Vec<_> = selected
        .iter()
        .map(|env| {
            let backend = backends.resolve(env, &project).and_then(|backend| {
                // Two environments on one state overwrite each other: never initialize.
                backends.refuse_shared_state(env, &backend, &project)?;
                Ok(backend)
            });
            (*env, backend)
        })
        .collect();
    if resolved.iter().all(|(_, backend)| backend.is_err()) {
        // Nothing to initialize: no terraform needed to say so.
        let failed = resolved
            .into_iter()
            .filter_map(|(env, b)| b.err().map(|err| (env.name.clone(), err)))
            .collect();
        return Err(super::environments_failed(
            "cannot initialize",
            selected.len(),
            failed,
        ));
    }
    let tf = ctx.terraform(&project).await?;
    let options = settings.options;
    let mut report = InitReport {
        environments: Vec::new(),
    };
    let mut failed = Vec::new();
    // One at a time: terraform's plugin cache is not safe for concurrent installs.
    for (env, backend) in resolved {
        let backend = match backend {
            Ok(backend) => backend,
            Err(err) => {
                if !ctx.printer.is_json() {
                    ctx.printer.result(&format!(
                        "{}: not initialized (config problem, below)",
                        env.name
                    ));
                }
                report.environments.push(InitResult {
                    name: env.name.clone(),
                    outcome: None,
                    seconds: 0.0,
                    log: None,
                    error: Some(format!("{err:#}")),
                });
                failed.push((env.name.clone(), err));
                continue;
            }
        };
        // The environment's lock, as every command that changes it takes (not recorded in
        // history): an `init --reconfigure` must not swap the data dir under a running
        // deploy.
        let _lock =
            crate::pipeline::RecordedRun::lock(ctx, env, "init", false, &settings.lock_wait)
                .await?;
        // --reconfigure where the backend moved away from a state abandons that state:
        // confirmed by tier, as a deploy is.
        if options.reconfigure
            && let Some(moved) =
                crate::terraform::moved::moved_with_state(env, &backend, &project).await?
        {
            let approval = Approval::new(
                &project,
                env,
                format!(
                    "abandon the state at `{}` ({}, {}) and start at `{}` for",
                    moved.from_location,
                    moved.from.kind,
                    moved.holds(),
                    moved.to_location
                ),
                0,
            )
            .with_review(format!(
                "decide that state may be abandoned (`tfenv migrate {}` moves it instead)",
                env.name
            ));
            let gate = Gate::new(approval, settings.flags.clone());
            gate.check_flags()?;
            gate.ask(&ctx.interrupts, ctx.prompter.clone()).await?;
            // The abandoned state is kept in the environment's backups first.
            if crate::terraform::moved::reads_state(&moved.from)
                && let Some(bytes) =
                    crate::terraform::moved::read_state_at(&moved.from, env).await?
            {
                let kept = crate::artifacts::backups::create(
                    env,
                    "pre-reconfigure",
                    |mut sink| async move {
                        std::io::Write::write_all(&mut sink, &bytes)?;
                        std::io::Write::flush(&mut sink)?;
                        Ok(crate::terraform::state::read_header_slice(&bytes)?)
                    },
                )
                .await?;
                if let Some(kept) = kept {
                    ctx.printer.warn(&format!(
                        "{}: the abandoned state at `{}` is backed up as {} (reason `pre-reconfigure`)",
                        env.name, moved.from_location, kept.file
                    ));
                }
            }
        }
        let started = Instant::now();
        let wants_log = settings.log || env.tier == Tier::Production;
        // A log only for an init that runs: a skipped one has nothing to say.
        let log = if wants_log && Terraform::needs_init(env, &backend, options)? {
            Some(RunLog::open(&project, env, "init")?)
        } else {
            None
        };
        let outcome = ctx
            .ensure_init(&tf, &project, env, &backend, options, log.as_ref())
            .await?;
        let seconds = crate::output::seconds(started.elapsed());
        if !ctx.printer.is_json() {
            let line = match outcome {
                InitOutcome::Ran => format!("{}: initialized ({seconds:.1}s)", env.name),
                InitOutcome::Skipped => format!(
                    "{}: already initialized (backend config unchanged; --reconfigure or --upgrade to run init anyway)",
                    env.name
                ),
            };
            ctx.printer.result(&line);
        }
        report.environments.push(InitResult {
            name: env.name.clone(),
            outcome: Some(outcome),
            seconds,
            log: log.map(|log| log.name),
            error: None,
        });
    }
    if ctx.printer.is_json() {
        ctx.printer.json(&report)?;
    }
    if !failed.is_empty() {
        return Err(super::environments_failed(
            "cannot initialize",
            selected.len(),
            failed,
        ));
    }
    Ok(Exit::Success)
}
