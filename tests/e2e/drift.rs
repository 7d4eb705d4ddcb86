//! `tfenv drift` with the real terraform and the real test provider (`tfenvtest_file`, a
//! file on disk whose Read returns the file): editing the file is real `update` drift,
//! deleting it real `delete` drift, changing the code without applying is pending work.
//! On the local backend and on s3 in a moto server (which shows that no state lock is
//! taken and no state written).

use std::process::Output;

use serde_json::Value;

use crate::support::moto::Moto;
use crate::support::provider::{self, SECRET};
use crate::support::{Project, expecting, output_text, stdout, stdout_json, terraform};

const PROD: &[&str] = &["--yes", "--confirm", "production"];

fn run(project: &Project, args: &[&str], code: i32) -> Output {
    expecting(project.run_with(terraform(), args), code)
}

fn deploy(project: &Project, env: &str) {
    let mut args = vec!["deploy", env];
    match env {
        "production" => args.extend(PROD),
        _ => args.push("--yes"),
    }
    run(project, &args, 0);
}

fn drift_json(project: &Project, envs: &[&str], code: i32) -> (Value, Output) {
    let mut args = vec!["drift"];
    args.extend(envs);
    args.extend(["--output", "json"]);
    let output = run(project, &args, code);
    (stdout_json(&output), output)
}

fn entry<'a>(doc: &'a Value, env: &str) -> &'a Value {
    doc["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == env)
        .unwrap_or_else(|| panic!("no entry for {env} in {doc:#}"))
}

/// `(address, action, attributes)` of each drifted resource of `env`.
fn drifted(doc: &Value, env: &str) -> Vec<(String, String, Vec<String>)> {
    entry(doc, env)["drifted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["address"].as_str().unwrap().to_string(),
                d["action"].as_str().unwrap().to_string(),
                d["attributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

/// No value of `secrets` in the run's output, drift.json or history of any environment.
fn assert_never_shown(project: &Project, outputs: &[&Output], secrets: &[&str]) {
    let mut texts: Vec<(String, String)> = outputs
        .iter()
        .map(|o| ("output".to_string(), output_text(o)))
        .collect();
    for env in ["dev", "staging", "production"] {
        for file in ["drift.json", "history.jsonl"] {
            let rel = format!("state/{env}/{file}");
            texts.push((rel.clone(), project.read_or_empty(&rel)));
        }
    }
    for (what, text) in texts {
        for secret in secrets {
            assert!(!text.contains(secret), "`{secret}` in {what}:\n{text}");
        }
    }
}

#[test]
fn an_edited_file_is_update_drift_by_tier_the_secret_never_shows_and_a_deploy_clears_it() {
    let project = provider::demo();
    deploy(&project, "dev");
    deploy(&project, "production");
    let (doc, clean) = drift_json(&project, &["dev", "production"], 0);
    assert_eq!(entry(&doc, "dev")["result"], "in-sync", "{doc:#}");
    assert_eq!(entry(&doc, "production")["result"], "in-sync");
    assert_eq!(doc["meaning"], "in-sync");

    // Someone edits both files by hand; in production the secret too.
    std::fs::write(provider::managed_file(&project, "dev"), "edited by hand").unwrap();
    let prod_file = provider::managed_file(&project, "production");
    std::fs::write(&prod_file, "edited by hand").unwrap();
    let new_secret = "hand-written-secret-7c1d";
    std::fs::write(provider::secret_file(&prod_file), new_secret).unwrap();

    let (doc, drifted_run) = drift_json(&project, &["dev", "production"], 3);
    assert_eq!(
        drifted(&doc, "dev"),
        [(
            "tfenvtest_file.app".to_string(),
            "update".to_string(),
            vec!["content".to_string()]
        )],
        "{doc:#}"
    );
    assert_eq!(entry(&doc, "dev")["severity"], "low");
    assert_eq!(
        drifted(&doc, "production"),
        [(
            "tfenvtest_file.app".to_string(),
            "update".to_string(),
            vec!["content".to_string(), "secret".to_string()]
        )],
        "{doc:#}"
    );
    assert_eq!(entry(&doc, "production")["severity"], "high");
    // Setting the files back is the drift's undo, not pending work.
    assert_eq!(entry(&doc, "production")["pending"], serde_json::json!([]));
    assert_eq!(doc["severity"], "high");
    let human = run(&project, &["drift", "dev", "production"], 3);
    let out = stdout(&human);
    assert!(
        out.contains("production: update tfenvtest_file.app (content, secret) [high]"),
        "{out}"
    );
    assert!(
        out.find("production ") < out.find("dev "),
        "worst first:\n{out}"
    );
    let record = project.last_history("production");
    assert_eq!(record["command"], "drift");
    assert_eq!(record["result"], "drifted");
    assert_eq!(record["drift"]["severity"], "high");
    let report: Value = serde_json::from_str(&project.read("state/production/drift.json")).unwrap();
    assert_eq!(report["result"], "drifted");
    assert_never_shown(
        &project,
        &[&clean, &drifted_run, &human],
        &[SECRET, new_secret, "edited by hand"],
    );
    // The drift check changed nothing: the files are still as edited.
    assert_eq!(
        std::fs::read_to_string(&prod_file).unwrap(),
        "edited by hand"
    );

    // A deploy puts the code back: in sync again, exit 0.
    deploy(&project, "production");
    let (doc, _) = drift_json(&project, &["production"], 0);
    assert_eq!(entry(&doc, "production")["result"], "in-sync", "{doc:#}");
    assert_eq!(entry(&doc, "production")["severity"], Value::Null);
}

#[test]
fn a_deleted_file_is_delete_drift_critical_in_production_high_in_staging() {
    let project = provider::demo();
    deploy(&project, "staging");
    deploy(&project, "production");
    for env in ["staging", "production"] {
        std::fs::remove_file(provider::managed_file(&project, env)).unwrap();
    }
    let (doc, output) = drift_json(&project, &["staging", "production"], 3);
    for (env, severity) in [("staging", "high"), ("production", "critical")] {
        assert_eq!(
            drifted(&doc, env),
            [(
                "tfenvtest_file.app".to_string(),
                "delete".to_string(),
                Vec::new()
            )],
            "{doc:#}"
        );
        assert_eq!(entry(&doc, env)["severity"], severity);
        // Creating it again as it was is the undo of the drift, not pending work.
        assert_eq!(
            entry(&doc, env)["pending"],
            serde_json::json!([]),
            "{doc:#}"
        );
    }
    assert_eq!(doc["severity"], "critical");
    assert_never_shown(&project, &[&output], &[SECRET]);
    assert!(!provider::managed_file(&project, "production").exists());
}

#[test]
fn code_changed_without_a_deploy_is_pending_not_drift_and_exits_0() {
    let project = provider::demo();
    deploy(&project, "dev");
    let tfvars = project.read("environments/dev.tfvars");
    project.write(
        "environments/dev.tfvars",
        &format!("{tfvars}\napp_content = \"v2\"\n"),
    );
    let (doc, _) = drift_json(&project, &["dev"], 0);
    let dev = entry(&doc, "dev");
    assert_eq!(dev["result"], "in-sync", "{doc:#}");
    assert_eq!(dev["drifted"], serde_json::json!([]));
    assert_eq!(
        dev["pending"],
        serde_json::json!([{"address": "tfenvtest_file.app", "actions": ["update"]}])
    );
    assert_eq!(project.last_history("dev")["drift"]["pending"], 1);
    // The file was not touched.
    assert_eq!(
        std::fs::read_to_string(provider::managed_file(&project, "dev")).unwrap(),
        provider::CONTENT
    );
}

#[test]
fn a_bad_var_file_fails_its_check_with_exit_1_and_the_others_are_still_reported() {
    let project = provider::demo();
    deploy(&project, "dev");
    deploy(&project, "staging");
    std::fs::write(provider::managed_file(&project, "dev"), "edited").unwrap();
    project.write("environments/staging.tfvars", "environment = \n");
    let (doc, output) = drift_json(&project, &["--all"], 1);
    assert_eq!(doc["exit_code"], 1, "a failure wins over drift");
    assert_eq!(entry(&doc, "dev")["result"], "drifted");
    assert_eq!(entry(&doc, "staging")["result"], "failed");
    // Never deployed: everything is pending, nothing drifted.
    assert_eq!(entry(&doc, "production")["result"], "in-sync");
    assert_eq!(
        entry(&doc, "production")["pending"][0]["actions"],
        serde_json::json!(["create"])
    );
    let report: Value = serde_json::from_str(&project.read("state/staging/drift.json")).unwrap();
    assert_eq!(report["result"], "failed");
    assert!(
        report["error"].as_str().unwrap().contains("staging.tfvars"),
        "{report}"
    );
    assert_eq!(project.last_history("staging")["result"], "failed");
    assert_never_shown(&project, &[&output], &[SECRET]);
}

#[test]
fn drift_on_s3_takes_no_lock_writes_no_state_and_shares_its_record() {
    const BUCKET: &str = "tfstate-drift";
    const TABLE: &str = "tfstate-drift-locks";
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = provider::demo();
    project.write(
        "examples/quickstart/main.tf",
        &provider::module().replace("backend \"local\" {}", "backend \"s3\" {}"),
    );
    for env in ["dev", "staging", "production"] {
        project.write(
            &format!("environments/{env}.backend.conf"),
            &moto.backend_conf(BUCKET, &format!("{env}/terraform.tfstate"), TABLE),
        );
    }
    let toml = project.read("tfenv.toml");
    project.write(
        "tfenv.toml",
        &toml.replace("[project]\n", "[project]\nledger = \"backend\"\n"),
    );
    deploy(&project, "production");
    let state_before = moto.object_text(BUCKET, "production/terraform.tfstate");
    std::fs::remove_file(provider::managed_file(&project, "production")).unwrap();

    let ((doc, output), requests) =
        moto.requests_during(|| drift_json(&project, &["production"], 3));
    assert_eq!(
        drifted(&doc, "production"),
        [(
            "tfenvtest_file.app".to_string(),
            "delete".to_string(),
            Vec::new()
        )],
        "{doc:#}"
    );
    assert_eq!(entry(&doc, "production")["severity"], "critical");
    assert!(
        requests
            .iter()
            .any(|r| r.path.contains("production/terraform.tfstate")),
        "the check read the state from moto: {requests:?}"
    );
    let writes: Vec<String> = requests
        .iter()
        .filter(|r| {
            matches!(
                r.dynamodb_operation.as_deref(),
                Some("PutItem" | "DeleteItem" | "UpdateItem")
            ) || (matches!(r.method.as_str(), "PUT" | "POST" | "DELETE")
                && r.path
                    .starts_with(&format!("/{BUCKET}/production/terraform.tfstate"))
                && !r.path.contains(".tfenv/"))
        })
        .map(|r| r.to_string())
        .collect();
    assert!(
        writes.is_empty(),
        "the drift check wrote the lock or the state: {writes:?}"
    );
    assert_eq!(
        moto.object_text(BUCKET, "production/terraform.tfstate"),
        state_before
    );
    // The drift record went to the shared ledger like a deploy's.
    let shared = moto.list_keys(BUCKET, "production/terraform.tfstate.tfenv/history/");
    let texts: Vec<String> = shared
        .iter()
        .map(|key| moto.object_text(BUCKET, key))
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| serde_json::from_str::<Value>(t)
                .is_ok_and(|record| record["command"] == "drift")),
        "{shared:?}"
    );
    assert_never_shown(&project, &[&output], &[SECRET]);
    for text in texts {
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[test]
fn terraform_1_0_reports_the_same_drift() {
    let project = provider::demo();
    let tf = crate::support::terraform_1_0();
    let deploy = |env: &str, extra: &[&str]| {
        let mut args = vec!["deploy", env];
        args.extend(extra);
        expecting(project.run_with(&tf, &args), 0);
    };
    deploy("dev", &["--yes"]);
    deploy("production", PROD);
    std::fs::write(provider::managed_file(&project, "dev"), "edited").unwrap();
    std::fs::remove_file(provider::managed_file(&project, "production")).unwrap();
    let output = expecting(
        project.run_with(&tf, &["drift", "dev", "production", "--output", "json"]),
        3,
    );
    let doc = stdout_json(&output);
    assert_eq!(entry(&doc, "dev")["terraform_version"], "1.0.3", "{doc:#}");
    assert_eq!(
        drifted(&doc, "dev"),
        [(
            "tfenvtest_file.app".to_string(),
            "update".to_string(),
            vec!["content".to_string()]
        )],
        "{doc:#}"
    );
    assert_eq!(
        entry(&doc, "dev")["pending"],
        serde_json::json!([]),
        "{doc:#}"
    );
    assert_eq!(
        drifted(&doc, "production"),
        [(
            "tfenvtest_file.app".to_string(),
            "delete".to_string(),
            Vec::new()
        )],
        "{doc:#}"
    );
    assert_eq!(entry(&doc, "production")["severity"], "critical");
    assert_eq!(
        entry(&doc, "production")["pending"],
        serde_json::json!([]),
        "{doc:#}"
    );
    assert_never_shown(&project, &[&output], &[SECRET]);
}
