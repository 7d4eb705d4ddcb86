//! Exit codes: the one place that says what each number means (DESIGN.md §7).
//! Every failure is mapped to one of these at the top, in `lib.rs`. Uses nothing of tfenv's.

/// What a tfenv run ended with. Each value means one thing, so scripts and CI can branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for was done.
    Success,
    /// Terraform failed, I/O failed, or the configuration is bad.
    Failure,
    /// The command line was wrong.
    Usage,
    /// Changes or drift are present (`plan --detailed-exitcode`).
    Changes,
    /// The state or the environment is locked by someone else.
    Locked,
    /// A confirmation was not given, or a safety rule stopped the run.
    Refused,
    /// `status`: at least one environment has a problem. `bootstrap`: the backend has a
    /// protection someone set otherwise, left for `--fix`.
    Unhealthy,
    /// Interrupted by SIGINT or SIGTERM.
    Interrupted,
    /// `tfenv exec`: the code terraform itself ended with, passed through unchanged.
    Terraform(u8),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Changes => 3,
            Exit::Locked => 4,
            Exit::Refused => 5,
            Exit::Unhealthy => 6,
            Exit::Interrupted => 130,
            Exit::Terraform(code) => code,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}
