use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::backend::Backends;
use crate::process::scripted::{Reply, ScriptedRunner};

fn project(dir: &Path, toml: &str) -> Project {
    std::fs::write(dir.join("tfenv.toml"), toml).unwrap();
    std::fs::write(
        dir.join("main.tf"),
        "terraform {\n  backend \"local\" {}\n}\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("environments")).unwrap();
    std::fs::write(
        dir.join("environments/dev.backend.conf"),
        "path = \"state/dev/terraform.tfstate\"\n",
    )
    .unwrap();
    Project::load(dir, None).unwrap()
}

const VERSION_JSON: &str = r#"{"terraform_version":"1.11.4","platform":"linux_amd64"}"#;

async fn locate(project: &Project, runner: Arc<ScriptedRunner>) -> anyhow::Result<Terraform> {
    Terraform::locate(PathBuf::from("/bin/sh"), project, runner).await
}

#[tokio::test]
async fn version_below_required_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(
        dir.path(),
        "[project]\nrequired_version = \">= 1.12\"\n[environments.dev]\n",
    );
    let runner =
        Arc::new(ScriptedRunner::default().expect(&["version", "-json"], Reply::ok(VERSION_JSON)));
    let err = locate(&project, runner).await.err().unwrap().to_string();
    assert!(err.contains("terraform 1.11.4"), "{err}");
    assert!(err.contains("required_version `>= 1.12`"), "{err}");
}

#[tokio::test]
async fn plain_text_version_output_is_understood() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), "[environments.dev]\n");
    let runner = Arc::new(
        ScriptedRunner::default()
            .expect(&["version"], Reply::ok("OpenTofu v1.6.2\non linux_amd64\n")),
    );
    let tf = locate(&project, runner).await.unwrap();
    assert_eq!(tf.version, semver::Version::new(1, 6, 2));
}

#[tokio::test]
async fn init_runs_once_then_is_skipped_until_the_backend_config_changes() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), "[environments.dev]\n");
    let env = project.environment("dev").unwrap();
    let backend = Backends::default().resolve(env, &project).unwrap();
    let runner = Arc::new(
        ScriptedRunner::default()
            .expect(&["version"], Reply::ok(VERSION_JSON))
            .expect(
                &["init", "-input=false"],
                Reply::ok("Terraform has been successfully initialized!"),
            )
            .expect(&["init", "-input=false"], Reply::ok("")),
    );
    let tf = locate(&project, runner.clone()).await.unwrap();
    assert_eq!(
        Terraform::init_state(env, &backend).unwrap(),
        InitState::Never
    );

    // terraform would create the data dir; the scripted runner does not.
    std::fs::create_dir_all(env.data_dir()).unwrap();
    assert_eq!(
        tf.init(env, &backend, InitOptions::default(), None)
            .await
            .unwrap(),
        InitOutcome::Ran
    );
    assert_eq!(
        Terraform::init_state(env, &backend).unwrap(),
        InitState::Current
    );
    assert_eq!(
        tf.init(env, &backend, InitOptions::default(), None)
            .await
            .unwrap(),
        InitOutcome::Skipped
    );

    std::fs::write(
        dir.path().join("environments/dev.backend.conf"),
        "path = \"elsewhere.tfstate\"\n",
    )
    .unwrap();
    let backend = Backends::default().resolve(env, &project).unwrap();
    assert_eq!(
        Terraform::init_state(env, &backend).unwrap(),
        InitState::Changed
    );
    assert_eq!(
        tf.init(env, &backend, InitOptions::default(), None)
            .await
            .unwrap(),
        InitOutcome::Ran
    );
    assert_eq!(runner.remaining(), 0);

    let init = &runner.calls()[1];
    assert_eq!(init.cwd, project.root);
    assert!(
        init.env
            .iter()
            .any(|(k, v)| k == "TF_DATA_DIR" && Path::new(v).ends_with(".terraform/tfenv/dev"))
    );
    assert!(
        init.env.iter().any(|(k, _)| k == "TF_PLUGIN_CACHE_DIR")
            || std::env::var_os("TF_PLUGIN_CACHE_DIR").is_some()
    );
    assert!(
        init.args
            .iter()
            .map(|a| a.to_string_lossy())
            .any(|a| a.starts_with("-backend-config=")
                && a.ends_with("environments/dev.backend.conf"))
    );
}

#[tokio::test]
async fn a_failed_init_shows_terraforms_error_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), "[environments.dev]\n");
    let env = project.environment("dev").unwrap();
    let backend = Backends::default().resolve(env, &project).unwrap();
    let stderr = "\n╷\n│ Error: Failed to get existing workspaces: S3 bucket does not exist.\n│ \n│ The referenced S3 bucket must have been previously created.\n╵\n";
    let runner = Arc::new(
        ScriptedRunner::default()
            .expect(&["version"], Reply::ok(VERSION_JSON))
            .expect(&["init"], Reply::fail(1, stderr)),
    );
    let tf = locate(&project, runner).await.unwrap();
    let err = tf
        .init(env, &backend, InitOptions::default(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`terraform init` for `dev` exited with code 1"),
        "{err}"
    );
    assert!(
        err.contains("Error: Failed to get existing workspaces: S3 bucket does not exist."),
        "{err}"
    );
    assert!(!err.contains('│'), "{err}");
    assert!(!env.fingerprint_file().exists());
}

#[test]
fn a_backend_whose_storage_does_not_exist_yet_names_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), "[environments.dev]\n");
    let env = project.environment("dev").unwrap();
    for said in [
        "Error: Failed to get existing workspaces: S3 bucket does not exist.",
        "Error: Failed to get existing workspaces: querying Cloud Storage failed: storage: bucket doesn't exist",
        "Error: Failed to get existing workspaces: containers.Client#ListBlobs: Failure responding to request: StatusCode=404 -- Original Error: autorest/azure: Service returned an error. Status=404 Code=\"ContainerNotFound\"",
    ] {
        let hint = storage_missing(said, env).expect(said);
        assert!(hint.contains("`tfenv bootstrap dev`"), "{hint}");
    }
    assert_eq!(
        storage_missing("Error: Invalid provider configuration", env),
        None
    );
}

#[tokio::test]
async fn state_header_streams_from_state_pull_and_rejects_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), "[environments.dev]\n");
    let env = project.environment("dev").unwrap();
    let state = r#"{"version":4,"terraform_version":"1.11.4","serial":3,"lineage":"abc","outputs":{},"resources":[]}"#;
    let runner = Arc::new(
        ScriptedRunner::default()
            .expect(&["version"], Reply::ok(VERSION_JSON))
            .expect(&["state", "pull"], Reply::ok(state))
            .expect(&["state", "pull"], Reply::ok(""))
            .expect(
                &["state", "pull"],
                Reply::ok("Warning: something\n{ not json"),
            ),
    );
    let tf = locate(&project, runner).await.unwrap();
    let header = tf.state_header(env).await.unwrap().unwrap();
    assert_eq!((header.serial, header.lineage.as_str()), (3, "abc"));
    assert_eq!(tf.state_header(env).await.unwrap(), None);
    let err = tf.state_header(env).await.unwrap_err().to_string();
    assert!(err.contains("not a state"), "{err}");
}

#[test]
fn workspace_is_set_for_its_environment_and_removed_for_others() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(
        dir.path(),
        "[environments.dev]\n[environments.qa]\nworkspace = \"qa\"\n",
    );
    let tf = Terraform {
        bin: "terraform".into(),
        version: semver::Version::new(1, 11, 4),
        runner: Arc::new(ScriptedRunner::default()),
        plugin_cache: None,
        echo: false,
        stream: false,
        full_errors: false,
        block: None,
        lock_timeout: std::time::Duration::ZERO,
    };
    let qa = tf.invocation(project.environment("qa").unwrap(), &["plan"]);
    assert!(qa.env.contains(&("TF_WORKSPACE".into(), "qa".into())));
    let dev = tf.invocation(project.environment("dev").unwrap(), &["plan"]);
    assert!(dev.env_remove.contains(&"TF_WORKSPACE".to_string()));
}

#[test]
fn a_long_error_is_cut_with_a_marker_that_says_where_the_rest_is() {
    let text: String =
        std::iter::once("\u{1b}[31m╷\n│ Error: Unsupported argument\u{1b}[0m\n".to_string())
            .chain((1..=24).map(|i| format!("│ detail {i}\n")))
            .collect();
    let cut = terraform_error_text(&text, 20, "full output: rerun with `tfenv -vv …`");
    let lines: Vec<&str> = cut.lines().collect();
    assert_eq!(lines.len(), 21, "{cut}");
    assert_eq!(lines[0], "  Error: Unsupported argument");
    assert_eq!(lines[19], "  detail 19");
    assert_eq!(
        lines[20],
        "  … (5 more lines; full output: rerun with `tfenv -vv …`)"
    );
    assert!(!cut.contains('\u{1b}'), "{cut:?}");

    let whole = terraform_error_text(&text, usize::MAX, "unused");
    assert!(whole.ends_with("  detail 24"), "{whole}");
    assert!(!whole.contains("more lines"), "{whole}");
}

#[test]
fn the_source_lines_terraform_quotes_in_an_error_are_left_out() {
    // terraform 1.11's error for a broken var file: its line holds the value.
    let text = "\nError: Missing newline after argument\n\n  on bad.tfvars line 3:\n   3: db_password = \"hunter2\" x\n\nAn argument definition must end with a newline.\n";
    let shown = terraform_error_text(text, 20, "unused");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("on bad.tfvars line 3:"), "{shown}");
    assert!(shown.contains("the source line is not shown"), "{shown}");
    assert!(shown.contains("must end with a newline"), "{shown}");
}

#[tokio::test]
async fn a_lock_held_during_state_push_names_its_holder_and_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), "[environments.dev]\n");
    let env = project.environment("dev").unwrap();
    let stderr = "\n╷\n│ Error: Error acquiring the state lock\n│ \n│ Lock Info:\n│   ID:        9db590f1\n│   Path:      state/dev/terraform.tfstate\n│   Operation: OperationTypeApply\n│   Who:       alice@laptop\n│   Version:   1.11.4\n│   Created:   2026-11-22 09:14:03 +0000 UTC\n│   Info:      \n╵\n";
    let runner = Arc::new(
        ScriptedRunner::default()
            .expect(&["version"], Reply::ok(VERSION_JSON))
            .expect(&["state", "push"], Reply::fail(1, stderr)),
    );
    let tf = locate(&project, runner).await.unwrap();
    let err = tf
        .state_push(env, Path::new("backup.tfstate"), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err.downcast_ref::<TfenvError>(), Some(TfenvError::LockHeld { info, .. }) if info.id == "9db590f1"),
        "{err:#}"
    );
    assert_eq!(crate::error::exit_for(&err), crate::exit::Exit::Locked);
    assert_eq!(
        err.to_string(),
        "the state of `dev` is locked by alice@laptop (OperationTypeApply since 2026-11-22 09:14:03 +0000 UTC, lock ID 9db590f1)"
    );
}

#[tokio::test]
async fn a_failure_with_no_error_never_quotes_stdout_that_may_hold_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), "[environments.dev]\n");
    let env = project.environment("dev").unwrap();
    let state =
        r#"{"version":4,"serial":9,"lineage":"abc","outputs":{"token":{"value":"s3cr3t-value"}}}"#;
    let printed_state = |code| Reply {
        code,
        stdout: state.as_bytes().to_vec(),
        stderr: Vec::new(),
    };
    let runner = Arc::new(
        ScriptedRunner::default()
            .expect(&["version"], Reply::ok(VERSION_JSON))
            .expect(&["state", "push"], printed_state(1))
            .expect(&["output"], printed_state(1))
            .expect(
                &["init"],
                Reply {
                    code: 1,
                    ..Reply::ok("Error: init says why on stdout")
                },
            ),
    );
    let tf = locate(&project, runner).await.unwrap();
    let push = tf
        .state_push(env, Path::new("x.tfstate"), false)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        push,
        "`terraform state push` for `dev` exited with code 1 and printed no error; what it printed is not shown: it may hold state values"
    );
    let output = tf.outputs(env).await.unwrap_err().to_string();
    assert!(!output.contains("s3cr3t"), "{output}");
    assert!(output.contains("printed no error"), "{output}");
    // init's stdout is only messages: it still stands in for an empty stderr.
    let backend = Backends::default().resolve(env, &project).unwrap();
    let init = tf
        .init(env, &backend, InitOptions::default(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(init.contains("Error: init says why on stdout"), "{init}");
}

#[tokio::test]
async fn a_lock_timeout_goes_to_every_call_that_takes_the_state_lock_before_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), "[environments.dev]\n");
    let env = project.environment("dev").unwrap();
    let stderr = "Error: Error acquiring the state lock\nLock Info:\n  ID:        9db590f1\n  Who:       alice@laptop\n";
    let runner = Arc::new(
        ScriptedRunner::default()
            .expect(&["version"], Reply::ok(VERSION_JSON))
            .expect(&["plan"], Reply::ok(""))
            .expect(&["apply"], Reply::ok(""))
            .expect(&["state", "push"], Reply::fail(1, stderr)),
    );
    let mut tf = locate(&project, runner.clone()).await.unwrap();
    tf.lock_timeout = std::time::Duration::from_secs(90);
    tf.plan(env, Path::new("p.plan"), false, false, None)
        .await
        .unwrap();
    tf.apply(env, Path::new("p.plan"), None).await.unwrap();
    let err = tf
        .state_push(env, Path::new("x.tfstate"), false)
        .await
        .unwrap_err();
    let calls = runner.calls();
    let args = |i: usize| -> Vec<String> {
        calls[i]
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    };
    assert!(
        args(1).contains(&"-lock-timeout=90000ms".to_string()),
        "{:?}",
        args(1)
    );
    let apply = args(2);
    assert_eq!(apply[1], "-lock-timeout=90000ms", "{apply:?}");
    assert_eq!(
        apply.last().map(String::as_str),
        Some("p.plan"),
        "{apply:?}"
    );
    let push = args(3);
    assert!(
        push.contains(&"-lock-timeout=90000ms".to_string()),
        "{push:?}"
    );
    assert_eq!(
        push.last().map(String::as_str),
        Some("x.tfstate"),
        "{push:?}"
    );
    // Still exit 4 when terraform's own wait ran out, saying how long it waited.
    assert_eq!(crate::error::exit_for(&err), crate::exit::Exit::Locked);
    let text = format!("{err:#}");
    assert!(
        text.starts_with("terraform waited 1m 30s (--lock-timeout) for the state lock of `dev`: the state of `dev` is locked by alice@laptop"),
        "{text}"
    );
}

#[test]
fn a_digest_mismatch_over_an_existing_object_hints_setting_the_digest_terraform_calculated() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(
        dir.path(),
        "[environments.dev]\nbackend_config = \"environments/dev.backend.conf\"\n",
    );
    std::fs::write(
        dir.path().join("environments/dev.backend.conf"),
        "bucket = \"tfstate\"\nkey = \"dev/terraform.tfstate\"\ndynamodb_table = \"tf-locks\"\n",
    )
    .unwrap();
    let env = project.environment("dev").unwrap();
    let text = "Error refreshing state: state data in S3 does not have the expected content.\n\nThe checksum calculated for the state stored in S3 does not match the checksum\nstored in DynamoDB.\n\nBucket: tfstate\nKey:    dev/terraform.tfstate\nCalculated checksum: 0123abcd\nStored checksum:     ffff0000\n";
    let hint = digest_mismatch(text, env).expect("recognised");
    assert!(hint.contains("`tf-locks`"), "{hint}");
    assert!(
        hint.contains("`LockID` = `tfstate/dev/terraform.tfstate-md5`"),
        "{hint}"
    );
    assert!(hint.contains(r#""Digest":{"S":"0123abcd"}"#), "{hint}");
    assert!(digest_mismatch("Error: something else", env).is_none());
}
