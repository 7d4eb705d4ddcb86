//! `tfenv lock`: who holds the state lock, read where the backend keeps it.

use serde::Serialize;

use crate::Context;
use crate::backend::lock::{LockState, StateLock};
use crate::backend::{BackendKind, Backends};
use crate::exit::Exit;
use crate::settings::LockSettings;

/// The LOCK_ID `unlock` takes for a leftover lock info file that names no ID (empty).
pub const NO_ID: &str = "-";

#[derive(Serialize)]
struct EnvLock {
    environment: String,
    backend: BackendKind,
    #[serde(flatten)]
    lock: Option<StateLock>,
    /// The lock's fields as null when it could not be read: the documented shape holds.
    #[serde(flatten)]
    unread: Option<Unread>,
    error: Option<String>,
}

#[derive(Default, Serialize)]
struct Unread {
    supported: Option<bool>,
    held: Option<bool>,
    stale: Option<bool>,
    holder: Option<()>,
    source: Option<String>,
    note: Option<String>,
}

pub async fn lock(ctx: &Context, settings: LockSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let all = settings.all;
    let resolved = Backends::default().resolve_all(&project, &settings.names)?;
    let items: Vec<(&crate::project::Environment, &crate::backend::Backend)> = resolved
        .iter()
        .map(|(env, backend)| (*env, backend))
        .collect();
    let read = crate::backend::read_locks(&items, ctx.runner.as_ref(), settings.timeout).await;
    let reads: Vec<(EnvLock, Option<anyhow::Error>)> = resolved
        .iter()
        .zip(read)
        .map(|((env, backend), read)| {
            let (lock, error) = match read {
                Ok(lock) => (Some(lock.relative_to(&project.root)), None),
                Err(err) => (None, Some(err)),
            };
            let entry = EnvLock {
                environment: env.name.clone(),
                backend: backend.kind.clone(),
                unread: lock.is_none().then(Unread::default),
                lock,
                error: error.as_ref().map(|e| match crate::error::hint_for(e) {
                    Some(hint) => format!("{e:#} ({hint})"),
                    None => format!("{e:#}"),
                }),
            };
            (entry, error)
        })
        .collect();
    let (locks, errors): (Vec<EnvLock>, Vec<Option<anyhow::Error>>) = reads.into_iter().unzip();
    let mut errors: Vec<anyhow::Error> = errors.into_iter().flatten().collect();

    if ctx.printer.is_json() {
        if let ([one], false) = (locks.as_slice(), all) {
            ctx.printer.json(one)?;
        } else {
            ctx.printer
                .json(&serde_json::json!({ "environments": locks }))?;
        }
        // The document says which reads failed; the exit code says that some did.
        return Ok(if errors.is_empty() {
            Exit::Success
        } else {
            Exit::Failure
        });
    }
    for l in locks.iter().filter(|l| l.lock.is_some()) {
        print_human(ctx, l);
    }
    match errors.len() {
        0 => Ok(Exit::Success),
        // A timeout already says whose lock, from which backend.
        1 if locks.len() == 1 && crate::backend::is_unreachable(&errors[0]) => {
            Err(errors.remove(0))
        }
        1 if locks.len() == 1 => Err(errors
            .remove(0)
            .context(format!("reading the lock of `{}`", locks[0].environment))),
        _ => Err(anyhow::anyhow!(
            "cannot read the lock of {}",
            locks
                .iter()
                .filter_map(|l| l
                    .error
                    .as_ref()
                    .map(|e| format!("`{}` ({e})", l.environment)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn print_human(ctx: &Context, l: &EnvLock) {
    let p = &ctx.printer;
    let name = &l.environment;
    let Some(lock) = &l.lock else {
        return;
    };
    match &lock.state {
        LockState::Unsupported(_) => {
            p.result(&format!("{name}: {}", lock.note().unwrap_or_default()));
        }
        LockState::Held(info) => {
            p.result(&format!("{name}: locked by {}", info.describe()));
            p.result(&format!("  ID:        {}", info.id));
            p.result(&format!("  Operation: {}", info.operation));
            p.result(&format!("  Who:       {}", info.who));
            p.result(&format!("  Created:   {}", info.created));
            p.result(&format!("  Version:   {}", info.version));
            p.result(&format!("  Path:      {}", info.path));
            p.result(&format!("  Source:    {}", lock.source));
            p.result(&format!(
                "  If that run is dead: tfenv unlock {name} {}",
                info.id
            ));
        }
        LockState::Stale(info) => {
            p.result(&format!(
                "{name}: not locked ({}; left by {})",
                lock.note().unwrap_or_default(),
                info.describe()
            ));
            p.result(&format!(
                "  To remove the leftover: tfenv unlock {name} {}",
                lock.id().unwrap_or(NO_ID)
            ));
        }
        LockState::StaleEmpty => {
            p.result(&format!(
                "{name}: not locked ({})",
                lock.note().unwrap_or_default()
            ));
            p.result(&format!(
                "  To remove the leftover: tfenv unlock {name} {NO_ID}"
            ));
        }
        LockState::HeldUnknown => p.result(&format!(
            "{name}: locked by an unknown holder: {}",
            lock.note().unwrap_or_default()
        )),
        LockState::Free => {
            let note = lock.note().map(|n| format!(" ({n})")).unwrap_or_default();
            p.result(&format!("{name}: not locked{note}"));
        }
    }
}
