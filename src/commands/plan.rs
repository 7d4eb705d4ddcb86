//! `tfenv plan`: the pipeline up to the summary; nothing is applied or recorded.

use crate::Context;
use crate::cli::PlanArgs;
use crate::exit::Exit;
use crate::pipeline::{self, Mode, Request};

pub async fn plan(ctx: &Context, args: PlanArgs) -> anyhow::Result<Exit> {
    pipeline::run(
        ctx,
        Request {
            env: args.env,
            mode: Mode::Plan {
                detailed_exitcode: args.detailed_exitcode,
            },
            log: args.log,
        },
    )
    .await
}
