//! s3: the bucket (versioning, default encryption, every public access block setting,
//! a policy denying requests without TLS) and the DynamoDB lock table, through the AWS
//! SDK clients the lock reader uses (same endpoints, region and credentials).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use serde_json::{Value, json};

use super::{Op as AnyOp, Options, Step, StepKind, Survey};
use crate::backend::{Backend, aws, s3_store, within};
use crate::error::TfenvError;

/// The statement bootstrap adds to a bucket policy, by its `Sid`.
const TLS_SID: &str = "DenyInsecureTransport";

/// Where a bucket's permissions are listed.
const DOCS: &str = "docs/bootstrap.md (Permissions)";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Bucket(BucketOp),
    CreateTable,
}

/// One call on the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BucketOp {
    Create,
    Versioning,
    Encryption,
    PublicAccessBlock,
    /// The bucket policy: ours alone (`None`), or the existing one with our statement
    /// added.
    Policy(Option<String>),
}

/// The endpoints a backend's bucket and table are reached at, for telling resources of
/// different backends apart.
pub(super) struct Endpoints {
    pub s3: String,
    pub dynamodb: String,
    pub region: String,
}

pub(super) fn endpoints(backend: &Backend) -> anyhow::Result<Endpoints> {
    let settings = aws::AwsSettings::from_backend(backend, &|name| std::env::var(name).ok())?;
    let region = settings.region.clone().unwrap_or_default();
    // `http://host:9000/` and `HTTP://host:9000` are one endpoint.
    let same = |url: &str| url.trim().trim_end_matches('/').to_ascii_lowercase();
    Ok(Endpoints {
        s3: settings
            .s3_endpoint
            .as_deref()
            .map(same)
            .unwrap_or_else(|| format!("region:{region}")),
        dynamodb: format!(
            "{} {region}",
            settings
                .dynamodb_endpoint
                .as_deref()
                .map(same)
                .unwrap_or_default()
        ),
        region,
    })
}

struct Target {
    aws: aws::Aws,
    bucket: String,
    region: Option<String>,
    kms_key_id: Option<String>,
    /// The S3 endpoint, when it is plain `http://` (an emulator, a lab's MinIO): a
    /// policy denying requests without TLS would deny every request through it, so
    /// bootstrap leaves it out there.
    plain_http: Option<String>,
}

impl Target {
    async fn of(backend: &Backend) -> anyhow::Result<Target> {
        let aws = aws::clients(backend).await?;
        Ok(Target {
            // The SDK (and terraform) take the endpoint from the environment or the
            // shared config file when the backend config names none.
            plain_http: aws
                .s3_endpoint_used
                .clone()
                .filter(|e| e.trim().to_ascii_lowercase().starts_with("http://")),
            region: aws.settings.region.clone(),
            aws,
            bucket: backend.setting("bucket").unwrap_or_default(),
            kms_key_id: backend.setting("kms_key_id").filter(|k| !k.is_empty()),
        })
    }

    fn needs(&self, action: &'static str) -> aws::Needs {
        aws::Needs {
            action,
            on: format!("`arn:aws:s3:::{}`", self.bucket),
            docs: DOCS,
        }
    }

    fn failure<E>(
        &self,
        action: &'static str,
        what: &str,
        err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.aws.failure(&self.needs(action), what, err)
    }

    /// Why the TLS-only policy is left out, when it is.
    fn no_tls_policy(&self) -> Option<String> {
        self.plain_http.as_ref().map(|endpoint| {
            format!(
                "no policy denying requests without TLS: the endpoint `{endpoint}` is plain HTTP, and such a policy would deny every request through it (terraform's and tfenv's too)"
            )
        })
    }

    /// The encryption bootstrap sets: SSE-KMS with the backend's `kms_key_id`, else
    /// SSE-S3.
    fn encryption(&self) -> String {
        match &self.kms_key_id {
            Some(key) => format!("SSE-KMS with `{key}`"),
            None => "SSE-S3 (AES256)".to_string(),
        }
    }
}

fn status<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

fn step(kind: StepKind, change: impl Into<String>, op: Op) -> Step {
    Step::new(kind, change, AnyOp::S3(op))
}

/// HeadBucket, then what the bucket has.
pub(super) async fn survey_bucket(backend: &Backend, options: &Options) -> anyhow::Result<Survey> {
    let target = Target::of(backend).await?;
    check_account(backend, &target.aws, options).await?;
    let bucket = &target.bucket;
    let head = within(
        options.timeout,
        || format!("S3 HeadBucket of `{bucket}`"),
        async {
            let what = format!("looking for the S3 bucket `{bucket}`");
            match target.aws.s3.head_bucket().bucket(bucket).send().await {
                Ok(head) => match (head.bucket_region(), target.region.as_deref()) {
                    (Some(found), Some(wanted)) if found != wanted => Err(TfenvError::config(
                        format!(
                            "the S3 bucket `{bucket}` exists in `{found}`, not in the backend config's region `{wanted}`"
                        ),
                        Some(format!(
                            "set `region = \"{found}\"` in the backend config, or choose another bucket name"
                        )),
                    )
                    .into()),
                    _ => Ok(true),
                },
                Err(err) => match status(&err) {
                    Some(404) => Ok(false),
                    Some(403) => Err(TfenvError::Permission {
                        message: format!(
                            "the S3 bucket `{bucket}` exists, but these credentials may not use it (403): it belongs to another account, or a policy denies them; tfenv used {}",
                            target.aws.settings.credential_source()
                        ),
                        hint: Some(
                            "bucket names are global across all AWS accounts: if the bucket is not yours, choose another `bucket` name in the backend config; if it is, allow `s3:ListBucket` on it for these credentials".to_string(),
                        ),
                    }
                    .into()),
                    Some(301) => {
                        let region = err
                            .raw_response()
                            .and_then(|r| r.headers().get("x-amz-bucket-region"))
                            .unwrap_or("another region")
                            .to_string();
                        Err(TfenvError::config(
                            format!(
                                "the S3 bucket `{bucket}` exists in `{region}`, not in the backend config's region `{}`",
                                target.region.as_deref().unwrap_or("?")
                            ),
                            Some(format!(
                                "set `region = \"{region}\"` in the backend config, or choose another bucket name"
                            )),
                        )
                        .into())
                    }
                    _ => Err(target.failure("s3:ListBucket", &what, err)),
                },
            }
        },
    )
    .await?;
    if !head {
        let Some(region) = &target.region else {
            return Err(TfenvError::config(
                format!("the S3 bucket `{bucket}` does not exist, and the backend config names no `region` to create it in"),
                Some("set `region` in the backend config (terraform's s3 backend needs it too)".to_string()),
            )
            .into());
        };
        let mut steps = vec![
            step(
                StepKind::Create,
                format!("create the bucket in `{region}`"),
                Op::Bucket(BucketOp::Create),
            ),
            step(
                StepKind::Create,
                "turn on versioning",
                Op::Bucket(BucketOp::Versioning),
            ),
            step(
                StepKind::Create,
                format!("default encryption {}", target.encryption()),
                Op::Bucket(BucketOp::Encryption),
            ),
            step(
                StepKind::Create,
                "block all public access (all four settings)",
                Op::Bucket(BucketOp::PublicAccessBlock),
            ),
        ];
        if target.plain_http.is_none() {
            steps.push(step(
                StepKind::Create,
                "bucket policy denying requests without TLS",
                Op::Bucket(BucketOp::Policy(None)),
            ));
        }
        return Ok(Survey {
            exists: false,
            found: Vec::new(),
            steps,
            notes: target.no_tls_policy().into_iter().collect(),
        });
    }
    let mut found = Vec::new();
    let mut steps = Vec::new();
    read_versioning(backend, &target, options, &mut found, &mut steps).await?;
    read_encryption(&target, options, &mut found, &mut steps).await?;
    read_public_access_block(&target, options, &mut found, &mut steps).await?;
    let mut notes = Vec::new();
    match target.no_tls_policy() {
        Some(note) => notes.push(note),
        None => read_policy(&target, options, &mut found, &mut steps, &mut notes).await?,
    }
    Ok(Survey {
        exists: true,
        found,
        steps,
        notes,
    })
}

async fn read_versioning(
    backend: &Backend,
    target: &Target,
    options: &Options,
    found: &mut Vec<String>,
    steps: &mut Vec<Step>,
) -> anyhow::Result<()> {
    let bucket = &target.bucket;
    let versioning = within(
        options.timeout,
        || format!("S3 GetBucketVersioning of `{bucket}`"),
        s3_store::versioning(backend),
    )
    .await?;
    match versioning {
        Some(true) => found.push("versioning enabled".into()),
        Some(false) => steps.push(
            step(
                StepKind::Fix,
                "turn versioning back on",
                Op::Bucket(BucketOp::Versioning),
            )
            .found("versioning suspended"),
        ),
        None => steps.push(step(
            StepKind::Complete,
            "turn on versioning",
            Op::Bucket(BucketOp::Versioning),
        )),
    }
    Ok(())
}

async fn read_encryption(
    target: &Target,
    options: &Options,
    found: &mut Vec<String>,
    steps: &mut Vec<Step>,
) -> anyhow::Result<()> {
    let bucket = &target.bucket;
    let what = format!("reading the default encryption of `s3://{bucket}`");
    let reply = within(options.timeout, || what.clone(), async {
        match target
            .aws
            .s3
            .get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(reply) => Ok(reply
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first())
                .and_then(|r| r.apply_server_side_encryption_by_default())
                .map(|d| {
                    (
                        d.sse_algorithm().clone(),
                        d.kms_master_key_id().map(str::to_string),
                    )
                })),
            Err(err) if err.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => {
                Ok(None)
            }
            Err(err) => Err(target.failure("s3:GetEncryptionConfiguration", &what, err)),
        }
    })
    .await?;
    let wanted = target.encryption();
    match (reply, &target.kms_key_id) {
        (None, _) => steps.push(step(
            StepKind::Complete,
            format!("default encryption {wanted}"),
            Op::Bucket(BucketOp::Encryption),
        )),
        (Some((algorithm, key)), Some(wanted_key)) => {
            let kms = matches!(
                algorithm,
                ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse
            );
            if kms && key.as_deref().is_some_and(|k| same_key(k, wanted_key)) {
                found.push(format!("default encryption {wanted}"));
            } else {
                let now = match (kms, key) {
                    (true, Some(key)) => format!("default encryption SSE-KMS with `{key}`"),
                    (true, None) => "default encryption SSE-KMS with the AWS managed key".into(),
                    (false, _) => format!("default encryption {}", sse_name(&algorithm)),
                };
                steps.push(
                    step(
                        StepKind::Fix,
                        format!("default encryption {wanted} (the backend config's `kms_key_id`)"),
                        Op::Bucket(BucketOp::Encryption),
                    )
                    .found(now),
                );
            }
        }
        (Some((algorithm, key)), None) => found.push(match key {
            Some(key) => format!("default encryption {} with `{key}`", sse_name(&algorithm)),
            None => format!("default encryption {}", sse_name(&algorithm)),
        }),
    }
    Ok(())
}

/// An encryption as the plan names it: `SSE-S3 (AES256)`, `SSE-KMS`, `DSSE-KMS`.
fn sse_name(algorithm: &ServerSideEncryption) -> String {
    match algorithm {
        ServerSideEncryption::Aes256 => "SSE-S3 (AES256)".to_string(),
        ServerSideEncryption::AwsKms => "SSE-KMS".to_string(),
        ServerSideEncryption::AwsKmsDsse => "DSSE-KMS".to_string(),
        other => other.as_str().to_string(),
    }
}

/// A key named by ARN, by ID or by alias: the same when one ends with the other.
fn same_key(found: &str, wanted: &str) -> bool {
    found == wanted
        || found.ends_with(&format!("/{wanted}"))
        || wanted.ends_with(&format!("/{found}"))
}

async fn read_public_access_block(
    target: &Target,
    options: &Options,
    found: &mut Vec<String>,
    steps: &mut Vec<Step>,
) -> anyhow::Result<()> {
    let bucket = &target.bucket;
    let what = format!("reading the public access block of `s3://{bucket}`");
    let reply = within(options.timeout, || what.clone(), async {
        match target
            .aws
            .s3
            .get_public_access_block()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(reply) => Ok(reply.public_access_block_configuration().map(|c| {
                [
                    ("BlockPublicAcls", c.block_public_acls()),
                    ("IgnorePublicAcls", c.ignore_public_acls()),
                    ("BlockPublicPolicy", c.block_public_policy()),
                    ("RestrictPublicBuckets", c.restrict_public_buckets()),
                ]
                .into_iter()
                .filter(|(_, on)| *on != Some(true))
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
            })),
            Err(err) if err.code() == Some("NoSuchPublicAccessBlockConfiguration") => Ok(None),
            Err(err) => Err(target.failure("s3:GetBucketPublicAccessBlock", &what, err)),
        }
    })
    .await?;
    let change = "block all public access (all four settings)";
    match reply {
        None => steps.push(step(
            StepKind::Complete,
            change,
            Op::Bucket(BucketOp::PublicAccessBlock),
        )),
        Some(off) if off.is_empty() => found.push("all public access blocked".into()),
        Some(off) => steps.push(
            step(
                StepKind::Fix,
                change,
                Op::Bucket(BucketOp::PublicAccessBlock),
            )
            .found(format!("public access block with {} off", off.join(", "))),
        ),
    }
    Ok(())
}

async fn read_policy(
    target: &Target,
    options: &Options,
    found: &mut Vec<String>,
    steps: &mut Vec<Step>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let bucket = &target.bucket;
    let what = format!("reading the bucket policy of `s3://{bucket}`");
    let policy = within(options.timeout, || what.clone(), async {
        match target
            .aws
            .s3
            .get_bucket_policy()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(reply) => Ok(reply.policy().map(str::to_string)),
            Err(err) if err.code() == Some("NoSuchBucketPolicy") => Ok(None),
            Err(err) => Err(target.failure("s3:GetBucketPolicy", &what, err)),
        }
    })
    .await?;
    let change = "bucket policy denying requests without TLS";
    match policy {
        None => steps.push(step(
            StepKind::Complete,
            change,
            Op::Bucket(BucketOp::Policy(None)),
        )),
        Some(policy) if denies_insecure_transport(&policy, bucket) => {
            found.push("a policy denying requests without TLS".into())
        }
        Some(policy) => match policy_with_tls(bucket, Some(&policy)) {
            Ok(_) => steps.push(
                step(
                    StepKind::Fix,
                    "add a statement denying requests without TLS to the bucket policy (its other statements are kept)",
                    Op::Bucket(BucketOp::Policy(Some(policy))),
                )
                .found("a bucket policy without a statement denying requests without TLS"),
            ),
            Err(why) => notes.push(format!(
                "no policy denying requests without TLS, and tfenv leaves the bucket policy as it is: {why}; add a statement denying `s3:*` when `aws:SecureTransport` is `false` yourself"
            )),
        },
    }
    Ok(())
}

/// The backend config's `allowed_account_ids` / `forbidden_account_ids`, as terraform
/// checks them at init: the account of the credentials (STS GetCallerIdentity) must be
/// allowed, or bootstrap would create in an account terraform then refuses.
async fn check_account(backend: &Backend, aws: &aws::Aws, options: &Options) -> anyhow::Result<()> {
    let list = |name: &str| -> Vec<String> {
        match backend.settings.get(name) {
            Some(Value::Array(ids)) => ids
                .iter()
                .filter_map(crate::backend::setting_text)
                .collect(),
            Some(one) => crate::backend::setting_text(one).into_iter().collect(),
            None => Vec::new(),
        }
    };
    let (allowed, forbidden) = (list("allowed_account_ids"), list("forbidden_account_ids"));
    if allowed.is_empty() && forbidden.is_empty() {
        return Ok(());
    }
    let what = "asking STS which AWS account the credentials are in (the backend config sets `allowed_account_ids` / `forbidden_account_ids`)";
    let account = within(options.timeout, || what.to_string(), async {
        aws.sts
            .get_caller_identity()
            .send()
            .await
            .map(|who| who.account().unwrap_or_default().to_string())
            .map_err(|err| {
                let needs = aws::Needs {
                    action: "sts:GetCallerIdentity",
                    on: "`*`".to_string(),
                    docs: DOCS,
                };
                aws.failure(&needs, what, err)
            })
    })
    .await?;
    let refused = if !allowed.is_empty() && !allowed.contains(&account) {
        Some("is not in the backend config's `allowed_account_ids`")
    } else if forbidden.contains(&account) {
        Some("is in the backend config's `forbidden_account_ids`")
    } else {
        None
    };
    match refused {
        Some(why) => Err(TfenvError::Refused {
            message: format!(
                "the credentials are in the AWS account `{account}`, which {why}: terraform would refuse this backend, so bootstrap creates nothing in it"
            ),
            hint: Some("use credentials of an allowed account (AWS_PROFILE, the config's `profile`), or fix the list".to_string()),
        }
        .into()),
        None => Ok(()),
    }
}

/// The TLS-only statement for `bucket`.
fn tls_statement(bucket: &str) -> Value {
    json!({
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } }
    })
}

/// Whether a policy has a statement denying every S3 action on the bucket and its
/// objects when `aws:SecureTransport` is false.
fn denies_insecure_transport(policy: &str, bucket: &str) -> bool {
    let Ok(policy) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    let statements = match policy.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one) => vec![one.clone()],
        None => Vec::new(),
    };
    statements.iter().any(|s| {
        let any = |v: Option<&Value>, wanted: &str| match v {
            Some(Value::String(s)) => s == wanted,
            Some(Value::Array(list)) => list.iter().any(|x| x.as_str() == Some(wanted)),
            _ => false,
        };
        let covers = |arn: &str| {
            ["*", "arn:aws:s3:::*", arn]
                .iter()
                .any(|wanted| any(s.get("Resource"), wanted))
        };
        // Everyone, and no condition but the transport: a deny narrowed to one
        // principal or one user protects nobody else.
        let everyone = match s.get("Principal") {
            Some(Value::String(p)) => p == "*",
            Some(Value::Object(p)) => p.len() == 1 && any(p.get("AWS"), "*"),
            _ => false,
        };
        let only_transport = s
            .get("Condition")
            .and_then(Value::as_object)
            .is_some_and(|c| {
                c.len() == 1
                    && c.get("Bool")
                        .and_then(Value::as_object)
                        .is_some_and(|b| b.len() == 1)
            });
        s.get("Effect").and_then(Value::as_str) == Some("Deny")
            && everyone
            && only_transport
            && (any(s.get("Action"), "s3:*") || any(s.get("Action"), "*"))
            && covers(&format!("arn:aws:s3:::{bucket}"))
            && covers(&format!("arn:aws:s3:::{bucket}/*"))
            && s.pointer("/Condition/Bool/aws:SecureTransport")
                .is_some_and(|v| v == "false" || v == &Value::Bool(false))
    })
}

/// The policy to put: ours alone, or `existing` with our statement added. A policy that
/// is not a JSON object with a list of statements (or one) is an error: tfenv never
/// replaces someone's policy.
fn policy_with_tls(bucket: &str, existing: Option<&str>) -> anyhow::Result<String> {
    let Some(existing) = existing else {
        return Ok(
            json!({ "Version": "2012-10-17", "Statement": [tls_statement(bucket)] }).to_string(),
        );
    };
    let mut policy: Value = serde_json::from_str(existing)
        .map_err(|e| anyhow::anyhow!("its policy is not JSON ({e})"))?;
    let Some(object) = policy.as_object_mut() else {
        anyhow::bail!("its policy is not a JSON object");
    };
    let statements = match object.remove("Statement") {
        Some(Value::Array(list)) => list,
        Some(one @ Value::Object(_)) => vec![one],
        None => Vec::new(),
        Some(_) => anyhow::bail!("its policy's `Statement` is neither a list nor a statement"),
    };
    // Statement IDs are unique within a policy.
    let taken = |sid: &str| {
        statements
            .iter()
            .any(|s| s.get("Sid").and_then(Value::as_str) == Some(sid))
    };
    let mut ours = tls_statement(bucket);
    if taken(TLS_SID) {
        let sid = (2..)
            .map(|n| format!("{TLS_SID}{n}"))
            .find(|sid| !taken(sid))
            .expect("an unused statement ID");
        ours["Sid"] = Value::String(sid);
    }
    let mut statements = statements;
    statements.push(ours);
    object.insert("Statement".to_string(), Value::Array(statements));
    Ok(policy.to_string())
}

/// DescribeTable of the lock table, and whether terraform can lock in it.
pub(super) async fn survey_table(backend: &Backend, options: &Options) -> anyhow::Result<Survey> {
    let aws = aws::clients(backend).await?;
    check_account(backend, &aws, options).await?;
    let table = backend.setting("dynamodb_table").unwrap_or_default();
    let what = format!("looking for the DynamoDB table `{table}`");
    let described = within(options.timeout, || what.clone(), async {
        match aws
            .dynamodb
            .describe_table()
            .table_name(&table)
            .send()
            .await
        {
            Ok(reply) => Ok(reply.table),
            Err(err) if err.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(err) => {
                Err(aws.failure(&table_needs(&table, "dynamodb:DescribeTable"), &what, err))
            }
        }
    })
    .await?;
    let Some(described) = described else {
        return Ok(Survey {
            exists: false,
            found: Vec::new(),
            steps: vec![step(
                StepKind::Create,
                "create it with the hash key `LockID` (string), on-demand billing",
                Op::CreateTable,
            )],
            notes: Vec::new(),
        });
    };
    let hash = described
        .key_schema()
        .iter()
        .find(|k| k.key_type() == &KeyType::Hash)
        .map(|k| k.attribute_name().to_string());
    let hash_type = described
        .attribute_definitions()
        .iter()
        .find(|a| Some(a.attribute_name()) == hash.as_deref())
        .map(|a| a.attribute_type().as_str().to_string());
    let extra_keys: Vec<String> = described
        .key_schema()
        .iter()
        .filter(|k| k.key_type() != &KeyType::Hash)
        .map(|k| format!("`{}`", k.attribute_name()))
        .collect();
    if !extra_keys.is_empty() {
        return Err(TfenvError::config(
            format!(
                "the DynamoDB table `{table}` exists, but it has a range key ({}) besides its hash key, and terraform locks in a table whose only key is `LockID` (a string)",
                extra_keys.join(", ")
            ),
            Some("name another table in the backend config's `dynamodb_table`; tfenv never changes or deletes an existing table".to_string()),
        )
        .into());
    }
    if hash.as_deref() != Some("LockID") || hash_type.as_deref() != Some("S") {
        return Err(TfenvError::config(
            format!(
                "the DynamoDB table `{table}` exists, but its hash key is `{}` ({}), and terraform locks in a table whose hash key is `LockID` (a string)",
                hash.as_deref().unwrap_or("none"),
                hash_type.as_deref().unwrap_or("?")
            ),
            Some("name another table in the backend config's `dynamodb_table`; tfenv never changes or deletes an existing table".to_string()),
        )
        .into());
    }
    match described.table_status() {
        Some(TableStatus::Active) | None => {}
        Some(TableStatus::Creating | TableStatus::Updating) => {
            wait_active(&aws, &table, &what, false, options).await?;
        }
        Some(other) => {
            return Err(TfenvError::config(
                format!(
                    "the DynamoDB table `{table}` is `{}`: terraform cannot lock in it",
                    other.as_str()
                ),
                Some("wait until it is ACTIVE (or gone, then run `tfenv bootstrap` again to create it)".to_string()),
            )
            .into());
        }
    }
    let billing = match described
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
    {
        Some(BillingMode::PayPerRequest) => "on-demand billing",
        _ => "provisioned capacity",
    };
    Ok(Survey {
        exists: true,
        found: vec![format!("hash key `LockID` (string), {billing}")],
        steps: Vec::new(),
        notes: Vec::new(),
    })
}

fn table_needs(table: &str, action: &'static str) -> aws::Needs {
    aws::Needs {
        action,
        on: format!("the DynamoDB table `{table}`"),
        docs: DOCS,
    }
}

pub(super) async fn apply(backend: &Backend, op: &Op, options: &Options) -> anyhow::Result<()> {
    match op {
        Op::CreateTable => create_table(backend, options).await,
        Op::Bucket(op) => apply_to_bucket(backend, op, options).await,
    }
}

async fn apply_to_bucket(
    backend: &Backend,
    op: &BucketOp,
    options: &Options,
) -> anyhow::Result<()> {
    let target = Target::of(backend).await?;
    let bucket = &target.bucket;
    let s3 = &target.aws.s3;
    let (action, what): (&'static str, String) = match op {
        BucketOp::Create => (
            "s3:CreateBucket",
            format!("creating the S3 bucket `{bucket}`"),
        ),
        BucketOp::Versioning => (
            "s3:PutBucketVersioning",
            format!("turning on versioning of `s3://{bucket}`"),
        ),
        BucketOp::Encryption => (
            "s3:PutEncryptionConfiguration",
            format!("setting the default encryption of `s3://{bucket}`"),
        ),
        BucketOp::PublicAccessBlock => (
            "s3:PutBucketPublicAccessBlock",
            format!("blocking public access to `s3://{bucket}`"),
        ),
        BucketOp::Policy(_) => (
            "s3:PutBucketPolicy",
            format!("setting the bucket policy of `s3://{bucket}`"),
        ),
    };
    let call = async {
        match op {
            BucketOp::Create => {
                let mut create = s3.create_bucket().bucket(bucket);
                // us-east-1 is the one region S3 refuses a location constraint for.
                if let Some(region) = target.region.as_deref().filter(|r| *r != "us-east-1") {
                    create = create.create_bucket_configuration(
                        CreateBucketConfiguration::builder()
                            .location_constraint(BucketLocationConstraint::from(region))
                            .build(),
                    );
                }
                match create.send().await {
                    Ok(_) => Ok(()),
                    Err(err) if err.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
                    Err(err) if err.code() == Some("BucketAlreadyExists") => Err(TfenvError::config(
                        format!(
                            "{what}: the name is taken: another AWS account owns a bucket named `{bucket}` (bucket names are global)"
                        ),
                        Some("choose another `bucket` name in the backend config".to_string()),
                    )
                    .into()),
                    Err(err) => Err(target.failure(action, &what, err)),
                }
            }
            BucketOp::Versioning => s3
                .put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|err| target.failure(action, &what, err)),
            BucketOp::Encryption => {
                let default = match &target.kms_key_id {
                    Some(key) => ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::AwsKms)
                        .kms_master_key_id(key),
                    None => ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::Aes256),
                }
                .build()?;
                let rule = ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(default)
                    .bucket_key_enabled(target.kms_key_id.is_some())
                    .build();
                s3.put_bucket_encryption()
                    .bucket(bucket)
                    .server_side_encryption_configuration(
                        ServerSideEncryptionConfiguration::builder()
                            .rules(rule)
                            .build()?,
                    )
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|err| target.failure(action, &what, err))
            }
            BucketOp::PublicAccessBlock => s3
                .put_public_access_block()
                .bucket(bucket)
                .public_access_block_configuration(
                    PublicAccessBlockConfiguration::builder()
                        .block_public_acls(true)
                        .ignore_public_acls(true)
                        .block_public_policy(true)
                        .restrict_public_buckets(true)
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|err| target.failure(action, &what, err)),
            BucketOp::Policy(existing) => {
                let policy = policy_with_tls(bucket, existing.as_deref())?;
                s3.put_bucket_policy()
                    .bucket(bucket)
                    .policy(policy)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|err| target.failure(action, &what, err))
            }
        }
    };
    within(options.timeout, || what.clone(), call).await
}

/// CreateTable, then waits until the table is ACTIVE: terraform cannot lock in a table
/// that is still being created. The call and the wait each get the deadline.
async fn create_table(backend: &Backend, options: &Options) -> anyhow::Result<()> {
    let aws = aws::clients(backend).await?;
    let table = backend.setting("dynamodb_table").unwrap_or_default();
    let what = format!("creating the DynamoDB table `{table}`");
    let create = async {
        let created = aws
            .dynamodb
            .create_table()
            .table_name(&table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("LockID")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("LockID")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // Created meanwhile (another run): the survey after checks it is right.
            Err(err) if err.code() == Some("ResourceInUseException") => Ok(()),
            Err(err) => Err(aws.failure(&table_needs(&table, "dynamodb:CreateTable"), &what, err)),
        }
    };
    within(options.timeout, || what.clone(), create).await?;
    wait_active(&aws, &table, &what, true, options).await
}

/// Polls DescribeTable until the table is ACTIVE. A table still not ACTIVE at the
/// deadline is said as such (`created`: this run made it), not as a cloud that did not
/// answer.
async fn wait_active(
    aws: &aws::Aws,
    table: &str,
    what: &str,
    created: bool,
    options: &Options,
) -> anyhow::Result<()> {
    let mut status = None;
    let active = async {
        loop {
            let described = aws
                .dynamodb
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|err| {
                    aws.failure(&table_needs(table, "dynamodb:DescribeTable"), what, err)
                })?;
            status = described.table().and_then(|t| t.table_status()).cloned();
            if status == Some(TableStatus::Active) {
                return anyhow::Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    };
    match tokio::time::timeout(options.timeout, active).await {
        Ok(result) => result,
        Err(_) => Err(TfenvError::Unreachable {
            message: format!(
                "the DynamoDB table `{table}` {}, but it is still `{}` after {} (--timeout): terraform cannot lock in it until it is ACTIVE",
                if created { "was created" } else { "exists" },
                status.as_ref().map_or("not ACTIVE", |s| s.as_str()),
                humantime::format_duration(options.timeout)
            ),
            hint: Some(
                "run `tfenv bootstrap` again in a minute: it finds the table and checks it; or allow longer with --timeout".to_string(),
            ),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_statement_is_recognised_in_every_form_a_policy_writes_it() {
        let ours = policy_with_tls("b", None).unwrap();
        assert!(denies_insecure_transport(&ours, "b"));
        assert!(!denies_insecure_transport(&ours, "other"));
        let single = json!({"Statement": {"Effect": "Deny", "Principal": "*", "Action": ["s3:GetObject", "s3:*"],
            "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": false}}}});
        assert!(denies_insecure_transport(&single.to_string(), "b"));
        let objects_only = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": "arn:aws:s3:::b/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        assert!(!denies_insecure_transport(&objects_only.to_string(), "b"));
        let one_account = json!({"Statement": [{"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::1:root"},
            "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        assert!(!denies_insecure_transport(&one_account.to_string(), "b"));
        let one_user = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}, "StringEquals": {"aws:username": "bob"}}}]});
        assert!(!denies_insecure_transport(&one_user.to_string(), "b"));
        let everything = json!({"Statement": [{"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "*",
            "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": false}}}]});
        assert!(denies_insecure_transport(&everything.to_string(), "b"));
        let allow = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        assert!(!denies_insecure_transport(&allow.to_string(), "b"));
        assert!(!denies_insecure_transport("not json", "b"));
    }

    #[test]
    fn an_existing_policy_keeps_its_statements_and_gains_the_tls_one() {
        let existing = json!({"Version": "2012-10-17", "Statement": {"Sid": "Theirs", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}});
        let merged: Value =
            serde_json::from_str(&policy_with_tls("b", Some(&existing.to_string())).unwrap())
                .unwrap();
        let statements = merged["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Sid"], "Theirs");
        assert_eq!(statements[1]["Sid"], TLS_SID);
        assert_eq!(statements[1]["Resource"][1], "arn:aws:s3:::b/*");
        assert!(policy_with_tls("b", Some("{not json")).is_err());
    }

    #[test]
    fn kms_keys_match_by_arn_id_or_alias() {
        assert!(same_key("arn:aws:kms:eu-west-1:1:key/abc", "abc"));
        assert!(same_key("abc", "abc"));
        assert!(!same_key("arn:aws:kms:eu-west-1:1:key/abc", "def"));
    }
}
