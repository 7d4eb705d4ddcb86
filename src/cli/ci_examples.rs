//! The CI examples in `examples/ci/` stay true to this command line: each file is YAML,
//! every `tfenv` command in its scripts parses with the real clap tree, and no job
//! uploads a plan bundle in clear (bundles hold the plan's secrets).

use clap::Parser;
use yaml_rust2::{Yaml, YamlLoader};

use super::Cli;

struct Example {
    file: &'static str,
    text: &'static str,
    /// Subcommands the example must run, so that the check cannot pass on an empty file.
    runs: &'static [&'static str],
}

const EXAMPLES: &[Example] = &[
    Example {
        file: "examples/ci/github-actions.yml",
        text: include_str!("../../examples/ci/github-actions.yml"),
        runs: &["envs", "validate", "plan", "deploy", "drift"],
    },
    Example {
        file: "examples/ci/gitlab-ci.yml",
        text: include_str!("../../examples/ci/gitlab-ci.yml"),
        runs: &["validate", "plan", "deploy", "drift"],
    },
];

#[test]
fn every_tfenv_command_in_the_ci_examples_parses() {
    for example in EXAMPLES {
        let docs = YamlLoader::load_from_str(example.text)
            .unwrap_or_else(|e| panic!("{} is not YAML: {e}", example.file));
        assert_eq!(docs.len(), 1, "{}: one YAML document", example.file);
        let mut scripts = Vec::new();
        strings(&docs[0], &mut scripts);
        let commands: Vec<Vec<String>> = scripts
            .iter()
            .flat_map(|script| tfenv_commands(script, example.file))
            .collect();
        for args in &commands {
            let line = args.join(" ");
            let argv = std::iter::once("tfenv".to_string()).chain(args.iter().cloned());
            let parsed = Cli::try_parse_from(argv)
                .map(drop)
                .or_else(|err| match err.kind() {
                    // `tfenv --version` prints it: that is a parse.
                    clap::error::ErrorKind::DisplayVersion => Ok(()),
                    _ => Err(err),
                });
            if let Err(err) = parsed {
                panic!(
                    "{}: `tfenv {line}` does not parse:\n{}",
                    example.file,
                    err.render()
                );
            }
        }
        for subcommand in example.runs {
            assert!(
                commands
                    .iter()
                    .any(|args| args.first().map(String::as_str) == Some(*subcommand)),
                "{} never runs `tfenv {subcommand}`; found {commands:?}",
                example.file
            );
        }
    }
}

#[test]
fn the_github_example_applies_bundles_only_behind_an_environment() {
    let docs = YamlLoader::load_from_str(EXAMPLES[0].text).unwrap();
    let jobs = docs[0]["jobs"].as_hash().expect("jobs");
    let mut applying = 0;
    for (name, job) in jobs {
        let mut scripts = Vec::new();
        strings(job, &mut scripts);
        let applies = scripts
            .iter()
            .flat_map(|s| tfenv_commands(s, "github-actions.yml"))
            .any(|args| args.first().map(String::as_str) == Some("deploy"));
        if applies {
            applying += 1;
            assert!(
                !job["environment"].is_badvalue(),
                "job {name:?} deploys without an `environment:` (no approval for production)"
            );
        }
    }
    assert_eq!(applying, 1, "one job applies the bundles");
}

/// What a job uploads is a summary (`.md`) or a plan bundle that a `tfenv plan --out DIR
/// --encrypt` of the same job wrote (the commands parsed with the real clap tree), never
/// a bundle in clear nor anything else.
#[test]
fn no_ci_example_uploads_a_clear_bundle() {
    // Each job's tfenv commands and the paths it uploads.
    let mut jobs: Vec<(String, Vec<Vec<String>>, Vec<String>)> = Vec::new();
    let commands_of = |job: &Yaml, file: &str| {
        let mut scripts = Vec::new();
        strings(job, &mut scripts);
        scripts
            .iter()
            .flat_map(|s| tfenv_commands(s, file))
            .collect::<Vec<_>>()
    };
    let github = &YamlLoader::load_from_str(EXAMPLES[0].text).unwrap()[0];
    for (name, job) in github["jobs"].as_hash().unwrap() {
        let mut uploads = Vec::new();
        for step in job["steps"].as_vec().into_iter().flatten() {
            if step["uses"]
                .as_str()
                .is_some_and(|uses| uses.starts_with("actions/upload-artifact"))
            {
                uploads.push(step["with"]["path"].as_str().unwrap().to_string());
            }
        }
        let name = format!("github-actions.yml: {}", name.as_str().unwrap());
        jobs.push((name, commands_of(job, EXAMPLES[0].file), uploads));
    }
    let gitlab = &YamlLoader::load_from_str(EXAMPLES[1].text).unwrap()[0];
    for (name, job) in gitlab.as_hash().unwrap() {
        let uploads = job["artifacts"]["paths"]
            .as_vec()
            .into_iter()
            .flatten()
            .map(|path| path.as_str().unwrap().to_string())
            .collect();
        let name = format!("gitlab-ci.yml: {}", name.as_str().unwrap());
        jobs.push((name, commands_of(job, EXAMPLES[1].file), uploads));
    }

    let mut bundles = 0;
    for (job, commands, uploads) in &jobs {
        // The bundles the job's plans write: (folder, whether encrypted).
        let planned: Vec<(String, bool)> = commands
            .iter()
            .filter_map(|args| {
                let argv = std::iter::once("tfenv".to_string()).chain(args.iter().cloned());
                match Cli::try_parse_from(argv).ok()?.command {
                    super::Command::Plan(plan) => plan
                        .out
                        .map(|out| (pattern(&out.to_string_lossy()), plan.encrypt)),
                    _ => None,
                }
            })
            .collect();
        for path in uploads {
            if path.ends_with(".md") {
                continue;
            }
            let made_by = planned.iter().find(|(out, _)| *out == pattern(path));
            match made_by {
                Some((_, true)) => bundles += 1,
                Some((_, false)) => panic!(
                    "{job} uploads `{path}`, a plan bundle written without --encrypt: its plan would be in clear"
                ),
                None => panic!(
                    "{job} uploads `{path}`, which no `tfenv plan --out DIR --encrypt` of the job writes: only encrypted bundles and summaries (.md) may be uploaded"
                ),
            }
        }
    }
    assert!(bundles >= 2, "bundles uploaded: {bundles}; jobs: {jobs:?}");
}

/// A path's last component with every variable (`$ENV`, `${VAR}`, `${{ matrix.env }}`)
/// as `*`, a trailing `/` dropped: the plan's `--out "$RUNNER_TEMP/bundle-$ENV"` and the
/// upload's `${{ runner.temp }}/bundle-${{ matrix.env }}` are the same folder.
fn pattern(path: &str) -> String {
    let path = path.trim_end_matches('/');
    let last = path.rsplit('/').next().unwrap_or(path);
    let mut out = String::new();
    let mut rest = last;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        out.push('*');
        let after = &rest[start + 1..];
        let skip = if let Some(inner) = after.strip_prefix("{{") {
            inner.find("}}").map_or(after.len(), |i| i + 4)
        } else if let Some(inner) = after.strip_prefix('{') {
            inner.find('}').map_or(after.len(), |i| i + 2)
        } else {
            after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len())
        };
        rest = &after[skip..];
    }
    out.push_str(rest);
    out
}

#[test]
fn an_upload_path_and_a_plan_out_are_matched_whatever_their_variables() {
    assert_eq!(pattern("$RUNNER_TEMP/bundle-$ENV"), "bundle-*");
    assert_eq!(
        pattern("${{ runner.temp }}/bundle-${{ matrix.env }}"),
        "bundle-*"
    );
    assert_eq!(pattern("bundle-${ENV}/"), "bundle-*");
    assert_eq!(pattern("plans/production"), "production");
}

/// Every string in the document: the scripts are among them.
fn strings(yaml: &Yaml, out: &mut Vec<String>) {
    match yaml {
        Yaml::String(s) => out.push(s.clone()),
        Yaml::Array(items) => items.iter().for_each(|item| strings(item, out)),
        Yaml::Hash(map) => map.values().for_each(|value| strings(value, out)),
        _ => {}
    }
}

/// The arguments of each `tfenv` command in a shell script: lines joined at a trailing
/// `\`, split into words as the shell would, commands split at `|`, `||`, `&&`, `;`.
/// A GitHub expression (`${{ matrix.env }}`) stands for an environment name.
fn tfenv_commands(script: &str, file: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut commands = Vec::new();
    for line in joined.lines() {
        let line = expand_expressions(line.trim());
        if line.starts_with('#') || !line.split_whitespace().any(|w| w == "tfenv") {
            continue;
        }
        let words = shell_words::split(&line)
            .unwrap_or_else(|e| panic!("{file}: `{line}` is not a shell command line: {e}"));
        for command in words.split(|w| matches!(w.as_str(), "|" | "||" | "&&" | ";")) {
            if command.first().map(String::as_str) == Some("tfenv") {
                commands.push(command[1..].to_vec());
            }
        }
    }
    commands
}

fn expand_expressions(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .map(|i| start + i + 2)
            .unwrap_or(rest.len());
        out.push_str("dev");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
