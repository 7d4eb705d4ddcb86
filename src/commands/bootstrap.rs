//! `tfenv bootstrap`: create what an environment's backend config names and does not
//! exist yet, secure by default (DESIGN.md §13). Reads first (every resource, once
//! however many environments share it), prints the plan, confirms by tier, makes each
//! change in order, then reads again to check. A stop half way says exactly what was
//! made; the next run completes it.

use std::collections::HashSet;

use serde::Serialize;

use crate::Context;
use crate::backend::bootstrap::{self, Options, Resource, StepKind, Survey};
use crate::backend::{BackendKind, Backends};
use crate::confirm::{Approval, Gate};
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::project::Environment;
use crate::settings::BootstrapSettings;

/// One resource, the environments that name it, and what the survey found.
struct Planned<'p> {
    resource: Resource,
    envs: Vec<&'p Environment>,
    survey: Survey,
}

impl Planned<'_> {
    /// The steps this run makes: all but the fixes, unless `--fix`.
    fn to_make(&self, fix: bool) -> impl Iterator<Item = &bootstrap::Step> {
        self.survey
            .steps
            .iter()
            .filter(move |s| fix || s.kind != StepKind::Fix)
    }

    /// The environment whose confirmation covers this resource: the strictest tier of
    /// those that name it (the first of them at a tie).
    fn approver(&self) -> &Environment {
        let mut envs = self.envs.iter();
        let first = envs.next().expect("a resource is named by an environment");
        envs.fold(
            first,
            |best, env| if env.tier > best.tier { env } else { best },
        )
    }

    fn names(&self) -> Vec<String> {
        self.envs.iter().map(|e| e.name.clone()).collect()
    }
}

#[derive(Serialize)]
struct Report {
    dry_run: bool,
    fix: bool,
    environments: Vec<EnvReport>,
    resources: Vec<ResourceReport>,
    /// Changes made by this run.
    changed: usize,
    /// Fixes found that this run did not make (no `--fix`).
    needs_fix: usize,
}

#[derive(Clone, Serialize)]
struct EnvReport {
    environment: String,
    backend: BackendKind,
    /// The resources its backend needs, by name.
    resources: Vec<String>,
}

#[derive(Serialize)]
struct ResourceReport {
    resource: String,
    environments: Vec<String>,
    exists: bool,
    found: Vec<String>,
    notes: Vec<String>,
    steps: Vec<StepReport>,
}

#[derive(Serialize)]
struct StepReport {
    #[serde(flatten)]
    step: bootstrap::Step,
    /// `made`, `planned` (dry run), or `needs-fix` (not made without --fix).
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
        sku: Some(settings.sku.clone()),
    };

    // Every name is checked before anything is asked of a cloud.
    let mut listed: Vec<(Resource, Vec<&Environment>)> = Vec::new();
    let mut environments = Vec::new();
    for (env, backend) in &resolved {
        let resources = bootstrap::resources(backend)
            .map_err(|e| e.context(format!("environment `{}`", env.name)))?;
        environments.push(EnvReport {
            environment: env.name.clone(),
            backend: backend.kind.clone(),
            resources: resources.iter().map(|r| r.name.clone()).collect(),
        });
        for resource in resources {
            match listed.iter_mut().find(|(r, _)| r.key == resource.key) {
                Some((_, envs)) => envs.push(*env),
                None => listed.push((resource, vec![*env])),
            }
        }
    }

    // Reads only: what exists, what is missing, what is set otherwise.
    let mut missing: HashSet<String> = HashSet::new();
    let mut planned: Vec<Planned> = Vec::new();
    for (resource, envs) in listed {
        let parent_missing = resource
            .parent
            .as_ref()
            .is_some_and(|p| missing.contains(p));
        ctx.printer.progress(&format!("checking {}", resource.name));
        let survey = resource
            .survey(parent_missing, &options)
            .await
            .map_err(|e| e.context(format!("checking {}", resource.name)))?;
        if !survey.exists {
            missing.insert(resource.key.clone());
        }
        planned.push(Planned {
            resource,
            envs,
            survey,
        });
    }

    let to_make: usize = planned
        .iter()
        .map(|p| p.to_make(settings.fix).count())
        .sum();
    let needs_fix: usize = planned
        .iter()
        .flat_map(|p| &p.survey.steps)
        .filter(|s| s.kind == StepKind::Fix && !settings.fix)
        .count();
    if !ctx.printer.is_json() {
        show_plan(ctx, &resolved, &planned, settings.fix);
    }
    // A fix left unmade is a problem of the backend, as `status` reports it.
    let finish = if needs_fix > 0 {
        Exit::Unhealthy
    } else {
        Exit::Success
    };
    let report = |made: bool| Report {
        dry_run: settings.dry_run,
        fix: settings.fix,
        environments: environments.clone(),
        resources: planned
            .iter()
            .map(|p| ResourceReport {
                resource: p.resource.name.clone(),
                environments: p.names(),
                exists: p.survey.exists,
                found: p.survey.found.clone(),
                notes: p.survey.notes.clone(),
                steps: p
                    .survey
                    .steps
                    .iter()
                    .map(|s| StepReport {
                        step: s.clone(),
                        outcome: if s.kind == StepKind::Fix && !settings.fix {
                            "needs-fix"
                        } else if made {
                            "made"
                        } else {
                            "planned"
                        },
                    })
                    .collect(),
            })
            .collect(),
        changed: if made { to_make } else { 0 },
        needs_fix,
    };
    let say_needs_fix = || {
        if needs_fix > 0 {
            ctx.printer.result(&format!(
                "{needs_fix} protection(s) set otherwise, marked `!` above: tfenv changes them only with --fix ({})",
                rerun(&settings, &resolved, " --fix")
            ));
        }
    };
    let emit = |made: bool| -> anyhow::Result<()> {
        if ctx.printer.is_json() {
            ctx.printer.json(&report(made))?;
        }
        Ok(())
    };

    if to_make == 0 || settings.dry_run {
        if !ctx.printer.is_json() {
            if to_make == 0 && needs_fix == 0 {
                ctx.printer.result("nothing to do");
            } else if settings.dry_run {
                ctx.printer.result("dry run: nothing was changed");
            }
            say_needs_fix();
        }
        emit(false)?;
        return Ok(finish);
    }

    // Confirmation by tier: each environment whose backend changes, decided by flags
    // for all of them before anything is made.
    let mut approvers: Vec<&Environment> = Vec::new();
    for p in planned
        .iter()
        .filter(|p| p.to_make(settings.fix).next().is_some())
    {
        let env = p.approver();
        if !approvers.iter().any(|a| a.name == env.name) {
            approvers.push(env);
        }
    }
    let gates: Vec<Gate> = approvers
        .iter()
        .map(|env| {
            let approval = Approval::new(&project, env, "create or change the state backend of", 0)
                .with_review(if ctx.printer.is_json() {
                    format!("check `tfenv bootstrap {} --dry-run`", env.name)
                } else {
                    "check the list above".to_string()
                });
            Gate::new(approval, settings.flags.clone())
        })
        .collect();
    for gate in &gates {
        gate.check_flags()?;
    }
    for gate in gates {
        gate.ask(&ctx.interrupts, ctx.prompter.clone()).await?;
    }

    // Make each change in order; a stop request is acted on between two changes.
    let seen = ctx.interrupts.handle_next();
    let mut made: Vec<String> = Vec::new();
    let all: Vec<(&Planned, &bootstrap::Step)> = planned
        .iter()
        .flat_map(|p| p.to_make(settings.fix).map(move |s| (p, s)))
        .collect();
    for (index, (p, step)) in all.iter().enumerate() {
        let doing = format!("{}: {}", p.resource.name, step.change);
        let stopped = ctx.interrupts.received_after(seen);
        let result = if stopped {
            Err(TfenvError::Interrupted.into())
        } else {
            ctx.printer.progress(&doing);
            p.resource.apply(step, &options).await
        };
        if let Err(err) = result {
            let not_done: Vec<String> = all[index + 1..]
                .iter()
                .map(|(p, s)| format!("{}: {}", p.resource.name, s.change))
                .collect();
            let said = stopped_half_way(&made, &doing, &not_done, stopped, &settings, &resolved);
            if stopped {
                // An interrupted run ends with exit 130 and one word; the rest is said here.
                ctx.printer.warn(&said);
                return Err(err);
            }
            return Err(err.context(said));
        }
        made.push(doing);
    }
    if ctx.interrupts.received_after(seen) {
        ctx.printer.warn(&format!(
            "interrupted after the last change: made {}; the check afterwards was skipped (`tfenv bootstrap --dry-run` shows what is in place)",
            made.join("; ")
        ));
        return Err(TfenvError::Interrupted.into());
    }

    // Check: a second survey finds nothing left to make.
    let mut left = Vec::new();
    let mut missing = HashSet::new();
    for p in &planned {
        let parent_missing = p
            .resource
            .parent
            .as_ref()
            .is_some_and(|k| missing.contains(k));
        let survey = p
            .resource
            .survey(parent_missing, &options)
            .await
            .map_err(|e| e.context(format!("checking {} after the changes", p.resource.name)))?;
        if !survey.exists {
            missing.insert(p.resource.key.clone());
        }
        left.extend(
            survey
                .steps
                .iter()
                .filter(|s| settings.fix || s.kind != StepKind::Fix)
                .map(|s| format!("{}: {}", p.resource.name, s.change)),
        );
    }
    if !left.is_empty() {
        return Err(TfenvError::config(
            format!(
                "every change was accepted, but a check afterwards finds these still to do: {}",
                left.join("; ")
            ),
            Some("the cloud may apply some settings with a delay: run `tfenv bootstrap` again in a minute; if it stays, set them by hand (docs/bootstrap.md lists each setting)".to_string()),
        )
        .into());
    }
    if !ctx.printer.is_json() {
        ctx.printer.result(&format!(
            "made {} change(s); checked: {}",
            made.len(),
            planned
                .iter()
                .map(|p| p.resource.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let names: Vec<&str> = resolved
            .iter()
            .filter(|(_, b)| b.kind != BackendKind::Local)
            .map(|(env, _)| env.name.as_str())
            .collect();
        if let [one] = names.as_slice() {
            ctx.printer.result(&format!("next: tfenv deploy {one}"));
        }
        say_needs_fix();
    }
    emit(true)?;
    Ok(finish)
}

/// This run's command again, with `extra` flags: `` `tfenv bootstrap dev --fix` ``.
fn rerun(
    settings: &BootstrapSettings,
    resolved: &[(&Environment, crate::backend::Backend)],
    extra: &str,
) -> String {
    match (settings.names.as_slice(), resolved) {
        ([_], [(env, _)]) => format!("`tfenv bootstrap {}{extra}`", env.name),
        _ => format!("`tfenv bootstrap --all{extra}`"),
    }
}

/// What a stop half way says: what was made, where it stopped, what was not made, and
/// how to complete it. The failure itself keeps its kind (and exit code) and hint.
fn stopped_half_way(
    made: &[String],
    doing: &str,
    not_done: &[String],
    interrupted: bool,
    settings: &BootstrapSettings,
    resolved: &[(&Environment, crate::backend::Backend)],
) -> String {
    let list = |items: &[String]| {
        if items.is_empty() {
            "nothing".to_string()
        } else {
            items.join("; ")
        }
    };
    let again = rerun(settings, resolved, "");
    let what = if interrupted {
        format!("bootstrap interrupted before `{doing}`")
    } else {
        format!("bootstrap stopped at `{doing}`")
    };
    let not_made = list(&[&[doing.to_string()][..], not_done].concat());
    if made.is_empty() {
        // Nothing to complete: what to do is the failure's own hint (another bucket
        // name, a permission, the network).
        return format!("{what}, before anything was made. Not made: {not_made}");
    }
    format!(
        "{what}. Made: {}. Not made: {not_made}. Run {again} again to complete it; what was made stays",
        list(made),
    )
}

/// The plan, per resource: where it is used, what exists, and each change.
fn show_plan(
    ctx: &Context,
    resolved: &[(&Environment, crate::backend::Backend)],
    planned: &[Planned],
    fix: bool,
) {
    for (env, backend) in resolved {
        if backend.kind == BackendKind::Local {
            ctx.printer.result(&format!(
                "{}: local backend: nothing to create (the state is a file in the repository)",
                env.name
            ));
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
        ctx.printer.result(&format!(
            "{} ({}): {state}",
            p.resource.name,
            p.names().join(", ")
        ));
        for note in &p.survey.notes {
            ctx.printer.result(&format!("  - {note}"));
        }
        for step in &p.survey.steps {
            let found = step
                .found
                .as_ref()
                .map(|f| format!(" (now: {f})"))
                .unwrap_or_default();
            let line = match (step.kind, fix) {
                (StepKind::Fix, false) => format!("  ! {}{found}: only with --fix", step.change),
                (StepKind::Fix, true) => format!("  ~ {}{found}", step.change),
                _ => format!("  + {}", step.change),
            };
            ctx.printer.result(&line);
        }
    }
}
