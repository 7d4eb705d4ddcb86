//! `tfenv lock` / `unlock` on backends without an emulator here (DESIGN.md §6): fake
//! `az`, `gcloud` and `terraform` scripts on PATH replay what the real CLIs print, and
//! log how tfenv called them. The s3 backend's locks (read through the AWS SDK) are
//! tested on moto, in tests/e2e/locks.rs and tests/e2e/s3.rs.

use std::process::Output;

use base64::Engine;
use serde_json::{Value, json};

use crate::support::clouds::{FakeCloud, calls, fake_cli, flag};
use crate::support::fake::FakeTerraform;
use crate::support::{Project, output_text as text, stdout_json};

const TFENV_TOML: &str = r#"[environments.dev]
tier = "development"
backend_config = "environments/dev.backend.conf"
var_files = ["environments/dev.tfvars"]
"#;

/// A secret that must never show in tfenv's output.
const ACCESS_KEY: &str = "c3VwZXItc2VjcmV0LWF6dXJlLWtleQ==";

/// A project whose root module declares `backend "<kind>" {}`, with `conf` as dev's
/// backend config.
fn project(kind: &str, conf: &str) -> Project {
    let project = Project::empty();
    project.write("tfenv.toml", TFENV_TOML);
    project.write(
        "main.tf",
        &format!("terraform {{\n  backend \"{kind}\" {{}}\n}}\n"),
    );
    project.write("environments/dev.backend.conf", conf);
    project.write("environments/dev.tfvars", "");
    std::fs::create_dir_all(project.join("bin")).unwrap();
    project
}

/// tfenv with only the project's fakes and the system's basic tools on PATH.
fn tfenv(project: &Project, args: &[&str]) -> Output {
    project
        .tfenv()
        .env("PATH", project.fake_path())
        .env_remove("AZURE_STORAGE_KEY")
        .env_remove("AZURE_STORAGE_CONNECTION_STRING")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap()
}

fn expect(output: Output, code: i32, what: &str) -> Output {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what} should exit {code}\n{}",
        text(&output)
    );
    output
}

/// `tfenv lock dev --output json`, which must succeed.
fn lock_json(project: &Project) -> Value {
    stdout_json(&expect(
        tfenv(project, &["lock", "dev", "--output", "json"]),
        0,
        "tfenv lock dev --output json",
    ))
}

/// `tfenv lock dev`, which must succeed; its stdout.
fn lock_human(project: &Project) -> String {
    let output = expect(tfenv(project, &["lock", "dev"]), 0, "tfenv lock dev");
    String::from_utf8(output.stdout).unwrap()
}

fn lock_info(id: &str, who: &str, path: &str) -> Value {
    let created = (chrono::Utc::now() - chrono::Duration::minutes(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    json!({
        "ID": id,
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": who,
        "Version": "1.11.4",
        "Created": created,
        "Path": path,
    })
}

/// `az storage blob show --output json` of the state blob, as the Azure CLI prints it.
fn azure_blob(lease_state: &str, metadata: Value) -> Value {
    let (status, duration) = if lease_state == "leased" {
        ("locked", Value::from("infinite"))
    } else {
        ("unlocked", Value::Null)
    };
    json!({
        "container": "tfstate",
        "content": "",
        "deleted": false,
        "encryptedMetadata": null,
        "encryptionKeySha256": null,
        "encryptionScope": null,
        "hasLegalHold": null,
        "hasVersionsOnly": null,
        "immutabilityPolicy": { "expiryTime": null, "policyMode": null },
        "isAppendBlobSealed": null,
        "isCurrentVersion": null,
        "lastAccessedOn": null,
        "metadata": metadata,
        "name": "dev.terraform.tfstate",
        "objectReplicationDestinationPolicy": null,
        "objectReplicationSourceProperties": [],
        "properties": {
            "appendBlobCommittedBlockCount": null,
            "blobTier": "Hot",
            "blobTierChangeTime": null,
            "blobTierInferred": true,
            "blobType": "BlockBlob",
            "contentLength": 1834,
            "contentRange": null,
            "contentSettings": {
                "cacheControl": null,
                "contentDisposition": null,
                "contentEncoding": null,
                "contentLanguage": null,
                "contentMd5": "q1+9hO6J1N3JzZ8m0D3z0g==",
                "contentType": "application/json"
            },
            "copy": {
                "completionTime": null, "destinationSnapshot": null, "id": null,
                "incrementalCopy": null, "progress": null, "source": null,
                "status": null, "statusDescription": null
            },
            "creationTime": "2026-01-10T08:00:00+00:00",
            "deletedTime": null,
            "etag": "\"0x8DC1234567890AB\"",
            "lastModified": "2026-01-12T09:30:00+00:00",
            "lease": { "duration": duration, "state": lease_state, "status": status },
            "pageBlobSequenceNumber": null,
            "pageRanges": null,
            "rehydrationStatus": null,
            "remainingRetentionDays": null,
            "serverEncrypted": true
        },
        "rehydratePriority": null,
        "requestServerEncrypted": true,
        "snapshot": null,
        "tagCount": null,
        "tags": null,
        "versionId": null
    })
}

#[test]
fn azurerm_lock_is_read_from_the_blob_lease_and_its_metadata() {
    let project = project(
        "azurerm",
        &format!(
            "storage_account_name = \"tfstateacct\"\ncontainer_name       = \"tfstate\"\nkey                  = \"dev.terraform.tfstate\"\naccess_key           = \"{ACCESS_KEY}\"\n"
        ),
    );
    let reply = project.join("az-reply.json");
    let log = fake_cli(
        &project,
        "az",
        &["AZURE_STORAGE_KEY"],
        &format!(
            "[ \"$1 $2 $3\" = 'storage blob show' ] || {{ echo \"unexpected: $*\" >&2; exit 2; }}\ncat '{}'",
            reply.display()
        ),
    );
    let mut outputs = Vec::new();

    // (a) leased, with terraform's lock info in the metadata.
    let info = lock_info(
        "2b1f4d0a-6c1e-4f7b-9a51-0f3e8d2c7b64",
        "alice@laptop",
        "tfstate/dev.terraform.tfstate",
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(info.to_string());
    std::fs::write(
        &reply,
        azure_blob("leased", json!({ "terraformlockid": encoded })).to_string(),
    )
    .unwrap();
    let output = expect(
        tfenv(&project, &["lock", "dev", "--output", "json"]),
        0,
        "lock",
    );
    let lock = stdout_json(&output);
    outputs.push(output);
    assert_eq!(lock["backend"], "azurerm", "{lock}");
    assert_eq!(lock["held"], true, "{lock}");
    assert_eq!(lock["holder"]["id"], info["ID"], "{lock}");
    assert_eq!(lock["holder"]["who"], "alice@laptop", "{lock}");
    assert_eq!(lock["holder"]["operation"], "OperationTypeApply", "{lock}");
    assert_eq!(lock["holder"]["created"], info["Created"], "{lock}");
    let human = tfenv(&project, &["lock", "dev"]);
    assert!(
        String::from_utf8_lossy(&human.stdout).contains(&format!(
            "tfenv unlock dev {}",
            info["ID"].as_str().unwrap()
        )),
        "{}",
        text(&human)
    );
    outputs.push(human);

    // (b) leased, no metadata: held by someone unknown, and how to break the lease.
    std::fs::write(&reply, azure_blob("leased", json!({})).to_string()).unwrap();
    let output = expect(
        tfenv(&project, &["lock", "dev", "--output", "json"]),
        0,
        "lock",
    );
    let lock = stdout_json(&output);
    outputs.push(output);
    assert_eq!(lock["held"], true, "{lock}");
    assert_eq!(lock["holder"], Value::Null, "{lock}");
    let human = lock_human(&project);
    assert!(human.contains("unknown holder"), "{human}");
    assert!(
        human.contains(
            "az storage blob lease break --account-name tfstateacct --container-name tfstate --blob-name dev.terraform.tfstate"
        ),
        "says how to break the lease: {human}"
    );

    // (c) lease available: not locked.
    std::fs::write(&reply, azure_blob("available", json!({})).to_string()).unwrap();
    let output = expect(
        tfenv(&project, &["lock", "dev", "--output", "json"]),
        0,
        "lock",
    );
    let lock = stdout_json(&output);
    outputs.push(output);
    assert_eq!(lock["held"], false, "{lock}");
    assert_eq!(lock["holder"], Value::Null, "{lock}");
    assert!(lock_human(&project).contains("dev: not locked"));

    let calls = calls(&log);
    assert_eq!(calls.len(), 6, "one az call per tfenv lock: {calls:?}");
    for (args, env) in &calls {
        assert_eq!(args[..3], ["storage", "blob", "show"], "{args:?}");
        assert_eq!(
            flag(args, "--account-name"),
            Some("tfstateacct"),
            "{args:?}"
        );
        assert_eq!(flag(args, "--container-name"), Some("tfstate"), "{args:?}");
        assert_eq!(
            flag(args, "--name"),
            Some("dev.terraform.tfstate"),
            "{args:?}"
        );
        assert_eq!(
            env,
            &[format!("AZURE_STORAGE_KEY={ACCESS_KEY}")],
            "{args:?}"
        );
        assert!(
            !args.iter().any(|a| a.contains(ACCESS_KEY)),
            "the key goes through the environment, not the command line: {args:?}"
        );
    }
    for output in &outputs {
        assert!(
            !text(output).contains(ACCESS_KEY),
            "the access key leaked into tfenv's output\n{}",
            text(output)
        );
    }
}

#[test]
fn gcs_lock_id_is_the_lock_objects_generation() {
    let project = project("gcs", "bucket = \"b\"\nprefix = \"p\"\n");
    let describe = project.join("describe.json");
    let body = project.join("lock.json");
    let log = fake_cli(
        &project,
        "gcloud",
        &[],
        &format!(
            r#"case "$1 $2 $3" in
  "storage objects describe")
    if [ -f '{describe}' ]; then cat '{describe}'; else
      echo 'ERROR: (gcloud.storage.objects.describe) The following URLs matched no objects or files:' >&2
      echo "-$4" >&2
      exit 1
    fi ;;
  "storage cat "*) cat '{body}' ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac"#,
            describe = describe.display(),
            body = body.display()
        ),
    );

    let generation = "1700000000123456";
    std::fs::write(
        &describe,
        json!({
            "bucket": "b",
            "content_type": "application/json",
            "crc32c_hash": "yZRlqg==",
            "creation_time": "2026-01-12T09:30:00+0000",
            "generation": generation,
            "md5_hash": "XrY7u+Ae7tCTyyK7j1rNww==",
            "metageneration": 1,
            "name": "p/default.tflock",
            "size": 212,
            "storage_class": "STANDARD",
            "storage_class_update_time": "2026-01-12T09:30:00+0000",
            "storage_url": format!("gs://b/p/default.tflock#{generation}"),
            "update_time": "2026-01-12T09:30:00+0000"
        })
        .to_string(),
    )
    .unwrap();
    // Terraform's own ID in the body is not what force-unlock wants on gcs.
    let info = lock_info(
        "1700000000123455",
        "bob@ci-runner",
        "gs://b/p/default.tflock",
    );
    std::fs::write(&body, info.to_string()).unwrap();

    let lock = lock_json(&project);
    assert_eq!(lock["backend"], "gcs", "{lock}");
    assert_eq!(lock["held"], true, "{lock}");
    assert_eq!(lock["holder"]["id"], generation, "{lock}");
    assert_eq!(lock["holder"]["who"], "bob@ci-runner", "{lock}");
    assert_eq!(lock["holder"]["operation"], "OperationTypeApply", "{lock}");
    assert_eq!(lock["source"], "gs://b/p/default.tflock", "{lock}");
    let human = lock_human(&project);
    assert!(
        human.contains(&format!("tfenv unlock dev {generation}")),
        "{human}"
    );

    let seen = calls(&log);
    let first = &seen[0].0;
    assert_eq!(
        first,
        &[
            "storage",
            "objects",
            "describe",
            "gs://b/p/default.tflock",
            "--format=json"
        ],
        "{seen:?}"
    );
    assert_eq!(
        seen[1].0,
        ["storage", "cat", "gs://b/p/default.tflock"],
        "{seen:?}"
    );

    std::fs::remove_file(&describe).unwrap();
    let lock = lock_json(&project);
    assert_eq!(lock["held"], false, "{lock}");
    assert_eq!(lock["holder"], Value::Null, "{lock}");
    assert!(lock_human(&project).contains("dev: not locked"));
}

#[test]
fn unsupported_backend_says_so_and_unlock_still_force_unlocks_through_terraform() {
    let project = project(
        "pg",
        "conn_str = \"postgres://tf:pg-secret@127.0.0.1/tfstate\"\n",
    );
    let output = expect(tfenv(&project, &["lock", "dev"]), 0, "tfenv lock dev");
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("lock inspection is not supported for backend `pg`"),
        "{}",
        text(&output)
    );
    let lock = lock_json(&project);
    assert_eq!(lock["supported"], false, "{lock}");
    assert_eq!(lock["held"], false, "{lock}");

    let terraform = FakeTerraform::working()
        .on("state", "true")
        .at("fake/terraform")
        .install(&project);
    let output = project
        .tfenv_with(&terraform)
        .env("PATH", project.fake_path())
        .args(["unlock", "dev", "some-id", "--yes"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let output = expect(output, 0, "tfenv unlock dev some-id --yes");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("lock `some-id` released"),
        "{}",
        text(&output)
    );
    let calls = project.read("calls.log");
    assert_eq!(
        calls
            .lines()
            .filter(|l| l.starts_with("force-unlock"))
            .collect::<Vec<_>>(),
        ["force-unlock -no-color -force some-id"],
        "{calls}"
    );
    let history = project.read("state/dev/history.jsonl");
    let last: Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(last["command"], "unlock", "{last}");
    assert_eq!(last["exit_code"], 0, "{last}");
    assert!(!text(&output).contains("pg-secret"), "{}", text(&output));
}

#[test]
fn reading_an_azurerm_lock_without_the_azure_cli_says_how_to_install_it() {
    let project = project(
        "azurerm",
        "storage_account_name = \"a\"\ncontainer_name = \"c\"\nkey = \"k\"\n",
    );
    let output = expect(tfenv(&project, &["lock", "dev"]), 1, "tfenv lock dev");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the Azure CLI (`az`)") && stderr.contains("not on PATH"),
        "{}",
        text(&output)
    );
    assert!(stderr.contains("install-azure-cli"), "{}", text(&output));
}

#[test]
fn lock_all_prints_the_environments_array_even_for_one_environment() {
    let project = project("pg", "conn_str = \"postgres://x\"\n");
    let output = expect(
        tfenv(&project, &["lock", "--all", "--output", "json"]),
        0,
        "lock --all",
    );
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json["environments"].as_array().map(Vec::len),
        Some(1),
        "{json}"
    );

    // A state that is not locked: unlock says so, as one JSON document.
    let local = self::project("local", "path = \"state/dev/terraform.tfstate\"\n");
    let output = expect(
        tfenv(&local, &["unlock", "dev", "x", "--output", "json"]),
        0,
        "unlock",
    );
    let json: Value =
        serde_json::from_slice(&output.stdout).expect("unlock prints one JSON document");
    assert_eq!(json["lock"]["held"], false, "{json}");
}

#[test]
fn gcloud_gets_the_backends_endpoint_and_credentials_for_every_call() {
    let project = project(
        "gcs",
        "bucket = \"b\"\nprefix = \"p\"\ncredentials = \"/keys/sa.json\"\nstorage_custom_endpoint = \"http://127.0.0.1:4443/storage/v1/\"\n",
    );
    let log = fake_cli(
        &project,
        "gcloud",
        &[
            "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE",
        ],
        r#"case "$2" in
  objects) echo '{"generation": "17"}' ;;
  cat) echo '{"ID":"x","Operation":"OperationTypeApply","Who":"e@h","Version":"1.11.4","Created":"2026-11-22T09:00:00Z","Path":"p","Info":""}' ;;
esac"#,
    );
    let json = lock_json(&project);
    assert_eq!(json["holder"]["id"], "17", "{json}");
    let calls = calls(&log);
    assert_eq!(calls.len(), 2, "{calls:?}");
    for (args, env) in &calls {
        assert!(
            env.contains(&"CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE=/keys/sa.json".to_string()),
            "{args:?} {env:?}"
        );
        assert!(
            env.contains(
                &"CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=http://127.0.0.1:4443/storage/v1/"
                    .to_string()
            ),
            "{args:?} {env:?}"
        );
    }
}

/// What terraform 1.11's local backend prints when it cannot write
/// `.terraform.tfstate.lock.info` (a full disk): the lock heading, but no `Lock Info`.
const LOCK_NOT_TAKEN: &str = r#"printf '\n╷\n│ Error: Error acquiring the state lock\n│ \n│ Error message: could not write lock info for "terraform.tfstate": write\n│ .terraform.tfstate.lock.info: no space left on device\n│ \n│ Terraform acquires a state lock to protect the state from being written\n│ by multiple users at the same time. Please resolve the issue above and try\n│ again. For most commands, you can disable locking with the "-lock=false"\n│ flag, but this is not recommended.\n╵\n' >&2; exit 1"#;

#[test]
fn a_lock_terraform_could_not_take_is_a_failure_with_its_message_not_a_held_lock() {
    let project = project("local", "");
    let terraform = FakeTerraform::empty()
        .on("init", r#"mkdir -p "$TF_DATA_DIR""#)
        .on("workspace", "echo \"* default\"")
        .on("plan", LOCK_NOT_TAKEN)
        .at("fake/terraform")
        .install(&project);
    let output = project
        .tfenv_with(&terraform)
        .args(["deploy", "dev", "--yes"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let output = expect(output, 1, "a deploy whose lock could not be taken");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Error acquiring the state lock")
            && stderr.contains("no space left on device"),
        "terraform's own message: {}",
        text(&output)
    );
    assert!(!stderr.contains("locked by"), "{}", text(&output));
    assert_eq!(project.last_history("dev")["exit_code"], 1);
}

#[test]
fn an_empty_local_lock_info_file_is_a_stale_leftover_that_unlock_removes() {
    let project = project("local", "");
    let info = project.write(".terraform.tfstate.lock.info", "");

    let lock = lock_json(&project);
    assert_eq!(lock["held"], false, "{lock}");
    assert_eq!(lock["stale"], true, "{lock}");
    assert!(
        lock["note"].as_str().unwrap().contains("empty leftover"),
        "{lock}"
    );
    let human = lock_human(&project);
    assert!(human.contains("dev: not locked ("), "{human}");
    assert!(human.contains("tfenv unlock dev -"), "{human}");

    let status = stdout_json(&tfenv(&project, &["status", "dev", "--output", "json"]));
    let env = &status["environments"][0];
    assert_eq!(env["lock"]["stale"], true, "{status}");
    assert!(
        env["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["code"] != "lock-unreadable"),
        "{status}"
    );
    let human = String::from_utf8(tfenv(&project, &["status", "dev"]).stdout).unwrap();
    assert!(human.contains("stale"), "{human}");

    // Only `-` (the leftover names no ID) removes it; no terraform is needed.
    expect(
        tfenv(&project, &["unlock", "dev", "9db590f1", "--yes"]),
        5,
        "unlock with an ID the leftover does not have",
    );
    assert!(info.exists());
    let output = expect(
        tfenv(&project, &["unlock", "dev", "-", "--yes"]),
        0,
        "unlock dev -",
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("removed the leftover lock info file"),
        "{}",
        text(&output)
    );
    assert!(!info.exists());
    assert_eq!(lock_json(&project)["stale"], false);
}

/// Paths in JSON are relative to the project, the local lock's info file included.
#[test]
fn a_local_locks_info_file_is_shown_relative_to_the_project() {
    let project = project("local", "");
    project.write(".terraform.tfstate.lock.info", "");
    let lock = lock_json(&project);
    assert_eq!(
        lock["source"], "file:.terraform.tfstate.lock.info",
        "{lock}"
    );
    assert!(
        lock["note"]
            .as_str()
            .unwrap()
            .starts_with("`.terraform.tfstate.lock.info` is an empty leftover"),
        "{lock}"
    );
    let root = project.path().display().to_string();
    let unlocked = tfenv(
        &project,
        &["unlock", "dev", "-", "--yes", "--output", "json"],
    );
    let json = stdout_json(&expect(unlocked, 0, "unlock dev -"));
    assert_eq!(json["removed"], ".terraform.tfstate.lock.info", "{json}");
    assert!(!json.to_string().contains(&root), "{json}");
}

/// terraform's local lock lives as long as the process holding the state file's OS lock:
/// `force-unlock` cannot break it (terraform says "LocalState not locked"). unlock says
/// which process holds it and stops with exit 4, without running terraform.
#[test]
fn unlock_of_a_local_lock_held_by_a_live_process_is_refused_without_terraform() {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;
    let project = project("local", "");
    FakeTerraform::working().install(&project);
    let state = project.write("terraform.tfstate", crate::support::fake::STATE);
    project.write(
        ".terraform.tfstate.lock.info",
        &lock_info("9db590f1", "alice@laptop", "terraform.tfstate").to_string(),
    );
    // This test holds the state file's lock, as a running terraform does.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&state)
        .unwrap();
    let lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(&file, FcntlArg::F_SETLK(&lock)).unwrap();

    let output = expect(
        tfenv(&project, &["unlock", "dev", "9db590f1", "--yes"]),
        4,
        "unlock of a local lock a live process holds",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let pid = std::process::id();
    assert!(
        stderr.contains(&format!(
            "the state of `dev` is locked by a live process (pid {pid}; alice@laptop"
        )) && stderr.contains("cannot be force-unlocked"),
        "{}",
        text(&output)
    );
    assert!(stderr.contains(&format!("kill -INT {pid}")), "{stderr}");
    assert!(
        !project.read_or_empty("calls.log").contains("force-unlock"),
        "no terraform force-unlock ran: {}",
        project.read_or_empty("calls.log")
    );
    let json = stdout_json(&tfenv(
        &project,
        &["unlock", "dev", "9db590f1", "--yes", "--output", "json"],
    ));
    assert_eq!(json["error"]["exit_code"], 4, "{json}");
    drop(file);
}

#[test]
fn locks_are_read_through_the_fake_clouds_that_keep_objects_in_a_folder() {
    // azurerm: a state blob without a lease is not locked.
    let azure = project(
        "azurerm",
        &format!(
            "storage_account_name = \"tfstateacct\"\ncontainer_name = \"tfstate\"\nkey = \"dev.terraform.tfstate\"\naccess_key = \"{ACCESS_KEY}\"\n"
        ),
    );
    let az = FakeCloud::az(&azure, &["AZURE_STORAGE_KEY"]);
    az.put("tfstateacct/tfstate/dev.terraform.tfstate", b"{}");
    let lock = lock_json(&azure);
    assert_eq!(
        (&lock["held"], &lock["source"]),
        (
            &Value::from(false),
            &Value::from("azurerm://tfstateacct/tfstate/dev.terraform.tfstate")
        ),
        "{lock}"
    );
    let seen = az.calls();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].1,
        [format!("AZURE_STORAGE_KEY={ACCESS_KEY}")],
        "{seen:?}"
    );

    // gcs: the lock object's generation is the lock ID.
    let google = project("gcs", "bucket = \"b\"\nprefix = \"p\"\n");
    let gcloud = FakeCloud::gcloud(&google, &[]);
    gcloud.put("b/p/default.tfstate", b"{}");
    let info = lock_info("x", "carol@ci", "gs://b/p/default.tflock");
    gcloud.put("b/p/default.tflock", info.to_string().as_bytes());
    let lock = lock_json(&google);
    assert_eq!(lock["held"], true, "{lock}");
    assert_eq!(lock["holder"]["id"], "1700000000000002", "{lock}");
    assert_eq!(lock["holder"]["who"], "carol@ci", "{lock}");
    assert_eq!(
        gcloud.names("b/p/"),
        ["p/default.tflock", "p/default.tfstate"]
    );
}

/// Runs a fake CLI of `project` directly.
fn run_fake(project: &Project, cli: &str, args: &[&str]) -> Output {
    std::process::Command::new(project.join(&format!("bin/{cli}")))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_fake_clouds_refuse_calls_the_real_clis_would_not_take_and_never_overwrite_on_create() {
    let project = project("gcs", "bucket = \"b\"\n");
    let az = FakeCloud::az(&project, &[]);
    let gcloud = FakeCloud::gcloud(&project, &[]);
    let file = project.write("record.json", "{\"n\":1}");
    let file = file.to_str().unwrap();
    let upload = [
        "storage",
        "blob",
        "upload",
        "--account-name",
        "a",
        "--container-name",
        "c",
        "--name",
        "k.tfenv/history/1.json",
        "--file",
        file,
        "--overwrite",
        "false",
        "--no-progress",
    ];
    let first = run_fake(&project, "az", &upload);
    assert!(first.status.success(), "{}", text(&first));
    let again = run_fake(&project, "az", &upload);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        text(&again).contains("ErrorCode:BlobAlreadyExists"),
        "{}",
        text(&again)
    );
    assert_eq!(az.get("a/c/k.tfenv/history/1.json").unwrap(), b"{\"n\":1}");

    let to = "gs://b/k.tfenv/history/1.json";
    let create = ["storage", "cp", file, to, "--if-generation-match=0"];
    assert!(run_fake(&project, "gcloud", &create).status.success());
    let again = run_fake(&project, "gcloud", &create);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("HTTPError 412"), "{}", text(&again));
    assert_eq!(gcloud.names("b/"), ["k.tfenv/history/1.json"]);

    for (cli, args) in [
        // A listing that stops at 5000 blobs.
        (
            "az",
            &[
                "storage",
                "blob",
                "list",
                "--account-name",
                "a",
                "--container-name",
                "c",
                "--prefix",
                "k",
                "--output",
                "json",
            ][..],
        ),
        // A flag az does not have.
        (
            "az",
            &[
                "storage",
                "blob",
                "download",
                "--account-name",
                "a",
                "--container-name",
                "c",
                "--name",
                "k",
                "--file",
                file,
                "--all-versions",
            ][..],
        ),
        // `objects list` has no --all-versions: it lists noncurrent generations anyway.
        (
            "gcloud",
            &[
                "storage",
                "objects",
                "list",
                "gs://b/k",
                "--all-versions",
                "--format=json",
            ][..],
        ),
        (
            "gcloud",
            &["storage", "objects", "list", "gs://b/k*", "--format=json"][..],
        ),
        ("gcloud", &["storage", "rm", "gs://b/k"][..]),
    ] {
        let output = run_fake(&project, cli, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{cli} {args:?}: {}",
            text(&output)
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).starts_with("unexpected: "),
            "{cli} {args:?}: {}",
            text(&output)
        );
    }
}
