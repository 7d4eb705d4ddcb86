//! The s3 backend: state at `s3://<bucket>/<key>`; a non-default workspace at
//! `<workspace_key_prefix or env:>/<workspace>/<key>`.

use super::Backend;

pub(super) fn state_key(backend: &Backend) -> String {
    let key = backend.setting("key").unwrap_or_default();
    match backend.workspace_name() {
        "default" => key,
        workspace => {
            let prefix = backend
                .setting("workspace_key_prefix")
                .unwrap_or_else(|| "env:".to_string());
            format!("{prefix}/{workspace}/{key}")
        }
    }
}

pub(super) fn location(backend: &Backend) -> String {
    let bucket = backend.setting("bucket").unwrap_or_else(|| "?".into());
    format!("s3://{bucket}/{}", state_key(backend))
}

#[cfg(test)]
mod tests {
    use super::super::tests::backend;
    use super::*;
    use serde_json::json;

    #[test]
    fn location_is_workspace_aware() {
        let settings = json!({"bucket": "tfstate", "key": "app/terraform.tfstate"});
        assert_eq!(
            location(&backend("s3", settings.clone(), None)),
            "s3://tfstate/app/terraform.tfstate"
        );
        assert_eq!(
            location(&backend("s3", settings, Some("qa"))),
            "s3://tfstate/env:/qa/app/terraform.tfstate"
        );
        let prefixed = json!({"bucket": "b", "key": "k", "workspace_key_prefix": "ws"});
        assert_eq!(
            location(&backend("s3", prefixed, Some("qa"))),
            "s3://b/ws/qa/k"
        );
    }
}
