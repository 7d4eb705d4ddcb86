//! What tfenv keeps in azurerm and gcs storage, which has no emulator here: the state's
//! versions (`backups <env> --versions`, `restore <env> version:<ID>`) and the shared
//! ledger (`plan --publish`, `deploy --plan ledger:<ID>`), through the fake `az` and
//! `gcloud` of `support::clouds`, which keep every version of every blob/object in a
//! folder and refuse any argv the real CLIs would not take. (s3 runs on moto: tests/e2e.)

use std::process::Output;

use serde_json::Value;

use crate::support::clouds::{FakeCloud, fake_path_without, flag};
use crate::support::fake::FakeTerraform;
use crate::support::{Project, expecting, output_text as text, stdout_json};

/// A secret that must never reach the command line or tfenv's output.
const ACCESS_KEY: &str = "c3VwZXItc2VjcmV0LWF6dXJlLWtleQ==";

/// A project whose dev environment uses `backend "<kind>" {}` with `conf`.
fn project(kind: &str, conf: &str) -> Project {
    project_with(kind, conf, "")
}

/// `project`, with `toml` at the top of tfenv.toml.
fn project_with(kind: &str, conf: &str, toml: &str) -> Project {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        &format!("{toml}[environments.dev]\ntier = \"development\"\nbackend_config = \"environments/dev.backend.conf\"\nvar_files = [\"environments/dev.tfvars\"]\n"),
    );
    project.write(
        "main.tf",
        &format!("terraform {{\n  backend \"{kind}\" {{}}\n}}\n"),
    );
    project.write("environments/dev.backend.conf", conf);
    project.write("environments/dev.tfvars", "");
    project
}

/// The state terraform wrote at `serial` (the fake terraform's lineage).
fn state(serial: u64) -> String {
    format!(
        r#"{{"version":4,"terraform_version":"1.11.4","serial":{serial},"lineage":"abc","outputs":{{}},"resources":[]}}"#
    )
}

/// tfenv with the fake terraform and only the project's fakes on PATH.
fn tfenv(project: &Project, args: &[&str], code: i32) -> Output {
    tfenv_on(project, &project.fake_path(), args, code)
}

fn tfenv_on(project: &Project, path: &str, args: &[&str], code: i32) -> Output {
    let terraform = FakeTerraform::working()
        .at("fake/terraform")
        .install(project);
    let output = project
        .tfenv_with(&terraform)
        .env("PATH", path)
        .env_remove("AZURE_STORAGE_KEY")
        .env_remove("AZURE_STORAGE_CONNECTION_STRING")
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    expecting(output, code)
}

fn versions(project: &Project) -> Value {
    stdout_json(&tfenv(
        project,
        &["backups", "dev", "--versions", "--output", "json"],
        0,
    ))
}

/// (id, serial, latest) of each listed version.
fn listed(report: &Value) -> Vec<(String, u64, bool)> {
    report["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("{report:#}"))
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["serial"].as_u64().unwrap_or_else(|| panic!("{report:#}")),
                v["latest"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Restores `id` and checks it went through a backup of its own and `state push`.
fn restore(project: &Project, id: &str, serial: u64) {
    let version = format!("version:{id}");
    let restored = stdout_json(&tfenv(
        project,
        &["restore", "dev", &version, "--yes", "--output", "json"],
        0,
    ));
    let manifest = project.read("state/dev/backups/MANIFEST.jsonl");
    let line: Value = manifest
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|b| b["reason"] == format!("bucket-version {id}"))
        .unwrap_or_else(|| panic!("no backup of the version in the manifest:\n{manifest}"));
    assert_eq!(line["serial"].as_u64(), Some(serial), "{line}");
    assert_eq!(restored["restored"], line["file"], "{restored:#}");
    let pushed: Value = serde_json::from_str(&project.read("pushed.tfstate")).unwrap();
    assert_eq!(pushed["lineage"], "abc", "{pushed}");
    assert!(
        pushed["serial"].as_u64().unwrap() > 3,
        "pushed over the current serial: {pushed}"
    );
}

#[test]
fn azurerm_state_versions_are_listed_and_restored_through_az() {
    let project = project(
        "azurerm",
        &format!(
            "storage_account_name = \"tfstateacct\"\ncontainer_name = \"tfstate\"\nkey = \"dev.terraform.tfstate\"\naccess_key = \"{ACCESS_KEY}\"\n"
        ),
    );
    let az = FakeCloud::az(&project, &["AZURE_STORAGE_KEY"]);
    for serial in 1..=3 {
        az.put(
            "tfstateacct/tfstate/dev.terraform.tfstate",
            state(serial).as_bytes(),
        );
    }
    // Under the same prefix, neither of which is a version of the state.
    az.put(
        "tfstateacct/tfstate/dev.terraform.tfstate.tfenv/history/1.json",
        b"{}",
    );
    az.put("tfstateacct/tfstate/dev.terraform.tfstateenv:qa", b"{}");

    let report = versions(&project);
    assert_eq!(
        report["state"], "azurerm://tfstateacct/tfstate/dev.terraform.tfstate",
        "{report:#}"
    );
    let all = listed(&report);
    assert_eq!(
        all.iter().map(|v| (v.1, v.2)).collect::<Vec<_>>(),
        [(3, true), (2, false), (1, false)],
        "{report:#}"
    );
    assert_eq!(report["versions"][0]["lineage"], "abc", "{report:#}");
    assert_eq!(report["warnings"], serde_json::json!([]), "{report:#}");

    restore(&project, &all[2].0, 1);

    let calls = az.calls();
    assert!(!calls.is_empty());
    for (args, env) in &calls {
        assert_eq!(args[..2], ["storage", "blob"], "{args:?}");
        assert_eq!(
            flag(args, "--account-name"),
            Some("tfstateacct"),
            "{args:?}"
        );
        assert_eq!(flag(args, "--container-name"), Some("tfstate"), "{args:?}");
        assert_eq!(
            env,
            &[format!("AZURE_STORAGE_KEY={ACCESS_KEY}")],
            "{args:?}"
        );
        assert!(!args.iter().any(|a| a.contains(ACCESS_KEY)), "{args:?}");
    }
    // The versions' heads are byte ranges; the restored version is read whole.
    let last_byte = (report["versions"][0]["bytes"].as_u64().unwrap() - 1).to_string();
    assert!(calls.iter().any(|(args, _)| {
        args[2] == "download"
            && flag(args, "--version-id") == Some(&all[0].0)
            && flag(args, "--start-range") == Some("0")
            && flag(args, "--end-range") == Some(last_byte.as_str())
    }));
    assert!(calls.iter().any(|(args, _)| {
        args[2] == "download"
            && flag(args, "--version-id") == Some(&all[2].0)
            && flag(args, "--end-range").is_none()
    }));
    let human = tfenv(&project, &["backups", "dev", "--versions"], 0);
    assert!(
        String::from_utf8_lossy(&human.stdout).contains(&all[1].0),
        "{}",
        text(&human)
    );
    assert!(!text(&human).contains(ACCESS_KEY), "{}", text(&human));
}

#[test]
fn gcs_state_generations_are_listed_and_restored_through_gcloud() {
    let project = project(
        "gcs",
        "bucket = \"b\"\nprefix = \"app\"\ncredentials = \"/keys/sa.json\"\n",
    );
    let gcloud = FakeCloud::gcloud(&project, &["CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE"]);
    for serial in 1..=3 {
        gcloud.put("b/app/default.tfstate", state(serial).as_bytes());
    }
    gcloud.put("b/app/default.tfstate.tfenv/history/1.json", b"{}");
    gcloud.put("b/app/default.tflock", b"{}");

    let report = versions(&project);
    assert_eq!(report["state"], "gs://b/app/default.tfstate", "{report:#}");
    let all = listed(&report);
    assert_eq!(
        all,
        [
            ("1700000000000003".to_string(), 3, true),
            ("1700000000000002".to_string(), 2, false),
            ("1700000000000001".to_string(), 1, false),
        ],
        "{report:#}"
    );

    restore(&project, "1700000000000001", 1);

    let calls = gcloud.calls();
    for (args, env) in &calls {
        assert_eq!(
            env,
            &["CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE=/keys/sa.json"],
            "{args:?}"
        );
    }
    let seen: Vec<String> = calls.iter().map(|(args, _)| args[..3].join(" ")).collect();
    let last_byte = report["versions"][0]["bytes"].as_u64().unwrap() - 1;
    assert!(
        seen.contains(&"storage objects list".to_string())
            && seen.contains(&format!("storage cat --range=0-{last_byte}"))
            && calls.iter().any(|(args, _)| args[1] == "cp"
                && args[2] == "gs://b/app/default.tfstate#1700000000000001"),
        "{seen:?}"
    );
}

#[test]
fn an_unknown_version_id_is_refused_naming_the_listing() {
    let project = project("gcs", "bucket = \"b\"\n");
    let gcloud = FakeCloud::gcloud(&project, &[]);
    gcloud.put("b/default.tfstate", state(3).as_bytes());
    let output = tfenv(&project, &["restore", "dev", "version:42", "--yes"], 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`42` is not a version of `gs://b/default.tfstate`")
            && stderr.contains("tfenv backups dev --versions"),
        "{}",
        text(&output)
    );
}

#[test]
fn versions_without_the_cloud_cli_say_how_to_install_it() {
    for (kind, conf, cli, install) in [
        (
            "azurerm",
            "storage_account_name = \"a\"\ncontainer_name = \"c\"\nkey = \"k\"\n",
            "the Azure CLI (`az`)",
            "install-azure-cli",
        ),
        (
            "gcs",
            "bucket = \"b\"\n",
            "the Google Cloud CLI (`gcloud`)",
            "cloud.google.com/sdk/docs/install",
        ),
    ] {
        let project = project(kind, conf);
        let path = fake_path_without(&project, &["az", "gcloud"]);
        let output = tfenv_on(&project, &path, &["backups", "dev", "--versions"], 1);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(cli) && stderr.contains("not on PATH") && stderr.contains(install),
            "{kind}: {}",
            text(&output)
        );
    }
}

#[test]
fn a_denied_listing_is_a_permission_error_naming_the_identity_and_the_data_action() {
    let project = project(
        "azurerm",
        "storage_account_name = \"a\"\ncontainer_name = \"c\"\nkey = \"k\"\nuse_azuread_auth = true\n",
    );
    crate::support::clouds::fake_cli(
        &project,
        "az",
        &[],
        "echo 'WARNING: the default subscription is not set' >&2\necho 'ERROR: This request is not authorized to perform this operation using this permission.' >&2\necho 'ErrorCode:AuthorizationPermissionMismatch' >&2\nexit 1",
    );
    let output = tfenv(&project, &["backups", "dev", "--versions"], 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The login worked: the identity lacks a role, which is what the hint says to grant.
    assert!(
        stderr.contains("permission denied: `az storage blob list --include v` of `azurerm://a/c/k`: ERROR: This request is not authorized to perform this operation using this permission.")
            && stderr.contains("tfenv used the account `az login` signed in (`use_azuread_auth`)")
            && stderr.contains("grant `Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read` on the container `c` of `a`")
            && stderr.contains("docs/team.md"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_refused_credential_names_the_state_and_the_clis_error() {
    let project = project(
        "azurerm",
        "storage_account_name = \"a\"\ncontainer_name = \"c\"\nkey = \"k\"\nuse_azuread_auth = true\n",
    );
    crate::support::clouds::fake_cli(
        &project,
        "az",
        &[],
        "echo 'ERROR: Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.' >&2\necho 'ErrorCode:AuthenticationFailed' >&2\nexit 1",
    );
    let output = tfenv(&project, &["backups", "dev", "--versions"], 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`az storage blob list --include v` of `azurerm://a/c/k` failed: ERROR: Server failed to authenticate the request.")
            && stderr.contains("use_azuread_auth")
            && !stderr.contains("permission denied"),
        "{}",
        text(&output)
    );
}

/// `plan dev --publish` then `deploy dev --plan ledger:<ID>` with the shared ledger in
/// `kind` storage: the bundle's objects are written create-only beside the state, listed
/// and downloaded back, and applied.
fn publish_and_apply(kind: &str, conf: &str, cli: fn(&Project) -> FakeCloud, folder: &str) {
    let project = project_with(kind, conf, "[project]\nledger = \"backend\"\n");
    let fake = cli(&project);
    let planned = stdout_json(&tfenv(
        &project,
        &["plan", "dev", "--publish", "--output", "json"],
        0,
    ));
    let id = planned["published"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{planned:#}"))
        .to_string();
    let plans = format!("{folder}plans/{id}/");
    let names = fake.names(&plans);
    assert!(
        names.iter().any(|n| n.ends_with("/bundle.json"))
            && names.iter().any(|n| n.ends_with("/terraform.plan")),
        "{names:?}"
    );
    let plan = format!("ledger:{id}");
    let applied = stdout_json(&tfenv(
        &project,
        &[
            "deploy", "dev", "--plan", &plan, "--yes", "--output", "json",
        ],
        0,
    ));
    assert_eq!(applied["result"], "applied", "{applied:#}");
    assert_eq!(
        applied["bundle"]["sha256"], planned["published"]["sha256"],
        "{applied:#}"
    );
    // Every upload was create-only.
    let calls = fake.calls();
    let uploads: Vec<&Vec<String>> = calls
        .iter()
        .map(|(args, _)| args)
        .filter(|args| {
            args[..3] == ["storage", "blob", "upload"]
                || (args[1] == "cp" && args[3].starts_with("gs://"))
        })
        .collect();
    assert!(uploads.len() >= 2, "{calls:?}");
    for args in uploads {
        assert!(
            flag(args, "--overwrite") == Some("false")
                || args.contains(&"--if-generation-match=0".to_string()),
            "{args:?}"
        );
    }
}

#[test]
fn a_plan_is_published_to_and_applied_from_the_shared_ledger_in_azure_storage() {
    publish_and_apply(
        "azurerm",
        &format!(
            "storage_account_name = \"tfstateacct\"\ncontainer_name = \"tfstate\"\nkey = \"dev.terraform.tfstate\"\naccess_key = \"{ACCESS_KEY}\"\n"
        ),
        |project| FakeCloud::az(project, &["AZURE_STORAGE_KEY"]),
        "tfstateacct/tfstate/dev.terraform.tfstate.tfenv/",
    );
}

#[test]
fn a_plan_is_published_to_and_applied_from_the_shared_ledger_in_cloud_storage() {
    publish_and_apply(
        "gcs",
        "bucket = \"b\"\nprefix = \"app\"\n",
        |project| FakeCloud::gcloud(project, &[]),
        "b/app/default.tfstate.tfenv/",
    );
}

/// The shared ledger (`ledger = "backend"`) in `kind` storage: a deploy's record and a
/// backup go up create-only beside the state; with this machine's `state/` gone,
/// `history` and `backups` still list them (where: shared) and the backup is restored
/// from there.
fn ledger_outlives_the_state_folder(
    kind: &str,
    conf: &str,
    cli: fn(&Project) -> FakeCloud,
    folder: &str,
) {
    let project = project_with(kind, conf, "[project]\nledger = \"backend\"\n");
    let fake = cli(&project);
    tfenv(&project, &["deploy", "dev", "--yes"], 0);
    let output = tfenv(&project, &["backup", "dev", "--output", "json"], 0);
    let taken = stdout_json(&output);
    let name = taken["backups"][0]["backup"]["file"]
        .as_str()
        .unwrap_or_else(|| panic!("{taken:#}"))
        .to_string();
    // The backup says it went to the shared ledger (the deploy's record already had).
    let shared = &taken["backups"][0]["shared"];
    assert_eq!(shared["backups"], 1, "{taken:#}");
    assert_eq!(shared["records"], 0, "{taken:#}");
    assert!(
        text(&output).contains("dev: shared 1 backup in "),
        "{}",
        text(&output)
    );
    let records = fake.names(&format!("{folder}history/"));
    assert_eq!(records.len(), 1, "the deploy's record: {records:?}");
    let backups = fake.names(&format!("{folder}backups/"));
    assert!(
        backups.iter().any(|n| n.ends_with(&format!("/{name}")))
            && backups
                .iter()
                .any(|n| n.ends_with(&format!("/{name}.json"))),
        "{backups:?}"
    );

    // This machine's own deploy and backup: `by` it all the same (the column reads
    // the same whoever ran it), and not marked shared-only.
    let me = format!(
        " by {}@",
        String::from_utf8(
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .unwrap()
                .stdout
        )
        .unwrap()
        .trim()
    );
    let status = text(&tfenv(&project, &["status", "dev"], 0));
    assert!(
        status.contains(&me) && !status.contains("(shared)"),
        "{status}"
    );

    std::fs::remove_dir_all(project.join("state")).unwrap();
    // Now both live only in the shared ledger, and status says so.
    let status = text(&tfenv(&project, &["status", "dev"], 0));
    let row = status
        .lines()
        .find(|l| l.starts_with("dev "))
        .unwrap_or_default();
    // BACKUP `… ago (shared)`, LAST DEPLOY `applied … ago by me@here (shared)`.
    assert!(row.contains("ago (shared)"), "{status}");
    assert!(row.contains(&me), "{status}");
    assert_eq!(row.matches("(shared)").count(), 2, "{status}");
    let said = text(&tfenv(&project, &["verify", "dev"], 0));
    assert!(
        said.contains("dev: 1 shared verified, 0 local verified"),
        "{said}"
    );
    let history = stdout_json(&tfenv(&project, &["history", "dev", "--output", "json"], 0));
    let records = history["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{history:#}");
    assert_eq!(records[0]["command"], "deploy", "{history:#}");
    assert_eq!(records[0]["where"], "shared", "{history:#}");
    let listed = stdout_json(&tfenv(&project, &["backups", "dev", "--output", "json"], 0));
    let shared: Vec<&Value> = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["file"] == name.as_str())
        .collect();
    assert_eq!(shared.len(), 1, "{listed:#}");
    assert_eq!(shared[0]["where"], "shared", "{listed:#}");
    let output = tfenv(
        &project,
        &["restore", "dev", &name, "--yes", "--output", "json"],
        0,
    );
    let restored = stdout_json(&output);
    assert_eq!(restored["restored"], name.as_str(), "{restored:#}");
    let said = text(&output);
    assert!(
        said.contains(&format!("dev: downloaded `{name}` from "))
            && said.contains(&format!(".tfenv/backups/{name}, sha256 checked")),
        "{said}"
    );
    // The restore's record says what it restored.
    let history = stdout_json(&tfenv(&project, &["history", "dev", "--output", "json"], 0));
    let last = history["records"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["command"], "restore", "{history:#}");
    assert_eq!(last["restored"], name.as_str(), "{history:#}");
    let table = text(&tfenv(&project, &["history", "dev"], 0));
    assert!(table.contains(&format!("restore ← {name}")), "{table}");

    // Every upload was create-only, and nothing was ever deleted.
    let calls = fake.calls();
    for (args, _) in &calls {
        let upload = args[..3] == ["storage", "blob", "upload"]
            || (args[1] == "cp" && args[3].starts_with("gs://"));
        if upload {
            assert!(
                flag(args, "--overwrite") == Some("false")
                    || args.contains(&"--if-generation-match=0".to_string()),
                "{args:?}"
            );
        }
        assert!(!args.iter().any(|a| a == "delete" || a == "rm"), "{args:?}");
    }
}

#[test]
fn the_shared_ledger_in_azure_storage_outlives_this_machines_state_folder() {
    ledger_outlives_the_state_folder(
        "azurerm",
        &format!(
            "storage_account_name = \"tfstateacct\"\ncontainer_name = \"tfstate\"\nkey = \"dev.terraform.tfstate\"\naccess_key = \"{ACCESS_KEY}\"\n"
        ),
        |project| FakeCloud::az(project, &["AZURE_STORAGE_KEY"]),
        "tfstateacct/tfstate/dev.terraform.tfstate.tfenv/",
    );
}

#[test]
fn the_shared_ledger_in_cloud_storage_outlives_this_machines_state_folder() {
    ledger_outlives_the_state_folder(
        "gcs",
        "bucket = \"b\"\nprefix = \"app\"\n",
        |project| FakeCloud::gcloud(project, &[]),
        "b/app/default.tfstate.tfenv/",
    );
}

/// The backups in `state/dev/backups/`'s manifest: (file, shared name, unshared).
fn manifest(project: &Project) -> Vec<(String, Option<String>, bool)> {
    project
        .read("state/dev/backups/MANIFEST.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|b| {
            (
                b["file"].as_str().unwrap().to_string(),
                b["shared"].as_str().map(str::to_string),
                b["unshared"] == true,
            )
        })
        .collect()
}

/// A backup whose upload failed is this machine's only copy: neither `prune --yes` nor
/// the automatic prune after a deploy (`backup_keep`) deletes it while it is not in the
/// shared ledger; once an upload succeeds, prune deletes it as any other.
#[test]
fn prune_never_deletes_a_backup_that_is_not_in_the_shared_ledger_yet() {
    let project = project_with("gcs", "bucket = \"b\"\nprefix = \"app\"\n", "");
    project.write(
        "tfenv.toml",
        "[project]\nledger = \"backend\"\n[environments.dev]\ntier = \"development\"\nbackend_config = \"environments/dev.backend.conf\"\nvar_files = [\"environments/dev.tfvars\"]\nbackup_keep = 1\n",
    );
    // No gcloud: every upload fails.
    let offline = fake_path_without(&project, &["gcloud"]);
    tfenv_on(&project, &offline, &["deploy", "dev", "--yes"], 0);
    for _ in 0..3 {
        tfenv_on(&project, &offline, &["backup", "dev"], 0);
    }
    let deployed = tfenv_on(&project, &offline, &["deploy", "dev", "--yes"], 0);
    // The fake plan finds no changes: the deploy took no backup, and pruned.
    let backups = manifest(&project);
    assert_eq!(backups.len(), 3, "{backups:?}\n{}", text(&deployed));
    assert!(backups.iter().all(|b| b.2), "all unshared: {backups:?}");
    assert!(
        text(&deployed).contains("kept 2 not in the shared ledger yet"),
        "{}",
        text(&deployed)
    );
    let table = text(&tfenv_on(&project, &offline, &["history", "dev"], 0));
    assert!(table.contains("local (unshared)"), "{table}");

    let pruned = tfenv_on(
        &project,
        &offline,
        &["prune", "dev", "--keep", "1", "--yes", "--output", "json"],
        0,
    );
    let report = stdout_json(&pruned);
    assert_eq!(report["deleted"], serde_json::json!([]), "{report:#}");
    let reasons: Vec<&str> = report["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["newest", "unshared", "unshared"], "{report:#}");
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("kept 2 backup(s) of `dev` that are not in the shared ledger at `gs://b/app/default.tfstate.tfenv/` yet")),
        "{report:#}"
    );
    assert_eq!(manifest(&project).len(), 3);
    for (file, _, _) in manifest(&project) {
        assert!(
            project.join(&format!("state/dev/backups/{file}")).is_file(),
            "{file}"
        );
    }

    // The ledger is back: prune uploads them first, then deletes the local copies.
    let fake = FakeCloud::gcloud(&project, &[]);
    let pruned = tfenv(&project, &["prune", "dev", "--keep", "1", "--yes"], 0);
    // Turning the ledger on (or its coming back) is said once, with what went up.
    assert!(
        text(&pruned).contains(
            "dev: shared 2 history records and 3 backups in gs://b/app/default.tfstate.tfenv/"
        ),
        "{}",
        text(&pruned)
    );
    let left = manifest(&project);
    assert_eq!(left.len(), 1, "{left:?}\n{}", text(&pruned));
    let shared = fake.names("b/app/default.tfstate.tfenv/backups/");
    assert_eq!(shared.len(), 6, "every backup and its entry: {shared:?}");
}

/// Another machine's backup of the same second took this machine's backup's name in the
/// bucket (this one is shared as `<name>-1`): `backups` names every row differently —
/// this machine's `<name> (shared as <name>-1)`, the other's `shared:<name>` — and
/// `restore` takes each by that name, or by its name in the bucket.
#[test]
fn backups_of_the_same_second_from_two_machines_each_have_a_name_restore_takes() {
    use sha2::Digest;
    let project = project_with(
        "gcs",
        "bucket = \"b\"\nprefix = \"app\"\n",
        "[project]\nledger = \"backend\"\n",
    );
    // Taken while the bucket cannot be reached: not uploaded yet.
    let offline = fake_path_without(&project, &["gcloud"]);
    let taken = stdout_json(&tfenv_on(
        &project,
        &offline,
        &["backup", "dev", "--output", "json"],
        0,
    ));
    let name = taken["backups"][0]["backup"]["file"]
        .as_str()
        .unwrap_or_else(|| panic!("{taken:#}"))
        .to_string();
    // Meanwhile machine C uploads its own backup of that second, under that name.
    let fake = FakeCloud::gcloud(&project, &[]);
    let theirs = r#"{"version":4,"terraform_version":"1.11.4","serial":7,"lineage":"abc","outputs":{"from":{"value":"machine-c","type":"string"}},"resources":[]}"#;
    let stamp = &name["terraform.tfstate.".len()..];
    let created = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d-%H%M%S")
        .unwrap()
        .and_utc();
    let entry = serde_json::json!({
        "file": name, "sha256": hex::encode(sha2::Sha256::digest(theirs.as_bytes())),
        "bytes": theirs.len(), "serial": 7, "lineage": "abc", "terraform_version": "1.11.4",
        "created": created, "reason": "manual", "origin": "machine-c"
    });
    let folder = "b/app/default.tfstate.tfenv/backups/";
    fake.put(&format!("{folder}{name}"), theirs.as_bytes());
    fake.put(
        &format!("{folder}{name}.json"),
        entry.to_string().as_bytes(),
    );
    // The next command that writes the ledger uploads ours under the next free name.
    let pruned = tfenv(&project, &["prune", "dev", "--keep", "10", "--yes"], 0);
    let ours = format!("{name}-1");
    assert!(
        text(&pruned).contains(&format!(
            "dev: backup `{name}` is stored as `{ours}` in the shared ledger (the name was taken"
        )),
        "{}",
        text(&pruned)
    );
    assert!(fake.get(&format!("{folder}{ours}.json")).is_some());

    let listed = stdout_json(&tfenv(&project, &["backups", "dev", "--output", "json"], 0));
    let rows: Vec<(String, String, String)> = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                b["file"].as_str().unwrap().to_string(),
                b["where"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let explicit = format!("shared:{name}");
    assert!(
        rows.contains(&(name.clone(), name.clone(), "both".into()))
            && rows.contains(&(explicit.clone(), name.clone(), "shared".into())),
        "{listed:#}"
    );
    let mut names: Vec<&String> = rows.iter().map(|r| &r.0).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), rows.len(), "every name once: {rows:?}");
    let table = text(&tfenv(&project, &["backups", "dev"], 0));
    assert!(
        table.contains(&format!("{name} (shared as {ours})")) && table.contains(&explicit),
        "{table}"
    );
    // verify names them the same way.
    let verified = stdout_json(&tfenv(&project, &["verify", "dev", "--output", "json"], 0));
    let checked: Vec<(String, String)> = verified["environments"][0]["shared"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["shared"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        checked.contains(&(name.clone(), ours.clone()))
            && checked.contains(&(explicit.clone(), name.clone())),
        "{verified:#}"
    );

    // Ours, by its name in the bucket: this machine's copy, nothing downloaded.
    let output = tfenv(
        &project,
        &["restore", "dev", &ours, "--yes", "--output", "json"],
        0,
    );
    let restored = stdout_json(&output);
    assert_eq!(restored["restored"], name.as_str(), "{restored:#}");
    assert!(!text(&output).contains("downloaded"), "{}", text(&output));
    assert!(!project.read("pushed.tfstate").contains("machine-c"));
    // C's backup, by the name shown: downloaded, and it is what was pushed.
    let output = tfenv(
        &project,
        &["restore", "dev", &explicit, "--yes", "--output", "json"],
        0,
    );
    assert!(
        text(&output).contains(&format!("downloaded `{name}`")),
        "{}",
        text(&output)
    );
    assert!(project.read("pushed.tfstate").contains("machine-c"));
}

/// A gcs project whose ledger is local: its backups are taken here, then the ledger
/// is switched to `backend` so the next writing command uploads them.
fn gcs_backups_then_shared() -> (Project, FakeCloud, String) {
    let project = project("gcs", "bucket = \"b\"\nprefix = \"app\"\n");
    let fake = FakeCloud::gcloud(&project, &[]);
    tfenv(&project, &["deploy", "dev", "--yes"], 0);
    let taken = stdout_json(&tfenv(&project, &["backup", "dev", "--output", "json"], 0));
    let name = taken["backups"][0]["backup"]["file"]
        .as_str()
        .unwrap_or_else(|| panic!("{taken:#}"))
        .to_string();
    let toml = project.read("tfenv.toml");
    project.write(
        "tfenv.toml",
        &format!("[project]\nledger = \"backend\"\n{toml}"),
    );
    (project, fake, name)
}

const GCS_LEDGER: &str = "b/app/default.tfstate.tfenv/";

/// The manifest line of `file`.
fn manifest_line(project: &Project, file: &str) -> Value {
    project
        .read("state/dev/backups/MANIFEST.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|b| b["file"] == file)
        .unwrap_or_else(|| panic!("no manifest line for {file}"))
}

#[test]
fn a_backup_whose_entry_name_is_taken_by_another_is_shared_under_the_next_name() {
    let (project, fake, name) = gcs_backups_then_shared();
    // Someone else's entry (or a planted one) under our backup's name, without its
    // state file.
    let planted = format!(
        r#"{{"file":"{name}","sha256":"{}","bytes":1,"serial":1,"lineage":"x","terraform_version":null,"created":"2026-11-30T12:00:00Z","reason":"manual","origin":"someone-else"}}"#,
        "0".repeat(64)
    );
    fake.put(
        &format!("{GCS_LEDGER}backups/{name}.json"),
        planted.as_bytes(),
    );
    tfenv(&project, &["backup", "dev"], 0);

    // (The second backup, of the same second, may take `-1` first.)
    let line = manifest_line(&project, &name);
    let shared = line["shared"].as_str().unwrap().to_string();
    assert!(shared.starts_with(&format!("{name}-")), "{line}");
    assert_eq!(line.get("unshared"), None, "{line}");
    let entry: Value = serde_json::from_slice(
        &fake
            .get(&format!("{GCS_LEDGER}backups/{shared}.json"))
            .expect("our entry under the next name"),
    )
    .unwrap();
    assert_eq!(entry["sha256"], line["sha256"], "{entry}");
    // The planted entry is left as it was.
    assert_eq!(
        fake.get(&format!("{GCS_LEDGER}backups/{name}.json"))
            .unwrap(),
        planted.as_bytes()
    );
    // And the backup is restorable from the shared ledger alone.
    std::fs::remove_dir_all(project.join("state")).unwrap();
    let restored = stdout_json(&tfenv(
        &project,
        &["restore", "dev", &shared, "--yes", "--output", "json"],
        0,
    ));
    assert_eq!(restored["restored"], shared.as_str(), "{restored:#}");
}

#[test]
fn a_retry_finding_its_own_state_file_without_an_entry_writes_the_entry_there() {
    let (project, fake, name) = gcs_backups_then_shared();
    // An earlier upload that stopped after the state file.
    let file = std::fs::read(project.join(&format!("state/dev/backups/{name}"))).unwrap();
    fake.put(&format!("{GCS_LEDGER}backups/{name}"), &file);
    tfenv(&project, &["backup", "dev"], 0);

    let line = manifest_line(&project, &name);
    assert_eq!(line["shared"], name.as_str(), "{line}");
    assert!(
        fake.get(&format!("{GCS_LEDGER}backups/{name}.json"))
            .is_some(),
        "the entry is written beside its state file"
    );
    // No state file is left without its entry (the second backup has its own pair).
    let listed = fake.names(&format!("{GCS_LEDGER}backups/"));
    for state in listed.iter().filter(|n| !n.ends_with(".json")) {
        assert!(listed.contains(&format!("{state}.json")), "{listed:?}");
    }
    assert_eq!(listed.len(), 4, "{listed:?}");
    let verify = tfenv(&project, &["verify", "dev"], 0);
    assert!(
        !text(&verify).contains("no manifest entry"),
        "{}",
        text(&verify)
    );

    // `backups` mentions an incomplete shared backup in one line, as verify does.
    let stray = "terraform.tfstate.20261201-000000";
    fake.put(&format!("{GCS_LEDGER}backups/{stray}"), &file);
    let listed = text(&tfenv(&project, &["backups", "dev"], 0));
    assert_eq!(
        listed.matches("incomplete shared backup(s)").count(),
        1,
        "{listed}"
    );
    assert!(
        listed.contains(&format!("`{stray}` has no manifest entry")),
        "{listed}"
    );
}

#[test]
fn invalid_shared_names_in_local_files_are_replaced_never_panic_never_used_as_keys() {
    let (project, fake, name) = gcs_backups_then_shared();
    let manifest = project.read("state/dev/backups/MANIFEST.jsonl");
    let mut line = manifest_line(&project, &name);
    line["shared"] = Value::from("../../../zz-escape/terraform.tfstate");
    line["unshared"] = Value::from(true);
    let others: Vec<&str> = manifest
        .lines()
        .filter(|l| !l.contains(&format!("\"file\":\"{name}\"")))
        .collect();
    let mut lines = others.join("\n");
    if !lines.is_empty() {
        lines.push('\n');
    }
    project.write(
        "state/dev/backups/MANIFEST.jsonl",
        &format!("{lines}{line}\n"),
    );
    let history = project.read("state/dev/history.jsonl");
    let mut record: Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    record["shared"] = Value::from("terraform.tfstate.2026113\u{e9}\u{e9}\u{e9}-120000-hôst.json");
    project.write("state/dev/history.jsonl", &format!("{record}\n"));

    let out = tfenv(&project, &["backup", "dev"], 0);
    let said = text(&out);
    assert!(!said.contains("panicked"), "{said}");
    assert_eq!(
        said.matches("name(s) no object tfenv would write").count(),
        1,
        "one warning: {said}"
    );
    assert!(
        fake.names("b/").iter().all(|n| !n.contains("zz-escape")),
        "{:?}",
        fake.names("b/")
    );
    let line = manifest_line(&project, &name);
    assert_eq!(line["shared"], name.as_str(), "{line}");
    assert!(
        fake.get(&format!("{GCS_LEDGER}backups/{name}.json"))
            .is_some()
    );
    let history = project.read("state/dev/history.jsonl");
    let record: Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    let shared = record["shared"].as_str().unwrap();
    assert!(shared.is_ascii() && shared.ends_with(".json"), "{record}");
    assert!(fake.get(&format!("{GCS_LEDGER}history/{shared}")).is_some());
    // A second run has nothing left to fix.
    let again = tfenv(&project, &["history", "dev"], 0);
    assert!(
        !text(&again).contains("no object tfenv would write"),
        "{}",
        text(&again)
    );
}

#[test]
fn shared_records_with_control_characters_or_another_environment_are_never_printed_raw() {
    let project = project_with(
        "gcs",
        "bucket = \"b\"\nprefix = \"app\"\n",
        "[project]\nledger = \"backend\"\n",
    );
    let fake = FakeCloud::gcloud(&project, &[]);
    tfenv(&project, &["deploy", "dev", "--yes"], 0);
    tfenv(&project, &["backup", "dev"], 0);
    let line = project.read("state/dev/history.jsonl");
    let mut record: Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    record.as_object_mut().unwrap().remove("shared");
    record["who"] = Value::from("mallory\u{1b}[2J");
    record["host"] = Value::from("evil\nhost");
    record["start"] = Value::from("2026-12-01T00:00:00Z");
    fake.put(
        &format!("{GCS_LEDGER}history/20261201T000000Z-evil_host-aaaaaaaaaaaa.json"),
        record.to_string().as_bytes(),
    );
    // A record that says it is production's, in dev's ledger, newer still.
    record["environment"] = Value::from("production");
    record["who"] = Value::from("prod-impostor");
    record["host"] = Value::from("prodhost");
    record["start"] = Value::from("2026-12-02T00:00:00Z");
    fake.put(
        &format!("{GCS_LEDGER}history/20261202T000000Z-prodhost-bbbbbbbbbbbb.json"),
        record.to_string().as_bytes(),
    );
    // A backup whose reason sets the terminal's title and breaks its row.
    let name = "terraform.tfstate.20261201-000000";
    let state = state(3);
    fake.put(&format!("{GCS_LEDGER}backups/{name}"), state.as_bytes());
    let entry = serde_json::json!({
        "file": name,
        "sha256": hex_sha256(state.as_bytes()),
        "bytes": state.len(),
        "serial": 3,
        "lineage": "abc",
        "terraform_version": "1.11.4",
        "created": "2026-12-01T00:00:00Z",
        "reason": "manual\u{1b}]0;pwned\u{7}\nfake row",
        "origin": "elsewhere",
    });
    fake.put(
        &format!("{GCS_LEDGER}backups/{name}.json"),
        entry.to_string().as_bytes(),
    );

    for args in [
        &["history", "dev"][..],
        &["status", "dev"][..],
        &["backups", "dev"][..],
        &["verify", "dev"][..],
    ] {
        let out = project
            .tfenv_with(
                FakeTerraform::working()
                    .at("fake/terraform")
                    .install(&project),
            )
            .env("PATH", project.fake_path())
            .args(args)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}') && !stdout.contains('\u{7}'),
            "{args:?}: {stdout:?} {stderr:?}"
        );
        assert!(!stdout.contains("evil\nhost"), "{args:?}: {stdout}");
        assert!(!stdout.contains("\nfake row"), "{args:?}: {stdout}");
        assert!(!stdout.contains("prod-impostor"), "{args:?}: {stdout}");
        if args[0] == "history" {
            assert!(stdout.contains("mallory\\u{1b}[2J"), "{stdout}");
            assert!(
                stderr.contains("another environment (`production`)"),
                "{stderr}"
            );
        }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn a_record_whose_upload_landed_but_was_not_marked_is_listed_once_as_both() {
    let project = project("gcs", "bucket = \"b\"\nprefix = \"app\"\n");
    let fake = FakeCloud::gcloud(&project, &[]);
    tfenv(&project, &["deploy", "dev", "--yes"], 0);
    // The upload landed, then tfenv was stopped before it marked the local line: the
    // object is there under the name computed from the line, the line names nothing.
    let history = project.read("state/dev/history.jsonl");
    let line = history.lines().last().unwrap();
    let record: Value = serde_json::from_str(line).unwrap();
    let start: chrono::DateTime<chrono::Utc> = record["start"].as_str().unwrap().parse().unwrap();
    let host: String = record["host"]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    let name = format!(
        "{}-{host}-{}.json",
        start.format("%Y%m%dT%H%M%SZ"),
        &hex_sha256(line.as_bytes())[..12]
    );
    let mut uploaded = record.clone();
    uploaded["shared"] = Value::from(name.as_str());
    fake.put(
        &format!("{GCS_LEDGER}history/{name}"),
        uploaded.to_string().as_bytes(),
    );
    let toml = project.read("tfenv.toml");
    project.write(
        "tfenv.toml",
        &format!("[project]\nledger = \"backend\"\n{toml}"),
    );

    let listed = stdout_json(&tfenv(&project, &["history", "dev", "--output", "json"], 0));
    let records = listed["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{listed:#}");
    assert_eq!(records[0]["where"], "both", "{listed:#}");
    // And the next writing command finds it there, writing no second object.
    tfenv(&project, &["backup", "dev"], 0);
    assert_eq!(fake.names(&format!("{GCS_LEDGER}history/")).len(), 1);
}

#[test]
fn a_shared_backup_whose_local_file_was_deleted_is_restored_from_the_shared_copy() {
    let project = project_with(
        "gcs",
        "bucket = \"b\"\nprefix = \"app\"\n",
        "[project]\nledger = \"backend\"\n",
    );
    let fake = FakeCloud::gcloud(&project, &[]);
    tfenv(&project, &["deploy", "dev", "--yes"], 0);
    let taken = stdout_json(&tfenv(&project, &["backup", "dev", "--output", "json"], 0));
    let name = taken["backups"][0]["backup"]["file"]
        .as_str()
        .unwrap_or_else(|| panic!("{taken:#}"))
        .to_string();
    std::fs::remove_file(project.join(&format!("state/dev/backups/{name}"))).unwrap();

    let listed = stdout_json(&tfenv(&project, &["backups", "dev", "--output", "json"], 0));
    let entry = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["file"] == name.as_str())
        .unwrap_or_else(|| panic!("{listed:#}"))
        .clone();
    assert_eq!(entry["where"], "shared", "{listed:#}");
    let restored = stdout_json(&tfenv(
        &project,
        &["restore", "dev", &name, "--yes", "--output", "json"],
        0,
    ));
    assert_eq!(restored["restored"], name.as_str(), "{restored:#}");

    // A shared entry whose state file is gone from the bucket: the missing object is named.
    let gone = "terraform.tfstate.20261201-000000";
    let entry = serde_json::json!({
        "file": gone, "sha256": "0".repeat(64), "bytes": 1, "serial": 1, "lineage": "abc",
        "terraform_version": null, "created": "2026-12-01T00:00:00Z", "reason": "manual",
        "origin": "elsewhere",
    });
    fake.put(
        &format!("{GCS_LEDGER}backups/{gone}.json"),
        entry.to_string().as_bytes(),
    );
    let out = project
        .tfenv_with(
            FakeTerraform::working()
                .at("fake/terraform")
                .install(&project),
        )
        .env("PATH", project.fake_path())
        .args(["restore", "dev", gone, "--yes"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let said = text(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("`backups/{gone}` is missing")) && !said.contains("nor a file"),
        "{said}"
    );
}

/// `status` on `kind` storage: versioning on is healthy; off is `versioning-off`, fixed by
/// `tfenv bootstrap <env> --fix` (the message names the cloud command too), asked once
/// for the bucket; turned on again, it clears.
fn versioning_off_is_a_status_problem_until_turned_on(
    kind: &str,
    conf: &str,
    cli: fn(&Project) -> FakeCloud,
    bucket: &str,
    call: &[&str],
    enable: &str,
) {
    let project = project(kind, conf);
    let fake = cli(&project);
    tfenv(&project, &["init", "dev"], 0);
    let json = stdout_json(&tfenv(&project, &["status", "--output", "json"], 0));
    assert_eq!(
        json["environments"][0]["problems"],
        serde_json::json!([]),
        "{json:#}"
    );

    fake.set_versioning(bucket, false);
    let before = fake.calls().len();
    let output = tfenv(&project, &["status", "--output", "json"], 6);
    let json = stdout_json(&output);
    let problems = json["environments"][0]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{json:#}");
    assert_eq!(problems[0]["code"], "versioning-off", "{json:#}");
    assert_eq!(problems[0]["fix"], "tfenv bootstrap dev --fix", "{json:#}");
    let message = problems[0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("(or `{enable}`)")), "{message}");
    let asked: Vec<_> = fake.calls()[before..]
        .iter()
        .filter(|(args, _)| args.iter().take(call.len()).eq(call.iter()))
        .cloned()
        .collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let human = text(&tfenv(&project, &["status"], 6));
    assert!(
        human.contains("    fix: tfenv bootstrap dev --fix"),
        "{human}"
    );

    fake.set_versioning(bucket, true);
    tfenv(&project, &["status"], 0);
}

#[test]
fn an_azure_storage_account_without_blob_versioning_is_a_status_problem_until_turned_on() {
    versioning_off_is_a_status_problem_until_turned_on(
        "azurerm",
        &format!(
            "storage_account_name = \"tfstateacct\"\ncontainer_name = \"tfstate\"\nkey = \"dev.terraform.tfstate\"\nresource_group_name = \"rg\"\naccess_key = \"{ACCESS_KEY}\"\n"
        ),
        |project| FakeCloud::az(project, &["AZURE_STORAGE_KEY"]),
        "tfstateacct",
        &["storage", "account", "blob-service-properties", "show"],
        "az storage account blob-service-properties update --account-name tfstateacct --resource-group rg --enable-versioning true",
    );
}

#[test]
fn a_gcs_bucket_without_object_versioning_is_a_status_problem_until_turned_on() {
    versioning_off_is_a_status_problem_until_turned_on(
        "gcs",
        "bucket = \"b\"\nprefix = \"app\"\n",
        |project| FakeCloud::gcloud(project, &[]),
        "b",
        &["storage", "buckets", "describe"],
        "gcloud storage buckets update gs://b --versioning",
    );
}

#[test]
fn a_bucket_whose_versioning_cannot_be_read_is_a_warning_not_versioning_off() {
    let project = project("gcs", "bucket = \"b\"\nprefix = \"app\"\n");
    let fake = FakeCloud::gcloud(&project, &[]);
    tfenv(&project, &["init", "dev"], 0);
    std::fs::create_dir_all(fake.root.join("b")).unwrap();
    std::fs::write(fake.root.join("b/.versioning-denied"), "").unwrap();
    let output = tfenv(&project, &["status", "--output", "json"], 0);
    let json = stdout_json(&output);
    assert_eq!(
        json["environments"][0]["problems"],
        serde_json::json!([]),
        "{json:#}"
    );
    let warnings = json["environments"][0]["warnings"].to_string();
    assert!(
        warnings.contains("cannot tell whether `gs://b` keeps object versions")
            && warnings.contains("permission denied")
            && warnings.contains("storage.buckets.get"),
        "{warnings}"
    );
}

#[test]
fn a_versioning_check_that_does_not_answer_is_stopped_at_the_timeout_and_is_a_warning() {
    let project = project("gcs", "bucket = \"b\"\nprefix = \"app\"\n");
    let fake = FakeCloud::gcloud(&project, &[]);
    tfenv(&project, &["init", "dev"], 0);
    std::fs::create_dir_all(fake.root.join("b")).unwrap();
    std::fs::write(fake.root.join("b/.versioning-hangs"), "").unwrap();
    let started = std::time::Instant::now();
    let output = tfenv(
        &project,
        &["status", "--timeout", "2s", "--output", "json"],
        0,
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let json = stdout_json(&output);
    assert_eq!(
        json["environments"][0]["problems"],
        serde_json::json!([]),
        "{json:#}"
    );
    let warnings = json["environments"][0]["warnings"].to_string();
    assert!(
        warnings.contains("cannot tell whether `gs://b` keeps object versions")
            && warnings.contains("did not answer"),
        "{warnings}"
    );
}
