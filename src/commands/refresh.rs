//! `tfenv refresh`: `apply -refresh-only` through the deploy pipeline.

use crate::Context;
use crate::exit::Exit;
use crate::pipeline::{self, Mode, Request};
use crate::settings::RefreshSettings;

pub async fn refresh(ctx: &Context, settings: RefreshSettings) -> anyhow::Result<Exit> {
    pipeline::run(
        ctx,
        Request {
            env: settings.env,
            mode: Mode::Refresh,
            plan_only: settings.dry_run,
            record: !settings.dry_run,
            flags: settings.flags,
            allow_dirty: settings.allow_dirty,
            include_sensitive: settings.include_sensitive,
            log: settings.log,
            detailed_exitcode: false,
        },
    )
    .await
}
