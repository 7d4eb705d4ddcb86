//! `tfenv migrate` and the init guard on a moved backend, on the real terraform (1.11
//! and 1.0.3), local → local and local → s3 on a moto server, with the test provider.

use std::path::Path;

use serde_json::Value;

use crate::support::moto::Moto;
use crate::support::provider;
use crate::support::{self, Project, expecting, stderr, stdout_json};

const BUCKET: &str = "tfstate-migrate";
const TABLE: &str = "tf-locks";
const KEY: &str = "dev/terraform.tfstate";
const PROD: &[&str] = &["--yes", "--confirm", "production"];

fn state_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// lineage, serial and resource count of a state document.
fn header(state: &Value) -> (String, u64, usize) {
    (
        state["lineage"].as_str().unwrap().to_string(),
        state["serial"].as_u64().unwrap(),
        state["resources"].as_array().unwrap().len(),
    )
}

fn old_state(project: &Project, env: &str) -> std::path::PathBuf {
    project.join(&format!("state/{env}/terraform.tfstate"))
}

fn listed_pre_migrate_backups(project: &Project, tf: &Path, env: &str) -> Vec<Value> {
    let listed = stdout_json(&expecting(
        project.run_with(tf, &["backups", env, "--output", "json"]),
        0,
    ));
    listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["reason"] == "pre-migrate")
        .cloned()
        .collect()
}

fn local_to_local(tf: &Path) {
    let project = provider::demo();
    expecting(project.run_with(tf, &["deploy", "dev", "--yes"]), 0);
    let old_bytes = std::fs::read(old_state(&project, "dev")).unwrap();
    let old = header(&state_json(&old_state(&project, "dev")));
    assert_eq!(old.2, 1, "the demo has one resource");

    project.write(
        "environments/dev.backend.conf",
        "path = \"../../state/dev/moved/terraform.tfstate\"\n",
    );
    let moved = project.join("state/dev/moved/terraform.tfstate");

    // A plain init (and a plan, which inits when needed) stops, naming migrate.
    for args in [&["init", "dev"][..], &["plan", "dev"][..]] {
        let output = expecting(project.run_with(tf, args), 5);
        let text = stderr(&output);
        assert!(text.contains("tfenv migrate dev"), "{text}");
        assert!(text.contains("tfenv init dev --reconfigure"), "{text}");
        assert!(text.contains("state/dev/terraform.tfstate"), "{text}");
        assert!(!text.contains("Backend configuration changed"), "{text}");
        assert!(!moved.exists());
    }

    let output = expecting(
        project.run_with(tf, &["migrate", "dev", "--yes", "--output", "json"]),
        0,
    );
    let report = stdout_json(&output);
    assert_eq!(report["from"]["backend"], "local", "{report}");
    assert_eq!(report["from"]["location"], "state/dev/terraform.tfstate");
    assert_eq!(
        report["to"]["location"],
        "state/dev/moved/terraform.tfstate"
    );
    assert_eq!(report["lineage"], old.0.as_str());
    assert_eq!(report["serial_before"], old.1);
    assert_eq!(report["resources"], 1);
    assert_eq!(report["old_state_left"], true);
    assert_eq!(report["backup"]["reason"], "pre-migrate");

    // Landed: same lineage, serial and resources; the old state left as it was.
    let new = header(&state_json(&moved));
    assert_eq!((new.0.as_str(), new.2), (old.0.as_str(), old.2));
    assert!(new.1 >= old.1);
    assert_eq!(
        std::fs::read(old_state(&project, "dev")).unwrap(),
        old_bytes
    );

    // The folder terraform created for the new state is private, as tfenv's own.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(project.join("state/dev/moved"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "state/dev/moved is {mode:o}");

    // The backup of the old state is listed, and history has the move.
    let backups = listed_pre_migrate_backups(&project, tf, "dev");
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(backups[0]["lineage"], old.0.as_str());
    let record = project.last_history("dev");
    assert_eq!(record["command"], "migrate", "{record}");
    assert_eq!(record["result"], "applied");
    assert_eq!(
        record["migrated"]["from"]["location"],
        "state/dev/terraform.tfstate"
    );
    assert_eq!(
        record["migrated"]["to"]["location"],
        "state/dev/moved/terraform.tfstate"
    );

    // The environment works at its new place: nothing to change.
    let output = expecting(
        project.run_with(tf, &["plan", "dev", "--output", "json"]),
        0,
    );
    assert_eq!(
        stdout_json(&output)["result"],
        "no-changes",
        "{}",
        stdout_json(&output)
    );
}

#[test]
fn migrate_local_to_local_moves_lineage_serial_and_resources_and_leaves_the_old_state() {
    local_to_local(&support::terraform());
}

#[test]
fn migrate_local_to_local_on_terraform_1_0() {
    local_to_local(&support::terraform_1_0());
}

#[test]
fn migrate_refuses_a_target_holding_resources_unless_forced() {
    let tf = support::terraform();
    let project = provider::demo();
    expecting(project.run_with(&tf, &["deploy", "dev", "--yes"]), 0);
    expecting(project.run_with(&tf, &["deploy", "staging", "--yes"]), 0);
    let dev_before = std::fs::read(old_state(&project, "dev")).unwrap();
    let staging_before = std::fs::read(old_state(&project, "staging")).unwrap();
    // dev pointed at staging's state by mistake.
    project.write(
        "environments/dev.backend.conf",
        "path = \"../../state/staging/terraform.tfstate\"\n",
    );
    let output = expecting(project.run_with(&tf, &["migrate", "dev", "--yes"]), 5);
    let text = stderr(&output);
    assert!(
        text.contains("already holds a state with 1 resource(s)"),
        "{text}"
    );
    assert!(text.contains("--force"), "{text}");
    // Nothing changed on either side, and no backup was taken.
    assert_eq!(
        std::fs::read(old_state(&project, "dev")).unwrap(),
        dev_before
    );
    assert_eq!(
        std::fs::read(old_state(&project, "staging")).unwrap(),
        staging_before
    );
    assert!(listed_pre_migrate_backups(&project, &tf, "dev").is_empty());

    let output = expecting(
        project.run_with(
            &tf,
            &["migrate", "dev", "--force", "--yes", "--output", "json"],
        ),
        0,
    );
    let report = stdout_json(&output);
    let staging_lineage = header(&serde_json::from_slice(&staging_before).unwrap()).0;
    assert_eq!(
        report["overwritten"]["lineage"],
        staging_lineage.as_str(),
        "{report}"
    );
    let dev_lineage = header(&serde_json::from_slice(&dev_before).unwrap()).0;
    assert_eq!(
        header(&state_json(&old_state(&project, "staging"))).0,
        dev_lineage
    );
    assert_eq!(
        std::fs::read(old_state(&project, "dev")).unwrap(),
        dev_before
    );
}

#[test]
fn init_reconfigure_after_a_backend_move_is_confirmed_by_tier() {
    let tf = support::terraform();
    let project = provider::demo();
    let mut deploy = vec!["deploy", "production"];
    deploy.extend(PROD);
    expecting(project.run_with(&tf, &deploy), 0);
    let before = std::fs::read(old_state(&project, "production")).unwrap();
    project.write(
        "environments/production.backend.conf",
        "path = \"../../state/production/elsewhere.tfstate\"\n",
    );
    for args in [
        &["init", "production", "--reconfigure"][..],
        &["init", "production", "--reconfigure", "--yes"][..],
    ] {
        let output = expecting(project.run_with(&tf, args), 5);
        let text = stderr(&output);
        assert!(
            text.contains("abandon the state at `state/production/terraform.tfstate`"),
            "{text}"
        );
        assert!(text.contains("--confirm production"), "{text}");
        assert!(!project.join("state/production/elsewhere.tfstate").exists());
    }
    expecting(
        project.run_with(
            &tf,
            &[
                "init",
                "production",
                "--reconfigure",
                "--yes",
                "--confirm",
                "production",
            ],
        ),
        0,
    );
    // The old state is abandoned, not removed.
    assert_eq!(
        std::fs::read(old_state(&project, "production")).unwrap(),
        before
    );
}

fn s3_conf_1_0(moto: &Moto) -> String {
    let endpoint = moto.endpoint();
    format!(
        r#"bucket            = "{BUCKET}"
key               = "{KEY}"
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
    )
}

/// local → s3: the root module's backend block and dev's backend config changed. With
/// `fresh_checkout`, the data dir is gone too and the old config comes from `--from`.
fn local_to_s3(tf: &Path, conf: impl Fn(&Moto) -> String, fresh_checkout: bool) {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let project = provider::demo();
    expecting(project.run_with(tf, &["deploy", "dev", "--yes"]), 0);
    let old_bytes = std::fs::read(old_state(&project, "dev")).unwrap();
    let old = header(&state_json(&old_state(&project, "dev")));
    let old_conf = project.read("environments/dev.backend.conf");
    project.write("old-dev.backend.conf", &old_conf);

    // dev moves to s3; staging and production stay local (a backend block of their own).
    project.write(
        "examples/quickstart/main.tf",
        &provider::module_with_backend("s3"),
    );
    project.write("environments/dev.backend.conf", &conf(&moto));
    let mut migrate = vec!["migrate", "dev", "--yes", "--output", "json"];
    if fresh_checkout {
        std::fs::remove_dir_all(project.join("examples/quickstart/.terraform/tfenv/dev")).unwrap();
        std::fs::remove_file(project.join("examples/quickstart/.terraform/tfenv/dev.fingerprint"))
            .unwrap();
        // Without a record tfenv does not know where the state was.
        let output = expecting(project.run_with(tf, &["migrate", "dev", "--yes"]), 2);
        assert!(stderr(&output).contains("--from"), "{}", stderr(&output));
        migrate.extend(["--from", "old-dev.backend.conf", "--from-type", "local"]);
    } else {
        let output = expecting(project.run_with(tf, &["init", "dev"]), 5);
        let text = stderr(&output);
        assert!(text.contains("tfenv migrate dev"), "{text}");
        assert!(text.contains(&format!("s3://{BUCKET}/{KEY}")), "{text}");
        assert!(
            !text.contains("secret_key") && !text.contains("\"test\""),
            "{text}"
        );
    }
    assert!(!moto.object_exists(BUCKET, KEY));

    let output = expecting(project.run_with(tf, &migrate), 0);
    let report = stdout_json(&output);
    assert_eq!(report["to"]["backend"], "s3", "{report}");
    assert_eq!(report["to"]["location"], format!("s3://{BUCKET}/{KEY}"));
    let landed: Value = serde_json::from_str(&moto.object_text(BUCKET, KEY)).unwrap();
    let new = header(&landed);
    assert_eq!((new.0.as_str(), new.2), (old.0.as_str(), old.2));
    assert!(new.1 >= old.1);
    assert_eq!(
        std::fs::read(old_state(&project, "dev")).unwrap(),
        old_bytes
    );
    assert_eq!(listed_pre_migrate_backups(&project, tf, "dev").len(), 1);
    let record = project.last_history("dev");
    assert_eq!(record["migrated"]["to"]["backend"], "s3", "{record}");
    let text = std::fs::read_to_string(project.join("state/dev/history.jsonl")).unwrap();
    assert!(
        !text.contains("secret_key") && !text.contains("access_key"),
        "{text}"
    );

    let output = expecting(
        project.run_with(tf, &["status", "dev", "--output", "json"]),
        0,
    );
    let status = stdout_json(&output);
    assert_eq!(
        status["environments"][0]["state"]["resources"], 1,
        "{status}"
    );
}

#[test]
fn migrate_local_to_s3_on_moto() {
    local_to_s3(
        &support::terraform(),
        |moto| moto.backend_conf(BUCKET, KEY, TABLE),
        false,
    );
}

#[test]
fn migrate_local_to_s3_from_a_fresh_checkout_on_terraform_1_0() {
    local_to_s3(&support::terraform_1_0(), s3_conf_1_0, true);
}

fn backups_with_reason(project: &Project, tf: &Path, env: &str, reason: &str) -> Vec<Value> {
    let listed = stdout_json(&expecting(
        project.run_with(tf, &["backups", env, "--output", "json"]),
        0,
    ));
    listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["reason"] == reason)
        .cloned()
        .collect()
}

#[test]
fn migrate_from_another_environments_backend_config_is_refused_naming_that_environment() {
    let tf = support::terraform();
    let project = provider::demo();
    expecting(project.run_with(&tf, &["deploy", "dev", "--yes"]), 0);
    expecting(project.run_with(&tf, &["deploy", "staging", "--yes"]), 0);
    let staging_before = std::fs::read(old_state(&project, "staging")).unwrap();
    project.write(
        "environments/dev.backend.conf",
        "path = \"../../state/dev-moved/terraform.tfstate\"\n",
    );
    let moved = project.join("state/dev-moved/terraform.tfstate");
    let from = project.join("environments/staging.backend.conf");
    let output = expecting(
        project.run_with(
            &tf,
            &["migrate", "dev", "--from", from.to_str().unwrap(), "--yes"],
        ),
        5,
    );
    let text = stderr(&output);
    assert!(text.contains("state of environment `staging`"), "{text}");
    assert!(text.contains("still holds a state"), "{text}");
    assert!(text.contains("lineage of environment `staging`"), "{text}");
    assert!(text.contains("--force"), "{text}");
    assert!(!moved.exists());

    // The same state copied elsewhere: its lineage still gives it away.
    project.write(
        "elsewhere/copy.tfstate",
        &String::from_utf8(staging_before.clone()).unwrap(),
    );
    project.write(
        "elsewhere/copy.conf",
        &format!(
            "path = \"{}\"\n",
            project.join("elsewhere/copy.tfstate").display()
        ),
    );
    let from = project.join("elsewhere/copy.conf");
    let output = expecting(
        project.run_with(
            &tf,
            &["migrate", "dev", "--from", from.to_str().unwrap(), "--yes"],
        ),
        5,
    );
    let text = stderr(&output);
    assert!(text.contains("lineage of environment `staging`"), "{text}");
    assert!(!moved.exists());
    assert_eq!(
        std::fs::read(old_state(&project, "staging")).unwrap(),
        staging_before
    );
}

#[test]
fn migrate_force_backs_up_the_target_state_it_overwrites() {
    let tf = support::terraform();
    let project = provider::demo();
    expecting(project.run_with(&tf, &["deploy", "dev", "--yes"]), 0);
    expecting(project.run_with(&tf, &["deploy", "staging", "--yes"]), 0);
    let staging_before = std::fs::read(old_state(&project, "staging")).unwrap();
    let staging_lineage = header(&serde_json::from_slice(&staging_before).unwrap()).0;
    project.write(
        "environments/dev.backend.conf",
        "path = \"../../state/staging/terraform.tfstate\"\n",
    );
    expecting(
        project.run_with(&tf, &["migrate", "dev", "--force", "--yes"]),
        0,
    );
    let kept = backups_with_reason(&project, &tf, "dev", "pre-migrate-target");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["lineage"], staging_lineage.as_str());
    let file = project.join(&format!(
        "state/dev/backups/{}",
        kept[0]["file"].as_str().unwrap()
    ));
    assert_eq!(std::fs::read(file).unwrap(), staging_before);
}

#[test]
fn a_moved_backend_whose_old_place_holds_no_state_is_reconfigured_without_terraforms_error() {
    let tf = support::terraform();
    let project = provider::demo();
    // Initialized, never deployed: the old place holds nothing.
    expecting(project.run_with(&tf, &["init", "dev"]), 0);
    project.write(
        "environments/dev.backend.conf",
        "path = \"../../state/dev/fresh/terraform.tfstate\"\n",
    );
    let output = expecting(project.run_with(&tf, &["plan", "dev"]), 0);
    let text = stderr(&output);
    assert!(text.contains("holds no state"), "{text}");
    assert!(!text.contains("Backend configuration changed"), "{text}");

    // The same place written differently, with a state there.
    expecting(project.run_with(&tf, &["deploy", "dev", "--yes"]), 0);
    project.write(
        "environments/dev.backend.conf",
        "path = \"../../state/dev/fresh/./terraform.tfstate\"\n",
    );
    let output = expecting(
        project.run_with(&tf, &["plan", "dev", "--output", "json"]),
        0,
    );
    assert_eq!(stdout_json(&output)["result"], "no-changes");
    let text = stderr(&output);
    assert!(!text.contains("Backend configuration changed"), "{text}");
}

#[test]
fn init_reconfigure_abandoning_a_state_backs_it_up_first() {
    let tf = support::terraform();
    let project = provider::demo();
    expecting(project.run_with(&tf, &["deploy", "dev", "--yes"]), 0);
    let before = std::fs::read(old_state(&project, "dev")).unwrap();
    project.write(
        "environments/dev.backend.conf",
        "path = \"../../state/dev/elsewhere.tfstate\"\n",
    );
    let output = expecting(
        project.run_with(&tf, &["init", "dev", "--reconfigure", "--yes"]),
        0,
    );
    let text = stderr(&output);
    assert!(
        text.contains("abandoned state at `state/dev/terraform.tfstate` is backed up as"),
        "{text}"
    );
    let kept = backups_with_reason(&project, &tf, "dev", "pre-reconfigure");
    assert_eq!(kept.len(), 1, "{kept:?}");
    let file = project.join(&format!(
        "state/dev/backups/{}",
        kept[0]["file"].as_str().unwrap()
    ));
    assert_eq!(std::fs::read(file).unwrap(), before);
}
