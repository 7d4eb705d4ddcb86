//! `tfenv validate` against a fake terraform: what it runs (never the backend, never an
//! environment's data dir) and the faults of terraform itself — a `validate -json` that
//! prints garbage or crashes is a clear error for its root, never a panic.

use crate::support::fake::FakeTerraform;
use crate::support::{Project, expecting, stderr, stdout, stdout_json};

const VALID: &str = r#"echo '{"format_version":"1.0","valid":true,"error_count":0,"warning_count":0,"diagnostics":[]}'"#;

/// A terraform whose fmt finds nothing to do, whose init works, and whose `validate`
/// runs `validate`.
fn terraform(project: &Project, validate: &str) -> std::path::PathBuf {
    FakeTerraform::empty()
        .on("fmt", "true")
        .on("init", "true")
        .on("validate", validate)
        .install(project)
}

#[test]
fn validate_inits_without_the_backend_into_its_own_data_dir_and_no_environments() {
    let project = Project::demo();
    let tf = terraform(&project, VALID);
    let output = expecting(project.run_with(&tf, &["validate", "--all"]), 0);
    let out = stdout(&output);
    assert!(
        out.contains("✓ root `examples/quickstart` (dev, staging, production)"),
        "{out}"
    );
    let calls = project.read("calls.log");
    let inits: Vec<&str> = calls.lines().filter(|l| l.starts_with("init")).collect();
    // One root, one init: with -backend=false and no environment's backend config.
    assert_eq!(
        inits,
        ["init -backend=false -input=false -no-color"],
        "{calls}"
    );
    assert!(calls.contains("fmt -check -recursive"), "{calls}");
    assert!(calls.contains("validate -json"), "{calls}");
    let data_dirs = project.read("data-dirs.log");
    let expected = project.join("examples/quickstart/.terraform/tfenv/_validate");
    for line in data_dirs.lines().filter(|l| !l.is_empty()) {
        assert_eq!(line, expected.display().to_string(), "{data_dirs}");
    }
    for env in ["dev", "staging", "production"] {
        let dir = project.join(&format!("examples/quickstart/.terraform/tfenv/{env}"));
        assert!(!dir.exists(), "{} was created", dir.display());
    }
    assert!(!project.join("state").exists(), "validate wrote state/");
}

#[test]
fn a_validate_that_prints_garbage_is_a_clear_error_of_its_root() {
    let project = Project::demo();
    let tf = terraform(&project, "echo 'panic: runtime error: {{{'; exit 1");
    let output = expecting(project.run_with(&tf, &["validate", "--all"]), 1);
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(
        out.contains(
            "✗ root `examples/quickstart` (dev, staging, production): fmt: ok, not checked"
        ),
        "{out}"
    );
    assert!(
        out.contains("did not print its JSON document")
            && out.contains("`panic: runtime error: {{{`"),
        "{out}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let output = expecting(
        project.run_with(&tf, &["validate", "--all", "--output", "json"]),
        1,
    );
    let json = stdout_json(&output);
    assert_eq!(json["valid"], false);
    let error = &json["roots"][0]["error"]["message"];
    assert!(
        error
            .as_str()
            .unwrap()
            .contains("did not print its JSON document"),
        "{json:#}"
    );
}

#[test]
fn a_validate_that_crashes_names_how_it_ended() {
    let project = Project::demo();
    let tf = terraform(&project, "echo 'half' >&2; kill -SEGV $$");
    let output = expecting(project.run_with(&tf, &["validate", "dev"]), 1);
    let out = stdout(&output);
    assert!(
        out.contains("`terraform validate -json` in") && out.contains("was killed by signal 11"),
        "{out}"
    );
    assert!(out.contains("half"), "{out}");
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
}

#[test]
fn a_failing_fmt_is_the_roots_error_and_validate_still_exits_1() {
    let project = Project::demo();
    let tf = FakeTerraform::empty()
        .on("fmt", "echo 'Error: fmt blew up' >&2; exit 1")
        .install(&project);
    let output = expecting(
        project.run_with(&tf, &["validate", "--all", "--output", "json"]),
        1,
    );
    let json = stdout_json(&output);
    let message = json["roots"][0]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`terraform fmt -check` in") && message.contains("fmt blew up"),
        "{json:#}"
    );
}

#[test]
fn a_var_file_that_does_not_parse_is_an_error_naming_file_and_line() {
    let project = Project::demo();
    project.write(
        "environments/staging.tfvars",
        "environment = \"staging\"\ninstance_count = = 2\n",
    );
    let tf = terraform(&project, VALID);
    let output = expecting(project.run_with(&tf, &["validate", "--all"]), 1);
    let out = stdout(&output);
    assert!(
        out.contains("✗ environment `staging`: 2 var file(s), 1 error(s)"),
        "{out}"
    );
    assert!(
        out.contains("staging: syntax error in `environments/staging.tfvars` at line 2, column"),
        "{out}"
    );
    let output = expecting(
        project.run_with(&tf, &["validate", "--all", "--output", "json"]),
        1,
    );
    let json = stdout_json(&output);
    let problem = &json["environments"][1]["problems"][0];
    assert_eq!(problem["code"], "var-file-syntax", "{json:#}");
    assert_eq!(problem["file"], "environments/staging.tfvars");
    assert_eq!(problem["line"], 2);
    // The others are checked all the same.
    assert_eq!(json["environments"][0]["valid"], true, "{json:#}");
}

#[test]
fn roots_are_validated_at_once() {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[project]\nroot = \"one\"\n\n[environments.dev]\n\n[environments.edge]\nroot = \"two\"\n",
    );
    project.write("one/main.tf", "");
    project.write("two/main.tf", "");
    // Each root's validate waits (up to 10 s) until the other's has started: one at a
    // time, the first would wait alone and print no JSON.
    let validate = format!(
        r#"touch "$FAKE_DIR/started-${{PWD##*/}}"
for _ in $(seq 100); do [ "$(ls "$FAKE_DIR" | grep -c '^started-')" -ge 2 ] && break; sleep 0.1; done
[ "$(ls "$FAKE_DIR" | grep -c '^started-')" -ge 2 ] || {{ echo alone; exit 1; }}
{VALID}"#
    );
    let tf = terraform(&project, &validate);
    let output = expecting(project.run_with(&tf, &["validate", "--all", "-j", "2"]), 0);
    let out = stdout(&output);
    assert!(out.contains("✓ root `one` (dev)"), "{out}");
    assert!(out.contains("✓ root `two` (edge)"), "{out}");
}

#[test]
fn a_root_that_is_not_a_folder_is_named_and_runs_no_terraform_there() {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[project]\n\n[environments.dev]\nroot = \"nope\"\n",
    );
    project.write("main.tf", "");
    let tf = terraform(&project, VALID);
    let output = expecting(project.run_with(&tf, &["validate", "--all"]), 1);
    let out = stdout(&output);
    assert!(
        out.contains("the root module `nope` is not a folder"),
        "{out}"
    );
    assert!(out.contains("fix `root` for dev in tfenv.toml"), "{out}");
    assert!(!project.read_or_empty("calls.log").contains("fmt"));
}

/// A root with one required variable, and `dev` whose var files are `dev.tfvars` and
/// `extra.tfvars`.
fn required_region_project(dev: &str) -> Project {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[project]\n\n[environments.dev]\nvar_files = [\"dev.tfvars\", \"extra.tfvars\"]\n",
    );
    project.write(
        "main.tf",
        "variable \"region\" {}\nvariable \"size\" {\n  default = 1\n}\n",
    );
    project.write("dev.tfvars", dev);
    project
}

#[test]
fn a_var_file_that_is_a_folder_is_one_error_and_no_required_variable_is_said_unset() {
    let project = required_region_project("size = 2\n");
    std::fs::create_dir(project.path().join("extra.tfvars")).unwrap();
    let tf = terraform(&project, VALID);
    let output = expecting(
        project.run_with(&tf, &["validate", "--all", "--output", "json"]),
        1,
    );
    let json = stdout_json(&output);
    let problems = json["environments"][0]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{json:#}");
    let message = problems[0]["message"].as_str().unwrap();
    assert!(message.contains("`extra.tfvars`"), "{message}");
    assert!(
        !message.contains(&project.path().display().to_string()),
        "{message}"
    );
    assert!(problems[0]["hint"].is_string(), "{json:#}");
}

#[test]
fn a_var_file_that_does_not_parse_makes_no_required_variable_warning() {
    let project = required_region_project("size = = 2\n");
    project.write("extra.tfvars", "");
    let tf = terraform(&project, VALID);
    let output = expecting(
        project.run_with(&tf, &["validate", "--all", "--output", "json"]),
        1,
    );
    let json = stdout_json(&output);
    let codes: Vec<&str> = json["environments"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["var-file-syntax"], "{json:#}");
}

#[test]
fn a_function_call_or_reference_in_a_var_file_is_an_error_naming_file_line_and_variable() {
    let project = required_region_project("size = max(1, 2)\nregion = local.region\n");
    project.write("extra.tfvars", "");
    let tf = terraform(&project, VALID);
    let output = expecting(project.run_with(&tf, &["validate", "--all"]), 1);
    let out = stdout(&output);
    assert!(
        out.contains("`size` in `dev.tfvars` line 1: var files take literal values only; terraform refuses `max(1, 2)`"),
        "{out}"
    );
    assert!(
        out.contains("`region` in `dev.tfvars` line 2: var files take literal values only; terraform refuses `local.region`"),
        "{out}"
    );
    let output = expecting(
        project.run_with(&tf, &["validate", "--all", "--output", "json"]),
        1,
    );
    let json = stdout_json(&output);
    let problem = &json["environments"][0]["problems"][0];
    assert_eq!(problem["code"], "var-file-not-literal", "{json:#}");
    assert_eq!(problem["file"], "dev.tfvars");
    assert_eq!(problem["line"], 1);
    assert_eq!(problem["variable"], "size");
}
