//! State backups: `state/<env>/backups/terraform.tfstate.YYYYMMDD-HHMMSS[-N]` plus one
//! MANIFEST.jsonl line each (sha256, size, header, reason). A backup is streamed from its
//! source (`terraform state pull`, handed in by the caller) into a temp file, hashed on
//! the way, then renamed.

use std::fs::{self, File};
use std::future::Future;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::jsonl::Jsonl;
use crate::files;
use crate::project::Environment;
use crate::terraform::state::{self, StateHeader};

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
    /// manual | pre-deploy | pre-refresh | pre-restore | pre-migrate | pre-migrate-target | pre-reconfigure | pre-unlock | pre-exec
    pub reason: String,
    /// `ledger = "backend"`: the backup's name in the shared ledger (`backups/<this>` and
    /// `backups/<this>.json` under `<state key>.tfenv/`), usually `file`. Absent until
    /// tfenv first tries to upload it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<String>,
    /// Its upload failed: the next command that writes the ledger tries again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unshared: bool,
}

pub fn dir(env: &Environment) -> PathBuf {
    env.artifacts_dir.join("backups")
}

/// Takes a new backup of `env`'s state: `pull` streams the state into the writer it is
/// handed and returns the state's header (`Ok(None)` when there is no state yet, or only
/// the empty placeholder terraform prints then — no lineage, no resources: nothing is
/// created). On any failure no file and no manifest line is left.
pub async fn create<Pull, Pulling>(
    env: &Environment,
    reason: &str,
    pull: Pull,
) -> anyhow::Result<Option<Backup>>
where
    Pull: FnOnce(Box<dyn Write + Send>) -> Pulling,
    Pulling: Future<Output = anyhow::Result<Option<StateHeader>>>,
{
    match pull_state(env, pull).await? {
        Some(pulled) if !pulled.header().is_empty() => pulled.keep(reason).map(Some),
        _ => Ok(None),
    }
}

/// A state pulled into a temp file in `backups/`, hashed and synced, not yet a backup:
/// `keep` names it and writes its manifest line. Dropped, the file is removed — so a
/// state can be pulled before the run knows whether it will keep it.
pub struct Pulled {
    dir: PathBuf,
    temp: tempfile::NamedTempFile,
    header: StateHeader,
    sha256: String,
}

/// Streams `env`'s state from `pull` (as for [`create`]) into a temp file in `backups/`
/// (see [`Pulled`]). `Ok(None)` when there is no state yet (nothing is left behind).
pub async fn pull_state<Pull, Pulling>(
    env: &Environment,
    pull: Pull,
) -> anyhow::Result<Option<Pulled>>
where
    Pull: FnOnce(Box<dyn Write + Send>) -> Pulling,
    Pulling: Future<Output = anyhow::Result<Option<StateHeader>>>,
{
    let dir = dir(env);
    files::ensure_private_dir(&dir)?;
    let temp = tempfile::Builder::new()
        .prefix(".backup-")
        .suffix(".partial")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(
            files::PRIVATE_FILE,
        ))
        .tempfile_in(&dir)
        .with_context(|| format!("creating a backup file in `{}`", dir.display()))?;
    let hash = Arc::new(Mutex::new(Sha256::new()));
    let sink = Hashing {
        out: BufWriter::with_capacity(256 * 1024, temp.as_file().try_clone()?),
        hash: hash.clone(),
    };
    let Some(header) = pull(Box::new(sink)).await? else {
        return Ok(None);
    };
    temp.as_file()
        .sync_all()
        .with_context(|| format!("writing a backup in `{}`", dir.display()))?;
    let sha256 = hex::encode(hash.lock().expect("hash").clone().finalize());
    Ok(Some(Pulled {
        dir,
        temp,
        header,
        sha256,
    }))
}

impl Pulled {
    /// The pulled state's header (serial, lineage, …).
    pub fn header(&self) -> &StateHeader {
        &self.header
    }

    /// The pulled state's SHA-256 (hex).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Names the pulled state `terraform.tfstate.<now>` and adds its manifest line.
    pub fn keep(self, reason: &str) -> anyhow::Result<Backup> {
        let Pulled {
            dir,
            mut temp,
            header,
            sha256,
        } = self;
        let now = Utc::now();
        let stamp = now.format("%Y%m%d-%H%M%S").to_string();
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
            shared: None,
            unshared: false,
        };
        if let Err(err) = files::append_line(&dir.join(MANIFEST), &serde_json::to_string(&backup)?)
        {
            // A backup without its manifest line cannot be verified: do not keep it.
            let _ = fs::remove_file(dir.join(&backup.file));
            return Err(err);
        }
        Ok(backup)
    }
}

/// Re-reads a backup from disk and checks it against its manifest line: present,
/// same size and SHA-256, a valid state whose serial and lineage match.
pub fn verify(dir: &Path, backup: &Backup) -> Result<(), String> {
    verify_counting(dir, backup, &|_| {})
}

/// `verify`, telling `read` how many bytes it has read as it goes (for progress).
pub fn verify_counting(dir: &Path, backup: &Backup, read: &dyn Fn(u64)) -> Result<(), String> {
    /// Up to this size a backup is read whole and parsed from memory (several times
    /// faster); larger ones are streamed so memory stays flat.
    const IN_MEMORY: u64 = 32 << 20;
    let path = dir.join(&backup.file);
    let file = match files::open_regular(&path) {
        Ok(Some(file)) => file,
        Ok(None) => {
            return Err(format!(
                "`{}` cannot be opened: it does not exist",
                backup.file
            ));
        }
        Err(err) => return Err(format!("`{}` cannot be opened: {err:#}", backup.file)),
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let (sha256, header) = if size <= IN_MEMORY {
        let mut bytes = Vec::with_capacity(size as usize);
        let mut file = file;
        file.read_to_end(&mut bytes)
            .map_err(|e| format!("`{}` cannot be read: {e}", backup.file))?;
        read(bytes.len() as u64);
        (
            hex::encode(Sha256::digest(&bytes)),
            state::read_header_slice(&bytes),
        )
    } else {
        let mut reader = HashingReader {
            inner: file,
            hash: Sha256::new(),
            read,
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

/// Every readable manifest line, oldest first. A line that is not UTF-8, not a backup
/// record, or that names anything but a backup file in this folder is skipped with a
/// warning naming its line.
pub fn manifest(dir: &Path) -> anyhow::Result<Jsonl<Backup>> {
    super::jsonl::read(&dir.join(MANIFEST), RECORD, check_line)
}

const RECORD: &str = "backup record";

/// A manifest line is trusted only when it names a backup file in its own folder.
fn check_line(b: &Backup) -> Result<(), String> {
    if is_backup_name(&b.file) {
        Ok(())
    } else {
        Err(format!(
            "names `{}`, which is not a backup file name ({PREFIX}YYYYMMDD-HHMMSS)",
            b.file
        ))
    }
}

/// A file name tfenv gives backups: `terraform.tfstate.YYYYMMDD-HHMMSS[-N]`, nothing else
/// (no folder, no other suffix), so a manifest line can never point outside `backups/`.
pub fn is_backup_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    time_in_name(name).is_some()
        && match rest.get(15..) {
            Some("") => true,
            Some(n) => n
                .strip_prefix('-')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
            None => false,
        }
}

/// Files in `dir` named like a backup, whether or not the manifest knows them. Only the
/// manifest makes a file a backup; these names are for finding the ones it does not list.
pub fn files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = entries(dir)?
        .into_iter()
        .filter(|name| time_in_name(name).is_some())
        .collect();
    names.sort_by_key(|n| sort_key(n));
    Ok(names)
}

/// Temporary files left in `dir` by a backup or a manifest write that never finished
/// (tfenv killed, `ulimit -f`): `.backup-*.partial` and `.tfenv-*.tmp`.
pub fn leftovers(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = entries(dir)?
        .into_iter()
        .filter(|name| {
            (name.starts_with(".backup-") && name.ends_with(".partial"))
                || (name.starts_with(".tfenv-") && name.ends_with(".tmp"))
        })
        .collect();
    names.sort();
    Ok(names)
}

fn entries(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading `{}`", dir.display())),
    };
    Ok(entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect())
}

/// Backup names in the order they were taken.
pub fn sort_key(name: &str) -> (Option<DateTime<Utc>>, u64) {
    (time_in_name(name), suffix(name))
}

/// What `prune` will delete and why each other backup stays, computed in full before
/// anything is deleted.
#[derive(Debug, Default)]
pub struct PrunePlan {
    /// Backups to delete, oldest first.
    pub delete: Vec<String>,
    /// Backups that stay, newest first, each with its reason.
    pub kept: Vec<Kept>,
    /// Unreadable manifest lines, and files named like backups that the manifest does
    /// not list (never counted, never deleted).
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Kept {
    pub file: String,
    pub reason: KeptReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeptReason {
    /// The newest backup, always kept.
    Newest,
    /// One of the newest N.
    WithinKeep,
    /// Protected: the backup taken before the last successful deploy (the way back from
    /// what is running now), or the one just taken.
    LastGood,
    /// Taken since a history line that cannot be read: that line may be a newer
    /// successful deploy naming this backup, so it is kept too.
    MaybeLastGood,
    /// `ledger = "backend"`: not in the shared ledger yet (its upload failed, or has not
    /// been tried): this machine has the only copy, so it stays until it is uploaded.
    Unshared,
}

/// Backups pruning must keep, whatever their age.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Protected {
    /// By name: the last known good backup, the one just taken.
    pub files: Vec<String>,
    /// Every backup created at or after this time (see [`KeptReason::MaybeLastGood`]).
    pub since: Option<DateTime<Utc>>,
    /// `ledger = "backend"`: every backup not in the shared ledger yet (never uploaded,
    /// or its upload failed) is this machine's only copy (see [`KeptReason::Unshared`]).
    pub unshared: bool,
}

/// Plans a prune: the backups are the manifest's lines whose file is in `dir` (a file
/// the manifest does not list is not a backup, whatever its name). The newest `keep`
/// (at least one) stay, and so does every backup `protected` names or covers.
pub fn prune_plan(dir: &Path, keep: usize, protected: &Protected) -> anyhow::Result<PrunePlan> {
    let manifest = manifest(dir)?;
    let mut plan = PrunePlan {
        warnings: manifest.warnings,
        ..PrunePlan::default()
    };
    let mut listed: Vec<&Backup> = Vec::new();
    for backup in &manifest.records {
        if !listed.iter().any(|b| b.file == backup.file)
            && fs::symlink_metadata(dir.join(&backup.file)).is_ok_and(|m| m.is_file())
        {
            listed.push(backup);
        }
    }
    for name in files(dir)? {
        if !manifest.records.iter().any(|b| b.file == name) {
            plan.warnings.push(format!(
                "`{name}` has no line in {MANIFEST}: it is not counted as a backup and prune does not delete it"
            ));
        }
    }
    listed.sort_by_key(|b| (b.created, suffix(&b.file)));
    let keep = keep.max(1); // never the newest
    for (age, backup) in listed.iter().rev().enumerate() {
        let reason = match age {
            0 => Some(KeptReason::Newest),
            _ if age < keep => Some(KeptReason::WithinKeep),
            _ if protected.files.contains(&backup.file) => Some(KeptReason::LastGood),
            _ if protected.since.is_some_and(|since| backup.created >= since) => {
                Some(KeptReason::MaybeLastGood)
            }
            _ if protected.unshared && (backup.shared.is_none() || backup.unshared) => {
                Some(KeptReason::Unshared)
            }
            _ => None,
        };
        match reason {
            Some(reason) => plan.kept.push(Kept {
                file: backup.file.clone(),
                reason,
            }),
            None => plan.delete.push(backup.file.clone()),
        }
    }
    plan.delete.reverse();
    Ok(plan)
}

/// Carries out `plan`. The manifest is rewritten first, without the lines of the
/// backups to delete (every other line, readable or not, is kept byte for byte); then
/// the files go. A failure can leave a file the manifest no longer lists (verify shows
/// it), never a manifest line promising a deleted backup. Returns the files deleted.
pub fn prune_planned(dir: &Path, plan: &PrunePlan) -> anyhow::Result<Vec<String>> {
    if plan.delete.is_empty() {
        return Ok(Vec::new());
    }
    let path = dir.join(MANIFEST);
    let _lock = files::lock_file(&path)?;
    let bytes = files::read_regular(&path)?.unwrap_or_default();
    let mut text = Vec::with_capacity(bytes.len());
    let mut doomed: Vec<String> = Vec::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        match serde_json::from_slice::<Backup>(line.trim_ascii()) {
            Ok(b) if plan.delete.contains(&b.file) => {
                if !doomed.contains(&b.file) {
                    doomed.push(b.file);
                }
            }
            _ => {
                text.extend_from_slice(line);
                if !line.ends_with(b"\n") {
                    text.push(b'\n');
                }
            }
        }
    }
    if doomed.is_empty() {
        return Ok(doomed);
    }
    files::write_atomic(&path, &text, files::PRIVATE_FILE)?;
    let mut failed = Vec::new();
    let mut deleted = Vec::new();
    // Oldest first, as planned.
    for name in plan.delete.iter().filter(|n| doomed.contains(n)) {
        match fs::remove_file(dir.join(name)) {
            Ok(()) => deleted.push(name.clone()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => failed.push(format!("`{name}` ({err})")),
        }
    }
    if !failed.is_empty() {
        return Err(crate::error::TfenvError::config(
            format!(
                "could not delete {} after removing them from {MANIFEST}",
                failed.join(", ")
            ),
            Some(format!(
                "they are no longer backups; delete them by hand from `{}`",
                dir.display()
            )),
        )
        .into());
    }
    Ok(deleted)
}

/// Deletes the oldest backups beyond `keep`, never the newest and never one in
/// `protected`: the plan is computed in full first, then carried out.
#[cfg(test)]
pub fn prune(dir: &Path, keep: usize, protected: &Protected) -> anyhow::Result<Vec<String>> {
    prune_planned(dir, &prune_plan(dir, keep, protected)?)
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
    files::write_atomic(dest, &out, files::PRIVATE_FILE)
}

/// The newest backup of `<artifacts>/backups/`: the last manifest line whose file is
/// there. A file the manifest does not list is not a backup. A manifest that is not a
/// regular file (a FIFO, a folder) is an error naming it.
pub fn newest_backup(artifacts_dir: &Path) -> anyhow::Result<Option<Backup>> {
    let dir = artifacts_dir.join("backups");
    super::jsonl::find_last(&dir.join(MANIFEST), |line| {
        let backup: Backup = super::jsonl::parse_line(line, RECORD, check_line).ok()?;
        fs::symlink_metadata(dir.join(&backup.file))
            .is_ok_and(|m| m.is_file())
            .then_some(backup)
    })
}

/// Makes the file at `temp` (in `dir`, already checked against `backup`) a backup of
/// this folder: named `backup.file`, or `<file>-N` when that name is taken, with its
/// manifest line. Returns the line as written.
pub fn adopt(dir: &Path, temp: &Path, mut backup: Backup) -> anyhow::Result<Backup> {
    let base = backup.file.clone();
    let mut attempt = 0;
    loop {
        let name = match attempt {
            0 => base.clone(),
            n => format!("{base}-{n}"),
        };
        // A hard link fails when the name is taken: never replaces a file.
        match fs::hard_link(temp, dir.join(&name)) {
            Ok(()) => {
                let _ = fs::remove_file(temp);
                backup.file = name;
                break;
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("naming the backup in `{}`", dir.display()));
            }
        }
    }
    if let Err(err) = files::append_line(&dir.join(MANIFEST), &serde_json::to_string(&backup)?) {
        let _ = fs::remove_file(dir.join(&backup.file));
        return Err(err);
    }
    Ok(backup)
}

/// The order of backups taken in the same second: `-N`.
pub fn suffix(name: &str) -> u64 {
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

struct HashingReader<'a> {
    inner: File,
    hash: Sha256,
    read: &'a dyn Fn(u64),
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        (self.read)(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(dir: &Path) -> Environment {
        fs::write(dir.join("tfenv.toml"), "[environments.dev]\n").unwrap();
        let project = crate::project::Project::load(dir, None).unwrap();
        project.environment("dev").unwrap().clone()
    }

    #[tokio::test]
    async fn a_backup_is_streamed_from_its_source_hashed_and_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let env = environment(tmp.path());
        let state = br#"{"version":4,"terraform_version":"1.11.4","serial":7,"lineage":"l-7","outputs":{},"resources":[]}"#;
        let pull = |mut sink: Box<dyn Write + Send>| async move {
            sink.write_all(state)?;
            sink.flush()?;
            Ok(state::read_header_slice(state)?)
        };
        let backup = create(&env, "manual", pull).await.unwrap().unwrap();
        assert_eq!((backup.serial, backup.lineage.as_str()), (7, "l-7"));
        assert_eq!(backup.sha256, hex::encode(Sha256::digest(state)));
        assert_eq!(fs::read(dir(&env).join(&backup.file)).unwrap(), state);
        assert_eq!(manifest(&dir(&env)).unwrap().records, vec![backup.clone()]);
        assert_eq!(verify(&dir(&env), &backup), Ok(()));

        // No state yet: nothing is written.
        let none = create(&env, "manual", |_| async { Ok(None) })
            .await
            .unwrap();
        assert_eq!(none, None);
        // A source that fails half-way leaves no file and no manifest line.
        let failing = |mut sink: Box<dyn Write + Send>| async move {
            sink.write_all(b"{\"version\":4,")?;
            anyhow::bail!("state pull failed")
        };
        assert!(create(&env, "manual", failing).await.is_err());
        assert_eq!(files(&dir(&env)).unwrap(), vec![backup.file.clone()]);
        assert!(leftovers(&dir(&env)).unwrap().is_empty());
        assert_eq!(manifest(&dir(&env)).unwrap().records.len(), 1);
    }

    fn manifest_line(file: &str) -> String {
        let created = time_in_name(file).unwrap().to_rfc3339();
        format!(
            "{{\"file\":\"{file}\",\"sha256\":\"x\",\"bytes\":2,\"serial\":1,\"lineage\":\"l\",\"terraform_version\":null,\"created\":\"{created}\",\"reason\":\"manual\"}}\n"
        )
    }

    /// Backups `names` in `dir`, each with its manifest line.
    fn make_backups(dir: &Path, names: &[String]) {
        let mut manifest = String::new();
        for name in names {
            fs::write(dir.join(name), "{}").unwrap();
            manifest += &manifest_line(name);
        }
        fs::write(dir.join(MANIFEST), manifest).unwrap();
    }

    fn names(days: std::ops::RangeInclusive<u32>) -> Vec<String> {
        days.map(|d| format!("terraform.tfstate.202611{d:02}-120000"))
            .collect()
    }

    fn newest(dir: &Path) -> anyhow::Result<Option<(String, DateTime<Utc>)>> {
        Ok(newest_backup(dir)?.map(|b| (b.file, b.created)))
    }

    #[test]
    fn newest_backup_is_the_last_listed_one_whose_file_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let backups = dir.path().join("backups");
        fs::create_dir_all(&backups).unwrap();
        let listed = [
            "terraform.tfstate.20261101-120000",
            "terraform.tfstate.20261121-080000",
            "terraform.tfstate.20261121-080000-2",
            "terraform.tfstate.20261121-080000-10",
        ]
        .map(String::from);
        make_backups(&backups, &listed);
        // Named like newer backups, but not in the manifest: not backups.
        fs::write(backups.join("terraform.tfstate.20301231-235959"), "").unwrap();
        fs::write(backups.join("notes.txt"), "").unwrap();
        let (name, created) = newest(dir.path()).unwrap().unwrap();
        assert_eq!(name, "terraform.tfstate.20261121-080000-10");
        assert_eq!(created.to_rfc3339(), "2026-11-21T08:00:00+00:00");
        // A listed backup whose file is gone is skipped.
        fs::remove_file(backups.join(&listed[3])).unwrap();
        assert_eq!(newest(dir.path()).unwrap().unwrap().0, listed[2]);
        assert!(newest(&dir.path().join("none")).unwrap().is_none());
    }

    #[test]
    fn a_manifest_that_is_a_fifo_is_an_error_not_no_backup() {
        let dir = tempfile::tempdir().unwrap();
        let backups = dir.path().join("backups");
        fs::create_dir_all(&backups).unwrap();
        nix::unistd::mkfifo(
            &backups.join(MANIFEST),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let err = newest(dir.path()).unwrap_err();
        assert!(
            format!("{err:#}").contains("MANIFEST.jsonl` is a FIFO (named pipe)"),
            "{err:#}"
        );
    }

    #[test]
    fn newest_skips_a_line_the_manifest_reader_skips() {
        let dir = tempfile::tempdir().unwrap();
        let backups = dir.path().join("backups");
        fs::create_dir_all(&backups).unwrap();
        let real = names(1..=1);
        make_backups(&backups, &real);
        // A newer line naming a file outside the folder, which exists there.
        fs::write(backups.join("../terraform.tfstate.20261130-120000"), "{}").unwrap();
        let outside = manifest_line("terraform.tfstate.20261130-120000")
            .replace("\"terraform.tfstate", "\"../terraform.tfstate");
        let mut text = fs::read_to_string(backups.join(MANIFEST)).unwrap();
        text += &outside;
        fs::write(backups.join(MANIFEST), text).unwrap();
        assert_eq!(newest(dir.path()).unwrap().unwrap().0, real[0]);
    }

    #[test]
    fn prune_keeps_every_backup_taken_since_the_protected_time() {
        let dir = tempfile::tempdir().unwrap();
        let all = names(1..=6);
        make_backups(dir.path(), &all);
        let protected = Protected {
            files: vec![all[0].clone()],
            since: Some(time_in_name(&all[3]).unwrap()),
            unshared: false,
        };
        let plan = prune_plan(dir.path(), 1, &protected).unwrap();
        assert_eq!(plan.delete, all[1..3]);
        let reasons: Vec<KeptReason> = plan.kept.iter().map(|k| k.reason).collect();
        assert_eq!(
            reasons,
            [
                KeptReason::Newest,
                KeptReason::MaybeLastGood,
                KeptReason::MaybeLastGood,
                KeptReason::LastGood
            ]
        );
        let everything = Protected {
            files: Vec::new(),
            since: Some(DateTime::<Utc>::MIN_UTC),
            unshared: false,
        };
        assert!(
            prune_plan(dir.path(), 1, &everything)
                .unwrap()
                .delete
                .is_empty()
        );
    }

    #[test]
    fn backup_names_are_exactly_what_tfenv_writes() {
        for good in [
            "terraform.tfstate.20261121-080000",
            "terraform.tfstate.20261121-080000-12",
        ] {
            assert!(is_backup_name(good), "{good}");
        }
        for bad in [
            "../terraform.tfstate.20261121-080000",
            "terraform.tfstate.20261121-080000/../../x",
            "terraform.tfstate.20261121-080000-",
            "terraform.tfstate.20261121-080000.bak",
            "terraform.tfstate.2026112-0800000",
            "MANIFEST.jsonl",
        ] {
            assert!(!is_backup_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_stray_file_named_like_a_backup_never_makes_prune_delete_a_real_one() {
        let dir = tempfile::tempdir().unwrap();
        let real = names(1..=2);
        make_backups(dir.path(), &real);
        // Newer-looking strays: by name they would push both real backups out of --keep 2.
        for stray in names(20..=21) {
            fs::write(dir.path().join(stray), "{}").unwrap();
        }
        let plan = prune_plan(dir.path(), 2, &Protected::default()).unwrap();
        assert!(plan.delete.is_empty(), "{plan:?}");
        assert_eq!(plan.warnings.len(), 2, "{:?}", plan.warnings);
        assert!(
            plan.warnings[0]
                .contains("terraform.tfstate.20261120-120000` has no line in MANIFEST.jsonl")
        );
        assert!(
            prune(dir.path(), 2, &Protected::default())
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            files(dir.path()).unwrap().len(),
            4,
            "strays are not deleted either"
        );
    }

    #[test]
    fn a_damaged_manifest_line_is_skipped_and_kept_while_prune_deletes_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let real = names(1..=4);
        make_backups(dir.path(), &real);
        let mut text = fs::read(dir.path().join(MANIFEST)).unwrap();
        let damaged = b"{\"file\":\"terraform.tfstate.20261130-120000\",\"reason\":\"\xff\"}\n";
        text.splice(0..0, damaged.iter().copied());
        let outside = manifest_line("terraform.tfstate.20261129-120000")
            .replace("\"terraform.tfstate", "\"../terraform.tfstate");
        text.extend_from_slice(outside.as_bytes());
        fs::write(dir.path().join(MANIFEST), &text).unwrap();
        fs::write(
            dir.path().join("../terraform.tfstate.20261129-120000"),
            "{}",
        )
        .unwrap();

        let plan = prune_plan(dir.path(), 2, &Protected::default()).unwrap();
        assert_eq!(plan.delete, real[..2]);
        assert_eq!(
            plan.kept,
            [
                Kept {
                    file: real[3].clone(),
                    reason: KeptReason::Newest
                },
                Kept {
                    file: real[2].clone(),
                    reason: KeptReason::WithinKeep
                },
            ]
        );
        assert!(
            plan.warnings[0].contains("MANIFEST.jsonl` line 1: not valid UTF-8"),
            "{:?}",
            plan.warnings
        );
        assert!(
            plan.warnings[1].contains("line 6: names `../terraform.tfstate"),
            "{:?}",
            plan.warnings
        );
        assert_eq!(prune_planned(dir.path(), &plan).unwrap(), real[..2]);
        assert_eq!(files(dir.path()).unwrap(), real[2..]);
        assert!(
            dir.path()
                .join("../terraform.tfstate.20261129-120000")
                .exists()
        );
        let after = fs::read(dir.path().join(MANIFEST)).unwrap();
        assert!(
            after.starts_with(damaged),
            "unreadable lines are kept as they were"
        );
        assert_eq!(manifest(dir.path()).unwrap().records.len(), 2);
    }

    #[test]
    fn nothing_is_deleted_when_the_manifest_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        make_backups(dir.path(), &names(1..=3));
        fs::remove_file(dir.path().join(MANIFEST)).unwrap();
        fs::create_dir(dir.path().join(MANIFEST)).unwrap();
        assert!(prune(dir.path(), 1, &Protected::default()).is_err());
        assert_eq!(files(dir.path()).unwrap().len(), 3);
    }

    #[test]
    fn leftovers_are_the_partial_and_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".backup-a1B2.partial",
            ".tfenv-x.tmp",
            ".MANIFEST.jsonl.lock",
            "MANIFEST.jsonl",
        ] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        assert_eq!(
            leftovers(dir.path()).unwrap(),
            [".backup-a1B2.partial", ".tfenv-x.tmp"]
        );
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
        let deleted = prune(
            dir.path(),
            2,
            &Protected {
                files: vec![names[1].clone()],
                since: None,
                unshared: false,
            },
        )
        .unwrap();
        assert_eq!(deleted, [names[0].clone(), names[2].clone()]);
        assert_eq!(
            files(dir.path()).unwrap(),
            [names[1].clone(), names[3].clone(), names[4].clone()]
        );
        assert_eq!(manifest(dir.path()).unwrap().records.len(), 3);
        // keep 0 still keeps the newest
        prune(dir.path(), 0, &Protected::default()).unwrap();
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
            shared: None,
            unshared: false,
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
