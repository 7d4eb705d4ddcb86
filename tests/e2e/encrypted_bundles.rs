//! Encrypted plan bundles with the real terraform (issue 16, DESIGN.md §10): `plan --out
//! DIR --encrypt` in one clone, `deploy --plan DIR` in another with the key from the
//! environment. No sensitive value is readable in any file of the bundle nor left under
//! `state/<env>/`; a missing or wrong key and a changed byte are refused (exit 5); the
//! clear plan file the apply needs is gone after a failed or interrupted apply.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use age::secrecy::ExposeSecret;

use crate::bundles::Clones;
use crate::support::running::RunningTfenv;
use crate::support::snap::Snapshots;
use crate::support::{self, expecting, stderr, stdout_json};

/// The sensitive value: a variable set only in the git-ignored local.tfvars, kept in a
/// sensitive output and a resource.
const TOKEN: &str = "tok-7f3a9c-this-is-the-api-token";

const SECRET_TF: &str = r#"
variable "api_token" {
  type      = string
  sensitive = true
}

resource "terraform_data" "token" {
  input = var.api_token
}

output "api_token" {
  value     = var.api_token
  sensitive = true
}
"#;

fn clones() -> Clones {
    Clones::local_with(SECRET_TF, &format!("api_token = \"{TOKEN}\"\n"))
}

/// An age key pair: the identity file (age-keygen's format) and the public key.
fn key(clones: &Clones, name: &str) -> (PathBuf, String) {
    let identity = age::x25519::Identity::generate();
    let public = identity.to_public().to_string();
    let file = clones.project.write(
        &format!("keys/{name}.txt"),
        &format!(
            "# public key: {public}\n{}\n",
            identity.to_string().expose_secret()
        ),
    );
    (file, public)
}

/// tfenv in `clone` with `env` set, through `terraform` (the real one by default).
fn tfenv_in(
    clones: &Clones,
    clone: &str,
    terraform: Option<&Path>,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let mut cmd = match terraform {
        Some(terraform) => clones.project.tfenv_with(terraform),
        None => clones.project.tfenv_real(),
    };
    cmd.current_dir(clones.clone_dir(clone))
        .envs(env.iter().copied())
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap()
}

/// Every file under `dir` (recursively) whose content holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if String::from_utf8_lossy(&std::fs::read(&path).unwrap()).contains(needle) {
            found.push(path);
        }
    }
    found
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn assert_refused(output: &Output, needles: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(5), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle} in:\n{err}");
    }
}

#[test]
fn an_encrypted_bundle_round_trips_to_another_clone_with_no_secret_readable_in_it() {
    let clones = clones();
    let (identity, public) = key(&clones, "ci");
    let dir = clones.bundle("dev");
    let planned = stdout_json(&expecting(
        tfenv_in(
            &clones,
            "a",
            None,
            &[],
            &[
                "plan",
                "dev",
                "--out",
                dir.to_str().unwrap(),
                "--encrypt",
                "--recipient",
                &public,
                "--output",
                "json",
            ],
        ),
        0,
    ));
    assert_eq!(planned["bundle"]["encrypted"], true, "{planned}");
    assert_eq!(
        names(&dir),
        ["bundle.json", "plan.json.age", "terraform.plan.age"]
    );
    // The secret is nowhere in the bundle, nor left in the planning clone's state/.
    assert_eq!(files_holding(&dir, TOKEN), Vec::<PathBuf>::new());
    assert_eq!(
        files_holding(&clones.clone_dir("a").join("state"), TOKEN),
        Vec::<PathBuf>::new()
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(meta["format"], 2);
    assert_eq!(meta["encryption"]["to"], "recipients");
    assert_eq!(meta["encryption"]["recipients"][0], public.as_str());
    assert_eq!(meta["summary"]["add"], 2, "{meta}");
    // The age files are age's format: the age CLI decrypts them too.
    let head = std::fs::read(dir.join("plan.json.age")).unwrap();
    assert!(head.starts_with(b"age-encryption.org/v1\n"));

    // Clone b applies it with the identity file; the clear plan is applied from b's
    // state/dev/ and gone afterwards.
    let (wrapper, calls) = support::recording_wrapper(&clones.project, &support::terraform());
    let applied = stdout_json(&expecting(
        tfenv_in(
            &clones,
            "b",
            Some(&wrapper),
            &[("TFENV_BUNDLE_IDENTITY", identity.to_str().unwrap())],
            &[
                "deploy",
                "dev",
                "--plan",
                dir.to_str().unwrap(),
                "--yes",
                "--output",
                "json",
            ],
        ),
        0,
    ));
    assert_eq!(applied["result"], "applied", "{applied}");
    assert_eq!(applied["bundle"]["encrypted"], true, "{applied}");
    let calls = std::fs::read_to_string(calls).unwrap();
    let clear = clones.clone_dir("b").join("state/dev/terraform.plan");
    let apply = format!("apply -no-color -input=false {}", clear.display());
    assert!(calls.lines().any(|c| c == apply), "{calls}");
    assert!(!calls.lines().any(|c| c.starts_with("plan ")), "{calls}");
    assert!(!clear.exists());
    let state = String::from_utf8(clones.shared_state("dev").unwrap()).unwrap();
    assert!(state.contains(TOKEN), "the apply used the real value");
    assert_eq!(
        files_holding(&clones.clone_dir("b").join("state"), TOKEN),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn a_passphrase_bundle_round_trips_and_a_wrong_passphrase_is_refused() {
    let clones = clones();
    let dir = clones.bundle("dev");
    let dir = dir.to_str().unwrap();
    let pass = [("TFENV_BUNDLE_PASSPHRASE", "correct horse battery staple")];
    let mut snapshots = Snapshots::new(&clones.project);
    snapshots.real_terraform(&support::terraform());
    // Relative: the command line is the snapshot's description.
    let args = [
        "plan",
        "dev",
        "--out",
        "../bundles/dev",
        "--encrypt",
        "--output",
        "json",
    ];
    snapshots.json(
        "json-plan-out-encrypted",
        &args,
        &expecting(tfenv_in(&clones, "a", None, &pass, &args), 0),
    );
    let meta = std::fs::read_to_string(Path::new(dir).join("bundle.json")).unwrap();
    assert!(meta.contains("\"to\": \"passphrase\""), "{meta}");
    assert!(!meta.contains("correct horse"), "{meta}");
    assert_eq!(files_holding(Path::new(dir), TOKEN), Vec::<PathBuf>::new());

    let deploy = ["deploy", "dev", "--plan", dir, "--yes"];
    let output = tfenv_in(
        &clones,
        "b",
        None,
        &[("TFENV_BUNDLE_PASSPHRASE", "wrong")],
        &deploy,
    );
    assert_refused(&output, &["TFENV_BUNDLE_PASSPHRASE does not decrypt"]);
    assert_eq!(clones.shared_state("dev"), None);
    let output = expecting(tfenv_in(&clones, "b", None, &pass, &deploy), 0);
    assert!(
        support::stdout(&output).contains("Applied to `dev`"),
        "{}",
        support::stdout(&output)
    );
    assert!(
        !clones
            .clone_dir("b")
            .join("state/dev/terraform.plan")
            .exists()
    );
}

#[test]
fn a_missing_or_wrong_identity_and_a_changed_byte_are_refused_and_change_nothing() {
    let clones = clones();
    let (identity, public) = key(&clones, "ci");
    let (other, other_public) = key(&clones, "other");
    let dir = clones.bundle("dev");
    let dir_arg = dir.to_str().unwrap();
    expecting(
        tfenv_in(
            &clones,
            "a",
            None,
            &[("TFENV_BUNDLE_RECIPIENTS", &format!(" {public},"))],
            &["plan", "dev", "--out", dir_arg, "--encrypt"],
        ),
        0,
    );
    let deploy = ["deploy", "dev", "--plan", dir_arg, "--yes"];

    let output = tfenv_in(&clones, "b", None, &[], &deploy);
    assert_refused(
        &output,
        &[
            "TFENV_BUNDLE_IDENTITY is not set",
            &public,
            "set TFENV_BUNDLE_IDENTITY",
        ],
    );
    let output = tfenv_in(
        &clones,
        "b",
        None,
        &[("TFENV_BUNDLE_IDENTITY", other.to_str().unwrap())],
        &deploy,
    );
    assert_refused(&output, &["is not a recipient", &other_public, &public]);
    let record = crate::bundles::history(&clones, "b", "dev");
    assert_eq!(record["result"], "refused", "{record}");

    // One flipped byte of the encrypted plan: refused by its checksum, key or not.
    let file = dir.join("terraform.plan.age");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let output = tfenv_in(
        &clones,
        "b",
        None,
        &[("TFENV_BUNDLE_IDENTITY", identity.to_str().unwrap())],
        &deploy,
    );
    assert_refused(
        &output,
        &["plan bundle check `sha256 of terraform.plan.age` failed"],
    );
    assert_eq!(clones.shared_state("dev"), None);
    assert!(
        !clones
            .clone_dir("b")
            .join("state/dev/terraform.plan")
            .exists()
    );
}

#[test]
fn a_failed_or_interrupted_apply_leaves_no_clear_plan_file() {
    let clones = clones();
    let (identity, public) = key(&clones, "ci");
    let dir = clones.bundle("dev");
    let dir_arg = dir.to_str().unwrap();
    expecting(
        tfenv_in(
            &clones,
            "a",
            None,
            &[],
            &[
                "plan",
                "dev",
                "--out",
                dir_arg,
                "--encrypt",
                "--recipient",
                &public,
            ],
        ),
        0,
    );
    // terraform's apply, replaced: it notes the plan file's mode, then fails or waits.
    let modes = clones.project.join("modes.txt");
    let real = support::terraform();
    let wrapper = |name: &str, then: &str| {
        clones.project.script(
            &format!("bin/{name}/terraform"),
            &format!(
                "if [ \"$1\" = apply ]; then\n  stat -c %a \"${{@: -1}}\" >> '{}'\n  {then}\nfi\nexec '{}' \"$@\"",
                modes.display(),
                real.display()
            ),
        )
    };
    let clear = clones.clone_dir("b").join("state/dev/terraform.plan");
    let keys = [("TFENV_BUNDLE_IDENTITY", identity.to_str().unwrap())];
    let deploy = ["deploy", "dev", "--plan", dir_arg, "--yes"];

    let failing = wrapper("failing", "echo 'apply failed' >&2; exit 1");
    let output = tfenv_in(&clones, "b", Some(&failing), &keys, &deploy);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&modes).unwrap(), "600\n");
    assert!(!clear.exists(), "the clear plan is removed after a failure");

    let waiting = wrapper("waiting", "echo 'APPLY WAITING' >&2; exec sleep 60");
    let mut command = clones.project.command();
    command
        .current_dir(clones.clone_dir("b"))
        .envs(keys.iter().copied())
        .arg("--terraform")
        .arg(&waiting)
        .args(deploy);
    let mut running = RunningTfenv::spawn(command);
    running.wait_for_stderr("APPLY WAITING", Duration::from_secs(60));
    assert!(clear.is_file(), "the apply reads the clear plan");
    running.interrupt();
    assert!(!clear.exists(), "the clear plan is removed after Ctrl-C");
    assert_eq!(std::fs::read_to_string(&modes).unwrap(), "600\n600\n");
    assert_eq!(clones.shared_state("dev"), None);
}
