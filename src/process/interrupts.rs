//! Where signals arrive: one listener turns SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP and
//! SIGXFSZ into [`SignalEvent`]s and acts on [`decide`]'s answer. Stop requests are
//! counted; the runner decides what a running child gets, and with no child running the
//! top level ends the run with exit 130.
//!
//! Every one of these signals is *caught*, never set to "ignore": a caught signal goes
//! back to its default in a child at exec, so terraform starts with the dispositions a
//! shell would give it (std also resets SIGPIPE and the signal mask for children). No
//! `pre_exec` hook is needed, which is as well: it is unsafe code, forbidden here.
//!
//! A signal other than SIGINT and SIGTERM that tfenv inherited as ignored stays ignored,
//! for tfenv and its children, as the one who started it meant: `nohup tfenv deploy …`
//! must survive the hangup it asked to survive.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::signal::{Action, Shutdown, SignalEvent, Situation, decide};

/// The stop requests received so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shutdowns {
    pub count: u32,
    /// The kind of the latest one, for messages.
    pub last: Option<Shutdown>,
}

/// Shared record of the stop requests received and of the children running.
#[derive(Clone, Debug)]
pub struct Interrupts {
    shutdowns: Arc<watch::Sender<Shutdowns>>,
    /// The children running now.
    children: Arc<Mutex<Vec<Child>>>,
    /// The Ctrl-Z notice was printed (once per run is enough).
    suspend_said: Arc<AtomicBool>,
    /// The last stop request and when it came, to tell an echo from a second request.
    last_stop: Arc<Mutex<Option<(Shutdown, std::time::Instant)>>>,
    /// How many stop requests the command handles itself (see [`Interrupts::handle_next`]):
    /// the top level ends the run only at the one after them.
    handled: Arc<AtomicU32>,
}

impl Default for Interrupts {
    fn default() -> Self {
        Interrupts {
            shutdowns: Arc::new(watch::channel(Shutdowns::default()).0),
            children: Arc::new(Mutex::new(Vec::new())),
            suspend_said: Arc::new(AtomicBool::new(false)),
            last_stop: Arc::new(Mutex::new(None)),
            handled: Arc::new(AtomicU32::new(0)),
        }
    }
}

impl Interrupts {
    /// Starts listening. Needs a tokio runtime; call it before anything writes a file, so
    /// that a file-size limit already fails writes with EFBIG instead of killing tfenv.
    pub fn install() -> std::io::Result<Interrupts> {
        use nix::sys::signal::Signal as Sig;
        use tokio::signal::unix::{SignalKind, signal};
        let ignored = ignored_at_start();
        let unless_ignored = |sig: Sig| -> std::io::Result<Option<tokio::signal::unix::Signal>> {
            if ignored & (1 << (sig as i32 - 1)) != 0 {
                tracing::debug!("{sig} was ignored when tfenv started; it stays ignored");
                return Ok(None);
            }
            signal(SignalKind::from_raw(sig as i32)).map(Some)
        };
        let interrupts = Interrupts::default();
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = unless_ignored(Sig::SIGHUP)?;
        let mut quit = unless_ignored(Sig::SIGQUIT)?;
        let mut tstp = unless_ignored(Sig::SIGTSTP)?;
        let mut xfsz = unless_ignored(Sig::SIGXFSZ)?;
        let hub = interrupts.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    Some(()) = int.recv() => SignalEvent::Shutdown(Shutdown::Interrupt),
                    Some(()) = term.recv() => SignalEvent::Shutdown(Shutdown::Terminate),
                    Some(()) = recv(&mut hup) => SignalEvent::Shutdown(Shutdown::Hangup),
                    Some(()) = recv(&mut quit) => SignalEvent::Shutdown(Shutdown::Quit),
                    Some(()) = recv(&mut tstp) => SignalEvent::Suspend,
                    Some(()) = recv(&mut xfsz) => SignalEvent::FileSizeLimit,
                    else => break,
                };
                hub.handle(event);
            }
        });
        Ok(interrupts)
    }

    /// Acts on one event, as [`decide`] says.
    fn handle(&self, event: SignalEvent) {
        tracing::debug!("signal: {event:?}");
        let running = self.running_program();
        let echo = match (event, *self.last_stop.lock().expect("last stop")) {
            (SignalEvent::Shutdown(kind), Some((last, at))) => {
                kind == last && at.elapsed() < super::signal::ECHO_WINDOW
            }
            _ => false,
        };
        let now = Situation {
            running: running.as_deref(),
            stopping: self.shutdowns.borrow().count > 0,
            orphaned: event == SignalEvent::Suspend && group_is_orphaned(),
            echo,
            shares_terminal: self.running_shares_terminal(),
        };
        match decide(event, now) {
            Action::Stop(kind) => {
                *self.last_stop.lock().expect("last stop") =
                    Some((kind, std::time::Instant::now()));
                self.shutdowns.send_modify(|s| {
                    s.count += 1;
                    s.last = Some(kind);
                })
            }
            Action::IgnoreSuspend { program } => {
                if !self.suspend_said.swap(true, Ordering::SeqCst) {
                    // Only terraform holds a state lock, and only in some calls.
                    let lock = if self.running_holds_state_lock() {
                        " (it may hold the state lock)"
                    } else {
                        ""
                    };
                    crate::output::stderr_line(&format!(
                        "tfenv: Ctrl-Z ignored while `{program}` runs{lock}; press Ctrl-C to stop it"
                    ));
                }
            }
            Action::SuspendSelf => {
                // SIGTSTP is caught, so its default (stop) must be done by hand.
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
            }
            Action::Ignore => {}
        }
    }

    /// Whether an interrupt arrived since tfenv started.
    pub fn received(&self) -> bool {
        self.shutdowns.borrow().count > 0
    }

    pub fn subscribe(&self) -> watch::Receiver<Shutdowns> {
        self.shutdowns.subscribe()
    }

    /// Records a running child until the guard is dropped. Taken before the child
    /// starts, so that no signal finds it running but unrecorded. `holds_state_lock`:
    /// it is a terraform call that may hold the state lock (messages say so).
    pub fn child_running(&self, program: &str, holds_state_lock: bool) -> ChildGuard {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Child {
                program: program.to_string(),
                holds_state_lock,
                shares_terminal: false,
            });
        ChildGuard {
            children: self.children.clone(),
            program: program.to_string(),
        }
    }

    /// Like [`Interrupts::child_running`], for a child in tfenv's own process group on
    /// the terminal (see `Invocation::terminal`).
    pub fn child_sharing_terminal(&self, program: &str) -> ChildGuard {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Child {
                program: program.to_string(),
                holds_state_lock: false,
                shares_terminal: true,
            });
        ChildGuard {
            children: self.children.clone(),
            program: program.to_string(),
        }
    }

    fn running_shares_terminal(&self) -> bool {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .is_some_and(|child| child.shares_terminal)
    }

    pub fn children_running(&self) -> usize {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    fn running_program(&self) -> Option<String> {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .map(|child| child.program.clone())
    }

    fn running_holds_state_lock(&self) -> bool {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .is_some_and(|child| child.holds_state_lock)
    }

    /// The command handles the next stop request itself, when none has come yet (a
    /// step whose cutting short does not change how the run ended: the upload to the
    /// shared ledger): the top level ends the run only at a second one. Returns the
    /// number of requests so far, to tell the next one by.
    pub fn handle_next(&self) -> u32 {
        let seen = self.shutdowns.borrow().count;
        if seen == 0 {
            self.handled.fetch_max(1, Ordering::SeqCst);
        }
        seen
    }

    /// A stop request came after the `seen` first ones (see [`Interrupts::handle_next`]).
    pub fn received_after(&self, seen: u32) -> bool {
        self.shutdowns.borrow().count > seen
    }

    /// Resolves at the first stop request past `seen` (see [`Interrupts::handle_next`]).
    pub async fn stop_requested_after(&self, seen: u32) {
        let mut rx = self.subscribe();
        loop {
            if rx.borrow_and_update().count > seen {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Resolves at the first stop request that arrives while no child is running and
    /// that the command does not handle itself: then nobody else will act on it, and the
    /// run should end.
    pub async fn idle_interrupt(&self) {
        let mut rx = self.subscribe();
        loop {
            if rx.borrow_and_update().count > self.handled.load(Ordering::SeqCst)
                && self.children_running() == 0
            {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Delivers `event` as if the OS had.
    #[cfg(test)]
    pub fn deliver(&self, event: SignalEvent) {
        self.handle(event);
    }

    #[cfg(test)]
    pub fn raise(&self) {
        self.handle(SignalEvent::Shutdown(Shutdown::Interrupt));
    }
}

/// The next delivery of a signal tfenv listens for; never, for one it does not.
async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// The signals this process inherited as ignored (bit n-1 for signal n), from
/// `/proc/self/status`: reading a disposition through sigaction is unsafe code. Where
/// there is no /proc, none.
fn ignored_at_start() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("SigIgn:"))
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Whether tfenv's process group is orphaned (POSIX): no member has a parent in another
/// group of the same session, so no job-control shell can continue it once stopped.
/// Looks at tfenv's line of ancestors inside its group (from /proc); where it cannot
/// tell, it answers no, and Ctrl-Z stops tfenv as it always did.
fn group_is_orphaned() -> bool {
    use nix::unistd::{Pid, getpgid, getpgrp, getsid};
    let (group, session) = (getpgrp(), getsid(None).ok());
    let mut pid = std::process::id() as i32;
    for _ in 0..64 {
        let Some(parent) = parent_of(pid) else {
            return false;
        };
        if parent <= 0 {
            return true;
        }
        let parent_pid = Pid::from_raw(parent);
        match getpgid(Some(parent_pid)) {
            Ok(parent_group) if parent_group == group => pid = parent,
            Ok(_) => return getsid(Some(parent_pid)).ok() != session,
            Err(_) => return false,
        }
    }
    false
}

/// The parent of `pid`, from `/proc/<pid>/stat` (`pid (comm) state ppid …`).
/// Kills whatever tfenv started and left running. Every run of tfenv's own runner has
/// ended (and its process group been killed) by the time tfenv exits, but a process the
/// AWS SDK started — a profile's `credential_process` — whose read was given up at a
/// deadline is not killed by the SDK and would outlive tfenv. Called once, on the way
/// out. Reads /proc; where there is none, it does nothing.
pub fn kill_leftover_children() {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let parents: Vec<(i32, i32)> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut below = vec![me];
    let mut leftovers = Vec::new();
    while let Some(parent) = below.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && pid != me && !leftovers.contains(&pid) {
                leftovers.push(pid);
                below.push(pid);
            }
        }
    }
    for pid in leftovers {
        tracing::debug!("killing leftover child process {pid}");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

/// A child running now, as signal messages name it.
#[derive(Debug)]
struct Child {
    program: String,
    holds_state_lock: bool,
    shares_terminal: bool,
}

pub struct ChildGuard {
    children: Arc<Mutex<Vec<Child>>>,
    program: String,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = children.iter().rposition(|c| c.program == self.program) {
            children.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_hangup_counts_once() {
        let interrupts = Interrupts::default();
        let _child = interrupts.child_running("terraform", true);
        interrupts.deliver(SignalEvent::Shutdown(Shutdown::Hangup));
        interrupts.deliver(SignalEvent::Shutdown(Shutdown::Hangup));
        let seen = *interrupts.subscribe().borrow();
        assert_eq!(seen.count, 1);
        assert_eq!(seen.last, Some(Shutdown::Hangup));
        interrupts.deliver(SignalEvent::Shutdown(Shutdown::Interrupt));
        assert_eq!(interrupts.subscribe().borrow().count, 2);
    }

    #[test]
    fn ctrl_z_while_a_child_runs_changes_nothing() {
        let interrupts = Interrupts::default();
        let child = interrupts.child_running("terraform", true);
        interrupts.deliver(SignalEvent::Suspend);
        interrupts.deliver(SignalEvent::Suspend);
        assert_eq!(interrupts.subscribe().borrow().count, 0);
        assert!(interrupts.suspend_said.load(Ordering::SeqCst));
        drop(child);
        assert_eq!(interrupts.children_running(), 0);
    }
}
