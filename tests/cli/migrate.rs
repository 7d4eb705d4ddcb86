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
    assert!(text.contains("pass --force"), "{text}");
    assert_eq!(
        project.read("state/dev/new.tfstate"),
        "{\"version\":4,\"ser"
    );
    expecting(
        project.run_with(&terraform, &["migrate", "dev", "--yes", "--force"]),
        0,
    );
    assert_eq!(project.read("state/dev/new.tfstate"), OLD_STATE);
    assert_eq!(project.read("state/dev/old.tfstate"), OLD_STATE);
}
