//! Reproducible layers: a deterministic tar (sorted entries, fixed mtimes, caller-chosen owner, normalized modes,
//! symlinks and hardlinks kept, no xattrs/atime/ctime, long names via PAX), compressed and hashed in one streaming
//! pass: the diff-ID over the tar, the digest and size over the compressed bytes.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::compress::ParallelGzip;
use crate::digest::{Digest, HashingWriter};

/// 1980-01-01T00:00:01Z: the timestamp CNB gives every layer entry.
pub const CNB_EPOCH: u64 = 315_532_801;

pub const MEDIA_TYPE_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot read `{path}`: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write the layer: {0}")]
    Write(#[source] io::Error),
    #[error("`{path}` changed size while it was being archived")]
    Changed { path: PathBuf },
    #[error(
        "`{path}` is a {kind}; layers hold only files, directories and links: remove it (in the app directory, or exclude it in project.toml)"
    )]
    Unsupported { path: PathBuf, kind: &'static str },
}

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Source),
    Symlink(String),
    /// A hard link to an earlier entry of the same layer.
    Hardlink(String),
}

/// One entry: a relative path with `/` separators (no leading `/`, no trailing `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    /// Only the executable bit of files matters: modes are normalized to 0755/0644 (dirs 0755, links 0777).
    pub executable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip { level: u32 },
}

#[derive(Debug, Clone, Copy)]
pub struct LayerOptions {
    pub uid: u64,
    pub gid: u64,
    pub compression: Compression,
}

impl Default for LayerOptions {
    fn default() -> Self {
        Self {
            uid: 0,
            gid: 0,
            compression: Compression::Gzip { level: 6 },
        }
    }
}

/// The identity of a written layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the bytes as stored (compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: &'static str,
}

/// The entries of a directory tree, sorted so that the archive does not depend on directory order; files with
/// several links become one file and hard links to it. `prefix` (e.g. `workspace`) is prepended to every path.
pub fn entries_from_dir(root: &Path, prefix: &str) -> Result<Vec<Entry>, LayerError> {
    let mut out = Vec::new();
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        let mut acc = String::new();
        for part in prefix.split('/') {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            out.push(Entry {
                path: acc.clone(),
                kind: Kind::Dir,
                executable: true,
            });
        }
    }
    let mut links = HashMap::new();
    walk(root, prefix, &mut out, &mut links)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    rel: &str,
    out: &mut Vec<Entry>,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<(), LayerError> {
    let read = |path: &Path, source| LayerError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut names: Vec<_> = fs_err::read_dir(dir)
        .map_err(|e| read(dir, e))?
        .map(|e| e.map(|e| e.file_name()).map_err(|e| read(dir, e)))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let name = name.to_string_lossy();
        let entry_path = if rel.is_empty() {
            name.into_owned()
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs_err::symlink_metadata(&path).map_err(|e| read(&path, e))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            out.push(Entry {
                path: entry_path.clone(),
                kind: Kind::Dir,
                executable: true,
            });
            walk(&path, &entry_path, out, links)?;
        } else if ft.is_symlink() {
            let target = fs_err::read_link(&path).map_err(|e| read(&path, e))?;
            out.push(Entry {
                path: entry_path,
                kind: Kind::Symlink(target.to_string_lossy().into_owned()),
                executable: false,
            });
        } else if ft.is_file() {
            let executable = meta.mode() & 0o111 != 0;
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    out.push(Entry {
                        path: entry_path,
                        kind: Kind::Hardlink(first.clone()),
                        executable,
                    });
                    continue;
                }
                links.insert((meta.dev(), meta.ino()), entry_path.clone());
            }
            out.push(Entry {
                path: entry_path,
                kind: Kind::File(Source::Path(path)),
                executable,
            });
        } else {
            return Err(LayerError::Unsupported {
                path,
                kind: special_kind(ft),
            });
        }
    }
    Ok(())
}

/// What a file that is neither a file, a directory nor a symlink is, for messages.
fn special_kind(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_fifo() {
        "FIFO (named pipe)"
    } else if ft.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// Writes `entries` as a layer to `out`; returns its identity and `out`.
pub fn write_layer<W: Write>(
    entries: &[Entry],
    opts: &LayerOptions,
    out: W,
) -> Result<(LayerInfo, W), LayerError> {
    let stored = HashingWriter::new(out);
    match opts.compression {
        Compression::None => {
            let tar = HashingWriter::new(stored);
            let tar = write_tar(entries, opts, tar)?;
            let (diff_id, _, stored) = tar.finish();
            let (digest, size, out) = stored.finish();
            Ok((
                LayerInfo {
                    digest,
                    diff_id,
                    size,
                    media_type: MEDIA_TYPE_TAR,
                },
                out,
            ))
        }
        Compression::Gzip { level } => {
            let tar = HashingWriter::new(ParallelGzip::new(stored, level));
            let tar = write_tar(entries, opts, tar)?;
            let (diff_id, _, gz) = tar.finish();
            let stored = gz.finish().map_err(LayerError::Write)?;
            let (digest, size, out) = stored.finish();
            Ok((
                LayerInfo {
                    digest,
                    diff_id,
                    size,
                    media_type: MEDIA_TYPE_GZIP,
                },
                out,
            ))
        }
    }
}

fn write_tar<W: Write>(entries: &[Entry], opts: &LayerOptions, out: W) -> Result<W, LayerError> {
    let mut b = tar::Builder::new(out);
    for e in entries {
        append(&mut b, e, opts)?;
    }
    b.into_inner().map_err(LayerError::Write)
}

fn base_header(opts: &LayerOptions, kind: EntryType, mode: u32) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(opts.uid);
    h.set_gid(opts.gid);
    h.set_mtime(CNB_EPOCH);
    h.set_size(0);
    h
}

fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    e: &Entry,
    opts: &LayerOptions,
) -> Result<(), LayerError> {
    let w = LayerError::Write;
    let (mut header, name) = match &e.kind {
        Kind::Dir => (
            base_header(opts, EntryType::Directory, 0o755),
            format!("{}/", e.path),
        ),
        Kind::File(_) => (
            base_header(
                opts,
                EntryType::Regular,
                if e.executable { 0o755 } else { 0o644 },
            ),
            e.path.clone(),
        ),
        Kind::Symlink(_) => (base_header(opts, EntryType::Symlink, 0o777), e.path.clone()),
        Kind::Hardlink(_) => (
            base_header(
                opts,
                EntryType::Link,
                if e.executable { 0o755 } else { 0o644 },
            ),
            e.path.clone(),
        ),
    };
    let mut pax: Vec<(&str, &str)> = Vec::new();
    if header.set_path(&name).is_err() {
        pax.push(("path", &name));
        header.set_path(truncate(&name, 99)).map_err(w)?;
    }
    let link = match &e.kind {
        Kind::Symlink(t) | Kind::Hardlink(t) => Some(t.as_str()),
        _ => None,
    };
    if let Some(t) = link
        && header.set_link_name(t).is_err()
    {
        pax.push(("linkpath", t));
        header.set_link_name(truncate(t, 99)).map_err(w)?;
    }
    if !pax.is_empty() {
        append_pax(builder, &pax, opts)?;
    }
    match &e.kind {
        Kind::File(Source::Bytes(bytes)) => {
            header.set_size(bytes.len() as u64);
            header.set_cksum();
            builder.append(&header, &bytes[..]).map_err(w)
        }
        Kind::File(Source::Path(path)) => {
            let read = |source| LayerError::Read {
                path: path.clone(),
                source,
            };
            let f = fs_err::File::open(path).map_err(read)?;
            let len = f.metadata().map_err(read)?.len();
            header.set_size(len);
            header.set_cksum();
            let mut counted = Counted {
                inner: f.take(len),
                n: 0,
            };
            builder.append(&header, &mut counted).map_err(w)?;
            if counted.n == len {
                Ok(())
            } else {
                Err(LayerError::Changed { path: path.clone() })
            }
        }
        _ => {
            header.set_cksum();
            builder.append(&header, io::empty()).map_err(w)
        }
    }
}

/// A PAX extended header (`x`) carrying records for the next entry.
fn append_pax<W: Write>(
    b: &mut tar::Builder<W>,
    records: &[(&str, &str)],
    opts: &LayerOptions,
) -> Result<(), LayerError> {
    let mut data = Vec::new();
    for (k, v) in records {
        // "<len> <key>=<value>\n" where <len> counts itself.
        let body = format!(" {k}={v}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len}{body}").as_bytes());
    }
    let mut h = base_header(opts, EntryType::XHeader, 0o644);
    h.set_path("PaxHeader").map_err(LayerError::Write)?;
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, &data[..]).map_err(LayerError::Write)
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn tree(root: &Path, mtime_offset: u64, mode_extra: u32) {
        fs_err::create_dir_all(root.join("bin")).unwrap();
        fs_err::create_dir_all(root.join("deep/".repeat(40))).unwrap();
        let files = [
            ("a.txt", "alpha"),
            ("bin/run", "#!/bin/sh\necho hi\n"),
            ("z.txt", "zulu"),
        ];
        for (p, c) in files {
            fs_err::write(root.join(p), c).unwrap();
            let f = std::fs::File::options()
                .write(true)
                .open(root.join(p))
                .unwrap();
            f.set_modified(
                std::time::SystemTime::UNIX_EPOCH
                    + std::time::Duration::from_secs(1_000_000 + mtime_offset),
            )
            .unwrap();
        }
        fs_err::set_permissions(
            root.join("bin/run"),
            std::fs::Permissions::from_mode(0o750 | mode_extra),
        )
        .unwrap();
        fs_err::set_permissions(
            root.join("a.txt"),
            std::fs::Permissions::from_mode(0o640 | mode_extra),
        )
        .unwrap();
        fs_err::write(
            root.join("deep/".repeat(40)).join("long-file-name.txt"),
            "deep",
        )
        .unwrap();
        fs_err::os::unix::fs::symlink("bin/run", root.join("link")).unwrap();
        fs_err::hard_link(root.join("z.txt"), root.join("z-hard.txt")).unwrap();
    }

    fn layer_of(root: &Path) -> LayerInfo {
        let entries = entries_from_dir(root, "").unwrap();
        write_layer(
            &entries,
            &LayerOptions {
                uid: 1000,
                gid: 1000,
                ..LayerOptions::default()
            },
            std::io::sink(),
        )
        .unwrap()
        .0
    }

    #[test]
    fn same_tree_same_digest_whatever_the_disk_says() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        tree(a.path(), 0, 0);
        tree(b.path(), 777, 0o020);
        assert_eq!(layer_of(a.path()), layer_of(b.path()));
        fs_err::write(b.path().join("z.txt"), "zulu!").unwrap();
        assert_ne!(layer_of(a.path()).diff_id, layer_of(b.path()).diff_id);
    }

    #[test]
    fn archive_reads_back_with_long_names_links_and_fixed_metadata() {
        let a = tempfile::tempdir().unwrap();
        tree(a.path(), 0, 0);
        let entries = entries_from_dir(a.path(), "workspace").unwrap();
        let (info, bytes) = write_layer(
            &entries,
            &LayerOptions {
                uid: 1000,
                gid: 1001,
                ..LayerOptions::default()
            },
            Vec::new(),
        )
        .unwrap();
        assert_eq!(info.digest, Digest::of(&bytes));
        let mut tar = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(info.diff_id, Digest::of(&tar));
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(
                (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
                (CNB_EPOCH, 1000, 1001)
            );
            let path = e.path().unwrap().to_string_lossy().into_owned();
            match h.entry_type() {
                EntryType::Symlink => {
                    assert_eq!(e.link_name().unwrap().unwrap().to_str(), Some("bin/run"));
                }
                EntryType::Link => assert_eq!(
                    e.link_name().unwrap().unwrap().to_str(),
                    Some("workspace/z-hard.txt")
                ),
                EntryType::Regular if path.ends_with("bin/run") => {
                    assert_eq!(h.mode().unwrap(), 0o755);
                }
                EntryType::Regular => assert_eq!(h.mode().unwrap(), 0o644),
                _ => {}
            }
            seen.push(path);
        }
        assert!(
            seen.iter()
                .any(|p| p.len() > 200 && p.ends_with("long-file-name.txt")),
            "{seen:?}"
        );
        assert_eq!(seen[0], "workspace/");
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted);
    }

    #[test]
    fn special_files_are_named_with_what_they_are() {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        fs_err::create_dir_all(&app).unwrap();
        let msg = |name: &str, kind: &str| {
            format!(
                "`{}` is a {kind}; layers hold only files, directories and links: remove it (in the app directory, or exclude it in project.toml)",
                app.join(name).display()
            )
        };
        let fifo = app.join("pipe");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let e = entries_from_dir(&app, "workspace").unwrap_err();
        assert_eq!(e.to_string(), msg("pipe", "FIFO (named pipe)"));
        fs_err::remove_file(&fifo).unwrap();
        let _listener = std::os::unix::net::UnixListener::bind(app.join("sock")).unwrap();
        let e = entries_from_dir(&app, "workspace").unwrap_err();
        assert_eq!(e.to_string(), msg("sock", "socket"));
        fs_err::remove_file(app.join("sock")).unwrap();
        // Making a device needs root (and a kernel that lets this container make one).
        let dev = rustix::fs::mknodat(
            rustix::fs::CWD,
            app.join("dev0"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o644),
            rustix::fs::makedev(1, 3),
        );
        if dev.is_ok() {
            let e = entries_from_dir(&app, "workspace").unwrap_err();
            assert_eq!(e.to_string(), msg("dev0", "character device"));
        }
    }
}
