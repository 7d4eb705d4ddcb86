//! `tfenv validate --all` with the real terraform: a project with two roots that has
//! everything CI should catch (a file that needs `terraform fmt`, a syntax error, a
//! misspelled variable, a required variable no var file sets), and the clean demo.

use crate::support::snap::Snapshots;
use crate::support::{Project, expecting, stdout, stdout_json, terraform};

/// Two roots: `app` (dev and staging; its main.tf is not formatted, dev's var file has
/// a typo, staging sets nothing) and `edge` (a syntax error on line 3 of broken.tf).
fn broken_project() -> Project {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        r#"[project]
root = "app"

[environments.dev]
var_files = ["environments/dev.tfvars"]

[environments.staging]

[environments.edge]
root = "edge"
"#,
    );
    project.write(
        "app/main.tf",
        "variable \"environment\" {\n  type = string\n}\n\nvariable \"instance_count\" {\n  default = 1\n}\n\noutput \"name\" {\nvalue = \"${var.environment}-${var.instance_count}\"\n}\n",
    );
    project.write(
        "environments/dev.tfvars",
        "environment   = \"dev\"\ninstance_cout = 3\n",
    );
    project.write("edge/main.tf", "output \"ok\" {\n  value = 1\n}\n");
    project.write(
        "edge/broken.tf",
        "output \"broken\" {\n  value = 1\n  description = \n}\n",
    );
    project
}

#[test]
fn validate_all_catches_fmt_syntax_and_misspelled_variables_and_warns_on_unset_ones() {
    let project = broken_project();
    let output = expecting(project.run_with(terraform(), &["validate", "--all"]), 1);
    let out = stdout(&output);
    // The file that needs formatting, by name.
    assert!(
        out.contains("✗ root `app` (dev, staging): fmt: 1 file(s) to format"),
        "{out}"
    );
    assert!(
        out.contains("`app/main.tf`: not formatted; run `terraform fmt -recursive` in `app`"),
        "{out}"
    );
    // The syntax error, by file and line.
    assert!(out.contains("✗ root `edge` (edge)"), "{out}");
    assert!(out.contains("`edge/broken.tf:3:"), "{out}");
    // The misspelled variable: file, line and the closest declared name.
    assert!(
        out.contains(
            "dev: `instance_cout` is set in `environments/dev.tfvars` line 2 but the root module `app` declares no such variable; did you mean `instance_count`?"
        ),
        "{out}"
    );
    // A required variable no var file sets: a warning naming where terraform looks.
    assert!(out.contains("\nwarnings:\n"), "{out}");
    assert!(
        out.contains("staging: required variable `environment`")
            && out.contains("TF_VAR_environment"),
        "{out}"
    );
    // Nothing of any environment was initialized, and no backend was touched.
    for env in ["dev", "staging"] {
        assert!(
            !project
                .join(&format!("app/.terraform/tfenv/{env}"))
                .exists()
        );
    }
    assert!(!project.join("app/terraform.tfstate").exists());
    assert!(!project.join("state").exists());

    let output = expecting(
        project.run_with(terraform(), &["validate", "--all", "--output", "json"]),
        1,
    );
    let json = stdout_json(&output);
    assert_eq!(json["valid"], false);
    assert_eq!(
        json["roots"][0]["fmt"]["files"][0], "app/main.tf",
        "{json:#}"
    );
    let diagnostic = &json["roots"][1]["diagnostics"][0];
    assert_eq!(diagnostic["file"], "edge/broken.tf", "{json:#}");
    assert_eq!(diagnostic["line"], 3, "{json:#}");
    let typo = &json["environments"][0]["problems"][0];
    assert_eq!(typo["code"], "undeclared-variable", "{json:#}");
    assert_eq!(typo["file"], "environments/dev.tfvars");
    assert_eq!(typo["line"], 2);
    assert_eq!(typo["did_you_mean"], "instance_count");
    assert_eq!(
        json["environments"][1]["problems"][0]["severity"],
        "warning"
    );

    let mut snapshots = Snapshots::new(&project);
    snapshots.real_terraform(&terraform());
    snapshots.json(
        "json-validate",
        &["validate", "--all", "--output", "json"],
        &output,
    );
    let output = expecting(project.run_with(terraform(), &["validate", "--all"]), 1);
    snapshots.stdout("validate", &["validate", "--all"], &output);
}

#[test]
fn validate_all_of_a_clean_project_passes_and_warnings_alone_exit_0() {
    let project = Project::demo();
    let output = expecting(project.run_with(terraform(), &["validate", "--all"]), 0);
    let out = stdout(&output);
    assert!(
        out.contains(
            "✓ root `examples/quickstart` (dev, staging, production): fmt: ok, validate: ok"
        ),
        "{out}"
    );
    assert!(out.trim_end().ends_with("valid"), "{out}");
    // It left every environment as it was: no data dir, no state.
    for env in ["dev", "staging", "production"] {
        assert!(
            !project
                .join(&format!("examples/quickstart/.terraform/tfenv/{env}"))
                .exists()
        );
    }
    assert!(!project.join("state").exists());

    // A required variable unset is a warning only: exit 0.
    project.write("environments/staging.tfvars", "instance_count = 2\n");
    let output = expecting(project.run_with(terraform(), &["validate", "staging"]), 0);
    let out = stdout(&output);
    assert!(
        out.contains("! environment `staging`: 2 var file(s), 1 warning(s)"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("valid, 1 warning(s)"), "{out}");
}
