//! The shared ledger (`ledger = "backend"`, DESIGN.md §12, docs/team.md) on s3 in a moto
//! server (versioning on): two clones of one repository, A and B, share history and
//! backups through `<state key>.tfenv/` in the state bucket. B sees A's deploy in
//! `history` and `status`, lists and restores A's backup (checked against its sha256
//! first: a tampered object is refused), A loses nothing when its `state/` is deleted,
//! and eight tfenv processes writing one environment at once lose no record.

use std::process::{Command, Output};

use serde_json::Value;

use crate::bundles::Clones;
use crate::support::moto::Moto;
use crate::support::{self, expecting, stderr, stdout_json};

const BUCKET: &str = "tfstate-bundles";
const STATE: &str = "production/terraform.tfstate";
const SHARED: &str = "production/terraform.tfstate.tfenv/";
const PROD: &[&str] = &["--yes", "--confirm", "production"];

/// Clones A and B of a repository whose tfenv.toml says `ledger = "backend"`.
fn ledger_clones(moto: &Moto) -> Clones {
    Clones::s3_ledger(moto)
}

fn run(clones: &Clones, clone: &str, args: &[&str], code: i32) -> Output {
    clones.run(clone, args, code)
}

fn json(clones: &Clones, clone: &str, args: &[&str], code: i32) -> Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    stdout_json(&run(clones, clone, &args, code))
}

fn keys(moto: &Moto, folder: &str) -> Vec<String> {
    moto.list_keys(BUCKET, &format!("{SHARED}{folder}"))
}

fn head(clones: &Clones, clone: &str) -> String {
    support::git(&clones.clone_dir(clone), &["rev-parse", "HEAD"])
        .trim()
        .to_string()
}

fn message(moto: &Moto) -> String {
    let state: Value = serde_json::from_str(&moto.object_text(BUCKET, STATE)).unwrap();
    state["outputs"]["message"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn set_message(clones: &Clones, clone: &str, text: &str) {
    clones.write(
        &format!("{clone}/environments/production.tfvars"),
        &format!("message = \"{text}\"\nn = 1\n"),
    );
    clones.commit(clone, text);
}

fn deploy(clones: &Clones, clone: &str) {
    let mut args = vec!["deploy", "production"];
    args.extend(PROD);
    run(clones, clone, &args, 0);
}

/// `backup production` in `clone`: the backup's file name.
fn backup(clones: &Clones, clone: &str) -> String {
    let taken = json(clones, clone, &["backup", "production"], 0);
    taken["backups"][0]["backup"]["file"]
        .as_str()
        .unwrap_or_else(|| panic!("{taken}"))
        .to_string()
}

fn wheres(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["where"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn clone_b_sees_and_restores_what_clone_a_did_and_a_loses_nothing_without_its_state_folder() {
    let moto = Moto::start();
    let clones = ledger_clones(&moto);
    deploy(&clones, "a");
    assert_eq!(keys(&moto, "history/").len(), 1, "one record, one object");

    // B has never run anything: A's deploy is B's history and LAST DEPLOY.
    let history = json(&clones, "b", &["history", "production"], 0);
    let records = history["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{history}");
    let record = &records[0];
    assert_eq!(record["where"], "shared", "{record}");
    assert_eq!(record["command"], "deploy");
    assert_eq!(record["result"], "applied");
    let in_a = crate::bundles::history(&clones, "a", "production");
    assert_eq!(record["who"], in_a["who"], "{record}");
    assert_eq!(record["host"], in_a["host"], "{record}");
    assert_eq!(record["start"], in_a["start"], "{record}");
    assert_eq!(
        record["git"]["commit"],
        head(&clones, "a").as_str(),
        "{record}"
    );
    let human = support::stdout(&run(&clones, "b", &["history", "production"], 0));
    assert!(
        human.contains("WHERE") && human.contains("shared"),
        "{human}"
    );

    let status = stdout_json(&clones.tfenv("b", &["status", "production", "--output", "json"]));
    let env = &status["environments"][0];
    assert_eq!(env["last_deploy"]["where"], "shared", "{status}");
    assert_eq!(
        env["last_deploy"]["git"]["commit"],
        head(&clones, "a").as_str()
    );
    assert_eq!(env["last_deploy"]["who"], in_a["who"]);
    assert_eq!(env["last_deploy"]["host"], in_a["host"]);
    let human = support::stdout(&clones.tfenv("b", &["status", "production"]));
    let by = format!(
        " by {}@{}",
        in_a["who"].as_str().unwrap(),
        in_a["host"].as_str().unwrap()
    );
    assert!(human.contains("applied") && human.contains(&by), "{human}");

    // A backup taken in A is listed in B and restored from B.
    let name = backup(&clones, "a");
    let shared = keys(&moto, "backups/");
    assert!(
        shared.contains(&format!("{SHARED}backups/{name}"))
            && shared.contains(&format!("{SHARED}backups/{name}.json")),
        "{shared:?}"
    );
    let listed = json(&clones, "b", &["backups", "production"], 0);
    let entry = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["file"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} in {listed}"))
        .clone();
    assert_eq!(entry["where"], "shared", "{entry}");
    // In A, its backup lives in both places (the first deploy had no state to back up).
    let in_a = json(&clones, "a", &["backups", "production"], 0);
    assert_eq!(wheres(&in_a["backups"]), ["both"], "{in_a}");

    set_message(&clones, "a", "two");
    deploy(&clones, "a");
    assert_eq!(message(&moto), "two");
    let mut args = vec!["restore", "production", &name];
    args.extend(PROD);
    args.extend(["--output", "json"]);
    let restored = stdout_json(&run(&clones, "b", &args, 0));
    assert_eq!(restored["restored"], name.as_str(), "{restored}");
    assert_eq!(message(&moto), "one", "the backup's state is the state");
    // B keeps the downloaded backup, known as the shared one.
    let manifest = clones
        .project
        .read("b/state/production/backups/MANIFEST.jsonl");
    assert!(
        manifest.contains(&format!("\"shared\":\"{name}\"")),
        "{manifest}"
    );

    // A's state folder is gone: its history and backups are still in the bucket.
    std::fs::remove_dir_all(clones.clone_dir("a").join("state")).unwrap();
    let history = json(&clones, "a", &["history", "production", "--limit", "0"], 0);
    let records = history["records"].as_array().unwrap();
    let commands: Vec<&str> = records
        .iter()
        .map(|r| r["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["deploy", "deploy", "restore"], "{history}");
    assert!(wheres(&history["records"]).iter().all(|w| w == "shared"));
    let listed = json(&clones, "a", &["backups", "production"], 0);
    let files: Vec<&str> = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["file"].as_str().unwrap())
        .collect();
    // Before A's second deploy (the first had no state), the manual one, the one
    // before B's restore.
    assert_eq!(files.len(), 3, "{listed}");
    assert!(files.contains(&name.as_str()), "{listed}");
    assert_eq!(wheres(&listed["backups"]), ["shared"; 3]);
    // verify downloads and checks every shared backup.
    let verified = json(&clones, "a", &["verify", "production"], 0);
    let shared = verified["environments"][0]["shared"].as_array().unwrap();
    assert_eq!(shared.len(), 3, "{verified}");
    assert!(shared.iter().all(|c| c["verified"] == true), "{verified}");
    let said = support::stdout(&run(&clones, "a", &["verify", "production"], 0));
    assert!(
        said.contains("production: 3 shared verified, 0 local verified"),
        "{said}"
    );
}

#[test]
fn a_shared_backup_changed_in_the_bucket_is_refused_before_anything_is_pushed() {
    let moto = Moto::start();
    let clones = ledger_clones(&moto);
    deploy(&clones, "a");
    let name = backup(&clones, "a");
    set_message(&clones, "a", "two");
    deploy(&clones, "a");
    // Someone rewrites the shared backup (tfenv never does: its writes are create-only).
    let key = format!("{SHARED}backups/{name}");
    let tampered = moto
        .object_text(BUCKET, &key)
        .replace("\"one\"", "\"evil\"");
    moto.put_object(BUCKET, &key, tampered.as_bytes());
    let before = moto.object_text(BUCKET, STATE);

    let mut args = vec!["restore", "production", &name];
    args.extend(PROD);
    let output = expecting(clones.tfenv("b", &args), 5);
    let err = stderr(&output);
    assert!(
        err.contains(&format!("the shared backup `{name}`"))
            && err.contains("does not match its manifest entry")
            && err.contains("SHA-256"),
        "{err}"
    );
    // The hint names the environment, and the object whose versions may hold the original.
    assert!(
        err.contains("pick another backup from `tfenv backups production`")
            && err.contains(&format!(
                "an earlier version of `s3://{BUCKET}/{SHARED}backups/{name}`"
            )),
        "{err}"
    );
    assert_eq!(
        moto.object_text(BUCKET, STATE),
        before,
        "nothing was pushed"
    );
    let dir = clones.clone_dir("b").join("state/production/backups");
    let left: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("terraform.tfstate") || n.ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "the download is not kept: {left:?}");
    // verify says the same of it, and which side it is on.
    let said = support::stdout(&run(&clones, "b", &["verify", "production"], 1));
    assert!(
        said.contains(
            "production: 1 problem(s): 1 of 2 shared backup(s) do not verify; 0 local verified:"
        ),
        "{said}"
    );
    let verified = json(&clones, "b", &["verify", "production"], 1);
    let problems = verified["environments"][0]["problems"].to_string();
    assert!(
        problems.contains(&name) && problems.contains("SHA-256"),
        "{verified}"
    );
}

/// Eight checkouts of one repository write history and backups of production at the
/// same moment: every record and every backup is in the bucket afterwards.
#[test]
fn eight_concurrent_writers_lose_no_record_and_no_backup() {
    const WRITERS: usize = 8;
    const RECORDS: usize = 3;
    let moto = Moto::start();
    let clones = ledger_clones(&moto);
    deploy(&clones, "a");
    let names: Vec<String> = (0..WRITERS).map(|i| format!("w{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        clones.project.git(&["clone", "-q", "a", name]);
        clones.write(
            &format!("{name}/environments/local.tfvars"),
            "extra = \"\"\n",
        );
        // History this checkout wrote before (as with `ledger = "local"`): uploaded by
        // the next command that writes the ledger, with its own.
        let lines: String = (0..RECORDS)
            .map(|r| record_line(&format!("writer{i}-{r}")))
            .collect();
        let dir = clones.clone_dir(name).join("state/production");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("history.jsonl"), lines).unwrap();
    }
    let children: Vec<(String, std::process::Child)> = names
        .iter()
        .map(|name| {
            let mut cmd: Command = clones.project.command();
            cmd.current_dir(clones.clone_dir(name))
                .arg("--terraform")
                .arg(support::terraform())
                .args(["backup", "production"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            (name.clone(), cmd.spawn().unwrap())
        })
        .collect();
    for (name, child) in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{name}: {}", stderr(&output));
        assert!(
            !stderr(&output).contains("could not upload"),
            "{name}: {}",
            stderr(&output)
        );
    }

    let history = keys(&moto, "history/");
    assert_eq!(history.len(), 1 + WRITERS * RECORDS, "{history:#?}");
    // One of each writer (the first deploy had no state to back up).
    let backups = keys(&moto, "backups/");
    let entries = backups.iter().filter(|k| k.ends_with(".json")).count();
    assert_eq!(entries, WRITERS, "{backups:#?}");
    assert_eq!(backups.len(), 2 * WRITERS, "a state file and an entry each");
    // Each checkout's lines name their shared copy, none left unshared, no name twice.
    let mut shared_names = Vec::new();
    for name in &names {
        let manifest = clones
            .project
            .read(&format!("{name}/state/production/backups/MANIFEST.jsonl"));
        let line: Value = serde_json::from_str(manifest.trim()).unwrap();
        assert!(line.get("unshared").is_none(), "{line}");
        shared_names.push(line["shared"].as_str().unwrap().to_string());
        let history = clones
            .project
            .read(&format!("{name}/state/production/history.jsonl"));
        assert!(!history.contains("unshared"), "{history}");
        assert_eq!(history.matches("\"shared\":").count(), RECORDS, "{history}");
    }
    shared_names.sort();
    shared_names.dedup();
    assert_eq!(shared_names.len(), WRITERS, "{shared_names:?}");
    // And B, which wrote nothing, reads them all.
    let all = json(&clones, "b", &["history", "production", "--limit", "0"], 0);
    assert_eq!(
        all["records"].as_array().unwrap().len(),
        1 + WRITERS * RECORDS,
        "{all}"
    );
}

/// A history record as an older run wrote it (no `shared` yet).
fn record_line(who: &str) -> String {
    format!(
        "{{\"command\":\"deploy\",\"environment\":\"production\",\"tier\":\"production\",\"who\":\"{who}\",\"host\":\"h\",\"git\":null,\"start\":\"2026-11-01T10:00:00Z\",\"end\":\"2026-11-01T10:00:01Z\",\"seconds\":1.0,\"terraform_version\":null,\"plan\":null,\"result\":\"no-changes\",\"exit_code\":0,\"backup\":null,\"log\":null,\"error\":null}}\n"
    )
}

/// The shared ledger does not answer when a run is recorded: the run's outcome stands,
/// one warning says what was not uploaded, the local record is marked `unshared` (with
/// its shared name), and the next command that writes the ledger uploads it.
#[test]
fn a_record_the_store_did_not_take_is_unshared_and_the_next_command_uploads_it() {
    let moto = Moto::start();
    let clones = ledger_clones(&moto);
    let conf_path = "a/environments/production.backend.conf";
    let conf = clones.project.read(conf_path);
    let nobody = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    clones.write(
        conf_path,
        &conf.replace(&moto.endpoint(), &format!("http://127.0.0.1:{nobody}")),
    );
    // Refused before terraform runs (no --yes): recorded, then the upload fails.
    let started = std::time::Instant::now();
    let output = clones.run("a", &["deploy", "production"], 5);
    let err = stderr(&output);
    assert!(
        err.contains("could not upload 1 history record(s) of `production` to the shared ledger at `s3://tfstate-bundles/production/terraform.tfstate.tfenv/`")
            && err.contains("marked `unshared`"),
        "{err}"
    );
    assert_eq!(err.matches("could not upload").count(), 1, "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let line = crate::bundles::history(&clones, "a", "production");
    assert_eq!(line["result"], "refused", "{line}");
    assert_eq!(line["unshared"], true, "{line}");
    let name = line["shared"].as_str().unwrap().to_string();
    assert!(keys(&moto, "history/").is_empty());

    // Reachable again: the next command that writes the ledger uploads it.
    clones.write(conf_path, &conf);
    let output = clones.run("a", &["backup", "production"], 0);
    assert!(
        !stderr(&output).contains("could not upload"),
        "{}",
        stderr(&output)
    );
    assert_eq!(keys(&moto, "history/"), [format!("{SHARED}history/{name}")]);
    let line = crate::bundles::history(&clones, "a", "production");
    assert!(line.get("unshared").is_none(), "{line}");
    assert_eq!(line["shared"], name.as_str());
    let seen = json(&clones, "b", &["history", "production"], 0);
    assert_eq!(seen["records"][0]["result"], "refused", "{seen}");
    assert_eq!(seen["records"][0]["where"], "shared", "{seen}");
}
