//! azurerm: the resource group (only with `--location`), the storage account (StorageV2,
//! TLS 1.2 minimum, no public blob access, HTTPS only, blob versioning, soft delete of
//! blobs and containers) and the container (private), through `az`.
//!
//! Management calls (the group, the account and its blob service properties) run as the
//! account `az login` signed in, as `azurerm::versioning` reads them; container calls
//! with the backend's credentials (account key or SAS token through the environment, or
//! `--auth-mode login`), as the lock reader and the store make theirs. Every call prints
//! JSON (`--output json`) and names the backend's `subscription_id` when it sets one.
//!
//! What counts as never set (**completed** on a plain run) and what as set otherwise
//! (**fixed** only with `--fix`): a property Azure reports as absent or `null` was never
//! set; so is a soft delete policy that is off, because Azure reports `enabled: false`
//! for an account nobody turned it on for and the two cannot be told apart (turning it on
//! deletes nothing: deleted blobs and containers are kept 7 days). A value only a choice
//! makes is set otherwise: a minimum TLS version below 1.2, public blob access `true`,
//! HTTPS-only `false`, blob versioning `false` (Azure reports `null` until versioning is
//! first set), a container with public access.

use std::path::PathBuf;

use serde_json::Value;

use super::{Op as AnyOp, Options, Parent, Step, StepKind, Survey};
use crate::backend::azurerm::{AUTH_FIX, az_binary, credentials, identity};
use crate::backend::{Backend, cloud_cli};
use crate::error::TfenvError;
use crate::process::{Finished, Invocation};

/// Where the permissions bootstrap needs are listed.
const DOCS: &str = "docs/bootstrap.md (Permissions)";

/// How many days soft delete keeps a deleted blob or container.
const RETENTION_DAYS: &str = "7";

/// The replication of a storage account created without `--sku`.
const DEFAULT_SKU: &str = "Standard_LRS";

/// The SKUs of a StorageV2 account that holds block blobs (the premium ones need
/// another kind of account).
pub(super) const SKUS: [&str; 6] = [
    "Standard_LRS",
    "Standard_GRS",
    "Standard_RAGRS",
    "Standard_ZRS",
    "Standard_GZRS",
    "Standard_RAGZRS",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Op {
    CreateGroup,
    /// StorageV2 with every account setting of bootstrap in the one create call.
    CreateAccount,
    Versioning,
    BlobSoftDelete,
    ContainerSoftDelete,
    MinimumTls,
    NoPublicAccess,
    HttpsOnly,
    /// `new_account`: in an account this run creates, whose key the backend config
    /// cannot hold yet: az looks the key up as the signed-in account.
    CreateContainer {
        new_account: bool,
    },
    /// `--public-access off` on an existing container.
    PrivateContainer,
}

fn step(kind: StepKind, change: impl Into<String>, op: Op) -> Step {
    Step::new(kind, change, AnyOp::AzureRm(op))
}

pub(super) async fn survey_group(backend: &Backend, options: &Options) -> anyhow::Result<Survey> {
    Az::new(backend, options)?.survey_group().await
}

pub(super) async fn survey_account(
    backend: &Backend,
    parent_missing: bool,
    options: &Options,
) -> anyhow::Result<Survey> {
    Az::new(backend, options)?
        .survey_account(parent_missing)
        .await
}

pub(super) async fn survey_container(
    backend: &Backend,
    parent: Parent,
    options: &Options,
) -> anyhow::Result<Survey> {
    Az::new(backend, options)?.survey_container(parent).await
}

pub(super) async fn apply(backend: &Backend, op: &Op, options: &Options) -> anyhow::Result<()> {
    Az::new(backend, options)?.apply(op).await
}

/// One backend's resources, and the `az` that reaches them.
struct Az<'a> {
    backend: &'a Backend,
    options: &'a Options,
    bin: PathBuf,
    group: String,
    account: String,
    container: String,
    subscription: Option<String>,
}

/// How a call ended: its JSON, or the failed run.
enum Reply {
    Done(Value),
    Failed(Finished),
}

impl<'a> Az<'a> {
    fn new(backend: &'a Backend, options: &'a Options) -> anyhow::Result<Az<'a>> {
        Ok(Az::with_bin(backend, options, az_binary()?))
    }

    fn with_bin(backend: &'a Backend, options: &'a Options, bin: PathBuf) -> Az<'a> {
        let setting = |name: &str| backend.setting(name).unwrap_or_default();
        Az {
            group: setting("resource_group_name"),
            account: setting("storage_account_name"),
            container: setting("container_name"),
            subscription: backend
                .setting("subscription_id")
                .filter(|s| !s.trim().is_empty()),
            backend,
            options,
            bin,
        }
    }

    /// `az <words> --output json [--subscription S]`, as the account `az login` signed in.
    fn management(&self, words: &[&str]) -> Invocation {
        let mut inv = Invocation::new(&self.bin, words);
        inv.args.extend(["--output".into(), "json".into()]);
        if let Some(subscription) = &self.subscription {
            inv.args
                .extend(["--subscription".into(), subscription.into()]);
        }
        inv
    }

    /// `az storage container <verb> --name C --account-name A <args>`, with the backend's
    /// credentials.
    fn container_call(&self, verb: &str, args: &[&str]) -> Invocation {
        let mut inv = self.container_invocation(verb, args);
        credentials(self.backend, &mut inv);
        inv
    }

    /// A container call in an account this run created: as the signed-in account (az
    /// looks the new account's key up), never with the backend config's key or SAS
    /// token, which cannot be the new account's, nor with one the shell holds.
    fn new_account_container_call(&self, verb: &str, args: &[&str]) -> Invocation {
        let mut inv = self.container_invocation(verb, args);
        inv.env_remove.extend(
            [
                "AZURE_STORAGE_KEY",
                "AZURE_STORAGE_SAS_TOKEN",
                "AZURE_STORAGE_CONNECTION_STRING",
                "AZURE_STORAGE_AUTH_MODE",
            ]
            .map(Into::into),
        );
        inv
    }

    /// `az storage container <verb> --name C --account-name A <args>`, no credentials yet.
    fn container_invocation(&self, verb: &str, args: &[&str]) -> Invocation {
        let mut words = vec![
            "storage",
            "container",
            verb,
            "--name",
            &self.container,
            "--account-name",
            &self.account,
        ];
        words.extend(args);
        self.management(&words)
    }

    /// What a refused management call says: the `az login` account, and `action` on
    /// `scope`.
    fn as_signed_in(&self, action: &str, scope: &str) -> cloud_cli::Refused {
        let identity = match &self.subscription {
            Some(s) => format!("the account `az login` signed in (subscription `{s}`)"),
            None => "the account `az login` signed in (its default subscription)".to_string(),
        };
        cloud_cli::Refused {
            identity,
            credential_fix: "log in with `az login` (creating and reading resource groups and storage accounts needs an Azure AD sign-in; an account key or SAS token is not enough)",
            permission: format!("`{action}` on {scope}"),
        }
    }

    /// What a refused container call says: the backend's credentials, and `data_action`
    /// on the container (or, when az looks the account key up itself, the right to).
    fn with_backend_credentials(&self, data_action: &str) -> cloud_cli::Refused {
        let keyed = ["access_key", "sas_token"]
            .iter()
            .any(|s| self.backend.setting(s).is_some())
            || self.backend.setting("use_azuread_auth").as_deref() == Some("true");
        let permission = if keyed {
            format!(
                "`{data_action}` on the container `{}` of `{}` (a SAS token needs it in its permissions)",
                self.container, self.account
            )
        } else {
            format!(
                "`Microsoft.Storage/storageAccounts/listkeys/action` on the storage account `{}` (az looks its key up)",
                self.account
            )
        };
        cloud_cli::Refused {
            identity: identity(self.backend),
            credential_fix: AUTH_FIX,
            permission,
        }
    }

    fn group_scope(&self) -> String {
        format!("the resource group `{}`", self.group)
    }

    fn account_scope(&self) -> String {
        format!("the storage account `{}`", self.account)
    }

    /// Runs `inv`: its JSON when it succeeded (`null` for no output), else what it did.
    async fn run(&self, inv: &Invocation, what: &str) -> anyhow::Result<Reply> {
        let done = cloud_cli::run(&*self.options.runner, inv, self.options.timeout, what).await?;
        if !done.success() {
            return Ok(Reply::Failed(done));
        }
        if done.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(Reply::Done(Value::Null));
        }
        cloud_cli::json(what, &done.stdout).map(Reply::Done)
    }

    /// Runs `inv`, which must succeed.
    async fn call(
        &self,
        inv: &Invocation,
        what: &str,
        refused: &cloud_cli::Refused,
    ) -> anyhow::Result<Value> {
        match self.run(inv, what).await? {
            Reply::Done(value) => Ok(value),
            Reply::Failed(done) => Err(failure(what, &done, refused)),
        }
    }

    async fn survey_group(&self) -> anyhow::Result<Survey> {
        let group = &self.group;
        let what = format!("`az group show` of `{group}`");
        let inv = self.management(&["group", "show", "--name", group]);
        let shown = match self.run(&inv, &what).await? {
            Reply::Done(shown) => shown,
            Reply::Failed(done) if not_found(&done) => {
                let Some(location) = self.location()? else {
                    return Err(TfenvError::config(
                        format!(
                            "resource group `{group}` does not exist; tfenv creates it only with --location (the region of the group and of the storage account)"
                        ),
                        Some(
                            "pass --location <region> (e.g. westeurope), or create it yourself"
                                .to_string(),
                        ),
                    )
                    .into());
                };
                return Ok(Survey {
                    exists: false,
                    found: Vec::new(),
                    steps: vec![step(
                        StepKind::Create,
                        format!("create it in `{location}`"),
                        Op::CreateGroup,
                    )],
                    notes: Vec::new(),
                });
            }
            Reply::Failed(done) => {
                let refused = self.as_signed_in(
                    "Microsoft.Resources/subscriptions/resourceGroups/read",
                    &self.group_scope(),
                );
                return Err(failure(&what, &done, &refused));
            }
        };
        let found = text(shown.get("location")).map(|location| format!("in `{location}`"));
        Ok(Survey {
            exists: true,
            found: found.into_iter().collect(),
            steps: Vec::new(),
            notes: Vec::new(),
        })
    }

    async fn survey_account(&self, parent_missing: bool) -> anyhow::Result<Survey> {
        let account = &self.account;
        let shown = if parent_missing {
            None
        } else {
            let what = format!("`az storage account show` of `{account}`");
            let inv = self.management(&[
                "storage",
                "account",
                "show",
                "--name",
                account,
                "--resource-group",
                &self.group,
            ]);
            match self.run(&inv, &what).await? {
                Reply::Done(shown) => Some(shown),
                Reply::Failed(done) if not_found(&done) => None,
                Reply::Failed(done) => {
                    let refused = self.as_signed_in(
                        "Microsoft.Storage/storageAccounts/read",
                        &self.group_scope(),
                    );
                    return Err(failure(&what, &done, &refused));
                }
            }
        };
        match shown {
            Some(shown) => self.read_account(&shown).await,
            None => self.plan_account().await,
        }
    }

    /// A storage account that does not exist: its name must be free (names are global
    /// across Azure), then it is created with every setting.
    async fn plan_account(&self) -> anyhow::Result<Survey> {
        let account = &self.account;
        let sku = self.sku()?;
        let location = self.location()?;
        let what = format!("`az storage account check-name` of `{account}`");
        let inv = self.management(&["storage", "account", "check-name", "--name", account]);
        let refused = self.as_signed_in(
            "Microsoft.Storage/checknameavailability/read",
            "the subscription",
        );
        let checked = self.call(&inv, &what, &refused).await?;
        let Some(available) = flag(checked.get("nameAvailable")) else {
            anyhow::bail!("{what} printed no `nameAvailable`: {checked}");
        };
        if !available {
            let reason = text(checked.get("reason")).unwrap_or_default();
            if reason == "AlreadyExists" {
                let subscription = match &self.subscription {
                    Some(s) => format!("subscription `{s}`"),
                    None => "this subscription".to_string(),
                };
                return Err(TfenvError::config(
                    format!(
                        "the storage account name `{account}` is taken, and not by an account in the resource group `{}` of {subscription}: storage account names are global across Azure",
                        self.group
                    ),
                    Some(
                        "choose another `storage_account_name` in the backend config; if the account is yours, set `resource_group_name` (and `subscription_id`) to where it is"
                            .to_string(),
                    ),
                )
                .into());
            }
            let message = text(checked.get("message")).unwrap_or(reason);
            return Err(TfenvError::config(
                format!("Azure refuses the storage account name `{account}`: {message}"),
                Some("choose another `storage_account_name` in the backend config".to_string()),
            )
            .into());
        }
        let place = match &location {
            Some(location) => format!("in `{location}`"),
            None => format!("in the location of `{}`", self.group),
        };
        Ok(Survey {
            exists: false,
            found: Vec::new(),
            steps: vec![
                step(
                    StepKind::Create,
                    format!(
                        "create it {place}: StorageV2, {sku}, TLS 1.2 minimum, no public blob access, HTTPS only"
                    ),
                    Op::CreateAccount,
                ),
                step(StepKind::Create, "turn on blob versioning", Op::Versioning),
                step(
                    StepKind::Create,
                    format!("turn on soft delete of blobs ({RETENTION_DAYS} days)"),
                    Op::BlobSoftDelete,
                ),
                step(
                    StepKind::Create,
                    format!("turn on soft delete of containers ({RETENTION_DAYS} days)"),
                    Op::ContainerSoftDelete,
                ),
            ],
            notes: self.new_key_note().into_iter().collect(),
        })
    }

    /// A new account has a new key: the one the backend config holds is not it.
    fn new_key_note(&self) -> Option<String> {
        let held = ["access_key", "sas_token"]
            .into_iter()
            .find(|s| self.backend.setting(s).is_some())?;
        Some(format!(
            "the backend config's `{held}` cannot be the new account's: afterwards, put its key there (`az storage account keys list --account-name {} --resource-group {}`), or use `use_azuread_auth = true`",
            self.account, self.group
        ))
    }

    /// An existing storage account: its settings (`az storage account show`), then its
    /// blob service's (`blob-service-properties show`).
    async fn read_account(&self, shown: &Value) -> anyhow::Result<Survey> {
        let account = &self.account;
        let kind = text(shown.get("kind")).unwrap_or_default();
        if !["StorageV2", "BlockBlobStorage", "BlobStorage"].contains(&kind.as_str()) {
            return Err(TfenvError::config(
                format!(
                    "the storage account `{account}` is of kind `{}`, which has no blob versioning: terraform state wants a StorageV2 account",
                    if kind.is_empty() { "?" } else { &kind }
                ),
                Some(format!(
                    "upgrade it (`az storage account update --name {account} --resource-group {}{} --set kind=StorageV2 --access-tier Hot`, which cannot be undone), or name another `storage_account_name` in the backend config",
                    self.group,
                    self.subscription
                        .as_ref()
                        .map(|s| format!(" --subscription {s}"))
                        .unwrap_or_default()
                )),
            )
            .into());
        }
        let mut found = Vec::new();
        let mut steps = Vec::new();
        let sku = text(shown.pointer("/sku/name"));
        let location = text(shown.get("location"));
        found.push(
            [Some(kind), sku, location.map(|l| format!("in `{l}`"))]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", "),
        );
        match text(shown.get("minimumTlsVersion")) {
            Some(v) if v == "TLS1_2" || v == "TLS1_3" => {
                found.push(format!("minimum TLS version {v}"))
            }
            Some(v) => steps.push(
                step(StepKind::Fix, "require TLS 1.2 at least", Op::MinimumTls)
                    .found(format!("minimum TLS version {v}")),
            ),
            None => steps.push(step(
                StepKind::Complete,
                "require TLS 1.2 at least",
                Op::MinimumTls,
            )),
        }
        match flag(shown.get("allowBlobPublicAccess")) {
            Some(false) => found.push("public blob access disallowed".into()),
            Some(true) => steps.push(
                step(
                    StepKind::Fix,
                    "disallow public blob access",
                    Op::NoPublicAccess,
                )
                .found("public blob access allowed"),
            ),
            None => steps.push(step(
                StepKind::Complete,
                "disallow public blob access",
                Op::NoPublicAccess,
            )),
        }
        match flag(shown.get("enableHttpsTrafficOnly")) {
            Some(true) => found.push("HTTPS only".into()),
            Some(false) => steps
                .push(step(StepKind::Fix, "allow HTTPS only", Op::HttpsOnly).found("HTTP allowed")),
            None => steps.push(step(StepKind::Complete, "allow HTTPS only", Op::HttpsOnly)),
        }
        let what = format!("`az storage account blob-service-properties show` of `{account}`");
        let inv = self.management(&[
            "storage",
            "account",
            "blob-service-properties",
            "show",
            "--account-name",
            account,
            "--resource-group",
            &self.group,
        ]);
        let refused = self.as_signed_in(
            "Microsoft.Storage/storageAccounts/blobServices/read",
            &self.account_scope(),
        );
        let blob = self.call(&inv, &what, &refused).await?;
        match flag(blob.get("isVersioningEnabled")) {
            Some(true) => found.push("blob versioning enabled".into()),
            Some(false) => steps.push(
                step(
                    StepKind::Fix,
                    "turn blob versioning back on",
                    Op::Versioning,
                )
                .found("blob versioning off"),
            ),
            None => steps.push(step(
                StepKind::Complete,
                "turn on blob versioning",
                Op::Versioning,
            )),
        }
        for (policy, what, op) in [
            ("deleteRetentionPolicy", "blobs", Op::BlobSoftDelete),
            (
                "containerDeleteRetentionPolicy",
                "containers",
                Op::ContainerSoftDelete,
            ),
        ] {
            let policy = blob.get(policy);
            if flag(policy.and_then(|p| p.get("enabled"))) == Some(true) {
                let days = cloud_cli::number(policy.and_then(|p| p.get("days")))
                    .map(|d| format!(" ({d} days)"))
                    .unwrap_or_default();
                found.push(format!("soft delete of {what}{days}"));
            } else {
                steps.push(step(
                    StepKind::Complete,
                    format!("turn on soft delete of {what} ({RETENTION_DAYS} days)"),
                    op,
                ));
            }
        }
        Ok(Survey {
            exists: true,
            found,
            steps,
            notes: Vec::new(),
        })
    }

    async fn survey_container(&self, parent: Parent) -> anyhow::Result<Survey> {
        let parent_missing = parent == Parent::Missing;
        // In an account this run made, as the signed-in account (see `Op::CreateContainer`).
        let call = |verb: &str| {
            if parent == Parent::MadeNow {
                self.new_account_container_call(verb, &[])
            } else {
                self.container_call(verb, &[])
            }
        };
        let create = |new_account| Survey {
            exists: false,
            found: Vec::new(),
            steps: vec![step(
                StepKind::Create,
                "create it, private (no public access)",
                Op::CreateContainer { new_account },
            )],
            notes: Vec::new(),
        };
        if parent_missing {
            return Ok(create(true));
        }
        let shown = format!("`{}` of `{}`", self.container, self.account);
        let read = self.with_backend_credentials(
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
        );
        let what = format!("`az storage container exists` for {shown}");
        let exists = self.call(&call("exists"), &what, &read).await?;
        match flag(exists.get("exists")) {
            Some(true) => {}
            Some(false) => return Ok(create(false)),
            None => anyhow::bail!("{what} printed no `exists`: {exists}"),
        }
        let what = format!("`az storage container show` of {shown}");
        let container = self.call(&call("show"), &what, &read).await?;
        let access = text(container.pointer("/properties/publicAccess"))
            .filter(|a| !a.eq_ignore_ascii_case("off"));
        let mut survey = Survey {
            exists: true,
            found: Vec::new(),
            steps: Vec::new(),
            notes: Vec::new(),
        };
        match access {
            None => survey.found.push("private".into()),
            Some(access) => survey.steps.push(
                step(
                    StepKind::Fix,
                    "make it private (no public access)",
                    Op::PrivateContainer,
                )
                .found(format!("public access `{access}`")),
            ),
        }
        Ok(survey)
    }

    async fn apply(&self, op: &Op) -> anyhow::Result<()> {
        let (group, account) = (self.group.as_str(), self.account.as_str());
        let blob_service = |flags: &[&'static str]| {
            let mut words = vec![
                "storage",
                "account",
                "blob-service-properties",
                "update",
                "--account-name",
                account,
                "--resource-group",
                group,
            ];
            words.extend(flags);
            self.management(&words)
        };
        let update = |flags: &[&'static str]| {
            let mut words = vec![
                "storage",
                "account",
                "update",
                "--name",
                account,
                "--resource-group",
                group,
            ];
            words.extend(flags);
            self.management(&words)
        };
        const WRITE_ACCOUNT: &str = "Microsoft.Storage/storageAccounts/write";
        const WRITE_BLOB_SERVICE: &str = "Microsoft.Storage/storageAccounts/blobServices/write";
        const WRITE_CONTAINER: &str =
            "Microsoft.Storage/storageAccounts/blobServices/containers/write";
        let (inv, what, refused) = match op {
            Op::CreateGroup => {
                let location = self.location()?.ok_or_else(|| {
                    anyhow::anyhow!("creating the resource group `{group}` needs --location")
                })?;
                (
                    self.management(&["group", "create", "--name", group, "--location", &location]),
                    format!("`az group create` of `{group}`"),
                    self.as_signed_in(
                        "Microsoft.Resources/subscriptions/resourceGroups/write",
                        "the subscription",
                    ),
                )
            }
            Op::CreateAccount => return self.create_account().await,
            Op::Versioning => (
                blob_service(&["--enable-versioning", "true"]),
                format!("turning on blob versioning of `{account}`"),
                self.as_signed_in(WRITE_BLOB_SERVICE, &self.account_scope()),
            ),
            Op::BlobSoftDelete => (
                blob_service(&[
                    "--enable-delete-retention",
                    "true",
                    "--delete-retention-days",
                    RETENTION_DAYS,
                ]),
                format!("turning on soft delete of the blobs of `{account}`"),
                self.as_signed_in(WRITE_BLOB_SERVICE, &self.account_scope()),
            ),
            Op::ContainerSoftDelete => (
                blob_service(&[
                    "--enable-container-delete-retention",
                    "true",
                    "--container-delete-retention-days",
                    RETENTION_DAYS,
                ]),
                format!("turning on soft delete of the containers of `{account}`"),
                self.as_signed_in(WRITE_BLOB_SERVICE, &self.account_scope()),
            ),
            Op::MinimumTls => (
                update(&["--min-tls-version", "TLS1_2"]),
                format!("requiring TLS 1.2 for `{account}`"),
                self.as_signed_in(WRITE_ACCOUNT, &self.account_scope()),
            ),
            Op::NoPublicAccess => (
                update(&["--allow-blob-public-access", "false"]),
                format!("disallowing public blob access to `{account}`"),
                self.as_signed_in(WRITE_ACCOUNT, &self.account_scope()),
            ),
            Op::HttpsOnly => (
                update(&["--https-only", "true"]),
                format!("allowing only HTTPS to `{account}`"),
                self.as_signed_in(WRITE_ACCOUNT, &self.account_scope()),
            ),
            Op::CreateContainer { new_account } => (
                if *new_account {
                    self.new_account_container_call("create", &["--public-access", "off"])
                } else {
                    self.container_call("create", &["--public-access", "off"])
                },
                format!(
                    "`az storage container create` of `{}` in `{account}`",
                    self.container
                ),
                self.with_backend_credentials(WRITE_CONTAINER),
            ),
            Op::PrivateContainer => (
                self.container_call("set-permission", &["--public-access", "off"]),
                format!(
                    "turning off public access to the container `{}` of `{account}`",
                    self.container
                ),
                self.with_backend_credentials(WRITE_CONTAINER),
            ),
        };
        self.call(&inv, &what, &refused).await.map(|_| ())
    }

    async fn create_account(&self) -> anyhow::Result<()> {
        let account = &self.account;
        let sku = self.sku()?;
        let location = self.location()?;
        let mut words = vec![
            "storage",
            "account",
            "create",
            "--name",
            account,
            "--resource-group",
            &self.group,
            "--kind",
            "StorageV2",
            "--sku",
            sku,
            "--min-tls-version",
            "TLS1_2",
            "--allow-blob-public-access",
            "false",
            "--https-only",
            "true",
        ];
        if let Some(location) = &location {
            words.extend(["--location", location]);
        }
        let inv = self.management(&words);
        let what = format!("`az storage account create` of `{account}`");
        match self.run(&inv, &what).await? {
            Reply::Done(_) => Ok(()),
            Reply::Failed(done) if done.stderr_text().contains("StorageAccountAlreadyTaken") => {
                Err(TfenvError::config(
                    format!(
                        "{what} failed: the name is taken: another subscription or resource group has a storage account named `{account}` (storage account names are global across Azure)"
                    ),
                    Some(
                        "choose another `storage_account_name` in the backend config".to_string(),
                    ),
                )
                .into())
            }
            Reply::Failed(done) => Err(failure(
                &what,
                &done,
                &self.as_signed_in(
                    "Microsoft.Storage/storageAccounts/write",
                    &self.group_scope(),
                ),
            )),
        }
    }

    /// `--location`, checked: az would take a value starting with `-` for a flag.
    fn location(&self) -> anyhow::Result<Option<String>> {
        let Some(location) = self.options.location.as_deref() else {
            return Ok(None);
        };
        let location = location.trim();
        if location.is_empty() || location.starts_with('-') {
            return Err(TfenvError::usage(
                format!("`{location}` is not an Azure region"),
                Some("pass --location <region> (e.g. westeurope)".to_string()),
            )
            .into());
        }
        Ok(Some(location.to_string()))
    }

    /// `--sku`, or Standard_LRS: one a StorageV2 account holding block blobs can have.
    fn sku(&self) -> anyhow::Result<&'static str> {
        let Some(wanted) = self.options.sku.as_deref() else {
            return Ok(DEFAULT_SKU);
        };
        SKUS.iter()
            .find(|s| s.eq_ignore_ascii_case(wanted.trim()))
            .copied()
            .ok_or_else(|| {
                TfenvError::usage(
                    format!(
                        "`{wanted}` is not a storage account SKU bootstrap creates (a StorageV2 account for block blobs)"
                    ),
                    Some(format!("pass --sku with one of: {}", SKUS.join(", "))),
                )
                .into()
            })
    }
}

/// What az prints for a resource group or storage account that is not there: the
/// error code, or exit code 3 (az's "resource not found").
fn not_found(done: &Finished) -> bool {
    let stderr = done.stderr_text();
    if ["AuthorizationFailed", "AuthenticationFailed", "az login"]
        .iter()
        .any(|sign| stderr.contains(sign))
    {
        return false;
    }
    done.code == Some(3)
        || [
            "ResourceGroupNotFound",
            "ResourceNotFound",
            "could not be found",
        ]
        .iter()
        .any(|sign| stderr.contains(sign))
}

/// A failed call as an error, the permissions to grant listed in docs/bootstrap.md.
fn failure(what: &str, done: &Finished, refused: &cloud_cli::Refused) -> anyhow::Error {
    cloud_cli::failure_in(what, done, refused, DOCS)
}

/// A non-empty string az printed.
fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A boolean az printed; `None` when absent or `null` (never set).
fn flag(value: Option<&Value>) -> Option<bool> {
    value.and_then(Value::as_bool)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::Op as AnyOp;
    use super::*;
    use crate::backend::cloud_cli::testing::Cli;
    use crate::backend::tests::backend;
    use crate::backend::{is_auth, is_permission};
    use crate::error::{exit_for, hint_for};
    use crate::exit::Exit;
    use crate::process::scripted::{Reply as Answer, ScriptedRunner};

    fn options(cli: &Arc<Cli>, location: Option<&str>) -> Options {
        super::super::test_options(cli.clone(), location)
    }

    /// Signed in with Azure AD, in a named subscription.
    fn azuread() -> Backend {
        backend(
            "azurerm",
            json!({"resource_group_name": "rg-state", "storage_account_name": "acct", "container_name": "tfstate",
                "key": "prod.tfstate", "subscription_id": "sub-1", "use_azuread_auth": true}),
            None,
        )
    }

    /// With the account key, in az's default subscription.
    fn keyed() -> Backend {
        backend(
            "azurerm",
            json!({"resource_group_name": "rg-state", "storage_account_name": "acct", "container_name": "tfstate",
                "key": "prod.tfstate", "access_key": "c2VjcmV0"}),
            None,
        )
    }

    fn az<'a>(backend: &'a Backend, options: &'a Options) -> Az<'a> {
        Az::with_bin(backend, options, "az".into())
    }

    fn argv(words: &str) -> Vec<String> {
        words.split(' ').map(str::to_string).collect()
    }

    fn args(cli: &Cli) -> Vec<Vec<String>> {
        cli.calls().into_iter().map(|(args, _)| args).collect()
    }

    /// Each step as (kind, op, what is there now).
    fn steps(survey: &Survey) -> Vec<(StepKind, Op, Option<&str>)> {
        survey
            .steps
            .iter()
            .map(|s| match &s.op {
                AnyOp::AzureRm(op) => (s.kind, op.clone(), s.found.as_deref()),
                other => panic!("not an azurerm step: {other:?}"),
            })
            .collect()
    }

    const GROUP_MISSING: &str = "ERROR: (ResourceGroupNotFound) Resource group 'rg-state' could not be found.\nCode: ResourceGroupNotFound\nMessage: Resource group 'rg-state' could not be found.\n";

    fn account(tls: Value, public: Value, https: Value) -> String {
        json!({
            "name": "acct", "kind": "StorageV2", "location": "westeurope",
            "sku": {"name": "Standard_LRS", "tier": "Standard"},
            "minimumTlsVersion": tls, "allowBlobPublicAccess": public, "enableHttpsTrafficOnly": https,
        })
        .to_string()
    }

    fn blob_service(versioning: Value, blobs: Value, containers: Value) -> String {
        json!({
            "isVersioningEnabled": versioning,
            "deleteRetentionPolicy": {"allowPermanentDelete": false, "days": if blobs == json!(true) { json!(7) } else { json!(null) }, "enabled": blobs},
            "containerDeleteRetentionPolicy": {"days": if containers == json!(true) { json!(14) } else { json!(null) }, "enabled": containers},
        })
        .to_string()
    }

    #[tokio::test]
    async fn from_nothing_with_location_the_group_account_and_container_are_created_with_every_setting()
     {
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(&["group", "show"], Answer::fail(3, GROUP_MISSING))
                .expect(
                    &["storage", "account", "check-name"],
                    Answer::ok(r#"{"message": null, "nameAvailable": true, "reason": null}"#),
                )
                .expect(
                    &["group", "create"],
                    Answer::ok(r#"{"location": "westeurope"}"#),
                )
                .expect(&["storage", "account", "create"], Answer::ok("{}"))
                .expect(
                    &["storage", "account", "blob-service-properties"],
                    Answer::ok("{}"),
                )
                .expect(
                    &["storage", "account", "blob-service-properties"],
                    Answer::ok("{}"),
                )
                .expect(
                    &["storage", "account", "blob-service-properties"],
                    Answer::ok("{}"),
                )
                .expect(
                    &["storage", "container", "create"],
                    Answer::ok(r#"{"created": true}"#),
                ),
        );
        let backend = azuread();
        let options = options(&cli, Some("westeurope"));
        let az = az(&backend, &options);
        let group = az.survey_group().await.unwrap();
        assert!(!group.exists);
        assert_eq!(steps(&group), [(StepKind::Create, Op::CreateGroup, None)]);
        assert_eq!(group.steps[0].change, "create it in `westeurope`");
        // The group is missing: the account is not looked for, only its name checked.
        let account = az.survey_account(true).await.unwrap();
        assert!(!account.exists);
        assert_eq!(
            steps(&account),
            [
                (StepKind::Create, Op::CreateAccount, None),
                (StepKind::Create, Op::Versioning, None),
                (StepKind::Create, Op::BlobSoftDelete, None),
                (StepKind::Create, Op::ContainerSoftDelete, None),
            ]
        );
        assert_eq!(
            account.steps[0].change,
            "create it in `westeurope`: StorageV2, Standard_LRS, TLS 1.2 minimum, no public blob access, HTTPS only"
        );
        let container = az.survey_container(Parent::Missing).await.unwrap();
        assert_eq!(
            steps(&container),
            [(
                StepKind::Create,
                Op::CreateContainer { new_account: true },
                None
            )]
        );
        for step in group
            .steps
            .iter()
            .chain(&account.steps)
            .chain(&container.steps)
        {
            let AnyOp::AzureRm(op) = &step.op else {
                unreachable!()
            };
            az.apply(op).await.unwrap();
        }
        assert_eq!(
            args(&cli),
            [
                argv("group show --name rg-state --output json --subscription sub-1"),
                argv("storage account check-name --name acct --output json --subscription sub-1"),
                argv(
                    "group create --name rg-state --location westeurope --output json --subscription sub-1"
                ),
                argv(
                    "storage account create --name acct --resource-group rg-state --kind StorageV2 --sku Standard_LRS --min-tls-version TLS1_2 --allow-blob-public-access false --https-only true --location westeurope --output json --subscription sub-1"
                ),
                argv(
                    "storage account blob-service-properties update --account-name acct --resource-group rg-state --enable-versioning true --output json --subscription sub-1"
                ),
                argv(
                    "storage account blob-service-properties update --account-name acct --resource-group rg-state --enable-delete-retention true --delete-retention-days 7 --output json --subscription sub-1"
                ),
                argv(
                    "storage account blob-service-properties update --account-name acct --resource-group rg-state --enable-container-delete-retention true --container-delete-retention-days 7 --output json --subscription sub-1"
                ),
                // In the account just made, as the signed-in account: not with the
                // backend's credentials (a key or SAS token cannot be the new account's).
                argv(
                    "storage container create --name tfstate --account-name acct --public-access off --output json --subscription sub-1"
                ),
            ]
        );
        assert!(cli.calls().iter().all(|(_, env)| env.is_empty()));
    }

    #[tokio::test]
    async fn a_missing_group_without_location_is_an_error_naming_the_flag() {
        let cli = Cli::new(
            ScriptedRunner::default().expect(&["group", "show"], Answer::fail(3, GROUP_MISSING)),
        );
        let backend = keyed();
        let options = options(&cli, None);
        let err = az(&backend, &options).survey_group().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource group `rg-state` does not exist; tfenv creates it only with --location (the region of the group and of the storage account)"
        );
        assert_eq!(
            hint_for(&err),
            Some("pass --location <region> (e.g. westeurope), or create it yourself")
        );
        assert_eq!(
            args(&cli),
            [argv("group show --name rg-state --output json")]
        );
    }

    #[tokio::test]
    async fn an_account_name_taken_elsewhere_is_an_error_before_anything_is_created() {
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(
                    &["storage", "account", "show"],
                    Answer::fail(3, "ERROR: (ResourceNotFound) The Resource 'Microsoft.Storage/storageAccounts/acct' under resource group 'rg-state' was not found.\nCode: ResourceNotFound\n"),
                )
                .expect(
                    &["storage", "account", "check-name"],
                    Answer::ok(r#"{"message": "The storage account named acct is already taken.", "nameAvailable": false, "reason": "AlreadyExists"}"#),
                )
                .expect(
                    &["storage", "account", "create"],
                    Answer::fail(1, "ERROR: (StorageAccountAlreadyTaken) The storage account named acct is already taken.\nCode: StorageAccountAlreadyTaken\n"),
                ),
        );
        let backend = keyed();
        let options = options(&cli, None);
        let az = az(&backend, &options);
        let err = az.survey_account(false).await.unwrap_err();
        assert_eq!(exit_for(&err), Exit::Failure);
        assert_eq!(
            err.to_string(),
            "the storage account name `acct` is taken, and not by an account in the resource group `rg-state` of this subscription: storage account names are global across Azure"
        );
        assert!(
            hint_for(&err)
                .unwrap()
                .starts_with("choose another `storage_account_name`")
        );
        // Taken between the survey and the change: the same error, never "created".
        let err = az.apply(&Op::CreateAccount).await.unwrap_err();
        assert_eq!(exit_for(&err), Exit::Failure);
        assert!(
            hint_for(&err)
                .unwrap()
                .starts_with("choose another `storage_account_name`")
        );
        assert!(err.to_string().contains("the name is taken"), "{err}");
        assert_eq!(
            args(&cli)[..2],
            [
                argv("storage account show --name acct --resource-group rg-state --output json"),
                argv("storage account check-name --name acct --output json"),
            ]
        );
    }

    #[tokio::test]
    async fn everything_in_place_needs_no_step() {
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(
                    &["group", "show"],
                    Answer::ok(r#"{"name": "rg-state", "location": "westeurope"}"#),
                )
                .expect(
                    &["storage", "account", "show"],
                    Answer::ok(&account(json!("TLS1_2"), json!(false), json!(true))),
                )
                .expect(
                    &["storage", "account", "blob-service-properties", "show"],
                    Answer::ok(&blob_service(json!(true), json!(true), json!(true))),
                )
                .expect(
                    &["storage", "container", "exists"],
                    Answer::ok(r#"{"exists": true}"#),
                )
                .expect(
                    &["storage", "container", "show"],
                    Answer::ok(r#"{"name": "tfstate", "properties": {"publicAccess": null}}"#),
                ),
        );
        let backend = keyed();
        let options = options(&cli, None);
        let az = az(&backend, &options);
        let group = az.survey_group().await.unwrap();
        assert_eq!(
            (group.exists, group.found.clone()),
            (true, vec!["in `westeurope`".to_string()])
        );
        let account = az.survey_account(false).await.unwrap();
        assert!(account.exists && account.steps.is_empty(), "{account:?}");
        assert_eq!(
            account.found,
            [
                "StorageV2, Standard_LRS, in `westeurope`",
                "minimum TLS version TLS1_2",
                "public blob access disallowed",
                "HTTPS only",
                "blob versioning enabled",
                "soft delete of blobs (7 days)",
                "soft delete of containers (14 days)",
            ]
        );
        let container = az.survey_container(Parent::Exists).await.unwrap();
        assert!(container.exists && container.steps.is_empty());
        assert_eq!(container.found, ["private"]);
        let calls = cli.calls();
        assert_eq!(
            calls.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>(),
            [
                argv("group show --name rg-state --output json"),
                argv("storage account show --name acct --resource-group rg-state --output json"),
                argv(
                    "storage account blob-service-properties show --account-name acct --resource-group rg-state --output json"
                ),
                argv("storage container exists --name tfstate --account-name acct --output json"),
                argv("storage container show --name tfstate --account-name acct --output json"),
            ]
        );
        // Management calls as the `az login` account; container calls with the key,
        // through the environment and never on the command line.
        for (args, env) in &calls[..3] {
            assert!(env.is_empty(), "{args:?}");
        }
        for (args, env) in &calls[3..] {
            assert_eq!(
                env,
                &[("AZURE_STORAGE_KEY".to_string(), "c2VjcmV0".to_string())]
            );
            assert!(!args.iter().any(|a| a.contains("c2VjcmV0")));
        }
    }

    #[tokio::test]
    async fn settings_never_set_are_completed() {
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(
                    &["storage", "account", "show"],
                    Answer::ok(&account(json!(null), json!(null), json!(null))),
                )
                .expect(
                    &["storage", "account", "blob-service-properties", "show"],
                    // Soft delete `false` is what Azure reports when nobody turned it on.
                    Answer::ok(&blob_service(json!(null), json!(false), json!(false))),
                ),
        );
        let backend = keyed();
        let options = options(&cli, None);
        let account = az(&backend, &options).survey_account(false).await.unwrap();
        assert!(account.exists);
        assert_eq!(
            steps(&account),
            [
                (StepKind::Complete, Op::MinimumTls, None),
                (StepKind::Complete, Op::NoPublicAccess, None),
                (StepKind::Complete, Op::HttpsOnly, None),
                (StepKind::Complete, Op::Versioning, None),
                (StepKind::Complete, Op::BlobSoftDelete, None),
                (StepKind::Complete, Op::ContainerSoftDelete, None),
            ]
        );
        assert_eq!(account.found, ["StorageV2, Standard_LRS, in `westeurope`"]);
    }

    #[tokio::test]
    async fn settings_set_otherwise_are_fixed_saying_what_is_there_now() {
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(
                    &["storage", "account", "show"],
                    Answer::ok(&account(json!("TLS1_0"), json!(true), json!(false))),
                )
                .expect(
                    &["storage", "account", "blob-service-properties", "show"],
                    Answer::ok(&blob_service(json!(false), json!(true), json!(true))),
                )
                .expect(
                    &["storage", "container", "exists"],
                    Answer::ok(r#"{"exists": true}"#),
                )
                .expect(
                    &["storage", "container", "show"],
                    Answer::ok(r#"{"name": "tfstate", "properties": {"publicAccess": "blob"}}"#),
                ),
        );
        let backend = keyed();
        let options = options(&cli, None);
        let az = az(&backend, &options);
        let account = az.survey_account(false).await.unwrap();
        assert_eq!(
            steps(&account),
            [
                (
                    StepKind::Fix,
                    Op::MinimumTls,
                    Some("minimum TLS version TLS1_0")
                ),
                (
                    StepKind::Fix,
                    Op::NoPublicAccess,
                    Some("public blob access allowed")
                ),
                (StepKind::Fix, Op::HttpsOnly, Some("HTTP allowed")),
                (StepKind::Fix, Op::Versioning, Some("blob versioning off")),
            ]
        );
        let container = az.survey_container(Parent::Exists).await.unwrap();
        assert_eq!(
            steps(&container),
            [(
                StepKind::Fix,
                Op::PrivateContainer,
                Some("public access `blob`")
            )]
        );
    }

    #[tokio::test]
    async fn a_missing_container_in_an_existing_account_is_created() {
        let cli = Cli::new(ScriptedRunner::default().expect(
            &["storage", "container", "exists"],
            Answer::ok(r#"{"exists": false}"#),
        ));
        let backend = keyed();
        let options = options(&cli, None);
        let container = az(&backend, &options)
            .survey_container(Parent::Exists)
            .await
            .unwrap();
        assert!(!container.exists);
        assert_eq!(
            steps(&container),
            [(
                StepKind::Create,
                Op::CreateContainer { new_account: false },
                None
            )]
        );
        assert_eq!(cli.script.remaining(), 0);
    }

    #[tokio::test]
    async fn a_denied_read_is_a_permission_error_naming_identity_and_permission_never_created() {
        let denied = "ERROR: (AuthorizationFailed) The client 'ci@example.com' with object id '0000' does not have authorization to perform action 'Microsoft.Storage/storageAccounts/read' over scope '/subscriptions/sub-1/resourceGroups/rg-state/providers/Microsoft.Storage/storageAccounts/acct' or the scope is invalid. If access was recently granted, please refresh your credentials.\nCode: AuthorizationFailed\n";
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(&["storage", "account", "show"], Answer::fail(1, denied))
                .expect(
                    &["storage", "container", "exists"],
                    Answer::fail(1, "ERROR: This request is not authorized to perform this operation using this permission.\nErrorCode:AuthorizationPermissionMismatch\n"),
                ),
        );
        let backend = azuread();
        let options = options(&cli, None);
        let az = az(&backend, &options);
        let err = az.survey_account(false).await.unwrap_err();
        assert!(is_permission(&err), "{err:#}");
        assert!(
            err.to_string().starts_with("permission denied: `az storage account show` of `acct`: ERROR: (AuthorizationFailed)")
                && err.to_string().ends_with("tfenv used the account `az login` signed in (subscription `sub-1`)"),
            "{err}"
        );
        let hint = hint_for(&err).unwrap();
        assert!(
            hint.contains(
                "grant `Microsoft.Storage/storageAccounts/read` on the resource group `rg-state`"
            ) && hint.contains("docs/bootstrap.md (Permissions)"),
            "{hint}"
        );
        let err = az.survey_container(Parent::Exists).await.unwrap_err();
        assert!(is_permission(&err), "{err:#}");
        assert!(
            hint_for(&err).unwrap().contains(
                "`Microsoft.Storage/storageAccounts/blobServices/containers/read` on the container `tfstate` of `acct`"
            ),
            "{err:#}"
        );
        assert!(err.to_string().contains("(`use_azuread_auth`)"), "{err}");
    }

    #[tokio::test]
    async fn no_login_is_an_auth_error_with_the_command_that_logs_in() {
        let cli = Cli::new(ScriptedRunner::default().expect(
            &["group", "show"],
            Answer::fail(1, "ERROR: Please run 'az login' to setup account.\n"),
        ));
        let backend = keyed();
        let options = options(&cli, Some("westeurope"));
        let err = az(&backend, &options).survey_group().await.unwrap_err();
        assert!(is_auth(&err), "{err:#}");
        assert_eq!(
            err.to_string(),
            "`az group show` of `rg-state` failed: ERROR: Please run 'az login' to setup account."
        );
        assert!(
            hint_for(&err)
                .unwrap()
                .starts_with("log in with `az login`")
        );
    }

    #[tokio::test]
    async fn each_change_to_an_existing_account_and_container_is_one_call() {
        let mut script = ScriptedRunner::default();
        for _ in 0..4 {
            script = script.expect(&["storage"], Answer::ok(""));
        }
        let cli = Cli::new(script);
        let backend = keyed();
        let options = options(&cli, None);
        let az = az(&backend, &options);
        for op in [
            Op::MinimumTls,
            Op::NoPublicAccess,
            Op::HttpsOnly,
            Op::PrivateContainer,
        ] {
            az.apply(&op).await.unwrap();
        }
        let calls = cli.calls();
        assert_eq!(
            calls.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>(),
            [
                argv(
                    "storage account update --name acct --resource-group rg-state --min-tls-version TLS1_2 --output json"
                ),
                argv(
                    "storage account update --name acct --resource-group rg-state --allow-blob-public-access false --output json"
                ),
                argv(
                    "storage account update --name acct --resource-group rg-state --https-only true --output json"
                ),
                argv(
                    "storage container set-permission --name tfstate --account-name acct --public-access off --output json"
                ),
            ]
        );
        assert_eq!(
            calls[3].1,
            [("AZURE_STORAGE_KEY".to_string(), "c2VjcmV0".to_string())]
        );
    }

    #[tokio::test]
    async fn the_sku_is_one_a_state_account_can_have_and_the_location_no_flag() {
        let cli = Cli::new(
            ScriptedRunner::default().expect(&["storage", "account", "create"], Answer::ok("{}")),
        );
        let backend = keyed();
        let mut options = options(&cli, None);
        options.sku = Some("standard_zrs".into());
        az(&backend, &options)
            .apply(&Op::CreateAccount)
            .await
            .unwrap();
        // Without --location the account takes its group's.
        assert_eq!(
            args(&cli),
            [argv(
                "storage account create --name acct --resource-group rg-state --kind StorageV2 --sku Standard_ZRS --min-tls-version TLS1_2 --allow-blob-public-access false --https-only true --output json"
            )]
        );
        options.sku = Some("Premium_LRS".into());
        let err = az(&backend, &options)
            .survey_account(true)
            .await
            .unwrap_err();
        assert_eq!(exit_for(&err), Exit::Usage, "{err:#}");
        options.sku = None;
        options.location = Some("--subscription=other".into());
        let err = az(&backend, &options)
            .apply(&Op::CreateGroup)
            .await
            .unwrap_err();
        assert_eq!(exit_for(&err), Exit::Usage, "{err:#}");
        assert_eq!(cli.calls().len(), 1, "nothing ran for either");
    }

    #[tokio::test]
    async fn a_general_purpose_v1_account_is_an_error_saying_how_to_upgrade() {
        let cli = Cli::new(ScriptedRunner::default().expect(
            &["storage", "account", "show"],
            Answer::ok(r#"{"name": "acct", "kind": "Storage", "minimumTlsVersion": "TLS1_2"}"#),
        ));
        let backend = keyed();
        let options = options(&cli, None);
        let err = az(&backend, &options)
            .survey_account(false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is of kind `Storage`"), "{err}");
        assert!(hint_for(&err).unwrap().contains("--set kind=StorageV2"));
    }
}
