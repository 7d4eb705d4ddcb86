//! The azurerm backend: state in blob `<key>` of `<container_name>` in
//! `<storage_account_name>`; a non-default workspace appends `env:<workspace>` to the key.

use super::Backend;

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
