//! Creating a remote backend's storage (DESIGN.md §13), secure by default: what an
//! environment's backend config names (an S3 bucket and its DynamoDB lock table; an
//! Azure resource group, storage account and container; a GCS bucket), what of it
//! exists, what is missing or set otherwise, and the calls that create and set it.
//! s3 through the AWS SDK, azurerm through `az`, gcs through `gcloud`, each with the
//! backend's endpoint and credentials, as the lock reader and the store use them.
//!
//! Three kinds of change: a resource that does not exist is **created** with every
//! protection; a protection that was never set on an existing resource (a bucket
//! created by hand without versioning, or a bootstrap that stopped half way) is
//! **completed** on a plain run; a protection someone set otherwise (versioning
//! suspended, a public access setting turned off, a bucket policy of their own) is
//! **fixed** only when asked (`--fix`). Nothing is ever deleted.

mod azurerm;
mod gcs;
mod names;
mod s3;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::{Backend, BackendKind};
use crate::error::TfenvError;
use crate::process::Runner;

/// What every survey and change of one run shares.
#[derive(Clone)]
pub struct Options {
    pub runner: Arc<dyn Runner>,
    /// Each call to a cloud (an SDK request, an `az`/`gcloud` run) gets this long.
    pub timeout: Duration,
    /// `--location`: where a missing Azure resource group, storage account or GCS
    /// bucket is created.
    pub location: Option<String>,
    /// `--sku`: the replication of a missing Azure storage account (Standard_LRS
    /// unless given; `check_options` checks it).
    pub sku: Option<String>,
}

/// One thing in the cloud a backend needs.
#[derive(Clone, Debug)]
pub struct Resource {
    /// The same resource has the same key whichever environment names it: a bucket
    /// shared by environments is surveyed and created once.
    pub key: String,
    /// For people: "S3 bucket `tf-state`".
    pub name: String,
    /// The resource that must exist first (the storage account of a container).
    pub parent: Option<String>,
    /// What it is made with that another environment naming the same resource could
    /// name otherwise (an S3 bucket's region and encryption): a conflict is an error.
    pub made_with: String,
    kind: Kind,
    backend: Backend,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    S3Bucket,
    LockTable,
    ResourceGroup,
    StorageAccount,
    Container,
    GcsBucket,
}

/// What a survey found of one resource.
#[derive(Clone, Debug, Serialize)]
pub struct Survey {
    pub exists: bool,
    /// The protections found in place: "versioning enabled", …
    pub found: Vec<String>,
    /// What it takes to make it what bootstrap makes, in order.
    pub steps: Vec<Step>,
    /// A protection bootstrap leaves unset here, and why.
    pub notes: Vec<String>,
}

/// How a step changes a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// The resource does not exist: create it, or set a protection on what was just
    /// created.
    Create,
    /// A protection was never set on the existing resource: set it.
    Complete,
    /// A protection is set otherwise: change it, only with `--fix`.
    Fix,
}

/// One change to one resource: one call (or a few that belong together).
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub kind: StepKind,
    /// What it does, for people: "turn on versioning".
    pub change: String,
    /// For `Fix`: what is there now ("versioning suspended").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    #[serde(skip)]
    op: Op,
}

/// The call a step makes, per cloud.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    S3(s3::Op),
    AzureRm(azurerm::Op),
    Gcs(gcs::Op),
}

impl Step {
    fn new(kind: StepKind, change: impl Into<String>, op: Op) -> Step {
        Step {
            kind,
            change: change.into(),
            found: None,
            op,
        }
    }

    fn found(mut self, found: impl Into<String>) -> Step {
        self.found = Some(found.into());
        self
    }
}

/// The resources `backend` needs, in the order they are created, each name checked
/// against its cloud's rules before any call is made. Local: none. A backend type tfenv
/// does not create (consul, http, …) is an error saying so.
pub fn resources(backend: &Backend) -> anyhow::Result<Vec<Resource>> {
    let resource = |kind: Kind, key: String, name: String, parent: Option<String>| Resource {
        key,
        name,
        parent,
        made_with: String::new(),
        kind,
        backend: backend.clone(),
    };
    let required = |setting: &str| -> anyhow::Result<String> {
        backend
            .setting(setting)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                TfenvError::config(
                    format!(
                        "the {} backend config sets no `{setting}`: bootstrap does not know what to create",
                        backend.kind
                    ),
                    Some(format!(
                        "set `{setting}` in the environment's backend config (`tfenv envs` shows which file that is)"
                    )),
                )
                .into()
            })
    };
    Ok(match &backend.kind {
        BackendKind::Local => Vec::new(),
        BackendKind::S3 => {
            let bucket = required("bucket")?;
            names::s3_bucket(&bucket)?;
            let endpoint = s3::endpoints(backend)?;
            let mut bucket_resource = resource(
                Kind::S3Bucket,
                format!("s3 {} {bucket}", endpoint.s3),
                format!("S3 bucket `{bucket}`"),
                None,
            );
            bucket_resource.made_with = format!(
                "region `{}`, {}",
                endpoint.region,
                backend
                    .setting("kms_key_id")
                    .filter(|k| !k.is_empty())
                    .map_or_else(|| "SSE-S3".to_string(), |k| format!("SSE-KMS with `{k}`"))
            );
            let mut list = vec![bucket_resource];
            if let Some(table) = backend.setting("dynamodb_table").filter(|t| !t.is_empty()) {
                names::dynamodb_table(&table)?;
                list.push(resource(
                    Kind::LockTable,
                    format!("dynamodb {} {table}", endpoint.dynamodb),
                    format!("DynamoDB table `{table}`"),
                    None,
                ));
            }
            list
        }
        BackendKind::AzureRm => {
            let group = required("resource_group_name")?;
            let account = required("storage_account_name")?;
            let container = required("container_name")?;
            names::resource_group(&group)?;
            names::storage_account(&account)?;
            names::container(&container)?;
            let subscription = backend.setting("subscription_id").unwrap_or_default();
            let group_key = format!("azurerm {subscription} group {group}");
            let account_key = format!("azurerm account {account}");
            vec![
                resource(
                    Kind::ResourceGroup,
                    group_key.clone(),
                    format!("resource group `{group}`"),
                    None,
                ),
                resource(
                    Kind::StorageAccount,
                    account_key.clone(),
                    format!("storage account `{account}`"),
                    Some(group_key),
                ),
                resource(
                    Kind::Container,
                    format!("azurerm container {account}/{container}"),
                    format!("container `{container}` of `{account}`"),
                    Some(account_key),
                ),
            ]
        }
        BackendKind::Gcs => {
            let bucket = required("bucket")?;
            names::gcs_bucket(&bucket)?;
            vec![resource(
                Kind::GcsBucket,
                format!("gcs {bucket}"),
                format!("GCS bucket `gs://{bucket}`"),
                None,
            )]
        }
        BackendKind::Other(name) => {
            return Err(TfenvError::config(
                format!(
                    "tfenv cannot create a `{name}` backend: bootstrap knows s3, azurerm and gcs"
                ),
                Some(format!(
                    "create the {name} backend's storage yourself; tfenv init and deploy work once it exists"
                )),
            )
            .into());
        }
    })
}

/// `--location` and `--sku` checked before any call, and a warning for each given where
/// none of `kinds` uses it (s3 takes its region from the backend config).
pub fn check_options(options: &Options, kinds: &[&BackendKind]) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    let uses = |wanted: &[BackendKind]| kinds.iter().any(|k| wanted.contains(k));
    if let Some(location) = &options.location {
        let ok = !location.is_empty()
            && location.starts_with(|c: char| c.is_ascii_alphanumeric())
            && location
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(TfenvError::usage(
                format!("--location `{location}` is not a region: a region is letters, digits and hyphens"),
                Some("pass an Azure region (westeurope) or a GCS location (europe-west1, EU)".to_string()),
            )
            .into());
        }
        if !uses(&[BackendKind::AzureRm, BackendKind::Gcs]) {
            warnings.push(
                "--location is not used: only azurerm and gcs backends are created in it (an s3 bucket goes in the backend config's `region`)".to_string(),
            );
        }
    }
    if let Some(sku) = &options.sku {
        if !azurerm::SKUS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(sku.trim()))
        {
            return Err(TfenvError::usage(
                format!(
                    "--sku `{sku}` is not a storage account SKU bootstrap creates (a StorageV2 account for block blobs)"
                ),
                Some(format!("pass --sku with one of: {}", azurerm::SKUS.join(", "))),
            )
            .into());
        }
        if !uses(&[BackendKind::AzureRm]) {
            warnings
                .push("--sku is not used: only a new Azure storage account takes it".to_string());
        }
    }
    Ok(warnings)
}

/// Where a resource's parent (the storage account of a container) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parent {
    /// It has none, or it existed before this run.
    Exists,
    /// It does not exist: neither does this resource, and nothing is asked.
    Missing,
    /// This run made it: what the backend config holds for it (an account key) cannot
    /// be its own yet.
    MadeNow,
}

impl Resource {
    /// What exists of this resource and what it takes to make it secure, from reads
    /// only, given where its parent stands.
    pub async fn survey(&self, parent: Parent, options: &Options) -> anyhow::Result<Survey> {
        let parent_missing = parent == Parent::Missing;
        match self.kind {
            Kind::S3Bucket => s3::survey_bucket(&self.backend, options).await,
            Kind::LockTable => s3::survey_table(&self.backend, options).await,
            Kind::ResourceGroup => azurerm::survey_group(&self.backend, options).await,
            Kind::StorageAccount => {
                azurerm::survey_account(&self.backend, parent_missing, options).await
            }
            Kind::Container => azurerm::survey_container(&self.backend, parent, options).await,
            Kind::GcsBucket => gcs::survey_bucket(&self.backend, options).await,
        }
    }

    /// Makes one change of this resource's survey.
    pub async fn apply(&self, step: &Step, options: &Options) -> anyhow::Result<()> {
        match &step.op {
            Op::S3(op) => s3::apply(&self.backend, op, options).await,
            Op::AzureRm(op) => azurerm::apply(&self.backend, op, options).await,
            Op::Gcs(op) => gcs::apply(&self.backend, op, options).await,
        }
    }
}

/// The options of a unit test: `runner` answers the calls, 5s each.
#[cfg(test)]
fn test_options(runner: Arc<dyn Runner>, location: Option<&str>) -> Options {
    Options {
        runner,
        timeout: Duration::from_secs(5),
        location: location.map(str::to_string),
        sku: None,
    }
}
