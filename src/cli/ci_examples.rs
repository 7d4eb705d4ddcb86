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
        runs: &["envs", "validate", "plan", "deploy"],
    },
    Example {
        file: "examples/ci/gitlab-ci.yml",
        text: include_str!("../../examples/ci/gitlab-ci.yml"),
        runs: &["validate", "plan", "deploy"],
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

/// What a job uploads is an encrypted bundle (`.age`) or a summary, never a bundle
/// directory in clear.
#[test]
fn no_ci_example_uploads_a_clear_bundle() {
    let github = &YamlLoader::load_from_str(EXAMPLES[0].text).unwrap()[0];
    let mut uploads = Vec::new();
    for (_, job) in github["jobs"].as_hash().unwrap() {
        for step in job["steps"].as_vec().into_iter().flatten() {
            if step["uses"]
                .as_str()
                .is_some_and(|uses| uses.starts_with("actions/upload-artifact"))
            {
                uploads.push(step["with"]["path"].as_str().unwrap().to_string());
            }
        }
    }
    let gitlab = &YamlLoader::load_from_str(EXAMPLES[1].text).unwrap()[0];
    for (_, job) in gitlab.as_hash().unwrap() {
        for path in job["artifacts"]["paths"].as_vec().into_iter().flatten() {
            uploads.push(path.as_str().unwrap().to_string());
        }
    }
    assert!(uploads.len() >= 3, "uploads found: {uploads:?}");
    for path in &uploads {
        assert!(
            path.ends_with(".age") || path.ends_with(".md"),
            "`{path}` is uploaded: only encrypted bundles (.age) and summaries (.md) may be"
        );
    }
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
