//! The signals tfenv acts on, as typed events, and the one place that decides what each
//! one does. No signal tfenv listens for may kill or stop it while a child (terraform,
//! holding its state lock) runs; the runner then carries out the stop policy.

/// A signal asking the run to end. Each is handled like Ctrl-C: the running terraform gets
/// one SIGINT and tfenv waits for it to release its lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: a supervisor (CI, systemd, `kill`).
    Terminate,
    /// SIGHUP: the terminal closed or the SSH session dropped.
    Hangup,
    /// SIGQUIT: Ctrl-\.
    Quit,
}

impl Shutdown {
    /// How tfenv names it on stderr.
    pub fn describe(self) -> &'static str {
        match self {
            Shutdown::Interrupt => "interrupt",
            Shutdown::Terminate => "SIGTERM",
            Shutdown::Hangup => "hangup (SIGHUP)",
            Shutdown::Quit => "SIGQUIT",
        }
    }
}

/// A signal tfenv received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalEvent {
    Shutdown(Shutdown),
    /// SIGTSTP: Ctrl-Z.
    Suspend,
    /// SIGXFSZ: a write went past the file-size limit (`ulimit -f`). Caught rather than
    /// left to its default (which kills tfenv mid-write), the write fails with EFBIG and
    /// the normal error path cleans up.
    FileSizeLimit,
}

/// What tfenv does about a [`SignalEvent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Count it as a request to stop: a running child gets the two-stage policy of the
    /// runner (first: one SIGINT and wait; second: force), an idle run ends with exit 130.
    Stop(Shutdown),
    /// Ctrl-Z while `program` runs: tfenv stays running, so that terraform is never left
    /// holding its lock behind a stopped parent. Said once on stderr.
    IgnoreSuspend { program: String },
    /// Ctrl-Z with no child running: stop tfenv as the default action would have.
    SuspendSelf,
    /// Nothing to do.
    Ignore,
}

/// What the decision depends on, besides the event.
#[derive(Clone, Copy, Debug, Default)]
pub struct Situation<'a> {
    /// The child running now, if any.
    pub running: Option<&'a str>,
    /// A stop request was received already.
    pub stopping: bool,
    /// The event repeats the last stop request's kind within moments (`ECHO_WINDOW`).
    pub echo: bool,
    /// tfenv's process group is orphaned: no job-control shell could continue it once
    /// stopped. The kernel discards a terminal's Ctrl-Z for such a group; so does tfenv.
    pub orphaned: bool,
    /// The running child shares tfenv's process group on the terminal (`tfenv exec`):
    /// the terminal's Ctrl-Z stopped it too.
    pub shares_terminal: bool,
}

/// How soon a repeat of the same SIGTERM counts as an echo of it (see `decide`).
pub const ECHO_WINDOW: std::time::Duration = std::time::Duration::from_millis(500);

/// The decision for `event` in `now`.
pub fn decide(event: SignalEvent, now: Situation<'_>) -> Action {
    let Situation {
        running,
        stopping,
        orphaned,
        ..
    } = now;
    match event {
        // A terminal that hangs up may be signalled twice (by the kernel and by the shell
        // that owned it); nobody asked to force anything, and forcing is what leaves a
        // lock held. Only a second INT, TERM or QUIT escalates.
        SignalEvent::Shutdown(Shutdown::Hangup) if stopping => Action::Ignore,
        // `timeout`, systemd and CI runners send SIGTERM to the process and to its group
        // at once: tfenv gets the same request twice within milliseconds. That is one
        // request, not a second one asking to force terraform to stop.
        SignalEvent::Shutdown(Shutdown::Terminate) if stopping && now.echo => Action::Ignore,
        SignalEvent::Shutdown(kind) => Action::Stop(kind),
        SignalEvent::Suspend => match running {
            // The child stopped with it: tfenv stops too, and the shell's `fg` continues
            // both, as a terraform started without tfenv would be continued.
            Some(_) if now.shares_terminal && !orphaned => Action::SuspendSelf,
            Some(program) => Action::IgnoreSuspend {
                program: program.to_string(),
            },
            None if orphaned => Action::Ignore,
            None => Action::SuspendSelf,
        },
        SignalEvent::FileSizeLimit => Action::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(running: Option<&str>, stopping: bool) -> Situation<'_> {
        Situation {
            running,
            stopping,
            orphaned: false,
            echo: false,
            shares_terminal: false,
        }
    }

    #[test]
    fn ctrl_z_stops_tfenv_with_a_child_that_shares_its_terminal() {
        let shared = Situation {
            shares_terminal: true,
            ..with(Some("terraform"), false)
        };
        assert_eq!(decide(SignalEvent::Suspend, shared), Action::SuspendSelf);
        // Its own group: the child never saw the Ctrl-Z; tfenv stays to watch it.
        assert!(matches!(
            decide(SignalEvent::Suspend, with(Some("terraform"), false)),
            Action::IgnoreSuspend { .. }
        ));
    }

    #[test]
    fn a_sigterm_sent_to_the_process_and_its_group_at_once_counts_once() {
        let echo = Situation {
            echo: true,
            ..with(Some("terraform"), true)
        };
        let term = SignalEvent::Shutdown(Shutdown::Terminate);
        assert_eq!(decide(term, echo), Action::Ignore);
        // A later SIGTERM, or a second Ctrl-C however quick, still escalates.
        assert_eq!(
            decide(term, with(Some("terraform"), true)),
            Action::Stop(Shutdown::Terminate)
        );
        assert_eq!(
            decide(SignalEvent::Shutdown(Shutdown::Interrupt), echo),
            Action::Stop(Shutdown::Interrupt)
        );
    }

    #[test]
    fn every_shutdown_signal_stops_the_run_like_ctrl_c() {
        for kind in [
            Shutdown::Interrupt,
            Shutdown::Terminate,
            Shutdown::Hangup,
            Shutdown::Quit,
        ] {
            assert_eq!(
                decide(SignalEvent::Shutdown(kind), with(Some("terraform"), false)),
                Action::Stop(kind)
            );
            assert_eq!(
                decide(SignalEvent::Shutdown(kind), with(None, false)),
                Action::Stop(kind)
            );
        }
    }

    #[test]
    fn a_second_signal_escalates_unless_it_is_a_hangup() {
        for kind in [Shutdown::Interrupt, Shutdown::Terminate, Shutdown::Quit] {
            assert_eq!(
                decide(SignalEvent::Shutdown(kind), with(Some("terraform"), true)),
                Action::Stop(kind)
            );
        }
        assert_eq!(
            decide(
                SignalEvent::Shutdown(Shutdown::Hangup),
                with(Some("terraform"), true)
            ),
            Action::Ignore
        );
    }

    #[test]
    fn ctrl_z_is_ignored_while_a_child_runs_and_suspends_tfenv_otherwise() {
        assert_eq!(
            decide(SignalEvent::Suspend, with(Some("terraform"), false)),
            Action::IgnoreSuspend {
                program: "terraform".to_string()
            }
        );
        assert_eq!(
            decide(SignalEvent::Suspend, with(None, false)),
            Action::SuspendSelf
        );
    }

    #[test]
    fn ctrl_z_never_stops_tfenv_where_nothing_could_continue_it() {
        let orphaned = Situation {
            orphaned: true,
            ..Situation::default()
        };
        assert_eq!(decide(SignalEvent::Suspend, orphaned), Action::Ignore);
    }

    #[test]
    fn a_file_size_limit_signal_is_left_to_the_failed_write() {
        assert_eq!(
            decide(SignalEvent::FileSizeLimit, with(Some("terraform"), false)),
            Action::Ignore
        );
        assert_eq!(
            decide(SignalEvent::FileSizeLimit, with(None, true)),
            Action::Ignore
        );
    }
}
