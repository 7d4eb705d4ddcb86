//! The s3 side of [`Store`](super::store::Store): the ledger folder `<state key>.tfenv/`
//! in the backend's bucket and the versions of the state object, through the AWS SDK
//! clients the lock reader uses (same endpoint, region and credentials).

use std::path::Path;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};

use super::store::{Body, Created, FOLDER_SUFFIX, Object, Version};
use super::{Backend, aws, s3};
use crate::files;

/// How often a create-only write is tried again when S3 says another conditional
/// write of the same key is in flight (409 `ConditionalRequestConflict`).
const CONFLICT_RETRIES: u32 = 3;

/// The bucket, the state key and the clients of one s3 backend.
struct Bucket {
    aws: aws::Aws,
    name: String,
    state_key: String,
}

impl Bucket {
    async fn of(backend: &Backend) -> anyhow::Result<Bucket> {
        Ok(Bucket {
            aws: aws::clients(backend).await?,
            name: backend.setting("bucket").unwrap_or_default(),
            state_key: s3::state_key(backend),
        })
    }

    /// The key of `name` in the ledger folder.
    fn key(&self, name: &str) -> String {
        format!("{}{FOLDER_SUFFIX}{name}", self.state_key)
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    /// `action` on the ledger's objects (`<state key>.tfenv/*`).
    fn on_ledger(&self, action: &'static str) -> aws::Needs {
        aws::Needs::ledger(
            action,
            format!(
                "`arn:aws:s3:::{}/{}{FOLDER_SUFFIX}*`",
                self.name, self.state_key
            ),
        )
    }

    /// `action` on the bucket (a listing), for the keys under `prefix`.
    fn on_bucket(&self, action: &'static str, prefix: &str) -> aws::Needs {
        aws::Needs::ledger(
            action,
            format!("`arn:aws:s3:::{}` (for the prefix `{prefix}`)", self.name),
        )
    }

    /// `action` on the state object itself (its versions).
    fn on_state(&self, action: &'static str) -> aws::Needs {
        aws::Needs::ledger(
            action,
            format!("`arn:aws:s3:::{}/{}`", self.name, self.state_key),
        )
    }

    fn failure<E>(
        &self,
        needs: &aws::Needs,
        what: &str,
        err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.aws.failure(needs, what, err)
    }
}

/// PutObject with `If-None-Match: *`: S3 refuses (412) when the key exists.
pub(super) async fn create(
    backend: &Backend,
    name: &str,
    body: Body<'_>,
) -> anyhow::Result<Created> {
    let bucket = Bucket::of(backend).await?;
    let key = bucket.key(name);
    let what = format!("writing `{}`", bucket.url(&key));
    let mut attempt = 0;
    loop {
        let stream = match &body {
            Body::Bytes(bytes) => ByteStream::from(bytes.to_vec()),
            Body::File(path) => ByteStream::from_path(path)
                .await
                .map_err(|e| anyhow::anyhow!("{what}: reading `{}` ({e})", path.display()))?,
        };
        let sent = bucket
            .aws
            .s3
            .put_object()
            .bucket(&bucket.name)
            .key(&key)
            .if_none_match("*")
            .body(stream)
            .send()
            .await;
        match sent {
            Ok(_) => return Ok(Created::Created),
            Err(err) => match (err.code(), status(&err)) {
                (Some("PreconditionFailed"), _) | (_, Some(412)) => return Ok(Created::Exists),
                (Some("ConditionalRequestConflict"), _) | (_, Some(409))
                    if attempt < CONFLICT_RETRIES =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                }
                _ => return Err(bucket.failure(&bucket.on_ledger("s3:PutObject"), &what, err)),
            },
        }
    }
}

fn status<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// ListObjectsV2 of `<folder><dir>`, every page; names relative to the folder, sorted.
pub(super) async fn list(backend: &Backend, dir: &str) -> anyhow::Result<Vec<Object>> {
    let bucket = Bucket::of(backend).await?;
    let folder = bucket.key("");
    let prefix = bucket.key(dir);
    let what = format!("listing `{}`", bucket.url(&prefix));
    let mut pages = bucket
        .aws
        .s3
        .list_objects_v2()
        .bucket(&bucket.name)
        .prefix(&prefix)
        .into_paginator()
        .send();
    let mut objects = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            bucket.failure(&bucket.on_bucket("s3:ListBucket", &folder), &what, err)
        })?;
        for object in page.contents() {
            let Some(name) = object.key().and_then(|k| k.strip_prefix(&folder)) else {
                continue;
            };
            objects.push(Object {
                name: name.to_string(),
                bytes: object
                    .size()
                    .and_then(|s| u64::try_from(s).ok())
                    .unwrap_or(0),
                modified: object.last_modified().and_then(time),
            });
        }
    }
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(objects)
}

/// The whole of a small object; `None` when there is none.
pub(super) async fn read(backend: &Backend, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let bucket = Bucket::of(backend).await?;
    let key = bucket.key(name);
    let what = format!("reading `{}`", bucket.url(&key));
    let needs = bucket.on_ledger("s3:GetObject");
    let Some(body) = s3::get_object(&bucket.aws, &bucket.name, &key, &what, &needs).await? else {
        return Ok(None);
    };
    let bytes = body.collect().await.map_err(|e| {
        aws::unreachable_error(&what, &bucket.aws.shown(aws::Service::S3), &e.to_string())
    })?;
    Ok(Some(bytes.into_bytes().to_vec()))
}

/// Streams object `name` into the new file `dest`; `false` when there is no such object.
pub(super) async fn download(backend: &Backend, name: &str, dest: &Path) -> anyhow::Result<bool> {
    let bucket = Bucket::of(backend).await?;
    let key = bucket.key(name);
    let what = format!("reading `{}`", bucket.url(&key));
    let needs = bucket.on_ledger("s3:GetObject");
    let Some(body) = s3::get_object(&bucket.aws, &bucket.name, &key, &what, &needs).await? else {
        return Ok(false);
    };
    into_new_file(&bucket, body, dest, &what).await?;
    Ok(true)
}

/// ListObjectVersions of the state key, every page: its versions and delete markers
/// (of exactly that key, not of others it is a prefix of), newest first.
pub(super) async fn versions(backend: &Backend) -> anyhow::Result<Vec<Version>> {
    let bucket = Bucket::of(backend).await?;
    let key = &bucket.state_key;
    let what = format!("listing the versions of `{}`", bucket.url(key));
    let mut found = Vec::new();
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let page = bucket
            .aws
            .s3
            .list_object_versions()
            .bucket(&bucket.name)
            .prefix(key)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|err| {
                bucket.failure(&bucket.on_bucket("s3:ListBucketVersions", key), &what, err)
            })?;
        for v in page.versions().iter().filter(|v| v.key() == Some(key)) {
            found.push(Version {
                id: v.version_id().unwrap_or("null").to_string(),
                modified: v.last_modified().and_then(time),
                bytes: v.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                latest: v.is_latest().unwrap_or(false),
                deleted: false,
            });
        }
        for m in page
            .delete_markers()
            .iter()
            .filter(|m| m.key() == Some(key))
        {
            found.push(Version {
                id: m.version_id().unwrap_or("null").to_string(),
                modified: m.last_modified().and_then(time),
                bytes: 0,
                latest: m.is_latest().unwrap_or(false),
                deleted: true,
            });
        }
        // Keys sort after the state key once its versions are done: no need to go on.
        let past = page.next_key_marker().is_some_and(|k| k > key.as_str());
        if page.is_truncated() != Some(true) || past {
            break;
        }
        key_marker = page.next_key_marker().map(String::from);
        version_marker = page.next_version_id_marker().map(String::from);
        if key_marker.is_none() {
            break;
        }
    }
    sort_newest_first(&mut found);
    Ok(found)
}

/// GetBucketVersioning of the state's bucket: `Some(true)` when `Enabled`,
/// `Some(false)` when `Suspended` (it was on: old versions are kept), `None` when never
/// set.
pub(super) async fn versioning(backend: &Backend) -> anyhow::Result<Option<bool>> {
    let bucket = Bucket::of(backend).await?;
    let what = format!("reading the versioning of `s3://{}`", bucket.name);
    let reply = bucket
        .aws
        .s3
        .get_bucket_versioning()
        .bucket(&bucket.name)
        .send()
        .await;
    match reply {
        Ok(reply) => Ok(match reply.status() {
            Some(aws_sdk_s3::types::BucketVersioningStatus::Enabled) => Some(true),
            Some(aws_sdk_s3::types::BucketVersioningStatus::Suspended) => Some(false),
            _ => None,
        }),
        Err(err) => {
            // An answer the SDK would not take: some S3-compatible servers (moto) name
            // the root element `GetBucketVersioningResponse`, not `VersioningConfiguration`.
            // Its one field still says it.
            if let Some(body) = err
                .raw_response()
                .filter(|raw| raw.status().as_u16() == 200)
                .and_then(|raw| raw.body().bytes())
                .map(|body| String::from_utf8_lossy(body).into_owned())
                .filter(|body| body.contains("GetBucketVersioningResponse"))
            {
                return Ok(if body.contains("<Status>Enabled</Status>") {
                    Some(true)
                } else if body.contains("<Status>Suspended</Status>") {
                    Some(false)
                } else {
                    None
                });
            }
            let needs = aws::Needs::backend(
                "s3:GetBucketVersioning",
                format!("`arn:aws:s3:::{}`", bucket.name),
            );
            Err(bucket.failure(&needs, &what, err))
        }
    }
}

/// Newest first; the latest version first among versions of the same time.
fn sort_newest_first(versions: &mut [Version]) {
    versions.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| b.latest.cmp(&a.latest))
    });
}

/// GetObject of one version of the state with `Range: bytes=0-{max-1}`.
pub(super) async fn version_head(backend: &Backend, id: &str, max: u64) -> anyhow::Result<Vec<u8>> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let bucket = Bucket::of(backend).await?;
    let what = format!(
        "reading version `{id}` of `{}`",
        bucket.url(&bucket.state_key)
    );
    let reply = bucket
        .aws
        .s3
        .get_object()
        .bucket(&bucket.name)
        .key(&bucket.state_key)
        .version_id(id)
        .range(format!("bytes=0-{}", max - 1))
        .send()
        .await
        .map_err(|err| bucket.failure(&bucket.on_state("s3:GetObjectVersion"), &what, err))?;
    let bytes = reply.body.collect().await.map_err(|e| {
        aws::unreachable_error(&what, &bucket.aws.shown(aws::Service::S3), &e.to_string())
    })?;
    let mut bytes = bytes.into_bytes().to_vec();
    // A server that ignores the range sends it all.
    bytes.truncate(usize::try_from(max).unwrap_or(usize::MAX));
    Ok(bytes)
}

/// Streams one version of the state object into the new file `dest`.
pub(super) async fn download_version(
    backend: &Backend,
    id: &str,
    dest: &Path,
) -> anyhow::Result<()> {
    let bucket = Bucket::of(backend).await?;
    let what = format!(
        "reading version `{id}` of `{}`",
        bucket.url(&bucket.state_key)
    );
    let reply = bucket
        .aws
        .s3
        .get_object()
        .bucket(&bucket.name)
        .key(&bucket.state_key)
        .version_id(id)
        .send()
        .await
        .map_err(|err| bucket.failure(&bucket.on_state("s3:GetObjectVersion"), &what, err))?;
    into_new_file(&bucket, reply.body, dest, &what).await
}

/// Streams `body` into a private temp file beside `dest` and names it `dest` once all of
/// it is on disk: a body that breaks off leaves no file, an existing `dest` is an error.
async fn into_new_file(
    bucket: &Bucket,
    mut body: ByteStream,
    dest: &Path,
    what: &str,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::io::AsyncWriteExt;
    let temp = files::private_temp_beside(dest)?;
    let mut file = tokio::fs::File::from_std(
        temp.reopen()
            .with_context(|| format!("opening `{}`", temp.path().display()))?,
    );
    let writing = || format!("writing `{}`", dest.display());
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => file.write_all(&chunk).await.with_context(writing)?,
            Ok(None) => break,
            Err(e) => {
                return Err(aws::unreachable_error(
                    what,
                    &bucket.aws.shown(aws::Service::S3),
                    &e.to_string(),
                ));
            }
        }
    }
    file.flush().await.with_context(writing)?;
    file.sync_all().await.with_context(writing)?;
    drop(file);
    files::persist_new(temp, dest)
}

fn time(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: &str, secs: i64, latest: bool) -> Version {
        Version {
            id: id.to_string(),
            modified: DateTime::from_timestamp(secs, 0),
            bytes: 1,
            latest,
            deleted: false,
        }
    }

    #[test]
    fn versions_are_listed_newest_first_with_the_latest_first_at_a_tie() {
        let mut versions = vec![
            version("a", 10, false),
            version("c", 30, false),
            version("b", 30, true),
            version("old", 5, false),
        ];
        sort_newest_first(&mut versions);
        let ids: Vec<&str> = versions.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["b", "c", "a", "old"]);
    }

    #[test]
    fn s3_times_become_utc_times() {
        let t = aws_sdk_s3::primitives::DateTime::from_secs(1_764_504_000);
        assert_eq!(time(&t).unwrap().to_rfc3339(), "2025-11-30T12:00:00+00:00");
    }

    /// A moto server for one test (the one scripts/test.sh installs), stopped on drop.
    struct Moto {
        child: std::process::Child,
        endpoint: String,
    }

    impl Moto {
        fn start() -> Moto {
            use std::os::unix::process::CommandExt;
            let server = std::env::var_os("TFENV_TEST_MOTO_SERVER")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join(".cache/test-tools/moto/bin/moto_server")
                });
            assert!(
                server.is_file(),
                "moto_server is missing (`{}`): run `eval \"$(scripts/test.sh --install-only)\"` first",
                server.display()
            );
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = std::process::Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap();
            let moto = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(std::time::Instant::now() < deadline, "moto did not come up");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            moto
        }

        fn backend(&self, key: &str) -> Backend {
            super::super::tests::backend(
                "s3",
                serde_json::json!({
                    "bucket": "ledger", "key": key, "region": "us-east-1",
                    "endpoints": {"s3": self.endpoint}, "use_path_style": true,
                    "access_key": "test", "secret_key": "test",
                    "skip_credentials_validation": true, "skip_metadata_api_check": true,
                }),
                None,
            )
        }
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }

    async fn put(backend: &Backend, key: &str, body: &str) {
        let aws = aws::clients(backend).await.unwrap();
        aws.s3
            .put_object()
            .bucket("ledger")
            .key(key)
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
    }

    /// One test, one runtime: the SDK's clients are cached for the process.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_s3_store_writes_once_lists_reads_downloads_and_lists_state_versions() {
        use std::os::unix::fs::PermissionsExt;
        let moto = Moto::start();
        let backend = moto.backend("app/terraform.tfstate");
        let aws = aws::clients(&backend).await.unwrap();
        aws.s3
            .create_bucket()
            .bucket("ledger")
            .send()
            .await
            .unwrap();
        aws.s3
            .put_bucket_versioning()
            .bucket("ledger")
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();

        // Create-only: the second write of a name leaves the first one.
        let name = "history/20261130T120000Z-a.json";
        assert_eq!(
            create(&backend, name, Body::Bytes(b"first")).await.unwrap(),
            Created::Created
        );
        assert_eq!(
            create(&backend, name, Body::Bytes(b"second"))
                .await
                .unwrap(),
            Created::Exists
        );
        let file = tmp.path().join("backup.tfstate");
        std::fs::write(&file, "x".repeat(300_000)).unwrap();
        assert_eq!(
            create(&backend, "backups/b.tfstate", Body::File(&file))
                .await
                .unwrap(),
            Created::Created
        );
        create(
            &backend,
            "history/20261129T120000Z-b.json",
            Body::Bytes(b"older"),
        )
        .await
        .unwrap();
        // Another environment's folder, whose key starts with this one's.
        put(
            &moto.backend("x"),
            "app/terraform.tfstate2.tfenv/history/z.json",
            "other",
        )
        .await;

        // Listed relative to the folder, in name order, only under `dir`.
        let listed = list(&backend, "history/").await.unwrap();
        let names: Vec<&str> = listed.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "history/20261129T120000Z-b.json",
                "history/20261130T120000Z-a.json"
            ]
        );
        assert_eq!(listed[1].bytes, 5);
        assert!(listed[1].modified.is_some());
        assert_eq!(list(&backend, "").await.unwrap().len(), 3);

        assert_eq!(read(&backend, name).await.unwrap().unwrap(), b"first");
        assert_eq!(read(&backend, "history/missing.json").await.unwrap(), None);

        let dest = tmp.path().join("downloaded");
        assert!(
            download(&backend, "backups/b.tfstate", &dest)
                .await
                .unwrap()
        );
        assert_eq!(std::fs::read(&dest).unwrap().len(), 300_000);
        assert_eq!(
            std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let missing = tmp.path().join("missing");
        assert!(!download(&backend, "backups/none", &missing).await.unwrap());
        assert!(!missing.exists());
        // Never over a file that is there.
        assert!(download(&backend, name, &dest).await.is_err());
        assert_eq!(std::fs::read(&dest).unwrap().len(), 300_000);
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "no temp files left: {left:?}");

        // The state object's versions, newest first, and nothing of other keys.
        for serial in 1..=3 {
            put(
                &backend,
                "app/terraform.tfstate",
                &format!(r#"{{"version":4,"serial":{serial},"lineage":"l"}}"#),
            )
            .await;
        }
        put(&backend, "app/terraform.tfstate.tflock", "{}").await;
        let found = versions(&backend).await.unwrap();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].latest && !found[1].latest && !found[0].deleted);
        let oldest = &found[2].id;
        assert_eq!(
            version_head(&backend, oldest, 24).await.unwrap(),
            br#"{"version":4,"serial":1,"#
        );
        let old = tmp.path().join("old.tfstate");
        download_version(&backend, oldest, &old).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&old).unwrap(),
            r#"{"version":4,"serial":1,"lineage":"l"}"#
        );

        // A deleted state: its delete marker is the latest version.
        aws.s3
            .delete_object()
            .bucket("ledger")
            .key("app/terraform.tfstate")
            .send()
            .await
            .unwrap();
        let found = versions(&backend).await.unwrap();
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.iter().any(|v| v.deleted && v.latest), "{found:?}");
    }
}
