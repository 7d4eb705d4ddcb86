//! The version of a terraform binary, remembered between runs so that a command starts
//! no `terraform version` process: kept in `<root>/.terraform/tfenv/terraform-version.json`
//! under what decides the answer. For a binary that is its path and its file's identity
//! (device, inode, size, modification and change times). For the tfutils/tfenv shim
//! (DESIGN.md §8: a bash script that runs the version `TFENV_TERRAFORM_VERSION` or a
//! version file names) it is also that version. Any other script is asked every time:
//! what it runs cannot be told from outside.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::version::parse_version;
use crate::files;

/// Where the cache lives, under the root's `.terraform/tfenv/` (beside the data dirs).
const FILE: &str = "terraform-version.json";
/// Binaries remembered per project: a few, for switching between versions.
const KEPT: usize = 8;

/// What decides the version a binary reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    /// The tfutils/tfenv shim: the exact version it is told to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shim_runs: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    key: Key,
    version: String,
}

/// What the environment says to a tfutils/tfenv shim: the variables it reads.
#[derive(Clone, Debug, Default)]
pub struct ShimEnv {
    pub terraform_version: Option<OsString>,
    pub dir: Option<OsString>,
    pub home: Option<OsString>,
    pub config_dir: Option<OsString>,
    pub root: Option<OsString>,
}

impl ShimEnv {
    pub fn from_process() -> ShimEnv {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        ShimEnv {
            terraform_version: var("TFENV_TERRAFORM_VERSION"),
            dir: var("TFENV_DIR"),
            home: var("HOME"),
            config_dir: var("TFENV_CONFIG_DIR"),
            root: var("TFENV_ROOT"),
        }
    }
}

impl Key {
    /// The key of `bin` run in `cwd`; `None` when its answer cannot be remembered: its
    /// file cannot be read, it is a script other than the tfenv shim, the shim is told to
    /// choose a version by a rule (`latest`, `min-required`) rather than name one, or it
    /// is a link to a program of another name — a multiplexer like mise or aqua, which
    /// picks the version from files of its own.
    pub fn of(bin: &Path, cwd: &Path, env: &ShimEnv) -> Option<Key> {
        let path = std::fs::canonicalize(bin).ok()?;
        if path.file_name() != bin.file_name() {
            return None;
        }
        let meta = std::fs::metadata(&path).ok()?;
        let mut head = Vec::with_capacity(4096);
        std::fs::File::open(&path)
            .ok()?
            .take(4096)
            .read_to_end(&mut head)
            .ok()?;
        let shim_runs = match head.starts_with(b"#!") {
            false => None,
            true if is_tfenv_shim(&head) => Some(shim_version(&path, cwd, env)?),
            true => return None,
        };
        Some(Key {
            path,
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            shim_runs,
        })
    }
}

/// tfutils/tfenv's `bin/terraform`: it hands every call to `tfenv-exec` (`tfenv exec`
/// in older releases).
fn is_tfenv_shim(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    text.contains("tfenv-exec") || text.contains("/tfenv\" exec")
}

/// The version the shim will run, read the way it reads it: `TFENV_TERRAFORM_VERSION`,
/// else the first `.terraform-version` from its directory (`TFENV_DIR`, else the working
/// directory) upwards, else from `$HOME` upwards, else `$TFENV_CONFIG_DIR/version`
/// (default: the shim's install root). Only an exact version is returned.
fn shim_version(shim: &Path, cwd: &Path, env: &ShimEnv) -> Option<String> {
    let spec = match &env.terraform_version {
        Some(version) => version.to_str()?.to_string(),
        None => {
            let start = env.dir.as_ref().map_or(cwd, Path::new);
            let found = start
                .ancestors()
                .chain(
                    env.home
                        .as_ref()
                        .map_or(Path::new("/"), Path::new)
                        .ancestors(),
                )
                .map(|dir| dir.join(".terraform-version"))
                .find(|file| file.exists());
            let file = match found {
                Some(file) => file,
                None => {
                    let config = match (&env.config_dir, &env.root) {
                        (Some(dir), _) | (None, Some(dir)) => PathBuf::from(dir),
                        (None, None) => shim.parent()?.parent()?.to_path_buf(),
                    };
                    config.join("version")
                }
            };
            read_version_file(&std::fs::read_to_string(file).ok()?)?
        }
    };
    let exact = spec.trim().strip_prefix('v').unwrap_or(spec.trim());
    let parsed = parse_version(exact)?;
    // `1.5` would be a rule to the shim (not installed as such), not a version.
    (exact.split(['-', '+']).next()?.split('.').count() == 3).then(|| parsed.to_string())
}

/// The shim's reading of a version file: comments and blank lines dropped; one line left.
fn read_version_file(text: &str) -> Option<String> {
    let mut lines = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty());
    let first = lines.next()?;
    lines.next().is_none().then(|| first.to_string())
}

/// The cache of one project.
pub struct VersionCache {
    file: PathBuf,
}

impl VersionCache {
    pub fn new(root: &Path) -> VersionCache {
        VersionCache {
            file: root.join(".terraform").join("tfenv").join(FILE),
        }
    }

    fn entries(&self) -> Vec<Entry> {
        std::fs::read(&self.file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// The version remembered for `key`.
    pub fn get(&self, key: &Key) -> Option<semver::Version> {
        let entries = self.entries();
        let entry = entries.iter().find(|e| &e.key == key)?;
        parse_version(&entry.version)
    }

    /// Remembers `version` for `key`. A cache that cannot be written is no error: the
    /// next run asks the binary again.
    pub fn put(&self, key: &Key, version: &semver::Version) {
        let mut entries = self.entries();
        entries.retain(|e| e.key.path != key.path);
        entries.insert(
            0,
            Entry {
                key: key.clone(),
                version: version.to_string(),
            },
        );
        entries.truncate(KEPT);
        let written = (|| {
            let dir = self.file.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            files::write_atomic(
                &self.file,
                &serde_json::to_vec_pretty(&entries)?,
                files::PRIVATE_FILE,
            )
        })();
        if let Err(err) = written {
            tracing::debug!(
                "cannot remember the terraform version in `{}`: {err:#}",
                self.file.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_binary_is_remembered_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(dir.path(), "terraform", "\x7fELF binary one");
        let cache = VersionCache::new(dir.path());
        let env = ShimEnv::default();
        let key = Key::of(&bin, dir.path(), &env).unwrap();
        assert_eq!(cache.get(&key), None);
        cache.put(&key, &semver::Version::new(1, 11, 4));
        assert_eq!(
            cache.get(&Key::of(&bin, dir.path(), &env).unwrap()),
            Some(semver::Version::new(1, 11, 4))
        );
        // Replaced (another file at the same path): asked again.
        let new = script(dir.path(), "terraform.new", "\x7fELF binary two, longer");
        std::fs::rename(&new, &bin).unwrap();
        assert_eq!(cache.get(&Key::of(&bin, dir.path(), &env).unwrap()), None);
    }

    #[test]
    fn a_script_is_never_remembered_unless_it_is_the_tfenv_shim() {
        let dir = tempfile::tempdir().unwrap();
        let other = script(dir.path(), "terraform", "#!/bin/sh\nexec /opt/tf \"$@\"\n");
        assert!(Key::of(&other, dir.path(), &ShimEnv::default()).is_none());
    }

    #[test]
    fn a_link_to_a_program_of_another_name_is_never_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let mise = script(dir.path(), "mise", "\x7fELF a version multiplexer");
        let shim = dir.path().join("terraform");
        std::os::unix::fs::symlink(&mise, &shim).unwrap();
        assert!(Key::of(&shim, dir.path(), &ShimEnv::default()).is_none());
        // A link to a binary of the same name (Homebrew, /usr/local/bin) is the binary.
        let real = dir.path().join("cellar");
        std::fs::create_dir(&real).unwrap();
        let binary = script(&real, "terraform", "\x7fELF terraform");
        let link = dir.path().join("bin");
        std::fs::create_dir(&link).unwrap();
        std::os::unix::fs::symlink(&binary, link.join("terraform")).unwrap();
        assert!(Key::of(&link.join("terraform"), dir.path(), &ShimEnv::default()).is_some());
    }

    #[test]
    fn the_tfenv_shim_is_remembered_with_the_version_it_is_told_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tfenv");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        let shim = script(
            &root.join("bin"),
            "terraform",
            "#!/usr/bin/env bash\nset -uo pipefail;\ntfenv-exec \"$@\";\n",
        );
        let project = dir.path().join("project");
        std::fs::create_dir_all(project.join("sub")).unwrap();
        let env = ShimEnv::default();
        let runs = |cwd: &Path, env: &ShimEnv| Key::of(&shim, cwd, env).map(|k| k.shim_runs);

        // No version file anywhere it looks: nothing to go by.
        assert_eq!(runs(&project, &env), None);
        // The install's default version.
        std::fs::write(root.join("version"), "1.5.7\n").unwrap();
        assert_eq!(runs(&project, &env), Some(Some("1.5.7".into())));
        // A .terraform-version above the working directory wins, comments dropped.
        std::fs::write(project.join(".terraform-version"), "# pinned\nv1.6.2\n").unwrap();
        assert_eq!(runs(&project.join("sub"), &env), Some(Some("1.6.2".into())));
        // The variable wins over files.
        let pinned = ShimEnv {
            terraform_version: Some("1.0.3".into()),
            ..ShimEnv::default()
        };
        assert_eq!(runs(&project, &pinned), Some(Some("1.0.3".into())));
        // A rule is resolved by the shim at run time: never remembered.
        for rule in ["latest", "latest:^1.5", "min-required", "1.5"] {
            std::fs::write(project.join(".terraform-version"), rule).unwrap();
            assert_eq!(runs(&project, &env), None, "{rule}");
        }
    }
}
