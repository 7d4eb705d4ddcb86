//! The azurerm backend: state in blob `<key>` of `<container_name>` in
//! `<storage_account_name>`; a non-default workspace appends `env:<workspace>` to the key.

use std::path::{Path, PathBuf};

use super::Backend;
use super::cloud_cli::{self, Landing};
use super::lock::{LockState, StateLock};
use super::store::{Body, Created, FOLDER_SUFFIX, Object, Store, Version};
use crate::lock_info::LockInfo;
use crate::process::{Invocation, RunOptions, Runner};

fn blob_name(backend: &Backend) -> String {
    let key = backend
        .setting("key")
        .unwrap_or_else(|| "terraform.tfstate".into());
    match backend.workspace_name() {
        "default" => key,
        workspace => format!("{key}env:{workspace}"),
    }
}

/// The lock of an azurerm state: an infinite lease on the blob, with the lock JSON
/// base64-encoded in its `terraformlockid` metadata.
pub(super) async fn read_lock(backend: &Backend, runner: &dyn Runner) -> anyhow::Result<StateLock> {
    use base64::Engine;
    let bin = az_binary()?;
    let account = backend.setting("storage_account_name").unwrap_or_default();
    let container = backend.setting("container_name").unwrap_or_default();
    let blob = blob_name(backend);
    let mut inv = Invocation::new(
        bin,
        &[
            "storage",
            "blob",
            "show",
            "--account-name",
            &account,
            "--container-name",
            &container,
            "--name",
            &blob,
            "--output",
            "json",
        ],
    );
    inv.after_interrupt = true;
    credentials(backend, &mut inv);
    let source = format!("azurerm://{account}/{container}/{blob}");
    let done = runner.run(&inv, RunOptions::default()).await?;
    if !done.success() {
        let stderr = done.stderr_text();
        if stderr.contains("BlobNotFound") || stderr.contains("does not exist") {
            return Ok(StateLock::free(source));
        }
        anyhow::bail!(
            "`az storage blob show` for `{source}` failed: {}",
            super::first_error_line(&stderr)
        );
    }
    let shown: serde_json::Value = serde_json::from_slice(&done.stdout).map_err(|e| {
        anyhow::anyhow!("`az storage blob show` printed something that is not JSON ({e})")
    })?;
    let leased = shown
        .pointer("/properties/lease/state")
        .and_then(|v| v.as_str())
        .is_some_and(|s| s.eq_ignore_ascii_case("leased"));
    if !leased {
        return Ok(StateLock::free(source));
    }
    let encoded = shown
        .get("metadata")
        .and_then(|m| m.as_object())
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("terraformlockid"))
                .and_then(|(_, v)| v.as_str())
        });
    let Some(encoded) = encoded else {
        return Ok(StateLock::new(LockState::HeldUnknown, source).noting(format!(
            "the state blob has a lease but no lock info: its holder is unknown. If no terraform is running, break it with `az storage blob lease break --account-name {account} --container-name {container} --blob-name {blob}`"
        )));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| {
            anyhow::anyhow!("{source}: the terraformlockid metadata is not base64 ({e})")
        })?;
    let info = LockInfo::parse(&String::from_utf8_lossy(&decoded))
        .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    Ok(StateLock::held_by(info, source))
}

pub(super) fn az_binary() -> anyhow::Result<PathBuf> {
    super::cli_binary(
        "az",
        "the Azure CLI",
        "see https://learn.microsoft.com/cli/azure/install-azure-cli",
    )
}

/// The backend's credentials for one `az storage` call, as terraform's azurerm backend
/// takes them: the account key or SAS token through the environment (never on the
/// command line), else Azure AD (`use_azuread_auth`) with `--auth-mode login`.
pub(super) fn credentials(backend: &Backend, inv: &mut Invocation) {
    if let Some(key) = backend.setting("access_key") {
        inv.env.push(("AZURE_STORAGE_KEY".into(), key.into()));
    } else if let Some(sas) = backend.setting("sas_token") {
        inv.env.push(("AZURE_STORAGE_SAS_TOKEN".into(), sas.into()));
    } else if backend.setting("use_azuread_auth").as_deref() == Some("true") {
        inv.args.extend(["--auth-mode".into(), "login".into()]);
    }
}

/// What to fix when Azure refuses tfenv's credentials, or there are none.
pub(super) const AUTH_FIX: &str = "check the backend config's `access_key`, `sas_token` or `use_azuread_auth` (with `az login`), or log in again with `az login`";

/// The data actions (Azure RBAC) of the calls tfenv makes on blobs: uploads, and
/// listings and downloads (of versions too).
const WRITE: &str = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write";
const READ: &str = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read";

/// Whose credentials `az` uses for the backend (see `credentials`), for people.
pub(super) fn identity(backend: &Backend) -> String {
    if backend.setting("access_key").is_some() {
        "the account key (`access_key` in the backend config)".to_string()
    } else if backend.setting("sas_token").is_some() {
        "the SAS token (`sas_token` in the backend config)".to_string()
    } else if backend.setting("use_azuread_auth").as_deref() == Some("true") {
        "the account `az login` signed in (`use_azuread_auth`)".to_string()
    } else {
        "the account `az login` signed in (to look up the storage account key)".to_string()
    }
}

/// The azurerm arm of `Store`: blobs beside the state blob, in its container, through
/// `az storage blob` (upload, list, download) with the lock reader's credentials.
pub(super) struct Blobs<'s> {
    store: &'s Store,
    bin: PathBuf,
    account: String,
    container: String,
    /// The state blob.
    state: String,
}

impl<'s> Blobs<'s> {
    pub(super) fn new(store: &'s Store) -> anyhow::Result<Blobs<'s>> {
        Ok(Blobs::with_bin(store, az_binary()?))
    }

    fn with_bin(store: &'s Store, bin: PathBuf) -> Blobs<'s> {
        let backend = &store.backend;
        Blobs {
            bin,
            account: backend.setting("storage_account_name").unwrap_or_default(),
            container: backend.setting("container_name").unwrap_or_default(),
            state: blob_name(backend),
            store,
        }
    }

    /// The blob of ledger object `name`.
    fn blob(&self, name: &str) -> String {
        format!("{}{FOLDER_SUFFIX}{name}", self.state)
    }

    /// What a refusal of a call needing `data_action` on the container says.
    fn refused(&self, data_action: &str) -> cloud_cli::Refused {
        cloud_cli::Refused {
            identity: identity(&self.store.backend),
            credential_fix: AUTH_FIX,
            permission: format!(
                "`{data_action}` on the container `{}` of `{}` (a SAS token needs it in its permissions)",
                self.container, self.account
            ),
        }
    }

    fn show(&self, blob: &str) -> String {
        format!("azurerm://{}/{}/{blob}", self.account, self.container)
    }

    /// `az storage blob <verb> --account-name … --container-name … <args>`, with the
    /// backend's credentials.
    fn call(&self, verb: &str, args: &[&str]) -> Invocation {
        let mut inv = Invocation::new(
            &self.bin,
            &[
                "storage",
                "blob",
                verb,
                "--account-name",
                &self.account,
                "--container-name",
                &self.container,
            ],
        );
        inv.args.extend(args.iter().map(Into::into));
        credentials(&self.store.backend, &mut inv);
        inv
    }

    async fn run(&self, inv: &Invocation, what: &str) -> anyhow::Result<crate::process::Finished> {
        cloud_cli::run(&*self.store.runner, inv, self.store.timeout, what).await
    }

    pub(super) async fn create(&self, name: &str, body: Body<'_>) -> anyhow::Result<Created> {
        let blob = self.blob(checked_name(name)?);
        let (file, _guard) = cloud_cli::upload_source(body)?;
        let file = file.to_string_lossy().into_owned();
        let what = format!("`az storage blob upload` to `{}`", self.show(&blob));
        let inv = self.call(
            "upload",
            &[
                "--name",
                &blob,
                "--file",
                &file,
                "--overwrite",
                "false",
                "--no-progress",
            ],
        );
        let done = self.run(&inv, &what).await?;
        if done.success() {
            return Ok(Created::Created);
        }
        if done.stderr_text().contains("BlobAlreadyExists") {
            return Ok(Created::Exists);
        }
        Err(cloud_cli::failure(&what, &done, &self.refused(WRITE)))
    }

    pub(super) async fn list(&self, dir: &str) -> anyhow::Result<Vec<Object>> {
        let folder = self.blob("");
        let prefix = self.blob(dir);
        let what = format!("`az storage blob list` of `{}`", self.show(&prefix));
        let inv = self.call(
            "list",
            &[
                "--prefix",
                &prefix,
                "--num-results",
                "*",
                "--output",
                "json",
            ],
        );
        let done = self.run(&inv, &what).await?;
        if !done.success() {
            return Err(cloud_cli::failure(&what, &done, &self.refused(READ)));
        }
        let listing = cloud_cli::json(&what, &done.stdout)?;
        let mut objects = Vec::new();
        for entry in cloud_cli::entries(&what, &listing)? {
            let Some(name) = listed_name(&what, entry)? else {
                continue;
            };
            let Some(relative) = name.strip_prefix(&folder) else {
                continue;
            };
            if !name.starts_with(&prefix) || entry.get("deleted") == Some(&true.into()) {
                continue;
            }
            let properties = entry.get("properties");
            objects.push(Object {
                name: relative.to_string(),
                bytes: cloud_cli::number(properties.and_then(|p| p.get("contentLength")))
                    .unwrap_or(0),
                modified: cloud_cli::time(properties.and_then(|p| p.get("lastModified"))),
            });
        }
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        objects.dedup_by(|a, b| a.name == b.name);
        Ok(objects)
    }

    pub(super) async fn read(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let landing = Landing::temporary()?;
        if !self
            .fetch(&self.blob(checked_name(name)?), None, None, &landing)
            .await?
        {
            return Ok(None);
        }
        landing.read().map(Some)
    }

    pub(super) async fn download(&self, name: &str, dest: &Path) -> anyhow::Result<bool> {
        let landing = Landing::beside(dest)?;
        if !self
            .fetch(&self.blob(checked_name(name)?), None, None, &landing)
            .await?
        {
            return Ok(false);
        }
        landing.land(dest)?;
        Ok(true)
    }

    pub(super) async fn versions(&self) -> anyhow::Result<Vec<Version>> {
        let what = format!(
            "`az storage blob list --include v` of `{}`",
            self.show(&self.state)
        );
        let inv = self.call(
            "list",
            &[
                "--prefix",
                &self.state,
                "--include",
                "v",
                "--num-results",
                "*",
                "--output",
                "json",
            ],
        );
        let done = self.run(&inv, &what).await?;
        if !done.success() {
            return Err(cloud_cli::failure(&what, &done, &self.refused(READ)));
        }
        let listing = cloud_cli::json(&what, &done.stdout)?;
        let mut versions = Vec::new();
        for entry in cloud_cli::entries(&what, &listing)? {
            // The prefix also lists `<state>.tfenv/…` and `<state>env:<workspace>`.
            if listed_name(&what, entry)?.as_deref() != Some(self.state.as_str()) {
                continue;
            }
            // Without blob versioning the blob has no version ID: it is the current
            // state, listed as S3 lists an unversioned object, version `null`.
            let id = cloud_cli::text(entry.get("versionId"));
            let properties = entry.get("properties");
            versions.push(Version {
                latest: id.is_none() || entry.get("isCurrentVersion") == Some(&true.into()),
                id: id.unwrap_or_else(|| UNVERSIONED.to_string()),
                modified: cloud_cli::time(properties.and_then(|p| p.get("lastModified"))),
                bytes: cloud_cli::number(properties.and_then(|p| p.get("contentLength")))
                    .unwrap_or(0),
                deleted: entry.get("deleted") == Some(&true.into()),
            });
        }
        // Version IDs are the times the versions were made (ISO 8601, UTC).
        versions.sort_by(|a, b| (b.modified, &b.id).cmp(&(a.modified, &a.id)));
        Ok(versions)
    }

    pub(super) async fn version_head(&self, id: &str, max: u64) -> anyhow::Result<Vec<u8>> {
        let id = checked_version(id)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let landing = Landing::temporary()?;
        let end = (max - 1).to_string();
        if !self
            .fetch(&self.state, Some(id), Some(&end), &landing)
            .await?
        {
            anyhow::bail!("{} has no version `{id}`", self.show(&self.state));
        }
        let mut head = landing.read()?;
        head.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        Ok(head)
    }

    pub(super) async fn download_version(&self, id: &str, dest: &Path) -> anyhow::Result<()> {
        let id = checked_version(id)?;
        let landing = Landing::beside(dest)?;
        if !self.fetch(&self.state, Some(id), None, &landing).await? {
            anyhow::bail!("{} has no version `{id}`", self.show(&self.state));
        }
        landing.land(dest)
    }

    /// `az storage blob download` of `blob` (a version of it, its first `end + 1` bytes)
    /// into the landing's file; `false` when there is no such blob or version.
    async fn fetch(
        &self,
        blob: &str,
        version: Option<&str>,
        end: Option<&str>,
        landing: &Landing,
    ) -> anyhow::Result<bool> {
        let file = landing.file().to_string_lossy().into_owned();
        let mut args = vec!["--name", blob, "--file", &file];
        if let Some(version) = version.filter(|v| *v != UNVERSIONED) {
            args.extend(["--version-id", version]);
        }
        if let Some(end) = end {
            args.extend(["--start-range", "0", "--end-range", end]);
        }
        args.push("--no-progress");
        let shown = match version {
            Some(version) => format!("{} (version `{version}`)", self.show(blob)),
            None => self.show(blob),
        };
        let what = format!("`az storage blob download` of `{shown}`");
        let done = self.run(&self.call("download", &args), &what).await?;
        if done.success() {
            return Ok(true);
        }
        let stderr = done.stderr_text();
        if stderr.contains("BlobNotFound") || stderr.contains("The specified blob does not exist") {
            return Ok(false);
        }
        Err(cloud_cli::failure(&what, &done, &self.refused(READ)))
    }
}

/// The version ID of a blob without versions (blob versioning off): the blob itself.
const UNVERSIONED: &str = "null";

/// A listed blob's name; `None` for the paging entry (`nextMarker`) az may print.
fn listed_name(what: &str, entry: &serde_json::Value) -> anyhow::Result<Option<String>> {
    match entry.get("name") {
        Some(serde_json::Value::String(name)) => Ok(Some(name.clone())),
        _ if entry.get("nextMarker").is_some() => Ok(None),
        _ => anyhow::bail!("{what} printed a blob without a name: {entry}"),
    }
}

/// A ledger object's name, relative to the folder: not empty, not absolute.
fn checked_name(name: &str) -> anyhow::Result<&str> {
    anyhow::ensure!(
        !name.is_empty() && !name.starts_with('/'),
        "`{name}` is not a name in the shared ledger"
    );
    Ok(name)
}

/// A version ID as `az` takes it after `--version-id`.
fn checked_version(id: &str) -> anyhow::Result<&str> {
    anyhow::ensure!(
        !id.is_empty() && !id.starts_with('-') && !id.chars().any(char::is_whitespace),
        "`{id}` is not an Azure blob version ID (they look like `2026-01-12T09:30:00.1234567Z`)"
    );
    Ok(id)
}

/// `az storage account blob-service-properties show`: whether the storage account keeps
/// blob versions (`isVersioningEnabled`). A management call: it runs as the account
/// `az login` signed in, not with the backend's account key or SAS token.
pub(super) async fn versioning(store: &Store) -> anyhow::Result<bool> {
    let backend = &store.backend;
    let account = backend.setting("storage_account_name").unwrap_or_default();
    let mut args = vec![
        "storage".to_string(),
        "account".into(),
        "blob-service-properties".into(),
        "show".into(),
        "--account-name".into(),
        account.clone(),
    ];
    if let Some(group) = backend.setting("resource_group_name") {
        args.extend(["--resource-group".into(), group]);
    }
    args.extend(["--output".into(), "json".into()]);
    // The subscription the backend names, as terraform and `tfenv bootstrap` use it: az's
    // default one may not hold the account.
    if let Some(subscription) = backend
        .setting("subscription_id")
        .filter(|s| !s.trim().is_empty())
    {
        args.extend(["--subscription".into(), subscription]);
    }
    let inv = Invocation::new(az_binary()?, &args);
    let what = format!("`az storage account blob-service-properties show` of `{account}`");
    let done = cloud_cli::run(&*store.runner, &inv, store.timeout, &what).await?;
    if !done.success() {
        let refused = cloud_cli::Refused {
            identity: "the account `az login` signed in".to_string(),
            credential_fix: "log in with `az login` (reading a storage account's settings needs Azure AD, not the account key)",
            permission: format!(
                "`Microsoft.Storage/storageAccounts/blobServices/read` on the storage account `{account}` (e.g. the Reader role)"
            ),
        };
        return Err(cloud_cli::failure(&what, &done, &refused));
    }
    let shown = cloud_cli::json(&what, &done.stdout)?;
    Ok(shown.get("isVersioningEnabled") == Some(&true.into()))
}

pub(super) fn location(backend: &Backend) -> String {
    let account = backend
        .setting("storage_account_name")
        .unwrap_or_else(|| "?".into());
    let container = backend
        .setting("container_name")
        .unwrap_or_else(|| "?".into());
    let key = backend
        .setting("key")
        .unwrap_or_else(|| "terraform.tfstate".into());
    let key = match backend.workspace_name() {
        "default" => key,
        workspace => format!("{key}env:{workspace}"),
    };
    format!("azurerm://{account}/{container}/{key}")
}

#[cfg(test)]
mod tests {
    use super::super::tests::backend;
    use super::*;
    use serde_json::json;

    #[test]
    fn location_names_account_container_and_key() {
        let settings = json!({"storage_account_name": "acct", "container_name": "tfstate", "key": "prod.tfstate"});
        assert_eq!(
            location(&backend("azurerm", settings.clone(), None)),
            "azurerm://acct/tfstate/prod.tfstate"
        );
        assert_eq!(
            location(&backend("azurerm", settings, Some("qa"))),
            "azurerm://acct/tfstate/prod.tfstateenv:qa"
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

    const KEY: &str = "c2VjcmV0";

    fn store(settings: Value, cli: &Arc<Cli>) -> Store {
        backend("azurerm", settings, None)
            .store(cli.clone())
            .expect("azurerm has a store")
    }

    fn keyed() -> Value {
        json!({"storage_account_name": "acct", "container_name": "tfstate", "key": "prod.tfstate", "access_key": KEY})
    }

    fn blobs(store: &Store) -> Blobs<'_> {
        Blobs::with_bin(store, "az".into())
    }

    /// A blob as `az storage blob list --output json` prints it.
    fn listed(
        name: &str,
        bytes: u64,
        modified: &str,
        version: Option<&str>,
        current: Option<bool>,
    ) -> Value {
        json!({
            "container": "tfstate",
            "content": "",
            "deleted": false,
            "isCurrentVersion": current,
            "metadata": {},
            "name": name,
            "properties": {
                "blobType": "BlockBlob",
                "contentLength": bytes,
                "contentSettings": {"contentType": "application/json"},
                "creationTime": "2026-11-01T08:00:00+00:00",
                "lastModified": modified,
                "lease": {"duration": null, "state": "available", "status": "unlocked"}
            },
            "snapshot": null,
            "tagCount": null,
            "versionId": version
        })
    }

    /// The arguments without the value after `--file` (a temporary path).
    fn without_file(args: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let mut skip = false;
        for arg in args {
            if skip {
                skip = false;
                out.push("<file>".to_string());
                continue;
            }
            skip = arg == "--file";
            out.push(arg.clone());
        }
        out
    }

    fn argv(words: &str) -> Vec<String> {
        words.split(' ').map(str::to_string).collect()
    }

    #[tokio::test]
    async fn a_record_is_uploaded_create_only_with_the_key_in_the_environment() {
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(&["storage", "blob", "upload"], Reply::ok("{}"))
                .expect(
                    &["storage", "blob", "upload"],
                    Reply::fail(1, "ERROR: The specified blob already exists.\nRequestId:1\nTime:2026-11-30T12:00:00Z\nErrorCode:BlobAlreadyExists\nIf you want to overwrite the existing one, please add --overwrite in your command.\n"),
                )
                .expect(
                    &["storage", "blob", "upload"],
                    Reply::fail(1, "ERROR: This request is not authorized to perform this operation using this permission.\nErrorCode:AuthorizationPermissionMismatch\n"),
                ),
        );
        let store = store(keyed(), &cli);
        let blobs = blobs(&store);
        let name = "history/20261130T120000Z-host-42.json";
        assert_eq!(
            blobs.create(name, Body::Bytes(b"{}")).await.unwrap(),
            Created::Created
        );
        assert_eq!(
            blobs.create(name, Body::Bytes(b"{}")).await.unwrap(),
            Created::Exists
        );
        let err = blobs.create(name, Body::Bytes(b"{}")).await.unwrap_err();
        // The key was accepted: a permission the identity lacks, not bad credentials.
        assert!(super::super::is_permission(&err), "{err:#}");
        assert_eq!(
            err.to_string(),
            "permission denied: `az storage blob upload` to `azurerm://acct/tfstate/prod.tfstate.tfenv/history/20261130T120000Z-host-42.json`: ERROR: This request is not authorized to perform this operation using this permission.; tfenv used the account key (`access_key` in the backend config)"
        );
        let hint = crate::error::hint_for(&err).unwrap();
        assert!(
            hint.contains("`Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write` on the container `tfstate` of `acct`"),
            "{hint}"
        );
        let calls = cli.calls();
        assert_eq!(calls.len(), 3);
        for (args, env) in &calls {
            assert_eq!(
                without_file(args),
                argv(
                    "storage blob upload --account-name acct --container-name tfstate --name prod.tfstate.tfenv/history/20261130T120000Z-host-42.json --file <file> --overwrite false --no-progress"
                ),
            );
            assert_eq!(env, &[("AZURE_STORAGE_KEY".to_string(), KEY.to_string())]);
            assert!(!args.iter().any(|a| a.contains(KEY)), "{args:?}");
        }
        // The bytes went through a file that is gone once the upload is over.
        let file = flag(&calls[0].0, "--file");
        assert!(!Path::new(&file).exists(), "{file}");
    }

    fn flag(args: &[String], name: &str) -> String {
        let at = args.iter().position(|a| a == name).unwrap();
        args[at + 1].clone()
    }

    #[tokio::test]
    async fn a_listing_is_everything_under_the_prefix_in_name_order() {
        let listing = json!([
            listed("prod.tfstate.tfenv/history/b.json", 120, "2026-11-30T12:00:00+00:00", None, None),
            listed("prod.tfstate.tfenv/history/a.json", 80, "2026-11-29T12:00:00+00:00", None, None),
            {"name": "prod.tfstate.tfenv/history/c.json"},
            {"nextMarker": null},
        ]);
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(&["storage", "blob", "list"], Reply::ok(&listing.to_string()))
                .expect(&["storage", "blob", "list"], Reply::ok("[]\n"))
                .expect(&["storage", "blob", "list"], Reply::ok(""))
                .expect(&["storage", "blob", "list"], Reply::ok("Traceback (most recent call last):"))
                .expect(&["storage", "blob", "list"], Reply::ok(r#"[{"properties": {}}]"#))
                .expect(&["storage", "blob", "list"], Reply::ok(r#"{"name": "x"}"#))
                .expect(
                    &["storage", "blob", "list"],
                    Reply::fail(1, "ERROR: The specified container does not exist.\nErrorCode:ContainerNotFound\n"),
                ),
        );
        let store = store(
            json!({"storage_account_name": "acct", "container_name": "tfstate", "key": "prod.tfstate", "use_azuread_auth": true}),
            &cli,
        );
        let blobs = blobs(&store);
        let objects = blobs.list("history/").await.unwrap();
        let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            ["history/a.json", "history/b.json", "history/c.json"]
        );
        assert_eq!(objects[0].bytes, 80);
        assert_eq!(
            objects[0].modified,
            Some("2026-11-29T12:00:00Z".parse().unwrap())
        );
        // No properties: no size or time, not an error.
        assert_eq!((objects[2].bytes, objects[2].modified), (0, None));
        assert!(blobs.list("history/").await.unwrap().is_empty());
        for garbage in ["not JSON", "not JSON", "without a name", "not a list"] {
            let err = blobs.list("history/").await.unwrap_err();
            assert!(format!("{err:#}").contains(garbage), "{garbage}: {err:#}");
        }
        let err = blobs.list("history/").await.unwrap_err();
        assert!(!super::super::is_auth(&err));
        assert_eq!(
            err.to_string(),
            "`az storage blob list` of `azurerm://acct/tfstate/prod.tfstate.tfenv/history/` failed: ERROR: The specified container does not exist."
        );
        for (args, env) in cli.calls() {
            assert_eq!(
                args,
                argv(
                    "storage blob list --account-name acct --container-name tfstate --prefix prod.tfstate.tfenv/history/ --num-results * --output json --auth-mode login"
                ),
            );
            assert!(env.is_empty(), "{env:?}");
        }
    }

    #[tokio::test]
    async fn reads_and_downloads_land_whole_files_and_a_missing_blob_is_none() {
        let missing =
            "ERROR: The specified blob does not exist.\nRequestId:1\nErrorCode:BlobNotFound\n";
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(&["storage", "blob", "download"], Reply::ok("{}"))
                .expect(&["storage", "blob", "download"], Reply::fail(1, missing))
                .expect(&["storage", "blob", "download"], Reply::ok("{}"))
                .expect(&["storage", "blob", "download"], Reply::fail(1, missing)),
        )
        .writing(b"{\"record\":1}")
        .writing(b"backup bytes");
        let store = store(
            json!({"storage_account_name": "acct", "container_name": "tfstate", "key": "prod.tfstate", "sas_token": "sv=x&sig=y"}),
            &cli,
        );
        let blobs = blobs(&store);
        assert_eq!(
            blobs.read("history/a.json").await.unwrap().as_deref(),
            Some(&b"{\"record\":1}"[..])
        );
        assert_eq!(blobs.read("history/b.json").await.unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("backup.tfstate");
        assert!(blobs.download("backups/x.tfstate", &dest).await.unwrap());
        assert_eq!(std::fs::read(&dest).unwrap(), b"backup bytes");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let other = dir.path().join("other.tfstate");
        assert!(!blobs.download("backups/y.tfstate", &other).await.unwrap());
        assert!(!other.exists());
        // Nothing but the download is left in its folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let calls = cli.calls();
        let names = [
            "history/a.json",
            "history/b.json",
            "backups/x.tfstate",
            "backups/y.tfstate",
        ];
        for ((args, env), name) in calls.iter().zip(names) {
            assert_eq!(
                without_file(args),
                argv(&format!(
                    "storage blob download --account-name acct --container-name tfstate --name prod.tfstate.tfenv/{name} --file <file> --no-progress"
                )),
            );
            assert_eq!(
                env,
                &[(
                    "AZURE_STORAGE_SAS_TOKEN".to_string(),
                    "sv=x&sig=y".to_string()
                )]
            );
        }
        // Downloads go beside their destination, never through a shared temp folder.
        assert!(Path::new(&flag(&calls[2].0, "--file")).starts_with(dir.path()));
    }

    #[tokio::test]
    async fn versions_are_the_state_blobs_own_newest_first() {
        let listing = json!([
            listed(
                "prod.tfstate",
                900,
                "2026-11-28T10:00:00+00:00",
                Some("2026-11-28T10:00:00.0000000Z"),
                None
            ),
            listed(
                "prod.tfstate",
                950,
                "2026-11-30T10:00:00+00:00",
                Some("2026-11-30T10:00:00.0000000Z"),
                Some(true)
            ),
            listed(
                "prod.tfstate",
                920,
                "2026-11-29T10:00:00+00:00",
                Some("2026-11-29T10:00:00.0000000Z"),
                Some(false)
            ),
            // Other blobs under the same prefix, and a blob written before versioning.
            listed(
                "prod.tfstate.tfenv/history/a.json",
                80,
                "2026-11-30T11:00:00+00:00",
                Some("2026-11-30T11:00:00.0000000Z"),
                Some(true)
            ),
            listed(
                "prod.tfstateenv:qa",
                10,
                "2026-11-30T11:00:00+00:00",
                Some("2026-11-30T11:00:01.0000000Z"),
                Some(true)
            ),
        ]);
        // Blob versioning off: the blob alone, without a version ID.
        let unversioned = json!([listed(
            "prod.tfstate",
            700,
            "2026-11-01T10:00:00+00:00",
            None,
            None
        )]);
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(
                    &["storage", "blob", "list"],
                    Reply::ok(&listing.to_string()),
                )
                .expect(&["storage", "blob", "list"], Reply::ok("[]"))
                .expect(&["storage", "blob", "list"], Reply::ok("{"))
                .expect(
                    &["storage", "blob", "list"],
                    Reply::ok(&unversioned.to_string()),
                )
                .expect(&["storage", "blob", "download"], Reply::ok("{}")),
        )
        .writing(b"{\"version\": 4}");
        let store = store(keyed(), &cli);
        let blobs = blobs(&store);
        let versions = blobs.versions().await.unwrap();
        let shown: Vec<(&str, u64, bool)> = versions
            .iter()
            .map(|v| (v.id.as_str(), v.bytes, v.latest))
            .collect();
        assert_eq!(
            shown,
            [
                ("2026-11-30T10:00:00.0000000Z", 950, true),
                ("2026-11-29T10:00:00.0000000Z", 920, false),
                ("2026-11-28T10:00:00.0000000Z", 900, false),
            ]
        );
        assert!(versions.iter().all(|v| !v.deleted));
        assert!(blobs.versions().await.unwrap().is_empty());
        assert!(blobs.versions().await.is_err());
        // As S3 lists an unversioned object: version `null`, the current blob.
        let only = blobs.versions().await.unwrap();
        assert_eq!(
            only.iter()
                .map(|v| (v.id.as_str(), v.bytes, v.latest))
                .collect::<Vec<_>>(),
            [("null", 700, true)]
        );
        assert_eq!(
            blobs.version_head("null", 100).await.unwrap(),
            b"{\"version\": 4}"
        );
        let mut calls = cli.calls();
        let (head, _) = calls.pop().unwrap();
        assert_eq!(
            without_file(&head),
            argv(
                "storage blob download --account-name acct --container-name tfstate --name prod.tfstate --file <file> --start-range 0 --end-range 99 --no-progress"
            ),
            "the blob itself, without --version-id"
        );
        for (args, _) in calls {
            assert_eq!(
                args,
                argv(
                    "storage blob list --account-name acct --container-name tfstate --prefix prod.tfstate --include v --num-results * --output json"
                ),
            );
        }
    }

    #[tokio::test]
    async fn one_version_is_read_by_its_id_its_head_by_a_byte_range() {
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(&["storage", "blob", "download"], Reply::ok("{}"))
                .expect(&["storage", "blob", "download"], Reply::ok("{}"))
                .expect(
                    &["storage", "blob", "download"],
                    Reply::fail(
                        1,
                        "ERROR: The specified blob does not exist.\nErrorCode:BlobNotFound\n",
                    ),
                ),
        )
        .writing(b"{\"serial\":7,\"lineage\":\"abc\"}")
        .writing(b"{\"version\":4}");
        let store = store(keyed(), &cli);
        let blobs = blobs(&store);
        let id = "2026-11-28T10:00:00.0000000Z";
        assert_eq!(
            blobs.version_head(id, 16).await.unwrap(),
            b"{\"serial\":7,\"lin"[..].to_vec(),
            "never more than asked for"
        );
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("v.tfstate");
        blobs.download_version(id, &dest).await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"{\"version\":4}");
        let err = blobs
            .download_version(id, &dir.path().join("w"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("azurerm://acct/tfstate/prod.tfstate has no version `{id}`")
        );
        // Nothing runs for an empty head or an ID az would take for a flag.
        assert!(blobs.version_head(id, 0).await.unwrap().is_empty());
        assert!(blobs.version_head("--help", 10).await.is_err());
        let calls = cli.calls();
        assert_eq!(calls.len(), 3);
        assert_eq!(
            without_file(&calls[0].0),
            argv(&format!(
                "storage blob download --account-name acct --container-name tfstate --name prod.tfstate --file <file> --version-id {id} --start-range 0 --end-range 15 --no-progress"
            )),
        );
        assert_eq!(
            without_file(&calls[1].0),
            argv(&format!(
                "storage blob download --account-name acct --container-name tfstate --name prod.tfstate --file <file> --version-id {id} --no-progress"
            )),
        );
    }

    /// A CLI that never answers.
    struct Hangs;

    #[async_trait::async_trait]
    impl crate::process::Runner for Hangs {
        async fn run(
            &self,
            _: &Invocation,
            _: crate::process::RunOptions,
        ) -> anyhow::Result<crate::process::Finished> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_call_that_does_not_answer_is_stopped_at_the_stores_deadline() {
        let store = backend("azurerm", keyed(), None)
            .store(Arc::new(Hangs))
            .unwrap()
            .with_timeout(std::time::Duration::from_millis(50));
        let err = blobs(&store).list("history/").await.unwrap_err();
        assert!(super::super::is_unreachable(&err), "{err:#}");
        assert!(
            err.to_string().starts_with(
                "`az storage blob list` of `azurerm://acct/tfstate/prod.tfstate.tfenv/history/` did not answer within 50ms"
            ),
            "{err}"
        );
    }
}
