//! Files tfenv writes. Every write goes through `write_atomic` (temp file in the same
//! folder, fsync, rename), so a crash or a full disk leaves the old file or nothing.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

/// File name prefix of state backups: `terraform.tfstate.YYYYMMDD-HHMMSS[-N]`.
pub const BACKUP_PREFIX: &str = "terraform.tfstate.";

/// Mode for files that may hold secrets (state, outputs, history).
pub const PRIVATE_FILE: u32 = 0o600;
/// Mode for folders under `state/`.
pub const PRIVATE_DIR: u32 = 0o700;

/// Creates `dir` (and missing parents) with mode 0700, and tightens it if it exists.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
        .with_context(|| format!("creating `{}`", dir.display()))?;
    let mode = fs::metadata(dir)
        .with_context(|| format!("reading `{}`", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR))
            .with_context(|| format!("setting mode 0700 on `{}`", dir.display()))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically with `mode`. The parent folder must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("`{}` has no parent folder", path.display()))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tfenv-")
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in `{}`", dir.display()))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("writing `{}`", path.display()))?;
    temp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("replacing `{}`", path.display()))?;
    // The rename is durable only once the folder entry is on disk.
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The newest backup in `<artifacts>/backups/`, with the time in its name.
pub fn newest_backup(artifacts_dir: &Path) -> Option<(String, DateTime<Utc>)> {
    let entries = fs::read_dir(artifacts_dir.join("backups")).ok()?;
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let created = backup_time(&name)?;
            Some((name, created))
        })
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
}

/// The UTC time in a backup's name, `None` for any other file.
pub fn backup_time(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name.strip_prefix(BACKUP_PREFIX)?;
    let stamp = stamp.get(..15)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%d-%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// The last record of `<artifacts>/history.jsonl`, read from the end of the file so a
/// long history costs the same as a short one.
pub fn last_history_record(artifacts_dir: &Path) -> Option<Value> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs::File::open(artifacts_dir.join("history.jsonl")).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = String::new();
    file.read_to_string(&mut tail).ok()?;
    tail.lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_creates_with_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outputs.json");
        write_atomic(&path, b"one", PRIVATE_FILE).unwrap();
        write_atomic(&path, b"two", PRIVATE_FILE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp files left behind");
    }

    #[test]
    fn failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        write_atomic(&path, b"old", PRIVATE_FILE).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o500)).unwrap();
        let result = write_atomic(&path, b"new", PRIVATE_FILE);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        if nix::unistd::geteuid().is_root() {
            // root ignores folder permissions; the write goes through, still atomically.
            assert!(result.is_ok());
        } else {
            assert!(result.is_err());
            assert_eq!(fs::read(&path).unwrap(), b"old");
        }
    }

    #[test]
    fn newest_backup_is_found_by_the_time_in_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let backups = dir.path().join("backups");
        fs::create_dir_all(&backups).unwrap();
        for name in [
            "terraform.tfstate.20261101-120000",
            "terraform.tfstate.20261121-080000",
            "terraform.tfstate.20261121-080000-1",
            "MANIFEST.jsonl",
            "notes.txt",
        ] {
            fs::write(backups.join(name), "").unwrap();
        }
        let (name, created) = newest_backup(dir.path()).unwrap();
        assert_eq!(name, "terraform.tfstate.20261121-080000-1");
        assert_eq!(created.to_rfc3339(), "2026-11-21T08:00:00+00:00");
        assert!(newest_backup(&dir.path().join("none")).is_none());
    }

    #[test]
    fn last_history_record_skips_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("history.jsonl"),
            "{\"result\":\"applied\"}\n{\"result\":\"no-changes\"}\n{\"resu",
        )
        .unwrap();
        assert_eq!(
            last_history_record(dir.path()).unwrap()["result"],
            "no-changes"
        );
    }

    #[test]
    fn private_dir_is_0700_even_when_it_existed() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state/dev");
        fs::create_dir_all(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&state).unwrap();
        assert_eq!(
            fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
