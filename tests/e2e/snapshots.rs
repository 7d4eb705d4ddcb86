//! The demo's plan summary and deploy as a user sees them with the real terraform,
//! as snapshots (see support/snap.rs): the first plan of dev, its deploy, the plan with
//! nothing left to do, and a production deploy that backs up first, in text and JSON.

use std::process::Output;

use crate::support::snap::Snapshots;
use crate::support::{self, Project, expecting};

/// `tfenv --terraform <the real terraform> <args>`, which must exit `code`.
fn run(project: &Project, args: &[&str], code: i32) -> Output {
    expecting(project.run_with(support::terraform(), args), code)
}

#[test]
fn the_demos_plan_summary_and_deploy_match_their_snapshots() {
    let project = Project::demo();
    let mut snapshots = Snapshots::new(&project);
    snapshots.real_terraform(&support::terraform());
    let text = |name: &str, args: &[&str], code: i32| {
        snapshots.stdout(name, args, &run(&project, args, code));
    };
    let json = |name: &str, args: &[&str], code: i32| {
        snapshots.json(name, args, &run(&project, args, code));
    };

    text("demo-plan", &["plan", "dev"], 0);
    json(
        "demo-json-plan",
        &["plan", "dev", "--detailed-exitcode", "--output", "json"],
        3,
    );
    text("demo-deploy", &["deploy", "dev", "--yes"], 0);
    text("demo-plan-no-changes", &["plan", "dev"], 0);
    json(
        "demo-json-deploy-no-changes",
        &["deploy", "dev", "--yes", "--output", "json"],
        0,
    );

    // Production: a first deploy, then a change, which is backed up and verified first.
    run(
        &project,
        &["deploy", "production", "--yes", "--confirm", "production"],
        0,
    );
    let tfvars = project
        .read("environments/production.tfvars")
        .replace("instance_count = 3", "instance_count = 4");
    project.write("environments/production.tfvars", &tfvars);
    text(
        "demo-deploy-production",
        &["deploy", "production", "--yes", "--confirm", "production"],
        0,
    );
    let tfvars = tfvars.replace("instance_count = 4", "instance_count = 5");
    project.write("environments/production.tfvars", &tfvars);
    json(
        "demo-json-deploy-production",
        &[
            "deploy",
            "production",
            "--yes",
            "--confirm",
            "production",
            "--output",
            "json",
        ],
        0,
    );
    json(
        "demo-json-outputs",
        &["outputs", "production", "--output", "json"],
        0,
    );
    text("demo-outputs", &["outputs", "production"], 0);
}
