//! Hooks (DESIGN.md §11): the user's own commands from `[hooks]` of tfenv.toml, run after
//! an event with the event's JSON document on stdin and `TFENV_EVENT`, `TFENV_ENVIRONMENT`
//! set, in the project root. What they print goes to tfenv's stderr (stdout stays the
//! command's result). A hook that cannot start, fails, or outlives `[hooks] timeout` (its
//! whole process group is killed) is one warning: it never changes tfenv's exit code.
//! A Ctrl-C while a hook runs kills it; the run keeps the outcome it had.
//! May use: context, project, process, output and below.

use serde::Serialize;

use crate::Context;
use crate::process::{Invocation, RunOptions};
use crate::project::{Hooks, Project};

/// What happened, and so which hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookEvent {
    /// A deploy, refresh or `deploy --plan` that applied or found no changes: `on_deploy`.
    Deploy,
    /// One of them that failed or was interrupted once it had started: `on_failure`.
    Failure,
    /// A drift check of one environment that completed or failed (not interrupted):
    /// `on_drift`.
    Drift,
}

impl HookEvent {
    /// `TFENV_EVENT`: `deploy`, `failure`, `drift`.
    pub fn name(self) -> &'static str {
        match self {
            HookEvent::Deploy => "deploy",
            HookEvent::Failure => "failure",
            HookEvent::Drift => "drift",
        }
    }

    /// The key of `[hooks]` that names its command.
    pub fn key(self) -> &'static str {
        match self {
            HookEvent::Deploy => "on_deploy",
            HookEvent::Failure => "on_failure",
            HookEvent::Drift => "on_drift",
        }
    }

    fn command(self, hooks: &Hooks) -> Option<&[String]> {
        match self {
            HookEvent::Deploy => hooks.on_deploy.as_deref(),
            HookEvent::Failure => hooks.on_failure.as_deref(),
            HookEvent::Drift => hooks.on_drift.as_deref(),
        }
    }
}

/// Runs the project's hook for `event` of environment `env` (its name, as
/// `TFENV_ENVIRONMENT`), with `document` as JSON on its stdin; nothing when tfenv.toml
/// names no hook for the event. Never fails: a hook that did not succeed is one warning
/// on stderr, which is also returned (`None` when the hook succeeded or there is none).
pub async fn run(
    ctx: &Context,
    project: &Project,
    event: HookEvent,
    env: &str,
    document: &impl Serialize,
) -> Option<String> {
    let command = event.command(&project.hooks)?;
    let (program, args) = command.split_first()?;
    let key = event.key();
    // Shell-quoted where needed, so the argument boundaries show: `sh -c 'sleep 1 & …'`.
    let what = format!(
        "hook {key} (`{}`) of `{env}`",
        shell_words::join(command.iter().map(String::as_str))
    );
    let warn = |said: String| {
        let warning = format!("{what} {said}");
        ctx.printer.warn(&warning);
        Some(warning)
    };
    // A run that failed because it was interrupted still says so (`on_failure`); any
    // other hook is new work, which tfenv never starts once asked to stop.
    if ctx.interrupts.received() && event != HookEvent::Failure {
        return warn("was not run: tfenv was interrupted".to_string());
    }
    let mut stdin = match serde_json::to_vec(document) {
        Ok(stdin) => stdin,
        Err(err) => {
            return warn(format!(
                "was not run: its document failed to serialize ({err})"
            ));
        }
    };
    stdin.push(b'\n');
    let mut inv = Invocation::new(project.program(program), args);
    inv.cwd = project.root.clone();
    inv.env = vec![
        ("TFENV_EVENT".to_string(), event.name().into()),
        ("TFENV_ENVIRONMENT".to_string(), env.into()),
    ];
    inv.stdin = Some(stdin);
    inv.after_interrupt = true;
    let options = RunOptions {
        // Its stdout too goes to stderr: tfenv's stdout is the command's result.
        echo: Some(format!("[{env}] {key}: ")),
        echo_into: ctx.printer.block().cloned(),
        ..RunOptions::default()
    };
    let timeout = project.hooks.timeout;
    ctx.printer.progress(&format!("{env}: running {key}"));
    // The next Ctrl-C is the hook's: it is killed, and the run ends as it ended.
    let seen = ctx.interrupts.handle_next();
    // Dropping the runner's future kills the hook's process group (SIGKILL).
    let done = tokio::select! {
        biased;
        () = ctx.interrupts.stop_requested_after(seen) => {
            return warn("was killed: tfenv was interrupted while it ran".to_string());
        }
        () = tokio::time::sleep(timeout) => {
            return warn(format!(
                "did not finish within {} and was killed; make it faster or raise `timeout` in [hooks] of tfenv.toml",
                humantime::format_duration(timeout)
            ));
        }
        done = ctx.runner.run(&inv, options) => done,
    };
    match done {
        Ok(done) if done.success() => None,
        Ok(done) => warn(format!(
            "{}; check its output above and its command in [hooks] of tfenv.toml",
            done.describe()
        )),
        Err(err) => warn(format!(
            "could not be started ({err:#}); check that `{program}` exists and is executable ([hooks] {key} in tfenv.toml)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_has_its_key_and_name() {
        let hooks = Hooks {
            on_deploy: Some(vec!["d".into()]),
            on_failure: Some(vec!["f".into()]),
            on_drift: Some(vec!["r".into()]),
            ..Hooks::default()
        };
        for (event, name, key, program) in [
            (HookEvent::Deploy, "deploy", "on_deploy", "d"),
            (HookEvent::Failure, "failure", "on_failure", "f"),
            (HookEvent::Drift, "drift", "on_drift", "r"),
        ] {
            assert_eq!(event.name(), name);
            assert_eq!(event.key(), key);
            assert_eq!(event.command(&hooks), Some(&[program.to_string()][..]));
        }
    }
}
