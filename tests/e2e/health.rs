//! `tfenv status` as a health check with the real terraform (DESIGN.md §11): two
//! environments that share a lineage after a restore across environments, and an s3
//! state bucket on moto without object versioning — each shown to clear after its fix.

use std::time::Duration;

use serde_json::Value;

use crate::support::moto::Moto;
use crate::support::{Project, expecting, stdout_json};

fn codes(env: &Value) -> Vec<String> {
    env["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("{env}"))
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_string())
        .collect()
}

fn backup(project: &Project, env: &str) -> String {
    let output = expecting(
        project
            .tfenv_real()
            .args(["backup", env, "--output", "json"])
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap(),
        0,
    );
    stdout_json(&output)["backups"][0]["backup"]["file"]
        .as_str()
        .unwrap()
        .to_string()
}

fn restore(project: &Project, env: &str, source: &str) {
    expecting(
        project
            .tfenv_real()
            .args(["restore", env, source, "--yes", "--force"])
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap(),
        0,
    );
}

#[test]
fn a_restore_across_environments_is_shared_lineage_until_the_environments_own_state_is_back() {
    let project = Project::demo();
    for env in ["dev", "staging"] {
        expecting(
            project
                .tfenv_real()
                .args(["deploy", env, "--yes"])
                .timeout(Duration::from_secs(120))
                .output()
                .unwrap(),
            0,
        );
    }
    let dev_backup = backup(&project, "dev");
    let staging_backup = backup(&project, "staging");
    let status = |code: i32| {
        let output = project
            .tfenv_real()
            .args(["status", "dev", "staging", "--output", "json"])
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        stdout_json(&expecting(output, code))
    };
    let json = status(0);
    assert_ne!(
        json["environments"][0]["state"]["lineage"],
        json["environments"][1]["state"]["lineage"]
    );

    // dev's backup restored into staging, forced past the lineage check.
    restore(
        &project,
        "staging",
        &format!("state/dev/backups/{dev_backup}"),
    );
    let json = status(6);
    for (i, other) in [(0, "staging"), (1, "dev")] {
        let env = &json["environments"][i];
        assert_eq!(codes(env), ["shared-lineage"], "{env:#}");
        let problem = &env["problems"][0];
        let message = problem["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("the lineage of `{other}`'s")),
            "{message}"
        );
        // Both point at staging, the one the restore overwrote (history says so).
        assert_eq!(problem["fix"], "tfenv backups staging", "{message}");
    }
    let message = |i: usize| {
        json["environments"][i]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // staging is told the restore that replaced its state, and a restore that works:
    // its own state has another lineage, so `--force`.
    assert!(
        message(1).contains(&format!(
            "`tfenv restore staging state/dev/backups/{dev_backup}` ("
        )) && message(1).contains("`tfenv restore staging <BACKUP> --force`"),
        "{}",
        message(1)
    );
    // dev, untouched, is not told to restore itself.
    assert!(
        !message(0).contains("tfenv restore dev") && message(0).contains("restore `staging`"),
        "{}",
        message(0)
    );
    let human = project
        .tfenv_real()
        .args(["status", "dev", "staging"])
        .output()
        .unwrap();
    let text = crate::support::stdout(&human);
    assert!(text.contains("    fix: tfenv backups staging"), "{text}");

    // staging's own state back (another lineage than what it holds now: forced).
    restore(&project, "staging", &staging_backup);
    let json = status(0);
    assert_eq!(codes(&json["environments"][1]), Vec::<String>::new());
}

#[test]
fn an_s3_bucket_without_versioning_is_versioning_off_asked_once_until_versioning_is_on() {
    let moto = Moto::start();
    let bucket = "tfstate-unversioned";
    moto.create_bucket_without_versioning(bucket);
    moto.create_lock_table("tf-locks-health");
    let project = Project::empty();
    project.write("main.tf", "terraform {\n  backend \"s3\" {}\n}\n");
    let mut toml = String::new();
    for env in ["dev", "qa"] {
        toml.push_str(&format!(
            "[environments.{env}]\nbackend_config = \"{env}.backend.conf\"\n"
        ));
        project.write(
            &format!("{env}.backend.conf"),
            &moto.backend_conf(
                bucket,
                &format!("{env}/terraform.tfstate"),
                "tf-locks-health",
            ),
        );
    }
    project.write("tfenv.toml", &toml);
    for env in ["dev", "qa"] {
        expecting(
            project
                .tfenv_real()
                .args(["init", env])
                .timeout(Duration::from_secs(120))
                .output()
                .unwrap(),
            0,
        );
    }
    let status = |code: i32| {
        moto.requests_during(|| {
            let output = project
                .tfenv_real()
                .args(["status", "--output", "json"])
                .timeout(Duration::from_secs(120))
                .output()
                .unwrap();
            stdout_json(&expecting(output, code))
        })
    };

    let (json, requests) = status(6);
    // At the backend config's endpoint and region: without them the command would go
    // to real AWS.
    let enable = format!(
        "aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled --endpoint-url {} --region us-east-1",
        moto.endpoint()
    );
    for env in json["environments"].as_array().unwrap() {
        assert_eq!(codes(env), ["versioning-off"], "{env:#}");
        let name = env["name"].as_str().unwrap();
        assert_eq!(
            env["problems"][0]["fix"],
            format!("tfenv bootstrap {name} --fix")
        );
        let message = env["problems"][0]["message"].as_str().unwrap();
        assert!(message.contains(&format!("(or `{enable}`)")), "{message}");
        assert!(
            message.contains(&format!(
                "`s3://{bucket}`, where its state is, keeps no object versions"
            )),
            "{env:#}"
        );
    }
    // Two environments in one bucket: one GetBucketVersioning.
    let asked: Vec<String> = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("versioning"))
        .map(|r| r.to_string())
        .collect();
    assert_eq!(asked.len(), 1, "{asked:?}");

    moto.set_versioning(bucket, true);
    let (json, _) = status(0);
    assert_eq!(json["healthy"], true, "{json:#}");

    // Suspended: still versioning-off, said as it is.
    moto.set_versioning(bucket, false);
    let (json, _) = status(6);
    for env in json["environments"].as_array().unwrap() {
        assert_eq!(codes(env), ["versioning-off"], "{env:#}");
        let message = env["problems"][0]["message"].as_str().unwrap();
        assert!(
            message.contains(
                "has versioning suspended (the old versions are kept, new writes are not versioned)"
            ),
            "{message}"
        );
    }
    moto.set_versioning(bucket, true);
    assert_eq!(status(0).0["healthy"], true);
}
