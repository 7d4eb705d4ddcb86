//! `completions` and `man`: generated from the clap tree, so they never drift from it.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Exit;

pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<Exit> {
    clap_complete::generate(shell, &mut Cli::command(), "tfenv", &mut std::io::stdout());
    Ok(Exit::Success)
}

pub fn man() -> anyhow::Result<Exit> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(Exit::Success)
}
