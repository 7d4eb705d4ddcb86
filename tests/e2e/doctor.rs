//! `tfenv doctor` on the demo project with the real terraform, as a user runs it: this
//! tfenv and terraform on PATH, a git repository that ignores what it must. All ✓; then
//! an environment removed from tfenv.toml leaves a data dir, which doctor warns about
//! (exit 0) and `--fix --yes` removes.

use std::path::Path;
use std::process::Output;

use crate::support::snap::Snapshots;
use crate::support::{self, Project, expecting, stdout, stdout_json};

/// PATH as on a user's machine: this tfenv, the real terraform, the system's tools.
fn user_path() -> String {
    let tfenv = assert_cmd::cargo::cargo_bin("tfenv");
    let terraform = support::terraform();
    format!(
        "{}:{}:/usr/bin:/bin",
        tfenv.parent().unwrap().display(),
        terraform.parent().unwrap().display()
    )
}

/// `tfenv <args>` with `user_path()` and no `--terraform`: found on PATH, as doctor checks.
fn tfenv(project: &Project, args: &[&str], code: i32) -> Output {
    expecting(
        project
            .tfenv()
            .env("PATH", user_path())
            .args(args)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap(),
        code,
    )
}

#[test]
fn doctor_on_the_demo_with_real_terraform_is_all_ok_then_warns_of_a_removed_environment() {
    let project = Project::demo();
    project.write(".gitignore", "/state/\n.terraform/\n");
    project.git(&["init", "-q"]);
    project.git(&["add", "-A"]);
    project.git(&["commit", "-q", "-m", "demo"]);

    let human = tfenv(&project, &["doctor"], 0);
    let text = stdout(&human);
    for line in text.lines().filter(|l| !l.starts_with("    ")) {
        assert!(line.starts_with("✓ "), "every check passes:\n{text}");
    }
    assert!(text.contains("✓ `tfenv` on PATH is this one"), "{text}");

    tfenv(&project, &["init", "dev"], 0);
    tfenv(&project, &["init", "staging"], 0);
    // staging goes away from tfenv.toml; its data dir stays behind.
    let toml = project.read("tfenv.toml");
    let start = toml.find("[environments.staging]").unwrap();
    let end = start + toml[start..].find("\n\n").unwrap() + 2;
    project.write("tfenv.toml", &format!("{}{}", &toml[..start], &toml[end..]));

    let mut snapshots = Snapshots::new(&project);
    snapshots.real_terraform(&support::terraform());
    snapshots.literal(&support::terraform().display().to_string(), "[TERRAFORM]");
    let tfenv_bin = assert_cmd::cargo::cargo_bin("tfenv");
    snapshots.literal(&tfenv_bin.display().to_string(), "[TFENV]");
    if let Ok(real) = tfenv_bin.canonicalize() {
        snapshots.literal(&real.display().to_string(), "[TFENV]");
    }
    snapshots.literal(env!("CARGO_PKG_VERSION"), "[VERSION]");
    let args = ["doctor", "--output", "json"];
    let warned = tfenv(&project, &args, 0);
    snapshots.json("json-doctor", &args, &warned);
    let report = stdout_json(&warned);
    let stale = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "stale-data-dirs")
        .unwrap();
    assert_eq!(stale["status"], "warn", "{report:#}");

    let fixed = stdout_json(&tfenv(
        &project,
        &["doctor", "--fix", "--yes", "--output", "json"],
        0,
    ));
    assert_eq!(
        fixed["fixed"],
        serde_json::json!(["examples/quickstart/.terraform/tfenv/staging"]),
        "{fixed:#}"
    );
    let root = Path::new("examples/quickstart/.terraform/tfenv");
    assert!(
        !project
            .join(&root.join("staging").display().to_string())
            .exists()
    );
    assert!(
        project
            .join(&root.join("dev").display().to_string())
            .is_dir()
    );
    // dev still works: its data dir was never touched.
    tfenv(&project, &["plan", "dev"], 0);
}
