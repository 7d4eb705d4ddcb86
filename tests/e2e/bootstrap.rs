//! `tfenv bootstrap` on moto (DESIGN.md §13): from nothing to a bucket and lock table
//! with every protection, each checked through moto's own API (not through tfenv);
//! a second run that asks only; `deploy` against what it made; the TLS-only policy and
//! SSE-KMS over an HTTPS endpoint; versioning turned off and `--fix`; a stop half way
//! and the run that completes it; `--all` with shared buckets; confirmation by tier;
//! missing credentials.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::moto::{Canned, Encryption, Moto, ProxiedRequest, Request};
use crate::support::{Project, expecting, provider, stderr, stdout, stdout_json};

const BUCKET: &str = "tfstate-boot";
const TABLE: &str = "tf-locks-boot";

/// The demo with the provider's module on an `s3` backend, and `confs` as the backend
/// configs of its environments (dev, staging, production).
fn s3_project(confs: &[(&str, String)]) -> Project {
    let project = provider::demo();
    project.write(
        "examples/quickstart/main.tf",
        &provider::module_with_backend("s3"),
    );
    for (env, conf) in confs {
        project.write(&format!("environments/{env}.backend.conf"), conf);
    }
    project
}

fn state_key(env: &str) -> String {
    format!("{env}/terraform.tfstate")
}

fn tfenv(project: &Project, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = project.tfenv_real();
    cmd.args(args).timeout(Duration::from_secs(120));
    cmd
}

fn run(project: &Project, args: &[&str], code: i32) -> Output {
    expecting(tfenv(project, args).output().unwrap(), code)
}

/// The requests that change something: any S3 request but GET and HEAD, any DynamoDB
/// operation but DescribeTable.
fn writes(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| match &r.dynamodb_operation {
            Some(op) => op != "DescribeTable",
            None => !matches!(r.method.as_str(), "GET" | "HEAD"),
        })
        .map(|r| r.to_string())
        .collect()
}

/// How many CreateBucket requests (`PUT /<bucket>`, no query) named `bucket`.
fn create_bucket_requests(requests: &[Request], bucket: &str) -> usize {
    requests
        .iter()
        .filter(|r| {
            r.dynamodb_operation.is_none()
                && r.method == "PUT"
                && r.path.trim_end_matches('/') == format!("/{bucket}")
        })
        .count()
}

fn create_table_requests(requests: &[Request], table: &str) -> usize {
    requests
        .iter()
        .filter(|r| {
            r.dynamodb_operation.as_deref() == Some("CreateTable") && r.json()["TableName"] == table
        })
        .count()
}

/// Every protection bootstrap sets on a bucket behind a plain-HTTP endpoint, read back
/// from moto.
fn assert_protected(moto: &Moto, bucket: &str) {
    assert!(moto.bucket_exists(bucket), "`{bucket}` was not created");
    assert_eq!(
        moto.bucket_versioning(bucket).as_deref(),
        Some("Enabled"),
        "versioning of `{bucket}`"
    );
    assert_eq!(
        moto.bucket_encryption(bucket),
        Some(Encryption {
            algorithm: "AES256".into(),
            kms_key: None,
            bucket_key: false,
        }),
        "default encryption of `{bucket}`"
    );
    assert_eq!(
        moto.public_access_block(bucket),
        Some([true; 4]),
        "public access block of `{bucket}` (BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets)"
    );
}

fn assert_lock_table(moto: &Moto, table: &str) {
    let described = moto
        .table(table)
        .unwrap_or_else(|| panic!("the table `{table}` was not created"));
    assert_eq!(described.hash_key, "LockID", "{described:?}");
    assert_eq!(described.hash_key_type, "S", "{described:?}");
    assert_eq!(
        described.billing_mode.as_deref(),
        Some("PAY_PER_REQUEST"),
        "{described:?}"
    );
    assert_eq!(described.status.as_deref(), Some("ACTIVE"), "{described:?}");
}

#[test]
fn a_bootstrap_from_nothing_makes_a_protected_bucket_and_lock_table_that_deploy_then_locks_in() {
    let moto = Moto::start();
    let project = s3_project(&[("dev", moto.backend_conf(BUCKET, &state_key("dev"), TABLE))]);

    let output = run(&project, &["bootstrap", "dev", "--yes"], 0);
    let text = stdout(&output);
    assert_protected(&moto, BUCKET);
    assert_lock_table(&moto, TABLE);
    // Over plain HTTP the TLS-only policy would lock everyone out: left out, and said.
    assert_eq!(moto.bucket_policy(BUCKET), None);
    assert!(
        text.contains(&format!(
            "no policy denying requests without TLS: the endpoint `{}` is plain HTTP",
            moto.endpoint()
        )),
        "{text}"
    );
    assert!(
        text.contains("made 5 change(s)") && text.contains("next: tfenv deploy dev"),
        "{text}"
    );

    // Idempotent: the second run reads only.
    let (output, requests) =
        moto.requests_during(|| run(&project, &["bootstrap", "dev", "--yes"], 0));
    let text = stdout(&output);
    assert!(text.contains("nothing to do"), "{text}");
    assert!(
        text.contains(&format!(
            "S3 bucket `{BUCKET}` (dev): exists: versioning enabled, default encryption SSE-S3 (AES256), all public access blocked"
        )),
        "{text}"
    );
    assert!(!requests.is_empty(), "the second run asked moto nothing");
    assert_eq!(writes(&requests), Vec::<String>::new());

    // deploy works against it with no other step, and locks in the new table.
    let (_, requests) = moto.requests_during(|| run(&project, &["deploy", "dev", "--yes"], 0));
    assert!(provider::managed_file(&project, "dev").exists());
    assert!(moto.object_exists(BUCKET, &state_key("dev")));
    let lock_id = format!("{BUCKET}/{}", state_key("dev"));
    let on_table = |op: &str, field: &str| {
        requests.iter().any(|r| {
            r.dynamodb_operation.as_deref() == Some(op)
                && r.json()["TableName"] == TABLE
                && r.json()[field]["LockID"]["S"] == lock_id.as_str()
        })
    };
    let seen: Vec<String> = requests.iter().map(|r| r.to_string()).collect();
    assert!(
        on_table("PutItem", "Item"),
        "no lock taken in `{TABLE}`: {seen:#?}"
    );
    assert!(
        on_table("DeleteItem", "Key"),
        "the lock was not released: {seen:#?}"
    );
}

#[test]
fn over_https_bootstrap_sets_a_policy_denying_requests_without_tls_and_sse_kms_with_the_configured_key()
 {
    let moto = Moto::start_tls();
    let kms_bucket = "tfstate-boot-kms";
    let project = s3_project(&[
        ("dev", moto.backend_conf(BUCKET, &state_key("dev"), TABLE)),
        (
            "staging",
            format!(
                "{}kms_key_id = \"alias/tfenv-state\"\n",
                moto.backend_conf(kms_bucket, &state_key("staging"), TABLE)
            ),
        ),
    ]);
    let bootstrap = |env: &str| {
        let output = tfenv(&project, &["bootstrap", env, "--yes"])
            .env("SSL_CERT_FILE", moto.ca_file())
            .output()
            .unwrap();
        stdout(&expecting(output, 0))
    };

    let text = bootstrap("dev");
    assert!(!text.contains("no policy denying"), "{text}");
    assert!(
        text.contains("+ bucket policy denying requests without TLS"),
        "{text}"
    );
    let policy = moto.bucket_policy(BUCKET).expect("the bucket has a policy");
    let statements = policy["Statement"]
        .as_array()
        .expect("a list of statements");
    let deny = statements
        .iter()
        .find(|s| s["Effect"] == "Deny")
        .unwrap_or_else(|| panic!("no Deny statement: {policy:#}"));
    assert_eq!(deny["Principal"], "*", "{policy:#}");
    assert_eq!(deny["Action"], "s3:*", "{policy:#}");
    let mut resources: Vec<&str> = deny["Resource"]
        .as_array()
        .unwrap_or_else(|| panic!("{policy:#}"))
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    resources.sort();
    assert_eq!(
        resources,
        [
            format!("arn:aws:s3:::{BUCKET}"),
            format!("arn:aws:s3:::{BUCKET}/*")
        ]
    );
    assert_eq!(
        deny["Condition"]["Bool"]["aws:SecureTransport"], "false",
        "{policy:#}"
    );
    assert_eq!(
        moto.bucket_encryption(BUCKET).map(|e| e.algorithm),
        Some("AES256".to_string())
    );
    // The policy is found again by the next run.
    let text = bootstrap("dev");
    assert!(
        text.contains("a policy denying requests without TLS") && text.contains("nothing to do"),
        "{text}"
    );

    let text = bootstrap("staging");
    assert!(
        text.contains("+ default encryption SSE-KMS with `alias/tfenv-state`"),
        "{text}"
    );
    assert_eq!(
        moto.bucket_encryption(kms_bucket),
        Some(Encryption {
            algorithm: "aws:kms".into(),
            kms_key: Some("alias/tfenv-state".into()),
            bucket_key: true,
        })
    );
    assert_eq!(
        moto.bucket_versioning(kms_bucket).as_deref(),
        Some("Enabled")
    );
    assert_eq!(moto.public_access_block(kms_bucket), Some([true; 4]));
    assert!(moto.bucket_policy(kms_bucket).is_some());
    assert!(bootstrap("staging").contains("nothing to do"));
}

fn problems(json: &Value) -> Vec<(String, String)> {
    json["environments"][0]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("{json:#}"))
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_string(),
                p["fix"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn versioning_switched_off_is_a_status_problem_that_bootstrap_reports_and_only_fix_turns_back_on() {
    let moto = Moto::start();
    let project = s3_project(&[("dev", moto.backend_conf(BUCKET, &state_key("dev"), TABLE))]);
    run(&project, &["bootstrap", "dev", "--yes"], 0);
    run(&project, &["init", "dev"], 0);
    moto.set_versioning(BUCKET, false);

    let status =
        |code: i32| stdout_json(&run(&project, &["status", "dev", "--output", "json"], code));
    assert_eq!(
        problems(&status(6)),
        [(
            "versioning-off".to_string(),
            "tfenv bootstrap dev --fix".to_string()
        )]
    );

    // Without --fix: reported, marked, exit 6, and nothing written, even with --yes.
    for args in [&["bootstrap", "dev"][..], &["bootstrap", "dev", "--yes"]] {
        let (output, requests) = moto.requests_during(|| run(&project, args, 6));
        let text = stdout(&output);
        assert!(
            text.contains(
                "  ! turn versioning back on (now: versioning suspended): only with --fix"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "1 protection(s) set otherwise, marked `!` above: tfenv changes them only with --fix (`tfenv bootstrap dev --fix`)"
            ),
            "{text}"
        );
        assert_eq!(writes(&requests), Vec::<String>::new(), "{args:?}");
        assert_eq!(moto.bucket_versioning(BUCKET).as_deref(), Some("Suspended"));
    }

    let json = stdout_json(&run(
        &project,
        &["bootstrap", "dev", "--dry-run", "--output", "json"],
        6,
    ));
    assert_eq!(json["needs_fix"], 1, "{json:#}");
    let step = &json["resources"][0]["steps"][0];
    assert_eq!(step["kind"], "fix", "{json:#}");
    assert_eq!(step["found"], "versioning suspended", "{json:#}");
    assert_eq!(step["outcome"], "needs-fix", "{json:#}");

    let output = run(&project, &["bootstrap", "dev", "--fix", "--yes"], 0);
    let text = stdout(&output);
    assert!(
        text.contains("  ~ turn versioning back on (now: versioning suspended)")
            && text.contains("made 1 change(s)"),
        "{text}"
    );
    assert_eq!(moto.bucket_versioning(BUCKET).as_deref(), Some("Enabled"));
    let json = status(0);
    assert_eq!(problems(&json), Vec::<(String, String)>::new(), "{json:#}");
}

#[test]
fn a_bootstrap_stopped_half_way_says_what_was_made_and_what_was_not_and_the_next_run_completes_it()
{
    let moto = Moto::start();
    // Every read reaches moto, but CreateTable is refused as for credentials without
    // dynamodb:CreateTable: the bucket is made, the table is not.
    let proxy = moto.dynamodb_refusing("CreateTable");
    let conf = moto.backend_conf(BUCKET, &state_key("dev"), TABLE);
    let through_proxy = conf.replace(
        &format!("dynamodb = \"{}\"", moto.endpoint()),
        &format!("dynamodb = \"{}\"", proxy.endpoint()),
    );
    assert_ne!(conf, through_proxy);
    let project = s3_project(&[("dev", through_proxy)]);

    let output = run(&project, &["bootstrap", "dev", "--yes"], 1);
    let error = stderr(&output);
    let bucket = format!("S3 bucket `{BUCKET}`");
    let made = [
        "create the bucket in `us-east-1`",
        "turn on versioning",
        "default encryption SSE-S3 (AES256)",
        "block all public access (all four settings)",
    ]
    .map(|step| format!("{bucket}: {step}"))
    .join("; ");
    let table_step = format!(
        "DynamoDB table `{TABLE}`: create it with the hash key `LockID` (string), on-demand billing"
    );
    let text = stdout(&output);
    for said in [
        "bootstrap stopped:".to_string(),
        format!("  failed: {table_step}"),
        "what was made stays; fix the cause (below), then run `tfenv bootstrap dev` again: it checks what exists and makes the rest".to_string(),
    ]
    .into_iter()
    .chain(made.split("; ").map(|step| format!("  made: {step}")))
    {
        assert!(text.contains(&said), "missing {said:?} in:\n{text}");
    }
    for said in [
        format!("bootstrap stopped at {table_step}: permission denied"),
        "dynamodb:CreateTable".to_string(),
    ] {
        assert!(error.contains(&said), "missing {said:?} in:\n{error}");
    }
    assert!(
        !stdout(&output).contains("made 4 change(s)"),
        "{}",
        stdout(&output)
    );
    assert_protected(&moto, BUCKET);
    assert_eq!(moto.table(TABLE), None);

    // The endpoint fixed: only the table is left to make.
    project.write(
        "environments/dev.backend.conf",
        &moto.backend_conf(BUCKET, &state_key("dev"), TABLE),
    );
    let (output, requests) =
        moto.requests_during(|| run(&project, &["bootstrap", "dev", "--yes"], 0));
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "{bucket} (dev): exists: versioning enabled, default encryption SSE-S3 (AES256), all public access blocked"
        )) && text.contains("  + create it with the hash key `LockID`")
            && text.contains("made 1 change(s)"),
        "{text}"
    );
    assert_eq!(create_bucket_requests(&requests, BUCKET), 0);
    assert_eq!(create_table_requests(&requests, TABLE), 1);
    let writes = writes(&requests);
    assert!(
        writes.iter().all(|w| w.starts_with("DynamoDB CreateTable")),
        "{writes:#?}"
    );
    assert_lock_table(&moto, TABLE);
}

#[test]
fn a_bucket_made_by_hand_without_protection_is_completed_by_a_plain_bootstrap() {
    let moto = Moto::start();
    moto.create_bucket_without_versioning(BUCKET);
    moto.create_lock_table(TABLE);
    let project = s3_project(&[("dev", moto.backend_conf(BUCKET, &state_key("dev"), TABLE))]);
    let (output, requests) =
        moto.requests_during(|| run(&project, &["bootstrap", "dev", "--yes"], 0));
    let text = stdout(&output);
    assert!(text.contains("  + turn on versioning"), "{text}");
    assert!(!text.contains("  ! "), "{text}");
    assert_eq!(create_bucket_requests(&requests, BUCKET), 0);
    assert_eq!(create_table_requests(&requests, TABLE), 0);
    assert_protected(&moto, BUCKET);
    assert!(
        run(&project, &["bootstrap", "dev"], 0).stdout.starts_with(
            format!("S3 bucket `{BUCKET}` (dev): exists: versioning enabled").as_bytes()
        )
    );
}

#[test]
fn bootstrap_all_makes_each_shared_bucket_and_table_once_and_production_needs_its_confirmation_before_anything()
 {
    let moto = Moto::start();
    let shared = "tfstate-shared";
    let own = "tfstate-production";
    let project = s3_project(&[
        ("dev", moto.backend_conf(shared, &state_key("dev"), TABLE)),
        (
            "staging",
            moto.backend_conf(shared, &state_key("staging"), TABLE),
        ),
        (
            "production",
            moto.backend_conf(own, &state_key("production"), TABLE),
        ),
    ]);
    // The same project without production.
    let toml = project.read("tfenv.toml");
    let without_production = &toml[..toml.find("[environments.production]").unwrap()];
    project.write("no-production.toml", without_production);

    let (output, requests) = moto.requests_during(|| {
        run(
            &project,
            &[
                "--config",
                "no-production.toml",
                "bootstrap",
                "--all",
                "--yes",
            ],
            0,
        )
    });
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "S3 bucket `{shared}` (dev, staging): does not exist"
        )) && text.contains(&format!(
            "DynamoDB table `{TABLE}` (dev, staging): does not exist"
        )),
        "{text}"
    );
    assert_eq!(create_bucket_requests(&requests, shared), 1);
    assert_eq!(create_table_requests(&requests, TABLE), 1);
    assert_protected(&moto, shared);
    assert_lock_table(&moto, TABLE);

    // With production: --yes alone is refused before anything is made.
    let (output, requests) =
        moto.requests_during(|| run(&project, &["bootstrap", "--all", "--yes"], 5));
    let error = stderr(&output);
    assert!(error.contains("production"), "{error}");
    assert!(error.contains("--confirm production"), "{error}");
    assert_eq!(writes(&requests), Vec::<String>::new());
    assert!(!moto.bucket_exists(own));

    let (_, requests) = moto.requests_during(|| {
        run(
            &project,
            &["bootstrap", "--all", "--yes", "--confirm", "production"],
            0,
        )
    });
    assert_eq!(create_bucket_requests(&requests, own), 1);
    assert_eq!(create_bucket_requests(&requests, shared), 0);
    assert_eq!(create_table_requests(&requests, TABLE), 0);
    assert_protected(&moto, own);

    // Then all three deploy into their keys.
    for env in ["dev", "staging"] {
        run(&project, &["deploy", env, "--yes"], 0);
        assert!(moto.object_exists(shared, &state_key(env)));
    }
}

#[test]
fn bootstrap_without_credentials_says_so_names_how_to_set_them_and_creates_nothing() {
    let moto = Moto::start();
    let conf: String = moto
        .backend_conf(BUCKET, &state_key("dev"), TABLE)
        .lines()
        .filter(|l| !l.starts_with("access_key") && !l.starts_with("secret_key"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(conf.contains("skip_metadata_api_check     = true"));
    let project = s3_project(&[("dev", conf)]);
    let home = tempfile::tempdir().unwrap();
    let mut cmd = tfenv(&project, &["bootstrap", "dev", "--yes", "--timeout", "10s"]);
    cmd.env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        cmd.env_remove(name);
    }
    let (output, requests) = moto.requests_during(|| {
        let started = Instant::now();
        let output = expecting(cmd.output().unwrap(), 1);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "it waited for credentials"
        );
        output
    });
    let error = stderr(&output);
    for said in [
        "no usable AWS credentials",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "`profile` in the backend config",
        "~/.aws/credentials",
    ] {
        assert!(error.contains(said), "missing {said:?} in:\n{error}");
    }
    assert_eq!(writes(&requests), Vec::<String>::new());
    assert!(!moto.bucket_exists(BUCKET));
    assert_eq!(moto.table(TABLE), None);
}

#[test]
fn a_dry_run_lists_every_step_and_creates_nothing() {
    let moto = Moto::start();
    let project = s3_project(&[("dev", moto.backend_conf(BUCKET, &state_key("dev"), TABLE))]);
    let (output, requests) =
        moto.requests_during(|| run(&project, &["bootstrap", "dev", "--dry-run"], 0));
    let text = stdout(&output);
    for line in [
        format!("S3 bucket `{BUCKET}` (dev): does not exist"),
        "  + create the bucket in `us-east-1`".to_string(),
        "  + turn on versioning".to_string(),
        "  + default encryption SSE-S3 (AES256)".to_string(),
        "  + block all public access (all four settings)".to_string(),
        format!("DynamoDB table `{TABLE}` (dev): does not exist"),
        "  + create it with the hash key `LockID` (string), on-demand billing".to_string(),
        "dry run: nothing was changed".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert_eq!(writes(&requests), Vec::<String>::new());
    assert!(!moto.bucket_exists(BUCKET));
    assert_eq!(moto.table(TABLE), None);

    let json = stdout_json(&run(
        &project,
        &["bootstrap", "dev", "--dry-run", "--output", "json"],
        0,
    ));
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["changed"], 0);
    let outcomes: Vec<&Value> = json["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["steps"].as_array().unwrap())
        .map(|s| &s["outcome"])
        .collect();
    assert_eq!(outcomes.len(), 5, "{json:#}");
    assert!(outcomes.iter().all(|o| *o == "planned"), "{json:#}");
    assert!(!moto.bucket_exists(BUCKET));
}

#[test]
fn production_without_confirm_is_refused_and_creates_nothing() {
    let moto = Moto::start();
    let project = s3_project(&[(
        "production",
        moto.backend_conf(BUCKET, &state_key("production"), TABLE),
    )]);
    for args in [
        &["bootstrap", "production"][..],
        &["bootstrap", "production", "--yes"],
        &["bootstrap", "production", "--yes", "--confirm", "prod"],
    ] {
        let (output, requests) = moto.requests_during(|| run(&project, args, 5));
        assert!(
            stderr(&output).contains("production"),
            "{}",
            stderr(&output)
        );
        assert_eq!(writes(&requests), Vec::<String>::new(), "{args:?}");
    }
    assert!(!moto.bucket_exists(BUCKET));
    assert_eq!(moto.table(TABLE), None);
}

/// terraform refuses a backend whose credentials are in an account `allowed_account_ids`
/// does not list (or `forbidden_account_ids` does): bootstrap asks STS first and creates
/// nothing in such an account. moto's account is 123456789012.
#[test]
fn an_account_the_backend_config_does_not_allow_gets_nothing_created() {
    let moto = Moto::start();
    let conf = |line: &str| {
        moto.backend_conf(BUCKET, &state_key("dev"), TABLE).replace(
            "dynamodb = \"",
            &format!("sts = \"{}\", dynamodb = \"", moto.endpoint()),
        ) + line
            + "\n"
    };
    let project = s3_project(&[("dev", conf("allowed_account_ids = [\"999999999999\"]"))]);
    let error = stderr(&run(&project, &["bootstrap", "dev", "--yes"], 5));
    assert!(
        error.contains("the credentials are in the AWS account `123456789012`, which is not in the backend config's `allowed_account_ids`"),
        "{error}"
    );
    assert!(!moto.bucket_exists(BUCKET));
    assert_eq!(moto.table(TABLE), None);

    project.write(
        "environments/dev.backend.conf",
        &conf("forbidden_account_ids = [\"123456789012\"]"),
    );
    let error = stderr(&run(&project, &["bootstrap", "dev", "--yes"], 5));
    assert!(
        error.contains("is in the backend config's `forbidden_account_ids`"),
        "{error}"
    );
    assert!(!moto.bucket_exists(BUCKET));

    project.write(
        "environments/dev.backend.conf",
        &conf("allowed_account_ids = [\"123456789012\"]"),
    );
    run(&project, &["bootstrap", "dev", "--yes"], 0);
    assert_protected(&moto, BUCKET);
}

/// A bucket production shares is production's too: `bootstrap dev` on it needs
/// production's confirmation, and the plan says who else uses it.
#[test]
fn bootstrap_of_dev_on_a_bucket_production_shares_needs_productions_confirmation() {
    let moto = Moto::start();
    let project = s3_project(&[
        ("dev", moto.backend_conf(BUCKET, &state_key("dev"), TABLE)),
        (
            "staging",
            moto.backend_conf("tfstate-staging", &state_key("staging"), TABLE),
        ),
        (
            "production",
            moto.backend_conf(BUCKET, &state_key("production"), TABLE),
        ),
    ]);
    let (output, requests) =
        moto.requests_during(|| run(&project, &["bootstrap", "dev", "--yes"], 5));
    assert!(
        stdout(&output).contains(&format!(
            "S3 bucket `{BUCKET}` (dev; also used by production): does not exist"
        )),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("--yes --confirm production"),
        "{}",
        stderr(&output)
    );
    assert_eq!(writes(&requests), Vec::<String>::new());
    assert!(!moto.bucket_exists(BUCKET));

    run(
        &project,
        &["bootstrap", "dev", "--yes", "--confirm", "production"],
        0,
    );
    assert_protected(&moto, BUCKET);
}

/// One bucket has one region: an environment naming it in another than the one being
/// bootstrapped is an error naming both, before any call.
#[test]
fn another_environment_naming_the_bucket_in_another_region_is_an_error_before_any_call() {
    let moto = Moto::start();
    let project = s3_project(&[
        ("dev", moto.backend_conf(BUCKET, &state_key("dev"), TABLE)),
        (
            "staging",
            moto.backend_conf(BUCKET, &state_key("staging"), TABLE)
                .replace("us-east-1", "eu-west-1"),
        ),
        (
            "production",
            moto.backend_conf("tfstate-prod", &state_key("production"), TABLE),
        ),
    ]);
    let (output, requests) =
        moto.requests_during(|| run(&project, &["bootstrap", "dev", "--dry-run"], 1));
    let error = stderr(&output);
    assert!(
        error.contains(&format!(
            "`dev` and `staging` name the same S3 bucket `{BUCKET}` made differently: region `us-east-1`, SSE-S3 for `dev`; region `eu-west-1`, SSE-S3 for `staging`"
        )),
        "{error}"
    );
    assert!(requests.is_empty(), "{requests:?}");
}

/// `--confirm` names one environment: two production environments with changes are
/// refused before anything is made, saying to take them one at a time.
#[test]
fn two_production_environments_are_bootstrapped_one_at_a_time() {
    let moto = Moto::start();
    let project = s3_project(&[
        (
            "dev",
            moto.backend_conf("tfstate-dev", &state_key("dev"), TABLE),
        ),
        (
            "staging",
            moto.backend_conf("tfstate-staging", &state_key("staging"), TABLE),
        ),
        (
            "production",
            moto.backend_conf(BUCKET, &state_key("production"), TABLE),
        ),
    ]);
    project.write(
        "environments/live2.backend.conf",
        &moto.backend_conf("tfstate-live2", &state_key("live2"), TABLE),
    );
    let toml = project.read("tfenv.toml");
    project.write(
        "tfenv.toml",
        &format!(
            "{toml}\n[environments.live2]\ntier = \"production\"\nbackend_config = \"environments/live2.backend.conf\"\nvar_files = [\"environments/common.tfvars\", \"environments/production.tfvars\"]\n"
        ),
    );
    let (output, requests) = moto.requests_during(|| {
        run(
            &project,
            &["bootstrap", "--all", "--yes", "--confirm", "production"],
            5,
        )
    });
    let error = stderr(&output);
    assert!(
        error.contains(
            "this run changes the backends of 2 production environments (`production`, `live2`)"
        ) && error.contains("tfenv bootstrap production --yes --confirm production"),
        "{error}"
    );
    assert_eq!(writes(&requests), Vec::<String>::new());
    run(
        &project,
        &[
            "bootstrap",
            "production",
            "--yes",
            "--confirm",
            "production",
        ],
        0,
    );
    assert_protected(&moto, BUCKET);
}

/// An endpoint the shared config file names (`endpoint_url`) is the one the SDK and
/// terraform use: plain http there gets no TLS-only policy either.
#[test]
fn a_plain_http_endpoint_from_the_shared_config_file_gets_no_tls_only_policy() {
    let moto = Moto::start();
    let conf = moto
        .backend_conf(BUCKET, &state_key("dev"), TABLE)
        .lines()
        .filter(|l| !l.starts_with("endpoints"))
        .collect::<Vec<_>>()
        .join("\n");
    let project = s3_project(&[("dev", conf)]);
    project.write(
        "aws-config",
        &format!(
            "[default]\nregion = us-east-1\nendpoint_url = {}\n",
            moto.endpoint()
        ),
    );
    let output = tfenv(&project, &["bootstrap", "dev", "--yes"])
        .env("AWS_CONFIG_FILE", project.join("aws-config"))
        .output()
        .unwrap();
    let text = stdout(&expecting(output, 0));
    assert!(
        text.contains("no policy denying requests without TLS: the endpoint"),
        "{text}"
    );
    assert_eq!(moto.bucket_policy(BUCKET), None);
}

/// A lock table never created: `status` names bootstrap as the fix.
#[test]
fn a_missing_lock_table_is_a_status_problem_whose_fix_is_bootstrap() {
    let moto = Moto::start();
    let project = s3_project(&[("dev", moto.backend_conf(BUCKET, &state_key("dev"), TABLE))]);
    moto.create_bucket(BUCKET);
    let output = tfenv(&project, &["status", "dev", "--output", "json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&expecting(output, 6).stdout).unwrap();
    let problems = json["environments"][0]["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["code"] == "lock-unreadable" && p["fix"] == "tfenv bootstrap dev"),
        "{json:#}"
    );
}

#[test]
fn staging_answered_no_at_the_prompt_is_refused_and_creates_nothing() {
    use rexpect::process::WaitStatus;

    let moto = Moto::start();
    let project = s3_project(&[(
        "staging",
        moto.backend_conf(BUCKET, &state_key("staging"), TABLE),
    )]);
    let mut cmd = project.command();
    cmd.env("TERM", "xterm")
        .env_remove("CI")
        .arg("--terraform")
        .arg(crate::support::terraform())
        .args(["bootstrap", "staging"]);
    let mut session =
        rexpect::session::spawn_command(cmd, Some(30_000)).expect("tfenv in a pseudo-terminal");
    let prompt = "Create or change the state backend of staging environment `staging`? Type `yes` to continue";
    let before = session
        .exp_string(prompt)
        .unwrap_or_else(|err| panic!("no prompt {prompt:?}: {err}"));
    assert!(
        before.contains("+ create the bucket in `us-east-1`"),
        "{before}"
    );
    session.send_line("no").unwrap();
    let rest = session.exp_eof().expect("tfenv ends after the answer");
    assert!(
        rest.contains("confirmation not given (answered `no`)"),
        "{rest}"
    );
    let started = Instant::now();
    let code = loop {
        match session.process().status() {
            Some(WaitStatus::Exited(_, code)) => break code,
            Some(WaitStatus::StillAlive) if started.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => panic!("tfenv did not exit normally: {other:?}\n{rest}"),
        }
    };
    assert_eq!(code, 5, "{rest}");
    assert!(!moto.bucket_exists(BUCKET));
    assert_eq!(moto.table(TABLE), None);
}

#[test]
fn a_bucket_outside_us_east_1_is_created_in_its_region_and_use_lockfile_needs_no_table() {
    let moto = Moto::start();
    let conf = moto
        .backend_conf(BUCKET, &state_key("dev"), TABLE)
        .replace("region         = \"us-east-1\"", "region = \"eu-west-1\"")
        .replace(
            &format!("dynamodb_table = \"{TABLE}\""),
            "use_lockfile = true",
        );
    assert!(conf.contains("eu-west-1") && conf.contains("use_lockfile"));
    let project = s3_project(&[("dev", conf)]);
    let (output, requests) =
        moto.requests_during(|| run(&project, &["bootstrap", "dev", "--yes"], 0));
    let text = stdout(&output);
    assert!(
        text.contains("  + create the bucket in `eu-west-1`"),
        "{text}"
    );
    assert!(!text.contains("DynamoDB"), "{text}");
    assert!(
        requests.iter().all(|r| r.dynamodb_operation.is_none()),
        "{requests:#?}"
    );
    assert_eq!(moto.bucket_location(BUCKET).as_deref(), Some("eu-west-1"));
    assert_protected(&moto, BUCKET);
    assert!(stdout(&run(&project, &["bootstrap", "dev"], 0)).contains("nothing to do"));
    run(&project, &["deploy", "dev", "--yes"], 0);
    assert!(moto.object_exists(BUCKET, &state_key("dev")));
}

/// `conf` with its S3 endpoint replaced by `endpoint`.
fn s3_through(moto: &Moto, conf: &str, endpoint: &str) -> String {
    let through = conf.replace(
        &format!("s3 = \"{}\"", moto.endpoint()),
        &format!("s3 = \"{endpoint}\""),
    );
    assert_ne!(through, conf);
    through
}

fn is_bucket(request: &ProxiedRequest, method: &str, bucket: &str) -> bool {
    request.method == method && request.path.trim_end_matches('/') == format!("/{bucket}")
}

#[test]
fn a_bucket_that_answers_403_is_someone_elses_an_error_that_never_says_created() {
    let moto = Moto::start();
    let proxy =
        moto.proxy(|request| is_bucket(request, "HEAD", BUCKET).then(|| Canned::new(403, &[], "")));
    let conf = moto.backend_conf(BUCKET, &state_key("dev"), TABLE);
    let project = s3_project(&[("dev", s3_through(&moto, &conf, &proxy.endpoint()))]);
    let output = run(&project, &["bootstrap", "dev", "--yes"], 1);
    let error = stderr(&output);
    assert!(
        error.contains(&format!(
            "the S3 bucket `{BUCKET}` exists, but these credentials may not use it (403): it belongs to another account, or a policy denies them"
        )) && error.contains("bucket names are global across all AWS accounts"),
        "{error}"
    );
    assert!(!stdout(&output).contains("made"), "{}", stdout(&output));
    assert!(!moto.bucket_exists(BUCKET));
    assert_eq!(moto.table(TABLE), None);
}

#[test]
fn a_bucket_name_taken_by_another_account_is_refused_saying_so_and_nothing_after_it_is_made() {
    let moto = Moto::start();
    // As AWS answers a name another account owns: not found for HEAD (no access), and
    // BucketAlreadyExists for CreateBucket.
    let proxy = moto.proxy(|request| {
        if is_bucket(request, "HEAD", BUCKET) {
            Some(Canned::new(404, &[], ""))
        } else if is_bucket(request, "PUT", BUCKET) {
            Some(Canned::new(
                409,
                &[("Content-Type", "application/xml")],
                &format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>BucketAlreadyExists</Code><Message>The requested bucket name is not available.</Message><BucketName>{BUCKET}</BucketName></Error>"
                ),
            ))
        } else {
            None
        }
    });
    let conf = moto.backend_conf(BUCKET, &state_key("dev"), TABLE);
    let project = s3_project(&[("dev", s3_through(&moto, &conf, &proxy.endpoint()))]);
    let output = run(&project, &["bootstrap", "dev", "--yes"], 1);
    let error = stderr(&output);
    for said in [
        format!("the name is taken: another AWS account owns a bucket named `{BUCKET}`"),
        "choose another `bucket` name in the backend config".to_string(),
    ] {
        assert!(error.contains(&said), "missing {said:?} in:\n{error}");
    }
    let text = stdout(&output);
    for said in [
        format!("  failed: S3 bucket `{BUCKET}`: create the bucket in `us-east-1`"),
        format!("  not made: S3 bucket `{BUCKET}`: turn on versioning"),
        format!("  not made: DynamoDB table `{TABLE}`: create it"),
        "fix the cause (below), then run `tfenv bootstrap dev` again".to_string(),
    ] {
        assert!(text.contains(&said), "missing {said:?} in:\n{text}");
    }
    // Nothing was made, and no line says so.
    assert!(!text.contains("  made: "), "{text}");
    assert_eq!(moto.table(TABLE), None);
}

#[test]
fn an_unreachable_lock_table_endpoint_stops_the_run_before_anything_is_made() {
    let moto = Moto::start();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let closed = format!("http://127.0.0.1:{closed}");
    let conf = moto.backend_conf(BUCKET, &state_key("dev"), TABLE).replace(
        &format!("dynamodb = \"{}\"", moto.endpoint()),
        &format!("dynamodb = \"{closed}\""),
    );
    let project = s3_project(&[("dev", conf)]);
    let started = Instant::now();
    let output = run(
        &project,
        &["bootstrap", "dev", "--yes", "--timeout", "3s"],
        1,
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let error = stderr(&output);
    assert!(
        error.contains(&format!(
            "checking DynamoDB table `{TABLE}`: looking for the DynamoDB table `{TABLE}`: DynamoDB at `{closed}` did not answer"
        )),
        "{error}"
    );
    // Every read comes before the first change: the bucket was not made either.
    assert!(!moto.bucket_exists(BUCKET));
}

#[test]
fn a_lock_table_still_being_created_at_the_deadline_is_said_as_created_not_as_unanswered() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let moto = Moto::start();
    // CreateTable reaches moto; every DescribeTable after it says CREATING, as AWS does
    // for a while after a CreateTable.
    let created = Arc::new(AtomicBool::new(false));
    let seen = created.clone();
    let proxy = moto.proxy(move |request| {
        let op = request.header("x-amz-target")?;
        if op.ends_with(".CreateTable") {
            seen.store(true, Ordering::SeqCst);
            return None;
        }
        (op.ends_with(".DescribeTable") && seen.load(Ordering::SeqCst)).then(|| {
            Canned::new(
                200,
                &[("Content-Type", "application/x-amz-json-1.0")],
                &format!(
                    r#"{{"Table":{{"TableName":"{TABLE}","TableStatus":"CREATING","KeySchema":[{{"AttributeName":"LockID","KeyType":"HASH"}}],"AttributeDefinitions":[{{"AttributeName":"LockID","AttributeType":"S"}}],"BillingModeSummary":{{"BillingMode":"PAY_PER_REQUEST"}}}}}}"#
                ),
            )
        })
    });
    let conf = moto.backend_conf(BUCKET, &state_key("dev"), TABLE).replace(
        &format!("dynamodb = \"{}\"", moto.endpoint()),
        &format!("dynamodb = \"{}\"", proxy.endpoint()),
    );
    let project = s3_project(&[("dev", conf)]);
    let output = run(
        &project,
        &["bootstrap", "dev", "--yes", "--timeout", "2s"],
        1,
    );
    let error = stderr(&output);
    assert!(created.load(Ordering::SeqCst));
    assert!(
        error.contains(&format!(
            "the DynamoDB table `{TABLE}` was created, but it is still `CREATING` after 2s (--timeout): terraform cannot lock in it until it is ACTIVE"
        )) && error.contains("run `tfenv bootstrap` again in a minute"),
        "{error}"
    );
    assert!(!error.contains("did not answer"), "{error}");
    assert_protected(&moto, BUCKET);
}

#[test]
fn an_existing_table_terraform_cannot_lock_in_is_an_error_and_is_left_as_it_is() {
    let moto = Moto::start();
    moto.create_table_keyed(TABLE, "id");
    let project = s3_project(&[("dev", moto.backend_conf(BUCKET, &state_key("dev"), TABLE))]);
    let (output, requests) =
        moto.requests_during(|| run(&project, &["bootstrap", "dev", "--yes"], 1));
    let error = stderr(&output);
    assert!(
        error.contains(&format!(
            "the DynamoDB table `{TABLE}` exists, but its hash key is `id` (S), and terraform locks in a table whose hash key is `LockID`"
        )) && error.contains("name another table in the backend config's `dynamodb_table`"),
        "{error}"
    );
    // Found while reading: nothing was made, the bucket neither.
    assert_eq!(writes(&requests), Vec::<String>::new());
    assert!(!moto.bucket_exists(BUCKET));
    assert_eq!(moto.table(TABLE).unwrap().hash_key, "id");
}

#[test]
fn a_bucket_policy_of_their_own_gains_the_tls_statement_only_with_fix_and_keeps_theirs() {
    let moto = Moto::start_tls();
    moto.create_bucket(BUCKET);
    let theirs = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "Theirs",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{BUCKET}/*")
        }]
    });
    moto.put_bucket_policy(BUCKET, &theirs);
    let project = s3_project(&[("dev", moto.backend_conf(BUCKET, &state_key("dev"), TABLE))]);
    let bootstrap = |args: &[&str], code: i32| {
        let output = tfenv(&project, args)
            .env("SSL_CERT_FILE", moto.ca_file())
            .output()
            .unwrap();
        stdout(&expecting(output, code))
    };

    // The protections never set are completed; their policy is only reported.
    let text = bootstrap(&["bootstrap", "dev", "--yes"], 6);
    assert!(
        text.contains(
            "  ! add a statement denying requests without TLS to the bucket policy (its other statements are kept) (now: a bucket policy without a statement denying requests without TLS): only with --fix"
        ),
        "{text}"
    );
    assert_eq!(moto.bucket_policy(BUCKET), Some(theirs.clone()));
    assert_eq!(moto.public_access_block(BUCKET), Some([true; 4]));

    let text = bootstrap(&["bootstrap", "dev", "--fix", "--yes"], 0);
    assert!(text.contains("made 1 change(s)"), "{text}");
    let policy = moto.bucket_policy(BUCKET).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{policy:#}");
    assert_eq!(statements[0], theirs["Statement"][0], "{policy:#}");
    assert_eq!(statements[1]["Sid"], "DenyInsecureTransport", "{policy:#}");
    assert_eq!(
        statements[1]["Condition"]["Bool"]["aws:SecureTransport"], "false",
        "{policy:#}"
    );
    assert!(bootstrap(&["bootstrap", "dev"], 0).contains("nothing to do"));
}
