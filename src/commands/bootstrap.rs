//! `tfenv bootstrap`: create what an environment's backend config names and does not
//! exist yet, secure by default (DESIGN.md §13). Reads first (every resource, once
//! however many environments share it), prints the plan, confirms by tier, makes each
//! change in order, then reads again to check. A stop half way says exactly what was
//! made, what may have been (a call that did not answer), and what was not; the next
//! run completes it.

use std::collections::HashSet;

use serde::Serialize;

use crate::Context;
use crate::backend::bootstrap::{self, Options, Parent, Resource, Step, StepKind, Survey};
use crate::backend::{Backend, BackendKind, Backends, is_unreachable};
use crate::confirm::{Approval, Flags, Gate};
use crate::error::{ErrorReport, TfenvError, exit_for};
use crate::exit::Exit;
use crate::project::{Environment, Tier};
use crate::settings::BootstrapSettings;

/// One resource and the environments that name it: those selected, then the project's
/// others (whose tier counts for the confirmation: a bucket production shares is
/// production's too).
struct Listed<'p> {
    resource: Resource,
    envs: Vec<&'p Environment>,
    others: Vec<&'p Environment>,
}

impl Listed<'_> {
    /// The environment whose confirmation covers this resource: the strictest tier of
    /// all that use it (the first of them at a tie).
    fn approver(&self) -> &Environment {
        let mut all = self.envs.iter().chain(&self.others);
        let first = all.next().expect("a resource is named by an environment");
        all.fold(
            first,
            |best, env| if env.tier > best.tier { env } else { best },
        )
    }

    /// `dev, staging` and, for the others, `; also production`.
    fn used_by(&self) -> String {
        let names = |envs: &[&Environment]| {
            envs.iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.others.as_slice() {
            [] => names(&self.envs),
            others => format!("{}; also used by {}", names(&self.envs), names(others)),
        }
    }
}

/// A resource with what the survey found and what became of each step.
struct Planned<'p> {
    listed: Listed<'p>,
    survey: Survey,
    /// Per step of the survey: `planned`, `needs-fix`, `made`, `failed`, `unknown`,
    /// `not-made`.
    outcomes: Vec<&'static str>,
}

impl Planned<'_> {
    fn name(&self) -> &str {
        &self.listed.resource.name
    }
}

#[derive(Serialize)]
struct Report<'s> {
    dry_run: bool,
    fix: bool,
    environments: Vec<EnvReport>,
    resources: Vec<ResourceReport<'s>>,
    /// Changes made by this run.
    changed: usize,
    /// Fixes found that this run did not make (no `--fix`).
    needs_fix: usize,
    /// Why the run stopped half way (`null` when it did not).
    error: Option<ErrorReport>,
}

#[derive(Clone, Serialize)]
struct EnvReport {
    environment: String,
    backend: BackendKind,
    /// The resources its backend needs, by name.
    resources: Vec<String>,
    /// Why it has none (a local backend, one tfenv cannot create).
    note: Option<String>,
}

#[derive(Serialize)]
struct ResourceReport<'s> {
    resource: String,
    environments: Vec<String>,
    /// The project's other environments that use it too.
    also_used_by: Vec<String>,
    exists: bool,
    found: Vec<String>,
    notes: Vec<String>,
    steps: Vec<StepReport<'s>>,
}

#[derive(Serialize)]
struct StepReport<'s> {
    #[serde(flatten)]
    step: &'s Step,
    outcome: &'static str,
}

pub async fn bootstrap(ctx: &Context, settings: BootstrapSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let backends = Backends::default();
    let resolved = backends.resolve_all(&project, &settings.names)?;
    let options = Options {
        runner: ctx.runner.clone(),
        timeout: settings.timeout,
        location: settings.location.clone(),
        sku: settings.sku.clone(),
    };
    let kinds: Vec<&BackendKind> = resolved.iter().map(|(_, b)| &b.kind).collect();
    for warning in bootstrap::check_options(&options, &kinds)? {
        ctx.printer.warn(&warning);
    }

    // Every name is checked before anything is asked of a cloud.
    let all = settings.names.is_empty();
    let mut listed: Vec<Listed> = Vec::new();
    let mut environments = Vec::new();
    for (env, backend) in &resolved {
        let note = match &backend.kind {
            BackendKind::Local => {
                Some("local backend: nothing to create (the state is a local file)".to_string())
            }
            // With --all, one environment tfenv cannot bootstrap does not stop the others.
            BackendKind::Other(kind) if all => Some(format!(
                "a `{kind}` backend: tfenv creates s3, azurerm and gcs backends; create its storage yourself"
            )),
            _ => None,
        };
        if let Some(note) = note {
            environments.push(EnvReport {
                environment: env.name.clone(),
                backend: backend.kind.clone(),
                resources: Vec::new(),
                note: Some(note),
            });
            continue;
        }
        let resources = bootstrap::resources(backend)
            .map_err(|e| e.context(format!("environment `{}`", env.name)))?;
        environments.push(EnvReport {
            environment: env.name.clone(),
            backend: backend.kind.clone(),
            resources: resources.iter().map(|r| r.name.clone()).collect(),
            note: None,
        });
        for resource in resources {
            add(&mut listed, resource, env)?;
        }
    }
    for other in &project.environments {
        if resolved.iter().any(|(env, _)| env.name == other.name) {
            continue;
        }
        // An environment whose config cannot be read may share what this run changes:
        // its confirmation cannot be asked for, so say so.
        let resources = backends
            .resolve(other, &project)
            .and_then(|backend| match backend.kind {
                BackendKind::Local | BackendKind::Other(_) => Ok(Vec::new()),
                _ => bootstrap::resources(&backend),
            });
        let resources = match resources {
            Ok(resources) => resources,
            Err(err) => {
                ctx.printer.warn(&format!(
                    "cannot tell whether `{}` ({} tier) uses what this run changes: {err:#}",
                    other.name, other.tier
                ));
                continue;
            }
        };
        for resource in resources {
            if let Some(l) = listed.iter_mut().find(|l| l.resource.key == resource.key) {
                conflict(l, &resource, other)?;
                l.others.push(other);
            }
        }
    }

    // Reads only: what exists, what is missing, what is set otherwise.
    let planned = survey_all(ctx, listed, &options, settings.fix).await?;

    let changes = count(&planned, "planned");
    let needs_fix = count(&planned, "needs-fix");
    let plan_lines = plan_lines(&environments, &planned, settings.fix);
    if ctx.printer.is_json() {
        // A person asked to confirm sees what they confirm, on stderr.
        if changes > 0 && !settings.dry_run && settings.flags.interactive {
            for line in &plan_lines {
                ctx.printer.progress_now(line);
            }
        }
    } else {
        for line in &plan_lines {
            ctx.printer.result(line);
        }
    }
    let needs_fix_line = (needs_fix > 0).then(|| {
        format!(
            "{needs_fix} protection(s) set otherwise, marked `!` above: tfenv changes them only with --fix ({})",
            rerun(&settings, &resolved, " --fix")
        )
    });
    // A fix left unmade is a problem of the backend, as `status` reports it.
    let finish = if needs_fix > 0 {
        Exit::Unhealthy
    } else {
        Exit::Success
    };
    let report = |planned, error| report(planned, &environments, &settings, needs_fix, error);

    if changes == 0 || settings.dry_run {
        if ctx.printer.is_json() {
            ctx.printer.json(&report(&planned, None))?;
        } else {
            if changes == 0 && needs_fix == 0 {
                ctx.printer.result("nothing to do");
            } else if settings.dry_run {
                ctx.printer.result("dry run: nothing was changed");
            }
            if let Some(line) = &needs_fix_line {
                ctx.printer.result(line);
            }
        }
        return Ok(finish);
    }

    confirm(ctx, &project, &planned, &settings).await?;

    let mut planned = planned;
    let result = match make(ctx, &mut planned, &options).await {
        Ok(()) => check_after(&planned, &options, settings.fix).await,
        Err(err) => Err(err),
    };
    if let Err(err) = result {
        let interrupted = exit_for(&err) == Exit::Interrupted;
        if ctx.printer.is_json() {
            ctx.printer
                .json(&report(&planned, Some(ErrorReport::of(&err))))?;
            return Ok(exit_for(&err));
        }
        for line in stopped_lines(&planned, interrupted, &settings, &resolved) {
            ctx.printer.result(&line);
        }
        return Err(err);
    }
    if ctx.printer.is_json() {
        ctx.printer.json(&report(&planned, None))?;
        return Ok(finish);
    }
    ctx.printer.result(&format!(
        "made {} change(s); checked: {}",
        count(&planned, "made"),
        planned
            .iter()
            .map(|p| p.name().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    match needs_fix_line {
        Some(line) => ctx.printer.result(&line),
        None => {
            let created: Vec<&str> = environments
                .iter()
                .filter(|e| !e.resources.is_empty())
                .map(|e| e.environment.as_str())
                .collect();
            if let [one] = created.as_slice() {
                ctx.printer.result(&format!("next: tfenv deploy {one}"));
            }
        }
    }
    Ok(finish)
}

/// The JSON document: every resource, each step with its outcome.
fn report<'s>(
    planned: &'s [Planned<'_>],
    environments: &[EnvReport],
    settings: &BootstrapSettings,
    needs_fix: usize,
    error: Option<ErrorReport>,
) -> Report<'s> {
    Report {
        dry_run: settings.dry_run,
        fix: settings.fix,
        environments: environments.to_vec(),
        resources: planned
            .iter()
            .map(|p| ResourceReport {
                resource: p.name().to_string(),
                environments: p.listed.envs.iter().map(|e| e.name.clone()).collect(),
                also_used_by: p.listed.others.iter().map(|e| e.name.clone()).collect(),
                exists: p.survey.exists,
                found: p.survey.found.clone(),
                notes: p.survey.notes.clone(),
                steps: p
                    .survey
                    .steps
                    .iter()
                    .zip(&p.outcomes)
                    .map(|(step, outcome)| StepReport { step, outcome })
                    .collect(),
            })
            .collect(),
        changed: count(planned, "made"),
        needs_fix,
        error,
    }
}

/// Adds `resource` of `env` to the list, once per key; the same resource made otherwise
/// by two environments (an S3 bucket in two regions) is an error naming both.
fn add<'p>(
    listed: &mut Vec<Listed<'p>>,
    resource: Resource,
    env: &'p Environment,
) -> anyhow::Result<()> {
    let Some(l) = listed.iter_mut().find(|l| l.resource.key == resource.key) else {
        listed.push(Listed {
            resource,
            envs: vec![env],
            others: Vec::new(),
        });
        return Ok(());
    };
    conflict(l, &resource, env)?;
    l.envs.push(env);
    Ok(())
}

/// The same resource made differently by `env` than by those listed: an error naming
/// both.
fn conflict(l: &Listed<'_>, resource: &Resource, env: &Environment) -> anyhow::Result<()> {
    if l.resource.made_with == resource.made_with {
        return Ok(());
    }
    let first = &l.envs[0].name;
    Err(TfenvError::config(
        format!(
            "`{first}` and `{}` name the same {} made differently: {} for `{first}`; {} for `{}`",
            env.name, resource.name, l.resource.made_with, resource.made_with, env.name
        ),
        Some(
            "make their backend configs agree (one bucket has one region and one default encryption), or give each its own"
                .to_string(),
        ),
    )
    .into())
}

/// Surveys each resource in order; a resource whose parent is missing is not asked
/// about. A stop request while a cloud CLI runs kills it: that is an interruption, not
/// the CLI's failure.
async fn survey_all<'p>(
    ctx: &Context,
    listed: Vec<Listed<'p>>,
    options: &Options,
    fix: bool,
) -> anyhow::Result<Vec<Planned<'p>>> {
    let mut missing: HashSet<String> = HashSet::new();
    let mut planned = Vec::new();
    for listed in listed {
        let resource = &listed.resource;
        let parent = match &resource.parent {
            Some(key) if missing.contains(key) => Parent::Missing,
            _ => Parent::Exists,
        };
        ctx.printer.progress(&format!("checking {}", resource.name));
        let survey = resource.survey(parent, options).await.map_err(|e| {
            if ctx.interrupts.received() {
                TfenvError::Interrupted.into()
            } else {
                e.context(format!("checking {}", resource.name))
            }
        })?;
        if !survey.exists {
            missing.insert(resource.key.clone());
        }
        let outcomes = survey
            .steps
            .iter()
            .map(|s| {
                if makes(s, fix) {
                    "planned"
                } else {
                    "needs-fix"
                }
            })
            .collect();
        planned.push(Planned {
            listed,
            survey,
            outcomes,
        });
    }
    Ok(planned)
}

/// Confirmation by tier: each environment whose backend changes (a resource counts for
/// the strictest environment using it), all decided by flags before anything is made.
/// `--confirm` names the production environment: the others need only `--yes`.
async fn confirm(
    ctx: &Context,
    project: &crate::project::Project,
    planned: &[Planned<'_>],
    settings: &BootstrapSettings,
) -> anyhow::Result<()> {
    let mut approvers: Vec<&Environment> = Vec::new();
    for p in planned.iter().filter(|p| p.outcomes.contains(&"planned")) {
        let env = p.listed.approver();
        if !approvers.iter().any(|a| a.name == env.name) {
            approvers.push(env);
        }
    }
    let production: Vec<&str> = approvers
        .iter()
        .filter(|env| env.tier == Tier::Production)
        .map(|env| env.name.as_str())
        .collect();
    if production.len() > 1 && !settings.flags.interactive {
        return Err(TfenvError::Refused {
            message: format!(
                "this run changes the backends of {} production environments (`{}`), and --confirm names one",
                production.len(),
                production.join("`, `")
            ),
            hint: Some(format!(
                "bootstrap them one at a time: `tfenv bootstrap {0} --yes --confirm {0}`, then the next",
                production[0]
            )),
        }
        .into());
    }
    let gates: Vec<Gate> = approvers
        .iter()
        .map(|env| {
            let approval = Approval::new(project, env, "create or change the state backend of", 0)
                .with_review(if ctx.printer.is_json() {
                    format!("check `tfenv bootstrap {} --dry-run`", env.name)
                } else {
                    "check the list above".to_string()
                });
            let flags = Flags {
                confirm: settings
                    .flags
                    .confirm
                    .clone()
                    .filter(|_| env.tier == Tier::Production),
                ..settings.flags.clone()
            };
            Gate::new(approval, flags)
        })
        .collect();
    for gate in &gates {
        gate.check_flags()?;
    }
    for gate in gates {
        gate.ask(&ctx.interrupts, ctx.prompter.clone()).await?;
    }
    Ok(())
}

/// Makes every planned step in order, recording each outcome. A stop request is acted
/// on between two steps; one during a step ends it at once, and that step's outcome is
/// unknown (the cloud may have taken the call), as is one whose call did not answer in
/// time.
async fn make(ctx: &Context, planned: &mut [Planned<'_>], options: &Options) -> anyhow::Result<()> {
    let seen = ctx.interrupts.handle_next();
    for p in planned.iter_mut() {
        for index in 0..p.survey.steps.len() {
            if p.outcomes[index] != "planned" {
                continue;
            }
            if ctx.interrupts.received_after(seen) {
                return Err(TfenvError::Interrupted.into());
            }
            let step = &p.survey.steps[index];
            ctx.printer
                .progress(&format!("{}: {}", p.listed.resource.name, step.change));
            let result = tokio::select! {
                biased;
                () = ctx.interrupts.stop_requested_after(seen) => Err(TfenvError::Interrupted.into()),
                result = p.listed.resource.apply(step, options) => result,
            };
            match result {
                Ok(()) => p.outcomes[index] = "made",
                Err(err) => {
                    let interrupted = ctx.interrupts.received_after(seen);
                    p.outcomes[index] = if interrupted || is_unreachable(&err) {
                        "unknown"
                    } else {
                        "failed"
                    };
                    return Err(if interrupted {
                        TfenvError::Interrupted.into()
                    } else {
                        err.context(format!(
                            "bootstrap stopped at {}: {}",
                            p.listed.resource.name, step.change
                        ))
                    });
                }
            }
        }
    }
    if ctx.interrupts.received_after(seen) {
        ctx.printer.warn("interrupted after the last change; the check afterwards was skipped (`tfenv bootstrap --dry-run` shows what is in place)");
        return Err(TfenvError::Interrupted.into());
    }
    Ok(())
}

/// How many steps of the plan have `outcome`.
fn count(planned: &[Planned<'_>], outcome: &str) -> usize {
    planned
        .iter()
        .flat_map(|p| &p.outcomes)
        .filter(|o| **o == outcome)
        .count()
}

/// Whether this run makes `step`: every step but the fixes, which only `--fix` makes.
fn makes(step: &Step, fix: bool) -> bool {
    fix || step.kind != StepKind::Fix
}

/// The check after the changes: every resource surveyed again (the children of what
/// this run made as in a new parent), and nothing may be left to make.
async fn check_after(planned: &[Planned<'_>], options: &Options, fix: bool) -> anyhow::Result<()> {
    let mut left = Vec::new();
    let mut missing = HashSet::new();
    let made_now: HashSet<&str> = planned
        .iter()
        .filter(|p| !p.survey.exists)
        .map(|p| p.listed.resource.key.as_str())
        .collect();
    for p in planned {
        let resource = &p.listed.resource;
        let parent = match resource.parent.as_deref() {
            Some(key) if missing.contains(key) => Parent::Missing,
            Some(key) if made_now.contains(key) => Parent::MadeNow,
            _ => Parent::Exists,
        };
        let survey = resource
            .survey(parent, options)
            .await
            .map_err(|e| e.context(format!("checking {} after the changes", resource.name)))?;
        if !survey.exists {
            missing.insert(resource.key.clone());
        }
        left.extend(
            survey
                .steps
                .iter()
                .filter(|s| makes(s, fix))
                .map(|s| format!("{}: {}", resource.name, s.change)),
        );
    }
    if left.is_empty() {
        return Ok(());
    }
    Err(TfenvError::config(
        format!(
            "every change was accepted, but a check afterwards finds these still to do: {}",
            left.join("; ")
        ),
        Some("the cloud may apply some settings with a delay: run `tfenv bootstrap` again in a minute; if it stays, set them by hand (docs/bootstrap.md lists each setting)".to_string()),
    )
    .into())
}

/// What a stop half way says, step by step, and how to go on.
fn stopped_lines(
    planned: &[Planned<'_>],
    interrupted: bool,
    settings: &BootstrapSettings,
    resolved: &[(&Environment, Backend)],
) -> Vec<String> {
    let outcomes = || planned.iter().flat_map(|p| &p.outcomes);
    let all_made = outcomes().all(|o| matches!(*o, "made" | "needs-fix"));
    let any_made = outcomes().any(|o| *o == "made");
    let mut lines = vec![if interrupted {
        "bootstrap was interrupted:".to_string()
    } else if all_made {
        "every change was made, but the check afterwards failed:".to_string()
    } else {
        "bootstrap stopped:".to_string()
    }];
    for p in planned {
        for (step, outcome) in p.survey.steps.iter().zip(&p.outcomes) {
            let said = match *outcome {
                "made" => "made",
                "failed" => "failed",
                "unknown" => "unknown (the call was cut short: it may have been made)",
                "planned" => "not made",
                _ => continue,
            };
            lines.push(format!("  {said}: {}: {}", p.name(), step.change));
        }
    }
    lines.push(format!(
        "{}{}run {} again: it checks what exists and makes the rest",
        if any_made {
            "what was made stays; "
        } else {
            ""
        },
        if interrupted {
            ""
        } else {
            "fix the cause (below), then "
        },
        rerun(settings, resolved, "")
    ));
    lines
}

/// This run's command again, with `extra` flags: `` `tfenv bootstrap dev --fix` ``.
fn rerun(
    settings: &BootstrapSettings,
    resolved: &[(&Environment, Backend)],
    extra: &str,
) -> String {
    match (settings.names.as_slice(), resolved) {
        ([_], [(env, _)]) => format!("`tfenv bootstrap {}{extra}`", env.name),
        _ => format!("`tfenv bootstrap --all{extra}`"),
    }
}

/// The plan, per resource: where it is used, what exists, and each change.
fn plan_lines(environments: &[EnvReport], planned: &[Planned<'_>], fix: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for env in environments {
        if let Some(note) = &env.note {
            lines.push(format!("{}: {note}", env.environment));
        }
    }
    for p in planned {
        let state = if p.survey.exists {
            if p.survey.found.is_empty() {
                "exists".to_string()
            } else {
                format!("exists: {}", p.survey.found.join(", "))
            }
        } else {
            "does not exist".to_string()
        };
        lines.push(format!("{} ({}): {state}", p.name(), p.listed.used_by()));
        for step in &p.survey.steps {
            let found = step
                .found
                .as_ref()
                .map(|f| format!(" (now: {f})"))
                .unwrap_or_default();
            lines.push(match (step.kind, fix) {
                (StepKind::Fix, false) => format!("  ! {}{found}: only with --fix", step.change),
                (StepKind::Fix, true) => format!("  ~ {}{found}", step.change),
                _ => format!("  + {}", step.change),
            });
        }
        for note in &p.survey.notes {
            lines.push(format!("  - {note}"));
        }
    }
    lines
}
