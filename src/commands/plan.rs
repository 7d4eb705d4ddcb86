//! `tfenv plan`: the pipeline up to the summary; nothing is applied or recorded. With
//! `--out DIR`, the plan is kept as a plan bundle for `deploy --plan`.

use std::path::PathBuf;

use crate::Context;
use crate::exit::Exit;
use crate::pipeline::{self, Mode, Request};
use crate::settings::PlanSettings;

pub async fn plan(ctx: &Context, settings: PlanSettings) -> anyhow::Result<Exit> {
    plan_env(ctx, &settings, settings.env.clone(), settings.out.clone()).await
}

/// One environment's plan; `out` is its own bundle folder. Planning several
/// environments with `--out DIR` gives each `DIR/<env>/`.
async fn plan_env(
    ctx: &Context,
    settings: &PlanSettings,
    env: String,
    out: Option<PathBuf>,
) -> anyhow::Result<Exit> {
    pipeline::run(
        ctx,
        Request {
            env,
            mode: Mode::Plan {
                detailed_exitcode: settings.detailed_exitcode,
                out,
            },
            log: settings.log,
            lock_wait: settings.lock_wait,
            summary: ctx.settings.summary_files(settings.summary.as_deref()),
        },
    )
    .await
}
