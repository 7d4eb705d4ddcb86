//! What a path the user's configuration names really is, told from its metadata alone:
//! opening a FIFO blocks, and a file tfenv cannot read must be an error that says what
//! it found, never a silent fallback.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// What is at a path.
#[derive(Debug)]
pub enum FileKind {
    /// A regular file, or a symlink to one.
    Regular,
    Missing,
    /// A symlink whose target does not exist.
    DanglingSymlink(PathBuf),
    SymlinkLoop,
    Directory,
    Fifo,
    Socket,
    Device,
    /// The metadata itself cannot be read (e.g. a folder on the way is not searchable).
    Unreadable(std::io::Error),
}

impl FileKind {
    pub fn of(path: &Path) -> FileKind {
        let link = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(err) if is_missing(&err) => return FileKind::Missing,
            Err(err) => return FileKind::Unreadable(err),
        };
        let meta = if link.file_type().is_symlink() {
            match std::fs::metadata(path) {
                Ok(meta) => meta,
                Err(err) if err.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
                    return FileKind::SymlinkLoop;
                }
                Err(err) if is_missing(&err) => {
                    return FileKind::DanglingSymlink(std::fs::read_link(path).unwrap_or_default());
                }
                Err(err) => return FileKind::Unreadable(err),
            }
        } else {
            link
        };
        let kind = meta.file_type();
        if kind.is_file() {
            FileKind::Regular
        } else if kind.is_dir() {
            FileKind::Directory
        } else if kind.is_fifo() {
            FileKind::Fifo
        } else if kind.is_socket() {
            FileKind::Socket
        } else {
            FileKind::Device
        }
    }

    /// Whether anything at all is there (a dangling symlink is something).
    pub fn exists(&self) -> bool {
        !matches!(self, FileKind::Missing)
    }

    /// What is wrong, to follow the path in a message: "is a directory, not a regular file".
    /// `None` for a regular file.
    pub fn problem(&self) -> Option<String> {
        let not_regular = |what: &str| Some(format!("is {what}, not a regular file"));
        match self {
            FileKind::Regular => None,
            FileKind::Missing => Some("does not exist".to_string()),
            FileKind::DanglingSymlink(target) => Some(format!(
                "is a dangling symlink (its target `{}` does not exist)",
                target.display()
            )),
            FileKind::SymlinkLoop => Some("is a symlink loop".to_string()),
            FileKind::Directory => not_regular("a directory"),
            FileKind::Fifo => not_regular("a FIFO (named pipe)"),
            FileKind::Socket => not_regular("a socket"),
            FileKind::Device => not_regular("a device"),
            FileKind::Unreadable(err) => Some(format!("cannot be inspected ({err})")),
        }
    }
}

fn is_missing(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::NotFound || err.kind() == std::io::ErrorKind::NotADirectory
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_path_is_told_apart_without_opening_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        std::fs::write(p("file"), "x").unwrap();
        std::os::unix::fs::symlink("file", p("link")).unwrap();
        std::os::unix::fs::symlink("nowhere", p("dangling")).unwrap();
        std::os::unix::fs::symlink("loop", p("loop")).unwrap();
        std::fs::create_dir(p("dir")).unwrap();
        nix::unistd::mkfifo(&p("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();

        assert!(matches!(FileKind::of(&p("file")), FileKind::Regular));
        assert!(matches!(FileKind::of(&p("link")), FileKind::Regular));
        assert!(matches!(FileKind::of(&p("none")), FileKind::Missing));
        assert!(matches!(FileKind::of(&p("file/x")), FileKind::Missing));
        let dangling = FileKind::of(&p("dangling")).problem().unwrap();
        assert!(dangling.contains("dangling symlink"), "{dangling}");
        assert!(dangling.contains("`nowhere`"), "{dangling}");
        assert_eq!(
            FileKind::of(&p("loop")).problem().unwrap(),
            "is a symlink loop"
        );
        assert_eq!(
            FileKind::of(&p("dir")).problem().unwrap(),
            "is a directory, not a regular file"
        );
        assert_eq!(
            FileKind::of(&p("fifo")).problem().unwrap(),
            "is a FIFO (named pipe), not a regular file"
        );
    }
}
