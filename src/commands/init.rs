//! `tfenv init`: `terraform init` with the environment's backend config, into its own
//! data dir; skipped when nothing it depends on changed.

use std::time::Instant;

use serde::Serialize;

use crate::Context;
use crate::backend::Backends;
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
    outcome: InitOutcome,
    seconds: f64,
    /// terraform's full output, relative to `state/<env>/` (`--log`, always for production).
    log: Option<String>,
}

pub async fn init(ctx: &Context, settings: InitSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    // Resolve every name before any terraform runs: a typo must not half-initialize.
    let resolved = Backends::default().resolve_all(&project, &settings.names)?;
    let tf = ctx.terraform(&project).await?;
    let options = settings.options;
    let mut report = InitReport {
        environments: Vec::new(),
    };
    // One at a time: terraform's plugin cache is not safe for concurrent installs.
    for (env, backend) in resolved {
        let started = Instant::now();
        let wants_log = settings.log || env.tier == Tier::Production;
        // A log only for an init that runs: a skipped one has nothing to say.
        let log = if wants_log && Terraform::needs_init(env, &backend, options) {
            Some(RunLog::open(&project, env, "init")?)
        } else {
            None
        };
        let outcome = ctx
            .ensure_init(&tf, &project, env, &backend, options, log.as_ref())
            .await?;
        let seconds = started.elapsed().as_secs_f64();
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
            outcome,
            seconds,
            log: log.map(|log| log.name),
        });
    }
    if ctx.printer.is_json() {
        ctx.printer.json(&report)?;
    }
    Ok(Exit::Success)
}
