//! The real runner: a child in its own process group with stdin closed, output drained
//! as it arrives, and the interrupt policy of DESIGN.md §5 (first signal: one SIGINT to
//! the group and wait; second: SIGINT again, then SIGKILL after a grace period).
//!
//! A child that may hold the state lock writes its output to files that tfenv follows,
//! not to pipes: if tfenv is killed (SIGKILL cannot be caught), a pipe loses its reader
//! and terraform dies of SIGPIPE at its next line of output — holding its lock, with the
//! state half written. A file keeps taking its output until it finishes on its own.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use super::{Finished, Interrupts, Invocation, RunOptions, Runner};
use crate::error::TfenvError;

/// How long a child gets after the second interrupt before it is killed.
const FORCE_GRACE: Duration = Duration::from_secs(10);
/// How long output pipes are drained after the child exited (a grandchild may hold them).
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How often output files are read for what the child wrote since.
const FOLLOW_EVERY: Duration = Duration::from_millis(50);
/// Captured stderr beyond this keeps only its tail.
const STDERR_CAP: usize = 1 << 20;

pub struct TokioRunner {
    interrupts: Interrupts,
}

impl TokioRunner {
    pub fn new(interrupts: Interrupts) -> TokioRunner {
        TokioRunner { interrupts }
    }
}

#[async_trait::async_trait]
impl Runner for TokioRunner {
    async fn run(&self, inv: &Invocation, options: RunOptions) -> anyhow::Result<Finished> {
        let mut signals = self.interrupts.subscribe();
        let seen = signals.borrow_and_update().count;
        if seen > 0 && !inv.after_interrupt {
            // Never start new work after the user asked to stop.
            return Err(TfenvError::Interrupted.into());
        }
        tracing::debug!(cwd = %inv.cwd.display(), "running {}", inv.display());
        let program = inv.program_name();

        let mut command = tokio::process::Command::new(&inv.program);
        if !inv.cwd.as_os_str().is_empty() {
            command.current_dir(&inv.cwd);
        }
        // A child on tfenv's terminal, in its foreground, stays in tfenv's group: the
        // terminal's signals reach it as they would without tfenv.
        let shares_group = inv.terminal && terminal_in_foreground();
        command
            .args(&inv.args)
            .stdin(match (&inv.stdin, inv.terminal) {
                (Some(_), _) => Stdio::piped(),
                (None, true) => Stdio::inherit(),
                (None, false) => Stdio::null(),
            })
            .kill_on_drop(false);
        if !shares_group {
            // Own process group: a Ctrl-C at the terminal reaches tfenv alone, and tfenv
            // decides what the child gets.
            command.process_group(0);
        }
        for name in &inv.env_remove {
            command.env_remove(name);
        }
        command.envs(inv.env.iter().map(|(k, v)| (k, v)));
        let mut files = if inv.holds_state_lock && !inv.terminal {
            match OutputFiles::create() {
                Ok(files) => Some(files),
                Err(err) => {
                    // Pipes still work; only a SIGKILL of tfenv would then hurt terraform.
                    tracing::debug!(
                        "cannot create files for `{program}`'s output ({err}); using pipes"
                    );
                    None
                }
            }
        } else {
            None
        };
        match &files {
            Some(files) => {
                command
                    .stdout(files.stdout.for_child()?)
                    .stderr(files.stderr.for_child()?);
            }
            None if inv.terminal => {
                command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
            }
            None => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
        }
        let _running = if shares_group {
            self.interrupts.child_sharing_terminal(&program)
        } else {
            self.interrupts
                .child_running(&program, inv.holds_state_lock)
        };
        let mut child = command
            .spawn()
            .with_context(|| format!("starting `{}`", inv.program.display()))?;
        let child_pid = Pid::from_raw(child.id().map_or(0, |id| id as i32));
        // The child leads its own group, unless it shares tfenv's: then the group is never
        // signalled (it is tfenv's), only the child.
        let pgid = child_pid;
        let mut group = KillGroupOnDrop {
            pgid,
            alone: shares_group,
            armed: pgid.as_raw() > 0,
        };
        let (mut stdout, mut stderr) = match files {
            Some(_) => (None, None),
            None if inv.terminal => (None, None),
            None => (
                Some(child.stdout.take().context("child stdout")?),
                Some(child.stderr.take().context("child stderr")?),
            ),
        };

        // Fed while the output is drained: a child that writes before it reads must not
        // block on a full pipe. EPIPE (it never reads) ends the feeding, nothing more:
        // tfenv ignores SIGPIPE, as Rust programs do.
        let mut feed: Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> =
            match (child.stdin.take(), inv.stdin.clone()) {
                (Some(mut pipe), Some(bytes)) => Some(Box::pin(async move {
                    use tokio::io::AsyncWriteExt;
                    if let Err(err) = pipe.write_all(&bytes).await {
                        tracing::debug!("the child did not read all of its stdin: {err}");
                    }
                    // Dropped here: the child sees the end of its input.
                })),
                _ => None,
            };
        let mut output = Collector::new(options);
        let mut out_buf = vec![0u8; 64 * 1024];
        let mut err_buf = vec![0u8; 16 * 1024];
        let mut signals_open = true;
        let mut status: Option<ExitStatus> = None;
        let mut kill_at: Option<Instant> = None;
        let mut drain_until: Option<Instant> = None;
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let mut follow = tokio::time::interval(FOLLOW_EVERY);
        follow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            if status.is_some() && stdout.is_none() && stderr.is_none() && files.is_none() {
                break;
            }
            tokio::select! {
                () = async { feed.as_mut().expect("guarded").await }, if feed.is_some() => feed = None,
                read = read_some(&mut stdout, &mut out_buf), if stdout.is_some() => match read {
                    Ok(0) | Err(_) => stdout = None,
                    Ok(n) => output.stdout(&out_buf[..n]),
                },
                read = read_some(&mut stderr, &mut err_buf), if stderr.is_some() => match read {
                    Ok(0) | Err(_) => stderr = None,
                    Ok(n) => output.stderr(&err_buf[..n]),
                },
                _ = follow.tick(), if files.is_some() => {
                    if let Some(f) = files.as_mut()
                        && let Err(err) = f.read_new(&mut out_buf, &mut output)
                    {
                        tracing::debug!("reading `{program}`'s output: {err}");
                        files = None;
                    }
                },
                waited = child.wait(), if status.is_none() => {
                    status = Some(waited.with_context(|| format!("waiting for `{program}`"))?);
                    drain_until = Some(Instant::now() + DRAIN_GRACE);
                    // The child is gone: what it wrote is all there. (A grandchild that
                    // kept the files is not waited for, as with pipes.)
                    if let Some(mut f) = files.take()
                        && let Err(err) = f.read_new(&mut out_buf, &mut output)
                    {
                        tracing::debug!("reading `{program}`'s output: {err}");
                    }
                },
                changed = signals.changed(), if signals_open && status.is_none() => {
                    if changed.is_err() {
                        signals_open = false;
                        continue;
                    }
                    let now = *signals.borrow_and_update();
                    let received = now.count - seen;
                    let what = now.last.map_or("interrupt", |kind| kind.describe());
                    output.finished.interrupted = true;
                    // Only a terraform call that may hold the state lock has one to release.
                    let (release, left_held) = if inv.holds_state_lock {
                        (" and release its state lock", " — this may leave the state lock held")
                    } else {
                        ("", "")
                    };
                    if shares_group {
                        // The terminal sent Ctrl-C, Ctrl-\ and a hangup to the child as
                        // well: it decides, as without tfenv. What came to tfenv alone
                        // (SIGTERM from a supervisor) is passed on.
                        if now.last == Some(super::signal::Shutdown::Terminate) {
                            let _ = nix::sys::signal::kill(child_pid, Signal::SIGTERM);
                        }
                        continue;
                    }
                    if received == 1 {
                        crate::output::stderr_line(&format!("tfenv: {what} received; waiting for `{program}` to stop{release} (Ctrl-C again to force)"));
                        let _ = killpg(pgid, Signal::SIGINT);
                    } else if kill_at.is_none() {
                        crate::output::stderr_line(&format!(
                            "tfenv: second interrupt; forcing `{program}` to stop{left_held} (killing it in {}s)",
                            FORCE_GRACE.as_secs()
                        ));
                        let _ = killpg(pgid, Signal::SIGINT);
                        kill_at = Some(Instant::now() + FORCE_GRACE);
                    }
                },
                () = tokio::time::sleep_until(kill_at.unwrap_or(far)), if kill_at.is_some() && status.is_none() => {
                    crate::output::stderr_line(&format!("tfenv: `{program}` did not stop; killing it"));
                    let _ = killpg(pgid, Signal::SIGKILL);
                    kill_at = None;
                },
                () = tokio::time::sleep_until(drain_until.unwrap_or(far)), if drain_until.is_some() => {
                    tracing::debug!("`{program}` exited but its output stayed open; not waiting for it");
                    break;
                },
            }
        }
        group.armed = false;
        let mut finished = output.finish()?;
        if finished.interrupted && !shares_group {
            // terraform is gone; a provisioner it started may not be (sh -c forks). Nothing
            // of an interrupted run may outlive it.
            let _ = killpg(pgid, Signal::SIGTERM);
        }
        let status = status.expect("loop ends only after the child exited");
        {
            use std::os::unix::process::ExitStatusExt;
            finished.code = status.code();
            finished.signal = status.signal();
        }
        tracing::debug!("`{program}` {}", finished.describe());
        Ok(finished)
    }
}

/// Kills the child's process group when a run is dropped before it finished — a caller's
/// deadline (`tokio::time::timeout` around `run`) must not leave the child, or anything
/// it started, running.
struct KillGroupOnDrop {
    pgid: Pid,
    /// The child shares tfenv's group: only it is killed.
    alone: bool,
    armed: bool,
}

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if self.armed {
            if self.alone {
                let _ = nix::sys::signal::kill(self.pgid, Signal::SIGKILL);
            } else {
                let _ = killpg(self.pgid, Signal::SIGKILL);
            }
        }
    }
}

/// Whether stdin is a terminal whose foreground process group is tfenv's.
fn terminal_in_foreground() -> bool {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    stdin.is_terminal()
        && nix::unistd::tcgetpgrp(&stdin).is_ok_and(|group| group == nix::unistd::getpgrp())
}

/// Reads from a pipe that is still open; never resolves for one that is closed.
async fn read_some(
    pipe: &mut Option<impl AsyncRead + Unpin>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

/// What the child printed, on its way to the caller: captured, sunk, echoed and logged.
struct Collector {
    finished: Finished,
    options: RunOptions,
    out: OutputSide,
    err: OutputSide,
}

impl Collector {
    fn new(options: RunOptions) -> Collector {
        Collector {
            finished: Finished::default(),
            out: OutputSide::new(options.echo.clone(), options.echo_into.clone()),
            err: OutputSide::new(options.echo.clone(), options.echo_into.clone()),
            options,
        }
    }

    fn stdout(&mut self, chunk: &[u8]) {
        match self.options.stdout_sink.as_mut() {
            Some(sink) if self.finished.sink_error.is_none() => {
                if let Err(e) = sink.write_all(chunk) {
                    self.finished.sink_error = Some(e);
                }
            }
            Some(_) => {}
            None => self.finished.stdout.extend_from_slice(chunk),
        }
        self.out.lines(chunk, &mut self.options.log);
    }

    fn stderr(&mut self, chunk: &[u8]) {
        let captured = &mut self.finished.stderr;
        captured.extend_from_slice(chunk);
        if captured.len() > STDERR_CAP {
            let cut = captured.len() - STDERR_CAP / 2;
            captured.drain(..cut);
        }
        self.err.lines(chunk, &mut self.options.log);
    }

    /// Flushes partial lines, the sink and the log.
    fn finish(mut self) -> anyhow::Result<Finished> {
        self.out.finish(&mut self.options.log);
        self.err.finish(&mut self.options.log);
        if let Some(sink) = self.options.stdout_sink.as_mut()
            && self.finished.sink_error.is_none()
            && let Err(e) = sink.flush()
        {
            self.finished.sink_error = Some(e);
        }
        if let Some(log) = self.options.log.as_mut() {
            log.flush().context("writing the run's log")?;
        }
        Ok(self.finished)
    }
}

/// The child's stdout and stderr as anonymous files (never linked, 0600, gone when the
/// last process holding them exits) that tfenv reads as they grow.
struct OutputFiles {
    stdout: Followed,
    stderr: Followed,
}

impl OutputFiles {
    fn create() -> std::io::Result<OutputFiles> {
        Ok(OutputFiles {
            stdout: Followed::create()?,
            stderr: Followed::create()?,
        })
    }

    /// Hands the collector everything written to either file since the last call.
    fn read_new(&mut self, buf: &mut [u8], output: &mut Collector) -> std::io::Result<()> {
        self.stdout.read_new(buf, |chunk| output.stdout(chunk))?;
        self.stderr.read_new(buf, |chunk| output.stderr(chunk))
    }
}

/// One output file and how far tfenv has read it. tfenv reads at its own offset
/// (`pread`), so the file position the child writes at is the child's alone.
struct Followed {
    file: File,
    read: u64,
}

impl Followed {
    fn create() -> std::io::Result<Followed> {
        Ok(Followed {
            file: tempfile::tempfile()?,
            read: 0,
        })
    }

    fn for_child(&self) -> anyhow::Result<Stdio> {
        let file = self
            .file
            .try_clone()
            .context("sharing an output file with the child")?;
        Ok(Stdio::from(file))
    }

    fn read_new(&mut self, buf: &mut [u8], mut each: impl FnMut(&[u8])) -> std::io::Result<()> {
        loop {
            match self.file.read_at(buf, self.read) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    self.read += n as u64;
                    each(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The longest line echoed or logged in one piece; a longer one is cut into pieces.
const MAX_LINE: usize = 64 * 1024;

/// Splits one output stream into lines for echo and log, keeping a partial last line.
struct OutputSide {
    echo: Option<String>,
    /// Where echoed lines go instead of stderr.
    echo_into: Option<crate::output::Block>,
    partial: Vec<u8>,
}

impl OutputSide {
    fn new(echo: Option<String>, echo_into: Option<crate::output::Block>) -> OutputSide {
        OutputSide {
            echo,
            echo_into,
            partial: Vec::new(),
        }
    }

    fn lines(&mut self, chunk: &[u8], log: &mut Option<Box<dyn Write + Send>>) {
        if self.echo.is_none() && log.is_none() {
            return;
        }
        // Only the new bytes are searched: a long line costs its length once.
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..pos]);
            let line = std::mem::take(&mut self.partial);
            self.emit(&line, log);
            rest = &rest[pos + 1..];
        }
        self.partial.extend_from_slice(rest);
        // A line with no end (a hook printing megabytes without a newline) is shown in
        // pieces: memory and time stay bounded.
        while self.partial.len() >= MAX_LINE {
            let piece: Vec<u8> = self.partial.drain(..MAX_LINE).collect();
            self.emit(&piece, log);
        }
    }

    fn finish(&mut self, log: &mut Option<Box<dyn Write + Send>>) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.emit(&line, log);
        }
    }

    fn emit(&self, line: &[u8], log: &mut Option<Box<dyn Write + Send>>) {
        let text = String::from_utf8_lossy(line);
        // A shim or fork that ignores -no-color must not colour (or retitle) the terminal
        // through tfenv, nor put escape codes into logs: stripped, as in error text.
        let text = console::strip_ansi_codes(&text);
        let text = text.trim_end_matches('\r');
        if let Some(prefix) = &self.echo {
            let line = format!("{prefix}{text}");
            match &self.echo_into {
                Some(block) => block.err(&line),
                None => crate::output::stderr_line(&line),
            }
        }
        if let Some(log) = log.as_mut() {
            // A log write error must not stop the run; it is reported when flushed.
            let _ = writeln!(log, "{text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log that keeps what is written, for the test to read.
    #[derive(Clone, Default)]
    struct Kept(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Kept {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_without_end_is_logged_in_pieces_of_bounded_size() {
        let kept = Kept::default();
        let mut log: Option<Box<dyn Write + Send>> = Some(Box::new(kept.clone()));
        let mut side = OutputSide::new(None, None);
        let text = [b"short\n".to_vec(), vec![b'B'; 3 * MAX_LINE + 10]].concat();
        for chunk in text.chunks(4096) {
            side.lines(chunk, &mut log);
        }
        side.finish(&mut log);
        let logged = String::from_utf8(kept.0.lock().unwrap().clone()).unwrap();
        let lengths: Vec<usize> = logged.lines().map(str::len).collect();
        assert_eq!(lengths, [5, MAX_LINE, MAX_LINE, MAX_LINE, 10]);
    }

    fn sh(script: &str) -> Invocation {
        Invocation {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            ..Invocation::default()
        }
    }

    #[tokio::test]
    async fn output_is_captured_and_exit_code_reported() {
        let runner = TokioRunner::new(Interrupts::default());
        let done = runner
            .run(&sh("echo out; echo err >&2; exit 3"), RunOptions::default())
            .await
            .unwrap();
        assert_eq!(done.code, Some(3));
        assert_eq!(done.stdout_text(), "out\n");
        assert_eq!(done.stderr_text(), "err\n");
        assert!(!done.interrupted);
    }

    #[tokio::test]
    async fn stdin_is_closed_so_a_prompt_cannot_block() {
        let runner = TokioRunner::new(Interrupts::default());
        let done = runner
            .run(&sh("read answer; echo \"rc=$?\""), RunOptions::default())
            .await
            .unwrap();
        assert_eq!(done.stdout_text(), "rc=1\n");
    }

    #[tokio::test]
    async fn stdin_given_is_fed_and_closed() {
        let runner = TokioRunner::new(Interrupts::default());
        let inv = Invocation {
            stdin: Some(b"{\"a\":1}\n".to_vec()),
            ..sh("cat; echo end")
        };
        let done = runner.run(&inv, RunOptions::default()).await.unwrap();
        assert!(done.success(), "{}", done.stderr_text());
        assert_eq!(done.stdout_text(), "{\"a\":1}\nend\n");
    }

    #[tokio::test]
    async fn a_child_that_never_reads_its_stdin_is_no_error() {
        let runner = TokioRunner::new(Interrupts::default());
        // More than a pipe holds: the write fails with EPIPE once the child is gone.
        let inv = Invocation {
            stdin: Some(vec![b'x'; 1 << 20]),
            ..sh("echo done")
        };
        let done = runner.run(&inv, RunOptions::default()).await.unwrap();
        assert!(done.success(), "{}", done.stderr_text());
        assert_eq!(done.stdout_text(), "done\n");
    }

    /// A sink or log the test can read back after the run.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn stdout_goes_to_the_sink_and_log_gets_every_line() {
        let sink = Shared::default();
        let log = Shared::default();
        let runner = TokioRunner::new(Interrupts::default());
        let done = runner
            .run(
                &sh("printf 'a\\nb'; echo warn >&2"),
                RunOptions {
                    stdout_sink: Some(Box::new(sink.clone())),
                    log: Some(Box::new(log.clone())),
                    echo: None,
                    echo_into: None,
                },
            )
            .await
            .unwrap();
        assert!(done.stdout.is_empty());
        assert_eq!(&*sink.0.lock().unwrap(), b"a\nb");
        let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("a\n") && logged.contains("b\n") && logged.contains("warn\n"));
    }

    #[tokio::test]
    async fn an_invocation_without_cwd_runs_in_tfenvs_own() {
        let runner = TokioRunner::new(Interrupts::default());
        let inv = Invocation::new("/bin/pwd", &[] as &[&str]);
        let done = runner.run(&inv, RunOptions::default()).await.unwrap();
        let here = std::env::current_dir().unwrap();
        assert_eq!(done.stdout_text().trim(), here.display().to_string());
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_naming_it() {
        let runner = TokioRunner::new(Interrupts::default());
        let inv = Invocation::new("/nonexistent/terraform", &["version"]);
        let err = runner.run(&inv, RunOptions::default()).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/terraform"),
            "{err:#}"
        );
    }

    /// A shell that traps SIGINT and exits 42 only after cleaning up; a grandchild
    /// (sleep) in the same group gets the signal too.
    const CLEANS_UP_ON_SIGINT: &str = "trap 'echo cleaned; exit 42' INT; sleep 30 & wait";

    /// One interrupt while `inv` runs: the group gets SIGINT and the run waits for it.
    async fn assert_first_interrupt_is_sent_and_waited_for(inv: Invocation) {
        let interrupts = Interrupts::default();
        let runner = TokioRunner::new(interrupts.clone());
        let raise = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            interrupts.raise();
        };
        let (done, ()) = tokio::join!(runner.run(&inv, RunOptions::default()), raise);
        let done = done.unwrap();
        assert!(done.interrupted);
        assert_eq!(done.code, Some(42));
        assert_eq!(done.stdout_text(), "cleaned\n");
    }

    #[tokio::test]
    async fn first_interrupt_sends_sigint_to_the_group_and_waits() {
        assert_first_interrupt_is_sent_and_waited_for(sh(CLEANS_UP_ON_SIGINT)).await;
    }

    /// An invocation that may hold the state lock.
    fn locking(script: &str) -> Invocation {
        Invocation {
            holds_state_lock: true,
            ..sh(script)
        }
    }

    #[tokio::test]
    async fn a_child_that_may_hold_the_state_lock_writes_to_files_not_pipes() {
        let runner = TokioRunner::new(Interrupts::default());
        let done = runner
            .run(
                &locking("readlink /proc/self/fd/1; readlink /proc/self/fd/2 >&2"),
                RunOptions::default(),
            )
            .await
            .unwrap();
        assert!(done.success(), "{}", done.stderr_text());
        for (name, target) in [
            ("stdout", done.stdout_text()),
            ("stderr", done.stderr_text()),
        ] {
            assert!(
                !target.starts_with("pipe:") && target.contains("(deleted)"),
                "its {name} is an unlinked file, nothing a dying tfenv can break: {target}"
            );
        }
    }

    #[tokio::test]
    async fn output_through_files_is_captured_echoed_and_logged_like_pipes() {
        let log = Shared::default();
        let runner = TokioRunner::new(Interrupts::default());
        let script = "echo one; sleep 0.2; echo warn >&2; sleep 0.2; printf 'two\\nthree'; exit 3";
        let done = runner
            .run(
                &locking(script),
                RunOptions {
                    log: Some(Box::new(log.clone())),
                    ..RunOptions::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(done.code, Some(3));
        assert_eq!(done.stdout_text(), "one\ntwo\nthree");
        assert_eq!(done.stderr_text(), "warn\n");
        let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert_eq!(logged, "one\nwarn\ntwo\nthree\n");
    }

    #[tokio::test]
    async fn a_child_writing_to_files_gets_the_same_interrupt_policy() {
        assert_first_interrupt_is_sent_and_waited_for(locking(CLEANS_UP_ON_SIGINT)).await;
    }

    #[tokio::test]
    async fn a_run_dropped_at_a_deadline_kills_the_child_and_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let runner = TokioRunner::new(Interrupts::default());
        // The shell and a grandchild (sleep), both in the child's group, write their pids.
        let inv = sh(&format!(
            "sleep 1000 & echo \"$$ $!\" > '{}'; wait",
            pids.display()
        ));
        let outcome = tokio::time::timeout(
            Duration::from_millis(500),
            runner.run(&inv, RunOptions::default()),
        )
        .await;
        assert!(
            outcome.is_err(),
            "the run should still be going at the deadline"
        );
        let pids: Vec<i32> = std::fs::read_to_string(&pids)
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2);
        let alive = |pid: i32| {
            // Gone, or a zombie waiting to be reaped: either way it runs no more.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let state = stat[stat.rfind(')')? + 1..].split_whitespace().next()?;
                    Some(state != "Z" && state != "X")
                })
                .unwrap_or(false)
        };
        let until = Instant::now() + Duration::from_secs(5);
        while pids.iter().any(|&pid| alive(pid)) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for pid in pids {
            assert!(!alive(pid), "process {pid} outlived the dropped run");
        }
    }

    #[tokio::test]
    async fn no_new_process_starts_after_an_interrupt() {
        let interrupts = Interrupts::default();
        interrupts.raise();
        let runner = TokioRunner::new(interrupts);
        let err = runner
            .run(&sh("true"), RunOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(
            err.downcast_ref::<TfenvError>(),
            Some(TfenvError::Interrupted)
        ));
    }
}
