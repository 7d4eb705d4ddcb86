//! `tfenv envs`: the environments of the project, where each one's state and files are.

use serde::Serialize;

use crate::Context;
use crate::backend::{BackendKind, Backends};
use crate::exit::Exit;
use crate::output;
use crate::project::{Layout, Tier, auto_var_files};

#[derive(Serialize)]
struct EnvsReport {
    project: ProjectInfo,
    environments: Vec<EnvInfo>,
    /// Files discovery saw that no environment uses, or that one lacks.
    notes: Vec<NoteInfo>,
}

#[derive(Serialize)]
struct NoteInfo {
    code: &'static str,
    file: String,
    message: String,
}

#[derive(Serialize)]
struct ProjectInfo {
    root: String,
    /// The tfenv.toml in use, relative to `root`; `None` for a discovered layout.
    config: Option<String>,
    /// `config-file` or `discovered-layout`: how tfenv found this project.
    source: &'static str,
    state_dir: String,
}

#[derive(Serialize)]
struct EnvInfo {
    name: String,
    tier: Tier,
    aliases: Vec<String>,
    layout: Layout,
    root: String,
    /// `null` when the environment's configuration is broken (`problem`).
    backend: Option<BackendInfo>,
    /// Passed with `-var-file`, in this order.
    var_files: Vec<String>,
    /// Loaded by terraform itself from the root (`terraform.tfvars`, `*.auto.tfvars`),
    /// before `var_files`; never passed again.
    auto_var_files: Vec<String>,
    workspace: Option<String>,
    /// The policy command every plan must pass (`{plan_json}` is the plan's JSON file);
    /// `null` for none.
    policy: Option<Vec<String>>,
    /// `promote_from`: the environment whose successful deploy of a commit this one's
    /// deploy of it needs; `null` for none.
    promote_from: Option<String>,
    /// Why the environment cannot be used (a missing or broken var or backend file);
    /// the others are listed as usual.
    problem: Option<String>,
}

#[derive(Serialize)]
pub(super) struct BackendInfo {
    #[serde(rename = "type")]
    pub kind: BackendKind,
    /// No backend block: terraform's default local state.
    pub implicit: bool,
    pub location: String,
    pub config: Option<String>,
}

pub fn envs(ctx: &Context) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let backends = Backends::default();
    let mut environments = Vec::new();
    // One environment's broken file is that environment's problem: the rest are listed.
    let mut failed = Vec::new();
    let resolved: Vec<_> = project
        .environments
        .iter()
        .map(|env| (env, backends.resolve(env, &project)))
        .collect();
    // The same check `status` (shared-state) and init/plan/deploy (refused) make.
    let shared = crate::backend::shared_states(
        resolved
            .iter()
            .map(|(env, backend)| (*env, backend.as_ref().ok())),
    );
    for (env, resolved) in resolved {
        let others: Option<Vec<String>> = shared
            .iter()
            .find(|group| group.contains(&env.name))
            .map(|group| group.iter().filter(|n| **n != env.name).cloned().collect());
        let (backend, problem) = match resolved {
            Ok(backend) => match others {
                Some(others) => {
                    let problem = format!(
                        "environment `{}` {}",
                        env.name,
                        crate::backend::shared_state_message(&others)
                    );
                    failed.push((
                        env.name.clone(),
                        crate::error::TfenvError::config(problem.clone(), None).into(),
                    ));
                    (Some(backend), Some(problem))
                }
                None => (Some(backend), None),
            },
            Err(err) => {
                let problem = format!("{err:#}");
                failed.push((env.name.clone(), err));
                (None, Some(problem))
            }
        };
        environments.push(EnvInfo {
            name: env.name.clone(),
            tier: env.tier,
            aliases: env.aliases.clone(),
            layout: env.layout,
            root: project.show(&env.root),
            backend: backend.map(|backend| BackendInfo {
                kind: backend.kind.clone(),
                implicit: backend.implicit,
                location: backend.location(env, &project),
                config: env.backend_config.as_deref().map(|p| project.show(p)),
            }),
            var_files: env.var_files.iter().map(|p| project.show(p)).collect(),
            auto_var_files: auto_var_files(&env.root)
                .iter()
                .map(|p| project.show(p))
                .collect(),
            workspace: env.workspace.clone(),
            policy: env.policy.clone(),
            promote_from: env.promote_from.clone(),
            problem,
        });
    }
    let report = EnvsReport {
        project: ProjectInfo {
            root: project.root.display().to_string(),
            config: project.config_file.as_deref().map(|p| project.show(p)),
            source: if project.config_file.is_some() {
                "config-file"
            } else {
                "discovered-layout"
            },
            state_dir: project.show(&project.state_dir),
        },
        environments,
        notes: project
            .notes
            .iter()
            .map(|note| NoteInfo {
                code: note.code,
                file: project.show(&note.file),
                message: note.message.clone(),
            })
            .collect(),
    };
    let selected = report.environments.len();
    let outcome = || -> anyhow::Result<Exit> {
        if failed.is_empty() {
            return Ok(Exit::Success);
        }
        Err(super::environments_failed("cannot use", selected, failed))
    };
    if ctx.printer.is_json() {
        ctx.printer.json(&report)?;
        return outcome();
    }
    let mut rows = vec![
        ["ENV", "TIER", "LAYOUT", "BACKEND", "STATE", "VAR FILES"]
            .map(String::from)
            .to_vec(),
    ];
    // The column only when a policy is configured: most projects have none.
    let policies = report.environments.iter().any(|env| env.policy.is_some());
    if policies {
        rows[0].push("POLICY".to_string());
    }
    for env in &report.environments {
        let mut name = env.name.clone();
        if !env.aliases.is_empty() {
            name.push_str(&format!(" ({})", env.aliases.join(", ")));
        }
        let (mut kind, location) = match &env.backend {
            Some(backend) => (backend.kind.to_string(), backend.location.clone()),
            None => ("-".to_string(), "(config problem, below)".to_string()),
        };
        if let Some(ws) = &env.workspace {
            kind.push_str(&format!(" [{ws}]"));
        }
        let auto = env.auto_var_files.iter().map(|f| format!("{f} (auto)"));
        let vars: Vec<String> = auto.chain(env.var_files.iter().cloned()).collect();
        let vars = if vars.is_empty() {
            "-".to_string()
        } else {
            vars.join(", ")
        };
        rows.push(vec![
            name,
            env.tier.to_string(),
            env.layout.as_str().to_string(),
            kind,
            location,
            vars,
        ]);
        if policies {
            let policy = env.policy.as_ref().map_or("-".to_string(), |c| c.join(" "));
            if let Some(row) = rows.last_mut() {
                row.push(policy);
            }
        }
    }
    // Which project this is comes first: a tfenv.toml further up is not used when a
    // nearer folder has a layout of its own.
    ctx.printer
        .result(&format!("Project {}\n", project.describe()));
    ctx.printer.result(output::table(&rows).trim_end());
    if !report.notes.is_empty() {
        let notes: Vec<String> = report
            .notes
            .iter()
            .map(|note| format!("note: {}", note.message))
            .collect();
        ctx.printer.result(&format!("\n{}", notes.join("\n")));
    }
    outcome()
}
