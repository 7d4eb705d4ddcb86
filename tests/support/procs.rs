//! Watching processes from a test: draining a child's output, and what /proc says
//! about the processes of a group (to prove nothing of an interrupted run lives on).

use std::io::Read;
use std::sync::{Arc, Mutex};

use nix::unistd::Pid;

pub fn drain(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
}

/// One line of `/proc/<pid>/stat`: the fields the tests look at.
#[derive(Debug)]
pub struct Proc {
    pub pid: Pid,
    pub name: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
}

impl Proc {
    /// A zombie has exited; it only waits to be reaped by its parent (here, often
    /// PID 1 of the machine, which may take its time). But a multi-threaded process
    /// (terraform is a Go program) whose main thread exits first shows `Z` while its
    /// other threads still run, and still hold its files and locks: that one is live.
    pub fn is_live(&self) -> bool {
        let gone = |state: char| state == 'Z' || state == 'X';
        if !gone(self.state) {
            return true;
        }
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return false;
        };
        tasks.flatten().any(|task| {
            std::fs::read_to_string(task.path().join("stat"))
                .ok()
                .and_then(|stat| {
                    let after = &stat[stat.rfind(')')? + 1..];
                    after.split_whitespace().next()?.chars().next()
                })
                .is_some_and(|state| !gone(state))
        })
    }
}

/// Every process on the machine, from /proc.
pub fn processes() -> Vec<Proc> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| process(Pid::from_raw(pid)))
        .collect()
}

/// What `/proc/<pid>/stat` says of one process, or `None` when it is gone (reaped).
pub fn process(pid: Pid) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp …`; comm may contain spaces and parentheses.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    Some(Proc {
        pid,
        name: stat[open + 1..close].to_string(),
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
    })
}

/// `/proc/<pid>/stat`'s state letter (`T` stopped, `Z` a zombie), `?` when it is gone.
pub fn state(pid: Pid) -> char {
    process(pid).map_or('?', |p| p.state)
}

/// Whether the process still runs (see `Proc::is_live`).
pub fn is_live(pid: Pid) -> bool {
    process(pid).is_some_and(|p| p.is_live())
}

/// The live processes of a process group.
pub fn live_in_group(group: Pid) -> Vec<Proc> {
    processes()
        .into_iter()
        .filter(|p| p.pgrp == group.as_raw() && p.is_live())
        .collect()
}
