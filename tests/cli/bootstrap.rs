//! `tfenv bootstrap` where no cloud is needed: the local backend has nothing to create,
//! and a backend config tfenv cannot or must not create is refused before any call — the
//! endpoints point at a port the test listens on, and nobody connects to it.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use crate::support::snap::Snapshots;
use crate::support::{Project, expecting, stderr, stdout, stdout_json};

#[test]
fn a_local_backend_has_nothing_to_create() {
    let project = Project::demo();
    let output = expecting(
        project.tfenv().args(["bootstrap", "dev"]).output().unwrap(),
        0,
    );
    let text = stdout(&output);
    assert!(
        text.contains("dev: local backend: nothing to create (the state is a local file)")
            && text.contains("nothing to do"),
        "{text}"
    );
    // Nothing to create is nothing to confirm, production too.
    expecting(
        project
            .tfenv()
            .args(["bootstrap", "production"])
            .output()
            .unwrap(),
        0,
    );
    assert!(!project.join("state").exists(), "bootstrap wrote state/");
}

#[test]
fn json_of_bootstrap_all_on_local_backends_matches_its_snapshot() {
    let project = Project::demo();
    let args = ["bootstrap", "--all", "--output", "json"];
    let output = expecting(project.tfenv().args(args).output().unwrap(), 0);
    let json = stdout_json(&output);
    assert_eq!(
        json["environments"].as_array().unwrap().len(),
        3,
        "{json:#}"
    );
    Snapshots::new(&project).json("json-bootstrap-local", &args, &output);
}

/// A port that accepts connections and that the test can ask, afterwards, whether
/// anybody connected.
struct Watched(TcpListener);

impl Watched {
    fn new() -> Watched {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        listener.set_nonblocking(true).unwrap();
        Watched(listener)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.0.local_addr().unwrap().port())
    }

    fn assert_never_contacted(&self) {
        match self.0.accept() {
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("tfenv contacted the endpoint: {other:?}"),
        }
    }
}

fn s3_conf(endpoint: &str, bucket: &str, table: &str) -> String {
    format!(
        r#"bucket         = "{bucket}"
key            = "dev/terraform.tfstate"
region         = "us-east-1"
dynamodb_table = "{table}"
endpoints = {{ s3 = "{endpoint}", dynamodb = "{endpoint}" }}
access_key = "test"
secret_key = "test"
use_path_style = true
skip_credentials_validation = true
skip_requesting_account_id  = true
skip_metadata_api_check     = true
"#
    )
}

/// The demo on an `s3` backend, with `confs` as its environments' backend configs.
fn s3_project(confs: &[(&str, String)]) -> Project {
    let project = Project::demo();
    let main = project.read("examples/quickstart/main.tf");
    let s3 = main.replacen("backend \"local\" {}", "backend \"s3\" {}", 1);
    assert_ne!(main, s3, "the demo's backend block changed");
    project.write("examples/quickstart/main.tf", &s3);
    for (env, conf) in confs {
        project.write(&format!("environments/{env}.backend.conf"), conf);
    }
    project
}

fn refused(project: &Project, args: &[&str]) -> String {
    stderr(&expecting(project.tfenv().args(args).output().unwrap(), 1))
}

#[test]
fn an_invalid_s3_bucket_name_is_refused_naming_the_rule_before_any_call() {
    let endpoint = Watched::new();
    let project = s3_project(&[
        (
            "dev",
            s3_conf(&endpoint.endpoint(), "tfstate-good", "tf-locks"),
        ),
        (
            "staging",
            s3_conf(&endpoint.endpoint(), "Tf_State", "tf-locks"),
        ),
    ]);
    for args in [
        &["bootstrap", "staging"][..],
        &["bootstrap", "--all", "--yes"],
    ] {
        let error = refused(&project, args);
        assert!(
            error.contains(
                "environment `staging`: `Tf_State` is not a valid S3 bucket name: it may hold only lowercase letters, digits, dots and hyphens, not `T`, `_`, `S`"
            ) && error.contains("bucketnamingrules"),
            "{error}"
        );
    }
    for (bucket, rule) in [
        ("ab", "it must be 3 to 63 characters long"),
        ("tf..state", "it must not hold two dots in a row"),
        ("192.168.1.2", "it must not look like an IP address"),
        (
            "-tfstate",
            "it must begin and end with a lowercase letter or a digit",
        ),
        ("xn--tfstate", "it must not begin with `xn--`"),
    ] {
        project.write(
            "environments/staging.backend.conf",
            &s3_conf(&endpoint.endpoint(), bucket, "tf-locks"),
        );
        let error = refused(&project, &["bootstrap", "staging"]);
        assert!(
            error.contains(&format!("`{bucket}` is not a valid S3 bucket name: {rule}")),
            "{error}"
        );
    }
    endpoint.assert_never_contacted();
}

#[test]
fn an_invalid_dynamodb_table_name_is_refused_before_any_call() {
    let endpoint = Watched::new();
    let project = s3_project(&[(
        "dev",
        s3_conf(&endpoint.endpoint(), "tfstate-good", "tf locks"),
    )]);
    let error = refused(&project, &["bootstrap", "dev", "--dry-run"]);
    assert!(
        error.contains(
            "`tf locks` is not a valid DynamoDB table name: it may hold only letters, digits, underscores, hyphens and dots, not ` `"
        ),
        "{error}"
    );
    endpoint.assert_never_contacted();
}

#[test]
fn a_backend_tfenv_cannot_create_is_refused_saying_which() {
    let project = Project::demo();
    let main = project.read("examples/quickstart/main.tf");
    project.write(
        "examples/quickstart/main.tf",
        &main.replacen("backend \"local\" {}", "backend \"consul\" {}", 1),
    );
    project.write(
        "environments/dev.backend.conf",
        "address = \"127.0.0.1:1\"\npath = \"tfstate/dev\"\n",
    );
    let output = expecting(
        project
            .tfenv()
            .args(["bootstrap", "dev", "--output", "json"])
            .output()
            .unwrap(),
        1,
    );
    let json = stdout_json(&output);
    assert_eq!(
        json["error"]["message"],
        "environment `dev`: tfenv cannot create a `consul` backend: bootstrap knows s3, azurerm and gcs",
        "{json:#}"
    );
    assert!(
        json["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("create the consul backend's storage yourself"),
        "{json:#}"
    );
}

#[test]
fn an_s3_backend_config_without_a_bucket_is_refused_saying_what_to_set() {
    let endpoint = Watched::new();
    let conf: String = s3_conf(&endpoint.endpoint(), "x", "tf-locks")
        .lines()
        .filter(|l| !l.starts_with("bucket"))
        .map(|l| format!("{l}\n"))
        .collect();
    let project = s3_project(&[("dev", conf)]);
    let error = refused(&project, &["bootstrap", "dev"]);
    assert!(
        error.contains(
            "the s3 backend config sets no `bucket`: bootstrap does not know what to create"
        ) && error.contains("set `bucket` in the environment's backend config"),
        "{error}"
    );
    endpoint.assert_never_contacted();
}
