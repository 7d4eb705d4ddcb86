//! State locks held by a real terraform (DESIGN.md §6): `tfenv lock` reads them where
//! each backend keeps them (DynamoDB item, `<key>.tflock` object, local info file plus
//! OS lock), a deploy from another checkout is refused with exit 4 naming the holder,
//! a lock left by a killed terraform stays until `tfenv unlock <ID>` releases it (only
//! that ID), and `status` reports held and stale locks.
//!
//! The held lock comes from a slow apply (a `terraform_data` whose `local-exec`
//! provisioner sleeps, with an input that changes each deploy), except for Terraform
//! 1.0.3, which has no `terraform_data`: there the lock item is written by hand.

use std::time::Duration;

use serde_json::Value;

use crate::support::moto::Moto;
use crate::support::slow::{BUCKET, KEY, LOCAL_LOCK_INFO, SlowProject, TABLE, TFENV_TOML};
use crate::support::{self, output_text as text, stderr, stdout, stdout_json};

/// The provisioner's sleep in the deploy that holds the lock: far longer than any test
/// needs, so only a kill or an interrupt ends it.
const SLOW_SLEEP: u32 = 90;
/// How long init + plan + the start of the apply may take (a busy machine).
const APPLY_STARTS_WITHIN: Duration = Duration::from_secs(120);

/// For Terraform 1.0.3: variables and outputs only.
const PLAIN_MAIN_TF: &str = r#"terraform {
  backend "s3" {}
}

variable "run_id" {
  type = string
}

output "run_id" {
  value = var.run_id
}
"#;

/// The DynamoDB `LockID` of the dev state lock, and the lock's `Path`.
const LOCK_PATH: &str = "tfstate-test/dev/terraform.tfstate";
const LOCKFILE_KEY: &str = "dev/terraform.tfstate.tflock";

/// How the s3 backend locks.
#[derive(Clone, Copy, Debug)]
enum S3Locking {
    DynamoDb,
    Lockfile,
}

/// The s3 backend config for Terraform >= 1.6 with the given locking.
fn s3_conf(moto: &Moto, locking: S3Locking) -> String {
    let conf = moto.backend_conf(BUCKET, KEY, TABLE);
    match locking {
        S3Locking::DynamoDb => conf,
        S3Locking::Lockfile => {
            let table_line = format!("dynamodb_table = \"{TABLE}\"");
            assert!(conf.contains(&table_line), "{conf}");
            conf.replace(&table_line, "use_lockfile   = true")
        }
    }
}

/// The s3 backend config as Terraform 1.0.3 wants it: the pre-1.6 setting names
/// (`endpoint`, `dynamodb_endpoint`, `force_path_style`), no `skip_requesting_account_id`.
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

/// `tfenv lock --output json` of a lock held by the holder in `raw` (terraform's own
/// lock JSON, as the backend stores it).
fn assert_held_by(lock: &Value, raw: &Value) {
    assert_eq!(lock["environment"], "dev", "{lock}");
    assert_eq!(lock["supported"], true, "{lock}");
    assert_eq!(lock["held"], true, "{lock}");
    assert_eq!(lock["stale"], false, "{lock}");
    let holder = &lock["holder"];
    for (ours, theirs) in [
        ("id", "ID"),
        ("who", "Who"),
        ("operation", "Operation"),
        ("version", "Version"),
        ("created", "Created"),
        ("path", "Path"),
    ] {
        assert_eq!(
            holder[ours], raw[theirs],
            "holder.{ours} is the lock's {theirs}\nours: {lock}\nbackend: {raw}"
        );
    }
    assert!(
        holder["age_seconds"].as_i64().is_some_and(|a| a >= 0),
        "{lock}"
    );
}

/// The lock as the s3 backend stores it (terraform's lock JSON), or `None`.
fn s3_raw_lock(moto: &Moto, locking: S3Locking) -> Option<Value> {
    match locking {
        S3Locking::DynamoDb => moto.lock_info(TABLE, LOCK_PATH),
        S3Locking::Lockfile => {
            let bytes = moto.get_object(BUCKET, LOCKFILE_KEY)?;
            Some(serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                panic!(
                    "`{LOCKFILE_KEY}` holds no lock JSON ({err})\n{}",
                    String::from_utf8_lossy(&bytes)
                )
            }))
        }
    }
}

/// The lock is gone from where the s3 backend keeps it.
fn assert_s3_lock_gone(moto: &Moto, locking: S3Locking) {
    match locking {
        S3Locking::DynamoDb => assert_eq!(
            moto.lock_item(TABLE, LOCK_PATH),
            None,
            "the DynamoDB lock item is gone"
        ),
        S3Locking::Lockfile => {
            assert!(
                !moto.object_exists(BUCKET, LOCKFILE_KEY),
                "the lock object `{LOCKFILE_KEY}` is gone"
            );
            let keys = moto.list_keys(BUCKET, "dev/");
            assert!(
                !keys.iter().any(|k| k.ends_with(".tflock")),
                "no lock object is listed: {keys:?}"
            );
        }
    }
}

/// The whole life of an s3 lock left by a killed apply: shown while held, refusing a
/// deploy from another checkout, still there after the kill, refused unlock with the
/// wrong ID, released with the right one, and a deploy works again.
fn s3_lock_left_by_a_killed_apply(locking: S3Locking) {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    if let S3Locking::DynamoDb = locking {
        moto.create_lock_table(TABLE);
    }
    let conf = s3_conf(&moto, locking);
    let first = SlowProject::slow("s3", &conf);
    let second = SlowProject::slow("s3", &conf);

    first.set_vars(1, SLOW_SLEEP);
    let mut run = first.spawn_deploy();
    run.wait_for_slow_apply(APPLY_STARTS_WITHIN);
    let raw = s3_raw_lock(&moto, locking).unwrap_or_else(|| {
        panic!(
            "no {locking:?} lock while the apply runs\n{}",
            run.output_text()
        )
    });
    assert_eq!(raw["Operation"], "OperationTypeApply", "{raw}");
    assert_eq!(raw["Path"], LOCK_PATH, "{raw}");
    let id = raw["ID"].as_str().unwrap().to_string();
    let who = raw["Who"].as_str().unwrap().to_string();

    let lock = first.lock_json();
    assert_held_by(&lock, &raw);
    assert_eq!(lock["backend"], "s3", "{lock}");
    let source = lock["source"].as_str().unwrap();
    match locking {
        S3Locking::DynamoDb => assert_eq!(source, format!("dynamodb:{TABLE}/{LOCK_PATH}")),
        S3Locking::Lockfile => assert_eq!(source, format!("s3://{BUCKET}/{LOCKFILE_KEY}")),
    }
    let human = first.run_expecting(&["lock", "dev"], 0);
    assert!(
        stdout(&human).contains(&format!("dev: locked by {who}"))
            && stdout(&human).contains(&format!("tfenv unlock dev {id}")),
        "{}",
        text(&human)
    );

    // `status` shows the holder too; it is young, so it is no problem.
    let status = first.run_expecting(&["status", "dev", "--output", "json"], 0);
    let status = stdout_json(&status);
    let env = &status["environments"][0];
    assert_eq!(env["lock"]["held"], true, "{status}");
    assert_eq!(env["lock"]["holder"]["id"], id.as_str(), "{status}");
    assert_eq!(env["problems"], serde_json::json!([]), "{status}");

    // Another checkout of the same project: tfenv's own per-checkout lock does not
    // apply, so terraform's state lock refuses the deploy.
    second.set_vars(2, 0);
    let refused = second.run_expecting(&["deploy", "dev", "--yes"], 4);
    let message = stderr(&refused);
    assert!(
        message.contains(&who) && message.contains(&id),
        "the refusal names the holder ({who}) and the lock ID ({id})\n{}",
        text(&refused)
    );
    assert_eq!(second.last_history()["exit_code"], 4);

    // Killed without a chance to release the lock.
    run.kill_everything();
    assert_eq!(
        s3_raw_lock(&moto, locking).as_ref(),
        Some(&raw),
        "the lock stays after SIGKILL\n{}",
        run.output_text()
    );
    assert_held_by(&first.lock_json(), &raw);

    // The wrong ID is refused and changes nothing.
    let wrong = first.run_expecting(
        &[
            "unlock",
            "dev",
            "00000000-0000-0000-0000-000000000000",
            "--yes",
        ],
        5,
    );
    assert!(stderr(&wrong).contains(&id), "{}", text(&wrong));
    assert_eq!(s3_raw_lock(&moto, locking).as_ref(), Some(&raw));

    let unlocked = first.run_expecting(&["unlock", "dev", &id, "--yes"], 0);
    assert!(
        stdout(&unlocked).contains(&format!("lock `{id}` released")),
        "{}",
        text(&unlocked)
    );
    assert_s3_lock_gone(&moto, locking);
    let lock = first.lock_json();
    assert_eq!(lock["held"], false, "{lock}");
    assert_eq!(lock["holder"], Value::Null, "{lock}");
    let human = first.run_expecting(&["lock", "dev"], 0);
    assert!(
        stdout(&human).contains("dev: not locked"),
        "{}",
        text(&human)
    );
    let last = first.last_history();
    assert_eq!(last["command"], "unlock", "{last}");
    assert_eq!(last["exit_code"], 0, "{last}");

    first.deploy_succeeds(3);
    assert_s3_lock_gone(&moto, locking);
    let state = moto.object_text(BUCKET, KEY);
    assert!(state.contains("run-3"), "{state}");
}

#[test]
fn s3_dynamodb_lock_of_a_killed_apply_is_shown_refuses_deploys_and_unlock_releases_it() {
    s3_lock_left_by_a_killed_apply(S3Locking::DynamoDb);
}

#[test]
fn s3_lockfile_lock_of_a_killed_apply_is_shown_refuses_deploys_and_unlock_releases_it() {
    s3_lock_left_by_a_killed_apply(S3Locking::Lockfile);
}

#[test]
fn terraform_1_0_dynamodb_lock_is_shown_refuses_deploys_and_force_unlock_releases_it() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let checkout = SlowProject::new(PLAIN_MAIN_TF, &s3_conf_1_0(&moto), support::terraform_1_0());
    checkout
        .project
        .write("environments/dev.tfvars", "run_id = \"run-1\"\n");

    // A lock as Terraform 1.0.3 writes it, held by a run that is gone.
    let id = "5f0c3c1e-9d1a-4f5b-8a3e-2b7c9d0e1f23";
    let created = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let raw = serde_json::json!({
        "ID": id,
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": "alice@laptop",
        "Version": "1.0.3",
        "Created": created,
        "Path": LOCK_PATH,
    });
    moto.put_lock_item(TABLE, LOCK_PATH, &raw.to_string());

    // Read through `dynamodb_endpoint` (the pre-1.6 name).
    let lock = checkout.lock_json();
    assert_held_by(&lock, &raw);
    let age = lock["holder"]["age_seconds"].as_i64().unwrap();
    assert!((290..600).contains(&age), "{lock}");

    let refused = checkout.run_expecting(&["deploy", "dev", "--yes"], 4);
    assert!(
        stderr(&refused).contains("alice@laptop") && stderr(&refused).contains(id),
        "{}",
        text(&refused)
    );

    let wrong = checkout.run_expecting(&["unlock", "dev", "not-the-id", "--yes"], 5);
    assert!(stderr(&wrong).contains(id), "{}", text(&wrong));
    assert!(moto.lock_item(TABLE, LOCK_PATH).is_some());

    checkout.run_expecting(&["unlock", "dev", id, "--yes"], 0);
    assert_eq!(
        moto.lock_item(TABLE, LOCK_PATH),
        None,
        "force-unlock removed the item"
    );
    assert_eq!(checkout.lock_json()["held"], false);
    assert_eq!(checkout.last_history()["command"], "unlock");

    checkout.run_expecting(&["deploy", "dev", "--yes"], 0);
    let state: Value = serde_json::from_str(&moto.object_text(BUCKET, KEY)).unwrap();
    assert_eq!(state["terraform_version"], "1.0.3", "{state}");
    assert_eq!(state["outputs"]["run_id"]["value"], "run-1", "{state}");
    assert_eq!(moto.lock_item(TABLE, LOCK_PATH), None);
}

/// The lock info terraform writes beside a local state.
fn local_lock_info(checkout: &SlowProject) -> Value {
    let text = checkout.project.read(LOCAL_LOCK_INFO);
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("`{LOCAL_LOCK_INFO}` is not lock JSON ({err}): {text}"))
}

#[test]
fn local_lock_info_left_by_a_killed_apply_is_stale_and_blocks_nobody() {
    let checkout = SlowProject::local();
    checkout.set_vars(1, SLOW_SLEEP);
    let mut run = checkout.spawn_deploy();
    run.wait_for_slow_apply(APPLY_STARTS_WITHIN);

    let raw = local_lock_info(&checkout);
    let lock = checkout.lock_json();
    assert_held_by(&lock, &raw);
    assert_eq!(lock["backend"], "local", "{lock}");
    assert!(
        lock["source"]
            .as_str()
            .unwrap()
            .ends_with(".terraform.tfstate.lock.info"),
        "{lock}"
    );

    run.kill_everything();
    assert!(
        checkout.project.join(LOCAL_LOCK_INFO).is_file(),
        "the info file stays after SIGKILL"
    );
    let lock = checkout.lock_json();
    assert_eq!(lock["held"], false, "{lock}");
    assert_eq!(lock["stale"], true, "{lock}");
    assert_eq!(lock["holder"]["id"], raw["ID"], "{lock}");
    let human = checkout.run_expecting(&["lock", "dev"], 0);
    assert!(
        stdout(&human).contains("dev: not locked"),
        "{}",
        text(&human)
    );

    // A leftover is no problem for status; the killed run (tfenv was killed mid-apply)
    // is the one problem. unlock with its ID removes the leftover, no terraform.
    let status = stdout_json(&checkout.run_expecting(&["status", "dev", "--output", "json"], 6));
    let env = &status["environments"][0];
    assert_eq!(env["lock"]["stale"], true, "{status}");
    assert_eq!(env["lock"]["held"], false, "{status}");
    let codes: Vec<&str> = env["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["killed-run"], "{status}");
    checkout.run_expecting(&["status", "dev"], 6);
    let id = raw["ID"].as_str().unwrap();
    checkout.run_expecting(&["unlock", "dev", "another-id", "--yes"], 5);
    let unlock = checkout.run_expecting(&["unlock", "dev", id, "--yes"], 0);
    assert!(
        stdout(&unlock).contains("not locked; removed the leftover lock info file"),
        "{}",
        text(&unlock)
    );
    assert!(!checkout.project.join(LOCAL_LOCK_INFO).exists());

    checkout.deploy_succeeds(2);
    assert!(
        !checkout.project.join(LOCAL_LOCK_INFO).exists(),
        "the next run took and released the lock"
    );
    // That deploy recorded the killed run, and finished after it: healthy again.
    let status = stdout_json(&checkout.run_expecting(&["status", "dev", "--output", "json"], 0));
    assert_eq!(
        status["environments"][0]["last_deploy"]["result"],
        "applied"
    );
}

/// Terraform fails to take a local lock when it cannot write its lock info — a full
/// disk, or (reproducible here) a folder where the info file goes. Nobody holds the
/// lock: that is a failure (exit 1) with terraform's own message, not "locked" (exit 4).
#[test]
fn a_local_lock_terraform_could_not_take_is_a_failure_with_its_message() {
    let checkout = SlowProject::local();
    checkout.set_vars(1, 0);
    std::fs::create_dir_all(checkout.project.join(LOCAL_LOCK_INFO)).unwrap();
    let deploy = checkout.run_expecting(&["deploy", "dev", "--yes"], 1);
    let stderr = String::from_utf8_lossy(&deploy.stderr);
    assert!(
        stderr.contains("Error acquiring the state lock")
            && stderr.contains("could not write lock info"),
        "{}",
        text(&deploy)
    );
    assert!(!stderr.contains("locked by"), "{}", text(&deploy));
    assert_eq!(checkout.project.last_history("dev")["exit_code"], 1);

    let lock = checkout.run_expecting(&["lock", "dev"], 1);
    assert!(
        String::from_utf8_lossy(&lock.stderr).contains("is not a regular file"),
        "{}",
        text(&lock)
    );
}

/// Another process holds the OS lock of a local state file and wrote no lock info
/// (another tool, or a terraform between taking the lock and writing its info): the
/// state is locked all the same, so plan and deploy exit 4 — without `--lock-timeout`
/// (terraform's own "Error acquiring the state lock") as with it (tfenv's wait).
#[test]
fn a_local_state_lock_held_without_lock_info_exits_4_with_or_without_lock_timeout() {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;
    let checkout = SlowProject::local();
    checkout.set_vars(1, 0);
    checkout.deploy_succeeds(1);
    checkout.set_vars(2, 0);

    let state = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(checkout.project.join(crate::support::slow::LOCAL_STATE))
        .unwrap();
    // The whole file, as terraform's local backend locks it (a POSIX record lock).
    let lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(&state, FcntlArg::F_SETLK(&lock)).expect("taking the state file's lock");
    assert!(!checkout.project.join(LOCAL_LOCK_INFO).exists());

    for args in [
        &["plan", "dev"][..],
        &["deploy", "dev", "--yes"],
        &["plan", "dev", "--lock-timeout", "2s"],
    ] {
        let out = checkout.run_expecting(args, 4);
        assert!(stderr(&out).contains("locked"), "{args:?}: {}", text(&out));
    }

    drop(state);
    checkout.run_expecting(&["deploy", "dev", "--yes"], 0);
}

#[test]
fn status_shows_a_held_lock_and_flags_it_once_older_than_stale_lock_after() {
    let checkout = SlowProject::local();
    checkout.set_vars(1, SLOW_SLEEP);
    let mut run = checkout.spawn_deploy();
    run.wait_for_slow_apply(APPLY_STARTS_WITHIN);
    let raw = local_lock_info(&checkout);
    let id = raw["ID"].as_str().unwrap();

    // The default stale_lock_after (2h): a held lock is shown, and is no problem.
    let status = stdout_json(&checkout.run_expecting(&["status", "--output", "json"], 0));
    let env = &status["environments"][0];
    assert_eq!(env["lock"]["held"], true, "{status}");
    assert_eq!(env["lock"]["holder"]["id"], id, "{status}");
    assert_eq!(env["problems"], serde_json::json!([]), "{status}");

    checkout.project.write(
        "tfenv.toml",
        &TFENV_TOML.replace("[project]\n", "[project]\nstale_lock_after = \"1s\"\n"),
    );
    let created = chrono::DateTime::parse_from_rfc3339(raw["Created"].as_str().unwrap()).unwrap();
    while chrono::Utc::now().signed_duration_since(created) < chrono::Duration::milliseconds(2500) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = checkout.run_expecting(&["status", "--output", "json"], 6);
    let status = stdout_json(&output);
    assert_eq!(status["healthy"], false, "{status}");
    let problems = status["environments"][0]["problems"].as_array().unwrap();
    let stale: Vec<&Value> = problems
        .iter()
        .filter(|p| p["code"] == "stale-lock")
        .collect();
    assert_eq!(stale.len(), 1, "{status}");
    assert_eq!(problems.len(), 1, "only the lock is a problem: {status}");
    assert!(
        stale[0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("tfenv unlock dev {id}")),
        "{status}"
    );
    let human = checkout.run_expecting(&["status"], 6);
    assert!(
        stdout(&human).contains(&format!("tfenv unlock dev {id}")),
        "{}",
        text(&human)
    );

    // Once the run ends and releases the lock, the lock problem is gone; the deploy it
    // interrupted during its apply is the problem now.
    run.interrupt();
    let status = stdout_json(&checkout.run_expecting(&["status", "--output", "json"], 6));
    assert_eq!(status["environments"][0]["lock"]["held"], false, "{status}");
    let codes: Vec<&str> = status["environments"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["last-deploy-failed"], "{status}");
    assert!(!checkout.project.join(LOCAL_LOCK_INFO).exists());
}

/// How long the apply that holds the state lock runs: long enough for the other
/// checkout to be refused once and then to start waiting.
const HELD_SLEEP: u32 = 30;

/// Two checkouts of one project sharing one state: while the first one's apply holds
/// the state lock, a deploy from the second is refused at once (exit 4), as without the
/// flag; with `--lock-timeout` it waits, says who holds the lock, and applies once the
/// first one is done. Ctrl-C while it waits ends it at once (130), recorded as
/// interrupted before any apply.
fn a_state_lock_held_by_a_running_apply_is_waited_for(first: &SlowProject, second: &SlowProject) {
    first.set_vars(1, HELD_SLEEP);
    let mut run = first.spawn_deploy();
    run.wait_for_slow_apply(APPLY_STARTS_WITHIN);
    let holder = first.lock_json();
    assert_eq!(holder["held"], true, "{holder}");
    let id = holder["holder"]["id"].as_str().unwrap().to_string();

    second.set_vars(2, 0);
    let refused = second.run_expecting(&["deploy", "dev", "--yes"], 4);
    assert!(stderr(&refused).contains(&id), "{}", text(&refused));

    let mut waiting = second.command_via(&[]);
    waiting.args(["deploy", "dev", "--yes", "--lock-timeout", "3m"]);
    let mut waiting = crate::support::running::RunningTfenv::spawn(waiting);
    waiting.wait_for_stderr("dev: waiting for the state lock", Duration::from_secs(60));
    waiting.signal(nix::sys::signal::Signal::SIGINT);
    let (status, took) = waiting.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{}", waiting.output_text());
    assert!(took < Duration::from_secs(3), "at once: {took:?}");
    let last = second.last_history();
    assert_eq!(last["result"], "interrupted", "{last}");
    assert_eq!(last["reached_apply"], false, "{last}");

    let waited = second.run(&["deploy", "dev", "--yes", "--lock-timeout", "3m"]);
    let message = stderr(&waited);
    assert!(
        message.contains("dev: waiting for the state lock, held by")
            && message.contains(&format!("lock ID {id}")),
        "the wait names the holder and its lock ID ({id})\n{}",
        text(&waited)
    );
    assert!(
        message.contains("dev: the state lock is free after"),
        "{}",
        text(&waited)
    );
    assert_eq!(waited.status.code(), Some(0), "{}", text(&waited));
    let (status, _) = run.wait_exit(Duration::from_secs(120));
    assert!(status.success(), "{}", run.output_text());
    assert_eq!(first.last_history()["result"], "applied");
    let last = second.last_history();
    assert_eq!(last["result"], "applied", "{last}");
    assert!(
        second
            .project
            .read("state/dev/outputs.json")
            .contains("run-2"),
        "the second deploy applied after the first"
    );
}

#[test]
fn a_local_state_lock_held_by_a_running_apply_is_waited_for_with_lock_timeout() {
    let first = SlowProject::local();
    let shared = first.project.join(crate::support::slow::LOCAL_STATE);
    let second = SlowProject::slow("local", &format!("path = \"{}\"\n", shared.display()));
    a_state_lock_held_by_a_running_apply_is_waited_for(&first, &second);
}

#[test]
fn an_s3_state_lock_held_by_a_running_apply_is_waited_for_with_lock_timeout() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE);
    let conf = s3_conf(&moto, S3Locking::DynamoDb);
    let first = SlowProject::slow("s3", &conf);
    let second = SlowProject::slow("s3", &conf);
    a_state_lock_held_by_a_running_apply_is_waited_for(&first, &second);
}
