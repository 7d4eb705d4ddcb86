//! `tfenv envs` and the errors of project discovery, as a user sees them.

use predicates::prelude::*;

use crate::support::fake::FakeTerraform;
use crate::support::snap::Snapshots;
use crate::support::{Project, stdout_json};

#[test]
fn envs_lists_the_demo_environments_in_file_order() {
    let project = Project::demo();
    let output = project
        .tfenv()
        .arg("envs")
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8(output.stdout).unwrap();
    let (header, table) = text.split_once("\n\n").expect("a header, then the table");
    assert_eq!(
        header,
        format!(
            "Project `{}` (config `tfenv.toml`)",
            project.path().display()
        )
    );
    assert!(table.starts_with("ENV "), "{text}");
    Snapshots::new(&project).text("envs", &["envs"], &text);
}

#[test]
fn envs_json_is_one_document_with_backend_and_files() {
    let project = Project::demo();
    let output = project
        .tfenv()
        .args(["envs", "--output", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let json = stdout_json(&output);
    let prod = &json["environments"][2];
    assert_eq!(prod["name"], "production");
    assert_eq!(prod["tier"], "production");
    assert_eq!(prod["aliases"][0], "prod");
    assert_eq!(prod["backend"]["type"], "local");
    assert_eq!(
        prod["backend"]["location"],
        "state/production/terraform.tfstate"
    );
    assert_eq!(
        prod["backend"]["config"],
        "environments/production.backend.conf"
    );
    assert_eq!(json["project"]["config"], "tfenv.toml");
    assert_eq!(json["project"]["source"], "config-file");
    assert_eq!(
        json["project"]["root"],
        project.path().display().to_string()
    );
}

#[test]
fn envs_says_which_project_is_used_when_a_nearer_layout_shadows_a_tfenv_toml() {
    let project = Project::demo();
    // A team folder with its own layout, below the demo's tfenv.toml.
    project.write("team/backend-prod.tfbackend", "path = \"prod.tfstate\"\n");
    let team = project.join("team");
    project
        .tfenv()
        .current_dir(&team)
        .arg("envs")
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!(
            "Project `{}` (discovered layout, no tfenv.toml)\n",
            team.display()
        )))
        .stdout(predicate::str::contains("suffix-files"))
        .stdout(predicate::str::contains("staging").not())
        // Said on stderr too: the tfenv.toml above may declare tiers this layout lacks.
        .stderr(predicate::str::contains(format!(
            "not `{}` further up (the nearest project wins)",
            project.join("tfenv.toml").display()
        )));
    let output = project
        .tfenv()
        .current_dir(&team)
        .args(["envs", "--output", "json"])
        .output()
        .unwrap();
    let json = stdout_json(&output);
    assert_eq!(json["project"]["root"], team.display().to_string());
    assert_eq!(json["project"]["config"], serde_json::Value::Null);
    assert_eq!(json["project"]["source"], "discovered-layout");
}

#[test]
fn a_dangling_tfenv_toml_stops_a_production_deploy_instead_of_falling_back() {
    let project = Project::demo();
    std::fs::rename(project.join("tfenv.toml"), project.join("moved.toml")).unwrap();
    std::os::unix::fs::symlink("gone.toml", project.join("tfenv.toml")).unwrap();
    // Discovery alone would find `production` in environments/ as well.
    let tf = FakeTerraform::failing().install(&project);
    project
        .tfenv_with(&tf)
        .args(["deploy", "production", "--yes", "--confirm", "production"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "error: `{}` is a dangling symlink (its target `gone.toml` does not exist)",
            project.join("tfenv.toml").display()
        )))
        .stderr(predicate::str::contains("--config").not());
    assert!(!project.join("calls.log").exists(), "terraform never ran");
    project
        .tfenv()
        .args(["--config", "gone.toml", "envs"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("gone.toml` does not exist"))
        .stderr(predicate::str::contains("--config"));
}

#[test]
fn each_layout_is_discovered_without_tfenv_toml() {
    let project = Project::empty();
    project.write("main.tf", "terraform {\n  backend \"s3\" {}\n}\n");
    project.write(
        "backend-staging.tfbackend",
        "bucket = \"tfstate\"\nkey = \"staging/terraform.tfstate\"\n",
    );
    project.write("terraform.tfvars.staging", "x = 1\n");
    project.write("terraform.tfvars.prod", "x = 2\n");
    let output = project
        .tfenv()
        .args(["envs", "--output", "json"])
        .output()
        .unwrap();
    let json = stdout_json(&output);
    let envs = json["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 2);
    assert_eq!(envs[0]["name"], "prod");
    assert_eq!(envs[0]["tier"], "production");
    assert_eq!(envs[1]["layout"], "suffix-files");
    assert_eq!(
        envs[1]["backend"]["location"],
        "s3://tfstate/staging/terraform.tfstate"
    );

    let folders = Project::empty();
    folders.write(
        "environments/dev/main.tf",
        "terraform {\n  backend \"local\" {}\n}\n",
    );
    folders.write("environments/dev/dev.tfvars", "");
    let output = folders
        .tfenv()
        .current_dir(folders.join("environments/dev"))
        .args(["envs", "--output", "json"])
        .output()
        .unwrap();
    let json = stdout_json(&output);
    assert_eq!(json["environments"][0]["layout"], "folder-per-env");
    assert_eq!(json["environments"][0]["root"], "environments/dev");
}

#[test]
fn unknown_environment_exits_2_and_suggests() {
    let project = Project::demo();
    project
        .tfenv()
        .args(["init", "prodd"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "error: environment `prodd` is not defined; did you mean `prod`? (known: dev, staging, production)",
        ))
        .stderr(predicate::str::contains("run `tfenv envs`"));
}

#[test]
fn invalid_environment_names_never_reach_a_path() {
    let project = Project::demo();
    for name in ["../x", "Prod", ""] {
        project
            .tfenv()
            .args(["init", name])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("not a valid environment name"));
    }
    assert!(!project.join("../x").exists());
}

#[test]
fn hcl_syntax_error_names_file_line_and_column() {
    let project = Project::demo();
    project.write(
        "environments/staging.backend.conf",
        "path = \"x\"\nkey = = 1\n",
    );
    // That environment's problem: the others are listed.
    project
        .tfenv()
        .arg("envs")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("state/dev/terraform.tfstate"))
        .stderr(predicate::str::contains(
            "  staging: syntax error in `environments/staging.backend.conf` at line 2, column",
        ))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn tfenv_toml_errors_name_the_position_and_what_to_change() {
    let project = Project::demo();
    let toml = project
        .read("tfenv.toml")
        .replace("aliases = [\"prod\"]", "tier = \"critical\"");
    project.write("tfenv.toml", &toml);
    project
        .tfenv()
        .arg("envs")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "invalid `tfenv.toml` at line 18, column 8",
        ))
        .stderr(predicate::str::contains("unknown variant `critical`"));
}

#[test]
fn a_missing_var_file_is_named() {
    let project = Project::demo();
    std::fs::remove_file(project.join("environments/staging.tfvars")).unwrap();
    project
        .tfenv()
        .arg("envs")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "environment `staging`: `environments/staging.tfvars` (named in `tfenv.toml`) does not exist",
        ));
}

#[test]
fn envs_init_and_backup_report_a_broken_environment_and_go_on_with_the_others() {
    let project = Project::demo();
    let tf = FakeTerraform::working().install(&project);
    std::fs::remove_file(project.join("environments/staging.tfvars")).unwrap();
    const PROBLEM: &str = "environment `staging`: `environments/staging.tfvars` (named in `tfenv.toml`) does not exist";

    // envs: every row, the broken one says so; exit 1 naming it.
    let output = project.tfenv().arg("envs").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let table = String::from_utf8_lossy(&output.stdout);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no `{name}` row:\n{table}"))
            .to_string()
    };
    assert!(
        row("dev").contains("state/dev/terraform.tfstate"),
        "{table}"
    );
    assert!(row("production").contains("local"), "{table}");
    assert!(
        row("staging").contains("(config problem, below)"),
        "{table}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: cannot use 1 of 3 environments:\n  {PROBLEM}"
        )),
        "{stderr}"
    );
    let output = project
        .tfenv()
        .args(["envs", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let json = stdout_json(&output);
    assert_eq!(json["environments"][1]["problem"], PROBLEM, "{json}");
    assert_eq!(json["environments"][1]["backend"], serde_json::Value::Null);
    assert_eq!(json["environments"][0]["problem"], serde_json::Value::Null);

    // init --all: dev and production are initialized, staging is named at the end.
    let output = project.run_with(&tf, &["init", "--all", "--output", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let json = stdout_json(&output);
    let outcomes: Vec<String> = json["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].to_string())
        .collect();
    assert_eq!(outcomes, [r#""ran""#, "null", r#""ran""#], "{json}");
    assert_eq!(json["environments"][1]["error"], PROBLEM, "{json}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: cannot initialize 1 of 3 environments"),
        "{stderr}"
    );
    let inits = project.read("calls.log");
    assert_eq!(
        inits.lines().filter(|l| l.starts_with("init")).count(),
        2,
        "{inits}"
    );

    // backup --all: the others are backed up.
    let output = project.run_with(&tf, &["backup", "--all"]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("dev: backed up to state/dev/backups/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("production: backed up to state/production/backups/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("staging: not backed up (config problem, below)"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: cannot back up 1 of 3 environments:\n  {PROBLEM}"
        )),
        "{stderr}"
    );
}

#[test]
fn a_discovered_environments_broken_var_file_leaves_the_others_usable() {
    let project = Project::empty();
    project.write("main.tf", "terraform {\n  backend \"local\" {}\n}\n");
    for env in ["dev", "staging"] {
        project.write(
            &format!("environments/{env}.backend.conf"),
            &format!("path = \"state/{env}/terraform.tfstate\"\n"),
        );
    }
    std::os::unix::fs::symlink("gone.tfvars", project.join("environments/staging.tfvars")).unwrap();
    let tf = FakeTerraform::working().install(&project);
    // status: the table, with staging's problem (exit 6), not a failed load.
    let output = project.run_with(&tf, &["status", "--output", "json"]);
    assert_eq!(output.status.code(), Some(6));
    let json = stdout_json(&output);
    let staging = &json["environments"][1];
    assert_eq!(staging["name"], "staging", "{json}");
    assert_eq!(staging["problems"][0]["code"], "config", "{json}");
    assert!(
        staging["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`environments/staging.tfvars` is a dangling symlink"),
        "{json}"
    );
    // dev deploys; staging is refused with its own problem.
    let output = project.run_with(&tf, &["deploy", "dev", "--yes"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    project
        .tfenv_with(&tf)
        .args(["deploy", "staging", "--yes"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is a dangling symlink"));
}

#[test]
fn a_backend_config_that_is_not_a_regular_file_says_what_it_is() {
    let project = Project::demo();
    let conf = project.join("environments/staging.backend.conf");
    std::fs::remove_file(&conf).unwrap();
    std::fs::create_dir(&conf).unwrap();
    project
        .tfenv()
        .arg("envs")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "environment `staging`: `environments/staging.backend.conf` (named in `tfenv.toml`) is a directory, not a regular file",
        ))
        .stderr(predicate::str::contains("does not exist").not());
    std::fs::remove_dir(&conf).unwrap();
    nix::unistd::mkfifo(&conf, nix::sys::stat::Mode::S_IRWXU).unwrap();
    // A FIFO is named, never opened (opening it would block).
    project
        .tfenv()
        .arg("envs")
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "is a FIFO (named pipe), not a regular file",
        ));
    std::fs::remove_file(&conf).unwrap();
    std::os::unix::fs::symlink("staging.backend.conf", &conf).unwrap();
    project
        .tfenv()
        .arg("envs")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`environments/staging.backend.conf` (named in `tfenv.toml`) is a symlink loop",
        ));
}

#[test]
fn two_layouts_defining_one_environment_is_an_error() {
    let project = Project::empty();
    project.write("environments/dev.backend.conf", "");
    // A root module with a backend block: an environment's folder.
    project.write(
        "environments/dev/main.tf",
        "terraform {\n  backend \"local\" {}\n}\n",
    );
    project
        .tfenv()
        .arg("envs")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "environment `dev` is defined twice",
        ))
        .stderr(predicate::str::contains("remove one of them"));
}

#[test]
fn no_project_is_a_clear_error() {
    let project = Project::empty();
    project
        .tfenv()
        .arg("envs")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no tfenv project found"));
}

#[test]
fn errors_in_json_mode_are_one_json_document() {
    let project = Project::demo();
    let output = project
        .tfenv()
        .args(["--output", "json", "init", "nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let json = stdout_json(&output);
    assert_eq!(json["error"]["exit_code"], 2);
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`nope` is not defined")
    );
}

#[test]
fn usage_errors_in_json_mode_are_one_json_document_naming_what_is_wrong() {
    let project = Project::demo();
    let output = project
        .tfenv()
        .args(["--output", "json", "deploy"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let json = stdout_json(&output);
    assert_eq!(json["error"]["exit_code"], 2);
    assert_eq!(
        json["error"]["message"], "the following required arguments were not provided: <ENV>",
        "the message names what is missing: {json}"
    );
    let output = project
        .tfenv()
        .args(["--output", "json", "-C", "/nonexistent", "envs"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stdout_json(&output)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such directory")
    );
}

#[test]
fn envs_shows_each_environments_policy_and_the_ones_without() {
    let project = Project::empty();
    project.write(
        "tfenv.toml",
        "[policy]\ncommand = [\"conftest\", \"test\", \"{plan_json}\"]\n\n[environments.dev]\npolicy = false\nworkspace = \"dev\"\n\n[environments.staging]\nworkspace = \"staging\"\n\n[environments.production]\nworkspace = \"production\"\npolicy = [\"./policy/prod.sh\", \"{plan_json}\"]\n",
    );
    project.write("main.tf", "");
    let output = project
        .tfenv()
        .args(["envs", "--output", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let json = stdout_json(&output);
    let envs = &json["environments"];
    assert_eq!(envs[0]["policy"], serde_json::Value::Null);
    assert_eq!(
        envs[1]["policy"],
        serde_json::json!(["conftest", "test", "{plan_json}"])
    );
    assert_eq!(
        envs[2]["policy"],
        serde_json::json!(["./policy/prod.sh", "{plan_json}"])
    );
    project
        .tfenv()
        .arg("envs")
        .assert()
        .success()
        .stdout(predicate::str::contains("POLICY"))
        .stdout(predicate::str::contains("conftest test {plan_json}"))
        .stdout(predicate::str::contains("./policy/prod.sh {plan_json}"));
}
