//! tfenv's own files on disk: every write atomic (temp file in the same folder, fsync,
//! rename) with private modes, and reads that open only regular files, never a FIFO.
//! A leaf: it may use `error` only.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

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

/// A private (0600) temp file in `dest`'s folder, to be filled and then named `dest` with
/// [`persist_new`]; dropped before that, it is removed (no half file is ever `dest`).
pub fn private_temp_beside(dest: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = dest
        .parent()
        .with_context(|| format!("`{}` has no parent folder", dest.display()))?;
    tempfile::Builder::new()
        .prefix(".tfenv-")
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(PRIVATE_FILE))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in `{}`", dir.display()))
}

/// Names a complete temp file `dest`, synced, never replacing a file already there.
pub fn persist_new(temp: tempfile::NamedTempFile, dest: &Path) -> anyhow::Result<()> {
    temp.as_file()
        .sync_all()
        .with_context(|| format!("writing `{}`", dest.display()))?;
    temp.persist_noclobber(dest)
        .map_err(|e| e.error)
        .with_context(|| format!("creating `{}`", dest.display()))?;
    if let Some(dir) = dest.parent().and_then(|d| fs::File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Appends one line to a JSONL file through `write_atomic`: readers never see half a
/// line, and a failed write leaves the file as it was.
pub fn append_line(path: &Path, line: &str) -> anyhow::Result<()> {
    let _lock = lock_file(path)?;
    let mut content = read_regular(path)?.unwrap_or_default();
    if !content.is_empty() && !content.ends_with(b"\n") {
        content.push(b'\n');
    }
    content.extend_from_slice(line.as_bytes());
    content.push(b'\n');
    write_atomic(path, &content, PRIVATE_FILE)
}

/// An exclusive OS lock on `.<name>.lock` beside `path`, held until the guard drops:
/// two tfenv processes that rewrite the same JSONL file (a cron backup during a deploy)
/// take turns instead of losing each other's lines.
pub fn lock_file(path: &Path) -> anyhow::Result<fs::File> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lock_path = path.with_file_name(format!(".{name}.lock"));
    let mut options = fs::OpenOptions::new();
    options.create(true).write(true).truncate(false);
    let file = open_own(&lock_path, &options)?
        .with_context(|| format!("opening `{}`", lock_path.display()))?;
    file.lock()
        .with_context(|| format!("locking `{}`", lock_path.display()))?;
    Ok(file)
}

/// Opens one of tfenv's own files with `options` (created 0600), never blocking and only
/// when it is a regular file (or a symlink to one): the open is `O_NONBLOCK`, so a FIFO
/// in its place cannot hang it (nor the signals that should stop tfenv), and the type is
/// checked on the opened file, not the name. `Ok(None)` when it does not exist (and
/// `options` does not create it). Anything else in its place is an error naming it.
pub fn open_own(path: &Path, options: &fs::OpenOptions) -> anyhow::Result<Option<fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = options.clone();
    options
        .mode(PRIVATE_FILE)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits());
    let file = match options.open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if let Ok(target) = fs::read_link(path) {
                return Err(not_regular(
                    path,
                    &format!("a symlink to `{}`, which does not exist", target.display()),
                ));
            }
            return Ok(None);
        }
        // A FIFO opened for writing without a reader.
        Err(err) if err.raw_os_error() == Some(nix::libc::ENXIO) => {
            return Err(not_regular(path, "a FIFO (named pipe)"));
        }
        Err(err) => return Err(err).with_context(|| format!("opening `{}`", path.display())),
    };
    let kind = file
        .metadata()
        .with_context(|| format!("reading `{}`", path.display()))?
        .file_type();
    if kind.is_file() {
        return Ok(Some(file));
    }
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(not_regular(path, what))
}

/// Opens one of tfenv's own files for reading; `Ok(None)` when it does not exist. Only a
/// regular file (or a symlink to one) is opened: see [`open_own`].
pub fn open_regular(path: &Path) -> anyhow::Result<Option<fs::File>> {
    open_own(path, fs::OpenOptions::new().read(true))
}

fn not_regular(path: &Path, what: &str) -> anyhow::Error {
    crate::error::TfenvError::config(
        format!("`{}` is {what}, not a regular file", path.display()),
        Some(
            "tfenv writes it as a regular file and does not read anything else in its place: move it away and run again"
                .to_string(),
        ),
    )
    .into()
}

/// The whole of one of tfenv's own files (see `open_regular`); `Ok(None)` when missing.
pub fn read_regular(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let Some(mut file) = open_regular(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .with_context(|| format!("reading `{}`", path.display()))?;
    Ok(Some(bytes))
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
