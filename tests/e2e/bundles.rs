//! Plan bundles with the real terraform (DESIGN.md §10): `plan --out DIR` in one clone of
//! a repository, `deploy --plan DIR` in another clone of the same commit (a fresh data
//! dir: init first), on the local backend (a state file both clones share) and on s3 in
//! a moto server. Every check `deploy --plan` makes refuses with exit 5, naming the check
//! and both values, and leaves the state as it was.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use sha2::Digest;

use crate::support::moto::Moto;
use crate::support::snap::Snapshots;
use crate::support::{self, Project, expecting, stderr, stdout_json};

/// A repository (`origin/`, committed) with dev, staging and production of a module with
/// `var.n` terraform_data instances holding `var.message`, cloned twice (`a/`, `b/`).
/// Each environment's state is shared by both clones: a local state file outside them
/// (`shared/<env>.tfstate`) or an s3 object. `environments/local.tfvars` is ignored by
/// git, written in each clone: a var file that never reaches the repository.
pub(crate) struct Clones {
    pub(crate) project: Project,
}

pub(crate) const BUCKET: &str = "tfstate-bundles";
const TABLE: &str = "tf-locks-bundles";

impl Clones {
    pub(crate) fn local() -> Clones {
        Clones::local_with("", "")
    }

    /// `local()` with `extra` appended to main.tf and `vars` to each clone's (git-ignored)
    /// `environments/local.tfvars`: a secret that never reaches the repository.
    pub(crate) fn local_with(extra: &str, vars: &str) -> Clones {
        Clones::new_with(
            |project, env| {
                format!(
                    "path = \"{}\"\n",
                    project.join(&format!("shared/{env}.tfstate")).display()
                )
            },
            extra,
            vars,
            "",
        )
    }

    fn s3(moto: &Moto) -> Clones {
        Clones::s3_with(moto, "")
    }

    /// `s3()` with `[project] ledger = "backend"`: the shared ledger beside each state.
    pub(crate) fn s3_ledger(moto: &Moto) -> Clones {
        Clones::s3_with(moto, "ledger = \"backend\"\n")
    }

    fn s3_with(moto: &Moto, project_lines: &str) -> Clones {
        moto.create_bucket(BUCKET);
        moto.create_lock_table(TABLE);
        Clones::new_with(
            |_, env| moto.backend_conf(BUCKET, &format!("{env}/terraform.tfstate"), TABLE),
            "",
            "",
            project_lines,
        )
    }

    fn new_with(
        backend_conf: impl Fn(&Project, &str) -> String,
        extra: &str,
        vars: &str,
        project_lines: &str,
    ) -> Clones {
        let project = Project::empty();
        let mut toml = format!("[project]\nstate_dir = \"state\"\n{project_lines}");
        for env in ["dev", "staging", "production"] {
            toml.push_str(&format!(
                "\n[environments.{env}]\nbackend_config = \"environments/{env}.backend.conf\"\nvar_files = [\"environments/{env}.tfvars\", \"environments/local.tfvars\"]\n"
            ));
            project.write(
                &format!("origin/environments/{env}.backend.conf"),
                &backend_conf(&project, env),
            );
            project.write(
                &format!("origin/environments/{env}.tfvars"),
                "message = \"one\"\nn = 1\n",
            );
        }
        let backend = if backend_conf(&project, "dev").contains("bucket") {
            "s3"
        } else {
            "local"
        };
        project.write("origin/tfenv.toml", &toml);
        project.write(
            "origin/main.tf",
            &format!(
                r#"terraform {{
  backend "{backend}" {{}}
}}

variable "message" {{
  type = string
}}

variable "n" {{
  type = number
}}

variable "extra" {{
  type    = string
  default = ""
}}

resource "terraform_data" "x" {{
  count = var.n
  input = "${{var.message}}${{var.extra}}"
}}

output "message" {{
  value = var.message
}}
{extra}"#
            ),
        );
        project.write(
            "origin/.gitignore",
            "state/\n.terraform/\nenvironments/local.tfvars\n",
        );
        project.git(&["init", "-q", "origin"]);
        let origin = project.join("origin");
        support::git(&origin, &["add", "-A"]);
        support::git(&origin, &["commit", "-q", "-m", "one"]);
        for clone in ["a", "b"] {
            project.git(&["clone", "-q", "origin", clone]);
            project.write(
                &format!("{clone}/environments/local.tfvars"),
                &format!("extra = \"\"\n{vars}"),
            );
        }
        Clones { project }
    }

    pub(crate) fn clone_dir(&self, clone: &str) -> PathBuf {
        self.project.join(clone)
    }

    /// `tfenv --terraform <real> <args>` in `clone`.
    pub(crate) fn tfenv(&self, clone: &str, args: &[&str]) -> Output {
        self.project
            .tfenv_real()
            .current_dir(self.clone_dir(clone))
            .args(args)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap()
    }

    /// The local state of `env`, as bytes (`None`: none yet).
    pub(crate) fn shared_state(&self, env: &str) -> Option<Vec<u8>> {
        self.local_state(env)
    }

    pub(crate) fn run(&self, clone: &str, args: &[&str], code: i32) -> Output {
        expecting(self.tfenv(clone, args), code)
    }

    /// Where a bundle is written: outside both clones.
    pub(crate) fn bundle(&self, name: &str) -> PathBuf {
        self.project.join(&format!("bundles/{name}"))
    }

    /// `plan <env> --out bundles/<name>` in `clone`; the bundle's folder.
    pub(crate) fn plan(&self, clone: &str, env: &str, name: &str) -> PathBuf {
        let dir = self.bundle(name);
        self.run(clone, &["plan", env, "--out", dir.to_str().unwrap()], 0);
        dir
    }

    pub(crate) fn write(&self, rel: &str, text: &str) {
        self.project.write(rel, text);
    }

    /// A commit of everything in `clone`.
    pub(crate) fn commit(&self, clone: &str, message: &str) {
        let dir = self.clone_dir(clone);
        support::git(&dir, &["add", "-A"]);
        support::git(&dir, &["commit", "-q", "-m", message]);
    }

    /// The local state of `env`, as bytes (`None`: none yet).
    fn local_state(&self, env: &str) -> Option<Vec<u8>> {
        std::fs::read(self.project.join(&format!("shared/{env}.tfstate"))).ok()
    }

    /// `b` takes the commits made in `a`.
    pub(crate) fn pull_into_b(&self) {
        support::git(&self.clone_dir("b"), &["pull", "-q", "../a", "HEAD"]);
    }
}

/// The last history record of `env` in `clone`.
pub(crate) fn history(clones: &Clones, clone: &str, env: &str) -> serde_json::Value {
    let bytes = std::fs::read(
        clones
            .project
            .join(&format!("{clone}/state/{env}/history.jsonl")),
    )
    .unwrap();
    let line = bytes
        .split(|b| *b == b'\n')
        .rfind(|l| !l.is_empty())
        .unwrap();
    serde_json::from_slice(line).unwrap()
}

fn serial(state: &[u8]) -> u64 {
    let state: serde_json::Value = serde_json::from_slice(state).unwrap();
    state["serial"].as_u64().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn sha256_of(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn state_message(state: &[u8]) -> String {
    let state: serde_json::Value = serde_json::from_slice(state).unwrap();
    state["outputs"]["message"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Asserts a refusal (exit 5) whose message names `check`, and each of `values`.
fn assert_refused(output: &Output, check: &str, values: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(5), "{err}");
    assert!(
        err.contains(&format!("plan bundle check `{check}` failed: expected `")),
        "{err}"
    );
    for value in values {
        assert!(err.contains(value), "{value} in:\n{err}");
    }
}

#[test]
fn a_bundle_planned_in_one_clone_is_applied_in_another() {
    let clones = Clones::local();
    let dir = clones.bundle("dev");
    let planned = stdout_json(&clones.run(
        "a",
        &[
            "plan",
            "dev",
            "--out",
            dir.to_str().unwrap(),
            "--output",
            "json",
        ],
        0,
    ));
    assert_eq!(mode(&dir), 0o700);
    for name in ["terraform.plan", "plan.json", "bundle.json"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    let bundle_sha = sha256_of(&dir.join("bundle.json"));
    assert_eq!(
        planned["bundle"]["sha256"],
        bundle_sha.as_str(),
        "{planned}"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(meta["format"], 1);
    assert_eq!(meta["environment"], "dev");
    assert_eq!(meta["git"]["dirty"], false);
    assert_eq!(
        meta["git"]["commit"],
        support::git(&clones.clone_dir("a"), &["rev-parse", "HEAD"]).trim()
    );
    // Paths relative to the project root: the bundle is applied from another clone.
    assert_eq!(meta["var_files"][0]["path"], "environments/dev.tfvars");
    assert_eq!(meta["state"], serde_json::Value::Null);
    assert_eq!(meta["summary"]["add"], 1);
    assert_eq!(
        meta["sha256"]["terraform.plan"],
        sha256_of(&dir.join("terraform.plan")).as_str()
    );
    assert!(
        !clones.clone_dir("b").join(".terraform").exists(),
        "clone b starts with no data dir"
    );

    // Through a wrapper that records every terraform call: init, apply, never a plan.
    let (wrapper, calls) = support::recording_wrapper(&clones.project, &support::terraform());
    let output = clones
        .project
        .tfenv_with(&wrapper)
        .current_dir(clones.clone_dir("b"))
        .args([
            "deploy",
            "dev",
            "--plan",
            dir.to_str().unwrap(),
            "--yes",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let applied = stdout_json(&expecting(output, 0));
    let calls = std::fs::read_to_string(calls).unwrap();
    assert!(calls.lines().any(|c| c.starts_with("init ")), "{calls}");
    assert!(!calls.lines().any(|c| c.starts_with("plan ")), "{calls}");
    // The plan applied is the bundle's, as checked: copied to a private file of clone b.
    let checked_plan = format!(
        "apply -no-color -input=false {}",
        clones
            .clone_dir("b")
            .join("state/dev/terraform.plan")
            .display()
    );
    assert!(calls.lines().any(|c| c == checked_plan), "{calls}");
    assert!(
        !clones
            .clone_dir("b")
            .join("state/dev/terraform.plan")
            .exists(),
        "the copy is gone after the apply"
    );
    assert_eq!(applied["result"], "applied", "{applied}");
    assert_eq!(
        applied["bundle"]["sha256"],
        bundle_sha.as_str(),
        "{applied}"
    );
    assert_eq!(state_message(&clones.local_state("dev").unwrap()), "one");
    let record = history(&clones, "b", "dev");
    assert_eq!(record["result"], "applied", "{record}");
    assert_eq!(record["bundle"], bundle_sha.as_str(), "{record}");
    // The bundle stays as it was: nothing of it is consumed.
    assert_eq!(sha256_of(&dir.join("bundle.json")), bundle_sha);
}

/// The bundle's folder may change after its check (while init runs, a lock is waited
/// for, a person answers the prompt): what is applied is what was checked.
#[test]
fn a_bundle_replaced_after_its_check_still_applies_the_checked_plan() {
    let clones = Clones::local();
    let dir = clones.plan("a", "dev", "dev");
    let other = clones.plan("a", "staging", "staging");
    // terraform's first call (init, after the check) swaps staging's plan into the bundle.
    let swap = clones.project.script(
        "bin/terraform",
        &format!(
            "if [ \"$1\" = init ]; then cp '{other}' '{target}'; fi\nexec '{real}' \"$@\"",
            other = other.join("terraform.plan").display(),
            target = dir.join("terraform.plan").display(),
            real = support::terraform().display()
        ),
    );
    let output = clones
        .project
        .tfenv_with(&swap)
        .current_dir(clones.clone_dir("b"))
        .args(["deploy", "dev", "--plan", dir.to_str().unwrap(), "--yes"])
        .output()
        .unwrap();
    expecting(output, 0);
    assert_eq!(
        sha256_of(&dir.join("terraform.plan")),
        sha256_of(&other.join("terraform.plan")),
        "the swap happened"
    );
    assert_eq!(state_message(&clones.local_state("dev").unwrap()), "one");
    assert!(
        clones.local_state("staging").is_none(),
        "staging's plan, swapped in after the check, was not applied"
    );
}

#[test]
fn a_state_change_between_plan_and_apply_is_refused_and_changes_nothing() {
    let clones = Clones::local();
    clones.run("a", &["deploy", "dev", "--yes"], 0);
    clones.write("a/environments/dev.tfvars", "message = \"two\"\nn = 1\n");
    clones.commit("a", "two");
    clones.pull_into_b();
    let planned = serial(&clones.local_state("dev").unwrap());
    let dir = clones.plan("a", "dev", "dev");
    // Another deploy moves the state on before the bundle is applied.
    clones.run("a", &["deploy", "dev", "--yes"], 0);
    let before = clones.local_state("dev").unwrap();
    let now = serial(&before);
    assert!(now > planned);
    let output = clones.tfenv(
        "b",
        &["deploy", "dev", "--plan", dir.to_str().unwrap(), "--yes"],
    );
    assert_refused(
        &output,
        "state lineage/serial",
        &[&format!("serial {planned}`"), &format!("serial {now}`")],
    );
    assert_eq!(clones.local_state("dev").unwrap(), before);
    let record = history(&clones, "b", "dev");
    assert_eq!(record["result"], "refused", "{record}");
    assert_eq!(record["reached_apply"], false, "{record}");
}

#[test]
fn one_changed_byte_in_the_plan_file_is_refused() {
    let clones = Clones::local();
    let dir = clones.plan("a", "dev", "dev");
    let file = dir.join("terraform.plan");
    let expected = sha256_of(&file);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let found = sha256_of(&file);
    let output = clones.tfenv(
        "b",
        &["deploy", "dev", "--plan", dir.to_str().unwrap(), "--yes"],
    );
    assert_refused(&output, "sha256 of terraform.plan", &[&expected, &found]);
    assert_eq!(clones.local_state("dev"), None);
}

#[test]
fn a_bundle_of_dev_given_to_staging_is_refused() {
    let clones = Clones::local();
    let dir = clones.plan("a", "dev", "dev");
    let output = clones.tfenv(
        "b",
        &[
            "deploy",
            "staging",
            "--plan",
            dir.to_str().unwrap(),
            "--yes",
        ],
    );
    assert_refused(&output, "environment", &["expected `dev`, found `staging`"]);
    assert_eq!(clones.local_state("staging"), None);
    assert_eq!(clones.local_state("dev"), None);
}

#[test]
fn a_bundle_from_another_commit_is_refused_naming_both_commits() {
    let clones = Clones::local();
    let dir = clones.plan("a", "dev", "dev");
    let planned = support::git(&clones.clone_dir("a"), &["rev-parse", "HEAD"]);
    clones.write("b/README.md", "a change\n");
    clones.commit("b", "another commit");
    let head = support::git(&clones.clone_dir("b"), &["rev-parse", "HEAD"]);
    let output = clones.tfenv(
        "b",
        &["deploy", "dev", "--plan", dir.to_str().unwrap(), "--yes"],
    );
    assert_refused(&output, "git commit", &[planned.trim(), head.trim()]);
    assert_eq!(clones.local_state("dev"), None);
}

#[test]
fn a_dirty_tree_now_or_when_planned_is_refused() {
    let clones = Clones::local();
    let clean = clones.plan("a", "dev", "clean");
    // Applying from a tree with changes: refused, the changes listed.
    clones.write("b/notes.txt", "todo\n");
    let output = clones.tfenv(
        "b",
        &["deploy", "dev", "--plan", clean.to_str().unwrap(), "--yes"],
    );
    assert_refused(
        &output,
        "clean tree",
        &["found `dirty: notes.txt (untracked)`"],
    );

    // Planned from a tree with changes: the plan warns, the deploy refuses.
    clones.write("a/notes.txt", "todo\n");
    let dir = clones.bundle("dirty");
    let planned = clones.run("a", &["plan", "dev", "--out", dir.to_str().unwrap()], 0);
    assert!(
        stderr(&planned).contains("`tfenv deploy dev --plan` will refuse this bundle"),
        "{}",
        stderr(&planned)
    );
    std::fs::remove_file(clones.clone_dir("b").join("notes.txt")).unwrap();
    let output = clones.tfenv(
        "b",
        &["deploy", "dev", "--plan", dir.to_str().unwrap(), "--yes"],
    );
    assert_refused(
        &output,
        "clean tree when planned",
        &["expected `clean`, found `dirty`"],
    );
    assert_eq!(clones.local_state("dev"), None);
}

#[test]
fn a_bundle_kept_inside_the_checkout_does_not_make_it_dirty() {
    let clones = Clones::local();
    let dir = clones.clone_dir("a").join("plans/dev");
    clones.run("a", &["plan", "dev", "--out", "plans/dev"], 0);
    let applied = clones.run(
        "a",
        &["deploy", "dev", "--plan", dir.to_str().unwrap(), "--yes"],
        0,
    );
    assert!(
        support::stdout(&applied).contains("Applied to `dev`"),
        "{}",
        support::stdout(&applied)
    );
}

#[test]
fn another_bundle_inside_the_checkout_is_named_with_how_to_keep_bundles_out() {
    let clones = Clones::local();
    let outside = clones.plan("a", "staging", "staging");
    clones.run("a", &["plan", "dev", "--out", "plans/dev"], 0);
    // The next bundle: the plan warns, naming the folder and what to do about it.
    let planned = clones.run("a", &["plan", "production", "--out", "plans/production"], 0);
    let err = stderr(&planned);
    assert!(
        err.contains("uncommitted changes (plans/ (untracked))"),
        "{err}"
    );
    assert!(err.contains("write bundles outside the checkout"), "{err}");
    assert!(err.contains("add their folder to .gitignore"), "{err}");
    // A clean bundle applied beside it: refused, with the same hint.
    let output = clones.tfenv(
        "a",
        &[
            "deploy",
            "staging",
            "--plan",
            outside.to_str().unwrap(),
            "--yes",
        ],
    );
    assert_refused(
        &output,
        "clean tree",
        &["plans/", "write bundles outside the checkout"],
    );
}

#[test]
fn a_changed_var_file_is_refused_naming_both_checksums() {
    let clones = Clones::local();
    let dir = clones.plan("a", "dev", "dev");
    // local.tfvars is ignored by git: only the bundle's checksum can tell it changed.
    let planned = sha256_of(&clones.clone_dir("a").join("environments/local.tfvars"));
    clones.write("b/environments/local.tfvars", "extra = \"!\"\n");
    let found = sha256_of(&clones.clone_dir("b").join("environments/local.tfvars"));
    let output = clones.tfenv(
        "b",
        &["deploy", "dev", "--plan", dir.to_str().unwrap(), "--yes"],
    );
    assert_refused(
        &output,
        "sha256 of var file environments/local.tfvars",
        &[&planned, &found],
    );
    assert_eq!(clones.local_state("dev"), None);
}

#[test]
fn another_backend_is_refused() {
    let clones = Clones::local();
    let dir = clones.plan("a", "dev", "dev");
    // An uncommitted change, but the backend is checked first: it names what differs.
    let other = clones.project.join("shared/other.tfstate");
    clones.write(
        "b/environments/dev.backend.conf",
        &format!("path = \"{}\"\n", other.display()),
    );
    let output = clones.tfenv(
        "b",
        &["deploy", "dev", "--plan", dir.to_str().unwrap(), "--yes"],
    );
    assert_refused(
        &output,
        "backend",
        &["the backend configuration of `dev` differs"],
    );
    assert!(!other.exists());
}

#[test]
fn another_terraform_version_is_refused() {
    let clones = Clones::local();
    let dir = clones.plan("a", "dev", "dev");
    let meta_file = dir.join("bundle.json");
    let real = support::terraform_version(&support::terraform()).unwrap();
    let meta = std::fs::read_to_string(&meta_file).unwrap().replace(
        &format!("\"terraform_version\": \"{real}\""),
        "\"terraform_version\": \"1.9.0\"",
    );
    std::fs::write(&meta_file, meta).unwrap();
    let output = clones.tfenv(
        "b",
        &["deploy", "dev", "--plan", dir.to_str().unwrap(), "--yes"],
    );
    assert_refused(
        &output,
        "terraform version",
        &["expected `1.9.0`", &format!("found `{real}`")],
    );
}

#[test]
fn a_production_bundle_still_needs_yes_confirm_and_allow_destroy() {
    let clones = Clones::local();
    clones.write(
        "a/environments/production.tfvars",
        "message = \"one\"\nn = 2\n",
    );
    clones.commit("a", "two instances");
    clones.run(
        "a",
        &["deploy", "production", "--yes", "--confirm", "production"],
        0,
    );
    clones.write(
        "a/environments/production.tfvars",
        "message = \"one\"\nn = 1\n",
    );
    clones.commit("a", "one instance");
    let dir = clones.plan("a", "production", "production");
    let dir = dir.to_str().unwrap();
    let before = clones.local_state("production").unwrap();

    let output = clones.tfenv("a", &["deploy", "production", "--plan", dir, "--yes"]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--confirm production"),
        "{}",
        stderr(&output)
    );
    let output = clones.tfenv(
        "a",
        &[
            "deploy",
            "production",
            "--plan",
            dir,
            "--yes",
            "--confirm",
            "production",
        ],
    );
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--allow-destroy"),
        "{}",
        stderr(&output)
    );
    assert_eq!(clones.local_state("production").unwrap(), before);

    clones.run(
        "a",
        &[
            "deploy",
            "production",
            "--plan",
            dir,
            "--yes",
            "--confirm",
            "production",
            "--allow-destroy",
        ],
        0,
    );
    let record = history(&clones, "a", "production");
    assert_eq!(record["result"], "applied", "{record}");
    assert!(
        record["backup"].is_string(),
        "production is backed up: {record}"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&clones.local_state("production").unwrap()).unwrap();
    let instances = state["resources"][0]["instances"].as_array().unwrap().len();
    assert_eq!(instances, 1);
}

#[test]
fn plan_and_deploy_with_bundles_print_their_json_shapes() {
    let clones = Clones::local();
    let mut snapshots = Snapshots::new(&clones.project);
    snapshots.real_terraform(&support::terraform());
    // Relative: the command line is the snapshot's description.
    let dir = "../bundles/dev";
    let args = ["plan", "dev", "--out", dir, "--output", "json"];
    snapshots.json("json-plan-out", &args, &clones.run("a", &args, 0));
    let args = ["deploy", "dev", "--plan", dir, "--yes", "--output", "json"];
    snapshots.json("json-deploy-plan", &args, &clones.run("b", &args, 0));
    // The same bundle again: the state moved on (by its own apply), so it is refused.
    snapshots.json(
        "json-deploy-plan-refused",
        &args,
        &clones.run("b", &args, 5),
    );
}

#[test]
fn an_out_folder_holding_other_files_is_refused_before_planning() {
    let clones = Clones::local();
    let dir = clones.bundle("busy");
    clones.write("bundles/busy/notes.txt", "mine\n");
    let output = clones.tfenv("a", &["plan", "dev", "--out", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is not empty and not a plan bundle (it holds notes.txt)"),
        "{}",
        stderr(&output)
    );
    assert!(
        !clones.clone_dir("a").join(".terraform/tfenv/dev").exists(),
        "no init, no plan"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn on_s3_a_bundle_applies_from_another_clone_and_a_moved_state_is_refused() {
    let moto = Moto::start();
    let clones = Clones::s3(&moto);
    // staging: backed up before every change, from the one state pull that is checked.
    let first = clones.plan("a", "staging", "first");
    let deploy_in_b = |bundle: &Path| {
        clones.tfenv(
            "b",
            &[
                "deploy",
                "staging",
                "--plan",
                bundle.to_str().unwrap(),
                "--yes",
            ],
        )
    };
    expecting(deploy_in_b(&first), 0);
    let record = history(&clones, "b", "staging");
    assert_eq!(record["result"], "applied", "{record}");
    assert_eq!(
        record["bundle"],
        sha256_of(&first.join("bundle.json")).as_str()
    );
    let serial_of = |clone: &str| {
        let output = clones.run(clone, &["status", "staging", "--output", "json"], 0);
        stdout_json(&output)["environments"][0]["state"]["serial"]
            .as_u64()
            .unwrap()
    };
    let backups_in_b = || {
        std::fs::read_dir(clones.clone_dir("b").join("state/staging/backups"))
            .map(|dir| {
                dir.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| {
                        name.starts_with("terraform.tfstate") || name.ends_with(".partial")
                    })
                    .collect::<std::collections::BTreeSet<_>>()
            })
            .unwrap_or_default()
    };

    // A second bundle, applied from b: the backup is the state it was planned against.
    clones.write(
        "a/environments/staging.tfvars",
        "message = \"two\"\nn = 2\n",
    );
    clones.commit("a", "two");
    clones.pull_into_b();
    let planned = serial_of("a");
    let second = clones.plan("a", "staging", "second");
    expecting(deploy_in_b(&second), 0);
    let record = history(&clones, "b", "staging");
    assert_eq!(record["result"], "applied", "{record}");
    let kept = backups_in_b();
    let manifest = std::fs::read_to_string(
        clones
            .clone_dir("b")
            .join("state/staging/backups/MANIFEST.jsonl"),
    )
    .unwrap();
    let newest: serde_json::Value =
        serde_json::from_str(manifest.lines().next_back().unwrap()).unwrap();
    assert_eq!(newest["serial"], planned, "{manifest}");

    // A third bundle, then the state moves on (another deploy) before it is applied.
    clones.write(
        "a/environments/staging.tfvars",
        "message = \"three\"\nn = 2\n",
    );
    clones.commit("a", "three");
    clones.pull_into_b();
    let planned = serial_of("a");
    let third = clones.plan("a", "staging", "third");
    clones.run("a", &["deploy", "staging", "--yes"], 0);
    let moved = serial_of("a");
    assert!(moved > planned);
    assert_refused(
        &deploy_in_b(&third),
        "state lineage/serial",
        &[&format!("serial {planned}`"), &format!("serial {moved}`")],
    );
    assert_eq!(serial_of("a"), moved, "the state is untouched");
    assert_eq!(history(&clones, "b", "staging")["result"], "refused");
    // The state pulled for the check was not kept: no new backup, nothing half-written.
    assert_eq!(backups_in_b(), kept);
}

#[test]
fn a_bundle_without_changes_keeps_its_plan_json_and_applies_as_no_changes() {
    let clones = Clones::local();
    clones.run("a", &["deploy", "dev", "--yes"], 0);
    let dir = clones.bundle("dev");
    let dir = dir.to_str().unwrap();
    // terraform's -detailed-exitcode says "no changes": the bundle still gets plan.json.
    let planned = clones.run(
        "a",
        &["plan", "dev", "--out", dir, "--detailed-exitcode"],
        0,
    );
    assert!(support::stdout(&planned).contains("no changes"));
    let json = std::fs::read(Path::new(dir).join("plan.json")).unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok());
    let before = clones.local_state("dev").unwrap();
    let output = clones.run("b", &["deploy", "dev", "--plan", dir, "--yes"], 0);
    assert!(
        support::stdout(&output).contains("No changes: `dev` is up to date"),
        "{}",
        support::stdout(&output)
    );
    assert_eq!(clones.local_state("dev").unwrap(), before);
    assert_eq!(history(&clones, "b", "dev")["result"], "no-changes");
}
