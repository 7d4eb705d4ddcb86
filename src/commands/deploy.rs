//! `tfenv deploy`: the full pipeline (see `pipeline/`); with `--plan DIR`, the plan
//! bundle in DIR is checked and applied instead of a new plan.

use crate::Context;
use crate::exit::Exit;
use crate::pipeline::{self, Apply, Bundle, Mode, Request};
use crate::settings::DeploySettings;

pub async fn deploy(ctx: &Context, settings: DeploySettings) -> anyhow::Result<Exit> {
    let apply = Apply {
        flags: settings.flags,
        allow_dirty: settings.allow_dirty,
        include_sensitive: settings.include_sensitive,
        skip_promotion_check: settings.skip_promotion_check,
    };
    let mode = match &settings.bundle {
        Some(dir) => Mode::ApplyBundle(
            apply,
            Box::new(Bundle::open(dir, &settings.env)?.with_keys(settings.bundle_keys.clone())),
        ),
        None => Mode::Deploy(apply),
    };
    pipeline::run(
        ctx,
        Request {
            env: settings.env,
            mode,
            log: settings.log,
            lock_wait: settings.lock_wait,
            summary: ctx.settings.summary_files(settings.summary.as_deref()),
        },
    )
    .await
}
