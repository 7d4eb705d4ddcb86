//! Backups and restore with the s3 backend on a moto server and the real terraform.

use serde_json::Value;
use sha2::Digest;

use crate::support::moto::Moto;
use crate::support::{self, Project, stdout_json};

const BUCKET: &str = "tfstate-test";
const TABLE: &str = "tf-locks";

fn s3_project(moto: &Moto) -> Project {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[environments.dev]\nbackend_config = \"environments/dev.backend.conf\"\nvar_files = [\"environments/dev.tfvars\"]\n",
    );
    project.write(
        "environments/dev.backend.conf",
        &moto.backend_conf(BUCKET, "dev/terraform.tfstate", TABLE),
    );
    project.write("environments/dev.tfvars", "message = \"one\"\n");
    project.write(
        "main.tf",
        "terraform {\n  backend \"s3\" {}\n}\nvariable \"message\" { type = string }\noutput \"message\" { value = var.message }\n",
    );
    project
}

#[test]
fn backup_and_restore_on_s3_keep_the_digest_consistent() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = s3_project(&moto);
    project
        .tfenv_real()
        .args(["deploy", "dev", "--yes"])
        .assert()
        .success();

    let output = project
        .tfenv_real()
        .args(["backup", "dev", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let backup = stdout_json(&output)["backups"][0]["backup"].clone();
    let file = project.join(&format!(
        "state/dev/backups/{}",
        backup["file"].as_str().unwrap()
    ));
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(backup["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
    assert!(String::from_utf8_lossy(&bytes).contains("\"one\""));
    project
        .tfenv_real()
        .args(["verify", "dev"])
        .assert()
        .success();

    project.write("environments/dev.tfvars", "message = \"two\"\n");
    project
        .tfenv_real()
        .args(["deploy", "dev", "--yes"])
        .assert()
        .success();
    let status = stdout_json(
        &project
            .tfenv_real()
            .args(["status", "dev", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        status["environments"][0]["backend"]["location"],
        "s3://tfstate-test/dev/terraform.tfstate"
    );
    let serial_before = status["environments"][0]["state"]["serial"]
        .as_u64()
        .unwrap();

    project
        .tfenv_real()
        .args(["restore", "dev", backup["file"].as_str().unwrap(), "--yes"])
        .assert()
        .success();
    let outputs = stdout_json(
        &project
            .tfenv_real()
            .args(["outputs", "dev", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(outputs["message"]["value"], "one");
    let status = stdout_json(
        &project
            .tfenv_real()
            .args(["status", "dev", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert!(
        status["environments"][0]["state"]["serial"]
            .as_u64()
            .unwrap()
            > serial_before
    );

    // The restore went through terraform state push, so the DynamoDB digest matches the
    // object: a following plan reads the state without a checksum error.
    let output = project
        .tfenv_real()
        .args(["plan", "dev", "--detailed-exitcode"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("checksum"), "{stderr}");
    let digest: Option<Value> = moto.lock_item(TABLE, "tfstate-test/dev/terraform.tfstate-md5");
    assert!(digest.is_some(), "the s3 backend keeps its digest item");
}

#[test]
fn lock_all_reads_every_dynamodb_lock_of_a_table_in_one_batch() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = Project::empty();
    let mut toml = String::new();
    for env in ["app", "db", "web"] {
        toml.push_str(&format!(
            "[environments.{env}]\nbackend_config = \"environments/{env}.backend.conf\"\n"
        ));
        project.write(
            &format!("environments/{env}.backend.conf"),
            &moto.backend_conf(BUCKET, &format!("{env}/terraform.tfstate"), TABLE),
        );
    }
    project.write("tfenv.toml", &toml);
    project.write("main.tf", "terraform {\n  backend \"s3\" {}\n}\n");
    let info = serde_json::json!({
        "ID": "0c5e-batch", "Operation": "OperationTypePlan", "Info": "", "Who": "dave@ci",
        "Version": "1.11.4", "Created": "2026-11-22T09:00:00.000000Z", "Path": "tfstate-test/db/terraform.tfstate"
    })
    .to_string();
    let item = serde_json::json!({ "LockID": { "S": "tfstate-test/db/terraform.tfstate" }, "Info": { "S": info } }).to_string();
    moto.aws_ok(&[
        "dynamodb",
        "put-item",
        "--table-name",
        TABLE,
        "--item",
        &item,
    ]);

    // tfenv runs the aws CLI from PATH.
    let aws_dir = support::aws_cli().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        aws_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = project
        .tfenv()
        .env("PATH", &path)
        .args(["lock", "--all", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = stdout_json(&output);
    let held: Vec<bool> = json["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["held"].as_bool().unwrap())
        .collect();
    assert_eq!(held, [false, true, false], "{json}");
    assert_eq!(json["environments"][1]["holder"]["id"], "0c5e-batch");
    assert_eq!(
        json["environments"][1]["source"],
        "dynamodb:tf-locks/tfstate-test/db/terraform.tfstate"
    );
}
