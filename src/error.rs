//! Domain errors that carry what the user needs to act, and decide the exit code.
//! Anything else (I/O, terraform failures) travels as `anyhow::Error` and exits 1.
//! May use: exit, lock_info.

use crate::exit::Exit;
use crate::lock_info::LockInfo;

/// A failure the user can do something about. `hint` is the "what to do" line.
#[derive(Debug, thiserror::Error)]
pub enum TfenvError {
    /// Bad command line: flags that contradict each other, an invalid name.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// The project's configuration is wrong or contradicts itself.
    #[error("{message}")]
    Config {
        message: String,
        hint: Option<String>,
    },
    /// Another process holds the environment or its state.
    #[error("{message}")]
    Locked {
        message: String,
        hint: Option<String>,
    },
    /// A confirmation was not given or a safety rule stopped the run.
    #[error("{message}")]
    Refused {
        message: String,
        hint: Option<String>,
    },
    /// A backend, or a tool reading it, did not answer within the deadline (`--timeout`);
    /// its processes were killed.
    #[error("{message}")]
    Unreachable {
        message: String,
        hint: Option<String>,
    },
    /// A backend refused tfenv's credentials, or none were found; the message names the
    /// credentials tried and the hint the setting to fix.
    #[error("{message}")]
    Auth {
        message: String,
        hint: Option<String>,
    },
    /// A backend accepted tfenv's credentials but refused the call (`AccessDenied`): the
    /// identity lacks a permission. The message names the credentials and the object, the
    /// hint the permission to grant.
    #[error("{message}")]
    Permission {
        message: String,
        hint: Option<String>,
    },
    /// terraform could not take the state lock of `env`: someone holds it.
    #[error("the state of `{env}` is locked by {}", info.describe())]
    LockHeld {
        env: String,
        info: Box<LockInfo>,
        /// When tfenv or terraform already waited for it (`--lock-timeout`), the hint: to
        /// wait longer, not to start waiting (`TfenvError::lock_held`).
        waited: Option<String>,
    },
    /// SIGINT / SIGTERM ended the run.
    #[error("interrupted")]
    Interrupted,
}

impl TfenvError {
    /// The state lock of `env` is held by `info`; `waited`: after `--lock-timeout` ran out.
    pub fn lock_held(env: &str, info: LockInfo, waited: bool) -> TfenvError {
        TfenvError::LockHeld {
            env: env.to_string(),
            info: Box::new(info),
            waited: waited.then(|| {
                format!(
                    "that run is still going: wait longer (a larger --lock-timeout), or check who holds it with `tfenv lock {env}`"
                )
            }),
        }
    }

    pub fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        TfenvError::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn config(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        TfenvError::Config {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn exit(&self) -> Exit {
        match self {
            TfenvError::Usage { .. } => Exit::Usage,
            TfenvError::Config { .. } => Exit::Failure,
            TfenvError::Locked { .. } | TfenvError::LockHeld { .. } => Exit::Locked,
            TfenvError::Refused { .. } => Exit::Refused,
            TfenvError::Unreachable { .. }
            | TfenvError::Auth { .. }
            | TfenvError::Permission { .. } => Exit::Failure,
            TfenvError::Interrupted => Exit::Interrupted,
        }
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            TfenvError::Usage { hint, .. }
            | TfenvError::Config { hint, .. }
            | TfenvError::Locked { hint, .. }
            | TfenvError::Refused { hint, .. }
            | TfenvError::Unreachable { hint, .. }
            | TfenvError::Auth { hint, .. }
            | TfenvError::Permission { hint, .. } => hint.as_deref(),
            TfenvError::LockHeld {
                waited: Some(hint), ..
            } => Some(hint),
            TfenvError::LockHeld { waited: None, .. } => Some(
                "another run holds the state lock: wait for it to finish and try again, or let tfenv wait for it (--lock-timeout 5m)",
            ),
            TfenvError::Interrupted => None,
        }
    }
}

/// The exit code for any error: the first `TfenvError` in the chain decides, else 1.
pub fn exit_for(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<TfenvError>())
        .map_or(Exit::Failure, TfenvError::exit)
}

/// The "what to do" line of the first `TfenvError` in the chain that has one.
pub fn hint_for(err: &anyhow::Error) -> Option<&str> {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<TfenvError>())
        .find_map(TfenvError::hint)
        .or_else(|| io_hint(err))
}

/// An error as a JSON document says it: `{"error": {message, hint, exit_code}}` for a
/// failed command, and the `error` of each failed entry of a document listing several.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ErrorReport {
    pub message: String,
    pub hint: Option<String>,
    pub exit_code: u8,
}

impl ErrorReport {
    pub fn of(err: &anyhow::Error) -> ErrorReport {
        ErrorReport {
            message: format!("{err:#}"),
            hint: hint_for(err).map(str::to_string),
            exit_code: exit_for(err).code(),
        }
    }
}

/// What to do about an I/O error whose cause the OS names but the user may not know.
fn io_hint(err: &anyhow::Error) -> Option<&'static str> {
    let io = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>())?;
    match nix::errno::Errno::from_raw(io.raw_os_error()?) {
        nix::errno::Errno::EFBIG => Some(
            "a file-size limit stopped the write (`ulimit -f` shows it); raise it with `ulimit -f unlimited` and run again",
        ),
        nix::errno::Errno::ENOSPC => Some("the disk is full; free some space and run again"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn exit_code_comes_from_the_typed_error_under_context() {
        let err = Err::<(), _>(TfenvError::usage("bad name", None))
            .context("resolving environment")
            .unwrap_err();
        assert_eq!(exit_for(&err), Exit::Usage);
        assert_eq!(exit_for(&anyhow::anyhow!("disk full")), Exit::Failure);
    }

    #[test]
    fn a_held_lock_is_rendered_from_its_holder_and_exits_4() {
        let info = LockInfo {
            id: "9db5".into(),
            operation: "OperationTypeApply".into(),
            who: "alice@laptop".into(),
            created: "2026-11-22 09:14:03 +0000 UTC".into(),
            ..LockInfo::default()
        };
        let err: anyhow::Error = TfenvError::LockHeld {
            env: "dev".into(),
            info: Box::new(info),
            waited: None,
        }
        .into();
        assert_eq!(
            err.to_string(),
            "the state of `dev` is locked by alice@laptop (OperationTypeApply since 2026-11-22 09:14:03 +0000 UTC, lock ID 9db5)"
        );
        assert_eq!(exit_for(&err), Exit::Locked);
        assert_eq!(
            hint_for(&err),
            Some(
                "another run holds the state lock: wait for it to finish and try again, or let tfenv wait for it (--lock-timeout 5m)"
            )
        );
    }

    #[test]
    fn a_file_size_limit_says_how_to_raise_it() {
        let err = anyhow::Error::from(std::io::Error::from_raw_os_error(
            nix::errno::Errno::EFBIG as i32,
        ))
        .context("writing the pulled state");
        assert!(hint_for(&err).unwrap().contains("ulimit -f"));
        assert_eq!(hint_for(&anyhow::anyhow!("other")), None);
    }

    #[test]
    fn hint_is_found_through_the_chain() {
        let err = Err::<(), _>(TfenvError::config("x", Some("do y".to_string())))
            .context("outer")
            .unwrap_err();
        assert_eq!(hint_for(&err), Some("do y"));
    }
}
