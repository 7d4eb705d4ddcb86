//! Waiting for a lock another run holds (`--lock-timeout`, DESIGN.md §10): tfenv's own
//! lock of the environment, and terraform's state lock. tfenv polls the lock, says who
//! holds it when the wait begins and then every `report_every` (30 s) on stderr, and
//! gives up with exit 4 — naming the holder and how long it waited — when the time is
//! up. An interrupt ends the wait at once (exit 130); nothing has changed by then.
//!
//! The state lock is waited for here, before each terraform call that takes it, because
//! only here can tfenv say who holds it (terraform waits silently). terraform still gets
//! `-lock-timeout` with the full duration: the lock was free a moment before, so its own
//! wait only covers a run that took the lock in between. Each lock gets the full
//! duration; the waits of one run do not share it.

use std::time::{Duration, Instant};

use crate::Context;
use crate::artifacts::envlock::EnvLock;
use crate::backend::Backend;
use crate::backend::lock::{LockState, StateLock};
use crate::error::TfenvError;
use crate::project::Environment;
use crate::settings::LockWait;

/// How often an environment lock (a local file lock) is tried again.
const ENV_LOCK_POLL: Duration = Duration::from_millis(200);
/// How often a state lock is read again (a request to a backend for remote ones).
const STATE_LOCK_POLL: Duration = Duration::from_secs(1);
/// One read of a state lock may take this long before tfenv leaves the wait to terraform.
const STATE_LOCK_READ: Duration = Duration::from_secs(30);

/// The environment's lock for `tfenv <command> <env>`: at once, or — with a lock
/// timeout — once its holder lets go, within the timeout.
pub(super) async fn env_lock(
    ctx: &Context,
    env: &Environment,
    command: &str,
    record: bool,
    wait: &LockWait,
) -> anyhow::Result<EnvLock> {
    let mut waiter = Waiter::new(ctx, *wait);
    loop {
        match EnvLock::try_acquire(&env.artifacts_dir, &env.name, command, record)? {
            Ok(lock) => {
                waiter.done(&format!("{}: got the environment's lock", env.name));
                return Ok(lock);
            }
            Err(busy) => {
                if !wait.waits() {
                    return Err(busy.error(None).into());
                }
                let what = format!(
                    "{}: waiting for another tfenv to finish ({})",
                    env.name, busy.holder
                );
                if let Some(waited) = waiter.held(&what, ENV_LOCK_POLL).await? {
                    return Err(busy.error(Some(waited)).into());
                }
            }
        }
    }
}

/// Before a terraform call that takes the state lock: with a lock timeout, waits while
/// someone holds it. Without one, or for a backend whose lock tfenv cannot read, or
/// when reading it fails, terraform alone decides (`-lock-timeout`).
pub async fn wait_for_state_lock(
    ctx: &Context,
    backend: &Backend,
    env: &Environment,
    wait: &LockWait,
) -> anyhow::Result<()> {
    if !wait.waits() {
        return Ok(());
    }
    let mut waiter = Waiter::new(ctx, *wait);
    loop {
        let read =
            tokio::time::timeout(STATE_LOCK_READ, backend.read_lock(env, ctx.runner.as_ref()))
                .await;
        let lock = match read {
            Ok(Ok(lock)) => lock,
            Ok(Err(err)) => {
                ctx.printer.warn(&format!(
                    "cannot read the state lock of `{}` ({err:#}); terraform waits for it itself",
                    env.name
                ));
                return Ok(());
            }
            Err(_) => {
                ctx.printer.warn(&format!(
                    "reading the state lock of `{}` took longer than {}; terraform waits for it itself",
                    env.name,
                    humantime::format_duration(STATE_LOCK_READ)
                ));
                return Ok(());
            }
        };
        if !lock.is_held() {
            waiter.done(&format!("{}: the state lock is free", env.name));
            return Ok(());
        }
        let what = format!(
            "{}: waiting for the state lock, held by {}",
            env.name,
            holder(&lock)
        );
        if let Some(waited) = waiter.held(&what, STATE_LOCK_POLL).await? {
            return Err(state_lock_timed_out(env, lock, waited));
        }
    }
}

/// Exit 4 for a state lock still held when the time is up: the holder, and how long.
fn state_lock_timed_out(env: &Environment, lock: StateLock, waited: Duration) -> anyhow::Error {
    let waited = humantime::format_duration(waited);
    match lock.state {
        LockState::Held(info) => anyhow::Error::from(TfenvError::lock_held(&env.name, info, true))
        .context(format!(
            "waited {waited} (--lock-timeout) for the state lock of `{}`",
            env.name
        )),
        _ => TfenvError::Locked {
            message: format!(
                "the state of `{}` is still locked after waiting {waited} (--lock-timeout), by {}",
                env.name,
                holder(&lock)
            ),
            hint: Some(format!(
                "that run is still going: wait longer (a larger --lock-timeout), or check who holds it with `tfenv lock {}`",
                env.name
            )),
        }
        .into(),
    }
}

/// The holder of a held state lock in one line, with what tfenv saw when it is unknown.
fn holder(lock: &StateLock) -> String {
    match (&lock.state, &lock.note) {
        (LockState::HeldUnknown, Some(note)) => format!("an unknown holder ({note})"),
        _ => lock.describe(),
    }
}

/// One wait for one lock: when it began, when the holder was last said.
struct Waiter<'a> {
    ctx: &'a Context,
    wait: LockWait,
    started: Instant,
    /// When the holder is said next; `None` until the first time the lock is found held.
    next_report: Option<Instant>,
}

impl<'a> Waiter<'a> {
    fn new(ctx: &'a Context, wait: LockWait) -> Waiter<'a> {
        Waiter {
            ctx,
            wait,
            started: Instant::now(),
            next_report: None,
        }
    }

    /// The lock is held (`what` says by whom): says so when it is time, then sleeps
    /// until the next try. `Some(waited)` when the time is up; an interrupt is an error.
    async fn held(&mut self, what: &str, poll: Duration) -> anyhow::Result<Option<Duration>> {
        let now = Instant::now();
        let waited = now.duration_since(self.started);
        if waited >= self.wait.timeout {
            return Ok(Some(self.wait.timeout.max(rounded(waited))));
        }
        if self.next_report.is_none_or(|at| now >= at) {
            // Live even for one environment among several planned at once.
            self.ctx.printer.progress_now(&format!(
                "{what}; waited {} of {}",
                humantime::format_duration(rounded(waited)),
                humantime::format_duration(self.wait.timeout)
            ));
            self.next_report = Some(now + self.wait.report_every);
        }
        let left = self.wait.timeout - waited;
        let pause = poll.min(self.wait.report_every).min(left);
        let mut interrupts = self.ctx.interrupts.subscribe();
        if self.ctx.interrupts.received() {
            return Err(TfenvError::Interrupted.into());
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => Ok(None),
            _ = interrupts.wait_for(|s| s.count > 0) => Err(TfenvError::Interrupted.into()),
        }
    }

    /// The lock was got: after a wait, says so and how long it took.
    fn done(&self, what: &str) {
        if self.next_report.is_some() {
            self.ctx.printer.progress(&format!(
                "{what} after {}",
                humantime::format_duration(rounded(self.started.elapsed()))
            ));
        }
    }
}

/// Whole seconds, for messages.
fn rounded(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Format, Printer};
    use crate::process::Interrupts;
    use crate::settings::{Colors, GlobalSettings, OutputSettings};

    fn ctx() -> Context {
        let output = OutputSettings {
            format: Format::Human,
            verbosity: 0,
            quiet: true,
            colors: Colors {
                stdout: false,
                stderr: false,
            },
        };
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(["tfenv", "envs"]).unwrap();
        let settings = GlobalSettings::resolve(&cli.global, output).unwrap();
        Context::new(
            settings,
            Printer::new(Format::Human, true, false, false),
            std::sync::Arc::new(crate::process::scripted::ScriptedRunner::default()),
            Interrupts::default(),
        )
    }

    fn environment(dir: &std::path::Path) -> Environment {
        std::fs::write(dir.join("tfenv.toml"), "[environments.dev]\n").unwrap();
        let project = crate::project::Project::load(dir, None).unwrap();
        project.environment("dev").unwrap().clone()
    }

    fn wait(timeout_ms: u64, report_ms: u64) -> LockWait {
        LockWait {
            timeout: Duration::from_millis(timeout_ms),
            report_every: Duration::from_millis(report_ms),
        }
    }

    #[tokio::test]
    async fn the_holder_is_said_when_the_wait_begins_and_then_every_period() {
        let ctx = ctx();
        let mut waiter = Waiter::new(&ctx, wait(1_000, 100));
        let mut reports = Vec::new();
        let started = Instant::now();
        loop {
            let before = waiter.next_report;
            match waiter
                .held("held", Duration::from_millis(20))
                .await
                .unwrap()
            {
                Some(_) => break,
                None => {
                    // When the holder was said: the report sets the next one a period on.
                    if let Some(next) = waiter.next_report.filter(|_| waiter.next_report != before)
                    {
                        reports.push(next - Duration::from_millis(100) - started);
                    }
                }
            }
        }
        // At once, then every 100 ms or more of the second: at most 10, never one per
        // poll (about 50 polls). A loaded machine may poll late, so fewer is fine.
        assert_eq!(reports[0].as_millis() / 50, 0, "{reports:?}");
        assert!((2..=10).contains(&reports.len()), "{reports:?}");
        for pair in reports.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(100),
                "{reports:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_time_is_up_after_the_timeout_and_says_how_long() {
        let ctx = ctx();
        let mut waiter = Waiter::new(&ctx, wait(150, 30_000));
        let started = Instant::now();
        let waited = loop {
            if let Some(waited) = waiter
                .held("held", Duration::from_millis(50))
                .await
                .unwrap()
            {
                break waited;
            }
        };
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(waited, Duration::from_millis(150));
    }

    #[tokio::test]
    async fn an_interrupt_ends_the_wait_at_once() {
        let ctx = ctx();
        let interrupts = ctx.interrupts.clone();
        let mut waiter = Waiter::new(&ctx, wait(60_000, 30_000));
        let started = Instant::now();
        let raise = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            interrupts.raise();
        };
        let (result, ()) = tokio::join!(waiter.held("held", Duration::from_secs(10)), raise);
        let err = result.unwrap_err();
        assert_eq!(crate::error::exit_for(&err), crate::exit::Exit::Interrupted);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_environment_lock_is_waited_for_and_taken_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let env = environment(dir.path());
        let ctx = ctx();
        let first = EnvLock::acquire(&env.artifacts_dir, "dev", "deploy", true).unwrap();
        let release = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(first);
        };
        let patient = wait(10_000, 30_000);
        let (second, ()) = tokio::join!(env_lock(&ctx, &env, "deploy", true, &patient), release);
        second.unwrap();
    }

    #[tokio::test]
    async fn an_environment_lock_still_held_when_the_time_is_up_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let env = environment(dir.path());
        let ctx = ctx();
        let _first = EnvLock::acquire(&env.artifacts_dir, "dev", "deploy", true).unwrap();
        let err = env_lock(&ctx, &env, "deploy", true, &wait(300, 30_000))
            .await
            .err()
            .unwrap();
        assert_eq!(crate::error::exit_for(&err), crate::exit::Exit::Locked);
        let text = err.to_string();
        assert!(
            text.contains("still busy after waiting 300ms (--lock-timeout)")
                && text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
    }
}
