//! `tfenv refresh`: `apply -refresh-only` through the deploy pipeline.

use crate::Context;
use crate::cli::RefreshArgs;
use crate::confirm::Flags;
use crate::exit::Exit;
use crate::pipeline::{self, Apply, Mode, Request};

pub async fn refresh(ctx: &Context, args: RefreshArgs) -> anyhow::Result<Exit> {
    let apply = Apply {
        flags: Flags {
            yes: args.apply.approve.yes,
            confirm: args.apply.approve.confirm,
            // A refresh never destroys resources: it only records what exists.
            allow_destroy: false,
            interactive: ctx.settings.interactive,
        },
        allow_dirty: args.allow_dirty,
        include_sensitive: args.apply.include_sensitive,
    };
    pipeline::run(
        ctx,
        Request {
            env: args.env,
            // --dry-run stops after the summary.
            mode: Mode::Refresh((!args.dry_run).then_some(apply)),
            log: args.apply.log,
        },
    )
    .await
}
