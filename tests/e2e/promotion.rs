//! Promotion gates (DESIGN.md §12) with the real terraform on the local backend, in a
//! git repository: production (`promote_from = "staging"`) deploys only a commit staging
//! deployed successfully from a clean tree, whether it plans or applies a plan bundle;
//! `--skip-promotion-check` deploys anyway and history keeps the reason. On s3 (moto) with
//! `ledger = "backend"`, a staging deploy from one clone lets production deploy from another.

use std::process::Output;

use crate::support::moto::Moto;
use crate::support::{Project, expecting, stderr, stdout_json};

/// The demo, production promoted from staging, committed.
fn promoted_demo() -> Project {
    let project = Project::demo();
    let toml = project.read("tfenv.toml");
    project.write("tfenv.toml", &format!("{toml}promote_from = \"staging\"\n"));
    project.git(&["init", "-q"]);
    project.git(&["add", "-A"]);
    project.git(&["commit", "-q", "-m", "demo"]);
    project
}

fn head(project: &Project) -> String {
    project.git(&["rev-parse", "HEAD"]).trim().to_string()
}

fn short(commit: &str) -> &str {
    &commit[..12]
}

/// `deploy <env>` approved for its tier, with `extra` arguments.
fn deploy(project: &Project, env: &str, extra: &[&str], code: i32) -> Output {
    let output = project
        .tfenv_real()
        .args(["deploy", env, "--yes", "--confirm", env])
        .args(extra)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    expecting(output, code)
}

/// A commit that gives production four instances: a change to deploy.
fn commit_four_instances(project: &Project) -> String {
    let tfvars = project
        .read("environments/production.tfvars")
        .replace("instance_count = 3", "instance_count = 4");
    project.write("environments/production.tfvars", &tfvars);
    project.git(&["commit", "-q", "-am", "four instances"]);
    head(project)
}

#[test]
fn production_deploys_only_a_commit_staging_deployed_successfully_from_a_clean_tree() {
    let project = promoted_demo();
    let x = head(&project);

    // Nothing deployed to staging yet: refused before anything is planned, recorded.
    let refused = stderr(&deploy(&project, "production", &[], 5));
    assert!(
        refused.contains(&format!(
            "promotion check failed: `production` deploys only a commit `staging` has deployed successfully from a clean tree, and HEAD `{}` is not one",
            short(&x)
        )),
        "{refused}"
    );
    assert!(
        refused.contains("`staging`'s history has no successful deploy"),
        "{refused}"
    );
    // The local ledger cannot see other machines' deploys, and says so.
    assert!(
        refused.contains("tfenv sees only this machine's history (`[project] ledger = \"local\"`)")
            && refused.contains("`[project] ledger = \"backend\"` (docs/team.md)"),
        "{refused}"
    );
    assert!(
        refused.contains("deploy `staging` at")
            && refused.contains("--skip-promotion-check \"<reason>\""),
        "{refused}"
    );
    assert!(!refused.contains("Plan for `production`"), "{refused}");
    let record = project.last_history("production");
    assert_eq!(record["result"], "refused", "{record}");
    assert_eq!(record["plan"], serde_json::Value::Null, "{record}");
    assert!(!project.join("state/production/terraform.tfstate").exists());

    // The JSON document is the refusal's error document.
    let json = stdout_json(&deploy(&project, "production", &["--output", "json"], 5));
    assert_eq!(json["error"]["exit_code"], 5, "{json}");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("promotion check failed: "), "{json}");

    // A plan is never gated.
    expecting(
        project
            .tfenv_real()
            .args(["plan", "production"])
            .output()
            .unwrap(),
        0,
    );

    // Staging at X lets production deploy X, and history says which deploy did.
    deploy(&project, "staging", &[], 0);
    let allowed = stderr(&deploy(&project, "production", &[], 0));
    assert!(
        allowed.contains(&format!(
            "production: promotion check passed: `staging` deployed HEAD `{}` on",
            short(&x)
        )),
        "{allowed}"
    );
    let record = project.last_history("production");
    assert_eq!(record["result"], "applied", "{record}");
    assert_eq!(
        record["promoted_from"],
        serde_json::json!({ "environment": "staging", "commit": x }),
        "{record}"
    );

    // A new commit Y: refused, naming staging's X and Y.
    let y = commit_four_instances(&project);
    let refused = stderr(&deploy(&project, "production", &[], 5));
    assert!(
        refused.contains(&format!("HEAD `{}` is not one", short(&y)))
            && refused.contains(&format!("`staging` last deployed `{}` on ", short(&x))),
        "{refused}"
    );

    // Staging's deploy of Y fails (its plan does): still refused, and said why.
    let failed = project
        .tfenv_real()
        .args(["deploy", "staging", "--yes"])
        .env("TF_CLI_ARGS_plan", "-no-such-flag")
        .output()
        .unwrap();
    expecting(failed, 1);
    assert_eq!(project.last_history("staging")["result"], "failed");
    let refused = stderr(&deploy(&project, "production", &[], 5));
    assert!(
        refused.contains(&format!("`staging`'s deploy of `{}` on ", short(&y)))
            && refused.contains("ended `failed`"),
        "{refused}"
    );

    // Staging deployed Y from a tree with changes: does not count either.
    project.write("notes.txt", "todo\n");
    deploy(&project, "staging", &[], 0);
    assert_eq!(project.last_history("staging")["git"]["dirty"], true);
    std::fs::remove_file(project.join("notes.txt")).unwrap();
    let refused = stderr(&deploy(&project, "production", &[], 5));
    assert!(
        refused.contains("from a tree with uncommitted changes"),
        "{refused}"
    );

    // A refresh of staging is not a deploy.
    expecting(
        project
            .tfenv_real()
            .args(["refresh", "staging", "--yes"])
            .output()
            .unwrap(),
        0,
    );
    deploy(&project, "production", &[], 5);

    // Production from a tree with changes: staging never deployed them, --allow-dirty or not.
    project.write("notes.txt", "todo\n");
    let refused = stderr(&deploy(&project, "production", &["--allow-dirty"], 5));
    assert!(
        refused.contains("promotion check failed: the git tree has uncommitted changes (notes.txt (untracked)): `staging` never deployed them"),
        "{refused}"
    );
    std::fs::remove_file(project.join("notes.txt")).unwrap();

    // Staging deploys Y from a clean tree (no changes for staging: that counts too).
    deploy(&project, "staging", &[], 0);
    assert_eq!(project.last_history("staging")["result"], "no-changes");
    deploy(&project, "production", &[], 0);
    let record = project.last_history("production");
    assert_eq!(record["result"], "applied", "{record}");
    assert_eq!(record["git"]["commit"], y.as_str(), "{record}");
}

#[test]
fn skip_promotion_check_deploys_and_history_keeps_the_reason() {
    let project = promoted_demo();
    let output = deploy(
        &project,
        "production",
        &["--skip-promotion-check", "hotfix INC-42"],
        0,
    );
    let err = stderr(&output);
    assert!(
        err.contains(
            "the promotion check of `production` (promote_from = `staging`) was skipped: hotfix INC-42"
        ),
        "{err}"
    );
    let history = stdout_json(&expecting(
        project
            .tfenv()
            .args(["history", "production", "--output", "json"])
            .output()
            .unwrap(),
        0,
    ));
    let record = history["records"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(record["result"], "applied", "{record}");
    assert_eq!(
        record["promotion_check_skipped"], "hotfix INC-42",
        "{record}"
    );
    assert!(record.get("promoted_from").is_none(), "{record}");
    let human = expecting(
        project
            .tfenv()
            .args(["history", "production"])
            .output()
            .unwrap(),
        0,
    );
    let text = crate::support::stdout(&human);
    assert!(
        text.contains(" deploy by ") && text.contains(": promotion check skipped: hotfix INC-42"),
        "{text}"
    );
}

#[test]
fn a_plan_bundle_is_checked_at_its_own_commit() {
    let project = promoted_demo();
    let x = head(&project);
    // Outside the checkout: a bundle inside it would make the tree dirty.
    let bundles = tempfile::tempdir().unwrap();
    let dir = bundles.path().join("production");
    let dir = dir.to_str().unwrap();
    expecting(
        project
            .tfenv_real()
            .args(["plan", "production", "--out", dir])
            .output()
            .unwrap(),
        0,
    );
    let refused = stderr(&deploy(&project, "production", &["--plan", dir], 5));
    assert!(
        refused.contains(&format!(
            "and the plan bundle's commit `{}` is not one",
            short(&x)
        )),
        "{refused}"
    );
    assert!(!project.join("state/production/terraform.tfstate").exists());
    deploy(&project, "staging", &[], 0);
    let applied = stderr(&deploy(&project, "production", &["--plan", dir], 0));
    assert!(
        applied.contains("promotion check passed: `staging` deployed the plan bundle's commit"),
        "{applied}"
    );
    let record = project.last_history("production");
    assert_eq!(record["promoted_from"]["commit"], x.as_str(), "{record}");
    assert!(record["bundle"].is_string(), "{record}");
}

/// Two clones of one repository whose environments keep their state, and their shared
/// ledger, in one moto bucket: what staging deployed from clone `a` is what production's
/// gate sees in clone `b`, whose own `state/` has never seen staging.
#[test]
fn staging_deployed_from_clone_a_lets_production_deploy_from_clone_b() {
    let moto = Moto::start();
    moto.create_bucket("tfstate-promotion");
    moto.create_lock_table("tf-locks-promotion");
    let project = Project::empty();
    let mut toml = String::from("[project]\nledger = \"backend\"\n");
    for env in ["staging", "production"] {
        toml.push_str(&format!(
            "\n[environments.{env}]\nbackend_config = \"environments/{env}.backend.conf\"\nvar_files = [\"environments/{env}.tfvars\"]\n"
        ));
        project.write(
            &format!("origin/environments/{env}.backend.conf"),
            &moto.backend_conf(
                "tfstate-promotion",
                &format!("{env}/terraform.tfstate"),
                "tf-locks-promotion",
            ),
        );
        project.write(
            &format!("origin/environments/{env}.tfvars"),
            &format!("message = \"{env}\"\n"),
        );
    }
    toml.push_str("promote_from = \"staging\"\n");
    project.write("origin/tfenv.toml", &toml);
    project.write(
        "origin/main.tf",
        "terraform {\n  backend \"s3\" {}\n}\n\nvariable \"message\" {\n  type = string\n}\n\nresource \"terraform_data\" \"x\" {\n  input = var.message\n}\n",
    );
    project.write("origin/.gitignore", "state/\n.terraform/\n");
    project.git(&["init", "-q", "origin"]);
    let origin = project.join("origin");
    crate::support::git(&origin, &["add", "-A"]);
    crate::support::git(&origin, &["commit", "-q", "-m", "one"]);
    let commit = crate::support::git(&origin, &["rev-parse", "HEAD"])
        .trim()
        .to_string();
    for clone in ["a", "b"] {
        project.git(&["clone", "-q", "origin", clone]);
    }
    let tfenv = |clone: &str, args: &[&str], code: i32| {
        expecting(
            project
                .tfenv_real()
                .current_dir(project.join(clone))
                .args(args)
                .timeout(std::time::Duration::from_secs(120))
                .output()
                .unwrap(),
            code,
        )
    };
    let production = ["deploy", "production", "--yes", "--confirm", "production"];

    // Nobody deployed staging: refused in b, and no note about this machine only.
    let refused = stderr(&tfenv("b", &production, 5));
    assert!(
        refused.contains("promotion check failed")
            && !refused.contains("sees only this machine's history"),
        "{refused}"
    );

    tfenv("a", &["deploy", "staging", "--yes"], 0);
    assert!(!project.join("b/state/staging/history.jsonl").exists());
    let allowed = stderr(&tfenv("b", &production, 0));
    assert!(
        allowed.contains(&format!(
            "production: promotion check passed: `staging` deployed HEAD `{}`",
            short(&commit)
        )) && allowed.contains("(shared ledger)"),
        "{allowed}"
    );
    let record = last_history_in(&project, "b", "production");
    assert_eq!(
        record["promoted_from"],
        serde_json::json!({ "environment": "staging", "commit": commit }),
        "{record}"
    );
}

fn last_history_in(project: &Project, clone: &str, env: &str) -> serde_json::Value {
    let text = project.read(&format!("{clone}/state/{env}/history.jsonl"));
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}
