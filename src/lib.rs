//! tfenv: one binary that replaces the per-environment bash scripts around Terraform.
//! `main` parses the command line, runs one command, and maps the outcome to an exit code.

/// The hot paths, for the micro-benchmarks in `benches/hot_paths.rs` only: not an API.
#[doc(hidden)]
pub mod bench_api {
    pub use crate::artifacts::backups::{Backup, verify};
    pub use crate::terraform::plan::summarize;
    pub use crate::terraform::state::{read_header, read_header_slice};
}

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
mod settings;
mod terraform;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use console::Style;

use crate::cli::Cli;
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
        tf.color = self.settings.color_stderr;
        Ok(tf)
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    init_tracing(cli.global.verbose, cli.global.quiet);
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
    let exit = runtime.block_on(run(cli));
    // A blocked prompt thread must not keep an interrupted tfenv alive.
    runtime.shutdown_background();
    exit.into()
}

/// A command line clap rejected: its message on stderr (help and --version on stdout,
/// exit 0), and with `--output json` also the error document on stdout.
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = err.print();
        return Exit::Success.into();
    }
    let args: Vec<String> = std::env::args().collect();
    let json = args
        .windows(2)
        .any(|w| w[0] == "--output" && w[1] == "json")
        || args.iter().any(|a| a == "--output=json");
    if json {
        let message = err.to_string();
        let first = message
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ")
            .to_string();
        let doc = serde_json::json!({
            "error": { "message": first, "hint": "see `tfenv --help`", "exit_code": Exit::Usage.code() }
        });
        output::stdout_json_line(&doc);
    }
    let _ = err.print();
    Exit::Usage.into()
}

async fn run(cli: Cli) -> Exit {
    let verbosity = cli.global.verbose;
    let settings = match Settings::resolve(&cli.global) {
        Ok(settings) => settings,
        Err(err) => {
            let format = match cli.global.output {
                cli::OutputFormat::Json => output::Format::Json,
                cli::OutputFormat::Human => output::Format::Human,
            };
            return report(
                &err,
                verbosity,
                Some(&Printer::new(format, cli.global.quiet, false, false)),
            );
        }
    };
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

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
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
        .without_time()
        .try_init();
}
