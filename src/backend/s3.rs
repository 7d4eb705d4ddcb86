//! The s3 backend: state at `s3://<bucket>/<key>`; a non-default workspace at
//! `<workspace_key_prefix or env:>/<workspace>/<key>`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::lock::StateLock;
use super::{Backend, BackendKind, aws};
use crate::lock_info::LockInfo;

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
/// (`use_lockfile`), or the DynamoDB item `<bucket>/<state key>` (`dynamodb_table`),
/// through the AWS SDK.
pub(super) async fn read_lock(backend: &Backend) -> anyhow::Result<StateLock> {
    let bucket = backend.setting("bucket").unwrap_or_default();
    let key = state_key(backend);
    if backend.setting("use_lockfile").as_deref() == Some("true") {
        let aws = aws::clients(backend).await?;
        let object = format!("s3://{bucket}/{key}.tflock");
        let reply = aws
            .s3
            .get_object()
            .bucket(&bucket)
            .key(format!("{key}.tflock"))
            .send()
            .await;
        let body = match reply {
            Ok(reply) => reply.body.collect().await.map_err(|e| {
                aws::unreachable_error(&format!("reading `{object}`"), &e.to_string())
            })?,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(StateLock::free(object));
            }
            Err(err) => return Err(aws.failure(&format!("reading `{object}`"), err)),
        };
        let text = String::from_utf8_lossy(&body.into_bytes()).into_owned();
        let info = LockInfo::parse(&text).map_err(|e| anyhow::anyhow!("`{object}`: {e}"))?;
        return Ok(StateLock::held_by(info, object));
    }
    if let Some(table) = backend.setting("dynamodb_table") {
        let aws = aws::clients(backend).await?;
        let lock_id = format!("{bucket}/{key}");
        let source = format!("dynamodb:{table}/{lock_id}");
        let reply = aws
            .dynamodb
            .get_item()
            .table_name(&table)
            .key("LockID", AttributeValue::S(lock_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| {
                aws.failure(
                    &format!("reading the lock from DynamoDB table `{table}`"),
                    err,
                )
            })?;
        let info = reply.item.as_ref().and_then(|item| item.get("Info"));
        return match info.and_then(|v| v.as_s().ok()) {
            Some(info) => Ok(StateLock::held_by(
                LockInfo::parse(info).map_err(|e| anyhow::anyhow!("{source}: {e}"))?,
                source,
            )),
            None => Ok(StateLock::free(source)),
        };
    }
    Ok(StateLock::free(format!("s3://{bucket}/{key}")).noting(
        "this s3 backend has neither `dynamodb_table` nor `use_lockfile`: its state is never locked".to_string(),
    ))
}

/// How many body chunks of a state object may wait for the parser: memory stays
/// constant however large the state is.
const STATE_CHUNKS_IN_FLIGHT: usize = 4;

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
    let reply = aws.s3.get_object().bucket(&bucket).key(&key).send().await;
    let mut body = match reply {
        Ok(reply) => reply.body,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
            return Ok(None);
        }
        Err(err) => return Err(aws.failure(&what, err)),
    };
    let (chunks, receiver) = tokio::sync::mpsc::channel(STATE_CHUNKS_IN_FLIGHT);
    let parser = tokio::task::spawn_blocking(move || {
        parse(Box::new(ChunkReader {
            receiver,
            chunk: Default::default(),
            at: 0,
        }))
    });
    let mut broken = None;
    loop {
        match body.next().await {
            None => break,
            Some(Ok(chunk)) => {
                // The parser stopped early (not a state): it says why.
                if chunks.send(Ok(chunk)).await.is_err() {
                    break;
                }
            }
            Some(Err(err)) => {
                let why = err.to_string();
                let _ = chunks.send(Err(std::io::Error::other(why.clone()))).await;
                broken = Some(why);
                break;
            }
        }
    }
    drop(chunks);
    let parsed = parser
        .await
        .map_err(|_| anyhow::anyhow!("{what}: the state reader stopped unexpectedly"))?;
    if let Some(why) = broken {
        return Err(aws::unreachable_error(&what, &why));
    }
    parsed.map_err(|err| anyhow::anyhow!("`{object}`: {err:#}"))
}

/// The chunks of an object's body as one blocking `Read`, for a parser on its own thread.
struct ChunkReader<B> {
    receiver: tokio::sync::mpsc::Receiver<std::io::Result<B>>,
    chunk: B,
    at: usize,
}

impl<B: AsRef<[u8]>> std::io::Read for ChunkReader<B> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.chunk.as_ref().len() {
            match self.receiver.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => {
                    self.chunk = chunk?;
                    self.at = 0;
                }
            }
        }
        let rest = &self.chunk.as_ref()[self.at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
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
/// with `BatchGetItem`: one request per 100 environments. In the order given.
pub(super) async fn read_dynamodb_batch(backends: &[&Backend]) -> anyhow::Result<Vec<StateLock>> {
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
    let mut found: HashMap<String, String> = HashMap::new();
    // DynamoDB takes at most 100 keys per batch.
    for chunk in ids.chunks(100) {
        let mut keys: Vec<HashMap<String, AttributeValue>> = chunk
            .iter()
            .map(|id| HashMap::from([("LockID".to_string(), AttributeValue::S(id.clone()))]))
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
                .map_err(|err| aws.failure(&what, err))?;
            for item in reply
                .responses
                .as_ref()
                .and_then(|r| r.get(&table))
                .into_iter()
                .flatten()
            {
                if let (Some(Ok(id)), Some(Ok(info))) = (
                    item.get("LockID").map(AttributeValue::as_s),
                    item.get("Info").map(AttributeValue::as_s),
                ) {
                    found.insert(id.clone(), info.clone());
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

#[cfg(test)]
mod tests {
    use super::super::tests::backend;
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_body_in_chunks_reads_as_one_stream() {
        use std::io::Read;
        let (chunks, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(2);
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let result = ChunkReader {
                receiver,
                chunk: Vec::new(),
                at: 0,
            }
            .read_to_string(&mut text);
            (result.map_err(|e| e.to_string()), text)
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            for part in ["{\"ver", "", "sion\": 4", "}"] {
                chunks.send(Ok(part.as_bytes().to_vec())).await.unwrap();
            }
        });
        drop(chunks);
        let (result, text) = reader.join().unwrap();
        assert_eq!(result, Ok(14));
        assert_eq!(text, "{\"version\": 4}");

        // A body that breaks off is an error of the read, not a short state.
        let (chunks, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(2);
        runtime.block_on(async {
            chunks.send(Ok(b"{".to_vec())).await.unwrap();
            chunks
                .send(Err(std::io::Error::other("connection reset")))
                .await
                .unwrap();
        });
        drop(chunks);
        let mut text = String::new();
        let err = ChunkReader {
            receiver,
            chunk: Vec::new(),
            at: 0,
        }
        .read_to_string(&mut text)
        .unwrap_err();
        assert_eq!(err.to_string(), "connection reset");
    }

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
