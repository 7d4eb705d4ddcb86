//! `tfenv refresh`: `apply -refresh-only` through the deploy pipeline.

use crate::Context;
use crate::exit::Exit;
use crate::pipeline::{self, Apply, Mode, Request};
use crate::settings::RefreshSettings;

pub async fn refresh(ctx: &Context, settings: RefreshSettings) -> anyhow::Result<Exit> {
    let apply = Apply {
        flags: settings.flags,
        allow_dirty: settings.allow_dirty,
        include_sensitive: settings.include_sensitive,
        skip_promotion_check: None,
    };
    pipeline::run(
        ctx,
        Request {
            env: settings.env,
            // --dry-run stops after the summary.
            mode: Mode::Refresh((!settings.dry_run).then_some(apply)),
            log: settings.log,
            lock_wait: settings.lock_wait,
            ledger_timeout: settings.ledger_timeout,
            summary: ctx.settings.summary_files(settings.summary.as_deref()),
        },
    )
    .await
}
