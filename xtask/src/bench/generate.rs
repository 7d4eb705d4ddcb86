//! Generated inputs: Terraform v4 states in terraform's own layout (what `terraform state
//! pull` prints), made of `terraform_data` resources of 4 instances each (~2.4 KB per
//! instance), and small helpers for the generated projects.

use std::io::{self, Write};
use std::path::Path;

const KEYS: [&str; 10] = [
    "name",
    "owner",
    "team",
    "cost_center",
    "environment",
    "region",
    "subnet_id",
    "ami",
    "instance_type",
    "security_group",
];

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

fn instance(r: u64, i: u64, blob: &str) -> String {
    let id = format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        r,
        i,
        (r * 7 + i) % 65536,
        (r * 13) % 65536,
        r * 4 + i
    );
    let mut kv = String::new();
    for (k, key) in KEYS.iter().enumerate() {
        if k > 0 {
            kv.push_str(",\n");
        }
        kv.push_str(&format!(
            "                {}: {}",
            q(key),
            q(&format!("bench-{key}-{r}-{i}"))
        ));
    }
    kv.push_str(&format!(
        ",\n                {}: {}",
        q("user_data"),
        q(blob)
    ));
    let map = |kv: &str| {
        format!(
            "              \"value\": {{\n{kv}\n              }},\n              \"type\": [\n                \"map\",\n                \"string\"\n              ]\n"
        )
    };
    format!(
        "        {{\n          \"index_key\": {i},\n          \"schema_version\": 0,\n          \"attributes\": {{\n            \"id\": {},\n            \"input\": {{\n{}            }},\n            \"output\": {{\n{}            }},\n            \"triggers_replace\": null\n          }},\n          \"sensitive_attributes\": []\n        }}",
        q(&id),
        map(&kv),
        map(&kv)
    )
}

/// The first lines of a state, up to the opening of `resources`.
pub fn state_head(serial: u64, lineage: &str) -> String {
    format!(
        "{{\n  \"version\": 4,\n  \"terraform_version\": \"1.11.4\",\n  \"serial\": {serial},\n  \"lineage\": {},\n  \"outputs\": {{}},\n  \"resources\": [\n",
        q(lineage)
    )
}

const TAIL: &str = "\n  ],\n  \"check_results\": null\n}\n";

/// Writes a state of at least `target` bytes (the header of `serial`/`lineage` unless
/// `body_only`, which writes everything after it). Returns the resources written.
pub fn write_state(
    out: &mut impl Write,
    target: u64,
    serial: u64,
    lineage: &str,
    body_only: bool,
) -> io::Result<u64> {
    let head = state_head(serial, lineage);
    let blob = "IyEvYmluL3NoCmVjaG8gImJlbmNobWFyayBzdGF0ZSBmb3IgdGZlbnYiCg==".repeat(16);
    if !body_only {
        out.write_all(head.as_bytes())?;
    }
    let mut n = (head.len() + TAIL.len()) as u64;
    let mut r = 1;
    while n < target {
        let mut res = String::new();
        if r > 1 {
            res.push_str(",\n");
        }
        res.push_str(&format!(
            "    {{\n      \"mode\": \"managed\",\n      \"type\": \"terraform_data\",\n      \"name\": {},\n      \"provider\": \"provider[\\\"terraform.io/builtin/terraform\\\"]\",\n      \"instances\": [\n",
            q(&format!("r{r:06}"))
        ));
        for i in 0..4 {
            if i > 0 {
                res.push_str(",\n");
            }
            res.push_str(&instance(r, i, &blob));
        }
        res.push_str("\n      ]\n    }");
        out.write_all(res.as_bytes())?;
        n += res.len() as u64;
        r += 1;
    }
    out.write_all(TAIL.as_bytes())?;
    Ok(r - 1)
}

/// A random UUID from the kernel.
pub fn new_uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let h = format!("{nanos:032x}");
            format!(
                "{}-{}-4{}-a{}-{}",
                &h[0..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..32]
            )
        })
}

/// `git init` (quietly) in a generated project: a real project lives in git, and
/// `tfenv status` checks that state/ and .terraform/ are ignored.
pub fn git_init(dir: &Path) {
    let _ = std::process::Command::new("git")
        .args(["init", "-q"])
        .arg(dir)
        .status();
}

/// Makes a folder and its parents private (0700), as tfenv expects of state/.
pub fn private_dirs(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_state_is_valid_json_of_at_least_the_target_size() {
        let mut bytes = Vec::new();
        let resources = write_state(&mut bytes, 20_000, 7, "abc", false).unwrap();
        assert!(bytes.len() >= 20_000);
        let state: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(state["serial"], 7);
        assert_eq!(state["lineage"], "abc");
        assert_eq!(
            state["resources"].as_array().unwrap().len() as u64,
            resources
        );
        assert_eq!(
            state["resources"][0]["instances"].as_array().unwrap().len(),
            4
        );
    }

    #[test]
    fn head_plus_body_is_a_whole_state() {
        let mut body = Vec::new();
        write_state(&mut body, 5_000, 0, "", true).unwrap();
        let mut whole = state_head(3, "lin").into_bytes();
        whole.extend_from_slice(&body);
        let state: serde_json::Value = serde_json::from_slice(&whole).unwrap();
        assert_eq!(state["serial"], 3);
    }
}
