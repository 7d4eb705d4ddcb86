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

pub(super) fn gcloud_binary() -> anyhow::Result<PathBuf> {
    super::cli_binary(
        "gcloud",
        "the Google Cloud CLI",
        "see https://cloud.google.com/sdk/docs/install",
    )
}

/// What to fix when Cloud Storage refuses tfenv's credentials, or there are none.
pub(super) const AUTH_FIX: &str = "check the backend config's `credentials` / `impersonate_service_account`, or log in again with `gcloud auth login`";

/// Whose credentials gcloud uses for the backend (see `gcloud`), for people.
pub(super) fn identity(backend: &Backend) -> String {
    let base = match backend.setting("credentials") {
        // The key itself, not its file: a secret, never shown.
        Some(key) if inline_key(&key) => "gcloud's active account (the backend config's `credentials` holds a key itself, not the path of a key file, and gcloud takes only a file: put the key in a file and name that file in `credentials`)".to_string(),
        Some(file) => format!("the key file `{file}` (`credentials` in the backend config)"),
        None => "gcloud's active account".to_string(),
    };
    match backend.setting("impersonate_service_account") {
        Some(account) => format!("{base}, impersonating `{account}`"),
        None => base,
    }
}

/// Terraform's gcs backend takes `credentials` as a key file's path or as the key's JSON
/// itself; gcloud takes only a file.
pub(super) fn inline_key(credentials: &str) -> bool {
    credentials.trim_start().starts_with('{')
}

/// What gcloud prints for an object that is not there.
pub(super) fn is_missing(stderr: &str) -> bool {
    [
        "matched no objects",
        "No URLs matched",
        "No such object",
        "not found: 404",
    ]
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
        Ok(Objects::with_bin(store, gcloud_binary()?))
    }

    fn with_bin(store: &'s Store, bin: PathBuf) -> Objects<'s> {
        Objects {
            bin,
            bucket: bucket(&store.backend),
            state: object_name(&store.backend, "tfstate"),
            store,
        }
    }

    /// The object name of ledger object `name`.
    fn key(&self, name: &str) -> String {
        format!("{}{FOLDER_SUFFIX}{name}", self.state)
    }

    fn url(&self, key: &str) -> String {
        format!("gs://{}/{key}", self.bucket)
    }

    /// What a refusal of a call needing `permission` on the bucket says.
    fn refused(&self, permission: &str) -> cloud_cli::Refused {
        cloud_cli::Refused {
            identity: identity(&self.store.backend),
            credential_fix: AUTH_FIX,
            permission: format!("`{permission}` on the bucket `{}`", self.bucket),
        }
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
        Err(cloud_cli::failure(
            &what,
            &done,
            &self.refused("storage.objects.create"),
        ))
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
        let mut objects = Vec::new();
        for entry in self.objects_list(&pattern).await? {
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

    /// The entries `gcloud storage objects list <url>` prints (every generation); none
    /// when nothing matches.
    async fn objects_list(&self, url: &str) -> anyhow::Result<Vec<Listed>> {
        let what = format!("`gcloud storage objects list {url}`");
        let done = self
            .run(&["storage", "objects", "list", url, "--format=json"], &what)
            .await?;
        if done.success() {
            return listed(&what, &done.stdout);
        }
        if is_missing(&done.stderr_text()) {
            return Ok(Vec::new());
        }
        Err(cloud_cli::failure(
            &what,
            &done,
            &self.refused("storage.objects.list"),
        ))
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
        Err(cloud_cli::failure(
            &what,
            &done,
            &self.refused("storage.objects.get"),
        ))
    }

    pub(super) async fn download(&self, name: &str, dest: &Path) -> anyhow::Result<bool> {
        let url = self.url(&self.key(checked_name(name)?));
        self.copy(&url, dest).await
    }

    pub(super) async fn versions(&self) -> anyhow::Result<Vec<Version>> {
        let url = self.url(&self.state);
        let mut versions = Vec::new();
        for entry in self.objects_list(&url).await? {
            if entry.name != self.state {
                continue;
            }
            let Some(generation) = entry.generation else {
                anyhow::bail!(
                    "`gcloud storage objects list {url}` printed a version of `{url}` without a generation"
                );
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
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
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
        Err(cloud_cli::failure(
            &what,
            &done,
            &self.refused("storage.objects.get"),
        ))
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
            return Err(cloud_cli::failure(
                &what,
                &done,
                &self.refused("storage.objects.get"),
            ));
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
        !name.is_empty() && !name.starts_with('/') && !name.contains(['*', '?', '[', ']', '#']),
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

/// `gcloud storage buckets describe`: whether the bucket keeps noncurrent generations
/// (`versioning_enabled`; the JSON API's `versioning.enabled` too).
pub(super) async fn versioning(store: &Store) -> anyhow::Result<bool> {
    let bucket = bucket(&store.backend);
    let url = format!("gs://{bucket}");
    let inv = gcloud(
        &store.backend,
        &gcloud_binary()?,
        &["storage", "buckets", "describe", &url, "--format=json"],
    );
    let what = format!("`gcloud storage buckets describe {url}`");
    let done = cloud_cli::run(&*store.runner, &inv, store.timeout, &what).await?;
    if !done.success() {
        let refused = cloud_cli::Refused {
            identity: identity(&store.backend),
            credential_fix: AUTH_FIX,
            permission: format!("`storage.buckets.get` on the bucket `{bucket}`"),
        };
        return Err(cloud_cli::failure(&what, &done, &refused));
    }
    let shown = cloud_cli::json(&what, &done.stdout)?;
    let on = |v: Option<&serde_json::Value>| v == Some(&true.into());
    Ok(on(shown.get("versioning_enabled")) || on(shown.pointer("/versioning/enabled")))
}

/// gcloud with the credentials and endpoint the backend config names.
pub(super) fn gcloud(backend: &Backend, bin: &std::path::Path, args: &[&str]) -> Invocation {
    let mut inv = Invocation::new(bin, args);
    if let Some(file) = backend.setting("credentials").filter(|c| !inline_key(c)) {
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
    fn a_key_given_inline_is_never_shown_nor_passed_as_a_file() {
        let key = r#"{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----SECRET"}"#;
        let b = backend("gcs", json!({"bucket": "b", "credentials": key}), None);
        let shown = identity(&b);
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("holds a key itself"), "{shown}");
        let inv = gcloud(&b, std::path::Path::new("gcloud"), &["storage", "ls"]);
        assert!(
            inv.env.iter().all(
                |(name, value)| name != "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE"
                    && !value.to_string_lossy().contains("SECRET")
            ),
            "{:?}",
            inv.env.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
    }

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

#[cfg(test)]
mod store_tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::super::cloud_cli::testing::Cli;
    use super::super::tests::backend;
    use super::*;
    use crate::process::scripted::{Reply, ScriptedRunner};

    fn store(cli: &Arc<Cli>) -> Store {
        backend(
            "gcs",
            json!({"bucket": "b", "prefix": "app", "credentials": "/keys/sa.json", "storage_custom_endpoint": "http://127.0.0.1:4443/storage/v1/"}),
            Some("prod"),
        )
        .store(cli.clone())
        .expect("gcs has a store")
    }

    fn objects(store: &Store) -> Objects<'_> {
        Objects::with_bin(store, "gcloud".into())
    }

    fn argv(words: &str) -> Vec<String> {
        words.split(' ').map(str::to_string).collect()
    }

    /// An object as `gcloud storage objects list --format=json` prints it.
    fn listed(name: &str, generation: u64, size: u64, updated: &str, noncurrent: bool) -> Value {
        let mut object = json!({
            "bucket": "b",
            "content_type": "application/json",
            "crc32c_hash": "yZRlqg==",
            "creation_time": updated,
            "generation": generation.to_string(),
            "md5_hash": "XrY7u+Ae7tCTyyK7j1rNww==",
            "metageneration": 1,
            "name": name,
            "size": size,
            "storage_class": "STANDARD",
            "storage_url": format!("gs://b/{name}#{generation}"),
            "update_time": updated
        });
        if noncurrent {
            object["noncurrent_time"] = json!("2026-11-30T12:00:00+0000");
        }
        object
    }

    fn env_is_the_backends(env: &[(String, String)]) {
        assert_eq!(
            env,
            &[
                (
                    "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE".to_string(),
                    "/keys/sa.json".to_string()
                ),
                (
                    "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE".to_string(),
                    "http://127.0.0.1:4443/storage/v1/".to_string()
                ),
            ]
        );
    }

    #[tokio::test]
    async fn a_record_is_uploaded_only_if_no_live_object_has_its_name() {
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(&["storage", "cp"], Reply::ok(""))
                .expect(
                    &["storage", "cp"],
                    Reply::fail(1, "ERROR: HTTPError 412: At least one of the pre-conditions you specified did not hold.\n"),
                )
                .expect(
                    &["storage", "cp"],
                    Reply::fail(1, "ERROR: (gcloud.storage.cp) HTTPError 403: ci@p.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object.\n"),
                ),
        );
        let store = store(&cli);
        let objects = objects(&store);
        let name = "history/20261130T120000Z-host-42.json";
        assert_eq!(
            objects.create(name, Body::Bytes(b"{}")).await.unwrap(),
            Created::Created
        );
        assert_eq!(
            objects.create(name, Body::Bytes(b"{}")).await.unwrap(),
            Created::Exists
        );
        let err = objects.create(name, Body::Bytes(b"{}")).await.unwrap_err();
        // The key file was accepted: a permission the identity lacks.
        assert!(super::super::is_permission(&err), "{err:#}");
        assert_eq!(
            err.to_string(),
            "permission denied: `gcloud storage cp` to `gs://b/app/prod.tfstate.tfenv/history/20261130T120000Z-host-42.json`: ERROR: (gcloud.storage.cp) HTTPError 403: ci@p.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object.; tfenv used the key file `/keys/sa.json` (`credentials` in the backend config)"
        );
        let hint = crate::error::hint_for(&err).unwrap();
        assert!(
            hint.contains("grant `storage.objects.create` on the bucket `b`")
                && hint.contains("docs/team.md"),
            "{hint}"
        );
        // A name gcloud would read as a wildcard or a generation never reaches it.
        assert!(
            objects
                .create("history/*", Body::Bytes(b"{}"))
                .await
                .is_err()
        );
        let calls = cli.calls();
        assert_eq!(calls.len(), 3);
        for (args, env) in &calls {
            assert_eq!(args.len(), 5, "{args:?}");
            assert_eq!(
                [&args[..2], &args[3..]].concat(),
                argv(
                    "storage cp gs://b/app/prod.tfstate.tfenv/history/20261130T120000Z-host-42.json --if-generation-match=0"
                )
            );
            env_is_the_backends(env);
        }
        assert!(
            !Path::new(&calls[0].0[2]).exists(),
            "the temporary file is gone"
        );
    }

    #[tokio::test]
    async fn a_listing_keeps_live_objects_under_the_prefix_in_name_order() {
        let listing = json!([
            listed("app/prod.tfstate.tfenv/history/b.json", 3, 120, "2026-11-30T12:00:00+0000", false),
            listed("app/prod.tfstate.tfenv/history/a.json", 1, 80, "2026-11-29T12:00:00+0000", false),
            // A deleted record's noncurrent generation, and an object outside the prefix.
            listed("app/prod.tfstate.tfenv/history/gone.json", 2, 80, "2026-11-29T12:00:00+0000", true),
            listed("app/prod.tfstate.tfenv/historyx.json", 4, 80, "2026-11-29T12:00:00+0000", false),
            {"name": "app/prod.tfstate.tfenv/history/c.json"},
        ]);
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(&["storage", "objects", "list"], Reply::ok(&listing.to_string()))
                .expect(&["storage", "objects", "list"], Reply::ok("[]\n"))
                .expect(
                    &["storage", "objects", "list"],
                    Reply::fail(1, "ERROR: (gcloud.storage.objects.list) One or more URLs matched no objects.\n"),
                )
                .expect(&["storage", "objects", "list"], Reply::ok("WARNING: something"))
                .expect(&["storage", "objects", "list"], Reply::ok(r#"[{"size": 3}]"#))
                .expect(
                    &["storage", "objects", "list"],
                    Reply::fail(1, "ERROR: (gcloud.storage.objects.list) gs://b bucket does not exist.\n"),
                ),
        );
        let store = store(&cli);
        let objects = objects(&store);
        let listed = objects.list("history/").await.unwrap();
        let names: Vec<&str> = listed.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            ["history/a.json", "history/b.json", "history/c.json"]
        );
        assert_eq!(listed[1].bytes, 120);
        assert_eq!(
            listed[1].modified,
            Some("2026-11-30T12:00:00Z".parse().unwrap())
        );
        assert_eq!((listed[2].bytes, listed[2].modified), (0, None));
        assert!(objects.list("history/").await.unwrap().is_empty());
        assert!(objects.list("history/").await.unwrap().is_empty());
        for garbage in ["not JSON", "without a name"] {
            let err = objects.list("history/").await.unwrap_err();
            assert!(format!("{err:#}").contains(garbage), "{garbage}: {err:#}");
        }
        let err = objects.list("history/").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "`gcloud storage objects list gs://b/app/prod.tfstate.tfenv/history/**` failed: ERROR: (gcloud.storage.objects.list) gs://b bucket does not exist."
        );
        for (args, env) in cli.calls() {
            assert_eq!(
                args,
                argv("storage objects list gs://b/app/prod.tfstate.tfenv/history/** --format=json")
            );
            env_is_the_backends(&env);
        }
    }

    #[tokio::test]
    async fn a_prefix_that_ends_inside_a_name_lists_its_folder_and_keeps_the_matches() {
        let listing = json!([
            listed(
                "app/prod.tfstate.tfenv/history/2026-a.json",
                1,
                1,
                "2026-11-29T12:00:00+0000",
                false
            ),
            listed(
                "app/prod.tfstate.tfenv/history/2025-b.json",
                2,
                1,
                "2026-11-29T12:00:00+0000",
                false
            ),
        ]);
        let cli = Cli::new(ScriptedRunner::default().expect(
            &["storage", "objects", "list"],
            Reply::ok(&listing.to_string()),
        ));
        let store = store(&cli);
        let names: Vec<String> = objects(&store)
            .list("history/2026")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(names, ["history/2026-a.json"]);
        assert_eq!(
            cli.calls()[0].0,
            argv("storage objects list gs://b/app/prod.tfstate.tfenv/history/** --format=json")
        );
    }

    #[tokio::test]
    async fn reads_and_downloads_land_whole_files_and_a_missing_object_is_none() {
        let missing = "ERROR: (gcloud.storage.cat) The following URLs matched no objects or files:\n-gs://b/app/prod.tfstate.tfenv/history/b.json\n";
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(&["storage", "cat"], Reply::ok("{\"record\":1}"))
                .expect(&["storage", "cat"], Reply::fail(1, missing))
                .expect(&["storage", "cp"], Reply::ok(""))
                .expect(&["storage", "cp"], Reply::fail(1, missing)),
        )
        .writing(b"backup bytes");
        let store = store(&cli);
        let objects = objects(&store);
        assert_eq!(
            objects.read("history/a.json").await.unwrap().as_deref(),
            Some(&b"{\"record\":1}"[..])
        );
        assert_eq!(objects.read("history/b.json").await.unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("backup.tfstate");
        assert!(objects.download("backups/x.tfstate", &dest).await.unwrap());
        assert_eq!(std::fs::read(&dest).unwrap(), b"backup bytes");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            !objects
                .download("backups/y.tfstate", &dir.path().join("y"))
                .await
                .unwrap()
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let calls = cli.calls();
        assert_eq!(
            calls[0].0,
            argv("storage cat gs://b/app/prod.tfstate.tfenv/history/a.json")
        );
        assert_eq!(
            calls[1].0,
            argv("storage cat gs://b/app/prod.tfstate.tfenv/history/b.json")
        );
        assert_eq!(
            calls[2].0[..3],
            argv("storage cp gs://b/app/prod.tfstate.tfenv/backups/x.tfstate")[..]
        );
        assert!(
            Path::new(&calls[2].0[3]).starts_with(dir.path()),
            "{:?}",
            calls[2].0
        );
        assert_eq!(calls[2].0.len(), 4);
        for (_, env) in &calls {
            env_is_the_backends(env);
        }
    }

    #[tokio::test]
    async fn versions_are_the_state_objects_generations_newest_first() {
        let listing = json!([
            listed(
                "app/prod.tfstate",
                1700000000000001,
                900,
                "2026-11-28T10:00:00+0000",
                true
            ),
            listed(
                "app/prod.tfstate",
                1700000000000003,
                950,
                "2026-11-30T10:00:00+0000",
                false
            ),
            listed(
                "app/prod.tfstate",
                1700000000000002,
                920,
                "2026-11-29T10:00:00+0000",
                true
            ),
            listed(
                "app/prod.tfstate.tfenv/history/a.json",
                1700000000000004,
                80,
                "2026-11-30T11:00:00+0000",
                false
            ),
        ]);
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(
                    &["storage", "objects", "list"],
                    Reply::ok(&listing.to_string()),
                )
                .expect(&["storage", "objects", "list"], Reply::ok("[]"))
                .expect(
                    &["storage", "objects", "list"],
                    Reply::ok(r#"[{"name": "app/prod.tfstate"}]"#),
                ),
        );
        let store = store(&cli);
        let objects = objects(&store);
        let versions = objects.versions().await.unwrap();
        let shown: Vec<(&str, u64, bool)> = versions
            .iter()
            .map(|v| (v.id.as_str(), v.bytes, v.latest))
            .collect();
        assert_eq!(
            shown,
            [
                ("1700000000000003", 950, true),
                ("1700000000000002", 920, false),
                ("1700000000000001", 900, false),
            ]
        );
        assert_eq!(
            versions[0].modified,
            Some("2026-11-30T10:00:00Z".parse().unwrap())
        );
        assert!(objects.versions().await.unwrap().is_empty());
        let err = objects.versions().await.unwrap_err();
        assert!(
            format!("{err:#}").contains("without a generation"),
            "{err:#}"
        );
        for (args, _) in cli.calls() {
            assert_eq!(
                args,
                argv("storage objects list gs://b/app/prod.tfstate --format=json")
            );
        }
    }

    #[tokio::test]
    async fn one_generation_is_read_by_its_url_its_head_by_a_byte_range() {
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(&["storage", "cat"], Reply::ok("{\"serial\":7,\"lineage\":\"abc\"}"))
                .expect(&["storage", "cp"], Reply::ok(""))
                .expect(
                    &["storage", "cp"],
                    Reply::fail(1, "ERROR: (gcloud.storage.cp) The following URLs matched no objects or files:\n"),
                ),
        )
        .writing(b"{\"version\":4}");
        let store = store(&cli);
        let objects = objects(&store);
        assert_eq!(
            objects.version_head("1700000000000001", 16).await.unwrap(),
            b"{\"serial\":7,\"lin"[..].to_vec()
        );
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("v.tfstate");
        objects
            .download_version("1700000000000001", &dest)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"{\"version\":4}");
        let err = objects
            .download_version("1700000000000009", &dir.path().join("w"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`gs://b/app/prod.tfstate#1700000000000009` does not exist: the state has no generation `1700000000000009`"
        );
        assert!(
            objects
                .version_head("1700000000000001", 0)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(objects.version_head("latest", 10).await.is_err());
        let calls = cli.calls();
        assert_eq!(calls.len(), 3);
        assert_eq!(
            calls[0].0,
            argv("storage cat --range=0-15 gs://b/app/prod.tfstate#1700000000000001")
        );
        assert_eq!(
            calls[1].0[..3],
            argv("storage cp gs://b/app/prod.tfstate#1700000000000001")[..]
        );
    }
}
