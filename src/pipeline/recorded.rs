//! One recorded run of a command that changes an environment (deploy, refresh, restore,
//! unlock, a state-changing exec): tfenv's environment lock, the history record, the git commit — then exactly
//! one of `finish` or `fail`, or `interrupted` when the run is cut short.

use crate::Context;
use crate::artifacts::envlock::EnvLock;
use crate::artifacts::history::{self, HistoryRecord, Ledger, RunResult};
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::git;
use crate::output::Printer;
use crate::project::{Environment, Project};
use crate::settings::LockWait;
use crate::terraform::Terraform;

/// Held for the whole run. Dropped without `finish` or `fail` (an interrupt ended the
/// run between two steps), its record says `interrupted`.
pub struct RecordedRun {
    /// The history record being filled in by the run's steps.
    pub ledger: Ledger,
    /// The checkout's commit and changes, or why git could not say.
    git: anyhow::Result<Option<git::Checkout>>,
    warnings: Vec<String>,
    // Last: fields drop in order, so the record is written before the lock is released.
    _lock: EnvLock,
}

impl RecordedRun {
    /// Takes the environment's lock (a second tfenv stops here with exit 4, or waits
    /// for it as `wait` says), starts the record and asks git for the commit. An
    /// interrupt by then ends the run, recorded, before anything has changed.
    pub async fn start(
        ctx: &Context,
        project: &Project,
        env: &Environment,
        command: &'static str,
        record: bool,
        tf: &Terraform,
        wait: &LockWait,
    ) -> anyhow::Result<RecordedRun> {
        let lock = RecordedRun::lock(ctx, env, command, record, wait).await?;
        let git = git::head(ctx.runner.as_ref(), project, env).await;
        RecordedRun::begin(ctx, env, command, record, tf, lock, Some(git))
    }

    /// The environment's lock, taken before anything changes: a second tfenv stops here
    /// with exit 4 — or, with a lock timeout, waits for the first one to finish (an
    /// interrupt while it waits ends the run unrecorded: it held nothing, changed
    /// nothing). A run found killed under it is said and recorded first.
    pub async fn lock(
        ctx: &Context,
        env: &Environment,
        command: &'static str,
        record: bool,
        wait: &LockWait,
    ) -> anyhow::Result<EnvLock> {
        let mut lock = super::wait::env_lock(ctx, env, command, record, wait).await?;
        record_killed(ctx, env, command, &mut lock);
        Ok(lock)
    }

    /// `start` for a run that asked git already, at the same time as something else, or
    /// that has no use for it (`None`: a plan neither records nor changes anything).
    pub fn begin(
        ctx: &Context,
        env: &Environment,
        command: &'static str,
        record: bool,
        tf: &Terraform,
        lock: EnvLock,
        git: Option<anyhow::Result<Option<git::Checkout>>>,
    ) -> anyhow::Result<RecordedRun> {
        let mut run = RecordedRun {
            ledger: Ledger::start(env, command, record, Some(tf.version.to_string())),
            git: Ok(None),
            warnings: Vec::new(),
            _lock: lock,
        };
        // git stopped by the interrupt fails like a broken repository would; a production
        // deploy would then be "refused" for an unclean tree instead of interrupted.
        let interrupted = ctx.interrupts.received()
            || git.as_ref().is_some_and(|git| {
                git.as_ref().is_err_and(|err| {
                    matches!(
                        err.downcast_ref::<TfenvError>(),
                        Some(TfenvError::Interrupted)
                    )
                })
            });
        if interrupted {
            return Err(run.fail(&ctx.printer, TfenvError::Interrupted.into()));
        }
        if let Some(git) = git {
            run.ledger.git = git.as_ref().ok().cloned().flatten().map(|c| c.info);
            run.git = git;
        }
        Ok(run)
    }

    /// terraform apply starts now: from here on the state may change, and a tfenv killed
    /// from here on is recorded by the next run as such, with this run's backup and log.
    pub fn reaching_apply(&mut self) {
        self.ledger.reached_apply = true;
        let backup = self.ledger.backup.as_ref().map(|b| b.file.as_str());
        self._lock.applying(backup, self.ledger.log.as_deref());
    }

    /// The checkout's commit and changes, or why git could not say.
    pub fn git(&self) -> &anyhow::Result<Option<git::Checkout>> {
        &self.git
    }

    /// A step that failed without failing the run: said now on stderr, and kept for
    /// the run's JSON document.
    pub fn warn(&mut self, printer: &Printer, text: String) {
        printer.warn(&text);
        self.warnings.push(text);
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Records how the run ended. The outcome stands whatever happens to the record:
    /// a history that cannot be written is a warning, not a failed run.
    pub fn finish(&mut self, printer: &Printer, result: RunResult, exit: Exit) {
        if let Err(err) = self.ledger.finish(result, exit, None) {
            self.warn(
                printer,
                format!("could not record the run in history: {err:#}"),
            );
        }
    }

    /// Records a run that ended with `err` (refused, interrupted or failed, by its exit
    /// code) and hands the error back; a history that cannot be written is a warning.
    pub fn fail(&mut self, printer: &Printer, err: anyhow::Error) -> anyhow::Error {
        if let Err(write_err) = self.ledger.fail(&err) {
            self.warn(
                printer,
                format!("could not record the run in history: {write_err:#}"),
            );
        }
        err
    }
}

/// A run that held the environment's lock before and was killed (SIGKILL, a crash):
/// said on stderr, and recorded in history as `killed` (before this run's own record) if
/// it was a recorded run. Its evidence goes only once it is recorded; when history cannot
/// be written, the next run on the environment says it again.
fn record_killed(ctx: &Context, env: &Environment, command: &str, lock: &mut EnvLock) {
    let Some(killed) = lock.killed() else {
        return;
    };
    ctx.printer.warn(&killed.warning);
    if let Some(holder) = killed.holder.as_ref().filter(|h| h.recorded) {
        let found_by = format!("{command} {}", env.name);
        let record = HistoryRecord::killed(env, holder, &found_by);
        if let Err(err) = history::append(&env.artifacts_dir, &record) {
            ctx.printer.warn(&format!(
                "could not record the killed run in history ({err:#}); the next run on `{}` reports it again",
                env.name
            ));
            return;
        }
    }
    lock.settle_killed();
}
