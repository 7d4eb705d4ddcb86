//! Ctrl-C and SIGTERM in the middle of a real `terraform apply` (DESIGN.md §5,
//! "Interrupts"): tfenv passes one SIGINT to terraform's process group, waits for it to
//! stop and release the state lock, removes the plan file, records `interrupted` and
//! exits 130; the next deploy is not blocked by a stale lock.
//!
//! The apply is slow on purpose: a `terraform_data` whose `local-exec` provisioner
//! sleeps, with an input that changes on every deploy.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::support::moto::Moto;
use crate::support::procs::{drain, live_in_group, processes};
use crate::support::slow::{
    APPLY_RUNNING, BUCKET, KEY, LOCAL_LOCK_INFO, LOCAL_STATE, MAIN_TF, TABLE, TFENV_TOML,
};
use crate::support::{self, Project};

/// The provisioner's sleep in the deploy that gets interrupted: far longer than the
/// test waits for tfenv to exit, so only an interrupted terraform can exit in time.
const SLOW_SLEEP: u32 = 30;
/// How long tfenv may take from the signal to its exit.
const EXIT_WITHIN: Duration = Duration::from_secs(25);
/// How long init + plan + the start of the apply may take.
const APPLY_STARTS_WITHIN: Duration = Duration::from_secs(90);
/// A project with one development environment `dev` whose apply is slow.
struct SlowProject {
    project: Project,
    terraform: PathBuf,
}

impl SlowProject {
    fn local() -> SlowProject {
        SlowProject::new("local", &format!("path = \"{LOCAL_STATE}\"\n"))
    }

    fn s3(moto: &Moto) -> SlowProject {
        moto.create_bucket(BUCKET);
        moto.create_lock_table(TABLE);
        SlowProject::new("s3", &moto.backend_conf(BUCKET, KEY, TABLE))
    }

    fn new(backend: &str, backend_conf: &str) -> SlowProject {
        let terraform = support::terraform();
        let project = Project::empty();
        project.write("tfenv.toml", TFENV_TOML);
        project.write("main.tf", &MAIN_TF.replace("BACKEND", backend));
        project.write("environments/dev.backend.conf", backend_conf);
        SlowProject { project, terraform }
    }

    /// The next deploy changes `terraform_data.slow` and its provisioner sleeps `sleep` s.
    fn set_vars(&self, run_id: u32, sleep: u32) {
        self.project.write(
            "environments/dev.tfvars",
            &format!("run_id = \"run-{run_id}\"\nsleep  = {sleep}\n"),
        );
    }

    /// `tfenv deploy dev --yes` as a child process, its output collected as it arrives.
    fn spawn_deploy(&self) -> RunningTfenv {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("tfenv"));
        command
            .current_dir(self.project.path())
            .arg("--terraform")
            .arg(&self.terraform)
            .args(["deploy", "dev", "--yes"])
            // Same environment as `Project::tfenv()`.
            .env("TF_CLI_CONFIG_FILE", self.project.join(".terraformrc"))
            .env("CHECKPOINT_DISABLE", "1")
            .env("NO_COLOR", "1")
            .env_remove("TFENV_LOG")
            .env_remove("TF_WORKSPACE")
            .env_remove("TF_DATA_DIR")
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        RunningTfenv::spawn(command)
    }

    /// A follow-up `tfenv deploy dev --yes` with a fast provisioner: it must get the
    /// state lock at once and apply.
    fn deploy_again_succeeds(&self, run_id: u32) -> Duration {
        self.set_vars(run_id, 0);
        let started = Instant::now();
        let output = self
            .project
            .tfenv()
            .env_remove("AWS_PROFILE")
            .arg("--terraform")
            .arg(&self.terraform)
            .args(["deploy", "dev", "--yes"])
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        let took = started.elapsed();
        assert_eq!(
            output.status.code(),
            Some(0),
            "the deploy after the interrupt failed: the state lock was left behind?\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let last = self.last_history();
        assert_eq!(last["result"], "applied", "{last}");
        assert_eq!(last["exit_code"], 0, "{last}");
        let outputs = self.project.read("state/dev/outputs.json");
        assert!(
            outputs.contains(&format!("run-{run_id}")),
            "outputs.json holds the new run: {outputs}"
        );
        took
    }

    fn plan_file(&self) -> PathBuf {
        self.project.join("state/dev/terraform.plan")
    }

    /// The last line of `state/dev/history.jsonl`, parsed.
    fn last_history(&self) -> serde_json::Value {
        self.project.last_history("dev")
    }
}

/// tfenv running as a child process. Dropped while still running (a failed
/// assertion), it is killed together with its terraform.
struct RunningTfenv {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// terraform's process group, once seen.
    terraform_group: Option<Pid>,
}

impl RunningTfenv {
    fn spawn(mut command: Command) -> RunningTfenv {
        let mut child = command.spawn().expect("starting tfenv");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            drain(child.stderr.take().unwrap(), stderr.clone()),
            drain(child.stdout.take().unwrap(), stdout.clone()),
        ];
        RunningTfenv {
            child,
            stderr,
            stdout,
            readers,
            terraform_group: None,
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn output_text(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    /// Waits until tfenv's stderr shows `needle` (terraform's output is echoed there).
    fn wait_for_stderr(&mut self, needle: &str, within: Duration) {
        let started = Instant::now();
        loop {
            if self.stderr().contains(needle) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                self.join_readers();
                panic!(
                    "tfenv exited ({status}) before printing {needle:?}\n{}",
                    self.output_text()
                );
            }
            assert!(
                started.elapsed() < within,
                "tfenv did not print {needle:?} within {}s\n{}",
                within.as_secs(),
                self.output_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The terraform process tfenv is running right now (its child), which leads its
    /// own process group.
    fn find_terraform(&mut self) -> Pid {
        let terraform = processes()
            .into_iter()
            .find(|p| p.ppid == self.pid().as_raw() && p.name == "terraform" && p.is_live())
            .map(|p| p.pid)
            .unwrap_or_else(|| {
                panic!(
                    "no terraform process under tfenv (pid {})\n{}",
                    self.pid(),
                    self.output_text()
                )
            });
        assert_eq!(
            nix::unistd::getpgid(Some(terraform)).unwrap(),
            terraform,
            "tfenv starts terraform in its own process group"
        );
        self.terraform_group = Some(terraform);
        terraform
    }

    /// Waits until the provisioner's `sleep` runs in terraform's process group, so the
    /// signal reaches an apply that is really busy.
    fn wait_for_provisioner(&self, terraform: Pid) {
        let started = Instant::now();
        while !live_in_group(terraform).iter().any(|p| p.name == "sleep") {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the provisioner's sleep never ran in terraform's process group: {:?}\n{}",
                live_in_group(terraform),
                self.output_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    /// Waits for tfenv to exit; panics (and kills it) after `within`.
    fn wait_exit(&mut self, within: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let took = started.elapsed();
                self.join_readers();
                return (status, took);
            }
            if started.elapsed() > within {
                self.kill_all();
                self.join_readers();
                panic!(
                    "tfenv did not exit within {}s of the signal\n{}",
                    within.as_secs(),
                    self.output_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    fn kill_all(&mut self) {
        if let Some(group) = self.terraform_group {
            let _ = killpg(group, Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RunningTfenv {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill_all();
        }
    }
}

/// What every interrupted deploy must show, whatever the signal and the backend.
fn assert_interrupted_cleanly(
    slow: &SlowProject,
    run: &mut RunningTfenv,
    terraform: Pid,
    signal: Signal,
) -> Duration {
    let (status, took) = run.wait_exit(EXIT_WITHIN);
    let output = run.output_text();
    assert_eq!(
        status.code(),
        Some(130),
        "tfenv exits 130 after {signal}\n{output}"
    );
    let stderr = run.stderr();
    assert!(
        stderr.contains("waiting for `terraform` to stop"),
        "tfenv says it waits for terraform\n{output}"
    );
    assert_eq!(
        stderr.matches("waiting for `terraform` to stop").count(),
        1,
        "one signal, one message\n{output}"
    );
    assert!(
        !stderr.contains("second interrupt") && !stderr.contains("killing it"),
        "one signal never escalates\n{output}"
    );
    // terraform saw exactly one interrupt (a second would make it abandon the lock).
    assert!(
        stderr.contains("Interrupt received.") && stderr.contains("Gracefully shutting down..."),
        "terraform got the interrupt and shut down gracefully\n{output}"
    );
    assert!(
        !stderr.contains("Two interrupts received"),
        "terraform got a second interrupt\n{output}"
    );
    assert!(
        !stderr.contains("tfenv unlock"),
        "the lock was released, so there is no unlock advice\n{output}"
    );
    let left = live_in_group(terraform);
    assert!(
        left.is_empty(),
        "nothing of terraform's process group (terraform, the provisioner's sleep) runs \
         on after tfenv exited: {left:?}\n{output}"
    );
    assert!(
        !slow.plan_file().exists(),
        "the plan file is removed on interrupt\n{output}"
    );
    let last = slow.last_history();
    assert_eq!(last["result"], "interrupted", "{last}");
    assert_eq!(last["exit_code"], 130, "{last}");
    assert_eq!(last["command"], "deploy", "{last}");
    took
}

/// A deploy on the local backend is interrupted by `signal` while its apply runs.
fn interrupt_local_apply(signal: Signal) {
    let slow = SlowProject::local();
    slow.set_vars(1, SLOW_SLEEP);
    let mut run = slow.spawn_deploy();
    run.wait_for_stderr(APPLY_RUNNING, APPLY_STARTS_WITHIN);
    let terraform = run.find_terraform();
    run.wait_for_provisioner(terraform);
    assert!(
        slow.project.join(LOCAL_LOCK_INFO).is_file(),
        "terraform holds the local state lock during the apply\n{}",
        run.output_text()
    );

    run.signal(signal);
    let took = assert_interrupted_cleanly(&slow, &mut run, terraform, signal);
    assert!(
        !slow.project.join(LOCAL_LOCK_INFO).exists(),
        "terraform released the local state lock (its info file is gone)\n{}",
        run.output_text()
    );
    eprintln!("tfenv stopped {took:?} after {signal}");

    let again = slow.deploy_again_succeeds(2);
    eprintln!("the next deploy took {again:?}");
    assert!(!slow.project.join(LOCAL_LOCK_INFO).exists());
}

#[test]
fn sigint_during_apply_stops_terraform_releases_the_lock_and_exits_130() {
    interrupt_local_apply(Signal::SIGINT);
}

#[test]
fn sigterm_during_apply_stops_terraform_releases_the_lock_and_exits_130() {
    interrupt_local_apply(Signal::SIGTERM);
}

#[test]
fn sigint_during_apply_on_s3_removes_the_dynamodb_lock_item_and_exits_130() {
    let moto = Moto::start();
    let slow = SlowProject::s3(&moto);
    let lock_id = format!("{BUCKET}/{KEY}");
    slow.set_vars(1, SLOW_SLEEP);
    let mut run = slow.spawn_deploy();
    run.wait_for_stderr(APPLY_RUNNING, APPLY_STARTS_WITHIN);
    let terraform = run.find_terraform();
    run.wait_for_provisioner(terraform);

    let lock = moto.lock_info(TABLE, &lock_id).unwrap_or_else(|| {
        panic!(
            "no DynamoDB lock item `{lock_id}` while the apply runs\n{}",
            run.output_text()
        )
    });
    assert_eq!(lock["Operation"], "OperationTypeApply", "{lock}");
    assert_eq!(lock["Path"], lock_id.as_str(), "{lock}");

    run.signal(Signal::SIGINT);
    let took = assert_interrupted_cleanly(&slow, &mut run, terraform, Signal::SIGINT);
    assert_eq!(
        moto.lock_item(TABLE, &lock_id),
        None,
        "the lock item is gone once tfenv exited\n{}",
        run.output_text()
    );
    eprintln!("tfenv stopped {took:?} after SIGINT");

    let again = slow.deploy_again_succeeds(2);
    eprintln!("the next deploy took {again:?}");
    assert_eq!(moto.lock_item(TABLE, &lock_id), None);
    // The state landed in the bucket: the follow-up applied run-2.
    let state = moto.aws_ok(&["s3", "cp", &format!("s3://{BUCKET}/{KEY}"), "-"]);
    assert!(
        String::from_utf8_lossy(&state.stdout).contains("run-2"),
        "{}",
        String::from_utf8_lossy(&state.stdout)
    );
}
