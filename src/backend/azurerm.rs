//! The azurerm backend: state in blob `<key>` of `<container_name>` in
//! `<storage_account_name>`; a non-default workspace appends `env:<workspace>` to the key.

use super::Backend;
use super::lock::{LockState, StateLock};
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
    let bin = super::cli_binary(
        "az",
        "the Azure CLI",
        "see https://learn.microsoft.com/cli/azure/install-azure-cli",
    )?;
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
    if let Some(key) = backend.setting("access_key") {
        inv.env.push(("AZURE_STORAGE_KEY".into(), key.into()));
    } else if let Some(sas) = backend.setting("sas_token") {
        inv.env.push(("AZURE_STORAGE_SAS_TOKEN".into(), sas.into()));
    } else if backend.setting("use_azuread_auth").as_deref() == Some("true") {
        inv.args.extend(["--auth-mode".into(), "login".into()]);
    }
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
