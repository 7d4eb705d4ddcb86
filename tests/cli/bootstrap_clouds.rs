//! `tfenv bootstrap` on azurerm and gcs, through the real binary and the fake `az` and
//! `gcloud` of `support::clouds`, which keep what each call creates and sets (so the
//! check after the changes, a second run and `status` read what bootstrap made) and
//! refuse any argv the real CLIs would not take. Each test asserts the exact, ordered
//! argv of every call: the security settings are in them.

use std::process::Output;

use crate::support::clouds::FakeCloud;
use crate::support::fake::FakeTerraform;
use crate::support::{Project, expecting, output_text, stderr, stdout, stdout_json};

/// A secret that must never reach the command line or tfenv's output.
const ACCESS_KEY: &str = "c3VwZXItc2VjcmV0LWJvb3RzdHJhcC1rZXk=";

const GROUP: &str = "rg-state";
const ACCOUNT: &str = "tfstateacct";
const BUCKET: &str = "acme-tf-state";

/// A project whose dev environment uses `backend "<kind>" {}` with `conf`.
fn project(kind: &str, conf: &str) -> Project {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[environments.dev]\ntier = \"development\"\nbackend_config = \"environments/dev.backend.conf\"\nvar_files = [\"environments/dev.tfvars\"]\n",
    );
    project.write(
        "main.tf",
        &format!("terraform {{\n  backend \"{kind}\" {{}}\n}}\n"),
    );
    project.write("environments/dev.backend.conf", conf);
    project.write("environments/dev.tfvars", "");
    project
}

/// An azurerm project (the account key, subscription `sub-1`) and its fake `az`.
fn azure() -> (Project, FakeCloud) {
    let project = project(
        "azurerm",
        &format!(
            "resource_group_name = \"{GROUP}\"\nstorage_account_name = \"{ACCOUNT}\"\ncontainer_name = \"tfstate\"\nkey = \"dev.terraform.tfstate\"\nsubscription_id = \"sub-1\"\naccess_key = \"{ACCESS_KEY}\"\n"
        ),
    );
    let az = FakeCloud::az(&project, &["AZURE_STORAGE_KEY"]);
    (project, az)
}

/// A gcs project (a key file) and its fake `gcloud`, in which no bucket exists yet.
fn google() -> (Project, FakeCloud) {
    let project = project(
        "gcs",
        &format!("bucket = \"{BUCKET}\"\nprefix = \"app\"\ncredentials = \"/keys/sa.json\"\n"),
    );
    let gcloud = FakeCloud::gcloud(&project, &["CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE"]);
    gcloud.nothing_exists();
    (project, gcloud)
}

/// tfenv `args` with the project's fakes first on PATH, exiting with `code`.
fn tfenv(project: &Project, args: &[&str], code: i32) -> Output {
    let terraform = FakeTerraform::working()
        .at("fake/terraform")
        .install(project);
    let output = project
        .tfenv_with(&terraform)
        .env("PATH", project.fake_path())
        .env_remove("AZURE_STORAGE_KEY")
        .env_remove("AZURE_STORAGE_CONNECTION_STRING")
        .env_remove("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE")
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let output = expecting(output, code);
    assert!(
        !output_text(&output).contains(ACCESS_KEY),
        "{}",
        output_text(&output)
    );
    output
}

/// The words of one call.
fn argv(words: &str) -> Vec<String> {
    words.split(' ').map(str::to_string).collect()
}

/// The argv of each call the fake logged from the `from`th on.
fn args_since(fake: &FakeCloud, from: usize) -> Vec<Vec<String>> {
    fake.calls()[from..]
        .iter()
        .map(|(args, _)| args.clone())
        .collect()
}

/// The calls that change something (create, update, set-permission).
fn writes(calls: &[Vec<String>]) -> Vec<Vec<String>> {
    calls
        .iter()
        .filter(|a| {
            a.iter()
                .take(4)
                .any(|w| ["create", "update", "set-permission"].contains(&w.as_str()))
        })
        .cloned()
        .collect()
}

/// `az <words> --output json --subscription sub-1`.
fn mgmt(words: &str) -> Vec<String> {
    argv(&format!("{words} --output json --subscription sub-1"))
}

/// The reads of a survey of the group, account and container, all existing.
fn azure_survey() -> Vec<Vec<String>> {
    vec![
        mgmt(&format!("group show --name {GROUP}")),
        mgmt(&format!(
            "storage account show --name {ACCOUNT} --resource-group {GROUP}"
        )),
        mgmt(&format!(
            "storage account blob-service-properties show --account-name {ACCOUNT} --resource-group {GROUP}"
        )),
        mgmt(&format!(
            "storage container exists --name tfstate --account-name {ACCOUNT}"
        )),
        mgmt(&format!(
            "storage container show --name tfstate --account-name {ACCOUNT}"
        )),
    ]
}

/// The resource group, made through the fake itself before the test's tfenv runs.
fn seed_group(az: &FakeCloud) {
    let words = mgmt(&format!(
        "group create --name {GROUP} --location westeurope"
    ));
    az.seed(&words.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The group, the account and the container as bootstrap makes them, made through the
/// fake itself before the test's tfenv runs.
fn seed_azure(az: &FakeCloud) {
    let seed = |words: &str| az.seed(&mgmt(words).iter().map(String::as_str).collect::<Vec<_>>());
    seed(&format!(
        "group create --name {GROUP} --location westeurope"
    ));
    seed(&format!(
        "storage account create --name {ACCOUNT} --resource-group {GROUP} --kind StorageV2 --sku Standard_LRS --min-tls-version TLS1_2 --allow-blob-public-access false --https-only true"
    ));
    seed(&format!(
        "storage account blob-service-properties update --account-name {ACCOUNT} --resource-group {GROUP} --enable-versioning true --enable-delete-retention true --delete-retention-days 7 --enable-container-delete-retention true --container-delete-retention-days 7"
    ));
    seed(&format!(
        "storage container create --name tfstate --account-name {ACCOUNT} --public-access off"
    ));
}

const AUTHORIZATION_FAILED: &str = "ERROR: (AuthorizationFailed) The client 'ci@example.com' with object id '00000000-0000-0000-0000-000000000001' does not have authorization to perform action 'Microsoft.Storage/storageAccounts/read' over scope '/subscriptions/sub-1/resourceGroups/rg-state/providers/Microsoft.Storage/storageAccounts/tfstateacct' or the scope is invalid. If access was recently granted, please refresh your credentials.\nCode: AuthorizationFailed\nMessage: The client 'ci@example.com' with object id '00000000-0000-0000-0000-000000000001' does not have authorization to perform action 'Microsoft.Storage/storageAccounts/read'.\n";

#[test]
fn azurerm_from_nothing_creates_group_account_and_container_with_every_security_setting() {
    let (project, az) = azure();
    let output = tfenv(
        &project,
        &["bootstrap", "dev", "--location", "westeurope", "--yes"],
        0,
    );
    let out = stdout(&output);
    assert!(
        out.contains(&format!("resource group `{GROUP}` (dev): does not exist"))
            && out.contains("made 6 change(s)")
            && out.contains("next: tfenv deploy dev"),
        "{}",
        output_text(&output)
    );
    let mut expected = vec![
        // The survey: the group is missing, so the account is not looked for, only its
        // (global) name checked; the container is not asked about.
        mgmt(&format!("group show --name {GROUP}")),
        mgmt(&format!("storage account check-name --name {ACCOUNT}")),
        mgmt(&format!(
            "group create --name {GROUP} --location westeurope"
        )),
        mgmt(&format!(
            "storage account create --name {ACCOUNT} --resource-group {GROUP} --kind StorageV2 --sku Standard_LRS --min-tls-version TLS1_2 --allow-blob-public-access false --https-only true --location westeurope"
        )),
        mgmt(&format!(
            "storage account blob-service-properties update --account-name {ACCOUNT} --resource-group {GROUP} --enable-versioning true"
        )),
        mgmt(&format!(
            "storage account blob-service-properties update --account-name {ACCOUNT} --resource-group {GROUP} --enable-delete-retention true --delete-retention-days 7"
        )),
        mgmt(&format!(
            "storage account blob-service-properties update --account-name {ACCOUNT} --resource-group {GROUP} --enable-container-delete-retention true --container-delete-retention-days 7"
        )),
        mgmt(&format!(
            "storage container create --name tfstate --account-name {ACCOUNT} --public-access off"
        )),
    ];
    // The check afterwards reads everything again.
    expected.extend(azure_survey());
    assert_eq!(args_since(&az, 0), expected);
    // Every call as the `az login` account: the container's too, in the account just
    // made, whose key the backend config cannot hold yet (the plan says so).
    for (args, env) in az.calls() {
        assert_eq!(env, ["AZURE_STORAGE_KEY=<unset>"], "{args:?}");
    }
    assert!(
        out.contains("the backend config's `access_key` cannot be the new account's"),
        "{out}"
    );

    // A second run reads only, and has nothing to do; in the account that now exists,
    // container calls use the account key, through the environment only.
    let before = az.calls().len();
    let output = tfenv(&project, &["bootstrap", "dev", "--yes"], 0);
    assert!(
        stdout(&output).contains("nothing to do"),
        "{}",
        output_text(&output)
    );
    assert_eq!(args_since(&az, before), azure_survey());
    for (args, env) in &az.calls()[before..] {
        let key = if args[1] == "container" {
            format!("AZURE_STORAGE_KEY={ACCESS_KEY}")
        } else {
            "AZURE_STORAGE_KEY=<unset>".to_string()
        };
        assert_eq!(env, &[key], "{args:?}");
    }

    // What bootstrap set is what status reads: blob versioning on.
    tfenv(&project, &["init", "dev"], 0);
    let status = stdout_json(&tfenv(&project, &["status", "dev", "--output", "json"], 0));
    assert_eq!(
        status["environments"][0]["problems"],
        serde_json::json!([]),
        "{status:#}"
    );
    // Read in the backend's subscription, where bootstrap made the account.
    assert!(
        status["environments"][0]["warnings"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{status:#}"
    );
}

#[test]
fn azurerm_missing_group_without_location_is_an_error_naming_location_and_creates_nothing() {
    let (project, az) = azure();
    let output = tfenv(&project, &["bootstrap", "dev", "--yes"], 1);
    let err = stderr(&output);
    assert!(
        err.contains(&format!("resource group `{GROUP}` does not exist"))
            && err.contains("--location"),
        "{}",
        output_text(&output)
    );
    assert_eq!(
        args_since(&az, 0),
        [mgmt(&format!("group show --name {GROUP}"))]
    );
}

#[test]
fn azurerm_denied_account_read_is_a_permission_error_naming_identity_and_permission() {
    let (project, az) = azure();
    seed_group(&az);
    az.fail("storage account show", 1, "", AUTHORIZATION_FAILED, false);
    let output = tfenv(
        &project,
        &["bootstrap", "dev", "--location", "westeurope", "--yes"],
        1,
    );
    let text = output_text(&output);
    let err = stderr(&output);
    assert!(
        err.contains("permission denied: `az storage account show` of `tfstateacct`")
            && err.contains("the account `az login` signed in (subscription `sub-1`)")
            && err.contains(
                "grant `Microsoft.Storage/storageAccounts/read` on the resource group `rg-state`"
            ),
        "{text}"
    );
    assert!(
        !text.contains("created") && !text.contains("made"),
        "{text}"
    );
    assert_eq!(
        args_since(&az, 0),
        [
            mgmt(&format!("group show --name {GROUP}")),
            mgmt(&format!(
                "storage account show --name {ACCOUNT} --resource-group {GROUP}"
            )),
        ]
    );
}

#[test]
fn azurerm_blob_versioning_turned_off_is_fixed_only_with_fix() {
    let (project, az) = azure();
    seed_azure(&az);
    az.set_versioning(ACCOUNT, false);
    let output = tfenv(&project, &["bootstrap", "dev"], 6);
    assert!(
        stdout(&output).contains(
            "  ! turn blob versioning back on (now: blob versioning off): only with --fix"
        ) && stdout(&output).contains("`tfenv bootstrap dev --fix`"),
        "{}",
        output_text(&output)
    );
    assert_eq!(args_since(&az, 0), azure_survey());

    // status reports it, naming the fix in the backend's subscription.
    tfenv(&project, &["init", "dev"], 0);
    let status = stdout_json(&tfenv(&project, &["status", "dev", "--output", "json"], 6));
    let problems = &status["environments"][0]["problems"];
    assert_eq!(problems[0]["code"], "versioning-off", "{status:#}");
    assert_eq!(
        problems[0]["fix"], "tfenv bootstrap dev --fix",
        "{status:#}"
    );
    assert!(
        problems[0]["message"].as_str().unwrap().contains(&format!(
            "az storage account blob-service-properties update --account-name {ACCOUNT} --resource-group {GROUP} --enable-versioning true --subscription sub-1"
        )),
        "{status:#}"
    );

    let before = az.calls().len();
    let output = tfenv(&project, &["bootstrap", "dev", "--fix", "--yes"], 0);
    assert!(
        stdout(&output).contains("made 1 change(s)"),
        "{}",
        output_text(&output)
    );
    let calls = args_since(&az, before);
    assert_eq!(
        writes(&calls),
        [mgmt(&format!(
            "storage account blob-service-properties update --account-name {ACCOUNT} --resource-group {GROUP} --enable-versioning true"
        ))]
    );
    let mut expected = azure_survey();
    expected.push(writes(&calls).remove(0));
    expected.extend(azure_survey());
    assert_eq!(calls, expected);
    tfenv(&project, &["bootstrap", "dev"], 0);
    tfenv(&project, &["status", "dev"], 0);
}

#[test]
fn azurerm_account_name_taken_elsewhere_is_an_error_before_any_create() {
    let (project, az) = azure();
    seed_group(&az);
    az.fail(
        "storage account check-name",
        0,
        "{\"message\": \"The storage account named tfstateacct is already taken.\", \"nameAvailable\": false, \"reason\": \"AlreadyExists\"}\n",
        "",
        false,
    );
    let output = tfenv(
        &project,
        &["bootstrap", "dev", "--location", "westeurope", "--yes"],
        1,
    );
    assert!(
        stderr(&output).contains("the storage account name `tfstateacct` is taken")
            && stderr(&output).contains("choose another `storage_account_name`"),
        "{}",
        output_text(&output)
    );
    assert_eq!(
        args_since(&az, 0),
        [
            mgmt(&format!("group show --name {GROUP}")),
            mgmt(&format!(
                "storage account show --name {ACCOUNT} --resource-group {GROUP}"
            )),
            mgmt(&format!("storage account check-name --name {ACCOUNT}")),
        ]
    );
}

#[test]
fn bad_sku_or_location_is_a_usage_error_before_any_cloud_call() {
    let (project, az) = azure();
    // Even with everything in place (the survey would never need either value).
    seed_azure(&az);
    for (args, said) in [
        (
            &["bootstrap", "dev", "--sku", "Premium_LRS", "--yes"][..],
            "`Premium_LRS` is not a storage account SKU bootstrap creates",
        ),
        // clap takes `-x` for a flag: a usage error of its own.
        (
            &["bootstrap", "dev", "--location", "-x", "--yes"],
            "unexpected argument '-x'",
        ),
        (
            &[
                "bootstrap",
                "dev",
                "--location=--subscription=other",
                "--yes",
            ],
            "--location `--subscription=other` is not a region",
        ),
    ] {
        let output = tfenv(&project, args, 2);
        assert!(stderr(&output).contains(said), "{}", output_text(&output));
    }
    assert_eq!(az.calls().len(), 0, "{:?}", args_since(&az, 0));

    let (project, gcloud) = google();
    let output = tfenv(
        &project,
        &["bootstrap", "dev", "--location", "EU;rm -rf", "--yes"],
        2,
    );
    assert!(
        stderr(&output).contains("--location `EU;rm -rf` is not a region"),
        "{}",
        output_text(&output)
    );
    assert_eq!(gcloud.calls().len(), 0);
}

/// `gcloud storage buckets <words>` with the bucket.
fn buckets(words: &str) -> Vec<String> {
    let mut words = argv(words);
    words.insert(0, "buckets".into());
    words.insert(0, "storage".into());
    words.insert(3, format!("gs://{BUCKET}"));
    words
}

fn describe() -> Vec<String> {
    buckets("describe --format=json")
}

#[test]
fn gcs_from_nothing_creates_the_bucket_with_every_security_setting_then_versioning() {
    let (project, gcloud) = google();
    let output = tfenv(
        &project,
        &["bootstrap", "dev", "--location", "EU", "--yes"],
        0,
    );
    assert!(
        stdout(&output).contains(&format!("GCS bucket `gs://{BUCKET}` (dev): does not exist"))
            && stdout(&output).contains("made 2 change(s)"),
        "{}",
        output_text(&output)
    );
    assert_eq!(
        args_since(&gcloud, 0),
        [
            describe(),
            buckets(
                "create --location=EU --uniform-bucket-level-access --public-access-prevention"
            ),
            buckets("update --versioning"),
            describe(),
        ]
    );
    for (args, env) in gcloud.calls() {
        assert_eq!(
            env,
            ["CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE=/keys/sa.json"],
            "{args:?}"
        );
    }
    let output = tfenv(&project, &["bootstrap", "dev", "--yes"], 0);
    assert!(
        stdout(&output).contains("nothing to do"),
        "{}",
        output_text(&output)
    );
    assert!(
        stdout(&output).contains(
            "exists: in `EU`, versioning enabled, uniform bucket-level access, public access prevention enforced"
        ),
        "{}",
        output_text(&output)
    );
    assert_eq!(args_since(&gcloud, 4), [describe()]);
}

#[test]
fn gcs_missing_bucket_without_location_is_an_error_naming_location_and_creates_nothing() {
    let (project, gcloud) = google();
    let output = tfenv(&project, &["bootstrap", "dev", "--yes"], 1);
    assert!(
        stderr(&output).contains(&format!(
            "the GCS bucket `gs://{BUCKET}` does not exist; creating it needs --location"
        )),
        "{}",
        output_text(&output)
    );
    assert_eq!(args_since(&gcloud, 0), [describe()]);
}

#[test]
fn gcs_bucket_of_someone_else_403_is_a_permission_error_never_created() {
    let (project, gcloud) = google();
    gcloud.fail(
        "storage buckets describe",
        1,
        "",
        "ERROR: (gcloud.storage.buckets.describe) HTTPError 403: ci@p.iam.gserviceaccount.com does not have storage.buckets.get access to the Google Cloud Storage bucket. Permission 'storage.buckets.get' denied on resource (or it may not exist).\n",
        false,
    );
    let output = tfenv(
        &project,
        &["bootstrap", "dev", "--location", "EU", "--yes"],
        1,
    );
    let text = output_text(&output);
    assert!(
        stderr(&output).contains(&format!(
            "the GCS bucket `gs://{BUCKET}` exists, but these credentials may not use it (403)"
        )) && stderr(&output).contains("the key file `/keys/sa.json`")
            && stderr(&output).contains("choose another `bucket` name"),
        "{text}"
    );
    assert!(
        !text.contains("created") && !text.contains("made"),
        "{text}"
    );
    assert_eq!(args_since(&gcloud, 0), [describe()]);
}

#[test]
fn gcs_bucket_name_taken_at_create_409_says_nothing_was_made() {
    let (project, gcloud) = google();
    gcloud.fail(
        "storage buckets create",
        1,
        "",
        "ERROR: (gcloud.storage.buckets.create) HTTPError 409: The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.\n",
        false,
    );
    let output = tfenv(
        &project,
        &["bootstrap", "dev", "--location", "EU", "--yes"],
        1,
    );
    let all = output_text(&output);
    assert!(
        stderr(&output).contains("the name is taken")
            && stderr(&output).contains("choose another `bucket` name")
            && stdout(&output).contains(&format!(
                "bootstrap stopped:\n  failed: GCS bucket `gs://{BUCKET}`: create it in `EU`"
            ))
            && stdout(&output).contains(&format!(
                "\n  not made: GCS bucket `gs://{BUCKET}`: turn on versioning\n"
            ))
            && !stdout(&output).contains("  made:"),
        "{all}"
    );
    assert!(!all.contains("created"), "{all}");
    assert_eq!(
        args_since(&gcloud, 0),
        [
            describe(),
            buckets(
                "create --location=EU --uniform-bucket-level-access --public-access-prevention"
            ),
        ]
    );
}

#[test]
fn gcs_versioning_turned_off_is_fixed_only_with_fix() {
    let (project, gcloud) = google();
    let bucket = format!("gs://{BUCKET}");
    gcloud.seed(&[
        "storage",
        "buckets",
        "create",
        &bucket,
        "--location=EU",
        "--uniform-bucket-level-access",
        "--public-access-prevention",
    ]);
    gcloud.set_versioning(BUCKET, false);
    let output = tfenv(&project, &["bootstrap", "dev"], 6);
    assert!(
        stdout(&output)
            .contains("  ! turn versioning back on (now: versioning turned off): only with --fix"),
        "{}",
        output_text(&output)
    );
    assert_eq!(args_since(&gcloud, 0), [describe()]);

    let output = tfenv(&project, &["bootstrap", "dev", "--fix", "--yes"], 0);
    assert!(
        stdout(&output).contains("made 1 change(s)"),
        "{}",
        output_text(&output)
    );
    assert_eq!(
        args_since(&gcloud, 1),
        [describe(), buckets("update --versioning"), describe()]
    );
}

#[test]
fn missing_credentials_show_the_clis_message_and_the_login_command() {
    let (project, gcloud) = google();
    gcloud.fail(
        "storage buckets describe",
        1,
        "",
        "ERROR: (gcloud.storage.buckets.describe) You do not currently have an active account selected.\nPlease run:\n\n  $ gcloud auth login\n\nto obtain new credentials.\n\nIf you have already logged in with a different account, run:\n\n  $ gcloud config set account ACCOUNT\n\nto select an already authenticated account to use.\n",
        false,
    );
    let output = tfenv(
        &project,
        &["bootstrap", "dev", "--location", "EU", "--yes"],
        1,
    );
    let err = stderr(&output);
    assert!(
        err.contains("You do not currently have an active account selected")
            && err.contains("`gcloud auth login`"),
        "{}",
        output_text(&output)
    );
    assert!(!err.contains("permission denied"), "{err}");
    assert_eq!(args_since(&gcloud, 0), [describe()]);

    let (project, az) = azure();
    az.fail(
        "group show",
        1,
        "",
        "ERROR: Please run 'az login' to setup account.\n",
        false,
    );
    let output = tfenv(
        &project,
        &["bootstrap", "dev", "--location", "westeurope", "--yes"],
        1,
    );
    let err = stderr(&output);
    assert!(
        err.contains("ERROR: Please run 'az login' to setup account.")
            && err.contains("log in with `az login`"),
        "{}",
        output_text(&output)
    );
    assert!(!err.contains("permission denied"), "{err}");
    assert_eq!(
        args_since(&az, 0),
        [mgmt(&format!("group show --name {GROUP}"))]
    );
}

#[test]
fn gcs_half_finished_bootstrap_says_what_was_made_and_the_next_run_completes_it() {
    let (project, gcloud) = google();
    gcloud.fail(
        "storage buckets update",
        1,
        "",
        "ERROR: (gcloud.storage.buckets.update) HTTPError 503: We encountered an internal error. Please try again.\n",
        true,
    );
    let output = tfenv(
        &project,
        &["bootstrap", "dev", "--location", "EU", "--yes"],
        1,
    );
    let out = stdout(&output);
    assert!(
        out.contains(&format!(
            "bootstrap stopped:\n  made: GCS bucket `gs://{BUCKET}`: create it in `EU`"
        )) && out.contains(&format!(
            "\n  failed: GCS bucket `gs://{BUCKET}`: turn on versioning\n"
        )) && out.contains("run `tfenv bootstrap dev` again")
            && stderr(&output).contains("HTTPError 503"),
        "{}",
        output_text(&output)
    );
    assert_eq!(
        args_since(&gcloud, 0),
        [
            describe(),
            buckets(
                "create --location=EU --uniform-bucket-level-access --public-access-prevention"
            ),
            buckets("update --versioning"),
        ]
    );

    // The next run (no --location: the bucket exists) completes only the versioning.
    let output = tfenv(&project, &["bootstrap", "dev", "--yes"], 0);
    assert!(
        stdout(&output).contains("  + turn on versioning")
            && stdout(&output).contains("made 1 change(s)"),
        "{}",
        output_text(&output)
    );
    assert_eq!(
        args_since(&gcloud, 3),
        [describe(), buckets("update --versioning"), describe()]
    );
    tfenv(&project, &["bootstrap", "dev"], 0);
}

#[test]
fn azurerm_account_and_container_settings_set_otherwise_are_each_fixed_by_one_call() {
    let (project, az) = azure();
    seed_group(&az);
    let seed = |words: &str| az.seed(&mgmt(words).iter().map(String::as_str).collect::<Vec<_>>());
    // Made by hand: TLS 1.0, public blob access, plain HTTP, a public container.
    seed(&format!(
        "storage account create --name {ACCOUNT} --resource-group {GROUP} --kind StorageV2 --sku Standard_GRS --min-tls-version TLS1_0 --allow-blob-public-access true --https-only false"
    ));
    seed(&format!(
        "storage account blob-service-properties update --account-name {ACCOUNT} --resource-group {GROUP} --enable-versioning true --enable-delete-retention true --delete-retention-days 7 --enable-container-delete-retention true --container-delete-retention-days 7"
    ));
    seed(&format!(
        "storage container create --name tfstate --account-name {ACCOUNT} --public-access blob"
    ));
    let output = tfenv(&project, &["bootstrap", "dev", "--output", "json"], 6);
    let report = stdout_json(&output);
    assert_eq!(report["needs_fix"], 4, "{report:#}");
    assert_eq!(report["changed"], 0, "{report:#}");
    assert_eq!(args_since(&az, 0), azure_survey());
    let output = tfenv(&project, &["bootstrap", "dev"], 6);
    let out = stdout(&output);
    for line in [
        "  ! require TLS 1.2 at least (now: minimum TLS version TLS1_0): only with --fix",
        "  ! disallow public blob access (now: public blob access allowed): only with --fix",
        "  ! allow HTTPS only (now: HTTP allowed): only with --fix",
        "  ! make it private (no public access) (now: public access `blob`): only with --fix",
    ] {
        assert!(out.contains(line), "{line}\n{}", output_text(&output));
    }

    let before = az.calls().len();
    let output = tfenv(&project, &["bootstrap", "dev", "--fix", "--yes"], 0);
    assert!(
        stdout(&output).contains("made 4 change(s)"),
        "{}",
        output_text(&output)
    );
    let update = |flags: &str| {
        mgmt(&format!(
            "storage account update --name {ACCOUNT} --resource-group {GROUP} {flags}"
        ))
    };
    assert_eq!(
        writes(&args_since(&az, before)),
        [
            update("--min-tls-version TLS1_2"),
            update("--allow-blob-public-access false"),
            update("--https-only true"),
            mgmt(&format!(
                "storage container set-permission --name tfstate --account-name {ACCOUNT} --public-access off"
            )),
        ]
    );
    // The container's permission is set with the backend's key, never on the command line.
    let (_, env) = az
        .calls()
        .into_iter()
        .find(|(args, _)| args[2] == "set-permission")
        .unwrap();
    assert_eq!(env, [format!("AZURE_STORAGE_KEY={ACCESS_KEY}")]);
    let output = tfenv(&project, &["bootstrap", "dev"], 0);
    assert!(
        stdout(&output).contains("nothing to do"),
        "{}",
        output_text(&output)
    );
}

#[test]
fn gcs_bucket_made_by_hand_without_protections_is_completed_on_a_plain_run() {
    let (project, gcloud) = google();
    let bucket = format!("gs://{BUCKET}");
    // Created without uniform access, public access prevention or versioning.
    gcloud.seed(&["storage", "buckets", "create", &bucket, "--location=US"]);
    let output = tfenv(&project, &["bootstrap", "dev", "--dry-run"], 0);
    let out = stdout(&output);
    assert!(
        out.contains("  + turn on versioning")
            && out.contains("  + turn on uniform bucket-level access")
            && out.contains("  + enforce public access prevention")
            && out.contains("dry run: nothing was changed"),
        "{}",
        output_text(&output)
    );
    assert_eq!(args_since(&gcloud, 0), [describe()]);

    let output = tfenv(&project, &["bootstrap", "dev", "--yes"], 0);
    assert!(
        stdout(&output).contains("made 3 change(s)"),
        "{}",
        output_text(&output)
    );
    assert_eq!(
        args_since(&gcloud, 1),
        [
            describe(),
            buckets("update --versioning"),
            buckets("update --uniform-bucket-level-access"),
            buckets("update --public-access-prevention"),
            describe(),
        ]
    );
}

#[test]
fn azurerm_half_finished_bootstrap_says_what_was_made_and_the_next_run_completes_it() {
    let (project, az) = azure();
    az.fail(
        "storage account blob-service-properties update",
        1,
        "",
        "ERROR: (ServerBusy) The server is currently unable to receive requests. Please retry your request.\nCode: ServerBusy\nMessage: The server is currently unable to receive requests. Please retry your request.\n",
        true,
    );
    let output = tfenv(
        &project,
        &["bootstrap", "dev", "--location", "westeurope", "--yes"],
        1,
    );
    let out = stdout(&output);
    assert!(
        out.contains(&format!(
            "bootstrap stopped:
  made: resource group `{GROUP}`: create it in `westeurope`
  made: storage account `{ACCOUNT}`: create it in `westeurope`: StorageV2, Standard_LRS, TLS 1.2 minimum, no public blob access, HTTPS only
  failed: storage account `{ACCOUNT}`: turn on blob versioning
  not made: storage account `{ACCOUNT}`: turn on soft delete of blobs (7 days)
  not made: storage account `{ACCOUNT}`: turn on soft delete of containers (7 days)
  not made: container `tfstate` of `{ACCOUNT}`: create it, private (no public access)
"
        )) && out.contains("run `tfenv bootstrap dev` again")
            && stderr(&output).contains("ServerBusy"),
        "{}",
        output_text(&output)
    );
    let first = az.calls().len();
    assert_eq!(writes(&args_since(&az, 0)).len(), 3);

    // The next run (no --location: the group exists) completes the rest, nothing else.
    let output = tfenv(&project, &["bootstrap", "dev", "--yes"], 0);
    assert!(
        stdout(&output).contains("made 4 change(s)"),
        "{}",
        output_text(&output)
    );
    let blob_service = |flags: &str| {
        mgmt(&format!(
            "storage account blob-service-properties update --account-name {ACCOUNT} --resource-group {GROUP} {flags}"
        ))
    };
    assert_eq!(
        writes(&args_since(&az, first)),
        [
            blob_service("--enable-versioning true"),
            blob_service("--enable-delete-retention true --delete-retention-days 7"),
            blob_service(
                "--enable-container-delete-retention true --container-delete-retention-days 7"
            ),
            mgmt(&format!(
                "storage container create --name tfstate --account-name {ACCOUNT} --public-access off"
            )),
        ]
    );
    let output = tfenv(&project, &["bootstrap", "dev"], 0);
    assert!(
        stdout(&output).contains("nothing to do"),
        "{}",
        output_text(&output)
    );
}
