//! The s3 backend: state at `s3://<bucket>/<key>`; a non-default workspace at
//! `<workspace_key_prefix or env:>/<workspace>/<key>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use super::lock::{LockState, StateLock};
use super::{Backend, BackendKind, aws};
use crate::error::TfenvError;
use crate::lock_info::LockInfo;

/// The lock item `lock_id` of DynamoDB table `table`, as messages name it.
fn lock_item_name(table: &str, lock_id: &str) -> String {
    format!("the lock item `{lock_id}` of DynamoDB table `{table}`")
}

/// A DynamoDB call on the lock table `table` failed: a table that does not exist says
/// so and which setting names it; anything else as `Aws::failure` reports it.
fn dynamodb_failure<E>(
    aws: &aws::Aws,
    table: &str,
    action: &'static str,
    what: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if err.code() == Some("ResourceNotFoundException") {
        return TfenvError::config(
            format!(
                "{what}: the table does not exist ({})",
                err.message().unwrap_or("ResourceNotFoundException")
            ),
            format!(
                "check `dynamodb_table = \"{table}\"` in the backend config, and its `region` and \
                 DynamoDB endpoint; create the table (hash key `LockID`, a string) if it is missing"
            ),
        )
        .into();
    }
    let needs = aws::Needs::backend(action, format!("the DynamoDB table `{table}`"));
    aws.failure(&needs, what, err)
}

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

/// Reads the lock where this s3 backend keeps it, through the AWS SDK: the `<key>.tflock`
/// object (`use_lockfile`), the DynamoDB item `<bucket>/<state key>` (`dynamodb_table`),
/// or both when both are set (terraform's migration setting: it takes both locks, so
/// the state is locked when either is held).
pub(super) async fn read_lock(backend: &Backend) -> anyhow::Result<StateLock> {
    let bucket = backend.setting("bucket").unwrap_or_default();
    let key = state_key(backend);
    let lockfile = backend.setting("use_lockfile").as_deref() == Some("true");
    let table = backend.setting("dynamodb_table").filter(|t| !t.is_empty());
    if !lockfile && table.is_none() {
        return Ok(StateLock::free(format!("s3://{bucket}/{key}")).noting(
            "this s3 backend has neither `dynamodb_table` nor `use_lockfile`: its state is never locked".to_string(),
        ));
    }
    let aws = aws::clients(backend).await?;
    let mut free = Vec::new();
    if lockfile {
        let lock = read_lockfile(&aws, &bucket, &key).await?;
        if lock.is_held() {
            return Ok(lock);
        }
        free.push(lock.source);
    }
    if let Some(table) = table {
        let lock = read_lock_item(&aws, &table, &format!("{bucket}/{key}")).await?;
        if lock.is_held() {
            return Ok(lock);
        }
        free.push(lock.source);
    }
    Ok(StateLock::free(free.join(" and ")))
}

/// The `<key>.tflock` object of `use_lockfile`.
async fn read_lockfile(aws: &aws::Aws, bucket: &str, key: &str) -> anyhow::Result<StateLock> {
    let object = format!("s3://{bucket}/{key}.tflock");
    let what = format!("reading `{object}`");
    let needs = aws::Needs::backend(
        "s3:GetObject",
        format!("`arn:aws:s3:::{bucket}/{key}.tflock`"),
    );
    let Some(body) = get_object(aws, bucket, &format!("{key}.tflock"), &what, &needs).await? else {
        return Ok(StateLock::free(object));
    };
    let body = body
        .collect()
        .await
        .map_err(|e| aws::unreachable_error(&what, &aws.shown(aws::Service::S3), &e.to_string()))?;
    let text = String::from_utf8_lossy(&body.into_bytes()).into_owned();
    held(
        Some(&text),
        format!("`{object}`"),
        "delete the object",
        object,
    )
}

/// The body of object `key`, as it arrives; `None` when there is no such object.
pub(super) async fn get_object(
    aws: &aws::Aws,
    bucket: &str,
    key: &str,
    what: &str,
    needs: &aws::Needs,
) -> anyhow::Result<Option<aws_sdk_s3::primitives::ByteStream>> {
    match aws.s3.get_object().bucket(bucket).key(key).send().await {
        Ok(reply) => Ok(Some(reply.body)),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
        Err(err) => Err(aws.failure(needs, what, err)),
    }
}

/// The DynamoDB item `lock_id` of `dynamodb_table`.
async fn read_lock_item(aws: &aws::Aws, table: &str, lock_id: &str) -> anyhow::Result<StateLock> {
    let source = format!("dynamodb:{table}/{lock_id}");
    let reply = aws
        .dynamodb
        .get_item()
        .table_name(table)
        .key("LockID", AttributeValue::S(lock_id.to_string()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|err| {
            dynamodb_failure(
                aws,
                table,
                "dynamodb:GetItem",
                &format!("reading the lock from DynamoDB table `{table}`"),
                err,
            )
        })?;
    match reply.item {
        Some(item) => held(
            info_of(&item),
            lock_item_name(table, lock_id),
            "delete the item",
            source,
        ),
        None => Ok(StateLock::free(source)),
    }
}

/// The `Info` string of a lock item; `None` when it has none.
fn info_of(item: &HashMap<String, AttributeValue>) -> Option<&str> {
    item.get("Info")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// A lock that exists (an object or item is there): terraform refuses to run while it
/// does, whatever it says. Lock JSON that names nobody, or an item without `Info`, is
/// a lock whose holder is unknown — never "free". Lock info that is not JSON is an error
/// naming `what`, whose hint says to `remove` it once no run uses the state.
fn held(
    text: Option<&str>,
    what: String,
    remove: &str,
    source: String,
) -> anyhow::Result<StateLock> {
    let Some(text) = text else {
        return Ok(StateLock::new(LockState::HeldUnknown, source).noting(
            "the lock item has no `Info` string: the state is locked, by whom it does not say"
                .to_string(),
        ));
    };
    let info = LockInfo::parse(text).map_err(|e| {
        TfenvError::config(
            format!("{what}: {e}"),
            format!(
                "terraform did not write this lock, or it is damaged: once no terraform run \
                 uses this state, {remove}"
            ),
        )
    })?;
    if info.is_anonymous() {
        return Ok(StateLock::new(LockState::HeldUnknown, source).noting(
            "the lock info names no holder and no lock ID: the state is locked, by whom it does not say"
                .to_string(),
        ));
    }
    Ok(StateLock::held_by(info, source))
}

/// Reads the state object (`s3://<bucket>/<state key>`) through the AWS SDK and streams
/// its body through `parse` on a blocking thread, never holding the whole state.
/// `Ok(None)` when there is no object (no state yet).
pub(super) async fn read_state<T: Send + 'static>(
    backend: &Backend,
    parse: super::StateParser<T>,
) -> anyhow::Result<Option<T>> {
    let bucket = backend.setting("bucket").unwrap_or_default();
    let key = state_key(backend);
    let object = format!("s3://{bucket}/{key}");
    let what = format!("reading the state `{object}`");
    let aws = aws::clients(backend).await?;
    let needs = aws::Needs::backend("s3:GetObject", format!("`arn:aws:s3:::{bucket}/{key}`"));
    let Some(body) = get_object(&aws, &bucket, &key, &what, &needs).await? else {
        return Ok(None);
    };
    // The body read as it arrives: a blocking `Read` for the parser's thread. A body
    // that breaks off is an I/O error of that read, told apart from a bad state below.
    let broken = Arc::new(Mutex::new(None::<String>));
    let reader = Watched {
        inner: tokio_util::io::SyncIoBridge::new(body.into_async_read()),
        broken: broken.clone(),
    };
    let parsed = tokio::task::spawn_blocking(move || parse(Box::new(reader)))
        .await
        .map_err(|_| anyhow::anyhow!("{what}: the state reader stopped unexpectedly"))?;
    if let Some(why) = broken.lock().expect("state read").take() {
        return Err(aws::unreachable_error(
            &what,
            &aws.shown(aws::Service::S3),
            &why,
        ));
    }
    parsed.map_err(|err| anyhow::anyhow!("`{object}`: {err:#}"))
}

/// A `Read` that remembers the first I/O error it passed on.
struct Watched<R> {
    inner: R,
    broken: Arc<Mutex<Option<String>>>,
}

impl<R: std::io::Read> std::io::Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|err| {
            self.broken
                .lock()
                .expect("state read")
                .get_or_insert_with(|| err.to_string());
        })
    }
}

/// Which DynamoDB lock reads can share one request: same table and same client settings
/// (endpoint, region, credentials). `None` for backends that do not lock in DynamoDB.
pub(super) fn dynamodb_group(backend: &Backend) -> Option<String> {
    if backend.kind != BackendKind::S3 || backend.setting("use_lockfile").as_deref() == Some("true")
    {
        return None;
    }
    let table = backend.setting("dynamodb_table")?;
    let settings =
        aws::AwsSettings::from_backend(backend, &|name| std::env::var(name).ok()).ok()?;
    Some(format!("{table}\u{0}{}", settings.cache_key()))
}

/// How often keys DynamoDB left unprocessed (throttling) are asked for again.
const UNPROCESSED_RETRIES: usize = 3;

/// Reads the DynamoDB locks of several environments of one group (see `dynamodb_group`)
/// with `BatchGetItem`: one request per 100 locks. In the order given; the outer error is
/// a request that failed (all of them), an inner one a lock item that cannot be read.
pub(super) async fn read_dynamodb_batch(
    backends: &[&Backend],
) -> anyhow::Result<Vec<anyhow::Result<StateLock>>> {
    use aws_sdk_dynamodb::types::KeysAndAttributes;
    let first = backends
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no backends to read"))?;
    let aws = aws::clients(first).await?;
    let table = first.setting("dynamodb_table").unwrap_or_default();
    let what = format!("reading locks from DynamoDB table `{table}`");
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
    let mut found: HashMap<String, Option<String>> = HashMap::new();
    // Each key once (two environments can share a state: DynamoDB refuses a batch that
    // names a key twice), and at most 100 keys per batch.
    let unique: Vec<&String> = ids
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for chunk in unique.chunks(100) {
        let mut keys: Vec<HashMap<String, AttributeValue>> = chunk
            .iter()
            .map(|id| HashMap::from([("LockID".to_string(), AttributeValue::S((*id).clone()))]))
            .collect();
        for attempt in 0..=UNPROCESSED_RETRIES {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
            let reply = aws
                .dynamodb
                .batch_get_item()
                .request_items(&table, request)
                .send()
                .await
                .map_err(|err| {
                    dynamodb_failure(&aws, &table, "dynamodb:BatchGetItem", &what, err)
                })?;
            for item in reply
                .responses
                .as_ref()
                .and_then(|r| r.get(&table))
                .into_iter()
                .flatten()
            {
                if let Some(Ok(id)) = item.get("LockID").map(AttributeValue::as_s) {
                    found.insert(id.clone(), info_of(item).map(str::to_string));
                }
            }
            keys = reply
                .unprocessed_keys
                .and_then(|mut u| u.remove(&table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if keys.is_empty() {
                break;
            }
            if attempt == UNPROCESSED_RETRIES {
                anyhow::bail!("DynamoDB did not answer for every lock (throttled); try again");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
        }
    }
    Ok(ids
        .into_iter()
        .map(|id| {
            let source = format!("dynamodb:{table}/{id}");
            match found.get(&id) {
                Some(info) => held(
                    info.as_deref(),
                    lock_item_name(&table, &id),
                    "delete the item",
                    source,
                ),
                None => Ok(StateLock::free(source)),
            }
        })
        .collect())
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
