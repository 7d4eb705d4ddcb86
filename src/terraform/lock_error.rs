//! Terraform's "Error acquiring the state lock" message, parsed into the lock holder so
//! tfenv can say who holds it (exit 4) instead of echoing a wall of text.

use crate::lock_info::LockInfo;

/// The holder, when `output` is terraform failing to acquire the state lock because
/// someone holds it. Terraform names the holder in a `Lock Info:` block; the same
/// heading without that block is a lock that could not be *taken* (a full disk while
/// writing the lock info, a backend that cannot be reached), which is no holder at all:
/// `None`, so the caller reports terraform's own message.
pub fn parse(output: &str) -> Option<LockInfo> {
    if !output.contains("Error acquiring the state lock") {
        return None;
    }
    let mut holder = LockInfo::default();
    let mut in_info = false;
    for raw in output.lines() {
        let line = raw.trim_start_matches(['│', '╷', '╵']).trim();
        if line.starts_with("Lock Info:") {
            in_info = true;
            continue;
        }
        if !in_info {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match key.trim() {
            "ID" => holder.id = value,
            "Operation" => holder.operation = value,
            "Who" => holder.who = value,
            "Version" => holder.version = value,
            "Created" => holder.created = value,
            "Path" => holder.path = value,
            _ => {}
        }
    }
    (holder != LockInfo::default()).then_some(holder)
}

/// Whether `output` is terraform failing to take the state lock because another process
/// holds the OS lock on a local state file but has written no `Lock Info` (yet, or ever:
/// any program may lock the file). The lock *is* held — exit 4 like any held lock — only
/// its holder is unknown. (`resource temporarily unavailable` is the `EAGAIN` of the
/// non-blocking `fcntl` lock terraform's local backend takes.)
pub fn held_by_unknown(output: &str) -> bool {
    output.contains("Error acquiring the state lock")
        && output.contains("resource temporarily unavailable")
        && parse(output).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What terraform 1.11 prints when another process holds the local state file's lock
    /// and has written no lock info.
    #[test]
    fn a_local_lock_held_without_lock_info_is_held_by_an_unknown_holder() {
        let stderr = "\n╷\n│ Error: Error acquiring the state lock\n│ \n│ Error message: resource temporarily unavailable\n│ open state/.dev.tfstate.lock.info: no such file or directory\n│ \n│ Terraform acquires a state lock to protect the state from being written\n╵\n";
        assert_eq!(parse(stderr), None);
        assert!(held_by_unknown(stderr));
        assert!(!held_by_unknown(
            "Error: Error acquiring the state lock\nError message: could not write lock info for \"terraform.tfstate\": no space left on device\n"
        ));
    }

    #[test]
    fn the_lock_info_block_is_parsed() {
        let stderr = "\n╷\n│ Error: Error acquiring the state lock\n│ \n│ Error message: ConditionalCheckFailedException: The conditional request failed\n│ Lock Info:\n│   ID:        9db590f1-b6fe-c5f2-2678-8804f089deba\n│   Path:      tfstate-test/dev/terraform.tfstate\n│   Operation: OperationTypeApply\n│   Who:       alice@laptop\n│   Version:   1.11.4\n│   Created:   2026-11-22 09:14:03.123 +0000 UTC\n│   Info:      \n│ \n│ Terraform acquires a state lock to protect the state from being written\n╵\n";
        let holder = parse(stderr).unwrap();
        assert_eq!(holder.id, "9db590f1-b6fe-c5f2-2678-8804f089deba");
        assert_eq!(holder.operation, "OperationTypeApply");
        assert_eq!(holder.who, "alice@laptop");
        assert_eq!(holder.version, "1.11.4");
        assert_eq!(holder.created, "2026-11-22 09:14:03.123 +0000 UTC");
        assert_eq!(holder.path, "tfstate-test/dev/terraform.tfstate");
    }

    #[test]
    fn other_errors_are_not_locks() {
        assert_eq!(parse("Error: Invalid value for variable"), None);
    }

    /// What terraform's local backend prints when writing `.terraform.tfstate.lock.info`
    /// fails: the lock heading, but nobody holds the lock.
    #[test]
    fn a_lock_that_could_not_be_taken_has_no_holder() {
        let stderr = "\n╷\n│ Error: Error acquiring the state lock\n│ \n│ Error message: could not write lock info for \"terraform.tfstate\": write .terraform.tfstate.lock.info: no space left on device\n│ \n│ Terraform acquires a state lock to protect the state from being written\n│ by multiple users at the same time. Please resolve the issue above and try\n│ again. For most commands, you can disable locking with the \"-lock=false\"\n│ flag, but this is not recommended.\n╵\n";
        assert_eq!(parse(stderr), None);
        // A `Lock Info:` heading with nothing under it names no holder either.
        assert_eq!(
            parse("Error: Error acquiring the state lock\nLock Info:\n  Info:\n"),
            None
        );
    }
}
