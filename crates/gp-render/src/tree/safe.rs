//! File operations confined to the output directory. The output root is opened once; everything below it is reached
//! component by component relative to an open directory, never following a symbolic link, so a link planted in the
//! tree (or a file swapped for one) cannot send a write or a deletion outside `--out`. Temporary files are created
//! exclusively, with random names, in the directory of the file they replace.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::TreeError;

/// Every temporary file render creates is named this prefix plus 16 lowercase hex digits.
pub const TEMP_PREFIX: &str = ".gp-tmp-";

const TEMP_DIGITS: usize = 16;

/// Refused above this size: the record and the journal are small, and a pinned `kustomization.yaml` too.
pub const READ_LIMIT: u64 = 64 * 1024 * 1024;

/// A path below the output root, as checked components: no empty, `.` or `..` component, no absolute path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RelPath(Vec<String>);

impl RelPath {
    /// Checks `text` (a `/`-separated path); the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        if text.is_empty() {
            return Err("is empty");
        }
        if text.len() > 4096 {
            return Err("is longer than 4096 bytes");
        }
        if text.starts_with('/') {
            return Err("is an absolute path");
        }
        if text.contains(['\0', '\\']) {
            return Err("contains a NUL byte or a backslash");
        }
        if text.chars().any(char::is_control) {
            return Err("contains a control character");
        }
        let mut parts = Vec::new();
        for c in text.split('/') {
            match c {
                "" => return Err("has an empty component (`//` or a trailing `/`)"),
                "." | ".." => return Err("has a `.` or `..` component"),
                c if c.len() > 255 => return Err("has a component longer than 255 bytes"),
                c => parts.push(c.to_owned()),
            }
        }
        Ok(Self(parts))
    }

    pub fn from_path(path: &Path) -> Result<Self, &'static str> {
        Self::parse(&path.to_string_lossy().replace('\\', "/"))
    }

    /// The directories above the file, outermost first.
    pub fn dir(&self) -> &[String] {
        &self.0[..self.0.len() - 1]
    }

    pub fn name(&self) -> &str {
        &self.0[self.0.len() - 1]
    }

    pub fn first(&self) -> &str {
        &self.0[0]
    }
}

impl std::fmt::Display for RelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

pub use gp_fs::excerpt;

/// What is at a path, looked at without following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    File,
    Dir,
    /// A symbolic link, device, FIFO or socket: described for the error message.
    Other(&'static str),
}

const LINK: &str = "a symbolic link";

impl Kind {
    /// What pruning may remove: a regular file, or a link itself (never what it points to).
    #[must_use]
    pub fn prunable(self) -> bool {
        matches!(self, Self::File | Self::Other(LINK))
    }
}

fn describe(t: FileType) -> Kind {
    match t {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Other(LINK),
        FileType::Fifo => Kind::Other("a FIFO"),
        FileType::Socket => Kind::Other("a socket"),
        FileType::CharacterDevice | FileType::BlockDevice => Kind::Other("a device"),
        FileType::Unknown => Kind::Other("not a regular file"),
    }
}

/// The open output root.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens `out`, creating it (and its parents) when `create`; `None` when it does not exist and not `create`.
    pub fn open(out: &Path, create: bool) -> Result<Option<Self>, TreeError> {
        if create {
            fs_err::create_dir_all(out).map_err(|e| TreeError::Write {
                path: out.to_path_buf(),
                source: e,
            })?;
        }
        match rustix::fs::open(
            out,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(Self {
                fd,
                path: out.to_path_buf(),
            })),
            Err(Errno::NOENT) if !create => Ok(None),
            Err(e) => Err(TreeError::Read {
                path: out.to_path_buf(),
                source: e.into(),
            }),
        }
    }

    /// The full path of `parts` below the root, for messages and the outcome.
    pub fn join(&self, parts: &[String]) -> PathBuf {
        let mut p = self.path.clone();
        p.extend(parts);
        p
    }

    /// Opens the directory `parts` below the root without following links; creates missing ones when `create`
    /// (counting each as a step). `None` when a component is missing and not `create`.
    pub fn dir(&self, parts: &[String], create: bool) -> Result<Option<Dir>, TreeError> {
        let mut cur = rustix::io::dup(&self.fd).map_err(|e| TreeError::Read {
            path: self.path.clone(),
            source: e.into(),
        })?;
        for (i, part) in parts.iter().enumerate() {
            let here = || self.join(&parts[..=i]);
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            cur = match rustix::fs::openat(&cur, part.as_str(), flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&cur, part.as_str(), Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(TreeError::Write {
                                path: here(),
                                source: e.into(),
                            });
                        }
                    }
                    step();
                    rustix::fs::openat(&cur, part.as_str(), flags, Mode::empty())
                        .map_err(|e| self.dir_error(&cur, part, here(), e))?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(self.dir_error(&cur, part, here(), e)),
            };
        }
        Ok(Some(Dir {
            fd: cur,
            path: self.join(parts),
        }))
    }

    fn dir_error(&self, parent: &OwnedFd, name: &str, path: PathBuf, e: Errno) -> TreeError {
        let _ = self;
        match kind_at(parent, name) {
            Kind::Other(kind) => TreeError::NotADirectory { path, kind },
            Kind::File => TreeError::NotADirectory {
                path,
                kind: "a regular file",
            },
            Kind::Dir | Kind::Missing => TreeError::Read {
                path,
                source: e.into(),
            },
        }
    }
}

fn kind_at(dir: impl AsFd, name: &str) -> Kind {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => describe(FileType::from_raw_mode(st.st_mode)),
        Err(_) => Kind::Missing,
    }
}

/// An open directory below the root.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn kind(&self, name: &str) -> Kind {
        kind_at(&self.fd, name)
    }

    /// Reads the regular file `name` (at most [`READ_LIMIT`] bytes); `None` when it is missing. A link or a special
    /// file is refused by name before anything is read from it.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, TreeError> {
        let path = || self.path_of(name);
        match self.kind(name) {
            Kind::Missing => return Ok(None),
            Kind::File => {}
            Kind::Dir => {
                return Err(TreeError::NotAFile {
                    path: path(),
                    kind: "a directory",
                });
            }
            Kind::Other(kind) => return Err(TreeError::NotAFile { path: path(), kind }),
        }
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => {
                return Err(TreeError::NotAFile {
                    path: path(),
                    kind: LINK,
                });
            }
            Err(e) => {
                return Err(TreeError::Read {
                    path: path(),
                    source: e.into(),
                });
            }
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| TreeError::Read {
            path: path(),
            source: e.into(),
        })?;
        match describe(FileType::from_raw_mode(st.st_mode)) {
            Kind::File => {}
            Kind::Dir => {
                return Err(TreeError::NotAFile {
                    path: path(),
                    kind: "a directory",
                });
            }
            Kind::Other(kind) => return Err(TreeError::NotAFile { path: path(), kind }),
            Kind::Missing => {
                return Err(TreeError::NotAFile {
                    path: path(),
                    kind: "not a regular file",
                });
            }
        }
        if u64::try_from(st.st_size).unwrap_or(u64::MAX) > READ_LIMIT {
            return Err(TreeError::TooLarge {
                path: path(),
                limit: READ_LIMIT,
            });
        }
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .take(READ_LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| TreeError::Read {
                path: path(),
                source: e,
            })?;
        if bytes.len() as u64 > READ_LIMIT {
            return Err(TreeError::TooLarge {
                path: path(),
                limit: READ_LIMIT,
            });
        }
        Ok(Some(bytes))
    }

    /// Creates the file `name` exclusively (never through a link, never over anything) and writes `bytes`.
    pub fn write_new(&self, name: &str, bytes: &[u8]) -> Result<(), TreeError> {
        let path = || self.path_of(name);
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd =
            rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o666)).map_err(|e| {
                TreeError::Write {
                    path: path(),
                    source: e.into(),
                }
            })?;
        let mut file = std::fs::File::from(fd);
        // Not synced one by one: the journal's commit point syncs the whole filesystem once (`sync_filesystem`),
        // which on a 74k-file render is seconds instead of minutes of per-file `fsync`.
        if let Err(e) = file.write_all(bytes) {
            let _ = self.unlink(name);
            return Err(TreeError::Write {
                path: path(),
                source: e,
            });
        }
        step();
        Ok(())
    }

    /// Writes `bytes` to `name` atomically: a new temporary file with a random name, then a rename over `name`.
    pub fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), TreeError> {
        let mut tries = 0;
        let temp = loop {
            let temp = temp_name();
            match self.write_new(&temp, bytes) {
                Ok(()) => break temp,
                Err(TreeError::Write { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists && tries < 16 =>
                {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        };
        match self.rename(&temp, name) {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = self.unlink(&temp);
                Err(e)
            }
        }
    }

    /// Renames `from` to `to` in this directory (replacing a file or a link at `to`, never following it).
    /// `Ok(false)` when `from` is gone (an earlier run renamed it already).
    pub fn rename(&self, from: &str, to: &str) -> Result<bool, TreeError> {
        match rustix::fs::renameat(&self.fd, from, &self.fd, to) {
            Ok(()) => {
                step();
                Ok(true)
            }
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(TreeError::Write {
                path: self.path_of(to),
                source: e.into(),
            }),
        }
    }

    /// Removes the file or link `name` (a link itself, never what it points to); `Ok(false)` when missing.
    pub fn unlink(&self, name: &str) -> Result<bool, TreeError> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => {
                step();
                Ok(true)
            }
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(TreeError::Write {
                path: self.path_of(name),
                source: e.into(),
            }),
        }
    }

    /// Removes the directory `name` if it is empty; `false` when it is not (or is gone).
    pub fn rmdir_if_empty(&self, name: &str) -> bool {
        let done = rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR).is_ok();
        if done {
            step();
        }
        done
    }

    /// Names in this directory that look like render's temporary files.
    pub fn temp_files(&self) -> Vec<String> {
        let Ok(d) = rustix::fs::Dir::read_from(&self.fd) else {
            return Vec::new();
        };
        d.filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_owned))
            .filter(|n| is_temp_name(n) && self.kind(n) == Kind::File)
            .collect()
    }

    /// Flushes everything written on this directory's filesystem (`syncfs`): one call for a whole staged render.
    pub fn sync_filesystem(&self) -> Result<(), TreeError> {
        rustix::fs::syncfs(&self.fd).map_err(|e| TreeError::Write {
            path: self.path.clone(),
            source: e.into(),
        })
    }

    pub fn sync(&self) -> Result<(), TreeError> {
        rustix::fs::fsync(&self.fd).map_err(|e| TreeError::Write {
            path: self.path.clone(),
            source: e.into(),
        })
    }

    /// Takes the exclusive lock on this directory for the rest of the process, or fails at once.
    pub fn lock(&self) -> Result<(), TreeError> {
        rustix::fs::flock(
            &self.fd,
            rustix::fs::FlockOperation::NonBlockingLockExclusive,
        )
        .map_err(|e| match e {
            Errno::WOULDBLOCK => TreeError::Locked {
                path: self.path.clone(),
            },
            e => TreeError::Write {
                path: self.path.clone(),
                source: e.into(),
            },
        })
    }
}

/// A fresh random temporary name.
#[must_use]
pub fn temp_name() -> String {
    format!("{TEMP_PREFIX}{:016x}", fastrand::u64(..))
}

/// Whether `name` is exactly a render temporary name (`.gp-tmp-` and 16 lowercase hex digits).
#[must_use]
pub fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX).is_some_and(|rest| {
        rest.len() == TEMP_DIGITS
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Test hook: with `GOLDENPATH_TEST_ABORT_AFTER=N` in a debug build, the process aborts (like `kill -9`) after its
/// N-th file operation (it sends itself `SIGKILL`), so tests can interrupt a render at every point. Release builds
/// ignore the variable.
fn step() {
    static LIMIT: OnceLock<Option<usize>> = OnceLock::new();
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    if !cfg!(debug_assertions) {
        return;
    }
    let limit = LIMIT.get_or_init(|| {
        std::env::var("GOLDENPATH_TEST_ABORT_AFTER")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(limit) = *limit
        && COUNT.fetch_add(1, Ordering::SeqCst) + 1 >= limit
    {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_relative_paths_only() {
        assert_eq!(
            RelPath::parse("apps/dev/x.yaml").map(|p| p.to_string()),
            Ok("apps/dev/x.yaml".to_owned())
        );
        assert_eq!(RelPath::parse("../x"), Err("has a `.` or `..` component"));
        assert_eq!(RelPath::parse("a/./x"), Err("has a `.` or `..` component"));
        assert_eq!(RelPath::parse("/etc/passwd"), Err("is an absolute path"));
        assert_eq!(RelPath::parse(""), Err("is empty"));
        assert_eq!(
            RelPath::parse("a//b"),
            Err("has an empty component (`//` or a trailing `/`)")
        );
        assert_eq!(
            RelPath::parse("a\\..\\b"),
            Err("contains a NUL byte or a backslash")
        );
    }

    #[test]
    fn temp_names_are_exact() {
        assert!(is_temp_name(&temp_name()));
        assert!(!is_temp_name(".gp-tmp-123"));
        assert!(!is_temp_name(".deployment.yaml.tmp-1234"));
        assert!(!is_temp_name(".gp-tmp-0123456789ABCDEF"));
    }

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("a\nb"), "a\\nb");
        assert_eq!(
            excerpt(&"x".repeat(200)),
            format!("{}… (200 bytes in all)", "x".repeat(80))
        );
    }
}
