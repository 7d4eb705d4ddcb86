//! Markdown job summaries (DESIGN.md §10): what a run did, as a section appended to the
//! file `GITHUB_STEP_SUMMARY` names (or `--summary FILE`). Built from plain data, so any
//! command renders one (`plan`, `deploy`, `refresh`, `status`; `drift` later). Never a
//! secret: names, counts, addresses and tfenv's own messages only — no variable or plan
//! value ever reaches these types; the one output shown is a refusing policy's, which is
//! the user's own program's verdict (capped). Uses nothing of tfenv's.

use std::fmt::Write as _;

/// One environment's run of `plan`, `deploy` or `refresh`.
#[derive(Clone, Debug, Default)]
pub struct RunRow {
    pub environment: String,
    /// `None` when the run failed before the environment was known.
    pub tier: Option<String>,
    /// `applied`, `no-changes`, `planned`, `refused`, `failed`, `locked`, `interrupted`.
    pub result: String,
    /// What the plan does, when there was one.
    pub changes: Option<Changes>,
    /// The backup file taken before the change.
    pub backup: Option<String>,
    pub seconds: f64,
    /// The commit (short) and whether the tree had changes, when git was asked.
    pub commit: Option<(String, bool)>,
    /// The line of the error that ended the run that carries its cause.
    pub error: Option<String>,
    /// What a refusing policy printed (its first lines), shown in a `<details>` block.
    pub policy_output: Option<String>,
    /// `plan --publish`: the ID of the plan published to the shared ledger.
    pub published: Option<String>,
    /// `deploy` of an environment with `promote_from`: how its promotion check went.
    pub promotion: Option<Promotion>,
}

/// A promotion check that let a deploy through.
#[derive(Clone, Debug)]
pub enum Promotion {
    /// `--skip-promotion-check`: skipped, with the reason given.
    Skipped { from: String, reason: String },
    /// Passed: the source environment deployed this commit (short).
    Passed { from: String, commit: String },
}

/// A plan's counts and the addresses that lose an object.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub add: u64,
    pub change: u64,
    pub destroy: u64,
    pub replace: u64,
    /// Resources that drifted (a refresh).
    pub drifted: u64,
    pub destroyed: Vec<String>,
    pub replaced: Vec<String>,
}

/// One environment's line of `status`.
#[derive(Clone, Debug, Default)]
pub struct StatusRow {
    pub environment: String,
    pub tier: String,
    pub serial: Option<u64>,
    pub resources: Option<u64>,
    /// Who holds the state lock (`-` when free).
    pub lock: String,
    /// The newest backup's age (`3h ago`).
    pub newest_backup: Option<String>,
    /// The last deploy's result and age (`applied 2d ago`).
    pub last_deploy: Option<String>,
    /// The last drift check (`in sync 2h ago`, `3 drifted (high) 1d ago`, `unchecked`).
    pub drift: Option<String>,
    /// `code: message` of each problem.
    pub problems: Vec<String>,
}

/// The section of a `plan`, `deploy` or `refresh` run: one table, a row per environment.
pub fn runs(command: &str, rows: &[RunRow]) -> String {
    let mut md = format!("### tfenv {}\n\n", escape(command));
    md.push_str(
        "| environment | tier | result | changes (+ ~ - ±) | backup | seconds | commit |\n",
    );
    md.push_str("| --- | --- | --- | --- | --- | ---: | --- |\n");
    for row in rows {
        let changes = row.changes.as_ref().map_or_else(dash, |c| {
            let mut text = format!("+{} ~{} -{} ±{}", c.add, c.change, c.destroy, c.replace);
            if c.drifted > 0 {
                let _ = write!(text, " drifted {}", c.drifted);
            }
            format!("`{text}`")
        });
        let commit = row.commit.as_ref().map_or_else(dash, |(commit, dirty)| {
            let dirty = if *dirty { " (dirty)" } else { "" };
            format!("`{}`{dirty}", escape_code(commit))
        });
        let _ = writeln!(
            md,
            "| {} | {} | **{}** | {changes} | {} | {:.1} | {commit} |",
            escape(&row.environment),
            row.tier.as_deref().map_or_else(dash, escape),
            escape(&row.result),
            row.backup
                .as_deref()
                .map_or_else(dash, |b| format!("`{}`", escape_code(b))),
            row.seconds,
        );
    }
    let errors: Vec<&RunRow> = rows.iter().filter(|r| r.error.is_some()).collect();
    if !errors.is_empty() {
        md.push('\n');
        for row in errors {
            let error = row.error.as_deref().unwrap_or_default();
            let _ = writeln!(
                md,
                "- **{}** {}: {}",
                escape(&row.environment),
                escape(&row.result),
                with_code(error)
            );
        }
        for row in rows {
            if let Some(said) = &row.policy_output {
                md.push_str(&policy_output(&row.environment, said));
            }
        }
    }
    let published: Vec<&RunRow> = rows.iter().filter(|r| r.published.is_some()).collect();
    if !published.is_empty() {
        md.push('\n');
        for row in published {
            let id = row.published.as_deref().unwrap_or_default();
            let _ = writeln!(
                md,
                "- **{}** plan published as `ledger:{id}`: apply it with `tfenv deploy {} --plan ledger:{id}`",
                escape(&row.environment),
                escape_code(&row.environment),
                id = escape_code(id),
            );
        }
    }
    let promoted: Vec<&RunRow> = rows.iter().filter(|r| r.promotion.is_some()).collect();
    if !promoted.is_empty() {
        md.push('\n');
        for row in promoted {
            let env = escape(&row.environment);
            let _ = match row.promotion.as_ref() {
                Some(Promotion::Skipped { from, reason }) => writeln!(
                    md,
                    "- **{env}** promotion check skipped (promote_from `{}`): {}",
                    escape_code(from),
                    escape(reason)
                ),
                Some(Promotion::Passed { from, commit }) => writeln!(
                    md,
                    "- **{env}** promotion check passed: `{}` deployed `{}`",
                    escape_code(from),
                    escape_code(commit)
                ),
                None => Ok(()),
            };
        }
    }
    for row in rows {
        if let Some(changes) = &row.changes {
            md.push_str(&lost_objects(&row.environment, changes));
        }
    }
    md.push('\n');
    md
}

/// The section of `status`: one table, a row per environment; problems listed below.
pub fn status(healthy: bool, rows: &[StatusRow], project_problems: &[String]) -> String {
    let mut md = format!(
        "### tfenv status: {}\n\n",
        if healthy { "healthy" } else { "problems found" }
    );
    md.push_str("| environment | tier | health | serial | resources | lock | newest backup | last deploy | drift |\n");
    md.push_str("| --- | --- | --- | ---: | ---: | --- | --- | --- | --- |\n");
    for row in rows {
        let health = match row.problems.len() {
            0 => "ok".to_string(),
            n => format!("**{n} problem(s)**"),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {health} | {} | {} | {} | {} | {} | {} |",
            escape(&row.environment),
            escape(&row.tier),
            row.serial.map_or_else(dash, |s| s.to_string()),
            row.resources.map_or_else(dash, |r| r.to_string()),
            escape(&row.lock),
            row.newest_backup.as_deref().map_or_else(dash, escape),
            row.last_deploy.as_deref().map_or_else(dash, escape),
            row.drift.as_deref().map_or_else(dash, escape),
        );
    }
    let problems: Vec<(String, &String)> = rows
        .iter()
        .flat_map(|row| row.problems.iter().map(|p| (row.environment.clone(), p)))
        .chain(project_problems.iter().map(|p| ("project".to_string(), p)))
        .collect();
    if !problems.is_empty() {
        md.push('\n');
        for (who, problem) in problems {
            let _ = writeln!(md, "- **{}**: {}", escape(&who), escape(problem));
        }
    }
    md.push('\n');
    md
}

/// One environment's drift check (`tfenv drift`): names and counts only.
#[derive(Clone, Debug, Default)]
pub struct DriftRow {
    pub environment: String,
    pub tier: String,
    /// `in-sync`, `drifted`, `failed`.
    pub result: String,
    /// The worst severity (`critical` … `low`) when something drifted.
    pub severity: Option<String>,
    /// Each drifted resource: its address, `update`/`delete`, and the changed attributes'
    /// names.
    pub drifted: Vec<(String, String, Vec<String>)>,
    /// Each pending change: its address and terraform's actions (`create`, `delete, create`).
    pub pending: Vec<(String, String)>,
    /// Why the check failed (its first line).
    pub error: Option<String>,
}

/// The section of `tfenv drift`: one table, a row per environment (in the order given:
/// worst first), then what drifted and what failed.
pub fn drift(rows: &[DriftRow]) -> String {
    let drifted = rows.iter().filter(|r| !r.drifted.is_empty()).count();
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    let headline = match (drifted, failed) {
        (0, 0) => "in sync".to_string(),
        (d, 0) => format!("{d} environment(s) drifted"),
        (0, f) => format!("{f} check(s) failed"),
        (d, f) => format!("{d} environment(s) drifted, {f} check(s) failed"),
    };
    let mut md = format!("### tfenv drift: {headline}\n\n");
    md.push_str("| environment | tier | result | severity | drifted | pending |\n");
    md.push_str("| --- | --- | --- | --- | ---: | ---: |\n");
    for row in rows {
        let result = match row.result.as_str() {
            "in-sync" => escape(&row.result),
            other => format!("**{}**", escape(other)),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {result} | {} | {} | {} |",
            escape(&row.environment),
            escape(&row.tier),
            row.severity.as_deref().map_or_else(dash, escape),
            row.drifted.len(),
            row.pending.len(),
        );
    }
    for row in rows
        .iter()
        .filter(|r| !r.drifted.is_empty() || !r.pending.is_empty())
    {
        let mut html = format!(
            "\n<details><summary>{}: {} drifted, {} pending</summary>\n<ul>\n",
            html_escape(&row.environment),
            row.drifted.len(),
            row.pending.len()
        );
        for (address, action, attributes) in &row.drifted {
            let names = match attributes.is_empty() {
                true => String::new(),
                false => format!(
                    " ({})",
                    attributes
                        .iter()
                        .map(|a| html_escape(a))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let _ = writeln!(
                html,
                "<li>drifted: {} <code>{}</code>{names}</li>",
                html_escape(action),
                html_escape(address)
            );
        }
        for (address, actions) in &row.pending {
            let _ = writeln!(
                html,
                "<li>pending: {} <code>{}</code></li>",
                html_escape(actions),
                html_escape(address)
            );
        }
        html.push_str("</ul>\n</details>\n");
        md.push_str(&html);
    }
    let errors: Vec<&DriftRow> = rows.iter().filter(|r| r.error.is_some()).collect();
    if !errors.is_empty() {
        md.push('\n');
        for row in errors {
            let _ = writeln!(
                md,
                "- **{}** failed: {}",
                escape(&row.environment),
                with_code(row.error.as_deref().unwrap_or_default())
            );
        }
    }
    md.push('\n');
    md
}

/// Destroyed and replaced addresses in a `<details>` block: one HTML block (no blank
/// line inside), so Markdown reads nothing in the addresses, which are HTML-escaped.
fn lost_objects(env: &str, changes: &Changes) -> String {
    if changes.destroyed.is_empty() && changes.replaced.is_empty() {
        return String::new();
    }
    let mut html = format!(
        "\n<details><summary>{}: {} destroyed, {} replaced</summary>\n<ul>\n",
        html_escape(env),
        changes.destroyed.len(),
        changes.replaced.len()
    );
    for (what, addresses) in [
        ("destroy", &changes.destroyed),
        ("replace", &changes.replaced),
    ] {
        for address in addresses {
            let _ = writeln!(
                html,
                "<li>{what} <code>{}</code></li>",
                html_escape(address)
            );
        }
    }
    html.push_str("</ul>\n</details>\n");
    html
}

/// A refusing policy's output in a `<details>` block, HTML-escaped in a `<pre>`. One HTML
/// block: a blank line would end it, so blank lines are left out.
fn policy_output(env: &str, said: &str) -> String {
    let mut html = format!(
        "\n<details><summary>{}: what the policy said</summary>\n<pre>",
        html_escape(env)
    );
    let lines: Vec<String> = said
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.chars()
                .map(|c| match c {
                    '&' => "&amp;".to_string(),
                    '<' => "&lt;".to_string(),
                    '>' => "&gt;".to_string(),
                    c => c.to_string(),
                })
                .collect()
        })
        .collect();
    html.push_str(&lines.join("\n"));
    html.push_str("</pre>\n</details>\n");
    html
}

/// A message of tfenv's in a list item: its `values in backticks` become code spans (as
/// HTML, their text escaped), the rest is escaped text. A backtick without its pair stays
/// a literal one.
fn with_code(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    let mut out = String::with_capacity(text.len());
    for (i, part) in parts.iter().enumerate() {
        let paired = i % 2 == 1 && i + 1 < parts.len();
        match paired {
            true => {
                let _ = write!(out, "<code>{}</code>", html_escape(part));
            }
            false if i % 2 == 1 => {
                out.push_str("\\`");
                out.push_str(&escape(part));
            }
            false => out.push_str(&escape(part)),
        }
    }
    out
}

fn dash() -> String {
    "-".to_string()
}

/// Text in a table cell or a list item: HTML is shown, not interpreted; `|` does not
/// end the cell; Markdown's emphasis, code and link characters are literal.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text inside a code span in a table cell: only `|` needs escaping there (GFM splits
/// cells first); a backtick would end the span, so it becomes a quote.
fn escape_code(text: &str) -> String {
    text.replace('`', "'")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy_rows() -> Vec<RunRow> {
        vec![
            RunRow {
                environment: "staging".into(),
                tier: Some("staging".into()),
                result: "applied".into(),
                changes: Some(Changes {
                    add: 1,
                    change: 0,
                    destroy: 1,
                    replace: 1,
                    drifted: 0,
                    destroyed: vec!["terraform_data.item[\"b|<script>\"]".into()],
                    replaced: vec!["module.db.aws_db_instance.main".into()],
                }),
                backup: Some("terraform.tfstate.20261130-101500".into()),
                seconds: 12.345,
                commit: Some(("0123456789ab".into(), true)),
                error: None,
                policy_output: None,
                published: None,
                promotion: None,
            },
            RunRow {
                environment: "production".into(),
                tier: Some("production".into()),
                result: "refused".into(),
                changes: Some(Changes {
                    destroy: 2,
                    destroyed: vec!["a.b".into(), "c.d".into()],
                    ..Changes::default()
                }),
                backup: None,
                seconds: 3.0,
                commit: Some(("0123456789ab".into(), false)),
                error: Some(
                    "refused by policy: `conftest test {plan_json}` exited with code 1 | <b>; it said: FAIL - main.tf - `a.b` is deleted"
                        .into(),
                ),
                policy_output: Some(
                    "FAIL - main.tf - `a.b` is deleted\n\n<script>alert(1)</script>\n1 test, 0 passed".into(),
                ),
                published: None,
                promotion: None,
            },
        ]
    }

    fn html(markdown: &str) -> String {
        let options =
            pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_STRIKETHROUGH;
        let parser = pulldown_cmark::Parser::new_ext(markdown, options);
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, parser);
        html
    }

    #[test]
    fn a_run_section_renders_one_table_row_per_environment_and_the_lost_objects() {
        let md = runs("deploy", &deploy_rows());
        insta::assert_snapshot!("summary-deploy", md);
        let html = html(&md);
        assert!(html.contains("<table>"), "{html}");
        assert_eq!(html.matches("<tr>").count(), 3, "header + 2 rows:\n{html}");
        assert!(html.contains("<td>staging</td>"), "{html}");
        assert!(html.contains("<strong>applied</strong>"), "{html}");
        assert!(html.contains("<code>+1 ~0 -1 ±1</code>"), "{html}");
        assert!(
            html.contains("<details><summary>staging: 1 destroyed, 1 replaced</summary>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<li>destroy <code>terraform_data.item[&quot;b|&lt;script&gt;&quot;]</code></li>"
            ),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        // The error's `|` stays in its line, not a new cell; its commands are code.
        assert!(html.contains("exited with code 1 | &lt;b&gt;"), "{html}");
        assert!(
            html.contains("refused by policy: <code>conftest test {plan_json}</code> exited"),
            "{html}"
        );
        assert!(
            !html.contains("\\`"),
            "no escaped backtick is shown:\n{html}"
        );
        // What the policy said, escaped, in its own block.
        assert!(
            html.contains("<details><summary>production: what the policy said</summary>"),
            "{html}"
        );
        assert!(
            html.contains("<pre>FAIL - main.tf - `a.b` is deleted\n&lt;script&gt;alert(1)&lt;/script&gt;\n1 test, 0 passed</pre>"),
            "{html}"
        );
    }

    #[test]
    fn a_published_plan_is_named_under_the_table_with_the_command_to_apply_it() {
        let row = RunRow {
            environment: "production".into(),
            tier: Some("production".into()),
            result: "planned".into(),
            published: Some("20261130T120000Z-4f2c9e1-a1b2c3".into()),
            ..RunRow::default()
        };
        let html = html(&runs("plan", &[row]));
        assert!(
            html.contains("<li><strong>production</strong> plan published as <code>ledger:20261130T120000Z-4f2c9e1-a1b2c3</code>: apply it with <code>tfenv deploy production --plan ledger:20261130T120000Z-4f2c9e1-a1b2c3</code></li>"),
            "{html}"
        );
        assert!(!runs("plan", &deploy_rows()).contains("published"));
    }

    #[test]
    fn a_skipped_promotion_check_is_named_under_the_table_with_its_reason() {
        let row = RunRow {
            environment: "production".into(),
            tier: Some("production".into()),
            result: "applied".into(),
            promotion: Some(Promotion::Skipped {
                from: "staging".into(),
                reason: "hotfix <b>INC-42</b> | staging down".into(),
            }),
            ..RunRow::default()
        };
        let skipped = html(&runs("deploy", &[row]));
        assert!(
            skipped.contains("<li><strong>production</strong> promotion check skipped (promote_from <code>staging</code>): hotfix &lt;b&gt;INC-42&lt;/b&gt; | staging down</li>"),
            "{skipped}"
        );
        let row = RunRow {
            environment: "production".into(),
            promotion: Some(Promotion::Passed {
                from: "staging".into(),
                commit: "0123456789ab".into(),
            }),
            ..RunRow::default()
        };
        let html = html(&runs("deploy", &[row]));
        assert!(
            html.contains(
                "promotion check passed: <code>staging</code> deployed <code>0123456789ab</code>"
            ),
            "{html}"
        );
        assert!(!runs("deploy", &deploy_rows()).contains("promotion"));
    }

    #[test]
    fn a_status_section_lists_problems_under_its_table() {
        let rows = vec![
            StatusRow {
                environment: "dev".into(),
                tier: "development".into(),
                serial: Some(4),
                resources: Some(2),
                lock: "-".into(),
                newest_backup: Some("3h ago".into()),
                last_deploy: Some("applied 2d ago".into()),
                drift: Some("in sync 2h ago".into()),
                problems: Vec::new(),
            },
            StatusRow {
                environment: "production".into(),
                tier: "production".into(),
                lock: "alice@laptop 3h".into(),
                drift: Some("3 drifted (high) 1d ago".into()),
                problems: vec![
                    "stale-lock: held for 3h by alice@laptop (fix: tfenv unlock production 1a2b)"
                        .into(),
                ],
                ..StatusRow::default()
            },
        ];
        let md = status(
            false,
            &rows,
            &["not-gitignored: `state/` is not ignored".into()],
        );
        insta::assert_snapshot!("summary-status", md);
        let html = html(&md);
        assert_eq!(html.matches("<tr>").count(), 3, "{html}");
        assert!(html.contains("<strong>1 problem(s)</strong>"), "{html}");
        assert!(
            html.contains("<strong>project</strong>: not-gitignored"),
            "{html}"
        );
    }

    #[test]
    fn a_drift_section_lists_environments_worst_first_with_names_only() {
        let rows = vec![
            DriftRow {
                environment: "production".into(),
                tier: "production".into(),
                result: "drifted".into(),
                severity: Some("critical".into()),
                drifted: vec![
                    ("aws_s3_bucket.logs".into(), "delete".into(), Vec::new()),
                    (
                        "aws_security_group.web[\"a|b\"]".into(),
                        "update".into(),
                        vec!["ingress".into(), "tags".into()],
                    ),
                ],
                pending: vec![("aws_instance.api".into(), "update".into())],
                error: None,
            },
            DriftRow {
                environment: "staging".into(),
                tier: "staging".into(),
                result: "failed".into(),
                error: Some("`terraform plan` for `staging` exited with code 1".into()),
                ..DriftRow::default()
            },
            DriftRow {
                environment: "dev".into(),
                tier: "development".into(),
                result: "in-sync".into(),
                ..DriftRow::default()
            },
        ];
        let md = drift(&rows);
        insta::assert_snapshot!("summary-drift", md);
        let html = html(&md);
        assert!(
            html.contains("tfenv drift: 1 environment(s) drifted, 1 check(s) failed"),
            "{html}"
        );
        assert_eq!(html.matches("<tr>").count(), 4, "{html}");
        assert!(html.contains("<strong>drifted</strong>"), "{html}");
        // An address with `|` and quotes stays in its `<code>`, escaped.
        assert!(
            html.contains("<code>aws_security_group.web[&quot;a|b&quot;]</code> (ingress, tags)"),
            "{html}"
        );
    }
}
