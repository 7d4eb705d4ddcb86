//! `plan --all` with the real terraform: the demo's three environments planned at once,
//! and environments that install a provider into one fresh plugin cache at the same time.

use std::path::Path;

use crate::support::{Project, expecting, stderr, stdout, terraform};

/// The lines of `text` that terraform printed for `env` (`[env] …`) come one after the
/// other: no other environment's line between them. Returns how many there are.
fn contiguous_block(text: &str, env: &str) -> usize {
    let prefix = format!("[{env}] ");
    let at: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with(&prefix))
        .map(|(i, _)| i)
        .collect();
    assert!(!at.is_empty(), "no line of {env}:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[at[0]..=at[at.len() - 1]] {
        assert!(
            !line.starts_with('[') || line.starts_with(&prefix),
            "another environment's line inside {env}'s block:\n{text}"
        );
    }
    at.len()
}

#[test]
fn plan_all_of_the_demo_prints_each_environment_as_one_block_then_a_table() {
    let project = Project::demo();
    let tf = terraform();
    let output = expecting(project.run_with(&tf, &["plan", "--all", "-j", "3"]), 0);
    let (out, err) = (stdout(&output), stderr(&output));
    for env in ["dev", "staging", "production"] {
        contiguous_block(&err, env);
        assert!(
            err.contains(&format!("[{env}]   + environment    = \"{env}\"")),
            "{err}"
        );
        assert!(out.contains(&format!("Plan for `{env}`")), "{out}");
    }
    let table: Vec<Vec<&str>> = out
        .lines()
        .skip_while(|l| !l.starts_with("ENV "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(table[0][..3], ["ENV", "TIER", "RESULT"], "{out}");
    let rows: Vec<(&str, &str)> = table[1..].iter().map(|r| (r[0], r[2])).collect();
    assert_eq!(
        rows,
        [
            ("dev", "planned"),
            ("staging", "planned"),
            ("production", "planned")
        ],
        "{out}"
    );
    // Each keeps its plan to itself: nothing applied, no state written.
    for env in ["dev", "staging", "production"] {
        assert!(
            !project
                .join(&format!("state/{env}/terraform.tfstate"))
                .exists()
        );
    }

    expecting(
        project.run_with(&tf, &["plan", "--all", "--detailed-exitcode"]),
        3,
    );
}

/// The provider mirror of the machine image (TESTING.md): hashicorp/aws 5.100.0.
const MIRROR: &str = "/opt/tf-plugins";

/// A project of three environments whose module needs hashicorp/aws (from the mirror:
/// no network), each with its own local state.
fn provider_project() -> Project {
    assert!(
        Path::new(MIRROR)
            .join("registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64")
            .is_dir(),
        "this test installs hashicorp/aws 5.100.0 from the provider mirror in {MIRROR} (part of this machine's image), which is missing; \
         on a machine that reaches the registry, make it with `terraform providers mirror {MIRROR}` in a module requiring hashicorp/aws 5.100.0"
    );
    let project = Project::empty();
    project.write(
        ".terraformrc",
        &format!(
            "disable_checkpoint = true\nprovider_installation {{\n  filesystem_mirror {{\n    path = \"{MIRROR}\"\n  }}\n}}\n"
        ),
    );
    project.write(
        "module/main.tf",
        r#"terraform {
  backend "local" {}
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}
variable "name" { type = string }
output "name" { value = var.name }
"#,
    );
    let mut toml = "[project]\nroot = \"module\"\n".to_string();
    for env in ["dev", "staging", "production"] {
        project.write(&format!("{env}.tfvars"), &format!("name = \"{env}\"\n"));
        project.write(
            &format!("{env}.backend.conf"),
            &format!("path = \"../state/{env}/terraform.tfstate\"\n"),
        );
        toml.push_str(&format!(
            "[environments.{env}]\nbackend_config = \"{env}.backend.conf\"\nvar_files = [\"{env}.tfvars\"]\n"
        ));
    }
    project.write("tfenv.toml", &toml);
    project
}

#[test]
fn environments_planned_at_once_share_a_fresh_plugin_cache_without_a_race() {
    let project = provider_project();
    let cache = project.join(".terraform/tfenv/plugin-cache");
    assert!(!cache.exists(), "the cache starts empty");
    let output = expecting(
        project.run_with(terraform(), &["-v", "plan", "--all", "-j", "3"]),
        0,
    );
    let err = stderr(&output);
    // One init installed the provider into the cache; the others used it from there.
    let cached = cache.join("registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64");
    assert!(cached.is_dir(), "{err}");
    for env in ["dev", "staging", "production"] {
        contiguous_block(&err, env);
        let link = project.join(&format!(
            "module/.terraform/tfenv/{env}/providers/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64"
        ));
        let target = std::fs::read_link(&link).unwrap_or_else(|e| {
            panic!("{env}'s provider is not linked from the cache ({e})\n{err}")
        });
        assert_eq!(
            target.canonicalize().unwrap(),
            cached.canonicalize().unwrap(),
            "{err}"
        );
    }
    assert!(
        err.matches("from the shared cache directory").count() >= 2,
        "{err}"
    );
    assert_eq!(
        stdout(&output).matches("planned").count(),
        3,
        "{}",
        stdout(&output)
    );
}
