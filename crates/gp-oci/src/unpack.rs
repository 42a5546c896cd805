//! Safe unpacking of layer tars into a root filesystem: OCI whiteouts applied; absolute paths, `..`, writes through
//! symlinks, symlinks that resolve outside the root and hard links to outside it refused; device nodes and FIFOs
//! skipped (a sandbox brings its own `/dev`; bootstrap tools put `/dev/console` and friends into root filesystems);
//! ownership and set-id bits kept only when running as root (rootless: files belong to the caller, set-id bits
//! dropped).
//!
//! Every write goes through [`crate::safe_fs`]: relative to the opened root, one component at a time, never
//! following a symlink, so nothing outside the root is touched whatever the layer holds. Symlinks are created as
//! they are written (absolute targets resolve inside the container's root), after their target was resolved
//! against the root, following the links already unpacked: one that would lead above the root is refused.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use rustix::fs::FileType;
use tar::EntryType;

use crate::digest::Digest;
use crate::safe_fs::{Dir, Resolution, SafeFsError, excerpt, excerpt_path};

/// Longest entry name accepted (Linux's `PATH_MAX`).
pub const MAX_NAME_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error(
        "layer entry `{}` {reason}; the layer is refused: rebuild the image or archive without it",
        excerpt(.entry)
    )]
    Hostile { entry: String, reason: String },
    #[error("cannot read the layer: {0}")]
    Read(#[source] io::Error),
    #[error("cannot write `{}`: {source}", excerpt_path(.path))]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "layer `{digest}` is declared `{}` but its bytes are {found}; fix the media type in the image's manifest or push the layer again",
        excerpt(.media_type)
    )]
    Mislabelled {
        digest: Digest,
        media_type: String,
        found: &'static str,
    },
}

fn hostile(entry: &str, reason: impl Into<String>) -> UnpackError {
    UnpackError::Hostile {
        entry: entry.to_owned(),
        reason: reason.into(),
    }
}

/// Checks that a layer blob's bytes are what its media type says (gzip for `…+gzip`, a tar for `….tar`), so a
/// mislabelled layer is named as such instead of failing deep inside the tar reader.
pub fn check_declared(digest: &Digest, media_type: &str, bytes: &[u8]) -> Result<(), UnpackError> {
    let gzip = bytes.starts_with(&[0x1f, 0x8b]);
    let zstd = bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    let found = if media_type.ends_with("gzip") {
        if gzip {
            None
        } else if zstd {
            Some("zstd-compressed")
        } else if looks_like_tar(bytes) {
            Some("an uncompressed tar")
        } else {
            Some("not gzip-compressed")
        }
    } else if media_type.ends_with("zstd") {
        None
    } else if gzip {
        Some("gzip-compressed")
    } else if zstd {
        Some("zstd-compressed")
    } else if !looks_like_tar(bytes) {
        Some("not a tar archive")
    } else {
        None
    };
    match found {
        None => Ok(()),
        Some(found) => Err(UnpackError::Mislabelled {
            digest: digest.clone(),
            media_type: media_type.to_owned(),
            found,
        }),
    }
}

/// An empty blob, an all-zero first block (an empty archive) or a first header whose checksum adds up.
fn looks_like_tar(bytes: &[u8]) -> bool {
    let Some(block) = bytes.get(..512) else {
        return bytes.iter().all(|&b| b == 0);
    };
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .map(|&b| b as char)
        .filter(char::is_ascii_digit)
        .collect();
    let Ok(want) = u32::from_str_radix(&text, 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == want
}

/// The root directory itself (`/`, `./`), which some tools archive as an entry: nothing to create.
fn is_root_entry(entry: &str) -> bool {
    Path::new(entry)
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::CurDir))
}

/// A clean relative path inside the root, or why not.
fn clean(entry: &str) -> Result<PathBuf, UnpackError> {
    let p = Path::new(entry);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(hostile(
                    entry,
                    "contains `..`, which could write outside the root",
                ));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(hostile(entry, "is an absolute path"));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(hostile(entry, "has an empty path"));
    }
    if entry.as_bytes().contains(&0) {
        return Err(hostile(entry, "has a NUL byte in its name"));
    }
    Ok(out)
}

/// The name a whiteout `.wh.<name>` hides: one plain name in the whiteout's directory, or why not.
fn whiteout_target<'a>(entry: &str, hidden: &'a str) -> Result<&'a OsStr, UnpackError> {
    if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
        return Err(hostile(
            entry,
            format!(
                "is a whiteout of `{}`, which is not a name in its directory (whiteouts are `.wh.` and one file name)",
                excerpt(hidden)
            ),
        ));
    }
    Ok(OsStr::new(hidden))
}

fn is_root() -> bool {
    fs_err::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// Applies one uncompressed layer tar onto `root` (created when missing).
pub fn unpack_layer(tar: impl Read, root: &Path) -> Result<(), UnpackError> {
    let werr = |source| UnpackError::Write {
        path: root.to_path_buf(),
        source,
    };
    fs_err::create_dir_all(root).map_err(werr)?;
    let dir = Dir::open(root).map_err(werr)?;
    unpack_into(tar, &dir, root)
}

/// What a layer's whiteouts do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Whiteouts {
    /// Remove what the layers below put there (the layers are applied onto one directory).
    Apply,
    /// Become overlayfs whiteouts in the layer's own directory (the kernel applies them at mount time).
    Overlay,
}

/// The state of one layer being applied.
struct Unpacker<'a> {
    root: &'a Dir,
    root_path: &'a Path,
    root_user: bool,
    whiteouts: Whiteouts,
    /// Paths this layer created (an opaque whiteout keeps them).
    created: BTreeSet<PathBuf>,
    /// The last parent directory opened, reused by the entries that follow in the same directory.
    parent: Option<(PathBuf, Dir)>,
}

fn unpack_into(tar: impl Read, root: &Dir, root_path: &Path) -> Result<(), UnpackError> {
    apply(tar, root, root_path, Whiteouts::Apply).map(drop)
}

/// Applies one layer; returns the paths its entries created.
fn apply(
    tar: impl Read,
    root: &Dir,
    root_path: &Path,
    whiteouts: Whiteouts,
) -> Result<BTreeSet<PathBuf>, UnpackError> {
    let mut archive = tar::Archive::new(ZeroTail {
        inner: tar,
        tail: 1024 + 511,
        done: false,
    });
    archive.set_preserve_permissions(false);
    let mut u = Unpacker {
        root,
        root_path,
        root_user: is_root(),
        whiteouts,
        created: BTreeSet::new(),
        parent: None,
    };
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut e = entry.map_err(UnpackError::Read)?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        u.entry(&mut e, &name)?;
    }
    Ok(u.created)
}

impl Unpacker<'_> {
    fn werr(&self, rel: &Path) -> impl Fn(io::Error) -> UnpackError + use<> {
        let path = self.root_path.join(rel);
        move |source| UnpackError::Write {
            path: path.clone(),
            source,
        }
    }

    /// Opens the directory `rel` of the root, never through a symlink; `None` when missing and not `create`d.
    fn dir(&mut self, rel: &Path, create: bool, entry: &str) -> Result<Option<Dir>, UnpackError> {
        if let Some((p, _)) = &self.parent
            && p == rel
            && let Some((_, d)) = self.parent.take()
        {
            return Ok(Some(d));
        }
        self.root.walk(rel, create).map_err(|e| match e {
            SafeFsError::ThroughSymlink { at } => hostile(
                entry,
                format!(
                    "would be written through a symlink (`{}`)",
                    excerpt_path(&at)
                ),
            ),
            SafeFsError::NotADirectory { at } => hostile(
                entry,
                format!(
                    "would be written below `{}`, which is not a directory",
                    excerpt_path(&at)
                ),
            ),
            SafeFsError::NotAName { .. } => hostile(entry, "has a path that is not plain names"),
            SafeFsError::Open { at, source } => UnpackError::Write {
                path: self.root_path.join(at),
                source,
            },
        })
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>, name: &str) -> Result<(), UnpackError> {
        if name.len() > MAX_NAME_BYTES {
            return Err(hostile(
                name,
                format!(
                    "has a name of {} bytes; entry names are at most {MAX_NAME_BYTES} bytes",
                    name.len()
                ),
            ));
        }
        let kind = e.header().entry_type();
        match kind {
            EntryType::XHeader
            | EntryType::XGlobalHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => return Ok(()),
            EntryType::Directory
            | EntryType::Regular
            | EntryType::Continuous
            | EntryType::Symlink
            | EntryType::Link
            | EntryType::Char
            | EntryType::Block
            | EntryType::Fifo => {}
            _ => return Err(hostile(name, "has an entry type layers do not use")),
        }
        if is_root_entry(name) {
            return Ok(());
        }
        let rel = clean(name)?;
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let file = rel.file_name().unwrap_or_default().to_owned();
        let file_str = file.to_string_lossy().into_owned();
        if let Some(hidden) = file_str.strip_prefix(".wh.") {
            return self.whiteout(&rel, &parent_rel, hidden, name);
        }
        let werr = self.werr(&rel);
        let dir = self
            .dir(&parent_rel, true, name)?
            .ok_or_else(|| werr(io::ErrorKind::NotFound.into()))?;
        match dir.kind(&file).map_err(&werr)? {
            Some(FileType::Directory) if kind == EntryType::Directory => {}
            Some(_) => dir.remove_all(&file).map_err(&werr)?,
            None => {}
        }
        let mode = e.header().mode().unwrap_or(0o644) & if self.root_user { 0o7777 } else { 0o777 };
        let owner = self.root_user.then(|| {
            let id = |v: io::Result<u64>| v.ok().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
            (id(e.header().uid()), id(e.header().gid()))
        });
        match kind {
            EntryType::Directory => {
                if dir.kind(&file).map_err(&werr)?.is_none() {
                    dir.mkdir(&file, 0o700).map_err(&werr)?;
                }
                let d = dir.child(&file).map_err(&werr)?;
                d.set_owner_and_mode(owner, mode | 0o700).map_err(&werr)?;
            }
            EntryType::Regular | EntryType::Continuous => {
                let mut f = dir.create_file(&file).map_err(&werr)?;
                io::copy(e, &mut f).map_err(&werr)?;
                crate::safe_fs::set_owner_and_mode(&f, owner, mode).map_err(&werr)?;
            }
            EntryType::Symlink => {
                let target = e
                    .link_name()
                    .map_err(UnpackError::Read)?
                    .unwrap_or_default()
                    .into_owned();
                if target.as_os_str().is_empty() {
                    return Err(hostile(name, "is a symlink with an empty target"));
                }
                match self
                    .root
                    .resolve_link(&parent_rel, &target)
                    .map_err(&werr)?
                {
                    Resolution::Inside => {}
                    Resolution::Outside => {
                        return Err(hostile(name, "is a symlink that points outside the root"));
                    }
                    Resolution::TooManyLinks => {
                        return Err(hostile(
                            name,
                            format!(
                                "is a symlink whose target passes through more than {} links",
                                crate::safe_fs::MAX_LINK_HOPS
                            ),
                        ));
                    }
                }
                dir.symlink(&target, &file).map_err(&werr)?;
            }
            EntryType::Link => self.hard_link(e, &dir, &file, name)?,
            _ => {} // device nodes and FIFOs: skipped
        }
        if !matches!(kind, EntryType::Char | EntryType::Block | EntryType::Fifo) {
            self.created.insert(rel);
        }
        self.parent = Some((parent_rel, dir));
        Ok(())
    }

    fn hard_link<R: Read>(
        &mut self,
        e: &tar::Entry<'_, R>,
        dir: &Dir,
        file: &OsStr,
        name: &str,
    ) -> Result<(), UnpackError> {
        let target = e
            .link_name()
            .map_err(UnpackError::Read)?
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let trel = clean(&target)
            .map_err(|_| hostile(name, "is a hard link to a path outside the root"))?;
        let missing = || {
            hostile(
                name,
                format!(
                    "is a hard link to `{}`, which no earlier entry created",
                    excerpt(&target)
                ),
            )
        };
        let src_dir = self
            .root
            .walk(trel.parent().unwrap_or(Path::new("")), false)
            .map_err(|_| hostile(name, "is a hard link through a symlink or a file"))?
            .ok_or_else(missing)?;
        let src = trel.file_name().unwrap_or_default();
        match src_dir.kind(src).map_err(self.werr(&trel))? {
            None => return Err(missing()),
            Some(FileType::Symlink) => return Err(hostile(name, "is a hard link to a symlink")),
            Some(FileType::Directory) => {
                return Err(hostile(name, "is a hard link to a directory"));
            }
            Some(_) => {}
        }
        // The link shares the inode (owner and mode) of its target: nothing to set.
        dir.hard_link(file, &src_dir, src)
            .map_err(self.werr(Path::new(name)))
    }

    /// `.wh..wh..opq` empties its directory of what earlier layers put there; `.wh.<name>` removes `<name>`.
    fn whiteout(
        &mut self,
        rel: &Path,
        parent_rel: &Path,
        hidden: &str,
        entry: &str,
    ) -> Result<(), UnpackError> {
        // Removing may invalidate the cached directory.
        self.parent = None;
        let werr = self.werr(rel);
        if self.whiteouts == Whiteouts::Overlay {
            return self
                .overlay_whiteout(parent_rel, hidden, entry)
                .map_err(werr);
        }
        if hidden == ".wh..opq" {
            let Some(dir) = self.dir(parent_rel, false, entry)? else {
                return Ok(());
            };
            for child in dir.names().map_err(&werr)? {
                if !self.created.contains(&parent_rel.join(&child)) {
                    dir.remove_all(&child).map_err(&werr)?;
                }
            }
            return Ok(());
        }
        if hidden.starts_with(".wh.") {
            return Ok(()); // other `.wh..wh.` names are aufs metadata, not whiteouts
        }
        let target = whiteout_target(entry, hidden)?;
        if let Some(dir) = self.dir(parent_rel, false, entry)? {
            dir.remove_all(target).map_err(&werr)?;
        }
        Ok(())
    }
}

impl Unpacker<'_> {
    /// A whiteout as overlayfs records it: `.wh..wh..opq` marks its directory opaque (the layers below do not show
    /// through it), `.wh.<name>` is a 0:0 character device named `<name>`.
    fn overlay_whiteout(
        &mut self,
        parent_rel: &Path,
        hidden: &str,
        entry: &str,
    ) -> Result<(), io::Error> {
        let dir = match self.dir(parent_rel, true, entry) {
            Ok(Some(d)) => d,
            Ok(None) => return Err(io::ErrorKind::NotFound.into()),
            Err(e) => return Err(io::Error::other(e.to_string())),
        };
        if hidden == ".wh..opq" {
            return dir.set_xattr("trusted.overlay.opaque", b"y");
        }
        if hidden.starts_with(".wh.") {
            return Ok(()); // aufs metadata, not a whiteout
        }
        let target = whiteout_target(entry, hidden).map_err(|e| io::Error::other(e.to_string()))?;
        dir.remove_all(target)?;
        dir.overlay_whiteout(target)
    }
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

/// Unpacks layers (uncompressed readers, bottom first) into a new directory `dest`, atomically: into a temporary
/// sibling first (created exclusively, with a random name), renamed into place only when every layer applied. On
/// failure nothing is left behind.
pub fn unpack_layers<R: Read>(
    layers: impl IntoIterator<Item = Result<R, UnpackError>>,
    dest: &Path,
) -> Result<(), UnpackError> {
    into_new_dir(dest, |root, path| {
        for layer in layers {
            unpack_into(layer?, root, path)?;
        }
        Ok(())
    })
}

/// Unpacks one layer (uncompressed) into a new directory `dest` as a lower layer of an overlayfs mount, atomically
/// like [`unpack_layers`]. Its whiteouts become overlayfs whiteouts (`.wh.<name>` a 0:0 character device,
/// `.wh..wh..opq` the `trusted.overlay.opaque` attribute of its directory), and a directory the layer has only as
/// the parent of its entries (no entry of its own) takes the owner and mode it has in `lower`, the directories of
/// the layers below, top first, as applying the layers in order would leave it (overlayfs shows the top layer's
/// directory attributes). Needs root (device nodes, `trusted.*` attributes, owners). A hard link to a file of a
/// lower layer cannot be made in a layer of its own: that is an error here, and such images are unpacked whole.
pub fn unpack_overlay_layer(
    tar: impl Read,
    lower: &[&Path],
    dest: &Path,
) -> Result<(), UnpackError> {
    into_new_dir(dest, |root, path| {
        let created = apply(tar, root, path, Whiteouts::Overlay)?;
        let lower: Vec<Dir> = lower.iter().filter_map(|p| Dir::open(p).ok()).collect();
        implicit_dirs_from_lower(root, path, Path::new(""), &created, &lower)
    })
}

/// Gives each directory below `rel` that no entry created the owner and mode of the same directory in the nearest
/// of `lower` that has it (a symlink or file there hides the ones further down: then the defaults stay).
fn implicit_dirs_from_lower(
    root: &Dir,
    root_path: &Path,
    rel: &Path,
    created: &BTreeSet<PathBuf>,
    lower: &[Dir],
) -> Result<(), UnpackError> {
    let werr = |source| UnpackError::Write {
        path: root_path.join(rel),
        source,
    };
    let dir = if rel.as_os_str().is_empty() {
        root.try_clone().map_err(werr)?
    } else {
        match root.walk(rel, false) {
            Ok(Some(d)) => d,
            _ => return Ok(()),
        }
    };
    for name in dir.names().map_err(werr)? {
        if dir.kind(&name).map_err(werr)? != Some(FileType::Directory) {
            continue;
        }
        let child = rel.join(&name);
        if !created.contains(&child) {
            let below = lower.iter().find_map(|l| match l.walk(&child, false) {
                Ok(Some(d)) => Some(Some(d)),
                Ok(None) => None,
                Err(_) => Some(None),
            });
            if let Some(Some(d)) = below {
                let (owner, mode) = d.owner_and_mode().map_err(werr)?;
                dir.child(&name)
                    .and_then(|c| c.set_owner_and_mode(Some(owner), mode))
                    .map_err(werr)?;
            }
        }
        implicit_dirs_from_lower(root, root_path, &child, created, lower)?;
    }
    Ok(())
}

/// Runs `fill` on a new temporary sibling of `dest` (created exclusively, with a random name) and renames it into
/// place when `fill` succeeded; on failure nothing is left behind.
fn into_new_dir(
    dest: &Path,
    fill: impl FnOnce(&Dir, &Path) -> Result<(), UnpackError>,
) -> Result<(), UnpackError> {
    let werr = |source| UnpackError::Write {
        path: dest.to_path_buf(),
        source,
    };
    if fs_err::symlink_metadata(dest).is_ok() {
        return Err(werr(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the target directory exists; choose a new one",
        )));
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent).map_err(werr)?;
    let prefix = format!(
        ".{}.unpacking-",
        dest.file_name()
            .map_or_else(|| "rootfs".into(), |n| n.to_string_lossy())
    );
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(parent)
        .map_err(werr)?;
    let root = Dir::open(tmp.path()).map_err(werr)?;
    root.set_owner_and_mode(None, 0o755).map_err(werr)?;
    fill(&root, tmp.path())?;
    crate::safe_fs::rename_new(tmp.path(), dest).map_err(werr)?;
    // Renamed: nothing is left to remove.
    let _ = tmp.keep();
    Ok(())
}

#[cfg(test)]
mod tests;
