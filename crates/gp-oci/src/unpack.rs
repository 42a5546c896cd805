//! Safe unpacking of layer tars into a root filesystem: OCI whiteouts applied; absolute paths, `..`, writes through
//! symlinks, escaping symlinks and hard links refused; device nodes and FIFOs skipped (a sandbox brings its own
//! `/dev`; bootstrap tools put `/dev/console` and friends into root filesystems); ownership kept only when running as
//! root (rootless: files belong to the caller, set-id bits dropped).

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry `{entry}` {reason}")]
    Hostile { entry: String, reason: &'static str },
    #[error("cannot read the layer: {0}")]
    Read(#[source] io::Error),
    #[error("cannot write `{path}`: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// The root directory itself (`/`, `./`), which some tools archive as an entry: nothing to create.
fn is_root_entry(entry: &str) -> bool {
    Path::new(entry)
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::CurDir))
}

/// A clean relative path inside the root, or why not.
fn clean(entry: &str) -> Result<PathBuf, UnpackError> {
    let hostile = |reason| UnpackError::Hostile {
        entry: entry.to_owned(),
        reason,
    };
    let p = Path::new(entry);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(hostile("contains `..`, which could write outside the root"));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(hostile("is an absolute path"));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(hostile("has an empty path"));
    }
    Ok(out)
}

/// Refuses when any existing parent of `rel` under `root` is a symlink (writing there would follow it).
fn check_parents(root: &Path, rel: &Path, entry: &str) -> Result<(), UnpackError> {
    let mut cur = root.to_path_buf();
    let parents: Vec<_> = rel
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for c in parents {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(UnpackError::Hostile {
                    entry: entry.to_owned(),
                    reason: "would be written through a symlink",
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// A relative symlink target must not climb above the root from where the link sits.
fn check_symlink(rel: &Path, target: &Path, entry: &str) -> Result<(), UnpackError> {
    if target.is_absolute() {
        return Ok(()); // absolute targets resolve inside the container's root
    }
    let mut depth =
        i64::try_from(rel.parent().map_or(0, |p| p.components().count())).unwrap_or(i64::MAX);
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(UnpackError::Hostile {
                entry: entry.to_owned(),
                reason: "is a symlink that points outside the root",
            });
        }
    }
    Ok(())
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// Applies one uncompressed layer tar onto `root`.
#[allow(clippy::too_many_lines)] // one match over entry kinds; each arm is a few lines
pub fn unpack_layer(tar: impl Read, root: &Path) -> Result<(), UnpackError> {
    let root_user = is_root();
    let mut archive = tar::Archive::new(ZeroTail {
        inner: tar,
        tail: 1024 + 511,
        done: false,
    });
    archive.set_preserve_permissions(false);
    let mut created: BTreeSet<PathBuf> = BTreeSet::new();
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut e = entry.map_err(UnpackError::Read)?;
        let name = e
            .path()
            .map_err(UnpackError::Read)?
            .to_string_lossy()
            .into_owned();
        if is_root_entry(&name) {
            continue;
        }
        let rel = clean(&name)?;
        check_parents(root, &rel, &name)?;
        let file_name = rel
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dest = root.join(&rel);
        let werr = |source| UnpackError::Write {
            path: dest.clone(),
            source,
        };
        if file_name == ".wh..wh..opq" {
            let dir = dest.parent().unwrap_or(root).to_path_buf();
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for child in rd.flatten() {
                    let rel_child = rel
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(child.file_name());
                    if !created.contains(&rel_child) {
                        remove_any(&child.path()).map_err(werr)?;
                    }
                }
            }
            continue;
        }
        if let Some(hidden) = file_name.strip_prefix(".wh.") {
            let target = dest.with_file_name(hidden);
            if std::fs::symlink_metadata(&target).is_ok() {
                remove_any(&target).map_err(werr)?;
            }
            continue;
        }
        let kind = e.header().entry_type();
        let mode = e.header().mode().unwrap_or(0o644) & if root_user { 0o7777 } else { 0o777 };
        if std::fs::symlink_metadata(&dest)
            .is_ok_and(|m| !(m.is_dir() && kind == EntryType::Directory))
        {
            remove_any(&dest).map_err(werr)?;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(werr)?;
        }
        match kind {
            EntryType::Directory => {
                std::fs::create_dir_all(&dest).map_err(werr)?;
                set_mode(&dest, mode | 0o700).map_err(werr)?;
            }
            EntryType::Regular | EntryType::Continuous => {
                let mut f = std::fs::File::create(&dest).map_err(werr)?;
                io::copy(&mut e, &mut f).map_err(werr)?;
                set_mode(&dest, mode).map_err(werr)?;
            }
            EntryType::Symlink => {
                let target = e
                    .link_name()
                    .map_err(UnpackError::Read)?
                    .unwrap_or_default()
                    .into_owned();
                check_symlink(&rel, &target, &name)?;
                std::os::unix::fs::symlink(&target, &dest).map_err(werr)?;
            }
            EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(UnpackError::Read)?
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let trel = clean(&target).map_err(|_| UnpackError::Hostile {
                    entry: name.clone(),
                    reason: "is a hard link to a path outside the root",
                })?;
                check_parents(root, &trel, &name)?;
                let src = root.join(&trel);
                if std::fs::symlink_metadata(&src).is_ok_and(|m| m.file_type().is_symlink()) {
                    return Err(UnpackError::Hostile {
                        entry: name,
                        reason: "is a hard link to a symlink",
                    });
                }
                std::fs::hard_link(&src, &dest).map_err(werr)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => continue,
            EntryType::XHeader
            | EntryType::XGlobalHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => {}
            _ => {
                return Err(UnpackError::Hostile {
                    entry: name,
                    reason: "has an entry type layers do not use",
                });
            }
        }
        if root_user && kind != EntryType::Symlink {
            let (uid, gid) = (e.header().uid().unwrap_or(0), e.header().gid().unwrap_or(0));
            let (uid, gid) = (
                u32::try_from(uid).unwrap_or(0),
                u32::try_from(gid).unwrap_or(0),
            );
            std::os::unix::fs::lchown(&dest, Some(uid), Some(gid)).map_err(werr)?;
        }
        created.insert(rel);
    }
    Ok(())
}

/// Some writers (umoci among them) end a layer without the last entry's padding and the two zero blocks. The blob's
/// digest was verified before unpacking, so supplying the missing zeros cannot hide tampering.
struct ZeroTail<R> {
    inner: R,
    tail: usize,
    done: bool,
}

impl<R: Read> Read for ZeroTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.done {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.done = true;
        }
        let n = buf.len().min(self.tail);
        buf[..n].fill(0);
        self.tail -= n;
        Ok(n)
    }
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Unpacks layers (uncompressed readers, bottom first) into a new directory `dest`, atomically: into a temporary
/// sibling first, renamed into place only when every layer applied. On failure nothing is left behind.
pub fn unpack_layers<R: Read>(
    layers: impl IntoIterator<Item = Result<R, UnpackError>>,
    dest: &Path,
) -> Result<(), UnpackError> {
    let werr = |source| UnpackError::Write {
        path: dest.to_path_buf(),
        source,
    };
    if dest.exists() {
        return Err(werr(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the target directory exists; choose a new one",
        )));
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(werr)?;
    let tmp = parent.join(format!(
        ".{}.unpacking-{}",
        dest.file_name()
            .map_or_else(|| "rootfs".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    std::fs::create_dir_all(&tmp).map_err(werr)?;
    let result = layers.into_iter().try_for_each(|l| unpack_layer(l?, &tmp));
    match result.and_then(|()| std::fs::rename(&tmp, dest).map_err(werr)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use tar::Header;

    use super::*;

    enum T<'a> {
        File(&'a str, &'a str),
        Dir(&'a str),
        Sym(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    /// Builds a tar with raw names (the `tar` crate's own checks would refuse the hostile ones).
    fn tar_of(entries: &[T<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = Header::new_ustar();
            let (name, kind, data, link): (&str, EntryType, &[u8], Option<&str>) = match e {
                T::File(n, d) => (n, EntryType::Regular, d.as_bytes(), None),
                T::Dir(n) => (n, EntryType::Directory, b"", None),
                T::Sym(n, t) => (n, EntryType::Symlink, b"", Some(t)),
                T::Hard(n, t) => (n, EntryType::Link, b"", Some(t)),
            };
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_entry_type(kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn unpack(layers: &[Vec<u8>]) -> (tempfile::TempDir, Result<(), UnpackError>) {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("rootfs");
        let r = unpack_layers(layers.iter().map(|l| Ok(&l[..])), &dest);
        (tmp, r)
    }

    #[test]
    fn applies_layers_and_whiteouts() {
        let l1 = tar_of(&[
            T::Dir("etc/"),
            T::File("etc/a", "1"),
            T::File("etc/b", "2"),
            T::Dir("opt/"),
            T::File("opt/x", "x"),
        ]);
        let l2 = tar_of(&[
            T::File("etc/.wh.a", ""),
            T::File("opt/.wh..wh..opq", ""),
            T::File("opt/y", "y"),
            T::Sym("link", "/etc/b"),
        ]);
        let (tmp, r) = unpack(&[l1, l2]);
        r.unwrap();
        let root = tmp.path().join("rootfs");
        assert!(!root.join("etc/a").exists());
        assert_eq!(std::fs::read_to_string(root.join("etc/b")).unwrap(), "2");
        assert!(!root.join("opt/x").exists());
        assert!(root.join("opt/y").exists());
        assert_eq!(
            std::fs::read_link(root.join("link")).unwrap(),
            Path::new("/etc/b")
        );
    }

    #[test]
    fn refuses_hostile_entries_and_leaves_nothing() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (tar_of(&[T::File("../evil", "x")]), "`..`"),
            (tar_of(&[T::File("/etc/evil", "x")]), "absolute"),
            (tar_of(&[T::Sym("up", "../../etc")]), "points outside"),
            (
                tar_of(&[T::Sym("etc", "/etc"), T::File("etc/passwd", "x")]),
                "through a symlink",
            ),
            (tar_of(&[T::Hard("h", "../../etc/passwd")]), "hard link"),
        ];
        for (layer, want) in cases {
            let (tmp, r) = unpack(&[layer]);
            let e = r.unwrap_err().to_string();
            assert!(e.contains(want), "{e} (wanted {want})");
            let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
            assert!(left.is_empty(), "left behind: {left:?}");
        }
    }
}
