//! `tfenv status` problems that need no terraform: git-ignore, shared state, init.

use std::time::Duration;

use nix::unistd::Pid;
use predicates::prelude::*;

use crate::support::fake::FakeTerraform;
use crate::support::{Project, procs, stdout_json, wait_until};

#[test]
fn state_and_terraform_dirs_must_be_git_ignored() {
    let project = Project::demo();
    project.git(&["init", "-q"]);
    let output = project
        .tfenv()
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6));
    let json = stdout_json(&output);
    let messages: Vec<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with("`state/` is not ignored by git"),
        "{messages:?}"
    );
    assert!(
        messages[1].starts_with("`examples/quickstart/.terraform/` is not ignored by git"),
        "{messages:?}"
    );

    project.write(".gitignore", "/state/*\n!/state/README.md\n.terraform/\n");
    let output = project
        .tfenv()
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    let json = stdout_json(&output);
    assert_eq!(json["problems"], serde_json::json!([]));
}

/// A local backend state outside `state/` (here production's `path`, and the workspace
/// folder of an environment in a workspace) holds state and secrets like `state/` does.
#[test]
fn local_state_files_outside_the_state_dir_must_be_git_ignored() {
    let project = Project::demo();
    project.git(&["init", "-q"]);
    project.write(
        "environments/production.backend.conf",
        "path = \"../../tfstate/prod.tfstate\"\n",
    );
    project.write(
        "environments/staging.backend.conf",
        "workspace_dir = \"../../workspaces\"\n",
    );
    let config = project.read("tfenv.toml").replace(
        "[environments.staging]\n",
        "[environments.staging]\nworkspace = \"qa\"\n",
    );
    project.write("tfenv.toml", &config);
    project.write(".gitignore", "/state/\n.terraform/\n");
    let output = project
        .tfenv()
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6));
    let json = stdout_json(&output);
    let messages: Vec<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "`workspaces/` is not ignored by git: it holds state and secrets; add `/workspaces/` to .gitignore",
            "`tfstate/prod.tfstate` is not ignored by git: it holds state and secrets; add `/tfstate/*prod.tfstate*` to .gitignore",
        ],
        "{json}"
    );
    // Its backup or lock info left out is still a problem.
    project.write(
        ".gitignore",
        "/state/\n.terraform/\n/workspaces/\n/tfstate/prod.tfstate\n",
    );
    let json = stdout_json(
        &project
            .tfenv()
            .args(["status", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(json["problems"].as_array().unwrap().len(), 1, "{json}");
    project.write(
        ".gitignore",
        "/state/\n.terraform/\n/workspaces/\n/tfstate/*prod.tfstate*\n",
    );
    let json = stdout_json(
        &project
            .tfenv()
            .args(["status", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(json["problems"], serde_json::json!([]), "{json}");
}

/// Without a backend config the local backend writes `terraform.tfstate` beside the root
/// module; the non-interactive init says to ignore it too.
#[test]
fn a_non_interactive_init_names_the_implicit_terraform_tfstate() {
    let project = Project::empty();
    project.git(&["init", "-q"]);
    project.write("main.tf", "terraform {\n  backend \"local\" {}\n}\n");
    project.write("environments/dev.tfvars", "");
    project.write("environments/dev.backend.conf", "");
    let tf = FakeTerraform::working().install(&project);
    project
        .tfenv_with(&tf)
        .args(["init", "dev", "--non-interactive"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: git does not ignore `state/`, `.terraform/` and `terraform.tfstate`",
        ))
        .stderr(predicate::str::contains(
            "  /state/\n  .terraform/\n  /*terraform.tfstate*",
        ));
}

/// The project-level problems of `status` and their messages.
fn project_problems(json: &serde_json::Value) -> Vec<(String, String)> {
    json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_string(),
                p["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Nothing could deploy without terraform: a local-only project whose terraform is not
/// on PATH is unhealthy, with the fix, in JSON and for people.
#[test]
fn status_without_terraform_on_path_is_a_problem_with_the_fix() {
    let project = Project::demo();
    std::fs::create_dir_all(project.join("empty-bin")).unwrap();
    let output = project
        .tfenv()
        .env("PATH", project.join("empty-bin"))
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{output:?}");
    let json = stdout_json(&output);
    assert_eq!(json["healthy"], false, "{json}");
    let problems = project_problems(&json);
    assert_eq!(problems.len(), 1, "{json}");
    assert_eq!(problems[0].0, "terraform-missing");
    assert!(
        problems[0]
            .1
            .contains("`terraform` was not found on PATH: install Terraform"),
        "{json}"
    );
    project
        .tfenv()
        .env("PATH", project.join("empty-bin"))
        .arg("status")
        .assert()
        .code(6)
        .stdout(predicate::str::contains(
            "  project: `terraform` was not found on PATH: install Terraform",
        ));
}

#[test]
fn status_with_a_terraform_below_required_version_is_a_problem_with_the_fix() {
    let project = Project::demo();
    let tf = FakeTerraform::empty().version("0.14.11").install(&project);
    let output = project
        .tfenv_with(&tf)
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{output:?}");
    let problems = project_problems(&stdout_json(&output));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "terraform-version");
    assert!(
        problems[0].1.contains(
            "does not satisfy required_version `>= 1.0` from tfenv.toml: install a matching version"
        ),
        "{problems:?}"
    );
}

#[test]
fn uninitialized_environments_are_problems_with_the_fix() {
    let project = Project::demo();
    project
        .tfenv()
        .arg("status")
        .assert()
        .code(6)
        .stdout(predicate::str::contains(
            "dev: not initialized: run `tfenv init dev`",
        ))
        .stdout(predicate::str::contains(
            "production: not initialized: run `tfenv init production`",
        ));
}

#[test]
fn two_environments_sharing_one_state_are_flagged() {
    let project = Project::empty();
    project.write("main.tf", "terraform {\n  backend \"local\" {}\n}\n");
    project.write(
        "environments/dev.backend.conf",
        "path = \"shared.tfstate\"\n",
    );
    project.write(
        "environments/qa.backend.conf",
        "path = \"./shared.tfstate\"\n",
    );
    let output = project
        .tfenv()
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    let json = stdout_json(&output);
    for (i, other) in [(0, "qa"), (1, "dev")] {
        let codes: Vec<&str> = json["environments"][i]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&"shared-state"), "{json}");
        assert!(
            json["environments"][i]
                .to_string()
                .contains(&format!("shares its state with `{other}`"))
        );
    }
}

#[test]
fn status_of_an_unknown_environment_is_a_usage_error() {
    Project::demo()
        .tfenv()
        .args(["status", "dev", "stagin"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `staging`?"));
}

#[test]
fn a_non_interactive_init_says_which_lines_to_add_and_writes_nothing() {
    let project = Project::demo();
    project.git(&["init", "-q"]);
    let tf = FakeTerraform::working().install(&project);
    project
        .tfenv_with(&tf)
        .args(["init", "dev", "--non-interactive"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: git does not ignore `state/` and `examples/quickstart/.terraform/`",
        ))
        .stderr(predicate::str::contains("  /state/\n  .terraform/"));
    assert!(!project.join(".gitignore").exists());
}

/// The pids a hanging fake wrote to `pids`, once each of them has written.
fn pids_written(project: &Project) -> Vec<i32> {
    std::fs::read_to_string(project.join("pids"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Fails unless every pid is gone within a few seconds.
fn assert_all_gone(pids: &[i32]) {
    wait_until(
        &format!("the processes {pids:?} are gone"),
        Duration::from_secs(5),
        || !pids.iter().any(|&pid| procs::is_live(Pid::from_raw(pid))),
    );
}

/// A fake CLI body that hangs forever: it starts a grandchild (in its process group) and
/// waits for it, after writing both pids to `pids`.
fn hang(project: &Project) -> String {
    format!(
        "sleep 1000 & echo \"$$ $!\" >> '{}'; wait",
        project.join("pids").display()
    )
}

/// A gcs project whose lock is read by a fake `gcloud`, and whose state is read through
/// a fake terraform's `state pull` (dev is initialized); each hangs when told.
fn cli_backend_project(cli_hangs: bool, state_pull_hangs: bool) -> (Project, std::path::PathBuf) {
    let project = Project::empty();
    project.write("main.tf", "terraform {\n  backend \"gcs\" {}\n}\n");
    project.write(
        "environments/dev.backend.conf",
        "bucket = \"b\"\nprefix = \"dev\"\n",
    );
    let hang = hang(&project);
    project.script(
        "bin/gcloud",
        if cli_hangs {
            &hang
        } else {
            "echo 'ERROR: NotFound' >&2; exit 1"
        },
    );
    let state_pull = if state_pull_hangs {
        hang.as_str()
    } else {
        "exit 0"
    };
    let tf = FakeTerraform::empty()
        .on("init", r#"mkdir -p "$TF_DATA_DIR""#)
        .on("state", state_pull)
        .install(&project);
    project
        .tfenv_with(&tf)
        .env("PATH", project.fake_path())
        .args(["init", "dev"])
        .assert()
        .success();
    (project, tf)
}

#[test]
fn status_gives_up_on_a_hanging_backend_after_timeout_and_leaves_no_process() {
    let (project, tf) = cli_backend_project(true, true);
    let started = std::time::Instant::now();
    let output = project
        .tfenv_with(&tf)
        .env("PATH", project.fake_path())
        .args(["status", "--timeout", "1s", "--output", "json"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(6), "{output:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let json = stdout_json(&output);
    let problems = json["environments"][0]["problems"].as_array().unwrap();
    let unreachable: Vec<&str> = problems
        .iter()
        .filter(|p| p["code"] == "unreachable")
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        unreachable.len(),
        1,
        "one problem, though the lock and the state both hung: {json}"
    );
    assert!(
        unreachable[0].contains(
            "reading the state lock of `dev` (gcs backend, `gs://b/dev/default.tfstate`)"
        ) && unreachable[0].contains("did not answer within 1s"),
        "{json}"
    );
    // The state is not asked for once the lock read of the same backend did not answer:
    // that would only double the wait.
    let pids = pids_written(&project);
    assert_eq!(
        pids.len(),
        2,
        "gcloud with a grandchild, and no `terraform state pull` after it: {pids:?}"
    );
    assert_all_gone(&pids);
}

/// An s3 endpoint that accepts connections and never answers: a stuck proxy.
fn silent_endpoint() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// Accepts (and holds) every connection to `listener`, in the background.
fn hold_connections(listener: std::net::TcpListener) {
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
}

#[test]
fn status_gives_up_on_an_s3_endpoint_that_never_answers_with_one_problem() {
    let project = Project::empty();
    let (listener, url) = silent_endpoint();
    hold_connections(listener);
    project.write("main.tf", "terraform {\n  backend \"s3\" {}\n}\n");
    project.write(
        "environments/dev.backend.conf",
        &format!(
            "bucket = \"b\"\nkey = \"dev/terraform.tfstate\"\nregion = \"us-east-1\"\n\
             use_lockfile = true\nendpoints = {{ s3 = \"{url}\" }}\nuse_path_style = true\n\
             access_key = \"test\"\nsecret_key = \"test\"\n"
        ),
    );
    let tf = FakeTerraform::working().install(&project);
    let started = std::time::Instant::now();
    let output = project
        .tfenv_with(&tf)
        .env("PATH", project.fake_path())
        .args(["status", "--timeout", "3s", "--output", "json"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(6), "{output:?}");
    // One --timeout for the lock read; the state of a backend that did not answer is not
    // asked for again (that took 2 × --timeout).
    assert!(took < Duration::from_millis(5500), "took {took:?}");
    let json = stdout_json(&output);
    let env = &json["environments"][0];
    let unreachable: Vec<&str> = env["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["code"] == "unreachable")
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        unreachable.len(),
        1,
        "one problem, though the lock and the state both hung: {json}"
    );
    assert!(
        unreachable[0].contains("(s3 backend, `s3://b/dev/terraform.tfstate`)")
            && unreachable[0].contains("did not answer within 3s"),
        "{json}"
    );
    assert_eq!(env["state"], serde_json::Value::Null, "{json}");
    // Not initialized, and still read: the state read needs no terraform.
    assert_eq!(env["init"], "never", "{json}");
}

#[test]
fn a_timeout_must_be_a_positive_duration() {
    let project = Project::demo();
    for bad in ["0s", "soon"] {
        project
            .tfenv()
            .args(["status", "--timeout", bad])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--timeout"));
    }
}

#[test]
fn lock_gives_up_on_a_hanging_cli_after_timeout_naming_the_backend() {
    let (project, _) = cli_backend_project(true, false);
    let output = project
        .tfenv()
        .env("PATH", project.fake_path())
        .args(["lock", "dev", "--timeout", "1s"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("reading the state lock of `dev` (gcs backend, `gs://b/dev/default.tfstate`) did not answer within 1s"),
        "{stderr}"
    );
    assert!(stderr.contains("--timeout"), "{stderr}");

    let output = project
        .tfenv()
        .env("PATH", project.fake_path())
        .args(["lock", "dev", "--timeout", "1s", "--output", "json"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let json = stdout_json(&output);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("did not answer within 1s"),
        "{json}"
    );
    assert_all_gone(&pids_written(&project));
}

#[test]
fn a_missing_var_or_backend_file_is_that_environments_config_problem() {
    let project = Project::empty();
    project.write("main.tf", "terraform {\n  backend \"local\" {}\n}\n");
    project.write(
        "tfenv.toml",
        "[environments.dev]\nvar_files = [\"environments/dev.tfvars\"]\n\n\
         [environments.qa]\nbackend_config = \"environments/qa.backend.conf\"\n\n\
         [environments.prod]\nbackend_config = \"environments/prod.backend.conf\"\n",
    );
    project.write(
        "environments/prod.backend.conf",
        "path = \"prod.tfstate\"\n",
    );
    let output = project
        .tfenv()
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{output:?}");
    let json = stdout_json(&output);
    let envs = json["environments"].as_array().unwrap();
    let names: Vec<&str> = envs.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dev", "qa", "prod"], "{json}");
    for (env, file) in [
        (&envs[0], "environments/dev.tfvars"),
        (&envs[1], "environments/qa.backend.conf"),
    ] {
        let config: Vec<&str> = env["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["code"] == "config")
            .map(|p| p["message"].as_str().unwrap())
            .collect();
        assert_eq!(config.len(), 1, "{json}");
        assert!(
            config[0].contains(&format!("`{file}`")) && config[0].contains("does not exist"),
            "{json}"
        );
    }
    // The healthy environment is still reported in full.
    assert_eq!(envs[2]["backend"]["location"], "prod.tfstate", "{json}");
    assert!(
        envs[2]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["code"] != "config"),
        "{json}"
    );

    // Human output lists it too; commands on dev still fail, other environments work.
    project
        .tfenv()
        .arg("status")
        .assert()
        .code(6)
        .stdout(predicate::str::contains(
            "dev: environment `dev`: `environments/dev.tfvars` (named in `tfenv.toml`) does not exist",
        ));
    project
        .tfenv()
        .args(["lock", "dev"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("`environments/dev.tfvars`"))
        .stderr(predicate::str::contains("create the file or fix the path"));
    project.tfenv().args(["lock", "prod"]).assert().success();
}

#[test]
fn status_and_lock_help_teach_the_timeout() {
    for command in ["status", "lock"] {
        Project::empty()
            .tfenv()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("--timeout <DURATION>"))
            .stdout(predicate::str::contains("[default: 30s]"))
            .stdout(predicate::str::contains(format!(
                "tfenv {command} {}--timeout 10s",
                if command == "lock" { "production " } else { "" }
            )));
    }
}

#[test]
fn a_terraform_that_does_not_answer_version_leaves_its_states_unreachable() {
    let (project, tf) = cli_backend_project(false, false);
    // From now on terraform hangs on everything, `version` included.
    FakeTerraform::empty()
        .on("version", hang(&project))
        .fallback(hang(&project))
        .install(&project);
    let output = project
        .tfenv_with(&tf)
        .env("PATH", project.fake_path())
        .args(["status", "--timeout", "1s", "--output", "json"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{output:?}");
    let json = stdout_json(&output);
    let env = &json["environments"][0];
    let problems = env["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["code"] == "unreachable"
            && p["message"]
                .as_str()
                .unwrap()
                .contains("(`terraform version`) did not answer within 1s")),
        "{json}"
    );
    assert_eq!(
        env["lock"]["held"], false,
        "the lock was still read: {json}"
    );
    assert_all_gone(&pids_written(&project));
}

#[test]
fn a_lock_table_that_never_answers_names_a_few_environments_not_all_in_each_problem() {
    // Fifty environments lock in one table: one batch read, one timeout. Each one's
    // problem names the batch; naming all fifty in each made the output grow with n².
    let project = Project::empty();
    let (listener, url) = silent_endpoint();
    hold_connections(listener);
    project.write("main.tf", "terraform {\n  backend \"s3\" {}\n}\n");
    let mut toml = String::new();
    for i in 1..=50 {
        let env = format!("e{i:02}");
        toml.push_str(&format!(
            "[environments.{env}]\nbackend_config = \"environments/{env}.backend.conf\"\n"
        ));
        project.write(
            &format!("environments/{env}.backend.conf"),
            &format!(
                "bucket = \"b\"\nkey = \"{env}/terraform.tfstate\"\nregion = \"us-east-1\"\n\
                 dynamodb_table = \"locks\"\nendpoints = {{ s3 = \"{url}\", dynamodb = \"{url}\" }}\n\
                 use_path_style = true\naccess_key = \"test\"\nsecret_key = \"test\"\n"
            ),
        );
    }
    project.write("tfenv.toml", &toml);
    let tf = FakeTerraform::working().install(&project);
    let output = project
        .tfenv_with(&tf)
        .env("PATH", project.fake_path())
        .args(["status", "--timeout", "2s", "--output", "json"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{output:?}");
    let json = stdout_json(&output);
    let message = json["environments"][49]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "unreachable")
        .and_then(|p| p["message"].as_str())
        .unwrap_or_else(|| panic!("{json}"))
        .to_string();
    assert!(
        message.contains("`e01`, `e02`, `e03` and 47 more")
            && message.contains("DynamoDB table `locks`"),
        "{message}"
    );
    assert!(!message.contains("`e50`"), "{message}");
}
