//! Plan bundles in the shared ledger (DESIGN.md §10, §12): `plan <env> --publish` uploads
//! the bundle it wrote to `plans/<ID>/` under the ledger folder beside the state
//! (`<state key>.tfenv/`), and `deploy <env> --plan ledger:<ID>` downloads it into a
//! private folder under `state/<env>/` and applies it exactly as a bundle folder.
//!
//! Objects are written create-only and `bundle.json` last: a plan whose upload stopped
//! half-way has no `bundle.json`, is never listed and never applied.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::bundle;
use crate::backend::store::{Body, Created, Store};
use crate::backend::{Backend, BackendKind};
use crate::error::TfenvError;
use crate::files;
use crate::git_info::GitInfo;
use crate::process::Runner;
use crate::project::{Environment, LedgerMode, Project};

/// The folder of published plans in the ledger folder.
pub const PLANS: &str = "plans/";

/// How many IDs the error for an unknown one lists.
const LISTED: usize = 5;

/// The files of a bundle, in the order they are uploaded: `bundle.json` last.
const UPLOADED: [&str; 5] = [
    bundle::PLAN,
    bundle::PLAN_JSON,
    bundle::PLAN_AGE,
    bundle::PLAN_JSON_AGE,
    bundle::META,
];

/// A plan published to the shared ledger, as the JSON document of `plan` names it.
#[derive(Clone, Debug, Serialize)]
pub struct Published {
    /// What `deploy <env> --plan ledger:<ID>` takes.
    pub id: String,
    /// The folder of its objects: `s3://bucket/<state key>.tfenv/plans/<ID>/`.
    pub location: String,
    /// The sha256 of its bundle.json, as history records it when it is applied.
    pub sha256: String,
    pub encrypted: bool,
}

/// The store a plan of `env` is published to or read from: the shared ledger's, or a
/// usage error (exit 2) saying what to set. `what` is the flag, for the message.
pub fn store(
    project: &Project,
    env: &Environment,
    backend: &Backend,
    runner: Arc<dyn Runner>,
    what: &str,
) -> anyhow::Result<Store> {
    if project.ledger != LedgerMode::Backend {
        return Err(TfenvError::usage(
            format!(
                "{what} needs the shared ledger, and this project keeps its ledger on this machine (`ledger = \"local\"`)"
            ),
            Some(format!(
                "set `ledger = \"backend\"` under `[project]` in `{}` (see docs/ci.md), or keep the bundle yourself: `tfenv plan {} --out DIR --encrypt`",
                project
                    .config_file
                    .as_deref()
                    .map_or_else(|| "tfenv.toml".to_string(), |file| project.show(file)),
                env.name
            )),
        )
        .into());
    }
    match backend.store(runner) {
        Some(store) => Ok(store),
        None => {
            let why = match &backend.kind {
                BackendKind::Local => format!(
                    "`{}` has a local backend: there is no shared storage to keep plans in",
                    env.name
                ),
                kind => format!(
                    "`{}` has a `{kind}` backend: tfenv keeps a shared ledger only in s3, azurerm and gcs backends",
                    env.name
                ),
            };
            Err(TfenvError::usage(
                format!("{what}: {why}"),
                Some(format!(
                    "keep the bundle yourself: `tfenv plan {} --out DIR --encrypt`, then `tfenv deploy {} --plan DIR`",
                    env.name, env.name
                )),
            )
            .into())
        }
    }
}

/// A new plan's ID: sortable by time, unique (`<UTC time>-<short commit>-<6 hex>`).
pub fn new_id(created: DateTime<Utc>, git: Option<&GitInfo>) -> String {
    let commit = git.map_or("nogit", |git| git.commit.get(..7).unwrap_or(&git.commit));
    format!(
        "{}-{commit}-{}",
        created.format("%Y%m%dT%H%M%SZ"),
        random_hex()
    )
}

/// Six hex digits from the OS's random source (the time and pid when it cannot be read).
fn random_hex() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 3];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        let seed = format!(
            "{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)
        );
        let sum = bundle::sha256(seed.as_bytes());
        return sum[..6].to_string();
    }
    hex::encode(bytes)
}

/// Uploads the bundle in `dir` to `plans/<id>/`, each file create-only, bundle.json last.
/// A failure is an error saying that nothing usable was published.
pub async fn upload(store: &Store, id: &str, dir: &Path) -> anyhow::Result<String> {
    let location = format!("{}{PLANS}{id}/", store.location());
    let failed = |why: anyhow::Error| -> anyhow::Error {
        why.context(format!(
            "publishing the plan as `{id}` failed, so it is not published (a plan without bundle.json is never applied)"
        ))
    };
    for name in UPLOADED {
        let file = dir.join(name);
        if !file.is_file() {
            continue;
        }
        let created = store
            .create(&format!("{PLANS}{id}/{name}"), Body::File(&file))
            .await
            .map_err(failed)?;
        if created == Created::Exists {
            return Err(failed(anyhow::anyhow!(
                "`{location}{name}` exists already (objects there are never replaced)"
            )));
        }
    }
    Ok(location)
}

/// Downloads the published plan `id` of `env` into `dest` (a new private folder): only a
/// bundle's files. Unknown: a usage error listing the newest published plans; objects
/// without bundle.json (an upload that stopped): refused.
pub async fn download(
    store: &Store,
    env: &Environment,
    id: &str,
    dest: &Path,
) -> anyhow::Result<()> {
    let prefix = format!("{PLANS}{id}/");
    let objects = store.list(&prefix).await?;
    let names: Vec<&str> = objects
        .iter()
        .filter_map(|o| o.name.strip_prefix(&prefix))
        .collect();
    if names.is_empty() {
        let newest = newest(store, LISTED).await;
        let hint = match newest {
            Ok(ids) if ids.is_empty() => format!(
                "`{}{PLANS}` holds no published plan: publish one with `tfenv plan {} --publish`",
                store.location(),
                env.name
            ),
            Ok(ids) => format!(
                "the newest published plans of `{}`: {}; publish a new one with `tfenv plan {} --publish`",
                env.name,
                ids.join(", "),
                env.name
            ),
            Err(err) => format!(
                "the published plans could not be listed ({err:#}); publish one with `tfenv plan {} --publish`",
                env.name
            ),
        };
        return Err(TfenvError::usage(
            format!(
                "--plan `ledger:{id}`: no published plan `{id}` in `{}{PLANS}`",
                store.location()
            ),
            Some(hint),
        )
        .into());
    }
    if !names.contains(&bundle::META) {
        return Err(TfenvError::Refused {
            message: format!(
                "published plan `{id}` is incomplete: `{}{prefix}` has no {} (its upload did not finish)",
                store.location(),
                bundle::META
            ),
            hint: Some(format!(
                "plan and publish again: `tfenv plan {} --publish`",
                env.name
            )),
        }
        .into());
    }
    files::ensure_private_dir(dest)?;
    for name in UPLOADED.iter().filter(|n| names.contains(n)) {
        // Gone since the listing: the bundle's check says which file is missing.
        store
            .download(&format!("{prefix}{name}"), &dest.join(name))
            .await?;
    }
    Ok(())
}

/// The IDs of the newest complete published plans (with bundle.json), newest first.
pub async fn newest(store: &Store, max: usize) -> anyhow::Result<Vec<String>> {
    let objects = store.list(PLANS).await?;
    let mut ids: Vec<String> = objects
        .iter()
        .filter_map(|o| {
            let rest = o.name.strip_prefix(PLANS)?;
            let (id, file) = rest.split_once('/')?;
            (file == bundle::META).then(|| id.to_string())
        })
        .collect();
    ids.sort();
    ids.reverse();
    ids.truncate(max);
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_id_sorts_by_time_and_names_the_commit() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let git = GitInfo {
            commit: "4f2c9e1d0b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e".to_string(),
            dirty: false,
        };
        let first = new_id(at("2026-11-30T12:00:00Z"), Some(&git));
        let second = new_id(at("2026-11-30T12:00:01Z"), None);
        assert!(first.starts_with("20261130T120000Z-4f2c9e1-"), "{first}");
        assert!(second.starts_with("20261130T120001Z-nogit-"), "{second}");
        assert!(first < second);
        let random = first.rsplit('-').next().unwrap();
        assert_eq!(random.len(), 6);
        assert!(random.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(
            new_id(at("2026-11-30T12:00:00Z"), Some(&git)),
            new_id(at("2026-11-30T12:00:00Z"), Some(&git))
        );
    }
}
