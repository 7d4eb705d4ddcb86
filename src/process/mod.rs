//! Starting processes. `Runner` is the only way tfenv starts one: the real runner
//! (tokio, own process group, signal policy) and a scripted fake for unit tests.
//! May use: output (its stderr lines), error.

mod interrupts;
mod real;
#[cfg(test)]
pub mod scripted;
mod signal;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::PathBuf;

pub use interrupts::{Interrupts, kill_leftover_children};
pub use real::TokioRunner;

/// One process to start: what, where, with which environment.
#[derive(Clone, Debug, Default)]
pub struct Invocation {
    pub program: PathBuf,
    /// OS strings: a path in a folder whose name is not UTF-8 reaches the child intact.
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    /// Variables set for the child on top of tfenv's own environment.
    pub env: Vec<(String, OsString)>,
    /// Variables removed from the child's environment.
    pub env_remove: Vec<String>,
    /// A short read-only check (reading a lock) that may still run after an interrupt,
    /// to tell the user what state the interrupted run left behind.
    pub after_interrupt: bool,
    /// The process may hold terraform's state lock (plan, apply, state push): it must be
    /// able to finish and release the lock even if tfenv is killed (SIGKILL) under it.
    /// Its output then goes to files tfenv follows rather than to pipes, which would
    /// break under it and make it die of SIGPIPE at its next line.
    pub holds_state_lock: bool,
    /// What the child reads on stdin (a hook's JSON document); stdin is closed when
    /// `None`. A child that exits or closes stdin before reading it all is no error.
    pub stdin: Option<Vec<u8>>,
    /// The child takes tfenv's terminal (`tfenv exec`): stdin, stdout and stderr are
    /// tfenv's own, nothing is captured or echoed. When stdin is the terminal and tfenv
    /// is in its foreground, the child stays in tfenv's process group, so that it can read
    /// the terminal and gets Ctrl-C, Ctrl-\ and Ctrl-Z from it directly, as it would
    /// without tfenv: tfenv forwards only what the terminal did not send it (SIGTERM).
    pub terminal: bool,
}

impl Invocation {
    pub fn new<S: AsRef<OsStr>>(program: impl Into<PathBuf>, args: &[S]) -> Invocation {
        Invocation {
            program: program.into(),
            args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
            ..Invocation::default()
        }
    }

    /// The command line for logs, with values that look like secrets masked.
    pub fn display(&self) -> String {
        let mut shown = vec![self.program.display().to_string()];
        shown.extend(
            self.args
                .iter()
                .map(|arg| mask_secret(&arg.to_string_lossy())),
        );
        shown.join(" ")
    }

    /// The program's file name, for messages.
    pub fn program_name(&self) -> String {
        self.program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.program.display().to_string())
    }
}

/// `-var=db_password=x` → `-var=db_password=***`: keys that name secrets keep their value out of logs.
fn mask_secret(arg: &str) -> String {
    const SECRET_WORDS: [&str; 6] = [
        "secret",
        "password",
        "token",
        "access_key",
        "sas",
        "credential",
    ];
    let Some((key, _)) = arg.rsplit_once('=') else {
        return arg.to_string();
    };
    if SECRET_WORDS
        .iter()
        .any(|word| key.to_ascii_lowercase().contains(word))
    {
        format!("{key}=***")
    } else {
        arg.to_string()
    }
}

/// What to do with the child's output while it runs.
#[derive(Default)]
pub struct RunOptions {
    /// Stream every output line to stderr as it arrives, behind this prefix.
    pub echo: Option<String>,
    /// Keep the echoed lines here instead of writing them to stderr (one environment of
    /// several run at once: its lines are printed together when it ends).
    pub echo_into: Option<crate::output::Block>,
    /// Send stdout here, chunk by chunk, instead of keeping it in memory.
    pub stdout_sink: Option<Box<dyn Write + Send>>,
    /// A copy of every output line (stdout and stderr), e.g. a run's log file.
    pub log: Option<Box<dyn Write + Send>>,
}

/// How a process ended, with what it printed.
#[derive(Debug, Default)]
pub struct Finished {
    /// The exit code, when it exited by itself.
    pub code: Option<i32>,
    /// The signal that killed it, otherwise.
    pub signal: Option<i32>,
    /// Captured stdout (empty when a sink took it).
    pub stdout: Vec<u8>,
    /// Captured stderr (its last MiB when it was huge).
    pub stderr: Vec<u8>,
    /// tfenv was asked to stop (SIGINT, SIGTERM, SIGHUP or SIGQUIT) while the process ran.
    pub interrupted: bool,
    /// Writing to the stdout sink failed (the rest of stdout was drained and dropped).
    pub sink_error: Option<std::io::Error>,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// "exited with code 1" / "was killed by signal 9", for messages.
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            (None, None) => "ended for an unknown reason".to_string(),
        }
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Starts processes. Commands and the terraform layer take `&dyn Runner`.
#[async_trait::async_trait]
pub trait Runner: Send + Sync {
    async fn run(&self, invocation: &Invocation, options: RunOptions) -> anyhow::Result<Finished>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_arguments_are_masked() {
        let inv = Invocation::new(
            "terraform",
            &[
                "plan",
                "-var=db_password=hunter2",
                "-var=region=eu",
                "-backend-config=secret_key=abc",
            ],
        );
        let shown = inv.display();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("abc"), "{shown}");
        assert!(shown.contains("-var=region=eu"), "{shown}");
    }
}
