//! The versions the backend's bucket keeps of the state object (DESIGN.md §12 "Bucket
//! versions"): `tfenv backups <env> --versions` lists them, and `tfenv restore <env>
//! version:<ID>` first downloads one into the environment's backups (a backup like any
//! other: manifest line, SHA-256, reason `bucket-version <ID>`) and then restores that
//! backup through the normal path.

use std::io::{Read, Write};

use anyhow::Context as _;

use chrono::Utc;
use futures_util::StreamExt;
use indicatif::HumanBytes;
use serde::Serialize;

use crate::Context;
use crate::age::Age;
use crate::artifacts::backups::{self, Backup};
use crate::backend::store::{Store, Version};
use crate::backend::{BackendKind, Backends};
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::output;
use crate::project::{Environment, Project};
use crate::terraform::state::{self, HeadFields};

/// What `restore` takes as a bucket version: `version:<ID>`.
pub const PREFIX: &str = "version:";

/// How much of each version is read for its serial and lineage: terraform writes them
/// in the first lines.
const HEAD_BYTES: u64 = 1024;
/// How many versions' first bytes are read at once.
const HEAD_READS: usize = 8;

#[derive(Serialize)]
struct Listed {
    id: String,
    modified: Option<chrono::DateTime<Utc>>,
    age_seconds: Option<i64>,
    bytes: u64,
    latest: bool,
    deleted: bool,
    /// From the version's first bytes; `null` when they could not be read.
    serial: Option<u64>,
    lineage: Option<String>,
    terraform_version: Option<String>,
}

#[derive(Serialize)]
struct Report {
    environment: String,
    state: String,
    versions: Vec<Listed>,
    /// Older versions not shown (`--limit`; 0 with `--limit 0`).
    more: usize,
    warnings: Vec<String>,
}

/// The store of `env`'s backend, or the error saying versions need a remote backend.
fn store(ctx: &Context, project: &Project, env: &Environment) -> anyhow::Result<Store> {
    let backend = Backends::default().resolve(env, project)?;
    backend.store(ctx.runner.clone()).ok_or_else(|| {
        let what = match backend.kind {
            BackendKind::Local => "the local backend".to_string(),
            ref other => format!("the `{other}` backend"),
        };
        TfenvError::usage(
            format!(
                "`{}` uses {what}: state versions are a remote-backend feature (s3, azurerm, gcs with versioning)",
                env.name
            ),
            Some(format!(
                "list the backups tfenv took with `tfenv backups {}`",
                env.name
            )),
        )
        .into()
    })
}

/// `tfenv backups <env> --versions`.
/// The newest `limit` versions (0: all) are shown, and only their first bytes are read.
pub async fn list(
    ctx: &Context,
    project: &Project,
    env: &Environment,
    limit: usize,
    timeout: std::time::Duration,
) -> anyhow::Result<Exit> {
    let store = store(ctx, project, env)?.with_timeout(timeout);
    let mut versions = store.versions().await?;
    let all_null = !versions.is_empty() && versions.iter().all(|v| v.id == "null");
    let more = match limit {
        0 => 0,
        limit => versions.len().saturating_sub(limit),
    };
    versions.truncate(versions.len() - more);
    let heads: Vec<anyhow::Result<HeadFields>> = futures_util::stream::iter(&versions)
        .map(|v| head(&store, v))
        .buffered(HEAD_READS)
        .collect()
        .await;
    let mut warnings = Vec::new();
    let failed: Vec<&anyhow::Error> = heads.iter().filter_map(|h| h.as_ref().err()).collect();
    if let Some(first) = failed.first() {
        warnings.push(format!(
            "the serial and lineage of {} version(s) could not be read: {first:#}",
            failed.len()
        ));
    }
    if all_null {
        warnings.push(format!(
            "the bucket keeps no versions of `{}` (versioning is off): only the current state is there",
            store.state_location()
        ));
    }
    let now = Utc::now();
    let listed: Vec<Listed> = versions
        .into_iter()
        .zip(heads)
        .map(|(v, head)| {
            let head = head.unwrap_or_default();
            Listed {
                age_seconds: v.modified.map(|t| (now - t).num_seconds()),
                id: v.id,
                modified: v.modified,
                bytes: v.bytes,
                latest: v.latest,
                deleted: v.deleted,
                serial: head.serial,
                lineage: head.lineage,
                terraform_version: head.terraform_version,
            }
        })
        .collect();
    if ctx.printer.is_json() {
        ctx.printer.json(&Report {
            environment: env.name.clone(),
            state: store.state_location(),
            versions: listed,
            more,
            warnings,
        })?;
        return Ok(Exit::Success);
    }
    for warning in &warnings {
        ctx.printer.warn(warning);
    }
    if listed.is_empty() {
        ctx.printer.result(&format!(
            "`{}` has no state at `{}` yet: no versions",
            env.name,
            store.state_location()
        ));
        return Ok(Exit::Success);
    }
    let dash = || "-".to_string();
    let mut rows = vec![
        [
            "VERSION",
            "MODIFIED (UTC)",
            "AGE",
            "SIZE",
            "SERIAL",
            "LINEAGE",
            "",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for l in &listed {
        rows.push(vec![
            l.id.clone(),
            l.modified
                .map_or_else(dash, |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
            l.age_seconds.map_or_else(dash, |a| Age(a).to_string()),
            if l.deleted {
                dash()
            } else {
                HumanBytes(l.bytes).to_string()
            },
            l.serial.map_or_else(dash, |s| s.to_string()),
            l.lineage
                .as_ref()
                .map_or_else(dash, |s| s.chars().take(8).collect()),
            match (l.deleted, l.latest) {
                (true, true) => "delete marker (latest)",
                (true, false) => "delete marker",
                (false, true) => "latest",
                (false, false) => "",
            }
            .to_string(),
        ]);
    }
    let more = match more {
        0 => String::new(),
        1 => "\n1 more version: --limit 0 to see all".to_string(),
        n => format!("\n{n} more versions: --limit 0 to see all"),
    };
    ctx.printer.result(&format!(
        "Versions of `{}`, newest first:\n{}{more}\nRestore one with `tfenv restore {} version:<ID>`.",
        store.state_location(),
        output::table(&rows).trim_end(),
        env.name
    ));
    Ok(Exit::Success)
}

/// The serial and lineage in the first bytes of version `v` (nothing for a delete marker).
async fn head(store: &Store, v: &Version) -> anyhow::Result<HeadFields> {
    if v.deleted {
        return Ok(HeadFields::default());
    }
    let bytes = store.version_head(&v.id, HEAD_BYTES.min(v.bytes)).await?;
    Ok(state::read_head(&bytes))
}

/// `tfenv restore <env> version:<ID>`: downloads version `id` of `env`'s state object
/// into its backups (checked to be a state, hashed, with its manifest line) and returns
/// that backup, for the normal restore path to restore — and whether it is new: a
/// backup of the same version with the same SHA-256 (an earlier attempt's) is reused.
pub async fn into_backup(
    ctx: &Context,
    project: &Project,
    env: &Environment,
    id: &str,
) -> anyhow::Result<(Backup, bool)> {
    let store = store(ctx, project, env)?;
    let listing = format!("tfenv backups {} --versions", env.name);
    let versions = store.versions().await?;
    let Some(version) = versions.iter().find(|v| v.id == id) else {
        return Err(TfenvError::usage(
            format!("`{id}` is not a version of `{}`", store.state_location()),
            Some(format!("list its versions with `{listing}`")),
        )
        .into());
    };
    if version.deleted {
        return Err(TfenvError::Refused {
            message: format!(
                "version `{id}` of `{}` is a delete marker: it holds no state to restore",
                store.state_location()
            ),
            hint: Some(format!(
                "pick a version that holds a state from `{listing}`"
            )),
        }
        .into());
    }
    ctx.printer.progress(&format!(
        "{}: downloading version `{id}` of `{}`",
        env.name,
        store.state_location()
    ));
    let dir = backups::dir(env);
    let owned = id.to_string();
    let downloader = store.clone();
    let (location, other) = (store.state_location(), listing.clone());
    let pulled = backups::pull_state(env, |mut sink| async move {
        let id = owned;
        // The version lands in a private folder of backups/ first, then is copied into the
        // backup's file and read for its header in one pass.
        let scratch = tempfile::Builder::new()
            .prefix(".version-")
            .tempdir_in(&dir)
            .with_context(|| format!("creating a folder in `{}`", dir.display()))?;
        let file = scratch.path().join("state");
        downloader.download_version(&id, &file).await?;
        tokio::task::spawn_blocking(move || {
            let reader = Copying {
                inner: std::fs::File::open(&file)?,
                sink: &mut sink,
            };
            let header = state::read_header(reader);
            sink.flush()?;
            drop(scratch);
            header.map_err(|err| match err {
                state::StateError::Invalid(_) => TfenvError::Refused {
                    message: format!("version `{id}` of `{location}`: {err}"),
                    hint: Some(format!("pick another version from `{other}`")),
                }
                .into(),
                state::StateError::Io(_) => anyhow::anyhow!("reading version `{id}`: {err}"),
            })
        })
        .await?
    })
    .await?;
    let Some(pulled) = pulled else {
        return Err(TfenvError::Refused {
            message: format!(
                "version `{id}` of `{}` is empty: it holds no state to restore",
                store.state_location()
            ),
            hint: Some(format!("pick another version from `{listing}`")),
        }
        .into());
    };
    let reason = format!("bucket-version {id}");
    let dir = backups::dir(env);
    let earlier = backups::manifest(&dir)?
        .records
        .into_iter()
        .rev()
        .find(|b| {
            b.reason == reason && b.sha256 == pulled.sha256() && backups::verify(&dir, b).is_ok()
        });
    if let Some(backup) = earlier {
        ctx.printer.progress(&format!(
            "{}: version `{id}` is already backup {} (serial {})",
            env.name, backup.file, backup.serial
        ));
        return Ok((backup, false));
    }
    let backup = pulled.keep(&reason)?;
    ctx.printer.progress(&format!(
        "{}: version `{id}` is backup {} (serial {})",
        env.name, backup.file, backup.serial
    ));
    Ok((backup, true))
}

/// A `Read` that hands everything it reads to `sink` too.
struct Copying<'a, R> {
    inner: R,
    sink: &'a mut Box<dyn std::io::Write + Send>,
}

impl<R: Read> Read for Copying<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}
