//! `tfenv deploy`: the full pipeline (see `pipeline/`).

use crate::Context;
use crate::exit::Exit;
use crate::pipeline::{self, Apply, Mode, Request};
use crate::settings::DeploySettings;

pub async fn deploy(ctx: &Context, settings: DeploySettings) -> anyhow::Result<Exit> {
    pipeline::run(
        ctx,
        Request {
            env: settings.env,
            mode: Mode::Deploy(Apply {
                flags: settings.flags,
                allow_dirty: settings.allow_dirty,
                include_sensitive: settings.include_sensitive,
            }),
            log: settings.log,
            lock_wait: settings.lock_wait,
            summary: ctx.settings.summary_files(settings.summary.as_deref()),
        },
    )
    .await
}
