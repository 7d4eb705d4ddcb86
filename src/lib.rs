//! tfenv: one binary that replaces the per-environment bash scripts around Terraform.
//! `main` parses the command line, runs one command, and maps the outcome to an exit code.
// The deploy pipeline's future nests the AWS SDK's (lock reads): deeper than the default 128.
#![recursion_limit = "256"]

/// The hot paths, for the micro-benchmarks in `benches/hot_paths.rs` only: not an API.
#[doc(hidden)]
pub mod bench_api {
    pub use crate::artifacts::backups::{Backup, verify};
    pub use crate::terraform::plan::summarize;
    pub use crate::terraform::state::{read_header, read_header_slice};
}

// The modules, top-down by layer. Each may use only modules listed below it, never one
// above (the test in `layering.rs` fails when an import points up): no cycles.

// Commands: one file per command, each a thin composition of the layers below.
mod commands;
// A changing command's run (plan, back up, confirm, apply, record); restore's provenance check.
mod pipeline;
mod provenance;
// Hooks: the user's commands run after a deploy, a failure or a drift check.
mod hooks;
// What a command is handed: context (printer, runner, interrupts), settings, and clap's types.
mod context;
mod settings;
mod cli;
// Shell completion: environment and backup names, for any argument the tree names ENV or BACKUP.
mod complete;
// The ledger: history and backups on this machine and, shared, in the state backend.
mod ledger;
// Services, each owning one outside thing: state/, terraform, backends, .gitignore, git, prompts.
mod artifacts;
mod terraform;
mod backend;
mod gitignore;
mod git;
mod confirm;
// Foundations: the project on disk (tfenv.toml, layouts, environments) and the process runner.
mod project;
mod process;
// Leaves: small types and helpers the layers above share (atomic files, errors, exit codes, …).
mod files;
mod error;
mod exit;
mod output;
mod summary;
mod lock_info;
mod git_info;
mod age;

#[cfg(test)]
mod layering;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use console::Style;

use crate::cli::Cli;
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::output::Printer;
use crate::process::{Interrupts, TokioRunner};
use crate::settings::{GlobalSettings, OutputSettings};
pub use context::Context;

pub fn main() -> ExitCode {
    // A shell asking for completions (`TFENV_COMPLETE=bash tfenv -- tfenv deploy d`): answered
    // here, before anything is parsed or printed, and tfenv exits.
    clap_complete::CompleteEnv::with_factory(|| {
        use clap::CommandFactory;
        complete::attach(Cli::command())
    })
    .var(complete::VAR)
    .complete();
    // OS strings: an argument that is not UTF-8 is a usage error, never a panic.
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => return stdout_verdict(usage_error(&err, &args)).into(),
    };
    // How to write comes first: an error in the rest of the command line is written
    // that way too. Colour is decided there, once; console's styles (prompts) follow it.
    let output = OutputSettings::resolve(&cli.global);
    output.colors.install();
    let settings =
        match GlobalSettings::resolve_for(&cli.global, output, cli.command.reads_project()) {
            Ok(settings) => settings,
            Err(err) => return report(&err, output.verbosity, Some(&printer(&output))).into(),
        };
    init_tracing(&output);
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
    crate::process::kill_leftover_children();
    stdout_verdict(exit).into()
}

/// A command line clap did not run: help and --version on stdout (exit 0), anything
/// else a usage error on stderr (exit 2). With `--output json`, stdout gets one JSON
/// document whatever happened: the version, or the error — help is text, so a JSON
/// request for it is refused.
fn usage_error(err: &clap::Error, args: &[OsString]) -> Exit {
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
            return Exit::Success;
        }
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion if !json => {
            // clap colours it for the terminal; a failed write is decided on like any other.
            output::stdout_written(
                err.print()
                    .and_then(|()| std::io::Write::flush(&mut std::io::stdout())),
            );
            return Exit::Success;
        }
        // `tfenv help … --output json`: clap's help subcommand takes no options, but what
        // was asked for is help all the same.
        kind if kind == ErrorKind::DisplayHelp
            || (json
                && matches!(
                    kind,
                    ErrorKind::InvalidSubcommand | ErrorKind::UnknownArgument
                )
                && args.iter().skip(1).any(|a| a == "help")) =>
        {
            let asked = if args.iter().any(|a| a == "--help" || a == "-h") {
                "--help"
            } else {
                "`tfenv help`"
            };
            (
                format!("{asked} prints text, not JSON"),
                "drop --output json to read the help",
            )
        }
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
                // Its first paragraph: the message and what it lists on the lines
                // below it (the missing arguments), without the tips and usage.
                let message = err.to_string();
                let first: Vec<&str> = message
                    .lines()
                    .take_while(|l| !l.trim().is_empty())
                    .map(str::trim)
                    .collect();
                output::stdout_json_line(&usage_doc(
                    first.join(" ").trim_start_matches("error: "),
                    "see `tfenv --help`",
                ));
            }
            let _ = err.print();
            return Exit::Usage;
        }
    };
    if json {
        output::stdout_json_line(&usage_doc(&message, hint));
    }
    output::stderr_line(&format!("error: {message}\n  {hint}"));
    Exit::Usage
}

/// The exit code once stdout's fate is known. A reader that went away (`tfenv envs |
/// head -1`) is no error: quiet, like other command-line tools. Any other failed write
/// (a full disk, `/dev/full`) is said on stderr, and a run that would have exited 0
/// exits 1: its result was lost.
fn stdout_verdict(exit: Exit) -> Exit {
    match output::take_stdout_failure() {
        None => exit,
        Some(err) if err.kind() == std::io::ErrorKind::BrokenPipe => exit,
        Some(err) => {
            output::stderr_line(&format!("error: cannot write to standard output: {err}"));
            output::stderr_line(
                "  the command itself ran; only what it printed was lost: send stdout somewhere that can take it",
            );
            if exit == Exit::Success {
                Exit::Failure
            } else {
                exit
            }
        }
    }
}

/// Whether the command line asks for JSON (`--output json` or `--output=json`), read
/// from the raw arguments of a command line clap could not parse.
fn wants_json(args: &[OsString]) -> bool {
    args.windows(2)
        .any(|w| w[0] == "--output" && w[1] == "json")
        || args.iter().any(|a| a == "--output=json")
}

async fn run(cli: Cli, settings: GlobalSettings) -> Exit {
    let verbosity = settings.output.verbosity;
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
    let printer = printer(&settings.output);
    let runner = Arc::new(TokioRunner::new(interrupts.clone()));
    let ctx = Context::new(settings, printer, runner, interrupts.clone());
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
    let hint = error::hint_for(err);
    if let Some(printer) = printer.filter(|p| p.is_json() && !p.wrote_json()) {
        let _ = printer.json(&serde_json::json!({ "error": error::ErrorReport::of(err) }));
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

fn printer(output: &OutputSettings) -> Printer {
    Printer::new(
        output.format,
        output.quiet,
        output.colors.stdout,
        output.colors.stderr,
    )
}

fn init_tracing(output: &OutputSettings) {
    use tracing_subscriber::EnvFilter;
    // Only tfenv's own messages unless -vv: the AWS SDK logs a warning (with a debug
    // dump) for each credential source it could not use; tfenv says what matters itself.
    let default = match (output.quiet, output.verbosity) {
        (true, _) => "tfenv=error",
        (false, 0) => "tfenv=warn",
        (false, 1) => "tfenv=debug",
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
        .with_ansi(output.colors.stderr)
        .without_time()
        .try_init();
}
