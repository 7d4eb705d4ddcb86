//! Micro-benchmarks of tfenv's hot paths, without any process (divan):
//! - reading a state's header (serial, lineage, resource counts), streamed and from memory;
//! - checking a backup against its MANIFEST.jsonl line (SHA-256 + header), as `verify` does;
//! - summarizing `terraform show -json` of a plan.
//!
//! `cargo bench --bench hot_paths` measures; `cargo test` runs each once.

use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::BytesCount;
use serde_json::{Value, json};
use tfenv::bench_api::{Backup, read_header, read_header_slice, summarize, verify};

fn main() {
    divan::main();
}

/// A state in terraform's layout of about `mb` MB: `terraform_data` resources of 4
/// instances each, ~2.4 KB per instance.
fn generate_state(mb: usize) -> Vec<u8> {
    let blob = "IyEvYmluL3NoCmVjaG8gImJlbmNobWFyayBzdGF0ZSBmb3IgdGZlbnYiCg==".repeat(16);
    let resources: Vec<Value> = (0..mb * 105)
        .map(|r| {
            let instances: Vec<Value> = (0..4)
                .map(|i| {
                    let mut map = serde_json::Map::new();
                    for key in ["name", "owner", "team", "region", "subnet_id", "ami"] {
                        map.insert(key.into(), json!(format!("bench-{key}-{r}-{i}")));
                    }
                    map.insert("user_data".into(), json!(blob));
                    json!({
                        "index_key": i,
                        "schema_version": 0,
                        "attributes": {
                            "id": format!("{r:08x}-{i:04x}"),
                            "input": { "value": map, "type": ["map", "string"] },
                            "output": { "value": map, "type": ["map", "string"] },
                            "triggers_replace": null
                        },
                        "sensitive_attributes": []
                    })
                })
                .collect();
            json!({
                "mode": "managed",
                "type": "terraform_data",
                "name": format!("r{r:06}"),
                "provider": "provider[\"terraform.io/builtin/terraform\"]",
                "instances": instances
            })
        })
        .collect();
    let state = json!({
        "version": 4,
        "terraform_version": "1.11.4",
        "serial": 7,
        "lineage": "5d1e0c3a-6f0b-4a8e-9d7c-0123456789ab",
        "outputs": {},
        "resources": resources,
        "check_results": null
    });
    serde_json::to_vec_pretty(&state).expect("a state")
}

static STATE_1MB: LazyLock<Vec<u8>> = LazyLock::new(|| generate_state(1));
static STATE_8MB: LazyLock<Vec<u8>> = LazyLock::new(|| generate_state(8));

fn state(mb: usize) -> &'static [u8] {
    if mb <= 1 { &STATE_1MB } else { &STATE_8MB }
}

/// `tfenv backup` and `status` on a streamed state (`terraform state pull`'s pipe).
#[divan::bench(args = [1, 8])]
fn state_header_streamed(bencher: Bencher, mb: usize) {
    let bytes = state(mb);
    bencher.counter(BytesCount::new(bytes.len())).bench(|| {
        let header = read_header(divan::black_box(bytes)).expect("a state");
        assert_eq!(header.expect("not empty").serial, 7);
    });
}

/// `tfenv status` on a local state file read whole.
#[divan::bench(args = [1, 8])]
fn state_header_in_memory(bencher: Bencher, mb: usize) {
    let bytes = state(mb);
    bencher.counter(BytesCount::new(bytes.len())).bench(|| {
        let header = read_header_slice(divan::black_box(bytes)).expect("a state");
        assert_eq!(header.expect("not empty").serial, 7);
    });
}

/// `tfenv verify` of one backup: read it, SHA-256 it, check its header against the
/// manifest line.
#[divan::bench(args = [1, 8])]
fn verify_backup_against_manifest(bencher: Bencher, mb: usize) {
    use sha2::{Digest, Sha256};
    let bytes = state(mb);
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = "terraform.tfstate.20261122-101500";
    std::fs::write(dir.path().join(file), bytes).expect("a backup");
    let line = json!({
        "file": file,
        "sha256": hex::encode(Sha256::digest(bytes)),
        "bytes": bytes.len(),
        "serial": 7,
        "lineage": "5d1e0c3a-6f0b-4a8e-9d7c-0123456789ab",
        "terraform_version": "1.11.4",
        "created": "2026-11-22T10:15:00Z",
        "reason": "manual"
    });
    let backup: Backup = serde_json::from_value(line).expect("a manifest line");
    bencher
        .counter(BytesCount::new(bytes.len()))
        .bench(|| verify(dir.path(), divan::black_box(&backup)).expect("a good backup"));
}

/// `terraform show -json` of a plan touching `n` resources (creates, updates, deletes,
/// replacements, no-ops) and 10 outputs.
fn generate_plan(n: usize) -> Vec<u8> {
    let actions = [
        json!(["create"]),
        json!(["update"]),
        json!(["delete"]),
        json!(["delete", "create"]),
        json!(["no-op"]),
    ];
    let changes: Vec<Value> = (0..n)
        .map(|i| {
            let attrs = json!({ "id": format!("id-{i}"), "input": { "name": format!("r{i}"), "tags": { "team": "bench", "cost": i } } });
            json!({
                "address": format!("terraform_data.r{i}"),
                "mode": "managed",
                "type": "terraform_data",
                "name": format!("r{i}"),
                "provider_name": "terraform.io/builtin/terraform",
                "change": {
                    "actions": actions[i % actions.len()],
                    "before": attrs,
                    "after": attrs,
                    "after_unknown": { "id": true },
                    "before_sensitive": {},
                    "after_sensitive": {}
                }
            })
        })
        .collect();
    let outputs: serde_json::Map<String, Value> = (0..10)
        .map(|i| {
            let actions = if i % 2 == 0 {
                json!(["update"])
            } else {
                json!(["no-op"])
            };
            (
                format!("out{i}"),
                json!({ "actions": actions, "before": i, "after": i + 1 }),
            )
        })
        .collect();
    serde_json::to_vec(&json!({
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "resource_changes": changes,
        "output_changes": outputs,
        "resource_drift": []
    }))
    .expect("a plan")
}

#[divan::bench(args = [10, 1000])]
fn plan_summary(bencher: Bencher, resources: usize) {
    let json = generate_plan(resources);
    bencher.counter(BytesCount::new(json.len())).bench(|| {
        let summary = summarize(divan::black_box(&json)).expect("a plan");
        assert_eq!(summary.outputs, 5);
    });
}
