//! What a command needs from the outside world (settings, printer, process runner,
//! interrupts) and the two things every command does with it: find terraform, and
//! initialize an environment. May use: settings, gitignore, terraform, confirm and below.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::backend::Backend;
use crate::confirm::{Prompter, TerminalPrompter};
use crate::gitignore;
use crate::output::{Block, Printer};
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
    gitignore_offered: Arc<AtomicBool>,
    /// Held while `terraform init` runs: one init at a time in this process (see
    /// `ensure_init`).
    init_serial: Arc<tokio::sync::Mutex<()>>,
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
            gitignore_offered: Arc::new(AtomicBool::new(false)),
            init_serial: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The context of one environment among several run at once: the same settings,
    /// runner, prompter and interrupts, one init at a time with the others, and a printer
    /// that keeps every line (tfenv's and terraform's) in `block`, printed when it ends.
    pub fn for_block(&self, block: Block) -> Context {
        Context {
            settings: self.settings.clone(),
            printer: self.printer.keeping_in(block),
            runner: self.runner.clone(),
            prompter: self.prompter.clone(),
            interrupts: self.interrupts.clone(),
            gitignore_offered: self.gitignore_offered.clone(),
            init_serial: self.init_serial.clone(),
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
        tf.block = self.printer.block().cloned();
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
        // A backend config pointed elsewhere while the old place holds the state:
        // terraform would stop with "Backend configuration changed"; tfenv says what to
        // do (`migrate`, or `init --reconfigure`, which abandons that state).
        // Nothing to lose at the old place: reconfigure, said in one line.
        let mut options = options;
        if !options.reconfigure && !options.migrate {
            match crate::terraform::moved::guard(env, backend, project).await? {
                crate::terraform::moved::Guard::Clear => {}
                crate::terraform::moved::Guard::Moved(moved) => return Err(moved.error(env)),
                crate::terraform::moved::Guard::Reconfigure(why) => {
                    self.printer.progress(&format!(
                        "{}: {why}: reinitializing with the new backend config (init -reconfigure)",
                        env.name
                    ));
                    options.reconfigure = true;
                }
            }
        }
        self.offer_gitignore(project).await?;
        // One init at a time. Environments share terraform's plugin cache
        // (TF_PLUGIN_CACHE_DIR), and terraform does not make installing into it safe for
        // two processes at once: two inits downloading the same provider write the same
        // cache entry and one of them fails (or links a half-written binary). Plans and
        // applies only read the cache, so `plan --all` runs the inits one after the
        // other and the plans side by side; an environment already initialized never
        // waits here. (Per provider set would allow more, but inits that find the cache
        // filled take about a second each: not worth the bookkeeping.)
        let _one_at_a_time = self.init_serial.lock().await;
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

    /// One `terraform init` at a time in this process, for an init that does not go
    /// through `ensure_init` (`validate`'s `init -backend=false`): hold the guard while it runs.
    pub async fn one_init_at_a_time(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.init_serial.lock().await
    }

    /// The .gitignore offer of a command that never prompts (`drift`, run unattended at
    /// night), made before its environments start: said as a warning, never asked, even
    /// on a terminal (`warn` false: not even said); the inits after it make no offer.
    pub async fn warn_gitignore(&self, project: &Project, warn: bool) -> anyhow::Result<()> {
        if !self.gitignore_offered.swap(true, Ordering::SeqCst) && warn {
            gitignore::offer(
                self.runner.as_ref(),
                &self.printer,
                self.prompter.clone(),
                false,
                project,
            )
            .await?;
        }
        Ok(())
    }

    /// The offer to git-ignore `state/` and `.terraform/`, made once per run, before the
    /// first real init. A run over several environments makes it before they start, so
    /// that its question is never kept in one environment's block.
    pub async fn offer_gitignore(&self, project: &Project) -> anyhow::Result<()> {
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
        Ok(())
    }
}
