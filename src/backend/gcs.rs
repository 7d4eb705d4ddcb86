//! The gcs backend: state at `gs://<bucket>/<prefix>/<workspace>.tfstate`.

use super::Backend;
use super::lock::StateLock;
use crate::lock_info::LockInfo;
use crate::process::{Invocation, RunOptions, Runner};

fn object(backend: &Backend, suffix: &str) -> String {
    let bucket = backend.setting("bucket").unwrap_or_else(|| "?".into());
    let prefix = backend.setting("prefix").unwrap_or_default();
    let prefix = prefix.trim_end_matches('/');
    let object = format!("{}.{suffix}", backend.workspace_name());
    if prefix.is_empty() {
        format!("gs://{bucket}/{object}")
    } else {
        format!("gs://{bucket}/{prefix}/{object}")
    }
}

pub(super) fn location(backend: &Backend) -> String {
    object(backend, "tfstate")
}

/// The lock of a gcs state: the object `<prefix>/<workspace>.tflock`. Its generation
/// number is the ID `force-unlock` wants.
pub(super) async fn read_lock(backend: &Backend, runner: &dyn Runner) -> anyhow::Result<StateLock> {
    let bin = super::cli_binary(
        "gcloud",
        "the Google Cloud CLI",
        "see https://cloud.google.com/sdk/docs/install",
    )?;
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

/// gcloud with the credentials and endpoint the backend config names.
fn gcloud(backend: &Backend, bin: &std::path::Path, args: &[&str]) -> Invocation {
    let mut inv = Invocation::new(bin, args);
    if let Some(file) = backend.setting("credentials") {
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
