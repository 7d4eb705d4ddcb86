//! `tfenv refresh`: `apply -refresh-only` through the deploy pipeline.

use crate::Context;
use crate::cli::RefreshArgs;
use crate::confirm::Flags;
use crate::exit::Exit;
use crate::pipeline::{self, Mode, Request};

pub async fn refresh(ctx: &Context, args: RefreshArgs) -> anyhow::Result<Exit> {
    pipeline::run(
        ctx,
        Request {
            env: args.env,
            mode: Mode::Refresh,
            plan_only: args.dry_run,
            record: !args.dry_run,
            flags: Flags {
                yes: args.apply.approve.yes,
                confirm: args.apply.approve.confirm,
                // A refresh never destroys resources: it only records what exists.
                allow_destroy: false,
                interactive: ctx.settings.interactive,
            },
            allow_dirty: args.allow_dirty,
            include_sensitive: args.apply.include_sensitive,
            log: args.apply.log,
            detailed_exitcode: false,
        },
    )
    .await
}
