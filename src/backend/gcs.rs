//! The gcs backend: state at `gs://<bucket>/<prefix>/<workspace>.tfstate`.

use std::path::{Path, PathBuf};

use super::Backend;
use super::cloud_cli::{self, Landing};
use super::lock::StateLock;
use super::store::{Body, Created, FOLDER_SUFFIX, Object, Store, Version};
use crate::lock_info::LockInfo;
use crate::process::{Finished, Invocation, RunOptions, Runner};

fn object(backend: &Backend, suffix: &str) -> String {
    format!("gs://{}/{}", bucket(backend), object_name(backend, suffix))
}

fn bucket(backend: &Backend) -> String {
    backend.setting("bucket").unwrap_or_else(|| "?".into())
}

/// The name of `<prefix>/<workspace>.<suffix>` in the bucket.
fn object_name(backend: &Backend, suffix: &str) -> String {
    let prefix = backend.setting("prefix").unwrap_or_default();
    let prefix = prefix.trim_end_matches('/');
    let object = format!("{}.{suffix}", backend.workspace_name());
    if prefix.is_empty() {
        object
    } else {
        format!("{prefix}/{object}")
    }
}

pub(super) fn location(backend: &Backend) -> String {
    object(backend, "tfstate")
}

/// The lock of a gcs state: the object `<prefix>/<workspace>.tflock`. Its generation
/// number is the ID `force-unlock` wants.
pub(super) async fn read_lock(backend: &Backend, runner: &dyn Runner) -> anyhow::Result<StateLock> {
    let bin = gcloud_binary()?;
    let url = object(backend, "tflock");
    let mut describe = gcloud(
        backend,
        &bin,
        &["storage", "objects", "describe", &url, "--format=json"],
    );
    describe.after_interrupt = true;
    let done = runner.run(&describe, RunOptions::default()).await?;
    if !done.success() {
        let stderr = done.stderr_text();
        if stderr.contains("NotFound")
            || stderr.contains("not found")
            || stderr.contains("matched no objects")
        {
            return Ok(StateLock::free(url));
        }
        anyhow::bail!(
            "`gcloud storage objects describe {url}` failed: {}",
            super::first_error_line(&stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&done.stdout)
        .map_err(|e| anyhow::anyhow!("gcloud printed something that is not JSON ({e})"))?;
    let generation = match meta.get("generation") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => anyhow::bail!("`{url}` has no generation number"),
    };
    let mut cat = gcloud(backend, &bin, &["storage", "cat", &url]);
    cat.after_interrupt = true;
    let done = runner.run(&cat, RunOptions::default()).await?;
    let mut info = if done.success() {
        LockInfo::parse(&done.stdout_text()).unwrap_or_default()
    } else {
        LockInfo::default()
    };
    info.id = generation;
    Ok(StateLock::held_by(info, url))
}

fn gcloud_binary() -> anyhow::Result<PathBuf> {
    super::cli_binary(
        "gcloud",
        "the Google Cloud CLI",
        "see https://cloud.google.com/sdk/docs/install",
    )
}

/// What to fix when Cloud Storage refuses tfenv's credentials.
const AUTH_FIX: &str = "check the backend config's `credentials` / `impersonate_service_account`, or `gcloud auth login`: the identity needs storage.objects.create, get and list on the bucket";

/// What gcloud prints for an object that is not there.
fn is_missing(stderr: &str) -> bool {
    ["matched no objects", "No URLs matched", "No such object", "not found: 404"]
        .iter()
        .any(|sign| stderr.contains(sign))
}

/// What gcloud prints when `--if-generation-match=0` found an object of that name.
fn is_precondition_failure(stderr: &str) -> bool {
    [
        "HTTPError 412",
        "412 Precondition Failed",
        "PreconditionFailed",
        "pre-conditions you specified did not hold",
    ]
    .iter()
    .any(|sign| stderr.contains(sign))
}

/// The gcs arm of `Store`: objects beside the state object, in its bucket, through
/// `gcloud storage` (cp, objects list, cat) with the lock reader's credentials and
/// endpoint. `objects list` lists noncurrent generations too: they are told apart by
/// their `noncurrent_time`.
pub(super) struct Objects<'s> {
    store: &'s Store,
    bin: PathBuf,
    bucket: String,
    /// The state object's name.
    state: String,
}

impl<'s> Objects<'s> {
    pub(super) fn new(store: &'s Store) -> anyhow::Result<Objects<'s>> {
        Ok(Objects {
            bin: gcloud_binary()?,
            bucket: bucket(&store.backend),
            state: object_name(&store.backend, "tfstate"),
            store,
        })
    }

    /// The object name of ledger object `name`.
    fn key(&self, name: &str) -> String {
        format!("{}{FOLDER_SUFFIX}{name}", self.state)
    }

    fn url(&self, key: &str) -> String {
        format!("gs://{}/{key}", self.bucket)
    }

    async fn run(&self, args: &[&str], what: &str) -> anyhow::Result<Finished> {
        let inv = gcloud(&self.store.backend, &self.bin, args);
        cloud_cli::run(&*self.store.runner, &inv, self.store.timeout, what).await
    }

    pub(super) async fn create(&self, name: &str, body: Body<'_>) -> anyhow::Result<Created> {
        let url = self.url(&self.key(checked_name(name)?));
        let (file, _guard) = cloud_cli::upload_source(body)?;
        let file = file.to_string_lossy().into_owned();
        let what = format!("`gcloud storage cp` to `{url}`");
        let done = self
            .run(
                &["storage", "cp", &file, &url, "--if-generation-match=0"],
                &what,
            )
            .await?;
        if done.success() {
            return Ok(Created::Created);
        }
        if is_precondition_failure(&done.stderr_text()) {
            return Ok(Created::Exists);
        }
        Err(cloud_cli::failure(&what, &done, AUTH_FIX))
    }

    pub(super) async fn list(&self, dir: &str) -> anyhow::Result<Vec<Object>> {
        let folder = self.key("");
        let prefix = self.key(dir);
        // `**` matches across `/`, but only as a whole path segment: list from the last
        // `/` of the prefix and keep the names that start with all of it.
        let base = match prefix.rfind('/') {
            Some(at) => &prefix[..=at],
            None => "",
        };
        let pattern = self.url(&format!("{base}**"));
        let what = format!("`gcloud storage objects list {pattern}`");
        let done = self
            .run(
                &["storage", "objects", "list", &pattern, "--format=json"],
                &what,
            )
            .await?;
        if !done.success() {
            if is_missing(&done.stderr_text()) {
                return Ok(Vec::new());
            }
            return Err(cloud_cli::failure(&what, &done, AUTH_FIX));
        }
        let mut objects = Vec::new();
        for entry in listed(&what, &done.stdout)? {
            let Some(relative) = entry.name.strip_prefix(&folder) else {
                continue;
            };
            if !entry.live || !entry.name.starts_with(&prefix) {
                continue;
            }
            objects.push(Object {
                name: relative.to_string(),
                bytes: entry.bytes,
                modified: entry.modified,
            });
        }
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        objects.dedup_by(|a, b| a.name == b.name);
        Ok(objects)
    }

    pub(super) async fn read(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let url = self.url(&self.key(checked_name(name)?));
        let what = format!("`gcloud storage cat {url}`");
        let done = self.run(&["storage", "cat", &url], &what).await?;
        if done.success() {
            return Ok(Some(done.stdout));
        }
        if is_missing(&done.stderr_text()) {
            return Ok(None);
        }
        Err(cloud_cli::failure(&what, &done, AUTH_FIX))
    }

    pub(super) async fn download(&self, name: &str, dest: &Path) -> anyhow::Result<bool> {
        let url = self.url(&self.key(checked_name(name)?));
        self.copy(&url, dest).await
    }

    pub(super) async fn versions(&self) -> anyhow::Result<Vec<Version>> {
        let url = self.url(&self.state);
        let what = format!("`gcloud storage objects list {url}`");
        let done = self
            .run(
                &["storage", "objects", "list", &url, "--format=json"],
                &what,
            )
            .await?;
        if !done.success() {
            if is_missing(&done.stderr_text()) {
                return Ok(Vec::new());
            }
            return Err(cloud_cli::failure(&what, &done, AUTH_FIX));
        }
        let mut versions = Vec::new();
        for entry in listed(&what, &done.stdout)? {
            if entry.name != self.state {
                continue;
            }
            let Some(generation) = entry.generation else {
                anyhow::bail!("{what} printed a version of `{url}` without a generation");
            };
            versions.push((
                generation,
                Version {
                    id: generation.to_string(),
                    modified: entry.modified,
                    bytes: entry.bytes,
                    latest: entry.live,
                    deleted: false,
                },
            ));
        }
        // Generations grow with each write: the newest first.
        versions.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(versions.into_iter().map(|(_, v)| v).collect())
    }

    pub(super) async fn version_head(&self, id: &str, max: u64) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}#{}", self.url(&self.state), checked_generation(id)?);
        if max == 0 {
            return Ok(Vec::new());
        }
        let range = format!("--range=0-{}", max - 1);
        let what = format!("`gcloud storage cat {range} {url}`");
        let done = self.run(&["storage", "cat", &range, &url], &what).await?;
        if done.success() {
            let mut head = done.stdout;
            head.truncate(usize::try_from(max).unwrap_or(usize::MAX));
            return Ok(head);
        }
        if is_missing(&done.stderr_text()) {
            anyhow::bail!("`{url}` does not exist: the state has no generation `{id}`");
        }
        Err(cloud_cli::failure(&what, &done, AUTH_FIX))
    }

    pub(super) async fn download_version(&self, id: &str, dest: &Path) -> anyhow::Result<()> {
        let url = format!("{}#{}", self.url(&self.state), checked_generation(id)?);
        if !self.copy(&url, dest).await? {
            anyhow::bail!("`{url}` does not exist: the state has no generation `{id}`");
        }
        Ok(())
    }

    /// `gcloud storage cp <url> <file>` into a landing beside `dest`, then into place;
    /// `false` when there is no such object.
    async fn copy(&self, url: &str, dest: &Path) -> anyhow::Result<bool> {
        let landing = Landing::beside(dest)?;
        let file = landing.file().to_string_lossy().into_owned();
        let what = format!("`gcloud storage cp {url}`");
        let done = self.run(&["storage", "cp", url, &file], &what).await?;
        if !done.success() {
            if is_missing(&done.stderr_text()) {
                return Ok(false);
            }
            return Err(cloud_cli::failure(&what, &done, AUTH_FIX));
        }
        landing.land(dest)?;
        Ok(true)
    }
}

/// One object (generation) as `gcloud storage objects list --format=json` prints it.
struct Listed {
    name: String,
    generation: Option<u64>,
    bytes: u64,
    modified: Option<chrono::DateTime<chrono::Utc>>,
    /// The live generation, not a noncurrent one (those have a `noncurrent_time`).
    live: bool,
}

fn listed(what: &str, stdout: &[u8]) -> anyhow::Result<Vec<Listed>> {
    let listing = cloud_cli::json(what, stdout)?;
    cloud_cli::entries(what, &listing)?
        .iter()
        .map(|entry| {
            let Some(name) = entry.get("name").and_then(|n| n.as_str()) else {
                anyhow::bail!("{what} printed an object without a name: {entry}");
            };
            // The standard keys, or the API's with `--raw`.
            let field = |standard: &str, raw: &str| entry.get(standard).or_else(|| entry.get(raw));
            let noncurrent = field("noncurrent_time", "timeDeleted").is_some_and(|v| !v.is_null())
                || field("soft_delete_time", "softDeleteTime").is_some_and(|v| !v.is_null());
            Ok(Listed {
                name: name.to_string(),
                generation: cloud_cli::number(entry.get("generation")),
                bytes: cloud_cli::number(entry.get("size")).unwrap_or(0),
                modified: cloud_cli::time(field("update_time", "updated"))
                    .or_else(|| cloud_cli::time(field("creation_time", "timeCreated"))),
                live: !noncurrent,
            })
        })
        .collect()
}

/// A ledger object's name, relative to the folder: not empty, not absolute, and free of
/// what gcloud would read as a wildcard or a generation.
fn checked_name(name: &str) -> anyhow::Result<&str> {
    anyhow::ensure!(
        !name.is_empty()
            && !name.starts_with('/')
            && !name.contains(['*', '?', '[', ']', '#']),
        "`{name}` is not a name in the shared ledger"
    );
    Ok(name)
}

/// A generation number, the ID of a GCS object version.
fn checked_generation(id: &str) -> anyhow::Result<&str> {
    anyhow::ensure!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        "`{id}` is not a GCS generation number (the version IDs `tfenv backups --versions` lists)"
    );
    Ok(id)
}

/// gcloud with the credentials and endpoint the backend config names.
fn gcloud(backend: &Backend, bin: &std::path::Path, args: &[&str]) -> Invocation {
    let mut inv = Invocation::new(bin, args);
    if let Some(file) = backend.setting("credentials") {
        inv.env
            .push(("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE".into(), file.into()));
    }
    if let Some(account) = backend.setting("impersonate_service_account") {
        inv.env.push((
            "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT".into(),
            account.into(),
        ));
    }
    if let Some(endpoint) = backend.setting("storage_custom_endpoint") {
        inv.env.push((
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE".into(),
            endpoint.into(),
        ));
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::super::tests::backend;
    use super::*;
    use serde_json::json;

    #[test]
    fn location_uses_prefix_and_workspace() {
        assert_eq!(
            object(&backend("gcs", json!({"bucket": "b"}), None), "tflock"),
            "gs://b/default.tflock"
        );
        let settings = json!({"bucket": "b", "prefix": "app/"});
        assert_eq!(
            location(&backend("gcs", settings.clone(), None)),
            "gs://b/app/default.tfstate"
        );
        assert_eq!(
            location(&backend("gcs", settings, Some("qa"))),
            "gs://b/app/qa.tfstate"
        );
    }
}
