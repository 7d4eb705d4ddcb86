//! Discovery of every layout variant (DESIGN.md §2), each checked with
//! `tfenv envs --output json`; the notes for files no environment uses; two variants of
//! one environment; and the near misses "no tfenv project found" names.

use predicates::prelude::*;
use serde_json::{Value, json};

use crate::support::{Project, stdout_json};

const LOCAL_ROOT: &str = "terraform {\n  backend \"local\" {}\n}\n";

/// One layout variant: the files of a fixture and what `envs --output json` says of
/// each environment: [name, tier, layout, root, backend type, location, config], then
/// the var files in order, then the auto-loaded ones.
struct Variant {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    environments: &'static [(
        [&'static str; 7],
        &'static [&'static str],
        &'static [&'static str],
    )],
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "environments/<env>.backend.conf",
        files: &[
            ("main.tf", LOCAL_ROOT),
            (
                "environments/dev.backend.conf",
                "path = \"state/dev.tfstate\"\n",
            ),
            ("environments/dev.tfvars", "x = 1\n"),
        ],
        environments: &[(
            [
                "dev",
                "development",
                "environments-files",
                "",
                "local",
                "state/dev.tfstate",
                "environments/dev.backend.conf",
            ],
            &["environments/dev.tfvars"],
            &[],
        )],
    },
    Variant {
        name: "environments/<env>.backend.hcl",
        files: &[
            ("main.tf", LOCAL_ROOT),
            (
                "environments/staging.backend.hcl",
                "path = \"state/staging.tfstate\"\n",
            ),
            ("environments/staging.tfvars", "x = 1\n"),
        ],
        environments: &[(
            [
                "staging",
                "staging",
                "environments-files",
                "",
                "local",
                "state/staging.tfstate",
                "environments/staging.backend.hcl",
            ],
            &["environments/staging.tfvars"],
            &[],
        )],
    },
    Variant {
        name: "environments/<env>.tfbackend",
        files: &[
            ("main.tf", "terraform {\n  backend \"s3\" {}\n}\n"),
            (
                "environments/prod.tfbackend",
                "bucket = \"tfstate\"\nkey = \"prod/terraform.tfstate\"\nregion = \"us-east-1\"\n",
            ),
            ("environments/prod.tfvars", "x = 1\n"),
            ("terraform.tfvars", "shared = 1\n"),
        ],
        environments: &[(
            [
                "prod",
                "production",
                "environments-files",
                "",
                "s3",
                "s3://tfstate/prod/terraform.tfstate",
                "environments/prod.tfbackend",
            ],
            &["environments/prod.tfvars"],
            &["terraform.tfvars"],
        )],
    },
    Variant {
        name: "backend-<env>.tfbackend + terraform.tfvars.<env>",
        files: &[
            ("main.tf", "terraform {\n  backend \"s3\" {}\n}\n"),
            (
                "backend-staging.tfbackend",
                "bucket = \"tfstate\"\nkey = \"staging/terraform.tfstate\"\nregion = \"us-east-1\"\n",
            ),
            ("terraform.tfvars.staging", "x = 1\n"),
        ],
        environments: &[(
            [
                "staging",
                "staging",
                "suffix-files",
                "",
                "s3",
                "s3://tfstate/staging/terraform.tfstate",
                "backend-staging.tfbackend",
            ],
            &["terraform.tfvars.staging"],
            &[],
        )],
    },
    Variant {
        name: "backend-<env>.tfbackend + <env>.tfvars",
        files: &[
            ("main.tf", LOCAL_ROOT),
            ("backend-dev.tfbackend", "path = \"state/dev.tfstate\"\n"),
            ("dev.tfvars", "x = 1\n"),
            ("backend-prod.tfbackend", "path = \"state/prod.tfstate\"\n"),
            ("prod.tfvars", "x = 2\n"),
            ("common.auto.tfvars", "y = 1\n"),
        ],
        environments: &[
            (
                [
                    "dev",
                    "development",
                    "suffix-files",
                    "",
                    "local",
                    "state/dev.tfstate",
                    "backend-dev.tfbackend",
                ],
                &["dev.tfvars"],
                &["common.auto.tfvars"],
            ),
            (
                [
                    "prod",
                    "production",
                    "suffix-files",
                    "",
                    "local",
                    "state/prod.tfstate",
                    "backend-prod.tfbackend",
                ],
                &["prod.tfvars"],
                &["common.auto.tfvars"],
            ),
        ],
    },
    Variant {
        name: "environments/<env>/ with backend.conf",
        files: &[
            ("environments/dev/main.tf", LOCAL_ROOT),
            ("environments/dev/backend.conf", "path = \"dev.tfstate\"\n"),
            ("environments/dev/dev.tfvars", "x = 1\n"),
            ("environments/dev/zz.tfvars.json", "{\"x\": 2}\n"),
        ],
        environments: &[(
            [
                "dev",
                "development",
                "folder-per-env",
                "environments/dev",
                "local",
                "environments/dev/dev.tfstate",
                "environments/dev/backend.conf",
            ],
            &[
                "environments/dev/dev.tfvars",
                "environments/dev/zz.tfvars.json",
            ],
            &[],
        )],
    },
    Variant {
        name: "envs/<env>/ with an inline backend and auto-loaded var files",
        files: &[
            (
                "envs/dev/main.tf",
                "terraform {\n  backend \"local\" {\n    path = \"dev.tfstate\"\n  }\n}\n",
            ),
            ("envs/dev/terraform.tfvars", "x = 1\n"),
            ("envs/dev/b.auto.tfvars", "y = 1\n"),
            ("envs/dev/a.auto.tfvars.json", "{\"y\": 2}\n"),
            ("envs/dev/override.tfvars", "x = 3\n"),
            (
                "envs/prod/main.tf",
                "terraform {\n  backend \"local\" {\n    path = \"prod.tfstate\"\n  }\n}\n",
            ),
            ("envs/prod/terraform.tfvars", "x = 2\n"),
        ],
        environments: &[
            (
                [
                    "dev",
                    "development",
                    "folder-per-env",
                    "envs/dev",
                    "local",
                    "envs/dev/dev.tfstate",
                    "",
                ],
                &["envs/dev/override.tfvars"],
                &[
                    "envs/dev/terraform.tfvars",
                    "envs/dev/a.auto.tfvars.json",
                    "envs/dev/b.auto.tfvars",
                ],
            ),
            (
                [
                    "prod",
                    "production",
                    "folder-per-env",
                    "envs/prod",
                    "local",
                    "envs/prod/prod.tfstate",
                    "",
                ],
                &[],
                &["envs/prod/terraform.tfvars"],
            ),
        ],
    },
    Variant {
        name: "env/<env>/ with backend.hcl",
        files: &[
            ("env/uat/main.tf", LOCAL_ROOT),
            ("env/uat/backend.hcl", "path = \"uat.tfstate\"\n"),
        ],
        environments: &[(
            [
                "uat",
                "staging",
                "folder-per-env",
                "env/uat",
                "local",
                "env/uat/uat.tfstate",
                "env/uat/backend.hcl",
            ],
            &[],
            &[],
        )],
    },
];

fn envs_json(project: &Project) -> Value {
    let output = project
        .tfenv()
        .args(["envs", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout_json(&output)
}

#[test]
fn each_layout_variant_is_discovered_with_its_tier_backend_var_files_and_root() {
    for variant in VARIANTS {
        let project = Project::empty();
        for (path, text) in variant.files {
            project.write(path, text);
        }
        let json = envs_json(&project);
        assert_eq!(
            json["project"]["source"], "discovered-layout",
            "{}",
            variant.name
        );
        let got = json["environments"].as_array().unwrap();
        assert_eq!(
            got.len(),
            variant.environments.len(),
            "{}: {json:#}",
            variant.name
        );
        for (env, (fields, var_files, auto)) in got.iter().zip(variant.environments) {
            let [name, tier, layout, root, kind, location, config] = fields;
            let config = match *config {
                "" => Value::Null,
                config => json!(config),
            };
            let want = json!({
                "name": name, "tier": tier, "layout": layout, "root": root,
                "backend": { "type": kind, "location": location, "config": config },
                "var_files": var_files, "auto_var_files": auto,
            });
            let have = json!({
                "name": env["name"], "tier": env["tier"], "layout": env["layout"], "root": env["root"],
                "backend": { "type": env["backend"]["type"], "location": env["backend"]["location"], "config": env["backend"]["config"] },
                "var_files": env["var_files"], "auto_var_files": env["auto_var_files"],
            });
            assert_eq!(have, want, "{}", variant.name);
        }
        assert_eq!(json["notes"], json!([]), "{}", variant.name);
    }
}

#[test]
fn auto_loaded_var_files_are_shown_as_auto_and_never_passed_with_var_file() {
    let project = Project::empty();
    for (path, text) in VARIANTS[6].files {
        project.write(path, text);
    }
    project
        .tfenv()
        .arg("envs")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "envs/dev/terraform.tfvars (auto), envs/dev/a.auto.tfvars.json (auto), envs/dev/b.auto.tfvars (auto), envs/dev/override.tfvars",
        ));
    let tf = crate::support::fake::FakeTerraform::working().install(&project);
    let output = project.run_with(&tf, &["plan", "dev"]);
    assert!(output.status.success(), "{output:?}");
    let calls = project.read("calls.log");
    let plan = calls.lines().find(|l| l.starts_with("plan")).unwrap();
    assert_eq!(plan.matches("-var-file=").count(), 1, "{plan}");
    assert!(plan.contains("override.tfvars"), "{plan}");
}

#[test]
fn var_files_no_environment_uses_and_a_backend_without_var_file_are_notes() {
    let project = Project::empty();
    project.write("main.tf", LOCAL_ROOT);
    project.write("environments/dev.backend.conf", "path = \"d\"\n");
    project.write("environments/dev.tfvars", "x = 1\n");
    project.write("environments/common.tfvars", "x = 0\n");
    project.write("environments/prod.backend.hcl", "path = \"p\"\n");
    project.write("qa.backend.conf", "path = \"q\"\n");
    let json = envs_json(&project);
    let notes: Vec<(&str, &str)> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["code"].as_str().unwrap(), n["file"].as_str().unwrap()))
        .collect();
    assert_eq!(
        notes,
        [
            ("unmatched-var-file", "environments/common.tfvars"),
            ("missing-var-file", "environments/prod.backend.hcl"),
            ("unmatched-backend-config", "qa.backend.conf"),
        ]
    );
    project
        .tfenv()
        .arg("envs")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "note: `environments/common.tfvars` is not used: no `environments/common.backend.conf`, `environments/common.backend.hcl` or `environments/common.tfbackend` beside it makes `common` an environment",
        ))
        .stdout(predicate::str::contains(
            "note: `environments/prod.backend.hcl` has no var file beside it (`environments/prod.tfvars` or `environments/prod.tfvars.json`)",
        ))
        .stdout(predicate::str::contains(
            "note: `qa.backend.conf` looks like the backend config of `qa` but fits no layout",
        ));

    // A root `<env>.tfvars` with no `backend-<env>.tfbackend` is a note, not dropped.
    let suffix = Project::empty();
    suffix.write("backend-dev.tfbackend", "path = \"d\"\n");
    suffix.write("dev.tfvars", "x = 1\n");
    suffix.write("shared.tfvars", "x = 1\n");
    let json = envs_json(&suffix);
    assert_eq!(json["environments"][0]["var_files"], json!(["dev.tfvars"]));
    assert_eq!(json["notes"][0]["file"], "shared.tfvars");
    assert_eq!(
        json["notes"][0]["message"],
        "`shared.tfvars` is not used: no `backend-shared.tfbackend` beside it makes `shared` an environment"
    );
}

#[test]
fn two_variants_of_one_environment_are_an_error_naming_both_until_tfenv_toml_chooses() {
    for (files, says, settled) in [
        (
            &[
                "environments/dev.backend.conf",
                "environments/dev.backend.hcl",
            ][..],
            "environment `dev` has two backend configs: `environments/dev.backend.conf` and `environments/dev.backend.hcl`",
            "backend_config = \"environments/dev.backend.hcl\"",
        ),
        (
            &[
                "backend-dev.tfbackend",
                "terraform.tfvars.dev",
                "dev.tfvars",
            ][..],
            "environment `dev` has two var files: `terraform.tfvars.dev` and `dev.tfvars`",
            "var_files = [\"dev.tfvars\"]",
        ),
        (
            &["environments/dev/main.tf", "envs/dev/main.tf"][..],
            "environment `dev` is defined twice: by `environments/dev` (folder-per-env) and by `envs/dev` (folder-per-env)",
            "root = \"envs/dev\"",
        ),
    ] {
        let project = Project::empty();
        for file in files {
            // A root module with a backend block: an environment's folder.
            let text = if file.ends_with(".tf") {
                LOCAL_ROOT
            } else {
                ""
            };
            project.write(file, text);
        }
        project
            .tfenv()
            .arg("envs")
            .assert()
            .code(1)
            .stderr(predicate::str::contains(format!("error: {says}\n")))
            .stderr(predicate::str::contains("declare `dev` in tfenv.toml"));
        // Declared without the key in question: still the same error, never a pick.
        project.write("tfenv.toml", "[environments.dev]\n");
        project
            .tfenv()
            .arg("envs")
            .assert()
            .code(1)
            .stderr(predicate::str::contains(says));
        // Declared with the key the two compete for: tfenv.toml decides.
        project.write("tfenv.toml", &format!("[environments.dev]\n{settled}\n"));
        let json = envs_json(&project);
        assert_eq!(json["environments"][0]["name"], "dev", "{json}");
    }
}

#[test]
fn no_project_names_its_near_misses_and_prints_a_tfenv_toml_that_works() {
    let project = Project::empty();
    project.write("prod.backend.conf", "path = \"state/prod.tfstate\"\n");
    project.write("prod.tfvars", "x = 1\n");
    project.write("environments/dev.tfvars", "x = 2\n");
    project.write("stacks/qa/main.tf", LOCAL_ROOT);
    project.write("stacks/qa/backend.conf", "path = \"qa.tfstate\"\n");
    project.write("stacks/qa/qa.tfvars", "x = 3\n");
    project.write("stacks/qa/terraform.tfvars", "y = 3\n");
    project.write("modules/vpc/main.tf", "variable \"x\" {}\n");
    let output = project.tfenv().arg("envs").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for says in [
        "error: no tfenv project found in `",
        "these look like environment files but fit no layout:\n",
        "  - `environments/dev.tfvars` is not used: no `environments/dev.backend.conf`",
        "  - `prod.backend.conf` looks like the backend config of `prod` but fits no layout: tfenv looks for `environments/prod.backend.conf`, `environments/prod.backend.hcl`, `environments/prod.tfbackend` or `backend-prod.tfbackend`",
        "  - `prod.tfvars` is not used: no `backend-prod.tfbackend` beside it",
        "  - `stacks/qa/` looks like an environment's root module, outside `environments/`, `envs/`, `env/`",
        "  save this as `",
        "[environments.prod]\ntier = \"production\"\nbackend_config = \"prod.backend.conf\"\nvar_files = [\"prod.tfvars\"]\n",
        "[environments.qa]\ntier = \"development\"\nroot = \"stacks/qa\"\nbackend_config = \"stacks/qa/backend.conf\"\nvar_files = [\"stacks/qa/qa.tfvars\"]",
    ] {
        assert!(stderr.contains(says), "{says}\n---\n{stderr}");
    }
    assert!(!stderr.contains("modules/vpc"), "{stderr}");

    // The hint of the JSON error holds the same tfenv.toml: saved as is, tfenv takes it.
    let output = project
        .tfenv()
        .args(["envs", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let hint = stdout_json(&output)["error"]["hint"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, toml) = hint.split_once("\n\n").unwrap();
    assert!(stderr.contains(toml), "the same text in both outputs");
    project.write("tfenv.toml", toml);
    let json = envs_json(&project);
    let summary: Vec<Value> = json["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            json!([
                e["name"],
                e["tier"],
                e["root"],
                e["backend"]["location"],
                e["var_files"],
                e["auto_var_files"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        [
            json!([
                "dev",
                "development",
                "",
                "terraform.tfstate",
                ["environments/dev.tfvars"],
                []
            ]),
            json!([
                "prod",
                "production",
                "",
                "state/prod.tfstate",
                ["prod.tfvars"],
                []
            ]),
            json!([
                "qa",
                "development",
                "stacks/qa",
                "stacks/qa/qa.tfstate",
                ["stacks/qa/qa.tfvars"],
                ["stacks/qa/terraform.tfvars"]
            ]),
        ]
    );
}

#[test]
fn without_near_misses_no_project_says_which_layouts_tfenv_looks_for() {
    let project = Project::empty();
    project.write("notes.txt", "");
    project
        .tfenv()
        .arg("envs")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no tfenv project found"))
        .stderr(predicate::str::contains(
            "environments/<env>.backend.conf (.backend.hcl, .tfbackend), backend-<env>.tfbackend, or a folder per environment under environments/, envs/ or env/",
        ));
}

/// The notes of `envs --output json`, as (code, file).
fn notes(json: &Value) -> Vec<(String, String)> {
    json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["code"].as_str().unwrap().to_string(),
                n["file"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn names(json: &Value) -> Vec<&str> {
    json["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

#[test]
fn a_symlinked_env_folder_is_a_note_never_a_second_environment_on_the_same_state() {
    let project = Project::empty();
    project.write("envs/dev/main.tf", LOCAL_ROOT);
    project.write("envs/dev/dev.tfvars", "x = 1\n");
    std::os::unix::fs::symlink("dev", project.join("envs/prod")).unwrap();
    let json = envs_json(&project);
    assert_eq!(names(&json), ["dev"], "{json:#}");
    assert_eq!(
        notes(&json),
        [("symlinked-folder".to_string(), "envs/prod".to_string())]
    );
    project
        .tfenv()
        .arg("envs")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "note: `envs/prod/` is a symlink to `envs/dev/`, not an environment",
        ));
    project
        .tfenv()
        .args(["plan", "prod"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "environment `prod` is not defined (known: dev)",
        ));
}

#[test]
fn two_environments_on_one_state_are_a_problem_in_envs_and_refused_by_init_and_plan() {
    let project = Project::empty();
    project.write("main.tf", LOCAL_ROOT);
    project.write("shared.conf", "path = \"one.tfstate\"\n");
    project.write(
        "tfenv.toml",
        "[environments.dev]\nbackend_config = \"shared.conf\"\n[environments.prod]\nbackend_config = \"shared.conf\"\n[environments.qa]\nbackend_config = \"shared.conf\"\nworkspace = \"qa\"\n",
    );
    let output = project
        .tfenv()
        .args(["envs", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let json = stdout_json(&output);
    let problems: Vec<&Value> = json["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["problem"])
        .collect();
    assert_eq!(
        problems,
        [
            &json!(
                "environment `dev` shares its state with `prod`: give each environment its own backend config (key or path) or workspace"
            ),
            &json!(
                "environment `prod` shares its state with `dev`: give each environment its own backend config (key or path) or workspace"
            ),
            &Value::Null,
        ]
    );
    // The location is still shown: it is what the two share.
    assert_eq!(
        json["environments"][1]["backend"]["location"],
        "one.tfstate"
    );

    let tf = crate::support::fake::FakeTerraform::working().install(&project);
    for command in [
        &["init", "prod"][..],
        &["plan", "prod"],
        &["deploy", "prod", "--yes"],
    ] {
        let output = project.run_with(&tf, command);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(
                "error: environment `prod` shares its state (`one.tfstate`) with `dev`: a run of one would overwrite the other's state"
            ),
            "{command:?}: {stderr}"
        );
        assert!(stderr.contains("distinct workspaces"), "{stderr}");
    }
    assert!(
        !project.read_or_empty("calls.log").contains("init"),
        "terraform never ran for prod"
    );
    // Its own workspace: its own state, used as usual.
    let output = project.run_with(&tf, &["plan", "qa"]);
    assert!(output.status.success(), "{output:?}");
}

/// Runs `tfenv` in `project` as an unprivileged user (root reads any folder).
fn tfenv_as_nobody(project: &Project, args: &[&str]) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    // The user must reach the project: the temporary folders are the owner's only.
    for dir in project.path().ancestors() {
        if dir.starts_with(std::env::temp_dir()) && dir != std::env::temp_dir() {
            let mode = std::fs::metadata(dir).unwrap().permissions().mode();
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o755)).unwrap();
        }
    }
    let mut command = if nix::unistd::geteuid().is_root() {
        project.command_via(&[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
    } else {
        project.command()
    };
    command
        .args(args)
        .output()
        .expect("setpriv (util-linux) runs")
}

#[test]
fn an_unreadable_env_folder_or_envs_folder_is_named_with_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let project = Project::empty();
    project.write("envs/dev/main.tf", LOCAL_ROOT);
    project.write("envs/prod/main.tf", LOCAL_ROOT);
    let private = std::fs::Permissions::from_mode(0o700);
    std::fs::set_permissions(project.join("envs/prod"), private.clone()).unwrap();
    let output = tfenv_as_nobody(&project, &["envs"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("dev "),
        "the readable one is listed: {stdout}"
    );
    assert!(
        stderr.contains("environment `prod`: cannot read `envs/prod/`: permission denied"),
        "{stderr}"
    );
    assert!(!stderr.contains("no .tf files"), "{stderr}");

    std::fs::set_permissions(project.join("envs"), private).unwrap();
    let output = tfenv_as_nobody(&project, &["envs"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: cannot read `envs/`: permission denied"),
        "{stderr}"
    );
    assert!(!stderr.contains("no tfenv project found"), "{stderr}");
}

#[test]
fn badly_named_files_and_folders_are_each_a_note_and_the_valid_environments_still_work() {
    let project = Project::empty();
    project.write("main.tf", LOCAL_ROOT);
    project.write("environments/dev.backend.hcl", "path = \"d\"\n");
    project.write("environments/dev.tfvars", "x = 1\n");
    project.write("environments/Prod.backend.hcl", "path = \"p\"\n");
    project.write("environments/a.b.backend.hcl", "path = \"p\"\n");
    project.write("environments/prüf.backend.hcl", "path = \"p\"\n");
    let long = "a".repeat(64);
    project.write(
        &format!("environments/{long}.backend.hcl"),
        "path = \"p\"\n",
    );
    project.write("environments/.hidden.backend.hcl", "path = \"h\"\n");
    project.write("environments/..backend.hcl", "path = \"h\"\n");
    project.write("envs/my env/main.tf", LOCAL_ROOT);
    project.write("envs/_shared/main.tf", LOCAL_ROOT);
    let json = envs_json(&project);
    assert_eq!(names(&json), ["dev"], "{json:#}");
    let mut got = notes(&json);
    got.sort();
    let want = [
        ("hidden-file", "environments/..backend.hcl"),
        ("hidden-file", "environments/.hidden.backend.hcl"),
        ("invalid-name", "environments/Prod.backend.hcl"),
        ("invalid-name", "environments/a.b.backend.hcl"),
        ("invalid-name", &format!("environments/{long}.backend.hcl")),
        ("invalid-name", "environments/prüf.backend.hcl"),
        ("invalid-name", "envs/_shared"),
        ("invalid-name", "envs/my env"),
    ]
    .map(|(c, f)| (c.to_string(), f.to_string()));
    assert_eq!(got, want);
    let output = project.tfenv().arg("envs").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for says in [
        "note: `environments/prüf.backend.hcl` is not used: `prüf` is not a valid environment name",
        "rename the file, or declare the environment in tfenv.toml",
        "note: `envs/my env/` is not used: `my env` is not a valid environment name",
        "rename the folder, or declare the environment in tfenv.toml",
        &format!("`{long}` is longer than 63 characters"),
        "note: `environments/.hidden.backend.hcl` is a hidden file: tfenv ignores files whose name starts with `.`",
    ] {
        assert!(stdout.contains(says), "{says}\n---\n{stdout}");
    }
    assert!(!stdout.contains("\\u{"), "{stdout}");
    let tf = crate::support::fake::FakeTerraform::working().install(&project);
    let output = project.run_with(&tf, &["plan", "dev"]);
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn tfvars_json_files_are_var_files_of_the_file_layouts() {
    let project = Project::empty();
    project.write("main.tf", LOCAL_ROOT);
    project.write("environments/dev.backend.hcl", "path = \"d\"\n");
    project.write("environments/dev.tfvars.json", "{\"x\": 1}\n");
    let json = envs_json(&project);
    assert_eq!(
        json["environments"][0]["var_files"],
        json!(["environments/dev.tfvars.json"])
    );
    assert_eq!(json["notes"], json!([]), "{json:#}");

    let root = Project::empty();
    root.write("main.tf", LOCAL_ROOT);
    root.write("backend-prod.tfbackend", "path = \"p\"\n");
    root.write("prod.tfvars.json", "{\"x\": 1}\n");
    let json = envs_json(&root);
    assert_eq!(
        json["environments"][0]["var_files"],
        json!(["prod.tfvars.json"])
    );
    assert_eq!(json["notes"], json!([]), "{json:#}");
}

#[test]
fn backend_looking_var_files_are_notes_never_passed_with_var_file() {
    let project = Project::empty();
    project.write(
        "envs/stage/main.tf",
        "terraform {\n  backend \"s3\" {}\n}\n",
    );
    project.write("envs/stage/backend.tfvars", "bucket = \"b\"\n");
    project.write("envs/stage/stage.tfvars", "x = 1\n");
    project.write("environments/qa.backend.tfvars", "path = \"q\"\n");
    project.write("backend-dev.tfvars", "path = \"d\"\n");
    let json = envs_json(&project);
    assert_eq!(names(&json), ["stage"], "{json:#}");
    assert_eq!(
        json["environments"][0]["var_files"],
        json!(["envs/stage/stage.tfvars"])
    );
    let messages: Vec<&str> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            assert_eq!(n["code"], "backend-as-var-file", "{n}");
            n["message"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        messages,
        [
            "`backend-dev.tfvars` looks like the backend config of `dev`; rename it to `backend-dev.tfbackend` (a `.tfvars` file is a var file to terraform, so it is not used)",
            "`environments/qa.backend.tfvars` looks like the backend config of `qa`; rename it to `environments/qa.tfbackend` (a `.tfvars` file is a var file to terraform, so it is not used)",
            "`envs/stage/backend.tfvars` looks like the backend config of `stage`; rename it to `envs/stage/backend.tfbackend` (a `.tfvars` file is a var file to terraform, so it is not used)",
        ]
    );
    let tf = crate::support::fake::FakeTerraform::working().install(&project);
    let output = project.run_with(&tf, &["plan", "stage"]);
    assert!(output.status.success(), "{output:?}");
    let calls = project.read("calls.log");
    assert!(!calls.contains("backend.tfvars"), "{calls}");
}

#[test]
fn an_env_folder_without_a_backend_is_said_and_shared_code_is_not_an_environment() {
    let project = Project::empty();
    project.write("envs/dev/main.tf", "variable \"x\" {}\n");
    project.write("envs/dev/dev.tfvars", "x = 1\n");
    project.write("envs/shared/outputs.tf", "output \"x\" { value = 1 }\n");
    let json = envs_json(&project);
    assert_eq!(names(&json), ["dev"], "{json:#}");
    assert_eq!(
        json["environments"][0]["backend"]["location"],
        "envs/dev/terraform.tfstate"
    );
    assert_eq!(
        notes(&json),
        [
            ("state-in-folder".to_string(), "envs/dev".to_string()),
            ("not-an-environment".to_string(), "envs/shared".to_string()),
        ]
    );
    let stdout = project.tfenv().arg("envs").output().unwrap().stdout;
    let stdout = String::from_utf8_lossy(&stdout);
    assert!(
        stdout.contains("note: `envs/dev/` has no backend block: `dev` keeps terraform's default local state `envs/dev/terraform.tfstate` inside the repository"),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: `envs/shared/` is not an environment: no backend and no var files"),
        "{stdout}"
    );
}

#[test]
fn the_layout_of_a_declared_environment_is_one_docs_json_lists() {
    let project = Project::empty();
    project.write("main.tf", LOCAL_ROOT);
    project.write("tfenv.toml", "[environments.dev]\n");
    let json = envs_json(&project);
    let layout = json["environments"][0]["layout"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(layout, "config");
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md")).unwrap();
    let line = docs
        .lines()
        .find(|l| l.trim_start().starts_with("\"layout\":"))
        .unwrap();
    let listed = line.split("//").nth(1).unwrap();
    assert!(
        listed
            .split('|')
            .any(|v| v.split_whitespace().next() == Some(&layout)),
        "{line}"
    );
}
