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

fn az_binary() -> anyhow::Result<PathBuf> {
    super::cli_binary(
        "az",
        "the Azure CLI",
        "see https://learn.microsoft.com/cli/azure/install-azure-cli",
    )
}

/// The backend's credentials for one `az storage` call, as terraform's azurerm backend
/// takes them: the account key or SAS token through the environment (never on the
/// command line), else Azure AD (`use_azuread_auth`) with `--auth-mode login`.
fn credentials(backend: &Backend, inv: &mut Invocation) {
    if let Some(key) = backend.setting("access_key") {
        inv.env.push(("AZURE_STORAGE_KEY".into(), key.into()));
    } else if let Some(sas) = backend.setting("sas_token") {
        inv.env.push(("AZURE_STORAGE_SAS_TOKEN".into(), sas.into()));
    } else if backend.setting("use_azuread_auth").as_deref() == Some("true") {
        inv.args.extend(["--auth-mode".into(), "login".into()]);
    }
}

/// What to fix when Azure refuses tfenv's credentials.
const AUTH_FIX: &str = "check the backend config's `access_key`, `sas_token` or `use_azuread_auth` (with `az login`): the identity needs read, write and list on the container's blobs";

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
        let backend = &store.backend;
        Ok(Blobs {
            bin: az_binary()?,
            account: backend.setting("storage_account_name").unwrap_or_default(),
            container: backend.setting("container_name").unwrap_or_default(),
            state: blob_name(backend),
            store,
        })
    }

    /// The blob of ledger object `name`.
    fn blob(&self, name: &str) -> String {
        format!("{}{FOLDER_SUFFIX}{name}", self.state)
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
        Err(cloud_cli::failure(&what, &done, AUTH_FIX))
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
            return Err(cloud_cli::failure(&what, &done, AUTH_FIX));
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
        if !self.fetch(&self.blob(checked_name(name)?), None, None, &landing).await? {
            return Ok(None);
        }
        landing.read().map(Some)
    }

    pub(super) async fn download(&self, name: &str, dest: &Path) -> anyhow::Result<bool> {
        let landing = Landing::beside(dest)?;
        if !self.fetch(&self.blob(checked_name(name)?), None, None, &landing).await? {
            return Ok(false);
        }
        landing.land(dest)?;
        Ok(true)
    }

    pub(super) async fn versions(&self) -> anyhow::Result<Vec<Version>> {
        let what = format!("`az storage blob list --include v` of `{}`", self.show(&self.state));
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
            return Err(cloud_cli::failure(&what, &done, AUTH_FIX));
        }
        let listing = cloud_cli::json(&what, &done.stdout)?;
        let mut versions = Vec::new();
        for entry in cloud_cli::entries(&what, &listing)? {
            // The prefix also lists `<state>.tfenv/…` and `<state>env:<workspace>`.
            if listed_name(&what, entry)?.as_deref() != Some(self.state.as_str()) {
                continue;
            }
            // Without blob versioning a blob has no version ID: nothing to restore.
            let Some(id) = cloud_cli::text(entry.get("versionId")) else {
                continue;
            };
            let properties = entry.get("properties");
            versions.push(Version {
                id,
                modified: cloud_cli::time(properties.and_then(|p| p.get("lastModified"))),
                bytes: cloud_cli::number(properties.and_then(|p| p.get("contentLength")))
                    .unwrap_or(0),
                latest: entry.get("isCurrentVersion") == Some(&true.into()),
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
        if let Some(version) = version {
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
        Err(cloud_cli::failure(&what, &done, AUTH_FIX))
    }
}

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
