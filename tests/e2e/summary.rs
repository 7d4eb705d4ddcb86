//! Markdown job summaries on the real terraform: appended to GITHUB_STEP_SUMMARY by
//! every run (refused ones too), or written to `--summary FILE`; never a secret.

use predicates::prelude::*;

use crate::policy::{policy_project, set_names};
use crate::support::{self, Project};

const SECRET: &str = "pw-4f9a-do-not-print";

fn html(markdown: &str) -> String {
    let parser = pulldown_cmark::Parser::new_ext(markdown, pulldown_cmark::Options::ENABLE_TABLES);
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    html
}

fn summary_of(project: &Project, rel: &str) -> String {
    let text = project.read(rel);
    assert!(
        !text.contains(SECRET),
        "a secret reached the summary:\n{text}"
    );
    text
}

#[test]
fn each_run_appends_its_section_to_github_step_summary_refused_ones_too() {
    let project = policy_project();
    let tf = support::terraform();
    let step_summary = project.join("step-summary.md");
    project
        .tfenv_with(&tf)
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .args(["deploy", "staging", "--yes"])
        .assert()
        .success();
    set_names(&project, "staging", &["a"]);
    project
        .tfenv_with(&tf)
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .args(["deploy", "staging", "--yes"])
        .assert()
        .code(5);

    let markdown = summary_of(&project, "step-summary.md");
    assert_eq!(
        markdown.matches("### tfenv deploy").count(),
        2,
        "{markdown}"
    );
    let html = html(&markdown);
    assert_eq!(html.matches("<table>").count(), 2, "{html}");
    assert!(html.contains("<td>staging</td>"), "{html}");
    assert!(html.contains("<strong>applied</strong>"), "{html}");
    assert!(html.contains("<strong>refused</strong>"), "{html}");
    assert!(html.contains("<code>+2 ~0 -0 ±0</code>"), "{html}");
    assert!(html.contains("<code>+0 ~0 -1 ±0</code>"), "{html}");
    assert!(
        html.contains("<details><summary>staging: 1 destroyed, 0 replaced</summary>"),
        "{html}"
    );
    assert!(
        html.contains("<li>destroy <code>terraform_data.item[&quot;b&quot;]</code></li>"),
        "{html}"
    );
    assert!(html.contains("refused by policy"), "{html}");
}

#[test]
fn summary_flag_writes_the_same_markdown_for_plan_and_status() {
    let project = policy_project();
    let tf = support::terraform();
    project
        .tfenv_with(&tf)
        .args(["plan", "dev", "--summary", "out/summary.md"])
        .assert()
        // A summary that cannot be written is a warning: the run's outcome stands.
        .success()
        .stderr(predicate::str::contains("could not write the job summary"));
    std::fs::create_dir(project.join("out")).unwrap();
    project
        .tfenv_with(&tf)
        .args(["plan", "dev", "--summary", "out/summary.md"])
        .assert()
        .success();
    project
        .tfenv_with(&tf)
        .args(["status", "--summary", "out/summary.md"])
        .assert()
        .code(predicate::in_iter([0, 6]));
    let markdown = summary_of(&project, "out/summary.md");
    assert!(markdown.starts_with("### tfenv plan\n"), "{markdown}");
    assert!(markdown.contains("### tfenv status"), "{markdown}");
    let html = html(&markdown);
    assert!(html.contains("<strong>planned</strong>"), "{html}");
    assert!(html.contains("<td>dev</td>"), "{html}");
    assert!(html.contains("<td>development</td>"), "{html}");
}
