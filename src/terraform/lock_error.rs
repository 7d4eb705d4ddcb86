//! Terraform's "Error acquiring the state lock" message, parsed into the lock holder so
//! tfenv can say who holds it (exit 4) instead of echoing a wall of text.

use crate::backend::lock::LockInfo;

/// The holder, when `output` is terraform failing to acquire the state lock.
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
    Some(holder)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
