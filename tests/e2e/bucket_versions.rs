//! Recovery from the versions a versioned bucket keeps of the state object (s3 on
//! moto, the real terraform): `backups <env> --versions` lists them with the serial and
//! lineage of each, and `restore <env> version:<ID>` brings one back through the normal
//! restore path, after which a plan shows that version's configuration as changes.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use serde_json::Value;

use crate::support::moto::Moto;
use crate::support::snap::Snapshots;
use crate::support::{self, Project, expecting, stderr, stdout_json};

const BUCKET: &str = "tfstate-versions";
const TABLE: &str = "tf-locks-versions";
const KEY: &str = "dev/terraform.tfstate";

fn project(moto: &Moto) -> Project {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[environments.dev]\nbackend_config = \"environments/dev.backend.conf\"\nvar_files = [\"environments/dev.tfvars\"]\n",
    );
    project.write(
        "environments/dev.backend.conf",
        &moto.backend_conf(BUCKET, KEY, TABLE),
    );
    project.write(
        "main.tf",
        "terraform {\n  backend \"s3\" {}\n}\nvariable \"message\" { type = string }\nresource \"terraform_data\" \"message\" { input = var.message }\noutput \"message\" { value = var.message }\n",
    );
    project
}

fn run(project: &Project, args: &[&str], code: i32) -> Output {
    expecting(project.run_with(support::terraform(), args), code)
}

fn deploy(project: &Project, message: &str) {
    project.write(
        "environments/dev.tfvars",
        &format!("message = \"{message}\"\n"),
    );
    run(project, &["deploy", "dev", "--yes"], 0);
}

fn versions(project: &Project) -> Value {
    stdout_json(&run(
        project,
        &["backups", "dev", "--versions", "--output", "json"],
        0,
    ))
}

#[test]
fn a_bucket_version_of_the_state_is_listed_and_restored_through_the_normal_path() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = project(&moto);

    deploy(&project, "one");
    let first = versions(&project)["versions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    deploy(&project, "two");
    deploy(&project, "three");

    // Every version, newest first, with the serial and lineage of its first bytes.
    let listed = versions(&project);
    assert_eq!(listed["state"], format!("s3://{BUCKET}/{KEY}"));
    let all = listed["versions"].as_array().unwrap();
    assert!(all.len() >= 3, "{listed:#}");
    assert_eq!(all[0]["latest"], true, "{listed:#}");
    let lineage = &all[0]["lineage"];
    for v in all {
        assert!(v["serial"].is_u64(), "{listed:#}");
        assert_eq!(&v["lineage"], lineage, "{listed:#}");
        assert_eq!(v["deleted"], false);
    }
    let serials: Vec<u64> = all.iter().map(|v| v["serial"].as_u64().unwrap()).collect();
    assert!(serials.windows(2).all(|w| w[0] >= w[1]), "{serials:?}");
    let first_serial = all.iter().find(|v| v["id"] == first.as_str()).unwrap()["serial"]
        .as_u64()
        .unwrap();
    assert!(first_serial < serials[0], "{serials:?}");

    // As a user sees them (moto's version IDs are UUIDs: `[UUID]`, as lineages are).
    let mut snapshots = Snapshots::new(&project);
    snapshots.real_terraform(&support::terraform());
    let short: String = lineage.as_str().unwrap().chars().take(8).collect();
    snapshots.literal(&short, "[LINEAGE]");
    let args = ["backups", "dev", "--versions"];
    snapshots.stdout("bucket-versions", &args, &run(&project, &args, 0));
    let args = ["backups", "dev", "--versions", "--output", "json"];
    snapshots.json("json-bucket-versions", &args, &run(&project, &args, 0));

    // Restored: downloaded into a backup of its own first, then pushed with serial+1.
    let version = format!("version:{first}");
    let restored = stdout_json(&run(
        &project,
        &["restore", "dev", &version, "--yes", "--output", "json"],
        0,
    ));
    assert!(
        restored["serial_after"].as_u64().unwrap() > serials[0],
        "{restored:#}"
    );
    let manifest = project.read("state/dev/backups/MANIFEST.jsonl");
    let line: Value = manifest
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|b| b["reason"] == format!("bucket-version {first}"))
        .unwrap_or_else(|| panic!("no backup of the version in the manifest:\n{manifest}"));
    assert_eq!(restored["restored"], line["file"]);
    assert_eq!(line["serial"].as_u64(), Some(first_serial));
    let file = project.join(&format!(
        "state/dev/backups/{}",
        line["file"].as_str().unwrap()
    ));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    run(&project, &["verify", "dev"], 0);

    // The state is the first deploy's again: the plan turns it back into "three".
    let outputs = stdout_json(&run(&project, &["outputs", "dev", "--output", "json"], 0));
    assert_eq!(outputs["message"]["value"], "one");
    run(
        &project,
        &["plan", "dev", "--detailed-exitcode", "--out", "bundle"],
        3,
    );
    let plan: Value =
        serde_json::from_slice(&std::fs::read(project.join("bundle/plan.json")).unwrap()).unwrap();
    let change = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "terraform_data.message")
        .unwrap_or_else(|| panic!("the plan does not change terraform_data.message: {plan:#}"));
    assert_eq!(change["change"]["before"]["input"], "one", "{change:#}");
    assert_eq!(change["change"]["after"]["input"], "three", "{change:#}");
}

#[test]
fn restoring_a_version_the_bucket_does_not_have_or_a_delete_marker_is_refused_clearly() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = project(&moto);
    deploy(&project, "one");

    let output = run(
        &project,
        &["restore", "dev", "version:no-such-version", "--yes"],
        2,
    );
    let text = stderr(&output);
    assert!(
        text.contains(
            "`no-such-version` is not a version of `s3://tfstate-versions/dev/terraform.tfstate`"
        ),
        "{text}"
    );
    assert!(text.contains("tfenv backups dev --versions"), "{text}");

    // A version whose first KiB does not reach its serial, and one that is no state:
    // listed with what could be read (`-`, null), the listing does not fail.
    let late = format!(
        r#"{{"version":4,"outputs":{{"pad":{{"value":"{}","type":"string"}}}},"serial":9,"lineage":"l"}}"#,
        "x".repeat(2000)
    );
    moto.put_object(BUCKET, KEY, late.as_bytes());
    moto.put_object(BUCKET, KEY, b"<html>not a state</html>");
    let listed = versions(&project);
    let all = listed["versions"].as_array().unwrap();
    assert_eq!(all.len(), 3, "{listed:#}");
    assert_eq!(all[0]["serial"], Value::Null, "{listed:#}");
    assert_eq!(all[1]["serial"], Value::Null, "{listed:#}");
    assert_eq!(all[1]["bytes"].as_u64(), Some(late.len() as u64));
    assert!(all[2]["serial"].is_u64(), "{listed:#}");
    let table = support::stdout(&run(&project, &["backups", "dev", "--versions"], 0));
    let newest = table.lines().nth(2).unwrap();
    assert!(newest.contains("  -  "), "{table}");

    // --limit: the newest N, the first bytes of those only, and how many more there are.
    let args = [
        "backups",
        "dev",
        "--versions",
        "--limit",
        "2",
        "--output",
        "json",
    ];
    let (output, requests) = moto.requests_during(|| run(&project, &args, 0));
    let limited = stdout_json(&output);
    assert_eq!(
        limited["versions"].as_array().unwrap().len(),
        2,
        "{limited:#}"
    );
    assert_eq!(limited["more"], 1, "{limited:#}");
    let reads = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("versionId="))
        .count();
    assert_eq!(reads, 2, "{requests:?}");
    assert_eq!(listed["more"], 0, "{listed:#}");
    let table = support::stdout(&run(
        &project,
        &["backups", "dev", "--versions", "--limit", "1"],
        0,
    ));
    assert!(
        table.contains("2 more versions: --limit 0 to see all"),
        "{table}"
    );
    let unlimited = stdout_json(&run(
        &project,
        &[
            "backups",
            "dev",
            "--versions",
            "--limit",
            "0",
            "--output",
            "json",
        ],
        0,
    ));
    assert_eq!(
        unlimited["versions"].as_array().unwrap().len(),
        3,
        "{unlimited:#}"
    );

    // Restoring the version that is no state: refused, and nothing is left in backups/.
    let version = format!("version:{}", all[0]["id"].as_str().unwrap());
    let output = run(&project, &["restore", "dev", &version, "--yes"], 5);
    assert!(
        stderr(&output).contains("not a Terraform state"),
        "{}",
        stderr(&output)
    );
    let left: Vec<String> = std::fs::read_dir(project.join("state/dev/backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // The state object deleted: its latest version is a delete marker.
    moto.delete_object(BUCKET, KEY);
    let listed = versions(&project);
    let marker = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["deleted"] == true)
        .unwrap_or_else(|| panic!("no delete marker listed: {listed:#}"));
    assert_eq!(marker["serial"], Value::Null);
    let version = format!("version:{}", marker["id"].as_str().unwrap());
    let output = run(&project, &["restore", "dev", &version, "--yes"], 5);
    assert!(
        stderr(&output).contains("is a delete marker"),
        "{}",
        stderr(&output)
    );
    // Nothing was added to the backups for either.
    assert!(!project.join("state/dev/backups/MANIFEST.jsonl").exists());
}

#[test]
fn versions_of_a_local_backend_are_a_usage_error_naming_the_remote_backend_feature() {
    let project = Project::empty();
    project.write("tfenv.toml", "[environments.dev]\n");
    project.write("main.tf", "output \"x\" { value = 1 }\n");
    let output = run(&project, &["backups", "dev", "--versions"], 2);
    let text = stderr(&output);
    assert!(
        text.contains("`dev` uses the local backend: state versions are a remote-backend feature"),
        "{text}"
    );
    assert!(text.contains("tfenv backups dev"), "{text}");
    let output = run(&project, &["restore", "dev", "version:abc", "--yes"], 2);
    assert!(
        stderr(&output).contains("remote-backend feature"),
        "{}",
        stderr(&output)
    );
    // One JSON document on stdout, even for the error.
    let output = run(
        &project,
        &["backups", "dev", "--versions", "--output", "json"],
        2,
    );
    stdout_json(&output);
}

#[test]
fn a_deleted_state_is_restored_from_a_bucket_version_after_the_digest_hint() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = project(&moto);
    deploy(&project, "one");
    deploy(&project, "two");
    let newest = versions(&project)["versions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = manifest_lines(&project);

    // The state object deleted: its latest version is a delete marker, and the lock
    // table still holds the digest of the deleted state.
    moto.delete_object(BUCKET, KEY);
    let digest_item = format!("{BUCKET}/{KEY}-md5");
    assert!(moto.lock_item(TABLE, &digest_item).is_some());
    let version = format!("version:{newest}");

    // terraform refuses to read the (absent) state against that digest: tfenv names the
    // item and the commands, and deletes nothing itself.
    let output = run(&project, &["restore", "dev", &version, "--yes"], 1);
    let text = stderr(&output);
    assert!(text.contains("Stored checksum:"), "{text}");
    assert!(
        text.contains(&format!("`LockID` = `{digest_item}`")),
        "{text}"
    );
    assert!(text.contains(&format!("table `{TABLE}`")), "{text}");
    assert!(text.contains("aws dynamodb delete-item"), "{text}");
    assert!(moto.lock_item(TABLE, &digest_item).is_some());
    // The declined/failed restore leaves no backup of the version behind, and a retry
    // does not add another one.
    assert_eq!(manifest_lines(&project), before);

    // The item removed as the hint says: there is no state now, so any version may be
    // restored (no lineage to mismatch), and no empty backup is taken of the absent state.
    moto.delete_lock_item(TABLE, &digest_item);
    let output = run(
        &project,
        &["restore", "dev", &version, "--yes", "--output", "json"],
        0,
    );
    let report = stdout_json(&output);
    assert_eq!(report["serial_before"], Value::Null, "{report:#}");
    assert_eq!(report["pre_restore_backup"], Value::Null, "{report:#}");
    assert!(!stderr(&output).contains("()"), "{}", stderr(&output));
    let manifest = manifest_lines(&project);
    let added: Vec<Value> = manifest[before.len()..]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(added.len(), 1, "{manifest:?}");
    assert_eq!(added[0]["reason"], format!("bucket-version {newest}"));

    // The state is back: the outputs are the second deploy's, the next plan has no
    // changes, and history records the restore as applied.
    let outputs = stdout_json(&run(&project, &["outputs", "dev", "--output", "json"], 0));
    assert_eq!(outputs["message"]["value"], "two");
    run(&project, &["plan", "dev", "--detailed-exitcode"], 0);
    let history = stdout_json(&run(&project, &["history", "dev", "--output", "json"], 0));
    let text = history.to_string();
    assert!(text.contains("restore"), "{history:#}");
}

fn manifest_lines(project: &Project) -> Vec<String> {
    std::fs::read_to_string(project.join("state/dev/backups/MANIFEST.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn an_environment_with_no_state_has_nothing_to_back_up() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = project(&moto);
    project.write("environments/dev.tfvars", "message = \"one\"\n");
    let output = run(&project, &["backup", "dev"], 0);
    assert!(
        support::stdout(&output).contains("no state yet, nothing to back up"),
        "{}",
        support::stdout(&output)
    );
    assert!(manifest_lines(&project).is_empty());
}

#[test]
fn status_reports_a_deleted_state_whose_last_deploy_applied() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = project(&moto);
    deploy(&project, "one");
    run(&project, &["status", "dev"], 0);

    moto.delete_object(BUCKET, KEY);
    let report = stdout_json(&run(&project, &["status", "dev", "--output", "json"], 6));
    let problems = report["environments"][0]["problems"].as_array().unwrap();
    let missing = problems
        .iter()
        .find(|p| p["code"] == "state-missing")
        .unwrap_or_else(|| panic!("no state-missing problem: {report:#}"));
    let message = missing["message"].as_str().unwrap();
    assert!(message.contains("no state in the backend"), "{message}");
    assert!(
        message.contains("tfenv backups dev --versions"),
        "{message}"
    );
    let text = support::stdout(&run(&project, &["status", "dev"], 6));
    assert!(text.contains("no state in the backend"), "{text}");
}
