//! State backups: `state/<env>/backups/terraform.tfstate.YYYYMMDD-HHMMSS[-N]` plus one
//! MANIFEST.jsonl line each (sha256, size, header, reason). A backup is streamed from
//! `terraform state pull` into a temp file, hashed on the way, then renamed.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::project::Environment;
use crate::terraform::{Terraform, state};

/// File name prefix of state backups.
pub const PREFIX: &str = "terraform.tfstate.";
pub const MANIFEST: &str = "MANIFEST.jsonl";

/// One MANIFEST.jsonl line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub serial: u64,
    pub lineage: String,
    pub terraform_version: Option<String>,
    pub created: DateTime<Utc>,
    /// manual | pre-deploy | pre-refresh | pre-restore | pre-unlock
    pub reason: String,
}

pub fn dir(env: &Environment) -> PathBuf {
    env.artifacts_dir.join("backups")
}

/// Pulls the current state into a new backup. `Ok(None)` when there is no state yet
/// (nothing is created). On any failure no file and no manifest line is left.
pub async fn create(
    tf: &Terraform,
    env: &Environment,
    reason: &str,
) -> anyhow::Result<Option<Backup>> {
    let dir = dir(env);
    super::ensure_private_dir(&dir)?;
    let temp = tempfile::Builder::new()
        .prefix(".backup-")
        .suffix(".partial")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(
            super::PRIVATE_FILE,
        ))
        .tempfile_in(&dir)
        .with_context(|| format!("creating a backup file in `{}`", dir.display()))?;
    let hash = Arc::new(Mutex::new(Sha256::new()));
    let sink = Hashing {
        out: BufWriter::with_capacity(256 * 1024, temp.as_file().try_clone()?),
        hash: hash.clone(),
    };
    let Some(header) = tf.state_pull_into(env, Box::new(sink)).await? else {
        return Ok(None);
    };
    temp.as_file()
        .sync_all()
        .with_context(|| format!("writing a backup in `{}`", dir.display()))?;
    let sha256 = hex::encode(hash.lock().expect("hash").clone().finalize());

    let now = Utc::now();
    let stamp = now.format("%Y%m%d-%H%M%S").to_string();
    let mut temp = temp;
    let mut attempt = 0;
    let file = loop {
        let name = if attempt == 0 {
            format!("{PREFIX}{stamp}")
        } else {
            format!("{PREFIX}{stamp}-{attempt}")
        };
        match temp.persist_noclobber(dir.join(&name)) {
            Ok(_) => break name,
            Err(err) if err.error.kind() == std::io::ErrorKind::AlreadyExists => {
                temp = err.file;
                attempt += 1;
            }
            Err(err) => {
                return Err(err.error)
                    .with_context(|| format!("naming the backup in `{}`", dir.display()));
            }
        }
    };
    let backup = Backup {
        file,
        sha256,
        bytes: header.bytes,
        serial: header.serial,
        lineage: header.lineage,
        terraform_version: header.terraform_version,
        created: NaiveDateTime::parse_from_str(&stamp, "%Y%m%d-%H%M%S")
            .map_or(now, |t| t.and_utc()),
        reason: reason.to_string(),
    };
    if let Err(err) = super::append_line(&dir.join(MANIFEST), &serde_json::to_string(&backup)?) {
        // A backup without its manifest line cannot be verified: do not keep it.
        let _ = fs::remove_file(dir.join(&backup.file));
        return Err(err);
    }
    Ok(Some(backup))
}

/// Re-reads a backup from disk and checks it against its manifest line: present,
/// same size and SHA-256, a valid state whose serial and lineage match.
pub fn verify(dir: &Path, backup: &Backup) -> Result<(), String> {
    /// Up to this size a backup is read whole and parsed from memory (several times
    /// faster); larger ones are streamed so memory stays flat.
    const IN_MEMORY: u64 = 32 << 20;
    let path = dir.join(&backup.file);
    let file = File::open(&path).map_err(|e| format!("`{}` cannot be opened: {e}", backup.file))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let (sha256, header) = if size <= IN_MEMORY {
        let mut bytes = Vec::with_capacity(size as usize);
        let mut file = file;
        file.read_to_end(&mut bytes)
            .map_err(|e| format!("`{}` cannot be read: {e}", backup.file))?;
        (
            hex::encode(Sha256::digest(&bytes)),
            state::read_header_slice(&bytes),
        )
    } else {
        let mut reader = HashingReader {
            inner: file,
            hash: Sha256::new(),
        };
        let header = state::read_header(&mut reader);
        // Hash whatever the parser did not read, so the checksum covers the whole file.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        (hex::encode(reader.hash.finalize()), header)
    };
    if sha256 != backup.sha256 {
        return Err(format!(
            "`{}`: SHA-256 {} does not match the manifest's {}",
            backup.file,
            &sha256[..12],
            backup.sha256.chars().take(12).collect::<String>()
        ));
    }
    match header {
        Ok(Some(h))
            if h.serial == backup.serial
                && h.lineage == backup.lineage
                && h.bytes == backup.bytes =>
        {
            Ok(())
        }
        Ok(Some(h)) => Err(format!(
            "`{}`: header (serial {}, lineage {}) does not match the manifest (serial {}, lineage {})",
            backup.file, h.serial, h.lineage, backup.serial, backup.lineage
        )),
        Ok(None) => Err(format!("`{}` is empty", backup.file)),
        Err(err) => Err(format!("`{}` is not a valid state: {err}", backup.file)),
    }
}

/// Every manifest line, oldest first (torn lines skipped).
pub fn manifest(dir: &Path) -> anyhow::Result<Vec<Backup>> {
    let path = dir.join(MANIFEST);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading `{}`", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Backup files in `dir` (by name), whether or not the manifest knows them.
pub fn files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading `{}`", dir.display())),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| time_in_name(name).is_some())
        .collect();
    names.sort_by_key(|n| sort_key(n));
    Ok(names)
}

fn sort_key(name: &str) -> (Option<DateTime<Utc>>, u64) {
    (time_in_name(name), suffix(name))
}

/// Deletes the oldest backups beyond `keep`, never the newest and never one in
/// `protected`. Files first, then the manifest is rewritten without them.
pub fn prune(dir: &Path, keep: usize, protected: &[String]) -> anyhow::Result<Vec<String>> {
    let doomed = prune_plan(dir, keep, protected)?;
    for name in &doomed {
        match fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("deleting backup `{name}`")),
        }
    }
    let _lock = super::lock_file(&dir.join(MANIFEST))?;
    let kept: Vec<String> = manifest(dir)?
        .iter()
        .filter(|b| !doomed.contains(&b.file))
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()?;
    let mut text = kept.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    super::write_atomic(&dir.join(MANIFEST), text.as_bytes(), super::PRIVATE_FILE)?;
    Ok(doomed)
}

/// Which backups `prune` would delete, oldest first.
pub fn prune_plan(dir: &Path, keep: usize, protected: &[String]) -> anyhow::Result<Vec<String>> {
    let names = files(dir)?;
    let keep = keep.max(1); // never the newest
    let cut = names.len().saturating_sub(keep);
    Ok(names[..cut]
        .iter()
        .filter(|n| !protected.contains(n))
        .cloned()
        .collect())
}

/// Writes a copy of the state at `source` with its `serial` replaced, to `dest` (0600).
/// Only the top-level fields are split; the resources stay raw text.
pub fn with_serial(source: &Path, dest: &Path, serial: u64) -> anyhow::Result<()> {
    use serde_json::value::RawValue;
    let text =
        fs::read_to_string(source).with_context(|| format!("reading `{}`", source.display()))?;
    let mut fields: indexmap::IndexMap<String, Box<RawValue>> = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("`{}` is not a Terraform state ({e})", source.display()))?;
    let raw = RawValue::from_string(serial.to_string())?;
    if fields.insert("serial".to_string(), raw).is_none() {
        anyhow::bail!(
            "`{}` has no serial: not a Terraform state",
            source.display()
        );
    }
    let out = serde_json::to_vec_pretty(&fields)?;
    super::write_atomic(dest, &out, super::PRIVATE_FILE)
}

/// The newest backup file in `<artifacts>/backups/`, with the time in its name.
pub fn newest(artifacts_dir: &Path) -> Option<(String, DateTime<Utc>)> {
    let entries = fs::read_dir(artifacts_dir.join("backups")).ok()?;
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let created = time_in_name(&name)?;
            Some((name, created))
        })
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| suffix(&a.0).cmp(&suffix(&b.0))))
}

fn suffix(name: &str) -> u64 {
    name.rsplit_once('-')
        .filter(|(_, n)| n.len() < 6)
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// The UTC time in a backup's name, `None` for any other file.
pub fn time_in_name(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name.strip_prefix(PREFIX)?.get(..15)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%d-%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

struct Hashing {
    out: BufWriter<File>,
    hash: Arc<Mutex<Sha256>>,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write_all(buf)?;
        self.hash.lock().expect("hash").update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

struct HashingReader {
    inner: File,
    hash: Sha256,
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_backup_is_found_by_the_time_in_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let backups = dir.path().join("backups");
        fs::create_dir_all(&backups).unwrap();
        for name in [
            "terraform.tfstate.20261101-120000",
            "terraform.tfstate.20261121-080000",
            "terraform.tfstate.20261121-080000-2",
            "terraform.tfstate.20261121-080000-10",
            "MANIFEST.jsonl",
            "notes.txt",
        ] {
            fs::write(backups.join(name), "").unwrap();
        }
        let (name, created) = newest(dir.path()).unwrap();
        assert_eq!(name, "terraform.tfstate.20261121-080000-10");
        assert_eq!(created.to_rfc3339(), "2026-11-21T08:00:00+00:00");
        assert!(newest(&dir.path().join("none")).is_none());
    }

    #[test]
    fn prune_keeps_the_newest_n_and_protected_ones() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (1..=5)
            .map(|d| format!("terraform.tfstate.2026110{d}-120000"))
            .collect();
        for name in &names {
            fs::write(dir.path().join(name), "{}").unwrap();
        }
        let lines: Vec<String> = names
            .iter()
            .map(|n| format!("{{\"file\":\"{n}\",\"sha256\":\"x\",\"bytes\":2,\"serial\":1,\"lineage\":\"l\",\"terraform_version\":null,\"created\":\"2026-11-01T12:00:00Z\",\"reason\":\"manual\"}}"))
            .collect();
        fs::write(dir.path().join(MANIFEST), lines.join("\n") + "\n").unwrap();
        let deleted = prune(dir.path(), 2, &[names[1].clone()]).unwrap();
        assert_eq!(deleted, [names[0].clone(), names[2].clone()]);
        assert_eq!(
            files(dir.path()).unwrap(),
            [names[1].clone(), names[3].clone(), names[4].clone()]
        );
        assert_eq!(manifest(dir.path()).unwrap().len(), 3);
        // keep 0 still keeps the newest
        prune(dir.path(), 0, &[]).unwrap();
        assert_eq!(files(dir.path()).unwrap(), [names[4].clone()]);
    }

    #[test]
    fn with_serial_rewrites_only_the_serial() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("s");
        fs::write(&src, r#"{"version":4,"serial":2,"lineage":"l","outputs":{"a":{"value":"x"}},"resources":[]}"#).unwrap();
        with_serial(&src, &dir.path().join("d"), 9).unwrap();
        let header = state::read_header(File::open(dir.path().join("d")).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!((header.serial, header.lineage.as_str()), (9, "l"));
        let text = fs::read_to_string(dir.path().join("d")).unwrap();
        assert!(
            text.find("version").unwrap() < text.find("serial").unwrap(),
            "field order kept"
        );
        fs::write(&src, "[1]").unwrap();
        assert!(with_serial(&src, &dir.path().join("d"), 9).is_err());
    }

    #[test]
    fn verify_catches_a_changed_byte_and_a_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let text = br#"{"version":4,"serial":2,"lineage":"l-1","resources":[]}"#;
        fs::write(dir.path().join("b"), text).unwrap();
        let backup = Backup {
            file: "b".into(),
            sha256: hex::encode(Sha256::digest(text)),
            bytes: text.len() as u64,
            serial: 2,
            lineage: "l-1".into(),
            terraform_version: None,
            created: Utc::now(),
            reason: "manual".into(),
        };
        assert_eq!(verify(dir.path(), &backup), Ok(()));
        let mut changed = text.to_vec();
        changed[30] = b'9';
        fs::write(dir.path().join("b"), &changed).unwrap();
        assert!(verify(dir.path(), &backup).unwrap_err().contains("SHA-256"));
        fs::write(dir.path().join("b"), &text[..20]).unwrap();
        assert!(verify(dir.path(), &backup).is_err());
        fs::remove_file(dir.path().join("b")).unwrap();
        assert!(
            verify(dir.path(), &backup)
                .unwrap_err()
                .contains("cannot be opened")
        );
    }
}
