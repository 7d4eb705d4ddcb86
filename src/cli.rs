//! The command line as clap types, and nothing else. `settings.rs` turns these
//! into resolved settings; nothing below it sees clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Environments come from tfenv.toml, or are discovered from environments/<env>.backend.conf,
backend-<env>.tfbackend / terraform.tfvars.<env>, or environments/<env>/ folders.

Exit codes: 0 ok, 1 failure, 2 bad command line, 3 changes present, 4 locked,
5 refused, 6 unhealthy (status), 130 interrupted.";

/// Safe multi-environment Terraform: the right backend and var files for each
/// environment, stricter confirmation the closer you get to production.
#[derive(Debug, Parser)]
#[command(
    name = "tfenv",
    version,
    about = "tfenv — safe multi-environment Terraform (dev / staging / production)",
    long_about = None,
    after_help = AFTER_HELP,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Run as if tfenv was started in DIR.
    #[arg(short = 'C', long = "chdir", value_name = "DIR", global = true)]
    pub chdir: Option<PathBuf>,

    /// Use this tfenv.toml instead of searching upward for one.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Output format: human-readable text, or one JSON document on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Human, global = true)]
    pub output: OutputFormat,

    /// More logging on stderr (-v: debug, -vv: trace and full error details). Also TFENV_LOG.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Print only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Never use colour (also NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Never prompt; a question that needs an answer is a refusal. Implied when stdin is
    /// not a terminal or CI is set.
    #[arg(long, global = true)]
    pub non_interactive: bool,

    /// The terraform (or tofu) binary to run; overrides tfenv.toml and PATH.
    #[arg(long, value_name = "BIN", global = true)]
    pub terraform: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List environments: name, tier, layout, backend and var files.
    #[command(after_help = "Examples:\n  tfenv envs\n  tfenv envs --output json")]
    Envs,

    /// Run `terraform init` for an environment, in its own data directory.
    #[command(after_help = "\
Init is skipped when the environment was initialized with the same backend config
and var files; --reconfigure or --upgrade always run it.

Examples:
  tfenv init dev
  tfenv init production --upgrade
  tfenv init --all")]
    Init(InitArgs),

    /// Health of every environment: init, state, locks, backups, last deploy.
    #[command(after_help = "\
Read-only: status never runs `terraform init` and never writes state.
Exits 6 when any environment has a problem, so it works as a health check.

Examples:
  tfenv status
  tfenv status dev production
  tfenv status --output json | jq '.environments[] | select(.problems != [])'")]
    Status(StatusArgs),

    /// Print shell completions for SHELL to stdout.
    #[command(after_help = "\
Examples:
  tfenv completions bash > ~/.local/share/bash-completion/completions/tfenv
  tfenv completions zsh > \"${fpath[1]}/_tfenv\"")]
    Completions {
        /// The shell to generate completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff) to stdout.
    #[command(after_help = "Example:\n  tfenv man > ~/.local/share/man/man1/tfenv.1")]
    Man,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The environment to initialize (a name or an alias).
    #[arg(
        value_name = "ENV",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub env: Option<String>,

    /// Initialize every environment.
    #[arg(long)]
    pub all: bool,

    /// Pass -reconfigure: use the backend config as it is now, without migrating state.
    #[arg(long)]
    pub reconfigure: bool,

    /// Pass -upgrade: pick the newest allowed provider and module versions.
    #[arg(long)]
    pub upgrade: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Environments to check (default: all).
    #[arg(value_name = "ENV")]
    pub envs: Vec<String>,

    /// How many environments to check at once (default: number of CPUs × 2).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
