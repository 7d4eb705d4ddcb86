//! One module per command. Each composes project, backend, terraform and output; none
//! reaches into another. May use any module below (lib.rs lists them).

mod backup;
mod deploy;
mod envs;
mod history;
mod init;
mod lock;
mod meta;
mod outputs;
mod plan;
mod prune;
mod refresh;
mod restore;
mod status;
mod unlock;
mod verify;

use crate::Context;
use crate::cli::{Command, ConfirmArgs};
use crate::confirm::Flags;
use crate::exit::Exit;

pub async fn dispatch(ctx: &Context, command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Envs => envs::envs(ctx),
        Command::Init(args) => init::init(ctx, args).await,
        Command::Status(args) => status::status(ctx, args).await,
        Command::Plan(args) => plan::plan(ctx, args).await,
        Command::Deploy(args) => deploy::deploy(ctx, args).await,
        Command::Refresh(args) => refresh::refresh(ctx, args).await,
        Command::Outputs(args) => outputs::outputs(ctx, args).await,
        Command::History(args) => history::history(ctx, args).await,
        Command::Backup(args) => backup::backup(ctx, args).await,
        Command::Backups(args) => backup::list(ctx, args).await,
        Command::Verify(args) => verify::verify(ctx, args).await,
        Command::Restore(args) => restore::restore(ctx, args).await,
        Command::Prune(args) => prune::prune(ctx, args).await,
        Command::Lock(args) => lock::lock(ctx, args).await,
        Command::Unlock(args) => unlock::unlock(ctx, args).await,
        Command::Completions { shell } => meta::completions(ctx, shell),
        Command::Man => meta::man(ctx),
    }
}

/// The approval flags of a command that changes or deletes something (never destroys).
fn flags(ctx: &Context, approve: &ConfirmArgs) -> Flags {
    Flags {
        yes: approve.yes,
        confirm: approve.confirm.clone(),
        allow_destroy: false,
        interactive: ctx.settings.interactive,
    }
}
