//! What tfenv keeps under `state/<env>/`: backups and their manifest, history, outputs,
//! the environment lock. Every file goes through `files` (atomic, private).
//! May use: terraform (its parsed JSON types only), project, files, output, error, exit,
//! git_info.

pub mod backups;
pub mod drift;
pub mod drift_check;
pub mod envlock;
pub mod history;
pub mod jsonl;
pub mod outputs;
pub mod plan_json;

/// The user running tfenv, for history and lock records.
pub fn whoami() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".to_string())
}
