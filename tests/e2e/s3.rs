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
    moto.put_lock_item(TABLE, "tfstate-test/db/terraform.tfstate", &info);

    // The project's PATH has no aws CLI: tfenv asks DynamoDB itself.
    let (output, requests) = moto.requests_during(|| {
        project
            .tfenv()
            .args(["lock", "--all", "--output", "json"])
            .output()
            .unwrap()
    });
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

    // One BatchGetItem for the three environments, consistent, and nothing else.
    let shown: Vec<String> = requests.iter().map(ToString::to_string).collect();
    assert_eq!(requests.len(), 1, "one request for three locks: {shown:#?}");
    assert_eq!(
        requests[0].dynamodb_operation.as_deref(),
        Some("BatchGetItem"),
        "{shown:#?}"
    );
    let batch = requests[0].json();
    let keys: Vec<&str> = batch["RequestItems"][TABLE]["Keys"]
        .as_array()
        .unwrap_or_else(|| panic!("a batch of the table `{TABLE}`: {batch}"))
        .iter()
        .map(|k| k["LockID"]["S"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "tfstate-test/app/terraform.tfstate",
            "tfstate-test/db/terraform.tfstate",
            "tfstate-test/web/terraform.tfstate"
        ],
        "{batch}"
    );
    assert_eq!(
        batch["RequestItems"][TABLE]["ConsistentRead"], true,
        "{batch}"
    );
}

/// A project with the environments `envs` on moto's bucket (state `<env>/terraform.tfstate`),
/// locking with `locking` (`dynamodb_table = "…"` or `use_lockfile = true`).
fn lock_project(moto: &Moto, envs: &[&str], locking: &str) -> Project {
    let project = Project::empty();
    let mut toml = String::new();
    for env in envs {
        toml.push_str(&format!(
            "[environments.{env}]\nbackend_config = \"environments/{env}.backend.conf\"\n"
        ));
        let conf = moto
            .backend_conf(BUCKET, &format!("{env}/terraform.tfstate"), TABLE)
            .replace(&format!("dynamodb_table = \"{TABLE}\""), locking);
        project.write(&format!("environments/{env}.backend.conf"), &conf);
    }
    project.write("tfenv.toml", &toml);
    project.write("main.tf", "terraform {\n  backend \"s3\" {}\n}\n");
    project
}

/// `tfenv lock <args>` exits `code`; the output.
fn lock(project: &Project, args: &[&str], code: i32) -> std::process::Output {
    support::expecting(
        project.tfenv().arg("lock").args(args).output().unwrap(),
        code,
    )
}

/// `tfenv lock dev` exits 1 with an error that says `what` and a hint that says `fix`;
/// so does the `error` of `tfenv lock dev --output json`. Returns that error.
fn lock_error(project: &Project, what: &[&str], fix: &str) -> String {
    let human = lock(project, &["dev"], 1);
    let stderr = support::stderr(&human);
    let json = stdout_json(&lock(project, &["dev", "--output", "json"], 1));
    let error = json["error"].as_str().unwrap_or_default().to_string();
    for part in what {
        assert!(stderr.contains(part), "stderr says {part}:\n{stderr}");
        assert!(error.contains(part), "the JSON error says {part}: {json}");
    }
    let hint = stderr.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert!(hint.contains(fix), "a hint line says {fix}:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    error
}

const NOT_LOCK_JSON: &str = "not terraform's lock JSON";

#[test]
fn a_dynamodb_lock_whose_holder_is_not_lock_json_is_an_error_naming_the_item() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = lock_project(
        &moto,
        &["dev", "qa"],
        &format!("dynamodb_table = \"{TABLE}\""),
    );
    moto.put_lock_item(TABLE, "tfstate-test/dev/terraform.tfstate", "{not json");

    lock_error(
        &project,
        &[
            "`tfstate-test/dev/terraform.tfstate`",
            "DynamoDB table `tf-locks`",
            NOT_LOCK_JSON,
        ],
        "delete the item",
    );

    // Read in one batch with qa's lock, it spoils dev's alone.
    let all = stdout_json(&lock(&project, &["--all", "--output", "json"], 1));
    let envs = all["environments"].as_array().unwrap();
    assert_eq!(envs[0]["environment"], "dev", "{all}");
    assert!(
        envs[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains(NOT_LOCK_JSON)),
        "{all}"
    );
    assert_eq!(envs[1]["environment"], "qa", "{all}");
    assert_eq!(envs[1]["error"], Value::Null, "{all}");
    assert_eq!(envs[1]["held"], false, "{all}");
}

#[test]
fn a_tflock_object_that_is_not_lock_json_is_an_error_naming_the_object() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let project = lock_project(&moto, &["dev"], "use_lockfile = true");
    moto.put_object(BUCKET, "dev/terraform.tfstate.tflock", b"\xff garbage");

    lock_error(
        &project,
        &[
            "`s3://tfstate-test/dev/terraform.tfstate.tflock`",
            NOT_LOCK_JSON,
        ],
        "delete the object",
    );
}

#[test]
fn a_lock_table_that_does_not_exist_is_an_error_naming_it() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let project = lock_project(&moto, &["dev", "qa"], "dynamodb_table = \"no-such-table\"");

    lock_error(
        &project,
        &["DynamoDB table `no-such-table`", "does not exist"],
        "`dynamodb_table = \"no-such-table\"`",
    );

    // Both environments read in one batch: each says so, with the same hint.
    let all = lock(&project, &["--all"], 1);
    let stderr = support::stderr(&all);
    for env in ["dev", "qa"] {
        assert!(
            stderr.lines().any(|l| l.contains(&format!("`{env}`"))
                && l.contains("`no-such-table`")
                && l.contains("does not exist")),
            "{}",
            support::output_text(&all)
        );
    }
    assert!(
        stderr.contains("`dynamodb_table = \"no-such-table\"`"),
        "{}",
        support::output_text(&all)
    );
}
