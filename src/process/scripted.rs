//! A scripted runner for unit tests: each expected call is queued with its reply; a
//! call nobody scripted fails loudly, and every call is recorded. A call takes the first
//! queued reply whose arguments it starts with, so calls that run at the same time may
//! come in either order.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::sync::Mutex;

use super::{Finished, Invocation, RunOptions, Runner};

pub struct Reply {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Reply {
    pub fn ok(stdout: &str) -> Reply {
        Reply {
            code: 0,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    pub fn fail(code: i32, stderr: &str) -> Reply {
        Reply {
            code,
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }
}

#[derive(Default)]
pub struct ScriptedRunner {
    script: Mutex<VecDeque<(Vec<OsString>, Reply)>>,
    calls: Mutex<Vec<Invocation>>,
}

impl ScriptedRunner {
    /// Expects a call whose arguments start with `args`, and answers it with `reply`.
    pub fn expect(self, args: &[&str], reply: Reply) -> Self {
        let args = args.iter().map(OsString::from).collect();
        self.script.lock().unwrap().push_back((args, reply));
        self
    }

    pub fn calls(&self) -> Vec<Invocation> {
        self.calls.lock().unwrap().clone()
    }

    pub fn remaining(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

#[async_trait::async_trait]
impl Runner for ScriptedRunner {
    async fn run(&self, inv: &Invocation, mut options: RunOptions) -> anyhow::Result<Finished> {
        self.calls.lock().unwrap().push(inv.clone());
        let reply = {
            let mut script = self.script.lock().unwrap();
            let Some(next) = script.front() else {
                anyhow::bail!("unscripted call: {}", inv.display());
            };
            let next = next.0.clone();
            let Some(at) = script
                .iter()
                .position(|(expected, _)| inv.args.starts_with(expected))
            else {
                anyhow::bail!(
                    "expected a call starting with {next:?}, got: {}",
                    inv.display()
                );
            };
            script.remove(at).expect("a queued reply").1
        };
        let mut finished = Finished {
            code: Some(reply.code),
            stderr: reply.stderr,
            ..Finished::default()
        };
        match options.stdout_sink.as_mut() {
            Some(sink) => {
                if let Err(e) = sink.write_all(&reply.stdout).and_then(|()| sink.flush()) {
                    finished.sink_error = Some(e);
                }
            }
            None => finished.stdout = reply.stdout,
        }
        Ok(finished)
    }
}
