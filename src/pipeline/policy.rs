//! The policy gate (DESIGN.md §10): the environment's policy command judges every plan
//! before anything is backed up, confirmed or applied, with `{plan_json}` standing for
//! the plan's JSON file. A non-zero exit refuses the run (exit 5) with the command's
//! output; a command that cannot be started is a configuration error (exit 1): no
//! policy decided anything, and CI must not read it as a verdict on the plan.

use std::ffi::OsString;
use std::path::Path;

use super::Run;
use crate::artifacts::plan_json::TempPlanJson;
use crate::error::TfenvError;
use crate::process::{Finished, Invocation, RunOptions};

/// What a policy command's arguments name the plan's JSON file by.
pub const PLAN_JSON: &str = "{plan_json}";

/// Runs `command` on the plan's JSON; `Ok` when it exits 0. The JSON file exists only
/// while the command runs.
pub(super) async fn check(run: &Run<'_>, command: &[String], json: &[u8]) -> anyhow::Result<()> {
    let Some((program, args)) = command.split_first() else {
        return Ok(());
    };
    let env = run.env;
    let shown = command.join(" ");
    let plan_json = TempPlanJson::write(env, json)?;
    let mut inv = Invocation::new(
        run.project.program(program),
        &args
            .iter()
            .map(|arg| substitute(arg, plan_json.path()))
            .collect::<Vec<_>>(),
    );
    inv.cwd = run.project.root.clone();
    run.ctx
        .printer
        .progress(&format!("{}: checking the plan with `{shown}`", env.name));
    // A run's log (production, --log) keeps the policy's verdict beside terraform's output.
    let options = RunOptions {
        log: run.log.as_ref().map(|log| log.writer()).transpose()?,
        ..RunOptions::default()
    };
    let done = match run.ctx.runner.run(&inv, options).await {
        Ok(done) => done,
        // Asked to stop before it started: an interrupt, not a broken command.
        Err(err) if crate::error::exit_for(&err) == crate::exit::Exit::Interrupted => {
            return Err(err);
        }
        Err(err) => {
            return Err(TfenvError::config(
                format!("the policy command `{shown}` could not be started: {err:#}"),
                Some(format!(
                    "install `{program}` or fix the policy command in tfenv.toml ([policy] command, or `policy` of [environments.{}])",
                    env.name
                )),
            )
            .into());
        }
    };
    drop(plan_json);
    if done.interrupted && !done.success() {
        return Err(TfenvError::Interrupted.into());
    }
    let said = output(&done);
    if done.success() {
        for line in said.lines() {
            run.ctx
                .printer
                .progress(&format!("[{}] policy: {line}", env.name));
        }
        run.ctx
            .printer
            .progress(&format!("{}: the policy accepts the plan", env.name));
        return Ok(());
    }
    let mut message = format!(
        "refused by policy: `{shown}` {} for the plan of `{}`",
        done.describe(),
        env.name
    );
    match said.trim_end() {
        "" => message.push_str(" (it printed nothing)"),
        said => {
            message.push_str("; it said:");
            for line in said.lines() {
                message.push_str("\n    ");
                message.push_str(line);
            }
        }
    }
    Err(TfenvError::Refused {
        message,
        hint: Some(
            "nothing was backed up or applied; change the configuration until the policy accepts its plan, or the policy itself (tfenv.toml [policy])"
                .to_string(),
        ),
    }
    .into())
}

/// How many lines of a refusing policy's output a job summary shows.
const SUMMARY_LINES: usize = 10;

/// What a refusing policy printed, from the error `check` returned: its first lines for
/// the job summary, with how many more there were. `None` for any other error.
pub(super) fn refusal_output(err: &anyhow::Error) -> Option<String> {
    let Some(TfenvError::Refused { message, .. }) = err.downcast_ref::<TfenvError>() else {
        return None;
    };
    if !message.starts_with("refused by policy:") {
        return None;
    }
    let said: Vec<&str> = message
        .lines()
        .skip(1)
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .filter(|line| !line.trim().is_empty())
        .collect();
    let mut shown = said
        .iter()
        .take(SUMMARY_LINES)
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    if said.len() > SUMMARY_LINES {
        shown.push_str(&format!(
            "\n… ({} more lines; the job's log has all of it)",
            said.len() - SUMMARY_LINES
        ));
    }
    (!said.is_empty()).then_some(shown)
}

/// `arg` with every `{plan_json}` replaced by `path` (a path that is not UTF-8 stays intact).
fn substitute(arg: &str, path: &Path) -> OsString {
    let mut out = OsString::new();
    let mut parts = arg.split(PLAN_JSON);
    if let Some(first) = parts.next() {
        out.push(first);
    }
    for part in parts {
        out.push(path.as_os_str());
        out.push(part);
    }
    out
}

/// What the command printed: stdout, then stderr.
fn output(done: &Finished) -> String {
    let mut text = done.stdout_text();
    let err = done.stderr_text();
    if !text.is_empty() && !text.ends_with('\n') && !err.is_empty() {
        text.push('\n');
    }
    text.push_str(&err);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_json_is_substituted_wherever_it_appears() {
        let path = Path::new("/p/state/dev/plan.json");
        assert_eq!(substitute("{plan_json}", path), "/p/state/dev/plan.json");
        assert_eq!(
            substitute("--input={plan_json}", path),
            "--input=/p/state/dev/plan.json"
        );
        assert_eq!(substitute("test", path), "test");
    }
}
