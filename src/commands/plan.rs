//! `tfenv plan`: the pipeline up to the summary; nothing is applied or recorded.

use crate::Context;
use crate::cli::PlanArgs;
use crate::confirm::Flags;
use crate::exit::Exit;
use crate::pipeline::{self, Mode, Request};

pub async fn plan(ctx: &Context, args: PlanArgs) -> anyhow::Result<Exit> {
    pipeline::run(
        ctx,
        Request {
            env: args.env,
            mode: Mode::Deploy,
            plan_only: true,
            record: false,
            flags: Flags::default(),
            allow_dirty: true,
            include_sensitive: false,
            log: args.log,
            detailed_exitcode: args.detailed_exitcode,
        },
    )
    .await
}
