//! The gcs backend: state at `gs://<bucket>/<prefix>/<workspace>.tfstate`.

use super::Backend;

pub(super) fn location(backend: &Backend) -> String {
    let bucket = backend.setting("bucket").unwrap_or_else(|| "?".into());
    let prefix = backend.setting("prefix").unwrap_or_default();
    let prefix = prefix.trim_end_matches('/');
    let object = format!("{}.tfstate", backend.workspace_name());
    if prefix.is_empty() {
        format!("gs://{bucket}/{object}")
    } else {
        format!("gs://{bucket}/{prefix}/{object}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::backend;
    use super::*;
    use serde_json::json;

    #[test]
    fn location_uses_prefix_and_workspace() {
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
