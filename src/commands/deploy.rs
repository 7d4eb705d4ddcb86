//! `tfenv deploy`: the full pipeline (see `pipeline/`).

use crate::Context;
use crate::cli::DeployArgs;
use crate::confirm::Flags;
use crate::exit::Exit;
use crate::pipeline::{self, Apply, Mode, Request};

pub async fn deploy(ctx: &Context, args: DeployArgs) -> anyhow::Result<Exit> {
    pipeline::run(
        ctx,
        Request {
            env: args.env,
            mode: Mode::Deploy(Apply {
                flags: Flags {
                    yes: args.apply.approve.yes,
                    confirm: args.apply.approve.confirm,
                    allow_destroy: args.allow_destroy,
                    interactive: ctx.settings.interactive,
                },
                allow_dirty: args.allow_dirty,
                include_sensitive: args.apply.include_sensitive,
            }),
            log: args.apply.log,
        },
    )
    .await
}
