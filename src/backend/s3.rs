//! The s3 backend: state at `s3://<bucket>/<key>`; a non-default workspace at
//! `<workspace_key_prefix or env:>/<workspace>/<key>`.

use super::lock::StateLock;
use super::{Backend, BackendKind};
use crate::lock_info::LockInfo;
use crate::process::{Invocation, Runner};

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

/// Reads the lock where this s3 backend keeps it: the `<key>.tflock` object
/// (`use_lockfile`), or the DynamoDB item `<bucket>/<state key>` (`dynamodb_table`).
pub(super) async fn read_lock(backend: &Backend, runner: &dyn Runner) -> anyhow::Result<StateLock> {
    let bucket = backend.setting("bucket").unwrap_or_default();
    let key = state_key(backend);
    if backend.setting("use_lockfile").as_deref() == Some("true") {
        let object = format!("s3://{bucket}/{key}.tflock");
        let mut args = vec!["s3".to_string(), "cp".into(), object.clone(), "-".into()];
        args.extend(endpoint_args(backend, "s3", &["endpoint"]));
        let done = aws(backend, runner, args).await?;
        if done.success() {
            let info = LockInfo::parse(&done.stdout_text())
                .map_err(|e| anyhow::anyhow!("`{object}`: {e}"))?;
            return Ok(StateLock::held_by(info, object));
        }
        let stderr = done.stderr_text();
        if ["404", "Not Found", "NoSuchKey", "does not exist"]
            .iter()
            .any(|s| stderr.contains(s))
        {
            return Ok(StateLock::free(object));
        }
        anyhow::bail!(
            "reading `{object}` with the aws CLI failed: {}",
            super::first_error_line(&stderr)
        );
    }
    if let Some(table) = backend.setting("dynamodb_table") {
        let lock_id = format!("{bucket}/{key}");
        let source = format!("dynamodb:{table}/{lock_id}");
        let item_key = serde_json::json!({ "LockID": { "S": lock_id } }).to_string();
        let mut args = vec![
            "dynamodb".to_string(),
            "get-item".into(),
            "--table-name".into(),
            table.clone(),
            "--key".into(),
            item_key,
            "--consistent-read".into(),
            "--output".into(),
            "json".into(),
        ];
        args.extend(endpoint_args(backend, "dynamodb", &["dynamodb_endpoint"]));
        let done = aws(backend, runner, args).await?;
        if !done.success() {
            anyhow::bail!(
                "reading the lock from DynamoDB table `{table}` failed: {}",
                super::first_error_line(&done.stderr_text())
            );
        }
        // A missing item: the CLI prints nothing at all (or `{}`).
        if done.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(StateLock::free(source));
        }
        let reply: serde_json::Value = serde_json::from_slice(&done.stdout)
            .map_err(|e| anyhow::anyhow!("the aws CLI printed something that is not JSON ({e})"))?;
        let Some(info) = reply.pointer("/Item/Info/S").and_then(|v| v.as_str()) else {
            return Ok(StateLock::free(source));
        };
        let info = LockInfo::parse(info).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
        return Ok(StateLock::held_by(info, source));
    }
    Ok(StateLock::free(format!("s3://{bucket}/{key}")).noting(
        "this s3 backend has neither `dynamodb_table` nor `use_lockfile`: its state is never locked".to_string(),
    ))
}

/// Which DynamoDB lock reads can share one request: same table, endpoint, region and
/// credentials. `None` for backends that do not lock in DynamoDB.
pub(super) fn dynamodb_group(backend: &Backend) -> Option<String> {
    if backend.kind != BackendKind::S3 || backend.setting("use_lockfile").as_deref() == Some("true")
    {
        return None;
    }
    let table = backend.setting("dynamodb_table")?;
    let key: Vec<String> = ["region", "access_key", "secret_key", "token", "profile"]
        .iter()
        .map(|name| backend.setting(name).unwrap_or_default())
        .chain(endpoint_args(backend, "dynamodb", &["dynamodb_endpoint"]))
        .collect();
    Some(format!("{table}\u{0}{}", key.join("\u{0}")))
}

/// Reads the DynamoDB locks of several environments of one group (see `dynamodb_group`)
/// with `batch-get-item`: one aws process instead of one each. In the order given.
pub(super) async fn read_dynamodb_batch(
    backends: &[&Backend],
    runner: &dyn Runner,
) -> anyhow::Result<Vec<StateLock>> {
    let first = backends
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no backends to read"))?;
    let table = first.setting("dynamodb_table").unwrap_or_default();
    let ids: Vec<String> = backends
        .iter()
        .map(|b| {
            format!(
                "{}/{}",
                b.setting("bucket").unwrap_or_default(),
                state_key(b)
            )
        })
        .collect();
    let mut found: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    // DynamoDB takes at most 100 keys per batch.
    for chunk in ids.chunks(100) {
        let keys: Vec<serde_json::Value> = chunk
            .iter()
            .map(|id| serde_json::json!({ "LockID": { "S": id } }))
            .collect();
        let request =
            serde_json::json!({ table.clone(): { "Keys": keys, "ConsistentRead": true } })
                .to_string();
        let mut args = vec![
            "dynamodb".to_string(),
            "batch-get-item".into(),
            "--request-items".into(),
            request,
            "--output".into(),
            "json".into(),
        ];
        args.extend(endpoint_args(first, "dynamodb", &["dynamodb_endpoint"]));
        let done = aws(first, runner, args).await?;
        if !done.success() {
            anyhow::bail!(
                "reading locks from DynamoDB table `{table}` failed: {}",
                super::first_error_line(&done.stderr_text())
            );
        }
        let reply: serde_json::Value = serde_json::from_slice(&done.stdout)
            .map_err(|e| anyhow::anyhow!("the aws CLI printed something that is not JSON ({e})"))?;
        let unprocessed = reply
            .pointer(&format!(
                "/UnprocessedKeys/{}",
                table.replace('~', "~0").replace('/', "~1")
            ))
            .is_some_and(|v| !v.is_null());
        if unprocessed {
            anyhow::bail!("DynamoDB did not answer for every lock (throttled); try again");
        }
        for item in reply
            .pointer(&format!(
                "/Responses/{}",
                table.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            if let (Some(id), Some(info)) = (
                item.pointer("/LockID/S").and_then(|v| v.as_str()),
                item.pointer("/Info/S").and_then(|v| v.as_str()),
            ) {
                found.insert(id.to_string(), info.to_string());
            }
        }
    }
    ids.into_iter()
        .map(|id| {
            let source = format!("dynamodb:{table}/{id}");
            match found.get(&id) {
                Some(info) => Ok(StateLock::held_by(
                    LockInfo::parse(info).map_err(|e| anyhow::anyhow!("{source}: {e}"))?,
                    source,
                )),
                None => Ok(StateLock::free(source)),
            }
        })
        .collect()
}

/// `--endpoint-url` from `endpoints.<service>` (Terraform ≥ 1.6) or the older setting.
fn endpoint_args(backend: &Backend, service: &str, old_names: &[&str]) -> Vec<String> {
    let new = backend
        .settings
        .get("endpoints")
        .and_then(|e| e.get(service))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    new.or_else(|| old_names.iter().find_map(|n| backend.setting(n)))
        .map(|url| vec!["--endpoint-url".to_string(), url])
        .unwrap_or_default()
}

async fn aws(
    backend: &Backend,
    runner: &dyn Runner,
    args: Vec<String>,
) -> anyhow::Result<crate::process::Finished> {
    let bin = super::cli_binary(
        "aws",
        "the aws CLI",
        "pip install awscli, or see https://aws.amazon.com/cli/",
    )?;
    let mut inv = Invocation::new(bin, &args);
    inv.after_interrupt = true;
    aws_cli_env(backend, &mut inv);
    runner
        .run(&inv, crate::process::RunOptions::default())
        .await
}

/// What the aws CLI is told of the backend config, for every call tfenv makes of it (lock
/// reads, doctor's credential check): its region, keys and profile, and no pager.
pub(crate) fn aws_cli_env(backend: &Backend, inv: &mut Invocation) {
    // AWS CLI v2 pages through `less` unless told not to; v1 knows no --no-cli-pager.
    inv.env.push(("AWS_PAGER".into(), "".into()));
    if let Some(region) = backend.setting("region") {
        inv.env
            .push(("AWS_DEFAULT_REGION".into(), region.clone().into()));
        inv.env.push(("AWS_REGION".into(), region.into()));
    }
    for (setting, var) in [
        ("access_key", "AWS_ACCESS_KEY_ID"),
        ("secret_key", "AWS_SECRET_ACCESS_KEY"),
        ("token", "AWS_SESSION_TOKEN"),
        ("profile", "AWS_PROFILE"),
    ] {
        if let Some(value) = backend.setting(setting) {
            inv.env.push((var.into(), value.into()));
        }
    }
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
