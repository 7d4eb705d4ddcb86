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

/// A moto with the bucket and lock table, and a project whose environments `envs` lock
/// in that table.
fn dynamodb_locked(envs: &[&str]) -> (Moto, Project) {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = lock_project(&moto, envs, &format!("dynamodb_table = \"{TABLE}\""));
    (moto, project)
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
    let (moto, project) = dynamodb_locked(&["dev", "qa"]);
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

/// `tfenv lock <env> --output json` (exit 0): the lock's JSON.
fn lock_json(project: &Project, env: &str) -> Value {
    stdout_json(&lock(project, &[env, "--output", "json"], 0))
}

const ALICE: &str = r#"{"ID":"11111111-2222","Operation":"OperationTypeApply","Info":"","Who":"alice@laptop","Version":"1.9.0","Created":"2026-11-30T09:00:00Z","Path":"p"}"#;

#[test]
fn with_both_use_lockfile_and_dynamodb_table_a_lock_in_either_is_held() {
    // Terraform's migration setting takes both locks: held when either is.
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let both = format!("use_lockfile = true\ndynamodb_table = \"{TABLE}\"");
    let project = lock_project(&moto, &["dev"], &both);
    let free = lock_json(&project, "dev");
    assert_eq!(free["held"], false, "{free}");

    moto.put_lock_item(TABLE, "tfstate-test/dev/terraform.tfstate", ALICE);
    let in_table = lock_json(&project, "dev");
    assert_eq!(in_table["held"], true, "{in_table}");
    assert_eq!(in_table["holder"]["who"], "alice@laptop", "{in_table}");
    assert_eq!(
        in_table["source"], "dynamodb:tf-locks/tfstate-test/dev/terraform.tfstate",
        "{in_table}"
    );

    moto.delete_lock_item(TABLE, "tfstate-test/dev/terraform.tfstate");
    moto.put_object(BUCKET, "dev/terraform.tfstate.tflock", ALICE.as_bytes());
    let in_object = lock_json(&project, "dev");
    assert_eq!(in_object["held"], true, "{in_object}");
    assert_eq!(
        in_object["source"], "s3://tfstate-test/dev/terraform.tfstate.tflock",
        "{in_object}"
    );
}

#[test]
fn a_lock_item_without_info_or_naming_nobody_is_held_by_an_unknown_holder_never_free() {
    let (moto, project) = dynamodb_locked(&["dev", "qa"]);
    // dev: an item without `Info`; qa: lock JSON that names nobody. Terraform refuses to
    // run on both.
    moto.put_bare_lock_item(TABLE, "tfstate-test/dev/terraform.tfstate");
    moto.put_lock_item(TABLE, "tfstate-test/qa/terraform.tfstate", "{}");
    for env in ["dev", "qa"] {
        let one = lock_json(&project, env);
        assert_eq!(
            (&one["held"], &one["holder"]),
            (&Value::Bool(true), &Value::Null),
            "{one}"
        );
        assert!(
            one["note"]
                .as_str()
                .is_some_and(|n| n.contains("by whom it does not say")),
            "{one}"
        );
    }
    // Read in one batch, the same.
    let all = stdout_json(&lock(&project, &["--all", "--output", "json"], 0));
    for env in all["environments"].as_array().unwrap() {
        assert_eq!(env["held"], true, "{all}");
    }
    let human = lock(&project, &["dev"], 0);
    let text = support::stdout(&human);
    assert!(!text.contains("not locked"), "{text}");
}

#[test]
fn two_environments_sharing_one_state_are_read_in_one_batch() {
    // DynamoDB refuses a batch naming one key twice; tfenv asks for each key once.
    let (moto, project) = dynamodb_locked(&["dev", "qa"]);
    let dev_conf = project.read("environments/dev.backend.conf");
    project.write("environments/qa.backend.conf", &dev_conf);
    moto.put_lock_item(TABLE, "tfstate-test/dev/terraform.tfstate", ALICE);
    let all = stdout_json(&lock(&project, &["--all", "--output", "json"], 0));
    for env in all["environments"].as_array().unwrap() {
        assert_eq!(env["held"], true, "{all}");
        assert_eq!(env["holder"]["who"], "alice@laptop", "{all}");
    }
}

#[test]
fn a_web_identity_token_in_the_backend_config_is_exchanged_at_its_sts_endpoint_and_never_written() {
    let (moto, project) = dynamodb_locked(&["dev"]);
    let endpoint = moto.endpoint();
    // No keys: the token is the credentials; STS at the backend's endpoint.
    let mut conf: Vec<String> = project
        .read("environments/dev.backend.conf")
        .lines()
        .filter(|l| {
            !["access_key", "secret_key", "endpoints"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(str::to_string)
        .collect();
    conf.push(format!(
        "endpoints = {{ s3 = \"{endpoint}\", dynamodb = \"{endpoint}\", sts = \"{endpoint}\" }}"
    ));
    conf.push(
        "assume_role_with_web_identity = {\n  role_arn = \"arn:aws:iam::123456789012:role/ci\"\n  web_identity_token = \"WEBTOKEN-SECRET-42\"\n}"
            .to_string(),
    );
    let conf = conf.join("\n");
    project.write("environments/dev.backend.conf", &conf);
    moto.put_lock_item(TABLE, "tfstate-test/dev/terraform.tfstate", ALICE);
    let tmp = tempfile::tempdir().unwrap();
    let (output, requests) = moto.requests_during(|| {
        project
            .tfenv()
            .args(["-vv", "lock", "dev", "--output", "json"])
            .env("TMPDIR", tmp.path())
            .output()
            .unwrap()
    });
    let output = support::expecting(output, 0);
    let json = stdout_json(&output);
    assert_eq!(json["holder"]["who"], "alice@laptop", "{json}");
    // STS at the backend's endpoint, not sts.amazonaws.com.
    assert!(
        requests
            .iter()
            .any(|r| r.body.contains("AssumeRoleWithWebIdentity")),
        "{requests:?}"
    );
    let all = support::output_text(&output);
    assert!(!all.contains("WEBTOKEN-SECRET-42"), "{all}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "tfenv left files in TMPDIR: {left:?}");
}

#[test]
fn an_sts_endpoint_that_does_not_answer_is_unreachable_not_a_credentials_problem() {
    let (moto, project) = dynamodb_locked(&["dev"]);
    let endpoint = moto.endpoint();
    let conf: Vec<String> = project
        .read("environments/dev.backend.conf")
        .lines()
        .filter(|l| !l.starts_with("endpoints"))
        .map(str::to_string)
        .chain([
            // Nobody listens on port 1.
            format!("endpoints = {{ s3 = \"{endpoint}\", dynamodb = \"{endpoint}\", sts = \"http://127.0.0.1:1\" }}"),
            "assume_role = { role_arn = \"arn:aws:iam::123456789012:role/deploy\" }".to_string(),
        ])
        .collect();
    project.write("environments/dev.backend.conf", &conf.join("\n"));
    let output = support::expecting(
        project
            .tfenv()
            .args(["status", "dev", "--timeout", "20s", "--output", "json"])
            .output()
            .unwrap(),
        6,
    );
    let json = stdout_json(&output);
    let codes: Vec<&str> = json["environments"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["code"].as_str())
        .collect();
    assert!(codes.contains(&"unreachable"), "{json}");
    assert!(!codes.contains(&"auth"), "{json}");
    assert!(
        json.to_string()
            .contains("STS at `http://127.0.0.1:1` did not answer"),
        "names the STS endpoint: {json}"
    );
}
