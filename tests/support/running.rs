//! tfenv running as a child process while the test acts on it: its output collected as
//! it arrives, the terraform it started found, signals sent, a terminal closed. Dropped
//! while still running (a failed assertion), it is killed together with its terraform.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::procs::{drain, live_in_group, processes};
use super::slow::APPLY_RUNNING;

pub struct RunningTfenv {
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
    /// Starts `command` (tfenv, or a wrapper that execs it) with no stdin and both
    /// output streams collected.
    pub fn spawn(mut command: Command) -> RunningTfenv {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tfenv");
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

    /// Starts `command` with a real terminal (a pseudo-terminal) as its stdin, stdout
    /// and stderr, as in an SSH session. To make that terminal its controlling terminal
    /// (so closing it, `hang_up`, sends SIGHUP the way the kernel does when an SSH
    /// connection drops), the command is `setsid --ctty tfenv …`. (rexpect, which the
    /// prompt tests use, cannot close its terminal without signalling the child first.)
    pub fn spawn_in_terminal(mut command: Command) -> RunningTfenv {
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
        command
            .env("TERM", "xterm")
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        let child = command
            .spawn()
            .expect("starting `setsid --ctty tfenv …` (setsid is part of util-linux)");
        // The command (and with it the test's copies of the terminal's slave side) is
        // dropped once tfenv runs: tfenv alone holds it (terraform gets no terminal).
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
    pub fn hang_up(&mut self) {
        let flag = self.hang_up.as_ref().expect("tfenv runs in a terminal");
        flag.store(true, Ordering::SeqCst);
        self.join_readers();
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn output_text(&self) -> String {
        format!(
            "--- tfenv's stdout ---\n{}\n--- tfenv's stderr ---\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    /// Waits until tfenv's stderr shows `needle` (terraform's output is echoed there).
    pub fn wait_for_stderr(&mut self, needle: &str, within: Duration) {
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
    pub fn find_terraform(&mut self) -> Pid {
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
    /// test acts on an apply that is really busy (and holds the state lock).
    pub fn wait_for_provisioner(&self, terraform: Pid) {
        let started = Instant::now();
        while !live_in_group(terraform).iter().any(|p| p.name == "sleep") {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the provisioner's sleep never ran in terraform's process group: {:?}\n{}",
                live_in_group(terraform),
                self.output_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (up to `within`) until the slow project's apply runs its provisioner's
    /// `sleep`: terraform holds the state lock. Returns terraform's pid, which leads
    /// its own process group.
    pub fn wait_for_slow_apply(&mut self, within: Duration) -> Pid {
        self.wait_for_stderr(APPLY_RUNNING, within);
        let terraform = self.find_terraform();
        self.wait_for_provisioner(terraform);
        terraform
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    /// Waits for tfenv to exit; panics (and kills it) after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> (ExitStatus, Duration) {
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
                    "tfenv did not exit within {}s\n{}",
                    within.as_secs(),
                    self.output_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One SIGINT to tfenv (as Ctrl-C would): it stops terraform gracefully and exits 130.
    pub fn interrupt(&mut self) {
        self.signal(Signal::SIGINT);
        let (status, _) = self.wait_exit(Duration::from_secs(40));
        assert_eq!(status.code(), Some(130), "{}", self.output_text());
    }

    /// SIGKILL to terraform's whole process group and to tfenv: nobody gets to release
    /// the state lock. Returns once all of them are gone.
    pub fn kill_everything(&mut self) {
        let group = self.terraform_group.expect("terraform was found first");
        killpg(group, Signal::SIGKILL).unwrap();
        let _ = kill(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
        self.join_readers();
        let started = Instant::now();
        while !live_in_group(group).is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "terraform's process group outlived SIGKILL: {:?}",
                live_in_group(group)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn join_readers(&mut self) {
        if let Some(flag) = &self.hang_up {
            // A terminal's reader runs until told to close it; when tfenv has exited
            // without a hang-up (it failed early), let it drain what is left, then stop
            // it, so a failing test reports instead of waiting forever.
            std::thread::sleep(Duration::from_millis(200));
            flag.store(true, Ordering::SeqCst);
        }
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
                // Every process closed the terminal's other side: nothing more can come.
                Ok(_) => break,
                Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => break,
                // Nothing to read now (EAGAIN).
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        drop(master);
    })
}
