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
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may contain spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let (Some(state), Some(ppid), Some(pgrp)) = (
            rest.first().and_then(|s| s.chars().next()),
            rest.get(1).and_then(|p| p.parse().ok()),
            rest.get(2).and_then(|p| p.parse().ok()),
        ) else {
            continue;
        };
        found.push(Proc {
            pid: Pid::from_raw(pid),
            name: stat[open + 1..close].to_string(),
            state,
            ppid,
            pgrp,
        });
    }
    found
}

/// The live processes of a process group.
pub fn live_in_group(group: Pid) -> Vec<Proc> {
    processes()
        .into_iter()
        .filter(|p| p.pgrp == group.as_raw() && p.is_live())
        .collect()
}
