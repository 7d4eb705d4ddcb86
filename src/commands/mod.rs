//! One module per command. Each composes project, backend, terraform and output; none
//! reaches into another.

mod envs;
mod init;
mod meta;
mod status;

use crate::Context;
use crate::cli::Command;
use crate::exit::Exit;

pub async fn dispatch(ctx: &Context, command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Envs => envs::envs(ctx),
        Command::Init(args) => init::init(ctx, args).await,
        Command::Status(args) => status::status(ctx, args).await,
        Command::Completions { shell } => meta::completions(shell),
        Command::Man => meta::man(),
    }
}
