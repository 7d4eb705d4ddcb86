//! Objects beside an environment's state, in the backend's own storage: the shared
//! ledger under `<state key>.tfenv/` (DESIGN.md §12), and the versions of the state
//! object itself (`backups --versions`, `restore version:<ID>`). s3 through the AWS SDK,
//! azurerm through `az`, gcs through `gcloud` — each with the endpoint and credentials
//! the backend's lock reader uses. Only remote backends tfenv knows have a store.
//!
//! Names handed to a store are relative to its folder `<state key>.tfenv/`
//! (`history/20261130T120000Z-host-42-1a2b3c.json`); the store adds the folder.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Backend, BackendKind, azurerm, gcs, s3_store};
use crate::process::Runner;

/// The folder beside the state object that holds the shared ledger.
pub const FOLDER_SUFFIX: &str = ".tfenv/";

/// How long one call to the store (one `az`/`gcloud` run) may take unless the command
/// says otherwise (`with_timeout`): the default of `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The storage of one environment's remote backend.
#[derive(Clone)]
pub struct Store {
    pub(super) backend: Backend,
    pub(super) runner: Arc<dyn Runner>,
    /// Each call to the storage gets this long; then it is stopped (its process group
    /// killed) and the error is `Unreachable`.
    pub(super) timeout: Duration,
}

/// An object in the store's folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Relative to the store's folder: `history/….json`.
    pub name: String,
    pub bytes: u64,
    pub modified: Option<DateTime<Utc>>,
}

/// One version of the state object (an S3 object version, an Azure blob version, a GCS
/// generation).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    pub id: String,
    pub modified: Option<DateTime<Utc>>,
    pub bytes: u64,
    /// The current version of the state.
    pub latest: bool,
    /// A delete marker (S3) or a deleted version: there is no state in it.
    pub deleted: bool,
}

/// Whether a bucket keeps object versions, and the command that turns them on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioning {
    pub enabled: bool,
    /// s3: versioning was on and is `Suspended`: the old versions are kept, new writes
    /// are not versioned.
    pub suspended: bool,
    pub enable: String,
}

/// What a create-only write found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    Created,
    /// An object of that name was there already; it was left as it was.
    Exists,
}

/// What to write.
pub enum Body<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

impl Backend {
    /// This backend's store, for the remote backends tfenv knows (s3, azurerm, gcs);
    /// `None` for local and other backends.
    pub fn store(&self, runner: Arc<dyn Runner>) -> Option<Store> {
        matches!(
            self.kind,
            BackendKind::S3 | BackendKind::AzureRm | BackendKind::Gcs
        )
        .then(|| Store {
            backend: self.clone(),
            runner,
            timeout: DEFAULT_TIMEOUT,
        })
    }
}

impl Store {
    /// The same store, each of whose calls gets `timeout` (`--timeout`).
    pub fn with_timeout(mut self, timeout: Duration) -> Store {
        self.timeout = timeout;
        self
    }

    /// Where the ledger folder is, for people: `s3://bucket/<state key>.tfenv/`.
    pub fn location(&self) -> String {
        format!(
            "{}{FOLDER_SUFFIX}",
            self.backend.remote_location().unwrap_or_default()
        )
    }

    /// Where the state object is, for people.
    pub fn state_location(&self) -> String {
        self.backend.remote_location().unwrap_or_default()
    }

    /// Writes `name` only if no object of that name exists (S3 `If-None-Match: *`,
    /// `az … --overwrite false`, gcs `--if-generation-match=0`): never rewrites one.
    pub async fn create(&self, name: &str, body: Body<'_>) -> anyhow::Result<Created> {
        match self.backend.kind {
            BackendKind::S3 => s3_store::create(&self.backend, name, body).await,
            BackendKind::AzureRm => azurerm::Blobs::new(self)?.create(name, body).await,
            BackendKind::Gcs => gcs::Objects::new(self)?.create(name, body).await,
            BackendKind::Local | BackendKind::Other(_) => Err(self.none()),
        }
    }

    /// Every object whose name starts with `dir` (`history/`), in name order.
    pub async fn list(&self, dir: &str) -> anyhow::Result<Vec<Object>> {
        match self.backend.kind {
            BackendKind::S3 => s3_store::list(&self.backend, dir).await,
            BackendKind::AzureRm => azurerm::Blobs::new(self)?.list(dir).await,
            BackendKind::Gcs => gcs::Objects::new(self)?.list(dir).await,
            BackendKind::Local | BackendKind::Other(_) => Err(self.none()),
        }
    }

    /// The whole of a small object (a record, a manifest entry); `None` when missing.
    pub async fn read(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self.backend.kind {
            BackendKind::S3 => s3_store::read(&self.backend, name).await,
            BackendKind::AzureRm => azurerm::Blobs::new(self)?.read(name).await,
            BackendKind::Gcs => gcs::Objects::new(self)?.read(name).await,
            BackendKind::Local | BackendKind::Other(_) => Err(self.none()),
        }
    }

    /// Streams object `name` into the new file `dest` (0600); `false` when missing.
    pub async fn download(&self, name: &str, dest: &Path) -> anyhow::Result<bool> {
        match self.backend.kind {
            BackendKind::S3 => s3_store::download(&self.backend, name, dest).await,
            BackendKind::AzureRm => azurerm::Blobs::new(self)?.download(name, dest).await,
            BackendKind::Gcs => gcs::Objects::new(self)?.download(name, dest).await,
            BackendKind::Local | BackendKind::Other(_) => Err(self.none()),
        }
    }

    /// The versions of the state object, newest first.
    pub async fn versions(&self) -> anyhow::Result<Vec<Version>> {
        match self.backend.kind {
            BackendKind::S3 => s3_store::versions(&self.backend).await,
            BackendKind::AzureRm => azurerm::Blobs::new(self)?.versions().await,
            BackendKind::Gcs => gcs::Objects::new(self)?.versions().await,
            BackendKind::Local | BackendKind::Other(_) => Err(self.none()),
        }
    }

    /// The first `max` bytes of one version of the state object (for its header).
    pub async fn version_head(&self, id: &str, max: u64) -> anyhow::Result<Vec<u8>> {
        match self.backend.kind {
            BackendKind::S3 => s3_store::version_head(&self.backend, id, max).await,
            BackendKind::AzureRm => azurerm::Blobs::new(self)?.version_head(id, max).await,
            BackendKind::Gcs => gcs::Objects::new(self)?.version_head(id, max).await,
            BackendKind::Local | BackendKind::Other(_) => Err(self.none()),
        }
    }

    /// Streams one version of the state object into the new file `dest` (0600).
    pub async fn download_version(&self, id: &str, dest: &Path) -> anyhow::Result<()> {
        match self.backend.kind {
            BackendKind::S3 => s3_store::download_version(&self.backend, id, dest).await,
            BackendKind::AzureRm => azurerm::Blobs::new(self)?.download_version(id, dest).await,
            BackendKind::Gcs => gcs::Objects::new(self)?.download_version(id, dest).await,
            BackendKind::Local | BackendKind::Other(_) => Err(self.none()),
        }
    }

    /// The bucket (s3, gcs) or storage account (azurerm) the state lives in, as one
    /// string: environments that share it share its versioning, checked once.
    pub fn bucket(&self) -> String {
        match self.backend.kind {
            BackendKind::S3 => format!(
                "s3://{}",
                self.backend.setting("bucket").unwrap_or_default()
            ),
            BackendKind::AzureRm => format!(
                "azurerm://{}",
                self.backend
                    .setting("storage_account_name")
                    .unwrap_or_default()
            ),
            BackendKind::Gcs => format!(
                "gs://{}",
                self.backend.setting("bucket").unwrap_or_default()
            ),
            BackendKind::Local | BackendKind::Other(_) => String::new(),
        }
    }

    /// Whether the bucket (storage account) keeps object versions: s3
    /// `GetBucketVersioning`, azurerm `az storage account blob-service-properties show`
    /// (`isVersioningEnabled`), gcs `gcloud storage buckets describe` (versioning). An
    /// error when it could not be told (no permission, no answer): never "off".
    pub async fn versioning(&self) -> anyhow::Result<Versioning> {
        let (enabled, suspended) = match self.backend.kind {
            BackendKind::S3 => match s3_store::versioning(&self.backend).await? {
                Some(enabled) => (enabled, !enabled),
                None => (false, false),
            },
            BackendKind::AzureRm => (azurerm::versioning(self).await?, false),
            BackendKind::Gcs => (gcs::versioning(self).await?, false),
            BackendKind::Local | BackendKind::Other(_) => return Err(self.none()),
        };
        Ok(Versioning {
            enabled,
            suspended,
            enable: self.enable_versioning(),
        })
    }

    /// The cloud CLI command that turns versioning on for the bucket (storage account):
    /// for s3 at the backend config's endpoint, region and profile (when it sets them),
    /// so it reaches the bucket tfenv read.
    fn enable_versioning(&self) -> String {
        let setting = |name: &str| self.backend.setting(name).unwrap_or_default();
        match self.backend.kind {
            BackendKind::S3 => {
                let mut command = format!(
                    "aws s3api put-bucket-versioning --bucket {} --versioning-configuration Status=Enabled",
                    shell_words::quote(&setting("bucket"))
                );
                let settings = super::aws::AwsSettings::from_backend(&self.backend, &|_| None).ok();
                let configured = |name: &str| self.backend.setting(name).filter(|v| !v.is_empty());
                let options = [
                    (
                        "--endpoint-url",
                        settings.as_ref().and_then(|s| s.s3_endpoint.clone()),
                    ),
                    ("--region", configured("region")),
                    ("--profile", configured("profile")),
                ];
                for (option, value) in options {
                    if let Some(value) = value {
                        command.push_str(&format!(" {option} {}", shell_words::quote(&value)));
                    }
                }
                command
            }
            BackendKind::AzureRm => {
                let group = self
                    .backend
                    .setting("resource_group_name")
                    .map(|g| format!(" --resource-group {g}"))
                    .unwrap_or_default();
                let subscription = self
                    .backend
                    .setting("subscription_id")
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| format!(" --subscription {s}"))
                    .unwrap_or_default();
                format!(
                    "az storage account blob-service-properties update --account-name {}{group} --enable-versioning true{subscription}",
                    setting("storage_account_name")
                )
            }
            BackendKind::Gcs => format!(
                "gcloud storage buckets update gs://{} --versioning",
                setting("bucket")
            ),
            BackendKind::Local | BackendKind::Other(_) => String::new(),
        }
    }

    /// The error of a store made for a backend `store()` makes none for.
    fn none(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "a {} backend has no store beside its state",
            self.backend.kind
        )
    }
}
