//! `tfenv deploy`: the full pipeline (see `pipeline/`); with `--plan DIR`, the plan
//! bundle in DIR is checked and applied instead of a new plan; with `--plan ledger:<ID>`,
//! the bundle `plan --publish` put in the shared ledger, downloaded first into a private
//! folder under `state/<env>/` that is removed on every way out.

use crate::Context;
use crate::backend::Backends;
use crate::exit::Exit;
use crate::files;
use crate::pipeline::{self, Apply, Bundle, Mode, Request, published};
use crate::settings::{DeploySettings, LEDGER_PREFIX, PlanSource};

pub async fn deploy(ctx: &Context, settings: DeploySettings) -> anyhow::Result<Exit> {
    let apply = Apply {
        flags: settings.flags,
        allow_dirty: settings.allow_dirty,
        include_sensitive: settings.include_sensitive,
        skip_promotion_check: settings.skip_promotion_check,
    };
    // The downloaded bundle's folder lives until the run has ended, whichever way.
    let mut downloaded = None;
    let mode = match &settings.bundle {
        Some(PlanSource::Dir(dir)) => Mode::ApplyBundle(
            apply,
            Box::new(Bundle::open(dir, &settings.env)?.with_keys(settings.bundle_keys.clone())),
        ),
        Some(PlanSource::Ledger(id)) => {
            let temp = download(ctx, &settings.env, id, settings.ledger_timeout).await?;
            let label = format!("{LEDGER_PREFIX}{id}");
            let bundle = Bundle::open_published(temp.path(), &settings.env, &label)?
                .with_keys(settings.bundle_keys.clone());
            downloaded = Some(temp);
            Mode::ApplyBundle(apply, Box::new(bundle))
        }
        None => Mode::Deploy(apply),
    };
    let exit = pipeline::run(
        ctx,
        Request {
            env: settings.env,
            mode,
            log: settings.log,
            lock_wait: settings.lock_wait,
            ledger_timeout: settings.ledger_timeout,
            summary: ctx.settings.summary_files(settings.summary.as_deref()),
        },
    )
    .await;
    drop(downloaded);
    exit
}

/// The published plan `id` of `env`, downloaded into a new private folder (0700, files
/// 0600) under `state/<env>/`: removed when dropped.
async fn download(
    ctx: &Context,
    env: &str,
    id: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<tempfile::TempDir> {
    let project = ctx.project()?;
    let env = project.environment(env)?;
    let backend = Backends::default().resolve(env, &project)?;
    let what = format!("--plan `{LEDGER_PREFIX}{id}`");
    let store =
        published::store(&project, env, &backend, ctx.runner.clone(), &what)?.with_timeout(timeout);
    files::ensure_private_dir(&env.artifacts_dir)?;
    let temp = tempfile::Builder::new()
        .prefix(".published-")
        .tempdir_in(&env.artifacts_dir)
        .map_err(|err| {
            anyhow::anyhow!(
                "creating a temporary folder in `{}`: {err}",
                env.artifacts_dir.display()
            )
        })?;
    ctx.printer.progress(&format!(
        "{}: downloading published plan `{id}` from `{}`",
        env.name,
        store.location()
    ));
    published::download(&store, env, id, temp.path()).await?;
    Ok(temp)
}
