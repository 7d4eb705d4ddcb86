//! A moto server (S3 + DynamoDB emulator) on 127.0.0.1 for one test, and typed helpers
//! that set up and inspect its buckets and tables through the AWS SDK for Rust (no aws
//! CLI: see ../shared/TESTING.md). Stopped when dropped.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use base64::Engine;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::support::moto_server;

/// How long moto gets to answer on its port (it is usually up in under a second).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// A freshly picked port can be taken by someone else before moto binds it: try again.
const START_ATTEMPTS: usize = 3;

/// A running `moto_server`. Dropping it kills the server.
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
    sdk: OnceLock<Sdk>,
    /// Over TLS (`start_tls`): the CA that signed the server's certificate.
    ca: Option<PathBuf>,
}

impl Moto {
    /// Starts moto on a free port of 127.0.0.1 and waits until it answers.
    /// Panics with the set-up command when moto is not installed, and with the
    /// server's log when it does not come up.
    pub fn start() -> Moto {
        let dir = tempfile::Builder::new()
            .prefix("tfenv-moto-")
            .tempdir()
            .unwrap();
        Moto::start_in(dir, None)
    }

    /// `start`, serving HTTPS with a certificate for 127.0.0.1 signed by a CA made for
    /// this server (`ca_file`; a client trusts it through `SSL_CERT_FILE`, terraform
    /// through `AWS_CA_BUNDLE`). Panics naming the install command when openssl is
    /// missing. `requests_during` is not available over TLS.
    pub fn start_tls() -> Moto {
        let dir = tempfile::Builder::new()
            .prefix("tfenv-moto-")
            .tempdir()
            .unwrap();
        let ca = make_certificates(dir.path());
        Moto::start_in(dir, Some(ca))
    }

    fn start_in(dir: tempfile::TempDir, ca: Option<PathBuf>) -> Moto {
        let server = moto_server();
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let log = dir.path().join(format!("moto-{attempt}.log"));
            let log_file = std::fs::File::create(&log).unwrap();
            let mut command = Command::new(&server);
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            if ca.is_some() {
                command
                    .arg("-c")
                    .arg(dir.path().join("cert.pem"))
                    .arg("-k")
                    .arg(dir.path().join("key.pem"));
            }
            let mut child = command
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                // Where `requests_during` has moto's recorder write (off until started).
                .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording.jsonl"))
                .env_remove("MOTO_ENABLE_RECORDING")
                // Its own group, so that stopping it stops whatever it started too.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|err| panic!("starting `{}`: {err}", server.display()));
            match wait_until_up(&mut child, port, ca.as_deref()) {
                Ok(()) => {
                    return Moto {
                        child,
                        port,
                        log,
                        dir,
                        sdk: OnceLock::new(),
                        ca,
                    };
                }
                Err(why) => {
                    stop(&mut child);
                    failures.push(format!(
                        "attempt {attempt} on port {port}: {why}\n--- log ---\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    ));
                }
            }
        }
        panic!(
            "moto_server (`{}`) did not come up:\n{}",
            server.display(),
            failures.join("\n")
        );
    }

    /// The server's process ID, also its process group's (`kill -9 -- -PID` stops it).
    #[allow(dead_code)] // not every test binary that includes support/ uses it
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT` (`https://` over TLS)
    pub fn endpoint(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA certificate (PEM) a client must trust to reach a `start_tls` server.
    pub fn ca_file(&self) -> &std::path::Path {
        self.ca.as_deref().expect("a server started with start_tls")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server printed so far (its request log), for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The AWS SDK's S3 and DynamoDB clients for this server (built on first use).
    fn sdk(&self) -> &Sdk {
        self.sdk
            .get_or_init(|| Sdk::new(&self.endpoint(), self.ca.as_deref()))
    }

    /// A bucket with versioning on, as a state bucket should be.
    pub fn create_bucket(&self, name: &str) {
        let sdk = self.sdk();
        sdk.run(&format!("creating bucket `{name}`"), async {
            sdk.s3.create_bucket().bucket(name).send().await?;
            sdk.s3
                .put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await?;
            Ok(())
        });
    }

    /// A bucket that keeps no object versions (`versioning-off` in `status`).
    pub fn create_bucket_without_versioning(&self, name: &str) {
        let sdk = self.sdk();
        sdk.run(&format!("creating bucket `{name}`"), async {
            sdk.s3.create_bucket().bucket(name).send().await?;
            Ok(())
        });
    }

    /// Turns the versioning of bucket `name` on (`Enabled`) or off (`Suspended`).
    pub fn set_versioning(&self, name: &str, on: bool) {
        let sdk = self.sdk();
        let status = if on {
            BucketVersioningStatus::Enabled
        } else {
            BucketVersioningStatus::Suspended
        };
        sdk.run(&format!("setting the versioning of `{name}`"), async {
            sdk.s3
                .put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(VersioningConfiguration::builder().status(status).build())
                .send()
                .await?;
            Ok(())
        });
    }

    /// A DynamoDB table as the s3 backend's `dynamodb_table` wants it (hash key `LockID`).
    pub fn create_lock_table(&self, name: &str) {
        self.create_table_keyed(name, "LockID");
    }

    /// A table whose hash key (a string) is `key`: not one terraform can lock in unless
    /// `key` is `LockID`.
    pub fn create_table_keyed(&self, name: &str, key: &str) {
        let sdk = self.sdk();
        sdk.run(&format!("creating table `{name}`"), async {
            sdk.dynamodb
                .create_table()
                .table_name(name)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(key)
                        .attribute_type(ScalarAttributeType::S)
                        .build()?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(key)
                        .key_type(KeyType::Hash)
                        .build()?,
                )
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await?;
            Ok(())
        });
    }

    /// Sets the bucket's policy to `policy` (JSON).
    pub fn put_bucket_policy(&self, name: &str, policy: &serde_json::Value) {
        let sdk = self.sdk();
        sdk.run(&format!("setting the policy of `{name}`"), async {
            sdk.s3
                .put_bucket_policy()
                .bucket(name)
                .policy(policy.to_string())
                .send()
                .await?;
            Ok(())
        });
    }

    /// Whether a HeadBucket finds the bucket.
    pub fn bucket_exists(&self, name: &str) -> bool {
        let sdk = self.sdk();
        sdk.run(&format!("HEAD bucket `{name}`"), async {
            match sdk.s3.head_bucket().bucket(name).send().await {
                Ok(_) => Ok(true),
                Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
                Err(err) => Err(err.into()),
            }
        })
    }

    /// GetBucketLocation's constraint (`eu-west-1`; `None` for us-east-1).
    pub fn bucket_location(&self, name: &str) -> Option<String> {
        let sdk = self.sdk();
        sdk.run(&format!("reading the location of `{name}`"), async {
            let reply = sdk.s3.get_bucket_location().bucket(name).send().await?;
            Ok(reply
                .location_constraint()
                .map(|c| c.as_str().to_string())
                .filter(|c| !c.is_empty()))
        })
    }

    /// GetBucketVersioning's status: `Some("Enabled")`, `Some("Suspended")`, or `None`
    /// for a bucket whose versioning was never set.
    pub fn bucket_versioning(&self, name: &str) -> Option<String> {
        let sdk = self.sdk();
        sdk.run(&format!("reading the versioning of `{name}`"), async {
            match sdk.s3.get_bucket_versioning().bucket(name).send().await {
                Ok(reply) => Ok(reply.status().map(|s| s.as_str().to_string())),
                // moto names the answer's root `GetBucketVersioningResponse`, which the
                // SDK does not take: its `<Status>` still says it.
                Err(err) => {
                    let body = err
                        .raw_response()
                        .filter(|raw| raw.status().as_u16() == 200)
                        .and_then(|raw| raw.body().bytes())
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .ok_or(err)?;
                    Ok(body
                        .split_once("<Status>")
                        .and_then(|(_, rest)| rest.split_once("</Status>"))
                        .map(|(status, _)| status.to_string()))
                }
            }
        })
    }

    /// GetBucketEncryption's first rule, or `None` when the bucket has no default
    /// encryption.
    pub fn bucket_encryption(&self, name: &str) -> Option<Encryption> {
        let sdk = self.sdk();
        sdk.run(&format!("reading the encryption of `{name}`"), async {
            match sdk.s3.get_bucket_encryption().bucket(name).send().await {
                Ok(reply) => {
                    let rule = reply
                        .server_side_encryption_configuration()
                        .and_then(|c| c.rules().first())
                        .ok_or("GetBucketEncryption answered no rule")?;
                    let default = rule
                        .apply_server_side_encryption_by_default()
                        .ok_or("the rule has no default encryption")?;
                    Ok(Some(Encryption {
                        algorithm: default.sse_algorithm().as_str().to_string(),
                        kms_key: default.kms_master_key_id().map(String::from),
                        bucket_key: rule.bucket_key_enabled().unwrap_or(false),
                    }))
                }
                Err(err)
                    if aws_sdk_s3::error::ProvideErrorMetadata::code(&err)
                        == Some("ServerSideEncryptionConfigurationNotFoundError") =>
                {
                    Ok(None)
                }
                Err(err) => Err(err.into()),
            }
        })
    }

    /// GetPublicAccessBlock's four settings (BlockPublicAcls, IgnorePublicAcls,
    /// BlockPublicPolicy, RestrictPublicBuckets), or `None` when none is set.
    pub fn public_access_block(&self, name: &str) -> Option<[bool; 4]> {
        let sdk = self.sdk();
        sdk.run(
            &format!("reading the public access block of `{name}`"),
            async {
                match sdk.s3.get_public_access_block().bucket(name).send().await {
                    Ok(reply) => {
                        let c = reply
                            .public_access_block_configuration()
                            .ok_or("GetPublicAccessBlock answered no configuration")?;
                        Ok(Some([
                            c.block_public_acls().unwrap_or(false),
                            c.ignore_public_acls().unwrap_or(false),
                            c.block_public_policy().unwrap_or(false),
                            c.restrict_public_buckets().unwrap_or(false),
                        ]))
                    }
                    Err(err)
                        if aws_sdk_s3::error::ProvideErrorMetadata::code(&err)
                            == Some("NoSuchPublicAccessBlockConfiguration") =>
                    {
                        Ok(None)
                    }
                    Err(err) => Err(err.into()),
                }
            },
        )
    }

    /// GetBucketPolicy's policy, parsed, or `None` when the bucket has none.
    pub fn bucket_policy(&self, name: &str) -> Option<serde_json::Value> {
        let sdk = self.sdk();
        sdk.run(&format!("reading the policy of `{name}`"), async {
            match sdk.s3.get_bucket_policy().bucket(name).send().await {
                Ok(reply) => Ok(Some(serde_json::from_str(
                    reply.policy().ok_or("GetBucketPolicy answered no policy")?,
                )?)),
                Err(err)
                    if aws_sdk_s3::error::ProvideErrorMetadata::code(&err)
                        == Some("NoSuchBucketPolicy") =>
                {
                    Ok(None)
                }
                Err(err) => Err(err.into()),
            }
        })
    }

    /// DescribeTable of `name`, or `None` when there is no such table.
    pub fn table(&self, name: &str) -> Option<Table> {
        let sdk = self.sdk();
        sdk.run(&format!("describing table `{name}`"), async {
            match sdk.dynamodb.describe_table().table_name(name).send().await {
                Ok(reply) => {
                    let t = reply.table().ok_or("DescribeTable answered no table")?;
                    let hash_key = t
                        .key_schema()
                        .iter()
                        .find(|k| k.key_type() == &KeyType::Hash)
                        .map(|k| k.attribute_name().to_string())
                        .unwrap_or_default();
                    let hash_key_type = t
                        .attribute_definitions()
                        .iter()
                        .find(|a| a.attribute_name() == hash_key)
                        .map(|a| a.attribute_type().as_str().to_string())
                        .unwrap_or_default();
                    Ok(Some(Table {
                        hash_key,
                        hash_key_type,
                        billing_mode: t
                            .billing_mode_summary()
                            .and_then(|b| b.billing_mode())
                            .map(|b| b.as_str().to_string()),
                        status: t.table_status().map(|s| s.as_str().to_string()),
                    }))
                }
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    Ok(None)
                }
                Err(err) => Err(err.into()),
            }
        })
    }

    /// A DynamoDB endpoint in front of this server that passes every request on but
    /// the DynamoDB operation `refused` (`CreateTable`), which it answers with an
    /// `AccessDeniedException`, as AWS answers credentials that lack that permission.
    pub fn dynamodb_refusing(&self, refused: &str) -> Proxy {
        let refused = refused.to_string();
        self.proxy(move |request| {
            let target = request.header("x-amz-target")?;
            (target.rsplit('.').next() == Some(refused.as_str())).then(|| {
                Canned::new(
                    400,
                    &[
                        ("Content-Type", "application/x-amz-json-1.0"),
                        ("x-amzn-ErrorType", "AccessDeniedException"),
                    ],
                    &format!(
                        r#"{{"__type":"com.amazon.coral.service#AccessDeniedException","message":"User: arn:aws:iam::123456789012:user/test is not authorized to perform: dynamodb:{refused}"}}"#
                    ),
                )
            })
        })
    }

    /// An endpoint in front of this server: each request `answer` gives a canned answer
    /// gets that, every other is passed on to moto.
    pub fn proxy(
        &self,
        answer: impl Fn(&ProxiedRequest) -> Option<Canned> + Send + Sync + 'static,
    ) -> Proxy {
        Proxy::start(self.port, std::sync::Arc::new(answer))
    }

    /// The object's bytes, or `None` when there is no such object.
    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let sdk = self.sdk();
        sdk.run(&format!("reading `s3://{bucket}/{key}`"), async {
            match sdk.s3.get_object().bucket(bucket).key(key).send().await {
                Ok(reply) => Ok(Some(reply.body.collect().await?.into_bytes().to_vec())),
                Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
                Err(err) => Err(err.into()),
            }
        })
    }

    /// The object's text (see `get_object`); panics when there is no such object.
    pub fn object_text(&self, bucket: &str, key: &str) -> String {
        let bytes = self
            .get_object(bucket, key)
            .unwrap_or_else(|| panic!("there is no object `s3://{bucket}/{key}`"));
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Whether a HEAD of the object finds it.
    pub fn object_exists(&self, bucket: &str, key: &str) -> bool {
        let sdk = self.sdk();
        sdk.run(&format!("HEAD `s3://{bucket}/{key}`"), async {
            match sdk.s3.head_object().bucket(bucket).key(key).send().await {
                Ok(_) => Ok(true),
                Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
                Err(err) => Err(err.into()),
            }
        })
    }

    /// The keys of the bucket's objects that start with `prefix`, sorted.
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let sdk = self.sdk();
        sdk.run(&format!("listing `s3://{bucket}/{prefix}`"), async {
            let mut keys = Vec::new();
            let mut pages = sdk
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                keys.extend(
                    page?
                        .contents()
                        .iter()
                        .filter_map(|o| o.key().map(String::from)),
                );
            }
            keys.sort();
            Ok(keys)
        })
    }

    /// Writes the object `s3://<bucket>/<key>`.
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        let sdk = self.sdk();
        sdk.run(&format!("writing `s3://{bucket}/{key}`"), async {
            sdk.s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(body.to_vec()))
                .send()
                .await?;
            Ok(())
        });
    }

    /// Deletes the object `s3://<bucket>/<key>`: in a versioned bucket, a delete marker
    /// becomes its latest version.
    pub fn delete_object(&self, bucket: &str, key: &str) {
        let sdk = self.sdk();
        sdk.run(&format!("deleting `s3://{bucket}/{key}`"), async {
            sdk.s3
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await?;
            Ok(())
        });
    }

    /// Writes the lock table's item `lock_id` with `info` as its `Info` string, as
    /// terraform does when it takes a state lock.
    pub fn put_lock_item(&self, table: &str, lock_id: &str, info: &str) {
        self.put_lock_item_with(table, lock_id, Some(info));
    }

    /// A lock item with no `Info` attribute at all (a lock whose holder is not said).
    pub fn put_bare_lock_item(&self, table: &str, lock_id: &str) {
        self.put_lock_item_with(table, lock_id, None);
    }

    fn put_lock_item_with(&self, table: &str, lock_id: &str, info: Option<&str>) {
        let sdk = self.sdk();
        sdk.run(
            &format!("writing lock item `{lock_id}` of `{table}`"),
            async {
                let mut put = sdk
                    .dynamodb
                    .put_item()
                    .table_name(table)
                    .item("LockID", AttributeValue::S(lock_id.to_string()));
                if let Some(info) = info {
                    put = put.item("Info", AttributeValue::S(info.to_string()));
                }
                put.send().await?;
                Ok(())
            },
        );
    }

    /// Removes the lock table's item `lock_id`, as `terraform force-unlock` does.
    pub fn delete_lock_item(&self, table: &str, lock_id: &str) {
        let sdk = self.sdk();
        sdk.run(
            &format!("deleting lock item `{lock_id}` of `{table}`"),
            async {
                sdk.dynamodb
                    .delete_item()
                    .table_name(table)
                    .key("LockID", AttributeValue::S(lock_id.to_string()))
                    .send()
                    .await?;
                Ok(())
            },
        );
    }

    /// The lock table's item `lock_id` (for a state lock: `<bucket>/<key>`), as the
    /// DynamoDB JSON of its attributes (`{"LockID":{"S":…},"Info":{"S":…}}`), or
    /// `None` when there is no such item.
    pub fn lock_item(&self, table: &str, lock_id: &str) -> Option<serde_json::Value> {
        let sdk = self.sdk();
        let item = sdk.run(
            &format!("reading lock item `{lock_id}` of `{table}`"),
            async {
                let reply = sdk
                    .dynamodb
                    .get_item()
                    .table_name(table)
                    .key("LockID", AttributeValue::S(lock_id.to_string()))
                    .consistent_read(true)
                    .send()
                    .await?;
                Ok(reply.item)
            },
        )?;
        Some(serde_json::Value::Object(
            item.into_iter()
                .map(|(name, value)| (name, attribute_json(&value)))
                .collect(),
        ))
    }

    /// The lock JSON held in a lock item's `Info` attribute (`ID`, `Operation`, `Who`, …).
    pub fn lock_info(&self, table: &str, lock_id: &str) -> Option<serde_json::Value> {
        let item = self.lock_item(table, lock_id)?;
        let info = item["Info"]["S"]
            .as_str()
            .unwrap_or_else(|| panic!("lock item `{lock_id}` has no Info string: {item}"));
        Some(serde_json::from_str(info).unwrap_or_else(|err| {
            panic!("lock item `{lock_id}` holds no lock JSON ({err}): {info}")
        }))
    }

    /// Runs `during` and returns what it returned with the S3 and DynamoDB requests the
    /// server got meanwhile (moto's recorder), in order.
    pub fn requests_during<T>(&self, during: impl FnOnce() -> T) -> (T, Vec<Request>) {
        assert!(
            self.ca.is_none(),
            "requests_during is not available over TLS"
        );
        moto_api_ok(self.port, "/moto-api/recorder/reset-recording");
        moto_api_ok(self.port, "/moto-api/recorder/start-recording");
        let result = during();
        moto_api_ok(self.port, "/moto-api/recorder/stop-recording");
        let text = std::fs::read_to_string(self.recording()).unwrap_or_default();
        let requests = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|err| {
                    panic!("moto's recording holds a line that is not JSON ({err}): {line}")
                });
                Request::from_recording(&entry)
            })
            .collect();
        (result, requests)
    }

    fn recording(&self) -> PathBuf {
        self.dir.path().join("recording.jsonl")
    }

    /// An s3 backend config for Terraform >= 1.6 (`endpoints`, `use_path_style`)
    /// against this server, locking with `dynamodb_table`.
    pub fn backend_conf(&self, bucket: &str, key: &str, table: &str) -> String {
        let endpoint = self.endpoint();
        format!(
            r#"bucket         = "{bucket}"
key            = "{key}"
region         = "us-east-1"
dynamodb_table = "{table}"
endpoints = {{ s3 = "{endpoint}", dynamodb = "{endpoint}" }}
access_key = "test"
secret_key = "test"
use_path_style = true
skip_credentials_validation = true
skip_requesting_account_id  = true
skip_metadata_api_check     = true
skip_region_validation      = true
"#
        )
    }
}

/// S3 and DynamoDB clients for one moto server: its endpoint, path-style addressing,
/// region us-east-1, static `test`/`test` credentials and none of the host's AWS
/// configuration; and a small current-thread runtime to run their calls on, so that
/// the tests stay synchronous.
struct Sdk {
    runtime: tokio::runtime::Runtime,
    s3: aws_sdk_s3::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Sdk {
    /// `ca`: the only CA trusted (a `start_tls` server), else the system's roots.
    fn new(endpoint: &str, ca: Option<&std::path::Path>) -> Sdk {
        use aws_smithy_http_client::tls;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the moto helpers");
        let mut http = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).unwrap();
            http = http.tls_context(
                tls::TlsContext::builder()
                    .with_trust_store(tls::TrustStore::empty().with_pem_certificate(pem))
                    .build()
                    .expect("a TLS context trusting the test CA"),
            );
        }
        let http = http.build_https();
        let credentials = Credentials::new("test", "test", None, None, "tfenv tests");
        let region = Region::new("us-east-1");
        let s3 = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http.clone())
            .endpoint_url(endpoint)
            .force_path_style(true)
            .region(region.clone())
            .credentials_provider(credentials.clone())
            .build();
        let dynamodb = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .http_client(http)
            .endpoint_url(endpoint)
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .build();
        Sdk {
            runtime,
            s3: aws_sdk_s3::Client::from_conf(s3),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
        }
    }

    /// Runs the SDK calls of `call` to their end; panics saying `what` failed, with the
    /// SDK's whole error, when they fail.
    fn run<T>(&self, what: &str, call: impl Future<Output = Result<T, BoxError>>) -> T {
        self.runtime.block_on(call).unwrap_or_else(|err| {
            let mut why = err.to_string();
            let mut source = err.source();
            while let Some(cause) = source {
                why.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            panic!("{what} on moto failed: {why}")
        })
    }
}

/// A DynamoDB attribute as the DynamoDB JSON the aws CLI prints (`{"S": "…"}`).
fn attribute_json(value: &AttributeValue) -> serde_json::Value {
    use serde_json::json;
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::B(b) => json!({
            "B": base64::engine::general_purpose::STANDARD.encode(b.as_ref())
        }),
        AttributeValue::Ss(list) => json!({ "SS": list }),
        AttributeValue::Ns(list) => json!({ "NS": list }),
        AttributeValue::L(list) => {
            json!({ "L": list.iter().map(attribute_json).collect::<Vec<_>>() })
        }
        AttributeValue::M(map) => json!({
            "M": map
                .iter()
                .map(|(k, v)| (k.clone(), attribute_json(v)))
                .collect::<serde_json::Map<_, _>>()
        }),
        other => json!({ "unknown": format!("{other:?}") }),
    }
}

/// A request as the proxy of `Moto::proxy` got it.
pub struct ProxiedRequest {
    pub method: String,
    /// The path and query (`/tfstate/`, `/tfstate?versioning`).
    pub path: String,
    head: String,
}

impl ProxiedRequest {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

/// An answer the proxy gives instead of moto's.
pub struct Canned(Vec<u8>);

impl Canned {
    pub fn new(status: u16, headers: &[(&str, &str)], body: &str) -> Canned {
        let mut text = format!("HTTP/1.1 {status} Canned\r\n");
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        Canned(text.into_bytes())
    }
}

type Answer = std::sync::Arc<dyn Fn(&ProxiedRequest) -> Option<Canned> + Send + Sync>;

/// See `Moto::proxy`. Stops listening when dropped.
pub struct Proxy {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accepting: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(moto_port: u16, answer: Answer) -> Proxy {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let accepting = std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let _ = proxy_one(client, moto_port, &*answer);
                });
            }
        });
        Proxy {
            port,
            stop,
            accepting: Some(accepting),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept loop up so that it sees the flag.
        let _ = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)));
        if let Some(thread) = self.accepting.take() {
            let _ = thread.join();
        }
    }
}

/// One request of `client`: the canned answer when `answer` gives one, else sent to
/// moto (with `Connection: close`) and moto's answer copied back.
fn proxy_one(
    mut client: TcpStream,
    moto_port: u16,
    answer: &(dyn Fn(&ProxiedRequest) -> Option<Canned> + Send + Sync),
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut request_line = head.lines().next().unwrap_or_default().split_whitespace();
    let request = ProxiedRequest {
        method: request_line.next().unwrap_or_default().to_string(),
        path: request_line.next().unwrap_or_default().to_string(),
        head: head.clone(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    if let Some(Canned(bytes)) = answer(&request) {
        client.write_all(&bytes)?;
        return Ok(());
    }
    let mut forwarded: String = head
        .trim_end()
        .lines()
        .filter(|line| {
            !line
                .split(':')
                .next()
                .is_some_and(|k| k.trim().eq_ignore_ascii_case("connection"))
        })
        .map(|line| format!("{line}\r\n"))
        .collect();
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut moto = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, moto_port)))?;
    moto.write_all(forwarded.as_bytes())?;
    moto.write_all(&buffer[head_end..])?;
    std::io::copy(&mut moto, &mut client)?;
    Ok(())
}

/// A bucket's default encryption (`Moto::bucket_encryption`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    /// `AES256`, `aws:kms`
    pub algorithm: String,
    pub kms_key: Option<String>,
    pub bucket_key: bool,
}

/// What DescribeTable says of a table (`Moto::table`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub hash_key: String,
    /// `S`, `N`, `B`
    pub hash_key_type: String,
    /// `PAY_PER_REQUEST`, `PROVISIONED`
    pub billing_mode: Option<String>,
    /// `ACTIVE`, …
    pub status: Option<String>,
}

/// One request moto got, from its recorder.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path and query (`/tfstate-test/dev/terraform.tfstate`, `/`).
    pub path: String,
    /// The DynamoDB operation (`GetItem`, `BatchGetItem`, …), from `X-Amz-Target`.
    pub dynamodb_operation: Option<String>,
    /// The request body as text (DynamoDB's JSON).
    pub body: String,
}

impl Request {
    fn from_recording(entry: &serde_json::Value) -> Request {
        let header = |name: &str| {
            entry["headers"].as_object().and_then(|headers| {
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .and_then(|(_, v)| v.as_str())
                    .map(String::from)
            })
        };
        let url = entry["url"].as_str().unwrap_or_default();
        let path = match url.find("://") {
            Some(scheme) => {
                let rest = &url[scheme + 3..];
                rest.find('/')
                    .map_or("/", |slash| &rest[slash..])
                    .to_string()
            }
            None => url.to_string(),
        };
        let raw = entry["body"].as_str().unwrap_or_default();
        let body = if entry["body_encoded"] == true {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(raw)
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            raw.to_string()
        };
        Request {
            method: entry["method"].as_str().unwrap_or_default().to_string(),
            path,
            dynamodb_operation: header("X-Amz-Target")
                .and_then(|t| t.rsplit('.').next().map(String::from)),
            body,
        }
    }

    /// The body as JSON (a DynamoDB request's parameters).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("the request body is not JSON ({err}): {}", self.body))
    }
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.dynamodb_operation {
            Some(op) => write!(f, "DynamoDB {op} {}", self.body),
            None => write!(f, "{} {}", self.method, self.path),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Kills the server and everything in its process group, and reaps it.
fn stop(child: &mut Child) {
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Polls until `GET /moto-api/` answers (over TLS: S3 ListBuckets), the server exits,
/// or the time is up.
fn wait_until_up(child: &mut Child, port: u16, ca: Option<&std::path::Path>) -> Result<(), String> {
    let started = Instant::now();
    let tls = ca.map(|ca| Sdk::new(&format!("https://127.0.0.1:{port}"), Some(ca)));
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("moto_server exited early ({status})"));
        }
        let up = match &tls {
            None => moto_api_answers(port),
            Some(sdk) => {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
                    && sdk.runtime.block_on(sdk.s3.list_buckets().send()).is_ok()
            }
        };
        if up {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!(
                "no answer on http://127.0.0.1:{port}/moto-api/ within {}s",
                START_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A CA and a certificate for IP 127.0.0.1 signed by it (`cert.pem`, `key.pem`) in
/// `dir`, made with openssl; returns the CA's certificate. (rustls refuses a
/// self-signed certificate used as the server's own: CaUsedAsEndEntity.)
fn make_certificates(dir: &std::path::Path) -> PathBuf {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|err| {
                panic!(
                    "openssl is needed for the tests of an S3 endpoint over TLS ({err}): install it (Debian/Ubuntu: `sudo apt-get install -y openssl`), or run scripts/test.sh as root, which installs it"
                )
            });
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=tfenv test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    dir.join("ca.pem")
}

/// A port nobody listens on right now (the kernel's pick for an ephemeral bind).
fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /moto-api/` answers `200`.
fn moto_api_answers(port: u16) -> bool {
    moto_api(port, "GET", "/moto-api/")
}

/// `POST <path>` of moto's own API, which must answer `200`.
fn moto_api_ok(port: u16, path: &str) {
    assert!(
        moto_api(port, "POST", path),
        "moto did not answer `POST {path}` with 200"
    );
}

/// `<method> <path>` on moto answers `200`.
fn moto_api(port: u16, method: &str, path: &str) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    status_line.starts_with("HTTP/1.") && status_line.split_whitespace().nth(1) == Some("200")
}
