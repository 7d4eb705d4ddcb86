//! The s3 backend through the AWS SDK for Rust, on a moto server, with NO `aws` on
//! tfenv's PATH (only terraform and git): `status` reads every state straight from S3
//! (`state_source: "s3"`, initialized or not) and every lock from DynamoDB or the
//! `.tflock` object; credentials come from the backend config, a profile of a shared
//! credentials file, or the environment; refused credentials are the `auth` problem
//! and an endpoint nobody listens on is `unreachable`, both quickly; Terraform 1.0.3's
//! pre-1.6 setting names read the same state; and deploy, backup, restore, lock and
//! unlock work without the aws CLI.
//!
//! Buckets, tables and state objects are set up with the Moto helpers and the SDK.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Value, json};

use crate::support::moto::Moto;
use crate::support::running::RunningTfenv;
use crate::support::{self, Project, expecting, output_text as text, stderr, stdout_json};

const BUCKET: &str = "tfstate-sdk";
const TABLE: &str = "tf-locks-sdk";
/// How long a read refused or not answered may take (the default --timeout is 30 s).
const QUICKLY: Duration = Duration::from_secs(15);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// A `terraform_data`, replaced whenever `n` changes, whose creation runs `sleep_bin sleep` (the slow apply that holds the
/// state lock), with an output to restore and compare.
const MAIN_TF: &str = r#"terraform {
  backend "s3" {}
}

variable "n" {
  type = number
}

variable "sleep" {
  type    = number
  default = 0
}

variable "sleep_bin" {
  type = string
}

resource "terraform_data" "slow" {
  input            = var.n
  triggers_replace = var.n

  provisioner "local-exec" {
    command = "${var.sleep_bin} ${var.sleep}"
  }
}

output "n" {
  value = var.n
}
"#;

/// How an s3 backend locks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Locking {
    DynamoDb,
    Lockfile,
}

/// An s3 backend config for Terraform >= 1.6 against `moto`, with the test keys.
fn conf(moto: &Moto, key: &str, locking: Locking) -> String {
    let conf = moto.backend_conf(BUCKET, key, TABLE);
    match locking {
        Locking::DynamoDb => conf,
        Locking::Lockfile => conf.replace(
            &format!("dynamodb_table = \"{TABLE}\""),
            "use_lockfile   = true",
        ),
    }
}

/// A folder holding only terraform and git, for tfenv's PATH: no `aws` (nor anything else).
fn tools_path(project: &Project) -> String {
    let dir = project.join("tools");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(support::terraform(), dir.join("terraform")).unwrap();
    let git = which::which("git").expect("git is needed for these tests: install git");
    std::os::unix::fs::symlink(git, dir.join("git")).unwrap();
    assert!(
        which::which_in("aws", Some(&dir), project.path()).is_err(),
        "no aws on tfenv's PATH"
    );
    dir.display().to_string()
}

/// tfenv in `project` with `path` as its whole PATH and none of the host's AWS settings:
/// no keys, no profile, shared files that do not exist.
fn tfenv(project: &Project, path: &str, terraform: &std::path::Path) -> Command {
    let mut cmd = project.command();
    cmd.env("PATH", path)
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            project.join("no-aws-credentials"),
        )
        .env("AWS_CONFIG_FILE", project.join("no-aws-config"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ROLE_ARN")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .arg("--terraform")
        .arg(terraform);
    cmd
}

/// Runs `cmd` to its end (within two minutes).
fn run(cmd: Command) -> Output {
    assert_cmd::Command::from_std(cmd)
        .timeout(COMMAND_TIMEOUT)
        .output()
        .unwrap()
}

fn sleep_bin() -> String {
    which::which("sleep").unwrap().display().to_string()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An S3 client for `moto` with the given keys.
fn s3_client(moto: &Moto, access: &str, secret: &str) -> aws_sdk_s3::Client {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto.endpoint())
        .force_path_style(true)
        .credentials_provider(Credentials::new(access, secret, None, None, "test"))
        .http_client(http)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn get_object(moto: &Moto, key: &str) -> Vec<u8> {
    let client = s3_client(moto, "test", "test");
    runtime().block_on(async {
        let reply = client
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|err| panic!("reading s3://{BUCKET}/{key}: {err:?}"));
        reply.body.collect().await.unwrap().into_bytes().to_vec()
    })
}

fn put_object(moto: &Moto, key: &str, bytes: Vec<u8>) {
    let client = s3_client(moto, "test", "test");
    runtime().block_on(async {
        client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .unwrap_or_else(|err| panic!("writing s3://{BUCKET}/{key}: {err:?}"));
    });
}

/// A small state as terraform writes it.
fn state_json(serial: u64, lineage: &str) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "version": 4, "terraform_version": "1.11.4", "serial": serial, "lineage": lineage,
        "outputs": {}, "resources": [
            {"mode": "managed", "type": "terraform_data", "name": "slow", "provider": "provider[\"terraform.io/builtin/terraform\"]",
             "instances": [{"schema_version": 0, "attributes": {"id": "x"}}]}
        ], "check_results": null
    }))
    .unwrap()
}

/// The state key of an environment (`<env>/terraform.tfstate`) in `workspace`.
fn state_key(env: &str, workspace: Option<&str>) -> String {
    match workspace {
        None => format!("{env}/terraform.tfstate"),
        Some(ws) => format!("env:/{ws}/{env}/terraform.tfstate"),
    }
}

fn problem_codes(env: &Value) -> Vec<String> {
    env["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn status_of_twenty_s3_environments_reads_every_state_and_lock_through_the_sdk_without_aws() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = Project::empty();
    let path = tools_path(&project);
    project.write("main.tf", MAIN_TF);

    struct Env {
        name: String,
        locking: Locking,
        workspace: Option<String>,
    }
    let envs: Vec<Env> = (1..=20)
        .map(|i| Env {
            name: format!("e{i:02}"),
            locking: if i % 2 == 0 {
                Locking::DynamoDb
            } else {
                Locking::Lockfile
            },
            workspace: (i % 3 == 0).then(|| format!("ws{i}")),
        })
        .collect();
    let mut toml = String::new();
    for env in &envs {
        toml.push_str(&format!(
            "[environments.{0}]\nbackend_config = \"environments/{0}.backend.conf\"\nvar_files = [\"environments/{0}.tfvars\"]\n",
            env.name
        ));
        if let Some(ws) = &env.workspace {
            toml.push_str(&format!("workspace = \"{ws}\"\n"));
        }
        toml.push('\n');
        project.write(
            &format!("environments/{}.backend.conf", env.name),
            &conf(
                &moto,
                &format!("{}/terraform.tfstate", env.name),
                env.locking,
            ),
        );
        project.write(
            &format!("environments/{}.tfvars", env.name),
            &format!("n = 1\nsleep_bin = \"{}\"\n", sleep_bin()),
        );
    }
    project.write("tfenv.toml", &toml);

    // Deployed for real: each kind of locking, in the default and in a workspace.
    let deployed = ["e01", "e02", "e03", "e06"];
    for name in deployed {
        let mut cmd = tfenv(&project, &path, &support::terraform());
        cmd.args(["deploy", name, "--yes"]);
        expecting(run(cmd), 0);
    }
    // The others: copies of a real state, each its own serial and lineage.
    let template: Value = serde_json::from_slice(&get_object(&moto, "e01/terraform.tfstate"))
        .expect("e01's state is JSON");
    let mut expected: Vec<(u64, String)> = Vec::new();
    for (i, env) in envs.iter().enumerate() {
        let key = state_key(&env.name, env.workspace.as_deref());
        if deployed.contains(&env.name.as_str()) {
            let state: Value = serde_json::from_slice(&get_object(&moto, &key)).unwrap();
            expected.push((
                state["serial"].as_u64().unwrap(),
                state["lineage"].as_str().unwrap().to_string(),
            ));
            continue;
        }
        let mut copy = template.clone();
        let serial = 100 + i as u64;
        let lineage = format!("lineage-{}", env.name);
        copy["serial"] = json!(serial);
        copy["lineage"] = json!(lineage);
        put_object(&moto, &key, serde_json::to_vec_pretty(&copy).unwrap());
        expected.push((serial, lineage));
    }

    // e02 (DynamoDB) locked by a running apply.
    project.write(
        "environments/e02.tfvars",
        &format!("n = 2\nsleep = 90\nsleep_bin = \"{}\"\n", sleep_bin()),
    );
    let mut cmd = tfenv(&project, &path, &support::terraform());
    cmd.args(["deploy", "e02", "--yes"]);
    let mut holder = RunningTfenv::spawn(cmd);
    holder.wait_for_slow_apply(COMMAND_TIMEOUT);
    let raw = moto
        .lock_info(TABLE, &format!("{BUCKET}/e02/terraform.tfstate"))
        .unwrap_or_else(|| panic!("no lock while e02's apply runs\n{}", holder.output_text()));

    let mut cmd = tfenv(&project, &path, &support::terraform());
    cmd.args(["status", "--output", "json"]);
    let started = Instant::now();
    let output = run(cmd);
    let took = started.elapsed();
    holder.kill_everything();
    // The never-initialized copies are a problem (not-initialized): exit 6.
    let json = stdout_json(&expecting(output, 6));
    assert!(took < QUICKLY, "status of 20 took {took:?}");
    let reported = json["environments"].as_array().unwrap();
    assert_eq!(reported.len(), 20, "{json}");
    for ((env, status), (serial, lineage)) in envs.iter().zip(reported).zip(&expected) {
        let name = env.name.as_str();
        assert_eq!(status["name"], name, "{json}");
        assert_eq!(status["state_source"], "s3", "{name}: {status}");
        assert_eq!(status["state"]["serial"], *serial, "{name}: {status}");
        assert_eq!(
            status["state"]["lineage"],
            lineage.as_str(),
            "{name}: {status}"
        );
        assert_eq!(status["state"]["resources"], 1, "{name}: {status}");
        assert_eq!(
            status["backend"]["location"],
            format!(
                "s3://{BUCKET}/{}",
                state_key(name, env.workspace.as_deref())
            ),
            "{name}: {status}"
        );
        let lock = &status["lock"];
        let source = lock["source"].as_str().unwrap_or_default();
        match env.locking {
            Locking::DynamoDb => assert!(source.starts_with("dynamodb:"), "{name}: {status}"),
            Locking::Lockfile => assert!(source.ends_with(".tflock"), "{name}: {status}"),
        }
        let codes = problem_codes(status);
        if deployed.contains(&name) {
            assert_eq!(codes, Vec::<String>::new(), "{name}: {status}");
        } else {
            assert_eq!(codes, ["not-initialized"], "{name}: {status}");
        }
        if name == "e02" {
            assert_eq!(lock["held"], true, "{status}");
            let holder = &lock["holder"];
            assert_eq!(holder["id"], raw["ID"], "{status}");
            assert_eq!(holder["who"], raw["Who"], "{status}");
            assert_eq!(holder["operation"], "OperationTypeApply", "{status}");
        } else {
            assert_eq!(lock["held"], false, "{name}: {status}");
        }
    }
}

/// One IAM request to moto while its authentication is still off (the request only
/// needs a credential scope naming the service); the response body.
fn moto_iam(moto: &Moto, params: &[(&str, &str)]) -> String {
    let body: String = params
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencoding(v)))
        .collect::<Vec<_>>()
        .join("&");
    let (status, text) = moto_post(
        moto,
        "/",
        "application/x-www-form-urlencoded",
        "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\n",
        &body,
    );
    assert_eq!(status, 200, "IAM {params:?}: {text}");
    text
}

fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.0 POST to moto; the status code and the body.
fn moto_post(
    moto: &Moto,
    path: &str,
    content_type: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, moto.port()));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n{body}",
        moto.port(),
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The text between `<tag>` and `</tag>` in moto's XML answer.
fn xml_field(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    xml[start..end].to_string()
}

/// An IAM user allowed everything, and its access key: `(id, secret)`.
fn moto_user_key(moto: &Moto) -> (String, String) {
    moto_user(
        moto,
        "tfenv",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    )
}

/// An IAM user `name` with the policy `policy`, and its access key: `(id, secret)`.
fn moto_user(moto: &Moto, name: &str, policy: &str) -> (String, String) {
    moto_iam(
        moto,
        &[
            ("Action", "CreateUser"),
            ("UserName", name),
            ("Version", "2010-05-08"),
        ],
    );
    moto_iam(
        moto,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "policy"),
            ("PolicyDocument", policy),
            ("Version", "2010-05-08"),
        ],
    );
    let xml = moto_iam(
        moto,
        &[
            ("Action", "CreateAccessKey"),
            ("UserName", name),
            ("Version", "2010-05-08"),
        ],
    );
    (
        xml_field(&xml, "AccessKeyId"),
        xml_field(&xml, "SecretAccessKey"),
    )
}

/// From now on moto checks every request's signature against its IAM users' keys.
fn moto_require_auth(moto: &Moto) {
    let (status, body) = moto_post(moto, "/moto-api/reset-auth", "text/plain", "", "0");
    assert_eq!(status, 200, "{body}");
}

/// A backend config without keys (credentials come from elsewhere) or with `keys`.
fn auth_conf(moto: &Moto, key: &str, locking: Locking, keys: Option<(&str, &str)>) -> String {
    let conf =
        conf(moto, key, locking).replace("access_key = \"test\"\nsecret_key = \"test\"\n", "");
    match keys {
        None => conf,
        Some((id, secret)) => format!("{conf}access_key = \"{id}\"\nsecret_key = \"{secret}\"\n"),
    }
}

#[test]
fn s3_credentials_come_from_the_backend_config_a_profile_or_the_environment_and_a_wrong_key_is_an_auth_problem()
 {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let (id, secret) = moto_user_key(&moto);
    put_object(
        &moto,
        "keys/terraform.tfstate",
        state_json(11, "lineage-keys"),
    );
    put_object(
        &moto,
        "chain/terraform.tfstate",
        state_json(12, "lineage-chain"),
    );
    put_object(
        &moto,
        "wrong/terraform.tfstate",
        state_json(13, "lineage-wrong"),
    );
    moto_require_auth(&moto);

    let project = Project::empty();
    let path = tools_path(&project);
    project.write("main.tf", "terraform {\n  backend \"s3\" {}\n}\n");
    let wrong_secret = "not-the-secret-8d1f";
    project.write(
        "environments/keys.backend.conf",
        &auth_conf(
            &moto,
            "keys/terraform.tfstate",
            Locking::Lockfile,
            Some((&id, &secret)),
        ),
    );
    project.write(
        "environments/chain.backend.conf",
        &auth_conf(&moto, "chain/terraform.tfstate", Locking::DynamoDb, None),
    );
    project.write(
        "environments/wrong.backend.conf",
        &auth_conf(
            &moto,
            "wrong/terraform.tfstate",
            Locking::DynamoDb,
            Some((&id, wrong_secret)),
        ),
    );
    let status = |env: &str, setup: &dyn Fn(&mut Command)| -> (Output, Duration) {
        let mut cmd = tfenv(&project, &path, &support::terraform());
        setup(&mut cmd);
        cmd.args(["status", env, "--output", "json"]);
        let started = Instant::now();
        let output = run(cmd);
        (output, started.elapsed())
    };
    // Read, and only not initialized: the credentials were accepted.
    let read = |output: &Output, serial: u64| {
        let json = stdout_json(output);
        let env = &json["environments"][0];
        assert_eq!(env["state_source"], "s3", "{json}");
        assert_eq!(env["state"]["serial"], serial, "{json}");
        assert_eq!(env["lock"]["held"], false, "{json}");
        assert_eq!(problem_codes(env), ["not-initialized"], "{json}");
    };

    // (a) access_key / secret_key in the backend config.
    let (output, _) = status("keys", &|_| {});
    read(&expecting(output, 6), 11);

    // (b) AWS_PROFILE and a shared credentials file.
    let credentials = project.write(
        "aws/credentials",
        &format!("[tfenv-test]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
    );
    let (output, _) = status("chain", &|cmd| {
        cmd.env("AWS_PROFILE", "tfenv-test")
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials);
    });
    read(&expecting(output, 6), 12);

    // (c) AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    let (output, _) = status("chain", &|cmd| {
        cmd.env("AWS_ACCESS_KEY_ID", &id)
            .env("AWS_SECRET_ACCESS_KEY", &secret);
    });
    read(&expecting(output, 6), 12);

    // (d) a wrong key: one `auth` problem (the lock and the state read both refused),
    // naming the credentials and the fix, quickly; the secret never shown.
    let (output, took) = status("wrong", &|_| {});
    let output = expecting(output, 6);
    assert!(took < QUICKLY, "took {took:?}");
    let json = stdout_json(&output);
    let env = &json["environments"][0];
    assert_eq!(problem_codes(env), ["not-initialized", "auth"], "{json}");
    let message = env["problems"][1]["message"].as_str().unwrap();
    assert!(
        message.contains("AWS refused the credentials")
            && message.contains("`access_key` / `secret_key` in the backend config")
            && message.contains("fix `access_key` / `secret_key`"),
        "{json}"
    );
    assert_eq!(env["state"], Value::Null, "{json}");
    assert_eq!(env["lock"], Value::Null, "{json}");
    assert!(!text(&output).contains(wrong_secret), "{}", text(&output));

    // A wrong secret in the environment names the environment.
    let (output, took) = status("chain", &|cmd| {
        cmd.env("AWS_ACCESS_KEY_ID", &id)
            .env("AWS_SECRET_ACCESS_KEY", wrong_secret);
    });
    assert!(took < QUICKLY, "took {took:?}");
    let json = stdout_json(&expecting(output, 6));
    let env = &json["environments"][0];
    assert_eq!(problem_codes(env), ["not-initialized", "auth"], "{json}");
    assert!(
        env["problems"][1]["message"]
            .as_str()
            .unwrap()
            .contains("AWS_ACCESS_KEY_ID"),
        "{json}"
    );

    // `lock` on refused credentials: exit 1, naming them and the fix.
    let mut cmd = tfenv(&project, &path, &support::terraform());
    cmd.args(["lock", "wrong"]);
    let started = Instant::now();
    let output = expecting(run(cmd), 1);
    assert!(started.elapsed() < QUICKLY);
    let err = stderr(&output);
    assert!(
        err.contains("reading the lock of `wrong`")
            && err.contains("AWS refused the credentials")
            && err.contains("`access_key` / `secret_key` in the backend config")
            && err.contains("fix `access_key` / `secret_key`"),
        "{err}"
    );
    assert!(
        !err.contains(wrong_secret) && !err.contains("WARN"),
        "{err}"
    );
}

#[test]
fn status_of_an_s3_endpoint_nobody_listens_on_is_unreachable_quickly() {
    // A port that was free a moment ago: nobody listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let project = Project::empty();
    let path = tools_path(&project);
    project.write("main.tf", "terraform {\n  backend \"s3\" {}\n}\n");
    let endpoint = format!("http://127.0.0.1:{port}");
    project.write(
        "environments/dev.backend.conf",
        &format!(
            "bucket = \"b\"\nkey = \"dev/terraform.tfstate\"\nregion = \"us-east-1\"\n\
             dynamodb_table = \"locks\"\nendpoints = {{ s3 = \"{endpoint}\", dynamodb = \"{endpoint}\" }}\n\
             use_path_style = true\naccess_key = \"test\"\nsecret_key = \"test\"\n"
        ),
    );
    let mut cmd = tfenv(&project, &path, &support::terraform());
    cmd.args(["status", "--output", "json"]);
    let started = Instant::now();
    let output = expecting(run(cmd), 6);
    let took = started.elapsed();
    assert!(took < QUICKLY, "took {took:?}");
    let json = stdout_json(&output);
    let env = &json["environments"][0];
    assert_eq!(
        problem_codes(env),
        ["not-initialized", "unreachable"],
        "{json}"
    );
    let message = env["problems"][1]["message"].as_str().unwrap();
    assert!(
        message.contains("DynamoDB at `http://127.0.0.1:")
            && message.contains("did not answer")
            && message.contains("DynamoDB table `locks`"),
        "{json}"
    );
    assert_eq!(env["state"], Value::Null, "{json}");
}

#[test]
fn terraform_1_0_pre_1_6_setting_names_read_the_same_state_through_the_sdk() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = Project::empty();
    let path = tools_path(&project);
    let endpoint = moto.endpoint();
    project.write(
        "main.tf",
        "terraform {\n  backend \"s3\" {}\n}\nvariable \"n\" {\n  type = number\n}\noutput \"n\" {\n  value = var.n\n}\n",
    );
    project.write("environments/dev.tfvars", "n = 7\n");
    project.write(
        "environments/dev.backend.conf",
        &format!(
            r#"bucket            = "{BUCKET}"
key               = "dev/terraform.tfstate"
region            = "us-east-1"
dynamodb_table    = "{TABLE}"
endpoint          = "{endpoint}"
dynamodb_endpoint = "{endpoint}"
access_key        = "test"
secret_key        = "test"
force_path_style  = true
skip_credentials_validation = true
skip_metadata_api_check     = true
skip_region_validation      = true
"#
        ),
    );
    let tf = support::terraform_1_0();
    let mut cmd = tfenv(&project, &path, &tf);
    cmd.args(["deploy", "dev", "--yes"]);
    expecting(run(cmd), 0);
    let state: Value = serde_json::from_slice(&get_object(&moto, "dev/terraform.tfstate")).unwrap();
    assert_eq!(state["terraform_version"], "1.0.3", "{state}");

    let mut cmd = tfenv(&project, &path, &tf);
    cmd.args(["status", "--output", "json"]);
    let json = stdout_json(&expecting(run(cmd), 0));
    let env = &json["environments"][0];
    assert_eq!(env["state_source"], "s3", "{json}");
    assert_eq!(env["state"]["serial"], state["serial"], "{json}");
    assert_eq!(env["state"]["lineage"], state["lineage"], "{json}");
    assert_eq!(env["state"]["terraform_version"], "1.0.3", "{json}");
    assert_eq!(env["lock"]["held"], false, "{json}");
    assert_eq!(
        env["lock"]["source"],
        format!("dynamodb:{TABLE}/{BUCKET}/dev/terraform.tfstate"),
        "{json}"
    );
}

#[test]
fn deploy_backup_lock_unlock_and_restore_on_s3_need_no_aws_cli() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = Project::empty();
    let path = tools_path(&project);
    project.write("main.tf", MAIN_TF);
    project.write(
        "tfenv.toml",
        "[environments.dev]\nbackend_config = \"environments/dev.backend.conf\"\nvar_files = [\"environments/dev.tfvars\"]\n",
    );
    project.write(
        "environments/dev.backend.conf",
        &conf(&moto, "dev/terraform.tfstate", Locking::DynamoDb),
    );
    let vars = |n: u32, sleep: u32| {
        project.write(
            "environments/dev.tfvars",
            &format!(
                "n = {n}\nsleep = {sleep}\nsleep_bin = \"{}\"\n",
                sleep_bin()
            ),
        );
    };
    let tfenv_run = |args: &[&str], code: i32| -> Output {
        let mut cmd = tfenv(&project, &path, &support::terraform());
        cmd.args(args);
        expecting(run(cmd), code)
    };

    vars(1, 0);
    tfenv_run(&["deploy", "dev", "--yes"], 0);
    let backup = stdout_json(&tfenv_run(&["backup", "dev", "--output", "json"], 0));
    let backup_file = backup["backups"][0]["backup"]["file"]
        .as_str()
        .unwrap()
        .to_string();
    vars(2, 0);
    tfenv_run(&["deploy", "dev", "--yes"], 0);

    // A deploy killed mid-apply leaves its lock in DynamoDB.
    vars(3, 90);
    let mut cmd = tfenv(&project, &path, &support::terraform());
    cmd.args(["deploy", "dev", "--yes"]);
    let mut run_ = RunningTfenv::spawn(cmd);
    run_.wait_for_slow_apply(COMMAND_TIMEOUT);
    run_.kill_everything();
    let raw = moto
        .lock_info(TABLE, &format!("{BUCKET}/dev/terraform.tfstate"))
        .expect("the lock stays after SIGKILL");
    let id = raw["ID"].as_str().unwrap().to_string();

    let lock = stdout_json(&tfenv_run(&["lock", "dev", "--output", "json"], 0));
    assert_eq!(lock["held"], true, "{lock}");
    assert_eq!(lock["holder"]["id"], id.as_str(), "{lock}");
    let status = stdout_json(&tfenv_run(&["status", "dev", "--output", "json"], 6));
    let env = &status["environments"][0];
    assert_eq!(env["lock"]["holder"]["id"], id.as_str(), "{status}");
    assert_eq!(env["state_source"], "s3", "{status}");

    tfenv_run(&["unlock", "dev", &id, "--yes"], 0);
    assert_eq!(
        moto.lock_info(TABLE, &format!("{BUCKET}/dev/terraform.tfstate")),
        None,
        "unlocked"
    );
    let lock = stdout_json(&tfenv_run(&["lock", "dev", "--output", "json"], 0));
    assert_eq!(lock["held"], false, "{lock}");

    tfenv_run(&["restore", "dev", &backup_file, "--yes"], 0);
    let outputs = stdout_json(&tfenv_run(&["outputs", "dev", "--output", "json"], 0));
    assert_eq!(outputs["n"]["value"], 1, "{outputs}");
}

/// Allowed everything but `deny` (IAM actions) on `resource`.
fn allowed_but(deny: &[&str], resource: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Effect": "Allow", "Action": "*", "Resource": "*" },
            { "Effect": "Deny", "Action": deny, "Resource": resource },
        ]
    })
    .to_string()
}

#[test]
fn a_denied_ledger_write_is_a_permission_problem_naming_the_action_not_bad_credentials() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let key = "dev/terraform.tfstate";
    // `ci` may do anything with the state, nothing under `<key>.tfenv/`; `audit` may
    // read everything but not list the bucket.
    let ci = moto_user(
        &moto,
        "ci",
        &allowed_but(
            &["s3:PutObject", "s3:GetObject"],
            &format!("arn:aws:s3:::{BUCKET}/{key}.tfenv/*"),
        ),
    );
    let audit = moto_user(
        &moto,
        "audit",
        &allowed_but(&["s3:ListBucket"], &format!("arn:aws:s3:::{BUCKET}")),
    );
    moto_require_auth(&moto);

    let project = Project::empty();
    let path = tools_path(&project);
    project.write("main.tf", MAIN_TF);
    // `audit` reads dev's state with other credentials: two environments on one state,
    // which deploy and plan refuse, so it is declared only for `status` below.
    let dev_only = "[project]\nledger = \"backend\"\n\n\
         [environments.dev]\nbackend_config = \"environments/dev.backend.conf\"\nvar_files = [\"environments/dev.tfvars\"]\n";
    project.write("tfenv.toml", dev_only);
    project.write(
        "environments/dev.backend.conf",
        &auth_conf(&moto, key, Locking::DynamoDb, Some((&ci.0, &ci.1))),
    );
    project.write(
        "environments/audit.backend.conf",
        &auth_conf(&moto, key, Locking::DynamoDb, Some((&audit.0, &audit.1))),
    );
    project.write(
        "environments/dev.tfvars",
        &format!("n = 1\nsleep = 0\nsleep_bin = \"{}\"\n", sleep_bin()),
    );
    let tfenv_run = |args: &[&str], code: i32| -> Output {
        let mut cmd = tfenv(&project, &path, &support::terraform());
        cmd.args(args);
        expecting(run(cmd), code)
    };

    // The deploy succeeds (terraform wrote the state with these credentials), with one
    // warning: the permission to grant, not the credentials to fix.
    let output = tfenv_run(&["deploy", "dev", "--yes"], 0);
    let err = stderr(&output);
    assert_eq!(err.matches("could not upload").count(), 1, "{err}");
    assert!(
        err.contains(
            "permission denied: writing `s3://tfstate-sdk/dev/terraform.tfstate.tfenv/history/"
        ) && err.contains("AccessDenied")
            && err.contains("tfenv used `access_key` / `secret_key` in the backend config")
            && err.contains(&format!(
                "allow `s3:PutObject` on `arn:aws:s3:::{BUCKET}/{key}.tfenv/*`"
            ))
            && err.contains("docs/team.md"),
        "{err}"
    );
    assert!(
        !err.contains("refused the credentials") && !err.contains("fix `access_key`"),
        "{err}"
    );
    let history = std::fs::read_to_string(project.join("state/dev/history.jsonl")).unwrap();
    let last: Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(last["result"], "applied", "{history}");
    assert_eq!(last["unshared"], true, "{history}");

    // Publishing a plan fails: nothing usable was published, and the error says why.
    let output = tfenv_run(&["plan", "dev", "--publish"], 1);
    let err = stderr(&output);
    assert!(
        err.contains(
            "permission denied: writing `s3://tfstate-sdk/dev/terraform.tfstate.tfenv/plans/"
        ) && err.contains("AccessDenied")
            && err.contains("allow `s3:PutObject`")
            && !err.contains("refused the credentials")
            && !err.contains("fix `access_key`"),
        "{err}"
    );

    // `status` of an environment whose ledger cannot be listed: one warning (not one per
    // folder), naming the permission.
    project.write(
        "tfenv.toml",
        &format!(
            "{dev_only}\n[environments.audit]\nbackend_config = \"environments/audit.backend.conf\"\nvar_files = [\"environments/dev.tfvars\"]\n"
        ),
    );
    let output = tfenv_run(&["status", "audit"], 6);
    let err = stderr(&output);
    assert_eq!(
        err.matches("cannot read the shared ledger of `audit`")
            .count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("allow `s3:ListBucket` on `arn:aws:s3:::tfstate-sdk` (for the prefix `dev/terraform.tfstate.tfenv/`)"),
        "{err}"
    );
    let status = stdout_json(&tfenv_run(&["status", "audit", "--output", "json"], 6));
    let warnings = status["environments"][0]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{status}");
}
