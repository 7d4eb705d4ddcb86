//! `tfenv migrate` when terraform crashes in the middle of the move: what is where, and
//! what to do next. (The move itself is tested on the real terraform, tests/e2e.)

use crate::support::fake::{FakeTerraform, INIT_OK};
use crate::support::{Project, expecting, stderr};

const OLD_STATE: &str = r#"{"version":4,"terraform_version":"1.11.4","serial":7,"lineage":"0f5b3a9e-1111-2222-3333-444455556666","outputs":{},"resources":[{"mode":"managed","type":"terraform_data","name":"a","provider":"provider[\"terraform.io/builtin/terraform\"]","instances":[{"schema_version":0,"attributes":{"id":"x"}}]}]}"#;

/// dev initialized (as terraform records it in the data dir) on `state/dev/old.tfstate`,
/// its backend config now naming `state/dev/new.tfstate`.
fn moved_project() -> Project {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[environments.dev]\nbackend_config = \"dev.backend.conf\"\n",
    );
    project.write("main.tf", "terraform {\n  backend \"local\" {}\n}\n");
    project.write("dev.backend.conf", "path = \"state/dev/new.tfstate\"\n");
    project.write("state/dev/old.tfstate", OLD_STATE);
    project.write(
        ".terraform/tfenv/dev/terraform.tfstate",
        r#"{"version":3,"backend":{"type":"local","config":{"path":"state/dev/old.tfstate","workspace_dir":null},"hash":1}}"#,
    );
    project
}

#[test]
fn terraform_crashing_mid_migrate_says_the_state_is_still_at_the_old_place_and_what_to_do() {
    let project = moved_project();
    // init -migrate-state writes half a state at the new place, then crashes.
    let terraform = FakeTerraform::working()
        .on(
            "init",
            format!(
                r#"case " $* " in
    *" -migrate-state "*) printf '{{"version":4,"ser' > state/dev/new.tfstate; echo 'panic: runtime error: invalid memory address or nil pointer dereference' >&2; exit 2 ;;
  esac
  {INIT_OK}"#
            ),
        )
        .install(&project);
    let output = expecting(
        project.run_with(&terraform, &["migrate", "dev", "--yes"]),
        1,
    );
    let text = stderr(&output);
    assert!(text.contains("moving the state of `dev` failed"), "{text}");
    assert!(text.contains("panic: runtime error"), "{text}");
    assert!(
        text.contains(
            "The state is still at `state/dev/old.tfstate` (local), backed up as terraform.tfstate."
        ),
        "{text}"
    );
    assert!(
        text.contains("`state/dev/new.tfstate` (local) may hold a partial copy"),
        "{text}"
    );
    assert!(
        text.contains("run `tfenv migrate dev` again (add --force"),
        "{text}"
    );
    // The old state is untouched, its backup listed, the run recorded as failed.
    assert_eq!(project.read("state/dev/old.tfstate"), OLD_STATE);
    let record = project.last_history("dev");
    assert_eq!(record["command"], "migrate", "{record}");
    assert_eq!(record["result"], "failed", "{record}");
    assert_eq!(
        record["migrated"]["from"]["location"],
        "state/dev/old.tfstate"
    );
    assert_eq!(
        record["migrated"]["to"]["location"],
        "state/dev/new.tfstate"
    );
    assert!(
        record["backup"]
            .as_str()
            .unwrap()
            .starts_with("terraform.tfstate.")
    );

    // The half-written copy is not a state: a second run is refused without --force
    // (nothing changed), and with it a terraform that works moves the state.
    let terraform = FakeTerraform::working()
        .on(
            "init",
            format!(
                r#"case " $* " in
    *" -migrate-state "*) cp state/dev/old.tfstate state/dev/new.tfstate ;;
  esac
  {INIT_OK}"#
            ),
        )
        .state(OLD_STATE)
        .install(&project);
    let output = expecting(
        project.run_with(&terraform, &["migrate", "dev", "--yes"]),
        5,
    );
    let text = stderr(&output);
    assert!(text.contains("not a readable Terraform state"), "{text}");
    // What to remove, keeping a copy; or --force, which does that.
    assert!(
        text.contains("mv state/dev/new.tfstate state/dev/new.tfstate.broken"),
        "{text}"
    );
    assert!(text.contains("pass --force"), "{text}");
    assert_eq!(
        project.read("state/dev/new.tfstate"),
        "{\"version\":4,\"ser"
    );
    // terraform cannot migrate over it ("State migration cannot occur unless the state
    // can be loaded"): --force keeps its bytes and removes it first.
    let terraform = FakeTerraform::working()
        .on(
            "init",
            format!(
                r#"case " $* " in
    *" -migrate-state "*) if [ -e state/dev/new.tfstate ]; then echo 'State migration cannot occur unless the state can be loaded' >&2; exit 1; fi; cp state/dev/old.tfstate state/dev/new.tfstate ;;
  esac
  {INIT_OK}"#
            ),
        )
        .state(OLD_STATE)
        .install(&project);
    let output = expecting(
        project.run_with(&terraform, &["migrate", "dev", "--yes", "--force"]),
        0,
    );
    let text = stderr(&output);
    assert!(
        text.contains("its bytes are kept in `state/dev/migrate-target-"),
        "{text}"
    );
    assert_eq!(project.read("state/dev/new.tfstate"), OLD_STATE);
    assert_eq!(project.read("state/dev/old.tfstate"), OLD_STATE);
    let kept: Vec<_> = std::fs::read_dir(project.join("state/dev"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".unreadable"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        std::fs::read_to_string(kept[0].path()).unwrap(),
        "{\"version\":4,\"ser"
    );
}

#[test]
fn migrate_refuses_a_target_holding_an_outputs_only_state_without_force() {
    let project = moved_project();
    project.write(
        "state/dev/new.tfstate",
        r#"{"version":4,"terraform_version":"1.11.4","serial":2,"lineage":"aaaaaaaa-1111-2222-3333-444455556666","outputs":{"url":{"value":"https://x","type":"string"}},"resources":[]}"#,
    );
    let terraform = FakeTerraform::working().state(OLD_STATE).install(&project);
    let output = expecting(
        project.run_with(&terraform, &["migrate", "dev", "--yes"]),
        5,
    );
    let text = stderr(&output);
    assert!(text.contains("already holds a state"), "{text}");
    assert!(text.contains("--force"), "{text}");
    assert!(project.read("state/dev/new.tfstate").contains("https://x"));
}

#[test]
fn migrate_from_a_file_whose_keys_do_not_fit_the_backend_type_says_which_key() {
    let project = moved_project();
    let terraform = FakeTerraform::working().state(OLD_STATE).install(&project);
    project.write("wrong.conf", "bucket = \"x\"\n");
    let output = expecting(
        project.run_with(
            &terraform,
            &[
                "migrate",
                "dev",
                "--from",
                "wrong.conf",
                "--from-type",
                "local",
                "--yes",
            ],
        ),
        2,
    );
    let text = stderr(&output);
    assert!(
        text.contains("`bucket` is not a setting of the local backend"),
        "{text}"
    );
    assert!(text.contains("--from-type s3"), "{text}");
    // Without --from-type its keys say s3, and an s3 config needs a key.
    let output = expecting(
        project.run_with(
            &terraform,
            &["migrate", "dev", "--from", "wrong.conf", "--yes"],
        ),
        2,
    );
    let text = stderr(&output);
    assert!(
        text.contains("read as an s3 backend config but has no `key`"),
        "{text}"
    );
    assert!(!text.contains("s3://?"), "{text}");
}

#[test]
fn migrate_on_a_fresh_checkout_without_from_names_from() {
    let project = moved_project();
    std::fs::remove_dir_all(project.join(".terraform")).unwrap();
    let terraform = FakeTerraform::working().install(&project);
    let output = expecting(
        project.run_with(&terraform, &["migrate", "dev", "--yes"]),
        2,
    );
    let text = stderr(&output);
    assert!(text.contains("never initialized on this machine (a fresh checkout?); name the old backend config with --from"), "{text}");

    // Initialized at the new place already (a plain init on the fresh checkout).
    project.write(
        ".terraform/tfenv/dev/terraform.tfstate",
        r#"{"version":3,"backend":{"type":"local","config":{"path":"state/dev/new.tfstate"},"hash":1}}"#,
    );
    let output = expecting(
        project.run_with(&terraform, &["migrate", "dev", "--yes"]),
        2,
    );
    let text = stderr(&output);
    assert!(text.contains("nothing to migrate"), "{text}");
    assert!(
        text.contains("tfenv migrate dev --from <old backend config>"),
        "{text}"
    );
}

#[test]
fn a_moved_backend_whose_old_place_cannot_be_read_names_init_reconfigure() {
    let project = moved_project();
    std::fs::remove_file(project.join("state/dev/old.tfstate")).unwrap();
    std::fs::create_dir_all(project.join("state/dev/old.tfstate")).unwrap();
    let terraform = FakeTerraform::working()
        .on(
            "init",
            r#"echo 'Error: Backend configuration changed' >&2; exit 1"#.to_string(),
        )
        .install(&project);
    let output = expecting(project.run_with(&terraform, &["init", "dev"]), 5);
    let text = stderr(&output);
    assert!(
        text.contains("tfenv cannot tell whether a state is still there"),
        "{text}"
    );
    assert!(text.contains("tfenv init dev --reconfigure"), "{text}");
    assert!(!text.contains("Backend configuration changed"), "{text}");
}
