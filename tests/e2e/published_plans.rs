//! Plan bundles published to the shared ledger (DESIGN.md §10, §12) on s3 in a moto
//! server with the real terraform: `plan <env> --publish` in clone `a` uploads the bundle
//! to `<state key>.tfenv/plans/<ID>/`, `deploy <env> --plan ledger:<ID>` in clone `b` (same
//! commit) downloads and applies it after every bundle check. Nothing of either is left
//! under `state/<env>/`.

use std::process::Output;

use crate::bundles::{BUCKET, Clones, history};
use crate::support::moto::Moto;
use crate::support::running::RunningTfenv;
use crate::support::{expecting, stderr, stdout, stdout_json};

const PASSPHRASE: &str = "correct horse battery staple";

/// The folder of `env`'s published plans in the bucket.
fn plans(env: &str) -> String {
    format!("{env}/terraform.tfstate.tfenv/plans/")
}

/// The object names under `plans/<id>/` of `env`.
fn published_files(moto: &Moto, env: &str, id: &str) -> Vec<String> {
    let prefix = format!("{}{id}/", plans(env));
    moto.list_keys(BUCKET, &prefix)
        .into_iter()
        .map(|key| key.strip_prefix(&prefix).unwrap().to_string())
        .collect()
}

/// What `state/<env>/` of `clone` holds besides tfenv's usual files: the temporary
/// folders of a publish or a download, should one be left.
fn leftovers(clones: &Clones, clone: &str, env: &str) -> Vec<String> {
    let dir = clones.clone_dir(clone).join(format!("state/{env}"));
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(".publish") || name.starts_with(".published"))
                .collect()
        })
        .unwrap_or_default()
}

/// tfenv in `clone` with the environment variables `vars`.
fn tfenv_env(clones: &Clones, clone: &str, vars: &[(&str, &str)], args: &[&str]) -> Output {
    clones
        .project
        .tfenv_real()
        .current_dir(clones.clone_dir(clone))
        .envs(vars.iter().copied())
        .args(args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap()
}

fn serial(moto: &Moto, env: &str) -> Option<u64> {
    let state = moto.get_object(BUCKET, &format!("{env}/terraform.tfstate"))?;
    let state: serde_json::Value = serde_json::from_slice(&state).unwrap();
    state["serial"].as_u64()
}

#[test]
fn a_plan_published_in_one_clone_is_applied_from_another_by_its_id() {
    let moto = Moto::start();
    let clones = Clones::s3_ledger(&moto);
    let planned =
        stdout_json(&clones.run("a", &["plan", "dev", "--publish", "--output", "json"], 0));
    let published = &planned["published"];
    let id = published["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{planned}"));
    let commit = crate::support::git(&clones.clone_dir("a"), &["rev-parse", "HEAD"]);
    assert!(
        id.contains(&format!("-{}-", &commit.trim()[..7])),
        "the ID names the commit: {id}"
    );
    assert_eq!(
        published["location"],
        format!("s3://{BUCKET}/{}{id}/", plans("dev")).as_str(),
        "{planned}"
    );
    // Only published: there is no local bundle to name.
    assert!(planned.get("bundle").is_none(), "{planned}");
    assert_eq!(
        published_files(&moto, "dev", id),
        ["bundle.json", "plan.json", "terraform.plan"]
    );
    let meta = moto
        .get_object(BUCKET, &format!("{}{id}/bundle.json", plans("dev")))
        .unwrap();
    assert_eq!(
        published["sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&meta)).as_str()
    );
    assert!(leftovers(&clones, "a", "dev").is_empty());

    let plan = format!("ledger:{id}");
    let applied = stdout_json(&clones.run(
        "b",
        &[
            "deploy", "dev", "--plan", &plan, "--yes", "--output", "json",
        ],
        0,
    ));
    assert_eq!(applied["result"], "applied", "{applied}");
    assert_eq!(applied["bundle"]["dir"], plan.as_str(), "{applied}");
    assert_eq!(
        applied["bundle"]["sha256"], published["sha256"],
        "{applied}"
    );
    let record = history(&clones, "b", "dev");
    assert_eq!(record["result"], "applied", "{record}");
    assert_eq!(record["bundle"], published["sha256"], "{record}");
    assert!(serial(&moto, "dev").is_some(), "the state was written");
    assert!(leftovers(&clones, "b", "dev").is_empty());

    // The same plan again: the state moved on (by its own apply), so it is refused.
    let again = clones.tfenv("b", &["deploy", "dev", "--plan", &plan, "--yes"]);
    assert_eq!(again.status.code(), Some(5), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("plan bundle check `state lineage/serial` failed"),
        "{}",
        stderr(&again)
    );
    // A published plan is planned again by publishing one, not as a bundle folder.
    assert!(
        stderr(&again).contains("plan again with `tfenv plan dev --publish`"),
        "{}",
        stderr(&again)
    );
    assert!(leftovers(&clones, "b", "dev").is_empty());

    // Published, the plan says how to apply it here and how CI applies it.
    let planned = clones.run("a", &["plan", "dev", "--publish"], 0);
    let text = crate::support::stdout(&planned);
    let id = text
        .split("--plan ledger:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        text.contains(&format!(
            "or non-interactively (CI):\n  tfenv deploy dev --plan ledger:{id} --yes\n"
        )),
        "{text}"
    );
}

#[test]
fn a_plan_published_encrypted_leaves_no_clear_plan_in_the_bucket() {
    let moto = Moto::start();
    let clones = Clones::s3_ledger(&moto);
    let keys = [("TFENV_BUNDLE_PASSPHRASE", PASSPHRASE)];
    let output = expecting(
        tfenv_env(
            &clones,
            "a",
            &keys,
            &["plan", "staging", "--publish", "--encrypt"],
        ),
        0,
    );
    let out = stdout(&output);
    let line = out
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("tfenv deploy staging --plan ledger:")
        })
        .unwrap_or_else(|| panic!("the command to apply it:\n{out}"));
    let id = line.trim().rsplit("ledger:").next().unwrap().to_string();
    assert!(out.contains("its plan encrypted (age)"), "{out}");
    assert_eq!(
        published_files(&moto, "staging", &id),
        ["bundle.json", "plan.json.age", "terraform.plan.age"],
        "no clear terraform.plan nor plan.json"
    );
    assert!(leftovers(&clones, "a", "staging").is_empty());

    // Without the passphrase: refused; with it: applied.
    let plan = format!("ledger:{id}");
    let refused = clones.tfenv("b", &["deploy", "staging", "--plan", &plan, "--yes"]);
    assert_eq!(refused.status.code(), Some(5), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&format!(
            "plan bundle `{plan}` is encrypted with a passphrase"
        )),
        "{}",
        stderr(&refused)
    );
    expecting(
        tfenv_env(
            &clones,
            "b",
            &keys,
            &["deploy", "staging", "--plan", &plan, "--yes"],
        ),
        0,
    );
    assert_eq!(history(&clones, "b", "staging")["result"], "applied");
    assert!(leftovers(&clones, "b", "staging").is_empty());
}

#[test]
fn a_changed_published_plan_an_incomplete_one_and_an_unknown_id_are_refused() {
    let moto = Moto::start();
    let clones = Clones::s3_ledger(&moto);
    let planned =
        stdout_json(&clones.run("a", &["plan", "dev", "--publish", "--output", "json"], 0));
    let id = planned["published"]["id"].as_str().unwrap().to_string();

    // One byte of the plan object changed in the bucket.
    let key = format!("{}{id}/terraform.plan", plans("dev"));
    let mut bytes = moto.get_object(BUCKET, &key).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    moto.put_object(BUCKET, &key, &bytes);
    let output = clones.tfenv(
        "b",
        &["deploy", "dev", "--plan", &format!("ledger:{id}"), "--yes"],
    );
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("plan bundle check `sha256 of terraform.plan` failed"),
        "{}",
        stderr(&output)
    );
    assert_eq!(serial(&moto, "dev"), None, "nothing was applied");
    assert!(leftovers(&clones, "b", "dev").is_empty());

    // Objects without bundle.json: an upload that did not finish.
    let partial = "20261130T120000Z-0000000-abcdef";
    moto.put_object(
        BUCKET,
        &format!("{}{partial}/terraform.plan", plans("dev")),
        b"half",
    );
    let output = clones.tfenv(
        "b",
        &[
            "deploy",
            "dev",
            "--plan",
            &format!("ledger:{partial}"),
            "--yes",
        ],
    );
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("published plan `{partial}` is incomplete")),
        "{}",
        stderr(&output)
    );

    // An ID nobody published: a usage error listing the complete plans of the environment.
    let output = clones.tfenv(
        "b",
        &[
            "deploy",
            "dev",
            "--plan",
            "ledger:20200101T000000Z-1234567-000000",
            "--yes",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("no published plan `20200101T000000Z-1234567-000000`"),
        "{err}"
    );
    assert!(
        err.contains(&format!("the newest published plans of `dev`: {id};")),
        "{err}"
    );
    assert!(!err.contains(partial), "{err}");
    assert!(leftovers(&clones, "b", "dev").is_empty());
}

#[test]
fn publish_with_out_keeps_the_bundle_here_and_publishes_it() {
    let moto = Moto::start();
    let clones = Clones::s3_ledger(&moto);
    // `--out` and `--publish` together: kept here and published.
    let dir = clones.bundle("dev");
    let planned = stdout_json(&clones.run(
        "a",
        &[
            "plan",
            "dev",
            "--out",
            dir.to_str().unwrap(),
            "--publish",
            "--output",
            "json",
        ],
        0,
    ));
    let id = planned["published"]["id"].as_str().unwrap();
    assert_eq!(planned["bundle"]["sha256"], planned["published"]["sha256"]);
    assert!(dir.join("bundle.json").is_file());
    assert_eq!(published_files(&moto, "dev", id).len(), 3);
}

#[test]
fn an_upload_that_fails_exits_1_publishes_nothing_and_leaves_no_bundle_here() {
    let moto = Moto::start();
    let clones = Clones::s3_ledger(&moto);
    // terraform's last call before the upload (`show -json` of the plan, which reads only
    // the plan file) stops the server: the plan succeeds, its upload cannot.
    let stopping = clones.project.script(
        "bin/terraform",
        &format!(
            "if [ \"$1\" = show ]; then kill -9 -- -{pid}; fi\nexec '{real}' \"$@\"",
            pid = moto.pid(),
            real = crate::support::terraform().display()
        ),
    );
    let output = clones
        .project
        .tfenv_with(&stopping)
        .current_dir(clones.clone_dir("a"))
        .args(["plan", "dev", "--publish", "--output", "json"])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let doc = stdout_json(&output);
    let message = doc["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("publishing the plan as `")
            && message.contains("failed, so it is not published")
            && message.contains("`s3://tfstate-bundles/dev/terraform.tfstate.tfenv/plans/"),
        "{doc}"
    );
    assert!(
        !stdout(&output).contains("--plan ledger:"),
        "no command to apply it"
    );
    assert!(leftovers(&clones, "a", "dev").is_empty());
}

#[test]
fn the_downloaded_plan_is_private_and_gone_after_a_failed_or_interrupted_apply() {
    let moto = Moto::start();
    let clones = Clones::s3_ledger(&moto);
    let planned =
        stdout_json(&clones.run("a", &["plan", "dev", "--publish", "--output", "json"], 0));
    let plan = format!("ledger:{}", planned["published"]["id"].as_str().unwrap());
    // terraform's apply, replaced: it notes the downloaded folder's and files' modes, then
    // fails or waits.
    let modes = clones.project.join("modes.txt");
    let wrapper = |name: &str, then: &str| {
        clones.project.script(
            &format!("bin/{name}/terraform"),
            &format!(
                "if [ \"$1\" = apply ]; then\n  stat -c '%a %n' state/dev/.published-*/ state/dev/.published-*/* >> '{modes}'\n  {then}\nfi\nexec '{real}' \"$@\"",
                modes = modes.display(),
                real = crate::support::terraform().display()
            ),
        )
    };
    let deploy = ["deploy", "dev", "--plan", &plan, "--yes"];
    let failing = wrapper("failing", "echo 'apply failed' >&2; exit 1");
    let output = clones
        .project
        .tfenv_with(&failing)
        .current_dir(clones.clone_dir("b"))
        .args(deploy)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let seen = std::fs::read_to_string(&modes).unwrap();
    let seen: Vec<&str> = seen.lines().collect();
    assert_eq!(seen.len(), 4, "the folder and its three files: {seen:?}");
    assert!(seen[0].starts_with("700 "), "{seen:?}");
    assert!(seen[1..].iter().all(|l| l.starts_with("600 ")), "{seen:?}");
    assert!(leftovers(&clones, "b", "dev").is_empty());

    let waiting = wrapper("waiting", "echo 'APPLY WAITING' >&2; exec sleep 60");
    let mut command = clones.project.command();
    command
        .current_dir(clones.clone_dir("b"))
        .arg("--terraform")
        .arg(&waiting)
        .args(deploy);
    let mut running = RunningTfenv::spawn(command);
    running.wait_for_stderr("APPLY WAITING", std::time::Duration::from_secs(60));
    assert_eq!(leftovers(&clones, "b", "dev").len(), 1, "downloaded");
    running.interrupt();
    assert!(
        leftovers(&clones, "b", "dev").is_empty(),
        "removed after Ctrl-C"
    );
}
