//! What a user reads, as snapshots (see support/snap.rs): the help of tfenv and of every
//! subcommand, the human `status` and plan summary (`envs` is in envs.rs), and every
//! JSON document of docs/json.md, each produced by running the command. A fake terraform
//! stands in where the real one would make the output vary (and a moto server holds the
//! s3 lock that tfenv reads through the AWS SDK): these snapshots are about tfenv's
//! words and shapes. tests/e2e/snapshots.rs has the demo's
//! real plan and deploy.

use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use sha2::Digest;

use crate::support::fake::FakeTerraform;
use crate::support::moto::Moto;
use crate::support::snap::Snapshots;
use crate::support::{Project, expecting, output_text, stdout};

/// A state of the demo's dev as terraform 1.11.4 writes it: two resources, three
/// instances, one output.
const STATE: &str = r#"{"version":4,"terraform_version":"1.11.4","serial":7,"lineage":"6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f","outputs":{"environment":{"value":"dev","type":"string"}},"resources":[{"mode":"managed","type":"terraform_data","name":"web","provider":"provider[\"terraform.io/builtin/terraform\"]","instances":[{"index_key":0,"schema_version":0,"attributes":{"id":"a"}},{"index_key":1,"schema_version":0,"attributes":{"id":"b"}}]},{"mode":"managed","type":"terraform_data","name":"db","provider":"provider[\"terraform.io/builtin/terraform\"]","instances":[{"schema_version":0,"attributes":{"id":"c"}}]}],"check_results":null}"#;

/// A plan with one change of every kind tfenv counts.
const RICH_PLAN: &str = r#"{"format_version":"1.2","resource_changes":[{"address":"terraform_data.new","change":{"actions":["create"]}},{"address":"terraform_data.edit","change":{"actions":["update"]}},{"address":"terraform_data.gone","change":{"actions":["delete"]}},{"address":"terraform_data.swap","change":{"actions":["delete","create"]}},{"address":"terraform_data.renamed","previous_address":"terraform_data.old_name","change":{"actions":["no-op"]}},{"address":"terraform_data.adopted","change":{"actions":["no-op"],"importing":{"id":"i-1"}}},{"address":"terraform_data.dropped","change":{"actions":["forget"]}}],"resource_drift":[{"address":"terraform_data.edit","change":{"actions":["update"]}}],"output_changes":{"endpoint":{"actions":["update"]},"same":{"actions":["no-op"]}}}"#;

/// What `output -json` prints: a plain and a sensitive output.
const OUTPUTS: &str = r#"{"endpoint":{"sensitive":false,"type":"string","value":"https://dev.example.com"},"token":{"sensitive":true,"type":"string","value":"not-a-real-secret"}}"#;

/// The fake terraform of these snapshots: it works, pulls `STATE`, prints `OUTPUTS`.
fn fake(project: &Project) -> std::path::PathBuf {
    FakeTerraform::working()
        .state(STATE)
        .on("output", format!("echo '{OUTPUTS}'"))
        .install(project)
}

/// `tfenv --terraform <tf> <args>`, which must exit `code`.
fn run(project: &Project, tf: &Path, args: &[&str], code: i32) -> Output {
    expecting(project.run_with(tf, args), code)
}

// --- help --------------------------------------------------------------------------------

/// The subcommands `tfenv --help` lists, in its order.
fn subcommands(help: &str) -> Vec<String> {
    help.split("Commands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no `Commands:` in tfenv --help:\n{help}"))
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn help_of_tfenv_and_of_every_subcommand_matches_its_snapshot() {
    let project = Project::empty();
    let snapshots = Snapshots::unfiltered();
    let help = |args: &[&str]| {
        // clap wraps to the terminal's width: a fixed one, whatever runs the tests.
        let output = project
            .tfenv()
            .env("COLUMNS", "100")
            .args(args)
            .output()
            .unwrap();
        stdout(&expecting(output, 0))
    };
    let top = help(&["--help"]);
    snapshots.text("help", &["--help"], &top);
    let commands = subcommands(&top);
    assert!(
        commands.len() >= 17 && commands.iter().any(|c| c == "deploy"),
        "{commands:?}"
    );
    // `help` is clap's help subcommand: `tfenv help` prints the help above.
    for command in commands.iter().filter(|c| *c != "help") {
        let args = [command.as_str(), "--help"];
        snapshots.text(&format!("help-{command}"), &args, &help(&args));
    }
}

// --- human output ------------------------------------------------------------------------

#[test]
fn json_of_envs_matches_its_snapshot() {
    let project = Project::demo();
    let args = ["envs", "--output", "json"];
    let output = expecting(project.tfenv().args(args).output().unwrap(), 0);
    Snapshots::new(&project).json("json-envs", &args, &output);
}

/// The demo with dev deployed (its state written, a backup taken), staging initialized
/// with a state and a lock info file a killed run left, production never initialized.
fn status_project() -> (Project, std::path::PathBuf) {
    let project = Project::demo();
    let tf = fake(&project);
    run(&project, &tf, &["deploy", "dev", "--yes"], 0);
    project.write("state/dev/terraform.tfstate", STATE);
    run(&project, &tf, &["backup", "dev"], 0);
    run(&project, &tf, &["init", "staging"], 0);
    project.write(
        "state/staging/terraform.tfstate",
        &STATE
            .replace("\"serial\":7", "\"serial\":2")
            .replace("6f1c2d3e", "7a2b3c4d"),
    );
    project.write(
        "state/staging/.terraform.tfstate.lock.info",
        &json!({
            "ID": "9db590f1-b6fe-c5f2-2678-8804f089deba", "Operation": "OperationTypeApply",
            "Info": "", "Who": "alice@laptop", "Version": "1.11.4",
            "Created": "2026-11-22T09:14:03.123456Z", "Path": "state/staging/terraform.tfstate"
        })
        .to_string(),
    );
    (project, tf)
}

#[test]
fn status_in_human_and_json_matches_its_snapshots() {
    let (project, tf) = status_project();
    let snapshots = Snapshots::new(&project);
    let output = run(&project, &tf, &["status"], 6);
    snapshots.stdout("status", &["status"], &output);
    let args = ["status", "--output", "json"];
    let output = run(&project, &tf, &args, 6);
    snapshots.json("json-status", &args, &output);
}

#[test]
fn plan_summary_of_every_kind_of_change_matches_its_snapshots() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .on("show", format!("echo '{RICH_PLAN}'"))
        .install(&project);
    let snapshots = Snapshots::new(&project);
    let output = run(&project, &tf, &["plan", "dev"], 0);
    snapshots.stdout("plan-summary", &["plan", "dev"], &output);
    let args = ["plan", "dev", "--output", "json"];
    let output = run(&project, &tf, &args, 0);
    snapshots.json("json-plan-every-change", &args, &output);
}

// --- JSON documents ----------------------------------------------------------------------

#[test]
fn json_of_version_and_errors_matches_its_snapshots() {
    let project = Project::demo();
    let mut snapshots = Snapshots::new(&project);
    snapshots.literal(
        &format!(r#""version": "{}""#, env!("CARGO_PKG_VERSION")),
        r#""version": "[VERSION]""#,
    );
    for (name, args, code) in [
        ("json-version", &["--version", "--output", "json"][..], 0),
        ("json-error", &["init", "prodd", "--output", "json"], 2),
        ("json-error-usage", &["deploy", "--output", "json"], 2),
    ] {
        let output = expecting(project.tfenv().args(args).output().unwrap(), code);
        snapshots.json(name, args, &output);
    }
}

#[test]
fn json_of_init_plan_deploy_refresh_and_outputs_matches_its_snapshots() {
    let project = Project::demo();
    let tf = fake(&project);
    let snapshots = Snapshots::new(&project);
    let steps: [(&str, &[&str], i32); 7] = [
        ("json-init", &["init", "dev", "--output", "json"], 0),
        ("json-init-skipped", &["init", "dev", "--output", "json"], 0),
        (
            "json-plan",
            &["plan", "dev", "--detailed-exitcode", "--output", "json"],
            3,
        ),
        (
            "json-deploy",
            &["deploy", "dev", "--yes", "--output", "json"],
            0,
        ),
        (
            "json-deploy-production",
            &[
                "deploy",
                "production",
                "--yes",
                "--confirm",
                "production",
                "--output",
                "json",
            ],
            0,
        ),
        (
            "json-refresh",
            &["refresh", "dev", "--yes", "--output", "json"],
            0,
        ),
        ("json-outputs", &["outputs", "dev", "--output", "json"], 0),
    ];
    for (name, args, code) in steps {
        let output = run(&project, &tf, args, code);
        snapshots.json(name, args, &output);
    }
}

#[test]
fn json_of_a_deploy_that_failed_during_apply_matches_its_snapshot() {
    let project = Project::demo();
    let tf = FakeTerraform::working()
        .state(STATE)
        .on("apply", "echo 'Error: quota exceeded' >&2; exit 1")
        .install(&project);
    let snapshots = Snapshots::new(&project);
    // staging backs up before it applies: the failed run's document names the backup,
    // the plan's summary and the log, as its history record does.
    let args = &["deploy", "staging", "--yes", "--log", "--output", "json"];
    let output = run(&project, &tf, args, 1);
    snapshots.json("json-deploy-failed", args, &output);
}

/// A backup of dev's `STATE` with serial `serial`, written and listed in the manifest
/// as `tfenv backup` does, taken on 2026-11-`day`.
fn add_backup(project: &Project, day: u32, serial: u32, reason: &str) -> String {
    let name = format!("terraform.tfstate.202611{day:02}-120000");
    let state = STATE.replace("\"serial\":7", &format!("\"serial\":{serial}"));
    project.write(&format!("state/dev/backups/{name}"), &state);
    let line = json!({
        "file": name, "sha256": hex::encode(sha2::Sha256::digest(state.as_bytes())),
        "bytes": state.len(), "serial": serial, "lineage": "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        "terraform_version": "1.11.4", "created": format!("2026-11-{day:02}T12:00:00Z"),
        "reason": reason
    });
    let manifest = project.join("state/dev/backups/MANIFEST.jsonl");
    let mut text = std::fs::read_to_string(&manifest).unwrap_or_default();
    text.push_str(&format!("{line}\n"));
    std::fs::write(&manifest, text).unwrap();
    name
}

#[test]
fn json_of_backup_backups_verify_prune_restore_and_history_matches_its_snapshots() {
    let project = Project::demo();
    let tf = fake(&project);
    let snapshots = Snapshots::new(&project);
    // Four backups, and a deploy whose history names the oldest: the last known good.
    let first = add_backup(&project, 1, 3, "pre-deploy");
    for day in 2..=4 {
        add_backup(&project, day, 3 + day, "manual");
    }
    run(&project, &tf, &["deploy", "dev", "--yes"], 0);
    let history = project.read("state/dev/history.jsonl");
    let mut record: serde_json::Value = serde_json::from_str(history.trim_end()).unwrap();
    record["backup"] = first.into();
    project.write("state/dev/history.jsonl", &format!("{record}\n"));

    let steps: [(&str, &[&str]); 6] = [
        ("json-backups", &["backups", "dev", "--output", "json"]),
        ("json-verify", &["verify", "dev", "--output", "json"]),
        (
            "json-prune",
            &["prune", "dev", "--keep", "2", "--yes", "--output", "json"],
        ),
        ("json-backup", &["backup", "dev", "--output", "json"]),
        (
            "json-restore",
            &["restore", "dev", "latest", "--yes", "--output", "json"],
        ),
        ("json-history", &["history", "dev", "--output", "json"]),
    ];
    for (name, args) in steps {
        let output = run(&project, &tf, args, 0);
        snapshots.json(name, args, &output);
    }
}

/// The lock ID of alice's lock in `s3_locked_project`.
const ALICE_LOCK_ID: &str = "9db590f1-b6fe-c5f2-2678-8804f089deba";
const LOCK_TABLE: &str = "tf-locks";
const LOCK_PATH: &str = "tfstate/dev/terraform.tfstate";

/// A dev environment on the s3 backend of `moto`, whose DynamoDB lock alice holds. The
/// fake terraform's `force-unlock` writes `unlock-asked` and waits for `unlock-done`:
/// `release_on_request` removes the item between the two.
fn s3_locked_project(moto: &Moto) -> (Project, std::path::PathBuf) {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[environments.dev]\nbackend_config = \"environments/dev.backend.conf\"\n",
    );
    project.write("main.tf", "terraform {\n  backend \"s3\" {}\n}\n");
    moto.create_bucket("tfstate");
    moto.create_lock_table(LOCK_TABLE);
    project.write(
        "environments/dev.backend.conf",
        &moto.backend_conf("tfstate", "dev/terraform.tfstate", LOCK_TABLE),
    );
    let created = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let info = json!({
        "ID": ALICE_LOCK_ID, "Operation": "OperationTypeApply",
        "Info": "", "Who": "alice@laptop", "Version": "1.11.4", "Created": created,
        "Path": LOCK_PATH
    });
    moto.put_lock_item(LOCK_TABLE, LOCK_PATH, &info.to_string());
    let tf = FakeTerraform::working()
        .state(STATE)
        .on(
            "force-unlock",
            format!(
                "touch '{asked}'\nfor _ in $(seq 600); do [ -f '{done}' ] && break; sleep 0.1; done\n\
                 echo 'Terraform state has been successfully unlocked!'",
                asked = project.join("unlock-asked").display(),
                done = project.join("unlock-done").display(),
            ),
        )
        .install(&project);
    (project, tf)
}

/// Until `stop` is set: when the fake `force-unlock` asks, removes alice's lock item on
/// moto and lets it go on.
fn release_on_request(moto: &Moto, project: &Project, stop: &AtomicBool) {
    let (asked, done) = (project.join("unlock-asked"), project.join("unlock-done"));
    while !stop.load(Ordering::SeqCst) {
        if asked.exists() && !done.exists() {
            moto.delete_lock_item(LOCK_TABLE, LOCK_PATH);
            std::fs::write(&done, "").unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sets the flag when dropped (the test ended, or panicked).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn json_of_lock_and_unlock_matches_its_snapshots() {
    let moto = Moto::start();
    let (project, tf) = s3_locked_project(&moto);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| release_on_request(&moto, &project, &stop));
        let _stop = SetOnDrop(&stop);
        lock_and_unlock_snapshots(&project, &tf);
    });
    assert_eq!(
        moto.lock_item(LOCK_TABLE, LOCK_PATH),
        None,
        "the fake force-unlock had the item removed"
    );
    local_unlock_snapshots();
}

/// lock, lock --all and unlock of alice's s3 lock (see `s3_locked_project`).
fn lock_and_unlock_snapshots(project: &Project, tf: &Path) {
    let snapshots = Snapshots::new(project);
    let in_path = |args: &[&str], code: i32| {
        let output = project
            .tfenv_with(tf)
            .env("PATH", project.fake_path())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        expecting(output, code)
    };
    let steps: [(&str, &[&str]); 3] = [
        ("json-lock", &["lock", "dev", "--output", "json"]),
        ("json-lock-all", &["lock", "--all", "--output", "json"]),
        (
            "json-unlock",
            &["unlock", "dev", ALICE_LOCK_ID, "--yes", "--output", "json"],
        ),
    ];
    for (name, args) in steps {
        snapshots.json(name, args, &in_path(args, 0));
    }
    let args = ["lock", "dev", "--output", "json"];
    let output = in_path(&args, 0);
    assert!(
        stdout(&output).contains("\"held\": false"),
        "{}",
        output_text(&output)
    );
}

/// unlock of a local state that is not locked; then of the empty leftover of a full disk.
fn local_unlock_snapshots() {
    let local = Project::empty();
    local.write(
        "tfenv.toml",
        "[environments.dev]\nbackend_config = \"environments/dev.backend.conf\"\n",
    );
    local.write("main.tf", "terraform {\n  backend \"local\" {}\n}\n");
    local.write(
        "environments/dev.backend.conf",
        "path = \"state/dev/terraform.tfstate\"\n",
    );
    let snapshots = Snapshots::new(&local);
    let args = ["unlock", "dev", "some-id", "--output", "json"];
    let output = expecting(local.tfenv().args(args).output().unwrap(), 0);
    snapshots.json("json-unlock-not-locked", &args, &output);
    local.write("state/dev/.terraform.tfstate.lock.info", "");
    let args = ["unlock", "dev", "-", "--yes", "--output", "json"];
    let output = expecting(local.tfenv().args(args).output().unwrap(), 0);
    snapshots.json("json-unlock-leftover", &args, &output);
}

#[test]
fn json_migrate_matches_its_snapshot() {
    // dev initialized on state/dev/old.tfstate (as terraform records it in the data
    // dir), its backend config now naming state/dev/new.tfstate.
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[environments.dev]\nbackend_config = \"dev.backend.conf\"\n",
    );
    project.write("main.tf", "terraform {\n  backend \"local\" {}\n}\n");
    project.write("dev.backend.conf", "path = \"state/dev/new.tfstate\"\n");
    project.write("state/dev/old.tfstate", STATE);
    project.write(
        ".terraform/tfenv/dev/terraform.tfstate",
        r#"{"version":3,"backend":{"type":"local","config":{"path":"state/dev/old.tfstate","workspace_dir":null},"hash":1}}"#,
    );
    let tf = FakeTerraform::working()
        .state(STATE)
        .on(
            "init",
            format!(
                r#"case " $* " in
    *" -migrate-state "*) cp state/dev/old.tfstate state/dev/new.tfstate ;;
  esac
  {}"#,
                crate::support::fake::INIT_OK
            ),
        )
        .install(&project);
    let args = ["migrate", "dev", "--yes", "--output", "json"];
    let output = run(&project, &tf, &args, 0);
    Snapshots::new(&project).json("json-migrate", &args, &output);
}
