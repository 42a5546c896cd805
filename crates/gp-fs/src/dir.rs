//! Filesystem operations confined to one opened directory, for unpackers and writers that handle hostile names.
//!
//! Every operation is relative to a directory file descriptor, and paths are walked one component at a time with
//! `O_NOFOLLOW`: a symlink met on the way is reported, never followed. Whatever the names and links in the input,
//! nothing outside the opened directory is created, written, removed or re-owned.
//!
//! Built on `rustix` (`openat`, `mkdirat`, `symlinkat`, `linkat`, `unlinkat`, `fchown`, `fchmod`): safe, thin
//! wrappers over exactly the system calls needed, already in the dependency tree. `cap-std` puts its own
//! path-resolution policy on top (it cannot keep absolute symlinks, which image layers hold and which must resolve
//! inside the container's root), and `openat2(RESOLVE_IN_ROOT)` is Linux 5.6+ only and not allowed by every seccomp
//! profile CI runs under; walking the components ourselves works everywhere and lets links be checked against the
//! root with the same rules the kernel applies inside a container.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::text::excerpt_path;

/// Links followed at most while resolving one path (Linux's `MAXSYMLINKS`).
pub const MAX_LINK_HOPS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum SafeFsError {
    #[error("`{}` is a symlink, which is never followed here", excerpt_path(.at))]
    ThroughSymlink { at: PathBuf },
    #[error("`{}` is not a directory", excerpt_path(.at))]
    NotADirectory { at: PathBuf },
    #[error("`{}` is not a plain name inside the directory", excerpt_path(.at))]
    NotAName { at: PathBuf },
    #[error("cannot open `{}`: {source}", excerpt_path(.at))]
    Open { at: PathBuf, source: io::Error },
}

/// How a symlink's target resolves against the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Stays inside the root (possibly dangling).
    Inside,
    /// Climbs above the root.
    Outside,
    /// Passes through more than [`MAX_LINK_HOPS`] links.
    TooManyLinks,
}

/// An opened directory; all operations take a single name inside it (no `/`, not `.` or `..`).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

fn io_err(e: rustix::io::Errno) -> io::Error {
    io::Error::from(e)
}

fn check_name(name: &OsStr) -> io::Result<()> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain name inside the directory",
        ));
    }
    Ok(())
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl Dir {
    /// Opens the directory the caller names (following links in that path: the caller chose it).
    pub fn open(path: &Path) -> io::Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err)?;
        Ok(Self { fd })
    }

    /// Another handle on the same directory.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            fd: self.fd.try_clone()?,
        })
    }

    /// The directory `name` inside this one, never through a symlink.
    pub fn child(&self, name: &OsStr) -> io::Result<Self> {
        check_name(name)?;
        let fd = rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty()).map_err(io_err)?;
        Ok(Self { fd })
    }

    /// The type of `name` (not following a symlink), or `None` when there is nothing by that name.
    pub fn kind(&self, name: &OsStr) -> io::Result<Option<FileType>> {
        check_name(name)?;
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Creates the directory `name` (`mode` before the umask).
    pub fn mkdir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        check_name(name)?;
        rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode)).map_err(io_err)
    }

    /// Creates the regular file `name`, exclusively (it must not exist, not even as a dangling symlink).
    pub fn create_file(&self, name: &OsStr) -> io::Result<File> {
        check_name(name)?;
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io_err)?;
        Ok(File::from(fd))
    }

    /// Creates the symlink `name` pointing at `target` (never followed here).
    pub fn symlink(&self, target: &Path, name: &OsStr) -> io::Result<()> {
        check_name(name)?;
        rustix::fs::symlinkat(target, &self.fd, name).map_err(io_err)
    }

    /// Creates `name` as a hard link to `from_name` in `from` (a symlink there is linked itself, not followed).
    pub fn hard_link(&self, name: &OsStr, from: &Dir, from_name: &OsStr) -> io::Result<()> {
        check_name(name)?;
        check_name(from_name)?;
        rustix::fs::linkat(&from.fd, from_name, &self.fd, name, AtFlags::empty()).map_err(io_err)
    }

    /// The target of the symlink `name`.
    pub fn read_link(&self, name: &OsStr) -> io::Result<PathBuf> {
        check_name(name)?;
        let t = rustix::fs::readlinkat(&self.fd, name, Vec::new()).map_err(io_err)?;
        Ok(PathBuf::from(OsStr::from_bytes(t.to_bytes())))
    }

    /// The names in this directory (without `.` and `..`).
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        let mut out = Vec::new();
        for e in rustix::fs::Dir::read_from(&self.fd).map_err(io_err)? {
            let e = e.map_err(io_err)?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                out.push(OsStr::from_bytes(n).to_owned());
            }
        }
        Ok(out)
    }

    /// Removes `name` whatever it is (a directory with everything below it; a symlink itself); nothing there is
    /// fine.
    pub fn remove_all(&self, name: &OsStr) -> io::Result<()> {
        match self.kind(name)? {
            None => Ok(()),
            Some(FileType::Directory) => {
                let child = self.child(name)?;
                for n in child.names()? {
                    child.remove_all(&n)?;
                }
                rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR).map_err(io_err)
            }
            Some(_) => rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(io_err),
        }
    }

    /// Creates `name` as an overlayfs whiteout: a character device numbered 0:0, which hides `name` in the layers
    /// below (making device nodes needs root).
    pub fn overlay_whiteout(&self, name: &OsStr) -> io::Result<()> {
        check_name(name)?;
        rustix::fs::mknodat(&self.fd, name, FileType::CharacterDevice, Mode::empty(), 0)
            .map_err(io_err)
    }

    /// Sets the extended attribute `key` of this directory to `value` (`trusted.*` keys need root).
    pub fn set_xattr(&self, key: &str, value: &[u8]) -> io::Result<()> {
        rustix::fs::fsetxattr(&self.fd, key, value, rustix::fs::XattrFlags::empty()).map_err(io_err)
    }

    /// This directory's owner (uid, gid) and permission bits (setuid, setgid and sticky included).
    pub fn owner_and_mode(&self) -> io::Result<((u32, u32), u32)> {
        let st = rustix::fs::fstat(&self.fd).map_err(io_err)?;
        Ok(((st.st_uid, st.st_gid), st.st_mode & 0o7777))
    }

    /// Sets this directory's owner (when given) and then its mode.
    pub fn set_owner_and_mode(&self, owner: Option<(u32, u32)>, mode: u32) -> io::Result<()> {
        set_owner_and_mode(&self.fd, owner, mode)
    }

    /// Opens the directory `rel` below this one one component at a time, never through a symlink; with `create`,
    /// missing directories are made (mode 0755 before the umask), else a missing one gives `None`.
    pub fn walk(&self, rel: &Path, create: bool) -> Result<Option<Dir>, SafeFsError> {
        let mut cur = self.try_clone().map_err(|source| SafeFsError::Open {
            at: PathBuf::new(),
            source,
        })?;
        let mut at = PathBuf::new();
        for c in rel.components() {
            let Component::Normal(name) = c else {
                return Err(SafeFsError::NotAName { at: rel.into() });
            };
            at.push(name);
            let open_err = |at: &Path, source| SafeFsError::Open {
                at: at.to_path_buf(),
                source,
            };
            let errno = |e: &io::Error| e.raw_os_error().map(rustix::io::Errno::from_raw_os_error);
            let mut opened = cur.child(name);
            if create
                && let Err(e) = &opened
                && errno(e) == Some(rustix::io::Errno::NOENT)
            {
                match cur.mkdir(name, 0o755) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(open_err(&at, e));
                    }
                    _ => opened = cur.child(name),
                }
            }
            cur = match opened {
                Ok(d) => d,
                Err(e) => {
                    return match errno(&e) {
                        Some(rustix::io::Errno::NOENT) if !create => Ok(None),
                        Some(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                            match cur.kind(name).map_err(|e| open_err(&at, e))? {
                                Some(FileType::Symlink) => Err(SafeFsError::ThroughSymlink { at }),
                                _ => Err(SafeFsError::NotADirectory { at }),
                            }
                        }
                        _ => Err(open_err(&at, e)),
                    };
                }
            };
        }
        Ok(Some(cur))
    }

    /// The type of `name` below the directories `at` (each a plain name), following nothing; `None` when a
    /// component is missing or not a directory.
    fn lookup(&self, at: &[OsString], name: &OsStr) -> io::Result<Option<(Dir, FileType)>> {
        let mut cur = self.try_clone()?;
        for c in at {
            cur = match cur.child(c) {
                Ok(d) => d,
                Err(e)
                    if matches!(
                        e.raw_os_error().map(rustix::io::Errno::from_raw_os_error),
                        Some(
                            rustix::io::Errno::NOENT
                                | rustix::io::Errno::NOTDIR
                                | rustix::io::Errno::LOOP
                        )
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
        }
        Ok(cur.kind(name)?.map(|k| (cur, k)))
    }

    /// How the symlink target `target`, of a link in the directory `from` (plain names below this directory),
    /// resolves with this directory as the root: links already there are followed (absolute ones from the root,
    /// as inside a container), missing components are taken as they are written, and any `..` above the root is
    /// [`Resolution::Outside`].
    pub fn resolve_link(&self, from: &Path, target: &Path) -> io::Result<Resolution> {
        enum Step {
            Up,
            Name(OsString),
        }
        fn steps(p: &Path) -> impl Iterator<Item = Step> + '_ {
            p.components().filter_map(|c| match c {
                Component::ParentDir => Some(Step::Up),
                Component::Normal(n) => Some(Step::Name(n.to_owned())),
                _ => None,
            })
        }
        let mut at: Vec<OsString> = if target.is_absolute() {
            Vec::new()
        } else {
            from.components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_owned()),
                    _ => None,
                })
                .collect()
        };
        let mut pending: VecDeque<Step> = steps(target).collect();
        let mut hops = 0;
        while let Some(step) = pending.pop_front() {
            match step {
                Step::Up => {
                    if at.pop().is_none() {
                        return Ok(Resolution::Outside);
                    }
                }
                Step::Name(n) => match self.lookup(&at, &n)? {
                    Some((dir, FileType::Symlink)) => {
                        hops += 1;
                        if hops > MAX_LINK_HOPS {
                            return Ok(Resolution::TooManyLinks);
                        }
                        let next = dir.read_link(&n)?;
                        if next.is_absolute() {
                            at.clear();
                        }
                        for s in steps(&next).collect::<Vec<_>>().into_iter().rev() {
                            pending.push_front(s);
                        }
                    }
                    _ => at.push(n),
                },
            }
        }
        Ok(Resolution::Inside)
    }
}

/// Sets the owner of an open file or directory (when given) and then its mode: in this order, because changing
/// the owner clears the set-user-id and set-group-id bits, even for root.
pub fn set_owner_and_mode(
    fd: impl std::os::fd::AsFd,
    owner: Option<(u32, u32)>,
    mode: u32,
) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        // `-1` means "unchanged" to the kernel; such ids cannot be set, so they become root's.
        let id = |v: u32| if v == u32::MAX { 0 } else { v };
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(id(uid))),
            Some(rustix::fs::Gid::from_raw(id(gid))),
        )
        .map_err(io_err)?;
    }
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io_err)
}

/// Renames `from` to `to`, failing when `to` exists (whatever it is, a symlink included).
pub fn rename_new(from: &Path, to: &Path) -> io::Result<()> {
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        // Filesystems without `RENAME_NOREPLACE`: the caller checked `to` is free.
        // The bare error, like the `renameat2` one below: callers name the paths.
        #[allow(clippy::disallowed_methods)]
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => std::fs::rename(from, to),
        r => r.map_err(io_err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_slashes_or_dots_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Dir::open(tmp.path()).unwrap();
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(d.mkdir(OsStr::new(bad), 0o755).is_err(), "{bad:?}");
            assert!(d.remove_all(OsStr::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn walk_never_follows_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs_err::create_dir_all(root.join("a")).unwrap();
        fs_err::os::unix::fs::symlink(tmp.path(), root.join("a/out")).unwrap();
        let d = Dir::open(&root).unwrap();
        let e = d.walk(Path::new("a/out/x"), true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`a/out` is a symlink, which is never followed here"
        );
        assert!(!tmp.path().join("x").exists());
        assert!(d.walk(Path::new("a/new/deeper"), true).unwrap().is_some());
        assert!(root.join("a/new/deeper").is_dir());
        assert!(d.walk(Path::new("b/c"), false).unwrap().is_none());
    }

    #[test]
    fn links_resolve_against_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs_err::create_dir_all(root.join("d")).unwrap();
        fs_err::os::unix::fs::symlink("..", root.join("d/up")).unwrap();
        fs_err::os::unix::fs::symlink("/", root.join("abs")).unwrap();
        fs_err::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let d = Dir::open(&root).unwrap();
        let r = |from: &str, t: &str| d.resolve_link(Path::new(from), Path::new(t)).unwrap();
        assert_eq!(r("", "d/up/d/up/d"), Resolution::Inside);
        assert_eq!(r("", "d/up/d/up/.."), Resolution::Outside);
        assert_eq!(r("d", "up/.."), Resolution::Outside);
        assert_eq!(r("", "abs/etc"), Resolution::Inside);
        assert_eq!(r("", "abs/.."), Resolution::Outside);
        assert_eq!(r("d", "/etc/passwd"), Resolution::Inside);
        assert_eq!(r("d", "missing/../../.."), Resolution::Outside);
        assert_eq!(r("d", "missing/../.."), Resolution::Inside);
        assert_eq!(r("", "loop/x"), Resolution::TooManyLinks);
    }
}
