//! Signals in the middle of a real `terraform apply` (DESIGN.md §5, "Interrupts").
//!
//! Ctrl-C, SIGTERM, SIGQUIT and SIGHUP (also a real terminal closing under tfenv): tfenv
//! passes one SIGINT to terraform's process group, waits for it to stop and release the
//! state lock, removes the plan file, records `interrupted` and exits 130; the next
//! deploy is not blocked by a stale lock. Ctrl-Z (SIGTSTP) is ignored while terraform
//! runs. SIGKILL cannot be caught: terraform still finishes its apply and releases its
//! lock, and the next run says that the previous one was killed. A file-size limit
//! (`ulimit -f`) makes a backup fail cleanly instead of killing tfenv.
//!
//! The apply is slow on purpose: a `terraform_data` whose `local-exec` provisioner
//! sleeps, with an input that changes on every deploy.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
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
        self.deploy_args(&mut command);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        RunningTfenv::spawn(command)
    }

    /// `tfenv deploy dev --yes` with a real terminal (a pseudo-terminal) as its
    /// controlling terminal, stdin, stdout and stderr, as in an SSH session: `setsid
    /// --ctty` makes it a session leader that owns the terminal, so closing the terminal
    /// (`RunningTfenv::hang_up`) sends it SIGHUP the way the kernel does when an SSH
    /// connection drops. (rexpect, which the prompt tests use, cannot close its terminal
    /// without signalling the child first.)
    fn spawn_deploy_in_terminal(&self) -> RunningTfenv {
        use nix::fcntl::OFlag;
        use std::os::unix::fs::OpenOptionsExt;
        // Close-on-exec from the start: a copy of the master side inherited by any other
        // process (the tests spawn many at once) would keep the terminal from hanging up.
        let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .expect("opening a pseudo-terminal");
        nix::pty::grantpt(&master).unwrap();
        nix::pty::unlockpt(&master).unwrap();
        let slave_path = nix::pty::ptsname_r(&master).unwrap();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(OFlag::O_NOCTTY.bits())
            .open(&slave_path)
            .unwrap();
        let master = std::fs::File::from(std::os::fd::OwnedFd::from(master));
        let mut command = Command::new("setsid");
        command
            .arg("--ctty")
            .arg(assert_cmd::cargo::cargo_bin("tfenv"));
        self.deploy_args(&mut command);
        command
            .env("TERM", "xterm")
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // The command (and with it the test's copies of the terminal's slave side) is
        // dropped once tfenv runs: tfenv alone holds it (terraform gets no terminal).
        RunningTfenv::spawn_in_terminal(command, master)
    }

    fn deploy_args(&self, command: &mut Command) {
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
            .env_remove("AWS_PROFILE");
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
    /// Its stderr; with a terminal, everything the terminal showed.
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// Tells the terminal's reader to close the terminal.
    hang_up: Option<Arc<AtomicBool>>,
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
            hang_up: None,
            terraform_group: None,
        }
    }

    /// `command` runs with the slave side of the terminal whose `master` this reads.
    fn spawn_in_terminal(mut command: Command, master: std::fs::File) -> RunningTfenv {
        let child = command
            .spawn()
            .expect("starting `setsid --ctty tfenv …` (setsid is part of util-linux)");
        drop(command);
        let shown = Arc::new(Mutex::new(String::new()));
        let hang_up = Arc::new(AtomicBool::new(false));
        let reader = read_terminal(master, shown.clone(), hang_up.clone());
        RunningTfenv {
            child,
            stderr: shown,
            stdout: Arc::new(Mutex::new(String::new())),
            readers: vec![reader],
            hang_up: Some(hang_up),
            terraform_group: None,
        }
    }

    /// Closes the terminal, as a dropped SSH connection or a closed terminal window
    /// does: the kernel hangs it up and sends SIGHUP to tfenv, its session leader.
    fn hang_up(&mut self) {
        let flag = self.hang_up.as_ref().expect("tfenv runs in a terminal");
        flag.store(true, Ordering::SeqCst);
        self.join_readers();
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

/// Collects what the terminal shows until `hang_up` is set, then closes its master side
/// (the last handle on it: that is what hangs the terminal up).
fn read_terminal(
    master: std::fs::File,
    into: Arc<Mutex<String>>,
    hang_up: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use std::io::Read;
    fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("a non-blocking terminal");
    std::thread::spawn(move || {
        let mut master = master;
        let mut buf = [0u8; 8192];
        while !hang_up.load(Ordering::SeqCst) {
            match master.read(&mut buf) {
                Ok(n) if n > 0 => into
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n])),
                // Nothing to read now (EAGAIN), or tfenv closed its side (EIO).
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        drop(master);
    })
}

/// `/proc/<pid>/stat`'s state letter: `T` is stopped (Ctrl-Z), `Z` a zombie.
fn process_state(pid: Pid) -> char {
    processes()
        .into_iter()
        .find(|p| p.pid == pid)
        .map_or('?', |p| p.state)
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

#[test]
fn sigquit_during_apply_stops_terraform_releases_the_lock_and_exits_130() {
    interrupt_local_apply(Signal::SIGQUIT);
}

#[test]
fn sighup_during_apply_stops_terraform_releases_the_lock_and_exits_130() {
    interrupt_local_apply(Signal::SIGHUP);
}

/// What a hung-up deploy must leave, though nothing it prints can be seen any more: tfenv
/// waited for terraform, which released its lock, and recorded the interrupt.
fn assert_hung_up_cleanly(slow: &SlowProject, run: &mut RunningTfenv, terraform: Pid) {
    let (status, took) = run.wait_exit(EXIT_WITHIN);
    let output = run.output_text();
    assert_eq!(
        status.code(),
        Some(130),
        "tfenv exits 130 after its terminal closed (not killed by SIGHUP)\n{output}"
    );
    let left = live_in_group(terraform);
    assert!(
        left.is_empty(),
        "nothing of terraform's process group runs on: {left:?}\n{output}"
    );
    assert!(
        !slow.plan_file().exists(),
        "the plan file is removed\n{output}"
    );
    let last = slow.last_history();
    assert_eq!(last["result"], "interrupted", "{last}");
    assert_eq!(last["exit_code"], 130, "{last}");
    eprintln!("tfenv stopped {took:?} after its terminal closed");
}

#[test]
fn closing_the_terminal_during_apply_releases_the_lock_and_records_interrupted() {
    let slow = SlowProject::local();
    slow.set_vars(1, SLOW_SLEEP);
    let mut run = slow.spawn_deploy_in_terminal();
    run.wait_for_stderr(APPLY_RUNNING, APPLY_STARTS_WITHIN);
    let terraform = run.find_terraform();
    run.wait_for_provisioner(terraform);
    assert!(
        slow.project.join(LOCAL_LOCK_INFO).is_file(),
        "terraform holds the local state lock during the apply\n{}",
        run.output_text()
    );

    run.hang_up();
    assert_hung_up_cleanly(&slow, &mut run, terraform);
    assert!(
        !slow.project.join(LOCAL_LOCK_INFO).exists(),
        "terraform released the local state lock\n{}",
        run.output_text()
    );
    slow.deploy_again_succeeds(2);
}

#[test]
fn closing_the_terminal_during_apply_on_s3_removes_the_dynamodb_lock_item() {
    let moto = Moto::start();
    let slow = SlowProject::s3(&moto);
    let lock_id = format!("{BUCKET}/{KEY}");
    slow.set_vars(1, SLOW_SLEEP);
    let mut run = slow.spawn_deploy_in_terminal();
    run.wait_for_stderr(APPLY_RUNNING, APPLY_STARTS_WITHIN);
    let terraform = run.find_terraform();
    run.wait_for_provisioner(terraform);
    assert!(
        moto.lock_info(TABLE, &lock_id).is_some(),
        "a DynamoDB lock item while the apply runs\n{}",
        run.output_text()
    );

    run.hang_up();
    assert_hung_up_cleanly(&slow, &mut run, terraform);
    assert_eq!(
        moto.lock_item(TABLE, &lock_id),
        None,
        "the lock item is gone once tfenv exited\n{}",
        run.output_text()
    );
    slow.deploy_again_succeeds(2);
}

#[test]
fn ctrl_z_during_apply_is_ignored_and_said_once() {
    const NOTICE: &str = "Ctrl-Z ignored while `terraform` runs";
    let slow = SlowProject::local();
    slow.set_vars(1, 6);
    let mut run = slow.spawn_deploy();
    run.wait_for_stderr(APPLY_RUNNING, APPLY_STARTS_WITHIN);
    let terraform = run.find_terraform();
    run.wait_for_provisioner(terraform);

    run.signal(Signal::SIGTSTP);
    std::thread::sleep(Duration::from_millis(300));
    run.signal(Signal::SIGTSTP);
    std::thread::sleep(Duration::from_millis(500));
    let state = process_state(run.pid());
    assert_ne!(
        state,
        'T',
        "tfenv must not stop while terraform holds the state lock\n{}",
        run.output_text()
    );
    let (status, _) = run.wait_exit(Duration::from_secs(60));
    let output = run.output_text();
    assert_eq!(
        status.code(),
        Some(0),
        "the deploy went on to the end\n{output}"
    );
    assert_eq!(
        run.stderr().matches(NOTICE).count(),
        1,
        "the notice is printed once\n{output}"
    );
    assert!(
        run.stderr().contains("press Ctrl-C to stop it"),
        "it says how to stop instead\n{output}"
    );
    let last = slow.last_history();
    assert_eq!(last["result"], "applied", "{last}");
}

/// SIGKILL cannot be caught. terraform, in its own process group, must still finish the
/// apply and release its lock on its own — it must not die of SIGPIPE at its next line of
/// output because tfenv's end of a pipe went away (measured: Terraform 1.11 does, even
/// with SIGPIPE ignored, at its "Still creating... [10s elapsed]" line). The next run on
/// the environment says that the previous one was killed, and goes on.
#[test]
fn sigkill_during_apply_lets_terraform_finish_and_the_next_run_says_so() {
    // Long enough for terraform to print "Still creating..." after tfenv is gone.
    const SLEEP: u32 = 14;
    let slow = SlowProject::local();
    slow.set_vars(1, SLEEP);
    let mut run = slow.spawn_deploy();
    run.wait_for_stderr(APPLY_RUNNING, APPLY_STARTS_WITHIN);
    let terraform = run.find_terraform();
    run.wait_for_provisioner(terraform);

    run.signal(Signal::SIGKILL);
    let (status, _) = run.wait_exit(Duration::from_secs(5));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{}",
        run.output_text()
    );
    // terraform goes on alone; it is someone else's child now.
    let started = Instant::now();
    while processes()
        .iter()
        .any(|p| p.pid == terraform && p.is_live())
    {
        assert!(
            started.elapsed() < Duration::from_secs(u64::from(SLEEP) + 30),
            "terraform (pid {terraform}) did not finish after tfenv was killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let state: serde_json::Value = serde_json::from_str(&slow.project.read(LOCAL_STATE))
        .unwrap_or_else(|err| {
            panic!(
                "terraform died before writing the state ({err}): {:?}",
                slow.project.read(LOCAL_STATE)
            )
        });
    assert_eq!(
        state["outputs"]["run_id"]["value"], "run-1",
        "terraform finished the apply: {state}"
    );
    assert!(
        !slow.project.join(LOCAL_LOCK_INFO).exists(),
        "terraform released its state lock"
    );
    assert!(
        slow.plan_file().exists(),
        "the killed tfenv could not remove its plan file"
    );

    // The next run: a warning about the killed one, then business as usual.
    slow.set_vars(2, 0);
    let output = slow
        .project
        .tfenv()
        .arg("--terraform")
        .arg(&slow.terraform)
        .args(["deploy", "dev", "--yes"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: the previous run on `dev` (pid ")
            && stderr.contains("`tfenv deploy dev`")
            && stderr.contains("was killed before it finished"),
        "the next run says the previous one was killed:\n{stderr}"
    );
    assert!(
        stderr.contains("terraform.plan` behind"),
        "and that it left its plan behind:\n{stderr}"
    );
    assert!(
        stderr.contains("`tfenv status dev`") && stderr.contains("`tfenv lock dev`"),
        "and what to check:\n{stderr}"
    );
    assert_eq!(stderr.matches("was killed").count(), 1, "{stderr}");
    assert_eq!(slow.last_history()["result"], "applied");

    // Reported once: the run after that has nothing to say.
    let output = slow
        .project
        .tfenv()
        .arg("--terraform")
        .arg(&slow.terraform)
        .args(["plan", "dev"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("killed"), "{stderr}");
}

/// `nohup tfenv …` asks to survive a hangup: a SIGHUP that tfenv inherited as ignored
/// stays ignored, and the deploy goes on to the end.
#[test]
fn under_nohup_a_hangup_during_apply_changes_nothing() {
    let slow = SlowProject::local();
    slow.set_vars(1, 4);
    let mut command = Command::new("nohup");
    command.arg(assert_cmd::cargo::cargo_bin("tfenv"));
    slow.deploy_args(&mut command);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut run = RunningTfenv::spawn(command);
    run.wait_for_stderr(APPLY_RUNNING, APPLY_STARTS_WITHIN);
    let terraform = run.find_terraform();
    run.wait_for_provisioner(terraform);

    run.signal(Signal::SIGHUP);
    let (status, _) = run.wait_exit(Duration::from_secs(60));
    let output = run.output_text();
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(
        !run.stderr().contains("waiting for `terraform`"),
        "{output}"
    );
    assert_eq!(slow.last_history()["result"], "applied");
}

/// `ulimit -f` makes a write past the limit raise SIGXFSZ, whose default kills tfenv in
/// the middle of the backup and leaves its `.partial` file. tfenv catches it instead:
/// the write fails with EFBIG, the backup's own cleanup runs, and tfenv says what failed.
#[test]
fn a_file_size_limit_fails_a_backup_cleanly_instead_of_killing_tfenv() {
    let slow = SlowProject::local();
    slow.deploy_again_succeeds(1);
    // A limit of 0 blocks: tfenv starts (it writes no file to start), terraform's
    // `state pull` writes only to tfenv, and the first write of the backup fails.
    let output = Command::new("bash")
        .current_dir(slow.project.path())
        .env("TF_CLI_CONFIG_FILE", slow.project.join(".terraformrc"))
        .env("CHECKPOINT_DISABLE", "1")
        .env("NO_COLOR", "1")
        .arg("-c")
        .arg(format!(
            "ulimit -f 0; exec '{}' --terraform '{}' backup dev",
            assert_cmd::cargo::cargo_bin("tfenv").display(),
            slow.terraform.display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "tfenv fails the backup, it is not killed by SIGXFSZ ({:?})\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains("error:") && stderr.contains("File too large"),
        "{stderr}"
    );
    let left: Vec<String> = std::fs::read_dir(slow.project.join("state/dev/backups"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| !name.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.iter().all(|name| !name.contains("partial")),
        "no partial backup is left: {left:?}"
    );
    assert!(
        left.iter()
            .all(|name| !name.starts_with("terraform.tfstate.")),
        "no backup was made: {left:?}"
    );
}
