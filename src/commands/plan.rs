//! `tfenv plan`: the pipeline up to the summary; nothing is applied or recorded.

use crate::Context;
use crate::exit::Exit;
use crate::pipeline::{self, Mode, Request};
use crate::settings::PlanSettings;

pub async fn plan(ctx: &Context, settings: PlanSettings) -> anyhow::Result<Exit> {
    pipeline::run(
        ctx,
        Request {
            env: settings.env,
            mode: Mode::Plan {
                detailed_exitcode: settings.detailed_exitcode,
            },
            log: settings.log,
            lock_wait: settings.lock_wait,
            summary: ctx.settings.summary_files(settings.summary.as_deref()),
        },
    )
    .await
}
