//! What a command needs from the outside world (settings, printer, process runner,
//! interrupts) and the two things every command does with it: find terraform, and
//! initialize an environment. May use: settings, gitignore, terraform, confirm and below.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::backend::Backend;
use crate::confirm::{Prompter, TerminalPrompter};
use crate::gitignore;
use crate::output::Printer;
use crate::process::{Interrupts, Runner};
use crate::project::{Environment, Project};
use crate::settings::GlobalSettings;
use crate::terraform::{InitOptions, InitOutcome, RunLog, Terraform};

/// Everything a command needs from the outside world.
pub struct Context {
    pub settings: GlobalSettings,
    pub printer: Printer,
    pub runner: Arc<dyn Runner>,
    /// Asks the questions a person answers (tier confirmations, the .gitignore offer):
    /// the terminal, or a test's scripted answers.
    pub prompter: Arc<dyn Prompter>,
    pub interrupts: Interrupts,
    /// The .gitignore offer was made in this run (it is made once, before the first init).
    gitignore_offered: AtomicBool,
}

impl Context {
    pub fn new(
        settings: GlobalSettings,
        printer: Printer,
        runner: Arc<dyn Runner>,
        interrupts: Interrupts,
    ) -> Context {
        Context {
            settings,
            printer,
            runner,
            prompter: Arc::new(TerminalPrompter),
            interrupts,
            gitignore_offered: AtomicBool::new(false),
        }
    }

    pub fn project(&self) -> anyhow::Result<Project> {
        let project = Project::load(&self.settings.cwd, self.settings.config.as_deref())?;
        if let Some(config) = &project.shadowed_config {
            self.printer.warn(&format!(
                "using the environments found in `{}`, not `{}` further up (the nearest project wins); to use that file, run from its folder or pass --config {}",
                project.root.display(),
                config.display(),
                config.display()
            ));
        }
        Ok(project)
    }

    pub async fn terraform(&self, project: &Project) -> anyhow::Result<Terraform> {
        let bin = self.settings.terraform_binary(project)?;
        let mut tf = Terraform::locate(bin, project, self.runner.clone()).await?;
        let output = &self.settings.output;
        tf.echo = output.verbosity > 0 && !self.printer.is_json();
        tf.stream = !output.quiet;
        tf.full_errors = output.verbosity >= 2;
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
        if !Terraform::needs_init(env, backend, options)? {
            return Ok(InitOutcome::Skipped);
        }
        if !self.gitignore_offered.swap(true, Ordering::SeqCst) {
            gitignore::offer(
                self.runner.as_ref(),
                &self.printer,
                self.prompter.clone(),
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
