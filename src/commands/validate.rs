//! `tfenv validate`: what CI checks before any plan, with no credentials and no backend.
//! Per distinct root: `fmt -check`, `init -backend=false` into its own data dir, and
//! `validate -json`, roots side by side. Per environment: its var files parse and set
//! only variables the root declares; required variables no var file sets are warnings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::StreamExt;
use serde::Serialize;

use crate::Context;
use crate::error::{ErrorReport, TfenvError};
use crate::exit::Exit;
use crate::output;
use crate::project::{Environment, Project, Tier, hcl};
use crate::settings::ValidateSettings;
use crate::terraform::Terraform;
use crate::terraform::validate::{Diagnostic, FmtCheck};

/// The one JSON document `validate` prints.
#[derive(Serialize)]
struct ValidateReport {
    command: &'static str,
    /// No errors (warnings allowed): exit 0.
    valid: bool,
    errors: usize,
    warnings: usize,
    roots: Vec<RootReport>,
    environments: Vec<EnvReport>,
    seconds: f64,
}

/// One terraform root module, checked once for all the environments that use it.
#[derive(Serialize)]
struct RootReport {
    /// Relative to the project root (`.` for the project root itself).
    root: String,
    environments: Vec<String>,
    valid: bool,
    fmt: FmtReport,
    init: StepReport,
    /// `validate -json`'s diagnostics, files relative to the project root.
    diagnostics: Vec<Diagnostic>,
    /// terraform itself failed (crashed, printed no JSON): the root could not be checked.
    error: Option<ErrorReport>,
    #[serde(skip)]
    errors: usize,
    #[serde(skip)]
    warnings: usize,
}

#[derive(Serialize)]
struct FmtReport {
    /// `formatted`, `unformatted`, `unparsable` (a file does not parse: see the
    /// diagnostics) or `not-run`.
    status: &'static str,
    /// The files that need `terraform fmt`, relative to the project root.
    files: Vec<String>,
    /// terraform's message when it could not parse a file.
    message: Option<String>,
}

#[derive(Serialize)]
struct StepReport {
    /// `ok`, `failed` or `not-run`.
    status: &'static str,
    message: Option<String>,
}

#[derive(Serialize)]
struct EnvReport {
    environment: String,
    tier: Tier,
    root: String,
    /// No error in its var files, and its root is valid.
    valid: bool,
    /// Every var file terraform loads for it, in its order: the root's
    /// `terraform.tfvars` and `*.auto.tfvars`, then the environment's own.
    var_files: Vec<String>,
    /// Whether its variables were checked against the root's `variable` blocks (not
    /// when the root's `.tf` files do not parse: its diagnostics say why).
    variables_checked: bool,
    problems: Vec<Problem>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Severity {
    Error,
    Warning,
}

/// Something wrong with an environment's configuration.
#[derive(Serialize)]
struct Problem {
    severity: Severity,
    /// `config`, `var-file-syntax`, `undeclared-variable` or `required-variable-unset`.
    code: &'static str,
    message: String,
    hint: Option<String>,
    file: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
    variable: Option<String>,
    did_you_mean: Option<String>,
}

pub async fn validate(ctx: &Context, settings: ValidateSettings) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let project = ctx.project()?;
    let selected = project.select(&settings.envs)?;
    let tf = ctx.terraform(&project).await?;

    // Distinct roots, in the order their first environment comes.
    let mut roots: Vec<(PathBuf, Vec<&Environment>)> = Vec::new();
    for env in &selected {
        match roots.iter_mut().find(|(root, _)| root == &env.root) {
            Some((_, envs)) => envs.push(env),
            None => roots.push((env.root.clone(), vec![env])),
        }
    }
    ctx.printer.progress(&format!(
        "validating {} root(s) of {} environment(s), {} at a time",
        roots.len(),
        selected.len(),
        settings.jobs.min(roots.len())
    ));

    let mut checked =
        futures_util::stream::iter(roots.iter().enumerate().map(|(at, (root, envs))| {
            let (tf, project) = (&tf, &project);
            async move { (at, check_root(ctx, tf, project, root, envs).await) }
        }))
        .buffer_unordered(settings.jobs);
    let mut root_reports: Vec<Option<RootReport>> = roots.iter().map(|_| None).collect();
    let mut interrupted = false;
    while let Some((at, result)) = checked.next().await {
        match result {
            Ok(report) => root_reports[at] = Some(report),
            Err(err) if crate::error::exit_for(&err) == Exit::Interrupted => interrupted = true,
            Err(err) => return Err(err),
        }
    }
    drop(checked);
    if interrupted || ctx.interrupts.received() {
        return Err(TfenvError::Interrupted.into());
    }
    let roots: Vec<RootReport> = root_reports.into_iter().flatten().collect();

    let mut declared: BTreeMap<PathBuf, anyhow::Result<Vec<hcl::Variable>>> = BTreeMap::new();
    let environments: Vec<EnvReport> = selected
        .iter()
        .map(|env| {
            let variables = declared
                .entry(env.root.clone())
                .or_insert_with(|| hcl::read_variables(&env.root, &project.root));
            let mut report = check_environment(&project, env, variables.as_ref().ok());
            // An environment is only as valid as its root.
            report.valid &= roots.iter().any(|r| r.root == report.root && r.valid);
            report
        })
        .collect();

    let count = |severity: Severity| -> usize {
        environments
            .iter()
            .flat_map(|e| &e.problems)
            .filter(|p| p.severity == severity)
            .count()
    };
    let errors = roots.iter().map(|r| r.errors).sum::<usize>() + count(Severity::Error);
    let warnings = roots.iter().map(|r| r.warnings).sum::<usize>() + count(Severity::Warning);
    let report = ValidateReport {
        command: "validate",
        valid: errors == 0,
        errors,
        warnings,
        roots,
        environments,
        seconds: output::seconds(started.elapsed()),
    };
    if ctx.printer.is_json() {
        ctx.printer.json(&report)?;
    } else {
        print_human(ctx, &report);
    }
    Ok(if report.valid {
        Exit::Success
    } else {
        Exit::Failure
    })
}

/// fmt, init and validate of one root. `Err` only when interrupted; a terraform that
/// fails in any other way is the root's `error`.
async fn check_root(
    ctx: &Context,
    tf: &Terraform,
    project: &Project,
    root: &Path,
    envs: &[&Environment],
) -> anyhow::Result<RootReport> {
    let shown_root = show_root(project, root);
    let in_project = |file: &str| project.show(&root.join(file));
    let mut report = RootReport {
        root: shown_root.clone(),
        environments: envs.iter().map(|e| e.name.clone()).collect(),
        valid: false,
        fmt: FmtReport {
            status: "not-run",
            files: Vec::new(),
            message: None,
        },
        init: StepReport {
            status: "not-run",
            message: None,
        },
        diagnostics: Vec::new(),
        error: None,
        errors: 0,
        warnings: 0,
    };
    let fail = |report: &mut RootReport, err: anyhow::Error| -> anyhow::Result<()> {
        if crate::error::exit_for(&err) == Exit::Interrupted {
            return Err(err);
        }
        report.error = Some(ErrorReport::of(&err));
        report.errors += 1;
        Ok(())
    };

    if !root.is_dir() {
        let err = TfenvError::config(
            format!("the root module `{shown_root}` is not a folder"),
            Some(format!(
                "create it, or fix `root` for {} in tfenv.toml",
                report.environments.join(", ")
            )),
        );
        fail(&mut report, err.into())?;
        return Ok(report);
    }
    match tf.fmt_check(root).await {
        Ok(FmtCheck::Formatted) => report.fmt.status = "formatted",
        Ok(FmtCheck::Unformatted(files)) => {
            report.fmt.status = "unformatted";
            report.errors += files.len();
            report.fmt.files = files.iter().map(|f| in_project(f)).collect();
        }
        Ok(FmtCheck::Unparsable(message)) => {
            report.fmt.status = "unparsable";
            report.fmt.message = Some(message);
        }
        Err(err) => {
            fail(&mut report, err)?;
            return Ok(report);
        }
    }

    let init = {
        // Inits share the plugin cache: one at a time, as environments' inits are.
        let _one = ctx.one_init_at_a_time().await;
        ctx.printer
            .progress(&format!("{shown_root}: terraform init -backend=false"));
        tf.init_for_validation(root).await
    };
    match init {
        Ok(()) => report.init.status = "ok",
        Err(err) if crate::error::exit_for(&err) == Exit::Interrupted => return Err(err),
        Err(err) => {
            report.init.status = "failed";
            report.init.message = Some(format!("{err:#}"));
        }
    }

    match tf.validate_json(root).await {
        Ok(validation) => {
            for mut diagnostic in validation.diagnostics {
                diagnostic.file = diagnostic.file.as_deref().map(in_project);
                match diagnostic.severity.as_str() {
                    "warning" => report.warnings += 1,
                    _ => report.errors += 1,
                }
                report.diagnostics.push(diagnostic);
            }
            if !validation.valid && report.errors == 0 {
                // Invalid, yet no error said why: say that much.
                report.errors += 1;
            }
        }
        Err(err) => fail(&mut report, err)?,
    }
    let diagnosed = report.diagnostics.iter().any(|d| d.severity != "warning");
    // A failed init or an unparsable file that no diagnostic explains is an error of its own.
    if report.init.status == "failed" && !diagnosed && report.error.is_none() {
        report.errors += 1;
    }
    if report.fmt.status == "unparsable" && !diagnosed && report.error.is_none() {
        report.errors += 1;
    }
    report.valid = report.errors == 0;
    Ok(report)
}

fn show_root(project: &Project, root: &Path) -> String {
    match project.show(root) {
        shown if shown.is_empty() => ".".to_string(),
        shown => shown,
    }
}

/// The var files terraform loads for `env`, in its order: the root's own
/// (`terraform.tfvars`, `terraform.tfvars.json`, `*.auto.tfvars[.json]` sorted), then the
/// environment's, each once.
fn loaded_var_files(env: &Environment) -> Vec<PathBuf> {
    let mut files = crate::project::auto_var_files(&env.root);
    for file in &env.var_files {
        if !files.contains(file) {
            files.push(file.clone());
        }
    }
    files
}

fn check_environment(
    project: &Project,
    env: &Environment,
    declared: Option<&Vec<hcl::Variable>>,
) -> EnvReport {
    let root = show_root(project, &env.root);
    let files = loaded_var_files(env);
    let mut problems = Vec::new();
    let problem = |severity, code, message: String, hint: Option<String>| Problem {
        severity,
        code,
        message,
        hint,
        file: None,
        line: None,
        column: None,
        variable: None,
        did_you_mean: None,
    };
    let config_problem = env.check_config().err();
    if let Some(err) = &config_problem {
        problems.push(problem(
            Severity::Error,
            "config",
            err.to_string(),
            err.hint().map(str::to_string),
        ));
    }
    let mut set: Vec<String> = Vec::new();
    // A var file that cannot be read may set any variable: then no required variable is
    // said to be unset.
    let mut unreadable = false;
    for file in &files {
        let shown = project.show(file);
        if let Some(kind) = crate::project::FileKind::of(file).problem() {
            unreadable = true;
            // The configuration problem names the first such file; each is said once.
            let named = config_problem
                .as_ref()
                .is_some_and(|err| err.to_string().contains(&format!("`{shown}`")));
            if !named {
                problems.push(Problem {
                    file: Some(shown.clone()),
                    ..problem(
                        Severity::Error,
                        "config",
                        format!("environment `{}`: `{shown}` {kind}", env.name),
                        Some(
                            "make it a regular file (or a symlink to one), or fix the path in tfenv.toml"
                                .to_string(),
                        ),
                    )
                });
            }
            continue;
        }
        let assignments = match hcl::read_assignments(file, &project.root) {
            Ok(assignments) => assignments,
            Err(err) => {
                unreadable = true;
                let mut p = problem(
                    Severity::Error,
                    "var-file-syntax",
                    format!("{err:#}"),
                    crate::error::hint_for(&err).map(str::to_string),
                );
                p.file = Some(shown);
                (p.line, p.column) = hcl::syntax_error_location(file).unzip();
                problems.push(p);
                continue;
            }
        };
        for assignment in assignments {
            if let Some(refused) = &assignment.refused {
                let at = match assignment.line {
                    Some(line) => format!("`{shown}` line {line}"),
                    None => format!("`{shown}`"),
                };
                problems.push(Problem {
                    file: Some(shown.clone()),
                    line: assignment.line,
                    column: assignment.column,
                    variable: Some(assignment.name.clone()),
                    ..problem(
                        Severity::Error,
                        "var-file-not-literal",
                        format!(
                            "`{}` in {at}: var files take literal values only; terraform refuses `{refused}`",
                            assignment.name
                        ),
                        Some(format!(
                            "write the value itself, or move the expression into a `locals` block of `{root}`"
                        )),
                    )
                });
            }
            if let Some(declared) = declared
                && !declared.iter().any(|v| v.name == assignment.name)
            {
                let closest = closest(&assignment.name, declared);
                let at = match assignment.line {
                    Some(line) => format!("`{shown}` line {line}"),
                    None => format!("`{shown}`"),
                };
                let message = format!(
                    "`{}` is set in {at} but the root module `{root}` declares no such variable{}",
                    assignment.name,
                    closest
                        .map(|c| format!("; did you mean `{c}`?"))
                        .unwrap_or_default()
                );
                let hint = match closest {
                    Some(c) => format!(
                        "rename it to `{c}`, or declare it in `{root}` with `variable \"{}\" {{}}`",
                        assignment.name
                    ),
                    None => format!(
                        "remove it, or declare it in `{root}` with `variable \"{}\" {{}}`",
                        assignment.name
                    ),
                };
                problems.push(Problem {
                    file: Some(shown.clone()),
                    line: assignment.line,
                    column: assignment.column,
                    variable: Some(assignment.name.clone()),
                    did_you_mean: closest.map(str::to_string),
                    ..problem(Severity::Error, "undeclared-variable", message, Some(hint))
                });
            }
            set.push(assignment.name);
        }
    }
    let declared_unless_unknown = declared.filter(|_| !unreadable);
    for variable in declared_unless_unknown
        .into_iter()
        .flatten()
        .filter(|v| v.required)
    {
        let env_var = format!("TF_VAR_{}", variable.name);
        if set.contains(&variable.name) || std::env::var_os(&env_var).is_some() {
            continue;
        }
        problems.push(Problem {
            variable: Some(variable.name.clone()),
            ..problem(
                Severity::Warning,
                "required-variable-unset",
                format!(
                    "required variable `{}` (no default in `{root}`) is set by no var file of `{}`; terraform will look for {env_var} in the environment or -var '{}=…' on its command line",
                    variable.name, env.name, variable.name
                ),
                Some(format!(
                    "set it in a var file of `{}`, give it a default, or export {env_var} where terraform runs",
                    env.name
                )),
            )
        });
    }
    EnvReport {
        environment: env.name.clone(),
        tier: env.tier,
        root,
        valid: !problems.iter().any(|p| p.severity == Severity::Error),
        var_files: files.iter().map(|f| project.show(f)).collect(),
        variables_checked: declared.is_some(),
        problems,
    }
}

/// The declared name closest to a misspelled one, when it is close enough to be the one
/// meant (as for environment names).
fn closest<'a>(name: &str, declared: &'a [hcl::Variable]) -> Option<&'a str> {
    declared
        .iter()
        .map(|v| (strsim::levenshtein(name, &v.name), v.name.as_str()))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .min()
        .map(|(_, candidate)| candidate)
}

fn print_human(ctx: &Context, report: &ValidateReport) {
    let p = &ctx.printer;
    let ok = p.paint(&console::Style::new().green(), "✓");
    let bad = p.paint(&console::Style::new().red().bold(), "✗");
    let warn = p.paint(&console::Style::new().yellow(), "!");
    let mut to_fix: Vec<String> = Vec::new();
    let mut to_note: Vec<String> = Vec::new();
    for root in &report.roots {
        let mut said = Vec::new();
        match root.fmt.status {
            "formatted" => said.push("fmt: ok".to_string()),
            "unformatted" => {
                said.push(format!("fmt: {} file(s) to format", root.fmt.files.len()));
                to_fix.push(format!(
                    "{}: not formatted; run `terraform fmt -recursive` in `{}`",
                    root.fmt
                        .files
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    root.root
                ));
            }
            "unparsable" => said.push("fmt: not checked (a file does not parse)".to_string()),
            _ => {}
        }
        let (errors, warnings) = root.diagnostics.iter().fold((0, 0), |(e, w), d| {
            if d.severity == "warning" {
                (e, w + 1)
            } else {
                (e + 1, w)
            }
        });
        if root.init.status == "failed" {
            said.push("init -backend=false failed".to_string());
        }
        if root.error.is_none() {
            said.push(match (errors, warnings) {
                (0, 0) => "validate: ok".to_string(),
                (e, 0) => format!("validate: {e} error(s)"),
                (0, w) => format!("validate: ok, {w} warning(s)"),
                (e, w) => format!("validate: {e} error(s), {w} warning(s)"),
            });
        }
        for d in &root.diagnostics {
            let at = match (&d.file, d.line, d.column) {
                (Some(file), Some(line), Some(column)) => format!("`{file}:{line}:{column}`: "),
                (Some(file), _, _) => format!("`{file}`: "),
                _ => format!("root `{}`: ", root.root),
            };
            let detail = d.detail.split_whitespace().collect::<Vec<_>>().join(" ");
            let line = format!(
                "{at}{}{}",
                d.summary,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            );
            if d.severity == "warning" {
                to_note.push(line)
            } else {
                to_fix.push(line)
            }
        }
        let diagnosed = errors > 0;
        if root.init.status == "failed" {
            // Its output repeats the diagnostics it failed on; when there are none it is
            // all there is to go by.
            if !diagnosed && root.error.is_none() {
                to_fix.push(root.init.message.clone().unwrap_or_default());
            }
        }
        if root.fmt.status == "unparsable" && !diagnosed && root.error.is_none() {
            to_fix.push(format!(
                "root `{}`: terraform fmt cannot parse it:\n{}",
                root.root,
                root.fmt.message.clone().unwrap_or_default()
            ));
        }
        if let Some(error) = &root.error {
            said.push("not checked".to_string());
            to_fix.push(match &error.hint {
                Some(hint) => format!("{}\n    {hint}", error.message),
                None => error.message.clone(),
            });
        }
        p.result(&format!(
            "{} root `{}` ({}): {}",
            if root.valid { &ok } else { &bad },
            root.root,
            root.environments.join(", "),
            said.join(", ")
        ));
    }
    for env in &report.environments {
        let errors = env
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        let warnings = env.problems.len() - errors;
        let mark = match (env.valid, warnings) {
            (false, _) => &bad,
            (true, 0) => &ok,
            (true, _) => &warn,
        };
        let mut said = vec![format!("{} var file(s)", env.var_files.len())];
        if errors == 0 && !env.valid {
            said.push(format!("its root `{}` is not valid", env.root));
        }
        if !env.variables_checked {
            said.push("variables not checked (the root's .tf files cannot be read)".to_string());
        }
        if errors > 0 {
            said.push(format!("{errors} error(s)"));
        }
        if warnings > 0 {
            said.push(format!("{warnings} warning(s)"));
        }
        p.result(&format!(
            "{mark} environment `{}`: {}",
            env.environment,
            said.join(", ")
        ));
        for problem in &env.problems {
            // Its message names the file and line.
            let mut line = format!("{}: {}", env.environment, problem.message);
            if let Some(hint) = &problem.hint {
                line.push_str(&format!("\n    {hint}"));
            }
            match problem.severity {
                Severity::Error => to_fix.push(line),
                Severity::Warning => to_note.push(line),
            }
        }
    }
    if !to_fix.is_empty() {
        p.result(&format!(
            "\n{}",
            p.paint(&console::Style::new().bold(), "to fix:")
        ));
        for line in &to_fix {
            p.result(&format!("  {line}"));
        }
    }
    if !to_note.is_empty() {
        p.result(&format!(
            "\n{}",
            p.paint(&console::Style::new().bold(), "warnings:")
        ));
        for line in &to_note {
            p.result(&format!("  {line}"));
        }
    }
    p.result(&format!(
        "\n{}",
        match (report.errors, report.warnings) {
            (0, 0) => "valid".to_string(),
            (0, w) => format!("valid, {w} warning(s)"),
            (e, w) => format!("{e} error(s), {w} warning(s)"),
        }
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(names: &[&str]) -> Vec<hcl::Variable> {
        names
            .iter()
            .map(|n| hcl::Variable {
                name: n.to_string(),
                required: false,
            })
            .collect()
    }

    #[test]
    fn a_misspelled_variable_is_matched_to_the_closest_declared_name() {
        let declared = vars(&["instance_count", "instance_type", "region"]);
        assert_eq!(closest("instance_cout", &declared), Some("instance_count"));
        assert_eq!(closest("regoin", &declared), Some("region"));
        assert_eq!(closest("completely_different", &declared), None);
    }
}
