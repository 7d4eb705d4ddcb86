//! The real test provider (tests/provider, `tfenv/tfenvtest`): installed by
//! `terraform init` from the mirror scripts/test.sh builds, deployed by tfenv, and a
//! file edited or deleted behind terraform's back is real drift in terraform's plan.

use std::path::Path;
use std::process::Output;

use crate::support::{self, Project, output_text, provider};

/// `terraform <args> -var-file=… ` for `env` of a `provider::demo()` project, by hand in
/// the data dir tfenv initialised; the finished output, which must succeed.
fn terraform_for(project: &Project, terraform: &Path, env: &str, args: &[&str]) -> Output {
    let mut cmd = project.terraform(terraform);
    cmd.current_dir(project.join("examples/quickstart"))
        .env(
            "TF_DATA_DIR",
            project.join(&format!("examples/quickstart/.terraform/tfenv/{env}")),
        )
        .args(args);
    if args[0] == "plan" {
        cmd.arg(format!(
            "-var-file={}",
            project.join("environments/common.tfvars").display()
        ))
        .arg(format!(
            "-var-file={}",
            project
                .join(&format!("environments/{env}.tfvars"))
                .display()
        ));
    }
    let output = cmd.output().unwrap();
    assert!(
        output.status.success(),
        "terraform {args:?}\n{}",
        output_text(&output)
    );
    output
}

/// Plans `env` into a plan file with `args`; the plan's text and `show -json` of it.
fn plan(
    project: &Project,
    terraform: &Path,
    env: &str,
    args: &[&str],
) -> (String, serde_json::Value) {
    let mut plan_args = vec![
        "plan",
        "-input=false",
        "-no-color",
        "-lock=false",
        "-out=drift.tfplan",
    ];
    plan_args.extend_from_slice(args);
    let text = terraform_for(project, terraform, env, &plan_args);
    let show = terraform_for(project, terraform, env, &["show", "-json", "drift.tfplan"]);
    (
        String::from_utf8_lossy(&text.stdout).into_owned(),
        serde_json::from_slice(&show.stdout).unwrap(),
    )
}

/// `[address, actions]` of each entry of a plan's `resource_drift` or `resource_changes`.
fn actions(plan: &serde_json::Value, key: &str) -> Vec<(String, Vec<String>)> {
    plan[key]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let actions = r["change"]["actions"].as_array().unwrap();
            (
                r["address"].as_str().unwrap().to_string(),
                actions
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

fn drift(plan: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    actions(plan, "resource_drift")
}

fn entry(address: &str, action: &str) -> (String, Vec<String>) {
    (address.to_string(), vec![action.to_string()])
}

fn edit_and_delete_make_real_drift(terraform: &Path) {
    let project = provider::demo();
    let deploy = project.run_with(terraform, &["deploy", "dev", "--yes"]);
    support::expect_code(&deploy, 0);
    let file = provider::managed_file(&project, "dev");
    let secret = provider::secret_file(&file);

    // init installed it from the mirror like any provider: it is in the lock file.
    let lock = project.read("examples/quickstart/.terraform.lock.hcl");
    assert!(
        lock.contains("provider \"registry.terraform.io/tfenv/tfenvtest\""),
        "{lock}"
    );
    assert!(
        lock.contains("h1:"),
        "the lock file has the provider's hash:\n{lock}"
    );
    // apply created the real file and its secret file.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), provider::CONTENT);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), provider::SECRET);
    let deploy_text = output_text(&deploy);
    assert!(!deploy_text.contains(provider::SECRET), "{deploy_text}");

    // Nothing changed: no drift, nothing to do.
    let (_, in_sync) = plan(&project, terraform, "dev", &["-refresh-only"]);
    assert_eq!(drift(&in_sync), vec![], "{in_sync}");

    // Edited behind terraform's back: an `update` drift of `content` and `secret`.
    std::fs::write(&file, "edited by hand").unwrap();
    std::fs::write(&secret, "changed-secret-4d1c").unwrap();
    let (plan_text, edited) = plan(&project, terraform, "dev", &["-refresh-only"]);
    assert_eq!(
        drift(&edited),
        vec![entry("tfenvtest_file.app", "update")],
        "{edited}"
    );
    let change = &edited["resource_drift"][0]["change"];
    assert_eq!(change["before"]["content"], provider::CONTENT);
    assert_eq!(change["after"]["content"], "edited by hand");
    assert_eq!(change["after_sensitive"]["secret"], true, "{change}");
    assert!(
        plan_text.contains("Objects have changed outside of Terraform"),
        "{plan_text}"
    );
    assert!(plan_text.contains("(sensitive value)"), "{plan_text}");
    for value in [provider::SECRET, "changed-secret-4d1c"] {
        assert!(
            !plan_text.contains(value),
            "the secret is in the plan:\n{plan_text}"
        );
    }

    // Deleted: the resource is gone from the refreshed state (a `delete` drift), and a
    // normal plan would create it again.
    std::fs::remove_file(&file).unwrap();
    let (_, deleted) = plan(&project, terraform, "dev", &[]);
    assert_eq!(
        drift(&deleted),
        vec![entry("tfenvtest_file.app", "delete")],
        "{deleted}"
    );
    assert_eq!(
        actions(&deleted, "resource_changes"),
        vec![entry("tfenvtest_file.app", "create")],
        "{deleted}"
    );

    // tfenv puts it back: the file is there again, and the drift is gone.
    support::expect_code(&project.run_with(terraform, &["deploy", "dev", "--yes"]), 0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), provider::CONTENT);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), provider::SECRET);
    let (_, repaired) = plan(&project, terraform, "dev", &["-refresh-only"]);
    assert_eq!(drift(&repaired), vec![], "{repaired}");
}

#[test]
fn an_edited_or_deleted_file_is_real_drift_on_terraform_1_11() {
    edit_and_delete_make_real_drift(&support::terraform());
}

#[test]
fn an_edited_or_deleted_file_is_real_drift_on_terraform_1_0() {
    edit_and_delete_make_real_drift(&support::terraform_1_0());
}
