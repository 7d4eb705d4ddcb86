//! tfenv's own tooling, run as `cargo xtask <task>` (the alias is in .cargo/config.toml).
//! Today one task: `bench`, the benchmark harness that writes docs/performance.md.

mod bench;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "tfenv's project tasks"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Measure tfenv against what scripts do (start-up, status, backups, locks,
    /// deploys) and print the figures; `--write-doc` rewrites docs/performance.md.
    Bench(bench::Args),
    /// Toggle `beta_ui` between `true` and `false` in a var file: the change each deploy
    /// run applies (run by hyperfine before each timed deploy).
    #[command(hide = true)]
    FlipVar { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Bench(args) => bench::run(&args),
        Task::FlipVar { file } => bench::deploy::flip_var_file(&file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
