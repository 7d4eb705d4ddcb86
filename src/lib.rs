//! tfenv: one binary that replaces the per-environment bash scripts around Terraform.
//! `main` parses the command line, runs one command, and maps the outcome to an exit code.

mod artifacts;
mod backend;
mod cli;
mod commands;
mod confirm;
mod error;
mod exit;
mod git;
mod gitignore;
mod output;
mod pipeline;
mod process;
mod project;
mod provenance;
mod settings;
mod terraform;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use console::Style;

use crate::cli::Cli;
use crate::confirm::{Prompter, TerminalPrompter};
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::output::Printer;
use crate::process::{Interrupts, Runner, TokioRunner};
use crate::project::Project;
use crate::settings::Settings;
use crate::terraform::Terraform;

/// Everything a command needs from the outside world.
pub struct Context {
    pub settings: Settings,
    pub printer: Printer,
    pub runner: Arc<dyn Runner>,
    /// Asks the tier's confirmation questions: the terminal, or a test's answers.
    pub prompter: Arc<dyn Prompter>,
    pub interrupts: Interrupts,
}

impl Context {
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
}

pub fn main() -> ExitCode {
    // OS strings: an argument that is not UTF-8 is a usage error, never a panic.
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err, &args),
    };
    let settings = match Settings::resolve(&cli.global) {
        Ok(settings) => settings,
        Err(err) => {
            let format = match cli.global.output {
                cli::OutputFormat::Json => output::Format::Json,
                cli::OutputFormat::Human => output::Format::Human,
            };
            let printer = Printer::new(format, cli.global.quiet, false, false);
            return report(&err, cli.global.verbose, Some(&printer)).into();
        }
    };
    // Colour is decided once, in settings; console's styles (prompts) follow it too.
    console::set_colors_enabled(settings.color_stdout);
    console::set_colors_enabled_stderr(settings.color_stderr);
    init_tracing(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            crate::output::stderr_line(&format!("error: cannot start the async runtime: {err}"));
            return Exit::Failure.into();
        }
    };
    let exit = runtime.block_on(run(cli, settings));
    // A blocked prompt thread must not keep an interrupted tfenv alive.
    runtime.shutdown_background();
    exit.into()
}

/// A command line clap did not run: help and --version on stdout (exit 0), anything
/// else a usage error on stderr (exit 2). With `--output json`, stdout gets one JSON
/// document whatever happened: the version, or the error — help is text, so a JSON
/// request for it is refused.
fn usage_error(err: &clap::Error, args: &[OsString]) -> ExitCode {
    use clap::error::ErrorKind;
    let json = wants_json(args);
    let usage_doc = |message: &str, hint: &str| {
        serde_json::json!({
            "error": { "message": message, "hint": hint, "exit_code": Exit::Usage.code() }
        })
    };
    let (message, hint) = match err.kind() {
        ErrorKind::DisplayVersion if json => {
            output::stdout_json_line(&serde_json::json!({ "version": env!("CARGO_PKG_VERSION") }));
            return Exit::Success.into();
        }
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion if !json => {
            let _ = err.print();
            return Exit::Success.into();
        }
        ErrorKind::DisplayHelp => (
            "--help prints text, not JSON".to_string(),
            "drop --output json to read the help",
        ),
        ErrorKind::InvalidUtf8 => {
            let bad = args
                .iter()
                .skip(1)
                .find(|a| a.to_str().is_none())
                .map_or_else(String::new, |a| a.to_string_lossy().into_owned());
            (
                format!("argument `{bad}` is not valid UTF-8"),
                "environment names, lock IDs and backups are text; only paths (-C, --config, --terraform) may be other bytes",
            )
        }
        _ => {
            // clap's own message says best what was wrong, with the usage line.
            if json {
                let message = err.to_string();
                let first = message.lines().next().unwrap_or("");
                output::stdout_json_line(&usage_doc(
                    first.trim_start_matches("error: "),
                    "see `tfenv --help`",
                ));
            }
            let _ = err.print();
            return Exit::Usage.into();
        }
    };
    if json {
        output::stdout_json_line(&usage_doc(&message, hint));
    }
    output::stderr_line(&format!("error: {message}\n  {hint}"));
    Exit::Usage.into()
}

/// Whether the command line asks for JSON (`--output json` or `--output=json`), read
/// from the raw arguments of a command line clap could not parse.
fn wants_json(args: &[OsString]) -> bool {
    args.windows(2)
        .any(|w| w[0] == "--output" && w[1] == "json")
        || args.iter().any(|a| a == "--output=json")
}

async fn run(cli: Cli, settings: Settings) -> Exit {
    let verbosity = cli.global.verbose;
    // First, before any file is written: from here on SIGHUP, SIGQUIT, SIGTSTP and SIGXFSZ
    // are tfenv's to decide (process/signal.rs), not their default actions.
    let interrupts = match Interrupts::install() {
        Ok(interrupts) => interrupts,
        Err(err) => {
            return report(
                &anyhow::anyhow!("cannot install signal handlers: {err}"),
                verbosity,
                None,
            );
        }
    };
    let ctx = Context {
        printer: Printer::new(
            settings.format,
            settings.quiet,
            settings.color_stdout,
            settings.color_stderr,
        ),
        runner: Arc::new(TokioRunner::new(interrupts.clone())),
        prompter: Arc::new(TerminalPrompter),
        interrupts: interrupts.clone(),
        settings,
    };
    let result = tokio::select! {
        // The command first: when it handles an interrupt itself, it records why it stopped.
        biased;
        result = commands::dispatch(&ctx, cli.command) => result,
        () = interrupts.idle_interrupt() => Err(TfenvError::Interrupted.into()),
    };
    match result {
        Ok(exit) => exit,
        Err(err) => report(&err, verbosity, Some(&ctx.printer)),
    }
}

/// Prints an error once, at the top: what failed and why, then what to do.
fn report(err: &anyhow::Error, verbosity: u8, printer: Option<&Printer>) -> Exit {
    let exit = error::exit_for(err);
    if let Some(TfenvError::Reported(_)) = err.downcast_ref::<TfenvError>() {
        return exit;
    }
    let hint = error::hint_for(err);
    if let Some(printer) = printer.filter(|p| p.is_json() && !p.wrote_json()) {
        let _ = printer.json(&serde_json::json!({
            "error": { "message": format!("{err:#}"), "hint": hint, "exit_code": exit.code() }
        }));
    }
    if exit == Exit::Interrupted {
        crate::output::stderr_line("tfenv: interrupted");
        return exit;
    }
    let label = match printer {
        Some(printer) => printer.paint_err(&Style::new().red().bold(), "error:"),
        None => "error:".to_string(),
    };
    crate::output::stderr_line(&format!("{label} {err:#}"));
    if let Some(hint) = hint {
        crate::output::stderr_line(&format!("  {hint}"));
    }
    if verbosity >= 2 {
        crate::output::stderr_line(&format!("\n{err:?}"));
    }
    exit
}

fn init_tracing(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let default = match (settings.quiet, settings.verbosity) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "tfenv=debug,warn",
        (false, _) => "tfenv=trace,debug",
    };
    let filter = std::env::var("TFENV_LOG")
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(settings.color_stderr)
        .without_time()
        .try_init();
}
