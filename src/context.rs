//! What a command needs from the outside world (settings, printer, process runner,
//! interrupts) and the two things every command does with it: find terraform, and
//! initialize an environment. May use: settings, gitignore, terraform, confirm and below.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::backend::Backend;
use crate::confirm::TerminalPrompter;
use crate::gitignore;
use crate::output::Printer;
use crate::process::{Interrupts, Runner};
use crate::project::{Environment, Project};
use crate::settings::Settings;
use crate::terraform::{InitOptions, InitOutcome, RunLog, Terraform};

/// Everything a command needs from the outside world.
pub struct Context {
    pub settings: Settings,
    pub printer: Printer,
    pub runner: Arc<dyn Runner>,
    pub interrupts: Interrupts,
    /// The .gitignore offer was made in this run (it is made once, before the first init).
    gitignore_offered: AtomicBool,
}

impl Context {
    pub fn new(
        settings: Settings,
        printer: Printer,
        runner: Arc<dyn Runner>,
        interrupts: Interrupts,
    ) -> Context {
        Context {
            settings,
            printer,
            runner,
            interrupts,
            gitignore_offered: AtomicBool::new(false),
        }
    }

    pub fn project(&self) -> anyhow::Result<Project> {
        Project::load(&self.settings.cwd, self.settings.config.as_deref())
    }

    pub async fn terraform(&self, project: &Project) -> anyhow::Result<Terraform> {
        let mut tf = Terraform::locate(
            self.settings.terraform.as_deref(),
            &self.settings.cwd,
            project,
            self.runner.clone(),
        )
        .await?;
        tf.echo = self.settings.verbosity > 0 && !self.printer.is_json();
        tf.stream = !self.settings.quiet;
        tf.full_errors = self.settings.verbosity >= 2;
        Ok(tf)
    }

    /// Init if needed — the one way every command initializes an environment: skipped
    /// when its fingerprint is unchanged (unless a flag asks for a real run); before the
    /// first real init of this run, the offer to git-ignore `state/` and `.terraform/`.
    pub async fn ensure_init(
        &self,
        tf: &Terraform,
        project: &Project,
        env: &Environment,
        backend: &Backend,
        options: InitOptions,
        log: Option<&RunLog>,
    ) -> anyhow::Result<InitOutcome> {
        if !Terraform::needs_init(env, backend, options) {
            return Ok(InitOutcome::Skipped);
        }
        if !self.gitignore_offered.swap(true, Ordering::SeqCst) {
            gitignore::offer(
                self.runner.as_ref(),
                &self.printer,
                Arc::new(TerminalPrompter),
                self.settings.interactive,
                project,
            )
            .await?;
        }
        let message = format!("{}: terraform init", env.name);
        // A spinner would garble terraform's output when it is echoed (-v).
        let spinner = if tf.echo {
            None
        } else {
            self.printer.spinner(message.clone())
        };
        if spinner.is_none() {
            self.printer.progress(&message);
        }
        let outcome = tf.init(env, backend, options, log).await;
        if let Some(spinner) = spinner {
            spinner.finish_and_clear();
        }
        outcome
    }
}
